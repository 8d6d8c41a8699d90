/* stream.c — a loader that streams a sharded data set from disk.
 *
 * Order of an epoch: the shards in a random order, their samples
 * concatenated, the stream cut in windows of `window` samples and each
 * window permuted (the shuffle buffer of tf.data and WebDataset, made
 * exact: every sample exactly once per epoch). reset() draws the shard
 * order and one 64-bit epoch key from the loader's generator; window w's
 * permutation is drawn from a generator seeded by (key, w) and a sample's
 * augmentation from (key, its global position), so any loader thread can
 * build any batch and the order is a function of the seed and the epoch
 * alone (and of nothing else: not the threads, not the ranks).
 *
 * A ring of `prefetch` batch slots is filled by `threads` loader threads:
 * each claims the next batch, preads its rank's rows of it (a global batch
 * is cut among ranks as in loader.c), converts them to float, normalises
 * and augments them into the slot; next() only copies a ready slot out.
 * Memory: the slots, and per thread two window permutations and one
 * sample's scratch — nothing grows with the data set. */
#include "shards.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FREE, FILLING, READY };
enum { FD_CACHE = 4, MAX_THREADS = 64 };

typedef struct {
    float *x, *y;
    int64_t batch; /* which batch of the epoch it holds */
    int state, n;
} slot;

struct ds_stream {
    ds_shards *s;
    int batch, window, prefetch, threads;
    int64_t n, nbatches;
    size_t row;
    int C;
    size_t inner;
    float *mean, *std; /* NULL: as stored */
    ds_rng rng;
    /* this epoch */
    uint64_t key;
    int *order;        /* [k] shards in epoch order */
    int64_t *start;    /* [k + 1] stream position where each of them starts */
    int augment, rank, size;
    /* the ring */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    slot *slots;
    int64_t next_fill, next_take;
    int busy, pausing, quit, failed;
    unsigned gen;
    char err[1024];
    int last_global;
    double wait;
    pthread_t tid[MAX_THREADS];
    int started;
};

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A loader thread's own state: window permutations, open files, scratch. */
typedef struct {
    ds_stream *st;
    int64_t win[2];    /* which windows perm holds, of the epoch keyed */
    uint64_t key[2];
    int *perm[2];
    int lru;
    struct {
        int shard, fx, fy;
    } fd[FD_CACHE];
    int fd_next;
    float *tmp;
    void *scratch;
} worker;

/* Window w's permutation of its samples (from the epoch key alone). */
static const int *window_perm(worker *wk, int64_t w)
{
    ds_stream *st = wk->st;
    for (int k = 0; k < 2; k++)
        if (wk->win[k] == w && wk->key[k] == st->key) return wk->perm[k];
    int k = wk->lru ^= 1;
    int64_t lo = w * st->window, m = st->n - lo < st->window ? st->n - lo : st->window;
    for (int i = 0; i < m; i++) wk->perm[k][i] = i;
    ds_rng r;
    ds_rng_seed(&r, mix(st->key ^ mix((uint64_t)w)));
    ds_rng_shuffle(&r, wk->perm[k], (int)m);
    wk->win[k] = w, wk->key[k] = st->key;
    return wk->perm[k];
}

/* Open descriptors of shard i's files (a few kept open per thread). */
static int shard_fds(worker *wk, int i, int *fx, int *fy)
{
    for (int k = 0; k < FD_CACHE; k++)
        if (wk->fd[k].shard == i) return *fx = wk->fd[k].fx, *fy = wk->fd[k].fy, 0;
    const ds_shard *sh = &wk->st->s->shard[i];
    int k = wk->fd_next++ % FD_CACHE;
    if (wk->fd[k].shard >= 0) {
        close(wk->fd[k].fx);
        if (wk->fd[k].fy >= 0) close(wk->fd[k].fy);
        wk->fd[k].shard = -1;
    }
    int a = open(sh->x.path, O_RDONLY), b = sh->has_y ? open(sh->y.path, O_RDONLY) : -1;
    if (a < 0 || (sh->has_y && b < 0)) {
        int err = errno;
        if (a >= 0) close(a);
        return ds_fail("%s: cannot open: %s", a < 0 ? sh->x.path : sh->y.path, strerror(err));
    }
    wk->fd[k].shard = i, wk->fd[k].fx = a, wk->fd[k].fy = b;
    *fx = a, *fy = b;
    return 0;
}

