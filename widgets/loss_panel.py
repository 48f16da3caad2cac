"""The cross-entropy panel: target, label smoothing, loss, gradient and the double-softmax pitfall.

The person picks a target class and a label smoothing ε (both written into the
session); the panel shows ``session.analysis.loss`` (computed by the controller
on ``logits / T``), the gradient ``d loss / d logits`` as bars, and the value
``CrossEntropyLoss`` gives when it is wrongly fed probabilities.

Large vocabularies: above :data:`LARGE_VECTOR` classes the target combo becomes
editable with a "contains" completer and the index spin box beside it takes a
class number directly. The choices live in a QStringListModel (about 40 ms to
fill for 50,257 classes, once per change of names): a Python model that makes
item texts on demand was tried and is far slower, because the combo and the
completer call ``data()`` for every row on each keystroke and selection; the gradient chart shows the
:data:`TOP_K` classes with the largest |gradient| (the rest are smaller, and
1-pixel bars for 50,000 classes would show nothing readable).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QComboBox,
    QCompleter,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import style
from softmax_lab.widgets.deferred import DeferredWhileHidden

if TYPE_CHECKING:
    from softmax_lab.compute.analysis import VectorAnalysis

TITLE_PT = 16
BODY_PT = 13
LOSS_PT = 30
HINT_PT = 16

LARGE_VECTOR = 1_000
"""Above this many classes: editable target combo, top-k gradient bars."""
TOP_K = 200
NAMED_TICKS = 20
"""Up to this many classes the gradient chart's x axis shows class names."""
SMOOTHING_MAX_STEP = 50
SMOOTHING_PER_STEP = 0.01
"""The slider runs 0..0.5 in steps of 0.01."""


def _font(points: int, bold: bool = False, italic: bool = False) -> QFont:
    font = QFont()
    font.setPointSize(points)
    font.setBold(bold)
    font.setItalic(italic)
    return font


def _drop_replaced_delegates(combo: QComboBox) -> None:
    """Delete the item delegates ``combo`` no longer uses.

    Each ``setEditable`` installs a new delegate on the combo's list view and leaves the old
    one there as a child of the view ("removed, but not deleted", says Qt): switching
    between a small vector and a vocabulary would pile up two QObjects per switch (found
    by the window soak, tests/app/test_soak.py).
    """
    view = combo.view()
    current = view.itemDelegate()
    for delegate in view.findChildren(
        QAbstractItemDelegate, options=Qt.FindChildOption.FindDirectChildrenOnly
    ):
        if delegate is not current:
            delegate.deleteLater()


def target_items(names: tuple[str, ...]) -> list[str]:
    """The target choices: "none" first (reachable with Home at any size), then "i: name"."""
    return ["none", *(f"{i}: {name}" for i, name in enumerate(names))]


def parse_target(text: str, names: tuple[str, ...]) -> int | None:
    """Read what a person typed into the target box: "none", an index, "i: name" or a name.

    Raises
    ------
    InvalidInputError
        Nothing matches.
    """
    text = text.strip()
    if text.lower() in ("", "none"):
        return None
    match = re.fullmatch(r"([0-9]+)(?::.*)?", text)
    if match:
        return int(match.group(1))
    if text in names:
        return names.index(text)
    raise InvalidInputError(f"no class called {text!r}: type a class index (0..{len(names) - 1}) or name")


