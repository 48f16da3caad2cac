"""The Triton kernels of compute/gpu_passes.py (which says what each computes and
why); imported by it only when a kernel is about to run, since importing Triton
takes about a second and whether it interprets is read when a kernel is defined.

Kernel parameters follow Triton's conventions: pointers first, then sizes,
then the ``tl.constexpr`` switches the kernel is compiled for.
"""

import triton  # noqa: TID253 - this module is imported only where a kernel runs
import triton.language as tl  # noqa: TID253


@triton.jit
def row_sums_kernel(
    x_ptr, x_stride, m_ptr, total_ptr, weighted_ptr, c, k, lo,
    BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    m = tl.load(m_ptr + row)
    x_row = x_ptr + row * x_stride
    cols = tl.arange(0, BLOCK)
    # Per-lane float32 sums (25 terms a lane for 50,257 classes, 128 for 262,144),
    # then one tree sum: the error does not grow with the vocabulary.
    acc_s = tl.zeros([BLOCK], tl.float32)
    acc_w = tl.zeros([BLOCK], tl.float32)
    for start in range(0, c, BLOCK):
        j = start + cols
        inside = j < c
        x = tl.load(x_row + j, mask=inside, other=0.0).to(tl.float32)
        s = (x - m) * k  # rounded as torch's sub then mul round it
        # Always clamped: where nothing sinks below lo it changes nothing, and one
        # compiled kernel per dtype means no compile in the middle of a drag.
        s = tl.maximum(s, lo)
        e = tl.where(inside, tl.exp2(s), 0.0)
        acc_s += e
        acc_w += tl.where(inside, e * s, 0.0)
    tl.store(total_ptr + row, tl.sum(acc_s, axis=0))
    tl.store(weighted_ptr + row, tl.sum(acc_w, axis=0))


@triton.jit
def _odd(x):
    # How many of x are NaN or +inf: such a row's softmax is NaN in torch (its max
    # is NaN, or inf - inf is), which a max that skips NaN would not give.
    return tl.sum(((x != x) | (x == float("inf"))).to(tl.int32), axis=0)


@triton.jit
def _row_max(row_max, odd):
    return tl.where(odd > 0, float("nan"), row_max)


@triton.jit
def softmax_in_registers(
    x_ptr, out_ptr, x_stride, out_stride, n, c,
    LOG: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # One program per row in turn (a persistent grid): the row is loaded once.
    cols = tl.arange(0, BLOCK)
    inside = cols < c
    for row in range(tl.program_id(0).to(tl.int64), n, tl.num_programs(0)):
        x = tl.load(x_ptr + row * x_stride + cols, mask=inside, other=float("-inf"))
        shifted = x - _row_max(tl.max(x, axis=0), _odd(x))
        e = tl.exp(shifted)
        total = tl.sum(e, axis=0)
        if LOG:
            y = shifted - tl.log(total)
        else:
            y = e / total
        tl.store(out_ptr + row * out_stride + cols, y, mask=inside)


@triton.jit
def softmax_in_tiles(
    x_ptr, out_ptr, x_stride, out_stride, n, c,
    LOG: tl.constexpr, TILE: tl.constexpr, STAGES: tl.constexpr,
):  # fmt: skip
    # One program per row in turn, over a grid small enough that every row being
    # worked on fits in L2 at once. Pass 1 reads the row from memory for its max
    # and sum (online: the sum is rescaled when the max grows); pass 2 reads it
    # again, last tile first, so that what pass 1 read last (most likely still in
    # L2) is read first, and writes the result. STAGES > 1 lets Triton issue the
    # loads of the next tiles while one is computed (more bytes in flight).
    cols = tl.arange(0, TILE)
    last = (c - 1) // TILE * TILE
    for row in range(tl.program_id(0).to(tl.int64), n, tl.num_programs(0)):
        x_row = x_ptr + row * x_stride
        run_max = tl.full([TILE], float("-inf"), tl.float32)
        run_sum = tl.zeros([TILE], tl.float32)
        odd = 0
        for start in tl.range(0, c, TILE, num_stages=STAGES):
            j = start + cols
            x = tl.load(x_row + j, mask=j < c, other=float("-inf"))
            odd += _odd(x)
            new_max = tl.maximum(run_max, x)
            # exp(-inf - -inf) is NaN: a lane that has seen only -inf adds 0.
            old = tl.where(run_max == new_max, 1.0, tl.exp(run_max - new_max))
            add = tl.where(x == new_max, 1.0, tl.exp(x - new_max))
            run_sum = run_sum * old + tl.where(x == float("-inf"), 0.0, add)
            run_max = new_max
        row_max = _row_max(tl.max(run_max, axis=0), odd)
        scale = tl.where(run_max == row_max, 1.0, tl.exp(run_max - row_max))
        total = tl.sum(tl.where(run_sum == 0.0, 0.0, run_sum * scale), axis=0)
        log_total = tl.log(total)
        out_row = out_ptr + row * out_stride
        for back in tl.range(0, c, TILE, num_stages=STAGES):
            j = last - back + cols
            x = tl.load(x_row + j, mask=j < c, other=float("-inf"))
            shifted = x - row_max
            if LOG:
                y = shifted - log_total
            else:
                y = tl.exp(shifted) / total
            tl.store(out_row + j, y, mask=j < c)

