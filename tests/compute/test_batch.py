"""Batch statistics, checked against torch's own functions in float64 on the same data."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_lab.compute import batch as batch_module
from softmax_lab.compute import gpu_passes
from softmax_lab.compute.batch import (
    BatchCancelled,
    BatchRequest,
    batch_statistics,
)
from softmax_lab.compute.dtypes import dtype_info
from softmax_lab.compute.errors import ComputeMemoryError, InvalidInputError
from softmax_lab.compute.file_rows import FileRows


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every CPU test here runs twice: with compute/_fused.c doing the float32 row pass,
    and with torch's kernels alone (what a machine without a C compiler runs). The
    compiled pass is CPU-only, so a CUDA test runs once."""
    if metafunc.definition.get_closest_marker("cuda") is None:
        metafunc.parametrize("row_kernel", ["compiled", "torch"], indirect=True)


@pytest.fixture(autouse=True)
def row_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kernel = getattr(request, "param", "torch")
    if kernel == "compiled" and batch_module._fused is None:
        pytest.skip("compute/_fused.c was not built here (test_fused.py says why that fails)")
    monkeypatch.setattr(batch_module, "FUSED_KERNEL", kernel == "compiled")
    return kernel


# Tolerances against a float64 reference, by the dtype the lab computes in.
ATOL = {"float64": 1e-12, "float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


def _logits(n: int, c: int, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c)) * scale


def _stored(data: np.ndarray, dtype: str) -> torch.Tensor:
    """The logits as the lab stores them in ``dtype``, upcast exactly to float64."""
    return torch.tensor(data).to(getattr(torch, dtype)).double()


def _smoothed_loss(logp: torch.Tensor, targets: np.ndarray, eps: float) -> torch.Tensor:
    """-sum(q * logp) per row with q = (1 - eps) one_hot + eps / C, as torch defines it."""
    c = logp.shape[1]
    q = F.one_hot(torch.tensor(targets), c).double() * (1.0 - eps) + eps / c
    return -(q * logp).sum(dim=1)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("dim", [1, 0])
def test_matches_torch_in_float64(dtype: str, dim: int) -> None:
    n, c, t, eps = 37, 11, 0.8, 0.1
    data = _logits(n, c, seed=1)
    targets = np.random.default_rng(2).integers(0, c, n)
    result = batch_statistics(BatchRequest(data, t, dim, dtype, "cpu", targets, eps), chunk_rows=8)
    x = _stored(data, dtype) / t
    p = torch.softmax(x, dim=dim)
    logp = torch.log_softmax(x, dim=dim)
    atol = ATOL[dtype]

    assert result.shape == (n, c) and result.dim == dim and result.device == "cpu"
    assert result.heatmap.dtype == np.float32 and result.heatmap.shape == (n, c)
    assert (result.heatmap_row_bin, result.heatmap_col_bin) == (1, 1)
    np.testing.assert_allclose(result.heatmap, p.numpy(), atol=max(atol, 1e-7), rtol=0)
    np.testing.assert_allclose(result.row_sums, p.sum(dim=1).numpy(), atol=atol * c, rtol=0)
    entropy = -(p * logp).sum(dim=dim)
    assert result.entropy.shape == (c if dim == 0 else n,)
    np.testing.assert_allclose(result.entropy, entropy.numpy(), atol=atol * 20, rtol=0)
    np.testing.assert_allclose(
        result.max_probability, p.amax(dim=dim).numpy(), atol=max(atol, 1e-7), rtol=0
    )
    # Low precision may break near-ties differently; the chosen entry must be a max.
    chosen = p.gather(dim, torch.tensor(result.argmax).unsqueeze(dim)).squeeze(dim)
    np.testing.assert_allclose(chosen.numpy(), p.amax(dim=dim).numpy(), atol=2 * atol, rtol=0)
    if dtype in ("float64", "float32"):
        np.testing.assert_array_equal(result.argmax, p.argmax(dim=dim).numpy())

    # dim=0: the row's log-probabilities normalised down the columns (the wrong loss).
    expected_rows = _smoothed_loss(logp, targets, eps)
    if dim == 1:
        torch_rows = F.cross_entropy(
            _stored(data, dtype) / t, torch.tensor(targets), label_smoothing=eps, reduction="none"
        )
        np.testing.assert_allclose(expected_rows.numpy(), torch_rows.numpy(), rtol=1e-12)
    assert result.cross_entropy is not None and result.mean_cross_entropy is not None
    np.testing.assert_allclose(result.cross_entropy, expected_rows.numpy(), atol=atol * 50, rtol=0)
    assert result.mean_cross_entropy == pytest.approx(float(expected_rows.mean()), abs=atol * 50)


def test_row_sums_teach_the_dim0_mistake() -> None:
    data = _logits(6, 4, seed=3)
    right = batch_statistics(BatchRequest(data, dim=1, dtype="float64", device="cpu"))
    wrong = batch_statistics(BatchRequest(data, dim=0, dtype="float64", device="cpu"))
    np.testing.assert_allclose(right.row_sums, 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        wrong.row_sums, torch.softmax(torch.tensor(data), dim=0).sum(dim=1).numpy(), rtol=1e-12
    )
    assert not np.allclose(wrong.row_sums, 1.0)
    # Column sums of the dim=0 heatmap are 1: each column is a distribution.
    np.testing.assert_allclose(wrong.heatmap.sum(axis=0), 1.0, rtol=1e-6)


def test_mean_cross_entropy_equals_torch_cross_entropy() -> None:
    data = _logits(50, 7, seed=4)
    targets = np.random.default_rng(5).integers(0, 7, 50)
    for eps in (0.0, 0.25, 1.0):
        result = batch_statistics(
            BatchRequest(data, 1.3, 1, "float64", "cpu", targets, eps), chunk_rows=9
        )
        expected = F.cross_entropy(
            torch.tensor(data) / 1.3, torch.tensor(targets), label_smoothing=eps
        )
        assert result.mean_cross_entropy == pytest.approx(float(expected), rel=1e-12)


def test_ignored_rows_follow_torch() -> None:
    data = _logits(10, 4, seed=6)
    targets = np.array([0, 1, -100, 3, 2, -100, 0, 1, 2, 3])
    result = batch_statistics(
        BatchRequest(data, 1.0, 1, "float64", "cpu", targets, 0.2), chunk_rows=3
    )
    rows = F.cross_entropy(
        torch.tensor(data), torch.tensor(targets), label_smoothing=0.2, reduction="none"
    )
    mean = F.cross_entropy(torch.tensor(data), torch.tensor(targets), label_smoothing=0.2)
    np.testing.assert_allclose(result.cross_entropy, rows.numpy(), rtol=1e-12, atol=1e-15)
    assert result.mean_cross_entropy == pytest.approx(float(mean), rel=1e-12)


@pytest.mark.parametrize("dim", [1, 0])
@pytest.mark.parametrize("chunk_rows", [1, 7, 10, 103, 1000])
def test_chunking_does_not_change_the_result(dim: int, chunk_rows: int) -> None:
    n, c = 103, 6  # 103 is a multiple of none of the chunk sizes but itself
    data = _logits(n, c, seed=7)
    targets = np.random.default_rng(8).integers(0, c, n)
    result = batch_statistics(
        BatchRequest(data, 0.5, dim, "float64", "cpu", targets, 0.05), chunk_rows=chunk_rows
    )
    x = torch.tensor(data) / 0.5
    p = torch.softmax(x, dim=dim)
    logp = torch.log_softmax(x, dim=dim)
    np.testing.assert_allclose(result.heatmap, p.numpy(), atol=1e-7, rtol=0)
    np.testing.assert_allclose(result.entropy, (-(p * logp).sum(dim=dim)).numpy(), atol=1e-12)
    np.testing.assert_array_equal(result.argmax, p.argmax(dim=dim).numpy())
    np.testing.assert_allclose(
        result.cross_entropy, _smoothed_loss(logp, targets, 0.05), atol=1e-12
    )


@pytest.mark.parametrize("dim", [1, 0])
def test_argmax_ties_pick_the_first_like_torch(dim: int) -> None:
    data = np.zeros((10, 4))
    data[2, 1] = data[8, 1] = 5.0  # column 1: tie between rows 2 and 8, in different chunks
    data[4, 3] = data[4, 0] = 5.0  # row 4: tie between classes 0 and 3
    result = batch_statistics(
        BatchRequest(data, dim=dim, dtype="float64", device="cpu"), chunk_rows=3
    )
    np.testing.assert_array_equal(
        result.argmax, torch.softmax(torch.tensor(data), dim=dim).argmax(dim=dim).numpy()
    )


