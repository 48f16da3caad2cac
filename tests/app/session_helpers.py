"""Helpers shared by the session tests (test_session_actions, test_undo, test_autosave,
test_themes): building extra windows, acting as a person, reading what is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QTableView,
    QWidget,
)

WAIT_MS = 10_000


def build_window(qtbot: Any, background: Any = None) -> Any:
    """A second (third, ...) main window, as app/gui.py builds one (inline compute by default)."""
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session

    session = Session()
    controller = Controller(session, background=background)
    window = MainWindow(session, controller, cuda_available=False, cuda_reason="no CUDA in tests")
    qtbot.addWidget(window)
    controller.start()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    # Shortcuts go to the active window: wait until this one is.
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    return window


def quit_window(window: Any) -> None:
    """Close a window the way quitting does (controller stopped, window gone)."""
    window.controller.stop()
    window.close()
    QApplication.processEvents()


def find(window: QWidget, cls: type, name: str) -> Any:
    widget = window.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name!r}"
    return widget


def softmax_ref(logits: Any, temperature: float = 1.0) -> np.ndarray:
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(x / temperature, dim=-1).numpy()


def chart_values(window: Any) -> np.ndarray:
    """Bar tops as drawn by the probability chart (y0 + height)."""
    opts = window.chart.bars.opts
    return np.asarray(opts["y0"], dtype=np.float64) + np.asarray(opts["height"], dtype=np.float64)


def chart_title(window: Any) -> str:
    return str(window.chart.plot_item.titleLabel.text)


def table_texts(view: QTableView, column: int) -> list[str]:
    model = view.model()
    return [str(model.index(r, column).data()) for r in range(model.rowCount())]


def editor_logits(window: Any) -> list[float]:
    return [float(t) for t in table_texts(find(window, QTableView, "logitTable"), 1)]


def editor_names(window: Any) -> list[str]:
    return table_texts(find(window, QTableView, "logitTable"), 0)


def message_text(window: Any) -> str:
    bar = find(window, QWidget, "messageBar")
    return find(bar, QLabel, "messageText").text() if bar.isVisible() else ""


def click_cell(qtbot: Any, view: QTableView, row: int, column: int) -> None:
    index = view.model().index(row, column)
    view.scrollTo(index)
    rect = view.visualRect(index)
    assert not rect.isEmpty()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def type_into_cell(qtbot: Any, view: QTableView, row: int, column: int, text: str) -> None:
    """Select a cell, F2, replace its text, Enter; wait until the editor closed."""
    click_cell(qtbot, view, row, column)
    qtbot.keyClick(view, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), f"F2 opened no line editor ({editor!r})"
    qtbot.keyClick(editor, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.state() != QAbstractItemView.State.EditingState, timeout=WAIT_MS)


def choose_by_keyboard(qtbot: Any, combo: QComboBox, text: str) -> None:
    """Move a closed combo box to the entry ``text`` with the arrow keys."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, f"{combo.objectName()} has no entry {text!r}"
    for _ in range(combo.count()):
        if combo.currentIndex() == target:
            break
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)
    assert combo.currentText() == text


def drop_file(window: QWidget, path: Path) -> tuple[bool, bool]:
    """Drag ``path`` over the window and drop it; whether enter and drop were accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
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


def bits(values: Any) -> np.ndarray:
    """The raw bits of float64 values: equal bits = the very same numbers (NaN included)."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def intent_state(session: Any) -> dict[str, Any]:
    """Every intent setting plus batch identity, comparable with ==."""
    batch = session.batch
    return {
        "logits": bits(session.logits).tolist(),
        "class_names": session.class_names,
        "temperature": session.temperature,
        "dtype": session.dtype,
        "device": session.device,
        "chart_view": session.chart_view,
        "target": session.target,
        "label_smoothing": session.label_smoothing,
        "batch_dim": session.batch_dim,
        "batch": None if batch is None else (str(batch.path), batch.array_name),
        "selected_row": session.selected_row,
    }
