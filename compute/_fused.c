/*
 * The compiled passes of compute/batch.py at a new temperature, for float32:
 * row_sums and cells for dim=1 (each row a distribution), column_sums and
 * column_cells for dim=0 (each column one); and learn_rows, dim=1's first view of
 * a batch (the facts that do not depend on the temperature).
 *
 * For each row i of x and its max m_i, with k = log2(e) / T:
 *
 *     s_j = (x_ij - m_i) * k          (in float32, rounded as torch rounds it)
 *     s_j = max(s_j, lo)              (only when asked: see _may_sink in batch.py)
 *     S_i = sum_j 2^s_j               W_i = sum_j 2^s_j * s_j
 *
 * Entropy, max probability, loss and overflow all follow from S, W and the
 * temperature-independent facts batch.py keeps, so this is the only pass over
 * the logits a new temperature needs. With torch's kernels the same takes five
 * passes over chunk buffers (subtract, scale, exp2, two row sums), and torch's
 * exp2 alone costs about 3x the time to read the batch on the 2-core machine.
 * Here every logit is read once and nothing is written. dim=0 is the same
 * arithmetic down the columns, and a second pass for the probabilities that
 * the heatmap and the row sums show (max-pooled into the cells row by row).
 *
 * 2^s is a split s = n + f with n = round(s) and |f| <= 1/2, and a polynomial
 * for 2^f (relative error 1.7e-7, about 2 ulp: see P1..P5 below;
 * tests/compute/test_fused.py measures it against float64). n goes into the
 * exponent bits, so s must stay >= -125, where 2^s is normal: the callers clamp
 * at -126 (batch.py's floor), and this kernel raises that to -125 (a term below
 * 2^-125 changes no sum of at least 1).
 *
 * Sums are kept in float32 per lane over blocks of 128 logits, then added in
 * float64, so their error does not grow with the vocabulary (262,144 classes).
 *
 * Written with GCC's generic vector extensions (GCC and clang): with GCC on
 * x86-64 Linux the loops are compiled twice, for AVX2+FMA and for the baseline,
 * and the loader picks by CPU (target_clones). No intrinsics, no -ffast-math:
 * the rounding of s must be the one IEEE float32 gives, and (s + M) - M is the
 * rounding step.
 *
 * Built by setup.py as an optional extension: where no C compiler is found,
 * batch.py runs its torch kernels instead (same results within the tests'
 * tolerances).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* M = 1.5 * 2^23: s + M rounds s to an integer, kept in the low mantissa bits
 * (for |s| < 2^22). */
#define ROUNDER 12582912.0f
/* 2^f on [-1/2, 1/2] as 1 + f * P(f), P of degree 4: coefficients fitted here for
 * the least maximum relative error (Lawson's iteration in float64, then rounded to
 * float32). Evaluated in float32 with FMAs: at most 2.02 ulp from 2^f, relative
 * 1.7e-7. Cephes's exp2f polynomial, of degree 6, is within 0.93 ulp, but its
 * one more multiply-add per logit made the whole pass 6% slower. 1 + f * P(f) is
 * exactly 1 at f = 0, so the row's max contributes exactly 1 to its sum. */
#define P1 1.326472731307149e-3f
#define P2 9.671512991189957e-3f
#define P3 5.550733581185341e-2f
#define P4 2.402224242687225e-1f
#define P5 6.931470036506653e-1f
#define LOWEST (-125.0f)
#define BLOCK 128 /* logits per float32 partial sum (16 vectors of 8) */

static inline __attribute__((always_inline)) v8f exp2_v8(v8f s)
{
    const v8f rounder = {ROUNDER, ROUNDER, ROUNDER, ROUNDER,
                         ROUNDER, ROUNDER, ROUNDER, ROUNDER};
    v8f t = s + rounder;
    v8f f = s - (t - rounder);
    v8f p = f * P1 + P2;
    p = p * f + P3;
    p = p * f + P4;
    p = p * f + P5;
    p = p * f + 1.0f;
    /* t's low bits hold n + 2^22, and 2^22 << 23 overflows away: t << 23 is n << 23. */
    return (v8f)((v8i)p + ((v8i)t << 23));
}

static inline float exp2_1(float s)
{
    float t = s + ROUNDER;
    float f = s - (t - ROUNDER);
    float p = f * P1 + P2;
    p = p * f + P3;
    p = p * f + P4;
    p = p * f + P5;
    p = p * f + 1.0f;
    uint32_t pb, tb;
    memcpy(&pb, &p, 4);
    memcpy(&tb, &t, 4);
    pb += tb << 23;
    memcpy(&p, &pb, 4);
    return p;
}

