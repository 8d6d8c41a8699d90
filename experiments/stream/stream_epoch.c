/* stream_epoch.c — one training epoch streamed from a sharded data set,
 * through the library alone (ds_loader_new_shards and ds_train_epoch), to
 * measure what the loader costs: epoch time, the time the step waited for
 * data, and the process's peak resident set (VmHWM), with a hash of the
 * final weights so two runs of one seed can be compared.
 *
 *   cc -O2 -Iinclude experiments/stream/stream_epoch.c -Lbuild -ldeepsky \
 *      -Wl,-rpath,"$PWD/build" -lm -o build/stream_epoch
 * (the shared library brings its own dependencies: CFITSIO, zlib, MPI when
 * the build has it)
 *   build/stream_epoch DIR [batch [seed [threads [window [prefetch]]]]]
 *
 * The model is softmax regression (a dense layer over the whole stamp,
 * zeros-initialised, SGD): an epoch over a million stamps in minutes, so
 * the loader, not the model, is what is measured. */
#include "deepsky.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [batch [seed [threads [window [prefetch]]]]]\n", argv[0]);
        return 2;
    }
    int batch = argc > 2 ? atoi(argv[2]) : 64, seed = argc > 3 ? atoi(argv[3]) : 1;
    ds_stream_cfg cfg = {.threads = argc > 4 ? atoi(argv[4]) : 1, .window = argc > 5 ? atoi(argv[5]) : 0,
                         .prefetch = argc > 6 ? atoi(argv[6]) : 0};
    ds_shards *s = ds_shards_open(argv[1]);
    if (!s) {
        fprintf(stderr, "stream_epoch: %s\n", ds_last_error());
        return 1;
    }
    ds_dataset meta;
    ds_norm norm;
    if (ds_shards_describe(s, &meta) || ds_shards_norm(s, &norm)) {
        fprintf(stderr, "stream_epoch: %s\n", ds_last_error());
        return 1;
    }
    cfg.norm = &norm;
    ds_shape sh = meta.sample;
    ds_graph *g = ds_graph_new((uint64_t)seed);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, batch, sh.d[0], sh.d[1], sh.d[2]));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, batch));
    ds_node *logits = ds_nn_dense(g, "fc", x, meta.classes, (ds_init){DS_INIT_ZEROS, 0, 0}, 1);
    ds_node *loss = ds_softmax_cross_entropy(g, logits, y, NULL);
    ds_optim_cfg oc = {.kind = DS_SGD, .lr = 0.01f, .momentum = 0.9f};
    ds_optim *o = NULL;
    ds_loader *l = NULL;
    int rc = 1;
    if (!loss || ds_graph_compile(g) || !(o = ds_optim_new(g, &oc)) ||
        !(l = ds_loader_new_shards(s, batch, (uint64_t)seed ^ 0x5eedULL, &cfg))) {
        fprintf(stderr, "stream_epoch: %s\n", ds_last_error());
        goto done;
    }
    printf("set: %lld samples of %dx%dx%d, %d classes; batch %d, loader threads %d, window %d, prefetch %d\n",
           (long long)ds_shards_samples(s), sh.d[0], sh.d[1], sh.d[2], meta.classes, batch, cfg.threads,
           cfg.window ? cfg.window : 65536, cfg.prefetch ? cfg.prefetch : 4);
    ds_epoch_stats st;
    double t0 = now();
    if (ds_train_epoch(g, o, l, x, y, logits, loss, &st)) {
        fprintf(stderr, "stream_epoch: %s\n", ds_last_error());
        goto done;
    }
    double secs = now() - t0;
    if ((int64_t)st.samples != ds_shards_samples(s)) { /* a read error ends the epoch early */
        fprintf(stderr, "stream_epoch: the epoch saw %d of %lld samples: %s\n", st.samples,
                (long long)ds_shards_samples(s), ds_last_error());
        goto done;
    }
    const float *w = ds_node_value(ds_graph_find(g, "fc.weight")), *b = ds_node_value(ds_graph_find(g, "fc.bias"));
    size_t nw = (size_t)meta.classes * sh.d[0] * sh.d[1] * sh.d[2];
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the weights' bytes */
    const unsigned char *p = (const unsigned char *)w;
    for (size_t i = 0; i < nw * sizeof *w; i++) h = (h ^ p[i]) * 1099511628211ULL;
    p = (const unsigned char *)b;
    for (size_t i = 0; i < (size_t)meta.classes * sizeof *b; i++) h = (h ^ p[i]) * 1099511628211ULL;
    printf("epoch: %d samples in %.1f s (%.0f samples/s), loss %.4f, accuracy %.4f\n", st.samples, secs,
           st.samples / secs, st.loss, st.accuracy);
    printf("waited for data: %.2f s\n", ds_loader_wait_seconds(l));
    printf("peak RSS (VmHWM): %ld kB\n", vm_hwm_kb());
    printf("weights hash: %016llx\n", (unsigned long long)h);
    rc = 0;
done:
    ds_loader_free(l);
    ds_optim_free(o);
    ds_graph_free(g);
    ds_norm_free(&norm);
    ds_dataset_free(&meta);
    ds_shards_close(s);
    return rc;
}
