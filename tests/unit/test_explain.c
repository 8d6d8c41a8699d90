/* test_explain.c — the attribution maps of src/train/explain.c: integrated
 * gradients' completeness (Σ attr = F(x) − F(x') within 1 % at 64 steps),
 * saliency against finite differences of the logit, the guided-backprop and
 * deconvnet relu rules on a tiny net checked by hand, Grad-CAM's shape and
 * sign, batching that does not change a map, and bad arguments. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { MB = 8, C = 1, H = 8, W = 8, K = 3, SAMPLE = C * H * W };

typedef struct net {
    ds_graph *g;
    ds_program p;
    ds_node *x, *conv1, *relu1, *logits;
} net;

/* conv(4, 3×3, pad 1) → relu → maxpool 2 → conv(6, 3×3) → relu → dense 3
 * (smooth: softplus and average pooling), compiled without fusion with an
 * input gradient, a few Adam steps on random data (so that the weights are
 * not their initial ones) */
static void make_conv_net(net *n, int fuse, int smooth)
{
    memset(n, 0, sizeof *n);
    ds_graph *g = n->g = ds_graph_new(11);
    ds_init he = {DS_INIT_HE_NORMAL, 0, 0};
    n->x = ds_input(g, "x", ds_shape_of(4, MB, C, H, W));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, MB));
    ds_conv_opt pad1 = {.pad = {1, 1}};
    n->conv1 = ds_nn_conv2d(g, "conv1", n->x, 4, 3, pad1, he, 1);
    n->relu1 = smooth ? ds_softplus(g, n->conv1) : ds_relu(g, n->conv1);
    ds_pool_opt two = {.kernel = {2, 2}};
    ds_node *h = smooth ? ds_avgpool2d(g, n->relu1, two) : ds_maxpool2d(g, n->relu1, two);
    h = ds_nn_conv2d(g, "conv2", h, 6, 3, (ds_conv_opt){0}, he, 1);
    h = smooth ? ds_softplus(g, h) : ds_relu(g, h);
    n->logits = ds_nn_dense(g, "fc", ds_flatten(g, h), K, (ds_init){0}, 1);
    ds_node *loss = ds_softmax_cross_entropy(g, n->logits, y, NULL);
    ds_node_set_requires_grad(n->x, 1);
    if (!fuse) CHECK(ds_graph_set_fusion(g, 0) == 0);
    CHECK(ds_graph_compile(g) == 0);
    ds_program *p = &n->p;
    p->g = g, p->n_inputs = 1, p->n_feeds = 1, p->n_heads = 1;
    p->feeds[0] = n->x, p->feed_names[0] = "x", p->labels = y, p->loss = loss;
    p->heads[0] = (ds_head){.name = "output", .loss_kind = DS_LOSS_SOFTMAX, .weight = 1, .classes = K,
                            .out = n->logits, .target = y, .loss = loss};
    ds_optim *o = ds_optim_new(g, &(ds_optim_cfg){.kind = DS_ADAM, .lr = 1e-2f});
    ds_rng r;
    ds_rng_seed(&r, 5);
    ds_graph_set_training(g, 1);
    for (int step = 0; step < 10; step++) {
        float *xv = ds_node_value(n->x), *yv = ds_node_value(y);
        for (int i = 0; i < MB * SAMPLE; i++) xv[i] = ds_rng_uniform(&r);
        for (int i = 0; i < MB; i++) yv[i] = (float)ds_rng_below(&r, K);
        ds_graph_zero_grad(g);
        CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, loss, NULL) == 0 && ds_optim_step(o) == 0);
    }
    ds_optim_free(o);
}

/* the logit of class c for each of b raw rows (norm applied) */
static void logits_of(net *n, const ds_norm *norm, const float *x, int b, const float *cls, double *out)
{
    /* normalised here, in double as ds_norm_apply, into a batch of b rows */
    CHECK(ds_graph_set_batch(n->g, b) == 0);
    float *v = ds_node_value(n->x);
    for (int i = 0; i < b * SAMPLE; i++)
        v[i] = norm ? (float)(((double)x[i] - norm->mean[0]) / norm->std[0]) : x[i];
    CHECK(ds_graph_forward(n->g) == 0);
    const float *z = ds_node_value(n->logits);
    for (int r = 0; r < b; r++) out[r] = z[r * K + (int)cls[r]];
}

