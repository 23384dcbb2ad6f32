"""The translation task end to end on small parallel corpora written here: learning to reverse and to copy short
sequences through the CLI (BLEU near 100 on held-out sequences), predict in both formats and in input order,
n-best lists and attention figures, Multi30k's file layout, and bad input."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import replace

import pytest
import torch

from cli_helpers import assert_one_line_error, rnnkit_here, tree_digest
from rnnkit.models.search import Hypothesis
from rnnkit.tasks import load_run

WORDS = "a b c d e f".split()
SMALL = ["--hidden-size", "32", "--embedding-size", "16", "--num-layers", "1", "--batch-size", "32", "--min-count", "1",
         "--lr", "0.01", "--dropout", "0", "--label-smoothing", "0", "--eval-every", "100", "--max-minutes", "0",
         "--epochs", "0"]


def write_corpus(folder, task: str):
    """Sequences of 2-5 letters and their reversal or copy: train 1,000 pairs, valid and test 60 others."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", 1000, 1), ("valid", 60, 2), ("test", 60, 3)):
        generator = random.Random(seed)
        sources = [[generator.choice(WORDS) for _ in range(generator.randint(2, 5))] for _ in range(count)]
        targets = [source[::-1] if task == "reverse" else source for source in sources]
        (folder / f"{split}.src").write_text("".join(" ".join(words) + "\n" for words in sources))
        (folder / f"{split}.tgt").write_text("".join(" ".join(words) + "\n" for words in targets))
    return folder


def corpus_options(folder) -> list[str]:
    return [option for split in ("train", "valid", "test") for option in
            (f"--{split}-src", folder / f"{split}.src", f"--{split}-tgt", folder / f"{split}.tgt")]


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reverse")
    run = folder / "run"
    result = rnnkit_here("train", "translate", *corpus_options(write_corpus(folder / "data", "reverse")), *SMALL,
                    "--max-steps", "300", "--out", run, threads=1)
    assert result.returncode == 0, result.stderr
    return run


def test_learns_to_reverse_held_out_sequences(reverse_run):
    summary = json.loads((reverse_run / "summary.json").read_text())
    assert summary["test"]["bleu"] > 95 and summary["test"]["chrf"] > 90
    assert summary["test"]["decoding"] == "beam 5" and summary["test"]["bleu_greedy"] > 95
    assert "tok:none" in summary["test"]["bleu_signature"]
    assert summary["validation"]["perplexity"] < 1.3


def test_learns_to_copy_with_dot_attention_and_no_input_feeding(tmp_path):
    run = tmp_path / "run"
    result = rnnkit_here("train", "translate", *corpus_options(write_corpus(tmp_path / "data", "copy")), *SMALL,
                    "--score", "dot", "--no-input-feeding", "--max-steps", "600", "--out", run,
                    threads=1)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["test"]["bleu"] > 95
    assert load_run(str(run)).predict(["f e d a"])[0]["translation"] == "f e d a"


def test_predict_in_both_formats_and_in_input_order(reverse_run, tmp_path):
    generator = random.Random(7)
    sentences = [" ".join(generator.choice(WORDS) for _ in range(generator.randint(2, 5))) for _ in range(25)]
    file = tmp_path / "inputs.txt"
    file.write_text("\n".join(sentences) + "\n")
    text = rnnkit_here("predict", "--checkpoint", reverse_run, "--file", file, "--batch-size", "4")
    jsonl = rnnkit_here("predict", "--checkpoint", reverse_run, "--file", file, "--format", "jsonl", "--beam-size", "1")
    assert text.returncode == 0 and jsonl.returncode == 0, text.stderr + jsonl.stderr
    objects = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [result["source"] for result in objects] == sentences
    reversed_ = [" ".join(sentence.split()[::-1]) for sentence in sentences]
    assert sum(result["translation"] == truth for result, truth in zip(objects, reversed_)) >= 23
    assert sum(line == truth for line, truth in zip(text.stdout.splitlines(), reversed_)) >= 23
    assert all(isinstance(result["score"], float) and result["score"] < 0 for result in objects)


def test_predict_n_best_attention_and_inputs_it_cannot_translate_well(reverse_run, tmp_path):
    picture = tmp_path / "attention.png"
    result = rnnkit_here("predict", "--checkpoint", reverse_run, "a b c", "", "zz yy", "a b c d e f a b c d e f",
                         "--format", "jsonl", "--n-best", "3", "--show-attention", picture)
    assert result.returncode == 2  # the empty line is answered in its place; the others are translated
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert objects[0]["translation"] == "c b a" and "empty" in objects[1]["error"]
    assert len(objects[0]["hypotheses"]) == 3 and objects[0]["hypotheses"][0]["translation"] == "c b a"
    scores = [hypothesis["score"] for hypothesis in objects[0]["hypotheses"]]
    assert scores == sorted(scores, reverse=True)
    assert "training vocabulary" in objects[2]["warning"]  # unknown words only: still an answer, with a warning
    assert objects[3]["translation"]  # longer than anything in training
    assert "attention" not in objects[0]
    drawn = sorted(path.name for path in tmp_path.glob("attention-*.png"))
    assert drawn == ["attention-1.png", "attention-3.png", "attention-4.png"]


