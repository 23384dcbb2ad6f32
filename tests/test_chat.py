"""The chat task: dialogues read and cut into examples, HRED's hierarchical encoding, the Transformer baseline's
state, sampling and n-gram blocking, the dialogue metrics against hand-computed values, and the whole task through
the CLI on a synthetic dialogue set whose replies reverse the last message (predict, and ``rnnkit chat`` through a
pipe and a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from cli_helpers import assert_one_line_error, rnnkit_here, run_process
from rnnkit.data.dialogues import (BOT, USER, Dialogue, context_words, dialogue_examples, dialogue_words,
                                   read_dailydialog, read_dialogues, unseen_contexts)
from rnnkit.errors import UserError
from rnnkit.metrics import dialogue_metrics, distinct, sentence_bleu_mean
from rnnkit.models.dialogue import (ChatDecodingConfig, ChatModelConfig, build_chat_model, find_replies,
                                   reply_log_probs, rerank_anti_lm, streamed_reply)
from rnnkit.models.hred import HierarchicalEncoder
from rnnkit.models.sampling import restrict, sample_outputs
from rnnkit.models.search import beam_search, block_repeats
from rnnkit.models.seq2seq import Seq2SeqConfig

WORDS = [f"w{i}" for i in range(8)]
SMALL = ["--hidden-size", "64", "--embedding-size", "32", "--batch-size", "32", "--lr", "0.003", "--dropout", "0",
         "--label-smoothing", "0", "--eval-every", "100", "--max-minutes", "0", "--epochs", "0"]


# ----------------------------------------------------------------------------- data
def test_examples_pair_each_turn_with_the_turns_before_it_marked_by_speaker():
    dialogue = Dialogue(("Hi , how are you ?", "Fine , thanks .", "What are you doing ?", "Reading ."), "d line 1")
    examples = dialogue_examples([dialogue], context_turns=2)
    assert [(example.context, example.response) for example in examples] == [
        (("Hi , how are you ?",), "Fine , thanks ."),
        (("Hi , how are you ?", "Fine , thanks ."), "What are you doing ?"),
        (("Fine , thanks .", "What are you doing ?"), "Reading .")]
    assert examples[2].where == "d line 1, turn 4"
    # the answerer's own earlier turn is <bot>, the other speaker's (always the last) <user>
    assert context_words(examples[2].context) == [BOT, "fine", ",", "thanks", ".", USER, "what", "are", "you",
                                                  "doing", "?"]
    assert context_words(examples[1].context)[:1] == [BOT] and context_words(examples[1].context).count(USER) == 1


def test_words_split_punctuation_and_keep_contractions_as_dailydialog_writes_them():
    assert dialogue_words("I guess you are right.But what\u2019s up? It's £ 330!") == [
        "i", "guess", "you", "are", "right", ".", "but", "what's", "up", "?", "it's", "£", "330", "!"]


def test_dialogue_files_in_text_and_json_lines(tmp_path):
    text = tmp_path / "d.txt"
    text.write_text("Hello . __eou__ Hi ! __eou__\n\nHow are you ? __eou__ Good . __eou__ And you ? __eou__\n")
    assert [d.utterances for d in read_dialogues(text)] == [("Hello .", "Hi !"),
                                                          ("How are you ?", "Good .", "And you ?")]
    lines = tmp_path / "d.jsonl"
    lines.write_text('["a", "b"]\n{"turns": [{"text": "c"}, {"text": "d"}, "e"]}\n')
    assert [d.utterances for d in read_dialogues(lines)] == [("a", "b"), ("c", "d", "e")]
    assert read_dialogues(lines)[1].where == f"{lines} line 2"


@pytest.mark.parametrize("content, fragment", [
    ("a __eou__ b __eou__\njust one __eou__\n", "line 2: a dialogue needs at least two utterances"),
    ('["a", "b"]\n{"turns": [1, "x"]}\n', "line 2: turn 1 is not a string"),
    ('["a", "b"]\n["a", "b"\n', "line 2: not valid JSON"),
    ('{"speaker": "x"}\n', "line 1: expected a list of utterances or an object with one of turns"),
])
def test_a_malformed_dialogue_line_is_named(tmp_path, content, fragment):
    path = tmp_path / ("bad.jsonl" if content.startswith(("[", "{")) else "bad.txt")
    path.write_text(content)
    with pytest.raises(UserError, match=fragment):
        read_dialogues(path)


def test_dailydialog_zip_read_in_place_with_the_later_releases_fix(tmp_path):
    broken = "Sam , a bike ? __eou__ but I need one here as well . __eou__ I've been using Jim's . __eou__ OK . __eou__"
    lines = ["A . __eou__ B . __eou__"] * 7851 + [broken]
    with zipfile.ZipFile(tmp_path / "train.zip", "w") as archive:
        archive.writestr("train/dialogues_train.txt", "\n".join(lines) + "\n")
    dialogues = read_dailydialog(tmp_path, "train")
    assert len(dialogues) == 7852 and dialogues[0].utterances == ("A .", "B .")
    assert dialogues[-1].utterances == ("Sam , a bike ?", "but I need one here as well . I've been using Jim's .", "OK .")
    with pytest.raises(UserError, match="has no test.zip"):
        read_dailydialog(tmp_path, "test")


def test_unseen_contexts_drop_test_examples_whose_context_occurs_in_training():
    train = dialogue_examples([Dialogue(("Hello !", "Hi .", "Bye ."), "t")], 2)
    test = dialogue_examples([Dialogue(("hello!", "Hey .", "See you ."), "s")], 2)
    assert unseen_contexts(test, train) == [1]  # "hello!" reads as "hello !": seen; "Hey ." never was a context


# ----------------------------------------------------------------------------- metrics
def test_distinct_n_counts_distinct_ngrams_over_all_replies():
    replies = [["i", "am", "ok"], ["i", "am", "fine"], []]
    assert distinct(replies, 1) == pytest.approx(4 / 6)
    assert distinct(replies, 2) == pytest.approx(3 / 4)  # i am, am ok, i am, am fine
    assert distinct([[]], 2) == 0.0


def test_nltk_sentence_bleu_with_smoothing_7_by_hand():
    # method 7 = method 4 then method 5: p_n' = (m_{n-1} + p_n + p_{n+1}) / 3 with m_0 = p_1 + 1, which lifts even a
    # perfect reply above 1 (the dialogue papers' numbers are on this scale)
    exact = [["a", "b", "c", "d"]]
    assert sentence_bleu_mean(exact, exact, 1) == pytest.approx(4 / 3)  # (2 + 1 + 1) / 3
    assert sentence_bleu_mean(exact, exact, 2) == pytest.approx((4 / 3 * 10 / 9) ** 0.5)  # p2' = (4/3 + 1 + 1) / 3
    one_wrong = [["a", "b", "c", "e"]]  # p1 = 3/4, p2 = 2/3
    assert sentence_bleu_mean(one_wrong, exact, 1) == pytest.approx((1.75 + 0.75 + 2 / 3) / 3)
    assert sentence_bleu_mean([*exact, []], [*exact, ["x"]], 1) == pytest.approx(4 / 6)  # an empty reply scores 0


def test_corpus_bleu_by_hand():
    reply, reference = ["a", "b", "c", "d"], ["a", "b", "c", "d", "e"]
    metrics = dialogue_metrics([reply], [reference])
    assert metrics["corpus_bleu"] == pytest.approx(100 * torch.exp(torch.tensor(1 - 5 / 4)).item(), abs=1e-4)
    assert metrics["length"] == 4 and metrics["distinct1"] == 1.0 and metrics["distinct2"] == 1.0


# ----------------------------------------------------------------------------- models
def hred_encoder(cell: str) -> HierarchicalEncoder:
    torch.manual_seed(0)
    config = Seq2SeqConfig(cell=cell, hidden_size=8, embedding_size=6, num_layers=2, bidirectional=True, dropout=0.0)
    return HierarchicalEncoder(12, config, markers=(2, 3)).eval()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_hred_encodes_as_reading_each_utterance_alone_then_the_utterances_in_order(cell):
    encoder = hred_encoder(cell)
    rows = [[2, 5, 6, 3, 7, 2, 8, 9, 10], [2, 10, 11], [3, 4, 2, 5]]
    lengths = torch.tensor([len(row) for row in rows])
    source = torch.nn.utils.rnn.pad_sequence([torch.tensor(row) for row in rows])
    memory, state, mask = encoder(source, lengths)
    for column, row in enumerate(rows):
        starts = [i for i, token in enumerate(row) if token in (2, 3)] + [len(row)]
        utterances = [row[a:b] for a, b in zip(starts, starts[1:])]
        vectors, last_memory = [], None
        for words in utterances:
            read, final, _ = encoder.utterances(torch.tensor(words).view(-1, 1), torch.tensor([len(words)]))
            vectors.append(final[0][-1])
            last_memory = read[:, 0]
        _, alone = encoder.context(torch.stack(vectors), lengths=torch.tensor([len(vectors)]))
        for part, expected in zip(state, alone):
            torch.testing.assert_close(part[:, column], expected[:, 0])
        last = slice(starts[-2], starts[-1])
        torch.testing.assert_close(memory[last, column], last_memory)
        assert mask[column].nonzero().view(-1).tolist() == list(range(starts[-2], starts[-1]))


def chat_model(structure: str, architecture: str = "attention"):
    torch.manual_seed(0)
    config = ChatModelConfig(cell="gru", hidden_size=8, embedding_size=8, num_layers=1, bidirectional=True,
                             dropout=0.0, architecture=architecture, structure=structure, heads=2, feedforward_size=16)
    return build_chat_model(10, config, markers=(4, 5)).eval()


@pytest.mark.parametrize("structure, architecture", [("flat", "attention"), ("hred", "cho"), ("hred", "attention"),
                                                     ("transformer", "attention")])
def test_teacher_forcing_equals_feeding_the_reply_word_by_word(structure, architecture):
    model = chat_model(structure, architecture)
    source = torch.tensor([[4, 6, 7, 5, 8, 4, 9], [4, 7, 6, 0, 0, 0, 0]]).t()
    lengths = torch.tensor([7, 3])
    targets = torch.tensor([[2, 6, 8, 3], [2, 9, 3, 0]]).t()
    logits, loss, _ = model(source, None, lengths=lengths, targets=targets)
    _, _, state = model(source, None, lengths=lengths)
    for t in range(targets.shape[0] - 1):
        step, _, state = model(targets[t : t + 1], state)
        torch.testing.assert_close(step[0], logits[t], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("structure", ["flat", "hred", "transformer"])
def test_a_batch_is_searched_as_each_context_alone(structure):
    model = chat_model(structure)
    contexts = [torch.tensor(row) for row in ([4, 6, 7, 5, 8, 4, 9], [4, 7, 6], [4, 9, 9, 8, 6])]
    source = torch.nn.utils.rnn.pad_sequence(contexts)
    lengths = torch.tensor([len(c) for c in contexts])
    options = dict(beam_size=3, begin=2, end=3, never=(0, 2, 4, 5), n_best=3, block_ngram=2)
    together = beam_search(model, source, lengths=lengths, max_lengths=torch.full((3,), 6), **options)
    for context, found in zip(contexts, together):
        alone = beam_search(model, context.view(-1, 1), lengths=torch.tensor([len(context)]),
                            max_lengths=torch.full((1,), 6), **options)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in found]
        assert [h.score for h in alone] == pytest.approx([h.score for h in found], abs=1e-5)


@pytest.mark.parametrize("structure", ["hred", "transformer"])
def test_anti_lm_reranks_the_n_best_by_the_formula(structure):
    model = chat_model(structure)
    output = model.output if structure == "transformer" else model.decoder.output
    output.bias.data[3] += 3.0  # <eos> likely enough that every hypothesis ends with it, within the limit
    context, empty = torch.tensor([4, 6, 7, 5, 8, 4, 9]), torch.tensor([4])
    found = beam_search(model, context.view(-1, 1), lengths=torch.tensor([7]), max_lengths=torch.full((1,), 30),
                        beam_size=4, begin=2, end=3, never=(0, 2, 4, 5), n_best=4)
    # teacher forcing scores a hypothesis as the search did
    assert reply_log_probs(model, context, [h.tokens for h in found[0]], 2, 3) == pytest.approx(
        [h.log_prob for h in found[0]], abs=1e-4)
    decoding = ChatDecodingConfig(anti_lm=0.7, length_penalty="average")
    reranked = rerank_anti_lm(model, found, decoding, 2, 3, empty)[0]
    generic = reply_log_probs(model, empty, [h.tokens for h in found[0]], 2, 3)
    expected = sorted(((h.log_prob - 0.7 * g) / (len(h.tokens) + 1), h.tokens) for h, g in zip(found[0], generic))
    assert [(h.score, h.tokens) for h in reranked] == pytest.approx(expected[::-1])


STREAMED = {"greedy": ChatDecodingConfig(beam_size=1), "sample": ChatDecodingConfig(strategy="sample", top_p=0.9,
                                                                                      temperature=1.5, sample_seed=3)}


@torch.no_grad()
@pytest.mark.parametrize("structure", ["flat", "hred", "transformer"])
@pytest.mark.parametrize("decoding", list(STREAMED))
def test_a_streamed_reply_is_the_reply_the_search_finds_word_by_word(structure, decoding):
    model, decoding = chat_model(structure), STREAMED[decoding]
    output = model.output if structure == "transformer" else model.decoder.output
    output.bias.data[3] -= 2.0  # <eos> less likely: replies of several words
    markers = dict(begin=2, end=3, never=(0, 2, 4, 5))
    for context in ([4, 6, 7, 5, 8, 4, 9], [4, 7, 6]):
        source = torch.tensor(context)
        found = find_replies(model, [source], decoding, **markers, empty=torch.tensor([4]))[0][0]
        words = streamed_reply(model, source, decoding, **markers)
        streamed = []
        while True:
            try:
                streamed.append(next(words))
            except StopIteration as finished:
                hypothesis = finished.value
                break
        assert streamed == hypothesis.tokens == found.tokens and len(streamed) > 1
        assert hypothesis.score == pytest.approx(found.score, abs=1e-5)


def test_a_decoding_that_knows_its_reply_only_at_the_end_is_not_streamed():
    model = chat_model("flat")
    for decoding, fragment in ((ChatDecodingConfig(beam_size=5), "beam search"),
                               (ChatDecodingConfig(strategy="sample", samples=4), "several samples"),
                               (ChatDecodingConfig(beam_size=1, anti_lm=0.5), "anti-LM")):
        with pytest.raises(UserError, match=f"stream: .*{fragment}"):
            next(streamed_reply(model, torch.tensor([4, 6]), decoding, begin=2, end=3, never=(0,)))


def test_block_ngram_blocks_exactly_the_tokens_that_would_repeat_one():
    history = torch.tensor([[1, 2, 3, 1, 2], [1, 2, 3, 4, 5]])
    blocked = block_repeats(torch.zeros(2, 6), history, 3)
    assert torch.isinf(blocked[0]).nonzero().view(-1).tolist() == [3]  # "1 2" was followed by 3
    assert not torch.isinf(blocked[1]).any()
    assert torch.isinf(block_repeats(torch.zeros(1, 6), torch.tensor([[4, 1]]), 1)[0]).nonzero().view(-1).tolist() == [1, 4]


class Repeater(torch.nn.Module):
    """A model that always prefers to write token 1 then 2 again and again (never its end, 3): fixed logits."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.fixed = logits

    def forward(self, inputs, state=None, *, lengths=None, targets=None):
        steps, batch = inputs.shape
        previous = inputs[-1]  # (B,) the last token read: all the state this model has
        logits = self.fixed.expand(steps, batch, -1).clone()
        logits[..., 1] += 2.0 * (previous != 1)  # 1 after anything but 1, else 2
        logits[..., 2] += 2.0 * (previous == 1)
        return logits, None, previous

    def reorder_state(self, state, rows, same_inputs=False):
        return state.index_select(0, rows)


