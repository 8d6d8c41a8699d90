/* rbm.c — restricted Boltzmann machines trained by contrastive divergence.
 *
 * Energy, with W [hidden × visible], visible bias b, hidden bias c:
 *   Bernoulli visible:  E(v, h) = −b·v − c·h − hᵀWv
 *   Gaussian visible (unit variance, data standardised):
 *                       E(v, h) = ‖v − b‖²/2 − c·h − hᵀWv
 * p(h_j = 1 | v) = σ(c_j + W_j·v); p(v | h) = σ(b + Wᵀh) (Bernoulli) or
 * N(b + Wᵀh, 1) (Gaussian).
 *
 * One CD-k update of a batch v0 [n × V] (Hinton, "A practical guide to
 * training RBMs", 2010):
 *   q0 = p(h | v0); h ~ q0                  positive phase
 *   k times: v = E[v | h] (the mean, not a sample: less noise), q = p(h | v),
 *            h ~ q (not after the last step)
 *   ΔW ∝ (q0ᵀ v0 − qᵀ v)/n − λW;  Δb ∝ mean(v0 − v);  Δc ∝ mean(q0 − q)
 * With persistent CD the negative chain starts from the previous update's
 * final hidden sample instead of h ~ q0. Updates go through momentum
 * (vel ← m·vel + lr·Δ; θ += vel). A sparsity target ρ pulls each hidden
 * unit's running mean activation q̄ (q̄ ← 0.9·q̄ + 0.1·mean(q0)) towards ρ by
 * adding cost·(ρ − q̄) to Δc (Lee et al. 2008; Hinton §11).
 *
 * Random draws: one stream (xoshiro256**, seeded by the config). Each
 * sampled layer (n × H hidden units, or n × V visible ones in
 * ds_rbm_gibbs) takes one 64-bit key from it; unit i (row-major index
 * s·H + j) gets u = top 24 bits of splitmix64's output i + 1 from that key,
 * as a float in [0, 1), and h = u < q. A unit's draw depends on its index
 * alone, so the positive phase's sample is made inside the product's
 * epilogue, in parallel, the same for any thread count.
 * Per update of a batch of n: four products of n·V·H multiply-adds and one
 * of depth 2n (the gradient), by ds_gemm_direct (operands read in place,
 * σ and the CD-1 sums in its epilogue, Wᵀ copied once per update). When
 * the left operand is exactly 0/1 (the data v0 when it is binary, checked
 * value by value; the sampled h) and at most half ones, its product goes
 * to ds_gemm_binary: adds of the selected rows, the same bits (W finite;
 * the update checks W itself for a value not finite), so results do not
 * depend on which path ran. */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ds_rbm {
    ds_rbm_cfg cfg;
    int max_batch;
    float *w, *b, *c;       /* parameters */
    float *vw, *vb, *vc;    /* momentum (velocities) */
    float *qbar;            /* running mean hidden activation (sparsity) */
    float *q0, *h, *v, *q;  /* scratch [max_batch × …]; q0, q, v inside ph and pv */
    float *pv;              /* [2·max_batch × V]: v0 then v (the gradient's one product) */
    float *ph;              /* [2·max_batch × H]: q0 then q */
    float *pht;             /* [H × 2n]: [q0; −q]ᵀ, the gradient's A read along its rows */
    float *wt;              /* Wᵀ [V × ldt], copied once per update for the products that read it */
    int ldt;                /* H rounded up to 32 (+ 16): every 32-column strip of Wᵀ lies inside it */
    double *acc;            /* [V + 2H]: the bias gradients' row sums */
    double *acc2;           /* [V]: CD-1's error, per column */
    int *bidx, *bstart;     /* a 0/1 left operand's index lists (ds_binary_index) */
    unsigned char *wbad;    /* [V]: the gradient's column panel at j0 left a value not finite */
    float *chain;           /* PCD: hidden samples [max_batch × H] */
    int chain_n;            /* rows of chain set (0: not started) */
    ds_rng rng;
};

