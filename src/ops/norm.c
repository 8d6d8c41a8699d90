/* norm.c — batch normalisation and dropout: the two ops whose behaviour
 * depends on train/eval mode. */
#include "internal.h"
#include "bn_add.h"

#include <stdbool.h>

#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- batch norm over dim 1 of [N, C, …]; M = N·Π(rest) values per channel ----
 * in: x, γ, β, running_mean, running_var; fp: momentum, eps.
 * aux: mean[C], invstd[C] of the last forward (batch or running statistics). */

static int bn_shape(ds_node *n)
{
    /* a following relu is fused; with AVX-512 the backward applies its
     * mask to dy as it reads it */
    n->fuses_relu = true;
    n->folds_into_add = true; /* src/ops/bn_add.h */
#if defined(__AVX512F__)
    n->masks_relu = true;
#endif
    const ds_node *x = n->in[0];
    char sx[96];
    if (x->shape.ndim < 2)
        return ds_shape_fail(n, "input '%s' is %s; expected [N, C, ...]", x->name,
                             ds_shape_str(x->shape, sx, sizeof sx));
    int c = x->shape.d[1];
    for (int i = 1; i < 5; i++)
        if (ds_numel(n->in[i]) != (size_t)c)
            return ds_shape_fail(n, "'%s' has %zu elements; input '%s' has %d channels",
                                 n->in[i]->name, ds_numel(n->in[i]), x->name, c);
    n->shape = x->shape;
    /* mean and 1/std [2c] floats; then [3c] doubles, the synchronised
     * statistics' sums (ds_graph_set_sync_bn) */
    n->aux_bytes = 2 * (size_t)c * sizeof(float) + 3 * (size_t)c * sizeof(double);
    n->grad_overwrites = 1;
    return 0;
}

static void bn_view(const ds_node *n, int *batch, int *c, size_t *inner)
{
    *batch = n->shape.d[0];
    *c = n->shape.d[1];
    *inner = ds_numel(n) / ((size_t)*batch * (size_t)*c);
}

#if !defined(__AVX512F__)
/* Σ p[i] and Σ (p[i] − mu)² over one plane: 16 float lanes (the compiler
 * vectorises them), then the lanes in order in double. */
static double plane_sum(const float *p, size_t n)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += p[i + j];
    double s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) s += p[i];
    return s;
}

static double plane_sq(const float *p, size_t n, float mu)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += (p[i + j] - mu) * (p[i + j] - mu);
    double s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    for (; i < n; i++) s += (double)(p[i] - mu) * (p[i] - mu);
    return s;
}
#endif

/* One channel's mean and (biased) variance over b planes of `inner`
 * values, `stride` apart. AVX-512: one pass of Σ (x − K) and Σ (x − K)²
 * about K = the channel's first value (so the subtraction loses nothing
 * while |mean − K| is a few σ), lanes in double once per plane, one
 * reduction per channel. Otherwise two passes: the mean, then Σ (x − μ)². */
static void chan_stats(const float *x, int b, size_t stride, size_t inner, double *mean, double *var)
{
    double m = (double)b * (double)inner;
#if defined(__AVX512F__)
    float k = x[0];
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    __m512 vk = _mm512_set1_ps(k);
    for (int n = 0; n < b; n++) {
        const float *p = x + (size_t)n * stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, c0 = a0, c1 = a0;
        size_t i = 0;
        for (; i + 32 <= inner; i += 32) {
            __m512 v0 = _mm512_sub_ps(_mm512_loadu_ps(p + i), vk), v1 = _mm512_sub_ps(_mm512_loadu_ps(p + i + 16), vk);
            a0 = _mm512_add_ps(a0, v0);
            a1 = _mm512_add_ps(a1, v1);
            c0 = _mm512_fmadd_ps(v0, v0, c0);
            c1 = _mm512_fmadd_ps(v1, v1, c1);
        }
        for (; i < inner; i += 16) {
            __mmask16 mk = inner - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (inner - i)) - 1);
            __m512 v = _mm512_maskz_sub_ps(mk, _mm512_maskz_loadu_ps(mk, p + i), vk);
            a0 = _mm512_add_ps(a0, v);
            c0 = _mm512_fmadd_ps(v, v, c0);
        }
        a0 = _mm512_add_ps(a0, a1);
        c0 = _mm512_add_ps(c0, c1);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(a0)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a0), 1))));
        q0 = _mm512_add_pd(q0, _mm512_cvtps_pd(_mm512_castps512_ps256(c0)));
        q1 = _mm512_add_pd(q1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c0), 1))));
    }
    double d = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / m, sq = _mm512_reduce_add_pd(_mm512_add_pd(q0, q1)) / m;
    *mean = k + d;
    *var = sq - d * d > 0 ? sq - d * d : 0;
