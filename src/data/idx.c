/* idx.c — IDX files (the MNIST format), plain or gzip, into a ds_dataset.
 *
 * Layout: magic 00 00 <type> <ndim>, ndim big-endian uint32 sizes, then
 * Π sizes elements. Only type 0x08 (unsigned byte) is read. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES ((uint64_t)1 << 31)
#define CHUNK (1u << 16)

/* A plain or gzip file read through inflate directly (not gzread, which
 * ignores bytes after the gzip stream and reports the CRC only if a read
 * happens to reach the trailer): every member's CRC and length are checked
 * (inflate returns Z_STREAM_END only after both), concatenated members are
 * read as one stream (RFC 1952), and anything after the last member other
 * than zero padding (which Python's gzip also skips) is an error. */
typedef struct {
    FILE *f;
    const char *path;
    uint64_t size;   /* of the file */
    int gz, zinit;   /* gzip magic seen; inflateInit2 done */
    int at_end;      /* gzip: the last member ended, nothing but padding after it */
    int cut;         /* gzip: the file ended inside a member */
    z_stream z;
    unsigned char in[CHUNK], out[CHUNK];
    size_t out_pos, out_len;
} idx_src;

static int src_open(idx_src *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    errno = 0;
    if (!(s->f = fopen(path, "rb"))) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode)) s->size = (uint64_t)st.st_size;
    size_t got = fread(s->in, 1, CHUNK, s->f);
    if (ferror(s->f)) return ds_fail("%s: read error: %s", path, strerror(errno));
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)got;
    s->gz = got >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (s->gz) {
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) return ds_fail("%s: out of memory for zlib", path);
        s->zinit = 1;
    }
    return 0;
}

static void src_close(idx_src *s)
{
    if (s->zinit) inflateEnd(&s->z);
    if (s->f) fclose(s->f);
}

/* Refills the input buffer when empty; returns the bytes available. */
static uInt refill(idx_src *s)
{
    if (s->z.avail_in == 0 && !feof(s->f) && !ferror(s->f)) {
        s->z.next_in = s->in;
        s->z.avail_in = (uInt)fread(s->in, 1, CHUNK, s->f);
    }
    return s->z.avail_in;
}

/* After a member's end: another member, zero padding to the end, or an error. */
static int next_member(idx_src *s)
{
    for (;;) {
        if (!refill(s)) {
            s->at_end = 1;
            return ferror(s->f) ? ds_fail("%s: read error: %s", s->path, strerror(errno)) : 0;
        }
        if (s->z.next_in[0] != 0) break;
        s->z.next_in++, s->z.avail_in--;
    }
    /* another member (its magic may straddle two chunks: inflate reads the rest) */
    if (s->z.next_in[0] == 0x1f && (s->z.avail_in < 2 || s->z.next_in[1] == 0x8b)) {
        if (inflateReset(&s->z) != Z_OK) return ds_fail("%s: zlib error", s->path);
        return 0;
    }
    return ds_fail("%s: bytes after the end of the gzip stream (not another gzip member)", s->path);
}

/* Inflates the next chunk into s->out (as gzread does, so a corrupt block
 * is reported before any of its bytes are used). */
static int inflate_chunk(idx_src *s)
{
    s->out_pos = s->out_len = 0;
    while (s->out_len < CHUNK && !s->at_end && !s->cut) {
        if (!refill(s)) {
            if (ferror(s->f)) return ds_fail("%s: read error: %s", s->path, strerror(errno));
            s->cut = 1; /* the file ends inside a member */
            break;
        }
        s->z.next_out = s->out + s->out_len;
        s->z.avail_out = (uInt)(CHUNK - s->out_len);
        int rc = inflate(&s->z, Z_NO_FLUSH);
        s->out_len = CHUNK - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            if (next_member(s) != 0) return -1;
        } else if (rc == Z_DATA_ERROR) {
            return ds_fail("%s: corrupt gzip stream (%s)", s->path, s->z.msg ? s->z.msg : "data error");
        } else if (rc == Z_MEM_ERROR) {
            return ds_fail("%s: out of memory in zlib", s->path);
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return ds_fail("%s: zlib error %d", s->path, rc);
        }
    }
    return 0;
}