def test_default_chunk_size_splits_wide_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "CHUNK_ELEMENTS", 50)
    data = _logits(23, 9, seed=9)  # 5 rows per chunk by default now
    calls: list[float] = []
    result = batch_statistics(
        BatchRequest(data, dtype="float64", device="cpu"), progress=calls.append
    )
    assert len(calls) == math.ceil(23 / 5) + 1
    np.testing.assert_allclose(
        result.heatmap, torch.softmax(torch.tensor(data), dim=1).numpy(), atol=1e-7, rtol=0
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    c=st.integers(1, 12),
    chunk_rows=st.integers(1, 31),
    dim=st.sampled_from([0, 1]),
    temperature=st.floats(0.05, 20.0),
    seed=st.integers(0, 2**16),
)
def test_any_shape_and_chunking_matches_torch(
    n: int, c: int, chunk_rows: int, dim: int, temperature: float, seed: int
) -> None:
    data = _logits(n, c, seed=seed, scale=10.0)
    result = batch_statistics(
        BatchRequest(data, temperature, dim, "float64", "cpu"), chunk_rows=chunk_rows
    )
    x = torch.tensor(data) / temperature
    p = torch.softmax(x, dim=dim)
    np.testing.assert_allclose(result.heatmap, p.numpy(), atol=1e-7, rtol=0)
    np.testing.assert_allclose(result.row_sums, p.sum(dim=1).numpy(), atol=1e-12, rtol=0)
    entropy = -(p * torch.log_softmax(x, dim=dim)).sum(dim=dim)
    np.testing.assert_allclose(result.entropy, entropy.numpy(), atol=1e-10, rtol=0)
    np.testing.assert_allclose(result.max_probability, p.amax(dim=dim).numpy(), atol=1e-12)


