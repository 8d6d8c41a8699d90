/* test_conv_s2.c — the AVX-512 passes of strided convolutions and of
 * transposed convolutions (the DCGAN's 4×4 stride 2: the transposed forward
 * and the strided dx by phases, the transposed dx by the ocv tile, dW of
 * both by dwv with 4-wide kernels) against the explicit im2col reference
 * (DS_CONV_ALGO=im2col): forward, dx and dW on odd sizes, padding 0, 1 and 2,
 * output padding, channel counts that are not multiples of 16, groups,
 * dilation 2, batch 1, with and without a bias; every case again with the
 * stride-1 passes pinned to the padded-width grid (DS_CONV_ALGO=flat,
 * ds_conv_flat) against the same reference; and a leaky relu fused into the
 * convolution against the unfused graph (exactly equal). The error is max |a − ref| / max |ref|
 * per tensor; tolerance 1e-5 (both sum the same products in float, in
 * another order; measured worst in the output below). On a build without
 * AVX-512 both runs take the reference path and agree exactly. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int transposed, n, c, h, w, k, ks, stride, pad, opad, groups, bias, dil;
} conv_case;

/* y, dx and dW of one case under DS_CONV_ALGO=algo (NULL: the default choice) */
static int run(const conv_case *t, const char *algo, float **y, float **dx, float **dw, size_t *ny, size_t *nx,
               size_t *nw)
{
    if (algo) setenv("DS_CONV_ALGO", algo, 1);
    else unsetenv("DS_CONV_ALGO");
    ds_graph *g = ds_graph_new(3);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, t->n, t->c, t->h, t->w));
    ds_node_set_requires_grad(x, 1);
    int gr = t->groups ? t->groups : 1;
    ds_shape ws = t->transposed ? ds_shape_of(4, t->c, t->k / gr, t->ks, t->ks)
                                : ds_shape_of(4, t->k, t->c / gr, t->ks, t->ks);
    ds_node *w = ds_param(g, "w", ws, (ds_init){DS_INIT_UNIFORM, -1, 1});
    ds_node *b = t->bias ? ds_param(g, "b", ds_shape_of(1, t->k), (ds_init){DS_INIT_UNIFORM, -1, 1}) : NULL;
    ds_conv_opt o = {.stride = {t->stride, t->stride}, .pad = {t->pad, t->pad}, .groups = gr,
                     .output_padding = {t->opad, t->opad}, .dilation = {t->dil, t->dil}};
    ds_node *out = t->transposed ? ds_conv_transpose2d(g, x, w, b, o) : ds_conv2d(g, x, w, b, o);
    if (!out || ds_graph_compile(g)) {
        fprintf(stderr, "build failed: %s\n", ds_last_error());
        ds_graph_free(g);
        unsetenv("DS_CONV_ALGO");
        return -1;
    }
    ds_rng r;
    ds_rng_seed(&r, 5);
    ds_test_fill(ds_node_value(x), ds_node_numel(x), -1, 1, &r);
    ds_test_fill(ds_node_value(w), ds_node_numel(w), -1, 1, &r);
    if (b) ds_test_fill(ds_node_value(b), ds_node_numel(b), -1, 1, &r);
    *ny = ds_node_numel(out), *nx = ds_node_numel(x), *nw = ds_node_numel(w);
    float *dout = malloc(*ny * sizeof *dout);
    ds_test_fill(dout, *ny, -1, 1, &r);
    int rc = ds_graph_forward(g);
    *y = malloc(*ny * sizeof **y);
    if (!rc) memcpy(*y, ds_node_value(out), *ny * sizeof **y);
    /* twice: the second backward adds to dW (parameters accumulate) */
    if (!rc) rc = ds_graph_backward(g, out, dout);
    if (!rc) rc = ds_graph_backward(g, out, dout);
    *dx = malloc(*nx * sizeof **dx), *dw = malloc(*nw * sizeof **dw);
    if (!rc) {
        memcpy(*dx, ds_node_grad(x), *nx * sizeof **dx);
        memcpy(*dw, ds_node_grad(w), *nw * sizeof **dw);
    }
    free(dout);
    ds_graph_free(g);
    unsetenv("DS_CONV_ALGO");
    return rc;
}

