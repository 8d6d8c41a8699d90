/* conv.c — 2-D convolution and transposed convolution.
 *
 * Each pass takes the fastest algorithm that applies (docs/design.md has
 * the measurements; DS_CONV_ALGO=im2col|implicit|shifted pins one for
 * comparisons):
 *  - AVX-512, ≥ 16 output channels: ocv — output channels in the vector
 *    lanes, input pixels broadcast from a zero-padded copy (the fewest
 *    instructions per FMA; see ocv_tile): the forward (row stride 1 or 2),
 *    dx of stride-1 convolutions, and dx of strided ones by phases; dW the
 *    same way (dwv) for kernels 1, 3 or 5 wide;
 *  - 3×3 and 5×5 stride 1, ungrouped: Winograd (winograd.c) for the
 *    forward, dx and dW where wino_choice / wino_dw_choice take it;
 *  - other stride-1 forward and dx: shifted products — im2col's rows are the
 *    image itself shifted, so the micro-kernel reads them in place under
 *    lane masks (ds_tile_shifted), nothing copied or packed;
 *  - dW, stride 1 and few channels × taps: streamed dot products with
 *    vector partial sums (no packing); otherwise the implicit GEMM below;
 *  - other strides: implicit im2col — GEMM operands that pack themselves
 *    from a padded copy of the image, output written straight to NCHW;
 *  - dx of strided convolutions and transposed convolutions: explicit
 *    im2col/col2im around one large matrix product per chunk of samples
 *      Y_g [OCg, S·OH·OW] = W_g [OCg, Cg·KH·KW] · col_g [Cg·KH·KW, S·OH·OW],
 *    S capped so the scratch stays small.
 * ip: 0,1 stride; 2,3 pad; 4,5 dilation; 6 groups; 7,8 output_padding;
 * 9 explicit chunk S; 10 implicit forward/dW; 11 implicit dx; 12 shifted
 * forward; 13 shifted dx; 14 streamed dW; 15 ocv forward; 16 ocv dx; 17
 * dwv dW; 18 strided dx by phases; 19 Winograd candidates (bits 0, 1: the
 * forward by F(2×2) or F(4×4); 2, 3: dx; 4, 5: dW) (set by the shape rule).
 */
#include "internal.h"
#include "conv_thin.h"
#include "transpose16.h"
#include "winograd.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <string.h>

#define DS_SHIFT_MAX_TAPS 128 /* kh·kw read directly (masks per tap) */
#define DW_GROUPS 8                    /* sample groups of the streaming dW */
#define DW_ACC_BYTES ((size_t)1 << 20) /* its partial sums per group, at most */

typedef struct {
    int n, c, h, w;        /* input of the convolution (for transposed: its output) */
    int oc, oh, ow;        /* output of the convolution (for transposed: its input) */
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
} geom;

/* ip: 0,1 stride; 2,3 pad; 4,5 dilation; 6 groups; 7,8 output_padding; 9 chunk S */
static geom geom_of(const ds_node *n, int transposed)
{
    const ds_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *y = &n->shape;
    geom q = {0};
    q.kh = w->d[2], q.kw = w->d[3];
    q.sh = n->ip[0], q.sw = n->ip[1], q.ph = n->ip[2], q.pw = n->ip[3];
    q.dh = n->ip[4], q.dw = n->ip[5], q.groups = n->ip[6];
    q.n = x->d[0];
    if (!transposed) {
        q.c = x->d[1], q.h = x->d[2], q.w = x->d[3];
        q.oc = y->d[1], q.oh = y->d[2], q.ow = y->d[3];
    } else {
        q.oc = x->d[1], q.oh = x->d[2], q.ow = x->d[3];
        q.c = y->d[1], q.h = y->d[2], q.w = y->d[3];
    }
    return q;
}

/* The output columns ox whose input column ox·sw − pw + j·dw lies in [0, w):
 * [*lo, *hi). Loops over that range need no bounds test. */
static void valid_cols(const geom *q, int j, int *lo, int *hi)
{
    int off = j * q->dw - q->pw; /* ix = ox·sw + off */
    int a = off >= 0 ? 0 : (-off + q->sw - 1) / q->sw;
    int b = q->w - off <= 0 ? 0 : (q->w - off - 1) / q->sw + 1;
    *lo = a < q->ow ? a : q->ow;
    *hi = b < q->ow ? b : q->ow;
    if (*hi < *lo) *hi = *lo;
}

/* col rows of length ld (≥ oh·ow) from one image x [c, h, w]: row
 * (ci·kh + i)·kw + j holds x[ci, oy·sh − ph + i·dh, ox·sw − pw + j·dw] (0 outside). */
static void im2col(const float *x, int c, const geom *q, float *col, size_t ld)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * ld;
                const float *xc = x + (size_t)ci * q->h * q->w;
                int lo, hi, off = j * q->dw - q->pw;
                valid_cols(q, j, &lo, &hi);
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    float *r = row + (size_t)oy * q->ow;
                    if (iy < 0 || iy >= q->h) {
                        memset(r, 0, (size_t)q->ow * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * q->w;
                    for (int ox = 0; ox < lo; ox++) r[ox] = 0;
                    if (q->sw == 1) memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *r);
                    else
                        for (int ox = lo; ox < hi; ox++) r[ox] = xr[ox * q->sw + off];
                    for (int ox = hi; ox < q->ow; ox++) r[ox] = 0;
                }
            }
}

/* x [c, h, w] += the columns of col put back where im2col took them. */
static void col2im(const float *col, int c, const geom *q, float *x, size_t ld)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * ld;
                float *xc = x + (size_t)ci * q->h * q->w;
                int lo, hi, off = j * q->dw - q->pw;
                valid_cols(q, j, &lo, &hi);
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    if (iy < 0 || iy >= q->h) continue;
                    const float *r = row + (size_t)oy * q->ow;
                    float *xr = xc + (size_t)iy * q->w;
                    if (q->sw == 1)
                        for (int ox = lo; ox < hi; ox++) xr[ox + off] += r[ox];
                    else
                        for (int ox = lo; ox < hi; ox++) xr[ox * q->sw + off] += r[ox];
                }
            }
}

/* Between a chunk of NCHW tensor t [S, ch_total, hw] (channels c0..c0+cn)
 * and the matrix m [cn, S·hw]: gather (to_m = 1) or add back (to_m = 0). */
typedef struct {
    float *t, *m;
    const float *src;
    int s, ch_total, c0, cn, s0, gi, cg, to_m;
    size_t hw;
    const geom *q;
} chunk_task;

static void chunk_matrix_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    for (long si = lo; si < hi; si++)
        for (int ci = 0; ci < k->cn; ci++) {
            float *tp = k->t + ((size_t)si * k->ch_total + k->c0 + ci) * k->hw;
            float *mp = k->m + (size_t)ci * k->s * k->hw + (size_t)si * k->hw;
            if (k->to_m) memcpy(mp, tp, k->hw * sizeof *mp);
            else
                for (size_t i = 0; i < k->hw; i++) tp[i] += mp[i];
        }
}

static void chunk_matrix(float *t, int s, int ch_total, int c0, int cn, size_t hw, float *m, int to_m)
{
    chunk_task k = {.t = t, .m = m, .s = s, .ch_total = ch_total, .c0 = c0, .cn = cn, .to_m = to_m, .hw = hw};
    ds_parallel_for(s, 1, chunk_matrix_range, &k);
}

static size_t shifted_scratch(long planes, int hp, int pitch, int pw, int groups, int m, int kk);
#if defined(__AVX512F__)
static size_t ocv_scratch(long planes, int hp, int wpp, int groups, int m, int kk);
static bool ocv_fits(int m);
static bool dwv_fits(const geom *q);
static size_t dwv_scratch(const geom *q);
static bool phases_fit(const geom *q);
static size_t phases_scratch(const geom *q);
#endif
static void convt_paths(ds_node *n, const geom *q, const char *algo);

#if defined(__AVX512F__)
#define FLAT_SLACK 64 /* floats after a padded copy that ds_conv_flat may read (≥ kw + 15) */

/* whether ds_conv_flat can take this convolution's stride-1 passes */
static bool flat_fits(const geom *q)
{
    return q->groups == 1 && q->sh == 1 && q->sw == 1 && q->dh == 1 && q->dw == 1 &&
           ds_conv_flat_fits(q->oc, q->kh, q->kw) && ds_conv_flat_fits(q->c, q->kh, q->kw);
}

/* its scratch: the padded copy of `planes` planes [hp, wp] with the slack, then the packed weights */
static size_t flat_scratch(long planes, int hp, int wp, int m, int c, int taps)
{
    return ((size_t)planes * hp * wp + FLAT_SLACK + 15) / 16 * 16 + ds_conv_flat_wsize(m, c, taps);
}
#endif

static int conv_shape_common(ds_node *n, int transposed)
{
    const ds_node *x = n->in[0], *w = n->in[1];
    char sx[96], sw[96];
    ds_shape_str(x->shape, sx, sizeof sx);
    ds_shape_str(w->shape, sw, sizeof sw);
    if (ds_require_nchw(n, 0)) return -1;
    if (w->shape.ndim != 4) return ds_shape_fail(n, "weight '%s' is %s; expected 4-D", w->name, sw);
    for (int i = 0; i < 2; i++)
        if (n->ip[i] < 1 || n->ip[2 + i] < 0 || n->ip[4 + i] < 1 || n->ip[7 + i] < 0 || n->ip[6] < 1 ||
            (n->ip[7 + i] && n->ip[7 + i] >= n->ip[i] && n->ip[7 + i] >= n->ip[4 + i]))
            return ds_shape_fail(n, "bad options: stride %d,%d pad %d,%d dilation %d,%d groups %d "
                                    "output_padding %d,%d",
                                 n->ip[0], n->ip[1], n->ip[2], n->ip[3], n->ip[4], n->ip[5], n->ip[6],
                                 n->ip[7], n->ip[8]);
    int g = n->ip[6], c = x->shape.d[1];
    if (c % g) return ds_shape_fail(n, "%d input channels do not split into %d groups", c, g);
    int oc = transposed ? w->shape.d[1] * g : w->shape.d[0];
    if (!transposed && (w->shape.d[1] != c / g || oc % g))
        return ds_shape_fail(n, "input '%s' %s needs a weight [OC, %d, KH, KW] (OC divisible by %d); "
                                "weight '%s' is %s",
                             x->name, sx, c / g, g, w->name, sw);
    if (transposed && w->shape.d[0] != c)
        return ds_shape_fail(n, "input '%s' %s needs a weight [%d, OC/groups, KH, KW]; weight '%s' is %s",
                             x->name, sx, c, w->name, sw);
    if (n->n_in == 3 && ds_numel(n->in[2]) != (size_t)oc)
        return ds_shape_fail(n, "bias '%s' has %zu elements for %d output channels", n->in[2]->name,
                             ds_numel(n->in[2]), oc);
    int kh = w->shape.d[2], kw = w->shape.d[3], oh, ow;
    if (!transposed) {
        oh = (x->shape.d[2] + 2 * n->ip[2] - n->ip[4] * (kh - 1) - 1) / n->ip[0] + 1;
        ow = (x->shape.d[3] + 2 * n->ip[3] - n->ip[5] * (kw - 1) - 1) / n->ip[1] + 1;
        if (x->shape.d[2] + 2 * n->ip[2] < n->ip[4] * (kh - 1) + 1 ||
            x->shape.d[3] + 2 * n->ip[3] < n->ip[5] * (kw - 1) + 1)
            oh = ow = 0;
    } else {
        oh = (x->shape.d[2] - 1) * n->ip[0] - 2 * n->ip[2] + n->ip[4] * (kh - 1) + n->ip[7] + 1;
        ow = (x->shape.d[3] - 1) * n->ip[1] - 2 * n->ip[3] + n->ip[5] * (kw - 1) + n->ip[8] + 1;
    }
    if (oh < 1 || ow < 1)
        return ds_shape_fail(n, "kernel %dx%d does not fit input '%s' %s with this stride/padding",
                             kh, kw, x->name, sx);
    n->shape = ds_shape_of(4, x->shape.d[0], oc, oh, ow);
    geom q = geom_of(n, transposed);
    /* explicit im2col, per sample: col and dcol [kk, ohw] plus two [OC/g, ohw] matrices */
    size_t per = ((size_t)2 * (q.c / g) * kh * kw + 2 * (size_t)(q.oc / g)) * q.oh * q.ow;
    size_t budget = (size_t)8 << 20, chunk = budget / per; /* floats: 32 MiB of scratch */
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)q.n) chunk = (size_t)q.n;
    n->ip[9] = (int)chunk;
    size_t explicit_work = chunk * per, work = 0;
    n->ip[10] = n->ip[11] = n->ip[12] = n->ip[13] = n->ip[14] = n->ip[15] = n->ip[16] = n->ip[17] = n->ip[18] = 0;
    n->saved_bytes = 0;
    if (transposed) work = explicit_work;
    /* DS_CONV_ALGO=im2col or implicit pins the older algorithms (benchmarks
     * compare them); by default each pass takes the fastest that applies */
    const char *algo = getenv("DS_CONV_ALGO");
    bool only_im2col = algo && !strcmp(algo, "im2col"), only_implicit = algo && !strcmp(algo, "implicit");
    bool only_shifted = algo && !strcmp(algo, "shifted"); /* the pixel-lane tile, not ocv */
    (void)only_shifted;
    if (!transposed && !only_im2col) {
        /* implicit im2col reads a zero-padded copy of x (and, for dx, of dy)
         * with 32-bit offsets */
        size_t xp = (size_t)q.n * q.c * (q.h + 2 * q.ph) * (q.w + 2 * q.pw);
        int bh = q.dh * (q.kh - 1) - q.ph, bw = q.dw * (q.kw - 1) - q.pw; /* dx's padding */
        size_t dyp = (size_t)q.n * q.oc * (q.oh + 2 * (size_t)(bh > 0 ? bh : 0)) * (q.ow + 2 * (size_t)(bw > 0 ? bw : 0));
        n->ip[10] = xp < ((size_t)1 << 31) && (size_t)q.n * q.oh * q.ow < ((size_t)1 << 31);
        n->ip[11] = n->ip[10] && q.sh == 1 && q.sw == 1 && bh >= 0 && bw >= 0 && dyp < ((size_t)1 << 31);
        size_t need = (q.ph || q.pw) ? xp : 0;
        if (n->ip[11]) {
            size_t b = dyp + (size_t)q.oc * (q.c / g) * kh * kw;
            if (b > need) need = b;
        }
        if (n->ip[10] && need > work) work = need;
        /* stride 1: shifted products on a copy with row pitch max(in_w, out_w) */
        n->ip[12] = q.sh == 1 && q.sw == 1 && n->ip[10] && !only_implicit;
        n->ip[13] = n->ip[11] && !only_implicit;
        if (n->ip[12]) {
            int pitch = q.w > q.ow ? q.w : q.ow;
            size_t f = shifted_scratch((long)q.n * q.c, q.oh + q.dh * (kh - 1), pitch, q.pw, g, q.oc / g,
                                       q.c / g * kh * kw);
            if (f > work) work = f;
        }
        if (n->ip[13]) {
            int pitch = q.w > q.ow ? q.w : q.ow;
            size_t b = shifted_scratch((long)q.n * q.oc, q.h + q.dh * (kh - 1), pitch, bw, g, q.c / g,
                                       q.oc / g * kh * kw);
            if (b > work) work = b;
        }
#if defined(__AVX512F__)
        /* stride 1 with whole vectors of output channels: the ocv tile */
        if (!only_shifted && !only_implicit && n->ip[10] && (q.sw == 1 || q.sw == 2) && ocv_fits(q.oc / g)) {
            n->ip[15] = 1;
            size_t f = ocv_scratch((long)q.n * q.c, q.h + 2 * q.ph, q.w + 2 * q.pw, g, q.oc / g, q.c / g * kh * kw);
            if (f > work) work = f;
        }
        if (!only_shifted && !only_implicit && n->ip[10] && phases_fit(&q) && phases_scratch(&q) < ((size_t)1 << 31)) {
            n->ip[18] = 1;
            size_t b = phases_scratch(&q);
            if (b > work) work = b;
        }
        if (!only_shifted && n->ip[13] && ocv_fits(q.c / g)) {
            n->ip[16] = 1;
            size_t b = ocv_scratch((long)q.n * q.oc, q.oh + 2 * bh, q.ow + 2 * bw, g, q.c / g, q.oc / g * kh * kw);
            if (b > work) work = b;
        }
        /* the padded-width grid (ds_conv_flat) where ocv applies, stride 1 */
        if (flat_fits(&q)) {
            size_t f = flat_scratch((long)q.n * q.c, q.h + 2 * q.ph, q.w + 2 * q.pw, q.oc, q.c, kh * kw);
            size_t b = flat_scratch((long)q.n * q.oc, q.oh + 2 * bh, q.ow + 2 * bw, q.c, q.oc, kh * kw);
            if (n->ip[15] && f > work) work = f;
            if (n->ip[16] && b > work) work = b;
        }
#endif
#if defined(__AVX512F__)
        if (!only_shifted && !only_implicit && n->ip[10] && dwv_fits(&q)) {
            n->ip[17] = 1;
            /* the ocv forward's padded x, kept for dW (where gradients are planned) */
            if (n->ip[15] && (q.ph || q.pw)) /* (the slack ds_conv_flat reads past it) */
                n->saved_bytes = ((size_t)q.n * q.c * (q.h + 2 * q.ph) * (q.w + 2 * q.pw) + FLAT_SLACK) * sizeof(float);
            size_t d = dwv_scratch(&q);
            if (d > work) work = d;
        }
#endif
        size_t khw = (size_t)kh * kw, cg = (size_t)(q.c / g), ocg = (size_t)(q.oc / g), slack = 2 * (size_t)ds_gemm_nr();
        /* dW by streaming dot products (few output channels × taps): a padded
         * copy of x, dy on the padded-width grid, DW_GROUPS vector accumulators */
        size_t taps4 = (cg * khw + 3) / 4 * 4, qp = ((size_t)q.oh * (q.w + 2 * q.pw) + 15) / 16 * 16;
        size_t groups = q.n < DW_GROUPS ? (size_t)q.n : DW_GROUPS;
#if defined(__AVX512F__)
        n->ip[14] = n->ip[12] && !only_implicit && ocg % 4 == 0 && ocg * taps4 * 16 * sizeof(float) <= DW_ACC_BYTES &&
                    (size_t)q.n * q.oc * qp < ((size_t)1 << 31);
#endif
        if (n->ip[14]) {
            size_t d = xp + slack + 16 + (size_t)q.n * q.oc * qp + groups * g * ocg * taps4 * 16 + taps4;
            if (d > work) work = d;
        }
    }
    /* 3×3 and 5×5 stride 1: Winograd candidates, chosen per layer at the first run (wino_choice) */
    n->ip[19] = 0;
    if (!transposed && (q.kh == 3 || q.kh == 5) && q.kw == q.kh && q.dh == 1 && q.dw == 1 && g == 1 && n->ip[12] &&
        (!algo || !strncmp(algo, "winograd", 8) || !strcmp(algo, "auto")))
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1 && !n->ip[13]) continue;
            for (int v = 0; v < 2; v++) {
                ds_wino_pass wp = pass == 0 ? (ds_wino_pass){.n = q.n, .c = q.c, .h = q.h, .w_ = q.w, .ph = q.ph,
                                                              .pw = q.pw, .k = q.oc, .oh = q.oh, .ow = q.ow}
                                            : (ds_wino_pass){.n = q.n, .c = q.oc, .h = q.oh, .w_ = q.ow,
                                                              .ph = q.kh - 1 - q.ph, .pw = q.kw - 1 - q.pw,
                                                              .k = q.c, .oh = q.h, .ow = q.w};
                wp.m = v ? 4 : 2, wp.r = q.kh; /* F(4×4, 5×5) is not done: ds_wino_fits says no */
                if (!ds_wino_fits(&wp)) continue;
                n->ip[19] |= 1 << (2 * pass + v);
                size_t f = ds_wino_scratch(&wp);
                if (f > work) work = f;
                if (pass == 1) continue;
                /* dW from the forward's transforms (bits 4, 5) */
                if (!ds_wino_dw_fits(&wp)) continue;
                n->ip[19] |= 1 << (4 + v);
                f = ds_wino_dw_scratch(&wp);
                if (f > work) work = f;
            }
        }
    /* the explicit im2col scratch only where a path still needs it */
    if (!transposed && (!n->ip[10] || (!n->ip[13] && !n->ip[11] && !n->ip[18]) || (!n->ip[14] && !n->ip[10])) &&
        explicit_work > work)
        work = explicit_work;
    n->work_bytes = work * sizeof(float);
    n->grad_overwrites = n->ip[13] || n->ip[18]; /* the shifted and phase dx write every element of dx */
    if (transposed) convt_paths(n, &q, algo); /* its AVX-512 passes (below convt_paths) */
    return 0;
}

