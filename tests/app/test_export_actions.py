"""Export from the window (app/export_actions.py): menus, dialogs, files, clipboard, failures.

The window is the real one (tests/app/conftest.py). The export dialogs are
module functions in widgets/export_dialog.py, monkeypatched here with what a
person would choose; the dialogs themselves are tested at the end. Every file
is read back (tests/export_readback.py) and compared with torch.softmax.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QLabel, QTableView, QWidget

from softmax_lab.app.main_window import TAB_LOSS, TAB_STEPS
from softmax_lab.widgets import export_dialog
from softmax_lab.widgets.chart_export import ChartOptions
from softmax_lab.widgets.export_dialog import (
    ChartExportDialog,
    ChartRequest,
    TableExportDialog,
    TableRequest,
)
from tests import export_readback as rb

SEED = [2.0, 1.0, 0.1]
popup_menu_on_offscreen = pytest.mark.qt_log_ignore(
    r"^This plugin does not support raise\(\)$",
    r"^This plugin does not support grabbing the keyboard$",
    extend=True,
)


def softmax_ref(logits: Any, temperature: float = 1.0) -> np.ndarray:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(x / temperature, dim=-1).numpy()


def message(window: Any) -> str:
    bar = window.findChild(QWidget, "messageBar")
    return bar.findChild(QLabel, "messageText").text() if bar.isVisible() else ""


def action(window: Any, name: str) -> QAction:
    found = window.findChild(QAction, name)
    assert found is not None, f"no action {name!r}"
    return found


class Dialogs:
    """Stand-ins for the export dialogs: answer with queued choices, record the questions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.charts: list[ChartRequest | None] = []
        self.tables: list[TableRequest | None] = []
        self.confirm_answers: list[bool] = []
        self.asked: list[tuple[str, Any]] = []
        monkeypatch.setattr(export_dialog, "ask_chart_export", self._chart)
        monkeypatch.setattr(export_dialog, "ask_table_export", self._table)
        monkeypatch.setattr(export_dialog, "confirm_overwrite", self._confirm)

    def _chart(self, parent: Any, initial: ChartRequest, unavailable: Any = None) -> Any:
        self.asked.append(("chart", (initial, unavailable)))
        return self.charts.pop(0)

    def _table(self, parent: Any, initial: TableRequest) -> Any:
        self.asked.append(("table", initial))
        return self.tables.pop(0)

    def _confirm(self, parent: Any, path: Any) -> bool:
        self.asked.append(("confirm", Path(path)))
        return self.confirm_answers.pop(0)


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    return Dialogs(monkeypatch)


@pytest.fixture
def with_batch(window: Any, tmp_path: Path) -> Any:
    """The window with a 5 x 4 batch open (row i sure of class i % 4)."""
    data = np.zeros((5, 4))
    data[np.arange(5), np.arange(5) % 4] = 12.0
    path = tmp_path / "batch.npy"
    np.save(path, data)
    window.open_path(path)
    assert window.session.batch_analysis is not None
    window.batch_data = data
    return window


# -- menus ------------------------------------------------------------------------------


def test_menus_hold_the_actions_and_ctrl_e_asks_with_the_current_view(window, dialogs, qtbot):
    file_actions = window.file_menu.actions()
    tail = file_actions.index(window.file_menu_tail)
    names = [a.objectName() for a in file_actions[:tail]]
    assert "exportChartAction" in names and "exportTableAction" in names
    assert action(window, "exportChartAction").shortcut().toString() == "Ctrl+E"
    assert action(window, "exportTableAction").shortcut().toString() == "Ctrl+Shift+E"
    copy = action(window, "copyTableAction")
    assert copy in window.edit_menu.actions()
    assert copy.shortcut().toString() == "Ctrl+Shift+C"

    window.session.chart_view = "log-probabilities"
    dialogs.charts.append(None)  # the person cancels
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    ((kind, (initial, unavailable)),) = dialogs.asked
    assert kind == "chart" and initial.options.view == "log"
    assert Path(initial.path).suffix == ".png"
    assert "heatmap" in unavailable, "no batch is open: the dialog must say so"
    assert message(window) == ""


# -- charts: every view, every format, from the window --------------------------------------


