"""Safe loaders for logit tensors and class targets.

Files come from anywhere (a colleague's checkpoint, a download, a damaged
disk), so every loader treats its input as hostile:

* nothing is ever unpickled: ``.npy``/``.npz`` headers are parsed and checked
  before NumPy sees the file (object, structured and string arrays are refused),
  ``np.load`` always runs with ``allow_pickle=False``, and ``.pt`` files go
  through ``torch.load(weights_only=True, mmap=False)`` on torch >= 2.10 only;
* declared sizes are checked against the real file size, and against
  ``max_bytes``, before anything is allocated (a 100-byte ``.npy`` that declares
  10**11 elements is refused, never allocated); ``.npz`` members are read
  through a bounded stream after their declared size and compression ratio
  were checked (zip bombs);
* every failure is one :class:`~softmax_lab.compute.errors.LoadError` whose
  message names the file, says what is wrong and what would work.

Decisions (what a person would expect)
--------------------------------------
Format
    The suffix decides (case-insensitive): ``.npy``, ``.npz``, ``.pt``/``.pth``,
    ``.safetensors``, ``.csv``, ``.tsv``; ``.txt`` is read as delimited text too
    (tab, comma, semicolon or whitespace, sniffed from the first line). A file
    whose first bytes contradict its suffix is refused with a hint.
Shape
    Logits are a vector ``(C,)`` or a batch ``(N, C)``, classes on the last
    axis. 0-D, 3-D and larger, and empty arrays (0 classes or 0 rows) are
    refused; the message suggests a reshape that would work.
Dtype
    float16/float32/float64 are kept as stored and memory-mapped for ``.npy``
    and ``.safetensors`` (``memory_mapped=True``, read-only). bfloat16 (and the
    float8 types of ``.pt``) become float32. Integer and bool logits are
    accepted and converted exactly: to float32 up to 16-bit integers, to float64
    for wider ones (exact up to 2**53). Big-endian data is converted to native
    byte order. Conversions allocate, are not memory-mapped and count against
    ``max_bytes``. Complex, string, object, structured, date and
    extended-precision (float128) arrays are refused.
Text (CSV/TSV/TXT)
    UTF-8 (a BOM is fine), blank lines skipped, one distribution per row; the
    result is always 2-D ``(N, C)``, so a single row gives ``(1, C)`` (NumPy's
    ``loadtxt`` returning 1-D for one row is a known trap). A single *column*
    of numbers is read as one distribution ``(1, C)``, since N distributions of
    one class each would be meaningless. The first row is a header of class
    names when none of its cells is a number; a row that mixes names and
    numbers is data (and then refused at its first non-number). Header cells
    must be non-empty text that does not start like a spreadsheet formula
    (``= + - @``). Every cell is parsed with
    :func:`~softmax_lab.compute.parsing.parse_number` (``1_000``, ``٣``,
    ``=SUM(A1)`` are refused with their row and column; rows are counted as
    lines of the file, blank lines included, as an editor shows them).
    ``source_dtype`` is ``"text"`` and the data is float64.
Containers
    ``.npz`` members, ``.safetensors`` tensors and the tensors of a ``.pt``
    dict/list (nested one level, named ``"outer.inner"`` or ``"0"``, ``"1"``
    for lists) are picked by ``name``; with several and no name, the
    LoadError lists them (:func:`list_arrays` lets the UI offer a choice).
    Single-array files (``.npy``, text, a bare ``.pt`` tensor) report
    ``name=None`` and one :class:`ArrayInfo` named after the file's stem.
Non-finite values
    NaN and ±inf are counted in ``nonfinite_count``, never refused: looking at
    them is part of the lab.
Targets
    :func:`load_targets` reads int64 class indices ``(N,)`` from the same
    formats plus ``.txt``. Accepted shapes: ``()``, ``(N,)``, ``(N, 1)``,
    ``(1, N)``; float data must hold whole numbers. ``-100`` (PyTorch's
    ``ignore_index``) marks a row to ignore and passes the range check. In a
    container with several arrays and no ``name``, an array called
    ``targets``, ``target``, ``labels``, ``label``, ``y`` or ``classes`` is
    picked when exactly one exists.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import pathlib
import pickle
import pickletools
import re
import stat
import struct
import tokenize
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from softmax_lab.compute.errors import InvalidInputError, LoadError
from softmax_lab.compute.file_rows import FileRows
from softmax_lab.compute.parsing import parse_number
from softmax_lab.compute.validation import IGNORE_INDEX

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IGNORE_INDEX",
    "MIN_TORCH_VERSION",
    "SUPPORTED_SUFFIXES",
    "TARGET_SUFFIXES",
    "ArrayInfo",
    "LoadedTensor",
    "list_arrays",
    "load_targets",
    "load_tensor",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".npy",
    ".npz",
    ".pt",
    ".pth",
    ".safetensors",
    ".csv",
    ".tsv",
)
"""What the open dialog offers for logits (``.txt`` is also read, as delimited text)."""

TARGET_SUFFIXES: tuple[str, ...] = (*SUPPORTED_SUFFIXES, ".txt")
"""What :func:`load_targets` reads."""

_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_READABLE_SUFFIXES = TARGET_SUFFIXES

DEFAULT_MAX_BYTES: int = 16 * 2**30
"""Cap on what one load may allocate: 16 GiB.

Memory-mapped data (float ``.npy``/``.safetensors``) does not count: the OS
pages it in on demand. Everything else is allocated in full (``.pt`` files,
``.npz`` members, text, dtype conversions), and 16 GiB holds the largest
realistic batch of logits held in memory (256k-token vocabulary x 16k
positions in float32) while turning a hostile or mistaken multi-hundred-GB
declaration into a clear message instead of an out-of-memory kill. It does not
know the machine's RAM: callers with less memory pass a smaller ``max_bytes``.
"""

MIN_TORCH_VERSION: tuple[int, int] = (2, 10)
"""torch < 2.10 can run code from a crafted checkpoint even with
``weights_only=True`` (CVE-2025-32434, CVE-2026-24747)."""

# Text is parsed into memory: roughly 8 bytes per value plus the growth of the
# buffer, and a value takes at least 2 bytes of text ("1,"), so 1 byte of text
# can cost up to ~8 bytes of memory.
_TEXT_EXPANSION = 8
# The safetensors format itself refuses headers above 100 MB.
_SAFETENSORS_MAX_HEADER = 100_000_000
# NumPy's own limit for a .npy header (it parses the header with literal_eval).
_NPY_MAX_HEADER = 10_000
# A member's npy header (magic, length, dict, padding) is at most this big.
_NPY_HEADER_SLACK = _NPY_MAX_HEADER + 64
# Real logits compress poorly (float noise): ~1.1:1. Deflate tops out near
# 1032:1 (all zeros). A big member that claims more than 100:1 is a zip bomb,
# or data so repetitive that it is not worth loading.
_ZIP_RATIO_LIMIT = 100
_ZIP_RATIO_FLOOR = 16 * 2**20
_MAX_ZIP_MEMBERS = 65_536
_READ_CHUNK = 16 * 2**20
_COUNT_CHUNK = 2**22
_TARGET_NAMES = ("targets", "target", "labels", "label", "y", "classes")
_FORMULA_STARTS = ("=", "+", "-", "@")

# What a damaged zip (.npz or .pt container) can raise from zipfile/zlib.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    OverflowError,
    KeyError,
    IndexError,
)
# What NumPy's .npy header parser can raise on a damaged header.
_NPY_HEADER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    SyntaxError,
    tokenize.TokenError,  # NumPy re-tokenizes headers it cannot parse (Python 2 headers)
    RecursionError,
    EOFError,
    OverflowError,
    KeyError,
    MemoryError,
)


@dataclass(frozen=True)
class ArrayInfo:
    """One array inside a file: what the UI shows when asking which to open."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, eq=False)
class LoadedTensor:
    """Logits read from a file, with what a person needs to know about them."""

    path: pathlib.Path
    data: np.ndarray
    """1-D ``(C,)`` or 2-D ``(N, C)``, float16/32/64; may be a read-only ``np.memmap``."""
    name: str | None
    """The array picked from a container; ``None`` for single-array files."""
    available: tuple[ArrayInfo, ...]
    class_names: tuple[str, ...] | None
    source_dtype: str
    nonfinite_count: int
    memory_mapped: bool
    targets: np.ndarray | None = None
    """(N,) int64 target classes from a text file's ``target``/``label`` column, if it has one."""


# A text header naming one of these (any case) marks the column of target classes.
TARGET_COLUMN_NAMES = frozenset({"target", "targets", "label", "labels", "y"})


# -- public API ---------------------------------------------------------------------


def list_arrays(path: str | os.PathLike[str]) -> tuple[ArrayInfo, ...]:
    """List the arrays a file holds, without loading their data where possible.

    Parameters
    ----------
    path
        A ``.npy``, ``.npz``, ``.pt``/``.pth``, ``.safetensors``, ``.csv``,
        ``.tsv`` or ``.txt`` file.

    Returns
    -------
    tuple of ArrayInfo
        One entry per candidate array (one for single-array files), with the
        dtype as stored; unsupported dtypes are listed too (loading them then
        explains why they are refused). ``.pt`` and text files are read in full
        (their formats have no separate index); the usual size limits apply.

    Raises
    ------
    LoadError
        The file is missing, unreadable, damaged or of an unknown type.
    """
    src = _source(path, _READABLE_SUFFIXES)
    with _memory_guard(src):
        return _list_arrays(src)


