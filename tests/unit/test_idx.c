/* test_idx.c — IDX reading (plain and gzip), its error messages, Fashion-MNIST
 * discovery and the mini-batch loader. Writes its own files to a temp dir. */
#include "harness.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define N 5
#define H 3
#define W 4
#define REAL_FM "/usr/share/datasets/fashion-mnist"

static const char *tmp; /* ds_test_tmpdir() */
static uint8_t img[N * H * W];
static const uint8_t lab[N] = {0, 3, 1, 2, 3};

static void tpath(char *buf, const char *name) { snprintf(buf, 256, "%s/%s", tmp, name); }

/* Writes len bytes to tmp/name (its path into path), gzip-compressed when gz
 * (zlib's "T" mode writes the bytes as they are). */
static void write_file(char *path, const char *name, int gz, const void *buf, size_t len)
{
    tpath(path, name);
    gzFile f = gzopen(path, gz ? "wb" : "wbT");
    gzwrite(f, buf, (unsigned)len);
    gzclose(f);
}

/* IDX bytes into buf: magic 00 00 type ndim, big-endian dims, then data
 * (header only when data is NULL). Returns the length. */
static size_t idx_encode(uint8_t *buf, int type, int ndim, const int *dims, const uint8_t *data)
{
    size_t len = 4, n = 1;
    buf[0] = buf[1] = 0;
    buf[2] = (uint8_t)type;
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++, len += 4) {
        uint32_t d = (uint32_t)dims[i];
        buf[len] = (uint8_t)(d >> 24), buf[len + 1] = (uint8_t)(d >> 16);
        buf[len + 2] = (uint8_t)(d >> 8), buf[len + 3] = (uint8_t)d;
        n *= d;
    }
    if (data) memcpy(buf + len, data, n), len += n;
    return len;
}

/* IDX file tmp/name of type/dims holding data, minus its last `cut` bytes. */
static void write_idx(char *path, const char *name, int gz, int type, int ndim, const int *dims,
                      const uint8_t *data, size_t cut)
{
    uint8_t buf[4 + 4 * 8 + N * H * W];
    write_file(path, name, gz, buf, idx_encode(buf, type, ndim, dims, data) - cut);
}

/* Inverts the byte `back` bytes before the end of the file. */
static void flip_byte(const char *path, long back)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, -back, SEEK_END);
    int c = fgetc(f);
    fseek(f, -back, SEEK_END);
    fputc(c ^ 0xff, f);
    fclose(f);
}

/* The last error names `path` and contains `word`. */
static int err_has(const char *path, const char *word)
{
    const char *e = ds_last_error();
    int ok = strstr(e, path) && strstr(e, word);
    if (!ok) fprintf(stderr, "  error \"%s\" lacks \"%s\" or \"%s\"\n", e, path, word);
    return ok;
}

/* ds_idx_load fails, leaves *out zeroed, and the message names `path` and `word`. */
static void check_load_fails(const char *images, const char *labels, const char *path,
                             const char *word)
{
    ds_dataset d;
    memset(&d, 0xff, sizeof d);
    CHECK(ds_idx_load(images, labels, &d) == -1);
    CHECK(d.n == 0 && d.x == NULL && d.y == NULL && d.classes == 0);
    CHECK(err_has(path, word));
}

