/* gemm.c — single-precision matrix product, row-major:
 *   C [m×n] = alpha·op(A)·op(B) + beta·C
 *
 * GotoBLAS-style blocking: B is packed into NR-wide column panels (kc×NR,
 * one k after another), A into MR-tall row panels, and a register-blocked
 * micro-kernel accumulates an MR×NR tile in vector registers. The kernel is
 * written with GCC vector extensions, so -march=native picks AVX-512, AVX2
 * or SSE without intrinsics. We do not call OpenBLAS here: Debian's build
 * falls back to its Prescott (SSE3) kernel on current Xeons (27 vs 95+
 * GFLOPS measured on the CI machine), see docs/design.md.
 */
#include "internal.h"
#include "transpose8.h"

#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif

typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));

#if VW == 16
#define MR 8 /* 16 accumulators of 32 registers */
#else
#define MR 6
#endif
#define NR (2 * VW)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 64)

/* acc[MR×NR] = Σ_k a[k·MR + i]·b[k·NR + j]; then C = alpha·acc + beta·C
 * (+ bias[i]) on the valid mr×nr corner (beta = 0 never reads C). */
static void kernel(int kc, const float *restrict a, const float *restrict b, float *c, long ldc,
                   float alpha, float beta, const float *bias, int mr, int nr)
{
    vf acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (vf){0};
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        vf b0, b1;
        memcpy(&b0, b + (size_t)k * NR, sizeof b0);
        memcpy(&b1, b + (size_t)k * NR + VW, sizeof b1);
        const float *ak = a + (size_t)k * MR;
        for (int i = 0; i < MR; i++) { /* scalar·vector broadcasts; contracts to FMA */
            acc[i][0] += ak[i] * b0;
            acc[i][1] += ak[i] * b1;
        }
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc, bi = bias ? bias[i] : 0;
            for (int h = 0; h < 2; h++) {
                vf old = {0}, r = acc[i][h] * alpha + bi;
                if (beta != 0) {
                    memcpy(&old, ci + h * VW, sizeof old);
                    r += old * beta;
                }
                memcpy(ci + h * VW, &r, sizeof r);
            }
        }
        return;
    }
    float tile[MR][NR];
    memcpy(tile, acc, sizeof tile);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = alpha * tile[i][j] + (bias ? bias[i] : 0) + (beta != 0 ? beta * *cij : 0);
        }
}

/* One product and the block being worked on; the parallel phases below
 * each take a range of panels or tiles of it. */
typedef struct {
    const ds_mat *a, *b;
    const ds_out *c;
    float *pa, *pb;
    int m, k, jc, pc, ic, nc, kc, mc;
} gemm_job;

void ds_mat_dense(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld)
{
    if (m->sj == 1) { /* rows run along memory: a plain copy (inlined: a call per row cost more) */
        for (int k = 0; k < kc; k++) {
            float *dk = d + (size_t)k * ld;
            const float *sk = m->p + (k0 + k) * m->sk + j0;
            for (int j = 0; j < w; j++) dk[j] = sk[j];
            for (int j = w; j < ld; j++) dk[j] = 0;
        }
        return;
    }
    if (w < ld) memset(d, 0, (size_t)kc * ld * sizeof *d);
    int j = 0;
    if (m->sk == 1 && ld % 8 == 0) /* columns run along memory: 8×8 blocks transposed in registers */
        for (; j + 8 <= w; j += 8) {
            const float *src = m->p + (j0 + j) * m->sj + k0;
            int k = 0;
            for (; k + 8 <= kc; k += 8) ds_transpose8(src + k, m->sj, d + (size_t)k * ld + j, ld);
            for (; k < kc; k++)
                for (int jj = 0; jj < 8; jj++) d[(size_t)k * ld + j + jj] = src[jj * m->sj + k];
        }
    for (; j < w; j++) {
        const float *src = m->p + (j0 + j) * m->sj + k0 * m->sk;
        for (int k = 0; k < kc; k++) d[(size_t)k * ld + j] = src[k * m->sk];
    }
}

/* B block [kc × nc] at (pc, jc) into NR-wide panels [lo, hi). */
static void pack_b(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    for (long p = lo; p < hi; p++) {
        int j0 = q->jc + (int)p * NR, w = q->nc - (int)p * NR < NR ? q->nc - (int)p * NR : NR;
        q->b->pack(q->b, q->pc, q->kc, j0, w, q->pb + (size_t)p * q->kc * NR, NR);
    }
}

