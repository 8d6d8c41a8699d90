/* test_forest.c — the random forest on cases whose answer is known (a
 * threshold, XOR), determinism by seed, bad input; and the stamp features
 * on stamps whose shape is known (a point source, a trail, a hot pixel, a
 * dipole). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void test_forest(void)
{
    enum { N = 400 };
    static float x[N * 2], y[N], p[4 * 2];
    ds_rng r;
    ds_rng_seed(&r, 3);
    /* XOR of two thresholds: no single split separates it, two levels do */
    for (int i = 0; i < N; i++) {
        x[2 * i] = ds_rng_uniform(&r), x[2 * i + 1] = ds_rng_uniform(&r);
        y[i] = (float)((x[2 * i] > 0.5f) ^ (x[2 * i + 1] > 0.5f));
    }
    ds_forest_cfg c = {.trees = 50, .seed = 1};
    ds_forest *f = ds_forest_train(x, y, N, 2, 2, &c);
    CHECK(f != NULL);
    float q[4 * 2] = {0.2f, 0.2f, 0.8f, 0.2f, 0.2f, 0.8f, 0.8f, 0.8f};
    ds_forest_predict(f, q, 4, p);
    CHECK(p[0 * 2 + 0] > 0.9f && p[1 * 2 + 1] > 0.9f && p[2 * 2 + 1] > 0.9f && p[3 * 2 + 0] > 0.9f);
    for (int i = 0; i < 4; i++) CHECK_NEAR(p[2 * i] + p[2 * i + 1], 1, 1e-5);
    /* the same seed, the same forest; another seed, another */
    float p2[4 * 2];
    ds_forest *g = ds_forest_train(x, y, N, 2, 2, &c);
    ds_forest_predict(g, q, 4, p2);
    CHECK(memcmp(p, p2, sizeof p) == 0);
    ds_forest_free(g);
    float mid[2] = {0.49f, 0.52f}, a[2], b[2];
    ds_forest_predict(f, mid, 1, a);
    c.seed = 2;
    g = ds_forest_train(x, y, N, 2, 2, &c);
    ds_forest_predict(g, mid, 1, b);
    CHECK(a[0] != b[0]);
    ds_forest_free(g);
    ds_forest_free(f);
    /* bad input */
    x[7] = NAN;
    CHECK(ds_forest_train(x, y, N, 2, 2, &c) == NULL && strstr(ds_last_error(), "not finite"));
    x[7] = 0.5f, y[3] = 2;
    CHECK(ds_forest_train(x, y, N, 2, 2, &c) == NULL && strstr(ds_last_error(), "label 3"));
}

static void test_features(void)
{
    enum { S = 45, N = S * S };
    static float img[N], f[DS_STAMP_FEATURES];
    ds_rng r;
    /* unit noise plus: a point source, a 20 px trail, a hot pixel, a dipole */
    for (int kind = 0; kind < 4; kind++) {
        ds_rng_seed(&r, 9);
        for (int i = 0; i < N; i++) img[i] = ds_rng_normal(&r);
        if (kind == 0) ds_sim_psf(img, S, 22.5, 22.5, 2.5, 0, 400);
        if (kind == 1) ds_sim_trail(img, S, 22.5, 22.5, 20, 0.5, 2.0, 0, 2000, 0);
        if (kind == 2) img[22 * S + 22] += 60;
        if (kind == 3) ds_sim_psf(img, S, 22.9, 22.5, 2.5, 0, 400), ds_sim_psf(img, S, 22.1, 22.5, 2.5, 0, -400);
        CHECK(ds_stamp_features(img, S, f) == 0);
        CHECK_NEAR(f[14], 1, 0.1); /* the noise σ comes back */
        if (kind == 0) { /* peak of a 400 e- Gaussian of FWHM 2.5 px: 400·(pixel share) ≈ 400·0.135 */
            CHECK(f[0] > 40 && f[0] < 70 && f[4] < 1.5f);
        }
        if (kind == 1) CHECK(f[4] > 3 && f[5] > 3); /* elongated; major axis 20/√12 = 5.8, clipped at r 7 */
        if (kind == 2) CHECK(f[3] > 20 && f[2] > 0.8f); /* sharp: the light in one pixel */
        if (kind == 3) CHECK(f[7] > 0.3f); /* a negative lobe */
    }
    for (int i = 0; i < DS_STAMP_FEATURES; i++) CHECK(strcmp(ds_stamp_feature_name(i), "?") != 0);
}

int main(void)
{
    test_forest();
    test_features();
    return ds_test_summary("forest");
}
