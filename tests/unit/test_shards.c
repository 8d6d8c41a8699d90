/* test_shards.c — sharded data sets: the writer's files read back (open,
 * describe, statistics, whole load), the streaming loader (every sample
 * once per epoch with its own label, the order a function of seed and
 * epoch, ranks' shares partitioning the global batches, resume through the
 * generator, normalisation and augmentation on the loader threads), FITS
 * cube shards, and the errors a bad set gives (index keys, missing or
 * truncated files, mismatched shapes and counts). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { N = 50, H = 4, ROW = H * H, CLASSES = 3, SHARD = 7, MAXB = 16 };

static float value(int i, int j) { return (float)(i * 100 + j) + 0.25f * (float)(j % 3); }
static float label(int i) { return (float)(i * 7 % CLASSES); }

/* The set: sample i is value(i, j), labelled label(i); shards of 7. */
static const char *write_set(const char *name)
{
    const char *dir = ds_test_path(name);
    static char keep[4][512];
    static int k;
    char *d = keep[k++ % 4];
    snprintf(d, 512, "%s", dir);
    const char *names[CLASSES] = {"a", "b", "c"};
    ds_shard_writer *w = ds_shard_writer_open(d, ds_shape_of(3, 1, H, H), CLASSES, names, SHARD);
    CHECK(w);
    float x[ROW], y;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < ROW; j++) x[j] = value(i, j);
        y = label(i);
        CHECK(ds_shard_writer_add(w, x, &y, 1) == 0);
    }
    CHECK(ds_shard_writer_close(w) == 0);
    return d;
}

/* Sample id of a row (its first element is 100 i, whatever the flip). */
static int id_of(const float *x)
{
    float lo = x[0];
    for (int j = 1; j < ROW; j++)
        if (x[j] < lo) lo = x[j];
    return (int)(lo / 100);
}

/* One epoch: the ids in order (and checks every row's values and label). */
static int epoch(ds_loader *l, int *ids, int aug)
{
    float x[MAXB * ROW], y[MAXB];
    int k = 0, ok = 1;
    while (ds_loader_more(l)) {
        int b = ds_loader_next(l, x, y);
        if (b < 0) return -1;
        for (int i = 0; i < b && k < N; i++, k++) {
            int id = ids[k] = id_of(x + i * ROW);
            ok &= y[i] == label(id);
            float sum = 0, want = 0; /* the same values, perhaps moved */
            for (int j = 0; j < ROW; j++) sum += x[i * ROW + j], want += value(id, j);
            ok &= sum == want;
            if (!aug)
                for (int j = 0; j < ROW; j++) ok &= x[i * ROW + j] == value(id, j);
        }
    }
    CHECK(ok);
    return k;
}

