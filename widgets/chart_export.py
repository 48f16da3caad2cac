"""Slide-ready pictures of the lab's charts and panels: PNG, SVG and PDF.

Every export is drawn by the same views the window shows, built afresh
offscreen over a *snapshot* of the session (a new :class:`Session` holding the
same intent and results, with no controller): the window is never resized or
re-coloured, a different chart view than the one on screen can be exported,
and the command line (``softmax-lab chart``) renders exactly what the window
would. Nothing is computed here: the snapshot carries the results.

pyqtgraph's SVG exporter raises on every plot with PySide6 >= 6.11
(pyqtgraph#3495), so nothing here uses pyqtgraph's exporters: the page widget
is painted with :meth:`QWidget.render` into a :class:`QImage` (PNG), a
:class:`QSvgGenerator` (SVG) or a :class:`QPdfWriter` (PDF, one page).

Size and resolution
-------------------
``width`` x ``height`` is the PNG's size in pixels (and the physical size of
SVG and PDF at ``dpi``: width / dpi inches). The DPI sets how large text is:
fonts keep their point sizes at that physical size (a 12 pt label is 12/72
inch tall, as in matplotlib), so 1600 x 1000 at 200 DPI is an 8 x 5 inch
figure with slide-readable text. When the requested size is too small to lay
a view out at that scale (a small image at a high DPI), everything is scaled
down together so nothing is clipped. The PNG records the DPI in its pHYs chunk.

Views
-----
``probabilities``, ``log`` (log-probabilities) and ``logits``: the main bar
chart. ``gradient``: d loss / d logits (needs a target). ``heatmap``: the batch
heatmap with its colour bar (needs a loaded batch). ``overflow``: the overflow
lab as a slide tells it: the verdict, the naive-limit gauge, the naive-versus-
stable table and the log_softmax verdict. ``steps``: the step-by-step table
under a one-line caption. Table views are laid out at the size their content
needs (no scroll bars, no elided cells); past :data:`MAX_TABLE_ROWS` rows the
middle rows are left out and a note says so (the Σ row stays). Given a size,
the content is centred on it.

Themes: ``light`` (default: white background, dark text) and ``dark``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QMarginsF,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    QSizeF,
    Qt,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontInfo,
    QFontMetrics,
    QImage,
    QPageSize,
    QPainter,
    QPalette,
    QPdfWriter,
)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsView,
    QHeaderView,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import style

EXPORT_VIEWS: tuple[str, ...] = (
    "probabilities",
    "log",
    "logits",
    "gradient",
    "overflow",
    "steps",
    "heatmap",
)
"""What can be exported (``softmax-lab chart --view``)."""
TABLE_VIEWS = frozenset({"overflow", "steps"})
"""Views laid out at their content's size rather than at the requested one."""
CHART_FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""File suffix -> export format."""
THEMES: tuple[str, ...] = ("light", "dark")

DEFAULT_WIDTH = 1600
DEFAULT_HEIGHT = 1000
DEFAULT_DPI = 200.0
"""1600 x 1000 px at 200 DPI: an 8 x 5 inch figure, sharp on a projector and in print."""
MIN_DPI, MAX_DPI = 10.0, 2400.0
MAX_PIXELS = 12_000
"""Largest side of an export, in pixels (larger images exhaust memory for nothing)."""
MAX_TABLE_ROWS = 40
"""Table views show at most this many rows (the Σ row included)."""
MIN_CHART_SIZE = QSize(420, 280)
"""Charts are never laid out smaller than this (logical pixels): axes and title fit."""

_CHART_VIEWS = {"probabilities": "probabilities", "log": "log-probabilities", "logits": "logits"}
_MARGIN = 10
_LIGHT = {"background": "#ffffff", "text": style.TEXT, "alternate": "#f4f6f8", "button": "#eef0f2"}
_DARK = {"background": "#1e1e1e", "text": "#e6e6e6", "alternate": "#262626", "button": "#333333"}
_CHART_TEXT_PT = 13
_NAMED_TICKS = 20


@dataclass(frozen=True)
class ChartOptions:
    """What to export and how.

    Attributes
    ----------
    view
        One of :data:`EXPORT_VIEWS`.
    fmt
        ``"png"``, ``"svg"`` or ``"pdf"``.
    width, height
        Output size in pixels; ``None`` picks :data:`DEFAULT_WIDTH` x
        :data:`DEFAULT_HEIGHT` for charts and the content's own size for table
        views (one given: the other follows the natural aspect ratio).
    dpi
        Dots per inch: the physical size and the size of text (see the module doc).
    theme
        ``"light"`` or ``"dark"``.
    """

    view: str = "probabilities"
    fmt: str = "png"
    width: int | None = None
    height: int | None = None
    dpi: float = DEFAULT_DPI
    theme: str = "light"

    def checked(self) -> ChartOptions:
        """These options, validated.

        Raises
        ------
        InvalidInputError
            An unknown view, format or theme, or a size or DPI out of range.
        """
        _choose(self.view, EXPORT_VIEWS, "view")
        _choose(self.fmt, tuple(CHART_FORMATS.values()), "chart format")
        _choose(self.theme, THEMES, "theme")
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not 16 <= value <= MAX_PIXELS:
                raise InvalidInputError(
                    f"{name} must be between 16 and {MAX_PIXELS} pixels, not {value}"
                )
        if not (math.isfinite(self.dpi) and MIN_DPI <= self.dpi <= MAX_DPI):
            raise InvalidInputError(
                f"dpi must be between {MIN_DPI:g} and {MAX_DPI:g}, not {self.dpi:g}"
            )
        return self


def _choose(value: str, options: tuple[str, ...], what: str) -> None:
    if value not in options:
        raise InvalidInputError(f"unknown {what} {value!r}; choose one of {', '.join(options)}")


def format_for_path(path: str | Path) -> str:
    """The export format a file name asks for: ``.png``, ``.svg`` or ``.pdf``.

    Raises
    ------
    InvalidInputError
        Any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CHART_FORMATS:
        raise InvalidInputError(
            f"{Path(path).name}: a chart is saved as .png, .svg or .pdf (got {suffix or 'no suffix'!r})"
        )
    return CHART_FORMATS[suffix]


