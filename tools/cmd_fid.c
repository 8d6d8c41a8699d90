/* cmd_fid.c — `deepsky fid`: how close generated samples are to real ones,
 * without ImageNet. The Fréchet distance between a deepsky classifier's
 * penultimate-layer features of real images and of samples ("FID with a
 * domain classifier"; src/train/fid.c), next to the same distance between
 * two halves of the real images (the noise floor); with the requested
 * classes of conditional samples, how often the classifier agrees; with
 * the training images, whether samples are copies of them (nearest
 * neighbours in pixel space against the real test images' own distances).
 * docs/cli.md, docs/gan.md. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM 2048      /* features per sample: the covariance's eigendecomposition is O(dim³) (dim 512: 0.6 s) */
#define MAX_CLASSES 1000 /* per-class lists beyond this are left out (printed up to 20) */

typedef struct {
    const char *ckpt, *real, *fake, *fake_labels, *train, *layer, *json;
    int batch, nn_max, splits;
    long seed;
} fid_opts;

/* What was measured (NAN: not measured). */
typedef struct {
    char layer[64];
    int dim, n_real, n_fake, n_half, classes;
    double fid, fid_rr, fid_rr_std, fid_rr_split[64], t_features, t_fid;
    /* --fake-labels */
    double accuracy;
    long *requested, *hit, *predicted, *confusion; /* [classes], [classes], [classes], [classes × classes] */
    /* --train */
    int n_train, nn_fake, nn_real, near_copies, closest_fake, closest_train;
    double nn_median_fake, nn_median_real, nn_p1_real, nn_min_fake, t_nn;
} fid_result;

/* The features' layer: --layer NAME, else the layer before the last [dense]
 * (the input of the classifier's last linear map). */
static int feature_layer(const cli_net *net, const char *ckpt, const char *name)
{
    const ds_model *m = net->model;
    int n = ds_model_num_layers(m), last_dense = -1;
    for (int i = 0; i < n; i++) {
        if (name && !strcmp(ds_model_layer_name(m, i), name)) return i;
        if (!strcmp(ds_model_layer_type(m, i), "dense")) last_dense = i;
    }
    if (!name && last_dense > 0) return last_dense - 1;
    char list[1024] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", ds_model_layer_name(m, i));
    if (name) return -cli_usage("fid: %s has no layer '%s'; its layers are: %s", ckpt, name, list);
    return -cli_usage("fid: %s has no layer before a last [dense] layer; give --layer NAME (%s)", ckpt, list);
}

/* A set of samples for the classifier: any data spec (an NPY file [N, C, H,
 * W] or [N, C·H·W], labels NPY [N] paired), finite, of the model's input
 * shape, in its own units (the normalisation is applied per batch). */
static int load_set(const cli_net *net, const ds_norm *norm, const char *path, const char *labels, const char *opt,
                    ds_dataset *d)
{
    char spec[2 * PATH_MAX + 8];
    if (labels) {
        size_t n = strlen(path);
        if (n < 4 || strcmp(path + n - 4, ".npy") || strchr(path, ',') || strchr(labels, ','))
            return cli_usage("fid: --fake-labels needs --fake as an .npy file, and no commas in either name (%s, %s)",
                             path, labels);
        if (cli_path(spec, sizeof spec, "npy:%s,%s", path, labels)) return 1;
    } else if (cli_path(spec, sizeof spec, "%s", path)) {
        return 1;
    }
    if (ds_data_load_channels(spec, ds_model_input_shape(net->model).d[0], d) != 0)
        return cli_lib_error(opt);
    ds_shape want = ds_model_input_shape(net->model);
    /* flattened samples [N, C·H·W] are the model's [C, H, W] in row-major order */
    if (d->sample.ndim == 1 && want.ndim > 1 && ds_shape_numel(d->sample) == ds_shape_numel(want)) d->sample = want;
    if (cli_check_input(net, d, path) != 0) return 1;
    if (ds_dataset_check_finite(d, path) != 0) return cli_lib_error(opt);
    if (norm->channels && norm->channels != d->sample.d[0])
        return cli_error("%s: the checkpoint's normalisation has %d channels, the data %d", path, norm->channels,
                         d->sample.d[0]);
    return 0;
}

