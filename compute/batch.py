"""Softmax statistics of a whole ``(N, C)`` batch, computed a chunk of rows at a time.

A batch may be a multi-gigabyte memory-mapped file, so it is never converted
in one piece: each chunk of rows is copied, stored in the requested dtype on the
requested device, and reduced to what the window shows (per-distribution
statistics, per-row sums and cross-entropy, and a max-binned heatmap). Memory
stays bounded by the chunk size whatever ``N`` is.

``dim=1`` (each row a distribution, the right way) needs one pass. ``dim=0``
(each column a distribution: normalising across the batch, the classic mistake)
needs every column's log-sum-exp before any probability is known: a first pass
accumulates it online (running column max and a rescaled sum of exponentials),
a second pass normalises.

Values follow the compute core's conventions: the logits are stored in the
dtype, probabilities and log-probabilities are rounded to the dtype, and
statistics are summed in float64 from those rounded values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from softmax_lab.compute.device import resolve_device
from softmax_lab.compute.dtypes import dtype_info, torch_dtype
from softmax_lab.compute.errors import ComputeMemoryError, InvalidInputError
from softmax_lab.compute.validation import check_temperature, normalise_dim

# About 2M logits per chunk: float64 temporaries of a chunk stay near 16 MB each.
CHUNK_ELEMENTS = 1 << 21
# The heatmap is for looking at: beyond a screen's worth of pixels, bin.
HEATMAP_MAX_ROWS = 2048
HEATMAP_MAX_COLS = 4096
# Rows whose target is this are left out of the loss, as in torch's cross_entropy.
IGNORE_INDEX = -100

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
    try:
        with torch.no_grad():
            if plan.dim == 1:
                return _by_rows(request, plan, cancelled, progress)
            return _by_columns(request, plan, cancelled, progress)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ComputeMemoryError(
            f"out of memory on {plan.device} computing softmax of a {plan.n} x {plan.c} batch "
            f"in {plan.dtype} ({plan.chunk_rows} rows at a time); try the CPU, a smaller dtype "
            "or a smaller file"
        ) from exc


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
    smoothing = float(request.label_smoothing)
    if not 0.0 <= smoothing <= 1.0:
        raise InvalidInputError(f"label smoothing must be between 0 and 1 (got {smoothing:g})")
    targets = _check_targets(request.targets, n, c)
    device = resolve_device(request.device)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_ELEMENTS // c)
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
    )


def _check_targets(targets: np.ndarray | None, n: int, c: int) -> np.ndarray | None:
    if targets is None:
        return None
    t = np.asarray(targets)
    if not np.issubdtype(t.dtype, np.integer):
        raise InvalidInputError(f"targets must be integer class indices, got values of type {t.dtype}")
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
    import torch

    acc = _Accumulator(plan)
    entropy = np.empty(plan.n)
    max_probability = np.empty(plan.n)
    argmax = np.empty(plan.n, dtype=np.int64)
    overflow = np.empty(plan.n, dtype=bool)
    for r0, r1 in _chunks(plan):
        if cancelled():
            raise BatchCancelled("batch statistics cancelled")
        x = acc.load(r0, r1)
        exp_naive = torch.exp(x / plan.temperature)
        overflow[r0:r1] = _naive_overflow(exp_naive, exp_naive.to(torch.float64).sum(dim=1), plan)
        diff = x - x.amax(dim=1, keepdim=True)
        # As in compute.softmax: 0 and -inf are fixed points of division by T,
        # so keep them exactly and T's rounding in the dtype cannot turn the
        # max entry into 0/0 = NaN when T -> 0.
        keep = (diff == 0) | torch.isneginf(diff)
        shifted = torch.where(keep, diff, diff / plan.temperature)
        p = torch.softmax(shifted, dim=1)
        logp = torch.log_softmax(shifted, dim=1)
        p64, logp64 = p.to(torch.float64), logp.to(torch.float64)
        bad = torch.isnan(p64).any(dim=1) | torch.isnan(logp64).any(dim=1)
        ent = -torch.where(p64 > 0, p64 * logp64, 0.0).sum(dim=1)
        entropy[r0:r1] = _numpy(torch.where(bad, torch.nan, ent.clamp_min(0.0)))
        clean = torch.where(torch.isnan(p64), -torch.inf, p64)
        max_probability[r0:r1] = _numpy(torch.where(bad, torch.nan, clean.amax(dim=1)))
        argmax[r0:r1] = _numpy(torch.where(bad, -1, clean.argmax(dim=1)))
        acc.add_rows(r0, r1, p, p64, logp64)
        progress(r1 / plan.n)
    progress(1.0)
    return acc.result(request, entropy, max_probability, argmax, int(overflow.sum()))


def _by_columns(
    request: BatchRequest,
    plan: _Plan,
    cancelled: Callable[[], bool],
    progress: Callable[[float], None],
) -> BatchResult:
    import torch

    acc = _Accumulator(plan)
    t = plan.temperature
    dev, f64 = plan.device, torch.float64
    # Pass 1: per column, the running max m of the logits and s = sum exp((x - m) / T).
    col_max = torch.full((plan.c,), -torch.inf, dtype=f64, device=dev)
    col_sum = torch.zeros(plan.c, dtype=f64, device=dev)
    bad = torch.zeros(plan.c, dtype=torch.bool, device=dev)
    naive_inf = torch.zeros(plan.c, dtype=torch.bool, device=dev)
    naive_sum = torch.zeros(plan.c, dtype=f64, device=dev)
    for r0, r1 in _chunks(plan):
        if cancelled():
            raise BatchCancelled("batch statistics cancelled")
        x = acc.load(r0, r1, count_nonfinite=True)
        exp_naive = torch.exp(x / t)
        naive_inf |= torch.isinf(exp_naive).any(dim=0)
        naive_sum += exp_naive.to(f64).sum(dim=0)
        x64 = x.to(f64)
        # NaN or +inf make the whole column NaN in torch (inf - inf); flag it and
        # keep those entries out of the running sums.
        bad |= (torch.isnan(x64) | torch.isposinf(x64)).any(dim=0)
        x64 = torch.where(torch.isnan(x64) | torch.isposinf(x64), -torch.inf, x64)
        new_max = torch.maximum(col_max, x64.amax(dim=0))
        empty = torch.isneginf(new_max)  # no finite logit yet: nothing to rescale
        rescale = torch.where(empty, 0.0, torch.exp((col_max - new_max) / t))
        terms = torch.where(empty, 0.0, torch.exp((x64 - new_max) / t))
        col_sum = col_sum * rescale + terms.sum(dim=0)
        col_max = new_max
        progress(0.5 * r1 / plan.n)
    # An all -inf column is 0/0 = NaN in torch.softmax.
    bad |= torch.isneginf(col_max)
    log_sum = torch.log(col_sum)
    overflow = naive_inf | torch.isinf(naive_sum.to(torch_dtype(plan.dtype)))

    # Pass 2: normalise, and accumulate the per-column statistics.
    tdtype = torch_dtype(plan.dtype)
    entropy = torch.zeros(plan.c, dtype=f64, device=dev)
    best = torch.full((plan.c,), -torch.inf, dtype=f64, device=dev)
    best_row = torch.full((plan.c,), -1, dtype=torch.int64, device=dev)
    for r0, r1 in _chunks(plan):
        if cancelled():
            raise BatchCancelled("batch statistics cancelled")
        x64 = acc.load(r0, r1, count_nonfinite=False).to(f64)
        logp_exact = torch.where(bad, torch.nan, (x64 - col_max) / t - log_sum)
        logp = logp_exact.to(tdtype)
        p = torch.exp(logp_exact).to(tdtype)
        p64, logp64 = p.to(f64), logp.to(f64)
        entropy -= torch.where(p64 > 0, p64 * logp64, 0.0).sum(dim=0)
        clean = torch.where(torch.isnan(p64), -torch.inf, p64)
        chunk_best = clean.amax(dim=0)
        better = chunk_best > best  # strict: the first row wins ties, as argmax does
        best_row = torch.where(better, clean.argmax(dim=0) + r0, best_row)
        best = torch.where(better, chunk_best, best)
        acc.add_rows(r0, r1, p, p64, logp64)
        progress(0.5 + 0.5 * r1 / plan.n)
    progress(1.0)
    return acc.result(
        request,
        _numpy(torch.where(bad, torch.nan, entropy.clamp_min(0.0))),
        _numpy(torch.where(bad, torch.nan, best)),
        _numpy(torch.where(bad, -1, best_row)),
        int(overflow.sum()),
    )


# -- shared pieces -----------------------------------------------------------------


def _chunks(plan: _Plan) -> list[tuple[int, int]]:
    step = plan.chunk_rows
    return [(r0, min(r0 + step, plan.n)) for r0 in range(0, plan.n, step)]


def _naive_overflow(exp_naive: Any, sum64: Any, plan: _Plan) -> np.ndarray:
    """Per row: an exp is inf, or the exact sum of the exps rounds to inf in the dtype."""
    import torch

    inf_any = torch.isinf(exp_naive).any(dim=1)
    return _numpy(inf_any | torch.isinf(sum64.to(torch_dtype(plan.dtype))))


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


class _Accumulator:
    """Reads chunks and gathers what both layouts produce per row: heatmap, row sums, loss."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.tdtype = torch_dtype(plan.dtype)
        rows = -(-plan.n // plan.row_bin)
        cols = -(-plan.c // plan.col_bin)
        # -inf: every cell is a max over at least one probability (>= 0 or NaN).
        self.heatmap = np.full((rows, cols), -np.inf, dtype=np.float32)
        self.row_sums = np.empty(plan.n)
        self.cross_entropy = None if plan.targets is None else np.empty(plan.n)
        self.nonfinite = 0

    def load(self, r0: int, r1: int, count_nonfinite: bool = True) -> Any:
        """Rows r0..r1 as a tensor in the dtype on the device."""
        import torch

        block = self.plan.data[r0:r1]
        src = block.dtype if block.dtype in _DIRECT_DTYPES else np.dtype(np.float64)
        # A copy: memmaps are read-only (torch warns on those) and may be big-endian.
        array = np.array(block, dtype=src.newbyteorder("="), order="C")
        x = torch.from_numpy(array).to(device=self.plan.device, dtype=self.tdtype)
        if count_nonfinite:
            self.nonfinite += int((~torch.isfinite(x)).sum())
        return x

    def add_rows(self, r0: int, r1: int, p: Any, p64: Any, logp64: Any) -> None:
        import torch

        self.row_sums[r0:r1] = _numpy(p64.sum(dim=1))
        if self.cross_entropy is not None and self.plan.targets is not None:
            self.cross_entropy[r0:r1] = self._row_losses(logp64, self.plan.targets[r0:r1])
        self._bin(r0, _numpy(_bin_columns(p.to(torch.float32), self.plan.col_bin)))

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
        first, last = r0 // rb, (r0 + block.shape[0] - 1) // rb
        starts = np.maximum(np.arange(first, last + 1) * rb - r0, 0)
        reduced = np.maximum.reduceat(block, starts, axis=0) if rb > 1 else block
        self.heatmap[first : last + 1] = np.maximum(self.heatmap[first : last + 1], reduced)

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


def _bin_columns(p32: Any, col_bin: int) -> Any:
    """Max over each run of ``col_bin`` columns (the last run may be shorter); keeps NaN."""
    import torch

    if col_bin == 1:
        return p32
    rows, c = p32.shape
    full = c // col_bin * col_bin
    parts = []
    if full:
        parts.append(p32[:, :full].reshape(rows, full // col_bin, col_bin).amax(dim=2))
    if full < c:
        parts.append(p32[:, full:].amax(dim=1, keepdim=True))
    return torch.cat(parts, dim=1)