def default_view(session: Session) -> str:
    """The export view matching what the main chart shows now."""
    return {v: k for k, v in _CHART_VIEWS.items()}.get(session.chart_view, "probabilities")


def unavailable_reason(session: Session, view: str) -> str:
    """Why ``view`` cannot be exported from ``session`` now ("" when it can)."""
    if view == "heatmap" and (session.batch is None or session.batch_analysis is None):
        return "the heatmap view needs a batch: open a 2-D tensor (N rows × C classes) first"
    if view != "heatmap" and session.analysis is None:
        return "nothing computed yet"
    if view == "gradient" and (session.target is None or session.analysis.loss is None):
        return "the gradient chart needs a target class (pick one in the Cross-entropy panel)"
    return ""


# ---------------------------------------------------------------------------------
# Snapshot


_SNAPSHOT_FIELDS = (
    "logits",
    "class_names",
    "temperature",
    "dtype",
    "device",
    "chart_view",
    "target",
    "label_smoothing",
    "batch",
    "batch_dim",
    "selected_row",
    "analysis",
    "batch_analysis",
)


def snapshot(session: Session, **changes: Any) -> Session:
    """A new session with ``session``'s intent and results (and ``changes``), no controller.

    Views built over it render the same state and are independent of the
    original: nothing they do reaches it, and they are freed with it.
    """
    copy = Session()
    values = {name: getattr(session, name) for name in _SNAPSHOT_FIELDS}
    values.update(changes)
    copy.update(**values)
    return copy


# ---------------------------------------------------------------------------------
# Pages: the widget that is painted


