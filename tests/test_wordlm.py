"""The word-level language model: the PTB reader and vocabulary, perplexity computed again by hand, tied
weights through a checkpoint, and the task end to end on a small corpus written here."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.data.vocabulary import WordVocabulary, tokenize
from rnnkit.models import LanguageModel, LanguageModelConfig
from rnnkit.tasks import get_task, restore_session
from rnnkit.train.distributed import SINGLE_PROCESS

SENTENCES = [
    "the company said it expects sales to rise",
    "the bank said its profit fell in the quarter",
    "analysts expect the company to report a loss",
    "the market rose as investors bought shares",
]
SMALL = ["--hidden-size", "16", "--embedding-size", "16", "--num-layers", "1", "--batch-size", "4", "--bptt", "8",
         "--max-minutes", "0", "--epochs", "0", "--eval-every", "4", "--lr", "0.5", "--schedule", "constant"]


def write_corpus(folder, repeats: int = 30, prefix: str = "ptb."):
    """A PTB-like data folder: one sentence a line, leading space as in Mikolov's files."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", repeats), ("valid", 3), ("test", 3)):
        lines = [f" {SENTENCES[i % len(SENTENCES)]} \n" for i in range(count * len(SENTENCES))]
        (folder / f"{prefix}{split}.txt").write_text("".join(lines))
    return folder


def test_words_end_lines_with_eos_and_rare_words_read_as_unk():
    text = " a b c \n a b <unk> \n a d \n"
    assert tokenize(text) == ["a", "b", "c", "<eos>", "a", "b", "<unk>", "<eos>", "a", "d", "<eos>"]
    vocabulary = WordVocabulary.from_text(text, size=4)  # <eos>, <unk>, and the two most frequent words
    assert vocabulary.words == ("<eos>", "<unk>", "a", "b")
    assert vocabulary.encode("a c zebra\nb").tolist() == [2, 1, 1, 0, 3]
    assert vocabulary.decode(vocabulary.encode(" a b \n b a \n")) == "a b\nb a\n"
    assert WordVocabulary.from_state(vocabulary.to_state()) == vocabulary


def test_perplexity_is_the_exponential_of_the_mean_cross_entropy_computed_by_hand(tmp_path):
    task = get_task("wordlm")
    config = task.default_config()
    config.dataset.data_dir = str(write_corpus(tmp_path / "ptb"))
    config.model.hidden_size = config.model.embedding_size = 8
    config.model.num_layers = 1
    config.dataset.bptt = 80  # the validation text (108 words) is one stream, read in two windows
    config.validate()
    torch.manual_seed(0)
    session = task.start(config, SINGLE_PROCESS, torch.device("cpu"))
    model = session.model.eval()
    with torch.no_grad():
        metrics = session.evaluate(model)
        tokens, _ = session.held_out_tokens()
        logits, _, _ = model(tokens[:-1].view(-1, 1))  # the whole text in one pass: what carrying the state equals
        expected = F.cross_entropy(logits[:, 0], tokens[1:]).item()
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)


def test_tied_weights_are_one_matrix_and_survive_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    result = rnnkit_here("train", "wordlm", "--data-dir", write_corpus(tmp_path / "ptb"), *SMALL, "--tie-weights",
                    "--max-steps", "4", "--out", run)
    assert result.returncode == 0, result.stderr
    _, session = restore_session(str(run))
    model = session.model
    assert model.head.weight is model.embedding.weight
    checkpoint = json.loads((run / "checkpoint.json").read_text())["directory"]
    from safetensors.torch import load_file

    saved = load_file(str(run / checkpoint / "model.safetensors"))
    assert torch.equal(saved["head.weight"], saved["embedding.weight"])
    untied = LanguageModel(len(session.vocabulary), LanguageModelConfig(hidden_size=16, embedding_size=16))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in untied.parameters()) - 16 * len(
        session.vocabulary)


