"""The main chart: one bar per class for row 0 of ``session.analysis``.

Three views (``session.chart_view``): probabilities (y fixed to 0..1),
log-probabilities (bars rise from just below the smallest finite log p up to
log p, so a taller bar is still a more probable class) and the raw logits
(bars from 0). Extras: the faint T = 1 ghost behind the bars, the 1/N line,
argmax and target highlights, values printed on the bars and class names on the
x axis when there are few classes.

Rendering rules (the cost of an update must not depend on C):

* every series is ONE item updated in place with ``setOpts`` and one brush;
  highlights and value labels are separate small items created once and reused;
* non-finite values are clamped into the visible range (-inf to the bottom,
  +inf to the top, NaN to the middle) and marked with one red scatter item;
* **envelope: max per pixel column.** Above :data:`ENVELOPE_MIN_CLASSES` classes,
  or more classes than the plot has pixel columns, the visible classes are split
  into about one bin per pixel column and each bin is drawn as one bar of the
  bin's MAXIMUM. A mean or a sample would hide a single sharp peak among 262,144
  classes; the max keeps every peak visible, which is what people look for. The
  argmax and target stay thin markers at their true class index. Zooming or
  panning on x re-bins the visible range (a numpy max-reduce, display only), so
  zooming in far enough shows the individual bars again.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from softmax_lab.app.session import CHART_VIEWS, Session, default_names
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import style

ENVELOPE_MIN_CLASSES = 2_000
"""From this many classes on, the chart draws the max-per-pixel-column envelope."""
VALUE_LABEL_MAX_CLASSES = 20
"""Values are printed on the bars up to this many classes."""
NAME_TICKS_MAX_CLASSES = 30
"""Class names label the x axis up to this many classes; numeric ticks above."""
ENVELOPE_TEXT = "envelope: max per pixel column"
ENVELOPE_TOOLTIP = (
    "Too many classes for one bar each: every bar is the MAXIMUM over the classes in one "
    "pixel column, so no peak can hide. Zoom in (mouse wheel on the x axis) for single bars."
)

_VIEW_LABELS = {
    "probabilities": "Probabilities p",
    "log-probabilities": "Log-probabilities log p",
    "logits": "Logits x",
}
_SERIES_NAMES = {"probabilities": "p", "log-probabilities": "log p", "logits": "logit x"}


def _abbreviate(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: max(limit - 1, 1)] + "…"


class ProbabilityChart(QWidget):
    """Bar chart of the current softmax result, with a view switch above it.

    Parameters
    ----------
    session
        The session to render (``analysis``, ``chart_view``, ``target``,
        ``class_names``) and to write ``chart_view`` into.
    parent
        Qt parent.

    Attributes
    ----------
    plot_item : pyqtgraph.PlotItem
        The plot (for export).
    bars : pyqtgraph.BarGraphItem
        The main series; its ``opts`` hold exactly what is drawn.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probabilityChart")
        self.session = session
        self._values: np.ndarray | None = None  # current view's values, clamped
        self._ghost_values: np.ndarray | None = None
        self._nonfinite: np.ndarray | None = None  # indices of non-finite values
        self._y0 = 0.0
        self._y_range = (0.0, 1.0)
        self._num_classes = -1
        self._envelope = False
        self._rendering = False
        self._argmax = -1
        self._title = ""
        self._ticks: list[tuple[float, str]] = []

        self.view_combo = QComboBox(self)
        self.view_combo.setObjectName("chartViewCombo")
        self.view_combo.addItems(list(CHART_VIEWS))
        self.view_combo.setToolTip("What the bars show")
        self.view_combo.currentTextChanged.connect(self._on_chart_view_changed)
        self.envelope_label = QLabel(ENVELOPE_TEXT, self)
        self.envelope_label.setObjectName("envelopeLabel")
        self.envelope_label.setToolTip(ENVELOPE_TOOLTIP)
        self.envelope_label.setStyleSheet(f"color: {style.TEXT}; font-style: italic;")
        self.envelope_label.hide()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        view_caption = QLabel("Show:", self)
        view_caption.setBuddy(self.view_combo)
        top.addWidget(view_caption)
        top.addWidget(self.view_combo)
        top.addStretch(1)
        top.addWidget(self.envelope_label)

        self.plot_widget = pg.PlotWidget(self, background=style.PLOT_BACKGROUND)
        self.plot_widget.setObjectName("probabilityPlot")
        self.plot_widget.setMinimumSize(320, 220)
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        self._build_plot()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.plot_widget, 1)

        session.events["analysis"].connect(self.set_analysis)
        session.events["chart_view"].connect(self.set_chart_view)
        session.events["target"].connect(self._on_target)
        session.events["class_names"].connect(self._on_class_names)
        self.set_chart_view(session.chart_view)

    # -- construction ---------------------------------------------------------------

    def _build_plot(self) -> None:
        pi = self.plot_item
        pi.hideButtons()
        pi.setMenuEnabled(False)
        vb = pi.getViewBox()
        vb.disableAutoRange()
        vb.setMouseEnabled(x=True, y=False)
        tick_font = QFont()
        tick_font.setPointSize(12)
        for name in ("left", "bottom"):
            axis = pi.getAxis(name)
            axis.setPen(pg.mkPen(style.PLOT_FOREGROUND))
            axis.setTextPen(pg.mkPen(style.TEXT))
            axis.setStyle(tickFont=tick_font, tickTextOffset=6)
        pi.setLabel("bottom", "class", **{"font-size": "13pt", "color": style.TEXT})
        pi.showGrid(x=False, y=True, alpha=0.15)
        # The grid is drawn by the left axis and replayed whenever the bars' region is
        # repainted, i.e. on every tick: pyqtgraph's third tick level (lines too faint to
        # see at alpha 0.15) made that replay 5-9 ms; without it, 1.3 ms.
        pi.getAxis("left").setStyle(maxTickLevel=1)

        no_pen = pg.mkPen(None)
        zero = np.zeros(0)
        self.ghost = pg.BarGraphItem(
            x0=zero, width=zero, height=zero, brush=pg.mkBrush(style.GHOST), pen=no_pen
        )
        self.ghost.setZValue(-10)
        self.bars = pg.BarGraphItem(
            x0=zero, width=zero, height=zero, brush=pg.mkBrush(style.BAR), pen=no_pen
        )
        self.argmax_bar = pg.BarGraphItem(
            x=[0.0], width=style.BAR_WIDTH, height=[0.0], brush=pg.mkBrush(style.ARGMAX), pen=no_pen
        )
        self.argmax_bar.setZValue(5)
        self.target_bar = pg.BarGraphItem(
            x=[0.0], width=style.TARGET_WIDTH, height=[0.0], brush=pg.mkBrush(style.TARGET), pen=no_pen
        )
        self.target_bar.setZValue(6)
        # Envelope mode: a 1-px-wide bar is easy to miss, so each highlight also gets a
        # triangle above it. One single-spot item per highlight, moved with setPos: a
        # ScatterPlotItem.setData per tick cost 1.3 ms at 262,144 classes.
        self.argmax_marker, self.target_marker = (
            pg.ScatterPlotItem(x=[0.0], y=[0.0], size=14, symbol="t", pen=pg.mkPen("w"), brush=colour)
            for colour in (style.ARGMAX, style.TARGET)
        )
        for marker in (self.argmax_marker, self.target_marker):
            marker.setZValue(7)
            marker.hide()
        self.nonfinite_markers = pg.ScatterPlotItem(
            size=12, symbol="x", pen=pg.mkPen(style.BAD, width=2), brush=pg.mkBrush(style.BAD)
        )
        self.nonfinite_markers.setZValue(8)
        dash = pg.mkPen(style.REFERENCE_LINE, width=2, style=Qt.PenStyle.DashLine)
        self.uniform_line = pg.InfiniteLine(
            pos=0.0,
            angle=0,
            pen=dash,
            movable=False,
            label="1/N",
            labelOpts={"position": 0.97, "color": style.TEXT, "anchors": [(1, 1), (1, 1)]},
        )
        self.uniform_line.setZValue(4)
        for item in (
            self.ghost,
            self.bars,
            self.argmax_bar,
            self.target_bar,
            self.argmax_marker,
            self.target_marker,
            self.nonfinite_markers,
            self.uniform_line,
        ):
            pi.addItem(item)
        self.value_labels: list[pg.TextItem] = []
        self._label_states: list[tuple[Any, ...]] = []  # what each label shows now

        self.legend = pi.addLegend(
            offset=(-10, 10),
            labelTextColor=style.TEXT,
            labelTextSize="11pt",
            brush=pg.mkBrush(255, 255, 255, 220),
            pen=pg.mkPen(style.REFERENCE_LINE),
        )
        self.legend.addItem(self.bars, "p")
        self.legend.addItem(self.argmax_bar, "argmax")
        self.legend.addItem(self.target_bar, "target")
        self._legend_extras: dict[str, bool] = {"ghost": False, "nonfinite": False}

        vb.sigXRangeChanged.connect(self._on_x_range_changed)
        vb.sigResized.connect(self._on_resized)

    # -- session -> widget -----------------------------------------------------------

    def set_chart_view(self, view: str) -> None:
        """Show ``view`` in the combo and redraw, without writing the session."""
        with signals_blocked(self.view_combo):
            self.view_combo.setCurrentText(view)
        self.plot_item.setLabel(
            "left", _VIEW_LABELS.get(view, view), **{"font-size": "13pt", "color": style.TEXT}
        )
        self.legend.items[0][1].setText(_SERIES_NAMES.get(view, view))
        self.set_analysis(self.session.analysis)

    def set_analysis(self, analysis: Any) -> None:
        """Redraw from ``analysis`` (a VectorAnalysis or None) in the current view."""
        if analysis is None:
            self._values = None
            empty = np.zeros(0)
            for item in (self.bars, self.ghost):
                item.setOpts(x0=empty, width=empty, height=empty, y0=0.0)
            for item in (self.argmax_bar, self.target_bar):
                item.setOpts(x=empty, height=empty)  # empty, not hidden: see _render_highlights
            for item in (
                self.uniform_line, self.argmax_marker, self.target_marker, self.nonfinite_markers
            ):
                item.hide()
            self._set_legend_extra("ghost", self.ghost, "T = 1", False)
            self._set_legend_extra(
                "nonfinite", self.nonfinite_markers, "not finite (clamped)", False
            )
            self._hide_value_labels(0)
            return
        result = analysis.result
        view = self.session.chart_view
        temperature = float(result.temperature)
        if view == "probabilities":
            raw = result.probabilities[0]
            ghost_raw = analysis.reference.probabilities[0]
        elif view == "log-probabilities":
            raw = result.log_probabilities[0]
            ghost_raw = analysis.reference.log_probabilities[0]
        else:
            raw = result.logits[0]
            ghost_raw = None  # T does not change the logits: a ghost would be the same bars
        show_ghost = ghost_raw is not None and temperature != 1.0
        self._set_y_range(view, raw, ghost_raw if show_ghost else None)
        self._values, self._nonfinite = self._clamp(raw)
        self._ghost_values = self._clamp(ghost_raw)[0] if show_ghost else None
        self.ghost.setVisible(show_ghost)
        self._set_legend_extra("ghost", self.ghost, "T = 1", show_ghost)

        count = raw.shape[0]
        if count != self._num_classes:
            self._num_classes = count
            self._reset_x(count)
        self._argmax = int(result.stats.argmax[0])
        self._render()

        uniform = view == "probabilities"
        self.uniform_line.setVisible(uniform)
        if uniform:
            self.uniform_line.setValue(1.0 / count)
        title = style.chart_title(view, temperature, result.dtype, count)
        if title != self._title:  # re-laying out the title costs more than the bars
            self._title = title
            self.plot_item.setTitle(title, color=style.TEXT, size="14pt")

    def _on_target(self, _target: Any) -> None:
        if self._values is not None:
            self._render()

    def _on_class_names(self, _names: Any) -> None:
        self._update_ticks()

    # -- widget -> session -----------------------------------------------------------

    def _on_chart_view_changed(self, view: str) -> None:
        try:
            self.session.chart_view = view
        except InvalidInputError as error:  # the combo only holds valid views; defensive
            self.session.report("error", str(error), source="chart")

    # -- drawing -----------------------------------------------------------------------

    def _set_y_range(self, view: str, raw: np.ndarray, ghost: np.ndarray | None) -> None:
        if view == "probabilities":
            low, high, y0 = 0.0, 1.0, 0.0
        else:
            lo, hi = _finite_bounds(raw)
            if ghost is not None:
                glo, ghi = _finite_bounds(ghost)
                lo, hi = float(np.fmin(lo, glo)), float(np.fmax(hi, ghi))  # NaN = none finite
            if view == "log-probabilities":
                high = 0.0
                span = max(-lo, 1.0) if math.isfinite(lo) else 1.0
                low = (lo if math.isfinite(lo) else 0.0) - 0.08 * span
                y0 = low  # bars rise from the bottom: taller = more probable
            else:
                lo = min(lo, 0.0) if math.isfinite(lo) else 0.0
                hi = max(hi, 0.0) if math.isfinite(hi) else 0.0
                pad = 0.08 * (hi - lo) if hi > lo else 1.0
                # Room below 0 for negative logits, and for -inf ones clamped to the bottom.
                room_below = lo < 0 or bool(np.isneginf(raw).any())
                low, high, y0 = lo - (pad if room_below else 0.0), hi + pad, 0.0
        self._y0 = y0
        if (low, high) != self._y_range:
            self._y_range = (low, high)
            self.plot_item.getViewBox().setYRange(low, high, padding=0)

    def _clamp(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Non-finite values moved into view (-inf near the bottom, +inf near the top, NaN
        in the middle), and their indices; finite values are inside the range already."""
        finite = np.isfinite(raw)
        if finite.all():
            return raw, None
        low, high = self._y_range
        inset = 0.03 * (high - low)  # keep the red marker inside the frame
        clamped = np.where(np.isnan(raw), (low + high) / 2, np.clip(raw, low + inset, high - inset))
        clamped[finite] = raw[finite]
        return clamped, np.flatnonzero(~finite)

    def _reset_x(self, count: int) -> None:
        vb = self.plot_item.getViewBox()
        vb.setLimits(xMin=-1.0, xMax=count, minXRange=min(4.0, count + 1.0))
        self._rendering = True  # the range change below must not re-render half-updated data
        try:
            vb.setXRange(-0.5, count - 0.5, padding=0.02)
        finally:
            self._rendering = False
        self._update_ticks()

    def _plot_width(self) -> float:
        width = float(self.plot_item.getViewBox().width())
        # Before the first layout (an export of a widget never shown) assume a usual size.
        return width if width >= 50 else 640.0

    def _columns(self) -> int:
        return max(200, int(self._plot_width()))

    def _render(self) -> None:
        values = self._values
        if values is None:
            return
        count = values.shape[0]
        columns = self._columns()
        self._envelope = count > ENVELOPE_MIN_CLASSES or count > columns
        y0 = self._y0
        if not self._envelope:
            x0 = np.arange(count, dtype=np.float64)
            self.bars.setOpts(x0=x0 - style.BAR_WIDTH / 2, width=style.BAR_WIDTH, height=values - y0, y0=y0)
            if self._ghost_values is not None:
                self.ghost.setOpts(
                    x0=x0 - style.GHOST_WIDTH / 2,
                    width=style.GHOST_WIDTH,
                    height=self._ghost_values - y0,
                    y0=y0,
                )
            marker_x = self._nonfinite
        else:
            marker_x = self._render_envelope(values, columns)
        self.envelope_label.setVisible(self._envelope)
        self.plot_widget.setToolTip(ENVELOPE_TOOLTIP if self._envelope else "")
        self._render_nonfinite(marker_x)
        self._render_highlights()
        self._render_value_labels()

    def _render_envelope(self, values: np.ndarray, columns: int) -> np.ndarray | None:
        """Bin the visible classes by pixel column and draw each bin's max."""
        count = values.shape[0]
        (xmin, xmax), _ = self.plot_item.getViewBox().viewRange()
        lo = int(min(max(math.floor(xmin + 0.5), 0), count - 1))
        hi = int(min(max(math.ceil(xmax + 0.5), lo + 1), count))
        step = max(1, math.ceil((hi - lo) / columns))
        starts = np.arange(lo, hi, step)
        y0 = self._y0
        if step == 1:
            x0, width = starts - style.BAR_WIDTH / 2, style.BAR_WIDTH
            heights = values[lo:hi]
            ghost = None if self._ghost_values is None else self._ghost_values[lo:hi]
            gx0, gwidth = starts - style.GHOST_WIDTH / 2, style.GHOST_WIDTH
        else:
            x0 = starts - 0.5
            width = np.diff(np.append(starts, hi)).astype(np.float64)
            offsets = starts - lo
            heights = np.fmax.reduceat(values[lo:hi], offsets)
            ghost = None
            if self._ghost_values is not None:
                ghost = np.fmax.reduceat(self._ghost_values[lo:hi], offsets)
            gx0, gwidth = x0, width
        self.bars.setOpts(x0=x0, width=width, height=heights - y0, y0=y0)
        if ghost is not None:
            self.ghost.setOpts(x0=gx0, width=gwidth, height=ghost - y0, y0=y0)
        if self._nonfinite is None:
            return None
        visible = self._nonfinite[(self._nonfinite >= lo) & (self._nonfinite < hi)]
        if step == 1 or visible.size == 0:
            return visible
        # One marker per bin that holds a non-finite value, at the bin's first such class.
        _, first = np.unique((visible - lo) // step, return_index=True)
        return visible[first]

    def _render_nonfinite(self, indices: np.ndarray | None) -> None:
        show = indices is not None and indices.size > 0
        self.nonfinite_markers.setVisible(show)
        self._set_legend_extra("nonfinite", self.nonfinite_markers, "not finite (clamped)", show)
        if show:
            assert self._values is not None and indices is not None
            self.nonfinite_markers.setData(x=indices.astype(np.float64), y=self._values[indices])

    def _render_highlights(self) -> None:
        values = self._values
        assert values is not None
        count = values.shape[0]
        y0 = self._y0
        vb = self.plot_item.getViewBox()
        # A highlight must stay visible when a class is one pixel wide or less.
        px = vb.viewPixelSize()[0] if self._envelope else 0.0
        for item, marker, index, width in (
            (self.argmax_bar, self.argmax_marker, self._argmax, style.BAR_WIDTH),
            (self.target_bar, self.target_marker, self.session.target, style.TARGET_WIDTH),
        ):
            if index is None or not 0 <= index < count:
                # Empty rather than hidden: a hidden item shows a crossed-out eye in the legend.
                item.setOpts(x=np.zeros(0), height=np.zeros(0))
                marker.hide()
                continue
            value = float(values[index])
            item.setOpts(x=[float(index)], width=max(width, 2.5 * px), height=[value - y0], y0=y0)
            marker.setPos(float(index), value)
            marker.setVisible(self._envelope)

    def _render_value_labels(self) -> None:
        values = self._values
        assert values is not None
        count = values.shape[0]
        if self._envelope or count > VALUE_LABEL_MAX_CLASSES:
            self._hide_value_labels(0)
            return
        per_class = self._plot_width() / count
        if per_class < 28:  # unreadable when they overlap; the steps table has the numbers
            self._hide_value_labels(0)
            return
        font = _label_font(11 if per_class >= 60 else 9)
        while len(self.value_labels) < count:
            label = pg.TextItem(color=style.TEXT, anchor=(0.5, 1.0))
            label.setZValue(9)
            self.plot_item.addItem(label)
            self.value_labels.append(label)
            self._label_states.append(())
        raw = self._raw_for_labels()
        low, high = self._y_range
        top_inside, bottom_inside = high - 0.1 * (high - low), low + 0.1 * (high - low)
        below_allowed = self.session.chart_view == "logits"
        for i in range(count):
            label = self.value_labels[i]
            value = float(values[i])
            below = below_allowed and value < 0
            # Near the frame the label goes inside the bar, in white, instead of off the plot.
            inside = value > top_inside if not below else value < bottom_inside
            anchor = (0.5, 0.0) if below != inside else (0.5, 1.0)
            state = (style.format_number(float(raw[i]), 3), anchor, inside, font.pointSize())
            old = self._label_states[i] or (None, None, None, None)
            # Each setter re-lays out the text item: call only those whose part changed
            # (a temperature tick changes the text alone, as a rule).
            if old[3] != state[3]:
                label.setFont(font)
            if old[0] != state[0]:
                label.setText(state[0])
            if old[1] != anchor:
                label.setAnchor(anchor)
            if old[2] != inside:
                label.setColor("w" if inside else style.TEXT)
            self._label_states[i] = state
            label.setPos(float(i), value)
            label.show()
        self._hide_value_labels(count)

    def _raw_for_labels(self) -> np.ndarray:
        analysis = self.session.analysis
        result = analysis.result
        view = self.session.chart_view
        if view == "probabilities":
            return result.probabilities[0]
        if view == "log-probabilities":
            return result.log_probabilities[0]
        return result.logits[0]

    def _hide_value_labels(self, start: int) -> None:
        for label in self.value_labels[start:]:
            label.hide()

    def _update_ticks(self) -> None:
        axis = self.plot_item.getAxis("bottom")
        count = self._num_classes
        names = self.session.class_names
        if not 0 < count <= NAME_TICKS_MAX_CLASSES or len(names) != count:
            axis.setTicks(None)  # numeric class indices, spaced by pyqtgraph
            return
        # As many characters as fit under one bar; the full names are in the steps table.
        per_class = self._plot_width() / count
        char = QFontMetricsF(axis.style["tickFont"] or QFont()).averageCharWidth()
        limit = int(0.9 * per_class / max(char, 1.0))
        if names == default_names(count) and limit < len(names[-1]):
            labels = [str(i) for i in range(count)]  # "class 17" -> "17"
        elif limit < 3:
            labels = [str(i) for i in range(count)]
        else:
            labels = [_abbreviate(n, limit) for n in names]
            if len(set(labels)) < count:
                # "token_alpha", "token_beta" -> "…alpha", "…beta": the shared prefix says nothing.
                cut = len(os.path.commonprefix(list(names)))
                labels = [_abbreviate("…" + n[cut:], limit) for n in names]
        ticks = [(float(i), text) for i, text in enumerate(labels)]
        if ticks != self._ticks:
            self._ticks = ticks
            axis.setTicks([ticks])

    def _set_legend_extra(self, key: str, item: Any, text: str, show: bool) -> None:
        if self._legend_extras[key] == show:
            return
        self._legend_extras[key] = show
        if show:
            self.legend.addItem(item, text)
        else:
            self.legend.removeItem(item)

    # -- view changes ---------------------------------------------------------------

    def _on_x_range_changed(self, *_args: Any) -> None:
        if not self._rendering and self._values is not None and self._envelope:
            self._render()

    def _on_resized(self, *_args: Any) -> None:
        # Pixel columns, tick-name length and label fonts all depend on the width.
        self._update_ticks()
        if not self._rendering and self._values is not None:
            self._render()


def _finite_bounds(values: np.ndarray) -> tuple[float, float]:
    mask = np.isfinite(values)
    finite = values if mask.all() else values[mask]
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.min()), float(finite.max())


def _label_font(points: int) -> QFont:
    font = QFont()
    font.setPointSize(points)
    return font
