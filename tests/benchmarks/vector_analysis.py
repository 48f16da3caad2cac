"""What one vector's analysis costs (``compute.analysis.analyse_vector``), and where it goes.

Interaction latency at 262,144 classes depends on it. Measured at T = 0.7 with
a target (the softmax at T, the T = 1 reference for the ghost bars, the loss and
the verdicts), with torch's default threads and with one thread (on a busy
machine each torch call on a small tensor can pay milliseconds to wake torch's
thread pool). cProfile then shows where the largest case spends its time.
"""

from __future__ import annotations

import cProfile
import io
import pstats

import numpy as np

from tests.benchmarks.common import Figure, Report, interleaved, ratio, scaled

SIZES = (10, 1_000, 50_257, 262_144)


def _threads(count: int):
    import torch

    def call(fn):
        def run() -> None:
            before = torch.get_num_threads()
            torch.set_num_threads(count)
            try:
                fn()
            finally:
                torch.set_num_threads(before)

        return run

    return call


def run(report: Report, rounds: int) -> None:
    import torch

    from softmax_lab.compute.analysis import VectorRequest, analyse_vector

    default = torch.get_num_threads()
    rng = np.random.default_rng(0)
    b = "analyse_vector"
    medians: dict[int, float] = {}
    for n in SIZES:
        request = VectorRequest(rng.normal(size=n) * 3.0, 0.7, "float32", "cpu", 0, 0.0)

        def analyse(request=request) -> None:
            analyse_vector(request)

        samples = interleaved(
            {f"{default} threads": analyse, "1 thread": _threads(1)(analyse)}, rounds=rounds
        )
        ms = {k: scaled(v, 1e3) for k, v in samples.items()}
        for name, values in ms.items():
            report.figures.append(Figure(b, f"{n:,} classes, T = 0.7, {name}", "ms", values))
        medians[n] = float(np.median(ms[f"{default} threads"]))
        if default != 1:
            report.ratios.append(
                ratio(
                    b,
                    f"{n:,} classes: {default} threads / 1 thread",
                    ms[f"{default} threads"],
                    ms["1 thread"],
                )
            )

    n = SIZES[-1]
    request = VectorRequest(rng.normal(size=n) * 3.0, 0.7, "float32", "cpu", 0, 0.0)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(5):
        analyse_vector(request)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    top = [line for line in out.getvalue().splitlines() if line.strip()][-13:]
    report.details["analyse_vector"] = {
        "median_ms": {str(k): v for k, v in medians.items()},
        "profile_262144_tottime_top": top,
    }
