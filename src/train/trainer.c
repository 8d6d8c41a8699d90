/* trainer.c — the one training loop. A step is: zero the gradients, forward
 * to the loss, a finite-loss check, backward, the gradient hook (where an
 * all-reduce goes), clipping, every optimizer's step. An epoch feeds the
 * loader's batches through steps; fit runs epochs with validation, the
 * choice of the best epoch and early stopping, and hands each epoch to the
 * caller's hooks (progress, metrics, checkpoints). It touches data only
 * through the program's feeds and the gradient spans, never an op's
 * buffers, so a GPU backend or data-parallel training slots in behind it.
 * docs/design.md, "The program and the trainer". */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTIMS 8

struct ds_trainer {
    ds_program *p;
    ds_optim *opt[MAX_OPTIMS];
    int n_opt;
    ds_trainer_cfg cfg;
    ds_trainer_hooks h;
    double best;
    int bad_epochs, has_best;
    float *probs;   /* [max batch, classes]: a hierarchical head's class probabilities for accuracy */
    ds_comm *comm;  /* data-parallel: NULL or more than one rank */
    int rank, size;
    /* micro_batches > 1: the batch as consecutive micro-batches whose
     * gradients are summed in order — the sums N ranks make */
    int micro;
    float *stage[DS_MAX_FEEDS], *stage_y; /* the loader's batch: [micro·max batch, row] per feed, labels */
    size_t feed_row[DS_MAX_FEEDS], label_row;
    float *acc, *snap; /* the gradient sum [all gradients]; the buffers after micro-batch 1 */
    size_t n_acc, n_snap;
    long step_hits;    /* the last micro step's argmax hits and head losses (sums over its rows) */
    double step_head[DS_MAX_HEADS];
};

static int micro_init(ds_trainer *t);

/* rank 0's parameters (all: params 1) or buffers only (params 0) to every rank */
static int broadcast_state(ds_trainer *t, int params)
{
    ds_graph *g = t->p->g;
    for (int i = 0; i < ds_graph_num_params(g); i++) {
        ds_node *n = ds_graph_param(g, i);
        if ((params || !ds_node_is_trainable(n)) && ds_comm_bcast(t->comm, n->val, ds_numel(n) * sizeof(float), 0) != 0)
            return ds_fail_prefix("broadcasting '%s' from rank 0: ", n->name), -1;
    }
    return 0;
}

/* FNV-1a of every parameter's bytes: equal on all ranks while the replicas agree */
static uint32_t state_hash(const ds_graph *g)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < ds_graph_num_params(g); i++) {
        const ds_node *n = ds_graph_param(g, i);
        const unsigned char *b = (const unsigned char *)n->val;
        for (size_t k = 0; k < ds_numel(n) * sizeof(float); k++) h = (h ^ b[k]) * 16777619u;
    }
    return h;
}

/* 0 on every rank when all ranks returned 0; else each rank's own code, or
 * DS_TRAIN_STOP where another rank stopped (a stop is everyone's) */
static int agree(ds_trainer *t, int rc)
{
    if (t->size < 2) return rc;
    double v = rc != 0;
    if (ds_comm_allreduce_f64(t->comm, &v, 1, DS_COMM_MAX) != 0) return -1;
    return rc ? rc : v > 0 ? DS_TRAIN_STOP : 0;
}

