/* checkpoint.c — checkpoints in the safetensors format:
 *
 *   [u64 little-endian N][N bytes of JSON header, space-padded to 8k][data]
 *
 * The header maps each tensor name to {"dtype":"F32","shape":[…],
 * "data_offsets":[begin,end]} (offsets into the data section) and holds
 * "__metadata__", a string→string map: "format" ("deepsky-1"), "model" (the
 * model-file text), "norm" and "state" (JSON documents in strings) and
 * "optim_kind". Tensors are the parameters and buffers under their node
 * names, then the optimizer's buffers as "optim.<k>.<param name>". Any
 * safetensors reader (NumPy with json+struct alone) can read the weights.
 */
#include "internal.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "checkpoint.c writes floats as they lie in memory: little-endian hosts only");

#define FORMAT "deepsky-1"
#define MAX_HEADER ((uint64_t)100 << 20)

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop"};

typedef struct ck_tensor {
    const char *name; /* borrowed from the header tree */
    ds_shape shape;
    const float *data;
    uint64_t begin, end; /* data_offsets */
} ck_tensor;

struct ds_checkpoint {
    char *path;
    ds_json *header;
    const ds_json *meta; /* "__metadata__" or NULL */
    char *data;          /* the data section, malloc'd (so float-aligned) */
    ck_tensor *t;
    int n;
};

/* "optim.<k>.<name>" into b (reset first). */
static const char *optim_key(ds_jbuf *b, int k, const char *name)
{
    b->len = 0;
    ds_jb_printf(b, "optim.%d.%s", k, name);
    return b->oom ? "" : b->p;
}

/* ---- save ---- */

