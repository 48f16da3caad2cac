"""The safe loaders: round trips against what was saved, and a hostile corpus.

Every file is built in ``tmp_path`` at test time (hostile ones by
``tests/compute/hostile.py``). Loaded values are compared with the arrays that
were saved (and, for safetensors, with the safetensors package's own reader),
never with the loader's output.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import re
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_lab.compute import loaders
from softmax_lab.compute.errors import LoadError
from softmax_lab.compute.file_rows import FileRows
from softmax_lab.compute.loaders import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_SUFFIXES,
    ArrayInfo,
    LoadedTensor,
    list_arrays,
    load_targets,
    load_tensor,
)
from tests.compute import hostile

RNG = np.random.default_rng(20261105)
FLOAT_DTYPES = ["float16", "float32", "float64"]
SHAPES = [(7,), (3, 5)]


def readable(info: pytest.ExceptionInfo[LoadError], path: os.PathLike[str] | str) -> str:
    """The message is one clean line naming the file; returns it for further checks."""
    assert type(info.value) is LoadError
    message = str(info.value)
    assert pathlib.Path(path).name in message
    assert "Traceback" not in message
    assert "\n" not in message
    assert not re.search(r" object at 0x|<class '|<module '|\\x1b", message)
    assert len(message) < 600
    return message


def refused(path: pathlib.Path, **kwargs: object) -> str:
    with pytest.raises(LoadError) as info:
        load_tensor(path, **kwargs)  # type: ignore[arg-type]
    return readable(info, path)


def refused_targets(path: pathlib.Path, **kwargs: object) -> str:
    with pytest.raises(LoadError) as info:
        load_targets(path, **kwargs)  # type: ignore[arg-type]
    return readable(info, path)


def check_loaded(loaded: LoadedTensor) -> None:
    """Invariants every successful load keeps, checked independently of the loader."""
    assert loaded.data.ndim in (1, 2)
    assert loaded.data.dtype in (np.float16, np.float32, np.float64)
    assert loaded.data.dtype.isnative
    assert loaded.data.size > 0
    assert not loaded.data.flags.writeable  # so batch statistics may keep its facts
    expected = int(np.count_nonzero(~np.isfinite(np.asarray(loaded.data, dtype=np.float64))))
    assert loaded.nonfinite_count == expected


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_npy_round_trip_is_memory_mapped(tmp_path: pathlib.Path, dtype: str, shape: tuple) -> None:
    saved = (RNG.standard_normal(shape) * 10).astype(dtype)
    path = tmp_path / "logits.npy"
    np.save(path, saved)
    loaded = load_tensor(path)
    assert loaded.memory_mapped
    assert isinstance(loaded.data, np.memmap)
    assert not loaded.data.flags.writeable
    assert loaded.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.data, saved)
    assert loaded.name is None
    assert loaded.available == (ArrayInfo("logits", shape, dtype),)
    assert loaded.source_dtype == dtype
    assert loaded.class_names is None
    assert loaded.nonfinite_count == 0
    assert loaded.path == path
    assert list_arrays(path) == loaded.available


def test_npy_fortran_order_and_nonfinite_values(tmp_path: pathlib.Path) -> None:
    saved = np.asfortranarray(RNG.standard_normal((4, 6)).astype(np.float32))
    saved[0, 1], saved[2, 3], saved[3, 5] = np.nan, np.inf, -np.inf
    path = tmp_path / "f.npy"
    np.save(path, saved)
    loaded = load_tensor(path)
    assert loaded.memory_mapped
    np.testing.assert_array_equal(loaded.data, saved)
    assert loaded.nonfinite_count == 3


def test_nonfinite_count_is_exact_across_chunks(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = RNG.standard_normal((9, 7))
    mask = RNG.random(saved.shape) < 0.3
    saved[mask] = np.nan
    saved[0, 0] = np.inf
    path = tmp_path / "nan.npy"
    np.save(path, saved)
    monkeypatch.setattr(loaders, "_COUNT_CHUNK", 5)
    assert load_tensor(path).nonfinite_count == int(np.count_nonzero(~np.isfinite(saved)))


@pytest.mark.parametrize("shape", [(9, 7), (40,), (3, 50)])
def test_a_memory_mapped_file_is_counted_with_pread(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, shape: tuple
) -> None:
    """Counting through the map would fault in, and keep in RSS, every page of the file."""
    saved = RNG.standard_normal(shape).astype(np.float32)
    saved.reshape(-1)[RNG.random(saved.size) < 0.2] = np.inf
    saved.reshape(-1)[RNG.random(saved.size) < 0.2] = np.nan
    path = tmp_path / "mapped.npy"
    np.save(path, saved)
    reads: list[tuple[int, int]] = []
    original = FileRows.read
    monkeypatch.setattr(
        FileRows, "read", lambda self, r0, r1, out: (reads.append((r0, r1)), original(self, r0, r1, out))[1]
    )
    monkeypatch.setattr(loaders, "_COUNT_CHUNK", 8)
    loaded = load_tensor(path)
    assert loaded.memory_mapped
    assert loaded.nonfinite_count == int(np.count_nonzero(~np.isfinite(saved)))
    rows = saved.shape[0]
    assert reads and reads[0][0] == 0 and reads[-1][1] == rows  # every row, in blocks


@pytest.mark.parametrize(
    ("dtype", "as_dtype"),
    [
        ("bool", "float32"),
        ("int8", "float32"),
        ("uint16", "float32"),
        ("int32", "float64"),
        ("int64", "float64"),
    ],
)
def test_npy_integer_and_bool_logits_are_converted_exactly(
    tmp_path: pathlib.Path, dtype: str, as_dtype: str
) -> None:
    saved = RNG.integers(0, 2 if dtype == "bool" else 100, size=(3, 4)).astype(dtype)
    path = tmp_path / "ints.npy"
    np.save(path, saved)
    loaded = load_tensor(path)
    assert loaded.data.dtype == np.dtype(as_dtype)
    assert not loaded.memory_mapped
    assert loaded.source_dtype == dtype
    np.testing.assert_array_equal(loaded.data, saved.astype(np.float64))


def test_npy_big_endian_becomes_native(tmp_path: pathlib.Path) -> None:
    saved = RNG.standard_normal((2, 3)).astype(">f8")
    path = tmp_path / "be.npy"
    np.save(path, saved)
    loaded = load_tensor(path)
    assert loaded.data.dtype == np.float64 and loaded.data.dtype.isnative
    np.testing.assert_array_equal(loaded.data, saved.astype(np.float64))
    assert loaded.source_dtype == "float64 (big-endian)"
    assert not loaded.memory_mapped


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip_and_picking(tmp_path: pathlib.Path, compressed: bool) -> None:
    a = RNG.standard_normal((5, 4)).astype(np.float32)
    b = RNG.standard_normal(9).astype(np.float16)
    c = np.asfortranarray(RNG.standard_normal((3, 2)))
    d = RNG.standard_normal(3).astype(">f4")
    path = tmp_path / "batch.npz"
    (np.savez_compressed if compressed else np.savez)(path, a=a, b=b, c=c, d=d)
    expected = (
        ArrayInfo("a", (5, 4), "float32"),
        ArrayInfo("b", (9,), "float16"),
        ArrayInfo("c", (3, 2), "float64"),
        ArrayInfo("d", (3,), "float32 (big-endian)"),
    )
    assert list_arrays(path) == expected
    for name, saved in {"a": a, "b": b, "c": c, "d": d}.items():
        loaded = load_tensor(path, name)
        assert loaded.name == name
        assert loaded.available == expected
        assert not loaded.memory_mapped
        assert loaded.data.dtype == saved.dtype.newbyteorder("=")
        np.testing.assert_array_equal(loaded.data, saved)
        check_loaded(loaded)
    np.testing.assert_array_equal(load_tensor(path, "a.npy").data, a)
    message = refused(path)
    assert "'a', 'b', 'c', 'd'" in message and "name=" in message
    assert "'zzz'" in refused(path, name="zzz")


def test_npz_single_array_needs_no_name(tmp_path: pathlib.Path) -> None:
    saved = RNG.standard_normal((2, 3))
    path = tmp_path / "one.npz"
    np.savez(path, saved)
    loaded = load_tensor(path)
    assert loaded.name == "arr_0"
    np.testing.assert_array_equal(loaded.data, saved)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_pt_round_trip(tmp_path: pathlib.Path, dtype: torch.dtype, shape: tuple) -> None:
    saved = (torch.randn(shape, generator=torch.Generator().manual_seed(3)) * 5).to(dtype)
    path = tmp_path / "logits.pt"
    torch.save(saved, path)
    loaded = load_tensor(path)
    expected_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    np.testing.assert_array_equal(loaded.data, saved.to(expected_dtype).numpy())
    assert loaded.data.dtype == np.dtype(str(expected_dtype).removeprefix("torch."))
    assert loaded.source_dtype == str(dtype).removeprefix("torch.")
    assert loaded.name is None and not loaded.memory_mapped
    assert loaded.available == (ArrayInfo("logits", shape, loaded.source_dtype),)


def test_pt_containers_and_names(tmp_path: pathlib.Path) -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3, generator=g)
    other = torch.randn(5, generator=g)
    cases = {
        "dict.pt": ({"logits": logits, "epoch": 3, "other": other}, "logits", "other"),
        "nested.pth": ({"outputs": {"logits": logits}, "aux": [other]}, "outputs.logits", "aux.0"),
        "list.pt": ([logits, other], "0", "1"),
        "tuple.pt": ((logits, "note", other), "0", "2"),
    }
    for filename, (obj, first, second) in cases.items():
        path = tmp_path / filename
        torch.save(obj, path)
        names = [info.name for info in list_arrays(path)]
        assert names == [first, second]
        np.testing.assert_array_equal(load_tensor(path, first).data, logits.numpy())
        np.testing.assert_array_equal(load_tensor(path, second).data, other.numpy())
        assert load_tensor(path, first).name == first
        message = refused(path)
        assert repr(first) in message and repr(second) in message


def test_pt_noncontiguous_integer_and_legacy_format(tmp_path: pathlib.Path) -> None:
    base = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    path = tmp_path / "t.pt"
    torch.save({"t": base.T}, path)
    loaded = load_tensor(path, "t")
    assert loaded.data.dtype == np.float64 and loaded.data.flags.c_contiguous
    np.testing.assert_array_equal(loaded.data, base.T.numpy())
    legacy = tmp_path / "legacy.pt"
    saved = torch.randn(2, 5)
    torch.save(saved, legacy, _use_new_zipfile_serialization=False)
    np.testing.assert_array_equal(load_tensor(legacy).data, saved.numpy())


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_safetensors_round_trip_is_memory_mapped(
    tmp_path: pathlib.Path, dtype: str, shape: tuple
) -> None:
    saved = {
        "logits": RNG.standard_normal(shape).astype(dtype),
        "bias": RNG.standard_normal(3).astype(np.float32),
    }
    path = tmp_path / "model.safetensors"
    hostile.write_safetensors(path, saved, metadata={"source": "test"})
    loaded = load_tensor(path, "logits")
    assert loaded.memory_mapped and isinstance(loaded.data, np.memmap)
    assert not loaded.data.flags.writeable
    np.testing.assert_array_equal(loaded.data, saved["logits"])
    assert loaded.data.dtype == np.dtype(dtype)
    assert {a.name: (a.shape, a.dtype) for a in list_arrays(path)} == {
        "logits": (shape, dtype),
        "bias": ((3,), "float32"),
    }


def test_safetensors_agrees_with_the_safetensors_package(tmp_path: pathlib.Path) -> None:
    """Files the library writes load as it reads them; the test writer's files are valid."""
    st_numpy = pytest.importorskip("safetensors.numpy")
    st_torch = pytest.importorskip("safetensors.torch")
    arrays = {
        "a": RNG.standard_normal((4, 3)).astype(np.float16),
        "b": RNG.standard_normal(5),
        "c": RNG.integers(0, 9, size=(2, 2)).astype(np.int32),
    }
    library_file = tmp_path / "library.safetensors"
    st_numpy.save_file(arrays, str(library_file), metadata={"k": "v"})
    reference = st_numpy.load_file(str(library_file))
    for name in arrays:
        np.testing.assert_array_equal(load_tensor(library_file, name).data, reference[name])
    bf = torch.randn(3, 4, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    library_bf = tmp_path / "library_bf.safetensors"
    st_torch.save_file({"bf": bf}, str(library_bf))
    np.testing.assert_array_equal(load_tensor(library_bf).data, bf.float().numpy())
    ours = tmp_path / "ours.safetensors"
    hostile.write_safetensors(ours, {**arrays, "bf": bf}, metadata={"k": "v"})
    theirs = st_torch.load_file(str(ours))
    assert torch.equal(theirs["bf"], bf)
    for name, value in arrays.items():
        np.testing.assert_array_equal(theirs[name].numpy(), value)


def test_safetensors_bfloat16_and_integers(tmp_path: pathlib.Path) -> None:
    g = torch.Generator().manual_seed(7)
    bf = (torch.randn(3, 6, generator=g) * 100).to(torch.bfloat16)
    ints = torch.randint(-50, 50, (4,), generator=g, dtype=torch.int64)
    path = tmp_path / "mixed.safetensors"
    hostile.write_safetensors(path, {"bf": bf, "ints": ints.numpy()})
    loaded = load_tensor(path, "bf")
    assert loaded.data.dtype == np.float32 and not loaded.memory_mapped
    assert loaded.source_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.data, bf.float().numpy())
    ints_loaded = load_tensor(path, "ints")
    assert ints_loaded.data.dtype == np.float64
    np.testing.assert_array_equal(ints_loaded.data, ints.numpy().astype(np.float64))


