"""A seeded byte-mutation fuzzer over the safe loaders (no Qt).

Valid seed files of every format (``.npy``, ``.npz``, ``.pt`` in zip and
legacy form, ``.safetensors``, ``.csv``/``.tsv``/``.txt``) are written at test
time by the libraries that normally write them, plus seeds carrying a pickle
payload that would create a sentinel file if anything unpickled it. Each
mutated file comes from one seed and a short stack of mutations: bit flips,
bytes overwritten with interesting values (0x00, 0xff, 0x7f, 0x80, ASCII
digits), chunks deleted, duplicated or inserted, truncation, edits of the
length fields the formats trust (the ``.npy`` header length, the safetensors
u64 header length, zip local/central sizes, offsets and counts), edits of
ASCII numbers (shapes, offsets, CSV cells), text tokens and a wrong suffix.

Every file is opened with ``load_tensor``, ``list_arrays`` and
``load_targets``. Each call either returns a value that passes the checks below
(checked independently of the loader) or raises exactly one ``LoadError``
whose message is one clean line naming the file. Anything else fails and
prints the campaign seed, the seed file and the mutations, with a command that
rebuilds the file (``python tests/compute/test_loader_fuzz.py --reproduce``).

Bounds:

* time: at most :data:`CPU_BOUND_S` seconds of CPU time per file (all three
  calls together). CPU time, not wall time, because this 2-core machine is
  shared and a niced process may wait for a core; wall time is recorded too and
  bounded loosely by :data:`WALL_BOUND_S` (a blocked read).
* memory: every campaign runs under an address-space limit of the baseline
  ``VmSize`` (after importing torch and loading every seed once) plus
  :data:`CAP_EXTRA` (2 GiB); a load that tries to allocate beyond it gets a
  ``MemoryError``, which is a failure here (no file of a few KB may need
  gigabytes), as is a message about memory. The fast campaign sets the soft
  limit in the test process and restores it; the slow one runs in a child
  process and also reports ``VmPeak`` against the cap.
* pickle: the process runs in an empty sentinel folder; the payload seeds
  touch a relative sentinel path (so even a mutated name lands in that
  folder), and the folder must stay empty. A control test proves the
  payloads are live.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from softmax_lab.compute.errors import LoadError
from softmax_lab.compute.loaders import (
    ArrayInfo,
    LoadedTensor,
    list_arrays,
    load_targets,
    load_tensor,
)

if __package__ in (None, ""):  # run as a script (--campaign, --reproduce): make tests importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.compute import hostile

FAST_CAMPAIGN_SEED = 20261122
SLOW_CAMPAIGN_SEED = 6
FAST_FILES = 600
"""Mutated files in the fast run (``make test``)."""
SLOW_FILES = 12_000
"""Mutated files in the slow run (``make test-all``); the issue asks for at least 10,000."""
CPU_BOUND_S = 2.0
WALL_BOUND_S = 30.0
CAP_EXTRA = 2 * 2**30
"""Address space allowed above the baseline: no mutated file of a few KB may need more."""
SENTINEL = "pickle-payload-ran"
"""The payloads touch this relative path: the fuzz runs with an empty folder as cwd."""
FORMATS = ("npy", "npz", "pt", "safetensors", "csv")

_MEMORY_WORDS = re.compile(
    r"does not fit in the memory|allocate memory|MemoryError|out of memory|bad_alloc", re.I
)
_NOISE = re.compile(r"Traceback| object at 0x|<class '|<module '|<function ")


# -- seeds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A valid (or payload-carrying) file the mutations start from."""

    name: str
    fmt: str
    suffix: str
    data: bytes
    array: str | None
    """What ``load_tensor`` is asked for (the container's logits); None for single arrays."""
    payload: bool = False


