"""Checks shared by every compute entry point, with messages a person can act on."""

from __future__ import annotations

import math

import numpy as np

from softmax_lab.compute.errors import InvalidInputError

IGNORE_INDEX: int = -100
"""PyTorch's default ``ignore_index``: a target that leaves its row out of the loss."""


def check_temperature(temperature: float) -> float:
    """Temperature must be a finite number > 0 (T -> 0 is handled as the argmax limit)."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InvalidInputError(f"temperature must be a number, not {temperature!r}") from None
    if not math.isfinite(t) or t <= 0:
        raise InvalidInputError(
            f"temperature must be finite and greater than 0 (got {t:g}); "
            "small values such as 0.01 approach the argmax"
        )
    return t


def check_label_smoothing(label_smoothing: float) -> float:
    """Label smoothing as a float between 0 and 1 (inclusive), as torch accepts it."""
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise InvalidInputError(f"label smoothing must be between 0 and 1 (got {eps:g})")
    return eps


def as_logits(logits: object) -> np.ndarray:
    """Convert to a float64 array with at least one dimension and one class."""
    # FIX: ragged nested lists made numpy raise its own ValueError ("inhomogeneous
    # shape"), which reached the user unexplained.
    try:
        arr = np.asarray(logits)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"logits must form a rectangular array of numbers (every row the same length): {exc}"
        ) from None
    # FIX: numpy counts timedelta64 as a number (a subtype of signedinteger), so
    # durations were silently turned into logits; kind "m" is refused too.
    if arr.dtype == object or arr.dtype.kind == "m" or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise InvalidInputError(f"logits must be numbers, got values of type {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidInputError("logits must be real numbers, not complex")
    # A signaling NaN (possible in any float32 bit pattern a user hands us) makes numpy
    # warn while widening; it becomes an ordinary NaN, which the verdicts already explain.
    with np.errstate(invalid="ignore"):
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        raise InvalidInputError("logits are empty: give at least one class")
    return arr


def normalise_dim(dim: int, ndim: int) -> int:
    """Turn a possibly negative ``dim`` into an index, or say which dims exist."""
    # FIX: a float dim (0.5) failed later inside numpy with a TypeError, and a
    # bool dim (True) was silently taken as 1.
    if isinstance(dim, bool | np.bool_) or not isinstance(dim, int | np.integer):
        raise InvalidInputError(f"dim must be a whole number such as -1 or 0, not {dim!r}")
    dim = int(dim)
    if not -ndim <= dim < ndim:
        raise InvalidInputError(
            f"dim {dim} is out of range for a {ndim}-D tensor (use {-ndim}..{ndim - 1})"
        )
    return dim % ndim


def to_rows(arr: np.ndarray, dim: int) -> np.ndarray:
    """Move ``dim`` last and flatten the rest: one row per distribution, in order."""
    moved = np.moveaxis(arr, dim, -1)
    return moved.reshape(-1, moved.shape[-1])