def test_csv_with_bom_header_blank_lines_and_nonfinite(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_bytes("\ufeffcat,dog,bird\r\n\r\n2.5,-1e3,0\r\n  \r\n4,nan,-inf\r\n\r\n".encode())
    loaded = load_tensor(path)
    np.testing.assert_array_equal(loaded.data, [[2.5, -1000.0, 0.0], [4.0, np.nan, -np.inf]])
    assert loaded.class_names == ("cat", "dog", "bird")
    assert loaded.nonfinite_count == 2
    assert loaded.source_dtype == "text" and loaded.data.dtype == np.float64
    assert loaded.available == (ArrayInfo("scores", (2, 3), "text"),)
    assert list_arrays(path) == loaded.available


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        ("one_row.csv", "2,1,0.1\n", [[2.0, 1.0, 0.1]]),
        ("one_column.csv", "2\n1\n0.1\n", [[2.0, 1.0, 0.1]]),
        ("single.csv", "3.5\n", [[3.5]]),
        ("tabs.tsv", "1\t2\n3\t4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("spaces.txt", "1  2   3\n 4 5 6 \n", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        ("commas.txt", "1,2\n3,4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("semicolons.csv", "1;2\n3;4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("quoted.csv", '"1.5","2"\n"3",4\n', [[1.5, 2.0], [3.0, 4.0]]),
        ("named_column.csv", "logit\n1\n2\n", [[1.0, 2.0]]),
    ],
)
def test_text_layouts(tmp_path: pathlib.Path, filename: str, text: str, expected: list) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    loaded = load_tensor(path)
    np.testing.assert_array_equal(loaded.data, np.array(expected))
    assert loaded.data.ndim == 2
    assert loaded.class_names is None


@settings(max_examples=25)
@given(
    st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=6),
        min_size=1,
        max_size=6,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1)
)
def test_csv_round_trip_of_any_floats(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text("\n".join(",".join(repr(v) for v in row) for row in rows) + "\n")
    np.testing.assert_array_equal(load_tensor(path).data, np.array(rows, dtype=np.float64))


# -- pickles: never run -------------------------------------------------------------------


def test_npy_pickle_is_refused_and_never_run(tmp_path: pathlib.Path) -> None:
    sentinel = tmp_path / "npy_pwned"
    path = tmp_path / "evil.npy"
    hostile.npy_with_pickle(path, sentinel)
    assert "object array" in refused(path)
    assert "never unpickles" in refused(path)
    assert list_arrays(path)[0].dtype == "object"
    with pytest.raises(LoadError):
        load_targets(path)
    assert not sentinel.exists()
    # The payload is live: an unsafe reader would have run it.
    np.load(path, allow_pickle=True)
    assert sentinel.exists()


def test_npz_pickle_is_refused_and_never_run(tmp_path: pathlib.Path) -> None:
    sentinel = tmp_path / "npz_pwned"
    path = tmp_path / "evil.npz"
    hostile.npz_with_pickle(path, sentinel)
    assert "object array" in refused(path)
    assert list_arrays(path) == (ArrayInfo("evil", (1,), "object"),)
    assert not sentinel.exists()
    np.load(path, allow_pickle=True)["evil"]
    assert sentinel.exists()


@pytest.mark.parametrize("bare", [False, True])
def test_pt_pickle_is_refused_and_never_run(tmp_path: pathlib.Path, bare: bool) -> None:
    sentinel = tmp_path / "pt_pwned"
    path = tmp_path / "evil.pt"
    hostile.pt_with_pickle(path, sentinel, bare=bare)
    message = refused(path, name="logits")
    assert "pickled Python objects" in message and "weights_only=False" not in message
    with pytest.raises(LoadError) as info:
        list_arrays(path)
    readable(info, path)
    assert not sentinel.exists()
    torch.load(path, weights_only=False)
    assert sentinel.exists()


def test_pt_refused_on_vulnerable_torch_without_loading(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.pt"
    torch.save(torch.zeros(3), path)
    calls: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(torch, "__version__", "2.6.0+cpu")
    message = refused(path)
    assert "CVE-2025-32434" in message and "torch>=2.10" in message
    assert calls == []


def test_pt_load_is_called_with_the_safe_arguments(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.pt"
    torch.save(torch.zeros(3), path)
    real_load = torch.load
    seen: list[dict[str, object]] = []

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "load", spy)
    load_tensor(path)
    assert seen == [{"map_location": "cpu", "weights_only": True, "mmap": False}]


# -- dtypes and shapes that are not logits -------------------------------------------------


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.array([1 + 2j, 3j]), "complex"),
        (np.array([1 + 2j], dtype=np.complex64), "complex"),
        (np.array(["a", "bc"]), "text strings"),
        (np.array([b"ab"]), "text strings"),
        (np.zeros(2, dtype=[("a", "<f4"), ("b", "<f4")]), "structured"),
        (np.zeros(2, dtype="V4"), "raw bytes"),
        (np.array(["2026-01-01"], dtype="datetime64[D]"), "dates"),
        (np.array([1], dtype="timedelta64[s]"), "dates"),
    ],
)
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_non_numeric_dtypes_are_refused(
    tmp_path: pathlib.Path, array: np.ndarray, words: str, suffix: str
) -> None:
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    else:
        np.savez(path, x=array)
    assert words in refused(path)