/* elementwise passes over the big arrays, in parallel */
typedef struct {
    float *a, *b;
    float s, t;
    int op; /* 0: a = σ(a); 1: a = s·a − t·b (velocity: momentum, decay); 2: a += b */
} ew_task;

/* σ(x) 16 at a time: e^−x by Cephes' expf (2ⁿ·p(r), r = −x − n·ln 2 in
 * two parts, degree-6 polynomial; ≤ 2 ulp of expf), then 1/(1 + e^−x).
 * libm's expf, one call per value, was a sixth of an RBM update. NaN
 * stays NaN, ±inf give 0 and 1 as 1/(1 + expf(−x)) does; the tail of a range goes
 * through the same code padded, so a value's σ does not depend on where
 * the range split. */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64), aligned(4)));

/* m ? a : b lane by lane (C has no ?: on vectors) */
#define sel16(m, a, b) ((v16)(((v16i)(a) & (m)) | ((v16i)(b) & ~(m))))

/* p[0..16) = σ(p[0..16)); by pointer: a vector argument's ABI depends on
 * the ISA (-Wpsabi in the AVX2 build) */
static void sigm16(float *p16)
{
    v16 x, zero = {0};
    memcpy(&x, p16, sizeof x);
    v16 t = -x;
    t = sel16(t > 88.72f, zero + 88.72f, t); /* past it 2^128 = inf: σ = 0 exactly, as with expf */
    t = sel16(t < -87.3f, zero - 87.3f, t);
    v16 fx = t * 1.44269504088896341f + 0.5f;
    v16i n = __builtin_convertvector(sel16(t == t, fx, zero), v16i);
    n -= (__builtin_convertvector(n, v16) > fx) & 1; /* floor: truncation rounds negatives up */
    v16 fn = __builtin_convertvector(n, v16);
    v16 r = t - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    v16 p = zero + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    v16 e = p * (v16)((n + 127) << 23);
    x = sel16(x != x, x, 1.0f / (1.0f + e));
    memcpy(p16, &x, sizeof x);
}

static void sigm_range(float *a, long lo, long hi)
{
    long i = lo;
    for (; i + 16 <= hi; i += 16) sigm16(a + i);
    if (i < hi) {
        float x[16] = {0};
        memcpy(x, a + i, (size_t)(hi - i) * sizeof(float));
        sigm16(x);
        memcpy(a + i, x, (size_t)(hi - i) * sizeof(float));
    }
}

static void ew_range(void *arg, long lo, long hi)
{
    const ew_task *k = arg;
    float *a = k->a;
    const float *b = k->b;
    if (k->op == 0)
        sigm_range(a, lo, hi);
    else if (k->op == 1)
        for (long i = lo; i < hi; i++) a[i] = k->s * a[i] - k->t * b[i];
    else
        for (long i = lo; i < hi; i++) a[i] += b[i];
}

static void ew(int op, float *a, float *b, float s, float t, size_t n)
{
    ew_task k = {a, b, s, t, op};
    ds_parallel_for((long)n, 1 << 13, ew_range, &k);
}

/* log(1 + e^x) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

ds_rbm *ds_rbm_new(const ds_rbm_cfg *cfg, int max_batch)
{
    if (!cfg || cfg->visible < 1 || cfg->hidden < 1 || max_batch < 1) {
        ds_fail("ds_rbm_new: visible, hidden and batch must be >= 1");
        return NULL;
    }
    if (cfg->visible_type != DS_RBM_BERNOULLI && cfg->visible_type != DS_RBM_GAUSSIAN) {
        ds_fail("ds_rbm_new: unknown visible unit type %d", (int)cfg->visible_type);
        return NULL;
    }
    if (cfg->k < 0 || !(cfg->lr > 0) || cfg->momentum < 0 || cfg->momentum >= 1 || cfg->weight_decay < 0) {
        ds_fail("ds_rbm_new: need k >= 0, lr > 0, 0 <= momentum < 1, weight_decay >= 0");
        return NULL;
    }
    ds_rbm *r = calloc(1, sizeof *r);
    if (!r) {
        ds_fail("out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (r->cfg.k == 0) r->cfg.k = 1;
    r->max_batch = max_batch;
    size_t V = (size_t)cfg->visible, H = (size_t)cfg->hidden, n = (size_t)max_batch;
    /* a multiple of 32 (every strip of Wᵀ inside a row), and an odd number
     * of 64-byte lines: rows 2 KB apart would share 4 of L1's 64 sets */
    r->ldt = (cfg->hidden + 31) / 32 * 32;
    if (r->ldt / 16 % 2 == 0) r->ldt += 16;
    /* every array 64-byte aligned (its size rounded up to 16 floats): a
     * 16-float load of a row of W or Wᵀ then never splits a cache line */
