"""Everything the window shows about one logit vector, computed in one call.

The controller runs :func:`analyse_vector` (inline for small vectors, on a
worker for large ones) and stores the frozen :class:`VectorAnalysis` in the
session; widgets only read it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from softmax_lab.compute.device import torch_threads
from softmax_lab.compute.losses import cross_entropy_from_result
from softmax_lab.compute.overflow import log_softmax_verdict, overflow_verdict
from softmax_lab.compute.softmax import compute_softmax, unchanging
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


# The T = 1 reference of the last read-only logits: a temperature drag changes only T,
# so it is computed once per vector, not once per slider tick. Only arrays that own
# their data read-only (the session makes every vector one) are cached; the slot is
# replaced, never grown, and holds one result.
_last_reference: tuple[np.ndarray, str, str, SoftmaxResult] | None = None
_reference_lock = threading.Lock()


def _reference(request: VectorRequest) -> SoftmaxResult:
    global _last_reference
    logits = request.logits
    cacheable = unchanging(logits)
    with _reference_lock:
        cached = _last_reference
    if (
        cacheable
        and cached is not None
        and cached[0] is logits
        and cached[1:3] == (request.dtype, request.device)
    ):
        return cached[3]
    reference = compute_softmax(SoftmaxRequest(logits, 1.0, -1, request.dtype, request.device))
    if cacheable:
        with _reference_lock:
            _last_reference = (logits, request.dtype, request.device, reference)
    return reference
