"""What Softmax Lab remembers between runs: recent files, theme, last session, window geometry.

A thin wrapper over :class:`QSettings` in INI format at an explicit path, so
tests (and people who keep several profiles) choose where it lives: pass
``path``, or set ``SOFTMAX_LAB_CONFIG_DIR``; otherwise it is
``<config dir>/softmax-lab/settings.ini`` (``~/.config`` on Linux, the
platform's config folder elsewhere).

Values are stored as plain strings (lists as JSON text): QSettings' INI
backend returns a one-element list as a bare string, and a hand-edited or
damaged file must never crash the window, so every getter falls back to its
default on anything unexpected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

CONFIG_DIR_ENV = "SOFTMAX_LAB_CONFIG_DIR"
MAX_RECENT = 10
THEMES: tuple[str, ...] = ("system", "light", "dark")
"""Theme choices: follow the operating system, or force light or dark."""

_RECENT = "recent/files"
_THEME = "appearance/theme"
_LAST_SESSION = "session/last"
_GEOMETRY = "window/geometry"


def config_directory() -> Path:
    """Where settings live: ``$SOFTMAX_LAB_CONFIG_DIR``, else the platform's config folder."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericConfigLocation)
    return Path(base or Path.home() / ".config") / "softmax-lab"


class Settings:
    """Persistent preferences of Softmax Lab.

    Parameters
    ----------
    path
        The INI file; default ``config_directory() / "settings.ini"``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_directory() / "settings.ini"
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)

    def sync(self) -> None:
        """Write pending changes to disk now (QSettings also does so on its own)."""
        self._q.sync()

    # -- recent files --------------------------------------------------------------

    def recent_files(self) -> list[Path]:
        """Recently opened or saved files, newest first; files that no longer exist are dropped."""
        stored = self._string_list(_RECENT)
        paths = [Path(p) for p in stored]
        existing = [p for p in paths if p.is_file()]
        if len(existing) != len(paths):
            self._set_string_list(_RECENT, [str(p) for p in existing])
        return existing

    def add_recent(self, path: str | os.PathLike[str]) -> None:
        """Put ``path`` first in the recent files (once; at most :data:`MAX_RECENT` kept)."""
        new = Path(os.path.abspath(path))
        paths = [new] + [
            p for p in (Path(s) for s in self._string_list(_RECENT)) if not _same_file(p, new)
        ]
        self._set_string_list(_RECENT, [str(p) for p in paths[:MAX_RECENT]])

    def remove_recent(self, path: str | os.PathLike[str]) -> None:
        gone = Path(os.path.abspath(path))
        kept = [s for s in self._string_list(_RECENT) if not _same_file(Path(s), gone)]
        self._set_string_list(_RECENT, kept)

    def clear_recent(self) -> None:
        self._set_string_list(_RECENT, [])

    # -- appearance -------------------------------------------------------------------

    @property
    def theme(self) -> str:
        """``"system"`` (default), ``"light"`` or ``"dark"``."""
        value = self._q.value(_THEME, "system")
        return value if value in THEMES else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        if value not in THEMES:
            raise ValueError(f"unknown theme {value!r}; choose one of {', '.join(THEMES)}")
        self._q.setValue(_THEME, value)
        self.sync()

    # -- session ------------------------------------------------------------------------

    @property
    def last_session(self) -> Path | None:
        """The session file last opened or saved (None when none, or it is gone)."""
        value = self._q.value(_LAST_SESSION, "")
        if not isinstance(value, str) or not value:
            return None
        path = Path(value)
        return path if path.is_file() else None

    @last_session.setter
    def last_session(self, value: str | os.PathLike[str] | None) -> None:
        self._q.setValue(_LAST_SESSION, "" if value is None else os.path.abspath(value))
        self.sync()

    # -- window -----------------------------------------------------------------------------

    @property
    def window_geometry(self) -> QByteArray | None:
        """What :meth:`QWidget.saveGeometry` returned when the window last closed."""
        value = self._q.value(_GEOMETRY)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray | bytes | None) -> None:
        if value is None:
            self._q.remove(_GEOMETRY)
        else:
            self._q.setValue(_GEOMETRY, QByteArray(value))
        self.sync()

    # -- helpers ----------------------------------------------------------------------------

    def _string_list(self, key: str) -> list[str]:
        raw: Any = self._q.value(key, "")
        if not isinstance(raw, str) or not raw:
            return []
        try:
            import json  # here, not at the top: settings are read before the first frame

            value = json.loads(raw)
        except ValueError:
            return []
        if not isinstance(value, list):
            return []
        return [v for v in value if isinstance(v, str) and v]

    def _set_string_list(self, key: str, values: list[str]) -> None:
        import json

        self._q.setValue(key, json.dumps(values, ensure_ascii=False))
        self.sync()


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.samefile(b)
    except OSError:
        return False
