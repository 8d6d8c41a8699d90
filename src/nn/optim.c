/* optim.c — SGD, Adam, AdamW and RMSprop with PyTorch's update rules,
 * learning-rate schedules and global gradient-norm clipping.
 *
 * Each update follows torch.optim's single-tensor (foreach=False) code in
 * the same order of float operations; scalar coefficients are formed in
 * double and rounded to float once, as PyTorch does with Python scalars.
 * All optimizer state lives in allocations made by ds_optim_new_groups, so
 * a step never allocates.
 *
 * Parameter groups (PyTorch's param_groups): each group has its own base
 * rate, weight decay and schedule, all driven by the one step count; the
 * moments keep the one layout of every trainable parameter in graph order
 * (frozen ones included, left at zero), so checkpoints do not depend on
 * the grouping.
 */
#include "internal.h"
#include "param_groups.h"

#include <math.h>
#include <stdlib.h>

typedef struct opt_group {
    float lr, wd;     /* base rate, weight decay */
    ds_schedule sched;
    int frozen;
} opt_group;

/* Per-step scalars, rounded to float where PyTorch hands a Python float to a
 * float kernel. */
typedef struct coefs {
    float lr, wd, mom, b1, one_b1, b2, one_b2, eps, alpha, one_alpha;
    float step_size; /* Adam: lr/(1 − β₁ᵗ) */
    float bc2_sqrt;  /* Adam: √(1 − β₂ᵗ) */
    float decay;     /* AdamW: 1 − lr·wd */
} coefs;

struct ds_optim {
    ds_graph *g;
    ds_optim_cfg cfg;     /* defaults filled in */
    long steps;
    float *state;         /* per parameter, state_per_elem() buffers of numel floats */
    int n_groups;         /* the caller's groups, then the default group */
    opt_group *groups;
    int *group_of;        /* per g->params entry: its group, −1 for a buffer */
    unsigned char *no_wd; /* per g->params entry: no_decay applies */
    coefs *k;             /* per group: [with weight decay, without], set each step */
};

/* Buffers per parameter element: SGD momentum; Adam m and v; RMSprop
 * square average and momentum. */
static int state_per_elem(const ds_optim_cfg *c)
{
    switch (c->kind) {
    case DS_SGD: return c->momentum != 0;
    case DS_ADAM:
    case DS_ADAMW: return 2;
    case DS_RMSPROP: return 1 + (c->momentum > 0);
    }
    return 0;
}

static int bad_unit(float x) { return !(x >= 0 && x < 1); } /* x ∉ [0, 1), NaN included */

static int check_schedule(const ds_schedule *s)
{
    if (s->kind < DS_SCHED_CONSTANT || s->kind > DS_SCHED_COSINE)
        return ds_fail("optimizer: unknown schedule.kind %d", (int)s->kind);
    if (s->kind == DS_SCHED_STEP && s->step_size < 1)
        return ds_fail("optimizer: schedule.step_size must be >= 1 (got %d)", s->step_size);
    if (s->kind == DS_SCHED_STEP && !(s->gamma > 0 && isfinite(s->gamma)))
        return ds_fail("optimizer: schedule.gamma must be > 0 and finite (got %g)",
                       (double)s->gamma);
    if (s->kind == DS_SCHED_COSINE && s->t_max < 1)
        return ds_fail("optimizer: schedule.t_max must be >= 1 (got %d)", s->t_max);
    if (s->kind == DS_SCHED_COSINE && !(s->eta_min >= 0 && isfinite(s->eta_min)))
        return ds_fail("optimizer: schedule.eta_min must be >= 0 and finite (got %g)",
                       (double)s->eta_min);
    if (s->warmup_steps < 0)
        return ds_fail("optimizer: schedule.warmup_steps must be >= 0 (got %d)", s->warmup_steps);
    if (s->warmup_steps > 0 && !(s->warmup_start >= 0 && s->warmup_start <= 1))
        return ds_fail("optimizer: schedule.warmup_start must be in [0, 1] (got %g)",
                       (double)s->warmup_start);
    return 0;
}

