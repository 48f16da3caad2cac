"""Softmax Lab's benchmark suite: ``make bench`` (``python -m tests.benchmarks``).

Not part of ``make test``: pytest's ``norecursedirs`` skips this folder, and no
timing threshold is ever asserted. Every figure is a median over repeated runs
with its min and max; every comparison is a ratio of two things measured in the
same run, interleaved round by round, because the machines are shared and noisy
and absolute times do not travel. One table is printed and the same data is
written as JSON (``bench-results.json`` at the repository root by default).

Modules, one per benchmark:

- :mod:`.interaction`: temperature change -> chart repainted, in the real window;
- :mod:`.batch_stats`: batch statistics at a new temperature vs torch and the memory-read limit;
- :mod:`.startup`: process start -> first painted window vs a bare PySide6 window;
- :mod:`.loading`: a 1 GiB ``.npy``/``.safetensors`` -> first heatmap shown, time and peak RSS;
- :mod:`.cuda`: batch softmax/log-softmax/cross-entropy vs a device-to-device copy;
- :mod:`.vector_analysis`: what one vector's analysis costs, and where it goes (cProfile).
"""
