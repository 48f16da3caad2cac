"""The batch view: a heatmap of an (N, C) batch's probabilities and a per-row table.

It renders ``session.batch_analysis`` (a :class:`~softmax_lab.compute.batch.BatchResult`)
and writes one intent, ``session.batch_dim``. Everything that needs the
controller (load a row into the editor, open a file, load targets, cancel) is a
signal the main window connects.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets import style

EMPTY_TEXT = (
    "Open a .npy, .npz, .pt, .safetensors or .csv file (File → Open, or drop it on the "
    "window) to see a batch"
)
DIM_CHOICES = (
    (1, "dim=1 (each row sums to 1)"),
    (0, "dim=0 (each column sums to 1 — the classic mistake)"),
)
SELECTION_PEN = "#D55E00"
# A row sum this far from 1 is not a distribution (float16 rounding stays well inside).
SUM_TOLERANCE = 1e-2
_PERCENT = re.compile(r"(\d+)%\s*$")

Index = QModelIndex | QPersistentModelIndex


class BatchRowModel(QAbstractTableModel):
    """One line per batch row, read straight from the result's arrays (no item per row)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._columns: list[tuple[str, str, np.ndarray]] = []
        self._order = np.zeros(0, dtype=np.int64)
        self._names: tuple[str, ...] | None = None
        self._sort = (0, Qt.SortOrder.AscendingOrder)

    def set_content(self, result: Any, batch: LoadedBatch | None) -> None:
        """Show ``result`` (a BatchResult or None); keeps the current sort."""
        self.beginResetModel()
        self._columns = [] if result is None else _columns(result, batch)
        n = 0 if result is None else int(result.shape[0])
        c = 0 if result is None else int(result.shape[1])
        names = batch.class_names if batch is not None else None
        self._names = names if names is not None and len(names) == c else None
        self._order = self._sorted(n)
        self.endResetModel()

    def batch_row(self, model_row: int) -> int:
        return int(self._order[model_row])

    def model_row(self, batch_row: int) -> int | None:
        hits = np.flatnonzero(self._order == batch_row)
        return int(hits[0]) if hits.size else None

    def column_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _, _ in self._columns)

    # -- Qt model API ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else int(self._order.shape[0])

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self._columns):
            return self._columns[section][1]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        key, _, values = self._columns[index.column()]
        value = values[self._order[index.row()]]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(key, value)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and _is_bad(key, value):
            return QColor(style.BAD_BACKGROUND)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        self._order = self._sorted(self._order.shape[0])
        self.layoutChanged.emit()

    # -- helpers --------------------------------------------------------------------

    def _sorted(self, n: int) -> np.ndarray:
        column, order = self._sort
        if not 0 <= column < len(self._columns) or n == 0:
            return np.arange(n, dtype=np.int64)
        values = self._columns[column][2].astype(np.float64)
        if order == Qt.SortOrder.DescendingOrder:
            values = -values  # NaN stays NaN, and argsort puts NaN last either way
        return np.argsort(values, kind="stable").astype(np.int64)

    def _text(self, key: str, value: Any) -> str:
        if key == "row":
            return str(int(value))
        if key in ("argmax", "target"):
            k = int(value)
            if k < 0:
                return "ignored" if key == "target" else "nan"
            return f"{k}: {self._names[k]}" if self._names else str(k)
        return style.format_number(float(value))


def _columns(result: Any, batch: LoadedBatch | None) -> list[tuple[str, str, np.ndarray]]:
    n = int(result.shape[0])
    cols: list[tuple[str, str, np.ndarray]] = [("row", "row", np.arange(n))]
    targets = batch.targets if batch is not None else None
    if targets is not None and len(targets) == n:
        cols.append(("target", "target", np.asarray(targets)))
    if result.dim == 1:
        # With dim=0 these are per column, not per row: the table leaves them out.
        cols += [
            ("argmax", "argmax", result.argmax),
            ("max", "max probability", result.max_probability),
            ("entropy", "entropy (nats)", result.entropy),
        ]
    if result.cross_entropy is not None:
        header = "cross-entropy" if result.dim == 1 else "cross-entropy (dim=0, wrong)"
        cols.append(("ce", header, result.cross_entropy))
    cols.append(("sum", "row sum", result.row_sums))
    return cols


def _is_bad(key: str, value: Any) -> bool:
    if key in ("row", "argmax", "target"):
        return key == "argmax" and int(value) < 0
    v = float(value)
    if not np.isfinite(v):
        return True
    return key == "sum" and abs(v - 1.0) > SUM_TOLERANCE


