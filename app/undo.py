"""Undo and redo of every change the person makes, on a :class:`QUndoStack`.

The recorder listens to :attr:`Session.changed` and turns each change of an
intent field into one undo command holding the old and the new values, so
every way of changing the lab (typing a logit, the temperature slider, a
preset, a batch row, a lecture scene) is undoable without each widget knowing
about undo. Undo writes the old values back with one :meth:`Session.update`;
the recorder ignores the change it causes itself.

Slider drags are one step: consecutive changes of only the temperature (or
only the label smoothing) merge into the command before them while they keep
coming less than :data:`MERGE_WINDOW_S` apart, until the slider is released
(:meth:`UndoRecorder.seal`). A drag that ends where it started leaves no step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from softmax_lab.app.persistence import INTENT_FIELDS
from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError

MERGE_WINDOW_S = 1.0
"""Changes of one slider closer together than this are one undo step."""
UNDO_LIMIT = 100
"""Steps kept; the oldest are dropped beyond."""

TRACKED: tuple[str, ...] = (*INTENT_FIELDS, "selected_row")
"""Recorded fields. ``selected_row`` is recorded only alongside an intent field
(loading a batch row into the editor), so undo puts the row marker back too."""

_MERGE_IDS = {"temperature": 1, "label_smoothing": 2}
_LABELS = {
    "logits": "logits",
    "class_names": "class names",
    "temperature": "temperature",
    "dtype": "dtype",
    "device": "device",
    "chart_view": "chart view",
    "target": "target",
    "label_smoothing": "label smoothing",
    "batch_dim": "batch dim",
    "selected_row": "row",
}


def _equal(a: Any, b: Any) -> bool:
    """Same value, NaN equal to NaN (logits may hold NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=True))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "none" if value is None else str(value)


def describe(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A short text for an undo step: ``temperature 0.5``, ``dtype float16``, ``edit logits``."""
    names = [n for n in TRACKED if n in new]
    row = new.get("selected_row")
    if "selected_row" in new and row is not None and "logits" in new:
        return f"load batch row {row}"
    if names == ["logits"] or (set(names) <= {"logits", "target"} and "logits" in names):
        if len(new["logits"]) != len(old["logits"]):
            return f"{len(new['logits'])} classes"
        return "edit logits"
    if names == ["class_names"]:
        return "rename classes"
    if {"logits", "class_names"} <= set(names):
        return "replace the vector"
    if len(names) == 1:
        name = names[0]
        if name == "target" and new["target"] is not None:
            return f"target {new['target']}"
        return f"{_LABELS[name]} {_fmt(new[name])}"
    return "change " + ", ".join(_LABELS[n] for n in names)


class SessionChange(QUndoCommand):
    """One undoable change: old and new values of the fields it touched."""

    def __init__(self, recorder: UndoRecorder, old: dict[str, Any], new: dict[str, Any]) -> None:
        super().__init__(describe(old, new))
        self.recorder = recorder
        self.old = old
        self.new = new
        self.last_time = recorder.clock()
        self.sealed = False
        self._pushed = False
        fields = set(new)
        self._id = (
            _MERGE_IDS[next(iter(fields))] if len(fields) == 1 and fields <= set(_MERGE_IDS) else -1
        )

    def id(self) -> int:
        return self._id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SessionChange) or other.id() != self._id or self.sealed:
            return False
        if other.last_time - self.last_time > MERGE_WINDOW_S:
            return False
        self.new = other.new
        self.last_time = other.last_time
        self.setText(describe(self.old, self.new))
        # A drag that came back to where it started is no step at all.
        self.setObsolete(all(_equal(self.old[k], self.new[k]) for k in self.new))
        return True

    def redo(self) -> None:
        if not self._pushed:  # QUndoStack.push calls redo(): the change already happened
            self._pushed = True
            return
        self.recorder.apply(self.new)

    def undo(self) -> None:
        self.recorder.apply(self.old)


class UndoRecorder(QObject):
    """Records a session's intent changes on :attr:`stack`.

    Parameters
    ----------
    session
        The session to watch (and to write back on undo/redo).
    parent
        Usual Qt parent (the window).
    clock
        Seconds, monotonic; injectable so merge timing can be tested without waiting.
    """

    def __init__(
        self,
        session: Session,
        parent: QObject | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("undoRecorder")
        self.session = session
        self.clock = clock
        self.stack = QUndoStack(self)
        self.stack.setObjectName("undoStack")
        # Each step keeps its vectors (shared with the next step): 100 steps of a
        # 262,144-class vocabulary are ~200 MB at worst.
        self.stack.setUndoLimit(UNDO_LIMIT)
        self._snapshot = self._current()
        self._applying = 0
        self._suspended = 0
        session.changed.connect(self._on_changed)
        self.destroyed.connect(lambda: session.changed.disconnect(self._on_changed))

    def _current(self) -> dict[str, Any]:
        return {name: getattr(self.session, name) for name in TRACKED}

    def _on_changed(self, names: frozenset[str]) -> None:
        touched = [n for n in TRACKED if n in names]
        if not touched:
            return
        old = {n: self._snapshot[n] for n in touched}
        new = {n: getattr(self.session, n) for n in touched}
        self._snapshot.update(new)
        if self._applying or self._suspended:
            return
        if not any(n in INTENT_FIELDS for n in touched):
            return  # e.g. a batch was opened and the row marker cleared: not an edit
        self.stack.push(SessionChange(self, old, new))

    def apply(self, values: dict[str, Any]) -> None:
        """Write ``values`` into the session (undo/redo) without recording it again."""
        ordered = {n: values[n] for n in TRACKED if n in values}
        row = ordered.get("selected_row")
        batch = self.session.batch
        if row is not None and (batch is None or not 0 <= row < batch.data.shape[0]):
            ordered["selected_row"] = None  # that batch is gone: no row to mark
        self._applying += 1
        try:
            try:
                self.session.update(**ordered)
            except InvalidInputError:
                # Only if something changed the session unrecorded (the target no
                # longer fits the classes): keep the rest of the step.
                ordered["target"] = None
                self.session.update(**ordered)
        finally:
            self._applying -= 1

    def seal(self) -> None:
        """End the current drag: the next temperature change starts a new undo step."""
        index = self.stack.index()
        if index > 0:
            command = self.stack.command(index - 1)
            if isinstance(command, SessionChange):
                command.sealed = True

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Changes made inside are not recorded (opening a session, a new session)."""
        self._suspended += 1
        try:
            yield
        finally:
            self._suspended -= 1

    def reset(self) -> None:
        """Forget the history (a session was opened or a new one started)."""
        self.stack.clear()
        self.stack.setClean()
        self._snapshot = self._current()