#define UP(x) (((x) + 15) / 16 * 16)
    size_t total = 2 * (UP(V * H) + UP(V) + UP(H)) + UP(H) + 2 * UP(n * H) + UP(2 * n * V) + 2 * UP(2 * n * H) +
                   UP(V * (size_t)r->ldt);
    float *m = aligned_alloc(64, total * sizeof(float));
    if (m) memset(m, 0, total * sizeof(float));
    if (!m) {
        free(r);
        ds_fail("out of memory for an RBM of %zu x %zu", V, H);
        return NULL;
    }
    r->w = m, m += UP(V * H);
    r->b = m, m += UP(V);
    r->c = m, m += UP(H);
    r->vw = m, m += UP(V * H);
    r->vb = m, m += UP(V);
    r->vc = m, m += UP(H);
    r->qbar = m, m += UP(H);
    r->h = m, m += UP(n * H);
    r->chain = m, m += UP(n * H);
    r->pv = m, m += UP(2 * n * V);
    r->ph = m, m += UP(2 * n * H);
    r->pht = m, m += UP(2 * n * H);
    r->wt = m, m += UP(V * (size_t)r->ldt);
#undef UP
    (void)m;
    r->q0 = r->ph, r->q = r->ph + n * H, r->v = r->pv + n * V;
    r->acc = malloc(sizeof(double) * (2 * V + 2 * H));
    r->acc2 = r->acc + V + 2 * H;
    size_t kmax = V > H ? V : H;
    r->bidx = malloc(sizeof(int) * (n * kmax + 16));
    r->bstart = malloc(sizeof(int) * (2 * n * ((kmax + 255) / 256) + 1));
    r->wbad = malloc(V);
    if (!r->acc || !r->bidx || !r->bstart || !r->wbad) {
        free(r->acc), free(r->bidx), free(r->bstart), free(r->wbad);
        free(r->w);
        free(r);
        ds_fail("out of memory for an RBM of %zu x %zu", V, H);
        return NULL;
    }
    ds_rng_seed(&r->rng, cfg->seed);
    /* W ~ N(0, 0.01²), biases 0 (Hinton §8); q̄ starts at the target */
    for (size_t i = 0; i < V * H; i++) r->w[i] = 0.01f * ds_rng_normal(&r->rng);
    for (size_t j = 0; j < H; j++) r->qbar[j] = cfg->sparsity_target;
    return r;
}

void ds_rbm_free(ds_rbm *r)
{
    if (!r) return;
    free(r->w); /* one block */
    free(r->acc);
    free(r->bidx);
    free(r->bstart);
    free(r->wbad);
    free(r);
}

const ds_rbm_cfg *ds_rbm_config(const ds_rbm *r) { return &r->cfg; }
float *ds_rbm_weights(ds_rbm *r) { return r->w; }
float *ds_rbm_visible_bias(ds_rbm *r) { return r->b; }
float *ds_rbm_hidden_bias(ds_rbm *r) { return r->c; }
ds_rng *ds_rbm_rng(ds_rbm *r) { return &r->rng; }

static int check_batch(const ds_rbm *r, int n, const char *what)
{
    if (n < 1 || n > r->max_batch) return ds_fail("%s: batch %d outside 1..%d", what, n, r->max_batch);
    return 0;
}

/* The uniform of element i of a sampled layer whose key is key: output
 * i + 1 of splitmix64 started at key, top 24 bits. Each element's draw
 * depends on its index alone, so a layer is sampled in any order, in
 * parallel, inside the GEMM's epilogue, with the same result. */