static void test_roundtrip(void)
{
    const char *dir = write_set("set");
    ds_shards *s = ds_shards_open(dir);
    CHECK(s && ds_shards_samples(s) == N && ds_shards_is(dir));
    if (!s) return;
    ds_dataset meta;
    CHECK(ds_shards_describe(s, &meta) == 0 && meta.n == N && meta.classes == CLASSES && meta.sample.d[1] == H &&
          meta.class_names && !strcmp(meta.class_names[2], "c") && !meta.x);
    ds_dataset_free(&meta);
    int64_t count[CLASSES];
    CHECK(ds_shards_class_counts(s, count) == 0);
    int64_t want[CLASSES] = {0};
    for (int i = 0; i < N; i++) want[(int)label(i)]++;
    for (int c = 0; c < CLASSES; c++) CHECK(count[c] == want[c]);

    /* whole load, by scheme and by folder: the samples in order */
    ds_dataset d, d2;
    char spec[600];
    snprintf(spec, sizeof spec, "shards:%s", dir);
    ds_shards *s2 = ds_shards_open(spec); /* the spec's scheme is understood too */
    CHECK(ds_shards_is(spec) && s2 && ds_shards_samples(s2) == N && !ds_shards_is("shards:/nonexistent"));
    ds_shards_close(s2);
    CHECK(ds_data_load(spec, &d) == 0 && d.n == N && d.classes == CLASSES && d.class_names);
    CHECK(ds_data_load(dir, &d2) == 0 && d2.n == N);
    int same = 1;
    for (int i = 0; i < N && d.n == N && d2.n == N; i++) {
        same &= d.y[i] == label(i) && d2.y[i] == label(i);
        for (int j = 0; j < ROW; j++) same &= d.x[i * ROW + j] == value(i, j) && d2.x[i * ROW + j] == value(i, j);
    }
    CHECK(same);
    /* the writer's statistics (streaming, double) against the two-pass ones */
    ds_norm a, b;
    CHECK(ds_norm_compute(&d, &a) == 0 && ds_shards_norm(s, &b) == 0 && b.channels == 1);
    CHECK_NEAR(b.mean[0], a.mean[0], 1e-6 * fabs(a.mean[0]));
    CHECK_NEAR(b.std[0], a.std[0], 1e-6 * a.std[0]);

    /* the stream, normalised on the loader thread, is what normalising in memory gives, bit for bit */
    ds_dataset_free(&d2);
    CHECK(ds_norm_apply(&b, &d) == 0);
    ds_stream_cfg cfg = {.window = 1000, .norm = &b}; /* one window, so the order is a permutation */
    ds_loader *l = ds_loader_new_shards(s, 8, 5, &cfg);
    ds_loader *raw = ds_loader_new_shards(s, 8, 5, &(ds_stream_cfg){.window = 1000});
    CHECK(l && raw);
    float x[8 * ROW], y[8], rx[8 * ROW], ry[8];
    int bit = 1, n = 0;
    while (l && raw && ds_loader_more(l)) {
        int k = ds_loader_next(l, x, y), k2 = ds_loader_next(raw, rx, ry);
        CHECK(k == k2 && k > 0);
        for (int i = 0; i < k; i++, n++) {
            int id = id_of(rx + i * ROW);
            bit &= !memcmp(x + i * ROW, d.x + (size_t)id * ROW, ROW * sizeof *x) && y[i] == d.y[id];
        }
    }
    CHECK(bit && n == N);
    ds_loader_free(l), ds_loader_free(raw);
    ds_norm_free(&a), ds_norm_free(&b);
    ds_dataset_free(&d);

    /* too large for memory: refused, pointing at streaming */
    setenv("DS_SHARDS_LOAD_LIMIT", "1000", 1);
    CHECK(ds_data_load(spec, &d) == -1 && strstr(ds_last_error(), "GB") && strstr(ds_last_error(), "stream"));
    unsetenv("DS_SHARDS_LOAD_LIMIT");
    ds_shards_close(s);
}

