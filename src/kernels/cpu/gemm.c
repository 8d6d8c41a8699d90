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

#include <omp.h>
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

/* B block [kc × nc] from (pc, jc) into NR-wide panels, zero-padded. Reads
 * run along memory: rows of B, or (transposed) columns of the stored Bᵀ. */
static void pack_b(const float *b, int ldb, bool tb, int pc, int jc, int kc, int nc, float *dst)
{
    int panels = (nc + NR - 1) / NR;
#pragma omp for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * kc * NR;
        int j0 = jc + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR;
        if (w < NR) memset(d, 0, (size_t)kc * NR * sizeof *d);
        if (!tb) {
            for (int k = 0; k < kc; k++) memcpy(d + (size_t)k * NR, b + (size_t)(pc + k) * ldb + j0, (size_t)w * sizeof *d);
        } else {
            for (int j = 0; j < w; j++) {
                const float *src = b + (size_t)(j0 + j) * ldb + pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = src[k];
            }
        }
    }
}

/* A block [mc × kc] from (ic, pc) into MR-tall panels, zero-padded. */
static void pack_a(const float *a, int lda, bool ta, int ic, int pc, int mc, int kc, float *dst)
{
    int panels = (mc + MR - 1) / MR;
#pragma omp for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * kc * MR;
        int i0 = ic + p * MR, h = mc - p * MR < MR ? mc - p * MR : MR;
        if (h < MR) memset(d, 0, (size_t)kc * MR * sizeof *d);
        if (!ta) {
            for (int i = 0; i < h; i++) {
                const float *src = a + (size_t)(i0 + i) * lda + pc;
                for (int k = 0; k < kc; k++) d[(size_t)k * MR + i] = src[k];
            }
        } else {
            for (int k = 0; k < kc; k++) memcpy(d + (size_t)k * MR, a + (size_t)(pc + k) * lda + i0, (size_t)h * sizeof *d);
        }
    }
}

/* The blocked loops; the omp for's inside share the work when called from a
 * parallel region and run serially otherwise. */
static void gemm_blocked(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc, float *pa, float *pb)
{
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            float bet = pc == 0 ? beta : 1.0f;
            pack_b(b, ldb, tb, pc, jc, kc, nc, pb);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                pack_a(a, lda, ta, ic, pc, mc, kc, pa);
                int npan = (nc + NR - 1) / NR, mpan = (mc + MR - 1) / MR;
#pragma omp for schedule(static) collapse(2)
                for (int jp = 0; jp < npan; jp++)
                    for (int ip = 0; ip < mpan; ip++) {
                        int j = jp * NR, i = ip * MR;
                        kernel(kc, pa + (size_t)ip * kc * MR, pb + (size_t)jp * kc * NR,
                               c + (size_t)(ic + i) * ldc + jc + j, ldc, alpha, bet,
                               mc - i < MR ? mc - i : MR, nc - j < NR ? nc - j : NR);
                    }
            }
        }
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
    float *pa = pa_buf, *pb = pb_buf;
    /* Small products run serially. (No `if` clause: libgomp reallocates its
     * team whenever the thread count changes between regions.) */
    if ((double)m * n * k <= 262144.0 || omp_in_parallel()) {
        gemm_blocked(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pa, pb);
        return;
    }
#pragma omp parallel
    gemm_blocked(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pa, pb);
}
