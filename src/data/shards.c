/* shards.c — sharded data sets: a folder of NPY or FITS shards and
 * index.json (docs/data.md gives the format).
 *
 * Opening reads the index strictly (every key known, every required one
 * present) and every shard file's header, checked against the index
 * (sample shape, dtype, count, and the bytes behind them), so a bad set
 * fails at once and names the file, not an hour into an epoch. The writer
 * keeps one shard in memory, accumulates the per-channel mean and variance
 * in double as it goes (Chan et al.'s pairwise update of Welford's
 * algorithm, one sample at a time) and writes the index last, atomically. */
#include "shards.h"
#include "../io/json.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT "deepsky-shards"
#define VERSION 1

/* ---- running per-channel statistics ---- */

typedef struct {
    int C;
    size_t inner;
    double count, *mean, *m2;
} stats;

static int stats_init(stats *s, ds_shape sample)
{
    s->C = sample.ndim ? sample.d[0] : 1;
    s->inner = ds_shape_numel(sample) / (size_t)s->C;
    s->count = 0;
    s->mean = calloc((size_t)s->C, sizeof *s->mean);
    s->m2 = calloc((size_t)s->C, sizeof *s->m2);
    return s->mean && s->m2 ? 0 : ds_fail("out of memory");
}

static void stats_free(stats *s) { free(s->mean), free(s->m2); }

/* One sample: each channel's own mean and squared deviations, merged into
 * the running ones (exact in exact arithmetic, stable in double). */
static void stats_add(stats *s, const float *x)
{
    double nb = (double)s->inner, na = s->count, n = na + nb;
    for (int c = 0; c < s->C; c++) {
        const float *p = x + (size_t)c * s->inner;
        double m = 0, q = 0;
        for (size_t j = 0; j < s->inner; j++) m += p[j];
        m /= nb;
        for (size_t j = 0; j < s->inner; j++) q += (p[j] - m) * (p[j] - m);
        double delta = m - s->mean[c];
        s->mean[c] += delta * nb / n;
        s->m2[c] += q + delta * delta * na * nb / n;
    }
    s->count = n;
}

/* std with ds_norm_compute's rule: a constant channel gets 1 */
static double stats_std(const stats *s, int c)
{
    double var = s->m2[c] / s->count, sd = sqrt(var), ne = s->count * DBL_EPSILON;
    return var <= ne * var + (ne * s->mean[c]) * (ne * s->mean[c]) || sd < 10 * DBL_EPSILON ? 1.0 : sd;
}

/* ---- index ---- */

static int jfail(const char *index, const char *key, const char *what)
{
    return ds_fail("%s: key '%s': %s", index, key, what);
}

static int get_int(const char *index, const ds_json *j, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    if (!j || j->type != DS_JSON_NUM || ds_json_i64(j, v) != 0 || *v < lo || *v > hi) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer from %lld to %lld", (long long)lo, (long long)hi);
        return jfail(index, key, what);
    }
    return 0;
}

/* Every member of obj is one of known (NULL-terminated), each of need present. */
static int check_keys(const char *index, const ds_json *obj, const char *where, const char *const *known,
                      const char *const *need)
{
    for (int i = 0; i < obj->n; i++) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = !strcmp(obj->kids[i].key, known[k]);
        if (!ok) return ds_fail("%s: unknown key '%s'%s", index, obj->kids[i].key, where);
    }
    for (int k = 0; need[k]; k++)
        if (!ds_json_get(obj, need[k])) return ds_fail("%s: missing key '%s'%s", index, need[k], where);
    return 0;
}

/* A shard file name: relative, inside the folder. */
static int shard_path(const char *index, const char *dir, const ds_json *j, const char *key, char *out, size_t n)
{
    if (!j || j->type != DS_JSON_STR || !*j->str) return jfail(index, key, "expected a file name");
    if (j->str[0] == '/' || !strncmp(j->str, "../", 3) || strstr(j->str, "/../"))
        return ds_fail("%s: key '%s': '%s' must be a path relative to the index's folder, inside it", index, key,
                       j->str);
    if (snprintf(out, n, "%s/%s", dir, j->str) >= (int)n) return ds_fail("%s: path too long", index);
    return 0;
}

