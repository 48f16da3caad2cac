"""Device choice: readable refusals without a GPU; CPU/GPU agreement where there is one.

Tests marked ``cuda`` are skipped (by tests/conftest.py) where torch sees no GPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmax_lab.compute.device import DEVICE_CHOICES, cuda_status, resolve_device
from softmax_lab.compute.errors import DeviceUnavailableError, InvalidInputError
from softmax_lab.compute.losses import cross_entropy
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.types import SoftmaxRequest

DTYPES = ("float16", "bfloat16", "float32", "float64")
HAS_CUDA = torch.cuda.is_available()


def eps(dtype: str) -> float:
    return float(torch.finfo(getattr(torch, dtype)).eps)


def test_choices():
    assert DEVICE_CHOICES == ("auto", "cpu", "cuda")


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_cpu_is_always_cpu(name):
    assert resolve_device(name) == "cpu"


def test_auto_follows_what_torch_sees():
    assert resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert cuda_status().available == HAS_CUDA


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU: CUDA is available, nothing to refuse")
# ids: a parametrize id equal to "cuda" would become a keyword that the suite's
# cuda-skip hook (keyword based) mistakes for the marker.
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"], ids=["bare", "index0", "upper1"])
def test_cuda_without_a_gpu_is_refused_with_the_reason(name):
    with pytest.raises(DeviceUnavailableError) as info:
        resolve_device(name)
    message = str(info.value)
    assert message.startswith("CUDA was requested but is not available: ")
    if not torch.backends.cuda.is_built():
        assert "CPU-only build" in message and torch.__version__ in message
        assert "install a CUDA build of torch" in message
    else:
        assert "no usable GPU" in message


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_compute_on_cuda_without_a_gpu_is_refused_before_any_work():
    with pytest.raises(DeviceUnavailableError):
        compute_softmax(SoftmaxRequest(np.array([1.0, 2.0]), device="cuda"))


def test_reason_for_a_cpu_only_torch(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    status = cuda_status()
    assert not status.available
    assert "CPU-only build" in status.reason and torch.__version__ in status.reason
    with pytest.raises(DeviceUnavailableError, match="CPU-only build"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_reason_when_cuda_is_built_but_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="finds no usable GPU or driver"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_reason_when_cuda_initialisation_fails(monkeypatch):
    def broken() -> bool:
        raise RuntimeError("driver too old")

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", broken)
    status = cuda_status()
    assert not status.available and "could not be initialised: driver too old" in status.reason
    assert resolve_device("auto") == "cpu"


def test_a_gpu_index_beyond_the_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0"
    assert resolve_device("auto") == "cuda"
    with pytest.raises(DeviceUnavailableError, match=r"cuda:3 was requested but torch sees 1 GPU"):
        resolve_device("cuda:3")


@pytest.mark.parametrize(
    "name", ["gpu", "tpu", "mps", "", "cuda:", "cuda:x", "cuda:-1", "cuda:²", "cuda:٣", "cpu:0"]
)
def test_unknown_names_are_invalid_input(name):
    with pytest.raises(InvalidInputError, match="unknown device .*choose auto, cpu or cuda"):
        resolve_device(name)


@pytest.mark.parametrize("name", [None, 0, ["cpu"]])
def test_non_string_device_is_invalid_input(name):
    with pytest.raises(InvalidInputError, match="device must be a name"):
        resolve_device(name)


# --- on a GPU: the same numbers as on the CPU -----------------------------------------------------


def _both(logits, dtype, temperature=1.0, dim=-1):
    x = np.asarray(logits, dtype=np.float64)
    cpu = compute_softmax(SoftmaxRequest(x, temperature, dim, dtype, "cpu"))
    gpu = compute_softmax(SoftmaxRequest(x, temperature, dim, dtype, "cuda"))
    return cpu, gpu


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.37, 4.0])
def test_cuda_matches_cpu_within_dtype_tolerance(dtype, temperature):
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 5.0, size=(4, 3, 50))
    cpu, gpu = _both(x, dtype, temperature, dim=1)
    assert gpu.device == "cuda" and cpu.device == "cpu"
    tol = 4 * eps(dtype)
    np.testing.assert_allclose(gpu.probabilities, cpu.probabilities, rtol=0, atol=tol)
    np.testing.assert_allclose(
        gpu.log_probabilities, cpu.log_probabilities, rtol=2 * eps(dtype), atol=tol
    )
    np.testing.assert_allclose(
        gpu.stats.entropy_nats, cpu.stats.entropy_nats, rtol=0, atol=50 * tol
    )
    np.testing.assert_array_equal(gpu.logits, cpu.logits)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_overflow_report_matches_cpu(dtype):
    rows = [
        [1000.0, 999.0, 998.0, 0.0],
        [2.0, 1.0, 0.1, 0.0],
        [math.inf, 0.0, 1.0, 2.0],
        [-math.inf, -math.inf, -math.inf, -math.inf],
        [math.nan, 0.0, 1.0, 2.0],
        [-2000.0, -2001.0, -2002.0, -2003.0],
        [0.0, -200.0, -20.0, -1.0],
    ]
    cpu, gpu = _both(rows, dtype)
    for field in (
        "input_overflow",
        "naive_overflow",
        "naive_underflow",
        "stable_nan",
        "naive_nonfinite",
    ):
        np.testing.assert_array_equal(
            getattr(gpu.overflow, field), getattr(cpu.overflow, field), err_msg=field
        )
    np.testing.assert_array_equal(gpu.stats.argmax, cpu.stats.argmax)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1e-6, 1e-30, 1e-300, 1e300])
def test_cuda_extreme_temperatures_never_nan(dtype, temperature):
    """CUDA divides by a scalar as a multiply by 1/T: T's rounding must not matter there either."""
    x = [[1.0, 3.0, 3.0, 0.0], [5.0, -math.inf, 2.0, 4.0]]
    cpu, gpu = _both(x, dtype, temperature)
    assert not np.isnan(gpu.probabilities).any()
    np.testing.assert_allclose(gpu.probabilities, cpu.probabilities, rtol=0, atol=eps(dtype))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_cross_entropy_matches_cpu(dtype):
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 3.0, size=(8, 10))
    target = rng.integers(0, 10, size=8)
    cpu = cross_entropy(x, target, temperature=0.8, label_smoothing=0.1, dtype=dtype, device="cpu")
    gpu = cross_entropy(x, target, temperature=0.8, label_smoothing=0.1, dtype=dtype, device="cuda")
    tol = 8 * eps(dtype)
    assert gpu.loss == pytest.approx(cpu.loss, rel=tol, abs=tol)
    np.testing.assert_allclose(gpu.gradient, cpu.gradient, rtol=0, atol=tol)
    assert gpu.double_softmax_loss == pytest.approx(cpu.double_softmax_loss, rel=tol, abs=tol)


@pytest.mark.cuda
def test_cuda_index_zero_resolves():
    assert resolve_device("cuda:0") == "cuda:0"
    assert resolve_device("auto") == "cuda"
    with pytest.raises(DeviceUnavailableError, match="GPU"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
