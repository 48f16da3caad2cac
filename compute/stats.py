"""Statistics of softmax distributions, computed from (rows, classes) arrays."""

from __future__ import annotations

import math

import numpy as np

from softmax_lab.compute.types import DistributionStats


def distribution_stats(probabilities: np.ndarray, log_probabilities: np.ndarray) -> DistributionStats:
    """Entropy (nats, bits), perplexity, max probability, top-1 margin and argmax per row.

    Entropy uses the log-probabilities (finite even where a probability
    underflowed to 0) and treats ``0 * log 0`` as 0. Rows containing NaN give
    NaN statistics and argmax -1.

    Any float dtype is accepted as it is (the softmax results are float32 for the
    narrow dtypes): sums and differences are taken in float64, but the arrays are
    never copied to float64 as a whole (at 262,144 classes those copies and their
    fresh pages cost more than everything else here).
    """
    p = np.asarray(probabilities)
    logp = np.asarray(log_probabilities)
    with np.errstate(all="ignore"):
        sums, nan_rows = _p_log_p_sums(p, logp)
        entropy = np.where(nan_rows, np.nan, np.maximum(-sums, 0.0))
        perplexity = np.exp(entropy)
        bits = entropy / math.log(2.0)
        # NaN rows get an arbitrary argmax and top values here: overwritten below.
        argmax = np.argmax(p, axis=-1).astype(np.int64)
        top1 = np.take_along_axis(p, argmax[..., None], axis=-1)[..., 0].astype(np.float64)
        margin = top1 - _runner_up(p, argmax) if p.shape[-1] >= 2 else top1.copy()
        argmax[nan_rows] = -1
        max_probability = np.where(nan_rows, np.nan, top1)
        margin = np.where(nan_rows, np.nan, margin)
    return DistributionStats(
        entropy_nats=entropy,
        entropy_bits=bits,
        perplexity=perplexity,
        max_probability=max_probability,
        margin=margin,
        argmax=argmax,
    )


def weighted_sums(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: sum of ``weights * values`` in float64, a zero weight counting 0 even
    against ``-inf`` (a masked class in ``p log p``, a class without target mass in
    cross-entropy).

    einsum casts to float64 in small buffers, so no float64 copy of the rows is made.
    A NaN sum means a NaN or a ``0 * -inf`` term; only those rows are summed again,
    with the zero-weight terms masked (a NaN weight or value still gives NaN).
    """
    with np.errstate(all="ignore"):
        sums = np.einsum("...i,...i->...", weights, values, dtype=np.float64)
        redo = np.isnan(sums)
        if redo.any():
            w = weights[redo]
            masked = np.where(w > 0, values[redo], 0.0)
            sums[redo] = np.einsum("...i,...i->...", w, masked, dtype=np.float64)
    return sums


def _p_log_p_sums(p: np.ndarray, logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum of p * log p in float64 (``0 * log 0 = 0``), and whether the row has a NaN."""
    sums = weighted_sums(p, logp)
    nan_rows = np.zeros(sums.shape, dtype=bool)
    unsure = np.isnan(sums)  # a NaN row sums to NaN: only those are looked at
    if unsure.any():
        nan_rows[unsure] = np.isnan(p[unsure]).any(axis=-1) | np.isnan(logp[unsure]).any(axis=-1)
    return sums, nan_rows


def _runner_up(p: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """Per row: the largest value once the argmax entry is left out (a tie gives top-1 again).

    A mask and a masked max instead of np.partition, which copies the whole array.
    """
    others = np.ones(p.shape, dtype=bool)
    np.put_along_axis(others, argmax[..., None], False, axis=-1)
    return np.max(p, axis=-1, where=others, initial=-np.inf).astype(np.float64)
