"""Timing, statistics and the result record shared by the benchmarks."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured quantity: the median of repeated runs, with min, max and p95."""

    benchmark: str
    case: str
    unit: str
    samples: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "case": self.case,
            "unit": self.unit,
            "n": len(self.samples),
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "p95": self.p95,
            "note": self.note,
            "samples": self.samples,
        }


@dataclass
class Ratio:
    """A same-run comparison: ``numerator / denominator`` of two figures' medians.

    ``low``/``high`` are the smallest and largest ratio of one round's pair of
    samples (the two were measured back to back), so they show how stable it is.
    """

    benchmark: str
    name: str
    value: float
    low: float
    high: float
    target: str = ""
    met: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def interleaved(
    contestants: Mapping[str, Callable[[], Any]],
    rounds: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time each contestant once per round, round-robin, so they share the machine's noise.

    Returns seconds per call for every contestant, one sample per round.
    """
    for _ in range(warmup):
        for fn in contestants.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, fn in contestants.items():
            t0 = clock()
            fn()
            samples[name].append(clock() - t0)
    return samples


def ratio(
    benchmark: str,
    name: str,
    numerator: list[float],
    denominator: list[float],
    target: str = "",
    passes: Callable[[float], bool] | None = None,
) -> Ratio:
    """median(numerator) / median(denominator), with the per-round spread."""
    per_round = [a / b for a, b in zip(numerator, denominator, strict=False) if b > 0]
    value = statistics.median(numerator) / statistics.median(denominator)
    return Ratio(
        benchmark=benchmark,
        name=name,
        value=value,
        low=min(per_round) if per_round else math.nan,
        high=max(per_round) if per_round else math.nan,
        target=target,
        met=None if passes is None else bool(passes(value)),
    )


def scaled(samples: list[float], factor: float) -> list[float]:
    return [s * factor for s in samples]
