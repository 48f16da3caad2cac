"""Softmax statistics of a whole ``(N, C)`` batch, computed a chunk of rows at a time.

A batch may be a multi-gigabyte memory-mapped file, so it is never converted
in one piece: each chunk of rows is read once, stored in the requested dtype on
the requested device, and reduced to what the window shows (per-distribution
statistics, per-row sums and cross-entropy, and a max-binned heatmap). Memory
stays bounded by the chunk size whatever ``N`` is; a read-only memory-mapped
batch is read with ``pread`` into the chunk buffer, so its pages are never
mapped into the process (no page faults, no file-sized RSS).

``dim=1`` (each row a distribution, the right way) is one fused pass per chunk
that never forms the probabilities of a whole row block unless the heatmap
shows them one per cell. With ``s = (x - max x) / T`` (so ``max s = 0``) and
``S = sum exp(s)``:

* log-sum-exp ``= max x / T + log S``; max probability ``= 1 / S``; argmax is
  the argmax of the logits (exp is monotonic, so no probability is needed);
* entropy ``= log S - sum(exp(s) * s) / S``;
* cross-entropy ``= log S - s[target]``, and with label smoothing ``eps``:
  ``(1 - eps) * (log S - s[target]) + eps * (log S - mean(s))``, where
  ``mean(s)`` comes from the row sum of ``x - max``;
* a heatmap cell (the max over a bin of columns) ``= exp(max over the bin of s) / S``.

For float32 on the CPU (float16 and bfloat16 are computed in float32 too), ``S``,
``sum(exp(s) * s)`` and the heatmap cells of a chunk are one compiled pass,
compute/_fused.c (built by setup.py where a C compiler is found): each logit is
read once and nothing is written, where torch's kernels make five passes over
chunk buffers. A new temperature of a (256, 50,257) batch took about 3x less
time per core than with torch's kernels on the 2-core machine (docs/performance.md).
The first view's facts (max, argmax, min and sum of ``x - max``, the binned column
maxima) are one compiled pass too (``learn_rows``; rows with NaN, infinities or a
sum beyond float32 are handed back to torch's kernels). Without the compiled
module, or for float64, full-resolution heatmaps and temperatures whose 1/T leaves
float32's range, torch's kernels do the same work.

Chunks go to one worker per usable core (at most four; the calling thread is one
of them), each running torch single-threaded on its own buffers, or the compiled
passes (see :data:`WORKERS`).

``dim=0`` (each column a distribution: normalising across the batch, the
classic mistake) takes the column maxima first, then sums ``exp(s)`` and
``exp(s) * s`` down the columns (float64 across chunks), then a last pass
normalises for the heatmap and the row sums. For float32 on the CPU both of
those passes are compiled too (``column_sums`` and ``column_cells`` in
compute/_fused.c) and run on every core, S and W split by columns and the cells
by rows: a new T of a (256, 50,257) batch went from 45-51 to 17.7 ms on one
core; two workers take 0.79-0.85x of one's time on the 2-core machine (its
scheduler starts a woken helper up to 5 ms late here: docs/performance.md).

What does not depend on the temperature (maxima, argmax, row sums of
``x - max``, non-finite count, the binned column maxima) is kept for the last
read-only batch per ``dim`` (a loaded batch is read-only), so a temperature
drag over a loaded batch costs one subtract, one exp and two sums per logit.
On a GPU (dim=1) the batch itself is kept there too, in the dtype, when it
takes at most half of the device's free memory: a new temperature then copies
nothing across the bus (on an H200, 12 ms instead of 150 ms for a (4,096,
50,257) float32 batch, with torch's kernels). Where Triton is installed (torch's
CUDA builds bring it) S and W of the kept batch are one Triton kernel launch,
the GPU twin of the compiled pass (compute/gpu_passes.py; not yet timed on a GPU).

Exponentials are taken in base 2 for float32 (torch's exp2 is twice
as fast as its exp here) and clamped below where the result would be
subnormal: torch's vectorised exp takes 25-70x longer per element there
(measured; see docs/performance.md), and such terms change no sum (each is
below 1.2e-38 next to a sum of at least 1). The heatmap shows them as 0.

Precision: the logits are stored in the dtype; the arithmetic runs in the type
torch's own softmax kernels use for it (float32 for float16, bfloat16 and
float32; float64 for float64) and the per-distribution results are finished in
float64. Against a float64 reference on the stored logits, float32 results
agree within 2e-6 (probabilities, heatmap cells) and 1e-5 nats (entropy,
cross-entropy) up to 262,144 classes; float64 ones within 1e-12
(tests/compute/test_batch.py holds them to it).

Rows (dim=1) that hold NaN or +inf, or only -inf (where torch gives NaN),
take the careful reference path (torch's softmax and log-softmax themselves,
reduced in float64), so their NaN results follow torch exactly; so do the rare
distributions whose naive log-sum-exp lies within rounding of the dtype's
overflow limit, which are decided by a naive exp/sum in the dtype.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np

from softmax_lab.compute import gpu_passes
from softmax_lab.compute.chunk_threads import Cancelled, run_spans
from softmax_lab.compute.device import resolve_device, torch_threads
from softmax_lab.compute.dtypes import dtype_info, torch_dtype
from softmax_lab.compute.errors import ComputeMemoryError, InvalidInputError
from softmax_lab.compute.file_rows import FileRows
from softmax_lab.compute.validation import (
    IGNORE_INDEX,
    check_label_smoothing,
    check_temperature,
    normalise_dim,
)

try:  # the fused float32 row pass, compiled by setup.py where a C compiler was found
    from softmax_lab.compute import _fused
except ImportError:  # pragma: no cover - then torch's kernels do the same work
    _fused = None

# About 512K logits per chunk (2 MB per float32 buffer): the fused dim=1 pass is
# fastest there on the 2-core test machine (CPU time per logit, 2^16..2^21 tried:
# docs/performance.md). Smaller chunks pay Python's per-chunk overhead, larger ones
# fall out of cache between the passes over a chunk. dim=0 uses the same chunks.
CHUNK_ELEMENTS = 1 << 19
# On a GPU a chunk is a handful of kernel launches and, first time, one host-to-device
# copy. 4M logits (16 MB per float32 buffer) was fastest on an H200 for a (4,096,
# 50,257) batch (83 rows a chunk; 10, 333 and 1,335 rows were slower, warm and
# cold): s and exp(s) of a chunk stay in its 60 MB L2 cache between the passes.
GPU_CHUNK_ELEMENTS = 1 << 22
# A read-only batch's first pass on a GPU also keeps a copy of it there (in the
# dtype) when it takes at most this fraction of the device's free memory: a new
# temperature then reads no host memory and copies nothing across the bus.
RESIDENT_MAX_FRACTION = 0.5
# The heatmap is for looking at: beyond a screen's worth of pixels, bin.
HEATMAP_MAX_ROWS = 2048
HEATMAP_MAX_COLS = 4096

# numpy dtypes torch.from_numpy takes as they are; anything else goes through float64.
_DIRECT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class BatchCancelled(Exception):
    """Raised between chunks when ``cancelled()`` returned True."""


@dataclass(frozen=True, eq=False)
class BatchRequest:
    """A batch of logits and how to normalise it."""

    data: np.ndarray
    """(N, C) logits, any real dtype; may be a read-only ``np.memmap``."""
    temperature: float = 1.0
    dim: int = 1
    """1: each row is a distribution (right); 0: each column (the classic mistake)."""
    dtype: str = "float32"
    device: str = "auto"
    targets: np.ndarray | None = None
    """(N,) integer class indices; ``IGNORE_INDEX`` (-100) leaves a row out of the loss."""
    label_smoothing: float = 0.0


@dataclass(frozen=True, eq=False)
class BatchResult:
    """What the batch view shows; per-distribution arrays follow ``dim``."""

    request: BatchRequest
    device: str
    shape: tuple[int, int]
    dim: int
    heatmap: np.ndarray
    """float32 probabilities in the (N, C) layout, each cell the max over a
    ``heatmap_row_bin`` x ``heatmap_col_bin`` bin (the last bins may be smaller)."""
    heatmap_row_bin: int
    heatmap_col_bin: int
    entropy: np.ndarray
    """Per distribution (per row if dim=1, per column if dim=0), nats; NaN where the distribution is NaN."""
    max_probability: np.ndarray
    argmax: np.ndarray
    """Index of the most probable entry per distribution (first on ties), -1 where NaN."""
    row_sums: np.ndarray
    """(N,) sum of the probabilities along each row of the (N, C) layout: 1 for dim=1, not for dim=0."""
    cross_entropy: np.ndarray | None
    """(N,) per row: -sum(q * log p[row]) with p normalised along ``dim`` and q the
    (smoothed) target distribution; 0 for ignored rows, as torch gives."""
    mean_cross_entropy: float | None
    """Mean over the rows that are not ignored (NaN if every row is ignored)."""
    naive_overflow_rows: int
    """How many distributions overflow a naive exp/sum in the dtype (an exp or the sum is inf)."""
    nonfinite_count: int
    """How many logits are NaN or infinite as stored in the dtype (a finite value
    beyond the dtype's range counts)."""

    @property
    def num_distributions(self) -> int:
        return int(self.entropy.shape[0])


@dataclass(frozen=True)
class _Plan:
    data: np.ndarray
    n: int
    c: int
    temperature: float
    dim: int
    dtype: str
    device: str
    targets: np.ndarray | None
    smoothing: float
    chunk_rows: int
    row_bin: int
    col_bin: int
    chunk_rows_given: bool = False  # by the caller: every pass keeps to it


def batch_statistics(
    request: BatchRequest,
    *,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[float], None] = lambda f: None,
    chunk_rows: int | None = None,
) -> BatchResult:
    """Softmax of ``data / T`` along ``dim`` for a whole batch, reduced to what the window shows.

    Parameters
    ----------
    request
        The batch and how to normalise it.
    cancelled
        Polled between chunks; once it returns True, :class:`BatchCancelled` is raised.
    progress
        Called with the fraction done (0..1) after each chunk, and with 1.0 at the end.
    chunk_rows
        Rows per chunk; by default about :data:`CHUNK_ELEMENTS` logits per chunk.

    Returns
    -------
    BatchResult

    Raises
    ------
    InvalidInputError
        Not a 2-D array of real numbers, bad temperature, dim, dtype, label
        smoothing, or targets of the wrong length or out of range.
    DeviceUnavailableError
        CUDA requested but not available.
    ComputeMemoryError
        A chunk did not fit in memory on the device.
    BatchCancelled
        ``cancelled()`` returned True.
    """
    import torch

    plan = _plan(request, chunk_rows)
    report = _in_steps(progress)
    try:
        with torch.no_grad():
            if plan.dim == 1:
                return _by_rows(request, plan, cancelled, report)
            return _by_columns(request, plan, cancelled, report)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ComputeMemoryError(
            f"out of memory on {plan.device} computing softmax of a {plan.n} x {plan.c} batch "
            f"in {plan.dtype} ({plan.chunk_rows} rows at a time); try the CPU, a smaller dtype "
            "or a smaller file"
        ) from exc


