"""Batch statistics, checked against torch's own functions in float64 on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_lab.compute import batch as batch_module
from softmax_lab.compute.batch import (
    BatchCancelled,
    BatchRequest,
    batch_statistics,
)
from softmax_lab.compute.dtypes import dtype_info
from softmax_lab.compute.errors import ComputeMemoryError, InvalidInputError

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


@pytest.mark.parametrize("dim", [1, 0])
def test_heatmap_bins_keep_a_planted_peak(monkeypatch: pytest.MonkeyPatch, dim: int) -> None:
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_ROWS", 8)
    monkeypatch.setattr(batch_module, "HEATMAP_MAX_COLS", 16)
    n, c = 50, 70  # bins of 7 rows x 5 classes; the last bins are partial
    data = _logits(n, c, seed=10, scale=0.5)
    data[23, 41] = 40.0  # dominates its row and its column
    # Chunks of 4 rows: row bins of 7 straddle chunk boundaries.
    result = batch_statistics(
        BatchRequest(data, dim=dim, dtype="float64", device="cpu"), chunk_rows=4
    )
    assert (result.heatmap_row_bin, result.heatmap_col_bin) == (7, 5)
    assert result.heatmap.shape == (8, 14)
    p = torch.softmax(torch.tensor(data), dim=dim).numpy()
    np.testing.assert_allclose(result.heatmap, _max_binned(p, 7, 5), atol=1e-7, rtol=0)
    assert result.heatmap[23 // 7, 41 // 5] == pytest.approx(1.0, abs=1e-7)
    assert np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape) == (3, 8)
    # A mean over the bin would have diluted the peak to about 1/35.
    assert result.heatmap[3, 8] > 0.99


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


def test_out_of_memory_becomes_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*args: object, **kwargs: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(torch, "log_softmax", exhausted)
    with pytest.raises(ComputeMemoryError, match=r"out of memory on cpu .* 4 x 3 batch"):
        batch_statistics(BatchRequest(_logits(4, 3), device="cpu"))


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
