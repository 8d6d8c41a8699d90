/* test_gemm.c — the blocked sgemm against a naive double-precision product,
 * for every transpose combination and sizes that straddle the block edges;
 * the unpacked paths for thin products (ds_gemm_thin: m ≤ 12 rows, every m,
 * vector tails of n; ds_gemm_nt: 1-row and 4-row tiles of 4..8 columns, k
 * tails) the same way. Tolerance: relative error 1e-5 per element. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>

static double check_case(int m, int n, int k, bool ta, bool tb, float alpha, float beta, ds_rng *r)
{
    int lda = ta ? m : k, ldb = tb ? k : n, ldc = n + 3; /* ldc > n: a sub-matrix of C */
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    ds_test_fill(a, (size_t)m * k, -1, 1, r);
    ds_test_fill(b, (size_t)k * n, -1, 1, r);
    ds_test_fill(c0, (size_t)m * ldc, -1, 1, r);
    for (size_t i = 0; i < (size_t)m * ldc; i++) c[i] = beta == 0 ? NAN : c0[i]; /* beta 0 must not read C */
    for (int i = 0; i < m; i++) c[(size_t)i * ldc + n] = c0[(size_t)i * ldc + n] = 7; /* outside the product */
    ds_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int q = 0; q < k; q++)
                s += (double)(ta ? a[(size_t)q * lda + i] : a[(size_t)i * lda + q]) *
                     (tb ? b[(size_t)j * ldb + q] : b[(size_t)q * ldb + j]);
            s = alpha * s + (beta != 0 ? beta * c0[(size_t)i * ldc + j] : 0);
            double e = fabs(s - c[(size_t)i * ldc + j]) / (1 + fabs(s));
            if (!(e <= worst)) worst = e; /* NaN counts as the worst */
        }
        if (c[(size_t)i * ldc + n] != 7) worst = 1;
    }
    free(a), free(b), free(c), free(c0);
    return worst;
}

/* ds_gemm_nt: C = A·Bᵀ (+ bias) + beta·C, A [m×k], B [n×k], both with slack
 * in their row stride */
static double check_nt(int m, int n, int k, float beta, bool bias, ds_rng *r)
{
    int lda = k + 1, ldb = k + 2, ldc = n + 3;
    float *a = malloc(sizeof(float) * (size_t)m * lda), *b = malloc(sizeof(float) * (size_t)n * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    float *bs = malloc(sizeof(float) * (size_t)n);
    ds_test_fill(a, (size_t)m * lda, -1, 1, r);
    ds_test_fill(b, (size_t)n * ldb, -1, 1, r);
    ds_test_fill(bs, (size_t)n, -1, 1, r);
    ds_test_fill(c0, (size_t)m * ldc, -1, 1, r);
    for (size_t i = 0; i < (size_t)m * ldc; i++) c[i] = beta == 0 ? NAN : c0[i];
    for (int i = 0; i < m; i++) c[(size_t)i * ldc + n] = c0[(size_t)i * ldc + n] = 7;
    ds_gemm_nt(m, n, k, a, lda, b, ldb, beta, c, ldc, bias ? bs : NULL);
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = bias ? bs[j] : 0;
            for (int q = 0; q < k; q++) s += (double)a[(size_t)i * lda + q] * b[(size_t)j * ldb + q];
            s += beta != 0 ? beta * c0[(size_t)i * ldc + j] : 0;
            double e = fabs(s - c[(size_t)i * ldc + j]) / (1 + fabs(s));
            if (!(e <= worst)) worst = e;
        }
        if (c[(size_t)i * ldc + n] != 7) worst = 1;
    }
    free(a), free(b), free(c), free(c0), free(bs);
    return worst;
}

/* ds_gemm_direct: C = alpha·op(A)·B + beta·C + bias[j], B with ldb = n
 * (the edge strip copied) or ldb padded to a multiple of 32 (read in
 * place); the same bits as ds_gemm's packed path for the same sums
 * (worst = 1 flags a miss: an element not handed over once, a write
 * outside C, a bit that differs) */
static double check_direct(int m, int n, int k, bool ta, bool pad, float beta, bool bias, ds_rng *r)
{
    int lda = ta ? m + 1 : k + 2, ldb = pad ? (n + 31) / 32 * 32 : n, ldc = n + 3;
    size_t na = (size_t)(ta ? k : m) * lda;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * (size_t)k * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    float *cg = malloc(sizeof(float) * (size_t)m * ldc), *bs = malloc(sizeof(float) * (size_t)n);
    int *seen = calloc((size_t)m * n + 1, sizeof(int));
    seen[0] = n;
    ds_test_fill(a, na, -1, 1, r);
    ds_test_fill(b, (size_t)k * ldb, -1, 1, r);
    ds_test_fill(bs, (size_t)n, -1, 1, r);
    ds_test_fill(c0, (size_t)m * ldc, -1, 1, r);
    for (size_t i = 0; i < (size_t)m * ldc; i++) c[i] = beta == 0 ? NAN : c0[i];
    for (int i = 0; i < m; i++) c[(size_t)i * ldc + n] = c0[(size_t)i * ldc + n] = 7;
    ds_gemm_direct(ta, m, n, k, 1.5f, a, lda, b, ldb, beta, c, ldc, bias ? bs : NULL, ds_test_epilogue_twice, seen);
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int q = 0; q < k; q++)
                s += (double)(ta ? a[(size_t)q * lda + i] : a[(size_t)i * lda + q]) * b[(size_t)q * ldb + j];
            s = 2 * (1.5 * s + (bias ? bs[j] : 0) + (beta != 0 ? beta * c0[(size_t)i * ldc + j] : 0));
            double e = fabs(s - c[(size_t)i * ldc + j]) / (1 + fabs(s));
            if (!(e <= worst)) worst = e;
            if (seen[1 + i * n + j] != 1) worst = 1;
        }
        if (c[(size_t)i * ldc + n] != 7) worst = 1;
    }
    /* against ds_gemm (packed when m > 12) with the bias as C's start */
    if (m > DS_GEMM_THIN_M && beta == 0) {
        ds_gemm_direct(ta, m, n, k, 1.5f, a, lda, b, ldb, 0, c, ldc, bias ? bs : NULL, NULL, NULL);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) cg[(size_t)i * ldc + j] = bias ? bs[j] : 0;
        ds_gemm(ta, false, m, n, k, 1.5f, a, lda, b, ldb, bias ? 1.0f : 0.0f, cg, ldc);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                if (!bias && c[(size_t)i * ldc + j] != cg[(size_t)i * ldc + j]) worst = 1;
    }
    free(a), free(b), free(c), free(c0), free(cg), free(bs), free(seen);
    return worst;
}

