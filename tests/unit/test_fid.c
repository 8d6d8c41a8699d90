/* test_fid.c — the Fréchet distance against closed forms (identical sets,
 * diagonal covariances, commuting non-diagonal ones), the feature
 * statistics against a hand computation, the nearest-neighbour search
 * against brute force, and the bad inputs each refuses. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Q [n, n]: an orthogonal matrix by Gram–Schmidt on random columns. */
static void random_orthogonal(int n, double *q, ds_rng *r)
{
    for (int i = 0; i < n * n; i++) q[i] = ds_rng_normal(r);
    for (int j = 0; j < n; j++) { /* column j against the earlier ones */
        for (int k = 0; k < j; k++) {
            double d = 0;
            for (int i = 0; i < n; i++) d += q[i * n + j] * q[i * n + k];
            for (int i = 0; i < n; i++) q[i * n + j] -= d * q[i * n + k];
        }
        double s = 0;
        for (int i = 0; i < n; i++) s += q[i * n + j] * q[i * n + j];
        for (int i = 0; i < n; i++) q[i * n + j] /= sqrt(s);
    }
}

/* c = Q diag(l) Qᵀ */
static void rotate(int n, const double *q, const double *l, double *c)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += q[i * n + k] * l[k] * q[j * n + k];
            c[i * n + j] = s;
        }
}

/* |m1 − m2|² + Σ (√a − √b)²: the distance of two Gaussians whose covariances share eigenvectors */
static double closed_form(int n, const double *m1, const double *m2, const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    return s;
}

static void test_identical(void)
{
    ds_rng r;
    ds_rng_seed(&r, 1);
    int n = 400, dim = 24;
    float *f = malloc(sizeof *f * (size_t)n * dim);
    for (int i = 0; i < n * dim; i++) f[i] = ds_rng_normal(&r) * (1 + (i % dim)) + 3;
    double *m = malloc(sizeof *m * dim), *c = malloc(sizeof *c * dim * dim), d = -1;
    CHECK(ds_feature_stats(f, n, dim, m, c) == 0);
    CHECK(ds_frechet_distance(dim, m, c, m, c, &d) == 0);
    CHECK_NEAR(d, 0, 1e-9);
    /* rank-deficient (fewer samples than features): √ of zero eigenvalues */
    CHECK(ds_feature_stats(f, 10, dim, m, c) == 0);
    CHECK(ds_frechet_distance(dim, m, c, m, c, &d) == 0);
    CHECK_NEAR(d, 0, 1e-9);
    free(f), free(m), free(c);
}

static void test_diagonal(void)
{
    enum { N = 8 };
    double m1[N], m2[N], a[N], b[N], c1[N * N] = {0}, c2[N * N] = {0}, d;
    for (int i = 0; i < N; i++) {
        m1[i] = i, m2[i] = 0.5 * i - 1;
        a[i] = 1 + i, b[i] = 4.0 / (1 + i);
        c1[i * N + i] = a[i], c2[i * N + i] = b[i];
    }
    CHECK(ds_frechet_distance(N, m1, c1, m2, c2, &d) == 0);
    CHECK_NEAR(d, closed_form(N, m1, m2, a, b), 1e-10);
    /* N(0, 1) against N(0, 4) in one dimension: (1 − 2)² = 1 */
    double z = 0, one = 1, four = 4;
    CHECK(ds_frechet_distance(1, &z, &one, &z, &four, &d) == 0);
    CHECK_NEAR(d, 1, 1e-12);
    /* a singular covariance (a zero eigenvalue) */
    a[3] = 0, c1[3 * N + 3] = 0;
    CHECK(ds_frechet_distance(N, m1, c1, m2, c2, &d) == 0);
    CHECK_NEAR(d, closed_form(N, m1, m2, a, b), 1e-10);
}

static void test_rotated(void)
{
    enum { N = 32 };
    ds_rng r;
    ds_rng_seed(&r, 7);
    static double q[N * N], c1[N * N], c2[N * N];
    double a[N], b[N], m1[N], m2[N], d;
    random_orthogonal(N, q, &r);
    for (int i = 0; i < N; i++) {
        a[i] = 0.1 + 3 * ds_rng_uniform(&r), b[i] = 0.1 + 3 * ds_rng_uniform(&r);
        m1[i] = ds_rng_normal(&r), m2[i] = ds_rng_normal(&r);
    }
    rotate(N, q, a, c1);
    rotate(N, q, b, c2);
    CHECK(ds_frechet_distance(N, m1, c1, m2, c2, &d) == 0);
    CHECK_NEAR(d, closed_form(N, m1, m2, a, b), 1e-9);
    /* rank-deficient: √ turns round-off of 1e-16 in a zero eigenvalue into 1e-8 */
    a[5] = 0;
    rotate(N, q, a, c1);
    CHECK(ds_frechet_distance(N, m1, c1, m2, c2, &d) == 0);
    CHECK_NEAR(d, closed_form(N, m1, m2, a, b), 1e-6);
    /* symmetric in its arguments */
    double d2;
    CHECK(ds_frechet_distance(N, m2, c2, m1, c1, &d2) == 0);
    CHECK_NEAR(d2, d, 1e-6);
}