def _max_binned(p: np.ndarray, rb: int, cb: int) -> np.ndarray:
    """Independent max-binning: pad with -inf to whole bins, reshape, max."""
    n, c = p.shape
    rows, cols = -(-n // rb), -(-c // cb)
    padded = np.full((rows * rb, cols * cb), -np.inf)
    padded[:n, :c] = p
    return padded.reshape(rows, rb, cols, cb).max(axis=(1, 3))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("dim", [1, 0])
def test_heatmap_bins_keep_a_planted_peak(
    monkeypatch: pytest.MonkeyPatch, dim: int, device: str
) -> None:
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_ROWS", 8)
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_COLS", 16)
    # On a GPU, cells are binned there in blocks of whole row bins: here 7 rows each.
    monkeypatch.setattr(batch_module, "_GPU_HEAT_BLOCK", 14 * 9)
    n, c = 50, 70  # bins of 7 rows x 5 classes; the last bins are partial
    data = _logits(n, c, seed=10, scale=0.5)
    data[23, 41] = 40.0  # dominates its row and its column
    # Chunks of 4 rows: row bins of 7 straddle chunk boundaries.
    result = batch_statistics(
        BatchRequest(data, dim=dim, dtype="float64", device=device), chunk_rows=4
    )
    assert (result.heatmap_row_bin, result.heatmap_col_bin) == (7, 5)
    assert result.heatmap.shape == (8, 14)
    p = torch.softmax(torch.tensor(data), dim=dim).numpy()
    np.testing.assert_allclose(result.heatmap, _max_binned(p, 7, 5), atol=1e-7, rtol=0)
    assert result.heatmap[23 // 7, 41 // 5] == pytest.approx(1.0, abs=1e-7)
    assert np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape) == (3, 8)
    # A mean over the bin would have diluted the peak to about 1/35.
    assert result.heatmap[3, 8] > 0.99


@pytest.mark.parametrize("row_bin", [1, 3, 7])
def test_cells_binned_on_the_device_equal_the_reference(
    monkeypatch: pytest.MonkeyPatch, row_bin: int
) -> None:
    """The GPU's binning of heatmap rows, run on CPU tensors; blocks of whole row bins
    and a last, shorter bin."""
    n, c = 50, 6
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_ROWS", -(-n // row_bin))
    plan = batch_module._plan(BatchRequest(_logits(n, c), device="cpu"), chunk_rows=None)
    assert plan.row_bin == row_bin
    acc = batch_module._Accumulator(plan)
    cells = np.random.default_rng(3).random((n, c)).astype(np.float32)
    step = 2 * row_bin
    for r0 in range(0, n, step):
        acc._bin_on_device(r0, torch.from_numpy(cells[r0 : r0 + step]))
    np.testing.assert_array_equal(acc.heatmap, _max_binned(cells, row_bin, 1))


def test_heatmap_is_bounded_with_the_default_limits() -> None:
    n = 2 * batch_module.HEATMAP_MAX_ROWS + 5
    data = _logits(n, 3, seed=11)
    result = batch_statistics(BatchRequest(data, dtype="float32", device="cpu"), chunk_rows=1000)
    assert result.heatmap_row_bin == 3
    assert result.heatmap.shape == (math.ceil(n / 3), 3)
    p = torch.softmax(torch.tensor(data).float(), dim=1).numpy()
    np.testing.assert_allclose(result.heatmap, _max_binned(p, 3, 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dim", [1, 0])
def test_cancellation_raises_between_chunks(dim: int) -> None:
    polls: list[int] = []

    def cancelled() -> bool:
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(BatchCancelled):
        batch_statistics(
            BatchRequest(_logits(40, 5), dim=dim, device="cpu"), chunk_rows=10, cancelled=cancelled
        )
    assert len(polls) == 3


@pytest.mark.parametrize("dim", [1, 0])
def test_progress_rises_to_one(dim: int) -> None:
    seen: list[float] = []
    batch_statistics(
        BatchRequest(_logits(45, 5), dim=dim, device="cpu"), chunk_rows=10, progress=seen.append
    )
    assert seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)
    assert len(seen) >= (5 if dim == 1 else 10)


@pytest.mark.parametrize("dim", [1, 0])
def test_memmap_input(tmp_path, dim: int) -> None:
    data = _logits(64, 9, seed=12).astype(np.float32)
    targets = np.random.default_rng(13).integers(0, 9, 64)
    np.save(tmp_path / "logits.npy", data)
    mapped = np.load(tmp_path / "logits.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    result = batch_statistics(
        BatchRequest(mapped, dim=dim, dtype="float32", device="cpu", targets=targets), chunk_rows=10
    )
    x = torch.tensor(data)
    p = torch.softmax(x.double(), dim=dim)
    np.testing.assert_allclose(result.heatmap, p.numpy(), atol=2e-6, rtol=0)
    rows = _smoothed_loss(torch.log_softmax(x.double(), dim=dim), targets, 0.0)
    np.testing.assert_allclose(result.cross_entropy, rows.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "source",
    [np.dtype(np.float16), np.dtype(">f4"), np.dtype(np.int32), np.dtype(np.float32)],
    ids=["float16", "big-endian", "int32", "float32"],
)
def test_input_dtypes(source: np.dtype) -> None:
    data = np.random.default_rng(14).integers(-5, 6, size=(12, 5)).astype(source)
    result = batch_statistics(BatchRequest(data, dtype="float64", device="cpu"), chunk_rows=5)
    expected = torch.softmax(torch.tensor(data.astype(np.float64)), dim=1).numpy()
    np.testing.assert_allclose(result.heatmap, expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize("dim", [1, 0])
def test_nonfinite_logits_counted_and_nan_like_torch(dim: int) -> None:
    data = _logits(8, 5, seed=15)
    data[1, 2] = np.nan
    data[3, 0] = np.inf
    data[5, 4] = -np.inf
    data[6, :] = -np.inf
    result = batch_statistics(
        BatchRequest(data, dim=dim, dtype="float64", device="cpu"), chunk_rows=3
    )
    assert result.nonfinite_count == int(np.count_nonzero(~np.isfinite(data)))
    p = torch.softmax(torch.tensor(data), dim=dim).numpy()
    np.testing.assert_allclose(result.heatmap, p, atol=1e-7, rtol=0, equal_nan=True)
    np.testing.assert_allclose(result.row_sums, p.sum(axis=1), atol=1e-12, equal_nan=True)
    nan_dists = np.isnan(p).any(axis=dim)
    assert nan_dists.any()
    np.testing.assert_array_equal(np.isnan(result.entropy), nan_dists)
    np.testing.assert_array_equal(result.argmax == -1, nan_dists)
    np.testing.assert_array_equal(np.isnan(result.max_probability), nan_dists)


def test_values_beyond_the_dtype_count_as_nonfinite() -> None:
    data = np.array([[70000.0, 1.0, 2.0], [1.0, 2.0, 3.0]])  # 70000 is inf in float16
    result = batch_statistics(BatchRequest(data, dtype="float16", device="cpu"))
    assert result.nonfinite_count == 1
    assert np.isnan(result.entropy[0]) and not np.isnan(result.entropy[1])


@pytest.mark.parametrize(
    ("dtype", "dim"),
    [("float32", 1), ("float16", 1), ("float64", 1), ("float32", 0), ("float16", 0)],
)
def test_naive_overflow_count(dtype: str, dim: int) -> None:
    rng = np.random.default_rng(16)
    data = rng.normal(size=(12, 6))
    data[2, 3] = 100.0  # exp overflows float32 and float16, not float64
    data[7, 1] = 10.5  # exp fits float16 (limit 11.09) ...
    data[7, 2] = 10.6  # ... but exp(10.5) + exp(10.6) > 65504
    result = batch_statistics(BatchRequest(data, dim=dim, dtype=dtype, device="cpu"), chunk_rows=5)
    # Independent count: the exact log of the naive sum exceeds log(max) of the dtype.
    stored = _stored(data, dtype)
    log_sum = torch.logsumexp(stored, dim=dim)
    assert result.naive_overflow_rows == int((log_sum > dtype_info(dtype).naive_limit).sum())
    # Rows: row 2 (float16, float32) and row 7 (float16). Columns: only column 3.
    expected = {"float32": 1, "float16": 2 if dim == 1 else 1, "float64": 0}[dtype]
    assert result.naive_overflow_rows == expected


@pytest.mark.parametrize("dim", [1, 0])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_tiny_temperature_gives_one_hot_not_nan(dim: int, dtype: str) -> None:
    data = _logits(9, 4, seed=17)
    # 1e-300 is 0 in float32, the compute type torch uses for a float16/float32 tensor.
    result = batch_statistics(BatchRequest(data, 1e-300, dim, dtype, "cpu"), chunk_rows=4)
    stored = _stored(data, dtype).numpy()
    one_hot = (stored == stored.max(axis=dim, keepdims=True)).astype(np.float64)
    np.testing.assert_array_equal(result.heatmap, one_hot)
    np.testing.assert_allclose(result.entropy, 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"dim": 2}, "dim"),
        ({"dtype": "int8"}, "dtype"),
        ({"label_smoothing": 1.5}, "label smoothing"),
        ({"targets": np.array([0, 1])}, "one class index per row"),
        ({"targets": np.array([0, 1, 3, 1])}, "out of range"),
        ({"targets": np.array([0, 1, -1, 1])}, "out of range"),
        ({"targets": np.array([0.0, 1.0, 2.0, 1.0])}, "integer"),
    ],
)
def test_invalid_requests(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        batch_statistics(BatchRequest(_logits(4, 3), device="cpu", **kwargs))


@pytest.mark.parametrize(
    "data",
    [np.zeros(5), np.zeros((2, 3, 4)), np.zeros((0, 3)), np.zeros((3, 2), dtype=complex)],
    ids=["1-D", "3-D", "empty", "complex"],
)
def test_invalid_data(data: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        batch_statistics(BatchRequest(data, device="cpu"))


@pytest.mark.parametrize("dim", [1, 0])
def test_out_of_memory_becomes_a_readable_error(monkeypatch: pytest.MonkeyPatch, dim: int) -> None:
    def exhausted(*args: object, **kwargs: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    class Exhausted:  # the compiled passes: what a failed allocation in C raises
        def __getattr__(self, name: str):
            def call(*args: object) -> None:
                raise MemoryError

            return call

    # Every path exponentiates (base e or 2); the fused dim=1 path never calls log_softmax.
    monkeypatch.setattr(torch, "exp", exhausted)
    monkeypatch.setattr(torch, "exp2", exhausted)
    if batch_module._fused is not None:
        monkeypatch.setattr(batch_module, "_fused", Exhausted())
    with pytest.raises(ComputeMemoryError, match=r"out of memory on cpu .* 4 x 3 batch"):
        batch_statistics(BatchRequest(_logits(4, 3), dim=dim, device="cpu"))


@pytest.mark.cuda
@pytest.mark.parametrize("dim", [1, 0])
def test_cuda_matches_cpu(dim: int) -> None:
    data = _logits(300, 50, seed=18)
    targets = np.random.default_rng(19).integers(0, 50, 300)
    cpu = batch_statistics(
        BatchRequest(data, 0.7, dim, "float64", "cpu", targets, 0.1), chunk_rows=64
    )
    gpu = batch_statistics(
        BatchRequest(data, 0.7, dim, "float64", "cuda", targets, 0.1), chunk_rows=64
    )
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.heatmap, cpu.heatmap, atol=1e-7)
    np.testing.assert_allclose(gpu.entropy, cpu.entropy, atol=1e-10)
    np.testing.assert_allclose(gpu.cross_entropy, cpu.cross_entropy, atol=1e-10)
    np.testing.assert_array_equal(gpu.argmax, cpu.argmax)


# -- the fused dim=1 path ---------------------------------------------------------------
#
# dim=1 never calls torch.softmax: it reduces exp((x - max) / T) to two row sums
# (S and sum exp(s) * s) and finishes each statistic in float64. These tests hold it
# to the plain reference (torch.softmax / log_softmax / cross_entropy in float64 on the
# logits as stored in the dtype) at vocabulary sizes. Tolerances of the float32 path:
FUSED_TOL = {
    "heatmap": 2e-6,  # float32 cells, absolute (p <= 1)
    "probability": 2e-6,  # max probability, absolute
    "entropy": 1e-5,  # nats, absolute: up to log(262,144) = 12.5 nats
    "cross_entropy": 1e-5,  # nats, absolute
}


@pytest.fixture(autouse=True)
def _no_kept_facts():
    """Each test starts and ends without facts kept from another test's batch."""
    batch_module.clear_cache()
    yield
    batch_module.clear_cache()


def _reference(
    data: np.ndarray, t: float, dtype: str, targets: np.ndarray | None = None, eps: float = 0.0
) -> dict[str, np.ndarray]:
    """torch.softmax + separate reductions, in float64, on the logits stored in ``dtype``."""
    x = _stored(data, dtype) / t
    p = torch.softmax(x, dim=1)
    logp = torch.log_softmax(x, dim=1)
    # 0 * log 0 = 0 for masked classes; a NaN row stays NaN.
    entropy = -torch.where(p > 0, p * logp, 0.0).sum(dim=1)
    entropy[torch.isnan(p).any(dim=1)] = torch.nan
    out = {
        "p": p.numpy(),
        "entropy": entropy.numpy(),
        "max_probability": p.amax(dim=1).numpy(),
        "argmax": p.argmax(dim=1).numpy(),
        "row_sums": p.sum(dim=1).numpy(),
    }
    if targets is not None:
        out["cross_entropy"] = F.cross_entropy(
            x, torch.tensor(targets), label_smoothing=eps, reduction="none"
        ).numpy()
    return out


def _assert_fused_matches(result, ref: dict[str, np.ndarray], tol: dict[str, float]) -> None:
    rb, cb = result.heatmap_row_bin, result.heatmap_col_bin
    np.testing.assert_allclose(
        result.heatmap, _max_binned(ref["p"], rb, cb), atol=tol["heatmap"], rtol=0
    )
    np.testing.assert_allclose(result.entropy, ref["entropy"], atol=tol["entropy"], rtol=0)
    np.testing.assert_allclose(
        result.max_probability, ref["max_probability"], atol=tol["probability"], rtol=1e-6
    )
    np.testing.assert_array_equal(result.argmax, ref["argmax"])
    np.testing.assert_allclose(result.row_sums, ref["row_sums"], atol=1e-6, rtol=0)
    if "cross_entropy" in ref:
        # Relative: a loss of hundreds of nats (a low T) is mostly s = (x - max) / T,
        # computed in float32 with 1/T rounded to float32: two roundings of 2^-24 each.
        # 1.4e-7 was found (T = 0.0234, label smoothing 1: 285.86595 against 285.86591).
        np.testing.assert_allclose(
            result.cross_entropy, ref["cross_entropy"], atol=tol["cross_entropy"], rtol=2.5e-7
        )


def _vocabulary_logits(n: int, c: int, seed: int) -> np.ndarray:
    """LLM-like rows: a broad normal body, a few strong candidates, one peaked row."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, c)).astype(np.float32) * 2.5
    data[:, rng.integers(0, c, 5)] += 9.0
    data[0, c // 3] = 40.0  # nearly one-hot
    return data


@pytest.mark.parametrize(("n", "c"), [(7, 50_257), (2, 262_144)])
@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_fused_path_matches_the_float64_reference_at_vocabulary_size(
    n: int, c: int, temperature: float
) -> None:
    data = _vocabulary_logits(n, c, seed=c)
    targets = np.random.default_rng(1).integers(0, c, n)
    targets[-1] = -100
    eps = 0.1
    result = batch_statistics(
        BatchRequest(data, temperature, 1, "float32", "cpu", targets, eps), chunk_rows=3
    )
    assert result.heatmap_col_bin == math.ceil(c / batch_module.HEATMAP_MAX_COLS) > 1
    ref = _reference(data, temperature, "float32", targets, eps)
    _assert_fused_matches(result, ref, FUSED_TOL)
    assert result.mean_cross_entropy == pytest.approx(
        float(ref["cross_entropy"][:-1].mean()), abs=FUSED_TOL["cross_entropy"]
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_fused_path_in_other_dtypes(dtype: str) -> None:
    # Half types are stored in the dtype and computed in float32, as torch's
    # softmax kernels do; the reference sees the same stored values.
    data = _logits(9, 5000, seed=2)
    targets = np.random.default_rng(3).integers(0, 5000, 9)
    result = batch_statistics(BatchRequest(data, 0.7, 1, dtype, "cpu", targets, 0.05), chunk_rows=4)
    ref = _reference(data, 0.7, dtype, targets, 0.05)
    # float64 is computed in float64; only the heatmap is float32 (half an ulp of 1).
    tol = FUSED_TOL if dtype != "float64" else {**dict.fromkeys(FUSED_TOL, 1e-12), "heatmap": 6e-8}
    _assert_fused_matches(result, ref, tol)


@pytest.mark.parametrize("temperature", [0.01, 0.05])
def test_small_temperature_clamps_the_exponent_without_changing_results(temperature: float) -> None:
    # (x - max) / T reaches -3000 here: far below where exp2 leaves the normal range.
    data = _logits(6, 3000, seed=4, scale=10.0)
    targets = np.random.default_rng(5).integers(0, 3000, 6)
    result = batch_statistics(
        BatchRequest(data, temperature, 1, "float32", "cpu", targets, 0.2), chunk_rows=4
    )
    _assert_fused_matches(result, _reference(data, temperature, "float32", targets, 0.2), FUSED_TOL)


def test_masked_logits_stay_exact() -> None:
    # Masking with -inf (top-k filtering, padding) is common in real dumps.
    data = _logits(5, 2000, seed=6)
    data[:, 1000:] = -np.inf
    data[3, :990] = -np.inf  # only ten classes left
    targets = np.array([3, 1500, 7, 1995, -100])  # row 1's target is masked: infinite loss
    for eps in (0.0, 0.3):
        batch_module.clear_cache()
        result = batch_statistics(
            BatchRequest(data, 0.8, 1, "float32", "cpu", targets, eps), chunk_rows=2
        )
        ref = _reference(data, 0.8, "float32", targets, eps)
        assert np.isinf(ref["cross_entropy"][1])
        _assert_fused_matches(result, ref, FUSED_TOL)
        assert result.nonfinite_count == int(np.isinf(data).sum())
        assert np.isfinite(result.entropy).all()


@pytest.mark.parametrize("c", [3000, 9000])  # full-resolution heatmap; binned (compiled pass)
def test_rows_of_nan_and_inf_next_to_fast_rows(c: int) -> None:
    data = _logits(8, c, seed=7)
    data[1, 5] = np.nan
    data[4, 9] = np.inf
    data[6, :] = -np.inf
    targets = np.random.default_rng(8).integers(0, c, 8)
    result = batch_statistics(
        BatchRequest(data, 1.5, 1, "float32", "cpu", targets, 0.1), chunk_rows=3
    )
    ref = _reference(data, 1.5, "float32", targets, 0.1)
    bad = np.array([1, 4, 6])
    good = np.setdiff1d(np.arange(8), bad)
    assert np.isnan(ref["entropy"][bad]).all() and np.isnan(ref["p"][bad]).all()
    np.testing.assert_array_equal(np.isnan(result.entropy), np.isnan(ref["entropy"]))
    np.testing.assert_array_equal(result.argmax[bad], -1)
    assert np.isnan(result.heatmap[bad]).all() and not np.isnan(result.heatmap[good]).any()
    assert np.isnan(result.cross_entropy[bad]).all()
    np.testing.assert_allclose(
        result.entropy[good], ref["entropy"][good], atol=FUSED_TOL["entropy"]
    )
    np.testing.assert_allclose(
        result.cross_entropy[good], ref["cross_entropy"][good], atol=FUSED_TOL["cross_entropy"]
    )
    assert result.nonfinite_count == 2 + c


def test_finite_logits_whose_sum_overflows_float32() -> None:
    # 3e38 + 3e38 is inf in float32: the mean log p for label smoothing must not be.
    data = np.array([[3e38, 3e38, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    targets = np.array([2, 0])
    result = batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu", targets, 0.3))
    ref = _reference(data, 1.0, "float32", targets, 0.3)
    assert result.nonfinite_count == 0
    np.testing.assert_allclose(result.cross_entropy, ref["cross_entropy"], rtol=1e-6)
    np.testing.assert_allclose(result.entropy, ref["entropy"], atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_naive_overflow_at_the_limit_follows_the_definition(dtype: str) -> None:
    # Rows whose naive log-sum-exp sits within rounding of log(max): each is decided
    # by what a naive exp/sum in the dtype actually does.
    limit = dtype_info(dtype).naive_limit
    offsets = np.array([-1e-3, -1e-5, -1e-7, 0.0, 1e-7, 1e-5, 1e-3])
    data = np.full((offsets.size, 4), -50.0)
    data[:, 0] = data[:, 1] = limit - math.log(2.0) + offsets * abs(limit)  # two equal maxima
    result = batch_statistics(BatchRequest(data, 1.0, 1, dtype, "cpu"))
    stored = torch.tensor(data).to(getattr(torch, dtype))
    exps = torch.exp(stored)
    naive = torch.isinf(exps).any(dim=1) | torch.isinf(exps.double().sum(dim=1).to(stored.dtype))
    assert result.naive_overflow_rows == int(naive.sum())
    assert 0 < result.naive_overflow_rows < offsets.size


@pytest.fixture
def learnt(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first row of every chunk whose temperature-independent facts were learnt."""
    seen: list[int] = []
    original = batch_module._RowKernel._learn

    def learn(self, r0: int, r1: int, *rest) -> None:
        seen.append(r0)
        original(self, r0, r1, *rest)

    monkeypatch.setattr(batch_module._RowKernel, "_learn", learn)
    return seen


def test_kept_facts_serve_a_new_temperature_for_the_same_read_only_batch(
    learnt: list[int],
) -> None:
    data = _vocabulary_logits(6, 9000, seed=9)
    data.setflags(write=False)  # as a memory-mapped file is
    targets = np.random.default_rng(10).integers(0, 9000, 6)
    batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu", targets, 0.1), chunk_rows=4)
    learnt.clear()
    warm = batch_statistics(
        BatchRequest(data, 0.4, 1, "float32", "cpu", targets, 0.1), chunk_rows=4
    )
    assert learnt == []  # nothing was re-read for the facts
    _assert_fused_matches(warm, _reference(data, 0.4, "float32", targets, 0.1), FUSED_TOL)
    batch_module.clear_cache()
    cold = batch_statistics(
        BatchRequest(data, 0.4, 1, "float32", "cpu", targets, 0.1), chunk_rows=4
    )
    assert learnt == [0, 4]
    np.testing.assert_allclose(warm.entropy, cold.entropy, rtol=1e-12)
    np.testing.assert_array_equal(warm.heatmap, cold.heatmap)

    # Another batch of the same shape, or a different dtype, is learnt afresh.
    other = np.ascontiguousarray(data[::-1])
    other.setflags(write=False)
    learnt.clear()
    batch_statistics(BatchRequest(other, 0.4, 1, "float32", "cpu"), chunk_rows=4)
    assert learnt == [0, 4]
    learnt.clear()
    batch_statistics(BatchRequest(other, 0.4, 1, "float16", "cpu"), chunk_rows=4)
    assert learnt == [0, 4]


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".csv"])
def test_a_loaded_batch_that_is_not_mapped_keeps_its_facts_too(
    tmp_path, learnt: list[int], suffix: str
) -> None:
    from softmax_lab.compute.loaders import load_tensor

    data = _logits(6, 300, seed=30).astype(np.float32)
    path = tmp_path / f"batch{suffix}"
    if suffix == ".pt":
        torch.save(torch.from_numpy(data), path)
    elif suffix == ".npz":
        np.savez(path, logits=data)
    else:
        np.savetxt(path, data, delimiter=",")
    loaded = load_tensor(path)
    assert not loaded.memory_mapped
    batch_statistics(BatchRequest(loaded.data, 1.0, 1, "float32", "cpu"), chunk_rows=4)
    learnt.clear()
    warm = batch_statistics(BatchRequest(loaded.data, 0.5, 1, "float32", "cpu"), chunk_rows=4)
    assert learnt == []
    _assert_fused_matches(warm, _reference(np.asarray(loaded.data), 0.5, "float32"), FUSED_TOL)


