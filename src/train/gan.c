/* gan.c — generative adversarial networks through the trainer (Goodfellow
 * et al. 2014; Radford et al. 2016's DCGAN; Mirza & Osindero 2014's
 * conditional GAN). Two programs, two optimizers, two ds_trainers:
 *
 *   the discriminator's trainer runs a step of two passes (pass hook):
 *   the real batch with target 1 − smoothing, then G(z) with target 0;
 *
 *   the generator's trainer has no loss in its graph: after its forward
 *   (one G(z) per iteration, as PyTorch's DCGAN example), its loss_grad hook
 *   runs the discriminator's step on that G(z), then D(G(z)) with the
 *   discriminator's parameter gradients off and its input's on, and hands
 *   dL/d(D's input) back as the gradient the generator's backward starts
 *   from.
 *
 * Both updates thus go through ds_trainer_step: the gradient hook (where an
 * all-reduce goes), clipping and the optimizers are the trainer's. The
 * order is PyTorch's: D on real and fake, then G through the updated D.
 * docs/design.md, "GANs through the trainer"; docs/gan.md. */
#include "internal.h"
#include "../io/json.h"
#include "../io/model.h"

#include <inttypes.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ds_gan {
    ds_gan_model *m;
    ds_gan_cfg cfg;
    int batch, sample;          /* max batch; floats per sample */
    ds_graph *gg, *dg;
    ds_program gp, dp;
    ds_node *d_x, *d_c, *d_target, *d_logit;
    ds_optim *go, *dopt;
    ds_trainer *gt, *dt;
    ds_rng rng;
    ds_gan_scale scale;
    double progress;
    /* the iteration in flight */
    const float *x, *y, *z, *fake_y;
    int b, with_g;
    double loss_d, d_real, d_fake, d_fake_after;
    ds_gan_batch_fn on_batch;
    void *on_batch_user;
};

static double mean_sigmoid(const float *z, int b)
{
    double s = 0;
    for (int i = 0; i < b; i++) s += 1.0 / (1.0 + exp(-(double)z[i]));
    return b ? s / b : 0;
}

/* D's x feed ← src (+ instance noise), its class feed ← cls, target ← t */
static void feed_d(ds_gan *g, const float *src, const float *cls, float t)
{
    int b = g->b;
    size_t n = (size_t)b * (size_t)g->sample;
    float *x = g->d_x->val;
    float sd = g->cfg.instance_noise * (float)(1.0 - g->progress);
    if (sd > 0)
        for (size_t i = 0; i < n; i++) x[i] = src[i] + sd * ds_rng_normal(&g->rng);
    else if (x != src)
        memcpy(x, src, n * sizeof *x);
    if (g->d_c) memcpy(g->d_c->val, cls, (size_t)b * sizeof(float));
    for (int i = 0; i < b; i++) g->d_target->val[i] = t;
}

/* the discriminator's step: pass 0 real, pass 1 fake (G's output as it is) */
static int d_pass(void *user, ds_trainer *t, int b, int k, float *weight)
{
    (void)t, (void)b;
    ds_gan *g = user;
    *weight = 1;
    if (k == 0) {
        feed_d(g, g->x, g->y, 1.0f - g->cfg.label_smoothing);
        return 1;
    }
    if (k == 1) {
        g->d_real = mean_sigmoid(g->d_logit->val, g->b);
        feed_d(g, g->gp.heads[0].out->val, g->fake_y, 0.0f);
        return 1;
    }
    g->d_fake = mean_sigmoid(g->d_logit->val, g->b);
    return 0;
}

/* z and the fake classes into G's feeds */
static void feed_g(ds_gan *g)
{
    int b = g->b, L = g->cfg.latent;
    float *z = g->gp.feeds[0]->val;
    if (g->z) memcpy(z, g->z, (size_t)b * (size_t)L * sizeof *z);
    else
        for (size_t i = 0; i < (size_t)b * (size_t)L; i++) z[i] = ds_rng_normal(&g->rng);
    if (g->cfg.conditional) memcpy(g->gp.feeds[1]->val, g->fake_y, (size_t)b * sizeof(float));
}

