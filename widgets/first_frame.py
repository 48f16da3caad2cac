"""The window as it first appears, painted before numpy, pyqtgraph and torch are loaded.

Importing the full window costs most of start-up: pyqtgraph alone 0.39 s, the
views 0.2 s, numpy 0.1 s on the 2-core benchmark machine, against 0.14 s for
Python and Qt together (docs/performance.md). This module imports nothing but
PySide6 and ``widgets/style.py`` (plain Python), so ``app/gui.py`` can show the
window's frame, and the built-in example's probabilities, right after Qt loads;
it then builds the real :class:`~softmax_lab.app.main_window.MainWindow` and
puts it in this one's place.

It is a picture of the window, not a second implementation of it: nothing here
can be edited, the menus are disabled, and the status bar says the window is
loading. The example's softmax is computed with :mod:`math` in double
precision; the full window then shows the same numbers (to the digits shown)
from the compute core.

Everything below the menu bar is one SVG document drawn by QSvgWidget, rather
than widgets and QPainter calls from Python: the first QPen or QColor overload
PySide6 resolves builds all ~90 of ``Qt``'s enums (about 20 ms here), painting
through Python took 45 ms against 10 ms for the same picture as SVG, and each
further widget class costs its enums too, on a start-up budget of about 70 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from PySide6.QtGui import QResizeEvent
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import QMainWindow

from softmax_lab.widgets import style

# The same menus as the full window, so the menu bar does not jump when it arrives.
MENU_TITLES = ("&File", "&Edit", "&View", "&Help")
LOADING_TEXT = "Loading the charts and the compute core…"
_FONT = "font-family='sans-serif'"
LEFT_COLUMN = 330
"""Width of the logit table's column, as the full window's left column."""
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&quot;"})


def escape(text: str) -> str:
    """Text safe inside SVG markup (the html module costs 2 ms to import here)."""
    return text.translate(_ESCAPES)


class Picture(NamedTuple):
    """What the first frame shows: the example (``logits``), or only ``note`` when None."""

    logits: Sequence[float] | None
    names: Sequence[str]
    title: str = ""
    note: str = ""
    argmax: int | None = None
    target: int | None = None


def probabilities(logits: Sequence[float], temperature: float = 1.0) -> list[float]:
    """Stable softmax of a short vector of finite logits, in double precision."""
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    weights = [math.exp(s - top) for s in scaled]
    total = math.fsum(weights)
    return [w / total for w in weights]


def plot_box(width: int, height: int) -> tuple[float, float, float, float]:
    """Left, top, right and bottom of the plot area in a ``width`` x ``height`` chart."""
    return 56.0, 56.0, max(width - 24.0, 57.0), max(height - 44.0, 57.0)


def chart_svg(
    width: int,
    height: int,
    values: Sequence[float] | None,
    names: Sequence[str],
    title: str,
    note: str = "",
    argmax: int | None = None,
    target: int | None = None,
) -> str:
    """The probability chart as an SVG document of exactly ``width`` x ``height`` pixels.

    ``values`` are probabilities in [0, 1], drawn as bars on a fixed 0..1 axis
    (bar ``i`` is the rect with ``data-class="i"``); None draws the empty axes and
    ``note`` instead.
    """
    return _document(
        width, height, _chart_parts(width, height, values, names, title, note, argmax, target)
    )


def _document(width: int, height: int, parts: list[str]) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>" + "".join(parts) + "</svg>"
    )


def _chart_parts(
    width: int,
    height: int,
    values: Sequence[float] | None,
    names: Sequence[str],
    title: str,
    note: str,
    argmax: int | None,
    target: int | None,
) -> list[str]:
    left, top, right, bottom = plot_box(width, height)
    span = bottom - top
    parts = [
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='{width / 2:.1f}' y='32' font-size='18' {_FONT} text-anchor='middle' "
        f"fill='{style.TEXT}'>{escape(title)}</text>",
    ]
    for tick in (0.2, 0.4, 0.6, 0.8, 1.0):
        y = bottom - tick * span
        parts.append(f"<line x1='{left}' y1='{y:.1f}' x2='{right}' y2='{y:.1f}' stroke='#e6e6e6'/>")
        parts.append(
            f"<text x='{left - 8}' y='{y + 4:.1f}' font-size='12' {_FONT} text-anchor='end' "
            f"fill='{style.TEXT}'>{tick:g}</text>"
        )
    axes = f"stroke='{style.TEXT}' stroke-width='1'"
    parts.append(f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' {axes}/>")
    parts.append(f"<line x1='{left}' y1='{top}' x2='{left}' y2='{bottom}' {axes}/>")
    if values is None:
        parts.append(
            f"<text x='{(left + right) / 2:.1f}' y='{(top + bottom) / 2:.1f}' font-size='14' "
            f"{_FONT} text-anchor='middle' fill='{style.TEXT}'>{escape(note)}</text>"
        )
    else:
        parts.extend(_bars(values, names, (left, top, right, bottom), argmax, target))
    return parts


def _logit_rows(logits: Sequence[float] | None, names: Sequence[str]) -> list[str]:
    """The logit editor's rows as text in the left column (names left, values right)."""
    x_name, x_value, line = 16, LEFT_COLUMN - 12, 24
    text = f"font-size='13' {_FONT} fill='{style.TEXT}'"
    parts = [
        f"<text x='{x_name}' y='{line}' {text} font-weight='bold'>class</text>",
        f"<text x='{x_value}' y='{line}' {text} font-weight='bold' text-anchor='end'>logit</text>",
    ]
    for row, (name, value) in enumerate(zip(names, logits or (), strict=False), start=2):
        parts.append(f"<text x='{x_name}' y='{row * line}' {text}>{escape(name)}</text>")
        parts.append(
            f"<text x='{x_value}' y='{row * line}' {text} text-anchor='end'>{float(value)!r}</text>"
        )
    return parts


