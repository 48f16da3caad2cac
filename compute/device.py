"""Choosing the device: ``auto``, ``cpu`` or ``cuda`` (``cuda:N``).

Asking for CUDA where there is none is a :class:`DeviceUnavailableError` with
a reason, never a crash deep inside torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from softmax_lab.compute.errors import DeviceUnavailableError, InvalidInputError

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class CudaStatus:
    available: bool
    reason: str
    """Why CUDA is unavailable (empty when it is available), or the GPU's name."""


def cuda_status() -> CudaStatus:
    """Whether torch can use a CUDA GPU here, and a sentence saying why not."""
    import torch

    if not torch.backends.cuda.is_built():
        return CudaStatus(
            False,
            f"this torch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch "
            "to compute on a GPU",
        )
    try:
        available = torch.cuda.is_available()
    except Exception as exc:
        return CudaStatus(False, f"CUDA could not be initialised: {exc}")
    if not available:
        return CudaStatus(False, "torch has CUDA support but finds no usable GPU or driver")
    return CudaStatus(True, torch.cuda.get_device_name(0))


def resolve_device(name: str) -> str:
    """Turn a device choice into a concrete torch device string.

    ``auto`` means CUDA when available, else CPU.

    Raises
    ------
    DeviceUnavailableError
        CUDA was asked for explicitly and is not available.
    InvalidInputError
        The name is not a device this lab knows.
    """
    # FIX: a non-string (None from an unset setting) raised AttributeError.
    if not isinstance(name, str):
        raise InvalidInputError(f"device must be a name (auto, cpu or cuda), not {name!r}")
    name = name.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "auto":
        return "cuda" if cuda_status().available else "cpu"
    # FIX: str.isdigit() accepts '²' and '٣', which int() or torch then reject;
    # only ASCII device indices are device names.
    index_text = name[5:]
    if name == "cuda" or (
        name.startswith("cuda:") and index_text.isascii() and index_text.isdigit()
    ):
        status = cuda_status()
        if not status.available:
            raise DeviceUnavailableError(f"CUDA was requested but is not available: {status.reason}")
        if ":" in name:
            import torch

            index = int(index_text)
            if index >= torch.cuda.device_count():
                raise DeviceUnavailableError(
                    f"{name} was requested but torch sees {torch.cuda.device_count()} GPU(s)"
                )
        return name
    raise InvalidInputError(f"unknown device {name!r}; choose auto, cpu or cuda")


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run torch's CPU kernels on ``count`` threads inside (None: as they are), restoring after.

    With OpenMP the setting belongs to the calling thread (and seeds threads it
    starts meanwhile); other threads keep their own. Measured on a busy 2-core
    machine (docs/performance.md): a torch call split over 2 threads sometimes
    waits milliseconds at its join for a descheduled thread, so small, latency-bound
    work runs single-threaded.
    """
    import torch

    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