static inline float unit_uniform(uint64_t key, uint64_t i)
{
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (float)((z ^ (z >> 31)) >> 40) * (1.0f / 16777216.0f);
}

/* The GEMM's epilogue, on each finished tile while it is in cache: σ, and
 * for CD-1 the sums the update needs from the tile. Every column belongs to
 * one thread and its row tiles come in order, so each column's sum runs
 * over the rows in order, whatever the thread count. */
typedef struct {
    bool sig;
    const float *x; /* when set: sums against x (v0 or q0, same layout as C) */
    double *s1, *s2; /* visible: Σ v0 − v, Σ (v0 − v)²; hidden: Σ q0 − q, Σ q0 (then q ← −q) */
    bool hidden;
    float *h;     /* when set: h = u < σ(·) with the uniforms of key (sample's) */
    uint64_t key;
    float *t;     /* when set: t[j·ldt + i] = ±C[i, j] (sign: −1 for −q) */
    long ldt;
    float sign;
} epi_ctx;

static void epilogue(void *ctx, float *c, long ldc, int rows, int cols, int i0, int j0)
{
    const epi_ctx *e = ctx;
    if (e->sig)
        for (int i = 0; i < rows; i++) sigm_range(c + (size_t)i * ldc, 0, cols);
    if (e->h)
        for (int i = 0; i < rows; i++) {
            size_t at = (size_t)(i0 + i) * ldc + j0;
            const float *ci = c + (size_t)i * ldc;
            for (int j = 0; j < cols; j++) e->h[at + j] = unit_uniform(e->key, at + j) < ci[j] ? 1.0f : 0.0f;
        }
    if (e->t)
        for (int i = 0; i < rows; i++) {
            const float *ci = c + (size_t)i * ldc;
            float *t = e->t + (size_t)j0 * e->ldt + i0 + i;
            for (int j = 0; j < cols; j++) t[(size_t)j * e->ldt] = e->sign * ci[j];
        }
    if (!e->x) return;
    double *s1 = e->s1 + j0, *s2 = e->s2 + j0;
    for (int i = 0; i < rows; i++) {
        const float *x = e->x + (size_t)(i0 + i) * ldc + j0;
        float *ci = c + (size_t)i * ldc;
        if (e->hidden)
            for (int j = 0; j < cols; j++) {
                s1[j] += (double)x[j] - ci[j];
                s2[j] += x[j];
            }
        else
            for (int j = 0; j < cols; j++) {
                s1[j] += (double)x[j] - ci[j];
                s2[j] += (double)(x[j] - ci[j]) * (x[j] - ci[j]);
            }
    }
}

/* the gradient's epilogue: flags (at the tile's column panel, one
 * thread's) a tile of the new W, or of the velocity and the W it is added
 * to, holding a value not finite. The products with a 0/1 operand skip its
 * zeros, so an inf in W no longer turns into the NaN (0·inf) that the
 * hidden biases' check below caught; this catches it in W itself. */
typedef struct {
    unsigned char *bad;
    const float *base, *also; /* when also is set: also + (c − base), the same tile of W */
} wcheck;

