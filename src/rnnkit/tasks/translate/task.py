"""``translate``: sequence to sequence (many-to-many, lengths differ): an encoder–decoder translates sentences.

Data: Multi30k task 1 in ``--data-dir`` (train 29,000 / val 1,014 / test_2016_flickr 1,000
pairs; ``--src de --tgt en`` or the other way), read from its lower-cased Moses-tokenised
``*.lc.norm.tok.*`` files (``--pretokenized``, the default) or from the raw ``*.gz`` text,
tokenised here; or any parallel corpus of line-aligned UTF-8 files (``--train-src
--train-tgt``, ``--valid-src --valid-tgt``, optionally ``--test-src --test-tgt``;
``rnnkit.data.parallel``). Sentences to ``predict`` are always raw text: tokenised with
``--tokenizer`` (Moses, as the Multi30k files were made) and lower-cased with ``--lowercase``.

Vocabularies: each side's training words (or subwords) seen ``--min-count`` times, after
``<pad> <unk> <bos> <eos>`` (``rnnkit.data.parallel``). Model: ``rnnkit.models.seq2seq`` (``--architecture sutskever|cho|attention``),
trained with teacher forcing (``--teacher-forcing`` < 1: scheduled sampling), label smoothing
and batches of about ``--max-tokens`` tokens (``rnnkit.data.pair_batches``).

Metrics: corpus BLEU and chrF by sacrebleu on the text as the model reads and writes it
(Moses tokens, lower-cased, joined by spaces: "tokenised BLEU", sacrebleu ``tokenize=none``;
the signature is printed and saved), and the perplexity of the reference translations. The
validation BLEU during training, which chooses the kept model (``--keep-best``), decodes
greedily; the test metrics (and ``validation_decoded`` in summary.json) decode as the
``decoding`` options say (``--beam-size`` ...; ``rnnkit.models.search``), and report the greedy
BLEU beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.pair_batches import PairBatches, collate_pairs, pairs_by_length
from rnnkit.data.parallel import PairExamples, SentencePair, Side, WordPair, pair_examples, read_parallel, sentence_words
from rnnkit.data.tokenization import moses_detokenizer
from rnnkit.data.vocabulary import BEGIN, END, PADDING, UNKNOWN
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import perplexity, translation_metrics
from rnnkit.models.search import DecodingConfig, Hypothesis, search_in_batches
from rnnkit.models.seq2seq import EncoderDecoder, Seq2SeqConfig, attention_of
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.translate.commands import TRANSLATE_EVALUATE, TRANSLATE_PREDICT, TranslateOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

MULTI30K = "../shared/data/multi30k"
MULTI30K_SPLITS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
TOKENIZER_NAMES = ("moses", "whitespace")
EVALUATION_SENTENCES = 128  # sentences per decoding batch (times the beam size in rows)


@dataclass
class TranslateData:
    data_dir: str = MULTI30K
    """Folder with Multi30k's files: {train,val,test_2016_flickr}.lc.norm.tok.{de,en} and the raw *.{de,en}.gz."""
    src: str = "de"
    """Source language: the files' suffix (and the Moses tokenizer's language)."""
    tgt: str = "en"
    """Target language."""
    pretokenized: bool = True
    """The data files are tokenised already (Multi30k's *.lc.norm.tok.*): split them on spaces. Off: read the raw
    text (Multi30k's *.gz) and tokenise it with --tokenizer."""
    tokenizer: str = "moses"
    """How raw text becomes words: moses (sacremoses, the language's rules) or whitespace."""
    lowercase: bool = True
    """Lower-case every sentence (Multi30k's tokenised files are lower-case)."""
    min_count: int = 2
    """Keep each side's training words (or subwords) seen at least this many times; the others read as <unk>."""
    subwords: int = 0
    """Split words into subword units: a BPE model of this many units per language, learnt from its training
    sentences by sentencepiece (0: whole words)."""
    max_tokens: int = 4000
    """At most this many tokens per training batch and process (sentences x the longer side's length, padding
    included), as fairseq's --max-tokens; --batch-size caps the sentences."""
    train_src: str | None = None
    """Your own parallel corpus instead of --data-dir: the training source file (line-aligned with --train-tgt)."""
    train_tgt: str | None = None
    """Your own training target file."""
    valid_src: str | None = None
    """Your own validation source file (chooses the kept model)."""
    valid_tgt: str | None = None
    """Your own validation target file."""
    test_src: str | None = None
    """Your own test source file (optional)."""
    test_tgt: str | None = None
    """Your own test target file (optional)."""

    def validate(self) -> None:
        if self.tokenizer not in TOKENIZER_NAMES:
            raise UserError(f"--tokenizer: expected one of {', '.join(TOKENIZER_NAMES)}, got {self.tokenizer!r}")
        if self.min_count < 1:
            raise UserError(f"--min-count: expected a positive integer, got {self.min_count}")
        if self.subwords < 0:
            raise UserError(f"--subwords: expected 0 (whole words) or a number of units, got {self.subwords}")
        if self.max_tokens <= 0:
            raise UserError(f"--max-tokens: expected a positive integer, got {self.max_tokens}")
        own = {"train": (self.train_src, self.train_tgt), "valid": (self.valid_src, self.valid_tgt),
               "test": (self.test_src, self.test_tgt)}
        for split, (source, target) in own.items():
            if (source is None) != (target is None):
                raise UserError(f"--{split}-src, --{split}-tgt: give both files of the pair, or neither")
        if any(source for source, _ in own.values()) and not (self.train_src and self.valid_src):
            raise UserError("--train-src/--valid-src: your own corpus needs training and validation pairs "
                            "(--train-src --train-tgt --valid-src --valid-tgt), or none of them to use --data-dir")

    def words(self, text: str, language: str, pretokenized: bool) -> list[str]:
        return sentence_words(text, language, self.lowercase, self.tokenizer, pretokenized)

    def word_pairs(self, pairs: list[SentencePair]) -> list[WordPair]:
        """Each pair's words, as the model reads the data files."""
        return [WordPair(self.words(pair.source, self.src, self.pretokenized),
                         self.words(pair.target, self.tgt, self.pretokenized), pair.where) for pair in pairs]


