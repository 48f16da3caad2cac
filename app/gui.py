"""Starting and stopping the window: the one place that owns the QApplication."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QObject
    from PySide6.QtWidgets import QWidget


def launch_window(
    file: str | Path | None = None,
    quit_after_ms: int | None = None,
    lecture: str | Path | None = None,
    present: bool = False,
) -> int:
    """Open the explorer window on the built-in example (or ``file``) and run until closed.

    ``lecture`` (a lecture file) opens with its scene list at its first scene;
    ``present`` starts in presenter mode. Returns the process exit status.
    """
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from softmax_lab.app import autosave as autosave_module
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.errors import ErrorReporter, log_directory
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session
    from softmax_lab.app.workers import ThreadPoolExecutor
    from softmax_lab.widgets import dialogs

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Softmax Lab")
    app.setOrganizationName("Softmax Lab")

    session = Session()
    executor = ThreadPoolExecutor()
    controller = Controller(session, background=executor)
    # Torch (seconds to import) is not on the way to the first frame: the window opens
    # with CUDA "being checked", and the controller imports torch in the background and
    # computes the example there; the charts fill in when it is ready.
    window = MainWindow(session, controller, False, "still checking (torch is starting)")

    reporter = ErrorReporter(
        show=lambda text, details: dialogs.show_error(window, "Softmax Lab: unexpected error", text, details),
        log_file=log_directory() / "softmax-lab.log",
    )
    reporter.setup_logging()
    reporter.install()

    # Nothing is computed until the first frame is on screen (see _after_first_paint).
    controller.hold()
    # Sessions (app/autosave.py): the last size and place, the last session (or,
    # after a crash, the autosave if the person wants it), then FILE on top.
    autosave_module.restore_geometry(window)
    first_paint = _after_first_paint(
        window,
        lambda: controller.warm_up(
            lambda cuda: window.options.set_cuda_status(cuda.available, cuda.reason)
        ),
    )
    window.show()
    autosave = autosave_module.start_up(window, file=None if file is None else Path(file))
    if lecture is not None or present:
        # After the restored session: the lecture's first scene is what the room sees.
        from softmax_lab.app.lecture_actions import start as start_lecture

        start_lecture(window, lecture, present)
    if quit_after_ms is not None:
        QTimer.singleShot(quit_after_ms, window.close)
    try:
        status = app.exec()
    finally:
        window.removeEventFilter(first_paint)
        autosave_module.finish(window, autosave)
        reporter.uninstall()
        # Orderly teardown: stop scheduling (a result delivered now must not
        # start the request waiting behind it), let the running job finish
        # before Qt objects go away, then delete the window while the
        # QApplication still exists.
        controller.stop()
        executor.shutdown()
        window.deleteLater()
        app.processEvents()
    return int(status)


def _after_first_paint(window: QWidget, then: Callable[[], None]) -> QObject:
    """Call ``then`` once, just after ``window`` has painted its first frame.

    Torch takes seconds to import, and importing it even in a worker thread holds the
    interpreter lock for much of that: started before the first paint, it delayed the
    first frame by about a second (docs/performance.md).
    """
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if obj is window and event.type() == QEvent.Type.Paint:
                window.removeEventFilter(self)
                QTimer.singleShot(0, then)  # after this paint has reached the screen
            return False

    watcher = FirstPaint(window)
    window.installEventFilter(watcher)
    return watcher