static void test_round_trip(void)
{
    char im[256], lb[256], imz[256], lbz[256];
    int di[3] = {N, H, W}, dl[1] = {N};
    write_idx(im, "img", 0, 0x08, 3, di, img, 0);
    write_idx(lb, "lab", 0, 0x08, 1, dl, lab, 0);
    write_idx(imz, "img.gz", 1, 0x08, 3, di, img, 0);
    write_idx(lbz, "lab.gz", 1, 0x08, 1, dl, lab, 0);

    uint8_t *raw;
    int nd, dims[DS_MAX_DIMS];
    CHECK(ds_idx_read(imz, &raw, &nd, dims) == 0);
    CHECK(nd == 3 && dims[0] == N && dims[1] == H && dims[2] == W);
    CHECK(raw && memcmp(raw, img, sizeof img) == 0);
    free(raw);

    ds_dataset a, b;
    CHECK(ds_idx_load(im, lb, &a) == 0);
    CHECK(a.n == N && a.classes == 4);
    CHECK(a.sample.ndim == 3 && a.sample.d[0] == 1 && a.sample.d[1] == H && a.sample.d[2] == W);
    int same = 1;
    for (int i = 0; i < N * H * W; i++) same &= a.x[i] == img[i] / 255.0f;
    CHECK(same);
    CHECK(a.x[0] == 0.0f && a.x[1] == 1.0f);
    for (int i = 0; i < N; i++) CHECK(a.y[i] == lab[i]);

    CHECK(ds_idx_load(imz, lbz, &b) == 0);
    CHECK(b.n == a.n && b.classes == a.classes);
    CHECK(memcmp(a.x, b.x, sizeof img * sizeof(float)) == 0);
    CHECK(memcmp(a.y, b.y, N * sizeof(float)) == 0);
    ds_dataset_free(&a);
    ds_dataset_free(&b);
    CHECK(b.x == NULL && b.n == 0);

    /* 4-D images [n,C,H,W] keep their channels: sample [C,H,W]. */
    int d4[4] = {N, 2, 2, 3};
    write_idx(im, "img4", 0, 0x08, 4, d4, img, 0);
    CHECK(ds_idx_load(im, lb, &a) == 0);
    CHECK(a.sample.ndim == 3 && a.sample.d[0] == 2 && a.sample.d[1] == 2 && a.sample.d[2] == 3);
    ds_dataset_free(&a);
}

/* issue 12: bytes after the data (plain, inside the gzip payload, or after
 * the gzip stream) are refused as other readers refuse them; zero padding
 * after the stream and concatenated members (RFC 1952) are read; the CRC of
 * a stream with extra payload is checked too (it once went unread, so a
 * flipped pixel passed). */
static void test_trailing_bytes(void)
{
    char im[256], lb[256], p[256];
    int dl[1] = {N};
    uint8_t buf[64];
    size_t n = idx_encode(buf, 0x08, 1, dl, lab);
    tpath(im, "img");
    for (int gz = 0; gz < 2; gz++) {
        write_idx(lb, gz ? "trail.gz" : "trail", gz, 0x08, 1, dl, lab, 0);
        FILE *f = fopen(lb, "ab");
        fputs("garbage", f);
        fclose(f);
        check_load_fails(im, lb, lb, gz ? "bytes after the end of the gzip stream" : "7 bytes after the data");
    }
    memcpy(buf + n, "xyz", 3);
    write_file(lb, "payload.gz", 1, buf, n + 3);
    check_load_fails(im, lb, lb, "3 bytes after the data (the header declares 5 bytes");
    /* stored (uncompressed) deflate, 40000 bytes of 0x07 and as many extra (more than zlib's
     * 16 KiB buffer, so one gzread byte past the data never reached the trailer): one byte
     * flipped far from the end, which only the CRC can tell */
    {
        enum { M = 40000 };
        static uint8_t big[8 + 2 * M], file[2 * M + 1024];
        int dm[1] = {M};
        memset(big + 8, 7, 2 * M);
        idx_encode(big, 0x08, 1, dm, NULL);
        tpath(p, "crc_trail.gz");
        gzFile g = gzopen(p, "wb0");
        gzwrite(g, big, (unsigned)sizeof big);
        gzclose(g);
        FILE *f = fopen(p, "r+b");
        size_t len = fread(file, 1, sizeof file, f);
        size_t at = len - 8 - M - 1000;
        while (file[at] != 7) at--; /* a data byte, not a stored block's header */
        fseek(f, (long)at, SEEK_SET);
        fputc(7 ^ 0xff, f);
        fclose(f);
        uint8_t *raw = NULL;
        int nd, dims[DS_MAX_DIMS];
        CHECK(ds_idx_read(p, &raw, &nd, dims) == -1 && raw == NULL);
        CHECK(err_has(p, "corrupt gzip stream (incorrect data check)"));
        free(raw);
    }

    /* zero padding after the stream, and two members, read cleanly */
    write_file(lb, "padded.gz", 1, buf, n);
    FILE *f = fopen(lb, "ab");
    for (int i = 0; i < 100; i++) fputc(0, f);
    fclose(f);
    ds_dataset d;
    CHECK(ds_idx_load(im, lb, &d) == 0 && d.n == N && d.y[N - 1] == lab[N - 1]);
    ds_dataset_free(&d);
    tpath(p, "members.gz");
    gzFile g = gzopen(p, "wb");
    gzwrite(g, buf, 8);
    gzclose(g);
    g = gzopen(p, "ab");
    gzwrite(g, buf + 8, (unsigned)n - 8);
    gzclose(g);
    CHECK(ds_idx_load(im, p, &d) == 0 && d.n == N && d.y[N - 1] == lab[N - 1]);
    ds_dataset_free(&d);
}

