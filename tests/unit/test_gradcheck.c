/* test_gradcheck.c — finite-difference check of every op's backward, with
 * respect to every input and parameter, on odd sizes, strides and padding. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static ds_graph *G;
static ds_rng R;

static ds_node *in(const char *name, ds_shape s)
{
    ds_node *n = ds_input(G, name, s);
    ds_node_set_requires_grad(n, 1);
    return n;
}

static ds_node *par(const char *name, ds_shape s)
{
    return ds_param(G, name, s, (ds_init){DS_INIT_UNIFORM, -1, 1});
}

static ds_node *node(const char *name) { return ds_graph_find(G, name); }

/* Values well away from 0, so no element sits within eps of a kink. */
static void away_from_zero(ds_node *n)
{
    float *v = ds_node_value(n);
    for (size_t i = 0; i < ds_node_numel(n); i++) v[i] = (v[i] < 0 ? -0.1f : 0.1f) + 0.9f * v[i];
}

/* Distinct values 0.02 apart in random order: no near-ties inside a max window. */
static void distinct(ds_node *n)
{
    size_t e = ds_node_numel(n);
    int *p = malloc(e * sizeof *p);
    for (size_t i = 0; i < e; i++) p[i] = (int)i;
    ds_rng_shuffle(&R, p, (int)e);
    for (size_t i = 0; i < e; i++) ds_node_value(n)[i] = 0.02f * (float)p[i] - 0.01f * (float)e;
    free(p);
}

static int begin(void)
{
    G = ds_graph_new(7);
    return 0;
}

/* Compile, fill every input/parameter with U(−1, 1) and return 1 on success. */
static int compile_fill(const char *what)
{
    if (ds_graph_compile(G) != 0) {
        fprintf(stderr, "%s: compile failed: %s\n", what, ds_last_error());
        CHECK(0);
        return 0;
    }
    for (int i = 0; i < ds_graph_num_nodes(G); i++) {
        ds_node *n = ds_graph_node(G, i);
        const char *op = ds_node_op(n);
        if (!strcmp(op, "input") || !strcmp(op, "param"))
            ds_test_fill(ds_node_value(n), ds_node_numel(n), -1, 1, &R);
    }
    return 1;
}

static void check(const char *what, ds_node *out, float eps, double tol)
{
    ds_node *wrt[32];
    int k = 0;
    for (int i = 0; i < ds_graph_num_nodes(G) && k < 32; i++) {
        ds_node *n = ds_graph_node(G, i);
        const char *op = ds_node_op(n);
        if ((!strcmp(op, "input") || !strcmp(op, "param")) && ds_node_grad(n)) wrt[k++] = n;
    }
    double err = ds_gradcheck(G, out, wrt, k, eps, tol, 60);
    if (err > 1) fprintf(stderr, "gradcheck %s: worst error %.3g x tol\n", what, err);
    else printf("ok   %-44s (%d inputs, worst %.2f x tol)\n", what, k, err);
    CHECK(err <= 1);
    ds_graph_free(G);
    G = NULL;
}

#define S ds_shape_of
#define CASE(what, build, fix, eps)                 \
    do {                                            \
        begin();                                    \
        ds_node *out = (build);                     \
        if (out && compile_fill(what)) {            \
            fix;                                    \
            check(what, out, eps, 1e-2);            \
        } else {                                    \
            fprintf(stderr, "%s: %s\n", what, ds_last_error()); \
            CHECK(0);                               \
            ds_graph_free(G);                       \
        }                                           \
    } while (0)

