"""Autosave and start-up: changes reach the disk, a killed run's state is offered at the
next start, a clean exit is restored silently, FILE on the command line wins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softmax_lab.app import autosave, gui, persistence
from softmax_lab.app.main_window import TAB_LOSS
from softmax_lab.widgets import session_dialogs
from tests.app.session_helpers import (
    WAIT_MS,
    bits,
    build_window,
    chart_values,
    intent_state,
    message_text,
    quit_window,
    softmax_ref,
)
from tests.process_helpers import wait_for_child

ROOT = Path(__file__).resolve().parents[2]
FAST_MS = 50


def dead_pid() -> int:
    """The id of a process that has exited (a killed run's)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not autosave.process_alive(proc.pid)
    return proc.pid


def pretend_killed(state: Path, saver: autosave.Autosave) -> int:
    """Make this run's files look like those of a run killed a moment ago."""
    pid = dead_pid()
    saver.timer.stop()
    saver.marker.rename(autosave.marker_path(state, pid))
    saver.path.rename(autosave.autosave_path(state, pid))
    saver._running = False  # this object is done; the files now belong to the dead run
    return pid


class Asked:
    """Stands in for the restore question: records it, answers ``answer``."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def __call__(self, parent: Any, when: str, summary: str) -> bool:
        self.calls.append((when, summary))
        return self.answer


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_a_change_is_autosaved_atomically(window, qtbot, state):
    saver = autosave.start_up(window, directory=state, delay_ms=FAST_MS)
    assert saver.marker.is_file()
    assert saver.marker.read_text().strip() == str(os.getpid())
    assert not saver.path.exists()  # nothing changed yet

    window.session.update(temperature=0.42, dtype="float64")
    qtbot.waitUntil(saver.path.is_file, timeout=WAIT_MS)
    doc = persistence.load_session(saver.path)
    assert doc["temperature"] == 0.42 and doc["dtype"] == "float64"
    # Only the autosave and the marker: no temporary files left behind.
    assert sorted(p.name for p in state.iterdir()) == sorted([saver.marker.name, saver.path.name])

    # Switching panels is state too.
    window.tabs.setCurrentIndex(TAB_LOSS)
    qtbot.waitUntil(
        lambda: persistence.load_session(saver.path)["panel"] == TAB_LOSS, timeout=WAIT_MS
    )
    autosave.finish(window, saver)


def test_after_a_kill_the_next_start_offers_the_autosave(
    window, qtbot, state, tmp_path, monkeypatch
):
    batch_path = tmp_path / "rows.npy"
    data = np.arange(12.0).reshape(3, 4)
    np.save(batch_path, data)
    saver = autosave.start_up(window, directory=state, delay_ms=FAST_MS)
    window.open_path(batch_path)
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    window.controller.select_row(1)
    window.session.update(temperature=2.5, label_smoothing=0.1)
    window.session.set_vector([7.0, np.nan, -np.inf, 1e-9], ["w", "x", "y", "z"])
    expected = intent_state(window.session)
    qtbot.waitUntil(
        lambda: (
            saver.path.is_file() and persistence.load_session(saver.path)["class_names"][0] == "w"
        ),
        timeout=WAIT_MS,
    )
    dead = pretend_killed(state, saver)
    quit_window(window)

    asked = Asked(True)
    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", asked)
    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, directory=state, delay_ms=FAST_MS)
    assert len(asked.calls) == 1
    when, summary = asked.calls[0]
    assert "4 classes" in summary and "T = 2.5" in summary and "rows.npy" in summary
    qtbot.waitUntil(lambda: fresh.session.selected_row == 1, timeout=WAIT_MS)
    assert intent_state(fresh.session) == expected
    np.testing.assert_array_equal(fresh.session.batch.data, data)
    assert "Restored the state autosaved at" in message_text(fresh)
    # The dead run's files are gone; this run has its own marker.
    assert not autosave.marker_path(state, dead).exists()
    assert not autosave.autosave_path(state, dead).exists()
    assert saver2.marker.is_file()
    autosave.finish(fresh, saver2)


def test_declining_the_offer_starts_fresh_and_forgets_it(window, qtbot, state, monkeypatch):
    saver = autosave.start_up(window, directory=state, delay_ms=FAST_MS)
    window.session.temperature = 3.0
    qtbot.waitUntil(saver.path.is_file, timeout=WAIT_MS)
    pretend_killed(state, saver)
    quit_window(window)

    asked = Asked(False)
    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", asked)
    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, directory=state, delay_ms=FAST_MS)
    assert len(asked.calls) == 1
    assert fresh.session.temperature == 1.0
    assert autosave.crashed_runs(state) == []
    autosave.finish(fresh, saver2)
    # Asked once: the next start does not ask again.
    third = build_window(qtbot)
    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", Asked(True))
    autosave.finish(third, autosave.start_up(third, directory=state))


def test_a_killed_write_leaves_no_temporary_after_the_offer(window, qtbot, state, monkeypatch):
    """SIGKILL during an autosave write leaves its temporary file; the next start removes it
    with the dead run's marker (found by tests/test_nothing_lost.py), and nobody else's."""
    saver = autosave.start_up(window, directory=state, delay_ms=FAST_MS)
    window.session.temperature = 3.0
    qtbot.waitUntil(saver.path.is_file, timeout=WAIT_MS)
    pid = pretend_killed(state, saver)
    quit_window(window)
    cut = state / f".autosave-{pid}.softmaxlab.json.0123456789ab.tmp"
    cut.write_text('{"half": ')
    other = state / f".autosave-{pid}1.softmaxlab.json.0123456789ab.tmp"  # another run's
    other.write_text("{}")

    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", Asked(True))
    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, directory=state, delay_ms=FAST_MS)
    assert fresh.session.temperature == 3.0
    assert not cut.exists()
    assert other.exists()
    autosave.finish(fresh, saver2)


def test_a_clean_exit_is_restored_silently(window, qtbot, state, monkeypatch):
    saver = autosave.start_up(window, directory=state, delay_ms=FAST_MS)
    window.session.update(temperature=0.8, chart_view="logits")
    window.session.set_vector([1.5, -2.5])
    expected = intent_state(window.session)
    autosave.finish(window, saver)
    assert not saver.marker.exists() and not saver.path.exists()
    assert (state / autosave.LAST_SESSION_NAME).is_file()
    quit_window(window)

    def never(*args: Any) -> bool:
        raise AssertionError("a clean exit must not ask")

    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", never)
    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, directory=state)
    assert intent_state(fresh.session) == expected
    np.testing.assert_allclose(chart_values(fresh), [1.5, -2.5])  # the logits view
    assert message_text(fresh) == ""
    autosave.finish(fresh, saver2)


def test_the_restored_session_keeps_its_file_and_knows_if_it_changed(
    window, qtbot, state, tmp_path
):
    saver = autosave.start_up(window, directory=state)
    window.session.temperature = 0.3
    assert window.sessions.save_to(tmp_path / "talk.softmaxlab.json")
    window.session.temperature = 0.6  # not saved
    autosave.finish(window, saver)
    quit_window(window)

    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, directory=state)
    assert fresh.session.temperature == 0.6
    assert fresh.sessions.current_path == tmp_path / "talk.softmaxlab.json"
    assert fresh.isWindowModified()
    autosave.finish(fresh, saver2)


def test_a_file_on_the_command_line_wins_over_the_restored_batch(window, qtbot, state, tmp_path):
    first, second = tmp_path / "first.npy", tmp_path / "second.npy"
    np.save(first, np.zeros((2, 3)))
    np.save(second, np.ones((4, 5)))
    saver = autosave.start_up(window, directory=state)
    window.open_path(first)
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    window.session.temperature = 1.7
    autosave.finish(window, saver)
    quit_window(window)

    fresh = build_window(qtbot)
    opened: list[Path] = []
    original_open = fresh.controller.open_file
    fresh.controller.open_file = lambda path, **kw: (
        opened.append(Path(path)),
        original_open(path, **kw),
    )
    saver2 = autosave.start_up(fresh, file=second, directory=state)
    qtbot.waitUntil(lambda: fresh.session.batch is not None, timeout=WAIT_MS)
    assert opened == [second]  # the restored batch was not even opened
    assert fresh.session.batch.path == second
    assert fresh.session.temperature == 1.7  # the rest of the last session is back
    autosave.finish(fresh, saver2)


def test_a_session_file_on_the_command_line_replaces_the_last_session(
    window, qtbot, state, tmp_path
):
    saver = autosave.start_up(window, directory=state)
    window.session.temperature = 0.2
    given = tmp_path / "given.softmaxlab.json"
    assert window.sessions.save_to(given)
    window.session.temperature = 5.0
    autosave.finish(window, saver)
    quit_window(window)

    fresh = build_window(qtbot)
    saver2 = autosave.start_up(fresh, file=given, directory=state)
    assert fresh.session.temperature == 0.2
    assert fresh.sessions.current_path == given
    autosave.finish(fresh, saver2)


def test_a_damaged_last_session_is_skipped_with_a_note(window, state):
    state.mkdir(parents=True)
    (state / autosave.LAST_SESSION_NAME).write_text(
        '{"format": "softmax-lab-session", "vers', encoding="utf-8"
    )
    saver = autosave.start_up(window, directory=state)
    assert "The last session was not restored" in message_text(window)
    assert "not valid JSON" in message_text(window)
    np.testing.assert_allclose(chart_values(window), softmax_ref([2.0, 1.0, 0.1]), rtol=1e-6)
    autosave.finish(window, saver)


def test_another_running_window_is_not_a_crash(state):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state.mkdir(parents=True)
        marker = autosave.marker_path(state, sleeper.pid)
        marker.write_text(str(sleeper.pid))
        autosave.autosave_path(state, sleeper.pid).write_text("{}")
        assert autosave.crashed_runs(state) == []
        assert marker.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    runs = autosave.crashed_runs(state)
    assert [r.pid for r in runs] == [sleeper.pid]


def test_a_marker_with_this_process_id_is_a_crash_only_at_start(state):
    # In a container every run may get the same process id.
    state.mkdir(parents=True)
    autosave.marker_path(state, os.getpid()).write_text("")
    assert autosave.crashed_runs(state) == []
    assert [r.pid for r in autosave.crashed_runs(state, at_start=True)] == [os.getpid()]


def test_an_unwritable_state_folder_disables_autosave_quietly(window, qtbot, tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    saver = autosave.start_up(window, directory=blocker / "state", delay_ms=FAST_MS)
    window.session.temperature = 2.0
    assert not saver.timer.isActive()
    autosave.finish(window, saver)


@pytest.mark.slow  # a real app start and its 3 s autosave delay: ~7 s
def test_killing_the_real_app_offers_its_state_at_the_next_start(
    window, qtbot, tmp_path, monkeypatch
):
    """The app in a real process, killed with SIGKILL after its autosave."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("SIGKILL is POSIX-only")
    batch_path = tmp_path / "killed.npy"
    data = np.linspace(-3, 3, 8).reshape(2, 4)
    np.save(batch_path, data)
    state_home = Path(os.environ["XDG_STATE_HOME"])
    state = state_home / "softmax-lab"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "softmax_lab.app", str(batch_path), "--quit-after", "60000"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        save = autosave.autosave_path(state, proc.pid)
        wait_for_child(save.is_file, proc, "the app wrote an autosave")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert autosave.marker_path(state, proc.pid).is_file()

    asked = Asked(True)
    monkeypatch.setattr(session_dialogs, "ask_restore_autosave", asked)
    saver = autosave.start_up(window)  # the default state folder, as the app uses
    assert len(asked.calls) == 1 and "killed.npy" in asked.calls[0][1]
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.session.batch.data, data)
    assert bits(window.session.logits).tolist() == bits([2.0, 1.0, 0.1]).tolist()
    autosave.finish(window, saver)


def test_the_window_comes_back_at_its_size(window, qtbot):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.size().height() == 720, timeout=WAIT_MS)
    autosave.finish(window, None)
    assert window.sessions.settings.window_geometry == window.saveGeometry()
    fresh = gui.first_frame(None, None)  # the next start's first frame (app/gui.py)
    qtbot.addWidget(fresh)
    fresh.show()
    # (The offscreen screen is narrower than the window: Qt keeps the width on screen.)
    qtbot.waitUntil(lambda: fresh.height() == 720, timeout=WAIT_MS)
