/* test_conv_few.c — dx into few channels by pixel lanes (ds_conv_few,
 * src/ops/conv_thin.c) against the explicit im2col path (DS_CONV_ALGO=im2col)
 * at 1e-5 relative error: one to four input channels, 3×3, 5×5 and 7×7
 * kernels, padding from none to k − 1 (and unequal), widths below one
 * vector, of one and a half and above two (a second 32-pixel tile), rows
 * not a multiple of the 4-row tile; x read by two convolutions, so the
 * second dx accumulates; and ds_conv_few's forward (no flip) against
 * plain loops. */
#include "harness.h"
#include "internal.h"
#include "../../src/ops/conv_thin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* dx of y = conv(x) (+ conv2(x) when twice) under the current DS_CONV_ALGO */
static float *conv_dx(int mb, int c, int h, int w, int k, int ks, int ph, int pw, int twice)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, mb, c, h, w));
    ds_node_set_requires_grad(x, 1);
    ds_conv_opt o = {.pad = {ph, pw}};
    ds_node *y = ds_nn_conv2d(g, "conv", x, k, ks, o, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 1);
    if (twice) y = ds_add(g, y, ds_nn_conv2d(g, "conv2", x, k, ks, o, (ds_init){DS_INIT_HE_NORMAL, 0, 0}, 0));
    CHECK(ds_test_mse_step(g, x, y, 7) == 0);
    float *out = ds_test_dup(ds_node_grad(x), ds_node_numel(x));
    ds_graph_free(g);
    return out;
}

int main(void)
{
    /* batch, channels in, h, w, channels out, kernel, pads, twice */
    const int cases[][9] = {
        {3, 1, 28, 28, 32, 5, 2, 2, 0}, {2, 3, 9, 7, 5, 3, 1, 1, 0},  {2, 4, 11, 37, 6, 7, 3, 3, 0},
        {2, 2, 12, 12, 3, 5, 0, 0, 1},  {1, 1, 4, 40, 8, 3, 0, 0, 0}, {2, 1, 13, 70, 4, 5, 1, 2, 1},
        {1, 2, 6, 5, 2, 7, 6, 6, 0},    {5, 1, 1, 1, 1, 3, 1, 1, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        const int *q = cases[t];
        unsetenv("DS_CONV_ALGO");
        float *fast = conv_dx(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8]);
        setenv("DS_CONV_ALGO", "im2col", 1);
        float *ref = conv_dx(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8]);
        unsetenv("DS_CONV_ALGO");
        size_t e = (size_t)q[0] * q[1] * q[2] * q[3];
        double err = ds_test_rel_err(fast, ref, e);
        if (!(err < 1e-5)) printf("case %zu: relative error %g\n", t, err);
        CHECK(err < 1e-5);
        free(fast), free(ref);
    }
#if defined(__AVX512F__)
    /* the forward form (w as [oc][c][kh][kw], no flip), accumulated, against loops */
    {
        const int n = 2, c = 3, h = 10, w = 35, oc = 4, kh = 5, kw = 3, ph = 2, pw = 1;
        const int oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1;
        size_t ni = (size_t)n * c * h * w, nw = (size_t)oc * c * kh * kw, no = (size_t)n * oc * oh * ow;
        float *in = malloc(ni * sizeof *in), *wt = malloc(nw * sizeof *wt), *y = malloc(no * sizeof *y),
              *ref = malloc(no * sizeof *ref);
        for (size_t i = 0; i < ni; i++) in[i] = (float)((i * 37) % 23) / 11 - 1;
        for (size_t i = 0; i < nw; i++) wt[i] = (float)((i * 13) % 17) / 8 - 1;
        for (size_t i = 0; i < no; i++) y[i] = ref[i] = (float)(i % 5);
        for (int s = 0; s < n; s++)
            for (int o = 0; o < oc; o++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double acc = 0;
                        for (int ci = 0; ci < c; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++) {
                                    int iy = oy + i - ph, ix = ox + j - pw;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                        acc += (double)in[(((size_t)s * c + ci) * h + iy) * w + ix] *
                                               wt[(((size_t)o * c + ci) * kh + i) * kw + j];
                                }
                        ref[(((size_t)s * oc + o) * oh + oy) * ow + ox] += (float)acc;
                    }
        ds_conv_few(in, wt, y, n, c, h, w, oc, kh, kw, ph, pw, oh, ow, 0, 1);
        double err = ds_test_rel_err(y, ref, no);
        CHECK(err < 1e-5);
        free(in), free(wt), free(y), free(ref);
    }
#endif
    return ds_test_summary("conv_few");
}
