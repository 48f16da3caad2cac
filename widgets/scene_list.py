"""The open lecture's scenes as a list: click one to show it; add, remove, reorder.

A view only: it shows titles it is given and reports what the person asked
for as signals; the lecture itself lives in ``app/lecture_actions.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

EMPTY_TEXT = "No lecture open. File → Open lecture…, or Add scene to start one from what you see."


class SceneList(QWidget):
    """Titles of a lecture's scenes with buttons to edit the order.

    Signals
    -------
    sceneActivated(int)
        The person clicked a scene (or moved to it with the arrow keys): show it.
    addRequested()
        "Add": save the current state as a new scene after the current one.
    removeRequested(int)
        "Remove" on the selected scene.
    moveRequested(int, int)
        Move the scene at the first index by the second (-1 up, +1 down).
    presentRequested()
        "Present": presenter mode from the selected scene.
    """

    sceneActivated = Signal(int)
    addRequested = Signal()
    removeRequested = Signal(int)
    moveRequested = Signal(int, int)
    presentRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scenePanel")
        self.title_label = QLabel(self)
        self.title_label.setObjectName("lectureTitle")
        self.title_label.setWordWrap(True)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)

        self.list = QListWidget(self)
        self.list.setObjectName("sceneList")
        self.list.setAlternatingRowColors(True)
        # Long titles wrap inside the narrow dock instead of scrolling sideways.
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setMinimumWidth(150)
        self.list.currentRowChanged.connect(self._on_current_row_changed)
        self.list.itemClicked.connect(self._on_item_clicked)

        self.caption = QLabel(self)
        self.caption.setObjectName("sceneCaption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.caption.setStyleSheet("color: #222222; background: #F4F4F4; padding: 6px;")
        # A caption is a paragraph: it scrolls rather than being cut in a short dock.
        self.caption_area = QScrollArea(self)
        self.caption_area.setWidgetResizable(True)
        self.caption_area.setFrameShape(QFrame.Shape.NoFrame)
        self.caption_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.caption_area.setWidget(self.caption)

        self.add_button = self._button("sceneAdd", "Add", "Save what the window shows as a new scene")
        self.remove_button = self._button("sceneRemove", "Remove", "Remove the selected scene")
        self.up_button = self._tool("sceneUp", "↑", "Move the selected scene up")
        self.down_button = self._tool("sceneDown", "↓", "Move the selected scene down")
        self.present_button = self._button(
            "scenePresent", "Present", "Presenter mode from the selected scene (F11)"
        )
        self.add_button.clicked.connect(self.addRequested)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.up_button.clicked.connect(lambda: self._on_move_clicked(-1))
        self.down_button.clicked.connect(lambda: self._on_move_clicked(+1))
        self.present_button.clicked.connect(self.presentRequested)

        edit = QHBoxLayout()
        edit.setSpacing(4)
        edit.addWidget(self.add_button)
        edit.addWidget(self.remove_button)
        order = QHBoxLayout()
        order.setSpacing(4)
        order.addWidget(self.up_button)
        order.addWidget(self.down_button)
        order.addWidget(self.present_button, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title_label)
        layout.addWidget(self.list, 3)
        layout.addLayout(edit)
        layout.addLayout(order)
        layout.addWidget(self.caption_area, 2)
        self.set_scenes("", [], -1)

    def _button(self, name: str, text: str, tip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        return button

    def _tool(self, name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(tip)
        return button

    # -- lecture -> widget -------------------------------------------------------------

    def set_scenes(
        self, lecture_title: str, scenes: Sequence[tuple[str, str, str]], current: int
    ) -> None:
        """Show ``scenes`` as (title, panel, caption) with ``current`` selected (-1: none)."""
        self._captions = [caption for _, _, caption in scenes]
        with signals_blocked(self.list):
            self.list.clear()
            for i, (title, panel, _caption) in enumerate(scenes, start=1):
                item = QListWidgetItem(f"{i}. {title}")
                item.setToolTip(f"{title}\npanel: {panel}")
                self.list.addItem(item)
        self.title_label.setText(lecture_title if scenes or lecture_title else EMPTY_TEXT)
        self.set_current(current)

    def set_current(self, index: int) -> None:
        """Select scene ``index`` and show its caption, without asking to show it."""
        with signals_blocked(self.list):
            self.list.setCurrentRow(index if 0 <= index < self.list.count() else -1)
        self._update_caption()
        self._update_buttons()

    def _update_caption(self) -> None:
        row = self.list.currentRow()
        text = self._captions[row] if 0 <= row < len(self._captions) else ""
        self.caption.setText(text)
        self.caption_area.setVisible(bool(text))

    def _update_buttons(self) -> None:
        row, count = self.list.currentRow(), self.list.count()
        self.remove_button.setEnabled(0 <= row < count)
        self.up_button.setEnabled(0 < row < count)
        self.down_button.setEnabled(0 <= row < count - 1)
        self.present_button.setEnabled(count > 0)

    # -- widget -> owner ------------------------------------------------------------------

    def _on_current_row_changed(self, row: int) -> None:
        self._update_caption()
        self._update_buttons()
        if row >= 0:
            self.sceneActivated.emit(row)

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        # A click on the scene already selected shows it again (after the person
        # changed something, this is how to get the scene back).
        self.sceneActivated.emit(self.list.row(item))

    def _on_remove_clicked(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.removeRequested.emit(row)

    def _on_move_clicked(self, delta: int) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.moveRequested.emit(row, delta)
