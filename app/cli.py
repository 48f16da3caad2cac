"""The ``softmax-lab`` command line: open the window, or write tables without one.

``softmax-lab [FILE] [--quit-after MS]`` opens the window;
``softmax-lab table ...`` computes with the compute core and writes a table;
``softmax-lab chart ...`` draws a chart or panel into a PNG, SVG or PDF file.

This module is Qt-free and imports neither Qt nor torch at import time (the
window module and the compute functions are imported inside the functions that
need them), so ``--help`` and ``--version`` answer at once. Only ``chart``
loads Qt, on the offscreen platform: it never opens a window.

Every error a person can fix ends with exit status 2 and exactly one line on
stderr that starts ``softmax-lab: error:`` (no usage dump, no traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple, NoReturn

from softmax_lab.compute.dtypes import DEFAULT_DTYPE, DTYPE_NAMES
from softmax_lab.compute.errors import SoftmaxLabError

PROG = "softmax-lab"
EXIT_USAGE = 2
TABLE_FORMATS = ("markdown", "csv", "latex", "json")
_SUFFIX_FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".csv": "csv",
    ".tex": "latex",
    ".json": "json",
}
# Options whose value may start with "-" (negative numbers, -inf): argparse
# would take "-1,2" or "-inf" for an option, so such values are glued on as
# "--logits=-1,2" before parsing.
_NUMERIC_OPTIONS = frozenset(
    {"--logits", "--temperature", "--dim", "--target", "--targets", "--label-smoothing"}
)
_INT_LIST = re.compile(r"[\s,;]*[+-]?\d+(?:[\s,;]+[+-]?\d+)*[\s,;]*\Z", re.ASCII)


class CliError(Exception):
    """A usage problem: reported as one ``softmax-lab: error:`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become :class:`CliError` instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("softmax-lab")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------
# Parsers

_WINDOW_EPILOG = """\
commands:
  softmax-lab table ...   write a softmax table (Markdown, CSV, LaTeX, JSON) without
                          opening the window; see `softmax-lab table --help`
  softmax-lab chart ...   draw a chart or panel into a PNG, SVG or PDF file without
                          opening the window; see `softmax-lab chart --help`
"""

_TABLE_DESCRIPTION = """\
Compute softmax, log-softmax and (with targets) cross-entropy, and write them as a
table for slides and papers, or as JSON for other tools.

Logits come from FILE (.csv, .npy, .npz, .safetensors, .pt; --name picks an array
inside it) or from --logits, e.g. --logits 2,1,0.1 or --logits=-inf,0,1 (comma- or
space-separated; inf, -inf and nan are allowed).
"""

_TABLE_EPILOG = f"""\
tables:
  Each distribution (each slice along --dim) gets a table of class, logit, x - max
  (written (x - max)/T when T != 1), exp, probability and log-probability with a sum
  row, then its statistics: sum of exp, entropy in nats and bits, perplexity, max
  probability, margin, argmax, whether the naive exp/sum overflows and, with a
  target, the cross-entropy (the target class is marked). More than 20 distributions
  or more than 50 classes give one summary line per distribution instead (argmax,
  max probability, entropy, cross-entropy); --format json always has every value.

targets:
  --target K uses class K for every distribution. --targets takes one class per
  distribution, either as a list ("0,2,1") or, when the value is not a list of
  whole numbers, as a file. -100 marks a row to ignore (torch's ignore_index).
  Cross-entropy uses the same temperature; its mean skips ignored rows.

output:
  Markdown goes to standard output unless -o PATH is given. Without --format the
  format follows PATH's suffix (.md, .csv, .tex, .json), else Markdown. -o replaces
  an existing file (naming it is the confirmation; --force is accepted for scripts
  and changes nothing); the file is written to a temporary file first and renamed,
  so an interrupted write leaves the old file intact.

json:
  {{"temperature", "dtype", "device", "dim", "rows": [{{"logits", "probabilities",
  "log_probabilities", "naive_probabilities", "naive_overflow", "naive_underflow",
  "entropy", "argmax", "target", "cross_entropy"}}], "mean_cross_entropy"}} plus
  "shape" and, when a CSV header names them, "classes". Values computed in the dtype
  are the shortest decimals that read back to them in that dtype; entropy and
  cross-entropy are float64; non-finite values are the strings "nan", "inf", "-inf".

defaults: T = 1, dim = -1, {DEFAULT_DTYPE}, device auto (CUDA if available), Markdown.
exit status: 0 on success, 2 on a usage or input error (one line on stderr).
"""


def window_parser() -> argparse.ArgumentParser:
    """The parser of ``softmax-lab [FILE] [--quit-after MS] [--lecture FILE] [--present] [--version]``."""
    parser = _Parser(
        prog=PROG,
        description="Softmax Lab: explore softmax, log-softmax and cross-entropy.",
        epilog=_WINDOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="logits (CSV, npy, ...) or a session (.softmaxlab.json) to open")
    parser.add_argument(
        "--quit-after",
        metavar="MS",
        type=_milliseconds,
        help="close the window after MS milliseconds (scripted demos, smoke tests)",
    )
    parser.add_argument(
        "--lecture",
        metavar="FILE",
        help='open a lecture (a TOML file of scenes) with its scene list; "builtin" is '
        "the packaged lecture",
    )
    parser.add_argument(
        "--present",
        action="store_true",
        help="start in presenter mode: fullscreen; arrows or Page Up/Down step scenes, "
        "+/- temperature, Esc leaves",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    return parser


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _digits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 15:
        raise argparse.ArgumentTypeError(f"must be between 1 and 15, not {value}")
    return value


def table_parser() -> argparse.ArgumentParser:
    """The parser of ``softmax-lab table ...`` (without the word ``table``)."""
    parser = _Parser(
        prog=f"{PROG} table",
        description=_TABLE_DESCRIPTION,
        epilog=_TABLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_input_options(parser)
    parser.add_argument("--format", choices=TABLE_FORMATS, help="output format (markdown)")
    parser.add_argument(
        "--digits", type=_digits, default=3, metavar="N", help="decimals in tables (3)"
    )
    parser.add_argument("-o", "--output", metavar="PATH", help="write to PATH (replaces it)")
    parser.add_argument(
        "--force", action="store_true", help="accepted for scripts: -o already replaces PATH"
    )
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """The options ``table`` and ``chart`` share: the logits and how to compute."""
    parser.add_argument("file", nargs="?", metavar="FILE", help="file holding the logits")
    parser.add_argument("--logits", metavar="NUMBERS", help='logits, e.g. "2,1,0.1"')
    parser.add_argument("--name", metavar="ARRAY", help="which array in FILE (npz, safetensors)")
    parser.add_argument("--temperature", metavar="T", default="1", help="temperature > 0 (1)")
    parser.add_argument("--dim", type=int, default=-1, metavar="D", help="softmax dim (-1)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--target", type=int, metavar="K", help="target class for every row")
    group.add_argument(
        "--targets", metavar="LIST|FILE", help='one target class per row: "0,2,1" or a file'
    )
    parser.add_argument(
        "--label-smoothing", metavar="S", help="label smoothing in [0, 1] (needs targets)"
    )
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default=DEFAULT_DTYPE)
    parser.add_argument(
        "--device", default="auto", metavar="auto|cpu|cuda", help="where to compute (auto)"
    )


CHART_VIEWS = ("probabilities", "log", "logits", "gradient", "overflow", "steps", "heatmap")
"""``--view`` choices (the same as widgets/chart_export.py's EXPORT_VIEWS; kept here so
that parsing stays Qt-free)."""
CHART_THEMES = ("light", "dark")
_CHART_SUFFIXES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

_CHART_DESCRIPTION = """\
Draw one view of the lab into a PNG, SVG or PDF file, as the window draws it,
without opening a window (Qt runs on its offscreen platform).

Logits come from FILE or --logits exactly as for `softmax-lab table`; the same
options set the temperature, dim, targets, label smoothing, dtype and device.
"""

_CHART_EPILOG = """\
views:
  probabilities  bar chart of p = softmax(x / T), with the T = 1 ghost bars (default)
  log            bar chart of log_softmax(x / T)
  logits         bar chart of the logits
  gradient       d loss / d logits (needs --target or --targets)
  overflow       the overflow lab: verdict, naive-limit gauge, naive vs stable table
  steps          the step-by-step table
  heatmap        the batch heatmap (needs a 2-D FILE: N rows x C classes; --dim 1
                 normalises rows, --dim 0 columns)
  The other views draw one distribution: the slice --row R (default 0) along --dim.

size:
  --width x --height is the PNG's size in pixels (default 1600 x 1000 for charts;
  tables are sized to their content). --dpi (default 200) is written into the
  PNG and sets the physical size of SVG and PDF (width / dpi inches); text keeps
  its point size at that physical size. Light theme (white background) unless
  --theme dark.

output:
  -o PATH is required; its suffix picks the format (.png, .svg, .pdf). -o replaces
  an existing file (naming it is the confirmation; --force is accepted and changes
  nothing); the file is written to a temporary file first and renamed.

exit status: 0 on success, 2 on a usage or input error (one line on stderr).
"""


def _pixels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if not 16 <= value <= 12_000:
        raise argparse.ArgumentTypeError(f"must be between 16 and 12000 pixels, not {value}")
    return value


def _dpi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 10 <= value <= 2400:  # also rejects nan and inf
        raise argparse.ArgumentTypeError(f"must be between 10 and 2400, not {text}")
    return value


def _row(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def chart_parser() -> argparse.ArgumentParser:
    """The parser of ``softmax-lab chart ...`` (without the word ``chart``)."""
    parser = _Parser(
        prog=f"{PROG} chart",
        description=_CHART_DESCRIPTION,
        epilog=_CHART_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_input_options(parser)
    parser.add_argument(
        "--view", choices=CHART_VIEWS, default="probabilities", help="what to draw (probabilities)"
    )
    parser.add_argument(
        "--row", type=_row, default=0, metavar="R", help="which distribution of FILE to draw (0)"
    )
    parser.add_argument("--theme", choices=CHART_THEMES, default="light", help="colours (light)")
    parser.add_argument("--width", type=_pixels, metavar="PX", help="image width in pixels")
    parser.add_argument("--height", type=_pixels, metavar="PX", help="image height in pixels")
    parser.add_argument("--dpi", type=_dpi, default=200.0, metavar="N", help="dots per inch (200)")
    parser.add_argument(
        "-o", "--output", metavar="PATH", required=True, help="write to PATH (.png, .svg, .pdf)"
    )
    parser.add_argument(
        "--force", action="store_true", help="accepted for scripts: -o already replaces PATH"
    )
    return parser


def _glue_numeric_values(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    known = set(parser._option_string_actions)
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if (
            token in _NUMERIC_OPTIONS
            and i + 1 < len(argv)
            and argv[i + 1].startswith("-")
            and argv[i + 1] not in known
            and argv[i + 1] != "--"
        ):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:  # --help and --version
        raise _Exit(exc.code if isinstance(exc.code, int) else 0) from None


# ---------------------------------------------------------------------------
# Commands


def _run_window(argv: Sequence[str]) -> int:
    args = _parse(window_parser(), argv)
    # Qt loads here and only here: the table command never pays for it.
    from softmax_lab.app.gui import launch_window

    lectures: dict[str, Any] = {}
    if args.lecture is not None:
        from softmax_lab.app.lecture import load_lecture, resolve_lecture_path

        lectures["lecture"] = resolve_lecture_path(args.lecture)
        load_lecture(lectures["lecture"])  # a bad file fails here, before Qt loads: exit 2
    if args.present:
        lectures["present"] = True
    status = launch_window(file=args.file, quit_after_ms=args.quit_after, **lectures)
    return status if isinstance(status, int) else 0


def _run_table(argv: Sequence[str]) -> int:
    parser = table_parser()
    args = _parse(parser, _glue_numeric_values(argv, parser))
    fmt = args.format or _format_for(args.output)
    text = table_text(args, fmt)
    if args.output:
        from softmax_lab.compute.tables import write_text_atomic

        try:
            write_text_atomic(args.output, text)
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        _write_stdout(text)
    return 0


def _run_chart(argv: Sequence[str]) -> int:
    parser = chart_parser()
    args = _parse(parser, _glue_numeric_values(argv, parser))
    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in _CHART_SUFFIXES:
        raise CliError(
            f"-o {args.output}: a chart is saved as .png, .svg or .pdf "
            f"(got {suffix or 'no suffix'!r})"
        )
    session = chart_session(args)
    data = _render_chart(session, args, _CHART_SUFFIXES[suffix])
    from softmax_lab.compute.tables import write_bytes_atomic

    try:
        write_bytes_atomic(args.output, data)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0


def chart_session(args: argparse.Namespace) -> Any:
    """A Session holding what ``args`` (from :func:`chart_parser`) asks to draw, computed.

    Vector views get the distribution ``--row`` along ``--dim`` (and its
    target); ``heatmap`` gets the (N, C) batch. Qt-free: the session is plain data.
    """
    from pathlib import Path

    import numpy as np

    from softmax_lab.app.session import LoadedBatch, Session, default_names

    inputs = _inputs(args)
    data = np.asarray(inputs.logits, dtype=np.float64)
    if data.size == 0:
        raise CliError("the logits are empty: nothing to draw")
    session = Session()
    if args.view == "heatmap":
        from softmax_lab.compute.batch import BatchRequest, batch_statistics

        if data.ndim != 2:
            raise CliError(
                f"--view heatmap needs 2-D logits from FILE (N rows × C classes), "
                f"got shape {tuple(data.shape)}"
            )
        if args.dim not in (-2, -1, 0, 1):
            raise CliError(f"--dim {args.dim} is out of range for 2-D logits (use 1 or 0)")
        dim = args.dim % 2
        n, c = data.shape
        # One target per row, as in the window (with dim=0 the loss is the wrong one, on purpose).
        targets = _targets(args, n, c)
        result = batch_statistics(
            BatchRequest(
                data=data,
                temperature=inputs.temperature,
                dim=dim,
                dtype=args.dtype,
                device=args.device,
                targets=targets,
                label_smoothing=inputs.smoothing,
            )
        )
        path = None if args.file is None else Path(args.file)
        batch = LoadedBatch(data, path, inputs.class_names, inputs.name, targets)
        session.update(
            temperature=inputs.temperature,
            dtype=args.dtype,
            device=args.device,
            label_smoothing=inputs.smoothing,
            batch=batch,
            batch_dim=dim,
            batch_analysis=result,
        )
        return session

    from softmax_lab.compute.analysis import VectorRequest, analyse_vector

    if data.ndim == 0:
        data = data.reshape(1)
    if not -data.ndim <= args.dim < data.ndim:
        raise CliError(f"--dim {args.dim} is out of range for {data.ndim}-D logits")
    dim = args.dim % data.ndim
    rows = np.moveaxis(data, dim, -1).reshape(-1, data.shape[dim])
    if args.row >= rows.shape[0]:
        raise CliError(
            f"--row {args.row} is out of range: the logits hold {rows.shape[0]} "
            f"distribution(s) along dim {args.dim}"
        )
    vector = rows[args.row]
    names = inputs.class_names
    if names is None or dim != data.ndim - 1 or len(names) != vector.shape[0]:
        names = default_names(vector.shape[0])
    targets = _targets(args, rows.shape[0], vector.shape[0])
    target = None if targets is None else int(targets[args.row])
    if target is not None and target == -100:
        target = None  # torch's ignore_index: no loss for this row
    if args.view == "gradient" and target is None:
        raise CliError("--view gradient needs a target: give --target K or --targets")
    session.set_vector(vector, names)
    session.update(
        temperature=inputs.temperature,
        dtype=args.dtype,
        device=args.device,
        target=target,
        label_smoothing=inputs.smoothing,
    )
    analysis = analyse_vector(
        VectorRequest(
            logits=session.logits,
            temperature=session.temperature,
            dtype=session.dtype,
            device=session.device,
            target=session.target,
            label_smoothing=session.label_smoothing,
        )
    )
    session.update(analysis=analysis)
    return session


def _render_chart(session: Any, args: argparse.Namespace, fmt: str) -> bytes:
    # Qt loads here and only here. The command never shows a window: the
    # offscreen platform needs no display (a server, CI, an SSH session).
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True)
        app = QApplication(sys.argv[:1])
    from softmax_lab.widgets.chart_export import ChartOptions, render_view

    options = ChartOptions(
        view=args.view,
        fmt=fmt,
        width=args.width,
        height=args.height,
        dpi=args.dpi,
        theme=args.theme,
    )
    try:
        return render_view(session, options)
    finally:
        # Deliver the page's deleteLater while the application exists.
        app.processEvents()


def _format_for(output: str | None) -> str:
    if output:
        return _SUFFIX_FORMATS.get(os.path.splitext(output)[1].lower(), "markdown")
    return "markdown"


def table_text(args: argparse.Namespace, fmt: str) -> str:
    """Compute what ``args`` (from :func:`table_parser`) asks for and render it in ``fmt``."""
    import numpy as np

    from softmax_lab.compute.losses import cross_entropy
    from softmax_lab.compute.softmax import compute_softmax
    from softmax_lab.compute.tables import result_tables, result_to_json, write_tables
    from softmax_lab.compute.types import SoftmaxRequest

    inputs = _inputs(args)
    logits, class_names = inputs.logits, inputs.class_names
    temperature, smoothing = inputs.temperature, inputs.smoothing

    result = compute_softmax(
        SoftmaxRequest(np.asarray(logits), temperature, args.dim, args.dtype, args.device)
    )
    if result.dim != len(result.shape) - 1:
        # A CSV header names the columns; along any other dim it names nothing.
        class_names = None

    targets = _targets(args, result.num_rows, result.num_classes)
    ce = None
    if targets is not None:
        ce = cross_entropy(
            result.logits,
            targets,
            temperature=result.temperature,
            label_smoothing=smoothing,
            reduction="mean",
            dtype=result.dtype,
            device=result.device,
        )

    if fmt == "json":
        return result_to_json(result, targets=targets, ce=ce, class_names=class_names)
    tables = result_tables(
        result, class_names=class_names, ce=ce, targets=targets, digits=args.digits
    )
    return write_tables(tables, fmt)


class _Inputs(NamedTuple):
    logits: Any
    """The logits as given (an array of any shape; float64 for --logits)."""
    class_names: tuple[str, ...] | None
    temperature: float
    smoothing: float
    name: str | None
    """The array's name inside FILE, if any."""


def _inputs(args: argparse.Namespace) -> _Inputs:
    """Check the input options of ``table``/``chart`` and load the logits (not torch)."""
    from softmax_lab.compute.parsing import parse_number, parse_vector
    from softmax_lab.compute.validation import check_temperature

    if args.file is not None and args.logits is not None:
        raise CliError("give the logits either as FILE or with --logits, not both")
    if args.file is None and args.logits is None:
        raise CliError('no logits: give a FILE or --logits "2,1,0.1"')
    if args.name is not None and args.file is None:
        raise CliError("--name picks an array inside FILE; it needs a FILE")
    has_targets = args.target is not None or args.targets is not None
    if args.label_smoothing is not None and not has_targets:
        raise CliError("--label-smoothing needs --target or --targets")

    class_names: tuple[str, ...] | None = None
    name = None
    if args.logits is not None:
        logits = _labelled(parse_vector, args.logits, "--logits")
    else:
        from softmax_lab.compute.loaders import load_tensor

        loaded = load_tensor(args.file, name=args.name)
        logits = loaded.data
        class_names = loaded.class_names
        name = loaded.name
    # Checked here too so that a bad T fails before torch loads (seconds).
    temperature = check_temperature(_labelled(parse_number, args.temperature, "--temperature"))
    smoothing = (
        0.0
        if args.label_smoothing is None
        else _labelled(parse_number, args.label_smoothing, "--label-smoothing")
    )
    return _Inputs(logits, class_names, temperature, smoothing, name)


def _targets(args: argparse.Namespace, num_rows: int, num_classes: int) -> Any:
    """The --target/--targets classes, one per distribution (int64 array), or None."""
    import numpy as np

    from softmax_lab.compute.parsing import parse_int_vector

    if args.target is not None:
        return np.full(num_rows, args.target, dtype=np.int64)
    if args.targets is None:
        return None
    if _INT_LIST.match(args.targets):
        targets = _labelled(parse_int_vector, args.targets, "--targets")
    else:
        from softmax_lab.compute.loaders import load_targets

        targets = load_targets(args.targets, num_rows=num_rows, num_classes=num_classes)
    if len(targets) != num_rows:
        raise CliError(
            f"--targets gives {len(targets)} target(s) for {num_rows} "
            f"distribution(s); give one class per slice along dim {args.dim}"
        )
    return targets


def _labelled(parse: Any, text: str, option: str) -> Any:
    try:
        return parse(text)
    except SoftmaxLabError as exc:
        raise CliError(f"{option}: {exc}") from None


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        # A console that cannot show "−" or "×" still gets the numbers.
        encoding = sys.stdout.encoding or "ascii"
        sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# Entry point


def _fail(message: str) -> int:
    line = " ".join(str(message).split()) or "unknown error"
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``softmax-lab`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``table`` writes a table, ``chart`` draws a chart, anything else opens the window.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "table":
            return _run_table(args[1:])
        if args and args[0] == "chart":
            return _run_chart(args[1:])
        return _run_window(args)
    except _Exit as exc:
        return exc.code
    except (CliError, SoftmaxLabError) as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        # `softmax-lab table ... | head`: the reader left; stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
