/* test_mem_readers.c — ds_npy_load_mem and ds_image_load_mem (deepsky serve's
 * bodies) read what the file readers read, and refuse truncated bytes. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)size + 1);
    *n = b ? fread(b, 1, (size_t)size, f) : 0;
    fclose(f);
    return b;
}

static int same(const ds_dataset *a, const ds_dataset *b)
{
    size_t n = (size_t)a->n;
    for (int i = 0; i < a->sample.ndim; i++) n *= (size_t)a->sample.d[i];
    return a->n == b->n && a->sample.ndim == b->sample.ndim &&
           !memcmp(a->sample.d, b->sample.d, sizeof(int) * (size_t)a->sample.ndim) && !memcmp(a->x, b->x, n * sizeof(float));
}

int main(void)
{
    float x[2 * 3 * 4 * 5];
    for (int i = 0; i < 120; i++) x[i] = (float)i * 0.25f - 3;
    const char *npy = ds_test_path("x.npy");
    CHECK(ds_npy_write(npy, ds_shape_of(4, 2, 3, 4, 5), x) == 0);
    size_t n = 0;
    unsigned char *b = slurp(npy, &n);
    ds_dataset f = {0}, m = {0};
    CHECK(b && ds_data_load(npy, &f) == 0);
    CHECK(ds_npy_load_mem(b, n, "body.npy", &m) == 0);
    CHECK(same(&f, &m) && m.y && m.y[1] == 0);
    ds_dataset_free(&m);
    /* truncated: the data, then the header */
    CHECK(ds_npy_load_mem(b, n - 7, "body.npy", &m) != 0 && strstr(ds_last_error(), "body.npy: truncated"));
    CHECK(ds_npy_load_mem(b, 9, "body.npy", &m) != 0 && strstr(ds_last_error(), "truncated"));
    CHECK(ds_npy_load_mem("hello world", 11, "body.npy", &m) != 0 && strstr(ds_last_error(), "not an NPY"));
    ds_dataset_free(&f);
    free(b);

    uint8_t px[6 * 7];
    for (int i = 0; i < 42; i++) px[i] = (uint8_t)(i * 6);
    const char *png = ds_test_path("x.png");
    CHECK(ds_png_write(png, 7, 6, 1, px) == 0);
    b = slurp(png, &n);
    CHECK(b && ds_data_load(png, &f) == 0);
    CHECK(ds_image_load_mem(b, n, "body.png", &m) == 0);
    CHECK(same(&f, &m) && m.n == 1 && m.sample.d[0] == 1 && m.sample.d[1] == 6 && m.sample.d[2] == 7);
    ds_dataset_free(&m);
    CHECK(ds_image_load_mem(b, 30, "body.png", &m) != 0 && strstr(ds_last_error(), "body.png"));
    ds_dataset_free(&f);
    free(b);
    return ds_test_summary("mem_readers");
}
