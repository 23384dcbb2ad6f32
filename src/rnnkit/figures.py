"""The figures rnnkit draws for people, as PNG bytes for the caller to write (atomically) where it chooses.

matplotlib is loaded on demand, with a file-only backend (``Agg``): figures are written, never
shown. ``rnnkit inspect`` draws its own views with the same ``pyplot``.
"""

from __future__ import annotations

import io

import torch

from rnnkit.errors import UserError


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'rnnkit[tasks]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(figure) -> bytes:
    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=100)
    pyplot().close(figure)
    return data.getvalue()


def confusion_png(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    """A confusion matrix: rows the true class, columns the predicted one (scikit-learn's display)."""
    plt = pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay  # [tasks] extra

    display = ConfusionMatrixDisplay(torch.tensor(matrix).numpy(), display_labels=labels)
    figure, axes = plt.subplots(figsize=(2 + len(labels), 1.5 + len(labels)))
    display.plot(ax=axes, colorbar=False, xticks_rotation=45)
    axes.set_title(title)
    figure.tight_layout()
    return png_bytes(figure)


def attention_png(weights: torch.Tensor, source: list[str], target: list[str]) -> bytes:
    """An attention matrix (target words down, source words across), each row a distribution over the source."""
    plt = pyplot()
    weights = weights.numpy()
    figure, axes = plt.subplots(figsize=(1 + 0.4 * weights.shape[1], 1 + 0.4 * weights.shape[0]))
    axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source)), source, rotation=90)
    axes.set_yticks(range(len(target)), target)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.tight_layout()
    return png_bytes(figure)


def image_attention_png(pixels: torch.Tensor, words: list[str], weights: torch.Tensor) -> bytes:
    """Where a caption's words looked, as Xu et al.'s figures draw it: the image, then one panel per word with its
    attention over the grid of regions (weights (T, h*w)) stretched over the image, brighter where it looked more."""
    plt = pyplot()
    side = int(round(weights.shape[1] ** 0.5))
    image = pixels.permute(1, 2, 0).numpy()
    size = image.shape[0]
    maps = torch.nn.functional.interpolate(weights.view(-1, 1, side, side).float(), size=(size, size), mode="bilinear",
                                           align_corners=False)[:, 0]
    columns = min(len(words) + 1, 6)
    rows = -(-(len(words) + 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.2 * rows), squeeze=False)
    for panel in axes.flat:
        panel.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image")
    for panel, word, attention in zip(axes.flat[1:], words, maps):
        panel.imshow(image)
        panel.imshow(attention.numpy(), cmap="gray", alpha=0.65, vmin=0.0, vmax=float(attention.max()))
        panel.set_title(word)
    figure.tight_layout()
    return png_bytes(figure)


def piano_roll_png(roll: torch.Tensor, lowest_pitch: int, title: str, primed_steps: int = 0) -> bytes:
    """A (T, K) piano roll: time to the right, pitch upwards; a line where a prime ends and sampling begins."""
    plt = pyplot()
    keys = roll.shape[1]
    figure, axes = plt.subplots(figsize=(min(4 + roll.shape[0] / 25, 30), 4))
    axes.imshow(roll.T.cpu().numpy(), origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                extent=(0, roll.shape[0], lowest_pitch - 0.5, lowest_pitch + keys - 0.5))
    if primed_steps:
        axes.axvline(primed_steps, color="tab:red", linewidth=1, label="end of the prime")
        axes.legend(loc="upper right")
    axes.set_xlabel("time step")
    axes.set_ylabel("MIDI pitch")
    axes.set_title(title)
    figure.tight_layout()
    return png_bytes(figure)


def forecast_png(panels: list[dict]) -> bytes:
    """One panel per (series, column): ``history`` (times, values) drawn black, then each of ``forecasts``
    (times, forecast, and where present the 80% and 90% interval bounds) in blue.

    A panel is {"title", "history": (times, values), "history_label", "forecasts": [{"times", "forecast",
    "lo-80", "hi-80", "lo-90", "hi-90"}, ...]}.
    """
    plt = pyplot()
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels)), squeeze=False)
    for axis, panel in zip(axes[:, 0], panels):
        times, values = panel["history"]
        axis.plot(times, values, color="black", linewidth=0.8, label=panel["history_label"])
        for number, forecast in enumerate(panel["forecasts"]):
            axis.plot(forecast["times"], forecast["forecast"], color="tab:blue", linewidth=1,
                      label="forecast" if number == 0 else None)
            for level, alpha in (("90", 0.15), ("80", 0.3)):
                if f"lo-{level}" in forecast:
                    axis.fill_between(forecast["times"], forecast[f"lo-{level}"], forecast[f"hi-{level}"],
                                      color="tab:blue", alpha=alpha, linewidth=0,
                                      label=f"{level}% interval" if number == 0 else None)
        axis.set_title(panel["title"], fontsize=9)
        axis.legend(loc="upper left", fontsize=7)
    figure.autofmt_xdate()
    figure.tight_layout()
    return png_bytes(figure)
