"""``sst``: sentence classification (many-to-one) on the Stanford Sentiment Treebank or any labelled sentences.

Data: the Stanford Sentiment Treebank in ``--data-dir``, SST-2 or SST-5 (``--subtask``). With
``--train-on phrases`` (the default) the model trains on every distinct labelled phrase of the
training trees (``trees/train.txt``; SST-2 without the neutral ones) and is chosen and tested on the
dev and test trees' whole sentences, as Kim (2014) and Tai et al. (2015) do
(``rnnkit.data.sentiment_trees``); with ``--train-on sentences`` it trains on the sentence-level
files (``stsa.binary.*`` = SST-2, ``stsa.fine.*`` = SST-5). Or the user's own
``--train``/``--dev``/``--test`` files, one sentence and its label per line
(``rnnkit.data.labelled_sentences``). Text is tokenised by
``--tokenizer`` and lower-cased with ``--lowercase``, the same way at training and at
``predict``, so raw mixed-case sentences read like the data. The vocabulary is the training
split's words seen ``--min-count`` times, plus ``<pad>`` and ``<unk>``.

Model: ``rnnkit.models.text_classifier`` (word features, any recurrent core with lengths,
pooling over the valid steps). Optional ``--embeddings FILE`` (GloVe/word2vec text) and
``--init-from RUN`` (a ``wordlm`` run: ``rnnkit.tasks.transfer``). Metrics: accuracy and
macro-F1 from scikit-learn; the best validation accuracy's model is kept (``--keep-best``),
and when training ends its confusion matrices on dev and test are written to the run folder
(``confusion_validation.json``/``.png``, ``confusion_test.*``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data.batch import Batch
from rnnkit.data.embeddings import read_vectors
from rnnkit.data.labelled_sentences import LabelledSentence, check_labels, label_set, read_labelled_sentences
from rnnkit.data.sentence_batches import batches_by_length, collate
from rnnkit.data.sentiment_trees import labelled_phrases, labelled_sentences, read_trees
from rnnkit.data.token_features import TokenFeatures
from rnnkit.data.tokenization import TOKENIZERS
from rnnkit.errors import UserError
from rnnkit.figures import confusion_png
from rnnkit.layers import Recurrent
from rnnkit.metrics import classification_metrics, confusion, majority_share
from rnnkit.models.text_classifier import TextClassifier, TextClassifierConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.labelled_files import EVALUATE_FILE, SplitFiles, lay_out_splits
from rnnkit.tasks.predict import PREDICT, PredictOptions
from rnnkit.tasks.transfer import initialise_from_language_model, merge_vocabularies, read_language_model
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.files import atomic_write_bytes, atomic_write_json
from rnnkit.train.session import Monitor, Session

SST_FOLDER = "../shared/data/sst"
SUBTASKS = {  # --subtask -> the files' prefix and what their labels 0, 1, ... mean
    "binary": ("stsa.binary", ("negative", "positive")),
    "fine": ("stsa.fine", ("very negative", "negative", "neutral", "positive", "very positive")),
}
TREE_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}  # in --data-dir's trees/
TRAIN_ON = ("phrases", "sentences")
EVALUATION_BATCH = 256


@dataclass
class SSTData(SplitFiles):
    """Your own files (--train, --dev, --test) hold 'label sentence' lines, or are .csv/.tsv with a 'label' column."""

    data_dir: str = SST_FOLDER
    """Folder with the SST files stsa.{binary,fine}.{train,dev,test}."""
    subtask: str = "binary"
    """binary (SST-2: negative, positive; neutral sentences left out) or fine (SST-5: five classes)."""
    tokenizer: str = "treebank"
    """treebank (Penn Treebank conventions, as the SST files) or whitespace (already tokenised text)."""
    lowercase: bool = True
    """Look words up lower-cased (the SST files are lower-case)."""
    min_count: int = 1
    """Keep the training words seen at least this many times; the others read as <unk>."""
    embeddings: str | None = None
    """Pretrained word vectors (GloVe/word2vec text format) to start the embeddings from; width --embedding-size."""
    init_from: str | None = None
    """A wordlm run folder to start the embeddings and recurrent layers from (vocabularies merged)."""
    train_on: str = "phrases"
    """phrases: every distinct labelled phrase of the treebank's training trees (--data-dir's trees/; SST-2
    without the neutral ones), tested on whole sentences; sentences: the sentence-level files only. Your own
    --train files hold sentences."""

    def validate(self) -> None:
        super().validate()
        if self.train_on not in TRAIN_ON:
            raise UserError(f"--train-on: expected one of {', '.join(TRAIN_ON)}, got {self.train_on!r}")
        if self.subtask not in SUBTASKS:
            raise UserError(f"--subtask: expected one of {', '.join(SUBTASKS)}, got {self.subtask!r}")
        if self.tokenizer not in TOKENIZERS:
            raise UserError(f"--tokenizer: expected one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}")
        if self.min_count < 1:
            raise UserError(f"--min-count: expected a positive integer, got {self.min_count}")


@dataclass
class SSTConfig(RunConfig):
    model: TextClassifierConfig = field(default_factory=lambda: TextClassifierConfig(
        cell="lstm", hidden_size=150, bidirectional=True, embedding_size=300, dropout=0.5, word_dropout=0.2,
        pooling="max"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=32, optimizer="adam", lr=2e-3, schedule="constant", epochs=10, max_minutes=0.0, eval_every=100,
        patience=10, clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: SSTData = field(default_factory=SSTData)

    @classmethod
    def upgrade(cls, values: dict) -> dict:
        """Runs from before --train-on trained on sentences: a saved configuration without it keeps doing so."""
        dataset = values.get("dataset")
        saved = isinstance(dataset, dict) and {"data_dir", "subtask", "tokenizer", "min_count"} <= dataset.keys()
        if saved and "train_on" not in dataset:
            values = {**values, "dataset": {**dataset, "train_on": "sentences"}}
        return values


def sentence_tokens(sentence: LabelledSentence, tokenize) -> list[str]:
    """The tokens a sentence is read as: a tree's leaves as the treebank splits them, else ``tokenize``'s. The
    vocabulary is built from these too, so that no training token is unknown to it."""
    return list(sentence.tokens) if sentence.tokens else tokenize(sentence.text)


def read_splits(data: SSTData) -> dict[str, list[LabelledSentence]]:
    """The train, validation and (where there is one) test examples: the treebank's phrases and sentences
    (--train-on phrases), the sentence files of --data-dir, or --train/--dev/--test."""
    if data.train_on == "phrases" and not data.train:
        return read_tree_splits(data)
    prefix = SUBTASKS[data.subtask][0]
    names = {"train": f"{prefix}.train", "validation": f"{prefix}.dev", "test": f"{prefix}.test"}
    paths = data.split_paths(data.data_dir, names)
    return {split: read_labelled_sentences(path, option) for split, (path, option) in paths.items()}


def read_tree_splits(data: SSTData) -> dict[str, list[LabelledSentence]]:
    """Every distinct labelled phrase of the training trees, and the dev and test trees' sentences."""
    if not Path(data.data_dir).is_dir():
        raise UserError(f"--data-dir: {data.data_dir} is not a folder; pass the folder holding the treebank's trees/ "
                        "(or your own files with --train FILE --dev FILE [--test FILE])")
    folder = Path(data.data_dir) / "trees"
    if not all((folder / name).is_file() for name in TREE_FILES.values()):
        raise UserError(f"--train-on phrases: {folder} does not hold the treebank's trees ({', '.join(TREE_FILES.values())}); "
                        "pass the folder that holds trees/ with --data-dir, or --train-on sentences for its stsa.* files")
    trees = {split: read_trees(folder / name, "--data-dir") for split, name in TREE_FILES.items()}
    label_of = tree_label(data.subtask)
    return {"train": labelled_phrases(trees["train"], label_of),
            "validation": labelled_sentences(trees["validation"], label_of),
            "test": labelled_sentences(trees["test"], label_of)}


