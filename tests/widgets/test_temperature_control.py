"""TemperatureControl driven by real key presses, clicks and typing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from softmax_lab.app.session import Session
from softmax_lab.widgets.temperature_control import TemperatureControl


def _colours(widget) -> int:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.width() * image.height())
    return len(np.unique(pixels))


def _log_position(t: float) -> int:
    # Independent of the widget: the documented mapping T = 10 ** (position / 100).
    return round(100 * math.log10(t))


@pytest.fixture
def control(qtbot, session: Session) -> TemperatureControl:
    w = TemperatureControl(session)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


def _writes(session: Session) -> list[float]:
    seen: list[float] = []
    session.events["temperature"].connect(seen.append)
    return seen


def _type_into_spin(qtbot, control: TemperatureControl, text: str) -> None:
    edit = control.spin.lineEdit()
    control.spin.setFocus()
    qtbot.waitUntil(control.spin.hasFocus)
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_contract(control: TemperatureControl) -> None:
    hint = control.minimumSizeHint()
    assert 100 < hint.width() < 1200 and 10 < hint.height() < 200
    assert _colours(control) > 1
    assert control.slider.objectName() == "temperatureSlider"
    assert control.spin.objectName() == "temperatureSpin"
    assert control.reset_button.objectName() == "temperatureReset"
    assert control.reset_button.toolTip() and control.slider.toolTip() and control.spin.toolTip()


def test_renders_the_session_value_at_construction(qtbot) -> None:
    session = Session()
    session.temperature = 0.5
    w = TemperatureControl(session)
    qtbot.addWidget(w)
    assert w.spin.value() == 0.5
    assert w.slider.value() == _log_position(0.5) == -30
    assert w.value_label.text() == "T = 0.5"


def test_slider_range_is_log_with_one_in_the_middle(control: TemperatureControl) -> None:
    s = control.slider
    assert s.value() == 0
    assert s.minimum() == _log_position(0.01) and s.maximum() == _log_position(100)
    assert s.value() == (s.minimum() + s.maximum()) // 2


def test_arrow_keys_move_the_session_temperature_in_log_steps(qtbot, control, session) -> None:
    slider = control.slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: session.temperature != 1.0)
    t = session.temperature
    assert t == pytest.approx(10 ** (slider.value() / 100), rel=5e-3)
    assert 1.05 < t < 1.2  # a small step up
    assert control.spin.value() == t
    assert control.value_label.text() == f"T = {t:g}"
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: session.temperature == 1.0)
    assert control.spin.value() == 1.0


def test_fast_key_presses_land_on_the_final_value(qtbot, control, session) -> None:
    slider = control.slider
    slider.setFocus()
    for _ in range(10):
        qtbot.keyClick(slider, Qt.Key.Key_Left)
    final = slider.value()
    assert final < 0
    expected = 10 ** (final / 100)
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(expected, rel=5e-3))
    assert control.spin.value() == session.temperature
    assert _log_position(session.temperature) == slider.value()


def test_page_and_end_keys(qtbot, control, session) -> None:
    slider = control.slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(10.0))
    qtbot.keyClick(slider, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(100.0))
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(0.01))
    assert control.spin.text() == "0.01"


def test_a_drag_writes_the_session_once_per_tick_and_the_last_position_lands(
    qtbot, control, session
) -> None:
    writes = _writes(session)
    slider = control.slider
    slider.setSliderDown(True)  # as while the mouse holds the handle
    for position in range(1, 101):
        slider.setSliderPosition(position)
    # No event loop ran: only the leading edge reached the session, not 100 recomputes.
    assert len(writes) == 1
    # The readouts follow the handle at once.
    assert control.spin.value() == pytest.approx(10.0)
    assert control.value_label.text() == "T = 10"
    slider.setSliderDown(False)  # release: the trailing value lands
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(10.0))
    assert len(writes) == 2
    assert slider.value() == 100


def test_mouse_click_on_the_groove_moves_the_session(qtbot, control, session) -> None:
    slider = control.slider
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    groove = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, slider
    )
    right_end = QPoint(groove.right() - 2, groove.center().y())
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=right_end)
    qtbot.waitUntil(lambda: session.temperature > 1.0)
    assert slider.value() > 0
    assert session.temperature == pytest.approx(10 ** (slider.value() / 100), rel=5e-3)
    assert control.spin.value() == session.temperature


def test_typing_in_the_spin_sets_the_session_and_moves_the_slider(qtbot, control, session) -> None:
    _type_into_spin(qtbot, control, "2.5")
    qtbot.waitUntil(lambda: session.temperature == 2.5)
    assert control.slider.value() == _log_position(2.5) == 40
    assert control.value_label.text() == "T = 2.5"
    _type_into_spin(qtbot, control, "0.05")
    qtbot.waitUntil(lambda: session.temperature == 0.05)
    assert control.slider.value() == _log_position(0.05)


def test_typing_does_not_apply_half_typed_values(qtbot, control, session) -> None:
    writes = _writes(session)
    _type_into_spin(qtbot, control, "25")
    qtbot.waitUntil(lambda: session.temperature == 25.0)
    assert writes == [25.0]  # never 2.0 on the way


@pytest.mark.parametrize("text", ["abc", "0", "-", "_", "0.001"])
def test_invalid_text_in_the_spin_is_not_accepted(qtbot, control, session, text) -> None:
    _type_into_spin(qtbot, control, "3")
    qtbot.waitUntil(lambda: session.temperature == 3.0)
    writes = _writes(session)
    _type_into_spin(qtbot, control, text)
    qtbot.keyClick(control.spin.lineEdit(), Qt.Key.Key_Tab)  # leave the field too
    assert session.temperature == 3.0
    assert writes == []
    assert control.spin.value() == 3.0
    assert control.spin.text() == "3"
    assert control.slider.value() == _log_position(3.0)


def test_characters_that_cannot_form_a_number_are_refused_as_typed(qtbot, control, session) -> None:
    edit = control.spin.lineEdit()
    control.spin.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "1_5x")
    assert edit.text() == "15"  # '_' and 'x' never reached the field
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.temperature == 15.0)


def test_spin_arrow_keys_step_on_the_log_scale(qtbot, control, session) -> None:
    control.spin.setFocus()
    qtbot.keyClick(control.spin, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: session.temperature > 1.0)
    assert session.temperature == pytest.approx(10 ** 0.05, rel=5e-3)
    assert control.slider.value() == _log_position(session.temperature)


def test_reset_button(qtbot, control, session) -> None:
    session.temperature = 7.0
    qtbot.mouseClick(control.reset_button, Qt.MouseButton.LeftButton)
    assert session.temperature == 1.0
    assert control.slider.value() == 0 and control.spin.value() == 1.0
    assert control.value_label.text() == "T = 1"


def test_session_changes_show_without_writing_back(control, session) -> None:
    writes = _writes(session)
    session.temperature = 0.25
    assert writes == [0.25]
    assert control.slider.value() == _log_position(0.25)
    assert control.spin.value() == 0.25
    assert control.value_label.text() == "T = 0.25"


def test_out_of_range_session_value_is_shown_not_clamped(control, session) -> None:
    session.temperature = 0.001  # a lecture scene may go below the slider's range
    assert session.temperature == 0.001
    assert control.value_label.text() == "T = 0.001"
    assert control.slider.value() == control.slider.minimum()
    session.temperature = 1e4
    assert session.temperature == 1e4
    assert control.slider.value() == control.slider.maximum()


def test_deleted_widget_stops_listening(qtbot) -> None:
    session = Session()
    before = len(session.events["temperature"])
    w = TemperatureControl(session)
    assert len(session.events["temperature"]) == before + 1
    w.deleteLater()
    qtbot.waitUntil(lambda: len(session.events["temperature"]) == before)
    session.temperature = 2.0  # nothing left to call into a deleted widget