static int check_cfg(const ds_optim_cfg *c)
{
    if (c->kind < DS_SGD || c->kind > DS_RMSPROP)
        return ds_fail("optimizer: unknown kind %d", (int)c->kind);
    if (!(c->lr > 0 && isfinite(c->lr)))
        return ds_fail("optimizer: lr must be > 0 and finite (got %g)", (double)c->lr);
    if (bad_unit(c->momentum))
        return ds_fail("optimizer: momentum must be in [0, 1) (got %g)", (double)c->momentum);
    if (c->nesterov && (c->kind != DS_SGD || c->momentum == 0))
        return ds_fail("optimizer: nesterov needs SGD with momentum > 0");
    if (bad_unit(c->beta1))
        return ds_fail("optimizer: beta1 must be in [0, 1) (got %g)", (double)c->beta1);
    if (bad_unit(c->beta2))
        return ds_fail("optimizer: beta2 must be in [0, 1) (got %g)", (double)c->beta2);
    if (bad_unit(c->alpha))
        return ds_fail("optimizer: alpha must be in [0, 1) (got %g)", (double)c->alpha);
    if (!(c->eps > 0 && isfinite(c->eps)))
        return ds_fail("optimizer: eps must be > 0 and finite (got %g)", (double)c->eps);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return ds_fail("optimizer: weight_decay must be >= 0 and finite (got %g)",
                       (double)c->weight_decay);
    if (!(c->clip_norm >= 0 && isfinite(c->clip_norm)))
        return ds_fail("optimizer: clip_norm must be >= 0 and finite (got %g)",
                       (double)c->clip_norm);
    return check_schedule(&c->schedule);
}

static int check_groups(const ds_param_group *gr, int n)
{
    if (n < 0 || (n > 0 && !gr))
        return ds_fail("ds_optim_new_groups: n_groups is %d and groups is %s", n, gr ? "set" : "NULL");
    for (int k = 0; k < n; k++) {
        char lb[32];
        const char *label = ds_param_group_label(gr, k, lb, sizeof lb);
        const ds_param_group *p = &gr[k];
        if (p->set & ~(DS_PG_LR | DS_PG_WD | DS_PG_SCHED))
            return ds_fail("%s: unknown bits 0x%x in set (DS_PG_LR | DS_PG_WD | DS_PG_SCHED)", label, p->set);
        if (p->frozen && p->set)
            return ds_fail("%s: a frozen group is never updated; it takes no lr, weight_decay or schedule",
                           label);
        if ((p->set & DS_PG_LR) && !(p->lr > 0 && isfinite(p->lr)))
            return ds_fail("%s lr: must be > 0 and finite (got %g)", label, (double)p->lr);
        if ((p->set & DS_PG_WD) && !(p->weight_decay >= 0 && isfinite(p->weight_decay)))
            return ds_fail("%s weight_decay: must be >= 0 and finite (got %g)", label, (double)p->weight_decay);
        if ((p->set & DS_PG_SCHED) && check_schedule(&p->schedule) != 0)
            return ds_fail_prefix("%s: ", label);
    }
    return 0;
}

ds_optim *ds_optim_new(ds_graph *g, const ds_optim_cfg *cfg) { return ds_optim_new_groups(g, cfg, NULL, 0, 0); }

void ds_optim_free(ds_optim *o)
{
    if (!o) return;
    free(o->state);
    free(o->groups);
    free(o->group_of);
    free(o->no_wd);
    free(o->k);
    free(o);
}