static void random_rows(float *x, int b, uint64_t seed)
{
    ds_rng r;
    ds_rng_seed(&r, seed);
    for (int i = 0; i < b * SAMPLE; i++) x[i] = ds_rng_uniform(&r);
}

static void test_names(void)
{
    for (int m = 0; m < DS_EXPLAIN_METHODS; m++) CHECK(ds_explain_method_parse(ds_explain_method_name(m)) == m);
    CHECK(ds_explain_method_parse("integrated-gradients") == DS_EXPLAIN_IG);
    CHECK(ds_explain_method_parse("nope") == -1);
    CHECK(ds_explain_method_parse(NULL) == -1);
}

/* Σ attr = F(x) − F(0) within 1 % at 64 steps (smooth: the midpoint
 * rule's error is O(1/steps²)), through a normalisation, for 5 rows (more
 * than fit in one batch with the path points). With relus and max pooling
 * F is piecewise linear along the path and the error O(1/steps): checked
 * within 1 % (+ 1e-3 for the rows where F hardly changes) at 1024 steps. */
static void test_ig_completeness(net *n, int steps, double floor)
{
    float mean = 0.3f, sd = 0.7f;
    ds_norm norm = {1, &mean, &sd};
    enum { B = 5 };
    float x[B * SAMPLE], attr[B * SAMPLE], zero[SAMPLE] = {0}, cls[B] = {0, 1, 2, 0, 1};
    random_rows(x, B, 21);
    ds_graph_set_training(n->g, 1);
    ds_explain_cfg c = {.method = DS_EXPLAIN_IG, .steps = steps};
    CHECK(ds_explain(&n->p, &norm, &c, x, B, cls, attr) == 0);
    CHECK(ds_graph_training(n->g) == 1); /* the mode is restored */
    ds_graph_set_training(n->g, 0);
    double fx[B], f0[B];
    logits_of(n, &norm, x, B, cls, fx);
    float zeros[B * SAMPLE] = {0};
    logits_of(n, &norm, zeros, B, cls, f0);
    for (int r = 0; r < B; r++) {
        double s = 0;
        for (int i = 0; i < SAMPLE; i++) s += attr[r * SAMPLE + i];
        double want = fx[r] - f0[r];
        if (!(fabs(s - want) <= 0.01 * fabs(want) + floor))
            fprintf(stderr, "row %d: sum %g, F(x) - F(0) = %g\n", r, s, want);
        CHECK(fabs(s - want) <= 0.01 * fabs(want) + floor);
    }
    /* an explicit zero baseline is the default; a row alone gives the same map */
    float one[SAMPLE];
    c.baseline = zero;
    CHECK(ds_explain(&n->p, &norm, &c, x + 3 * SAMPLE, 1, cls + 3, one) == 0);
    double d = 0;
    for (int i = 0; i < SAMPLE; i++) d = fmax(d, fabs(one[i] - attr[3 * SAMPLE + i]));
    CHECK(d < 1e-5);
    /* a baseline equal to x: no attribution */
    c.baseline = x;
    CHECK(ds_explain(&n->p, &norm, &c, x, 1, cls, one) == 0);
    d = 0;
    for (int i = 0; i < SAMPLE; i++) d = fmax(d, fabs(one[i]));
    CHECK(d == 0);
}

/* saliency = ∂logit/∂x against central differences; gradxinput = x ⊙ it;
 * smoothgrad with a negligible noise is the saliency */