static uint32_t nonfinite(const float *c, long ldc, int rows, int cols)
{
    uint32_t bad = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            uint32_t u;
            memcpy(&u, c + (size_t)i * ldc + j, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
    return bad;
}

static void finite_tile(void *ctx, float *c, long ldc, int rows, int cols, int i0, int j0)
{
    (void)i0;
    const wcheck *w = ctx;
    uint32_t bad = nonfinite(c, ldc, rows, cols);
    if (w->also) bad |= nonfinite(w->also + (c - w->base), ldc, rows, cols);
    w->bad[j0] |= (unsigned char)bad;
}

/* q [n × H] = σ(v Wᵀ + c), by the packed GEMM (any W, no copy of it) */
static void hidden_probs(const ds_rbm *r, const float *v, int n, float *q)
{
    int V = r->cfg.visible, H = r->cfg.hidden;
    for (int i = 0; i < n; i++) memcpy(q + (size_t)i * H, r->c, (size_t)H * sizeof *q);
    ds_gemm(false, true, n, H, V, 1, v, V, r->w, V, 1, q, H);
    ew(0, q, NULL, 0, 0, (size_t)n * H);
}

/* c [n × cols] = a [n × k] b + bias (then the epilogue), by ds_gemm_binary
 * when a is exactly 0/1 (checked value by value as its index lists are
 * built) and at most half ones, else ds_gemm_direct: the same bits either
 * way (b finite), so the choice changes no result. The binarised pixels
 * (31 % ones) and h (29-31 % after the first batches) cost 0.6 of the
 * dense product's time; the break-even is near 60 % ones. */
static void product(const ds_rbm *r, bool lists, const float *a, int n, int k, const float *b, int ldb, int cols,
                    float *c, const float *bias, ds_tile_fn epi, void *ctx)
{
    int ones = lists ? ds_binary_index(n, k, a, k, r->bidx, r->bstart) : -1; /* lists: scratch of n ≤ max_batch */
    if (ones >= 0 && ones <= (long)n * k / 2)
        ds_gemm_binary(n, cols, k, 1, r->bidx, r->bstart, b, ldb, 0, c, cols, bias, epi, ctx);
    else
        ds_gemm_direct(false, n, cols, k, 1, a, k, b, ldb, 0, c, cols, bias, epi, ctx);
}

/* the same from the update's copy of Wᵀ (current inside ds_rbm_update only):
 * the same sums in the same order, so the same bits */
static void hidden_probs_t(const ds_rbm *r, const float *v, int n, float *q, epi_ctx *e)
{
    int V = r->cfg.visible, H = r->cfg.hidden;
    epi_ctx plain = {.sig = true};
    product(r, true, v, n, V, r->wt, r->ldt, H, q, r->c, epilogue, e ? e : &plain);
}

/* v [n × V] = E[v | h]: σ(h W + b), or h W + b for Gaussian units; W is B
 * as it lies, nothing copied */
static void visible_mean_e(const ds_rbm *r, bool lists, const float *h, int n, float *v, epi_ctx *e)
{
    int V = r->cfg.visible, H = r->cfg.hidden;
    epi_ctx plain = {0};
    if (!e) e = &plain;
    e->sig = r->cfg.visible_type == DS_RBM_BERNOULLI;
    product(r, lists, h, n, H, r->w, V, V, v, r->b, e->sig || e->x ? epilogue : NULL, e);
}

static void visible_mean(const ds_rbm *r, const float *h, int n, float *v) { visible_mean_e(r, false, h, n, v, NULL); }

/* out = u < p element by element, the layer's key drawn from the stream */
static void sample(ds_rng *g, const float *p, size_t count, float *out)
{
    uint64_t key = ds_rng_u64(g);
    for (size_t i = 0; i < count; i++) out[i] = unit_uniform(key, i) < p[i] ? 1.0f : 0.0f;
}

/* these two use no scratch (dense products): any number of rows */
int ds_rbm_hidden_probs(ds_rbm *r, const float *v, int n, float *q)
{
    if (n < 1) return ds_fail("ds_rbm_hidden_probs: no rows");
    hidden_probs(r, v, n, q);
    return 0;
}

int ds_rbm_visible_mean(ds_rbm *r, const float *h, int n, float *v)
{
    if (n < 1) return ds_fail("ds_rbm_visible_mean: no rows");
    visible_mean(r, h, n, v);
    return 0;
}

/* d = x with a check: the index of the first value that is not finite, or −1
 * (the scan is branch-free so that it vectorises; the rare bad batch is
 * searched again) */
static long copy_finite(float *d, const float *x, size_t count)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
        d[i] = x[i];
    }
    if (!bad) return -1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i])) return (long)i;
    return -1;
}

/* Σ (v0 − v)² in double, and db[i] = Σ_s v0[s, i] − v[s, i] (each sum over
 * the rows in order, row by row so that it runs along memory) */
