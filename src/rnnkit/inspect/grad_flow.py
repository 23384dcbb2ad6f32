"""Gradient flow through time: ‖∂L/∂h_t‖ at every step t of a batch, the picture of vanishing gradients.

For a loss read after the last step (adding, digits), ∂L/∂h_t reaches step t only through
the recurrence, so its norm against t shows how far back the error signal travels: it
falls geometrically for a plain tanh RNN, and stays up where gates or IndRNN's bounded
element-wise recurrence keep it alive (Pascanu et al. 2013; Hochreiter 1991).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.inspect.recording import record
from rnnkit.inspect.source import Inspectable

UNDERFLOW_FLOOR = 1e-30


@dataclass
class GradientFlow:
    label: str  # which model: its cell, and its run folder for a trained one
    norms: list[float]  # mean over the batch of ‖∂L/∂h_t‖, t = 0 .. T-1 (top layer, forward direction)
    loss: float


def gradient_flow(session: Inspectable, batch_size: int, label: str) -> GradientFlow:
    """Backpropagate the task's loss on one evaluation batch and measure ∂L/∂h_t of the top layer."""
    model = session.model
    model.eval()  # no dropout: the gradient of the model itself
    batch = session.inspection_batch(batch_size)
    model.zero_grad(set_to_none=True)
    with record(session.recurrent_layers(), probe_gradients=True) as recording:
        loss, _, _ = session.training_step(model, batch, None)
        loss.backward()
    norms = recording.gradient_norms().mean(dim=1)  # (T,)
    model.zero_grad(set_to_none=True)
    return GradientFlow(label, [float(value) for value in norms], loss.item())


def write_gradient_flow(flows: list[GradientFlow], folder: Path, title: str) -> list[Path]:
    """grad_flow.png (log scale, one curve per model), grad_flow.csv and grad_flow.json in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "grad_flow.png", folder / "grad_flow.csv", folder / "grad_flow.json"]
    _plot(flows, paths[0], title)
    steps = max(len(flow.norms) for flow in flows)
    with open(paths[1], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", *(flow.label for flow in flows)])
        for t in range(steps):
            writer.writerow([t, *(flow.norms[t] if t < len(flow.norms) else "" for flow in flows)])
    paths[2].write_text(json.dumps({"title": title, "quantity": "mean over the batch of ||dL/dh_t||",
                                    "models": [flow.__dict__ for flow in flows]}, indent=2))
    return paths


def _plot(flows: list[GradientFlow], path: Path, title: str) -> None:
    from rnnkit.figures import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for flow in flows:
        values = torch.tensor(flow.norms).clamp_min(UNDERFLOW_FLOOR)  # a log axis cannot show 0
        axes.plot(range(len(flow.norms)), values, label=flow.label, linewidth=1.4)
    if any(value == 0 for flow in flows for value in flow.norms):
        axes.text(0.01, 0.02, f"exact zeros (underflow) are drawn at {UNDERFLOW_FLOOR:g}", transform=axes.transAxes, fontsize=7)
    axes.set_yscale("log")
    axes.set_xlabel("time step t")
    axes.set_ylabel(r"$\|\partial L / \partial h_t\|$ (batch mean)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