#else
    double s = 0, ss = 0;
    for (int n = 0; n < b; n++) s += plane_sum(x + (size_t)n * stride, inner);
    *mean = s / m;
    for (int n = 0; n < b; n++) ss += plane_sq(x + (size_t)n * stride, inner, (float)*mean);
    *var = ss / m;
#endif
}

#if !defined(__AVX512F__)
/* Σ dy and Σ dy·(x − mu) over one plane */
static void plane_dots(const float *dy, const float *x, size_t n, float mu, double *sdy, double *sdyx)
{
    float a[16] = {0}, b[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            a[j] += dy[i + j];
            b[j] += dy[i + j] * (x[i + j] - mu);
        }
    double s = 0, t = 0;
    for (int j = 0; j < 16; j++) s += a[j], t += b[j];
    for (; i < n; i++) s += dy[i], t += (double)dy[i] * (x[i] - mu);
    *sdy += s, *sdyx += t;
}
#endif

typedef struct {
    ds_node *n;
    bool training;
    /* sync BN: 1 the local sums into sums[], 2 the rest from the global sums */
    int phase;
    double *sums; /* forward [Σx | Σx² | -], backward [Σdy | Σdy·(x−μ) | -], per channel */
    double m;     /* the global count per channel (phase 2) */
} bn_task;

static double *bn_sums(const ds_node *n) { return (double *)((float *)n->aux + 2 * n->shape.d[1]); }

/* train: μ, σ² from the batch (biased), running ← (1−m)·running + m·(μ, σ²·M/(M−1));
 * eval: μ, σ² = running.  y = γ·(x − μ)/√(σ² + eps) + β.  Channels in parallel. */
static void bn_forward_range(void *arg, long lo, long hi)
{
    const bn_task *t = arg;
    ds_node *n = t->n;
    int b, c;
    size_t inner;
    bn_view(n, &b, &c, &inner);
    const float *x = n->in[0]->val, *gamma = n->in[1]->val, *beta = n->in[2]->val;
    float *rm = n->in[3]->val, *rv = n->in[4]->val, *mean = n->aux, *invstd = mean + c;
    float mom = n->fp[0], eps = n->fp[1];
    double m = (double)b * (double)inner;
    for (long ch = lo; ch < hi; ch++) {
        double mu, var;
        if (t->phase == 1) { /* this rank's sums, for the all-reduce */
            chan_stats(x + (size_t)ch * inner, b, (size_t)c * inner, inner, &mu, &var);
            t->sums[ch] = mu * m;
            t->sums[c + ch] = (var + mu * mu) * m;
            continue;
        }
        if (t->training && t->phase == 2) { /* every rank's rows */
            m = t->m;
            mu = t->sums[ch] / m;
            var = t->sums[c + ch] / m - mu * mu;
            if (var < 0) var = 0;
            rm[ch] = (float)((1 - mom) * rm[ch] + mom * mu);
            rv[ch] = (float)((1 - mom) * rv[ch] + mom * (m > 1 ? var * m / (m - 1) : var));
        } else if (t->training) {
            chan_stats(x + (size_t)ch * inner, b, (size_t)c * inner, inner, &mu, &var);
            rm[ch] = (float)((1 - mom) * rm[ch] + mom * mu);
            rv[ch] = (float)((1 - mom) * rv[ch] + mom * (m > 1 ? var * m / (m - 1) : var));
        } else {
            mu = rm[ch];
            var = rv[ch];
        }
        mean[ch] = (float)mu;
        invstd[ch] = (float)(1.0 / sqrt(var + eps));
        if (n->folded) continue; /* applied by the add it is fused into (ds_bn_add_apply) */
        float sc = gamma[ch] * invstd[ch], sh = beta[ch] - (float)mu * sc;
        for (int s0 = 0; s0 < b; s0++) {
            const float *p = x + ((size_t)s0 * c + ch) * inner;
            float *y = n->val + ((size_t)s0 * c + ch) * inner;
            if (n->fused_relu)
                for (size_t i = 0; i < inner; i++) y[i] = p[i] * sc + sh > 0 ? p[i] * sc + sh : 0;
            else
                for (size_t i = 0; i < inner; i++) y[i] = p[i] * sc + sh;
        }
    }
}

