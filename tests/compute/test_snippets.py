"""“Copy as PyTorch” (compute/snippets.py): the code runs as is and prints what the lab computes.

Every snippet is run by a real Python interpreter in a subprocess (one
interpreter for the whole batch: torch takes seconds to import; each snippet
runs in fresh globals, and one also runs alone with ``python -c``). Its
printed numbers are compared with the compute core at the precision torch
prints for the dtype. No Qt here.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.losses import cross_entropy
from softmax_lab.compute.snippets import MAX_VALUES, OPS, pytorch_snippet
from softmax_lab.compute.softmax import compute_softmax
from softmax_lab.compute.types import SoftmaxRequest

# Printed decimals (8 for float32, 4 for float16, ...) plus the dtype's own rounding.
TOLERANCE = {
    "float16": {"rtol": 2e-3, "atol": 1e-3},
    "bfloat16": {"rtol": 1.6e-2, "atol": 6e-3},
    "float32": {"rtol": 1e-6, "atol": 2e-8},
    "float64": {"rtol": 1e-13, "atol": 1e-15},
}
NUMBER = re.compile(r"-?(?:inf|nan|\d+\.?\d*(?:e[+-]?\d+)?)")
LABELS = (
    "softmax:",
    "log_softmax:",
    "log(softmax):",
    "naive exp/sum:",
    "cross-entropy:",
    "gradient d loss / d logits:",
    "cross-entropy of softmax outputs (wrong):",
)

DRIVER = r"""
import contextlib, io, json, sys
with open(sys.argv[1], encoding="utf-8") as fh:
    snippets = json.load(fh)
outputs = []
for code in snippets:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__main__"})
    outputs.append(buffer.getvalue())
