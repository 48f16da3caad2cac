"""The Presets menu data: each preset makes a usable vector with the promised shape."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from softmax_lab.app.presets import CIFAR10_NAMES, PRESETS, preset
from softmax_lab.app.session import Session


def _softmax64(x: np.ndarray) -> np.ndarray:
    # Independent reference: the float64 max-subtracted formula.
    finite_max = np.max(x[np.isfinite(x)])
    e = np.exp(x - finite_max)
    return e / e.sum()


def test_presets_module_imports_no_qt() -> None:
    # In a fresh interpreter: this test process may have loaded Qt for other tests.
    code = (
        "import sys, softmax_lab.app.presets; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'torch')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_keys_and_titles_are_unique_and_non_empty() -> None:
    keys = [p.key for p in PRESETS]
    titles = [p.title for p in PRESETS]
    assert len(set(keys)) == len(keys)
    assert len(set(titles)) == len(titles)
    assert all(p.title and p.description for p in PRESETS)


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.key)
def test_each_preset_is_a_vector_the_session_accepts(p) -> None:
    logits, names = p.make()
    assert isinstance(logits, np.ndarray)
    assert logits.dtype == np.float64 and logits.ndim == 1 and logits.shape[0] >= 1
    assert len(names) == logits.shape[0]
    assert all(isinstance(n, str) and n for n in names)
    session = Session()
    session.set_vector(logits, names)
    np.testing.assert_array_equal(session.logits, logits)
    assert session.class_names == tuple(names)


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.key)
def test_each_call_makes_a_fresh_equal_vector(p) -> None:
    first, names1 = p.make()
    second, names2 = p.make()
    assert first is not second
    np.testing.assert_array_equal(first, second)  # seeded: reproducible
    assert names1 == names2
    first[0] = 12345.0
    assert p.make()[0][0] != 12345.0


def test_seed_example() -> None:
    logits, names = preset("seed").make()
    np.testing.assert_array_equal(logits, [2.0, 1.0, 0.1])
    assert names == ("class 0", "class 1", "class 2")
    np.testing.assert_allclose(_softmax64(logits), [0.659, 0.242, 0.099], atol=1e-3)


def test_uniform_gives_equal_probabilities() -> None:
    logits, _ = preset("uniform").make()
    assert logits.shape == (5,)
    assert np.all(logits == logits[0])
    np.testing.assert_allclose(_softmax64(logits), np.full(5, 0.2))


def test_dominant_class_takes_most_of_the_mass() -> None:
    logits, _ = preset("dominant").make()
    p = _softmax64(logits)
    assert np.argmax(p) == 0 and p[0] > 0.99


def test_large_logits_overflow_the_naive_formula_even_in_float64() -> None:
    logits, _ = preset("large").make()
    np.testing.assert_array_equal(logits, [1000.0, 999.0, 998.0])
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(logits)).all()
    np.testing.assert_allclose(_softmax64(logits), _softmax64(np.array([2.0, 1.0, 0.0])))


def test_masked_logits_get_zero_probability() -> None:
    logits, _ = preset("masked").make()
    masked = np.isneginf(logits)
    assert masked.any() and np.isfinite(logits[~masked]).all()
    p = _softmax64(logits)
    assert np.all(p[masked] == 0.0)
    assert p.sum() == pytest.approx(1.0)


def test_cifar10_has_the_ten_class_names_in_order() -> None:
    logits, names = preset("cifar10").make()
    assert names == CIFAR10_NAMES
    assert names[0] == "airplane" and names[9] == "truck"
    assert logits.shape == (10,) and np.isfinite(logits).all()
    p = _softmax64(logits)
    assert 0.3 < p.max() < 0.95  # plausible: confident, not certain


@pytest.mark.parametrize(("key", "size"), [("vocab50k", 50_257), ("vocab262k", 262_144)])
def test_vocabularies(key: str, size: int) -> None:
    logits, names = preset(key).make()
    assert logits.shape == (size,)
    assert np.isfinite(logits).all()
    assert names[0] == "token 0" and names[-1] == f"token {size - 1}"
    assert len(set(names[:1000])) == 1000
    # Mostly noise (sd about 2) with a few clear peaks on top.
    assert 1.5 < np.std(logits) < 2.5
    assert np.sum(logits > 9.0) >= 3


def test_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="seed"):
        preset("nope")
