/* test_rbm.c — restricted Boltzmann machines: one CD-1 update against a
 * hand computation with the same random draws, the exact log-likelihood
 * against brute force, likelihood rising under training, PCD and CD-k,
 * Gaussian units, and bad input. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static double sig(double x) { return 1 / (1 + exp(-x)); }

static float unit_uniform(uint64_t key, uint64_t i)
{
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (float)((z ^ (z >> 31)) >> 40) * (1.0f / 16777216.0f);
}

/* The update of src/nn/rbm.c written out in double, drawing the hidden
 * sample from a copy of the RBM's generator in the same order. */
static void cd1_by_hand(const ds_rbm_cfg *k, const float *w0, const float *b0, const float *c0, const float *qbar0,
                        ds_rng g, const float *v0, int n, double *w, double *b, double *c)
{
    int V = k->visible, H = k->hidden;
    double q0[8][8], h[8][8], v1[8][8], q1[8][8];
    for (int s = 0; s < n; s++)
        for (int j = 0; j < H; j++) {
            double a = c0[j];
            for (int i = 0; i < V; i++) a += (double)w0[j * V + i] * v0[s * V + i];
            q0[s][j] = sig(a);
        }
    uint64_t key = ds_rng_u64(&g); /* the layer's key, then splitmix64 by unit index (rbm.c's header) */
    for (int s = 0; s < n; s++)
        for (int j = 0; j < H; j++) h[s][j] = unit_uniform(key, (uint64_t)(s * H + j)) < (float)q0[s][j] ? 1 : 0;
    for (int s = 0; s < n; s++)
        for (int i = 0; i < V; i++) {
            double a = b0[i];
            for (int j = 0; j < H; j++) a += h[s][j] * w0[j * V + i];
            v1[s][i] = k->visible_type == DS_RBM_GAUSSIAN ? a : sig(a);
        }
    for (int s = 0; s < n; s++)
        for (int j = 0; j < H; j++) {
            double a = c0[j];
            for (int i = 0; i < V; i++) a += w0[j * V + i] * v1[s][i];
            q1[s][j] = sig(a);
        }
    /* zero velocities: θ += lr·Δ */
    for (int j = 0; j < H; j++)
        for (int i = 0; i < V; i++) {
            double d = 0;
            for (int s = 0; s < n; s++) d += q0[s][j] * v0[s * V + i] - q1[s][j] * v1[s][i];
            w[j * V + i] = w0[j * V + i] + k->lr * (d / n - k->weight_decay * w0[j * V + i]);
        }
    for (int i = 0; i < V; i++) {
        double d = 0;
        for (int s = 0; s < n; s++) d += v0[s * V + i] - v1[s][i];
        b[i] = b0[i] + k->lr * d / n;
    }
    for (int j = 0; j < H; j++) {
        double d = 0, a = 0;
        for (int s = 0; s < n; s++) d += q0[s][j] - q1[s][j], a += q0[s][j];
        double qbar = 0.9 * qbar0[j] + 0.1 * a / n;
        c[j] = c0[j] + k->lr * (d / n + k->sparsity_cost * (k->sparsity_target - qbar));
    }
}

