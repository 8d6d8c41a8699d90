/* test_fuse_pool.c — a relu fused into its conv and read only by a max pool
 * is masked by the pool's backward (its own pass skipped): every gradient
 * (input, weights, bias) equals the unfused graph's exactly, for 2x2/2 and
 * 3x3/2 pad 1 windows; under guided backprop the relu masks itself again. */
#include "harness.h"
#include "internal.h"

#include <string.h>

#define MB 3

static ds_graph *net(int fuse, ds_pool_opt po, ds_node **x, ds_node **loss, ds_node **pool)
{
    ds_graph *g = ds_graph_new(7);
    *x = ds_input(g, "x", ds_shape_of(4, MB, 2, 9, 8));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, MB));
    ds_node *h = ds_relu(g, ds_nn_conv2d(g, "conv", *x, 4, 3, (ds_conv_opt){.pad = {1, 1}},
                                         (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 1));
    h = *pool = ds_maxpool2d(g, h, po);
    ds_node *z = ds_nn_dense(g, "fc", ds_flatten(g, h), 3, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 1);
    *loss = ds_softmax_cross_entropy(g, z, y, NULL);
    ds_node_set_requires_grad(*x, 1);
    if (!fuse) ds_graph_set_fusion(g, 0);
    CHECK(ds_graph_compile(g) == 0);
    ds_rng r;
    ds_rng_seed(&r, 9);
    float *xv = ds_node_value(*x), *yv = ds_node_value(y);
    for (size_t i = 0; i < ds_node_numel(*x); i++) xv[i] = ds_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < MB; i++) yv[i] = (float)(i % 3);
    ds_graph_set_training(g, 1);
    return g;
}

static int same(ds_graph *a, ds_graph *b, const char *name)
{
    ds_node *p = ds_graph_find(a, name), *q = ds_graph_find(b, name);
    if (!p || !q) return 0;
    return memcmp(ds_node_grad(p), ds_node_grad(q), ds_node_numel(p) * sizeof(float)) == 0;
}

int main(void)
{
    ds_pool_opt win[2] = {{.kernel = {2, 2}}, {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}}};
    for (int w = 0; w < 2; w++)
        for (int rule = 0; rule < 2; rule++) {
            ds_node *x[2], *loss[2], *pool[2];
            ds_graph *g[2];
            for (int f = 0; f < 2; f++) {
                g[f] = net(f, win[w], &x[f], &loss[f], &pool[f]);
                if (rule) ds_graph_set_relu_backward(g[f], DS_RELU_BACKWARD_GUIDED);
                ds_graph_zero_grad(g[f]);
                CHECK(ds_graph_forward(g[f]) == 0 && ds_graph_backward(g[f], loss[f], NULL) == 0);
            }
            CHECK(pool[1]->relu_input_masked && !pool[0]->relu_input_masked); /* the path under test ran */
            CHECK(memcmp(ds_node_grad(x[0]), ds_node_grad(x[1]), ds_node_numel(x[0]) * sizeof(float)) == 0);
            CHECK(same(g[0], g[1], "conv.weight") && same(g[0], g[1], "conv.bias") && same(g[0], g[1], "fc.weight"));
            ds_graph_free(g[0]), ds_graph_free(g[1]);
        }
    return ds_test_summary("fuse_pool");
}
