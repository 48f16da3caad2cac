"""The softmax calculation step by step, as the tutorials write it by hand.

One row per class of row 0 of ``session.analysis``: the logit (``x/T`` when
T ≠ 1), the max-shifted exponent, its exp, the probability and the
log-probability, then a bold Σ row with the sum of the exps and the sum of the
probabilities (which should read 1).

Many classes: above :data:`FULL_TABLE_MAX_CLASSES` classes the table lists only
the :data:`TOP_ROWS` most probable classes (most probable first) and says so in a
note; the Σ row is still over all N classes. Thousands of rows of 1e-9 teach
nothing, and the top of the distribution is what a person inspects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.deferred import DeferredWhileHidden
from softmax_lab.widgets.ranking import largest

FULL_TABLE_MAX_CLASSES = 1_000
"""Up to this many classes every class gets a row."""
TOP_ROWS = 100
"""Above :data:`FULL_TABLE_MAX_CLASSES`, the number of most probable classes listed."""
DIGITS = 4

_SUM = "Σ"
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_Index = QModelIndex | QPersistentModelIndex


def column_headers(temperature: float) -> list[str]:
    """The column titles; they name the division by T when T ≠ 1."""
    if temperature == 1.0:
        return ["class", "x", "x − max", "exp(x − max)", "p = exp / Σ", "log p"]
    return ["class", "x/T", "(x − max)/T", "exp((x − max)/T)", "p = exp / Σ", "log p"]


class StepsModel(QAbstractTableModel):
    """Rows of the hand calculation; the last row is the Σ row."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._headers = column_headers(1.0)
        self._names: list[str] = []
        self._columns: list[np.ndarray] = []  # x, shifted, exp, p, log p for the listed classes
        self._sums: tuple[float, float] = (math.nan, math.nan)
        self._bold = QFont()
        self._bold.setBold(True)
        self._bad_fg = QBrush(QColor(style.BAD))
        self._bad_bg = QBrush(QColor(style.BAD_BACKGROUND))

    def set_rows(
        self,
        headers: list[str],
        names: list[str],
        columns: list[np.ndarray],
        sums: tuple[float, float],
    ) -> bool:
        """Replace the content; keeps the view's scroll position when the shape is unchanged.

        Returns whether the class-name column changed (the view then refits its width).
        """
        same_shape = len(names) == len(self._names) and headers == self._headers
        names_changed = names != self._names
        if not same_shape:
            self.beginResetModel()
        self._headers, self._names, self._columns, self._sums = headers, names, columns, sums
        if not same_shape:
            self.endResetModel()
        elif self.rowCount() > 0:
            # A temperature change leaves the names alone: only the number columns change.
            first = 0 if names_changed else 1
            self.dataChanged.emit(
                self.index(0, first), self.index(self.rowCount() - 1, len(headers) - 1)
            )
        return names_changed

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        if parent.isValid():
            return 0
        return len(self._names) + (1 if self._names else 0)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._headers)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._headers[section]
        return None

    def value(self, row: int, column: int) -> float | None:
        """The number shown at (row, column), or None for a text or empty cell."""
        if column == 0:
            return None
        if row == len(self._names):  # Σ row: sums under exp and p only
            return {3: self._sums[0], 4: self._sums[1]}.get(column)
        return float(self._columns[column - 1][row])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Asked ~6 roles per visible cell on every repaint: roles are compared as plain
        # ints (a PySide6 enum comparison or `|` costs microseconds in Python).
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        is_sum = row == len(self._names)
        if role == _DISPLAY:
            if column == 0:
                return _SUM if is_sum else self._names[row]
            number = self.value(row, column)
            return "" if number is None else style.format_number(number, DIGITS)
        if role == _ALIGNMENT and column > 0:
            return _RIGHT
        if role == _FONT and is_sum:
            return self._bold
        if role in (_FOREGROUND, _BACKGROUND):
            number = self.value(row, column)
            if number is not None and not math.isfinite(number):
                return self._bad_fg if role == _FOREGROUND else self._bad_bg
        if role == _TOOLTIP and column > 0:
            number = self.value(row, column)
            return None if number is None else repr(number)  # every digit on hover
        return None


class StepsTable(DeferredWhileHidden, QWidget):
    """The step-by-step softmax table for row 0 of ``session.analysis``.

    Parameters
    ----------
    session
        The session whose ``analysis`` and ``class_names`` it shows.
    parent
        Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepsTable")
        self.session = session
        self.model = StepsModel(self)
        self.view = QTableView(self)
        self.view.setObjectName("stepsTableView")
        self.view.setModel(self.model)
        self.view.verticalHeader().hide()
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # The name column is fitted when the names or the font change, not by
        # ResizeToContents: that asks the model for every row's size on every
        # temperature tick (8,500 data() calls per tick at 1,000 classes, more than
        # the whole paint), though the names have not changed.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(70)
        self.view.installEventFilter(self)
        font = self.view.font()
        font.setPointSize(max(font.pointSize(), 11))
        self.view.setFont(font)
        self._top: tuple[np.ndarray, np.ndarray] | None = None  # (vector, its top rows)
        self.note = QLabel(self)
        self.note.setObjectName("stepsNote")
        self.note.setWordWrap(True)
        self.note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.view, 1)

        session.events["analysis"].connect(self.set_analysis)
        session.events["class_names"].connect(lambda _names: self.set_analysis(session.analysis))
        self.set_analysis(session.analysis)

    def set_analysis(self, analysis: Any) -> None:
        """Show the steps of ``analysis`` (a VectorAnalysis; None empties the table)."""
        if self.deferred():
            return
        if analysis is None:
            self.model.set_rows(column_headers(1.0), [], [], (math.nan, math.nan))
            self._fit_names()
            self.note.hide()
            return
        result = analysis.result
        count = result.num_classes
        p = result.probabilities[0]
        if count > FULL_TABLE_MAX_CLASSES:
            rows = self._most_probable(analysis.request.logits)
            self.note.setText(
                f"showing the {TOP_ROWS} most probable of {count:,} classes; "
                f"the Σ row is over all {count:,}"
            )
            self.note.show()
        else:
            rows = np.arange(count)
            self.note.hide()
        names = self.session.class_names
        labels = [names[i] if i < len(names) else f"class {i}" for i in rows.tolist()]
        columns = [
            result.scaled[0][rows],
            result.shifted[0][rows],
            result.exp_shifted[0][rows],
            p[rows],
            result.log_probabilities[0][rows],
        ]
        with np.errstate(all="ignore"):
            total_p = float(np.sum(p, dtype=np.float64))
        sums = (float(result.sum_exp[0]), total_p)
        headers = column_headers(float(result.temperature))
        if self.model.set_rows(headers, labels, columns, sums):
            self._fit_names()

    def _most_probable(self, logits: np.ndarray) -> np.ndarray:
        """The TOP_ROWS most probable classes, most probable first.

        Softmax keeps the logits' order at every T > 0, so the rows are chosen by logit
        (ties by index; NaN last) once per vector and kept while the vector is the same
        array, as during a temperature drag: the selection over 262,144 classes cost
        0.7-1.4 ms per tick. The probabilities along this order never increase.
        """
        if self._top is None or self._top[0] is not logits:
            self._top = (logits, largest(None, logits, TOP_ROWS))
        return self._top[1]

    def _fit_names(self) -> None:
        self.view.resizeColumnToContents(0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Presenter mode and themes change the table's font: refit the names to it.
        if watched is self.view and event.type() == QEvent.Type.FontChange:
            self._fit_names()
        return super().eventFilter(watched, event)
