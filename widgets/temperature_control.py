"""Temperature: a log-scale slider, an exact spin box and a "T = 1" reset, kept in sync.

The slider's integer position ``p`` in ``-200..200`` means ``T = 10 ** (p / 100)``,
so T = 1 sits in the middle and each decade (0.01-0.1-1-10-100) gets the same
width. Values from the slider are rounded to three significant digits so the
spin box can show them exactly (0.0102, 0.501, 2.51). The spin box accepts
0.01..100 typed exactly (C locale: a dot as decimal point); the session itself
accepts any T > 0 (a lecture scene may set 0.001), and the label always shows
the session's true value even when the controls sit at their end stops.

Drags are throttled to one session write per 16 ms (leading and trailing edge),
so a fast drag never queues stale recomputes and the final position always lands.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLocale, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QWidget,
)
from superqt.utils import qthrottled, signals_blocked

from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError

T_MIN = 0.01
T_MAX = 100.0
SLIDER_SCALE = 100
"""Slider positions per decade of T."""
SLIDER_MIN = round(math.log10(T_MIN) * SLIDER_SCALE)
SLIDER_MAX = round(math.log10(T_MAX) * SLIDER_SCALE)
KEY_STEP = 5
"""Arrow keys: 5 positions, a factor 10 ** 0.05 (about 12 %) per press."""
PAGE_STEP = 100
"""Page Up / Page Down: one decade."""
THROTTLE_MS = 16


def round_significant(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits (for readable slider values)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def position_to_temperature(position: int) -> float:
    """Slider position -> T (three significant digits)."""
    return round_significant(10.0 ** (position / SLIDER_SCALE))


def temperature_to_position(temperature: float) -> int:
    """T -> nearest slider position, clamped to the slider's range."""
    if not temperature > 0 or not math.isfinite(temperature):
        return SLIDER_MAX if temperature == math.inf else SLIDER_MIN
    position = round(math.log10(temperature) * SLIDER_SCALE)
    return max(SLIDER_MIN, min(SLIDER_MAX, position))


def format_temperature(temperature: float) -> str:
    """``T = 0.5``, ``T = 2.51``, ``T = 100``: the label text."""
    return f"T = {temperature:.4g}"


class _LogSpinBox(QDoubleSpinBox):
    """A spin box that shows significant digits and steps like the slider (log scale)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Dot decimal point everywhere: the same numbers the logit editor accepts.
        self.setLocale(QLocale.c())
        self.setDecimals(4)  # 0.0102 is representable; the value is rounded to this
        self.setRange(T_MIN, T_MAX)
        # Apply on Enter / focus out, not per keystroke ("2.5" must not set T = 2 first).
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QDoubleSpinBox.CorrectionMode.CorrectToPreviousValue)
        self.setAccelerated(True)

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def stepBy(self, steps: int) -> None:
        position = temperature_to_position(self.value()) + steps * KEY_STEP
        position = max(SLIDER_MIN, min(SLIDER_MAX, position))
        self.setValue(position_to_temperature(position))
        self.selectAll()


class TemperatureControl(QWidget):
    """Slider + spin box + reset button for the session's temperature.

    Parameters
    ----------
    session
        Read for the current T; written (``session.temperature``) when the person
        moves the slider, types a value or presses the reset button.
    parent
        Usual Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("temperatureControl")
        self._session = session

        caption = QLabel("Temperature")
        caption.setToolTip(
            "Softmax divides the logits by T before exponentiating: T < 1 sharpens the "
            "distribution, T > 1 flattens it, T = 1 is the plain softmax."
        )

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("temperatureSlider")
        self.slider.setRange(SLIDER_MIN, SLIDER_MAX)
        self.slider.setSingleStep(KEY_STEP)
        self.slider.setPageStep(PAGE_STEP)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(SLIDER_SCALE)  # one tick per decade: 0.01 0.1 1 10 100
        self.slider.setMinimumWidth(140)
        self.slider.setToolTip(
            "Temperature on a log scale, 0.01 to 100 (ticks at 0.01, 0.1, 1, 10, 100).\n"
            "Arrow keys: ×1.12 per press; Page Up/Down: ×10; Home/End: the ends."
        )

        self.spin = _LogSpinBox()
        self.spin.setObjectName("temperatureSpin")
        self.spin.setToolTip(
            "Exact temperature, 0.01 to 100: type a value and press Enter.\n"
            "Up/Down step on the same log scale as the slider."
        )

        self.reset_button = QToolButton()
        self.reset_button.setObjectName("temperatureReset")
        self.reset_button.setText("T = 1")
        self.reset_button.setToolTip("Reset the temperature to 1 (the plain softmax)")

        self.value_label = QLabel()
        self.value_label.setObjectName("temperatureLabel")
        font = QFont(self.value_label.font())
        font.setBold(True)
        self.value_label.setFont(font)
        # Wide enough for "T = 0.0102" so the layout does not jump while dragging.
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance("T = 0.0000"))
        self.value_label.setToolTip("The temperature the charts are computed at")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(8)
        layout.addWidget(caption)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        layout.addWidget(self.spin)
        layout.addWidget(self.reset_button)

        # One session write per 16 ms while dragging; the trailing call carries
        # the last position, so where the person lets go is what is computed.
        self._write_throttled = qthrottled(
            self._write_slider_temperature, timeout=THROTTLE_MS, leading=True, parent=self
        )
        self.slider.valueChanged.connect(self._on_slider_changed)
        self.slider.sliderReleased.connect(self._write_throttled.flush)
        self.spin.valueChanged.connect(self._on_spin_changed)
        self.reset_button.clicked.connect(self._on_reset_clicked)

        session.events["temperature"].connect(self.set_temperature)
        self.destroyed.connect(lambda: session.events["temperature"].disconnect(self.set_temperature))
        self.set_temperature(session.temperature)

    # -- session -> widget --------------------------------------------------------

    def set_temperature(self, temperature: float) -> None:
        """Show ``temperature`` in the slider, spin box and label without writing back."""
        self.value_label.setText(format_temperature(temperature))
        with signals_blocked(self.spin):
            self.spin.setValue(temperature)
        # While the person drags, the handle follows the mouse, not the (throttled) session.
        if not self.slider.isSliderDown():
            with signals_blocked(self.slider):
                self.slider.setValue(temperature_to_position(temperature))

    # -- widget -> session --------------------------------------------------------

    def _on_slider_changed(self, position: int) -> None:
        temperature = position_to_temperature(position)
        # The readouts follow the handle at once; the recompute is throttled.
        self.value_label.setText(format_temperature(temperature))
        with signals_blocked(self.spin):
            self.spin.setValue(temperature)
        self._write_throttled()

    def _write_slider_temperature(self) -> None:
        # Read the slider now rather than a captured argument: always the latest position.
        self._write(position_to_temperature(self.slider.value()))

    def _on_spin_changed(self, value: float) -> None:
        self._write_throttled.cancel()  # a typed value wins over a pending drag write
        self._write(value)

    def _on_reset_clicked(self) -> None:
        self._write_throttled.cancel()
        self._write(1.0)

    def _write(self, temperature: float) -> None:
        try:
            self._session.temperature = temperature
        except InvalidInputError as exc:  # the ranges above make this unreachable in practice
            self._session.report("error", str(exc), source="temperature")
            self.set_temperature(self._session.temperature)
