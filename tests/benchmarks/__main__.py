"""``python -m tests.benchmarks`` (``make bench``): run the suite, print one table, write JSON.

Options: ``--only batch,startup`` runs some benchmarks; ``--quick`` runs fewer
rounds (a smoke test of the suite itself); ``--json PATH`` changes where the
results go (default: ``bench-results.json`` at the repository root).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

# Before anything imports Qt: the window benchmarks run offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.benchmarks import (
    batch_stats,
    cuda,
    interaction,
    loading,
    machine,
    startup,
    vector_analysis,
)
from tests.benchmarks.common import Report

ROOT = Path(__file__).resolve().parents[2]
# name -> (module, rounds, quick rounds)
BENCHMARKS = {
    "batch": (batch_stats, 15, 3),
    "analysis": (vector_analysis, 15, 3),
    # 60: the p95 of 30 samples is their second-largest, one slow spell of the machine.
    "interaction": (interaction, 60, 4),
    "startup": (startup, 5, 1),
    "loading": (loading, 3, 1),
    "cuda": (cuda, 10, 2),
}


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for row in rows:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def render(report: Report, info: dict) -> str:
    figures = [
        [
            f.benchmark,
            f.case,
            _number(f.median),
            _number(f.min),
            _number(f.max),
            _number(f.p95),
            f.unit,
            f.note,
        ]
        for f in report.figures
    ]
    ratios = [
        [
            r.benchmark,
            r.name,
            _number(r.value),
            f"{_number(r.low)}..{_number(r.high)}",
            r.target or "",
            {True: "met", False: "NOT met", None: ""}[r.met],
        ]
        for r in report.ratios
    ]
    head = (
        f"Softmax Lab benchmarks, {info['date']}: {info['cpu']}, {info['cores']} cores, "
        f"{info['memory_gib']:.0f} GiB; torch {info['torch']} ({info['torch_threads']} threads), "
        f"numpy {info['numpy']}, PySide6 {info['PySide6']}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in info['load_average_at_start'])}"
    )
    parts = [
        head,
        "",
        _table(figures, ["benchmark", "case", "median", "min", "max", "p95", "unit", "note"]),
        "",
        _table(
            ratios, ["benchmark", "same-run comparison", "ratio", "per-round range", "target", ""]
        ),
    ]
    if report.notes:
        parts += ["", *report.notes]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="few rounds: checks the suite runs")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results.json")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    info = machine.describe()
    report = Report()
    failed = []
    for name in chosen:
        module, rounds, quick = BENCHMARKS[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module.run(report, quick if args.quick else rounds)
        except Exception:
            failed.append(name)
            report.notes.append(f"{name}: FAILED\n{traceback.format_exc()}")
        report.details.setdefault("durations_s", {})[name] = time.perf_counter() - t0
    info["load_average_at_end"] = os.getloadavg()
    print(render(report, info))
    results = {
        "machine": info,
        "quick": args.quick,
        "figures": [f.as_dict() for f in report.figures],
        "ratios": [r.as_dict() for r in report.ratios],
        "notes": report.notes,
        "details": report.details,
    }
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"\nresults written to {args.json}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
