"""Starting and stopping the window: the one place that owns the QApplication."""

from __future__ import annotations

import gc
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtCore import QObject
    from PySide6.QtWidgets import QMainWindow, QWidget


def launch_window(
    file: str | Path | None = None,
    quit_after_ms: int | None = None,
    lecture: str | Path | None = None,
    present: bool = False,
) -> int:
    """Open the explorer window on the built-in example (or ``file``) and run until closed.

    ``lecture`` (a lecture file) opens with its scene list at its first scene;
    ``present`` starts in presenter mode. Returns the process exit status.

    Start-up, each step after the previous one is on screen or under way: the
    first frame (``widgets/first_frame.py``: Qt only, the example's bars drawn
    as SVG) about 0.05 s after Qt is up; then the full window is built, hidden,
    behind it (pyqtgraph, numpy, the views: about 0.8 s on the benchmark
    machine), the last session restored into it, and torch imported in the
    background; the full window takes the first frame's place when the first
    result (or error) is in. The person reads the example meanwhile.
    """
    try:
        status = _run(file, quit_after_ms, lecture, present)
    finally:
        gc.unfreeze()  # what settle_heap exempted is the run's garbage now, collected below
    # pyqtgraph's context menus have no Qt parent: their Python owners, garbage in
    # reference cycles once _run has returned, delete them when collected. Collect
    # here, at a known point: an in-process caller (a test) may otherwise be iterating
    # the top-level widgets when the collector runs, and a menu deleted in the middle
    # of that crashed the interpreter.
    gc.collect()
    return status


def _run(
    file: str | Path | None, quit_after_ms: int | None, lecture: str | Path | None, present: bool
) -> int:
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Softmax Lab")
    app.setOrganizationName("Softmax Lab")
    first = first_frame(file, lecture)
    opened: list[_OpenWindow] = []

    def open_window() -> None:
        try:
            _open_window(first, opened, file, quit_after_ms, lecture, present)
        except Exception:
            # The excepthook dialog is part of what failed to open: say it on stderr,
            # as a failure before the event loop did, and leave with a failure status.
            traceback.print_exc()
            print("Softmax Lab could not open its window (the error is above).", file=sys.stderr)
            app.exit(1)

    watcher = _after_first_paint(first, open_window)
    first.show()
    try:
        status = app.exec()
    finally:
        first.removeEventFilter(watcher)
        first.close()
        first.deleteLater()
        if opened:
            opened[0].shut_down()
        # Results the last job posted reach the window while it still exists (the
        # controller has stopped, so nothing new starts) ...
        app.processEvents()
        # ... then the windows are deleted now, while the QApplication exists: left to
        # a later event loop, or to Python's cycle collector (the session's callbacks
        # and the windows refer to each other), a window would be destroyed at an
        # arbitrary point of whatever runs next.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return int(status)


def first_frame(file: str | Path | None, lecture: str | Path | None) -> QMainWindow:
    """The window as it first appears: the example, unless something will replace it."""
    from softmax_lab.app import example
    from softmax_lab.app.settings import Settings
    from softmax_lab.app.state_files import has_state_to_restore, state_directory
    from softmax_lab.widgets.first_frame import FirstFrame, Picture
    from softmax_lab.widgets.style import chart_title

    if file is not None:
        note = f"Opening {Path(file).name}…"
    elif lecture is not None:
        note = f"Opening the lecture {Path(lecture).name}…"
    elif has_state_to_restore(state_directory()):
        note = "Restoring the last session…"
    else:
        note = ""
    logits = None if note else example.SEED_LOGITS
    names = example.default_names(len(example.SEED_LOGITS))
    title = chart_title("probabilities", example.SEED_TEMPERATURE, example.SEED_DTYPE, len(names))
    argmax = max(range(len(names)), key=lambda i: example.SEED_LOGITS[i])
    frame = FirstFrame(Picture(logits, names, title, note, argmax, example.SEED_TARGET))
    geometry = Settings().window_geometry
    if geometry is not None:
        frame.restoreGeometry(geometry)
    return frame


class _OpenWindow:
    """The full window and what runs with it, torn down in order on exit."""

    # Each part is None until built: a failed start-up tears down what it got to.
    executor: Any = None
    controller: Any = None
    window: Any = None
    reporter: Any = None
    autosave: Any = None

    def shut_down(self) -> None:
        from softmax_lab.app import autosave as autosave_module

        if self.window is not None:
            autosave_module.finish(self.window, self.autosave)
        if self.reporter is not None:
            self.reporter.uninstall()
        # Orderly teardown: stop scheduling (a result delivered now must not
        # start the request waiting behind it), let the running job finish
        # before Qt objects go away, then delete the window while the
        # QApplication still exists.
        if self.controller is not None:
            self.controller.stop()
        if self.executor is not None:
            self.executor.shutdown()
        if self.window is not None:
            self.window.deleteLater()


