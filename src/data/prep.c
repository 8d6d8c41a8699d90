/* prep.c — what happens to a dataset after loading: the finite check, the
 * validation split and normalisation (what the loaders share is in files.c). */
#include "data.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ds_dataset_check_finite(const ds_dataset *d, const char *what)
{
    size_t per = ds_shape_numel(d->sample);
    if (!what) what = "data";
    for (int i = 0; i < d->n; i++) {
        const float *row = d->x + (size_t)i * per;
        for (size_t j = 0; j < per; j++)
            if (!isfinite(row[j]))
                return ds_fail("%s: sample %d, element %zu is %s", what, i, j,
                               isnan(row[j]) ? "NaN" : row[j] > 0 ? "+Inf" : "-Inf");
        if (d->y && !isfinite(d->y[i]))
            return ds_fail("%s: sample %d, label is %s", what, i,
                           isnan(d->y[i]) ? "NaN" : d->y[i] > 0 ? "+Inf" : "-Inf");
    }
    return 0;
}

/* dst ← the samples idx[0..n) of src, with a copy of its class names. */
static int take(const ds_dataset *src, const int *idx, int n, ds_dataset *dst)
{
    size_t per = ds_shape_numel(src->sample);
    if (ds_dataset_alloc(dst, n, src->sample, "split")) return -1;
    for (int i = 0; i < n; i++) {
        memcpy(dst->x + (size_t)i * per, src->x + (size_t)idx[i] * per, per * sizeof *dst->x);
        dst->y[i] = src->y ? src->y[idx[i]] : 0;
    }
    if (src->class_names) {
        /* calloc'd, so a partial copy frees cleanly */
        char **names = calloc((size_t)src->classes, sizeof *names);
        if (!names) goto oom;
        dst->class_names = names;
        dst->classes = src->classes;
        for (int c = 0; c < src->classes; c++)
            if (!(names[c] = strdup(src->class_names[c]))) goto oom;
    }
    dst->classes = src->classes;
    if (src->n_fields) { /* the rows of every field go with their samples */
        if (!(dst->fields = calloc((size_t)src->n_fields, sizeof *dst->fields))) goto oom;
        dst->n_fields = src->n_fields;
        for (int k = 0; k < src->n_fields; k++) {
            const ds_field *f = &src->fields[k];
            size_t fp = ds_shape_numel(f->sample);
            ds_field *o = &dst->fields[k];
            o->sample = f->sample;
            if (!(o->name = strdup(f->name)) || !(o->x = malloc((fp ? fp * (size_t)n : 1) * sizeof *o->x))) goto oom;
            for (int i = 0; i < n; i++) memcpy(o->x + (size_t)i * fp, f->x + (size_t)idx[i] * fp, fp * sizeof *o->x);
        }
    }
    return 0;
oom:
    ds_dataset_free(dst);
    return ds_fail("split: out of memory for the class names or fields");
}

int ds_dataset_split(const ds_dataset *d, float frac, uint64_t seed, ds_dataset *train,
                     ds_dataset *val)
{
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!(frac > 0 && frac < 1))
        return ds_fail("validation split %g: must lie strictly between 0 and 1", (double)frac);
    int nv = (int)lround((double)frac * d->n), nt = d->n - nv;
    if (nv < 1 || nt < 1)
        return ds_fail("validation split %g of %d samples leaves %d for training and %d for "
                       "validation; both need at least one", (double)frac, d->n, nt, nv);
    int *perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm) return ds_fail("split: out of memory for %d samples", d->n);
    for (int i = 0; i < d->n; i++) perm[i] = i;
    ds_rng r;
    ds_rng_seed(&r, seed);
    ds_rng_shuffle(&r, perm, d->n);
    int rc = take(d, perm, nt, train);
    if (rc == 0 && (rc = take(d, perm + nt, nv, val)) != 0) ds_dataset_free(train);
    free(perm);
    return rc;
}

