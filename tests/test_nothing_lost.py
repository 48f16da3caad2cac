"""Nothing is lost when the app is killed (SIGKILL) at a random moment.

Three kinds of kill, each in a real process:

- **editing, autosave, session save, window export**: the real window
  (``python -m tests.process_helpers``: ``launch_window`` with a timer that edits
  the session every 15 ms, autosaves 40 ms after a change, saves a session file
  every 4th edit and exports a 2000×1250 PNG every 25th) is killed at a seeded
  random moment after every target has been written once. The autosave, the
  session file and the PNG must each be complete (the session files hold the
  state of exactly one edit step; the PNG's chunks and CRCs are whole and it ends
  with IEND), and the next start (a window in this process, as the app builds
  it) must offer the autosave and restore exactly what it holds.
- **``softmax-lab chart ... -o big.png``**, killed at seeded random times over
  its life, with and without an older file at the target: the target is absent,
  the old file untouched, or the complete new PNG.
- **the atomic write itself** (``write_bytes_atomic``, which every export,
  session save and autosave uses), killed while its temporary file is being
  written: deterministic, so the mid-write case is always tested.

Nothing can clean up after SIGKILL: a write that was cut short leaves its
temporary file behind. What is checked is that such a file is hidden, named
``.<target>.<12 hex digits>.tmp`` beside the target, never at the target's own
path, and at most one per target.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.process_helpers import (
    EXPORT_NAME,
    READY,
    ROOT,
    SCRIPT,
    SESSION_NAME,
    app_env,
    leftovers,
    phase_at_kill,
    png_problem,
    state_folder,
    step_of,
    temp_name_pattern,
    wait_for_child,
)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")

READY_TIMEOUT_S = 90
FAST_APP_KILLS = 2
SLOW_APP_KILLS = 24
FAST_CHART_KILLS = 2
SLOW_CHART_KILLS = 30
PARALLEL = 2  # this machine has 2 cores
SEED = 20261122


def _summary(title: str, lines: list[str]) -> None:
    # Shown with -rA / -s: the figures docs/reliability.md records.
    print(f"\n{title}\n  " + "\n  ".join(lines))


# -- editing, autosave, session save, export ---------------------------------------------------


class _Run:
    """One driven app in its own home folder."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.work = home / "work"
        self.work.mkdir(parents=True)
        self.journal = home / "journal"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.process_helpers", str(self.journal), str(self.work)],
            env=app_env(home),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"the driven app never got ready; stderr:\n{self.stderr()}")
            if select.select([fd], [], [], min(left, 0.5))[0]:
                chunk = os.read(fd, 1)
                if not chunk:
                    continue
                line += chunk
        assert line.decode().strip() == READY

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _kill_and_check(run: _Run) -> dict[str, Any]:
    """SIGKILL ``run`` now; check every target on disk. Returns what was found."""
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait(timeout=30)
    stderr = run.stderr()
    run.stop()
    assert run.proc.returncode == -signal.SIGKILL, stderr
    journal = run.journal.read_text()
    assert "failed session save" not in journal, journal[-2000:]
    phase = phase_at_kill(journal)
    pid = run.proc.pid

    from softmax_lab.app import autosave, persistence

    state = state_folder(run.home)
    saved = autosave.autosave_path(state, pid)
    marker = autosave.marker_path(state, pid)
    assert marker.is_file(), "the killed run's marker is gone"
    # Complete, readable, and the state of one single edit step.
    autosave_step = step_of(persistence.load_session(saved))
    session_step = step_of(persistence.load_session(run.work / SESSION_NAME))
    problem = png_problem((run.work / EXPORT_NAME).read_bytes())
    assert problem is None, f"{EXPORT_NAME} after a kill in phase {phase!r}: {problem}"
    last_edit = max(
        int(line.split()[1]) for line in journal.splitlines() if line.startswith("edit ")
    )
    assert autosave_step <= last_edit and session_step <= last_edit

    in_state = leftovers(state, {saved.name, marker.name, "softmax-lab.log"}, (saved.name,))
    in_work = leftovers(run.work, {SESSION_NAME, EXPORT_NAME}, (SESSION_NAME, EXPORT_NAME))
    assert in_state["unexpected"] == [] and in_work["unexpected"] == [], (in_state, in_work)
    temps = {
        name: in_state.get(name) or in_work.get(name) or []
        for name in (saved.name, SESSION_NAME, EXPORT_NAME)
    }
    for target, names in temps.items():
        assert len(names) <= 1, f"more than one temporary file for {target}: {names}"
    return {
        "phase": phase,
        "pid": pid,
        "autosave_step": autosave_step,
        "last_edit": last_edit,
        "saved": persistence.load_session(saved),
        "temps": sum(len(n) for n in temps.values()),
    }


