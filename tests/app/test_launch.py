"""launch_window: the first frame, then the full window in its place (app/gui.py).

These run the real ``launch_window`` in this process, event loop included; a
timer stands in for the person, who looks at the windows and closes the full one.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from softmax_lab.app import gui
from softmax_lab.app.settings import Settings
from softmax_lab.app.state_files import LAST_SESSION_NAME, state_directory
from tests.qt_helpers import top_level_widgets

GIVE_UP_MS = 60_000


@pytest.fixture(autouse=True)
def _collect_what_the_run_left(qapp):
    """A whole window ran in this process: collect its garbage here, at a known point.

    Qt objects owned by Python objects in reference cycles are deleted when the cycle
    is collected; left to chance, that can happen while a later test converts the
    top-level widget list, and the full suite crashed there twice (not reproduced in
    isolation).
    """
    yield
    gc.collect()
    QApplication.processEvents()


@pytest.fixture
def give_up(qapp):
    """If a window never closes, close every window after GIVE_UP_MS; disarmed when the
    test ends. (A bare QTimer.singleShot outlived its test and, a minute later, closed
    whatever the test running then had open: the soak's windows, in a full run.)"""
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: [w.close() for w in top_level_widgets()])
    timer.start(GIVE_UP_MS)
    yield timer
    timer.stop()


def windows(kind: str) -> list[QMainWindow]:
    return [
        w
        for w in top_level_widgets()
        if isinstance(w, QMainWindow) and type(w).__name__ == kind and w.isVisible()
    ]


class Watcher:
    """Looks at the windows while ``launch_window`` runs; closes the full one when done.

    The first frame is looked at just before the full window is built in its place
    (that happens within one event-loop turn of its first paint, too soon for a timer).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.first_geometry: QRect | None = None
        self.first_frames_seen: list[str] = []
        self.seen: dict[str, Any] = {}
        open_window = gui._open_window

        def look_then_open(first: Any, *args: Any) -> None:
            assert first.isVisible()
            self.first_geometry = first.geometry()
            self.first_frames_seen.append(first.drawing.svg())
            open_window(first, *args)

        monkeypatch.setattr(gui, "_open_window", look_then_open)
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        full = windows("MainWindow")
        if full and full[0].session.analysis is not None:
            window = full[0]
            self.seen = {
                "geometry": window.geometry(),
                "frames_still_visible": len(windows("FirstFrame")),
                "probabilities": window.session.analysis.result.probabilities.ravel().tolist(),
                "title": window.chart.plot_item.titleLabel.text,
            }
            self.timer.stop()
            window.close()



@pytest.fixture
def watcher(monkeypatch: pytest.MonkeyPatch, give_up: QTimer):
    """A Watcher whose polling stops with the test: left running (its timer and its
    slot keep each other alive), it would close the next test's full window."""
    watching = Watcher(monkeypatch)
    give_up.timeout.connect(watching.timer.stop)
    yield watching
    watching.timer.stop()


def test_the_first_frame_draws_the_example_then_the_full_window_takes_its_place(
    qapp, watcher: Watcher
) -> None:
    Settings().window_geometry = None
    before = {id(w) for w in top_level_widgets()}
    assert gui.launch_window() == 0
    # Both windows are deleted when it returns, not left to a later event loop or to
    # the garbage collector. (pyqtgraph's parentless context menus stay, as in any run.)
    left = [type(w).__name__ for w in top_level_widgets() if id(w) not in before]
    assert "FirstFrame" not in left and "MainWindow" not in left
    assert watcher.seen, "the full window never showed the example's result"
    assert watcher.first_frames_seen and "0.659" in watcher.first_frames_seen[0]
    # The frame's chart title is the one the full window's chart then shows.
    assert f">{watcher.seen['title']}</text>" in watcher.first_frames_seen[0]
    assert watcher.seen["frames_still_visible"] == 0
    assert watcher.seen["geometry"] == watcher.first_geometry
    p = watcher.seen["probabilities"]
    assert p == pytest.approx([0.659, 0.242, 0.0986], abs=5e-4)  # the same numbers, from torch


def test_the_full_window_opens_where_the_first_frame_was(qapp, watcher: Watcher) -> None:
    # The last run closed at 1100 x 700: the first frame restores it, the full window keeps it.
    probe = QMainWindow()
    probe.resize(1100, 700)
    Settings().window_geometry = probe.saveGeometry()
    del probe  # (Python owns it: deleted here)
    assert gui.launch_window() == 0
    assert watcher.first_geometry is not None and watcher.first_geometry.height() == 700
    assert watcher.seen["geometry"] == watcher.first_geometry


def test_presenter_mode_opens_with_the_numbers_not_before(
    qapp, monkeypatch: pytest.MonkeyPatch, give_up: QTimer
) -> None:
    from softmax_lab.app import lecture_actions

    seen: list[tuple[bool, bool]] = []  # (window shown, example computed) at entry
    enter = lecture_actions.LectureActions.enter_presenter

    def watched(self: Any) -> None:
        seen.append((self.window.isVisible(), self.window.session.analysis is not None))
        enter(self)
        QTimer.singleShot(0, self.window.close)  # the person leaves at once

    monkeypatch.setattr(lecture_actions.LectureActions, "enter_presenter", watched)
    assert gui.launch_window(present=True) == 0
    assert seen == [(True, True)]


def test_the_running_window_is_left_out_of_full_collections_until_it_returns(
    qapp, give_up: QTimer
) -> None:
    # A full collection walked every object of the window (~100 ms, inside a slider
    # drag): once the window is on screen, what exists is frozen (gui.settle_heap).
    seen: list[int] = []

    def poll() -> None:
        full = windows("MainWindow")
        if full and gc.get_freeze_count() > 0:
            seen.append(gc.get_freeze_count())
            timer.stop()
            full[0].close()

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(poll)
    timer.start()
    assert gc.get_freeze_count() == 0
    assert gui.launch_window() == 0
    assert seen and seen[0] > 10_000, "nothing was frozen while the window ran"
    # Unfrozen on the way out, so the windows' own garbage is collected there.
    assert gc.get_freeze_count() == 0


def test_a_session_to_restore_is_announced_not_the_example(qtbot) -> None:
    directory = state_directory()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LAST_SESSION_NAME).write_text("{}")  # damaged: the example comes back later
    frame = gui.first_frame(None, None)
    qtbot.addWidget(frame)
    assert "Restoring the last session" in frame.drawing.svg()
    assert "0.659" not in frame.drawing.svg()


def test_a_file_to_open_is_announced(qtbot, tmp_path: Path) -> None:
    frame = gui.first_frame(tmp_path / "logits.npy", None)
    qtbot.addWidget(frame)
    assert "Opening logits.npy" in frame.drawing.svg()


def test_a_window_that_cannot_be_built_exits_with_status_1_and_says_why(
    qapp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], watcher: Watcher
) -> None:
    from softmax_lab.app import main_window

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the views could not be built")

    monkeypatch.setattr(main_window.MainWindow, "__init__", broken)
    assert gui.launch_window() == 1
    err = capsys.readouterr().err
    assert "RuntimeError: the views could not be built" in err
    assert "Softmax Lab could not open its window" in err
    assert not windows("FirstFrame") and not windows("MainWindow")
