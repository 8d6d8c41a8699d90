/* test_gemm_binary.c — products with a 0/1 A (ds_binary_index +
 * ds_gemm_binary) against the dense ds_gemm_direct on the same operands:
 * the same bits (the sums are the dense kernel's with its zero terms left
 * out), each element handed to the epilogue once; sizes off the 4-row
 * groups and the 32-column strips, k over several blocks of 256, rows all
 * zeros and all ones, densities from 0 to 1; and the index lists refusing
 * any value that is not exactly 0 or 1. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* 0 when the binary path gives the dense path's bits; ldb = n (the edge
 * strip copied) or padded (read in place, NaN in the padding: never used) */
static int check(int m, int n, int k, float density, bool pad, float alpha, float beta, bool bias, ds_rng *r)
{
    int lda = k + 3, ldb = pad ? (n + 31) / 32 * 32 + 16 : n, ldc = n + 5, nb = (k + 255) / 256;
    float *a = malloc(sizeof(float) * (size_t)m * lda), *b = malloc(sizeof(float) * (size_t)k * ldb);
    float *c1 = malloc(sizeof(float) * (size_t)m * ldc), *c2 = malloc(sizeof(float) * (size_t)m * ldc);
    float *bs = malloc(sizeof(float) * (size_t)n);
    int *idx = malloc(sizeof(int) * ((size_t)m * k + 16)), *start = malloc(sizeof(int) * (2 * (size_t)m * nb + 1));
    int *seen = calloc((size_t)m * n + 1, sizeof(int));
    seen[0] = n;
    int ones = 0;
    for (int i = 0; i < m; i++)
        for (int q = 0; q < lda; q++) {
            float u = ds_rng_uniform(r);
            /* row 1 all ones, row 2 all zeros; −0 is a zero; past k, 0.5 (never read) */
            float x = i == 1 ? 1.0f : i == 2 ? 0.0f : u < density ? 1.0f : (q & 7) == 3 ? -0.0f : 0.0f;
            a[(size_t)i * lda + q] = q < k ? x : 0.5f;
            ones += q < k && x == 1.0f;
        }
    ds_test_fill(b, (size_t)k * ldb, -1, 1, r);
    for (int q = 0; q < k; q++)
        for (int j = n; j < ldb; j++) b[(size_t)q * ldb + j] = NAN;
    ds_test_fill(bs, (size_t)n, -1, 1, r);
    ds_test_fill(c1, (size_t)m * ldc, -1, 1, r);
    memcpy(c2, c1, sizeof(float) * (size_t)m * ldc);
    int bad = 0;
    int got = ds_binary_index(m, k, a, lda, idx, start);
    if (got != ones) bad |= 1;
    ds_gemm_direct(false, m, n, k, alpha, a, lda, b, ldb, beta, c1, ldc, bias ? bs : NULL, NULL, NULL);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c1[(size_t)i * ldc + j] *= 2;
    ds_gemm_binary(m, n, k, alpha, idx, start, b, ldb, beta, c2, ldc, bias ? bs : NULL, ds_test_epilogue_twice, seen);
    /* all of C compared, the columns outside the product included */
    if (memcmp(c1, c2, sizeof(float) * (size_t)m * ldc)) bad |= 2;
    for (int e = 0; e < m * n; e++) bad |= seen[1 + e] != 1 ? 4 : 0;
    if (bad)
        fprintf(stderr, "binary %dx%dx%d density %g pad %d alpha %g beta %g bias %d: %s%s%s\n", m, n, k, density,
                pad, alpha, beta, bias, bad & 1 ? "count " : "", bad & 2 ? "bits " : "", bad & 4 ? "tiles" : "");
    free(a), free(b), free(c1), free(c2), free(bs), free(idx), free(start), free(seen);
    return bad;
}

int main(void)
{
    ds_rng r;
    ds_rng_seed(&r, 5);
    /* m around the 4-row groups, n around the 32-column strips (16 in the
     * AVX2 build), k within one block, at 256, and over 2-4 blocks; the
     * RBM's shapes (100 x 500 x 784 for q0, 100 x 784 x 500 for v1) */
    int sz[][3] = {{1, 1, 1},     {3, 5, 7},     {4, 32, 256},   {5, 33, 257},   {7, 16, 300},
                   {9, 47, 513},  {13, 64, 800}, {100, 500, 784}, {100, 784, 500}, {6, 100, 1000}};
    float dens[] = {0, 0.05f, 0.31f, 0.5f, 1};
    for (unsigned s = 0; s < sizeof sz / sizeof *sz; s++)
        for (unsigned d = 0; d < sizeof dens / sizeof *dens; d++)
            for (int t = 0; t < 4; t++) {
                float beta = t & 2 ? 0.5f : 0.0f, alpha = t == 3 ? 1.5f : 1.0f;
                CHECK(check(sz[s][0], sz[s][1], sz[s][2], dens[d], t & 1, alpha, beta, t != 2, &r) == 0);
            }
    /* the lists refuse a value other than 0 and 1, wherever it is (the
     * vector body, the tail of a row, a later block, the last row) */
    float bads[] = {0.5f, -1.0f, 2.0f, NAN, INFINITY, 1.0000001f, 1e-30f};
    int where[][2] = {{0, 0}, {0, 300}, {2, 17}, {3, 299}};
    int idx[4 * 300 + 16], start[2 * 4 * 2 + 1];
    float a[4 * 300];
    for (unsigned v = 0; v < sizeof bads / sizeof *bads; v++)
        for (unsigned w = 0; w < sizeof where / sizeof *where; w++) {
            for (int e = 0; e < 4 * 300; e++) a[e] = (float)(ds_rng_uniform(&r) < 0.3f);
            int i = where[w][0], q = where[w][1] < 300 ? where[w][1] : 299;
            a[i * 300 + q] = bads[v];
            CHECK(ds_binary_index(4, 300, a, 300, idx, start) == -1);
        }
    for (int e = 0; e < 4 * 300; e++) a[e] = (float)(e % 3 == 0);
    CHECK(ds_binary_index(4, 300, a, 300, idx, start) == 400);
    CHECK(start[0] == 0 && start[1] - start[0] == 86 && idx[1] == 3 && start[2] - start[1] == 14 && idx[start[1]] == 2);
    return ds_test_summary("gemm_binary");
}
