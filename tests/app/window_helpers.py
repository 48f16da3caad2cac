"""Reading what the main window shows and acting on it as a person does: the helpers the
window tests share (test_main_window, the session, lecture and soak tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QTableView,
    QToolButton,
    QWidget,
)

WAIT_MS = 10_000
# The offscreen platform plugin cannot raise a popup or grab the keyboard for it;
# it says so when the Presets menu opens. Nothing else is ignored.
popup_menu_on_offscreen = pytest.mark.qt_log_ignore(
    r"^This plugin does not support raise\(\)$",
    r"^This plugin does not support grabbing the keyboard$",
    extend=True,
)


def softmax_ref(logits: Any, temperature: float = 1.0, dim: int = -1) -> np.ndarray:
    """Independent reference: torch's softmax in float64."""
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(x / temperature, dim=dim).numpy()


# -- reading what the window shows ---------------------------------------------------------


def find(window: QWidget, cls: type, name: str) -> Any:
    widget = window.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name!r} in the window"
    return widget


def drawn_heights(item: Any) -> np.ndarray:
    """The top of each bar as drawn: y0 + height (see probability_chart.py)."""
    opts = item.opts
    return np.asarray(opts["y0"], dtype=np.float64) + np.asarray(opts["height"], dtype=np.float64)


def chart_values(window: QWidget) -> np.ndarray:
    return drawn_heights(window.chart.bars)


def table_texts(view: QTableView, column: int) -> list[str]:
    model = view.model()
    return [str(model.index(r, column).data()) for r in range(model.rowCount())]


def header_column(view: QTableView, startswith: str) -> int:
    model = view.model()
    for c in range(model.columnCount()):
        header = str(model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole))
        if header.startswith(startswith):
            return c
    raise AssertionError(f"no column starting {startswith!r} in {view.objectName()}")


def first_number(text: str) -> float:
    match = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", text)
    assert match, f"no number in {text!r}"
    return float(match.group())


def editor_logits(window: QWidget) -> list[float]:
    return [float(t) for t in table_texts(find(window, QTableView, "logitTable"), 1)]


def editor_names(window: QWidget) -> list[str]:
    return table_texts(find(window, QTableView, "logitTable"), 0)


def message_text(window: QWidget) -> str:
    bar = find(window, QWidget, "messageBar")
    return find(bar, QLabel, "messageText").text() if bar.isVisible() else ""


# -- acting as a person ----------------------------------------------------------------------


def click_cell(qtbot: Any, view: QTableView, row: int, column: int) -> None:
    index = view.model().index(row, column)
    view.scrollTo(index)
    rect = view.visualRect(index)
    assert not rect.isEmpty(), f"cell ({row}, {column}) of {view.objectName()} is not on screen"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def type_into_cell(
    qtbot: Any, view: QTableView, row: int, column: int, text: str, accepted: bool = True
) -> QLineEdit:
    """Select a cell, F2, replace its text with ``text``, Enter. Returns the cell editor.

    With ``accepted``, waits until the editor has closed (Qt commits an Enter
    through a queued call).
    """
    click_cell(qtbot, view, row, column)
    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), f"F2 opened no line editor (focus: {editor!r})"
    qtbot.keyClick(editor, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    if accepted:
        qtbot.waitUntil(
            lambda: view.state() != QAbstractItemView.State.EditingState, timeout=WAIT_MS
        )
    return editor


def choose_by_keyboard(qtbot: Any, combo: QComboBox, text: str) -> None:
    """Move a (closed) combo box to the entry ``text`` with the arrow keys."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, f"{combo.objectName()} has no entry {text!r}"
    for _ in range(combo.count()):
        if combo.currentIndex() == target:
            break
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)
    assert combo.currentText() == text


def click_tab(qtbot: Any, window: QWidget, title: str) -> None:
    bar = window.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert window.tabs.currentIndex() == index


def choose_preset(qtbot: Any, window: QWidget, key: str) -> None:
    """Click the Presets button and click the preset's entry in the menu that pops up."""
    button = find(window, QToolButton, "presetsButton")
    menu = button.menu()
    action = menu.findChild(QAction, f"preset_{key}")
    assert action is not None, f"no preset_{key} in the Presets menu"
    clicked: list[bool] = []

    def click_entry() -> None:
        popup = QApplication.activePopupWidget()
        if popup is not menu:  # not shown yet: try again on the next turn of the loop
            QTimer.singleShot(10, click_entry)
            return
        rect = menu.actionGeometry(action)
        qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=rect.center())
        clicked.append(True)

    QTimer.singleShot(0, click_entry)
    # InstantPopup: the click opens the menu and runs its event loop until an entry is chosen.
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(clicked) and not menu.isVisible(), timeout=WAIT_MS)


def file_mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def drop_file(window: QWidget, path: Path) -> tuple[bool, bool]:
    """Drag ``path`` over the window and drop it, as a file manager does.

    Returns whether the drag-enter and the drop were accepted.
    """
    mime = file_mime(path)
    centre = window.rect().center()
    enter = QDragEnterEvent(
        centre,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False, False
    drop = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, drop)
    return True, drop.isAccepted()


def wait_for_batch(qtbot: Any, session: Any, path: Path, timeout: int = WAIT_MS) -> None:
    qtbot.waitUntil(
        lambda: (
            session.batch is not None
            and session.batch.path == path
            and session.batch_analysis is not None
            and not session.busy
        ),
        timeout=timeout,
    )