def _in_steps(progress: Callable[[float], None], step: float = 0.01) -> Callable[[float], None]:
    """``progress``, called only when the fraction grew by ``step`` (and always at 1.0).

    A gigabyte is hundreds of chunks; each report crosses to the UI thread, where
    it would compete with the workers for the interpreter.
    """
    last = -1.0

    def report(fraction: float) -> None:
        nonlocal last
        if fraction >= 1.0 or fraction - last >= step:
            last = fraction
            progress(fraction)

    return report


# -- validation --------------------------------------------------------------------


def _plan(request: BatchRequest, chunk_rows: int | None) -> _Plan:
    data = request.data if isinstance(request.data, np.ndarray) else np.asarray(request.data)
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise InvalidInputError(f"a batch must hold real numbers, got values of type {data.dtype}")
    if data.ndim != 2:
        raise InvalidInputError(
            f"a batch is a 2-D (N, C) array of logits, got {data.ndim}-D shape {tuple(data.shape)}"
        )
    n, c = (int(s) for s in data.shape)
    if n == 0 or c == 0:
        raise InvalidInputError(f"the batch is empty (shape {n} x {c})")
    temperature = check_temperature(request.temperature)
    dim = normalise_dim(int(request.dim), 2)
    dtype_info(request.dtype)
    smoothing = check_label_smoothing(request.label_smoothing)
    targets = _check_targets(request.targets, n, c)
    device = resolve_device(request.device)
    given = chunk_rows is not None
    if chunk_rows is None:
        chunk_rows = max(1, (CHUNK_ELEMENTS if device == "cpu" else GPU_CHUNK_ELEMENTS) // c)
    elif chunk_rows < 1:
        raise InvalidInputError(f"chunk_rows must be at least 1 (got {chunk_rows})")
    return _Plan(
        data=data,
        n=n,
        c=c,
        temperature=temperature,
        dim=dim,
        dtype=request.dtype,
        device=device,
        targets=targets,
        smoothing=smoothing,
        chunk_rows=min(int(chunk_rows), n),
        row_bin=-(-n // HEATMAP_MAX_ROWS),
        col_bin=-(-c // HEATMAP_MAX_COLS),
        chunk_rows_given=given,
    )


def _check_targets(targets: np.ndarray | None, n: int, c: int) -> np.ndarray | None:
    if targets is None:
        return None
    t = np.asarray(targets)
    if not np.issubdtype(t.dtype, np.integer):
        raise InvalidInputError(
            f"targets must be integer class indices, got values of type {t.dtype}"
        )
    if t.shape != (n,):
        raise InvalidInputError(
            f"got targets of shape {tuple(t.shape)} for {n} rows: give one class index per row"
        )
    t = t.astype(np.int64)
    bad = (t != IGNORE_INDEX) & ((t < 0) | (t >= c))
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"target {int(t[row])} of row {row} is out of range: there are {c} classes "
            f"(0..{c - 1}; {IGNORE_INDEX} leaves a row out)"
        )
    return t


# -- the two layouts ---------------------------------------------------------------


def _by_rows(
    request: BatchRequest,
    plan: _Plan,
    cancelled: Callable[[], bool],
    progress: Callable[[float], None],
) -> BatchResult:
    acc = _Accumulator(plan)
    kernel = _RowKernel(plan, acc)
    chunks = _chunks(plan)
    workers = _workers(plan, len(chunks))
    if kernel.fused and kernel.reads_in_place and not plan.chunk_rows_given:
        chunks = _chunks(plan, _in_place_rows(plan, workers))
    if kernel.reads_kept and not plan.chunk_rows_given:
        chunks = [(0, plan.n)]  # one launch: the kept batch is read at the GPU's pace
    # One torch thread per worker: chunks run side by side instead of every torch
    # call forking and joining an OpenMP team (see WORKERS below).
    with contextlib.closing(kernel), torch_threads(1 if plan.device == "cpu" else None):
        if workers == 1:
            buffers = kernel.buffers()
            for r0, r1 in chunks:
                if cancelled():
                    raise BatchCancelled("batch statistics cancelled")
                kernel.run(r0, r1, buffers)
                progress(r1 / plan.n)
        else:
            _run_parallel(
                kernel.run,
                chunks,
                workers,
                buffers=kernel.buffers,
                total=plan.n,
                cancelled=cancelled,
                progress=progress,
            )
        entropy, max_probability, argmax, overflow = kernel.finish()
    progress(1.0)
    return acc.result(request, entropy, max_probability, argmax, overflow)


# -- threads -----------------------------------------------------------------------

# How batches use the cores (measured on a shared 2-core machine: docs/performance.md).
# Letting each torch call split itself over torch's threads (OpenMP) costs a
# fork/join per call; on a busy machine a join waits for a descheduled thread,
# and one call on a 50,000-element row took 8 ms instead of 0.08 ms. So the
# batch is split instead: workers take whole chunks, each running torch
# single-threaded on its own buffers (or the compiled passes); they never wait for
# each other until the last chunk. The calling thread is one of the workers, and
# the others are helper threads kept between batches (compute/chunk_threads.py).
# Every core takes part. For a new T of (256, 50,257) on the 2-core machine, 2
# workers against 1: compiled pass 0.70x in a quiet make bench (per-round
# 0.64..0.80); torch's kernels 0.65x (0.60..0.76, 20 interleaved rounds). Torch's
# kernels used to leave a core free: with threads started per batch and the caller
# only waiting, one worker had taken 0.81x the time of two.
WORKERS: int | None = None
"""Chunk workers on the CPU (dim=1, and dim=0's compiled passes), the calling thread
included; None: the usable cores, at most :data:`DEFAULT_MAX_WORKERS`. Counted from
the cores, not ``torch.get_num_threads()``, so a UI process that runs torch
single-threaded for its small vectors keeps its parallel batches."""
DEFAULT_MAX_WORKERS = 4
"""Each worker's passes stream its chunk buffers through memory (together they are
larger than a core's L2), so beyond a few workers they compete for bandwidth rather
than add to it. On a 16-core Xeon (a GPU machine's host), a new temperature of a
(256, 50,257) batch took 12.3 ms on 4 workers against 17.8 ms on 15, and of a
(4,096, 50,257) batch 140 against 160 ms (interleaved, same process); 8 workers
were no better than 4 in an earlier sweep (torch's kernels; the compiled pass was
not measured there)."""
PARALLEL_MIN_ELEMENTS = 1 << 21
"""Smaller batches run on the calling thread alone (a few milliseconds of work)."""


def _workers(plan: _Plan, chunks: int) -> int:
    """Chunk workers (see :data:`WORKERS`), never more than ``chunks``."""
    if plan.device != "cpu" or plan.n * plan.c < PARALLEL_MIN_ELEMENTS:
        return 1
    wanted = WORKERS if WORKERS is not None else min(_usable_cores(), DEFAULT_MAX_WORKERS)
    return max(1, min(wanted, chunks))


FUSED_CHUNK_ELEMENTS = 1 << 22
"""At most this many logits per chunk when the compiled pass reads a warm batch
where it lies (no chunk buffers to fit in cache): about four chunks per worker.
Between chunks a worker runs Python, which the other workers wait for (the
interpreter lock); at 10-row chunks that left each of 2 workers idle 30% of a new
temperature of (256, 50,257)."""


def _in_place_rows(plan: _Plan, workers: int) -> int:
    per_worker = -(-plan.n // (4 * workers))
    return max(plan.chunk_rows, min(per_worker, max(1, FUSED_CHUNK_ELEMENTS // plan.c)))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run_parallel(
    run: Callable[[int, int, Any], None],
    spans: list[tuple[int, int]],
    workers: int,
    *,
    buffers: Callable[[], Any],
    total: int,
    cancelled: Callable[[], bool],
    progress: Callable[[float], None],
) -> None:
    """:func:`run_spans` (compute/chunk_threads.py: this thread and helpers kept
    between batches take the spans, row chunks or dim=0's column ranges), its cancel
    raised as :class:`BatchCancelled`."""
    try:
        run_spans(run, spans, workers, buffers, total, cancelled, progress)
    except Cancelled:
        raise BatchCancelled("batch statistics cancelled") from None


# -- the fused row kernel ------------------------------------------------------------


# float32 exponentials are taken base 2: torch's exp2 is twice as fast as its exp
# here (0.75 vs 1.5 ns per float32; for float64, exp is the faster). Below the
# floor the result is subnormal, where both fall back to paths up to 70x slower
# per element (measured); such terms are below 1.2e-38 next to a sum >= 1.
_LOG2_E = 1.0 / math.log(2.0)
FUSED_KERNEL = True
"""Use compute/_fused.c for float32 rows where it was built (False: torch's kernels
only; the tests and the benchmark compare the two)."""
_EXP_FLOOR = {"float32": -126.0, "float64": math.log(2.0**-1022)}


@dataclass(eq=False)
class _RowFacts:
    """What a row's statistics need that does not depend on the temperature."""

    row_max: np.ndarray
    """(N,) float64: the largest stored logit (NaN if the row holds a NaN)."""
    argmax: np.ndarray
    """(N,) int64: first index of the largest logit."""
    shifted_sum: np.ndarray
    """(N,) float64: sum of (x - row max), for label smoothing's mean log p (summed
    after the shift: six logits of -1e18 must give 0 here, not float32 noise)."""
    shifted_min: np.ndarray
    """(N,) float64: min of (x - row max): the least probable class, whose log p
    decides whether a smoothed loss leaves the dtype's range."""
    nonfinite: np.ndarray
    """(N,) int64: NaN or infinite logits as stored."""
    col_max: Any
    """(N, ceil(C / col_bin)) max of the stored logits over each heatmap column bin,
    in the compute type; None when every column is its own bin. A numpy array, or
    a tensor on the GPU beside ``resident``."""
    resident: Any = None
    """(N, C) tensor: the batch as stored in the dtype, on the GPU, when it fits
    (:data:`RESIDENT_MAX_FRACTION`); None on the CPU."""
    filled: int = 0
    """How many leading rows hold values (complete when equal to N)."""

    def kept_bytes(self) -> int:
        """Host memory kept (the GPU copies were budgeted against the device's memory)."""
        return int(self.col_max.nbytes) if isinstance(self.col_max, np.ndarray) else 0


@dataclass(eq=False)
class _ColumnFacts:
    """dim=0: what each column's statistics need that does not depend on the temperature."""

    column_max: np.ndarray
    """(C,) float64: the largest stored logit of each column (NaN if it holds a NaN)."""
    argmax: np.ndarray
    """(C,) int64: the first row holding the column's max (learnt in the second pass)."""
    shifted_sum: np.ndarray
    """(N,) float64: each row's sum of (x - column max), for label smoothing
    (learnt in the second pass)."""
    nonfinite: int = 0
    filled: int = 0
    """N once every pass that learns something has run."""

    def kept_bytes(self) -> int:
        return 0


@dataclass(frozen=True)
class _FactsKey:
    dim: int
    address: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    source: str
    dtype: str
    device: str
    col_bin: int


# The last read-only batch's facts, one slot per dim (a person may flip between
# the two on the same batch): a temperature drag recomputes only what depends on T.
_FACTS_LOCK = threading.Lock()
_FACTS: dict[int, tuple[weakref.ref[np.ndarray], _FactsKey, _RowFacts | _ColumnFacts]] = {}
_F = TypeVar("_F", _RowFacts, _ColumnFacts)
# Beyond this the binned column maxima are recomputed instead of kept.
FACTS_MAX_BYTES = 256 * 2**20


def _facts_key(plan: _Plan) -> _FactsKey | None:
    data = plan.data
    # Only a read-only array can be trusted not to change between two calls
    # (a memory-mapped file is; a writable array may be edited in place). Looser than
    # compute.kept.unchanging, which also asks the array to own its data: a mapped
    # file and a loaded .pt (a view of the tensor torch.load made) own none, and the
    # loaders hand out nothing else (compute/loaders.py makes every load read-only).
    if data.flags.writeable:
        return None
    return _FactsKey(
        dim=plan.dim,
        address=int(data.__array_interface__["data"][0]),
        shape=tuple(data.shape),
        strides=tuple(data.strides),
        source=data.dtype.str,
        dtype=plan.dtype,
        device=plan.device,
        col_bin=plan.col_bin,
    )


def _cached_facts(plan: _Plan, key: _FactsKey | None, kind: type[_F]) -> _F | None:
    if key is None:
        return None
    with _FACTS_LOCK:
        entry = _FACTS.get(plan.dim)
    if entry is None:
        return None
    ref, cached_key, facts = entry
    if ref() is plan.data and cached_key == key and facts.filled == plan.n:
        assert isinstance(facts, kind)
        return facts
    return None


def _keep_facts(plan: _Plan, key: _FactsKey | None, facts: _RowFacts | _ColumnFacts) -> None:
    if key is None or facts.filled != plan.n:
        return
    with _FACTS_LOCK:
        if facts.kept_bytes() <= FACTS_MAX_BYTES:
            _FACTS[plan.dim] = (weakref.ref(plan.data, _forget), key, facts)
        else:
            _FACTS.pop(plan.dim, None)


def _forget(ref: weakref.ref[np.ndarray]) -> None:
    """A kept batch was closed: free its facts (the binned maxima can be 100 MB).

    Runs from the garbage collector, possibly while this very thread holds
    _FACTS_LOCK, so it takes no lock: the slot goes only if it still holds ``ref``.
    """
    for dim, entry in list(_FACTS.items()):
        if entry[0] is ref and _FACTS.get(dim) is entry:
            _FACTS.pop(dim, None)


def clear_cache(dim: int | None = None) -> None:
    """Forget the kept temperature-independent facts (of one ``dim``, or all)."""
    with _FACTS_LOCK:
        if dim is None:
            _FACTS.clear()
        else:
            _FACTS.pop(dim, None)


@dataclass
class _Buffers:
    """One worker's chunk-sized buffers: as read, in the compute type, s and exp(s)."""

    src: np.ndarray
    x: Any
    s: Any
    e: Any


def _torch_dtype_of(dtype: np.dtype) -> Any:
    import torch

    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class _Kernel:
    """What both layouts share: the compute type, 1/T in the exponential's base,
    staging a chunk out of the batch, per-worker buffers and heatmap cells."""

    def __init__(self, plan: _Plan, acc: _Accumulator) -> None:
        import torch

        self.plan, self.acc = plan, acc
        dev = plan.device
        self.tdtype = torch_dtype(plan.dtype)
        # torch's softmax kernels compute half types in float32.
        self.cdtype = torch.float64 if self.tdtype == torch.float64 else torch.float32
        cname = "float64" if self.cdtype == torch.float64 else "float32"
        self.floor = _EXP_FLOOR[cname]
        # 1/T, kept inside the compute type's normal range: beyond it T is as good as 0
        # (every s < 0 goes to the floor: the argmax one-hot) or as good as infinite
        # (every finite s is 0: uniform over the finite logits; -inf stays -inf, where
        # 1/T rounding to 0 would make -inf * 0 = NaN).
        info = dtype_info(cname)
        # T as torch divides by it: a Python float divisor is rounded to the compute
        # type first. Only one end of the range changes what it decides: a T beyond
        # float32's max (by half an ulp) becomes inf there, and torch's x / T is 0 for
        # every finite x (hypothesis found x = [1e38, 0] at such a T giving 0.57 here
        # against torch's 0.5). At the other end, x / T is -inf either way.
        with np.errstate(over="ignore"):
            rounded = float(np.float64(plan.temperature).astype(cname))
        self.temperature = rounded if math.isinf(rounded) else plan.temperature
        inverse = 1.0 / self.temperature  # inf for T < 5.6e-309; 0 for T = inf
        self.scale = min(max(inverse, info.smallest_normal), info.max / 2.0)
        self.scale_clamped = self.scale != inverse
        # s is kept in the exponential's base: s = (x - max) / T, times log2(e) for exp2.
        # With 1/T outside the compute type's normal range (T -> 0 in a lecture, or
        # an absurdly large T) s is computed exactly, (x - max) / T in float64, and
        # rounded into the compute type: a clamped scale would blur what T decides.
        self.base2 = cname == "float32"
        self.s_scale = self.scale * _LOG2_E if self.base2 else self.scale
        self.s_unit = math.log(2.0) if self.base2 else 1.0
        self.exp = torch.exp2 if self.base2 else torch.exp
        self.tiny = dtype_info(cname).smallest_normal

        src = plan.data.dtype if plan.data.dtype in _DIRECT_DTYPES else np.dtype(np.float64)
        self.src_dtype = src.newbyteorder("=")
        self.src_is_stored = _torch_dtype_of(self.src_dtype) == self.tdtype and dev == "cpu"
        # The compute-type copy x is needed unless the staged rows already are it: on
        # the CPU, a batch stored in the compute type; on a GPU, any dtype that is its
        # own compute type (the staged rows are a tensor of their own there).
        self.needs_x = not ((self.src_is_stored or dev != "cpu") and self.tdtype == self.cdtype)
        # A memory-mapped batch is read with pread: no page faults, no mapped pages.
        self.file = FileRows.open(plan.data, self.src_dtype)
        # Warm, the max can be subtracted straight from an in-memory batch (no
        # staging copy) when it already holds the compute type in native order.
        self.direct = (
            dev == "cpu"
            and plan.data.dtype == self.src_dtype
            and not self.needs_x
            and self.file is None
        )
        # The compiled passes (compute/_fused.c) where they were built: float32 on the
        # CPU, with 1/T within float32's range (outside it s is computed in float64),
        # reading rows whose columns are contiguous. Each layout may narrow this.
        self.compiled = (
            _fused is not None
            and FUSED_KERNEL
            and dev == "cpu"
            and self.cdtype == torch.float32
            and not self.scale_clamped
            and (not self.direct or plan.data.strides[1] == plan.data.itemsize)
        )

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def buffers(self) -> _Buffers:
        """One worker's chunk buffers, reused for every chunk it takes."""
        import torch

        rows, c, dev = self.plan.chunk_rows, self.plan.c, self.plan.device

        def tensor() -> Any:
            return torch.empty((rows, c), dtype=self.cdtype, device=dev)

        return _Buffers(
            src=self._host_buffer(rows, c),
            x=tensor() if self.needs_x else None,
            s=tensor(),
            e=tensor(),
        )

    def _host_buffer(self, rows: int, c: int) -> np.ndarray:
        """Where chunks are read to. For a GPU it is page-locked memory: a copy from
        ordinary (pageable) memory went at 7 GB/s on an H200 machine, through the
        driver's own staging buffer."""
        import torch

        if self.plan.device != "cpu":
            try:
                pinned = torch.empty(
                    (rows, c), dtype=_torch_dtype_of(self.src_dtype), pin_memory=True
                )
                return pinned.numpy()  # the array keeps the tensor (its memory) alive
            except RuntimeError:  # no page-locked memory to be had: the ordinary kind
                pass
        return np.empty((rows, c), dtype=self.src_dtype)

    def _rows(self, r0: int, r1: int, x: Any) -> np.ndarray:
        """Rows r0..r1 for the compiled passes: ``x`` as staged, or (None) where they lie."""
        return self.plan.data[r0:r1] if x is None else x.numpy()

    def _stage(self, r0: int, r1: int, buffers: _Buffers) -> tuple[Any, Any]:
        """Rows r0..r1 as (stored in the dtype, in the compute type), both on the device."""
        t = self._read(r0, r1, buffers)
        stored = t if self.src_is_stored else t.to(device=self.plan.device, dtype=self.tdtype)
        return stored, self._in_compute_type(stored, buffers)

    def _read(self, r0: int, r1: int, buffers: _Buffers) -> Any:
        """Rows r0..r1 of the batch, as read into the host buffer (a CPU tensor)."""
        import torch

        buf = buffers.src[: r1 - r0]
        # One copy out of a (possibly read-only, memory-mapped, big-endian or
        # integer) batch: torch cannot wrap a read-only array, and it is the
        # conversion numpy would otherwise do in a pass of its own.
        if self.file is not None:
            self.file.read(r0, r1, buf)
        else:
            np.copyto(buf, self.plan.data[r0:r1], casting="unsafe")
        return torch.from_numpy(buf)

    def _in_compute_type(self, stored: Any, buffers: _Buffers) -> Any:
        if buffers.x is None:
            return stored
        x = buffers.x[: stored.shape[0]]
        x.copy_(stored)
        return x

    def _exponentials(
        self,
        r0: int,
        r1: int,
        x: Any,
        m: Any,
        buffers: _Buffers,
        shifted: bool = False,
        clamp: bool = True,
    ) -> tuple[Any, Any]:
        """s = (x - m) * s_scale, clamped at the floor, and exp(s) (base 2 for float32).

        ``x`` None: read rows r0..r1 straight from the batch (the direct path);
        ``shifted``: ``buffers.s`` already holds x - m; ``clamp`` False: the caller
        knows no s can fall below the floor.
        """
        import torch

        rows = r1 - r0
        s = buffers.s[:rows]
        if shifted:
            pass
        elif x is None:
            np.subtract(self.plan.data[r0:r1], m.numpy(), out=s.numpy())
        else:
            torch.sub(x, m, out=s)
        self._scale(s)
        if clamp:
            s.clamp_(min=self.floor)  # NaN stays NaN
        return s, self.exp(s, out=buffers.e[:rows])

    def _scale(self, diff: Any) -> Any:
        """``diff`` (x - max, in the compute type) -> s = diff / T in the exponential's
        base, in place."""
        import torch

        if self.scale_clamped:  # exactly, through float64 (chunk-sized, rare)
            wide = diff.to(torch.float64)
            # -inf stays -inf (a masked class), also where T is inf and -inf / inf is NaN
            exact = torch.where(torch.isneginf(wide), wide, wide / self.temperature)
            if self.base2:
                exact.mul_(_LOG2_E)
            return diff.copy_(exact)  # beyond the range: -inf, as the dtype would say
        if self.s_scale != 1.0:
            diff.mul_(self.s_scale)
        return diff

    def _scaled(self, diff: np.ndarray) -> np.ndarray:
        """``diff / T`` in float64 (what log p needs: -inf where it overflows, and for
        -inf itself, also at T = inf)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(np.isneginf(diff), diff, diff / self.temperature)

    def _log_p(self, diff: np.ndarray, log_total: np.ndarray) -> np.ndarray:
        """log p of one entry, ``diff / T - log S``, as log_softmax in the dtype gives it:
        below -max of the dtype it is -inf (T -> 0: the target's probability is 0)."""
        log_p = self._scaled(diff) - log_total
        limit = dtype_info(self.plan.dtype).max
        with np.errstate(invalid="ignore"):
            return np.where(log_p < -limit, -np.inf, log_p)

    def _cells(self, p: Any) -> np.ndarray:
        """Heatmap cells as float32; a probability below the smallest normal number of the
        compute type is shown as 0 (the floor's clamped terms land there too)."""
        return _numpy(self._cell_values(p))

    def _cell_values(self, p: Any) -> Any:
        """:meth:`_cells`, left on the device."""
        import torch
        import torch.nn.functional as F

        return F.threshold_(p, self.tiny, 0.0).to(torch.float32)

    def _naive_overflow_exact(self, block: np.ndarray, dim: int) -> np.ndarray:
        """The naive way, for distributions near the limit: exp(x / T) in the dtype,
        the sum of the exps in float64 rounded to the dtype; overflow if either is inf."""
        import torch

        src = block.dtype if block.dtype in _DIRECT_DTYPES else np.dtype(np.float64)
        xs = torch.from_numpy(np.array(block, dtype=src.newbyteorder("="), order="C"))
        xs = xs.to(device=self.plan.device, dtype=self.tdtype)
        exp_naive = torch.exp(xs / self.plan.temperature)
        inf_any = torch.isinf(exp_naive).any(dim=dim)
        sum_inf = torch.isinf(exp_naive.to(torch.float64).sum(dim=dim).to(self.tdtype))
        return _numpy(inf_any | sum_inf)


class _RowKernel(_Kernel):
    """dim=1: the fused pass over each chunk of rows, with buffers kept between chunks.

    Per chunk only torch's vectorised kernels run (subtract, scale, exp, two row
    sums, and the heatmap cells when every column is its own bin); everything
    per row (entropy, loss, overflow, the binned heatmap) is finished once for
    all rows in :meth:`finish`, so a chunk of one row costs little more than its
    arithmetic.
    """

    def __init__(self, plan: _Plan, acc: _Accumulator) -> None:
        import torch

        super().__init__(plan, acc)
        self.key = _facts_key(plan)
        cached = _cached_facts(plan, self.key, _RowFacts)
        self.cold = cached is None
        self.facts = cached if cached is not None else self._new_facts()
        # Per-row sums, written by each chunk: S = sum exp(s) and W = sum exp(s) * s.
        self.total = torch.empty(plan.n, dtype=self.cdtype, device=plan.device)
        self.weighted = torch.empty(plan.n, dtype=self.cdtype, device=plan.device)
        self.row_max_t: Any = None  # the row maxima in the compute type, once known
        self.heat_full = plan.col_bin == 1
        # S and W of a float32 chunk in one compiled pass (compute/_fused.c) where it
        # was built: a new temperature then reads each logit once and writes nothing.
        # Full-resolution heatmap cells need p itself, and an exactly computed s
        # (1/T out of range) needs float64: those take torch's kernels.
        self.fused = (
            self.compiled
            and self.facts.resident is None  # (tests run the GPU's kept copy on the CPU)
            and not self.heat_full
        )
        if self.fused:  # the compiled pass writes the sums through these views
            self.total_np, self.weighted_np = self.total.numpy(), self.weighted.numpy()
        # The same pass on a GPU, in Triton (compute/gpu_passes.py), over the batch kept
        # there: one launch for a whole warm batch instead of seven per chunk.
        self.gpu_pass = (
            self.facts.resident is not None
            and gpu_passes.usable(plan.device)
            and self.cdtype == torch.float32
            and not self.scale_clamped
            and not self.heat_full
        )
        # One heatmap row per batch row: a chunk's cells are final once its S is known.
        self.cells_in_chunks = self.fused and plan.row_bin == 1
        # The fused pass reads rows where they lie (first view included: the compiled
        # learn pass reads them too), and so do torch's kernels warm: no chunk buffer.
        self.reads_in_place = self.direct and (self.fused or not self.cold)
        if not self.cold:
            self._row_max()  # built once, before any worker reads it

    def _new_facts(self) -> _RowFacts:
        n = self.plan.n
        nbins = -(-self.plan.c // self.plan.col_bin) if self.plan.col_bin > 1 else 0
        resident, col_max = self._resident_copies(nbins)
        if nbins and col_max is None:
            col_max = np.empty((n, nbins), dtype=_numpy_dtype(self.cdtype))
        return _RowFacts(
            row_max=np.empty(n),
            argmax=np.empty(n, dtype=np.int64),
            shifted_sum=np.empty(n),
            shifted_min=np.empty(n),
            nonfinite=np.zeros(n, dtype=np.int64),
            col_max=col_max,
            resident=resident,
        )

    def _resident_copies(self, nbins: int) -> tuple[Any, Any]:
        """On a GPU, for a batch whose facts will be kept: an empty (N, C) tensor in the
        dtype for the batch and one for the binned maxima (None without bins), filled by
        the first pass. (None, None) on the CPU, or where they would take more than
        :data:`RESIDENT_MAX_FRACTION` of the device's free memory."""
        import torch

        plan = self.plan
        if self.key is None or not _keeps_resident(plan.device):
            return None, None
        device = torch.device(plan.device)
        batch_bytes = plan.n * plan.c * torch.empty(0, dtype=self.tdtype).element_size()
        bins_bytes = plan.n * nbins * torch.empty(0, dtype=self.cdtype).element_size()
        if batch_bytes + bins_bytes > RESIDENT_MAX_FRACTION * _free_bytes(device):
            return None, None
        try:
            resident = torch.empty((plan.n, plan.c), dtype=self.tdtype, device=device)
            col_max = (
                torch.empty((plan.n, nbins), dtype=self.cdtype, device=device) if nbins else None
            )
        except torch.OutOfMemoryError:  # another process took the memory meanwhile
            return None, None
        return resident, col_max

    def _stage(self, r0: int, r1: int, buffers: _Buffers) -> tuple[Any, Any]:
        resident = self.facts.resident
        if resident is None:
            return super()._stage(r0, r1, buffers)
        stored = resident[r0:r1]
        if self.cold:  # the one time these rows cross to the GPU
            stored.copy_(self._read(r0, r1, buffers))
        return stored, self._in_compute_type(stored, buffers)

    def _max_of(self, at: slice | np.ndarray) -> Any:
        """Rows ``at`` (a range, or indices): their max as an (rows, 1) tensor in the
        compute type."""
        import torch

        row_max = self.facts.row_max[at]
        # Rows whose max is not finite take the careful path; 0 keeps their arithmetic quiet.
        safe = np.where(np.isfinite(row_max), row_max, 0.0)
        return torch.from_numpy(safe[:, None]).to(device=self.plan.device, dtype=self.cdtype)

    def _chunk_max(self, r0: int, r1: int) -> Any:
        if self.cold:  # the facts of this chunk were learnt just now
            return self._max_of(slice(r0, r1))
        return self._row_max()[r0:r1]

    def _row_max(self) -> Any:
        if self.row_max_t is None:
            self.row_max_t = self._max_of(slice(0, self.plan.n))
        return self.row_max_t

    def buffers(self) -> _Buffers | None:
        """One worker's chunk buffers; None where the compiled pass reads a warm batch
        where it lies (it touches no buffer, and three chunk-sized tensors per worker
        were 0.03 ms of a 3.4 ms new temperature), or the GPU pass reads the kept one."""
        if (self.fused and self.reads_in_place) or self.reads_kept:
            return None
        return super().buffers()

    def run(self, r0: int, r1: int, buffers: Any) -> None:
        """Rows r0..r1: learn their facts if new, then S and W (and full-resolution cells)."""
        import torch

        x = None
        if not (self.reads_in_place or self.reads_kept):
            _, x = self._stage(r0, r1, buffers)
        if self.cold:
            self._learn(r0, r1, x, buffers)
        m = self._chunk_max(r0, r1)
        if self.fused:
            self._run_fused(r0, r1, x, m)
            return
        if self.gpu_pass:
            if self._run_on_gpu(r0, r1, x, m):
                return
            # It could not run here: torch's kernels, a chunk at a time (a warm batch
            # came as one span, with no buffers), for these rows and every batch after.
            buffers = buffers if buffers is not None else _Kernel.buffers(self)
            for a in range(r0, r1, self.plan.chunk_rows):
                self.run(a, min(a + self.plan.chunk_rows, r1), buffers)
            return
        s, e = self._exponentials(r0, r1, x, m, buffers, self.cold, self._may_sink(r0, r1))
        total = torch.sum(e, dim=1, out=self.total[r0:r1])
        if self.heat_full:
            self.acc._bin(r0, self._cells(e / total[:, None]))
        torch.sum(s.mul_(e), dim=1, out=self.weighted[r0:r1])

    def _run_fused(self, r0: int, r1: int, x: Any, m: Any) -> None:
        """:meth:`run` in compute/_fused.c: S and W in one read of the rows, then their
        heatmap cells straight into the heatmap's rows when each batch row is one."""
        m32 = m.numpy()[:, 0]
        total = self.total_np[r0:r1]
        _fused.row_sums(
            self._rows(r0, r1, x),
            m32,
            self.s_scale,
            self.floor,
            self._may_sink(r0, r1),
            total,
            self.weighted_np[r0:r1],
        )
        if self.cells_in_chunks:
            col_max = self.facts.col_max
            assert isinstance(col_max, np.ndarray)
            _fused.cells(
                col_max[r0:r1], m32, self.s_scale, total, self.tiny, self.acc.heatmap[r0:r1]
            )

    @property
    def reads_kept(self) -> bool:
        """Warm, the GPU pass reads the kept rows as stored, all of them in one span (no
        chunk buffer would hold them). False again once the pass has failed here."""
        return self.gpu_pass and not self.cold

    def _run_on_gpu(self, r0: int, r1: int, x: Any, m: Any) -> bool:
        """:meth:`run`'s S and W in one Triton launch over rows r0..r1 of the kept batch
        (``x`` their compute-type copy when cold, else None). False where the kernel
        could not run here (then torch's kernels take over: :func:`gpu_passes.usable`
        is False from then on)."""
        rows = x if x is not None else self.facts.resident[r0:r1]
        try:
            gpu_passes.row_sums(
                rows,
                m.reshape(-1),
                self.s_scale,
                self.floor,
                self.total[r0:r1],
                self.weighted[r0:r1],
            )
        except gpu_passes.KernelFailed:
            self.gpu_pass = False
            return False
        return True

    def _may_sink(self, r0: int, r1: int) -> bool:
        """Whether an s of rows r0..r1 may fall below the exponential's floor (so the
        chunk must be clamped), from each row's least x - max, known before any s is.

        A margin of 1 (a factor 2 in exp2, e in exp) covers the rounding of x - max
        and of the scale; NaN rows and -inf logits (masked classes) always clamp.
        Skipping the clamp saves a pass per chunk at the temperatures a person
        drags through (about 4% of a new temperature on (256, 50,257)).
        """
        if self.scale_clamped:
            return True
        lowest = float(np.min(self.facts.shifted_min[r0:r1])) * self.s_scale
        return not lowest >= self.floor + 1.0

    def _learn(self, r0: int, r1: int, x: Any, buffers: _Buffers | None) -> None:
        """The temperature-independent facts of rows r0..r1 (first pass over a batch):
        compiled where the fused pass runs (``x`` None: read where they lie), else in
        torch's kernels, which leave ``x - row max`` in ``buffers.s`` for the pass."""
        if not self.fused:
            assert buffers is not None
            self._learn_torch(slice(r0, r1), x, buffers.s[: r1 - r0])
            return
        import torch

        facts, at = self.facts, slice(r0, r1)
        rows = self._rows(r0, r1, x)
        col_max = facts.col_max
        assert isinstance(col_max, np.ndarray)  # the fused pass has bins, on the CPU
        _fused.learn_rows(
            rows,
            facts.row_max[at],
            facts.argmax[at],
            facts.shifted_sum[at],
            facts.shifted_min[at],
            facts.nonfinite[at],
            self.plan.col_bin,
            col_max[at],
        )
        # NaN or infinite logits (counted above), or a sum beyond float32: torch's way,
        # whose NaN and overflow rules the careful path follows.
        odd = np.flatnonzero((facts.nonfinite[at] > 0) | ~np.isfinite(facts.shifted_sum[at]))
        if odd.size:
            self._learn_torch(r0 + odd, torch.from_numpy(np.ascontiguousarray(rows[odd])))

    def _learn_torch(self, at: slice | np.ndarray, x: Any, shifted_out: Any = None) -> None:
        """:meth:`_learn` in torch's kernels for rows ``at`` (a range, or indices) of
        the batch, whose logits in the compute type are ``x``; ``x - row max`` goes
        into ``shifted_out`` (None: a tensor of its own)."""
        import torch
        import torch.nn.functional as F

        facts = self.facts
        index = at if isinstance(at, np.ndarray) else np.arange(at.start, at.stop)
        # The max is read at the argmax: one pass finds both (a NaN is its row's
        # argmax in numpy and torch alike, so a NaN row's max is NaN, as amax gives).
        if x.device.type == "cpu":
            argmax = torch.from_numpy(np.argmax(x.numpy(), axis=1))  # numpy's is vectorised
        else:
            argmax = x.argmax(dim=1)
        facts.argmax[at] = _numpy(argmax)
        facts.row_max[at] = _numpy(x.gather(1, argmax[:, None].to(x.device))[:, 0])
        m = self._max_of(at)
        shifted = torch.sub(x, m, out=shifted_out) if shifted_out is not None else x - m
        shifted_sum = shifted.sum(dim=1)
        facts.shifted_sum[at] = _numpy(shifted_sum)
        facts.shifted_min[at] = _numpy(shifted.amin(dim=1))
        # A finite sum means every logit of the row is finite: count only in the others.
        odd = ~torch.isfinite(shifted_sum)
        if bool(odd.any()):
            rows = odd.nonzero()[:, 0]
            counts = (~torch.isfinite(x[rows])).sum(dim=1)
            facts.nonfinite[index[_numpy(rows)]] = _numpy(counts)
            # Finite logits whose sum overflowed the compute type: sum them in float64.
            finite_rows = rows[counts == 0]
            if finite_rows.numel():
                exact = (x[finite_rows].to(torch.float64) - m[finite_rows]).sum(dim=1)
                facts.shifted_sum[index[_numpy(finite_rows)]] = _numpy(exact)
        if facts.col_max is not None:
            # ceil_mode: the last, shorter bin is a bin of its own (padding never wins a max).
            pooled = F.max_pool1d(
                x[:, None, :], self.plan.col_bin, self.plan.col_bin, ceil_mode=True
            )
            pooled = pooled[:, 0, :]
            if isinstance(facts.col_max, np.ndarray):
                facts.col_max[at] = _numpy(pooled)
            else:  # kept on the GPU beside the resident batch
                facts.col_max[at] = pooled

    # -- once per batch ----------------------------------------------------------------

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Per-row results from the row sums; returns entropy, max probability, argmax and
        the naive-overflow count, and fills the accumulator's row sums, losses and heatmap."""
        plan, facts, acc = self.plan, self.facts, self.acc
        if self.cold:  # every chunk ran: the facts are complete
            facts.filled = plan.n
            _keep_facts(plan, self.key, facts)
        total = _numpy(self.total).astype(np.float64)
        log_total = np.log(total)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_s = _numpy(self.weighted).astype(np.float64) * self.s_unit / total
            entropy = np.maximum(log_total - mean_s, 0.0)
            max_probability = 1.0 / total
            acc.row_sums[:] = total * max_probability
        argmax = facts.argmax.copy()
        if acc.cross_entropy is not None:
            acc.cross_entropy[:] = self._losses(log_total)
        if not self.heat_full and not self.cells_in_chunks:
            self._binned_heat()
        bad = np.flatnonzero(~np.isfinite(facts.row_max))  # NaN, +inf, or all -inf
        overflow = self._overflow(log_total, bad)
        for start in range(0, bad.size, plan.chunk_rows):
            self._careful(bad[start : start + plan.chunk_rows], entropy, max_probability, argmax)
        acc.nonfinite = int(facts.nonfinite.sum())
        return entropy, max_probability, argmax, int(overflow.sum())

    def _binned_heat(self) -> None:
        """Heatmap cells from the binned column maxima: exp of the bin's max s, over S."""
        import torch
        import torch.nn.functional as F

        col_max = self.facts.col_max
        assert col_max is not None
        m = self._row_max()
        # One heatmap row per batch row, float32 on the CPU: the cells are computed in
        # the heatmap's own rows. Fresh temporaries of this size (4 MB for 256 rows of
        # 50,257 classes) and the copy cost 3x the arithmetic here (page faults).
        in_place = (
            self.plan.row_bin == 1 and self.cdtype == torch.float32 and self.plan.device == "cpu"
        )
        on_gpu = self.plan.device != "cpu"
        block = _GPU_HEAT_BLOCK if on_gpu else _HEAT_BLOCK
        step = max(1, block // col_max.shape[1])
        if on_gpu:  # blocks start at a heatmap row: each is binned whole on the GPU
            rb = self.plan.row_bin
            step = max(rb, step // rb * rb)
        for r0 in range(0, self.plan.n, step):
            r1 = min(r0 + step, self.plan.n)
            part = col_max[r0:r1]
            col = (torch.from_numpy(part) if isinstance(part, np.ndarray) else part).to(
                self.plan.device
            )
            total = self.total[r0:r1, None]
            if in_place:
                cells = torch.sub(col, m[r0:r1], out=torch.from_numpy(self.acc.heatmap[r0:r1]))
                self._scale(cells).clamp_(min=self.floor)
                F.threshold_(self.exp(cells, out=cells).div_(total), self.tiny, 0.0)  # as _cells
            else:
                hs = self._scale(col - m[r0:r1]).clamp_(min=self.floor)
                cells = self._cell_values(self.exp(hs).div_(total))
                if on_gpu:
                    self.acc._bin_on_device(r0, cells)
                else:
                    self.acc._bin(r0, _numpy(cells))

    def _losses(self, log_total: np.ndarray) -> np.ndarray:
        plan, facts = self.plan, self.facts
        targets = plan.targets
        assert targets is not None
        ignored = targets == IGNORE_INDEX
        picked = np.where(ignored, 0, targets)
        # The target's logit as stored in the dtype (rounded as the chunks were).
        x_t = _stored_values(plan.data[np.arange(plan.n), picked], plan.dtype)
        eps = plan.smoothing
        loss = np.zeros(plan.n)
        with np.errstate(invalid="ignore", over="ignore"):
            # q = (1 - eps) * one_hot + eps / C; a term with no mass is 0, never 0 * inf.
            if eps < 1.0:
                log_p = self._log_p(x_t - facts.row_max, log_total)
                loss -= (1.0 - eps) * log_p
            if eps > 0.0:
                smoothed = log_total - self._scaled(facts.shifted_sum / plan.c)
                # A class whose log p is beyond the dtype's range is -inf there
                # (probability exactly 0): the mean of -log p over the classes is inf.
                lowest = self._scaled(facts.shifted_min) - log_total
                limit = dtype_info(plan.dtype).max
                loss += eps * np.where(lowest < -limit, np.inf, smoothed)
        return np.where(ignored, 0.0, loss)

    def _overflow(self, log_total: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Naive exp/sum overflows iff the row's log-sum-exp exceeds log(max) of the
        dtype; rows within rounding of that limit are checked exactly, the naive way."""

        info = dtype_info(self.plan.dtype)
        row_max = self.facts.row_max
        with np.errstate(invalid="ignore", over="ignore"):
            top = np.where(np.isfinite(row_max), row_max, 0.0) * self.scale
            lse = top + log_total
            margin = 16 * info.eps * np.maximum(1.0, np.abs(top)) + 1e-5
            overflow = lse > info.naive_limit
            unsure = np.abs(lse - info.naive_limit) <= margin
        unsure[bad] = True
        if self.scale_clamped:
            unsure[:] = True
        rows = np.flatnonzero(unsure)
        for start in range(0, rows.size, self.plan.chunk_rows):
            part = rows[start : start + self.plan.chunk_rows]
            overflow[part] = self._naive_overflow_exact(np.asarray(self.plan.data[part]), 1)
        return overflow

    def _careful(
        self, rows: np.ndarray, entropy: np.ndarray, max_probability: np.ndarray, argmax: np.ndarray
    ) -> None:
        """The reference path for rows whose softmax is NaN in torch (NaN, +inf, all -inf)."""
        import torch

        plan, acc = self.plan, self.acc
        block = np.asarray(plan.data[rows])
        src = block.dtype if block.dtype in _DIRECT_DTYPES else np.dtype(np.float64)
        x = torch.from_numpy(np.array(block, dtype=src.newbyteorder("="), order="C"))
        x = x.to(device=plan.device, dtype=self.tdtype)
        diff = x - x.amax(dim=1, keepdim=True)
        # As in compute.softmax: 0 and -inf are fixed points of division by T.
        keep = (diff == 0) | torch.isneginf(diff)
        shifted = torch.where(keep, diff, diff / plan.temperature)
        p = torch.softmax(shifted, dim=1)
        logp = torch.log_softmax(shifted, dim=1)
        p64, logp64 = p.to(torch.float64), logp.to(torch.float64)
        nan = torch.isnan(p64).any(dim=1) | torch.isnan(logp64).any(dim=1)
        ent = -torch.where(p64 > 0, p64 * logp64, 0.0).sum(dim=1)
        clean = torch.where(torch.isnan(p64), -torch.inf, p64)
        entropy[rows] = _numpy(torch.where(nan, torch.nan, ent.clamp_min(0.0)))
        max_probability[rows] = _numpy(torch.where(nan, torch.nan, clean.amax(dim=1)))
        argmax[rows] = _numpy(torch.where(nan, -1, clean.argmax(dim=1)))
        acc.row_sums[rows] = _numpy(p64.sum(dim=1))
        if acc.cross_entropy is not None and plan.targets is not None:
            acc.cross_entropy[rows] = acc._row_losses(logp64, plan.targets[rows])
        binned = _numpy(_max_bins(p.to(torch.float32), plan.col_bin, dim=1))
        for i, row in enumerate(rows):
            acc._bin(int(row), binned[i : i + 1])


def _keeps_resident(device: str) -> bool:
    """Whether a batch is kept on ``device`` between temperatures: on a GPU. On the CPU
    the batch already is in memory (or read from its file at disk speed)."""
    return device != "cpu"


def _free_bytes(device: Any) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


# Heatmap cells finished per block (elements): bounded temporaries. On a GPU each
# block is a few launches and a copy back: fewer, larger blocks.
_HEAT_BLOCK = 1 << 20
_GPU_HEAT_BLOCK = 1 << 24


def _numpy_dtype(tdtype: Any) -> Any:
    import torch

    return np.float64 if tdtype == torch.float64 else np.float32


def _stored_values(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` as the chunk stores them, back in float64."""
    import torch

    src = values.dtype if values.dtype in _DIRECT_DTYPES else np.dtype(np.float64)
    t = torch.from_numpy(np.array(values, dtype=src.newbyteorder("="), order="C"))
    return _numpy(t.to(torch_dtype(dtype)).to(torch.float64))


def _by_columns(
    request: BatchRequest,
    plan: _Plan,
    cancelled: Callable[[], bool],
    progress: Callable[[float], None],
) -> BatchResult:
    acc = _Accumulator(plan)
    kernel = _ColumnKernel(plan, acc)
    buffers = kernel.buffers()
    chunks = _chunks(plan)
    # The compiled passes take every core: S and W split by columns (each column is
    # added in the same order as on one thread: the same results to the bit), the
    # cells by rows (each row's own). The first view's facts and torch's kernels run
    # on this thread, chunk after chunk.
    workers = _workers(plan, len(chunks)) if kernel.compiled else 1
    passes = kernel.passes(workers)
    with contextlib.closing(kernel), torch_threads(1 if plan.device == "cpu" else None):
        for i, one in enumerate(passes):

            def step(done: float, i: int = i) -> None:
                progress((i + done) / len(passes))

            if one.spread is None:
                for r0, r1 in chunks:
                    if cancelled():
                        raise BatchCancelled("batch statistics cancelled")
                    one.run(r0, r1, buffers)
                    step(r1 / plan.n)
                continue
            spans, task, covered = one.spread()
            _run_parallel(
                task,
                spans,
                workers,
                buffers=kernel.buffers,
                total=covered,
                cancelled=cancelled,
                progress=step,
            )
        entropy, max_probability, argmax, overflow = kernel.finish()
    progress(1.0)
    return acc.result(request, entropy, max_probability, argmax, overflow)


@dataclass(frozen=True)
class _ColumnPass:
    """One pass of dim=0: ``run`` over row chunks on the calling thread, or, where
    ``spread`` is given, what it returns (spans, the task run on each, and how many
    rows or columns they cover) on every worker."""

    run: Callable[[int, int, _Buffers], None]
    spread: Callable[[], tuple[list[tuple[int, int]], Callable[..., None], int]] | None = None


def _column_spans(c: int, parts: int) -> list[tuple[int, int]]:
    """About ``parts`` column ranges, each a multiple of 64 columns but the last (the
    float64 sums of neighbouring ranges then never share a cache line)."""
    per_part = -(-c // parts)
    width = max(64, -(-per_part // 64) * 64)
    return [(c0, min(c0 + width, c)) for c0 in range(0, c, width)]


class _ColumnKernel(_Kernel):
    """dim=0 (each column a distribution over the rows), in passes over row chunks.

    1. (first view only) each column's max and the non-finite count;
    2. S = sum exp(s) and W = sum exp(s) * s down each column, s = (x - column max) / T,
       summed in float64 across chunks (and, first time, each column's argmax row and
       each row's sum of x - column max, for label smoothing);
    3. p = exp(s) / S: the heatmap cells and each row's sum of probabilities.

    Columns whose max is not finite (a NaN, +inf, or only -inf) are NaN, as in
    torch, and so is every row sum then (each row holds a NaN probability).
    """

    def __init__(self, plan: _Plan, acc: _Accumulator) -> None:
        import torch

        super().__init__(plan, acc)
        self.key = _facts_key(plan)
        cached = _cached_facts(plan, self.key, _ColumnFacts)
        self.cold = cached is None
        n, c, dev = plan.n, plan.c, plan.device
        self.facts = (
            cached
            if cached is not None
            else _ColumnFacts(
                column_max=np.full(c, -np.inf),
                argmax=np.full(c, n, dtype=np.int64),
                shifted_sum=np.empty(n),
            )
        )
        self.running_max = torch.full((1, c), -torch.inf, dtype=self.cdtype, device=dev)
        self.total = torch.zeros(c, dtype=torch.float64, device=dev)
        self.weighted = torch.zeros(c, dtype=torch.float64, device=dev)
        self.first_row = torch.full((c,), n, dtype=torch.int64, device=dev)
        self.m: Any = None
        self.inverse_total: Any = None
        # Warm, rows read where they lie: S and W can be split by columns (the first
        # view also learns per-row facts, and staged rows are staged whole).
        self.sums_by_columns = self.compiled and self.direct and not self.cold

    def passes(self, workers: int) -> list[_ColumnPass]:
        """The passes of this batch, in order; those the compiled code runs on every
        core say how they are spread over ``workers``."""

        def sums_by_columns() -> tuple[list[tuple[int, int]], Callable[..., None], int]:
            self.ready_for_sums()
            return _column_spans(self.plan.c, 4 * workers), self.column_sums, self.plan.c

        def cells_by_rows() -> tuple[list[tuple[int, int]], Callable[..., None], int]:
            self.ready_for_cells()
            plan = self.plan
            direct = self.direct and not plan.chunk_rows_given
            rows = _in_place_rows(plan, workers) if direct else plan.chunk_rows
            return _chunks(plan, rows), self.cells, plan.n

        passes = [
            _ColumnPass(self.sums, sums_by_columns if self.sums_by_columns else None),
            _ColumnPass(self.cells, cells_by_rows if self.compiled else None),
        ]
        return [_ColumnPass(self.learn), *passes] if self.cold else passes

    def _x(self, r0: int, r1: int, buffers: _Buffers) -> Any:
        return None if self.direct else self._stage(r0, r1, buffers)[1]

    def _max(self) -> Any:
        import torch

        if self.m is None:
            column_max = self.facts.column_max
            self.bad = ~np.isfinite(column_max)  # NaN, +inf, or only -inf
            safe = np.where(self.bad, 0.0, column_max)
            self.m = torch.from_numpy(safe[None, :]).to(device=self.plan.device, dtype=self.cdtype)
        return self.m

    def learn(self, r0: int, r1: int, buffers: _Buffers) -> None:
        import torch

        _, x = self._stage(r0, r1, buffers)
        chunk_max = x.amax(dim=0, keepdim=True)
        # NaN wins and stays (a NaN is never "greater", so say so explicitly).
        take = torch.isnan(chunk_max) | (chunk_max > self.running_max)
        torch.where(take, chunk_max, self.running_max, out=self.running_max)
        odd = ~torch.isfinite(x.sum(dim=1))  # a finite sum: every logit of the row is finite
        if bool(odd.any()):
            self.facts.nonfinite += int((~torch.isfinite(x[odd.nonzero()[:, 0]])).sum())
        if r1 == self.plan.n:
            self.facts.column_max[:] = _numpy(self.running_max[0]).astype(np.float64)

    def sums(self, r0: int, r1: int, buffers: _Buffers) -> None:
        import torch

        # First time, the argmax needs x itself; warm, the direct path may skip staging.
        x = self._stage(r0, r1, buffers)[1] if self.cold else self._x(r0, r1, buffers)
        m = self._max()
        s = buffers.s[: r1 - r0]
        if self.cold:
            # Each row's sum of (x - column max) for label smoothing, summed after the
            # shift (no cancellation with huge logits) and in float64 (it spans C terms).
            shifted = torch.sub(x, m, out=s)
            self.facts.shifted_sum[r0:r1] = _numpy(shifted.sum(dim=1, dtype=torch.float64))
        if self.compiled:
            _fused.column_sums(
                self._rows(r0, r1, x),
                m.numpy()[0],
                self.s_scale,
                self.floor,
                self.total.numpy(),
                self.weighted.numpy(),
            )
        else:
            s, e = self._exponentials(r0, r1, x, m, buffers, self.cold)
            self.total += e.sum(dim=0).to(torch.float64)
            self.weighted += s.mul_(e).sum(dim=0).to(torch.float64)
        if self.cold:
            # The first row holding each column's max: argmax along dim 0 is slow
            # in torch and numpy (12-50 ns a logit); a compare and a min are not.
            rows = torch.arange(r0, r1, device=x.device)[:, None]
            hit = torch.where(x == m, rows, self.plan.n).amin(dim=0)
            torch.minimum(self.first_row, hit, out=self.first_row)

    def ready_for_sums(self) -> None:
        """What the workers of :meth:`column_sums` read, made once before they start."""
        self._max()

    def column_sums(self, c0: int, c1: int, _buffers: Any = None) -> None:
        """S and W of columns c0..c1 over every row (warm, rows where they lie,
        compiled), in one call: its float32 blocks are the chunks :meth:`sums` would
        take, so every column is added as there, to the bit."""
        _fused.column_sums(
            self.plan.data[:, c0:c1],
            self._max().numpy()[0, c0:c1],
            self.s_scale,
            self.floor,
            self.total.numpy()[c0:c1],
            self.weighted.numpy()[c0:c1],
            self.plan.chunk_rows,
        )

    def ready_for_cells(self) -> None:
        """1/S of each column, made once before any chunk's cells (workers read it)."""
        import torch

        if self.inverse_total is None:
            inverse = (1.0 / self.total).to(self.cdtype)[None, :]
            if self.bad.any():
                inverse[0, torch.from_numpy(np.flatnonzero(self.bad)).to(inverse.device)] = (
                    torch.nan
                )
            self.inverse_total = inverse

    def cells(self, r0: int, r1: int, buffers: _Buffers) -> None:
        import torch.nn.functional as F

        self.ready_for_cells()
        x = self._x(r0, r1, buffers)
        if self.compiled:
            # p row by row in cache, its sum, and its max-pooled cells, in one call: one
            # heatmap row per batch row writes straight into the heatmap.
            plan = self.plan
            bins = -(-plan.c // plan.col_bin)
            one_each = plan.row_bin == 1
            cells = self.acc.heatmap[r0:r1] if one_each else np.empty((r1 - r0, bins), np.float32)
            _fused.column_cells(
                self._rows(r0, r1, x),
                self._max().numpy()[0],
                self.s_scale,
                self.inverse_total.numpy()[0],
                plan.col_bin,
                self.tiny,
                cells,
                self.acc.row_sums[r0:r1],
            )
            if not one_each:
                self.acc._bin(r0, cells)
            return
        _, e = self._exponentials(r0, r1, x, self._max(), buffers)
        p = e.mul_(self.inverse_total)
        self.acc.row_sums[r0:r1] = _numpy(p.sum(dim=1))
        if self.plan.col_bin > 1:
            col_bin = self.plan.col_bin
            p = F.max_pool1d(p[:, None, :], col_bin, col_bin, ceil_mode=True)[:, 0, :]
        self.acc._bin(r0, self._cells(p))

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        plan, facts = self.plan, self.facts
        if self.cold:
            facts.argmax[:] = _numpy(self.first_row)
            facts.filled = plan.n
            _keep_facts(plan, self.key, facts)
        self._max()
        bad = self.bad
        total = _numpy(self.total)
        log_total = np.log(total)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_s = _numpy(self.weighted) * self.s_unit / total
            entropy = np.where(bad, np.nan, np.maximum(log_total - mean_s, 0.0))
            max_probability = np.where(bad, np.nan, 1.0 / total)
        argmax = np.where(bad, -1, facts.argmax)
        if self.acc.cross_entropy is not None:
            self.acc.cross_entropy[:] = self._losses(np.where(bad, np.nan, log_total))
        self.acc.nonfinite = facts.nonfinite
        return entropy, max_probability, argmax, int(self._overflow(log_total, bad).sum())

    def _losses(self, log_total: np.ndarray) -> np.ndarray:
        """Per row: -sum(q * log p[row]) with p normalised down the columns (the wrong loss)."""
        plan, facts = self.plan, self.facts
        targets = plan.targets
        assert targets is not None
        ignored = targets == IGNORE_INDEX
        picked = np.where(ignored, 0, targets)
        x_t = _stored_values(plan.data[np.arange(plan.n), picked], plan.dtype)
        column_max = np.where(self.bad, np.nan, facts.column_max)
        eps = plan.smoothing
        loss = np.zeros(plan.n)
        with np.errstate(invalid="ignore", over="ignore"):
            if eps < 1.0:  # log p[r, y] = (x[r, y] - max_y) / T - log S_y
                log_p = self._log_p(x_t - column_max[picked], log_total[picked])
                loss -= (1.0 - eps) * log_p
            if eps > 0.0:  # mean over the columns of -log p[r, c]
                mean_log_total = float(np.mean(log_total))  # NaN if a column is NaN
                loss += eps * (mean_log_total - self._scaled(facts.shifted_sum / plan.c))
        return np.where(ignored, 0.0, loss)

    def _overflow(self, log_total: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Per column, as for rows; the unsure columns are read whole, the naive way."""
        info = dtype_info(self.plan.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            top = np.where(bad, 0.0, self.facts.column_max) * self.scale
            lse = top + log_total
            margin = 16 * info.eps * np.maximum(1.0, np.abs(top)) + 1e-5
            overflow = lse > info.naive_limit
            unsure = (np.abs(lse - info.naive_limit) <= margin) | bad | self.scale_clamped
        columns = np.flatnonzero(unsure)
        step = max(1, CHUNK_ELEMENTS // self.plan.n)
        for start in range(0, columns.size, step):
            part = columns[start : start + step]
            overflow[part] = self._naive_overflow_exact(np.asarray(self.plan.data[:, part]), 0)
        return overflow


# -- shared pieces -----------------------------------------------------------------


def _chunks(plan: _Plan, step: int | None = None) -> list[tuple[int, int]]:
    step = step or plan.chunk_rows
    return [(r0, min(r0 + step, plan.n)) for r0 in range(0, plan.n, step)]


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


class _Accumulator:
    """What both layouts produce per row of the batch: heatmap, row sums, loss."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        rows = -(-plan.n // plan.row_bin)
        cols = -(-plan.c // plan.col_bin)
        # -inf: every cell is a max over at least one probability (>= 0 or NaN).
        # With one row per bin every cell is written once: no fill pass (a fresh
        # 30 MB fill is mostly page faults on a VM).
        fill = np.empty if plan.row_bin == 1 else partial(np.full, fill_value=-np.inf)
        self.heatmap = fill((rows, cols), dtype=np.float32)
        self.row_sums = np.empty(plan.n)
        self.cross_entropy = None if plan.targets is None else np.empty(plan.n)
        self.nonfinite = 0
        self._lock = threading.Lock()

    def _row_losses(self, logp64: Any, targets: np.ndarray) -> np.ndarray:
        import torch

        eps, c = self.plan.smoothing, self.plan.c
        t = torch.from_numpy(targets).to(logp64.device)
        ignored = t == IGNORE_INDEX
        picked = logp64.gather(1, torch.where(ignored, 0, t)[:, None])[:, 0]
        # q = (1 - eps) * one_hot + eps / C; a term with no mass is 0, never 0 * -inf.
        loss = torch.zeros_like(picked)
        if eps < 1.0:
            loss = loss - (1.0 - eps) * picked
        if eps > 0.0:
            loss = loss - (eps / c) * logp64.sum(dim=1)
        return _numpy(torch.where(ignored, 0.0, loss))

    def _bin(self, r0: int, block: np.ndarray) -> None:
        """Max-merge (rows, column bins) into the heatmap; a bin may straddle two chunks."""
        rb = self.plan.row_bin
        if rb == 1:  # one heatmap row per batch row: each is written once
            self.heatmap[r0 : r0 + block.shape[0]] = block
            return
        rows = block.shape[0]
        head = min(-r0 % rb, rows)  # rows before the first bin boundary
        whole = (rows - head) // rb
        parts = []  # (first heatmap row, reduced rows)
        if head:
            parts.append((r0 // rb, block[:head].max(axis=0, keepdims=True)))
        if whole:
            # A reshape, not np.maximum.reduceat: reduceat along rows is ~10x slower.
            body = block[head : head + whole * rb].reshape(whole, rb, block.shape[1])
            parts.append(((r0 + head) // rb, body.max(axis=1)))
        if head + whole * rb < rows:
            parts.append(
                ((r0 + head) // rb + whole, block[head + whole * rb :].max(axis=0, keepdims=True))
            )
        with self._lock:  # chunk workers may share a bin that straddles their chunks
            for first, reduced in parts:
                cells = self.heatmap[first : first + reduced.shape[0]]
                np.maximum(cells, reduced, out=cells)

    def _bin_on_device(self, r0: int, cells: Any) -> None:
        """Device cells of rows r0.. (r0 the first row of a heatmap row) into their heatmap
        rows: binned on the device and copied straight into place. Copied back whole into
        a fresh array (47 ms) and binned on the host, a new temperature of a (4,096,
        50,257) batch took 74 ms on an H200 machine, 3 ms of it the GPU's arithmetic;
        binned here, 12 ms."""
        import torch

        rb = self.plan.row_bin
        assert r0 % rb == 0
        binned = _max_bins(cells, rb, dim=0)  # the batch's last bin may be shorter
        first = r0 // rb
        with self._lock:  # every cell of these rows is written here, and only here
            torch.from_numpy(self.heatmap[first : first + binned.shape[0]]).copy_(binned)

    def result(
        self,
        request: BatchRequest,
        entropy: np.ndarray,
        max_probability: np.ndarray,
        argmax: np.ndarray,
        naive_overflow_rows: int,
    ) -> BatchResult:
        plan = self.plan
        mean = None
        if self.cross_entropy is not None and plan.targets is not None:
            counted = int(np.count_nonzero(plan.targets != IGNORE_INDEX))
            mean = float(self.cross_entropy.sum()) / counted if counted else float("nan")
        return BatchResult(
            request=request,
            device=plan.device,
            shape=(plan.n, plan.c),
            dim=plan.dim,
            heatmap=self.heatmap,
            heatmap_row_bin=plan.row_bin,
            heatmap_col_bin=plan.col_bin,
            entropy=entropy,
            max_probability=max_probability,
            argmax=argmax.astype(np.int64),
            row_sums=self.row_sums,
            cross_entropy=self.cross_entropy,
            mean_cross_entropy=mean,
            naive_overflow_rows=naive_overflow_rows,
            nonfinite_count=self.nonfinite,
        )


def _max_bins(t: Any, size: int, dim: int) -> Any:
    """Max over each run of ``size`` entries along ``dim`` (0: rows, 1: columns) of a
    2-D tensor; the last run may be shorter. Keeps NaN."""
    import torch

    if size == 1:
        return t
    n = t.shape[dim]
    full = n // size * size
    parts = []
    if full:
        runs = (full // size, size, t.shape[1]) if dim == 0 else (t.shape[0], full // size, size)
        parts.append(t.narrow(dim, 0, full).reshape(runs).amax(dim=dim + 1))
    if full < n:
        parts.append(t.narrow(dim, full, n - full).amax(dim=dim, keepdim=True))
    return torch.cat(parts, dim=dim) if len(parts) > 1 else parts[0]