/* s = (x - m) * k, clamped below at lo where clamp (NaN stays NaN, as in torch). */
static inline __attribute__((always_inline)) v8f shifted_v8(
    const float *x, v8f m, v8f k, v8f lo, const int clamp)
{
    v8f v;
    memcpy(&v, x, sizeof v); /* unaligned: rows start anywhere */
    v8f s = (v - m) * k;
    if (clamp) {
        v8i below = s < lo;
        s = (v8f)(((v8i)lo & below) | ((v8i)s & ~below));
    }
    return s;
}

static inline float shifted_1(float x, float m, float k, float lo, int clamp)
{
    float s = (x - m) * k;
    return (clamp && s < lo) ? lo : s;
}

/* The float32 partial sums of a block, added into float64 lanes. */
static inline __attribute__((always_inline)) void widen_add(v4d *acc, v8f v)
{
    v4f half[2];
    memcpy(half, &v, sizeof half);
    acc[0] += __builtin_convertvector(half[0], v4d);
    acc[1] += __builtin_convertvector(half[1], v4d);
}

static inline double wide_sum(const v4d *acc)
{
    double a[8];
    memcpy(a, acc, sizeof a);
    return (((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])));
}

/* One row; clamp is a constant at each call, so each caller gets its own loop. */
static inline __attribute__((always_inline)) void one_row(
    const float *row, Py_ssize_t c, float mi, float k, float lo, const int clamp,
    float *total, float *weighted)
{
    const v8f kv = {k, k, k, k, k, k, k, k};
    const v8f lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    const v8f mv = {mi, mi, mi, mi, mi, mi, mi, mi};
    const v8f zero = {0};
    v4d sum[2] = {{0}}, wsum[2] = {{0}};
    Py_ssize_t j = 0;
    for (; j + BLOCK <= c; j += BLOCK) {
        /* two accumulators each: the adds of one vector need not wait for the last */
        v8f s0 = zero, s1 = zero, w0 = zero, w1 = zero;
        for (int b = 0; b < BLOCK; b += 16) {
            v8f a0 = shifted_v8(row + j + b, mv, kv, lov, clamp);
            v8f a1 = shifted_v8(row + j + b + 8, mv, kv, lov, clamp);
            v8f e0 = exp2_v8(a0);
            v8f e1 = exp2_v8(a1);
            s0 += e0;
            w0 += e0 * a0;
            s1 += e1;
            w1 += e1 * a1;
        }
        widen_add(sum, s0 + s1);
        widen_add(wsum, w0 + w1);
    }
    for (; j + 8 <= c; j += 8) {
        v8f a = shifted_v8(row + j, mv, kv, lov, clamp);
        v8f e = exp2_v8(a);
        widen_add(sum, e);
        widen_add(wsum, e * a);
    }
    double s = wide_sum(sum), w = wide_sum(wsum);
    for (; j < c; j++) {
        float a = shifted_1(row[j], mi, k, lo, clamp);
        float e = exp2_1(a);
        s += e;
        w += (double)e * a;
    }
    *total = (float)s;
    *weighted = (float)w;
}

CLONES
static void row_sums(const char *x, Py_ssize_t row_stride, Py_ssize_t rows, Py_ssize_t c,
                     const float *m, float k, float lo, int clamp,
                     float *total, float *weighted)
{
    if (lo < LOWEST)
        lo = LOWEST;
    for (Py_ssize_t i = 0; i < rows; i++) {
        const float *row = (const float *)(x + i * row_stride);
        if (clamp)
            one_row(row, c, m[i], k, lo, 1, total + i, weighted + i);
        else
            one_row(row, c, m[i], k, lo, 0, total + i, weighted + i);
    }
}

/* Heatmap cells of rows whose sums are known: p = 2^s / S of each bin's max logit
 * (the bin's greatest probability), 0 at or below tiny (a subnormal probability is
 * shown as 0, as batch.py's torch path shows it) and where s < -125. */