def test_each_view_exports_from_the_window_in_each_format(with_batch, dialogs, tmp_path):
    window = with_batch
    session = window.session
    listeners = {name: len(signal) for name, signal in session.events.items()}
    size, dpi = (640, 400), 96.0
    for fmt in ("png", "svg", "pdf"):
        for view in ("probabilities", "log", "overflow", "steps", "heatmap"):
            path = tmp_path / f"{view}.{fmt}"
            options = ChartOptions(view=view, width=size[0], height=size[1], dpi=dpi)
            dialogs.charts.append(ChartRequest(str(path), options))
            action(window, "exportChartAction").trigger()
            assert path.exists(), (view, fmt, message(window))
            rb.check_file(path, fmt, size, dpi)
            assert "Saved" in message(window)
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
    # The exported views were built over a snapshot: none of them listens to the window's session.
    assert {name: len(signal) for name, signal in session.events.items()} == listeners
    session.update(temperature=2.0, batch_dim=0)  # the window still updates, with no errors
    assert session.analysis.result.temperature == 2.0


def test_exported_png_shows_the_windows_probabilities(window, dialogs, tmp_path, qtbot):
    window.session.set_vector([3.0, 1.0, 0.5, -1.0])
    window.session.target = None
    path = tmp_path / "chart.png"
    dialogs.charts.append(ChartRequest(str(path), ChartOptions(width=1600, height=1000, dpi=200)))
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    data = path.read_bytes()
    assert rb.png_size(data) == (1600, 1000)
    assert abs(rb.png_dpi(data)[0] - 200) < rb.DPI_TOLERANCE
    rgb = rb.png_pixels(data)
    assert rb.background(rgb) == (255, 255, 255)
    argmax = rb.bars(rb.colour_mask(rgb, rb.ARGMAX))
    plain = rb.bars(rb.colour_mask(rgb, rb.BAR))
    assert len(argmax) == 1 and len(plain) == 3
    heights = np.array([argmax[0][3] - argmax[0][2], *(b[3] - b[2] for b in plain)], float)
    p = softmax_ref([3.0, 1.0, 0.5, -1.0])
    np.testing.assert_allclose(heights / heights[0], p / p[0], atol=0.02)


def test_exported_svg_renders_back_with_the_bars_and_dark_theme_png_is_dark(
    window, dialogs, tmp_path
):
    window.session.target = None
    svg, png = tmp_path / "c.svg", tmp_path / "c.png"
    dialogs.charts += [
        ChartRequest(str(svg), ChartOptions()),
        ChartRequest(str(png), ChartOptions(theme="dark", width=800, height=500)),
    ]
    action(window, "exportChartAction").trigger()
    action(window, "exportChartAction").trigger()
    rgb = rb.render_svg(svg.read_bytes(), 1600, 1000)
    assert len(rb.bars(rb.colour_mask(rgb, rb.BAR))) == 2
    dark = rb.png_pixels(png.read_bytes())
    assert max(rb.background(dark)) < 60
    assert len(rb.bars(rb.colour_mask(dark, rb.BAR))) == 2


def test_export_does_not_disturb_the_window(window, dialogs, tmp_path, qtbot):
    chart = window.chart.plot_widget
    size_before = chart.size()
    x_range = chart.getPlotItem().getViewBox().viewRange()[0]
    view_before = window.session.chart_view
    dialogs.charts.append(ChartRequest(str(tmp_path / "x.png"), ChartOptions(view="log")))
    action(window, "exportChartAction").trigger()
    assert window.session.chart_view == view_before
    assert chart.parent() is not None and chart.isVisible()
    assert chart.getPlotItem().getViewBox().viewRange()[0] == x_range
    window.session.message = None  # the "Saved" note took some height: dismiss it
    qtbot.waitUntil(lambda: chart.size() == size_before)


def test_exports_that_cannot_happen_say_why(window, dialogs, tmp_path):
    cases = [
        (tmp_path / "h.png", ChartOptions(view="heatmap"), "needs a batch"),
        (tmp_path / "c.csv", ChartOptions(), ".png, .svg or .pdf"),
        (tmp_path / "no such folder" / "c.png", ChartOptions(), "No such file or directory"),
    ]
    for path, options, says in cases:
        dialogs.charts.append(ChartRequest(str(path), options))
        action(window, "exportChartAction").trigger()
        assert not path.exists()
        assert says in message(window), (path, message(window))
    assert not (tmp_path / "no such folder").exists()


