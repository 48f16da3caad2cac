"""The one thread adapter: runs :class:`~softmax_lab.app.executors.Job` objects
on a QThreadPool and delivers results on the main (GUI) thread.

Workers never touch widgets or the session: they return a value; the
controller's callbacks run on the main thread through a queued signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from softmax_lab.app.executors import Cancelled, Job


class _Relay(QObject):
    """Lives on the main thread; signals emitted from a worker arrive queued."""

    finished = Signal(object, object)  # (callback, value)

    def __init__(self) -> None:
        super().__init__()
        self.finished.connect(self._deliver)

    @Slot(object, object)
    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        callback(value)


class _Runnable(QRunnable):
    def __init__(
        self,
        job: Job,
        relay: _Relay,
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.job, self.relay, self.done, self.failed = job, relay, done, failed

    def run(self) -> None:
        try:
            value = self.job.run()
        except BaseException as exc:  # delivered to the main thread, never lost
            self.relay.finished.emit(self.failed, exc)
            return
        self.relay.finished.emit(self.done, value)


class ThreadPoolExecutor:
    """Executor protocol on a private QThreadPool (one worker by default: jobs are
    large and numpy/torch already use every core inside one job)."""

    def __init__(self, max_threads: int = 1) -> None:
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max_threads)
        self.relay = _Relay()
        self.closed = False

    def submit(
        self,
        job: Job,
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        progress: Callable[[float], None] | None = None,
    ) -> None:
        if self.closed:
            # After shutdown nothing may start: a job running while Python
            # finalises emits into deleted Qt objects.
            job.cancel()
            failed(Cancelled(job.label))
            return
        if progress is not None:
            relay = self.relay
            job.progress = lambda fraction: relay.finished.emit(progress, fraction)
        self.pool.start(_Runnable(job, self.relay, done, failed))

    def wait(self, msecs: int = -1) -> bool:
        """Block until every job has finished (used at shutdown and in tests)."""
        return bool(self.pool.waitForDone(msecs))

    def shutdown(self) -> None:
        """Refuse new jobs, drop queued ones and wait for the running one."""
        self.closed = True
        self.pool.clear()
        self.pool.waitForDone()
