/* realbogus_forest.c — the course's "traditional flow": hand-made stamp
 * features (ds_stamp_features) into a random forest, on the same simulated
 * stamps as `deepsky demo` (same sizes and seeds), with the same metrics.
 *
 *   realbogus_forest [n=21753] [trees=200] [seed=1] [test_seed=seed+1000003]
 */
#include "deepsky.h"

#include <stdio.h>
#include <stdlib.h>

static float *features(const ds_dataset *d)
{
    int S = d->sample.d[1];
    float *f = malloc(sizeof(float) * (size_t)d->n * DS_STAMP_FEATURES);
    if (!f) return NULL;
    for (int i = 0; i < d->n; i++)
        if (ds_stamp_features(d->x + (size_t)i * S * S, S, f + (size_t)i * DS_STAMP_FEATURES) != 0) {
            free(f);
            return NULL;
        }
    return f;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 21753, trees = argc > 2 ? atoi(argv[2]) : 200;
    int seed = argc > 3 ? atoi(argv[3]) : 1;
    long test_seed = argc > 4 ? atol(argv[4]) : seed + 1000003L;
    if (n < 400 || trees < 1) {
        fprintf(stderr, "usage: realbogus_forest [n>=400] [trees>=1] [seed] [test_seed]\n");
        return 2;
    }
    /* the demo's sets: training (seed) and test (n/4; the demo's seed is seed + 1000003) */
    ds_sim_cfg tc = {.n = n, .size = 45, .channels = 1, .real_fraction = 0.0773f, .seed = (uint64_t)seed};
    ds_sim_cfg ec = tc;
    ec.n = n / 4, ec.seed = (uint64_t)test_seed;
    ds_dataset tr, te;
    if (ds_sim_dataset(&tc, &tr, NULL) != 0 || ds_sim_dataset(&ec, &te, NULL) != 0) {
        fprintf(stderr, "realbogus_forest: %s\n", ds_last_error());
        return 1;
    }
    double t0 = ds_now();
    float *ftr = features(&tr), *fte = features(&te);
    if (!ftr || !fte) {
        fprintf(stderr, "realbogus_forest: %s\n", ds_last_error());
        return 1;
    }
    double t1 = ds_now();
    ds_forest_cfg fc = {.trees = trees, .seed = (uint64_t)seed};
    ds_forest *f = ds_forest_train(ftr, tr.y, tr.n, DS_STAMP_FEATURES, 2, &fc);
    if (!f) {
        fprintf(stderr, "realbogus_forest: %s\n", ds_last_error());
        return 1;
    }
    double t2 = ds_now();
    float *p = malloc(sizeof(float) * 2 * (size_t)te.n);
    ds_forest_predict(f, fte, te.n, p);
    ds_metrics m;
    ds_metrics_compute(p, te.y, te.n, 2, &m);
    printf("random forest (%d trees) on %d hand-made features, %d training / %d test stamps\n", trees,
           DS_STAMP_FEATURES, tr.n, te.n);
    printf("features %.1f s, training %.1f s\n", t1 - t0, t2 - t1);
    printf("test error                          %.4f\nROC AUC                             %.4f\n"
           "false-positive rate at 95%% recall   %.4f\nfalse-positive rate at 99%% recall   %.4f\n"
           "missed-detection rate at 1%% FPR     %.4f\n",
           1 - m.accuracy, m.auc, m.fpr_at_tpr95, m.fpr_at_tpr99, m.mdr_at_fpr1);
    ds_metrics_free(&m);
    ds_forest_free(f);
    free(p), free(ftr), free(fte);
    ds_dataset_free(&tr), ds_dataset_free(&te);
    return 0;
}
