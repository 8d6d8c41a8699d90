/* shard_io.c — one shard array (NPY or FITS) read by rows with pread.
 *
 * Shards are read a few rows at a time, never whole and never mapped
 * (mapped pages count in the resident set), so a loader's memory is its
 * buffers whatever the files' size. The header is parsed here rather than
 * by npy.c or CFITSIO because both read whole arrays: for NPY the dict
 * (descr, fortran_order, shape); for FITS the primary header's cards
 * (SIMPLE, BITPIX, NAXISn, BSCALE, BZERO, BLANK), the data starting at the
 * next 2880-byte block, big-endian. */
#include "shards.h"

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

static const struct {
    const char *name, *npy;
    size_t size;
    int bitpix; /* FITS, 0: none */
} dtypes[] = {
    [DT_F4] = {"float32", "f4", 4, -32}, [DT_F8] = {"float64", "f8", 8, -64}, [DT_U1] = {"uint8", "u1", 1, 8},
    [DT_I1] = {"int8", "i1", 1, 0},      [DT_I2] = {"int16", "i2", 2, 16},    [DT_U2] = {"uint16", "u2", 2, 0},
    [DT_I4] = {"int32", "i4", 4, 32},    [DT_I8] = {"int64", "i8", 8, 64},
};
enum { NTYPES = sizeof dtypes / sizeof *dtypes };

const char *ds_dtype_name(ds_dtype t) { return (unsigned)t < NTYPES ? dtypes[t].name : "?"; }

int ds_dtype_parse(const char *name)
{
    for (int t = 0; t < NTYPES; t++)
        if (!strcmp(name, dtypes[t].name)) return t;
    return -1;
}

/* All of [off, off + n) from fd, or an error naming path. */
static int pread_all(int fd, void *buf, size_t n, off_t off, const char *path)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ds_fail("%s: read error: %s", path, strerror(errno));
        if (r == 0)
            return ds_fail("%s: truncated: ends at byte %lld, %zu bytes short of what its header declares", path,
                           (long long)(off + (off_t)got), n - got);
        got += (size_t)r;
    }
    return 0;
}

/* ---- NPY ---- */

/* The value text after 'key': in the dict h, or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    char q[40];
    for (int quote = 0; quote < 2; quote++) {
        snprintf(q, sizeof q, quote ? "\"%s\"" : "'%s'", key);
        const char *p = strstr(h, q);
        if (!p) continue;
        p += strlen(q);
        while (*p == ' ') p++;
        if (*p++ != ':') return NULL;
        while (*p == ' ') p++;
        return p;
    }
    return NULL;
}

static int npy_header(int fd, const char *path, ds_array_file *a)
{
    unsigned char pre[12];
    struct stat st;
    if (fstat(fd, &st) != 0) return ds_fail("%s: cannot stat: %s", path, strerror(errno));
    if (st.st_size < 10) return ds_fail("%s: truncated: %lld bytes, too short for an NPY header", path, (long long)st.st_size);
    if (pread_all(fd, pre, 10, 0, path)) return -1;
    if (memcmp(pre, "\x93NUMPY", 6)) return ds_fail("%s: not an NPY file (bad magic; expected \\x93NUMPY)", path);
    if (pre[6] < 1 || pre[6] > 3) return ds_fail("%s: unsupported NPY format version %d.%d", path, pre[6], pre[7]);
    size_t hlen = pre[8] | (size_t)pre[9] << 8, start = 10;
    if (pre[6] > 1) {
        if (pread_all(fd, pre + 10, 2, 10, path)) return -1;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        start = 12;
    }
    if (hlen > 65536) return ds_fail("%s: NPY header of %zu bytes is too long", path, hlen);
    char *h = malloc(hlen + 1);
    if (!h) return ds_fail("%s: out of memory", path);
    if (pread_all(fd, h, hlen, (off_t)start, path)) return free(h), -1;
    h[hlen] = 0;
    const char *d = dict_value(h, "descr"), *f = dict_value(h, "fortran_order"), *s = dict_value(h, "shape");
    int rc = -1;
    if (!d || !f || !s) {
        ds_fail("%s: bad NPY header dict: needs 'descr', 'fortran_order' and 'shape'", path);
        goto out;
    }
    if (strncmp(f, "False", 5)) {
        ds_fail("%s: Fortran-ordered NPY arrays are not supported; save it in C order (np.ascontiguousarray)", path);
        goto out;
    }
    char descr[8] = "";
    if ((*d != '\'' && *d != '"') || sscanf(d + 1, "%7[^'\"]", descr) != 1 || strlen(descr) != 3) {
        ds_fail("%s: bad NPY header dict: 'descr' %.12s", path, d);
        goto out;
    }
    a->type = (ds_dtype)-1;
    for (int t = 0; t < NTYPES; t++)
        if (!strcmp(descr + 1, dtypes[t].npy)) a->type = (ds_dtype)t;
    if ((int)a->type < 0 || !(descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=') ||
        (descr[0] == '|' && dtypes[a->type].size != 1)) {
        ds_fail("%s: unsupported NPY dtype '%s' (supported: float32, float64, uint8, int8, int16, uint16, int32, "
                "int64)", path, descr);
        goto out;
    }
    a->big = descr[0] == '>';
    a->esize = dtypes[a->type].size;
    if (*s++ != '(') {
        ds_fail("%s: bad NPY header dict: 'shape' must be a tuple", path);
        goto out;
    }
    a->ndim = 0;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == ')') break;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || v > INT_MAX || errno || a->ndim == DS_MAX_DIMS) {
            ds_fail("%s: bad NPY header dict: 'shape' (%d dimensions at most, each 0..2^31)", path, DS_MAX_DIMS);
            goto out;
        }
        a->dims[a->ndim++] = (int)v;
        s = end;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s != ')') {
            ds_fail("%s: bad NPY header dict: expected ',' or ')' in 'shape'", path);
            goto out;
        }
    }
    a->data = (off_t)(start + hlen);
    rc = 0;
out:
    free(h);
    return rc;
}

/* ---- FITS ---- */

