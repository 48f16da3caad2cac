"""The session model: emits only on real change, validates, groups updates. No Qt."""

import numpy as np
import pytest

from softmax_lab.app.session import Session
from softmax_lab.compute.errors import InvalidInputError


def record(session: Session):
    seen: list[frozenset[str]] = []
    session.changed.connect(seen.append)
    return seen


def test_setting_the_same_value_emits_nothing():
    s = Session()
    seen = record(s)
    field_seen = []
    s.events["temperature"].connect(field_seen.append)
    s.temperature = 1.0
    s.logits = np.array([2.0, 1.0, 0.1])
    s.dtype = "float32"
    assert seen == [] and field_seen == []
    s.temperature = 2.0
    assert seen == [frozenset({"temperature"})] and field_seen == [2.0]


def test_invalid_values_raise_and_change_nothing():
    s = Session()
    seen = record(s)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidInputError):
            s.temperature = bad
    with pytest.raises(InvalidInputError):
        s.dtype = "int8"
    with pytest.raises(InvalidInputError):
        s.target = 3  # only 3 classes: 0..2
    with pytest.raises(InvalidInputError):
        s.label_smoothing = 1.5
    assert s.temperature == 1.0 and s.dtype == "float32" and s.target == 0
    assert seen == []


def test_update_is_all_or_nothing_and_emits_once():
    s = Session()
    seen = record(s)
    with pytest.raises(InvalidInputError):
        s.update(temperature=3.0, dtype="nonsense")
    assert s.temperature == 1.0 and seen == []
    s.update(temperature=3.0, dtype="float16")
    assert seen == [frozenset({"temperature", "dtype"})]


def test_set_vector_keeps_names_and_target_consistent():
    s = Session()
    s.target = 2
    seen = record(s)
    s.set_vector([5.0, 4.0])
    assert s.class_names == ("class 0", "class 1")
    assert s.target == 1  # clamped into range, not left dangling
    assert seen == [frozenset({"logits", "class_names", "target"})]
    s.set_vector([1.0, 2.0, 3.0, 4.0], ["a", "b", "c", "d"])
    assert s.class_names == ("a", "b", "c", "d")
    with pytest.raises(InvalidInputError):
        s.set_vector([1.0, 2.0], ["only one name"])
    assert s.num_classes == 4


def test_names_are_kept_as_they_are_when_only_the_logits_change():
    # The session's own tuple passed back (or no names) keeps the very same object and
    # reports no change of names (the editor passes them back on every logit edit).
    s = Session()
    s.set_vector(np.zeros(6), ["a", "b", 3, "d", "e", "f"])
    names = s.class_names
    assert names == ("a", "b", "3", "d", "e", "f")  # anything else is converted to text
    seen = record(s)
    s.set_vector(np.ones(6), names)
    assert s.class_names is names
    s.set_vector(np.full(6, 2.0))
    assert s.class_names is names
    assert seen == [frozenset({"logits"}), frozenset({"logits"})]
    s.set_vector(np.zeros(8))  # new classes get default names after the kept ones
    assert s.class_names == (*names, "class 6", "class 7")
    s.set_vector(np.zeros(2))
    assert s.class_names == ("a", "b")


def test_logits_are_read_only_copies():
    s = Session()
    source = np.array([1.0, 2.0])
    s.set_vector(source)
    source[0] = 99.0
    assert s.logits[0] == 1.0
    with pytest.raises(ValueError):
        s.logits[0] = 5.0
