"""Where Softmax Lab keeps what outlives a run, and the names of those files.

Plain Python (no numpy, no Qt), so ``app/gui.py`` can tell before anything heavy
is imported whether the window will open on a restored session or on the
built-in example, and paint its first frame accordingly.
"""

from __future__ import annotations

import os
from pathlib import Path

SESSION_SUFFIX = ".softmaxlab.json"
LAST_SESSION_NAME = "last-session" + SESSION_SUFFIX
_AUTOSAVE_PREFIX = "autosave-"


def state_directory() -> Path:
    """Where autosaves and the log live: ``$XDG_STATE_HOME/softmax-lab``, by default
    ``~/.local/state/softmax-lab``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "softmax-lab"


def marker_path(directory: Path, pid: int) -> Path:
    return directory / f"running-{pid}"


def autosave_path(directory: Path, pid: int) -> Path:
    return directory / f"{_AUTOSAVE_PREFIX}{pid}{SESSION_SUFFIX}"


def has_state_to_restore(directory: Path) -> bool:
    """Whether a start-up will find a last session or an autosave to bring back.

    A cheap look at file names only: whether the files are readable (and, for an
    autosave, whether its run crashed) is decided by ``app/autosave.py`` later.
    """
    try:
        return (directory / LAST_SESSION_NAME).is_file() or any(
            directory.glob(f"{_AUTOSAVE_PREFIX}*{SESSION_SUFFIX}")
        )
    except OSError:
        return False
