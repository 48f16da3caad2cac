"""Everything the window shows about one logit vector, computed in one call.

The controller runs :func:`analyse_vector` (inline for small vectors, on a
worker for large ones) and stores the frozen :class:`VectorAnalysis` in the
session; widgets only read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    Raises the compute core's errors (InvalidInputError, DeviceUnavailableError,
    ComputeMemoryError) unchanged.
    """
    base = SoftmaxRequest(request.logits, request.temperature, -1, request.dtype, request.device)
    result = compute_softmax(base)
    if request.temperature == 1.0:
        reference = result
    else:
        reference = compute_softmax(
            SoftmaxRequest(request.logits, 1.0, -1, request.dtype, request.device)
        )
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
