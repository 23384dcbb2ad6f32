"""matplotlib, loaded on demand with a file-only backend: figures are written, never shown."""

from __future__ import annotations

from rnnkit.errors import UserError


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'rnnkit[tasks]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
