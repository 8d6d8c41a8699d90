/* pool.c — max, average and global average pooling over [N, C, H, W]. */
#include "internal.h"

#include <float.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ip: 0,1 kernel; 2,3 stride; 4,5 pad */
static int pool_shape(ds_node *n)
{
    const ds_node *x = n->in[0];
    char sx[96];
    if (ds_require_nchw(n, 0)) return -1;
    int kh = n->ip[0], kw = n->ip[1], sh = n->ip[2], sw = n->ip[3], ph = n->ip[4], pw = n->ip[5];
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw)
        return ds_shape_fail(n, "bad window: kernel %dx%d stride %d,%d pad %d,%d (pad must be at "
                                "most half the kernel)",
                             kh, kw, sh, sw, ph, pw);
    int oh = (x->shape.d[2] + 2 * ph - kh) / sh + 1, ow = (x->shape.d[3] + 2 * pw - kw) / sw + 1;
    if (x->shape.d[2] + 2 * ph < kh || x->shape.d[3] + 2 * pw < kw)
        return ds_shape_fail(n, "kernel %dx%d is larger than input '%s' %s", kh, kw, x->name,
                             ds_shape_str(x->shape, sx, sizeof sx));
    n->shape = ds_shape_of(4, x->shape.d[0], x->shape.d[1], oh, ow);
    if (n->ip[6]) n->aux_bytes = ds_numel(n) * sizeof(int32_t); /* argmax per output */
    n->grad_overwrites = n->ip[6]; /* max: backward zeroes dx itself, plane by plane */
    n->masks_relu_input = n->ip[6]; /* max: dx is written only at the maxima */
    return 0;
}

#if defined(__AVX512F__)
/* One output row of a 2x2/2 max pool, 16 outputs a vector: the window's four
 * values (a b / c d) come from the two input rows split into even and odd
 * columns, then the same selects in the same order as the scalar code (v
 * wins if v > m or v is NaN), so maxima, argmax and NaN handling agree. */
static void pool22_row(const float *x, int w, int oy, int ow, float *y, int32_t *a)
{
    const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int ox = 0; ox < ow; ox += 16) {
        int cols = 2 * (ow - ox < 16 ? ow - ox : 16); /* input columns of this step */
        __mmask16 lo = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
        __mmask16 hi = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
        __mmask16 out = (__mmask16)((1u << (cols / 2)) - 1);
        const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
        __m512 l0 = _mm512_maskz_loadu_ps(lo, p0), h0 = _mm512_maskz_loadu_ps(hi, p0 + 16);
        __m512 l1 = _mm512_maskz_loadu_ps(lo, p1), h1 = _mm512_maskz_loadu_ps(hi, p1 + 16);
        __m512 m = _mm512_permutex2var_ps(l0, even, h0), b = _mm512_permutex2var_ps(l0, odd, h0);
        __m512 c = _mm512_permutex2var_ps(l1, even, h1), d = _mm512_permutex2var_ps(l1, odd, h1);
        __mmask16 tb = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
        m = _mm512_mask_blend_ps(tb, m, b);
        __mmask16 tc = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
        m = _mm512_mask_blend_ps(tc, m, c);
        __mmask16 td = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
        m = _mm512_mask_blend_ps(td, m, d);
        _mm512_mask_storeu_ps(y + (size_t)oy * ow + ox, out, m);
        if (a) {
            __m512i best = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even); /* a's index */
            best = _mm512_mask_add_epi32(best, tb, best, _mm512_set1_epi32(1));
            best = _mm512_mask_blend_epi32(tc, best, _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox + w), even));
            best = _mm512_mask_blend_epi32(td, best, _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox + w + 1), even));
            _mm512_mask_storeu_epi32(a + (size_t)oy * ow + ox, out, best);
        }
    }
}
#endif