def test_extended_precision_is_refused(tmp_path: pathlib.Path) -> None:
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("this platform has no float128: nothing to refuse")
    path = tmp_path / "long.npy"
    np.save(path, np.ones(3, dtype=np.longdouble))
    assert "float64" in refused(path)


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((), "single number"),
        ((2, 3, 4), "x.reshape(-1, 4) gives (6, 4)"),
        ((1, 2, 2, 5), "x.reshape(-1, 5) gives (4, 5)"),
        ((0,), "0 classes"),
        ((3, 0), "0 classes"),
        ((0, 3), "0 rows"),
    ],
)
def test_shapes_that_are_not_logits(tmp_path: pathlib.Path, shape: tuple, words: str) -> None:
    saved = np.ones(shape, dtype=np.float32)
    npy, npz, pt, sf = (tmp_path / f"s{s}" for s in (".npy", ".npz", ".pt", ".safetensors"))
    np.save(npy, saved)
    np.savez(npz, x=saved)
    torch.save(torch.from_numpy(saved), pt)
    hostile.write_safetensors(sf, {"x": saved})
    for path in (npy, npz, pt, sf):
        assert words in refused(path)


def test_pt_tensors_that_are_not_logits(tmp_path: pathlib.Path) -> None:
    cases = {
        "complex.pt": (torch.ones(3, dtype=torch.complex64), "complex"),
        "sparse.pt": (torch.eye(3).to_sparse(), "sparse"),
        "nothing.pt": ({"epoch": 3, "name": "run"}, "holds no tensors"),
        "scalar.pt": (7, "holds no tensors"),
    }
    for filename, (obj, words) in cases.items():
        path = tmp_path / filename
        torch.save(obj, path)
        assert words in refused(path)