ds_optim *ds_optim_new_groups(ds_graph *g, const ds_optim_cfg *cfg, const ds_param_group *groups,
                              int n_groups, unsigned no_decay)
{
    if (!g || !cfg) {
        ds_fail("ds_optim_new: graph and cfg must not be NULL");
        return NULL;
    }
    if (!g->compiled) {
        ds_fail("ds_optim_new: compile the graph first");
        return NULL;
    }
    ds_optim_cfg c = *cfg;
    if (c.beta1 == 0) c.beta1 = 0.9f;
    if (c.beta2 == 0) c.beta2 = 0.999f;
    if (c.eps == 0) c.eps = 1e-8f;
    if (c.alpha == 0) c.alpha = 0.99f;
    if (check_cfg(&c) != 0 || check_groups(groups, n_groups) != 0) return NULL;

    size_t total = 0;
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i]->kind == DS_NODE_PARAM) total += ds_numel(g->params[i]);
    total *= (size_t)state_per_elem(&c);

    ds_optim *o = calloc(1, sizeof *o);
    size_t np = (size_t)g->n_params + 1, ng = (size_t)n_groups + 1;
    if (!o || (total && !(o->state = calloc(total, sizeof(float)))) ||
        !(o->groups = calloc(ng, sizeof *o->groups)) || !(o->group_of = calloc(np, sizeof *o->group_of)) ||
        !(o->no_wd = calloc(np, 1)) || !(o->k = calloc(2 * ng, sizeof *o->k))) {
        ds_optim_free(o);
        ds_fail("out of memory allocating %zu floats of optimizer state", total);
        return NULL;
    }
    o->g = g;
    o->cfg = c;
    o->n_groups = n_groups + 1;
    for (int k = 0; k < n_groups; k++) {
        const ds_param_group *p = &groups[k];
        o->groups[k] = (opt_group){p->set & DS_PG_LR ? p->lr : c.lr, p->set & DS_PG_WD ? p->weight_decay : c.weight_decay,
                                   p->set & DS_PG_SCHED ? p->schedule : c.schedule, p->frozen != 0};
    }
    o->groups[n_groups] = (opt_group){c.lr, c.weight_decay, c.schedule, 0};
    if (ds_param_groups_assign(g, groups, n_groups, no_decay, o->group_of, o->no_wd) != 0) {
        ds_optim_free(o);
        return NULL;
    }
    /* frozen: no gradient at all (backward skips it), never updated */
    int trainable = 0, frozen = 0;
    for (int i = 0; i < g->n_params; i++)
        if (o->group_of[i] >= 0) {
            trainable++;
            frozen += o->groups[o->group_of[i]].frozen;
        }
    if (frozen && frozen == trainable) {
        ds_fail("optimizer: every trainable parameter is in a frozen group; nothing would train");
        ds_optim_free(o);
        return NULL;
    }
    for (int i = 0; i < g->n_params; i++)
        if (o->group_of[i] >= 0 && o->groups[o->group_of[i]].frozen && ds_graph_freeze(g, g->params[i], 1) != 0) {
            ds_optim_free(o);
            return NULL;
        }
    return o;
}

/* Σ over trainable gradients of g², in double so that float gradients cannot
 * overflow it. */
/* Σ g² over all gradients: 16 float lanes per block of 1024 (vectorised),
 * blocks added in order in double: the same sum on every run. */
static double grad_sq_sum(const ds_graph *g)
{
    double s = 0;
    for (int i = 0; i < g->n_params; i++) {
        const ds_node *p = g->params[i];
        if (p->kind != DS_NODE_PARAM || !p->grad) continue;
        const float *v = p->grad;
        size_t n = ds_numel(p), j = 0;
        while (j < n) {
            size_t end = n - j > 1024 ? j + 1024 : n;
            float lane[16] = {0};
            for (; j + 16 <= end; j += 16)
                for (int l = 0; l < 16; l++) lane[l] += v[j + l] * v[j + l];
            for (int l = 0; l < 16; l++) s += lane[l];
            for (; j < end; j++) s += (double)v[j] * v[j];
        }
    }
    return s;
}

float ds_grad_norm(const ds_graph *g) { return g ? (float)sqrt(grad_sq_sum(g)) : 0.0f; }

static int fail_nonfinite(const ds_graph *g)
{
    for (int i = 0; i < g->n_params; i++) {
        const ds_node *p = g->params[i];
        if (p->kind != DS_NODE_PARAM || !p->grad) continue;
        for (size_t j = 0, n = ds_numel(p); j < n; j++)
            if (!isfinite(p->grad[j]))
                return ds_fail("optimizer step: gradient of '%s' is %g at element %zu; "
                               "weights left unchanged",
                               p->name, (double)p->grad[j], j);
    }
    return ds_fail("optimizer step: the gradient norm is not finite; weights left unchanged");
}


/* torch.optim.SGD, dampening 0:
 * d = g + wd·p; buf = mom·buf + d; d = nesterov ? d + mom·buf : buf; p −= lr·d.
 * The first step's buf = 0·mom + d = d equals PyTorch's clone(d). */
static void sgd(const coefs *k, int nesterov, float *p, const float *g, float *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (k->wd != 0) d = d + k->wd * p[i];
        if (buf) {
            buf[i] = buf[i] * k->mom + d;
            d = nesterov ? d + k->mom * buf[i] : buf[i];
        }
        p[i] = p[i] + -k->lr * d;
    }
}

/* torch.optim.Adam / AdamW: m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
 * p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + eps). Adam adds wd·p to g first;
 * AdamW multiplies p by 1 − lr·wd first. */
