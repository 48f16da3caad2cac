"""Tables of softmax results for slides and papers, and the JSON export contract.

Nothing here computes softmax: every function formats a :class:`SoftmaxResult`
(and optionally a :class:`CrossEntropyResult`) that was computed elsewhere, so
the window and ``softmax-lab table`` show the same numbers.

Two layers:

* data: :func:`probability_table`, :func:`steps_table`, :func:`stats_table`,
  :func:`summary_table` and :func:`result_tables` build :class:`Table` values
  (title, header, rows of cells, footer rows, notes). Number cells are
  :class:`Num` (value plus display text), so each writer decides how a number
  looks: CSV writes it unquoted and never formula-guards it, LaTeX puts
  negatives and infinities in math mode.
* text: :func:`write_table` / :func:`write_tables` render tables as Markdown,
  CSV, LaTeX (booktabs) or JSON; :func:`result_to_json` writes the JSON
  contract other tools read; :func:`write_text_atomic` saves any of them
  (:func:`write_bytes_atomic` saves binary files: exported PNG, SVG, PDF).

Numbers in the JSON contract
----------------------------
Element-wise arrays (logits, probabilities, log-probabilities, naive
probabilities) hold values computed in the chosen dtype; each is written as the
shortest decimal that reads back to the same value in that dtype (float16
``0.659``, not ``0.6591796875``). numpy has no bfloat16, so a bfloat16 value is
written as the shortest decimal that, rounded to float32 and then to bfloat16
(the path ``torch.tensor(x, dtype=torch.bfloat16)`` takes), gives it back.
Entropy and cross-entropy are reductions the lab computes in float64 from those
dtype values, so they are written at float64 precision. Non-finite values are
the strings ``"nan"``, ``"inf"`` and ``"-inf"``: the text is strict JSON.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from softmax_lab.compute.errors import InvalidInputError
from softmax_lab.compute.types import CrossEntropyResult, SoftmaxResult

FORMATS: tuple[str, ...] = ("markdown", "csv", "latex", "json")
"""Formats :func:`write_table` and :func:`write_tables` accept."""

DEFAULT_DIGITS = 3
"""Decimals shown in tables: 0.659, 0.242, 0.099 for the tutorial example."""

MAX_FULL_ROWS = 20
MAX_FULL_CLASSES = 50
"""Above either limit :func:`result_tables` writes one summary line per row."""


# ---------------------------------------------------------------------------
# Table data


@dataclass(frozen=True)
class Num:
    """A number cell: the value and the text tables show for it."""

    value: float | int
    text: str


Cell = str | Num
"""A table cell: plain text (class names, labels) or a :class:`Num`."""


@dataclass(frozen=True)
class Table:
    """One table: what every writer needs and nothing about how it looks.

    ``footer`` rows (sums, means) are set apart from ``rows`` by a rule in
    LaTeX; ``align`` holds ``"l"`` or ``"r"`` per column.
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    footer: tuple[tuple[Cell, ...], ...] = ()
    notes: tuple[str, ...] = ()
    align: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        width = len(self.header)
        for row in (*self.rows, *self.footer):
            if len(row) != width:
                raise ValueError(f"row {row!r} has {len(row)} cells; the header has {width}")
        if self.align and (len(self.align) != width or set(self.align) - {"l", "r"}):
            raise ValueError(f"align must give 'l' or 'r' for each of {width} columns")

    @property
    def alignment(self) -> tuple[str, ...]:
        """``align``, or left for the first column and right for the others."""
        return self.align or ("l",) + ("r",) * (len(self.header) - 1)


def format_number(value: float, digits: int = DEFAULT_DIGITS) -> str:
    """Display text for a computed number: ``digits`` decimals, scientific when tiny or huge.

    Exact zero is ``"0"`` (a probability that underflowed, a masked class), so it
    is never confused with a small value rounded to ``0.000``.
    """
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) < 10.0**-digits or abs(v) >= 1e6:
        return f"{v:.{max(digits - 1, 0)}e}"
    return f"{v:.{digits}f}"


