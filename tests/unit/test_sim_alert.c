/* test_sim_alert.c — the stamps' alert metadata (meta.csv; docs/simulator.md):
 * deterministic by seed and index, the same with one or three channels;
 * drawn from a stream of its own, so the pixels are what they were before
 * it existed; no NaN, and every sentinel where its indicator says; and the
 * class-conditional properties the docs promise. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NS = 3000 };

static uint64_t stamps_hash(const ds_dataset *d, int n)
{
    size_t per = (size_t)d->sample.d[0] * d->sample.d[1] * d->sample.d[2];
    return ds_fnv1a64(d->x, sizeof(float) * per * (size_t)n, DS_FNV1A64_INIT);
}

static void test_pixels_unchanged(void)
{
    /* FNV-1a of the first 100 stamps of `simulate --n 500 --seed 7`, from the
     * build before the alert metadata (x86-64 glibc: libm's erf/exp/log) */
    for (int ch = 1; ch <= 3; ch += 2) {
        ds_sim_cfg c = {.n = 100, .size = 45, .channels = ch, .real_fraction = 0.0773f, .seed = 7};
        ds_dataset d;
        ds_sim_meta *m = NULL;
        CHECK(ds_sim_dataset(&c, &d, &m) == 0);
#if defined(__x86_64__) && defined(__GLIBC__)
        CHECK(stamps_hash(&d, 100) == (ch == 1 ? 0x2943cb5d411d0616ULL : 0x8a070c3ee4a0325eULL));
#endif
        free(m);
        ds_dataset_free(&d);
    }
}

static void test_deterministic(void)
{
    ds_sim_cfg c = {.n = 400, .size = 45, .channels = 1, .real_fraction = 0.3f, .seed = 11};
    ds_dataset d1, d3;
    ds_sim_meta *m1 = NULL, *m3 = NULL, one;
    CHECK(ds_sim_dataset(&c, &d1, &m1) == 0);
    c.channels = 3;
    CHECK(ds_sim_dataset(&c, &d3, &m3) == 0);
    /* the same metadata from the difference image alone or with science and reference */
    int same = 1;
    for (int i = 0; i < c.n; i++) same &= !memcmp(&m1[i].alert, &m3[i].alert, sizeof m1[i].alert);
    CHECK(same);
    /* stamp 123 alone: the same record as in the set */
    float *x = malloc(sizeof(float) * 3 * 45 * 45);
    CHECK(ds_sim_stamp(&c, 123, x, &one) == 0);
    CHECK(!memcmp(&one.alert, &m3[123].alert, sizeof one.alert));
    free(x);
    /* the file: the same bytes twice; another seed, other bytes */
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s", ds_test_path("meta1.csv"));
    snprintf(p2, sizeof p2, "%s", ds_test_path("meta2.csv"));
    CHECK(ds_sim_alert_write_csv(p1, m1, c.n, 0) == 0);
    CHECK(ds_sim_alert_write_csv(p2, m3, c.n, 0) == 0);
    uint64_t h1 = 0, h2 = 1;
    CHECK(ds_file_hash(p1, &h1) == 0 && ds_file_hash(p2, &h2) == 0 && h1 == h2);
    ds_dataset d4;
    ds_sim_meta *m4 = NULL;
    c.seed = 12;
    CHECK(ds_sim_dataset(&c, &d4, &m4) == 0);
    CHECK(ds_sim_alert_write_csv(p2, m4, c.n, 0) == 0);
    CHECK(ds_file_hash(p2, &h2) == 0 && h1 != h2);
    /* header: index, then the columns; n rows; the first field of row i is i */
    FILE *f = fopen(p1, "r");
    char line[4096];
    CHECK(f && fgets(line, sizeof line, f));
    CHECK(!strncmp(line, "index,band,", 11));
    int commas = 0;
    for (char *s = line; *s; s++) commas += *s == ',';
    CHECK(commas == ds_sim_alert_columns());
    int rows = 0, in_order = 1;
    while (f && fgets(line, sizeof line, f)) in_order &= atoi(line) == rows, rows++;
    CHECK(rows == c.n && in_order);
    if (f) fclose(f);
    /* a path that cannot be written: an error, no file */
    CHECK(ds_sim_alert_write_csv("/nonexistent-dir/meta.csv", m1, c.n, 0) != 0);
    free(m1), free(m3), free(m4);
    ds_dataset_free(&d1), ds_dataset_free(&d3), ds_dataset_free(&d4);
}

