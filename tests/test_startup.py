"""The first frame never waits for heavy imports (issue 5's start-up rule).

Torch takes seconds to import here, pyqtgraph and numpy about half a second
together: the first frame (widgets/first_frame.py) must paint before any of them
is imported; the full window takes its place once the example is computed. The benchmark's start-up driver
(tests/benchmarks/startup_driver.py) runs ``launch_window()`` in a fresh process
and reports which of them were in ``sys.modules`` when each was painted. How long
start-up takes is a benchmark (``make bench``), not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

DRIVER = Path(__file__).parent / "benchmarks" / "startup_driver.py"


def test_the_first_frame_is_painted_before_numpy_pyqtgraph_and_torch(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SOFTMAX_LAB_BENCH_T0": repr(time.time()),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["mode"] == "app"
    loaded_first = [m for m in ("numpy", "pyqtgraph", "torch") if report[f"first_{m}"]]
    assert loaded_first == [], f"imported before the first frame was painted: {loaded_first}"
    # Then the full window, shown once the example is computed (numpy, pyqtgraph, torch).
    assert report["window_painted_s"] > report["first_paint_s"]
    assert report["window_numpy"] and report["window_pyqtgraph"] and report["window_torch"]