/* Features [n, dim] of the feature node for every sample of d, and (pred
 * not NULL) the classifier's predicted class of each; eval mode. */
static int features(cli_net *net, const ds_norm *norm, ds_node *feat, int dim, const ds_dataset *d, float *out, int *pred)
{
    ds_program *p = &net->prog;
    int h = ds_program_class_head(p), k = p->heads[h].classes, batch = net->batch, rc = 0;
    size_t sample = ds_shape_numel(d->sample);
    float *probs = pred ? malloc(sizeof *probs * (size_t)batch * (size_t)k) : NULL;
    if (pred && !probs) return cli_error("out of memory");
    ds_graph_set_training(net->g, 0);
    for (int off = 0; off < d->n && !rc; off += batch) {
        int b = d->n - off < batch ? d->n - off : batch;
        if (p->labels) memset(ds_node_value(p->labels), 0, (size_t)b * sizeof(float)); /* valid for the loss */
        /* the rows into the input, normalised there by ds_norm_apply: predict's arithmetic, the same floats */
        ds_dataset rows = {.n = b, .sample = d->sample, .x = ds_node_value(p->feeds[0])};
        memcpy(rows.x, d->x + (size_t)off * sample, sizeof *rows.x * (size_t)b * sample);
        if (ds_norm_apply(norm, &rows) != 0 || ds_graph_set_batch(net->g, b) != 0 || ds_graph_forward(net->g) != 0) {
            rc = cli_lib_error(NULL);
            break;
        }
        memcpy(out + (size_t)off * dim, ds_node_value(feat), sizeof *out * (size_t)b * (size_t)dim);
        if (pred) {
            if (ds_program_probs(p, h, b, 0, probs) != 0) rc = cli_lib_error(NULL);
            for (int r = 0; r < b && !rc; r++) pred[off + r] = ds_argmax(probs + (size_t)r * k, k);
        }
    }
    ds_graph_set_batch(net->g, batch);
    free(probs);
    return rc;
}

/* FID of rows a [na, dim] against rows b [nb, dim] */
static int fid_of(const float *a, int na, const float *b, int nb, int dim, double *out)
{
    size_t dd = (size_t)dim * dim;
    double *m1 = malloc(sizeof *m1 * dim), *m2 = malloc(sizeof *m2 * dim);
    double *c1 = malloc(sizeof *c1 * dd), *c2 = malloc(sizeof *c2 * dd);
    int rc = 0;
    if (!m1 || !m2 || !c1 || !c2) rc = cli_error("out of memory (features of %d values)", dim);
    else if (ds_feature_stats(a, na, dim, m1, c1) != 0 || ds_feature_stats(b, nb, dim, m2, c2) != 0 ||
             ds_frechet_distance(dim, m1, c1, m2, c2, out) != 0)
        rc = cli_lib_error("fid");
    free(m1), free(m2), free(c1), free(c2);
    return rc;
}

/* n row indices of 0..total−1 in a seeded random order (the first n of a shuffle) */
static int *sample_rows(int total, long seed)
{
    int *idx = malloc(sizeof *idx * (size_t)total);
    if (!idx) return NULL;
    for (int i = 0; i < total; i++) idx[i] = i;
    ds_rng r;
    ds_rng_seed(&r, (uint64_t)seed);
    ds_rng_shuffle(&r, idx, total);
    return idx;
}