static int g_pass(void *user, ds_trainer *t, int b, int k, float *weight)
{
    (void)t, (void)b, (void)weight;
    if (k) return 0;
    feed_g(user);
    return 1;
}

/* after G's forward: D's step on this G(z), then G's loss through the new D */
static int g_loss(void *user, ds_trainer *t, int b, double *loss, const float **dout)
{
    (void)t;
    ds_gan *g = user;
    double ld;
    int rc = ds_trainer_step(g->dt, b, &ld);
    if (rc) return rc;
    g->loss_d = ld;
    int minimax = g->cfg.loss == DS_GAN_MINIMAX;
    /* non-saturating: min −log D(G(z)) (target 1); minimax: min log(1 − D(G(z))) = −BCE(target 0) */
    feed_d(g, g->gp.heads[0].out->val, g->fake_y, minimax ? 0.0f : 1.0f);
    float w = minimax ? -1.0f : 1.0f;
    if (ds_graph_set_param_grads(g->dg, 0) || ds_graph_set_input_grad(g->dg, g->d_x, 1)) return -1;
    /* only the input's gradient: D's parameter gradients stay those of its step (for inspection) */
    memset(g->d_x->grad, 0, ds_shape_numel(g->d_x->shape) * sizeof(float));
    rc = ds_graph_forward(g->dg) || ds_graph_backward(g->dg, g->dp.loss, &w);
    const float *dx = g->d_x->grad; /* its buffer stays; switching off only unhooks it */
    ds_graph_set_input_grad(g->dg, g->d_x, 0);
    ds_graph_set_param_grads(g->dg, 1);
    if (rc) return -1;
    g->d_fake_after = mean_sigmoid(g->d_logit->val, b);
    *loss = (double)w * g->dp.loss->val[0];
    *dout = dx;
    return 0;
}

static int shapes_agree(ds_shape a, ds_shape b)
{
    if (a.ndim != b.ndim) return 0;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return 0;
    return 1;
}

static ds_optim *optim_for(ds_graph *gr, const ds_train_cfg *tc, float lr, const ds_model *m)
{
    ds_optim_cfg oc = tc->optim;
    if (lr > 0) oc.lr = lr;
    return ds_optim_new_groups(gr, &oc, NULL, 0, m->no_decay);
}

/* [train] settings a GAN does not apply are refused, never dropped: a
 * schedule (counted in epochs or steps, it would need the data's batches per
 * epoch and each network's own step count), [group]s, class weights,
 * patience (no validation), adversarial training and the data-parallel
 * settings (a GAN is not data-parallel yet) */
static int check_train(const ds_gan_model *gm)
{
    const ds_train_cfg *tc = ds_gan_model_train_cfg(gm);
    const char *what = tc->optim.schedule.kind != DS_SCHED_CONSTANT ? "schedule="
                       : tc->optim.schedule.warmup_steps > 0      ? "warmup="
                       : tc->class_weight_auto || tc->n_class_weight ? "class_weight="
                       : tc->patience > 0                          ? "patience="
                       : tc->adversarial                           ? "adversarial="
                       : tc->micro_batches > 1                     ? "micro_batches="
                       : tc->sync_bn                               ? "sync_bn="
                       : tc->ordered_allreduce                     ? "allreduce="
                                                                   : NULL;
    if (what) return ds_fail("%s: [train] %s does not apply to a GAN (docs/gan.md); remove it", ds_gan_model_net((ds_gan_model *)gm, 0)->file, what);
    for (int k = 0; k < 2; k++) {
        const ds_model *m = ds_gan_model_net((ds_gan_model *)gm, k);
        if (m->n_groups)
            return ds_fail("%s: [group] in the %s: parameter groups do not apply to a GAN yet (g_lr, d_lr in [gan] "
                           "set each network's rate)", m->file, k ? "discriminator" : "generator");
    }
    return 0;
}