static void test_stats(void)
{
    /* rows (1, 2), (3, 6), (5, 4): mean (3, 4), cov [[4, 2], [2, 4]] */
    float f[] = {1, 2, 3, 6, 5, 4};
    double m[2], c[4];
    CHECK(ds_feature_stats(f, 3, 2, m, c) == 0);
    CHECK_NEAR(m[0], 3, 1e-12);
    CHECK_NEAR(m[1], 4, 1e-12);
    CHECK_NEAR(c[0], 4, 1e-12);
    CHECK_NEAR(c[1], 2, 1e-12);
    CHECK_NEAR(c[2], 2, 1e-12);
    CHECK_NEAR(c[3], 4, 1e-12);
}

static void test_bad(void)
{
    float f[] = {1, 2, 3, 6, 5, 4};
    double m[2], c[4], d = 5;
    CHECK(ds_feature_stats(f, 1, 2, m, c) == -1);
    CHECK(strstr(ds_last_error(), "at least 2") != NULL);
    f[3] = NAN;
    CHECK(ds_feature_stats(f, 3, 2, m, c) == -1);
    CHECK(strstr(ds_last_error(), "sample 1, feature 1") != NULL);
    CHECK(ds_feature_stats(f, 3, 0, m, c) == -1);
    double m1[2] = {0, 0}, c1[4] = {1, 0, 0, 1}, m2[2] = {0, NAN}, c2[4] = {1, 0, 0, INFINITY};
    CHECK(ds_frechet_distance(2, m1, c1, m2, c1, &d) == -1);
    CHECK(strstr(ds_last_error(), "not finite") != NULL);
    CHECK(ds_frechet_distance(2, m1, c1, m1, c2, &d) == -1);
    CHECK(strstr(ds_last_error(), "covariance 2") != NULL);
    CHECK(ds_frechet_distance(0, m1, c1, m1, c1, &d) == -1);
    CHECK(d == 5); /* untouched */
}

/* dim 128 well under a second (the brief: < 1 s); 512 timed for the record */
static void test_speed(void)
{
    ds_rng r;
    ds_rng_seed(&r, 3);
    for (int dim = 128; dim <= 512; dim *= 4) {
        int n = dim + 50;
        float *f = malloc(sizeof *f * (size_t)n * dim), *g = malloc(sizeof *g * (size_t)n * dim);
        for (int i = 0; i < n * dim; i++) f[i] = ds_rng_normal(&r), g[i] = ds_rng_normal(&r) * 1.1f + 0.1f;
        double *m1 = malloc(sizeof(double) * dim), *m2 = malloc(sizeof(double) * dim);
        double *c1 = malloc(sizeof(double) * dim * dim), *c2 = malloc(sizeof(double) * dim * dim), d;
        CHECK(ds_feature_stats(f, n, dim, m1, c1) == 0 && ds_feature_stats(g, n, dim, m2, c2) == 0);
        double t0 = ds_now();
        CHECK(ds_frechet_distance(dim, m1, c1, m2, c2, &d) == 0);
        double t = ds_now() - t0;
        printf("dim %d: %.3f s (FID %.4f)\n", dim, t, d);
        if (dim == 128) CHECK(t < 1.0);
        CHECK(d > 0);
        free(f), free(g), free(m1), free(m2), free(c1), free(c2);
    }
}

static void test_nearest(void)
{
    ds_rng r;
    ds_rng_seed(&r, 11);
    int nq = 300, nr = 2500, dim = 37; /* blocks of 256 × 2048 with remainders */
    float *q = malloc(sizeof *q * (size_t)nq * dim), *ref = malloc(sizeof *ref * (size_t)nr * dim);
    float *dist = malloc(sizeof *dist * nq);
    int *idx = malloc(sizeof *idx * nq), wrong = 0;
    ds_test_fill(q, (size_t)nq * dim, 0, 1, &r);
    ds_test_fill(ref, (size_t)nr * dim, 0, 1, &r);
    memcpy(q + 7 * dim, ref + 2100 * dim, sizeof *q * dim); /* an exact copy: distance 0, not round-off */
    CHECK(ds_nearest_neighbors(q, nq, ref, nr, dim, dist, idx) == 0);
    double worst = 0;
    for (int i = 0; i < nq; i++) {
        double best = INFINITY;
        int bi = -1;
        for (int j = 0; j < nr; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++) s += ((double)q[i * dim + k] - ref[j * dim + k]) * ((double)q[i * dim + k] - ref[j * dim + k]);
            if (s < best) best = s, bi = j;
        }
        wrong += bi != idx[i];
        if (fabs(sqrt(best) - dist[i]) > worst) worst = fabs(sqrt(best) - dist[i]);
    }
    CHECK(wrong == 0);
    CHECK(worst < 1e-5);
    CHECK(idx[7] == 2100 && dist[7] == 0);
    CHECK(ds_nearest_neighbors(q, nq, ref, 0, dim, dist, idx) == -1);
    free(q), free(ref), free(dist), free(idx);
}

int main(void)
{
    test_identical();
    test_diagonal();
    test_rotated();
    test_stats();
    test_bad();
    test_speed();
    test_nearest();
    return ds_test_summary("fid");
}