static int conv_shape(ds_node *n)
{
    n->fuses_relu = true; /* a following relu is applied as the output is stored */
    n->fuses_leaky = true; /* and a leaky relu (by the ocv tile; leaky_post after the other passes) */
    return conv_shape_common(n, 0);
}
static int convt_shape(ds_node *n) { return conv_shape_common(n, 1); }

/* Σ over n, h, w of dy [N, OC, H, W] into db [OC]. */
typedef struct {
    const float *dy, *b;
    float *y, *db;
    int n, c;
    size_t hw;
} bias_task;

static void bias_backward_range(void *arg, long lo, long hi)
{
    const bias_task *k = arg;
    for (long o = lo; o < hi; o++) {
        double acc = 0;
        for (int s = 0; s < k->n; s++) { /* 16 float lanes per plane, then double */
            const float *p = k->dy + ((size_t)s * k->c + o) * k->hw;
            float lane[16] = {0};
            size_t i = 0;
            for (; i + 16 <= k->hw; i += 16)
                for (int j = 0; j < 16; j++) lane[j] += p[i + j];
            for (int j = 0; j < 16; j++) acc += lane[j];
            for (; i < k->hw; i++) acc += p[i];
        }
        k->db[o] += (float)acc;
    }
}

static void bias_backward(const float *dy, int n, int oc, size_t hw, float *db)
{
    bias_task k = {.dy = dy, .db = db, .n = n, .c = oc, .hw = hw};
    ds_parallel_for(oc, 1, bias_backward_range, &k);
}

/* y[n, c] += b[c] */
static void bias_forward_range(void *arg, long lo, long hi)
{
    const bias_task *k = arg;
    for (long s = lo; s < hi; s++)
        for (int o = 0; o < k->c; o++) {
            float *p = k->y + ((size_t)s * k->c + o) * k->hw;
            for (size_t i = 0; i < k->hw; i++) p[i] += k->b[o];
        }
}

static void bias_forward(float *y, const float *b, int n, int c, size_t hw)
{
    bias_task k = {.y = y, .b = b, .n = n, .c = c, .hw = hw};
    ds_parallel_for(n, 1, bias_forward_range, &k);
}

/* col_g = im2col of channels [g·Cg, (g+1)·Cg) of samples s0..s0+S of x, as [kk, S·ohw]. */
static void im2col_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    const geom *q = k->q;
    size_t ld = (size_t)k->s * q->oh * q->ow, hw = (size_t)q->h * q->w;
    for (long si = lo; si < hi; si++)
        im2col(k->src + ((size_t)(k->s0 + si) * q->c + (size_t)k->gi * k->cg) * hw, k->cg, q,
               k->m + (size_t)si * q->oh * q->ow, ld);
}

static void chunk_im2col(const float *x, int s0, int s, int gi, int cg, const geom *q, float *col)
{
    chunk_task k = {.src = x, .m = col, .s = s, .s0 = s0, .gi = gi, .cg = cg, .q = q};
    ds_parallel_for(s, 1, im2col_range, &k);
}

static void col2im_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    const geom *q = k->q;
    size_t ld = (size_t)k->s * q->oh * q->ow, hw = (size_t)q->h * q->w;
    for (long si = lo; si < hi; si++)
        col2im(k->src + (size_t)si * q->oh * q->ow, k->cg, q,
               k->t + ((size_t)(k->s0 + si) * q->c + (size_t)k->gi * k->cg) * hw, ld);
}

static void chunk_col2im(const float *col, int s0, int s, int gi, int cg, const geom *q, float *x)
{
    chunk_task k = {.src = col, .t = x, .s = s, .s0 = s0, .gi = gi, .cg = cg, .q = q};
    ds_parallel_for(s, 1, col2im_range, &k);
}

/* ---- implicit im2col: the GEMM packs its panels straight from the image ---- */

/* Planes x [h, w] placed into xp [hp, wp] at row top, column left, zeros
 * around them (planes in parallel): the padded copies of the algorithms. */
typedef struct {
    const float *x;
    float *xp;
    int h, w, top, left, hp, wp;
} place_task;

static void place_range(void *arg, long lo, long hi)
{
    const place_task *k = arg;
#if defined(__AVX512F__)
    if (k->wp <= 16 && k->left + k->w <= k->wp) { /* small planes: a padded row is one masked vector */
        __mmask16 in = (__mmask16)((1u << k->w) - 1), row = (__mmask16)((1u << k->wp) - 1);
        __mmask16 at = (__mmask16)(in << k->left);
        __m512i idx = _mm512_sub_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                       _mm512_set1_epi32(k->left));
        for (long pl = lo; pl < hi; pl++) {
            const float *x = k->x + (size_t)pl * k->h * k->w;
            float *d = k->xp + (size_t)pl * k->hp * k->wp;
            for (int y = 0; y < k->hp; y++) {
                int sy = y - k->top;
                __m512 v = _mm512_setzero_ps();
                if (sy >= 0 && sy < k->h)
                    v = _mm512_maskz_permutexvar_ps(at, idx, _mm512_maskz_loadu_ps(in, x + (size_t)sy * k->w));
                _mm512_mask_storeu_ps(d + (size_t)y * k->wp, row, v);
            }
        }
        return;
    }
#endif
    for (long pl = lo; pl < hi; pl++) {
        const float *x = k->x + (size_t)pl * k->h * k->w;
        float *d = k->xp + (size_t)pl * k->hp * k->wp;
        memset(d, 0, (size_t)k->top * k->wp * sizeof *d);
        for (int y = 0; y < k->h; y++) {
            float *r = d + (size_t)(y + k->top) * k->wp;
            for (int i = 0; i < k->left; i++) r[i] = 0;
            memcpy(r + k->left, x + (size_t)y * k->w, (size_t)k->w * sizeof *r);
            for (int i = k->left + k->w; i < k->wp; i++) r[i] = 0;
        }
        memset(d + (size_t)(k->h + k->top) * k->wp, 0, (size_t)(k->hp - k->h - k->top) * k->wp * sizeof *d);
    }
}

static void place(const float *x, long planes, int h, int w, int top, int left, int hp, int wp, float *xp)
{
    place_task k = {x, xp, h, w, top, left, hp, wp};
    ds_parallel_for(planes, 4, place_range, &k);
}

/* x [planes, h, w] padded by ph, pw into scratch (or x itself when no padding). */
static const float *padded(const float *x, long planes, int h, int w, int ph, int pw, float *scratch)
{
    if (!ph && !pw) return x;
    place(x, planes, h, w, ph, pw, h + 2 * ph, w + 2 * pw, scratch);
    return scratch;
}

/* The columns of a convolution over a padded image xp [N, ctot, hp, wp],
 * channels c0.. of it: element ((c, i, j), (n, oy, ox)) is
 *   xp[n, c0 + c, oy·sh + i·dh, ox·sw + j·dw]
 * = xp[pos(n, oy, ox) + tap(c, i, j)]. */
typedef struct {
    ds_mat m; /* first, so that pack can cast */
    const float *xp;
    int ctot, hp, wp, c0, kh, kw, sh, sw, dh, dw, ow, ohw;
} im2col_view;

/* off[0..n) = tap(t0), tap(t0 + 1), ... and pos likewise: one division each
 * to start, then counters (a division per element cost more than the gather). */
static void taps(const im2col_view *v, int t0, int n, int32_t *off)
{
    int kk = v->kh * v->kw, c = t0 / kk, i = t0 % kk / v->kw, j = t0 % v->kw;
    for (int t = 0; t < n; t++) {
        off[t] = (int32_t)(((v->c0 + c) * v->hp + i * v->dh) * v->wp + j * v->dw);
        if (++j == v->kw) {
            j = 0;
            if (++i == v->kh) i = 0, c++;
        }
    }
}

static void positions(const im2col_view *v, int col0, int n, int32_t *off)
{
    int nn = col0 / v->ohw, p = col0 % v->ohw, oy = p / v->ow, ox = p % v->ow;
    int32_t plane = v->ctot * v->hp * v->wp;
    for (int t = 0; t < n; t++) {
        off[t] = nn * plane + (oy * v->sh) * v->wp + ox * v->sw;
        if (++ox == v->ow) {
            ox = 0;
            if (++oy == v->ohw / v->ow) oy = 0, nn++;
        }
    }
}

/* d[k·ld + j] = src_k[at[j]] for j < w, zero up to ld; src_k = base + off[k].
 * On AVX-512 a row of 16 is one gather (the only intrinsics in deepsky:
 * GCC does not vectorise this indexed load by itself). */
static void gather_rows(const float *base, const int32_t *off, int kc, const int32_t *at, int w, float *d, int ld)
{
#if defined(__AVX512F__)
    if (ld % 16 == 0) {
        int nv = ld / 16;
        __m512i idx[4];
        __mmask16 mask[4];
        for (int v = 0; v < nv && v < 4; v++) {
            int left = w - 16 * v;
            mask[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            idx[v] = _mm512_maskz_loadu_epi32(mask[v], at + 16 * v);
        }
        if (nv <= 4) {
            for (int k = 0; k < kc; k++) {
                const float *src = base + off[k];
                for (int v = 0; v < nv; v++)
                    _mm512_storeu_ps(d + (size_t)k * ld + 16 * v,
                                     _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask[v], idx[v], src, 4));
            }
            return;
        }
    }
#endif
    for (int k = 0; k < kc; k++) {
        const float *src = base + off[k];
        float *dk = d + (size_t)k * ld;
        for (int j = 0; j < w; j++) dk[j] = src[at[j]];
        for (int j = w; j < ld; j++) dk[j] = 0;
    }
}

/* As B of W·col: rows are taps, columns are output positions. */
static void pack_taps_by_pos(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld)
{
    const im2col_view *v = (const im2col_view *)m;
    int32_t at[64], off[256];
    positions(v, j0, w, at);
    for (int k0b = 0; k0b < kc; k0b += 256) {
        int n = kc - k0b < 256 ? kc - k0b : 256;
        taps(v, k0 + k0b, n, off);
        gather_rows(v->xp, off, n, at, w, d + (size_t)k0b * ld, ld);
    }
}

/* As B of dY·colᵀ: rows are output positions, columns are taps. */
static void pack_pos_by_taps(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld)
{
    const im2col_view *v = (const im2col_view *)m;
    int32_t at[64], off[256];
    taps(v, j0, w, at);
    for (int k0b = 0; k0b < kc; k0b += 256) {
        int n = kc - k0b < 256 ? kc - k0b : 256;
        positions(v, k0 + k0b, n, off);
        gather_rows(v->xp, off, n, at, w, d + (size_t)k0b * ld, ld);
    }
}