/* A block [mc × kc] at (ic, pc) into MR-tall panels [lo, hi). */
static void pack_a(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    for (long p = lo; p < hi; p++) {
        int i0 = q->ic + (int)p * MR, h = q->mc - (int)p * MR < MR ? q->mc - (int)p * MR : MR;
        q->a->pack(q->a, q->pc, q->kc, i0, h, q->pa + (size_t)p * q->kc * MR, MR);
    }
}

/* Tiles [lo, hi) of the block, t = jp·mpan + ip: one thread owns a tile.
 * A tile that straddles two output segments is computed whole and then
 * written piece by piece. */
static void tiles(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    const ds_out *o = q->c;
    int mpan = (q->mc + MR - 1) / MR;
    bool first = q->pc == 0;
    float bet = first ? o->beta : 1.0f;
    for (long t = lo; t < hi; t++) {
        int j = (int)(t / mpan) * NR, i = (int)(t % mpan) * MR;
        int mr = q->mc - i < MR ? q->mc - i : MR, nr = q->nc - j < NR ? q->nc - j : NR;
        int row = q->ic + i, col = q->jc + j;
        const float *pa = q->pa + (size_t)(i / MR) * q->kc * MR, *pb = q->pb + (size_t)(j / NR) * q->kc * NR;
        const float *bias = first && o->bias ? o->bias + row : NULL;
        long s = col / o->seg, in = col % o->seg;
        float *c = o->c + s * o->seg_stride + (long)row * o->ldc + in;
        if (in + nr <= o->seg) {
            kernel(q->kc, pa, pb, c, o->ldc, o->alpha, bet, bias, mr, nr);
            continue;
        }
        float tile[MR * NR];
        kernel(q->kc, pa, pb, tile, NR, 1, 0, NULL, MR, NR);
        for (int jj = 0; jj < nr;) {
            int len = o->seg - in < nr - jj ? (int)(o->seg - in) : nr - jj;
            for (int ii = 0; ii < mr; ii++) {
                float *ci = c + (long)ii * o->ldc, b = bias ? bias[ii] : 0;
                const float *ti = tile + ii * NR + jj;
                for (int e = 0; e < len; e++) ci[e] = o->alpha * ti[e] + b + (bet != 0 ? bet * ci[e] : 0);
            }
            jj += len, s++, in = 0;
            c = o->c + s * o->seg_stride + (long)row * o->ldc;
        }
    }
}

/* Packing buffers, allocated once per calling thread (the first call is the
 * only one that allocates). */
static _Thread_local float *pa_buf, *pb_buf;

static void thread_buffers(void)
{
    if (!pa_buf) {
        pa_buf = aligned_alloc(64, (size_t)MC * KC * sizeof(float));
        pb_buf = aligned_alloc(64, (size_t)KC * NC * sizeof(float));
        if (!pa_buf || !pb_buf) abort(); /* a few hundred KiB, once per thread: nothing to recover */
    }
}

/* The pool's threads make their buffers as they start, not inside a step;
 * registered at load time, before any pool exists (a thread the pool did
 * not start makes them on its first product, in gemm_block). */
static void thread_start(int thread)
{
    (void)thread;
    thread_buffers();
}

__attribute__((constructor)) static void register_thread_start(void) { ds_pool_set_thread_start(thread_start); }

/* C[i0:i1, j0:j1] on the calling thread: the whole GotoBLAS loop nest. */
static void gemm_block(const ds_mat *a, const ds_mat *b, const ds_out *c, int k, int i0, int i1, int j0, int j1)
{
    thread_buffers();
    gemm_job q = {.a = a, .b = b, .c = c, .pa = pa_buf, .pb = pb_buf, .k = k};
    for (q.jc = j0; q.jc < j1; q.jc += NC) {
        q.nc = j1 - q.jc < NC ? j1 - q.jc : NC;
        for (q.pc = 0; q.pc < k; q.pc += KC) {
            q.kc = k - q.pc < KC ? k - q.pc : KC;
            int npan = (q.nc + NR - 1) / NR;
            pack_b(&q, 0, npan);
            for (q.ic = i0; q.ic < i1; q.ic += MC) {
                q.mc = i1 - q.ic < MC ? i1 - q.ic : MC;
                int mpan = (q.mc + MR - 1) / MR;
                pack_a(&q, 0, mpan);
                tiles(&q, 0, (long)npan * mpan);
            }
        }
    }
}