static double visible_sums(const float *v0, const float *v, int n, int V, double *db)
{
    double e[8] = {0};
    for (int i = 0; i < V; i++) db[i] = 0;
    for (int s = 0; s < n; s++) {
        const float *a = v0 + (size_t)s * V, *b = v + (size_t)s * V;
        for (int i = 0; i < V; i++) db[i] += (double)a[i] - b[i];
        int i = 0;
        for (; i + 8 <= V; i += 8)
            for (int l = 0; l < 8; l++) e[l] += (double)(a[i + l] - b[i + l]) * (a[i + l] - b[i + l]);
        for (; i < V; i++) e[0] += (double)(a[i] - b[i]) * (a[i] - b[i]);
    }
    return ((e[0] + e[1]) + (e[2] + e[3])) + ((e[4] + e[5]) + (e[6] + e[7]));
}

int ds_rbm_update(ds_rbm *r, const float *v0, int n, double *recon_err)
{
    if (check_batch(r, n, "ds_rbm_update")) return -1;
    const ds_rbm_cfg *k = &r->cfg;
    int V = k->visible, H = k->hidden;
    size_t nv = (size_t)n * V, nh = (size_t)n * H;
    /* the gradient's one product reads [v0; v] and [q0; −q]ᵀ: v0 goes first
     * (checked as it is copied), v is made in place, q0ᵀ and −qᵀ are
     * written by the epilogues of the products that make q0 and q */
    float *q0 = r->ph, *q = r->ph + nh, *v = r->pv + nv;
    long bad = copy_finite(r->pv, v0, nv);
    if (bad >= 0) return ds_fail("ds_rbm_update: input value %ld of the batch is not finite", bad);
    v0 = r->pv;
    /* Wᵀ once: two of the four products read it, and W changes only at the end */
    ds_transpose(H, V, r->w, V, r->wt, r->ldt);
    /* positive phase, h ~ q0 sampled tile by tile as q0 is made */
    epi_ctx e0 = {.sig = true, .h = r->h, .key = ds_rng_u64(&r->rng), .t = r->pht, .ldt = 2 * n, .sign = 1};
    hidden_probs_t(r, v0, n, q0, &e0);
    const float *h = r->h;
    if (k->persistent) {
        if (r->chain_n < n) { /* start the chains from the data */
            memcpy(r->chain + (size_t)r->chain_n * H, r->h + (size_t)r->chain_n * H,
                   (size_t)(n - r->chain_n) * H * sizeof(float));
            r->chain_n = n;
        }
        h = r->chain;
    }
    /* the monitor: ‖v0 − E[v | h0]‖² per sample, h0 ~ p(h | v0) (for CD-1
     * the negative phase's own reconstruction, computed there) */
    double err = 0, *db = r->acc, *dc = r->acc + V, *act = r->acc + V + H;
    bool own = k->k == 1 && !k->persistent;
    if (!own) {
        visible_mean_e(r, true, r->h, n, v, NULL); /* v is scratch until the negative phase */
        err = visible_sums(v0, v, n, V, db);
    }
    /* negative phase: k Gibbs steps from h; for CD-1 the bias gradients,
     * the error and −q come from the products' epilogues */
    for (int j = 0; j < V; j++) db[j] = r->acc2[j] = 0;
    for (int j = 0; j < H; j++) dc[j] = act[j] = 0;
    epi_ctx ev = {.x = v0, .s1 = db, .s2 = r->acc2};
    epi_ctx eh = {.sig = true, .x = q0, .s1 = dc, .s2 = act, .hidden = true, .t = r->pht + n, .ldt = 2 * n, .sign = -1};
    for (int s = 0; s < k->k; s++) {
        visible_mean_e(r, true, h, n, v, own ? &ev : NULL);
        hidden_probs_t(r, v, n, q, own ? &eh : NULL);
        if (s + 1 < k->k || k->persistent) {
            sample(&r->rng, q, nh, k->persistent ? r->chain : r->h);
            h = k->persistent ? r->chain : r->h;
        }
    }
    if (own) {
        for (int j = 0; j < V; j++) err += r->acc2[j];
    } else {
        visible_sums(v0, v, n, V, db);
        /* dc = Σ_s q0 − q, act = Σ_s q0; −qᵀ for the product */
        for (int s = 0; s < n; s++) {
            const float *a = q0 + (size_t)s * H;
            float *b = q + (size_t)s * H;
            for (int j = 0; j < H; j++) {
                dc[j] += (double)a[j] - b[j];
                act[j] += a[j];
                b[j] = -b[j];
            }
        }
        ds_transpose(n, H, q, H, r->pht + n, 2 * n);
    }
    /* gradient: [q0; −q]ᵀ [v0; v] / n in one product of depth 2n, its A
     * from the transposed copy: 10 rows read along k, not 10 floats a step
     * at a stride of H (the same sums) */
    float inv = 1.0f / (float)n, lr = k->lr, m = k->momentum, wd = k->weight_decay;
    memset(r->wbad, 0, (size_t)V);
    wcheck wc = {r->wbad, r->w, NULL}, vc = {r->wbad, r->vw, r->w};
    if (m == 0 && wd == 0) /* θ += lr·Δ: straight into W (the same bits as through vw = 0) */
        ds_gemm_direct(false, H, V, 2 * n, lr * inv, r->pht, 2 * n, r->pv, V, 1, r->w, V, NULL, finite_tile, &wc);
    else { /* vw ← m·vw + lr·(Δ/n − λW): scale vw first, then add the product */
        ew(1, r->vw, r->w, m, lr * wd, (size_t)V * H);
        ds_gemm_direct(false, H, V, 2 * n, lr * inv, r->pht, 2 * n, r->pv, V, 1, r->vw, V, NULL, finite_tile, &vc);
        ew(2, r->w, r->vw, 0, 0, (size_t)V * H);
    }
    for (int i = 0; i < V; i++) {
        r->vb[i] = m * r->vb[i] + lr * (float)(db[i] * inv);
        r->b[i] += r->vb[i];
    }
    for (int j = 0; j < H; j++) {
        float g = (float)(dc[j] * inv);
        if (k->sparsity_cost > 0) {
            r->qbar[j] = 0.9f * r->qbar[j] + 0.1f * (float)(act[j] * inv);
            g += k->sparsity_cost * (k->sparsity_target - r->qbar[j]);
        }
        r->vc[j] = m * r->vc[j] + lr * g;
        r->c[j] += r->vc[j];
    }
    /* a diverged model shows in the hidden biases' inputs first (Σ over W rows) */
    bool diverged = false;
    for (int j = 0; j < H; j++) diverged |= !isfinite(r->c[j]);
    for (int j = 0; j < V; j++) diverged |= r->wbad[j];
    if (diverged) return ds_fail("ds_rbm_update: the model diverged (not finite); lower the learning rate");
    if (!isfinite(err)) return ds_fail("ds_rbm_update: the reconstruction is not finite; lower the learning rate");
    if (recon_err) *recon_err = err / (double)n;
    return 0;
}

