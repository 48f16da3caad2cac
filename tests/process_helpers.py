"""Running the real app in a child process, and reading back what it left on disk.

Shared by tests/test_exit.py and tests/test_nothing_lost.py (and usable by any
test that starts ``softmax-lab``): the console script, an environment that keeps
the child's settings, autosaves and log in a folder of the test's own, the
stderr filter, and checks of files that must be complete or absent.

Run as ``python -m tests.process_helpers JOURNAL WORKDIR`` it is the *editing
driver* of tests/test_nothing_lost.py: the real window (``launch_window``, as
``softmax-lab`` starts it) with a timer that edits the session the way a person
dragging the temperature and typing logits would, saves the session file and
exports a chart over and over, and autosaves after 40 ms instead of 3 s. It only
injects behaviour from outside (wrapping module functions); nothing in the app
knows it is being driven. Each step is appended to JOURNAL (one line per
``os.write``, so a SIGKILL cannot lose a line already written), which tells the
test what the process was doing when it was killed.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

SCRIPT = Path(sys.executable).parent / "softmax-lab"
ACCEPTED_STDERR = ("This plugin does not support propagateSizeHints()",)
"""The offscreen platform says this for every top-level window; it says nothing about the app."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]

# -- the editing driver's plan ---------------------------------------------------------------
EDIT_MS = 15
"""A change every 15 ms: a temperature drag delivers about that many."""
AUTOSAVE_MS = 40
"""The driver's autosave delay (the app's is 3 s): many autosaves within a short run."""
SAVE_EVERY = 4
EXPORT_EVERY = 25
EXPORT_SIZE = (2000, 1250)
CLASSES = 2_000
"""Logits per step: a session file of ~40 kB, so a write takes long enough to be hit."""
SESSION_NAME = "edited.softmaxlab.json"
EXPORT_NAME = "edited.png"
READY = "ready"


def app_env(home: Path) -> dict[str, str]:
    """The environment for a child ``softmax-lab``: offscreen, all its folders under ``home``."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_STATE_HOME"] = str(home / "state")
    env["XDG_CONFIG_HOME"] = str(home / "xdg-config")
    env["SOFTMAX_LAB_CONFIG_DIR"] = str(home / "config")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def state_folder(home: Path) -> Path:
    """Where a child started with ``app_env(home)`` keeps its autosaves (app/autosave.py)."""
    return home / "state" / "softmax-lab"


def wait_for_child(
    found: Callable[[], T], process: subprocess.Popen[Any], what: str, timeout_s: float = 60.0,
    interval_s: float = 0.1,
) -> T:
    """Poll ``found()`` until it returns something true while ``process`` is still running.

    A child process sends no Qt signal to wait on, so this polls; it fails at once if the
    child exits first (with its stderr when that was piped) or after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not (value := found()):
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the child exited ({process.returncode}) before {what}: {stderr!r}")
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g} s"
        time.sleep(interval_s)
    return value


def unexpected_stderr(stderr: str) -> list[str]:
    """The non-blank stderr lines other than the accepted offscreen notice."""
    return [
        line for line in stderr.splitlines() if line.strip() and line.strip() not in ACCEPTED_STDERR
    ]


def png_problem(data: bytes) -> str | None:
    """Why ``data`` is not one complete PNG file (None when it is).

    Walks the chunks itself (no Qt, nothing from the app): the signature, every
    chunk's CRC, IHDR first, IEND last and nothing after it. A write cut short
    fails one of these.
    """
    if data[:8] != PNG_SIGNATURE:
        return "no PNG signature"
    pos, kinds = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            return f"truncated chunk header at byte {pos}"
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return f"chunk {kind!r} truncated at byte {len(data)} of {end}"
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return f"bad CRC in chunk {kind!r}"
        kinds.append(kind)
        pos = end
        if kind == b"IEND":
            break
    if not kinds or kinds[0] != b"IHDR":
        return "IHDR is not the first chunk"
    if kinds[-1] != b"IEND":
        return "no IEND chunk: the file ends early"
    if pos != len(data):
        return f"{len(data) - pos} bytes after IEND"
    return None


def temp_name_pattern(target: str) -> re.Pattern[str]:
    """The name an atomic write (compute/tables.write_bytes_atomic) gives its temporary file
    for ``target``: hidden (leading dot), the target's name, 12 hex digits, ``.tmp``."""
    return re.compile(rf"\.{re.escape(target)}\.[0-9a-f]{{12}}\.tmp")


def leftovers(folder: Path, expected: set[str], targets: tuple[str, ...]) -> dict[str, list[str]]:
    """Sort what lies in ``folder`` besides ``expected``: temporaries per target, and strangers.

    Returns ``{target: [temporary names], ..., "unexpected": [names]}``.
    """
    found: dict[str, list[str]] = {t: [] for t in targets}
    found["unexpected"] = []
    patterns = {t: temp_name_pattern(t) for t in targets}
    for path in sorted(folder.iterdir()):
        if path.name in expected:
            continue
        owner = next((t for t, p in patterns.items() if p.fullmatch(path.name)), None)
        found[owner if owner is not None else "unexpected"].append(path.name)
    return found


# -- what the driver writes, step by step ------------------------------------------------------


