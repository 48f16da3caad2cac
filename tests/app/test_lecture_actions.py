"""Lectures in the window (app/lecture_actions.py): open, scene list, add/save/reorder, Copy as PyTorch.

The real window with every feature installed; dialogs are the module
functions of widgets/lecture_dialogs.py and widgets/dialogs.py, monkeypatched;
everything else is real clicks and key presses. Files are read back and the
numbers compared with torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QListWidget, QPushButton, QToolButton

from softmax_lab.app.lecture import builtin_lecture_path, load_lecture, save_lecture
from softmax_lab.app.lecture_actions import PANEL_TABS, start
from softmax_lab.app.session import Session
from softmax_lab.widgets import dialogs, lecture_dialogs

LECTURE = load_lecture(builtin_lecture_path())
SCRIPT = Path(sys.executable).parent / "softmax-lab"


@pytest.fixture
def lectures(window: Any) -> Any:
    yield window.lecture_actions
    window.lecture_actions.leave_presenter()


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(dialogs, "show_error", lambda _parent, _title, text, details="": shown.append(text))
    return shown


def scene_titles(window: Any) -> list[str]:
    view = window.findChild(QListWidget, "sceneList")
    return [re.sub(r"^\d+\. ", "", view.item(i).text()) for i in range(view.count())]


def click_scene(qtbot: Any, window: Any, row: int) -> None:
    view = window.findChild(QListWidget, "sceneList")
    rect = view.visualItemRect(view.item(row))
    assert not rect.isEmpty(), f"scene {row} is not on screen"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def button(window: Any, name: str) -> Any:
    widget = window.findChild(QPushButton, name) or window.findChild(QToolButton, name)
    assert widget is not None, name
    return widget


def softmax_ref(logits: Any, temperature: float, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return torch.softmax(torch.tensor(logits, dtype=dtype) / temperature, -1).double().numpy()


def test_open_a_lecture_and_click_through_its_scenes(window, lectures, qtbot, tmp_path, monkeypatch):
    path = tmp_path / "talk.toml"
    save_lecture(path, LECTURE)
    monkeypatch.setattr(lecture_dialogs, "ask_lecture_path", lambda _parent: str(path))
    lectures.open_action.trigger()
    dock = window.findChild(QListWidget, "sceneList").parentWidget()
    qtbot.waitUntil(dock.isVisible)
    assert scene_titles(window) == [s.title for s in LECTURE.scenes]
    assert lectures.current == 0 and window.session.logits.tolist() == [2.0, 1.0, 0.1]
    caption = window.findChild(QListWidget, "sceneList").parentWidget().findChild(type(window.readout.labels["entropyLabel"]), "sceneCaption")
    assert caption.text() == LECTURE.scenes[0].caption

    for row in (3, 6, 4, 9):
        click_scene(qtbot, window, row)
        scene = LECTURE.scenes[row]
        assert lectures.current == row
        assert window.session.temperature == scene.temperature and window.session.dtype == scene.dtype
        if scene.panel in PANEL_TABS:
            assert window.tabs.currentIndex() == PANEL_TABS[scene.panel]
        bars = np.asarray(window.chart.bars.opts["height"]) + np.asarray(window.chart.bars.opts["y0"])
        dtype = getattr(torch, scene.dtype)
        np.testing.assert_allclose(bars, softmax_ref(list(scene.logits), scene.temperature, dtype), rtol=1e-3 if scene.dtype == "float16" else 1e-6)
        assert caption.text() == scene.caption
    # Arrow keys in the list move to a scene and show it.
    view = window.findChild(QListWidget, "sceneList")
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert lectures.current == 10 and window.session.target == LECTURE.scenes[10].target


def test_a_bad_lecture_file_changes_nothing_and_says_why(window, lectures, errors, tmp_path, monkeypatch):
    lectures.open_builtin_lecture()
    lectures.go_to(3)
    state = (window.session.logits.tolist(), window.session.temperature)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[scene]]\ntitle = "Fine"\nlogits = [1.0]\n\n[[scene]]\ntitle = "Broken"\nlogits = [1.0]\npanel = "slides"\n', encoding="utf-8")
    monkeypatch.setattr(lecture_dialogs, "ask_lecture_path", lambda _parent: str(bad))
    lectures.open_action.trigger()
    assert len(errors) == 1 and 'scene 2 "Broken": panel must be one of' in errors[0]
    assert lectures.lecture == LECTURE and lectures.current == 3
    assert (window.session.logits.tolist(), window.session.temperature) == state


def test_add_scene_save_and_load_round_trip(window, lectures, qtbot, tmp_path, monkeypatch):
    session = window.session
    asked: list[tuple[str, str]] = []

    def details(_parent: Any, title: str, caption: str, panel: str, panels: Any) -> tuple[str, str, str]:
        asked.append((title, panel))
        return f"My scene {len(asked)}", f"Caption {len(asked)}: \"quoted\" and \\ backslash.", panel

    monkeypatch.setattr(lecture_dialogs, "ask_scene_details", details)
    window.tabs.setCurrentIndex(PANEL_TABS["loss"])
    session.set_vector([3.0, -float("inf"), 0.25], ["yes", "no", "maybe"])
    session.update(temperature=0.7000000000000001, dtype="float64", target=2, label_smoothing=0.05)
    lectures.add_action.trigger()
    assert asked == [("Scene 1", "loss")]  # the window's open panel is the default
    session.update(temperature=2.5, chart_view="logits")
    qtbot.mouseClick(button(window, "sceneAdd"), Qt.MouseButton.LeftButton)
    assert scene_titles(window) == ["My scene 1", "My scene 2"] and lectures.modified

    out = tmp_path / "mine.toml"
    monkeypatch.setattr(lecture_dialogs, "ask_lecture_save_path", lambda _parent, _suggested: str(out))
    lectures.save_action.trigger()
    assert not lectures.modified
    loaded = load_lecture(out)
    assert loaded.scenes == lectures.lecture.scenes
    first = loaded.scenes[0]
    assert first.logits == (3.0, -float("inf"), 0.25) and first.names == ("yes", "no", "maybe")
    assert (first.temperature, first.dtype, first.target, first.label_smoothing, first.panel) == (
        0.7000000000000001, "float64", 2, 0.05, "loss"
    )
    # Showing the saved scene gives back exactly the state it was made from.
    lectures.go_to(0)
    assert session.temperature == 0.7000000000000001 and session.chart_view == "probabilities"
    assert window.tabs.currentIndex() == PANEL_TABS["loss"]
    fresh = Session()
    from softmax_lab.app.lecture import apply_scene

    apply_scene(fresh, loaded.scenes[1])
    assert fresh.temperature == 2.5 and fresh.chart_view == "logits" and fresh.target == 2


def test_reorder_and_remove_scenes_with_the_buttons(window, lectures, qtbot):
    lectures.open_builtin_lecture()
    titles = [s.title for s in LECTURE.scenes]
    click_scene(qtbot, window, 2)
    qtbot.mouseClick(button(window, "sceneDown"), Qt.MouseButton.LeftButton)
    expected = titles[:2] + [titles[3], titles[2]] + titles[4:]
    assert scene_titles(window) == expected and lectures.current == 3 and lectures.modified
    qtbot.mouseClick(button(window, "sceneUp"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(button(window, "sceneUp"), Qt.MouseButton.LeftButton)
    expected = [titles[0], titles[2], titles[1]] + titles[3:]
    assert scene_titles(window) == expected and lectures.current == 1
    assert window.findChild(QListWidget, "sceneList").currentRow() == 1
    qtbot.mouseClick(button(window, "sceneRemove"), Qt.MouseButton.LeftButton)
    assert scene_titles(window) == [titles[0], titles[1]] + titles[3:]
    assert [s.title for s in lectures.lecture.scenes] == scene_titles(window)
    assert not button(window, "sceneUp").isEnabled() or lectures.current > 0


def test_opening_another_lecture_asks_before_dropping_edits(window, lectures, monkeypatch):
    lectures.open_builtin_lecture()
    lectures.remove_scene(0)
    asked: list[str] = []
    monkeypatch.setattr(lecture_dialogs, "confirm_discard", lambda _parent, text: asked.append(text) or False)
    lectures.builtin_action.trigger()
    assert asked and len(lectures.lecture) == len(LECTURE) - 1  # kept
    monkeypatch.setattr(lecture_dialogs, "confirm_discard", lambda _parent, text: True)
    lectures.builtin_action.trigger()
    assert lectures.lecture == LECTURE and not lectures.modified


def test_a_failed_save_keeps_the_edits_and_says_why(window, lectures, errors, tmp_path, monkeypatch):
    lectures.open_builtin_lecture()
    lectures.remove_scene(1)
    target = tmp_path / "missing" / "talk.toml"
    monkeypatch.setattr(lecture_dialogs, "ask_lecture_save_path", lambda _parent, _s: str(target))
    lectures.save_action.trigger()
    assert len(errors) == 1 and "Nothing was written" in errors[0]
    assert lectures.modified and not target.exists()


def test_copy_as_pytorch_puts_runnable_code_for_the_scene_on_the_clipboard(window, lectures, qtbot):
    lectures.open_builtin_lecture()
    lectures.go_to(5)  # the dim=0 batch scene
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    code = QApplication.clipboard().text()
    assert "torch.softmax(logits, dim=0)" in code and "[3.0, 0.2, 0.2]" in code

    lectures.go_to(9)  # cross-entropy, target cat
    lectures.copy_action.trigger()
    code = QApplication.clipboard().text()
    assert "F.cross_entropy(logits, target, label_smoothing=0.0)" in code
    # Run as pasted, in fresh globals (tests/compute/test_snippets.py runs them in
    # a separate interpreter; torch is already loaded here).
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, "<clipboard>", "exec"), {"__name__": "__main__"})
    printed = dict(line.split(":", 1) for line in buffer.getvalue().splitlines() if ":" in line)
    scene = LECTURE.scenes[9]
    logits = torch.tensor([list(scene.logits)])
    loss = F.cross_entropy(logits, torch.tensor([scene.target])).item()
    assert float(printed["cross-entropy"]) == pytest.approx(loss, rel=1e-6)
    assert "Copied PyTorch code" in window.message_bar.findChild(type(window.busy_label), "messageText").text()


def test_start_from_the_command_line_opens_the_scene_list_without_presenting(window):
    start(window, builtin_lecture_path(), present=False)
    lectures = window.lecture_actions
    assert lectures.presenter is None and lectures.lecture == LECTURE and lectures.current == 0
    assert window.findChild(QListWidget, "sceneList").isVisible()


def _run_app(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=str(tmp_path / "state"))
    env["SOFTMAX_LAB_CONFIG_DIR"] = str(tmp_path / "config")
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )


def test_the_app_presents_a_lecture_and_exits_cleanly(tmp_path):
    assert SCRIPT.exists(), f"console script not installed: {SCRIPT}"
    done = _run_app(["--lecture", str(builtin_lecture_path()), "--present", "--quit-after", "2000"], tmp_path)
    extra = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and line.strip() != "This plugin does not support propagateSizeHints()"
    ]
    assert done.returncode == 0 and extra == [], done.stderr


def test_a_bad_lecture_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from softmax_lab.app.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[scene]]\ntitle = "Hot"\nlogits = [1.0]\ntemperature = 0\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # Refused before Qt loads: no window is opened by this test.
    assert main(["--lecture", "bad.toml", "--present"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        'softmax-lab: error: bad.toml, scene 1 "Hot": temperature must be finite and greater than 0 '
        "(got 0); small values such as 0.01 approach the argmax"
    ]
    assert main(["--lecture", "missing.toml"]) == 2
    assert capsys.readouterr().err.strip() == "softmax-lab: error: missing.toml: no such lecture file"


def test_lecture_options_reach_launch_window(monkeypatch, tmp_path):
    import types

    from softmax_lab.app import cli

    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("softmax_lab.app.gui")
    fake.launch_window = lambda **kwargs: calls.append(kwargs) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "softmax_lab.app.gui", fake)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--lecture", "builtin", "--present"]) == 0
    assert cli.main(["--present"]) == 0
    save_lecture(tmp_path / "mine.toml", LECTURE)
    assert cli.main(["--lecture", "mine.toml"]) == 0
    assert calls == [
        {"file": None, "quit_after_ms": None, "lecture": builtin_lecture_path(), "present": True},
        {"file": None, "quit_after_ms": None, "present": True},
        {"file": None, "quit_after_ms": None, "lecture": Path("mine.toml")},
    ]