/* Up to n bytes into buf; *got says how many (fewer only at the end). */
static int src_read(idx_src *s, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (!s->gz) {
        if (s->z.avail_in) { /* what src_open looked at first */
            size_t k = n < s->z.avail_in ? n : s->z.avail_in;
            memcpy(buf, s->z.next_in, k);
            s->z.next_in += k, s->z.avail_in -= (uInt)k, *got = k;
        }
        *got += fread((char *)buf + *got, 1, n - *got, s->f);
        return ferror(s->f) ? ds_fail("%s: read error: %s", s->path, strerror(errno)) : 0;
    }
    while (*got < n) {
        if (s->out_pos == s->out_len) {
            if (s->at_end || s->cut) break;
            if (inflate_chunk(s) != 0) return -1;
            continue;
        }
        size_t k = s->out_len - s->out_pos < n - *got ? s->out_len - s->out_pos : n - *got;
        memcpy((char *)buf + *got, s->out + s->out_pos, k);
        s->out_pos += k, *got += k;
    }
    return 0;
}

/* Reads exactly n bytes of `what` ("header", "data"). */
static int read_exact(idx_src *s, void *buf, size_t n, const char *what)
{
    size_t got;
    if (src_read(s, buf, n, &got) != 0) return -1;
    if (got == n) return 0;
    return ds_fail("%s: truncated: expected %zu bytes of %s, got %zu%s", s->path, n, what, got,
                   s->cut ? " (the gzip stream ends early)" : "");
}

/* The data must end the file (the gzip stream, checked to its last CRC). */
static int check_end(idx_src *s, size_t declared)
{
    unsigned char extra[256];
    size_t got, more = 0;
    do {
        if (src_read(s, extra, sizeof extra, &got) != 0) return -1;
        more += got;
    } while (got == sizeof extra && more < ((size_t)1 << 20));
    if (s->cut) return ds_fail("%s: truncated gzip stream (the file ends before the gzip trailer)", s->path);
    if (more)
        return ds_fail("%s: %s%zu bytes after the data (the header declares %zu bytes of data)", s->path,
                       more >= ((size_t)1 << 20) ? "over " : "", more, declared);
    return 0;
}

/* Header → ndim and dims; returns the data size in bytes via *bytes. Sizes
 * are checked against the file before anything is allocated: a plain file
 * must hold them, a gzip file can hold at most DS_MAX_EXPANSION times its
 * size. */
static int read_header(idx_src *s, int *ndim, int dims[DS_MAX_DIMS], size_t *bytes)
{
    const char *path = s->path;
    unsigned char m[4], raw[4 * DS_MAX_DIMS];
    if (read_exact(s, m, sizeof m, "header")) return -1;
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
    if (read_exact(s, raw, 4 * (size_t)nd, "header")) return -1;
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
    uint64_t head = 4 + 4 * (uint64_t)nd;
    if (s->size && !s->gz && total > s->size - head)
        return ds_fail("%s: truncated: expected %llu bytes of data, got %llu (the header's sizes, checked "
                       "against the file size before reading)", path, (unsigned long long)total,
                       (unsigned long long)(s->size - head));
    if (s->size && s->gz && total > s->size * DS_MAX_EXPANSION)
        return ds_fail("%s: the header declares %llu bytes of data, more than a %llu-byte gzip file can hold "
                       "(deflate expands at most %d:1)", path, (unsigned long long)total,
                       (unsigned long long)s->size, DS_MAX_EXPANSION);
    *ndim = nd;
    *bytes = (size_t)total;
    return 0;
}

int ds_idx_read(const char *path, uint8_t **data, int *ndim, int dims[DS_MAX_DIMS])
{
    *data = NULL;
    *ndim = 0;
    idx_src s;
    int nd = 0, d[DS_MAX_DIMS] = {0};
    size_t bytes = 0;
    uint8_t *buf = NULL;
    if (src_open(&s, path) || read_header(&s, &nd, d, &bytes)) goto fail;
    buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        ds_fail("%s: out of memory for %zu bytes", path, bytes);
        goto fail;
    }
    if (read_exact(&s, buf, bytes, "data") || check_end(&s, bytes)) goto fail;
    src_close(&s);
    *data = buf;
    *ndim = nd;
    memcpy(dims, d, sizeof d);
    return 0;
fail:
    free(buf);
    src_close(&s);
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

