"""The soak of the window (issue 6): a seeded random walk of user actions through the real
widgets, replayed as intent on a plain :class:`~softmax_lab.app.session.Session`.

:class:`Soak` drives the window as a person does (key clicks and typing in the logit
table, slider keys, combo boxes from the keyboard, menu actions, drops, File → Open with
the file dialog stubbed, exports with the export dialog stubbed, Ctrl+Z / Ctrl+Y, F11,
Page Down in presenter mode). For each action it also writes the person's *intent* into
:class:`Model`, a Qt-free Session plus an undo history kept here (a list of steps, each the
old and new values of the fields one change touched, with an index). After every action
the window's session must hold exactly the model's intent fields, and the window's undo
stack must have the model's length and index, so a walk that diverges stops at the first
action that made it diverge.

The seed is :data:`DEFAULT_SEED` unless ``SOFTMAX_LAB_SOAK_SEED`` is set; every failure
names the seed, the action's index and kind, and the last actions before it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLabel,
    QSlider,
    QTableView,
)
from pytestqt.exceptions import TimeoutError as WaitTimeout

from softmax_lab.app.lecture import apply_scene, builtin_lecture_path, load_lecture
from softmax_lab.app.presets import PRESETS, preset
from softmax_lab.app.session import CHART_VIEWS, LoadedBatch, Session
from softmax_lab.app.undo import UNDO_LIMIT
from softmax_lab.compute.dtypes import DTYPE_NAMES
from softmax_lab.widgets import dialogs, export_dialog
from softmax_lab.widgets.export_dialog import ChartRequest, TableRequest
from softmax_lab.widgets.loss_panel import SMOOTHING_MAX_STEP
from softmax_lab.widgets.presenter_view import temperature_step
from softmax_lab.widgets.temperature_control import (
    KEY_STEP,
    PAGE_STEP,
    SLIDER_MAX,
    SLIDER_MIN,
    format_temperature,
    position_to_temperature,
    temperature_to_position,
)
from tests.app.window_helpers import (
    WAIT_MS,
    click_cell,
    drop_file,
    find,
    table_texts,
    type_into_cell,
)
from tests.qt_helpers import top_level_widgets

DEFAULT_SEED = 20261123
SEED_ENV = "SOFTMAX_LAB_SOAK_SEED"
CTRL = Qt.KeyboardModifier.ControlModifier
ALT = Qt.KeyboardModifier.AltModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
# The offscreen platform plugin says this whenever a window goes fullscreen; nothing else
# Qt says is ignored.
IGNORED_QT_MESSAGES = ("This plugin does not support propagateSizeHints()",)

# Undo-recorded fields, in the order undo writes them (logits before the target it is checked
# against); ``selected_row`` only rides along with an intent field.
TRACKED = (
    "logits",
    "class_names",
    "temperature",
    "dtype",
    "device",
    "chart_view",
    "target",
    "label_smoothing",
    "batch_dim",
    "selected_row",
)
INTENT = frozenset(TRACKED) - {"selected_row"}
MAX_CLASSES_TO_GROW = 40
"""The walk adds classes only below this count (it is a soak, not a size test)."""


def seed_from_env() -> int:
    text = os.environ.get(SEED_ENV, "").strip()
    return int(text) if text else DEFAULT_SEED


def rss_bytes() -> int:
    """The resident set size of this process (Linux: VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def process_deferred_deletes() -> None:
    """Let queued events and deleteLater() calls run (twice: a deletion may queue another)."""
    for _ in range(3):
        QApplication.processEvents()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _in_label_text_control(obj: QObject) -> bool:
    """Whether ``obj`` belongs to a QLabel's private text control.

    A QLabel whose text is selectable creates a QWidgetTextControl (a QObject with a
    QTextDocument, its layout and root frame: 6 QObjects) the first time it shows text, and
    may drop it when the text changes again. One per label at most: a cache, not a leak.
    """
    if obj.isWidgetType():
        return False
    while not obj.isWidgetType():
        parent = obj.parent()
        if parent is None:
            return False
        obj = parent
    return isinstance(obj, QLabel)


def object_counts(window: Any) -> tuple[int, int]:
    """QObjects under the window (without the labels' text controls, see
    :func:`_in_label_text_control`), and the application's top-level widgets."""
    counted = [o for o in window.findChildren(QObject) if not _in_label_text_control(o)]
    return len(counted), len(top_level_widgets())


def label_text_controls(window: Any) -> tuple[int, int]:
    """QObjects in labels' text controls, and the labels that may hold one (selectable text)."""
    selectable = Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
    labels = [lab for lab in window.findChildren(QLabel) if lab.textInteractionFlags() & selectable]
    controls = [o for o in window.findChildren(QObject) if _in_label_text_control(o)]
    return len(controls), len(labels)


@contextlib.contextmanager
def qt_messages() -> Iterator[list[str]]:
    """Collect Qt's warnings, criticals and fatals (``"level: text"``) while the block runs.

    Messages are passed on to the handler that was installed before (pytest-qt's), and
    that handler is restored afterwards.
    """
    seen: list[str] = []
    levels = {
        QtMsgType.QtWarningMsg: "warning",
        QtMsgType.QtCriticalMsg: "critical",
        QtMsgType.QtFatalMsg: "fatal",
    }
    previous: Any = None

    def handler(kind: QtMsgType, context: Any, text: str) -> None:
        if kind in levels and not any(text.startswith(i) for i in IGNORED_QT_MESSAGES):
            seen.append(f"{levels[kind]}: {text}")
        if previous is not None:
            previous(kind, context, text)

    previous = qInstallMessageHandler(handler)
    try:
        yield seen
    finally:
        qInstallMessageHandler(previous)


# ---------------------------------------------------------------------------------------
# The model: intent on a plain Session, and an undo history of its own


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=True))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def _bits(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64).tobytes()


