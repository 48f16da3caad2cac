"""Plain-language verdicts about naive versus stable softmax in a dtype."""

from __future__ import annotations

import math

import numpy as np

from softmax_lab.compute.dtypes import dtype_info
from softmax_lab.compute.types import SoftmaxResult


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def overflow_verdict(result: SoftmaxResult, row: int = 0) -> str:
    """One or two sentences on what the naive exp/sum does to ``row`` in the result's dtype.

    Examples: "exp(1000) overflows float32 (max ≈ 3.4e+38); subtracting the max
    gives exp(0) = 1, so the stable softmax is fine."
    """
    info = dtype_info(result.dtype)
    report = result.overflow
    scaled = result.scaled[row]
    t = result.temperature
    t_text = "" if t == 1.0 else f" at T = {_fmt(t)}"
    x_name = "x" if t == 1.0 else "x/T"
    if report.stable_nan[row]:
        return "The stable softmax is NaN for this row too: " + (
            " ".join(result.notes) if result.notes else "a logit is NaN or +inf."
        )
    finite = scaled[np.isfinite(scaled)]
    if report.naive_overflow[row]:
        # FIX: ignore NaN (0 / 0 when T rounds to 0 in the dtype's arithmetic);
        # np.max propagated it and the text read "exp(nan) overflows".
        big = float(np.max(scaled, initial=-np.inf, where=~np.isnan(scaled)))
        if math.isinf(big):
            # The largest value itself overflowed when divided by T or stored.
            # FIX: divide as Python floats; numpy's float64 scalar divide warned
            # (RuntimeWarning) when x / T overflows, e.g. 1e300 / 1e-10.
            big_text = f"{x_name} = {_fmt(float(np.max(result.logits[row])) / t)}"
        else:
            big_text = _fmt(big)
        if math.isfinite(big) and big <= info.naive_limit:
            head = (
                f"Each exp fits in {info.name}, but their sum exceeds its max "
                f"(≈ {info.max:.2g}){t_text}, so the naive softmax divides by inf"
            )
        else:
            head = (
                f"exp({big_text}) overflows {info.name} (max ≈ {info.max:.2g}){t_text}; "
                f"naive exp/sum gives inf/inf = NaN"
            )
        return (
            f"{head}. Subtracting the max gives exp(0) = 1 for the largest logit, "
            f"so the stable softmax is fine. {info.name} survives naive exp only up to "
            f"{x_name} ≈ {info.naive_limit:.2f}."
        )
    if report.naive_underflow[row]:
        top = _fmt(float(np.max(finite))) if finite.size else "-inf"
        return (
            f"Every exp underflows to 0 in {info.name} (the largest {x_name} is {top}){t_text}; "
            f"naive exp/sum gives 0/0 = NaN. Subtracting the max gives exp(0) = 1, "
            f"so the stable softmax is fine."
        )
    if report.naive_nonfinite[row].any():
        # FIX: without this branch the text below claimed "Naive and stable agree"
        # while the naive result was NaN (e.g. [0, 0] at T = 1e-300 in float32).
        return (
            f"The naive softmax is NaN here although nothing overflows: T = {_fmt(t)} does not "
            f"survive {info.name} arithmetic (it rounds to 0 or inf), so x/T is 0/0 or inf/inf "
            f"for some class. The stable softmax keeps x - max = 0 (and -inf) exactly and is fine."
        )
    spread = float(np.max(finite)) if finite.size else 0.0
    headroom = info.naive_limit - spread
    return (
        f"No overflow: the largest {x_name} is {_fmt(spread)}, below {info.name}'s naive "
        f"limit of ≈ {info.naive_limit:.2f} (headroom {headroom:.2f}). Naive and stable agree "
        f"here; the stable version subtracts the max anyway so it cannot overflow."
    )


def log_softmax_verdict(result: SoftmaxResult, row: int = 0) -> str:
    """Why log_softmax beats log(softmax(x)) for ``row``, or that they agree."""
    mask = result.overflow.log_of_softmax_neg_inf[row]
    if mask.any():
        k = int(np.argmax(mask))
        return (
            f"log(softmax(x)) is -inf for {int(mask.sum())} class(es) (first: class {k}) because "
            f"their probability underflowed to 0 in {result.dtype}; log_softmax(x) = "
            f"(x - max) - log(sum exp(x - max)) stays finite: {_fmt(result.log_probabilities[row, k])}."
        )
    return (
        "log(softmax(x)) and log_softmax(x) agree here; log_softmax stays finite even "
        "when a probability underflows to 0."
    )