ds_trainer *ds_trainer_new(ds_program *p, ds_optim *const *optims, int n_optims, const ds_trainer_cfg *cfg,
                           const ds_trainer_hooks *hooks)
{
    int outside = hooks && hooks->loss_grad && p && p->n_heads > 0 && p->heads[0].out;
    if (!p || !p->g || (!p->loss && !outside) || n_optims < 0 || n_optims > MAX_OPTIMS || (n_optims && !optims)) {
        ds_fail("trainer: a compiled program with a loss and 0..%d optimizers is needed", MAX_OPTIMS);
        return NULL;
    }
    if (!p->g->compiled) {
        ds_fail("trainer: compile the program's graph first");
        return NULL;
    }
    if (cfg && !(cfg->clip_norm >= 0 && isfinite(cfg->clip_norm))) {
        ds_fail("trainer: clip_norm must be >= 0 and finite (got %g)", (double)cfg->clip_norm);
        return NULL;
    }
    ds_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        ds_fail("out of memory");
        return NULL;
    }
    int ch = ds_program_class_head(p);
    if (ch >= 0 && p->heads[ch].tree &&
        !(t->probs = malloc((size_t)p->g->max_batch * (size_t)p->heads[ch].classes * sizeof *t->probs))) {
        free(t);
        ds_fail("out of memory");
        return NULL;
    }
    t->p = p;
    for (int k = 0; k < n_optims; k++) t->opt[k] = optims[k];
    t->n_opt = n_optims;
    if (cfg) t->cfg = *cfg;
    if (hooks) t->h = *hooks;
    t->size = 1;
    t->micro = cfg && cfg->micro_batches > 1 ? cfg->micro_batches : 1;
    if (t->micro > 1 && (hooks && hooks->loss_grad ? ds_fail("trainer: micro-batches need the loss in the graph (not a GAN's)")
                                                    : micro_init(t)) != 0) {
        ds_trainer_free(t);
        return NULL;
    }
    if (cfg && ds_comm_size(cfg->comm) > 1) {
        t->comm = cfg->comm, t->rank = ds_comm_rank(t->comm), t->size = ds_comm_size(t->comm);
        /* every rank starts from rank 0's parameters and buffers */
        if (broadcast_state(t, 1) != 0) {
            ds_trainer_free(t);
            return NULL;
        }
    }
    return t;
}

void ds_trainer_free(ds_trainer *t)
{
    if (!t) return;
    free(t->probs);
    for (int f = 0; f < DS_MAX_FEEDS; f++) free(t->stage[f]);
    free(t->stage_y);
    free(t->acc);
    free(t->snap);
    free(t);
}

/* micro-batches: the staging of a whole batch, the gradient sum and the buffer snapshot */
static int micro_init(ds_trainer *t)
{
    ds_program *p = t->p;
    ds_graph *g = p->g;
    size_t rows = (size_t)g->max_batch * (size_t)t->micro;
    if (p->n_feeds > DS_MAX_FEEDS) return ds_fail("trainer: too many feeds");
    for (int f = 0; f < p->n_feeds; f++) {
        t->feed_row[f] = ds_numel(p->feeds[f]) / (size_t)g->batch;
        if (!(t->stage[f] = malloc(rows * t->feed_row[f] * sizeof(float)))) return ds_fail("out of memory");
    }
    if (p->labels) {
        t->label_row = ds_numel(p->labels) / (size_t)g->batch;
        if (!(t->stage_y = malloc(rows * t->label_row * sizeof(float)))) return ds_fail("out of memory");
    }
    ds_span spans[4];
    int ns = ds_graph_grad_spans(g, spans, 4);
    for (int k = 0; k < ns; k++) t->n_acc += spans[k].n;
    for (int i = 0; i < ds_graph_num_params(g); i++)
        if (!ds_node_is_trainable(ds_graph_param(g, i))) t->n_snap += ds_numel(ds_graph_param(g, i));
    if (!(t->acc = malloc((t->n_acc + 1) * sizeof(float))) || !(t->snap = malloc((t->n_snap + 1) * sizeof(float))))
        return ds_fail("out of memory");
    return 0;
}

/* the buffers (batch-norm running statistics) to the snapshot (save 1) or back */
static void buffers_snap(ds_trainer *t, int save)
{
    ds_graph *g = t->p->g;
    size_t at = 0;
    for (int i = 0; i < ds_graph_num_params(g); i++) {
        ds_node *n = ds_graph_param(g, i);
        if (ds_node_is_trainable(n)) continue;
        size_t k = ds_numel(n);
        if (save) memcpy(t->snap + at, n->val, k * sizeof(float));
        else memcpy(n->val, t->snap + at, k * sizeof(float));
        at += k;
    }
}

void ds_trainer_set_best(ds_trainer *t, double best, int bad_epochs)
{
    t->best = best;
    t->has_best = isfinite(best);
    t->bad_epochs = bad_epochs < 0 ? 0 : bad_epochs;
}

double ds_trainer_best(const ds_trainer *t) { return t->has_best ? t->best : NAN; }
int ds_trainer_bad_epochs(const ds_trainer *t) { return t->bad_epochs; }

/* g ← g·min(1, max/(‖g‖ + 1e-6)) over the spans, ‖g‖ in double (PyTorch's clip_grad_norm_) */
static void clip_spans(ds_span *s, int n, float max)
{
    double sq = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < s[k].n; i++) sq += (double)s[k].p[i] * s[k].p[i];
    float c = (float)(max / (sqrt(sq) + 1e-6));
    if (!(c < 1.0f)) return;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < s[k].n; i++) s[k].p[i] *= c;
}

