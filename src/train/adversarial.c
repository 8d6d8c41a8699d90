/* adversarial.c — adversarial training as the trainer's pass hook: each
 * step's loss is α·L(x) + (1 − α)·L(x_adv), x_adv the attack on the batch
 * made in eval mode from the model being trained (Goodfellow et al. 2015:
 * FGSM, α = 0.5; Madry et al. 2018: PGD, α = 0, the adversarial batch
 * alone). The batch arrives normalised in the first feed; the attack works
 * in the data's own units, so the feed is mapped back through the
 * normalisation first. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ds_adv_trainer {
    ds_program *p;
    const ds_norm *norm;
    ds_attacker *att;
    float alpha;
    ds_rng rng;
    size_t sample, pc;
    float *raw, *xa, *clean, *adv, *y;
};

ds_adv_trainer *ds_adv_trainer_new(ds_program *p, const ds_norm *norm, const ds_attack_cfg *c, float alpha,
                                   uint64_t seed)
{
    if (!(alpha >= 0 && alpha < 1)) {
        ds_fail("adversarial training: the clean loss's weight alpha must be in [0, 1) (got %g)", (double)alpha);
        return NULL;
    }
    ds_attacker *att = ds_attacker_new(p, norm, c);
    if (!att) return NULL;
    ds_adv_trainer *a = calloc(1, sizeof *a);
    size_t mb = (size_t)p->g->max_batch, sample = ds_numel(p->feeds[0]) / (size_t)p->feeds[0]->shape.d[0];
    if (!a || !(a->raw = malloc(mb * sample * sizeof(float))) || !(a->xa = malloc(mb * sample * sizeof(float))) ||
        !(a->clean = malloc(mb * sample * sizeof(float))) || !(a->adv = malloc(mb * sample * sizeof(float))) ||
        !(a->y = malloc(mb * sizeof(float)))) {
        if (a) a->att = att;
        ds_adv_trainer_free(a);
        if (!a) ds_attacker_free(att);
        ds_fail("out of memory");
        return NULL;
    }
    a->p = p, a->norm = norm, a->att = att, a->alpha = alpha, a->sample = sample;
    a->pc = norm && norm->channels ? sample / (size_t)norm->channels : 0;
    ds_rng_seed(&a->rng, seed);
    return a;
}

void ds_adv_trainer_free(ds_adv_trainer *a)
{
    if (!a) return;
    ds_attacker_free(a->att);
    free(a->raw), free(a->xa), free(a->clean), free(a->adv), free(a->y);
    free(a);
}

int ds_adv_pass(void *user, ds_trainer *t, int b, int k, float *weight)
{
    (void)t;
    ds_adv_trainer *a = user;
    ds_program *p = a->p;
    float *feed = p->feeds[0]->val;
    size_t n = (size_t)b * a->sample;
    if (k == 0) {
        if (!p->labels) return ds_fail("adversarial training: the model has no labels to attack");
        memcpy(a->clean, feed, n * sizeof *feed);
        memcpy(a->y, p->labels->val, (size_t)b * sizeof *a->y);
        for (size_t i = 0; i < n; i++) /* back to the data's own units */
            a->raw[i] = a->pc ? (float)((double)feed[i] * a->norm->std[i % a->sample / a->pc] +
                                        a->norm->mean[i % a->sample / a->pc])
                              : feed[i];
        /* no verdict asked: the trainer's accuracy is that of the last pass, the adversarial batch */
        if (ds_attacker_run(a->att, a->raw, a->y, b, &a->rng, a->xa, NULL) != 0) return -1;
        /* the training passes need no ∂L/∂x (the first layer's input gradient); ds_input_grad turns it on for the attack */
        if (ds_graph_set_input_grad(p->g, p->feeds[0], 0) != 0) return -1;
        memcpy(a->adv, feed, n * sizeof *feed); /* the attacker left x_adv, normalised, in the feed */
        memcpy(p->labels->val, a->y, (size_t)b * sizeof *a->y);
        if (a->alpha == 0) return *weight = 1, 1; /* Madry et al.: the adversarial batch alone */
        memcpy(feed, a->clean, n * sizeof *feed);
        *weight = a->alpha;
        return 1;
    }
    if (k == 1 && a->alpha > 0) {
        memcpy(feed, a->adv, n * sizeof *feed);
        *weight = 1 - a->alpha;
        return 1;
    }
    return 0;
}

void ds_adv_trainer_seed(ds_adv_trainer *a, uint64_t seed) { ds_rng_seed(&a->rng, seed); }

const ds_attack_cfg *ds_adv_trainer_attack(const ds_adv_trainer *a) { return ds_attacker_cfg(a->att); }