/* y = max over the window; aux keeps the argmax (index in the input plane). */
static void maxpool_forward_planes(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    const ds_shape *xs = &n->in[0]->shape;
    int h = xs->d[2], w = xs->d[3], oh = n->shape.d[2], ow = n->shape.d[3];
    int kh = n->ip[0], kw = n->ip[1], sh = n->ip[2], sw = n->ip[3], ph = n->ip[4], pw = n->ip[5];
    int32_t *argmax = n->aux;
    if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
        /* the common 2x2/2 window, always inside the image: no bounds tests,
         * the same order and NaN rule as below */
        for (size_t p = (size_t)lo; p < (size_t)hi; p++) {
            const float *x = n->in[0]->val + p * h * w;
            float *y = n->val + p * oh * ow;
            int32_t *a = argmax + p * oh * ow;
#if defined(__AVX512F__)
            for (int oy = 0; oy < oh; oy++) pool22_row(x, w, oy, ow, y, n->grad ? a : NULL);
            continue;
#endif
            if (!n->grad) { /* no gradient will come back: the maxima alone */
                for (int oy = 0; oy < oh; oy++) {
                    const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
                    for (int ox = 0; ox < ow; ox++) {
                        float m = r0[2 * ox], v = r0[2 * ox + 1];
                        m = v > m || v != v ? v : m;
                        v = r1[2 * ox], m = v > m || v != v ? v : m;
                        v = r1[2 * ox + 1], m = v > m || v != v ? v : m;
                        y[oy * ow + ox] = m;
                    }
                }
                continue;
            }
            for (int oy = 0; oy < oh; oy++) {
                const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
                for (int ox = 0; ox < ow; ox++) { /* selects, not branches: maxima are unpredictable */
                    int32_t i0 = 2 * oy * w + 2 * ox, best = i0;
                    float m = r0[2 * ox], v = r0[2 * ox + 1];
                    bool t = v > m || v != v;
                    m = t ? v : m, best = t ? i0 + 1 : best;
                    v = r1[2 * ox], t = v > m || v != v;
                    m = t ? v : m, best = t ? i0 + w : best;
                    v = r1[2 * ox + 1], t = v > m || v != v;
                    m = t ? v : m, best = t ? i0 + w + 1 : best;
                    y[oy * ow + ox] = m;
                    a[oy * ow + ox] = best;
                }
            }
        }
        return;
    }
    for (size_t p = (size_t)lo; p < (size_t)hi; p++) {
        const float *x = n->in[0]->val + p * h * w;
        float *y = n->val + p * oh * ow;
        int32_t *a = argmax + p * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float m = -FLT_MAX;
                int32_t best = -1;
                for (int i = 0; i < kh; i++) {
                    int iy = oy * sh - ph + i;
                    if (iy < 0 || iy >= h) continue;
                    for (int j = 0; j < kw; j++) {
                        int ix = ox * sw - pw + j;
                        if (ix < 0 || ix >= w) continue;
                        float v = x[iy * w + ix];
                        if (v > m || best < 0 || v != v) {
                            m = v;
                            best = iy * w + ix;
                        }
                    }
                }
                y[oy * ow + ox] = m;
                a[oy * ow + ox] = best;
            }
    }
}

#if defined(__AVX512F__)
/* The 2x2/2 window's backward for one output row, 16 outputs at a time:
 * each input of the two rows gets its output's gradient where the argmax
 * points at it and nothing elsewhere, the even and odd columns interleaved
 * back (the forward's split undone), so the rows are written whole instead
 * of zeroed and then scattered into. fresh: dx = 0 + g (as memset then +=,
 * −0 included); otherwise dx += g under the mask only (dx elsewhere
 * untouched). relu_y: the masked input relu's rule (g = y > 0 ? dy : 0). */