ds_gan *ds_gan_new(ds_gan_model *m, int batch, uint64_t seed)
{
    if (!m || batch < 1) {
        ds_fail("ds_gan_new: a GAN model and batch >= 1 are needed");
        return NULL;
    }
    if (check_train(m)) return NULL;
    ds_gan *g = calloc(1, sizeof *g);
    if (!g) {
        ds_fail("out of memory");
        return NULL;
    }
    g->m = m;
    g->cfg = *ds_gan_model_cfg(m);
    g->batch = batch;
    ds_model *gm = ds_gan_model_net(m, 0), *dm = ds_gan_model_net(m, 1);
    const ds_train_cfg *tc = ds_gan_model_train_cfg(m);
    ds_rng_seed(&g->rng, seed ^ 0x9e3779b97f4a7c15ull);
    g->scale = (ds_gan_scale){DS_GAN_LINEAR, 1, -1, 1}; /* identity until set */
    ds_node *out = NULL, *din[DS_MAX_INPUTS];
    if (!(g->gg = ds_graph_new(seed)) || !(g->dg = ds_graph_new(seed + 1))) goto oom;
    g->gp.g = g->gg;
    if (ds_model_build_net(gm, g->gg, batch, g->gp.feeds, &out)) goto fail;
    g->gp.n_inputs = g->gp.n_feeds = gm->n_inputs;
    for (int k = 0; k < gm->n_inputs; k++) g->gp.feed_names[k] = gm->inputs[k].name;
    g->gp.n_heads = 1;
    g->gp.heads[0] = (ds_head){.name = "generator", .loss_kind = DS_LOSS_MSE, .weight = 1, .out = out};
    if (ds_model_build_net(dm, g->dg, batch, din, &g->d_logit)) goto fail;
    g->d_x = din[0];
    g->d_c = g->cfg.conditional ? din[1] : NULL;
    ds_shape want = g->d_x->shape;
    char a[96], b[96];
    if (!shapes_agree(out->shape, want)) {
        const ds_layer *gl = &gm->layers[gm->n_layers - 1];
        ds_fail("%s: the generator's output is %s (line %d, layer '%s') but the discriminator's input '%s' is %s "
                "(line %d): they must be the same shape",
                gm->file, ds_shape_str(out->shape, a, sizeof a), gl->line, gl->name, dm->inputs[0].name,
                ds_shape_str(want, b, sizeof b), dm->inputs[0].line);
        goto fail;
    }
    if (!(g->d_logit->shape.ndim == 2 && g->d_logit->shape.d[1] == 1)) {
        const ds_layer *dl = &dm->layers[dm->n_layers - 1];
        ds_fail("%s:%d: layer '%s': the discriminator's output is %s; it must be one logit per sample, [%d, 1] "
                "(end with [dense] units=1)",
                dm->file, dl->line, dl->name, ds_shape_str(g->d_logit->shape, a, sizeof a), batch);
        goto fail;
    }
    g->sample = (int)(ds_shape_numel(want) / (size_t)batch);
    if (!(g->d_target = ds_input(g->dg, "target", ds_shape_of(2, batch, 1)))) goto fail;
    ds_node *loss = ds_bce_with_logits(g->dg, g->d_logit, g->d_target);
    if (!loss) goto fail;
    ds_node_set_requires_grad(g->d_x, 1);
    g->dp = (ds_program){.g = g->dg, .n_inputs = dm->n_inputs, .n_feeds = dm->n_inputs + 1, .n_heads = 1,
                         .loss = loss};
    for (int k = 0; k < dm->n_inputs; k++) g->dp.feeds[k] = din[k], g->dp.feed_names[k] = dm->inputs[k].name;
    g->dp.feeds[dm->n_inputs] = g->d_target;
    g->dp.feed_names[dm->n_inputs] = "target";
    g->dp.heads[0] = (ds_head){.name = "discriminator", .loss_kind = DS_LOSS_BCE, .weight = 1,
                               .out = g->d_logit, .target = g->d_target, .loss = loss};
    if (ds_graph_compile(g->gg) || ds_graph_compile(g->dg)) goto fail;
    if (ds_graph_set_input_grad(g->dg, g->d_x, 0)) goto fail;
    ds_graph_set_training(g->gg, 1);
    ds_graph_set_training(g->dg, 1);
    if (!(g->go = optim_for(g->gg, tc, g->cfg.g_lr, gm)) || !(g->dopt = optim_for(g->dg, tc, g->cfg.d_lr, dm)))
        goto fail;
    ds_trainer_cfg tcfg = {.epochs = tc->epochs, .clip_norm = tc->optim.clip_norm};
    ds_trainer_hooks dh = {.user = g, .pass = d_pass};
    ds_trainer_hooks gh = {.user = g, .pass = g_pass, .loss_grad = g_loss};
    if (!(g->dt = ds_trainer_new(&g->dp, &g->dopt, 1, &tcfg, &dh)) ||
        !(g->gt = ds_trainer_new(&g->gp, &g->go, 1, &tcfg, &gh)))
        goto fail;
    return g;
oom:
    ds_fail("out of memory");
fail:
    ds_gan_free(g);
    return NULL;
}

