"""Loading: a 1 GiB float32 batch as ``.npy`` and ``.safetensors`` -> first heatmap shown.

The files are written to a temporary folder at run time (about 1 GiB each,
deleted afterwards; the page cache is warm, as right after a download or a
previous look). Each measurement is a fresh process
(:mod:`tests.benchmarks.loading_driver`), so VmHWM (peak RSS) belongs to that
one load; the formats alternate round by round. Peak RSS is reported whole and
as the growth during the load (peak minus the RSS just before opening), both
against the file size. Pages of a memory-mapped file that were read count in RSS.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.benchmarks.common import Figure, Report, ratio, scaled

CLASSES = 50_257
ROWS = -(-(2**30) // (CLASSES * 4))  # just over 1 GiB of float32
TIMEOUT_S = 600
ROOT = Path(__file__).resolve().parents[2]


def _write_npy(path: Path, rng: np.random.Generator) -> None:
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(ROWS, CLASSES))
    step = 256
    for r0 in range(0, ROWS, step):
        block = rng.standard_normal((min(step, ROWS - r0), CLASSES), dtype=np.float32)
        block *= 3.0
        array[r0 : r0 + block.shape[0]] = block
    array.flush()
    del array


def _write_safetensors(path: Path, npy: Path) -> None:
    """The same values as a one-tensor safetensors file, streamed (never all in memory)."""
    source = np.load(npy, mmap_mode="r")
    header = json.dumps(
        {"logits": {"dtype": "F32", "shape": [ROWS, CLASSES], "data_offsets": [0, source.nbytes]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        step = 256
        for r0 in range(0, ROWS, step):
            out.write(np.ascontiguousarray(source[r0 : r0 + step]).tobytes())
    del source


def _measure(path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.loading_driver", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"loading driver failed on {path.name}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def run(report: Report, rounds: int) -> None:
    b = "loading"
    results: dict[str, list[dict]] = {".npy": [], ".safetensors": []}
    with tempfile.TemporaryDirectory(prefix="softmax-lab-bench-") as folder:
        files = {
            ".npy": Path(folder) / "logits.npy",
            ".safetensors": Path(folder) / "logits.safetensors",
        }
        _write_npy(files[".npy"], np.random.default_rng(0))
        _write_safetensors(files[".safetensors"], files[".npy"])
        for _ in range(rounds):
            for suffix, path in files.items():
                results[suffix].append(_measure(path))
    size = ROWS * CLASSES * 4
    for suffix, runs in results.items():
        case = f"{ROWS:,} x {CLASSES:,} float32 {suffix} ({size / 2**30:.2f} GiB)"
        first = scaled([r["first_view_s"] for r in runs], 1e3)
        rows = runs[0]["first_view_rows"]
        report.figures.append(
            Figure(b, f"{case}: first heatmap shown", "ms", first, f"its first {rows:,} rows")
        )
        full = scaled([r["full_view_s"] for r in runs], 1e3)
        report.figures.append(Figure(b, f"{case}: every row shown", "ms", full))
        for part in ("load_tensor_s", "batch_statistics_s"):
            report.figures.append(
                Figure(
                    b, f"{case}: of which {part[:-2]}", "ms", scaled([r[part] for r in runs], 1e3)
                )
            )
        peak = [r["vmhwm_kib"] * 1024 / size for r in runs]
        growth = [(r["vmhwm_kib"] - r["vmrss_before_kib"]) * 1024 / size for r in runs]
        report.figures.append(
            Figure(
                b,
                f"{case}: peak RSS / file size",
                "x",
                peak,
                f"memory-mapped: {all(r['memory_mapped'] for r in runs)}",
            )
        )
        report.figures.append(
            Figure(
                b,
                f"{case}: RSS growth during the load / file size",
                "x",
                growth,
                f"RSS before opening: {runs[0]['vmrss_before_kib'] / 1024:.0f} MiB",
            )
        )
        anon = [(r["rss_anon_peak_kib"] - r["rss_anon_before_kib"]) * 1024 / size for r in runs]
        report.figures.append(
            Figure(
                b,
                f"{case}: anonymous RSS growth (peak) / file size",
                "x",
                anon,
                "allocated memory, without the mapped file's page cache",
            )
        )
        report.ratios.append(
            ratio(
                b,
                f"{suffix}: first view (s) / 1 s",
                scaled(first, 1e-3),
                [1.0] * len(first),
                "< 1",
                lambda v: v < 1.0,
            )
        )
        report.ratios.append(
            ratio(
                b,
                f"{suffix}: peak RSS / file size",
                peak,
                [1.0] * len(peak),
                "<= 1.3",
                lambda v: v <= 1.3,
            )
        )
    report.details["loading"] = {
        "rows": ROWS,
        "classes": CLASSES,
        "file_bytes": size,
        "runs": results,
    }