def test_a_writable_batch_edited_in_place_is_never_stale() -> None:
    data = _logits(4, 5000, seed=11).astype(np.float32)
    batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu"))
    data[2, 17] = 60.0  # a writable array may change between two calls
    result = batch_statistics(BatchRequest(data, 0.9, 1, "float32", "cpu"))
    assert result.argmax[2] == 17
    _assert_fused_matches(result, _reference(data, 0.9, "float32"), FUSED_TOL)


def test_reading_a_read_only_batch_directly_equals_staging_it() -> None:
    # Warm, a float32 read-only batch is read in place; a float64 one is converted first.
    data64 = _logits(10, 4500, seed=12)
    data32 = data64.astype(np.float32)
    data32.setflags(write=False)
    data64.setflags(write=False)
    results = []
    for data in (data32, data64):
        batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu"), chunk_rows=3)
        results.append(batch_statistics(BatchRequest(data, 0.6, 1, "float32", "cpu"), chunk_rows=3))
    direct, staged = results
    np.testing.assert_array_equal(direct.entropy, staged.entropy)
    np.testing.assert_array_equal(direct.heatmap, staged.heatmap)


def test_chunk_workers_give_the_sequential_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_ROWS", 9)  # row bins of 5 straddle chunks of 3
    data = _vocabulary_logits(41, 6000, seed=13)
    data[20, 3] = np.nan  # a careful row among the workers' chunks
    targets = np.random.default_rng(14).integers(0, 6000, 41)
    runs = {}
    for workers in (1, 3):
        monkeypatch.setattr(batch_module, "WORKERS", workers)
        seen: list[float] = []
        runs[workers] = batch_statistics(
            BatchRequest(data, 0.7, 1, "float32", "cpu", targets, 0.1),
            chunk_rows=3,
            progress=seen.append,
        )
        # Workers report as chunks complete (several may complete between two reports).
        assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2
    one, three = runs[1], runs[3]
    assert three.heatmap_row_bin == 5
    np.testing.assert_array_equal(three.heatmap, one.heatmap)
    np.testing.assert_array_equal(three.entropy, one.entropy)
    np.testing.assert_array_equal(three.cross_entropy, one.cross_entropy)
    ref = _reference(data, 0.7, "float32", targets, 0.1)
    good = np.isfinite(ref["entropy"])
    np.testing.assert_allclose(three.entropy[good], ref["entropy"][good], atol=FUSED_TOL["entropy"])