/* sync BN: the local sums of phase 1 plus the count, summed over the ranks */
static int bn_allreduce(ds_node *n, ds_graph *g, bn_task *t)
{
    int c = n->shape.d[1];
    t->sums[2 * c] = t->m; /* the count rides along (the ranks' shares may differ) */
    if (ds_comm_allreduce_f64(g->sync_bn, t->sums, 2 * c + 1, DS_COMM_SUM) != 0) {
        ds_op_error(g, n, "synchronised batch norm: %s", ds_last_error());
        return -1;
    }
    t->m = t->sums[2 * c];
    t->phase = 2;
    return 0;
}

/* forward or backward over the channels; synchronised (training): the local
 * sums first, their all-reduce, then the pass that uses the global ones */
static void bn_run(ds_node *n, ds_graph *g, void (*range)(void *, long, long))
{
    bn_task t = {n, g->training, 0, bn_sums(n), 0};
    if (g->sync_bn && g->training) {
        int b, c;
        size_t inner;
        bn_view(n, &b, &c, &inner);
        t.phase = 1;
        t.m = (double)b * (double)inner;
        ds_parallel_for(c, 1, range, &t);
        if (bn_allreduce(n, g, &t) != 0) return;
    }
    ds_parallel_for(n->shape.d[1], 1, range, &t);
}

static void bn_forward(ds_node *n, ds_graph *g) { bn_run(n, g, bn_forward_range); }

void ds_bn_planes(const ds_node *bn, long *planes, size_t *inner)
{
    int b, c;
    bn_view(bn, &b, &c, inner);
    *planes = (long)b * c;
}

/* the add's forward for a fused batch norm: y as bn_forward_range computes
 * it (the same floats), then + s, then the relu */
void ds_bn_add_apply(const ds_node *bn, const float *s, float *z, bool relu, long lo, long hi)
{
    int b, c;
    size_t inner;
    bn_view(bn, &b, &c, &inner);
    const float *x = bn->in[0]->val, *gamma = bn->in[1]->val, *beta = bn->in[2]->val;
    const float *mean = bn->aux, *invstd = mean + c;
    for (long pl = lo; pl < hi; pl++) {
        int ch = (int)(pl % c);
        float sc = gamma[ch] * invstd[ch], sh = beta[ch] - mean[ch] * sc;
        size_t off = (size_t)pl * inner;
        const float *p = x + off, *q = s + off;
        float *o = z + off;
        if (relu)
            for (size_t i = 0; i < inner; i++) {
                float y = p[i] * sc + sh, v = y + q[i];
                o[i] = v > 0 ? v : 0;
            }
        else
            for (size_t i = 0; i < inner; i++) {
                float y = p[i] * sc + sh;
                o[i] = y + q[i];
            }
    }
}

/* One channel's Σ dy and Σ dy·(x − mu) over b planes of `inner` values,
 * `stride` apart. AVX-512: two vector accumulators per sum within a plane
 * (masked tail, no scalar loop), each plane's lanes added into double
 * vectors, reduced once per channel — the per-plane horizontal sums were
 * most of the time on 7×7 and 14×14 planes. */