CLONES
static void cell_rows(const char *cm, Py_ssize_t cm_stride, char *out, Py_ssize_t out_stride,
                      Py_ssize_t rows, Py_ssize_t nb, const float *m, float k,
                      const float *total, float tiny)
{
    const float lo = LOWEST;
    const v8f kv = {k, k, k, k, k, k, k, k};
    const v8f lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    const v8f tinyv = {tiny, tiny, tiny, tiny, tiny, tiny, tiny, tiny};
    for (Py_ssize_t i = 0; i < rows; i++) {
        const float *row = (const float *)(cm + i * cm_stride);
        float *dst = (float *)(out + i * out_stride);
        /* times 1/S rather than over S: a division per cell cost 2x the pass, and
         * the product is within an ulp of the quotient */
        const float mi = m[i], ti = 1.0f / total[i];
        const v8f mv = {mi, mi, mi, mi, mi, mi, mi, mi};
        const v8f tv = {ti, ti, ti, ti, ti, ti, ti, ti};
        Py_ssize_t j = 0;
        for (; j + 8 <= nb; j += 8) {
            v8f s = shifted_v8(row + j, mv, kv, lov, 0);
            v8i sunk = s < lov;
            v8f p = exp2_v8((v8f)(((v8i)lov & sunk) | ((v8i)s & ~sunk))) * tv;
            v8i drop = (p <= tinyv) | sunk;
            p = (v8f)((v8i)p & ~drop);
            memcpy(dst + j, &p, sizeof p);
        }
        for (; j < nb; j++) {
            float s = shifted_1(row[j], mi, k, lo, 0);
            float p = s < lo ? 0.0f : exp2_1(s) * ti;
            dst[j] = p <= tiny ? 0.0f : p;
        }
    }
}

/* -- dim=0: each column a distribution over the rows ---------------------------------- */

/* Per column j over the rows of x: total[j] += sum 2^s, weighted[j] += sum 2^s * s, with
 * s = max((x_ij - m_j) * k, lo). The rows are added in float32 per column over blocks
 * of `block` rows (acc_s, acc_w: c floats each), then into the float64 totals. batch.py
 * passes its chunk's rows: one call over a range of columns then adds each column in
 * the same order as a call per chunk over every column (workers split the columns). */
#define COLUMN_BLOCK 32 /* the default block */

CLONES
static void column_sums(const char *x, Py_ssize_t row_stride, Py_ssize_t rows, Py_ssize_t c,
                        const float *m, float k, float lo, Py_ssize_t block, float *acc_s,
                        float *acc_w, double *total, double *weighted)
{
    if (lo < LOWEST)
        lo = LOWEST;
    const v8f kv = {k, k, k, k, k, k, k, k};
    const v8f lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += block) {
        Py_ssize_t r1 = r0 + block < rows ? r0 + block : rows;
        memset(acc_s, 0, (size_t)c * sizeof *acc_s);
        memset(acc_w, 0, (size_t)c * sizeof *acc_w);
        for (Py_ssize_t i = r0; i < r1; i++) {
            const float *row = (const float *)(x + i * row_stride);
            Py_ssize_t j = 0;
            for (; j + 8 <= c; j += 8) {
                v8f mv, as, aw;
                memcpy(&mv, m + j, sizeof mv);
                v8f a = shifted_v8(row + j, mv, kv, lov, 1);
                v8f e = exp2_v8(a);
                memcpy(&as, acc_s + j, sizeof as);
                memcpy(&aw, acc_w + j, sizeof aw);
                as += e;
                aw += e * a;
                memcpy(acc_s + j, &as, sizeof as);
                memcpy(acc_w + j, &aw, sizeof aw);
            }
            for (; j < c; j++) {
                float a = shifted_1(row[j], m[j], k, lo, 1);
                float e = exp2_1(a);
                acc_s[j] += e;
                acc_w[j] += e * a;
            }
        }
        for (Py_ssize_t j = 0; j < c; j++) {
            total[j] += acc_s[j];
            weighted[j] += acc_w[j];
        }
    }
}

/* One row of x: p_j = 2^s_j * inv[j] (inv = 1 / S_j, NaN for a column whose softmax is
 * NaN), 0 * inv[j] where s < -125, into dst; returns the row's sum of p (float64). */
static inline __attribute__((always_inline)) double probability_row(
    const float *row, float *dst, Py_ssize_t c, const float *m, float k, const float *inv)
{
    const float lo = LOWEST;
    const v8f kv = {k, k, k, k, k, k, k, k};
    const v8f lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    const v8f zero = {0};
    v4d sum[2] = {{0}};
    Py_ssize_t j = 0;
    for (; j + BLOCK <= c; j += BLOCK) {
        v8f part = zero;
        for (int b = 0; b < BLOCK; b += 8) {
            v8f mv, iv;
            memcpy(&mv, m + j + b, sizeof mv);
            memcpy(&iv, inv + j + b, sizeof iv);
            v8f s = shifted_v8(row + j + b, mv, kv, lov, 0);
            v8i sunk = s < lov;
            v8f e = exp2_v8((v8f)(((v8i)lov & sunk) | ((v8i)s & ~sunk)));
            v8f q = (v8f)((v8i)e & ~sunk) * iv;
            memcpy(dst + j + b, &q, sizeof q);
            part += q;
        }
        widen_add(sum, part);
    }
    double total = wide_sum(sum);
    for (; j < c; j++) {
        float s = shifted_1(row[j], m[j], k, lo, 0);
        float q = (s < lo ? 0.0f : exp2_1(s)) * inv[j];
        dst[j] = q;
        total += q;
    }
    return total;
}