def test_beam_search_with_block_ngram_never_writes_an_ngram_twice():
    model = Repeater(torch.tensor([0.0, 1.0, 1.0, -5.0, 0.5, 0.4]))
    found = beam_search(model, torch.tensor([[0]]), max_lengths=torch.tensor([8]), beam_size=2, begin=0, end=3,
                        never=(0,), block_ngram=2)[0][0]
    bigrams = list(zip(found.tokens, found.tokens[1:]))
    assert len(found.tokens) == 8 and len(set(bigrams)) == len(bigrams)
    unblocked = beam_search(model, torch.tensor([[0]]), max_lengths=torch.tensor([8]), beam_size=2, begin=0, end=3,
                            never=(0,))[0][0]
    assert unblocked.tokens == [1, 2] * 4  # what the blocking prevents


def test_nucleus_sampling_never_draws_outside_the_nucleus():
    probabilities = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])
    model = Repeater(probabilities.log())
    model.forward = lambda inputs, state=None, **_: (probabilities.log().expand(*inputs.shape, -1), None,
                                                     torch.zeros(inputs.shape[1]))
    generator = torch.Generator().manual_seed(0)
    found = sample_outputs(model, torch.zeros(1, 200, dtype=torch.long), max_lengths=torch.full((200,), 20),
                           begin=0, top_p=0.7, generator=generator)
    drawn = {token for hypotheses in found for token in hypotheses[0].tokens}
    assert drawn == {0, 1}  # 0.45 + 0.25 reaches 0.7: the nucleus; 2, 3, 4 never
    assert restrict(probabilities.log(), top_p=0.71).isfinite().tolist() == [True, True, True, False, False]
    assert restrict(probabilities.log(), top_k=1).isfinite().tolist() == [True, False, False, False, False]
    # a sample's score is the model's own log-probability of what it wrote
    first = found[0][0]
    assert first.log_prob == pytest.approx(float(probabilities.log()[first.tokens].sum()), abs=1e-5)


