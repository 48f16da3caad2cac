"""Colours, fonts and number formats shared by every view, so the window reads as one."""

from __future__ import annotations

import math

# Colour-blind-safe palette (Okabe–Ito) for the series; red only for "this failed".
BAR = "#0072B2"          # probabilities
GHOST = (120, 120, 120, 70)  # the T = 1 reference bars, faint grey
ARGMAX = "#E69F00"       # highlight of the most probable class
TARGET = "#009E73"       # highlight of the target class
REFERENCE_LINE = "#999999"  # the 1/N line
GRADIENT_POS = "#D55E00"
GRADIENT_NEG = "#0072B2"
BAD = "#C62828"          # non-finite / overflowed entries
BAD_BACKGROUND = "#FDECEA"
OK_BACKGROUND = "#E8F5E9"
TEXT = "#222222"

# pyqtgraph defaults to a black background; the lab uses a light one on screen
# and in exports (white background, dark text, visible labels).
PLOT_BACKGROUND = "w"
PLOT_FOREGROUND = "k"

# Bar widths, as a fraction of a class's slot: the probability chart's bars, its
# target highlight (drawn inside the argmax bar) and its T = 1 ghosts; the first frame
# (widgets/first_frame.py) draws the same bars.
BAR_WIDTH = 0.6
TARGET_WIDTH = 0.3
GHOST_WIDTH = 0.9

# The main window's size on a first run (later runs restore the last one); the
# first frame (widgets/first_frame.py) opens at the same size.
WINDOW_SIZE = (1360, 860)


def format_number(value: float, digits: int = 4) -> str:
    """Compact, readable numbers: 0.659, 1.2e-08, inf, -inf, nan."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e6:
        text = f"{value:.{digits}g}"
    else:
        text = f"{value:.{max(digits - 1, 1)}e}"
    return text


_SERIES = {
    "probabilities": "p = softmax(x / T)",
    "log-probabilities": "log_softmax(x / T)",
    "logits": "logits x",
}


def chart_title(view: str, temperature: float, dtype: str, count: int) -> str:
    """The probability chart's title (also on the first frame, widgets/first_frame.py)."""
    classes = f"{count:,} class" + ("" if count == 1 else "es")
    return f"{_SERIES[view]}   ·   T = {temperature:g}   ·   {dtype}   ·   {classes}"
