/* conv_thin.c — thin-channel convolution helpers (conv_thin.h). */
#include "conv_thin.h"
#include "internal.h"
#include "transpose16.h"

#if defined(__AVX512F__)
#include <immintrin.h>

typedef struct {
    const float *dy;
    float *dyt;
    int oc, ocg, ocp, groups, ohw;
} dyt_task;

/* one (sample, group) per item: for each block of 16 channels × 16 pixels,
 * 16 masked row loads (rows past ocg are zeros), a register transpose, 16
 * stores of 16 channels (pixels past ohw are not stored) */
static void dyt_range(void *arg, long lo, long hi)
{
    const dyt_task *k = arg;
    for (long sg = lo; sg < hi; sg++) {
        long s = sg / k->groups, gi = sg % k->groups;
        const float *src = k->dy + ((size_t)s * k->oc + (size_t)gi * k->ocg) * k->ohw;
        float *d = k->dyt + (size_t)sg * k->ohw * k->ocp;
        for (int o0 = 0; o0 < k->ocp; o0 += 16)
            for (int p0 = 0; p0 < k->ohw; p0 += 16) {
                int np = k->ohw - p0 < 16 ? k->ohw - p0 : 16;
                __mmask16 mp = (__mmask16)((1u << np) - 1);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = o0 + i < k->ocg ? _mm512_maskz_loadu_ps(mp, src + (size_t)(o0 + i) * k->ohw + p0)
                                           : _mm512_setzero_ps();
                transpose16(r);
                for (int i = 0; i < np; i++) _mm512_storeu_ps(d + (size_t)(p0 + i) * k->ocp + o0, r[i]);
            }
    }
}

void ds_conv_dyt(const float *dy, float *dyt, int n, int oc, int ocg, int ocp, int groups, int ohw)
{
    dyt_task k = {dy, dyt, oc, ocg, ocp, groups, ohw};
    ds_parallel_for((long)n * groups, 1, dyt_range, &k);
}
int ds_conv_few_fits(int oc, int kh, int kw, int ph, int pw)
{
    return oc >= 1 && oc <= 4 && kh >= 1 && kh <= 7 && kw >= 1 && kw <= 7 && ph >= 0 && ph < kh && pw >= 0 && pw < kw;
}

typedef struct {
    const float *in, *w;
    float *y;
    int c, h, wd, oc, kh, kw, ph, pw, oh, ow, flip, acc, rb;
} few_job;

#define FEW_R 4 /* output rows a tile */