static int shape_eq(ds_shape a, ds_shape b)
{
    if (a.ndim != b.ndim) return 0;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return 0;
    return 1;
}

/* The sample shape an array file's rows have, as npy:/fits: read them. */
static ds_shape row_shape(const ds_array_file *a)
{
    int r = a->ndim - 1;
    const int *d = a->dims + 1;
    return r == 1 ? ds_shape_of(1, d[0]) : r == 2 ? ds_shape_of(3, 1, d[0], d[1])
           : r == 3 ? ds_shape_of(3, d[0], d[1], d[2]) : (ds_shape){.ndim = r};
}

static int open_shard(ds_shards *s, const char *index, const ds_json *e, int i)
{
    static const char *const known[] = {"x", "y", "n", "dtype", NULL}, *const need[] = {"x", "n", NULL};
    char where[48], path[PATH_MAX], buf[96], buf2[96];
    snprintf(where, sizeof where, " in shards[%d]", i);
    if (!e || e->type != DS_JSON_OBJ) return ds_fail("%s: shards[%d] must be an object {x, y, n}", index, i);
    if (check_keys(index, e, where, known, need)) return -1;
    ds_shard *sh = &s->shard[i];
    if (get_int(index, ds_json_get(e, "n"), "n", 1, INT_MAX, &sh->n)) return -1;
    if (shard_path(index, s->dir, ds_json_get(e, "x"), "x", path, sizeof path) || ds_array_open(path, &sh->x))
        return -1;
    ds_shape got = row_shape(&sh->x);
    if (!shape_eq(got, s->sample))
        return ds_fail("%s: samples of shape %s, but %s says %s", path, ds_shape_str(got, buf, sizeof buf), index,
                       ds_shape_str(s->sample, buf2, sizeof buf2));
    if (sh->x.n != sh->n)
        return ds_fail("%s: %lld samples, but %s says %lld (shards[%d].n)", path, (long long)sh->x.n, index,
                       (long long)sh->n, i);
    const ds_json *dt = ds_json_get(e, "dtype");
    if (dt && (dt->type != DS_JSON_STR || ds_dtype_parse(dt->str) < 0))
        return jfail(index, "dtype", "expected float32, float64, uint8, int8, int16, uint16, int32 or int64");
    if (dt && ds_dtype_parse(dt->str) != (int)sh->x.type)
        return ds_fail("%s: elements are %s, but %s says %s (shards[%d].dtype)", path, ds_dtype_name(sh->x.type),
                       index, dt->str, i);
    const ds_json *y = ds_json_get(e, "y");
    if (!y && s->classes > 0) return ds_fail("%s: missing key 'y'%s (the set has %d classes)", index, where, s->classes);
    if (y) {
        if (shard_path(index, s->dir, y, "y", path, sizeof path) || ds_array_open(path, &sh->y)) return -1;
        sh->has_y = 1;
        if (sh->y.ndim != 1 || sh->y.fits)
            return ds_fail("%s: labels must be a 1-D NPY array [n]", path);
        if (sh->y.n != sh->n)
            return ds_fail("%s: %lld labels, but %s says %lld samples (shards[%d].n)", path, (long long)sh->y.n,
                           index, (long long)sh->n, i);
    }
    return 0;
}

static int read_doubles(const char *index, const ds_json *j, const char *key, int n, double *out)
{
    if (!j || j->type != DS_JSON_ARR || j->n != n) {
        char what[64];
        snprintf(what, sizeof what, "expected an array of %d numbers", n);
        return jfail(index, key, what);
    }
    for (int i = 0; i < n; i++)
        if (j->kids[i].type != DS_JSON_NUM || ds_json_double(&j->kids[i], &out[i]) || !isfinite(out[i]))
            return jfail(index, key, "expected finite numbers");
    return 0;
}