static void test_order(void)
{
    const char *dir = write_set("order");
    ds_shards *s = ds_shards_open(dir);
    CHECK(s);
    if (!s) return;
    int o1[N], o2[N], p1[N], p2[N], q1[N];
    ds_stream_cfg cfg = {.window = 10, .prefetch = 3, .threads = 2};
    ds_loader *a = ds_loader_new_shards(s, 6, 42, &cfg), *b = ds_loader_new_shards(s, 6, 42, &cfg);
    ds_loader *c = ds_loader_new_shards(s, 6, 43, &(ds_stream_cfg){.window = 10, .threads = 1, .prefetch = 1});
    CHECK(a && b && c && ds_loader_batches(a) == 9);
    CHECK(epoch(a, o1, 0) == N && epoch(b, p1, 0) == N && epoch(c, q1, 0) == N);
    ds_rng saved = *ds_loader_rng(a); /* as the CLI saves it at an epoch's end */
    ds_loader_reset(a), ds_loader_reset(b);
    CHECK(epoch(a, o2, 0) == N && epoch(b, p2, 0) == N);
    CHECK(!memcmp(o1, p1, sizeof o1) && !memcmp(o2, p2, sizeof o2)); /* same seed, other thread count: same order */
    CHECK(memcmp(o1, o2, sizeof o1) != 0 && memcmp(o1, q1, sizeof o1) != 0);
    int seen[N] = {0}, once = 1;
    for (int i = 0; i < N; i++) seen[o1[i]]++;
    for (int i = 0; i < N; i++) once &= seen[i] == 1;
    CHECK(once);
    /* windows of 10: sample at position p comes from stream positions [10 w, 10 w + 10) — of one or two shards */
    /* resume: a fresh loader given the saved generator replays epoch 2 */
    ds_loader *r = ds_loader_new_shards(s, 6, 7, &cfg);
    *ds_loader_rng(r) = saved;
    ds_loader_reset(r);
    CHECK(r && epoch(r, q1, 0) == N && !memcmp(q1, o2, sizeof o2));
    /* a mid-epoch reset starts a whole new epoch */
    float x[MAXB * ROW], y[MAXB];
    ds_loader_reset(r);
    CHECK(ds_loader_next(r, x, y) == 6 && ds_loader_last_global(r) == 6);
    ds_loader_reset(r);
    CHECK(epoch(r, q1, 0) == N && ds_loader_next(r, x, y) == 0 && ds_loader_wait_seconds(r) >= 0);
    CHECK(ds_loader_set_balanced(r, 1) == -1 && strstr(ds_last_error(), "sharded"));
    ds_loader_free(a), ds_loader_free(b), ds_loader_free(c), ds_loader_free(r);
    ds_shards_close(s);
}

