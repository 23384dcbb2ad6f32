"""Watching a recurrent layer step by step: its states, its gates, and ∂L/∂h_t.

``record(recurrent, layer)`` installs a step hook on one layer (the forward direction of a
bidirectional one) for the length of a ``with`` block. The hook keeps every state and, with
``probe_gradients``, adds a zero tensor p_t that requires grad to h_t:

    h_t' = h_t + p_t,  p_t = 0   so   ∂L/∂p_t = ∂L/∂h_t

through every path that leaves step t — the read-out at t and all later steps — which is
the quantity whose decay with distance is the vanishing-gradient problem. The layer runs on
the readable loop while hooked (kernels do not expose their steps); cells report their gates
to ``gate_observer`` from inside ``step``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from rnnkit.cells import State
from rnnkit.layers import Recurrent


@dataclass
class Recording:
    states: list[State] = field(default_factory=list)  # per step, detached
    probes: list[torch.Tensor] = field(default_factory=list)  # per step, (B, H) zeros that require grad
    gates: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # gate name -> per step (B, H)

    def gradient_norms(self) -> torch.Tensor:
        """(T, B): ‖∂L/∂h_t‖ per step and sequence, after ``loss.backward()``."""
        if not self.probes:
            raise RuntimeError("record(..., probe_gradients=True) before the forward pass, then call loss.backward()")
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in self.probes]
        return torch.stack(grads).norm(dim=-1)

    def gate_values(self) -> dict[str, torch.Tensor]:
        """gate name -> (T, B, H) activations."""
        return {name: torch.stack(values) for name, values in self.gates.items()}

    def memory(self) -> torch.Tensor:
        """(T, B, H): the cell's memory at every step (c for an LSTM, h for the others)."""
        return torch.stack([state[-1] for state in self.states])


@contextmanager
def record(recurrent: Recurrent, layer: int = -1, probe_gradients: bool = False):
    """Record layer ``layer`` of ``recurrent`` (default: the top one) during the ``with`` block."""
    watched = recurrent.layers[layer]
    sequence_layer = getattr(watched, "forward_layer", watched)
    cell = sequence_layer.cell
    recording = Recording()

    def on_step(t: int, state: State) -> State:
        if probe_gradients:
            probe = torch.zeros_like(state[0], requires_grad=True)
            recording.probes.append(probe)
            state = (state[0] + probe,) + tuple(state[1:])
        recording.states.append(tuple(part.detach() for part in state))
        return state

    def on_gates(gates: dict[str, torch.Tensor]) -> None:
        for name, value in gates.items():
            recording.gates.setdefault(name, []).append(value.detach())

    sequence_layer.step_hook, cell.gate_observer = on_step, on_gates
    try:
        yield recording
    finally:
        sequence_layer.step_hook, cell.gate_observer = None, None