static void adam(const coefs *k, int decoupled, float *p, const float *g, float *m, float *v,
                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] = p[i] * k->decay;
        else if (k->wd != 0) gi = gi + k->wd * p[i];
        m[i] = m[i] * k->b1 + k->one_b1 * gi;
        v[i] = v[i] * k->b2 + k->one_b2 * gi * gi;
        float denom = sqrtf(v[i]) / k->bc2_sqrt + k->eps;
        p[i] = p[i] + -k->step_size * m[i] / denom;
    }
}

/* torch.optim.RMSprop (not centered): g += wd·p; s = αs + (1−α)g²;
 * a = √s + eps; with momentum buf = mom·buf + g/a, p −= lr·buf;
 * without, p −= lr·g/a. */
static void rmsprop(const coefs *k, float *p, const float *g, float *sq, float *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (k->wd != 0) gi = gi + k->wd * p[i];
        sq[i] = sq[i] * k->alpha + k->one_alpha * gi * gi;
        float avg = sqrtf(sq[i]) + k->eps;
        if (buf) {
            buf[i] = buf[i] * k->mom + gi / avg;
            p[i] = p[i] + -k->lr * buf[i];
        } else {
            p[i] = p[i] + -k->lr * gi / avg;
        }
    }
}

typedef struct {
    const coefs *k;
    const ds_optim_cfg *c;
    ds_node *p;
    float *s;
    size_t n;
    int per;
} update_task;

/* elements [lo, hi) of one parameter */
static void update_range(void *arg, long lo, long hi)
{
    const update_task *t = arg;
    size_t n = t->n, len = (size_t)(hi - lo);
    float *v = t->p->val + lo, *s = t->s;
    const float *gr = t->p->grad + lo;
    switch (t->c->kind) {
    case DS_SGD: sgd(t->k, t->c->nesterov, v, gr, t->per ? s + lo : NULL, len); break;
    case DS_ADAM:
    case DS_ADAMW: adam(t->k, t->c->kind == DS_ADAMW, v, gr, s + lo, s + n + lo, len); break;
    case DS_RMSPROP: rmsprop(t->k, v, gr, s + lo, t->per > 1 ? s + n + lo : NULL, len); break;
    }
}