static int run_passes(ds_trainer *t, int b, float share, double *loss);
static int finish_step(ds_trainer *t);

int ds_trainer_step(ds_trainer *t, int b, double *loss) { return ds_trainer_step_shard(t, b, 0, loss); }

int ds_trainer_step_shard(ds_trainer *t, int b, int gb, double *loss)
{
    ds_graph *g = t->p->g;
    /* data-parallel: this rank's loss counts b/gb of the global batch's mean, and
     * its rows start at floor(rank·gb/size), as the loader cut them */
    float share = 1;
    if (t->size > 1) {
        share = gb > 0 ? (float)((double)b / gb) : 1.0f / (float)t->size;
        int before = gb > 0 ? (int)((long)t->rank * gb / t->size) : 0;
        ds_graph_set_shard_rows(g, before, gb > 0 ? gb - before - b : 0);
        if (!g->sync_bn && broadcast_state(t, 0) != 0) return -1; /* DDP's broadcast_buffers */
    }
    double lv = 0;
    int r = run_passes(t, b, share, &lv);
    if (r == 0) r = finish_step(t);
    if (loss) *loss = lv;
    return r;
}

/* zero the gradients, then the passes over the graph's b rows: forward, the
 * loss's check, backward from the loss weighted by share (and the pass's weight) */
static int run_passes(ds_trainer *t, int b, float share, double *loss)
{
    ds_graph *g = t->p->g;
    if (b != g->batch && ds_graph_set_batch(g, b) != 0) return -1;
    if (t->h.batch_begin) {
        int r = t->h.batch_begin(t->h.user, t, b);
        if (r) return r;
    }
    ds_graph_zero_grad(g);
    double lv = 0;
    for (int k = 0;; k++) {
        float w = 1;
        if (t->h.pass) {
            int r = t->h.pass(t->h.user, t, b, k, &w);
            if (r < 0) return r;
            if (r == 0 && k == 0) return ds_fail("trainer: the pass hook ran no pass");
            if (r == 0) break;
        } else if (k > 0) {
            break;
        }
        if (ds_graph_forward(g) != 0) return -1;
        if (t->h.loss_grad) { /* the loss is outside the graph: start the backward at the output */
            double ov = 0;
            const float *dout = NULL;
            int r = t->h.loss_grad(t->h.user, t, b, &ov, &dout);
            if (r) return r;
            if (!isfinite(ov)) return ds_fail("the loss is %s", isnan(ov) ? "NaN" : "infinite");
            if (!dout) return ds_fail("trainer: the loss_grad hook gave no gradient");
            if (t->size > 1) return ds_fail("trainer: a loss outside the graph (GAN) is not data-parallel yet");
            if (ds_graph_backward(g, t->p->heads[0].out, dout) != 0) return -1;
            lv += ov;
            continue;
        }
        float v = t->p->loss->val[0];
        if (!isfinite(v)) return ds_fail(k ? "the loss is %s (pass %d)" : "the loss is %s", isnan(v) ? "NaN" : "infinite", k + 1);
        float seed = w * share;
        if (ds_graph_backward(g, t->p->loss, t->h.pass || share != 1 ? &seed : NULL) != 0) return -1;
        lv += (double)w * v;
    }
    *loss = lv;
    return 0;
}

/* the gradients summed over the ranks, the hook, clipping, the optimizers */
static int finish_step(ds_trainer *t)
{
    ds_graph *g = t->p->g;
    ds_span spans[4];
    int ns = ds_graph_grad_spans(g, spans, 4);
    for (int k = 0; t->size > 1 && k < ns; k++) /* the gradient of the global batch's mean loss, on every rank */
        if (ds_comm_allreduce_sum(t->comm, spans[k].p, spans[k].n) != 0)
            return ds_fail_prefix("gradient all-reduce: "), -1;
    if (t->h.grad) {
        int r = t->h.grad(t->h.user, spans, ns);
        if (r) return r;
    }
    if (t->cfg.clip_norm > 0) clip_spans(spans, ns, t->cfg.clip_norm);
    for (int k = 0; k < t->n_opt; k++)
        if (ds_optim_step(t->opt[k]) != 0) return -1;
    return 0;
}

static int hits_of(const ds_trainer *t, int h, int b);

