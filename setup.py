"""The one compiled part: the fused float32 row pass of batch statistics.

Everything else is declared in pyproject.toml. The extension is optional: where
it cannot be built (no C compiler, an unsupported one), pip still installs the
project and compute/batch.py runs its torch kernels instead.
"""

import sys

from setuptools import Extension, setup

# GCC/clang flags. -ffp-contract=fast: the polynomial's multiply-adds become FMAs
# where the CPU has them (ISO C modes turn contraction off). Never -ffast-math: it
# would fold away the rounding step (t + M) - M. -Wno-psabi: the note that 32-byte
# vectors are passed differently with AVX only concerns static functions here.
flags = (
    []
    if sys.platform == "win32"
    else ["-O3", "-std=c11", "-ffp-contract=fast", "-Wall", "-Wextra", "-Wno-psabi"]
)

setup(
    ext_modules=[
        Extension(
            "softmax_lab.compute._fused",
            sources=["compute/_fused.c"],
            extra_compile_args=flags,
            optional=True,
        )
    ]
)
