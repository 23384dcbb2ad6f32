"""``ner``: named-entity recognition (many-to-many, aligned) on CoNLL-2003 or any file in the CoNLL column format.

Data: ``--data-dir`` with ``train.txt``, ``valid.txt`` and ``test.txt`` (CoNLL-2003 English
by default; its licence forbids redistribution, so it is read from the shared folder and
never copied), or your own ``--train``/``--dev``/``--test`` files (``rnnkit.data.conll``).
The files' tag scheme is detected (IOB1, BIO or IOBES; ``--scheme`` to say it) and the model
is trained on ``--tag-scheme`` (IOBES by default, as Lample et al. found best); predictions
are reported in the data's own scheme.

Model: BiLSTM-CRF (``rnnkit.models.tagger``) over lower-cased words with digits read as 0
(``--zero-digits``), a case feature and a
character-level encoder of each word. Metrics: entity-level precision, recall and F1 the
conlleval way, overall and per type, by seqeval (both tag sequences read as BIO). The best
validation F1's model is kept (``--keep-best``).

``rnnkit predict`` reads whitespace-tokenised sentences, one per line, and answers each
token's tag and the entities found (type, start, end (exclusive), text).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.conll import TaggedSentence, check_tags, detect_scheme, read_conll
from rnnkit.data.sentence_batches import batches_by_length, collate
from rnnkit.data.tag_schemes import OUTSIDE, SCHEMES, convert, to_bio
from rnnkit.data.token_features import TokenFeatures
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import entity_metrics
from rnnkit.models.crf import transition_constraints
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.labelled_files import EVALUATE_FILE, SplitFiles, lay_out_splits
from rnnkit.tasks.predict import PREDICT, PredictOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

CONLL_FOLDER = "../shared/data/conll2003"
SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
EVALUATION_BATCH = 256


@dataclass
class NERData(SplitFiles):
    """Your own files (--train, --dev, --test) are in the CoNLL column format, as the data folder's."""

    data_dir: str = CONLL_FOLDER
    """Folder with train.txt, valid.txt and test.txt in the CoNLL column format (CoNLL-2003 English)."""
    tag_column: int = -1
    """The column holding the tag, counted from 0 (-1: the last)."""
    scheme: str = "auto"
    """The files' tag scheme: iob1, bio, iobes, or auto (detected from the training file)."""
    tag_scheme: str = "iobes"
    """The scheme the model is trained on (bio or iobes); predictions are reported in the files' scheme."""
    lowercase: bool = True
    """Look words up lower-cased (the case feature and the characters keep the case)."""
    zero_digits: bool = True
    """Look words up with every digit read as 0 (number normalisation, as Lample et al. and NCRF++; the characters
    keep the digits)."""
    min_count: int = 1
    """Keep the training words seen at least this many times; the others read as <unk>."""

    def validate(self) -> None:
        super().validate()
        if self.scheme not in ("auto", *SCHEMES):
            raise UserError(f"--scheme: expected auto or one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if self.tag_scheme not in ("bio", "iobes"):
            raise UserError(f"--tag-scheme: expected bio or iobes, got {self.tag_scheme!r}")
        if self.min_count < 1:
            raise UserError(f"--min-count: expected a positive integer, got {self.min_count}")


@dataclass
class NERConfig(RunConfig):
    model: TaggerConfig = field(default_factory=lambda: TaggerConfig(
        cell="lstm", hidden_size=100, bidirectional=True, embedding_size=100, char_hidden_size=25,
        char_embedding_size=25, case_embedding_size=10, word_dropout=0.2, dropout=0.5, output="crf"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=16, optimizer="adam", lr=2e-3, schedule="constant", epochs=20, max_minutes=0.0, eval_every=500,
        clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: NERData = field(default_factory=NERData)


def read_splits(data: NERData) -> dict[str, list[TaggedSentence]]:
    """The train, validation and (where there is one) test sentences of --data-dir or of --train/--dev/--test."""
    paths = data.split_paths(data.data_dir, SPLIT_FILES)
    return {split: read_conll(path, data.tag_column, option) for split, (path, option) in paths.items()}


@dataclass
class Examples:
    sentences: list[torch.Tensor]  # (L_i, F) token features
    targets: list[torch.Tensor]  # (L_i,) tag ids in the training scheme
    gold: list[list[str]]  # the file's tags, as BIO


class TaggingSession(Session):
    monitor = Monitor("f1", "max")
    unit = "sent"

    def __init__(self, config: NERConfig, features: TokenFeatures, tags: tuple[str, ...], scheme: str,
                 device: torch.device) -> None:
        self.config, self.features, self.tags, self.scheme, self.device = config, features, tags, scheme, device
        char_vocab_size = 0 if features.characters is None else len(features.characters)
        allowed = transition_constraints(list(tags), config.dataset.tag_scheme)
        self.model = SequenceTagger(len(features.words), len(tags), config.model, char_vocab_size, allowed).to(device)
        self.batches = None
        self.splits: dict[str, Examples] = {}

    def task_state(self) -> dict:
        return {"features": self.features.to_state(), "tags": list(self.tags), "scheme": self.scheme}

    def loss_terms(self, batch: Batch) -> int:
        # the CRF's NLL per sentence; a softmax tagger's cross-entropy per token
        return batch.size if self.config.model.output == "crf" else int(batch.lengths.sum())

    def examples(self, sentences: list[TaggedSentence], split: str) -> Examples:
        index = {tag: i for i, tag in enumerate(self.tags)}
        encoded, targets, gold = [], [], []
        for sentence in sentences:
            trained = convert(sentence.tags, self.config.dataset.tag_scheme)
            unknown = next((tag for tag in trained if tag not in index), None)
            if unknown is not None:
                raise UserError(f"{sentence.where}: tag {unknown!r} ({self.config.dataset.tag_scheme}) does not occur in "
                                f"the training split; fix the {split} file or train on data that has it")
            encoded.append(self.features.encode(sentence.tokens))
            targets.append(torch.tensor([index[tag] for tag in trained]))
            gold.append(to_bio(sentence.tags))
        return Examples(encoded, targets, gold)

    def labelled_file(self, path: str | None) -> Examples | None:
        """``rnnkit evaluate``'s data: a CoNLL file, or the run's test split (None if it had none)."""
        data = self.config.dataset
        sentences = read_conll(path, data.tag_column, "--data") if path else read_splits(data).get("test")
        if sentences is not None:
            check_tags(sentences, self.scheme)
            return self.examples(sentences, "evaluation")
        return None

    # ----------------------------------------------------------------- evaluation
    def tag_sentences(self, model, sentences: list[torch.Tensor]) -> list[list[str]]:
        """The predicted tags of each sentence, in the training scheme, in the order given."""
        predicted: list[list[str]] = [[] for _ in sentences]
        for indices, batch in batches_by_length(sentences, None, EVALUATION_BATCH):
            emissions, _, _ = model(batch.inputs.to(self.device), lengths=batch.lengths)
            for index, path in zip(indices, model.decode(emissions, batch.lengths)):
                predicted[index] = [self.tags[tag] for tag in path]
        return predicted

    def evaluate(self, model, examples: Examples | None = None) -> dict:
        """Entity precision, recall and F1 on ``examples`` (default: the validation split), overall and per type."""
        examples = examples or self.splits["validation"]
        predicted = [to_bio(tags) for tags in self.tag_sentences(model, examples.sentences)]
        return entity_metrics(examples.gold, predicted)

    def test_summary(self) -> dict:
        if "test" not in self.splits:
            return {}
        self.model.eval()
        with torch.no_grad():
            return {"test": self.evaluate(self.model, self.splits["test"])}

    def report(self, metrics: dict, label: str = "validation") -> str:
        types = ", ".join(f"{name} {values['f1']:.2%}" for name, values in metrics.get("per_type", {}).items())
        return (f"{label} F1 {metrics['f1']:.2%} (precision {metrics['precision']:.2%}, recall {metrics['recall']:.2%})"
                + (f"; {types}" if types else ""))

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[list[str], torch.Tensor]:
        tokens = text.split()
        if not tokens:
            raise ValueError("the line is empty; give a sentence, its tokens separated by spaces")
        return tokens, self.features.encode(tokens)

    def input_length(self, parsed: tuple[list[str], torch.Tensor]) -> int:
        return len(parsed[0])

    def predict(self, inputs: list[tuple[list[str], torch.Tensor]], options: PredictOptions) -> list[dict]:
        from seqeval.metrics.sequence_labeling import get_entities

        self.model.eval()
        with torch.no_grad():
            predicted = self.tag_sentences(self.model, [encoded for _, encoded in inputs])
        results = []
        for (tokens, _), tags in zip(inputs, predicted):
            bio = to_bio(tags)
            entities = [{"type": kind, "start": start, "end": end + 1, "text": " ".join(tokens[start : end + 1])}
                        for kind, start, end in get_entities(bio)]
            results.append({"tokens": tokens, "tags": convert(bio, self.scheme), "entities": entities})
        return results

    def describe(self, result: dict) -> str:
        tagged = " ".join(token if tag == OUTSIDE else f"{token}/{tag}" for token, tag in zip(result["tokens"], result["tags"]))
        entities = "; ".join(f"{entity['type']}: {entity['text']}" for entity in result["entities"])
        return f"{tagged}\t[{entities}]" if entities else tagged

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation sentences (read from the run's files when restored), padded."""
        examples = self.splits.get("validation") or self.examples(read_splits(self.config.dataset)["validation"],
                                                                   "validation")
        return collate(examples.sentences[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


class NERTask(Task):
    name = "ner"
    summary = "named-entity recognition (many-to-many): BiLSTM-CRF on CoNLL-2003 from --data-dir, or any CoNLL file"
    config_class = NERConfig
    session_class = TaggingSession
    commands = {"evaluate": EVALUATE_FILE, "predict": PREDICT}

    def start(self, config: NERConfig, context: Distributed, device: torch.device) -> TaggingSession:
        data = config.dataset
        splits = read_splits(data)
        scheme = detect_scheme(splits["train"]) if data.scheme == "auto" else data.scheme
        for sentences in splits.values():
            check_tags(sentences, scheme)
        trained_tags = Counter(tag for sentence in splits["train"]
                               for tag in convert(sentence.tags, data.tag_scheme))
        tags = tuple(sorted(trained_tags, key=lambda tag: (tag != OUTSIDE, tag[2:], tag)))  # O first, then by type
        features = TokenFeatures.from_training([sentence.tokens for sentence in splits["train"]], data.lowercase,
                                               data.min_count, characters=config.model.char_hidden_size > 0,
                                               case=config.model.case_embedding_size > 0,
                                               zero_digits=data.zero_digits)
        session = TaggingSession(config, features, tags, scheme, device)
        lay_out_splits(session, splits, config.train, context)
        return session

    def restore(self, config: NERConfig, task_state: dict, device: torch.device) -> TaggingSession:
        return TaggingSession(config, TokenFeatures.from_state(task_state["features"]), tuple(task_state["tags"]),
                              task_state["scheme"], device)