/* One step over the b rows staged by the loader (of a global batch of gb;
 * 0: not data-parallel) as t->micro consecutive micro-batches: each one's
 * gradients computed from zero, weighted by its share of the global batch,
 * and summed in order, acc = ((g1 + g2) + g3) + … — exactly the sums that
 * ranks holding those rows make (two ranks: MPI_SUM's one a + b; more:
 * allreduce=ordered). Dropout draws every micro-batch's masks from the
 * step's generator state as a rank would; the buffers (batch-norm running
 * statistics) keep the first micro-batch's update, as ranks keep rank 0's. */
static int step_micro(ds_trainer *t, int b, int gb, double *loss)
{
    ds_program *p = t->p;
    ds_graph *g = p->g;
    int M = t->micro, ch = ds_program_class_head(p);
    int r0 = t->size > 1 && gb > 0 ? (int)((long)t->rank * gb / t->size) : 0, total = t->size > 1 && gb > 0 ? gb : b;
    if (t->size > 1) {
        if (gb <= 0) return ds_fail("trainer: micro-batches over ranks need the global batch");
        if (!g->sync_bn && broadcast_state(t, 0) != 0) return -1;
    }
    ds_rng rng0 = g->rng;
    double lv = 0;
    t->step_hits = 0;
    memset(t->step_head, 0, sizeof t->step_head);
    int done = 0;
    for (int k = 0; k < M; k++) {
        int lo = (int)((long)b * k / M), hi = (int)((long)b * (k + 1) / M), bk = hi - lo;
        if (bk <= 0) continue;
        g->rng = rng0;
        ds_graph_set_shard_rows(g, r0 + lo, total - r0 - hi);
        if (bk != g->batch && ds_graph_set_batch(g, bk) != 0) return -1;
        for (int f = 0; f < p->n_feeds; f++)
            memcpy(p->feeds[f]->val, t->stage[f] + (size_t)lo * t->feed_row[f], (size_t)bk * t->feed_row[f] * sizeof(float));
        if (p->labels)
            memcpy(p->labels->val, t->stage_y + (size_t)lo * t->label_row, (size_t)bk * t->label_row * sizeof(float));
        double v;
        int r = run_passes(t, bk, (float)((double)bk / total), &v);
        if (r) return r;
        lv += v * bk;
        t->step_hits += hits_of(t, ch, bk);
        for (int h = 0; h < p->n_heads; h++) t->step_head[h] += (double)p->heads[h].loss->val[0] * bk;
        ds_span spans[4];
        int ns = ds_graph_grad_spans(g, spans, 4);
        size_t at = 0;
        for (int q = 0; q < ns; q++) {
            float *a = t->acc + at;
            const float *s = spans[q].p;
            if (!done) memcpy(a, s, spans[q].n * sizeof(float));
            else
                for (size_t i = 0; i < spans[q].n; i++) a[i] += s[i];
            at += spans[q].n;
        }
        if (!done) buffers_snap(t, 1);
        else buffers_snap(t, 0);
        done = 1;
    }
    ds_graph_set_shard_rows(g, 0, 0);
    ds_span spans[4];
    int ns = ds_graph_grad_spans(g, spans, 4);
    size_t at = 0;
    for (int q = 0; q < ns; q++) {
        memcpy(spans[q].p, t->acc + at, spans[q].n * sizeof(float));
        at += spans[q].n;
    }
    if (loss) *loss = b ? lv / b : 0;
    return finish_step(t);
}

/* argmax hits of head h's rows against its labels (a tree's: of the class probabilities) */
static int hits_of(const ds_trainer *t, int h, int b)
{
    const ds_program *p = t->p;
    if (h < 0) return 0;
    const ds_head *hd = &p->heads[h];
    const float *z = hd->out->val, *y = hd->target->val;
    if (hd->tree) {
        if (ds_hier_probs_rows(hd->tree, z, b, 0, t->probs) != 0) return 0;
        z = t->probs;
    }
    int c = hd->classes, hits = 0;
    for (int r = 0; r < b; r++) hits += (float)ds_argmax(z + (size_t)r * c, c) == y[r];
    return hits;
}

