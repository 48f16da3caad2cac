"""Frozen requests and results of the compute core.

These are plain data (numpy arrays, numbers, strings): the app and the widgets
may import them; only ``compute`` functions create them. Arrays hold the values
computed in the requested dtype exactly: float64 for float64, float32 for
float32, float16 and bfloat16 (never widened further: at LLM vocabulary sizes the
float64 copies cost more than the softmax; sum them with ``dtype=np.float64``).
Softmax arrays are laid out as ``(rows, classes)``: one row per distribution
along ``dim``. ``SoftmaxResult.logits`` is read-only: the results of one vector
at every temperature share it (compute/softmax.py keeps it between calls).
A few parts that only some views show are computed on their first read
(``compute.kept.Once``): the naive path and overflow report of a SoftmaxResult,
and the loss and verdict texts of a VectorAnalysis; they are the same values
either way, and reading them is safe from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from softmax_lab.compute.dtypes import DEFAULT_DTYPE
from softmax_lab.compute.kept import Once


@dataclass(frozen=True, eq=False)
class SoftmaxRequest:
    """What to compute: softmax of ``logits / temperature`` along ``dim``."""

    logits: np.ndarray
    temperature: float = 1.0
    dim: int = -1
    dtype: str = DEFAULT_DTYPE
    device: str = "auto"


@dataclass(frozen=True, eq=False)
class DistributionStats:
    """Per-row statistics of a softmax distribution (each array has one entry per row)."""

    entropy_nats: np.ndarray
    entropy_bits: np.ndarray
    perplexity: np.ndarray
    max_probability: np.ndarray
    margin: np.ndarray
    """Top-1 minus top-2 probability (top-1 itself for a single class)."""
    argmax: np.ndarray
    """Index of the most probable class; -1 where the row is NaN."""


@dataclass(frozen=True, eq=False)
class OverflowReport:
    """What happened to the naive exp/sum and to log(softmax) in this dtype.

    Everything is data (per-row boolean arrays), never a warning.
    """

    dtype: str
    naive_limit: float
    """Largest logit whose exp is finite in ``dtype`` (log of the dtype's max)."""
    dtype_max: float
    input_overflow: np.ndarray
    """A finite logit became inf when stored in ``dtype`` (e.g. 70000 in float16)."""
    naive_overflow: np.ndarray
    """The naive exp (or its sum) overflowed to inf."""
    naive_underflow: np.ndarray
    """Every naive exp underflowed to 0, so the naive softmax is 0/0."""
    naive_nonfinite: np.ndarray
    """Mask (rows, classes): naive probabilities that are NaN or inf."""
    log_of_softmax_neg_inf: np.ndarray
    """Mask (rows, classes): log(softmax(x)) is -inf where log_softmax(x) is finite."""
    stable_nan: np.ndarray
    """Rows where even the stable softmax is NaN (a +inf logit, an all -inf row or a NaN logit)."""

    @property
    def any_naive_failure(self) -> bool:
        return bool(np.any(self.naive_overflow) or np.any(self.naive_underflow))


@dataclass(frozen=True, eq=False)
class NaivePath:
    """What a hand-written ``exp(x / T) / sum`` and ``log(softmax)`` give in the dtype,
    and the report on where they fail (see :class:`SoftmaxResult`)."""

    exp: np.ndarray
    sum: np.ndarray
    probabilities: np.ndarray
    log_of_softmax: np.ndarray
    report: OverflowReport


@dataclass(frozen=True, eq=False)
class SoftmaxResult:
    """Softmax, log-softmax, the naive version and every step in between.

    Row arrays are ``(rows, classes)``; ``shape`` and ``dim`` say how rows map
    back onto the input (see :meth:`in_input_layout`).
    """

    request: SoftmaxRequest
    device: str
    shape: tuple[int, ...]
    dim: int
    """Normalised (non-negative) dim."""
    logits: np.ndarray
    """The logits as stored in the dtype."""
    scaled: np.ndarray
    """logits / T in the dtype (what the naive path exponentiates)."""
    shifted: np.ndarray
    """(x - max) / T in the dtype: the stable path's exponent, always <= 0."""
    exp_shifted: np.ndarray
    sum_exp: np.ndarray
    """Per row: sum of exp_shifted."""
    probabilities: np.ndarray
    log_probabilities: np.ndarray
    stats: DistributionStats
    naive: Once[NaivePath] = field(repr=False)
    """The naive path, computed on first read of any of its properties below: only
    the overflow lab, the presenter's naive rows and the tables show it, and it was
    a third of a temperature tick at LLM vocabulary sizes (docs/performance.md)."""
    notes: tuple[str, ...] = field(default=())
    """Plain-language remarks about this input (non-finite logits and what torch does with them)."""

    @property
    def log_of_softmax(self) -> np.ndarray:
        """log(softmax(x)) in the dtype: -inf where a probability underflowed."""
        return self.naive.get().log_of_softmax

    @property
    def naive_exp(self) -> np.ndarray:
        """exp(x / T) in the dtype, without subtracting the max: inf where it overflows."""
        return self.naive.get().exp

    @property
    def naive_sum(self) -> np.ndarray:
        """Per row: the sum of naive_exp, in the dtype."""
        return self.naive.get().sum

    @property
    def naive_probabilities(self) -> np.ndarray:
        """naive_exp / naive_sum: NaN where either overflowed or every exp underflowed."""
        return self.naive.get().probabilities

    @property
    def overflow(self) -> OverflowReport:
        return self.naive.get().report

    @property
    def temperature(self) -> float:
        return self.request.temperature

    @property
    def dtype(self) -> str:
        return self.request.dtype

    @property
    def num_rows(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.probabilities.shape[1])

    def in_input_layout(self, rows: np.ndarray) -> np.ndarray:
        """Map a ``(rows, classes)`` array back to the input's shape."""
        moved = [s for i, s in enumerate(self.shape) if i != self.dim] + [self.shape[self.dim]]
        return np.moveaxis(rows.reshape(moved), -1, self.dim)


@dataclass(frozen=True, eq=False)
class CrossEntropyResult:
    """Cross-entropy from logits, its gradient and the double-softmax pitfall value."""

    reduction: str
    loss: float
    """The reduced loss (for ``none``: the sum, which is what the gradient is of)."""
    per_row: np.ndarray
    """Loss per row (0 for ignored rows, as torch does)."""
    gradient: np.ndarray
    """d loss / d logits, ``(rows, classes)``: (softmax(x/T) - target) / T, scaled by the reduction."""
    target_distribution: np.ndarray
    """The (smoothed) target distribution each row is compared with."""
    ignored: np.ndarray
    """Rows whose target equals ``ignore_index``."""
    double_softmax_loss: float
    """The same loss computed on softmax outputs instead of logits: the tutorial mistake."""
    double_softmax_per_row: np.ndarray
    label_smoothing: float
    temperature: float