static void test_saliency(net *n)
{
    float mean = 0.1f, sd = 2.0f;
    ds_norm norm = {1, &mean, &sd};
    enum { B = 2 };
    float x[B * SAMPLE], attr[B * SAMPLE], gxi[B * SAMPLE], sg[B * SAMPLE], cls[B] = {2, 1};
    random_rows(x, B, 33);
    CHECK(ds_explain(&n->p, &norm, &(ds_explain_cfg){.method = DS_EXPLAIN_SALIENCY}, x, B, cls, attr) == 0);
    CHECK(ds_explain(&n->p, &norm, &(ds_explain_cfg){.method = DS_EXPLAIN_GRADXINPUT}, x, B, cls, gxi) == 0);
    ds_explain_cfg sc = {.method = DS_EXPLAIN_SMOOTHGRAD, .samples = 5, .noise = 1e-7f, .seed = 1};
    CHECK(ds_explain(&n->p, &norm, &sc, x, B, cls, sg) == 0);
    ds_graph_set_training(n->g, 0);
    int bad = 0;
    for (int r = 0; r < B; r++)
        for (int i = 0; i < SAMPLE; i += 7) {
            float xp[SAMPLE], xm[SAMPLE];
            memcpy(xp, x + r * SAMPLE, sizeof xp), memcpy(xm, x + r * SAMPLE, sizeof xm);
            float h = 1e-2f;
            xp[i] += h, xm[i] -= h;
            double fp, fm;
            logits_of(n, &norm, xp, 1, cls + r, &fp);
            logits_of(n, &norm, xm, 1, cls + r, &fm);
            double fd = (fp - fm) / (2 * h), a = attr[r * SAMPLE + i];
            if (fabs(fd - a) > 2e-3 + 2e-2 * fabs(a)) bad++, fprintf(stderr, "row %d [%d]: %g vs fd %g\n", r, i, a, fd);
        }
    CHECK(bad <= 1); /* a difference across a relu's or a max's kink may differ */
    double dx = 0, ds = 0;
    for (int i = 0; i < B * SAMPLE; i++) {
        dx = fmax(dx, fabs(gxi[i] - x[i] * attr[i]));
        ds = fmax(ds, fabs(sg[i] - attr[i]));
    }
    CHECK(dx < 1e-6);
    CHECK(ds < 1e-4);
}

static void test_gradcam(net *n)
{
    enum { B = 3 };
    float x[B * SAMPLE], cam[B * H * W], map[B * H * W], cls[B] = {0, 1, 2};
    random_rows(x, B, 44);
    /* the default layer (the last 4-D output: conv2's relu) and conv1's relu */
    ds_node *layers[2] = {NULL, n->relu1};
    for (int l = 0; l < 2; l++) {
        ds_explain_cfg c = {.method = DS_EXPLAIN_GRADCAM, .layer = layers[l]};
        for (int i = 0; i < B * H * W; i++) cam[i] = -1;
        CHECK(ds_explain(&n->p, NULL, &c, x, B, cls, cam) == 0);
        int neg = 0, pos = 0;
        for (int i = 0; i < B * H * W; i++) neg += !(cam[i] >= 0), pos += cam[i] > 0;
        CHECK(neg == 0);
        CHECK(pos > 0);
        CHECK(ds_explain_map(DS_EXPLAIN_GRADCAM, cam, B, ds_shape_of(3, C, H, W), map) == 0);
        CHECK(memcmp(cam, map, sizeof map) == 0);
    }
    /* not a 4-D layer: the logits */
    ds_explain_cfg c = {.method = DS_EXPLAIN_GRADCAM, .layer = n->logits};
    CHECK(ds_explain(&n->p, NULL, &c, x, B, cls, cam) == -1);
    CHECK(strstr(ds_last_error(), "fc") != NULL || strstr(ds_last_error(), "conv layer") != NULL);
}

static void test_maps(void)
{
    /* [2 channels, 1, 2]: max |a| over channels, or the signed sum */
    float a[4] = {1, -3, -2, 0.5f}, m[2];
    ds_shape s = ds_shape_of(3, 2, 1, 2);
    CHECK(ds_explain_map(DS_EXPLAIN_SALIENCY, a, 1, s, m) == 0);
    CHECK(m[0] == 2 && m[1] == 3);
    CHECK(ds_explain_map(DS_EXPLAIN_IG, a, 1, s, m) == 0);
    CHECK(m[0] == -1 && m[1] == -2.5f);
    CHECK(ds_explain_map(42, a, 1, s, m) == -1);
}