static void test_cd1(ds_rbm_visible type)
{
    ds_rbm_cfg k = {.visible = 6, .hidden = 4, .visible_type = type, .k = 1, .lr = 0.3f, .momentum = 0.5f,
                    .weight_decay = 0.01f, .sparsity_target = 0.1f, .sparsity_cost = 0.2f, .seed = 7};
    int n = 5, V = 6, H = 4;
    ds_rbm *r = ds_rbm_new(&k, 8);
    CHECK(r != NULL);
    if (!r) return;
    ds_rng g;
    ds_rng_seed(&g, 3);
    float v0[5 * 6];
    for (int i = 0; i < n * V; i++)
        v0[i] = type == DS_RBM_GAUSSIAN ? ds_rng_normal(&g) : (ds_rng_uniform(&g) < 0.5f ? 1.0f : 0.0f);
    /* weights large enough that the sample and the phases matter */
    float *w = ds_rbm_weights(r), *b = ds_rbm_visible_bias(r), *c = ds_rbm_hidden_bias(r);
    for (int i = 0; i < V * H; i++) w[i] = ds_rng_normal(&g);
    for (int i = 0; i < V; i++) b[i] = 0.3f * ds_rng_normal(&g);
    for (int j = 0; j < H; j++) c[j] = 0.3f * ds_rng_normal(&g);
    float w0[24], b0[6], c0[4], qbar0[4] = {0.1f, 0.1f, 0.1f, 0.1f};
    memcpy(w0, w, sizeof w0), memcpy(b0, b, sizeof b0), memcpy(c0, c, sizeof c0);
    double ew[24], eb[6], ec[4];
    cd1_by_hand(&k, w0, b0, c0, qbar0, *ds_rbm_rng(r), v0, n, ew, eb, ec);
    double err = -1;
    CHECK(ds_rbm_update(r, v0, n, &err) == 0);
    CHECK(err >= 0);
    double worst = 0;
    for (int i = 0; i < V * H; i++) worst = fmax(worst, fabs(w[i] - ew[i]));
    for (int i = 0; i < V; i++) worst = fmax(worst, fabs(b[i] - eb[i]));
    for (int j = 0; j < H; j++) worst = fmax(worst, fabs(c[j] - ec[j]));
    CHECK_NEAR(worst, 0, 2e-5);
    ds_rbm_free(r);
}

/* log p(v) by summing exp(−E(v, h)) over every v and h */
static double brute_loglik(ds_rbm *r, const float *v, int n)
{
    const ds_rbm_cfg *k = ds_rbm_config(r);
    int V = k->visible, H = k->hidden;
    const float *w = ds_rbm_weights(r), *b = ds_rbm_visible_bias(r), *c = ds_rbm_hidden_bias(r);
    double z = 0, lp = 0;
    for (int vi = 0; vi < 1 << V; vi++)
        for (int hi = 0; hi < 1 << H; hi++) {
            double e = 0;
            for (int i = 0; i < V; i++) e += (vi >> i & 1) * b[i];
            for (int j = 0; j < H; j++) {
                if (!(hi >> j & 1)) continue;
                e += c[j];
                for (int i = 0; i < V; i++) e += (vi >> i & 1) * w[j * V + i];
            }
            z += exp(e);
        }
    for (int s = 0; s < n; s++) {
        double pv = 0;
        for (int hi = 0; hi < 1 << H; hi++) {
            double e = 0;
            for (int i = 0; i < V; i++) e += v[s * V + i] * b[i];
            for (int j = 0; j < H; j++) {
                if (!(hi >> j & 1)) continue;
                e += c[j];
                for (int i = 0; i < V; i++) e += v[s * V + i] * w[j * V + i];
            }
            pv += exp(e);
        }
        lp += log(pv) - log(z);
    }
    return lp / n;
}

static void test_exact_loglik(void)
{
    /* both enumerations (over h when H ≤ V, over v otherwise) against brute force */
    int shapes[2][2] = {{5, 3}, {3, 5}};
    for (int t = 0; t < 2; t++) {
        ds_rbm_cfg k = {.visible = shapes[t][0], .hidden = shapes[t][1], .lr = 0.1f, .seed = 11};
        ds_rbm *r = ds_rbm_new(&k, 4);
        ds_rng g;
        ds_rng_seed(&g, 5);
        int V = k.visible, H = k.hidden;
        for (int i = 0; i < V * H; i++) ds_rbm_weights(r)[i] = ds_rng_normal(&g);
        for (int i = 0; i < V; i++) ds_rbm_visible_bias(r)[i] = 0.5f * ds_rng_normal(&g);
        for (int j = 0; j < H; j++) ds_rbm_hidden_bias(r)[j] = 0.5f * ds_rng_normal(&g);
        float v[4 * 5];
        for (int i = 0; i < 4 * V; i++) v[i] = ds_rng_uniform(&g) < 0.5f ? 1.0f : 0.0f;
        double ll = 0;
        CHECK(ds_rbm_exact_loglik(r, v, 4, &ll) == 0);
        CHECK_NEAR(ll, brute_loglik(r, v, 4), 1e-6);
        ds_rbm_free(r);
    }
}

