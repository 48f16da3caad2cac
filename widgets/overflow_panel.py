"""The overflow lab: the naive exp/sum beside the stable softmax, cell by cell.

Shows, for the editor's vector in the session's dtype and device, every step of
both paths (naive ``exp(x) / Σ exp(x)`` and stable ``exp(x − max) / Σ``, plus
``log(softmax(x))`` against ``log_softmax(x)``), marks the cells that failed in
red, says in words what happened, and places the largest ``x/T`` on a gauge
against the naive limit ``log(max)`` of each dtype.

Everything shown is read from ``session.analysis`` (a
:class:`~softmax_lab.compute.analysis.VectorAnalysis`); nothing is recomputed here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.app.session import Session
from softmax_lab.compute.dtypes import DTYPES, dtype_info
from softmax_lab.widgets import style
from softmax_lab.widgets.deferred import DeferredWhileHidden
from softmax_lab.widgets.ranking import largest

if TYPE_CHECKING:
    from softmax_lab.compute.analysis import VectorAnalysis
    from softmax_lab.compute.types import SoftmaxResult

# Readable from the back of a lecture room.
TITLE_PT = 16
VERDICT_PT = 15
BODY_PT = 13

LARGE_VECTOR = 1_000
"""Above this many classes the table shows a selection, not every class."""
MAX_ROWS = 200

# (SoftmaxResult attribute, header at T = 1, header at T != 1); column 0 is the class.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("scaled", "x", "x/T"),
    ("naive_exp", "naive exp(x)", "naive exp(x/T)"),
    ("naive_probabilities", "naive p = exp/Σ", "naive p = exp/Σ"),
    ("exp_shifted", "exp(x − max)", "exp((x − max)/T)"),
    ("probabilities", "stable p", "stable p"),
    ("log_of_softmax", "log(softmax(x))", "log(softmax(x/T))"),
    ("log_probabilities", "log_softmax(x)", "log_softmax(x/T)"),
)
NAIVE_EXP, NAIVE_P, EXP_SHIFTED, LOG_OF_SOFTMAX = 1, 2, 3, 5

_Index = QModelIndex | QPersistentModelIndex


def _bad_cells(result: SoftmaxResult) -> np.ndarray:
    """(columns, classes) mask of the cells to mark red, for row 0.

    NaN and +inf are always failures. -inf is a failure only in log(softmax(x))
    where log_softmax(x) is finite (a -inf logit legitimately gives -inf in
    both), and in x/T where the logit was finite (the dtype or the division could
    not hold it). Naive p is also marked wherever the row's naive path failed:
    dividing by an infinite sum gives finite zeros that are just as wrong as NaN.

    One column at a time, into a column-major mask: stacking the seven columns of
    262,144 classes into one float64 array to test it cost ~7 ms a temperature tick.
    """
    report = result.overflow
    bad = np.empty((len(COLUMNS), result.num_classes), dtype=bool)
    with np.errstate(invalid="ignore"):
        for column, (attr, _, _) in enumerate(COLUMNS):
            # NaN and +inf are the values that are not below +inf.
            np.less(getattr(result, attr)[0], np.inf, out=bad[column])
            np.logical_not(bad[column], out=bad[column])
        scaled_neg_inf = result.scaled[0] == -np.inf
        if scaled_neg_inf.any():
            original = np.asarray(result.request.logits, dtype=np.float64).reshape(-1)
            if original.shape[0] == bad.shape[1]:
                bad[0] |= scaled_neg_inf & np.isfinite(original)
    bad[NAIVE_P] |= report.naive_nonfinite[0]
    if report.naive_overflow[0] or report.naive_underflow[0]:
        bad[NAIVE_P] = True
    bad[LOG_OF_SOFTMAX] |= report.log_of_softmax_neg_inf[0]
    return bad


def _choose_rows(result: SoftmaxResult, failing: np.ndarray) -> np.ndarray:
    """Every class in order for small vectors; else failures first, then the largest logits.

    ``failing``: per class, whether any of its cells is marked. Within each group the
    largest x/T come first (those are the ones that overflow), then -inf logits, then
    NaN; ties in index order (widgets/ranking.py selects them without sorting the
    whole vector).
    """
    n = result.num_classes
    if n <= LARGE_VECTOR:
        return np.arange(n)
    scaled = result.scaled[0]
    # Usually no class fails, or every one does (a naive overflow marks every naive p):
    # then one group is the whole vector, selected without listing its indices.
    if not failing.any() or failing.all():
        return largest(None, scaled, MAX_ROWS)
    first = largest(np.flatnonzero(failing), scaled, MAX_ROWS)
    rest = largest(np.flatnonzero(~failing), scaled, MAX_ROWS - first.size)
    return np.concatenate([first, rest])


class OverflowTableModel(QAbstractTableModel):
    """Rows are classes (plus a Σ row); columns are the steps of both paths."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._names: list[str] = []
        self._values = np.zeros((0, len(COLUMNS)))
        self._bad = np.zeros((0, len(COLUMNS)), dtype=bool)
        self._sums = np.full(len(COLUMNS), np.nan)
        self._sum_present = np.zeros(len(COLUMNS), dtype=bool)
        self._headers = ["class", *(h for _, h, _ in COLUMNS)]
        self._bold = QFont()
        self._bold.setPointSize(BODY_PT)
        self._bold.setBold(True)

    def set_rows(
        self,
        names: list[str],
        values: np.ndarray,
        bad: np.ndarray,
        sums: np.ndarray,
        headers: list[str],
    ) -> None:
        """Replace every row; ``sums`` holds the Σ row (NaN-free cells where present).

        Same number of rows and same headers (a temperature tick): the cells change in
        place, without a model reset, so the view keeps its scroll position and does
        not lay itself out again.
        """
        same_shape = len(names) == len(self._names) and headers == self._headers
        if not same_shape:
            self.beginResetModel()
        self._names, self._values, self._bad, self._headers = names, values, bad, headers
        self._sums = sums
        self._sum_present = np.zeros(len(COLUMNS), dtype=bool)
        self._sum_present[[NAIVE_EXP, EXP_SHIFTED]] = True
        if not same_shape:
            self.endResetModel()
        elif names:
            last = self.index(self.rowCount() - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def clear(self) -> None:
        empty = np.zeros((0, len(COLUMNS)))
        self.set_rows([], empty, empty.astype(bool), np.full(len(COLUMNS), np.nan), self._headers)

    # -- Qt model API ---------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        if parent.isValid() or not self._names:
            return 0
        return len(self._names) + 1  # + the Σ row

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS) + 1

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._headers[section]
        if role == Qt.ItemDataRole.FontRole and orientation == Qt.Orientation.Horizontal:
            return self._bold
        return None

    def _cell(self, row: int, col: int) -> tuple[float, bool, bool]:
        """(value, present, bad) of a numeric cell (col >= 1)."""
        if row == len(self._names):
            value = float(self._sums[col - 1])
            present = bool(self._sum_present[col - 1])
            return value, present, present and not math.isfinite(value)
        return float(self._values[row, col - 1]), True, bool(self._bad[row, col - 1])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        is_sum = row == len(self._names)
        if col == 0:
            if role == Qt.ItemDataRole.DisplayRole:
                return "Σ" if is_sum else self._names[row]
            if role == Qt.ItemDataRole.FontRole and is_sum:
                return self._bold
            return None
        value, present, bad = self._cell(row, col)
        if role == Qt.ItemDataRole.DisplayRole:
            return style.format_number(value) if present else ""
        if role == Qt.ItemDataRole.UserRole:
            return value if present else None
        if role == Qt.ItemDataRole.ToolTipRole and present:
            why = "  ← failed (NaN, inf, or wrong because the naive sum failed)" if bad else ""
            return f"{value!r}{why}"
        if role == Qt.ItemDataRole.BackgroundRole and bad:
            return QColor(style.BAD_BACKGROUND)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(style.BAD if bad else style.TEXT)
        if role == Qt.ItemDataRole.FontRole and (bad or is_sum):
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def is_bad(self, row: int, col: int) -> bool:
        """Whether the cell at (row, col) is marked as failed (col >= 1)."""
        return self._cell(row, col)[2]