/* The threads split C by whole column panels (or, when C is narrow, whole
 * row panels); each runs the loop nest on its part with its own packing
 * buffers: one fork-join per product, and the tile grid, hence every sum's
 * order, is the same for any thread count. */
typedef struct {
    const ds_mat *a, *b;
    const ds_out *c;
    int m, n, k, by_rows;
} gemm_split;

static void gemm_part(void *arg, long lo, long hi)
{
    const gemm_split *g = arg;
    if (g->by_rows) {
        int i0 = (int)lo * MR, i1 = (int)hi * MR < g->m ? (int)hi * MR : g->m;
        gemm_block(g->a, g->b, g->c, g->k, i0, i1, 0, g->n);
    } else {
        int j0 = (int)lo * NR, j1 = (int)hi * NR < g->n ? (int)hi * NR : g->n;
        gemm_block(g->a, g->b, g->c, g->k, 0, g->m, j0, j1);
    }
}

void ds_gemm_ex(int m, int n, int k, const ds_mat *a, const ds_mat *b, const ds_out *c)
{
    if (m <= 0 || n <= 0 || k <= 0) return;
    long npan = (n + NR - 1) / NR, mpan = (m + MR - 1) / MR, nt = ds_num_threads();
    gemm_split g = {a, b, c, m, n, k, npan < 2 * nt && mpan > npan};
    /* small products run on the calling thread alone */
    long min_chunk = (double)m * n * k <= 262144.0 ? 1L << 30 : 1; /* (a conv at batch 1: split pays) */
    ds_parallel_for_grains(g.by_rows ? mpan : npan, min_chunk, 2, gemm_part, &g);
}