@pytest.mark.parametrize(
    ("cores", "chunks", "expected"),
    [(1, 50, 1), (2, 50, 2), (3, 50, 3), (4, 50, 4), (16, 50, 4), (16, 2, 2)],
)
def test_default_workers_by_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, chunks: int, expected: int
) -> None:
    """Every usable core (the calling thread is one of the workers), at most
    DEFAULT_MAX_WORKERS (4), never more than chunks."""
    monkeypatch.setattr(batch_module, "_usable_cores", lambda: cores)
    plan = batch_module._plan(BatchRequest(_logits(2000, 2000), device="cpu"), chunk_rows=None)
    assert batch_module._workers(plan, chunks) == expected


@pytest.mark.parametrize(("rows", "device", "expected"), [(511, "cpu", 1), (512, "cpu", 2)])
def test_a_small_batch_stays_on_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch, rows: int, device: str, expected: int
) -> None:
    """Under 2^21 logits (512 rows of 4,096) a batch is a few milliseconds of work."""
    monkeypatch.setattr(batch_module, "_usable_cores", lambda: 2)
    data = np.broadcast_to(np.zeros(1, np.float32), (rows, 4096))  # no memory behind it
    plan = batch_module._plan(BatchRequest(data, device=device), chunk_rows=None)
    assert batch_module._workers(plan, 1000) == expected


class _Runs(list):
    """The first row of each chunk run. A chunk from row ``held_from`` on is held
    back for ``HOLD`` seconds before it runs: the calling thread has stopped the
    workers by then, so what ran after a cancel or an error does not depend on how
    the threads were scheduled (on a loaded machine the others could otherwise
    finish every chunk first). ``running``: chunks started and not yet ended;
    ``threads``: the threads that ran them."""

    held_from: int | None = None
    HOLD = 0.3
    running = 0

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()


@pytest.fixture
def chunk_runs(monkeypatch: pytest.MonkeyPatch) -> _Runs:
    """Three chunk workers even on a small batch; chunk 26 raises."""
    import threading

    monkeypatch.setattr(batch_module, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(batch_module, "WORKERS", 3)
    runs = _Runs()
    lock = threading.Lock()
    never = threading.Event()
    original = batch_module._RowKernel.run

    def run(self, r0: int, r1: int, buffers) -> None:
        with lock:
            runs.append(r0)
            runs.running += 1
            runs.threads.add(threading.current_thread().name)
        try:
            if runs.held_from is not None and r0 >= runs.held_from:
                never.wait(runs.HOLD)
            if r0 == 26:
                raise ValueError("chunk 26 broke")
            original(self, r0, r1, buffers)
        finally:
            with lock:
                runs.running -= 1

    monkeypatch.setattr(batch_module._RowKernel, "run", run)
    return runs


def test_chunk_workers_run_every_chunk_once(chunk_runs: list[int]) -> None:
    data = _logits(25, 500, seed=31)  # rows 0..24: chunk 26 never comes
    result = batch_statistics(BatchRequest(data, 0.8, 1, "float32", "cpu"), chunk_rows=2)
    assert sorted(chunk_runs) == list(range(0, 25, 2))
    _assert_fused_matches(result, _reference(data, 0.8, "float32"), FUSED_TOL)
    assert chunk_runs.running == 0  # no chunk of the call runs after it returned


def test_chunk_workers_stop_on_cancel(chunk_runs: _Runs) -> None:
    chunk_runs.held_from = 6  # only the first three chunks can report before the cancel
    polls: list[int] = []
    started_before: list[int] = []

    def cancelled() -> bool:  # after the third chunk reported
        polls.append(1)
        if len(polls) < 3:
            return False
        started_before.append(len(chunk_runs))
        return True

    with pytest.raises(BatchCancelled):
        batch_statistics(
            BatchRequest(_logits(25, 500), device="cpu"), chunk_rows=2, cancelled=cancelled
        )
    # Once cancelled, a worker may still start the chunk it was taking, no more.
    assert len(chunk_runs) - started_before[0] <= 3
    assert chunk_runs.running == 0  # every worker has stopped


def test_a_chunk_workers_error_reaches_the_caller(chunk_runs: _Runs) -> None:
    chunk_runs.held_from = 28  # chunks after the broken one wait until the workers stop
    with pytest.raises(ValueError, match="chunk 26 broke"):
        batch_statistics(BatchRequest(_logits(60, 500), device="cpu"), chunk_rows=2)
    assert 26 in chunk_runs and len(chunk_runs) < 30
    assert chunk_runs.running == 0


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    c=st.integers(1, 9000),
    chunk_rows=st.integers(1, 13),
    temperature=st.floats(0.02, 50.0),
    eps=st.sampled_from([0.0, 0.1, 1.0]),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    seed=st.integers(0, 2**16),
)
def test_fused_path_matches_the_reference_for_any_shape(
    n: int, c: int, chunk_rows: int, temperature: float, eps: float, scale: float, seed: int
) -> None:
    data = _logits(n, c, seed=seed, scale=scale).astype(np.float32)
    targets = np.random.default_rng(seed + 1).integers(0, c, n)
    result = batch_statistics(
        BatchRequest(data, temperature, 1, "float32", "cpu", targets, eps), chunk_rows=chunk_rows
    )
    _assert_fused_matches(result, _reference(data, temperature, "float32", targets, eps), FUSED_TOL)


