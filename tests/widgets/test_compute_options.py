"""ComputeOptions: dtype and device combos, driven by the keyboard."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import Session
from softmax_lab.widgets.compute_options import ComputeOptions

NO_CUDA = "torch was built without CUDA"


def _colours(widget) -> int:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.width() * image.height())
    return len(np.unique(pixels))


def _make(qtbot, session: Session, cuda: bool = False, reason: str = NO_CUDA) -> ComputeOptions:
    w = ComputeOptions(session, cuda_available=cuda, cuda_reason=reason)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


def _choose(qtbot, combo: QComboBox, data: str) -> None:
    """Walk the combo with the keyboard (Home, then Down) until ``data`` is current."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentData() == data:
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == data, f"could not reach {data!r} with the keyboard"


def _texts(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_contract(qtbot, session) -> None:
    w = _make(qtbot, session)
    hint = w.minimumSizeHint()
    assert 80 < hint.width() < 1000 and 10 < hint.height() < 200
    assert _colours(w) > 1
    assert w.dtype_combo.objectName() == "dtypeCombo"
    assert w.device_combo.objectName() == "deviceCombo"


def test_shows_the_session_choices(qtbot, session) -> None:
    session.update(dtype="float64", device="cpu")
    w = _make(qtbot, session)
    assert _texts(w.dtype_combo) == ["float16", "bfloat16", "float32", "float64"]
    assert w.dtype_combo.currentText() == "float64"
    assert w.device_combo.currentData() == "cpu"


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_dtype_tooltips_give_max_and_naive_limit(qtbot, session, name) -> None:
    import torch

    w = _make(qtbot, session)
    index = w.dtype_combo.findData(name)
    tip = w.dtype_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    finfo = torch.finfo(getattr(torch, name))  # independent source of the limits
    assert f"{math.log(finfo.max):.2f}" in tip
    assert f"{finfo.max:.5g}" in tip
    assert "naive" in tip


def test_without_cuda_the_entry_is_disabled_with_the_reason(qtbot, session) -> None:
    w = _make(qtbot, session, cuda=False, reason=NO_CUDA)
    combo = w.device_combo
    assert _texts(combo) == ["auto (CPU)", "cpu", "cuda"]
    cuda = combo.findData("cuda")
    item = combo.model().item(cuda)
    assert not item.flags() & Qt.ItemFlag.ItemIsEnabled
    assert NO_CUDA in combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole)
    # The keyboard skips the disabled entry: End lands on the last enabled one.
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_End)
    assert combo.currentData() == "cpu"
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == "cpu"
    assert session.device == "cpu"


def test_with_cuda_auto_resolves_to_cuda_and_cuda_can_be_chosen(qtbot, session) -> None:
    w = _make(qtbot, session, cuda=True, reason="NVIDIA H100")
    combo = w.device_combo
    assert combo.itemText(0) == "auto (CUDA)"
    assert combo.model().item(combo.findData("cuda")).flags() & Qt.ItemFlag.ItemIsEnabled
    _choose(qtbot, combo, "cuda")
    assert session.device == "cuda"


def test_choosing_writes_the_session(qtbot, session) -> None:
    w = _make(qtbot, session)
    _choose(qtbot, w.dtype_combo, "bfloat16")
    assert session.dtype == "bfloat16"
    assert "bfloat16" in w.dtype_combo.toolTip()
    _choose(qtbot, w.device_combo, "cpu")
    assert session.device == "cpu"
    _choose(qtbot, w.device_combo, "auto")
    assert session.device == "auto"


def test_switching_never_loses_the_logits(qtbot, session) -> None:
    import torch

    logits = np.array([3.0, -1.0, 7.25, -np.inf, 0.5])
    names = ("a", "b", "c", "masked", "e")
    session.set_vector(logits, names)
    Controller(session).start()
    w = _make(qtbot, session)
    for dtype in ("float16", "float64", "bfloat16", "float32"):
        _choose(qtbot, w.dtype_combo, dtype)
        for device in ("cpu", "auto"):
            _choose(qtbot, w.device_combo, device)
            np.testing.assert_array_equal(session.logits, logits)
            assert session.class_names == names
        # ...and the result is recomputed in the new dtype.
        result = session.analysis.result
        assert result.dtype == dtype
        expected = torch.softmax(torch.tensor(logits, dtype=getattr(torch, dtype)), dim=-1)
        eps = torch.finfo(getattr(torch, dtype)).eps
        np.testing.assert_allclose(result.probabilities[0], expected.double().numpy(), rtol=4 * eps, atol=0)


def test_session_changes_show_without_writing_back(qtbot, session) -> None:
    w = _make(qtbot, session)
    seen: list[str] = []
    session.events["dtype"].connect(seen.append)
    session.events["device"].connect(seen.append)
    session.dtype = "float16"
    session.device = "cpu"
    assert seen == ["float16", "cpu"]
    assert w.dtype_combo.currentText() == "float16"
    assert w.device_combo.currentData() == "cpu"
    assert "65504" in w.dtype_combo.toolTip()


def test_deleted_widget_stops_listening(qtbot) -> None:
    session = Session()
    w = ComputeOptions(session, cuda_available=False, cuda_reason=NO_CUDA)
    assert len(session.events["dtype"]) == 1
    w.deleteLater()
    qtbot.waitUntil(lambda: len(session.events["dtype"]) == 0)
    assert len(session.events["device"]) == 0
    session.dtype = "float64"


def test_cuda_status_learned_after_start_updates_the_entries(qtbot, session) -> None:
    """The window opens before torch says whether there is a GPU; then it is told."""
    w = _make(qtbot, session, cuda=False, reason="still checking")
    combo = w.device_combo
    cuda = combo.findData("cuda")
    assert "still checking" in combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole)
    w.set_cuda_status(True, "NVIDIA H100")
    assert combo.itemText(0) == "auto (CUDA)"
    assert combo.model().item(cuda).flags() & Qt.ItemFlag.ItemIsEnabled
    _choose(qtbot, combo, "cuda")
    assert session.device == "cuda"
    w.set_cuda_status(False, NO_CUDA)  # told again (a driver gone): disabled, reason shown
    assert combo.itemText(0) == "auto (CPU)"
    assert not combo.model().item(cuda).flags() & Qt.ItemFlag.ItemIsEnabled
    assert NO_CUDA in combo.itemData(cuda, Qt.ItemDataRole.ToolTipRole)
    assert combo.currentData() == session.device  # the combo shows what the session holds