void ds_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
        return;
    }
    if (m <= DS_GEMM_THIN_M && !tb) { /* a few rows of output: registers hold them, nothing packed */
        ds_gemm_thin(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* element (k, i) of A and (k, j) of B */
    ds_mat ma = {ds_mat_dense, a, ta ? lda : 1, ta ? 1 : lda};
    ds_mat mb = {ds_mat_dense, b, tb ? 1 : ldb, tb ? ldb : 1};
    ds_out o = {c, ldc, n, 0, alpha, beta, NULL};
    ds_gemm_ex(m, n, k, &ma, &mb, &o);
}

/* ---- the pieces of a product driven from outside (shifted convolutions) ---- */

int ds_gemm_mr(void) { return MR; }
int ds_gemm_nr(void) { return NR; }

typedef struct {
    int m, k;
    const float *a;
    long lda;
    float *d;
} panels_job;

static void panels_range(void *arg, long lo, long hi)
{
    const panels_job *q = arg;
    ds_mat ma = {ds_mat_dense, q->a, 1, q->lda};
    for (long p = lo; p < hi; p++) {
        int h = q->m - (int)p * MR < MR ? q->m - (int)p * MR : MR;
        ds_mat_dense(&ma, 0, q->k, (int)p * MR, h, q->d + (size_t)p * q->k * MR, MR);
    }
}

void ds_pack_panels(int m, int k, const float *a, long lda, float *d)
{
    panels_job q = {m, k, a, lda, d};
    long panels = (m + MR - 1) / MR, min = 16384 / ((long)k * MR + 1) + 1;
    ds_parallel_for(panels, min, panels_range, &q);
}

void ds_tile_shifted(int kc, const float *restrict a, const float *x, const int32_t *off, const uint32_t *mask,
                     float *restrict t, bool add)
{
#if defined(__AVX512F__)
    /* written out: GCC keeps the vector-extension version's 16 accumulators
     * in registers only with extra moves (measured 2x slower here). Masked
     * lanes are not read at all. */
    __m512 z = _mm512_setzero_ps();
#define INIT(i) add ? _mm512_load_ps(t + 16 * (i)) : z
    __m512 c00 = INIT(0), c01 = INIT(1), c10 = INIT(2), c11 = INIT(3), c20 = INIT(4), c21 = INIT(5),
           c30 = INIT(6), c31 = INIT(7), c40 = INIT(8), c41 = INIT(9), c50 = INIT(10), c51 = INIT(11),
           c60 = INIT(12), c61 = INIT(13), c70 = INIT(14), c71 = INIT(15);
#undef INIT
    for (int k = 0; k < kc; k++) {
        const float *xk = x + off[k], *ak = a + (size_t)k * 8;
        __m512 b0 = _mm512_maskz_loadu_ps((__mmask16)mask[k], xk),
               b1 = _mm512_maskz_loadu_ps((__mmask16)(mask[k] >> 16), xk + 16), ai;
#define ROW(i)                                                                                                  \
    ai = _mm512_set1_ps(ak[i]);                                                                               \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                                               \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
    __m512 r[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    for (int i = 0; i < 16; i++) _mm512_store_ps(t + 16 * i, r[i]);
#else
    /* lanes are read (the caller keeps slack around x) and masked by AND */
    typedef int vi __attribute__((vector_size(VW * 4)));
    vf acc[MR][2];
    if (add) memcpy(acc, t, sizeof acc);
    else
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (vf){0};
    for (int k = 0; k < kc; k++) {
        vf b[2];
        memcpy(b, x + off[k], sizeof b);
        if (mask[k] != (uint32_t)-1 >> (32 - NR))
            for (int h = 0; h < 2; h++) {
                vi m;
                for (int l = 0; l < VW; l++) m[l] = -(int)((mask[k] >> (h * VW + l)) & 1);
                b[h] = (vf)((vi)b[h] & m);
            }
        const float *ak = a + (size_t)k * MR;
        for (int i = 0; i < MR; i++) {
            acc[i][0] += ak[i] * b[0];
            acc[i][1] += ak[i] * b[1];
        }
    }
    memcpy(t, acc, sizeof acc);
#endif
}

/* ---- C = A·Bᵀ by dot products, for products too thin to pack ----
 * Both operands run along k in memory (a linear layer's x [m×k] and W [n×k]),
 * so a tile of TR×TC dot products streams them as they are; each sum runs
 * over k in lanes and is reduced at the end: no packing, which is what a
 * batch of one sample (inference) or ten outputs (a classifier) needs. */
#define NT_TR 4
#define NT_TC 8
#define NT_ACC 24 /* TR·TC at most */
typedef struct {
    int m, n, k, lda, ldb, ldc, tr, tc; /* the tile: tr rows × tc columns */
    const float *a, *b, *bias;
    float *c;
    float beta;
} nt_job;

static float nt_dot_finish(float s, const nt_job *q, int i, int j)
{
    float *cij = q->c + (size_t)i * q->ldc + j;
    return s + (q->bias ? q->bias[j] : 0) + (q->beta != 0 ? q->beta * *cij : 0);
}

#if defined(__AVX512F__)
/* rows i0..i0+TR × columns j0..j0+tc (tc ≤ TC); TR and TC are constants
 * where it is inlined, so the TR·TC accumulators live in registers (with
 * TC + 1 more of the 32); a column past tc repeats column j0 */
static inline __attribute__((always_inline)) void nt_tile_t(const nt_job *q, int i0, int j0, int tc, int TR,
                                                            int TC)
{
    __m512 acc[NT_ACC]; /* acc[r·TC + s]: no bigger than it must be, or GCC keeps it in memory */
    const float *ar[NT_TR], *br[NT_TC];
    for (int r = 0; r < TR; r++) ar[r] = q->a + (size_t)(i0 + r) * q->lda;
    for (int s = 0; s < TC; s++) br[s] = q->b + (size_t)(j0 + (s < tc ? s : 0)) * q->ldb;
    for (int r = 0; r < TR; r++)
        for (int s = 0; s < TC; s++) acc[r * TC + s] = _mm512_setzero_ps();
    for (int p = 0; p < q->k; p += 16) {
        __mmask16 m = q->k - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (q->k - p)) - 1);
        __m512 bv[NT_TC];
        for (int s = 0; s < TC; s++) bv[s] = _mm512_maskz_loadu_ps(m, br[s] + p);
        for (int r = 0; r < TR; r++) {
            __m512 av = _mm512_maskz_loadu_ps(m, ar[r] + p);
            for (int s = 0; s < TC; s++) acc[r * TC + s] = _mm512_fmadd_ps(av, bv[s], acc[r * TC + s]);
        }
    }
    /* the lanes of each sum: halve to 4 (constant indices, no spill),
     * then four sums at once by two horizontal adds */
    for (int r = 0; r < TR; r++) {
        __m128 x[NT_TC + 3];
        float sum[NT_TC + 3] = {0};
        for (int s = 0; s < TC; s++) {
            __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc[r * TC + s]),
                                     _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r * TC + s]), 1)));
            x[s] = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        }
        for (int s = TC; s < TC + 3; s++) x[s] = _mm_setzero_ps();
        for (int s = 0; s < TC; s += 4)
            _mm_storeu_ps(sum + s, _mm_hadd_ps(_mm_hadd_ps(x[s], x[s + 1]), _mm_hadd_ps(x[s + 2], x[s + 3])));
        for (int s = 0; s < tc; s++) q->c[(size_t)(i0 + r) * q->ldc + j0 + s] = nt_dot_finish(sum[s], q, i0 + r, j0 + s);
    }
}

