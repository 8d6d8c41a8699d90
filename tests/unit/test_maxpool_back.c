/* test_maxpool_back.c — the 2x2/2 max pool's backward (written row by row
 * from the argmax, no zero fill and scatter): against a scalar reference of
 * the forward's rule (the first maximum wins, NaN wins), exactly, for a
 * gradient written fresh (the pool's input an intermediate value), one
 * accumulated (an input's gradient, two backward passes) and the input relu
 * masked by the pool (fused against unfused, bit for bit). Widths with a
 * tail (34 → 17 outputs: a whole vector and one lane), ties, −0 and NaN. */
#include "harness.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define N 2
#define C 3
#define H 6
#define W 34

static void fill(float *x, size_t n)
{
    ds_rng r;
    ds_rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++) {
        float u = ds_rng_uniform(&r);
        x[i] = u < 0.1f ? 0.25f : u < 0.15f ? -0.0f : u - 0.5f; /* ties of 0.25 and of −0/+0 */
    }
    x[7] = NAN; /* a NaN wins its window */
}

/* dx of y = maxpool(x) under dy, the forward's rule in scalar code */
static void reference(const float *x, const float *dy, float *dx)
{
    memset(dx, 0, sizeof(float) * N * C * H * W);
    for (int p = 0; p < N * C; p++)
        for (int oy = 0; oy < H / 2; oy++)
            for (int ox = 0; ox < W / 2; ox++) {
                const float *pl = x + (size_t)p * H * W;
                int best = 2 * oy * W + 2 * ox;
                float m = pl[best];
                int cand[3] = {best + 1, best + W, best + W + 1};
                for (int k = 0; k < 3; k++) {
                    float v = pl[cand[k]];
                    if (v > m || v != v) m = v, best = cand[k];
                }
                dx[(size_t)p * H * W + best] += dy[((size_t)p * (H / 2) + oy) * (W / 2) + ox];
            }
}

int main(void)
{
    size_t nx = (size_t)N * C * H * W, ny = nx / 4;
    static float xv[N * C * H * W], dy[N * C * H * W / 4], ref[N * C * H * W];
    fill(xv, nx);
    for (size_t i = 0; i < ny; i++) dy[i] = (float)((int)(i % 7) - 3) * 0.5f; /* some zeros, some negative */
    dy[3] = -0.0f;
    reference(xv, dy, ref);
    ds_pool_opt po = {.kernel = {2, 2}};

    /* accumulated: the pool reads an input that requires a gradient */
    {
        ds_graph *g = ds_graph_new(1);
        ds_node *x = ds_input(g, "x", ds_shape_of(4, N, C, H, W));
        ds_node *y = ds_maxpool2d(g, x, po);
        ds_node_set_requires_grad(x, 1);
        CHECK(ds_graph_compile(g) == 0);
        memcpy(ds_node_value(x), xv, sizeof xv);
        ds_graph_set_training(g, 1);
        ds_graph_zero_grad(g);
        CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, y, dy) == 0);
        CHECK(memcmp(ds_node_grad(x), ref, sizeof ref) == 0);
        CHECK(ds_graph_backward(g, y, dy) == 0); /* accumulates: ref + ref */
        int same = 1;
        for (size_t i = 0; i < nx; i++) same &= ds_node_grad(x)[i] == ref[i] + ref[i];
        CHECK(same);
        ds_graph_free(g);
    }
    /* fresh: the pool reads an intermediate value (x · 1) */
    {
        ds_graph *g = ds_graph_new(1);
        ds_node *x = ds_input(g, "x", ds_shape_of(4, N, C, H, W));
        ds_node *one = ds_input(g, "one", ds_shape_of(4, N, C, H, W));
        ds_node *y = ds_maxpool2d(g, ds_mul(g, x, one), po);
        ds_node_set_requires_grad(x, 1);
        CHECK(ds_graph_compile(g) == 0);
        memcpy(ds_node_value(x), xv, sizeof xv);
        for (size_t i = 0; i < nx; i++) ds_node_value(one)[i] = 1.0f;
        ds_graph_set_training(g, 1);
        ds_graph_zero_grad(g);
        CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, y, dy) == 0);
        int same = 1;
        for (size_t i = 0; i < nx; i++) same &= ds_node_grad(x)[i] == ref[i] * 1.0f + 0.0f;
        CHECK(same);
        ds_graph_free(g);
    }
    /* the input relu masked by the pool: fused and unfused agree bit for bit */
    {
        float *grad[2];
        static float keep[2][N * C * H * W];
        for (int f = 0; f < 2; f++) {
            ds_graph *g = ds_graph_new(1);
            ds_node *x = ds_input(g, "x", ds_shape_of(4, N, C, H, W));
            ds_node *one = ds_input(g, "one", ds_shape_of(4, N, C, H, W));
            ds_node *pool = ds_maxpool2d(g, ds_relu(g, ds_mul(g, x, one)), po);
            ds_node_set_requires_grad(x, 1);
            if (!f) ds_graph_set_fusion(g, 0);
            CHECK(ds_graph_compile(g) == 0);
            memcpy(ds_node_value(x), xv, sizeof xv);
            for (size_t i = 0; i < nx; i++) ds_node_value(one)[i] = 1.0f;
            ds_graph_set_training(g, 1);
            ds_graph_zero_grad(g);
            CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, pool, dy) == 0);
            if (f) CHECK(pool->relu_input_masked); /* the path under test ran */
            memcpy(keep[f], ds_node_grad(x), sizeof keep[f]);
            grad[f] = keep[f];
            ds_graph_free(g);
        }
        CHECK(memcmp(grad[0], grad[1], sizeof keep[0]) == 0);
    }
    return ds_test_summary("maxpool_back");
}
