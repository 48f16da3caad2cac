"""Without a GPU, every way to ask for CUDA says so clearly and nothing crashes.

What tests/compute/test_device.py (device resolution, ``compute_softmax``) and
tests/test_cli.py (``table --device cuda`` in-process, with a faked status)
already cover is not repeated here. This file adds the other ways in:

- every compute entry point (softmax, vector analysis, cross-entropy, batch
  statistics) refuses CUDA with :class:`DeviceUnavailableError` and the reason,
  before any work;
- the installed ``softmax-lab table`` and ``chart`` commands in real processes on
  this machine: exit status 2, one ``softmax-lab: error:`` line naming CUDA and
  the reason, nothing written;
- the window as the app builds it: the device combo learns torch's real answer
  after the first frame, keeps ``cuda`` disabled and says why in its tooltip;
- a session file asking for CUDA, opened through File → Open session… and on the
  command line: the window says CUDA is unavailable, keeps the last result, lets
  the person switch to the CPU, and the process exits 0;
- a lecture file asking for a device: lectures have no device field, so the file
  is refused with a message naming the scene and the field, in the window (a
  dialog) and on the command line (exit status 2), never a traceback.

Tests that need the absence of a GPU are skipped, with that reason, where torch
sees one; the refusals with a faked "no GPU" answer run everywhere.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from softmax_lab.compute import device as device_module
from softmax_lab.compute.device import CudaStatus, cuda_status
from softmax_lab.compute.errors import DeviceUnavailableError
from tests.process_helpers import SCRIPT, app_env, unexpected_stderr

HAS_CUDA = torch.cuda.is_available()
no_gpu_here = pytest.mark.skipif(HAS_CUDA, reason="torch sees a GPU here: CUDA is available")
REFUSAL = "CUDA was requested but is not available: "
ERROR_PREFIX = "softmax-lab: error: "
WAIT_MS = 30_000  # torch's first import on a busy 2-core machine


def _compute_calls() -> dict[str, Any]:
    """Each compute entry point, called on a small valid input with device='cuda'."""
    from softmax_lab.compute.analysis import VectorRequest, analyse_vector
    from softmax_lab.compute.batch import BatchRequest, batch_statistics
    from softmax_lab.compute.losses import cross_entropy
    from softmax_lab.compute.softmax import compute_softmax
    from softmax_lab.compute.types import SoftmaxRequest

    x = np.array([[2.0, 1.0, 0.1], [0.5, -1.0, 3.0]])
    targets = np.array([0, 2])
    return {
        "softmax": lambda dev: compute_softmax(SoftmaxRequest(x, device=dev)),
        "vector analysis": lambda dev: analyse_vector(
            VectorRequest(logits=x[0], temperature=1.0, dtype="float32", device=dev, target=1)
        ),
        "cross-entropy": lambda dev: cross_entropy(x, targets, device=dev),
        "batch statistics": lambda dev: batch_statistics(
            BatchRequest(
                data=x, temperature=0.5, dim=1, dtype="float64", device=dev, targets=targets
            )
        ),
    }


ENTRY_POINTS = ("softmax", "vector analysis", "cross-entropy", "batch statistics")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_compute_entry_point_refuses_cuda_with_the_reason(entry, monkeypatch):
    call = _compute_calls()[entry]
    call("cpu")  # the same input is fine on the CPU: the refusal is about the device
    monkeypatch.setattr(
        device_module, "cuda_status", lambda: CudaStatus(False, "the test's machine has no GPU")
    )
    for name in ("cuda", "cuda:0"):
        with pytest.raises(DeviceUnavailableError) as info:
            call(name)
        assert str(info.value) == REFUSAL + "the test's machine has no GPU"
    # auto falls back to the CPU without a word.
    call("auto")


@no_gpu_here
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_compute_entry_point_refuses_cuda_here(entry):
    with pytest.raises(DeviceUnavailableError) as info:
        _compute_calls()[entry]("cuda")
    assert str(info.value) == REFUSAL + cuda_status().reason


# -- the installed commands, in real processes ----------------------------------------------------


@no_gpu_here
def test_table_and_chart_with_cuda_exit_2_with_one_line(tmp_path):
    if not SCRIPT.exists():
        pytest.fail(f"console script not installed next to the interpreter: {SCRIPT}")
    out = {"table": tmp_path / "t.csv", "chart": tmp_path / "c.png"}
    procs = {
        kind: subprocess.Popen(
            [str(SCRIPT), kind, "--logits", "2,1,0.1", "--device", "cuda", "-o", str(path)],
            env=app_env(tmp_path / kind),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, path in out.items()
    }
    reason = cuda_status().reason
    for kind, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (kind, stderr)
        assert stdout == ""
        lines = unexpected_stderr(stderr)
        assert lines == [ERROR_PREFIX + REFUSAL + reason], (kind, stderr)
        assert not out[kind].exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []


# -- the window ------------------------------------------------------------------------------------


@pytest.fixture
def app_window(qtbot: Any) -> Iterator[Any]:
    """A window built as app/gui.py builds it: the real thread pool for background work,
    CUDA 'still checking' until torch answers after the first frame. At the end it is
    stopped as the app stops it (controller, then the pool)."""
    from softmax_lab.app.controller import Controller
    from softmax_lab.app.main_window import MainWindow
    from softmax_lab.app.session import Session
    from softmax_lab.app.workers import ThreadPoolExecutor

    session = Session()
    executor = ThreadPoolExecutor()
    controller = Controller(session, background=executor)
    window = MainWindow(session, controller, False, "still checking (torch is starting)")
    qtbot.addWidget(window)
    controller.hold()
    window.show()
    qtbot.waitExposed(window)
    controller.warm_up(lambda cuda: window.options.set_cuda_status(cuda.available, cuda.reason))
    qtbot.waitUntil(lambda: controller.compute_ready, timeout=WAIT_MS)
    yield window
    controller.stop()
    executor.shutdown()


@no_gpu_here
def test_the_device_combo_shows_torchs_own_reason(app_window, qtbot):
    from PySide6.QtCore import Qt

    window = app_window
    combo = window.options.device_combo
    reason = cuda_status().reason
    cuda = combo.findData("cuda")
    assert not combo.model().item(cuda).flags() & Qt.ItemFlag.ItemIsEnabled
    assert combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole) == f"CUDA is not available: {reason}"
    assert "still checking" not in combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole)
    assert combo.itemText(combo.findData("auto")) == "auto (CPU)"
    assert window.session.device == "auto"
    qtbot.waitUntil(lambda: window.session.analysis is not None, timeout=WAIT_MS)
    assert window.session.analysis.result.device == "cpu"  # auto fell back to the CPU


def _cuda_session(tmp_path: Path) -> Path:
    """A session file as another machine (with a GPU) saved it: device 'cuda'."""
    from softmax_lab.app import persistence
    from softmax_lab.app.session import Session

    session = Session()
    session.update(temperature=0.5, device="cuda")
    session.set_vector([3.0, 1.0, -1.0, 0.5])
    path = tmp_path / "from-the-gpu-box.softmaxlab.json"
    persistence.save_session(path, persistence.to_document(session))
    assert json.loads(path.read_text())["device"] == "cuda"
    return path


@no_gpu_here
def test_opening_a_cuda_session_says_cuda_is_unavailable_and_cpu_still_works(
    app_window, qtbot, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QApplication

    from softmax_lab.widgets import session_dialogs
    from tests.app.session_helpers import (
        chart_values,
        choose_by_keyboard,
        message_text,
        softmax_ref,
    )

    path = _cuda_session(tmp_path)
    window = app_window
    qtbot.waitUntil(lambda: window.session.analysis is not None, timeout=WAIT_MS)
    before = chart_values(window).copy()
    monkeypatch.setattr(session_dialogs, "ask_open_session", lambda parent, directory: str(path))
    action = window.findChild(type(window.sessions.undo_action), "openSessionAction")
    action.trigger()  # File → Open session…, the file chosen in the dialog
    qtbot.waitUntil(lambda: "CUDA" in message_text(window), timeout=WAIT_MS)
    text = message_text(window)
    assert text.startswith("Error:") and REFUSAL + cuda_status().reason in text
    assert window.session.device == "cuda" and window.session.temperature == 0.5
    np.testing.assert_array_equal(chart_values(window), before)  # the last result stays
    assert QApplication.activeModalWidget() is None  # a message, not a crash dialog

    choose_by_keyboard(qtbot, window.options.device_combo, "cpu")
    qtbot.waitUntil(
        lambda: np.allclose(
            chart_values(window), softmax_ref([3.0, 1.0, -1.0, 0.5], 0.5), rtol=1e-6
        ),
        timeout=WAIT_MS,
    )
    assert "CUDA" not in message_text(window)


@no_gpu_here
def test_a_cuda_session_on_the_command_line_opens_and_exits_0(tmp_path):
    path = _cuda_session(tmp_path)
    done = subprocess.run(
        [str(SCRIPT), str(path), "--quit-after", "2000"],
        env=app_env(tmp_path / "home"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and unexpected_stderr(done.stderr) == [], done.stderr
    # The error went to the message bar, not to the log as an unexpected exception.
    log = tmp_path / "home" / "state" / "softmax-lab" / "softmax-lab.log"
    assert "Traceback" not in (log.read_text() if log.exists() else "")


# -- lectures ------------------------------------------------------------------------------------

_LECTURE = """\
version = 1
title = "Made on a GPU box"