int main(void)
{
    ds_rng r;
    ds_rng_seed(&r, 3);
    int sizes[][3] = {{1, 1, 1}, {5, 7, 3}, {6, 32, 256}, {7, 33, 257}, {97, 65, 300},
                      {64, 800, 196}, {200, 2100, 40}, {13, 5000, 9}};
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int t = 0; t < 4; t++) {
            float beta = t == 0 ? 0.0f : t == 1 ? 1.0f : 0.5f;
            double e = check_case(sizes[s][0], sizes[s][1], sizes[s][2], t & 1, t & 2, 1.5f, beta, &r);
            if (e > 1e-5)
                fprintf(stderr, "gemm %dx%dx%d ta=%d tb=%d: rel err %g\n", sizes[s][0], sizes[s][1],
                        sizes[s][2], t & 1, (t & 2) != 0, e);
            CHECK(e <= 1e-5);
        }
    /* the thin path (m ≤ 12, B not transposed): every m, n around the
     * vector widths (4, 8, 16, 32 columns), the softmax gradient's shape */
    int thin_n[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 784};
    for (int m = 1; m <= 12; m++)
        for (unsigned j = 0; j < sizeof thin_n / sizeof *thin_n; j++)
            for (int t = 0; t < 2; t++) {
                int k = j == 9 ? 64 : 5 + m + (int)j;
                double e = check_case(m, thin_n[j], k, t, false, 1.5f, t ? 0.5f : 0.0f, &r);
                if (e > 1e-5) fprintf(stderr, "thin gemm %dx%dx%d ta=%d: rel err %g\n", m, thin_n[j], k, t, e);
                CHECK(e <= 1e-5);
            }
    /* the dot-product path: one row (1×8 tiles), 4-row tiles of 6, 5 and 4
     * columns with partial rows and columns, k with and without a tail */
    int nt[][3] = {{1, 128, 3136}, {1, 10, 128}, {1, 3, 17}, {64, 10, 784}, {7, 6, 33},
                   {5, 12, 16}, {9, 4, 1}, {13, 7, 100}, {4, 23, 40}, {2, 1, 5}};
    for (unsigned s = 0; s < sizeof nt / sizeof *nt; s++)
        for (int t = 0; t < 2; t++) {
            double e = check_nt(nt[s][0], nt[s][1], nt[s][2], t ? 1.0f : 0.0f, t == 0, &r);
            if (e > 1e-5) fprintf(stderr, "gemm_nt %dx%dx%d: rel err %g\n", nt[s][0], nt[s][1], nt[s][2], e);
            CHECK(e <= 1e-5);
        }
    /* the direct path: partial row tiles (10 or 6 rows) and column strips,
     * k across the 256 blocks, the RBM's shapes */
    int dsz[][3] = {{1, 1, 1}, {5, 7, 3}, {10, 32, 256}, {13, 33, 257}, {100, 500, 784},
                    {100, 784, 500}, {500, 784, 200}, {37, 100, 600}, {64, 16, 20}};
    for (unsigned s = 0; s < sizeof dsz / sizeof *dsz; s++)
        for (int t = 0; t < 8; t++) {
            double e = check_direct(dsz[s][0], dsz[s][1], dsz[s][2], t & 1, t & 2, t & 4 ? 0.5f : 0.0f, t & 1, &r);
            double tol = 1e-5 * (1 + dsz[s][2] / 128.0); /* float sums of up to 784 terms of ±1 */
            if (e > tol)
                fprintf(stderr, "gemm_direct %dx%dx%d ta=%d pad=%d beta=%d: rel err %g\n", dsz[s][0], dsz[s][1],
                        dsz[s][2], t & 1, (t & 2) != 0, (t & 4) != 0, e);
            CHECK(e <= tol);
        }
    /* ds_transpose, with slack in both strides */
    int tsz[][2] = {{1, 1}, {7, 9}, {8, 8}, {500, 784}, {17, 40}};
    for (unsigned s = 0; s < sizeof tsz / sizeof *tsz; s++) {
        int rows = tsz[s][0], cols = tsz[s][1], ls = cols + 3, ld = rows + 5;
        float *x = malloc(sizeof(float) * (size_t)rows * ls), *y = malloc(sizeof(float) * (size_t)cols * ld);
        ds_test_fill(x, (size_t)rows * ls, -1, 1, &r);
        for (size_t i = 0; i < (size_t)cols * ld; i++) y[i] = 7;
        ds_transpose(rows, cols, x, ls, y, ld);
        int bad = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) bad += y[(size_t)j * ld + i] != x[(size_t)i * ls + j];
        for (int j = 0; j < cols; j++)
            for (int i = rows; i < ld; i++) bad += y[(size_t)j * ld + i] != 7;
        CHECK(bad == 0);
        free(x), free(y);
    }
    return ds_test_summary("gemm");
}
