/* loader.c — mini-batches over an in-memory dataset, reshuffled each epoch.
 *
 * A background thread gathers the next batch (through the epoch's sample
 * order, with the epoch's random flips and rotations when asked) into a
 * staging buffer while the caller
 * computes on the current one, so a step never waits for data: next() only
 * copies the staged batch out and asks for the one after. The order comes
 * from the loader's own generator, drawn on the caller's thread in reset(),
 * so it depends on the seed alone. Everything is allocated in
 * ds_loader_new; reset and next never allocate.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { IDLE, REQUESTED, READY };

struct ds_loader {
    const ds_dataset *d; /* borrowed: must outlive the loader */
    int batch;
    int shuffle;
    int pos;             /* next position in perm */
    size_t row;          /* floats per sample */
    ds_rng rng;          /* own stream, so the order depends only on the seed */
    int *perm;           /* [n] sample order of this epoch */
    /* prefetch */
    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state, quit;
    int staged_pos, staged_n; /* the staged batch starts at perm[staged_pos] */
    float *sx, *sy;           /* staging: [batch, row] and [batch] */
    float **sf;               /* staging of each field [batch, frow[k]] */
    size_t *frow;             /* floats per sample of each field */
    int balanced;             /* draw with replacement, ∝ 1/count(class) */
    double *cum;              /* balanced: cumulative sample weights [n] */
    int augment;              /* DS_AUG_* */
    uint8_t *code;            /* [n] this epoch's transform of each sample (bit 0 flip x, 1 flip y, 2 transpose) */
    /* data-parallel sharding: this rank's rows of every global batch */
    int rank, size;
    int last_global;          /* global size of the batch last handed out */
    double wait;              /* seconds next() waited for data since reset */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The global batch starting at perm position pos: its size *gb and this
 * rank's rows [*lo, *lo + share) of it; returns share (may be 0). */
static int share_of(const ds_loader *l, int pos, int *gb, int *lo)
{
    int b = l->d->n - pos;
    if (b > l->batch) b = l->batch;
    /* 64-bit products: batch * size may pass INT_MAX */
    int a = (int)((int64_t)l->rank * b / l->size), e = (int)((int64_t)(l->rank + 1) * b / l->size);
    *gb = b, *lo = pos + a;
    return e - a;
}

/* dst = src [C, H, W] under a dihedral transform: bit 0 flips x, bit 1
 * flips y, bit 2 transposes (square planes only) */
static void transform(const float *src, float *dst, int C, int H, int W, int code)
{
    for (int c = 0; c < C; c++) {
        const float *s = src + (size_t)c * H * W;
        float *d = dst + (size_t)c * H * W;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sx = code & 1 ? W - 1 - x : x, sy = code & 2 ? H - 1 - y : y;
                d[(size_t)y * W + x] = code & 4 ? s[(size_t)sx * W + sy] : s[(size_t)sy * W + sx];
            }
    }
}

/* x [b, row] and y [b] of this rank's share of the global batch at
 * perm[pos..] (augmented by the code of each global position, so a sample's
 * transform does not depend on the rank count), and each field f[k]
 * [b, frow[k]] (f NULL or f[k] NULL: not wanted); returns b */
static int gather(const ds_loader *l, int pos, float *x, float *y, float *const *f)
{
    int gb;
    int b = share_of(l, pos, &gb, &pos);
    const ds_shape *sh = &l->d->sample;
    for (int i = 0; i < b; i++) {
        size_t k = (size_t)l->perm[pos + i];
        int code = l->augment ? l->code[pos + i] : 0;
        if (code) transform(l->d->x + k * l->row, x + (size_t)i * l->row, sh->d[0], sh->d[1], sh->d[2], code);
        else memcpy(x + (size_t)i * l->row, l->d->x + k * l->row, l->row * sizeof *x);
        if (y) y[i] = l->d->y[k];
        for (int j = 0; f && j < l->d->n_fields; j++) /* the sample's other fields, as they are */
            if (f[j]) memcpy(f[j] + (size_t)i * l->frow[j], l->d->fields[j].x + k * l->frow[j], l->frow[j] * sizeof *f[j]);
    }
    return b;
}