/* An NCHW tensor t [N, ctot, ohw] seen as a matrix with channels c0..
 * as columns and positions (n, p) as rows: element ((n, p), c) — A of dY·colᵀ. */
typedef struct {
    ds_mat m;
    const float *t;
    int ctot, c0, ohw;
} nchw_view;

static void pack_nchw(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld)
{
    const nchw_view *v = (const nchw_view *)m;
    if (w < ld) memset(d, 0, (size_t)kc * ld * sizeof *d);
    for (int k = 0; k < kc;) {
        int nn = (k0 + k) / v->ohw, p = (k0 + k) % v->ohw, len = v->ohw - p < kc - k ? v->ohw - p : kc - k;
        for (int j = 0; j < w; j++) {
            const float *src = v->t + ((size_t)nn * v->ctot + v->c0 + j0 + j) * v->ohw + p;
            for (int t = 0; t < len; t++) d[(size_t)(k + t) * ld + j] = src[t];
        }
        k += len;
    }
}

/* C [channels c0.., (n, p)] of an NCHW tensor y [N, ctot, ohw]. */
static ds_out nchw_out(float *y, int ctot, int c0, long ohw, float beta, const float *bias)
{
    return (ds_out){y + (size_t)c0 * ohw, ohw, ohw, (long)ctot * ohw, 1, beta, bias ? bias + c0 : NULL};
}

/* One stride-1 pass as y (=, or += when accumulate) the convolution of
 * `in` [n, ctot, in_h, in_w] (padding ph, pw) with m output channels per
 * group and kk taps: the forward (in = x), or dx (in = dy padded by
 * d·(k−1) − p, the flipped, transposed kernel). */
typedef struct {
    const float *in, *bias;
    float *y;
    int n, in_h, in_w, ph, pw, kh, kw, dh, dw;
    int ctot, cg, groups, m, kk, oh, ow, octot, accumulate, relu;
    int sh, sw; /* 1 but for an ocv forward with stride */
    float *copy; /* where the padded copy of `in` goes when not the scratch (the node's saved copy) */
    float slope; /* a fused leaky relu's slope (relu then 0): only the ocv tile stores it */
    int placed;  /* ocv: the scratch already holds the padded copy of `in` (dwv just made it) */
} s1_pass;

static s1_pass s1_of(const ds_node *n, int dx)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, khw = q.kh * q.kw;
    s1_pass p = {.n = q.n, .kh = q.kh, .kw = q.kw, .dh = q.dh, .dw = q.dw, .groups = q.groups, .sh = 1, .sw = 1};
    if (!dx) {
        p.in = n->in[0]->val, p.bias = n->n_in == 3 ? n->in[2]->val : NULL, p.y = n->val;
        p.in_h = q.h, p.in_w = q.w, p.ph = q.ph, p.pw = q.pw;
        p.ctot = q.c, p.cg = cg, p.m = ocg, p.kk = cg * khw, p.oh = q.oh, p.ow = q.ow, p.octot = q.oc;
        p.relu = n->fused_relu && !n->fused_slope; /* a fused leaky relu: conv_forward's leaky_post */
        p.slope = n->fused_relu ? n->fused_slope : 0;
        p.sh = q.sh, p.sw = q.sw;
        p.copy = n->saved; /* dW (dwv) reads the same padded x */
    } else {
        p.in = n->grad, p.y = n->in[0]->grad;
        p.in_h = q.oh, p.in_w = q.ow, p.ph = q.dh * (q.kh - 1) - q.ph, p.pw = q.dw * (q.kw - 1) - q.pw;
        p.ctot = q.oc, p.cg = ocg, p.m = cg, p.kk = ocg * khw, p.oh = q.h, p.ow = q.w, p.octot = q.c;
        p.accumulate = !n->in[0]->grad_fresh;
    }
    return p;
}

/* ---- stride 1: shifted products, no im2col at all ----
 *
 * One sample's input planes are copied with row pitch P = max(in_w, out_w)
 * and rows of zeros above and below (none at the sides). Output position
 * (oy, ox) is column q = oy·P + ox, and for tap t = (c, i, j) the row of
 * im2col is the copy itself, shifted:
 *   col[t][q] = xc[c·hp·P + i·dh·P + (j·dw − pw) + q]
 * except where ox + j·dw − pw falls outside [0, in_w): those lanes are
 * masked to zero. The micro-kernel reads B straight from the copy
 * (ds_tile_shifted). When out_w = P (same-size convolutions) no column is
 * wasted; otherwise columns ox ≥ out_w are computed and dropped. */
typedef struct {
    const float *xp, *apan, *bias;
    const int32_t *off;
    const int32_t *shift;  /* per kernel column j: j·dw − pw */
    const int32_t *vshift; /* direct: per kernel row i: i·dh − ph */
    float *y;
    int ctot, hp, pitch, in_w, cg, groups, m, kk, kw, oh, ow, octot, accumulate, npan, mpan;
    int direct, in_h, kh; /* direct: x itself, no copy; rows outside it masked too */
    int relu;             /* store max(0, ·) (a fused relu) */
    const uint32_t *masks; /* per panel, period masks: one per kernel column (copy) or tap (direct) */
    int period;
    int mch; /* row panels per item: all of them, or fewer when there are few columns (a batch of one) */
} shift_job;

/* The lane masks of panel p (lane l is column q0 + l, wrapping at the pitch):
 * one per kernel column j, and reading x directly, one per tap (i, j). */
static void panel_masks(const shift_job *q, int p, uint32_t *out)
{
    int nr = ds_gemm_nr(), q0 = p * nr, oy0 = q0 / q->pitch, ox0 = q0 % q->pitch;
    uint32_t jm[DS_SHIFT_MAX_TAPS];
    for (int j = 0; j < q->kw; j++) {
        uint32_t m = 0;
        for (int l = 0, ox = ox0; l < nr; l++, ox = ox + 1 == q->pitch ? 0 : ox + 1) {
            int ix = ox + q->shift[j];
            m |= (uint32_t)(ix >= 0 && ix < q->in_w) << l;
        }
        jm[j] = m;
    }
    if (!q->direct) {
        memcpy(out, jm, (size_t)q->kw * sizeof *out);
        return;
    }
    for (int i = 0; i < q->kh; i++) {
        uint32_t m = 0;
        for (int l = 0, ox = ox0, oy = oy0; l < nr; l++) {
            int iy = oy + q->vshift[i];
            m |= (uint32_t)(oy < q->oh && iy >= 0 && iy < q->in_h) << l;
            if (++ox == q->pitch) ox = 0, oy++;
        }
        for (int j = 0; j < q->kw; j++) out[i * q->kw + j] = m & jm[j];
    }
}

/* y[0..len) = t + b, or += t: whole masked vectors on AVX-512 (rows here
 * are short, 14 to 32 floats, where scalar tails cost as much as the rest) */
static inline void store_row(float *y, const float *t, int len, float b, int accumulate, int relu)
{
#if defined(__AVX512F__)
    __m512 vb = _mm512_set1_ps(b), z = _mm512_setzero_ps();
    for (int e = 0; e < len; e += 16) {
        __mmask16 m = len - e >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - e)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, t + e);
        v = accumulate ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + e)) : _mm512_add_ps(v, vb);
        if (relu) v = _mm512_max_ps(v, z);
        _mm512_mask_storeu_ps(y + e, m, v);
    }
#else
    if (accumulate)
        for (int e = 0; e < len; e++) y[e] += t[e];
    else if (relu)
        for (int e = 0; e < len; e++) y[e] = t[e] + b > 0 ? t[e] + b : 0;
    else
        for (int e = 0; e < len; e++) y[e] = t[e] + b;
#endif
}

static void shifted_range(void *arg, long lo, long hi)
{
    const shift_job *q = arg;
    int mr = ds_gemm_mr(), nr = ds_gemm_nr();
    enum { MCH = 8, KB = 256 }; /* up to MCH row panels at a time; taps in blocks of KB */
    float tiles[MCH * 8 * 64] __attribute__((aligned(64)));
    uint32_t mask[KB];
    int mchunks = (q->mpan + q->mch - 1) / q->mch;
    for (long it = lo; it < hi; it++) { /* item: (sample, group, column panel, row panels) */
        long col = it / mchunks;
        int mc = (int)(it % mchunks), p = (int)(col % q->npan), gi = (int)(col / q->npan % q->groups),
            s = (int)(col / q->npan / q->groups);
        const float *x = q->xp + ((size_t)s * q->ctot + (size_t)gi * q->cg) * q->hp * q->pitch + (size_t)p * nr;
        int q0 = p * nr, oy0 = q0 / q->pitch, ox0 = q0 % q->pitch;
        const uint32_t *jmask = q->masks + (size_t)p * q->period, period = (uint32_t)q->period;
        int m_end = (mc + 1) * q->mch < q->mpan ? (mc + 1) * q->mch : q->mpan;
        for (int m0 = mc * q->mch; m0 < m_end; m0 += MCH) {
            int mn = m_end - m0 < MCH ? m_end - m0 : MCH;
            /* k blocks outside, row panels inside: a block of the image and
             * of the weights stays in L1 */
            for (int k0 = 0; k0 < q->kk; k0 += KB) {
                int kc = q->kk - k0 < KB ? q->kk - k0 : KB;
                for (uint32_t k = 0, j = (uint32_t)k0 % period; k < (uint32_t)kc; k++, j = j + 1 == period ? 0 : j + 1)
                    mask[k] = jmask[j];
                for (int mp = 0; mp < mn; mp++)
                    ds_tile_shifted(kc, q->apan + (((size_t)gi * q->mpan + m0 + mp) * q->kk + k0) * mr, x,
                                    q->off + k0, mask, tiles + (size_t)mp * mr * nr, k0 > 0);
            }
            for (int mp = 0; mp < mn; mp++) {
                const float *t = tiles + (size_t)mp * mr * nr;
                int rows = q->m - (m0 + mp) * mr < mr ? q->m - (m0 + mp) * mr : mr, c0 = gi * q->m + (m0 + mp) * mr;
                size_t plane = (size_t)q->oh * q->ow;
                if (q->pitch == q->ow) { /* columns are the plane's own positions */
                    int valid = (int)(plane - (size_t)q0) < nr ? (int)(plane - (size_t)q0) : nr;
                    for (int i = 0; i < rows; i++)
                        store_row(q->y + ((size_t)s * q->octot + c0 + i) * plane + q0, t + i * nr, valid,
                                  q->bias ? q->bias[c0 + i] : 0, q->accumulate, q->relu);
                    continue;
                }
                for (int j = 0, oy = oy0, ox = ox0; j < nr && oy < q->oh; j += q->pitch - ox, oy++, ox = 0) {
                    int valid = ox < q->ow ? q->ow - ox : 0;
                    if (valid > nr - j) valid = nr - j;
                    for (int i = 0; i < rows; i++)
                        store_row(q->y + ((size_t)s * q->octot + c0 + i) * plane + (size_t)oy * q->ow + ox,
                                  t + i * nr + j, valid, q->bias ? q->bias[c0 + i] : 0, q->accumulate, q->relu);
                }
            }
        }
    }
}

/* Floats of slack before and after the copy: the kernel reads (masked)
 * lanes up to pw before a row and NR + pw past the last plane. */
static size_t shift_slack(int pw) { return 2 * (size_t)ds_gemm_nr() + (size_t)pw + 16; }

/* Scratch for a shifted convolution: the copy with its slack, the packed
 * weights (groups × row panels of kk×MR), the tap offsets and shifts. */
static size_t shifted_scratch(long planes, int hp, int pitch, int pw, int groups, int m, int kk)
{
    size_t mr = (size_t)ds_gemm_mr(), mpan = ((size_t)m + mr - 1) / mr;
    size_t masks = ((size_t)hp * pitch / (size_t)ds_gemm_nr() + 2) * DS_SHIFT_MAX_TAPS;
    return 2 * shift_slack(pw) + (size_t)planes * hp * pitch + groups * mpan * mr * kk + 2 * (size_t)kk + 16 +
           DS_SHIFT_MAX_TAPS + masks;
}

/* The pass s by the shifted products, weights packed with pack(). */
static void shifted_conv(const s1_pass *s, ds_graph *g, void (*pack)(const ds_node *, float *), const ds_node *node)
{
    shift_job job = {.bias = s->bias, .y = s->y, .ctot = s->ctot, .cg = s->cg, .groups = s->groups, .m = s->m,
                     .kk = s->kk, .oh = s->oh, .ow = s->ow, .octot = s->octot, .accumulate = s->accumulate,
                     .relu = s->relu},
              *q = &job;
    const float *x = s->in;
    int n = s->n, in_h = s->in_h, in_w = s->in_w, ph = s->ph, pw = s->pw, kh = s->kh, kw = s->kw, dh = s->dh,
        dw = s->dw;
    int nr = ds_gemm_nr(), mr = ds_gemm_mr(), khw = kh * kw;
    q->in_w = in_w;
    q->in_h = in_h;
    q->kw = kw;
    q->kh = kh;
    q->mpan = (q->m + mr - 1) / mr;
#if defined(__AVX512F__)
    /* masked loads never touch masked lanes: read x as it is when the output
     * rows fit its pitch */
    q->direct = q->ow <= in_w && khw <= DS_SHIFT_MAX_TAPS;
#endif
    float *apan;
    if (q->direct) {
        q->pitch = in_w;
        q->hp = in_h;
        q->xp = x;
        apan = g->work;
    } else {
        q->pitch = in_w > q->ow ? in_w : q->ow;
        q->hp = q->oh + dh * (kh - 1);
        size_t slack = shift_slack(pw), planes = (size_t)n * q->ctot;
        float *xp = g->work + slack;
        place(x, (long)planes, in_h, in_w, ph, 0, q->hp, q->pitch, xp);
        float *tail = xp + planes * q->hp * q->pitch;
        memset(g->work, 0, slack * sizeof(float));
        memset(tail, 0, slack * sizeof(float));
        q->xp = xp;
        apan = tail + slack;
    }
    pack(node, apan);
    int32_t *off = (int32_t *)(apan + (size_t)q->groups * q->mpan * mr * q->kk), *shift = off + q->kk;
    int32_t *vshift = shift + kw;
    int top = q->direct ? ph : 0; /* the copy has its zero rows; x itself starts ph rows lower */
    for (int k = 0; k < q->kk; k++)
        off[k] = (int32_t)((long)(k / khw) * q->hp * q->pitch + ((long)(k % khw / kw) * dh - top) * q->pitch +
                           (k % kw) * dw - pw);
    for (int j = 0; j < kw; j++) shift[j] = j * dw - pw;
    for (int i = 0; i < kh; i++) vshift[i] = i * dh - ph;
    q->apan = apan;
    q->off = off;
    q->shift = shift;
    q->vshift = vshift;
    q->npan = ((q->oh - 1) * q->pitch + q->ow + nr - 1) / nr;
    q->period = q->direct ? khw : kw;
    uint32_t *masks = (uint32_t *)(vshift + kh);
    for (int p = 0; p < q->npan; p++) panel_masks(q, p, masks + (size_t)p * q->period);
    q->masks = masks;
    long cols = (long)n * q->groups * q->npan, want = 8L * ds_num_threads();
    q->mch = q->mpan;
    if (cols < want) { /* few columns (small batches): split the rows too */
        long parts = (want + cols - 1) / cols;
        q->mch = (int)((q->mpan + parts - 1) / parts);
        if (q->mch < 1) q->mch = 1;
    }
    ds_parallel_for(cols * ((q->mpan + q->mch - 1) / q->mch), 1, shifted_range, q);
}

#if defined(__AVX512F__)
/* padded copy of planes into scratch (always a copy, with zeroed slack
 * after it: the streaming dW reads past the last sample) */
