"""compute/_fused.c, the compiled float32 row pass, against float64 numpy.

The whole path (entropy, loss, heatmap from these sums) is held to torch's float64
softmax by test_batch.py, which runs every test with and without this kernel. Here
the kernel's own arithmetic is checked where a mistake would hide in those tolerances:
each exp2, the vector body and the scalar tail of a row, and the arguments it refuses.
"""

from __future__ import annotations

import shlex
import shutil
import sysconfig
import threading

import numpy as np
import pytest

from softmax_lab.compute import batch as batch_module
from softmax_lab.compute.batch import BatchRequest, batch_statistics

fused = batch_module._fused
LOG2_E = 1.0 / np.log(2.0)
TINY = float(np.finfo(np.float32).tiny)


def _compiler() -> str | None:
    cc = sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(cc)[0])


def test_the_kernel_is_built_wherever_a_c_compiler_is() -> None:
    # CI and `make test` have gcc: a broken build must not pass as "no compiler".
    if _compiler() is None:
        assert fused is None
    else:
        assert fused is not None, "setup.py did not build compute/_fused.c (see the pip log)"


needs_kernel = pytest.mark.skipif(fused is None, reason="compute/_fused.c not built here")


def _sums(x: np.ndarray, m: np.ndarray, k: float, lo: float = -126.0, clamp: bool = True):
    total = np.empty(x.shape[0], np.float32)
    weighted = np.empty(x.shape[0], np.float32)
    fused.row_sums(x, m, k, lo, clamp, total, weighted)
    return total.astype(np.float64), weighted.astype(np.float64)


def _s(x: np.ndarray, m: np.ndarray, k: float) -> np.ndarray:
    """s as the kernel (and torch's path) rounds it: (x - m) in float32, then * k."""
    return ((x - m[:, None]).astype(np.float32) * np.float32(k)).astype(np.float64)


