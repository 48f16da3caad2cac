"""Starting and stopping the window: the one place that owns the QApplication."""

from __future__ import annotations

import sys
from pathlib import Path


def launch_window(
    file: str | Path | None = None,
    quit_after_ms: int | None = None,
) -> int:
    """Open the explorer window on the built-in example (or ``file``) and run until closed.

    Returns the process exit status.
    """
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from softmax_lab.app.controller import Controller
    from softmax_lab.app.errors import ErrorReporter, log_directory
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session
    from softmax_lab.app.workers import ThreadPoolExecutor
    from softmax_lab.compute.device import cuda_status
    from softmax_lab.widgets import dialogs

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Softmax Lab")
    app.setOrganizationName("Softmax Lab")

    session = Session()
    executor = ThreadPoolExecutor()
    controller = Controller(session, background=executor)
    cuda = cuda_status()
    window = MainWindow(session, controller, cuda.available, cuda.reason)

    reporter = ErrorReporter(
        show=lambda text, details: dialogs.show_error(window, "Softmax Lab: unexpected error", text, details),
        log_file=log_directory() / "softmax-lab.log",
    )
    reporter.setup_logging()
    reporter.install()

    controller.start()
    window.show()
    if file is not None:
        window.open_path(Path(file))
    if quit_after_ms is not None:
        QTimer.singleShot(quit_after_ms, window.close)
    try:
        status = app.exec()
    finally:
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
