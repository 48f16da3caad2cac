"""The probability chart: what it draws, checked against torch's own softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.probability_chart import ENVELOPE_TEXT, ProbabilityChart

BIG = 262_144


def torch_softmax(logits, temperature: float = 1.0) -> np.ndarray:
    x = torch.tensor(np.asarray(logits, dtype=np.float32))
    return torch.softmax(x / temperature, dim=0).double().numpy()


def torch_log_softmax(logits, temperature: float = 1.0) -> np.ndarray:
    x = torch.tensor(np.asarray(logits, dtype=np.float32))
    return torch.log_softmax(x / temperature, dim=0).double().numpy()


@pytest.fixture
def chart(qtbot, session: Session) -> ProbabilityChart:
    Controller(session).start()
    widget = ProbabilityChart(session)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def drawn_heights(chart: ProbabilityChart) -> np.ndarray:
    """Bar tops as drawn: y0 + height (y0 is the bottom of the log view)."""
    opts = chart.bars.opts
    return np.asarray(opts["y0"], dtype=np.float64) + np.asarray(opts["height"], dtype=np.float64)


def bar_centres(item) -> np.ndarray:
    opts = item.opts
    if opts.get("x0") is not None:
        return np.asarray(opts["x0"], dtype=np.float64) + np.asarray(opts["width"]) / 2
    return np.asarray(opts["x"], dtype=np.float64)


def legend_texts(chart: ProbabilityChart) -> list[str]:
    return [label.text for _sample, label in chart.legend.items]


def colours_in(image) -> int:
    small = image.scaled(60, 40)
    return len({small.pixel(x, y) for x in range(small.width()) for y in range(small.height())})


# -- contract ---------------------------------------------------------------------------


def test_contract(chart: ProbabilityChart) -> None:
    assert chart.objectName() == "probabilityChart"
    hint = chart.minimumSizeHint()
    assert 200 <= hint.width() <= 1200 and 150 <= hint.height() <= 900
    image = chart.grab().toImage()
    assert not image.isNull()
    assert colours_in(image) > 1
    assert chart.plot_item is chart.plot_widget.getPlotItem()
    assert chart.bars in chart.plot_item.items


# -- probabilities view ----------------------------------------------------------------------


def test_seed_bars_match_torch_and_axis_is_fixed(chart: ProbabilityChart, session: Session) -> None:
    np.testing.assert_allclose(drawn_heights(chart), torch_softmax([2.0, 1.0, 0.1]), rtol=1e-6)
    np.testing.assert_allclose(bar_centres(chart.bars), [0, 1, 2])
    vb = chart.plot_item.getViewBox()
    for temperature in (0.25, 3.0, 10.0):
        session.temperature = temperature
        np.testing.assert_allclose(
            drawn_heights(chart), torch_softmax([2.0, 1.0, 0.1], temperature), rtol=1e-5, atol=1e-7
        )
        assert vb.viewRange()[1] == pytest.approx([0.0, 1.0])
    assert not vb.autoRangeEnabled()[1]
    assert "T = 10" in chart.plot_item.titleLabel.text
    assert "float32" in chart.plot_item.titleLabel.text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_vectors_match_torch(chart: ProbabilityChart, session: Session, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=4.0, size=int(rng.integers(2, 40)))
    temperature = float(rng.uniform(0.2, 5.0))
    session.set_vector(logits)
    session.temperature = temperature
    np.testing.assert_allclose(
        drawn_heights(chart), torch_softmax(logits, temperature), rtol=1e-5, atol=1e-7
    )


def test_ghost_only_when_temperature_is_not_one(chart: ProbabilityChart, session: Session) -> None:
    logits = [3.0, 1.0, -0.5, 0.2]
    session.set_vector(logits)
    assert not chart.ghost.isVisible()
    assert "T = 1" not in legend_texts(chart)
    session.temperature = 2.5
    assert chart.ghost.isVisible()
    assert "T = 1" in legend_texts(chart)
    ghost = np.asarray(chart.ghost.opts["y0"]) + np.asarray(chart.ghost.opts["height"])
    np.testing.assert_allclose(ghost, torch_softmax(logits, 1.0), rtol=1e-6)
    np.testing.assert_allclose(bar_centres(chart.ghost), np.arange(4))
    assert chart.ghost.zValue() < chart.bars.zValue()  # behind the bars
    session.temperature = 1.0
    assert not chart.ghost.isVisible()
    assert "T = 1" not in legend_texts(chart)


def test_argmax_and_target_highlights(chart: ProbabilityChart, session: Session) -> None:
    logits = np.array([0.5, -1.0, 2.5, 0.0, 1.0])
    session.set_vector(logits)
    session.target = 4
    p = torch_softmax(logits)
    argmax = int(np.argmax(p))
    np.testing.assert_allclose(bar_centres(chart.argmax_bar), [argmax])
    np.testing.assert_allclose(chart.argmax_bar.opts["height"], [p[argmax]], rtol=1e-6)
    np.testing.assert_allclose(bar_centres(chart.target_bar), [4])
    np.testing.assert_allclose(chart.target_bar.opts["height"], [p[4]], rtol=1e-6)
    session.target = 1
    np.testing.assert_allclose(bar_centres(chart.target_bar), [1])
    session.target = None
    assert len(chart.target_bar.opts["height"]) == 0
    # The highlight items have their own single brush, not one per bar.
    assert chart.argmax_bar.opts["brushes"] is None and chart.bars.opts["brushes"] is None
    assert QColor(chart.argmax_bar.opts["brush"].color()).name() == QColor(style.ARGMAX).name()


def test_uniform_line_at_one_over_n(chart: ProbabilityChart, session: Session) -> None:
    assert chart.uniform_line.isVisible()
    assert chart.uniform_line.value() == pytest.approx(1 / 3)
    session.set_vector(np.zeros(8))
    assert chart.uniform_line.value() == pytest.approx(1 / 8)
    # Uniform logits: every bar sits on the line.
    np.testing.assert_allclose(drawn_heights(chart), 1 / 8, rtol=1e-6)
    assert chart.uniform_line.label.textItem.toPlainText() == "1/N"


def test_value_labels_for_few_classes_only(chart: ProbabilityChart, session: Session) -> None:
    p = torch_softmax([2.0, 1.0, 0.1])
    shown = [label for label in chart.value_labels if label.isVisible()]
    assert len(shown) == 3
    for label, value in zip(shown, p, strict=True):
        assert float(label.textItem.toPlainText()) == pytest.approx(value, abs=5e-4)
        assert label.color.name() == QColor(style.TEXT).name()  # dark on white, not invisible
    session.set_vector(np.linspace(0, 1, 20))
    assert sum(label.isVisible() for label in chart.value_labels) == 20
    session.set_vector(np.linspace(0, 1, 50))
    assert not any(label.isVisible() for label in chart.value_labels)


def test_value_labels_follow_the_temperature_into_the_bar_and_out(
    chart: ProbabilityChart, session: Session
) -> None:
    # Near the top of the plot a label goes inside its bar, in white; it comes out again.
    for temperature, inside in ((0.05, True), (1.0, False), (0.05, True), (3.0, False)):
        session.temperature = temperature
        p = torch_softmax([2.0, 1.0, 0.1], temperature)
        top = chart.value_labels[0]
        assert float(top.textItem.toPlainText()) == pytest.approx(p[0], abs=5e-4)
        assert top.color.name() == QColor("white" if inside else style.TEXT).name()
        assert tuple(top.anchor) == ((0.5, 0.0) if inside else (0.5, 1.0))
        assert top.pos().y() == pytest.approx(p[0], abs=1e-6)
        for label, value in zip(chart.value_labels[1:3], p[1:], strict=True):
            assert float(label.textItem.toPlainText()) == pytest.approx(value, abs=5e-4)
            assert label.color.name() == QColor(style.TEXT).name()


def test_class_names_as_ticks_when_few(chart: ProbabilityChart, session: Session) -> None:
    axis = chart.plot_item.getAxis("bottom")
    session.set_vector([1.0, 2.0, 3.0], ["cat", "dog", "bird"])
    assert [text for _x, text in axis._tickLevels[0]] == ["cat", "dog", "bird"]
    session.set_vector(np.zeros(100))
    assert axis._tickLevels is None  # numeric class indices


# -- the other views ------------------------------------------------------------------------


def test_view_combo_switches_to_log_and_logits(
    qtbot, chart: ProbabilityChart, session: Session
) -> None:
    logits = [2.0, 1.0, 0.1, -3.0]
    session.set_vector(logits)
    session.temperature = 0.5
    combo = chart.view_combo
    assert combo.objectName() == "chartViewCombo"
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert session.chart_view == "log-probabilities"
    expected = torch_log_softmax(logits, 0.5)
    np.testing.assert_allclose(drawn_heights(chart), expected, rtol=1e-5)
    low, high = chart.plot_item.getViewBox().viewRange()[1]
    assert high == pytest.approx(0.0) and low < expected.min()
    assert not chart.uniform_line.isVisible()
    assert chart.ghost.isVisible()  # T != 1: the T = 1 log-probabilities behind
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert session.chart_view == "logits"
    np.testing.assert_allclose(drawn_heights(chart), logits, rtol=1e-6)
    low, high = chart.plot_item.getViewBox().viewRange()[1]
    assert low < -3.0 and high > 2.0
    assert not chart.ghost.isVisible()  # T does not change the logits
    qtbot.keyClick(combo, Qt.Key.Key_Up)
    qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert session.chart_view == "probabilities"
    assert chart.plot_item.getViewBox().viewRange()[1] == pytest.approx([0.0, 1.0])


def test_session_view_change_updates_combo(chart: ProbabilityChart, session: Session) -> None:
    session.chart_view = "logits"
    assert chart.view_combo.currentText() == "logits"


def test_log_view_clamps_minus_infinity_and_marks_it(
    chart: ProbabilityChart, session: Session
) -> None:
    session.set_vector([0.0, 1.0, -np.inf])
    session.chart_view = "log-probabilities"
    tops = drawn_heights(chart)
    low, _high = chart.plot_item.getViewBox().viewRange()[1]
    assert np.all(np.isfinite(tops))
    assert tops[2] == pytest.approx(low, abs=0.05 * abs(low))  # at the bottom
    np.testing.assert_allclose(tops[:2], torch_log_softmax([0.0, 1.0]), rtol=1e-6)
    assert chart.nonfinite_markers.isVisible()
    xs, _ys = chart.nonfinite_markers.getData()
    assert list(xs) == [2.0]
    session.set_vector([0.0, 1.0, 2.0])
    assert not chart.nonfinite_markers.isVisible()


def test_float16_overflow_marked_in_logits_view(chart: ProbabilityChart, session: Session) -> None:
    session.dtype = "float16"
    session.set_vector([70000.0, 0.0])
    session.chart_view = "logits"
    xs, _ys = chart.nonfinite_markers.getData()
    assert list(xs) == [0.0]
    assert np.all(np.isfinite(drawn_heights(chart)))
    assert "float16" in chart.plot_item.titleLabel.text


# -- scale ------------------------------------------------------------------------------------


def test_envelope_keeps_a_single_peak_visible(chart: ProbabilityChart, session: Session) -> None:
    rng = np.random.default_rng()
    peak = int(rng.integers(0, BIG))
    logits = np.zeros(BIG)
    logits[peak] = 20.0
    session.set_vector(logits)
    session.target = int((peak + BIG // 2) % BIG)
    p_all = torch_softmax(logits)
    p_peak = p_all[peak]
    assert chart.envelope_label.isVisible() and chart.envelope_label.text() == ENVELOPE_TEXT
    heights = drawn_heights(chart)
    assert 100 <= heights.size <= 4000  # about one bar per pixel column, not one per class
    assert heights.max() == pytest.approx(p_peak, rel=1e-6)
    x0 = np.asarray(chart.bars.opts["x0"])
    width = np.asarray(chart.bars.opts["width"])
    containing = np.flatnonzero((x0 <= peak) & (peak < x0 + width))
    assert containing.size == 1
    assert heights[containing[0]] == heights.max()
    # The highlights stay at the true class index, as thin markers.
    np.testing.assert_allclose(bar_centres(chart.argmax_bar), [peak])
    np.testing.assert_allclose(bar_centres(chart.target_bar), [session.target])
    # ... each with a triangle above it, where the bar ends.
    for marker, index in ((chart.argmax_marker, peak), (chart.target_marker, session.target)):
        assert marker.isVisible()
        assert (marker.pos().x(), marker.pos().y()) == pytest.approx((index, p_all[index]), rel=1e-6)


def test_envelope_refines_when_zooming_in(chart: ProbabilityChart, session: Session) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=BIG)
    session.set_vector(logits)
    coarse = drawn_heights(chart).size
    chart.plot_item.getViewBox().setXRange(1000, 1100, padding=0)
    heights = drawn_heights(chart)
    centres = bar_centres(chart.bars)
    assert heights.size < coarse
    # Zoomed to ~100 classes: one bar per class again, the true probabilities.
    np.testing.assert_allclose(centres, np.round(centres))
    expected = torch_softmax(logits)[centres.astype(int)]
    np.testing.assert_allclose(heights, expected, rtol=1e-5)
    assert centres.min() <= 1000 and centres.max() >= 1099


def scene_item_count(chart: ProbabilityChart) -> int:
    return len(chart.plot_item.scene().items())


@pytest.mark.parametrize("num_classes", [3, 12])
def test_updates_create_no_items(
    chart: ProbabilityChart, session: Session, num_classes: int
) -> None:
    rng = np.random.default_rng(0)
    session.set_vector(rng.normal(size=num_classes))
    session.temperature = 2.0
    before = scene_item_count(chart)
    temperatures = [0.5, 1.0, 1.7, 2.5, 1.0, 3.0, 0.8]  # 1.0 toggles the ghost and its legend
    for i in range(50):
        session.temperature = temperatures[i % len(temperatures)]
        session.chart_view = ("probabilities", "log-probabilities")[i % 2]
    assert scene_item_count(chart) == before
    assert chart.bars.opts["brushes"] is None


def test_big_updates_create_no_items(chart: ProbabilityChart, session: Session) -> None:
    """50 updates at 262,144 classes add no graphics item.

    The compute core needs a few hundred ms per result at this size on a busy
    2-core machine, so three real results from the controller are replayed into
    ``session.analysis`` (exactly what the controller does on each change).
    """
    rng = np.random.default_rng(0)
    logits = rng.normal(size=BIG)
    logits[int(rng.integers(0, BIG))] = 12.0
    session.set_vector(logits)
    analyses = [session.analysis]  # T = 1
    for temperature in (0.5, 3.0):
        session.temperature = temperature
        analyses.append(session.analysis)
    vb = chart.plot_item.getViewBox()
    before = scene_item_count(chart)  # at T = 3: the ghost and its legend entry are shown
    counts: dict[int, set[int]] = {}
    for i in range(50):
        state = i % len(analyses)
        session.analysis = analyses[state]
        if i % 10 == 5:  # pan and zoom too: the envelope is re-binned in place
            vb.setXRange(i * 1000, i * 1000 + 30_000, padding=0)
        expected_max = analyses[state].result.probabilities[0].max()
        assert drawn_heights(chart).max() <= expected_max * (1 + 1e-9)
        counts.setdefault(state, set()).add(scene_item_count(chart))
    # The same state always has the same items; T = 1 has fewer (no ghost legend entry).
    assert all(len(seen) == 1 for seen in counts.values()), counts
    assert counts[2] == {before}
    assert max(max(seen) for seen in counts.values()) == before
    assert chart.bars.opts["brushes"] is None


def test_built_before_the_first_result(qtbot, session: Session) -> None:
    """The window builds its widgets before the controller's first result arrives."""
    widget = ProbabilityChart(session)
    qtbot.addWidget(widget)
    assert drawn_heights(widget).size == 0
    assert not widget.grab().toImage().isNull()
    session.target = 2
    Controller(session).start()
    np.testing.assert_allclose(drawn_heights(widget), torch_softmax([2.0, 1.0, 0.1]), rtol=1e-6)
    np.testing.assert_allclose(bar_centres(widget.argmax_bar), [0])
    np.testing.assert_allclose(bar_centres(widget.target_bar), [2])
    assert widget.argmax_bar.isVisible() and widget.target_bar.isVisible()
    session.analysis = None  # e.g. the vector was cleared: empty chart, no stale bars
    assert drawn_heights(widget).size == 0
    assert len(widget.argmax_bar.opts["height"]) == 0