static float *padded_copy(const float *x, long planes, int h, int w, int ph, int pw, float *scratch)
{
    place(x, planes, h, w, ph, pw, h + 2 * ph, w + 2 * pw, scratch);
    size_t end = (size_t)planes * (h + 2 * ph) * (w + 2 * pw);
    memset(scratch + end, 0, 2 * (size_t)ds_gemm_nr() * sizeof *scratch);
    return scratch;
}
#endif

#if defined(__AVX512F__)
/* ---- AVX-512: output channels in the vector lanes ----
 *
 * The accumulators hold V vectors of 16 output channels (ob + 16v ..) at P
 * pixels (oy, ox + p) of one output row. For each tap k = (c, i, j) the
 * weights are V vector loads and the input pixels P broadcasts from a
 * zero-padded copy xp, so no lane needs a mask:
 *   acc[p][v] += xp[c, oy·sh + i·dh, (ox + p)·sw + j·dw] · Wk[k][ob + 16v ..]
 * (sw 1 or 2, a template argument: the broadcasts sit at fixed
 * displacements). V·P ≤ 28 accumulators: 4 × 7 costs 11 loads for 28 FMAs, where the
 * pixel-lane tile (ds_tile_shifted) costs 10 loads and two masks for 16.
 * That decides it when the core is shared (a hyperthread sibling busy):
 * the issue slots run out first (measured in docs/design.md). The tile is
 * transposed into NCHW rows (16 × 16 in registers) as it is stored. */
#define OCV_ACC 28

static inline __attribute__((always_inline)) void ocv_tile(int V, int P, int S, int kk, const float *restrict w,
                                                           int ldw, const float *x, const int32_t *off,
                                                           float *restrict t)
{
    __m512 c[OCV_ACC];
#pragma GCC unroll 28
    for (int i = 0; i < V * P; i++) c[i] = _mm512_setzero_ps();
    for (int k = 0; k < kk; k++) {
        const float *xk = x + off[k], *wk = w + (size_t)k * ldw;
        /* xk in a register of its own: the broadcasts address [xk + p·4],
         * which keeps each FMA one fused uop (an indexed address would split it) */
        __asm__("" : "+r"(xk));
        __m512 a[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) a[v] = _mm512_loadu_ps(wk + 16 * v);
#pragma GCC unroll 28
        for (int p = 0; p < P; p++) {
            __m512 b = _mm512_set1_ps(xk[p * S]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) c[p * V + v] = _mm512_fmadd_ps(a[v], b, c[p * V + v]);
        }
    }
#pragma GCC unroll 28
    for (int i = 0; i < V * P; i++) _mm512_store_ps(t + 16 * i, c[i]);
}

typedef void (*ocv_fn)(int kk, const float *w, int ldw, const float *x, const int32_t *off, float *t);
#define OCV_FN(V, P)                                                                                          \
    static void ocv_##V##_##P(int kk, const float *w, int ldw, const float *x, const int32_t *off, float *t) \
    {                                                                                                         \
        ocv_tile(V, P, 1, kk, w, ldw, x, off, t);                                                             \
    }                                                                                                         \
    static void ocv2_##V##_##P(int kk, const float *w, int ldw, const float *x, const int32_t *off, float *t) \
    {                                                                                                         \
        ocv_tile(V, P, 2, kk, w, ldw, x, off, t);                                                             \
    }
#define OCV_ENTRY(V, P) [P] = ocv_##V##_##P,
#define OCV2_ENTRY(V, P) [P] = ocv2_##V##_##P,
#define OCV_P7(V, X) X(V, 1) X(V, 2) X(V, 3) X(V, 4) X(V, 5) X(V, 6) X(V, 7)
#define OCV_P9(V, X) OCV_P7(V, X) X(V, 8) X(V, 9)
#define OCV_P14(V, X) OCV_P9(V, X) X(V, 10) X(V, 11) X(V, 12) X(V, 13) X(V, 14)
#define OCV_P28(V, X)                                                                                         \
    OCV_P14(V, X) X(V, 15) X(V, 16) X(V, 17) X(V, 18) X(V, 19) X(V, 20) X(V, 21) X(V, 22) X(V, 23) X(V, 24) \
        X(V, 25) X(V, 26) X(V, 27) X(V, 28)
OCV_P28(1, OCV_FN)
OCV_P14(2, OCV_FN)
OCV_P9(3, OCV_FN)
OCV_P7(4, OCV_FN)
/* ocv_table[stride − 1][V][P]: pixels 1 or 2 apart */
static const ocv_fn ocv_table[2][5][OCV_ACC + 1] = {
    {[1] = {OCV_P28(1, OCV_ENTRY)}, [2] = {OCV_P14(2, OCV_ENTRY)}, [3] = {OCV_P9(3, OCV_ENTRY)},
     [4] = {OCV_P7(4, OCV_ENTRY)}},
    {[1] = {OCV_P28(1, OCV2_ENTRY)}, [2] = {OCV_P14(2, OCV2_ENTRY)}, [3] = {OCV_P9(3, OCV2_ENTRY)},
     [4] = {OCV_P7(4, OCV2_ENTRY)}}};

typedef struct ocv_job {
    const float *xp, *w, *bias;
    const int32_t *off;
    float *y;
    int ctot, cg, hp, wpp;     /* the padded copy [N, ctot, hp, wpp]; cg channels per group */
    int groups, m, ocp, kk;    /* m output channels per group, packed to ocp (a multiple of 16) */
    int oh, ow, octot, nblk;   /* nblk blocks of at most 4 vectors of output channels */
    int accumulate, relu;
    float slope; /* with relu: store max(v, slope·v) (a fused leaky relu) */
    /* where output pixel (oy, ox) goes in y's [yh, yw] planes: (ya + ysh·oy,
     * yb + ysw·ox) — one phase of a strided dx; the identity otherwise */
    int yh, yw, ya, yb, ysh, ysw;
    int sh, sw; /* the convolution's stride (sw 1 or 2) */
} ocv_job;

/* A tile of P pixels × ocn channels (t [P][ld]) into every other pixel of
 * y's rows (one phase of a stride-2 dx): transposed 16 × 16 in registers,
 * each channel's 8 pixels spread to the even lanes (expand) and stored
 * under a mask, added to y unless the pass writes it fresh. */
static void ocv_store_phase2(const struct ocv_job *q, const float *t, int ld, int V, int P, int ocn, int s, int gi,
                             int oc0, int oy, int ox)
{
    const __m512i hi8 = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8);
    for (int v = 0; v < V; v++)
        for (int pb = 0; pb < P; pb += 16) {
            int np = P - pb < 16 ? P - pb : 16;
            __m512 r[16];
            for (int p = 0; p < 16; p++)
                r[p] = p < np ? _mm512_load_ps(t + (size_t)(pb + p) * ld + 16 * v) : _mm512_setzero_ps();
            transpose16(r);
            for (int o = 0; o < 16 && v * 16 + o < ocn; o++) {
                int oc = gi * q->m + oc0 + v * 16 + o;
                float *yr = q->y + (((size_t)s * q->octot + oc) * q->yh + q->ya + (size_t)q->ysh * oy) * q->yw +
                            q->yb + 2 * (size_t)(ox + pb);
                for (int h = 0; h < 2 && 8 * h < np; h++) {
                    int n8 = np - 8 * h < 8 ? np - 8 * h : 8;
                    __mmask16 mk = (__mmask16)(0x5555u & ((1u << (2 * n8 - 1)) - 1));
                    __m512 val = _mm512_maskz_expand_ps(0x5555, h ? _mm512_permutexvar_ps(hi8, r[o]) : r[o]);
                    if (q->accumulate) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mk, yr + 16 * h));
                    _mm512_mask_storeu_ps(yr + 16 * h, mk, val);
                }
            }
        }
}

static void ocv_range(void *arg, long lo, long hi)
{
    const ocv_job *q = arg;
    float t[OCV_ACC * 16] __attribute__((aligned(64)));
    int nv = q->ocp / 16;
    for (long it = lo; it < hi; it++) { /* item: (sample, group, channel block, output row) */
        int oy = (int)(it % q->oh);
        long r = it / q->oh;
        int b = (int)(r % q->nblk);
        r /= q->nblk;
        int gi = (int)(r % q->groups), s = (int)(r / q->groups);
        int v0 = b * nv / q->nblk, V = (b + 1) * nv / q->nblk - v0, pmax = OCV_ACC / V;
        const float *x =
            q->xp + ((size_t)s * q->ctot + (size_t)gi * q->cg) * q->hp * q->wpp + (size_t)oy * q->sh * q->wpp;
        const float *w = q->w + (size_t)gi * q->kk * q->ocp + (size_t)v0 * 16;
        int oc0 = v0 * 16, ocn = q->m - oc0 < V * 16 ? q->m - oc0 : V * 16, ld = V * 16;
        for (int ox = 0, left = (q->ow + pmax - 1) / pmax; left > 0; left--) {
            int P = (q->ow - ox + left - 1) / left; /* tiles of a row split it evenly */
            ocv_table[q->sw - 1][V][P](q->kk, w, q->ocp, x + (size_t)ox * q->sw, q->off, t);
            if (q->ysw == 2 && !q->bias && !q->relu) { /* a phase of a stride-2 dx: every other pixel */
                ocv_store_phase2(q, t, ld, V, P, ocn, s, gi, oc0, oy, ox);
                ox += P;
                continue;
            }
            if (q->ysw != 1) { /* a phase of a strided dx: every ysw-th pixel */
                for (int o = 0; o < ocn; o++) {
                    int oc = gi * q->m + oc0 + o;
                    float *yr = q->y + (((size_t)s * q->octot + oc) * q->yh + q->ya + (size_t)q->ysh * oy) * q->yw +
                                q->yb + (size_t)q->ysw * ox;
                    for (int p = 0; p < P; p++)
                        yr[(size_t)p * q->ysw] = (q->accumulate ? yr[(size_t)p * q->ysw] : 0) + t[p * ld + o];
                }
                ox += P;
                continue;
            }
            /* 16 pixels × 16 channels at a time, transposed in registers */
            for (int v = 0; v < V; v++)
                for (int pb = 0; pb < P; pb += 16) {
                    int np = P - pb < 16 ? P - pb : 16;
                    __mmask16 mk = (__mmask16)((1u << np) - 1);
                    __m512 r[16];
                    for (int p = 0; p < 16; p++)
                        r[p] = p < np ? _mm512_load_ps(t + (size_t)(pb + p) * ld + 16 * v) : _mm512_setzero_ps();
                    transpose16(r);
                    for (int o = 0; o < 16 && v * 16 + o < ocn; o++) {
                        int oc = gi * q->m + oc0 + v * 16 + o;
                        float *yr = q->y + (((size_t)s * q->octot + oc) * q->yh + q->ya + (size_t)q->ysh * oy) * q->yw +
                                    q->yb + ox + pb;
                        __m512 val = r[o];
                        if (q->accumulate) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mk, yr));
                        else {
                            if (q->bias) val = _mm512_add_ps(val, _mm512_set1_ps(q->bias[oc]));
                            if (q->relu)
                                val = _mm512_max_ps(val, q->slope ? _mm512_mul_ps(val, _mm512_set1_ps(q->slope))
                                                                  : _mm512_setzero_ps());
                        }
                        _mm512_mask_storeu_ps(yr, mk, val);
                    }
                }
            ox += P;
        }
    }
}

/* Scratch of an ocv convolution: the padded copy, the packed weights
 * (groups × kk × ocp, 64-byte aligned) and the tap offsets. */
static size_t ocv_scratch(long planes, int hp, int wpp, int groups, int m, int kk)
{
    size_t ocp = ((size_t)m + 15) / 16 * 16;
    return ((size_t)planes * hp * wpp + 15) / 16 * 16 + (size_t)groups * kk * ocp + (size_t)kk + 16;
}

/* Whether the ocv tile suits m output channels per group: at least 16 and
 * at most a quarter of the lanes wasted on padding. */
static bool ocv_fits(int m) { return m >= 16 && ((m + 15) / 16 * 16 - m) * 4 <= m; }

/* The pass s by the ocv tile, weights laid out by pack() as [groups][kk][ocp]. */
static void ocv_conv(const s1_pass *s, ds_graph *g, void (*pack)(const ds_node *, float *, int), const ds_node *node)
{
    ocv_job job = {.bias = s->bias, .y = s->y, .ctot = s->ctot, .cg = s->cg, .groups = s->groups, .m = s->m,
                   .kk = s->kk, .oh = s->oh, .ow = s->ow, .octot = s->octot, .accumulate = s->accumulate,
                   .relu = s->relu || s->slope, .slope = s->slope, .yh = s->oh, .yw = s->ow, .ysh = 1, .ysw = 1,
                   .sh = s->sh, .sw = s->sw},
            *q = &job;
    int n = s->n, in_h = s->in_h, in_w = s->in_w, ph = s->ph, pw = s->pw, kh = s->kh, kw = s->kw, dh = s->dh,
        dw = s->dw;
    const float *x = s->in;
    int khw = kh * kw;
    q->hp = in_h + 2 * ph;
    q->wpp = in_w + 2 * pw;
    q->ocp = (q->m + 15) / 16 * 16;
    q->nblk = (q->ocp / 16 + 3) / 4;
    size_t planes = (size_t)n * q->ctot, xsz = (planes * q->hp * q->wpp + 15) / 16 * 16;
    float *wpk = g->work + xsz;
    const float *xp = s->placed && (ph || pw) ? g->work /* x when unpadded */
                                              : padded(x, (long)planes, in_h, in_w, ph, pw, s->copy ? s->copy : g->work);
    pack(node, wpk, q->ocp);
    int32_t *off = (int32_t *)(wpk + (size_t)q->groups * q->kk * q->ocp);
    for (int k = 0; k < q->kk; k++)
        off[k] = (int32_t)((long)(k / khw) * q->hp * q->wpp + (long)(k % khw / kw) * dh * q->wpp + (k % kw) * dw);
    q->xp = xp;
    q->w = wpk;
    q->off = off;
    ds_parallel_for((long)n * q->groups * q->nblk * q->oh, 1, ocv_range, q);
}

/* ---- dx of a strided convolution, by phases ----
 *
 * The dx pixels (a + sh·ty, b + sw·tx) of one phase (a, b) receive only
 * the taps i with (a + ph − i·dh) ≡ 0 (mod sh) (and likewise j), each from
 * dy at (ty + δi, tx + δj), δi = (a + ph − i·dh) / sh: a stride-1
 * correlation of dy (padded so every δ is in range) with a sub-kernel,
 * which the ocv tile computes; the phase's pixels are stored every sw-th.
 * No col2im, and no FLOP on the zeros a dilated dy would hold. */
typedef struct {
    int n;         /* taps along the axis in this phase */
    int tap[16];   /* kernel index i */
    int delta[16]; /* δi */
} phase_taps;

static phase_taps phase_of(int a, int k, int s, int p, int d)
{
    phase_taps t = {0};
    for (int i = 0; i < k && t.n < 16; i++) {
        int v = a + p - i * d;
        if (((v % s) + s) % s == 0) t.tap[t.n] = i, t.delta[t.n++] = v / s;
    }
    return t;
}

/* the padding of dy (top, bottom) along one axis so every phase's reads are in range */
static void phase_pad(int k, int s, int p, int d, int in, int out, int *lo, int *hi)
{
    *lo = *hi = 0;
    for (int a = 0; a < s && a < in; a++) {
        phase_taps t = phase_of(a, k, s, p, d);
        int last = (in - 1 - a) / s; /* the phase's last ty */
        for (int u = 0; u < t.n; u++) {
            if (-t.delta[u] > *lo) *lo = -t.delta[u];
            if (last + t.delta[u] - (out - 1) > *hi) *hi = last + t.delta[u] - (out - 1);
        }
    }
}

