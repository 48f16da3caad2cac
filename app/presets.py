"""Ready-made logit vectors for the editor's Presets menu (Qt-free).

Each preset makes a fresh float64 vector and its class names on demand, so the
large vocabularies cost nothing until someone picks them, and nothing a caller
does to one result leaks into the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from softmax_lab.app.session import SEED_LOGITS, default_names

Vector = tuple[np.ndarray, tuple[str, ...]]

CIFAR10_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

GPT2_VOCAB_SIZE = 50_257
LLM_VOCAB_SIZE = 262_144


@dataclass(frozen=True)
class Preset:
    """One entry of the Presets menu.

    Attributes
    ----------
    key
        Stable identifier (used by tests, scripts and lecture scenes).
    title
        Menu text.
    description
        One sentence for the tooltip: what the preset is meant to show.
    make
        Builds ``(logits, class_names)``: a new float64 ``(C,)`` array and C names.
    """

    key: str
    title: str
    description: str
    make: Callable[[], Vector]


def _vector(values: list[float] | tuple[float, ...], names: tuple[str, ...] | None = None) -> Vector:
    logits = np.array(values, dtype=np.float64)
    return logits, names if names is not None else default_names(logits.shape[0])


def _seed() -> Vector:
    return _vector(SEED_LOGITS)


def _uniform() -> Vector:
    return _vector([1.0] * 5)


def _dominant() -> Vector:
    return _vector([8.0, 1.0, 0.5, 0.0, -1.0])


def _large() -> Vector:
    return _vector([1000.0, 999.0, 998.0])


def _masked() -> Vector:
    # The attention-mask pattern: -inf logits get exactly zero probability.
    return _vector([2.0, -np.inf, 1.0, -np.inf, 0.5])


def _cifar10() -> Vector:
    # A confident-but-not-certain "cat" with "dog" as the runner-up, as a
    # trained CIFAR-10 classifier typically answers for a cat photo.
    return _vector([-1.2, -2.3, 0.8, 4.1, 1.0, 3.2, 0.3, -0.5, -1.8, -2.0], CIFAR10_NAMES)


def _vocab(size: int, seed: int) -> Vector:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size)
    # A handful of clearly preferred next tokens, as a language model's output has.
    peaks = rng.choice(size, 5, replace=False)
    logits[peaks] = np.array([14.0, 12.5, 11.0, 10.0, 9.5])
    return logits, tuple(f"token {i}" for i in range(size))


PRESETS: tuple[Preset, ...] = (
    Preset(
        "seed",
        "Seed example [2.0, 1.0, 0.1]",
        "The textbook example: softmax gives about 0.66, 0.24, 0.10.",
        _seed,
    ),
    Preset(
        "uniform",
        "Uniform (5 equal logits)",
        "Equal logits give equal probabilities 1/5, whatever the temperature.",
        _uniform,
    ),
    Preset(
        "dominant",
        "One dominant class",
        "One logit far above the rest takes almost all the probability; raise T to spread it.",
        _dominant,
    ),
    Preset(
        "large",
        "Large logits [1000, 999, 998]",
        "exp(1000) overflows every float type: the naive softmax fails, the stable one "
        "(subtract the max first) gives the same answer as [2, 1, 0].",
        _large,
    ),
    Preset(
        "masked",
        "Masked logits (-inf)",
        "-inf logits, as an attention mask writes them, get probability exactly 0.",
        _masked,
    ),
    Preset(
        "cifar10",
        "10-class classifier (CIFAR-10)",
        "Plausible logits of an image classifier shown a cat: confident, with dog as runner-up.",
        _cifar10,
    ),
    Preset(
        "vocab50k",
        "GPT-2 vocabulary (50,257 logits)",
        "Random next-token logits (normal, sd 2, seeded) with a few peaks: most of the "
        "probability mass sits in a long tail.",
        lambda: _vocab(GPT2_VOCAB_SIZE, 50_257),
    ),
    Preset(
        "vocab262k",
        "LLM vocabulary (262,144 logits)",
        "A vocabulary the size of recent LLMs' (random, seeded): computed off the UI thread.",
        lambda: _vocab(LLM_VOCAB_SIZE, 262_144),
    ),
)


def preset(key: str) -> Preset:
    """Return the preset called ``key``.

    Raises
    ------
    KeyError
        With the known keys, if there is no such preset.
    """
    for p in PRESETS:
        if p.key == key:
            return p
    raise KeyError(f"no preset {key!r}; known: {', '.join(p.key for p in PRESETS)}")