/* one (sample, output channel, block of FEW_R rows) per item */
static void few_range(void *arg, long lo, long hi)
{
    const few_job *k = arg;
    const int kh = k->kh, kw = k->kw, taps = kh * kw, wd = k->wd, ow = k->ow;
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (long it = lo; it < hi; it++) {
        long so = it / k->rb;
        int oy0 = (int)(it % k->rb) * FEW_R, s = (int)(so / k->oc), o = (int)(so % k->oc);
        float *ys = k->y + ((size_t)s * k->oc + o) * k->oh * ow;
        for (int x0 = 0; x0 < ow; x0 += 32) {
            /* per vector v and kernel column j: where its input row segment
             * starts, which lanes it fills, and the lane shift of a segment
             * that starts left of the row (xs < 0: loaded from 0, moved up) */
            int st[2][7], sh[2][7];
            __mmask16 lm[2][7], pm[2][7];
            __m512i px[2][7];
            for (int v = 0; v < 2; v++)
                for (int j = 0; j < kw; j++) {
                    int xs = x0 + 16 * v + j - k->pw, cnt;
                    st[v][j] = 0, sh[v][j] = 0, lm[v][j] = 0, pm[v][j] = 0, px[v][j] = iota;
                    if (x0 + 16 * v >= ow || xs >= wd || xs <= -16) continue;
                    if (xs >= 0) {
                        cnt = wd - xs < 16 ? wd - xs : 16;
                        st[v][j] = xs, lm[v][j] = (__mmask16)(cnt == 16 ? 0xffff : (1u << cnt) - 1);
                    } else {
                        int t = -xs;
                        cnt = wd < 16 - t ? wd : 16 - t;
                        lm[v][j] = (__mmask16)((1u << cnt) - 1), sh[v][j] = 1;
                        pm[v][j] = (__mmask16)(0xffffu << t);
                        px[v][j] = _mm512_sub_epi32(iota, _mm512_set1_epi32(t));
                    }
                }
            __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
                   a31 = a00;
            for (int c = 0; c < k->c; c++) {
                const float *plane = k->in + ((size_t)s * k->c + c) * k->h * wd;
                float wl[49];
                if (k->flip) {
                    const float *wc = k->w + ((size_t)c * k->oc + o) * taps;
                    for (int t = 0; t < taps; t++) wl[t] = wc[taps - 1 - t];
                } else {
                    const float *wc = k->w + ((size_t)o * k->c + c) * taps;
                    for (int t = 0; t < taps; t++) wl[t] = wc[t];
                }
                for (int r = 0; r < FEW_R + kh - 1; r++) { /* input row oy0 + r − ph feeds output rows r − i */
                    int iy = oy0 + r - k->ph;
                    if (iy < 0 || iy >= k->h) continue;
                    const float *row = plane + (size_t)iy * wd;
                    for (int j = 0; j < kw; j++) {
                        __m512 v0 = _mm512_maskz_loadu_ps(lm[0][j], row + st[0][j]);
                        __m512 v1 = _mm512_maskz_loadu_ps(lm[1][j], row + st[1][j]);
                        if (sh[0][j]) v0 = _mm512_maskz_permutexvar_ps(pm[0][j], px[0][j], v0);
                        if (sh[1][j]) v1 = _mm512_maskz_permutexvar_ps(pm[1][j], px[1][j], v1);
#define FEW_ROW(t, A0, A1)                                                                                   \
    if (r - (t) >= 0 && r - (t) < kh) {                                                                      \
        __m512 wv = _mm512_set1_ps(wl[(r - (t)) * kw + j]);                                                  \
        A0 = _mm512_fmadd_ps(wv, v0, A0), A1 = _mm512_fmadd_ps(wv, v1, A1);                                  \
    }
                        FEW_ROW(0, a00, a01)
                        FEW_ROW(1, a10, a11)
                        FEW_ROW(2, a20, a21)
                        FEW_ROW(3, a30, a31)
#undef FEW_ROW
                    }
                }
            }
            __m512 out[FEW_R][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
            for (int t = 0; t < FEW_R && oy0 + t < k->oh; t++)
                for (int v = 0; v < 2; v++) {
                    int cols = ow - (x0 + 16 * v);
                    if (cols <= 0) break;
                    __mmask16 m = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
                    float *d = ys + (size_t)(oy0 + t) * ow + x0 + 16 * v;
                    __m512 r = out[t][v];
                    if (k->acc) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, d));
                    _mm512_mask_storeu_ps(d, m, r);
                }
        }
    }
}

void ds_conv_few(const float *in, const float *w, float *y, int n, int c, int h, int wd, int oc, int kh, int kw,
                 int ph, int pw, int oh, int ow, int flip, int acc)
{
    few_job k = {in, w, y, c, h, wd, oc, kh, kw, ph, pw, oh, ow, flip, acc, (oh + FEW_R - 1) / FEW_R};
    ds_parallel_for((long)n * oc * k.rb, 1, few_range, &k);
}

/* ---- stride-1 convolution on the padded-width grid (ds_conv_flat) ----
 *
 * Output position (oy, ox) is q = oy·wp + ox of the padded plane's grid;
 * tap (i, j) of it reads xp[c][q + i·wp + j], so 16 consecutive positions
 * are one unaligned load for every tap, with no mask: the wp − ow columns
 * at the right of each row are computed and dropped. A tile is FLAT_O
 * output channels × V ≤ FLAT_V vectors of positions: per tap V loads and
 * FLAT_O broadcasts feed FLAT_O·V FMAs (10 for 24), where the ocv tile with
 * one vector of 16 channels spends a load per FMA. */
