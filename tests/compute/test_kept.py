"""compute/kept.py: what is kept instead of computed again."""

from __future__ import annotations

import threading
import time

import numpy as np

from softmax_lab.compute.kept import LastVector, Once


def test_once_computes_for_the_first_reader_only_even_when_readers_race():
    calls: list[int] = []
    start = threading.Barrier(8)

    def slow() -> list[int]:
        calls.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every other reader to arrive meanwhile
        return [42]

    once = Once(slow)
    seen: list[object] = []

    def read() -> None:
        start.wait()
        seen.append(once.get())

    readers = [threading.Thread(target=read) for _ in range(8)]
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
