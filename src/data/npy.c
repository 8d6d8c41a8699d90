/* npy.c — NumPy .npy arrays (format versions 1, 2 and 3), read as float32.
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for v1, uint32
 * LE for v2/3), an ASCII Python dict {'descr': '<f4', 'fortran_order':
 * False, 'shape': (n, …), } padded with spaces to a multiple of 64 bytes
 * and ended by '\n', then the elements in C order. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER 65536
#define CHUNK 65536

typedef enum { F4, F8, U1, I4, I8 } npy_type;
static const struct {
    const char *descr;
    npy_type type;
    size_t size;
} types[] = {{"<f4", F4, 4}, {"<f8", F8, 8}, {"|u1", U1, 1}, {"<i4", I4, 4}, {"<i8", I8, 8}};

typedef struct {
    const char *p, *end, *path;
} cursor;

static int bad(const cursor *c, const char *what)
{
    return ds_fail("%s: bad NPY header dict: %s", c->path, what);
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n')) c->p++;
}

/* Consumes `ch` (after white space) if it is next; returns whether it was. */
static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) return c->p++, 1;
    return 0;
}

/* A quoted Python string literal without escapes. */
static int parse_str(cursor *c, char *buf, size_t size)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, "expected a string");
    char q = *c->p++;
    size_t k = 0;
    while (c->p < c->end && *c->p != q) {
        if (k + 1 >= size) return bad(c, "string too long");
        buf[k++] = *c->p++;
    }
    if (c->p >= c->end) return bad(c, "unterminated string");
    c->p++;
    buf[k] = 0;
    return 0;
}

/* (d0, d1, …) with an optional trailing comma; "()" is a 0-D array. */
static int parse_shape(cursor *c, int *ndim, int dims[DS_MAX_DIMS])
{
    if (!eat(c, '(')) return bad(c, "'shape' must be a tuple");
    *ndim = 0;
    while (!eat(c, ')')) {
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bad(c, "'shape' must hold non-negative integers");
        long long v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            v = v * 10 + (*c->p++ - '0');
            if (v > INT_MAX) return ds_fail("%s: NPY dimension too large", c->path);
        }
        if (*ndim == DS_MAX_DIMS)
            return ds_fail("%s: NPY array has more than %d dimensions", c->path, DS_MAX_DIMS);
        dims[(*ndim)++] = (int)v;
        if (!eat(c, ',') && (skip_ws(c), c->p >= c->end || *c->p != ')'))
            return bad(c, "expected ',' or ')' in 'shape'");
    }
    return 0;
}

/* The header dict → element type, C order checked, shape. */
static int parse_header(const char *path, const char *h, size_t len, size_t *esize,
                        npy_type *type, int *ndim, int dims[DS_MAX_DIMS])
{
    cursor c = {h, h + len, path};
    char key[32], descr[32] = "";
    int have = 0; /* bits: descr, fortran_order, shape */
    if (!eat(&c, '{')) return bad(&c, "does not start with '{'");
    while (!eat(&c, '}')) {
        if (parse_str(&c, key, sizeof key)) return -1;
        if (!eat(&c, ':')) return bad(&c, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            if (parse_str(&c, descr, sizeof descr)) return -1;
            have |= 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            skip_ws(&c);
            if ((size_t)(c.end - c.p) >= 4 && memcmp(c.p, "True", 4) == 0)
                return ds_fail("%s: Fortran-ordered NPY arrays are not supported; save it in C "
                               "order (np.ascontiguousarray)", path);
            if ((size_t)(c.end - c.p) < 5 || memcmp(c.p, "False", 5) != 0)
                return bad(&c, "'fortran_order' must be True or False");
            c.p += 5;
            have |= 2;
        } else if (strcmp(key, "shape") == 0) {
            if (parse_shape(&c, ndim, dims)) return -1;
            have |= 4;
        } else {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected key '%s'", key);
            return bad(&c, msg);
        }
        if (!eat(&c, ',') && (skip_ws(&c), c.p >= c.end || *c.p != '}'))
            return bad(&c, "expected ',' or '}'");
    }
    if (have != 7) return bad(&c, "needs 'descr', 'fortran_order' and 'shape'");
    /* NumPy evaluates the whole header as one literal: after the dict only padding */
    skip_ws(&c);
    if (c.p != c.end)
        return ds_fail("%s: bad NPY header: %zu bytes of other text after the dict ('%.*s')", path,
                       (size_t)(c.end - c.p), c.end - c.p > 20 ? 20 : (int)(c.end - c.p), c.p);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(descr, types[i].descr) == 0) {
            *type = types[i].type;
            *esize = types[i].size;
            return 0;
        }
    if (descr[0] == '>')
        return ds_fail("%s: big-endian NPY dtype '%s' is not supported; convert with "
                       "a.astype('<%s')", path, descr, descr + 1);
    return ds_fail("%s: unsupported NPY dtype '%s' (supported: <f4, <f8, |u1, <i4, <i8)", path,
                   descr);
}

