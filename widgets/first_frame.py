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

The chart is an SVG document drawn by QSvgWidget rather than QPainter calls
from Python: the first QPen or QColor overload PySide6 resolves builds all ~90
of ``Qt``'s enums (about 20 ms here), and painting through Python took 45 ms
against 10 ms for the same picture as SVG, on a start-up budget of about 70 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

from PySide6.QtGui import QResizeEvent
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QVBoxLayout, QWidget

from softmax_lab.widgets import style

# The same menus as the full window, so the menu bar does not jump when it arrives.
MENU_TITLES = ("&File", "&Edit", "&View", "&Help")
LOADING_TEXT = "Loading the charts and the compute core…"
_BAR_WIDTH = 0.6  # of a class's slot, as widgets/probability_chart.py draws them
_TARGET_WIDTH = 0.3
_FONT = "font-family='sans-serif'"


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
    left, top, right, bottom = plot_box(width, height)
    span = bottom - top
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>",
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
    parts.append("</svg>")
    return "".join(parts)


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
            f"<rect data-class='{i}' x='{centre - _BAR_WIDTH * slot / 2:.2f}' y='{y:.2f}' "
            f"width='{_BAR_WIDTH * slot:.2f}' height='{height:.2f}' fill='{colour}'/>"
        )
        if i == target:
            parts.append(
                f"<rect x='{centre - _TARGET_WIDTH * slot / 2:.2f}' y='{y:.2f}' "
                f"width='{_TARGET_WIDTH * slot:.2f}' height='{height:.2f}' fill='{style.TARGET}'/>"
            )
        text = f"font-size='14' {_FONT} text-anchor='middle' fill='{style.TEXT}'"
        parts.append(f"<text x='{centre:.1f}' y='{y - 6:.1f}' {text}>{style.format_number(p, 3)}</text>")
        parts.append(f"<text x='{centre:.1f}' y='{bottom + 20:.1f}' {text}>{escape(name)}</text>")
    return parts


class ExampleChart(QSvgWidget):
    """The example's probability bars, redrawn as SVG at the widget's own size."""

    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self.setObjectName("firstFrameChart")
        self.picture = picture
        self.values = probabilities(picture.logits) if picture.logits is not None else None
        self.setMinimumSize(320, 240)

    def svg(self) -> str:
        """The document shown now (at the widget's current size)."""
        p = self.picture
        title = p.title if self.values is not None else ""
        return chart_svg(
            self.width(), self.height(), self.values, p.names, title, p.note, p.argmax, p.target
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        # Drawn at the exact size, so text is never stretched with the widget.
        self.load(self.svg().encode())
        super().resizeEvent(event)


def logits_table(logits: Sequence[float] | None, names: Sequence[str]) -> str:
    """The logit editor's rows as rich text (a QLabel is cheaper to build than a table view)."""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td align='right'>{float(value)!r}</td></tr>"
        for name, value in zip(names, logits or (), strict=False)
    )
    header = "<tr><th align='left'>class</th><th align='right'>logit</th></tr>"
    return f"<table width='100%' cellspacing='0' cellpadding='4'>{header}{rows}</table>"


class FirstFrame(QMainWindow):
    """The window's first frame: the example's logits and bars, nothing editable yet."""

    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self.setObjectName("firstFrame")
        self.setWindowTitle("Softmax Lab")
        for menu_title in MENU_TITLES:
            self.menuBar().addMenu(menu_title).setEnabled(False)

        self.logits_label = QLabel(logits_table(picture.logits, picture.names))
        self.logits_label.setObjectName("firstFrameLogits")
        left = QWidget()
        left.setFixedWidth(330)  # the full window's left column
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.logits_label)
        left_layout.addStretch(1)
        self.chart = ExampleChart(picture)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(left)
        layout.addWidget(self.chart, 1)
        self.setCentralWidget(central)

        self.status = QLabel(LOADING_TEXT)
        self.statusBar().addWidget(self.status)
        self.resize(*style.WINDOW_SIZE)