def _next_start_offers(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch, home: Path, found: dict[str, Any]
) -> None:
    """Start a window as the app does, over the killed run's state folder: it must offer
    the autosave once and restore exactly what it holds."""
    from softmax_lab.app import autosave
    from softmax_lab.widgets import session_dialogs
    from tests.app.session_helpers import bits, build_window, quit_window
    from tests.app.test_autosave import Asked

    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    asked = Asked(True)
    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", asked)
    window = build_window(qtbot)
    saver = autosave.start_up(window)
    try:
        assert len(asked.calls) == 1, asked.calls
        assert f"T = {found['saved']['temperature']}" in asked.calls[0][1]
        from softmax_lab.app import persistence

        expected = persistence.parse_document(found["saved"]).fields
        assert bits(window.session.logits).tolist() == bits(expected["logits"]).tolist()
        assert window.session.temperature == expected["temperature"]
        assert not autosave.marker_path(state_folder(home), found["pid"]).exists()
        # ... and the temporary file of an autosave write the kill cut short.
        assert autosave.leftover_temporaries(state_folder(home), found["pid"]) == []
    finally:
        autosave.finish(window, saver)
        quit_window(window)


def _app_kills(tmp_path: Path, kills: int, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(SEED)
    phases: Counter[str] = Counter()
    temps = 0
    steps: list[str] = []
    started = time.monotonic()
    done = 0
    while done < kills:
        batch = [_Run(tmp_path / f"run{done + i}") for i in range(min(PARALLEL, kills - done))]
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            for run in batch:
                run.wait_ready(deadline)
            # Each at its own random moment, 0 to 1.5 s after every target was written.
            delays = sorted((float(rng.uniform(0.0, 1.5)), i) for i in range(len(batch)))
            t0 = time.monotonic()
            found = []
            for delay, i in delays:
                time.sleep(max(0.0, t0 + delay - time.monotonic()))
                found.append((batch[i], _kill_and_check(batch[i])))
        finally:
            for run in batch:
                run.stop()
        for run, result in found:
            _next_start_offers(qtbot, monkeypatch, run.home, result)
            phases[result["phase"]] += 1
            temps += result["temps"]
            steps.append(f"{result['autosave_step']}/{result['last_edit']}")
        done += len(batch)
    _summary(
        f"{kills} kills of the edited app in {time.monotonic() - started:.0f} s",
        [
            "phases: " + ", ".join(f"{k}: {v}" for k, v in sorted(phases.items())),
            f"temporary files left by cut writes: {temps}",
            "autosaved step / last edit step: " + " ".join(steps),
        ],
    )


def test_killed_while_editing_the_autosave_and_saved_files_are_whole(tmp_path, qtbot, monkeypatch):
    _app_kills(tmp_path, FAST_APP_KILLS, qtbot, monkeypatch)


@pytest.mark.slow
def test_killed_while_editing_many_times(tmp_path, qtbot, monkeypatch):
    _app_kills(tmp_path, SLOW_APP_KILLS, qtbot, monkeypatch)


# -- softmax-lab chart -o -------------------------------------------------------------------------


def _tiny_png() -> bytes:
    """A valid 1×1 PNG, built by hand: the 'old file' a kill must leave untouched."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return len(payload).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _chart_kills(tmp_path: Path, kills: int) -> None:
    if not SCRIPT.exists():
        pytest.fail(f"console script not installed next to the interpreter: {SCRIPT}")
    data = tmp_path / "big.npy"
    np.save(data, np.random.default_rng(1).normal(0.0, 3.0, (200, 2_000)).astype(np.float32))
    old = _tiny_png()
    assert png_problem(old) is None
    rng = np.random.default_rng(SEED + 1)
    outcomes: Counter[str] = Counter()
    temps = 0
    started = time.monotonic()
    done = 0
    while done < kills:
        jobs = []
        for i in range(done, min(done + PARALLEL, kills)):
            folder = tmp_path / f"kill{i}"
            folder.mkdir()
            out = folder / "big.png"
            had_old = i % 2 == 1
            if had_old:
                out.write_bytes(old)
            proc = subprocess.Popen(
                [str(SCRIPT), "chart", str(data), "--view", "heatmap", "--width", "6000",
                 "--height", "4000", "-o", str(out)],
                env=app_env(folder), cwd=folder, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # The command takes 4-7 s here (start-up, torch, render, write): kill
            # anywhere in that span, and now and then after it has finished.
            jobs.append((proc, out, had_old, float(rng.uniform(0.3, 8.0))))
        t0 = time.monotonic()
        try:
            for proc, out, had_old, delay in sorted(jobs, key=lambda job: job[3]):
                time.sleep(max(0.0, t0 + delay - time.monotonic()))
                finished = proc.poll() is not None
                if not finished:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                assert proc.returncode == (0 if finished else -signal.SIGKILL)
                found = leftovers(
                    out.parent, {out.name, "state", "config", "xdg-config"}, (out.name,)
                )
                assert found["unexpected"] == [], found
                assert len(found[out.name]) <= 1, found
                temps += len(found[out.name])
                if not out.exists():
                    assert not had_old, "the old file was removed"
                    outcome = "absent"
                else:
                    content = out.read_bytes()
                    problem = png_problem(content)
                    assert problem is None, f"{out} after a kill at {delay:.2f} s: {problem}"
                    outcome = "old file intact" if content == old else "complete new PNG"
                if finished:
                    outcome += " (had finished)"
                outcomes[outcome] += 1
        finally:
            for proc, *_ in jobs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done += len(jobs)
    _summary(
        f"{kills} kills of softmax-lab chart in {time.monotonic() - started:.0f} s",
        [
            ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
            f"temporary files left: {temps}",
        ],
    )


def test_killed_chart_export_leaves_no_half_file(tmp_path):
    _chart_kills(tmp_path, FAST_CHART_KILLS)


@pytest.mark.slow
def test_killed_chart_export_many_times(tmp_path):
    _chart_kills(tmp_path, SLOW_CHART_KILLS)


# -- the atomic write, cut in the middle ----------------------------------------------------------

_WRITER = """
import sys
from softmax_lab.compute.tables import write_bytes_atomic
write_bytes_atomic(sys.argv[1], b"n" * (256 * 2**20))
"""


def test_a_write_killed_in_the_middle_leaves_the_old_file(tmp_path):
    target = tmp_path / "slides.softmaxlab.json"
    target.write_bytes(b'{"old": true}')
    pattern = temp_name_pattern(target.name)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        # Kill as soon as the temporary file holds data: the write is under way.
        wait_for_child(
            lambda: [p for p in tmp_path.iterdir() if p.name != target.name and p.stat().st_size > 0],
            proc,
            "the temporary file held data",
            interval_s=0.002,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b'{"old": true}'
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != target.name)
    assert len(names) == 1 and pattern.fullmatch(names[0]), names
    assert names[0].startswith(".")