class NaiveLimitGauge(pg.PlotWidget):
    """The largest x/T as a marker on a log axis against each dtype's naive limit.

    Positions are log10 of the value (the bottom axis is labelled in plain
    numbers), so 11, 89 and 710 fit on one strip. The marker is the largest
    *signed* x/T: overflow depends only on the largest positive value (large
    negative ones underflow instead, which the verdict explains). Values below
    the left edge are pinned there and labelled with their real value.
    """

    LEFT = 0.3
    PINNED = 0.5
    """Where a marker below the scale is drawn: just inside the left edge, so it stays visible."""
    RIGHT = 2000.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=style.PLOT_BACKGROUND)
        self.setObjectName("naiveLimitPlot")
        item = self.getPlotItem()
        item.hideAxis("left")
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.disableAutoRange()
        item.setYRange(0, 1, padding=0)
        axis = item.getAxis("bottom")
        axis.setPen(style.PLOT_FOREGROUND)
        axis.setTextPen(style.PLOT_FOREGROUND)
        tick_font = QFont()
        tick_font.setPointSize(BODY_PT - 2)
        axis.setStyle(tickFont=tick_font)
        axis.setLabel("largest x/T (log scale)", color=style.TEXT)
        self.setFixedHeight(130)
        self.safe_region = pg.LinearRegionItem(
            (0.0, 1.0), movable=False, brush=QColor(style.OK_BACKGROUND), pen=pg.mkPen(None)
        )
        self.safe_region.setZValue(-10)
        item.addItem(self.safe_region)
        self.other_lines: list[pg.InfiniteLine] = []
        self.limit_line = pg.InfiniteLine(
            pos=0.0,
            angle=90,
            pen=pg.mkPen(style.BAD, width=3),
            label="",
            labelOpts={"position": 0.88, "color": style.BAD, "anchors": [(0, 0.5), (1, 0.5)]},
        )
        self.marker_line = pg.InfiniteLine(
            pos=0.0,
            angle=90,
            pen=pg.mkPen(style.BAR, width=4),
            label="",
            labelOpts={"position": 0.45, "color": style.BAR, "anchors": [(0, 0.5), (1, 0.5)]},
        )
        item.addItem(self.limit_line)
        item.addItem(self.marker_line)
        self._dtype = ""
        self._right = self.RIGHT
        self.marker_value = math.nan
        """The largest x/T the marker stands for (NaN when hidden)."""

    def set_state(self, dtype: str, largest: float, x_name: str) -> None:
        """Place the marker at ``largest`` (the largest x/T) and the red line at ``dtype``'s limit."""
        self.marker_value = largest
        right = self.RIGHT
        if math.isfinite(largest) and largest > right / 1.5:
            right = largest * 1.5
        if dtype != self._dtype or right != self._right:
            self._dtype, self._right = dtype, right
            self._draw_limits(dtype)
        self.marker_line.setVisible(not math.isnan(largest))
        text = f"max {x_name} = {style.format_number(largest)}"
        if math.isnan(largest):
            return
        if math.isinf(largest) and largest > 0:
            pos = math.log10(self._right)
        elif largest < self.PINNED:
            pos = math.log10(self.PINNED)
            text += " (off scale, left)"
        else:
            pos = math.log10(largest)
        self.marker_line.setValue(pos)
        self.marker_line.label.setFormat(text)

    def _draw_limits(self, dtype: str) -> None:
        item = self.getPlotItem()
        item.setXRange(math.log10(self.LEFT), math.log10(self._right), padding=0)
        ticks = [(float(k), f"{10**k:g}") for k in range(0, int(math.log10(self._right)) + 1)]
        item.getAxis("bottom").setTicks([ticks])
        limit = dtype_info(dtype).naive_limit
        self.limit_line.setValue(math.log10(limit))
        self.limit_line.label.setFormat(f"{dtype} limit ≈ {limit:.2f}")
        self.safe_region.setRegion((math.log10(self.LEFT), math.log10(limit)))
        for line in self.other_lines:
            item.removeItem(line)
        # bfloat16 and float32 share a limit (≈ 88.72): one faint line, both names.
        groups: dict[int, list[str]] = {}
        for name, info in DTYPES.items():
            if abs(info.naive_limit - limit) > 1.0:
                groups.setdefault(round(info.naive_limit), []).append(name)
        self.other_lines = []
        for names in groups.values():
            value = dtype_info(names[0]).naive_limit
            line = pg.InfiniteLine(
                pos=math.log10(value),
                angle=90,
                pen=pg.mkPen((150, 150, 150), width=2, style=Qt.PenStyle.DashLine),
                label=f"{' / '.join(names)} ≈ {value:.2f}",
                labelOpts={"position": 0.12, "color": (110, 110, 110), "anchors": [(0, 0.5), (1, 0.5)]},
            )
            line.setZValue(-5)
            item.addItem(line)
            self.other_lines.append(line)