/* rows idx[0..n) of x [*, per] into out */
static void gather(const float *x, size_t per, const int *idx, int n, float *out)
{
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * per, x + (size_t)idx[i] * per, sizeof *out * per);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's (linear) q-th percentile, q in [0, 100]; v sorted in place */
static double percentile(float *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    double pos = q / 100 * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

/* The copy check: nearest training image (pixels, raw units) of up to nn_max fakes and as many real images. */
static int copy_check(const fid_opts *o, const ds_dataset *train, const ds_dataset *real, const ds_dataset *fake,
                      fid_result *r)
{
    size_t per = ds_shape_numel(train->sample);
    int nf = fake->n < o->nn_max ? fake->n : o->nn_max, nr = real->n < o->nn_max ? real->n : o->nn_max, rc = 1;
    int *fi = sample_rows(fake->n, o->seed + 1), *ri = sample_rows(real->n, o->seed + 2), *nn = malloc(sizeof *nn * (size_t)nf);
    float *q = malloc(sizeof *q * per * (size_t)(nf > nr ? nf : nr)), *df = malloc(sizeof *df * (size_t)nf);
    float *dr = malloc(sizeof *dr * (size_t)nr);
    if (!fi || !ri || !nn || !q || !df || !dr) {
        cli_error("out of memory");
        goto done;
    }
    double t0 = ds_now();
    gather(fake->x, per, fi, nf, q);
    if (ds_nearest_neighbors(q, nf, train->x, train->n, (int)per, df, nn) != 0) {
        cli_lib_error("fid --train");
        goto done;
    }
    gather(real->x, per, ri, nr, q);
    if (ds_nearest_neighbors(q, nr, train->x, train->n, (int)per, dr, NULL) != 0) {
        cli_lib_error("fid --train");
        goto done;
    }
    r->t_nn = ds_now() - t0;
    r->nn_fake = nf, r->nn_real = nr, r->n_train = train->n;
    r->nn_min_fake = INFINITY;
    for (int i = 0; i < nf; i++)
        if (df[i] < r->nn_min_fake) r->nn_min_fake = df[i], r->closest_fake = fi[i], r->closest_train = nn[i];
    r->nn_p1_real = percentile(dr, nr, 1);
    r->nn_median_real = percentile(dr, nr, 50);
    r->near_copies = 0;
    for (int i = 0; i < nf; i++) r->near_copies += df[i] < r->nn_p1_real;
    r->nn_median_fake = percentile(df, nf, 50);
    rc = 0;
done:
    free(fi), free(ri), free(nn), free(q), free(df), free(dr);
    return rc;
}

/* The 1st and 99th percentiles of d's values, from up to 200000 of them (evenly strided). */
static int value_range(const ds_dataset *d, float *p1, float *p99)
{
    size_t n = (size_t)d->n * ds_shape_numel(d->sample), step = n / 200000 + 1, m = (n + step - 1) / step;
    float *v = malloc(sizeof *v * m);
    if (!v) return -1;
    for (size_t i = 0; i < m; i++) v[i] = d->x[i * step];
    *p1 = (float)percentile(v, (int)m, 1);
    *p99 = (float)percentile(v, (int)m, 99);
    free(v);
    return 0;
}

/* A GAN's raw [-1, 1] output scored against data in [0, 1] measures the scale, not the samples: said once.
 * Percentiles, not the extremes: survey stamps have tails of single bright pixels. */
static void warn_ranges(const ds_dataset *real, const ds_dataset *fake, const char *fake_path)
{
    float rlo, rhi, flo, fhi;
    if (value_range(real, &rlo, &rhi) != 0 || value_range(fake, &flo, &fhi) != 0) return;
    float slack = 0.5f * (rhi - rlo);
    if (flo < rlo - slack || fhi > rhi + slack)
        fprintf(stderr, "deepsky: warning: %s's values span [%g, %g] (1st to 99th percentile), the real images' "
                        "[%g, %g]: are the samples in the data's units (deepsky sample writes them so)?\n",
                fake_path, (double)flo, (double)fhi, (double)rlo, (double)rhi);
}

static void jnum(FILE *f, const char *key, double v)
{
    if (isfinite(v)) fprintf(f, ",\n  \"%s\": %.10g", key, v);
    else fprintf(f, ",\n  \"%s\": null", key);
}

static void jlist_d(FILE *f, const char *key, const double *v, int n)
{
    fprintf(f, ",\n  \"%s\": [", key);
    for (int k = 0; k < n; k++) fprintf(f, isfinite(v[k]) ? "%s%.10g" : "%snull", k ? ", " : "", v[k]);
    fprintf(f, "]");
}

static void jlist(FILE *f, const char *key, const long *num, const long *den, int n, double scale)
{
    fprintf(f, ",\n  \"%s\": [", key);
    for (int k = 0; k < n; k++) {
        double v = den ? (den[k] ? (double)num[k] / den[k] : NAN) : num[k] * scale;
        if (isfinite(v)) fprintf(f, "%s%.10g", k ? ", " : "", v);
        else fprintf(f, "%snull", k ? ", " : "");
    }
    fprintf(f, "]");
}

static int write_json(const fid_opts *o, const fid_result *r)
{
    ds_atomic a = {0};
    if (ds_atomic_open(&a, o->json) != 0) return cli_lib_error(NULL);
    FILE *f = a.f;
    fprintf(f, "{\n  \"classifier\": ");
    cli_print_json_string(f, o->ckpt);
    fprintf(f, ",\n  \"real\": ");
    cli_print_json_string(f, o->real);
    fprintf(f, ",\n  \"fake\": ");
    cli_print_json_string(f, o->fake);
    fprintf(f, ",\n  \"layer\": ");
    cli_print_json_string(f, r->layer);
    fprintf(f, ",\n  \"dim\": %d", r->dim);
    jnum(f, "fid", r->fid);
    jnum(f, "fid_real_real", r->fid_rr);
    jnum(f, "fid_real_real_std", r->fid_rr_std);
    jlist_d(f, "fid_real_real_splits", r->fid_rr_split, o->splits);
    fprintf(f, ",\n  \"n_real\": %d,\n  \"n_fake\": %d,\n  \"n_half\": %d", r->n_real, r->n_fake, r->n_half);
    if (r->requested) {
        jnum(f, "accuracy", r->accuracy);
        jlist(f, "per_class_accuracy", r->hit, r->requested, r->classes, 0);
        jlist(f, "requested", r->requested, NULL, r->classes, 1);
        jlist(f, "predicted_share", r->predicted, NULL, r->classes, 1.0 / r->n_fake);
        fprintf(f, ",\n  \"confusion\": [");
        for (int k = 0; k < r->classes; k++) {
            fprintf(f, "%s[", k ? ", " : "");
            for (int j = 0; j < r->classes; j++) fprintf(f, "%s%ld", j ? ", " : "", r->confusion[(size_t)k * r->classes + j]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    } else { /* the keys are always there: null when not measured */
        fprintf(f, ",\n  \"accuracy\": null,\n  \"per_class_accuracy\": null,\n  \"requested\": null,\n"
                   "  \"predicted_share\": null,\n  \"confusion\": null");
    }
    if (r->nn_fake) {
        fprintf(f, ",\n  \"n_train\": %d,\n  \"nn_n_fake\": %d,\n  \"nn_n_real\": %d", r->n_train, r->nn_fake, r->nn_real);
        jnum(f, "nn_median_fake", r->nn_median_fake);
        jnum(f, "nn_median_real", r->nn_median_real);
        jnum(f, "nn_ratio", r->nn_median_fake / r->nn_median_real);
        jnum(f, "nn_p1_real", r->nn_p1_real);
        jnum(f, "nn_min_fake", r->nn_min_fake);
        fprintf(f, ",\n  \"nn_closest_fake\": %d,\n  \"nn_closest_train\": %d", r->closest_fake, r->closest_train);
        fprintf(f, ",\n  \"near_copies\": %d", r->near_copies);
        jnum(f, "seconds_nn", r->t_nn);
    } else {
        static const char *const keys[] = {"n_train", "nn_n_fake", "nn_n_real", "nn_median_fake", "nn_median_real",
                                           "nn_ratio", "nn_p1_real", "nn_min_fake", "nn_closest_fake",
                                           "nn_closest_train", "near_copies", "seconds_nn"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) fprintf(f, ",\n  \"%s\": null", keys[k]);
    }
    jnum(f, "seconds_features", r->t_features);
    jnum(f, "seconds_fid", r->t_fid);
    fprintf(f, "\n}\n");
    if (ds_atomic_commit(&a) != 0) return cli_lib_error(NULL);
    return 0;
}

static void print_classes(const cli_net *net, const ds_dataset *fake, const fid_result *r)
{
    ds_dataset names = {.classes = net->n_class_names, .class_names = net->class_names};
    const ds_dataset *nd = net->class_names ? &names : fake;
    char b[64];
    printf("\nclassified as requested: %.4f (of %d samples; the classifier's most probable class)\n", r->accuracy, r->n_fake);
    printf("%-16s %10s %10s %12s\n", "class", "requested", "accuracy", "predicted");
    for (int k = 0; k < r->classes && k < 20; k++)
        printf("%-16.16s %10ld %10.4f %12.4f\n", cli_class_name(nd, k, b, sizeof b), r->requested[k],
               r->requested[k] ? (double)r->hit[k] / r->requested[k] : NAN, (double)r->predicted[k] / r->n_fake);
    if (r->classes > 20) printf("(%d more classes in --json)\n", r->classes - 20);
}

static int run_fid(const fid_opts *o)
{
    cli_net net;
    ds_norm norm = {0};
    ds_dataset real = {0}, fake = {0}, train = {0};
    fid_result r = {.fid = NAN, .fid_rr = NAN, .accuracy = NAN};
    float *fr = NULL, *ff = NULL, *h1 = NULL, *h2 = NULL;
    int *pred = NULL, *perm = NULL, rc = 1;
    if (cli_net_from_checkpoint_ex(o->ckpt, o->batch, &net, &norm, CLI_NET_KEEP_LAYERS) != 0) return 1;
    if (ds_model_num_inputs(net.model) != 1) {
        cli_error("fid: %s has %d inputs; fid takes a one-input image classifier", o->ckpt, ds_model_num_inputs(net.model));
        goto done;
    }
    int li = feature_layer(&net, o->ckpt, o->layer);
    if (li < 0) goto done;
    ds_node *feat = ds_model_layer_output(net.model, li);
    snprintf(r.layer, sizeof r.layer, "%s", ds_model_layer_name(net.model, li));
    r.dim = (int)(ds_node_numel(feat) / (size_t)net.batch);
    if (r.dim > MAX_DIM) {
        cli_usage("fid: layer %s has %d values per sample; FID's covariance is [%d, %d] and its eigendecomposition "
                  "grows as the cube: pick a layer of at most %d values (--layer; the dense layers)",
                  r.layer, r.dim, r.dim, r.dim, MAX_DIM);
        goto done;
    }
    if (load_set(&net, &norm, o->real, NULL, "--real", &real) != 0 ||
        load_set(&net, &norm, o->fake, o->fake_labels, "--fake", &fake) != 0)
        goto done;
    if (real.n < 4) {
        cli_error("fid: %s has %d samples; the real-vs-real floor needs two halves of at least 2", o->real, real.n);
        goto done;
    }
    if (fake.n < 2) {
        cli_error("fid: %s has %d sample%s; a covariance needs at least 2", o->fake, fake.n, fake.n == 1 ? "" : "s");
        goto done;
    }
    warn_ranges(&real, &fake, o->fake);
    if (r.dim >= real.n / 2 || r.dim >= fake.n)
        fprintf(stderr, "deepsky: warning: %d features but %d real (halves of %d) and %d fake samples: the covariances "
                        "are rank-deficient and FID is dominated by its bias; use more samples or a smaller layer\n",
                r.dim, real.n, real.n / 2, fake.n);
    r.n_real = real.n, r.n_fake = fake.n, r.n_half = real.n / 2;
    r.classes = net.prog.heads[ds_program_class_head(&net.prog)].classes;
    if (o->fake_labels) {
        for (int i = 0; i < fake.n; i++)
            if (fake.y[i] < 0 || fake.y[i] >= r.classes || fake.y[i] != (int)fake.y[i]) {
                cli_error("%s: label %g of sample %d is not a class of %s (0..%d)", o->fake_labels, (double)fake.y[i], i,
                          o->ckpt, r.classes - 1);
                goto done;
            }
        if (r.classes > MAX_CLASSES) {
            cli_error("fid: %d classes; --fake-labels handles up to %d", r.classes, MAX_CLASSES);
            goto done;
        }
    }
    size_t dim = (size_t)r.dim;
    if (!(fr = malloc(sizeof *fr * dim * (size_t)real.n)) || !(ff = malloc(sizeof *ff * dim * (size_t)fake.n)) ||
        !(pred = malloc(sizeof *pred * (size_t)fake.n)) || !(h1 = malloc(sizeof *h1 * dim * (size_t)(real.n - r.n_half))) ||
        !(h2 = malloc(sizeof *h2 * dim * (size_t)r.n_half))) {
        cli_error("out of memory (features of %zu values)", dim);
        goto done;
    }
    double t0 = ds_now();
    if (features(&net, &norm, feat, r.dim, &real, fr, NULL) != 0 || features(&net, &norm, feat, r.dim, &fake, ff, pred) != 0)
        goto done;
    r.t_features = ds_now() - t0;
    t0 = ds_now();
    if (fid_of(fr, real.n, ff, fake.n, r.dim, &r.fid) != 0) goto done;
    /* the noise floor: two random halves of the real images, over several splits (one split's value varies
     * by tens of percent); the same shuffles for a given --seed */
    double sum = 0, sum2 = 0;
    for (int k = 0; k < o->splits; k++) {
        free(perm);
        if (!(perm = sample_rows(real.n, o->seed + 1000 * k))) {
            cli_error("out of memory");
            goto done;
        }
        gather(fr, dim, perm, r.n_half, h2);
        gather(fr, dim, perm + r.n_half, real.n - r.n_half, h1);
        if (fid_of(h1, real.n - r.n_half, h2, r.n_half, r.dim, &r.fid_rr_split[k]) != 0) goto done;
        sum += r.fid_rr_split[k], sum2 += r.fid_rr_split[k] * r.fid_rr_split[k];
    }
    r.fid_rr = sum / o->splits;
    r.fid_rr_std = o->splits > 1 ? sqrt(fmax(0, (sum2 - sum * sum / o->splits) / (o->splits - 1))) : NAN;
    r.t_fid = ds_now() - t0;
    printf("fid %s: features of layer %s (%d values), eval mode, the checkpoint's normalisation\n", o->ckpt, r.layer, r.dim);
    printf("real %s: %d samples; fake %s: %d samples\n\n", o->real, real.n, o->fake, fake.n);
    printf("FID real vs fake   %12.4f   (n %d / %d)\n", r.fid, real.n, fake.n);
    printf("FID real vs real   %12.4f   (two random halves of the real set, n %d / %d: the noise floor", r.fid_rr,
           real.n - r.n_half, r.n_half);
    if (o->splits > 1) printf("; the mean of %d splits, std %.4f", o->splits, r.fid_rr_std);
    printf(")\n");
    printf("                                   (FID's bias falls as 1/n: the floor at n %d / %d is about half this)\n",
           real.n, real.n);
    if (o->fake_labels) {
        size_t k = (size_t)r.classes;
        if (!(r.requested = calloc(k, sizeof(long))) || !(r.hit = calloc(k, sizeof(long))) ||
            !(r.predicted = calloc(k, sizeof(long))) || !(r.confusion = calloc(k * k, sizeof(long)))) {
            cli_error("out of memory");
            goto done;
        }
        long hits = 0;
        for (int i = 0; i < fake.n; i++) {
            int want = (int)fake.y[i];
            r.requested[want]++, r.predicted[pred[i]]++, r.confusion[(size_t)want * k + (size_t)pred[i]]++;
            if (pred[i] == want) r.hit[want]++, hits++;
        }
        r.accuracy = (double)hits / fake.n;
        print_classes(&net, &fake, &r);
    }
    if (o->train) {
        if (load_set(&net, &norm, o->train, NULL, "--train", &train) != 0 || copy_check(o, &train, &real, &fake, &r) != 0)
            goto done;
        printf("\nnearest training image (pixels, the data's units; %d training images):\n", train.n);
        printf("  median distance, fake to train   %10.4f   (%d samples)\n", r.nn_median_fake, r.nn_fake);
        printf("  median distance, real to train   %10.4f   (%d samples of %s)\n", r.nn_median_real, r.nn_real, o->real);
        printf("  ratio fake / real                %10.4f   (well below 1: samples sit on training images)\n",
               r.nn_median_fake / r.nn_median_real);
        printf("  near copies                      %10d   (fakes closer to a training image than 1 %% of real ones: %.4f)\n",
               r.near_copies, r.nn_p1_real);
        printf("  closest fake                     %10.4f   (fake %d, training image %d)\n", r.nn_min_fake,
               r.closest_fake, r.closest_train);
    }
    printf("\n%.2f s features, %.2f s FID", r.t_features, r.t_fid);
    if (o->train) printf(", %.2f s nearest neighbours", r.t_nn);
    printf("\n");
    if (o->json) {
        if (write_json(o, &r) != 0) goto done;
        printf("wrote %s\n", o->json);
    }
    rc = 0;
done:
    free(fr), free(ff), free(h1), free(h2), free(pred), free(perm);
    free(r.requested), free(r.hit), free(r.predicted), free(r.confusion);
    ds_dataset_free(&real), ds_dataset_free(&fake), ds_dataset_free(&train);
    ds_norm_free(&norm);
    cli_net_free(&net);
    return rc;
}

static int cmd_fid(int argc, char **argv)
{
    fid_opts o = {.batch = 256, .nn_max = 2000, .seed = 1, .splits = 5};
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char **str = !strcmp(argv[i], "--classifier")    ? &o.ckpt
                           : !strcmp(argv[i], "--real")        ? &o.real
                           : !strcmp(argv[i], "--fake")        ? &o.fake
                           : !strcmp(argv[i], "--fake-labels") ? &o.fake_labels
                           : !strcmp(argv[i], "--train")       ? &o.train
                           : !strcmp(argv[i], "--layer")       ? &o.layer
                           : !strcmp(argv[i], "--json")        ? &o.json
                                                               : NULL;
        if (str) {
            const char *opt = argv[i];
            cli_opt(argc, argv, &i, opt, str);
            if (!*str || !**str) return cli_usage("fid: %s needs a value", opt);
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 16, &o.batch)) return 1;
        } else if (cli_opt(argc, argv, &i, "--nn-max", &v)) {
            if (cli_parse_int("--nn-max", v, 1, INT_MAX, &o.nn_max)) return 1;
        } else if (cli_opt(argc, argv, &i, "--splits", &v)) {
            if (cli_parse_int("--splits", v, 1, 64, &o.splits)) return 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            int s;
            if (cli_parse_int("--seed", v, 0, INT_MAX, &s)) return 1;
            o.seed = s;
        } else if (argv[i][0] == '-') {
            return cli_usage("fid: unknown option '%s' (see deepsky fid --help)", argv[i]);
        } else {
            return cli_usage("fid: unexpected argument '%s'", argv[i]);
        }
    }
    if (!o.ckpt || !o.real || !o.fake)
        return cli_usage("fid: usage: deepsky fid --classifier CKPT --real REAL.npy --fake FAKE.npy [options]");
    return run_fid(&o);
}

