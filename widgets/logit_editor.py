"""The logit editor: a table of classes (name, logit) over the session's vector.

A model (not an item per row) backs the table, so a 262,144-class vocabulary
costs no more than three classes: only visible cells are ever formatted.

Editing rules, chosen to be what a person expects from a spreadsheet that
refuses bad data:

- A logit cell accepts what :func:`~softmax_lab.compute.parsing.parse_number`
  accepts: ``2.5``, ``-1e3``, ``inf``, ``-inf``, ``nan``. Pressing Enter on
  anything else (``1_000``, ``1,5``, ``abc``) keeps the cell editor open with the
  typed text and shows the reason in red under the table; Escape gives up.
  If the editor loses focus with bad text, the cell keeps its last valid value
  and the red message quotes what was typed, so nothing is lost silently.
- Paste (Ctrl+V): one value goes into the current cell; several lines replace
  the whole vector (see :data:`PASTE_HELP`).
- Every change is written through the session (``set_vector`` / ``update``);
  the table only ever shows what the session holds.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from softmax_lab.app.presets import PRESETS, preset
from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.parsing import parse_number, parse_vector
from softmax_lab.widgets import style

NAME, LOGIT = 0, 1
_Index = QModelIndex | QPersistentModelIndex
_HEADER_WORD = re.compile(r"[A-Za-z][A-Za-z0-9 _()\-]*\Z")

PASTE_HELP = (
    "Paste (Ctrl+V): one value goes into the current cell (on a name cell, any text becomes "
    "the name); several values replace the whole vector.\nEach line is a logit, or name<TAB>logit (two spreadsheet columns); a "
    "header line such as 'name<TAB>logit' is skipped.\nOne line of comma- or space-separated "
    "numbers (2, 1, 0.1) works too. Numbers use a dot: 2.5, -1e3, inf, -inf, nan."
)
TABLE_HELP = (
    "Double-click or start typing to edit a cell; Enter applies, Escape cancels.\n"
    "Text that is not a number is refused: the reason shows in red below the table.\n"
    "Insert: add a class · Delete: remove the selected classes · Alt+Up/Down: move them\n"
    "Ctrl+C: copy the selected rows · " + PASTE_HELP
)


def format_logit(value: float) -> str:
    """The exact, shortest text of a logit: ``2.0``, ``0.1``, ``1e-10``, ``inf``, ``nan``."""
    return repr(float(value))


def _tint(colour: str, alpha: int = 70) -> QBrush:
    c = QColor(colour)
    c.setAlpha(alpha)
    return QBrush(c)


def parse_pasted_table(text: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Parse clipboard text into logits and (if given) class names.

    Accepts one column of logits, two tab-separated columns (name, logit) with
    an optional header line, or a single line of separated numbers.

    Raises
    ------
    InvalidInputError
        Naming the line and the offending text.
    """
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise InvalidInputError("the clipboard holds no numbers to paste")
    if len(lines) == 1 and "\t" not in lines[0][1]:
        return parse_vector(lines[0][1].strip().strip("[]()")), None
    rows: list[tuple[int, list[str]]] = []
    for number, line in lines:
        fields = [f.strip() for f in line.split("\t")]
        while len(fields) > 1 and not fields[-1]:
            fields.pop()  # spreadsheets may add empty trailing cells
        if len(fields) > 2:
            raise InvalidInputError(
                f"line {number} has {len(fields)} columns: paste one column of logits "
                "or two columns (name, logit)"
            )
        rows.append((number, fields))
    first = rows[0][1][-1]
    if _looks_like_header(first):
        rows = rows[1:]
    widths = {len(fields) for _, fields in rows}
    if len(widths) > 1:
        raise InvalidInputError("some lines have a name column and some do not: paste one or the other")
    values = np.empty(len(rows), dtype=np.float64)
    for k, (number, fields) in enumerate(rows):
        try:
            values[k] = parse_number(fields[-1])
        except InvalidInputError as exc:
            raise InvalidInputError(f"line {number}: {exc}") from None
    if widths == {1}:
        return values, None
    names = tuple(fields[0] or f"class {k}" for k, (_, fields) in enumerate(rows))
    return values, names


