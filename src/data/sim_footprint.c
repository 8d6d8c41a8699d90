/* sim_footprint.c — where a simulated stamp's source is: the pixels of the
 * asteroid's trail (real) or of the artefact (bogus), for checks of what a
 * classifier looks at (the pointing game of docs/explain.md).
 *
 * The stamp is rendered again with cfg->noiseless: its generator draws
 * every source parameter before any noise, so the noiseless stamp is the
 * same draw as the noisy one, only without noise (test_sim_footprint). The
 * footprint is where that noiseless difference image is, in absolute value,
 * above the stamp's noise σ (dipoles and ghosts' subtraction residuals are
 * negative too); a source fainter than σ in every pixel gets the pixels
 * above half its peak, so that every stamp has a footprint. Static stars
 * subtract exactly in the noiseless difference and are not in it. */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ds_sim_footprint(const ds_sim_cfg *cfg, long index, float *mask, ds_sim_meta *meta)
{
    int S = cfg->size, N = S * S, C = cfg->channels;
    ds_sim_cfg q = *cfg;
    q.noiseless = 1;
    float *img = malloc(sizeof(float) * (size_t)C * N);
    if (!img) return ds_fail("out of memory");
    ds_sim_meta m;
    if (ds_sim_stamp(&q, index, img, &m) != 0) {
        free(img);
        return -1;
    }
    const float *diff = img + (size_t)(C - 1) * N; /* the difference image is the last channel */
    double peak = 0;
    for (int i = 0; i < N; i++) peak = fmax(peak, fabs(diff[i]));
    double thr = peak > m.noise ? m.noise : 0.5 * peak;
    for (int i = 0; i < N; i++) mask[i] = peak > 0 && fabs(diff[i]) >= thr ? 1.0f : 0.0f;
    free(img);
    if (meta) *meta = m;
    return 0;
}

typedef struct {
    const ds_sim_cfg *cfg;
    float *mask;
    int failed;
} fp_task;

static void fp_range(void *arg, long lo, long hi)
{
    fp_task *t = arg;
    size_t N = (size_t)t->cfg->size * t->cfg->size;
    for (long i = lo; i < hi; i++)
        if (ds_sim_footprint(t->cfg, i, t->mask + N * (size_t)i, NULL) != 0) t->failed = 1; /* only set: benign */
}

int ds_sim_footprints(const ds_sim_cfg *cfg, float *mask)
{
    if (cfg->n < 1) return ds_fail("simulate: n must be >= 1");
    if (cfg->size < 8 || cfg->size > 512) return ds_fail("simulate: stamp size %d outside 8..512", cfg->size);
    fp_task t = {cfg, mask, 0};
    ds_parallel_for(cfg->n, 16, fp_range, &t); /* stamps are independent: each has its own stream */
    return t.failed ? ds_fail("simulate: a footprint failed (out of memory?)") : 0;
}
