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
    """
    p = np.asarray(probabilities, dtype=np.float64)
    logp = np.asarray(log_probabilities, dtype=np.float64)
    with np.errstate(all="ignore"):
        terms = np.where(p > 0, p * logp, 0.0)
        entropy = -terms.sum(axis=-1)
        nan_rows = np.isnan(p).any(axis=-1) | np.isnan(logp).any(axis=-1)
        entropy = np.where(nan_rows, np.nan, np.maximum(entropy, 0.0))
        perplexity = np.exp(entropy)
        bits = entropy / math.log(2.0)
        clean = np.where(np.isnan(p), -np.inf, p)
        argmax = np.argmax(clean, axis=-1).astype(np.int64)
        argmax[nan_rows] = -1
        top1 = np.max(clean, axis=-1)
        if p.shape[-1] >= 2:
            top2 = np.partition(clean, -2, axis=-1)[..., -2]
            margin = top1 - top2
        else:
            margin = top1.copy()
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
