"""Reading the rows of a memory-mapped array with ``pread`` instead of touching the map.

The batch statistics (compute/batch.py) and the loaders' non-finite count
(compute/loaders.py) stream whole gigabyte files; through the map each first
touch is a page fault and every page read stays counted in the process's RSS.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from softmax_lab.compute.errors import LoadError


class FileRows:
    """Reads rows of a read-only memory-mapped batch with ``pread`` instead of touching the map.

    Touching a mapping costs a page fault per few pages the first time (0.4 s per
    GiB measured here, in a fresh process: most of a first view) and leaves every
    page counted in the process's RSS; ``pread`` copies from the page cache at
    memory speed (0.19 s per GiB) into a chunk buffer and maps nothing. Used only
    when the file behind the mapping is provably the file opened (same device and
    inode in /proc/self/maps); anywhere else the map is read as it is.
    """

    def __init__(self, fd: int, first_row_offset: int, row_bytes: int) -> None:
        self.fd, self.first_row_offset, self.row_bytes = fd, first_row_offset, row_bytes

    @classmethod
    def open(cls, data: np.ndarray, src_dtype: np.dtype) -> FileRows | None:
        top = data
        while isinstance(top, np.memmap) and not isinstance(top.base, mmap.mmap):
            top = top.base  # a view of the memmap the loader made
        if (
            not isinstance(top, np.memmap)
            or getattr(top, "mode", None) != "r"
            or not top.filename
            or data.dtype != src_dtype
            or not data.flags.c_contiguous
            or not top.flags.c_contiguous
            or data.size == 0
        ):
            return None
        try:
            fd = os.open(top.filename, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            if not maps_file(top.ctypes.data, os.fstat(fd)):
                os.close(fd)
                return None
        except OSError:
            os.close(fd)
            return None
        offset = int(top.offset) + (data.ctypes.data - top.ctypes.data)
        return cls(fd, offset, data.strides[0])

    def read(self, r0: int, r1: int, out: np.ndarray) -> None:
        want = (r1 - r0) * self.row_bytes
        view = memoryview(out).cast("B")[:want]
        got = 0
        while got < want:  # pread may return less than asked (signals, huge reads)
            n = os.preadv(self.fd, [view[got:]], self.first_row_offset + r0 * self.row_bytes + got)
            if n <= 0:
                raise LoadError("the batch's file got shorter while it was being read")
            got += n

    def close(self) -> None:
        os.close(self.fd)


def maps_file(address: int, stat: os.stat_result) -> bool:
    """Whether the mapping holding ``address`` is the file ``stat`` describes."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                span, _perms, _offset, dev, inode, *_ = line.split() + [""]
                lo, _, hi = span.partition("-")
                if int(lo, 16) <= address < int(hi, 16):
                    major, _, minor = dev.partition(":")
                    return (
                        int(inode) == stat.st_ino
                        and int(major, 16) == os.major(stat.st_dev)
                        and int(minor, 16) == os.minor(stat.st_dev)
                    )
    except (OSError, ValueError):
        return False
    return False