static int parse_index(ds_shards *s, const char *index, const ds_json *root)
{
    static const char *const known[] = {"format", "version", "sample", "samples", "classes", "class_names",
                                        "class_counts", "mean", "std", "shards", "sim", NULL},
                             *const need[] = {"format", "version", "sample", "samples", "shards", NULL};
    if (root->type != DS_JSON_OBJ) return ds_fail("%s: expected a JSON object", index);
    if (check_keys(index, root, "", known, need)) return -1;
    const ds_json *f = ds_json_get(root, "format");
    if (f->type != DS_JSON_STR || strcmp(f->str, FORMAT)) return jfail(index, "format", "expected \"" FORMAT "\"");
    int64_t v;
    if (get_int(index, ds_json_get(root, "version"), "version", 1, INT_MAX, &v)) return -1;
    if (v != VERSION) return ds_fail("%s: format version %lld; this deepsky reads version %d", index, (long long)v, VERSION);
    const ds_json *sm = ds_json_get(root, "sample");
    if (sm->type != DS_JSON_ARR || (sm->n != 1 && sm->n != 3))
        return jfail(index, "sample", "expected [F] or [C, H, W]");
    s->sample.ndim = sm->n;
    for (int i = 0; i < sm->n; i++) {
        if (get_int(index, &sm->kids[i], "sample", 1, INT_MAX, &v)) return -1;
        s->sample.d[i] = (int)v;
    }
    if (ds_shape_numel(s->sample) > DS_MAX_ELEMS) return jfail(index, "sample", "samples too large");
    if (ds_json_get(root, "classes") &&
        get_int(index, ds_json_get(root, "classes"), "classes", 0, DS_MAX_LABEL, &v))
        return -1;
    s->classes = ds_json_get(root, "classes") ? (int)v : 0;
    const ds_json *cn = ds_json_get(root, "class_names");
    if (cn) {
        if (cn->type != DS_JSON_ARR || cn->n != s->classes)
            return jfail(index, "class_names", "expected one name per class");
        if (!(s->class_names = calloc((size_t)s->classes, sizeof *s->class_names))) return ds_fail("out of memory");
        for (int c = 0; c < s->classes; c++) {
            if (cn->kids[c].type != DS_JSON_STR) return jfail(index, "class_names", "expected strings");
            if (!(s->class_names[c] = strdup(cn->kids[c].str))) return ds_fail("out of memory");
        }
    }
    const ds_json *cc = ds_json_get(root, "class_counts");
    if (cc) {
        if (cc->type != DS_JSON_ARR || cc->n != s->classes)
            return jfail(index, "class_counts", "expected one count per class");
        if (!(s->count = calloc((size_t)s->classes + 1, sizeof *s->count))) return ds_fail("out of memory");
        for (int c = 0; c < s->classes; c++)
            if (get_int(index, &cc->kids[c], "class_counts", 0, INT64_MAX, &s->count[c])) return -1;
    }
    const ds_json *mean = ds_json_get(root, "mean"), *std = ds_json_get(root, "std");
    if (!mean != !std) return ds_fail("%s: missing key '%s' (mean and std come together)", index, mean ? "std" : "mean");
    if (mean) {
        int C = s->sample.d[0];
        s->mean = calloc((size_t)C, sizeof *s->mean), s->std = calloc((size_t)C, sizeof *s->std);
        if (!s->mean || !s->std) return ds_fail("out of memory");
        if (read_doubles(index, mean, "mean", C, s->mean) || read_doubles(index, std, "std", C, s->std)) return -1;
        for (int c = 0; c < C; c++)
            if (!(s->std[c] > 0)) return jfail(index, "std", "expected positive numbers");
        s->has_norm = 1;
    }
    if (get_int(index, ds_json_get(root, "samples"), "samples", 1, INT64_MAX, &s->n)) return -1;
    const ds_json *sh = ds_json_get(root, "shards");
    if (sh->type != DS_JSON_ARR || sh->n < 1) return jfail(index, "shards", "expected an array of shards {x, y, n}");
    if (!(s->shard = calloc((size_t)sh->n, sizeof *s->shard))) return ds_fail("out of memory");
    s->k = sh->n;
    int64_t total = 0;
    for (int i = 0; i < sh->n; i++) {
        if (open_shard(s, index, &sh->kids[i], i)) return -1;
        total += s->shard[i].n;
    }
    if (total != s->n)
        return ds_fail("%s: the shards hold %lld samples, but key 'samples' says %lld", index, (long long)total,
                       (long long)s->n);
    if (s->count) {
        int64_t sum = 0;
        for (int c = 0; c < s->classes; c++) sum += s->count[c];
        if (sum != s->n)
            return ds_fail("%s: key 'class_counts' sums to %lld, but 'samples' is %lld", index, (long long)sum,
                           (long long)s->n);
    }
    return 0;
}

