"""A minimal Qt-free signal: connect callables, emit values.

Small on purpose (the session needs nothing more); psygnal would do the same
with another dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Signal:
    """Ordered list of callbacks called synchronously by :meth:`emit`."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        if slot not in self._slots:
            self._slots.append(slot)
        return slot

    def disconnect(self, slot: Callable[..., Any]) -> None:
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        # Copy: a slot may disconnect itself while we iterate.
        for slot in list(self._slots):
            slot(*args)

    def __len__(self) -> int:
        return len(self._slots)
