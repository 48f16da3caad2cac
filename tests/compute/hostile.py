"""Builders for the hostile-file corpus of ``test_loaders`` (made at test time, no Qt).

Nothing here is committed data: every file is written into a ``tmp_path`` by
the test that needs it. The pickle payloads only create a sentinel file, so a
loader that wrongly unpickles them is caught without harm.
"""

from __future__ import annotations

import io
import json
import pathlib
import random
import struct
import zlib
from collections.abc import Iterator

import numpy as np

ZIP_DEFLATED = 8


class TouchOnUnpickle:
    """Unpickling this object creates ``sentinel``: proof that a loader ran pickled code."""

    def __init__(self, sentinel: pathlib.Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (pathlib.Path(self.sentinel),))


# -- pickle payloads ----------------------------------------------------------------


def npy_with_pickle(path: pathlib.Path, sentinel: pathlib.Path) -> None:
    """A .npy holding an object array whose pickle touches ``sentinel``."""
    payload = np.array([TouchOnUnpickle(sentinel), 1.0], dtype=object)
    np.save(path, payload, allow_pickle=True)


def npz_with_pickle(path: pathlib.Path, sentinel: pathlib.Path) -> None:
    """A .npz with one good array and one object array whose pickle touches ``sentinel``."""
    payload = np.array([TouchOnUnpickle(sentinel)], dtype=object)
    np.savez(path, evil=payload)


def pt_with_pickle(path: pathlib.Path, sentinel: pathlib.Path, *, bare: bool = False) -> None:
    """A torch.save file whose pickle would touch ``sentinel`` if unpickled unsafely."""
    import torch

    evil = TouchOnUnpickle(sentinel)
    torch.save(evil if bare else {"logits": torch.zeros(3), "evil": evil}, path)


# -- headers that lie ---------------------------------------------------------------


def npy_header(descr: object, shape: tuple[int, ...], fortran: bool = False) -> bytes:
    """A version 1.0 .npy header, as np.save writes it, for any declared dtype and shape."""
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def npy_raw_header(text: bytes) -> bytes:
    """A .npy v1.0 file whose header dict is ``text`` verbatim (padded like np.save)."""
    body = text + b" " * ((-(10 + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


_SAFETENSORS_CODES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "uint32": "U32",
    "int32": "I32",
    "uint64": "U64",
    "int64": "I64",
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
}


def write_safetensors(
    path: pathlib.Path, tensors: dict[str, object], metadata: dict[str, str] | None = None
) -> None:
    """A valid safetensors file (as the library writes it) without needing the library.

    Values are NumPy arrays, or torch bfloat16 tensors (NumPy has no bfloat16).
    tests/compute must run where only torch, numpy and pytest are installed.
    """
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    chunks = []
    offset = 0
    for name, value in tensors.items():
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            import torch

            code = "BF16"
            shape = list(value.shape)  # type: ignore[attr-defined]
            raw = value.contiguous().view(torch.int16).numpy().tobytes()  # type: ignore[attr-defined]
        else:
            arr = np.asarray(value)
            code = _SAFETENSORS_CODES[arr.dtype.name]
            shape = list(arr.shape)
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the library pads the header to a multiple of 8
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def safetensors_bytes(
    header: dict[str, object], data: bytes, *, length: int | None = None
) -> bytes:
    """A safetensors file; ``length`` overrides the 8-byte header length (to lie)."""
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


# -- zip archives, built by hand so sizes and streams can lie -----------------------------


def _crc32_of_zero_runs(crc: int, run: int, times: int) -> int:
    """CRC-32 after appending ``times`` runs of ``run`` zero bytes, without hashing them all.

    zlib.crc32(zeros, c) is affine in ``c`` over GF(2), so 32 hashes of one run
    give the map, which is then applied ``times`` times.
    """
    zeros = bytes(run)
    base = zlib.crc32(zeros, 0)
    columns = [zlib.crc32(zeros, 1 << i) ^ base for i in range(32)]
    for _ in range(times):
        out = base
        for i in range(32):
            if crc >> i & 1:
                out ^= columns[i]
        crc = out
    return crc


def write_zip(
    path: pathlib.Path,
    member: str,
    stream: bytes,
    *,
    crc: int,
    uncompressed_size: int,
    method: int = ZIP_DEFLATED,
) -> None:
    """A one-member zip archive with exactly the declared sizes we choose (< 4 GiB)."""
    name = member.encode()
    local = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        20,
        0,
        method,
        0,
        0x21,
        crc,
        len(stream),
        uncompressed_size,
        len(name),
        0,
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        method,
        0,
        0x21,
        crc,
        len(stream),
        uncompressed_size,
        len(name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    cd_offset = len(local) + len(name) + len(stream)
    cd = central + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), cd_offset, 0)
    path.write_bytes(local + name + stream + cd + end)


def zip_bomb_npz(path: pathlib.Path, rows: int = 16384, cols: int = 16384) -> int:
    """A genuine .npz whose one member unpacks to a float64 (rows, cols) array of zeros.

    The default is 2 GiB of data in about 2 MB of file. The deflate stream is a
    fully flushed 1 MiB block of zeros repeated, so building it costs one
    compression of 1 MiB; the CRC is exact. Returns the uncompressed size.
    """
    header = npy_header("<f8", (rows, cols))
    data_bytes = rows * cols * 8
    run = 1 << 20
    assert data_bytes % run == 0
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(header) + head.flush(zlib.Z_FULL_FLUSH)
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = body.compress(bytes(run)) + body.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    stream = first + block * (data_bytes // run) + final
    crc = _crc32_of_zero_runs(zlib.crc32(header), run, data_bytes // run)
    size = len(header) + data_bytes
    write_zip(path, "logits.npy", stream, crc=crc, uncompressed_size=size)
    return size


def npz_forged_size(path: pathlib.Path, claimed: int) -> None:
    """A small valid deflated member whose declared uncompressed size is ``claimed``."""
    content = npy_header("<f8", (4,)) + np.arange(4.0).tobytes()
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = comp.compress(content) + comp.flush()
    write_zip(path, "logits.npy", stream, crc=zlib.crc32(content), uncompressed_size=claimed)


def npz_stream_longer_than_declared(path: pathlib.Path, extra: int = 256 << 20) -> np.ndarray:
    """A member declared (and CRC'd) as 1000 float64 zeros whose stream holds ``extra`` more.

    A reader that trusted the stream instead of the declared size would
    decompress it all. Returns the declared array.
    """
    declared = np.zeros(1000)
    content = npy_header("<f8", declared.shape) + declared.tobytes()
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(content) + head.flush(zlib.Z_FULL_FLUSH)
    run = 1 << 20
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = body.compress(bytes(run)) + body.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    stream = first + block * (extra // run) + final
    write_zip(path, "logits.npy", stream, crc=zlib.crc32(content), uncompressed_size=len(content))
    return declared


# -- damage ------------------------------------------------------------------------------


def cut_points(size: int) -> list[int]:
    """Where to truncate a file of ``size`` bytes: inside magic, headers, data, the end."""
    points = {
        1,
        5,
        7,
        8,
        9,
        12,
        16,
        40,
        64,
        100,
        size // 3,
        size // 2,
        size - 8,
        size - 2,
        size - 1,
    }
    return sorted(p for p in points if 0 < p < size)


def bit_flips(data: bytes, seed: int, count: int) -> Iterator[bytes]:
    """``count`` copies of ``data``, each with 1 to 4 random bits flipped (seeded)."""
    rng = random.Random(seed)
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(mutated))
            mutated[pos] ^= 1 << rng.randrange(8)
        yield bytes(mutated)