# -- truncated, bit-flipped, mislabelled ------------------------------------------------


def _valid_files(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """One small valid file per format, with several values of each dtype."""
    g = torch.Generator().manual_seed(0)
    files = {
        ".npy": tmp_path / "v.npy",
        ".npz": tmp_path / "v.npz",
        ".pt": tmp_path / "v.pt",
        ".safetensors": tmp_path / "v.safetensors",
        ".csv": tmp_path / "v.csv",
    }
    np.save(files[".npy"], RNG.standard_normal((6, 5)).astype(np.float32))
    np.savez_compressed(files[".npz"], x=RNG.standard_normal((6, 5)))
    torch.save({"x": torch.randn(6, 5, generator=g)}, files[".pt"])
    hostile.write_safetensors(
        files[".safetensors"], {"x": torch.randn(6, 5, generator=g).to(torch.bfloat16)}
    )
    files[".csv"].write_text("a,b,c\n" + "\n".join("1.5,-2,3e2" for _ in range(6)) + "\n")
    return files


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt", ".safetensors"])
def test_truncated_binary_files_are_refused(tmp_path: pathlib.Path, suffix: str) -> None:
    source = _valid_files(tmp_path)[suffix]
    check_loaded(load_tensor(source, None if suffix == ".npy" else "x"))
    data = source.read_bytes()
    for cut in hostile.cut_points(len(data)):
        path = tmp_path / f"cut{cut}{suffix}"
        path.write_bytes(data[:cut])
        with pytest.raises(LoadError) as info:
            load_tensor(path, None if suffix == ".npy" else "x")
        readable(info, path)


def test_truncated_csv_is_refused_or_shorter(tmp_path: pathlib.Path) -> None:
    data = _valid_files(tmp_path)[".csv"].read_bytes()
    for cut in hostile.cut_points(len(data)):
        path = tmp_path / f"cut{cut}.csv"
        path.write_bytes(data[:cut])
        try:
            loaded = load_tensor(path)
        except LoadError as exc:
            assert path.name in str(exc)
        else:
            check_loaded(loaded)
            assert loaded.data.shape[0] <= 6


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt", ".safetensors", ".csv"])
def test_bit_flipped_files_raise_only_load_error(tmp_path: pathlib.Path, suffix: str) -> None:
    source = _valid_files(tmp_path)[suffix]
    data = source.read_bytes()
    name = "x" if suffix in (".npz", ".pt", ".safetensors") else None
    outcomes = {"loaded": 0, "refused": 0}
    for i, mutated in enumerate(
        hostile.bit_flips(data, seed=zlib.crc32(suffix.encode()), count=40)
    ):
        path = tmp_path / f"flip{i}{suffix}"
        path.write_bytes(mutated)
        for call in (lambda p: load_tensor(p, name), list_arrays, load_targets):
            try:
                result = call(path)
            except LoadError as exc:
                assert path.name in str(exc) and "\n" not in str(exc)
                outcomes["refused"] += 1
            else:
                if isinstance(result, LoadedTensor):
                    check_loaded(result)
                outcomes["loaded"] += 1
    assert outcomes["refused"] > 0


@pytest.mark.parametrize(
    ("suffix", "content", "words"),
    [
        (".npy", b"PK\x03\x04" + bytes(40), "zip archive"),
        (".npy", b"1,2,3\n", "not a NumPy .npy file"),
        (".npz", b"\x93NUMPY" + bytes(40), "rename it to .npy"),
        (".npz", b"hello", "not a .npz"),
        (".pt", b"\x93NUMPY" + bytes(40), "rename it to .npy"),
        (".pt", b"1,2,3\n", "not a PyTorch file"),
        (".safetensors", b"\x93NUMPY" + bytes(40), ".npy"),
        (".safetensors", b"12345678901234567890", "truncated or not a safetensors"),
        (".csv", b"\x93NUMPY\x01\x00" + bytes(40), "binary file"),
        (".csv", "a,b\n1,2\n".encode("utf-16"), "UTF-16"),
        (".csv", b"caf\xe9,b\n1,2\n", "not UTF-8"),
    ],
)
def test_content_that_contradicts_the_suffix(
    tmp_path: pathlib.Path, suffix: str, content: bytes, words: str
) -> None:
    path = tmp_path / f"mislabelled{suffix}"
    path.write_bytes(content)
    assert words in refused(path)


def test_npz_renamed_to_pt_gets_a_hint(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "arrays.pt"
    with path.open("wb") as f:
        np.savez(f, x=np.ones(3))
    assert "rename it to .npz" in refused(path)


# -- headers that lie -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10**11,), (10**6, 10**6), (2**62, 2**62)])
def test_npy_declaring_a_huge_array_is_refused_without_allocating(
    tmp_path: pathlib.Path, shape: tuple
) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(hostile.npy_header("<f8", shape) + bytes(32))
    assert path.stat().st_size < 200
    tracemalloc.start()
    try:
        message = refused(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "truncated or damaged" in message
    assert peak < 2**20


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }", "impossible shape"),
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': (True, 2), }", "impossible shape"),
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': 3, }", "impossible shape"),
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': (6L, 5), }", "damaged .npy header"),
        (b"{'descr': '<a8', 'fortran_order': False, 'shape': (3,), }", "unknown dtype"),
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", "damaged .npy header"),
        (
            b"{'descr': '<f8', 'fortran_order': False, 'shape': (9" + b"9" * 5000 + b",), }",
            "damaged",
        ),
        (b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", "structured"),
        (b"{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }", "fortran_order"),
        (b"{'descr': 'nonsense', 'fortran_order': False, 'shape': (3,), }", "damaged .npy header"),
        (b"{'descr': '<f8', 'fortran_order': 'yes', 'shape': (3,), }", "damaged .npy header"),
        (b"[1, 2, 3]", "damaged .npy header"),
        (b"__import__('os').system('true')", "damaged .npy header"),
        (b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), " + b"(" * 200, "damaged"),
        (b"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", "object array"),
    ],
)
def test_npy_with_lying_headers(tmp_path: pathlib.Path, header: bytes, words: str) -> None:
    path = tmp_path / "lying.npy"
    path.write_bytes(hostile.npy_raw_header(header) + bytes(24))
    assert words in refused(path)


def test_npy_with_unknown_versions_and_oversized_header(tmp_path: pathlib.Path) -> None:
    good = hostile.npy_header("<f8", (3,)) + bytes(24)
    for version, words in ((b"\x03\x00", "format 3.0"), (b"\x09\x09", "version 9.9")):
        path = tmp_path / f"v{version[0]}.npy"
        path.write_bytes(good[:6] + version + good[8:])
        assert words in refused(path)
    path = tmp_path / "long_header.npy"
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" + b" " * 70_000
    path.write_bytes(b"\x93NUMPY\x02\x00" + len(text + b"\n").to_bytes(4, "little") + text + b"\n")
    assert "damaged or crafted" in refused(path)


def test_npy_with_trailing_bytes_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tail.npy"
    np.save(path, np.ones(3))
    with path.open("ab") as f:
        f.write(b"extra")
    assert "unexpected data" in refused(path)


def _tensor(dtype: str, shape: list, begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("header", "data", "length", "words"),
    [
        ({}, b"", 2**60, "truncated or not a safetensors"),
        ({"x": _tensor("F32", [10**10], 0, 4 * 10**10)}, bytes(16), None, "truncated, damaged"),
        (
            {"x": _tensor("F32", [4], 0, 16), "y": _tensor("F32", [2], 8, 16)},
            bytes(16),
            None,
            "overlaps",
        ),
        (
            {"x": _tensor("F32", [2], 0, 8), "y": _tensor("F32", [1], 12, 16)},
            bytes(16),
            None,
            "gap",
        ),
        ({"x": _tensor("F32", [2], 0, 8)}, bytes(16), None, "after its last tensor"),
        ({"x": _tensor("F32", [3], 0, 8)}, bytes(8), None, "needs 12 bytes"),
        ({"x": _tensor("F32", [-2], 0, 8)}, bytes(8), None, "impossible shape"),
        ({"x": _tensor("F32", [True, 2], 0, 8)}, bytes(8), None, "impossible shape"),
        ({"x": _tensor("F32", [2], 8, 0)}, bytes(8), None, "impossible data_offsets"),
        ({"x": {"dtype": "F32", "shape": [2]}}, bytes(8), None, "impossible data_offsets"),
        ({"x": [1, 2]}, bytes(8), None, "not a JSON object"),
        ({"__metadata__": [1], "x": _tensor("F32", [2], 0, 8)}, bytes(8), None, "__metadata__"),
        ({"x": _tensor("F4X", [2], 0, 8)}, bytes(8), None, "does not read"),
        ({"x": _tensor("F8_E4M3", [2], 0, 2)}, bytes(2), None, "float16 or float32"),
        ({"x": _tensor("C64", [2], 0, 16)}, bytes(16), None, "complex"),
        ({"__metadata__": {}}, b"", None, "holds no tensors"),
    ],
)
def test_safetensors_with_lying_headers(
    tmp_path: pathlib.Path, header: dict, data: bytes, length: int | None, words: str
) -> None:
    path = tmp_path / "lying.safetensors"
    path.write_bytes(hostile.safetensors_bytes(header, data, length=length))
    assert words in refused(path, name="x")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "x": 1}', "twice"),
        (b"{not json", "damaged JSON header"),
        (b'{"a":' * 100_000, "damaged JSON header"),
        (b"[1, 2]", "does not start with a JSON header"),
        (b"{\xff\xfe}", "damaged JSON header"),
    ],
)
def test_safetensors_with_malformed_json(tmp_path: pathlib.Path, raw: bytes, words: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(4))
    assert words in refused(path)


