"""Gate activity: how often each gate is saturated (near 0 or 1) and how it moves over time.

A gate near 1 passes its signal unchanged (a forget gate near 1 keeps the memory), near 0
blocks it; Karpathy et al. (2015) read LSTMs this way, by the fraction of time each gate is
"left-saturated" (< 0.1) or "right-saturated" (> 0.9).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.figures import pyplot
from rnnkit.inspect.recording import Recording, record
from rnnkit.inspect.source import Inspectable

SATURATED_BELOW, SATURATED_ABOVE = 0.1, 0.9
HISTOGRAM_BINS = 20


def record_steps(session: Inspectable, batch: Batch, layer: int = -1) -> Recording:
    """Run the model on ``batch`` and return what layer ``layer`` of its watched layers did at each step (gates and
    states)."""
    model = session.model
    model.eval()
    with torch.no_grad(), record(session.recurrent_layers(), layer) as recording:
        session.training_step(model, batch, None)
    return recording


def gate_statistics(gates: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per gate (values (T, B, H)): saturation fractions, a histogram, and the mean at every step."""
    statistics = {}
    for name, values in gates.items():
        flat = values.float().flatten()
        statistics[name] = {
            "mean": float(flat.mean()),
            "fraction_below_0.1": float((flat < SATURATED_BELOW).float().mean()),
            "fraction_above_0.9": float((flat > SATURATED_ABOVE).float().mean()),
            "histogram": torch.histc(flat, HISTOGRAM_BINS, 0.0, 1.0).div(flat.numel()).tolist(),
            "mean_over_time": values.float().mean(dim=(1, 2)).tolist(),
        }
    return statistics


def write_gates(statistics: dict[str, dict], folder: Path, title: str) -> list[Path]:
    """gates.png (a histogram and the mean over time for each gate) and gates.json."""
    folder.mkdir(parents=True, exist_ok=True)
    png, data = folder / "gates.png", folder / "gates.json"
    plt = pyplot()
    figure, axes = plt.subplots(len(statistics), 2, figsize=(9, 2.4 * len(statistics)), squeeze=False)
    edges = torch.linspace(0, 1, HISTOGRAM_BINS + 1)
    for row, (name, stats) in zip(axes, statistics.items()):
        row[0].bar(edges[:-1], stats["histogram"], width=1 / HISTOGRAM_BINS, align="edge", color="tab:blue")
        row[0].set_title(f"{name} gate: {stats['fraction_below_0.1']:.0%} < 0.1, {stats['fraction_above_0.9']:.0%} > 0.9",
                         fontsize=9)
        row[0].set_xlim(0, 1)
        row[0].set_ylabel("fraction")
        row[1].plot(stats["mean_over_time"], color="tab:orange")
        row[1].set_ylim(0, 1)
        row[1].set_title(f"{name} gate: mean over batch and units, per step", fontsize=9)
    axes[-1][0].set_xlabel("activation")
    axes[-1][1].set_xlabel("time step t")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(png, dpi=110)
    plt.close(figure)
    data.write_text(json.dumps({"title": title, "gates": statistics}, indent=2))
    return [png, data]


def most_variable_hidden_unit(memory: torch.Tensor) -> int:
    """The hidden unit whose value varies most over the text: (T, H) -> index."""
    return int(memory.float().var(dim=0).argmax())


def write_hidden_unit_over_text(characters: list[str], values: torch.Tensor, unit: int, folder: Path, title: str,
                                per_line: int = 80) -> list[Path]:
    """unit.png: the text, each character on a background coloured by hidden unit ``unit``'s value after reading it
    (blue -1 .. white 0 .. red +1, as Karpathy et al. 2015), and unit.json with the values."""
    folder.mkdir(parents=True, exist_ok=True)
    png, data = folder / "unit.png", folder / "unit.json"
    plt = pyplot()
    colours = plt.get_cmap("bwr")
    scale = max(1.0, float(values.abs().max()))  # tanh-bounded h stays in [-1, 1]; an LSTM's c may not
    lines = (len(characters) + per_line - 1) // per_line
    figure = plt.figure(figsize=(per_line * 0.12, 0.25 * lines + 0.6))
    axes = figure.add_axes((0, 0, 1, 1 - 0.5 / (0.25 * lines + 0.6)))
    axes.set_xlim(0, per_line)
    axes.set_ylim(lines, 0)
    axes.axis("off")
    for index, (character, value) in enumerate(zip(characters, values.tolist())):
        row, column = divmod(index, per_line)
        axes.add_patch(plt.Rectangle((column, row), 1, 1, color=colours(0.5 + 0.5 * value / scale)))
        shown = {"\n": "↵", " ": "·", "\t": "→"}.get(character, character)
        axes.text(column + 0.5, row + 0.55, shown, ha="center", va="center", fontsize=7, family="monospace")
    figure.suptitle(f"{title}: unit {unit} (blue −{scale:.2g} … red +{scale:.2g})", fontsize=9)
    figure.savefig(png, dpi=130)
    plt.close(figure)
    data.write_text(json.dumps({"unit": unit, "text": "".join(characters), "values": values.tolist()}, indent=2))
    return [png, data]