# ----------------------------------------------------------------------------- end to end
def write_reversals(folder, count: int, seed: int):
    """Dialogues of 4 turns: a message of 2-4 words, its reversal, another message, its reversal."""
    generator = random.Random(seed)
    lines = []
    for _ in range(count):
        turns = []
        for _ in range(2):
            message = [generator.choice(WORDS) for _ in range(generator.randint(2, 4))]
            turns += [" ".join(message), " ".join(reversed(message))]
        lines.append(" __eou__ ".join(turns) + " __eou__")
    folder.write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def reversal_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat")
    files = {name: write_reversals(folder / f"{name}.txt", count, seed)
             for name, count, seed in (("train", 600, 1), ("valid", 40, 2), ("test", 40, 3))}
    run = folder / "run"
    result = rnnkit_here("train", "chat", "--dialogues", files["train"], "--valid-dialogues", files["valid"],
                    "--test-dialogues", files["test"], *SMALL, "--max-steps", "300", "--out", run,
                    threads=1)
    assert result.returncode == 0, result.stderr
    return run


def test_learns_to_reverse_the_last_message(reversal_run):
    summary = json.loads((reversal_run / "summary.json").read_text())
    test = summary["test"]
    assert test["perplexity"] < 2.5 and test["vocabulary"] == 4 + 2 + len(WORDS)
    # a third of the test replies (each dialogue's third turn) is a new random message: unlearnable
    assert test["greedy"]["bleu1"] > 0.8 and test["beam"]["corpus_bleu"] > 60
    assert test["calibration"]["ground_truth"]["corpus_bleu"] == pytest.approx(100)
    assert test["calibration"]["random_training_replies"]["corpus_bleu"] < test["beam"]["corpus_bleu"] / 2
    assert 0 < summary["test_unseen"]["examples"] < test["examples"]
    messages = [" ".join(random.Random(9 + i).choices(WORDS, k=3)) for i in range(10)]
    result = rnnkit_here("predict", "--checkpoint", reversal_run, *messages, "--format", "jsonl", "--n-best", "2")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["context"] for record in records] == messages
    right = sum(record["response"] == " ".join(reversed(message.split())) for record, message in zip(records, messages))
    assert right >= 8, records
    assert all(len(record["hypotheses"]) == 2 and record["hypotheses"][0]["score"] >= record["hypotheses"][1]["score"]
               for record in records)


