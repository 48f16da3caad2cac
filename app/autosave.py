"""Autosave and start-up: the window comes back as it was, even after a crash.

While the window runs, its state is written (atomically) a few seconds after
each change to ``autosave-<pid>.softmaxlab.json`` in the state folder
(``$XDG_STATE_HOME/softmax-lab``, beside the log), next to a
``running-<pid>`` marker. A clean exit writes the final state to
``last-session.softmaxlab.json`` and removes both.

At the next start (:func:`start_up`):

- a marker whose process is gone means that run was killed: if it left an
  autosave, the person is asked whether to restore it
  (:func:`softmax_lab.widgets.session_dialogs.ask_restore_autosave`);
- otherwise the last session is restored silently;
- a file named on the command line is opened after that and wins over the
  restored batch (a session file given there is opened instead).

Markers carry the process id, so a second window running at the same time is
neither mistaken for a crash nor disturbed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from softmax_lab.app import persistence
from softmax_lab.app.state_files import (
    LAST_SESSION_NAME,
    autosave_path,
    marker_path,
    state_directory,
)
from softmax_lab.compute.errors import LoadError
from softmax_lab.widgets import session_dialogs

if TYPE_CHECKING:
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session_actions import SessionActions

log = logging.getLogger(__name__)

AUTOSAVE_DELAY_MS = 3_000
"""At most this long after a change, the change is on disk."""
WATCHED = frozenset({*persistence.INTENT_FIELDS, "batch", "selected_row"})
MESSAGE_SOURCE = "session"


# ---------------------------------------------------------------------------------
# While running


class Autosave(QObject):
    """Writes a window's session document a few seconds after each change.

    Parameters
    ----------
    window
        The main window (its session and panel tabs are watched).
    document
        Returns the current session document (``SessionActions.document``).
    directory
        The state folder; default :func:`state_directory`.
    delay_ms
        How long after the first unsaved change the state is written.
    """

    saved = Signal(str)
    """Emitted with the path after each autosave written."""

    def __init__(
        self,
        window: MainWindow,
        document: Callable[[], dict[str, Any]],
        directory: Path | None = None,
        delay_ms: int = AUTOSAVE_DELAY_MS,
    ) -> None:
        super().__init__(window)
        self.setObjectName("autosave")
        self.window = window
        self.document = document
        self.directory = Path(directory) if directory is not None else state_directory()
        self.pid = os.getpid()
        self.marker = marker_path(self.directory, self.pid)
        self.path = autosave_path(self.directory, self.pid)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.save_now)
        self._last_text: str | None = None
        self._failed = False
        self._running = False
        window.session.changed.connect(self._on_changed)
        window.tabs.currentChanged.connect(self._schedule)

    def start(self) -> None:
        """Mark this run as running (a crash leaves the marker behind)."""
        from softmax_lab.compute.tables import write_text_atomic

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.marker, f"{self.pid}\n")
        except OSError as exc:
            log.warning("autosave disabled: cannot write %s (%s)", self.marker, exc)
            return
        self._running = True

    def _on_changed(self, names: frozenset[str]) -> None:
        if names & WATCHED:
            self._schedule()

    def _schedule(self, *_: Any) -> None:
        # Not restarted on every change: during a long drag the state still
        # reaches the disk every few seconds.
        if self._running and not self.timer.isActive():
            self.timer.start()

    def save_now(self) -> bool:
        """Write the current state now (when it differs from the last autosave)."""
        from softmax_lab.compute.tables import write_text_atomic

        text = persistence.dumps(self.document())
        if text == self._last_text:
            return False
        try:
            write_text_atomic(self.path, text)
        except OSError as exc:
            if not self._failed:  # say it once, not every three seconds
                self._failed = True
                log.warning("autosave failed: %s", exc)
                self.window.session.report(
                    "warning",
                    f"Autosave could not write to {self.directory}: {exc.strerror or exc}.",
                    MESSAGE_SOURCE,
                )
            return False
        self._failed = False
        self._last_text = text
        self.saved.emit(str(self.path))
        return True

    def finish(self) -> None:
        """Clean exit: keep the final state as the last session, remove the crash evidence."""
        self.timer.stop()
        self.window.session.changed.disconnect(self._on_changed)
        if not self._running:
            return
        self._running = False
        try:
            persistence.save_session(self.directory / LAST_SESSION_NAME, self.document())
        except OSError as exc:
            log.warning("could not keep the last session: %s", exc)
        for path in (self.path, self.marker):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# ---------------------------------------------------------------------------------
# At start


@dataclass(frozen=True)
class CrashedRun:
    """A run that left its ``running`` marker behind: it was killed or crashed."""

    pid: int
    marker: Path
    autosave: Path | None
    """Its autosave, when it had time to write one."""

    @property
    def saved_at(self) -> dt.datetime | None:
        if self.autosave is None:
            return None
        return dt.datetime.fromtimestamp(self.autosave.stat().st_mtime)


def crashed_runs(directory: Path, at_start: bool = False) -> list[CrashedRun]:
    """Runs whose process is gone but whose marker is still there; newest autosave first.

    With ``at_start`` (before this run wrote its own marker), a marker with this
    process's id is a crashed run's too: containers often give every run the same id.
    """
    runs: list[CrashedRun] = []
    if not directory.is_dir():
        return runs
    own = os.getpid()
    for marker in directory.glob("running-*"):
        try:
            pid = int(marker.name.removeprefix("running-"))
        except ValueError:
            continue
        if pid == own and not at_start:
            continue  # this run
        if pid != own and process_alive(pid):
            continue  # another window is running: its marker is no crash
        save = autosave_path(directory, pid)
        runs.append(CrashedRun(pid, marker, save if save.is_file() else None))

    def newest(run: CrashedRun) -> float:
        return run.autosave.stat().st_mtime if run.autosave is not None else float("-inf")

    return sorted(runs, key=newest, reverse=True)


def leftover_temporaries(directory: Path, pid: int) -> list[Path]:
    """Temporary files of autosave writes that run ``pid`` began and never renamed.

    A write killed half-way leaves ``.autosave-<pid>.softmaxlab.json.<hex>.tmp``
    (see ``write_bytes_atomic``); nothing but the next start can remove it.
    """
    return sorted(directory.glob(f".{autosave_path(directory, pid).name}.*.tmp"))


def discard(runs: list[CrashedRun]) -> None:
    """Remove the markers, autosaves and half-written autosaves of crashed runs (once offered)."""
    for run in runs:
        leftovers = leftover_temporaries(run.marker.parent, run.pid)
        for path in (run.autosave, *leftovers, run.marker):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a reused pid reads as alive: no restore is offered)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _windows_process_alive(pid: int) -> bool:
    # os.kill(pid, 0) on Windows would send CTRL_C_EVENT: ask the kernel instead.
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def describe_document(doc: dict[str, Any]) -> str:
    """One line about a session document, for the restore question."""
    logits = doc.get("logits") or []
    parts = [f"{len(logits)} classes", f"T = {doc.get('temperature')}", str(doc.get("dtype"))]
    batch = doc.get("batch")
    if isinstance(batch, dict) and batch.get("path"):
        parts.append(f"batch {Path(str(batch['path'])).name}")
    return ", ".join(parts)


def start_up(
    window: MainWindow,
    file: str | os.PathLike[str] | None = None,
    directory: Path | None = None,
    delay_ms: int = AUTOSAVE_DELAY_MS,
) -> Autosave:
    """Bring back the previous state, open ``file``, and start autosaving.

    After a crash the newest autosave is offered
    (``session_dialogs.ask_restore_autosave``); otherwise the last session is
    restored silently. ``file`` (from the command line) is opened afterwards:
    a session file replaces the restored state, a tensor file replaces the
    restored batch (the restored batch is then not reopened at all).

    Returns the running :class:`Autosave`; call its ``finish()`` on a clean exit.
    """
    from softmax_lab.app.session_actions import install

    sessions: SessionActions = getattr(window, "sessions", None) or install(window)
    directory = Path(directory) if directory is not None else state_directory()
    explicit = Path(file) if file is not None else None
    opens_session = explicit is not None and persistence.is_session_path(explicit)
    with_batch = explicit is None

    restored = False
    try:
        runs = crashed_runs(directory, at_start=True)
    except OSError as exc:  # an unreadable state folder must not stop the window
        log.warning("cannot look for autosaves in %s: %s", directory, exc)
        runs = []
    offered = next((r for r in runs if r.autosave is not None), None)
    if offered is not None and offered.autosave is not None and not opens_session:
        restored = _offer(sessions, offered, with_batch)
    try:
        discard(runs)
    except OSError as exc:
        log.warning("cannot remove old autosaves: %s", exc)
    if not restored and not opens_session:
        _restore_last(sessions, directory, with_batch)

    if explicit is not None:
        if opens_session:
            sessions.open_session(explicit)
        else:
            window.open_path(explicit)

    autosave = Autosave(window, sessions.document, directory, delay_ms)
    autosave.start()
    return autosave


def finish(window: MainWindow, autosave: Autosave | None) -> None:
    """Clean exit: remember the window geometry and the last session."""
    sessions: SessionActions | None = getattr(window, "sessions", None)
    if sessions is not None:
        sessions.settings.window_geometry = window.saveGeometry()
    if autosave is not None:
        autosave.finish()


def _offer(sessions: SessionActions, run: CrashedRun, with_batch: bool) -> bool:
    assert run.autosave is not None
    try:
        doc = persistence.load_session(run.autosave)
    except LoadError as exc:
        log.warning("ignoring a damaged autosave: %s", exc)
        return False
    saved_at = run.saved_at
    when = saved_at.strftime("%Y-%m-%d %H:%M:%S") if saved_at else "an unknown time"
    if not session_dialogs.ask_restore_autosave(sessions.window, when, describe_document(doc)):
        return False
    try:
        sessions.restore(doc, with_batch=with_batch)
    except LoadError as exc:
        sessions.session.report("error", f"Could not restore the autosave: {exc}", MESSAGE_SOURCE)
        return False
    # The restored state is not what any session file holds: unsaved until saved.
    sessions.undo.stack.resetClean()
    sessions.session.report("info", f"Restored the state autosaved at {when}.", MESSAGE_SOURCE)
    return True


def _restore_last(sessions: SessionActions, directory: Path, with_batch: bool) -> bool:
    last = directory / LAST_SESSION_NAME
    if not last.is_file():
        return False
    try:
        doc = persistence.load_session(last)
        sessions.restore(doc, with_batch=with_batch)
    except LoadError as exc:
        # A stale batch path, a damaged file: start from the example, say why.
        log.info("last session not restored: %s", exc)
        sessions.session.report(
            "warning", f"The last session was not restored: {exc}", MESSAGE_SOURCE
        )
        return False
    source = sessions.settings.last_session
    if source is not None:
        sessions.set_current_path(source)
        try:
            unchanged = persistence.same_state(persistence.load_session(source), doc)
        except LoadError:
            unchanged = False
        if not unchanged:
            sessions.undo.stack.resetClean()
        sessions.update_title()
    return True