def test_the_task_end_to_end(tmp_path):
    run = tmp_path / "run"
    result = rnnkit_here("train", "wordlm", "--data-dir", write_corpus(tmp_path / "ptb", prefix=""), *SMALL,
                    "--max-steps", "8", "--out", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    for split in ("validation", "test"):
        assert summary[split]["perplexity"] == pytest.approx(math.exp(summary[split]["loss"]))
    assert summary["validation"]["perplexity"] < len(set(" ".join(SENTENCES).split())) + 2  # below uniform guessing
    assert f"perplexity {summary['validation']['perplexity']:.2f}" in result.stdout
    evaluated = rnnkit_here("evaluate", "--checkpoint", run)
    assert f"perplexity {summary['validation']['perplexity']:.2f}" in evaluated.stdout
    generated = rnnkit_here("generate", "--checkpoint", run, "--prime", "the company", "--length", "12", "--seed", "1")
    assert generated.returncode == 0, generated.stderr
    words = generated.stdout.split()
    assert words[:2] == ["the", "company"] and len(words) >= 2 + 12 - 12 // 2  # some of the 12 may be line breaks
    assert set(words) <= set(" ".join(SENTENCES).split()) | {"<unk>"}


def test_a_single_text_file_trains_with_a_held_out_part(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("".join(f"{SENTENCES[i % 4]}\n" for i in range(200)))
    run = tmp_path / "run"
    result = rnnkit_here("train", "wordlm", "--data", text, *SMALL, "--vocab-size", "10", "--max-steps", "4",
                         "--out", run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert "test" not in summary and summary["validation"]["perplexity"] > 1


@pytest.mark.parametrize("arguments, fragments", [
    (["--data-dir", "nowhere"], ("--data-dir", "nowhere is not a folder", "ptb.train.txt")),
    (["--data-dir", "{empty}"], ("--data-dir", "has no ptb.train.txt", "train.txt")),
    (["--vocab-size", "2"], ("--vocab-size", "at least 3")),
    (["--tie-weights", "--embedding-size", "8"], ("--tie-weights", "--embedding-size (8)", "--hidden-size (16)")),
])
def test_bad_options_are_one_line_errors(tmp_path, arguments, fragments):
    (tmp_path / "empty").mkdir()
    arguments = [argument.replace("{empty}", str(tmp_path / "empty")) for argument in arguments]
    data = [] if any(a == "--data-dir" for a in arguments) else ["--data-dir", str(write_corpus(tmp_path / "ptb"))]
    out = tmp_path / "run"
    assert_one_line_error(rnnkit_here("train", "wordlm", *data, *SMALL, *arguments, "--max-steps", "1", "--out", out),
                          *fragments)
    assert not out.exists()


def test_init_range_draws_embeddings_and_output_layer_uniformly_and_keeps_them_tied():
    torch.manual_seed(0)
    with torch.no_grad():  # the weights are read, not trained
        config = LanguageModelConfig(hidden_size=16, embedding_size=16, init_range=0.1)
        model = LanguageModel(500, config)
        for weight in (model.embedding.weight, model.head.weight):
            assert float(weight.abs().max()) <= 0.1 and float(weight.std()) > 0.05  # U(-0.1, 0.1): std 0.058
        assert float(model.head.bias.abs().max()) == 0.0
        tied = LanguageModel(500, LanguageModelConfig(hidden_size=16, embedding_size=16, init_range=0.1, tie_weights=True))
        assert tied.head.weight is tied.embedding.weight and float(tied.embedding.weight.abs().max()) <= 0.1
        assert float(LanguageModel(500, LanguageModelConfig(hidden_size=16, embedding_size=16)).embedding.weight.std()) > 0.9


def test_the_defaults_are_zaremba_et_al_s_small_configuration():
    config = get_task("wordlm").default_config()
    model, train = config.model, config.train
    assert (model.cell, model.num_layers, model.hidden_size, model.embedding_size) == ("lstm", 2, 200, 200)
    assert (model.dropout, model.init_range, model.tie_weights) == (0.0, 0.1, False)
    assert (config.dataset.bptt, train.batch_size, train.epochs, train.optimizer) == (20, 20, 13, "sgd")
    # lr 1 and clip 5 on a loss summed over the 20 steps of a window = lr 20 and clip 0.25 on rnnkit's mean
    assert (train.lr, train.clip_grad_norm, train.gamma, train.step_start, train.step_every) == (20.0, 0.25, 0.5, 4 * 2323, 2323)
