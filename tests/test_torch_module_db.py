"""PyTorch's own module tests for nn.RNN, nn.LSTM and nn.GRU, run against rnnkit's drop-in classes.

PyTorch tests every module through ``torch.testing._internal.common_modules.module_db``: for
each module, the inputs its tests feed it (``module_inputs_func``: every combination of bias,
batch_first, bidirectional, nonlinearity and proj_size, unbatched inputs with and without a
state, packed sequences) and the mistakes they expect it to refuse (``module_error_inputs_func``),
which ``test/test_modules.py`` runs. Here the same inputs go to rnnkit's class built with the
same arguments and torch.nn's weights, in training and eval mode, and the checks of
test_modules.py that test behaviour are made, most of them more strictly:

- test_forward: rnnkit's outputs and final states equal torch.nn's (not only a reference function);
- test_grad: the gradients of inputs and of every parameter, by name, equal torch.nn's;
- test_non_contiguous_tensors: a non-contiguous input gives what its contiguous copy gives;
- test_save_load: ``torch.save`` of the module and ``torch.load`` give a module computing the same;
- test_device_ctx_init / test_factory_kwargs: built under ``torch.device("meta")`` or with dtype=,
  every parameter is created there, with that dtype, with torch.nn's shapes;
- test_errors: every construction or forward mistake is refused with the exception type torch.nn
  raises (TypeError, ValueError).

Left out, as internals rather than behaviour: the wording of error messages (rnnkit's name the
argument, what was expected and what was received; the types are torch's, which is what
``except`` clauses test), test_memory_format (channels-last layouts of convolutions),
test_check_inplace (these modules have no ``inplace`` option) and the CPU/GPU parity tests
(no GPU here; the GPU paths have their own tests).

``torch.testing._internal`` needs ``expecttest`` (in the dev extra); without it these tests skip.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

import rnnkit

common_modules = pytest.importorskip(
    "torch.testing._internal.common_modules", reason="PyTorch's module_db needs expecttest (pip install expecttest)"
)

OURS = {nn.RNN: rnnkit.RNN, nn.LSTM: rnnkit.LSTM, nn.GRU: rnnkit.GRU}
INFOS = [info for info in common_modules.module_db if info.module_cls in OURS]


def _samples(info, training: bool):
    packed = {} if info.module_cls is nn.LSTM else {"with_packed_sequence": True}  # LSTM's inputs have no packed ones
    return info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=True, training=training, **packed)


def _cases():
    for info in INFOS:
        for training in (True, False):
            for index, sample in enumerate(_samples(info, training)):
                mode = "train" if training else "eval"
                yield pytest.param(info, sample, training, id=f"{info.module_cls.__name__}-{mode}-{index}")


CASES = list(_cases())


def _tensors(value) -> list[torch.Tensor]:
    """Every tensor of an output, in order: PackedSequence data, states, tuples of states."""
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [tensor for item in value for tensor in _tensors(item)]
    return [value]


def _pair(info, sample, training: bool):
    arguments = sample.constructor_input
    torch.manual_seed(0)
    theirs = info.module_cls(*arguments.args, **arguments.kwargs, dtype=torch.float64).train(training)
    ours = OURS[info.module_cls](*arguments.args, **arguments.kwargs, dtype=torch.float64).train(training)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _inputs(sample):
    """A fresh copy of the sample's forward inputs (leaves that collect their own gradients)."""
    def copy(value):
        if isinstance(value, PackedSequence):
            return value._replace(data=copy(value.data))
        if isinstance(value, tuple):
            return tuple(copy(item) for item in value)
        return value.detach().clone().requires_grad_(value.requires_grad) if isinstance(value, torch.Tensor) else value
    return [copy(arg) for arg in sample.forward_input.args]


def test_module_db_holds_the_three_torch_modules_and_their_inputs():
    assert {info.module_cls for info in INFOS} == set(OURS)
    assert len(CASES) == 2 * (64 + 32 + 32)  # PyTorch's RNN (nonlinearity too), GRU and LSTM samples, both modes


@pytest.mark.parametrize("info, sample, training", CASES)
def test_forward_and_gradients_equal_torch_nn_s(info, sample, training):
    ours, theirs = _pair(info, sample, training)
    our_inputs, their_inputs = _inputs(sample), _inputs(sample)
    got, want = ours(*our_inputs), theirs(*their_inputs)
    for value, expected in zip(_tensors(got), _tensors(want), strict=True):
        torch.testing.assert_close(value, expected)
    weights = [torch.linspace(-1, 1, t.numel(), dtype=t.dtype).reshape(t.shape) for t in _tensors(want)]
    sum((t * w).sum() for t, w in zip(_tensors(got), weights)).backward()
    sum((t * w).sum() for t, w in zip(_tensors(want), weights)).backward()
    for value, expected in zip(_tensors(our_inputs), _tensors(their_inputs), strict=True):
        torch.testing.assert_close(value.grad, expected.grad)
    their_grads = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, their_grads[name].grad, msg=name)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
def test_non_contiguous_inputs_save_load_and_meta_construction(info):
    for sample in _samples(info, training=False):
        ours, _ = _pair(info, sample, training=False)
        inputs = [value for value in _inputs(sample) if isinstance(value, torch.Tensor)]
        if not inputs:  # a packed sequence: its data is contiguous by construction
            continue
        strided = [torch.repeat_interleave(value.detach(), 2, dim=-1)[..., ::2] for value in inputs]
        assert not strided[0].is_contiguous()
        for value, expected in zip(_tensors(ours(*strided)), _tensors(ours(*[s.contiguous() for s in strided])), strict=True):
            torch.testing.assert_close(value, expected)
        buffer = io.BytesIO()
        torch.save(ours, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        for value, expected in zip(_tensors(loaded(*strided)), _tensors(ours(*strided)), strict=True):
            torch.testing.assert_close(value, expected, rtol=0, atol=0)
        arguments = sample.constructor_input
        with torch.device("meta"):
            on_meta = OURS[info.module_cls](*arguments.args, **arguments.kwargs)
            their_meta = info.module_cls(*arguments.args, **arguments.kwargs)
        assert {p.device.type for p in on_meta.parameters()} == {"meta"}
        assert [(n, p.shape) for n, p in on_meta.named_parameters()] == [(n, p.shape) for n, p in their_meta.named_parameters()]
        assert {p.dtype for p in ours.parameters()} == {torch.float64}


def _error_cases():
    for info in INFOS:
        errors = info.module_error_inputs_func(info, device="cpu", dtype=torch.float32, requires_grad=False, training=True)
        for index, error in enumerate(errors):
            yield pytest.param(info, error, id=f"{info.module_cls.__name__}-{index}-{error.error_type.__name__}")


@pytest.mark.parametrize("info, error", list(_error_cases()))
def test_mistakes_torch_nn_refuses_are_refused_with_its_exception_type(info, error):
    sample = error.module_error_input
    arguments = sample.constructor_input
    construction = error.error_on == common_modules.ModuleErrorEnum.CONSTRUCTION_ERROR
    with pytest.raises(error.error_type):
        module = OURS[info.module_cls](*arguments.args, **arguments.kwargs)
        if not construction:
            module(*sample.forward_input.args, **sample.forward_input.kwargs)
    if not construction:  # the module itself is fine: only the call is refused
        OURS[info.module_cls](*arguments.args, **arguments.kwargs)