/* issue 12: sizes in the header are checked against the file before the
 * buffer is allocated: a plain file must hold them; a gzip file of S bytes
 * can hold at most 1032·S. */
static void test_declared_size(void)
{
    char lb[256], im[256];
    uint8_t buf[64];
    int big[1] = {1 << 30};
    tpath(im, "img");
    size_t n = idx_encode(buf, 0x08, 1, big, NULL);
    write_file(lb, "claim", 0, buf, n);
    check_load_fails(im, lb, lb, "truncated: expected 1073741824 bytes of data, got 0 (the header's sizes");
    write_file(lb, "claim.gz", 1, buf, n);
    check_load_fails(im, lb, lb, "more than a");
}

static void test_errors(void)
{
    char im[256], lb[256], bad[256];
    int di[3] = {N, H, W}, d4[1] = {N - 1};
    tpath(im, "img"), tpath(lb, "lab");

    tpath(bad, "no_such_file");
    check_load_fails(bad, lb, bad, "No such file");
    check_load_fails(im, bad, bad, "No such file");

    write_file(bad, "magic", 0, "hello world, not idx", 20);
    check_load_fails(bad, lb, bad, "magic");

    write_idx(bad, "short_data", 0, 0x08, 3, di, img, 30);
    check_load_fails(bad, lb, bad, "truncated: expected 60 bytes of data, got 30");
    write_idx(bad, "short_data.gz", 1, 0x08, 3, di, img, 30);
    check_load_fails(bad, lb, bad, "truncated: expected 60 bytes of data, got 30");

    write_idx(bad, "short_header", 0, 0x08, 3, di, NULL, 3);
    check_load_fails(bad, lb, bad, "truncated");
    CHECK(err_has(bad, "header"));
    write_file(bad, "two_bytes", 0, "\0\0", 2);
    check_load_fails(bad, lb, bad, "header");

    write_idx(bad, "lab4", 0, 0x08, 1, d4, lab, 0);
    check_load_fails(im, bad, bad, "mismatch");
    CHECK(err_has(im, "5 images") && err_has(bad, "4 labels"));

    write_idx(bad, "float_type", 0, 0x0d, 3, di, img, 0);
    check_load_fails(bad, lb, bad, "unsupported IDX type 0x0d");

    write_idx(bad, "ndim0", 0, 0x08, 0, di, NULL, 0);
    check_load_fails(bad, lb, bad, "dimensions");
    write_file(bad, "ndim7", 0, "\0\0\x08\x07", 4);
    check_load_fails(bad, lb, bad, "dimensions");

    int huge[3] = {65536, 65536, 65536};
    write_idx(bad, "huge", 0, 0x08, 3, huge, NULL, 0);
    check_load_fails(bad, lb, bad, "too large");
    int over[1] = {-1}; /* 0xffffffff */
    write_idx(bad, "over", 0, 0x08, 1, over, NULL, 0);
    check_load_fails(im, bad, bad, "too large");

    /* images as labels and labels as images: wrong rank */
    check_load_fails(lb, lb, lb, "3-D");
    check_load_fails(im, im, im, "1-D");

    check_load_fails(tmp, lb, tmp, "read error"); /* a directory */

    /* Corrupt gzip: a wrong CRC, a cut stream, mangled deflate blocks. */
    write_idx(bad, "crc.gz", 1, 0x08, 3, di, img, 0);
    uint8_t gz[512];
    FILE *f = fopen(bad, "rb");
    size_t len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    flip_byte(bad, 8);
    check_load_fails(bad, lb, bad, "corrupt gzip stream");
    write_file(bad, "cut.gz", 0, gz, len - 20);
    check_load_fails(bad, lb, bad, "truncated: expected 60 bytes of data");
    memset(gz + 20, 0xff, 12); /* inside the deflate blocks */
    write_file(bad, "mangled.gz", 0, gz, len);
    check_load_fails(bad, lb, bad, "corrupt gzip stream");

    int z3[3] = {0, H, W}, z1[1] = {0};
    write_idx(im, "img0", 0, 0x08, 3, z3, NULL, 0);
    write_idx(lb, "lab0", 0, 0x08, 1, z1, NULL, 0);
    check_load_fails(im, lb, im, "empty");
}