static bool phases_fit(const geom *q)
{
    return (q->sh > 1 || q->sw > 1) && q->kh <= 16 && q->kw <= 16 && ocv_fits(q->c / q->groups);
}

static size_t phases_scratch(const geom *q)
{
    int t, b, l, r;
    phase_pad(q->kh, q->sh, q->ph, q->dh, q->h, q->oh, &t, &b);
    phase_pad(q->kw, q->sw, q->pw, q->dw, q->w, q->ow, &l, &r);
    size_t ocp = ((size_t)(q->c / q->groups) + 15) / 16 * 16, kk = (size_t)(q->oc / q->groups) * q->kh * q->kw;
    size_t dyp = (size_t)q->n * q->oc * (q->oh + t + b) * (q->ow + l + r);
    return (dyp + 15) / 16 * 16 + (size_t)q->groups * kk * ocp + kk + 16;
}

/* dx (+)= the dx of the strided convolution q with weight w [OC, cg, kh, kw] and output gradient dy */
/* All phases of one (sample, group, channel block): each dx row is written by its phases
 * one after the other while it is in cache (phase by phase over the whole batch, a 3 MB dx
 * went through memory once per phase). */
#define PHASES_MAX 16
typedef struct {
    const ocv_job *jobs;
    int np;
} phases_job;

static void phases_range(void *arg, long lo, long hi)
{
    const phases_job *q = arg;
    for (long it = lo; it < hi; it++)
        for (int p = 0; p < q->np; p++) ocv_range((void *)&q->jobs[p], it * q->jobs[p].oh, (it + 1) * q->jobs[p].oh);
}

static void phases_run(geom q, const float *dy, const float *w, float *dx, bool fresh, float *work)
{
    int cg = q.c / q.groups, ocg = q.oc / q.groups, ocp = (cg + 15) / 16 * 16, khw = q.kh * q.kw;
    int pt, pb, pl, pr;
    phase_pad(q.kh, q.sh, q.ph, q.dh, q.h, q.oh, &pt, &pb);
    phase_pad(q.kw, q.sw, q.pw, q.dw, q.w, q.ow, &pl, &pr);
    int hp = q.oh + pt + pb, wpp = q.ow + pl + pr;
    size_t dsz = ((size_t)q.n * q.oc * hp * wpp + 15) / 16 * 16;
    float *wpk = work + dsz;
    int32_t *off = (int32_t *)(wpk + (size_t)q.groups * ocg * khw * ocp);
    const float *dyp = dy;
    if (pt || pb || pl || pr) {
        place(dy, (long)q.n * q.oc, q.oh, q.ow, pt, pl, hp, wpp, work);
        dyp = work;
    }
    bool empty = false;
    for (int a = 0; a < q.sh && a < q.h; a++)
        for (int b = 0; b < q.sw && b < q.w; b++)
            empty |= !phase_of(a, q.kh, q.sh, q.ph, q.dh).n || !phase_of(b, q.kw, q.sw, q.pw, q.dw).n;
    if (fresh && empty) { /* pixels no tap reaches (a kernel smaller than the stride) are 0 */
        memset(dx, 0, (size_t)q.n * q.c * q.h * q.w * sizeof *dx);
        fresh = false;
    }
    /* the phases' taps partition the kernel's: their packed weights and offsets fit side by side */
    ocv_job jobs[PHASES_MAX];
    int np = 0;
    bool together = q.sh * q.sw <= PHASES_MAX;
    size_t kcum = 0;
    for (int a = 0; a < q.sh && a < q.h; a++)
        for (int b = 0; b < q.sw && b < q.w; b++) {
            phase_taps ti = phase_of(a, q.kh, q.sh, q.ph, q.dh), tj = phase_of(b, q.kw, q.sw, q.pw, q.dw);
            int th = (q.h - 1 - a) / q.sh + 1, tw = (q.w - 1 - b) / q.sw + 1, kk = ocg * ti.n * tj.n;
            if (!kk) continue;
            float *wp = wpk + (size_t)q.groups * kcum * ocp;
            int32_t *op = off + kcum;
            kcum += (size_t)kk;
            for (int gi = 0; gi < q.groups; gi++)
                for (int o = 0; o < ocg; o++)
                    for (int u = 0; u < ti.n; u++)
                        for (int v = 0; v < tj.n; v++) {
                            int k = (o * ti.n + u) * tj.n + v;
                            float *row = wp + ((size_t)gi * kk + k) * ocp;
                            for (int c = 0; c < ocp; c++)
                                row[c] = c < cg ? w[(((size_t)gi * ocg + o) * cg + c) * khw +
                                                    (size_t)ti.tap[u] * q.kw + tj.tap[v]]
                                                : 0;
                            if (gi == 0)
                                op[k] = (int32_t)(((long)o * hp + ti.delta[u] + pt) * wpp + tj.delta[v] + pl);
                        }
            ocv_job j = {.xp = dyp, .w = wp, .off = op, .y = dx, .ctot = q.oc, .cg = ocg, .hp = hp, .wpp = wpp,
                         .groups = q.groups, .m = cg, .ocp = ocp, .kk = kk, .oh = th, .ow = tw, .octot = q.c,
                         .nblk = (ocp / 16 + 3) / 4, .accumulate = !fresh, .yh = q.h, .yw = q.w, .ya = a, .yb = b,
                         .ysh = q.sh, .ysw = q.sw, .sh = 1, .sw = 1};
            if (together) jobs[np++] = j;
            else ds_parallel_for((long)q.n * q.groups * j.nblk * th, 1, ocv_range, &j);
        }
    if (np) {
        phases_job pj = {jobs, np};
        ds_parallel_for((long)q.n * q.groups * jobs[0].nblk, 1, phases_range, &pj);
    }
}

static void conv_dx_phases(ds_node *n, ds_graph *g)
{
    phases_run(geom_of(n, 0), n->grad, n->in[1]->val, n->in[0]->grad, n->in[0]->grad_fresh, g->work);
}

/* d[j][i] = s[i][j] for i < rows, j < cols, by 16 × 16 blocks in registers;
 * d's rows are width ≥ rows wide (ldd apart, negative for a reversed order)
 * and get zeros from rows to width. */
static void transpose_into(const float *s, long lds, int rows, int cols, float *d, long ldd, int width)
{
    for (int r0 = 0; r0 < width; r0 += 16) {
        int nr = rows - r0 < 16 ? (rows > r0 ? rows - r0 : 0) : 16, nw = width - r0 < 16 ? width - r0 : 16;
        __mmask16 mw = (__mmask16)((1u << nw) - 1);
        for (int c0 = 0; c0 < cols; c0 += 16) {
            int nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 mc = (__mmask16)((1u << nc) - 1);
            __m512 t[16];
            for (int i = 0; i < 16; i++)
                t[i] = i < nr ? _mm512_maskz_loadu_ps(mc, s + (r0 + i) * lds + c0) : _mm512_setzero_ps();
            transpose16(t);
            for (int j = 0; j < nc; j++) _mm512_mask_storeu_ps(d + (c0 + j) * ldd + r0, mw, t[j]);
        }
    }
}

/* the transposed kernel for the forward: Wk[t][o] = W[g·ocg + o, t] (t over cg·kh·kw), zeros from ocg to ocp */
static void ocv_pack_w(const ds_node *n, float *out, int ocp)
{
    geom q = geom_of(n, n->op->shape == convt_shape); /* a transposed one's weight has the same layout */
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw;
    const float *w = n->in[1]->val;
    for (int gi = 0; gi < q.groups; gi++)
        transpose_into(w + (size_t)gi * ocg * kk, kk, ocg, kk, out + (size_t)gi * kk * ocp, ocp, ocp);
}

/* the flipped, transposed kernel for dx: Wk[(o, t)][c] = W[g·ocg + o, c, kh·kw − 1 − t] */
static void ocv_pack_wflip(const ds_node *n, float *out, int ocp)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, khw = q.kh * q.kw, kk = ocg * khw;
    const float *w = n->in[1]->val;
    for (int gi = 0; gi < q.groups; gi++)
        for (int o = 0; o < ocg; o++) /* [cg][khw] transposed into rows t = khw − 1 .. 0 */
            transpose_into(w + ((size_t)gi * ocg + o) * cg * khw, khw, cg, khw,
                           out + ((size_t)gi * kk + (size_t)o * khw + khw - 1) * ocp, -(long)ocp, ocp);
}
#endif

#if defined(__AVX512F__)
/* ---- AVX-512: dW with output channels in the vector lanes ----
 *
 *   dWk[(c, i, j)][oc] += Σ_(n, oy, ox) xp[n, c, oy·sh + i·dh, ox·sw + j] · dyT[n, (oy, ox)][oc]
 *
 * dyT is dy transposed per sample to pixel-major rows of ocp channels. A
 * block of R kernel rows (c, i) × KW taps × V vectors of output channels
 * keeps its sums in registers over one sample's pixels: per pixel V loads
 * of dyT and R·KW broadcasts of xp, each at a fixed displacement from the
 * R row pointers, for V·R·KW FMAs. Nothing is packed (the GEMM form of
 * dW packs an im2col panel for every product). The sums live per fixed
 * group of samples and are added in order at the end, so the result does
 * not depend on the thread count. KW ∈ {1, 3, 5}, dilation 1 along rows,
 * any stride. */
#define DWV_GROUPS 8

static inline __attribute__((always_inline)) void dwv_tile(int V, int R, int KW, const float *x, const int32_t *roff,
                                                           const float *dyt, int ldd, int oh, int ow, int rstep,
                                                           int sw, float *acc, int lda)
{
    __m512 c[28];
    const float *xr[9];
#pragma GCC unroll 9
    for (int r = 0; r < R; r++) xr[r] = x + roff[r];
#pragma GCC unroll 28
    for (int t = 0; t < R * KW; t++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) c[t * V + v] = _mm512_loadu_ps(acc + (size_t)t * lda + 16 * v);
    for (int oy = 0; oy < oh; oy++) {
        const float *d = dyt + (size_t)oy * ow * ldd, *xq[9];
#pragma GCC unroll 9
        for (int r = 0; r < R; r++) xq[r] = xr[r] + (size_t)oy * rstep;
        for (int ox = 0; ox < ow; ox++, d += ldd) {
            __m512 dv[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) dv[v] = _mm512_loadu_ps(d + 16 * v);
            /* one pointer per kernel row, stepped per pixel: the broadcasts
             * address [xq + j·4] (an indexed address splits a fused FMA) */
#pragma GCC unroll 9
            for (int r = 0; r < R; r++)
#pragma GCC unroll 5
                for (int j = 0; j < KW; j++) {
                    __m512 b = _mm512_set1_ps(xq[r][j]);
#pragma GCC unroll 4
                    for (int v = 0; v < V; v++)
                        c[(r * KW + j) * V + v] = _mm512_fmadd_ps(dv[v], b, c[(r * KW + j) * V + v]);
                }
#pragma GCC unroll 9
            for (int r = 0; r < R; r++) {
                xq[r] += sw;
                __asm__("" : "+r"(xq[r])); /* kept as pointers, not folded into one index */
            }
        }
    }
#pragma GCC unroll 28
    for (int t = 0; t < R * KW; t++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) _mm512_storeu_ps(acc + (size_t)t * lda + 16 * v, c[t * V + v]);
}

typedef void (*dwv_fn)(const float *x, const int32_t *roff, const float *dyt, int ldd, int oh, int ow, int rstep,
                       int sw, float *acc, int lda);
#define DWV_FN(KW, V, R)                                                                                     \
    static void dwv_##KW##_##V##_##R(const float *x, const int32_t *roff, const float *dyt, int ldd, int oh, \
                                     int ow, int rstep, int sw, float *acc, int lda)                         \
    {                                                                                                        \
        dwv_tile(V, R, KW, x, roff, dyt, ldd, oh, ow, rstep, sw, acc, lda);                                  \
    }
#define DWV_ENTRY(KW, V, R) [R] = dwv_##KW##_##V##_##R,
/* rows per block, at most: V·R·KW sums + V rows of dyT + 1 within 32 registers */
#define DWV_3(X)                                                                                               \
    X(3, 1, 1) X(3, 1, 2) X(3, 1, 3) X(3, 1, 4) X(3, 1, 5) X(3, 1, 6) X(3, 1, 7) X(3, 1, 8) X(3, 1, 9) X(3, 2, 1) \
        X(3, 2, 2) X(3, 2, 3) X(3, 2, 4) X(3, 3, 1) X(3, 3, 2) X(3, 3, 3) X(3, 4, 1) X(3, 4, 2)
#define DWV_5(X) X(5, 1, 1) X(5, 1, 2) X(5, 1, 3) X(5, 1, 4) X(5, 1, 5) X(5, 2, 1) X(5, 2, 2) X(5, 3, 1) X(5, 4, 1)
#define DWV_1(X)                                                                                               \
    X(1, 1, 1) X(1, 1, 2) X(1, 1, 3) X(1, 1, 4) X(1, 1, 5) X(1, 1, 6) X(1, 1, 7) X(1, 1, 8) X(1, 1, 9) X(1, 2, 1) \
        X(1, 2, 2) X(1, 2, 3) X(1, 2, 4) X(1, 2, 5) X(1, 2, 6) X(1, 2, 7) X(1, 2, 8) X(1, 2, 9) X(1, 3, 1)       \
            X(1, 3, 2) X(1, 3, 3) X(1, 3, 4) X(1, 3, 5) X(1, 3, 6) X(1, 3, 7) X(1, 3, 8) X(1, 4, 1) X(1, 4, 2)  \
                X(1, 4, 3) X(1, 4, 4) X(1, 4, 5) X(1, 4, 6)
/* 4 wide (the DCGAN's 4×4 stride-2 kernels): V·R·4 + V + 1 ≤ 32 */
#define DWV_4(X) X(4, 1, 1) X(4, 1, 2) X(4, 1, 3) X(4, 1, 4) X(4, 1, 5) X(4, 1, 6) X(4, 1, 7) X(4, 2, 1) X(4, 2, 2) \
    X(4, 2, 3) X(4, 3, 1) X(4, 3, 2) X(4, 4, 1)
DWV_1(DWV_FN)
DWV_4(DWV_FN)
DWV_3(DWV_FN)
DWV_5(DWV_FN)
static const dwv_fn dwv1[5][10] = {[1] = {DWV_ENTRY(1, 1, 1) DWV_ENTRY(1, 1, 2) DWV_ENTRY(1, 1, 3) DWV_ENTRY(1, 1, 4)
                                              DWV_ENTRY(1, 1, 5) DWV_ENTRY(1, 1, 6) DWV_ENTRY(1, 1, 7)
                                                  DWV_ENTRY(1, 1, 8) DWV_ENTRY(1, 1, 9)},
                                   [2] = {DWV_ENTRY(1, 2, 1) DWV_ENTRY(1, 2, 2) DWV_ENTRY(1, 2, 3) DWV_ENTRY(1, 2, 4)
                                              DWV_ENTRY(1, 2, 5) DWV_ENTRY(1, 2, 6) DWV_ENTRY(1, 2, 7)
                                                  DWV_ENTRY(1, 2, 8) DWV_ENTRY(1, 2, 9)},
                                   [3] = {DWV_ENTRY(1, 3, 1) DWV_ENTRY(1, 3, 2) DWV_ENTRY(1, 3, 3) DWV_ENTRY(1, 3, 4)
                                              DWV_ENTRY(1, 3, 5) DWV_ENTRY(1, 3, 6) DWV_ENTRY(1, 3, 7)
                                                  DWV_ENTRY(1, 3, 8)},
                                   [4] = {DWV_ENTRY(1, 4, 1) DWV_ENTRY(1, 4, 2) DWV_ENTRY(1, 4, 3) DWV_ENTRY(1, 4, 4)
                                              DWV_ENTRY(1, 4, 5) DWV_ENTRY(1, 4, 6)}};