/* The sample at global position p of the epoch → x [row], *y. */
static int load_sample(worker *wk, int64_t p, float *x, float *y)
{
    ds_stream *st = wk->st;
    int64_t w = p / st->window, q = w * st->window + window_perm(wk, w)[p % st->window];
    int lo = 0, hi = st->s->k - 1; /* the shard (in epoch order) holding stream position q */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (st->start[mid] <= q) lo = mid;
        else hi = mid - 1;
    }
    int i = st->order[lo], fx = -1, fy = -1;
    const ds_shard *sh = &st->s->shard[i];
    int64_t r = q - st->start[lo];
    if (shard_fds(wk, i, &fx, &fy)) return -1;
    int code = 0;
    if (st->augment) code = (int)(mix(st->key ^ mix(~(uint64_t)p)) % (st->augment & DS_AUG_ROT90 ? 8u : 4u));
    float *dst = code ? wk->tmp : x;
    if (ds_array_read(&sh->x, fx, r, 1, dst, wk->scratch)) return -1;
    if (sh->has_y) {
        if (ds_array_read(&sh->y, fy, r, 1, y, wk->scratch)) return -1;
        if (st->s->classes && !(*y >= 0 && *y < st->s->classes && *y == floorf(*y)))
            return ds_fail("%s: row %lld has label %g, not a class 0..%d", sh->y.path, (long long)r, (double)*y,
                           st->s->classes - 1);
    } else {
        *y = 0;
    }
    if (st->mean) /* in double, as ds_norm_apply: the same floats as a set normalised in memory */
        for (int c = 0; c < st->C; c++) {
            double m = st->mean[c], s = st->std[c];
            float *v = dst + (size_t)c * st->inner;
            for (size_t j = 0; j < st->inner; j++) {
                double u = ((double)v[j] - m) / s;
                if (!(fabs(u) <= FLT_MAX))
                    return ds_fail("%s: row %lld, element %zu: %g normalises to %g, beyond float range", sh->x.path,
                                   (long long)r, (size_t)c * st->inner + j, (double)v[j], u);
                v[j] = (float)u;
            }
        }
    if (code) ds_dihedral(dst, x, st->s->sample.d[0], st->s->sample.d[1], st->s->sample.d[2], code);
    return 0;
}

/* This rank's rows of global batch j: [*lo, *lo + share) of *gb. */
static int share_of(const ds_stream *st, int64_t j, int *gb, int64_t *lo)
{
    int64_t pos = j * st->batch;
    int b = st->n - pos < st->batch ? (int)(st->n - pos) : st->batch;
    int a = (int)((int64_t)st->rank * b / st->size), e = (int)((int64_t)(st->rank + 1) * b / st->size);
    *gb = b, *lo = pos + a;
    return e - a;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    ds_stream *st = wk->st;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->quit && (st->pausing || st->failed || st->next_fill >= st->nbatches ||
                             st->next_fill >= st->next_take + st->prefetch))
            pthread_cond_wait(&st->work, &st->mu);
        if (st->quit) break;
        int64_t j = st->next_fill++;
        slot *sl = &st->slots[j % st->prefetch];
        sl->state = FILLING;
        st->busy++;
        unsigned gen = st->gen;
        pthread_mutex_unlock(&st->mu);
        int gb, rc = 0;
        int64_t lo;
        int n = share_of(st, j, &gb, &lo);
        for (int i = 0; i < n && !rc; i++) rc = load_sample(wk, lo + i, sl->x + (size_t)i * st->row, sl->y + i);
        pthread_mutex_lock(&st->mu);
        st->busy--;
        if (gen == st->gen) {
            if (rc) {
                if (!st->failed) snprintf(st->err, sizeof st->err, "%s", ds_last_error());
                st->failed = 1;
                sl->state = FREE;
            } else {
                sl->state = READY, sl->batch = j, sl->n = n;
            }
        }
        pthread_cond_broadcast(&st->done);
    }
    pthread_mutex_unlock(&st->mu);
    for (int k = 0; k < FD_CACHE; k++)
        if (wk->fd[k].shard >= 0) {
            close(wk->fd[k].fx);
            if (wk->fd[k].fy >= 0) close(wk->fd[k].fy);
        }
    free(wk->perm[0]), free(wk->perm[1]), free(wk->tmp), free(wk->scratch), free(wk);
    return NULL;
}

/* With st->mu held: stop the threads' work and wait until none is filling. */
static void pause_workers(ds_stream *st)
{
    st->pausing = 1;
    while (st->busy) pthread_cond_wait(&st->done, &st->mu);
}