static void chan_dots(const float *dy, const float *x, const float *y, int b, size_t stride, size_t inner, float mu,
                      double *sdy, double *sdyx)
{
#if defined(__AVX512F__)
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
    __m512 vmu = _mm512_set1_ps(mu), z = _mm512_setzero_ps();
    for (int n = 0; n < b; n++) {
        const float *d = dy + (size_t)n * stride, *p = x + (size_t)n * stride, *r = y ? y + (size_t)n * stride : NULL;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, c0 = a0, c1 = a0;
        size_t i = 0;
        for (; i + 32 <= inner; i += 32) {
            __m512 d0 = _mm512_loadu_ps(d + i), d1 = _mm512_loadu_ps(d + i + 16);
            if (r) { /* a fused relu: dy where its output was positive */
                d0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(r + i), z, _CMP_GT_OQ), d0);
                d1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(r + i + 16), z, _CMP_GT_OQ), d1);
            }
            a0 = _mm512_add_ps(a0, d0);
            a1 = _mm512_add_ps(a1, d1);
            c0 = _mm512_fmadd_ps(d0, _mm512_sub_ps(_mm512_loadu_ps(p + i), vmu), c0);
            c1 = _mm512_fmadd_ps(d1, _mm512_sub_ps(_mm512_loadu_ps(p + i + 16), vmu), c1);
        }
        for (; i < inner; i += 16) {
            __mmask16 m = inner - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (inner - i)) - 1);
            __m512 d0 = _mm512_maskz_loadu_ps(m, d + i);
            if (r) d0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, r + i), z, _CMP_GT_OQ), d0);
            a0 = _mm512_add_ps(a0, d0);
            c0 = _mm512_fmadd_ps(d0, _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, p + i), vmu), c0);
        }
        a0 = _mm512_add_ps(a0, a1);
        c0 = _mm512_add_ps(c0, c1);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(a0)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a0), 1))));
        t0 = _mm512_add_pd(t0, _mm512_cvtps_pd(_mm512_castps512_ps256(c0)));
        t1 = _mm512_add_pd(t1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c0), 1))));
    }
    *sdy = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    *sdyx = _mm512_reduce_add_pd(_mm512_add_pd(t0, t1));
#else
    (void)y; /* masked only on AVX-512 (relu_mask_in_backward) */
    *sdy = *sdyx = 0;
    for (int n = 0; n < b; n++) plane_dots(dy + (size_t)n * stride, x + (size_t)n * stride, inner, mu, sdy, sdyx);
#endif
}

/* dx (= or +=) k·dy + c1·x + c0 over one channel's b planes (dy masked by y > 0 when y) */
static void chan_dx(float *dx, const float *dy, const float *x, const float *y, int b, size_t stride, size_t inner,
                    float k, float c1, float c0, bool fresh)
{
    for (int n = 0; n < b; n++) {
        size_t off = (size_t)n * stride;
        float *o = dx + off;
        const float *d = dy + off, *p = x + off;
#if defined(__AVX512F__)
        __m512 vk = _mm512_set1_ps(k), v1 = _mm512_set1_ps(c1), v0 = _mm512_set1_ps(c0), z = _mm512_setzero_ps();
        for (size_t i = 0; i < inner; i += 16) {
            __mmask16 m = inner - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (inner - i)) - 1);
            __m512 dv = _mm512_maskz_loadu_ps(m, d + i);
            if (y) dv = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y + off + i), z, _CMP_GT_OQ), dv);
            __m512 v = _mm512_fmadd_ps(vk, dv, _mm512_fmadd_ps(v1, _mm512_maskz_loadu_ps(m, p + i), v0));
            if (!fresh) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, o + i));
            _mm512_mask_storeu_ps(o + i, m, v);
        }
#else
        (void)y;
        if (fresh)
            for (size_t i = 0; i < inner; i++) o[i] = k * d[i] + (c1 * p[i] + c0);
        else
            for (size_t i = 0; i < inner; i++) o[i] += k * d[i] + (c1 * p[i] + c0);
#endif
    }
}

/* x̂ = (x − μ)·invstd;  dγ += Σ dy·x̂;  dβ += Σ dy;
 * train: dx += γ·invstd/M·(M·dy − Σdy − x̂·Σ dy·x̂);  eval: dx += γ·invstd·dy.
 * Written as dx = k·dy + c1·x + c0 with k = γ·invstd, c1 = −k·invstd·b̄,
 * c0 = −k·(ā − μ·invstd·b̄), ā = Σdy/M, b̄ = Σ dy·x̂/M. */