/* Bars-and-stripes-like patterns on 3x3 pixels: the exact log-likelihood
 * of the data rises as CD-1 (and PCD, CD-3) trains a 9→6 RBM. */
static void test_learning(int k_steps, int persistent)
{
    float data[8][9] = {{1, 1, 1, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 1, 1, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 1, 1},
                        {1, 0, 0, 1, 0, 0, 1, 0, 0}, {0, 1, 0, 0, 1, 0, 0, 1, 0}, {0, 0, 1, 0, 0, 1, 0, 0, 1},
                        {1, 1, 1, 1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1, 1, 1, 1}};
    /* persistent chains need a smaller rate (they must mix as the model moves) */
    ds_rbm_cfg k = {.visible = 9, .hidden = 6, .k = k_steps, .persistent = persistent,
                    .lr = persistent ? 0.03f : 0.1f, .momentum = 0.5f, .seed = 1};
    ds_rbm *r = ds_rbm_new(&k, 8);
    double before = 0, after = 0, e0 = 0, e1 = 0;
    CHECK(ds_rbm_exact_loglik(r, &data[0][0], 8, &before) == 0);
    CHECK(ds_rbm_update(r, &data[0][0], 8, &e0) == 0);
    for (int it = 0; it < 2000; it++) CHECK(ds_rbm_update(r, &data[0][0], 8, &e1) == 0);
    CHECK(ds_rbm_exact_loglik(r, &data[0][0], 8, &after) == 0);
    fprintf(stderr, "rbm 9->6 CD-%d%s: exact log-likelihood %.3f -> %.3f, reconstruction error %.3f -> %.3f\n",
            k_steps, persistent ? " (PCD)" : "", before, after, e0, e1);
    CHECK(after > before + 1.0);
    CHECK(e1 < e0);
    ds_rbm_free(r);
}

static void test_gaussian(void)
{
    /* Gaussian visible units: the likelihood (hidden enumeration, closed-form
     * integral over v) rises on two clusters */
    ds_rbm_cfg k = {.visible = 4, .hidden = 3, .visible_type = DS_RBM_GAUSSIAN, .lr = 0.01f, .momentum = 0.5f,
                    .seed = 2};
    ds_rbm *r = ds_rbm_new(&k, 16);
    ds_rng g;
    ds_rng_seed(&g, 9);
    float v[16 * 4];
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < 4; i++) v[s * 4 + i] = (s % 2 ? 1.5f : -1.5f) * (i < 2 ? 1 : -1) + 0.3f * ds_rng_normal(&g);
    double before = 0, after = 0;
    CHECK(ds_rbm_exact_loglik(r, v, 16, &before) == 0);
    for (int it = 0; it < 3000; it++) CHECK(ds_rbm_update(r, v, 16, NULL) == 0);
    CHECK(ds_rbm_exact_loglik(r, v, 16, &after) == 0);
    fprintf(stderr, "gaussian rbm 4->3: exact log-likelihood %.3f -> %.3f\n", before, after);
    CHECK(after > before + 0.5);
    /* Gibbs sampling runs and stays finite */
    float s[4 * 4] = {0};
    CHECK(ds_rbm_gibbs(r, s, 4, 10) == 0);
    for (int i = 0; i < 16; i++) CHECK(isfinite(s[i]));
    ds_rbm_free(r);
}

/* an inf put into W is reported, with and without momentum: with binary
 * data and a sparse hidden layer the products skip the zeros of v0 and h,
 * so no 0·inf = NaN reaches the hidden biases (σ(inf) = 1 is finite), and
 * the check has to look at W itself */
