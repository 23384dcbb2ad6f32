"""``ner``: named-entity recognition (many-to-many, aligned) on CoNLL-2003 or any file in the CoNLL column format.

Data: ``--data-dir`` with ``train.txt``, ``valid.txt`` and ``test.txt`` (CoNLL-2003 English
by default; its licence forbids redistribution, so it is read from the shared folder and
never copied), or your own ``--train``/``--dev``/``--test`` files (``rnnkit.data.conll``).
The files' tag scheme is detected (IOB1, BIO or IOBES; ``--scheme`` to say it) and the model
is trained on ``--tag-scheme`` (IOBES by default, as Lample et al. found best); predictions
are reported in the data's own scheme.

Model: BiLSTM-CRF (``rnnkit.models.tagger``) over lower-cased words, a case feature and a
character-level encoder of each word. Metrics: entity-level precision, recall and F1 the
conlleval way, overall and per type, by seqeval (both tag sequences read as BIO). The best
validation F1's model is kept (``--keep-best``).

``rnnkit predict`` reads whitespace-tokenised sentences, one per line, and answers each
token's tag and the entities found (type, start, end (exclusive), text).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.data.conll import TaggedSentence, check_tags, detect_scheme, read_conll
from rnnkit.data.sentence_batches import SentenceBatches, batches_by_length
from rnnkit.data.tag_schemes import OUTSIDE, SCHEMES, convert, to_bio
from rnnkit.data.token_features import TokenFeatures
from rnnkit.data.vocabulary import TokenVocabulary
from rnnkit.errors import UserError
from rnnkit.models.crf import transition_constraints
from rnnkit.models.tagger import SequenceTagger, TaggerConfig
from rnnkit.tasks.base import CheckpointOptions, Command, RunConfig, Task
from rnnkit.tasks.predict import PREDICT
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

CONLL_FOLDER = "../shared/data/conll2003"
SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
EVALUATION_BATCH = 256


@dataclass
class NERData:
    data_dir: str = CONLL_FOLDER
    """Folder with train.txt, valid.txt and test.txt in the CoNLL column format (CoNLL-2003 English)."""
    train: str | None = None
    """Your own training file in the CoNLL column format, instead of --data-dir."""
    dev: str | None = None
    """Your own validation file (with --train)."""
    test: str | None = None
    """Your own test file (with --train; optional)."""
    tag_column: int = -1
    """The column holding the tag, counted from 0 (-1: the last)."""
    scheme: str = "auto"
    """The files' tag scheme: iob1, bio, iobes, or auto (detected from the training file)."""
    tag_scheme: str = "iobes"
    """The scheme the model is trained on (bio or iobes); predictions are reported in the files' scheme."""
    lowercase: bool = True
    """Look words up lower-cased (the case feature and the characters keep the case)."""
    min_count: int = 1
    """Keep the training words seen at least this many times; the others read as <unk>."""

    def validate(self) -> None:
        if self.scheme not in ("auto", *SCHEMES):
            raise UserError(f"--scheme: expected auto or one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if self.tag_scheme not in ("bio", "iobes"):
            raise UserError(f"--tag-scheme: expected bio or iobes, got {self.tag_scheme!r}")
        if self.min_count < 1:
            raise UserError(f"--min-count: expected a positive integer, got {self.min_count}")
        if (self.dev or self.test) and not self.train:
            raise UserError("--dev/--test: give --train too (your own data), or none of them to use --data-dir")
        if self.train and not self.dev:
            raise UserError("--train: give a validation file with --dev as well (it chooses the best model)")


@dataclass
class NERConfig(RunConfig):
    model: TaggerConfig = field(default_factory=lambda: TaggerConfig(
        cell="lstm", hidden_size=100, bidirectional=True, embedding_size=100, char_hidden_size=25,
        char_embedding_size=25, case_embedding_size=10, word_dropout=0.05, dropout=0.5, output="crf"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=16, optimizer="adam", lr=2e-3, schedule="constant", epochs=12, max_minutes=0.0, eval_every=500,
        clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: NERData = field(default_factory=NERData)


def read_splits(data: NERData) -> dict[str, list[TaggedSentence]]:
    if data.train:
        files = {"train": (data.train, "--train"), "dev": (data.dev, "--dev")}
        if data.test:
            files["test"] = (data.test, "--test")
        return {split: read_conll(path, data.tag_column, option) for split, (path, option) in files.items()}
    folder = Path(data.data_dir)
    if not folder.is_dir():
        raise UserError(f"--data-dir: {folder} is not a folder; pass the folder holding train.txt, valid.txt and "
                        "test.txt (CoNLL column format), or your own files with --train FILE --dev FILE [--test FILE]")
    splits = {}
    for split, name in SPLIT_FILES.items():
        if not (folder / name).is_file():
            raise UserError(f"--data-dir: {folder} has no {name}; it needs train.txt, valid.txt and test.txt "
                            "(or pass your own files with --train/--dev/--test)")
        splits[split] = read_conll(folder / name, data.tag_column, "--data-dir")
    return splits


@dataclass
class EncodedSplit:
    sentences: list[torch.Tensor]  # (L_i, F) token features
    targets: list[torch.Tensor]  # (L_i,) tag ids in the training scheme
    gold: list[list[str]]  # the file's tags, as BIO


class TaggingSession(Session):
    monitor = Monitor("f1", "max")

    def __init__(self, config: NERConfig, features: TokenFeatures, tags: tuple[str, ...], scheme: str,
                 device: torch.device) -> None:
        self.config, self.features, self.tags, self.scheme, self.device = config, features, tags, scheme, device
        char_vocab_size = 0 if features.characters is None else len(features.characters)
        allowed = transition_constraints(list(tags), config.dataset.tag_scheme)
        self.model = SequenceTagger(len(features.words), len(tags), config.model, char_vocab_size, allowed).to(device)
        self.batches = None
        self.splits: dict[str, EncodedSplit] = {}

    def task_state(self) -> dict:
        return {"features": self.features.to_state(), "tags": list(self.tags), "scheme": self.scheme}

    def encode(self, sentences: list[TaggedSentence], split: str) -> EncodedSplit:
        index = {tag: i for i, tag in enumerate(self.tags)}
        encoded, targets, gold = [], [], []
        for sentence in sentences:
            trained = convert(sentence.tags, self.scheme, self.config.dataset.tag_scheme)
            unknown = next((tag for tag in trained if tag not in index), None)
            if unknown is not None:
                raise UserError(f"{sentence.where}: tag {unknown!r} ({self.config.dataset.tag_scheme}) does not occur in "
                                f"the training split; fix the {split} file or train on data that has it")
            encoded.append(self.features.encode(sentence.tokens))
            targets.append(torch.tensor([index[tag] for tag in trained]))
            gold.append(to_bio(sentence.tags))
        return EncodedSplit(encoded, targets, gold)

    # ----------------------------------------------------------------- training and evaluation
    def training_step(self, network, batch, state):
        batch = batch.to(self.device)
        _, loss, _ = network(batch.inputs, lengths=batch.lengths, targets=batch.targets)
        return loss, None, batch.size

    def tag_sentences(self, model, sentences: list[torch.Tensor]) -> list[list[str]]:
        """The predicted tags of each sentence, in the training scheme, in the order given."""
        predicted: list[list[str]] = [[] for _ in sentences]
        for indices, batch in batches_by_length(sentences, None, EVALUATION_BATCH):
            emissions, _, _ = model(batch.inputs.to(self.device), lengths=batch.lengths)
            for index, path in zip(indices, model.decode(emissions, batch.lengths)):
                predicted[index] = [self.tags[tag] for tag in path]
        return predicted

    def evaluate(self, model, split: str = "validation") -> dict:
        from seqeval.metrics import classification_report  # [tasks] extra

        data = self.splits[split]
        predicted = [to_bio(tags) for tags in self.tag_sentences(model, data.sentences)]
        report = classification_report(data.gold, predicted, output_dict=True, zero_division=0)
        overall = report["micro avg"]
        types = sorted(name for name in report if not name.endswith(" avg"))
        return {"f1": float(overall["f1-score"]), "precision": float(overall["precision"]),
                "recall": float(overall["recall"]),
                "per_type": {name: {"f1": float(report[name]["f1-score"]), "precision": float(report[name]["precision"]),
                                    "recall": float(report[name]["recall"]), "support": int(report[name]["support"])}
                             for name in types}}

    def test_summary(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            return {split: self.evaluate(self.model, split) for split in self.splits}

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

    def predict(self, inputs: list[tuple[list[str], torch.Tensor]]) -> list[dict]:
        from seqeval.metrics.sequence_labeling import get_entities

        self.model.eval()
        with torch.no_grad():
            predicted = self.tag_sentences(self.model, [encoded for _, encoded in inputs])
        results = []
        for (tokens, _), tags in zip(inputs, predicted):
            bio = to_bio(tags)
            entities = [{"type": kind, "start": start, "end": end + 1, "text": " ".join(tokens[start : end + 1])}
                        for kind, start, end in get_entities(bio)]
            results.append({"tokens": tokens, "tags": convert(bio, "bio", self.scheme), "entities": entities})
        return results

    def describe(self, result: dict) -> str:
        tagged = " ".join(token if tag == OUTSIDE else f"{token}/{tag}" for token, tag in zip(result["tokens"], result["tags"]))
        entities = "; ".join(f"{entity['type']}: {entity['text']}" for entity in result["entities"])
        return f"{tagged}\t[{entities}]" if entities else tagged


@dataclass
class EvaluateOptions(CheckpointOptions):
    data: str | None = None
    """A file in the CoNLL column format (the run's --tag-column) to evaluate on (default: the run's test split)."""


def evaluate_file(session: TaggingSession, options: EvaluateOptions) -> None:
    """``rnnkit evaluate``: entity-level F1 on a CoNLL file, or on the run's own test split."""
    data = session.config.dataset
    if options.data is not None:
        sentences = read_conll(options.data, data.tag_column, "--data")
    else:
        sentences = read_splits(data).get("test")
        if sentences is None:
            raise UserError("the run was trained without --test: pass a CoNLL file with --data")
    check_tags(sentences, session.scheme)
    session.splits["evaluation"] = session.encode(sentences, "evaluation")
    session.model.eval()
    with torch.no_grad():
        print(session.report(session.evaluate(session.model, "evaluation"), label="evaluation"))


class NERTask(Task):
    name = "ner"
    summary = "named-entity recognition (many-to-many): BiLSTM-CRF on CoNLL-2003 from --data-dir, or any CoNLL file"
    config_class = NERConfig
    unit = "sent"
    commands = {"evaluate": Command("entity-level F1 on a CoNLL file (--data) or the run's test split", EvaluateOptions,
                                    evaluate_file),
                "predict": PREDICT}

    def start(self, config: NERConfig, context: Distributed, device: torch.device) -> TaggingSession:
        data = config.dataset
        splits = read_splits(data)
        scheme = detect_scheme(splits["train"]) if data.scheme == "auto" else data.scheme
        for sentences in splits.values():
            check_tags(sentences, scheme)
        trained_tags = Counter(tag for sentence in splits["train"]
                               for tag in convert(sentence.tags, scheme, data.tag_scheme))
        tags = tuple(sorted(trained_tags, key=lambda tag: (tag != OUTSIDE, tag[2:], tag)))  # O first, then by type
        words = Counter(token.lower() if data.lowercase else token for sentence in splits["train"] for token in sentence.tokens)
        characters = None
        if config.model.char_hidden_size:
            characters = TokenVocabulary.from_counts(Counter("".join(token for sentence in splits["train"]
                                                                     for token in sentence.tokens)))
        features = TokenFeatures(TokenVocabulary.from_counts(words, data.min_count), data.lowercase, characters,
                                 case=config.model.case_embedding_size > 0)
        session = TaggingSession(config, features, tags, scheme, device)
        session.splits = {"validation": session.encode(splits["dev"], "dev")}
        if "test" in splits:
            session.splits["test"] = session.encode(splits["test"], "test")
        train = session.encode(splits["train"], "train")
        if len(train.sentences) < config.train.batch_size * context.world_size:
            raise UserError(f"--batch-size: {len(train.sentences)} training sentences cannot fill a batch of "
                            f"{config.train.batch_size} x {context.world_size} processes; lower --batch-size")
        session.batches = SentenceBatches(train.sentences, train.targets, config.train.batch_size, config.train.seed,
                                          context.rank, context.world_size)
        return session

    def restore(self, config: NERConfig, task_state: dict, device: torch.device) -> TaggingSession:
        return TaggingSession(config, TokenFeatures.from_state(task_state["features"]), tuple(task_state["tags"]),
                              task_state["scheme"], device)