static void bn_backward_range(void *arg, long lo, long hi)
{
    const bn_task *t = arg;
    ds_node *n = t->n;
    int b, c;
    size_t inner;
    bn_view(n, &b, &c, &inner);
    const float *x = n->in[0]->val, *gamma = n->in[1]->val, *dy = n->grad;
    const float *mean = n->aux, *invstd = mean + c;
    float *dx = n->in[0]->grad, *dgamma = n->in[1]->grad, *dbeta = n->in[2]->grad;
    double m = (double)b * (double)inner;
    size_t stride = (size_t)c * inner;
    for (long ch = lo; ch < hi; ch++) {
        double sdy, sdyx;
        float mu = mean[ch], is = invstd[ch];
        const float *y = n->relu_mask_in_backward ? n->val + (size_t)ch * inner : NULL; /* a fused relu's output */
        if (t->phase == 2) { /* every rank's sums, for dx; dγ and dβ took this rank's in phase 1 */
            m = t->m;
            sdy = t->sums[ch];
            sdyx = t->sums[c + ch] * is;
        } else {
            chan_dots(dy + (size_t)ch * inner, x + (size_t)ch * inner, y, b, stride, inner, mu, &sdy, &sdyx);
            if (t->phase == 1) t->sums[ch] = sdy, t->sums[c + ch] = sdyx;
            sdyx *= is;
            /* the parameters' gradients stay this rank's: the trainer sums them over the ranks */
            if (dgamma) dgamma[ch] += (float)sdyx;
            if (dbeta) dbeta[ch] += (float)sdy;
            if (t->phase == 1) continue;
        }
        if (!dx) continue;
        double k = (double)gamma[ch] * is;
        double a = t->training ? sdy / m : 0, bb = t->training ? sdyx / m : 0;
        double c1 = -k * is * bb, c0 = -k * (a - mu * is * bb);
        chan_dx(dx + (size_t)ch * inner, dy + (size_t)ch * inner, x + (size_t)ch * inner, y, b, stride, inner, (float)k,
                (float)c1, (float)c0, n->in[0]->grad_fresh);
    }
}

static void bn_backward(ds_node *n, ds_graph *g) { bn_run(n, g, bn_backward_range); }

static const ds_op op_bn = {"batchnorm", bn_shape, bn_forward, bn_backward};

bool ds_is_batchnorm(const ds_node *n) { return n && n->op == &op_bn; }

/* ---- instance norm: each sample's channel planes to mean 0, variance 1 ----
 * y = (x − μ_nc)/√(σ²_nc + eps) over the H·W values of plane (n, c), no
 * affine parameters (PyTorch's InstanceNorm2d(affine=False)). Survey stamps
 * span five decades of brightness; this makes each stamp's scale its own.
 * aux: μ and 1/σ per plane. */
static int in_shape(ds_node *n)
{
    const ds_node *x = n->in[0];
    char sx[96];
    if (x->shape.ndim < 3)
        return ds_shape_fail(n, "input '%s' is %s; expected [N, C, ...] with spatial dims", x->name,
                             ds_shape_str(x->shape, sx, sizeof sx));
    n->shape = x->shape;
    n->aux_bytes = 2 * (size_t)x->shape.d[0] * x->shape.d[1] * sizeof(float);
    n->grad_overwrites = 1;
    return 0;
}

static void in_forward_range(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    size_t inner = ds_numel(n) / ((size_t)n->shape.d[0] * n->shape.d[1]);
    size_t planes = (size_t)n->shape.d[0] * n->shape.d[1];
    float *mu = n->aux, *is = mu + planes;
    for (long p = lo; p < hi; p++) {
        const float *x = n->in[0]->val + (size_t)p * inner;
        double mean, var;
        chan_stats(x, 1, inner, inner, &mean, &var);
        mu[p] = (float)mean;
        is[p] = (float)(1.0 / sqrt(var + n->fp[0]));
        float *y = n->val + (size_t)p * inner, m = mu[p], k = is[p];
        for (size_t i = 0; i < inner; i++) y[i] = (x[i] - m) * k;
    }
}

static void in_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    ds_parallel_for((long)n->shape.d[0] * n->shape.d[1], 1, in_forward_range, n);
}

