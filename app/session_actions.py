"""Sessions in the window: File → New/Open/Save session, Open Recent, Edit → Undo/Redo,
View → Theme, and dropping a ``.softmaxlab.json`` on the window.

:func:`install` adds all of it to a built :class:`~softmax_lab.app.main_window.MainWindow`
(called from app/extensions.py) and returns the :class:`SessionActions` that
holds it (also ``window.sessions``). Start-up (restoring the last session,
offering an autosave after a crash) is in app/autosave.py, called by app/gui.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QActionGroup, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QMenu, QSlider

from softmax_lab.app import persistence
from softmax_lab.app.persistence import SessionDocument
from softmax_lab.app.session import LoadedBatch, Session
from softmax_lab.app.settings import Settings
from softmax_lab.app.themes import WindowTheme, resolve, system_scheme
from softmax_lab.app.undo import UndoRecorder
from softmax_lab.compute.errors import LoadError
from softmax_lab.widgets import session_dialogs

if TYPE_CHECKING:
    from softmax_lab.app.main_window import MainWindow

log = logging.getLogger(__name__)

THEME_LABELS = {"system": "Follow &system", "light": "&Light", "dark": "&Dark"}
MESSAGE_SOURCE = "session"


def install(window: MainWindow, settings: Settings | None = None) -> SessionActions:
    """Add session files, recent files, undo/redo and themes to ``window``.

    Parameters
    ----------
    window
        The main window.
    settings
        Where preferences live; default :class:`Settings` at its default location
        (``$SOFTMAX_LAB_CONFIG_DIR`` redirects it).
    """
    actions = SessionActions(window, settings)
    window.sessions = actions  # type: ignore[attr-defined]
    return actions


class SessionActions(QObject):
    """The session features of one window (see the module docstring)."""

    def __init__(self, window: MainWindow, settings: Settings | None = None) -> None:
        super().__init__(window)
        self.setObjectName("sessionActions")
        self.window = window
        self.session: Session = window.session
        self.settings = settings if settings is not None else Settings()
        self.current_path: Path | None = None
        """The session file the window's state was last opened from or saved to."""
        self._pending: SessionDocument | None = None
        self._known_targets: tuple[LoadedBatch, Path] | None = None

        self.undo = UndoRecorder(self.session, self)
        self.theme = WindowTheme(window, self.settings.theme)

        self._build_file_actions()
        self._build_edit_actions()
        self._build_theme_menu()
        self._connect_slider_releases()

        self.session.events["batch"].connect(self._on_batch)
        self.session.events["message"].connect(self._on_message)
        self.destroyed.connect(lambda: window.session.events["batch"].disconnect(self._on_batch))
        self.destroyed.connect(
            lambda: window.session.events["message"].disconnect(self._on_message)
        )
        self.undo.stack.cleanChanged.connect(self.update_title)
        window.installEventFilter(self)
        # Views are built light: only a dark theme (or a light one forced on a
        # dark OS) has anything to change.
        if resolve(self.theme.choice) == "dark" or system_scheme() == "dark":
            self.theme.apply()

    # -- building -----------------------------------------------------------------

    def _action(
        self,
        text: str,
        name: str,
        slot: Any,
        *shortcuts: QKeySequence | QKeySequence.StandardKey | str,
    ) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(slot)
        return action

    def _build_file_actions(self) -> None:
        w = self.window
        self.new_action = self._action(
            "&New session", "newSessionAction", self.new_session, QKeySequence.StandardKey.New
        )
        self.new_action.setToolTip(
            "Start again from the built-in example (the file stays as it is)"
        )
        self.open_action = self._action(
            "Open &session…", "openSessionAction", self.open_session_dialog, "Ctrl+Shift+O"
        )
        self.save_action = self._action(
            "&Save session", "saveSessionAction", self.save, QKeySequence.StandardKey.Save
        )
        self.save_as_action = self._action(
            "Save session &as…", "saveSessionAsAction", self.save_as, "Ctrl+Shift+S"
        )
        self.recent_menu = QMenu("Open &recent", w)
        self.recent_menu.setObjectName("recentMenu")
        self.recent_menu.aboutToShow.connect(self.rebuild_recent_menu)
        self.clear_recent_action = self._action(
            "&Clear the list", "clearRecentAction", self._clear_recent
        )
        tail = w.file_menu_tail
        for action in (self.new_action, self.open_action):
            w.file_menu.insertAction(tail, action)
        w.file_menu.insertMenu(tail, self.recent_menu)
        for action in (self.save_action, self.save_as_action):
            w.file_menu.insertAction(tail, action)
        w.file_menu.insertSeparator(tail)
        self.rebuild_recent_menu()

    def _build_edit_actions(self) -> None:
        stack = self.undo.stack
        self.undo_action = stack.createUndoAction(self.window, "&Undo")
        self.undo_action.setObjectName("undoAction")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self.redo_action = stack.createRedoAction(self.window, "&Redo")
        self.redo_action.setObjectName("redoAction")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        menu = self.window.edit_menu
        first = menu.actions()[0] if menu.actions() else None
        menu.insertAction(first, self.undo_action)
        menu.insertAction(first, self.redo_action)
        if first is not None:
            menu.insertSeparator(first)

    def _build_theme_menu(self) -> None:
        self.theme_menu = QMenu("&Theme", self.window)
        self.theme_menu.setObjectName("themeMenu")
        self.theme_group = QActionGroup(self)
        self.theme_group.setExclusive(True)
        self.theme_actions: dict[str, QAction] = {}
        for choice, label in THEME_LABELS.items():
            action = QAction(label, self.window)
            action.setObjectName(f"theme_{choice}")
            action.setCheckable(True)
            action.setChecked(choice == self.theme.choice)
            action.triggered.connect(lambda _=False, c=choice: self.set_theme(c))
            self.theme_group.addAction(action)
            self.theme_menu.addAction(action)
            self.theme_actions[choice] = action
        self.window.view_menu.addSeparator()
        self.window.view_menu.addMenu(self.theme_menu)

    def _connect_slider_releases(self) -> None:
        # A slider drag is one undo step; releasing the slider ends it.
        for name in ("temperatureSlider", "labelSmoothingSlider"):
            slider = self.window.findChild(QSlider, name)
            if slider is not None:
                slider.sliderReleased.connect(self.undo.seal)

    # -- theme -----------------------------------------------------------------------

    def set_theme(self, choice: str) -> None:
        """Use theme ``choice`` ("system", "light", "dark") now and at the next start."""
        self.theme.set_choice(choice)
        self.theme_actions[choice].setChecked(True)
        self.settings.theme = choice

    # -- the document ---------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The window's state as a session document (see :mod:`softmax_lab.app.persistence`)."""
        doc = persistence.to_document(
            self.session,
            {"panel": self.window.tabs.currentIndex(), "targets_path": self._targets_path()},
        )
        pending = self._pending
        if pending is not None and pending.batch is not None:
            # A restored batch still loading is part of the state (quitting now
            # must not lose it from the last session or the autosave).
            source = pending.batch
            doc["batch"] = {
                "path": str(source.path),
                "array_name": source.array_name,
                "targets_path": None if source.targets_path is None else str(source.targets_path),
            }
            doc["selected_row"] = pending.selected_row
            if pending.panel is not None:
                doc["panel"] = pending.panel
        return doc

    def _targets_path(self) -> Path | None:
        batch = self.session.batch
        if batch is None or batch.targets is None:
            return None
        for known in (getattr(self.window, "targets_source", None), self._known_targets):
            if known is not None and known[0] is batch:
                return Path(known[1])
        return None

    def restore(self, doc: Any, with_batch: bool = True) -> SessionDocument:
        """Put the window into the state ``doc`` describes (all of it, or nothing).

        The intent settings apply at once; the batch file, if any, is reopened in
        the background and its selected row and the panel are restored when it
        has loaded. The undo history starts afresh.

        Raises
        ------
        LoadError
            The document is not usable (the window is unchanged).
        """
        with self.undo.suspended():
            parsed = persistence.apply_document(self.session, doc)
        self.undo.reset()
        self._pending = None
        self._show_panel(parsed.panel)
        if parsed.batch is not None and with_batch:
            self._pending = parsed
            self.window.controller.open_file(
                parsed.batch.path,
                array_name=parsed.batch.array_name,
                targets_path=parsed.batch.targets_path,
            )
        return parsed

    def _show_panel(self, panel: int | None) -> None:
        tabs = self.window.tabs
        if panel is not None and 0 <= panel < tabs.count():
            tabs.setCurrentIndex(panel)

    def _on_batch(self, batch: LoadedBatch | None) -> None:
        if batch is None or batch.path is None:
            return
        self.settings.add_recent(batch.path)
        pending, self._pending = self._pending, None
        if pending is None or pending.batch is None:
            return
        if Path(batch.path) != pending.batch.path:
            return  # another file was opened meanwhile: it wins
        if pending.batch.targets_path is not None:
            self._known_targets = (batch, pending.batch.targets_path)
        row = pending.selected_row
        if row is not None and 0 <= row < batch.data.shape[0]:
            self.session.selected_row = row
        elif row is not None:
            self.session.report(
                "warning",
                f"The session selected row {row}, but {batch.path.name} now has "
                f"{batch.data.shape[0]} rows.",
                MESSAGE_SOURCE,
            )
        self._show_panel(pending.panel)

    def _on_message(self, message: Any) -> None:
        # The restored batch failed to load (the controller says why): it is no
        # longer part of the state.
        if message is not None and message.level == "error" and message.source == "load":
            self._pending = None

    # -- File actions ---------------------------------------------------------------------

    def new_session(self) -> None:
        """Back to the built-in example with default settings, no batch, no file."""
        defaults = {name: getattr(Session, name).default for name in persistence.INTENT_FIELDS}
        with self.undo.suspended():
            self.session.update(**defaults, batch=None, selected_row=None)
        self.undo.reset()
        self._pending = None
        self.window.tabs.setCurrentIndex(0)
        self.set_current_path(None)

    def open_session_dialog(self) -> None:
        directory = str(self.current_path.parent) if self.current_path else ""
        path = session_dialogs.ask_open_session(self.window, directory)
        if path:
            self.open_session(path)

    def open_session(self, path: str | Path) -> bool:
        """Open a session file; on any problem say why in the message bar and change nothing."""
        path = Path(path)
        try:
            doc = persistence.load_session(path)
            self.restore(doc)
        except LoadError as exc:
            text = str(exc)
            if not text.startswith(path.name):
                text = f"{path.name}: {text}"
            self.session.report("error", f"Could not open the session {text}", MESSAGE_SOURCE)
            return False
        self.set_current_path(path)
        self.settings.add_recent(path)
        self.settings.last_session = path
        self.session.report("info", f"Opened the session {path.name}.", MESSAGE_SOURCE)
        return True

    def save(self) -> bool:
        """Save to the current session file, or ask where (Save as) when there is none."""
        if self.current_path is None:
            return self.save_as()
        return self.save_to(self.current_path)

    def save_as(self) -> bool:
        suggested = (
            str(self.current_path) if self.current_path else "untitled" + persistence.SESSION_SUFFIX
        )
        path = session_dialogs.ask_save_session(self.window, suggested)
        if not path:
            return False
        return self.save_to(persistence.with_session_suffix(path))

    def save_to(self, path: str | Path) -> bool:
        """Write the session to ``path`` (atomically); report a failure and return False."""
        path = Path(path)
        try:
            persistence.save_session(path, self.document())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.session.report(
                "error",
                f"Could not save the session to {path}: {reason}. The previous file, if any, is unchanged.",
                MESSAGE_SOURCE,
            )
            return False
        self.undo.stack.setClean()
        self.set_current_path(path)
        self.settings.add_recent(path)
        self.settings.last_session = path
        self.session.report("info", f"Saved the session to {path.name}.", MESSAGE_SOURCE)
        return True

    def set_current_path(self, path: Path | None) -> None:
        """Associate the window with session file ``path`` (Save writes there; the title shows it)."""
        self.current_path = path
        self.update_title()

    def update_title(self, *_: Any) -> None:
        """``name.softmaxlab.json* — Softmax Lab`` (``*``: changed since saved)."""
        w = self.window
        if self.current_path is None:
            w.setWindowTitle("Softmax Lab")
            w.setWindowModified(False)
            return
        w.setWindowTitle(f"{self.current_path.name}[*] — Softmax Lab")
        w.setWindowModified(not self.undo.stack.isClean())

    # -- recent files ----------------------------------------------------------------------

    def open_recent(self, path: str | Path) -> None:
        """Open a recent file: a session as a session, anything else as a batch tensor."""
        path = Path(path)
        if not path.is_file():
            self.settings.remove_recent(path)
            self.rebuild_recent_menu()
            self.session.report(
                "warning", f"{path} no longer exists; removed it from the list.", MESSAGE_SOURCE
            )
            return
        if persistence.is_session_path(path):
            self.open_session(path)
        else:
            self.window.open_path(path)

    def rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.settings.recent_files()
        for i, path in enumerate(recent):
            label = f"&{i + 1} {path.name}" if i < 9 else f"1&0 {path.name}"
            action = QAction(label.replace("&&", "&"), menu)
            action.setObjectName(f"recent_{i}")
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.setData(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_recent(p))
            menu.addAction(action)
        if not recent:
            empty = QAction("(none yet)", menu)
            empty.setEnabled(False)
            menu.addAction(empty)
        menu.addSeparator()
        menu.addAction(self.clear_recent_action)
        self.clear_recent_action.setEnabled(bool(recent))

    def recent_actions(self) -> list[QAction]:
        """The entries of Open Recent (newest first), as the menu shows them."""
        return [a for a in self.recent_menu.actions() if a.objectName().startswith("recent_")]

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.rebuild_recent_menu()

    # -- drops -------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A session dropped on the window opens as a session; anything else goes
        # on to the window's own drop handling (tensors).
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            assert isinstance(event, QDragEnterEvent | QDropEvent)
            path = _dropped_session(event)
            if path is not None:
                event.acceptProposedAction()
                if kind == QEvent.Type.Drop:
                    self.open_session(path)
                return True
        return super().eventFilter(watched, event)


def _dropped_session(event: QDragEnterEvent | QDropEvent) -> Path | None:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and persistence.is_session_path(url.toLocalFile()):
            return Path(url.toLocalFile())
    return None
