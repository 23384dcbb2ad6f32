"""The named-entity task end to end on a small CoNLL-format sample written here (CoNLL-2003 itself is never
copied into the repository): training through the CLI, seqeval's metrics recomputed on the predictions,
predictions in the data's own tag scheme, predict in both formats and in input order, and bad input."""

from __future__ import annotations

import json

import pytest
from seqeval.metrics import f1_score

from cli_helpers import assert_one_line_error, rnnkit_here, tree_digest
from rnnkit.data.conll import read_conll
from rnnkit.tasks import load_run

PEOPLE = ["Alice", "Bob", "Carol", "Dmitri"]
PLACES = ["Paris", "Berlin", "Lagos", "Osaka"]
TEMPLATES = [  # (tokens, IOB1 tags); {p} a person, {l} a place; "Acme Corp" and "New York" span two tokens
    ("{p} flew to {l} .", "I-PER O O I-LOC O"),
    ("{p} works for Acme Corp in {l} .", "I-PER O O I-ORG I-ORG O I-LOC O"),
    ("the weather in {l} was fine", "O O O I-LOC O O"),
    ("{p} met {p2} in New York", "I-PER O I-PER O I-LOC I-LOC"),
]
SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--char-hidden-size", "4", "--char-embedding-size", "4",
         "--case-embedding-size", "2", "--batch-size", "4", "--max-minutes", "0", "--epochs", "0", "--eval-every", "20",
         "--lr", "0.02", "--dropout", "0", "--word-dropout", "0"]