int ds_rbm_epoch(ds_rbm *r, const float *x, int n, double *recon_err)
{
    int V = r->cfg.visible, bs = r->max_batch, nb = n / bs;
    if (nb < 1) return ds_fail("ds_rbm_epoch: %d rows, fewer than one batch of %d", n, bs);
    int *order = malloc(sizeof(int) * (size_t)n);
    float *batch = malloc(sizeof(float) * (size_t)bs * V);
    int rc = -1;
    double err = 0, e;
    if (!order || !batch) {
        ds_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    ds_rng_shuffle(&r->rng, order, n);
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < bs; i++)
            memcpy(batch + (size_t)i * V, x + (size_t)order[b * bs + i] * V, sizeof(float) * (size_t)V);
        if (ds_rbm_update(r, batch, bs, &e) != 0) goto done;
        err += e;
    }
    if (recon_err) *recon_err = err / nb;
    rc = 0;
done:
    free(order);
    free(batch);
    return rc;
}

double ds_rbm_free_energy(ds_rbm *r, const float *v, int n)
{
    if (check_batch(r, n, "ds_rbm_free_energy")) return NAN;
    int V = r->cfg.visible, H = r->cfg.hidden;
    /* pre-activations c + W v, then F(v) = vis(v) − Σ softplus(·) */
    for (int i = 0; i < n; i++) memcpy(r->q + (size_t)i * H, r->c, (size_t)H * sizeof(float));
    ds_gemm(false, true, n, H, V, 1, v, V, r->w, V, 1, r->q, H);
    double total = 0;
    for (int s = 0; s < n; s++) {
        const float *x = v + (size_t)s * V, *a = r->q + (size_t)s * H;
        double f = 0;
        for (int i = 0; i < V; i++)
            f += r->cfg.visible_type == DS_RBM_GAUSSIAN ? 0.5 * ((double)x[i] - r->b[i]) * ((double)x[i] - r->b[i])
                                                        : -(double)r->b[i] * x[i];
        for (int j = 0; j < H; j++) f -= softplus(a[j]);
        total += f;
    }
    return total / n;
}