/* the shared pass over a loader: train 1 steps, 0 only runs forward (eval mode) */
static int pass(ds_trainer *t, ds_loader *l, int train, int epoch, ds_epoch_stats *st, float *probs)
{
    ds_program *p = t->p;
    ds_graph *g = p->g;
    int was_training = g->training, ch = ds_program_class_head(p), b, k = 0, rc = 0;
    int batches = ds_loader_batches(l);
    double t0 = ds_now(), loss_sum = 0, head_sum[DS_MAX_HEADS] = {0};
    long hits = 0, seen = 0;
    float *dst[DS_MAX_FEEDS];
    for (int f = 0; f < p->n_feeds; f++) dst[f] = p->feeds[f]->val;
    memset(st, 0, sizeof *st);
    /* data-parallel (train passes): the loader hands out this rank's share of each global batch */
    int dist = train && t->size > 1, micro = train && t->micro > 1;
    float *stage[DS_MAX_FEEDS];
    for (int f = 0; f < p->n_feeds; f++) stage[f] = micro ? t->stage[f] : dst[f];
    /* the most rows next() can write into the feeds: ⌈batch / ranks⌉ (the shares differ by one at most) */
    int most = (ds_loader_batch_size(l) + (dist ? t->size : 1) - 1) / (dist ? t->size : 1);
    if (most > (micro ? t->micro : 1) * g->max_batch)
        return ds_fail("trainer: the loader's batch of %d%s is more than the graph's %d%s", most, dist ? " per rank" : "",
                       g->max_batch, micro ? " times the micro-batches" : "");
    ds_graph_set_training(g, train);
    ds_loader_reset(l);
    while (ds_loader_more(l)) {
        b = micro ? ds_loader_next_fields(l, stage, p->labels ? t->stage_y : NULL)
                  : ds_loader_next_fields(l, dst, p->labels ? p->labels->val : NULL);
        int gb = ds_loader_last_global(l);
        if (b < 0) { /* a streamed shard could not be read (the loader said why) */
            rc = -1;
            ds_fail_prefix("epoch %d, batch %d: ", epoch, k + 1);
            break;
        }
        if (dist && gb < t->size) continue; /* a last batch smaller than the ranks: skipped by all (docs/scaling.md) */
        if (b == 0) break;
        double lv;
        if (train) {
            rc = micro ? step_micro(t, b, dist ? gb : 0, &lv) : ds_trainer_step_shard(t, b, dist ? gb : 0, &lv);
            if (rc != 0) {
                if (rc < 0) ds_fail_prefix("epoch %d, batch %d: ", epoch, k + 1);
                break;
            }
        } else {
            if ((b != g->batch && ds_graph_set_batch(g, b) != 0) || ds_graph_forward(g) != 0) {
                rc = -1;
                break;
            }
            lv = p->loss->val[0];
            if (probs && ch >= 0 && ds_program_probs(p, ch, b, (int)seen, probs + (size_t)seen * p->heads[ch].classes)) {
                rc = -1;
                break;
            }
        }
        loss_sum += lv * b;
        if (micro) { /* the graph holds the last micro-batch only: the step kept the sums */
            for (int h = 0; h < p->n_heads; h++) head_sum[h] += t->step_head[h];
            hits += t->step_hits;
        } else {
            for (int h = 0; h < p->n_heads; h++) head_sum[h] += (double)p->heads[h].loss->val[0] * b;
            hits += hits_of(t, ch, b);
        }
        seen += b;
        k++;
        if (train && t->h.batch_end) {
            ds_batch_log bl = {epoch, t->cfg.epochs, k, batches, seen, loss_sum / seen,
                               ch >= 0 ? (double)hits / seen : NAN, ds_now() - t0};
            rc = t->h.batch_end(t->h.user, &bl);
        }
        if (dist && (rc = agree(t, rc)) != 0) break; /* a stop on any rank (Ctrl-C) stops all at this batch */
        if (rc) break;
    }
    if (dist && rc == 0) { /* the epoch's statistics over every rank's rows */
        double v[3 + DS_MAX_HEADS] = {loss_sum, (double)hits, (double)seen};
        for (int h = 0; h < p->n_heads; h++) v[3 + h] = head_sum[h];
        if (ds_comm_allreduce_f64(t->comm, v, 3 + p->n_heads, DS_COMM_SUM) != 0) rc = -1;
        loss_sum = v[0], hits = (long)v[1], seen = (long)v[2];
        for (int h = 0; h < p->n_heads; h++) head_sum[h] = v[3 + h];
    }
    if (g->batch != g->max_batch) ds_graph_set_batch(g, g->max_batch);
    if (dist) ds_graph_set_shard_rows(g, 0, 0);
    ds_graph_set_training(g, was_training);
    st->loss = seen ? loss_sum / seen : 0;
    st->accuracy = ch < 0 ? NAN : seen ? (double)hits / seen : 0;
    st->samples = (int)seen;
    st->seconds = ds_now() - t0;
    for (int h = 0; h < p->n_heads; h++) st->head_loss[h] = seen ? head_sum[h] / seen : 0;
    return rc;
}

