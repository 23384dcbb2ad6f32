"""The sentence-classification task end to end on a small sample written here: training through the CLI,
scikit-learn's metrics recomputed, confusion matrices, predict in both formats and in input order, the Python
API, pretrained vectors, transfer from a word-level language model, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from cli_helpers import assert_one_line_error, rnnkit_here, tree_digest, weights
from rnnkit.tasks import get_task, load_run, restore_session
from rnnkit.train.distributed import SINGLE_PROCESS

POSITIVE = ["a good film", "great acting and a good story", "good , good , good", "a great cast", "simply great"]
NEGATIVE = ["a bad film", "awful acting and a bad story", "bad , bad , bad", "an awful cast", "simply awful"]
SMALL = ["--hidden-size", "12", "--embedding-size", "8", "--batch-size", "4", "--max-minutes", "0", "--epochs", "0",
         "--eval-every", "10", "--lr", "0.02", "--dropout", "0"]


def write_split(path, repeats: int, fine: bool = False):
    lines = []
    for i in range(repeats):
        lines.append(f"{4 if fine else 1} {POSITIVE[i % 5]}\n")
        lines.append(f"{0} {NEGATIVE[i % 5]}\n")
        if fine:
            lines.append(f"2 the film is {i} minutes long\n")
    path.write_text("".join(lines))
    return path


def tree_line(text: str, label: int) -> str:
    """A right-branching treebank tree of ``text``: every phrase of two words or more labelled ``label``, words 2."""
    words = text.split()
    tree = f"(2 {words[-1]})"
    for word in reversed(words[:-1]):
        tree = f"({label} (2 {word}) {tree})"
    return tree


def write_sst(folder, fine: bool = False):
    """The sentence files of one subtask (stsa.*), and the same sentences as the treebank's trees (trees/)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trees").mkdir(exist_ok=True)
    prefix = "stsa.fine" if fine else "stsa.binary"
    for split, repeats, tree_file in (("train", 20, "train.txt"), ("dev", 5, "dev.txt"), ("test", 5, "test.txt")):
        write_split(folder / f"{prefix}.{split}", repeats, fine)
        lines = (folder / f"{prefix}.{split}").read_text().splitlines()
        trees = [tree_line(text, {"1": 4}.get(label, int(label))) for label, _, text in (line.partition(" ") for line in lines)]
        (folder / "trees" / tree_file).write_text("\n".join(trees) + "\n")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sst")
    run = folder / "run"
    result = rnnkit_here("train", "sst", "--data-dir", write_sst(folder / "data"), *SMALL, "--max-steps", "40",
                    "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def test_training_learns_the_sample_and_reports_sklearn_metrics(run):
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] == 1.0 and summary["validation"]["macro_f1"] == 1.0
    assert summary["baseline"]["accuracy"] == 0.5
    matrix = json.loads((run / "confusion_test.json").read_text())
    assert matrix["labels"] == ["negative", "positive"] and matrix["matrix"] == [[5, 0], [0, 5]]
    assert (run / "confusion_test.png").stat().st_size > 1000 and (run / "confusion_validation.png").exists()
    assert (run / "best" / "checkpoint.json").exists()
    assert summary["best_validation_accuracy"] == summary["validation"]["accuracy"]


def test_evaluate_scores_the_test_split_or_a_labelled_file(run, tmp_path):
    summary = json.loads((run / "summary.json").read_text())
    result = rnnkit_here("evaluate", "--checkpoint", run)
    assert result.stdout.strip() == f"evaluation accuracy {summary['test']['accuracy']:.2%}, macro-F1 " \
        f"{summary['test']['macro_f1']:.4f}, loss {summary['test']['loss']:.4f}"
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("1 a good film\n1 a bad film\n0 simply awful\n0 simply great\n")  # two right, two wrong
    assert "evaluation accuracy 50.00%" in rnnkit_here("evaluate", "--checkpoint", run, "--data", mixed).stdout
    mixed.write_text("1 a good film\n3 odd\n")
    assert_one_line_error(rnnkit_here("evaluate", "--checkpoint", run, "--data", mixed), "mixed.txt line 2", "'3'")