/* log Z by enumerating the hidden configurations (Bernoulli or Gaussian
 * visible) or the visible ones (Bernoulli), whichever is smaller. */
static int log_partition(const ds_rbm *r, double *out)
{
    int V = r->cfg.visible, H = r->cfg.hidden;
    bool gauss = r->cfg.visible_type == DS_RBM_GAUSSIAN;
    int over_h = gauss || H <= V;
    int bits = over_h ? H : V;
    if (bits > 24) return ds_fail("exact log-likelihood: 2^%d configurations are too many (at most 2^24)", bits);
    int other = over_h ? V : H;
    double *a = malloc(sizeof(double) * (size_t)other), lz = -INFINITY;
    if (!a) return ds_fail("out of memory");
    for (long cfgi = 0; cfgi < (1L << bits); cfgi++) {
        /* a = the other layer's pre-activation given this configuration */
        double e = 0;
        for (int o = 0; o < other; o++) a[o] = over_h ? r->b[o] : r->c[o];
        for (int t = 0; t < bits; t++) {
            if (!(cfgi >> t & 1)) continue;
            e += over_h ? r->c[t] : r->b[t];
            for (int o = 0; o < other; o++) a[o] += over_h ? r->w[(size_t)t * V + o] : r->w[(size_t)o * V + t];
        }
        /* Σ over the other layer, in closed form */
        if (gauss) { /* ∫ exp(−‖v − b‖²/2 + v·Wᵀh) dv = (2π)^{V/2} exp(‖a‖²/2 − ‖b‖²/2), a = b + Wᵀh */
            for (int o = 0; o < other; o++) e += 0.5 * (a[o] * a[o] - (double)r->b[o] * r->b[o]);
        } else
            for (int o = 0; o < other; o++) e += softplus(a[o]);
        lz = lz > e ? lz + log1p(exp(e - lz)) : e + (lz == -INFINITY ? 0 : log1p(exp(lz - e)));
    }
    free(a);
    if (gauss) lz += 0.5 * V * log(2 * M_PI);
    *out = lz;
    return 0;
}

int ds_rbm_exact_loglik(ds_rbm *r, const float *v, int n, double *ll)
{
    double lz = 0;
    if (log_partition(r, &lz)) return -1;
    double f = ds_rbm_free_energy(r, v, n);
    if (isnan(f)) return -1;
    *ll = -f - lz; /* log p(v) = −F(v) − log Z, averaged over the batch */
    return 0;
}

int ds_rbm_gibbs(ds_rbm *r, float *v, int n, int steps)
{
    if (check_batch(r, n, "ds_rbm_gibbs")) return -1;
    int V = r->cfg.visible, H = r->cfg.hidden;
    for (int s = 0; s < steps; s++) {
        hidden_probs(r, v, n, r->q);
        sample(&r->rng, r->q, (size_t)n * H, r->h);
        visible_mean(r, r->h, n, v);
        if (s + 1 < steps) { /* sample the visible units too, but leave the last as the mean (a clean picture) */
            if (r->cfg.visible_type == DS_RBM_BERNOULLI) sample(&r->rng, v, (size_t)n * V, v);
            else
                for (size_t i = 0; i < (size_t)n * V; i++) v[i] += ds_rng_normal(&r->rng);
        }
    }
    return 0;
}