def test_kept_facts_go_with_their_batch() -> None:
    data = _logits(3, 9000, seed=15).astype(np.float32)
    data.setflags(write=False)
    batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu"))
    batch_statistics(BatchRequest(data, 1.0, 0, "float32", "cpu"))
    assert set(batch_module._FACTS) == {0, 1}
    del data  # the batch is closed: nothing may keep its binned maxima alive
    assert batch_module._FACTS == {}


# -- a batch kept on the GPU between temperatures ----------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first row of every chunk read out of the batch (from memory or its file)."""
    seen: list[int] = []
    original = batch_module._Kernel._read

    def read(self, r0: int, r1: int, buffers):
        seen.append(r0)
        return original(self, r0, r1, buffers)

    monkeypatch.setattr(batch_module._Kernel, "_read", read)
    return seen


@pytest.fixture
def resident_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU's resident path run on the CPU (the same code, with CPU tensors), with
    torch's kernels (test_gpu_passes.py runs it with the Triton ones)."""
    monkeypatch.setattr(batch_module, "_keeps_resident", lambda device: True)
    monkeypatch.setattr(gpu_passes, "ENABLED", False)
    monkeypatch.setattr(batch_module, "_free_bytes", lambda device: 1 << 40)


def _mapped(tmp_path, data: np.ndarray) -> np.ndarray:
    """``data`` as a read-only memory-mapped float32 file, as a loaded batch is."""
    path = tmp_path / "batch.npy"
    np.save(path, data.astype(np.float32))
    return np.load(path, mmap_mode="r")


def _tolerance(dtype: str) -> dict[str, float]:
    # float64 is computed in float64; only the heatmap is float32 (half an ulp of 1).
    return FUSED_TOL if dtype != "float64" else {**dict.fromkeys(FUSED_TOL, 1e-12), "heatmap": 6e-8}


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_a_resident_batch_is_read_once_and_gives_the_reference(
    tmp_path, resident_on_cpu, reads: list[int], dtype: str
) -> None:
    data = _mapped(tmp_path, _vocabulary_logits(7, 9000, seed=21))
    targets = np.random.default_rng(22).integers(0, 9000, 7)
    cold = batch_statistics(BatchRequest(data, 1.0, 1, dtype, "cpu", targets, 0.1), chunk_rows=3)
    assert reads == [0, 3, 6]
    facts = batch_module._FACTS[1][2]
    # The copy holds the logits as stored in the dtype; the binned maxima sit beside it.
    assert facts.resident.dtype == getattr(torch, dtype)
    assert torch.equal(facts.resident.double(), _stored(np.asarray(data), dtype))
    assert isinstance(facts.col_max, torch.Tensor) and facts.kept_bytes() == 0
    reads.clear()
    warm = batch_statistics(BatchRequest(data, 0.4, 1, dtype, "cpu", targets, 0.1), chunk_rows=3)
    assert reads == []  # a new temperature reads the copy, not the batch
    for result, t in ((cold, 1.0), (warm, 0.4)):
        _assert_fused_matches(
            result, _reference(np.asarray(data), t, dtype, targets, 0.1), _tolerance(dtype)
        )


