/* train.c — the plain training and evaluation loops over a loader. */
#include "internal.h"

#include <math.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Number of rows whose argmax over logits [b, C…] equals the label. */
static int count_correct(ds_node *logits, const float *y, int b)
{
    size_t c = ds_numel(logits) / (size_t)logits->shape.d[0];
    int hits = 0;
    for (int r = 0; r < b; r++) {
        const float *z = logits->val + (size_t)r * c;
        size_t best = 0;
        for (size_t k = 1; k < c; k++)
            if (z[k] > z[best]) best = k;
        hits += (float)best == y[r];
    }
    return hits;
}

/* Shared loop; train=1 also runs backward and the optimizer. */
static int run_epoch(ds_graph *g, ds_optim *o, ds_loader *l, ds_node *x, ds_node *y,
                     ds_node *logits, ds_node *loss, ds_epoch_stats *st, int train)
{
    double t0 = now(), loss_sum = 0;
    int seen = 0, hits = 0, b, step = 0, was_training = g->training;
    ds_graph_set_training(g, train);
    ds_loader_reset(l);
    while ((b = ds_loader_next(l, x->val, y->val)) > 0) {
        if (b != g->batch && ds_graph_set_batch(g, b) != 0) goto fail;
        if (train) ds_graph_zero_grad(g);
        if (ds_graph_forward(g) != 0) goto fail;
        float lv = loss->val[0];
        if (!isfinite(lv)) {
            ds_fail("loss is %s at batch %d (check the data for NaN/Inf, or lower the learning rate)",
                    isnan(lv) ? "NaN" : "infinite", step);
            goto fail;
        }
        if (train && (ds_graph_backward(g, loss, NULL) != 0 || ds_optim_step(o) != 0)) goto fail;
        loss_sum += (double)lv * b;
        hits += count_correct(logits, y->val, b);
        seen += b;
        step++;
    }
    ds_graph_set_batch(g, g->max_batch);
    ds_graph_set_training(g, was_training);
    st->loss = seen ? loss_sum / seen : 0;
    st->accuracy = seen ? (double)hits / seen : 0;
    st->samples = seen;
    st->seconds = now() - t0;
    return 0;
fail:
    ds_graph_set_batch(g, g->max_batch);
    ds_graph_set_training(g, was_training);
    return -1;
}

int ds_train_epoch(ds_graph *g, ds_optim *o, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits,
                   ds_node *loss, ds_epoch_stats *st)
{
    return run_epoch(g, o, l, x, y, logits, loss, st, 1);
}

int ds_evaluate(ds_graph *g, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits, ds_node *loss,
                ds_epoch_stats *st)
{
    return run_epoch(g, NULL, l, x, y, logits, loss, st, 0);
}