static void test_inf_weight(void)
{
    for (int mom = 0; mom < 2; mom++) {
        ds_rbm_cfg k = {.visible = 40, .hidden = 24, .lr = 0.1f, .momentum = mom ? 0.5f : 0, .seed = 3};
        ds_rbm *r = ds_rbm_new(&k, 8);
        float v[8 * 40];
        for (int i = 0; i < 8 * 40; i++) v[i] = (float)(i % 7 == 0 || i % 5 == 1);
        for (int j = 0; j < 24; j++) ds_rbm_hidden_bias(r)[j] = -2; /* h sparse too (~12 % ones) */
        CHECK(ds_rbm_update(r, v, 8, NULL) == 0);
        ds_rbm_weights(r)[5 * 40 + 13] = INFINITY;
        CHECK(ds_rbm_update(r, v, 8, NULL) != 0);
        CHECK(strstr(ds_last_error(), "diverged") != NULL);
        ds_rbm_free(r);
    }
}

static void test_bad_input(void)
{
    ds_rbm_cfg k = {.visible = 3, .hidden = 2, .lr = 0.1f};
    ds_rbm *r = ds_rbm_new(&k, 2);
    float v[6] = {0, 1, 0, 1, NAN, 0};
    CHECK(ds_rbm_update(r, v, 2, NULL) != 0);
    CHECK(strstr(ds_last_error(), "not finite") != NULL);
    CHECK(ds_rbm_update(r, v, 3, NULL) != 0); /* more rows than max_batch */
    CHECK(strstr(ds_last_error(), "batch") != NULL);
    ds_rbm_free(r);
    ds_rbm_cfg bad = {.visible = 0, .hidden = 2, .lr = 0.1f};
    CHECK(ds_rbm_new(&bad, 2) == NULL);
    ds_rbm_cfg bad_lr = {.visible = 2, .hidden = 2, .lr = 0};
    CHECK(ds_rbm_new(&bad_lr, 2) == NULL);
    ds_rbm_cfg big = {.visible = 30, .hidden = 30, .lr = 0.1f};
    ds_rbm *r2 = ds_rbm_new(&big, 1);
    float v2[30] = {0};
    double ll;
    CHECK(ds_rbm_exact_loglik(r2, v2, 1, &ll) != 0); /* 2^30 configurations */
    ds_rbm_free(r2);
}

/* the vectorised σ (hidden_probs with W = 0 gives σ(c)) against
 * 1/(1 + e^−x) in double: within 1e-6 absolute and 5e-7 relative from
 * −100 to 100, 0 and 1 at ∓inf, NaN kept; 37 units: a vector tail too */
static void test_sigmoid(void)
{
    enum { H = 37, N = 2000 };
    ds_rbm *r = ds_rbm_new(&(ds_rbm_cfg){.visible = 1, .hidden = H, .k = 1, .lr = 0.1f, .seed = 1}, 1);
    CHECK(r != NULL);
    if (!r) return;
    for (int j = 0; j < H; j++) ds_rbm_weights(r)[j] = 0;
    float v = 0, q[H], *c = ds_rbm_hidden_bias(r);
    double worst = 0;
    for (int t = 0; t < N; t += H) {
        for (int j = 0; j < H; j++) c[j] = -100.0f + 200.0f * (float)(t + j) / N;
        CHECK(ds_rbm_hidden_probs(r, &v, 1, q) == 0);
        for (int j = 0; j < H; j++) {
            double e = 1.0 / (1.0 + exp(-(double)c[j]));
            worst = fmax(worst, fabs(q[j] - e) - 5e-7 * e); /* the absolute error past 5e-7 relative */
        }
    }
    CHECK(worst <= 1e-6);
    c[0] = INFINITY, c[1] = -INFINITY, c[2] = NAN, c[3] = 0;
    CHECK(ds_rbm_hidden_probs(r, &v, 1, q) == 0);
    CHECK(q[0] == 1 && q[1] == 0 && isnan(q[2]) && q[3] == 0.5f);
    ds_rbm_free(r);
}

int main(void)
{
    test_sigmoid();
    test_cd1(DS_RBM_BERNOULLI);
    test_cd1(DS_RBM_GAUSSIAN);
    test_exact_loglik();
    test_learning(1, 0);
    test_learning(1, 1);
    test_learning(3, 0);
    test_gaussian();
    test_bad_input();
    test_inf_weight();
    return ds_test_summary("rbm");
}