def test_a_batch_too_big_for_the_device_is_streamed_every_time(
    tmp_path, resident_on_cpu, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _mapped(tmp_path, _vocabulary_logits(5, 9000, seed=23))
    # 5 x 9000 float32 (180,000 bytes) and 5 x 3000 binned maxima (60,000 bytes):
    # more than half of 470,000 free bytes.
    monkeypatch.setattr(batch_module, "_free_bytes", lambda device: 470_000)
    for t in (1.0, 0.4):
        reads.clear()
        result = batch_statistics(BatchRequest(data, t, 1, "float32", "cpu"), chunk_rows=2)
        assert reads == [0, 2, 4]
        _assert_fused_matches(result, _reference(np.asarray(data), t, "float32"), FUSED_TOL)
    facts = batch_module._FACTS[1][2]
    assert facts.resident is None and isinstance(facts.col_max, np.ndarray)
    # With room for it, the same batch is kept.
    batch_module.clear_cache()
    monkeypatch.setattr(batch_module, "_free_bytes", lambda device: 480_000)
    batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu"), chunk_rows=2)
    assert batch_module._FACTS[1][2].resident is not None


def test_a_writable_batch_is_never_kept_resident(resident_on_cpu, reads: list[int]) -> None:
    data = _logits(4, 5000, seed=24)  # may be edited between two calls: nothing is kept
    for t in (1.0, 0.5):
        reads.clear()
        batch_statistics(BatchRequest(data, t, 1, "float32", "cpu"), chunk_rows=2)
        assert reads == [0, 2]
    assert batch_module._FACTS == {}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_cuda_keeps_the_batch_on_the_gpu(tmp_path, reads: list[int], dtype: str) -> None:
    import gc

    data = _mapped(tmp_path, _vocabulary_logits(24, 50_257, seed=25))
    targets = np.random.default_rng(26).integers(0, 50_257, 24)
    targets[-1] = -100
    before = torch.cuda.memory_allocated()
    cold = batch_statistics(BatchRequest(data, 1.0, 1, dtype, "cuda", targets, 0.1))
    assert reads == [0]  # one GPU-sized chunk
    facts = batch_module._FACTS[1][2]
    assert facts.resident.is_cuda and facts.col_max.is_cuda
    assert torch.equal(facts.resident.double().cpu(), _stored(np.asarray(data), dtype))
    reads.clear()
    warm = batch_statistics(BatchRequest(data, 0.4, 1, dtype, "cuda", targets, 0.1))
    assert reads == []
    for result, t in ((cold, 1.0), (warm, 0.4)):
        assert result.device.startswith("cuda")
        ref = _reference(np.asarray(data), t, dtype, targets, 0.1)
        _assert_fused_matches(result, ref, _tolerance(dtype))
    # Closing the batch frees its GPU copy.
    del cold, warm, result, facts, data
    gc.collect()
    assert batch_module._FACTS == {}
    assert torch.cuda.memory_allocated() <= before


@pytest.mark.cuda
def test_cuda_streams_a_batch_that_does_not_fit(
    tmp_path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "RESIDENT_MAX_FRACTION", 0.0)
    data = _mapped(tmp_path, _vocabulary_logits(24, 50_257, seed=27))
    for t in (1.0, 0.4):
        reads.clear()
        result = batch_statistics(BatchRequest(data, t, 1, "float32", "cuda"))
        assert reads == [0]
        _assert_fused_matches(result, _reference(np.asarray(data), t, "float32"), FUSED_TOL)
    assert batch_module._FACTS[1][2].resident is None


# -- the fused dim=0 path -----------------------------------------------------------------


def _reference_columns(
    data: np.ndarray, t: float, dtype: str, targets: np.ndarray, eps: float
) -> dict[str, np.ndarray]:
    """Softmax down the columns (dim=0) and the per-row loss of those probabilities, float64."""
    x = _stored(data, dtype) / t
    p = torch.softmax(x, dim=0)
    logp = torch.log_softmax(x, dim=0)
    entropy = -torch.where(p > 0, p * logp, 0.0).sum(dim=0)
    entropy[torch.isnan(p).any(dim=0)] = torch.nan
    q = F.one_hot(torch.tensor(targets), data.shape[1]).double() * (1.0 - eps) + eps / data.shape[1]
    return {
        "p": p.numpy(),
        "entropy": entropy.numpy(),
        "max_probability": p.amax(dim=0).numpy(),
        "argmax": p.argmax(dim=0).numpy(),
        "row_sums": p.sum(dim=1).numpy(),
        "cross_entropy": (-torch.where(q > 0, q * logp, 0.0).sum(dim=1)).numpy(),
    }


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("temperature", [0.05, 1.0, 3.0])
def test_columns_path_matches_the_float64_reference(
    monkeypatch: pytest.MonkeyPatch, temperature: float, device: str
) -> None:
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_COLS", 64)  # bins of 7 columns
    data = _logits(300, 444, seed=16, scale=4.0).astype(np.float32)
    data[:150, 5] = -np.inf  # half of one column masked
    data[17, 9] = 25.0
    targets = np.random.default_rng(17).integers(0, 444, 300)
    data.setflags(write=False)
    for _ in range(2):  # first view, then with the kept facts
        result = batch_statistics(
            BatchRequest(data, temperature, 0, "float32", device, targets, 0.1),
            chunk_rows=64 if device == "cpu" else None,  # a GPU's chunk: the whole batch
        )
        ref = _reference_columns(data, temperature, "float32", targets, 0.1)
        assert result.heatmap_col_bin == 7
        np.testing.assert_allclose(
            result.heatmap, _max_binned(ref["p"], 1, 7), atol=FUSED_TOL["heatmap"], rtol=0
        )
        np.testing.assert_allclose(result.entropy, ref["entropy"], atol=FUSED_TOL["entropy"])
        np.testing.assert_allclose(
            result.max_probability, ref["max_probability"], atol=FUSED_TOL["probability"]
        )
        np.testing.assert_array_equal(result.argmax, ref["argmax"])
        np.testing.assert_allclose(result.row_sums, ref["row_sums"], rtol=2e-6)
        np.testing.assert_allclose(
            result.cross_entropy, ref["cross_entropy"], atol=FUSED_TOL["cross_entropy"], rtol=1e-6
        )
        assert result.nonfinite_count == 150


def test_a_nan_column_spoils_every_row_sum_like_torch() -> None:
    data = _logits(40, 30, seed=18)
    data[7, 3] = np.nan
    data[:, 8] = -np.inf
    targets = np.random.default_rng(19).integers(0, 30, 40)
    targets[0] = 4
    for eps in (0.0, 0.2):
        result = batch_statistics(
            BatchRequest(data, 0.9, 0, "float32", "cpu", targets, eps), chunk_rows=9
        )
        ref = _reference_columns(data, 0.9, "float32", targets, eps)
        np.testing.assert_array_equal(np.isnan(result.entropy), np.isnan(ref["entropy"]))
        np.testing.assert_array_equal(result.argmax == -1, np.isnan(ref["entropy"]))
        assert np.isnan(result.row_sums).all() and np.isnan(ref["row_sums"]).all()
        np.testing.assert_array_equal(
            np.isnan(result.cross_entropy), np.isnan(ref["cross_entropy"])
        )
        np.testing.assert_array_equal(np.isnan(result.heatmap), np.isnan(ref["p"]))
        good = ~np.isnan(ref["cross_entropy"])
        # Without smoothing only rows whose target is a NaN column lose their loss;
        # with it every row does (its mean of log p covers the NaN columns).
        assert good.any() if eps == 0.0 else not good.any()
        np.testing.assert_allclose(
            result.cross_entropy[good], ref["cross_entropy"][good], atol=FUSED_TOL["cross_entropy"]
        )


def test_kept_facts_follow_the_dim_of_the_same_batch() -> None:
    data = _logits(50, 60, seed=20).astype(np.float32)
    data.setflags(write=False)
    for dim in (1, 0, 1, 0):
        result = batch_statistics(BatchRequest(data, 0.6, dim, "float32", "cpu"), chunk_rows=7)
        p = torch.softmax(torch.tensor(data).double() / 0.6, dim=dim)
        np.testing.assert_allclose(result.heatmap, p.numpy(), atol=FUSED_TOL["heatmap"])
        np.testing.assert_array_equal(result.argmax, p.argmax(dim=dim).numpy())


# -- memory-mapped batches: read with pread, never through the map -----------------------


@pytest.fixture
def pread_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    original = FileRows.read
    monkeypatch.setattr(
        FileRows,
        "read",
        lambda self, r0, r1, out: (calls.append((r0, r1)), original(self, r0, r1, out))[1],
    )
    return calls


@pytest.mark.parametrize("dim", [1, 0])
def test_a_memory_mapped_batch_is_read_with_pread(tmp_path, pread_calls, dim: int) -> None:
    data = _logits(37, 700, seed=21).astype(np.float32)
    data[3, 5] = np.nan
    targets = np.random.default_rng(22).integers(0, 700, 37)
    np.save(tmp_path / "logits.npy", data)
    mapped = np.load(tmp_path / "logits.npy", mmap_mode="r")
    request = BatchRequest(mapped, 0.8, dim, "float32", "cpu", targets, 0.1)
    for _ in range(2):  # first view, then with the kept facts
        result = batch_statistics(request, chunk_rows=5)
        in_memory = batch_statistics(
            BatchRequest(data, 0.8, dim, "float32", "cpu", targets, 0.1), chunk_rows=5
        )
        assert pread_calls and pread_calls[0] == (0, 5)
        np.testing.assert_array_equal(result.heatmap, in_memory.heatmap)
        np.testing.assert_array_equal(result.entropy, in_memory.entropy)
        np.testing.assert_array_equal(result.cross_entropy, in_memory.cross_entropy)
        pread_calls.clear()


def test_rows_of_a_mapped_view_are_read_at_their_offset(tmp_path, pread_calls) -> None:
    # A safetensors-like layout: a header, then a flat tensor mapped at an offset and
    # reshaped; the batch handed over is a view that starts a few rows in.
    data = _logits(20, 33, seed=23).astype(np.float32)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"H" * 24 + data.tobytes())
    flat = np.memmap(path, dtype=np.float32, mode="r", offset=24, shape=(data.size,))
    view = flat.reshape(data.shape)[4:]
    result = batch_statistics(BatchRequest(view, 1.3, 1, "float32", "cpu"), chunk_rows=6)
    assert pread_calls
    ref = _reference(data[4:], 1.3, "float32")
    np.testing.assert_allclose(result.heatmap, ref["p"], atol=FUSED_TOL["heatmap"])
    np.testing.assert_allclose(result.entropy, ref["entropy"], atol=FUSED_TOL["entropy"])


def test_a_file_replaced_since_it_was_mapped_is_read_through_the_map(tmp_path, pread_calls) -> None:
    data = _logits(10, 50, seed=24).astype(np.float32)
    np.save(tmp_path / "logits.npy", data)
    mapped = np.load(tmp_path / "logits.npy", mmap_mode="r")
    np.save(tmp_path / "other.npy", data[::-1] * 2)
    os.replace(tmp_path / "other.npy", tmp_path / "logits.npy")  # same path, new file
    result = batch_statistics(BatchRequest(mapped, 1.0, 1, "float32", "cpu"), chunk_rows=3)
    assert pread_calls == []  # the path now names another file: never read it
    ref = _reference(data, 1.0, "float32")
    np.testing.assert_allclose(result.heatmap, ref["p"], atol=FUSED_TOL["heatmap"])


@pytest.mark.parametrize("dim", [1, 0])
def test_progress_of_many_chunks_comes_in_steps_of_a_percent(dim: int) -> None:
    seen: list[float] = []
    batch_statistics(
        BatchRequest(_logits(3000, 3), dim=dim, device="cpu"), chunk_rows=1, progress=seen.append
    )
    # 3,000 (dim=1) or 9,000 (dim=0: three passes) chunks, reported at most every 1%.
    assert 50 <= len(seen) <= 102
    assert seen == sorted(seen) and seen[-1] == 1.0
    steps = [b - a for a, b in zip(seen, seen[1:], strict=False) if b < 1.0]
    assert steps and min(steps) >= 0.01 - 1e-12  # 1.0 itself is always reported


# -- temperatures and logits at the ends of the range ------------------------------------


@pytest.mark.parametrize("dim", [1, 0])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_temperature_beyond_float32_is_uniform_over_the_finite_logits(
    dtype: str, dim: int
) -> None:
    # 1/T = 1e-100 is 0 in float32: (-inf) * 0 would be NaN. The limit is uniform over
    # the finite logits, -inf staying at probability 0 (float64 torch agrees).
    data = np.array([[0.0, -np.inf, 3.0], [1.0, 2.0, 5.0]])
    result = batch_statistics(BatchRequest(data, 1e100, dim, dtype, "cpu"))
    p = torch.softmax(_stored(data, dtype) / 1e100, dim=dim).numpy()
    assert not np.isnan(p).any()
    np.testing.assert_allclose(result.heatmap, p, atol=1e-6)
    entropy = -torch.where(torch.tensor(p) > 0, torch.tensor(p) * torch.tensor(p).log(), 0.0)
    np.testing.assert_allclose(result.entropy, entropy.sum(dim=dim).numpy(), atol=1e-6)


