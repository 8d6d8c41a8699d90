/* test_provenance.c — data provenance (src/data/provenance.c): the FNV-1a
 * hash against its published test vectors; JSON round trip; overlap counts
 * by seed, size and index range, and by file hash; provenance of NPY files
 * through simulate's provenance.json (and not once the file changed) and of
 * a cutout folder from its headers, in the loader's order; simulate's
 * output folder refused when not empty, --force removing only its own
 * files; a 3-plane cutout refused for a 1-channel model; the "best"
 * metadata. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_fnv(void)
{
    /* the FNV-1a 64-bit test vectors (Fowler, Noll, Vo) */
    CHECK(ds_fnv1a64("", 0, DS_FNV1A64_INIT) == 0xcbf29ce484222325ULL);
    CHECK(ds_fnv1a64("a", 1, DS_FNV1A64_INIT) == 0xaf63dc4c8601ec8cULL);
    CHECK(ds_fnv1a64("foobar", 6, DS_FNV1A64_INIT) == 0x85944171f73967e8ULL);
    /* in pieces = at once */
    CHECK(ds_fnv1a64("bar", 3, ds_fnv1a64("foo", 3, DS_FNV1A64_INIT)) == 0x85944171f73967e8ULL);
    const char *p = ds_test_path("foobar.bin");
    FILE *f = fopen(p, "wb");
    fputs("foobar", f);
    fclose(f);
    uint64_t h = 0;
    CHECK(ds_file_hash(p, &h) == 0 && h == 0x85944171f73967e8ULL);
    CHECK(ds_file_hash(ds_test_path("missing.bin"), &h) != 0 && strstr(ds_last_error(), "missing.bin"));
}

static void test_json_and_overlap(void)
{
    ds_provenance t = {0}, d = {0}, back;
    ds_sim_range r1[] = {{1, 45, 10, 20}, {1, 45, 0, 10}, {7, 45, 0, 5}};
    ds_data_file f1 = {"runs/a.npy", 0x0123456789abcdefULL, 40};
    ds_provenance one = {.n_sim = 3, .sim = r1, .n_files = 1, .files = &f1};
    CHECK(ds_provenance_merge(&t, &one) == 0);
    CHECK(t.n_sim == 2 && t.sim[0].seed == 1 && t.sim[0].first == 0 && t.sim[0].end == 20); /* merged */
    char *json = ds_provenance_json(&t);
    CHECK(json && ds_provenance_parse(json, &back) == 0);
    CHECK(back.n_sim == 2 && back.sim[1].seed == 7 && back.sim[1].end == 5 && back.n_files == 1 &&
          back.files[0].hash == 0x0123456789abcdefULL && back.files[0].samples == 40 &&
          !strcmp(back.files[0].path, "runs/a.npy"));
    free(json);
    ds_provenance_free(&back);
    CHECK(ds_provenance_parse("{\"sim\": [{\"seed\": 1}]}", &back) != 0);
    CHECK(ds_provenance_parse("{\"files\": [{\"path\": \"x\", \"fnv1a64\": \"12\", \"samples\": 1}]}", &back) != 0);
    CHECK(ds_provenance_parse("not json", &back) != 0);

    char why[256];
    ds_sim_range a[] = {{1, 45, 15, 115}}; /* 5 of them (15..19) trained on */
    ds_provenance pa = {.n_sim = 1, .sim = a};
    CHECK(ds_provenance_overlap(&t, &pa, why, sizeof why) == 5 && strstr(why, "--seed 1") && strstr(why, "0-19"));
    ds_sim_range b[] = {{1, 30, 0, 100}, {2, 45, 0, 100}}; /* another size, another seed */
    ds_provenance pb = {.n_sim = 2, .sim = b};
    CHECK(ds_provenance_overlap(&t, &pb, why, sizeof why) == 0 && !*why);
    ds_data_file f2[] = {{"copy.npy", 0x0123456789abcdefULL, 40}, {"other.npy", 5, 9}};
    ds_provenance pc = {.n_files = 2, .files = f2};
    CHECK(ds_provenance_overlap(&t, &pc, why, sizeof why) == 40 && strstr(why, "runs/a.npy"));
    ds_provenance_free(&t);
    ds_provenance_free(&d);
}