def _palette(theme: str) -> QPalette:
    colours = _DARK if theme == "dark" else _LIGHT
    palette = QPalette()
    background, text = QColor(colours["background"]), QColor(colours["text"])
    for role, colour in (
        (QPalette.ColorRole.Window, background),
        (QPalette.ColorRole.Base, background),
        (QPalette.ColorRole.AlternateBase, QColor(colours["alternate"])),
        (QPalette.ColorRole.Button, QColor(colours["button"])),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Light, QColor(colours["button"])),
        (QPalette.ColorRole.Mid, QColor("#9a9a9a")),
    ):
        palette.setColor(QPalette.ColorGroup.All, role, colour)
    return palette


def build_page(session: Session, view: str, theme: str = "light") -> tuple[QWidget, QSize, bool]:
    """Build the (unshown, top-level) widget that an export of ``view`` paints, over a snapshot.

    Returns the page, the smallest logical size its content needs, and
    whether it is a table view. The caller owns the page (``deleteLater`` it).

    Raises
    ------
    InvalidInputError
        ``view`` is unknown or has nothing to show (see :func:`unavailable_reason`).
    """
    _choose(view, EXPORT_VIEWS, "view")
    reason = unavailable_reason(session, view)
    if reason:
        raise InvalidInputError(reason)
    # Always a snapshot: the views connect to their session's signals, and a
    # live session would keep calling the page's widgets after they are gone.
    changes = {"chart_view": _CHART_VIEWS[view]} if view in _CHART_VIEWS else {}
    session = snapshot(session, **changes)
    page = QWidget()
    page.setObjectName("exportPage")
    page.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    page.setAutoFillBackground(True)
    page.setPalette(_palette(theme))
    content = QWidget(page)
    content.setObjectName("exportContent")
    layout = QVBoxLayout(content)
    layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
    layout.setSpacing(6)
    try:
        builder = _BUILDERS[view]
        natural = builder(session, content, layout, theme) + QSize(2 * _MARGIN, 2 * _MARGIN)
    except BaseException:
        page.deleteLater()
        raise
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    table = view in TABLE_VIEWS
    if table:
        # A table keeps its own size; a larger picture centres it rather than
        # spreading its rows and captions apart.
        content.setFixedSize(natural)
        outer.addWidget(content, 0, Qt.AlignmentFlag.AlignCenter)
    else:
        outer.addWidget(content)
    return page, natural, table


def _steal(plot: pg.PlotWidget, owner: QWidget, page: QWidget, layout: QVBoxLayout) -> None:
    # The view's own widget keeps computing (its resize handlers re-bin and re-label);
    # only its plot goes on the page, without the controls around it.
    owner.setParent(page)
    owner.hide()
    layout.addWidget(plot, 1)
    plot.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)  # vector background in SVG/PDF


def _chart_size(plot: pg.PlotWidget, extra_height: int = 0) -> QSize:
    """The smallest size a chart needs: :data:`MIN_CHART_SIZE`, or more for a long title."""
    least = plot.getPlotItem().effectiveSizeHint(Qt.SizeHint.MinimumSize)
    return QSize(
        max(MIN_CHART_SIZE.width(), math.ceil(least.width()) + 4),
        max(MIN_CHART_SIZE.height(), math.ceil(least.height()) + 4) + extra_height,
    )


def _build_chart(session: Session, page: QWidget, layout: QVBoxLayout, theme: str) -> QSize:
    from softmax_lab.widgets.probability_chart import ProbabilityChart

    chart = ProbabilityChart(session)
    _steal(chart.plot_widget, chart, page, layout)
    # The legend's 11 pt reads on screen; on a slide it matches the tick labels.
    chart.legend.setLabelTextSize(f"{_CHART_TEXT_PT - 1}pt")
    return _chart_size(chart.plot_widget)


