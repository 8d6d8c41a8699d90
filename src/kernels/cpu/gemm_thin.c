/* gemm_thin.c — products whose output has few rows, without packing:
 *   C [m×n] = alpha·op(A)·B + beta·C,  m ≤ DS_GEMM_THIN_M, B row-major.
 *
 * A classifier's weight gradient dW [10×784] = dyᵀ·x (softmax regression,
 * LeNet's last layer) is such a product: the packed GEMM would round the 10
 * rows up to two 8-row panels (62 % of its multiply-adds useful) and copy
 * all of x into panels for a product of depth 64. Here the m rows of C stay
 * in registers, m × 2 vectors of columns, and B is read as it lies, one row
 * of B per step of k: nothing is packed and nothing is wasted but the last
 * partial vector of columns. Each sum runs over k in order, so the result
 * does not depend on the thread count.
 */
#include "internal.h"

#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#define CV 2 /* vectors of columns per block: 12 × 2 accumulators of 32 registers */
#elif defined(__AVX__)
#define VW 8
#define CV 1 /* 16 registers */
#else
#define VW 4
#define CV 1
#endif

typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));

typedef struct {
    int m, n, k;
    const float *a, *b;
    long si, sk, ldb; /* A(i, p) = a[i·si + p·sk], B(p, j) = b[p·ldb + j] */
    float *c;
    long ldc;
    float alpha, beta;
} thin_job;

/* columns j .. j + nv·VW of C; M and NV are constants where it is inlined */
static inline __attribute__((always_inline)) void thin_block(const thin_job *q, int M, int NV, int j)
{
    vf acc[DS_GEMM_THIN_M][CV];
    for (int i = 0; i < M; i++)
        for (int h = 0; h < NV; h++) acc[i][h] = (vf){0};
    const float *b = q->b + j, *a = q->a;
    for (int p = 0; p < q->k; p++) {
        vf bv[CV];
        for (int h = 0; h < NV; h++) memcpy(&bv[h], b + (size_t)p * q->ldb + h * VW, sizeof bv[h]);
        const float *ap = a + p * q->sk;
        for (int i = 0; i < M; i++) {
            float s = ap[i * q->si];
            for (int h = 0; h < NV; h++) acc[i][h] += s * bv[h];
        }
    }
    for (int i = 0; i < M; i++)
        for (int h = 0; h < NV; h++) {
            float *ci = q->c + (size_t)i * q->ldc + j + h * VW;
            vf r = acc[i][h] * q->alpha, old;
            if (q->beta != 0) {
                memcpy(&old, ci, sizeof old);
                r += old * q->beta;
            }
            memcpy(ci, &r, sizeof r);
        }
}

/* the last n mod VW columns, one dot product at a time */
static void thin_tail(const thin_job *q, int j0)
{
    for (int i = 0; i < q->m; i++)
        for (int j = j0; j < q->n; j++) {
            float s = 0;
            for (int p = 0; p < q->k; p++) s += q->a[i * q->si + p * q->sk] * q->b[(size_t)p * q->ldb + j];
            float *cij = q->c + (size_t)i * q->ldc + j;
            *cij = q->alpha * s + (q->beta != 0 ? q->beta * *cij : 0);
        }
}

/* blocks [lo, hi) of CV·VW columns; the last block may be partial */
static inline __attribute__((always_inline)) void thin_range_m(const thin_job *q, int M, long lo, long hi)
{
    for (long t = lo; t < hi; t++) {
        int j = (int)t * CV * VW;
        if (j + CV * VW <= q->n) {
            thin_block(q, M, CV, j);
            continue;
        }
        if (CV > 1 && j + VW <= q->n) thin_block(q, M, 1, j), j += VW;
        if (j < q->n) thin_tail(q, j);
    }
}

#define THIN_CASE(M)                                                                                             \
    case M:                                                                                                      \
        thin_range_m(q, M, lo, hi);                                                                              \
        break;

static void thin_range(void *arg, long lo, long hi)
{
    const thin_job *q = arg;
    switch (q->m) {
        THIN_CASE(1) THIN_CASE(2) THIN_CASE(3) THIN_CASE(4) THIN_CASE(5) THIN_CASE(6)
        THIN_CASE(7) THIN_CASE(8) THIN_CASE(9) THIN_CASE(10) THIN_CASE(11) THIN_CASE(12)
    default: break; /* the caller sends only m ≤ DS_GEMM_THIN_M */
    }
}

void ds_gemm_thin(bool ta, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0 || m > DS_GEMM_THIN_M) return;
    thin_job q = {m, n, k, a, b, ta ? 1 : lda, ta ? lda : 1, ldb, c, ldc, alpha, beta};
    long blocks = (n + CV * VW - 1) / (CV * VW);
    /* below DS_GEMM_SERIAL_MACS the calling thread alone: waking the others
     * costs more than they save (and far more when other processes hold
     * the cores) */
    long min = (double)m * n * k < DS_GEMM_SERIAL_MACS ? blocks : 1;
    ds_parallel_for_grains(blocks, min, 2, thin_range, &q);
}
