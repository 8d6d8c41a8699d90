/* test_reshape_view.c — a reshape whose input nothing else reads is a view
 * (it shares the input's value and gradient buffers; shape.c, graph.c's
 * fuse_relus): the values and every gradient equal, exactly, those of the
 * same graph compiled without fusion (where reshape copies), also over two
 * backward passes, a reshape of a reshape, a reshape whose input has a
 * second consumer (no view), a reshape of a leaf, and a reshape that is
 * the output itself. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define NX (4 * 12)

/* x [4, 12] → linear 12→24 (+ relu) → reshape [4, 6, 2, 2] → tanh (or, with `second`, plus the linear's output
 * again: the reshape's input has two consumers) → reshape [4, 24] → reshape [4, 24] of the leaf x·2 too; out the
 * sum of both through mse against 0 (or the last reshape itself when `out_is_view`) */
static int run(int fuse, int second, int out_is_view, float *y, float *dx, float *dw, int *views)
{
    ds_graph *g = ds_graph_new(3);
    ds_node *x = ds_input(g, "x", ds_shape_of(2, 4, 12));
    ds_node_set_requires_grad(x, 1);
    ds_node *w = ds_param(g, "w", ds_shape_of(2, 24, 12), (ds_init){DS_INIT_UNIFORM, -1, 1});
    ds_node *b = ds_param(g, "b", ds_shape_of(1, 24), (ds_init){DS_INIT_UNIFORM, -1, 1});
    ds_node *h = ds_relu(g, ds_linear(g, x, w, b));
    ds_node *r1 = ds_reshape(g, h, ds_shape_of(4, 4, 6, 2, 2));
    ds_node *t = ds_tanh(g, r1);
    if (second) t = ds_add(g, t, ds_reshape(g, ds_tanh(g, h), ds_shape_of(4, 4, 6, 2, 2)));
    ds_node *r2 = ds_reshape(g, ds_reshape(g, t, ds_shape_of(2, 4, 24)), ds_shape_of(2, 4, 24));
    ds_node *lx = ds_reshape(g, x, ds_shape_of(2, 4, 12)); /* of a leaf: a copy */
    ds_node *sum = ds_add(g, r2, ds_reshape(g, ds_linear(g, lx, w, NULL), ds_shape_of(2, 4, 24)));
    ds_node *out = out_is_view ? ds_reshape(g, sum, ds_shape_of(3, 4, 4, 6)) : sum;
    if (!fuse) ds_graph_set_fusion(g, 0);
    if (!out || ds_graph_compile(g)) {
        fprintf(stderr, "build failed: %s\n", ds_last_error());
        ds_graph_free(g);
        return -1;
    }
    *views = ds_node_value(r1) == ds_node_value(h);
    ds_rng r;
    ds_rng_seed(&r, 3);
    ds_test_fill(ds_node_value(x), NX, -1, 1, &r);
    ds_test_fill(ds_node_value(w), ds_node_numel(w), -1, 1, &r);
    ds_test_fill(ds_node_value(b), 24, -1, 1, &r);
    float dout[96];
    ds_test_fill(dout, 96, -1, 1, &r);
    int rc = ds_graph_forward(g);
    if (!rc) memcpy(y, ds_node_value(out), 96 * sizeof *y);
    for (int k = 0; k < 2 && !rc; k++) rc = ds_graph_backward(g, out, dout);
    if (!rc) {
        memcpy(dx, ds_node_grad(x), NX * sizeof *dx);
        memcpy(dw, ds_node_grad(w), 24 * 12 * sizeof *dw);
    }
    ds_graph_free(g);
    return rc;
}

int main(void)
{
    for (int second = 0; second < 2; second++)
        for (int ov = 0; ov < 2; ov++) {
            float y[2][96], dx[2][NX], dw[2][288];
            int views[2];
            for (int f = 0; f < 2; f++) CHECK(run(f, second, ov, y[f], dx[f], dw[f], &views[f]) == 0);
            CHECK(views[0] == 0);
            CHECK(views[1] == !second); /* the linear's output read twice: a copy */
            CHECK(!memcmp(y[0], y[1], sizeof y[0]));
            CHECK(!memcmp(dx[0], dx[1], sizeof dx[0]));
            CHECK(!memcmp(dw[0], dw[1], sizeof dw[0]));
        }
    return ds_test_summary("reshape_view");
}