def _build_gradient(session: Session, page: QWidget, layout: QVBoxLayout, theme: str) -> QSize:
    from softmax_lab.widgets.loss_panel import LossPanel

    panel = LossPanel(session)
    plot = panel.chart
    _steal(plot, panel, page, layout)
    item = plot.getPlotItem()
    font = QLabel().font()
    font.setPointSize(_CHART_TEXT_PT - 1)
    for name in ("left", "bottom"):
        item.getAxis(name).setStyle(tickFont=font)
    item.setLabel("bottom", "class", color=style.TEXT, **{"font-size": f"{_CHART_TEXT_PT}pt"})
    # On screen a label above the chart says what the bars are; a picture needs it inside.
    title = panel.gradient_title.text()
    names = session.class_names
    target = session.target
    if target is not None and target < len(names):
        title += f"   ·   target {target}: {names[target]}"
    item.setTitle(title, color=style.TEXT, size=f"{_CHART_TEXT_PT + 1}pt")
    return _chart_size(plot)


def _build_heatmap(session: Session, page: QWidget, layout: QVBoxLayout, theme: str) -> QSize:
    from softmax_lab.widgets.batch_view import BatchView

    view = BatchView(session)
    plot = view.heatmap
    _steal(plot, view, page, layout)
    result = session.batch_analysis
    n, c = result.shape
    request = result.request
    norm = "each row sums to 1" if result.dim == 1 else "each column sums to 1"
    title = (
        f"softmax(dim={result.dim}): {norm}   ·   T = {style.format_number(request.temperature)}"
        f"   ·   {request.dtype}   ·   {n:,} × {c:,}"
    )
    item = plot.getPlotItem()
    item.setTitle(title, color=style.TEXT, size=f"{_CHART_TEXT_PT + 1}pt")
    font = QLabel().font()
    font.setPointSize(_CHART_TEXT_PT - 1)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setStyle(tickFont=font)
        axis.setLabel(axis.labelText, color=style.TEXT, **{"font-size": f"{_CHART_TEXT_PT}pt"})
    view.colorbar.axis.setStyle(tickFont=font)
    # pyqtgraph's own ticks fall on 0.5, 1.5, ... for a few classes: rows and classes are whole.
    names = session.batch.class_names if session.batch is not None else None
    if c <= _NAMED_TICKS:
        labels = (
            list(names) if names is not None and len(names) == c else [str(i) for i in range(c)]
        )
        item.getAxis("bottom").setTicks([[(float(i), text) for i, text in enumerate(labels)]])
    if n <= _NAMED_TICKS:
        item.getAxis("left").setTicks([[(float(i), str(i)) for i in range(n)]])
    # ColorBarItem fixes its axis at 45 px: room for "0.8" at the larger tick font.
    view.colorbar.axis.setWidth(QFontMetrics(font).horizontalAdvance("0.88") + 18)
    # A vertical ColorBarItem carries its label on its left axis.
    view.colorbar.getAxis("left").setLabel(
        "probability", color=style.TEXT, **{"font-size": f"{_CHART_TEXT_PT}pt"}
    )
    extra = 0
    if result.heatmap_row_bin > 1 or result.heatmap_col_bin > 1:
        note = QLabel(view.binning_label.text().split(";")[0], page)
        layout.addWidget(note)
        extra = note.sizeHint().height() + layout.spacing()
    return _chart_size(plot, extra)


def _caption(text: str, page: QWidget, points: int = 15, bold: bool = True) -> QLabel:
    label = QLabel(text, page)
    font = label.font()
    font.setPointSize(points)
    font.setBold(bold)
    label.setFont(font)
    label.setWordWrap(True)
    return label


def _build_steps(session: Session, page: QWidget, layout: QVBoxLayout, theme: str) -> QSize:
    from softmax_lab.widgets.steps_table import StepsTable

    steps = StepsTable(session, page)
    result = session.analysis.result
    count = result.num_classes
    caption = _caption(
        f"softmax step by step   ·   T = {style.format_number(float(result.temperature))}"
        f"   ·   {result.dtype}   ·   {count:,} class{'es' if count != 1 else ''}",
        page,
        points=13,
    )
    layout.addWidget(caption)
    layout.addWidget(steps)
    table = _fit_table(steps.view, theme)
    notes = [steps.note.text()] if steps.note.isVisibleTo(steps) else []
    if table.hidden_rows:
        notes.append(table.hidden_rows)
    steps.note.hide()
    width = max(table.size.width(), min(caption.sizeHint().width(), 1200))
    height = table.size.height()
    for text in notes:
        label = _caption(text, page, points=11, bold=False)
        layout.addWidget(label)
        height += label.heightForWidth(width) + layout.spacing()
    steps.setFixedSize(table.size)
    layout.setAlignment(steps, Qt.AlignmentFlag.AlignLeft)
    height += caption.heightForWidth(width) + layout.spacing()
    return QSize(width, height)