static void *prefetch_main(void *arg)
{
    ds_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->state != REQUESTED && !l->quit) pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) break;
        int pos = l->staged_pos;
        pthread_mutex_unlock(&l->mu);
        int b = gather(l, pos, l->sx, l->sy, l->sf);
        pthread_mutex_lock(&l->mu);
        l->staged_n = b;
        l->state = READY;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* with l->mu held: wait until the thread is not working */
static void settle(ds_loader *l)
{
    while (l->state == REQUESTED) pthread_cond_wait(&l->cv, &l->mu);
}

/* with l->mu held: stage the batch at pos (if any) */
static void request(ds_loader *l, int pos)
{
    if (pos >= l->d->n) return;
    l->staged_pos = pos;
    l->state = REQUESTED;
    pthread_cond_broadcast(&l->cv);
}

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
    size_t row = ds_shape_numel(d->sample), b = (size_t)(batch < d->n ? batch : d->n);
    float *sx = malloc(b * row * sizeof *sx), *sy = malloc(b * sizeof *sy);
    if (!l || !perm || !sx || !sy) {
        free(l), free(perm), free(sx), free(sy);
        ds_fail("loader: out of memory for %d samples", d->n);
        return NULL;
    }
    *l = (ds_loader){.d = d, .batch = batch, .shuffle = shuffle != 0, .row = row, .perm = perm, .sx = sx, .sy = sy,
                     .rank = 0, .size = 1};
    if (d->n_fields) {
        l->sf = calloc((size_t)d->n_fields, sizeof *l->sf);
        l->frow = calloc((size_t)d->n_fields, sizeof *l->frow);
        for (int k = 0; l->sf && l->frow && k < d->n_fields; k++) {
            l->frow[k] = ds_shape_numel(d->fields[k].sample);
            l->sf[k] = malloc((b * l->frow[k] + 1) * sizeof **l->sf);
        }
        for (int k = 0; k < d->n_fields; k++)
            if (!l->sf || !l->frow || !l->sf[k]) {
                free(perm), free(sx), free(sy);
                for (int j = 0; l->sf && j < d->n_fields; j++) free(l->sf[j]);
                free(l->sf), free(l->frow), free(l);
                ds_fail("loader: out of memory for %d samples", d->n);
                return NULL;
            }
    }
    ds_rng_seed(&l->rng, seed);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    /* without a thread (none to be had) batches are gathered in next() */
    l->threaded = pthread_create(&l->thread, NULL, prefetch_main, l) == 0;
    ds_loader_reset(l);
    return l;
}

void ds_loader_free(ds_loader *l)
{
    if (!l) return;
    if (l->threaded) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->perm);
    free(l->code);
    free(l->sx);
    free(l->sy);
    for (int k = 0; l->sf && k < l->d->n_fields; k++) free(l->sf[k]);
    free(l->sf);
    free(l->frow);
    free(l->cum);
    free(l);
}

int ds_loader_set_augment(ds_loader *l, int flags)
{
    const ds_shape *sh = &l->d->sample;
    if (flags && sh->ndim != 3) return ds_fail("augment: needs image samples [C, H, W]; these are %d-D", sh->ndim);
    if ((flags & DS_AUG_ROT90) && sh->d[1] != sh->d[2])
        return ds_fail("augment: 90-degree rotations need square images; these are %dx%d", sh->d[1], sh->d[2]);
    if (flags && !l->code && !(l->code = calloc((size_t)l->d->n, 1))) return ds_fail("out of memory");
    pthread_mutex_lock(&l->mu);
    settle(l);
    l->augment = flags;
    pthread_mutex_unlock(&l->mu);
    ds_loader_reset(l);
    return 0;
}