[[scene]]
title = "On the GPU"
logits = [2.0, 1.0, 0.1]
device = "cuda"
"""


def test_a_lecture_asking_for_a_device_is_refused_in_the_window(qtbot, tmp_path, monkeypatch):
    from softmax_lab.widgets import dialogs, lecture_dialogs
    from tests.app.session_helpers import build_window

    path = tmp_path / "gpu.toml"
    path.write_text(_LECTURE, encoding="utf-8")
    window = build_window(qtbot)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        dialogs, "show_error", lambda parent, title, text, *a: shown.append((title, text))
    )
    monkeypatch.setattr(lecture_dialogs, "ask_lecture_path", lambda parent, *a: str(path))
    before = window.session.temperature, window.session.logits.tolist()
    window.lecture_actions.open_action.trigger()  # File → Open lecture…
    assert len(shown) == 1
    title, text = shown[0]
    assert title == "Could not open the lecture"
    assert "'device'" in text and ("On the GPU" in text or "scene 1" in text.lower()), text
    assert (window.session.temperature, window.session.logits.tolist()) == before
    assert window.lecture_actions.lecture is None


def test_a_lecture_asking_for_a_device_is_refused_on_the_command_line(capsys, tmp_path):
    from softmax_lab.app import cli

    path = tmp_path / "gpu.toml"
    path.write_text(_LECTURE, encoding="utf-8")
    assert cli.main(["--lecture", str(path), "--quit-after", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(ERROR_PREFIX)
    assert "'device'" in captured.err