/* Samples [C, …] normalise per channel over the rest; [F] per feature. */
static void norm_layout(const ds_dataset *d, int *channels, size_t *inner)
{
    size_t per = ds_shape_numel(d->sample);
    *channels = d->sample.ndim > 0 ? d->sample.d[0] : 1;
    *inner = *channels > 0 ? per / (size_t)*channels : 0;
}

int ds_norm_compute(const ds_dataset *d, ds_norm *out)
{
    memset(out, 0, sizeof *out);
    int C;
    size_t inner;
    norm_layout(d, &C, &inner);
    if (d->n <= 0 || C <= 0 || inner == 0)
        return ds_fail("normalisation: empty dataset (%d samples)", d->n);
    double *sum = calloc((size_t)C, sizeof *sum), *sq = calloc((size_t)C, sizeof *sq);
    out->mean = malloc((size_t)C * sizeof *out->mean);
    out->std = malloc((size_t)C * sizeof *out->std);
    if (!sum || !sq || !out->mean || !out->std) {
        free(sum), free(sq), ds_norm_free(out);
        return ds_fail("normalisation: out of memory for %d channels", C);
    }
    /* Two passes in double: the mean, then Σ(x − mean)², population std. */
    double count = (double)d->n * (double)inner;
    for (int i = 0; i < d->n; i++)
        for (int c = 0; c < C; c++) {
            const float *p = d->x + ((size_t)i * C + c) * inner;
            for (size_t j = 0; j < inner; j++) sum[c] += p[j];
        }
    for (int c = 0; c < C; c++) sum[c] /= count;
    for (int i = 0; i < d->n; i++)
        for (int c = 0; c < C; c++) {
            const float *p = d->x + ((size_t)i * C + c) * inner;
            for (size_t j = 0; j < inner; j++) sq[c] += (p[j] - sum[c]) * (p[j] - sum[c]);
        }
    /* A constant channel or feature gets scale 1 (scikit-learn's StandardScaler: a variance within
     * the round-off bound n·eps·var + (n·mean·eps)², or a std under 10·eps, is zero): a value it
     * never had in training then enters the model at its own size, not multiplied by 10^6. */
    for (int c = 0; c < C; c++) {
        double var = sq[c] / count, sd = sqrt(var), ne = count * DBL_EPSILON;
        out->mean[c] = (float)sum[c];
        out->std[c] = var <= ne * var + (ne * sum[c]) * (ne * sum[c]) || sd < 10 * DBL_EPSILON ? 1.0f : (float)sd;
    }
    out->channels = C;
    free(sum), free(sq);
    return 0;
}

int ds_norm_apply(const ds_norm *nm, ds_dataset *d)
{
    int C;
    size_t inner;
    norm_layout(d, &C, &inner);
    if (!nm || nm->channels == 0) return 0;
    /* applying a mismatched norm would read past mean/std */
    if (C != nm->channels || !nm->mean || !nm->std)
        return ds_fail("the normalisation has %d channels but the samples %d", nm->channels, C);
    /* two passes, so a failure leaves d as it was */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < d->n; i++)
            for (int c = 0; c < C; c++) {
                float *p = d->x + ((size_t)i * C + c) * inner;
                double m = nm->mean[c], s = nm->std[c];
                for (size_t j = 0; j < inner; j++) {
                    double v = ((double)p[j] - m) / s;
                    /* finite data can leave float range here; an Inf input makes NaN outputs */
                    if (!pass && !(fabs(v) <= FLT_MAX))
                        return ds_fail("sample %d, element %zu: %g normalises to %g ((x - %g) / %g), beyond "
                                       "float range; the data is far outside the range of the training data",
                                       i, (size_t)c * inner + j, (double)p[j], v, m, s);
                    if (pass) p[j] = (float)v;
                }
            }
    return 0;
}

void ds_norm_free(ds_norm *nm)
{
    if (!nm) return;
    free(nm->mean);
    free(nm->std);
    memset(nm, 0, sizeof *nm);
}