/* conv2d → leaky_relu(0.2) (fused into the convolution unless `fuse` is 0) → y; dx, dW */
static int run_leaky(int fuse, const char *algo, int stride, float *y, float *dx, float *dw)
{
    if (algo) setenv("DS_CONV_ALGO", algo, 1);
    ds_graph *g = ds_graph_new(3);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, 3, 16, 9, 10));
    ds_node_set_requires_grad(x, 1);
    ds_node *w = ds_param(g, "w", ds_shape_of(4, 32, 16, 4, 4), (ds_init){DS_INIT_UNIFORM, -1, 1});
    ds_node *c = ds_conv2d(g, x, w, NULL, (ds_conv_opt){.stride = {stride, stride}, .pad = {1, 1}});
    ds_node *out = ds_leaky_relu(g, c, 0.2f);
    if (!fuse) ds_graph_set_fusion(g, 0);
    int rc = out && !ds_graph_compile(g) ? 0 : -1;
    if (!rc) CHECK((ds_node_value(out) == ds_node_value(c)) == fuse); /* shares the conv's value when fused */
    ds_rng r;
    ds_rng_seed(&r, 9);
    if (!rc) {
        ds_test_fill(ds_node_value(x), ds_node_numel(x), -1, 1, &r);
        ds_test_fill(ds_node_value(w), ds_node_numel(w), -1, 1, &r);
    }
    size_t ny = rc ? 0 : ds_node_numel(out);
    float *dout = malloc((ny + 1) * sizeof *dout);
    ds_test_fill(dout, ny, -1, 1, &r);
    if (!rc) rc = ds_graph_forward(g);
    if (!rc) memcpy(y, ds_node_value(out), ny * sizeof *y);
    if (!rc) rc = ds_graph_backward(g, out, dout);
    if (!rc) {
        memcpy(dx, ds_node_grad(x), ds_node_numel(x) * sizeof *dx);
        memcpy(dw, ds_node_grad(w), ds_node_numel(w) * sizeof *dw);
    }
    free(dout);
    ds_graph_free(g);
    unsetenv("DS_CONV_ALGO");
    return rc;
}