# -- context menus on the charts ------------------------------------------------------------


def test_every_chart_has_export_and_copy_image_in_its_menu(with_batch, dialogs, tmp_path):
    window = with_batch
    actions = window.export_actions
    charts = actions.chart_widgets()
    assert set(charts) == {"main", "gradient", "overflow", "heatmap"}
    expected_view = {
        "main": "probabilities",
        "gradient": "gradient",
        "overflow": "overflow",
        "heatmap": "heatmap",
    }
    for chart, widget in charts.items():
        if chart == "heatmap":
            # pyqtgraph's own view menu, with our entries on top and its Export... hidden.
            menu = widget.getPlotItem().getViewBox().getMenu(None)
            names = [a.objectName() for a in menu.actions()]
            assert names[:2] == ["chartMenuExport", "chartMenuCopyImage"]
            assert all(not a.isVisible() for a in widget.scene().contextMenu)
        else:
            assert widget.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
            menu = actions.chart_menu(chart)
        export = next(a for a in menu.actions() if a.objectName() == "chartMenuExport")
        dialogs.charts.append(None)
        export.trigger()
        initial, unavailable = dialogs.asked[-1][1]
        assert initial.options.view == expected_view[chart], chart
        assert "heatmap" not in unavailable, "a batch is open"


def test_copy_image_puts_the_chart_on_the_clipboard(window):
    window.session.target = None
    menu = window.export_actions.chart_menu("main")
    copy = next(a for a in menu.actions() if a.objectName() == "chartMenuCopyImage")
    QApplication.clipboard().clear()
    copy.trigger()
    image = QApplication.clipboard().image()
    assert not image.isNull()
    assert (image.width(), image.height()) == (1600, 1000)
    rgb = rb.qimage_rgb(image)
    assert len(rb.bars(rb.colour_mask(rgb, rb.BAR))) == 2
    menu.deleteLater()


@popup_menu_on_offscreen
def test_right_click_on_the_chart_opens_its_menu(window, qtbot):
    plot = window.chart.plot_widget
    viewport = plot.viewport()
    from PySide6.QtGui import QContextMenuEvent

    centre = viewport.rect().center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre, viewport.mapToGlobal(centre))
    QApplication.sendEvent(viewport, event)
    menu = window.export_actions.context_menu
    assert menu is not None
    qtbot.waitUntil(menu.isVisible)
    assert [a.text() for a in menu.actions()] == ["Export chart…", "Copy image"]
    menu.close()
    qtbot.waitUntil(lambda: window.export_actions.context_menu is None)


# -- tables ---------------------------------------------------------------------------------


def read_csv_tables(text: str) -> list[list[list[str]]]:
    """Tables separated by blank lines, each a list of rows."""
    tables: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if not row:
            tables.append([])
        else:
            tables[-1].append(row)
    return [t for t in tables if t]


