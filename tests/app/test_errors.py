"""The error reporter: unexpected errors are logged and shown, never lost. No Qt."""

import logging
import sys
import threading

from softmax_lab.app.errors import ErrorReporter, log


def _raise_and_report(reporter: ErrorReporter) -> None:
    try:
        raise ZeroDivisionError("division by zero in a slot")
    except ZeroDivisionError:
        reporter.report(*sys.exc_info())


def test_report_logs_the_traceback_and_shows_a_summary(tmp_path):
    shown = []
    reporter = ErrorReporter(show=lambda text, details: shown.append((text, details)), log_file=tmp_path / "lab.log")
    reporter.setup_logging()
    try:
        _raise_and_report(reporter)
    finally:
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    (text, details), = shown
    assert "ZeroDivisionError" in text and "unchanged" in text and str(tmp_path / "lab.log") in text
    assert "Traceback" in details and "_raise_and_report" in details
    assert "division by zero in a slot" in (tmp_path / "lab.log").read_text(encoding="utf-8")
    assert reporter.count == 1


def test_a_failing_dialog_falls_back_to_stderr(capsys):
    def broken_show(text, details):
        raise RuntimeError("no display")

    _raise_and_report(ErrorReporter(show=broken_show))
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "Traceback" in err


def test_install_routes_thread_exceptions_and_uninstall_restores_the_hooks():
    shown = []
    reporter = ErrorReporter(show=lambda text, details: shown.append(text))
    old_hook, old_thread_hook = sys.excepthook, threading.excepthook
    reporter.install()
    try:
        assert sys.excepthook == reporter._hook
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
    finally:
        reporter.uninstall()
    assert sys.excepthook is old_hook and threading.excepthook is old_thread_hook
    assert len(shown) == 1 and "ZeroDivisionError" in shown[0]
