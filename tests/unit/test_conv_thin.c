/* test_conv_thin.c — the thin-channel convolution helpers (src/ops/conv_thin.c)
 * against plain reference loops, exactly: dy's transpose for dW over channel
 * counts that fill 1, 1.5 and 4 vectors, one and two groups, pixel counts with
 * and without a 16-pixel tail; and a 16- and 32-channel convolution's dW
 * against the explicit im2col path (DS_CONV_ALGO=im2col) at 1e-4. */
#include "harness.h"
#include "internal.h"
#include "../../src/ops/conv_thin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
static void dyt_ref(const float *dy, float *dyt, int n, int oc, int ocg, int ocp, int groups, int ohw)
{
    for (int s = 0; s < n; s++)
        for (int gi = 0; gi < groups; gi++)
            for (int p = 0; p < ohw; p++)
                for (int o = 0; o < ocp; o++)
                    dyt[(((size_t)s * groups + gi) * ohw + p) * ocp + o] =
                        o < ocg ? dy[((size_t)s * oc + (size_t)gi * ocg + o) * ohw + p] : 0;
}
#endif

/* dW of a pad-1 3×3 convolution [mb, c, h, w] → k under the current DS_CONV_ALGO */
static float *conv_dw(int mb, int c, int h, int w, int k)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, mb, c, h, w));
    ds_node *y = ds_nn_conv2d(g, "conv", x, k, 3, (ds_conv_opt){.pad = {1, 1}}, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 0);
    CHECK(ds_test_mse_step(g, x, y, 5) == 0);
    ds_node *wn = ds_graph_find(g, "conv.weight");
    float *out = ds_test_dup(ds_node_grad(wn), ds_node_numel(wn));
    ds_graph_free(g);
    return out;
}

int main(void)
{
#if defined(__AVX512F__)
    const int shapes[][4] = {{16, 16, 1, 784}, {24, 24, 1, 49}, {32, 16, 2, 196}, {64, 64, 1, 7}, {64, 64, 1, 33}};
    for (int t = 0; t < 5; t++) {
        int oc = shapes[t][0], ocg = shapes[t][1], groups = shapes[t][2], ohw = shapes[t][3], n = 3;
        int ocp = (ocg + 15) / 16 * 16;
        size_t in = (size_t)n * oc * ohw, out = (size_t)n * groups * ohw * ocp;
        float *dy = malloc(in * sizeof *dy), *a = malloc(out * sizeof *a), *b = malloc(out * sizeof *b);
        for (size_t i = 0; i < in; i++) dy[i] = (float)i * 0.25f - 3;
        memset(a, 0x7f, out * sizeof *a);
        ds_conv_dyt(dy, a, n, oc, ocg, ocp, groups, ohw);
        dyt_ref(dy, b, n, oc, ocg, ocp, groups, ohw);
        CHECK(memcmp(a, b, out * sizeof *a) == 0);
        free(dy), free(a), free(b);
    }
#endif
    const int convs[][4] = {{4, 16, 9, 7}, {3, 32, 6, 5}};
    for (int t = 0; t < 2; t++) {
        const int *q = convs[t];
        unsetenv("DS_CONV_ALGO");
        float *fast = conv_dw(q[0], q[1], q[2], q[3], q[1]);
        setenv("DS_CONV_ALGO", "im2col", 1);
        float *ref = conv_dw(q[0], q[1], q[2], q[3], q[1]);
        unsetenv("DS_CONV_ALGO");
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)q[1] * q[1] * 9; i++)
            num += (fast[i] - ref[i]) * (double)(fast[i] - ref[i]), den += (double)ref[i] * ref[i];
        CHECK(sqrt(num / den) < 1e-4);
        free(fast), free(ref);
    }
    return ds_test_summary("conv_thin");
}
