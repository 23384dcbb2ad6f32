"""The music task: the NLL and frame-accuracy metrics by hand on tiny piano rolls, the MIDI writer round-tripped
through pretty_midi, the .mat and MIDI readers' errors, and the task end to end through the CLI (train on a
repeating pattern written here, generate MIDI and a figure, evaluate)."""

from __future__ import annotations

import json
import math

import numpy
import pytest
import scipy.io
import torch

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.data.piano_rolls import KEYS, midi_bytes, read_mat_splits, read_midi
from rnnkit.errors import UserError
from rnnkit.models.next_frame import NextFrameConfig, NextFrameModel, frame_nll
from rnnkit.metrics import frame_agreement, frequency_baseline_nll

SMALL = ["--hidden-size", "32", "--batch-size", "4", "--dropout", "0", "--lr", "0.03", "--schedule", "constant",
         "--eval-every", "50",
         "--max-minutes", "0", "--epochs", "0", "--log-every", "10"]


def test_frame_nll_is_the_sum_over_keys_of_the_binary_cross_entropy_over_the_real_frames():
    logits = torch.tensor([[[0.0, 2.0]], [[-1.0, 1.0]], [[5.0, 5.0]]]).repeat(1, 2, 1)  # (T=3, B=2, K=2)
    targets = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]]).repeat(1, 2, 1)
    lengths = torch.tensor([3, 2])  # sequence 1's third frame is padding

    def bce(logit, on):
        p = 1 / (1 + math.exp(-logit))
        return -math.log(p if on else 1 - p)

    frame = [bce(0, 1) + bce(2, 0), bce(-1, 0) + bce(1, 1), bce(5, 1) + bce(5, 1)]
    total, frames = frame_nll(logits, targets, lengths)
    assert frames == 5
    assert float(total) == pytest.approx(2 * (frame[0] + frame[1]) + frame[2], rel=1e-6)


def test_frame_accuracy_counts_hits_and_misses_over_the_real_frames():
    predicted = torch.tensor([[[1, 1, 0]], [[0, 1, 1]]], dtype=torch.bool).repeat(1, 2, 1)  # (T=2, B=2, K=3)
    actual = torch.tensor([[[1, 0, 0]], [[0, 1, 0]]], dtype=torch.bool).repeat(1, 2, 1)
    # Sequence 0 counts both frames: TP 1 + 1, FP 1 + 1; sequence 1 only its first: TP 1, FP 1.
    assert frame_agreement(predicted, actual, torch.tensor([2, 1])) == (3, 3)


def test_frequency_baseline_by_hand():
    frequencies = torch.tensor([0.5, 0.25])
    pieces = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])]
    expected = -(math.log(0.5) + math.log(0.75) + math.log(0.5) + math.log(0.25) + math.log(0.5) + math.log(0.25)) / 3
    assert frequency_baseline_nll(frequencies, pieces) == pytest.approx(expected, rel=1e-6)


def test_the_model_loss_is_the_mean_nll_per_frame_and_padding_changes_nothing():
    model = NextFrameModel(KEYS, NextFrameConfig(cell="gru", hidden_size=8)).eval()
    short, long = (torch.rand(length, KEYS).round() for length in (3, 5))
    batch = torch.zeros(5, 2, KEYS)
    batch[:3, 0], batch[:, 1] = short, long
    logits, loss, _ = model(batch, lengths=torch.tensor([3, 5]), targets=batch)
    total, frames = frame_nll(logits, batch, torch.tensor([3, 5]))
    assert loss.item() == pytest.approx(total.item() / 8)
    alone, _, _ = model(short.unsqueeze(1))
    torch.testing.assert_close(alone[:, 0], logits[:3, 0])


def test_sampling_at_temperature_zero_takes_the_keys_over_one_half_and_feeds_them_back():
    model = NextFrameModel(KEYS, NextFrameConfig(cell="lstm", hidden_size=8)).eval()
    prime = torch.zeros(2, KEYS)
    sampled = model.sample(prime, 4, temperature=0)
    expected, frames = prime, []
    for _ in range(4):
        logits, _, _ = model(expected.unsqueeze(1))
        frames.append((logits[-1, 0] > 0).float())
        expected = torch.cat([expected, frames[-1][None]])
    torch.testing.assert_close(sampled, torch.stack(frames))
    a, b = (model.sample(prime, 6, 1.0, torch.Generator().manual_seed(3)) for _ in range(2))
    torch.testing.assert_close(a, b)  # one seed, one piece