@pytest.mark.parametrize("dim", [1, 0])
def test_label_smoothing_with_huge_equal_logits(dim: int) -> None:
    # Six logits of -1e18: mean(x) - max(x) cancels catastrophically in float32.
    data = np.full((2, 6), -1e18)
    targets = np.array([2, 5])
    result = batch_statistics(BatchRequest(data, 1.0, dim, "float32", "cpu", targets, 0.1))
    if dim == 1:
        expected = _reference(data, 1.0, "float32", targets, 0.1)["cross_entropy"]
        np.testing.assert_allclose(expected, math.log(6), rtol=1e-12)
    else:
        expected = _reference_columns(data, 1.0, "float32", targets, 0.1)["cross_entropy"]
    np.testing.assert_allclose(result.cross_entropy, expected, rtol=1e-6)


def test_the_loss_of_a_target_whose_probability_underflows_at_tiny_t_is_infinite() -> None:
    # T = 1e-310: the target's probability is exactly 0 (torch's log_softmax in float16
    # gives -inf there, so the loss is inf), not a huge finite number. The compute
    # core's cross_entropy (one vector at a time) is the reference.
    from softmax_lab.compute.losses import cross_entropy

    data = np.array([[6.176, -36.72], [1.0, 2.0]])
    targets = np.array([1, 1])
    result = batch_statistics(BatchRequest(data, 1e-310, 1, "float16", "cpu", targets))
    expected = cross_entropy(data, targets, temperature=1e-310, dtype="float16", device="cpu")
    np.testing.assert_array_equal(expected.per_row, [np.inf, 0.0])
    np.testing.assert_array_equal(result.cross_entropy, expected.per_row)


def test_tiny_differences_at_a_tinier_temperature_still_decide() -> None:
    # 1e-40 (subnormal) against 0 at T = 1.5e-65: (x - max) / T is -6.8e24, far beyond any
    # clamped 1/T: the row is [0, 0, 0.5, 0, 0, 0.5], as float64 torch gives.
    data = np.array([[0.0, 0.0, 1e-40, 0.0, 0.0, 1e-40]], dtype=np.float32)
    result = batch_statistics(BatchRequest(data, 1.4682485263973652e-65, 1, "float32", "cpu"))
    np.testing.assert_array_equal(result.heatmap, [[0, 0, 0.5, 0, 0, 0.5]])
    assert result.entropy[0] == pytest.approx(math.log(2), abs=1e-6)


def test_a_temperature_near_float64_max() -> None:
    # T = 1.7e308: x / T is 0 for 1e38 and 4.57 alike: uniform (float64 torch agrees).
    data = np.array([[1e38, 4.5698266], [0.0, 0.0]], dtype=np.float32)
    result = batch_statistics(BatchRequest(data, 1.7080916200964492e308, 1, "bfloat16", "cpu"))
    np.testing.assert_allclose(result.heatmap, 0.5, atol=1e-6)


@pytest.mark.parametrize(
    ("row", "temperature", "dtype", "target"),
    [
        ([-3.367, 2.0, 1e4], 1e-3, "float16", 0),  # log p of two classes beyond float16
        ([3.8316364e-12, 0.0], 1e-310, "float64", 1),  # 1/T overflows float64, x / T does not
    ],
)
def test_fully_smoothed_loss_at_the_ends_of_the_range(
    row: list[float], temperature: float, dtype: str, target: int
) -> None:
    from softmax_lab.compute.losses import cross_entropy

    data, targets = np.array([row]), np.array([target])
    result = batch_statistics(BatchRequest(data, temperature, 1, dtype, "cpu", targets, 1.0))
    expected = cross_entropy(
        data, targets, temperature=temperature, label_smoothing=1.0, dtype=dtype, device="cpu"
    )
    np.testing.assert_allclose(result.cross_entropy, expected.per_row, rtol=1e-12)


def test_helper_threads_are_kept_between_batches(chunk_runs: _Runs) -> None:
    """Starting threads for every new temperature cost 0.9 ms of 5 (chunk_threads.py):
    the helpers of one batch serve the next, and the calling thread works too."""
    import threading

    from softmax_lab.compute.chunk_threads import THREAD_NAME, helpers

    chunk_runs.held_from, chunk_runs.HOLD = 0, 0.02  # no thread can take every chunk
    data = _logits(25, 500, seed=5)
    request = BatchRequest(data, 0.8, 1, "float32", "cpu")
    batch_statistics(request, chunk_rows=1)
    kept = helpers().threads()
    for _ in range(5):
        chunk_runs.threads.clear()
        result = batch_statistics(request, chunk_rows=1)
        assert helpers().threads() == kept  # no thread started
        assert threading.current_thread().name in chunk_runs.threads
        assert all(
            name == threading.current_thread().name or name.startswith(THREAD_NAME)
            for name in chunk_runs.threads
        )
    assert helpers().busy() == 0
    _assert_fused_matches(result, _reference(data, 0.8, "float32"), FUSED_TOL)


@pytest.mark.parametrize("max_rows", [2048, 64])
def test_dim0_on_several_workers_gives_the_bits_of_one(
    monkeypatch: pytest.MonkeyPatch, max_rows: int
) -> None:
    """dim=0's compiled passes split S and W by columns and the cells by rows: the same
    additions in the same order as on one thread. With 64 heatmap rows, 300 batch rows
    are binned 5 to a heatmap row, and some of those bins straddle two workers' 7-row
    chunks."""
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_ROWS", max_rows)
    monkeypatch.setattr(batch_module, "PARALLEL_MIN_ELEMENTS", 0)
    spread: list[int] = []
    real = batch_module.run_spans

    def counted(run, spans, workers, *args):
        spread.append(workers)
        return real(run, spans, workers, *args)

    monkeypatch.setattr(batch_module, "run_spans", counted)
    data = _logits(300, 5000, seed=23).astype(np.float32)
    data[:, 17] -= 300.0  # a column far below: its 2^s sink to the floor
    data.setflags(write=False)  # read-only: the facts are kept, then rows read in place
    targets = np.random.default_rng(24).integers(0, 5000, 300)
    results = {}
    for workers in (1, 3):
        monkeypatch.setattr(batch_module, "WORKERS", workers)
        batch_module.clear_cache()
        results[workers] = [
            batch_statistics(
                BatchRequest(data, t, 0, "float32", "cpu", targets, 0.1), chunk_rows=7
            )
            for t in (0.7, 1.3)  # the first view, then a new temperature
        ]
    compiled = batch_module.FUSED_KERNEL and batch_module._fused is not None
    # the first view's cells; then S and W, and the cells (torch's kernels: one thread)
    assert spread.count(3) == (3 if compiled else 0)
    batch_module.clear_cache()  # T = 1.3 as a first view: S and W chunk by chunk
    first = batch_statistics(
        BatchRequest(data, 1.3, 0, "float32", "cpu", targets, 0.1), chunk_rows=7
    )
    for one, three in [*zip(results[1], results[3], strict=True), (first, results[3][1])]:
        for field in ("entropy", "max_probability", "argmax", "row_sums", "heatmap"):
            np.testing.assert_array_equal(getattr(three, field), getattr(one, field))
        np.testing.assert_array_equal(three.cross_entropy, one.cross_entropy)
    ref = _reference_columns(data, 1.3, "float32", targets, 0.1)
    np.testing.assert_allclose(results[3][1].entropy, ref["entropy"], atol=FUSED_TOL["entropy"])
    np.testing.assert_allclose(results[3][1].row_sums, ref["row_sums"], rtol=2e-6)


def test_a_helper_that_cannot_start_leaves_the_call_raising_not_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread that fails to start (no threads left) must not be waited for."""
    import threading

    from softmax_lab.compute import chunk_threads

    monkeypatch.setattr(chunk_threads, "_HELPERS", chunk_threads._Helpers())
    monkeypatch.setattr(batch_module, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(batch_module, "WORKERS", 2)

    def refuse(self) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        batch_statistics(BatchRequest(_logits(20, 500), device="cpu"), chunk_rows=2)
    assert chunk_threads.helpers().threads() == 0
