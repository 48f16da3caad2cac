"""How the controller runs compute jobs: the Qt-free protocol and the inline executor.

The Qt thread-pool implementation lives in :mod:`softmax_lab.app.workers` (the
only module that knows about threads); tests use :class:`InlineExecutor` so the
controller can be tested without Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Cancelled(Exception):
    """Raised inside a job when its cancel flag was set."""


class Job:
    """A unit of work with a cooperative cancel flag and a progress callback."""

    def __init__(self, fn: Callable[[Job], Any], label: str = "") -> None:
        self.fn = fn
        self.label = label
        self._cancelled = False
        self.progress: Callable[[float], None] = lambda fraction: None

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check(self) -> None:
        """Call between chunks of work: raises :class:`Cancelled` once cancelled."""
        if self._cancelled:
            raise Cancelled(self.label)

    def run(self) -> Any:
        return self.fn(self)


class Executor(Protocol):
    def submit(
        self,
        job: Job,
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Run ``job``; call ``done(result)`` or ``failed(error)`` on the caller's thread."""


class InlineExecutor:
    """Runs the job immediately on the calling thread."""

    def submit(
        self,
        job: Job,
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        progress: Callable[[float], None] | None = None,
    ) -> None:
        if progress is not None:
            job.progress = progress
        try:
            value = job.run()
        except Exception as exc:
            failed(exc)
            return
        done(value)
