"""The batch passes on a CUDA GPU, written in Triton: one kernel launch where torch
takes a handful per chunk.

``row_sums`` is the GPU twin of compute/_fused.c's ``row_sums`` (the only pass
over the logits that a new temperature needs, dim=1): for each row i of x, with
its max m_i and k = log2(e) / T,

    s_j = max((x_ij - m_i) * k, lo),
    S_i = sum_j 2^s_j,       W_i = sum_j 2^s_j * s_j,

reading each logit once and writing two numbers per row. With torch's kernels the
same work is seven launches per chunk (subtract, scale, clamp, exp2, sum,
multiply, sum) over chunk buffers that are written and read back; on an H200 a
new temperature of a (4,096, 50,257) batch kept on the GPU took 12 ms, of which
the copy of the batch's bytes would take 0.5 ms (docs/performance.md).

``softmax_rows`` is softmax (or log-softmax) of each row of a float32 matrix into
a new one, reading each row from memory once: short rows are held in registers;
longer ones are read twice by one program, the second time from the L2 cache
(see :func:`softmax_rows`). torch's own kernel reads a 50,257-class row three
times, which is why it reaches about half of a copy's bandwidth on an H200.

Triton is not a dependency of the app: torch's CUDA builds for Linux bring it,
and where it is missing (or cannot compile for this GPU) :func:`usable` says so
and batch.py runs torch's kernels instead. With ``TRITON_INTERPRET=1`` Triton
runs these kernels on the CPU, in numpy: that is how the tests check them on a
machine with no GPU, against float64 and against batch.py's torch kernels.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from typing import Any

ENABLED = True
"""Use these kernels where they can run (False: torch's kernels; the tests and the
benchmark compare the two)."""

ROW_BLOCK = 2048
"""Logits a row program takes per step (8 per thread at 8 warps: two 16-byte loads)."""
ROW_WARPS = 8

SOFTMAX_REGISTER_MAX = 16384
"""Rows of at most this many classes are held in registers by one program (16 warps:
32 floats a thread; 128 registers a thread, no spills, ptxas for sm_90) and read once.
Longer ones are read in tiles (:data:`SOFTMAX_TILE_CONFIGS`)."""

_broken: str | None = None
"""Why the kernels could not run here (set on the first failure; then torch's kernels)."""


def interpreting() -> bool:
    """Whether Triton runs kernels on the CPU in its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


@functools.cache
def _triton() -> Any:
    try:
        import triton
    except ImportError:  # a CPU build of torch, or a platform Triton has no wheel for
        return None
    return triton


def usable(device: str) -> bool:
    """Whether the kernels run for tensors on ``device``: a CUDA device with Triton, or
    any device under Triton's interpreter."""
    if not ENABLED or _broken is not None:
        return False
    return (device.startswith("cuda") or interpreting()) and _triton() is not None


def broken_reason() -> str | None:
    """Why the kernels were given up after failing here, if they were."""
    return _broken


class KernelFailed(RuntimeError):
    """A kernel could not be compiled or launched here; :func:`usable` is False from now on."""


def _launch(
    kernel: Any, grid: tuple[int, ...], *args: Any, _give_up: bool = True, **kwargs: Any
) -> None:
    """``kernel[grid](*args)`` on the device of its first argument (a tensor): Triton
    launches on the current CUDA device, which need not be the one a batch is kept on.
    A failure gives the kernels up here (``usable`` False), unless ``_give_up`` is False
    (a tuning candidate: others may still run)."""
    global _broken
    import torch

    first = args[0]
    on = torch.cuda.device(first.device) if first.is_cuda else contextlib.nullcontext()
    try:
        with on:
            kernel[grid](*args, **kwargs)
    except Exception as exc:  # Triton's compile errors have no common base class
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if _give_up:
            _broken = reason
        raise KernelFailed(reason) from exc


def _kernel(name: str) -> Any:
    from softmax_lab.compute import _triton_kernels

    return getattr(_triton_kernels, name)


# -- what batch.py and the benchmark call -------------------------------------------------


def row_sums(x: Any, m: Any, k: float, lo: float, total: Any, weighted: Any) -> None:
    """S and W of each row of ``x`` (rows, C), into ``total`` and ``weighted`` (rows,).

    ``x`` holds the rows in float32, float16 or bfloat16 with contiguous columns; ``m``
    their maxima and both outputs are contiguous float32 of one entry per row, on the
    same device. ``k`` is 1/T times log2(e); ``lo`` the floor s is clamped at, always:
    the CPU passes skip the clamp where no s can sink (batch.py's ``_may_sink``), but
    here it costs nothing next to the memory traffic, and a kernel compiled both ways
    would compile again mid-drag when a temperature first needs the other. Raises
    :class:`KernelFailed` if the kernel cannot run here.
    """
    rows, c = x.shape
    if rows == 0:
        return
    if x.stride(1) != 1:
        raise ValueError("row_sums needs rows whose columns are contiguous")
    _launch(
        _kernel("row_sums_kernel"),
        (rows,),
        x, x.stride(0), m, total, weighted, c, float(k), float(lo),
        BLOCK=ROW_BLOCK, num_warps=ROW_WARPS, enable_fp_fusion=True,
    )  # fmt: skip


def softmax_rows(x: Any, *, log: bool = False, out: Any = None) -> Any:
    """``torch.softmax(x, dim=1)`` (``log``: ``torch.log_softmax``) of a float32 (N, C)
    matrix, on a GPU (or in Triton's interpreter), reading each row from memory once.

    Rows of at most :data:`SOFTMAX_REGISTER_MAX` classes are held in registers. Longer
    rows are read twice by the program that owns them, over a persistent grid of a few
    programs per multiprocessor, so that the second read can come from the L2 cache
    rather than memory (see ``softmax_in_tiles``). Results agree with torch's within
    float32 rounding (a few ulp: the sums are added in another order); a row holding
    NaN or +inf, or only -inf, is NaN, as torch gives. Raises :class:`KernelFailed`
    if the kernel cannot run here.
    """
    import torch

    if x.dim() != 2 or x.dtype != torch.float32:
        raise ValueError("softmax_rows takes a 2-D float32 tensor")
    x = x if x.stride(1) == 1 else x.contiguous()
    n, c = x.shape
    if out is None:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
    elif out.shape != x.shape or out.dtype != x.dtype or out.device != x.device or (
        c > 1 and out.stride(1) != 1
    ):
        raise ValueError("out must be a float32 tensor of x's shape on its device, rows contiguous")
    if n == 0 or c == 0:
        return out
    args = (x, out, x.stride(0), out.stride(0), n, c)
    if c <= SOFTMAX_REGISTER_MAX:
        block = max(16, 1 << (c - 1).bit_length())
        programs = min(n, 8 * _multiprocessors(x)) if x.is_cuda else n
        warps = min(16, max(1, block // 1024))
        _launch(_kernel("softmax_in_registers"), (programs,), *args, LOG=log, BLOCK=block,
                num_warps=warps, enable_fp_fusion=True)  # fmt: skip
        return out
    config = _tiles_config(x, log, args)
    _launch_tiles(config, args, log)
    return out


TileConfig = tuple[int, int, int, int]
"""(tile, warps, programs per multiprocessor, pipeline stages) of ``softmax_in_tiles``."""

SOFTMAX_TILE_CONFIGS: tuple[TileConfig, ...] = (
    (4096, 16, 1, 1),  # 56 registers a thread (ptxas, sm_90), 16 KB of loads in flight an SM
    (8192, 16, 1, 1),  # 64 registers, 32 KB
    (8192, 32, 1, 1),  # 40 registers, 32 KB
    (16384, 32, 1, 1),  # 64 registers (the most 1,024 threads may have), 64 KB
    (4096, 16, 1, 3),  # loads pipelined through shared memory (cp.async): 128 registers
    (4096, 16, 2, 1),  # two rows an SM: 53 MB in flight on an H200, more than its L2
)
"""Candidates for rows read in tiles. None was measured on a GPU when this was written
(no GPU was lent to that session), so the first call for a row length on a CUDA device
times each (a launch to compile and warm, then the best of two) and keeps the fastest;
in the interpreter the first is used. What they trade: one program per multiprocessor
keeps 132 rows of 50,257 float32 (26 MB) in flight on an H200, within its 50 MB of L2,
but a 4,096-logit tile at 16 warps has only 16 KB of loads in flight per multiprocessor,
where about 36 KB would cover memory's latency at full bandwidth: larger tiles, more
warps, pipelined loads or a second program per multiprocessor (whose rows may no longer
fit L2) each add to that. All compile for sm_90 without spilling (test_gpu_passes.py;
8,192 at 32 warps with 2 stages spilled, and 4,096 at 8 warps with 3 took 249 registers,
leaving no room for a second program, so neither is here)."""

_TUNED: dict[tuple[int, int, bool], TileConfig] = {}


def _tiles_config(x: Any, log: bool, args: tuple[Any, ...]) -> TileConfig:
    if not x.is_cuda or len(SOFTMAX_TILE_CONFIGS) == 1:
        return SOFTMAX_TILE_CONFIGS[0]
    import torch

    def milliseconds(config: TileConfig) -> float:
        best = math.inf
        for attempt in range(3):  # the first compiles and warms up
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            _launch_tiles(config, args, log, give_up=False)
            end.record()
            end.synchronize()
            if attempt:
                best = min(best, start.elapsed_time(end))
        return best

    key = (x.device.index or 0, int(x.shape[1]), log)
    if key not in _TUNED:
        _TUNED[key] = _fastest(SOFTMAX_TILE_CONFIGS, milliseconds)
    return _TUNED[key]


def _fastest(candidates: tuple[TileConfig, ...], milliseconds: Any) -> TileConfig:
    """The candidate ``milliseconds`` times fastest. One that cannot build here (a Triton
    or driver older than these were checked with) is skipped: its launches do not give
    the kernels up. :class:`KernelFailed`, and the kernels given up, only if none builds."""
    global _broken
    times: dict[TileConfig, float] = {}
    reason = ""
    for config in candidates:
        try:
            times[config] = milliseconds(config)
        except KernelFailed as exc:
            reason = str(exc)
    if not times:
        _broken = f"no tile configuration runs here ({reason})"
        raise KernelFailed(_broken)
    return min(times, key=times.__getitem__)


def _launch_tiles(
    config: TileConfig, args: tuple[Any, ...], log: bool, give_up: bool = True
) -> None:
    tile, warps, per_sm, stages = config
    x, n = args[0], args[4]
    programs = min(n, per_sm * _multiprocessors(x)) if x.is_cuda else n
    _launch(_kernel("softmax_in_tiles"), (programs,), *args, LOG=log, TILE=tile, STAGES=stages,
            num_warps=warps, enable_fp_fusion=True, _give_up=give_up)  # fmt: skip


def tuned_configs() -> dict[tuple[int, int, bool], TileConfig]:
    """The tile configuration chosen so far per (device, classes, log): for the benchmark."""
    return dict(_TUNED)


def _multiprocessors(x: Any) -> int:
    import torch

    return int(torch.cuda.get_device_properties(x.device).multi_processor_count)
