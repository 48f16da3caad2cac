"""Coverage-guided fuzzing of the safe loaders with atheris (libFuzzer for Python).

Optional and not collected by pytest (``norecursedirs`` holds "fuzz"): the
seeded mutation fuzzer in ``tests/compute/test_loader_fuzz.py`` runs in
``make test``/``make test-all``; this harness is for long runs. See README.md::

    pip install atheris
    python tests/fuzz/fuzz_loaders.py -max_total_time=600

The first byte of an input picks the suffix (``.npy``, ``.npz``, ``.pt``,
``.safetensors``, ``.csv``, ``.tsv``, ``.txt``), the rest is the file. Without
a corpus folder on the command line, one is made in a temporary folder from the
seed files of ``test_loader_fuzz`` (pickle payloads included). Each input is
opened with ``load_tensor`` (plain and by the name ``logits``),
``list_arrays`` and ``load_targets``; the same oracle as the seeded fuzzer
decides, and any other exception, a bad result, more than 2 s of CPU, a load
that needs more than 2 GiB above the baseline address space, or a pickle
payload that ran is a crash that libFuzzer reports and saves.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    import atheris
except ImportError:  # the harness stays importable (and its one-input function usable)
    atheris = None

SUFFIXES = (".npy", ".npz", ".pt", ".safetensors", ".csv", ".tsv", ".txt")
MISSING = (
    "atheris is not installed. Install it into this environment with `pip install atheris` "
    "(wheels exist for CPython 3.8-3.11 on Linux x86-64; elsewhere it builds from source and "
    "needs clang with libFuzzer), then run: python tests/fuzz/fuzz_loaders.py -max_total_time=600"
)


class _State:
    folder: pathlib.Path
    sentinel_dir: pathlib.Path


_state = _State()


def setup(folder: pathlib.Path, sentinel_dir: pathlib.Path) -> None:
    """Where inputs are written, and the folder (the cwd) a payload would write into."""
    _state.folder = folder
    _state.sentinel_dir = sentinel_dir


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point: raise on anything the loaders' contract forbids."""
    from softmax_lab.compute.errors import LoadError
    from softmax_lab.compute.loaders import list_arrays, load_targets, load_tensor
    from tests.compute.test_loader_fuzz import (
        CPU_BOUND_S,
        check_listing,
        check_loaded,
        check_message,
        check_targets,
    )

    if not data:
        return
    suffix = SUFFIXES[data[0] % len(SUFFIXES)]
    path = _state.folder / f"input{suffix}"
    path.write_bytes(data[1:])
    calls = [
        ("load_tensor", lambda: load_tensor(path), lambda v: check_loaded(v, path, None)),
        ("list_arrays", lambda: list_arrays(path), check_listing),
        ("load_targets", lambda: load_targets(path), check_targets),
    ]
    if suffix in (".npz", ".pt", ".safetensors"):
        calls.append(
            (
                "load_tensor(name='logits')",
                lambda: load_tensor(path, "logits"),
                lambda v: check_loaded(v, path, "logits"),
            )
        )
    start = time.process_time()
    for label, call, check in calls:
        try:
            value = call()
        except LoadError as exc:
            problem = check_message(exc, path.name)
        else:
            problem = check(value)
            del value
        if problem:
            raise AssertionError(f"{label}({suffix}): {problem}")
    spent = time.process_time() - start
    if spent > CPU_BOUND_S:
        raise AssertionError(f"{suffix}: the loaders took {spent:.2f} s of CPU")
    if any(_state.sentinel_dir.iterdir()):
        raise AssertionError(f"{suffix}: a pickle payload ran (the sentinel folder is not empty)")


def write_seed_corpus(corpus: pathlib.Path) -> int:
    """The seeded fuzzer's seed files, each prefixed with its suffix byte."""
    from tests.compute.test_loader_fuzz import build_seeds

    corpus.mkdir(parents=True, exist_ok=True)
    seeds = build_seeds()
    for seed in seeds:
        (corpus / seed.name).write_bytes(bytes([SUFFIXES.index(seed.suffix)]) + seed.data)
    return len(seeds)


def main(argv: list[str]) -> int:
    if atheris is None:
        print(MISSING, file=sys.stderr)
        return 2
    import os

    args = list(argv)
    if not any(a.startswith("-artifact_prefix=") for a in args):
        # Crash files go where the command was run, not into the sentinel folder below.
        args.insert(1, f"-artifact_prefix={pathlib.Path.cwd()}/")
    with atheris.instrument_imports(include=["softmax_lab"]):
        import softmax_lab.compute.loaders  # instrumented for coverage
        import softmax_lab.compute.parsing  # noqa: F401
    import torch

    from tests.compute.test_loader_fuzz import CAP_EXTRA, address_space_cap, build_seeds, warm_up

    warnings.simplefilter("error")  # as in the test suite: a warning is a failure
    torch.set_num_threads(1)
    work = pathlib.Path(tempfile.mkdtemp(prefix="loader-atheris-"))
    sentinel_dir = work / "cwd"
    sentinel_dir.mkdir()
    os.chdir(sentinel_dir)  # the payloads write a relative path: it would land here
    setup(work, sentinel_dir)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = work / "corpus"
        count = write_seed_corpus(corpus)
        print(f"seed corpus: {count} files in {corpus}", file=sys.stderr)
        args.append(str(corpus))
    warm_up(build_seeds(), work)
    with address_space_cap(CAP_EXTRA) as cap:
        print(f"address space capped at {cap / 2**30:.2f} GiB", file=sys.stderr)
        atheris.Setup(args, test_one_input)
        atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
