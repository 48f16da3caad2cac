"""Modal dialogs as module functions, so tests can monkeypatch them instead of
clicking through native dialogs (no test-mode switches in production code)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

TENSOR_FILTER = (
    "Tensors (*.npy *.npz *.pt *.pth *.safetensors *.csv *.tsv *.txt);;"
    "NumPy (*.npy *.npz);;PyTorch (*.pt *.pth);;safetensors (*.safetensors);;"
    "Text tables (*.csv *.tsv *.txt);;All files (*)"
)


def ask_open_path(parent: QWidget | None, title: str, file_filter: str = TENSOR_FILTER) -> str | None:
    """Ask for an existing file; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, "", file_filter)
    return path or None


def ask_choice(parent: QWidget | None, title: str, text: str, choices: list[str]) -> str | None:
    """Ask the person to pick one of ``choices`` (e.g. the array inside an .npz)."""
    from PySide6.QtWidgets import QInputDialog

    choice, ok = QInputDialog.getItem(parent, title, text, choices, 0, False)
    return choice if ok else None


def show_error(parent: QWidget | None, title: str, text: str, details: str = "") -> None:
    """A dialog for failed file operations and unexpected errors, details folded away."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(text)
    if details:
        box.setDetailedText(details)
    box.exec()