static void put_entry(ds_jbuf *h, const char *name, ds_shape s, uint64_t *off)
{
    uint64_t bytes = (uint64_t)ds_shape_numel(s) * sizeof(float);
    ds_jb_put(h, ",", 1);
    ds_jb_str(h, name, strlen(name));
    ds_jb_printf(h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int i = 0; i < s.ndim; i++) ds_jb_printf(h, "%s%d", i ? "," : "", s.d[i]);
    ds_jb_printf(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", *off, *off + bytes);
    *off += bytes;
}

/* Adds "key":"<escaped value>" to the metadata object. */
static void put_meta(ds_jbuf *h, const char *key, const char *val, size_t len)
{
    if (h->oom) return;
    if (h->p[h->len - 1] != '{') ds_jb_put(h, ",", 1);
    ds_jb_str(h, key, strlen(key));
    ds_jb_put(h, ":", 1);
    ds_jb_str(h, val, len);
}

static void put_rng(ds_jbuf *b, const char *key, const ds_rng *r)
{
    ds_jb_printf(b, ",\"%s\":[", key);
    for (int i = 0; i < 4; i++) ds_jb_printf(b, "%s\"%016" PRIx64 "\"", i ? "," : "", r->s[i]);
    ds_jb_put(b, "]", 1);
}

/* best_metric: %.17g round-trips a double; JSON has no NaN/Inf, so those
 * are written as the strings "nan", "inf", "-inf". */
static void put_double(ds_jbuf *b, const char *key, double x)
{
    if (isfinite(x)) ds_jb_printf(b, ",\"%s\":%.17g", key, x);
    else ds_jb_printf(b, ",\"%s\":\"%s\"", key, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static const char *const reserved_keys[] = {"format", "model", "norm", "state", "optim_kind"};

/* "<prefix>.<name>" (or the name without a prefix) into b (reset first). */
static const char *part_key(ds_jbuf *b, const char *prefix, const char *name)
{
    b->len = 0;
    if (prefix) ds_jb_printf(b, "%s.%s", prefix, name);
    else ds_jb_printf(b, "%s", name);
    return b->oom ? "" : b->p;
}

static int build_header(ds_jbuf *h, const ds_ckpt_part *parts, int n_parts, const char *model_text,
                        const ds_norm *norm, const ds_train_state *st, const ds_meta_kv *extra,
                        int n_extra)
{
    ds_jbuf v = {0};
    for (int i = 0; i < n_extra; i++) {
        if (!extra[i].key || !*extra[i].key || !extra[i].value)
            return ds_fail("metadata entry %d needs a key and a value", i);
        for (size_t r = 0; r < sizeof reserved_keys / sizeof *reserved_keys; r++)
            if (strcmp(extra[i].key, reserved_keys[r]) == 0)
                return ds_fail("metadata key '%s' is reserved", extra[i].key);
        for (int j = 0; j < i; j++)
            if (strcmp(extra[i].key, extra[j].key) == 0)
                return ds_fail("metadata key '%s' is given twice", extra[i].key);
    }
    ds_jb_put(h, "{\"__metadata__\":{", 17);
    put_meta(h, "format", FORMAT, strlen(FORMAT));
    if (model_text) put_meta(h, "model", model_text, strlen(model_text));
    if (norm && norm->channels > 0) {
        ds_jb_printf(&v, "{\"channels\":%d,\"mean\":[", norm->channels);
        for (int pass = 0; pass < 2; pass++) {
            const float *a = pass ? norm->std : norm->mean;
            for (int i = 0; i < norm->channels; i++) {
                if (!isfinite(a[i])) {
                    ds_jb_free(&v);
                    return ds_fail("normalisation %s[%d] is %g", pass ? "std" : "mean", i,
                                   (double)a[i]);
                }
                ds_jb_printf(&v, "%s%.9g", i ? "," : "", (double)a[i]);
            }
            ds_jb_printf(&v, pass ? "]}" : "],\"std\":[");
        }
        put_meta(h, "norm", v.p, v.len);
    }
    if (st) {
        v.len = 0;
        ds_jb_printf(&v, "{\"epoch\":%d,\"step\":%ld,\"batch_in_epoch\":%d", st->epoch, st->step,
                     st->batch_in_epoch);
        put_double(&v, "best_metric", st->best_metric);
        put_rng(&v, "loader_rng", &st->loader_rng);
        put_rng(&v, "graph_rng", &st->graph_rng);
        ds_jb_printf(&v, ",\"batch\":%d,\"epochs\":%d,\"seed\":%" PRIu64 ",\"lr\":%.9g,\"val_split\":%.9g",
                     st->batch, st->epochs, st->seed, (double)st->lr, (double)st->val_split);
        ds_jb_put(&v, "}", 1);
        put_meta(h, "state", v.p, v.len);
    }
    ds_jbuf kb = {0};
    for (int q = 0; q < n_parts; q++) {
        const ds_optim *o = parts[q].o;
        if (!o) continue;
        const char *k = kind_names[ds_optim_kind_of(o)];
        put_meta(h, parts[q].prefix ? part_key(&kb, "optim_kind", parts[q].prefix) : "optim_kind", k, strlen(k));
        if (parts[q].prefix) { /* each part's own step count (a GAN's networks step at different rates) */
            char n[32];
            snprintf(n, sizeof n, "%ld", ds_optim_steps(o));
            put_meta(h, part_key(&kb, "optim_steps", parts[q].prefix), n, strlen(n));
        }
    }
    for (int i = 0; i < n_extra; i++) put_meta(h, extra[i].key, extra[i].value, strlen(extra[i].value));
    ds_jb_put(h, "}", 1);

    uint64_t off = 0;
    for (int q = 0; q < n_parts; q++) {
        const ds_graph *g = parts[q].g;
        for (int i = 0; i < g->n_params; i++)
            put_entry(h, part_key(&kb, parts[q].prefix, g->params[i]->name), g->params[i]->shape, &off);
    }
    for (int q = 0; q < n_parts; q++) {
        const ds_graph *g = parts[q].g;
        for (int k = 0; k < ds_optim_num_state(parts[q].o); k++)
            for (int i = 0; i < g->n_params; i++)
                if (g->params[i]->kind == DS_NODE_PARAM)
                    put_entry(h, optim_key(&v, k, part_key(&kb, parts[q].prefix, g->params[i]->name)),
                              g->params[i]->shape, &off);
    }
    if (kb.oom) v.oom = 1;
    ds_jb_free(&kb);
    ds_jb_put(h, "}", 1);
    while (h->len % 8) ds_jb_put(h, " ", 1);
    int oom = v.oom;
    ds_jb_free(&v);
    return h->oom || oom ? ds_fail("out of memory building the checkpoint header") : 0;
}

static int put(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int write_body(FILE *f, const ds_jbuf *h, const ds_ckpt_part *parts, int n_parts)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
    if (put(f, len, 8) || put(f, h->p, h->len)) return -1;
    for (int q = 0; q < n_parts; q++) {
        const ds_graph *g = parts[q].g;
        for (int i = 0; i < g->n_params; i++)
            if (put(f, g->params[i]->val, ds_numel(g->params[i]) * sizeof(float))) return -1;
    }
    for (int q = 0; q < n_parts; q++) {
        const ds_graph *g = parts[q].g;
        /* the cast: the optimizer is only read, through the accessor */
        ds_optim *o = (ds_optim *)parts[q].o;
        for (int k = 0; k < ds_optim_num_state(o); k++)
            for (int i = 0, t = 0; i < g->n_params; i++)
                if (g->params[i]->kind == DS_NODE_PARAM &&
                    put(f, ds_optim_state(o, t++, k), ds_numel(g->params[i]) * sizeof(float)))
                    return -1;
    }
    return 0;
}

int ds_checkpoint_save(const char *path, ds_graph *g, const ds_optim *o, const char *model_text,
                       const ds_norm *norm, const ds_train_state *st)
{
    return ds_checkpoint_save_ex(path, g, o, model_text, norm, st, NULL, 0);
}

int ds_checkpoint_save_ex(const char *path, ds_graph *g, const ds_optim *o, const char *model_text,
                          const ds_norm *norm, const ds_train_state *st, const ds_meta_kv *extra,
                          int n_extra)
{
    ds_ckpt_part one = {NULL, g, o};
    return ds_checkpoint_save_parts(path, &one, 1, model_text, norm, st, extra, n_extra);
}

int ds_checkpoint_save_parts(const char *path, const ds_ckpt_part *parts, int n_parts, const char *model_text,
                             const ds_norm *norm, const ds_train_state *st, const ds_meta_kv *extra, int n_extra)
{
    if (!path || !*path || n_parts < 1 || !parts) return ds_fail("ds_checkpoint_save: path and graph are required");
    for (int q = 0; q < n_parts; q++) {
        if (!parts[q].g) return ds_fail("ds_checkpoint_save: path and graph are required");
        if (!parts[q].g->compiled) return ds_fail("ds_checkpoint_save: compile the graph first");
        if (n_parts > 1 && (!parts[q].prefix || !*parts[q].prefix))
            return ds_fail("ds_checkpoint_save: each of several graphs needs a prefix");
    }
    ds_jbuf h = {0};
    if (build_header(&h, parts, n_parts, model_text, norm, st, extra, n_extra) != 0) {
        ds_jb_free(&h);
        return ds_fail_prefix("cannot write checkpoint %s: ", path);
    }
    /* through a temporary file and rename (src/io/atomic.c): a kill at any
     * moment leaves the previous checkpoint whole */
    ds_atomic a;
    int rc = ds_atomic_open(&a, path);
    errno = 0;
    if (rc == 0 && write_body(a.f, &h, parts, n_parts) != 0) {
        int err = errno ? errno : EIO;
        ds_atomic_abort(&a);
        rc = ds_fail("%s: %s", path, strerror(err));
    } else if (rc == 0) {
        rc = ds_atomic_commit(&a);
    }
    ds_jb_free(&h);
    return rc != 0 ? ds_fail_prefix("cannot write checkpoint: ") : 0;
}

/* ---- open ---- */

/* Check one header entry and record it as tensor c->t[c->n]. */
static int add_tensor(ds_checkpoint *c, const ds_json *e, uint64_t data_bytes)
{
    const char *nm = e->key;
    if (e->type != DS_JSON_OBJ)
        return ds_fail("checkpoint %s: tensor '%s' is not a JSON object", c->path, nm);
    const ds_json *dt = ds_json_get(e, "dtype"), *sh = ds_json_get(e, "shape"),
                  *of = ds_json_get(e, "data_offsets");
    if (!dt || dt->type != DS_JSON_STR)
        return ds_fail("checkpoint %s: tensor '%s' has no dtype", c->path, nm);
    if (strlen(dt->str) != dt->len)
        return ds_fail("checkpoint %s: tensor '%s' has a dtype with a NUL character in it", c->path, nm);
    if (strcmp(dt->str, "F32") != 0)
        return ds_fail("checkpoint %s: tensor '%s' has dtype %s; only F32 is supported", c->path,
                       nm, dt->str);
    if (!sh || sh->type != DS_JSON_ARR || sh->n > DS_MAX_DIMS)
        return ds_fail("checkpoint %s: tensor '%s' needs a shape of at most %d sizes", c->path, nm,
                       DS_MAX_DIMS);
    ds_shape s = {.ndim = sh->n};
    uint64_t numel = 1, begin, end;
    for (int i = 0; i < sh->n; i++) {
        uint64_t d;
        if (ds_json_u64(&sh->kids[i], &d) != 0 || d > INT_MAX)
            return ds_fail("checkpoint %s: tensor '%s' has a bad size at shape[%d]", c->path, nm,
                           i);
        s.d[i] = (int)d;
        numel = d && numel > UINT64_MAX / 4 / d ? UINT64_MAX / 4 : numel * d;
    }
    if (!of || of->type != DS_JSON_ARR || of->n != 2 || ds_json_u64(&of->kids[0], &begin) != 0 ||
        ds_json_u64(&of->kids[1], &end) != 0)
        return ds_fail("checkpoint %s: tensor '%s' needs data_offsets [begin, end]", c->path, nm);
    if (begin > end || end > data_bytes)
        return ds_fail("checkpoint %s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                       "] lie outside the %" PRIu64 "-byte data section",
                       c->path, nm, begin, end, data_bytes);
    char b[96];
    if (end - begin != numel * 4)
        return ds_fail("checkpoint %s: tensor '%s' of shape %s needs %" PRIu64
                       " bytes but data_offsets span %" PRIu64,
                       c->path, nm, ds_shape_str(s, b, sizeof b), numel * 4, end - begin);
    if (begin % 4)
        return ds_fail("checkpoint %s: tensor '%s' data starts at %" PRIu64
                       ", not a multiple of 4", c->path, nm, begin);
    const float *v = (const float *)(c->data + begin);
    for (uint64_t i = 0; i < numel; i++) /* a NaN weight would reach every output (and the metrics) */
        if (!isfinite(v[i]))
            return ds_fail("checkpoint %s: tensor '%s' element %" PRIu64 " is %s; the checkpoint is unusable",
                           c->path, nm, i, isnan(v[i]) ? "NaN" : v[i] > 0 ? "+Inf" : "-Inf");
    c->t[c->n++] = (ck_tensor){nm, s, v, begin, end};
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const ck_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* As the reference reader (huggingface/safetensors) requires: the tensors,
 * in offset order, tile the data section exactly: no overlap, no hole, no
 * bytes after the last. */
static int check_tiling(const ds_checkpoint *c, uint64_t data_bytes)
{
    ck_tensor *t = malloc(((size_t)c->n + 1) * sizeof *t);
    if (!t) return ds_fail("out of memory");
    memcpy(t, c->t, (size_t)c->n * sizeof *t);
    qsort(t, (size_t)c->n, sizeof *t, by_offset);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < c->n && rc == 0; i++) {
        if (t[i].begin < at)
            rc = ds_fail("checkpoint %s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s'",
                         c->path, t[i].name, t[i].begin, t[i].end, t[i - 1].name);
        else if (t[i].begin > at)
            rc = ds_fail("checkpoint %s: %" PRIu64 " bytes at %" PRIu64 " of the data section belong to no tensor "
                         "(a hole before tensor '%s')", c->path, t[i].begin - at, at, t[i].name);
        at = t[i].end;
    }
    if (rc == 0 && at != data_bytes)
        rc = ds_fail("checkpoint %s: %" PRIu64 " bytes after the last tensor's data (the data section is %" PRIu64
                     " bytes; the tensors end at %" PRIu64 ")", c->path, data_bytes - at, data_bytes, at);
    free(t);
    return rc;
}

/* A safetensors length under 100 MB has zero high bytes; eight printable
 * or white-space bytes are the start of a text file (a model file). */
static int looks_like_text(const unsigned char *b)
{
    for (int i = 0; i < 8; i++)
        if (!(b[i] >= 0x20 && b[i] < 0x7f) && b[i] != '\n' && b[i] != '\r' && b[i] != '\t') return 0;
    return 1;
}

/* Read the header text (malloc'd into *text, *hlen bytes) and the data
 * section (into c->data) of the file at c->path. */
static int read_file(ds_checkpoint *c, char **text, uint64_t *hlen, uint64_t *data_bytes)
{
    FILE *f = fopen(c->path, "rb");
    struct stat sb;
    unsigned char len[8];
    int rc = -1;
    if (!f || fstat(fileno(f), &sb) != 0) {
        ds_fail("cannot open checkpoint %s: %s", c->path, strerror(errno));
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size, n = 0;
    if (!S_ISREG(sb.st_mode)) {
        ds_fail("checkpoint %s is not a regular file", c->path);
        goto done;
    }
    if (size < 8 || fread(len, 1, 8, f) != 8) {
        ds_fail("checkpoint %s is truncated: %" PRIu64 " bytes, too short for the header length",
                c->path, size);
        goto done;
    }
    for (int i = 0; i < 8; i++) n |= (uint64_t)len[i] << (8 * i);
    if (n > MAX_HEADER && looks_like_text(len)) {
        ds_fail("%s is a text file, not a checkpoint%s", c->path,
                memchr(len, '[', 8) || len[0] == '#' || len[0] == ';'
                    ? " (this is a model file: train it with `deepsky train MODEL.cfg --data SPEC`, then give "
                      "the .safetensors it writes)"
                    : "");
        goto done;
    }
    if (n > MAX_HEADER) {
        ds_fail("checkpoint %s is corrupt: header length %" PRIu64 " is over the 100 MB limit",
                c->path, n);
        goto done;
    }
    if (n > size - 8) {
        ds_fail("checkpoint %s is truncated: header length %" PRIu64 " but only %" PRIu64
                " bytes follow", c->path, n, size - 8);
        goto done;
    }
    *hlen = n;
    *data_bytes = size - 8 - n;
    *text = malloc(n ? n : 1);
    c->data = malloc(*data_bytes ? *data_bytes : 1);
    if (!*text || !c->data)
        ds_fail("checkpoint %s: out of memory for %" PRIu64 " bytes", c->path, size);
    else if (fread(*text, 1, n, f) != n || fread(c->data, 1, *data_bytes, f) != *data_bytes)
        ds_fail("checkpoint %s is truncated: read error or the file shrank while reading", c->path);
    else rc = 0;
done:
    if (f) fclose(f);
    return rc;
}

/* Validate the parsed header: tensors, metadata strings, format. */
static int check_header(ds_checkpoint *c, uint64_t data_bytes)
{
    if (!(c->t = calloc((size_t)c->header->n + 1, sizeof *c->t))) return ds_fail("out of memory");
    for (int i = 0; i < c->header->n; i++) {
        const ds_json *e = &c->header->kids[i];
        if (strcmp(e->key, "__metadata__") != 0) {
            if (add_tensor(c, e, data_bytes) != 0) return -1;
            continue;
        }
        if (e->type != DS_JSON_OBJ)
            return ds_fail("checkpoint %s: __metadata__ is not a JSON object", c->path);
        for (int k = 0; k < e->n; k++) {
            if (e->kids[k].type != DS_JSON_STR)
                return ds_fail("checkpoint %s: metadata '%s' is not a string", c->path,
                               e->kids[k].key);
            if (strlen(e->kids[k].str) != e->kids[k].len)
                return ds_fail("checkpoint %s: metadata '%s' has a NUL character in it", c->path, e->kids[k].key);
        }
        c->meta = e;
    }
    if (check_tiling(c, data_bytes) != 0) return -1;
    const ds_json *fmt = ds_json_get(c->meta, "format");
    if (fmt && strncmp(fmt->str, "deepsky-", 8) == 0 && strcmp(fmt->str, FORMAT) != 0)
        return ds_fail("checkpoint %s has format '%s'; this deepsky reads %s", c->path, fmt->str,
                       FORMAT);
    return 0;
}

ds_checkpoint *ds_checkpoint_open(const char *path)
{
    if (!path) {
        ds_fail("ds_checkpoint_open: path is NULL");
        return NULL;
    }
    ds_checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        ds_fail("out of memory");
        return NULL;
    }
    char *text = NULL, err[128];
    uint64_t hlen = 0, data_bytes = 0;
    int rc = read_file(c, &text, &hlen, &data_bytes);
    if (rc == 0 && !(c->header = ds_json_parse(text, hlen, err, sizeof err)))
        rc = ds_fail("checkpoint %s: bad JSON header (%s)", path, err);
    else if (rc == 0 && c->header->type != DS_JSON_OBJ)
        rc = ds_fail("checkpoint %s: bad JSON header (not an object)", path);
    free(text);
    if (rc == 0 && check_header(c, data_bytes) == 0) return c;
    ds_checkpoint_close(c);
    return NULL;
}

void ds_checkpoint_close(ds_checkpoint *c)
{
    if (!c) return;
    ds_json_free(c->header);
    free(c->t);
    free(c->data);
    free(c->path);
    free(c);
}

int ds_checkpoint_num_tensors(const ds_checkpoint *c) { return c ? c->n : 0; }

const char *ds_checkpoint_tensor(const ds_checkpoint *c, int i, ds_shape *shape, const float **data)
{
    if (!c || i < 0 || i >= c->n) return NULL;
    if (shape) *shape = c->t[i].shape;
    if (data) *data = c->t[i].data;
    return c->t[i].name;
}

/* ---- metadata ---- */

const char *ds_checkpoint_model_text(const ds_checkpoint *c)
{
    const ds_json *m = c ? ds_json_get(c->meta, "model") : NULL;
    return m ? m->str : "";
}

const char *ds_checkpoint_meta(const ds_checkpoint *c, const char *key)
{
    const ds_json *m = c && key ? ds_json_get(c->meta, key) : NULL;
    return m ? m->str : NULL;
}

/* The metadata string `key` parsed as a JSON object; NULL and *absent = 1
 * when missing, NULL with an error when malformed. */
static ds_json *meta_doc(const ds_checkpoint *c, const char *key, int *absent)
{
    const ds_json *m = ds_json_get(c->meta, key);
    char err[128];
    *absent = !m;
    if (!m) return NULL;
    ds_json *j = ds_json_parse(m->str, m->len, err, sizeof err);
    if (j && j->type == DS_JSON_OBJ) return j;
    ds_fail("checkpoint %s: metadata '%s' is not a JSON object (%s)", c->path, key,
            j ? "another JSON value" : err);
    ds_json_free(j);
    return NULL;
}

static int read_floats(const ds_json *a, int n, float **out)
{
    if (!a || a->type != DS_JSON_ARR || a->n != n || !(*out = malloc((size_t)n * sizeof **out)))
        return -1;
    for (int i = 0; i < n; i++) {
        if (a->kids[i].type != DS_JSON_NUM) return -1;
        (*out)[i] = strtof(a->kids[i].str, NULL); /* out of float range: ±Inf, refused by the caller */
    }
    return 0;
}

/* Every mean finite, every std finite and > 0; else which is not. */
static int check_norm(const ds_checkpoint *c, const ds_norm *nm)
{
    for (int i = 0; i < nm->channels; i++) {
        if (!isfinite(nm->mean[i]))
            return ds_fail("checkpoint %s: metadata 'norm' mean[%d] is %g; it must be finite", c->path, i,
                           (double)nm->mean[i]);
        if (!(isfinite(nm->std[i]) && nm->std[i] > 0))
            return ds_fail("checkpoint %s: metadata 'norm' std[%d] is %g; it must be finite and > 0", c->path, i,
                           (double)nm->std[i]);
    }
    return 0;
}

int ds_checkpoint_norm(const ds_checkpoint *c, ds_norm *out) { return ds_checkpoint_norm_key(c, "norm", out); }

char *ds_norm_json(const ds_norm *nm)
{
    size_t cap = 64 + 34 * (size_t)(nm->channels > 0 ? nm->channels : 0);
    char *p = malloc(cap);
    if (!p) {
        ds_fail("out of memory");
        return NULL;
    }
    size_t k = (size_t)snprintf(p, cap, "{\"channels\":%d,\"mean\":[", nm->channels);
    for (int pass = 0; pass < 2; pass++) {
        const float *a = pass ? nm->std : nm->mean;
        for (int i = 0; i < nm->channels; i++) {
            if (!isfinite(a[i])) {
                free(p);
                ds_fail("normalisation %s[%d] is %g", pass ? "std" : "mean", i, (double)a[i]);
                return NULL;
            }
            k += (size_t)snprintf(p + k, cap - k, "%s%.9g", i ? "," : "", (double)a[i]);
        }
        k += (size_t)snprintf(p + k, cap - k, pass ? "]}" : "],\"std\":[");
    }
    return p;
}

int ds_checkpoint_norm_key(const ds_checkpoint *c, const char *key, ds_norm *out)
{
    if (!c || !out) return ds_fail("ds_checkpoint_norm: NULL argument");
    *out = (ds_norm){0};
    int absent;
    ds_json *j = meta_doc(c, key, &absent);
    if (!j) return absent ? 0 : -1;
    int64_t ch;
    int rc = 0;
    if (ds_json_i64(ds_json_get(j, "channels"), &ch) != 0 || ch < 1 || ch > INT_MAX ||
        read_floats(ds_json_get(j, "mean"), (int)ch, &out->mean) != 0 ||
        read_floats(ds_json_get(j, "std"), (int)ch, &out->std) != 0) {
        free(out->mean);
        free(out->std);
        *out = (ds_norm){0};
        rc = ds_fail("checkpoint %s: metadata '%s' needs channels >= 1 and that many mean and "
                     "std numbers", c->path, key);
    } else {
        out->channels = (int)ch;
        if ((rc = check_norm(c, out)) != 0) ds_norm_free(out);
    }
    ds_json_free(j);
    return rc;
}

static int read_rng(const ds_json *a, ds_rng *r)
{
    if (!a || a->type != DS_JSON_ARR || a->n != 4) return -1;
    for (int i = 0; i < 4; i++) {
        const char *s = a->kids[i].str;
        char *end;
        if (a->kids[i].type != DS_JSON_STR || a->kids[i].len != 16 || s[0] == '-' || s[0] == '+')
            return -1;
        errno = 0;
        r->s[i] = strtoull(s, &end, 16);
        if (errno || *end) return -1;
    }
    return 0;
}

static int read_double(const ds_json *j, double *x)
{
    if (j && j->type == DS_JSON_STR) {
        if (strcmp(j->str, "nan") == 0) *x = NAN;
        else if (strcmp(j->str, "inf") == 0) *x = INFINITY;
        else if (strcmp(j->str, "-inf") == 0) *x = -INFINITY;
        else return -1;
        return 0;
    }
    return ds_json_double(j, x);
}

int ds_checkpoint_state(const ds_checkpoint *c, ds_train_state *out)
{
    if (!c || !out) return ds_fail("ds_checkpoint_state: NULL argument");
    int absent;
    ds_json *j = meta_doc(c, "state", &absent);
    if (!j) return absent ? ds_fail("checkpoint %s has no training state", c->path) : -1;
    ds_train_state s = {0};
    int64_t ep, step, bie;
    const char *bad = NULL;
    if (ds_json_i64(ds_json_get(j, "epoch"), &ep) != 0 || ep < 0 || ep > INT_MAX) bad = "epoch";
    else if (ds_json_i64(ds_json_get(j, "step"), &step) != 0 || step < 0 || step > LONG_MAX)
        bad = "step";
    else if (ds_json_i64(ds_json_get(j, "batch_in_epoch"), &bie) != 0 || bie < 0 || bie > INT_MAX)
        bad = "batch_in_epoch";
    else if (read_double(ds_json_get(j, "best_metric"), &s.best_metric) != 0) bad = "best_metric";
    else if (read_rng(ds_json_get(j, "loader_rng"), &s.loader_rng) != 0) bad = "loader_rng";
    else if (read_rng(ds_json_get(j, "graph_rng"), &s.graph_rng) != 0) bad = "graph_rng";
    /* the run settings are optional (older checkpoints lack them) */
    int64_t iv;
    double dv;
    if (!bad && ds_json_get(j, "batch")) {
        if (ds_json_i64(ds_json_get(j, "batch"), &iv) != 0 || iv < 0 || iv > INT_MAX) bad = "batch";
        else s.batch = (int)iv;
        if (ds_json_i64(ds_json_get(j, "epochs"), &iv) != 0 || iv < 0 || iv > INT_MAX) bad = "epochs";
        else s.epochs = (int)iv;
        if (ds_json_i64(ds_json_get(j, "seed"), &iv) != 0 || iv < 0) bad = "seed";
        else s.seed = (uint64_t)iv;
        if (ds_json_double(ds_json_get(j, "lr"), &dv) != 0) bad = "lr";
        else s.lr = (float)dv;
        if (ds_json_double(ds_json_get(j, "val_split"), &dv) != 0) bad = "val_split";
        else s.val_split = (float)dv;
    }
    ds_json_free(j);
    if (bad) return ds_fail("checkpoint %s: metadata 'state' has no valid '%s'", c->path, bad);
    s.epoch = (int)ep;
    s.step = (long)step;
    s.batch_in_epoch = (int)bie;
    *out = s;
    return 0;
}

/* ---- restore ---- */

static const ck_tensor *find(const ds_checkpoint *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}

/* The tensor for node p under `key`, or an error naming both shapes. */
static const ck_tensor *match(const ds_checkpoint *c, const char *key, const ds_node *p)
{
    const ck_tensor *t = find(c, key);
    char a[96], b[96];
    if (!t) {
        ds_fail("checkpoint %s has no tensor '%s'", c->path, key);
        return NULL;
    }
    int same = t->shape.ndim == p->shape.ndim;
    for (int i = 0; same && i < p->shape.ndim; i++) same = t->shape.d[i] == p->shape.d[i];
    if (same) return t;
    ds_fail("checkpoint %s: tensor '%s' has shape %s but the model's is %s", c->path, key,
            ds_shape_str(t->shape, a, sizeof a), ds_shape_str(p->shape, b, sizeof b));
    return NULL;
}

/* Two passes: check every tensor first, so a failed restore changes nothing. */
int ds_checkpoint_restore(const ds_checkpoint *c, ds_graph *g, ds_optim *o)
{
    return ds_checkpoint_restore_part(c, NULL, g, o);
}

int ds_checkpoint_restore_part(const ds_checkpoint *c, const char *prefix, ds_graph *g, ds_optim *o)
{
    if (!c || !g) return ds_fail("ds_checkpoint_restore: checkpoint and graph are required");
    if (!g->compiled) return ds_fail("ds_checkpoint_restore: compile the graph first");
    ds_train_state st = {0};
    ds_jbuf key = {0}, pk = {0};
    if (o) {
        const ds_json *k = ds_json_get(c->meta, prefix ? part_key(&pk, "optim_kind", prefix) : "optim_kind");
        const char *want = kind_names[ds_optim_kind_of(o)];
        int bad = !k ? ds_fail("checkpoint %s has no optimizer state%s%s", c->path, prefix ? " for " : "", prefix ? prefix : "")
                     : strcmp(k->str, want) != 0 ? ds_fail("checkpoint %s holds %s optimizer state; the optimizer is %s",
                                                           c->path, k->str, want)
                                                 : 0;
        if (!bad && prefix) {
            const ds_json *n = ds_json_get(c->meta, part_key(&pk, "optim_steps", prefix));
            char *end = NULL;
            st.step = n && n->str ? strtol(n->str, &end, 10) : -1;
            if (!n || !end || *end || st.step < 0) bad = ds_fail("checkpoint %s: no step count for %s's optimizer", c->path, prefix);
        } else if (!bad && ds_checkpoint_state(c, &st) != 0) {
            bad = -1;
        }
        if (bad) {
            ds_jb_free(&pk);
            return -1;
        }
    }
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (int i = 0; i < g->n_params && rc == 0; i++) {
            ds_node *p = g->params[i];
            const ck_tensor *t = match(c, part_key(&pk, prefix, p->name), p);
            if (!t) rc = -1;
            else if (pass) memcpy(p->val, t->data, ds_numel(p) * sizeof(float));
        }
        for (int k = 0; k < ds_optim_num_state(o) && rc == 0; k++)
            for (int i = 0, ti = 0; i < g->n_params && rc == 0; i++) {
                ds_node *p = g->params[i];
                if (p->kind != DS_NODE_PARAM) continue;
                const ck_tensor *t = match(c, optim_key(&key, k, part_key(&pk, prefix, p->name)), p);
                float *dst = ds_optim_state(o, ti++, k);
                if (!t || !dst) rc = t ? ds_fail("optimizer does not belong to this graph") : -1;
                else if (pass) memcpy(dst, t->data, ds_numel(p) * sizeof(float));
            }
    }
    if (key.oom || pk.oom) rc = ds_fail("out of memory");
    ds_jb_free(&key);
    ds_jb_free(&pk);
    if (rc == 0 && o) ds_optim_set_steps(o, st.step);
    return rc;
}
