"""CUDA: batch softmax, log-softmax and cross-entropy on the GPU against a device-to-device copy.

Skipped, with a line saying so, where ``torch.cuda.is_available()`` is False.
The batch fills a few GB (16,384 x 50,257 float32 = 3.3 GB). Each op reads the
batch and writes a batch-sized result, as the copy does, so ``copy / op`` is the
fraction of the copy's bandwidth the op reaches (the issue's target: >= 0.7 for
softmax). Timed with ``torch.cuda.synchronize()`` around each call; the
contestants alternate round by round. The app's own path (host batch, chunks
copied to the GPU) is timed too, for a (4,096 x 50,257) batch.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from tests.benchmarks.common import Figure, Report, interleaved, ratio, scaled

SHAPE = (16_384, 50_257)
APP_SHAPE = (4_096, 50_257)


def run(report: Report, rounds: int) -> None:
    import torch
    import torch.nn.functional as F

    from softmax_lab.compute.device import cuda_status

    status = cuda_status()
    if not status.available:
        line = f"cuda: skipped: torch.cuda.is_available() is False here ({status.reason})"
        report.notes.append(line)
        report.details["cuda"] = {"skipped": status.reason}
        return

    from softmax_lab.compute.batch import BatchRequest, batch_statistics

    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(SHAPE, device=device, generator=generator) * 3.0
    targets = torch.randint(0, SHAPE[1], (SHAPE[0],), device=device, generator=generator)
    out = torch.empty_like(x)

    def clock() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    samples = interleaved(
        {
            "device-to-device copy": lambda: out.copy_(x),
            "softmax": lambda: F.softmax(x, dim=1),
            "log_softmax": lambda: F.log_softmax(x, dim=1),
            "cross_entropy (per row)": lambda: F.cross_entropy(x, targets, reduction="none"),
        },
        rounds=rounds,
        warmup=2,
        clock=clock,
    )
    ms = {k: scaled(v, 1e3) for k, v in samples.items()}
    gb = x.numel() * x.element_size() / 1e9
    b = "cuda"
    name = torch.cuda.get_device_name(0)
    for op, values in ms.items():
        # Bytes moved: read the batch and write a batch-sized result (the loss
        # writes N values, but log_softmax inside it writes N x C).
        bandwidth = 2 * gb / (np.median(values) / 1e3)
        report.figures.append(
            Figure(
                b,
                f"{SHAPE[0]:,} x {SHAPE[1]:,} float32: {op}",
                "ms",
                values,
                f"{bandwidth:.0f} GB/s moved",
            )
        )
    for op in ("softmax", "log_softmax", "cross_entropy (per row)"):
        report.ratios.append(
            ratio(
                b,
                f"{op}: fraction of copy bandwidth",
                ms["device-to-device copy"],
                ms[op],
                ">= 0.7" if op == "softmax" else "",
                (lambda v: v >= 0.7) if op == "softmax" else None,
            )
        )

    host = np.random.default_rng(0).standard_normal(APP_SHAPE, dtype=np.float32) * 3.0
    host.setflags(write=False)
    host_targets = np.random.default_rng(1).integers(0, APP_SHAPE[1], APP_SHAPE[0])
    temperatures = itertools.cycle(np.geomspace(0.3, 3.0, 37))
    app = interleaved(
        {
            "app batch_statistics (host batch -> cuda)": lambda: batch_statistics(
                BatchRequest(host, next(temperatures), 1, "float32", "cuda", host_targets)
            )
        },
        rounds=max(3, rounds // 2),
        clock=clock,
    )
    report.figures.append(
        Figure(
            b,
            f"{APP_SHAPE[0]:,} x {APP_SHAPE[1]:,} float32: app batch_statistics on cuda",
            "ms",
            scaled(app["app batch_statistics (host batch -> cuda)"], 1e3),
        )
    )
    report.details["cuda"] = {"device": name, "shape": list(SHAPE)}