void ds_gan_free(ds_gan *g)
{
    if (!g) return;
    ds_trainer_free(g->gt);
    ds_trainer_free(g->dt);
    ds_optim_free(g->go);
    ds_optim_free(g->dopt);
    ds_graph_free(g->gg);
    ds_graph_free(g->dg);
    free(g);
}

ds_program *ds_gan_program(ds_gan *g, int which) { return which == 0 ? &g->gp : which == 1 ? &g->dp : NULL; }
ds_optim *ds_gan_optim(ds_gan *g, int which) { return which == 0 ? g->go : which == 1 ? g->dopt : NULL; }
ds_rng *ds_gan_rng(ds_gan *g) { return &g->rng; }
void ds_gan_set_scale(ds_gan *g, const ds_gan_scale *s) { g->scale = *s; }
const ds_gan_scale *ds_gan_get_scale(const ds_gan *g) { return &g->scale; }
void ds_gan_set_batch_hook(ds_gan *g, ds_gan_batch_fn fn, void *user) { g->on_batch = fn, g->on_batch_user = user; }
void ds_gan_set_progress(ds_gan *g, double done) { g->progress = done < 0 ? 0 : done > 1 ? 1 : done; }

static int set_batch(ds_gan *g, int b)
{
    if (b != g->gg->batch && ds_graph_set_batch(g->gg, b)) return -1;
    if (b != g->dg->batch && ds_graph_set_batch(g->dg, b)) return -1;
    return 0;
}

/* one iteration: a discriminator step, and with_g a generator step */
static int iterate(ds_gan *g, const float *x, const float *y, int b, const float *z, const float *fake_y, int with_g,
                   ds_gan_stats *st)
{
    if (b < 1 || b > g->batch) return ds_fail("ds_gan_step: batch %d is not in 1..%d", b, g->batch);
    if (g->cfg.conditional && !y) return ds_fail("ds_gan_step: a conditional GAN needs the batch's classes");
    if (g->cfg.conditional)
        for (int i = 0; i < b; i++)
            if (!(y[i] >= 0 && y[i] < g->cfg.classes && y[i] == floorf(y[i])))
                return ds_fail("sample %d's class %g is not one of 0..%d (the [gan]'s classes=%d)", i, (double)y[i],
                               g->cfg.classes - 1, g->cfg.classes);
    g->x = x, g->y = y, g->b = b, g->z = z;
    /* the fake batch takes the real batch's classes unless told: the same class mix on both sides */
    g->fake_y = fake_y ? fake_y : y;
    if (set_batch(g, b)) return -1;
    double lg = NAN;
    int rc;
    if (with_g) {
        rc = ds_trainer_step(g->gt, b, &lg);
    } else {
        feed_g(g);
        rc = ds_graph_forward(g->gg) ? -1 : ds_trainer_step(g->dt, b, &g->loss_d);
    }
    if (rc) return rc;
    if (st) {
        st->samples += b;
        st->d_steps++;
        st->loss_d += g->loss_d;
        st->d_real += g->d_real;
        st->d_fake += g->d_fake;
        if (with_g) {
            st->g_steps++;
            st->loss_g += lg;
            st->d_fake_after += g->d_fake_after;
        }
    }
    return 0;
}

