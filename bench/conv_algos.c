/* conv_algos.c — one convolution layer's forward, dx and dW times under the
 * current DS_CONV_ALGO (bench/winograd.py runs it alternately per algorithm
 * and reports the ratios). Prints one JSON line.
 *
 *   conv_algos N C H W K KSIZE PAD [REPS]
 *
 * forward_ms: the median of REPS forward passes (eval mode); dx_ms: of REPS
 * backward passes reaching the input only (no parameter gradients); dw_ms:
 * of REPS backward passes with the parameter gradients too, less dx_ms. */
#include "deepsky.h"

#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: conv_algos N C H W K KSIZE PAD [REPS]\n");
        return 2;
    }
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]), k = atoi(argv[5]),
        ks = atoi(argv[6]), pad = atoi(argv[7]), reps = argc > 8 ? atoi(argv[8]) : 20;
    if (n < 1 || c < 1 || h < 1 || w < 1 || k < 1 || ks < 1 || pad < 0 || reps < 1 || reps > 10000) {
        fprintf(stderr, "conv_algos: bad arguments\n");
        return 2;
    }
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, n, c, h, w));
    ds_node_set_requires_grad(x, 1);
    ds_node *y = ds_nn_conv2d(g, "conv", x, k, ks, (ds_conv_opt){.pad = {pad, pad}}, (ds_init){0}, 1);
    if (!y || ds_graph_compile(g) != 0 || ds_graph_set_param_grads(g, 0) != 0) {
        fprintf(stderr, "conv_algos: %s\n", ds_last_error());
        return 1;
    }
    for (size_t i = 0; i < ds_node_numel(x); i++) ds_node_value(x)[i] = (float)(i % 7) * 0.1f - 0.3f;
    float *dy = malloc(ds_node_numel(y) * sizeof *dy);
    double *tf = malloc((size_t)reps * sizeof *tf), *tb = malloc((size_t)reps * sizeof *tb);
    if (!dy || !tf || !tb) return 1;
    for (size_t i = 0; i < ds_node_numel(y); i++) dy[i] = (float)(i % 5) * 0.1f - 0.2f;
    ds_graph_set_training(g, 1);
    for (int r = 0; r < 2; r++) /* warm-up (and the first run's algorithm choice) */
        if (ds_graph_forward(g) || ds_graph_backward(g, y, dy)) {
            fprintf(stderr, "conv_algos: %s\n", ds_last_error());
            return 1;
        }
    for (int r = 0; r < reps; r++) {
        double t0 = ds_now();
        ds_graph_forward(g);
        double t1 = ds_now();
        ds_graph_backward(g, y, dy);
        tf[r] = t1 - t0, tb[r] = ds_now() - t1;
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    qsort(tb, (size_t)reps, sizeof *tb, cmp_double);
    double dx_ms = tb[reps / 2] * 1e3;
    if (ds_graph_set_param_grads(g, 1) != 0) return 1;
    for (int r = 0; r < reps + 2; r++) {
        ds_graph_forward(g);
        double t1 = ds_now();
        ds_graph_backward(g, y, dy);
        if (r >= 2) tb[r - 2] = ds_now() - t1;
    }
    qsort(tb, (size_t)reps, sizeof *tb, cmp_double);
    double flop = 2.0 * n * k * c * ks * ks * (double)(h + 2 * pad - ks + 1) * (w + 2 * pad - ks + 1);
    printf("{\"forward_ms\": %.4f, \"dx_ms\": %.4f, \"dw_ms\": %.4f, \"direct_gflop\": %.4f}\n", tf[reps / 2] * 1e3,
           dx_ms, tb[reps / 2] * 1e3 - dx_ms, flop / 1e9);
    free(dy), free(tf), free(tb);
    ds_graph_free(g);
    return 0;
}
