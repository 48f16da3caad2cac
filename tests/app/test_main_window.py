"""End-to-end tests of the Softmax Lab window, driven as a person drives it.

Real key presses, mouse clicks and drop events on the real window (Session +
Controller + MainWindow, see conftest.py); controls are found by their
objectNames; assertions read what is displayed (bar heights from the chart's
BarGraphItem, table cells, label texts) and compare the numbers with
independent references computed here in float64 with torch.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QSlider,
    QTableView,
    QToolButton,
    QWidget,
)

from softmax_lab.widgets import dialogs
from tests.app.window_helpers import (
    WAIT_MS,
    chart_values,
    choose_by_keyboard,
    choose_preset,
    click_cell,
    click_tab,
    drawn_heights,
    drop_file,
    editor_logits,
    editor_names,
    find,
    first_number,
    header_column,
    message_text,
    popup_menu_on_offscreen,
    softmax_ref,
    table_texts,
    type_into_cell,
    wait_for_batch,
)

SEED = [2.0, 1.0, 0.1]
FLOAT32_RTOL = 1e-6
VOCAB_RTOL = 5e-5


# -- independent references (float64, torch) ---------------------------------------------


def entropy_ref(logits: Any, temperature: float = 1.0) -> float:
    p = softmax_ref(logits, temperature)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def cross_entropy_ref(logits: Any, target: int, temperature: float = 1.0) -> float:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))[None, :] / temperature
    return float(F.cross_entropy(x, torch.tensor([target])))


def shown_loss(qtbot, window) -> float:
    """The loss as a person reads it: open the Cross-entropy tab, read, go back."""
    back = window.tabs.tabText(window.tabs.currentIndex())
    click_tab(qtbot, window, "Cross-entropy")
    loss = first_number(find(window, QLabel, "lossValue").text())
    click_tab(qtbot, window, back)
    return loss


# ---------------------------------------------------------------------------------------------
# 1. The seed example on start


def test_start_shows_the_seed_example(window, qtbot):
    session = window.session
    expected = softmax_ref(SEED)
    np.testing.assert_allclose(expected, [0.659, 0.242, 0.099], atol=1e-3)  # the textbook numbers

    # Chart: one bar per class, heights = softmax (computed in float32 by the app).
    np.testing.assert_allclose(chart_values(window), expected, rtol=FLOAT32_RTOL)
    assert not window.chart.ghost.isVisible()  # T = 1: no ghost

    # Steps table: a row per class plus the Σ row; p shows 0.659 etc.
    steps = find(window, QTableView, "stepsTableView")
    p_col = header_column(steps, "p =")
    p_texts = table_texts(steps, p_col)
    assert len(p_texts) == 4
    assert p_texts[0] == "0.659"
    np.testing.assert_allclose([float(t) for t in p_texts[:3]], expected, rtol=5e-4)
    assert float(p_texts[3]) == pytest.approx(1.0, abs=1e-4)  # Σ p
    assert table_texts(steps, 0)[:3] == ["class 0", "class 1", "class 2"]

    # Stats readout: entropy = −Σ p log p, in nats then bits.
    entropy = find(window, QLabel, "entropyLabel").text()
    nats, bits = (float(v) for v in re.findall(r"[-+]?\d+\.\d+", entropy)[:2])
    assert nats == pytest.approx(entropy_ref(SEED), rel=5e-4)
    assert bits == pytest.approx(entropy_ref(SEED) / math.log(2), rel=5e-4)
    assert find(window, QLabel, "argmaxLabel").text() == "class 0"

    # Editor: the seed logits; target 0 gives the loss −log p[0].
    assert editor_logits(window) == SEED
    loss = shown_loss(qtbot, window)
    assert loss == pytest.approx(cross_entropy_ref(SEED, 0), rel=5e-4)
    assert not find(window, QWidget, "messageBar").isVisible()
    assert session.busy == ""


# ---------------------------------------------------------------------------------------------
# 2. Editing a logit


def test_typing_a_logit_updates_chart_steps_and_loss(window, qtbot):
    table = find(window, QTableView, "logitTable")
    type_into_cell(qtbot, table, 1, 1, "3.5")
    new = [2.0, 3.5, 0.1]

    assert editor_logits(window) == new
    np.testing.assert_allclose(window.session.logits, new)
    expected = softmax_ref(new)
    np.testing.assert_allclose(chart_values(window), expected, rtol=FLOAT32_RTOL)
    steps = find(window, QTableView, "stepsTableView")
    p_shown = [float(t) for t in table_texts(steps, header_column(steps, "p ="))[:3]]
    np.testing.assert_allclose(p_shown, expected, rtol=5e-4)
    x_shown = [float(t) for t in table_texts(steps, 1)[:3]]
    assert x_shown == new
    loss = shown_loss(qtbot, window)
    assert loss == pytest.approx(cross_entropy_ref(new, 0), rel=5e-4)
    assert find(window, QLabel, "argmaxLabel").text() == "class 1"
    assert find(window, QLabel, "logitEditorError").isHidden()


def test_a_refused_logit_shows_why_and_changes_nothing(window, qtbot):
    table = find(window, QTableView, "logitTable")
    error = find(window, QLabel, "logitEditorError")
    before = chart_values(window).copy()

    editor = type_into_cell(qtbot, table, 1, 1, "1_000", accepted=False)
    QApplication.processEvents()  # Qt commits an accepted Enter through a queued call
    # Enter was refused: the editor stays open with the typed text, the reason shows in red.
    assert error.isVisible()
    assert "1_000" in error.text() and "not a number" in error.text()
    assert table.state() == QAbstractItemView.State.EditingState
    assert editor.text() == "1_000"
    assert editor_logits(window) == SEED
    np.testing.assert_allclose(window.session.logits, SEED)
    np.testing.assert_array_equal(chart_values(window), before)
    assert not find(window, QWidget, "messageBar").isVisible()

    # Escape gives up; the window keeps working: the next edit goes through.
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert table.state() != QAbstractItemView.State.EditingState
    assert error.isHidden()
    type_into_cell(qtbot, table, 2, 1, "-inf")
    assert editor_logits(window) == [2.0, 1.0, -math.inf]
    np.testing.assert_allclose(
        chart_values(window), softmax_ref([2.0, 1.0, -np.inf]), rtol=FLOAT32_RTOL
    )
    assert chart_values(window)[2] == 0.0  # exp(-inf) is exactly 0


# ---------------------------------------------------------------------------------------------
# 3. Temperature


def test_temperature_slider_keys_and_spin_box(window, qtbot):
    session = window.session
    slider = find(window, QSlider, "temperatureSlider")
    spin = find(window, QDoubleSpinBox, "temperatureSpin")
    label = find(window, QLabel, "temperatureLabel")
    assert spin.value() == 1.0

    slider.setFocus()
    for _ in range(3):
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    # Three steps of 10 ** 0.05 each: T = 10 ** 0.15 = 1.41 (three significant digits).
    expected_t = 1.41
    assert spin.value() == pytest.approx(expected_t)
    assert label.text() == "T = 1.41"
    qtbot.waitUntil(lambda: session.temperature == pytest.approx(expected_t), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: session.analysis.result.temperature == session.temperature)
    t = spin.value()
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED, t), rtol=FLOAT32_RTOL)
    # The ghost shows the T = 1 distribution behind the bars.
    assert window.chart.ghost.isVisible()
    np.testing.assert_allclose(
        drawn_heights(window.chart.ghost), softmax_ref(SEED), rtol=FLOAT32_RTOL
    )
    loss = shown_loss(qtbot, window)
    assert loss == pytest.approx(cross_entropy_ref(SEED, 0, t), rel=5e-4)

    # Type an exact value into the spin box.
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, "0.5")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.temperature == 0.5, timeout=WAIT_MS)
    assert label.text() == "T = 0.5"
    assert slider.value() == round(math.log10(0.5) * 100)
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED, 0.5), rtol=FLOAT32_RTOL)
    np.testing.assert_allclose(
        drawn_heights(window.chart.ghost), softmax_ref(SEED), rtol=FLOAT32_RTOL
    )

    # Reset: back to T = 1, no ghost.
    qtbot.mouseClick(find(window, QToolButton, "temperatureReset"), Qt.MouseButton.LeftButton)
    assert session.temperature == 1.0
    assert spin.value() == 1.0 and slider.value() == 0
    assert not window.chart.ghost.isVisible()
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED), rtol=FLOAT32_RTOL)


# ---------------------------------------------------------------------------------------------
# 4. dtype and the overflow lab


@popup_menu_on_offscreen
def test_float16_and_large_logits_show_the_overflow(window, qtbot):
    session = window.session
    dtype_combo = find(window, QComboBox, "dtypeCombo")
    assert dtype_combo.currentText() == "float32"

    choose_by_keyboard(qtbot, dtype_combo, "float16")
    assert session.dtype == "float16"
    assert editor_logits(window) == SEED  # the dtype changes how, not what
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED), rtol=2e-3)

    choose_preset(qtbot, window, "large")
    large = [1000.0, 999.0, 998.0]
    assert editor_logits(window) == large
    assert dtype_combo.currentText() == "float16"

    click_tab(qtbot, window, "Overflow lab")
    assert window.tabs.currentWidget().isAncestorOf(find(window, QWidget, "overflowPanel"))
    verdict = find(window, QLabel, "overflowVerdict").text().lower()
    assert "float16" in verdict and "overflow" in verdict

    table = find(window, QTableView, "overflowTable")
    model = table.model()
    naive_exp = header_column(table, "naive exp")
    stable_p = header_column(table, "stable p")
    bad = QColor("#FDECEA")  # the light red of failed cells (style.BAD_BACKGROUND)
    for row in range(3):
        colour = model.index(row, naive_exp).data(Qt.ItemDataRole.BackgroundRole)
        assert colour is not None and QColor(colour) == bad, f"naive exp of row {row} is not red"
        assert model.index(row, naive_exp).data() == "inf"
        # The stable path is fine, and equals softmax([2, 1, 0]).
        assert model.index(row, stable_p).data(Qt.ItemDataRole.BackgroundRole) is None
    stable = [float(model.index(r, stable_p).data()) for r in range(3)]
    np.testing.assert_allclose(stable, softmax_ref(large), rtol=2e-3)
    np.testing.assert_allclose(softmax_ref(large), softmax_ref([2.0, 1.0, 0.0]), rtol=1e-12)
    np.testing.assert_allclose(chart_values(window), softmax_ref(large), rtol=2e-3)

    # Back to float32: logits untouched, and float32 overflows exp(1000) too.
    choose_by_keyboard(qtbot, dtype_combo, "float32")
    assert session.dtype == "float32"
    assert editor_logits(window) == large
    np.testing.assert_allclose(session.logits, large)
    assert "float32" in find(window, QLabel, "overflowVerdict").text()
    np.testing.assert_allclose(chart_values(window), softmax_ref(large), rtol=FLOAT32_RTOL)


def type_temperature(qtbot, window, text: str) -> None:
    spin = find(window, QDoubleSpinBox, "temperatureSpin")
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def test_tables_on_hidden_tabs_are_current_when_shown(window, qtbot):
    """The steps table, the overflow lab and the loss panel skip updates while their tab is
    hidden; what a person sees on switching to them must still be the current state."""
    steps = find(window, QTableView, "stepsTableView")
    table = find(window, QTableView, "overflowTable")
    click_tab(qtbot, window, "Cross-entropy")
    type_into_cell(qtbot, find(window, QTableView, "logitTable"), 0, 1, "4.5")
    type_temperature(qtbot, window, "0.5")
    qtbot.waitUntil(lambda: window.session.temperature == 0.5, timeout=WAIT_MS)
    expected = softmax_ref([4.5, 1.0, 0.1], 0.5)

    click_tab(qtbot, window, "Overflow lab")
    stable_p = header_column(table, "stable p")
    shown = [float(table.model().index(r, stable_p).data()) for r in range(3)]
    np.testing.assert_allclose(shown, expected, rtol=1e-3)
    assert "x/T" in " ".join(
        str(table.model().headerData(c, Qt.Orientation.Horizontal))
        for c in range(table.model().columnCount())
    )

    type_temperature(qtbot, window, "2.0")  # while the steps table is hidden
    qtbot.waitUntil(lambda: window.session.temperature == 2.0, timeout=WAIT_MS)
    click_tab(qtbot, window, "Step by step")
    p_column = header_column(steps, "p = exp")
    shown = [float(steps.model().index(r, p_column).data()) for r in range(3)]
    np.testing.assert_allclose(shown, softmax_ref([4.5, 1.0, 0.1], 2.0), rtol=1e-3)

    type_temperature(qtbot, window, "3")  # while the loss panel is hidden
    qtbot.waitUntil(lambda: window.session.temperature == 3.0, timeout=WAIT_MS)
    click_tab(qtbot, window, "Cross-entropy")
    target = window.session.target
    assert target is not None
    loss = shown_loss(qtbot, window)
    assert loss == pytest.approx(cross_entropy_ref([4.5, 1.0, 0.1], target, 3.0), rel=1e-3)


# ---------------------------------------------------------------------------------------------
# 5. Device


def test_cuda_entry_is_disabled_without_cuda(window, qtbot):
    combo = find(window, QComboBox, "deviceCombo")
    cuda = combo.findData("cuda")
    assert cuda >= 0
    item = combo.model().item(cuda)
    assert not item.flags() & Qt.ItemFlag.ItemIsEnabled
    tip = combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole)
    assert "not available" in tip

    # The keyboard skips the disabled entry: Down from "cpu" stays on "cpu".
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == "cpu"
    assert window.session.device == "cpu"
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == "cpu"
    assert window.session.device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_reports_and_keeps_the_last_result(window, qtbot):
    session = window.session
    before = chart_values(window).copy()
    session.device = "cuda"
    qtbot.waitUntil(lambda: find(window, QWidget, "messageBar").isVisible(), timeout=WAIT_MS)
    text = message_text(window)
    assert text.startswith("Error:") and "cuda" in text.lower()
    np.testing.assert_array_equal(chart_values(window), before)
    assert find(window, QComboBox, "deviceCombo").currentData() == "cuda"

    # Back to the CPU: the next result arrives and the error goes away.
    choose_by_keyboard(qtbot, find(window, QComboBox, "deviceCombo"), "cpu")
    assert session.device == "cpu"
    assert not find(window, QWidget, "messageBar").isVisible()
    np.testing.assert_allclose(chart_values(window), softmax_ref(SEED), rtol=FLOAT32_RTOL)


# ---------------------------------------------------------------------------------------------
# 6. Batches


def batch_tab_is_current(window: QWidget) -> bool:
    return window.tabs.currentWidget().isAncestorOf(find(window, QWidget, "batchView"))


def heatmap_image(window: QWidget) -> np.ndarray:
    image = window.batch.image.image
    assert image is not None, "the heatmap shows nothing"
    return np.asarray(image, dtype=np.float64)


def test_drop_a_npy_then_dim0_then_load_a_row(window, qtbot, tmp_path):
    session = window.session
    rng = np.random.default_rng(7)
    data = rng.normal(0.0, 2.0, (4, 5)).astype(np.float32)
    path = tmp_path / "logits.npy"
    np.save(path, data)
    assert not batch_tab_is_current(window)

    assert drop_file(window, path) == (True, True)
    wait_for_batch(qtbot, session, path)
    assert batch_tab_is_current(window)
    np.testing.assert_array_equal(session.batch.data, data)
    np.testing.assert_allclose(
        heatmap_image(window), softmax_ref(data, dim=1), rtol=FLOAT32_RTOL, atol=1e-7
    )
    info = find(window, QLabel, "batchInfo").text()
    assert "logits.npy" in info and "4 × 5" in info
    assert "Opened logits.npy" in message_text(window)
    warning = find(window, QLabel, "dimWarning")
    assert not warning.isVisible()

    # dim=0 with the keyboard: the warning shows, columns sum to 1, rows do not.
    dim_combo = find(window, QComboBox, "dimCombo")
    dim_combo.setFocus()
    qtbot.keyClick(dim_combo, Qt.Key.Key_Down)
    assert dim_combo.currentData() == 0
    qtbot.waitUntil(lambda: session.batch_analysis.dim == 0, timeout=WAIT_MS)
    assert warning.isVisible()
    assert "dim=0" in warning.text()
    image = heatmap_image(window)
    np.testing.assert_allclose(image, softmax_ref(data, dim=0), rtol=FLOAT32_RTOL, atol=1e-7)
    np.testing.assert_allclose(image.sum(axis=0), np.ones(5), rtol=1e-5)
    assert not np.allclose(image.sum(axis=1), 1.0, rtol=1e-3)

    # Click the row whose index column reads "2": the editor and the chart take it.
    table = find(window, QTableView, "batchRowTable")
    model_row = table_texts(table, 0).index("2")
    click_cell(qtbot, table, model_row, 0)
    qtbot.waitUntil(lambda: session.selected_row == 2, timeout=WAIT_MS)
    row = data[2].astype(np.float64)
    assert editor_logits(window) == row.tolist()
    np.testing.assert_allclose(chart_values(window), softmax_ref(row), rtol=FLOAT32_RTOL)
    assert window.batch.selection.isVisible()
    # The batch is unchanged by loading a row from it.
    np.testing.assert_array_equal(session.batch.data, data)


def test_file_open_a_csv_with_a_header(window, qtbot, tmp_path, monkeypatch):
    session = window.session
    path = tmp_path / "scores.csv"
    path.write_text("cat,dog,bird\n1.5,0.5,-1\n0,2,1\n3,3,3\n", encoding="utf-8")
    data = np.array([[1.5, 0.5, -1.0], [0.0, 2.0, 1.0], [3.0, 3.0, 3.0]])
    asked: list[str] = []

    def ask_open_path(parent: Any, title: str, *args: Any) -> str:
        asked.append(title)
        return str(path)

    monkeypatch.setattr(dialogs, "ask_open_path", ask_open_path)
    # File → Open by its shortcut, as a person opens it.
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    wait_for_batch(qtbot, session, path)
    assert len(asked) == 1
    assert batch_tab_is_current(window)
    np.testing.assert_allclose(
        heatmap_image(window), softmax_ref(data), rtol=FLOAT32_RTOL, atol=1e-7
    )

    table = find(window, QTableView, "batchRowTable")
    click_cell(qtbot, table, table_texts(table, 0).index("1"), 0)
    qtbot.waitUntil(lambda: session.selected_row == 1, timeout=WAIT_MS)
    assert editor_names(window) == ["cat", "dog", "bird"]
    assert editor_logits(window) == data[1].tolist()
    np.testing.assert_allclose(chart_values(window), softmax_ref(data[1]), rtol=FLOAT32_RTOL)
    assert find(window, QLabel, "argmaxLabel").text() == "dog"


def test_file_open_cancelled_changes_nothing(window, qtbot, monkeypatch):
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *args, **kwargs: None)
    window.open_action.trigger()
    QApplication.processEvents()  # the inline controller would have loaded by now
    assert window.session.batch is None
    assert not find(window, QWidget, "messageBar").isVisible()


@pytest.mark.parametrize("which", ["window", "threaded_window"])
def test_npz_with_two_arrays_asks_which(which, request, qtbot, tmp_path, monkeypatch):
    # Listing a container's arrays runs as a job: inline, and on the real pool.
    window = request.getfixturevalue(which)
    session = window.session
    first = np.arange(6, dtype=np.float64).reshape(2, 3)
    second = np.array([[0.5, -0.5, 4.0, 1.0]] * 3, dtype=np.float64) * np.arange(1, 4)[:, None]
    path = tmp_path / "two.npz"
    np.savez(path, first=first, second=second)
    offered: list[list[str]] = []

    def ask_choice(parent: Any, title: str, text: str, choices: list[str]) -> str | None:
        offered.append(list(choices))
        return next(c for c in choices if c.startswith("second"))

    monkeypatch.setattr(dialogs, "ask_choice", ask_choice)
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *args, **kwargs: str(path))
    window.open_action.trigger()
    wait_for_batch(qtbot, session, path)
    assert len(offered) == 1 and len(offered[0]) == 2
    assert any(c.startswith("first") for c in offered[0])
    assert session.batch.array_name == "second"
    np.testing.assert_array_equal(session.batch.data, second)
    np.testing.assert_allclose(
        heatmap_image(window), softmax_ref(second), rtol=FLOAT32_RTOL, atol=1e-7
    )
    assert "second" in find(window, QLabel, "batchInfo").text()

    # Dropping it again and cancelling the question changes nothing.
    declined: list[list[str]] = []

    def decline(parent: Any, title: str, text: str, choices: list[str]) -> None:
        declined.append(list(choices))

    monkeypatch.setattr(dialogs, "ask_choice", decline)
    loaded = session.batch
    assert drop_file(window, path) == (True, True)
    qtbot.waitUntil(lambda: bool(declined), timeout=WAIT_MS)
    QApplication.processEvents()
    qtbot.waitUntil(lambda: not session.busy, timeout=WAIT_MS)
    assert session.batch is loaded
    assert "error" not in message_text(window).lower()


def test_bad_files_are_refused_readably(window, qtbot, tmp_path):
    session = window.session
    good = tmp_path / "good.npy"
    good_data = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    np.save(good, good_data)
    assert drop_file(window, good) == (True, True)
    wait_for_batch(qtbot, session, good)
    loaded, analysis = session.batch, session.batch_analysis

    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY" + bytes(range(256)) * 4)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    vector_before = chart_values(window).copy()

    for bad, words in ((garbage, ("npy",)), (pickled, ("pickle",))):
        assert drop_file(window, bad) == (True, True)
        qtbot.waitUntil(lambda bad=bad: bad.name in message_text(window), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not session.busy, timeout=WAIT_MS)
        text = message_text(window)
        assert text.startswith("Error:")
        assert "Traceback" not in text and len(text) < 400
        for word in words:
            assert word in text.lower()
        assert session.batch is loaded and session.batch_analysis is analysis
        np.testing.assert_array_equal(chart_values(window), vector_before)

    # A file kind the window does not open is not even accepted as a drag.
    other = tmp_path / "notes.docx"
    other.write_bytes(b"PK\x03\x04")
    assert drop_file(window, other) == (False, False)

    # The window keeps working: the editor still edits and the chart follows.
    type_into_cell(qtbot, find(window, QTableView, "logitTable"), 0, 1, "0.25")
    assert editor_logits(window) == [0.25, 1.0, 0.1]
    np.testing.assert_allclose(
        chart_values(window), softmax_ref([0.25, 1.0, 0.1]), rtol=FLOAT32_RTOL
    )
    # Closing the message dismisses it.
    qtbot.mouseClick(find(window, QToolButton, "messageClose"), Qt.MouseButton.LeftButton)
    assert not find(window, QWidget, "messageBar").isVisible()


# ---------------------------------------------------------------------------------------------
# 7. Background work with the real thread pool


@popup_menu_on_offscreen
def test_large_vocabulary_computes_off_the_ui_thread(threaded_window, qtbot):
    window = threaded_window
    session = window.session
    # The worker path, as for vectors above INLINE_MAX_CLASSES (262,144 is computed
    # inline since it takes ~5 ms): the preset is the handiest large vector.
    window.controller.inline_max_classes = 65_536
    busy_seen: list[str] = []
    session.events["busy"].connect(lambda text: busy_seen.append(text))

    choose_preset(qtbot, window, "vocab262k")
    logits = np.array(session.logits)
    assert logits.shape == (262_144,)
    # The job went to the pool: the seed result is still shown while it runs.
    assert busy_seen and busy_seen[0]
    qtbot.waitUntil(
        lambda: session.analysis.result.num_classes == 262_144 and not session.busy,
        timeout=60_000,
    )
    assert not find(window, QWidget, "busyIndicator").isVisible()
    p_ref = softmax_ref(logits)
    # float32 over 262,144 classes: torch's own float32 softmax is 1.2e-5 off float64 here
    # (every p shares the rounding of the sum), hence a looser tolerance than for 3 classes.
    np.testing.assert_allclose(session.analysis.result.probabilities[0], p_ref, rtol=VOCAB_RTOL)
    # Envelope: each bar is the max over its pixel column, so the top bar is max p.
    assert chart_values(window).max() == pytest.approx(p_ref.max(), rel=VOCAB_RTOL)
    assert drawn_heights(window.chart.argmax_bar)[0] == pytest.approx(p_ref.max(), rel=VOCAB_RTOL)
    assert find(window, QLabel, "envelopeLabel").isVisible()
    assert find(window, QLabel, "classCountLabel").text() == "262,144"

    # Twenty quick presses on the slider: only the last T may end up on screen,
    # and no result older than one already shown is ever shown.
    shown: list[float] = []
    requested: list[float] = []
    session.events["analysis"].connect(lambda a: shown.append(a.result.temperature))
    session.events["temperature"].connect(requested.append)
    slider = find(window, QSlider, "temperatureSlider")
    slider.setFocus()
    for _ in range(20):
        qtbot.keyClick(slider, Qt.Key.Key_Right)
    final_t = 10.0  # 20 presses x 5 positions = one decade up from T = 1
    assert find(window, QDoubleSpinBox, "temperatureSpin").value() == final_t
    qtbot.waitUntil(
        lambda: (
            session.temperature == final_t
            and session.analysis.result.temperature == final_t
            and not session.busy
        ),
        timeout=60_000,
    )
    # The drag was throttled, not lost: the first press and the last position were requested.
    assert len(requested) >= 2 and requested[-1] == final_t, requested
    assert shown and shown[-1] == final_t
    assert set(shown) <= set(requested)
    assert shown == sorted(shown), f"a stale result was shown after a newer one: {shown}"
    p_ref = softmax_ref(logits, final_t)
    np.testing.assert_allclose(session.analysis.result.probabilities[0], p_ref, rtol=VOCAB_RTOL)
    assert chart_values(window).max() == pytest.approx(p_ref.max(), rel=VOCAB_RTOL)
    assert window.chart.ghost.isVisible()
    np.testing.assert_allclose(
        drawn_heights(window.chart.ghost).max(), softmax_ref(logits).max(), rtol=VOCAB_RTOL
    )


@popup_menu_on_offscreen
def test_the_largest_llm_vocabulary_is_computed_inline(threaded_window, qtbot):
    # At 262,144 classes a temperature change costs ~5 ms: cheaper than a trip to the
    # worker and back (docs/performance.md). Above it, vectors go to the worker.
    window = threaded_window
    session = window.session
    busy_seen: list[str] = []
    session.events["busy"].connect(lambda text: busy_seen.append(text) if text else None)
    choose_preset(qtbot, window, "vocab262k")
    assert session.analysis.result.num_classes == 262_144  # there as the click returns
    qtbot.keyClick(find(window, QSlider, "temperatureSlider"), Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: session.analysis.request.temperature == session.temperature)
    assert busy_seen == []
    assert window.controller.inline_max_classes == 262_144


@popup_menu_on_offscreen
def test_quitting_while_a_request_waits_leaves_no_thread_running(
    threaded_window, qtbot, monkeypatch
):
    """app/gui.py quits with: close the window, ``executor.shutdown()``, process the
    queued events. Afterwards no worker may still run: Python is about to finalise."""
    import threading

    import softmax_lab.app.controller as controller_module

    window = threaded_window
    session = window.session
    # Hold the vector job in the worker until the person has quit, so the order of
    # events is the same on a fast and on a slow machine.
    release = threading.Event()
    analyse = controller_module.analyse_vector

    def held(request: Any) -> Any:
        release.wait(30)
        return analyse(request)

    monkeypatch.setattr(controller_module, "analyse_vector", held)
    window.controller.inline_max_classes = 65_536  # the worker path (see above)
    choose_preset(qtbot, window, "vocab262k")
    assert session.busy
    slider = find(window, QSlider, "temperatureSlider")
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Right)  # a newer request, waiting behind the running one
    qtbot.waitUntil(lambda: session.temperature != 1.0, timeout=WAIT_MS)

    window.close()
    release.set()
    window.executor.shutdown()
    QApplication.processEvents()
    running = window.executor.pool.activeThreadCount()
    window.executor.shutdown()  # let whatever started finish before the assertion
    QApplication.processEvents()
    assert running == 0, "a job started on the worker pool after shutdown()"


def test_a_batch_loads_in_the_background(threaded_window, qtbot, tmp_path):
    window = threaded_window
    session = window.session
    data = np.random.default_rng(3).normal(0.0, 3.0, (300, 40)).astype(np.float32)
    path = tmp_path / "batch.npy"
    np.save(path, data)
    assert drop_file(window, path) == (True, True)
    assert session.busy  # the load runs on the pool
    wait_for_batch(qtbot, session, path, timeout=30_000)
    assert batch_tab_is_current(window)
    analysis = session.batch_analysis
    assert (analysis.heatmap_row_bin, analysis.heatmap_col_bin) == (1, 1)
    np.testing.assert_allclose(heatmap_image(window), softmax_ref(data), rtol=1e-5, atol=1e-7)
    click_cell(qtbot, find(window, QTableView, "batchRowTable"), 0, 0)
    qtbot.waitUntil(lambda: session.selected_row is not None, timeout=WAIT_MS)
    row = data[session.selected_row].astype(np.float64)
    assert editor_logits(window) == row.tolist()
    np.testing.assert_allclose(chart_values(window), softmax_ref(row), rtol=FLOAT32_RTOL)


# ---------------------------------------------------------------------------------------------
# 8. Bugs are not swallowed


def test_an_exception_in_a_background_callback_reaches_the_test(
    threaded_window, qtbot, tmp_path, monkeypatch
):
    """A bug inside a job is re-raised on the UI thread (to the excepthook), not hidden."""
    import softmax_lab.compute.batch as batch_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug inside batch statistics")

    monkeypatch.setattr(batch_module, "batch_statistics", broken)
    path = tmp_path / "b.npy"
    np.save(path, np.zeros((2, 3)))
    with qtbot.capture_exceptions() as exceptions:
        assert drop_file(threaded_window, path) == (True, True)
        qtbot.waitUntil(lambda: bool(exceptions), timeout=30_000)
        qtbot.waitUntil(lambda: not threaded_window.session.busy, timeout=30_000)
    assert len(exceptions) == 1
    exc_type, exc, _tb = exceptions[0]
    assert exc_type is RuntimeError and "bug inside batch statistics" in str(exc)
    # It was not turned into an ordinary message either.
    message = threaded_window.session.message
    assert message is None or "bug inside" not in message.text


# ---------------------------------------------------------------------------------------------
# 9. Contract


def readme_object_names() -> list[str]:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text(encoding="utf-8")
    start = text.index("## Driving the window from tests and scripts")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    names: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        first_cell = line.split("|")[1]
        names += re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", first_cell)
    return names


def test_every_object_name_in_the_readme_exists(window):
    names = readme_object_names()
    assert len(names) >= 20, f"README table not found or too short: {names}"
    # Widgets and actions (QAction is a QObject, not a QWidget).
    missing = [
        n for n in names if window.findChild(QObject, n) is None and window.objectName() != n
    ]
    assert not missing, f"objectNames in README.md but not in the window: {missing}"
    duplicated = [n for n in names if len(window.findChildren(QObject, n)) > 1]
    assert not duplicated, f"objectNames used more than once: {duplicated}"


def test_window_fits_a_1280x720_projector(window):
    hint = window.minimumSizeHint()
    assert 0 < hint.width() <= 1280 and 0 < hint.height() <= 720, hint
    window.resize(1280, 720)
    assert (window.width(), window.height()) == (1280, 720)


def test_window_contract(window):
    assert window.windowTitle() == "Softmax Lab"
    assert window.objectName() == "mainWindow"
    image = window.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull() and image.width() > 0 and image.height() > 0
    # More than one colour: the window drew something.
    step = 7
    colours = {
        image.pixel(x, y)
        for x in range(0, image.width(), step)
        for y in range(0, image.height(), step)
    }
    assert len(colours) > 10
    # The chart has drawn its bars (a blue of the Okabe-Ito palette) into the grab.
    plot = find(window, QWidget, "probabilityPlot")
    chart_image = plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bar_blue = QColor("#0072B2").rgb()
    assert any(
        chart_image.pixel(x, y) == bar_blue
        for x in range(0, chart_image.width(), 2)
        for y in range(0, chart_image.height(), 2)
    )