static void pool22_back_row(float *dx, int w, int oy, int ow, const float *dy, const int32_t *a, const float *relu_y,
                            bool fresh)
{
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512i lane2 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512 zero = _mm512_setzero_ps();
    float *r0 = dx + (size_t)(2 * oy) * w, *r1 = r0 + w;
    for (int ox = 0; ox < ow; ox += 16) {
        int nout = ow - ox < 16 ? ow - ox : 16, cols = 2 * nout;
        __mmask16 out = (__mmask16)((1u << nout) - 1);
        __mmask16 lo = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
        __mmask16 hi = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
        __m512 g = _mm512_maskz_loadu_ps(out, dy + (size_t)oy * ow + ox);
        if (relu_y) g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(out, relu_y + (size_t)oy * ow + ox),
                                                               zero, _CMP_GT_OQ), g);
        /* the argmax's offset from its window's top-left input: 0, 1, w or w + 1 */
        __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(out, a + (size_t)oy * ow + ox),
                                     _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), lane2));
        __mmask16 at[4] = {_mm512_mask_cmpeq_epi32_mask(out, d, _mm512_setzero_si512()),
                           _mm512_mask_cmpeq_epi32_mask(out, d, _mm512_set1_epi32(1)),
                           _mm512_mask_cmpeq_epi32_mask(out, d, _mm512_set1_epi32(w)),
                           _mm512_mask_cmpeq_epi32_mask(out, d, _mm512_set1_epi32(w + 1))};
        for (int row = 0; row < 2; row++) {
            float *r = (row ? r1 : r0) + 2 * ox;
            __m512 ev = _mm512_maskz_mov_ps(at[2 * row], g), od = _mm512_maskz_mov_ps(at[2 * row + 1], g);
            __m512 vlo = _mm512_permutex2var_ps(ev, lo_idx, od), vhi = _mm512_permutex2var_ps(ev, hi_idx, od);
            if (fresh) {
                _mm512_mask_storeu_ps(r, lo, _mm512_add_ps(vlo, zero));
                _mm512_mask_storeu_ps(r + 16, hi, _mm512_add_ps(vhi, zero));
            } else { /* only the argmax inputs: the masks interleaved as the values were */
                __m512i one = _mm512_set1_epi32(-1);
                __m512i me = _mm512_maskz_mov_epi32(at[2 * row], one), mo = _mm512_maskz_mov_epi32(at[2 * row + 1], one);
                __mmask16 plo = _mm512_mask_test_epi32_mask(lo, _mm512_permutex2var_epi32(me, lo_idx, mo), one);
                __mmask16 phi = _mm512_mask_test_epi32_mask(hi, _mm512_permutex2var_epi32(me, hi_idx, mo), one);
                _mm512_mask_storeu_ps(r, plo, _mm512_add_ps(_mm512_maskz_loadu_ps(plo, r), vlo));
                _mm512_mask_storeu_ps(r + 16, phi, _mm512_add_ps(_mm512_maskz_loadu_ps(phi, r + 16), vhi));
            }
        }
    }
}
#endif

/* dx[argmax] += dy */
static void maxpool_backward_planes(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    const ds_shape *xs = &n->in[0]->shape;
    size_t hw = (size_t)xs->d[2] * xs->d[3], ohw = (size_t)n->shape.d[2] * n->shape.d[3];
    const int32_t *argmax = n->aux;
    for (size_t p = (size_t)lo; p < (size_t)hi; p++) {
        float *dx = n->in[0]->grad + p * hw;
        const float *dy = n->grad + p * ohw;
        const int32_t *a = argmax + p * ohw;
#if defined(__AVX512F__)
        /* the 2x2/2 window tiling the plane exactly: every input row written once */
        int h = xs->d[2], w = xs->d[3];
        if (n->ip[0] == 2 && n->ip[1] == 2 && n->ip[2] == 2 && n->ip[3] == 2 && n->ip[4] == 0 && n->ip[5] == 0 &&
            h % 2 == 0 && w % 2 == 0) {
            for (int oy = 0, oh = h / 2; oy < oh; oy++)
                pool22_back_row(dx, w, oy, w / 2, dy, a, n->ip[7] ? n->val + p * ohw : NULL, n->in[0]->grad_fresh);
            continue;
        }
#endif
        if (n->in[0]->grad_fresh) memset(dx, 0, hw * sizeof *dx); /* plane by plane, while it is in cache */
        if (n->ip[7]) { /* the input relu's mask (y > 0) at the maxima: its own pass skipped */
            const float *y = n->val + p * ohw;
            for (size_t o = 0; o < ohw; o++) dx[a[o]] += y[o] > 0 ? dy[o] : 0;
            continue;
        }
        for (size_t o = 0; o < ohw; o++) dx[a[o]] += dy[o];
    }
}

/* y = Σ window / (kh·kw) (padding counts as zeros);  dx += dy/(kh·kw) over the window */
static void avgpool_planes(ds_node *n, int backward, long lo, long hi)
{
    const ds_shape *xs = &n->in[0]->shape;
    int h = xs->d[2], w = xs->d[3], oh = n->shape.d[2], ow = n->shape.d[3];
    int kh = n->ip[0], kw = n->ip[1], sh = n->ip[2], sw = n->ip[3], ph = n->ip[4], pw = n->ip[5];
    float inv = 1.0f / (float)(kh * kw);
    for (size_t p = (size_t)lo; p < (size_t)hi; p++) {
        const float *x = n->in[0]->val + p * h * w;
        float *dx = backward ? n->in[0]->grad + p * h * w : NULL;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                size_t o = p * oh * ow + (size_t)oy * ow + ox;
                float s = 0, d = backward ? n->grad[o] * inv : 0;
                for (int i = 0; i < kh; i++) {
                    int iy = oy * sh - ph + i;
                    if (iy < 0 || iy >= h) continue;
                    for (int j = 0; j < kw; j++) {
                        int ix = ox * sw - pw + j;
                        if (ix < 0 || ix >= w) continue;
                        if (backward) dx[iy * w + ix] += d;
                        else s += x[iy * w + ix];
                    }
                }
                if (!backward) n->val[o] = s * inv;
            }
    }
}