#define FLAT_O 4
#define FLAT_V 6

int ds_conv_flat_fits(int m, int kh, int kw) { return m >= 1 && kh >= 1 && kh <= 7 && kw >= 1 && kw <= 7; }

size_t ds_conv_flat_wsize(int m, int c, int taps) { return (size_t)(m + FLAT_O - 1) / FLAT_O * FLAT_O * c * taps; }

void ds_conv_flat_pack(const float *w, int m, int c, int taps, int flip, float *out)
{
    int mb = (m + FLAT_O - 1) / FLAT_O;
    for (int b = 0; b < mb; b++)
        for (int ci = 0; ci < c; ci++)
            for (int k = 0; k < taps; k++)
                for (int o = 0; o < FLAT_O; o++) {
                    int oc = b * FLAT_O + o;
                    float v = 0;
                    if (oc < m)
                        v = flip ? w[((size_t)ci * m + oc) * taps + (taps - 1 - k)] : w[((size_t)oc * c + ci) * taps + k];
                    out[(((size_t)b * c + ci) * taps + k) * FLAT_O + o] = v;
                }
}

typedef struct {
    const float *xp, *w, *bias;
    float *y;
    int c, hp, wp, m, taps, oh, ow, relu, acc, nvec, ntile;
    float slope;
    int32_t off[49];
} flat_job;

static inline __attribute__((always_inline)) void flat_tile(int V, const float *x, size_t plane, int c,
                                                            const int32_t *off, int taps, const float *w,
                                                            float *restrict t)
{
    __m512 a0[FLAT_V], a1[FLAT_V], a2[FLAT_V], a3[FLAT_V];
#pragma GCC unroll 6
    for (int v = 0; v < V; v++) a0[v] = a1[v] = a2[v] = a3[v] = _mm512_setzero_ps();
    for (int ci = 0; ci < c; ci++, x += plane, w += (size_t)taps * FLAT_O)
        for (int k = 0; k < taps; k++) {
            const float *xk = x + off[k];
            __asm__("" : "+r"(xk)); /* a base register: the loads at fixed displacements */
            __m512 b0 = _mm512_set1_ps(w[k * FLAT_O]), b1 = _mm512_set1_ps(w[k * FLAT_O + 1]);
            __m512 b2 = _mm512_set1_ps(w[k * FLAT_O + 2]), b3 = _mm512_set1_ps(w[k * FLAT_O + 3]);
#pragma GCC unroll 6
            for (int v = 0; v < V; v++) {
                __m512 xv = _mm512_loadu_ps(xk + 16 * v);
                __asm__("" : "+v"(xv)); /* one load for the four FMAs (GCC would fold it into each) */
                a0[v] = _mm512_fmadd_ps(b0, xv, a0[v]), a1[v] = _mm512_fmadd_ps(b1, xv, a1[v]);
                a2[v] = _mm512_fmadd_ps(b2, xv, a2[v]), a3[v] = _mm512_fmadd_ps(b3, xv, a3[v]);
            }
        }
#pragma GCC unroll 6
    for (int v = 0; v < V; v++) {
        _mm512_store_ps(t + 16 * v, a0[v]), _mm512_store_ps(t + 16 * (FLAT_V + v), a1[v]);
        _mm512_store_ps(t + 16 * (2 * FLAT_V + v), a2[v]), _mm512_store_ps(t + 16 * (3 * FLAT_V + v), a3[v]);
    }
}

