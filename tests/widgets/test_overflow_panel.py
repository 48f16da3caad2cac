"""The overflow lab, driven through a real session and controller.

References are independent of the compute core: torch.softmax / log_softmax
on the same logits, numpy's finfo for the dtype limits, and plain float64
arithmetic for what overflows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from softmax_lab.app.controller import Controller
from softmax_lab.widgets import style
from softmax_lab.widgets.overflow_panel import MAX_ROWS, OverflowPanel

RED = QColor(style.BAD_BACKGROUND)


@pytest.fixture
def panel(qtbot, session):
    Controller(session).start()
    widget = OverflowPanel(session)
    qtbot.addWidget(widget)
    widget.resize(1000, 800)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def column(panel: OverflowPanel, header: str) -> int:
    model = panel.table.model()
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert header in headers, headers
    return headers.index(header)


def cell(panel: OverflowPanel, row: int, header: str) -> tuple[str, bool]:
    """(displayed text, drawn on the red background) of one cell."""
    model = panel.table.model()
    index = model.index(row, column(panel, header))
    background = model.data(index, Qt.ItemDataRole.BackgroundRole)
    red = background is not None and QColor(background) == RED
    if red:  # red cells also use red text
        assert QColor(model.data(index, Qt.ItemDataRole.ForegroundRole)) == QColor(style.BAD)
    return model.data(index, Qt.ItemDataRole.DisplayRole), red


def raw(panel: OverflowPanel, row: int, header: str) -> float:
    model = panel.table.model()
    return model.data(model.index(row, column(panel, header)), Qt.ItemDataRole.UserRole)


def background_of(label) -> QColor:
    """The colour actually painted behind a verdict label's text."""
    image = label.grab().toImage()
    return image.pixelColor(image.width() - 4, image.height() // 2)


def sum_row(panel: OverflowPanel) -> int:
    return panel.table.model().rowCount() - 1


def test_contract(panel):
    hint = panel.minimumSizeHint()
    assert 200 <= hint.width() <= 1200 and 200 <= hint.height() <= 1000
    image = panel.grab().toImage()
    assert not image.isNull()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 1
    assert panel.objectName() == "overflowPanel"
    for name in ("overflowTable", "overflowVerdict", "logSoftmaxVerdict", "naiveLimitPlot"):
        assert panel.findChild(object, name) is not None, name


def test_overflow_in_float32_marks_naive_cells_and_keeps_stable_p(panel, session):
    logits = [1000.0, 999.0, 998.0]
    session.set_vector(logits)
    expected = torch.softmax(torch.tensor(logits, dtype=torch.float32), dim=-1).double().numpy()
    assert math.log(float(np.finfo(np.float32).max)) < 1000  # exp(1000) overflows float32

    for row in range(3):
        assert cell(panel, row, "naive exp(x)") == ("inf", True)
        assert cell(panel, row, "naive p = exp/Σ") == ("nan", True)
        text, red = cell(panel, row, "stable p")
        assert not red
        assert float(text) == pytest.approx(expected[row], rel=1e-3)  # 4 digits shown
        assert raw(panel, row, "stable p") == pytest.approx(expected[row], rel=1e-6)
        assert cell(panel, row, "x")[0] == style.format_number(logits[row])
    assert cell(panel, sum_row(panel), "naive exp(x)") == ("inf", True)
    text, red = cell(panel, sum_row(panel), "exp(x − max)")
    assert not red and float(text) == pytest.approx(1 + math.exp(-1) + math.exp(-2), rel=1e-3)

    assert "exp(1000) overflows float32" in panel.verdict.text()
    assert background_of(panel.verdict) == QColor(style.BAD_BACKGROUND)
    assert background_of(panel.log_verdict) == QColor(style.OK_BACKGROUND)
    assert "float32" in panel.title.text() and "cpu" in panel.title.text()

    gauge = panel.gauge
    assert 10 ** gauge.marker_line.value() == pytest.approx(1000.0)
    f32_limit = math.log(float(np.finfo(np.float32).max))
    assert 10 ** gauge.limit_line.value() == pytest.approx(f32_limit)
    assert gauge.limit_line.label.toPlainText() == f"float32 limit ≈ {f32_limit:.2f}"
    faint = {line.label.toPlainText() for line in gauge.other_lines}
    assert any("float16" in text for text in faint) and any("float64" in text for text in faint)


def test_float16_sum_overflow_flips_verdict_and_marks(panel, session):
    logits = [10.0, 10.0, 10.0]
    # Each exp(10) ≈ 22026 fits float16, their sum ≈ 66079 does not (max 65504).
    f16_max = float(np.finfo(np.float16).max)
    assert math.exp(10) < f16_max < 3 * math.exp(10) < float(np.finfo(np.float32).max)
    session.set_vector(logits)

    total = cell(panel, sum_row(panel), "naive exp(x)")
    assert not total[1] and float(total[0]) == pytest.approx(3 * math.exp(10), rel=1e-3)
    for row in range(3):
        text, red = cell(panel, row, "naive p = exp/Σ")
        assert not red and float(text) == pytest.approx(1 / 3, rel=1e-3)
    assert background_of(panel.verdict) == QColor(style.OK_BACKGROUND)
    assert "No overflow" in panel.verdict.text()

    session.dtype = "float16"

    assert cell(panel, sum_row(panel), "naive exp(x)") == ("inf", True)
    for row in range(3):
        exp_text, exp_red = cell(panel, row, "naive exp(x)")
        assert not exp_red and float(exp_text) == pytest.approx(math.exp(10), rel=2e-3)
        assert cell(panel, row, "naive p = exp/Σ")[1]  # 22026 / inf = 0: wrong, marked
        stable, red = cell(panel, row, "stable p")
        assert not red and float(stable) == pytest.approx(1 / 3, rel=1e-3)
    assert background_of(panel.verdict) == QColor(style.BAD_BACKGROUND)
    assert "float16" in panel.verdict.text() and "sum" in panel.verdict.text()
    assert "float16" in panel.title.text()
    f16_limit = math.log(f16_max)
    assert 10 ** panel.gauge.limit_line.value() == pytest.approx(f16_limit)
    assert panel.gauge.limit_line.label.toPlainText() == "float16 limit ≈ 11.09"
    assert 10 ** panel.gauge.marker_line.value() == pytest.approx(10.0)


def test_log_of_softmax_underflow_is_red_while_log_softmax_is_finite(panel, session):
    session.set_vector([0.0, -200.0])
    expected = torch.log_softmax(torch.tensor([0.0, -200.0], dtype=torch.float32), dim=-1)

    assert cell(panel, 1, "log(softmax(x))") == ("-inf", True)
    text, red = cell(panel, 1, "log_softmax(x)")
    assert not red and float(text) == pytest.approx(float(expected[1]))
    assert cell(panel, 0, "log(softmax(x))") == ("0", False)
    # Nothing overflowed on the naive side here.
    for row in range(2):
        assert not cell(panel, row, "naive exp(x)")[1]
        assert not cell(panel, row, "naive p = exp/Σ")[1]
    assert "-inf" in panel.log_verdict.text()
    assert background_of(panel.log_verdict) == QColor(style.BAD_BACKGROUND)
    assert background_of(panel.verdict) == QColor(style.OK_BACKGROUND)


def test_temperature_relabels_columns_and_scales_x(panel, session):
    session.set_vector([4.0, 1.0, -3.0])
    session.temperature = 2.0
    assert raw(panel, 0, "x/T") == pytest.approx(2.0)
    expected = torch.softmax(torch.tensor([4.0, 1.0, -3.0]) / 2.0, dim=-1)
    assert raw(panel, 2, "stable p") == pytest.approx(float(expected[2]), rel=1e-6)
    assert 10 ** panel.gauge.marker_line.value() == pytest.approx(2.0)
    assert "x/T" in panel.gauge.marker_line.label.toPlainText()


def test_large_vector_shows_failures_first_then_largest_logits(panel, session):
    rng = np.random.default_rng(7)
    logits = rng.normal(size=2_000)
    underflowing = [7, 500, 1200, 1999]  # p = 0 in float32, log(p) = -inf
    logits[underflowing] = -200.0
    session.set_vector(logits)

    model = panel.table.model()
    assert model.rowCount() == MAX_ROWS + 1
    shown = [model.data(model.index(r, 0)) for r in range(MAX_ROWS)]
    assert shown[:4] == [f"{i}: class {i}" for i in underflowing]
    for r in range(4):
        assert cell(panel, r, "log(softmax(x))") == ("-inf", True)
    by_logit = np.argsort(-logits, kind="stable")[: MAX_ROWS - 4]
    assert shown[4:] == [f"{i}: class {i}" for i in by_logit]
    assert "200 of 2,000" in panel.table_note.text()
    assert 10 ** panel.gauge.marker_line.value() == pytest.approx(logits.max(), rel=1e-6)


def test_nothing_computed_shows_an_empty_table(qtbot, session):
    widget = OverflowPanel(session)  # no controller: session.analysis is None
    qtbot.addWidget(widget)
    assert widget.table.model().rowCount() == 0
    assert widget.verdict.text()


@pytest.mark.parametrize("seed", range(12))
def test_large_vector_row_choice_equals_a_full_stable_sort(seed):
    """The selection of the overflow table's rows (no full sort) against the plain
    definition: failures first, each group by x/T descending (stable), NaN last."""
    from types import SimpleNamespace

    from softmax_lab.widgets.overflow_panel import LARGE_VECTOR, MAX_ROWS, _choose_rows

    rng = np.random.default_rng(seed)
    n = int(rng.integers(LARGE_VECTOR + 1, 5_000))
    # Few distinct values, so ties straddle the cut; plus inf, -inf and NaN.
    scaled = rng.integers(-5, 5, n).astype(np.float64)
    for value, share in ((np.inf, 0.01), (-np.inf, 0.3 * (seed % 3)), (np.nan, 0.2 * (seed % 2))):
        scaled[rng.random(n) < share] = value
    bad = np.zeros((n, 4), dtype=bool)
    bad[rng.random(n) < [0.0, 0.01, 0.5, 0.99, 1.0][seed % 5], int(rng.integers(4))] = True
    result = SimpleNamespace(num_classes=n, scaled=scaled[None, :])

    by_logit = np.argsort(-scaled, kind="stable")
    failing = bad[by_logit].any(axis=1)
    expected = np.concatenate([by_logit[failing], by_logit[~failing]])[:MAX_ROWS]
    assert _choose_rows(result, bad.any(axis=1)).tolist() == expected.tolist()


def test_no_number_is_cut_off_whatever_the_temperature(panel, session):
    from PySide6.QtGui import QFont, QFontMetrics

    # float64 spreads to the ends of its range: the longest texts a cell can show.
    session.dtype = "float64"
    session.set_vector([-700.0, -1e-300, 3.3e-5, 0.0, 1.0, 650.0, 709.0, -np.inf])
    model = panel.table.model()
    widest_seen = 0
    for temperature in (0.0013, 0.37, 1.0, 2.9, 1e3):
        session.temperature = temperature
        for row in range(model.rowCount()):
            for col in range(model.columnCount()):
                index = model.index(row, col)
                text = model.data(index, Qt.ItemDataRole.DisplayRole)
                font = model.data(index, Qt.ItemDataRole.FontRole) or panel.table.font()
                width = QFontMetrics(QFont(font)).horizontalAdvance(text)
                widest_seen = max(widest_seen, len(text))
                assert width + 2 * 8 <= panel.table.columnWidth(col), (temperature, row, col, text)
    assert widest_seen >= 10  # the texts really were long ones, e.g. "-1.429e-300"


def test_a_temperature_change_keeps_the_table_where_the_person_scrolled(qtbot, panel, session):
    session.set_vector(np.linspace(-5.0, 5.0, 400))
    session.temperature = 0.5  # (leaving T = 1 renames the columns: x becomes x/T)
    bar = panel.table.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 50)  # laid out
    bar.setValue(bar.maximum() // 2)
    before = bar.value()
    model = panel.table.model()
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    session.temperature = 0.7
    qtbot.wait(20)  # a relayout would come in the next event-loop turns
    assert bar.value() == before
    # The cells changed in place: a reset makes the view lay out every row again.
    assert resets == []
    session.set_vector(np.linspace(-5.0, 5.0, 30))  # another shape: a reset
    assert resets == [1]
    assert raw(panel, 0, "x/T") == pytest.approx(-5.0 / 0.7)


def test_numbers_scrolled_into_view_are_not_cut_off(qtbot, panel, session):
    from PySide6.QtGui import QFont, QFontMetrics

    # The columns fit the rows in view; the last rows hold the widest numbers.
    session.set_vector(np.concatenate([np.zeros(300), -np.linspace(20.0, 30.0, 100)]))
    model, table = panel.table.model(), panel.table
    bar = table.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 50)
    bar.setValue(bar.maximum())
    qtbot.wait(20)

    def cut_off_in_view() -> list[tuple[int, int, str]]:
        first, last = table.rowAt(0), table.rowAt(table.viewport().height() - 1)
        last = model.rowCount() - 1 if last < 0 else last
        cut = []
        for row in range(first, last + 1):
            for col in range(model.columnCount()):
                index = model.index(row, col)
                text = model.data(index, Qt.ItemDataRole.DisplayRole)
                font = model.data(index, Qt.ItemDataRole.FontRole) or table.font()
                if QFontMetrics(QFont(font)).horizontalAdvance(text) + 2 * 8 > table.columnWidth(col):
                    cut.append((row, col, text))
        return cut

    assert table.rowAt(0) > 300
    assert cut_off_in_view() == []