/* "shards:DIR" → "DIR" (the data spec's scheme), else path itself */
static const char *unscheme(const char *path)
{
    return path && !strncmp(path, "shards:", 7) ? path + 7 : path;
}

int ds_shards_is(const char *path)
{
    struct stat st;
    char p[PATH_MAX];
    path = unscheme(path);
    if (!path || stat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) return snprintf(p, sizeof p, "%s/index.json", path) < (int)sizeof p && stat(p, &st) == 0;
    const char *base = strrchr(path, '/');
    return S_ISREG(st.st_mode) && !strcmp(base ? base + 1 : path, "index.json");
}

ds_shards *ds_shards_open(const char *path)
{
    struct stat st;
    char index[PATH_MAX];
    path = unscheme(path);
    if (!path || stat(path, &st) != 0) {
        ds_fail("%s: cannot open: %s", path ? path : "(null)", strerror(errno));
        return NULL;
    }
    ds_shards *s = calloc(1, sizeof *s);
    if (!s) {
        ds_fail("out of memory");
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        s->dir = strdup(path);
        snprintf(index, sizeof index, "%s/index.json", path);
    } else {
        snprintf(index, sizeof index, "%s", path);
        const char *slash = strrchr(path, '/');
        s->dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    }
    char *text = s->dir ? ds_text_read(index) : NULL;
    if (!text) {
        if (!s->dir) ds_fail("out of memory");
        ds_shards_close(s);
        return NULL;
    }
    char err[128];
    ds_json *root = ds_json_parse(text, strlen(text), err, sizeof err);
    free(text);
    int rc = root ? parse_index(s, index, root) : ds_fail("%s: not valid JSON: %s", index, err);
    ds_json_free(root);
    if (rc) {
        ds_shards_close(s);
        return NULL;
    }
    return s;
}

void ds_shards_close(ds_shards *s)
{
    if (!s) return;
    for (int i = 0; s->shard && i < s->k; i++) ds_array_close(&s->shard[i].x), ds_array_close(&s->shard[i].y);
    free(s->shard);
    ds_names_free(s->class_names, s->classes);
    free(s->mean), free(s->std), free(s->count), free(s->dir);
    free(s);
}

int64_t ds_shards_samples(const ds_shards *s) { return s->n; }

int ds_shards_describe(const ds_shards *s, ds_dataset *meta)
{
    memset(meta, 0, sizeof *meta);
    meta->n = s->n > INT_MAX ? INT_MAX : (int)s->n;
    meta->sample = s->sample;
    meta->classes = s->classes;
    if (s->class_names) {
        if (!(meta->class_names = calloc((size_t)s->classes, sizeof *meta->class_names))) return ds_fail("out of memory");
        for (int c = 0; c < s->classes; c++)
            if (!(meta->class_names[c] = strdup(s->class_names[c]))) {
                ds_dataset_free(meta);
                return ds_fail("out of memory");
            }
    }
    return 0;
}

int ds_shards_class_counts(const ds_shards *s, int64_t *count)
{
    if (!s->count) return ds_fail("%s/index.json: no key 'class_counts'", s->dir);
    memcpy(count, s->count, (size_t)s->classes * sizeof *count);
    return 0;
}

enum { CHUNK_ROWS = 256 };

