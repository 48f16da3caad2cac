"""Session -> compute -> session, in one direction.

The controller listens to the session's intent fields, turns each change into a
compute job, and writes the result back. Small vectors on the CPU are computed
inline (a few hundred microseconds: no thread hop, no flicker); large vectors,
batches, CUDA work and file loading go to the background executor.

Two rules keep the window honest under fast input (slider drags):
- a generation counter per channel: a result that arrives after a newer
  request was made is dropped, never shown;
- at most one background job per channel is in flight; newer requests replace
  the pending one instead of queueing, so a drag never builds a backlog.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from softmax_lab.app.executors import Cancelled, Executor, InlineExecutor, Job
from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.compute.analysis import VectorRequest, analyse_vector
from softmax_lab.compute.device import CudaStatus, cuda_status
from softmax_lab.compute.errors import SoftmaxLabError

log = logging.getLogger(__name__)

VECTOR_FIELDS = frozenset({"logits", "temperature", "dtype", "device", "target", "label_smoothing"})
BATCH_FIELDS = frozenset({"batch", "temperature", "dtype", "device", "batch_dim", "label_smoothing"})

# Above this many logits the vector is computed off the UI thread. Up to the largest
# LLM vocabulary it is cheaper inline (docs/performance.md, analyse_vector): a
# temperature change at 262,144 classes is ~2 ms of compute, a new vector ~8-9 ms,
# and the hand-off to a worker and back cost more than that at the tail (slowest
# ticks 116-120 ms with the worker against 24-27 ms inline, same machine, same hour).
INLINE_MAX_CLASSES = 262_144


CONTAINER_SUFFIXES = frozenset({".npz", ".pt", ".pth", ".safetensors"})


@dataclass(frozen=True)
class ArrayChoice:
    """A loaded container held several arrays: the person must pick one."""

    path: Path
    arrays: tuple[Any, ...]
    """:class:`~softmax_lab.compute.loaders.ArrayInfo` of each candidate."""
    targets_path: str | Path | None = None


def _no_choice(path: Path, arrays: tuple[Any, ...]) -> str | None:
    return None


@dataclass
class _Channel:
    """One stream of requests whose results replace each other (vector, batch, load)."""

    name: str
    generation: int = 0
    in_flight: Job | None = None
    pending: tuple[Job, Callable[[Any], None]] | None = None
    busy_label: str = ""
    jobs: list[Job] = field(default_factory=list)


class Controller:
    """Connects a :class:`Session` to the compute core.

    Parameters
    ----------
    session
        The state to watch and update.
    background
        Executor for large or slow jobs (the Qt thread pool in the app,
        :class:`InlineExecutor` in Qt-free tests).
    inline_max_classes
        Vectors up to this size on the CPU are computed synchronously.
    """

    def __init__(
        self,
        session: Session,
        background: Executor | None = None,
        inline_max_classes: int = INLINE_MAX_CLASSES,
    ) -> None:
        self.session = session
        self.inline = InlineExecutor()
        self.background: Executor = background if background is not None else self.inline
        self.inline_max_classes = inline_max_classes
        self._channels = {name: _Channel(name) for name in ("vector", "batch", "load", "warm-up")}
        self._held = False
        self.compute_ready = True
        """False while torch is still being imported (see :meth:`warm_up`): until then even
        small vectors are computed in the background, so no frame waits for the import."""
        self.choose_array: Callable[[Path, tuple[Any, ...]], str | None] = _no_choice
        """Asked, on the main thread, which array of a multi-array file to open
        (the window sets a dialog here; returning None cancels the open)."""
        session.changed.connect(self._on_session_changed)

    # -- wiring -------------------------------------------------------------------

    def start(self) -> None:
        """Compute the initial state (the built-in example) and any loaded batch."""
        self.request_vector()
        if self.session.batch is not None:
            self.request_batch()

    def hold(self) -> None:
        """Compute nothing until :meth:`warm_up`: the window's first frame comes first."""
        self._held = True

    def warm_up(self, done: Callable[[CudaStatus], None]) -> None:
        """Import torch and ask it about CUDA in the background, then call ``done`` with
        the answer on the main thread, and compute the current state. Importing torch
        takes seconds here; the window calls this after its first frame, and until torch
        is ready even small vectors are computed in the background."""
        self._held = False
        self.compute_ready = False

        def ready(status: CudaStatus) -> None:
            self.compute_ready = True
            done(status)

        self._submit("warm-up", Job(lambda _job: cuda_status(), "starting torch"), ready)
        self.start()

    def _on_session_changed(self, names: frozenset[str]) -> None:
        if names & VECTOR_FIELDS:
            self.request_vector()
        if names & BATCH_FIELDS and self.session.batch is not None:
            self.request_batch()
        if "batch" in names and self.session.batch is None:
            self.session.batch_analysis = None

    # -- vector -------------------------------------------------------------------

    def request_vector(self) -> None:
        if self._held:
            return
        s = self.session
        request = VectorRequest(
            logits=s.logits,
            temperature=s.temperature,
            dtype=s.dtype,
            device=s.device,
            target=s.target,
            label_smoothing=s.label_smoothing,
        )
        small = (
            request.logits.shape[0] <= self.inline_max_classes
            and request.device != "cuda"
            and self.compute_ready
        )

        def run(_job: Job) -> Any:
            analysis = analyse_vector(request)
            # Inline, what only some tabs show is computed if and when it is read; on a
            # worker, everything, so that no tab computes it on the UI thread.
            return analysis if small else analysis.complete()

        self._submit("vector", Job(run, "computing softmax"), self._vector_done, inline=small)

    def _vector_done(self, analysis: Any) -> None:
        self.session.update(analysis=analysis)
        self.session.clear_message("compute")

    # -- batch --------------------------------------------------------------------

    def request_batch(self) -> None:
        if self._held:
            return
        from softmax_lab.compute.batch import BatchRequest

        s = self.session
        batch = s.batch
        if batch is None:
            return
        request = BatchRequest(
            data=batch.data,
            temperature=s.temperature,
            dim=s.batch_dim,
            dtype=s.dtype,
            device=s.device,
            targets=batch.targets,
            label_smoothing=s.label_smoothing,
        )
        full = _batch_job(request, "computing batch statistics")
        rows = preview_rows(batch.data.shape, s.batch_dim)
        shown = s.batch_analysis
        first_view = shown is None or shown.request.data is not batch.data or shown.dim != s.batch_dim
        if rows is None or not first_view:
            self._submit("batch", full, self._batch_done)
            return
        # A large batch opens with its first rows (a fraction of a second), then the rest:
        # the heatmap appears at once and the window says the rest is being computed.
        preview = dataclasses.replace(
            request,
            data=batch.data[:rows],
            targets=None if batch.targets is None else batch.targets[:rows],
        )

        def preview_done(result: Any) -> None:
            self.session.batch_analysis = result
            self._submit("batch", full, self._batch_done)

        self._submit("batch", _batch_job(preview, f"reading the first {rows:,} rows"), preview_done)

    def _batch_done(self, result: Any) -> None:
        self.session.batch_analysis = result
        self.session.clear_message("compute")

    # -- files --------------------------------------------------------------------

    def open_file(
        self,
        path: str | Path,
        array_name: str | None = None,
        targets_path: str | Path | None = None,
    ) -> None:
        """Load a batch tensor in the background; on success it becomes ``session.batch``.

        A container holding several arrays (``.npz``, a dict in ``.pt``, ``.safetensors``)
        is listed in the background too (listing a ``.pt`` means unpickling it
        safely, which can take seconds); :attr:`choose_array` is then asked which
        one to open, on the main thread.
        """
        path = Path(path)

        def run(job: Job) -> LoadedBatch | ArrayChoice:
            from softmax_lab.compute.loaders import list_arrays, load_targets, load_tensor

            name = array_name
            if name is None and path.suffix.lower() in CONTAINER_SUFFIXES:
                arrays = list_arrays(path)
                job.check()
                if len(arrays) > 1:
                    return ArrayChoice(path, tuple(arrays), targets_path)
            loaded = load_tensor(path, name=name)
            job.check()
            data = loaded.data if loaded.data.ndim == 2 else loaded.data.reshape(1, -1)
            targets = loaded.targets  # a target/label column of a CSV, if any
            if targets_path is not None:
                targets = load_targets(
                    targets_path, num_rows=data.shape[0], num_classes=data.shape[1]
                )
            return LoadedBatch(
                data=data,
                path=path,
                class_names=loaded.class_names,
                array_name=loaded.name,
                targets=targets,
                nonfinite_count=loaded.nonfinite_count,
            )

        self._submit("load", Job(run, f"opening {path.name}"), self._load_done)

    def _load_done(self, loaded: LoadedBatch | ArrayChoice) -> None:
        s = self.session
        if isinstance(loaded, ArrayChoice):
            name = self.choose_array(loaded.path, loaded.arrays)
            if name is not None:
                self.open_file(loaded.path, array_name=name, targets_path=loaded.targets_path)
            return
        with s.updating():
            s.batch = loaded
            s.selected_row = None
            s.batch_analysis = None
        s.report("info", _describe_batch(loaded), "load")

    def set_targets(self, targets: np.ndarray | None) -> None:
        batch = self.session.batch
        if batch is None:
            return
        self.session.batch = dataclasses.replace(batch, targets=targets)

    def select_row(self, row: int) -> None:
        """Load one batch row into the editor (the person clicked it in the heatmap)."""
        s = self.session
        batch = s.batch
        if batch is None or not 0 <= row < batch.data.shape[0]:
            return
        logits = np.asarray(batch.data[row], dtype=np.float64)
        names = batch.class_names if batch.class_names else None
        target = None
        if batch.targets is not None:
            t = int(batch.targets[row])
            target = t if 0 <= t < logits.shape[0] else None
        with s.updating():
            s.set_vector(logits, names)
            s.target = target
            s.selected_row = row

    def stop(self) -> None:
        """Cancel everything and start nothing more (the window is closing)."""
        self.session.changed.disconnect(self._on_session_changed)
        for name in self._channels:
            self.cancel(name)

    def cancel(self, channel: str = "load") -> None:
        """Cancel the running job of ``channel`` (the person pressed Cancel)."""
        ch = self._channels[channel]
        ch.generation += 1
        ch.pending = None
        if ch.in_flight is not None:
            ch.in_flight.cancel()
        self._set_busy()

    # -- scheduling -----------------------------------------------------------------

    def _submit(
        self, channel: str, job: Job, done: Callable[[Any], None], inline: bool = False
    ) -> None:
        ch = self._channels[channel]
        ch.generation += 1
        if inline:
            if ch.in_flight is not None:
                ch.in_flight.cancel()  # its result is stale anyway
            ch.pending = None
            self._run(ch, job, done, self.inline, ch.generation)
            return
        if ch.in_flight is not None:
            # Coalesce: replace whatever was waiting; the running job finishes and is dropped.
            ch.in_flight.cancel()
            ch.pending = (job, done)
            return
        self._run(ch, job, done, self.background, ch.generation)

    def _run(
        self, ch: _Channel, job: Job, done: Callable[[Any], None], executor: Executor, generation: int
    ) -> None:
        background = executor is not self.inline
        if background:
            ch.in_flight = job
            ch.busy_label = job.label
            self._set_busy()

        def finished() -> None:
            if background and ch.in_flight is job:
                ch.in_flight = None
                ch.busy_label = ""
                if ch.pending is not None:
                    next_job, next_done = ch.pending
                    ch.pending = None
                    self._run(ch, next_job, next_done, self.background, ch.generation)
                self._set_busy()

        def on_done(value: Any) -> None:
            stale = generation != ch.generation
            finished()
            if not stale:
                done(value)

        def on_failed(error: BaseException) -> None:
            stale = generation != ch.generation
            finished()
            if stale or isinstance(error, Cancelled):
                return
            if isinstance(error, SoftmaxLabError):
                self.session.report("error", str(error), "load" if ch.name == "load" else "compute")
                return
            raise error  # a bug: let the excepthook show it

        def on_progress(fraction: float) -> None:
            if generation == ch.generation and background:
                label = job.label
                self._set_busy(f"{label} … {fraction:.0%}")

        executor.submit(job, on_done, on_failed, on_progress)

    def _set_busy(self, text: str | None = None) -> None:
        if text is None:
            labels = [c.busy_label for c in self._channels.values() if c.busy_label]
            text = "; ".join(labels)
        self.session.busy = text

    def busy_channels(self) -> list[str]:
        return [c.name for c in self._channels.values() if c.in_flight is not None]


