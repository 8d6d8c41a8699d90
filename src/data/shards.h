/* shards.h — what shards.c, shard_io.c, stream.c and loader.c share: one
 * shard array's header (NPY or FITS), read by chunks with pread, and the
 * streaming loader behind ds_loader_new_shards. */
#ifndef DS_SHARDS_H
#define DS_SHARDS_H

#include "data.h"

#include <sys/types.h>

/* Element types of a shard array (NPY descr or FITS BITPIX). */
typedef enum { DT_F4, DT_F8, DT_U1, DT_I1, DT_I2, DT_U2, DT_I4, DT_I8 } ds_dtype;

/* One array file: n rows of `row` elements from byte `data` on. */
typedef struct ds_array_file {
    char *path;
    int fits;          /* FITS (big-endian, BSCALE/BZERO, NaN and BLANK → 0) else NPY */
    ds_dtype type;
    int big;           /* big-endian elements */
    size_t esize;      /* bytes per element */
    int ndim, dims[DS_MAX_DIMS]; /* as the file states them, slowest first, dims[0] = rows */
    int64_t n;         /* rows */
    size_t row;        /* elements per row */
    off_t data;        /* offset of the first element */
    double bscale, bzero;
    int has_blank;
    int64_t blank;
} ds_array_file;

/* The name of a type ("float32", "uint8", ...) and back (-1: unknown). */
const char *ds_dtype_name(ds_dtype t);
int ds_dtype_parse(const char *name);
/* Read path's header (NPY by default, FITS by name) into a and check that
 * the file holds every row it declares; a->path is a copy. */
int ds_array_open(const char *path, ds_array_file *a);
void ds_array_close(ds_array_file *a);
/* Rows [first, first + count) as float into out [count * row] through fd
 * (open on a->path), scratch at least count * row * esize bytes. Read
 * errors and a file shorter than its header says name the file; non-finite
 * NPY values are an error naming the file and row, FITS NaN becomes 0. */
int ds_array_read(const ds_array_file *a, int fd, int64_t first, int count, float *out, void *scratch);

/* One shard: its x and (optional) y files and sample count. */
typedef struct ds_shard {
    ds_array_file x, y;
    int has_y;
    int64_t n;
} ds_shard;

struct ds_shards {
    char *dir;           /* folder of index.json: shard paths are relative to it */
    ds_shape sample;
    int classes;
    char **class_names;  /* NULL or classes names */
    int64_t n;
    int k;               /* shards */
    ds_shard *shard;
    int has_norm;
    double *mean, *std;  /* [sample.d[0]] from the index */
    int64_t *count;      /* [classes] per-class counts, NULL if the index has none */
};

/* Whole set into memory (ds_data_load's shards:DIR), refused beyond a
 * share of physical memory. */
int ds_shards_load(const char *path, ds_dataset *out);

/* dst = src [C, H, W] under a dihedral transform (loader.c): bit 0 flips
 * x, bit 1 flips y, bit 2 transposes (square planes only). */
void ds_dihedral(const float *src, float *dst, int C, int H, int W, int code);

/* The streaming loader (stream.c) behind a ds_loader (loader.c). */
typedef struct ds_stream ds_stream;
ds_stream *ds_stream_new(ds_shards *s, int batch, uint64_t seed, const ds_stream_cfg *cfg);
void ds_stream_free(ds_stream *st);
void ds_stream_reset(ds_stream *st);
int ds_stream_next(ds_stream *st, float *x, float *y);
int ds_stream_batches(const ds_stream *st);
int ds_stream_set_augment(ds_stream *st, int flags);
int ds_stream_set_shard(ds_stream *st, int rank, int size);
int ds_stream_more(const ds_stream *st);
int ds_stream_last_global(const ds_stream *st);
int ds_stream_batch_size(const ds_stream *st);
double ds_stream_wait_seconds(const ds_stream *st);
ds_rng *ds_stream_rng(ds_stream *st);
/* loader.c: a ds_loader that forwards to st (owns it). */
ds_loader *ds_loader_of_stream(ds_stream *st);

#endif