/* Calls fn on every sample of s in order, CHUNK_ROWS rows at a time. */
static int each_chunk(const ds_shards *s, int (*fn)(void *arg, const float *x, const float *y, int n, int64_t at),
                      void *arg)
{
    size_t row = ds_shape_numel(s->sample);
    float *x = malloc(CHUNK_ROWS * row * sizeof *x), *y = malloc(CHUNK_ROWS * sizeof *y);
    void *scratch = malloc(CHUNK_ROWS * row * 8);
    int rc = x && y && scratch ? 0 : ds_fail("out of memory");
    int64_t at = 0;
    for (int i = 0; !rc && i < s->k; i++) {
        const ds_shard *sh = &s->shard[i];
        int fx = open(sh->x.path, O_RDONLY), fy = sh->has_y ? open(sh->y.path, O_RDONLY) : -1;
        if (fx < 0 || (sh->has_y && fy < 0))
            rc = ds_fail("%s: cannot open: %s", fx < 0 ? sh->x.path : sh->y.path, strerror(errno));
        for (int64_t r = 0; !rc && r < sh->n; r += CHUNK_ROWS) {
            int m = sh->n - r < CHUNK_ROWS ? (int)(sh->n - r) : CHUNK_ROWS;
            rc = ds_array_read(&sh->x, fx, r, m, x, scratch);
            if (!rc && sh->has_y) rc = ds_array_read(&sh->y, fy, r, m, y, scratch);
            if (!rc && !sh->has_y) memset(y, 0, (size_t)m * sizeof *y);
            if (!rc) rc = fn(arg, x, y, m, at);
            at += m;
        }
        if (fx >= 0) close(fx);
        if (fy >= 0) close(fy);
    }
    free(x), free(y), free(scratch);
    return rc;
}

static int add_stats(void *arg, const float *x, const float *y, int n, int64_t at)
{
    (void)y, (void)at;
    stats *st = arg;
    for (int i = 0; i < n; i++) stats_add(st, x + (size_t)i * st->C * st->inner);
    return 0;
}

int ds_shards_norm(ds_shards *s, ds_norm *out)
{
    memset(out, 0, sizeof *out);
    int C = s->sample.d[0];
    out->mean = malloc((size_t)C * sizeof *out->mean), out->std = malloc((size_t)C * sizeof *out->std);
    if (!out->mean || !out->std) {
        ds_norm_free(out);
        return ds_fail("out of memory");
    }
    out->channels = C;
    if (s->has_norm) {
        for (int c = 0; c < C; c++) out->mean[c] = (float)s->mean[c], out->std[c] = (float)s->std[c];
        return 0;
    }
    stats st;
    if (stats_init(&st, s->sample) || each_chunk(s, add_stats, &st)) {
        stats_free(&st);
        ds_norm_free(out);
        return -1;
    }
    for (int c = 0; c < C; c++) out->mean[c] = (float)st.mean[c], out->std[c] = (float)stats_std(&st, c);
    stats_free(&st);
    return 0;
}

/* ---- the whole set in memory ---- */

typedef struct {
    ds_dataset *d;
    size_t row;
    const char *index;
} load_task;

static int copy_rows(void *arg, const float *x, const float *y, int n, int64_t at)
{
    load_task *t = arg;
    memcpy(t->d->x + (size_t)at * t->row, x, (size_t)n * t->row * sizeof *x);
    for (int i = 0; i < n; i++) {
        if (t->d->classes && !(y[i] >= 0 && y[i] < t->d->classes && y[i] == floorf(y[i])))
            return ds_fail("%s: sample %lld has label %g, not a class 0..%d", t->index, (long long)at + i,
                           (double)y[i], t->d->classes - 1);
        t->d->y[at + i] = y[i];
    }
    return 0;
}

/* Bytes a set may take in memory: DS_SHARDS_LOAD_LIMIT, else a quarter of
 * the physical memory. */
static uint64_t load_limit(void)
{
    const char *e = getenv("DS_SHARDS_LOAD_LIMIT");
    if (e && *e) return strtoull(e, NULL, 10);
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size / 4 : (uint64_t)1 << 32;
}

int ds_shards_load(const char *path, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    ds_shards *s = ds_shards_open(path);
    if (!s) return -1;
    size_t row = ds_shape_numel(s->sample);
    uint64_t bytes = (uint64_t)s->n * (row + 1) * sizeof(float), limit = load_limit();
    int rc = -1;
    if (bytes > limit || s->n > INT_MAX) {
        ds_fail("%s: %lld samples are %.3g GB in memory, more than the %.3g GB allowed (a quarter of this "
                "machine's memory; DS_SHARDS_LOAD_LIMIT sets it); train on it with --data %s, which streams it "
                "shard by shard", path, (long long)s->n, bytes / 1e9, limit / 1e9, path);
        goto done;
    }
    if (ds_dataset_alloc(out, (int)s->n, s->sample, path)) goto done;
    out->classes = s->classes;
    char index[PATH_MAX];
    snprintf(index, sizeof index, "%s/index.json", s->dir);
    load_task t = {out, row, index};
    if (each_chunk(s, copy_rows, &t)) goto done;
    if (s->class_names) {
        out->class_names = s->class_names;
        s->class_names = NULL;
    }
    rc = 0;
done:
    if (rc) ds_dataset_free(out);
    ds_shards_close(s);
    return rc;
}

