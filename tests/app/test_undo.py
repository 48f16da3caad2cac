"""Undo/redo through real events: typing a logit, slider drags (one step each), dtype;
Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y restore what the chart and the editor show."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QComboBox, QSlider, QStyle, QStyleOptionSlider, QTableView

from softmax_lab.app.session import Session
from softmax_lab.app.undo import MERGE_WINDOW_S, UndoRecorder
from softmax_lab.widgets.temperature_control import KEY_STEP, position_to_temperature
from tests.app.session_helpers import (
    WAIT_MS,
    chart_title,
    chart_values,
    choose_by_keyboard,
    editor_logits,
    find,
    softmax_ref,
    type_into_cell,
)

SEED = [2.0, 1.0, 0.1]
CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
RTOL = 1e-6


def shows(window, logits, temperature, dtype="float32"):
    """The editor, the chart and the temperature readout show this state."""
    assert editor_logits(window) == list(logits)
    np.testing.assert_allclose(chart_values(window), softmax_ref(logits, temperature), rtol=RTOL)
    assert f"T = {temperature:g}" in chart_title(window)
    assert dtype in chart_title(window)
    assert find(window, QComboBox, "dtypeCombo").currentText() == dtype


def undo_key(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)


def test_type_drag_dtype_then_undo_and_redo_each(window, qtbot):
    stack = window.sessions.undo.stack
    assert stack.count() == 0
    assert not window.sessions.undo_action.isEnabled()

    # 1. Type a logit.
    type_into_cell(qtbot, find(window, QTableView, "logitTable"), 0, 1, "3.5")
    edited = [3.5, 1.0, 0.1]
    shows(window, edited, 1.0)
    assert stack.count() == 1
    assert window.sessions.undo_action.text() == "&Undo edit logits"

    # 2. Drag the temperature with the keyboard: ten presses, one undo step.
    slider = find(window, QSlider, "temperatureSlider")
    slider.setFocus()
    writes: list[float] = []
    window.session.events["temperature"].connect(writes.append)
    for _ in range(10):
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    hot = position_to_temperature(10 * KEY_STEP)
    qtbot.waitUntil(lambda: window.session.temperature == hot, timeout=WAIT_MS)
    shows(window, edited, hot)
    assert len(writes) >= 2, "the key presses should write several temperatures"
    assert stack.count() == 2
    assert window.sessions.undo_action.text() == f"&Undo temperature {hot:.4g}"

    # 3. Switch the dtype (one arrow key: float32 -> float64).
    choose_by_keyboard(qtbot, find(window, QComboBox, "dtypeCombo"), "float64")
    qtbot.waitUntil(lambda: "float64" in chart_title(window), timeout=WAIT_MS)
    assert stack.count() == 3
    assert window.sessions.undo_action.text() == "&Undo dtype float64"

    # Ctrl+Z three times: each previous state, as displayed.
    undo_key(qtbot, window)
    shows(window, edited, hot, "float32")
    undo_key(qtbot, window)
    shows(window, edited, 1.0)
    assert find(window, QSlider, "temperatureSlider").value() == 0
    undo_key(qtbot, window)
    shows(window, SEED, 1.0)
    assert not window.sessions.undo_action.isEnabled()

    # Redo with both shortcuts.
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL_SHIFT)
    shows(window, edited, 1.0)
    qtbot.keyClick(window, Qt.Key.Key_Y, CTRL)
    shows(window, edited, hot)
    qtbot.keyClick(window, Qt.Key.Key_Y, CTRL)
    shows(window, edited, hot, "float64")
    assert not window.sessions.redo_action.isEnabled()


def handle_centre(slider: QSlider) -> QPoint:
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    rect = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    return rect.center()


def mouse_drag(qtbot, slider: QSlider, dx_steps: list[int]) -> None:
    """Press the handle, move it through several positions, release."""
    start = handle_centre(slider)
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=start)
    for dx in dx_steps:
        qtbot.mouseMove(slider, start + QPoint(dx, 0))
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=start + QPoint(dx_steps[-1], 0))


def test_each_mouse_drag_is_one_step(window, qtbot):
    session = window.session
    stack = window.sessions.undo.stack
    slider = find(window, QSlider, "temperatureSlider")
    writes: list[float] = []
    session.events["temperature"].connect(writes.append)

    mouse_drag(qtbot, slider, [5, 10, 20, 30, 40])
    qtbot.waitUntil(
        lambda: not slider.isSliderDown() and session.temperature > 1.0, timeout=WAIT_MS
    )
    after_first = session.temperature
    assert len(writes) >= 2, "the drag should write several temperatures"
    assert stack.count() == 1

    # A second drag right after the first: released in between, so a new step.
    mouse_drag(qtbot, slider, [-10, -20, -30, -60])
    qtbot.waitUntil(lambda: session.temperature < after_first, timeout=WAIT_MS)
    assert stack.count() == 2

    window.sessions.undo_action.trigger()
    assert session.temperature == after_first
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED, after_first), rtol=RTOL)
    window.sessions.undo_action.trigger()
    assert session.temperature == 1.0
    assert slider.value() == 0


def test_label_smoothing_drag_is_one_step(window, qtbot):
    from softmax_lab.app.main_window import TAB_LOSS

    window.tabs.setCurrentIndex(TAB_LOSS)
    slider = find(window, QSlider, "labelSmoothingSlider")
    slider.setFocus()
    for _ in range(6):
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert window.session.label_smoothing > 0
    assert window.sessions.undo.stack.count() == 1
    undo_key(qtbot, window)
    assert window.session.label_smoothing == 0.0
    assert slider.value() == 0


# -- the recorder on its own (a plain session, a fake clock) ----------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def recorder(qapp):
    clock = FakeClock()
    rec = UndoRecorder(Session(), clock=clock)
    rec.fake_clock = clock
    yield rec
    rec.deleteLater()


def test_pauses_longer_than_the_merge_window_start_a_new_step(recorder):
    s, clock = recorder.session, recorder.fake_clock
    s.temperature = 2.0
    clock.now += MERGE_WINDOW_S / 2
    s.temperature = 3.0
    assert recorder.stack.count() == 1
    clock.now += MERGE_WINDOW_S * 2
    s.temperature = 4.0
    assert recorder.stack.count() == 2
    recorder.stack.undo()
    assert s.temperature == 3.0
    recorder.stack.undo()
    assert s.temperature == 1.0


def test_a_drag_back_to_the_start_leaves_no_step(recorder):
    s = recorder.session
    s.temperature = 2.0
    s.temperature = 1.0
    assert recorder.stack.count() == 0


def test_seal_ends_a_drag(recorder):
    s = recorder.session
    s.temperature = 2.0
    recorder.seal()
    s.temperature = 3.0
    assert recorder.stack.count() == 2


def test_other_fields_never_merge(recorder):
    s = recorder.session
    s.dtype = "float16"
    s.dtype = "float64"
    assert recorder.stack.count() == 2


def test_a_vector_replacement_is_one_step_with_its_target(recorder):
    s = recorder.session
    s.target = 2
    s.set_vector([1.0, 2.0], ["a", "b"])  # three classes -> two: the target is clamped
    assert s.target == 1
    assert recorder.stack.count() == 2
    assert recorder.stack.undoText() == "replace the vector"
    recorder.stack.undo()
    assert s.logits.tolist() == SEED and s.target == 2
    assert s.class_names == ("class 0", "class 1", "class 2")


def test_nan_logits_undo_exactly(recorder):
    s = recorder.session
    s.set_vector([np.nan, 1.0, -np.inf])
    s.set_vector([0.0, 1.0, 2.0])
    recorder.stack.undo()
    np.testing.assert_array_equal(s.logits, [np.nan, 1.0, -np.inf])


def test_suspended_changes_are_not_recorded(recorder):
    with recorder.suspended():
        recorder.session.temperature = 5.0
    assert recorder.stack.count() == 0
    recorder.session.temperature = 6.0
    recorder.stack.undo()
    assert recorder.session.temperature == 5.0