def test_the_chain_output_is_a_normalised_distribution_over_every_frame():
    """Summed over all 2^K frames, the probabilities a model gives the next frame are 1: the chain's W only
    looks at keys below each key (a mask that let a key see itself or a key above would break this)."""
    keys = 4
    model = NextFrameModel(keys, NextFrameConfig(cell="gru", hidden_size=6, output="chain")).eval()
    with torch.no_grad():
        model.chain.weight.normal_(0, 2)
    history = torch.rand(3, 1, keys).round()
    frames = torch.tensor([[(code >> k) & 1 for k in range(keys)] for code in range(2 ** keys)], dtype=torch.float32)
    inputs = history.expand(-1, len(frames), -1)  # (3, 16, K): every possible frame after the same history
    targets = torch.cat([inputs[1:], frames.unsqueeze(0)])  # the last step's target is each frame in turn
    logits = model.conditioned(model(inputs)[0], targets)
    log_p = -torch.nn.functional.binary_cross_entropy_with_logits(logits[-1], frames, reduction="none").sum(-1)
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    _, loss, _ = model(inputs, targets=targets)  # the model's own loss is this likelihood's, per frame
    total, count = frame_nll(logits, targets, None)
    assert loss.item() == pytest.approx(total.item() / count)
    independent = NextFrameModel(keys, NextFrameConfig(cell="gru", hidden_size=6))
    independent.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("chain")})
    assert not torch.allclose(independent(inputs)[0][-1], logits[-1])  # the chain changed the logits


def test_the_chain_draws_key_by_key_reading_the_keys_already_drawn():
    model = NextFrameModel(3, NextFrameConfig(cell="gru", hidden_size=4, output="chain")).eval()
    with torch.no_grad():
        model.chain.weight.copy_(torch.tensor([[9.0, 9.0, 9.0], [-5.0, 9.0, 9.0], [4.0, 4.0, 9.0]]))
    # key 0: 1 > 0 -> on; key 1: 2 - 5 < 0 -> off; key 2: -3 + 4 > 0 -> on (the 9s are masked: above or on the diagonal)
    assert model.draw(torch.tensor([1.0, 2.0, -3.0]), temperature=0).tolist() == [1.0, 0.0, 1.0]
    assert model.draw(torch.tensor([-1.0, 2.0, -3.0]), temperature=0).tolist() == [0.0, 1.0, 1.0]  # -3 + 4 x_1


def test_the_midi_writer_round_trips_a_piano_roll_through_pretty_midi(tmp_path):
    roll = torch.zeros(6, KEYS)
    roll[0:3, 39] = 1  # middle C held for three frames: one note
    roll[1, 43] = roll[3, 43] = 1  # E struck twice
    roll[5, 0] = roll[4:6, 87] = 1  # the lowest and highest keys, at the end
    path = tmp_path / "roll.mid"
    path.write_bytes(midi_bytes(roll, frame_seconds=0.25))
    torch.testing.assert_close(read_midi(path, frame_seconds=0.25), roll)
    import pretty_midi

    notes = sorted((note.pitch, note.start, note.end) for note in pretty_midi.PrettyMIDI(str(path)).instruments[0].notes)
    assert notes == [(21, 1.25, 1.5), (60, 0.0, 0.75), (64, 0.25, 0.5), (64, 0.75, 1.0), (108, 1.0, 1.5)]


def write_mat(path, splits: dict[str, list[numpy.ndarray]]):
    cells = {}
    for key, rolls in splits.items():
        cell = numpy.empty((1, len(rolls)), dtype=object)
        for i, roll in enumerate(rolls):
            cell[0, i] = roll.astype(numpy.uint8)
        cells[key] = cell
    scipy.io.savemat(path, cells)
    return path


def test_mat_files_are_read_by_split_and_bad_ones_are_named(tmp_path):
    rolls = [numpy.eye(4, KEYS), numpy.ones((2, KEYS))]
    path = write_mat(tmp_path / "ok.mat", {"traindata": rolls, "validdata": rolls[:1], "testdata": rolls[1:]})
    splits = read_mat_splits(path)
    assert [len(splits[split]) for split in ("train", "validation", "test")] == [2, 1, 1]
    torch.testing.assert_close(splits["train"][0], torch.eye(4, KEYS))
    with pytest.raises(UserError, match=r"missing.mat: no validdata, testdata in the file \(it has traindata\)"):
        read_mat_splits(write_mat(tmp_path / "missing.mat", {"traindata": rolls}))
    (tmp_path / "text.mat").write_text("not matlab")
    with pytest.raises(UserError, match="text.mat: not a MATLAB .mat file"):
        read_mat_splits(tmp_path / "text.mat")
    with pytest.raises(UserError, match=r"item 1 has shape \(3, 12\), expected \(steps, 88\)"):
        read_mat_splits(write_mat(tmp_path / "narrow.mat", {key: [numpy.ones((3, 12))] for key in
                                                             ("traindata", "validdata", "testdata")}))