static const dwv_fn dwv3[5][10] = {[1] = {DWV_ENTRY(3, 1, 1) DWV_ENTRY(3, 1, 2) DWV_ENTRY(3, 1, 3) DWV_ENTRY(3, 1, 4)
                                              DWV_ENTRY(3, 1, 5) DWV_ENTRY(3, 1, 6) DWV_ENTRY(3, 1, 7)
                                                  DWV_ENTRY(3, 1, 8) DWV_ENTRY(3, 1, 9)},
                                   [2] = {DWV_ENTRY(3, 2, 1) DWV_ENTRY(3, 2, 2) DWV_ENTRY(3, 2, 3) DWV_ENTRY(3, 2, 4)},
                                   [3] = {DWV_ENTRY(3, 3, 1) DWV_ENTRY(3, 3, 2) DWV_ENTRY(3, 3, 3)},
                                   [4] = {DWV_ENTRY(3, 4, 1) DWV_ENTRY(3, 4, 2)}};
static const dwv_fn dwv5[5][10] = {[1] = {DWV_ENTRY(5, 1, 1) DWV_ENTRY(5, 1, 2) DWV_ENTRY(5, 1, 3) DWV_ENTRY(5, 1, 4)
                                              DWV_ENTRY(5, 1, 5)},
                                   [2] = {DWV_ENTRY(5, 2, 1) DWV_ENTRY(5, 2, 2)},
                                   [3] = {DWV_ENTRY(5, 3, 1)},
                                   [4] = {DWV_ENTRY(5, 4, 1)}};
static const dwv_fn dwv4[5][10] = {[1] = {DWV_ENTRY(4, 1, 1) DWV_ENTRY(4, 1, 2) DWV_ENTRY(4, 1, 3) DWV_ENTRY(4, 1, 4)
                                              DWV_ENTRY(4, 1, 5) DWV_ENTRY(4, 1, 6) DWV_ENTRY(4, 1, 7)},
                                   [2] = {DWV_ENTRY(4, 2, 1) DWV_ENTRY(4, 2, 2) DWV_ENTRY(4, 2, 3)},
                                   [3] = {DWV_ENTRY(4, 3, 1) DWV_ENTRY(4, 3, 2)},
                                   [4] = {DWV_ENTRY(4, 4, 1)}};
static const int dwv1_rmax[5] = {0, 9, 9, 8, 6}, dwv3_rmax[5] = {0, 9, 4, 3, 2}, dwv5_rmax[5] = {0, 5, 2, 1, 1};
static const int dwv4_rmax[5] = {0, 7, 3, 2, 1};

/* Whether dW of this convolution takes the dwv path */
static bool dwv_fits(const geom *q)
{
    int ocg = q->oc / q->groups;
    return q->dw == 1 && (q->kw == 1 || q->kw == 3 || q->kw == 4 || q->kw == 5) && ocv_fits(ocg);
}

static size_t dwv_scratch(const geom *q)
{
    size_t ocp = ((size_t)(q->oc / q->groups) + 15) / 16 * 16, kk = (size_t)(q->c / q->groups) * q->kh * q->kw;
    size_t groups = q->n < DWV_GROUPS ? (size_t)q->n : DWV_GROUPS;
    size_t xp = ((size_t)q->n * q->c * (q->h + 2 * q->ph) * (q->w + 2 * q->pw) + 15) / 16 * 16;
    size_t dyt = (size_t)q->n * q->groups * q->oh * q->ow * ocp;
    return xp + dyt + groups * q->groups * kk * ocp + (size_t)(q->c / q->groups) * q->kh + 16;
}

typedef struct {
    const float *xp, *dyt;
    float *acc;
    const int32_t *roff; /* per kernel row (c, i): c·hp·wpp + i·dh·wpp */
    int n, sgroups, groups, ctot, cg, hp, wpp, oh, ow, kh, kw, ocp, kk, nblk, sh, sw;
} dwv_job;

static void dwv_range(void *arg, long lo, long hi)
{
    const dwv_job *q = arg;
    int rows = q->cg * q->kh, nv = q->ocp / 16;
    const int *rmax = q->kw == 1 ? dwv1_rmax : q->kw == 3 ? dwv3_rmax : q->kw == 4 ? dwv4_rmax : dwv5_rmax;
    for (long gr = lo; gr < hi; gr++) {
        float *acc0 = q->acc + (size_t)gr * q->groups * q->kk * q->ocp;
        memset(acc0, 0, (size_t)q->groups * q->kk * q->ocp * sizeof *acc0);
        int s0 = (int)((long)q->n * gr / q->sgroups), s1 = (int)((long)q->n * (gr + 1) / q->sgroups);
        for (int s = s0; s < s1; s++)
            for (int gi = 0; gi < q->groups; gi++) {
                const float *x = q->xp + ((size_t)s * q->ctot + (size_t)gi * q->cg) * q->hp * q->wpp;
                const float *dyt = q->dyt + ((size_t)s * q->groups + gi) * q->oh * q->ow * q->ocp;
                float *acc = acc0 + (size_t)gi * q->kk * q->ocp;
                for (int b = 0; b < q->nblk; b++) {
                    int v0 = b * nv / q->nblk, V = (b + 1) * nv / q->nblk - v0;
                    for (int r0 = 0; r0 < rows;) {
                        int R = rows - r0 < rmax[V] ? rows - r0 : rmax[V];
                        dwv_fn f = q->kw == 1   ? dwv1[V][R]
                                   : q->kw == 3 ? dwv3[V][R]
                                   : q->kw == 4 ? dwv4[V][R]
                                                : dwv5[V][R];
                        f(x, q->roff + r0, dyt + (size_t)v0 * 16, q->ocp, q->oh, q->ow, q->sh * q->wpp, q->sw,
                          acc + (size_t)r0 * q->kw * q->ocp + (size_t)v0 * 16, q->ocp);
                        r0 += R;
                    }
                }
            }
    }
}

/* dW [OC, cg, kh, kw] += the dW of the convolution q of x (or its padded copy xp) with output gradient dy */
static void dwv_run(geom q, const float *x, const float *xpad, const float *dy, float *dw, float *work)
{
    int cg = q.c / q.groups, ocg = q.oc / q.groups, ocp = (ocg + 15) / 16 * 16, kk = cg * q.kh * q.kw;
    int hp = q.h + 2 * q.ph, wpp = q.w + 2 * q.pw, ohw = q.oh * q.ow;
    int sgroups = q.n < DWV_GROUPS ? q.n : DWV_GROUPS;
    size_t xsz = ((size_t)q.n * q.c * hp * wpp + 15) / 16 * 16;
    float *dyt = work + xsz, *acc = dyt + (size_t)q.n * q.groups * ohw * ocp;
    int32_t *roff = (int32_t *)(acc + (size_t)sgroups * q.groups * kk * ocp);
    /* the forward's padded copy when it kept one */
    const float *xp = xpad ? xpad : padded(x, (long)q.n * q.c, q.h, q.w, q.ph, q.pw, work);
    ds_conv_dyt(dy, dyt, q.n, q.oc, ocg, ocp, q.groups, ohw); /* conv_thin.c */
    for (int r = 0; r < cg * q.kh; r++) roff[r] = (int32_t)(((long)(r / q.kh) * hp + (long)(r % q.kh) * q.dh) * wpp);
    dwv_job j = {xp, dyt, acc, roff, q.n, sgroups, q.groups, q.c, cg, hp, wpp, q.oh, q.ow, q.kh, q.kw, ocp, kk,
                 (ocp / 16 + 3) / 4, q.sh, q.sw};
    ds_parallel_for_grains(sgroups, 1, DWV_GROUPS, dwv_range, &j);
    /* dW[oc, k] += Σ_groups acc[group][k][oc], in order (in double, 8 channels a vector: acc read along rows) */
    for (int gi = 0; gi < q.groups; gi++)
        for (int k = 0; k < kk; k++)
            for (int o0 = 0; o0 < ocg; o0 += 8) {
                __m512d sum = _mm512_setzero_pd();
                for (int gr = 0; gr < sgroups; gr++)
                    sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm256_loadu_ps(
                                                 acc + (((size_t)gr * q.groups + gi) * kk + k) * ocp + o0)));
                double v[8];
                _mm512_storeu_pd(v, sum);
                for (int o = o0; o < o0 + 8 && o < ocg; o++) dw[((size_t)gi * ocg + o) * kk + k] += (float)v[o - o0];
            }
}

static void conv_dw_ocv(ds_node *n, ds_graph *g)
{
    dwv_run(geom_of(n, 0), n->in[0]->val, n->saved, n->grad, n->in[1]->grad, g->work);
}
#endif

/* W [OC, cg, kh, kw] as groups × panels of W_g [ocg × kk] */
static void pack_w(const ds_node *n, float *apan)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, mr = ds_gemm_mr();
    int mpan = (ocg + mr - 1) / mr;
    for (int gi = 0; gi < q.groups; gi++)
        ds_pack_panels(ocg, kk, n->in[1]->val + (size_t)gi * ocg * kk, kk, apan + (size_t)gi * mpan * mr * kk);
}

/* the flipped, transposed kernel W'_g [cg × (ocg·kh·kw)], W'[c, oc, i, j] = W[oc, c, kh−1−i, kw−1−j] */
static void pack_wflip(const ds_node *n, float *apan)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, khw = q.kh * q.kw, kk = ocg * khw, mr = ds_gemm_mr();
    int mpan = (cg + mr - 1) / mr;
    const float *w = n->in[1]->val;
    for (int gi = 0; gi < q.groups; gi++) /* apan[g][c / MR][k][c % MR], k = (oc, t) */
        for (int c = 0; c < mpan * mr; c++)
            for (int o = 0; o < ocg; o++)
                for (int t = 0; t < khw; t++) {
                    size_t at = (((size_t)gi * mpan + c / mr) * kk + (size_t)o * khw + t) * mr + c % mr;
                    apan[at] = c < cg ? w[(((size_t)gi * ocg + o) * cg + c) * khw + (khw - 1 - t)] : 0;
                }
}

/* ---- stride 1, few channels: dW by streaming dot products ----
 *
 *   dW[oc, t] += Σ_n Σ_q dy'_n[oc, q] · xp_n[off(t) + q]
 *
 * with dy' dy on the padded-width grid (zeros at the dropped columns), so
 * both operands run along memory and nothing is packed. A 4×4 block of
 * (oc, t) keeps 16 vectors of partial sums; those live in memory between
 * samples (one set per fixed group of samples, summed in order at the end:
 * the result does not depend on the thread count). Used when the partial
 * sums of a group fit in L2 (DW_ACC_BYTES); the GEMM path does the rest. */
#if defined(__AVX512F__)
typedef struct {
    const float *xp, *dyq;
    float *acc;
    const int32_t *off;
    int n, groups, ctot, cg, hp, wp, oc, ocg, g, taps4, qp;
} dwd_job;

static void dwd_range(void *arg, long lo, long hi)
{
    const dwd_job *q = arg;
    size_t per_group = (size_t)q->g * q->ocg * q->taps4 * 16;
    for (long gr = lo; gr < hi; gr++) {
        float *acc0 = q->acc + (size_t)gr * per_group;
        memset(acc0, 0, per_group * sizeof *acc0);
        int s0 = (int)((long)q->n * gr / q->groups), s1 = (int)((long)q->n * (gr + 1) / q->groups);
        for (int s = s0; s < s1; s++)
            for (int gi = 0; gi < q->g; gi++) {
                const float *x = q->xp + ((size_t)s * q->ctot + (size_t)gi * q->cg) * q->hp * q->wp;
                for (int o = 0; o < q->ocg; o += 4) {
                    const float *d = q->dyq + ((size_t)s * q->oc + (size_t)gi * q->ocg + o) * q->qp;
                    for (int t = 0; t < q->taps4; t += 4) {
                        float *a = acc0 + (((size_t)gi * q->ocg + o) * q->taps4 + (size_t)t * 4) * 16;
                        const float *x0 = x + q->off[t], *x1 = x + q->off[t + 1], *x2 = x + q->off[t + 2],
                                    *x3 = x + q->off[t + 3];
                        __m512 c[16];
                        for (int i = 0; i < 16; i++) c[i] = _mm512_load_ps(a + 16 * i);
                        for (int p = 0; p < q->qp; p += 16) {
                            __m512 b0 = _mm512_loadu_ps(x0 + p), b1 = _mm512_loadu_ps(x1 + p),
                                   b2 = _mm512_loadu_ps(x2 + p), b3 = _mm512_loadu_ps(x3 + p);
                            for (int i = 0; i < 4; i++) {
                                __m512 di = _mm512_load_ps(d + (size_t)i * q->qp + p);
                                c[4 * i + 0] = _mm512_fmadd_ps(di, b0, c[4 * i + 0]);
                                c[4 * i + 1] = _mm512_fmadd_ps(di, b1, c[4 * i + 1]);
                                c[4 * i + 2] = _mm512_fmadd_ps(di, b2, c[4 * i + 2]);
                                c[4 * i + 3] = _mm512_fmadd_ps(di, b3, c[4 * i + 3]);
                            }
                        }
                        for (int i = 0; i < 16; i++) _mm512_store_ps(a + 16 * i, c[i]);
                    }
                }
            }
    }
}

/* dy [N, oc, oh, ow] into dyq [N, oc, qp]: row oy at oy·wp, zeros elsewhere */
typedef struct {
    const float *dy;
    float *dyq;
    int oh, ow, wp, qp;
} dyq_job;

static void dyq_range(void *arg, long lo, long hi)
{
    const dyq_job *k = arg;
    for (long pl = lo; pl < hi; pl++) {
        float *d = k->dyq + (size_t)pl * k->qp;
        const float *src = k->dy + (size_t)pl * k->oh * k->ow;
        memset(d, 0, (size_t)k->qp * sizeof *d);
        for (int y = 0; y < k->oh; y++) memcpy(d + (size_t)y * k->wp, src + (size_t)y * k->ow, (size_t)k->ow * sizeof *d);
    }
}

static void conv_dw_direct(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, khw = q.kh * q.kw, taps = cg * khw, taps4 = (taps + 3) / 4 * 4;
    int hp = q.h + 2 * q.ph, wp = q.w + 2 * q.pw, qp = (q.oh * wp + 15) / 16 * 16;
    int groups = q.n < DW_GROUPS ? q.n : DW_GROUPS;
    size_t xpn = ((size_t)q.n * q.c * hp * wp + 2 * (size_t)ds_gemm_nr() + 15) / 16 * 16;
    float *xp = padded_copy(n->in[0]->val, (long)q.n * q.c, q.h, q.w, q.ph, q.pw, g->work);
    float *dyq = xp + xpn; /* 64-byte aligned (the scratch is): the kernel's aligned loads */
    float *acc = dyq + (size_t)q.n * q.oc * qp;
    int32_t *off = (int32_t *)(acc + (size_t)groups * q.groups * ocg * taps4 * 16);
    for (int t = 0; t < taps4; t++)
        off[t] = t < taps ? (int32_t)(((t / khw) * hp + (t % khw / q.kw) * q.dh) * wp + (t % q.kw) * q.dw) : 0;
    dyq_job dj = {n->grad, dyq, q.oh, q.ow, wp, qp};
    ds_parallel_for((long)q.n * q.oc, 4, dyq_range, &dj);
    dwd_job j = {xp, dyq, acc, off, q.n, groups, q.c, cg, hp, wp, q.oc, ocg, q.groups, taps4, qp};
    ds_parallel_for_grains(groups, 1, DW_GROUPS, dwd_range, &j);
    /* dW[oc, t] += Σ_groups Σ_lanes, in order */
    float *dw = n->in[1]->grad;
    for (int gi = 0; gi < q.groups; gi++)
        for (int o = 0; o < ocg; o++)
            for (int t = 0; t < taps; t++) {
                double sum = 0;
                for (int gr = 0; gr < groups; gr++) {
                    const float *a = acc + (size_t)gr * q.groups * ocg * taps4 * 16 +
                                     (((size_t)gi * ocg + o / 4 * 4) * taps4 + (size_t)(t / 4 * 4) * 4 +
                                      (size_t)(o % 4) * 4 + t % 4) * 16;
                    for (int l = 0; l < 16; l++) sum += a[l];
                }
                dw[((size_t)gi * ocg + o) * taps + t] += (float)sum;
            }
}
#endif