@dataclass
class TranslateConfig(RunConfig):
    model: Seq2SeqConfig = field(default_factory=lambda: Seq2SeqConfig(
        cell="gru", hidden_size=512, bidirectional=True, embedding_size=256, dropout=0.3, architecture="attention",
        score="additive", input_feeding=True, label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=128, optimizer="adam", lr=1e-3, schedule="constant", epochs=10, max_minutes=0.0, eval_every=250,
        clip_grad_norm=1.0, keep_best=True, precision="fp32"))
    dataset: TranslateData = field(default_factory=TranslateData)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    GROUPS = ("model", "train", "dataset", "decoding")

    @classmethod
    def upgrade(cls, values: dict) -> dict:
        """Runs from before the decoding group kept its options under dataset.decoding."""
        dataset = values.get("dataset")
        if isinstance(dataset, dict) and "decoding" in dataset:
            values = {**values, "dataset": {k: v for k, v in dataset.items() if k != "decoding"},
                      "decoding": {**dataset["decoding"], **values.get("decoding", {})}}
        return values


def read_splits(data: TranslateData) -> dict[str, list[SentencePair]]:
    """The train, validation and (where there is one) test pairs of --data-dir or of your own files."""
    if data.train_src:
        own = {"train": (data.train_src, data.train_tgt, "--train-src/--train-tgt"),
               "validation": (data.valid_src, data.valid_tgt, "--valid-src/--valid-tgt"),
               "test": (data.test_src, data.test_tgt, "--test-src/--test-tgt")}
        return {split: read_parallel(source, target, option) for split, (source, target, option) in own.items()
                if source}
    folder = Path(data.data_dir)
    if not folder.is_dir():
        raise UserError(f"--data-dir: {folder} is not a folder; pass Multi30k's folder, or your own corpus with "
                        "--train-src --train-tgt --valid-src --valid-tgt")
    splits = {}
    for split, name in MULTI30K_SPLITS.items():
        paths = [folder / (f"{name}.lc.norm.tok.{language}" if data.pretokenized else f"{name}.{language}.gz")
                 for language in (data.src, data.tgt)]
        for path in paths:
            if not path.is_file():
                raise UserError(f"--data-dir: {folder} has no {path.name}; check --src/--tgt ({data.src}, {data.tgt}) "
                                f"and --pretokenized, or pass your own files with --train-src ...")
        splits[split] = read_parallel(*paths, option="--data-dir")
    return splits