/* ---- writer ---- */

struct ds_shard_writer {
    char *dir;
    ds_shape sample;
    size_t row;
    int classes, shard_size, fill, failed;
    char **names;
    float *x, *y; /* the shard being filled */
    stats st;
    int64_t n, *count;
    ds_jbuf shards; /* the index's shard entries so far */
    int k;
    int has_sim, sim_size; /* simulated stamps 0..n-1 of (seed, size): the index's "sim", for provenance */
    uint64_t sim_seed;
};

int ds_shard_writer_set_sim(ds_shard_writer *w, uint64_t seed, int size)
{
    w->has_sim = 1, w->sim_seed = seed, w->sim_size = size;
    return 0;
}

static int mkdirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return ds_fail("%s: path too long", dir);
    for (char *s = p + 1;; s++) {
        int end = !*s;
        if (*s == '/' || end) {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return ds_fail("%s: cannot create: %s", p, strerror(errno));
            if (end) break;
            *s = '/';
        }
    }
    return 0;
}

ds_shard_writer *ds_shard_writer_open(const char *dir, ds_shape sample, int classes, const char *const *class_names,
                                      int shard_size)
{
    if (!dir || !*dir || shard_size < 1 || classes < 0 || (sample.ndim != 1 && sample.ndim != 3) ||
        ds_shape_numel(sample) == 0) {
        ds_fail("shard writer: needs a folder, samples [F] or [C, H, W], classes >= 0 and a shard size >= 1");
        return NULL;
    }
    ds_shard_writer *w = calloc(1, sizeof *w);
    if (!w || mkdirs(dir)) {
        free(w);
        return NULL;
    }
    w->sample = sample, w->row = ds_shape_numel(sample), w->classes = classes, w->shard_size = shard_size;
    int ok = (w->dir = strdup(dir)) != NULL && stats_init(&w->st, sample) == 0;
    ok = ok && (w->x = malloc((size_t)shard_size * w->row * sizeof *w->x)) && (w->y = malloc((size_t)shard_size * sizeof *w->y));
    ok = ok && (w->count = calloc((size_t)classes + 1, sizeof *w->count));
    if (ok && class_names) {
        ok = (w->names = calloc((size_t)classes, sizeof *w->names)) != NULL;
        for (int c = 0; ok && c < classes; c++) ok = (w->names[c] = strdup(class_names[c])) != NULL;
    }
    if (!ok) {
        ds_fail("shard writer: out of memory for a shard of %d samples", shard_size);
        w->failed = 1;
        ds_shard_writer_close(w);
        return NULL;
    }
    return w;
}

/* Write the filled shard and record it. */
static int flush(ds_shard_writer *w)
{
    if (!w->fill) return 0;
    char name[64], path[PATH_MAX], yname[64];
    ds_shape xs = w->sample.ndim == 1 ? ds_shape_of(2, w->fill, w->sample.d[0])
                                      : ds_shape_of(4, w->fill, w->sample.d[0], w->sample.d[1], w->sample.d[2]);
    snprintf(name, sizeof name, "shard-%06d.x.npy", w->k);
    snprintf(yname, sizeof yname, "shard-%06d.y.npy", w->k);
    if (snprintf(path, sizeof path, "%s/%s", w->dir, name) >= (int)sizeof path) return ds_fail("%s: path too long", w->dir);
    if (ds_npy_write(path, xs, w->x)) return -1;
    if (w->classes) {
        snprintf(path, sizeof path, "%s/%s", w->dir, yname);
        if (ds_npy_write(path, ds_shape_of(1, w->fill), w->y)) return -1;
    }
    ds_jb_printf(&w->shards, "%s\n    {\"x\": \"%s\", ", w->k ? "," : "", name);
    if (w->classes) ds_jb_printf(&w->shards, "\"y\": \"%s\", ", yname);
    ds_jb_printf(&w->shards, "\"n\": %d, \"dtype\": \"float32\"}", w->fill);
    w->k++;
    w->fill = 0;
    return w->shards.oom ? ds_fail("shard writer: out of memory") : 0;
}

