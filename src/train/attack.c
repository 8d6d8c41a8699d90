/* attack.c — a classifier seen from its first input in the data's own
 * units: gradients of a class score or of the loss with respect to that
 * input (the attribution maps' raw material), and adversarial examples
 * (FGSM, PGD; L∞ or L2). The checkpoint's normalisation x' = (x − m)/s is
 * part of the model: rows are normalised into the first feed before each
 * forward, and a gradient is taken back through it (∂/∂x = ∂/∂x' / s), so
 * that an epsilon, a clipping range and a map are all in the units the
 * user's data is in. Everything runs on the caller's graph (its weights,
 * its other feeds), with parameter gradients off: nothing is copied.
 * docs/design.md, "Attribution and attacks". */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* values per sample of the first feed (its shape's d[0] is the current batch) */
static size_t sample_of(const ds_program *p)
{
    const ds_node *x = p->feeds[0];
    return ds_numel(x) / (size_t)x->shape.d[0];
}

/* elements per normalisation channel of one sample (0: no normalisation) */
static size_t per_channel(const ds_program *p, const ds_norm *norm)
{
    if (!norm || !norm->channels) return 0;
    return sample_of(p) / (size_t)norm->channels;
}

static int check_probe(const ds_program *p, const ds_norm *norm, int b)
{
    if (!p || !p->g || !p->g->compiled || !p->n_feeds) return ds_fail("attribution: a compiled program is needed");
    if (p->g->inference) return ds_fail("attribution: the graph was planned for inference (no gradients)");
    if (!p->feeds[0]->grad_planned)
        return ds_fail("attribution: input '%s' has no gradient (ds_node_set_requires_grad before compiling)",
                       p->feeds[0]->name);
    if (b < 1 || b > p->g->max_batch) return ds_fail("attribution: %d rows for a graph of batch %d", b, p->g->max_batch);
    if (ds_program_class_head(p) < 0) return ds_fail("attribution: the model has no classifying head");
    size_t sample = sample_of(p);
    if (norm && norm->channels && sample % (size_t)norm->channels)
        return ds_fail("attribution: a normalisation of %d channels for samples of %zu values", norm->channels, sample);
    return 0;
}

int ds_feed_normalized(ds_program *p, const ds_norm *norm, const float *x, int b)
{
    if (check_probe(p, norm, b) != 0) return -1;
    if (b != p->g->batch && ds_graph_set_batch(p->g, b) != 0) return -1;
    size_t sample = sample_of(p), pc = per_channel(p, norm);
    float *dst = p->feeds[0]->val;
    if (!pc) {
        memcpy(dst, x, (size_t)b * sample * sizeof *dst);
        return 0;
    }
    for (size_t i = 0; i < (size_t)b * sample; i++) {
        size_t c = i % sample / pc; /* in double, as ds_norm_apply: the same floats as eval's */
        dst[i] = (float)(((double)x[i] - norm->mean[c]) / norm->std[c]);
    }
    return 0;
}

int ds_input_grad(ds_program *p, const ds_norm *norm, const float *x, int b, const float *cls, int of, float *grad)
{
    if (ds_feed_normalized(p, norm, x, b) != 0) return -1;
    if (of != DS_GRAD_SCORE && of != DS_GRAD_LOSS) return ds_fail("ds_input_grad: unknown target %d", of);
    ds_graph *g = p->g;
    const ds_head *hd = &p->heads[ds_program_class_head(p)];
    if (of == DS_GRAD_SCORE && hd->tree)
        return ds_fail("ds_input_grad: a hierarchical head's outputs are not class scores; use the loss");
    for (int r = 0; r < b; r++)
        if (!(cls[r] >= 0 && cls[r] < hd->classes && cls[r] == (int)cls[r]))
            return ds_fail("ds_input_grad: row %d: class %g is not one of 0..%d", r, (double)cls[r], hd->classes - 1);
    if (p->labels) memcpy(p->labels->val, cls, (size_t)b * sizeof *cls);
    bool params_were_on = !g->param_grads_off, input_was_off = !ds_graph_input_grad(p->feeds[0]);
    if (params_were_on && ds_graph_set_param_grads(g, 0) != 0) return -1;
    if (input_was_off && ds_graph_set_input_grad(g, p->feeds[0], 1) != 0) return -1;
    size_t n = (size_t)b * sample_of(p);
    memset(p->feeds[0]->grad, 0, n * sizeof(float));
    int rc = ds_graph_forward(g);
    if (rc == 0 && of == DS_GRAD_LOSS) {
        /* the head's loss is a mean over rows: seeded with b, each row's
         * gradient is that of its own loss, whatever the batch */
        float seed = (float)b;
        rc = ds_graph_backward(g, hd->loss, &seed);
    } else if (rc == 0) {
        size_t k = (size_t)hd->classes;
        float *dout = calloc((size_t)b * k, sizeof *dout); /* the seed: one-hot rows */
        if (!dout) rc = ds_fail("out of memory");
        for (int r = 0; rc == 0 && r < b; r++) dout[(size_t)r * k + (size_t)cls[r]] = 1;
        if (rc == 0) rc = ds_graph_backward(g, hd->out, dout);
        free(dout);
    }
    const float *gx = p->feeds[0]->grad;
    size_t sample = sample_of(p), pc = per_channel(p, norm);
    for (size_t i = 0; rc == 0 && i < n; i++) grad[i] = pc ? (float)(gx[i] / norm->std[i % sample / pc]) : gx[i];
    /* as the caller had them (after reading: off, the input's gradient buffer is gone) */
    if (params_were_on) ds_graph_set_param_grads(g, 1);
    if (input_was_off) ds_graph_set_input_grad(g, p->feeds[0], 0);
    return rc ? -1 : 0;
}

/* ---- adversarial examples ---- */

struct ds_attacker {
    ds_program *p;
    const ds_norm *norm;
    ds_attack_cfg c;
    size_t sample;
    float *grad, *best, *probs;
    int *fooled, *wrong;
};

ds_attacker *ds_attacker_new(ds_program *p, const ds_norm *norm, const ds_attack_cfg *c)
{
    if (check_probe(p, norm, 1) != 0) return NULL;
    if (!c || (c->method != DS_ATTACK_FGSM && c->method != DS_ATTACK_PGD)) {
        ds_fail("attack: method must be fgsm or pgd");
        return NULL;
    }
    if (!(c->eps >= 0 && isfinite(c->eps))) {
        ds_fail("attack: eps must be >= 0 and finite (got %g)", (double)c->eps);
        return NULL;
    }
    if (c->method == DS_ATTACK_PGD && (c->steps < 1 || c->restarts < 0 || !(c->step_size >= 0 && isfinite(c->step_size)))) {
        ds_fail("attack: PGD needs steps >= 1, restarts >= 0 and a step size >= 0 (got %d, %d, %g)", c->steps,
                c->restarts, (double)c->step_size);
        return NULL;
    }
    if (c->clip && !(c->lo < c->hi)) {
        ds_fail("attack: the clipping range [%g, %g] is empty", (double)c->lo, (double)c->hi);
        return NULL;
    }
    ds_attacker *a = calloc(1, sizeof *a);
    int mb = p->g->max_batch, classes = p->heads[ds_program_class_head(p)].classes;
    size_t sample = sample_of(p);
    if (!a || !(a->grad = malloc((size_t)mb * sample * sizeof(float))) ||
        !(a->best = malloc((size_t)mb * sample * sizeof(float))) ||
        !(a->probs = malloc((size_t)mb * (size_t)classes * sizeof(float))) ||
        !(a->fooled = malloc((size_t)mb * sizeof(int))) || !(a->wrong = malloc((size_t)mb * sizeof(int)))) {
        ds_attacker_free(a);
        ds_fail("out of memory");
        return NULL;
    }
    a->p = p, a->norm = norm, a->c = *c, a->sample = sample;
    if (a->c.restarts < 1) a->c.restarts = 1;
    if (a->c.method == DS_ATTACK_PGD && a->c.step_size == 0) a->c.step_size = 2.5f * a->c.eps / (float)a->c.steps;
    return a;
}

void ds_attacker_free(ds_attacker *a)
{
    if (!a) return;
    free(a->grad), free(a->best), free(a->probs), free(a->fooled), free(a->wrong);
    free(a);
}

const ds_attack_cfg *ds_attacker_cfg(const ds_attacker *a) { return &a->c; }

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* xa = clip(x + proj(xa − x)): back into the ball around x and the valid range */
static void project(const ds_attacker *a, const float *x, float *xa, int b)
{
    const ds_attack_cfg *c = &a->c;
    for (int r = 0; r < b; r++) {
        const float *x0 = x + (size_t)r * a->sample;
        float *v = xa + (size_t)r * a->sample;
        if (c->l2) {
            double sq = 0;
            for (size_t i = 0; i < a->sample; i++) sq += (double)(v[i] - x0[i]) * (v[i] - x0[i]);
            double nrm = sqrt(sq), f = nrm > c->eps ? c->eps / nrm : 1;
            if (f < 1)
                for (size_t i = 0; i < a->sample; i++) v[i] = x0[i] + (float)((v[i] - x0[i]) * f);
        } else {
            for (size_t i = 0; i < a->sample; i++) v[i] = x0[i] + clampf(v[i] - x0[i], -c->eps, c->eps);
        }
        if (c->clip)
            for (size_t i = 0; i < a->sample; i++) v[i] = clampf(v[i], c->lo, c->hi);
    }
}

/* xa += step · sign(g) (L∞) or step · g/‖g‖₂ (L2), row by row */
static void ascend(const ds_attacker *a, float *xa, const float *g, int b, float step)
{
    for (int r = 0; r < b; r++) {
        const float *gr = g + (size_t)r * a->sample;
        float *v = xa + (size_t)r * a->sample;
        if (a->c.l2) {
            double sq = 0;
            for (size_t i = 0; i < a->sample; i++) sq += (double)gr[i] * gr[i];
            if (!(sq > 0)) continue;
            float f = (float)(step / sqrt(sq));
            for (size_t i = 0; i < a->sample; i++) v[i] += f * gr[i];
        } else {
            for (size_t i = 0; i < a->sample; i++) v[i] += gr[i] > 0 ? step : gr[i] < 0 ? -step : 0;
        }
    }
}

/* a uniform point of the ball around x (L2: a uniform direction, radius eps·u^(1/d)) */
static void random_start(const ds_attacker *a, const float *x, float *xa, int b, ds_rng *rng)
{
    float eps = a->c.eps;
    for (int r = 0; r < b; r++) {
        const float *x0 = x + (size_t)r * a->sample;
        float *v = xa + (size_t)r * a->sample;
        if (a->c.l2) {
            double sq = 0;
            for (size_t i = 0; i < a->sample; i++) v[i] = ds_rng_normal(rng), sq += (double)v[i] * v[i];
            double rad = eps * pow(ds_rng_uniform(rng), 1.0 / (double)a->sample), f = sq > 0 ? rad / sqrt(sq) : 0;
            for (size_t i = 0; i < a->sample; i++) v[i] = x0[i] + (float)(v[i] * f);
        } else {
            for (size_t i = 0; i < a->sample; i++) v[i] = x0[i] + eps * (2 * ds_rng_uniform(rng) - 1);
        }
    }
    project(a, x, xa, b);
}

/* forward xa and mark the rows it classifies as something other than y */
static int judge(ds_attacker *a, const float *xa, const float *y, int b, int *wrong)
{
    ds_program *p = a->p;
    if (ds_feed_normalized(p, a->norm, xa, b) != 0) return -1;
    if (p->labels) memcpy(p->labels->val, y, (size_t)b * sizeof *y);
    if (ds_graph_forward(p->g) != 0) return -1;
    int h = ds_program_class_head(p), k = p->heads[h].classes;
    if (ds_program_probs(p, h, b, 0, a->probs) != 0) return -1;
    for (int r = 0; r < b; r++) wrong[r] = ds_argmax(a->probs + (size_t)r * k, k) != (int)y[r];
    return 0;
}

int ds_attacker_run(ds_attacker *a, const float *x, const float *y, int b, ds_rng *rng, float *xa, int *wrong_out)
{
    int *wrong = a->wrong;
    ds_program *p = a->p;
    ds_graph *g = p->g;
    if (b < 1 || b > g->max_batch) return ds_fail("attack: %d rows for a graph of batch %d", b, g->max_batch);
    const ds_attack_cfg *c = &a->c;
    int was_training = g->training, rc = 0;
    ds_graph_set_training(g, 0); /* attacks run in eval mode: dropout off, batch norm's running statistics */
    size_t n = (size_t)b * a->sample;
    memset(a->fooled, 0, (size_t)b * sizeof *a->fooled);
    for (int t = 0; t < (c->method == DS_ATTACK_PGD ? c->restarts : 1) && rc == 0; t++) {
        if (c->method == DS_ATTACK_FGSM) {
            memcpy(xa, x, n * sizeof *xa);
            if ((rc = ds_input_grad(p, a->norm, xa, b, y, DS_GRAD_LOSS, a->grad)) != 0) break;
            ascend(a, xa, a->grad, b, c->eps);
            project(a, x, xa, b);
        } else {
            if (c->random_start) random_start(a, x, xa, b, rng);
            else memcpy(xa, x, n * sizeof *xa);
            for (int s = 0; s < c->steps && rc == 0; s++) {
                if ((rc = ds_input_grad(p, a->norm, xa, b, y, DS_GRAD_LOSS, a->grad)) != 0) break;
                ascend(a, xa, a->grad, b, c->step_size);
                project(a, x, xa, b);
            }
        }
        /* the verdict costs a forward: only when asked for, or to choose between restarts */
        if (rc != 0 || ((wrong_out || c->restarts > 1) && (rc = judge(a, xa, y, b, wrong)) != 0)) break;
        if (c->restarts > 1) { /* a row keeps the first try that fools the model, else the last */
            for (int r = 0; r < b; r++) {
                size_t o = (size_t)r * a->sample;
                if (!a->fooled[r]) memcpy(a->best + o, xa + o, a->sample * sizeof *xa);
                a->fooled[r] |= wrong[r];
            }
        }
    }
    if (rc == 0 && c->restarts > 1) {
        memcpy(xa, a->best, n * sizeof *xa);
        memcpy(wrong, a->fooled, (size_t)b * sizeof *wrong);
    }
    /* the feed holds the rows returned (the last gradient was taken before the last step) */
    if (rc == 0 && (c->restarts > 1 || !wrong_out)) rc = ds_feed_normalized(p, a->norm, xa, b);
    if (rc == 0 && wrong_out) memcpy(wrong_out, wrong, (size_t)b * sizeof *wrong);
    ds_graph_set_training(g, was_training);
    return rc;
}