def test_a_reply_served_over_http_streams_word_by_word_when_its_decoding_allows(reversal_run):
    """``rnnkit serve``: greedy decoding and one sample stream, each word as it is chosen, then predict's record."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'rnnkit[serve]'")
    from fastapi.testclient import TestClient

    from rnnkit.serve.app import build_app
    from rnnkit.serve.endpoints import Limits, ServedModel
    from rnnkit.tasks import read_trained_run

    limits = Limits(max_body_bytes=4096, max_inputs=4, max_input_chars=200, max_generated=300)
    run = read_trained_run(str(reversal_run))
    message = " ".join(WORDS[:3])

    def events(client, options: dict) -> tuple[list[dict], bool]:
        """The events' data, and whether the stream ended with an error event."""
        body = {"inputs": [message], "options": options, "stream": True}
        with client.stream("POST", "/v1/models/run/predict", json=body) as response:
            lines = list(response.iter_lines())
        return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")], "event: error" in lines

    with TestClient(build_app([ServedModel("run", run.task, run.session("cpu"), limits)], limits)) as client:
        for options, flags in (({"beam_size": 1}, ["--beam-size", "1"]),
                               ({"strategy": "sample", "top_k": 3, "sample_seed": 5},
                                ["--strategy", "sample", "--top-k", "3", "--sample-seed", "5"])):
            data, failed = events(client, options)
            expected = json.loads(rnnkit_here("predict", "--checkpoint", reversal_run, message, *flags,
                                              "--format", "jsonl").stdout)
            assert data[-1] == {"output": expected} and not failed
            words = [event["token"] for event in data[:-1]]
            assert len(words) >= 3 and " ".join(words) == expected["response"]  # no punctuation to detokenize
        data, failed = events(client, {"beam_size": 2})
        assert failed and len(data) == 1 and "beam search knows its best reply only at its end" in data[0]["error"]


