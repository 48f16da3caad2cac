"""Spans of a batch (row chunks, or column ranges) run side by side: the calling
thread and helper threads kept between batches each take the next span when they
finish one.

Why kept threads: on the 2-core machine, starting two threads for a new temperature
of a (256, 50,257) batch and joining them cost 0.9 ms of its 5 ms (the chunks made
no-ops: 1.45 ms with two workers against 0.54 ms on the calling thread alone). Why
the calling thread works too: it would otherwise only wait, and one handoff fewer is
one wake-up fewer.

Cancel and progress stay on the calling thread: it polls ``cancelled`` and reports
``progress`` after each of its own spans and once the others are done.

Each finished span is reported on one queue. Waiting instead on the set of pending
futures (``concurrent.futures.wait``) cost O(pending) per completion, O(spans^2) in
all: on a 16-core machine, 4 workers took 8.7 s over the 4,096 one-row chunks of a
(4,096, 50,257) batch (0.14 s in chunks of 20 rows), and a new temperature of that
batch in the default chunks went from 222 to 140 ms with this queue (interleaved,
same process).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

B = TypeVar("B")

THREAD_NAME = "softmax-lab-batch"


class _Helpers:
    """Daemon threads that run tasks from one queue and wait there between batches.

    A task is started at once: when no thread is idle, a new one is started for it
    (two batches at the same time each get their threads). Tasks must not raise.
    ``done`` is called after the task, once its thread counts as idle again: a batch
    that waits for it and then starts another finds the thread free.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]]] = (
            queue.SimpleQueue()
        )
        self._idle = 0  # threads waiting on the queue, less the tasks queued for them
        self._threads = 0

    def start(self, task: Callable[[], None], done: Callable[[], None]) -> None:
        with self._lock:
            new = self._idle == 0
            if new:
                self._threads += 1
                name = f"{THREAD_NAME}-{self._threads}"
            else:
                self._idle -= 1
        if new:
            try:
                threading.Thread(target=self._serve, name=name, daemon=True).start()
            except BaseException:  # (no thread left to start): nothing was queued
                with self._lock:
                    self._threads -= 1
                raise
        self._tasks.put((task, done))

    def _serve(self) -> None:
        while True:
            task, done = self._tasks.get()
            try:
                task()
            finally:
                with self._lock:
                    self._idle += 1
                done()

    def busy(self) -> int:
        """Threads running a task now (or about to: the count is taken after it)."""
        with self._lock:
            return self._threads - self._idle

    def threads(self) -> int:
        with self._lock:
            return self._threads


_HELPERS = _Helpers()


def _forget_helpers() -> None:
    # A forked child has none of the parent's threads: its queue must not be
    # counted as served by them.
    global _HELPERS
    _HELPERS = _Helpers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def helpers() -> _Helpers:
    return _HELPERS


class Cancelled(Exception):
    """``cancelled()`` said yes; no thread takes another span."""


class _Shared(Generic[B]):
    """What the threads of one call share: the spans not yet taken and the reports."""

    def __init__(self, spans: Sequence[tuple[int, int]], run: Callable[[int, int, B], None]):
        self.todo = iter(spans)
        self.take = threading.Lock()
        self.stop = threading.Event()
        self.run = run
        # each helper's finished span (its size), its error, or None: done
        self.reports: queue.SimpleQueue[int | BaseException | None] = queue.SimpleQueue()

    def next_span(self) -> tuple[int, int] | None:
        if self.stop.is_set():
            return None
        with self.take:
            return next(self.todo, None)

    def helper(self, buffers: B) -> None:
        try:
            while (span := self.next_span()) is not None:
                self.run(span[0], span[1], buffers)
                self.reports.put(span[1] - span[0])
        except BaseException as exc:  # re-raised on the calling thread
            self.stop.set()  # the others take no further span
            self.reports.put(exc)

    def helper_done(self) -> None:
        self.reports.put(None)  # after this the helper touches nothing of the call


def run_spans(
    run: Callable[[int, int, B], None],
    spans: Sequence[tuple[int, int]],
    workers: int,
    buffers: Callable[[], B],
    total: int,
    cancelled: Callable[[], bool],
    progress: Callable[[float], None],
) -> None:
    """``run(a, b, buffers)`` for every span (a, b), on ``workers`` threads (this one
    and ``workers - 1`` helpers, each with its own ``buffers()``); ``total`` is what the
    spans cover, for progress. Returns (or raises the first error, or
    :class:`Cancelled`) only once no helper runs a span of this call any more."""
    shared: _Shared[B] = _Shared(spans, run)
    running = 0
    done = 0

    def note(report: int | BaseException | None) -> None:
        nonlocal running, done
        if report is None:
            running -= 1
        elif isinstance(report, BaseException):
            raise report
        else:
            done += report

    try:
        own = buffers()  # ready before any helper starts taking spans
        for _ in range(workers - 1):
            mine = buffers()
            _HELPERS.start(partial(shared.helper, mine), shared.helper_done)
            running += 1  # only once started: the finally below waits for each one's None
        while (span := shared.next_span()) is not None:
            shared.run(span[0], span[1], own)
            done += span[1] - span[0]
            while True:  # what the helpers finished meanwhile
                try:
                    note(shared.reports.get_nowait())
                except queue.Empty:
                    break
            if cancelled():
                raise Cancelled
            progress(done / total)
        while running:
            note(shared.reports.get())
            if cancelled():
                raise Cancelled
            progress(done / total)
    finally:
        shared.stop.set()  # the helpers finish the span they hold, then stop
        while running:
            report = shared.reports.get()
            if report is None:
                running -= 1