/* The value of card c (80 bytes) as a number; 0 on success. */
static int card_number(const char *c, double *v)
{
    char text[72], *end;
    memcpy(text, c + 10, 70);
    text[70] = 0;
    char *slash = strchr(text, '/');
    if (slash) *slash = 0;
    for (char *p = text; *p; p++)
        if (*p == 'D') *p = 'E'; /* FITS allows a Fortran exponent */
    *v = strtod(text, &end);
    if (end == text) return -1;
    while (*end == ' ') end++;
    return *end ? -1 : 0;
}

static int fits_header(int fd, const char *path, ds_array_file *a)
{
    char block[2880];
    int bitpix = 0, naxis = -1, seen_end = 0, simple = 0;
    long long ax[8] = {0};
    a->bscale = 1, a->bzero = 0;
    off_t off = 0;
    for (int blocks = 0; !seen_end; blocks++) {
        if (blocks > 1000) return ds_fail("%s: FITS header without END in its first 1000 blocks", path);
        if (pread_all(fd, block, sizeof block, off, path)) return -1;
        off += (off_t)sizeof block;
        for (int k = 0; k < 36 && !seen_end; k++) {
            const char *c = block + 80 * k;
            char key[9];
            memcpy(key, c, 8);
            key[8] = 0;
            for (int j = 7; j >= 0 && key[j] == ' '; j--) key[j] = 0;
            double v = 0;
            int has_value = c[8] == '=' && c[9] == ' ';
            if (!blocks && !k) {
                if (strcmp(key, "SIMPLE") || !has_value)
                    return ds_fail("%s: not a FITS file (it does not begin with the card 'SIMPLE  =')", path);
                simple = 1;
                continue;
            }
            if (!strcmp(key, "END")) {
                seen_end = 1;
                continue;
            }
            if (!has_value) continue;
            int num = card_number(c, &v) == 0;
            if (!strcmp(key, "BITPIX") && num) bitpix = (int)v;
            else if (!strcmp(key, "NAXIS") && num) naxis = (int)v;
            else if (!strncmp(key, "NAXIS", 5) && num && key[5] >= '1' && key[5] <= '8' && !key[6])
                ax[key[5] - '1'] = (long long)v;
            else if (!strcmp(key, "BSCALE") && num) a->bscale = v;
            else if (!strcmp(key, "BZERO") && num) a->bzero = v;
            else if (!strcmp(key, "BLANK") && num) a->has_blank = 1, a->blank = (int64_t)v;
        }
    }
    (void)simple;
    a->type = (ds_dtype)-1;
    for (int t = 0; t < NTYPES; t++)
        if (dtypes[t].bitpix && dtypes[t].bitpix == bitpix) a->type = (ds_dtype)t;
    if ((int)a->type < 0) return ds_fail("%s: FITS BITPIX = %d (expected 8, 16, 32, 64, -32 or -64)", path, bitpix);
    if (naxis < 2 || naxis > 4)
        return ds_fail("%s: FITS primary HDU has NAXIS = %d; a shard is a cube [N,H,W] (NAXIS3 = samples) or "
                       "[N,C,H,W]", path, naxis);
    a->ndim = naxis;
    for (int i = 0; i < naxis; i++) {
        if (ax[i] < 0 || ax[i] > INT_MAX) return ds_fail("%s: FITS NAXIS%d = %lld", path, i + 1, ax[i]);
        a->dims[naxis - 1 - i] = (int)ax[i]; /* NAXIS1 is the fastest */
    }
    if (naxis == 2) { /* one image: one sample */
        a->ndim = 3;
        memmove(a->dims + 1, a->dims, 2 * sizeof *a->dims);
        a->dims[0] = 1;
    }
    a->big = 1;
    a->esize = dtypes[a->type].size;
    a->fits = 1;
    a->data = off;
    return 0;
}