def batch_key(batch: LoadedBatch | None) -> Any:
    """What identifies a loaded batch for the comparison: its file, array, values, names, targets."""
    if batch is None:
        return None
    targets = None if batch.targets is None else np.asarray(batch.targets).tolist()
    return (
        None if batch.path is None else str(batch.path),
        tuple(batch.data.shape),
        _bits(batch.data),
        batch.class_names,
        targets,
    )


def intent_of(session: Session) -> dict[str, Any]:
    """The session's intent fields (and batch identity), compared exactly (logits by bits)."""
    out: dict[str, Any] = {name: getattr(session, name) for name in TRACKED}
    out["logits"] = (session.logits.shape, _bits(session.logits))
    out["batch"] = batch_key(session.batch)
    return out


def describe_difference(window_state: dict[str, Any], model_state: dict[str, Any]) -> str:
    lines = []
    for name in model_state:
        if window_state[name] != model_state[name]:
            w, m = window_state[name], model_state[name]
            if name == "logits":
                w, m = f"{w[0]} classes", f"{m[0]} classes"
            elif name == "batch":
                w = None if w is None else (w[0], w[1], w[3])
                m = None if m is None else (m[0], m[1], m[3])
            lines.append(f"  {name}: window {w!r} != model {m!r}")
    return "\n".join(lines)


@dataclass
class Step:
    old: dict[str, Any]
    new: dict[str, Any]


class Model:
    """The person's intent applied to a plain Session, with undo/redo kept as a list here.

    An action that changes intent fields (one ``changed`` emission of the session) is one
    step: the old and new values of the tracked fields it touched. Undo writes a step's
    old values back, redo its new ones; a new step drops the steps after the index; at most
    :data:`~softmax_lab.app.undo.UNDO_LIMIT` steps are kept. A row marker written back by
    undo or redo is dropped when the batch now open has no such row.
    """

    def __init__(self) -> None:
        self.session = Session()
        self.steps: list[Step] = []
        self.index = 0
        self.lecture: Any = None
        self.scene = -1
        self._touched: list[frozenset[str]] = []
        self.session.changed.connect(self._touched.append)

    def intent(self) -> dict[str, Any]:
        return intent_of(self.session)

    @contextlib.contextmanager
    def action(self) -> Iterator[Session]:
        """Apply one action's intent to the session; record it as a step if it changed any."""
        before = {name: getattr(self.session, name) for name in TRACKED}
        self._touched.clear()
        yield self.session
        touched = frozenset().union(*self._touched) if self._touched else frozenset()
        self._touched.clear()
        names = [n for n in TRACKED if n in touched]
        if not any(n in INTENT for n in names):
            return
        new = {n: getattr(self.session, n) for n in names}
        old = {n: before[n] for n in names}
        del self.steps[self.index :]
        self.steps.append(Step(old, new))
        if len(self.steps) > UNDO_LIMIT:
            del self.steps[0]
        self.index = len(self.steps)

    def _write_back(self, values: dict[str, Any]) -> None:
        ordered = {n: values[n] for n in TRACKED if n in values}
        row = ordered.get("selected_row")
        batch = self.session.batch
        if row is not None and (batch is None or not 0 <= row < batch.data.shape[0]):
            ordered["selected_row"] = None
        self.session.update(**ordered)

    def undo(self) -> None:
        if self.index > 0:
            self.index -= 1
            self._write_back(self.steps[self.index].old)

    def redo(self) -> None:
        if self.index < len(self.steps):
            self._write_back(self.steps[self.index].new)
            self.index += 1

    def forget_history(self) -> None:
        self.steps.clear()
        self.index = 0

    # -- lectures (the scene index lives in the lecture feature, not in the session) --------

    def go_to(self, index: int) -> None:
        assert self.lecture is not None
        with self.action() as s:
            apply_scene(s, self.lecture.scenes[index])
        self.scene = index


# ---------------------------------------------------------------------------------------
# The files the walk opens


@dataclass(frozen=True)
class GoodFile:
    path: Path
    data: np.ndarray
    class_names: tuple[str, ...] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    """For a container with several arrays: each array by name (the person picks one)."""