int ds_shard_writer_add(ds_shard_writer *w, const float *x, const float *y, int n)
{
    if (w->failed) return ds_fail("shard writer: an earlier write failed");
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * w->row;
        float yi = y ? y[i] : 0;
        if (w->classes && !(yi >= 0 && yi < w->classes && yi == floorf(yi))) {
            w->failed = 1;
            return ds_fail("shard writer: sample %lld has label %g, not a class 0..%d", (long long)w->n,
                           (double)yi, w->classes - 1);
        }
        for (size_t j = 0; j < w->row; j++)
            if (!isfinite(xi[j])) {
                w->failed = 1;
                return ds_fail("shard writer: sample %lld, element %zu is %g; values must be finite",
                               (long long)w->n, j, (double)xi[j]);
            }
        memcpy(w->x + (size_t)w->fill * w->row, xi, w->row * sizeof *xi);
        w->y[w->fill++] = yi;
        stats_add(&w->st, xi);
        if (w->classes) w->count[(int)yi]++;
        w->n++;
        if (w->fill == w->shard_size && flush(w)) {
            w->failed = 1;
            return -1;
        }
    }
    return 0;
}

void ds_shard_writer_abort(ds_shard_writer *w)
{
    if (!w) return;
    w->failed = 1;
    ds_shard_writer_close(w);
}

int ds_shard_writer_close(ds_shard_writer *w)
{
    if (!w) return 0;
    int rc = w->failed ? -1 : flush(w);
    if (!rc && !w->n) rc = ds_fail("shard writer: no samples were added");
    if (!rc) {
        ds_jbuf b = {0};
        ds_jb_printf(&b, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"sample\": [", FORMAT, VERSION);
        for (int i = 0; i < w->sample.ndim; i++) ds_jb_printf(&b, "%s%d", i ? ", " : "", w->sample.d[i]);
        ds_jb_printf(&b, "],\n  \"samples\": %lld,\n  \"classes\": %d,\n", (long long)w->n, w->classes);
        if (w->names) {
            ds_jb_printf(&b, "  \"class_names\": [");
            for (int c = 0; c < w->classes; c++) {
                if (c) ds_jb_printf(&b, ", ");
                ds_jb_str(&b, w->names[c], strlen(w->names[c]));
            }
            ds_jb_printf(&b, "],\n");
        }
        if (w->classes) {
            ds_jb_printf(&b, "  \"class_counts\": [");
            for (int c = 0; c < w->classes; c++) ds_jb_printf(&b, "%s%lld", c ? ", " : "", (long long)w->count[c]);
            ds_jb_printf(&b, "],\n");
        }
        ds_jb_printf(&b, "  \"mean\": [");
        for (int c = 0; c < w->st.C; c++) ds_jb_printf(&b, "%s%.17g", c ? ", " : "", w->st.mean[c]);
        ds_jb_printf(&b, "],\n  \"std\": [");
        for (int c = 0; c < w->st.C; c++) ds_jb_printf(&b, "%s%.17g", c ? ", " : "", stats_std(&w->st, c));
        ds_jb_printf(&b, "],\n");
        if (w->has_sim) /* as simulate's provenance.json: the stamps' seed, size and index range */
            ds_jb_printf(&b, "  \"sim\": {\"seed\": %llu, \"size\": %d, \"first\": 0, \"end\": %lld},\n",
                         (unsigned long long)w->sim_seed, w->sim_size, (long long)w->n);
        ds_jb_printf(&b, "  \"shards\": [");
        ds_jb_put(&b, w->shards.p ? w->shards.p : "", w->shards.len);
        ds_jb_printf(&b, "\n  ]\n}\n");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/index.json", w->dir);
        rc = b.oom ? ds_fail("shard writer: out of memory") : ds_atomic_write(path, b.p, b.len);
        ds_jb_free(&b);
    }
    stats_free(&w->st);
    ds_names_free(w->names, w->classes);
    ds_jb_free(&w->shards);
    free(w->x), free(w->y), free(w->count), free(w->dir), free(w);
    return rc;
}