def tree_label(subtask: str):
    """A tree's 0-4 label as the subtask's files write it: SST-5 as it is; SST-2 negative (0, 1) as 0, positive
    (3, 4) as 1, and neutral (2) left out, as stsa.binary.* leaves it out."""
    if subtask == "fine":
        return str
    return lambda label: None if label == 2 else str(int(label > 2))


@dataclass
class Examples:
    sentences: list[torch.Tensor]  # (L_i, F) token features
    targets: list[torch.Tensor]  # class ids, 0-dimensional


class TextClassificationSession(Session):
    monitor = Monitor("accuracy", "max")
    unit = "sent"

    def __init__(self, config: SSTConfig, features: TokenFeatures, labels: tuple[str, ...], label_names: tuple[str, ...],
                 device: torch.device) -> None:
        self.config, self.features, self.labels, self.label_names, self.device = config, features, labels, label_names, device
        char_vocab_size = 0 if features.characters is None else len(features.characters)
        self.model = TextClassifier(len(features.words), len(labels), config.model, char_vocab_size).to(device)
        self.tokenize = TOKENIZERS[config.dataset.tokenizer]
        self.batches = None
        self.splits: dict[str, Examples] = {}  # validation, test (where given)
        self.confusion: dict[str, list[list[int]]] = {}  # filled by test_summary, written by write_files

    def task_state(self) -> dict:
        return {"features": self.features.to_state(), "labels": list(self.labels), "label_names": list(self.label_names)}

    def examples(self, sentences: list[LabelledSentence], split: str = "") -> Examples:
        """The sentences as token features and class ids (their labels are checked against the split's already)."""
        encoded, targets = [], []
        for sentence in sentences:
            tokens = sentence_tokens(sentence, self.tokenize)
            if not tokens:
                raise UserError(f"{sentence.where}: the sentence has no token after tokenisation; remove the line")
            encoded.append(self.features.encode(tokens))
            targets.append(torch.tensor(self.labels.index(sentence.label)))
        return Examples(encoded, targets)

    def labelled_file(self, path: str | None) -> Examples | None:
        """``rnnkit evaluate``'s data: a labelled file, or the run's test split (None if it had none)."""
        sentences = read_labelled_sentences(path, "--data") if path else read_splits(self.config.dataset).get("test")
        if sentences is not None:
            check_labels(sentences, self.labels, "evaluation")
            return self.examples(sentences)
        return None

    # ----------------------------------------------------------------- evaluation
    def predictions(self, model, examples: Examples) -> tuple[list[int], list[int], float]:
        """Gold and predicted class ids of every sentence (in length order) and the mean cross-entropy."""
        gold, predicted, loss = [], [], 0.0
        for _, batch in batches_by_length(examples.sentences, examples.targets, EVALUATION_BATCH):
            batch = batch.to(self.device)
            logits, _, _ = model(batch.inputs, lengths=batch.lengths)
            loss += float(F.cross_entropy(logits.float(), batch.targets, reduction="sum"))
            gold += batch.targets.tolist()
            predicted += logits.argmax(-1).tolist()
        return gold, predicted, loss / len(gold)

    def evaluate(self, model, examples: Examples | None = None) -> dict[str, float]:
        """Loss, accuracy and macro-F1 on ``examples`` (default: the validation split)."""
        gold, predicted, loss = self.predictions(model, examples or self.splits["validation"])
        return {"loss": loss, **classification_metrics(gold, predicted, len(self.labels))}

    def test_summary(self) -> dict:
        self.model.eval()
        summary = {}
        with torch.no_grad():
            for split, examples in self.splits.items():
                gold, predicted, loss = self.predictions(self.model, examples)
                self.confusion[split] = confusion(gold, predicted, len(self.labels))
                if split == "test":
                    summary["test"] = {"loss": loss, **classification_metrics(gold, predicted, len(self.labels))}
                    summary["baseline"] = {"accuracy": majority_share(gold),
                                           "what": "always answer the test set's most frequent class"}
        return summary

    def write_files(self, folder) -> list:
        """The confusion matrices of test_summary, as JSON and PNG (rows: true class, columns: predicted)."""
        written = []
        for split, matrix in self.confusion.items():
            json_path, png_path = folder / f"confusion_{split}.json", folder / f"confusion_{split}.png"
            atomic_write_json(json_path, {"labels": list(self.label_names), "rows": "true", "columns": "predicted",
                                          "matrix": matrix})
            atomic_write_bytes(png_path, confusion_png(matrix, list(self.label_names),
                                                       f"{split} ({sum(map(sum, matrix))} sentences)"))
            written += [json_path, png_path]
        return written

    def report(self, metrics: dict[str, float], label: str = "validation") -> str:
        return f"{label} accuracy {metrics['accuracy']:.2%}, macro-F1 {metrics['macro_f1']:.4f}, loss {metrics['loss']:.4f}"

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[str, torch.Tensor]:
        tokens = self.tokenize(text)
        if not tokens:
            raise ValueError("the line is empty; give a sentence to classify")
        return text, self.features.encode(tokens)

    def input_length(self, parsed: tuple[str, torch.Tensor]) -> int:
        return parsed[1].shape[0]

    def predict(self, inputs: list[tuple[str, torch.Tensor]], options: PredictOptions) -> list[dict]:
        batch = collate([encoded for _, encoded in inputs], None)  # predict_inputs has grouped them by length
        self.model.eval()
        with torch.no_grad():
            logits, _, _ = self.model(batch.inputs.to(self.device), lengths=batch.lengths)
        results = []
        for (text, _), row in zip(inputs, torch.softmax(logits.float(), dim=-1).cpu()):
            probabilities = {name: float(p) for name, p in zip(self.label_names, row)}
            results.append({"text": text, "label": self.label_names[int(row.argmax())], "probabilities": probabilities})
        return results

    def describe(self, result: dict) -> str:
        shown = ", ".join(f"{name} {p:.3f}" for name, p in result["probabilities"].items())
        return f"{result['label']}\t({shown})\t{result['text']}"

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation sentences (read from the run's files when restored), padded."""
        examples = self.splits.get("validation") or self.examples(read_splits(self.config.dataset)["validation"])
        return collate(examples.sentences[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


class SSTTask(Task):
    name = "sst"
    summary = "sentence classification (many-to-one): SST-2/SST-5 sentiment from --data-dir, or your own labelled sentences"
    config_class = SSTConfig
    session_class = TextClassificationSession
    commands = {"evaluate": EVALUATE_FILE, "predict": PREDICT}

    def start(self, config: SSTConfig, context: Distributed, device: torch.device) -> TextClassificationSession:
        data = config.dataset
        splits = read_splits(data)
        labels = label_set(splits["train"])
        if len(labels) < 2:
            raise UserError(f"{splits['train'][0].where}: the training split has one label ({labels[0]!r}); a classifier "
                            "needs at least two")
        for split in ("validation", "test"):
            if split in splits:
                check_labels(splits[split], labels, split)
        tokenize = TOKENIZERS[data.tokenizer]
        features = TokenFeatures.from_training([sentence_tokens(sentence, tokenize) for sentence in splits["train"]],
                                               data.lowercase, data.min_count, characters=config.model.char_hidden_size > 0,
                                               case=config.model.case_embedding_size > 0)
        language_model = read_language_model(data.init_from) if data.init_from else None
        if language_model is not None:
            features = features.with_words(merge_vocabularies(features.words, language_model))
        vocabulary = features.words
        session = TextClassificationSession(config, features, labels, label_names(data, labels), device)
        model = session.model
        if data.embeddings:
            vectors = read_vectors(data.embeddings, vocabulary.index, config.model.embedding_size)
            with torch.no_grad():
                for i, vector in vectors.rows.items():
                    model.features.embedding.weight[i] = vector.to(model.features.embedding.weight)
            print(f"--embeddings {data.embeddings}: vectors for {vectors.coverage(len(vocabulary))}", file=sys.stderr)
        if language_model is not None:
            initialise_from_language_model(model.features.embedding, model.rnn, vocabulary, language_model, config.model.cell)
        lay_out_splits(session, splits, config.train, context)
        what = "phrases" if data.train_on == "phrases" and not data.train else "sentences"
        print(f"sst: {len(splits['train']):,} training {what}, "
              + ", ".join(f"{len(splits[split]):,} {split} sentences" for split in ("validation", "test") if split in splits),
              file=sys.stderr)
        return session

    def restore(self, config: SSTConfig, task_state: dict, device: torch.device) -> TextClassificationSession:
        return TextClassificationSession(config, TokenFeatures.from_state(task_state["features"]),
                                         tuple(task_state["labels"]), tuple(task_state["label_names"]), device)


def label_names(data: SSTData, labels: tuple[str, ...]) -> tuple[str, ...]:
    """What each label means: SST's names for its 0, 1, ... from --data-dir; your own labels as they are."""
    if data.train:
        return labels
    names = SUBTASKS[data.subtask][1]
    return tuple(names[int(label)] for label in labels)