int ds_array_open(const char *path, ds_array_file *a)
{
    memset(a, 0, sizeof *a);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    int rc = ds_is_fits_name(path) ? fits_header(fd, path, a) : npy_header(fd, path, a);
    struct stat st;
    if (!rc && fstat(fd, &st) != 0) rc = ds_fail("%s: cannot stat: %s", path, strerror(errno));
    if (!rc && a->ndim < 1) rc = ds_fail("%s: a 0-D array; a shard needs rows", path);
    if (!rc) {
        a->n = a->dims[0];
        a->row = 1;
        for (int i = 1; i < a->ndim; i++) a->row *= (size_t)a->dims[i];
        uint64_t need = (uint64_t)a->n * a->row * a->esize;
        if ((uint64_t)a->data + need > (uint64_t)st.st_size)
            rc = ds_fail("%s: truncated: %d rows of %zu %s elements need %llu bytes after the header, the file has "
                         "%lld", path, (int)a->n, a->row, ds_dtype_name(a->type), (unsigned long long)need,
                         (long long)(st.st_size - a->data));
    }
    close(fd);
    if (!rc && !(a->path = strdup(path))) rc = ds_fail("%s: out of memory", path);
    if (rc) memset(a, 0, sizeof *a);
    return rc;
}

void ds_array_close(ds_array_file *a)
{
    free(a->path);
    memset(a, 0, sizeof *a);
}

static uint64_t load_uint(const unsigned char *p, size_t n, int big)
{
    uint64_t v = 0;
    if (big)
        for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
    else
        for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

int ds_array_read(const ds_array_file *a, int fd, int64_t first, int count, float *out, void *scratch)
{
    size_t m = (size_t)count * a->row, bytes = m * a->esize;
    if (first < 0 || first + count > a->n) return ds_fail("%s: rows %lld..%lld outside 0..%lld", a->path,
                                                          (long long)first, (long long)(first + count - 1),
                                                          (long long)a->n - 1);
    if (pread_all(fd, scratch, bytes, a->data + (off_t)((uint64_t)first * a->row * a->esize), a->path)) return -1;
    const unsigned char *p = scratch;
    int scaled = a->fits && (a->bscale != 1 || a->bzero != 0);
    /* the common case, little-endian float32 on a little-endian machine, is a copy */
    const uint16_t probe = 1;
    if (a->type == DT_F4 && !a->big && *(const unsigned char *)&probe) memcpy(out, p, bytes);
    else
        for (size_t i = 0; i < m; i++) {
            const unsigned char *e = p + i * a->esize;
            uint64_t u = load_uint(e, a->esize, a->big);
            double v;
            int blank = 0;
            switch (a->type) {
            case DT_F4: {
                uint32_t w = (uint32_t)u;
                float f;
                memcpy(&f, &w, 4);
                v = f;
                break;
            }
            case DT_F8: memcpy(&v, &u, 8); break;
            case DT_U1: v = (double)u, blank = a->has_blank && (int64_t)u == a->blank; break;
            case DT_I1: v = (int8_t)u; break;
            case DT_I2: v = (int16_t)u, blank = a->has_blank && (int16_t)u == a->blank; break;
            case DT_U2: v = (double)u; break;
            case DT_I4: v = (int32_t)u, blank = a->has_blank && (int32_t)u == a->blank; break;
            default: v = (double)(int64_t)u, blank = a->has_blank && (int64_t)u == a->blank; break;
            }
            if (scaled) v = a->bzero + a->bscale * v;
            out[i] = blank ? 0.0f : (float)v;
        }
    for (size_t i = 0; i < m; i++)
        if (!isfinite(out[i])) {
            if (a->fits && isnan(out[i])) { /* as fits.c: a masked pixel is the background */
                out[i] = 0;
                continue;
            }
            return ds_fail("%s: row %lld, element %zu is %g; shard values must be finite%s", a->path,
                           (long long)(first + (int64_t)(i / a->row)), i % a->row, (double)out[i],
                           a->fits ? " (NaN is read as 0)" : "");
        }
    return 0;
}