static uint64_t le(const unsigned char *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | b[i];
    return v;
}

/* Little-endian elements → float32. */
static void decode(float *dst, const unsigned char *src, size_t n, npy_type t)
{
    for (size_t i = 0; i < n; i++) {
        switch (t) {
        case F4: {
            uint32_t u = (uint32_t)le(src + 4 * i, 4);
            memcpy(&dst[i], &u, 4);
            break;
        }
        case F8: {
            uint64_t u = le(src + 8 * i, 8);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            break;
        }
        case U1: dst[i] = src[i]; break;
        case I4: dst[i] = (float)(int32_t)(uint32_t)le(src + 4 * i, 4); break;
        case I8: dst[i] = (float)(int64_t)le(src + 8 * i, 8); break;
        }
    }
}

/* Magic, version and header → element type and shape; leaves f at the data. */
static int read_preamble(FILE *f, const char *path, size_t *esize, npy_type *type, int *ndim,
                         int dims[DS_MAX_DIMS])
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (memcmp(pre, "\x93NUMPY", got < 6 ? got : 6) != 0)
        return ds_fail("%s: not an NPY file (bad magic; expected \\x93NUMPY)", path);
    if (got < 10) return ds_fail("%s: truncated: %zu bytes, too short for an NPY header", path, got);
    if (pre[6] < 1 || pre[6] > 3)
        return ds_fail("%s: unsupported NPY format version %d.%d", path, pre[6], pre[7]);
    size_t hlen = le(pre + 8, 2);
    if (pre[6] > 1) {
        if (fread(pre + 10, 1, 2, f) != 2) return ds_fail("%s: truncated NPY header", path);
        hlen = le(pre + 8, 4);
    }
    if (hlen > NPY_MAX_HEADER)
        return ds_fail("%s: NPY header of %zu bytes is too long", path, hlen);
    char *h = malloc(hlen + 1);
    if (!h) return ds_fail("%s: out of memory", path);
    if (fread(h, 1, hlen, f) != hlen) {
        free(h);
        return ds_fail("%s: truncated NPY header (%zu bytes expected)", path, hlen);
    }
    int rc = parse_header(path, h, hlen, esize, type, ndim, dims);
    free(h);
    return rc;
}

/* The array from f (a file, or a buffer through fmemopen) of `size` bytes
 * in all (-1: unknown); f is left open. */