class TranslationSession(Session):
    monitor = Monitor("bleu", "max")
    unit = "sent"

    def __init__(self, config: TranslateConfig, source: Side, target: Side, device: torch.device) -> None:
        self.config, self.source, self.target, self.device = config, source, target, device
        self.model = EncoderDecoder(len(source.vocabulary), len(target.vocabulary), config.model).to(device)
        self.batches = None
        self.splits: dict[str, PairExamples] = {}

    def task_state(self) -> dict:
        return {"source": self.source.to_state(), "target": self.target.to_state()}

    def loss_terms(self, batch: Batch) -> int:
        return int((batch.targets[1:] != self.target.vocabulary.index[PADDING]).sum())  # cross-entropy per target word

    # ----------------------------------------------------------------- search
    def translate(self, model, sources: list[torch.Tensor], decoding: DecodingConfig,
                  n_best: int = 1) -> list[list[Hypothesis]]:
        """The n-best hypotheses of every source (in the order given): from <bos> to <eos>, never <pad> or <bos>."""
        index = self.target.vocabulary.index
        return search_in_batches(model, sources, EVALUATION_SENTENCES, decoding.max_lengths, beam_size=decoding.beam_size,
                                 begin=index[BEGIN], end=index[END], never=(index[PADDING], index[BEGIN]),
                                 penalty=decoding.penalised, n_best=n_best, attention=attention_of)

    def written(self, hypothesis: Hypothesis, source_pieces: list[str], decoding: DecodingConfig) -> list[str]:
        """The pieces a hypothesis wrote; with --replace-unknown, each <unk> becomes the source piece attended to most."""
        pieces = self.target.vocabulary.decode(hypothesis.tokens)
        if decoding.replace_unknown and hypothesis.attention is not None:
            pieces = [source_pieces[int(hypothesis.attention[step].argmax())] if piece == UNKNOWN else piece
                      for step, piece in enumerate(pieces)]
        return pieces

    # ----------------------------------------------------------------- evaluation
    def perplexity(self, model, examples: PairExamples) -> float:
        """exp(mean cross-entropy per target piece, <eos> included) of the reference translations."""
        total, pieces = 0.0, 0
        for _, batch in pairs_by_length(examples.sources, examples.targets, EVALUATION_SENTENCES):
            batch = batch.to(self.device)
            _, loss, _ = model(batch.inputs, lengths=batch.lengths, targets=batch.targets)
            count = int((batch.targets[1:] != 0).sum())
            total, pieces = total + float(loss) * count, pieces + count
        return perplexity(total / pieces)

    def scores(self, model, examples: PairExamples, decoding: DecodingConfig) -> dict:
        """BLEU and chrF of the best translations ``decoding`` finds against the references the batches carry."""
        best = [hypotheses[0] for hypotheses in self.translate(model, examples.sources, decoding)]
        written, references = [None] * len(best), [None] * len(best)
        for indices, batch in pairs_by_length(examples.sources, None, EVALUATION_SENTENCES, examples.references):
            for position, reference in zip(indices, batch.references):
                pieces = self.written(best[position], examples.source_pieces[position], decoding)
                written[position], references[position] = " ".join(self.target.words(pieces)), reference
        return translation_metrics(written, references)

    def metrics(self, model, examples: PairExamples, decoding: DecodingConfig) -> dict:
        """BLEU and chrF of the translations ``decoding`` finds, and the references' perplexity."""
        return {**self.scores(model, examples, decoding), "perplexity": self.perplexity(model, examples)}

    def evaluate(self, model, examples: PairExamples | None = None) -> dict:
        """The metrics of greedy translations (cheap enough to follow during training) on ``examples`` (default:
        the validation split)."""
        return self.metrics(model, examples or self.splits["validation"], replace(self.config.decoding, beam_size=1))

    def final_metrics(self, examples: PairExamples, decoding: DecodingConfig) -> dict:
        """The metrics with ``decoding``, and the greedy BLEU and chrF beside them (test_summary, rnnkit evaluate)."""
        self.model.eval()
        with torch.no_grad():
            greedy = self.metrics(self.model, examples, replace(decoding, beam_size=1))
            if decoding.beam_size == 1:
                return {**greedy, "decoding": "greedy"}
            searched = self.scores(self.model, examples, decoding)
        return {**searched, "perplexity": greedy["perplexity"],  # the same whatever the search
                "decoding": f"beam {decoding.beam_size}", "bleu_greedy": greedy["bleu"], "chrf_greedy": greedy["chrf"]}

    def test_summary(self) -> dict:
        names = {"validation": "validation_decoded", "test": "test"}  # the trainer's "validation" is greedy's
        return {names[split]: self.final_metrics(examples, self.config.decoding) for split, examples in self.splits.items()}

    def decoding_with(self, beam_size: int) -> DecodingConfig:
        """The run's decoding options with another beam size (0: the run's)."""
        if beam_size < 0:
            raise UserError(f"--beam-size: expected a positive number of hypotheses (0: the run's), got {beam_size}")
        return replace(self.config.decoding, beam_size=beam_size or self.config.decoding.beam_size)

    def labelled_pairs(self, source: str | None, target: str | None) -> PairExamples | None:
        """``rnnkit evaluate``'s data: a source file and its reference translations, or the run's test split (None if
        it had none)."""
        if (source is None) != (target is None):
            raise UserError("--source, --target: give both files (a source file and its reference translations)")
        pairs = read_parallel(source, target, "--source/--target") if source else read_splits(self.config.dataset).get("test")
        return None if pairs is None else pair_examples(self.config.dataset.word_pairs(pairs), self.source, self.target)

    def report(self, metrics: dict, label: str = "validation") -> str:
        line = f"{label} BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}, perplexity {metrics['perplexity']:.2f}"
        if "decoding" in metrics:
            greedy_bleu = f"; greedy BLEU {metrics['bleu_greedy']:.2f}" if "bleu_greedy" in metrics else ""
            line += f" ({metrics['decoding']}{greedy_bleu}; sacrebleu {metrics['bleu_signature']})"
        return line

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[str, list[str], torch.Tensor]:
        data = self.config.dataset
        pieces = self.source.pieces(data.words(text, data.src, pretokenized=False))
        if not pieces:
            raise ValueError("the line is empty; give a sentence to translate")
        return text, pieces, torch.tensor(self.source.vocabulary.encode(pieces))

    def input_length(self, parsed: tuple[str, list[str], torch.Tensor]) -> int:
        return len(parsed[1])

    def predict(self, inputs: list[tuple[str, list[str], torch.Tensor]], options: TranslateOptions) -> list[dict]:
        """Translations; ``--n-best`` adds the best hypotheses, ``--show-attention`` each translation's attention
        weights (source pieces across, target pieces down)."""
        decoding = self.decoding_with(options.beam_size)
        if options.n_best <= 0:
            raise UserError(f"--n-best: expected a positive number of hypotheses, got {options.n_best}")
        if options.n_best > decoding.beam_size:
            raise UserError(f"--n-best: at most the beam size ({decoding.beam_size}) hypotheses are kept; raise --beam-size")
        if options.wants_attention and self.config.model.architecture != "attention":
            raise UserError(f"--show-attention: this run's model ({self.config.model.architecture}) has no attention")
        self.model.eval()
        with torch.no_grad():
            found = self.translate(self.model, [ids for _, _, ids in inputs], decoding, options.n_best)
        detokenize = moses_detokenizer(self.config.dataset.tgt)
        results = []
        for (text, pieces, ids), hypotheses in zip(inputs, found):
            written = [self.written(hypothesis, pieces, decoding) for hypothesis in hypotheses]
            translations = [detokenize(self.target.words(one)) for one in written]
            result = {"source": text, "translation": translations[0], "score": hypotheses[0].score}
            if bool((ids == self.source.vocabulary.index[UNKNOWN]).all()):
                result["warning"] = "no word of the sentence is in the training vocabulary; the translation is a guess"
            if options.n_best > 1:
                result["hypotheses"] = [{"translation": translation, "score": hypothesis.score}
                                        for translation, hypothesis in zip(translations, hypotheses)]
            if options.wants_attention and hypotheses[0].attention is not None:
                result["attention"] = {"source": pieces, "target": [*written[0], END],
                                       "weights": hypotheses[0].attention.cpu().tolist()}
            results.append(result)
        return results

    def describe(self, result: dict) -> str:
        line = result["translation"] + (f"\t(warning: {result['warning']})" if "warning" in result else "")
        for rank, hypothesis in enumerate(result.get("hypotheses", [])[1:], start=2):
            line += f"\n  {rank}. {hypothesis['translation']}\t({hypothesis['score']:.3f})"
        return line

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.encoder.rnn  # what reads the source; the decoder steps through the target

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation pairs (read from the run's files when restored), padded."""
        examples = self.splits.get("validation")
        if examples is None:
            data = self.config.dataset
            examples = pair_examples(data.word_pairs(read_splits(data)["validation"]), self.source, self.target)
        return collate_pairs(examples.sources[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


class TranslateTask(Task):
    name = "translate"
    summary = "sequence to sequence: encoder-decoder translation (Multi30k from --data-dir, or any parallel corpus)"
    config_class = TranslateConfig
    session_class = TranslationSession
    commands = {"evaluate": TRANSLATE_EVALUATE, "predict": TRANSLATE_PREDICT}

    def start(self, config: TranslateConfig, context: Distributed, device: torch.device) -> TranslationSession:
        data = config.dataset
        words = {split: data.word_pairs(pairs) for split, pairs in read_splits(data).items()}
        source = Side.build([pair.source for pair in words["train"]], data.subwords, data.min_count, "the training source")
        target = Side.build([pair.target for pair in words["train"]], data.subwords, data.min_count, "the training target")
        session = TranslationSession(config, source, target, device)
        session.splits = {split: pair_examples(words[split], source, target) for split in ("validation", "test")
                          if split in words}
        train = pair_examples(words["train"], source, target)
        try:
            session.batches = PairBatches(train.sources, train.targets, data.max_tokens * context.world_size,
                                          config.train.batch_size * context.world_size, config.train.seed, context.rank,
                                          context.world_size)
        except ValueError as error:
            raise UserError(f"--max-tokens: {error}; raise --max-tokens") from None
        return session

    def restore(self, config: TranslateConfig, task_state: dict, device: torch.device) -> TranslationSession:
        return TranslationSession(config, Side.from_state(task_state["source"]), Side.from_state(task_state["target"]),
                                  device)