class BatchView(QWidget):
    """Heatmap, per-row table and controls of the loaded batch.

    Signals
    -------
    rowActivated(int)
        The person clicked a heatmap row or a table row: load it into the editor.
    openRequested()
        The "Open…" button of the empty state.
    targetsRequested()
        The "Targets…" button: pick a file of target classes.
    cancelRequested()
        The "Cancel" button beside the progress bar.
    """

    rowActivated = Signal(int)
    openRequested = Signal()
    targetsRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batchView")
        self.session = session
        self._result: Any = None
        self._build()
        for name, slot in (
            ("batch", self.set_batch),
            ("batch_analysis", self.set_batch_analysis),
            ("batch_dim", self.set_batch_dim),
            ("selected_row", self.set_selected_row),
            ("busy", self.set_busy),
        ):
            session.events[name].connect(slot)
        self.set_batch(session.batch)
        self.set_batch_dim(session.batch_dim)
        self.set_busy(session.busy)

    # -- construction -------------------------------------------------------------------

    def _build(self) -> None:
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self._build_empty())
        self.stack.addWidget(self._build_content())

        self.busy_box = QWidget(self)
        self.busy_box.setObjectName("batchBusy")
        self.progress = QProgressBar(self.busy_box)
        self.progress.setObjectName("batchProgress")
        self.busy_label = QLabel(self.busy_box)
        self.cancel_button = QPushButton("Cancel", self.busy_box)
        self.cancel_button.setObjectName("batchCancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row = QHBoxLayout(self.busy_box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.busy_label)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.busy_box)

    def _build_empty(self) -> QWidget:
        page = QWidget(self)
        self.empty_label = QLabel(EMPTY_TEXT, page)
        self.empty_label.setObjectName("batchEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton("Open…", page)
        self.open_button.setObjectName("batchOpen")
        self.open_button.clicked.connect(self.openRequested)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        return page

    def _build_content(self) -> QWidget:
        page = QWidget(self)
        self.info_label = QLabel(page)
        self.info_label.setObjectName("batchInfo")
        self.info_label.setWordWrap(True)
        self.dim_combo = QComboBox(page)
        self.dim_combo.setObjectName("dimCombo")
        for dim, text in DIM_CHOICES:
            self.dim_combo.addItem(text, dim)
        self.dim_combo.currentIndexChanged.connect(self._on_batch_dim_changed)
        self.targets_button = QPushButton("Targets…", page)
        self.targets_button.setObjectName("batchTargets")
        self.targets_button.setToolTip("Load one target class per row to see the cross-entropy")
        self.targets_button.clicked.connect(self.targetsRequested)
        top = QHBoxLayout()
        top.addWidget(self.info_label, 1)
        top.addWidget(self.dim_combo)
        top.addWidget(self.targets_button)

        self.dim_warning = QLabel(page)
        self.dim_warning.setObjectName("dimWarning")
        self.dim_warning.setWordWrap(True)
        self.dim_warning.setStyleSheet(
            f"color: {style.BAD}; background: {style.BAD_BACKGROUND}; padding: 4px;"
        )
        self.error_label = QLabel(page)
        self.error_label.setObjectName("batchError")
        self.error_label.setStyleSheet(f"color: {style.BAD};")
        self.error_label.hide()

        splitter = QSplitter(Qt.Orientation.Horizontal, page)
        splitter.addWidget(self._build_heatmap(splitter))
        splitter.addWidget(self._build_table(splitter))
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        self.mean_ce_label = QLabel(page)
        self.mean_ce_label.setObjectName("meanCrossEntropy")
        self.mean_ce_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.dim_warning)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.mean_ce_label)
        return page

    def _build_heatmap(self, parent: QWidget) -> QWidget:
        box = QWidget(parent)
        self.heatmap = pg.PlotWidget(box, background=style.PLOT_BACKGROUND)
        self.heatmap.setObjectName("batchHeatmap")
        self.heatmap.setMinimumSize(240, 180)
        plot = self.heatmap.getPlotItem()
        plot.setLabel("left", "row")
        plot.setLabel("bottom", "class")
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(style.PLOT_FOREGROUND)
            axis.setTextPen(style.PLOT_FOREGROUND)
        plot.invertY(True)  # row 0 at the top, as the array prints
        plot.disableAutoRange()
        self.image = pg.ImageItem(axisOrder="row-major")
        plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0, 1),
            colorMap=pg.colormap.get("viridis"),
            label="probability",
            interactive=False,
            colorMapMenu=False,
        )
        self.colorbar.setImageItem(self.image, insert_in=plot)
        self.colorbar.axis.setPen(style.PLOT_FOREGROUND)
        self.colorbar.axis.setTextPen(style.PLOT_FOREGROUND)
        self.selection = pg.QtWidgets.QGraphicsRectItem()
        self.selection.setPen(pg.mkPen(SELECTION_PEN, width=2))
        self.selection.setZValue(10)
        self.selection.hide()
        plot.addItem(self.selection, ignoreBounds=True)
        self.heatmap.scene().sigMouseClicked.connect(self._on_heatmap_clicked)

        self.binning_label = QLabel(box)
        self.binning_label.setObjectName("heatmapBinning")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heatmap, 1)
        layout.addWidget(self.binning_label)
        return box

    def _build_table(self, parent: QWidget) -> QTableView:
        self.model = BatchRowModel(self)
        self.table = QTableView(parent)
        self.table.setObjectName("batchRowTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # Fixed row heights: the view never measures 100,000 rows.
        vertical = self.table.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        # Size columns from a sample of rows, not all 100,000 (that took ~1 s).
        self.table.horizontalHeader().setResizeContentsPrecision(64)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.clicked.connect(self._on_table_row_activated)
        self.table.activated.connect(self._on_table_row_activated)
        return self.table

    # -- session -> widget -------------------------------------------------------------

    def set_batch(self, batch: LoadedBatch | None) -> None:
        with signals_blocked(self.stack):
            self.stack.setCurrentIndex(0 if batch is None else 1)
        self.set_batch_analysis(self.session.batch_analysis)

    def set_batch_analysis(self, result: Any) -> None:
        self._result = result
        batch = self.session.batch
        before = self.model.column_keys()
        self.model.set_content(result, batch)
        if self.model.column_keys() != before:
            self.table.resizeColumnsToContents()
        self._render_heatmap(result)
        self._render_texts(result, batch)
        # A recompute (a temperature drag) must not scroll the table back to the selection.
        self._show_selected_row(self.session.selected_row, scroll=False)

    def set_batch_dim(self, dim: int) -> None:
        with signals_blocked(self.dim_combo):
            self.dim_combo.setCurrentIndex(self.dim_combo.findData(dim))
        self.error_label.hide()
        self._render_texts(self._result, self.session.batch)

    def set_selected_row(self, row: int | None) -> None:
        self._show_selected_row(row, scroll=True)

    def _show_selected_row(self, row: int | None, scroll: bool) -> None:
        result = self._result
        if row is None or result is None or not 0 <= row < result.shape[0]:
            self.selection.hide()
            with signals_blocked(self.table):
                self.table.clearSelection()
            return
        width = result.heatmap.shape[1] * result.heatmap_col_bin
        self.selection.setRect(QRectF(-0.5, row - 0.5, width, 1))
        self.selection.show()
        model_row = self.model.model_row(row)
        if model_row is not None:
            index = self.model.index(model_row, 0)
            flags = (
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
            )
            selection = self.table.selectionModel()
            with signals_blocked(self.table):
                if scroll:
                    selection.setCurrentIndex(index, flags)
                    self.table.scrollTo(index)
                else:
                    selection.select(index, flags)  # the current index would scroll

    def set_busy(self, text: str) -> None:
        self.busy_box.setVisible(bool(text))
        self.busy_label.setText(text)
        match = _PERCENT.search(text or "")
        if match:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(match.group(1)))
        else:
            self.progress.setRange(0, 0)  # busy, amount unknown

    # -- widget -> session / main window -----------------------------------------------

    def _on_batch_dim_changed(self, index: int) -> None:
        try:
            self.session.batch_dim = self.dim_combo.itemData(index)
        except InvalidInputError as exc:
            self.error_label.setText(str(exc))
            self.error_label.show()

    def _on_table_row_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.rowActivated.emit(self.model.batch_row(index.row()))

    def _on_heatmap_clicked(self, event: Any) -> None:
        result = self._result
        if result is None or event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        view = self.heatmap.getPlotItem().getViewBox()
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        point = view.mapSceneToView(event.scenePos())
        # Pixels are centred on their indices: row i spans i - 0.5 .. i + 0.5.
        row = int(np.floor(point.y() + 0.5))
        width = result.heatmap.shape[1] * result.heatmap_col_bin
        if 0 <= row < result.shape[0] and -0.5 <= point.x() < width - 0.5:
            self.rowActivated.emit(row)

    # -- rendering ----------------------------------------------------------------------

    def _render_heatmap(self, result: Any) -> None:
        if result is None:
            self.image.clear()
            self.binning_label.setText("")
            return
        rb, cb = result.heatmap_row_bin, result.heatmap_col_bin
        rows, cols = result.heatmap.shape
        # Centre pixels on integer indices so ticks fall on rows and classes.
        rect = QRectF(-0.5, -0.5, cols * cb, rows * rb)
        previous = self.image.image
        self.image.setImage(result.heatmap, autoLevels=False, levels=(0.0, 1.0), rect=rect)
        if previous is None or previous.shape != result.heatmap.shape:
            self.heatmap.getPlotItem().getViewBox().setRange(rect, padding=0)
        self.binning_label.setText(_binning_text(rb, cb))

    def _render_texts(self, result: Any, batch: LoadedBatch | None) -> None:
        self.info_label.setText(_info_text(result, batch))
        self.mean_ce_label.setText(_cross_entropy_text(result, batch))
        warning = _dim_warning(result, self.session.batch_dim)
        self.dim_warning.setText(warning)
        self.dim_warning.setVisible(bool(warning))


