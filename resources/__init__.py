"""Packaged data: presets, the built-in lecture, example tensors, style sheets.

Qt-free: :func:`path` resolves a resource name to a filesystem path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def path(name: str) -> Path:
    """Filesystem path of the packaged resource ``name`` (e.g. ``"lecture.toml"``)."""
    resource = files(__name__) / name
    if not resource.is_file():
        raise FileNotFoundError(f"no packaged resource named {name!r}")
    return Path(str(resource))