def format_exact(value: float, dtype: str) -> str:
    """Shortest decimal that reads back to ``value`` in ``dtype``; ``nan``/``inf``/``-inf`` as text.

    ``value`` must already be representable in ``dtype`` (the result arrays are).
    """
    return format_exact_array(np.array([value], dtype=np.float64), dtype)[0]


def format_exact_array(values: np.ndarray, dtype: str) -> list[str]:
    """:func:`format_exact` for every element of ``values`` (fast enough for LLM vocabularies)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if dtype == "float64":
        texts = [repr(v) for v in flat.tolist()]
    elif dtype in ("float32", "float16"):
        # numpy prints its own float types as the shortest round-tripping decimal.
        with np.errstate(over="ignore"):
            texts = [str(v) for v in flat.astype(dtype)]
    elif dtype == "bfloat16":
        # Only 65536 bfloat16 values exist: format each distinct one once. Bits,
        # not values, tell -0.0 from 0.0.
        bits, inverse = np.unique(flat.view(np.uint64), return_inverse=True)
        distinct = _bfloat16_texts(bits.view(np.float64))
        texts = [distinct[i] for i in inverse.reshape(-1).tolist()]
    else:
        raise InvalidInputError(f"unknown dtype {dtype!r}")
    # Most texts are already positional with a ".": skip the call for them.
    return [t if "." in t and "e" not in t else _positional(t) for t in texts]


def _bfloat16_texts(flat: np.ndarray) -> list[str]:
    # numpy has no bfloat16: try 1, 2, ... significant digits and keep the first
    # that rounds back to the value (8 bits of precision never need more than 4;
    # 9 always round-trip through float32).
    texts = ["nan" if math.isnan(v) else str(v) for v in flat.tolist()]
    todo = np.flatnonzero(np.isfinite(flat))
    for precision in range(1, 10):
        if todo.size == 0:
            break
        candidates = [f"{v:.{precision}g}" for v in flat[todo].tolist()]
        parsed = np.array([float(c) for c in candidates], dtype=np.float64)
        done = _round_bfloat16(parsed) == flat[todo]
        for i in np.flatnonzero(done).tolist():
            texts[int(todo[i])] = candidates[i]
        todo = todo[~done]
    return texts


def _positional(text: str) -> str:
    # numpy writes float16 60000 as "6e+04" and %g writes 1000 as "1e+03"; like
    # Python's repr, use the exponent only outside 1e-4 <= |x| < 1e16. Always
    # keep a "." or an exponent so JSON readers see a float.
    if text in ("inf", "-inf", "nan"):
        return text
    if "e" in text:
        exponent = int(text.split("e")[1])
        if -4 <= exponent < 16:
            text = format(Decimal(text), "f")
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _round_bfloat16(x: np.ndarray) -> np.ndarray:
    # float64 -> float32 -> bfloat16 (round to nearest even on the top 16 bits),
    # the path torch.tensor(x, dtype=torch.bfloat16) takes. uint64 holds the
    # carry of the rounding add.
    with np.errstate(over="ignore"):
        bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def _num(value: float, digits: int) -> Num:
    return Num(float(value), format_number(value, digits))


def _logit(value: float, dtype: str) -> Num:
    # Logits are shown as stored, shortest form: "2" and "0.1", not "2.000".
    text = format_exact(value, dtype)
    if text.endswith(".0"):
        text = text[:-2]
    return Num(float(value), text)


def _int(value: int) -> Num:
    return Num(int(value), str(int(value)))


def _names_known(result: SoftmaxResult, class_names: Sequence[str] | None) -> bool:
    return class_names is not None and len(class_names) == result.num_classes


def _class_labels(result: SoftmaxResult, class_names: Sequence[str] | None) -> list[str]:
    if class_names is not None and _names_known(result, class_names):
        return [str(name) for name in class_names]
    return [str(k) for k in range(result.num_classes)]


def _argmax_cell(argmax: int, labels: list[str], named: bool) -> Cell:
    if argmax < 0:
        return "none (NaN)"
    return labels[argmax] if named else _int(argmax)


def _settings(result: SoftmaxResult) -> str:
    return f"T = {_plain(result.temperature)}, {result.dtype} on {result.device}"


def _plain(value: float) -> str:
    return format_exact(value, "float64").removesuffix(".0")


def row_label(result: SoftmaxResult, row: int) -> str:
    """Where row ``row`` comes from in the input, e.g. ``x[1, :, 0]`` (``:`` marks dim)."""
    others = [s for i, s in enumerate(result.shape) if i != result.dim]
    index = [str(int(i)) for i in np.unravel_index(row, others)] if others else []
    index.insert(result.dim, ":")
    return f"x[{', '.join(index)}]"


def _title(result: SoftmaxResult, row: int) -> str:
    if len(result.shape) == 1:
        return f"softmax of {result.num_classes} logits ({_settings(result)})"
    return f"row {row}: {row_label(result, row)} ({_settings(result)})"


def _check_row(result: SoftmaxResult, row: int) -> int:
    if not 0 <= row < result.num_rows:
        raise InvalidInputError(f"row {row} is out of range: the result has {result.num_rows} rows")
    return row


def probability_table(
    result: SoftmaxResult,
    row: int = 0,
    *,
    class_names: Sequence[str] | None = None,
    target: int | None = None,
    digits: int = DEFAULT_DIGITS,
) -> Table:
    """The slide table for one distribution: class, logit, x − max, exp, probability, log-probability.

    With T ≠ 1 the shifted columns read ``(x − max)/T``. The footer sums exp and
    probability; ``target`` (a class index) is marked ``(target)`` in the class column.
    """
    _check_row(result, row)
    shift = "x − max" if result.temperature == 1.0 else "(x − max)/T"
    header = ("class", "logit", shift, f"exp({shift})", "probability", "log-probability")
    labels = _class_labels(result, class_names)
    rows = []
    for k in range(result.num_classes):
        label = labels[k] + (" (target)" if target is not None and k == target else "")
        rows.append(
            (
                label,
                _logit(result.logits[row, k], result.dtype),
                _num(result.shifted[row, k], digits),
                _num(result.exp_shifted[row, k], digits),
                _num(result.probabilities[row, k], digits),
                _num(result.log_probabilities[row, k], digits),
            )
        )
    with np.errstate(all="ignore"):
        total_p = float(np.sum(result.probabilities[row], dtype=np.float64))
    footer = (("sum", "", "", _num(result.sum_exp[row], digits), _num(total_p, digits), ""),)
    return Table(_title(result, row), header, tuple(rows), footer)


def steps_table(
    result: SoftmaxResult,
    row: int = 0,
    *,
    class_names: Sequence[str] | None = None,
    digits: int = DEFAULT_DIGITS,
) -> Table:
    """Every step of stable and naive softmax for one row, with fixed columns.

    Columns: class, x, x/T, (x − max)/T, its exp, p, log p, the naive exp(x/T)
    and the naive p. The footer holds both sums (the stable one and the naive one).
    """
    _check_row(result, row)
    header = (
        "class",
        "x",
        "x/T",
        "(x − max)/T",
        "exp((x − max)/T)",
        "p",
        "log p",
        "naive exp(x/T)",
        "naive p",
    )
    labels = _class_labels(result, class_names)
    rows = tuple(
        (
            labels[k],
            _logit(result.logits[row, k], result.dtype),
            _num(result.scaled[row, k], digits),
            _num(result.shifted[row, k], digits),
            _num(result.exp_shifted[row, k], digits),
            _num(result.probabilities[row, k], digits),
            _num(result.log_probabilities[row, k], digits),
            _num(result.naive_exp[row, k], digits),
            _num(result.naive_probabilities[row, k], digits),
        )
        for k in range(result.num_classes)
    )
    footer = (
        (
            "sum",
            "",
            "",
            "",
            _num(result.sum_exp[row], digits),
            "",
            "",
            _num(result.naive_sum[row], digits),
            "",
        ),
    )
    return Table(_title(result, row), header, rows, footer)


def _naive_status(result: SoftmaxResult, row: int) -> str:
    if result.overflow.naive_overflow[row]:
        return "overflows"
    if result.overflow.naive_underflow[row]:
        return "underflows"
    return "ok"


def _ce_label(ce: CrossEntropyResult, target: int | None) -> str:
    detail = f"target {target}" if target is not None else "target"
    if ce.label_smoothing:
        detail += f", label smoothing {_plain(ce.label_smoothing)}"
    return f"cross-entropy ({detail})"


def _ce_cell(ce: CrossEntropyResult, row: int, digits: int) -> Cell:
    return "ignored" if ce.ignored[row] else _num(ce.per_row[row], digits)


def stats_table(
    result: SoftmaxResult,
    row: int = 0,
    *,
    ce: CrossEntropyResult | None = None,
    target: int | None = None,
    class_names: Sequence[str] | None = None,
    digits: int = DEFAULT_DIGITS,
) -> Table:
    """Statistics of one row: sum of exp, entropy (nats, bits), perplexity, max p, margin, argmax.

    Adds the naive exp/sum status and, with ``ce``, the row's cross-entropy
    (``ignored`` where the target is ``ignore_index``).
    """
    _check_row(result, row)
    s = result.stats
    shift = "x − max" if result.temperature == 1.0 else "(x − max)/T"
    argmax = int(s.argmax[row])
    labels = _class_labels(result, class_names)
    argmax_cell = _argmax_cell(argmax, labels, _names_known(result, class_names))
    rows: list[tuple[Cell, Cell]] = [
        (f"sum of exp({shift})", _num(result.sum_exp[row], digits)),
        ("entropy (nats)", _num(s.entropy_nats[row], digits)),
        ("entropy (bits)", _num(s.entropy_bits[row], digits)),
        ("perplexity", _num(s.perplexity[row], digits)),
        ("max probability", _num(s.max_probability[row], digits)),
        ("margin (top-1 − top-2)", _num(s.margin[row], digits)),
        ("argmax", argmax_cell),
        ("naive exp/sum", _naive_status(result, row)),
    ]
    if ce is not None:
        rows.append((_ce_label(ce, target), _ce_cell(ce, row, digits)))
    title = "statistics" if result.num_rows == 1 else f"statistics, row {row}"
    return Table(title, ("statistic", "value"), tuple(rows))


def summary_table(
    result: SoftmaxResult,
    *,
    ce: CrossEntropyResult | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    digits: int = DEFAULT_DIGITS,
) -> Table:
    """One line per row: argmax, max probability, entropy and (with ``ce``) target and cross-entropy.

    The footer holds the mean cross-entropy (torch's ``mean``: over rows that
    are not ignored).
    """
    s = result.stats
    labels = _class_labels(result, class_names)
    header: tuple[str, ...] = ("row", "argmax", "max probability", "entropy (nats)")
    if ce is not None:
        header += ("target", "cross-entropy")
    rows = []
    for i in range(result.num_rows):
        argmax = int(s.argmax[i])
        cells: tuple[Cell, ...] = (
            _int(i),
            _argmax_cell(argmax, labels, _names_known(result, class_names)),
            _num(s.max_probability[i], digits),
            _num(s.entropy_nats[i], digits),
        )
        if ce is not None:
            target_cell: Cell = _int(int(targets[i])) if targets is not None else ""
            cells += (target_cell, _ce_cell(ce, i, digits))
        rows.append(cells)
    footer: tuple[tuple[Cell, ...], ...] = ()
    if ce is not None:
        footer = (("mean", "", "", "", "", _num(ce.loss, digits)),)
    title = f"summary: {result.num_rows} rows × {result.num_classes} classes ({_settings(result)})"
    return Table(title, header, tuple(rows), footer)


def result_tables(
    result: SoftmaxResult,
    *,
    class_names: Sequence[str] | None = None,
    ce: CrossEntropyResult | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    digits: int = DEFAULT_DIGITS,
) -> tuple[Table, ...]:
    """The document ``softmax-lab table`` writes.

    Up to :data:`MAX_FULL_ROWS` rows and :data:`MAX_FULL_CLASSES` classes: per
    row a :func:`probability_table` and a :func:`stats_table` (plus the mean
    cross-entropy of a batch). Larger inputs: one :func:`summary_table` with a
    note saying why. The result's own notes (NaN, inf logits) go on the first table.
    """
    if targets is not None and len(targets) != result.num_rows:
        raise InvalidInputError(f"got {len(targets)} targets for {result.num_rows} rows")
    notes = tuple(result.notes)
    if result.num_rows > MAX_FULL_ROWS or result.num_classes > MAX_FULL_CLASSES:
        table = summary_table(
            result, ce=ce, targets=targets, class_names=class_names, digits=digits
        )
        why = (
            f"{result.num_rows} rows × {result.num_classes} classes is more than "
            f"{MAX_FULL_ROWS} rows or {MAX_FULL_CLASSES} classes, so each row is one summary "
            "line; the JSON format has every value."
        )
        return (_with_notes(table, (why, *notes)),)
    tables: list[Table] = []
    for i in range(result.num_rows):
        target = int(targets[i]) if targets is not None else None
        tables.append(
            probability_table(result, i, class_names=class_names, target=target, digits=digits)
        )
        tables.append(
            stats_table(result, i, ce=ce, target=target, class_names=class_names, digits=digits)
        )
    if ce is not None and result.num_rows > 1:
        label = f"mean cross-entropy over {int((~ce.ignored).sum())} rows (ignored rows skipped)"
        tables.append(Table("batch", ("statistic", "value"), ((label, _num(ce.loss, digits)),)))
    if notes:
        tables[0] = _with_notes(tables[0], notes)
    return tuple(tables)


def _with_notes(table: Table, notes: tuple[str, ...]) -> Table:
    return Table(
        table.title, table.header, table.rows, table.footer, table.notes + notes, table.align
    )


# ---------------------------------------------------------------------------
# Writers


def write_table(table: Table, fmt: str) -> str:
    """Render one table as ``markdown``, ``csv``, ``latex`` or ``json`` text (ending in a newline)."""
    return write_tables((table,), fmt)


def write_tables(tables: Iterable[Table], fmt: str) -> str:
    """Render several tables as one document in ``fmt`` (see :data:`FORMATS`)."""
    tables = tuple(tables)
    if fmt == "markdown":
        return "\n".join(_markdown(t) for t in tables)
    if fmt == "csv":
        return "\n".join(_csv(t) for t in tables)
    if fmt == "latex":
        preamble = "% Softmax Lab tables: \\usepackage{booktabs} in the preamble\n"
        return preamble + "\n".join(_latex(t) for t in tables)
    if fmt == "json":
        data = [_table_json(t) for t in tables]
        return json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False) + "\n"
    raise InvalidInputError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _text(cell: Cell) -> str:
    return cell.text if isinstance(cell, Num) else cell


# Markdown -------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _markdown(table: Table) -> str:
    body = [
        [_md_escape(_text(c)) for c in row] for row in (table.header, *table.rows, *table.footer)
    ]
    widths = [max(3, *(len(r[j]) for r in body)) for j in range(len(table.header))]
    align = table.alignment

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if a == "r" else c.ljust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ("-" * (w - 1) + ":") if a == "r" else (":" + "-" * (w - 1))
        for w, a in zip(widths, align, strict=True)
    ]
    out = []
    if table.title:
        out += [f"### {_md_escape(table.title)}", ""]
    out.append(line(body[0]))
    out.append("| " + " | ".join(rule) + " |")
    out += [line(r) for r in body[1:]]
    if table.notes:
        out.append("")
        out += [f"> {_md_escape(n)}" for n in table.notes]
    return "\n".join(out) + "\n"


# CSV ------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_guard(text: str) -> str:
    """Prefix a text cell that a spreadsheet would run as a formula with ``'`` (OWASP).

    Only for text (class names, titles, notes): number cells such as ``-1.5``
    and ``-inf`` are written as they are.
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def cells(row: Sequence[Cell]) -> list[str]:
        return [c.text if isinstance(c, Num) else csv_guard(c) for c in row]

    if table.title:
        writer.writerow([csv_guard(table.title)])
    writer.writerow(cells(table.header))
    writer.writerows(cells(r) for r in (*table.rows, *table.footer))
    for note in table.notes:
        writer.writerow([csv_guard(note)])
    return buffer.getvalue()


