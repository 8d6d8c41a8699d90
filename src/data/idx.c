/* idx.c — IDX files (the MNIST format), plain or gzip, into a ds_dataset.
 *
 * Layout: magic 00 00 <type> <ndim>, ndim big-endian uint32 sizes, then
 * Π sizes elements. Only type 0x08 (unsigned byte) is read. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES ((uint64_t)1 << 31)
/* gzread reports nothing for a call that ends in an error, so small chunks
 * keep the "got M bytes" of a truncated gzip file close to the truth. */
#define READ_CHUNK (1u << 16)

/* zlib's error text without the "path: " it puts in front. */
static const char *gz_msg(gzFile f, const char *path, int *zerr)
{
    const char *msg = gzerror(f, zerr);
    size_t k = strlen(path);
    return strncmp(msg, path, k) == 0 && msg[k] == ':' && msg[k + 1] == ' ' ? msg + k + 2 : msg;
}

/* Reads exactly n bytes of `what` ("header", "data"). */
static int read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what)
{
    size_t got = 0;
    while (got < n) {
        unsigned want = n - got > READ_CHUNK ? READ_CHUNK : (unsigned)(n - got);
        int r = gzread(f, (char *)buf + got, want);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got == n) return 0;
    int zerr;
    const char *msg = gz_msg(f, path, &zerr);
    if (zerr == Z_DATA_ERROR) return ds_fail("%s: corrupt gzip stream (%s)", path, msg);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) return ds_fail("%s: read error: %s", path, msg);
    return ds_fail("%s: truncated: expected %zu bytes of %s, got %zu", path, n, what, got);
}

/* The gzip trailer (CRC, length) is only checked once inflate passes the
 * end of the stream, so read one byte past the data to reach it. Trailing
 * bytes of a plain file, or garbage after the gzip stream, are ignored. */
static int check_stream_end(gzFile f, const char *path)
{
    unsigned char extra;
    int zerr;
    if (gzread(f, &extra, 1) >= 0) return 0;
    const char *msg = gz_msg(f, path, &zerr);
    if (zerr == Z_DATA_ERROR) return ds_fail("%s: corrupt gzip stream (%s)", path, msg);
    return ds_fail("%s: read error: %s", path, msg);
}

/* Header → ndim and dims; returns the data size in bytes via *bytes. */
static int read_header(gzFile f, const char *path, int *ndim, int dims[DS_MAX_DIMS],
                       size_t *bytes)
{
    unsigned char m[4], raw[4 * DS_MAX_DIMS];
    if (read_exact(f, path, m, sizeof m, "header")) return -1;
    if (m[0] != 0 || m[1] != 0)
        return ds_fail("%s: not an IDX file: magic %02x %02x %02x %02x, expected 00 00 08 <ndim>",
                       path, m[0], m[1], m[2], m[3]);
    if (m[2] != IDX_UBYTE)
        return ds_fail("%s: unsupported IDX type 0x%02x (only 0x08, unsigned byte, is read)",
                       path, m[2]);
    if (m[3] == 0 || m[3] > DS_MAX_DIMS)
        return ds_fail("%s: bad number of dimensions %d (1..%d supported)", path, m[3],
                       DS_MAX_DIMS);
    int nd = m[3];
    if (read_exact(f, path, raw, 4 * (size_t)nd, "header")) return -1;
    /* Each size < 2^32 and the running product ≤ 2^31, so no overflow in 64 bits. */
    uint64_t total = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned char *p = raw + 4 * i;
        uint64_t d = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        total *= d;
        if (d > INT_MAX || total > IDX_MAX_BYTES)
            return ds_fail("%s: sizes too large (dimension %d is %llu; limit 2^31 bytes in all)",
                           path, i, (unsigned long long)d);
        dims[i] = (int)d;
    }
    *ndim = nd;
    *bytes = (size_t)total;
    return 0;
}

int ds_idx_read(const char *path, uint8_t **data, int *ndim, int dims[DS_MAX_DIMS])
{
    *data = NULL;
    *ndim = 0;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return ds_fail("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    int nd = 0, d[DS_MAX_DIMS] = {0};
    size_t bytes = 0;
    uint8_t *buf = NULL;
    if (read_header(f, path, &nd, d, &bytes)) goto fail;
    buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        ds_fail("%s: out of memory for %zu bytes", path, bytes);
        goto fail;
    }
    if (read_exact(f, path, buf, bytes, "data") || check_stream_end(f, path)) goto fail;
    gzclose(f);
    *data = buf;
    *ndim = nd;
    memcpy(dims, d, sizeof d);
    return 0;
fail:
    free(buf);
    gzclose(f);
    return -1;
}

