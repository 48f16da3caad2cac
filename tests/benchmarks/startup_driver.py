"""Start-up driver, run as a script in a fresh process by :mod:`tests.benchmarks.startup`.

``python startup_driver.py app``: the real start-up path, ``launch_window()`` of
``softmax_lab.app.gui`` (it reuses the QApplication created here, which only
exists so an event filter can watch for paints).
``python startup_driver.py bare``: a bare PySide6 script that shows an empty QMainWindow.

The parent passes ``time.time()`` of the launch in ``SOFTMAX_LAB_BENCH_T0``.
Windows are watched from ``QMainWindow.show`` on (both modes show theirs
from Python). A window counts as painted when the paint round that began with its first
Paint event is over (a zero-time timer started at that event fires after the
children have painted too). ``first_paint_s`` is the first QMainWindow painted
(the bare window; the app's first frame, widgets/first_frame.py); in ``app``
mode the driver goes on until the full window (``MainWindow``, shown once the
example is computed) is painted too
(``window_painted_s``), then prints one JSON line and exits at once, with which
heavy modules were loaded at each point. Imports nothing from the test suite.
"""

from __future__ import annotations

import json
import os
import sys
import time

T0 = float(os.environ.get("SOFTMAX_LAB_BENCH_T0", time.time()))
STARTED = time.time() - T0
_PROFILE_DUMP = None


def main() -> None:
    mode = sys.argv[1]
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    qt_imported = time.time() - T0
    app = QApplication.instance() or QApplication(sys.argv[:1])
    paint = QEvent.Type.Paint

    report: dict[str, object] = {"mode": mode, "interpreter_started_s": STARTED, "qt_imported_s": qt_imported}

    def loaded(prefix: str) -> dict[str, bool]:
        return {f"{prefix}{name}": name in sys.modules for name in ("numpy", "pyqtgraph", "torch")}

    def painted(full_window: bool) -> None:
        key = "window_painted_s" if full_window else "first_paint_s"
        report[key] = time.time() - T0
        report.update(loaded("window_" if full_window else "first_"))
        if mode == "bare" or full_window:
            report["torch_imported"] = report["first_torch"]  # the older field's meaning
            print(json.dumps(report), flush=True)
            if _PROFILE_DUMP is not None:
                _PROFILE_DUMP()
                sys.stderr.flush()
            os._exit(0)  # measured: leave now (teardown is not start-up)

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[bool] = set()

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == paint and isinstance(obj, QMainWindow):
                full_window = type(obj).__name__ == "MainWindow"
                if full_window not in self.seen:
                    self.seen.add(full_window)
                    QTimer.singleShot(0, lambda: painted(full_window))
            return False

    watcher = FirstPaint()
    # The filter goes on each main window as it is shown, not on the application: an
    # application-wide Python filter sees every event of every widget, and wrapping
    # those in Python objects cost 55-75 ms before the first paint of a window with
    # a single child widget (4-5 ms with the filter on the window only).
    show = QMainWindow.show

    def show_watched(window: QMainWindow) -> None:
        window.installEventFilter(watcher)
        show(window)

    QMainWindow.show = show_watched  # type: ignore[method-assign]
    if os.environ.get("SOFTMAX_LAB_BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        global _PROFILE_DUMP

        def dump() -> None:
            profile.disable()
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(40)

        _PROFILE_DUMP = dump
    if mode == "bare":
        window = QMainWindow()
        window.show()
        app.exec()
    else:
        from softmax_lab.app.gui import launch_window

        launch_window()
    print(json.dumps({"mode": mode, "error": "the window closed before it was painted"}))
    sys.exit(1)


if __name__ == "__main__":
    main()
