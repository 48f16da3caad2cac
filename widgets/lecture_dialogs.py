"""Modal dialogs of the lecture feature, as module functions tests can monkeypatch."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QWidget,
)

LECTURE_FILTER = "Softmax Lab lectures (*.toml);;All files (*)"


def ask_lecture_path(parent: QWidget | None) -> str | None:
    """Ask for a lecture file to open; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open a lecture", "", LECTURE_FILTER)
    return path or None


def ask_lecture_save_path(parent: QWidget | None, suggested: str) -> str | None:
    """Ask where to save the lecture (the dialog confirms replacing a file); None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save the lecture as", suggested, LECTURE_FILTER)
    return path or None


def ask_scene_details(
    parent: QWidget | None, title: str, caption: str, panel: str, panels: Sequence[str]
) -> tuple[str, str, str] | None:
    """Ask for a new scene's title, caption and panel; None when cancelled."""
    dialog = QDialog(parent)
    dialog.setObjectName("sceneDialog")
    dialog.setWindowTitle("Add scene")
    title_edit = QLineEdit(title, dialog)
    title_edit.setObjectName("sceneTitleEdit")
    caption_edit = QPlainTextEdit(caption, dialog)
    caption_edit.setObjectName("sceneCaptionEdit")
    caption_edit.setPlaceholderText("One paragraph, shown under the chart (read it aloud)")
    panel_combo = QComboBox(dialog)
    panel_combo.setObjectName("scenePanelCombo")
    panel_combo.addItems(list(panels))
    panel_combo.setCurrentText(panel)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    form = QFormLayout(dialog)
    form.addRow("Title", title_edit)
    form.addRow("Caption", caption_edit)
    form.addRow("Panel beside the chart", panel_combo)
    form.addRow(buttons)
    dialog.resize(520, 320)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return title_edit.text().strip(), caption_edit.toPlainText().strip(), panel_combo.currentText()


def confirm_discard(parent: QWidget | None, text: str) -> bool:
    """Ask whether unsaved lecture changes may be thrown away."""
    answer = QMessageBox.question(
        parent,
        "Unsaved lecture changes",
        text,
        QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Discard
