"""What one vector's analysis costs (``compute.analysis.analyse_vector``), and where it goes.

Interaction latency at 262,144 classes depends on it. Two cases per size, with a
target (the softmax at T, the T = 1 reference for the ghost bars, the loss and
the verdicts), interleaved round by round:

- **a temperature change**: the vector is read-only and owns its data, as the
  session keeps every vector, and T alternates between two values, so what does
  not depend on T (the T = 1 reference, the logits' max, counts and notes) is
  reused, as during a slider drag;
- **a new vector**: a writable array, from which nothing is kept, as when the
  person edits the logits.

``analyse_vector`` pins torch to one thread itself (docs/performance.md). cProfile
then shows where a temperature change at the largest size spends its time.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import pstats

import numpy as np

from tests.benchmarks.common import Figure, Report, interleaved, ratio, scaled

SIZES = (10, 1_000, 50_257, 262_144)
TEMPERATURES = (0.7, 0.8)


def _requests(n: int, rng: np.random.Generator):
    """(temperature change, new vector) callables for an ``n``-class vector."""
    from softmax_lab.compute.analysis import VectorRequest, analyse_vector

    values = rng.normal(size=n) * 3.0
    kept = values.copy()
    kept.flags.writeable = False
    temperatures = itertools.cycle(TEMPERATURES)

    def temperature_change() -> None:
        analyse_vector(VectorRequest(kept, next(temperatures), "float32", "cpu", 0, 0.0))

    def new_vector() -> None:
        analyse_vector(VectorRequest(values, 0.7, "float32", "cpu", 0, 0.0))

    return temperature_change, new_vector


def run(report: Report, rounds: int) -> None:
    rng = np.random.default_rng(0)
    b = "analyse_vector"
    medians: dict[str, dict[int, float]] = {"temperature change": {}, "new vector": {}}
    for n in SIZES:
        change, new = _requests(n, rng)
        samples = interleaved({"temperature change": change, "new vector": new}, rounds=rounds)
        ms = {k: scaled(v, 1e3) for k, v in samples.items()}
        for name, values in ms.items():
            report.figures.append(Figure(b, f"{n:,} classes: {name}", "ms", values))
            medians[name][n] = float(np.median(values))
        report.ratios.append(
            ratio(b, f"{n:,} classes: temperature change / new vector", ms["temperature change"], ms["new vector"])
        )

    change, _ = _requests(SIZES[-1], rng)
    change()  # keeps the facts the profiled calls reuse
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(10):
        change()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    top = [line for line in out.getvalue().splitlines() if line.strip()][-13:]
    report.details["analyse_vector"] = {
        "median_ms": {name: {str(k): v for k, v in m.items()} for name, m in medians.items()},
        "profile_262144_temperature_change_tottime_top": top,
    }
