"""``translate``: sequence to sequence (many-to-many, lengths differ): an encoder–decoder translates sentences.

Data: Multi30k task 1 in ``--data-dir`` (train 29,000 / val 1,014 / test_2016_flickr 1,000
pairs; ``--src de --tgt en`` or the other way), read from its lower-cased Moses-tokenised
``*.lc.norm.tok.*`` files (``--pretokenized``, the default) or from the raw ``*.gz`` text,
tokenised here; or any parallel corpus of line-aligned UTF-8 files (``--train-src
--train-tgt``, ``--valid-src --valid-tgt``, optionally ``--test-src --test-tgt``;
``rnnkit.data.parallel``). Sentences to ``predict`` are always raw text: tokenised with
``--tokenizer`` (Moses, as the Multi30k files were made) and lower-cased with ``--lowercase``.

Vocabularies: each side's training words seen ``--min-count`` times, after ``<pad> <unk>
<bos> <eos>``. Model: ``rnnkit.models.seq2seq`` (``--architecture sutskever|cho|attention``),
trained with teacher forcing (``--teacher-forcing`` < 1: scheduled sampling), label smoothing
and batches of about ``--max-tokens`` tokens (``rnnkit.data.pair_batches``).

Metrics: corpus BLEU and chrF by sacrebleu on the text as the model reads and writes it
(Moses tokens, lower-cased, joined by spaces: "tokenised BLEU", sacrebleu ``tokenize=none``;
the signature is printed and saved), and the perplexity of the reference translations. The
validation BLEU during training, which chooses the kept model (``--keep-best``), decodes
greedily; the test metrics decode as ``--beam-size`` and its options say
(``rnnkit.models.decoding``), and report the greedy BLEU beside them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from rnnkit.data.pair_batches import PairBatches, pairs_by_length
from rnnkit.data.parallel import SentencePair, read_parallel
from rnnkit.data.subwords import SubwordModel
from rnnkit.data.tokenization import moses_detokenizer, moses_tokenizer, whitespace
from rnnkit.data.vocabulary import BEGIN, END, PADDING, UNKNOWN, TokenVocabulary
from rnnkit.errors import UserError
from rnnkit.models.decoding import DecodingConfig, Hypothesis, Specials, beam_search, greedy
from rnnkit.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.translation_commands import TRANSLATE_EVALUATE, TRANSLATE_PREDICT
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

MULTI30K = "../shared/data/multi30k"
MULTI30K_SPLITS = {"train": "train", "dev": "val", "test": "test_2016_flickr"}
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
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

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
        self.decoding.validate()


@dataclass
class TranslateConfig(RunConfig):
    model: Seq2SeqConfig = field(default_factory=lambda: Seq2SeqConfig(
        cell="gru", hidden_size=512, bidirectional=True, embedding_size=256, dropout=0.3, architecture="attention",
        score="additive", input_feeding=True, label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=128, optimizer="adam", lr=1e-3, schedule="constant", epochs=10, max_minutes=0.0, eval_every=250,
        clip_grad_norm=1.0, keep_best=True, precision="fp32"))
    dataset: TranslateData = field(default_factory=TranslateData)


def read_splits(data: TranslateData) -> dict[str, list[SentencePair]]:
    """The train, dev and (where there is one) test pairs of --data-dir or of your own files."""
    if data.train_src:
        own = {"train": (data.train_src, data.train_tgt, "--train-src/--train-tgt"),
               "dev": (data.valid_src, data.valid_tgt, "--valid-src/--valid-tgt"),
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


def sentence_words(text: str, language: str, data: TranslateData, pretokenized: bool) -> list[str]:
    """The words of a sentence as the model reads them: lower-cased with --lowercase, split on spaces if the text is
    tokenised already, else tokenised with --tokenizer."""
    if data.lowercase:
        text = text.lower()
    if pretokenized or data.tokenizer == "whitespace":
        return whitespace(text)
    return moses_tokenizer(language)(text)


@dataclass
class WordPair:
    source: list[str]
    target: list[str]
    where: str


def tokenise(pairs: list[SentencePair], data: TranslateData) -> list[WordPair]:
    """Each pair's words, as the model reads the data files."""
    return [WordPair(sentence_words(pair.source, data.src, data, data.pretokenized),
                     sentence_words(pair.target, data.tgt, data, data.pretokenized), pair.where) for pair in pairs]