static void test_columns_and_classes(void)
{
    int nc = ds_sim_alert_columns();
    CHECK(nc == 34);
    for (int k = 0; k < nc; k++) {
        const char *key;
        char type;
        const char *name = ds_sim_alert_column(k, &key, &type);
        CHECK(name && key && strlen(key) <= 8 && (type == 'f' || type == 'i' || type == 's'));
    }
    CHECK(ds_sim_alert_column(nc, NULL, NULL) == NULL);
    /* small stamps too (the 5 × 5 box and the footprint near the edges) */
    for (int size = 8; size <= 45; size += 37) {
        ds_sim_cfg c = {.n = size == 8 ? 500 : NS, .size = size, .channels = 1, .real_fraction = 0.3f, .seed = 5};
        ds_dataset d;
        ds_sim_meta *m = NULL;
        CHECK(ds_sim_dataset(&c, &d, &m) == 0);
        int finite = 1, sentinels = 1, band = 1;
        for (int i = 0; i < c.n; i++) {
            const ds_sim_alert *a = &m[i].alert;
            for (int k = 0; k < nc; k++) finite &= isfinite(ds_sim_alert_value(a, k)) != 0;
            band &= a->band == 'g' || a->band == 'r' || a->band == 'i';
            if (!a->nr_match) sentinels &= a->distnr == -1 && a->magnr == -1 && a->sgscore1 == -1 && a->chinr == -1;
            else sentinels &= a->distnr >= 0 && a->distnr <= 30 && a->sgscore1 >= 0 && a->sgscore1 <= 1;
            if (!a->ss_match) sentinels &= a->ssdistnr == -1 && a->ssmagnr == -1 && a->ss_rate == -1;
            else sentinels &= a->ssdistnr >= 0 && a->ssdistnr <= 30 && a->ss_rate > 0;
            sentinels &= a->ndethist >= 0 && a->ndethist <= a->ncovhist + 3 && a->nbad >= 0 && a->nbad <= 25;
            sentinels &= a->nneg >= 0 && a->nneg <= 25 && a->elong >= 1 && a->fwhm > 0 && a->sigmapsf > 0;
        }
        CHECK(finite && sentinels && band);
        if (size == 45) {
            /* what docs/simulator.md promises per class */
            int n[DS_SIM_KINDS] = {0}, ss[DS_SIM_KINDS] = {0}, hist[DS_SIM_KINDS] = {0}, onstar[DS_SIM_KINDS] = {0},
                sharp[DS_SIM_KINDS] = {0}, bad[DS_SIM_KINDS] = {0};
            for (int i = 0; i < c.n; i++) {
                const ds_sim_alert *a = &m[i].alert;
                int k = m[i].kind;
                n[k]++, ss[k] += a->ss_match, hist[k] += a->ndethist > 0;
                onstar[k] += a->nr_match && a->distnr < 2, sharp[k] += a->fwhm_ratio < 1, bad[k] += a->nbad > 0;
            }
            CHECK(ss[DS_SIM_SATELLITE] == 0);                                   /* never in the MPC */
            CHECK(ss[DS_SIM_REAL] > 0.4 * n[DS_SIM_REAL] && ss[DS_SIM_REAL] < 0.85 * n[DS_SIM_REAL]); /* incomplete */
            CHECK(ss[DS_SIM_COSMIC_RAY] < 0.04 * n[DS_SIM_COSMIC_RAY]);        /* chance matches only */
            CHECK(hist[DS_SIM_REAL] < 0.05 * n[DS_SIM_REAL] && hist[DS_SIM_HOT_PIXEL] > 0.9 * n[DS_SIM_HOT_PIXEL]);
            CHECK(onstar[DS_SIM_DIPOLE] > 0.9 * n[DS_SIM_DIPOLE] && onstar[DS_SIM_SPIKES] > 0.9 * n[DS_SIM_SPIKES]);
            CHECK(onstar[DS_SIM_REAL] < 0.3 * n[DS_SIM_REAL]);
            CHECK(sharp[DS_SIM_HOT_PIXEL] > 0.9 * n[DS_SIM_HOT_PIXEL] && sharp[DS_SIM_REAL] < 0.5 * n[DS_SIM_REAL]);
            CHECK(bad[DS_SIM_SATURATED] > 0.9 * n[DS_SIM_SATURATED] && bad[DS_SIM_REAL] < 0.1 * n[DS_SIM_REAL]);
        }
        free(m);
        ds_dataset_free(&d);
    }
}

int main(void)
{
    test_pixels_unchanged();
    test_deterministic();
    test_columns_and_classes();
    return ds_test_summary("sim_alert");
}
