"""The built-in example every window opens on: the PyTorch tutorial's scores.

Plain Python, no numpy and no Qt: the first frame (``widgets/first_frame.py``,
shown by ``app/gui.py`` before numpy and pyqtgraph are imported) paints this
example, and :class:`~softmax_lab.app.session.Session` starts from the same
values, so what the person sees first is what the full window then shows.
"""

from __future__ import annotations

SEED_LOGITS: tuple[float, ...] = (2.0, 1.0, 0.1)
SEED_TEMPERATURE = 1.0
SEED_DTYPE = "float32"
SEED_TARGET: int | None = 0


def default_names(n: int, start: int = 0) -> tuple[str, ...]:
    """The names classes get until the person (or a file) names them (those of
    classes ``start`` to ``n - 1``)."""
    return tuple(f"class {i}" for i in range(start, n))