def _open_window(
    first: QMainWindow,
    opened: list[_OpenWindow],
    file: str | Path | None,
    quit_after_ms: int | None,
    lecture: str | Path | None,
    present: bool,
) -> None:
    """Build the full window behind the first frame, restore the session into it, and
    start torch; the window takes the frame's place later (:func:`_show_when_computed`).

    Appends the window to ``opened`` as soon as it exists, so that ``launch_window``
    tears down what was built even when a later step raises.
    """
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer

    from softmax_lab.app import autosave as autosave_module
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.errors import ErrorReporter, log_directory
    from softmax_lab.app.lecture_actions import start as start_lecture
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session
    from softmax_lab.app.workers import ThreadPoolExecutor
    from softmax_lab.widgets import dialogs

    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    running = _OpenWindow()
    opened.append(running)  # whatever is built below is torn down on exit, even on failure
    session = Session()
    running.executor = executor = ThreadPoolExecutor()
    running.controller = controller = Controller(session, background=executor)
    # Building the window needs no torch: its device choice says CUDA is "still
    # checking" until the controller has imported torch (see below).
    running.window = window = MainWindow(
        session, controller, False, "still checking (torch is starting)"
    )

    reporter = ErrorReporter(
        show=lambda text, details: dialogs.show_error(window, "Softmax Lab: unexpected error", text, details),
        log_file=log_directory() / "softmax-lab.log",
    )
    reporter.setup_logging()
    reporter.install()
    running.reporter = reporter

    # Hidden until it has the numbers to show (see _show_when_computed): while torch
    # loads, the person reads the example on the first frame, not an empty chart.
    controller.hold()
    # Sessions (app/autosave.py): the last session (or, after a crash, the autosave
    # if the person wants it), then FILE on top.
    running.autosave = autosave_module.start_up(
        window, file=None if file is None else Path(file)
    )
    if lecture is not None:
        # After the restored session: the lecture's first scene is what the room sees.
        start_lecture(window, lecture, False)
    # Presenter mode (its own full-screen window) starts with the window, once there are
    # numbers to project, not with empty charts while torch loads.
    entered = (lambda: start_lecture(window, None, True)) if present else None
    _show_when_computed(first, window, session, entered)
    # Torch (seconds to import) comes last: the controller imports it in the
    # background, asks it about CUDA, then computes what the session holds.
    controller.warm_up(
        lambda cuda: window.options.set_cuda_status(cuda.available, cuda.reason)
    )
    if quit_after_ms is not None:
        # Bound to the window: gone with it, never firing into whatever runs next.
        QTimer.singleShot(quit_after_ms, window, lambda: (window.close(), first.close()))


# If neither a result nor an error has come by then, show the full window anyway
# (its charts fill in when the result comes): the person is never left with a picture.
SHOW_ANYWAY_MS = 10_000


def _show_when_computed(
    first: QMainWindow,
    window: QMainWindow,
    session: Any,
    then: Callable[[], None] | None = None,
) -> None:
    """Put ``window`` where ``first`` is, once the session has a vector result or an
    error, then call ``then``.

    The first frame already shows the example; swapping it for a full window whose
    charts are still empty would take the numbers away for the seconds torch needs.
    """
    from PySide6.QtCore import QTimer

    def on_analysis(analysis: Any) -> None:
        if analysis is not None:
            swap()

    def on_message(message: Any) -> None:
        if message is not None and message.level == "error":
            swap()

    def swap() -> None:
        session.events["analysis"].disconnect(on_analysis)
        session.events["message"].disconnect(on_message)
        if not first.isVisible():
            return  # done already, or the person closed the first frame: quitting
        # Exactly where the first frame is now (it restored the last size and place, and
        # the person may have moved it since): its geometry and state, not a saved copy,
        # which Qt would fit to the screen again, moving the window.
        window.setGeometry(first.geometry())
        window.setWindowState(first.windowState())
        window.show()
        first.close()
        _after_first_paint(window, settle_heap)
        if then is not None:
            then()

    session.events["analysis"].connect(on_analysis)
    session.events["message"].connect(on_message)
    QTimer.singleShot(SHOW_ANYWAY_MS, window, swap)


def settle_heap() -> None:
    """Leave everything alive now out of the cycle collector's full passes (``gc.freeze``).

    The running window holds ~233,000 long-lived Python objects (widgets, pyqtgraph
    items, the modules of torch and numpy); a full collection walked them all, about
    100 ms, and one fell inside a temperature drag every hundred-odd ticks
    (docs/performance.md). Objects made later are collected as before. No collection
    first: at this point one took 96 ms (a pause just as the window appears) and found
    62 unreachable objects; frozen, they wait for :func:`launch_window`, which
    unfreezes before its last collection.
    """
    gc.freeze()


def _after_first_paint(window: QWidget, then: Callable[[], None]) -> QObject:
    """Call ``then`` once, just after ``window`` has painted its first frame.

    What comes next (the full window's imports, then torch's, which holds the
    interpreter lock for much of its seconds even in a worker thread) would
    otherwise delay the first frame (docs/performance.md).
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
