"""The cross-entropy panel, driven with real key presses through a real session and controller.

References are torch's own: F.cross_entropy (with label_smoothing) on the same
logits, its autograd gradient, and F.cross_entropy on softmax outputs for the
double-softmax pitfall.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import Qt

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import SEED_LOGITS
from softmax_lab.widgets.loss_panel import TOP_K, LossPanel


@pytest.fixture
def panel(qtbot, session):
    Controller(session).start()
    widget = LossPanel(session)
    qtbot.addWidget(widget)
    widget.resize(900, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def shown_number(text: str) -> float:
    """The number in "0.4076 nats" or "= 0.8021"."""
    return float(text.replace("=", " ").split()[0])


def reference(logits, target: int, smoothing: float = 0.0, temperature: float = 1.0):
    """(loss, d loss / d logits) from torch in float64."""
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(
        (x / temperature)[None], torch.tensor([target]), label_smoothing=smoothing
    )
    loss.backward()
    return float(loss.detach()), x.grad.numpy()


def displayed_gradient(panel: LossPanel) -> np.ndarray:
    chart = panel.chart
    pos = np.asarray(chart.pos_bars.opts["height"], dtype=float)
    neg = np.asarray(chart.neg_bars.opts["height"], dtype=float)
    assert (pos >= 0).all() and (neg <= 0).all()
    assert np.array_equal(chart.pos_bars.opts["x"], chart.neg_bars.opts["x"])
    return pos + neg


def test_contract(panel):
    hint = panel.minimumSizeHint()
    assert 200 <= hint.width() <= 1200 and 200 <= hint.height() <= 1000
    image = panel.grab().toImage()
    assert not image.isNull()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 1
    for name in (
        "targetCombo",
        "targetSpin",
        "labelSmoothingSlider",
        "lossValue",
        "gradientChart",
        "doubleSoftmaxBox",
    ):
        assert panel.findChild(object, name) is not None, name


def test_choose_target_with_keyboard_shows_torch_loss(panel, session, qtbot):
    combo = panel.target_combo
    assert combo.currentText() == "0: class 0"  # the session's initial target
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert session.target == 1
    assert combo.currentText() == "1: class 1"
    assert panel.target_spin.value() == 1
    loss, _ = reference(SEED_LOGITS, 1)
    assert panel.loss_value.text().endswith("nats")
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)
    assert "−log p[target]" in panel.formula.text()
    assert "1: class 1" in panel.formula.text()
    assert not panel.temperature_note.isVisible()


def test_label_smoothing_slider_keys(panel, session, qtbot):
    slider = panel.slider
    for _ in range(10):
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert session.label_smoothing == pytest.approx(0.10)
    assert panel.smoothing_value.text() == "ε = 0.10"
    loss, _ = reference(SEED_LOGITS, 0, smoothing=0.10)
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)
    assert "ε/C" in panel.formula.text()
    qtbot.keyClick(slider, Qt.Key.Key_End)
    assert session.label_smoothing == pytest.approx(0.5)
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    assert session.label_smoothing == 0.0


def test_gradient_bars_match_autograd_with_temperature_and_smoothing(panel, session, qtbot):
    logits = [3.0, -1.0, 0.5, 2.0, -2.5]
    session.set_vector(logits)
    session.temperature = 1.5  # the temperature control is not this panel's
    qtbot.keyClick(panel.target_combo, Qt.Key.Key_Down)
    qtbot.keyClick(panel.target_combo, Qt.Key.Key_Down)  # class 0 -> 1 -> 2
    for _ in range(5):
        qtbot.keyClick(panel.slider, Qt.Key.Key_Right)
    assert (session.target, session.label_smoothing) == (2, pytest.approx(0.05))

    loss, grad = reference(logits, 2, smoothing=0.05, temperature=1.5)
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)
    np.testing.assert_allclose(displayed_gradient(panel), grad, atol=1e-6)
    assert list(panel.chart.classes) == list(range(5))
    assert panel.chart.zero_line.value() == 0
    assert panel.temperature_note.isVisible() and "T = 1.5" in panel.temperature_note.text()
    assert "/ T" in panel.right_code.text() and "label_smoothing=0.05" in panel.setup_code.text()


def test_double_softmax_box_shows_right_and_wrong_values(panel, session):
    x = torch.tensor(SEED_LOGITS, dtype=torch.float64)[None]
    t = torch.tensor([0])
    right = float(F.cross_entropy(x, t))
    wrong = float(F.cross_entropy(torch.softmax(x, dim=-1), t))
    assert shown_number(panel.right_value.text()) == pytest.approx(right, rel=1e-3)
    assert shown_number(panel.wrong_value.text()) == pytest.approx(wrong, rel=1e-3)
    assert "torch.softmax(logits, dim=-1)" in panel.wrong_code.text()
    assert panel.right_code.text() == "loss_fn(logits, target)"
    # The floor: even a perfect prediction fed as probabilities ([1, 0, 0]) keeps this loss.
    perfect = torch.tensor([[60.0, 0.0, 0.0]], dtype=torch.float64)
    floor = float(F.cross_entropy(torch.softmax(perfect, dim=-1), t))
    text = panel.explanation.text()
    assert "applies log_softmax itself" in text
    assert shown_number(text.split("≈")[1]) == pytest.approx(floor, rel=1e-3)


def test_no_target_shows_hint(panel, session, qtbot):
    qtbot.keyClick(panel.target_combo, Qt.Key.Key_Home)  # "none" is the first item
    assert session.target is None
    assert panel.loss_value.text() == "pick a target class to see the loss"
    assert len(panel.chart.pos_bars.opts["height"]) == 0
    assert panel.right_value.text() == "= —"
    assert panel.target_spin.text() == "none"
    qtbot.keyClick(panel.target_spin, Qt.Key.Key_Up)  # none -> class 0
    assert session.target == 0
    loss, _ = reference(SEED_LOGITS, 0)
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)


def test_follows_session_names_and_target(panel, session):
    session.set_vector([1.0, 2.0, 3.0, 4.0], ["cat", "dog", "fox", "owl"])
    combo = panel.target_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "none",
        "0: cat",
        "1: dog",
        "2: fox",
        "3: owl",
    ]
    session.target = 3
    assert combo.currentText() == "3: owl"
    assert panel.target_spin.value() == 3
    loss, grad = reference([1.0, 2.0, 3.0, 4.0], 3)
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)
    np.testing.assert_allclose(displayed_gradient(panel), grad, atol=1e-6)
    ticks = panel.chart.getPlotItem().getAxis("bottom")._tickLevels
    assert [label for _, label in ticks[0]] == ["cat", "dog", "fox", "owl"]


# The completer's popup asks the offscreen platform for things it cannot do.
@pytest.mark.qt_log_ignore(
    "This plugin does not support raise", "This plugin does not support grabbing the keyboard"
)
def test_large_vocabulary_spin_box_completer_and_top_k(panel, session, qtbot):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=50_257) * 2
    session.set_vector(logits)
    combo = panel.target_combo
    assert combo.isEditable() and combo.count() == 50_258

    spin = panel.target_spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "40000")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert session.target == 40_000
    assert combo.currentText() == "40000: class 40000"
    loss, grad = reference(logits, 40_000)
    assert shown_number(panel.loss_value.text()) == pytest.approx(loss, rel=1e-3)

    classes = panel.chart.classes
    assert len(classes) == TOP_K
    top = np.argsort(-np.abs(grad))[:TOP_K]
    assert set(classes.tolist()) == set(top.tolist())
    np.testing.assert_allclose(displayed_gradient(panel), grad[classes], atol=1e-6)
    assert panel.gradient_note.isVisible() and "50,257" in panel.gradient_note.text()

    # Typing a bare index into the editable combo picks that class.
    edit = combo.lineEdit()
    edit.selectAll()
    qtbot.keyClicks(edit, "123")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    combo.completer().popup().hide()
    assert session.target == 123
    assert combo.currentText() == "123: class 123"

    # Something that is no class: an inline error, the typed text kept, the target unchanged.
    edit.selectAll()
    qtbot.keyClicks(edit, "zebra")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    combo.completer().popup().hide()
    assert session.target == 123
    assert panel.error.isVisible() and "zebra" in panel.error.text()
    assert edit.text() == "zebra"