def step_logits(k: int) -> np.ndarray:
    """The logits of edit step ``k``: element 0 is k/8 (exact), the rest a fixed pattern."""
    values = (np.arange(CLASSES, dtype=np.float64) % 37) / 4 - 4.5
    values[0] = k / 8
    return values


def step_temperature(k: int) -> float:
    return 0.25 + (k % 64) / 16  # exact in binary, never 0


def step_of(doc: dict[str, Any]) -> int:
    """The step a saved session document holds; AssertionError if it is no single step's state.

    A document mixing two steps (logits of one, temperature of another) or
    holding anything else is not a state the person ever saw.
    """
    from softmax_lab.app import persistence

    parsed = persistence.parse_document(doc)
    logits = np.asarray(parsed.fields["logits"], dtype=np.float64)
    k = int(logits[0] * 8)
    expected = step_logits(k)
    assert logits.shape == expected.shape, f"{logits.shape} logits, not {expected.shape}"
    assert np.array_equal(logits.view(np.uint64), expected.view(np.uint64)), (
        f"the logits are not those of step {k}"
    )
    temperature = parsed.fields["temperature"]
    assert temperature == step_temperature(k), (
        f"temperature {temperature} is not step {k}'s {step_temperature(k)}"
    )
    return k


class Journal:
    """Appends one line per event to a file; each line is one ``os.write`` (kill-proof)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())


def phase_at_kill(journal: str) -> str:
    """What the driver was doing when killed, named for people.

    Rendering an export runs the event loop, so an autosave can be written in
    the middle of it: the innermost operation still open at the end wins.
    """
    open_ops: list[str] = []
    for line in journal.splitlines():
        if line.startswith(("write+ ", "render+")):
            open_ops.append(line.split(" ", 1)[-1] if line.startswith("write+") else "render")
        elif line.startswith(("write- ", "render-")) and open_ops:
            open_ops.pop()
    if not open_ops:
        return "editing"
    name = open_ops[-1]
    if name == "render":
        return "export render"
    if name.startswith("autosave-"):
        phase = "autosave write"
    elif name == SESSION_NAME:
        phase = "session save"
    elif name == EXPORT_NAME:
        phase = "export write"
    else:
        phase = f"write of {name}"
    return phase + (" during export render" if "render" in open_ops[:-1] else "")


def _drive(journal_path: Path, workdir: Path) -> int:
    from PySide6.QtCore import QTimer

    from softmax_lab.app import autosave, export_actions, gui
    from softmax_lab.compute import tables
    from softmax_lab.widgets import chart_export, export_dialog

    note = Journal(journal_path)

    def journaled_write(original: Any) -> Any:
        def write(path: Any, data: bytes) -> None:
            name = Path(path).name
            note(f"write+ {name}")
            try:
                original(path, data)
            finally:
                note(f"write- {name}")

        return write

    # The same atomic write, with a journal line before and after.
    tables.write_bytes_atomic = journaled_write(tables.write_bytes_atomic)
    export_actions.write_bytes_atomic = journaled_write(export_actions.write_bytes_atomic)
    render_view = chart_export.render_view

    def journaled_render(*args: Any, **kwargs: Any) -> bytes:
        note("render+")
        try:
            return render_view(*args, **kwargs)
        finally:  # a refused export ("nothing computed yet") ends here too
            note("render-")

    chart_export.render_view = journaled_render
    # The person answers "Replace" when the export already exists.
    export_dialog.confirm_overwrite = lambda parent, path: True

    start_up = autosave.start_up
    keep: list[Any] = []

    def driven_start_up(window: Any, file: Any = None, **kwargs: Any) -> Any:
        saver = start_up(window, file=file, delay_ms=AUTOSAVE_MS)
        state = {"k": 0, "saved": False, "ready": False}
        saver.saved.connect(lambda _path: state.update(saved=True))
        options = chart_export.ChartOptions(
            view="probabilities", width=EXPORT_SIZE[0], height=EXPORT_SIZE[1]
        )

        def tick() -> None:
            k = state["k"] = state["k"] + 1
            note(f"edit {k}")
            session = window.session
            with session.updating():
                session.set_vector(step_logits(k))
                session.temperature = step_temperature(k)
            # A failure is journaled, not raised: an exception here would open
            # the app's error dialog and stop the edits.
            if k % SAVE_EVERY == 0 and not window.sessions.save_to(workdir / SESSION_NAME):
                note(f"failed session save: {session.message}")
            if k % EXPORT_EVERY == 1 and not window.export_actions.save_chart(
                workdir / EXPORT_NAME, options
            ):
                note(f"failed export: {session.message}")
            written = (workdir / SESSION_NAME).is_file() and (workdir / EXPORT_NAME).is_file()
            if not state["ready"] and state["saved"] and written:
                state["ready"] = True  # every target has been written at least once
                print(READY, flush=True)

        timer = QTimer(window)
        timer.setInterval(EDIT_MS)
        timer.timeout.connect(tick)
        timer.start()
        keep.append(timer)
        return saver

    autosave.start_up = driven_start_up
    # Ends by itself (clean exit) if no test kills it.
    return gui.launch_window(quit_after_ms=120_000)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.process_helpers JOURNAL WORKDIR")
    raise SystemExit(_drive(Path(sys.argv[1]), Path(sys.argv[2])))
