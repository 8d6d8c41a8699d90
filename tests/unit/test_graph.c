/* test_graph.c — graph behaviour: shape errors that name the node and both
 * shapes, misuse of the API, batch resizing, train/eval, several outputs,
 * input gradients and seed reproducibility. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define S ds_shape_of
#define HAS(msg, s) (strstr((msg), (s)) != NULL)

static void expect_error(const char *what, ds_node *n, const char *const *needles)
{
    const char *e = ds_last_error();
    int ok = n == NULL;
    for (int i = 0; needles[i]; i++) ok &= HAS(e, needles[i]);
    if (!ok) fprintf(stderr, "%s: unexpected error text: '%s'\n", what, e);
    else printf("ok   %s: %s\n", what, e);
    CHECK(ok);
}

static void shape_errors(void)
{
    ds_graph *g = ds_graph_new(1);
    ds_init def = {0};
    ds_node *x = ds_input(g, "x", S(4, 2, 3, 8, 8));
    ds_node *w = ds_param(g, "w", S(2, 10, 5), def);
    expect_error("linear mismatch", ds_linear(g, x, w, NULL),
                 (const char *[]){"linear", "[2, 3, 8, 8]", "'x'", "'w'", "[10, 5]", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    x = ds_input(g, "x", S(4, 2, 3, 8, 8));
    ds_node *cw = ds_param(g, "conv.weight", S(4, 6, 4, 3, 3), def);
    expect_error("conv channels", ds_conv2d(g, x, cw, NULL, (ds_conv_opt){0}),
                 (const char *[]){"conv2d", "[2, 3, 8, 8]", "[6, 4, 3, 3]", "'conv.weight'", NULL});
    /* a failed build call poisons the graph: compile repeats the first error */
    CHECK(ds_relu(g, NULL) == NULL);
    CHECK(ds_graph_compile(g) != 0);
    CHECK(HAS(ds_last_error(), "conv2d") && HAS(ds_last_error(), "[6, 4, 3, 3]"));
    ds_graph_free(g);

    g = ds_graph_new(1);
    ds_node *a = ds_input(g, "a", S(2, 2, 3)), *b = ds_input(g, "b", S(1, 4));
    expect_error("broadcast", ds_add(g, a, b), (const char *[]){"add", "[2, 3]", "[4]", "'a'", "'b'", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    a = ds_input(g, "a", S(4, 2, 3, 5, 5));
    b = ds_input(g, "b", S(4, 2, 3, 4, 5));
    expect_error("concat", ds_concat(g, 2, (ds_node *[]){a, b}),
                 (const char *[]){"concat", "[2, 3, 5, 5]", "[2, 3, 4, 5]", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    a = ds_input(g, "a", S(2, 2, 6));
    expect_error("reshape", ds_reshape(g, a, S(2, 5, -1)), (const char *[]){"reshape", "[2, 6]", "12", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    a = ds_input(g, "a", S(4, 1, 1, 3, 3));
    expect_error("pool too big", ds_maxpool2d(g, a, (ds_pool_opt){.kernel = {5, 5}}),
                 (const char *[]){"maxpool2d", "5x5", "[1, 1, 3, 3]", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    a = ds_input(g, "a", S(2, 3, 4));
    expect_error("dropout p = 1", ds_dropout(g, a, 1.0f), (const char *[]){"dropout", "p = 1", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    a = ds_input(g, "logits", S(2, 3, 4));
    b = ds_input(g, "labels", S(1, 2));
    expect_error("CE labels", ds_softmax_cross_entropy(g, a, b, NULL),
                 (const char *[]){"'labels'", "[2]", "[3, 4]", NULL});
    ds_graph_free(g);

    g = ds_graph_new(1);
    ds_input(g, "a", S(1, 3));
    expect_error("duplicate name", ds_input(g, "a", S(1, 3)), (const char *[]){"duplicate", "'a'", NULL});
    ds_graph_free(g);
}

static void misuse_and_runtime_errors(void)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *z = ds_input(g, "z", S(2, 4, 3)), *y = ds_input(g, "y", S(1, 4));
    ds_node_set_requires_grad(z, 1);
    ds_node *loss = ds_softmax_cross_entropy(g, z, y, NULL);
    CHECK(ds_graph_forward(g) != 0 && HAS(ds_last_error(), "compile"));
    CHECK(ds_graph_compile(g) == 0);
    expect_error("add after compile", ds_relu(g, z), (const char *[]){"compiled", NULL});
    float *yv = ds_node_value(y);
    yv[0] = 0, yv[1] = 1, yv[2] = 7, yv[3] = 2;
    CHECK(ds_graph_forward(g) != 0);
    CHECK(HAS(ds_last_error(), "label 7") && HAS(ds_last_error(), "row 2"));
    yv[2] = 1;
    CHECK(ds_graph_forward(g) == 0);
    CHECK(ds_graph_backward(g, z, NULL) != 0 && HAS(ds_last_error(), "dout"));
    CHECK(ds_graph_set_batch(g, 5) != 0 && HAS(ds_last_error(), "1..4"));
    CHECK(ds_graph_set_batch(g, 0) != 0);
    (void)loss;
    ds_graph_free(g);
}

/* A short batch gives the same rows as the full batch. */
static void batch_resize(void)
{
    ds_graph *g = ds_graph_new(3);
    ds_node *x = ds_input(g, "x", S(4, 8, 2, 6, 6));
    ds_node *h = ds_nn_conv2d(g, "c", x, 3, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){0}, 1);
    h = ds_nn_batchnorm(g, "bn", ds_relu(g, h));
    ds_node *out = ds_nn_dense(g, "fc", ds_maxpool2d(g, h, (ds_pool_opt){.kernel = {2, 2}}), 5, (ds_init){0}, 1);
    CHECK(ds_graph_compile(g) == 0);
    ds_graph_set_training(g, 0);
    ds_rng r;
    ds_rng_seed(&r, 1);
    ds_test_fill(ds_node_value(x), ds_node_numel(x), -1, 1, &r);
    CHECK(ds_graph_forward(g) == 0);
    float full[8 * 5];
    memcpy(full, ds_node_value(out), sizeof full);
    CHECK(ds_graph_set_batch(g, 3) == 0);
    CHECK(ds_node_shape(out).d[0] == 3 && ds_node_shape(x).d[0] == 3);
    CHECK(ds_graph_forward(g) == 0);
    CHECK(memcmp(full, ds_node_value(out), 3 * 5 * sizeof(float)) == 0);
    CHECK(ds_graph_set_batch(g, 8) == 0 && ds_node_shape(out).d[0] == 8);
    ds_graph_free(g);
}

/* Two heads on one trunk; input gradients for saliency. */
static void multi_output_and_input_grad(void)
{
    ds_graph *g = ds_graph_new(4);
    ds_node *x = ds_input(g, "x", S(2, 3, 4));
    ds_node_set_requires_grad(x, 1);
    ds_node *h = ds_tanh(g, ds_nn_dense(g, "trunk", x, 6, (ds_init){0}, 1));
    ds_node *a = ds_nn_dense(g, "head_a", h, 2, (ds_init){0}, 1);
    ds_node *b = ds_nn_dense(g, "head_b", h, 1, (ds_init){0}, 1);
    ds_node *ta = ds_input(g, "ta", S(2, 3, 2)), *tb = ds_input(g, "tb", S(2, 3, 1));
    ds_node *la = ds_mse(g, a, ta), *lb = ds_mse(g, b, tb);
    CHECK(ds_graph_compile(g) == 0);
    CHECK(ds_graph_find(g, "head_b.weight") != NULL && ds_graph_find(g, "trunk.bias") != NULL);
    ds_rng r;
    ds_rng_seed(&r, 2);
    ds_test_fill(ds_node_value(x), 12, -1, 1, &r);
    CHECK(ds_graph_forward(g) == 0);
    ds_graph_zero_grad(g);
    CHECK(ds_graph_backward(g, la, NULL) == 0);
    float *dhb = ds_node_grad(ds_graph_find(g, "head_b.weight"));
    double s = 0, sx = 0;
    for (int i = 0; i < 6; i++) s += fabs(dhb[i]);
    for (int i = 0; i < 12; i++) sx += fabs(ds_node_grad(x)[i]);
    CHECK(s == 0);  /* head_b does not feed la */
    CHECK(sx > 0);  /* d la / d x flows to the input */
    CHECK(ds_graph_backward(g, lb, NULL) == 0);
    for (int i = 0; i < 6; i++) s += fabs(dhb[i]);
    CHECK(s > 0);
    double d1 = ds_gradcheck(g, a, (ds_node *[]){x}, 1, 1e-2f, 1e-2, 12);
    CHECK(d1 <= 1);
    ds_graph_free(g);
}

/* The same seed gives the same run (init and dropout); another seed differs. */
static float run_seed(uint64_t seed, float *w_out)
{
    ds_graph *g = ds_graph_new(seed);
    ds_node *x = ds_input(g, "x", S(2, 8, 10)), *y = ds_input(g, "y", S(1, 8));
    ds_node *h = ds_dropout(g, ds_relu(g, ds_nn_dense(g, "fc1", x, 16, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 1)), 0.5f);
    ds_node *loss = ds_softmax_cross_entropy(g, ds_nn_dense(g, "fc2", h, 3, (ds_init){DS_INIT_XAVIER_UNIFORM, 0, 0}, 1), y, NULL);
    ds_graph_compile(g);
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 1e-2f};
    ds_optim *o = ds_optim_new(g, &cfg);
    ds_rng r;
    ds_rng_seed(&r, 9);
    ds_test_fill(ds_node_value(x), 80, -1, 1, &r);
    for (int i = 0; i < 8; i++) ds_node_value(y)[i] = (float)(i % 3);
    for (int s = 0; s < 5; s++) {
        ds_graph_zero_grad(g);
        ds_graph_forward(g);
        ds_graph_backward(g, loss, NULL);
        ds_optim_step(o);
    }
    memcpy(w_out, ds_node_value(ds_graph_find(g, "fc1.weight")), 160 * sizeof(float));
    float l = ds_node_value(loss)[0];
    ds_optim_free(o);
    ds_graph_free(g);
    return l;
}

static void reproducible(void)
{
    float w1[160], w2[160], w3[160];
    float l1 = run_seed(11, w1), l2 = run_seed(11, w2), l3 = run_seed(12, w3);
    CHECK(l1 == l2 && memcmp(w1, w2, sizeof w1) == 0);
    CHECK(memcmp(w1, w3, sizeof w1) != 0 && l1 != l3);
}

/* Each initialiser's bounds / moments on a [256, 128, 3, 3] weight
 * (fan_in = 1152, fan_out = 2304). */
static void initialisers(void)
{
    struct { ds_init init; double bound, std; } cases[] = {
        {{DS_INIT_ZEROS, 0, 0}, 0, 0},
        {{DS_INIT_ONES, 0, 0}, 1, 0},
        {{DS_INIT_CONSTANT, 0.25f, 0}, 0.25, 0},
        {{DS_INIT_UNIFORM, -0.5f, 0.5f}, 0.5, 1 / sqrt(12.0)},
        {{DS_INIT_NORMAL, 0, 0.2f}, 0, 0.2},
        {{DS_INIT_DEFAULT, 0, 0}, 1 / sqrt(1152.0), 1 / sqrt(1152.0 * 3)},
        {{DS_INIT_XAVIER_UNIFORM, 0, 0}, sqrt(6.0 / 3456), sqrt(2.0 / 3456)},
        {{DS_INIT_XAVIER_NORMAL, 0, 0}, 0, sqrt(2.0 / 3456)},
        {{DS_INIT_HE_UNIFORM, 0, 0}, sqrt(6.0 / 1152), sqrt(2.0 / 1152)},
        {{DS_INIT_HE_NORMAL, 0, 0}, 0, sqrt(2.0 / 1152)},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        ds_graph *g = ds_graph_new(c);
        ds_node *w = ds_param(g, "w", S(4, 256, 128, 3, 3), cases[c].init);
        ds_input(g, "x", S(1, 1));
        CHECK(ds_graph_compile(g) == 0);
        const float *v = ds_node_value(w);
        size_t n = ds_node_numel(w);
        double sum = 0, sq = 0, mx = 0;
        for (size_t i = 0; i < n; i++) {
            sum += v[i];
            sq += (double)v[i] * v[i];
            mx = fmax(mx, fabs(v[i]));
        }
        double mean = sum / n, std = sqrt(sq / n - mean * mean);
        int kind = cases[c].init.kind;
        if (kind == DS_INIT_ZEROS || kind == DS_INIT_ONES || kind == DS_INIT_CONSTANT) {
            CHECK(mx == cases[c].bound && std < 1e-6);
        } else {
            CHECK_NEAR(std, cases[c].std, 0.01 * cases[c].std);
            CHECK(fabs(mean) < 0.01 * cases[c].std + 1e-4);
            if (cases[c].bound > 0) CHECK(mx <= cases[c].bound && mx > 0.99 * cases[c].bound);
        }
        ds_graph_free(g);
    }
}

/* ds_graph_plan_inference: the same outputs from a fraction of the memory;
 * a kept node keeps its value; no gradients; planning after compile fails. */
static ds_node *small_cnn(ds_graph *g, ds_node **x, ds_node **mid)
{
    *x = ds_input(g, "x", S(4, 16, 3, 32, 32));
    ds_node *h = ds_nn_conv2d(g, "c1", *x, 8, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){0}, 1);
    h = ds_relu(g, h);
    *mid = h;
    h = ds_nn_conv2d(g, "c2", h, 8, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){0}, 1);
    h = ds_relu(g, h);
    h = ds_maxpool2d(g, h, (ds_pool_opt){.kernel = {2, 2}});
    h = ds_nn_conv2d(g, "c3", h, 8, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){0}, 1);
    h = ds_relu(g, h);
    return ds_nn_dense(g, "fc", h, 10, (ds_init){0}, 1);
}

static void inference_plan(void)
{
    ds_graph *a = ds_graph_new(7), *b = ds_graph_new(7);
    ds_node *xa, *xb, *ma, *mb, *ya = small_cnn(a, &xa, &ma), *yb = small_cnn(b, &xb, &mb);
    ds_node_keep(mb);
    CHECK(ds_graph_plan_inference(b) == 0);
    CHECK(ds_graph_compile(a) == 0 && ds_graph_compile(b) == 0);
    CHECK(ds_graph_plan_inference(b) != 0 && HAS(ds_last_error(), "before compiling"));
    ds_rng r;
    ds_rng_seed(&r, 3);
    ds_test_fill(ds_node_value(xa), ds_node_numel(xa), -1, 1, &r);
    memcpy(ds_node_value(xb), ds_node_value(xa), ds_node_numel(xa) * sizeof(float));
    ds_graph_set_training(a, 0);
    ds_graph_set_training(b, 0);
    CHECK(ds_graph_forward(a) == 0 && ds_graph_forward(b) == 0);
    CHECK(memcmp(ds_node_value(ya), ds_node_value(yb), ds_node_numel(ya) * sizeof(float)) == 0);
    CHECK(memcmp(ds_node_value(ma), ds_node_value(mb), ds_node_numel(ma) * sizeof(float)) == 0);
    CHECK(ds_node_grad(yb) == NULL);
    size_t full = ds_graph_arena_bytes(a), planned = ds_graph_arena_bytes(b);
    printf("ok   inference plan: same outputs, arena %zu -> %zu bytes\n", full, planned);
    CHECK(planned * 4 < full * 3); /* no gradients, and activations share slots */
    ds_graph_free(a);
    ds_graph_free(b);
}

/* issue 12: the arena is planned without allocating (info prints it), and
 * an arena over the memory limit is refused with both numbers before it is
 * allocated. */
static void memory_plan(void)
{
    for (int inference = 0; inference < 2; inference++) {
        ds_graph *g = ds_graph_new(7);
        ds_node *x, *mid;
        small_cnn(g, &x, &mid);
        if (inference) CHECK(ds_graph_plan_inference(g) == 0);
        size_t plan = 0;
        CHECK(ds_graph_plan_bytes(g, &plan) == 0 && plan > 0);
        CHECK(ds_node_value(x) == NULL && ds_graph_arena_bytes(g) == 0); /* nothing allocated */
        CHECK(ds_graph_compile(g) == 0 && ds_graph_arena_bytes(g) == plan);
        ds_graph_free(g);
    }
    ds_graph *g = ds_graph_new(7);
    ds_node *x, *mid;
    small_cnn(g, &x, &mid);
    setenv("DS_MEMORY_LIMIT", "100K", 1);
    CHECK(ds_memory_limit() == 100000);
    CHECK(ds_graph_compile(g) == -1 && HAS(ds_last_error(), "GB of memory at batch 16") &&
          HAS(ds_last_error(), "DS_MEMORY_LIMIT is 0.0001 GB"));
    CHECK(ds_graph_arena_bytes(g) == 0 && ds_node_value(x) == NULL);
    unsetenv("DS_MEMORY_LIMIT");
    CHECK(ds_memory_limit() > 100000);
    CHECK(ds_graph_compile(g) == 0);
    ds_graph_free(g);
}

/* max pool 2x2/2 with NaN (the vectorised path on AVX-512): a NaN wins its
 * window, the last one in reading order takes the gradient (as in torch) */
static void maxpool_nan(void)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", S(4, 1, 1, 2, 4));
    ds_node_set_requires_grad(x, 1);
    ds_node *y = ds_maxpool2d(g, x, (ds_pool_opt){.kernel = {2, 2}});
    CHECK(y && ds_graph_compile(g) == 0);
    float in[8] = {1, NAN, NAN, 5, 3, 2, NAN, 0};
    memcpy(ds_node_value(x), in, sizeof in);
    CHECK(ds_graph_forward(g) == 0);
    const float *v = ds_node_value(y);
    CHECK(isnan(v[0]) && isnan(v[1]));
    float one[2] = {1, 1};
    CHECK(ds_graph_backward(g, y, one) == 0);
    const float *d = ds_node_grad(x);
    float want[8] = {0, 1, 0, 0, 0, 0, 1, 0};
    CHECK(memcmp(d, want, sizeof want) == 0);
    printf("ok   maxpool NaN: NaN wins, gradient to the last NaN of each window\n");
    ds_graph_free(g);
}

int main(void)
{
    initialisers();
    shape_errors();
    misuse_and_runtime_errors();
    batch_resize();
    multi_output_and_input_grad();
    reproducible();
    inference_plan();
    memory_plan();
    maxpool_nan();
    return ds_test_summary("graph");
}
