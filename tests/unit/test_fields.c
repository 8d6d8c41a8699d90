/* test_fields.c — a dataset's other fields stay paired with their samples:
 * through ds_dataset_split (--val-split) and through the shuffling,
 * augmenting loader (ds_loader_next_fields). A field row that drifted to
 * another sample would train wide & deep on the wrong metadata, silently. */
#include "deepsky.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* sample i: x all equal to i (a 1×2×2 image), label i % 2, field [3] = (i, 2i, 3i) */
static void make(ds_dataset *d, int n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->sample = ds_shape_of(3, 1, 2, 2);
    d->classes = 2;
    d->x = malloc(sizeof(float) * 4 * (size_t)n);
    d->y = malloc(sizeof(float) * (size_t)n);
    d->fields = calloc(1, sizeof *d->fields);
    d->n_fields = 1;
    d->fields[0].name = strdup("meta");
    d->fields[0].sample = ds_shape_of(1, 3);
    d->fields[0].x = malloc(sizeof(float) * 3 * (size_t)n);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++) d->x[4 * i + k] = (float)i;
        d->y[i] = (float)(i % 2);
        for (int k = 0; k < 3; k++) d->fields[0].x[3 * i + k] = (float)(i * (k + 1));
    }
}

static int paired(const float *x, const float *y, const float *f, int b)
{
    for (int r = 0; r < b; r++) {
        float i = x[4 * r];
        if (y[r] != (float)((int)i % 2) || f[3 * r] != i || f[3 * r + 1] != 2 * i || f[3 * r + 2] != 3 * i) return 0;
    }
    return 1;
}

int main(void)
{
    ds_dataset d, tr, va;
    make(&d, 101);
    CHECK(ds_dataset_split(&d, 0.3f, 7, &tr, &va) == 0);
    CHECK(tr.n_fields == 1 && va.n_fields == 1 && !strcmp(va.fields[0].name, "meta"));
    CHECK(tr.n + va.n == 101);
    CHECK(paired(tr.x, tr.y, tr.fields[0].x, tr.n));
    CHECK(paired(va.x, va.y, va.fields[0].x, va.n));
    ds_loader *l = ds_loader_new(&tr, 16, 1, 3);
    CHECK(l && ds_loader_set_augment(l, DS_AUG_FLIP | DS_AUG_ROT90) == 0);
    float x[16 * 4], y[16], f[16 * 3], *dst[2] = {x, f};
    int ok = 1, seen = 0, b;
    for (int e = 0; e < 3; e++) {
        ds_loader_reset(l);
        while ((b = ds_loader_next_fields(l, dst, y)) > 0) ok &= paired(x, y, f, b), seen += b;
    }
    CHECK(ok && seen == 3 * tr.n);
    CHECK(ds_loader_set_balanced(l, 1) == 0);
    ds_loader_reset(l);
    ok = 1;
    while ((b = ds_loader_next_fields(l, dst, y)) > 0) ok &= paired(x, y, f, b);
    CHECK(ok);
    ds_loader_free(l);
    ds_dataset_free(&d);
    ds_dataset_free(&tr);
    ds_dataset_free(&va);
    return ds_test_summary("fields");
}