def _build_overflow(session: Session, page: QWidget, layout: QVBoxLayout, theme: str) -> QSize:
    from softmax_lab.widgets.overflow_panel import OverflowPanel

    panel = OverflowPanel(session, page)
    layout.addWidget(panel)
    panel.gauge.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
    table = _fit_table(panel.table, theme)
    if table.hidden_rows:
        panel.table_note.setText(f"{panel.table_note.text()} {table.hidden_rows}".strip())
    panel.table.setFixedSize(table.size)
    margins = panel.layout().contentsMargins()
    width = max(table.size.width(), 560) + margins.left() + margins.right()
    panel.gauge.setMinimumWidth(width - margins.left() - margins.right())
    height = panel.heightForWidth(width)
    if height < 0:
        height = panel.sizeHint().height()
    return QSize(width, height)


_BUILDERS = {
    "probabilities": _build_chart,
    "log": _build_chart,
    "logits": _build_chart,
    "gradient": _build_gradient,
    "heatmap": _build_heatmap,
    "steps": _build_steps,
    "overflow": _build_overflow,
}


@dataclass
class _Fitted:
    size: QSize
    hidden_rows: str


def _fit_table(view: QTableView, theme: str) -> _Fitted:
    """Size ``view`` to show every column in full and (up to a limit) every row."""
    colours = _DARK if theme == "dark" else _LIGHT
    # A flat header: the platform style's gradient reads as a screenshot on a
    # slide (and Fusion's gradient mixes colour specs, which QPdfEngine rejects).
    points = view.font().pointSize()
    view.horizontalHeader().setStyleSheet(
        f"QHeaderView::section {{ background: {colours['button']}; color: {colours['text']};"
        f" font-weight: bold; font-size: {points}pt; padding: 4px 10px; border: none;"
        f" border-right: 1px solid #b0b0b0; border-bottom: 1px solid #808080; }}"
    )
    # Style-sheeted tables ignore the page's palette: say the colours outright.
    view.setStyleSheet(
        f"{view.styleSheet()}\nQTableView {{ background: {colours['background']};"
        f" alternate-background-color: {colours['alternate']}; color: {colours['text']};"
        f" gridline-color: #b0b0b0; }}"
    )
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    view.clearSelection()
    view.ensurePolished()
    model = view.model()
    rows, columns = model.rowCount(), model.columnCount()
    hidden = ""
    if rows > MAX_TABLE_ROWS:
        keep = MAX_TABLE_ROWS - 1  # the first rows, then the last (Σ) row
        for r in range(keep, rows - 1):
            view.setRowHidden(r, True)
        hidden = (
            f"Rows {keep + 1}–{rows - 1} of {rows - 1} are left out of this picture; "
            "an exported table (CSV, Markdown, LaTeX, JSON) has every row."
        )
    header = view.horizontalHeader()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.resizeColumnsToContents()
    view.resizeRowsToContents()
    width = sum(header.sectionSize(c) for c in range(columns))
    height = sum(view.rowHeight(r) for r in range(rows) if not view.isRowHidden(r))
    frame = 2 * view.frameWidth()
    head = header.sizeHint().height() if not header.isHidden() else 0
    vertical = view.verticalHeader()
    side = vertical.sizeHint().width() if not vertical.isHidden() else 0
    return _Fitted(QSize(width + frame + side, height + frame + head), hidden)


# ---------------------------------------------------------------------------------
# Themes