typedef void (*flat_fn)(const float *x, size_t plane, int c, const int32_t *off, int taps, const float *w, float *t);
#define FLAT_FN(V)                                                                                             \
    static void flat_##V(const float *x, size_t plane, int c, const int32_t *off, int taps, const float *w,  \
                         float *t)                                                                             \
    {                                                                                                          \
        flat_tile(V, x, plane, c, off, taps, w, t);                                                            \
    }
FLAT_FN(1) FLAT_FN(2) FLAT_FN(3) FLAT_FN(4) FLAT_FN(5) FLAT_FN(6)
static const flat_fn flat_table[FLAT_V + 1] = {NULL, flat_1, flat_2, flat_3, flat_4, flat_5, flat_6};

/* one (sample, run of position vectors) per item, every block of FLAT_O channels in turn (the input
 * tile stays in L1 across them) */
static void flat_range(void *arg, long lo, long hi)
{
    const flat_job *k = arg;
    float t[FLAT_O * FLAT_V * 16] __attribute__((aligned(64)));
    const size_t plane = (size_t)k->hp * k->wp;
    const int mb = (k->m + FLAT_O - 1) / FLAT_O;
    for (long it = lo; it < hi; it++) {
        int s = (int)(it / k->ntile), ti = (int)(it % k->ntile);
        int v0 = (int)((long)ti * k->nvec / k->ntile), V = (int)((long)(ti + 1) * k->nvec / k->ntile) - v0;
        int q0 = 16 * v0, q1 = 16 * (v0 + V);
        const float *x = k->xp + (size_t)s * k->c * plane + q0;
        for (int b = 0; b < mb; b++) {
            flat_table[V](x, plane, k->c, k->off, k->taps, k->w + (size_t)b * k->c * k->taps * FLAT_O, t);
            for (int o = 0; o < FLAT_O && b * FLAT_O + o < k->m; o++) {
                int oc = b * FLAT_O + o;
                const float *to = t + (size_t)o * FLAT_V * 16;
                float *yo = k->y + ((size_t)s * k->m + oc) * k->oh * k->ow;
                __m512 bias = _mm512_set1_ps(k->bias ? k->bias[oc] : 0.0f), sl = _mm512_set1_ps(k->slope);
                for (int oy = q0 / k->wp; oy < k->oh && oy * k->wp < q1; oy++) {
                    int a = oy * k->wp > q0 ? oy * k->wp : q0, e = oy * k->wp + k->ow < q1 ? oy * k->wp + k->ow : q1;
                    for (int q = a; q < e; q += 16) {
                        __mmask16 mk = (__mmask16)(e - q >= 16 ? 0xffff : (1u << (e - q)) - 1);
                        float *yq = yo + (size_t)oy * k->ow + (q - oy * k->wp);
                        __m512 v = _mm512_maskz_loadu_ps(mk, to + (q - q0));
                        if (k->acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, yq));
                        else {
                            v = _mm512_add_ps(v, bias);
                            if (k->relu) v = _mm512_max_ps(v, k->slope ? _mm512_mul_ps(v, sl) : _mm512_setzero_ps());
                        }
                        _mm512_mask_storeu_ps(yq, mk, v);
                    }
                }
            }
        }
    }
}

void ds_conv_flat(const float *xp, int n, int c, int hp, int wp, const float *wpk, int m, int kh, int kw, float *y,
                  const float *bias, int relu, float slope, int acc)
{
    flat_job k = {.xp = xp, .w = wpk, .bias = bias, .y = y, .c = c, .hp = hp, .wp = wp, .m = m, .taps = kh * kw,
                  .oh = hp - kh + 1, .ow = wp - kw + 1, .relu = relu, .acc = acc, .slope = slope};
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) k.off[i * kw + j] = (int32_t)(i * wp + j);
    k.nvec = (k.oh * wp + 15) / 16;
    k.ntile = (k.nvec + FLAT_V - 1) / FLAT_V;
    ds_parallel_for((long)n * k.ntile, 1, flat_range, &k);
}
#else
typedef int ds_conv_thin_unused; /* (no AVX-512: nothing here) */
#endif