def test_a_midi_file_that_cannot_be_parsed_is_named(tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(UserError, match="broken.mid: not a MIDI file pretty_midi can parse"):
        read_midi(tmp_path / "broken.mid", 0.25)


def arpeggios(count: int, seed: int) -> list[numpy.ndarray]:
    """Pieces that climb a C-major arpeggio (C E G C') from a random start, one note per frame: each next
    frame follows from the one before, so a model that learnt it predicts it nearly surely."""
    generator = numpy.random.default_rng(seed)
    keys = [39, 43, 46, 51]
    pieces = []
    for _ in range(count):
        start, length = generator.integers(4), generator.integers(8, 20)
        roll = numpy.zeros((length, KEYS))
        for t in range(length):
            roll[t, keys[(start + t) % 4]] = 1
        pieces.append(roll)
    return pieces


@pytest.fixture(scope="module")
def arpeggio_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("music")
    write_mat(folder / "JSB_Chorales.mat", {"traindata": arpeggios(40, 1), "validdata": arpeggios(8, 2),
                                            "testdata": arpeggios(8, 3)})
    run = folder / "run"
    result = rnnkit_here("train", "music", "--data-dir", folder, *SMALL, "--max-steps", "300", "--out", run,
                    threads=1)
    assert result.returncode == 0, result.stderr
    return run


def test_learns_a_repeating_pattern_far_below_the_baseline(arpeggio_run):
    summary = json.loads((arpeggio_run / "summary.json").read_text())
    assert summary["baseline"]["nll"] > 2.0  # four keys, each on a quarter of the time
    assert summary["test"]["nll"] < 0.3 and summary["test"]["accuracy"] > 0.95


def test_generate_writes_midi_and_a_figure_and_continues_a_prime(arpeggio_run, tmp_path):
    prime = torch.zeros(2, KEYS)
    prime[0, 39], prime[1, 43] = 1, 1  # C then E: the arpeggio continues with G, C'
    (tmp_path / "prime.mid").write_bytes(midi_bytes(prime, 0.25))
    result = rnnkit_here("generate", "--checkpoint", arpeggio_run, "--steps", "6", "--prime", tmp_path / "prime.mid",
                    "--temperature", "0", "--out", tmp_path / "song.mid", tmp_path / "song.png")
    assert result.returncode == 0, result.stderr
    assert "song.mid (MIDI, 8 steps of 0.25 s)" in result.stdout
    song = read_midi(tmp_path / "song.mid", 0.25)
    assert song.shape == (8, KEYS)
    assert song.argmax(1).tolist() == [39, 43, 46, 51, 39, 43, 46, 51]
    assert (tmp_path / "song.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reports_the_test_split_and_a_midi_folder(arpeggio_run, tmp_path):
    result = rnnkit_here("evaluate", "--checkpoint", arpeggio_run)
    assert result.returncode == 0, result.stderr
    test_nll = json.loads((arpeggio_run / "summary.json").read_text())["test"]["nll"]
    assert f"evaluation NLL {test_nll:.4f} nats/frame" in result.stdout
    (tmp_path / "midi").mkdir()
    for number, piece in enumerate(arpeggios(3, 4)):
        (tmp_path / "midi" / f"{number}.mid").write_bytes(midi_bytes(torch.from_numpy(piece), 0.25))
    result = rnnkit_here("evaluate", "--checkpoint", arpeggio_run, "--midi", tmp_path / "midi")
    assert result.returncode == 0, result.stderr
    nll = float(result.stdout.split("NLL ")[1].split()[0])
    assert nll < 0.3


def test_trains_on_a_folder_of_midi_files(tmp_path):
    (tmp_path / "midi").mkdir()
    for number, piece in enumerate(arpeggios(10, 5)):
        (tmp_path / "midi" / f"{number:02d}.mid").write_bytes(midi_bytes(torch.from_numpy(piece), 0.25))
    result = rnnkit_here("train", "music", "--midi", tmp_path / "midi", *SMALL, "--max-steps", "5", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "pieces train 8, validation 1, test 1" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--dataset", "bach"], "--dataset: expected one of jsb, nottingham, musedata, piano, got 'bach'"),
    (["--data-dir", "/nonexistent"], "/nonexistent/JSB_Chorales.mat: no such file"),
    (["--midi", "/nonexistent"], "--midi: /nonexistent is not a folder"),
    (["--bidirectional"], "--bidirectional: a next-frame model reads only the past"),
])
def test_bad_training_options_are_one_line(arguments, message, tmp_path):
    result = rnnkit_here("train", "music", *arguments, "--out", tmp_path / "run")
    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()


def test_bad_generate_options_are_one_line_and_write_nothing(arpeggio_run, tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"not midi at all")
    for arguments, message in [
        (["--out", tmp_path / "song.wav"], "song.wav has an unknown suffix; expected .mid, .midi, .png"),
        (["--out", tmp_path / "missing" / "song.mid"], "the folder"),
        (["--steps", "0"], "--steps: expected a positive number of time steps"),
        (["--prime", tmp_path / "broken.mid", "--out", tmp_path / "x.mid"], "broken.mid: not a MIDI file"),
    ]:
        assert_one_line_error(rnnkit_here("generate", "--checkpoint", arpeggio_run, *arguments), message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.mid"]