/* With st->mu held: restart the epoch drawn (batch 0, empty ring). */
static void restart(ds_stream *st)
{
    st->gen++;
    for (int i = 0; i < st->prefetch; i++) st->slots[i].state = FREE;
    st->next_fill = st->next_take = 0;
    st->failed = 0, st->last_global = 0, st->wait = 0;
    st->pausing = 0;
    pthread_cond_broadcast(&st->work);
}

/* With st->mu held and the threads paused: draw the next epoch and start it. */
static void reset_locked(ds_stream *st)
{
    /* from the identity each time: epoch k's order is a function of the seed and k */
    for (int i = 0; i < st->s->k; i++) st->order[i] = i;
    ds_rng_shuffle(&st->rng, st->order, st->s->k);
    st->key = ds_rng_u64(&st->rng);
    st->start[0] = 0;
    for (int i = 0; i < st->s->k; i++) st->start[i + 1] = st->start[i] + st->s->shard[st->order[i]].n;
    restart(st);
}

void ds_stream_reset(ds_stream *st)
{
    pthread_mutex_lock(&st->mu);
    pause_workers(st);
    reset_locked(st);
    pthread_mutex_unlock(&st->mu);
}

void ds_stream_free(ds_stream *st)
{
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->quit = 1;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->mu);
    for (int i = 0; i < st->started; i++) pthread_join(st->tid[i], NULL);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->work);
    pthread_cond_destroy(&st->done);
    for (int i = 0; st->slots && i < st->prefetch; i++) free(st->slots[i].x), free(st->slots[i].y);
    free(st->slots), free(st->order), free(st->start), free(st->mean), free(st->std);
    free(st);
}

ds_stream *ds_stream_new(ds_shards *s, int batch, uint64_t seed, const ds_stream_cfg *cfg)
{
    ds_stream_cfg c = cfg ? *cfg : (ds_stream_cfg){0};
    if (!s) return ds_fail("stream: no data set"), NULL;
    if (batch <= 0) return ds_fail("loader: batch size must be positive, got %d", batch), NULL;
    if (c.window < 0 || c.prefetch < 0 || c.threads < 0 || c.threads > MAX_THREADS)
        return ds_fail("stream: window %d, prefetch %d, threads %d (threads at most %d; 0 each: the defaults)",
                       c.window, c.prefetch, c.threads, MAX_THREADS), NULL;
    if (c.norm && c.norm->channels && c.norm->channels != s->sample.d[0])
        return ds_fail("stream: the normalisation has %d channels but the samples %d", c.norm->channels,
                       s->sample.d[0]), NULL;
    ds_stream *st = calloc(1, sizeof *st);
    if (!st) return ds_fail("out of memory"), NULL;
    st->s = s, st->n = s->n, st->batch = batch, st->rank = 0, st->size = 1;
    st->window = c.window ? c.window : 65536;
    st->prefetch = c.prefetch ? c.prefetch : 4;
    st->threads = c.threads ? c.threads : 1;
    st->row = ds_shape_numel(s->sample);
    st->C = s->sample.d[0], st->inner = st->row / (size_t)st->C;
    st->nbatches = (st->n + batch - 1) / batch;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->work, NULL);
    pthread_cond_init(&st->done, NULL);
    ds_rng_seed(&st->rng, seed);
    size_t b = (size_t)(st->n < batch ? st->n : batch);
    int ok = (st->order = malloc((size_t)s->k * sizeof *st->order)) && (st->start = malloc(((size_t)s->k + 1) * sizeof *st->start)) &&
             (st->slots = calloc((size_t)st->prefetch, sizeof *st->slots));
    for (int i = 0; ok && i < st->prefetch; i++)
        ok = (st->slots[i].x = malloc(b * st->row * sizeof(float))) && (st->slots[i].y = malloc(b * sizeof(float)));
    if (ok && c.norm && c.norm->channels) {
        ok = (st->mean = malloc((size_t)st->C * sizeof *st->mean)) && (st->std = malloc((size_t)st->C * sizeof *st->std));
        if (ok) memcpy(st->mean, c.norm->mean, (size_t)st->C * sizeof *st->mean), memcpy(st->std, c.norm->std, (size_t)st->C * sizeof *st->std);
    }
    if (!ok) {
        ds_stream_free(st);
        return ds_fail("stream: out of memory for %d batches of %d samples", c.prefetch, batch), NULL;
    }
    ds_stream_reset(st); /* epoch 0's order, before any thread reads it (as ds_loader_new) */
    size_t win = (size_t)(st->n < st->window ? st->n : st->window);
    for (int t = 0; t < st->threads; t++) {
        worker *wk = calloc(1, sizeof *wk);
        if (wk) {
            wk->st = st, wk->win[0] = wk->win[1] = -1;
            for (int k = 0; k < FD_CACHE; k++) wk->fd[k].shard = -1, wk->fd[k].fy = -1;
            wk->perm[0] = malloc(win * sizeof(int)), wk->perm[1] = malloc(win * sizeof(int));
            wk->tmp = malloc(st->row * sizeof(float)), wk->scratch = malloc(st->row * 8);
        }
        if (!wk || !wk->perm[0] || !wk->perm[1] || !wk->tmp || !wk->scratch ||
            pthread_create(&st->tid[t], NULL, worker_main, wk) != 0) {
            if (wk) free(wk->perm[0]), free(wk->perm[1]), free(wk->tmp), free(wk->scratch), free(wk);
            if (t == 0) {
                ds_stream_free(st);
                return ds_fail("stream: cannot start a loader thread"), NULL;
            }
            break; /* fewer threads than asked: slower, the same batches */
        }
        st->started++;
    }
    return st;
}

