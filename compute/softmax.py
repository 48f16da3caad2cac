"""Softmax, log-softmax and the naive exp/sum, in a chosen dtype on a chosen device.

The stable path subtracts the row maximum *before* dividing by the
temperature: ``softmax((x - max x) / T)`` equals ``softmax(x / T)`` exactly in
real arithmetic, but never forms ``inf - inf`` when ``x / T`` would overflow
the dtype, so T -> 0 gives the argmax one-hot (ties share the mass), never NaN.
The naive path is ``exp(x / T) / sum(exp(x / T))`` computed entirely in the
dtype, so it overflows exactly where a real implementation would.

Probabilities and log-probabilities are torch's own ``softmax``/``log_softmax``
of ``x / T`` in the dtype, so they equal what PyTorch gives bit for bit. The
step-by-step values (x − max, exp, Σ) are computed at the precision torch's
kernels use internally: float32 for float16 and bfloat16. The naive path stays
in the dtype: that is where a hand-written exp/sum overflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from softmax_lab.compute.device import resolve_device, torch_threads
from softmax_lab.compute.dtypes import dtype_info, torch_dtype
from softmax_lab.compute.errors import ComputeMemoryError
from softmax_lab.compute.kept import LastVector, Once
from softmax_lab.compute.stats import distribution_stats
from softmax_lab.compute.types import NaivePath, OverflowReport, SoftmaxRequest, SoftmaxResult
from softmax_lab.compute.validation import as_logits, check_temperature, normalise_dim, to_rows


def compute_softmax(request: SoftmaxRequest) -> SoftmaxResult:
    """Compute every quantity the lab shows for ``request``.

    Parameters
    ----------
    request
        Logits of any shape (at least one class), temperature, dim, dtype, device.

    Returns
    -------
    SoftmaxResult
        Row-wise arrays (one row per distribution along ``dim``) holding the values
        computed in ``request.dtype`` exactly: float64 for float64, float32 otherwise.

    Raises
    ------
    InvalidInputError
        Bad temperature, dim, dtype or logits.
    DeviceUnavailableError
        CUDA requested but not available.
    ComputeMemoryError
        The device ran out of memory.
    """
    import torch

    temperature = check_temperature(request.temperature)
    info = dtype_info(request.dtype)
    logits = as_logits(request.logits)
    dim = normalise_dim(request.dim, logits.ndim)
    device = resolve_device(request.device)
    rows64 = to_rows(logits, dim)
    tdtype = torch_dtype(request.dtype)

    try:
        with torch.no_grad():
            prepared = _prepare(logits, dim, request.dtype, device)
            x, diff = prepared.x, prepared.diff
            scaled = x / temperature
            # FIX (T -> 0 NaN): torch converts a Python-scalar T to the dtype's
            # compute type (float32 for float16/bfloat16/float32), so T = 1e-300
            # becomes 0 there (on CUDA, 1/T becomes inf) and 0 / 0 = NaN for the
            # max entry. 0 and -inf are fixed points of division by any T > 0:
            # keep them exactly, so T's rounding in the dtype cannot matter.
            # inf - inf = NaN (a +inf or all -inf row) is neither and stays NaN.
            plain = _plain_temperature(temperature, diff.dtype)
            shifted = diff / temperature if plain else _divide_keeping_fixed_points(diff, temperature)
            exp_shifted = torch.exp(shifted)
            sum_exp = exp_shifted.sum(dim=-1)
            # The softmax itself is torch's, on exactly what `torch.softmax(x / T)`
            # would see, so the lab's numbers are PyTorch's in every dtype. Only
            # where x / T left the dtype's range (T -> 0) is the max-subtracted
            # input used instead: same distribution, no inf - inf.
            # (x / T is broken where a finite x became inf/NaN, or a NaN appeared:
            # -inf / T is NaN once T rounds to inf in float32.)
            if _cannot_leave_range(prepared, temperature, plain, info.max):
                z = scaled  # the common case, known without a pass over x / T
            else:
                broken = _new_nonfinite(prepared, scaled)
                z = torch.where(broken, shifted.to(tdtype), scaled)
            probabilities = torch.softmax(z, dim=-1)
            log_probabilities = torch.log_softmax(z, dim=-1)
            arrays = [
                _to_numpy(t)
                for t in (
                    x,
                    scaled,
                    shifted,
                    exp_shifted,
                    sum_exp,
                    probabilities,
                    log_probabilities,
                )
            ]
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(device, rows64.shape, request.dtype) from exc
    x_np, scaled_np, shifted_np, exp_np, sum_np, p_np, logp_np = arrays
    # The logits may share memory with the kept ones (_prepare); scaled and the
    # probabilities share memory with the tensors the naive path reads when asked.
    for shared in (x_np, scaled_np, p_np, logp_np):
        shared.flags.writeable = False
    # Computed when first read, maybe on another thread (the UI's), with the torch threads
    # this call had: analyse_vector runs its ticks single-threaded (see torch_threads).
    naive = partial(
        _naive_path,
        scaled,
        probabilities,
        p_np,
        logp_np,
        prepared.input_overflow,
        torch.get_num_threads(),
    )
    return SoftmaxResult(
        request=request,
        device=device,
        shape=tuple(logits.shape),
        dim=dim,
        logits=x_np,
        scaled=scaled_np,
        shifted=shifted_np,
        exp_shifted=exp_np,
        sum_exp=sum_np,
        probabilities=p_np,
        log_probabilities=logp_np,
        stats=distribution_stats(p_np, logp_np),
        naive=Once(naive),
        notes=prepared.notes,
    )


def _naive_path(
    scaled: Any,
    probabilities: Any,
    p_np: np.ndarray,
    logp_np: np.ndarray,
    input_overflow: np.ndarray,
    threads: int,
) -> NaivePath:
    """The naive exp/sum of ``scaled`` (x / T in the dtype, on the result's device), the
    log of the rounded probabilities, and the report on where they fail."""
    import torch

    dtype = str(scaled.dtype).removeprefix("torch.")
    info = dtype_info(dtype)
    try:
        with torch.no_grad(), torch_threads(threads):
            # What `torch.log(torch.softmax(x))` gives: the log of probabilities
            # already rounded to the dtype, -inf where they underflowed.
            log_of_softmax = torch.log(probabilities)
            naive_exp = torch.exp(scaled)
            naive_sum = naive_exp.sum(dim=-1, keepdim=True)
            naive_probabilities = naive_exp / naive_sum
            logsm_np, nexp_np, nsum_np, np_np = (
                _to_numpy(t) for t in (log_of_softmax, naive_exp, naive_sum[..., 0], naive_probabilities)
            )
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(str(scaled.device), tuple(scaled.shape), dtype) from exc
    with np.errstate(all="ignore"):
        report = OverflowReport(
            dtype=info.name,
            naive_limit=info.naive_limit,
            dtype_max=info.max,
            input_overflow=input_overflow,
            naive_overflow=np.isinf(nexp_np).any(axis=-1) | np.isinf(nsum_np),
            naive_underflow=(nexp_np == 0).all(axis=-1),
            naive_nonfinite=~np.isfinite(np_np),
            log_of_softmax_neg_inf=np.isneginf(logsm_np) & np.isfinite(logp_np),
            stable_nan=np.isnan(p_np).any(axis=-1),
        )
    return NaivePath(nexp_np, nsum_np, np_np, logsm_np, report)


def _out_of_memory(device: str, shape: tuple[int, ...], dtype: str) -> ComputeMemoryError:
    return ComputeMemoryError(
        f"out of memory on {device} computing softmax of {shape[0]} x {shape[-1]} logits "
        f"in {dtype}; try the CPU, a smaller batch or float16/bfloat16"
    )


def log_softmax_rows(rows: np.ndarray, dtype: str, device: str) -> np.ndarray:
    """``torch.log_softmax`` over the last axis of a ``(rows, classes)`` array in ``dtype``.

    The light path for values that need no steps or statistics (the
    double-softmax pitfall feeds probabilities back in as logits).
    """
    import torch

    with torch.no_grad():
        t = _stored_logits(rows, torch_dtype(dtype)).to(device=resolve_device(device))
        return _to_numpy(torch.log_softmax(t, dim=-1))


def softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """Stable softmax of ``logits / temperature`` along ``dim``, in the input's layout."""
    return _one_array(logits, temperature, dim, dtype, device, "probabilities")


def log_softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """Stable log-softmax of ``logits / temperature`` along ``dim``, in the input's layout."""
    return _one_array(logits, temperature, dim, dtype, device, "log_probabilities")


def naive_softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """exp / sum without max subtraction, in ``dtype``: overflows where a naive implementation would."""
    return _one_array(logits, temperature, dim, dtype, device, "naive_probabilities")


def _one_array(
    logits: object, temperature: float, dim: int, dtype: str, device: str, name: str
) -> np.ndarray:
    result = compute_softmax(SoftmaxRequest(as_logits(logits), temperature, dim, dtype, device))
    # float64 (exact), as these one-call helpers always returned: their callers mix the
    # values freely with Python floats, which numpy would round into float32.
    return result.in_input_layout(getattr(result, name)).astype(np.float64)


def _plain_temperature(temperature: float, compute_dtype: Any) -> bool:
    """Whether T and 1/T are positive and finite once torch rounds T to ``compute_dtype``
    (float32 for float16/bfloat16/float32, float64): every T but the extremes."""
    with np.errstate(all="ignore"):
        # The compute type is float32 or float64: torch's names are numpy's.
        t = np.float64(temperature).astype(str(compute_dtype).removeprefix("torch."))
        return bool(np.isfinite(t) and t > 0 and np.isfinite(1 / t))


def _divide_keeping_fixed_points(diff: Any, temperature: float) -> Any:
    """``diff / T`` with 0 and -inf kept exactly (see the T -> 0 FIX in compute_softmax),
    for the temperatures where plain division would not keep them by itself."""
    import torch

    keep = (diff == 0) | torch.isneginf(diff)
    return torch.where(keep, diff, diff / temperature)


def _cannot_leave_range(prepared: _Prepared, temperature: float, plain: bool, dtype_max: float) -> bool:
    """True when ``x / T`` certainly stays finite and NaN-free: every logit finite, T
    plain, and max |x| / T at most half the dtype's largest value (the margin covers
    T's rounding to the compute type and the quotient's rounding to the dtype)."""
    return prepared.all_finite and plain and prepared.abs_max / temperature <= 0.5 * dtype_max


def _new_nonfinite(prepared: _Prepared, scaled: Any) -> Any:
    """Per row (keepdim): did ``x / T`` turn a finite logit into inf/NaN, or make a new NaN?

    Division by T > 0 keeps every non-finite logit non-finite and every NaN a NaN,
    so those sets can only grow: comparing their sizes with the logits' own (kept
    in ``prepared``) answers it in one or two passes over ``scaled``.
    """
    import torch

    finite_lost = torch.isfinite(scaled).sum(dim=-1, keepdim=True) != prepared.finite_count
    if prepared.all_finite:  # then a new NaN is a finite logit lost too
        return finite_lost
    return finite_lost | (torch.isnan(scaled).sum(dim=-1, keepdim=True) != prepared.nan_count)


@dataclass(frozen=True, eq=False)
class _Prepared:
    """What compute_softmax needs of its logits that does not depend on T."""

    x: Any
    """The logits stored in the dtype, on the device, as rows."""
    diff: Any
    """x - row max in the compute type (float32 for the half types)."""
    finite_count: Any
    nan_count: Any
    all_finite: bool
    abs_max: float
    """max |x| of the stored logits (meaningful when all_finite)."""
    input_overflow: np.ndarray
    notes: tuple[str, ...]


# A temperature drag changes only T, and the logits' T-independent facts (max, x - max,
# finite counts, verdicts and notes) are ~a third of a tick's work at LLM vocabulary sizes.
_last_prepared: LastVector[_Prepared] = LastVector()


def _prepare(logits: np.ndarray, dim: int, dtype: str, device: str) -> _Prepared:
    return _last_prepared.get(
        logits, (dim, dtype, str(device)), lambda: _compute_prepared(logits, dim, dtype, device)
    )


def _compute_prepared(logits: np.ndarray, dim: int, dtype: str, device: str) -> _Prepared:
    import torch

    tdtype = torch_dtype(dtype)
    rows64 = to_rows(logits, dim)
    x = _stored_logits(rows64, tdtype).to(device=device)
    # Half types accumulate in float32, as torch.softmax does internally.
    acc = x.float() if tdtype in (torch.float16, torch.bfloat16) else x
    diff = acc - acc.amax(dim=-1, keepdim=True)
    finite_count = torch.isfinite(x).sum(dim=-1, keepdim=True)
    nan_count = torch.isnan(x).sum(dim=-1, keepdim=True)
    stored = _to_numpy(x)
    with np.errstate(all="ignore"):
        input_overflow = (np.isinf(stored) & np.isfinite(rows64)).any(axis=-1)
    return _Prepared(
        x=x,
        diff=diff,
        finite_count=finite_count,
        nan_count=nan_count,
        all_finite=bool((finite_count == x.shape[-1]).all()),
        abs_max=float(x.abs().max()),
        input_overflow=input_overflow,
        notes=_notes(rows64, stored, dtype_info(dtype).name),
    )


def _stored_logits(rows64: np.ndarray, tdtype: Any) -> Any:
    """``rows64`` (values exact in float64) rounded to the compute dtype, as a CPU tensor that owns writable memory.

    float32 is rounded by numpy straight from float64 (the same IEEE rounding as
    torch's cast, +-inf beyond the range): one float32 array instead of a float64
    copy plus a cast. Other dtypes keep torch's own cast (float16 and bfloat16
    must round once, from float64).
    """
    import torch

    # np.require copies only when needed: torch refuses to wrap read-only arrays silently.
    if tdtype == torch.float32:
        with np.errstate(over="ignore", under="ignore"):
            return torch.from_numpy(np.require(rows64, np.float32, ["C", "W"]))
    return torch.from_numpy(np.require(rows64, requirements=["C", "W"])).to(tdtype)


def _to_numpy(t: Any) -> np.ndarray:
    """A tensor's values as a numpy array that holds them exactly, copying only if needed.

    float32 and float64 tensors are shared, not copied: the result arrays used to be
    float64 copies, and at 262,144 classes those eleven fresh 2 MB arrays cost more
    than the whole softmax (page faults on new memory, ~1 ms each on these machines).
    float16 and bfloat16 become float32: numpy has no bfloat16, and its float16
    arithmetic is emulated (slow); float32 holds every value of both exactly.
    """
    import torch

    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy()


def _notes(rows64: np.ndarray, stored: np.ndarray, dtype: str) -> tuple[str, ...]:
    notes = []
    if np.isnan(rows64).any():
        notes.append("A logit is NaN: every probability in its row is NaN (NaN spreads through the sum).")
    # FIX (notes): look at the logits as stored in the dtype, not as typed: a
    # finite logit that became +inf in float16 (70000) makes the row NaN too,
    # and the note must say why.
    if np.isposinf(stored).any():
        notes.append(
            "A logit is +inf: x - max is inf - inf = NaN, so softmax (and torch.softmax) "
            "returns NaN for that row."
        )
    neg_rows = np.isneginf(stored).all(axis=-1)
    if neg_rows.any():
        notes.append(
            "Every logit in a row is -inf (a fully masked row): softmax is 0/0 = NaN there, "
            "as torch.softmax gives."
        )
    elif np.isneginf(stored).any():
        notes.append("A logit is -inf: its probability is exactly 0 (this is how masking works).")
    new_inf = np.isinf(stored) & np.isfinite(rows64)
    if new_inf.any():
        notes.append(
            f"A logit is outside the range of {dtype} and was stored as +inf or -inf; "
            f"{dtype} holds at most ±{dtype_info(dtype).max:.4g}."
        )
    return tuple(notes)
