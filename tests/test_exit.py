"""The installed ``softmax-lab`` window starts and exits cleanly, in a real process.

A crash at interpreter exit (``Fatal Python error: none_dealloc``, exit 134)
was seen with some PySide6/pyqtgraph combinations after charts were updated;
only a real subprocess shows it. Each run opens the window offscreen, closes
it with ``--quit-after`` and must exit with status 0, print nothing on stderr
except the offscreen plugin's ``propagateSizeHints`` notice (which every
top-level window triggers on that plugin and which says nothing about the
app), and leave its state folder as a clean exit does: the last session
written, no running marker, no autosave, no temporary file.

The runs cycle through what a person starts (10 in the fast suite, 100 with
``--run-slow``), two at a time (two cores):

- ``softmax-lab --quit-after 1500``: the built-in example;
- ``softmax-lab --lecture builtin --present --quit-after 1500``: a lecture in
  presenter mode;
- ``softmax-lab logits.npy --quit-after 3000``: a 500×1000 batch, loaded and
  analysed on the worker thread while the window is up;
- the same, with ``softmax-lab chart logits.npy --view heatmap -o export.png``
  running alongside (the window has no command-line export; this is the export
  a person scripts): it too must exit 0 with a clean stderr, and leave one
  complete PNG and nothing else.

Each run has a home folder of its own (state, settings), so that a run is what
its variant says and not the last session of the run before.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.process_helpers import (
    SCRIPT,
    app_env,
    png_problem,
    state_folder,
    unexpected_stderr,
)

TIMEOUT_S = 90
FAST_RUNS = 10
SLOW_RUNS = 100
PARALLEL = 2
VARIANTS = ("example", "lecture, presenter", "file", "file + chart export")
LAST_SESSION = "last-session.softmaxlab.json"


def _start(args: list[str], home: Path) -> subprocess.Popen[str]:
    if not SCRIPT.exists():
        pytest.fail(f"console script not installed next to the interpreter: {SCRIPT}")
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(SCRIPT), *args],
        env=app_env(home),
        cwd=home,
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


def _window_args(variant: str, npy: Path) -> list[str]:
    if variant == "example":
        return ["--quit-after", "1500"]
    if variant == "lecture, presenter":
        return ["--lecture", "builtin", "--present", "--quit-after", "1500"]
    return [str(npy), "--quit-after", "3000"]


def _clean_exit_left(home: Path) -> list[str]:
    """What a clean exit must not leave in the state folder (and the last session if missing)."""
    state = state_folder(home)
    names = sorted(p.name for p in state.iterdir()) if state.is_dir() else []
    wrong = [n for n in names if n.startswith(("running-", "autosave-", ".")) or n.endswith(".tmp")]
    if LAST_SESSION not in names:
        wrong.append(f"(no {LAST_SESSION}: the final state was not kept)")
    return wrong


def _check_runs(runs: int, tmp_path: Path) -> None:
    """Start ``runs`` windows cycling through :data:`VARIANTS`, ``PARALLEL`` at a time."""
    npy = tmp_path / "logits.npy"
    # Big enough that loading and the batch statistics run on the worker thread
    # while the window is up, small enough to finish well inside --quit-after.
    np.save(npy, np.random.default_rng(0).normal(0.0, 3.0, (500, 1_000)).astype(np.float32))
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    stderr_seen: Counter[str] = Counter()
    per_variant: Counter[str] = Counter()
    exports = 0
    started = time.monotonic()
    done = 0
    while done < runs:
        deadline = time.monotonic() + TIMEOUT_S
        jobs: list[tuple[str, str, Path, subprocess.Popen[str]]] = []
        try:
            for i in range(done, min(done + PARALLEL, runs)):
                variant = VARIANTS[i % len(VARIANTS)]
                home = tmp_path / f"run{i:03d}"
                jobs.append(
                    (
                        f"run {i + 1} ({variant})",
                        "window",
                        home,
                        _start(_window_args(variant, npy), home),
                    )
                )
                if variant == "file + chart export":
                    export = [
                        "chart",
                        str(npy),
                        "--view",
                        "heatmap",
                        "-o",
                        str(home / "export" / "export.png"),
                    ]
                    (home / "export").mkdir(parents=True)
                    jobs.append(
                        (f"run {i + 1} (chart export)", "chart", home, _start(export, home))
                    )
            for label, kind, home, process in jobs:
                status, stderr = _finish(process, deadline)
                statuses[status] += 1
                for line in stderr.splitlines():
                    if line.strip():
                        stderr_seen[line.strip()] += 1
                extra = unexpected_stderr(stderr)
                problems = [f"exit status {status}"] if status != 0 else []
                problems += [f"stderr: {line}" for line in extra]
                if kind == "window" and status == 0:
                    problems += [f"state folder: {name}" for name in _clean_exit_left(home)]
                if kind == "chart" and status == 0:
                    names = sorted(p.name for p in (home / "export").iterdir())
                    if names != ["export.png"]:
                        problems.append(f"export folder holds {names}")
                    elif problem := png_problem((home / "export" / "export.png").read_bytes()):
                        problems.append(f"export.png: {problem}")
                    else:
                        exports += 1
                if kind == "window":
                    per_variant[label.split("(", 1)[1].rstrip(")")] += 1
                if problems:
                    failures.append(f"{label}: " + "; ".join(problems))
        finally:
            for *_, process in jobs:  # a failed run must not leave its siblings running
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        done += min(PARALLEL, runs - done)
    # Shown with -rA / -s: the figures docs/reliability.md records.
    print(
        f"\n{runs} window runs in {time.monotonic() - started:.0f} s: "
        + ", ".join(f"{k}: {v}" for k, v in per_variant.items())
        + f"; {exports} chart exports; exit statuses {dict(statuses)}; stderr lines {dict(stderr_seen)}"
    )
    assert not failures, "\n".join(failures)


def test_window_exits_cleanly(tmp_path: Path) -> None:
    _check_runs(FAST_RUNS, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 100 app runs: 10 to 20 minutes on a shared 2-core machine
def test_window_exits_cleanly_many_times(tmp_path: Path) -> None:
    _check_runs(SLOW_RUNS, tmp_path)


def test_stderr_filter_keeps_everything_else() -> None:
    # The filter drops exactly the offscreen notice, nothing that merely resembles it.
    stderr = (
        "This plugin does not support propagateSizeHints()\n"
        "Fatal Python error: none_dealloc\n"
        "This plugin does not support raise()\n"
        "  This plugin does not support propagateSizeHints()  \n"
    )
    assert unexpected_stderr(stderr) == [
        "Fatal Python error: none_dealloc",
        "This plugin does not support raise()",
    ]


def test_clean_exit_check_sees_what_a_killed_run_leaves(tmp_path: Path) -> None:
    # The state-folder check must be able to fail: a marker, an autosave, a temporary.
    state = state_folder(tmp_path)
    state.mkdir(parents=True)
    assert _clean_exit_left(tmp_path) == [f"(no {LAST_SESSION}: the final state was not kept)"]
    for name in (LAST_SESSION, "running-12", "autosave-12.softmaxlab.json", ".x.0123456789ab.tmp"):
        (state / name).write_text("")
    assert _clean_exit_left(tmp_path) == [
        ".x.0123456789ab.tmp",
        "autosave-12.softmaxlab.json",
        "running-12",
    ]