int main(void)
{
    ds_rng_seed(&R, 42);
    ds_conv_opt c0 = {0};

    CASE("matmul [3,5]x[5,4]", ds_matmul(G, in("a", S(2, 3, 5)), in("b", S(2, 5, 4))), (void)0, 1e-2f);
    CASE("linear x[3,2,3,2] W[4,12] b[4]",
         ds_linear(G, in("x", S(4, 3, 2, 3, 2)), par("w", S(2, 4, 12)), par("b", S(1, 4))), (void)0, 1e-2f);
    CASE("linear no bias", ds_linear(G, in("x", S(2, 5, 7)), par("w", S(2, 3, 7)), NULL), (void)0, 1e-2f);

    CASE("add same shape", ds_add(G, in("a", S(2, 3, 4)), in("b", S(2, 3, 4))), (void)0, 1e-2f);
    CASE("add bias broadcast [2,3,4,5]+[3,1,1]",
         ds_add(G, in("a", S(4, 2, 3, 4, 5)), in("b", S(3, 3, 1, 1))), (void)0, 1e-2f);
    CASE("sub broadcast [4,1]-[1,5]", ds_sub(G, in("a", S(2, 4, 1)), in("b", S(2, 1, 5))), (void)0, 1e-2f);
    CASE("sub same shape", ds_sub(G, in("a", S(1, 7)), in("b", S(1, 7))), (void)0, 1e-2f);
    CASE("mul broadcast [2,3,5]*[5]", ds_mul(G, in("a", S(3, 2, 3, 5)), in("b", S(1, 5))), (void)0, 1e-2f);
    CASE("mul same shape", ds_mul(G, in("a", S(2, 3, 3)), in("b", S(2, 3, 3))), (void)0, 1e-2f);

    CASE("conv2d 3x2 stride 2 pad 1",
         ds_conv2d(G, in("x", S(4, 2, 3, 7, 6)), par("w", S(4, 4, 3, 3, 2)), par("b", S(1, 4)),
                   (ds_conv_opt){.stride = {2, 2}, .pad = {1, 1}}),
         (void)0, 1e-2f);
    CASE("conv2d groups 2 dilation 2 stride 1,2 no bias",
         ds_conv2d(G, in("x", S(4, 2, 4, 8, 7)), par("w", S(4, 6, 2, 3, 3)), NULL,
                   (ds_conv_opt){.stride = {1, 2}, .pad = {2, 1}, .dilation = {2, 2}, .groups = 2}),
         (void)0, 1e-2f);
    CASE("conv2d 1x1", ds_conv2d(G, in("x", S(4, 2, 3, 4, 5)), par("w", S(4, 5, 3, 1, 1)), par("b", S(1, 5)), c0),
         (void)0, 1e-2f);
    CASE("conv2d 5x5 pad 2 (LeNet)",
         ds_conv2d(G, in("x", S(4, 2, 2, 9, 9)), par("w", S(4, 3, 2, 5, 5)), par("b", S(1, 3)),
                   (ds_conv_opt){.pad = {2, 2}}),
         (void)0, 1e-2f);
    CASE("conv_transpose2d stride 2 pad 1 outpad 1",
         ds_conv_transpose2d(G, in("x", S(4, 2, 4, 4, 3)), par("w", S(4, 4, 3, 3, 3)), par("b", S(1, 3)),
                             (ds_conv_opt){.stride = {2, 2}, .pad = {1, 1}, .output_padding = {1, 1}}),
         (void)0, 1e-2f);
    CASE("conv_transpose2d groups 2 4x3 kernel",
         ds_conv_transpose2d(G, in("x", S(4, 2, 4, 3, 5)), par("w", S(4, 4, 3, 4, 3)), NULL,
                             (ds_conv_opt){.stride = {2, 1}, .groups = 2}),
         (void)0, 1e-2f);

    CASE("maxpool2d 3x3 stride 2 pad 1",
         ds_maxpool2d(G, in("x", S(4, 2, 3, 7, 7)), (ds_pool_opt){.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}}),
         distinct(node("x")), 1e-3f);
    CASE("maxpool2d 2x2", ds_maxpool2d(G, in("x", S(4, 2, 2, 6, 5)), (ds_pool_opt){.kernel = {2, 2}}),
         distinct(node("x")), 1e-3f);
    CASE("avgpool2d 3x3 stride 2 pad 1",
         ds_avgpool2d(G, in("x", S(4, 2, 3, 7, 6)), (ds_pool_opt){.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}}),
         (void)0, 1e-2f);
    CASE("avgpool2d 2x3", ds_avgpool2d(G, in("x", S(4, 2, 2, 6, 7)), (ds_pool_opt){.kernel = {2, 3}}),
         (void)0, 1e-2f);
    CASE("global_avgpool", ds_global_avgpool(G, in("x", S(4, 2, 3, 5, 4))), (void)0, 1e-2f);

    CASE("relu", ds_relu(G, in("x", S(3, 3, 4, 5))), away_from_zero(node("x")), 1e-3f);
    CASE("leaky_relu 0.1", ds_leaky_relu(G, in("x", S(2, 6, 7)), 0.1f), away_from_zero(node("x")), 1e-3f);
    CASE("elu 1.0", ds_elu(G, in("x", S(2, 6, 7)), 1.0f), away_from_zero(node("x")), 1e-3f);
    CASE("sigmoid", ds_sigmoid(G, in("x", S(2, 6, 7))), (void)0, 1e-2f);
    CASE("tanh", ds_tanh(G, in("x", S(2, 6, 7))), (void)0, 1e-2f);
    CASE("softplus (incl. x > 20)", ds_softplus(G, in("x", S(2, 6, 7))),
         do { float *v = ds_node_value(node("x")); v[0] = 25; v[1] = -25; } while (0), 1e-2f);
    CASE("softmax [3,5]", ds_softmax(G, in("x", S(2, 3, 5))), (void)0, 1e-2f);
    CASE("softmax [2,4,3,3] over channels", ds_softmax(G, in("x", S(4, 2, 4, 3, 3))), (void)0, 1e-2f);
    CASE("log_softmax [3,5]", ds_log_softmax(G, in("x", S(2, 3, 5))), (void)0, 1e-2f);
    CASE("log_softmax [2,4,3,3]", ds_log_softmax(G, in("x", S(4, 2, 4, 3, 3))), (void)0, 1e-2f);

    CASE("dropout 0.3 (train)", ds_dropout(G, in("x", S(2, 8, 9)), 0.3f), (void)0, 1e-2f);
    CASE("dropout (eval)", ds_dropout(G, in("x", S(2, 8, 9)), 0.3f), ds_graph_set_training(G, 0), 1e-2f);

    CASE("batchnorm train [4,3,3,3]",
         ds_batchnorm(G, in("x", S(4, 4, 3, 3, 3)), par("g", S(1, 3)), par("b", S(1, 3)),
                      ds_buffer(G, "rm", S(1, 3), (ds_init){DS_INIT_ZEROS, 0, 0}),
                      ds_buffer(G, "rv", S(1, 3), (ds_init){DS_INIT_ONES, 0, 0}), 0.1f, 1e-5f),
         (void)0, 1e-2f);
    CASE("batchnorm train [5,4]",
         ds_batchnorm(G, in("x", S(2, 5, 4)), par("g", S(1, 4)), par("b", S(1, 4)),
                      ds_buffer(G, "rm", S(1, 4), (ds_init){DS_INIT_ZEROS, 0, 0}),
                      ds_buffer(G, "rv", S(1, 4), (ds_init){DS_INIT_ONES, 0, 0}), 0.1f, 1e-5f),
         (void)0, 1e-2f);
    CASE("batchnorm eval [3,2,4,4]",
         ds_batchnorm(G, in("x", S(4, 3, 2, 4, 4)), par("g", S(1, 2)), par("b", S(1, 2)),
                      ds_buffer(G, "rm", S(1, 2), (ds_init){DS_INIT_CONSTANT, 0.3f, 0}),
                      ds_buffer(G, "rv", S(1, 2), (ds_init){DS_INIT_CONSTANT, 2.0f, 0}), 0.1f, 1e-5f),
         ds_graph_set_training(G, 0), 1e-2f);

    CASE("concat 3 inputs on channels",
         ds_concat(G, 3, (ds_node *[]){in("a", S(4, 2, 1, 3, 3)), in("b", S(4, 2, 3, 3, 3)), in("c", S(4, 2, 2, 3, 3))}),
         (void)0, 1e-2f);
    CASE("reshape [2,3,4] -> [0,4,-1]", ds_reshape(G, in("x", S(3, 2, 3, 4)), S(3, 0, 4, -1)), (void)0, 1e-2f);
    CASE("flatten [2,3,2,2]", ds_flatten(G, in("x", S(4, 2, 3, 2, 2))), (void)0, 1e-2f);

    float cw[5] = {1, 2, 0.5f, 1, 3};
    CASE("softmax_cross_entropy",
         ds_softmax_cross_entropy(G, in("z", S(2, 6, 5)), ds_input(G, "y", S(1, 6)), NULL),
         do { float *y = ds_node_value(node("y")); for (int i = 0; i < 6; i++) y[i] = (float)(i % 5); } while (0),
         1e-2f);
    CASE("softmax_cross_entropy class weights",
         ds_softmax_cross_entropy(G, in("z", S(2, 6, 5)), ds_input(G, "y", S(1, 6)), cw),
         do { float *y = ds_node_value(node("y")); for (int i = 0; i < 6; i++) y[i] = (float)((i * 3) % 5); } while (0),
         1e-2f);
    CASE("bce_with_logits (logits and targets)", ds_bce_with_logits(G, in("z", S(2, 4, 3)), in("t", S(2, 4, 3))),
         (void)0, 1e-2f);
    CASE("mse (both inputs)", ds_mse(G, in("p", S(2, 4, 3)), in("t", S(2, 4, 3))), (void)0, 1e-2f);

    /* composed: a small CNN, through layer builders */
    begin();
    {
        ds_node *x = in("x", S(4, 3, 1, 8, 8));
        ds_node *h = ds_relu(G, ds_nn_conv2d(G, "c1", x, 4, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){0}, 1));
        h = ds_nn_batchnorm(G, "bn", h);
        h = ds_maxpool2d(G, h, (ds_pool_opt){.kernel = {2, 2}});
        h = ds_nn_dense(G, "fc", h, 3, (ds_init){0}, 1);
        ds_node *loss = ds_softmax_cross_entropy(G, h, ds_input(G, "y", S(1, 3)), NULL);
        if (compile_fill("small cnn")) {
            float *y = ds_node_value(node("y"));
            y[0] = 0, y[1] = 2, y[2] = 1;
            check("small cnn (conv, bn, relu, pool, dense, CE)", loss, 1e-2f, 2e-2);
        }
    }
    /* added after the composed case, so that its random data stays what it was */
    CASE("instancenorm [3,2,4,5]", ds_instancenorm(G, in("x", S(4, 3, 2, 4, 5)), 1e-5f), (void)0, 1e-2f);
    return ds_test_summary("gradcheck");
}