/* dx = is/M · (M·dy − Σdy − x̂·Σ dy·x̂) per plane */
static void in_backward_range(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    size_t inner = ds_numel(n) / ((size_t)n->shape.d[0] * n->shape.d[1]);
    size_t planes = (size_t)n->shape.d[0] * n->shape.d[1];
    const float *mu = n->aux, *is = mu + planes;
    for (long p = lo; p < hi; p++) {
        size_t off = (size_t)p * inner;
        double sdy, sdyx;
        chan_dots(n->grad + off, n->in[0]->val + off, NULL, 1, inner, inner, mu[p], &sdy, &sdyx);
        sdyx *= is[p];
        double k = is[p], a = sdy / inner, b = sdyx / inner;
        double c1 = -k * is[p] * b, c0 = -k * (a - mu[p] * is[p] * b);
        chan_dx(n->in[0]->grad + off, n->grad + off, n->in[0]->val + off, NULL, 1, inner, inner, (float)k,
                (float)c1, (float)c0, n->in[0]->grad_fresh);
    }
}

static void in_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    if (n->in[0]->grad) ds_parallel_for((long)n->shape.d[0] * n->shape.d[1], 1, in_backward_range, n);
}

static const ds_op op_instancenorm = {"instancenorm", in_shape, in_forward, in_backward};

ds_node *ds_instancenorm(ds_graph *g, ds_node *x, float eps)
{
    ds_node *n = ds_node_new(g, &op_instancenorm, 1, (ds_node *[]){x});
    if (!n) return NULL;
    n->fp[0] = eps;
    return ds_node_finish(g, n);
}

ds_node *ds_batchnorm(ds_graph *g, ds_node *x, ds_node *gamma, ds_node *beta, ds_node *running_mean,
                      ds_node *running_var, float momentum, float eps)
{
    ds_node *n = ds_node_new(g, &op_bn, 5, (ds_node *[]){x, gamma, beta, running_mean, running_var});
    if (!n) return NULL;
    n->fp[0] = momentum;
    n->fp[1] = eps;
    return ds_node_finish(g, n);
}

/* ---- dropout: aux holds the mask (0 or 1/(1−p)) of the last training forward ---- */

static int dropout_shape(ds_node *n)
{
    if (!(n->fp[0] >= 0 && n->fp[0] < 1)) return ds_shape_fail(n, "p = %g is outside [0, 1)", n->fp[0]);
    n->shape = n->in[0]->shape;
    n->aux_bytes = ds_numel(n) * sizeof(float);
    n->grad_overwrites = 1;
    return 0;
}

/* train: y = x·mask, mask ~ Bernoulli(1−p)/(1−p);  eval: y = x */
static void dropout_forward(ds_node *n, ds_graph *g)
{
    const float *x = n->in[0]->val;
    float *y = n->val, *mask = n->aux, p = n->fp[0], keep = 1.0f / (1.0f - p);
    size_t e = ds_numel(n);
    if (!g->training || p == 0) {
        memcpy(y, x, e * sizeof *y);
        return;
    }
    /* data-parallel: the rows of the global batch before and after this
     * rank's draw their masks too (and drop them), so every rank's masks
     * and the generator's state are those of one process at the global batch */
    size_t row = g->batch > 0 ? e / (size_t)g->batch : 0;
    for (size_t i = 0; i < (size_t)g->rows_before * row; i++) (void)ds_rng_uniform(&g->rng);
    for (size_t i = 0; i < e; i++) {
        mask[i] = ds_rng_uniform(&g->rng) >= p ? keep : 0.0f;
        y[i] = x[i] * mask[i];
    }
    for (size_t i = 0; i < (size_t)g->rows_after * row; i++) (void)ds_rng_uniform(&g->rng);
}

/* dx += dy·mask (train), dy (eval) */
static void dropout_backward(ds_node *n, ds_graph *g)
{
    const float *dy = n->grad, *mask = n->aux;
    float *dx = n->in[0]->grad;
    size_t e = ds_numel(n);
    bool fresh = n->in[0]->grad_fresh;
    if (!g->training || n->fp[0] == 0)
        for (size_t i = 0; i < e; i++) dx[i] = (fresh ? 0 : dx[i]) + dy[i];
    else
        for (size_t i = 0; i < e; i++) dx[i] = (fresh ? 0 : dx[i]) + dy[i] * mask[i];
}

static const ds_op op_dropout = {"dropout", dropout_shape, dropout_forward, dropout_backward};

ds_node *ds_dropout(ds_graph *g, ds_node *x, float p)
{
    ds_node *n = ds_node_new(g, &op_dropout, 1, &x);
    if (!n) return NULL;
    n->fp[0] = p;
    return ds_node_finish(g, n);
}