print(json.dumps(outputs))
"""


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the snippet did not finish within 120 s")
    assert process.returncode == 0 and stderr == "", stderr
    return stdout


def printed(output: str) -> dict[str, np.ndarray]:
    """label -> the numbers printed after it (tensor reprs may span lines)."""
    cleaned = re.sub(r"dtype=torch\.\w+|grad_fn=<\w+>|requires_grad=True", "", output)
    sections: dict[str, np.ndarray] = {}
    label = None
    chunks: dict[str, str] = {}
    for line in cleaned.splitlines():
        head = next((lab for lab in LABELS if line.startswith(lab)), None)
        if head is not None:
            label = head
            chunks[label] = line[len(head) :]
        elif label is not None:
            chunks[label] += " " + line
    for key, chunk in chunks.items():
        sections[key] = np.array([float(v) for v in NUMBER.findall(chunk)], dtype=np.float64)
    return sections


def expected(case: dict) -> dict[str, np.ndarray]:
    """What the compute core gives for the same state (independent of the snippet text)."""
    x = np.asarray(case["logits"], dtype=np.float64)
    dtype, T, op = case["dtype"], case["temperature"], case["op"]
    dim = case.get("dim", -1)
    if op == "cross_entropy":
        target = case["target"]
        ce = cross_entropy(
            x,
            np.atleast_1d(np.asarray(target, dtype=np.int64)),
            temperature=T,
            label_smoothing=case.get("label_smoothing", 0.0),
            dtype=dtype,
            device="cpu",
        )
        return {
            "cross-entropy:": np.array([ce.loss]),
            "gradient d loss / d logits:": ce.gradient.reshape(-1),
            "cross-entropy of softmax outputs (wrong):": np.array([ce.double_softmax_loss]),
        }
    result = compute_softmax(SoftmaxRequest(x, T, dim, dtype, "cpu"))

    def layout(rows: np.ndarray) -> np.ndarray:
        return result.in_input_layout(rows).reshape(-1)

    if op == "softmax":
        return {"softmax:": layout(result.probabilities)}
    if op == "log_softmax":
        return {
            "log_softmax:": layout(result.log_probabilities),
            "log(softmax):": layout(result.log_of_softmax),
        }
    return {"naive exp/sum:": layout(result.naive_probabilities), "softmax:": layout(result.probabilities)}


def snippet(case: dict) -> str:
    return pytorch_snippet(
        case["logits"],
        case.get("names"),
        case["temperature"],
        case.get("dim", -1),
        case["dtype"],
        case["op"],
        target=case.get("target"),
        label_smoothing=case.get("label_smoothing", 0.0),
    )


INF = math.inf
CASES: list[dict] = [
    {"logits": [2.0, 1.0, 0.1], "names": ["cat", "dog", "bird"], "temperature": 1.0, "dtype": "float32", "op": "softmax"},
    {"logits": [2.0, 1.0, 0.1], "temperature": 0.5, "dtype": "float64", "op": "softmax"},
    {"logits": [1000.0, 999.0, 998.0], "temperature": 1.0, "dtype": "float16", "op": "naive_softmax"},
    {"logits": [1000.0, 999.0, 998.0], "temperature": 1.0, "dtype": "float32", "op": "naive_softmax"},
    {"logits": [12.0, 11.0, 1.0], "temperature": 3.0, "dtype": "float16", "op": "naive_softmax"},
    {"logits": [0.0, -200.0], "temperature": 1.0, "dtype": "float32", "op": "log_softmax"},
    {"logits": [0.0, -20.0], "temperature": 1.0, "dtype": "float16", "op": "log_softmax"},
    {"logits": [2.0, -INF, 1.0, -INF], "temperature": 1.0, "dtype": "float32", "op": "softmax"},
    {"logits": [INF, 1.0], "temperature": 1.0, "dtype": "float32", "op": "softmax"},
    {"logits": [math.nan, 1.0], "temperature": 2.0, "dtype": "float64", "op": "log_softmax"},
    {"logits": [2.0, 1.0, 0.1], "temperature": 1.0, "dtype": "bfloat16", "op": "softmax"},
    {"logits": [2.0, 1.0, 0.1], "names": ["it's", 'say "hi"\nnow', "back\\slash"], "temperature": 1.0, "dtype": "float32", "op": "cross_entropy", "target": 0},
    {"logits": [2.0, 1.0, 0.1], "temperature": 0.7, "dtype": "float32", "op": "cross_entropy", "target": 2, "label_smoothing": 0.1},
    {"logits": [10.0, 0.0, 0.0], "temperature": 1.0, "dtype": "float16", "op": "cross_entropy", "target": 0},
    {"logits": [2.0, 1.0, 0.1], "temperature": 1.0, "dtype": "bfloat16", "op": "cross_entropy", "target": 1},
    {"logits": [[2.0, 1.0, 0.1], [0.5, 2.5, 1.0], [1.0, 1.0, 3.0]], "temperature": 1.0, "dtype": "float32", "op": "softmax", "dim": 0},
    {"logits": [[2.0, 1.0, 0.1], [0.5, 2.5, 1.0]], "temperature": 2.0, "dtype": "float32", "op": "softmax", "dim": 1},
    {"logits": [[2.0, 1.0, 0.1], [0.5, 2.5, 1.0]], "temperature": 1.0, "dtype": "float64", "op": "cross_entropy", "dim": 1, "target": [0, 1]},
    {"logits": [[1000.0, 0.0], [1.0, 2.0]], "temperature": 1.0, "dtype": "float32", "op": "naive_softmax", "dim": 0},
]


def random_cases(count: int) -> list[dict]:
    rng = np.random.default_rng(4)
    dtypes = ["float16", "bfloat16", "float32", "float64"]
    cases = []
    for i in range(count):
        c = int(rng.integers(1, 60))  # up to 60 values: the literal wraps over lines
        logits = (rng.normal(0.0, 4.0, c)).tolist()
        op = OPS[i % len(OPS)]
        case = {
            "logits": logits,
            "temperature": float(rng.choice([1.0, 0.3, 2.5, 1e-3])),
            "dtype": dtypes[i % len(dtypes)],
            "op": op,
        }
        if op == "cross_entropy":
            case["target"] = int(rng.integers(0, c))
            case["label_smoothing"] = float(rng.choice([0.0, 0.2]))
        cases.append(case)
    return cases


def test_snippets_run_as_is_and_print_what_the_lab_computes(tmp_path):
    # One snippet alone, exactly as pasted (`python -c "$(paste)"`), and the rest in
    # one interpreter; both at once, since each pays seconds for `import torch`.
    alone = {"logits": [2.0, 1.0, 0.1], "names": ["cat", "dog", "bird"], "temperature": 0.5, "dtype": "float32", "op": "softmax"}
    single = start(["-c", snippet(alone)])
    cases = CASES + random_cases(12)
    listing = tmp_path / "snippets.json"
    listing.write_text(json.dumps([snippet(c) for c in cases]), encoding="utf-8")
    batch = start(["-c", DRIVER, str(listing)])

    p = printed(finish(single))["softmax:"]
    x = np.array([2.0, 1.0, 0.1], dtype=np.float32).astype(np.float64) / np.float32(0.5)
    reference = np.exp(x - x.max()) / np.exp(x - x.max()).sum()  # the float64 formula
    np.testing.assert_allclose(p, reference, rtol=1e-6)

    outputs = json.loads(finish(batch))
    for case, output in zip(cases, outputs, strict=True):
        got = printed(output)
        want = expected(case)
        assert set(got) == set(want), f"{case}: printed {sorted(got)}\n{output}"
        for label, values in want.items():
            assert got[label].shape == values.shape, f"{case} {label}: {output}"
            np.testing.assert_allclose(
                got[label], values, err_msg=f"{case} {label}\n{output}", **TOLERANCE[case["dtype"]]
            )


def test_the_code_reads_like_a_tutorial():
    code = snippet(CASES[0] | {"temperature": 0.5})
    lines = code.splitlines()
    assert lines[0] == "import torch"
    assert "logits = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float32)" in lines
    assert "T = 0.5  # temperature: divide the logits by it" in lines
    assert "probs = torch.softmax(logits / T, dim=-1)" in lines
    assert "# classes: 0 = 'cat', 1 = 'dog', 2 = 'bird'" in lines
    # T = 1 needs no division; infinities are float("inf").
    plain = snippet({"logits": [1.0, -INF], "temperature": 1.0, "dtype": "float16", "op": "softmax"})
    assert "T = " not in plain and "torch.softmax(logits, dim=-1)" in plain
    assert 'float("-inf")' in plain
    ce = snippet(CASES[12])
    assert "F.cross_entropy(logits / T, target, label_smoothing=0.1)" in ce
    assert "import torch.nn.functional as F" in ce
    assert max(len(line) for line in snippet(random_cases(1)[0] | {"logits": list(range(200))}).splitlines()) <= 100


def test_names_never_break_out_of_their_comment():
    code = snippet(CASES[11])
    compile(code, "<snippet>", "exec")
    comment = [line for line in code.splitlines() if line.startswith("# classes")]
    assert comment and all(line.startswith("# ") for line in comment)
    assert "\nnow" not in code


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"op": "sigmoid"}, "unknown operation"),
        ({"dtype": "float8"}, "unknown dtype"),
        ({"temperature": 0.0}, "temperature"),
        ({"dim": 1}, "dim 1 is out of range"),
        ({"dim": True}, "whole number"),
        ({"op": "cross_entropy"}, "needs a target"),
        ({"op": "cross_entropy", "target": 3}, "out of range"),
        ({"op": "cross_entropy", "target": [0, 1]}, "one class index"),
        ({"logits": [[1.0, 2.0]], "dim": 0, "op": "cross_entropy", "target": [0]}, "dim 0 has no loss"),
        ({"logits": [[[1.0]]]}, "takes \\(C,\\) or \\(N, C\\)"),
        ({"logits": np.zeros(MAX_VALUES + 1)}, "too many to paste"),
        ({"label_smoothing": 2.0}, "label smoothing"),
    ],
)
def test_bad_requests_are_refused_readably(kwargs, message):
    args = {"logits": [2.0, 1.0, 0.1], "names": None, "temperature": 1.0, "dim": -1, "dtype": "float32", "op": "softmax"} | kwargs
    with pytest.raises(InvalidInputError, match=message):
        pytorch_snippet(**args)