/* y_g = W_g · col_g(x) + b, straight from the padded image into NCHW. */
static void conv_forward_implicit(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, hp = q.h + 2 * q.ph, wp = q.w + 2 * q.pw;
    const float *xp = padded(n->in[0]->val, (long)q.n * q.c, q.h, q.w, q.ph, q.pw, g->work);
    for (int gi = 0; gi < q.groups; gi++) {
        ds_mat a = {ds_mat_dense, n->in[1]->val + (size_t)gi * ocg * kk, 1, kk};
        im2col_view b = {{pack_taps_by_pos, NULL, 0, 0}, xp, q.c, hp, wp, gi * cg, q.kh, q.kw, q.sh, q.sw,
                         q.dh, q.dw, q.ow, q.oh * q.ow};
        ds_out o = nchw_out(n->val, q.oc, gi * ocg, (long)q.oh * q.ow, 0, n->n_in == 3 ? n->in[2]->val : NULL);
        ds_gemm_ex(ocg, q.n * q.oh * q.ow, kk, &a, &b.m, &o);
    }
}

/* dW_g += dY_g · col_g(x)ᵀ */
static void conv_dw_implicit(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, hp = q.h + 2 * q.ph, wp = q.w + 2 * q.pw;
    const float *xp = padded(n->in[0]->val, (long)q.n * q.c, q.h, q.w, q.ph, q.pw, g->work);
    for (int gi = 0; gi < q.groups; gi++) {
        nchw_view a = {{pack_nchw, NULL, 0, 0}, n->grad, q.oc, gi * ocg, q.oh * q.ow};
        im2col_view b = {{pack_pos_by_taps, NULL, 0, 0}, xp, q.c, hp, wp, gi * cg, q.kh, q.kw, q.sh, q.sw,
                         q.dh, q.dw, q.ow, q.oh * q.ow};
        ds_out o = {n->in[1]->grad + (size_t)gi * ocg * kk, kk, kk, 0, 1, 1, NULL};
        ds_gemm_ex(ocg, kk, q.n * q.oh * q.ow, &a.m, &b.m, &o);
    }
}

/* Stride 1: dx_g += W'_g · col_g(dy padded by d·(k−1) − p), the convolution of
 * dy with the flipped, transposed kernel W'[c, oc, i, j] = W[oc, c, kh−1−i, kw−1−j]. */
static void conv_dx_implicit(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = ocg * q.kh * q.kw, khw = q.kh * q.kw;
    int bh = q.dh * (q.kh - 1) - q.ph, bw = q.dw * (q.kw - 1) - q.pw, hp = q.oh + 2 * bh, wp = q.ow + 2 * bw;
    float *wt = g->work, *scratch = wt + (size_t)q.oc * cg * khw;
    const float *w = n->in[1]->val;
    for (int gi = 0; gi < q.groups; gi++) /* wt [g][c][oc][i][j] */
        for (int c = 0; c < cg; c++)
            for (int o = 0; o < ocg; o++)
                for (int t = 0; t < khw; t++)
                    wt[(((size_t)gi * cg + c) * ocg + o) * khw + t] =
                        w[(((size_t)gi * ocg + o) * cg + c) * khw + (khw - 1 - t)];
    const float *dyp = padded(n->grad, (long)q.n * q.oc, q.oh, q.ow, bh, bw, scratch);
    for (int gi = 0; gi < q.groups; gi++) {
        ds_mat a = {ds_mat_dense, wt + (size_t)gi * cg * kk, 1, kk};
        im2col_view b = {{pack_taps_by_pos, NULL, 0, 0}, dyp, q.oc, hp, wp, gi * ocg, q.kh, q.kw, 1, 1,
                         q.dh, q.dw, q.w, q.h * q.w};
        ds_out o = nchw_out(n->in[0]->grad, q.c, gi * cg, (long)q.h * q.w, 1, NULL);
        ds_gemm_ex(cg, q.n * q.h * q.w, kk, &a, &b.m, &o);
    }
}

/* ---- Winograd per layer: chosen by timing it against the direct pass ---- */

enum { ALGO_DIRECT = 0, ALGO_W2 = 2, ALGO_W4 = 4 };

/* the pass p by the direct kernel this node would use (ocv or shifted) */
static void s1_direct(const s1_pass *p, ds_graph *g, ds_node *n, int dx)
{
#if defined(__AVX512F__)
    if (n->ip[dx ? 16 : 15]) {
        ocv_conv(p, g, dx ? ocv_pack_wflip : ocv_pack_w, n);
        return;
    }
#endif
    shifted_conv(p, g, dx ? pack_wflip : pack_w, n);
}

static ds_wino_pass wino_of(const s1_pass *p, const ds_node *n, int dx, int m)
{
    return (ds_wino_pass){.in = p->in, .w = n->in[1]->val, .bias = p->bias, .y = p->y, .n = p->n, .c = p->ctot,
                          .h = p->in_h, .w_ = p->in_w, .ph = p->ph, .pw = p->pw, .k = p->octot, .oh = p->oh,
                          .ow = p->ow, .flip = dx, .relu = p->relu, .accumulate = p->accumulate, .m = m,
                          .r = p->kh};
}

static void s1_run(const s1_pass *p, ds_graph *g, ds_node *n, int dx, int algo)
{
    if (algo == ALGO_DIRECT) {
        s1_direct(p, g, n, dx);
        return;
    }
    ds_wino_pass w = wino_of(p, n, dx, algo);
    ds_wino_conv(&w, g->work);
}

/* The default: a fixed rule from the measurements of bench/winograd.py
 * (docs/design.md), so that a run is reproducible bit for bit (a resumed
 * run, ranks against one process): for passes of at least 16 samples with
 * at least 16 channels in and out (below that the transforms, the filter's
 * above all, cost more than they save), F(2×2, 5×5) for 5×5 kernels, and
 * F(4×4, 3×3) for 3×3 ones: dx always, the forward from 32 → 64 channels
 * on (it also writes the padded copy dW reads, which the direct forward
 * makes anyway; 16 → 16 and 32 → 32 lost or tied). */
static int wino_rule(const s1_pass *p, int avail, int dx)
{
    if (p->n < 16 || p->ctot < 16 || p->octot < 16) return ALGO_DIRECT;
    if (p->kh == 5) return avail & 1 ? ALGO_W2 : ALGO_DIRECT;
    if (!dx && (long)p->ctot * p->octot < 2048) return ALGO_DIRECT;
    return avail & 2 ? ALGO_W4 : ALGO_DIRECT;
}

/* DS_CONV_ALGO=auto: choices by shape (dx, batch, channels in and out, input size, padding) */
#define WINO_CACHE 256
static struct {
    int key[11], algo;
} wino_cache[WINO_CACHE];
static int wino_cached;
static pthread_mutex_t wino_lock = PTHREAD_MUTEX_INITIALIZER;

/* the cached choice for key, or -1 */
static int wino_lookup(const int key[11])
{
    int algo = -1;
    pthread_mutex_lock(&wino_lock);
    for (int i = 0; i < wino_cached && algo < 0; i++)
        if (!memcmp(wino_cache[i].key, key, sizeof wino_cache[i].key)) algo = wino_cache[i].algo;
    pthread_mutex_unlock(&wino_lock);
    return algo;
}

static void wino_store(const int key[11], int algo)
{
    pthread_mutex_lock(&wino_lock);
    if (wino_cached < WINO_CACHE) {
        memcpy(wino_cache[wino_cached].key, key, sizeof wino_cache[wino_cached].key);
        wino_cache[wino_cached++].algo = algo;
    }
    pthread_mutex_unlock(&wino_lock);
}

/* the fastest of best[] (seconds; 0: not a candidate) for direct, F(2×2),
 * F(4×4): a Winograd variant must beat the direct one by 5 % */
static int wino_fastest(const double best[3])
{
    const int algos[3] = {ALGO_DIRECT, ALGO_W2, ALGO_W4};
    int algo = ALGO_DIRECT;
    double t = best[0] ? best[0] / 1.05 : 1e30;
    for (int a = 1; a < 3; a++)
        if (best[a] > 0 && best[a] < t) t = best[a], algo = algos[a];
    return algo;
}

/* The algorithm for the forward (dx = 0) or dx pass of n: pinned by
 * DS_CONV_ALGO=winograd2|winograd4 (where it applies; the direct kernel
 * elsewhere); by default wino_rule; with DS_CONV_ALGO=auto the fastest of
 * the direct kernel, F(2×2) and F(4×4) timed on this shape at its first
 * run (the minimum of 3 rounds after a warm-up, into a scratch output; a
 * Winograd variant must win by 5 %), kept for the process: the choice may
 * differ from run to run, and so may the rounding. DS_PROFILE=1 prints the
 * times and the choice. */
static int wino_choice(ds_node *n, ds_graph *g, int dx)
{
    int avail = (n->ip[19] >> (dx ? 2 : 0)) & 3;
    if (!avail) return ALGO_DIRECT;
    const char *pin = getenv("DS_CONV_ALGO");
    if (pin && !strcmp(pin, "winograd2")) return avail & 1 ? ALGO_W2 : ALGO_DIRECT;
    if (pin && !strcmp(pin, "winograd4")) return avail & 2 ? ALGO_W4 : ALGO_DIRECT;
    s1_pass p = s1_of(n, dx);
    int key[11] = {dx, p.n, p.ctot, p.octot, p.in_h, p.in_w, p.ph, p.pw, avail, p.kh, pin != NULL};
    int algo = wino_lookup(key);
    if (algo >= 0) return algo;
    const int algos[3] = {ALGO_DIRECT, ALGO_W2, ALGO_W4};
    double best[3] = {0, 0, 0};
    size_t out = (size_t)p.n * p.octot * p.oh * p.ow;
    float *tmp = pin ? malloc(out * sizeof *tmp) : NULL;
    if (!pin) {
        algo = wino_rule(&p, avail, dx);
        goto chosen;
    }
    if (!tmp) return ALGO_DIRECT;
    p.y = tmp, p.accumulate = 0;
    p.copy = NULL; /* leave the node's saved copy alone */
    for (int a = 0; a < 3; a++) best[a] = a && !(avail & (1 << (a - 1))) ? 0 : 1e30;
    /* a warm-up, then 3 rounds taking the candidates in turn (a load spike
     * on a shared machine then hits one round, not one candidate) */
    for (int r = 0; r < 4; r++)
        for (int a = 0; a < 3; a++) {
            if (best[a] == 0) continue;
            double t0 = ds_now();
            s1_run(&p, g, n, dx, algos[a]);
            double t = ds_now() - t0;
            if (r && t < best[a]) best[a] = t;
        }
    free(tmp);
    algo = wino_fastest(best);
chosen:
    wino_store(key, algo);
    const char *prof = getenv("DS_PROFILE");
    const char *name = algo == ALGO_W2 ? "winograd2" : algo == ALGO_W4 ? "winograd4" : "direct";
    if (prof && atoi(prof) > 0 && !pin)
        fprintf(stderr, "profile (DS_PROFILE): conv %s %s [%d,%d,%d,%d]->%d %dx%d: %s (the default rule)\n",
                n->name ? n->name : "?", dx ? "dx" : "forward", p.n, p.ctot, p.in_h, p.in_w, p.octot, p.kh, p.kw, name);
    else if (prof && atoi(prof) > 0)
        fprintf(stderr,
                "profile (DS_PROFILE): conv %s %s [%d,%d,%d,%d]->%d %dx%d: direct %.3f ms, winograd2 %.3f, "
                "winograd4 %.3f: %s (timed)\n",
                n->name ? n->name : "?", dx ? "dx" : "forward", p.n, p.ctot, p.in_h, p.in_w, p.octot, p.kh, p.kw,
                best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, name);
    return algo;
}

/* dW by Winograd (algo ALGO_W2 or ALGO_W4): dW += of the forward's x and dy into dw */
static void wino_dw_run(const ds_node *n, ds_graph *g, int algo, float *dw)
{
    geom q = geom_of(n, 0);
    ds_wino_pass w = {.in = n->in[0]->val, .n = q.n, .c = q.c, .h = q.h, .w_ = q.w, .ph = q.ph, .pw = q.pw,
                      .k = q.oc, .oh = q.oh, .ow = q.ow, .m = algo, .r = q.kh, .dy = n->grad, .dw = dw};
    ds_wino_dw(&w, g->work);
}

/* The dW algorithm of n: pinned by DS_CONV_ALGO=winograd2|winograd4 where
 * it applies; by default a fixed rule from the measurements (bench/PROFILE.md),
 * for ≥ 16 samples and channels in and out: F(2×2, 5×5) for 5×5 kernels,
 * F(4×4, 3×3) for 3×3 ones from 64 → 64 channels on (16 → 16 lost, 32 → 32
 * tied), the direct dW elsewhere; with DS_CONV_ALGO=auto the fastest of the direct dW
 * (dwv) and the Winograd ones timed as wino_choice does, at the first
 * backward (timed = 0, before it: -1, not known yet). */
static int wino_dw_choice(ds_node *n, ds_graph *g, int timed)
{
    int avail = (n->ip[19] >> 4) & 3;
    if (!avail) return ALGO_DIRECT;
    const char *pin = getenv("DS_CONV_ALGO");
    if (pin && !strcmp(pin, "winograd2")) return avail & 1 ? ALGO_W2 : ALGO_DIRECT;
    if (pin && !strcmp(pin, "winograd4")) return avail & 2 ? ALGO_W4 : ALGO_DIRECT;
    geom q = geom_of(n, 0);
    if (!pin) {
        if (q.n < 16 || q.c < 16 || q.oc < 16) return ALGO_DIRECT;
        if (q.kh == 5) return avail & 1 ? ALGO_W2 : ALGO_DIRECT;
        return (long)q.c * q.oc >= 4096 && avail & 2 ? ALGO_W4 : ALGO_DIRECT;
    }
    int key[11] = {2, q.n, q.c, q.oc, q.h, q.w, q.ph, q.pw, avail, q.kh, 1};
    int algo = wino_lookup(key);
    if (algo >= 0 || !timed) return algo;
    const int algos[3] = {ALGO_DIRECT, ALGO_W2, ALGO_W4};
    double best[3] = {0, 0, 0};
    size_t nw = ds_numel(n->in[1]);
    float *tmp = calloc(nw, sizeof *tmp);
    if (!tmp) return ALGO_DIRECT;
    for (int a = 0; a < 3; a++) best[a] = a ? (avail & (1 << (a - 1)) ? 1e30 : 0) : n->ip[17] ? 1e30 : 0;
    for (int r = 0; r < 4; r++)
        for (int a = 0; a < 3; a++) {
            if (best[a] == 0) continue;
            double t0 = ds_now();
#if defined(__AVX512F__)
            if (a == 0) dwv_run(q, n->in[0]->val, NULL, n->grad, tmp, g->work);
            else
#endif
                wino_dw_run(n, g, algos[a], tmp);
            double t = ds_now() - t0;
            if (r && t < best[a]) best[a] = t;
        }
    free(tmp);
    algo = wino_fastest(best);
    if (!best[0] && algo == ALGO_DIRECT) algo = avail & 1 ? ALGO_W2 : ALGO_W4; /* no dwv to time against */
    wino_store(key, algo);
    const char *prof = getenv("DS_PROFILE");
    if (prof && atoi(prof) > 0)
        fprintf(stderr,
                "profile (DS_PROFILE): conv %s dW [%d,%d,%d,%d]->%d %dx%d: direct %.3f ms, winograd2 %.3f, "
                "winograd4 %.3f: %s (timed)\n",
                n->name ? n->name : "?", q.n, q.c, q.h, q.w, q.oc, q.kh, q.kw, best[0] * 1e3, best[1] * 1e3,
                best[2] * 1e3, algo == ALGO_W2 ? "winograd2" : algo == ALGO_W4 ? "winograd4" : "direct");
    return algo;
}

