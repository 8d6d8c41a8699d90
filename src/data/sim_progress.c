/* sim_progress.c — ds_sim_dataset with a progress callback: the same
 * stamps (each has its own random stream, so the order they are made in
 * does not matter), made in chunks with a call between chunks. A long
 * simulation (100,000 stamps take minutes) can then show its progress. */
#include "data.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const ds_sim_cfg *cfg;
    float *x, *y;
    ds_sim_meta *meta;
    size_t per;
    long first;
    int failed;
} chunk_task;

static void chunk_range(void *arg, long lo, long hi)
{
    chunk_task *t = arg;
    for (long i = lo; i < hi; i++) {
        ds_sim_meta m;
        if (ds_sim_stamp(t->cfg, t->first + i, t->x + t->per * (size_t)i, &m) != 0) {
            t->failed = 1; /* only ever set: the race is benign */
            continue;
        }
        t->y[i] = (float)m.label;
        if (t->meta) t->meta[i] = m;
    }
}

int ds_sim_stamps(const ds_sim_cfg *cfg, long first, long k, float *x, float *y, ds_sim_meta *meta)
{
    chunk_task t = {cfg, x, y, meta, (size_t)cfg->channels * cfg->size * cfg->size, first, 0};
    ds_parallel_for(k, 16, chunk_range, &t); /* stamps are independent: each has its own stream */
    return t.failed ? ds_fail("simulate: a stamp failed (out of memory?)") : 0;
}

int ds_sim_dataset_progress(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta, ds_progress_fn fn,
                            void *arg)
{
    if (!fn) return ds_sim_dataset(cfg, out, meta);
    /* one stamp through ds_sim_dataset: its checks, its shape and class names */
    ds_sim_cfg one = *cfg;
    one.n = 1;
    if (meta) *meta = NULL;
    if (ds_sim_dataset(&one, out, meta) != 0) return -1;
    size_t per = (size_t)cfg->channels * cfg->size * cfg->size;
    float *x = realloc(out->x, sizeof(float) * per * (size_t)cfg->n), *y = x ? realloc(out->y, sizeof(float) * (size_t)cfg->n) : NULL;
    if (x) out->x = x;
    if (y) out->y = y;
    ds_sim_meta *mm = meta && y ? realloc(*meta, sizeof *mm * (size_t)cfg->n) : NULL;
    if (mm) *meta = mm;
    if (!x || !y || (meta && !mm)) {
        if (meta) free(*meta), *meta = NULL;
        ds_dataset_free(out);
        return ds_fail("out of memory for %d stamps", cfg->n);
    }
    out->n = cfg->n;
    fn(arg, 1, cfg->n);
    int rc = 0;
    for (long done = 1; done < cfg->n && !rc;) {
        long k = cfg->n - done < 2048 ? cfg->n - done : 2048;
        rc = ds_sim_stamps(cfg, done, k, out->x + per * (size_t)done, out->y + done, mm ? mm + done : NULL);
        done += k;
        fn(arg, done, cfg->n);
    }
    if (rc) {
        if (meta) free(*meta), *meta = NULL;
        ds_dataset_free(out);
        return -1;
    }
    return 0;
}