/* h = relu(W1 x), z = W2 h, no biases: with x = (1, 0.5), W1 x = (0.5,
 * 2.5, −0.5) so the relu passes units 0 and 1; class 0's row of W2 is
 * (1, −2, 3). Saliency: W1ᵀ (1, −2, 0) = (−3, −3); guided backprop keeps
 * the positive gradient of the passing units: W1ᵀ (1, 0, 0) = (1, −1);
 * deconvnet the positive gradient whatever the forward: W1ᵀ (1, 0, 3) =
 * (−2, 2). */
static void test_relu_rules(int fuse)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", ds_shape_of(2, 2, 2)), *y = ds_input(g, "y", ds_shape_of(1, 2));
    ds_node *h = ds_relu(g, ds_nn_dense(g, "fc1", x, 3, (ds_init){0}, 0));
    ds_node *z = ds_nn_dense(g, "fc2", h, 2, (ds_init){0}, 0);
    ds_node *loss = ds_softmax_cross_entropy(g, z, y, NULL);
    ds_node_set_requires_grad(x, 1);
    if (!fuse) ds_graph_set_fusion(g, 0);
    CHECK(ds_graph_compile(g) == 0);
    const float w1[6] = {1, -1, 2, 1, -1, 1}, w2[6] = {1, -2, 3, 0, 1, 0};
    memcpy(ds_node_value(ds_graph_find(g, "fc1.weight")), w1, sizeof w1);
    memcpy(ds_node_value(ds_graph_find(g, "fc2.weight")), w2, sizeof w2);
    ds_program p = {.g = g, .n_inputs = 1, .n_feeds = 1, .n_heads = 1, .labels = y, .loss = loss};
    p.feeds[0] = x, p.feed_names[0] = "x";
    p.heads[0] = (ds_head){.name = "output", .loss_kind = DS_LOSS_SOFTMAX, .weight = 1, .classes = 2, .out = z,
                           .target = y, .loss = loss};
    float xs[2] = {1, 0.5f}, cls[1] = {0}, a[2];
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_SALIENCY}, xs, 1, cls, a) == 0);
    CHECK(a[0] == -3 && a[1] == -3);
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_GUIDED}, xs, 1, cls, a) == 0);
    CHECK(a[0] == 1 && a[1] == -1);
    int rc = ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_DECONVNET}, xs, 1, cls, a);
    if (fuse && rc != 0) CHECK(strstr(ds_last_error(), "fusion") != NULL); /* refused, not wrong */
    else CHECK(rc == 0 && a[0] == -2 && a[1] == 2);
    /* the rule was restored: the plain gradient again */
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_SALIENCY}, xs, 1, cls, a) == 0);
    CHECK(a[0] == -3 && a[1] == -3);
    /* gradcam on a net without a 4-D layer; an unknown method; a bad class */
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_GRADCAM}, xs, 1, cls, a) == -1);
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = 99}, xs, 1, cls, a) == -1);
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_SALIENCY}, xs, 1, (float[]){5}, a) == -1);
    CHECK(ds_explain(&p, NULL, &(ds_explain_cfg){.method = DS_EXPLAIN_IG, .steps = -1}, xs, 1, cls, a) == -1);
    ds_graph_free(g);
}

int main(void)
{
    test_names();
    test_maps();
    net n;
    make_conv_net(&n, 0, 1);
    test_ig_completeness(&n, 64, 1e-6);
    ds_graph_free(n.g);
    make_conv_net(&n, 0, 0);
    test_ig_completeness(&n, 1024, 1e-3);
    test_saliency(&n);
    test_gradcam(&n);
    ds_graph_free(n.g);
    test_relu_rules(0);
    test_relu_rules(1);
    return ds_test_summary("explain");
}