static int npy_read_stream(FILE *f, const char *path, long long size, float **data, int *ndim, int dims[DS_MAX_DIMS])
{
    size_t esize = 0, numel = 1, got = 0;
    npy_type type = F4;
    int nd = 0, d[DS_MAX_DIMS] = {0};
    unsigned char *chunk = NULL;
    float *out = NULL;
    if (read_preamble(f, path, &esize, &type, &nd, d)) goto fail;
    for (int i = 0; i < nd; i++) {
        if (d[i] && numel > DS_MAX_ELEMS / (size_t)d[i]) {
            ds_fail("%s: NPY array too large (limit 2^31 elements)", path);
            goto fail;
        }
        numel *= (size_t)d[i];
    }
    /* the header's shape is checked against the file before anything is allocated for it */
    long at = ftell(f);
    if (size >= 0 && at >= 0 && (uint64_t)numel * esize > (uint64_t)size - (uint64_t)at) {
        ds_fail("%s: truncated: expected %llu bytes of data, got %llu (the header's shape, checked against the "
                "file size before reading)",
                path, (unsigned long long)numel * esize, (unsigned long long)(size - at));
        goto fail;
    }
    chunk = malloc(CHUNK);
    out = malloc(numel ? numel * sizeof *out : 1);
    if (!chunk || !out) {
        ds_fail("%s: out of memory for %zu elements", path, numel);
        goto fail;
    }
    /* Whole elements per chunk, so each decodes in one piece. */
    size_t per = CHUNK / esize;
    for (size_t done = 0; done < numel;) {
        size_t want = numel - done < per ? numel - done : per;
        size_t r = fread(chunk, 1, want * esize, f);
        got += r;
        if (r != want * esize) {
            if (ferror(f)) ds_fail("%s: read error: %s", path, strerror(errno));
            else ds_fail("%s: truncated: expected %zu bytes of data, got %zu", path,
                         numel * esize, got);
            goto fail;
        }
        decode(out + done, chunk, want, type);
        done += want;
    }
    free(chunk);
    *data = out;
    *ndim = nd;
    memcpy(dims, d, sizeof d);
    return 0;
fail:
    free(chunk);
    free(out);
    return -1;
}

int ds_npy_read(const char *path, float **data, int *ndim, int dims[DS_MAX_DIMS])
{
    *data = NULL;
    *ndim = 0;
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    long long size = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    int rc = npy_read_stream(f, path, size, data, ndim, dims);
    fclose(f);
    return rc;
}

/* the same from memory: fmemopen gives the stream the file reader reads */
static int npy_read_mem(const void *buf, size_t size, const char *name, float **data, int *ndim, int dims[DS_MAX_DIMS])
{
    *data = NULL;
    *ndim = 0;
    if (size < 10) return ds_fail("%s: truncated: %zu bytes, too short for an NPY header", name, size);
    FILE *f = fmemopen((void *)buf, size, "rb");
    if (!f) return ds_fail("%s: cannot read from memory: %s", name, strerror(errno));
    int rc = npy_read_stream(f, name, (long long)size, data, ndim, dims);
    fclose(f);
    return rc;
}

/* Here rather than in spec.c (which calls the loaders): the NPY and FITS
 * loaders read labels files, and a .csv one goes to csv.c. */
int ds_labels_read(const char *path, ds_dataset *lab)
{
    memset(lab, 0, sizeof *lab);
    if (ds_has_ext(path, ".csv") || ds_has_ext(path, ".csv.gz")) return ds_csv_load(path, NULL, 1, lab);
    float *y;
    int nd, d[DS_MAX_DIMS], classes;
    if (ds_npy_read(path, &y, &nd, d)) return -1;
    if (nd != 1) {
        free(y);
        return ds_fail("%s: labels must be a 1-D array [n], got %d-D", path, nd);
    }
    if (ds_labels_check(path, y, d[0], &classes)) {
        free(y);
        return -1;
    }
    *lab = (ds_dataset){.n = d[0], .classes = classes, .y = y};
    return 0;
}