static void avgpool_forward_planes(void *arg, long lo, long hi) { avgpool_planes(arg, 0, lo, hi); }
static void avgpool_backward_planes(void *arg, long lo, long hi) { avgpool_planes(arg, 1, lo, hi); }

/* Each (sample, channel) plane is independent: split the planes over threads,
 * at least some 16K input values to a thread (at batch 1 LeNet's pools,
 * 32 planes of 28×28, ran 3x slower split in two than on one thread). */
static long planes_of(const ds_node *n) { return (long)n->in[0]->shape.d[0] * n->in[0]->shape.d[1]; }
static long min_planes(const ds_node *n)
{
    return 16384 / ((long)n->in[0]->shape.d[2] * n->in[0]->shape.d[3] + 1) + 1;
}
static void maxpool_forward(ds_node *n, ds_graph *g) { (void)g; ds_parallel_for(planes_of(n), min_planes(n), maxpool_forward_planes, n); }
static void maxpool_backward(ds_node *n, ds_graph *g)
{
    n->ip[7] = n->relu_input_masked && g->relu_backward == DS_RELU_BACKWARD_STANDARD; /* read by the planes */
    ds_parallel_for(planes_of(n), min_planes(n), maxpool_backward_planes, n);
}
static void avgpool_forward(ds_node *n, ds_graph *g) { (void)g; ds_parallel_for(planes_of(n), min_planes(n), avgpool_forward_planes, n); }
static void avgpool_backward(ds_node *n, ds_graph *g) { (void)g; ds_parallel_for(planes_of(n), min_planes(n), avgpool_backward_planes, n); }

static const ds_op op_maxpool = {"maxpool2d", pool_shape, maxpool_forward, maxpool_backward};
static const ds_op op_avgpool = {"avgpool2d", pool_shape, avgpool_forward, avgpool_backward};

static ds_node *pool_make(ds_graph *g, const ds_op *op, ds_node *x, ds_pool_opt o, int is_max)
{
    ds_node *n = ds_node_new(g, op, 1, &x);
    if (!n) return NULL;
    for (int i = 0; i < 2; i++) {
        n->ip[i] = o.kernel[i];
        n->ip[2 + i] = o.stride[i] ? o.stride[i] : o.kernel[i];
        n->ip[4 + i] = o.pad[i];
    }
    n->ip[6] = is_max;
    return ds_node_finish(g, n);
}

ds_node *ds_maxpool2d(ds_graph *g, ds_node *x, ds_pool_opt opt) { return pool_make(g, &op_maxpool, x, opt, 1); }
ds_node *ds_avgpool2d(ds_graph *g, ds_node *x, ds_pool_opt opt) { return pool_make(g, &op_avgpool, x, opt, 0); }

/* ---- global average pool: [N,C,H,W] → [N,C,1,1] ---- */

static int gap_shape(ds_node *n)
{
    const ds_node *x = n->in[0];
    if (ds_require_nchw(n, 0)) return -1;
    n->shape = ds_shape_of(4, x->shape.d[0], x->shape.d[1], 1, 1);
    return 0;
}

/* y = mean over H·W;  dx += dy/(H·W) */
static void gap_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    size_t planes = ds_numel(n), hw = ds_numel(n->in[0]) / planes;
    for (size_t p = 0; p < planes; p++) {
        const float *x = n->in[0]->val + p * hw;
        double s = 0;
        for (size_t i = 0; i < hw; i++) s += x[i];
        n->val[p] = (float)(s / (double)hw);
    }
}

static void gap_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    size_t planes = ds_numel(n), hw = ds_numel(n->in[0]) / planes;
    for (size_t p = 0; p < planes; p++) {
        float d = n->grad[p] / (float)hw, *dx = n->in[0]->grad + p * hw;
        for (size_t i = 0; i < hw; i++) dx[i] += d;
    }
}

static const ds_op op_gap = {"global_avgpool", gap_shape, gap_forward, gap_backward};

ds_node *ds_global_avgpool(ds_graph *g, ds_node *x)
{
    return ds_node_finish(g, ds_node_new(g, &op_gap, 1, &x));
}
