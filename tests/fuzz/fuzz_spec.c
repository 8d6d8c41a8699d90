/* fuzz_spec.c — the data-spec string parser (src/data/spec.c: schemes,
 * options, by-extension dispatch, folder detection, labels files) against
 * a sandbox folder of small valid files of every format, made once per
 * process with deepsky's own writers: x.npy [4,3], y.npy [4], t.csv, l.csv
 * (labels), c.fits [4,4,4], p.png, i3/i1 (IDX images and labels), img/
 * (PNG class folders), fd/ (FITS class folders), d/ (empty). The input is
 * the spec; one with '/', "..", a NUL or fashion-mnist (the installed
 * data set) is skipped, so only the sandbox is read. */
#include "fuzz_common.h"
#include "data.h"

#include <ftw.h>
#include <sys/stat.h>

static char sandbox[512];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_sandbox(void) { nftw(sandbox, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void put_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) fwrite(bytes, 1, n, f), fclose(f);
}
static void put(const char *path, const char *text) { put_bytes(path, text, strlen(text)); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(sandbox, sizeof sandbox, "%s/ds-fuzz-spec-%ld", dir, (long)getpid());
    if (mkdir(sandbox, 0700) != 0 || chdir(sandbox) != 0) abort();
    atexit(rm_sandbox);
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) - 3;
    float y[4] = {0, 1, 0, 1};
    uint8_t px[16];
    for (int i = 0; i < 16; i++) px[i] = (uint8_t)(16 * i);
    int cube[3] = {4, 4, 4}, img[2] = {4, 4};
    mkdir("img", 0700), mkdir("img/a", 0700), mkdir("img/b", 0700);
    mkdir("fd", 0700), mkdir("fd/a", 0700), mkdir("fd/b", 0700), mkdir("d", 0700);
    static const uint8_t i3[] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2,
                                 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t i1[] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1};
    if (ds_npy_write("x.npy", ds_shape_of(2, 4, 3), x) || ds_npy_write("y.npy", ds_shape_of(1, 4), y) ||
        ds_fits_write("c.fits", 3, cube, x, NULL, 0) || ds_fits_write("fd/a/1.fits", 2, img, x, NULL, 0) ||
        ds_fits_write("fd/b/2.fits", 2, img, x + 16, NULL, 0) || ds_png_write("p.png", 4, 4, 1, px) ||
        ds_png_write("img/a/1.png", 4, 4, 1, px) || ds_png_write("img/b/2.png", 4, 4, 1, px))
        abort();
    put("t.csv", "a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n");
    put("l.csv", "label\n0\n1\n0\n1\n");
    put_bytes("i3", i3, sizeof i3);
    put_bytes("i1", i1, sizeof i1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200 || memchr(data, 0, size) || memchr(data, '/', size)) return 0;
    char spec[256];
    memcpy(spec, data, size);
    spec[size] = 0;
    if (strstr(spec, "..") || strstr(spec, "fashion-mnist")) return 0;
    ds_dataset ds;
    if (ds_data_load_channels(spec, (int)(size % 4), &ds) == 0) fuzz_touch_dataset(&ds);
    ds_dataset_free(&ds);
    return 0;
}