/* The ranks' shares of each global batch, concatenated, are the batch. */
static void test_ranks(int aug)
{
    const char *dir = write_set(aug ? "ranks_aug" : "ranks");
    ds_shards *s = ds_shards_open(dir);
    CHECK(s);
    if (!s) return;
    for (int size = 1; size <= 3; size++) {
        ds_stream_cfg cfg = {.window = 12, .prefetch = 2, .threads = size};
        ds_loader *ref = ds_loader_new_shards(s, 7, 9, &cfg), *r[3] = {0};
        CHECK(ref && (!aug || ds_loader_set_augment(ref, DS_AUG_FLIP | DS_AUG_ROT90) == 0));
        for (int k = 0; k < size; k++) {
            r[k] = ds_loader_new_shards(s, 7, 9, &cfg);
            CHECK(r[k] && (!aug || ds_loader_set_augment(r[k], DS_AUG_FLIP | DS_AUG_ROT90) == 0));
            CHECK(ds_loader_set_shard(r[k], k, size) == 0);
        }
        for (int e = 0; e < 2; e++) {
            if (e) {
                ds_loader_reset(ref);
                for (int k = 0; k < size; k++) ds_loader_reset(r[k]);
            }
            float x[MAXB * ROW], y[MAXB], sx[MAXB * ROW], sy[MAXB];
            int equal = 1, total = 0;
            while (ds_loader_more(ref)) {
                int b = ds_loader_next(ref, x, y), at = 0;
                for (int k = 0; k < size; k++) {
                    int n = ds_loader_next(r[k], sx + at * ROW, sy + at);
                    equal &= n == (k + 1) * b / size - k * b / size && ds_loader_last_global(r[k]) == b;
                    at += n > 0 ? n : 0;
                }
                equal &= at == b && !memcmp(x, sx, (size_t)b * ROW * sizeof *x) && !memcmp(y, sy, (size_t)b * sizeof *y);
                total += b;
            }
            CHECK(equal && total == N);
            for (int k = 0; k < size; k++) CHECK(!ds_loader_more(r[k]));
        }
        if (aug) { /* every sample once, its values moved by a symmetry */
            int ids[N];
            ds_loader_reset(ref);
            CHECK(epoch(ref, ids, 1) == N);
        }
        CHECK(ds_loader_set_shard(ref, 3, 3) == -1 && strstr(ds_last_error(), "rank 3"));
        ds_loader_free(ref);
        for (int k = 0; k < size; k++) ds_loader_free(r[k]);
    }
    ds_shards_close(s);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

/* index.json of one shard with these x, y, n and an extra member */
static void index_of(const char *dir, const char *x, const char *y, int n, const char *extra)
{
    char path[600], text[2000];
    snprintf(path, sizeof path, "%s/index.json", dir);
    snprintf(text, sizeof text,
             "{\"format\": \"deepsky-shards\", \"version\": 1, \"sample\": [1, %d, %d], \"samples\": %d, "
             "\"classes\": 3%s, \"shards\": [{\"x\": \"%s\", \"y\": \"%s\", \"n\": %d}]}",
             H, H, n, extra, x, y, n);
    put(path, text);
}

static void expect_open_error(const char *dir, const char *a, const char *b)
{
    ds_shards *s = ds_shards_open(dir);
    CHECK(s == NULL && strstr(ds_last_error(), a) && (!b || strstr(ds_last_error(), b)));
    if (s || !strstr(ds_last_error(), a) || (b && !strstr(ds_last_error(), b)))
        fprintf(stderr, "  wanted '%s' / '%s' in: %s\n", a, b ? b : "", ds_last_error());
    ds_shards_close(s);
}

static void test_errors(void)
{
    const char *dir = write_set("bad");
    char p[600], q[600];
    index_of(dir, "shard-000000.x.npy", "shard-000000.y.npy", 7, ", \"colour\": 1");
    expect_open_error(dir, "index.json", "unknown key 'colour'");
    index_of(dir, "shard-000000.x.npy", "shard-000000.y.npy", 7, ", \"mean\": [0]");
    expect_open_error(dir, "index.json", "missing key 'std'");
    snprintf(p, sizeof p, "%s/index.json", dir);
    put(p, "{\"format\": \"deepsky-shards\", \"version\": 1, \"sample\": [1, 4, 4], \"samples\": 7}");
    expect_open_error(dir, "index.json", "missing key 'shards'");
    put(p, "{\"format\": \"deepsky-shards\", \"version\": 2, \"sample\": [1, 4, 4], \"samples\": 7, \"shards\": []}");
    expect_open_error(dir, "index.json", "version 2");
    put(p, "{\"format\": \"deepsky-shards\",");
    expect_open_error(dir, "index.json", "JSON");
    index_of(dir, "shard-000000.x.npy", "shard-000000.y.npy", 8, "");
    expect_open_error(dir, "shard-000000.x.npy", "says 8");
    index_of(dir, "nothere.npy", "shard-000000.y.npy", 7, "");
    expect_open_error(dir, "nothere.npy", "cannot open");
    index_of(dir, "../x.npy", "shard-000000.y.npy", 7, "");
    expect_open_error(dir, "index.json", "relative");
    index_of(dir, "shard-000000.x.npy", "shard-000001.y.npy", 7, ", \"class_names\": [\"a\"]");
    expect_open_error(dir, "index.json", "class_names");
    /* another shape: [1, 4, 4] expected, a [7, 2, 8] array given */
    float z[7 * 16] = {0};
    snprintf(q, sizeof q, "%s/other.npy", dir);
    CHECK(ds_npy_write(q, ds_shape_of(3, 7, 2, 8), z) == 0);
    index_of(dir, "other.npy", "shard-000000.y.npy", 7, "");
    expect_open_error(dir, "other.npy", "shape");
    /* a truncated shard, caught on opening */
    snprintf(q, sizeof q, "%s/shard-000001.x.npy", dir);
    CHECK(truncate(q, 300) == 0);
    index_of(dir, "shard-000001.x.npy", "shard-000001.y.npy", 7, "");
    expect_open_error(dir, "shard-000001.x.npy", "truncated");
    snprintf(q, sizeof q, "%s/shard-000000.x.npy", dir);
    ds_dataset d;
    CHECK(ds_data_load("shards:/nonexistent/set", &d) == -1 && strstr(ds_last_error(), "/nonexistent/set"));

    /* truncated while streaming: next() fails naming the file, the loader stays usable */
    index_of(dir, "shard-000000.x.npy", "shard-000000.y.npy", 7, "");
    ds_shards *s = ds_shards_open(dir);
    CHECK(s);
    if (!s) return;
    ds_loader *l = ds_loader_new_shards(s, 2, 1, &(ds_stream_cfg){.prefetch = 1});
    float x[2 * ROW], y[2];
    CHECK(l && ds_loader_next(l, x, y) == 2);
    CHECK(truncate(q, 128 + 3 * ROW * 4) == 0);
    int rc = 0;
    for (int i = 0; i < 4 && rc >= 0; i++) rc = ds_loader_next(l, x, y);
    CHECK(rc == -1 && strstr(ds_last_error(), "shard-000000.x.npy") && strstr(ds_last_error(), "truncated"));
    ds_loader_free(l);
    ds_shards_close(s);
}

/* A big-endian FITS cube written by hand: BITPIX 16 with BSCALE/BZERO. */
static void write_fits16(const char *path, int n, const short *v, double bscale, double bzero)
{
    char h[2880];
    memset(h, ' ', sizeof h);
    const char *cards[] = {"SIMPLE  =                    T", "BITPIX  =                   16",
                           "NAXIS   =                    3", "NAXIS1  =                    4",
                           "NAXIS2  =                    4", NULL, NULL, NULL, "END"};
    char c5[81], c6[81], c7[81];
    snprintf(c5, sizeof c5, "NAXIS3  = %20d", n);
    snprintf(c6, sizeof c6, "BSCALE  = %20.6f", bscale);
    snprintf(c7, sizeof c7, "BZERO   = %20.6f", bzero);
    cards[5] = c5, cards[6] = c6, cards[7] = c7;
    for (int k = 0; k < 9; k++) memcpy(h + 80 * k, cards[k], strlen(cards[k]));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(h, 1, sizeof h, f);
    size_t m = (size_t)n * 16, pad = (2880 - m * 2 % 2880) % 2880;
    for (size_t i = 0; i < m; i++) fputc((v[i] >> 8) & 0xff, f), fputc(v[i] & 0xff, f);
    for (size_t i = 0; i < pad; i++) fputc(0, f);
    fclose(f);
}

static void test_fits(void)
{
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s", ds_test_path("fits"));
    mkdir(dir, 0777);
    enum { n1 = 5, n2 = 3 };
    float x1[n1 * ROW], y1[n1], y2[n2];
    short v2[n2 * ROW];
    for (int i = 0; i < n1 * ROW; i++) x1[i] = (float)i * 0.5f;
    x1[3] = NAN; /* a masked pixel: 0 */
    for (int i = 0; i < n2 * ROW; i++) v2[i] = (short)(i - 20);
    for (int i = 0; i < n1; i++) y1[i] = (float)(i % 3);
    for (int i = 0; i < n2; i++) y2[i] = 2;
    snprintf(p, sizeof p, "%s/a.fits", dir);
    CHECK(ds_fits_write(p, 3, (int[]){n1, H, H}, x1, NULL, 0) == 0);
    snprintf(p, sizeof p, "%s/b.fits", dir);
    write_fits16(p, n2, v2, 0.5, 100);
    snprintf(p, sizeof p, "%s/a.y.npy", dir);
    CHECK(ds_npy_write(p, ds_shape_of(1, n1), y1) == 0);
    snprintf(p, sizeof p, "%s/b.y.npy", dir);
    CHECK(ds_npy_write(p, ds_shape_of(1, n2), y2) == 0);
    snprintf(p, sizeof p, "%s/index.json", dir);
    put(p, "{\"format\": \"deepsky-shards\", \"version\": 1, \"sample\": [1, 4, 4], \"samples\": 8, \"classes\": 3,\n"
           " \"shards\": [{\"x\": \"a.fits\", \"y\": \"a.y.npy\", \"n\": 5, \"dtype\": \"float32\"},\n"
           "             {\"x\": \"b.fits\", \"y\": \"b.y.npy\", \"n\": 3, \"dtype\": \"int16\"}]}");
    ds_dataset d;
    CHECK(ds_data_load(dir, &d) == 0 && d.n == n1 + n2);
    int ok = d.n == n1 + n2;
    for (int i = 0; ok && i < n1 * ROW; i++) ok &= d.x[i] == (i == 3 ? 0.0f : x1[i]);
    for (int i = 0; ok && i < n2 * ROW; i++) ok &= d.x[n1 * ROW + i] == (float)(100 + 0.5 * v2[i]);
    for (int i = 0; ok && i < n2; i++) ok &= d.y[n1 + i] == 2;
    CHECK(ok);
    ds_shards *s = ds_shards_open(dir);
    CHECK(s);
    if (s) { /* streamed: the same samples (in some order), each once */
        ds_loader *l = ds_loader_new_shards(s, 3, 2, NULL);
        float x[3 * ROW], y[3];
        int b, seen[n1 + n2] = {0}, k = 0;
        while ((b = ds_loader_next(l, x, y)) > 0)
            for (int i = 0; i < b; i++, k++)
                for (int j = 0; j < d.n; j++)
                    if (!memcmp(x + i * ROW, d.x + (size_t)j * ROW, ROW * sizeof *x) && y[i] == d.y[j]) seen[j]++;
        for (int j = 0; j < d.n; j++) CHECK(seen[j] == 1);
        CHECK(k == n1 + n2);
        ds_loader_free(l);
        ds_shards_close(s);
    }
    ds_dataset_free(&d);
    /* the index's dtype must be the file's */
    put(p, "{\"format\": \"deepsky-shards\", \"version\": 1, \"sample\": [1, 4, 4], \"samples\": 3, \"classes\": 3,\n"
           " \"shards\": [{\"x\": \"b.fits\", \"y\": \"b.y.npy\", \"n\": 3, \"dtype\": \"float32\"}]}");
    expect_open_error(dir, "b.fits", "int16");
    snprintf(p, sizeof p, "%s/b.fits", dir);
    CHECK(truncate(p, 2880 + 40) == 0);
    snprintf(p, sizeof p, "%s/index.json", dir);
    put(p, "{\"format\": \"deepsky-shards\", \"version\": 1, \"sample\": [1, 4, 4], \"samples\": 3, \"classes\": 3,\n"
           " \"shards\": [{\"x\": \"b.fits\", \"y\": \"b.y.npy\", \"n\": 3}]}");
    expect_open_error(dir, "b.fits", "truncated");
}

static void test_writer_errors(void)
{
    ds_shard_writer *w = ds_shard_writer_open(ds_test_path("w"), ds_shape_of(1, 3), 2, NULL, 4);
    CHECK(w);
    float x[3] = {1, 2, 3}, y = 5;
    CHECK(ds_shard_writer_add(w, x, &y, 1) == -1 && strstr(ds_last_error(), "label 5"));
    CHECK(ds_shard_writer_close(w) == -1);
    char p[600];
    snprintf(p, sizeof p, "%s/index.json", ds_test_path("w"));
    CHECK(access(p, F_OK) != 0); /* no index for a failed set */
    CHECK(ds_shard_writer_open(ds_test_path("w2"), ds_shape_of(1, 3), 2, NULL, 0) == NULL);
    w = ds_shard_writer_open(ds_test_path("w3"), ds_shape_of(1, 3), 0, NULL, 2);
    CHECK(w && ds_shard_writer_add(w, x, NULL, 1) == 0 && ds_shard_writer_close(w) == 0);
    ds_shards *s = ds_shards_open(ds_test_path("w3"));
    CHECK(s && ds_shards_samples(s) == 1); /* unlabelled: no y files */
    ds_shards_close(s);
}

int main(void)
{
    test_roundtrip();
    test_order();
    test_ranks(0);
    test_ranks(1);
    test_errors();
    test_fits();
    test_writer_errors();
    return ds_test_summary("shards");
}