static void make_coefs(const ds_optim_cfg *c, double lr, float wd, double t, coefs *k)
{
    *k = (coefs){
        .lr = (float)lr,
        .wd = wd,
        .mom = c->momentum,
        .b1 = c->beta1,
        .one_b1 = (float)(1.0 - c->beta1),
        .b2 = c->beta2,
        .one_b2 = (float)(1.0 - c->beta2),
        .eps = c->eps,
        .alpha = c->alpha,
        .one_alpha = (float)(1.0 - c->alpha),
        .step_size = (float)(lr / (1.0 - pow(c->beta1, t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t)),
        .decay = (float)(1.0 - lr * wd),
    };
}

int ds_optim_step(ds_optim *o)
{
    if (!o) return ds_fail("ds_optim_step: optimizer is NULL");
    const ds_optim_cfg *c = &o->cfg;
    ds_graph *g = o->g;

    double norm = sqrt(grad_sq_sum(g));
    if (!isfinite(norm)) return fail_nonfinite(g);
    /* clip_grad_norm_: g *= min(1, max_norm/(‖g‖ + 1e-6)) */
    float clip = c->clip_norm > 0 ? (float)(c->clip_norm / (norm + 1e-6)) : 1.0f;
    if (clip < 1.0f)
        for (int i = 0; i < g->n_params; i++) {
            ds_node *p = g->params[i];
            if (p->kind != DS_NODE_PARAM || !p->grad) continue;
            for (size_t j = 0, n = ds_numel(p); j < n; j++) p->grad[j] *= clip;
        }

    double t = (double)(o->steps + 1);
    for (int gi = 0; gi < o->n_groups; gi++) {
        const opt_group *gr = &o->groups[gi];
        double lr = ds_schedule_lr(&gr->sched, gr->lr, o->steps);
        make_coefs(c, lr, gr->wd, t, &o->k[2 * gi]);
        make_coefs(c, lr, 0.0f, t, &o->k[2 * gi + 1]);
    }

    int per = state_per_elem(c);
    float *s = o->state;
    for (int i = 0; i < g->n_params; i++) {
        ds_node *p = g->params[i];
        if (p->kind != DS_NODE_PARAM) continue;
        size_t n = ds_numel(p);
        int gi = o->group_of[i];
        if (p->grad && !o->groups[gi].frozen) {
            update_task t = {&o->k[2 * gi + o->no_wd[i]], c, p, s, n, per};
            ds_parallel_for((long)n, 16384, update_range, &t); /* elementwise: any split gives the same */
        }
        s += (size_t)per * n;
    }
    o->steps++;
    return 0;
}

float ds_optim_group_lr(const ds_optim *o, int k)
{
    if (!o || k < 0 || k >= o->n_groups || o->groups[k].frozen) return 0.0f;
    return ds_schedule_lr(&o->groups[k].sched, o->groups[k].lr, o->steps);
}

float ds_optim_lr(const ds_optim *o) { return o ? ds_optim_group_lr(o, o->n_groups - 1) : 0.0f; }

int ds_optim_num_groups(const ds_optim *o) { return o ? o->n_groups : 0; }

static int param_index(const ds_optim *o, const ds_node *param)
{
    for (int i = 0; o && param && i < o->g->n_params; i++)
        if (o->g->params[i] == param) return o->group_of[i] >= 0 ? i : -1;
    return -1;
}

int ds_optim_param_group(const ds_optim *o, const ds_node *param)
{
    int i = param_index(o, param);
    return i < 0 ? -1 : o->group_of[i];
}

float ds_optim_param_weight_decay(const ds_optim *o, const ds_node *param)
{
    int i = param_index(o, param);
    if (i < 0 || o->no_wd[i] || o->groups[o->group_of[i]].frozen) return 0.0f;
    return o->groups[o->group_of[i]].wd;
}

long ds_optim_steps(const ds_optim *o) { return o ? o->steps : 0; }

/* Warm-up t < W: lr·(w₀ + (1 − w₀)·t/W); afterwards the base schedule at t − W:
 * step lr·γ^⌊t/step_size⌋, cosine η_min + (lr − η_min)(1 + cos(π·min(t, T)/T))/2. */
float ds_schedule_lr(const ds_schedule *s, float lr, long t)
{
    if (!s) return lr;
    if (t < 0) t = 0;
    double base = lr;
    if (s->warmup_steps > 0) {
        if (t < s->warmup_steps)
            return (float)(base * (s->warmup_start +
                                   (1.0 - s->warmup_start) * (double)t / s->warmup_steps));
        t -= s->warmup_steps;
    }
    switch (s->kind) {
    case DS_SCHED_STEP:
        if (s->step_size < 1) return lr;
        return (float)(base * pow(s->gamma, (double)(t / s->step_size)));
    case DS_SCHED_COSINE: {
        if (s->t_max < 1) return lr;
        double tc = t < s->t_max ? (double)t : (double)s->t_max;
        double pi = acos(-1.0);
        return (float)(s->eta_min + (base - s->eta_min) * (1.0 + cos(pi * tc / s->t_max)) / 2.0);
    }
    case DS_SCHED_CONSTANT: break;
    }
    return lr;
}

void ds_schedule_to_steps(ds_schedule *s, int in_epochs, int batches_per_epoch, int epochs)
{
    if (!s) return;
    if (in_epochs) {
        s->step_size *= batches_per_epoch;
        s->t_max *= batches_per_epoch;
    }
    if (s->kind == DS_SCHED_COSINE && s->t_max <= 0) {
        s->t_max = epochs * batches_per_epoch - s->warmup_steps;
        if (s->t_max < 1) s->t_max = 1;
    }
}

/* ---- state for checkpoints ---- */

int ds_optim_num_state(const ds_optim *o) { return o ? state_per_elem(&o->cfg) : 0; }

ds_optim_kind ds_optim_kind_of(const ds_optim *o) { return o->cfg.kind; }

/* Trainable parameter `param` owns [off, off + per·n) of state, buffer k at
 * off + k·n (the layout ds_optim_step walks). */
float *ds_optim_state(ds_optim *o, int param, int k)
{
    if (!o || param < 0 || k < 0 || k >= state_per_elem(&o->cfg)) return NULL;
    size_t off = 0, per = (size_t)state_per_elem(&o->cfg);
    for (int i = 0, t = 0; i < o->g->n_params; i++) {
        const ds_node *p = o->g->params[i];
        if (p->kind != DS_NODE_PARAM) continue;
        if (t++ == param) return o->state + off + (size_t)k * ds_numel(p);
        off += per * ds_numel(p);
    }
    return NULL;
}

void ds_optim_set_steps(ds_optim *o, long steps)
{
    if (o) o->steps = steps < 0 ? 0 : steps;
}