/* sums into means */
static void finish(ds_gan_stats *st, double t0)
{
    if (st->d_steps) st->loss_d /= st->d_steps, st->d_real /= st->d_steps, st->d_fake /= st->d_steps;
    if (st->g_steps) st->loss_g /= st->g_steps, st->d_fake_after /= st->g_steps;
    st->seconds = ds_now() - t0;
}

int ds_gan_step(ds_gan *g, const float *x, const float *y, int b, const float *z, const float *fake_y,
                ds_gan_stats *st)
{
    double t0 = ds_now();
    ds_gan_stats s = {0};
    int rc = iterate(g, x, y, b, z, fake_y, 1, &s);
    finish(&s, t0);
    if (st) *st = s;
    return rc;
}

int ds_gan_epoch(ds_gan *g, ds_loader *l, int epoch, ds_gan_stats *st)
{
    double t0 = ds_now();
    ds_gan_stats s = {0};
    float *x = malloc((size_t)g->batch * (size_t)g->sample * sizeof *x), *y = malloc((size_t)g->batch * sizeof *y);
    int rc = x && y ? 0 : ds_fail("out of memory"), b, k = 0;
    ds_loader_reset(l);
    int batches = ds_loader_batches(l);
    while (rc == 0 && (b = ds_loader_next(l, x, y)) > 0) {
        k++;
        rc = iterate(g, x, g->cfg.conditional ? y : NULL, b, NULL, NULL, k % g->cfg.d_steps == 0, &s);
        if (rc < 0) ds_fail_prefix("epoch %d, batch %d: ", epoch, k);
        if (rc == 0 && g->on_batch) {
            ds_gan_stats run = s;
            finish(&run, t0);
            rc = g->on_batch(g->on_batch_user, k, batches, &run);
        }
    }
    free(x);
    free(y);
    set_batch(g, g->batch);
    finish(&s, t0);
    if (st) *st = s;
    return rc;
}

int ds_gan_generate(ds_gan *g, int n, const float *z, const float *classes, ds_rng *rng, const ds_gan_scale *scale,
                    float *out)
{
    if (n < 0 || !out) return ds_fail("ds_gan_generate: n >= 0 and an output buffer are needed");
    ds_rng *r = rng ? rng : &g->rng;
    int L = g->cfg.latent, C = g->cfg.classes;
    if (classes)
        for (int i = 0; i < n; i++)
            if (!(classes[i] >= 0 && classes[i] < C && classes[i] == floorf(classes[i])))
                return ds_fail("class %g is not one of 0..%d", (double)classes[i], C - 1);
    int was = ds_graph_training(g->gg), rc = 0;
    ds_graph_set_training(g->gg, 0);
    for (int at = 0; at < n && rc == 0; at += g->batch) {
        int b = n - at < g->batch ? n - at : g->batch;
        if ((rc = set_batch(g, b))) break;
        float *zf = g->gp.feeds[0]->val;
        for (size_t i = 0; i < (size_t)b * (size_t)L; i++) zf[i] = z ? z[(size_t)at * L + i] : ds_rng_normal(r);
        if (g->cfg.conditional)
            for (int i = 0; i < b; i++)
                g->gp.feeds[1]->val[i] = classes ? classes[at + i] : (float)ds_rng_below(r, (uint32_t)C);
        if ((rc = ds_graph_forward(g->gg))) break;
        size_t m = (size_t)b * (size_t)g->sample;
        float *o = out + (size_t)at * (size_t)g->sample;
        memcpy(o, g->gp.heads[0].out->val, m * sizeof *o);
        if (scale) ds_gan_scale_invert(scale, o, m);
    }
    set_batch(g, g->batch);
    ds_graph_set_training(g->gg, was);
    return rc;
}