#if defined(__clang__)
#define SHUFFLE(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#define SHUFFLE2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUFFLE(v, ...) __builtin_shuffle(v, (v8i){__VA_ARGS__})
#define SHUFFLE2(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif

/* The greater of two (a NaN in either wins, as in torch's max pooling). */
static inline __attribute__((always_inline)) v8f nanmax_v8(v8f a, v8f b)
{
    v8i take = (b > a) | (b != b);
    return (v8f)(((v8i)b & take) | ((v8i)a & ~take));
}

static inline float nanmax_1(float a, float b)
{
    return (b > a || b != b) ? b : a;
}

/* The max (NaN if any) of the 8 columns of a run that starts at `start` and ends at `end`,
 * at least 8 apart, lane by lane: whole vectors, the last one overlapping the one before
 * (a max does not mind seeing a column twice). */
static inline __attribute__((always_inline)) v8f run_max_v8(
    const float *row, Py_ssize_t start, Py_ssize_t end)
{
    v8f v, w;
    memcpy(&v, row + start, sizeof v);
    Py_ssize_t j = start + 8;
    for (; j + 8 <= end; j += 8) {
        memcpy(&w, row + j, sizeof w);
        v = nanmax_v8(v, w);
    }
    if (j < end) {
        memcpy(&w, row + end - 8, sizeof w);
        v = nanmax_v8(v, w);
    }
    return v;
}

/* Heatmap cells of one row: the max (NaN if any) over each run of cb columns (the last
 * run may be shorter); where `drop_tiny`, 0 where that max is at most tiny. Runs of 8 or
 * more columns are read as vectors (run_max_v8) and reduced across their lanes 8 runs
 * at a time: a transpose of the 8 vectors in three rounds of two-input shuffles, 7
 * maxima and 14 shuffles for 8 cells, where reducing each on its own took 3 of each per
 * cell. For a
 * (256, 50,257) batch (cb = 13) the cells of learn_rows went from 3.0 to 1.85 ms of its
 * 6.7 -> 5.6 ms on one thread. A scalar loop across the lanes was 3.5x slower than
 * torch's max_pool1d. */
static inline __attribute__((always_inline)) void bin_max_row(
    const float *row, float *dst, Py_ssize_t c, Py_ssize_t cb, float tiny, const int drop_tiny)
{
    const v8f tinyv = {tiny, tiny, tiny, tiny, tiny, tiny, tiny, tiny};
    Py_ssize_t nb = (c + cb - 1) / cb, b = 0;
    if (cb >= 8) {
        for (; b + 8 <= nb && (b + 8) * cb <= c; b += 8) { /* 8 whole runs */
            v8f a[8];
            for (int r = 0; r < 8; r++)
                a[r] = run_max_v8(row, (b + r) * cb, (b + r + 1) * cb);
            /* round 1: lanes 0-3 reduce run 2r's halves, lanes 4-7 run 2r+1's */
            v8f m[4];
            for (int r = 0; r < 4; r++)
                m[r] = nanmax_v8(SHUFFLE2(a[2 * r], a[2 * r + 1], 0, 1, 2, 3, 8, 9, 10, 11),
                                 SHUFFLE2(a[2 * r], a[2 * r + 1], 4, 5, 6, 7, 12, 13, 14, 15));
            /* round 2: pairs of lanes, runs (4q, 4q+2, 4q+1, 4q+3) */
            v8f n[2];
            for (int q = 0; q < 2; q++)
                n[q] = nanmax_v8(SHUFFLE2(m[2 * q], m[2 * q + 1], 0, 1, 8, 9, 4, 5, 12, 13),
                                 SHUFFLE2(m[2 * q], m[2 * q + 1], 2, 3, 10, 11, 6, 7, 14, 15));
            /* round 3: one lane per run, in order */
            v8f cell = nanmax_v8(SHUFFLE2(n[0], n[1], 0, 4, 2, 6, 8, 12, 10, 14),
                                 SHUFFLE2(n[0], n[1], 1, 5, 3, 7, 9, 13, 11, 15));
            if (drop_tiny) {
                v8i drop = cell <= tinyv;
                cell = (v8f)((v8i)cell & ~drop);
            }
            memcpy(dst + b, &cell, sizeof cell);
        }
    }
    for (; b < nb; b++) {
        Py_ssize_t start = b * cb, end = start + cb < c ? start + cb : c;
        float mx;
        if (end - start >= 8) {
            v8f v = run_max_v8(row, start, end);
            /* across the lanes in three steps, without a branch */
            v = nanmax_v8(v, SHUFFLE(v, 4, 5, 6, 7, 0, 1, 2, 3));
            v = nanmax_v8(v, SHUFFLE(v, 2, 3, 0, 1, 6, 7, 4, 5));
            v = nanmax_v8(v, SHUFFLE(v, 1, 0, 3, 2, 5, 4, 7, 6));
            mx = v[0];
        } else {
            mx = row[start];
            for (Py_ssize_t j = start + 1; j < end; j++)
                mx = nanmax_1(mx, row[j]);
        }
        dst[b] = (drop_tiny && mx <= tiny) ? 0.0f : mx;
    }
}

