/* test_fuse_bn_add.c — a batch norm read only by a residual add is applied
 * by the add (src/ops/bn_add.h): the block's output, every gradient (input,
 * conv weights, γ, β) and the running statistics equal the unfused graph's
 * exactly, with the batch norm as either input of the add, with and without
 * the relu, over two training steps' forward and backward; and an inference
 * plan (buffers reused) where a projection shortcut is computed between the
 * batch norm and the add, which still reads the batch norm's input. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MB 4

static ds_graph *net(int fuse, int order, int relu, ds_node **x, ds_node **loss, ds_node **add, ds_node **out)
{
    ds_graph *g = ds_graph_new(5);
    *x = ds_input(g, "x", ds_shape_of(4, MB, 16, 6, 5));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, MB));
    ds_node *h = ds_nn_conv2d(g, "conv", *x, 16, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 0);
    h = ds_nn_batchnorm(g, "bn", h);
    h = *add = order ? ds_add(g, *x, h) : ds_add(g, h, *x);
    if (relu) h = ds_relu(g, h);
    *out = h;
    ds_node *z = ds_nn_dense(g, "fc", ds_flatten(g, h), 3, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 1);
    *loss = ds_softmax_cross_entropy(g, z, y, NULL);
    ds_node_set_requires_grad(*x, 1);
    if (!fuse) ds_graph_set_fusion(g, 0);
    CHECK(ds_graph_compile(g) == 0);
    ds_rng r;
    ds_rng_seed(&r, 3);
    float *xv = ds_node_value(*x), *yv = ds_node_value(y);
    for (size_t i = 0; i < ds_node_numel(*x); i++) xv[i] = 2 * ds_rng_uniform(&r) - 1;
    for (int i = 0; i < MB; i++) yv[i] = (float)(i % 3);
    ds_graph_set_training(g, 1);
    return g;
}

static int same(ds_graph *a, ds_graph *b, const char *name, int grad)
{
    ds_node *p = ds_graph_find(a, name), *q = ds_graph_find(b, name);
    if (!p || !q) return 0;
    return memcmp(grad ? ds_node_grad(p) : ds_node_value(p), grad ? ds_node_grad(q) : ds_node_value(q),
                  ds_node_numel(p) * sizeof(float)) == 0;
}

/* eval: relu(bn(conv(x)) + bn2(conv2(x))), values planned for inference */
static void planned(void)
{
    float *out[2];
    for (int f = 0; f < 2; f++) {
        ds_graph *g = ds_graph_new(5);
        ds_node *x = ds_input(g, "x", ds_shape_of(4, MB, 16, 6, 5));
        ds_init he = {DS_INIT_HE_NORMAL, 0, 0};
        ds_node *h = ds_nn_batchnorm(g, "bn", ds_nn_conv2d(g, "conv", x, 16, 3, (ds_conv_opt){.pad = {1, 1}}, he, 0));
        ds_node *p = ds_nn_batchnorm(g, "bn2", ds_nn_conv2d(g, "proj", x, 16, 1, (ds_conv_opt){0}, he, 0));
        ds_node *y = ds_relu(g, ds_add(g, h, p));
        ds_node *z = ds_nn_dense(g, "fc", ds_flatten(g, ds_relu(g, ds_nn_conv2d(g, "c3", y, 16, 3,
                                                                                (ds_conv_opt){.pad = {1, 1}}, he, 0))),
                                 3, he, 1);
        if (!f) ds_graph_set_fusion(g, 0);
        CHECK(ds_graph_plan_inference(g) == 0 && ds_graph_compile(g) == 0);
        ds_node *rm = ds_graph_find(g, "bn.running_mean"), *rv = ds_graph_find(g, "bn.running_var");
        for (int c = 0; c < 16; c++) ds_node_value(rm)[c] = 0.1f * c, ds_node_value(rv)[c] = 1 + 0.05f * c;
        ds_rng r;
        ds_rng_seed(&r, 4);
        for (size_t i = 0; i < ds_node_numel(x); i++) ds_node_value(x)[i] = 2 * ds_rng_uniform(&r) - 1;
        ds_graph_set_training(g, 0);
        CHECK(ds_graph_forward(g) == 0);
        out[f] = malloc(ds_node_numel(z) * sizeof(float));
        memcpy(out[f], ds_node_value(z), ds_node_numel(z) * sizeof(float));
        CHECK(h->folded == (f == 1) && !p->folded);
        ds_graph_free(g);
    }
    CHECK(memcmp(out[0], out[1], MB * 3 * sizeof(float)) == 0);
    free(out[0]), free(out[1]);
}

int main(void)
{
    planned();
    const char *grads[] = {"conv.weight", "bn.weight", "bn.bias", "fc.weight"};
    const char *stats[] = {"bn.running_mean", "bn.running_var"};
    for (int order = 0; order < 2; order++)
        for (int relu = 0; relu < 2; relu++) {
            ds_node *x[2], *loss[2], *add[2], *out[2];
            ds_graph *g[2];
            for (int f = 0; f < 2; f++) {
                g[f] = net(f, order, relu, &x[f], &loss[f], &add[f], &out[f]);
                for (int step = 0; step < 2; step++) {
                    ds_graph_zero_grad(g[f]);
                    CHECK(ds_graph_forward(g[f]) == 0 && ds_graph_backward(g[f], loss[f], NULL) == 0);
                }
            }
            CHECK(add[1]->alias && add[1]->alias == add[1]->in[order] && !add[0]->alias); /* the path under test ran */
            CHECK(memcmp(ds_node_value(out[0]), ds_node_value(out[1]), ds_node_numel(out[0]) * sizeof(float)) == 0);
            CHECK(memcmp(ds_node_grad(x[0]), ds_node_grad(x[1]), ds_node_numel(x[0]) * sizeof(float)) == 0);
            for (int i = 0; i < 4; i++) CHECK(same(g[0], g[1], grads[i], 1));
            for (int i = 0; i < 2; i++) CHECK(same(g[0], g[1], stats[i], 0));
            ds_graph_free(g[0]), ds_graph_free(g[1]);
        }
    return ds_test_summary("fuse_bn_add");
}