def test_chat_through_a_pipe_keeps_the_conversation_and_its_commands(reversal_run):
    lines = ["w1 w2 w3", "", "/set top-p 0.5", "/set beam-size many", "w4 w5", "/reset", "zz qq", "/quit", "w1 w2"]
    result = run_process([sys.executable, "-m", "rnnkit", "chat", "--checkpoint", reversal_run],
                         input="\n".join(lines) + "\n", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "bot> w3 w2 w1"
    assert out[1].startswith("(an empty message") and out[2] == "(top-p 0.5)" and "expected a value of type int" in out[3]
    assert out[4] == "bot> w5 w4" and out[5] == "(a new conversation)"
    assert out[6].startswith("(no word of the message is in the model's vocabulary")
    assert len(out) == 8  # the reply to "zz qq", then /quit: "w1 w2" is never answered


def test_ctrl_c_ends_the_conversation_cleanly(reversal_run):
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "chat", "--checkpoint", str(reversal_run)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write("w1 w2\n")
    process.stdin.flush()
    assert select.select([process.stdout], [], [], 60)[0], "no reply in 60 s"
    assert process.stdout.readline() == "bot> w2 w1\n"  # waiting for the next message now
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err


def test_chat_in_a_terminal_until_end_of_input(reversal_run):
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "chat", "--checkpoint", str(reversal_run)],
                               stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    seen = b""

    def read_until(marker: bytes, count: int = 1, timeout: float = 60) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while seen.count(marker) < count and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                try:
                    seen += os.read(controller, 4096)
                except OSError:
                    break
        assert marker in seen, seen

    read_until(b"you> ")
    os.write(controller, b"w6 w7 w0\n")
    read_until(b"bot> w0 w7 w6")
    os.write(controller, b"/reset\n")
    read_until(b"(a new conversation)")
    read_until(b"you> ", count=3)  # readline has the terminal again: a Ctrl-D typed before would be the line's
    os.write(controller, b"\x04")  # Ctrl-D at the prompt: the end of input
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:  # read on: a terminal's writer waits for its reader
        if select.select([controller], [], [], 0.5)[0]:
            try:
                seen += os.read(controller, 4096)
            except OSError:
                break
    assert process.wait(timeout=10) == 0
    os.close(controller)
    assert b"Traceback" not in seen


def test_bad_input(tmp_path, reversal_run):
    bad = tmp_path / "bad.txt"
    bad.write_text("a __eou__ b __eou__\nonly one __eou__\n")
    assert_one_line_error(rnnkit_here("train", "chat", "--dialogues", bad, "--max-steps", "1"),
                          f"{bad} line 2: a dialogue needs at least two utterances")
    assert_one_line_error(rnnkit_here("train", "chat", "--data-dir", tmp_path / "missing", "--max-steps", "1"),
                          "--data-dir", "is not a folder")
    assert_one_line_error(rnnkit_here("train", "chat", "--structure", "cnn"), "--structure: expected one of")
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", reversal_run, "w1", "--n-best", "9"),
                          "--n-best: expected 1 to 5")
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", reversal_run, "w1", "--top-p", "1.5"), "--top-p")
    result = rnnkit_here("predict", "--checkpoint", reversal_run, "  ", "w1 w2")
    assert result.returncode == 2 and "the message is empty" in result.stdout.splitlines()[0]
    assert result.stdout.splitlines()[1] == "w2 w1"
