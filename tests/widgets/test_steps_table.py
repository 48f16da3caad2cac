"""The step-by-step table: cell texts and colours as displayed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.steps_table import TOP_ROWS, StepsModel, StepsTable

X, SHIFT, EXP, P, LOGP = 1, 2, 3, 4, 5


def shown_table(qtbot, session: Session) -> StepsTable:
    Controller(session).start()
    widget = StepsTable(session)
    qtbot.addWidget(widget)
    widget.resize(800, 300)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def table(qtbot, session: Session) -> StepsTable:
    return shown_table(qtbot, session)


def cell(table: StepsTable, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    model = table.view.model()
    return model.data(model.index(row, column), role)


def column_numbers(table: StepsTable, column: int, rows: int) -> np.ndarray:
    return np.array([float(cell(table, r, column)) for r in range(rows)])


def headers(table: StepsTable) -> list[str]:
    model = table.view.model()
    return [
        model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
        for c in range(model.columnCount())
    ]


def test_contract(table: StepsTable) -> None:
    assert table.objectName() == "stepsTable"
    hint = table.minimumSizeHint()
    assert 40 <= hint.width() <= 1200 and 40 <= hint.height() <= 900
    image = table.grab().toImage()
    assert not image.isNull()
    small = image.scaled(60, 30)
    assert len({small.pixel(x, y) for x in range(60) for y in range(30)}) > 1


def test_seed_example_as_the_tutorials_write_it(table: StepsTable) -> None:
    assert headers(table) == ["class", "x", "x − max", "exp(x − max)", "p = exp / Σ", "log p"]
    model = table.view.model()
    assert model.rowCount() == 4  # three classes and the Σ row
    x = np.array([2.0, 1.0, 0.1])
    shifted = x - x.max()
    np.testing.assert_allclose(column_numbers(table, X, 3), x)
    np.testing.assert_allclose(column_numbers(table, SHIFT, 3), shifted, atol=1e-6)
    np.testing.assert_allclose(column_numbers(table, EXP, 3), np.exp(shifted), rtol=5e-4)
    p = column_numbers(table, P, 3)
    np.testing.assert_allclose(p, [0.659, 0.242, 0.099], atol=6e-4)
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(x), 0).numpy(), rtol=5e-4)
    np.testing.assert_allclose(
        column_numbers(table, LOGP, 3), torch.log_softmax(torch.tensor(x), 0).numpy(), rtol=5e-4
    )
    # Σ row: bold, the sum of the exps and Σ p = 1.
    assert cell(table, 3, 0) == "Σ"
    assert float(cell(table, 3, EXP)) == pytest.approx(np.exp(shifted).sum(), rel=5e-4)
    assert cell(table, 3, P) == "1"
    assert cell(table, 3, X) == "" and cell(table, 3, LOGP) == ""
    assert cell(table, 3, P, Qt.ItemDataRole.FontRole).bold()
    assert cell(table, 0, 0) == "class 0"


def test_temperature_changes_headers_and_cells_live(table: StepsTable, session: Session) -> None:
    session.temperature = 2.0
    assert headers(table)[X] == "x/T"
    assert "/T" in headers(table)[SHIFT]
    x = np.array([2.0, 1.0, 0.1])
    np.testing.assert_allclose(column_numbers(table, X, 3), x / 2.0, rtol=5e-4)
    np.testing.assert_allclose(column_numbers(table, SHIFT, 3), (x - x.max()) / 2.0, atol=1e-6)
    expected = torch.softmax(torch.tensor(x) / 2.0, 0).numpy()
    np.testing.assert_allclose(column_numbers(table, P, 3), expected, rtol=5e-4)
    session.temperature = 1.0
    assert headers(table)[X] == "x"


def test_non_finite_cells_are_red(table: StepsTable, session: Session) -> None:
    session.dtype = "float16"
    session.set_vector([70000.0, 0.0])  # 70000 is +inf in float16
    assert cell(table, 0, X) == "inf"
    fg = cell(table, 0, X, Qt.ItemDataRole.ForegroundRole)
    bg = cell(table, 0, X, Qt.ItemDataRole.BackgroundRole)
    assert fg.color().name() == QColor(style.BAD).name()
    assert bg.color().name() == QColor(style.BAD_BACKGROUND).name()
    assert cell(table, 1, X) == "0"
    assert cell(table, 1, X, Qt.ItemDataRole.BackgroundRole) is None
    assert cell(table, 0, P) == "nan"  # inf - inf: torch.softmax is NaN too
    assert torch.isnan(torch.softmax(torch.tensor([70000.0, 0.0], dtype=torch.float16), 0)).all()
    # And on screen: the cell's pixels are the red background.
    table.view.clearSelection()
    rect = table.view.visualRect(table.view.model().index(0, X))
    image = table.view.viewport().grab().toImage()
    assert (
        QColor(image.pixel(rect.left() + 3, rect.top() + 3)).name()
        == QColor(style.BAD_BACKGROUND).name()
    )


def test_many_classes_show_the_top_rows_and_a_note(table: StepsTable, session: Session) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=5000)
    session.set_vector(logits)
    note = table.findChild(QLabel, "stepsNote")
    assert note.isVisible()
    assert f"{TOP_ROWS} most probable of 5,000" in note.text()
    model = table.view.model()
    assert model.rowCount() == TOP_ROWS + 1
    p = torch.softmax(torch.tensor(logits, dtype=torch.float32), 0).double().numpy()
    order = np.argsort(-p)[:TOP_ROWS]
    assert [cell(table, r, 0) for r in range(3)] == [f"class {i}" for i in order[:3]]
    np.testing.assert_allclose(column_numbers(table, P, TOP_ROWS), p[order], rtol=5e-4)
    # The Σ row is over all 5,000 classes, not the 100 shown.
    x = logits.astype(np.float32).astype(np.float64)
    assert float(cell(table, TOP_ROWS, EXP)) == pytest.approx(np.exp(x - x.max()).sum(), rel=5e-4)
    assert cell(table, TOP_ROWS, P) == "1"
    session.set_vector([1.0, 2.0])
    assert not note.isVisible()
    assert model.rowCount() == 3


def shown_classes(table: StepsTable) -> list[int]:
    return [int(cell(table, r, 0).removeprefix("class ")) for r in range(TOP_ROWS)]


def test_the_top_rows_are_the_most_probable_at_every_temperature(
    table: StepsTable, session: Session
) -> None:
    rng = np.random.default_rng(11)
    logits = np.round(rng.normal(size=5000) * 4, 1)  # many exact ties
    logits[4000] = -np.inf
    session.set_vector(logits)
    x = np.array(session.logits)
    # The reference: a full stable sort by logit, largest first, ties by index.
    expected = list(np.lexsort((np.arange(x.size), -x))[:TOP_ROWS])
    for temperature in (1.0, 1e-3, 30.0):  # at 1e-3 most probabilities are 0.0 (ties)
        session.temperature = temperature
        assert shown_classes(table) == expected
        p = torch.softmax(torch.tensor(x, dtype=torch.float32) / temperature, 0).double().numpy()
        shown = column_numbers(table, P, TOP_ROWS)
        assert np.all(np.diff(p[expected]) <= 0)  # never increasing down the table
        np.testing.assert_allclose(shown, p[expected], rtol=5e-4, atol=1e-30)
        # No class left out is more probable than one shown.
        assert np.delete(p, expected).max() <= p[expected].min()


def _name_fits(table: StepsTable, name: str) -> bool:
    width = table.view.fontMetrics().horizontalAdvance(name)
    return table.view.columnWidth(0) >= width


def test_the_name_column_fits_long_names_and_a_larger_font(
    table: StepsTable, session: Session
) -> None:
    long_name = "a rather long class name for the steps table"
    session.class_names = ("cat", long_name, "bird")
    assert cell(table, 1, 0) == long_name
    assert _name_fits(table, long_name)
    narrow = table.view.columnWidth(0)
    session.temperature = 0.5  # numbers change, names do not: the width stays
    assert table.view.columnWidth(0) == narrow
    font = table.view.font()
    font.setPointSize(font.pointSize() * 2)  # what presenter mode does
    table.view.setFont(font)
    assert table.view.columnWidth(0) > narrow
    assert _name_fits(table, long_name)


def test_a_temperature_change_asks_only_for_what_is_painted(
    session: Session, monkeypatch: pytest.MonkeyPatch, qtbot
) -> None:
    """At 1,000 rows a temperature tick must not size every row's name (it used to:
    ResizeToContents asked data() 8,500 times per tick, more than the paint)."""
    calls = []
    original = StepsModel.data
    # Patched before the model exists: PySide binds the override when it is created.
    monkeypatch.setattr(
        StepsModel, "data", lambda self, *args: calls.append(args) or original(self, *args)
    )
    table = shown_table(qtbot, session)
    session.set_vector(np.random.default_rng(1).normal(size=1_000))
    table.view.repaint()
    qtbot.wait(50)
    calls.clear()
    session.temperature = 2.0
    table.view.repaint()
    qtbot.wait(50)  # the header's delayed resize, where the extra calls came from
    visible_rows = table.view.rowAt(table.view.viewport().height() - 1) + 1
    assert 0 < visible_rows < 100
    # Each visible cell may be asked for each of its roles (about ten) in each paint (the
    # repaint and maybe a queued one or two); not each of the 1,001 rows.
    one_paint = 12 * 6 * (visible_rows + 1)
    assert 0 < len(calls) <= 3 * one_paint < 1_000 * 6, len(calls)