/* zlib checks the gzip CRC only when inflate reaches the trailer. Past its
 * first 16 KiB zlib inflates straight into the caller's buffer and stops when
 * that is full; with the trailer at the start of a fresh 8 KiB input buffer
 * the data then reads cleanly, and only the read past the data sees the CRC. */
static void test_crc_after_buffer_boundary(void)
{
    enum { MAX = 50000 };
    static uint8_t data[MAX], buf[8 + MAX];
    char bad[256];
    struct stat st;
    tpath(bad, "crc_late.gz");
    for (int i = 0; i < MAX; i++) data[i] = (uint8_t)(i * 7 + i / 256);
    /* Stored blocks add ~1 byte of file per byte of data: step to the boundary. */
    for (int n = 33000, tries = 0; tries < 20 && n < MAX; tries++) {
        gzFile f = gzopen(bad, "wb0");
        gzwrite(f, buf, (unsigned)idx_encode(buf, 0x08, 1, &n, data));
        gzclose(f);
        if (stat(bad, &st) != 0) break;
        int off = (int)((st.st_size - 8) % 8192);
        if (off) {
            n += 8192 - off;
            continue;
        }
        flip_byte(bad, 8);
        uint8_t *raw = NULL;
        int nd, dims[DS_MAX_DIMS];
        CHECK(ds_idx_read(bad, &raw, &nd, dims) == -1 && raw == NULL);
        CHECK(err_has(bad, "corrupt gzip stream"));
        return;
    }
    printf("note: no size put the gzip trailer on an 8 KiB boundary; late-CRC check skipped\n");
}

static void test_fashion_dir(void)
{
    char dir[256], p[256], gone[256];
    int di[3] = {N, H, W}, dl[1] = {N};
    tpath(dir, "fm");
    mkdir(dir, 0700);
    uint8_t other[N * H * W] = {7};
    /* .gz is preferred over the plain file; plain is found without .gz */
    write_idx(p, "fm/train-images-idx3-ubyte.gz", 1, 0x08, 3, di, img, 0);
    write_idx(p, "fm/train-images-idx3-ubyte", 0, 0x08, 3, di, other, 0);
    write_idx(p, "fm/train-labels-idx1-ubyte", 0, 0x08, 1, dl, lab, 0);
    ds_dataset d;
    CHECK(ds_fashion_mnist_load(dir, 1, &d) == 0);
    CHECK(d.n == N && d.classes == 10 && d.x[1] == 1.0f);
    ds_dataset_free(&d);

    setenv("DS_FASHION_MNIST", dir, 1);
    CHECK(ds_fashion_mnist_load(NULL, 1, &d) == 0 && d.n == N);
    ds_dataset_free(&d);
    unsetenv("DS_FASHION_MNIST");

    CHECK(ds_fashion_mnist_load(dir, 0, &d) == -1 && d.x == NULL);
    CHECK(err_has(dir, "t10k-images-idx3-ubyte"));

    uint8_t bad_lab[N] = {0, 1, 12, 2, 3};
    write_idx(p, "fm/train-labels-idx1-ubyte", 0, 0x08, 1, dl, bad_lab, 0);
    CHECK(ds_fashion_mnist_load(dir, 1, &d) == -1 && d.x == NULL && d.n == 0);
    CHECK(err_has(p, "out of range"));

    tpath(gone, "no_such_dir");
    CHECK(ds_fashion_mnist_load(gone, 1, &d) == -1);
    CHECK(err_has(gone, "apt-get install dataset-fashion-mnist"));
}

/* Real data: balanced classes, 28×28 pixels in [0,1]. */
static void check_real(const ds_dataset *d, int n)
{
    int count[10] = {0}, in_range = 1;
    float hi = 0;
    CHECK(d->n == n && d->classes == 10);
    CHECK(d->class_names && !strcmp(d->class_names[0], "T-shirt/top") && !strcmp(d->class_names[9], "Ankle boot"));
    CHECK(d->sample.ndim == 3 && d->sample.d[0] == 1 && d->sample.d[1] == 28 &&
          d->sample.d[2] == 28);
    for (int i = 0; i < d->n; i++) count[(int)d->y[i] % 10]++;
    for (int c = 0; c < 10; c++) CHECK(count[c] == n / 10);
    for (size_t i = 0; i < (size_t)d->n * 784; i++) {
        in_range &= d->x[i] >= 0 && d->x[i] <= 1;
        hi = d->x[i] > hi ? d->x[i] : hi;
    }
    CHECK(in_range && hi == 1.0f);
}