def _retint_charts(page: QWidget, theme: str) -> None:
    """Dark theme: dark plot backgrounds, light axes and text; bars keep their colours."""
    if theme != "dark":
        return
    colours = _DARK
    text = QColor(colours["text"])
    for view in page.findChildren(pg.GraphicsView):
        view.setBackground(colours["background"])
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(pg.mkPen(text))
                item.setTextPen(pg.mkPen(text))
                if item.labelText:
                    style_args = {k: v for k, v in item.labelStyle.items() if k != "color"}
                    item.setLabel(
                        item.labelText, item.labelUnits, color=colours["text"], **style_args
                    )
            elif isinstance(item, pg.LegendItem):
                item.setBrush(pg.mkBrush(40, 40, 40, 220))
                item.setLabelTextColor(text)
            elif isinstance(item, pg.LabelItem):
                if item.text and _is_dark(item.opts.get("color")):
                    item.setText(item.text, color=text)
            elif isinstance(item, pg.TextItem):
                if _is_dark(item.color):
                    item.setColor(text)
            elif isinstance(item, pg.LinearRegionItem):
                item.setBrush(pg.mkBrush(31, 59, 37))  # the gauge's safe region, darkened
    for table in page.findChildren(QTableView):
        table.setItemDelegate(_DarkCells(table))


def _is_dark(colour: Any) -> bool:
    if colour is None:
        return True  # pyqtgraph's default text colour on our light plots
    c = pg.mkColor(colour)
    # Near-black greys only: coloured text (a blue marker label, a red limit) keeps its colour.
    return c.lightness() < 110 and c.hslSaturation() < 60


class _DarkCells(QStyledItemDelegate):
    """Cell text that reads on the dark theme: a model's near-black text becomes light."""

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        background = index.data(Qt.ItemDataRole.BackgroundRole)
        if background is not None:
            return  # a cell with its own (light) background keeps its own text colour
        if option.palette.color(QPalette.ColorRole.Text).lightness() < 110:
            option.palette.setColor(QPalette.ColorRole.Text, QColor(_DARK["text"]))


# ---------------------------------------------------------------------------------
# Painting


@dataclass(frozen=True)
class _Geometry:
    width: int
    height: int
    logical: QSize
    """The page's size in logical pixels (what its layout sees)."""


def _geometry(natural: QSize, table: bool, options: ChartOptions, logical_dpi: float) -> _Geometry:
    scale = options.dpi / logical_dpi
    w, h = options.width, options.height
    nat_w, nat_h = max(natural.width(), 1), max(natural.height(), 1)
    if table:
        aspect = nat_w / nat_h
        if w is None and h is None:
            w, h = round(nat_w * scale), round(nat_h * scale)
    else:
        aspect = DEFAULT_WIDTH / DEFAULT_HEIGHT
        if w is None and h is None:
            w, h = DEFAULT_WIDTH, DEFAULT_HEIGHT
    if w is None:
        assert h is not None
        w = round(h * aspect)
    if h is None:
        h = round(w / aspect)
    w, h = min(max(int(w), 16), MAX_PIXELS), min(max(int(h), 16), MAX_PIXELS)
    # Too small for the content at this DPI: scale everything down together.
    scale = min(scale, w / nat_w, h / nat_h)
    logical = QSize(max(round(w / scale), nat_w), max(round(h / scale), nat_h))
    return _Geometry(w, h, logical)


@contextmanager
def _export_mode(page: QWidget) -> Iterator[None]:
    # pyqtgraph draws scatter symbols from a pixmap cache unless told it is
    # exporting; in export mode they are drawn as vectors. resolutionScale stays
    # 1: QWidget.render keeps our painter scale even where the item resets its
    # transform (measured: a scale here drew the markers twice too large).
    items = [
        item
        for view in page.findChildren(pg.GraphicsView)
        for item in view.scene().items()
        if hasattr(item, "setExportMode")
    ]
    opts = {"antialias": True, "resolutionScale": 1.0}
    for item in items:
        item.setExportMode(True, dict(opts))
    try:
        yield
    finally:
        for item in items:
            item.setExportMode(False)