class GradientChart(pg.PlotWidget):
    """d loss / d logits as bars: one item for positive, one for negative values."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=style.PLOT_BACKGROUND)
        self.setObjectName("gradientChart")
        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.disableAutoRange()
        tick_font = _font(BODY_PT - 2)
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(style.PLOT_FOREGROUND)
            axis.setTextPen(style.PLOT_FOREGROUND)
            axis.setStyle(tickFont=tick_font)
        # No axis label: the title above the chart says what the bars are.
        item.getAxis("left").enableAutoSIPrefix(False)  # "×0.001" confuses more than it saves
        empty = np.zeros(0)
        self.pos_bars = pg.BarGraphItem(
            x=empty, height=empty, width=0.8, brush=style.GRADIENT_POS, pen=pg.mkPen(style.GRADIENT_POS)
        )
        self.neg_bars = pg.BarGraphItem(
            x=empty, height=empty, width=0.8, brush=style.GRADIENT_NEG, pen=pg.mkPen(style.GRADIENT_NEG)
        )
        self.zero_line = pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen(style.TEXT, width=1.5))
        self.target_label = pg.TextItem("target", color=style.TARGET, anchor=(0.5, 0.0))
        self.target_label.setFont(_font(BODY_PT - 1, bold=True))
        for it in (self.pos_bars, self.neg_bars, self.zero_line, self.target_label):
            item.addItem(it)
        self.classes = np.zeros(0, dtype=np.int64)
        """The class index shown at each x position 0, 1, 2, ..."""
        self.setMinimumHeight(180)

    def set_gradient(self, gradient: np.ndarray | None, names: tuple[str, ...], target: int | None) -> None:
        """Show one row of gradient (or nothing for None); bars at x = 0, 1, 2, ..."""
        item = self.getPlotItem()
        if gradient is None or gradient.size == 0:
            empty = np.zeros(0)
            self.classes = np.zeros(0, dtype=np.int64)
            self.pos_bars.setOpts(x=empty, height=empty)
            self.neg_bars.setOpts(x=empty, height=empty)
            self.target_label.setVisible(False)
            item.getAxis("bottom").setTicks(None)
            return
        n = gradient.shape[0]
        if n > LARGE_VECTOR:
            # The largest |gradient| in class order; the rest are smaller than all of these.
            # (One magnitude array, NaN counted as 0 only if there is one: at 262,144
            # classes a nan_to_num copy and a negated copy cost ~2 ms a tick.)
            magnitude = np.abs(gradient)
            nan = np.isnan(magnitude)
            if nan.any():
                magnitude[nan] = 0.0
            top = np.argpartition(magnitude, n - TOP_K)[n - TOP_K :]
            self.classes = np.sort(top)
        else:
            self.classes = np.arange(n)
        # NaN (a NaN logit) draws as no bar; the loss label says nan.
        shown = np.nan_to_num(gradient[self.classes], nan=0.0, posinf=0.0, neginf=0.0)
        x = np.arange(shown.shape[0], dtype=np.float64)
        width = 0.8 if shown.shape[0] <= 200 else 1.0
        self.pos_bars.setOpts(x=x, height=np.where(shown > 0, shown, 0.0), width=width)
        self.neg_bars.setOpts(x=x, height=np.where(shown < 0, shown, 0.0), width=width)
        item.setXRange(-0.6, shown.shape[0] - 0.4, padding=0)
        low, high = float(shown.min(initial=0.0)), float(shown.max(initial=0.0))
        span = max(abs(low), abs(high)) or 1.0
        item.setYRange(min(low, 0.0) - 0.15 * span, max(high, 0.0) + 0.15 * span, padding=0)
        self._set_ticks(names)
        where = np.flatnonzero(self.classes == target) if target is not None else np.zeros(0)
        self.target_label.setVisible(where.size > 0)
        if where.size:
            pos = int(where[0])
            # Keep the word inside the plot next to the first and last bars.
            count = shown.shape[0]
            side = 0.0 if pos < 0.1 * count else 1.0 if pos > 0.9 * count else 0.5
            self.target_label.setAnchor((side, 0.0) if count > 5 else (0.5, 0.0))
            self.target_label.setPos(pos, min(float(shown[pos]), 0.0))

    def _set_ticks(self, names: tuple[str, ...]) -> None:
        axis = self.getPlotItem().getAxis("bottom")
        count = self.classes.shape[0]
        if count < len(names):  # top-k: positions are not class indices, label them
            step = max(1, count // 8)
            axis.setTicks([[(i, str(int(self.classes[i]))) for i in range(0, count, step)]])
        elif count <= NAMED_TICKS:
            axis.setTicks([[(i, names[c][:12]) for i, c in enumerate(self.classes)]])
        else:  # every class in order: the default numeric ticks are the class indices
            axis.setTicks(None)


class LossPanel(DeferredWhileHidden, QWidget):
    """Cross-entropy of the editor's vector against a target class.

    Parameters
    ----------
    session
        The window's session: the panel writes ``target`` and
        ``label_smoothing`` and renders ``analysis.loss``.
    parent
        Optional Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lossPanel")
        self.session = session
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSize(BODY_PT)
        mono.setBold(False)  # explicitly: the group box title is bold and fonts inherit

        title = QLabel("Cross-entropy loss")
        title.setFont(_font(TITLE_PT, bold=True))

        self.target_model = QStringListModel(self)
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("targetCombo")
        self.target_combo.setModel(self.target_model)
        # Never measure 50,257 items to size the box.
        self.target_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.target_combo.setMinimumContentsLength(16)
        view = self.target_combo.view()
        if isinstance(view, QListView):
            view.setUniformItemSizes(True)
        self.target_combo.setFont(_font(BODY_PT))
        # QComboBox is built with a spare delegate on its view already; drop it now so the
        # object count does not change the first time the box turns editable.
        _drop_replaced_delegates(self.target_combo)
        self.target_combo.currentIndexChanged.connect(self._on_target_changed)
        self.target_spin = QSpinBox()
        self.target_spin.setObjectName("targetSpin")
        self.target_spin.setSpecialValueText("none")
        self.target_spin.setKeyboardTracking(False)  # typing 4000 must not visit 4, 40, 400
        self.target_spin.setToolTip("target class index (below 0: none)")
        self.target_spin.setFont(_font(BODY_PT))
        self.target_spin.valueChanged.connect(self._on_target_spin_changed)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("labelSmoothingSlider")
        self.slider.setRange(0, SMOOTHING_MAX_STEP)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(5)
        self.slider.setTickInterval(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.valueChanged.connect(self._on_label_smoothing_changed)
        self.smoothing_value = QLabel()
        self.smoothing_value.setObjectName("labelSmoothingValue")
        self.smoothing_value.setFont(_font(BODY_PT, bold=True))
        self.smoothing_value.setMinimumWidth(90)

        self.error = QLabel()
        self.error.setObjectName("lossError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {style.BAD};")
        self.error.setVisible(False)

        self.loss_value = QLabel()
        self.loss_value.setObjectName("lossValue")
        self.loss_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formula = QLabel()
        self.formula.setObjectName("lossFormula")
        self.formula.setWordWrap(True)
        self.formula.setFont(_font(BODY_PT))
        self.temperature_note = QLabel()
        self.temperature_note.setObjectName("lossTemperatureNote")
        self.temperature_note.setWordWrap(True)
        self.temperature_note.setFont(_font(BODY_PT, italic=True))

        self.gradient_title = QLabel()
        self.gradient_title.setObjectName("gradientTitle")
        self.gradient_title.setFont(_font(BODY_PT, bold=True))
        self.chart = GradientChart(self)
        self.gradient_note = QLabel()
        self.gradient_note.setObjectName("gradientNote")
        self.gradient_note.setWordWrap(True)

        self.double_box = QGroupBox("Pitfall: softmax before CrossEntropyLoss")
        self.double_box.setObjectName("doubleSoftmaxBox")
        self.double_box.setFont(_font(BODY_PT, bold=True))
        # One short line per call (the constructor on its own line) so nothing wraps.
        self.setup_code = QLabel()
        self.setup_code.setObjectName("doubleSoftmaxSetup")
        self.setup_code.setFont(mono)
        self.setup_code.setStyleSheet("color: #555555;")
        self.right_code, self.wrong_code = QLabel(), QLabel()
        self.right_value, self.wrong_value = QLabel(), QLabel()
        self.right_value.setObjectName("doubleSoftmaxRight")
        self.wrong_value.setObjectName("doubleSoftmaxWrong")
        self.explanation = QLabel()
        self.explanation.setObjectName("doubleSoftmaxExplanation")
        self.explanation.setWordWrap(True)
        self.explanation.setFont(_font(BODY_PT))
        grid = QGridLayout(self.double_box)
        grid.setHorizontalSpacing(12)
        for row, (mark, colour, code, value) in enumerate(
            (("✓", "#2E7D32", self.right_code, self.right_value), ("✗", style.BAD, self.wrong_code, self.wrong_value))
        ):
            sign = QLabel(mark)
            sign.setFont(_font(HINT_PT, bold=True))
            sign.setStyleSheet(f"color: {colour};")
            code.setFont(mono)
            code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setFont(_font(HINT_PT, bold=True))
            value.setStyleSheet(f"color: {colour};")
            grid.addWidget(sign, row + 1, 0)
            grid.addWidget(code, row + 1, 1)
            grid.addWidget(value, row + 1, 2, alignment=Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.setup_code, 0, 1, 1, 2)
        grid.addWidget(self.explanation, 3, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        # Without this the panel's layout ignores the wrapped explanation's height
        # and clips it whenever the chart (which stretches) wants the room.
        policy = self.double_box.sizePolicy()
        policy.setHeightForWidth(True)
        self.double_box.setSizePolicy(policy)

        controls = QGridLayout()
        controls.setHorizontalSpacing(10)
        target_label = QLabel("target class")
        smoothing_label = QLabel("label smoothing")
        for label in (target_label, smoothing_label):
            label.setFont(_font(BODY_PT))
        controls.addWidget(target_label, 0, 0)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_combo, stretch=1)
        target_row.addWidget(self.target_spin)
        controls.addLayout(target_row, 0, 1, 1, 2)
        controls.addWidget(smoothing_label, 1, 0)
        controls.addWidget(self.slider, 1, 1)
        controls.addWidget(self.smoothing_value, 1, 2)
        controls.setColumnStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addLayout(controls)
        layout.addWidget(self.error)
        layout.addWidget(self.loss_value)
        layout.addWidget(self.formula)
        layout.addWidget(self.temperature_note)
        layout.addWidget(self.gradient_title)
        layout.addWidget(self.chart, stretch=1)
        layout.addWidget(self.gradient_note)
        layout.addWidget(self.double_box)

        session.events["class_names"].connect(self.set_class_names)
        session.events["target"].connect(self.set_target)
        session.events["label_smoothing"].connect(self.set_label_smoothing)
        session.events["analysis"].connect(self.set_analysis)
        self.set_class_names(session.class_names)
        self.set_label_smoothing(session.label_smoothing)
        self.set_analysis(session.analysis)

    # -- session -> widget -----------------------------------------------------------

    def set_class_names(self, names: tuple[str, ...]) -> None:
        """Refill the target choices; above LARGE_VECTOR classes the combo takes typed text."""
        large = len(names) > LARGE_VECTOR
        with signals_blocked(self.target_combo), signals_blocked(self.target_spin):
            self.target_model.setStringList(target_items(names))
            if large != self.target_combo.isEditable():
                self.target_combo.setEditable(large)
                _drop_replaced_delegates(self.target_combo)
                if large:
                    self._configure_completer()
            self.target_spin.setRange(-1, len(names) - 1)
        self.set_target(self.session.target)
        self.set_analysis(self.session.analysis)

    def _configure_completer(self) -> None:
        combo = self.target_combo
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = combo.completer()
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        popup = completer.popup()
        if isinstance(popup, QListView):
            popup.setUniformItemSizes(True)  # no per-row size query over thousands of matches
        combo.lineEdit().setPlaceholderText("class index or name")
        combo.lineEdit().editingFinished.connect(self._on_target_text_entered)

    def set_target(self, target: int | None) -> None:
        """Show ``target`` in the combo and the spin box without writing back."""
        with signals_blocked(self.target_combo), signals_blocked(self.target_spin):
            self.target_combo.setCurrentIndex(0 if target is None else target + 1)
            self.target_spin.setValue(-1 if target is None else target)
        self.set_analysis(self.session.analysis)

    def set_label_smoothing(self, value: float) -> None:
        """Show ε on the slider (clamped to its 0..0.5 range) and as text (exact)."""
        with signals_blocked(self.slider):
            self.slider.setValue(min(round(value / SMOOTHING_PER_STEP), SMOOTHING_MAX_STEP))
        self.smoothing_value.setText(f"ε = {value:.2f}")

    def set_analysis(self, analysis: VectorAnalysis | None) -> None:
        """Show the loss, gradient and double-softmax value of ``analysis`` (or the hint)."""
        if self.deferred():
            return
        loss = None if analysis is None else analysis.loss
        target = None if analysis is None else analysis.request.target
        if self.session.target is None or loss is None or target is None:
            self._show_hint(
                "pick a target class to see the loss"
                if self.session.target is None
                else "computing the loss …"
            )
            return
        assert analysis is not None
        eps, temp = loss.label_smoothing, loss.temperature
        n = loss.gradient.shape[1]
        names = self.session.class_names
        if len(names) != n:
            names = tuple(f"class {i}" for i in range(n))
        self._style_loss_value(_font(LOSS_PT, bold=True), f"color: {style.TEXT};")
        self.loss_value.setText(f"{style.format_number(loss.loss)} nats")

        p_name = "softmax(x)" if temp == 1.0 else "softmax(x/T)"
        if eps == 0.0:
            prob = float(analysis.result.probabilities[0, target])
            logp = float(analysis.result.log_probabilities[0, target])
            # p can underflow to 0 where log_softmax is finite: show the finite one.
            step = (
                f"−log {style.format_number(prob)}" if prob > 0 else f"−log_softmax = {style.format_number(-logp)}"
            )
            self.formula.setText(
                f"loss = −log p[target],  p = {p_name}\n"
                f"= −log p[{target}: {names[target]}] = {step} = {style.format_number(loss.loss)}"
            )
        else:
            self.formula.setText(
                f"loss = −Σᵢ qᵢ log pᵢ,  p = {p_name},  q = (1 − ε)·one-hot(target) + ε/C\n"
                f"(ε = {eps:.2f}, C = {n:,}, target = {target}: {names[target]})"
            )
        self.temperature_note.setVisible(temp != 1.0)
        self.temperature_note.setText(
            f"Uses the current temperature: the loss is computed on logits / T with T = {temp:g}."
        )
        q_name = "one-hot(target)" if eps == 0.0 else "q"
        head = f"{p_name} − {q_name}" if temp == 1.0 else f"({p_name} − {q_name}) / T"
        self.gradient_title.setText(f"d loss / d logits = {head}")
        self.chart.set_gradient(loss.gradient[0], names, target)
        shown = self.chart.classes.shape[0]
        self.gradient_note.setVisible(shown < n)
        self.gradient_note.setText(
            f"Showing the {shown} classes with the largest |gradient| of {n:,} (in class order); "
            "every other bar is smaller than these."
        )
        self._show_double_softmax(loss.loss, loss.double_softmax_loss, eps, temp, n)
        self._relayout()

    def _relayout(self) -> None:
        # A wrapped label that gains a line inside the group box does not change the
        # box's minimum size, so Qt keeps the box's cached height-for-width and the
        # new line stays clipped until the next resize: tell the panel's layout.
        self.double_box.updateGeometry()

    def _show_double_softmax(self, right: float, wrong: float, eps: float, temp: float, n: int) -> None:
        ctor = "nn.CrossEntropyLoss()" if eps == 0.0 else f"nn.CrossEntropyLoss(label_smoothing={eps:g})"
        x = "logits" if temp == 1.0 else "logits / T"
        self._set_code(ctor, x)
        self.right_value.setText(f"= {style.format_number(right)}")
        self.wrong_value.setText(f"= {style.format_number(wrong)}")
        # The best the wrong call can do is inputs (1, 0, ..., 0): a textbook bound
        # for the explanation, not a result, so it is spelt out here.
        floor = math.log1p((n - 1) / math.e)
        self.explanation.setText(
            "CrossEntropyLoss applies log_softmax itself; feeding it probabilities squashes the "
            f"inputs into [0, 1], so the loss can't go below ≈ {style.format_number(floor)} "
            f"(log(1 + (C − 1)/e) for C = {n:,}, even for a perfect prediction) and the gradients shrink."
        )

    def _set_code(self, ctor: str, x: str) -> None:
        self.setup_code.setText(f"loss_fn = {ctor}")
        self.right_code.setText(f"loss_fn({x}, target)")
        self.wrong_code.setText(f"loss_fn(torch.softmax({x}, dim=-1), target)")

    def _style_loss_value(self, font: QFont, css: str) -> None:
        """Loss value or hint look; applied only on a change, since a style sheet re-polishes
        the label and relays out the window (on every temperature tick it did)."""
        if self.loss_value.font() != font:
            self.loss_value.setFont(font)
        if self.loss_value.styleSheet() != css:
            self.loss_value.setStyleSheet(css)

    def _show_hint(self, text: str) -> None:
        self._style_loss_value(_font(HINT_PT, italic=True), "color: #666666;")
        self.loss_value.setText(text)
        self.formula.setText("")
        self.temperature_note.setVisible(False)
        self.gradient_title.setText("d loss / d logits")
        self.chart.set_gradient(None, (), None)
        self.gradient_note.setVisible(False)
        for label in (self.right_value, self.wrong_value):
            label.setText("= —")
        self._set_code("nn.CrossEntropyLoss()", "logits")
        self.explanation.setText(
            "CrossEntropyLoss applies log_softmax itself: give it logits, never probabilities."
        )
        self._relayout()

    # -- widget -> session -------------------------------------------------------------

    def _write_target(self, target: int | None) -> None:
        try:
            self.session.target = target
        except InvalidInputError as exc:
            self._show_error(str(exc))
            return
        self._show_error("")

    def _on_target_changed(self, index: int) -> None:
        if index >= 0:
            self._write_target(None if index == 0 else index - 1)

    def _on_target_spin_changed(self, value: int) -> None:
        self._write_target(None if value < 0 else value)

    def _on_target_text_entered(self) -> None:
        edit = self.target_combo.lineEdit()
        if edit is None:
            return
        try:
            target = parse_target(edit.text(), self.session.class_names)
        except InvalidInputError as exc:
            self._show_error(str(exc))  # keep what was typed so it can be corrected
            return
        self._write_target(target)
        if not self.error.isVisible():
            self.set_target(self.session.target)

    def _on_label_smoothing_changed(self, step: int) -> None:
        value = step / round(1 / SMOOTHING_PER_STEP)  # 7 / 100, not 7 * 0.01 = 0.07000000000000001
        try:
            self.session.label_smoothing = value
        except InvalidInputError as exc:
            self._show_error(str(exc))
            return
        self._show_error("")
        self.smoothing_value.setText(f"ε = {value:.2f}")

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