def _bytes_of(write: Callable[[pathlib.Path], object], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"seed{suffix}"
        write(path)
        return path.read_bytes()


def build_seeds() -> list[Seed]:
    """Small valid files of every format (deterministic bytes, so cases reproduce)."""
    import torch

    rng = np.random.default_rng(7)
    gen = torch.Generator().manual_seed(7)
    logits = (rng.standard_normal((4, 3)) * 3).astype(np.float32)
    logits[1, 2] = -np.inf
    targets = np.array([0, 2, 1, -100], dtype=np.int64)
    sentinel = pathlib.Path(SENTINEL)
    seeds: list[Seed] = []

    def add(
        name: str,
        fmt: str,
        suffix: str,
        write: Callable[[pathlib.Path], object],
        array: str | None = None,
        payload: bool = False,
    ) -> None:
        seeds.append(Seed(name, fmt, suffix, _bytes_of(write, suffix), array, payload))

    # .npy: every header version and dtype path the loader has.
    add("npy_f32", "npy", ".npy", lambda p: np.save(p, logits))
    add("npy_f16_1d", "npy", ".npy", lambda p: np.save(p, rng.standard_normal(6).astype("<f2")))
    add(
        "npy_f64_fortran",
        "npy",
        ".npy",
        lambda p: np.save(p, np.asfortranarray(rng.standard_normal((3, 4)))),
    )
    add("npy_big_endian", "npy", ".npy", lambda p: np.save(p, logits.astype(">f8")))
    add(
        "npy_int16", "npy", ".npy", lambda p: np.save(p, np.arange(6, dtype=np.int16).reshape(2, 3))
    )
    add("npy_targets", "npy", ".npy", lambda p: np.save(p, np.array([1, 0, 2, 2], dtype=np.int64)))

    def npy_v2(p: pathlib.Path) -> None:
        with p.open("wb") as f:
            np.lib.format.write_array(f, logits, version=(2, 0))

    add("npy_v2", "npy", ".npy", npy_v2)
    add("npy_pickle", "npy", ".npy", lambda p: hostile.npy_with_pickle(p, sentinel), payload=True)

    # .npz: stored and deflated members, several arrays, a pickled member.
    add(
        "npz_stored", "npz", ".npz", lambda p: np.savez(p, logits=logits, targets=targets), "logits"
    )
    add(
        "npz_deflated",
        "npz",
        ".npz",
        lambda p: np.savez_compressed(p, logits=rng.standard_normal((3, 5))),
        "logits",
    )

    def npz_payload(p: pathlib.Path) -> None:
        evil = np.array([hostile.TouchOnUnpickle(sentinel)], dtype=object)
        np.savez(p, logits=logits, evil=evil)

    add("npz_pickle", "npz", ".npz", npz_payload, "logits", payload=True)

    # .pt: zip and legacy (raw pickle) forms, dict, bare, list, bfloat16, payloads.
    t = torch.randn(4, 3, generator=gen)
    add(
        "pt_dict",
        "pt",
        ".pt",
        lambda p: torch.save({"logits": t, "targets": torch.from_numpy(targets)}, p),
        "logits",
    )
    add("pt_bare_bf16", "pt", ".pt", lambda p: torch.save(t.to(torch.bfloat16), p))
    add("pt_list", "pt", ".pt", lambda p: torch.save([t, t[0].clone()], p), "0")
    add(
        "pt_legacy",
        "pt",
        ".pt",
        lambda p: torch.save({"logits": t}, p, _use_new_zipfile_serialization=False),
        "logits",
    )
    add("pt_pickle", "pt", ".pt", lambda p: hostile.pt_with_pickle(p, sentinel), "logits", True)
    add(
        "pt_pickle_bare",
        "pt",
        ".pt",
        lambda p: hostile.pt_with_pickle(p, sentinel, bare=True),
        None,
        True,
    )
    add(
        "pt_pickle_legacy",
        "pt",
        ".pt",
        lambda p: torch.save(
            hostile.TouchOnUnpickle(sentinel), p, _use_new_zipfile_serialization=False
        ),
        None,
        True,
    )

    # .safetensors: as the library writes them (header padded to 8 bytes).
    add(
        "st_f32",
        "safetensors",
        ".safetensors",
        lambda p: hostile.write_safetensors(
            p, {"logits": logits, "targets": targets}, {"format": "pt"}
        ),
        "logits",
    )
    add(
        "st_bf16",
        "safetensors",
        ".safetensors",
        lambda p: hostile.write_safetensors(p, {"logits": t.to(torch.bfloat16)}),
    )
    add(
        "st_f16_1d",
        "safetensors",
        ".safetensors",
        lambda p: hostile.write_safetensors(p, {"logits": rng.standard_normal(6).astype("<f2")}),
    )

    # Text: a header, plain numbers with non-finite cells, a BOM and a target column, TSV, TXT.
    add(
        "csv_header",
        "csv",
        ".csv",
        lambda p: p.write_text("cat,dog,bird\n2.0,1.0,0.1\n-1.5,3e2,0\n0.25,-7,1e-3\n"),
    )
    add("csv_plain", "csv", ".csv", lambda p: p.write_text("1,2,3,4\nnan,-inf,inf,0\n\n5,6,7,8\n"))
    add(
        "csv_bom_target",
        "csv",
        ".csv",
        lambda p: p.write_bytes("\ufeffcat,dog,label\n0.5,1.5,1\n2,-2,0\n".encode()),
    )
    add("tsv_plain", "csv", ".tsv", lambda p: p.write_text("1\t2\t3\n4\t5\t6\n"))
    add("txt_column", "csv", ".txt", lambda p: p.write_text("0\n2\n1\n1\n"))
    return seeds


# -- mutations ------------------------------------------------------------------------------

INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, *b"0123456789")
INTERESTING_U16 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_U32 = (*INTERESTING_U16, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING_U64 = (*INTERESTING_U32, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1)
NUMBERS = (
    b"0",
    b"1",
    b"-1",
    b"2",
    b"255",
    b"65536",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"1e308",
    b"-0",
    b"nan",
    b"",
)
TEXT_TOKENS = (
    b",",
    b"\n",
    b"\r",
    b"\t",
    b";",
    b'"',
    b"nan",
    b"inf",
    b"-inf",
    b"1e999",
    b"=1+1",
    b"1_000",
    "\u0663".encode(),
    b"\xef\xbb\xbf",
    b"label",
    b"  ",
    b"\x00",
    b"\xff",
)
ZIP_FIELDS = {
    # signature: ((offset, width, name), ...)
    b"PK\x03\x04": (
        (14, 4, "local crc"),
        (18, 4, "local compressed size"),
        (22, 4, "local size"),
        (26, 2, "local name length"),
        (28, 2, "local extra length"),
        (8, 2, "local method"),
        (6, 2, "local flags"),
    ),
    b"PK\x01\x02": (
        (16, 4, "central crc"),
        (20, 4, "central compressed size"),
        (24, 4, "central size"),
        (28, 2, "central name length"),
        (30, 2, "central extra length"),
        (42, 4, "central local-header offset"),
        (10, 2, "central method"),
        (8, 2, "central flags"),
    ),
    b"PK\x05\x06": (
        (8, 2, "end entries on disk"),
        (10, 2, "end entries"),
        (12, 4, "end directory size"),
        (16, 4, "end directory offset"),
        (20, 2, "end comment length"),
    ),
}
SUFFIXES = (".npy", ".npz", ".pt", ".safetensors", ".csv", ".txt")


def _pos(rng: random.Random, buf: bytearray) -> int:
    return rng.randrange(len(buf)) if buf else 0


def _bit_flip(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    if not buf:
        return "bit flip (empty)"
    pos, bit = _pos(rng, buf), rng.randrange(8)
    buf[pos] ^= 1 << bit
    return f"flip bit {bit} of byte {pos}"


def _byte_set(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    if not buf:
        return "byte set (empty)"
    pos, value = _pos(rng, buf), rng.choice(INTERESTING_BYTES)
    buf[pos] = value
    return f"byte {pos} = 0x{value:02x}"


def _chunk(rng: random.Random, buf: bytearray) -> tuple[int, int]:
    start = _pos(rng, buf)
    length = min(
        rng.choice((1, 2, 4, 8, rng.randint(1, 64), rng.randint(1, 512))), len(buf) - start
    )
    return start, max(length, 0)


def _delete(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    start, length = _chunk(rng, buf)
    del buf[start : start + length]
    return f"delete {length} bytes at {start}"


def _duplicate(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    start, length = _chunk(rng, buf)
    piece = bytes(buf[start : start + length])
    at = rng.randint(0, len(buf))
    buf[at:at] = piece * rng.choice((1, 1, 2, 16))
    return f"duplicate {length} bytes from {start} at {at}"


def _insert(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    at = rng.randint(0, len(buf))
    n = rng.choice((1, 4, 8, rng.randint(1, 256)))
    kind = rng.randrange(3)
    if kind == 0:
        piece = bytes(rng.getrandbits(8) for _ in range(n))
    elif kind == 1:
        piece = bytes([rng.choice(INTERESTING_BYTES)]) * n
    else:
        piece = rng.choice(TEXT_TOKENS) * rng.choice((1, 1, 3, 100))
    buf[at:at] = piece
    return f"insert {len(piece)} bytes at {at}"


def _truncate(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    cut = rng.choice((rng.randrange(len(buf) + 1), rng.choice(hostile.cut_points(len(buf)) or [0])))
    del buf[cut:]
    return f"truncate to {cut} bytes"


def _new_int(rng: random.Random, old: int, width: int) -> int:
    top = 2 ** (8 * width) - 1
    table = {2: INTERESTING_U16, 4: INTERESTING_U32, 8: INTERESTING_U64}[width]
    kind = rng.randrange(3)
    if kind == 0:
        value = rng.choice(table)
    elif kind == 1:
        value = old + rng.choice((-64, -8, -2, -1, 1, 2, 8, 64, 4096))
    else:
        value = rng.getrandbits(8 * width)
    return value % (top + 1)


def _length_field(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    """Edit a length/size/offset field the format trusts (falls back to a text edit)."""
    fields: list[tuple[int, int, str]] = []
    for m in re.finditer(rb"\x93NUMPY", bytes(buf)):
        at = m.start()
        major = buf[at + 6] if at + 6 < len(buf) else 1
        fields.append((at + 8, 4 if major >= 2 else 2, "npy header length"))
        fields.append((at + 6, 1, "npy major version"))
    if seed.fmt == "safetensors":
        fields.append((0, 8, "safetensors header length"))
    for signature, layout in ZIP_FIELDS.items():
        for m in re.finditer(re.escape(signature), bytes(buf)):
            fields.extend((m.start() + off, width, name) for off, width, name in layout)
    fields = [f for f in fields if f[0] + f[1] <= len(buf)]
    if not fields:
        return _text_token(buf, rng, seed)
    at, width, name = rng.choice(fields)
    old = int.from_bytes(buf[at : at + width], "little")
    new = _new_int(rng, old, width) if width > 1 else rng.choice((0, 1, 2, 3, 4, 0xFF))
    buf[at : at + width] = new.to_bytes(width, "little")
    return f"{name} at {at}: {old} -> {new}"


def _ascii_number(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    """Rewrite a run of ASCII digits (a shape, an offset, a CSV cell)."""
    runs = list(re.finditer(rb"-?[0-9]+", bytes(buf)))
    if not runs:
        return _byte_set(buf, rng, seed)
    m = rng.choice(runs)
    old = m.group()
    choice = rng.randrange(3)
    if choice == 0:
        new = rng.choice(NUMBERS)
    elif choice == 1:
        new = str(int(old) + rng.choice((-1, 1, 8, -8, 1000))).encode()
    else:
        new = str(rng.getrandbits(rng.choice((8, 16, 32, 64, 80)))).encode()
    buf[m.start() : m.end()] = new
    return f"number {old.decode()} at {m.start()} -> {new.decode() or '(nothing)'}"


def _text_token(buf: bytearray, rng: random.Random, seed: Seed) -> str:
    at, token = rng.randint(0, len(buf)), rng.choice(TEXT_TOKENS)
    buf[at:at] = token
    return f"insert {token!r} at {at}"


MUTATORS: tuple[tuple[Callable[[bytearray, random.Random, Seed], str], int], ...] = (
    (_bit_flip, 6),
    (_byte_set, 5),
    (_delete, 2),
    (_duplicate, 2),
    (_insert, 2),
    (_truncate, 2),
    (_length_field, 6),
    (_ascii_number, 3),
    (_text_token, 1),
)


@dataclass(frozen=True)
class Case:
    """One mutated file: reproducible from (campaign seed, seed name, index) alone."""

    seed: Seed
    index: int
    campaign: int
    data: bytes
    suffix: str
    steps: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.seed.name}-{self.index}{self.suffix}"

    def describe(self) -> str:
        return (
            f"campaign seed {self.campaign}, seed file {self.seed.name}{self.seed.suffix}, "
            f"case {self.index} ({len(self.data)} bytes as {self.suffix}): {'; '.join(self.steps)}. "
            f"Rebuild: python tests/compute/test_loader_fuzz.py --reproduce {self.campaign} "
            f"{self.seed.name} {self.index}"
        )


def make_case(seed: Seed, campaign: int, index: int) -> Case:
    """Apply 1 to 4 mutations to ``seed``, chosen by a RNG seeded with the case's identity."""
    rng = random.Random(f"{campaign}:{seed.name}:{index}")
    buf = bytearray(seed.data)
    funcs, weights = zip(*MUTATORS, strict=True)
    count = rng.choice((1, 1, 1, 2, 2, 3, 4))
    steps = [rng.choices(funcs, weights)[0](buf, rng, seed) for _ in range(count)]
    suffix = seed.suffix
    if rng.random() < 0.03:
        suffix = rng.choice([s for s in SUFFIXES if s != seed.suffix])
        steps.append(f"saved as {suffix}")
    return Case(seed, index, campaign, bytes(buf), suffix, tuple(steps))


def cases(seeds: list[Seed], campaign: int, total: int) -> Iterator[Case]:
    """``total`` cases spread evenly over the formats, then over each format's seeds."""
    by_fmt = {fmt: [s for s in seeds if s.fmt == fmt] for fmt in FORMATS}
    for i in range(total):
        group = by_fmt[FORMATS[i % len(FORMATS)]]
        seed = group[(i // len(FORMATS)) % len(group)]
        yield make_case(seed, campaign, i)


# -- the oracle --------------------------------------------------------------------------------


def check_message(exc: LoadError, filename: str) -> str | None:
    """What is wrong with a refusal's message, or None."""
    text = str(exc)
    if type(exc) is not LoadError:
        return f"raised {type(exc).__name__}, a subclass, not LoadError itself"
    if filename not in text:
        return f"the message does not name the file: {text!r}"
    if "\n" in text or not text.isprintable():
        return f"the message is not one printable line: {text!r}"
    if _NOISE.search(text):
        return f"the message holds a traceback or repr noise: {text!r}"
    if len(text) > 600:
        return f"the message is {len(text)} characters long"
    if _MEMORY_WORDS.search(text):
        return f"a tiny file made the loader run out of memory (cap exceeded): {text!r}"
    return None


def check_loaded(loaded: object, path: pathlib.Path, asked: str | None) -> str | None:
    """Independent checks of a successful ``load_tensor``; None when it is sound."""
    if type(loaded) is not LoadedTensor:
        return f"load_tensor returned {type(loaded).__name__}"
    data = loaded.data
    if not isinstance(data, np.ndarray):
        return f"data is {type(data).__name__}"
    if data.dtype not in (np.float16, np.float32, np.float64) or not data.dtype.isnative:
        return f"data has dtype {data.dtype.str}"
    if data.ndim not in (1, 2) or min(data.shape) < 1 or data.size != int(np.prod(data.shape)):
        return f"data has shape {data.shape}"
    values = np.asarray(data, dtype=np.float64)  # reads every byte (a bad memmap would fault)
    nonfinite = int(values.size - np.count_nonzero(np.isfinite(values)))
    if loaded.nonfinite_count != nonfinite:
        return f"nonfinite_count {loaded.nonfinite_count} but the data holds {nonfinite}"
    if loaded.path != path:
        return f"path {loaded.path} for {path}"
    want = loaded.name if loaded.name is not None else path.stem
    if asked is not None and loaded.name not in (asked, None):
        return f"asked for {asked!r}, got {loaded.name!r}"
    infos = [a for a in loaded.available if isinstance(a, ArrayInfo) and a.name == want]
    if len(infos) != 1 or infos[0].shape != data.shape:
        return f"available {loaded.available!r} does not list {want!r} with shape {data.shape}"
    if loaded.memory_mapped and not isinstance(data, np.memmap):
        return "memory_mapped data is not a memmap"
    if data.flags.writeable:  # batch statistics keep facts only for read-only batches
        return "loaded data is writable"
    if loaded.class_names is not None and (
        len(loaded.class_names) != data.shape[-1]
        or not all(isinstance(n, str) and n for n in loaded.class_names)
    ):
        return f"class_names {loaded.class_names!r} for {data.shape[-1]} classes"
    if loaded.targets is not None:
        t = loaded.targets
        if t.dtype != np.int64 or t.shape != (data.shape[0],):
            return f"targets {t.dtype} {t.shape} for data {data.shape}"
        if ((t < 0) & (t != -100)).any() or (t >= data.shape[-1]).any():
            return f"targets out of range: {t}"
    return None


def check_listing(listing: object) -> str | None:
    if not isinstance(listing, tuple) or not listing:
        return f"list_arrays returned {listing!r}"
    for info in listing:
        if not (
            isinstance(info, ArrayInfo)
            and isinstance(info.name, str)
            and isinstance(info.dtype, str)
            and isinstance(info.shape, tuple)
            and all(type(d) is int and d >= 0 for d in info.shape)
        ):
            return f"list_arrays returned {info!r}"
    return None


def check_targets(targets: object) -> str | None:
    if not isinstance(targets, np.ndarray) or targets.dtype != np.int64 or targets.ndim != 1:
        return f"load_targets returned {targets!r}"
    if targets.size == 0 or ((targets < 0) & (targets != -100)).any():
        return f"load_targets returned {targets!r}"
    return None


# -- running a campaign -----------------------------------------------------------------------


@dataclass
class Tally:
    """What a campaign saw; ``failures`` holds one line per problem (with a rebuild command)."""

    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    loaded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FORMATS, 0))
    calls: int = 0
    max_cpu_s: float = 0.0
    max_wall_s: float = 0.0
    slowest: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.files.values())


def _cpu() -> float:
    return time.process_time()


def run_case(case: Case, folder: pathlib.Path, tally: Tally) -> None:
    """Write the case, open it three ways, check every outcome and the time it took."""
    path = folder / case.filename
    path.write_bytes(case.data)
    fmt = case.seed.fmt
    tally.files[fmt] += 1
    problems: list[str] = []
    cpu0, wall0 = _cpu(), time.perf_counter()
    calls: tuple[tuple[str, Callable[[], object], Callable[[object], str | None]], ...] = (
        (
            "load_tensor",
            lambda: load_tensor(path, case.seed.array),
            lambda v: check_loaded(v, path, case.seed.array),
        ),
        ("list_arrays", lambda: list_arrays(path), check_listing),
        ("load_targets", lambda: load_targets(path), check_targets),
    )
    for label, call, check in calls:
        tally.calls += 1
        try:
            value = call()
        except LoadError as exc:
            problem = check_message(exc, case.filename)
            if label == "load_tensor":
                tally.refused[fmt] += 1
        except Exception as exc:  # the point of the fuzzer: anything else is a bug
            problem = f"raised {type(exc).__name__}: {str(exc)[:300]!r}"
        else:
            problem = check(value)
            if label == "load_tensor":
                tally.loaded[fmt] += 1
            del value  # drop memory maps before the file goes
        if problem:
            problems.append(f"{label}: {problem}")
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    if cpu > tally.max_cpu_s:
        tally.max_cpu_s, tally.slowest = cpu, case.filename
    tally.max_wall_s = max(tally.max_wall_s, wall)
    if cpu > CPU_BOUND_S or wall > WALL_BOUND_S:
        problems.append(f"took {cpu:.2f} s of CPU ({wall:.2f} s wall)")
    path.unlink()
    for problem in problems:
        tally.failures.append(f"{problem} -- {case.describe()}")


def run_campaign(
    seeds: list[Seed],
    campaign: int,
    total: int,
    folder: pathlib.Path,
    progress: pathlib.Path | None = None,
) -> Tally:
    """Run ``total`` cases; the current case is written to ``progress`` first (for hangs)."""
    tally = Tally()
    for case in cases(seeds, campaign, total):
        if progress is not None:
            progress.write_text(case.describe())
        run_case(case, folder, tally)
    return tally


# -- memory ------------------------------------------------------------------------------------


def vm_status() -> dict[str, int]:
    """VmSize/VmPeak/VmHWM/VmRSS of this process, in bytes (Linux /proc)."""
    out = {}
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmSize", "VmPeak", "VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0]) * 1024
    return out


@contextlib.contextmanager
def address_space_cap(extra: int) -> Iterator[int]:
    """Lower the soft RLIMIT_AS to the current VmSize + ``extra``; restore it afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_status()["VmSize"] + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def warm_up(seeds: list[Seed], folder: pathlib.Path) -> None:
    """Load every seed once, so lazy imports and first-use allocations count in the baseline."""
    for seed in seeds:
        path = folder / f"warm-{seed.name}{seed.suffix}"
        path.write_bytes(seed.data)
        for call in (lambda p=path, s=seed: load_tensor(p, s.array), list_arrays, load_targets):
            with contextlib.suppress(LoadError):
                call(path)
        path.unlink()


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds() -> list[Seed]:
    return build_seeds()


def test_seeds_are_valid_files_and_the_payloads_are_live(
    seeds: list[Seed], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every clean seed loads; every payload seed is refused, yet really runs when unpickled."""
    import torch

    monkeypatch.chdir(tmp_path)
    assert {s.fmt for s in seeds} == set(FORMATS)
    for seed in seeds:
        path = tmp_path / f"{seed.name}{seed.suffix}"
        path.write_bytes(seed.data)
        assert len(seed.data) < 4096
        if not seed.payload:
            loaded = load_tensor(path, seed.array)
            assert check_loaded(loaded, path, seed.array) is None
            continue
        # The pickled object itself is refused (the npz seed's good array may load).
        with pytest.raises(LoadError) as info:
            load_tensor(path, "evil" if seed.fmt == "npz" else seed.array)
        assert check_message(info.value, path.name) is None
        assert "pickle" in str(info.value) or "never runs" in str(info.value)
        assert not (tmp_path / SENTINEL).exists()
        # The control: an unsafe reader runs the payload, so the fuzz's sentinel can fire.
        if seed.fmt == "pt":
            torch.load(path, weights_only=False)
        elif seed.fmt == "npz":
            with np.load(path, allow_pickle=True) as archive:
                archive["evil"]
        else:
            np.load(path, allow_pickle=True)
        assert (tmp_path / SENTINEL).exists(), seed.name
        (tmp_path / SENTINEL).unlink()


def test_mutations_are_reproducible_and_varied(seeds: list[Seed]) -> None:
    first = [make_case(s, 1, i) for s in seeds for i in range(20)]
    again = [make_case(s, 1, i) for s in seeds for i in range(20)]
    assert [c.data for c in first] == [c.data for c in again]
    assert sum(c.data != c.seed.data for c in first) > 0.9 * len(first)
    kinds = " ".join(step for c in first for step in c.steps)
    for words in (
        "flip bit",
        "byte",
        "delete",
        "duplicate",
        "insert",
        "truncate",
        "npy header length",
        "safetensors header length",
        "central",
        "local",
        "number",
    ):
        assert words in kinds, words


def test_fast_fuzz_campaign(
    seeds: list[Seed], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few hundred mutated files: only sound arrays or one clean LoadError, in time and memory."""
    sentinel_dir = tmp_path / "cwd"
    sentinel_dir.mkdir()
    folder = tmp_path / "files"
    folder.mkdir()
    monkeypatch.chdir(sentinel_dir)
    warm_up(seeds, folder)
    with address_space_cap(CAP_EXTRA):
        tally = run_campaign(seeds, FAST_CAMPAIGN_SEED, FAST_FILES, folder)
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert list(sentinel_dir.iterdir()) == [], "a pickle payload ran"
    assert tally.total == FAST_FILES
    for fmt in FORMATS:  # the mutations reach past the headers, and the refusals happen
        assert tally.loaded[fmt] > 0 and tally.refused[fmt] > 0, (fmt, tally)


def test_a_failing_case_is_reported_with_its_recipe(
    seeds: list[Seed], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness itself: a loader that breaks its contract is caught and described."""

    def broken(path: object) -> object:
        raise KeyError("boom")

    monkeypatch.setattr(sys.modules[__name__], "list_arrays", broken)
    tally = Tally()
    run_case(make_case(seeds[0], 3, 5), tmp_path, tally)
    assert len(tally.failures) == 1
    assert "list_arrays: raised KeyError" in tally.failures[0]
    assert f"--reproduce 3 {seeds[0].name} 5" in tally.failures[0]


# -- regressions: what the fuzzer found, each fixed in compute/loaders.py -----------------------


def _refusal(path: pathlib.Path, name: str | None = None) -> str:
    with pytest.raises(LoadError) as info:
        load_tensor(path, name)
    problem = check_message(info.value, path.name)
    assert problem is None, problem
    return str(info.value)


def _signaling(dtype: str, count: int) -> np.ndarray:
    """Signaling NaNs (quiet bit clear, payload 1) of ``dtype``, built from bits."""
    bits = {"float32": (np.uint32, 0x7F800001), "float64": (np.uint64, 0x7FF0000000000001)}
    utype, pattern = bits[dtype]
    return np.full(count, pattern, dtype=utype).view(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_signaling_nans_are_loaded_quiet(tmp_path: pathlib.Path, dtype: str) -> None:
    """Widening a float32 signaling NaN warns in NumPy; loaded logits never hold one."""
    from softmax_lab.compute.softmax import compute_softmax
    from softmax_lab.compute.types import SoftmaxRequest

    saved = np.concatenate([np.arange(4, dtype=dtype), _signaling(dtype, 2)])
    path = tmp_path / "snan.npy"
    np.save(path, saved)
    if dtype == "float32":  # the hazard is real: NumPy warns on the stored bits
        with pytest.warns(RuntimeWarning, match="invalid value"):
            saved.astype(np.float64)
    loaded = load_tensor(path)
    assert loaded.nonfinite_count == 2
    assert not loaded.memory_mapped  # a quiet copy: the mapped file stays as it is
    np.testing.assert_array_equal(np.asarray(loaded.data[:4], dtype=np.float64), np.arange(4.0))
    assert np.isnan(np.asarray(loaded.data, dtype=np.float64)[4:]).all()  # no warning now
    result = compute_softmax(SoftmaxRequest(loaded.data, 1.0, -1, "float32", "cpu"))
    assert np.isnan(result.probabilities).all()


def test_bfloat16_signaling_nan_bits_are_loaded_quiet(tmp_path: pathlib.Path) -> None:
    import torch

    bits = np.array([0x3F80, 0x7F81, 0xFF81, 0x4000], dtype=np.uint16)  # 1, sNaN, -sNaN, 2
    tensor = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    hostile.write_safetensors(path, {"logits": tensor})
    loaded = load_tensor(path)
    values = np.asarray(loaded.data, dtype=np.float64)  # warned before the fix
    assert values[0] == 1.0 and values[3] == 2.0 and np.isnan(values[1:3]).all()
    assert loaded.nonfinite_count == 2


def test_ordinary_nans_keep_the_file_memory_mapped(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "qnan.npy"
    np.save(path, np.array([0.0, np.nan, -np.inf], dtype=np.float32))
    loaded = load_tensor(path)
    assert loaded.memory_mapped and loaded.nonfinite_count == 2


def test_csv_target_beyond_int64_is_refused_without_warning(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big-target.csv"
    path.write_text("cat,dog,label\n0.5,1.5,1e19\n2,-2,0\n")  # a whole number, past int64
    message = _refusal(path)
    assert "data row 1: target 10000000000000000000 is out of range" in message


def test_bytes_quoted_from_a_file_are_escaped_in_messages(tmp_path: pathlib.Path) -> None:
    """Parsers quote the bytes they choke on: escape sequences must not reach a terminal."""
    import torch

    buffer = io.BytesIO()
    torch.save({"logits": torch.ones(3)}, buffer)
    raw = buffer.getvalue()
    at = raw.index(b"little")
    zipped = tmp_path / "endian.pt"
    zipped.write_bytes(raw[:at] + b"\x1b[2J\x00Z" + raw[at + 6 :])
    buffer = io.BytesIO()
    torch.save({"logits": torch.ones(3)}, buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue()
    legacy = tmp_path / "global.pt"
    legacy.write_bytes(
        raw.replace(b"collections\nOrderedDict", b"\x1b[31mcollections\nOrderedDict")
    )
    text = tmp_path / "quote.tsv"
    text.write_text('1\t"2"x\t3\n')
    for path, words in ((zipped, "endianness"), (legacy, "global"), (text, "expected after")):
        message = _refusal(path)
        assert words in message
        assert "\\x1b" in message or "\\t" in message  # shown escaped, not raw


def _legacy_with_numel(numel: int) -> bytes:
    """A legacy torch.save file of 12 floats whose pickle declares ``numel`` instead."""
    import torch

    buffer = io.BytesIO()
    torch.save(torch.arange(12.0), buffer, _use_new_zipfile_serialization=False)
    raw = buffer.getvalue()
    at = raw.index(b"K\x0cN")  # BININT1 12, then NONE: the storage's numel in its persistent id
    return raw[:at] + b"\x8a\x08" + numel.to_bytes(8, "little") + raw[at + 2 :]


@pytest.mark.parametrize("numel", [100, 2**31, 2**40])
def test_legacy_pt_declaring_more_storage_than_the_file_is_refused_before_allocating(
    tmp_path: pathlib.Path, numel: int
) -> None:
    path = tmp_path / "legacy.pt"
    path.write_bytes(_legacy_with_numel(numel))
    with address_space_cap(CAP_EXTRA):  # before the fix: 8 GiB reserved, or an allocator error
        message = _refusal(path)
    assert "declares" in message and "damaged or crafted" in message
    path.write_bytes(_legacy_with_numel(12))  # the control: the unchanged file loads
    np.testing.assert_array_equal(load_tensor(path).data, np.arange(12.0, dtype=np.float32))


def test_legacy_pt_with_a_bad_escape_in_a_global_is_refused_without_warning(
    tmp_path: pathlib.Path,
) -> None:
    """Found by the slow campaign (seed 6, case 8117): pickletools unescapes text lines with
    codecs.escape_decode, which warned (DeprecationWarning) on a damaged one."""
    raw = _legacy_with_numel(12)
    path = tmp_path / "escape.pt"
    path.write_bytes(raw.replace(b"torch._utils\n", b"torch._u\\\x98tils\n", 1))
    assert b"\\\x98" in path.read_bytes()
    assert "torch.load" in _refusal(path)


def test_a_long_global_name_is_clipped_in_the_message(tmp_path: pathlib.Path) -> None:
    """Found by fuzzing (seed 202, case 22137): the refused global's name, read from the file,
    made a 700-character message."""
    raw = _legacy_with_numel(12)
    path = tmp_path / "long-global.pt"
    path.write_bytes(raw.replace(b"torch._utils\n", b"torch._utils" + b"_0001" * 100 + b"\n", 1))
    message = _refusal(path)  # checks the length too
    assert "pickled Python objects" in message and "_0001..." in message


def test_legacy_pt_declaring_a_huge_string_is_refused_before_allocating(
    tmp_path: pathlib.Path,
) -> None:
    """torch's unpickler read(n) allocated each declared length: 4 GiB for a 400-byte file."""
    raw = _legacy_with_numel(12)
    at = raw.index(b"X\x03\x00\x00\x00cpu")  # BINUNICODE of length 3
    path = tmp_path / "string.pt"
    path.write_bytes(raw[:at] + b"X\xf0\xff\xff\xff" + raw[at + 5 :])
    with address_space_cap(CAP_EXTRA):
        message = _refusal(path)
    assert "damaged legacy PyTorch file" in message


def test_expanded_pt_view_is_refused_before_allocating(tmp_path: pathlib.Path) -> None:
    """A 1.5 KB file whose stride-0 view expands to 4 GiB; small broadcasts still load."""
    import torch

    path = tmp_path / "expanded.pt"
    torch.save(torch.zeros(1).expand(2**30), path)
    assert path.stat().st_size < 4096
    with address_space_cap(CAP_EXTRA):
        message = _refusal(path)
    assert "expanded view" in message and "4.0 GiB" in message
    small = tmp_path / "broadcast.pt"
    torch.save({"logits": torch.arange(3.0).expand(4, 3)}, small)
    np.testing.assert_array_equal(load_tensor(small).data, np.tile(np.arange(3.0), (4, 1)))


def test_npz_member_with_an_empty_name_is_refused(tmp_path: pathlib.Path) -> None:
    """Found by the atheris harness: zipfile's is_dir() raised IndexError on an empty name."""
    content = hostile.npy_header("<f8", (3,)) + np.arange(3.0).tobytes()
    path = tmp_path / "nameless.npz"
    hostile.write_zip(
        path, "", content, crc=zlib.crc32(content), uncompressed_size=len(content), method=0
    )
    assert "without .npy arrays" in _refusal(path)
    hostile.write_zip(
        path, "x.npy", content, crc=zlib.crc32(content), uncompressed_size=len(content), method=0
    )
    np.testing.assert_array_equal(load_tensor(path).data, np.arange(3.0))  # the control


def test_the_atheris_harness_runs_without_atheris(
    seeds: list[Seed], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/fuzz/fuzz_loaders.py imports without atheris and its entry point holds the oracle."""
    import importlib.util

    harness_path = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_loaders.py"
    spec = importlib.util.spec_from_file_location("fuzz_loaders_harness", harness_path)
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    harness.setup(tmp_path, cwd)
    for seed in seeds:
        harness.test_one_input(bytes([harness.SUFFIXES.index(seed.suffix)]) + seed.data)
    for case in cases(seeds, 77, 50):
        harness.test_one_input(bytes([harness.SUFFIXES.index(case.seed.suffix)]) + case.data)
    (cwd / SENTINEL).touch()  # the harness notices a payload that ran
    with pytest.raises(AssertionError, match="payload ran"):
        harness.test_one_input(bytes([4]) + b"1,2\n")
    if harness.atheris is None:
        assert harness.main(["fuzz_loaders.py"]) == 2


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_slow_fuzz_campaign_under_an_address_space_limit(tmp_path: pathlib.Path) -> None:
    """At least 10,000 mutated files in a child process whose address space is capped."""
    report = tmp_path / "report.json"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [
            sys.executable,
            str(pathlib.Path(__file__).resolve()),
            "--campaign",
            "--seed",
            str(SLOW_CAMPAIGN_SEED),
            "--files",
            str(SLOW_FILES),
            "--folder",
            str(tmp_path / "files"),
            "--report",
            str(report),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=3300,
        check=False,
    )
    progress = tmp_path / "files" / "current.txt"
    assert proc.returncode == 0, (
        f"exit {proc.returncode}; last case: "
        f"{progress.read_text() if progress.exists() else '?'}\n{proc.stderr[-3000:]}"
    )
    result = json.loads(report.read_text())
    print(json.dumps(result, indent=2))
    if os.environ.get("SOFTMAX_LAB_FUZZ_REPORT"):
        pathlib.Path(os.environ["SOFTMAX_LAB_FUZZ_REPORT"]).write_text(json.dumps(result, indent=2))
    assert not result["failures"], "\n".join(result["failures"][:20])
    assert sum(result["files"].values()) == SLOW_FILES >= 10_000
    assert result["vm_peak_after"] <= result["cap"]
    assert list(cwd.iterdir()) == [], "a pickle payload ran"
    for fmt in FORMATS:
        assert result["loaded"][fmt] > 0 and result["refused"][fmt] > 0, fmt


# -- command line: the slow campaign's child, and rebuilding one case ---------------------------------


def _child(args: argparse.Namespace) -> int:
    import torch

    warnings.simplefilter("error")  # as in the test suite: a warning is a failure
    torch.set_num_threads(1)
    folder = pathlib.Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = build_seeds()
    warm_up(seeds, folder)
    before = vm_status()
    start = time.perf_counter()
    with address_space_cap(CAP_EXTRA) as cap:
        tally = run_campaign(seeds, args.seed, args.files, folder, folder / "current.txt")
    after = vm_status()
    pathlib.Path(args.report).write_text(
        json.dumps(
            {
                "campaign_seed": args.seed,
                "files": tally.files,
                "loaded": tally.loaded,
                "refused": tally.refused,
                "calls": tally.calls,
                "max_cpu_s": round(tally.max_cpu_s, 4),
                "max_wall_s": round(tally.max_wall_s, 4),
                "slowest": tally.slowest,
                "elapsed_s": round(time.perf_counter() - start, 1),
                "vm_size_baseline": before["VmSize"],
                "vm_peak_baseline": before["VmPeak"],
                "cap": cap,
                "vm_peak_after": after["VmPeak"],
                "vm_hwm_after": after["VmHWM"],
                "seeds": {s.name: len(s.data) for s in seeds},
                "torch": torch.__version__,
                "numpy": np.__version__,
                "failures": tally.failures,
            }
        )
    )
    return 0


def _reproduce(campaign: int, name: str, index: int, out_dir: str | None) -> int:
    seed = next(s for s in build_seeds() if s.name == name)
    case = make_case(seed, campaign, index)
    out = pathlib.Path(out_dir or ".") / case.filename
    out.write_bytes(case.data)
    print(f"wrote {out}: {case.describe()}")
    tally = Tally()
    run_case(case, pathlib.Path(tempfile.mkdtemp()), tally)
    print("\n".join(tally.failures) or "no problem found")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", action="store_true")
    parser.add_argument("--seed", type=int, default=SLOW_CAMPAIGN_SEED)
    parser.add_argument("--files", type=int, default=SLOW_FILES)
    parser.add_argument("--folder", default=None)
    parser.add_argument("--report", default="fuzz-report.json")
    parser.add_argument("--reproduce", nargs=3, metavar=("CAMPAIGN", "SEED_NAME", "INDEX"))
    parser.add_argument("--out", default=None, help="where --reproduce writes the file")
    args = parser.parse_args(argv)
    if args.reproduce:
        return _reproduce(
            int(args.reproduce[0]), args.reproduce[1], int(args.reproduce[2]), args.out
        )
    if args.folder is None:
        args.folder = tempfile.mkdtemp(prefix="loader-fuzz-")
    return _child(args)


if __name__ == "__main__":
    sys.exit(main())
