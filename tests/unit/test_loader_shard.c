/* test_loader_shard.c — data-parallel sharding of the in-memory loader:
 * the ranks' shares of every global batch, concatenated in rank order, are
 * the batch of one unsharded loader of the same seed (order, augmentation,
 * balanced draws and fields alike). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { N = 40, ROW = 9, FROW = 2, MAXB = 16 };

static float xs[N * ROW], ys[N], fs[N * FROW];

static ds_dataset make(ds_field *f)
{
    for (int k = 0; k < N; k++) {
        for (int j = 0; j < ROW; j++) xs[k * ROW + j] = (float)(k * 100 + j);
        ys[k] = (float)(k % 4);
        fs[k * FROW] = (float)k, fs[k * FROW + 1] = (float)-k;
    }
    *f = (ds_field){.name = "meta", .sample = ds_shape_of(1, FROW), .x = fs};
    return (ds_dataset){.n = N, .sample = ds_shape_of(3, 1, 3, 3), .classes = 4, .x = xs, .y = ys,
                        .n_fields = 1, .fields = f};
}

static ds_loader *make_loader(const ds_dataset *d, int batch, int aug, int bal, int rank, int size)
{
    ds_loader *l = ds_loader_new(d, batch, 1, 1234);
    if (!l) return NULL;
    if (aug && ds_loader_set_augment(l, aug) != 0) return NULL;
    if (bal && ds_loader_set_balanced(l, 1) != 0) return NULL;
    if (size && ds_loader_set_shard(l, rank, size) != 0) return NULL;
    return l;
}

/* Two epochs of `size` ranks against the unsharded loader. */
static void compare(const ds_dataset *d, int batch, int aug, int bal, int size)
{
    ds_loader *ref = make_loader(d, batch, aug, bal, 0, 0), *r[3] = {0};
    for (int k = 0; k < size; k++) r[k] = make_loader(d, batch, aug, bal, k, size);
    CHECK(ref && r[0] && (size < 2 || r[1]) && (size < 3 || r[2]));
    if (!ref || !r[size - 1]) return;
    float rx[MAXB * ROW], ry[MAXB], rf[MAXB * FROW];
    float sx[MAXB * ROW], sy[MAXB], sf[MAXB * FROW];
    for (int epoch = 0; epoch < 2; epoch++) {
        if (epoch) {
            ds_loader_reset(ref);
            for (int k = 0; k < size; k++) ds_loader_reset(r[k]);
        }
        for (int k = 0; k < size; k++) CHECK(ds_loader_wait_seconds(r[k]) == 0);
        int batches = 0, equal = 1, total = 0;
        while (ds_loader_more(ref)) {
            for (int k = 0; k < size; k++) CHECK(ds_loader_more(r[k]));
            float *rdst[2] = {rx, rf};
            int b = ds_loader_next_fields(ref, rdst, ry);
            CHECK(b == ds_loader_last_global(ref));
            int at = 0;
            for (int k = 0; k < size; k++) {
                float *dst[2] = {sx + (size_t)at * ROW, sf + (size_t)at * FROW};
                int s = ds_loader_next_fields(r[k], dst, sy + at);
                /* rows [floor(k b / size), floor((k+1) b / size)) */
                CHECK(s == (k + 1) * b / size - k * b / size);
                CHECK(ds_loader_last_global(r[k]) == b);
                at += s;
            }
            CHECK(at == b);
            equal &= memcmp(rx, sx, (size_t)b * ROW * sizeof *rx) == 0;
            equal &= memcmp(ry, sy, (size_t)b * sizeof *ry) == 0;
            equal &= memcmp(rf, sf, (size_t)b * FROW * sizeof *rf) == 0;
            batches++, total += b;
            if (!ds_loader_more(ref)) CHECK(b == (N % batch ? N % batch : batch)); /* the last batch */
        }
        CHECK(equal);
        CHECK(total == N && batches == ds_loader_batches(ref));
        for (int k = 0; k < size; k++) {
            CHECK(!ds_loader_more(r[k]));
            CHECK(ds_loader_next(r[k], sx, sy) == 0); /* stays at the end */
            CHECK(ds_loader_wait_seconds(r[k]) >= 0);
        }
    }
    ds_loader_free(ref);
    for (int k = 0; k < size; k++) ds_loader_free(r[k]);
}

static void test_shares(void)
{
    ds_field f;
    ds_dataset d = make(&f);
    for (int size = 1; size <= 3; size++)
        for (int aug = 0; aug < 2; aug++) {
            compare(&d, 7, aug ? DS_AUG_FLIP | DS_AUG_ROT90 : 0, 0, size);
            compare(&d, 13, aug ? DS_AUG_FLIP : 0, 0, size); /* last batch of 1: shares of 0 rows */
        }
    compare(&d, 7, 0, 1, 2); /* balanced: one global draw */
    compare(&d, 7, DS_AUG_FLIP, 1, 3);
}

/* The last batch of 5 over 3 ranks is 1, 2, 2 rows; of 1 row, 0, 0, 1. */
static void test_last_sizes(void)
{
    ds_field f;
    ds_dataset d = make(&f);
    int want5[3] = {1, 2, 2}, want1[3] = {0, 0, 1};
    for (int k = 0; k < 3; k++) {
        float x[MAXB * ROW], y[MAXB];
        ds_loader *l = make_loader(&d, 7, 0, 0, k, 3);
        int b = 0, g = 0;
        while (ds_loader_more(l)) b = ds_loader_next(l, x, y), g = ds_loader_last_global(l);
        CHECK(g == 5 && b == want5[k]);
        ds_loader_free(l);
        l = make_loader(&d, 13, 0, 0, k, 3);
        int n = 0;
        while (ds_loader_more(l)) b = ds_loader_next(l, x, y), g = ds_loader_last_global(l), n++;
        CHECK(n == 4 && g == 1 && b == want1[k]);
        ds_loader_free(l);
    }
}

static void test_bad_args(void)
{
    ds_field f;
    ds_dataset d = make(&f);
    ds_loader *l = ds_loader_new(&d, 7, 1, 1);
    CHECK(l);
    CHECK(ds_loader_set_shard(l, 2, 2) == -1 && strstr(ds_last_error(), "rank 2"));
    CHECK(ds_loader_set_shard(l, -1, 2) == -1 && strstr(ds_last_error(), "rank -1"));
    CHECK(ds_loader_set_shard(l, 0, 0) == -1 && strstr(ds_last_error(), "size"));
    CHECK(ds_loader_set_shard(l, 0, -3) == -1 && strstr(ds_last_error(), "size"));
    CHECK(ds_loader_set_shard(NULL, 0, 1) == -1);
    /* after the failures the loader still hands out whole batches */
    float x[MAXB * ROW], y[MAXB];
    CHECK(ds_loader_next(l, x, y) == 7 && ds_loader_last_global(l) == 7);
    /* more ranks than samples in a batch: every rank gets its 0 or 1 rows */
    CHECK(ds_loader_set_shard(l, 8, 9) == 0);
    int total = 0;
    while (ds_loader_more(l)) total += ds_loader_next(l, x, y);
    CHECK(total == 6); /* set_shard restarts the epoch; rank 8 of 9 gets 1 row of each of the 6 batches */
    ds_loader_free(l);
}

int main(void)
{
    test_shares();
    test_last_sizes();
    test_bad_args();
    return ds_test_summary("loader_shard");
}