void ds_loader_reset(ds_loader *l)
{
    pthread_mutex_lock(&l->mu);
    settle(l);
    l->state = IDLE;
    /* From the identity each time, so epoch k's order is a function of the
     * seed and k alone. */
    for (int i = 0; i < l->d->n; i++) l->perm[i] = i;
    if (l->balanced) { /* n draws with replacement: binary search of a uniform in the cumulative weights */
        double total = l->cum[l->d->n - 1];
        for (int i = 0; i < l->d->n; i++) {
            double u = ds_rng_uniform(&l->rng) * total;
            int lo = 0, hi = l->d->n - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (l->cum[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            l->perm[i] = lo;
        }
    } else if (l->shuffle) {
        ds_rng_shuffle(&l->rng, l->perm, l->d->n);
    }
    /* this epoch's transforms, from the same stream after the order */
    int span = l->augment & DS_AUG_ROT90 ? 8 : 4;
    if (l->augment)
        for (int i = 0; i < l->d->n; i++) l->code[i] = (uint8_t)ds_rng_below(&l->rng, (uint32_t)span);
    l->pos = 0;
    l->last_global = 0;
    l->wait = 0;
    if (l->threaded) request(l, 0);
    pthread_mutex_unlock(&l->mu);
}

int ds_loader_set_shard(ds_loader *l, int rank, int size)
{
    if (!l) return ds_fail("loader shard: no loader");
    if (size < 1) return ds_fail("loader shard: size must be at least 1, got %d", size);
    if (rank < 0 || rank >= size) return ds_fail("loader shard: rank %d outside 0..%d", rank, size - 1);
    pthread_mutex_lock(&l->mu);
    settle(l);
    /* Restart the epoch in the order already drawn, without drawing again:
     * the generator's stream stays that of an unsharded loader. */
    l->rank = rank, l->size = size;
    l->state = IDLE;
    l->pos = 0;
    l->last_global = 0;
    l->wait = 0;
    if (l->threaded) request(l, 0);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int ds_loader_more(const ds_loader *l) { return l->pos < l->d->n; }

int ds_loader_last_global(const ds_loader *l) { return l->last_global; }

double ds_loader_wait_seconds(const ds_loader *l) { return l->wait; }

int ds_loader_set_balanced(ds_loader *l, int on)
{
    const ds_dataset *d = l->d;
    if (on && d->classes < 1) return ds_fail("balanced sampler: the data has no labels");
    if (on && !l->cum) {
        int *count = calloc((size_t)d->classes, sizeof *count);
        if (!count || !(l->cum = malloc((size_t)d->n * sizeof *l->cum))) {
            free(count);
            return ds_fail("balanced sampler: out of memory");
        }
        for (int i = 0; i < d->n; i++) {
            int c = (int)d->y[i];
            if (c < 0 || c >= d->classes) {
                free(count);
                return ds_fail("balanced sampler: sample %d has label %g outside 0..%d", i, (double)d->y[i],
                               d->classes - 1);
            }
            count[c]++;
        }
        double run = 0;
        for (int i = 0; i < d->n; i++) l->cum[i] = run += 1.0 / count[(int)d->y[i]];
        free(count);
    }
    pthread_mutex_lock(&l->mu);
    settle(l);
    l->balanced = on != 0;
    pthread_mutex_unlock(&l->mu);
    ds_loader_reset(l);
    return 0;
}

int ds_loader_next(ds_loader *l, float *x, float *y)
{
    float *dst[1 + DS_MAX_FEEDS] = {x}; /* fields not wanted */
    return ds_loader_next_fields(l, dst, y);
}

int ds_loader_next_fields(ds_loader *l, float *const *dst, float *y)
{
    float *x = dst[0];
    if (l->pos >= l->d->n) return 0;
    int b, gb, lo;
    double t0 = now_seconds();
    pthread_mutex_lock(&l->mu);
    settle(l);
    if (l->state == READY && l->staged_pos == l->pos) {
        l->wait += now_seconds() - t0;
        b = l->staged_n;
        memcpy(x, l->sx, (size_t)b * l->row * sizeof *x);
        if (y) memcpy(y, l->sy, (size_t)b * sizeof *y);
        for (int k = 0; k < l->d->n_fields; k++)
            if (dst[1 + k]) memcpy(dst[1 + k], l->sf[k], (size_t)b * l->frow[k] * sizeof *l->sf[k]);
    } else { /* nothing staged (no thread): gather here, which the caller waits for too */
        b = gather(l, l->pos, x, y, l->d->n_fields ? dst + 1 : NULL);
        l->wait += now_seconds() - t0;
    }
    share_of(l, l->pos, &gb, &lo);
    l->last_global = gb;
    l->pos += gb; /* the whole global batch: the other ranks take the rest */
    l->state = IDLE;
    if (l->threaded) request(l, l->pos);
    pthread_mutex_unlock(&l->mu);
    return b;
}

/* ⌈n / batch⌉ without overflowing for huge batch sizes. */
int ds_loader_batches(const ds_loader *l)
{
    return l->d->n / l->batch + (l->d->n % l->batch != 0);
}

ds_rng *ds_loader_rng(ds_loader *l) { return &l->rng; }
