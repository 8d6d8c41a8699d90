/* sim_shards.c — simulated stamps written as a sharded data set, shard by
 * shard: memory is one shard and one chunk of stamps, whatever the count.
 * Stamp i is ds_sim_stamp(cfg, i), as in ds_sim_dataset, so the stamps are
 * those of an unsharded simulation of the same seed, in the same order. */
#include "shards.h"

#include <stdlib.h>

enum { CHUNK = 2048 };

int ds_sim_shards(const ds_sim_cfg *cfg, const char *dir, int shard_size, ds_progress_fn fn, void *arg)
{
    if (cfg->size < 8 || cfg->size > 512) return ds_fail("simulate: stamp size %d outside 8..512", cfg->size);
    if (cfg->channels != 1 && cfg->channels != 3) return ds_fail("simulate: channels must be 1 or 3");
    if (cfg->n < 1) return ds_fail("simulate: n must be >= 1");
    if (!(cfg->real_fraction >= 0 && cfg->real_fraction <= 1)) return ds_fail("simulate: real fraction outside [0, 1]");
    static const char *const names[2] = {"bogus", "real"};
    ds_shard_writer *w = ds_shard_writer_open(dir, ds_shape_of(3, cfg->channels, cfg->size, cfg->size), 2, names,
                                              shard_size);
    if (w) ds_shard_writer_set_sim(w, cfg->seed, cfg->size);
    if (!w) return -1;
    size_t per = (size_t)cfg->channels * cfg->size * cfg->size;
    float *x = malloc(CHUNK * per * sizeof *x), *y = malloc(CHUNK * sizeof *y);
    int rc = x && y ? 0 : ds_fail("simulate: out of memory for %d stamps", CHUNK);
    for (long done = 0; !rc && done < cfg->n;) {
        long k = cfg->n - done < CHUNK ? cfg->n - done : CHUNK;
        rc = ds_sim_stamps(cfg, done, k, x, y, NULL);
        if (!rc) rc = ds_shard_writer_add(w, x, y, (int)k);
        done += k;
        if (fn && !rc) fn(arg, done, cfg->n);
    }
    free(x), free(y);
    if (rc) {
        ds_shard_writer_abort(w); /* no index: a set is indexed only when every stamp is written */
        return -1;
    }
    return ds_shard_writer_close(w);
}