@needs_kernel
@pytest.mark.parametrize("lanes", [8, 1])  # a full vector, and the scalar tail alone
def test_each_exponential_is_within_two_and_a_half_ulp_of_exp2(lanes: int) -> None:
    # One finite logit per row, the rest -inf (clamped to 2^-125, nothing next to 2^s):
    # the row's sum is then that logit's 2^s alone.
    s = np.linspace(-90.0, 0.0, 40_001, dtype=np.float32)
    x = np.full((s.size, lanes), -np.inf, np.float32)
    x[np.arange(s.size), np.arange(s.size) % lanes] = s
    total, weighted = _sums(x, np.zeros(s.size, np.float32), 1.0)
    exact = np.exp2(s.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    # The polynomial's own bound is 2.02 ulp with FMAs, 2.23 without (the baseline
    # x86-64 build), both measured on 2 million f in [-1/2, 1/2] when it was fitted.
    assert np.max(np.abs(total - exact) / ulp) <= 2.5
    np.testing.assert_allclose(weighted, exact * s, rtol=3e-7, atol=1e-33)  # 7 x 2^-125 x -125


@needs_kernel
@pytest.mark.parametrize("c", [1, 7, 8, 9, 127, 128, 129, 1000, 50_257, 262_144])
def test_row_sums_match_float64_at_every_row_length(c: int) -> None:
    rng = np.random.default_rng(c)
    x = (rng.standard_normal((3, c)) * 4).astype(np.float32)
    x[:, rng.integers(0, c, max(1, c // 500))] += 9.0
    m = x.max(axis=1)
    for t in (0.25, 1.0, 4.0):
        k = LOG2_E / t
        total, weighted = _sums(x, m, k)
        s = _s(x, m, k)
        e = np.exp2(s)
        np.testing.assert_allclose(total, e.sum(axis=1), rtol=3e-7, atol=0)
        np.testing.assert_allclose(weighted, (e * s).sum(axis=1), rtol=3e-7, atol=1e-30)


@needs_kernel
def test_rows_are_read_where_they_lie_in_a_strided_batch() -> None:
    # A slice of wider rows (the row stride is not C) and rows that start unaligned.
    base = np.random.default_rng(1).standard_normal((6, 1003)).astype(np.float32)
    x = base[1:5, 3:1000]
    m = x.max(axis=1)
    total, weighted = _sums(x, m, LOG2_E)
    contiguous = _sums(np.ascontiguousarray(x), m, LOG2_E)
    np.testing.assert_array_equal(total, contiguous[0])
    np.testing.assert_array_equal(weighted, contiguous[1])


@needs_kernel
def test_the_clamp_floor_is_never_below_2_to_the_minus_125() -> None:
    # s far below the floor: each term counts as 2^-125 (a normal number), never as
    # the garbage an exponent below -126 would put into the float's bits.
    x = np.array([[0.0] + [-1e30] * 20], np.float32)
    total, weighted = _sums(x, np.zeros(1, np.float32), 1.0, lo=-1000.0)
    assert total[0] == pytest.approx(1.0 + 20 * 2.0**-125, rel=1e-7)
    assert weighted[0] == pytest.approx(20 * -125.0 * 2.0**-125, rel=1e-6)
    assert np.isfinite(total).all() and np.isfinite(weighted).all()


@needs_kernel
@pytest.mark.parametrize("nb", [1, 8, 13, 3866])
def test_cells_match_float64(nb: int) -> None:
    rng = np.random.default_rng(nb)
    col_max = (rng.standard_normal((4, nb)) * 30).astype(np.float32)
    col_max[:, 0] = -1e30  # below the floor: 0
    m = np.maximum(col_max.max(axis=1), 0).astype(np.float32) + np.float32(1.0)
    total = np.array([1.0, 1.5, 3.0, 1e5], np.float32)
    k = LOG2_E / 0.5
    out = np.full((4, nb), np.nan, np.float32)
    fused.cells(col_max, m, k, total, TINY, out)
    s = _s(col_max, m, k)
    expected = np.exp2(s) / total[:, None].astype(np.float64)
    expected[(expected <= TINY) | (s < -125)] = 0.0
    np.testing.assert_allclose(out, expected, rtol=4e-7, atol=0)
    assert (out[:, 0] == 0).all()


@needs_kernel
@pytest.mark.parametrize("c", [1, 7, 8, 9, 1000, 50_257])
def test_column_sums_match_float64(c: int) -> None:
    # dim=0: each column a distribution over 70 rows (more than one block of 32).
    rng = np.random.default_rng(c + 1)
    x = (rng.standard_normal((70, c)) * 4).astype(np.float32)
    x[3, : c // 2] = -np.inf  # masked entries: clamped, they count as 2^-125
    m = x.max(axis=0)
    k = LOG2_E / 0.6
    total, weighted = np.full(c, 0.5), np.full(c, -0.25)  # added to, not overwritten
    fused.column_sums(x, m, k, -126.0, total, weighted)
    s = np.maximum(((x - m).astype(np.float32) * np.float32(k)).astype(np.float64), -125.0)
    e = np.exp2(s)
    # Each column's float32 partial sum spans 32 rows before it goes to float64 (the
    # rows' sums span 16 lanes' terms): 3.6e-7 was the worst of 50,257 columns.
    np.testing.assert_allclose(total, 0.5 + e.sum(axis=0), rtol=5e-7, atol=0)
    np.testing.assert_allclose(weighted, -0.25 + (e * s).sum(axis=0), rtol=5e-7, atol=0)


@needs_kernel
def test_column_sums_in_one_call_add_each_block_as_a_call_per_block_does() -> None:
    # batch.py's workers split the columns and pass its chunk rows as the block: every
    # column must then be added exactly as by one call per chunk over every column.
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((47, 333)) * 5).astype(np.float32)
    m = x.max(axis=0)
    k = LOG2_E / 0.8
    per_chunk = np.zeros(333), np.zeros(333)
    for r0 in range(0, 47, 10):
        fused.column_sums(x[r0 : r0 + 10], m, k, -126.0, *per_chunk)
    spans = np.zeros(333), np.zeros(333)
    for c0, c1 in ((0, 64), (64, 200), (200, 333)):
        fused.column_sums(x[:, c0:c1], m[c0:c1], k, -126.0, spans[0][c0:c1], spans[1][c0:c1], 10)
    np.testing.assert_array_equal(spans[0], per_chunk[0])
    np.testing.assert_array_equal(spans[1], per_chunk[1])
    whole = np.zeros(333), np.zeros(333)  # 32-row blocks: not the same additions
    fused.column_sums(x, m, k, -126.0, *whole)
    assert not np.array_equal(whole[0], per_chunk[0])
    np.testing.assert_allclose(whole[0], per_chunk[0], rtol=5e-7)
    with pytest.raises(ValueError, match="block"):
        fused.column_sums(x, m, k, -126.0, *whole, 0)


def _pooled(p: np.ndarray, cb: int) -> np.ndarray:
    """torch's max pooling of float64 probabilities, then 0 at or below tiny."""
    import torch
    import torch.nn.functional as F

    pooled = F.max_pool1d(torch.from_numpy(p)[:, None, :], cb, cb, ceil_mode=True)[:, 0, :]
    return F.threshold(pooled, TINY, 0.0).numpy()


@needs_kernel
@pytest.mark.parametrize("cb", [1, 3, 7, 8, 9, 13, 16, 17, 40])
def test_column_cells_are_the_max_pooled_probabilities(cb: int) -> None:
    # dim=0: p = 2^s / S_column, each row's sum, and the max of each run of cb columns
    # (the last run shorter), against float64 and torch's max_pool1d.
    rng = np.random.default_rng(cb)
    c = 1001
    x = (rng.standard_normal((6, c)) * 20).astype(np.float32)
    x[2, :] = -200.0  # 2^s below 2^-125, and probabilities at most tiny: shown as 0
    m = x.max(axis=0)
    k = LOG2_E / 0.3
    inv = (1.0 / rng.uniform(1.0, 4.0, c)).astype(np.float32)
    out = np.full((6, -(-c // cb)), -1.0, np.float32)
    row_sums = np.zeros(6)
    fused.column_cells(x, m, k, inv, cb, TINY, out, row_sums)
    s = ((x - m).astype(np.float32) * np.float32(k)).astype(np.float64)
    p = np.where(s < -125, 0.0, np.exp2(s)) * inv.astype(np.float64)
    np.testing.assert_allclose(out, _pooled(p, cb), rtol=4e-7, atol=0)
    np.testing.assert_allclose(row_sums, p.sum(axis=1), rtol=3e-7, atol=0)
    assert (out[2] == 0).all() and row_sums[2] == 0


@needs_kernel
def test_a_nan_column_makes_its_cell_and_every_row_sum_nan() -> None:
    # A column whose softmax is NaN has inv NaN: each row holds a NaN probability there.
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((5, 300)) * 3).astype(np.float32)
    inv = np.full(300, 0.5, np.float32)
    inv[7] = np.nan
    out = np.zeros((5, 30), np.float32)  # bins of 10 columns: column 7 is in bin 0
    row_sums = np.zeros(5)
    fused.column_cells(x, x.max(axis=0), LOG2_E, inv, 10, TINY, out, row_sums)
    assert np.isnan(out[:, 0]).all() and not np.isnan(out[:, 1:]).any()
    assert np.isnan(row_sums).all()


@needs_kernel
@pytest.mark.parametrize(
    ("out_shape", "sums", "cb", "match"),
    [((5, 31), 5, 10, "ceil"), ((4, 30), 5, 10, "ceil"), ((5, 30), 4, 10, "one per row"),
     ((5, 30), 5, 0, "cb")],
)
def test_column_cells_refuses_shapes_that_do_not_fit(out_shape, sums, cb, match) -> None:
    x = np.zeros((5, 300), np.float32)
    with pytest.raises(ValueError, match=match):
        fused.column_cells(x, np.zeros(300, np.float32), 1.0, np.ones(300, np.float32), cb,
                           TINY, np.zeros(out_shape, np.float32), np.zeros(sums))


@needs_kernel
def test_results_do_not_depend_on_other_threads() -> None:
    # The kernel runs on several workers at once with the interpreter lock released.
    x = np.random.default_rng(2).standard_normal((64, 20_000)).astype(np.float32)
    m = x.max(axis=1)
    alone = _sums(x, m, LOG2_E)
    outs = [(np.empty(64, np.float32), np.empty(64, np.float32)) for _ in range(4)]

    def work(i: int) -> None:
        for _ in range(20):
            fused.row_sums(x, m, LOG2_E, -126.0, False, *outs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for total, weighted in outs:
        np.testing.assert_array_equal(total, alone[0])
        np.testing.assert_array_equal(weighted, alone[1])


@needs_kernel
@pytest.mark.parametrize(
    ("x", "m", "out", "match"),
    [
        (np.zeros((2, 8)), np.zeros(2, np.float32), np.zeros(2, np.float32), "float32"),
        (np.zeros((8, 2), np.float32).T, np.zeros(2, np.float32), np.zeros(2, np.float32),
         "contiguous"),
        (np.zeros(8, np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32), "2-D"),
        (np.zeros((2, 8), np.float32), np.zeros(3, np.float32), np.zeros(2, np.float32),
         "one entry per row"),
        (np.zeros((2, 8), ">f4"), np.zeros(2, np.float32), np.zeros(2, np.float32), "float32"),
    ],
)
def test_arguments_it_cannot_read_are_refused(x, m, out, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fused.row_sums(x, m, 1.0, -126.0, True, out, out.copy())


@needs_kernel
def test_read_only_outputs_are_refused() -> None:
    out = np.zeros(2, np.float32)
    out.setflags(write=False)
    with pytest.raises((BufferError, ValueError, TypeError)):
        fused.row_sums(np.zeros((2, 8), np.float32), np.zeros(2, np.float32), 1.0, -126.0,
                       True, out, np.zeros(2, np.float32))


# -- the first view's facts ---------------------------------------------------------------


def _learn(x: np.ndarray, cb: int | None):
    rows = x.shape[0]
    out = [np.full(rows, np.nan), np.full(rows, -7, np.int64), np.full(rows, np.nan),
           np.full(rows, np.nan), np.full(rows, -7, np.int64)]  # fmt: skip
    col_max = None if cb is None else np.full((rows, -(-x.shape[1] // cb)), np.nan, np.float32)
    fused.learn_rows(x, *out, cb or 1, col_max)
    return (*out, col_max)


@needs_kernel
@pytest.mark.parametrize("c", [1, 2, 7, 8, 9, 15, 16, 127, 128, 129, 300, 50_257])
def test_learn_rows_match_numpy_and_torch(c: int) -> None:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(c)
    x = (rng.standard_normal((8, c)) * 3.0).astype(np.float32)
    x[1, c // 2] = 60.0  # one strong logit
    x[2] = 4.0  # all tied: the first index
    x[3, c - 1] = x[3].max() + 1.0  # the max in the scalar tail
    if c >= 3:
        x[4, [c // 3, 2 * c // 3]] = 50.0  # tied in two lanes: the first of them
    x[5] = -3e38  # x - max is 0 everywhere: a sum of zeros
    x[6, 0] = 3e38  # x - max overflows to -inf for the rest
    cb = 3 if c < 300 else -(-c // 4096)
    row_max, argmax, shifted_sum, shifted_min, nonfinite, col_max = _learn(x, cb)
    shifted = torch.from_numpy(x) - torch.from_numpy(x.max(axis=1))[:, None]  # as torch rounds
    np.testing.assert_array_equal(argmax, np.argmax(x, axis=1))
    np.testing.assert_array_equal(row_max, x.max(axis=1).astype(np.float64))
    np.testing.assert_array_equal(shifted_min, shifted.amin(dim=1).double().numpy())
    want = shifted.double().sum(dim=1).numpy()
    # Row 6's 128 float32 terms of -3e38 in a block leave float32's range: -inf, which
    # batch.py recomputes in float64 (below a block, vectors are added in float64).
    if c >= 128:
        assert shifted_sum[6] == -np.inf
        shifted_sum[6] = want[6]
    np.testing.assert_allclose(shifted_sum, want, rtol=1e-6, atol=1e-6 * c)
    np.testing.assert_array_equal(nonfinite, 0)
    pooled = F.max_pool1d(torch.from_numpy(x)[:, None], cb, cb, ceil_mode=True)[:, 0]
    np.testing.assert_array_equal(col_max, pooled.numpy())


@needs_kernel
@pytest.mark.parametrize(
    ("c", "cb"),
    # runs shorter than a vector; of 8 to 16 (two loads); longer; 8 runs at a time with
    # a shorter last run; c a multiple of 8 runs; a vocabulary of bins of 13
    [(50, 3), (97, 8), (300, 13), (129, 16), (1000, 17), (1024, 64), (50_257, 13)],
)
def test_learn_rows_bins_are_max_pooling(c: int, cb: int) -> None:
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(c + cb)
    x = (rng.standard_normal((6, c)) * 3.0).astype(np.float32)
    x[1, rng.integers(0, c, 5)] = np.nan  # a NaN wins its run, wherever it lies
    x[2, : c // 2] = -np.inf
    x[3] = -np.inf
    x[4, c - 1] = 90.0  # the last, shorter run
    col_max = _learn(x, cb)[5]
    pooled = F.max_pool1d(torch.from_numpy(x)[:, None], cb, cb, ceil_mode=True)[:, 0]
    np.testing.assert_array_equal(col_max, pooled.numpy())


@needs_kernel
@pytest.mark.parametrize("c", [5, 8, 23, 1000])
def test_learn_rows_counts_what_is_not_finite(c: int) -> None:
    x = np.zeros((5, c), np.float32)
    x[0, c - 1] = np.nan  # in the tail (c = 5, 23) or the last vector
    x[1, :2] = np.inf
    x[2, 0] = -np.inf
    x[3] = -np.inf
    nonfinite = _learn(x, None)[4]
    np.testing.assert_array_equal(nonfinite, [1, 2, 1, c, 0])


@needs_kernel
def test_learn_rows_refuses_what_does_not_fit() -> None:
    x = np.zeros((2, 10), np.float32)
    good = [np.zeros(2), np.zeros(2, np.int64), np.zeros(2), np.zeros(2), np.zeros(2, np.int64)]
    with pytest.raises(ValueError, match="int64"):
        fused.learn_rows(x, good[0], np.zeros(2), *good[2:], 1, None)
    with pytest.raises(ValueError, match="ceil"):
        fused.learn_rows(x, *good, 3, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="at least 1"):
        fused.learn_rows(x, *good, 0, np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="one entry per row"):
        fused.learn_rows(x, np.zeros(3), *good[1:], 1, None)


# -- which batches take it -------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the kernel's functions as batch.py calls them."""
    seen: list[str] = []

    class Spy:
        def __getattr__(self, name: str):
            def call(*args):
                seen.append(name)
                return getattr(fused, name)(*args)

            return call

    monkeypatch.setattr(batch_module, "_fused", Spy())
    batch_module.clear_cache()
    yield seen
    batch_module.clear_cache()


@needs_kernel
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_wide_float32_batch_takes_the_compiled_pass(calls: list[str], dtype: str) -> None:
    data = np.random.default_rng(3).standard_normal((5, 9000)).astype(np.float32)
    data.setflags(write=False)
    for t in (1.0, 0.5):  # the first view, then a new temperature over kept facts
        calls.clear()
        batch_statistics(BatchRequest(data, t, 1, dtype, "cpu"))
        assert calls.count("row_sums") >= 1 and calls.count("cells") >= 1
        calls.clear()
        batch_statistics(BatchRequest(data, t, 0, dtype, "cpu"))  # down the columns
        assert {"column_sums", "column_cells"} <= set(calls)


@needs_kernel
@pytest.mark.parametrize(
    ("shape", "dtype", "temperature", "dim", "why"),
    [
        ((5, 9000), "float64", 1.0, 1, "float64 is computed in float64"),
        ((5, 9000), "float64", 1.0, 0, "float64 is computed in float64"),
        ((5, 300), "float32", 1.0, 1, "every column its own heatmap cell: p is needed"),
        ((5, 9000), "float32", 1e-300, 1, "1/T beyond float32: s is computed in float64"),
        ((5, 9000), "float32", 1e-300, 0, "1/T beyond float32: s is computed in float64"),
    ],
)
def test_other_batches_take_torchs_kernels(
    calls: list[str], shape: tuple[int, int], dtype: str, temperature: float, dim: int, why: str
) -> None:
    data = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    batch_statistics(BatchRequest(data, temperature, dim, dtype, "cpu"))
    assert calls == [], why


@needs_kernel
@pytest.mark.parametrize("source", ["in memory", "memory-mapped"])
def test_the_compiled_first_view_learns_what_torchs_kernels_learn(
    tmp_path, calls: list[str], monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    # Ordinary rows and every kind the compiled pass hands back to torch's kernels.
    rng = np.random.default_rng(5)
    data = (rng.standard_normal((12, 9000)) * 3.0).astype(np.float32)
    data[1, 17] = np.nan
    data[2, 40] = np.inf
    data[3] = -np.inf
    data[4, :100] = -np.inf  # masked classes
    data[5] = -3e38
    data[5, 3] = 3e38  # finite logits whose shifted sum leaves float32
    data[6] = 2.0  # all tied
    if source == "memory-mapped":
        np.save(tmp_path / "b.npy", data)
        data = np.load(tmp_path / "b.npy", mmap_mode="r")
    else:
        data.setflags(write=False)
    facts = {}
    for compiled in (True, False):
        monkeypatch.setattr(batch_module, "FUSED_KERNEL", compiled)
        batch_module.clear_cache()
        calls.clear()
        batch_statistics(BatchRequest(data, 1.0, 1, "float32", "cpu"), chunk_rows=5)
        assert ("learn_rows" in calls) == compiled
        facts[compiled] = batch_module._FACTS[1][2]
    ours, theirs = facts[True], facts[False]
    for name in ("row_max", "argmax", "shifted_min", "nonfinite", "col_max"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
    # Torch sums each row's float32 terms in another order; the overflowing row is
    # summed in float64 on both paths.
    np.testing.assert_allclose(ours.shifted_sum, theirs.shifted_sum, rtol=1e-6)
    assert np.isfinite(ours.shifted_sum[5]) and ours.shifted_sum[5] < -1e42