def test_metrics_are_scikit_learns_on_the_models_own_predictions(tmp_path):
    result = rnnkit_here("train", "sst", "--data-dir", write_sst(tmp_path / "data", fine=True), "--subtask", "fine",
                         *SMALL, "--max-steps", "3", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    _, session = restore_session(str(tmp_path / "run"))
    assert session.label_names == ("very negative", "neutral", "very positive")  # the labels the data has
    lines = (tmp_path / "data" / "stsa.fine.test").read_text().splitlines()
    results = load_run(str(tmp_path / "run")).predict([line.partition(" ")[2] for line in lines])
    gold = [session.label_names[session.labels.index(line.split()[0])] for line in lines]
    predicted = [result["label"] for result in results]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["accuracy"] == pytest.approx(accuracy_score(gold, predicted))
    assert summary["test"]["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="macro", labels=list(session.label_names), zero_division=0))


def _probabilities(run, texts: list[str]) -> torch.Tensor:
    """Class probabilities computed here, one sentence at a time, from the tokens the data would have."""
    _, session = restore_session(str(run))
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = session.features.encode(text.split())
            logits, _, _ = session.model.eval()(encoded.unsqueeze(1), lengths=torch.tensor([encoded.shape[0]]))
            rows.append(torch.softmax(logits[0], -1))
    return torch.stack(rows)


def test_predict_tokenises_raw_mixed_case_text_like_the_data(run):
    result = rnnkit_here("predict", "--checkpoint", run, "A GOOD film!", "Simply awful.", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [obj["text"] for obj in objects] == ["A GOOD film!", "Simply awful."]
    assert [obj["label"] for obj in objects] == ["positive", "negative"]
    expected = _probabilities(run, ["a good film !", "simply awful ."])
    for obj, row in zip(objects, expected, strict=True):
        assert obj["probabilities"] == pytest.approx({"negative": float(row[0]), "positive": float(row[1])}, abs=1e-5)
    text = rnnkit_here("predict", "--checkpoint", run, "a great cast")
    assert text.stdout.startswith("positive\t(negative 0.") and text.stdout.rstrip().endswith("a great cast")
    assert "inputs/s" in text.stderr


def test_predict_answers_in_input_order_whatever_the_batching_and_errors_in_place(run, tmp_path):
    texts = [f"{'a good ' * (i % 7)}film" if i % 3 else f"an awful {'bad ' * (i % 5)}story" for i in range(40)]
    texts[17] = "   "
    texts[25] = "zzz qqq " * 80  # unknown words only, longer than anything in training
    file = tmp_path / "inputs.txt"
    file.write_text("\n".join(texts) + "\n")
    outputs = [rnnkit_here("predict", "--checkpoint", run, "--file", file, "--format", "jsonl", "--batch-size", size)
               for size in ("3", "1000")]
    assert_one_line_error(outputs[0], "1 of 40 inputs", f"{file} line 18", "empty")
    objects = [json.loads(line) for line in outputs[0].stdout.splitlines()]
    others = [json.loads(line) for line in outputs[1].stdout.splitlines()]
    assert [obj.get("text") for obj in objects] == [obj.get("text") for obj in others]
    for obj, other in zip(objects, others):  # batches padded differently: equal up to float rounding
        assert obj.get("probabilities") == pytest.approx(other.get("probabilities"), abs=1e-5)
    assert "error" in objects[17] and objects[25]["text"] == texts[25]
    readable = [i for i in range(40) if i != 17]
    expected = _probabilities(run, [texts[i] for i in readable])
    for i, row in zip(readable, expected):
        assert objects[i]["text"] == texts[i]
        assert objects[i]["probabilities"]["positive"] == pytest.approx(float(row[1]), abs=1e-5)


def test_user_csv_data_and_pretrained_vectors(tmp_path):
    def table(path, repeats):
        rows = [f'"{POSITIVE[i % 5]}",yes\n"{NEGATIVE[i % 5]}",no\n' for i in range(repeats)]
        path.write_text("sentence,label\n" + "".join(rows))
        return path

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good " + " ".join(["1"] * 8) + "\nBAD " + " ".join(["-1"] * 8) + "\nunseen " + "0 " * 7 + "0\n")
    run = tmp_path / "run"
    result = rnnkit_here("train", "sst", "--train", table(tmp_path / "train.csv", 20), "--dev", table(tmp_path / "dev.csv", 3),
                         "--embeddings", vectors, *SMALL, "--max-steps", "2", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "--embeddings" in result.stderr and "vectors for 2 of" in result.stderr  # good, and bad lower-cased
    _, session = restore_session(str(run))
    assert session.label_names == ("no", "yes") and "test" not in json.loads((run / "summary.json").read_text())
    start = weights(run)  # after 2 small steps the rows are still near the vectors
    good = session.features.words.index["good"]
    assert torch.allclose(start["features.embedding.weight"][good], torch.ones(8), atol=0.1)


def _write_wordlm_run(tmp_path, hidden: int = 12, embedding: int = 8):
    folder = tmp_path / "lm-data"
    folder.mkdir()
    text = "".join(f" {POSITIVE[i % 5]} \n {NEGATIVE[i % 5]} \n a cast of extraordinary actors \n" for i in range(30))
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text(text)
    run = tmp_path / "lm"
    result = rnnkit_here("train", "wordlm", "--data-dir", folder, "--hidden-size", str(hidden), "--embedding-size",
                         str(embedding), "--num-layers", "1", "--batch-size", "4", "--max-minutes", "0", "--epochs", "0",
                         "--max-steps", "3", "--out", run)
    assert result.returncode == 0, result.stderr
    return run


@pytest.mark.parametrize("bidirectional", [False, True])
def test_init_from_a_language_model_copies_its_weights_and_merges_the_vocabularies(tmp_path, bidirectional, capsys):
    lm = _write_wordlm_run(tmp_path)
    task = get_task("sst")
    config = task.default_config()
    config.dataset.data_dir, config.dataset.init_from = str(write_sst(tmp_path / "data")), str(lm)
    config.train.batch_size = 4  # the sample's 28 distinct phrases cannot fill the default 32
    config.model.hidden_size, config.model.embedding_size, config.model.bidirectional = 12, 8, bidirectional
    config.validate()
    classifier = task.start(config, SINGLE_PROCESS, torch.device("cpu"))
    assert "--init-from" in capsys.readouterr().err
    _, language_model = restore_session(str(lm))
    words = classifier.features.words
    assert "extraordinary" in words.index  # only the language model's text has it: merged in
    lm_words = language_model.vocabulary.words
    for word in ("good", "extraordinary", "<unk>"):
        assert torch.equal(classifier.model.features.embedding.weight[words.index[word]],
                           language_model.model.embedding.weight[lm_words.index(word)])
    name = "layers.0.forward_layer.cell.weight_hh" if bidirectional else "layers.0.cell.weight_hh"
    assert torch.equal(classifier.model.rnn.state_dict()[name], language_model.model.rnn.state_dict()["layers.0.cell.weight_hh"])


@pytest.mark.parametrize(("arguments", "fragments"), [
    (["--embedding-size", "6"], ["--init-from", "8-wide embeddings", "--embedding-size 8"]),
    (["--cell", "gru"], ["--init-from", "is a lstm language model", "--cell lstm"]),
    (["--hidden-size", "20", "--no-bidirectional"], ["--init-from", "no recurrent weight", "--hidden-size"]),
])
def test_init_from_a_language_model_that_does_not_fit_is_one_line(tmp_path, arguments, fragments):
    lm = _write_wordlm_run(tmp_path)
    out = tmp_path / "out"
    assert_one_line_error(rnnkit_here("train", "sst", "--data-dir", write_sst(tmp_path / "data"), *SMALL, *arguments,
                                      "--init-from", lm, "--max-steps", "1", "--out", out), *fragments)
    assert not out.exists()


@pytest.mark.parametrize(("arguments", "fragments"), [
    (["--data-dir", "{tmp}/nowhere"], ["--data-dir", "nowhere is not a folder", "--train"]),
    (["--data-dir", "{tmp}/empty"], ["--train-on phrases", "empty/trees", "--train-on sentences"]),
    (["--data-dir", "{tmp}/empty", "--train-on", "sentences"], ["--data-dir", "has no stsa.binary.train"]),
    (["--train-on", "words"], ["--train-on", "phrases, sentences"]),
    (["--subtask", "tertiary"], ["--subtask", "binary, fine"]),
    (["--pooling", "median"], ["--pooling", "last, mean, max, attention"]),
    (["--train", "{tmp}/bad.txt", "--dev", "{tmp}/bad.txt"], ["bad.txt line 2", "no sentence"]),
    (["--train", "{tmp}/train.txt"], ["--dev"]),
    (["--init-from", "{tmp}/sst-run"], ["--init-from", "is a 'sst' run", "wordlm"]),
    (["--embeddings", "{tmp}/wide.txt"], ["wide.txt line 1", "expected a word and 8 numbers"]),
    (["--data-dir", "{tmp}/odd", "--train-on", "sentences"],
     ["stsa.binary.dev line 1", "label '7' does not occur in the training split"]),
    (["--data-dir", "{tmp}/odd"], ["trees/dev.txt line 2", "expected a label 0-4 after '(', got '7'"]),
])
def test_bad_input_is_one_line_and_leaves_the_folder_alone(tmp_path, run, arguments, fragments):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.txt").write_text("1 good\n0\n")
    write_split(tmp_path / "train.txt", 3)
    (tmp_path / "wide.txt").write_text("good 1 2 3\n")
    odd = write_sst(tmp_path / "odd")
    (odd / "stsa.binary.dev").write_text("7 strange\n")
    (odd / "trees" / "dev.txt").write_text("(4 (2 a) (4 good))\n(7 (2 strange) (2 .))\n")
    (tmp_path / "sst-run").symlink_to(run)
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    data = [] if any(a in ("--data-dir", "--train") for a in arguments) else ["--data-dir", str(write_sst(tmp_path / "data"))]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    before = tree_digest(out)
    assert_one_line_error(rnnkit_here("train", "sst", *data, *SMALL, *arguments, "--max-steps", "1", "--out", out,
                                      "--overwrite"), *fragments)
    assert tree_digest(out) == before


def test_the_vocabulary_holds_the_leaves_the_model_reads(tmp_path):
    """A treebank leaf the tokenizer would split ("x." -> "x" "."; 23 training sentences of the SST have one) is a
    token of the vocabulary, as the model reads the leaves."""
    data = write_sst(tmp_path / "data")
    trees = data / "trees" / "train.txt"
    trees.write_text(trees.read_text() + tree_line("a great x.", 4) + "\n")
    result = rnnkit_here("train", "sst", "--data-dir", data, *SMALL, "--max-steps", "1", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    _, session = restore_session(str(tmp_path / "run"))
    words = session.features.words
    assert "x." in words.tokens and "x" not in words.tokens


def test_phrases_by_default_sentences_on_request_and_old_runs_keep_training_on_sentences(tmp_path):
    import yaml

    data = write_sst(tmp_path / "data")
    phrases = rnnkit_here("train", "sst", "--data-dir", data, *SMALL, "--max-steps", "2", "--out", tmp_path / "p")
    # Right-branching trees: each sentence of n words has n - 1 phrases of two words or more (its words are
    # neutral): 2 + 5 + 4 + 2 + 1 for each sentiment's five sentences, repeated 20 times but counted once.
    assert "sst: 28 training phrases, 10 validation sentences, 10 test sentences" in phrases.stderr
    sentences = rnnkit_here("train", "sst", "--data-dir", data, "--train-on", "sentences", *SMALL, "--max-steps", "2",
                            "--out", tmp_path / "s")
    assert "sst: 40 training sentences, 10 validation sentences, 10 test sentences" in sentences.stderr
    saved = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())
    del saved["dataset"]["train_on"]  # a run from before --train-on
    assert get_task("sst").default_config().with_values(saved, "old run").dataset.train_on == "sentences"
    partial = {"dataset": {"subtask": "fine"}}  # a file of a few options is not a saved run: the default holds
    assert get_task("sst").default_config().with_values(partial, "my.yaml").dataset.train_on == "phrases"
