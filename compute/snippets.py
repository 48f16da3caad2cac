"""“Copy as PyTorch”: the code that reproduces what the lab shows, runnable as is.

:func:`pytorch_snippet` writes a short, self-contained Python program: ``import
torch``, the logits as a tensor in the lab's dtype (``float("inf")`` for
infinities), the temperature, the operation along ``dim`` and ``print`` calls
for the results. Values are written with ``repr``, the shortest decimal that
reads back to the same float64, so the tensor holds exactly what the lab
computed on; PyTorch then rounds them to the dtype the same way the lab did.

Pure text: nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from softmax_lab.compute.dtypes import dtype_info
from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.validation import (
    as_logits,
    check_label_smoothing,
    check_temperature,
    normalise_dim,
)

OPS: tuple[str, ...] = ("softmax", "log_softmax", "cross_entropy", "naive_softmax")
"""What a snippet computes: softmax, log_softmax beside log(softmax), cross-entropy
with its gradient (and the double-softmax value), or the naive exp/sum beside softmax."""

MAX_VALUES = 100_000
"""Above this many logits the code would be megabytes of numbers: refused."""

_WIDTH = 88
# Decimals torch prints: enough to show every digit the dtype carries.
_PRECISION = {"float16": 4, "bfloat16": 3, "float32": 8, "float64": 16}


def _literal(value: float) -> str:
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    return repr(float(value))


def _wrap(items: list[str], indent: str) -> list[str]:
    """Items in lines of at most ``_WIDTH`` characters, each line ending with a comma."""
    lines, line = [], indent
    for item in items:
        piece = f"{item}, "
        if line.strip() and len(line) + len(piece) > _WIDTH:
            lines.append(line.rstrip())
            line = indent
        line += piece
    lines.append(line.rstrip())
    return lines


def _tensor_literal(data: np.ndarray) -> list[str]:
    """``[...]`` (1-D) or ``[[...], ...]`` (2-D) as source lines."""
    if data.ndim == 1:
        items = [_literal(v) for v in data.tolist()]
        one_line = f"[{', '.join(items)}]"
        if len(one_line) <= _WIDTH - 24:
            return [one_line]
        return ["[", *_wrap(items, "    "), "]"]
    rows = []
    for row in data.tolist():
        items = [_literal(v) for v in row]
        one_line = f"    [{', '.join(items)}],"
        if len(one_line) <= _WIDTH:
            rows.append(one_line)
        else:
            rows += ["    [", *_wrap(items, "        "), "    ],"]
    return ["[", *rows, "]"]


def _names_comment(names: Sequence[str] | None, count: int) -> list[str]:
    if not names or len(names) != count or count > 50:
        return []
    if list(names) == [f"class {i}" for i in range(count)]:
        return []
    # repr() keeps every name on one line, whatever characters it holds.
    items = [f"{i} = {name!r}" for i, name in enumerate(names)]
    lines = _wrap(items, "classes: ")
    lines[-1] = lines[-1].rstrip(",")
    return ["# " + line.strip() for line in lines]


def pytorch_snippet(
    logits: object,
    names: Sequence[str] | None,
    temperature: float,
    dim: int,
    dtype: str,
    op: str,
    target: int | Sequence[int] | None = None,
    label_smoothing: float = 0.0,
) -> str:
    """Python code that reproduces one state of the lab with PyTorch and prints the result.

    Parameters
    ----------
    logits
        ``(C,)`` or ``(N, C)`` logits (float64 values; ``inf``, ``-inf``, ``nan`` allowed).
    names
        Class names (one per class, i.e. per column of a batch) for a comment, or None.
    temperature
        T > 0; the code divides the logits by it (omitted when T = 1).
    dim
        The softmax dimension (``-1`` for one vector; ``1`` or ``0`` for a batch).
    dtype
        ``float16``, ``bfloat16``, ``float32`` or ``float64``.
    op
        One of :data:`OPS`.
    target
        The target class (an int for one vector, one per row for a batch); needed by
        ``cross_entropy``.
    label_smoothing
        Passed to ``F.cross_entropy``.

    Returns
    -------
    str
        A complete program: ``python -c "$(paste)"`` runs it.

    Raises
    ------
    InvalidInputError
        Unknown op or dtype, bad dim, T or target, or too many values to paste.
    """
    if op not in OPS:
        raise InvalidInputError(f"unknown operation {op!r}; choose one of {', '.join(OPS)}")
    dtype_info(dtype)  # validates the name
    t = check_temperature(temperature)
    data = as_logits(logits)
    if data.ndim > 2:
        raise InvalidInputError(f"a snippet takes (C,) or (N, C) logits, got shape {data.shape}")
    if data.size > MAX_VALUES:
        raise InvalidInputError(
            f"{data.size:,} logits are too many to paste as code (at most {MAX_VALUES:,}); "
            "save them to a file and load it with torch.load or numpy instead"
        )
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise InvalidInputError(f"dim must be a whole number such as -1 or 1, not {dim!r}")
    normalise_dim(int(dim), data.ndim)  # readable error for a dim that does not exist
    dim = int(dim)
    columns = data.shape[-1]
    eps = check_label_smoothing(label_smoothing)

    target_lines: list[str] = []
    if op == "cross_entropy":
        if data.ndim == 2 and normalise_dim(dim, 2) != 1:
            raise InvalidInputError(
                "cross-entropy takes (N, C) logits with the classes along dim 1; dim 0 has no loss"
            )
        target_lines = _target_lines(target, data, names)

    scaled = "logits" if t == 1.0 else "logits / T"
    what = {
        "softmax": "softmax",
        "log_softmax": "log_softmax (and the log of softmax)",
        "cross_entropy": "cross-entropy and its gradient",
        "naive_softmax": "the naive exp / sum (and softmax)",
    }[op]
    shape = "×".join(str(s) for s in data.shape)
    t_text = "" if t == 1.0 else f" at T = {t!r}"
    lines = ["import torch"]
    if op == "cross_entropy":
        lines.append("import torch.nn.functional as F")
    lines += [
        "",
        f"# Softmax Lab: {what} of {shape} logits{t_text} along dim {dim}, in {dtype}.",
        *_names_comment(names, columns),
        f"torch.set_printoptions(precision={_PRECISION[dtype]})",
    ]
    tensor = _tensor_literal(data)
    grad = ", requires_grad=True" if op == "cross_entropy" else ""
    tensor[0] = f"logits = torch.tensor({tensor[0]}"
    tensor[-1] += f", dtype=torch.{dtype}{grad})"
    lines += tensor
    if t != 1.0:
        lines.append(f"T = {t!r}  # temperature: divide the logits by it")
    lines += target_lines
    lines += _op_lines(op, scaled, dim, eps)
    return "\n".join(lines) + "\n"


def _target_lines(
    target: int | Sequence[int] | None, data: np.ndarray, names: Sequence[str] | None
) -> list[str]:
    classes = data.shape[-1]
    if target is None:
        raise InvalidInputError("cross-entropy needs a target class")
    if data.ndim == 1:
        if isinstance(target, bool) or not isinstance(target, int | np.integer):
            raise InvalidInputError(f"the target must be one class index, not {target!r}")
        k = int(target)
        if not 0 <= k < classes:
            raise InvalidInputError(f"target class {k} is out of range: there are {classes} classes")
        label = ""
        if names is not None and len(names) == classes:
            label = f"  # class {k} = {names[k]!r}"
        return [f"target = torch.tensor({k}){label}"]
    if isinstance(target, int | np.integer):
        targets = [int(target)] * data.shape[0]
    else:
        targets = [int(v) for v in target]
    if len(targets) != data.shape[0]:
        raise InvalidInputError(f"{len(targets)} targets for {data.shape[0]} rows; give one per row")
    bad = [k for k in targets if not (0 <= k < classes or k == -100)]
    if bad:
        raise InvalidInputError(f"target class {bad[0]} is out of range: there are {classes} classes")
    return [f"target = torch.tensor([{', '.join(str(k) for k in targets)}])  # one class per row"]


def _op_lines(op: str, scaled: str, dim: int, eps: float) -> list[str]:
    if op == "softmax":
        return [
            f"probs = torch.softmax({scaled}, dim={dim})",
            "",
            'print("softmax:", probs)',
        ]
    if op == "log_softmax":
        return [
            f"log_probs = torch.log_softmax({scaled}, dim={dim})",
            f"log_of_softmax = torch.log(torch.softmax({scaled}, dim={dim}))  # -inf where p underflows",
            "",
            'print("log_softmax:", log_probs)',
            'print("log(softmax):", log_of_softmax)',
        ]
    if op == "naive_softmax":
        z = "logits" if scaled == "logits" else "z"
        lines = [] if z == "logits" else [f"z = {scaled}"]
        return [
            *lines,
            f"naive = torch.exp({z}) / torch.exp({z}).sum(dim={dim}, keepdim=True)  # overflows",
            f"stable = torch.softmax({z}, dim={dim})  # subtracts the max first",
            "",
            'print("naive exp/sum:", naive)',
            'print("softmax:", stable)',
        ]
    smoothing = f", label_smoothing={eps!r}"
    return [
        f"loss = F.cross_entropy({scaled}, target{smoothing})",
        "loss.backward()",
        "# The classic mistake: softmax outputs fed to the loss as if they were logits.",
        f"wrong = F.cross_entropy(torch.softmax({scaled}, dim=-1), target{smoothing})",
        "",
        'print("cross-entropy:", loss.item())',
        'print("gradient d loss / d logits:", logits.grad)',
        'print("cross-entropy of softmax outputs (wrong):", wrong.item())',
    ]