def _paint(page: QWidget, painter: QPainter, sx: float, sy: float) -> None:
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.scale(sx, sy)
    with _export_mode(page):
        if isinstance(page, QGraphicsView):
            # A view painted as a top-level widget through a scaled painter is
            # clipped to its unscaled size; its own render() maps the scene instead.
            rect = page.viewport().rect()
            page.render(painter, QRectF(rect), rect)
        else:
            page.render(painter, QPoint(0, 0))


def _png(page: QWidget, geometry: _Geometry, dpi: float, background: QColor) -> bytes:
    image = QImage(geometry.width, geometry.height, QImage.Format.Format_ARGB32)
    image.fill(background)
    # Paint at the page's own DPI so text is measured as the layout measured it ...
    dpm = round(page.logicalDpiX() / 0.0254)
    image.setDotsPerMeterX(dpm)
    image.setDotsPerMeterY(dpm)
    painter = QPainter(image)
    try:
        _paint(
            page,
            painter,
            geometry.width / geometry.logical.width(),
            geometry.height / geometry.logical.height(),
        )
    finally:
        painter.end()
    # ... then record the requested one: it only sets the physical size.
    image.setDotsPerMeterX(round(dpi / 0.0254))
    image.setDotsPerMeterY(round(dpi / 0.0254))
    return _encode(image)