static void conv_forward_explicit(ds_node *n, ds_graph *g);

/* a fused leaky relu where the pass did not store it: y = max(y, s·y) in place */
static void leaky_range(void *arg, long lo, long hi)
{
    const ds_node *n = arg;
    float *y = n->val, s = n->fused_slope;
    for (long i = lo; i < hi; i++) y[i] = y[i] > s * y[i] ? y[i] : s * y[i];
}
static void leaky_post(ds_node *n)
{
    if (n->fused_relu && n->fused_slope) ds_parallel_for((long)ds_numel(n), 1 << 14, leaky_range, n);
}

#if defined(__AVX512F__)
/* Whether the forward (dx = 0) or the dx pass goes by ds_conv_flat: a pass
 * the ocv tile would take, into at most 16 channels (one vector of them,
 * where ocv spends a load per FMA); DS_CONV_ALGO=flat: every pass ocv
 * would take at stride 1; the other pins: never. */
static bool flat_use(const ds_node *n, int dx)
{
    geom q = geom_of(n, 0);
    if (!n->ip[dx ? 16 : 15] || !flat_fits(&q)) return false;
    const char *pin = getenv("DS_CONV_ALGO");
    if (pin) return !strcmp(pin, "flat");
    return (dx ? q.c : q.oc) <= 16;
}

/* the pass p by ds_conv_flat: its input placed into the zero-padded copy
 * (the node's saved one, which dW reads, or the scratch), the slack after
 * it zeroed, the weights packed after that */
static void flat_conv(const s1_pass *p, ds_graph *g, const ds_node *n, int dx)
{
    int hp = p->in_h + 2 * p->ph, wp = p->in_w + 2 * p->pw;
    size_t planes = (size_t)p->n * p->ctot, xn = planes * hp * wp;
    float *xp = p->copy ? p->copy : g->work;
    place(p->in, (long)planes, p->in_h, p->in_w, p->ph, p->pw, hp, wp, xp);
    memset(xp + xn, 0, FLAT_SLACK * sizeof *xp);
    float *wpk = g->work + (xn + FLAT_SLACK + 15) / 16 * 16;
    ds_conv_flat_pack(n->in[1]->val, p->m, p->ctot, p->kh * p->kw, dx, wpk);
    ds_conv_flat(xp, p->n, p->ctot, hp, wp, wpk, p->m, p->kh, p->kw, p->y, p->bias, p->relu || p->slope, p->slope,
                 p->accumulate);
}
#endif

static void conv_forward(ds_node *n, ds_graph *g)
{
    int wa = wino_choice(n, g, 0);
    if (wa != ALGO_DIRECT) {
        s1_pass p = s1_of(n, 0);
        /* dW (dwv) reads the padded x the direct forward would have kept (dW by
         * Winograd does not; under auto dW's choice is not known yet: -1) */
        if (n->saved && wino_dw_choice(n, g, 0) <= ALGO_DIRECT) {
            geom q = geom_of(n, 0);
            place(p.in, (long)q.n * q.c, q.h, q.w, q.ph, q.pw, q.h + 2 * q.ph, q.w + 2 * q.pw, n->saved);
        }
        s1_run(&p, g, n, 0, wa);
        leaky_post(n);
        return;
    }
#if defined(__AVX512F__)
    if (flat_use(n, 0)) {
        s1_pass p = s1_of(n, 0);
        flat_conv(&p, g, n, 0); /* applies a fused relu as it stores */
        return;
    }
    if (n->ip[15]) {
        s1_pass p = s1_of(n, 0);
        ocv_conv(&p, g, ocv_pack_w, n); /* applies a fused relu as it stores */
        return;
    }
#endif
    if (n->ip[12]) {
        s1_pass p = s1_of(n, 0);
        shifted_conv(&p, g, pack_w, n); /* applies a fused relu as it stores */
        leaky_post(n);
        return;
    }
    if (n->ip[10]) conv_forward_implicit(n, g);
    else conv_forward_explicit(n, g);
    if (n->fused_relu && !n->fused_slope) ds_relu_inplace(n->val, ds_numel(n));
    leaky_post(n);
}

/* Y_g = W_g · col_g, scattered into y[n, g·OCg + o] (+ b) */
static void conv_forward_explicit(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow;
    const float *w = n->in[1]->val;
    memset(n->val, 0, ds_numel(n) * sizeof(float));
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *ym = col + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_im2col(n->in[0]->val, s0, s, gi, cg, &q, col);
            ds_gemm(false, false, ocg, cols, kk, 1, w + (size_t)gi * ocg * kk, kk, col, cols, 0, ym, cols);
            chunk_matrix(n->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * ocg, ocg, ohw, ym, 0);
        }
    }
    if (n->n_in == 3) bias_forward(n->val, n->in[2]->val, q.n, q.oc, ohw);
}

#if defined(__AVX512F__)
/* whether dx of this convolution goes by ds_conv_few */
static bool few_dx(const geom *q)
{
    const char *pin = getenv("DS_CONV_ALGO");
    if (pin && (!strcmp(pin, "im2col") || !strcmp(pin, "implicit") || !strcmp(pin, "shifted"))) return false;
    return q->groups == 1 && q->sh == 1 && q->sw == 1 && q->dh == 1 && q->dw == 1 &&
           ds_conv_few_fits(q->c, q->kh, q->kw, q->kh - 1 - q->ph, q->kw - 1 - q->pw) &&
           (size_t)q->n * q->oc * q->oh * q->ow < ((size_t)1 << 31);
}
#endif

/* dW_g += dY_g · col_gᵀ;  dx += col2im(W_gᵀ · dY_g);  db += Σ dy */
static void conv_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow;
    const float *w = n->in[1]->val;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
    if (dw && n->ip[19] >> 4) {
        int wa = wino_dw_choice(n, g, 1);
        if (wa != ALGO_DIRECT) {
            wino_dw_run(n, g, wa, dw);
            dw = NULL;
        }
    }
#if defined(__AVX512F__)
    if (n->ip[17] && dw) {
        conv_dw_ocv(n, g);
        dw = NULL;
    }
    if (n->ip[14] && dw) {
        conv_dw_direct(n, g);
        dw = NULL;
    }
#endif
    if (n->ip[10] && dw) {
        conv_dw_implicit(n, g);
        dw = NULL;
    }
    if (dx && (n->ip[19] >> 2) & 3) {
        int wa = wino_choice(n, g, 1);
        if (wa != ALGO_DIRECT) {
            s1_pass p = s1_of(n, 1);
            s1_run(&p, g, n, 1, wa);
            dx = NULL;
        }
    }
#if defined(__AVX512F__)
    /* dx into at most 4 channels (a one-channel input layer): pixels in the
     * lanes (conv_thin.c), where the ocv and shifted tiles fill one lane or
     * row of 16; not under the pins of the older algorithms */
    if (dx && few_dx(&q)) {
        ds_conv_few(n->grad, w, dx, q.n, q.oc, q.oh, q.ow, q.c, q.kh, q.kw, q.kh - 1 - q.ph, q.kw - 1 - q.pw, q.h,
                    q.w, 1, !n->in[0]->grad_fresh);
        dx = NULL;
    }
    if (dx && flat_use(n, 1)) {
        s1_pass p = s1_of(n, 1);
        flat_conv(&p, g, n, 1);
        dx = NULL;
    }
    if (n->ip[16] && dx) {
        s1_pass p = s1_of(n, 1);
        ocv_conv(&p, g, ocv_pack_wflip, n);
        dx = NULL;
    }
    if (n->ip[18] && dx) {
        conv_dx_phases(n, g);
        dx = NULL;
    }
#endif
    if (n->ip[13] && dx) {
        s1_pass p = s1_of(n, 1);
        shifted_conv(&p, g, pack_wflip, n);
        dx = NULL;
    }
    if (n->ip[11] && dx) {
        conv_dx_implicit(n, g);
        dx = NULL;
    }
    for (int s0 = 0; s0 < q.n && (dx || dw); s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *dcol = col + (size_t)kk * cols, *dym = dcol + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_matrix(n->grad + (size_t)s0 * q.oc * ohw, s, q.oc, gi * ocg, ocg, ohw, dym, 1);
            if (dw) {
                chunk_im2col(n->in[0]->val, s0, s, gi, cg, &q, col);
                ds_gemm(false, true, ocg, kk, cols, 1, dym, cols, col, cols, 1, dw + (size_t)gi * ocg * kk, kk);
            }
            if (dx) {
                ds_gemm(true, false, kk, cols, ocg, 1, w + (size_t)gi * ocg * kk, kk, dym, cols, 0, dcol, cols);
                chunk_col2im(dcol, s0, s, gi, cg, &q, dx);
            }
        }
    }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(n->grad, q.n, q.oc, ohw, n->in[2]->grad);
}

/* ---- transposed convolutions by the convolution's own AVX-512 passes ----
 *
 * A transposed convolution is the dx of the convolution q (geom_of(n, 1)),
 * with the same weight layout [C_in, OC/groups, KH, KW] = [q.oc, q.c/g, ..]:
 * its forward is that dx (strided: by phases, no zero-inserted work, e.g.
 * the DCGAN generator's 4×4 stride 2 as four 2×2 stride-1 products), its dx
 * that convolution's forward (the ocv tile), its dW that convolution's dW
 * with x and dy swapped (dwv). ip[18] forward by phases, ip[15] dx by ocv,
 * ip[17] dW by dwv; explicit im2col elsewhere (and under DS_CONV_ALGO=im2col,
 * implicit or shifted, the reference the unit test compares with). */
static void convt_paths(ds_node *n, const geom *q, const char *algo)
{
    n->ip[15] = n->ip[17] = n->ip[18] = 0;
#if defined(__AVX512F__)
    if (algo && (!strcmp(algo, "im2col") || !strcmp(algo, "implicit") || !strcmp(algo, "shifted"))) return;
    size_t lim = (size_t)1 << 31, khw = (size_t)q->kh * q->kw, work = n->work_bytes / sizeof(float);
    size_t yp = (size_t)q->n * q->c * (q->h + 2 * q->ph) * (q->w + 2 * q->pw);
    if (yp >= lim || (size_t)q->n * q->oc * q->oh * q->ow >= lim) return;
    if (phases_fit(q) && phases_scratch(q) < lim) {
        n->ip[18] = 1;
        if (phases_scratch(q) > work) work = phases_scratch(q);
    }
    if ((q->sw == 1 || q->sw == 2) && ocv_fits(q->oc / q->groups)) {
        n->ip[15] = 1;
        size_t f = ocv_scratch((long)q->n * q->c, q->h + 2 * q->ph, q->w + 2 * q->pw, q->groups, q->oc / q->groups,
                               (int)(q->c / q->groups * khw));
        if (f > work) work = f;
        n->grad_overwrites = 1; /* writes dx whole (adds unless fresh) */
    }
    if (dwv_fits(q)) {
        n->ip[17] = 1;
        if (dwv_scratch(q) > work) work = dwv_scratch(q);
    }
    n->work_bytes = work * sizeof(float);
#else
    (void)q, (void)algo;
#endif
}

/* Transposed: y[n, g] = col2im(W_gᵀ · X_g) + b with W [C, OCg, KH, KW]; the
 * "convolution" geometry runs from y (c, h, w) to x (oc, oh, ow). */
static void convt_forward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
#if defined(__AVX512F__)
    if (n->ip[18]) {
        phases_run(q, n->in[0]->val, n->in[1]->val, n->val, true, g->work);
        if (n->n_in == 3) bias_forward(n->val, n->in[2]->val, q.n, q.c, (size_t)q.h * q.w);
        return;
    }
#endif
    int cg = q.c / q.groups, xg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *w = n->in[1]->val;
    memset(n->val, 0, ds_numel(n) * sizeof(float));
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *xm = col + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_matrix(n->in[0]->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, xm, 1);
            ds_gemm(true, false, kk, cols, xg, 1, w + (size_t)gi * xg * kk, kk, xm, cols, 0, col, cols);
            chunk_col2im(col, s0, s, gi, cg, &q, n->val);
        }
    }
    if (n->n_in == 3) bias_forward(n->val, n->in[2]->val, q.n, q.c, hw);
}

/* dX_g += W_g · im2col(dy_g);  dW_g += X_g · im2col(dy_g)ᵀ;  db += Σ dy */
static void convt_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
    int cg = q.c / q.groups, xg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *w = n->in[1]->val;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
#if defined(__AVX512F__)
    bool placed = false;
    if (n->ip[17] && dw) {
        dwv_run(q, n->grad, NULL, n->in[0]->val, dw, g->work); /* the padded dy goes to the scratch's start */
        dw = NULL;
        placed = true;
    }
    if (n->ip[15] && dx) {
        s1_pass p = {.in = n->grad, .y = dx, .n = q.n, .in_h = q.h, .in_w = q.w, .ph = q.ph, .pw = q.pw,
                     .kh = q.kh, .kw = q.kw, .dh = q.dh, .dw = q.dw, .ctot = q.c, .cg = cg, .groups = q.groups,
                     .m = xg, .kk = kk, .oh = q.oh, .ow = q.ow, .octot = q.oc,
                     .accumulate = !n->in[0]->grad_fresh, .sh = q.sh, .sw = q.sw, .placed = placed};
        ocv_conv(&p, g, ocv_pack_w, n);
        dx = NULL;
    }
#endif
    for (int s0 = 0; s0 < q.n && (dx || dw); s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *xm = col + (size_t)kk * cols, *dxm = xm + (size_t)xg * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_im2col(n->grad, s0, s, gi, cg, &q, col);
            if (dx) {
                ds_gemm(false, false, xg, cols, kk, 1, w + (size_t)gi * xg * kk, kk, col, cols, 0, dxm, cols);
                chunk_matrix(dx + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, dxm, 0);
            }
            if (dw) {
                chunk_matrix(n->in[0]->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, xm, 1);
                ds_gemm(false, true, xg, kk, cols, 1, xm, cols, col, cols, 1, dw + (size_t)gi * xg * kk, kk);
            }
        }
    }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(n->grad, q.n, q.c, hw, n->in[2]->grad);
}

static const ds_op op_conv = {"conv2d", conv_shape, conv_forward, conv_backward};
static const ds_op op_convt = {"conv_transpose2d", convt_shape, convt_forward, convt_backward};

static ds_node *conv_make(ds_graph *g, const ds_op *op, ds_node *x, ds_node *w, ds_node *b,
                          ds_conv_opt o)
{
    ds_node *n = ds_node_new(g, op, b ? 3 : 2, (ds_node *[]){x, w, b});
    if (!n) return NULL;
    for (int i = 0; i < 2; i++) {
        n->ip[0 + i] = o.stride[i] ? o.stride[i] : 1;
        n->ip[2 + i] = o.pad[i];
        n->ip[4 + i] = o.dilation[i] ? o.dilation[i] : 1;
        n->ip[7 + i] = o.output_padding[i];
    }
    n->ip[6] = o.groups ? o.groups : 1;
    return ds_node_finish(g, n);
}

ds_node *ds_conv2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt)
{
    return conv_make(g, &op_conv, x, w, b, opt);
}

ds_node *ds_conv_transpose2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt)
{
    return conv_make(g, &op_convt, x, w, b, opt);
}
