"""The statistics readout: its texts against the float64 formulas."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel

from softmax_lab.app.controller import Controller
from softmax_lab.app.session import Session
from softmax_lab.widgets import style
from softmax_lab.widgets.stats_readout import StatsReadout

NAMES = ("entropyLabel", "perplexityLabel", "maxProbabilityLabel", "marginLabel", "argmaxLabel")


def reference(logits, temperature: float = 1.0) -> dict[str, float]:
    """Float64 formulas, independent of the compute core."""
    x = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    nonzero = p[p > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())
    top = np.sort(p)[::-1]
    return {
        "nats": entropy,
        "bits": entropy / math.log(2),
        "perplexity": math.exp(entropy),
        "max": float(top[0]),
        "margin": float(top[0] - top[1]),
        "argmax": int(np.argmax(p)),
    }


def numbers(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"[-+]?\d*\.?\d+(?:e[-+]?\d+)?", text)]


def label(readout: StatsReadout, name: str) -> QLabel:
    found = readout.findChild(QLabel, name)
    assert found is not None, name
    return found


@pytest.fixture
def readout(qtbot, session: Session) -> StatsReadout:
    Controller(session).start()
    widget = StatsReadout(session)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_contract(readout: StatsReadout) -> None:
    assert readout.objectName() == "statsReadout"
    hint = readout.minimumSizeHint()
    assert 150 <= hint.width() <= 1000 and 40 <= hint.height() <= 400
    image = readout.grab().toImage()
    assert not image.isNull()
    small = image.scaled(60, 20)
    assert len({small.pixel(x, y) for x in range(60) for y in range(20)}) > 1
    for name in NAMES:
        assert label(readout, name).font().pointSize() >= 14  # readable from the back row


def assert_matches(readout: StatsReadout, session: Session, logits, temperature: float) -> None:
    ref = reference(logits, temperature)
    nats, bits = numbers(label(readout, "entropyLabel").text())
    assert "nats" in label(readout, "entropyLabel").text()
    assert nats == pytest.approx(ref["nats"], rel=5e-4, abs=1e-6)
    assert bits == pytest.approx(ref["bits"], rel=5e-4, abs=1e-6)
    (perplexity,) = numbers(label(readout, "perplexityLabel").text())
    assert perplexity == pytest.approx(ref["perplexity"], rel=5e-4)
    (top,) = numbers(label(readout, "maxProbabilityLabel").text())
    assert top == pytest.approx(ref["max"], rel=5e-4)
    (margin,) = numbers(label(readout, "marginLabel").text())
    assert margin == pytest.approx(ref["margin"], rel=5e-3, abs=1e-6)
    assert label(readout, "argmaxLabel").text() == session.class_names[ref["argmax"]]
    (total,) = numbers(label(readout, "sumLabel").text())
    assert total == pytest.approx(1.0, abs=1e-4)
    assert label(readout, "classCountLabel").text().replace(",", "") == str(len(logits))


def test_seed_example(readout: StatsReadout, session: Session) -> None:
    assert_matches(readout, session, [2.0, 1.0, 0.1], 1.0)
    assert label(readout, "maxProbabilityLabel").text() == "0.659"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_follows_temperature_and_vector(readout: StatsReadout, session: Session, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=int(rng.integers(2, 60)))
    names = [f"word{i}" for i in range(len(logits))]
    session.set_vector(logits, names)
    assert_matches(readout, session, logits, 1.0)
    temperature = float(rng.uniform(0.2, 4.0))
    session.temperature = temperature
    assert_matches(readout, session, logits, temperature)


def test_uniform_and_one_hot_extremes(readout: StatsReadout, session: Session) -> None:
    session.set_vector(np.zeros(8))
    nats, bits = numbers(label(readout, "entropyLabel").text())
    assert nats == pytest.approx(math.log(8), rel=5e-4)
    assert bits == pytest.approx(3.0, rel=5e-4)
    assert numbers(label(readout, "perplexityLabel").text())[0] == pytest.approx(8.0, rel=5e-4)
    assert numbers(label(readout, "marginLabel").text())[0] == pytest.approx(0.0, abs=1e-6)


def test_nan_result_shown_in_red(readout: StatsReadout, session: Session) -> None:
    session.dtype = "float16"
    session.set_vector([70000.0, 0.0])  # float16 stores +inf: the softmax row is NaN
    assert "nan" in label(readout, "entropyLabel").text()
    assert style.BAD.lower() in label(readout, "entropyLabel").styleSheet().lower()
    assert style.BAD.lower() in label(readout, "argmaxLabel").styleSheet().lower()
    session.dtype = "float32"  # 70000 is fine in float32: back to normal colours
    assert label(readout, "argmaxLabel").text() == session.class_names[0]
    assert style.BAD.lower() not in label(readout, "entropyLabel").styleSheet().lower()
