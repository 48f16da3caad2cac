"""Start-up: process start -> first painted window, against a bare PySide6 window.

The app's first painted window is its first frame (widgets/first_frame.py: the
example's bars, before numpy, pyqtgraph and torch); the time until the full window
is painted is reported beside it. Each sample is a fresh ``python startup_driver.py app|bare`` (offscreen Qt, a
private XDG_STATE_HOME so the app's log goes to a temporary folder); the two
modes alternate round by round. Then one ``python -X importtime`` run of the app
driver shows where the time goes (cumulative import time of the top-level
packages on the path to the first frame).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import Figure, Report, ratio, scaled

DRIVER = Path(__file__).with_name("startup_driver.py")
TIMEOUT_S = 120


def _launch(mode: str, state_dir: str, extra: tuple[str, ...] = ()) -> tuple[dict, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=state_dir)
    env["SOFTMAX_LAB_BENCH_T0"] = repr(time.time())
    done = subprocess.run(
        [sys.executable, *extra, str(DRIVER), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"start-up driver ({mode}) printed nothing:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1]), done.stderr


def _import_profile(stderr: str, top: int = 12) -> list[tuple[str, float]]:
    """Top-level imports by cumulative time (ms) from ``-X importtime`` output.

    Its lines read ``import time: self | cumulative | name``, the name indented
    two spaces per level of nesting; top-level imports are not indented.
    """
    totals: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        name = parts[2][1:]  # one space follows the bar
        if not name.startswith(" "):
            totals.append((name, float(parts[1]) / 1e3))
    totals.sort(key=lambda item: -item[1])
    return totals[:top]


def run(report: Report, rounds: int) -> None:
    b = "start-up"
    samples: dict[str, list[float]] = {"app": [], "bare": [], "full": []}
    interpreter: list[float] = []
    heavy_at_first_frame: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="softmax-lab-bench-") as state:
        _launch("app", state)  # warm the file cache: every sample then starts alike
        _launch("bare", state)
        for _ in range(rounds):
            for mode in ("bare", "app"):
                result, _ = _launch(mode, state)
                samples[mode].append(result["first_paint_s"])
                interpreter.append(result["interpreter_started_s"])
                if mode == "app":
                    samples["full"].append(result["window_painted_s"])
                    heavy_at_first_frame |= {
                        m for m in ("numpy", "pyqtgraph", "torch") if result[f"first_{m}"]
                    }
        _, stderr = _launch("app", state, ("-X", "importtime"))
    ms = {k: scaled(v, 1e3) for k, v in samples.items()}
    loaded = ", ".join(sorted(heavy_at_first_frame)) or "none of numpy, pyqtgraph, torch"
    report.figures.append(Figure(b, "bare PySide6 QMainWindow: first paint", "ms", ms["bare"]))
    report.figures.append(
        Figure(
            b,
            "Softmax Lab (launch_window): first frame painted (the example)",
            "ms",
            ms["app"],
            f"loaded at the first frame: {loaded}",
        )
    )
    report.figures.append(
        Figure(
            b,
            "Softmax Lab: full window painted, example computed (torch loaded)",
            "ms",
            ms["full"],
            "the first frame stays until then",
        )
    )
    report.figures.append(Figure(b, "python interpreter up (both)", "ms", scaled(interpreter, 1e3)))
    report.ratios.append(
        ratio(b, "Softmax Lab first frame / bare PySide6", ms["app"], ms["bare"], "<= 1.5", lambda v: v <= 1.5)
    )
    report.ratios.append(
        ratio(b, "Softmax Lab full window / bare PySide6 (no target)", ms["full"], ms["bare"])
    )
    profile = _import_profile(stderr)
    report.details["start-up"] = {
        "heavy_modules_at_first_frame": sorted(heavy_at_first_frame),
        "importtime_top_level_ms": profile,
    }
    report.notes.append(
        "start-up: cumulative import time on the app's path (python -X importtime, one run): "
        + ", ".join(f"{name} {t:.0f} ms" for name, t in profile[:6])
    )
