"""Start-up driver, run as a script in a fresh process by :mod:`tests.benchmarks.startup`.

``python startup_driver.py app``: the real start-up path, ``launch_window()`` of
``softmax_lab.app.gui`` (it reuses the QApplication created here, which only
exists so an event filter can watch for the first paint).
``python startup_driver.py bare``: a bare PySide6 script that shows an empty QMainWindow.

The parent passes ``time.time()`` of the launch in ``SOFTMAX_LAB_BENCH_T0``;
at the first Paint event of a QMainWindow this prints one JSON line (seconds
since the launch) and exits at once. Imports nothing from the test suite.
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
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QMainWindow

    qt_imported = time.time() - T0
    app = QApplication.instance() or QApplication(sys.argv[:1])
    paint = QEvent.Type.Paint

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == paint and isinstance(obj, QMainWindow):
                first_paint = time.time() - T0
                print(
                    json.dumps(
                        {
                            "mode": mode,
                            "interpreter_started_s": STARTED,
                            "qt_imported_s": qt_imported,
                            "first_paint_s": first_paint,
                            "torch_imported": "torch" in sys.modules,
                        }
                    ),
                    flush=True,
                )
                if _PROFILE_DUMP is not None:
                    _PROFILE_DUMP()
                    sys.stderr.flush()
                # Measured: leave now (teardown is not start-up).
                os._exit(0)
            return False

    watcher = FirstPaint()
    app.installEventFilter(watcher)
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