int ds_stream_next(ds_stream *st, float *x, float *y)
{
    pthread_mutex_lock(&st->mu);
    if (st->next_take >= st->nbatches) {
        pthread_mutex_unlock(&st->mu);
        return 0;
    }
    double t0 = ds_now();
    slot *sl = &st->slots[st->next_take % st->prefetch];
    while (!st->failed && !(sl->state == READY && sl->batch == st->next_take)) pthread_cond_wait(&st->done, &st->mu);
    st->wait += ds_now() - t0;
    if (st->failed) {
        int rc = ds_fail("%s", st->err);
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    int n = sl->n, gb;
    int64_t lo;
    memcpy(x, sl->x, (size_t)n * st->row * sizeof *x);
    if (y) memcpy(y, sl->y, (size_t)n * sizeof *y);
    share_of(st, st->next_take, &gb, &lo);
    st->last_global = gb;
    sl->state = FREE;
    st->next_take++;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->mu);
    return n;
}

int ds_stream_batches(const ds_stream *st) { return st->nbatches > INT32_MAX ? INT32_MAX : (int)st->nbatches; }

int ds_stream_set_augment(ds_stream *st, int flags)
{
    const ds_shape *sh = &st->s->sample;
    if (flags && sh->ndim != 3) return ds_fail("augment: needs image samples [C, H, W]; these are %d-D", sh->ndim);
    if ((flags & DS_AUG_ROT90) && sh->d[1] != sh->d[2])
        return ds_fail("augment: 90-degree rotations need square images; these are %dx%d", sh->d[1], sh->d[2]);
    pthread_mutex_lock(&st->mu);
    pause_workers(st);
    st->augment = flags;
    reset_locked(st); /* as the in-memory loader: a new epoch */
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int ds_stream_set_shard(ds_stream *st, int rank, int size)
{
    if (size < 1) return ds_fail("loader shard: size must be at least 1, got %d", size);
    if (rank < 0 || rank >= size) return ds_fail("loader shard: rank %d outside 0..%d", rank, size - 1);
    pthread_mutex_lock(&st->mu);
    pause_workers(st);
    st->rank = rank, st->size = size;
    restart(st); /* the epoch drawn, from its start: the generator is not drawn again */
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int ds_stream_more(const ds_stream *st) { return st->next_take < st->nbatches; }
int ds_stream_last_global(const ds_stream *st) { return st->last_global; }
int ds_stream_batch_size(const ds_stream *st)
{
    return (int64_t)st->batch < st->s->n ? st->batch : (int)st->s->n; /* a set smaller than a batch: one batch of it */
}
double ds_stream_wait_seconds(const ds_stream *st) { return st->wait; }
ds_rng *ds_stream_rng(ds_stream *st) { return &st->rng; }

ds_loader *ds_loader_new_shards(ds_shards *s, int batch, uint64_t seed, const ds_stream_cfg *cfg)
{
    ds_stream *st = ds_stream_new(s, batch, seed, cfg);
    if (!st) return NULL;
    ds_loader *l = ds_loader_of_stream(st);
    if (!l) ds_stream_free(st);
    return l;
}
