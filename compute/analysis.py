"""Everything the window shows about one logit vector, from one call.

The controller runs :func:`analyse_vector` (inline for small vectors, on a
worker for large ones) and stores the frozen :class:`VectorAnalysis` in the
session; widgets only read it. What only some tabs show (the loss, the naive
path and the verdicts) is computed when first read, so a temperature tick pays
only for what is on screen; a worker completes it before handing it over
(:meth:`VectorAnalysis.complete`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from softmax_lab.compute.device import torch_threads
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.kept import LastVector, Once
from softmax_lab.compute.losses import cross_entropy_from_result
from softmax_lab.compute.overflow import log_softmax_verdict, overflow_verdict
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.types import CrossEntropyResult, SoftmaxRequest, SoftmaxResult
from softmax_lab.compute.validation import IGNORE_INDEX, check_label_smoothing


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
    _verdicts: Once[tuple[str, str]] = field(repr=False)
    _loss: Once[CrossEntropyResult | None] = field(repr=False)

    @property
    def overflow_text(self) -> str:
        """What the naive exp/sum does here (the overflow lab's verdict), on first read."""
        return self._verdicts.get()[0]

    @property
    def log_softmax_text(self) -> str:
        """log(softmax) against log_softmax here, on first read."""
        return self._verdicts.get()[1]

    @property
    def loss(self) -> CrossEntropyResult | None:
        """Cross-entropy against ``request.target`` (None without one), computed on
        first read: only the loss tab and the exports show it, and at LLM vocabulary
        sizes its dense gradient and double-softmax value were ~40% of a temperature
        tick that nobody saw while that tab was hidden (docs/performance.md)."""
        return self._loss.get()

    def complete(self) -> VectorAnalysis:
        """Compute now what would otherwise be computed on first read (the loss, the
        verdicts and through them the naive path), and return self.

        For a worker thread: a vector too large to compute inline would otherwise have
        its loss or naive path computed on the UI thread when a tab that shows them
        is up (~4x a 262,144-class vector's, for a million classes).
        """
        self._loss.get()
        self._verdicts.get()
        return self


def analyse_vector(request: VectorRequest) -> VectorAnalysis:
    """Softmax at ``T`` and the T = 1 reference for one vector; cross-entropy against
    its target and the verdicts when first read.

    Runs torch single-threaded: these are latency-bound calls (a slider
    drag), and a 2-thread split measured 20x (1,000 classes) to 35x (50,257) slower on
    a busy 2-core machine while it was no faster at 262,144 (docs/performance.md).

    Raises the compute core's errors (InvalidInputError, DeviceUnavailableError,
    ComputeMemoryError) unchanged. The target and label smoothing are checked here,
    so reading the (lazily computed) loss later cannot fail on them.
    """
    with torch_threads(1):
        base = SoftmaxRequest(
            request.logits, request.temperature, -1, request.dtype, request.device
        )
        result = compute_softmax(base)
        reference = result if request.temperature == 1.0 else _reference(request)
    _check_target(request, result.num_classes)
    return VectorAnalysis(
        request=request,
        result=result,
        reference=reference,
        _verdicts=Once(lambda: (overflow_verdict(result), log_softmax_verdict(result))),
        _loss=Once(partial(_loss, request, result)),
    )


def _check_target(request: VectorRequest, classes: int) -> None:
    check_label_smoothing(request.label_smoothing)
    target = request.target
    # -100 is cross_entropy's ignore_index: a target that leaves the loss out (0).
    if target is not None and target != IGNORE_INDEX and not 0 <= target < classes:
        raise InvalidInputError(
            f"target class {target} is out of range: there are {classes} classes "
            f"(0..{classes - 1})"
        )


def _loss(request: VectorRequest, result: SoftmaxResult) -> CrossEntropyResult | None:
    if request.target is None:
        return None
    with torch_threads(1):
        return cross_entropy_from_result(
            result, np.array([request.target]), label_smoothing=request.label_smoothing
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
