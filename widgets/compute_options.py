"""Compute options: the float type and the device the softmax is computed in.

Both only change *how* the current logits are computed; the logits themselves
live in the session and are never touched here. The window passes whether CUDA
is available (this module must not import torch: start-up time).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget
from superqt.utils import signals_blocked

from softmax_lab.app.session import DEVICES, Session
from softmax_lab.compute.dtypes import DTYPE_NAMES, dtype_info
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.widgets.style import format_number

_DTYPE_BLURB = {
    "float16": "IEEE half precision: tiny range, overflows easily.",
    "bfloat16": "Brain float: float32's range with only 8 bits of precision.",
    "float32": "Single precision: what models are usually trained and run in.",
    "float64": "Double precision: the reference.",
}


def dtype_tooltip(name: str) -> str:
    """What a person needs to know about ``name``: its max and the naive-softmax limit."""
    info = dtype_info(name)
    return (
        f"{name}: {_DTYPE_BLURB.get(name, '')}\n"
        f"largest finite value: {format_number(info.max, 5)}\n"
        f"naive exp(x) overflows for logits above {info.naive_limit:.2f}\n"
        f"machine epsilon: {format_number(info.eps, 3)}"
    )


class ComputeOptions(QWidget):
    """Two combo boxes: dtype (``dtypeCombo``) and device (``deviceCombo``).

    Parameters
    ----------
    session
        Its ``dtype`` and ``device`` fields are shown and written.
    cuda_available
        Whether torch sees a CUDA device; if not, the "cuda" entry is disabled.
    cuda_reason
        Why CUDA is unavailable (the disabled entry's tooltip), or a description
        of the GPU when it is available.
    parent
        Usual Qt parent.
    """

    def __init__(
        self,
        session: Session,
        cuda_available: bool,
        cuda_reason: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("computeOptions")
        self._session = session

        self.dtype_combo = QComboBox()
        self.dtype_combo.setObjectName("dtypeCombo")
        for name in DTYPE_NAMES:
            self.dtype_combo.addItem(name, name)
            self.dtype_combo.setItemData(
                self.dtype_combo.count() - 1, dtype_tooltip(name), Qt.ItemDataRole.ToolTipRole
            )

        self.device_combo = QComboBox()
        self.device_combo.setObjectName("deviceCombo")
        model = QStandardItemModel(self.device_combo)
        for device in DEVICES:
            item = QStandardItem(device)
            item.setData(device, Qt.ItemDataRole.UserRole)
            model.appendRow(item)
        self.device_combo.setModel(model)
        self.set_cuda_status(cuda_available, cuda_reason)

        dtype_label = QLabel("dtype")
        dtype_label.setBuddy(self.dtype_combo)
        device_label = QLabel("device")
        device_label.setBuddy(self.device_combo)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(6)
        layout.addWidget(dtype_label)
        layout.addWidget(self.dtype_combo)
        layout.addSpacing(12)
        layout.addWidget(device_label)
        layout.addWidget(self.device_combo)
        layout.addStretch(1)

        self.dtype_combo.currentIndexChanged.connect(self._on_dtype_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)

        session.events["dtype"].connect(self.set_dtype)
        session.events["device"].connect(self.set_device)
        self.destroyed.connect(lambda: self._disconnect(session))
        self.set_dtype(session.dtype)
        self.set_device(session.device)

    def _disconnect(self, session: Session) -> None:
        session.events["dtype"].disconnect(self.set_dtype)
        session.events["device"].disconnect(self.set_device)

    def set_cuda_status(self, available: bool, reason: str) -> None:
        """Say whether CUDA can be used; the window learns this after its first frame
        (finding out imports torch, which takes seconds)."""
        model = self.device_combo.model()
        assert isinstance(model, QStandardItemModel)
        resolved = "CUDA" if available else "CPU"
        tips = {
            "auto": f"Use the GPU when there is one, else the CPU (here: {resolved}).",
            "cpu": "Compute on the CPU.",
            "cuda": (
                f"Compute on the GPU with CUDA. {reason}".strip()
                if available
                else f"CUDA is not available: {reason}"
            ),
        }
        for row, device in enumerate(DEVICES):
            item = model.item(row)
            item.setText(f"auto ({resolved})" if device == "auto" else device)
            item.setToolTip(tips[device])
            if device == "cuda":
                flags = item.flags()
                enabled = Qt.ItemFlag.ItemIsEnabled
                item.setFlags(flags | enabled if available else flags & ~enabled)
        self.set_device(self._session.device)

    # -- session -> widget --------------------------------------------------------

    def set_dtype(self, name: str) -> None:
        """Select ``name`` in the dtype combo without writing back."""
        index = self.dtype_combo.findData(name)
        with signals_blocked(self.dtype_combo):
            self.dtype_combo.setCurrentIndex(index)
        self.dtype_combo.setToolTip(dtype_tooltip(name) if index >= 0 else "")

    def set_device(self, device: str) -> None:
        """Select ``device`` in the device combo without writing back."""
        index = self.device_combo.findData(device)
        with signals_blocked(self.device_combo):
            self.device_combo.setCurrentIndex(index)
        if index >= 0:
            tip = self.device_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
            self.device_combo.setToolTip(tip)

    # -- widget -> session --------------------------------------------------------

    def _on_dtype_changed(self, index: int) -> None:
        self._write("dtype", self.dtype_combo.itemData(index))

    def _on_device_changed(self, index: int) -> None:
        self._write("device", self.device_combo.itemData(index))

    def _write(self, field: str, value: str) -> None:
        try:
            setattr(self._session, field, value)
        except InvalidInputError as exc:
            self._session.report("error", str(exc), source="compute options")
        # Show what the session holds (the new value, or the old one if refused),
        # and refresh the combo's tooltip.
        self.set_dtype(self._session.dtype)
        self.set_device(self._session.device)
