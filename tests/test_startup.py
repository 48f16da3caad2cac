"""The first frame of the real window never waits for torch (issue 5's start-up rule).

Torch takes seconds to import here; the window must paint before it is imported. The
benchmark's start-up driver (tests/benchmarks/startup_driver.py) runs ``launch_window()``
in a fresh process and reports, at the window's first Paint event, whether torch is in
``sys.modules``. How long start-up takes is a benchmark (``make bench``), not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

DRIVER = Path(__file__).parent / "benchmarks" / "startup_driver.py"


def test_the_first_frame_is_painted_before_torch_is_imported(tmp_path: Path) -> None:
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
    assert report["torch_imported"] is False, "torch was imported before the first paint"