def test_safetensors_header_over_100_mb_is_refused_unread(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sparse.safetensors"
    with path.open("wb") as f:
        f.write((150_000_000).to_bytes(8, "little") + b"{")
        f.truncate(200_000_000)  # sparse: no real disk use
    tracemalloc.start()
    try:
        message = refused(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the safetensors format allows" in message
    assert peak < 2**20


# -- zip bombs ------------------------------------------------------------------------------


def test_zip_bomb_builder_is_a_real_bomb(tmp_path: pathlib.Path) -> None:
    """The corpus must be live: zipfile sees a valid 2 GiB member of zeros behind ~2 MB."""
    assert hostile._crc32_of_zero_runs(zlib.crc32(b"ab"), 1000, 7) == zlib.crc32(
        b"ab" + bytes(7000)
    )
    path = tmp_path / "bomb.npz"
    size = hostile.zip_bomb_npz(path)
    assert path.stat().st_size < 4 * 2**20
    with zipfile.ZipFile(path) as zf:
        (info,) = zf.infolist()
        assert info.file_size == size > 2 * 10**9
        with zf.open(info) as fp:
            assert np.lib.format.read_magic(fp) == (1, 0)
            header = np.lib.format.read_array_header_1_0(fp)
            assert header[0] == (16384, 16384)
            assert fp.read(2**20) == bytes(2**20)
    small = tmp_path / "small_bomb.npz"
    hostile.zip_bomb_npz(small, rows=4, cols=2**15)
    with np.load(small) as npz:  # a complete small one is a valid .npz, CRC included
        assert not npz["logits"].any()


@pytest.mark.parametrize("max_bytes", [DEFAULT_MAX_BYTES, 2**30])
def test_zip_bomb_is_refused_quickly_without_allocating(
    tmp_path: pathlib.Path, max_bytes: int
) -> None:
    path = tmp_path / "bomb.npz"
    hostile.zip_bomb_npz(path)
    assert list_arrays(path) == (ArrayInfo("logits", (16384, 16384), "float64"),)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = refused(path, max_bytes=max_bytes)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in message or "over the limit" in message
    assert elapsed < 2.0
    assert peak < 8 * 2**20


def test_npz_forged_uncompressed_size_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "forged.npz"
    hostile.npz_forged_size(path, claimed=3 * 2**30)
    assert "zip bomb" in refused(path)
    assert "over the limit" in refused(path, max_bytes=2**20)
    small = tmp_path / "forged_small.npz"
    hostile.npz_forged_size(small, claimed=100)  # smaller than the real content
    assert "damaged" in refused(small)


def test_npz_stream_longer_than_declared_is_never_decompressed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "long.npz"
    declared = hostile.npz_stream_longer_than_declared(path)
    tracemalloc.start()
    try:
        try:
            outcome: LoadedTensor | str = load_tensor(path)
        except LoadError as exc:
            outcome = str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # 256 MiB hide behind the declared 8 KB
    if isinstance(outcome, LoadedTensor):
        np.testing.assert_array_equal(outcome.data, declared)
    else:
        assert path.name in outcome


def test_npz_odd_archives(tmp_path: pathlib.Path) -> None:
    no_arrays = tmp_path / "notes.npz"
    with zipfile.ZipFile(no_arrays, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "without .npy arrays" in refused(no_arrays)
    bzip = tmp_path / "bzip.npz"
    with zipfile.ZipFile(bzip, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("x.npy", hostile.npy_header("<f8", (1,)) + bytes(8))
    assert "compression method" in refused(bzip)
    dup = tmp_path / "dup.npz"
    with zipfile.ZipFile(dup, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        zf.writestr("x.npy", hostile.npy_header("<f8", (1,)) + bytes(8))
        zf.writestr("x.npy", hostile.npy_header("<f8", (1,)) + bytes(8))
    assert "two arrays named 'x'" in refused(dup)


def test_pt_zip_bomb_and_size_limit_refused_before_torch_load(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    bomb = tmp_path / "bomb.pt"
    hostile.zip_bomb_npz(bomb)  # then give it a torch-like member name
    data = bomb.read_bytes().replace(b"logits.npy", b"a/data.pkl")  # same length
    bomb.write_bytes(data)
    assert "zip bomb" in refused(bomb)
    big = tmp_path / "big.pt"
    big.write_bytes(b"PK\x03\x04" + bytes(4096))
    assert "over the limit" in refused(big, max_bytes=1024)
    assert calls == []


def test_torchscript_archives_are_not_handed_to_jit(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as zf:  # the layout torch.jit.save writes
        zf.writestr("scripted/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("scripted/constants.pkl", b"\x80\x02)q\x00.")
        zf.writestr("scripted/code/__torch__.py", "")
    assert "TorchScript" in refused(path)
    assert calls == []


def test_conversions_count_against_max_bytes(tmp_path: pathlib.Path) -> None:
    ints = tmp_path / "ints.npy"
    np.save(ints, np.arange(1000, dtype=np.int64))
    assert "over the limit" in refused(ints, max_bytes=4000)
    assert load_tensor(ints, max_bytes=8000).data.shape == (1000,)
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros(1000))
    assert load_tensor(floats, max_bytes=1).memory_mapped  # mapped data is not counted
    bf = tmp_path / "bf.safetensors"
    hostile.write_safetensors(bf, {"x": torch.zeros(1000, dtype=torch.bfloat16)})
    assert "over the limit" in refused(bf, max_bytes=3999)
    npz = tmp_path / "big.npz"
    np.savez(npz, x=np.zeros(1000))
    assert "over the limit" in refused(npz, max_bytes=4000)
    pt = tmp_path / "expanded.pt"
    torch.save({"x": torch.zeros(1).expand(10**6)}, pt)  # tiny file, huge view
    assert "over the limit" in refused(pt, max_bytes=10**6)
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("1,2\n" * 100)
    assert "text is parsed into memory" in refused(csv_path, max_bytes=8 * 100)
    with pytest.raises(ValueError, match="max_bytes"):
        load_tensor(floats, max_bytes=0)


# -- CSV content --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,2,3\n4,1_000,6\n", "row 2, column 2: '1_000' is not a number"),
        ("1,2\n\u0663,4\n", "row 2, column 1"),
        ("1,2\n\n4,=1+2\n", "row 3, column 2: '=1+2' is not a number"),
        ("1,2\n3,=SUM(A1)\n", "spreadsheet formula"),
        ("1,2\n3,@x\n", "spreadsheet formula"),
        ("1,2\n+cmd|' /C calc'!A0,4\n", "row 2, column 1"),
        ("1,2\n-2+3,4\n", "spreadsheet formula"),
        ("1,2,3\n4,5\n", "row 2 has 2 values but the first row has 3"),
        ("a,b,c\n1,2,3\n\n4,5,6,7\n", "row 4 has 4 values but the header names 3 classes"),
        ("1,2\n3,\n", "row 2, column 2: empty value"),
        ("cat,1,2\n3,4,5\n", "header row must name every class"),
        (",cat,dog\n0,1,2\n", "index=False"),
        ("=SUM(A1),dog\n1,2\n", "starts like a spreadsheet formula"),
        ("1_000,2_000\n1,2\n", "not written with plain ASCII digits"),
        ("a,b\n", "header row but no numbers"),
        ("\n\n  \n", "holds no numbers"),
        ('1,"2\n', "row"),
        ("1e999,2\n", "too large"),
        ("1," + "9" * 200_000 + "\n", "field larger than field limit"),
    ],
)
def test_csv_refusals_name_row_and_column(tmp_path: pathlib.Path, text: str, words: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    assert words in refused(path)


# -- the file system ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [*SUPPORTED_SUFFIXES, ".txt"])
def test_empty_files(tmp_path: pathlib.Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.touch()
    assert "empty (0 bytes)" in refused(path)
    with pytest.raises(LoadError):
        list_arrays(path)
    with pytest.raises(LoadError):
        load_targets(path)


def test_missing_files_folders_pipes_and_unknown_suffixes(tmp_path: pathlib.Path) -> None:
    assert "no such file" in refused(tmp_path / "missing.npy")
    folder = tmp_path / "looks_like.npy"
    folder.mkdir()
    assert "is a folder" in refused(folder)
    assert "is a folder" in refused(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in refused(fifo)  # and did not block reading it
    unknown = tmp_path / "weights.h5"
    unknown.write_bytes(b"\x89HDF")
    message = refused(unknown)
    assert all(s in message for s in SUPPORTED_SUFFIXES)
    bare = tmp_path / "README"
    bare.write_text("1,2")
    assert "without a suffix" in refused(bare)
    upper = tmp_path / "UPPER.NPY"
    with upper.open("wb") as f:
        np.save(f, np.ones(2))
    assert load_tensor(upper).data.shape == (2,)
    with pytest.raises(LoadError) as info:
        load_tensor(None)  # type: ignore[arg-type]
    assert "file path" in str(info.value)


def test_permission_denied(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, where chmod does not stop reads: simulate the OS refusing.
    path = tmp_path / "locked.npy"
    np.save(path, np.ones(3))

    def deny(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loaders, "open", deny, raising=False)
    assert "permission denied" in refused(path)
    monkeypatch.setattr(loaders.os, "stat", deny)
    assert "permission denied" in refused(path)


def test_names_for_single_array_files(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "logits.npy"
    np.save(path, np.ones(3))
    assert load_tensor(path, "logits").name is None
    assert "single array" in refused(path, name="other")
    with pytest.raises(LoadError):
        load_tensor(path, 3)  # type: ignore[arg-type]
    text = tmp_path / "scores.csv"
    text.write_text("1,2\n")
    assert load_tensor(text, "scores").name is None
    assert "single array" in refused(text, name="logits")


# -- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "saved",
    [
        np.array([0, 2, 1, 2], dtype=np.int64),
        np.array([0, 2, 1, 2], dtype=np.int32),
        np.array([0, 2, 1, 2], dtype=np.uint8),
        np.array([0.0, 2.0, 1.0, 2.0], dtype=np.float32),
        np.array([[0], [2], [1], [2]]),
        np.array([[0, 2, 1, 2]]),
    ],
)
def test_targets_from_npy(tmp_path: pathlib.Path, saved: np.ndarray) -> None:
    path = tmp_path / "y.npy"
    np.save(path, saved)
    out = load_targets(path, num_rows=4, num_classes=3)
    assert out.dtype == np.int64 and out.shape == (4,)
    np.testing.assert_array_equal(out, [0, 2, 1, 2])


def test_targets_from_every_format(tmp_path: pathlib.Path) -> None:
    expected = [1, 0, 3]
    t = torch.tensor(expected)
    files = {
        "a.npz": lambda p: np.savez(p, logits=np.zeros((3, 4)), targets=np.array(expected)),
        "b.pt": lambda p: torch.save({"logits": torch.zeros(3, 4), "labels": t}, p),
        "c.pth": lambda p: torch.save(t, p),
        "d.safetensors": lambda p: hostile.write_safetensors(
            p, {"logits": np.zeros((3, 4)), "y": t.numpy()}
        ),
        "e.txt": lambda p: p.write_text("1\n0\n\n3\n"),
        "f.csv": lambda p: p.write_text("label\n1\n0\n3\n"),
        "g.tsv": lambda p: p.write_text("1\t0\t3\n"),
    }
    for filename, write in files.items():
        path = tmp_path / filename
        write(path)
        np.testing.assert_array_equal(load_targets(path, num_rows=3, num_classes=4), expected)
    scalar = tmp_path / "one.pt"
    torch.save(torch.tensor(2), scalar)
    np.testing.assert_array_equal(load_targets(scalar, num_rows=1), [2])
    several = tmp_path / "several.npz"
    np.savez(several, a=np.array([1]), b=np.array([2]))
    assert "'a', 'b'" in refused_targets(several)
    np.testing.assert_array_equal(load_targets(several, name="b"), [2])


@pytest.mark.parametrize(
    ("saved", "kwargs", "words"),
    [
        (np.array([0.0, 1.5]), {}, "target 1 is 1.5, not a whole class index"),
        (np.array([0.0, np.nan]), {}, "target 1 is nan"),
        (np.array([0, -3]), {}, "target 1 is -3"),
        (np.array([0, 5, 1]), {"num_classes": 5}, "target 1 is 5 but the logits have 5 classes"),
        (np.array([0, 1, 1]), {"num_rows": 4}, "holds 3 targets but the logits have 4 rows"),
        (np.eye(3), {}, "y.argmax(axis=1)"),
        (np.zeros((2, 2, 2), dtype=np.int64), {}, "3-D"),
        (np.zeros(0, dtype=np.int64), {}, "no targets"),
        (np.array([2**64 - 1], dtype=np.uint64), {}, "too large"),
        (np.array([1e300]), {}, "too large"),
        (np.array([1 + 1j]), {}, "complex"),
    ],
)
def test_targets_refusals(
    tmp_path: pathlib.Path, saved: np.ndarray, kwargs: dict, words: str
) -> None:
    path = tmp_path / "y.npy"
    np.save(path, saved)
    assert words in refused_targets(path, **kwargs)


def test_targets_ignore_index_and_text_refusals(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "y.npy"
    np.save(path, np.array([0, -100, 2]))
    np.testing.assert_array_equal(load_targets(path, num_classes=3), [0, -100, 2])
    grid = tmp_path / "grid.csv"
    grid.write_text("1,2\n3,4\n")
    assert "one class index per line" in refused_targets(grid)
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n2.5\n")
    assert "not a whole class index" in refused_targets(bad)
    formula = tmp_path / "formula.csv"
    formula.write_text("1\n=A1\n")
    assert "row 2, column 1" in refused_targets(formula)


def test_pickle_module_is_never_used_by_the_loaders(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every NumPy/safetensors/text path loads with pickle.loads and Unpickler poisoned."""

    def poisoned(*args: object, **kwargs: object) -> object:
        raise AssertionError("the loader unpickled something")

    files = _valid_files(tmp_path)
    monkeypatch.setattr(pickle, "loads", poisoned)
    monkeypatch.setattr(pickle, "load", poisoned)
    for suffix, path in files.items():
        if suffix != ".pt":  # torch.load(weights_only=True) runs its own restricted unpickler
            check_loaded(load_tensor(path, None if suffix in (".npy", ".csv") else "x"))