@dataclass
class Side:
    """One language of the pair: the units its sentences are read as (words, or subwords), and their vocabulary."""

    vocabulary: TokenVocabulary
    subwords: SubwordModel | None = None

    def units(self, words: list[str]) -> list[str]:
        return words if self.subwords is None else self.subwords.split(words)

    def words(self, units: list[str]) -> list[str]:
        return units if self.subwords is None else self.subwords.decode(units)

    def to_state(self) -> dict:
        return {"vocabulary": self.vocabulary.to_state(),
                "subwords": None if self.subwords is None else self.subwords.to_state()}

    @classmethod
    def from_state(cls, state: dict) -> "Side":
        subwords = None if state["subwords"] is None else SubwordModel.from_state(state["subwords"])
        return cls(TokenVocabulary.from_state(state["vocabulary"]), subwords)


@dataclass
class EncodedPairs:
    sources: list[torch.Tensor]  # (S_i,) source ids
    targets: list[torch.Tensor]  # (T_i + 2,) <bos> target ids <eos>
    source_units: list[list[str]]  # what the ids stand for: for replacing <unk> by a source unit
    references: list[str]  # the target sentences as the metrics read them (words joined by spaces)


class TranslationSession(Session):
    monitor = Monitor("bleu", "max")

    def __init__(self, config: TranslateConfig, source: Side, target: Side, device: torch.device) -> None:
        self.config, self.source, self.target, self.device = config, source, target, device
        vocabulary = target.vocabulary
        self.model = EncoderDecoder(len(source.vocabulary), len(vocabulary), config.model).to(device)
        self.specials = Specials(vocabulary.index[BEGIN], vocabulary.index[END],
                                 (vocabulary.index[PADDING], vocabulary.index[BEGIN]))
        self.decoding = config.dataset.decoding  # rnnkit predict may override it
        self.n_best, self.keep_attention = 1, False  # rnnkit predict's --n-best and --show-attention
        self.batches = None
        self.splits: dict[str, EncodedPairs] = {}

    def task_state(self) -> dict:
        return {"source": self.source.to_state(), "target": self.target.to_state()}

    # ----------------------------------------------------------------- text to ids and back
    def encode(self, pairs: list[WordPair]) -> EncodedPairs:
        encoded = EncodedPairs([], [], [], [])
        for pair in pairs:
            source, target = self.source.units(pair.source), self.target.units(pair.target)
            if not source or not target:
                raise UserError(f"{pair.where}: the pair has no word after tokenisation; remove the line from both files")
            encoded.sources.append(torch.tensor(self.source.vocabulary.encode(source)))
            encoded.targets.append(torch.tensor(self.target.vocabulary.encode([BEGIN, *target, END])))
            encoded.source_units.append(source)
            encoded.references.append(" ".join(pair.target))
        return encoded

    def target_units(self, hypothesis: Hypothesis, source_units: list[str]) -> list[str]:
        """The units a hypothesis wrote; with --replace-unknown, each <unk> becomes the source unit attended to most."""
        units = self.target.vocabulary.decode(hypothesis.tokens)
        if self.decoding.replace_unknown and hypothesis.attention is not None:
            units = [source_units[int(hypothesis.attention[step].argmax())] if unit == UNKNOWN else unit
                     for step, unit in enumerate(units)]
        return units

    # ----------------------------------------------------------------- training and evaluation
    def training_step(self, network, batch, state):
        batch = batch.to(self.device)
        _, loss, _ = network(batch.inputs, lengths=batch.lengths, targets=batch.targets)
        return loss, None, batch.size

    def translate(self, model, sources: list[torch.Tensor], decoding: DecodingConfig,
                  n_best: int = 1) -> list[list[Hypothesis]]:
        """The n-best hypotheses of every source (in the order given), decoded in batches of similar lengths."""
        found: list[list[Hypothesis]] = [[] for _ in sources]
        for indices, batch in pairs_by_length(sources, None, EVALUATION_SENTENCES):
            source = batch.inputs.to(self.device)
            if decoding.beam_size == 1:
                results = [[hypothesis] for hypothesis in greedy(model, source, batch.lengths, decoding, self.specials)]
            else:
                results = beam_search(model, source, batch.lengths, decoding, self.specials, n_best)
            for index, hypotheses in zip(indices, results):
                found[index] = hypotheses
        return found

    def perplexity(self, model, split: EncodedPairs) -> float:
        """exp(mean cross-entropy per target word (or unit), <eos> included) of the reference translations."""
        total, words = 0.0, 0
        for _, batch in pairs_by_length(split.sources, split.targets, EVALUATION_SENTENCES):
            batch = batch.to(self.device)
            _, loss, _ = model(batch.inputs, lengths=batch.lengths, targets=batch.targets)
            count = int((batch.targets[1:] != 0).sum())
            total, words = total + float(loss) * count, words + count
        return math.exp(total / words)

    def scores(self, split: EncodedPairs, hypotheses: list[Hypothesis]) -> dict:
        from sacrebleu.metrics import BLEU, CHRF  # [tasks] extra

        written = [" ".join(self.target.words(self.target_units(best, units)))
                   for best, units in zip(hypotheses, split.source_units)]
        bleu, chrf = BLEU(tokenize="none", force=True), CHRF()  # force: tokenised on purpose, so no warning about it
        return {"bleu": bleu.corpus_score(written, [split.references]).score,
                "chrf": chrf.corpus_score(written, [split.references]).score,
                "bleu_signature": str(bleu.get_signature())}

    def metrics(self, model, data: EncodedPairs, decoding: DecodingConfig) -> dict:
        """BLEU and chrF of the translations ``decoding`` finds, and the references' perplexity."""
        best = [hypotheses[0] for hypotheses in self.translate(model, data.sources, decoding)]
        return {**self.scores(data, best), "perplexity": self.perplexity(model, data)}

    def evaluate(self, model, split: str = "validation") -> dict:
        """The metrics of greedy translations (cheap enough to follow during training)."""
        return self.metrics(model, self.splits[split], replace(self.decoding, beam_size=1))

    def final_metrics(self, data: EncodedPairs, decoding: DecodingConfig) -> dict:
        """The metrics with ``decoding``, and the greedy BLEU and chrF beside them (test_summary, rnnkit evaluate)."""
        self.model.eval()
        with torch.no_grad():
            greedy_metrics = self.metrics(self.model, data, replace(decoding, beam_size=1))
            if decoding.beam_size == 1:
                return {**greedy_metrics, "decoding": "greedy"}
            best = [hypotheses[0] for hypotheses in self.translate(self.model, data.sources, decoding)]
        return {**self.scores(data, best), "perplexity": greedy_metrics["perplexity"],  # the same whatever the search
                "decoding": f"beam {decoding.beam_size}", "bleu_greedy": greedy_metrics["bleu"],
                "chrf_greedy": greedy_metrics["chrf"]}

    def test_summary(self) -> dict:
        return {split: self.final_metrics(data, self.decoding) for split, data in self.splits.items()}

    def labelled_pairs(self, source: str | None, target: str | None) -> EncodedPairs | None:
        """``rnnkit evaluate``'s data: a source file and its reference translations, or the run's test split (None if
        it had none)."""
        if (source is None) != (target is None):
            raise UserError("--source, --target: give both files (a source file and its reference translations)")
        pairs = read_parallel(source, target, "--source/--target") if source else read_splits(self.config.dataset).get("test")
        return None if pairs is None else self.encode(tokenise(pairs, self.config.dataset))

    def report(self, metrics: dict, label: str = "validation") -> str:
        line = f"{label} BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}, perplexity {metrics['perplexity']:.2f}"
        if "decoding" in metrics:
            greedy_bleu = f"; greedy BLEU {metrics['bleu_greedy']:.2f}" if "bleu_greedy" in metrics else ""
            line += f" ({metrics['decoding']}{greedy_bleu}; sacrebleu {metrics['bleu_signature']})"
        return line

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[str, list[str], torch.Tensor]:
        units = self.source.units(sentence_words(text, self.config.dataset.src, self.config.dataset, pretokenized=False))
        if not units:
            raise ValueError("the line is empty; give a sentence to translate")
        return text, units, torch.tensor(self.source.vocabulary.encode(units))

    def input_length(self, parsed: tuple[str, list[str], torch.Tensor]) -> int:
        return len(parsed[1])

    def predict(self, inputs: list[tuple[str, list[str], torch.Tensor]]) -> list[dict]:
        self.model.eval()
        with torch.no_grad():
            found = self.translate(self.model, [ids for _, _, ids in inputs], self.decoding, self.n_best)
        detokenize = moses_detokenizer(self.config.dataset.tgt)
        results = []
        for (text, units, ids), hypotheses in zip(inputs, found):
            written = [self.target_units(hypothesis, units) for hypothesis in hypotheses]
            translations = [detokenize(self.target.words(units_)) for units_ in written]
            result = {"source": text, "translation": translations[0], "score": hypotheses[0].score}
            if bool((ids == self.source.vocabulary.index[UNKNOWN]).all()):
                result["warning"] = "no word of the sentence is in the training vocabulary; the translation is a guess"
            if self.n_best > 1:
                result["hypotheses"] = [{"translation": translation, "score": hypothesis.score}
                                        for translation, hypothesis in zip(translations, hypotheses)]
            if self.keep_attention and hypotheses[0].attention is not None:
                result["attention"] = {"source": units, "target": [*written[0], END],
                                       "weights": hypotheses[0].attention.cpu()}
            results.append(result)
        return results

    def describe(self, result: dict) -> str:
        line = result["translation"] + (f"\t(warning: {result['warning']})" if "warning" in result else "")
        for rank, hypothesis in enumerate(result.get("hypotheses", [])[1:], start=2):
            line += f"\n  {rank}. {hypothesis['translation']}\t({hypothesis['score']:.3f})"
        return line