def _encode(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise InvalidInputError("the PNG could not be encoded")
    buffer.close()
    return bytes(data.data())


def _svg(page: QWidget, geometry: _Geometry, dpi: float, title: str) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    # Drawn in the page's own logical pixels (the viewBox) at the page's own
    # DPI: the generator turns point sizes into pixels with its resolution, and
    # they must match the layout. The size, in pixels at that resolution, only
    # sets the width/height attributes: width / dpi inches, as the PNG.
    logical_dpi = page.logicalDpiX()
    generator.setResolution(logical_dpi)
    generator.setSize(
        QSize(
            round(geometry.width * logical_dpi / dpi),
            round(geometry.height * logical_dpi / dpi),
        )
    )
    generator.setViewBox(QRect(QPoint(0, 0), geometry.logical))
    generator.setTitle(title)
    generator.setDescription("Exported by Softmax Lab")
    painter = QPainter(generator)
    try:
        # One background rectangle under everything: no hairline seams between
        # the panels' own backgrounds when the SVG sits on a coloured slide.
        painter.fillRect(QRect(QPoint(0, 0), geometry.logical), page.palette().window())
        _paint(page, painter, 1.0, 1.0)
    finally:
        painter.end()
    buffer.close()
    return _portable_fonts(bytes(data.data()))


_FONT_FAMILY = re.compile(rb'font-family="([^"]*)"')


def _portable_fonts(svg: bytes) -> bytes:
    """Name the fonts as CSS does, with a generic fallback.

    Qt writes the family it was asked for ("Sans Serif" is fontconfig's alias,
    unknown to browsers and slide software, which then fall back to a serif
    face). Each family becomes "the face Qt really used, sans-serif".
    """
    names: dict[bytes, bytes] = {}

    def portable(match: re.Match[bytes]) -> bytes:
        name = match.group(1)
        if name not in names:
            font = QFont(name.decode("utf-8", "replace"))
            info = QFontInfo(font)
            generic = "monospace" if info.fixedPitch() else "sans-serif"
            families = dict.fromkeys([info.family(), generic])  # ordered, unique
            names[name] = ", ".join(f for f in families if f).encode()
        return b'font-family="' + names[name] + b'"'

    return _FONT_FAMILY.sub(portable, svg)


def _pdf(page: QWidget, geometry: _Geometry, dpi: float, title: str) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setCreator("Softmax Lab")
    writer.setTitle(title)
    writer.setResolution(page.logicalDpiX())  # see _svg: text measured as laid out
    inches = QSizeF(geometry.width / dpi, geometry.height / dpi)
    writer.setPageSize(QPageSize(inches, QPageSize.Unit.Inch, "Softmax Lab chart"))
    writer.setPageMargins(QMarginsF(0, 0, 0, 0))
    painter = QPainter(writer)
    try:
        painter.fillRect(QRect(0, 0, writer.width(), writer.height()), page.palette().window())
        _paint(
            page,
            painter,
            writer.width() / geometry.logical.width(),
            writer.height() / geometry.logical.height(),
        )
    finally:
        painter.end()
    buffer.close()
    return bytes(data.data())


def _lay_out(page: QWidget, geometry: _Geometry) -> None:
    page.resize(geometry.logical)
    # Shown (never on screen: WA_DontShowOnScreen) so layouts, resize events and
    # pyqtgraph's own geometry updates run exactly as in the window.
    page.show()
    from PySide6.QtWidgets import QApplication

    QApplication.sendPostedEvents()
    QApplication.processEvents()
    if page.size() != geometry.logical:
        page.resize(geometry.logical)
        QApplication.processEvents()


def render_page(
    page: QWidget, natural: QSize, table: bool, options: ChartOptions, title: str = ""
) -> bytes:
    """Lay ``page`` out for ``options`` and paint it into a PNG, SVG or PDF file's bytes."""
    options = options.checked()
    geometry = _geometry(natural, table, options, float(page.logicalDpiX()))
    _lay_out(page, geometry)
    _retint_charts(page, options.theme)
    if options.fmt == "png":
        background = QColor((_DARK if options.theme == "dark" else _LIGHT)["background"])
        return _png(page, geometry, options.dpi, background)
    if options.fmt == "svg":
        return _svg(page, geometry, options.dpi, title)
    return _pdf(page, geometry, options.dpi, title)


def render_view(session: Session, options: ChartOptions) -> bytes:
    """The bytes of a PNG, SVG or PDF file showing ``options.view`` of ``session``.

    Builds the view offscreen over a snapshot of ``session`` (the window is not
    touched), lays it out at the requested size and paints it.

    Raises
    ------
    InvalidInputError
        Bad options, or a view with nothing to show (a heatmap without a batch,
        a gradient without a target).
    """
    options = options.checked()
    page, natural, table = build_page(session, options.view, options.theme)
    try:
        return render_page(page, natural, table, options, title=f"Softmax Lab: {options.view}")
    finally:
        page.close()
        page.deleteLater()


def render_image(session: Session, options: ChartOptions) -> QImage:
    """``options.view`` of ``session`` as a QImage (for the clipboard), DPI recorded."""
    data = render_view(session, replace(options, fmt="png"))
    image = QImage()
    image.loadFromData(data, "PNG")
    return image


def render_widget(widget: QWidget, options: ChartOptions) -> bytes:
    """A live widget as it is now (its current size and colours), for a picture of the screen.

    :func:`render_view` gives the slide version (fresh layout, chosen theme);
    this one paints ``widget`` as laid out, scaled to ``options.width``
    (default: its width times ``dpi`` / its logical DPI). A PNG is exactly
    ``width`` x ``height`` with the widget centred on its background; SVG and
    PDF keep the widget's aspect ratio. ``options.view`` and ``theme`` are ignored.
    """
    options = replace(options, view="probabilities", theme="light").checked()
    logical = widget.size()
    scale = options.dpi / widget.logicalDpiX()
    w = options.width or round(logical.width() * scale)
    h = options.height or round(logical.height() * w / logical.width())
    if options.fmt == "png":
        fit = min(w / logical.width(), h / logical.height())
        image = QImage(w, h, QImage.Format.Format_ARGB32)
        image.fill(widget.palette().window().color())
        painter = QPainter(image)
        try:
            painter.translate((w - logical.width() * fit) / 2, (h - logical.height() * fit) / 2)
            _paint(widget, painter, fit, fit)
        finally:
            painter.end()
        image.setDotsPerMeterX(round(options.dpi / 0.0254))
        image.setDotsPerMeterY(round(options.dpi / 0.0254))
        return _encode(image)
    geometry = _Geometry(w, round(logical.height() * w / logical.width()), logical)
    if options.fmt == "svg":
        return _svg(widget, geometry, options.dpi, widget.objectName())
    return _pdf(widget, geometry, options.dpi, widget.objectName())
