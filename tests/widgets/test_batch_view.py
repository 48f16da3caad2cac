"""The batch view, driven with real Qt events and checked against torch on the same data."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QPushButton, QTableView, QWidget

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.widgets import style
from softmax_lab.widgets.batch_view import EMPTY_TEXT, BatchView


def _data(n: int = 12, c: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c)) * 2.0


def _targets(n: int = 12, c: int = 5, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, c, n)


def _load(
    session: Session, data: np.ndarray, targets: np.ndarray | None = None, **kw
) -> Controller:
    session.dtype = "float64"
    fields = {"path": None, "class_names": None, "array_name": None, **kw}
    session.batch = LoadedBatch(data, targets=targets, **fields)
    controller = Controller(session)
    controller.start()
    assert session.batch_analysis is not None
    return controller


def _shown(qtbot, session: Session) -> BatchView:
    view = BatchView(session)
    qtbot.addWidget(view)
    view.resize(1000, 650)
    view.show()
    qtbot.waitExposed(view)
    return view


def _number(text: str) -> float:
    match = re.search(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)
    assert match, text
    return float(match.group(0))


def _cell(view: BatchView, row: int, header: str) -> str:
    model = view.model
    for column in range(model.columnCount()):
        if (
            model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
            == header
        ):
            return model.data(model.index(row, column))
    raise AssertionError(f"no column {header!r}")


def _headers(view: BatchView) -> list[str]:
    model = view.model
    return [
        model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
        for c in range(model.columnCount())
    ]


# -- contract -----------------------------------------------------------------------


@pytest.mark.parametrize("loaded", [False, True])
def test_contract(qtbot, session: Session, loaded: bool) -> None:
    if loaded:
        _load(session, _data(), _targets())
    view = BatchView(session)
    qtbot.addWidget(view)
    assert view.objectName() == "batchView"
    hint = view.minimumSizeHint()
    assert 100 <= hint.width() <= 1200 and 100 <= hint.height() <= 900
    view.resize(900, 600)
    image = view.grab().toImage()
    assert not image.isNull()
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)
    }
    assert len(colours) > 1
    for name, kind in (
        ("batchHeatmap", QWidget),
        ("dimCombo", QWidget),
        ("batchRowTable", QTableView),
        ("meanCrossEntropy", QLabel),
        ("batchCancel", QPushButton),
    ):
        assert view.findChild(kind, name) is not None, name


def test_empty_state_offers_open(qtbot, session: Session) -> None:
    view = _shown(qtbot, session)
    label = view.findChild(QLabel, "batchEmpty")
    assert label.isVisible() and label.text() == EMPTY_TEXT
    assert not view.findChild(QWidget, "batchHeatmap").isVisible()
    button = view.findChild(QPushButton, "batchOpen")
    with qtbot.waitSignal(view.openRequested, timeout=1000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    # Loading a batch swaps the empty state for the heatmap.
    _load(session, _data())
    assert view.findChild(QWidget, "batchHeatmap").isVisible()
    assert not label.isVisible()
    session.batch = None
    assert label.isVisible()


# -- heatmap --------------------------------------------------------------------------


def test_heatmap_shows_softmax_per_row(qtbot, session: Session) -> None:
    data = _data()
    _load(session, data)
    view = _shown(qtbot, session)
    expected = torch.softmax(torch.tensor(data), dim=1).numpy()
    np.testing.assert_allclose(view.image.image, expected, atol=1e-7, rtol=0)
    assert view.image.getLevels() == pytest.approx((0.0, 1.0))
    assert not view.findChild(QLabel, "dimWarning").isVisible()
    assert "one pixel per probability" in view.findChild(QLabel, "heatmapBinning").text()


def test_dim_combo_switches_to_columns_and_warns(qtbot, session: Session) -> None:
    data = _data()
    _load(session, data)
    view = _shown(qtbot, session)
    combo = view.findChild(QWidget, "dimCombo")
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert session.batch_dim == 0
    assert "classic mistake" in combo.currentText()
    image = view.image.image
    np.testing.assert_allclose(image.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        image, torch.softmax(torch.tensor(data), dim=0).numpy(), atol=1e-7, rtol=0
    )
    warning = view.findChild(QLabel, "dimWarning")
    assert warning.isVisible()
    sums = torch.softmax(torch.tensor(data), dim=0).sum(dim=1).numpy()
    match = re.search(r"rows sum to (\S+) … (\S+), not 1", warning.text())
    assert match, warning.text()
    assert float(match.group(1)) == pytest.approx(sums.min(), rel=1e-2)
    assert float(match.group(2)) == pytest.approx(sums.max(), rel=1e-2)
    # Row sums that are not 1 are marked in the table.
    bad = view.model.data(
        view.model.index(0, _headers(view).index("row sum")), Qt.ItemDataRole.BackgroundRole
    )
    assert bad == QColor(style.BAD_BACKGROUND)

    qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert session.batch_dim == 1
    assert not warning.isVisible()
    np.testing.assert_allclose(view.image.image.sum(axis=1), 1.0, rtol=1e-6)


def test_session_dim_updates_the_combo_without_writing_back(qtbot, session: Session) -> None:
    _load(session, _data())
    view = _shown(qtbot, session)
    combo = view.findChild(QWidget, "dimCombo")
    echoes: list[int] = []
    combo.currentIndexChanged.connect(echoes.append)
    session.batch_dim = 0
    assert combo.currentData() == 0
    assert echoes == []  # pushed with the combo's signals blocked: nothing to write back


def test_heatmap_click_activates_the_row(qtbot, session: Session) -> None:
    _load(session, _data(n=20))
    view = _shown(qtbot, session)
    plot = view.findChild(QWidget, "batchHeatmap")
    box = plot.getPlotItem().getViewBox()
    # Row 0 at the top; each row's pixels span row - 0.5 .. row + 0.5 on y.
    assert box.yInverted()
    assert view.image.mapRectToView(view.image.boundingRect()) == QRectF(-0.5, -0.5, 5, 20)
    for row, offset in ((0, -0.4), (7, 0.4), (19, -0.3), (12, 0.0)):
        scene_point = box.mapViewToScene(QPointF(2.0, row + offset))
        pos = plot.mapFromScene(scene_point)
        with qtbot.waitSignal(view.rowActivated, timeout=1000) as blocker:
            qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        assert blocker.args == [row]


def test_selected_row_is_outlined_and_selected(qtbot, session: Session) -> None:
    _load(session, _data(n=30))
    view = _shown(qtbot, session)
    session.selected_row = 17
    assert view.selection.isVisible()
    assert view.selection.rect().center().y() == pytest.approx(17.0)
    selected = view.table.selectionModel().selectedRows()
    assert [view.model.batch_row(i.row()) for i in selected] == [17]
    session.selected_row = None
    assert not view.selection.isVisible()
    assert not view.table.selectionModel().selectedRows()


def test_large_batch_is_binned_and_says_so(qtbot, session: Session) -> None:
    data = _data(n=100_000, c=4, seed=2)
    data[54_321, 2] = 60.0  # one confident row hidden among 100,000
    _load(session, data)
    view = _shown(qtbot, session)
    result = session.batch_analysis
    assert result.heatmap_row_bin == 49
    assert view.image.image.shape == (2041, 4)
    assert "each pixel = max over 49 rows" in view.findChild(QLabel, "heatmapBinning").text()
    assert view.image.image[54_321 // 49, 2] == pytest.approx(1.0)
    # The table is a model: 100,000 rows, a handful of widgets.
    assert view.model.rowCount() == 100_000
    assert len(view.table.findChildren(QWidget)) < 40
    assert view.table.indexWidget(view.model.index(0, 0)) is None
    # Clicking in a binned heatmap still names one row.
    plot = view.findChild(QWidget, "batchHeatmap")
    pos = plot.mapFromScene(plot.getPlotItem().getViewBox().mapViewToScene(QPointF(1.0, 50_000.0)))
    with qtbot.waitSignal(view.rowActivated, timeout=1000) as blocker:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert abs(blocker.args[0] - 50_000) <= 100


# -- table ------------------------------------------------------------------------------


def test_table_shows_per_row_statistics(qtbot, session: Session) -> None:
    data, targets = _data(), _targets()
    _load(session, data, targets)
    view = _shown(qtbot, session)
    x = torch.tensor(data)
    p, logp = torch.softmax(x, dim=1), torch.log_softmax(x, dim=1)
    ce = F.cross_entropy(x, torch.tensor(targets), reduction="none")
    assert _headers(view) == [
        "row",
        "target",
        "argmax",
        "max probability",
        "entropy (nats)",
        "cross-entropy",
        "row sum",
    ]
    for row in (0, 5, 11):
        assert _cell(view, row, "row") == str(row)
        assert _cell(view, row, "target") == str(targets[row])
        assert _cell(view, row, "argmax") == str(int(p[row].argmax()))
        assert _number(_cell(view, row, "max probability")) == pytest.approx(
            float(p[row].max()), rel=1e-3
        )
        entropy = float(-(p[row] * logp[row]).sum())
        assert _number(_cell(view, row, "entropy (nats)")) == pytest.approx(entropy, rel=1e-3)
        assert _number(_cell(view, row, "cross-entropy")) == pytest.approx(float(ce[row]), rel=1e-3)
        assert _number(_cell(view, row, "row sum")) == pytest.approx(1.0)


def test_argmax_uses_class_names(qtbot, session: Session) -> None:
    data = np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])
    _load(session, data, class_names=("cat", "dog", "fish"))
    view = _shown(qtbot, session)
    assert _cell(view, 0, "argmax") == "1: dog"
    assert _cell(view, 1, "argmax") == "0: cat"


def test_table_click_activates_the_row(qtbot, session: Session) -> None:
    _load(session, _data(n=40), _targets(n=40))
    view = _shown(qtbot, session)
    table = view.findChild(QTableView, "batchRowTable")
    for row in (3, 8):
        rect = table.visualRect(view.model.index(row, 1))
        assert rect.isValid()
        with qtbot.waitSignal(view.rowActivated, timeout=1000) as blocker:
            qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert blocker.args == [row]


def test_sorting_by_entropy_keeps_rows_straight(qtbot, session: Session) -> None:
    data = _data(n=40, seed=3)
    _load(session, data)
    view = _shown(qtbot, session)
    table = view.findChild(QTableView, "batchRowTable")
    column = _headers(view).index("entropy (nats)")
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(
        header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2)
    )
    p = torch.softmax(torch.tensor(data), dim=1)
    entropy = (-(p * torch.log(p)).sum(dim=1)).numpy()
    order = np.argsort(entropy)
    if header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder:
        order = order[::-1]
    assert _cell(view, 0, "row") == str(order[0])
    # Clicking the first line activates the batch row it shows, not row 0.
    rect = table.visualRect(view.model.index(0, 0))
    with qtbot.waitSignal(view.rowActivated, timeout=1000) as blocker:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [int(order[0])]


def test_activated_row_loads_into_the_editor(qtbot, session: Session) -> None:
    data, targets = _data(n=15), _targets(n=15)
    controller = _load(session, data, targets)
    view = _shown(qtbot, session)
    view.rowActivated.connect(controller.select_row)
    table = view.findChild(QTableView, "batchRowTable")
    rect = table.visualRect(view.model.index(6, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    np.testing.assert_array_equal(session.logits, data[6])
    assert session.target == targets[6]
    assert view.selection.isVisible()
    assert view.selection.rect().center().y() == pytest.approx(6.0)


# -- loss, targets, busy ---------------------------------------------------------------------


def test_mean_cross_entropy_matches_torch(qtbot, session: Session) -> None:
    data, targets = _data(n=64, c=7, seed=4), _targets(n=64, c=7, seed=5)
    _load(session, data, targets)
    view = _shown(qtbot, session)
    label = view.findChild(QLabel, "meanCrossEntropy")
    expected = float(F.cross_entropy(torch.tensor(data), torch.tensor(targets)))
    assert _number(label.text().split(":", 1)[1]) == pytest.approx(expected, rel=1e-5)
    # Label smoothing flows through the controller into the label.
    session.label_smoothing = 0.2
    expected = float(
        F.cross_entropy(torch.tensor(data), torch.tensor(targets), label_smoothing=0.2)
    )
    assert _number(label.text().split(":", 1)[1]) == pytest.approx(expected, rel=1e-5)
    assert "label smoothing 0.2" in label.text()


def test_without_targets_the_view_asks_for_them(qtbot, session: Session) -> None:
    _load(session, _data())
    view = _shown(qtbot, session)
    assert "Targets…" in view.findChild(QLabel, "meanCrossEntropy").text()
    assert "cross-entropy" not in _headers(view)
    button = view.findChild(QPushButton, "batchTargets")
    with qtbot.waitSignal(view.targetsRequested, timeout=1000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_busy_bar_and_cancel(qtbot, session: Session) -> None:
    view = _shown(qtbot, session)
    busy = view.findChild(QWidget, "batchBusy")
    cancel = view.findChild(QPushButton, "batchCancel")
    assert not busy.isVisible()
    session.busy = "computing batch statistics … 40%"
    assert busy.isVisible() and cancel.isVisible()
    assert view.progress.value() == 40
    with qtbot.waitSignal(view.cancelRequested, timeout=1000):
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    session.busy = "opening logits.npy"
    assert view.progress.maximum() == 0  # no percentage: an indeterminate bar
    session.busy = ""
    assert not busy.isVisible()


def test_info_line_names_the_batch(qtbot, session: Session, tmp_path) -> None:
    data = _data(n=9, c=3)
    data[2, 1] = np.nan
    session.batch = LoadedBatch(data, path=tmp_path / "logits.npz", array_name="val_logits")
    Controller(session).start()
    view = _shown(qtbot, session)
    text = view.findChild(QLabel, "batchInfo").text()
    assert "9 × 3" in text and "logits.npz" in text and "'val_logits'" in text
    assert "1 logits are NaN" in text


def test_recompute_keeps_selection_and_scroll(qtbot, session: Session) -> None:
    _load(session, _data(n=300))
    view = _shown(qtbot, session)
    session.selected_row = 250
    bar = view.table.verticalScrollBar()
    assert bar.value() > 0  # scrolled to show row 250
    bar.setValue(0)  # the person scrolls back up, then drags the temperature
    session.temperature = 2.5
    assert session.batch_analysis.request.temperature == 2.5
    assert bar.value() == 0
    selected = view.table.selectionModel().selectedRows()
    assert [view.model.batch_row(i.row()) for i in selected] == [250]
    np.testing.assert_allclose(
        view.image.image, torch.softmax(torch.tensor(_data(n=300)) / 2.5, dim=1).numpy(), atol=1e-7
    )


def test_a_first_rows_preview_says_so_until_the_rest_arrives(
    qtbot, session: Session, monkeypatch
) -> None:
    """app/controller.py shows a big batch's first rows first; the view must not pass
    them off as the whole batch (nor their mean as the batch's loss)."""
    from softmax_lab.app import controller as controller_module

    monkeypatch.setattr(controller_module, "PREVIEW_ELEMENTS", 20)
    jobs: list = []

    class Held:  # a background executor that runs jobs when the test says
        def submit(self, job, done, failed, progress=None):
            jobs.append((job, done))

    data, targets = _data(40, 5), _targets(40, 5)
    session.dtype = "float64"
    Controller(session, background=Held()).start()
    view = _shown(qtbot, session)
    session.batch = LoadedBatch(data, None, targets=targets)
    job, done = jobs.pop(0)
    done(job.run())
    info = view.findChild(QLabel, "batchInfo").text()
    mean = view.findChild(QLabel, "meanCrossEntropy").text()
    assert "first 4 rows shown while the rest is computed" in info
    expected = F.cross_entropy(torch.from_numpy(data[:4]), torch.from_numpy(targets[:4]))
    assert mean.startswith("mean cross-entropy of the first 4 rows (so far)")
    assert _number(mean.split(":", 1)[1]) == pytest.approx(float(expected), rel=1e-5)
    assert view.model.rowCount() == 4
    job, done = jobs.pop(0)
    done(job.run())
    info = view.findChild(QLabel, "batchInfo").text()
    mean = view.findChild(QLabel, "meanCrossEntropy").text()
    assert "rest is computed" not in info and "40 × 5" in info
    expected = F.cross_entropy(torch.from_numpy(data), torch.from_numpy(targets))
    assert mean.startswith("mean cross-entropy: ")
    assert _number(mean.split(":", 1)[1]) == pytest.approx(float(expected), rel=1e-5)
    assert view.model.rowCount() == 40
