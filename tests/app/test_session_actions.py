"""File → Save/Open session, Open Recent, New session and session drops, driven through the
real actions and shortcuts with the file dialogs monkeypatched."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QTableView

from softmax_lab.app import persistence
from softmax_lab.app.main_window import TAB_LOSS, TAB_OVERFLOW
from softmax_lab.app.settings import MAX_RECENT, Settings, config_directory
from softmax_lab.widgets import dialogs, session_dialogs
from tests.app.session_helpers import (
    WAIT_MS,
    bits,
    build_window,
    chart_title,
    chart_values,
    drop_file,
    editor_logits,
    editor_names,
    find,
    intent_state,
    message_text,
    quit_window,
    softmax_ref,
    type_into_cell,
)

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def answer_save(monkeypatch: pytest.MonkeyPatch, path: Path | None) -> list[str]:
    asked: list[str] = []

    def ask(parent: Any, suggested: str = "") -> str | None:
        asked.append(suggested)
        return None if path is None else str(path)

    monkeypatch.setattr(session_dialogs, "ask_save_session", ask)
    return asked


def answer_open(monkeypatch: pytest.MonkeyPatch, path: Path | None) -> list[str]:
    asked: list[str] = []

    def ask(parent: Any, directory: str = "") -> str | None:
        asked.append(directory)
        return None if path is None else str(path)

    monkeypatch.setattr(session_dialogs, "ask_open_session", ask)
    return asked


def wait_restored(qtbot: Any, window: Any, batch_path: Path, row: int) -> None:
    s = window.session
    qtbot.waitUntil(
        lambda: (
            s.batch is not None
            and s.batch.path == batch_path
            and s.selected_row == row
            and s.batch_analysis is not None
            and not s.busy
        ),
        timeout=WAIT_MS,
    )


def test_save_quit_open_restores_the_same_state_exactly(window, qtbot, tmp_path, monkeypatch):
    # -- set up a state, largely as a person would ------------------------------------------
    rng = np.random.default_rng(3)
    data = rng.normal(0, 3, (5, 4))
    batch_path = tmp_path / "logits.npy"
    np.save(batch_path, data)
    targets_path = tmp_path / "targets.csv"
    targets_path.write_text("3\n0\n1\n2\n0\n", encoding="utf-8")
    s = window.session

    window.open_path(batch_path)
    qtbot.waitUntil(lambda: s.batch is not None and s.batch.path == batch_path, timeout=WAIT_MS)
    monkeypatch.setattr(dialogs, "ask_open_path", lambda *a, **k: str(targets_path))
    window.targets_action.trigger()
    assert s.batch.targets is not None and s.batch.targets.tolist() == [3, 0, 1, 2, 0]
    window.controller.select_row(2)  # as clicking row 2 of the heatmap table does
    # Then edit the editor's copy of the row: the session keeps these logits, not the row's.
    table = find(window, QTableView, "logitTable")
    type_into_cell(qtbot, table, 0, 1, "inf")
    type_into_cell(qtbot, table, 1, 1, "0.1")
    type_into_cell(qtbot, table, 3, 1, "-1e-300")
    type_into_cell(qtbot, table, 2, 0, "fox")
    s.update(
        temperature=0.37,
        dtype="float64",
        chart_view="logits",
        label_smoothing=0.05,
        batch_dim=0,
        target=3,
    )
    window.tabs.setCurrentIndex(TAB_LOSS)
    saved_state = intent_state(s)
    assert saved_state["selected_row"] == 2

    # -- File → Save (Ctrl+S): no file yet, so it asks where; the suffix is added -------------
    asked = answer_save(monkeypatch, tmp_path / "lecture")
    qtbot.keyClick(window, Qt.Key.Key_S, CTRL)
    session_file = tmp_path / "lecture.softmaxlab.json"
    assert len(asked) == 1
    assert session_file.is_file()
    assert "Saved the session to lecture.softmaxlab.json" in message_text(window)
    assert window.windowTitle() == "lecture.softmaxlab.json[*] — Softmax Lab"
    assert not window.isWindowModified()
    doc = json.loads(session_file.read_text(encoding="utf-8"))
    assert doc["batch"]["targets_path"] == str(targets_path)

    # -- quit, start a fresh window, File → Open session (Ctrl+Shift+O) -----------------------
    quit_window(window)
    fresh = build_window(qtbot)
    assert intent_state(fresh.session) != saved_state
    answer_open(monkeypatch, session_file)
    qtbot.keyClick(fresh, Qt.Key.Key_O, CTRL_SHIFT)
    wait_restored(qtbot, fresh, batch_path, 2)

    r = fresh.session
    assert intent_state(r) == saved_state  # logits bit for bit, names, every setting, batch, row
    assert bits(r.logits)[0] == bits([math.inf])[0]
    np.testing.assert_array_equal(r.batch.data, data)
    assert r.batch.targets.tolist() == [3, 0, 1, 2, 0]
    assert fresh.tabs.currentIndex() == TAB_LOSS
    # ... and the views show it.
    assert editor_names(fresh) == ["class 0", "class 1", "fox", "class 3"]
    assert editor_logits(fresh)[1:] == [0.1, r.logits[2], -1e-300]
    assert find(fresh, QComboBox, "dtypeCombo").currentText() == "float64"
    assert "T = 0.37" in chart_title(fresh) and "float64" in chart_title(fresh)
    assert find(fresh, QComboBox, "chartViewCombo").currentText() == "logits"
    assert fresh.windowTitle() == "lecture.softmaxlab.json[*] — Softmax Lab"
    # Saving the reopened session unchanged writes the same state.
    fresh.sessions.save_action.trigger()
    assert persistence.same_state(json.loads(session_file.read_text(encoding="utf-8")), doc)


def test_open_restores_the_visible_panel_even_after_a_batch_loads(
    window, qtbot, tmp_path, monkeypatch
):
    batch_path = tmp_path / "b.npy"
    np.save(batch_path, np.arange(6.0).reshape(2, 3))
    window.open_path(batch_path)
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    window.tabs.setCurrentIndex(TAB_OVERFLOW)
    assert window.sessions.save_to(tmp_path / "p.softmaxlab.json")

    window.sessions.new_session()
    assert window.session.batch is None and window.tabs.currentIndex() == 0
    assert window.sessions.open_session(tmp_path / "p.softmaxlab.json")
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    # Opening a batch shows the Batch panel; the session's panel wins.
    assert window.tabs.currentIndex() == TAB_OVERFLOW
    assert window.session.selected_row is None


def test_a_session_without_a_batch_closes_the_open_batch(window, qtbot, tmp_path):
    path = tmp_path / "plain.softmaxlab.json"
    window.session.temperature = 2.0
    assert window.sessions.save_to(path)
    batch_path = tmp_path / "b.npy"
    np.save(batch_path, np.ones((2, 2)))
    window.open_path(batch_path)
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    assert window.sessions.open_session(path)
    assert window.session.batch is None
    assert window.session.temperature == 2.0


def corrupt_files(tmp_path: Path, good: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    text = persistence.dumps(good)
    files: dict[str, tuple[Path, str]] = {}

    def put(name: str, content: str | bytes, expected: str) -> None:
        path = tmp_path / f"{name}.softmaxlab.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        files[name] = (path, expected)

    put("truncated", text[: len(text) // 3], "not valid JSON")
    put(
        "wrong-types", text.replace('"dtype": "float32"', '"dtype": 32'), '"dtype" must be a string'
    )
    put("bad-target", json.dumps({**good, "target": 99}), "target class 99 is out of range")
    put(
        "missing-batch",
        json.dumps({**good, "batch": {"path": str(tmp_path / "gone.npy")}}),
        "gone.npy is missing",
    )
    huge = tmp_path / "huge.softmaxlab.json"
    with huge.open("wb") as fh:  # claims ~10^9 logits: 8 GB, sparse
        fh.write(b'{"format": "softmax-lab-session", "version": 1, "logits": [1.0, ')
        fh.truncate(8 * 10**9)
    files["billion-logits"] = (huge, "far larger than any session")
    return files


def test_corrupt_or_hostile_sessions_are_refused_and_change_nothing(window, tmp_path, monkeypatch):
    good = persistence.to_document(window.session, {"panel": 0})
    window.session.update(temperature=0.5, dtype="float16")
    window.tabs.setCurrentIndex(TAB_OVERFLOW)
    before = intent_state(window.session)
    shown = chart_values(window).copy()
    cases = corrupt_files(tmp_path, good)
    assert set(cases) == {
        "truncated",
        "wrong-types",
        "bad-target",
        "missing-batch",
        "billion-logits",
    }
    for case, (path, expected) in cases.items():
        window.session.clear_message()
        answer_open(monkeypatch, path)
        window.sessions.open_action.trigger()

        text = message_text(window)
        assert text.startswith("Error: Could not open the session"), case
        assert path.name in text and expected in text, (case, text)
        assert "Traceback" not in text
        assert intent_state(window.session) == before, case
        assert window.tabs.currentIndex() == TAB_OVERFLOW
        np.testing.assert_array_equal(chart_values(window), shown)
        assert window.sessions.current_path is None
        assert window.windowTitle() == "Softmax Lab"


def test_cancelled_dialogs_change_nothing(window, monkeypatch, tmp_path):
    answer_open(monkeypatch, None)
    answer_save(monkeypatch, None)
    before = intent_state(window.session)
    window.sessions.open_action.trigger()
    window.sessions.save_as_action.trigger()
    assert intent_state(window.session) == before
    assert list(tmp_path.iterdir()) == []
    assert message_text(window) == ""


def test_save_into_a_missing_folder_says_why(window, tmp_path):
    target = tmp_path / "no-such-folder" / "x.softmaxlab.json"
    assert not window.sessions.save_to(target)
    assert "Could not save the session" in message_text(window)
    assert "No such file or directory" in message_text(window)
    assert window.sessions.current_path is None


def test_title_marks_unsaved_changes(window, tmp_path):
    assert window.sessions.save_to(tmp_path / "t.softmaxlab.json")
    assert not window.isWindowModified()
    window.session.temperature = 3.0
    assert window.isWindowModified()
    window.sessions.undo_action.trigger()
    assert not window.isWindowModified()


def test_new_session_resets_everything(window, qtbot, tmp_path):
    np.save(tmp_path / "b.npy", np.ones((3, 3)))
    window.open_path(tmp_path / "b.npy")
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    window.session.update(temperature=4.0, dtype="float16", label_smoothing=0.2)
    window.sessions.save_to(tmp_path / "n.softmaxlab.json")
    qtbot.keyClick(window, Qt.Key.Key_N, CTRL)
    s = window.session
    assert s.batch is None and s.temperature == 1.0 and s.dtype == "float32"
    assert s.label_smoothing == 0.0 and s.logits.tolist() == [2.0, 1.0, 0.1]
    np.testing.assert_allclose(chart_values(window), softmax_ref([2.0, 1.0, 0.1]), rtol=1e-6)
    assert window.windowTitle() == "Softmax Lab"
    assert window.sessions.undo.stack.count() == 0


def test_dropping_a_session_opens_it_and_tensors_still_open_as_batches(window, qtbot, tmp_path):
    window.session.update(temperature=0.25, chart_view="log-probabilities")
    session_file = tmp_path / "dropped.softmaxlab.json"
    assert window.sessions.save_to(session_file)
    window.sessions.new_session()
    assert window.session.temperature == 1.0

    assert drop_file(window, session_file) == (True, True)
    assert window.session.temperature == 0.25
    assert window.session.chart_view == "log-probabilities"
    assert window.sessions.current_path == session_file

    tensor = tmp_path / "t.npy"
    np.save(tensor, np.zeros((2, 3)))
    assert drop_file(window, tensor) == (True, True)
    qtbot.waitUntil(
        lambda: window.session.batch is not None and window.session.batch.path == tensor,
        timeout=WAIT_MS,
    )
    assert window.session.temperature == 0.25  # a tensor does not replace the session

    other = tmp_path / "notes.json"
    other.write_text("{}", encoding="utf-8")
    assert drop_file(window, other) == (False, False)


# -- recent files -------------------------------------------------------------------------------


def recent_paths(window: Any) -> list[Path]:
    window.sessions.rebuild_recent_menu()
    return [Path(a.data()) for a in window.sessions.recent_actions()]


def test_recent_files_hold_tensors_and_sessions_newest_first(window, qtbot, tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((2, 2)))
    np.save(b, np.ones((2, 2)))
    for path in (a, b, a):  # reopening a moves it to the top, once
        window.open_path(path)
        qtbot.waitUntil(
            lambda p=path: window.session.batch is not None and window.session.batch.path == p,
            timeout=WAIT_MS,
        )
    session_file = tmp_path / "s.softmaxlab.json"
    window.sessions.save_to(session_file)
    assert recent_paths(window) == [session_file, a, b]

    # A file that disappeared is dropped from the list.
    b.unlink()
    assert recent_paths(window) == [session_file, a]

    # Choosing an entry opens it: a session as a session, a tensor as a batch.
    window.sessions.new_session()
    window.session.temperature = 9.0
    entries = {Path(x.data()): x for x in window.sessions.recent_actions()}
    entries[session_file].trigger()
    assert window.session.temperature == 1.0 and window.sessions.current_path == session_file
    window.sessions.new_session()
    entries = {Path(x.data()): x for x in window.sessions.recent_actions()}
    entries[a].trigger()
    qtbot.waitUntil(
        lambda: window.session.batch is not None and window.session.batch.path == a, timeout=WAIT_MS
    )

    # The list is kept in the settings, for the next start.
    assert Settings().recent_files() == [a, session_file]
    window.sessions.clear_recent_action.trigger()
    assert recent_paths(window) == []


def test_recent_files_keep_at_most_ten(tmp_path):
    settings = Settings(tmp_path / "s.ini")
    paths = []
    for i in range(MAX_RECENT + 3):
        p = tmp_path / f"f{i}.npy"
        p.write_bytes(b"")
        paths.append(p)
        settings.add_recent(p)
    assert settings.recent_files() == list(reversed(paths))[:MAX_RECENT]
    settings.add_recent(paths[-5])
    assert settings.recent_files()[0] == paths[-5]
    assert len(settings.recent_files()) == MAX_RECENT


def test_a_vanished_recent_file_says_so(window, tmp_path):
    p = tmp_path / "gone.npy"
    np.save(p, np.zeros((2, 2)))
    window.sessions.settings.add_recent(p)
    window.sessions.rebuild_recent_menu()
    action = window.sessions.recent_actions()[0]
    p.unlink()
    action.trigger()
    assert "no longer exists" in message_text(window)
    assert window.session.batch is None
    assert window.sessions.recent_actions() == []


def test_menus_and_shortcuts(window):
    actions = window.file_menu.actions()
    s = window.sessions
    order = [
        actions.index(a)
        for a in (
            window.open_action,
            s.new_action,
            s.open_action,
            s.recent_menu.menuAction(),
            s.save_action,
            s.save_as_action,
            window.file_menu_tail,
        )
    ]
    assert order == sorted(order), "File menu: Open tensor, the session entries, then the tail"
    assert s.save_action.shortcut().toString() == "Ctrl+S"
    assert s.save_as_action.shortcut().toString() == "Ctrl+Shift+S"
    assert s.open_action.shortcut().toString() == "Ctrl+Shift+O"
    assert s.undo_action.shortcut().toString() == "Ctrl+Z"
    assert [k.toString() for k in s.redo_action.shortcuts()] == ["Ctrl+Shift+Z", "Ctrl+Y"]
    assert window.edit_menu.actions()[:2] == [s.undo_action, s.redo_action]
    assert s.theme_menu.menuAction() in window.view_menu.actions()
    # Every shortcut of the window is used once.
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            text = key.toString()
            assert text not in seen, f"{text} is both {seen[text]!r} and {action.text()!r}"
            seen[text] = action.text()


def test_settings_live_under_the_test_folder_never_the_home(window, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    assert Path(config_directory()).is_relative_to(base)
    assert window.sessions.settings.path.is_relative_to(base)
    window.sessions.settings.add_recent(__file__)
    assert window.sessions.settings.path.is_file()
    assert not str(window.sessions.settings.path).startswith(str(Path.home() / ".config"))
    state = Path(os.environ["XDG_STATE_HOME"])
    assert state.is_relative_to(base)


def test_settings_survive_a_damaged_file(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text("[recent]\nfiles=not json [\n[appearance]\ntheme=purple\n", encoding="utf-8")
    settings = Settings(path)
    assert settings.recent_files() == []
    assert settings.theme == "system"
    assert settings.last_session is None
    with pytest.raises(ValueError):
        settings.theme = "purple"


def test_quitting_while_the_restored_batch_loads_keeps_it(window, qtbot, tmp_path, monkeypatch):
    batch_path = tmp_path / "slow.npy"
    np.save(batch_path, np.zeros((3, 2)))
    window.open_path(batch_path)
    qtbot.waitUntil(lambda: window.session.batch is not None, timeout=WAIT_MS)
    window.controller.select_row(1)
    assert window.sessions.save_to(tmp_path / "slow.softmaxlab.json")
    window.sessions.new_session()

    requested: list[Path] = []  # a load that has not finished yet
    monkeypatch.setattr(
        window.controller, "open_file", lambda path, **kw: requested.append(Path(path))
    )
    assert window.sessions.open_session(tmp_path / "slow.softmaxlab.json")
    assert requested == [batch_path] and window.session.batch is None
    doc = window.sessions.document()
    assert doc["batch"]["path"] == str(batch_path) and doc["selected_row"] == 1
    # The load fails: the batch is no longer part of the state.
    window.session.report("error", "slow.npy: cannot read it", "load")
    assert window.sessions.document()["batch"] is None