def _looks_like_header(text: str) -> bool:
    try:
        parse_number(text)
    except InvalidInputError:
        return bool(_HEADER_WORD.match(text))
    return False


class LogitTableModel(QAbstractTableModel):
    """Two columns (name, logit) over the session's ``logits`` and ``class_names``.

    Signals
    -------
    refused(str)
        A cell edit was refused; the text says which row, what was typed and why.
    accepted()
        A cell edit was written to the session.
    """

    refused = Signal(str)
    accepted = Signal()

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._logits = session.logits
        self._names = session.class_names
        self._argmax = -1
        self._target: int | None = None

    # -- reading ------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else int(self._logits.shape[0])

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 2

    def name(self, row: int) -> str:
        return self._names[row] if row < len(self._names) else f"class {row}"

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self.name(row) if column == NAME else format_logit(self._logits[row])
        if role == Qt.ItemDataRole.TextAlignmentRole and column == LOGIT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column == LOGIT:
            return QBrush(QColor(style.BAD)) if not np.isfinite(self._logits[row]) else None
        if role == Qt.ItemDataRole.BackgroundRole:
            # Both on one row: target on the name, argmax on the logit.
            if row == self._target and (column == NAME or row != self._argmax):
                return _tint(style.TARGET)
            if row == self._argmax:
                return _tint(style.ARGMAX)
        if role == Qt.ItemDataRole.ToolTipRole:
            notes = []
            if row == self._argmax:
                notes.append("most probable class (argmax)")
            if row == self._target:
                notes.append("target class")
            return f"{self.name(row)}: " + ", ".join(notes) if notes else None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return ("class", "logit")[section]
        return str(section)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    # -- writing ------------------------------------------------------------------

    def check(self, row: int, column: int, text: str) -> float | str:
        """Parse what was typed into cell (row, column), or raise InvalidInputError."""
        try:
            if column == LOGIT:
                return parse_number(text)
            if not text.strip():
                raise InvalidInputError("a class name cannot be empty")
            return text.strip()
        except InvalidInputError as exc:
            raise InvalidInputError(f"row {row}: {exc}") from None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        row, column = index.row(), index.column()
        try:
            parsed = self.check(row, column, str(value))
            logits = self._session.logits
            names = self._session.class_names  # passed back as it is when only a logit changes
            if column == LOGIT:
                logits = logits.copy()
                logits[row] = parsed
            else:
                names = (*names[:row], str(parsed), *names[row + 1 :])
            self._session.set_vector(logits, names)
        except InvalidInputError as exc:
            self.refused.emit(str(exc))
            return False
        self.accepted.emit()
        return True

    # -- following the session ------------------------------------------------------

    def refresh(self) -> None:
        """Show the session's current vector (call when logits or names changed)."""
        logits, names = self._session.logits, self._session.class_names
        if logits.shape[0] != self._logits.shape[0]:
            self.beginResetModel()
            self._logits, self._names = logits, names
            self.endResetModel()
            return
        self._logits, self._names = logits, names
        last = self.rowCount() - 1
        self.dataChanged.emit(self.index(0, 0), self.index(last, LOGIT))

    def set_highlights(self, argmax: int, target: int | None) -> None:
        """Tint the argmax and target rows (repaints only the rows that change)."""
        changed = {self._argmax, self._target, argmax, target} - {None, -1}
        self._argmax, self._target = argmax, target
        for row in changed:
            if row is not None and 0 <= row < self.rowCount():
                self.dataChanged.emit(self.index(row, 0), self.index(row, LOGIT))