def test_evaluate_scores_the_test_split_or_given_files(reverse_run, tmp_path):
    summary = json.loads((reverse_run / "summary.json").read_text())
    result = rnnkit_here("evaluate", "--checkpoint", reverse_run)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"evaluation BLEU {summary['test']['bleu']:.2f}") and "beam 5" in result.stdout
    (tmp_path / "one.src").write_text("a b c d e\n")  # 4-grams for BLEU
    (tmp_path / "one.tgt").write_text("e d c b a\n")
    greedy = rnnkit_here("evaluate", "--checkpoint", reverse_run, "--source", tmp_path / "one.src", "--target",
                         tmp_path / "one.tgt", "--beam-size", "1")
    assert greedy.stdout.startswith("evaluation BLEU 100.00") and "(greedy;" in greedy.stdout
    assert_one_line_error(rnnkit_here("evaluate", "--checkpoint", reverse_run, "--source", tmp_path / "one.src"),
                          "--source, --target")


def test_replace_unknown_copies_the_most_attended_source_word(reverse_run):
    session = load_run(str(reverse_run)).session
    vocabulary = session.target.vocabulary
    written = Hypothesis(vocabulary.encode(["c", "<unk>", "a"]), -1.0, -1.0,
                         torch.tensor([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.4, 0.3, 0.3]]))
    decoding = session.config.decoding
    assert session.written(written, ["a", "zz", "c"], decoding) == ["c", "<unk>", "a"]  # off by default
    assert session.written(written, ["a", "zz", "c"], replace(decoding, replace_unknown=True)) == ["c", "zz", "a"]


