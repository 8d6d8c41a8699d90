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

#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif

typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));

#define MR 6
#define NR (2 * VW)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 64)

/* acc[MR×NR] = Σ_k a[k·MR + i]·b[k·NR + j]; then C = alpha·acc + beta·C on
 * the valid mr×nr corner (beta = 0 never reads C). */
static void kernel(int kc, const float *restrict a, const float *restrict b, float *c, int ldc,
                   float alpha, float beta, int mr, int nr)
{
    vf acc[MR][2];
    memset(acc, 0, sizeof acc);
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
            float *ci = c + (size_t)i * ldc;
            for (int h = 0; h < 2; h++) {
                vf old = {0}, r = acc[i][h] * alpha;
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
            *cij = alpha * tile[i][j] + (beta != 0 ? beta * *cij : 0);
        }
}

/* One product and the block being worked on; the parallel phases below
 * each take a range of panels or tiles of it. */
typedef struct {
    bool ta, tb;
    int lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c, *pa, *pb;
    int jc, pc, ic, nc, kc, mc;
} gemm_job;

/* B block [kc × nc] from (pc, jc) into NR-wide panels [lo, hi), zero-padded.
 * Reads run along memory: rows of B, or (transposed) columns of Bᵀ. */
static void pack_b(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    int kc = q->kc;
    for (long p = lo; p < hi; p++) {
        float *d = q->pb + (size_t)p * kc * NR;
        int j0 = q->jc + (int)p * NR, w = q->nc - (int)p * NR < NR ? q->nc - (int)p * NR : NR;
        if (w < NR) memset(d, 0, (size_t)kc * NR * sizeof *d);
        if (!q->tb) {
            for (int k = 0; k < kc; k++)
                memcpy(d + (size_t)k * NR, q->b + (size_t)(q->pc + k) * q->ldb + j0, (size_t)w * sizeof *d);
        } else {
            for (int j = 0; j < w; j++) {
                const float *src = q->b + (size_t)(j0 + j) * q->ldb + q->pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = src[k];
            }
        }
    }
}

/* A block [mc × kc] from (ic, pc) into MR-tall panels [lo, hi), zero-padded. */
static void pack_a(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    int kc = q->kc;
    for (long p = lo; p < hi; p++) {
        float *d = q->pa + (size_t)p * kc * MR;
        int i0 = q->ic + (int)p * MR, h = q->mc - (int)p * MR < MR ? q->mc - (int)p * MR : MR;
        if (h < MR) memset(d, 0, (size_t)kc * MR * sizeof *d);
        if (!q->ta) {
            for (int i = 0; i < h; i++) {
                const float *src = q->a + (size_t)(i0 + i) * q->lda + q->pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + i] = src[k];
            }
        } else {
            for (int k = 0; k < kc; k++)
                memcpy(d + (size_t)k * MR, q->a + (size_t)(q->pc + k) * q->lda + i0, (size_t)h * sizeof *d);
        }
    }
}

/* Tiles [lo, hi) of the block, t = jp·mpan + ip: one thread owns a tile. */
static void tiles(void *arg, long lo, long hi)
{
    const gemm_job *q = arg;
    int mpan = (q->mc + MR - 1) / MR;
    float bet = q->pc == 0 ? q->beta : 1.0f;
    for (long t = lo; t < hi; t++) {
        int j = (int)(t / mpan) * NR, i = (int)(t % mpan) * MR;
        kernel(q->kc, q->pa + (size_t)(i / MR) * q->kc * MR, q->pb + (size_t)(j / NR) * q->kc * NR,
               q->c + (size_t)(q->ic + i) * q->ldc + q->jc + j, q->ldc, q->alpha, bet,
               q->mc - i < MR ? q->mc - i : MR, q->nc - j < NR ? q->nc - j : NR);
    }
}

/* Packing buffers, allocated once per calling thread (the first call is the
 * only one that allocates). */
static _Thread_local float *pa_buf, *pb_buf;

void ds_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
        return;
    }
    if (!pa_buf) {
        pa_buf = aligned_alloc(64, (size_t)MC * KC * sizeof(float));
        pb_buf = aligned_alloc(64, (size_t)KC * NC * sizeof(float));
        if (!pa_buf || !pb_buf) abort(); /* a few hundred KiB, once: nothing to recover */
    }
    gemm_job q = {ta, tb, lda, ldb, ldc, alpha, beta, a, b, c, pa_buf, pb_buf, 0, 0, 0, 0, 0, 0};
    /* small products run on the calling thread alone */
    long min_chunk = (double)m * n * k <= 262144.0 ? 1L << 30 : 1;
    for (q.jc = 0; q.jc < n; q.jc += NC) {
        q.nc = n - q.jc < NC ? n - q.jc : NC;
        for (q.pc = 0; q.pc < k; q.pc += KC) {
            q.kc = k - q.pc < KC ? k - q.pc : KC;
            int npan = (q.nc + NR - 1) / NR;
            ds_parallel_for(npan, min_chunk, pack_b, &q);
            for (q.ic = 0; q.ic < m; q.ic += MC) {
                q.mc = m - q.ic < MC ? m - q.ic : MC;
                int mpan = (q.mc + MR - 1) / MR;
                ds_parallel_for(mpan, min_chunk, pack_a, &q);
                ds_parallel_for((long)npan * mpan, min_chunk, tiles, &q);
            }
        }
    }
}
