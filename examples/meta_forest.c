/* meta_forest.c — the metadata-only random forest of docs/asteroids.md: a
 * forest on the alert metadata alone (simulate's meta.csv, made numeric by
 * experiments/asteroids/meta_table.py), scored on a test set with the
 * metrics `deepsky eval --meta` prints, and the share of each bogus kind
 * rejected at the 1 %-FPR threshold (the same threshold rule as eval's).
 *
 *   meta_forest TRAIN.csv TEST.csv TEST_labels.csv [trees=200] [seed=1]
 *
 * The tables' last column `label` is the class (0 bogus, 1 real); the test
 * set's labels.csv (simulate's) gives each row's kind, in the same order. */
#include "deepsky.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* kind (third column) of each row of simulate's labels.csv */
static int read_kinds(const char *path, int n, int *kind)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f || !fgets(line, sizeof line, f)) {
        if (f) fclose(f);
        return -1;
    }
    int i = 0;
    while (i < n && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ','), *k = c ? strchr(c + 1, ',') : NULL, *e = k ? strchr(k + 1, ',') : NULL;
        if (!e) break;
        *e = 0;
        kind[i] = -1;
        for (int t = 0; t < DS_SIM_KINDS; t++)
            if (!strcmp(k + 1, ds_sim_kind_name(t))) kind[i] = t;
        if (kind[i] < 0) break;
        i++;
    }
    fclose(f);
    return i == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: meta_forest TRAIN.csv TEST.csv TEST_labels.csv [trees=200] [seed=1]\n");
        return 2;
    }
    int trees = argc > 4 ? atoi(argv[4]) : 200, seed = argc > 5 ? atoi(argv[5]) : 1;
    char spec[4096];
    ds_dataset tr, te;
    snprintf(spec, sizeof spec, "csv:%s,label=label", argv[1]);
    if (ds_data_load(spec, &tr) != 0) {
        fprintf(stderr, "meta_forest: %s\n", ds_last_error());
        return 1;
    }
    snprintf(spec, sizeof spec, "csv:%s,label=label", argv[2]);
    if (ds_data_load(spec, &te) != 0) {
        fprintf(stderr, "meta_forest: %s\n", ds_last_error());
        return 1;
    }
    int F = tr.sample.d[0];
    if (trees < 1 || te.sample.d[0] != F) {
        fprintf(stderr, "meta_forest: %d and %d features, or trees < 1\n", F, te.sample.d[0]);
        return 2;
    }
    int *kind = malloc(sizeof(int) * (size_t)te.n);
    if (!kind || read_kinds(argv[3], te.n, kind) != 0) {
        fprintf(stderr, "meta_forest: %s: cannot read %d kinds\n", argv[3], te.n);
        return 1;
    }
    double t0 = now();
    ds_forest_cfg fc = {.trees = trees, .seed = (uint64_t)seed};
    ds_forest *f = ds_forest_train(tr.x, tr.y, tr.n, F, 2, &fc);
    if (!f) {
        fprintf(stderr, "meta_forest: %s\n", ds_last_error());
        return 1;
    }
    double t1 = now();
    float *p = malloc(sizeof(float) * 2 * (size_t)te.n), *neg = malloc(sizeof(float) * (size_t)te.n);
    ds_forest_predict(f, te.x, te.n, p);
    ds_metrics m;
    if (ds_metrics_compute(p, te.y, te.n, 2, &m) != 0) {
        fprintf(stderr, "meta_forest: %s\n", ds_last_error());
        return 1;
    }
    printf("random forest (%d trees) on %d metadata columns, %d training / %d test rows; training %.1f s\n", trees, F,
           tr.n, te.n, t1 - t0);
    printf("test error                          %.4f\nROC AUC                             %.4f\n"
           "false-positive rate at 95%% recall   %.4f\nmissed-detection rate at 1%% FPR     %.4f\n",
           1 - m.accuracy, m.auc, m.fpr_at_tpr95, m.mdr_at_fpr1);
    /* at the threshold that lets 1 % of the bogus through (as deepsky eval --meta) */
    int nb = 0, total[DS_SIM_KINDS] = {0}, hit[DS_SIM_KINDS] = {0};
    for (int i = 0; i < te.n; i++)
        if (te.y[i] == 0) neg[nb++] = p[2 * i + 1];
    qsort(neg, (size_t)nb, sizeof *neg, by_desc);
    float thr = nb ? neg[nb / 100] : 1.0f;
    for (int i = 0; i < te.n; i++) {
        int pos = p[2 * i + 1] > thr;
        total[kind[i]]++, hit[kind[i]] += kind[i] == DS_SIM_REAL ? pos : !pos;
    }
    printf("at the 1%%-FPR threshold (score %.3f):\n", thr);
    for (int t = 0; t < DS_SIM_KINDS; t++)
        if (total[t])
            printf("  %-9s %-20s %5d of %5d  %.4f\n", t == DS_SIM_REAL ? "found" : "rejected", ds_sim_kind_name(t),
                   hit[t], total[t], (double)hit[t] / total[t]);
    ds_metrics_free(&m);
    ds_forest_free(f);
    free(p), free(neg), free(kind);
    ds_dataset_free(&tr), ds_dataset_free(&te);
    return 0;
}
