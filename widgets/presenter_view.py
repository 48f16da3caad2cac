"""Presenter mode: one large chart, the scene's panel, its caption, for a projector.

:class:`PresenterView` is its own top-level window bound to the window's
session. It builds its own :class:`ProbabilityChart`, :class:`StatsReadout` and
(on first use) the panel a scene asks for, with every font scaled for a room:
widget fonts, table fonts, and the pyqtgraph text the widgets draw themselves
(axis ticks and labels, plot titles, legends, value labels). Nothing of the
normal window is moved or restyled, so leaving presenter mode (``Esc``) finds
it exactly as it was.

Keys (mouse-free; a presentation clicker sends Page Up / Page Down):

* ``→`` ``↓`` ``Page Down`` ``Space``: next scene; ``←`` ``↑`` ``Page Up``: previous;
  ``Home`` / ``End``: first / last scene; ``R``: re-apply the scene;
* ``+`` / ``-``: temperature one step up / down the ladder 1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5,
  6.3, 8, 10, ... (about ×1.25 a step, on round numbers a room can read);
* ``Esc`` or ``F11``: leave presenter mode (and nothing else).

The view only *asks* for scene changes (signals); whoever owns the lecture
decides what "next" means (without a lecture, the app steps the chart view).
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import (
    Qt,
    Signal,
)
from PySide6.QtGui import QCloseEvent, QColor, QFont, QFontMetricsF, QKeyEvent, QPalette, QScreen
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.batch_view import BatchView
from softmax_lab.widgets.loss_panel import LossPanel
from softmax_lab.widgets.overflow_panel import COLUMNS as OVERFLOW_COLUMNS
from softmax_lab.widgets.overflow_panel import OverflowPanel
from softmax_lab.widgets.probability_chart import ProbabilityChart
from softmax_lab.widgets.projector_fonts import INK, MIN_GAIN, ProjectorFonts, ScaledFontModel
from softmax_lab.widgets.stats_readout import StatsReadout
from softmax_lab.widgets.steps_table import StepsTable
from softmax_lab.widgets.temperature_control import T_MAX, T_MIN

PANEL_NAMES: tuple[str, ...] = ("chart", "steps", "overflow", "loss", "batch")
BASE_SCALE = 1.6
"""Font scale on a 1920 × 1080 screen; smaller screens get proportionally less."""
TITLE_PT = 30
CAPTION_PT = 22
COUNTER_PT = 24
HINT_PT = 12
MIN_PT = 16
"""No text in presenter mode is smaller than this (at 1080 pixels; scaled with the screen)."""
MAX_PT = 40
VERDICT_PT = 19
OVERFLOW_TABLE_PT = 18
LOSS_VALUE_PT = 38
CODE_PT = 17
STEPS_TABLE_PT = 21
STEPS_HEADER_PT = 17
BATCH_TABLE_PT = 15
CAPTION_BACKGROUND = "#F2F2F2"
HINT_TEXT = (
    "→ / Page Down  next    ← / Page Up  previous    + / −  temperature    "
    "R  reset scene    Esc  leave"
)
HINT_TEXT_NO_LECTURE = (
    "→ / ←  chart view    + / −  temperature    Esc  leave    "
    "(open a lecture for scenes: File → Open lecture…)"
)
# Panels that carry their own numbers: the statistics readout would only crowd them.
_READOUT_PANELS = frozenset({"chart", "steps"})
# Width of the chart : the panel beside it. Panels full of text and tables get more room.
_STRETCH = {"chart": (1, 0), "steps": (2, 3), "overflow": (2, 3), "loss": (2, 3), "batch": (1, 2)}
_STRETCH_COMPACT = {"steps": (1, 2), "overflow": (1, 2), "loss": (1, 3), "batch": (1, 3)}
_LADDER = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0)


def temperature_step(temperature: float, up: bool) -> float:
    """The next temperature up (or down) the ladder ..., 0.8, 1, 1.25, 1.6, 2, ...

    Each step is about ×1.25 and lands on a round number, whatever T was; the
    result stays within the temperature control's range (0.01 .. 100).
    """
    values = sorted(
        round(m * 10.0**e, 6) for e in range(-2, 3) for m in _LADDER if T_MIN <= m * 10.0**e <= T_MAX
    )
    if up:
        above = [v for v in values if v > temperature * (1 + 1e-9)]
        return above[0] if above else T_MAX
    below = [v for v in values if v < temperature * (1 - 1e-9)]
    return below[-1] if below else T_MIN


def projector_scale(screen: QScreen | None) -> float:
    """Font scale for ``screen``: :data:`BASE_SCALE` at 1080 pixels tall, less on smaller ones."""
    if screen is None:
        return BASE_SCALE
    size = screen.availableGeometry().size()
    fit = min(size.width() / 1920, size.height() / 1080)
    return BASE_SCALE * max(0.75, min(fit, 1.5))


# ---------------------------------------------------------------------------
# The session, seen through a connection registry


class _ScopedSignal:
    """Connects to a session signal and remembers the slot, so it can be let go later."""

    def __init__(self, signal: Any, registry: list[tuple[Any, Any]]) -> None:
        self._signal = signal
        self._registry = registry

    def connect(self, slot: Any) -> Any:
        self._registry.append((self._signal, slot))
        return self._signal.connect(slot)

    def disconnect(self, slot: Any) -> None:
        self._signal.disconnect(slot)

    def emit(self, *args: Any) -> None:
        self._signal.emit(*args)


class ScopedSession:
    """The session for widgets that live shorter than it (the presenter's).

    Reads, writes and methods go to the real session; every slot connected
    through :attr:`events` or :attr:`changed` is recorded, and
    :meth:`disconnect_all` removes them all, including the lambdas widgets
    connect, so a closed presenter leaves nothing behind in the session.
    """

    def __init__(self, session: Session) -> None:
        registry: list[tuple[Any, Any]] = []
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_registry", registry)
        object.__setattr__(
            self, "events", {name: _ScopedSignal(sig, registry) for name, sig in session.events.items()}
        )
        object.__setattr__(self, "changed", _ScopedSignal(session.changed, registry))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._session, name, value)

    def disconnect_all(self) -> None:
        """Disconnect every slot connected through this object."""
        registry: list[tuple[Any, Any]] = self._registry
        for signal, slot in registry:
            signal.disconnect(slot)
        registry.clear()


# ---------------------------------------------------------------------------
# The view


class PresenterView(QWidget):
    """Fullscreen presenter view bound to ``session``.

    Parameters
    ----------
    session
        The window's session: the view renders it and writes only the
        temperature (``+``/``-``).
    parent
        Usually None: the view is a top-level window of its own.
    scale
        Font scale; default from the screen (see :func:`projector_scale`).

    Signals
    -------
    nextRequested, previousRequested, firstRequested, lastRequested, resetRequested
        Scene navigation asked for from the keyboard.
    leaveRequested
        ``Esc`` / ``F11``, or the window was closed.
    """

    nextRequested = Signal()
    previousRequested = Signal()
    firstRequested = Signal()
    lastRequested = Signal()
    resetRequested = Signal()
    leaveRequested = Signal()

    def __init__(
        self, session: Session, parent: QWidget | None = None, scale: float | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setObjectName("presenterView")
        self.setWindowTitle("Softmax Lab — presenter")
        self.session = session
        self._scoped = ScopedSession(session)
        screen = parent.screen() if parent is not None else QApplication.primaryScreen()
        self.scale = projector_scale(screen) if scale is None else float(scale)
        self._panel = "chart"
        self._disposed = False

        palette = self.palette()
        for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
            palette.setColor(role, QColor("white"))
        for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
            palette.setColor(role, QColor(INK))
        self.setPalette(palette)
        self.setAutoFillBackground(True)

        self.title_label = self._label("presenterTitle", TITLE_PT, bold=True)
        self.counter_label = self._label("presenterCounter", COUNTER_PT, bold=True)
        self.counter_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.counter_label)

        self.fonts = ProjectorFonts(self, self.scale, self._pt(MIN_PT), self._pt(MAX_PT))
        self.readout = StatsReadout(self._scoped)  # type: ignore[arg-type]
        self.chart = ProbabilityChart(self._scoped)  # type: ignore[arg-type]
        self._style_chart()
        self.panel_stack = QStackedWidget()
        self.panel_stack.setObjectName("presenterPanel")
        self.panels: dict[str, QWidget] = {}

        self.body = QHBoxLayout()
        self.body.setSpacing(28)
        self.body.addWidget(self.chart, 1)
        self.body.addWidget(self.panel_stack, 1)

        self.caption_label = self._label("presenterCaption", CAPTION_PT)
        self.caption_label.setWordWrap(True)
        self.caption_label.setStyleSheet(
            f"background: {CAPTION_BACKGROUND}; color: {INK}; padding: 12px 18px;"
            f" border-left: 8px solid {style.BAR};"
        )
        self.hint_label = self._label("presenterHint", HINT_PT)
        self.hint_label.setStyleSheet("color: #444444;")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(36, 20, 36, 14)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addWidget(self.readout)
        layout.addLayout(self.body, 1)
        layout.addWidget(self.caption_label)
        layout.addWidget(self.hint_label)

        self.fonts.apply(self.readout)
        self.fonts.apply(self.chart)
        self._no_focus(self)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        # After the widgets' own slots (connected above): they may reset fonts.
        self._scoped.changed.connect(self._after_change)
        vb = self.chart.plot_item.getViewBox()
        vb.sigResized.connect(self._after_change)
        vb.sigXRangeChanged.connect(self._after_change)
        self.fonts.restyle_plots()
        self.show_state("chart")

    # -- building -----------------------------------------------------------------------

    def _pt(self, points: float) -> float:
        """``points`` as meant on a 1080-pixel screen, on this one."""
        return points * self.scale / BASE_SCALE

    def _label(self, name: str, points: float, bold: bool = False) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        font = QFont()
        # Larger than the window's own text even on a small screen.
        font.setPointSizeF(max(self._pt(points), QApplication.font().pointSizeF() * MIN_GAIN))
        font.setBold(bold)
        label.setFont(font)
        label.setStyleSheet(f"color: {INK};")
        return label

    def _style_chart(self) -> None:
        # High contrast: darker reference line and ghost bars.
        chart = self.chart
        chart.uniform_line.setPen(pg.mkPen("#555555", width=3, style=Qt.PenStyle.DashLine))
        chart.ghost.setOpts(brush=pg.mkBrush(110, 110, 110, 110))
        chart.uniform_line.label.setPosition(0.92)  # room for the larger "1/N"
        chart.view_combo.setVisible(False)
        for child in chart.findChildren(QLabel):
            if child.buddy() is chart.view_combo:
                child.setVisible(False)  # "Show:" belongs to the hidden combo

    def _no_focus(self, root: QWidget) -> None:
        # Mouse-free: every key goes to the view, none is eaten by a table or a combo.
        for widget in (root, *root.findChildren(QWidget)):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def panel(self, name: str) -> QWidget | None:
        """The widget showing panel ``name`` (built on first use); None for ``chart``."""
        if name == "chart":
            return None
        if name not in self.panels:
            factories: dict[str, Any] = {
                "steps": StepsTable,
                "overflow": OverflowPanel,
                "loss": LossPanel,
                "batch": BatchView,
            }
            if name not in factories:
                raise ValueError(f"unknown panel {name!r}; choose one of {', '.join(PANEL_NAMES)}")
            widget = factories[name](self._scoped)
            self.panels[name] = widget
            self.panel_stack.addWidget(widget)
            self.fonts.apply(widget)
            self._tune_panel(widget)
            self._no_focus(widget)
            self.fonts.restyle_plots()
        return self.panels[name]

    def _tune_panel(self, widget: QWidget) -> None:
        """What a room does not need from a panel goes; what it reads gets room."""
        # Below a 1080-pixel screen there is not room for everything: keep the numbers.
        compact = self.scale < 0.9 * BASE_SCALE
        if isinstance(widget, OverflowPanel):
            widget.table.setModel(ScaledFontModel(widget.model, widget.table))
            # The scene title heads the slide and the chart title names the dtype;
            # red cells explain themselves.
            widget.title.hide()
            widget.table_note.hide()
            widget.gauge.setFixedHeight(round(self._pt(190)))
            widget.gauge.setVisible(not compact)
            # Eight columns side by side: every one must be readable without scrolling.
            self.fonts.fix(widget.table, self._pt(OVERFLOW_TABLE_PT))
            for label in (widget.verdict, widget.log_verdict):
                self.fonts.fix(label, self._pt(VERDICT_PT))
        elif isinstance(widget, LossPanel):
            self.fonts.fix(widget.loss_value, self._pt(LOSS_VALUE_PT))
            # The two calls side by side must fit on one line each.
            for code in (widget.setup_code, widget.right_code, widget.wrong_code):
                self.fonts.fix(code, self._pt(CODE_PT))
            if compact:
                widget.chart.setMinimumHeight(round(self._pt(150)))
                widget.gradient_title.hide()
            # The target and smoothing controls: the formula says which target is used.
            for child in widget.findChildren(QLabel):
                if child.text() in ("Cross-entropy loss", "target class", "label smoothing"):
                    child.hide()
            for control in (
                widget.target_combo,
                widget.target_spin,
                widget.slider,
                widget.smoothing_value,
                widget.explanation,  # the scene's caption tells it, in the room's words
            ):
                control.hide()
        elif isinstance(widget, StepsTable):
            # The table is the scene: a few rows, as large as a caption.
            self.fonts.fix(widget.view, self._pt(STEPS_TABLE_PT))
            self.fonts.fix(widget.view.horizontalHeader(), self._pt(STEPS_HEADER_PT))
        elif isinstance(widget, BatchView):
            for noise in (widget.targets_button, widget.binning_label):
                noise.hide()
            # Five columns of numbers beside the heatmap: sized so that all show.
            for part in (widget.table, widget.table.horizontalHeader()):
                self.fonts.fix(part, self._pt(BATCH_TABLE_PT))

    # -- what is shown --------------------------------------------------------------------

    @property
    def current_panel(self) -> str:
        """The panel shown beside the chart: one of :data:`PANEL_NAMES`."""
        return self._panel

    def show_scene(
        self, title: str, caption: str, panel: str, index: int, count: int, lecture: str = ""
    ) -> None:
        """Show scene ``index`` (0-based) of ``count``: its title, caption and panel."""
        self.title_label.setText(title)
        self.counter_label.setText(f"{index + 1} / {count}")
        self.counter_label.setToolTip(lecture)
        self.caption_label.setText(caption)
        self.caption_label.setVisible(bool(caption.strip()))
        self.hint_label.setText(HINT_TEXT)
        self._show_panel(panel)

    def show_state(self, panel: str) -> None:
        """No lecture: show the current state with ``panel`` beside the chart."""
        self.title_label.setText("Softmax Lab")
        self.counter_label.setText("")
        self.caption_label.setText("")
        self.caption_label.setVisible(False)
        self.hint_label.setText(HINT_TEXT_NO_LECTURE)
        self._show_panel(panel)

    def _show_panel(self, panel: str) -> None:
        widget = self.panel(panel)
        self._panel = panel
        chart_share, panel_share = _STRETCH[panel]
        if self.scale < 0.9 * BASE_SCALE:
            # A small screen: the panel's numbers need the room more than three bars do.
            chart_share, panel_share = _STRETCH_COMPACT.get(panel, (chart_share, panel_share))
        self.body.setStretch(0, chart_share)
        self.body.setStretch(1, panel_share)
        if widget is None:
            self.panel_stack.hide()
        else:
            self.panel_stack.setCurrentWidget(widget)
            self.panel_stack.show()
            if panel == "batch":
                self.layout().activate()
                self._balance_batch()
        self.readout.setVisible(panel in _READOUT_PANELS)
        self._after_change()

    # -- keys -----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        keys = Qt.Key
        if key in (keys.Key_Right, keys.Key_Down, keys.Key_PageDown, keys.Key_Space):
            self.nextRequested.emit()
        elif key in (keys.Key_Left, keys.Key_Up, keys.Key_PageUp, keys.Key_Backspace):
            self.previousRequested.emit()
        elif key == keys.Key_Home:
            self.firstRequested.emit()
        elif key == keys.Key_End:
            self.lastRequested.emit()
        elif key == keys.Key_R:
            self.resetRequested.emit()
        elif key in (keys.Key_Plus, keys.Key_Equal):
            self._step_temperature(up=True)
        elif key in (keys.Key_Minus, keys.Key_Underscore):
            self._step_temperature(up=False)
        elif key in (keys.Key_Escape, keys.Key_F11):
            self.leaveRequested.emit()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def _step_temperature(self, up: bool) -> None:
        new = temperature_step(self.session.temperature, up)
        if not math.isclose(new, self.session.temperature):
            self.session.temperature = new  # T_MIN..T_MAX: always valid

    # -- reactions ------------------------------------------------------------------------

    def _after_change(self, *_args: Any) -> None:
        if self._disposed:
            return
        self.fonts.restyle_plots()
        self._fit_value_labels()
        batch = self.panels.get("batch")
        if isinstance(batch, BatchView) and not batch.isHidden():
            self._label_heatmap(batch)
            loaded = self.session.batch
            # "No targets: load them (Targets…)" asks for a click nobody makes here.
            batch.mean_ce_label.setVisible(loaded is not None and loaded.targets is not None)
            batch.table.resizeColumnsToContents()
        overflow = self.panels.get("overflow")
        if isinstance(overflow, OverflowPanel) and not overflow.isHidden():
            self._focus_overflow_columns(overflow)
        loss = self.panels.get("loss")
        if isinstance(loss, LossPanel) and not loss.isHidden():
            # "target" under a negative bar would hang below the plot at this size:
            # put it on the zero line, above the bar, where it stays inside.
            label = loss.chart.target_label
            label.setAnchor((0.5, 1.0))
            label.setPos(label.pos().x(), 0.0)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._balance_batch()

    def _balance_batch(self) -> None:
        # Heatmap and row table side by side, the table wider: its numbers are the point.
        batch = self.panels.get("batch")
        if batch is not None:
            for splitter in batch.findChildren(QSplitter):
                total = sum(splitter.sizes())
                if total > 0:
                    share = 0.25 if self.scale < 0.9 * BASE_SCALE else 0.32
                    heatmap = round(share * total)
                    splitter.setSizes([heatmap, total - heatmap])

    def _fit_value_labels(self) -> None:
        # The values printed on the bars: as large as the room wants, but never wider
        # than a bar's column, where they would run into their neighbours.
        labels = [label for label in self.chart.value_labels if label.isVisible()]
        if not labels:
            return
        vb = self.chart.plot_item.getViewBox()
        (x_min, x_max), _ = vb.viewRange()
        column = vb.width() / max(x_max - x_min, 1e-9)
        sizes = []
        for label in labels:
            font = QFont(label.textItem.font())
            full = getattr(label, "_presenter_full", font.pointSizeF())
            font.setPointSizeF(full)
            width = QFontMetricsF(font).horizontalAdvance(label.textItem.toPlainText())
            sizes.append(full * min(1.0, 0.92 * column / width) if width > 0 else full)
        size = round(max(min(sizes), 7.0), 1)
        for label in labels:
            font = label.textItem.font()
            if abs(font.pointSizeF() - size) >= 0.05:
                font = QFont(font)
                font.setPointSizeF(size)
                label.setFont(font)
                label._presenter_size = size  # the restyle must not enlarge it again

    def _focus_overflow_columns(self, panel: OverflowPanel) -> None:
        # Eight columns do not fit a room's font: show the naive path for the
        # overflow story and the two logs for the log_softmax story (the chart view
        # says which one a scene tells).
        logs = self.session.chart_view == "log-probabilities"
        attributes = [attribute for attribute, _, _ in OVERFLOW_COLUMNS]
        hidden = (
            {"naive_exp", "naive_probabilities", "exp_shifted"}
            if logs
            else {"log_of_softmax", "log_probabilities"}
        )
        for column, attribute in enumerate(attributes, start=1):
            panel.table.setColumnHidden(column, attribute in hidden)

    def _label_heatmap(self, batch: BatchView) -> None:
        # Whole rows and named classes on the heatmap's axes: a room reads "row 2",
        # not the half-integers pyqtgraph picks for a 4 × 3 image.
        loaded = self.session.batch
        plot = batch.heatmap.getPlotItem()
        if loaded is None:
            return
        rows, classes = loaded.data.shape
        left, bottom = plot.getAxis("left"), plot.getAxis("bottom")
        left.setTicks([[(float(i), str(i)) for i in range(rows)]] if rows <= 30 else None)
        names = loaded.class_names or ()
        if classes <= 12:
            labels = names if len(names) == classes else [str(i) for i in range(classes)]
            bottom.setTicks([[(float(i), str(text)) for i, text in enumerate(labels)]])
        else:
            bottom.setTicks(None)

    def closeEvent(self, event: QCloseEvent) -> None:
        # Closed from outside (a window manager, Alt+F4): leave presenter mode properly.
        if not self._disposed:
            self.leaveRequested.emit()
        super().closeEvent(event)

    def dispose(self) -> None:
        """Stop following the session (call before deleting the view)."""
        if self._disposed:
            return
        self._disposed = True
        self._scoped.disconnect_all()
        vb = self.chart.plot_item.getViewBox()
        vb.sigResized.disconnect(self._after_change)
        vb.sigXRangeChanged.disconnect(self._after_change)

