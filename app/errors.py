"""One place where unexpected errors go: logged to a file and shown to the person.

Expected problems (bad input, a file that cannot be read, CUDA missing) are
:class:`~softmax_lab.compute.errors.SoftmaxLabError` and are shown inline or
in a dialog by whoever caught them. Anything else is a bug: the excepthook
installed by the application logs it with its traceback and shows a short
message with the details folded away; the window keeps running.

Qt-free: how to *show* the error is injected (the window passes a dialog
function), so the same reporter serves the command line and the tests.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from softmax_lab.app.state_files import state_directory

log = logging.getLogger("softmax_lab")

ShowError = Callable[[str, str], None]


def log_directory() -> Path:
    """Where the log file lives: the state folder (``app/state_files.py``)."""
    return state_directory()


class ErrorReporter:
    """Logs unexpected exceptions and hands a summary to ``show``."""

    def __init__(self, show: ShowError | None = None, log_file: Path | None = None) -> None:
        self.show = show
        self.log_file = log_file
        self.count = 0
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook

    def setup_logging(self) -> None:
        if self.log_file is None:
            return
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self.log_file, encoding="utf-8")
        except OSError:
            return  # no writable log location: keep going without a log file
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    def report(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        self.count += 1
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unexpected error\n%s", details)
        summary = (
            f"Something went wrong inside Softmax Lab ({exc_type.__name__}: {exc}). "
            "Your work is unchanged; the details below were also written to the log"
            + (f" ({self.log_file})." if self.log_file else ".")
        )
        if self.show is not None:
            try:
                self.show(summary, details)
                return
            except Exception:  # showing failed: fall back to stderr, never recurse
                pass
        sys.stderr.write(summary + "\n" + details)

    def _hook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hook(exc_type, exc, tb)
            return
        self.report(exc_type, exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.report(args.exc_type, args.exc_value, args.exc_traceback)

    def install(self) -> None:
        """Route uncaught exceptions (main thread and threads) here."""
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        sys.excepthook = self._previous_hook
        threading.excepthook = self._previous_thread_hook