def make_files(folder: Path, rng: np.random.Generator) -> tuple[list[GoodFile], list[Path]]:
    """Batch files that open and files that must be refused, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    good: list[GoodFile] = []
    for k, (rows, classes) in enumerate(((4, 5), (7, 3), (3, 10))):
        data = rng.normal(0.0, 3.0, (rows, classes)).astype(np.float32)
        path = folder / f"logits{k}.npy"
        np.save(path, data)
        good.append(GoodFile(path, data))
    vector = rng.normal(0.0, 2.0, 6)  # a 1-D file is one row
    np.save(folder / "vector.npy", vector)
    good.append(GoodFile(folder / "vector.npy", vector.reshape(1, -1)))
    names = ("cat", "dog", "bird", "fish")
    table = np.round(rng.normal(0.0, 2.0, (5, 4)), 2)
    lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in table]
    (folder / "scores.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    good.append(GoodFile(folder / "scores.csv", table, names))
    first = rng.normal(0.0, 1.0, (2, 3))
    second = rng.normal(0.0, 1.0, (5, 4))
    np.savez(folder / "two.npz", first=first, second=second)
    good.append(GoodFile(folder / "two.npz", first, arrays={"first": first, "second": second}))

    bad = []
    garbage = folder / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY" + bytes(range(256)) * 4)
    bad.append(garbage)
    pickled = folder / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    bad.append(pickled)
    words = folder / "words.csv"
    words.write_text("a,b\nfoo,bar\nbaz,qux\n", encoding="utf-8")
    bad.append(words)
    empty = folder / "empty.npy"
    empty.write_bytes(b"")
    bad.append(empty)
    truncated = folder / "truncated.npz"
    truncated.write_bytes((folder / "two.npz").read_bytes()[:100])
    bad.append(truncated)
    return good, bad


def check_export(path: Path, suffix: str, num_classes: int) -> None:
    """The file an export wrote is there and complete (parsed back where it can be)."""
    assert path.is_file(), f"export wrote no {path.name}"
    data = path.read_bytes()
    assert data, f"{path.name} is empty"
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82"), path.name
    elif suffix == ".svg":
        root = ET.fromstring(data)  # a truncated file does not parse
        assert root.tag.endswith("svg"), path.name
    elif suffix == ".pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), path.name
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        assert len(rows) > num_classes, (path.name, len(rows), num_classes)
    elif suffix == ".json":
        json.loads(data)
    elif suffix == ".md":
        rows = [line for line in data.decode("utf-8").splitlines() if line.startswith("|")]
        assert len(rows) >= num_classes + 2, (path.name, len(rows), num_classes)
    elif suffix == ".tex":
        text = data.decode("utf-8")
        assert text.count("\\\\") >= num_classes and "\\end{" in text, path.name
    else:
        raise AssertionError(f"unexpected export suffix {suffix}")


# ---------------------------------------------------------------------------------------
# The driver


@dataclass
class SoakFailure(AssertionError):
    message: str

    def __str__(self) -> str:
        return self.message


class Soak:
    """Drive ``window`` with a seeded random walk, keeping :class:`Model` in step.

    Parameters
    ----------
    window
        The real main window (inline controller: every job has finished when the event
        that caused it returns).
    qtbot, monkeypatch
        pytest-qt's bot; the monkeypatch that stubs the file and export dialogs.
    folder
        Where the walk's files and exports go.
    seed
        Seeds the walk (numpy Generator).
    """

    def __init__(self, window: Any, qtbot: Any, monkeypatch: Any, folder: Path, seed: int) -> None:
        self.window = window
        self.qtbot = qtbot
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.model = Model()
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.history: deque[str] = deque(maxlen=15)
        self.folder = folder
        self.good, self.bad = make_files(folder / "files", np.random.default_rng(seed + 1))
        self.exports: list[Path] = []
        self.export_count = 0
        self.builtin = load_lecture(builtin_lecture_path())
        self.table: QTableView = find(window, QTableView, "logitTable")
        self.slider: QSlider = find(window, QSlider, "temperatureSlider")
        self.smoothing: QSlider = find(window, QSlider, "labelSmoothingSlider")
        self.lectures = window.lecture_actions
        self.sessions = window.sessions

        # Undo steps are cut by time (slider writes less than 1 s apart merge): a clock
        # that moves 10 s between actions (and stands still within one) makes the walk
        # replayable; a drag within one action is one step, as for a person.
        self.clock = 0.0
        self.sessions.undo.clock = lambda: self.clock

        # Dialogs: what the person answers is decided by the walk.
        self.next_open: Path | None = None
        self.next_choice: str | None = None
        self.next_chart: ChartRequest | None = None
        self.next_table: TableRequest | None = None
        self.next_confirm = True
        self.asked: list[str] = []
        monkeypatch.setattr(dialogs, "ask_open_path", self._ask_open_path)
        monkeypatch.setattr(dialogs, "ask_choice", self._ask_choice)
        monkeypatch.setattr(export_dialog, "ask_chart_export", self._ask_chart)
        monkeypatch.setattr(export_dialog, "ask_table_export", self._ask_table)
        monkeypatch.setattr(export_dialog, "confirm_overwrite", self._confirm)

        self.main_actions: dict[str, tuple[float, Callable[[], str]]] = {
            "edit logit": (12, self.edit_logit),
            "refused logit": (3, self.refused_logit),
            "rename class": (3, self.rename_class),
            "add class": (3, self.add_class),
            "remove class": (3, self.remove_class),
            "move class": (3, self.move_class),
            "preset": (5, self.choose_preset),
            "temperature slider": (10, self.drag_temperature),
            "temperature typed": (4, self.type_temperature),
            "temperature reset": (2, self.reset_temperature),
            "dtype": (5, self.choose_dtype),
            "device": (4, self.choose_device),
            "chart view": (4, self.choose_chart_view),
            "panel": (3, self.choose_panel),
            "target": (4, self.choose_target),
            "label smoothing": (3, self.drag_smoothing),
            "open good file": (4, self.open_good_file),
            "open bad file": (3, self.open_bad_file),
            "batch dim": (3, self.choose_batch_dim),
            "batch row": (4, self.choose_batch_row),
            "export chart": (2, self.export_chart),
            "export table": (2, self.export_table),
            "undo": (10, self.undo),
            "redo": (6, self.redo),
            "enter presenter": (3, self.enter_presenter),
            "open lecture": (1, self.open_lecture),
            "new session": (1, self.new_session),
            "close message": (2, self.close_message),
        }
        self.presenter_actions: dict[str, tuple[float, Callable[[], str]]] = {
            "presenter next": (5, lambda: self.presenter_key("next")),
            "presenter previous": (3, lambda: self.presenter_key("previous")),
            "presenter first": (1, lambda: self.presenter_key("first")),
            "presenter last": (1, lambda: self.presenter_key("last")),
            "presenter T up": (1.5, lambda: self.presenter_key("up")),
            "presenter T down": (1.5, lambda: self.presenter_key("down")),
            "presenter reset": (1, lambda: self.presenter_key("reset")),
            "leave presenter": (2, self.leave_presenter),
        }

    # -- dialog stand-ins ------------------------------------------------------------------

    def _ask_open_path(self, parent: Any, title: str, *args: Any, **kwargs: Any) -> str | None:
        self.asked.append(title)
        path, self.next_open = self.next_open, None
        return None if path is None else str(path)

    def _ask_choice(self, parent: Any, title: str, text: str, choices: list[str]) -> str | None:
        self.asked.append(title)
        if self.next_choice is None:
            return None
        return next(c for c in choices if c.startswith(self.next_choice + " "))

    def _ask_chart(self, parent: Any, initial: ChartRequest, unavailable: Any = None) -> Any:
        self.asked.append("chart export")
        request, self.next_chart = self.next_chart, None
        if request is None:
            return None
        return ChartRequest(request.path, replace(initial.options))

    def _ask_table(self, parent: Any, initial: TableRequest) -> Any:
        self.asked.append("table export")
        request, self.next_table = self.next_table, None
        if request is None:
            return None
        return TableRequest(request.path, initial.kind, request.fmt)

    def _confirm(self, parent: Any, path: Any) -> bool:
        self.asked.append("confirm")
        return self.next_confirm

    # -- walking ---------------------------------------------------------------------------

    @property
    def presenting(self) -> bool:
        return self.lectures.presenter is not None

    def run(self, count: int) -> None:
        """Take ``count`` more actions, checking the window against the model after each."""
        for _ in range(count):
            actions = self.presenter_actions if self.presenting else self.main_actions
            names = list(actions)
            weights = np.array([actions[n][0] for n in names], dtype=np.float64)
            kind = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
            index = self.done
            try:
                detail = actions[kind][1]()
                QApplication.processEvents()  # the event loop turns between a person's actions
                self.history.append(f"{index}: {kind} {detail}")
                self.check()
            except BaseException as exc:
                raise SoakFailure(
                    f"soak seed {self.seed} failed at action {index} ({kind}): {exc}\n"
                    f"repeat with {SEED_ENV}={self.seed}; the last actions were:\n  "
                    + "\n  ".join(self.history)
                ) from exc
            self.counts[kind] += 1
            self.done += 1
            self.clock += 10.0

    def check(self) -> None:
        """The window holds the model's intent, undo history and displays it consistently."""
        w = self.window
        window_state, model_state = intent_of(w.session), self.model.intent()
        if window_state != model_state:
            raise AssertionError(
                "the window's session differs from the model:\n"
                + describe_difference(window_state, model_state)
            )
        stack = self.sessions.undo.stack
        assert (stack.count(), stack.index()) == (len(self.model.steps), self.model.index), (
            f"undo stack {stack.count()} steps at {stack.index()}, model "
            f"{len(self.model.steps)} at {self.model.index}"
        )
        s = w.session
        assert w.options.dtype_combo.currentData() == s.dtype
        assert w.options.device_combo.currentData() == s.device
        assert s.device != "cuda", "the disabled cuda entry was chosen"
        assert w.temperature.value_label.text() == format_temperature(s.temperature)
        assert w.chart.view_combo.currentText() == s.chart_view
        assert self.table.model().rowCount() == s.num_classes
        assert self.table.state() != QAbstractItemView.State.EditingState
        assert self.lectures.current == self.model.scene
        presenter = self.lectures.presenter
        allowed = {id(w)} | ({id(presenter)} if presenter is not None else set())
        others = [
            f"{type(t).__name__}({t.objectName()!r})"
            for t in top_level_widgets()
            if t.isVisible() and id(t) not in allowed and not t.objectName().startswith("qt_")
        ]
        assert not others, f"top-level widgets open: {others}"

    def _combo_keys(self, combo: QComboBox, index: int, entered: Callable[[int], None]) -> int:
        """Move ``combo`` to entry ``index`` with the arrow keys, as a person does: every entry
        passed on the way is chosen for a moment (and is an undo step of its own), so
        ``entered`` records each one in the model. Returns the number of key presses."""
        combo.setFocus()
        presses = 0
        while combo.currentIndex() != index:
            current = combo.currentIndex()
            down = current < index
            self.qtbot.keyClick(combo, Qt.Key.Key_Down if down else Qt.Key.Key_Up)
            expected = current + (1 if down else -1)
            assert combo.currentIndex() == expected, (combo.objectName(), combo.currentIndex(), expected)
            entered(expected)
            presses += 1
        return presses

    def _pick(self, options: Any) -> Any:
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def _focus_main(self) -> None:
        """Make sure the main window has the keyboard (shortcuts go to the active window)."""
        if QApplication.activeWindow() is not self.window:
            self.window.activateWindow()
            try:
                self.qtbot.waitUntil(
                    lambda: QApplication.activeWindow() is self.window, timeout=WAIT_MS
                )
            except WaitTimeout as exc:
                # Seen once in a full run on a heavily loaded machine; say what held the
                # focus, so the next occurrence can be understood.
                raise WaitTimeout(f"{exc}; {self._focus_holders()}") from exc

    def _focus_holders(self) -> str:
        def name(w: Any) -> str:
            return "None" if w is None else f"{type(w).__name__}({w.objectName()!r})"

        visible = [name(t) for t in top_level_widgets() if t.isVisible()]
        return (
            f"active window {name(QApplication.activeWindow())}, popup "
            f"{name(QApplication.activePopupWidget())}, modal "
            f"{name(QApplication.activeModalWidget())}, focus {name(QApplication.focusWidget())}, "
            f"visible top-levels {visible}, main window visible {self.window.isVisible()}"
        )

    def _row(self) -> int:
        return int(self.rng.integers(self.window.session.num_classes))

    # -- the logit editor ------------------------------------------------------------------

    def edit_logit(self) -> str:
        row = self._row()
        roll = self.rng.random()
        if roll < 0.08:
            text = self._pick(["inf", "-inf", "nan", "1e4", "-1e3", "-0"])
        else:
            text = f"{self.rng.normal(0.0, 3.0):.2f}"
        type_into_cell(self.qtbot, self.table, row, 1, text)
        with self.model.action() as s:
            logits = s.logits.copy()
            logits[row] = float(text)
            s.set_vector(logits, s.class_names)
        return f"row {row} = {text}"

    def refused_logit(self) -> str:
        row = self._row()
        text = self._pick(["1_000", "abc", "1,5", "2..5", "0x10", "--1"])
        error = find(self.window, type(self.window.editor.error_label), "logitEditorError")
        editor = type_into_cell(self.qtbot, self.table, row, 1, text, accepted=False)
        QApplication.processEvents()
        assert self.table.state() == QAbstractItemView.State.EditingState, "a refused edit closed"
        assert error.isVisible() and text in error.text(), error.text()
        self.qtbot.keyClick(editor, Qt.Key.Key_Escape)
        assert error.isHidden()
        return f"row {row} = {text!r} (refused)"

    def rename_class(self) -> str:
        row = self._row()
        text = self._pick(["cat", "dog", "bird", " spaced name ", "class 0", "x", "token 7"])
        type_into_cell(self.qtbot, self.table, row, 0, text)
        with self.model.action() as s:
            names = list(s.class_names)
            names[row] = text.strip()
            s.set_vector(s.logits, names)
        return f"row {row} name {text!r}"

    def _select_row(self, row: int) -> None:
        click_cell(self.qtbot, self.table, row, int(self.rng.integers(2)))
        assert self.table.currentIndex().row() == row

    def add_class(self) -> str:
        s = self.window.session
        if s.num_classes >= MAX_CLASSES_TO_GROW:
            return self.remove_class()
        row = self._row()
        self._select_row(row)
        self.table.setFocus()
        self.qtbot.keyClick(self.table, Qt.Key.Key_Insert)
        with self.model.action() as m:
            n = m.num_classes
            k = n
            while f"class {k}" in m.class_names:
                k += 1
            target = m.target
            if target is not None and target > row:
                target += 1
            names = m.class_names[: row + 1] + (f"class {k}",) + m.class_names[row + 1 :]
            m.update(logits=np.insert(m.logits, row + 1, 0.0), class_names=names, target=target)
        return f"below row {row}"

    def remove_class(self) -> str:
        s = self.window.session
        row = self._row()
        self._select_row(row)
        self.table.setFocus()
        self.qtbot.keyClick(self.table, Qt.Key.Key_Delete)
        if s.num_classes == 1 and self.model.session.num_classes == 1:
            error = self.window.editor.error_label
            assert error.isVisible() and "at least one class" in error.text(), error.text()
            return "the last class (refused)"
        with self.model.action() as m:
            keep = np.ones(m.num_classes, dtype=bool)
            keep[row] = False
            target = m.target
            if target is not None:
                # the target stays on its class; if that class goes, on the next one
                target = min(target - int(target > row), m.num_classes - 2)
            names = tuple(n for n, k in zip(m.class_names, keep, strict=True) if k)
            m.update(logits=m.logits[keep], class_names=names, target=target)
        return f"row {row}"

    def move_class(self) -> str:
        row = self._row()
        up = bool(self.rng.integers(2))
        self._select_row(row)
        self.table.setFocus()
        self.qtbot.keyClick(self.table, Qt.Key.Key_Up if up else Qt.Key.Key_Down, ALT)
        other = row - 1 if up else row + 1
        if 0 <= other < self.model.session.num_classes:
            with self.model.action() as m:
                perm = np.arange(m.num_classes)
                perm[row], perm[other] = other, row
                target = m.target
                if target in (row, other):
                    target = other if target == row else row
                names = tuple(m.class_names[i] for i in perm)
                m.update(logits=m.logits[perm], class_names=names, target=target)
        return f"row {row} {'up' if up else 'down'}"

    def choose_preset(self) -> str:
        # The 262,144-class preset is left out: an inline soak of it measures compute, not leaks.
        keys = [p.key for p in PRESETS if p.key != "vocab262k"]
        weights = np.array([0.15 if k == "vocab50k" else 1.0 for k in keys])
        key = keys[int(self.rng.choice(len(keys), p=weights / weights.sum()))]
        menu = find(self.window, type(self.window.editor.presets_button), "presetsButton").menu()
        action = next(a for a in menu.actions() if a.objectName() == f"preset_{key}")
        action.trigger()
        logits, names = preset(key).make()
        with self.model.action() as s:
            s.set_vector(logits, names)
        return key

    # -- temperature -----------------------------------------------------------------------

    def drag_temperature(self) -> str:
        key, step = self._pick(
            [
                (Qt.Key.Key_Right, KEY_STEP),
                (Qt.Key.Key_Left, -KEY_STEP),
                (Qt.Key.Key_PageUp, PAGE_STEP),
                (Qt.Key.Key_PageDown, -PAGE_STEP),
                (Qt.Key.Key_Home, None),
                (Qt.Key.Key_End, None),
            ]
        )
        presses = 1 if step is None else int(self.rng.integers(1, 8))
        start = temperature_to_position(self.model.session.temperature)
        assert self.slider.value() == start, (self.slider.value(), start)
        self.slider.setFocus()
        for _ in range(presses):
            self.qtbot.keyClick(self.slider, key)
        if step is None:
            end = SLIDER_MIN if key == Qt.Key.Key_Home else SLIDER_MAX
        else:
            end = max(SLIDER_MIN, min(SLIDER_MAX, start + presses * step))
        assert self.slider.value() == end
        if end != start:
            expected = position_to_temperature(end)
            # The drag is throttled: its last position arrives on a timer.
            self.qtbot.waitUntil(lambda: self.window.session.temperature == expected, timeout=WAIT_MS)
            if presses > 1:
                # Nothing more may arrive after the last position: the throttle's timer
                # stops once it fires with nothing pending.
                timer = self.window.temperature._write_throttled.findChild(QTimer)
                self.qtbot.waitUntil(lambda: not timer.isActive(), timeout=WAIT_MS)
            with self.model.action() as s:
                s.temperature = expected
        return f"{key.name} x{presses}"

    def type_temperature(self) -> str:
        value = self._pick([0.05, 0.1, 0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 10.0, 50.0])
        spin = self.window.temperature.spin
        spin.setFocus()
        self.qtbot.keyClick(spin, Qt.Key.Key_A, CTRL)
        self.qtbot.keyClicks(spin, f"{value:g}")
        self.qtbot.keyClick(spin, Qt.Key.Key_Return)
        with self.model.action() as s:
            s.temperature = value
        return f"{value:g}"

    def reset_temperature(self) -> str:
        self.qtbot.mouseClick(self.window.temperature.reset_button, Qt.MouseButton.LeftButton)
        with self.model.action() as s:
            s.temperature = 1.0
        return ""

    # -- compute options and views -----------------------------------------------------------

    def choose_dtype(self) -> str:
        dtype = self._pick(DTYPE_NAMES)
        combo = self.window.options.dtype_combo

        def entered(index: int) -> None:
            with self.model.action() as s:
                s.dtype = DTYPE_NAMES[index]

        presses = self._combo_keys(combo, combo.findData(dtype), entered)
        return f"{dtype} ({presses} keys)"

    def choose_device(self) -> str:
        combo: QComboBox = self.window.options.device_combo
        down = bool(self.rng.integers(2))
        combo.setFocus()
        self.qtbot.keyClick(combo, Qt.Key.Key_Down if down else Qt.Key.Key_Up)
        # Only auto and cpu are enabled here (no CUDA): the keys skip the disabled entry.
        with self.model.action() as s:
            s.device = "cpu" if down else "auto"
        return "down" if down else "up"

    def choose_chart_view(self) -> str:
        view = self._pick(CHART_VIEWS)
        if self.rng.random() < 0.5:

            def entered(index: int) -> None:
                with self.model.action() as s:
                    s.chart_view = CHART_VIEWS[index]

            presses = self._combo_keys(self.window.chart.view_combo, CHART_VIEWS.index(view), entered)
            how = f"combo, {presses} keys"
        else:
            self._focus_main()
            self.qtbot.keyClick(self.window, Qt.Key(Qt.Key.Key_1 + CHART_VIEWS.index(view)), CTRL)
            how = "Ctrl+digit"
            with self.model.action() as s:
                s.chart_view = view
        return f"{view} ({how})"

    def choose_panel(self) -> str:
        index = int(self.rng.integers(4))
        self._show_panel(index)
        return str(index)

    def _show_panel(self, index: int) -> None:
        self._focus_main()
        self.qtbot.keyClick(self.window, Qt.Key(Qt.Key.Key_1 + index), ALT)
        assert self.window.tabs.currentIndex() == index

    def choose_target(self) -> str:
        from softmax_lab.app.main_window import TAB_LOSS

        self._show_panel(TAB_LOSS)
        combo: QComboBox = self.window.loss.target_combo
        n = self.window.session.num_classes
        target = None if self.rng.random() < 0.15 else int(self.rng.integers(n))
        index = 0 if target is None else target + 1
        if combo.isEditable() or abs(combo.currentIndex() - index) > 12:
            combo.setCurrentIndex(index)  # thousands of classes: nobody presses Down 4,000 times
            how = "setCurrentIndex"
            with self.model.action() as s:
                s.target = target
        else:

            def entered(k: int) -> None:
                with self.model.action() as s:
                    s.target = None if k == 0 else k - 1

            how = f"{self._combo_keys(combo, index, entered)} keys"
        return f"{target} ({how})"

    def drag_smoothing(self) -> str:
        from softmax_lab.app.main_window import TAB_LOSS

        self._show_panel(TAB_LOSS)
        key, step = self._pick(
            [(Qt.Key.Key_Right, 1), (Qt.Key.Key_Left, -1), (Qt.Key.Key_PageUp, 5), (Qt.Key.Key_PageDown, -5)]
        )
        presses = int(self.rng.integers(1, 5))
        start = min(round(self.model.session.label_smoothing * 100), SMOOTHING_MAX_STEP)
        assert self.smoothing.value() == start
        self.smoothing.setFocus()
        for _ in range(presses):
            self.qtbot.keyClick(self.smoothing, key)
        end = max(0, min(SMOOTHING_MAX_STEP, start + presses * step))
        if end != start:
            with self.model.action() as s:
                s.label_smoothing = end / 100
        return f"{key.name} x{presses}"

    # -- files -----------------------------------------------------------------------------

    def _open(self, path: Path) -> str:
        how = self._pick(["drop", "Ctrl+O", "File menu"])
        if how == "drop":
            assert drop_file(self.window, path) == (True, True)
        else:
            self.next_open = path
            if how == "Ctrl+O":
                self._focus_main()
                self.qtbot.keyClick(self.window, Qt.Key.Key_O, CTRL)
            else:
                self.window.open_action.trigger()
            assert self.next_open is None, "File → Open did not ask for a file"
        return how

    def open_good_file(self) -> str:
        file = self._pick(self.good)
        data, name = file.data, None
        if file.arrays:
            name = self._pick([*file.arrays, None])  # None: the person cancels the question
            self.next_choice = name
        how = self._open(file.path)
        if file.arrays and name is None:
            return f"{file.path.name} via {how}, no array chosen"
        if name is not None:
            data = file.arrays[name]
        with self.model.action() as s:
            s.batch = LoadedBatch(data=data, path=file.path, class_names=file.class_names)
            s.selected_row = None
        message = self.window.session.message
        assert message is not None and message.level == "info", message
        return f"{file.path.name} via {how}" + (f" array {name}" if name else "")

    def open_bad_file(self) -> str:
        path = self._pick([*self.bad, self.folder / "files" / "notes.docx"])
        if path.suffix == ".docx":
            path.write_bytes(b"PK\x03\x04")
            assert drop_file(self.window, path) == (False, False)
            return "notes.docx (drag refused)"
        how = self._open(path)
        message = self.window.session.message
        assert message is not None and message.level == "error", message
        assert path.name in message.text and "Traceback" not in message.text, message.text
        return f"{path.name} via {how}"

    def choose_batch_dim(self) -> str:
        from softmax_lab.app.main_window import TAB_BATCH

        if self.window.session.batch is None:
            return "no batch: " + self.open_good_file()
        self._show_panel(TAB_BATCH)
        combo: QComboBox = find(self.window, QComboBox, "dimCombo")
        dim = int(self.rng.integers(2))

        def entered(index: int) -> None:
            with self.model.action() as s:
                s.batch_dim = int(combo.itemData(index))

        presses = self._combo_keys(combo, combo.findData(dim), entered)
        return f"dim={dim} ({presses} keys)"

    def choose_batch_row(self) -> str:
        from softmax_lab.app.main_window import TAB_BATCH

        batch = self.window.session.batch
        if batch is None:
            return "no batch: " + self.open_good_file()
        self._show_panel(TAB_BATCH)
        rows = find(self.window, QTableView, "batchRowTable")
        row = int(self.rng.integers(batch.data.shape[0]))
        click_cell(self.qtbot, rows, table_texts(rows, 0).index(str(row)), 0)
        with self.model.action() as s:
            mb = s.batch
            assert mb is not None
            target = None
            if mb.targets is not None:
                t = int(mb.targets[row])
                target = t if 0 <= t < mb.data.shape[1] else None
            with s.updating():
                s.set_vector(np.asarray(mb.data[row], dtype=np.float64), mb.class_names or None)
                s.target = target
                s.selected_row = row
        return f"row {row}"

    # -- export ------------------------------------------------------------------------------

    def _export_path(self, suffixes: list[str]) -> tuple[Path, bool]:
        """A new file name, or (one time in four) one already written: overwrite or not."""
        existing = [p for p in self.exports if p.suffix in suffixes]
        if existing and self.rng.random() < 0.25:
            return self._pick(existing), True
        self.export_count += 1
        path = self.folder / "exports" / f"export{self.export_count}{self._pick(suffixes)}"
        path.parent.mkdir(exist_ok=True)
        return path, False

    def _export(self, kind: str) -> str:
        suffixes = [".png", ".svg", ".pdf"] if kind == "chart" else [".csv", ".md", ".tex", ".json"]
        path, exists = self._export_path(suffixes)
        before = path.read_bytes() if exists else None
        self.next_confirm = bool(self.rng.integers(2))
        if kind == "chart":
            self.next_chart = ChartRequest(str(path))
            action = self.window.export_actions.chart_action
        else:
            fmt = export_dialog.TABLE_FORMATS[path.suffix]
            self.next_table = TableRequest(str(path), "probabilities", fmt)
            action = self.window.export_actions.table_action
        if self.rng.random() < 0.5:
            self._focus_main()
            mods = CTRL if kind == "chart" else CTRL_SHIFT
            self.qtbot.keyClick(self.window, Qt.Key.Key_E, mods)
        else:
            action.trigger()
        assert self.next_chart is None and self.next_table is None, "the export asked nothing"
        if exists and not self.next_confirm:
            assert path.read_bytes() == before, f"{path.name} changed though replacing it was declined"
            return f"{path.name} (kept the old file)"
        check_export(path, path.suffix, self.window.session.num_classes)
        message = self.window.session.message
        assert message is not None and message.level == "info", message
        if not exists:
            self.exports.append(path)
        return path.name + (" (replaced)" if exists else "")

    def export_chart(self) -> str:
        return self._export("chart")

    def export_table(self) -> str:
        return self._export("table")

    # -- undo ----------------------------------------------------------------------------------

    def _undo_key(self, key: Qt.Key, mods: Qt.KeyboardModifier) -> None:
        self._focus_main()
        # A line edit with the focus (the temperature box) takes Ctrl+Z for its own text: a
        # person clicks into the table first.
        self.table.setFocus()
        self.qtbot.keyClick(self.table, key, mods)

    def undo(self) -> str:
        if self.rng.random() < 0.5:
            self._undo_key(Qt.Key.Key_Z, CTRL)
            how = "Ctrl+Z"
        else:
            self.sessions.undo_action.trigger()
            how = "Edit → Undo"
        self.model.undo()
        return how

    def redo(self) -> str:
        roll = self.rng.random()
        if roll < 0.33:
            self._undo_key(Qt.Key.Key_Z, CTRL_SHIFT)
            how = "Ctrl+Shift+Z"
        elif roll < 0.66:
            self._undo_key(Qt.Key.Key_Y, CTRL)
            how = "Ctrl+Y"
        else:
            self.sessions.redo_action.trigger()
            how = "Edit → Redo"
        self.model.redo()
        return how

    def new_session(self) -> str:
        self._focus_main()
        self.qtbot.keyClick(self.window, Qt.Key.Key_N, CTRL)
        s = self.model.session
        defaults = {name: getattr(Session, name).default for name in TRACKED if name != "selected_row"}
        s.update(**defaults, batch=None, selected_row=None)
        self.model.forget_history()
        return ""

    def close_message(self) -> str:
        bar = self.window.message_bar
        if not bar.isVisible():
            return "(no message)"
        self.qtbot.mouseClick(bar.close_button, Qt.MouseButton.LeftButton)
        assert not bar.isVisible()
        return ""

    # -- lectures and presenter mode ---------------------------------------------------------------

    def open_lecture(self) -> str:
        self.lectures.builtin_action.trigger()
        self.model.lecture = self.builtin
        self.model.go_to(0)
        return self.builtin.title

    def enter_presenter(self) -> str:
        self._focus_main()
        self.qtbot.keyClick(self.window, Qt.Key.Key_F11)
        presenter = self.lectures.presenter
        assert presenter is not None, "F11 did not open presenter mode"
        self.qtbot.waitUntil(
            lambda: presenter.isVisible() and QApplication.focusWidget() is presenter, timeout=WAIT_MS
        )
        if self.model.lecture is not None and self.model.scene < 0:
            self.model.go_to(0)
        return ""

    def presenter_key(self, what: str) -> str:
        keys = {
            "next": [Qt.Key.Key_PageDown, Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Space],
            "previous": [Qt.Key.Key_PageUp, Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_Backspace],
            "first": [Qt.Key.Key_Home],
            "last": [Qt.Key.Key_End],
            "up": [Qt.Key.Key_Plus, Qt.Key.Key_Equal],
            "down": [Qt.Key.Key_Minus, Qt.Key.Key_Underscore],
            "reset": [Qt.Key.Key_R],
        }[what]
        key = self._pick(keys)
        target = QApplication.focusWidget()
        assert target is self.lectures.presenter, f"the presenter lost the keyboard to {target!r}"
        self.qtbot.keyClick(target, key)
        m = self.model
        lecture = m.lecture
        if what in ("up", "down"):
            new = temperature_step(m.session.temperature, up=what == "up")
            if not math.isclose(new, m.session.temperature):
                with m.action() as s:
                    s.temperature = new
        elif lecture is None:
            if what in ("next", "previous"):
                delta = 1 if what == "next" else -1
                views = CHART_VIEWS
                with m.action() as s:
                    s.chart_view = views[(views.index(s.chart_view) + delta) % len(views)]
        elif what == "next" and m.scene < len(lecture) - 1:
            m.go_to(m.scene + 1)
        elif what == "previous" and m.scene > 0:
            m.go_to(m.scene - 1)
        elif what == "first":
            m.go_to(0)
        elif what == "last":
            m.go_to(len(lecture) - 1)
        elif what == "reset" and m.scene >= 0:
            m.go_to(m.scene)
        return f"{key.name} (scene {m.scene})"

    def leave_presenter(self) -> str:
        presenter = self.lectures.presenter
        key = self._pick([Qt.Key.Key_Escape, Qt.Key.Key_F11])
        self.qtbot.keyClick(QApplication.focusWidget() or presenter, key)
        self.qtbot.waitUntil(lambda: self.lectures.presenter is None, timeout=WAIT_MS)
        self._focus_main()
        return key.name

    # -- the end -----------------------------------------------------------------------------

    def settle(self) -> None:
        """Leave presenter mode and start a new session (the model too): the state in which
        memory and object counts are compared, free of the undo history's vectors."""
        if self.presenting:
            self.leave_presenter()
        self.new_session()
        self.history.append(f"{self.done}: settle")
        self.check()
        process_deferred_deletes()
