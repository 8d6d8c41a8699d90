/* loader.c — mini-batches over an in-memory dataset, reshuffled each epoch.
 * Everything is allocated in ds_loader_new; reset and next never allocate. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct ds_loader {
    const ds_dataset *d; /* borrowed: must outlive the loader */
    int batch;
    int shuffle;
    int pos;             /* next position in perm */
    size_t row;          /* floats per sample */
    ds_rng rng;          /* own stream, so the order depends only on the seed */
    int *perm;           /* [n] sample order of this epoch */
};

ds_loader *ds_loader_new(const ds_dataset *d, int batch, int shuffle, uint64_t seed)
{
    if (!d || !d->x || !d->y || d->n <= 0) {
        ds_fail("loader: empty dataset");
        return NULL;
    }
    if (batch <= 0) {
        ds_fail("loader: batch size must be positive, got %d", batch);
        return NULL;
    }
    ds_loader *l = calloc(1, sizeof *l);
    int *perm = malloc((size_t)d->n * sizeof *perm);
    if (!l || !perm) {
        free(l);
        free(perm);
        ds_fail("loader: out of memory for %d samples", d->n);
        return NULL;
    }
    *l = (ds_loader){.d = d, .batch = batch, .shuffle = shuffle != 0,
                     .row = ds_shape_numel(d->sample), .perm = perm};
    ds_rng_seed(&l->rng, seed);
    ds_loader_reset(l);
    return l;
}

void ds_loader_free(ds_loader *l)
{
    if (!l) return;
    free(l->perm);
    free(l);
}

void ds_loader_reset(ds_loader *l)
{
    /* From the identity each time, so epoch k's order is a function of the
     * seed and k alone. */
    for (int i = 0; i < l->d->n; i++) l->perm[i] = i;
    if (l->shuffle) ds_rng_shuffle(&l->rng, l->perm, l->d->n);
    l->pos = 0;
}

int ds_loader_next(ds_loader *l, float *x, float *y)
{
    int b = l->d->n - l->pos;
    if (b > l->batch) b = l->batch;
    /* x [b, row] and y [b] gathered through perm; y may be NULL (autoencoders). */
    for (int i = 0; i < b; i++) {
        size_t k = (size_t)l->perm[l->pos + i];
        memcpy(x + (size_t)i * l->row, l->d->x + k * l->row, l->row * sizeof *x);
        if (y) y[i] = l->d->y[k];
    }
    l->pos += b;
    return b;
}

/* ⌈n / batch⌉ without overflowing for huge batch sizes. */
int ds_loader_batches(const ds_loader *l)
{
    return l->d->n / l->batch + (l->d->n % l->batch != 0);
}

ds_rng *ds_loader_rng(ds_loader *l) { return &l->rng; }
