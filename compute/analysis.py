"""Everything the window shows about one logit vector, computed in one call.

The controller runs :func:`analyse_vector` (inline for small vectors, on a
worker for large ones) and stores the frozen :class:`VectorAnalysis` in the
session; widgets only read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softmax_lab.compute.device import torch_threads
from softmax_lab.compute.kept import LastVector
from softmax_lab.compute.losses import cross_entropy_from_result
from softmax_lab.compute.overflow import log_softmax_verdict, overflow_verdict
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.types import CrossEntropyResult, SoftmaxRequest, SoftmaxResult


@dataclass(frozen=True, eq=False)
class VectorRequest:
    logits: np.ndarray
    temperature: float = 1.0
    dtype: str = "float32"
    device: str = "auto"
    target: int | None = None
    label_smoothing: float = 0.0


@dataclass(frozen=True, eq=False)
class VectorAnalysis:
    """Softmax at T, the T = 1 reference (the ghost bars), the loss and the verdicts."""

    request: VectorRequest
    result: SoftmaxResult
    reference: SoftmaxResult
    """The same logits at T = 1 (identical object when T == 1)."""
    loss: CrossEntropyResult | None
    overflow_text: str
    log_softmax_text: str


def analyse_vector(request: VectorRequest) -> VectorAnalysis:
    """Compute softmax at ``T``, the T = 1 reference and cross-entropy for one vector.

    Runs torch single-threaded: these are latency-bound calls (a slider
    drag), and a 2-thread split measured 20x (1,000 classes) to 35x (50,257) slower on
    a busy 2-core machine while it was no faster at 262,144 (docs/performance.md).

    Raises the compute core's errors (InvalidInputError, DeviceUnavailableError,
    ComputeMemoryError) unchanged.
    """
    with torch_threads(1):
        base = SoftmaxRequest(
            request.logits, request.temperature, -1, request.dtype, request.device
        )
        result = compute_softmax(base)
        reference = result if request.temperature == 1.0 else _reference(request)
        loss = None
        if request.target is not None:
            loss = cross_entropy_from_result(
                result, np.array([request.target]), label_smoothing=request.label_smoothing
            )
    return VectorAnalysis(
        request=request,
        result=result,
        reference=reference,
        loss=loss,
        overflow_text=overflow_verdict(result),
        log_softmax_text=log_softmax_verdict(result),
    )


# The T = 1 reference (the ghost bars) of the last vector: computed once per vector,
# not once per slider tick.
_last_reference: LastVector[SoftmaxResult] = LastVector()


def _reference(request: VectorRequest) -> SoftmaxResult:
    logits = request.logits
    return _last_reference.get(
        logits,
        (request.dtype, request.device),
        lambda: compute_softmax(SoftmaxRequest(logits, 1.0, -1, request.dtype, request.device)),
    )