/* a full-height tile at once, the last rows (tr < 4) one by one */
static void nt_tile(const nt_job *q, int i0, int tr, int j0, int tc)
{
    if (q->tr == 1 || tr < 4) {
        for (int r = 0; r < tr; r++) {
            if (q->tc == 8) nt_tile_t(q, i0 + r, j0, tc, 1, 8);
            else if (q->tc == 6) nt_tile_t(q, i0 + r, j0, tc, 1, 6);
            else if (q->tc == 5) nt_tile_t(q, i0 + r, j0, tc, 1, 5);
            else nt_tile_t(q, i0 + r, j0, tc, 1, 4);
        }
        return;
    }
    if (q->tc == 6) nt_tile_t(q, i0, j0, tc, 4, 6);
    else if (q->tc == 5) nt_tile_t(q, i0, j0, tc, 4, 5);
    else nt_tile_t(q, i0, j0, tc, 4, 4);
}
#else
static void nt_tile(const nt_job *q, int i0, int tr, int j0, int tc)
{
    for (int r = 0; r < tr; r++)
        for (int s = 0; s < tc; s++) {
            const float *a = q->a + (size_t)(i0 + r) * q->lda, *b = q->b + (size_t)(j0 + s) * q->ldb;
            float lane[16] = {0};
            int p = 0;
            for (; p + 16 <= q->k; p += 16)
                for (int l = 0; l < 16; l++) lane[l] += a[p + l] * b[p + l];
            float sum = 0;
            for (int l = 0; l < 16; l++) sum += lane[l];
            for (; p < q->k; p++) sum += a[p] * b[p];
            q->c[(size_t)(i0 + r) * q->ldc + j0 + s] = nt_dot_finish(sum, q, i0 + r, j0 + s);
        }
}
#endif

/* tiles t = row block · column blocks + column block */
static void nt_range(void *arg, long lo, long hi)
{
    const nt_job *q = arg;
    int cb = (q->n + q->tc - 1) / q->tc;
    for (long t = lo; t < hi; t++) {
        int i0 = (int)(t / cb) * q->tr, j0 = (int)(t % cb) * q->tc;
        nt_tile(q, i0, q->m - i0 < q->tr ? q->m - i0 : q->tr, j0, q->n - j0 < q->tc ? q->n - j0 : q->tc);
    }
}

void ds_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc, const float *bias)
{
    if (m <= 0 || n <= 0) return;
    /* one row (batch 1): 1×8 tiles, the weights streamed once; else 4 rows
     * × the width of 4..6 that wastes the fewest columns (10 outputs: 2×5) */
    int tr = m == 1 ? 1 : 4, tc = 8;
    if (tr == 4) {
        tc = 6;
        for (int w = 5; w >= 4; w--)
            if ((n + w - 1) / w * w < (n + tc - 1) / tc * tc) tc = w;
    }
#if !defined(__AVX512F__)
    tr = 4, tc = 4; /* the portable tile takes any shape: keep the grid small */
#endif
    nt_job q = {m, n, k, lda, ldb, ldc, tr, tc, a, b, bias, c, beta};
    long tiles_n = (long)((m + tr - 1) / tr) * ((n + tc - 1) / tc);
    /* serial when small, unless B is big enough (256 KB) that its stream
     * from memory, not the arithmetic, is the cost: a batch-1 dense layer
     * reads its weights faster through two cores' caches */
    bool small = (double)m * n * k < DS_GEMM_SERIAL_MACS && (double)n * k < 65536;
    long min = small ? tiles_n : (long)(65536 / ((double)k * tr * tc + 1)) + 1;
    ds_parallel_for(tiles_n, min, nt_range, &q);
}
