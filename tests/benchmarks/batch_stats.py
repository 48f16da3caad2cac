"""Batch statistics at a new temperature: the app's path against plain torch and the machine.

A (256, 50257) float32 batch with targets, read-only as a memory-mapped file is.
Per round, back to back:

- ``app, new T``: :func:`batch_statistics` at a temperature it has not seen, the
  batch's temperature-independent facts kept from the previous call (what a
  slider drag over a loaded batch costs);
- ``app, first view``: the same with nothing kept (the first view of a batch);
- ``app, N workers, a core left free``: new T on one worker per core but one (the
  thread comparison: by default every core takes part);
- ``app, torch kernels``: new T without compute/_fused.c (what a machine without a
  C compiler runs), on its own default workers;
- ``app, dim=0``: the same batch normalised down the columns (the classic mistake
  the window teaches), new T;
- ``torch reference``: ``torch.softmax`` + separate reductions (entropy from
  ``log_softmax``, max/argmax, per-row ``F.cross_entropy``), torch's default threads;
- ``exp2 only``: one ``torch.exp2`` over the same elements (a compute floor: the
  exponentials alone, all threads);
- ``read limit``: streaming the same bytes once, the faster of ``torch.sum`` and
  ``np.add.reduce`` (the memory-read limit).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from tests.benchmarks.common import Figure, Report, interleaved, ratio, scaled

SHAPE = (256, 50_257)


def run(report: Report, rounds: int) -> None:
    import torch
    import torch.nn.functional as F

    from softmax_lab.compute import batch as batch_module
    from softmax_lab.compute.batch import BatchRequest, batch_statistics

    rng = np.random.default_rng(0)
    data = rng.standard_normal(SHAPE, dtype=np.float32) * 3.0
    data[:, rng.integers(0, SHAPE[1], 20)] += 8.0  # a few strong candidates, as in LLM logits
    data.setflags(write=False)
    targets = rng.integers(0, SHAPE[1], SHAPE[0])
    x = torch.from_numpy(data.copy())
    t = torch.from_numpy(targets)
    out = torch.empty_like(x)
    temperatures = itertools.cycle(np.geomspace(0.3, 3.0, 37))

    def app() -> None:
        batch_statistics(BatchRequest(data, next(temperatures), 1, "float32", "cpu", targets))

    def app_columns() -> None:
        batch_statistics(BatchRequest(data, next(temperatures), 0, "float32", "cpu", targets))

    def app_first_view() -> None:
        batch_module.clear_cache(dim=1)  # the next "new T" is warm again: this refills it
        app()

    compiled = batch_module._fused is not None and batch_module.FUSED_KERNEL

    # The comparison: the default against a worker per core but one.
    fewer = max(1, batch_module._usable_cores() - 1)
    fewer_name = f"app, new T, {fewer} worker{'s' if fewer > 1 else ''}, a core left free"

    def app_with(name: str, value: object) -> Callable[[], None]:
        """``app`` with one of batch.py's settings changed for the call."""

        def run_app() -> None:
            before = getattr(batch_module, name)
            setattr(batch_module, name, value)
            try:
                app()
            finally:
                setattr(batch_module, name, before)

        return run_app

    app_fewer_workers = app_with("WORKERS", fewer)
    app_torch_kernels = app_with("FUSED_KERNEL", False)

    def reference() -> None:
        z = x / next(temperatures)
        p = torch.softmax(z, dim=1)
        logp = torch.log_softmax(z, dim=1)
        (p * logp).sum(dim=1).neg_()
        p.max(dim=1)
        F.cross_entropy(z, t, reduction="none")

    def exp2_only() -> None:
        torch.exp2(x, out=out)

    def torch_sum() -> None:
        x.sum()

    def numpy_sum() -> None:
        np.add.reduce(data, axis=None)

    app()  # the facts of this batch are kept from here on
    samples = interleaved(
        {
            "app, first view": app_first_view,
            "app, new T": app,
            fewer_name: app_fewer_workers,
            "app, new T, torch kernels": app_torch_kernels,
            "app, dim=0, new T": app_columns,
            "torch reference": reference,
            "exp2 only": exp2_only,
            "read: torch.sum": torch_sum,
            "read: np.add.reduce": numpy_sum,
        },
        rounds=rounds,
    )
    ms = {name: scaled(values, 1e3) for name, values in samples.items()}
    faster_read = min(("read: torch.sum", "read: np.add.reduce"), key=lambda k: np.median(ms[k]))
    read = ms[faster_read]
    gib = data.nbytes / 2**30
    case = f"{SHAPE[0]} x {SHAPE[1]:,} float32"
    for name, values in ms.items():
        note = ""
        if name.startswith("read"):
            note = f"{gib / (np.median(values) / 1e3):.1f} GiB/s"
        report.figures.append(Figure("batch statistics", f"{case}: {name}", "ms", values, note))
    b = "batch statistics"
    report.ratios += [
        ratio(
            b,
            "torch reference / app (new T)",
            ms["torch reference"],
            ms["app, new T"],
            ">= 2",
            lambda v: v >= 2.0,
        ),
        ratio(b, "app (new T) / read limit", ms["app, new T"], read, "<= 3", lambda v: v <= 3.0),
        ratio(
            b, "torch reference / app (first view)", ms["torch reference"], ms["app, first view"]
        ),
        ratio(b, "app (first view) / read limit", ms["app, first view"], read),
        ratio(b, "app (new T) / exp2 only", ms["app, new T"], ms["exp2 only"]),
        ratio(b, f"app {fewer} worker(s) / app (new T)", ms[fewer_name], ms["app, new T"]),
        ratio(
            b,
            "app torch kernels / app (new T)",
            ms["app, new T, torch kernels"],
            ms["app, new T"],
        ),
    ]
    report.details["batch statistics"] = {
        "shape": list(SHAPE),
        "read_limit": faster_read,
        "torch_threads": torch.get_num_threads(),
        "compiled_kernel": compiled,
        "app_workers": batch_module.WORKERS
        or min(batch_module._usable_cores(), batch_module.DEFAULT_MAX_WORKERS),
        "chunk_elements": batch_module.CHUNK_ELEMENTS,
    }