class _CellDelegate(QStyledItemDelegate):
    """Keeps the cell editor open when Enter is pressed on text the model would refuse."""

    refused = Signal(str)
    cancelled = Signal()

    def __init__(self, model: LogitTableModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model

    def createEditor(self, parent: QWidget, option: Any, index: _Index) -> QWidget:
        editor = super().createEditor(parent, option, index)
        editor.setProperty("cellRow", index.row())
        editor.setProperty("cellColumn", index.column())
        return editor

    def eventFilter(self, editor: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and hasattr(editor, "text"):
                try:
                    self._model.check(
                        int(editor.property("cellRow")),
                        int(editor.property("cellColumn")),
                        editor.text(),
                    )
                except InvalidInputError as exc:
                    self.refused.emit(str(exc))
                    return True  # swallow Enter: the editor stays open with the text
            elif key == Qt.Key.Key_Escape:
                self.cancelled.emit()
        return super().eventFilter(editor, event)


class _LogitTable(QTableView):
    """The table, with the editor's keys (Insert, Delete, Alt+Up/Down, Ctrl+C/V)."""

    key_action = Signal(str)

    _KEYS = {
        (Qt.Key.Key_Insert, Qt.KeyboardModifier.NoModifier): "add",
        (Qt.Key.Key_Delete, Qt.KeyboardModifier.NoModifier): "remove",
        (Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier): "up",
        (Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier): "down",
    }

    def _action_for(self, event: QKeyEvent) -> str | None:
        if event.matches(QKeySequence.StandardKey.Paste):
            return "paste"
        if event.matches(QKeySequence.StandardKey.Copy):
            return "copy"
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        return self._KEYS.get((Qt.Key(event.key()), modifiers))

    def event(self, event: QEvent) -> bool:
        # Claim our keys before window-wide shortcuts (a main-window Ctrl+V) take them.
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and self.state() != QAbstractItemView.State.EditingState
            and self._action_for(event)
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._action_for(event)
        if action is not None and self.state() != QAbstractItemView.State.EditingState:
            self.key_action.emit(action)
            event.accept()
            return
        super().keyPressEvent(event)


class LogitEditor(QWidget):
    """Table of classes with add / remove / reorder / paste / presets.

    Parameters
    ----------
    session
        Source of the vector shown; every edit is written back through it.
    parent
        Usual Qt parent.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("logitEditor")
        self._session = session

        self.model = LogitTableModel(session, self)
        self.view = _LogitTable()
        self.view.setObjectName("logitTable")
        self.view.setModel(self.model)
        self.delegate = _CellDelegate(self.model, self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setToolTip(TABLE_HELP)
        vheader = self.view.verticalHeader()
        # Fixed heights: Qt never measures 262,144 rows.
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(self.fontMetrics().height() + 8)
        vheader.setDefaultAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        vheader.setToolTip("class index (what torch calls the target)")
        hheader = self.view.horizontalHeader()
        hheader.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        hheader.setStretchLastSection(True)
        self.view.setColumnWidth(NAME, self.fontMetrics().horizontalAdvance("automobile") + 40)

        self.error_label = QLabel()
        self.error_label.setObjectName("logitEditorError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {style.BAD};")
        # Selectable: the refused text can be copied back out of the message.
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.add_button = self._button("addClassButton", "Add", "Add a class below the current row (Insert)")
        self.remove_button = self._button(
            "removeClassButton", "Remove", "Remove the selected classes (Delete); one class always stays"
        )
        self.up_button = self._button("moveUpButton", "", "Move the selected classes up (Alt+Up)")
        self.up_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowUp))
        self.down_button = self._button("moveDownButton", "", "Move the selected classes down (Alt+Down)")
        self.down_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowDown))
        self.paste_button = self._button("pasteButton", "Paste", PASTE_HELP)
        self.presets_button = self._button(
            "presetsButton", "Presets", "Replace the vector with a ready-made example"
        )
        self.presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.presets_button)
        menu.setToolTipsVisible(True)
        for p in PRESETS:
            action = menu.addAction(p.title)
            action.setObjectName(f"preset_{p.key}")
            action.setData(p.key)
            action.setToolTip(p.description)
            action.triggered.connect(lambda _=False, key=p.key: self.apply_preset(key))
        self.presets_button.setMenu(menu)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button, self.paste_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.presets_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.error_label)

        self.add_button.clicked.connect(self.add_class)
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.paste_button.clicked.connect(self.paste)
        self.view.key_action.connect(self._on_key_action)
        self.model.refused.connect(self.show_error)
        self.model.accepted.connect(self.clear_error)
        self.delegate.refused.connect(self.show_error)
        self.delegate.cancelled.connect(self.clear_error)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)

        session.changed.connect(self._on_session_changed)
        self.destroyed.connect(lambda: session.changed.disconnect(self._on_session_changed))
        self.set_highlights()
        self._update_buttons()

    def _button(self, name: str, text: str, tip: str) -> QToolButton:
        b = QToolButton()
        b.setObjectName(name)
        b.setText(text)
        b.setToolTip(tip)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return b

    # -- session -> widget ----------------------------------------------------------

    def _on_session_changed(self, names: frozenset[str]) -> None:
        if names & {"logits", "class_names"}:
            self.model.refresh()
            self._update_buttons()
        if names & {"analysis", "target"}:
            self.set_highlights()

    def set_highlights(self) -> None:
        """Tint the argmax row (from ``session.analysis``) and the target row."""
        argmax = -1
        analysis = self._session.analysis
        if analysis is not None:
            stats_argmax = analysis.result.stats.argmax
            if stats_argmax.size:
                argmax = int(stats_argmax[0])
        self.model.set_highlights(argmax, self._session.target)

    # -- messages -----------------------------------------------------------------

    def show_error(self, text: str) -> None:
        """Show why an edit was refused, in red under the table."""
        self.error_label.setText(text)
        self.error_label.setToolTip(text)
        self.error_label.show()

    def clear_error(self) -> None:
        self.error_label.clear()
        self.error_label.hide()

    def error_text(self) -> str:
        return self.error_label.text() if not self.error_label.isHidden() else ""

    # -- selection helpers --------------------------------------------------------

    def selected_rows(self) -> np.ndarray:
        """Sorted rows the person selected (the current row if none is selected)."""
        n = self.model.rowCount()
        mask = np.zeros(n, dtype=bool)
        for rng in self.view.selectionModel().selection():
            mask[rng.top() : rng.bottom() + 1] = True
        rows = np.flatnonzero(mask)
        current = self.view.currentIndex()
        if rows.size == 0 and current.isValid():
            rows = np.array([current.row()])
        return rows

    def select_rows(self, rows: np.ndarray | list[int], current_row: int | None = None) -> None:
        """Select ``rows`` and make ``current_row`` (default: the first) current."""
        rows = np.asarray(rows, dtype=np.int64)
        n = self.model.rowCount()
        rows = rows[(rows >= 0) & (rows < n)]
        if rows.size == 0:
            return
        selection = QItemSelection()
        # One range per contiguous run: cheap even for thousands of rows.
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(rows, breaks):
            selection.select(self.model.index(int(run[0]), 0), self.model.index(int(run[-1]), LOGIT))
        column = self.view.currentIndex().column() if self.view.currentIndex().isValid() else LOGIT
        row = int(rows[0]) if current_row is None else current_row
        sm = self.view.selectionModel()
        sm.setCurrentIndex(self.model.index(row, column), QItemSelectionModel.SelectionFlag.NoUpdate)
        sm.select(
            selection,
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.view.scrollTo(self.model.index(row, column))

    def _update_buttons(self, *_: Any) -> None:
        n = self.model.rowCount()
        rows = self.selected_rows()
        self.remove_button.setEnabled(bool(n > 1 and 0 < rows.size < n))
        self.up_button.setEnabled(bool(rows.size > 0 and rows[0] > 0))
        self.down_button.setEnabled(bool(rows.size > 0 and rows[-1] < n - 1))

    # -- widget -> session ------------------------------------------------------------

    def _write(self, logits: np.ndarray, names: Any, target: Any = ...) -> bool:
        try:
            if target is ...:
                self._session.set_vector(logits, names)
            else:
                self._session.update(logits=logits, class_names=tuple(names), target=target)
        except InvalidInputError as exc:
            self.show_error(str(exc))
            return False
        self.clear_error()
        return True

    def _on_key_action(self, action: str) -> None:
        {
            "add": self.add_class,
            "remove": self.remove_selected,
            "up": lambda: self.move_selected(-1),
            "down": lambda: self.move_selected(1),
            "paste": self.paste,
            "copy": self.copy_selected,
        }[action]()

    def add_class(self) -> None:
        """Insert a class with logit 0 below the current row (at the end if none)."""
        s = self._session
        n = s.num_classes
        current = self.view.currentIndex()
        pos = current.row() + 1 if current.isValid() else n
        names = s.class_names
        taken = set(names)
        k = n
        while f"class {k}" in taken:
            k += 1
        target = s.target
        if target is not None and target >= pos:
            target += 1
        if self._write(
            np.insert(s.logits, pos, 0.0), names[:pos] + (f"class {k}",) + names[pos:], target
        ):
            self.select_rows([pos])
            self.view.setCurrentIndex(self.model.index(pos, LOGIT))

    def remove_selected(self) -> None:
        """Remove the selected classes; refuses to remove the last one."""
        s = self._session
        n = s.num_classes
        rows = self.selected_rows()
        if rows.size == 0:
            self.show_error("select the classes to remove first")
            return
        if rows.size >= n:
            self.show_error("at least one class must remain: select fewer classes to remove")
            return
        keep = np.ones(n, dtype=bool)
        keep[rows] = False
        names = tuple(name for name, k in zip(s.class_names, keep, strict=True) if k)
        target = s.target
        if target is not None:
            # The target stays on its class; if that class goes, on the class after it.
            target = min(target - int(np.count_nonzero(~keep[:target])), n - rows.size - 1)
        if self._write(s.logits[keep], names, target):
            self.select_rows([min(int(rows[0]), n - rows.size - 1)])

    def move_selected(self, delta: int) -> None:
        """Move the selected classes one row up (``delta = -1``) or down (``+1``)."""
        s = self._session
        n = s.num_classes
        rows = self.selected_rows()
        if rows.size == 0 or (delta < 0 and rows[0] == 0) or (delta > 0 and rows[-1] == n - 1):
            return
        perm = np.arange(n)
        for r in rows if delta < 0 else rows[::-1]:
            perm[r], perm[r + delta] = perm[r + delta], perm[r]
        names = s.class_names
        target = s.target
        if target is not None:
            target = int(np.flatnonzero(perm == target)[0])  # the target moves with its class
        current = self.view.currentIndex()
        if self._write(s.logits[perm], [names[i] for i in perm], target):
            self.select_rows(rows + delta, current.row() + delta if current.isValid() else None)

    def paste(self) -> None:
        """Paste the clipboard's text (see :data:`PASTE_HELP`)."""
        self.paste_text(QApplication.clipboard().text())

    def paste_text(self, text: str) -> bool:
        """Paste ``text`` as if from the clipboard; returns whether anything was written."""
        current = self.view.currentIndex()
        row = current.row() if current.isValid() else 0
        on_name = current.isValid() and current.column() == NAME
        try:
            logits, names = parse_pasted_table(text)
        except InvalidInputError as exc:
            single = text.strip("\r\n")
            if on_name and "\t" not in single and "\n" not in single:
                # One piece of text onto a name cell is a name (spreadsheet behaviour).
                return self.model.setData(self.model.index(row, NAME), single)
            self.show_error(f"paste refused: {exc}")
            return False
        if on_name and logits.shape[0] == 1 and names is None:
            return self.model.setData(self.model.index(row, NAME), text.strip())
        if logits.shape[0] == 1:
            new = self._session.logits.copy()
            new[row] = logits[0]
            new_names = list(self._session.class_names)
            if names is not None:
                new_names[row] = names[0]
            return self._write(new, new_names)
        if self._write(logits, names):
            self.select_rows([0])
            return True
        return False

    def copy_selected(self) -> None:
        """Copy the selected rows as ``name<TAB>logit`` lines (what paste reads back)."""
        rows = self.selected_rows().tolist()
        values = self._session.logits[rows].tolist()  # Python floats: repr is the exact text
        lines = [f"{self.model.name(r)}\t{v!r}" for r, v in zip(rows, values, strict=True)]
        QApplication.clipboard().setText("\n".join(lines) + "\n" if lines else "")

    def apply_preset(self, key: str) -> None:
        """Replace the vector with the preset ``key`` (see :mod:`softmax_lab.app.presets`)."""
        logits, names = preset(key).make()
        if self._write(logits, names):
            self.select_rows([0])
