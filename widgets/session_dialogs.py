"""Dialogs of sessions, as module functions tests can monkeypatch (see dialogs.py)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

SESSION_FILTER = "Softmax Lab sessions (*.softmaxlab.json);;JSON (*.json);;All files (*)"


def ask_open_session(parent: QWidget | None, directory: str = "") -> str | None:
    """Ask for a session file to open; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open session", directory, SESSION_FILTER)
    return path or None


def ask_save_session(parent: QWidget | None, suggested: str = "") -> str | None:
    """Ask where to save the session (the dialog confirms replacing a file); None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, "Save session as", suggested, SESSION_FILTER)
    return path or None


def ask_restore_autosave(parent: QWidget | None, when: str, summary: str) -> bool:
    """After a crash: restore the state autosaved at ``when``? True to restore."""
    box = QMessageBox(parent)
    box.setObjectName("restoreAutosaveBox")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Restore your work?")
    box.setText("Softmax Lab did not close normally last time.")
    box.setInformativeText(f"Restore the state it saved at {when}?\n{summary}")
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.button(QMessageBox.StandardButton.Yes).setText("Restore")
    box.button(QMessageBox.StandardButton.No).setText("Start fresh")
    box.setDefaultButton(QMessageBox.StandardButton.Yes)
    return box.exec() == QMessageBox.StandardButton.Yes