static void test_real_fashion_mnist(void)
{
    struct stat st;
    if (stat(REAL_FM, &st) != 0) {
        printf("note: %s missing, real Fashion-MNIST checks skipped\n", REAL_FM);
        return;
    }
    ds_dataset d;
    CHECK(ds_fashion_mnist_load(REAL_FM, 1, &d) == 0);
    check_real(&d, 60000);
    ds_dataset_free(&d);
    unsetenv("DS_FASHION_MNIST"); /* NULL falls back to REAL_FM */
    CHECK(ds_fashion_mnist_load(NULL, 0, &d) == 0);
    check_real(&d, 10000);
    ds_dataset_free(&d);
}

/* One epoch: batch sizes, every sample once with its own x row; order → ord. */
static void epoch(ds_loader *l, int n, int *ord)
{
    float x[4 * 2], y[4];
    int b, k = 0, seen[16] = {0}, rows_ok = 1, sizes_ok = 1;
    while ((b = ds_loader_next(l, x, y)) > 0) {
        sizes_ok &= b == (n - k < 4 ? n - k : 4);
        for (int i = 0; i < b; i++, k++) {
            ord[k] = (int)y[i];
            seen[ord[k]]++;
            rows_ok &= x[2 * i] == y[i] && x[2 * i + 1] == -y[i];
        }
    }
    CHECK(k == n && sizes_ok && rows_ok);
    for (int i = 0; i < n; i++) CHECK(seen[i] == 1);
    CHECK(ds_loader_next(l, x, y) == 0); /* stays at the end */
}

static void test_loader(void)
{
    enum { n = 10 };
    float xs[n * 2], ys[n];
    for (int i = 0; i < n; i++) xs[2 * i] = (float)i, xs[2 * i + 1] = (float)-i, ys[i] = (float)i;
    ds_dataset d = {.n = n, .sample = ds_shape_of(3, 1, 1, 2), .classes = n, .x = xs, .y = ys};
    int o1[n], o2[n], o3[n], p1[n], p2[n];

    ds_loader *l = ds_loader_new(&d, 4, 0, 1);
    CHECK(l && ds_loader_batches(l) == 3);
    epoch(l, n, o1);
    for (int i = 0; i < n; i++) CHECK(o1[i] == i); /* unshuffled */
    ds_loader_free(l);

    ds_loader *a = ds_loader_new(&d, 4, 1, 42), *b = ds_loader_new(&d, 4, 1, 42);
    ds_loader *c = ds_loader_new(&d, 4, 1, 43);
    epoch(a, n, o1), ds_loader_reset(a), epoch(a, n, o2);
    epoch(b, n, p1), ds_loader_reset(b), epoch(b, n, p2);
    epoch(c, n, o3);
    CHECK(memcmp(o1, o2, sizeof o1) != 0); /* reshuffled between epochs */
    CHECK(memcmp(o1, p1, sizeof o1) == 0 && memcmp(o2, p2, sizeof o2) == 0); /* same seed */
    CHECK(memcmp(o1, o3, sizeof o1) != 0);

    float x[8];
    ds_loader_reset(a);
    ds_loader_next(a, x, NULL);
    ds_loader_reset(a); /* mid-epoch reset starts a full epoch */
    epoch(a, n, o3);
    ds_loader_free(a), ds_loader_free(b), ds_loader_free(c);

    CHECK(ds_loader_new(&d, 0, 1, 1) == NULL && strstr(ds_last_error(), "batch"));
    d.n = 0;
    CHECK(ds_loader_new(&d, 4, 1, 1) == NULL && strstr(ds_last_error(), "empty"));
}

int main(void)
{
    if (!(tmp = ds_test_tmpdir())) return 1;
    for (int i = 0; i < N * H * W; i++) img[i] = (uint8_t)(i * 37);
    img[1] = 255;
    test_round_trip();
    test_trailing_bytes();
    test_declared_size();
    test_errors();
    test_crc_after_buffer_boundary();
    test_fashion_dir();
    test_real_fashion_mnist();
    test_loader();
    return ds_test_summary("idx");
}
