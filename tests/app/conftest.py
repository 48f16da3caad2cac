"""Fixtures for the window tests: the real Session, Controller and MainWindow.

Imports no Qt at module level: test_session.py, test_controller.py and
test_presets.py in this folder are Qt-free and must stay so. Qt comes in
inside the fixtures, which only the window tests request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.qt_helpers import top_level_widgets

# Why the cuda entry is disabled in the test window (its tooltip quotes this).
NO_CUDA_REASON = "no CUDA device in the test window"


def _build_window(qtbot: Any, background: Any = None) -> Any:
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session

    session = Session()
    controller = Controller(session, background=background)
    window = MainWindow(session, controller, cuda_available=False, cuda_reason=NO_CUDA_REASON)
    qtbot.addWidget(window)
    # The same order as the app (app/gui.py): compute the seed example, then show.
    controller.start()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    return window


def _open_top_levels(window: Any) -> list[str]:
    """Visible top-level widgets other than ``window`` (dialogs, menus left open)."""
    return [
        f"{type(w).__name__}({w.objectName()!r})"
        for w in top_level_widgets()
        if w is not window and w.isVisible() and not w.objectName().startswith("qt_")
    ]


@pytest.fixture
def window(qtbot: Any) -> Iterator[Any]:
    """The main window over a fresh Session and a Controller that computes inline.

    Every job (vectors, batches, file loading) runs synchronously on the UI
    thread, so a test sees results as soon as the event that caused them returns.
    The window is shown; it is closed by qtbot at teardown. Fails the test if a
    dialog or a menu is left open.
    """
    w = _build_window(qtbot)
    yield w
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    left_open = _open_top_levels(w)
    w.close()
    assert not left_open, f"top-level widgets left open: {left_open}"


@pytest.fixture
def threaded_window(qtbot: Any) -> Iterator[Any]:
    """The main window with the app's real ThreadPoolExecutor for background jobs.

    Large vectors, batches and file loading run on a QThreadPool and are
    delivered on the UI thread, as in the application. At teardown the pool is
    shut down (queued results are delivered while the window still exists) and
    the test fails if any pool thread is still running: a dangling-thread check.
    ``window.executor`` is the executor.
    """
    from PySide6.QtWidgets import QApplication

    from softmax_lab.app.workers import ThreadPoolExecutor

    executor = ThreadPoolExecutor()
    try:
        w = _build_window(qtbot, background=executor)
    except BaseException:
        executor.shutdown()
        raise
    w.executor = executor
    yield w
    executor.shutdown()
    # Results already emitted by a worker are queued for the UI thread: deliver
    # them now, while the window and the session still exist.
    QApplication.processEvents()
    left_open = _open_top_levels(w)
    w.close()
    QApplication.processEvents()
    active = executor.pool.activeThreadCount()
    assert active == 0, f"{active} worker thread(s) still running after shutdown"
    assert not left_open, f"top-level widgets left open: {left_open}"
