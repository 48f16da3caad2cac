"""A CSV may carry its targets in a 'target'/'label' column beside the class columns."""

import numpy as np
import pytest

from softmax_lab.compute.errors import LoadError
from softmax_lab.compute.loaders import load_tensor


def write(tmp_path, text, name="batch.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_label_column_becomes_targets_and_leaves_the_classes(tmp_path):
    path = write(tmp_path, "cat,dog,bird,Label\n2,1,0.1,0\n0.5,2.5,0.3,1\n1,1,3,2\n")
    loaded = load_tensor(path)
    np.testing.assert_array_equal(loaded.data, [[2, 1, 0.1], [0.5, 2.5, 0.3], [1, 1, 3]])
    assert loaded.class_names == ("cat", "dog", "bird")
    np.testing.assert_array_equal(loaded.targets, [0, 1, 2])
    assert loaded.targets.dtype == np.int64


def test_no_header_or_no_target_column_means_no_targets(tmp_path):
    assert load_tensor(write(tmp_path, "2,1,0.1\n")).targets is None
    assert load_tensor(write(tmp_path, "a,b\n1,2\n", "named.csv")).targets is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a,b,target\n1,2,0.5\n", "whole class indices"),
        ("a,b,target\n1,2,2\n", "out of range"),
        ("a,b,target\n1,2,nan\n", "whole class indices"),
        ("target,label\n0,1\n", "2 target columns"),
        ("target\n0\n1\n", "no class columns"),
    ],
)
def test_bad_target_columns_are_refused_with_the_row(tmp_path, text, fragment):
    with pytest.raises(LoadError) as info:
        load_tensor(write(tmp_path, text))
    assert fragment in str(info.value) and "batch.csv" in str(info.value)


def test_ignore_index_rows_are_allowed(tmp_path):
    loaded = load_tensor(write(tmp_path, "a,b,y\n1,2,-100\n3,4,1\n"))
    np.testing.assert_array_equal(loaded.targets, [-100, 1])
