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
