"""An inline message strip (as in Orange): info, warning or error, with a close button.

Shows ``session.message``; closing it clears the message. Never modal: the
person keeps working while it is visible.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from softmax_lab.app.session import Message, Session

_COLOURS = {
    "info": ("#E3F2FD", "#0D47A1"),
    "warning": ("#FFF8E1", "#7A4F01"),
    "error": ("#FDECEA", "#8E1B1B"),
}


class MessageBar(QWidget):
    """Shows the session's current message; hidden when there is none."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.session = session
        self.label = QLabel(self)
        self.label.setObjectName("messageText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(self)
        self.close_button.setObjectName("messageClose")
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss this message")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self._on_close_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.setAutoFillBackground(True)
        session.events["message"].connect(self.set_message)
        self.set_message(session.message)

    def set_message(self, message: Message | None) -> None:
        if message is None:
            self.label.clear()
            self.hide()
            return
        background, foreground = _COLOURS.get(message.level, _COLOURS["info"])
        self.setStyleSheet(
            f"MessageBar {{ background: {background}; border-bottom: 1px solid {foreground}; }}"
            f"QLabel {{ color: {foreground}; font-size: 11pt; }}"
        )
        prefix = {"error": "Error: ", "warning": "Note: "}.get(message.level, "")
        self.label.setText(prefix + message.text)
        self.show()

    def _on_close_clicked(self) -> None:
        self.session.message = None