def test_probability_table_round_trips_through_csv(window, dialogs, tmp_path, qtbot):
    logits = [2.5, -1.0, 0.25, 4.0]
    window.session.set_vector(logits, ["cat", "dog", "=1+1", "bird"])
    window.session.update(temperature=1.5, target=3)
    path = tmp_path / "t.csv"
    dialogs.tables.append(TableRequest(str(path), "probabilities", "csv"))
    qtbot.keyClick(
        window,
        Qt.Key.Key_E,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    probability, stats = read_csv_tables(path.read_text(encoding="utf-8"))
    header = probability[1]
    assert header[0] == "class" and header[4] == "probability"
    rows = probability[2:6]
    assert [r[0] for r in rows] == ["cat", "dog", "'=1+1", "bird (target)"]
    p = softmax_ref(logits, 1.5)
    np.testing.assert_allclose([float(r[4]) for r in rows], p, atol=5e-4)
    assert float(probability[6][4]) == pytest.approx(1.0, abs=1e-3)  # the sum row
    ce = dict((r[0], r[1]) for r in stats[2:])
    expected_ce = -np.log(p[3])
    assert float(next(v for k, v in ce.items() if k.startswith("cross-entropy"))) == pytest.approx(
        expected_ce, abs=5e-4
    )


def test_probability_table_json_is_the_json_contract(window, dialogs, tmp_path):
    logits = [1.0, 3.0, -2.0]
    window.session.set_vector(logits)
    window.session.update(temperature=0.5, dtype="float64", target=1)
    path = tmp_path / "t.json"
    dialogs.tables.append(TableRequest(str(path), "probabilities", "json"))
    action(window, "exportTableAction").trigger()
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["dtype"] == "float64" and doc["temperature"] == 0.5
    (row,) = doc["rows"]
    p = softmax_ref(logits, 0.5)
    np.testing.assert_allclose(row["probabilities"], p, rtol=1e-12)
    assert row["target"] == 1
    assert row["cross_entropy"] == pytest.approx(-np.log(p[1]), rel=1e-9)


def test_steps_table_round_trips_through_csv_json_markdown_and_latex(window, dialogs, tmp_path):
    logits = [1000.0, 999.0, 998.0]
    window.session.set_vector(logits)
    window.session.dtype = "float32"
    window.tabs.setCurrentIndex(TAB_STEPS)
    paths = {
        fmt: tmp_path / f"s.{suffix}"
        for fmt, suffix in (("csv", "csv"), ("json", "json"), ("markdown", "md"), ("latex", "tex"))
    }
    for fmt, path in paths.items():
        dialogs.tables.append(TableRequest(str(path), "steps", fmt))
        action(window, "exportTableAction").trigger()
        assert dialogs.asked[-1][1].kind == "steps", "the Step-by-step tab preselects its table"
    p = softmax_ref(logits)
    (table,) = read_csv_tables(paths["csv"].read_text(encoding="utf-8"))
    header = table[1]
    p_col, naive_col = header.index("p"), header.index("naive p")
    np.testing.assert_allclose([float(r[p_col]) for r in table[2:5]], p, atol=5e-4)
    assert [r[naive_col] for r in table[2:5]] == ["nan"] * 3, "float32 exp(1000) overflows"
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    col = doc["header"].index("p")
    np.testing.assert_allclose([r[col] for r in doc["rows"]], p, atol=5e-4)
    assert "| class" in paths["markdown"].read_text(encoding="utf-8")
    assert "\\toprule" in paths["latex"].read_text(encoding="utf-8")


# -- clipboard --------------------------------------------------------------------------------


def test_copy_table_puts_tsv_and_html_on_the_clipboard(window, qtbot):
    logits = [0.5, 2.0, -1.0]
    window.session.set_vector(logits, ["a", "b", "c"])
    window.tabs.setCurrentIndex(TAB_LOSS)  # not a table tab: the probability table
    QApplication.clipboard().clear()
    qtbot.keyClick(
        window,
        Qt.Key.Key_C,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    mime = QApplication.clipboard().mimeData()
    assert mime.hasText() and mime.hasHtml()
    rows = list(csv.reader(io.StringIO(mime.text()), delimiter="\t"))
    assert rows[0][0] == "class" and rows[0][4] == "probability"
    p = softmax_ref(logits)
    np.testing.assert_allclose([float(r[4]) for r in rows[1:4]], p, atol=5e-4)
    html = mime.html()
    assert "<table" in html and html.count("<tr>") == 5  # header, 3 classes, sum
    cells = re.findall(r"<td[^>]*>(?:<b>)?([^<]*)", html)
    assert f"{p[1]:.3f}" in cells


def test_copy_table_on_the_steps_tab_matches_the_displayed_numbers(window, qtbot):
    logits = [1.5, 0.0, -0.5, 3.0]
    window.session.set_vector(logits)
    window.session.temperature = 2.0
    window.tabs.setCurrentIndex(TAB_STEPS)
    action(window, "copyTableAction").trigger()
    rows = list(csv.reader(io.StringIO(QApplication.clipboard().mimeData().text()), delimiter="\t"))
    p_col = rows[0].index("p")
    copied = np.array([float(r[p_col]) for r in rows[1:5]])
    view = window.findChild(QTableView, "stepsTableView")
    model = view.model()
    shown_col = next(
        c
        for c in range(model.columnCount())
        if str(model.headerData(c, Qt.Orientation.Horizontal)).startswith("p =")
    )
    shown = np.array([float(model.index(r, shown_col).data()) for r in range(4)])
    np.testing.assert_allclose(copied, shown, atol=5e-4)
    np.testing.assert_allclose(copied, softmax_ref(logits, 2.0), atol=5e-4)
    assert "step-by-step" in message(window)


# -- overwrite, failures ------------------------------------------------------------------------


def test_declining_the_overwrite_keeps_the_old_file_and_accepting_replaces_it(
    window, dialogs, tmp_path
):
    new = tmp_path / "new.pdf"
    dialogs.charts.append(ChartRequest(str(new), ChartOptions()))
    action(window, "exportChartAction").trigger()
    rb.check_pdf(new.read_bytes())
    assert not any(kind == "confirm" for kind, _ in dialogs.asked), (
        "a new file needs no confirmation"
    )

    path = tmp_path / "chart.png"
    path.write_bytes(b"old contents")
    dialogs.charts += [
        ChartRequest(str(path), ChartOptions()),
        ChartRequest(str(path), ChartOptions()),
    ]
    dialogs.confirm_answers += [False, True]
    action(window, "exportChartAction").trigger()
    assert ("confirm", path) in dialogs.asked
    assert path.read_bytes() == b"old contents"
    action(window, "exportChartAction").trigger()
    assert path.read_bytes()[:8] == rb.PNG_SIGNATURE
    table = tmp_path / "t.csv"
    table.write_text("old\n")
    dialogs.tables += [TableRequest(str(table), "probabilities", "csv")]
    dialogs.confirm_answers += [False]
    action(window, "exportTableAction").trigger()
    assert table.read_text() == "old\n"


@pytest.mark.parametrize("what", ["chart", "table"])
def test_a_failed_write_keeps_the_old_file_and_says_why(
    window, dialogs, tmp_path, monkeypatch, what
):
    path = tmp_path / ("out.svg" if what == "chart" else "out.csv")
    path.write_bytes(b"precious")

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    dialogs.confirm_answers.append(True)
    if what == "chart":
        dialogs.charts.append(ChartRequest(str(path), ChartOptions()))
        action(window, "exportChartAction").trigger()
    else:
        dialogs.tables.append(TableRequest(str(path), "steps", "csv"))
        action(window, "exportTableAction").trigger()
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "a temporary file was left"
    text = message(window)
    assert (
        "Could not save out." in text and "Permission denied" in text and "left as it was" in text
    )


# -- the dialogs themselves ----------------------------------------------------------------------


def test_chart_dialog_reads_its_fields(qtbot, tmp_path):
    dialog = ChartExportDialog(
        ChartRequest(
            str(tmp_path / "softmax-probabilities.png"), ChartOptions(width=1600, height=1000)
        ),
        {"heatmap": "needs a batch"},
    )
    qtbot.addWidget(dialog)
    heatmap = dialog.view_combo.model().item(dialog.view_combo.findData("heatmap"))
    assert not heatmap.isEnabled() and heatmap.toolTip() == "needs a batch"
    dialog.view_combo.setCurrentIndex(dialog.view_combo.findData("steps"))
    assert dialog.width_box.text() == "auto", "a table sizes itself to its content"
    assert dialog.path_row.edit.text().endswith("softmax-steps.png")
    path_edit = dialog.path_row.edit
    path_edit.clear()
    qtbot.keyClicks(path_edit, str(tmp_path / "slide.svg"))
    dialog.dpi_box.setValue(300)
    dialog.theme_combo.setCurrentText("dark")
    request = dialog.request()
    assert request.path == str(tmp_path / "slide.svg")
    assert request.options == ChartOptions(
        view="steps", fmt="svg", width=None, height=None, dpi=300.0, theme="dark"
    )
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    assert save.isEnabled()
    path_edit.setText(str(tmp_path / "slide.gif"))
    assert not save.isEnabled() and "not .gif" in dialog.error.text()
    path_edit.setText(str(tmp_path / "noext"))
    assert save.isEnabled() and dialog.request().path.endswith("noext.png")


def test_table_dialog_reads_its_fields(qtbot, tmp_path):
    dialog = TableExportDialog(TableRequest(str(tmp_path / "t.csv"), "steps", "csv"))
    qtbot.addWidget(dialog)
    assert dialog.kind_combo.currentData() == "steps"
    dialog.path_row.edit.setText(str(tmp_path / "t.tex"))
    assert dialog.request() == TableRequest(str(tmp_path / "t.tex"), "steps", "latex")
    dialog.path_row.edit.setText(str(tmp_path / "t.png"))
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled()