PREVIEW_ELEMENTS = 1 << 24
"""Batches (dim=1) of more than four times this many logits are first shown with their
first rows, about this many logits (~0.1 s here), while the rest is computed."""


def preview_rows(shape: tuple[int, ...], dim: int) -> int | None:
    """How many rows to show first of an (N, C) batch, or None for no preview.

    Only for ``dim=1``: with ``dim=0`` every column needs every row.
    """
    n, c = shape
    if dim != 1 or n * c <= 4 * PREVIEW_ELEMENTS:
        return None
    return max(1, PREVIEW_ELEMENTS // c)


def _batch_job(request: Any, label: str) -> Job:
    from softmax_lab.compute.batch import BatchCancelled, batch_statistics

    def run(job: Job) -> Any:
        try:
            return batch_statistics(request, cancelled=lambda: job.cancelled, progress=job.progress)
        except BatchCancelled:
            raise Cancelled(job.label) from None

    return Job(run, label)


def _describe_batch(batch: LoadedBatch) -> str:
    n, c = batch.data.shape
    name = batch.path.name if batch.path else "batch"
    part = f" (array {batch.array_name!r})" if batch.array_name else ""
    extra = "" if batch.targets is None else f", with {len(batch.targets)} targets"
    # Counted by the loader, off this (UI) thread; a batch made in memory says nothing.
    count = batch.nonfinite_count
    nonfinite = f"; {count:,} values are NaN or infinite" if count else ""
    return f"Opened {name}{part}: {n} rows × {c} classes{extra}{nonfinite}."