static void test_npy_sidecar(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", ds_test_path("sim_npy"));
    mkdir(dir, 0755);
    float x[6 * 4 * 4];
    for (int i = 0; i < 6 * 16; i++) x[i] = (float)i;
    char xp[1100], spec[2300];
    snprintf(xp, sizeof xp, "%s/x.npy", dir);
    CHECK(ds_npy_write(xp, ds_shape_of(4, 6, 1, 4, 4), x) == 0);
    CHECK(ds_provenance_sidecar_add(dir, "x.npy", 9, 4, 1, 100, 6) == 0);
    snprintf(spec, sizeof spec, "npy:%s", xp);
    ds_provenance p;
    long *idx = NULL;
    CHECK(ds_provenance_of(spec, 1, 6, &p, &idx) == 0);
    CHECK(p.n_sim == 1 && p.sim[0].seed == 9 && p.sim[0].size == 4 && p.sim[0].first == 100 && p.sim[0].end == 106);
    CHECK(p.n_files == 1 && p.files[0].samples == 6);
    CHECK(idx && idx[0] == 100 && idx[5] == 105);
    free(idx);
    ds_provenance_free(&p);
    /* the file changed since simulate wrote it: no longer those stamps, only a file of its hash */
    x[0] = -1;
    CHECK(ds_npy_write(xp, ds_shape_of(4, 6, 1, 4, 4), x) == 0);
    CHECK(ds_provenance_of(spec, 1, 6, &p, &idx) == 0);
    CHECK(p.n_sim == 0 && p.n_files == 1 && idx && idx[0] == -1);
    free(idx);
    ds_provenance_free(&p);
}

/* DIR/<class>/NAME.fits, one stamp of `planes` planes with simulate's keywords */
static void cutout(const char *dir, const char *cls, const char *name, int index, int planes)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, cls);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", dir, cls, name);
    float x[3 * 8 * 8] = {0};
    ds_fits_key keys[] = {{"SIMSEED", 'i', 3, NULL, NULL},        {"SIMINDEX", 'i', index, NULL, NULL},
                          {"PLANE1", 's', 0, "science", NULL},   {"PLANE2", 's', 0, "reference", NULL},
                          {"PLANE3", 's', 0, "difference", NULL}};
    int rc = planes == 1 ? ds_fits_write(p, 2, (int[]){8, 8}, x, keys, 3)
                         : ds_fits_write(p, 3, (int[]){3, 8, 8}, x, keys, 5);
    CHECK(rc == 0);
}

static void test_cutouts(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", ds_test_path("cut1"));
    mkdir(dir, 0755);
    /* the loader reads bogus/ then real/, by name: indices 0, 3, 1, 2 */
    cutout(dir, "bogus", "000000.fits", 0, 1);
    cutout(dir, "bogus", "000003.fits", 3, 1);
    cutout(dir, "real", "000001.fits", 1, 1);
    cutout(dir, "real", "000002.fits", 2, 1);
    ds_provenance p;
    long *idx = NULL;
    CHECK(ds_provenance_of(dir, 1, 4, &p, &idx) == 0);
    CHECK(idx && idx[0] == 0 && idx[1] == 3 && idx[2] == 1 && idx[3] == 2);
    CHECK(p.n_sim == 1 && p.sim[0].seed == 3 && p.sim[0].size == 8 && p.sim[0].first == 0 && p.sim[0].end == 4);
    CHECK(p.n_files == 0); /* named by their headers, not hashed */
    free(idx);
    ds_provenance_free(&p);

    /* three planes named PLANE1..3: one 3-channel sample, refused as three 1-channel ones */
    snprintf(dir, sizeof dir, "%s", ds_test_path("cut3"));
    mkdir(dir, 0755);
    cutout(dir, "real", "000005.fits", 5, 3);
    char spec[1200];
    snprintf(spec, sizeof spec, "fits:%s/real/000005.fits", dir);
    ds_dataset d;
    CHECK(ds_data_load_channels(spec, 1, &d) != 0 && strstr(ds_last_error(), "PLANE1..PLANE3") &&
          strstr(ds_last_error(), "3 planes"));
    CHECK(ds_data_load_channels(dir, 1, &d) != 0 && strstr(ds_last_error(), "000005.fits"));
    CHECK(ds_data_load_channels(spec, 0, &d) == 0 && d.n == 1 && d.sample.d[0] == 3);
    ds_dataset_free(&d);
    CHECK(ds_data_load_channels(spec, 3, &d) == 0 && d.n == 1);
    ds_dataset_free(&d);
    CHECK(ds_provenance_of(spec, 3, 1, &p, &idx) == 0 && idx[0] == 5 && p.n_sim == 1);
    free(idx);
    ds_provenance_free(&p);
}