def _list_arrays(src: _Source) -> tuple[ArrayInfo, ...]:
    if src.suffix == ".npy":
        header = _npy_file_header(src)
        return (ArrayInfo(src.stem, header.shape, header.label),)
    if src.suffix == ".npz":
        with _open_zip(src) as zf:
            return tuple(info for info, _ in _npz_index(zf, src))
    if src.suffix in (".pt", ".pth"):
        candidates, _ = _torch_candidates(_torch_load(src, DEFAULT_MAX_BYTES), src)
        return tuple(info for info, _ in candidates)
    if src.suffix == ".safetensors":
        return tuple(entry.info for entry in _safetensors_index(src).values())
    class_names, table = _read_text(src, DEFAULT_MAX_BYTES)
    return (ArrayInfo(src.stem, _text_logits(table, class_names)[0].shape, "text"),)


def load_tensor(
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedTensor:
    """Load logits from a file, safely.

    Parameters
    ----------
    path
        A ``.npy``, ``.npz``, ``.pt``/``.pth``, ``.safetensors``, ``.csv``,
        ``.tsv`` or ``.txt`` file (see the module docstring for the rules).
    name
        Which array to take from a container (``.npz`` member, ``.safetensors``
        tensor, ``.pt`` dict key such as ``"logits"`` or ``"outputs.logits"``,
        list index such as ``"0"``). Needed only when the file holds several.
    max_bytes
        The most this load may allocate; memory-mapped data does not count.

    Returns
    -------
    LoadedTensor
        ``data`` is ``(C,)`` or ``(N, C)`` float16/32/64 (text: always 2-D).

    Raises
    ------
    LoadError
        For every problem with the file, with a message naming the file, what
        is wrong and what would work.
    ValueError
        ``max_bytes`` is not a positive integer (a programming error).
    """
    _check_max_bytes(max_bytes)
    src = _source(path, _READABLE_SUFFIXES)
    with _memory_guard(src):
        return _load_tensor(src, name, max_bytes)


def _load_tensor(src: _Source, name: str | None, max_bytes: int) -> LoadedTensor:
    if src.suffix in _TEXT_SUFFIXES:
        _check_single_name(src, name)
        header, table = _read_text(src, max_bytes)
        header, table, targets = _split_target_column(header, table, src.label)
        data, class_names = _text_logits(table, header)
        _check_logits_shape(data.shape, src.label)
        _read_only(data)
        return LoadedTensor(
            path=src.path,
            data=data,
            name=None,
            available=(ArrayInfo(src.stem, data.shape, "text"),),
            class_names=class_names,
            source_dtype="text",
            nonfinite_count=_count_nonfinite(data),
            memory_mapped=False,
            targets=targets,
        )
    raw = _read_binary(src, name, max_bytes, _check_logits_shape)
    data = _as_float(raw.data, raw.what, max_bytes)
    nonfinite = _count_nonfinite(data)
    if nonfinite:
        data = _quiet_nans(data, raw.what, max_bytes)
    mapped = raw.memory_mapped and data is raw.data
    _read_only(data)
    return LoadedTensor(
        path=src.path,
        data=data,
        name=raw.name,
        available=raw.available,
        class_names=None,
        source_dtype=raw.source_dtype,
        nonfinite_count=nonfinite,
        memory_mapped=mapped,
    )


def _read_only(data: np.ndarray) -> None:
    """Loaded logits are never edited. Read-only, as a memory-mapped file already is, the
    batch statistics may keep what does not depend on the temperature (and, on a GPU,
    the batch itself) between two temperatures: a .pt, .npz or text batch was
    recomputed from scratch on every tick."""
    data.setflags(write=False)


def load_targets(
    path: str | os.PathLike[str],
    *,
    num_rows: int | None = None,
    num_classes: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Load class-index targets, one per row of logits.

    Parameters
    ----------
    path
        ``.npy``, ``.npz``, ``.pt``/``.pth``, ``.safetensors``, ``.csv``,
        ``.tsv`` or ``.txt`` (one index per line, or a single row).
    num_rows
        When given, the number of targets must equal it.
    num_classes
        When given, every target must lie in ``0..num_classes-1`` (or be
        ``-100``, PyTorch's ``ignore_index``).
    name
        Which array to take from a container holding several; by default one
        called ``targets``/``target``/``labels``/``label``/``y``/``classes``.

    Returns
    -------
    numpy.ndarray
        int64 class indices, shape ``(N,)``.

    Raises
    ------
    LoadError
        For every problem with the file or the values.
    """
    src = _source(path, TARGET_SUFFIXES)
    with _memory_guard(src):
        return _load_targets(src, name, num_rows, num_classes)


def _load_targets(
    src: _Source, name: str | None, num_rows: int | None, num_classes: int | None
) -> np.ndarray:
    if src.suffix in _TEXT_SUFFIXES:
        _check_single_name(src, name)
        _, table = _read_text(src, DEFAULT_MAX_BYTES)
        if table.shape[1] == 1:
            values: np.ndarray = table[:, 0]
        elif table.shape[0] == 1:
            values = table[0]
        else:
            raise LoadError(
                f"{src.label} has {table.shape[0]} rows of {table.shape[1]} values; a targets "
                "file holds one class index per line (or all of them on a single row)"
            )
        what = src.label
    else:
        raw = _read_binary(src, name, DEFAULT_MAX_BYTES, _check_targets_shape, _TARGET_NAMES)
        values, what = raw.data, raw.what
    return _as_targets(values, what, num_rows, num_classes)


# -- sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    path: pathlib.Path
    label: str
    suffix: str
    size: int

    @property
    def stem(self) -> str:
        return self.path.stem


@contextlib.contextmanager
def _memory_guard(src: _Source) -> Iterator[None]:
    """Within the cap, the machine may still lack the memory: say so, as a LoadError."""
    try:
        yield
    except MemoryError:
        raise LoadError(
            f"{src.label} ({_human(src.size)}) does not fit in the memory available; close "
            "other programs, or save the logits as .npy or .safetensors, which are memory-mapped"
        ) from None


def _check_max_bytes(max_bytes: int) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")


def _source(path: str | os.PathLike[str], suffixes: tuple[str, ...]) -> _Source:
    """Resolve and check the path: exists, regular file, known suffix, not empty."""
    try:
        p = pathlib.Path(os.fspath(path))
    except TypeError:
        raise LoadError(f"expected a file path, got a {type(path).__name__}") from None
    # A file name may hold control characters (even newlines): keep messages one clean line.
    label = "".join(ch if ch.isprintable() else "?" for ch in (p.name or str(p)))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise LoadError(f"{label}: no such file ({p}); check the path") from None
    except PermissionError:
        raise LoadError(f"{label}: permission denied; check the file's permissions ({p})") from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"{label}: cannot be read ({_short(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise LoadError(f"{label} is a folder, not a file; choose a file inside it")
    if not stat.S_ISREG(st.st_mode):
        # Reading a pipe or a device could block forever or never end.
        raise LoadError(f"{label} is not a regular file (a pipe or a device); choose a saved file")
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        raise LoadError(
            f"{label}: Softmax Lab does not read {suffix or 'files without a suffix'}; "
            f"it reads {', '.join(suffixes)}"
        )
    if st.st_size == 0:
        raise LoadError(f"{label} is empty (0 bytes); it may not have finished saving")
    return _Source(p, label, suffix, st.st_size)


def _open_binary(src: _Source) -> BinaryIO:
    try:
        return open(src.path, "rb")  # callers close it with `with`
    except PermissionError:
        raise LoadError(
            f"{src.label}: permission denied; check the file's permissions ({src.path})"
        ) from None
    except OSError as exc:
        raise LoadError(f"{src.label}: cannot be opened ({_short(exc)})") from None


def _head(src: _Source, n: int = 64) -> bytes:
    with _open_binary(src) as f:
        try:
            return f.read(n)
        except OSError as exc:
            raise LoadError(f"{src.label}: cannot be read ({_short(exc)})") from None


def _kind_hint(head: bytes) -> str:
    """What the first bytes look like, for a message about a mismatched suffix."""
    if head.startswith(b"\x93NUMPY"):
        return "; it looks like a NumPy .npy file: rename it to .npy"
    if head.startswith(b"PK\x03\x04"):
        return (
            "; it is a zip archive, as written by np.savez (.npz) or torch.save (.pt): "
            "rename it accordingly"
        )
    if len(head) > 9 and head[8:10] == b'{"':
        return "; it looks like a .safetensors file: rename it to .safetensors"
    if head[:1] == b"\x80":
        return "; it looks like a Python pickle, which Softmax Lab never unpickles"
    return ""


# -- binary formats ---------------------------------------------------------------------

ShapeCheck = Callable[[tuple[int, ...], str], None]


@dataclass(frozen=True)
class _Raw:
    """An array as read, before conversion for its purpose (logits or targets)."""

    data: np.ndarray  # native byte order; bool/int/uint/float16/32/64
    what: str  # "x.npz array 'a'": how messages name it
    name: str | None
    available: tuple[ArrayInfo, ...]
    source_dtype: str
    memory_mapped: bool


def _read_binary(
    src: _Source,
    name: str | None,
    max_bytes: int,
    check_shape: ShapeCheck,
    prefer: tuple[str, ...] = (),
) -> _Raw:
    if name is not None and not isinstance(name, str):
        raise LoadError(f"{src.label}: the array name must be text, got {type(name).__name__}")
    if src.suffix == ".npy":
        return _read_npy(src, name, max_bytes, check_shape)
    if src.suffix == ".npz":
        return _read_npz(src, name, max_bytes, check_shape, prefer)
    if src.suffix in (".pt", ".pth"):
        return _read_torch(src, name, max_bytes, check_shape, prefer)
    return _read_safetensors(src, name, max_bytes, check_shape, prefer)


def _check_single_name(src: _Source, name: str | None) -> None:
    if name is not None and not isinstance(name, str):
        raise LoadError(f"{src.label}: the array name must be text, got {type(name).__name__}")
    if name is not None and name != src.stem:
        raise LoadError(
            f"{src.label} holds a single array, so there is no array {_clip(name)} to pick; "
            "open it without a name"
        )


def _pick(
    label: str,
    names: list[str],
    name: str | None,
    prefer: tuple[str, ...],
    noun: str,
) -> str:
    """Choose one entry of a container, or say which exist."""
    listing = ", ".join(_clip(n) for n in names[:20]) + (
        f" and {len(names) - 20} more" if len(names) > 20 else ""
    )
    if name is not None:
        if name in names:
            return name
        raise LoadError(f"{label} has no {noun} {_clip(name)}; it holds {listing}")
    if len(names) == 1:
        return names[0]
    preferred = [n for n in names if n.rsplit(".", 1)[-1].lower() in prefer]
    if len(preferred) == 1:
        return preferred[0]
    raise LoadError(f"{label} holds {noun}s {listing}; pick one with name=...")


@dataclass(frozen=True)
class _NpyHeader:
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype | None  # None: a structured dtype (refused, so never built)
    offset: int  # where the data starts

    @property
    def nbytes(self) -> int:
        assert self.dtype is not None
        return _count(self.shape) * self.dtype.itemsize

    @property
    def label(self) -> str:
        return "structured" if self.dtype is None else _dtype_label(self.dtype)


# The descr strings np.save writes for non-structured arrays: byte order, kind, size.
_NPY_DESCR = re.compile(
    r"[<>|=]?(?:[biufc][1-9][0-9]*|[SUV][0-9]+|O|[Mm]8(?:\[[0-9]*[a-zA-Z]+\])?)\Z"
)
_NPY_KEYS = {"descr", "fortran_order", "shape"}


def _read_exact(fp: BinaryIO, n: int, what: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise LoadError(f"{what} ends inside its .npy header: the file is truncated")
    return data


def _read_npy_header(fp: BinaryIO, what: str) -> _NpyHeader:
    """Parse a .npy header from ``fp`` without reading any data.

    The header dict is checked strictly first (``ast.literal_eval``, exact keys,
    a descr as np.save writes it), so that NumPy's own parser, which then
    builds the dtype, never takes its lenient path for Python 2 headers (that
    path re-tokenizes the text and warns).
    """
    try:
        magic = _read_exact(fp, 8, what)
        if not magic.startswith(b"\x93NUMPY"):
            raise LoadError(f"{what} is not a NumPy .npy file (its first bytes are wrong)")
        version = (magic[6], magic[7])
        if version == (3, 0):
            raise LoadError(
                f"{what} uses .npy format 3.0, which NumPy writes only for structured arrays "
                "with non-Latin-1 field names; save a plain numeric array with np.save"
            )
        if version not in ((1, 0), (2, 0)):
            raise LoadError(
                f"{what} declares .npy format version {version[0]}.{version[1]}, which NumPy "
                "does not write; the file is damaged or not a .npy file"
            )
        length_bytes = _read_exact(fp, 2 if version == (1, 0) else 4, what)
        length = int.from_bytes(length_bytes, "little")
        if length > _NPY_MAX_HEADER:
            raise LoadError(
                f"{what} has a {length}-byte .npy header, more than the {_NPY_MAX_HEADER} "
                "bytes NumPy reads safely: the header is damaged or crafted"
            )
        raw = _read_exact(fp, length, what)
        offset = 8 + len(length_bytes) + length
    except OSError as exc:
        raise LoadError(f"{what} cannot be read ({_short(exc)})") from None
    try:
        fields = ast.literal_eval(raw.decode("latin1"))
    except _NPY_HEADER_ERRORS as exc:
        raise LoadError(f"{what} has a damaged .npy header ({_short(exc)})") from None
    if not isinstance(fields, dict) or set(fields) != _NPY_KEYS:
        raise LoadError(
            f"{what} has a damaged .npy header (not a dict of descr, fortran_order, shape)"
        )
    shape, fortran, descr = fields["shape"], fields["fortran_order"], fields["descr"]
    # bools are ints to Python (and to NumPy's check); negatives pass NumPy's check too.
    if not isinstance(shape, tuple) or any(type(n) is not int or n < 0 for n in shape):
        raise LoadError(
            f"{what} declares an impossible shape {_clip(shape)}; the header is damaged"
        )
    if not isinstance(fortran, bool):
        raise LoadError(f"{what} has a damaged .npy header (fortran_order is not True/False)")
    if isinstance(descr, list):
        return _NpyHeader(shape, fortran, None, offset)
    if not isinstance(descr, str) or not _NPY_DESCR.match(descr):
        raise LoadError(f"{what} has a damaged .npy header (unknown dtype {_clip(descr)})")
    reader = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    try:
        _, _, dtype = reader(io.BytesIO(length_bytes + raw), _NPY_MAX_HEADER)
    except _NPY_HEADER_ERRORS as exc:
        raise LoadError(f"{what} has a damaged .npy header ({_short(exc)})") from None
    return _NpyHeader(shape, fortran, np.dtype(dtype), offset)


def _npy_file_header(src: _Source) -> _NpyHeader:
    """Header of a .npy file, checked against the file's size."""
    with _open_binary(src) as f:
        head = f.read(8)
        if not head.startswith(b"\x93NUMPY"):
            raise LoadError(
                f"{src.label} is not a NumPy .npy file (no NumPy magic bytes){_kind_hint(head)}"
            )
        f.seek(0)
        header = _read_npy_header(f, src.label)
    if header.dtype is None or header.dtype.hasobject:
        return header  # structured or pickled: refused by dtype, never read
    expected = header.offset + header.nbytes
    if src.size < expected:
        raise LoadError(
            f"{src.label} declares a {header.label} array of shape "
            f"{_shape_text(header.shape)} ({_human(header.nbytes)}) but holds only "
            f"{_human(src.size - header.offset)} of data: the file is truncated or damaged"
        )
    if src.size > expected:
        raise LoadError(
            f"{src.label} has {_human(src.size - expected)} of unexpected data after its array; "
            "np.save never writes that, so the file is damaged"
        )
    return header


def _read_npy(src: _Source, name: str | None, max_bytes: int, check_shape: ShapeCheck) -> _Raw:
    _check_single_name(src, name)
    header = _npy_file_header(src)
    dtype = _check_npy_dtype(header, src.label)
    check_shape(header.shape, src.label)
    try:
        data = np.load(src.path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise LoadError(f"{src.label} cannot be memory-mapped ({_short(exc)})") from None
    if not isinstance(data, np.ndarray) or data.shape != header.shape or data.dtype != dtype:
        raise LoadError(f"{src.label} changed while it was being read; open it again")
    label = header.label
    data, mapped = _native(data, src.label, max_bytes, True)
    return _Raw(data, src.label, None, (ArrayInfo(src.stem, header.shape, label),), label, mapped)


# .npz ------------------------------------------------------------------------------


class _ZipHandle:
    """``zipfile.ZipFile`` whose opening errors become LoadError."""

    def __init__(self, src: _Source) -> None:
        self.src = src
        head = _head(src, 64)
        if not head.startswith(b"PK"):
            raise LoadError(f"{src.label} is not a .npz (zip) archive{_kind_hint(head)}")
        try:
            self.zf = zipfile.ZipFile(src.path)
        except _ZIP_ERRORS as exc:
            raise LoadError(
                f"{src.label} is not a readable zip archive ({_short(exc)}); "
                "the file is truncated or damaged"
            ) from None

    def __enter__(self) -> zipfile.ZipFile:
        return self.zf

    def __exit__(self, *exc: object) -> None:
        self.zf.close()


def _open_zip(src: _Source) -> _ZipHandle:
    return _ZipHandle(src)


def _check_zip_member(info: zipfile.ZipInfo, what: str, max_bytes: int, full: bool) -> None:
    """Refuse encrypted/exotic members and, before a full read, bombs and oversized ones."""
    if info.flag_bits & 0x1:
        raise LoadError(f"{what} is encrypted; save it again without a password")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise LoadError(
            f"{what} uses zip compression method {info.compress_type}; np.savez and "
            "torch.save write stored or deflated members only"
        )
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise LoadError(f"{what} is a stored member whose sizes disagree: the archive is damaged")
    if not full:
        return
    if info.file_size > max_bytes + _NPY_HEADER_SLACK:
        raise LoadError(
            f"{what} would take {_human(info.file_size)} in memory once unpacked, over the "
            f"limit of {_human(max_bytes)}; save it with np.save as .npy, which is memory-mapped"
        )
    if info.file_size > _ZIP_RATIO_FLOOR and info.file_size > _ZIP_RATIO_LIMIT * max(
        info.compress_size, 1
    ):
        raise LoadError(
            f"{what} would expand from {_human(info.compress_size)} to "
            f"{_human(info.file_size)} (more than {_ZIP_RATIO_LIMIT}:1); real logits compress "
            "far less, so this looks like a zip bomb and is not unpacked. If the data is "
            "genuine, save it uncompressed (np.save or np.savez)"
        )


def _npz_members(zf: zipfile.ZipFile, src: _Source) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        # FIX (atheris): ZipInfo.is_dir() raised IndexError on a member with an empty name;
        # a folder's name ends in "/", so the suffix test alone skips both.
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[: -len(".npy")]
        if key in members:
            raise LoadError(
                f"{src.label} holds two arrays named {_clip(key)}; np.savez never writes that, so "
                "the archive is damaged or crafted"
            )
        members[key] = info
        if len(members) > _MAX_ZIP_MEMBERS:
            raise LoadError(
                f"{src.label} holds more than {_MAX_ZIP_MEMBERS} arrays; save the logits "
                "you need in a file of their own"
            )
    if not members:
        raise LoadError(
            f"{src.label} is a zip archive without .npy arrays in it; Softmax Lab reads .npz "
            "files written by np.savez"
        )
    return members


def _npz_index(zf: zipfile.ZipFile, src: _Source) -> list[tuple[ArrayInfo, zipfile.ZipInfo]]:
    out = []
    for key, info in _npz_members(zf, src).items():
        what = f"{src.label} array {_clip(key)}"
        _check_zip_member(info, what, 0, full=False)
        try:
            with zf.open(info) as fp:
                header = _read_npy_header(fp, what)  # type: ignore[arg-type]
        except _ZIP_ERRORS as exc:
            raise LoadError(
                f"{what} cannot be read ({_short(exc)}); the archive is damaged"
            ) from None
        out.append((ArrayInfo(key, header.shape, header.label), info))
    return out


def _read_npz(
    src: _Source,
    name: str | None,
    max_bytes: int,
    check_shape: ShapeCheck,
    prefer: tuple[str, ...],
) -> _Raw:
    with _open_zip(src) as zf:
        index = _npz_index(zf, src)
        available = tuple(info for info, _ in index)
        if name is not None and name.endswith(".npy"):
            name = name[: -len(".npy")]
        key = _pick(src.label, [a.name for a in available], name, prefer, "array")
        info = next(zi for a, zi in index if a.name == key)
        what = f"{src.label} array {_clip(key)}"
        _check_zip_member(info, what, max_bytes, full=True)
        try:
            with zf.open(info) as fp:
                header = _read_npy_header(fp, what)  # type: ignore[arg-type]
                dtype = _check_npy_dtype(header, what)
                check_shape(header.shape, what)
                nbytes = header.nbytes
                if header.offset + nbytes != info.file_size:
                    raise LoadError(
                        f"{what} declares {_human(nbytes)} of data but the archive says the "
                        f"member holds {_human(info.file_size - header.offset)}: damaged"
                    )
                if nbytes > max_bytes:
                    raise LoadError(
                        f"{what} needs {_human(nbytes)} in memory, over the limit of "
                        f"{_human(max_bytes)}; save it as .npy, which is memory-mapped"
                    )
                flat = np.empty(_count(header.shape), dtype=dtype)
                _fill_from_stream(fp, flat, what)  # type: ignore[arg-type]
        except _ZIP_ERRORS as exc:
            raise LoadError(
                f"{what} cannot be read ({_short(exc)}); the archive is truncated or damaged"
            ) from None
    data = flat.reshape(header.shape, order="F" if header.fortran else "C")
    if not data.dtype.isnative:
        # Our own buffer: swap in place instead of allocating a copy.
        data = data.byteswap(inplace=True).view(data.dtype.newbyteorder("="))
    return _Raw(data, what, key, available, header.label, False)


def _fill_from_stream(fp: BinaryIO, flat: np.ndarray, what: str) -> None:
    """Read exactly ``flat.nbytes`` into ``flat``; never more (the stream may lie)."""
    buf = flat.view(np.uint8)
    pos, total = 0, flat.nbytes
    while pos < total:
        chunk = fp.read(min(_READ_CHUNK, total - pos))
        if not chunk:
            raise LoadError(f"{what} ends early: the archive is truncated or damaged")
        buf[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        pos += len(chunk)
    # Reading past the end makes zipfile check the CRC of what was read.
    if fp.read(1):
        raise LoadError(f"{what} holds more data than its header declares: damaged")


# .pt / .pth -----------------------------------------------------------------------------


def _read_torch(
    src: _Source,
    name: str | None,
    max_bytes: int,
    check_shape: ShapeCheck,
    prefer: tuple[str, ...],
) -> _Raw:
    candidates, bare = _torch_candidates(_torch_load(src, max_bytes), src)
    available = tuple(info for info, _ in candidates)
    if bare:
        _check_single_name(src, name)
        key: str | None = None
        tensor = candidates[0][1]
        what = src.label
    else:
        key = _pick(src.label, [a.name for a in available], name, prefer, "tensor")
        tensor = next(t for a, t in candidates if a.name == key)
        what = f"{src.label} tensor {_clip(key)}"
    data, label = _torch_to_numpy(tensor, what, max_bytes, check_shape)
    return _Raw(data, what, key, available, label, False)


def _torch_load(src: _Source, max_bytes: int) -> Any:
    """torch.load with every guard: size, container sanity, torch version, weights_only."""
    if src.size > max_bytes:
        raise LoadError(
            f"{src.label} is {_human(src.size)}, over the limit of {_human(max_bytes)} for a "
            ".pt file (it is read into memory in full); save the logits as .npy or "
            ".safetensors, which are memory-mapped"
        )
    head = _head(src, 64)
    if head.startswith(b"PK\x03\x04"):
        _check_torch_zip(src, max_bytes)
    elif head[:1] != b"\x80":
        # torch.save writes a zip archive (legacy: a pickle, starting with 0x80).
        raise LoadError(f"{src.label} is not a PyTorch file (torch.save output){_kind_hint(head)}")
    try:
        import torch
    except ImportError:
        raise LoadError(
            f"{src.label}: reading .pt files needs PyTorch (torch>=2.10), which is not "
            "installed; install it or save the logits as .npy"
        ) from None
    match = re.match(r"(\d+)\.(\d+)", str(getattr(torch, "__version__", "")))
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if version < MIN_TORCH_VERSION:
        raise LoadError(
            f"{src.label} was not opened: the installed torch {torch.__version__} can run code "
            "hidden in a crafted .pt file even with weights_only=True (CVE-2025-32434, "
            "CVE-2026-24747); upgrade to torch>=2.10, or save the logits as .npy or .safetensors"
        )
    # FIX (fuzzing): torch's unpickler read a legacy (pickle) file with read(n) for every
    # length n the file declares, which allocates n up front: a 400-byte file declaring a
    # 4 GiB string reserved 4 GiB. Through _BoundedReader, read(n) asks for no more than
    # the file holds; and the storages the file declares are checked before torch
    # allocates them.
    reader = _BoundedReader.open(src) if head[:1] == b"\x80" else None
    try:
        if reader is not None:
            _check_legacy_storages(reader, src)
            reader.seek(0)
        return torch.load(
            src.path if reader is None else reader,
            map_location="cpu",
            weights_only=True,
            mmap=False,
        )
    except LoadError:
        raise
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            # FIX (fuzzing): the name comes from the file and may be any length.
            global_name = found.group(1)
            if len(global_name) > 80:
                global_name = global_name[:77] + "..."
            raise LoadError(
                f"{src.label} holds pickled Python objects, not only tensors (it refers to "
                f"{global_name}); Softmax Lab never runs such code. Save plain tensors "
                "(torch.save({'logits': t}, path)) or use .safetensors"
            ) from None
        reason = re.search(r"WeightsUnpickler error: ([^\n]*)", str(exc))
        detail = _printable(reason.group(1)[:160]) if reason else "unreadable pickle"
        raise LoadError(
            f"{src.label} is damaged or holds more than plain tensors ({detail}); save plain "
            "tensors with torch.save or use .safetensors"
        ) from None
    except Exception as exc:
        # torch.load runs a large third-party parser over untrusted bytes; what it raises
        # on damaged input is open-ended (RuntimeError, KeyError, EOFError, struct.error,
        # MemoryError ...). Everything raised here is about the file's content.
        raise LoadError(
            f"{src.label} cannot be read by torch.load ({_short(exc)}); the file is "
            "truncated, damaged or not written by torch.save"
        ) from None
    finally:
        if reader is not None:
            reader.close()


# Bytes per element of the storage classes a legacy torch.save pickle names.
_LEGACY_ITEMSIZE = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
}
_MARK = object()
_UNKNOWN = object()
_PICKLE_ERRORS = (ValueError, IndexError, KeyError, TypeError, EOFError, struct.error, OverflowError)


class _BoundedReader(io.BufferedReader):
    """A file whose ``read(n)`` never asks for more bytes than the file has left."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__(raw)
        self._size = size

    @classmethod
    def open(cls, src: _Source) -> _BoundedReader:
        try:
            return cls(io.FileIO(src.path, "rb"), src.size)
        except PermissionError:
            raise LoadError(
                f"{src.label}: permission denied; check the file's permissions ({src.path})"
            ) from None
        except OSError as exc:
            raise LoadError(f"{src.label}: cannot be opened ({_short(exc)})") from None

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n > 0:
            n = min(n, max(self._size - self.tell(), 0))
        return super().read(n)


def _check_legacy_storages(f: BinaryIO, src: _Source) -> None:
    """The storages a legacy ``.pt`` declares must fit in the file, checked before torch.load.

    FIX (fuzzing): torch's legacy loader allocates each storage at the size its
    pickle declares before it reads any data, so a 400-byte file declaring 2**31
    floats reserved 8 GiB. The pickles (magic number, protocol, system info, the
    saved object) are walked opcode by opcode (pickletools' table; nothing is
    executed), and a small stack model finds each ``('storage', type, key,
    location, numel, view)`` persistent id.
    """
    declared: dict[object, int] = {}
    try:
        for _ in range(4):
            stack: list[object] = []
            memo: dict[object, object] = {}
            for op, arg in _pickle_ops(f):
                _pickle_step(op, arg, stack, memo, declared)
    except _PICKLE_ERRORS as exc:
        raise LoadError(
            f"{src.label} is a damaged legacy PyTorch file ({_short(exc)}); save the tensors "
            "again with torch.save or use .safetensors"
        ) from None
    total = sum(declared.values())
    if total > src.size:
        raise LoadError(
            f"{src.label} declares {_human(total)} of tensor data but the file is only "
            f"{_human(src.size)}: it is damaged or crafted"
        )


_PICKLE_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
# Arguments that are lines of text: pickletools unescapes them with codecs.escape_decode,
# which warns (DeprecationWarning) on a damaged line; they are read raw here.
_TEXT_LINE_ARGS = {"stringnl": 1, "stringnl_noescape": 1, "stringnl_noescape_pair": 2}


def _pickle_ops(f: BinaryIO) -> Iterator[tuple[Any, Any]]:
    """The opcodes of one pickle up to its STOP, with their arguments (as pickletools.genops)."""
    while True:
        code = f.read(1)
        op = _PICKLE_OPCODES.get(code)
        if op is None:
            raise ValueError(f"unknown pickle opcode {code!r}" if code else "the pickle ends early")
        if op.arg is None:
            arg = None
        elif op.arg.name in _TEXT_LINE_ARGS:
            lines = [f.readline() for _ in range(_TEXT_LINE_ARGS[op.arg.name])]
            if not all(line.endswith(b"\n") for line in lines):
                raise ValueError("a text argument of the pickle has no end of line")
            arg = " ".join(line[:-1].decode("latin-1") for line in lines)
        else:
            arg = op.arg.reader(f)
        yield op, arg
        if op.name == "STOP":
            return


def _pickle_step(
    op: Any, arg: Any, stack: list[object], memo: dict[object, object], declared: dict[object, int]
) -> None:
    """One opcode of the stack model: literals, tuples and the memo are followed, the rest
    becomes placeholders (pickletools describes every opcode's stack effect)."""

    def pop_to_mark() -> list[object]:
        at = len(stack) - 1 - stack[::-1].index(_MARK)  # ValueError: no mark
        items = stack[at + 1 :]
        del stack[at:]
        return items

    def pop(n: int) -> list[object]:
        if n > len(stack):
            raise IndexError("the pickle's stack runs empty")
        items = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return items

    name = op.name
    if name == "MARK":
        stack.append(_MARK)
    elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
        memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo.get(arg, _UNKNOWN))
    elif name == "TUPLE":
        stack.append(tuple(pop_to_mark()))
    elif name in ("EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
        stack.append(tuple(pop(("EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3").index(name))))
    elif name == "BINPERSID":
        (pid,) = pop(1)
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage"):
            kind, key, numel = pid[1], pid[2], pid[4]
            if isinstance(numel, int):
                type_name = str(kind).rsplit(" ", 1)[-1].rsplit(".", 1)[-1]
                size = max(numel, 0) * _LEGACY_ITEMSIZE.get(type_name, 1)
                declared.setdefault(key if isinstance(key, (str, bytes)) else id(key), size)
        stack.append(_UNKNOWN)
    else:
        before = op.stack_before
        if pickletools.markobject in before:
            pop_to_mark()
            pop(before.index(pickletools.markobject))
        else:
            pop(len(before))
        after = op.stack_after
        if not before and len(after) == 1:
            stack.append(arg)  # a literal: int, str, bytes, float, None, a GLOBAL's name
        else:
            stack.extend([_UNKNOWN] * len(after))


def _check_torch_zip(src: _Source, max_bytes: int) -> None:
    """A torch.save archive: all members together must fit, and none may be a bomb."""
    try:
        with zipfile.ZipFile(src.path) as zf:
            infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        raise LoadError(
            f"{src.label} is not a readable zip archive ({_short(exc)}); the file is "
            "truncated or damaged"
        ) from None
    if any(i.filename.rsplit("/", 1)[-1] == "constants.pkl" for i in infos):
        # torch.load would hand a TorchScript archive to torch.jit.load (with a warning).
        raise LoadError(
            f"{src.label} is a TorchScript archive (torch.jit.save), not saved tensors; "
            "save the logits with torch.save(t, path)"
        )
    if not any(i.filename.endswith("data.pkl") for i in infos):
        hint = (
            "; it looks like np.savez output: rename it to .npz"
            if any(i.filename.endswith(".npy") for i in infos)
            else ""
        )
        raise LoadError(f"{src.label} is a zip archive but not a torch.save file{hint}")
    total = 0
    for info in infos:
        _check_zip_member(info, f"{src.label} member {_clip(info.filename)}", max_bytes, full=True)
        total += info.file_size
    if total > max_bytes + _NPY_HEADER_SLACK:
        raise LoadError(
            f"{src.label} would take {_human(total)} in memory, over the limit of "
            f"{_human(max_bytes)}; save the logits as .npy or .safetensors, which are memory-mapped"
        )


def _torch_candidates(obj: Any, src: _Source) -> tuple[list[tuple[ArrayInfo, Any]], bool]:
    """Tensors in what torch.load returned: a tensor, or a dict/list of them (one level deep).

    Returns the (info, tensor) pairs and whether the file held one bare tensor.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        return [(ArrayInfo(src.stem, tuple(obj.shape), _torch_label(obj)), obj)], True
    found: list[tuple[ArrayInfo, Any]] = []
    seen: set[str] = set()

    def add(key: str, value: Any) -> None:
        if isinstance(value, torch.Tensor) and key not in seen:
            seen.add(key)
            found.append((ArrayInfo(key, tuple(value.shape), _torch_label(value)), value))

    def items(container: Any) -> Iterable[tuple[str, Any]]:
        if isinstance(container, Mapping):
            return ((str(k), v) for k, v in container.items())
        return ((str(i), v) for i, v in enumerate(container))

    if isinstance(obj, (Mapping, list, tuple)):
        for key, value in items(obj):
            if isinstance(value, (Mapping, list, tuple)):
                for inner, leaf in items(value):
                    add(f"{key}.{inner}", leaf)
            else:
                add(key, value)
    if not found:
        raise LoadError(
            f"{src.label} holds no tensors (torch.load gave a {type(obj).__name__}); save "
            "a tensor, or a dict or list of tensors such as {'logits': t}"
        )
    return found, False


def _torch_label(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _torch_to_numpy(
    t: Any, what: str, max_bytes: int, check_shape: ShapeCheck
) -> tuple[np.ndarray, str]:
    import torch

    label = _torch_label(t)
    if t.layout != torch.strided:
        raise LoadError(f"{what} is a sparse tensor; save t.to_dense() instead")
    if t.is_quantized:
        raise LoadError(f"{what} is a quantized tensor; save t.dequantize() instead")
    if t.is_complex():
        raise LoadError(
            f"{what} holds complex numbers ({label}); softmax needs real logits: save t.real"
        )
    check_shape(tuple(t.shape), what)
    if t.dtype in (torch.float16, torch.float32, torch.float64):
        out_itemsize = t.element_size()
    elif t.is_floating_point():
        out_itemsize = 4  # bfloat16, float8: NumPy has no such type, float32 holds them exactly
    elif t.dtype == torch.bool or not t.dtype.is_floating_point:
        out_itemsize = t.element_size()
    else:  # pragma: no cover - every torch dtype is one of the above
        raise LoadError(f"{what} has dtype {label}, which Softmax Lab cannot read")
    # A tensor's size may be a view far bigger than its storage (stride 0): check first.
    need = t.numel() * out_itemsize
    if need > max_bytes:
        raise LoadError(
            f"{what} needs {_human(need)} in memory, over the limit of {_human(max_bytes)}; "
            "save the logits as .npy or .safetensors, which are memory-mapped"
        )
    # FIX (fuzzing review): within max_bytes, an expanded view (stride 0) of a few stored
    # values made a 1.5 KB file allocate and fill gigabytes. Like a zip member, a tensor
    # may expand past what the file stores only up to the ratio floor.
    stored = t.untyped_storage().nbytes() // max(t.element_size(), 1)
    if t.numel() > stored and need > _ZIP_RATIO_FLOOR:
        raise LoadError(
            f"{what} is an expanded view (stride 0): its {t.numel()} values repeat "
            f"{stored} stored ones and would take {_human(need)} in memory; save the "
            "logits themselves (t.contiguous()) if you mean them"
        )
    t = t.detach()
    if t.is_floating_point() and out_itemsize == 4 and t.dtype != torch.float32:
        t = t.to(torch.float32)
    try:
        arr = t.numpy()
    except (TypeError, RuntimeError) as exc:
        raise LoadError(
            f"{what} has dtype {label}, which NumPy cannot hold ({_short(exc)})"
        ) from None
    arr = np.ascontiguousarray(arr)
    _check_dtype(arr.dtype, what)
    return arr, label


# .safetensors -------------------------------------------------------------------------

# code -> (label, numpy dtype or None when NumPy has no such type, itemsize)
_ST_DTYPES: dict[str, tuple[str, str | None, int]] = {
    "BOOL": ("bool", "|b1", 1),
    "U8": ("uint8", "|u1", 1),
    "I8": ("int8", "|i1", 1),
    "U16": ("uint16", "<u2", 2),
    "I16": ("int16", "<i2", 2),
    "U32": ("uint32", "<u4", 4),
    "I32": ("int32", "<i4", 4),
    "U64": ("uint64", "<u8", 8),
    "I64": ("int64", "<i8", 8),
    "F16": ("float16", "<f2", 2),
    "BF16": ("bfloat16", None, 2),
    "F32": ("float32", "<f4", 4),
    "F64": ("float64", "<f8", 8),
    "C64": ("complex64", "<c8", 8),
    "F8_E4M3": ("float8_e4m3fn", None, 1),
    "F8_E5M2": ("float8_e5m2", None, 1),
}


@dataclass(frozen=True)
class _StEntry:
    info: ArrayInfo
    code: str
    begin: int
    end: int


@dataclass(frozen=True)
class _StIndex:
    entries: dict[str, _StEntry]
    data_start: int

    def values(self) -> Iterable[_StEntry]:
        return self.entries.values()


def _safetensors_index(src: _Source) -> _StIndex:
    """Parse and check a safetensors header: lengths, dtypes, shapes, offsets."""
    label = src.label
    with _open_binary(src) as f:
        try:
            head = f.read(8)
            if len(head) < 8:
                raise LoadError(f"{label} is too short ({src.size} bytes) to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > src.size - 8:
                raise LoadError(
                    f"{label} claims a {n}-byte header but the file has only {src.size} bytes: "
                    f"it is truncated or not a safetensors file{_kind_hint(head)}"
                )
            if n > _SAFETENSORS_MAX_HEADER:
                raise LoadError(
                    f"{label} claims a {_human(n)} header, more than the "
                    f"{_human(_SAFETENSORS_MAX_HEADER)} the safetensors format allows: damaged"
                )
            raw = f.read(n)
        except OSError as exc:
            raise LoadError(f"{label} cannot be read ({_short(exc)})") from None
    if len(raw) != n:
        raise LoadError(f"{label} ends inside its header: the file is truncated")
    if not raw.startswith(b"{"):
        raise LoadError(
            f"{label} does not start with a JSON header: not a safetensors file{_kind_hint(head + raw)}"
        )

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise LoadError(f"{label} names {_clip(k)} twice in its header: damaged or crafted")
            out[k] = v
        return out

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise LoadError(f"{label} has a damaged JSON header ({_short(exc)})") from None
    if not isinstance(header, dict):
        raise LoadError(f"{label} has a header that is not a JSON object: damaged")
    data_start = 8 + n
    data_len = src.size - data_start
    entries: dict[str, _StEntry] = {}
    for key, spec in header.items():
        if key == "__metadata__":
            if not isinstance(spec, dict):
                raise LoadError(f"{label} has __metadata__ that is not a JSON object: damaged")
            continue
        entries[key] = _st_entry(label, key, spec, data_len)
    # Like the safetensors library: tensors tile the data section exactly, in offset order.
    expected = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != expected:
            problem = "overlaps the tensor before it" if entry.begin < expected else "leaves a gap"
            raise LoadError(
                f"{label}: tensor {_clip(entry.info.name)} {problem} (bytes {entry.begin}..{entry.end}); "
                "the header is damaged or crafted"
            )
        expected = entry.end
    if expected != data_len:
        raise LoadError(
            f"{label} has {_human(data_len - expected)} after its last tensor that no tensor "
            "claims: the file is damaged"
        )
    if not entries:
        raise LoadError(f"{label} holds no tensors")
    return _StIndex(entries, data_start)


def _st_entry(label: str, key: str, spec: Any, data_len: int) -> _StEntry:
    what = f"{label} tensor {_clip(key)}"
    if not isinstance(spec, dict):
        raise LoadError(f"{what} has a header entry that is not a JSON object: damaged")
    code, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if not isinstance(code, str):
        raise LoadError(f"{what} has no dtype in the header: damaged")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise LoadError(f"{what} has an impossible shape {_clip(shape)} in the header: damaged")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise LoadError(f"{what} has impossible data_offsets {_clip(offsets)}: damaged")
    begin, end = offsets
    if end > data_len:
        raise LoadError(
            f"{what} claims bytes {begin}..{end} but the file holds only {data_len} bytes of "
            "data: it is truncated, damaged or crafted"
        )
    known = _ST_DTYPES.get(code)
    if known is not None and _count(shape) * known[2] != end - begin:
        raise LoadError(
            f"{what}: shape {_shape_text(tuple(shape))} of {known[0]} needs "
            f"{_count(shape) * known[2]} bytes but its offsets span {end - begin}: damaged"
        )
    dtype_label = known[0] if known is not None else code
    return _StEntry(ArrayInfo(key, tuple(shape), dtype_label), code, begin, end)


def _read_safetensors(
    src: _Source,
    name: str | None,
    max_bytes: int,
    check_shape: ShapeCheck,
    prefer: tuple[str, ...],
) -> _Raw:
    index = _safetensors_index(src)
    available = tuple(e.info for e in index.values())
    key = _pick(src.label, list(index.entries), name, prefer, "tensor")
    entry = index.entries[key]
    what = f"{src.label} tensor {_clip(key)}"
    known = _ST_DTYPES.get(entry.code)
    if known is None:
        raise LoadError(
            f"{what} has dtype {_clip(entry.code)}, which Softmax Lab does not read; save it as "
            "float32 (F32)"
        )
    label, np_dtype, _ = known
    if entry.code == "C64":
        _check_dtype(np.dtype(np_dtype), what)
    if np_dtype is None and entry.code != "BF16":
        raise LoadError(
            f"{what} is {label}, which NumPy cannot hold; save it as float16 or float32"
        )
    shape = entry.info.shape
    check_shape(shape, what)
    count = _count(shape)
    offset = index.data_start + entry.begin
    try:
        if entry.code == "BF16":
            need = count * 4
            if need > max_bytes:
                raise LoadError(
                    f"{what} is bfloat16 and needs {_human(need)} as float32, over the limit of "
                    f"{_human(max_bytes)}; save it as float16 or float32 to memory-map it"
                )
            halves = np.memmap(src.path, dtype="<u2", mode="r", offset=offset, shape=(count,))
            out = np.empty(count, dtype=np.float32)
            # bfloat16 is the top half of a float32: widen the bits, shift them up.
            bits = out.view(np.uint32)
            np.copyto(bits, halves, casting="safe")
            np.left_shift(bits, 16, out=bits)
            del halves
            return _Raw(out.reshape(shape), what, key, available, label, False)
        assert np_dtype is not None  # only BF16 (handled above) has no NumPy dtype here
        mapped = np.memmap(src.path, dtype=np_dtype, mode="r", offset=offset, shape=(count,))
    except (OSError, ValueError) as exc:
        raise LoadError(f"{what} cannot be memory-mapped ({_short(exc)})") from None
    data, is_mapped = _native(mapped.reshape(shape), what, max_bytes, True)
    return _Raw(data, what, key, available, label, is_mapped)


# -- text -------------------------------------------------------------------------------


def _read_text(src: _Source, max_bytes: int) -> tuple[tuple[str, ...] | None, np.ndarray]:
    """Parse delimited text into (header or None, float64 table (rows, columns))."""
    limit = max(max_bytes // _TEXT_EXPANSION, 1)
    if src.size > limit:
        raise LoadError(
            f"{src.label} is {_human(src.size)} of text; text is parsed into memory, so the "
            f"limit is {_human(limit)}. Save large tensors as .npy or .safetensors, which are "
            "memory-mapped"
        )
    head = _head(src, 65536)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError(f"{src.label} is UTF-16 text; save it as UTF-8 (in Excel: 'CSV UTF-8')")
    if b"\0" in head:
        raise LoadError(f"{src.label} is a binary file, not text{_kind_hint(head)}")
    delimiter = _sniff_delimiter(head, src.suffix)
    header: tuple[str, ...] | None = None
    values = array("d")
    ncols: int | None = None
    nrows = 0
    line_no = 0
    try:
        with open(src.path, encoding="utf-8-sig", newline="") as f:
            for line_no, cells in _text_rows(f, delimiter):
                if not any(c.strip() for c in cells):
                    continue  # blank line (or only empty cells, as spreadsheets export)
                if header is None and nrows == 0 and not _any_number(cells):
                    header = _check_header(cells, src.label, line_no)
                    continue
                row = _parse_row(cells, src.label, line_no, header is None and nrows == 0)
                if ncols is None:
                    ncols = len(header) if header is not None else len(row)
                if len(row) != ncols:
                    expected = (
                        f"the header names {ncols} classes"
                        if header is not None
                        else f"the first row has {ncols}"
                    )
                    raise LoadError(
                        f"{src.label}, row {line_no} has {len(row)} values but {expected}; "
                        "every row needs one value per class"
                    )
                values.extend(row)
                nrows += 1
    except UnicodeDecodeError:
        raise LoadError(
            f"{src.label} is not UTF-8 text (near row {line_no + 1}); save it as UTF-8"
        ) from None
    except csv.Error as exc:
        raise LoadError(f"{src.label}, row {line_no + 1}: {_short(exc)}") from None
    except OSError as exc:
        raise LoadError(f"{src.label} cannot be read ({_short(exc)})") from None
    if nrows == 0 or ncols is None:
        if header is not None:
            raise LoadError(f"{src.label} has a header row but no numbers under it")
        raise LoadError(f"{src.label} holds no numbers (only blank lines)")
    table = np.frombuffer(values, dtype=np.float64).reshape(nrows, ncols).copy()
    return header, table


def _sniff_delimiter(head: bytes, suffix: str) -> str | None:
    """The delimiter, from the first non-blank line; None means runs of whitespace."""
    if suffix == ".tsv":
        return "\t"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in ("\t", ",", ";") if suffix == ".txt" else (",", "\t", ";"):
        if delimiter in first:
            return delimiter
    return "," if suffix == ".csv" else None


def _text_rows(f: Any, delimiter: str | None) -> Iterator[tuple[int, list[str]]]:
    if delimiter is None:
        for line_no, line in enumerate(f, start=1):
            yield line_no, line.split()
        return
    reader = csv.reader(f, delimiter=delimiter, strict=True)
    for row in reader:
        yield reader.line_num, row


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except InvalidInputError:
        return False
    return True


def _any_number(cells: list[str]) -> bool:
    return any(_is_number(c) for c in cells)


def _check_header(cells: list[str], label: str, line_no: int) -> tuple[str, ...]:
    names = []
    for col, cell in enumerate(cells, start=1):
        name = cell.strip()
        where = f"{label}, row {line_no}, column {col}"
        if not name:
            raise LoadError(
                f"{where}: the header cell is empty; name every class (if it is a row index "
                "written by pandas, save with index=False)"
            )
        if name.startswith(_FORMULA_STARTS):
            raise LoadError(
                f"{where}: the class name {_clip(name)} starts like a spreadsheet formula; "
                "rename the class"
            )
        try:
            float(name)
        except ValueError:
            pass
        else:
            # float() accepts what parse_number refuses (1_000, non-ASCII digits): a number
            # in disguise, not a class name.
            raise LoadError(
                f"{where}: {_clip(name)} looks like a number but is not written with plain "
                "ASCII digits; write it as digits 0-9 (1000, not 1_000)"
            )
        names.append(name)
    return tuple(names)


def _parse_row(cells: list[str], label: str, line_no: int, first_row: bool) -> list[float]:
    try:
        return [parse_number(c) for c in cells]
    except InvalidInputError:
        pass
    for col, cell in enumerate(cells, start=1):
        try:
            parse_number(cell)
        except InvalidInputError as exc:
            stripped = cell.strip()
            if stripped.startswith(_FORMULA_STARTS):
                hint = " (it looks like a spreadsheet formula: export the values, not formulas)"
            elif first_row and any(ch.isalpha() for ch in stripped):
                hint = " (a header row must name every class with text, and no numbers)"
            else:
                hint = ""
            raise LoadError(f"{label}, row {line_no}, column {col}: {exc}{hint}") from None
    raise AssertionError("unreachable: some cell failed to parse")  # pragma: no cover


def _split_target_column(
    header: tuple[str, ...] | None, table: np.ndarray, label: str
) -> tuple[tuple[str, ...] | None, np.ndarray, np.ndarray | None]:
    """Take a ``target``/``label`` column out of a text table (one class index per row)."""
    if header is None:
        return header, table, None
    columns = [i for i, name in enumerate(header) if name.strip().lower() in TARGET_COLUMN_NAMES]
    if not columns:
        return header, table, None
    if len(columns) > 1:
        raise LoadError(
            f"{label} has {len(columns)} target columns ({', '.join(header[i] for i in columns)}); "
            "keep one"
        )
    col = columns[0]
    num_classes = table.shape[1] - 1
    if num_classes < 1:
        raise LoadError(f"{label} has a {header[col]!r} column but no class columns beside it")
    values = table[:, col]
    with np.errstate(all="ignore"):
        whole = np.isfinite(values) & (values == np.round(values))
    if not whole.all():
        row = int(np.argmin(whole))
        raise LoadError(
            f"{label}, data row {row + 1}: the {header[col]!r} column must hold whole class "
            f"indices (0..{num_classes - 1}), not {values[row]!r}"
        )
    # FIX (fuzzing): check the range on the floats; casting 9.2e18 to int64 first made
    # NumPy warn ("invalid value encountered in cast") and wrap around.
    bad = (values != IGNORE_INDEX) & ((values < 0) | (values >= num_classes))
    if bad.any():
        row = int(np.argmax(bad))
        raise LoadError(
            f"{label}, data row {row + 1}: target {int(values[row])} is out of range: there "
            f"are {num_classes} classes (0..{num_classes - 1})"
        )
    targets = values.astype(np.int64)
    keep = [i for i in range(table.shape[1]) if i != col]
    return tuple(header[i] for i in keep), np.ascontiguousarray(table[:, keep]), targets


def _text_logits(
    table: np.ndarray, header: tuple[str, ...] | None
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Arrange parsed text as logits: rows are distributions; one column is one distribution."""
    if table.shape[1] == 1 and table.shape[0] > 1:
        return table.reshape(1, -1), None
    if table.shape[1] == 1:
        return table, None
    return table, header


# -- checks and conversions --------------------------------------------------------------


def _check_npy_dtype(header: _NpyHeader, what: str) -> np.dtype:
    if header.dtype is None:
        raise LoadError(
            f"{what} holds a structured array (named fields); save one numeric field as its "
            "own array, e.g. np.save(path, x['logits'])"
        )
    _check_dtype(header.dtype, what)
    return header.dtype


def _check_dtype(dt: np.dtype, what: str) -> None:
    """Refuse what cannot be logits or targets, saying what to save instead."""
    if dt.hasobject:
        raise LoadError(
            f"{what} holds an object array (pickled Python objects); Softmax Lab never "
            "unpickles: save numeric data with np.save(allow_pickle=False)"
        )
    if dt.names is not None or dt.subdtype is not None:
        raise LoadError(
            f"{what} holds a structured array (fields {_clip(dt.names or dt.descr)}); save one "
            "numeric field as its own array, e.g. np.save(path, x['logits'])"
        )
    kind = dt.kind
    if kind == "c":
        raise LoadError(
            f"{what} holds complex numbers ({dt.name}); softmax needs real logits: save x.real"
        )
    if kind in "SUa":
        raise LoadError(
            f"{what} holds text strings ({dt.str.lstrip('<>|=')}), not numbers; convert them "
            "with x.astype(float) and save that"
        )
    if kind == "V":
        raise LoadError(f"{what} holds raw bytes (void dtype), not numbers")
    if kind in "Mm":
        raise LoadError(f"{what} holds dates or times ({dt.name}), not numbers")
    if kind == "f" and dt.itemsize not in (2, 4, 8):
        raise LoadError(f"{what} holds extended-precision floats ({dt.name}); save them as float64")
    if kind not in "biuf":
        raise LoadError(f"{what} holds {dt.name} values, not numbers")


def _check_logits_shape(shape: tuple[int, ...], what: str) -> None:
    if len(shape) == 0:
        raise LoadError(
            f"{what} holds a single number (a 0-D array); save a vector of logits (C,) or a "
            "batch (N, C)"
        )
    if len(shape) > 2:
        classes = shape[-1]
        rows = _count(shape[:-1])
        raise LoadError(
            f"{what} holds a {len(shape)}-D array of shape {_shape_text(shape)}; Softmax Lab "
            "takes a vector (C,) or a batch (N, C) with the classes on the last axis: "
            f"x.reshape(-1, {classes}) gives {_shape_text((rows, classes))}"
        )
    if shape[-1] == 0:
        raise LoadError(f"{what} has 0 classes (shape {_shape_text(shape)}); nothing to show")
    if shape[0] == 0:
        raise LoadError(f"{what} has 0 rows (shape {_shape_text(shape)}); nothing to show")


def _check_targets_shape(shape: tuple[int, ...], what: str) -> None:
    if len(shape) == 2 and 1 not in shape and 0 not in shape:
        raise LoadError(
            f"{what} holds a 2-D array of shape {_shape_text(shape)}; targets are one class "
            "index per row, shape (N,): for one-hot or probability rows save y.argmax(axis=1)"
        )
    if len(shape) > 2:
        raise LoadError(
            f"{what} holds a {len(shape)}-D array of shape {_shape_text(shape)}; targets are "
            "one class index per row, shape (N,)"
        )
    if _count(shape) == 0:
        raise LoadError(f"{what} holds no targets (shape {_shape_text(shape)})")


def _native(data: np.ndarray, what: str, max_bytes: int, mapped: bool) -> tuple[np.ndarray, bool]:
    """Native byte order (torch and fast kernels need it); copying counts against the cap."""
    if data.dtype.isnative:
        return data, mapped
    _check_alloc(data.size * data.dtype.itemsize, what, max_bytes, "in native byte order")
    return np.asarray(data).astype(data.dtype.newbyteorder("=")), False


def _as_float(data: np.ndarray, what: str, max_bytes: int) -> np.ndarray:
    """Logits as float16/32/64; integers and bools are converted exactly."""
    if data.dtype.kind == "f":
        return data
    target = np.dtype(np.float32) if data.dtype.itemsize <= 2 else np.dtype(np.float64)
    _check_alloc(data.size * target.itemsize, what, max_bytes, f"as {target.name}")
    return np.asarray(data).astype(target)


def _check_alloc(nbytes: int, what: str, max_bytes: int, how: str) -> None:
    if nbytes > max_bytes:
        raise LoadError(
            f"{what} needs {_human(nbytes)} in memory {how}, over the limit of "
            f"{_human(max_bytes)}; save it as float32 .npy or .safetensors, which are "
            "memory-mapped as they are"
        )


def _as_targets(
    values: np.ndarray, what: str, num_rows: int | None, num_classes: int | None
) -> np.ndarray:
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        raise LoadError(f"{what} holds no targets")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            i = int(np.argmin(finite))
            raise LoadError(f"{what}: target {i} is {arr[i]}; targets must be whole class indices")
        whole = arr == np.round(arr)
        if not whole.all():
            i = int(np.argmin(whole))
            raise LoadError(
                f"{what}: target {i} is {arr[i]:g}, not a whole class index; targets are "
                "class indices (0, 1, 2, ...), not probabilities"
            )
        if np.abs(arr).max() > 2**53:
            raise LoadError(
                f"{what} holds class indices too large to be real ({np.abs(arr).max():g})"
            )
    elif arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.max() > np.iinfo(np.int64).max:
        raise LoadError(f"{what} holds class indices too large to be real ({arr.max()})")
    out = arr.astype(np.int64)
    bad = (out < 0) & (out != IGNORE_INDEX)
    if bad.any():
        i = int(np.argmax(bad))
        raise LoadError(
            f"{what}: target {i} is {out[i]}; class indices start at 0 (-100 marks a row "
            "to ignore, as in PyTorch)"
        )
    if num_classes is not None:
        too_big = out >= num_classes
        if too_big.any():
            i = int(np.argmax(too_big))
            raise LoadError(
                f"{what}: target {i} is {out[i]} but the logits have {num_classes} classes "
                f"(0..{num_classes - 1}); check that the targets belong to these logits"
            )
    if num_rows is not None and out.size != num_rows:
        raise LoadError(
            f"{what} holds {out.size} targets but the logits have {num_rows} rows; "
            "give one target per row"
        )
    return out


def _count_nonfinite(data: np.ndarray) -> int:
    """NaN/inf count, in chunks so a memory-mapped tensor never needs a full-size mask.

    A memory-mapped file is read with ``pread`` into one chunk buffer (FileRows):
    counting through the map faulted in every page of a 1 GiB file (0.4 s) and left
    it all in the process's RSS.
    """
    reader = FileRows.open(data, data.dtype) if data.ndim and data.size else None
    if reader is not None:
        try:
            return _count_nonfinite_rows(data, reader)
        finally:
            reader.close()
    flat = (
        data.reshape(-1, order="A")
        if (data.flags.c_contiguous or data.flags.f_contiguous)
        else data.ravel()
    )
    total = 0
    for start in range(0, flat.size, _COUNT_CHUNK):
        block = flat[start : start + _COUNT_CHUNK]
        total += block.size - int(np.count_nonzero(np.isfinite(block)))
    return total


def _count_nonfinite_rows(data: np.ndarray, reader: FileRows) -> int:
    rows = data.shape[0]
    per_row = data.size // rows
    rows_per_block = max(1, _COUNT_CHUNK // per_row)
    buffer = np.empty(min(rows, rows_per_block) * per_row, dtype=data.dtype)
    total = 0
    for r0 in range(0, rows, rows_per_block):
        r1 = min(rows, r0 + rows_per_block)
        block = buffer[: (r1 - r0) * per_row]
        reader.read(r0, r1, block)
        total += block.size - int(np.count_nonzero(np.isfinite(block)))
    return total


# (unsigned view, exponent bits, mantissa bits, quiet bit) of the float types NumPy
# widens in hardware; float16 is widened in software and never warns.
_NAN_BITS: dict[np.dtype, tuple[type, int, int, int]] = {
    np.dtype(np.float32): (np.uint32, 0x7F800000, 0x007FFFFF, 0x00400000),
    np.dtype(np.float64): (
        np.uint64,
        0x7FF0000000000000,
        0x000FFFFFFFFFFFFF,
        0x0008000000000000,
    ),
}


def _quiet_nans(data: np.ndarray, what: str, max_bytes: int) -> np.ndarray:
    """A copy with every signaling NaN made quiet, when ``data`` holds any; else ``data``.

    FIX (fuzzing): a damaged file can hold signaling NaNs (a bfloat16 NaN whose
    quiet bit is clear widens to one), and NumPy warns "invalid value
    encountered in cast" every time one is widened from float32 to float64,
    which the compute core does to every logit. A NaN is a NaN to softmax: its
    payload means nothing, so it is replaced; the copy counts against the cap.
    """
    spec = _NAN_BITS.get(data.dtype)
    if spec is None:
        return data
    utype, exponent, mantissa, quiet = spec
    flat = (
        data.reshape(-1, order="A")
        if (data.flags.c_contiguous or data.flags.f_contiguous)
        else data.ravel()
    )
    found = False
    for start in range(0, flat.size, _COUNT_CHUNK):
        bits = flat[start : start + _COUNT_CHUNK].view(utype)
        if np.any(((bits & exponent) == exponent) & ((bits & mantissa) != 0) & ((bits & quiet) == 0)):
            found = True
            break
    if not found:
        return data
    _check_alloc(data.nbytes, what, max_bytes, "with its signaling NaNs made quiet")
    out = np.array(data)
    out[np.isnan(out)] = np.nan
    return out


# -- small helpers -------------------------------------------------------------------------


def _count(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)  # Python ints: no overflow for hostile shapes
    return n


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _dtype_label(dt: np.dtype) -> str:
    if dt.hasobject:
        return "object"
    if dt.names is not None or dt.subdtype is not None:
        return "structured"
    if dt.kind in "SUV":
        return dt.str.lstrip("<>|=")
    label = dt.name
    if not dt.isnative:
        label += " (big-endian)" if dt.byteorder == ">" else " (little-endian)"
    return label


def _human(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _short(exc: BaseException) -> str:
    """One line of an exception's text: for messages, never a traceback."""
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else ""
    # FIX (fuzzing): parsers quote bytes of the file (torch: "Unknown endianness type:
    # B=\x00ZZZ", csv: "'\t' expected"); raw control characters must not reach a dialog or
    # a terminal (escape sequences), so they are shown escaped.
    line = _printable(line).replace("Traceback", "trace")
    # Parsers quote what they choke on; an object's repr means nothing to a person.
    line = re.sub(r"<[^<>]*? object at 0x[0-9a-fA-F]+>", "an expression", line)
    return (line[:157] + "...") if len(line) > 160 else (line or type(exc).__name__)


def _printable(text: str) -> str:
    """``text`` with control and other unprintable characters shown escaped (``\\x00``)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
