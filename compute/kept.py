"""Work kept instead of repeated: per vector across temperatures, per result until read.

A temperature drag changes only T: what the logits alone determine (the T = 1
reference of the ghost bars, the logits stored in the dtype, their max and counts)
is computed once per vector (:class:`LastVector`). Only arrays that cannot change
are kept for: read-only and owning their data (a read-only view of a writable array
can still change); the session makes every vector one.

What only some views show (the naive path, the loss) is computed when first read
(:class:`Once`), so a tick pays nothing for the tabs that are hidden.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


def unchanging(array: object) -> bool:
    """Whether ``array`` can be trusted not to change (see the module docstring)."""
    return isinstance(array, np.ndarray) and array.flags.owndata and not array.flags.writeable


class Once(Generic[V]):
    """A value computed on the first read, by whichever thread reads first, then kept.

    What the computation holds on to (tensors, arrays) is released once it has run.
    """

    def __init__(self, compute: Callable[[], V]) -> None:
        self._compute: Callable[[], V] | None = compute
        self._value: V | None = None
        self._lock = threading.Lock()

    def get(self) -> V:
        with self._lock:
            if self._compute is not None:
                self._value = self._compute()
                self._compute = None
            return self._value  # type: ignore[return-value]


class LastVector(Generic[V]):
    """One value kept for the last unchanging array it was computed from.

    The slot is replaced, never grown. Guarded by a lock: the window computes small
    vectors inline and large ones on a worker, so two computations can run at once.
    """

    def __init__(self) -> None:
        self._slot: tuple[np.ndarray, Hashable, V] | None = None
        self._lock = threading.Lock()

    def get(self, array: np.ndarray, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for (``array``, ``key``): kept if it is the last one, else ``compute()``."""
        with self._lock:
            slot = self._slot
        keep = unchanging(array)
        if keep and slot is not None and slot[0] is array and slot[1] == key:
            return slot[2]
        value = compute()
        if keep:
            with self._lock:
                self._slot = (array, key, value)
        return value