/* X (taken over) of nd axes d as a dataset, labels from ypath (NULL: zeros). */
static int npy_dataset(const char *xpath, float *x, int nd, const int *d, const char *ypath, ds_dataset *out)
{
    ds_shape s = nd == 2 ? ds_shape_of(1, d[1])
               : nd == 3 ? ds_shape_of(3, 1, d[1], d[2])
                         : ds_shape_of(3, d[1], d[2], d[3]);
    ds_dataset lab = {0};
    if (nd < 2 || nd > 4) {
        ds_shape got = {.ndim = nd};
        char buf[96];
        memcpy(got.d, d, (size_t)nd * sizeof *d);
        ds_fail("%s: X must be [n,F], [n,H,W] or [n,C,H,W], got %s", xpath,
                ds_shape_str(got, buf, sizeof buf));
        goto fail;
    }
    if (d[0] == 0 || ds_shape_numel(s) == 0) {
        ds_fail("%s: empty array", xpath);
        goto fail;
    }
    if (ypath) {
        if (ds_labels_read(ypath, &lab)) goto fail;
        if (lab.n != d[0]) {
            ds_fail("count mismatch: %s has %d samples but %s has %d labels", xpath, d[0],
                    ypath, lab.n);
            goto fail;
        }
    } else if (!(lab.y = calloc((size_t)d[0], sizeof *lab.y))) {
        ds_fail("%s: out of memory", xpath);
        goto fail;
    }
    *out = lab;
    out->n = d[0];
    out->sample = s;
    out->x = x;
    return 0;
fail:
    free(x);
    ds_dataset_free(&lab);
    return -1;
}

int ds_npy_load(const char *xpath, const char *ypath, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    float *x;
    int nd = 0, d[DS_MAX_DIMS] = {0};
    if (ds_npy_read(xpath, &x, &nd, d)) return -1;
    return npy_dataset(xpath, x, nd, d, ypath, out);
}

int ds_npy_load_mem(const void *buf, size_t size, const char *name, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    float *x;
    int nd = 0, d[DS_MAX_DIMS] = {0};
    if (npy_read_mem(buf, size, name, &x, &nd, d)) return -1;
    return npy_dataset(name, x, nd, d, NULL, out);
}

int ds_npy_write(const char *path, ds_shape shape, const float *data)
{
    char h[256], dims[160] = "";
    size_t k = 0;
    if (shape.ndim < 0 || shape.ndim > DS_MAX_DIMS)
        return ds_fail("%s: cannot write a %d-D array", path, shape.ndim);
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.d[i] < 0) return ds_fail("%s: negative dimension %d", path, shape.d[i]);
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%d%s", shape.d[i],
                              shape.ndim == 1 || i + 1 < shape.ndim ? ", " : "");
    }
    if (shape.ndim == 1) dims[k - 1] = 0; /* "(n,)" */
    int len = snprintf(h + 10, sizeof h - 10,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* Pad with spaces so that the data starts on a 64-byte boundary. */
    size_t hlen = (size_t)len + 1, total = (10 + hlen + 63) / 64 * 64;
    memset(h + 10 + len, ' ', total - 10 - (size_t)len);
    h[total - 1] = '\n';
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)((total - 10) & 0xff), h[9] = (char)((total - 10) >> 8);
    ds_atomic a;
    if (ds_atomic_open(&a, path) != 0) return -1;
    errno = 0;
    int ok = fwrite(h, 1, total, a.f) == total;
    size_t n = ds_shape_numel(shape);
    unsigned char buf[4096];
    for (size_t i = 0; ok && i < n; i += sizeof buf / 4) {
        size_t m = n - i < sizeof buf / 4 ? n - i : sizeof buf / 4;
        for (size_t j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &data[i + j], 4);
            for (int b = 0; b < 4; b++) buf[4 * j + b] = (unsigned char)(u >> 8 * b);
        }
        ok = fwrite(buf, 4, m, a.f) == m;
    }
    if (!ok) {
        int err = errno ? errno : EIO;
        ds_atomic_abort(&a); /* removes only the temporary file: path is untouched */
        return ds_fail("%s: write error: %s", path, strerror(err));
    }
    return ds_atomic_commit(&a);
}