/* dim=0's heatmap cells and row sums, row by row: p of the row into `scratch` (c floats,
 * still in cache when it is max-pooled), its sum into row_sums[i], the max of each run of
 * cb columns into the row's cells. p itself is never stored: written for a whole chunk
 * and read back it was a second trip through memory, and a call per pass. */
CLONES
static void column_cells(const char *x, Py_ssize_t row_stride, char *out, Py_ssize_t out_stride,
                         Py_ssize_t rows, Py_ssize_t c, const float *m, float k,
                         const float *inv, Py_ssize_t cb, float tiny, float *scratch,
                         double *row_sums)
{
    for (Py_ssize_t i = 0; i < rows; i++) {
        const float *row = (const float *)(x + i * row_stride);
        row_sums[i] = probability_row(row, scratch, c, m, k, inv);
        bin_max_row(scratch, (float *)(out + i * out_stride), c, cb, tiny, 1);
    }
}

/* -- the first view: the facts that do not depend on the temperature ------------------ */

/* For each row of x: row_max[i] and argmax[i], its largest value and the first index of
 * it; shifted_min[i] = min - max and shifted_sum[i] = sum of (x - max), each x - max
 * rounded to float32 as torch's subtraction rounds it (added in float32 per lane over
 * blocks of BLOCK, then in float64); nonfinite[i], how many of the row are NaN or
 * infinite; and the max of each run of cb columns into the row of cm (NaN where the run
 * holds one). Two reads of the row: the second, for the sum, once the max is known, finds
 * it in cache. In torch this was five passes over the chunk (argmax, gather, subtract,
 * sum, min) and a max_pool1d. A row holding NaN or an infinity is only counted here:
 * batch.py recomputes it (and any whose sum left float32's range) the careful torch way. */
CLONES
static void learn_rows(const char *x, Py_ssize_t row_stride, Py_ssize_t rows, Py_ssize_t c,
                       double *row_max, int64_t *argmax, double *shifted_sum,
                       double *shifted_min, int64_t *nonfinite, char *cm, Py_ssize_t cm_stride,
                       Py_ssize_t cb)
{
    const v8i step = {8, 8, 8, 8, 8, 8, 8, 8};
    for (Py_ssize_t i = 0; i < rows; i++) {
        const float *row = (const float *)(x + i * row_stride);
        float mx = row[0], mn = row[0];
        Py_ssize_t at = 0, j = 0;
        int64_t bad = 0;
        if (c >= 8) {
            v8f vmax, vmin, v;
            memcpy(&vmax, row, sizeof vmax);
            vmin = vmax;
            v8i idx = {0, 1, 2, 3, 4, 5, 6, 7}, vidx = idx, vbad;
            v8f d = vmax - vmax; /* 0 where finite, NaN where NaN or infinite */
            vbad = -(d != d);
            for (j = 8; j + 8 <= c; j += 8) {
                memcpy(&v, row + j, sizeof v);
                idx += step;
                v8i gt = v > vmax, lt = v < vmin; /* strictly: a lane keeps its first max */
                vmax = (v8f)(((v8i)v & gt) | ((v8i)vmax & ~gt));
                vidx = (idx & gt) | (vidx & ~gt);
                vmin = (v8f)(((v8i)v & lt) | ((v8i)vmin & ~lt));
                d = v - v;
                vbad -= (d != d);
            }
            mx = vmax[0];
            at = vidx[0];
            mn = vmin[0];
            for (int l = 1; l < 8; l++) { /* the first index among the lanes' equal maxima */
                if (vmax[l] > mx || (vmax[l] == mx && vidx[l] < at)) {
                    mx = vmax[l];
                    at = vidx[l];
                }
                mn = vmin[l] < mn ? vmin[l] : mn;
            }
            for (int l = 0; l < 8; l++)
                bad += vbad[l];
        } else {
            bad += !(row[0] - row[0] == 0.0f);
            j = 1;
        }
        for (; j < c; j++) {
            float a = row[j];
            if (a > mx) {
                mx = a;
                at = j;
            }
            mn = a < mn ? a : mn;
            bad += !(a - a == 0.0f);
        }
        /* pass 2: the sum of x - max */
        const v8f mv = {mx, mx, mx, mx, mx, mx, mx, mx};
        v4d acc[2] = {{0}};
        j = 0;
        for (; j + BLOCK <= c; j += BLOCK) {
            v8f s0 = {0}, s1 = {0}, v0, v1;
            for (int b = 0; b < BLOCK; b += 16) {
                memcpy(&v0, row + j + b, sizeof v0);
                memcpy(&v1, row + j + b + 8, sizeof v1);
                s0 += v0 - mv;
                s1 += v1 - mv;
            }
            widen_add(acc, s0 + s1);
        }
        for (; j + 8 <= c; j += 8) {
            v8f v0;
            memcpy(&v0, row + j, sizeof v0);
            widen_add(acc, v0 - mv);
        }
        double sum = wide_sum(acc);
        for (; j < c; j++)
            sum += (float)(row[j] - mx);
        row_max[i] = mx;
        argmax[i] = at;
        shifted_sum[i] = sum;
        shifted_min[i] = (float)(mn - mx);
        nonfinite[i] = bad;
        if (cm != NULL)
            bin_max_row(row, (float *)(cm + i * cm_stride), c, cb, 0.0f, 0);
    }
}

