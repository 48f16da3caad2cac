"""compute/kept.py: what is kept instead of computed again."""

from __future__ import annotations

import threading

import numpy as np

from softmax_lab.compute.kept import LastVector, Once


class _CountingLock:
    """A lock that counts the threads that have asked for it (before they wait)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.asked = 0
        self.changed = threading.Condition()

    def __enter__(self) -> bool:
        with self.changed:
            self.asked += 1
            self.changed.notify_all()
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)


def test_once_computes_for_the_first_reader_only_even_when_readers_race():
    calls: list[int] = []
    lock = _CountingLock()

    def slow() -> list[int]:
        calls.append(threading.get_ident())
        # Still computing when every other reader has asked for the value.
        with lock.changed:
            assert lock.changed.wait_for(lambda: lock.asked == 8, timeout=10)
        return [42]

    once = Once(slow)
    once._lock = lock  # type: ignore[assignment]
    seen: list[object] = []
    readers = [threading.Thread(target=lambda: seen.append(once.get())) for _ in range(8)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert len(calls) == 1
    assert len(seen) == 8 and all(value is seen[0] for value in seen)
    assert once.get() is seen[0] and len(calls) == 1


def test_once_lets_go_of_what_its_computation_held():
    big = np.zeros(10)
    held = [big]
    once = Once(lambda: float(held[0].sum()))
    assert once.get() == 0.0
    assert once._compute is None  # the closure (and the arrays it held) is released


def test_last_vector_keeps_one_value_for_an_unchanging_array_only():
    kept: LastVector[int] = LastVector()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    a = np.arange(3.0)
    a.flags.writeable = False
    assert kept.get(a, "k", compute) == 1
    assert kept.get(a, "k", compute) == 1  # kept
    assert kept.get(a, "other key", compute) == 2
    writable = np.arange(3.0)
    assert kept.get(writable, "k", compute) == 3
    assert kept.get(writable, "k", compute) == 4  # may have changed in place: never kept