class OverflowPanel(DeferredWhileHidden, QWidget):
    """Naive versus stable softmax (and log(softmax) versus log_softmax) for the editor's vector.

    Parameters
    ----------
    session
        The window's session; the panel renders ``session.analysis`` and
        ``session.class_names`` and writes nothing back.
    parent
        Optional Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("overflowPanel")
        self.session = session

        self.title = QLabel()
        self.title.setObjectName("overflowTitle")
        font = QFont()
        font.setPointSize(TITLE_PT)
        font.setBold(True)
        self.title.setFont(font)

        self.verdict = self._verdict_label("overflowVerdict")
        self.gauge = NaiveLimitGauge(self)

        self.model = OverflowTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("overflowTable")
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table_font = QFont()
        table_font.setPointSize(BODY_PT)
        self.table.setFont(table_font)
        self.table.setMinimumHeight(160)
        # Every column at its natural width: headers and numbers are never elided. Sized
        # from the rows in view (precision 0), again when the view scrolls: over all 200
        # rows, each temperature tick asked the model for ~1,700 cells' sizes.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setResizeContentsPrecision(0)
        self.table.verticalScrollBar().valueChanged.connect(
            lambda _value: header.resizeSections(QHeaderView.ResizeMode.ResizeToContents)
        )
        self.table.setStyleSheet("QTableView::item { padding: 2px 8px; }")

        self.table_note = QLabel()
        self.table_note.setObjectName("overflowTableNote")
        self.table_note.setWordWrap(True)
        self.log_verdict = self._verdict_label("logSoftmaxVerdict")
        self.notes = QLabel()
        self.notes.setObjectName("overflowNotes")
        self.notes.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(10)
        layout.addWidget(self.title)
        layout.addWidget(self.verdict)
        layout.addWidget(self.gauge)
        layout.addWidget(self.table, stretch=1)
        layout.addWidget(self.table_note)
        layout.addWidget(self.log_verdict)
        layout.addWidget(self.notes)

        session.events["analysis"].connect(self.set_analysis)
        session.events["class_names"].connect(self.set_class_names)
        session.events["device"].connect(self._refresh_title)
        self.set_analysis(session.analysis)

    @staticmethod
    def _verdict_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QFont()
        font.setPointSize(VERDICT_PT)
        label.setFont(font)
        return label

    @staticmethod
    def _colour(label: QLabel, failed: bool) -> None:
        # A style sheet re-polishes the label and relays out the window around it: set it
        # only when the verdict turns (not on every temperature tick).
        if label.property("failed") == failed and label.styleSheet():
            return
        label.setProperty("failed", failed)
        background = style.BAD_BACKGROUND if failed else style.OK_BACKGROUND
        edge = style.BAD if failed else "#2E7D32"
        label.setStyleSheet(
            f"background-color: {background}; color: {style.TEXT}; padding: 10px;"
            f" border-left: 6px solid {edge}; border-radius: 4px;"
        )

    # -- session -> widget -----------------------------------------------------------

    def set_class_names(self, _names: tuple[str, ...]) -> None:
        """Re-label the rows (the numbers come with the next analysis)."""
        self.set_analysis(self.session.analysis)

    def _refresh_title(self, *_: object) -> None:
        analysis = self.session.analysis
        if analysis is None:
            self.title.setText("Overflow lab")
            return
        result = analysis.result
        where = f"{result.device} (auto)" if self.session.device == "auto" else result.device
        self.title.setText(f"Overflow lab — {result.dtype} on {where}")

    def set_analysis(self, analysis: VectorAnalysis | None) -> None:
        """Show ``analysis`` (the editor's vector, row 0), or an empty panel for None."""
        if self.deferred():
            return
        self._refresh_title()
        if analysis is None:
            self.model.clear()
            self.verdict.setText("Nothing computed yet.")
            self._colour(self.verdict, False)
            self.log_verdict.setText("")
            self.table_note.setText("")
            self.notes.setText("")
            self.gauge.set_state(self.session.dtype, math.nan, "x")
            return
        result = analysis.result
        t1 = result.temperature == 1.0
        report = result.overflow
        failed = report.any_naive_failure or bool(report.stable_nan[0])
        self.verdict.setText(analysis.overflow_text)
        self._colour(self.verdict, failed)
        self.log_verdict.setText(analysis.log_softmax_text)
        self._colour(self.log_verdict, bool(report.log_of_softmax_neg_inf[0].any()))
        self.notes.setText(" ".join(result.notes))
        self.notes.setVisible(bool(result.notes))

        bad = _bad_cells(result)
        failing = bad.any(axis=0)
        rows = _choose_rows(result, failing)
        values = np.stack([getattr(result, attr)[0, rows] for attr, _, _ in COLUMNS], axis=1)
        names = self.session.class_names
        if len(names) != result.num_classes:  # names and analysis briefly out of step
            names = tuple(f"class {i}" for i in range(result.num_classes))
        labels = [f"{i}: {names[i]}" for i in rows]
        sums = np.full(len(COLUMNS), np.nan)
        sums[NAIVE_EXP] = float(result.naive_sum[0])
        sums[EXP_SHIFTED] = float(result.sum_exp[0])
        headers = ["class", *(h1 if t1 else ht for _, h1, ht in COLUMNS)]
        self.model.set_rows(labels, values, bad[:, rows].T, sums, headers)

        n = result.num_classes
        if n > LARGE_VECTOR:
            count = int(np.count_nonzero(failing))
            self.table_note.setText(
                f"Showing {len(rows)} of {n:,} classes: the {min(count, len(rows)):,} with "
                f"failed entries first ({count:,} in all), then the largest logits. "
                f"Σ (last row) is over all classes: naive {style.format_number(sums[NAIVE_EXP])}, "
                f"stable {style.format_number(sums[EXP_SHIFTED])}."
            )
        else:
            self.table_note.setText("Red: NaN, inf, or a value the failed naive path got wrong.")

        scaled = result.scaled[0]
        kept = scaled[~np.isnan(scaled)]  # a NaN logit must not hide the marker
        largest = float(kept.max()) if kept.size else math.nan
        self.gauge.set_state(result.dtype, largest, "x" if t1 else "x/T")