/* -- Python ------------------------------------------------------------------------ */

/* A buffer of ndim dimensions holding `type` ('f': float32, 'd': float64, 'q': int64) in
 * native order, its last axis contiguous; -1 with a ValueError otherwise. */
static int array_buffer(PyObject *obj, Py_buffer *view, int ndim, int writable, char type,
                        const char *name)
{
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@')
        fmt++;
    Py_ssize_t size = type == 'f' ? 4 : 8;
    /* 'q': int64, which numpy names 'l' where a long is 64 bits */
    char got = (type == 'q' && fmt[0] == 'l' && view->itemsize == 8) ? 'q' : fmt[0];
    if (got != type || fmt[1] != '\0' || view->itemsize != size || view->ndim != ndim ||
        view->strides[ndim - 1] != size || (ndim == 2 && view->strides[0] % size != 0)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a %d-D %s array in native order whose last axis is "
                     "contiguous", name, ndim,
                     type == 'f' ? "float32" : type == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* What a function takes: an array of ndim dimensions of `type`, written if writable. */
typedef struct {
    PyObject *obj;
    int ndim, writable;
    char type;
    const char *name;
} Want;

static void release_buffers(Py_buffer *views, int n)
{
    while (n-- > 0)
        PyBuffer_Release(&views[n]);
}

/* All of want's buffers into views, or none (an exception set, -1). */
static int take_buffers(const Want *want, Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++) {
        if (array_buffer(want[i].obj, &views[i], want[i].ndim, want[i].writable, want[i].type,
                         want[i].name) < 0) {
            release_buffers(views, i);
            return -1;
        }
    }
    return 0;
}

/* A ValueError saying `why`, after giving back views[0..n): what a wrapper returns when
 * its arrays do not fit together. */
static PyObject *refuse(Py_buffer *views, int n, const char *why)
{
    release_buffers(views, n);
    PyErr_SetString(PyExc_ValueError, why);
    return NULL;
}

/* Whether views[first..n) all have `length` entries along axis 0. */
static int same_length(const Py_buffer *views, int n, int first, Py_ssize_t length)
{
    for (int i = first; i < n; i++)
        if (views[i].shape[0] != length)
            return 0;
    return 1;
}

PyDoc_STRVAR(row_sums_doc,
"row_sums(x, m, k, lo, clamp, total, weighted)\n--\n\n"
"For each row i of the (rows, C) float32 array x: s = (x[i] - m[i]) * k, clamped\n"
"below at max(lo, -125) if clamp; total[i] = sum 2**s, weighted[i] = sum 2**s * s.\n"
"m, total and weighted are (rows,) float32, the last two written. Releases the GIL.");

static PyObject *py_row_sums(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *xo, *mo, *to, *wo;
    float k, lo;
    int clamp;
    if (!PyArg_ParseTuple(args, "OOffpOO:row_sums", &xo, &mo, &k, &lo, &clamp, &to, &wo))
        return NULL;
    const Want want[4] = {{xo, 2, 0, 'f', "x"},
                          {mo, 1, 0, 'f', "m"},
                          {to, 1, 1, 'f', "total"},
                          {wo, 1, 1, 'f', "weighted"}};
    Py_buffer v[4];
    if (take_buffers(want, v, 4) < 0)
        return NULL;
    if (!same_length(v, 4, 1, v[0].shape[0])) {
        return refuse(v, 4, "m, total and weighted need one entry per row of x");
    }
    Py_ssize_t rows = v[0].shape[0];
    Py_BEGIN_ALLOW_THREADS
    row_sums((const char *)v[0].buf, v[0].strides[0], rows, v[0].shape[1],
             (const float *)v[1].buf, k, lo, clamp, (float *)v[2].buf, (float *)v[3].buf);
    Py_END_ALLOW_THREADS
    release_buffers(v, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(cells_doc,
"cells(col_max, m, k, total, tiny, out)\n--\n\n"
"Heatmap cells: out[i] = 2**((col_max[i] - m[i]) * k) / total[i], 0 where that is\n"
"at most tiny or its exponent below -125. col_max and out are (rows, bins) float32,\n"
"m and total (rows,) float32. Releases the GIL.");

static PyObject *py_cells(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *co, *mo, *to, *oo;
    float k, tiny;
    if (!PyArg_ParseTuple(args, "OOfOfO:cells", &co, &mo, &k, &to, &tiny, &oo))
        return NULL;
    const Want want[4] = {{co, 2, 0, 'f', "col_max"},
                          {mo, 1, 0, 'f', "m"},
                          {to, 1, 0, 'f', "total"},
                          {oo, 2, 1, 'f', "out"}};
    Py_buffer v[4];
    if (take_buffers(want, v, 4) < 0)
        return NULL;
    Py_ssize_t rows = v[0].shape[0];
    if (!same_length(v, 4, 1, rows) || v[3].shape[1] != v[0].shape[1]) {
        return refuse(v, 4, "out must have col_max's shape, m and total one entry per row");
    }
    Py_BEGIN_ALLOW_THREADS
    cell_rows((const char *)v[0].buf, v[0].strides[0], (char *)v[3].buf, v[3].strides[0], rows,
              v[0].shape[1], (const float *)v[1].buf, k, (const float *)v[2].buf, tiny);
    Py_END_ALLOW_THREADS
    release_buffers(v, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(column_sums_doc,
"column_sums(x, m, k, lo, total, weighted, block=32)\n--\n\n"
"dim=0: for each column j of the (rows, C) float32 array x, s = (x[:, j] - m[j]) * k\n"
"clamped below at max(lo, -125); total[j] += sum 2**s, weighted[j] += sum 2**s * s,\n"
"added in float32 over each block of rows, then in float64. m is (C,) float32; total\n"
"and weighted (C,) float64, added to. Releases the GIL.");

static PyObject *py_column_sums(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *xo, *mo, *to, *wo;
    float k, lo;
    Py_ssize_t block = COLUMN_BLOCK;
    if (!PyArg_ParseTuple(args, "OOffOO|n:column_sums", &xo, &mo, &k, &lo, &to, &wo, &block))
        return NULL;
    if (block < 1) {
        PyErr_SetString(PyExc_ValueError, "block must be at least 1");
        return NULL;
    }
    const Want want[4] = {{xo, 2, 0, 'f', "x"},
                          {mo, 1, 0, 'f', "m"},
                          {to, 1, 1, 'd', "total"},
                          {wo, 1, 1, 'd', "weighted"}};
    Py_buffer v[4];
    if (take_buffers(want, v, 4) < 0)
        return NULL;
    Py_ssize_t c = v[0].shape[1];
    if (!same_length(v, 4, 1, c)) {
        return refuse(v, 4, "m, total and weighted need one entry per column");
    }
    float *acc = PyMem_Malloc(2 * (size_t)(c ? c : 1) * sizeof *acc);
    if (acc == NULL) {
        release_buffers(v, 4);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    column_sums((const char *)v[0].buf, v[0].strides[0], v[0].shape[0], c,
                (const float *)v[1].buf, k, lo, block, acc, acc + c, (double *)v[2].buf,
                (double *)v[3].buf);
    Py_END_ALLOW_THREADS
    PyMem_Free(acc);
    release_buffers(v, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(column_cells_doc,
"column_cells(x, m, k, inv, cb, tiny, out, row_sums)\n--\n\n"
"dim=0, per row i of the (rows, C) float32 array x: p[j] = 2**((x[i, j] - m[j]) * k)\n"
"* inv[j] (0 * inv[j] where the exponent is below -125); row_sums[i] = sum p (float64);\n"
"out[i, b] = max of p over columns b*cb .. (b+1)*cb (NaN if any is NaN), 0 where that is\n"
"at most tiny. m and inv are (C,) float32, out (rows, ceil(C / cb)) float32, row_sums\n"
"(rows,) float64. Releases the GIL.");

static PyObject *py_column_cells(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *xo, *mo, *io, *oo, *ro;
    float k, tiny;
    Py_ssize_t cb;
    if (!PyArg_ParseTuple(args, "OOfOnfOO:column_cells", &xo, &mo, &k, &io, &cb, &tiny, &oo,
                          &ro))
        return NULL;
    if (cb < 1) {
        PyErr_SetString(PyExc_ValueError, "cb must be at least 1");
        return NULL;
    }
    const Want want[5] = {{xo, 2, 0, 'f', "x"},
                          {mo, 1, 0, 'f', "m"},
                          {io, 1, 0, 'f', "inv"},
                          {oo, 2, 1, 'f', "out"},
                          {ro, 1, 1, 'd', "row_sums"}};
    Py_buffer v[5];
    if (take_buffers(want, v, 5) < 0)
        return NULL;
    Py_ssize_t rows = v[0].shape[0], c = v[0].shape[1];
    if (v[1].shape[0] != c || v[2].shape[0] != c || v[3].shape[0] != rows ||
        v[3].shape[1] != (c + cb - 1) / cb || v[4].shape[0] != rows) {
        return refuse(v, 5,
                      "out must be (rows, ceil(C / cb)), m and inv one entry per column, "
                      "row_sums one per row");
    }
    float *scratch = PyMem_Malloc((size_t)(c ? c : 1) * sizeof *scratch);
    if (scratch == NULL) {
        release_buffers(v, 5);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    column_cells((const char *)v[0].buf, v[0].strides[0], (char *)v[3].buf, v[3].strides[0],
                 rows, c, (const float *)v[1].buf, k, (const float *)v[2].buf, cb, tiny,
                 scratch, (double *)v[4].buf);
    Py_END_ALLOW_THREADS
    PyMem_Free(scratch);
    release_buffers(v, 5);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(learn_rows_doc,
"learn_rows(x, row_max, argmax, shifted_sum, shifted_min, nonfinite, cb, col_max)\n--\n\n"
"For each row i of the (rows, C) float32 array x, C >= 1: its max and the first index\n"
"of it, sum and min of x[i] - max (each rounded to float32), and how many of it are\n"
"NaN or infinite, into the (rows,) arrays row_max, shifted_sum, shifted_min (float64),\n"
"argmax and nonfinite (int64); and the max of each run of cb columns into col_max,\n"
"(rows, ceil(C / cb)) float32 (None: no bins). Rows with a nonfinite count are left\n"
"to the caller. Releases the GIL.");

static PyObject *py_learn_rows(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *xo, *mo, *ao, *so, *no, *fo, *co;
    Py_ssize_t cb;
    if (!PyArg_ParseTuple(args, "OOOOOOnO:learn_rows", &xo, &mo, &ao, &so, &no, &fo, &cb, &co))
        return NULL;
    const int bins = co != Py_None;
    if (bins && cb < 1) {
        PyErr_SetString(PyExc_ValueError, "cb must be at least 1");
        return NULL;
    }
    const Want want[7] = {{xo, 2, 0, 'f', "x"},
                          {mo, 1, 1, 'd', "row_max"},
                          {ao, 1, 1, 'q', "argmax"},
                          {so, 1, 1, 'd', "shifted_sum"},
                          {no, 1, 1, 'd', "shifted_min"},
                          {fo, 1, 1, 'q', "nonfinite"},
                          {co, 2, 1, 'f', "col_max"}};
    Py_buffer v[7];
    const int n = bins ? 7 : 6;
    if (take_buffers(want, v, n) < 0)
        return NULL;
    Py_ssize_t rows = v[0].shape[0], c = v[0].shape[1];
    if (c < 1 || !same_length(v, n, 1, rows) || (bins && v[6].shape[1] != (c + cb - 1) / cb)) {
        return refuse(v, n,
                      "x needs a column, the facts one entry per row of x and col_max "
                      "ceil(C / cb) columns");
    }
    Py_BEGIN_ALLOW_THREADS
    learn_rows((const char *)v[0].buf, v[0].strides[0], rows, c, (double *)v[1].buf,
               (int64_t *)v[2].buf, (double *)v[3].buf, (double *)v[4].buf,
               (int64_t *)v[5].buf, bins ? (char *)v[6].buf : NULL, bins ? v[6].strides[0] : 0,
               cb);
    Py_END_ALLOW_THREADS
    release_buffers(v, n);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"learn_rows", py_learn_rows, METH_VARARGS, learn_rows_doc},
    {"row_sums", py_row_sums, METH_VARARGS, row_sums_doc},
    {"cells", py_cells, METH_VARARGS, cells_doc},
    {"column_sums", py_column_sums, METH_VARARGS, column_sums_doc},
    {"column_cells", py_column_cells, METH_VARARGS, column_cells_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fused",
    "The fused float32 row pass of batch statistics (see compute/_fused.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fused(void)
{
    return PyModule_Create(&module);
}
