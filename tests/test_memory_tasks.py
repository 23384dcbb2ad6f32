"""The long-term-memory tasks: exact data formats and baselines, batching, and that learning happens."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.whole_sequences import SampledBatches, ShuffledBatches
from rnnkit.data.digits import DIGIT_PIXELS, load_digit_sequences
from rnnkit.data.memory_tasks import (ADDING_BASELINE_MSE, COPY_BLANK, COPY_CLASSES, COPY_DELIMITER, COPY_LENGTH,
                                      adding_problem, copy_memory, copy_memoryless_baseline)
from rnnkit.errors import UserError
from rnnkit.models import RecurrentConfig
from rnnkit.tasks import get_task
from rnnkit.train.distributed import SINGLE_PROCESS


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- adding problem
@pytest.mark.parametrize("seq_len", [2, 3, 10, 101])
def test_adding_problem_marks_one_value_in_each_half_and_targets_their_sum(seq_len):
    inputs, targets = adding_problem(500, seq_len, generator())
    assert inputs.shape == (seq_len, 500, 2) and targets.shape == (500,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    assert (markers.sum(0) == 2).all()
    half = seq_len // 2
    assert (markers[:half].sum(0) == 1).all() and (markers[half:].sum(0) == 1).all()
    torch.testing.assert_close(targets, (values * markers).sum(0))


def test_adding_problem_markers_cover_each_half():
    _, markers = adding_problem(4000, 10, generator())[0].unbind(-1)
    assert (markers.sum(1) > 0).all()  # every position is marked in some sequence


def test_adding_baseline_is_the_mse_of_always_answering_one():
    _, targets = adding_problem(200_000, 20, generator())
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert float(((targets - 1) ** 2).mean()) == pytest.approx(ADDING_BASELINE_MSE, rel=0.01)


# ----------------------------------------------------------------------------- copy task
@pytest.mark.parametrize("seq_len", [1, 5, 100])
def test_copy_task_has_the_arjovsky_layout(seq_len):
    inputs, targets = copy_memory(64, seq_len, generator())
    total = seq_len + 2 * COPY_LENGTH
    assert inputs.shape == targets.shape == (total, 64) and inputs.dtype == targets.dtype == torch.long
    symbols = inputs[:COPY_LENGTH]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (inputs[COPY_LENGTH : COPY_LENGTH + seq_len - 1] == COPY_BLANK).all()
    assert (inputs[COPY_LENGTH + seq_len - 1] == COPY_DELIMITER).all()
    assert (inputs[-COPY_LENGTH:] == COPY_BLANK).all()
    assert (targets[: seq_len + COPY_LENGTH] == COPY_BLANK).all()
    assert torch.equal(targets[-COPY_LENGTH:], symbols)
    assert int(targets.max()) < COPY_CLASSES


@pytest.mark.parametrize("seq_len", [1, 100, 200])
def test_copy_baseline_is_the_loss_of_a_memoryless_model(seq_len):
    _, targets = copy_memory(32, seq_len, generator())
    logits = torch.full(targets.shape + (COPY_CLASSES,), -1e9)
    logits[: seq_len + COPY_LENGTH, :, COPY_BLANK] = 0.0  # certain of the blanks
    logits[-COPY_LENGTH:, :, 1:] = 0.0  # uniform over the 8 symbols at the end
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert float(loss) == pytest.approx(copy_memoryless_baseline(seq_len), rel=1e-5)
    assert copy_memoryless_baseline(100) == pytest.approx(10 * math.log(8) / 120)


# ----------------------------------------------------------------------------- digits
def test_digit_splits_are_disjoint_stratified_sequences_of_64_pixels():
    splits = load_digit_sequences(permute=False)
    sizes = {name: split.labels.numel() for name, split in splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["train"] > sizes["test"] > sizes["validation"]
    for split in splits.values():
        assert split.inputs.shape == (DIGIT_PIXELS, split.labels.numel(), 1)
        assert 0 <= float(split.inputs.min()) and float(split.inputs.max()) <= 1
        shares = torch.bincount(split.labels, minlength=10) / split.labels.numel()
        assert float(shares.min()) > 0.08 and float(shares.max()) < 0.12  # every class about 10%
    images = torch.cat([split.inputs.squeeze(-1).t() for split in splits.values()])
    assert torch.unique(images, dim=0).shape[0] >= 1790  # no image in two splits (a few duplicates exist in the data)


def test_permuted_digits_reorder_the_pixels_of_each_image_the_same_way():
    plain = load_digit_sequences(permute=False)["test"]
    permuted = load_digit_sequences(permute=True)["test"]
    assert torch.equal(plain.labels, permuted.labels)
    assert not torch.equal(plain.inputs, permuted.inputs)
    order = torch.randperm(DIGIT_PIXELS, generator=generator(0))
    assert torch.equal(permuted.inputs, plain.inputs[order])
    assert torch.equal(load_digit_sequences(permute=True)["test"].inputs, permuted.inputs)


# ----------------------------------------------------------------------------- batching
def sample(count, gen):
    return adding_problem(count, 6, gen)


def test_sampled_batches_are_fresh_reproducible_and_split_the_global_batch_between_processes():
    batches = SampledBatches(sample, 4, epoch_size=8, seed=3)
    first, second = batches.next_batch(), batches.next_batch()
    assert not torch.equal(first.inputs, second.inputs)
    assert batches.epoch_progress() == 1.0 and first.starts_epoch
    resumed = SampledBatches(sample, 4, epoch_size=8, seed=3)
    resumed.load_state_dict({"drawn": 1})
    assert torch.equal(resumed.next_batch().inputs, second.inputs)
    # Two processes of batch 2 read the rows of one process's batch of 4, each its own.
    halves = [SampledBatches(sample, 2, epoch_size=8, seed=3, rank=rank, world_size=2).next_batch() for rank in (0, 1)]
    for rank, half in enumerate(halves):
        assert torch.equal(half.inputs, first.inputs[:, rank::2]) and torch.equal(half.targets, first.targets[rank::2])
    per_step = SampledBatches(lambda count, gen: (torch.rand(5, count, 1, generator=gen),
                                                  torch.randint(0, 3, (5, count), generator=gen)),
                              2, epoch_size=8, seed=3, rank=1, world_size=2, per_step=True).next_batch()
    assert per_step.inputs.shape == (5, 2, 1) and per_step.targets.shape == (5, 2)


def test_shuffled_batches_visit_every_sequence_once_per_epoch_split_between_processes():
    inputs = torch.arange(10.0).view(1, 10, 1)
    targets = torch.arange(10)
    ranks = [ShuffledBatches(inputs, targets, batch_size=2, seed=0, rank=rank, world_size=2) for rank in range(2)]
    seen = [int(t) for _ in range(2) for batches in ranks for t in batches.next_batch().targets]
    assert len(seen) == len(set(seen)) == 8  # 2 global batches of 4, no sequence twice
    assert ranks[0].epoch_progress() == 1.0  # 10 // 4 = 2 batches per epoch, the short one dropped
    epoch_two = ranks[0].next_batch().targets
    restarted = ShuffledBatches(inputs, targets, batch_size=2, seed=0, rank=0, world_size=2)
    restarted.load_state_dict(ranks[0].state_dict() | {"position": 0})
    assert torch.equal(restarted.next_batch().targets, epoch_two)


# ----------------------------------------------------------------------------- tasks and models
def session_of(task_name: str, **model):
    task = get_task(task_name)
    config = task.default_config()
    for name, value in model.items():
        setattr(config.model if hasattr(config.model, name) else config.dataset, name, value)
    config.train.batch_size = 32
    config.validate()
    return task.start(config, SINGLE_PROCESS, torch.device("cpu"))


def test_an_lstm_beats_the_adding_baseline_at_small_t_within_seconds():
    torch.manual_seed(0)
    session = session_of("adding", seq_len=10, hidden_size=32, validation_size=200, test_size=500)
    optimizer = torch.optim.Adam(session.model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _, _ = session.training_step(session.model, session.batches.next_batch(), None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = session.test_summary()["test"]
    assert test["loss"] < 0.5 * ADDING_BASELINE_MSE, test


def test_an_untrained_model_scores_about_the_baselines():
    adding = session_of("adding", seq_len=10, hidden_size=8, test_size=500)
    with torch.no_grad():
        assert adding.test_summary()["test"]["loss"] > 0.5 * ADDING_BASELINE_MSE
    copy = session_of("copy", seq_len=5, hidden_size=8, test_size=100)
    summary = copy.test_summary()
    assert summary["test"]["loss"] > summary["baseline"]["loss"]  # chance over 9 classes is worse than memoryless


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "janet", "indrnn"])
def test_every_cell_runs_every_task_and_its_loss_has_gradients(cell):
    for task, options in (("adding", {"seq_len": 6}), ("copy", {"seq_len": 3}), ("digits", {})):
        session = session_of(task, cell=cell, hidden_size=8, **options)
        loss, state, count = session.training_step(session.model, session.batches.next_batch(), None)
        assert state is None and count == 32  # whole sequences: nothing carried
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in session.model.parameters())


def test_bidirectional_many_to_one_reads_both_directions_final_states():
    session = session_of("digits", cell="gru", hidden_size=8, bidirectional=True, merge_mode="sum")
    model = session.model.eval()
    batch = next(session.validation.chunks(4))
    forward_cell, backward_cell = model.rnn.layers[0].direction_cells

    def final_h(cell, sequence):  # the cell stepped by hand over (T, B, 1)
        state = None
        for x_t in sequence:
            _, state = cell(x_t, state)
        return state[0]

    with torch.no_grad():
        both = torch.cat([final_h(forward_cell, batch.inputs), final_h(backward_cell, batch.inputs.flip(0))], dim=-1)
        expected = model.head(both)  # forward first, then the backward direction's state after reading x_1
        outputs, loss, _ = model(batch.inputs, targets=batch.targets)
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(expected, batch.targets))


def test_t_max_defaults_to_the_sequence_length_for_janet_and_indrnn():
    indrnn = session_of("adding", cell="indrnn", seq_len=50, hidden_size=8).model.rnn.cells[0]
    assert indrnn.t_max == 50 and float(indrnn.weight_hh.detach().max()) <= 2 ** (1 / 50)
    janet = session_of("copy", cell="janet", seq_len=30, hidden_size=8, t_max=7).model.rnn.cells[0]
    assert janet.t_max == 7


@pytest.mark.parametrize("changes, fragment", [
    ({"activation": "relu", "cell": "janet"}, "--activation: the janet cell takes no activation"),
    ({"activation": "sigmoid", "cell": "rnn"}, "--activation"),
    ({"t_max": 0.5}, "--t-max"),
])
def test_recurrent_config_rejects_options_the_cell_cannot_take(changes, fragment):
    with pytest.raises(UserError, match=fragment):
        RecurrentConfig(**changes).validate()