/* Fills out from images [n,H,W] or [n,C,H,W] and labels [n]. */
static int build_dataset(const char *images, const char *labels, const uint8_t *img, int ni,
                         const int *di, const uint8_t *lab, int nl, const int *dl,
                         ds_dataset *out)
{
    if (ni != 3 && ni != 4)
        return ds_fail("%s: images must be 3-D [n,H,W] or 4-D [n,C,H,W], got %d-D", images, ni);
    if (nl != 1) return ds_fail("%s: labels must be 1-D [n], got %d-D", labels, nl);
    if (di[0] != dl[0])
        return ds_fail("count mismatch: %s has %d images but %s has %d labels", images, di[0],
                       labels, dl[0]);
    ds_shape s = ni == 3 ? ds_shape_of(3, 1, di[1], di[2]) : ds_shape_of(3, di[1], di[2], di[3]);
    size_t n = (size_t)di[0], per = ds_shape_numel(s);
    if (n == 0 || per == 0) return ds_fail("%s: empty (%zu samples of %zu bytes)", images, n, per);
    float *x = malloc(n * per * sizeof *x), *y = malloc(n * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return ds_fail("%s: out of memory for %zu samples", images, n);
    }
    for (size_t i = 0; i < n * per; i++) x[i] = img[i] / 255.0f;
    int max_label = 0;
    for (size_t i = 0; i < n; i++) {
        y[i] = lab[i];
        if (lab[i] > max_label) max_label = lab[i];
    }
    *out = (ds_dataset){.n = (int)n, .sample = s, .classes = max_label + 1, .x = x, .y = y};
    return 0;
}

int ds_idx_load(const char *images, const char *labels, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *img = NULL, *lab = NULL;
    int ni, nl, di[DS_MAX_DIMS], dl[DS_MAX_DIMS];
    if (ds_idx_read(images, &img, &ni, di)) return -1;
    if (ds_idx_read(labels, &lab, &nl, dl)) {
        free(img);
        return -1;
    }
    int rc = build_dataset(images, labels, img, ni, di, lab, nl, dl, out);
    free(img);
    free(lab);
    return rc;
}

/* path ← dir/name.gz if present, else dir/name if present. */
static int find_file(char *path, size_t size, const char *dir, const char *name)
{
    static const char *const ext[] = {".gz", ""};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(path, size, "%s/%s%s", dir, name, ext[i]) >= size)
            return ds_fail("%s: path too long", dir);
        if (stat(path, &st) == 0) return 0;
    }
    return ds_fail("%s: neither %s.gz nor %s found", dir, name, name);
}

#define FASHION_HINT \
    "install it with `apt-get install dataset-fashion-mnist` or set DS_FASHION_MNIST"

int ds_fashion_mnist_load(const char *dir, int train, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!dir) dir = getenv("DS_FASHION_MNIST");
    if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(dir, &st) != 0)
        return ds_fail("Fashion-MNIST directory %s not found (%s); " FASHION_HINT, dir,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ds_fail("Fashion-MNIST path %s is not a directory; " FASHION_HINT, dir);
    const char *set = train ? "train" : "t10k";
    char name[64], images[4096], labels[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", set);
    if (find_file(images, sizeof images, dir, name)) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", set);
    if (find_file(labels, sizeof labels, dir, name)) return -1;
    if (ds_idx_load(images, labels, out)) return -1;
    int max_label = out->classes - 1;
    if (max_label > 9) {
        ds_dataset_free(out);
        return ds_fail("%s: label %d out of range for Fashion-MNIST's 10 classes", labels,
                       max_label);
    }
    out->classes = 10;
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    if (!(out->class_names = calloc(10, sizeof *out->class_names))) {
        ds_dataset_free(out);
        return ds_fail("out of memory");
    }
    for (int c = 0; c < 10; c++)
        if (!(out->class_names[c] = strdup(names[c]))) {
            ds_dataset_free(out);
            return ds_fail("out of memory");
        }
    return 0;
}

void ds_dataset_free(ds_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    if (d->class_names)
        for (int c = 0; c < d->classes; c++) free(d->class_names[c]);
    free(d->class_names);
    memset(d, 0, sizeof *d);
}
