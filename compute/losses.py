"""Cross-entropy from logits, its gradient, and the double-softmax pitfall.

``nn.CrossEntropyLoss`` expects *logits*: it applies log-softmax itself.
Tutorials often feed it softmax outputs instead; the loss then comes out
squashed towards log(C) and the gradients vanish. We compute both so the window
can show the right value beside the wrong one.

The loss follows torch's definition (checked against ``F.cross_entropy`` in the
tests): for index targets with label smoothing e, the target distribution is
``(1 - e) * one_hot + e / C``; ``mean`` divides by the number of rows that are
not ``ignore_index``; probability targets are smoothed the same way and
``mean`` divides by the number of rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.softmax import compute_softmax, log_softmax_rows
from softmax_lab.compute.stats import weighted_sums
from softmax_lab.compute.types import CrossEntropyResult, SoftmaxRequest, SoftmaxResult
from softmax_lab.compute.validation import IGNORE_INDEX, as_logits, check_label_smoothing

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def cross_entropy(
    logits: object,
    targets: object,
    *,
    temperature: float = 1.0,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    reduction: Reduction = "mean",
    dtype: str = "float32",
    device: str = "cpu",
) -> CrossEntropyResult:
    """Cross-entropy of ``softmax(logits / T)`` against ``targets``.

    Parameters
    ----------
    logits
        ``(C,)`` for one distribution or ``(N, C)`` for a batch (classes last).
    targets
        Class indices (an int or ``(N,)`` ints) or class probabilities
        (``(C,)`` / ``(N, C)`` floats, each row summing to 1).
    temperature, label_smoothing, ignore_index, reduction
        As in ``torch.nn.functional.cross_entropy`` (temperature divides the logits).
    dtype, device
        Where the log-softmax is computed.

    Returns
    -------
    CrossEntropyResult
        Loss, per-row losses, gradient d loss / d logits and the double-softmax value.
    """
    x = as_logits(logits)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise InvalidInputError(f"cross-entropy takes (C,) or (N, C) logits, got shape {x.shape}")
    if reduction not in REDUCTIONS:
        raise InvalidInputError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    eps = check_label_smoothing(label_smoothing)
    result = compute_softmax(SoftmaxRequest(x, temperature, -1, dtype, device))
    return cross_entropy_from_result(
        result,
        targets,
        label_smoothing=eps,
        ignore_index=ignore_index,
        reduction=reduction,
    )


def cross_entropy_from_result(
    result: SoftmaxResult,
    targets: object,
    *,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    reduction: Reduction = "mean",
) -> CrossEntropyResult:
    """Cross-entropy of an already computed softmax (rows = distributions).

    Lets the window compute softmax once per edit and derive the loss from it.
    """
    if reduction not in REDUCTIONS:
        raise InvalidInputError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    eps = check_label_smoothing(label_smoothing)
    n, c = result.probabilities.shape
    q, ignored = _target_distribution(targets, n, c, eps, ignore_index)
    loss_rows = _row_losses(result.log_probabilities, q, ignored)
    # The pitfall: feed softmax outputs to CrossEntropyLoss as if they were logits.
    double_log_p = log_softmax_rows(result.probabilities, result.dtype, result.device)
    double_rows = _row_losses(double_log_p, q, ignored)

    counted = float(n - int(ignored.sum()))
    if reduction == "mean":
        scale = 1.0 / counted if counted > 0 else np.nan
    else:
        scale = 1.0
    with np.errstate(all="ignore"):
        # FIX: d/dx of -sum(q log softmax(x/T)) is (p * sum(q) - q) / T; the old
        # (p - q) / T assumed sum(q) == 1 exactly, but probability targets are
        # accepted when they sum to 1 within 1e-3, and torch's gradient keeps sum(q).
        mass = q.sum(axis=-1, keepdims=True)
        # In place on one float64 array (the probabilities may be float32).
        grad = np.multiply(result.probabilities, mass, dtype=np.float64)
        grad -= q
        grad *= scale / result.temperature
        grad[ignored] = 0.0
    return CrossEntropyResult(
        reduction=reduction,
        loss=_reduce(loss_rows, reduction, counted),
        per_row=loss_rows,
        gradient=grad,
        target_distribution=q,
        ignored=ignored,
        double_softmax_loss=_reduce(double_rows, reduction, counted),
        double_softmax_per_row=double_rows,
        label_smoothing=eps,
        temperature=result.temperature,
    )


def _target_distribution(
    targets: object, n: int, c: int, eps: float, ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(targets)
    if t.dtype == object or not np.issubdtype(t.dtype, np.number):
        raise InvalidInputError("targets must be class indices or class probabilities")
    if np.issubdtype(t.dtype, np.integer) or (t.ndim <= 1 and t.size == n and _is_whole(t) and n > 1):
        idx = t.astype(np.int64).reshape(-1)
        if idx.size != n:
            raise InvalidInputError(f"got {idx.size} target indices for {n} rows of logits")
        ignored = idx == ignore_index
        bad = (~ignored) & ((idx < 0) | (idx >= c))
        if bad.any():
            first = int(idx[bad][0])
            raise InvalidInputError(
                f"target class {first} is out of range: there are {c} classes (0..{c - 1})"
            )
        q = np.zeros((n, c), dtype=np.float64)
        q[np.arange(n)[~ignored], idx[~ignored]] = 1.0
    else:
        q = t.astype(np.float64).reshape(-1, c) if t.size == n * c else None
        if q is None:
            raise InvalidInputError(
                f"probability targets must have shape ({n}, {c}) like the logits, got {t.shape}"
            )
        if not np.isfinite(q).all() or (q < 0).any():
            raise InvalidInputError("probability targets must be finite and non-negative")
        if not np.allclose(q.sum(axis=-1), 1.0, atol=1e-3):
            raise InvalidInputError("each row of probability targets must sum to 1")
        ignored = np.zeros(n, dtype=bool)
    if eps:
        # In place: at LLM vocabulary sizes every fresh (rows, classes) array costs
        # page faults; without smoothing q stays the mostly untouched zeros.
        q *= 1.0 - eps
        q += eps / c
    q[ignored] = 0.0
    return q, ignored


def _is_whole(t: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(t)) and np.all(t == np.round(t)))


def _row_losses(log_probabilities: np.ndarray, q: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """-sum q log p per row, in float64; 0 * -inf counts as 0 (a class with no target mass)."""
    rows = -weighted_sums(q, log_probabilities)
    rows[ignored] = 0.0
    return rows


def _reduce(rows: np.ndarray, reduction: str, counted: float) -> float:
    total = float(rows.sum())
    if reduction == "mean":
        return total / counted if counted > 0 else float("nan")
    return total
