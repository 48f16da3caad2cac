"""Panels that skip their per-tick work while their tab is hidden.

A temperature drag changes ``session.analysis`` many times a second; a panel on a
tab nobody is looking at (the overflow lab sorting 50,257 classes, the loss panel's
gradient bars) need not follow each change. The main window calls ``set_live`` on
each tab change; a panel that is not live only notes that it is stale, and renders
``session.analysis`` once when it becomes live again. New panels are live, so a
panel used on its own (exports, presenter mode, tests) behaves as before.
"""

from __future__ import annotations

from typing import Any


class DeferredWhileHidden:
    """Mixin for a widget with ``session`` and ``set_analysis(analysis)``.

    ``set_analysis`` starts with ``if self.deferred(): return``.
    """

    _live = True
    _stale = False
    session: Any

    def set_live(self, live: bool) -> None:
        """Follow the session (True) or only note that it changed (False: a hidden tab)."""
        self._live = live
        if live and self._stale:
            self.set_analysis(self.session.analysis)  # type: ignore[attr-defined]

    def deferred(self) -> bool:
        """Whether to skip rendering now (remembered: the panel is stale until shown)."""
        self._stale = not self._live
        return self._stale