def build_side(words: list[list[str]], data: TranslateData, option: str) -> Side:
    """One language's units and vocabulary from the words of its training sentences: words (or, with --subwords, the
    pieces of a BPE model learnt from them) seen --min-count times, after the special tokens."""
    subwords = None
    if data.subwords:
        try:
            subwords = SubwordModel.train([" ".join(sentence) for sentence in words], data.subwords)
        except ValueError as error:
            raise UserError(f"--subwords: {option} is too small for {data.subwords} units ({error}); lower --subwords")
    counts = Counter(unit for sentence in words for unit in (subwords.split(sentence) if subwords else sentence))
    return Side(TokenVocabulary.from_counts(counts, data.min_count, specials=(BEGIN, END)), subwords)


class TranslateTask(Task):
    name = "translate"
    summary = "sequence to sequence: encoder-decoder translation (Multi30k from --data-dir, or any parallel corpus)"
    config_class = TranslateConfig
    unit = "sent"
    commands = {"evaluate": TRANSLATE_EVALUATE, "predict": TRANSLATE_PREDICT}

    def start(self, config: TranslateConfig, context: Distributed, device: torch.device) -> TranslationSession:
        data = config.dataset
        splits = read_splits(data)
        words = {split: tokenise(pairs, data) for split, pairs in splits.items()}
        source = build_side([pair.source for pair in words["train"]], data, "the training source")
        target = build_side([pair.target for pair in words["train"]], data, "the training target")
        session = TranslationSession(config, source, target, device)
        session.splits = {"validation": session.encode(words["dev"])}
        if "test" in words:
            session.splits["test"] = session.encode(words["test"])
        train = session.encode(words["train"])
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