def _bars(
    values: Sequence[float],
    names: Sequence[str],
    box: tuple[float, float, float, float],
    argmax: int | None,
    target: int | None,
) -> list[str]:
    left, top, right, bottom = box
    slot = (right - left) / len(values)
    parts = []
    if len(values) > 1:  # the 1/N line, dashed as the full chart draws it
        y = bottom - (bottom - top) / len(values)
        parts.append(
            f"<line x1='{left}' y1='{y:.2f}' x2='{right}' y2='{y:.2f}' stroke='{style.REFERENCE_LINE}' "
            "stroke-width='2' stroke-dasharray='6 4'/>"
        )
    for i, (p, name) in enumerate(zip(values, names, strict=True)):
        centre = left + (i + 0.5) * slot
        height = p * (bottom - top)
        y = bottom - height
        colour = style.ARGMAX if i == argmax else style.BAR
        parts.append(
            f"<rect data-class='{i}' x='{centre - style.BAR_WIDTH * slot / 2:.2f}' y='{y:.2f}' "
            f"width='{style.BAR_WIDTH * slot:.2f}' height='{height:.2f}' fill='{colour}'/>"
        )
        if i == target:
            parts.append(
                f"<rect x='{centre - style.TARGET_WIDTH * slot / 2:.2f}' y='{y:.2f}' "
                f"width='{style.TARGET_WIDTH * slot:.2f}' height='{height:.2f}' fill='{style.TARGET}'/>"
            )
        text = f"font-size='14' {_FONT} text-anchor='middle' fill='{style.TEXT}'"
        parts.append(f"<text x='{centre:.1f}' y='{y - 6:.1f}' {text}>{style.format_number(p, 3)}</text>")
        parts.append(f"<text x='{centre:.1f}' y='{bottom + 20:.1f}' {text}>{escape(name)}</text>")
    return parts


class FrameDrawing(QSvgWidget):
    """Everything below the menu bar: the logit rows at the left, the chart at the right,
    redrawn as one SVG document at the widget's own size (text is never stretched)."""

    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self.setObjectName("firstFrameDrawing")
        self.picture = picture
        self.values = probabilities(picture.logits) if picture.logits is not None else None
        self.setMinimumSize(LEFT_COLUMN + 320, 240)

    def svg(self) -> str:
        """The document shown now (at the widget's current size)."""
        p = self.picture
        width, height = self.width(), self.height()
        title = p.title if self.values is not None else ""
        chart = _chart_parts(
            max(width - LEFT_COLUMN, 1), height, self.values, p.names, title, p.note,
            p.argmax, p.target,
        )
        # The window's own background under the logit rows (the theme's, not white).
        window = self.palette().window().color().name()
        return _document(
            width,
            height,
            [
                f"<rect width='{width}' height='{height}' fill='{window}'/>",
                *_logit_rows(p.logits, p.names),
                f"<g transform='translate({LEFT_COLUMN},0)'>",
                *chart,
                "</g>",
            ],
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.load(self.svg().encode())
        super().resizeEvent(event)


class FirstFrame(QMainWindow):
    """The window's first frame: the example's logits and bars, nothing editable yet."""

    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self.setObjectName("firstFrame")
        self.setWindowTitle("Softmax Lab")
        for menu_title in MENU_TITLES:
            self.menuBar().addMenu(menu_title).setEnabled(False)
        self.drawing = FrameDrawing(picture)
        self.setCentralWidget(self.drawing)
        self.statusBar().showMessage(LOADING_TEXT)
        self.resize(*style.WINDOW_SIZE)