int main(void)
{
    /* transposed, n, c (input channels), h, w, k (output channels), kernel, stride, pad, output_padding, groups,
     * bias, dilation (0: 1) */
    const conv_case cases[] = {
        /* the DCGAN's layers (models/dcgan-fashion.cfg), batch 1 and 5 */
        {1, 5, 64, 7, 7, 32, 4, 2, 1, 0, 1, 0, 0}, {1, 1, 32, 14, 14, 1, 4, 2, 1, 0, 1, 0, 0},
        {0, 5, 1, 28, 28, 32, 4, 2, 1, 0, 1, 0, 0}, {0, 1, 32, 14, 14, 64, 4, 2, 1, 0, 1, 0, 0},
        /* odd sizes, padding 0 and 2, output padding, bias; channel counts not multiples of 16 that
         * the AVX-512 tile takes (30, 28, 60) and ones it leaves to the reference (17, 20, 33) */
        {1, 3, 30, 5, 9, 28, 4, 2, 1, 1, 1, 1, 0}, {1, 2, 33, 6, 5, 60, 4, 2, 0, 0, 1, 1, 0},
        {1, 1, 16, 3, 4, 17, 4, 2, 2, 1, 1, 0, 0}, {1, 2, 20, 5, 5, 16, 3, 2, 1, 0, 1, 1, 0},
        {1, 3, 28, 6, 7, 30, 4, 1, 1, 0, 1, 1, 0}, {1, 2, 32, 4, 5, 32, 5, 3, 2, 2, 1, 0, 0},
        {0, 3, 30, 15, 13, 28, 4, 2, 1, 0, 1, 1, 0}, {0, 1, 60, 9, 11, 33, 4, 2, 0, 0, 1, 0, 0},
        {0, 2, 18, 10, 9, 16, 4, 2, 2, 0, 1, 1, 0}, {0, 2, 16, 8, 8, 48, 4, 1, 1, 0, 1, 0, 0},
        {0, 1, 17, 7, 9, 20, 4, 2, 1, 0, 1, 1, 0},
        /* stride 1 (the ocv forward and dx, weights transposed by 16 x 16 blocks: 30 and 60 rows, 750 and
         * 270 columns; groups) */
        {0, 2, 60, 9, 8, 60, 5, 1, 2, 0, 2, 1, 0}, {0, 1, 30, 7, 7, 60, 3, 1, 1, 0, 1, 0, 0},
        /* the padded-width grid (ds_conv_flat): 16 channels (ResNet's first stage, batch 1 and 3), 30 (a
         * partial block of 4), kernels 1, 5 and 7, padding 0 (a copy without zeros), rows shorter than a vector
         * and spanning several, a fused bias */
        {0, 3, 16, 28, 28, 16, 3, 1, 1, 0, 1, 0, 0}, {0, 1, 16, 13, 11, 16, 3, 1, 1, 0, 1, 1, 0},
        {0, 2, 30, 6, 5, 16, 5, 1, 2, 0, 1, 1, 0},  {0, 2, 16, 9, 23, 30, 7, 1, 3, 0, 1, 0, 0},
        {0, 2, 16, 5, 37, 16, 3, 1, 0, 0, 1, 1, 0}, {0, 1, 16, 4, 4, 16, 1, 1, 0, 0, 1, 0, 0},
        /* groups */
        {1, 2, 32, 5, 6, 64, 4, 2, 1, 0, 2, 1, 0}, {0, 2, 32, 11, 10, 32, 4, 2, 1, 0, 2, 0, 0},
        /* dilation 2 */
        {1, 2, 32, 5, 6, 16, 4, 2, 1, 0, 1, 0, 2}, {0, 2, 16, 13, 12, 32, 4, 2, 2, 0, 1, 1, 2},
        /* wide rows: phase tiles of 9..16 and of more than 16 pixels */
        {1, 2, 32, 3, 11, 16, 4, 2, 1, 0, 1, 0, 0}, {1, 1, 16, 2, 21, 16, 4, 2, 1, 1, 1, 1, 0},
        {0, 2, 16, 6, 41, 32, 4, 2, 1, 0, 1, 0, 0},
        /* one channel: the strided dx of one input channel and the transposed forward to one output
         * channel (the DCGAN's first and last layers; im2col's path, as the reference); odd sizes, kernels
         * 3, 4, 5, padding 0..2, output padding */
        {0, 2, 1, 15, 13, 20, 4, 2, 1, 0, 1, 1, 0}, {0, 1, 1, 9, 11, 16, 3, 2, 0, 0, 1, 0, 0},
        {0, 3, 1, 40, 37, 8, 5, 2, 2, 0, 1, 0, 0}, {0, 2, 1, 10, 10, 5, 4, 2, 0, 0, 1, 0, 0},
        {1, 2, 24, 7, 9, 1, 4, 2, 1, 1, 1, 1, 0}, {1, 1, 5, 20, 18, 1, 3, 2, 0, 0, 1, 0, 0},
        {1, 2, 3, 6, 5, 1, 5, 2, 2, 1, 1, 1, 0}, {1, 3, 7, 4, 4, 1, 4, 2, 0, 0, 1, 0, 0},
    };
    const double tol = 1e-5;
    double worst[3] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const conv_case *t = &cases[i];
        float *ry, *rx, *rw, *y, *dx, *dw;
        size_t ny, nx, nw;
        CHECK(run(t, "im2col", &ry, &rx, &rw, &ny, &nx, &nw) == 0);
        /* the padded-width grid (ds_conv_flat) wherever it fits, against the same reference */
        CHECK(run(t, "flat", &y, &dx, &dw, &ny, &nx, &nw) == 0);
        double ef[3] = {ds_test_rel_err(y, ry, ny), ds_test_rel_err(dx, rx, nx), ds_test_rel_err(dw, rw, nw)};
        free(y), free(dx), free(dw);
        CHECK(run(t, NULL, &y, &dx, &dw, &ny, &nx, &nw) == 0);
        double e[3] = {ds_test_rel_err(y, ry, ny), ds_test_rel_err(dx, rx, nx), ds_test_rel_err(dw, rw, nw)};
        printf("%s n%d c%d %dx%d k%d %dx%d stride %d pad %d opad %d groups %d%s: y %.2e dx %.2e dW %.2e; "
               "flat: %.2e %.2e %.2e\n",
               t->transposed ? "conv_transpose2d" : "conv2d", t->n, t->c, t->h, t->w, t->k, t->ks, t->ks, t->stride,
               t->pad, t->opad, t->groups, t->bias ? " bias" : "", e[0], e[1], e[2], ef[0], ef[1], ef[2]);
        for (int j = 0; j < 3; j++) CHECK(ef[j] <= tol);
#if defined(__AVX512F__)
        /* the DCGAN's 64 → 32 transposed and 32 → 64 strided layers took the AVX-512 passes: their
         * rounding is not the reference's (dW of one sample sums in the reference's order) */
        if (i == 0 || i == 10) CHECK(e[0] > 0 && e[1] > 0 && e[2] > 0);
        if (i == 3) CHECK(e[0] > 0 && e[1] > 0);
#endif
        for (int j = 0; j < 3; j++) {
            CHECK(e[j] <= tol);
            if (e[j] > worst[j]) worst[j] = e[j];
        }
        free(ry), free(rx), free(rw), free(y), free(dx), free(dw);
    }
    printf("worst: y %.2e dx %.2e dW %.2e (tolerance %.0e)\n", worst[0], worst[1], worst[2], tol);
    /* a leaky relu fused into the convolution (stored by the ocv tile, or applied after the other passes)
     * gives exactly the values and gradients of the unfused graph */
    const char *lalgos[] = {NULL, "im2col", "shifted", "flat"};
    for (int a = 0; a < 4; a++)
        for (int stride = 1; stride <= 2; stride++) {
            static float y[2][3 * 32 * 9 * 10], dx[2][3 * 16 * 9 * 10], dw[2][32 * 16 * 16];
            for (int f = 0; f < 2; f++) CHECK(run_leaky(f, lalgos[a], stride, y[f], dx[f], dw[f]) == 0);
            size_t ny = (size_t)3 * 32 * ((9 + 2 - 4) / stride + 1) * ((10 + 2 - 4) / stride + 1);
            CHECK(!memcmp(y[0], y[1], ny * sizeof(float)));
            CHECK(!memcmp(dx[0], dx[1], sizeof dx[0]));
            CHECK(!memcmp(dw[0], dw[1], sizeof dw[0]));
        }
    return ds_test_summary("conv_s2");
}