# ----------------------------------------------------------------------------- Multi30k's layout
def write_multi30k(folder):
    """Multi30k's file names, with a few sentences: tokenised lower-cased files and raw gzip text."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [("Ein Mann fährt Fahrrad.", "A man rides a bike."), ("Zwei Hunde spielen im Schnee.", "Two dogs play in the snow."),
             ("Ein Kind isst.", "A child is eating."), ("Der Hund läuft.", "The dog runs.")] * 4
    for name in ("train", "val", "test_2016_flickr"):
        for index, language in enumerate(("de", "en")):
            raw = "".join(pair[index] + "\n" for pair in pairs)
            (folder / f"{name}.{language}.gz").write_bytes(gzip.compress(raw.encode()))
            tokenised = raw.lower().replace(".", " .")
            (folder / f"{name}.lc.norm.tok.{language}").write_text(tokenised)
    return folder


@pytest.mark.parametrize("pretokenized", ["--pretokenized", "--no-pretokenized"])
def test_multi30k_layout_in_either_direction(tmp_path, pretokenized):
    data = write_multi30k(tmp_path / "multi30k")
    for source, target in (("de", "en"), ("en", "de")):
        run = tmp_path / f"run-{source}{pretokenized}"
        result = rnnkit_here("train", "translate", "--data-dir", data, "--src", source, "--tgt", target, pretokenized,
                             *SMALL, "--max-steps", "2", "--eval-every", "2", "--out", run)
        assert result.returncode == 0, result.stderr
        session = load_run(str(run)).session
        words = set(session.source.vocabulary.tokens)
        assert ({"fährt", "."} <= words) if source == "de" else ({"rides", "."} <= words)
        assert "fahrrad." not in words  # raw text is tokenised by Moses' rules, as the tokenised files were


def test_subword_units_are_learnt_per_language_and_spell_the_words_back(tmp_path):
    data = write_multi30k(tmp_path / "multi30k")
    run = tmp_path / "run"
    result = rnnkit_here("train", "translate", "--data-dir", data, "--subwords", "40", *SMALL, "--max-steps", "2",
                         "--eval-every", "2", "--out", run)
    assert result.returncode == 0, result.stderr
    trained = load_run(str(run))
    session = trained.session
    pieces = session.source.vocabulary.tokens
    assert len(pieces) <= 40 + 3 and "\u2581ein" in pieces  # the BPE model's pieces, and <pad> <bos> <eos>
    words = "zwei hunde fahren fahrrad .".split()
    assert session.source.words(session.source.pieces(words)) == words
    assert len(session.source.pieces(["antriebsradsystem"])) > 1  # an unseen word is spelt from pieces, not <unk>
    assert isinstance(trained.predict(["Ein Hund fährt Fahrrad."])[0]["translation"], str)
    assert_one_line_error(rnnkit_here("train", "translate", "--data-dir", data, "--subwords", "5000", *SMALL,
                                      "--max-steps", "1", "--out", tmp_path / "big"), "--subwords", "lower --subwords")


# ----------------------------------------------------------------------------- bad input
def test_bad_corpora_are_one_line_naming_file_and_line(tmp_path):
    data = write_corpus(tmp_path / "data", "copy")
    options = corpus_options(data)
    (tmp_path / "short.tgt").write_text("a b\n" * 999)
    short = [*options[:2], "--train-tgt", tmp_path / "short.tgt", *options[4:]]
    assert_one_line_error(rnnkit_here("train", "translate", *short, *SMALL, "--max-steps", "1", "--out", tmp_path / "r1"),
                          "train.src has 1000 lines", "short.tgt has 999")
    lines = (data / "train.tgt").read_text().splitlines()
    lines[41] = "   "
    (tmp_path / "empty.tgt").write_text("\n".join(lines) + "\n")
    empty = [*options[:2], "--train-tgt", tmp_path / "empty.tgt", *options[4:]]
    assert_one_line_error(rnnkit_here("train", "translate", *empty, *SMALL, "--max-steps", "1", "--out", tmp_path / "r2"),
                          "empty.tgt line 42", "empty")
    (tmp_path / "latin.src").write_bytes((data / "valid.src").read_bytes().replace(b"\n", b"\n", 5)[:30] + b"\xe9\n")
    (tmp_path / "latin.tgt").write_bytes((data / "valid.tgt").read_bytes()[:30] + b"a\n")
    latin = [*options[:4], "--valid-src", tmp_path / "latin.src", "--valid-tgt", tmp_path / "latin.tgt", *options[8:]]
    assert_one_line_error(rnnkit_here("train", "translate", *latin, *SMALL, "--max-steps", "1", "--out", tmp_path / "r3"),
                          "latin.src line", "not valid UTF-8")
    assert_one_line_error(rnnkit_here("train", "translate", "--data-dir", tmp_path, *SMALL, "--max-steps", "1",
                                      "--out", tmp_path / "r4"), "has no train.lc.norm.tok.de")
    assert_one_line_error(rnnkit_here("train", "translate", "--train-src", data / "train.src", *SMALL, "--max-steps", "1",
                                      "--out", tmp_path / "r5"), "--train-tgt")
    assert_one_line_error(rnnkit_here("train", "translate", *options, *SMALL, "--tie-embeddings", "--max-steps", "1",
                                      "--out", tmp_path / "r6"), "--tie-embeddings")
    assert not any((tmp_path / f"r{number}").exists() for number in range(1, 7))


def test_bad_predict_options_are_one_line_and_leave_the_run_alone(reverse_run, tmp_path):
    before = tree_digest(reverse_run)
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", reverse_run, "a b", "--n-best", "9"), "--n-best", "beam size (5)")
    sutskever = tmp_path / "sutskever"
    data = write_corpus(tmp_path / "data", "copy")
    assert rnnkit_here("train", "translate", *corpus_options(data), *SMALL, "--architecture", "sutskever",
                       "--max-steps", "1", "--out", sutskever).returncode == 0
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", sutskever, "a b", "--show-attention", tmp_path / "x.png"),
                          "--show-attention", "sutskever")
    assert tree_digest(reverse_run) == before


def test_a_run_from_before_the_decoding_group_predicts_and_resumes_as_it_did(reverse_run, tmp_path):
    """Runs before the contracts issue kept the search options under dataset.decoding; they are read into the decoding
    group, so such a run predicts as the same run in today's layout and resumes."""
    import shutil

    import yaml

    old = tmp_path / "old"
    shutil.copytree(reverse_run, old)

    def old_layout(config: dict) -> dict:
        config = dict(config)
        config["dataset"] = {**config["dataset"], "decoding": config.pop("decoding")}
        return config

    (old / "config.yaml").write_text(yaml.safe_dump(old_layout(yaml.safe_load((old / "config.yaml").read_text()))))
    for state in old.rglob("state.json"):
        saved = json.loads(state.read_text())
        saved["config"] = old_layout(saved["config"])
        state.write_text(json.dumps(saved))
    assert "decoding" not in yaml.safe_load((old / "config.yaml").read_text())
    arguments = ("predict", "a b c d", "--beam-size", "3", "--n-best", "2", "--format", "jsonl")
    now, before = (rnnkit_here(*arguments[:1], "--checkpoint", run, *arguments[1:]) for run in (reverse_run, old))
    assert before.returncode == 0 and before.stdout == now.stdout
    resumed = rnnkit_here("train", "translate", "--out", old, "--resume", "--max-steps", "302", "--beam-size", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((old / "summary.json").read_text())["test"]["decoding"] == "beam 2"


def test_the_decoding_options_are_a_group_of_their_own():
    from rnnkit.tasks import get_task

    resolved = get_task("translate").default_config().resolved("translate")
    assert resolved["decoding"]["beam_size"] == 5 and "decoding" not in resolved["dataset"]
    printed = rnnkit_here("train", "translate", "--print-config", "--beam-size", "7", "--length-penalty", "average")
    assert "decoding:\n  beam_size: 7\n  length_penalty: average" in printed.stdout