/* ---- the data's scale ---- */

static float t_of(const ds_gan_scale *s, float x) { return s->transform == DS_GAN_ASINH ? asinhf(x / s->softening) : x; }

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the median over samples of each one's robust noise, 1.4826·MAD (as the simulator's σ) */
static float median_noise(const ds_dataset *d)
{
    size_t per = ds_shape_numel(d->sample);
    int n = d->n < 2000 ? d->n : 2000;
    float *v = malloc(per * sizeof *v), *sig = malloc((size_t)n * sizeof *sig);
    if (!v || !sig) {
        free(v), free(sig);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const float *x = d->x + (size_t)i * per;
        memcpy(v, x, per * sizeof *v);
        qsort(v, per, sizeof *v, cmp_f);
        float med = v[per / 2];
        for (size_t j = 0; j < per; j++) v[j] = fabsf(x[j] - med);
        qsort(v, per, sizeof *v, cmp_f);
        sig[i] = 1.4826f * v[per / 2];
    }
    qsort(sig, (size_t)n, sizeof *sig, cmp_f);
    float s = sig[n / 2];
    free(v), free(sig);
    return s;
}

int ds_gan_scale_fit(const ds_gan_cfg *c, const ds_dataset *d, ds_gan_scale *s)
{
    if (!d || d->n < 1) return ds_fail("GAN data scale: no data");
    *s = (ds_gan_scale){c->transform, c->softening > 0 ? c->softening : 1, 0, 0};
    if (c->transform == DS_GAN_ASINH && !(c->softening > 0)) {
        s->softening = median_noise(d);
        if (!(s->softening > 0)) s->softening = 1;
    }
    size_t n = (size_t)d->n * ds_shape_numel(d->sample);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(d->x[i]))
            return ds_fail("sample %zu has a non-finite value (%g)", i / ds_shape_numel(d->sample), (double)d->x[i]);
        float t = t_of(s, d->x[i]);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    if (c->clip_quantile > 0) { /* the quantiles of t over up to 2^21 evenly spaced values */
        size_t m = n < ((size_t)1 << 21) ? n : ((size_t)1 << 21), step = n / m;
        float *v = malloc(m * sizeof *v);
        if (!v) return ds_fail("out of memory");
        for (size_t i = 0; i < m; i++) v[i] = t_of(s, d->x[i * step]);
        qsort(v, m, sizeof *v, cmp_f);
        size_t k = (size_t)(c->clip_quantile * (double)(m - 1));
        lo = v[k], hi = v[m - 1 - k];
        free(v);
    }
    if (!(hi > lo)) return ds_fail("GAN data scale: every value is %g; nothing to learn", lo);
    s->lo = (float)lo, s->hi = (float)hi;
    return 0;
}

