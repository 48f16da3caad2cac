"""The Triton kernels of compute/gpu_passes.py against float64 and torch's own kernels.

On a machine with a CUDA GPU they run there, compiled; elsewhere in Triton's
interpreter (``TRITON_INTERPRET=1``, numpy on the CPU), which checks what each
kernel computes, masks and indexing included, though not its speed. Where Triton
is not installed at all (it has wheels for x86-64 Linux only) the module is skipped.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

from softmax_lab.compute import batch as batch_module
from softmax_lab.compute import gpu_passes
from softmax_lab.compute.batch import BatchRequest, batch_statistics
from tests.compute.test_batch import (
    FUSED_TOL,
    _assert_fused_matches,
    _mapped,
    _reference,
    _vocabulary_logits,
)

# The interpreter runs the kernels' IEEE arithmetic (inf - inf for an all -inf row,
# log 0) in numpy, which warns where the compiled kernel silently gives NaN or -inf.
pytestmark = [
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
if not ON_GPU and "triton" not in sys.modules:
    # Set before Triton is imported: its own language functions (tl.sum, tl.max) are
    # defined for the interpreter or for the compiler at that moment.
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton", reason="Triton has wheels for x86-64 Linux only")
LOG2_E = 1.0 / math.log(2.0)


@pytest.fixture(autouse=True)
def _kernels_run_here(monkeypatch: pytest.MonkeyPatch):
    """Compiled on a GPU, interpreted elsewhere; a kernel given up by one test (the
    fallback test gives one up on purpose) is usable again in the next."""
    if not ON_GPU and not gpu_passes.interpreting():
        pytest.skip("Triton was imported before TRITON_INTERPRET=1 could be set")
    monkeypatch.setattr(gpu_passes, "_broken", None)
    batch_module.clear_cache()
    yield
    batch_module.clear_cache()


def _odd_rows(c: int, seed: int) -> torch.Tensor:
    """Rows a softmax kernel can get wrong: ordinary, peaked, masked classes, NaN, +inf,
    all -inf, logits near float32's limit, and a constant row."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, c, generator=g) * 4.0
    x[1, c // 2] = 60.0  # nearly one-hot
    x[2, : c // 2] = -math.inf  # masked classes
    x[3, c - 1] = math.nan
    x[4, c // 3] = math.inf
    x[5] = -math.inf
    x[6] = x[6] * 1e37  # |x| near 3e38: naive exp overflows, x - max does not
    x[7] = 5.0
    return x


def _assert_softmax_matches(y: torch.Tensor, x: torch.Tensor, log: bool) -> None:
    ref = (torch.log_softmax if log else torch.softmax)(x.double(), dim=1)
    # torch's own float32 kernel gives NaN in the same places (NaN, +inf, all -inf rows).
    ours_nan, torch_nan = torch.isnan(y.cpu()), torch.isnan(ref)
    assert torch.equal(ours_nan, torch_nan)
    assert torch.equal(torch.isnan((torch.log_softmax if log else torch.softmax)(x, dim=1)), torch_nan)
    got, want = y.cpu().double()[~ours_nan], ref[~torch_nan]
    if log:  # log p: within a few float32 ulp of |log p|, -inf where p underflows
        assert torch.equal(torch.isneginf(got), torch.isneginf(want))
        finite = torch.isfinite(want)
        torch.testing.assert_close(got[finite], want[finite], rtol=4e-7, atol=2e-6)
    else:
        torch.testing.assert_close(got, want, rtol=2e-6, atol=1e-12)


@pytest.mark.parametrize("c", [1, 10, 1000, gpu_passes.SOFTMAX_REGISTER_MAX, 16_385, 50_257])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows_matches_float64(c: int, log: bool) -> None:
    # 16,384 is the last row length held in registers; from 16,385 rows are read in
    # tiles (13 of them, the last one partial, for 50,257 classes).
    x = _odd_rows(c, seed=c).to(DEVICE)
    y = gpu_passes.softmax_rows(x, log=log)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device == x.device
    _assert_softmax_matches(y, x.cpu(), log)


def test_softmax_rows_of_a_strided_view_into_a_given_output() -> None:
    base = torch.randn(6, 40_000).to(DEVICE)
    x = base[::2, 5:30_005]  # rows 80,000 floats apart, starting at an offset
    out = torch.full((3, 30_000), math.nan, device=DEVICE)
    assert gpu_passes.softmax_rows(x, out=out) is out
    _assert_softmax_matches(out, x.cpu(), log=False)
    columns = torch.randn(300, 20).to(DEVICE).t()  # columns not contiguous: copied first
    _assert_softmax_matches(gpu_passes.softmax_rows(columns), columns.cpu(), log=False)


def test_softmax_rows_refuses_what_it_does_not_compute() -> None:
    for bad in (torch.randn(5), torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 3, 4)):
        with pytest.raises(ValueError, match="2-D float32"):
            gpu_passes.softmax_rows(bad.to(DEVICE))
    empty = gpu_passes.softmax_rows(torch.empty(0, 7, device=DEVICE))
    assert empty.shape == (0, 7)
    x = torch.randn(4, 6, device=DEVICE)
    for out in (torch.empty(4, 5), torch.empty(4, 6, dtype=torch.float64), torch.empty(6, 4).t()):
        with pytest.raises(ValueError, match="out must be"):
            gpu_passes.softmax_rows(x, out=out.to(DEVICE))


def _row_sums_reference(
    x: torch.Tensor, m: torch.Tensor, k: float, lo: float
) -> tuple[torch.Tensor, torch.Tensor]:
    s = ((x.double() - m.double()[:, None]) * k).clamp(min=lo)
    e = torch.exp2(s)
    return e.sum(dim=1), (e * s).sum(dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("c", "temperature"), [(50_257, 0.7), (3, 1.0), (9_000, 0.01)])
def test_row_sums_match_float64(dtype: torch.dtype, c: int, temperature: float) -> None:
    # At T = 0.01 most terms sink below the floor; at the others none does.
    x = (torch.randn(5, c, generator=torch.Generator().manual_seed(c)) * 3.0).to(dtype)
    x[0, 0] = 30.0
    m = x.float().amax(dim=1)
    k = LOG2_E / temperature
    total = torch.full((5,), math.nan, device=DEVICE)
    weighted = torch.full((5,), math.nan, device=DEVICE)
    gpu_passes.row_sums(x.to(DEVICE), m.to(DEVICE), k, -126.0, total, weighted)
    want_s, want_w = _row_sums_reference(x, m, k, -126.0)
    # S >= 1 (the max's term is 1): relative to S, as entropy = log S - W / S uses them.
    torch.testing.assert_close(total.cpu().double(), want_s, rtol=1e-6, atol=0)
    torch.testing.assert_close((weighted.cpu().double() - want_w) / want_s,
                               torch.zeros(5, dtype=torch.float64), rtol=0, atol=2e-5)  # fmt: skip


def test_row_sums_clamp_keeps_sunk_terms_at_the_floor() -> None:
    # (x - max) * k reaches -1,400 here: clamped, each such term is 2^-126, not 0 or a NaN.
    x = torch.tensor([[0.0, -1000.0, -math.inf, -3.0]])
    m = torch.tensor([0.0])
    total, weighted = torch.empty(1, device=DEVICE), torch.empty(1, device=DEVICE)
    gpu_passes.row_sums(x.to(DEVICE), m.to(DEVICE), LOG2_E, -126.0, total, weighted)
    want_s, want_w = _row_sums_reference(x, m, LOG2_E, -126.0)
    torch.testing.assert_close(total.cpu().double(), want_s, rtol=1e-6, atol=0)
    torch.testing.assert_close(weighted.cpu().double(), want_w, rtol=1e-5, atol=0)


# -- batch.py on the kept batch ---------------------------------------------------------------


@pytest.fixture
def kept_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """batch.py's kept-on-the-GPU path; on a machine without one, with the batch kept in
    CPU tensors (the same code) and the kernels interpreted."""
    if not ON_GPU:
        monkeypatch.setattr(batch_module, "_keeps_resident", lambda device: True)
        monkeypatch.setattr(batch_module, "_free_bytes", lambda device: 1 << 40)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(rows, classes) of each row_sums launch."""
    seen: list[tuple[int, int]] = []
    original = gpu_passes.row_sums

    def counted(x, *args, **kwargs):
        seen.append(tuple(x.shape))
        return original(x, *args, **kwargs)

    monkeypatch.setattr(gpu_passes, "row_sums", counted)
    return seen


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_a_new_temperature_of_a_kept_batch_is_one_launch(
    tmp_path, kept_here, launches: list[tuple[int, int]], dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 3 rows by default, as a GPU's are a small part of a big batch.
    monkeypatch.setattr(batch_module, "CHUNK_ELEMENTS", 3 * 9000)
    monkeypatch.setattr(batch_module, "GPU_CHUNK_ELEMENTS", 3 * 9000)
    data = _mapped(tmp_path, _vocabulary_logits(7, 9000, seed=31))
    targets = np.random.default_rng(32).integers(0, 9000, 7)
    cold = batch_statistics(BatchRequest(data, 1.0, 1, dtype, DEVICE, targets, 0.1))
    assert launches == [(3, 9000), (3, 9000), (1, 9000)]  # the first view: per chunk
    launches.clear()
    warm = batch_statistics(BatchRequest(data, 0.4, 1, dtype, DEVICE, targets, 0.1))
    assert launches == [(7, 9000)]  # a new temperature: the whole kept batch at once
    for result, t in ((cold, 1.0), (warm, 0.4)):
        _assert_fused_matches(result, _reference(np.asarray(data), t, dtype, targets, 0.1), FUSED_TOL)


def test_kernels_agree_with_torchs_on_the_kept_batch(
    tmp_path, kept_here, launches: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _mapped(tmp_path, _vocabulary_logits(6, 50_257, seed=33))
    targets = np.random.default_rng(34).integers(0, 50_257, 6)
    results = {}
    for enabled in (True, False):
        monkeypatch.setattr(gpu_passes, "ENABLED", enabled)
        batch_module.clear_cache()
        batch_statistics(BatchRequest(data, 1.0, 1, "float32", DEVICE, targets))
        results[enabled] = batch_statistics(BatchRequest(data, 0.6, 1, "float32", DEVICE, targets))
    assert launches == [(6, 50_257), (6, 50_257)]  # the first view and the new T, enabled
    ours, theirs = results[True], results[False]
    np.testing.assert_allclose(ours.entropy, theirs.entropy, atol=2e-6, rtol=0)
    np.testing.assert_allclose(ours.cross_entropy, theirs.cross_entropy, atol=2e-6, rtol=1e-7)
    np.testing.assert_allclose(ours.heatmap, theirs.heatmap, atol=1e-7, rtol=1e-6)
    np.testing.assert_array_equal(ours.argmax, theirs.argmax)


class _Unbuildable:
    """A kernel whose every launch fails, as one Triton cannot build for an old GPU."""

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            raise RuntimeError("PTX .version 9.4 does not support .target sm_52")

        return launch


def test_a_kernel_that_cannot_run_hands_over_to_torch(
    tmp_path, kept_here, launches: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu_passes, "_kernel", lambda name: _Unbuildable())
    data = _mapped(tmp_path, _vocabulary_logits(5, 9000, seed=35))
    for t in (1.0, 0.5):  # the first view fails over mid-pass; the second never tries
        result = batch_statistics(BatchRequest(data, t, 1, "float32", DEVICE), chunk_rows=2)
        _assert_fused_matches(result, _reference(np.asarray(data), t, "float32"), FUSED_TOL)
        assert launches == [(2, 9000)]  # only the first chunk of the first view tried
    assert not gpu_passes.usable(DEVICE)
    assert gpu_passes.broken_reason() == "RuntimeError: PTX .version 9.4 does not support .target sm_52"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_kernel_that_fails_on_the_whole_kept_batch_hands_over_chunk_by_chunk(
    tmp_path, kept_here, launches: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    # The new temperature's one span of every row has no chunk buffers: torch's kernels
    # need them, a chunk at a time (bfloat16 needs its float32 copy in them too).
    monkeypatch.setattr(batch_module, "CHUNK_ELEMENTS", 2 * 9000)
    monkeypatch.setattr(batch_module, "GPU_CHUNK_ELEMENTS", 2 * 9000)
    data = _mapped(tmp_path, _vocabulary_logits(5, 9000, seed=36))
    batch_statistics(BatchRequest(data, 1.0, 1, dtype, DEVICE))  # the first view builds
    monkeypatch.setattr(gpu_passes, "_kernel", lambda name: _Unbuildable())
    launches.clear()
    result = batch_statistics(BatchRequest(data, 0.5, 1, dtype, DEVICE))
    assert launches == [(5, 9000)]
    _assert_fused_matches(result, _reference(np.asarray(data), 0.5, dtype), FUSED_TOL)
    assert not gpu_passes.usable(DEVICE)


def test_usable_only_where_a_kernel_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert gpu_passes.usable("cuda:0")  # Triton is installed (the module is skipped if not)
    assert not gpu_passes.usable("cpu")  # compiled Triton needs a GPU
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert gpu_passes.usable("cpu")
    monkeypatch.setattr(gpu_passes, "ENABLED", False)
    assert not gpu_passes.usable("cuda")


# -- compiled for a Hopper GPU, here -------------------------------------------------------

_COMPILE = r"""
import json, re, subprocess, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from softmax_lab.compute import _triton_kernels as K, gpu_passes as g

out = {}
rows = {"x_ptr": "*fp32", "x_stride": "i32", "m_ptr": "*fp32", "total_ptr": "*fp32",
        "weighted_ptr": "*fp32", "c": "i32", "k": "fp32", "lo": "fp32", "BLOCK": "constexpr"}
soft = {"x_ptr": "*fp32", "out_ptr": "*fp32", "x_stride": "i32", "out_stride": "i32",
        "n": "i32", "c": "i32", "LOG": "constexpr"}
cases = [("row_sums_kernel", dict(rows, x_ptr=x), {"BLOCK": g.ROW_BLOCK}, g.ROW_WARPS)
         for x in ("*fp32", "*bf16", "*fp16")]
cases.append(("softmax_in_registers", dict(soft, BLOCK="constexpr"),
              {"LOG": True, "BLOCK": g.SOFTMAX_REGISTER_MAX}, 16))
cases += [("softmax_in_tiles", dict(soft, TILE="constexpr", STAGES="constexpr"),
           {"LOG": log, "TILE": tile, "STAGES": stages}, warps)
          for tile, warps, _, stages in g.SOFTMAX_TILE_CONFIGS for log in (False, True)]
for name, signature, constexprs, warps in cases:
    src = ASTSource(fn=getattr(K, name), signature=signature, constexprs=constexprs)
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                            options={"num_warps": warps, "enable_fp_fusion": True})
    spills = None
    try:  # Triton's own ptxas, for its register report (an internal API: optional)
        from triton.backends.nvidia.compiler import get_ptxas
        with open("k.ptx", "w") as f:
            f.write(kernel.asm["ptx"])
        log = subprocess.run([get_ptxas(90).path, "-arch=sm_90a", "-v", "k.ptx", "-o", "k.cubin"],
                             capture_output=True, text=True).stderr
        spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill", log))
    except Exception:
        pass
    out[f"{name} {signature['x_ptr']} {constexprs} x{warps}"] = {"cubin": len(kernel.asm["cubin"]), "spills": spills}
print(json.dumps(out))
"""


def test_every_kernel_compiles_for_a_hopper_gpu_without_spilling(tmp_path) -> None:
    # The interpreter checks what the kernels compute, not that Triton's compiler takes
    # them: compile each configuration the app launches for sm_90 (H100/H200), which
    # needs no GPU. In a process of its own: this one runs Triton's interpreter.
    import json
    import subprocess

    import triton

    if tuple(int(p) for p in triton.__version__.split(".")[:2]) < (3, 3):
        pytest.skip(f"Triton {triton.__version__}: ASTSource took another signature before 3.3")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # (programs per multiprocessor is the grid's, not the compiled kernel's)
    kernels = {(tile, warps, stages) for tile, warps, _, stages in gpu_passes.SOFTMAX_TILE_CONFIGS}
    assert len(report) == 3 + 1 + 2 * len(kernels)
    for case, facts in report.items():
        assert facts["cubin"] > 0, case
        assert facts["spills"] in (0, None), f"{case}: {facts['spills']} bytes spilled"


def test_a_tile_configuration_that_cannot_build_is_skipped_not_fatal() -> None:
    configs = gpu_passes.SOFTMAX_TILE_CONFIGS[:3]
    timings = {configs[0]: 2.0, configs[2]: 1.5}

    def milliseconds(config):
        if config not in timings:  # as a tuning launch reports a kernel that does not build
            raise gpu_passes.KernelFailed("OutOfResources: shared memory")
        return timings[config]

    assert gpu_passes._fastest(configs, milliseconds) == configs[2]
    assert gpu_passes.usable("cuda")  # the other kernels are not given up
    timings.clear()
    with pytest.raises(gpu_passes.KernelFailed, match="no tile configuration runs here"):
        gpu_passes._fastest(configs, milliseconds)
    assert not gpu_passes.usable("cuda")


def test_a_tuning_launch_that_fails_does_not_give_the_kernels_up() -> None:
    with pytest.raises(gpu_passes.KernelFailed, match="PTX"):
        gpu_passes._launch(_Unbuildable(), (1,), torch.zeros(1), _give_up=False)
    assert gpu_passes.usable(DEVICE)
    with pytest.raises(gpu_passes.KernelFailed, match="PTX"):
        gpu_passes._launch(_Unbuildable(), (1,), torch.zeros(1))
    assert not gpu_passes.usable(DEVICE)