static void touch(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_sim_out(void)
{
    char dir[1024];
    int removed = -1;
    snprintf(dir, sizeof dir, "%s", ds_test_path("simout"));
    CHECK(ds_sim_out_prepare(dir, 0, &removed) == 0 && removed == 0); /* not there yet */
    mkdir(dir, 0755);
    CHECK(ds_sim_out_prepare(dir, 0, NULL) == 0); /* empty */
    touch(dir, "x.npy");
    touch(dir, "labels.csv");
    touch(dir, "notes.txt");
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/cutouts", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/cutouts/real", dir);
    mkdir(sub, 0755);
    touch(sub, "000001.fits");
    touch(sub, "mine.fits");
    snprintf(sub, sizeof sub, "%s/cutouts/bogus", dir);
    mkdir(sub, 0755);
    touch(sub, "000000.fits");
    CHECK(ds_sim_out_prepare(dir, 0, NULL) != 0 && strstr(ds_last_error(), "not empty") &&
          strstr(ds_last_error(), "--force"));
    CHECK(exists(dir, "x.npy"));
    CHECK(ds_sim_out_prepare(dir, 1, &removed) == 0 && removed == 4);
    CHECK(!exists(dir, "x.npy") && !exists(dir, "labels.csv") && exists(dir, "notes.txt"));
    CHECK(!exists(dir, "cutouts/bogus") && exists(dir, "cutouts/real/mine.fits") &&
          !exists(dir, "cutouts/real/000001.fits"));
}

static void test_best(void)
{
    char buf[160];
    ds_best b = {.split = "validation", .epoch = 7, .value = 0.98125}, back;
    CHECK(ds_best_json(&b, buf, sizeof buf) == 0);
    CHECK(ds_best_parse(buf, &back) == 0 && !strcmp(back.split, "validation") && back.epoch == 7 &&
          back.value == 0.98125);
    ds_best_describe(&back, buf, sizeof buf);
    CHECK(strstr(buf, "validation accuracy 0.9812") && strstr(buf, "epoch 7"));
    ds_best none = {.split = "none", .epoch = 3, .value = 0.5};
    CHECK(ds_best_json(&none, buf, sizeof buf) == 0 && ds_best_parse(buf, &back) == 0);
    ds_best_describe(&back, buf, sizeof buf);
    CHECK(strstr(buf, "last epoch") && strstr(buf, "no validation") && strstr(buf, "training accuracy") &&
          !strstr(buf, "validation accuracy"));
    ds_best bad = {.split = "test"};
    CHECK(ds_best_json(&bad, buf, sizeof buf) != 0);
    CHECK(ds_best_parse("{\"split\": \"test\", \"epoch\": 1, \"value\": 1}", &back) != 0);
}

int main(void)
{
    test_fnv();
    test_json_and_overlap();
    test_npy_sidecar();
    test_cutouts();
    test_sim_out();
    test_best();
    return ds_test_summary("provenance");
}
