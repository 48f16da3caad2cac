"""Helpers shared by the session tests (test_session_actions, test_undo, test_autosave,
test_themes): building extra windows and comparing states. Reading the window and acting
on it as a person come from window_helpers (re-exported here for these tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QApplication

from tests.app.window_helpers import (  # noqa: F401 (re-exported)
    WAIT_MS,
    chart_values,
    choose_by_keyboard,
    click_cell,
    drop_file,
    editor_logits,
    editor_names,
    find,
    message_text,
    softmax_ref,
    table_texts,
    type_into_cell,
)


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


def chart_title(window: Any) -> str:
    return str(window.chart.plot_item.titleLabel.text)


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
