/* test_atomic.c — every output goes through ds_atomic_open/commit: a failed
 * write (a file-size limit standing in for a full disk, /dev/full) keeps the
 * old file and leaves no temporary file; devices are written in place and
 * never removed; ds_atomic_clean removes only our own stale temporary files. */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files in the test folder whose name contains ".tmp". */
static int count_tmp(void)
{
    DIR *d = opendir(ds_test_tmpdir());
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int same_bytes(const char *p, const void *want, size_t n)
{
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    char *buf = malloc(n + 1);
    size_t got = buf ? fread(buf, 1, n + 1, f) : 0;
    fclose(f);
    int same = got == n && !memcmp(buf, want, n);
    free(buf);
    return same;
}

static int is_char_device(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISCHR(st.st_mode);
}

/* Writes under a file-size limit of `limit` bytes (EFBIG past it, like a
 * full disk); returns what f returned. */
static int limited(long limit, int (*f)(const char *, void *), const char *path, void *arg)
{
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)limit;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = f(path, arg);
    setrlimit(RLIMIT_FSIZE, &old);
    return rc;
}

static float big[100000];
static int write_npy_big(const char *path, void *arg)
{
    (void)arg;
    return ds_npy_write(path, ds_shape_of(2, 1000, 100), big);
}
static int write_png_big(const char *path, void *arg)
{
    return ds_png_write(path, 300, 300, 1, arg);
}
static int write_bytes(const char *path, void *arg)
{
    return ds_atomic_write(path, arg, 100000);
}

int main(void)
{
    const char *p = ds_test_path("a.txt");
    /* a new file, then a replacement: content as written, no temporary file */
    CHECK(ds_atomic_write(p, "hello\n", 6) == 0);
    CHECK(same_bytes(p, "hello\n", 6));
    CHECK(ds_atomic_write(p, "bye\n", 4) == 0);
    CHECK(same_bytes(p, "bye\n", 4));
    CHECK(count_tmp() == 0);

    /* abort: the old file is untouched, the temporary file gone */
    ds_atomic a;
    CHECK(ds_atomic_open(&a, p) == 0 && a.tmp && a.f);
    fputs("half a fi", a.f);
    ds_atomic_abort(&a);
    CHECK(same_bytes(p, "bye\n", 4));
    CHECK(count_tmp() == 0);

    /* a failing write (file-size limit ~ full disk): error, old file kept */
    static char junk[100000];
    CHECK(limited(4096, write_bytes, p, junk) == -1);
    CHECK(strstr(ds_last_error(), p) != NULL);
    CHECK(same_bytes(p, "bye\n", 4));
    CHECK(count_tmp() == 0);

    /* NPY: a failed write used to truncate and then remove() its path */
    const char *npy = ds_test_path("x.npy");
    float small[4] = {1, 2, 3, 4};
    CHECK(ds_npy_write(npy, ds_shape_of(2, 4, 1), small) == 0);
    long size = file_size(npy);
    CHECK(size == 128 + 16);
    CHECK(limited(4096, write_npy_big, npy, NULL) == -1);
    CHECK(file_size(npy) == size);
    ds_dataset d = {0};
    CHECK(ds_data_load("npy:" "/nonexistent", &d) == -1); /* the error path keeps working */
    char spec[300];
    snprintf(spec, sizeof spec, "npy:%s", npy);
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 4 && d.x[3] == 4);
    ds_dataset_free(&d);
    CHECK(count_tmp() == 0);

    /* PNG: the same */
    const char *png = ds_test_path("p.png");
    static uint8_t pix[300 * 300];
    for (size_t i = 0; i < sizeof pix; i++) pix[i] = (uint8_t)(i * 2654435761u >> 24); /* incompressible */
    CHECK(ds_png_write(png, 2, 2, 1, (const uint8_t[]){0, 255, 255, 0}) == 0);
    size = file_size(png);
    CHECK(size > 0 && limited(4096, write_png_big, png, pix) == -1);
    CHECK(file_size(png) == size);
    CHECK(count_tmp() == 0);

    /* a device is written in place, errors reported, and never removed
     * (ds_npy_write once deleted /dev/full when run as root) */
    if (is_char_device("/dev/full")) {
        CHECK(ds_npy_write("/dev/full", ds_shape_of(2, 1000, 100), big) == -1);
        CHECK(strstr(ds_last_error(), "/dev/full") != NULL);
        CHECK(is_char_device("/dev/full"));
        CHECK(ds_atomic_write("/dev/full", junk, sizeof junk) == -1);
        CHECK(is_char_device("/dev/full"));
    }
    if (is_char_device("/dev/null")) {
        CHECK(ds_npy_write("/dev/null", ds_shape_of(1, 4), small) == 0);
        CHECK(is_char_device("/dev/null"));
    }
    /* a folder is refused; a missing folder is an error naming the path */
    CHECK(ds_atomic_write(ds_test_tmpdir(), "x", 1) == -1);
    CHECK(ds_atomic_write(ds_test_path("no/such/dir/f"), "x", 1) == -1 && strstr(ds_last_error(), "no/such/dir"));

    /* a symbolic link keeps pointing at the (new) file */
    const char *target = ds_test_path("target.txt"), *link = ds_test_path("link.txt");
    CHECK(ds_atomic_write(target, "old", 3) == 0 && symlink(target, link) == 0);
    CHECK(ds_atomic_write(link, "new!", 4) == 0);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(same_bytes(target, "new!", 4));
    CHECK(count_tmp() == 0);

    /* stale temporary files: only ours (the patterns, our suffix) are removed */
    const char *names[] = {"last.safetensors.tmp.Ab3xYz", "best.safetensors.tmp", "report.html.tmp.q1w2e3",
                           "notes.txt.tmp.Ab3xYz", "last.safetensors.tmp.toolong", "last.safetensors.tmpx",
                           "data.csv"};
    for (int i = 0; i < 7; i++) CHECK(ds_atomic_write(ds_test_path(names[i]), "x", 1) == 0);
    const char *mine[] = {"*.safetensors", "report.html"};
    CHECK(ds_atomic_clean(ds_test_tmpdir(), mine, 2) == 3);
    int left[7] = {0, 0, 0, 1, 1, 1, 1};
    for (int i = 0; i < 7; i++) CHECK((file_size(ds_test_path(names[i])) >= 0) == left[i]);
    CHECK(ds_atomic_clean(ds_test_path("missing"), mine, 2) == 0);
    return ds_test_summary("atomic");
}