const cli_command cli_cmd_fid = {
    "fid",
    cmd_fid,
    "sample quality: FID with a domain classifier, class agreement, copies",
    "usage: deepsky fid --classifier CKPT --real REAL.npy --fake FAKE.npy [options]\n"
    "\n"
    "  --classifier CKPT   a deepsky classifier trained on the real data (its features, eval mode,\n"
    "                      its normalisation)\n"
    "  --real FILE         real images (the test set): NPY [N, C, H, W] or [N, C*H*W], or any data spec\n"
    "  --fake FILE         generated samples, in the same units (deepsky sample's output)\n"
    "  --fake-labels FILE  NPY [N]: the class each sample was asked for (a conditional GAN): the\n"
    "                      share the classifier assigns to that class, per class too\n"
    "  --train FILE        the generator's training images: each sample's distance to the nearest\n"
    "                      (pixels) against the real images' own, and the near copies\n"
    "  --layer NAME        the features' layer (default: the one before the last [dense] layer)\n"
    "  --nn-max N          samples of fake and of real in the copy check (default 2000, random)\n"
    "  --batch N           samples per forward pass (default 256)\n"
    "  --splits K          random halves of REAL the noise floor is averaged over (default 5)\n"
    "  --seed N            the real set's halves and the copy check's samples (default 1)\n"
    "  --json FILE         every number as one JSON object (written atomically)\n"
    "\n"
    "FID real vs real is the distance between two random halves of REAL (the mean\n"
    "of --splits splits): the noise floor, at half the samples. FID's bias falls\n"
    "as 1/n, so compare real vs fake at equal n, and the floor at n/2 with half\n"
    "REAL against as many fakes.\n",
    NULL,
};
