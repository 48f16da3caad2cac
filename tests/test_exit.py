"""The installed ``softmax-lab`` window starts and exits cleanly, in a real process.

A crash at interpreter exit (``Fatal Python error: none_dealloc``, exit 134)
was seen with some PySide6/pyqtgraph combinations after charts were updated;
only a real subprocess shows it. Each run opens the window offscreen, closes
it with ``--quit-after`` and must exit with status 0 and print nothing on
stderr except the offscreen plugin's ``propagateSizeHints`` notice, which
every top-level window triggers on that plugin and which says nothing about
the app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).parent / "softmax-lab"
TIMEOUT_S = 60
FAST_RUNS = 3
SLOW_RUNS = 20
ACCEPTED_STDERR = ("This plugin does not support propagateSizeHints()",)


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    # The app writes its log under XDG_STATE_HOME: keep it out of the real home.
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    if not SCRIPT.exists():
        pytest.fail(f"console script not installed next to the interpreter: {SCRIPT}")
    return subprocess.Popen(
        [str(SCRIPT), *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], deadline: float) -> tuple[int, str]:
    """Wait until ``deadline`` (monotonic); a hang is killed and fails the test."""
    try:
        _, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(
            f"softmax-lab {process.args[1:]} did not exit within {TIMEOUT_S} s; stderr:\n{stderr}"
        )
    return process.returncode, stderr


def _unexpected(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines() if line.strip() and line.strip() not in ACCEPTED_STDERR
    ]


def _check_runs(args: list[str], runs: int, tmp_path: Path, parallel: int) -> None:
    """Run ``softmax-lab ARGS`` ``runs`` times, ``parallel`` at a time; each must exit cleanly."""
    failures: list[str] = []
    done = 0
    while done < runs:
        batch = min(parallel, runs - done)
        deadline = time.monotonic() + TIMEOUT_S
        processes: list[subprocess.Popen[str]] = []
        try:
            for _ in range(batch):
                processes.append(_start(args, tmp_path))
            for i, process in enumerate(processes):
                status, stderr = _finish(process, deadline)
                extra = _unexpected(stderr)
                if status != 0 or extra:
                    failures.append(
                        f"run {done + i + 1}: exit status {status}, stderr:\n" + "\n".join(extra)
                    )
        finally:
            for process in processes:  # a failed run must not leave its siblings running
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        done += batch
    assert not failures, f"softmax-lab {' '.join(args)}:\n" + "\n\n".join(failures)


@pytest.fixture
def npy_file(tmp_path: Path) -> Path:
    path = tmp_path / "logits.npy"
    rng = np.random.default_rng(0)
    # Big enough that loading and the batch statistics run on the worker thread
    # while the window is up, small enough to finish well inside --quit-after.
    np.save(path, rng.normal(0.0, 3.0, (500, 1_000)).astype(np.float32))
    return path


def test_window_exits_cleanly(tmp_path: Path) -> None:
    # Side by side: three independent processes in the time of about two.
    _check_runs(["--quit-after", "1500"], FAST_RUNS, tmp_path, parallel=FAST_RUNS)


def test_window_with_a_file_exits_cleanly(tmp_path: Path, npy_file: Path) -> None:
    _check_runs([str(npy_file), "--quit-after", "3000"], 1, tmp_path, parallel=1)


@pytest.mark.slow
def test_window_exits_cleanly_many_times(tmp_path: Path, npy_file: Path) -> None:
    _check_runs(["--quit-after", "1500"], SLOW_RUNS, tmp_path, parallel=2)
    _check_runs([str(npy_file), "--quit-after", "3000"], SLOW_RUNS // 2, tmp_path, parallel=2)


def test_stderr_filter_keeps_everything_else() -> None:
    # The filter drops exactly the offscreen notice, nothing that merely resembles it.
    stderr = (
        "This plugin does not support propagateSizeHints()\n"
        "Fatal Python error: none_dealloc\n"
        "This plugin does not support raise()\n"
        "  This plugin does not support propagateSizeHints()  \n"
    )
    assert _unexpected(stderr) == [
        "Fatal Python error: none_dealloc",
        "This plugin does not support raise()",
    ]