int ds_trainer_epoch(ds_trainer *t, ds_loader *l, int epoch, ds_epoch_stats *st)
{
    return pass(t, l, 1, epoch, st, NULL);
}

int ds_trainer_evaluate(ds_trainer *t, ds_loader *l, ds_epoch_stats *st, float *probs)
{
    return pass(t, l, 0, 0, st, probs);
}

int ds_trainer_fit(ds_trainer *t, ds_loader *l, int first)
{
    for (int e = first + 1; e <= t->cfg.epochs; e++) {
        ds_epoch_log log = {.epoch = e, .epochs = t->cfg.epochs, .lr = t->n_opt ? ds_optim_lr(t->opt[0]) : 0};
        int rc = ds_trainer_epoch(t, l, e, &log.train);
        if (rc) return rc;
        if (t->size > 1) { /* the replicas must still agree: a silent divergence would train N models */
            if (!t->p->g->sync_bn && broadcast_state(t, 0) != 0) return -1; /* rank 0's running statistics */
            double mine = state_hash(t->p->g), h[2] = {mine, -mine}; /* max of h and of −h: all equal iff max = min */
            if (ds_comm_allreduce_f64(t->comm, h, 2, DS_COMM_MAX) != 0) return -1;
            if (h[0] != -h[1])
                return ds_fail("epoch %d: the ranks' weights differ (a non-deterministic reduction or thread count); "
                               "stopping rather than training %d different models", e, t->size);
        }
        if (t->h.validate) rc = t->h.validate(t->h.user, &log);
        if ((rc = agree(t, rc)) != 0) return rc;
        /* without a monitor nothing can choose an epoch: the last is the best (docs/design.md) */
        if (!log.has_monitor) {
            log.is_best = 1;
        } else {
            double m = log.monitor;
            int better = !t->has_best || (t->cfg.higher_is_better ? m > t->best : m < t->best);
            if (better) t->best = m, t->has_best = 1, t->bad_epochs = 0;
            else t->bad_epochs++;
            log.is_best = better;
            log.stop = t->cfg.patience > 0 && t->bad_epochs >= t->cfg.patience && e < t->cfg.epochs;
        }
        log.bad_epochs = t->bad_epochs;
        if (t->h.epoch_end) rc = t->h.epoch_end(t->h.user, &log);
        if ((rc = agree(t, rc)) != 0) return rc;
        if (log.stop) break;
    }
    return 0;
}

/* ---- the plain loops of a one-input one-head graph, through the trainer ---- */

static int simple(ds_graph *g, ds_optim *o, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits, ds_node *loss,
                  ds_epoch_stats *st, int train)
{
    ds_program p = {.g = g, .n_inputs = 1, .n_feeds = 1, .n_heads = 1, .feeds = {x}, .feed_names = {"x"},
                    .labels = y, .loss = loss};
    p.heads[0] = (ds_head){.name = "output", .loss_kind = DS_LOSS_SOFTMAX, .weight = 1, .out = logits,
                           .target = y, .loss = loss};
    p.heads[0].classes = logits->shape.ndim == 2 ? logits->shape.d[1] : (int)(ds_numel(logits) / (size_t)logits->shape.d[0]);
    ds_trainer *t = ds_trainer_new(&p, &o, o ? 1 : 0, &(ds_trainer_cfg){.epochs = 1}, NULL);
    if (!t) return -1;
    int rc = train ? ds_trainer_epoch(t, l, 1, st) : ds_trainer_evaluate(t, l, st, NULL);
    ds_trainer_free(t);
    return rc;
}

int ds_train_epoch(ds_graph *g, ds_optim *o, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits,
                   ds_node *loss, ds_epoch_stats *st)
{
    return simple(g, o, l, x, y, logits, loss, st, 1);
}

int ds_evaluate(ds_graph *g, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits, ds_node *loss,
                ds_epoch_stats *st)
{
    return simple(g, NULL, l, x, y, logits, loss, st, 0);
}