def _binning_text(rb: int, cb: int) -> str:
    if rb == 1 and cb == 1:
        return "one pixel per probability; click a row to load it into the editor"
    parts = [f"{rb} rows"] if rb > 1 else []
    parts += [f"{cb} classes"] if cb > 1 else []
    return f"each pixel = max over {' × '.join(parts)} (keeps peaks); click a row to load it"


def _info_text(result: Any, batch: LoadedBatch | None) -> str:
    if batch is None:
        return ""
    n, c = batch.data.shape
    parts = [f"{n:,} × {c:,}"]
    if batch.path is not None:
        parts.append(batch.path.name)
    if batch.array_name:
        parts.append(f"array {batch.array_name!r}")
    if result is not None:
        req = result.request
        if _preview_rows(result, batch):
            parts.append(f"first {result.shape[0]:,} rows shown while the rest is computed")
        parts.append(f"T = {style.format_number(req.temperature)}, {req.dtype} on {result.device}")
        unit = "rows" if result.dim == 1 else "columns"
        if result.naive_overflow_rows:
            parts.append(
                f"{result.naive_overflow_rows:,} {unit} overflow a naive exp/sum in {req.dtype}"
            )
        if result.nonfinite_count:
            parts.append(f"{result.nonfinite_count:,} logits are NaN or ±inf")
    return " · ".join(parts)