void ds_gan_scale_apply(const ds_gan_scale *s, float *x, size_t n)
{
    float k = 2.0f / (s->hi - s->lo);
    for (size_t i = 0; i < n; i++) { /* beyond lo..hi (clip_quantile): at the edge, where tanh can reach */
        float v = (t_of(s, x[i]) - s->lo) * k - 1.0f;
        x[i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
    }
}

void ds_gan_scale_invert(const ds_gan_scale *s, float *x, size_t n)
{
    float k = (s->hi - s->lo) / 2.0f;
    for (size_t i = 0; i < n; i++) {
        float t = (x[i] + 1.0f) * k + s->lo;
        x[i] = s->transform == DS_GAN_ASINH ? s->softening * sinhf(t) : t;
    }
}

/* ---- checkpoints ---- */

static void put_rng(ds_jbuf *b, const char *key, const ds_rng *r)
{
    ds_jb_printf(b, "\"%s\":[", key);
    for (int i = 0; i < 4; i++) ds_jb_printf(b, "%s\"%016" PRIx64 "\"", i ? "," : "", r->s[i]);
    ds_jb_put(b, "]", 1);
}

static int get_rng(const ds_json *a, ds_rng *r)
{
    if (!a || a->type != DS_JSON_ARR || a->n != 4) return -1;
    for (int i = 0; i < 4; i++) {
        char *end;
        if (a->kids[i].type != DS_JSON_STR) return -1;
        r->s[i] = strtoull(a->kids[i].str, &end, 16);
        if (*end) return -1;
    }
    return 0;
}

int ds_gan_save(ds_gan *g, const char *path, const ds_train_state *st, const ds_meta_kv *extra, int n_extra)
{
    ds_jbuf b = {0};
    ds_jb_printf(&b, "{\"scale\":{\"transform\":\"%s\",\"softening\":%.9g,\"lo\":%.9g,\"hi\":%.9g},",
                 g->scale.transform == DS_GAN_ASINH ? "asinh" : "linear", (double)g->scale.softening,
                 (double)g->scale.lo, (double)g->scale.hi);
    put_rng(&b, "rng", &g->rng);
    ds_jb_put(&b, ",", 1);
    put_rng(&b, "generator_rng", ds_graph_rng(g->gg));
    ds_jb_put(&b, ",", 1);
    put_rng(&b, "discriminator_rng", ds_graph_rng(g->dg));
    ds_jb_put(&b, "}", 1);
    if (b.oom) {
        ds_jb_free(&b);
        return ds_fail("out of memory");
    }
    ds_meta_kv kv[16];
    if (n_extra > 15) n_extra = 15;
    kv[0] = (ds_meta_kv){"gan", b.p};
    for (int i = 0; i < n_extra; i++) kv[1 + i] = extra[i];
    ds_ckpt_part parts[2] = {{"generator", g->gg, g->go}, {"discriminator", g->dg, g->dopt}};
    int rc = ds_checkpoint_save_parts(path, parts, 2, ds_gan_model_text(g->m), NULL, st, kv, 1 + n_extra);
    ds_jb_free(&b);
    return rc;
}

int ds_gan_restore(ds_gan *g, const ds_checkpoint *c, ds_train_state *st)
{
    const char *meta = ds_checkpoint_meta(c, "gan");
    if (!meta) return ds_fail("the checkpoint is not a GAN's (no \"gan\" metadata)");
    char err[128];
    ds_json *j = ds_json_parse(meta, strlen(meta), err, sizeof err);
    if (!j) return ds_fail("the checkpoint's GAN metadata: %s", err);
    const ds_json *sc = ds_json_get(j, "scale"), *tr = sc ? ds_json_get(sc, "transform") : NULL;
    double soft, lo, hi;
    ds_gan_scale s = {0};
    ds_rng r, rg, rd;
    int bad = !tr || tr->type != DS_JSON_STR || ds_json_double(ds_json_get(sc, "softening"), &soft) ||
              ds_json_double(ds_json_get(sc, "lo"), &lo) || ds_json_double(ds_json_get(sc, "hi"), &hi) ||
              get_rng(ds_json_get(j, "rng"), &r) || get_rng(ds_json_get(j, "generator_rng"), &rg) ||
              get_rng(ds_json_get(j, "discriminator_rng"), &rd) || !(hi > lo);
    if (!bad) s = (ds_gan_scale){strcmp(tr->str, "asinh") ? DS_GAN_LINEAR : DS_GAN_ASINH, (float)soft, (float)lo, (float)hi};
    ds_json_free(j);
    if (bad) return ds_fail("the checkpoint's GAN metadata is incomplete or damaged");
    if (ds_checkpoint_restore_part(c, "generator", g->gg, g->go) ||
        ds_checkpoint_restore_part(c, "discriminator", g->dg, g->dopt))
        return -1;
    if (st && ds_checkpoint_state(c, st)) return -1;
    g->scale = s;
    g->rng = r;
    *ds_graph_rng(g->gg) = rg;
    *ds_graph_rng(g->dg) = rd;
    return 0;
}