def write_conll(path, count: int, offset: int = 0):
    lines = ["-DOCSTART- -X- -X- O", ""]
    for i in range(offset, offset + count):
        words, tags = TEMPLATES[i % len(TEMPLATES)]
        words = words.format(p=PEOPLE[(i + i // 4) % 4], p2=PEOPLE[(i + i // 4 + 1) % 4], l=PLACES[(i // 4) % 4])
        lines += [f"{word} X X {tag}" for word, tag in zip(words.split(), tags.split())] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_data(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, count, offset in (("train.txt", 64, 0), ("valid.txt", 8, 3), ("test.txt", 8, 5)):
        write_conll(folder / name, count, offset)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ner")
    run = folder / "run"
    result = rnnkit_here("train", "ner", "--data-dir", write_data(folder / "data"), *SMALL, "--max-steps", "100", "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def test_training_learns_the_sample_and_metrics_are_seqevals_on_the_predictions(run):
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["f1"] > 0.9
    assert set(summary["test"]["per_type"]) == {"LOC", "ORG", "PER"}
    sentences = read_conll(run.parent / "data" / "test.txt", -1, "--test")
    results = load_run(str(run)).predict([" ".join(sentence.tokens) for sentence in sentences])
    from rnnkit.data.tag_schemes import to_bio

    gold = [to_bio(sentence.tags) for sentence in sentences]
    predicted = [to_bio(result["tags"]) for result in results]
    assert summary["test"]["f1"] == pytest.approx(f1_score(gold, predicted))


def test_evaluate_scores_the_test_split_or_a_conll_file(run, tmp_path):
    summary = json.loads((run / "summary.json").read_text())
    result = rnnkit_here("evaluate", "--checkpoint", run)
    assert result.stdout.startswith(f"evaluation F1 {summary['test']['f1']:.2%}")
    one = tmp_path / "one.txt"
    one.write_text("Bob X X I-PER\nflew X X O\nto X X O\nParis X X I-LOC\n")
    assert rnnkit_here("evaluate", "--checkpoint", run, "--data", one).stdout.startswith("evaluation F1 100.00%")


def test_predict_reports_tags_in_the_datas_scheme_and_the_entities(run):
    result = rnnkit_here("predict", "--checkpoint", run, "Carol works for Acme Corp in Osaka .", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["tokens"] == "Carol works for Acme Corp in Osaka .".split()
    assert answer["tags"] == "I-PER O O I-ORG I-ORG O I-LOC O".split()  # IOB1, as the files (trained on IOBES)
    assert answer["entities"] == [{"type": "PER", "start": 0, "end": 1, "text": "Carol"},
                                  {"type": "ORG", "start": 3, "end": 5, "text": "Acme Corp"},
                                  {"type": "LOC", "start": 6, "end": 7, "text": "Osaka"}]
    text = rnnkit_here("predict", "--checkpoint", run, "Bob flew to Lagos .")
    assert text.stdout.strip() == "Bob/I-PER flew to Lagos/I-LOC .\t[PER: Bob; LOC: Lagos]"


def test_predict_keeps_input_order_with_batching_and_answers_bad_lines_in_place(run, tmp_path):
    sentences = [f"{PEOPLE[i % 4]} flew to {' '.join(['Paris'] * (1 + i % 5))} ." for i in range(30)]
    sentences[9] = ""
    sentences[20] = "Zyx " * 200  # unseen words, longer than any training sentence
    file = tmp_path / "inputs.txt"
    file.write_text("\n".join(sentences) + "\n")
    outputs = [rnnkit_here("predict", "--checkpoint", run, "--file", file, "--format", "jsonl", "--batch-size", size)
               for size in ("4", "100")]
    assert outputs[0].stdout == outputs[1].stdout  # Viterbi's best paths do not move with float rounding here
    assert_one_line_error(outputs[0], "1 of 30 inputs", "line 10", "empty")
    answers = [json.loads(line) for line in outputs[0].stdout.splitlines()]
    assert "error" in answers[9] and len(answers[20]["tags"]) == 200
    for i, answer in enumerate(answers):
        if i not in (9, 20):
            assert answer["tokens"] == sentences[i].split()
            assert answer["entities"][0] == {"type": "PER", "start": 0, "end": 1, "text": PEOPLE[i % 4]}


@pytest.mark.parametrize(("arguments", "fragments"), [
    (["--data-dir", "{tmp}/nowhere"], ["--data-dir", "nowhere is not a folder", "--train"]),
    (["--data-dir", "{tmp}/empty"], ["--data-dir", "has no train.txt"]),
    (["--train", "{tmp}/columns.txt", "--dev", "{tmp}/columns.txt"], ["columns.txt line 4", "expected 4 columns"]),
    (["--train", "{tmp}/tags.txt", "--dev", "{tmp}/tags.txt"], ["tags.txt line 3", "'Q-PER'"]),
    (["--data-dir", "{tmp}/new-type"], ["valid.txt line 3", "'S-EVENT'", "does not occur in the training split"]),
    (["--tag-column", "9"], ["--tag-column 9", "4 column(s)"]),
    (["--output", "hmm"], ["--output", "crf, softmax"]),
    (["--tag-scheme", "iob1"], ["--tag-scheme", "bio or iobes"]),
])
def test_bad_input_is_one_line_and_leaves_the_folder_alone(tmp_path, arguments, fragments):
    (tmp_path / "empty").mkdir()
    sample = write_conll(tmp_path / "sample.txt", 8).read_text()
    (tmp_path / "columns.txt").write_text(sample.replace("flew X X O", "flew X O"))
    (tmp_path / "tags.txt").write_text(sample.replace("Alice X X I-PER", "Alice X X Q-PER"))
    new_type = write_data(tmp_path / "new-type")
    (new_type / "valid.txt").write_text("-DOCSTART- -X- -X- O\n\nExpo X X I-EVENT\n")
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    data = [] if any(a in ("--data-dir", "--train") for a in arguments) else ["--data-dir", str(write_data(tmp_path / "data"))]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    before = tree_digest(out)
    assert_one_line_error(rnnkit_here("train", "ner", *data, *SMALL, *arguments, "--max-steps", "1", "--out", out,
                                      "--overwrite"), *fragments)
    assert tree_digest(out) == before


@pytest.mark.parametrize("scheme, tags, trained", [
    # A BIO file whose entity starts with I- (conlleval reads it as a beginning): trained as B-PER, which the CRF can
    # decode; passed through, its gold path would hold O -> I-PER, a transition the CRF scores -10^4.
    ("bio", "O I-PER O B-LOC I-LOC", {"bio": "O B-PER O B-LOC I-LOC", "iobes": "O S-PER O B-LOC E-LOC"}),
    # An IOBES file with an I- that ends its entity and an E- that starts one.
    ("iobes", "B-PER I-PER O E-LOC O", {"bio": "B-PER I-PER O B-LOC O", "iobes": "B-PER E-PER O S-LOC O"}),
])
@pytest.mark.parametrize("tag_scheme", ["bio", "iobes"])
def test_tags_are_read_leniently_into_the_training_scheme_whatever_the_files_scheme(tmp_path, scheme, tags, trained,
                                                                                   tag_scheme):
    from rnnkit.data.tag_schemes import allowed_transition
    from rnnkit.tasks import get_task
    from rnnkit.tasks.ner.task import read_splits
    from rnnkit.train.distributed import SINGLE_PROCESS
    import torch

    words = "Bob left and New York".split()
    lines = "\n".join(f"{word} {tag}" for word, tag in zip(words, tags.split())) + "\n"
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(lines + "\n" + lines)  # two sentences: a batch of 2
    task = get_task("ner")
    config = task.default_config()
    config.dataset.data_dir, config.dataset.scheme, config.dataset.tag_scheme = str(tmp_path), scheme, tag_scheme
    config.train.batch_size = 2
    session = task.start(config, SINGLE_PROCESS, torch.device("cpu"))
    sentence = read_splits(config.dataset)["train"][0]
    examples = session.examples([sentence], "train")
    got = [session.tags[int(i)] for i in examples.targets[0]]
    assert got == trained[tag_scheme].split()
    path = [None, *got, None]  # every transition of the gold path is one the CRF allows
    assert all(allowed_transition(a, b, tag_scheme) for a, b in zip(path, path[1:]))