def _cross_entropy_text(result: Any, batch: LoadedBatch | None) -> str:
    if batch is not None and batch.targets is None:
        return "No targets: load them (Targets…) to see the cross-entropy."
    if result is None or result.mean_cross_entropy is None:
        return ""
    text = f"mean cross-entropy: {style.format_number(result.mean_cross_entropy, 6)} nats"
    rows = _preview_rows(result, batch)
    if rows:
        text = f"mean cross-entropy of the first {rows:,} rows (so far): " + text.split(": ", 1)[1]
    smoothing = result.request.label_smoothing
    if smoothing:
        text += f" (label smoothing {style.format_number(smoothing)})"
    if result.dim == 0:
        text += " — computed with dim=0, so not the loss you want"
    return text


def _preview_rows(result: Any, batch: LoadedBatch | None) -> int:
    """The rows a first-view preview covers (app/controller.py), or 0 for a full result."""
    if result is None or batch is None or result.shape[0] >= batch.data.shape[0]:
        return 0
    return int(result.shape[0])


def _dim_warning(result: Any, dim: int) -> str:
    if result is None or result.dim != dim:
        if dim == 0:
            return "dim=0 normalises across the batch: rows will not sum to 1."
        return ""
    if result.dim != 0:
        return ""
    sums = result.row_sums[np.isfinite(result.row_sums)]
    if sums.size == 0:
        return "dim=0 normalised across the batch: every row sum is NaN."
    lo, hi = style.format_number(float(sums.min()), 3), style.format_number(float(sums.max()), 3)
    return (
        f"rows sum to {lo} … {hi}, not 1: dim=0 normalised across the batch "
        "(each column sums to 1). Use dim=1 for one distribution per row."
    )
