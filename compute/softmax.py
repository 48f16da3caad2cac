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

from typing import Any

import numpy as np

from softmax_lab.compute.device import resolve_device
from softmax_lab.compute.dtypes import dtype_info, torch_dtype
from softmax_lab.compute.errors import ComputeMemoryError
from softmax_lab.compute.stats import distribution_stats
from softmax_lab.compute.types import OverflowReport, SoftmaxRequest, SoftmaxResult
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
        Row-wise arrays (one row per distribution along ``dim``) as float64
        holding the values computed in ``request.dtype``.

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
            # np.require copies only when needed: torch refuses to wrap read-only arrays silently.
            x = torch.from_numpy(np.require(rows64, requirements=["C", "W"]))
            x = x.to(device=device, dtype=tdtype)
            scaled = x / temperature
            # Half types accumulate in float32, as torch.softmax does internally.
            acc = x.float() if tdtype in (torch.float16, torch.bfloat16) else x
            row_max = acc.amax(dim=-1, keepdim=True)
            diff = acc - row_max
            # FIX (T -> 0 NaN): torch converts a Python-scalar T to the dtype's
            # compute type (float32 for float16/bfloat16/float32), so T = 1e-300
            # becomes 0 there (on CUDA, 1/T becomes inf) and 0 / 0 = NaN for the
            # max entry. 0 and -inf are fixed points of division by any T > 0:
            # keep them exactly, so T's rounding in the dtype cannot matter.
            # inf - inf = NaN (a +inf or all -inf row) is neither and stays NaN.
            keep = (diff == 0) | torch.isneginf(diff)
            shifted = torch.where(keep, diff, diff / temperature)
            exp_shifted = torch.exp(shifted)
            sum_exp = exp_shifted.sum(dim=-1)
            # The softmax itself is torch's, on exactly what `torch.softmax(x / T)`
            # would see, so the lab's numbers are PyTorch's in every dtype. Only
            # where x / T left the dtype's range (T -> 0) is the max-subtracted
            # input used instead: same distribution, no inf - inf.
            # (x / T is broken where a finite x became inf/NaN, or a NaN appeared:
            # -inf / T is NaN once T rounds to inf in float32.)
            broken = (~torch.isfinite(scaled) & torch.isfinite(x)) | (
                torch.isnan(scaled) & ~torch.isnan(x)
            )
            broken = broken.any(dim=-1, keepdim=True)
            z = torch.where(broken, shifted.to(tdtype), scaled)
            probabilities = torch.softmax(z, dim=-1)
            log_probabilities = torch.log_softmax(z, dim=-1)
            # What `torch.log(torch.softmax(x))` gives: the log of probabilities
            # already rounded to the dtype, -inf where they underflowed.
            log_of_softmax = torch.log(probabilities)
            naive_exp = torch.exp(scaled)
            naive_sum = naive_exp.sum(dim=-1, keepdim=True)
            naive_probabilities = naive_exp / naive_sum
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
                    log_of_softmax,
                    naive_exp,
                    naive_sum[..., 0],
                    naive_probabilities,
                )
            ]
    except torch.OutOfMemoryError as exc:
        raise ComputeMemoryError(
            f"out of memory on {device} computing softmax of {rows64.shape[0]} x "
            f"{rows64.shape[1]} logits in {request.dtype}; try the CPU, a smaller batch "
            "or float16/bfloat16"
        ) from exc
    (x_np, scaled_np, shifted_np, exp_np, sum_np, p_np, logp_np, logsm_np, nexp_np, nsum_np, np_np) = (
        arrays
    )

    with np.errstate(all="ignore"):
        input_overflow = (np.isinf(x_np) & np.isfinite(rows64)).any(axis=-1)
        naive_overflow = np.isinf(nexp_np).any(axis=-1) | np.isinf(nsum_np)
        naive_underflow = (nexp_np == 0).all(axis=-1)
        naive_nonfinite = ~np.isfinite(np_np)
        log_neg_inf = np.isneginf(logsm_np) & np.isfinite(logp_np)
        stable_nan = np.isnan(p_np).any(axis=-1)

    overflow = OverflowReport(
        dtype=info.name,
        naive_limit=info.naive_limit,
        dtype_max=info.max,
        input_overflow=input_overflow,
        naive_overflow=naive_overflow,
        naive_underflow=naive_underflow,
        naive_nonfinite=naive_nonfinite,
        log_of_softmax_neg_inf=log_neg_inf,
        stable_nan=stable_nan,
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
        log_of_softmax=logsm_np,
        naive_exp=nexp_np,
        naive_sum=nsum_np,
        naive_probabilities=np_np,
        stats=distribution_stats(p_np, logp_np),
        overflow=overflow,
        notes=_notes(rows64, x_np, info.name),
    )


def log_softmax_rows(rows: np.ndarray, dtype: str, device: str) -> np.ndarray:
    """``torch.log_softmax`` over the last axis of a ``(rows, classes)`` array in ``dtype``.

    The light path for values that need no steps or statistics (the
    double-softmax pitfall feeds probabilities back in as logits).
    """
    import torch

    with torch.no_grad():
        t = torch.from_numpy(np.require(rows, np.float64, ["C", "W"]))
        t = t.to(device=resolve_device(device), dtype=torch_dtype(dtype))
        return _to_numpy(torch.log_softmax(t, dim=-1))


def softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """Stable softmax of ``logits / temperature`` along ``dim``, in the input's layout."""
    result = compute_softmax(SoftmaxRequest(as_logits(logits), temperature, dim, dtype, device))
    return result.in_input_layout(result.probabilities)


def log_softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """Stable log-softmax of ``logits / temperature`` along ``dim``, in the input's layout."""
    result = compute_softmax(SoftmaxRequest(as_logits(logits), temperature, dim, dtype, device))
    return result.in_input_layout(result.log_probabilities)


def naive_softmax(
    logits: object, temperature: float = 1.0, dim: int = -1, dtype: str = "float32", device: str = "cpu"
) -> np.ndarray:
    """exp / sum without max subtraction, in ``dtype``: overflows where a naive implementation would."""
    result = compute_softmax(SoftmaxRequest(as_logits(logits), temperature, dim, dtype, device))
    return result.in_input_layout(result.naive_probabilities)


def _to_numpy(t: Any) -> np.ndarray:
    """Exact float64 copy of a tensor. The widening happens in numpy: torch's
    elementwise kernels wake its thread pool, which costs milliseconds per
    call on a busy 2-core machine for what is a 0.1 ms copy."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()  # numpy has no bfloat16; float32 holds every value exactly
    return t.numpy().astype(np.float64)


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