# LaTeX ----------------------------------------------------------------------

_LATEX_SPECIALS = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    # Characters our own labels and notes use, which plain LaTeX cannot typeset.
    "−": "$-$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIALS))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials (``& % $ # _ { } ~ ^ \\``) so ``text`` prints as written."""
    return _LATEX_PATTERN.sub(lambda m: _LATEX_SPECIALS[m.group()], text)


def _latex_number(text: str) -> str:
    if text == "nan":
        return "NaN"
    if text in ("inf", "-inf"):
        return "$" + text.replace("inf", r"\infty") + "$"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"${mantissa} \\times 10^{{{int(exponent)}}}$"
    return f"${text}$" if text.startswith("-") else text


def _latex(table: Table) -> str:
    def line(row: Sequence[Cell]) -> str:
        return (
            " & ".join(
                _latex_number(c.text) if isinstance(c, Num) else latex_escape(c) for c in row
            )
            + r" \\"
        )

    out = [r"\begin{table}[ht]", r"\centering"]
    if table.title:
        out.append(rf"\caption{{{latex_escape(table.title)}}}")
    out.append(rf"\begin{{tabular}}{{{''.join(table.alignment)}}}")
    out.append(r"\toprule")
    out.append(line(table.header))
    out.append(r"\midrule")
    out += [line(r) for r in table.rows]
    if table.footer:
        out.append(r"\midrule")
        out += [line(r) for r in table.footer]
    out.append(r"\bottomrule")
    out.append(r"\end{tabular}")
    for note in table.notes:
        out.append(rf"\par\smallskip{{\footnotesize {latex_escape(note)}}}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# JSON (tables) ----------------------------------------------------------------


def _json_value(cell: Cell) -> object:
    if not isinstance(cell, Num):
        return cell
    v = cell.value
    if isinstance(v, float) and not math.isfinite(v):
        return cell.text
    return v


def _table_json(table: Table) -> dict[str, object]:
    return {
        "title": table.title,
        "header": list(table.header),
        "rows": [[_json_value(c) for c in r] for r in table.rows],
        "footer": [[_json_value(c) for c in r] for r in table.footer],
        "notes": list(table.notes),
    }


# ---------------------------------------------------------------------------
# The JSON contract


_NON_FINITE = frozenset({"nan", "inf", "-inf"})


def _json_literal(text: str) -> str:
    return f'"{text}"' if text in _NON_FINITE else text


def _json_number(value: float, dtype: str) -> str:
    return _json_literal(format_exact(value, dtype))


def _json_reduced(value: float) -> str:
    return _json_number(value, "float64")


def result_to_json(
    result: SoftmaxResult,
    *,
    targets: Sequence[int] | np.ndarray | None = None,
    ce: CrossEntropyResult | None = None,
    class_names: Sequence[str] | None = None,
) -> str:
    """The JSON export contract: settings, one object per row, the mean cross-entropy.

    Keys: ``temperature``, ``dtype``, ``device`` (resolved), ``dim`` (as the
    user gave it), ``shape``, ``rows`` and ``mean_cross_entropy``; each row has
    ``logits``, ``probabilities``, ``log_probabilities``, ``naive_probabilities``,
    ``naive_overflow``, ``naive_underflow``, ``entropy`` (nats), ``argmax``
    (``null`` for a NaN row), ``target`` and ``cross_entropy`` (``null`` without
    targets and for ignored rows). ``classes`` is added when class names are known.

    Parameters
    ----------
    result
        The computed softmax.
    targets
        One class index per row (``ignore_index`` allowed), or ``None``.
    ce
        The cross-entropy of ``result.logits`` against ``targets`` (``reduction="mean"``).
    class_names
        Names of the classes, written only when there is one per class.
    """
    if (targets is None) != (ce is None):
        raise InvalidInputError("give both targets and their cross-entropy, or neither")
    if targets is not None and len(targets) != result.num_rows:
        raise InvalidInputError(f"got {len(targets)} targets for {result.num_rows} rows")
    dtype = result.dtype

    def array(values: np.ndarray) -> str:
        texts = format_exact_array(values, dtype)
        return "[" + ", ".join([t if t not in _NON_FINITE else f'"{t}"' for t in texts]) + "]"

    rows = []
    for i in range(result.num_rows):
        argmax = int(result.stats.argmax[i])
        if ce is not None and targets is not None:
            target = str(int(targets[i]))
            loss = "null" if ce.ignored[i] else _json_reduced(ce.per_row[i])
        else:
            target = loss = "null"
        fields = [
            ("logits", array(result.logits[i])),
            ("probabilities", array(result.probabilities[i])),
            ("log_probabilities", array(result.log_probabilities[i])),
            ("naive_probabilities", array(result.naive_probabilities[i])),
            ("naive_overflow", _json_bool(result.overflow.naive_overflow[i])),
            ("naive_underflow", _json_bool(result.overflow.naive_underflow[i])),
            ("entropy", _json_reduced(result.stats.entropy_nats[i])),
            ("argmax", "null" if argmax < 0 else str(argmax)),
            ("target", target),
            ("cross_entropy", loss),
        ]
        rows.append("    {\n" + ",\n".join(f'      "{k}": {v}' for k, v in fields) + "\n    }")
    top = [
        ("temperature", _json_reduced(result.temperature)),
        ("dtype", json.dumps(dtype)),
        ("device", json.dumps(result.device)),
        ("dim", str(int(result.request.dim))),
        ("shape", json.dumps(list(result.shape))),
    ]
    if class_names is not None and _names_known(result, class_names):
        top.append(("classes", json.dumps([str(c) for c in class_names], ensure_ascii=False)))
    top.append(("rows", "[\n" + ",\n".join(rows) + "\n  ]" if rows else "[]"))
    top.append(("mean_cross_entropy", "null" if ce is None else _json_reduced(ce.loss)))
    return "{\n" + ",\n".join(f'  "{k}": {v}' for k, v in top) + "\n}\n"


def _json_bool(value: object) -> str:
    return "true" if bool(value) else "false"


# ---------------------------------------------------------------------------
# Saving


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half of either.

    Writes a temporary file in the same directory, flushes it to disk, then
    ``os.replace`` s it over ``path`` (replacing an existing file). An existing
    file keeps its permission bits; a new one gets the usual ones (the umask
    applies). On any failure the old file is intact and the temporary is removed.

    Raises
    ------
    OSError
        The directory does not exist or is not writable, the disk is full, ...
    """
    write_bytes_atomic(path, text.encode(encoding))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` (a PNG, a PDF, ...) to ``path`` atomically, as :func:`write_text_atomic` does.

    Raises
    ------
    OSError
        The directory does not exist or is not writable, the disk is full, ...
    """
    # Write through a symlink rather than replacing the link itself.
    target = Path(os.path.realpath(os.fspath(path)))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open directories.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
