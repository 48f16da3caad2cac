"""Soak of the window (issue 6): thousands of seeded random user actions through the real
widgets (tests/app/soak_actions.py), replayed as intent on a plain Session.

At the end: no uncaught exception (pytest-qt fails the test on one), no Qt warning, the
window's QObjects and the application's top-level widgets back to their counts at the
start, resident memory grown by less than 50 MB, and the window's state equal to the
model's (checked after every action too). ``make test`` runs a short walk; the long one is
marked slow (``make test-all``). Repeat a walk with ``SOFTMAX_LAB_SOAK_SEED=<seed>``; set
``SOFTMAX_LAB_SOAK_REPORT=path.json`` to keep its figures.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QTableView

from tests.app.soak_actions import (
    SEED_ENV,
    Soak,
    SoakFailure,
    label_text_controls,
    object_counts,
    process_deferred_deletes,
    qt_messages,
    rss_bytes,
    seed_from_env,
)
from tests.app.window_helpers import find, type_into_cell

MB = 1024 * 1024
RSS_GROWTH_LIMIT = 50 * MB
REPORT_ENV = "SOFTMAX_LAB_SOAK_REPORT"


def run_soak(window: Any, qtbot: Any, monkeypatch: Any, folder: Path, actions: int, warm_up: int) -> dict[str, Any]:
    """Walk ``actions`` actions (the first ``warm_up`` of them before memory is measured)."""
    seed = seed_from_env()
    print(f"soak seed {seed} ({SEED_ENV} overrides it), {actions} actions")
    started = time.perf_counter()
    with qt_messages() as messages:
        # Earlier tests in the same process leave closed windows for the garbage collector
        # (thousands in a full run); collect them now, or the end count, taken after a
        # collection, would come out lower than the start.
        for _ in range(2):
            gc.collect()
            process_deferred_deletes()
        objects_start, top_levels_start = object_counts(window)
        soak = Soak(window, qtbot, monkeypatch, folder, seed)
        soak.run(warm_up)
        # Memory is measured from here: first-time imports, caches and fonts are not a leak,
        # and neither is the undo history (100 steps at most), which settle() clears.
        soak.settle()
        gc.collect()
        rss_start = rss_bytes()
        objects_warm, top_levels_warm = object_counts(window)
        soak.run(actions - warm_up)
        soak.check()  # the walk's final state equals the model's (before settling)
        soak.settle()
        gc.collect()
        process_deferred_deletes()
        rss_end = rss_bytes()
        objects_end, top_levels_end = object_counts(window)
        controls, selectable_labels = label_text_controls(window)
    report = {
        "seed": seed,
        "actions": soak.done,
        "per_kind": dict(sorted(soak.counts.items())),
        "seconds": round(time.perf_counter() - started, 1),
        "qobjects": [objects_start, objects_warm, objects_end],
        "top_levels": [top_levels_start, top_levels_warm, top_levels_end],
        "rss_mb": [round(rss_start / MB, 1), round(rss_end / MB, 1), round((rss_end - rss_start) / MB, 2)],
        "label_text_control_qobjects": [controls, selectable_labels],
        "undo_steps_left": window.sessions.undo.stack.count(),
        "qt_messages": messages,
        "exports": len(soak.exports),
    }
    print(json.dumps(report, indent=1))
    if os.environ.get(REPORT_ENV):
        Path(os.environ[REPORT_ENV]).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    where = f"(seed {seed})"
    assert messages == [], f"Qt warnings {where}: {messages}"
    assert (objects_end, top_levels_end) == (objects_start, top_levels_start), (
        f"QObjects under the window {objects_start} -> {objects_end}, top-level widgets "
        f"{top_levels_start} -> {top_levels_end} {where}"
    )
    # Not counted above: at most one text control (6 QObjects) per selectable label.
    assert controls <= 6 * selectable_labels, (controls, selectable_labels)
    assert rss_end - rss_start < RSS_GROWTH_LIMIT, f"RSS grew {(rss_end - rss_start) / MB:.1f} MB {where}"
    # Every kind of action was taken at least once (the weights reach them all).
    missing = set(soak.main_actions) - set(soak.counts)
    if actions >= 1000:
        missing |= set(soak.presenter_actions) - set(soak.counts)
    assert not missing, f"never drawn {where}: {sorted(missing)}"
    return report


def test_soak_short_walk(window, qtbot, monkeypatch, tmp_path):
    """300 actions (``make test``), 100 of them before memory is measured."""
    run_soak(window, qtbot, monkeypatch, tmp_path, actions=300, warm_up=100)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_long_walk(window, qtbot, monkeypatch, tmp_path):
    """5,000 actions (``make test-all``), 400 of them before memory is measured."""
    run_soak(window, qtbot, monkeypatch, tmp_path, actions=5_000, warm_up=400)


# -- the checks themselves can fail ---------------------------------------------------------


def test_the_model_check_catches_a_change_behind_its_back(window, qtbot, monkeypatch, tmp_path):
    soak = Soak(window, qtbot, monkeypatch, tmp_path, seed=1)
    soak.check()
    window.session.temperature = 2.0  # not through a widget, not in the model
    with pytest.raises(AssertionError, match="temperature"):
        soak.check()


def test_the_model_check_catches_an_unrecorded_undo_step(window, qtbot, monkeypatch, tmp_path):
    soak = Soak(window, qtbot, monkeypatch, tmp_path, seed=2)
    type_into_cell(qtbot, find(window, QTableView, "logitTable"), 0, 1, "4.5")
    with soak.model.action() as s:  # the model applies the intent but forgets the undo step
        s.set_vector(np.array([4.5, 1.0, 0.1]))
    soak.model.forget_history()
    with pytest.raises(AssertionError, match="undo stack"):
        soak.check()


def test_a_failing_action_names_the_seed_and_the_action(window, qtbot, monkeypatch, tmp_path):
    soak = Soak(window, qtbot, monkeypatch, tmp_path, seed=3)

    def sabotage() -> str:
        window.session.dtype = "float64"  # behind the model's back
        return "sabotaged"

    monkeypatch.setitem(soak.main_actions, "undo", (1e9, sabotage))
    with pytest.raises(SoakFailure, match="seed 3 failed at action 0 \\(undo\\)") as failure:
        soak.run(1)
    assert f"{SEED_ENV}=3" in str(failure.value) and "dtype" in str(failure.value)


# -- regressions: bugs the soak found ---------------------------------------------------------


def test_switching_between_a_vocabulary_and_a_small_vector_leaves_no_objects_behind(window):
    """The target box becomes editable above 1,000 classes; each switch used to leave the
    replaced item delegate on its list view (2 QObjects per round trip, widgets/loss_panel.py)."""
    editor = window.editor
    process_deferred_deletes()
    before = object_counts(window)  # also the first switch (a 5,000-action soak found it)
    for _ in range(3):
        editor.apply_preset("vocab50k")
        assert window.loss.target_combo.isEditable()
        editor.apply_preset("seed")
        assert not window.loss.target_combo.isEditable()
        process_deferred_deletes()
    assert object_counts(window) == before
