/* fuzz_common.h — what the libFuzzer harnesses share: the loaders take a
 * path, so each input is written to a per-process temporary file (in
 * $TMPDIR, else /dev/shm) that is removed at exit. Harnesses are quiet
 * (errors stay in ds_last_error) and free everything they get, so the
 * leak checker at the end of a run sees only real leaks. */
#ifndef DS_FUZZ_COMMON_H
#define DS_FUZZ_COMMON_H

#include "deepsky.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_PATHS 4
static char fuzz_paths[FUZZ_MAX_PATHS][512];
static int fuzz_n_paths;

static inline void fuzz_cleanup(void)
{
    for (int i = 0; i < fuzz_n_paths; i++) unlink(fuzz_paths[i]);
}

/* The per-process path for slot k (0..3) with suffix ext, e.g. ".npy". */
static inline const char *fuzz_path(int k, const char *ext)
{
    static int registered;
    if (!registered) registered = 1, atexit(fuzz_cleanup);
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char *p = fuzz_paths[k];
    snprintf(p, sizeof fuzz_paths[k], "%s/ds-fuzz-%ld-%d%s", dir, (long)getpid(), k, ext);
    if (k >= fuzz_n_paths) fuzz_n_paths = k + 1;
    return p;
}

/* Write data[0..n) to the path of slot k; the path, or NULL (then the
 * harness skips the input: a full /dev/shm is not a finding). */
static inline const char *fuzz_write(int k, const char *ext, const uint8_t *data, size_t n)
{
    const char *p = fuzz_path(k, ext);
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    if (fclose(f) != 0 || w != n) return NULL;
    return p;
}

/* Read every float of a buffer so that ASan sees an out-of-bounds one;
 * the sum is kept from being optimised away. */
static volatile float fuzz_sink;
static inline void fuzz_touch(const float *x, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    fuzz_sink = s;
}

static inline void fuzz_touch_dataset(const ds_dataset *d)
{
    if (d->x) fuzz_touch(d->x, (size_t)d->n * ds_shape_numel(d->sample));
    if (d->y) fuzz_touch(d->y, (size_t)d->n);
    if (d->class_names)
        for (int i = 0; i < d->classes; i++) fuzz_sink += (float)strlen(d->class_names[i]);
}

#endif
