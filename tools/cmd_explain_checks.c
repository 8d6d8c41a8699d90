/* cmd_explain_checks.c — `deepsky explain CKPT --data SPEC --sanity` and
 * `--footprint FILE`: checks of the attribution maps themselves
 * (docs/explain.md), not pictures of them. --sanity is the cascading
 * model-randomisation test of Adebayo et al. 2018 (src/train/sanity.c);
 * --footprint the pointing game on simulated stamps, whose footprints
 * `deepsky simulate --footprint` writes: the share of each map's mass on
 * the source, against what maps that ignore the image would get. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ckpt, *spec, *out, *footprint, *layer, *cls;
    int sanity, max, batch, methods[DS_EXPLAIN_METHODS], n_methods;
    ds_explain_cfg e;
    uint64_t seed;
} checks_opts;

static int parse_methods(const char *v, checks_opts *o)
{
    if (!v || !*v) return cli_usage("--method needs a value (a method, a comma-separated list, or all)");
    o->n_methods = 0;
    if (!strcmp(v, "all")) {
        for (int k = 0; k < DS_EXPLAIN_METHODS; k++) o->methods[o->n_methods++] = k;
        return 0;
    }
    char buf[512];
    if (strlen(v) >= sizeof buf) return cli_usage("--method: too long");
    strcpy(buf, v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int m = ds_explain_method_parse(t);
        if (m < 0) {
            char names[256] = "";
            for (int k = 0; k < DS_EXPLAIN_METHODS; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                         ds_explain_method_name(k));
            return cli_usage("--method: unknown method '%s' (methods: %s, or all)", t, names);
        }
        for (int k = 0; k < o->n_methods; k++)
            if (o->methods[k] == m) return cli_usage("--method: '%s' given twice", t);
        o->methods[o->n_methods++] = m;
    }
    return o->n_methods ? 0 : cli_usage("--method needs a value");
}

static int parse(int argc, char **argv, checks_opts *o)
{
    *o = (checks_opts){.max = 0, .batch = 64, .seed = 0, .cls = "pred"}; /* deepsky explain's defaults */
    for (int i = 1; i < argc; i++) {
        const char *v;
        int iv;
        if (!strcmp(argv[i], "--sanity")) o->sanity = 1;
        else if (cli_opt(argc, argv, &i, "--footprint", &o->footprint)) {
            if (!o->footprint || !*o->footprint) return cli_usage("--footprint needs a file (footprint.npy)");
        } else if (cli_opt(argc, argv, &i, "--data", &o->spec)) {
            if (!o->spec || !*o->spec) return cli_usage("--data needs a value");
        } else if (cli_opt(argc, argv, &i, "--out", &o->out)) {
            if (!o->out || !*o->out) return cli_usage("--out needs a value");
        } else if (cli_opt(argc, argv, &i, "--method", &v)) {
            if (parse_methods(v, o)) return 2;
        } else if (cli_opt(argc, argv, &i, "--layer", &o->layer)) {
            if (!o->layer || !*o->layer) return cli_usage("--layer needs a layer's name");
        } else if (cli_opt(argc, argv, &i, "--class", &o->cls)) {
            if (!o->cls || !*o->cls) return cli_usage("--class needs label, pred or a class");
        } else if (cli_opt(argc, argv, &i, "--max", &v)) {
            if (cli_parse_int("--max", v, 1, INT_MAX, &o->max)) return 2;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 4096, &o->batch)) return 2;
        } else if (cli_opt(argc, argv, &i, "--samples", &v)) {
            if (cli_parse_int("--samples", v, 1, 100000, &o->e.samples)) return 2;
        } else if (cli_opt(argc, argv, &i, "--noise", &v)) {
            if (cli_parse_float("--noise", v, 1e-6, 10, &o->e.noise)) return 2;
        } else if (cli_opt(argc, argv, &i, "--steps", &v)) {
            if (cli_parse_int("--steps", v, 1, 100000, &o->e.steps)) return 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, 0, INT_MAX, &iv)) return 2;
            o->seed = (uint64_t)iv;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("explain --sanity/--footprint: unknown option '%s' (see deepsky explain --help)", argv[i]);
        } else if (!o->ckpt) o->ckpt = argv[i];
        else return cli_usage("explain --sanity/--footprint: one checkpoint, got '%s' too", argv[i]);
    }
    if (!o->ckpt) return cli_usage("explain: a checkpoint is required (deepsky explain CKPT --data SPEC --sanity)");
    if (!o->spec) return cli_usage("explain --sanity/--footprint: --data SPEC is required");
    if (o->sanity && o->footprint) return cli_usage("explain: --sanity and --footprint are separate runs; give one");
    if (!o->max) o->max = o->sanity ? 100 : 1000;
    if (!o->n_methods)
        for (int k = 0; k < DS_EXPLAIN_METHODS; k++) o->methods[o->n_methods++] = k;
    o->e.seed = o->seed;
    return 0;
}

/* The first input's rows in their own units (ds_explain normalises), the
 * labels numbered by the checkpoint's class names. */
static int load_raw(cli_net *net, const char *spec, ds_dataset *d)
{
    if (ds_model_num_inputs(net->model) != 1)
        return cli_error("explain --sanity/--footprint: the model has %d inputs; these checks take one",
                         ds_model_num_inputs(net->model));
    cli_specs all = {{spec}, 1};
    if (cli_data_bind(net->model, &all, 2, d) != 0) return 1;
    if (ds_dataset_map_classes(d, (const char *const *)net->class_names, net->n_class_names, spec) != 0)
        return cli_lib_error(NULL);
    if (cli_check_input(net, d, spec) != 0) return 1;
    if (d->sample.ndim != 3) return cli_error("%s: the checks need images [C, H, W]", spec);
    return 0;
}

/* class to explain per row: the label, the prediction, or one class for all */
static int classes_of(cli_net *net, const checks_opts *o, const ds_dataset *d, int n, float *cls)
{
    int nc = ds_model_classes(net->model);
    if (!strcmp(o->cls, "label")) {
        if (!d->y) return cli_error("--class label: %s has no labels", o->spec);
        for (int i = 0; i < n; i++) {
            if (!(d->y[i] >= 0 && d->y[i] < nc))
                return cli_error("%s: sample %d has label %g, not a class of the model", o->spec, i, d->y[i]);
            cls[i] = d->y[i];
        }
        return 0;
    }
    if (!strcmp(o->cls, "pred")) {
        float *probs = malloc(sizeof(float) * (size_t)nc * d->n);
        if (!probs) return cli_error("out of memory");
        ds_dataset view = *d;
        view.n = n;
        /* cli_predict feeds the rows as they are: normalise a copy as training did */
        view.x = malloc(sizeof(float) * (size_t)n * d->sample.d[0] * d->sample.d[1] * d->sample.d[2]);
        if (!view.x) return free(probs), cli_error("out of memory");
        memcpy(view.x, d->x, sizeof(float) * (size_t)n * d->sample.d[0] * d->sample.d[1] * d->sample.d[2]);
        view.class_names = NULL, view.n_fields = 0;
        int rc = ds_norm_apply(&net->in_norm[0], &view) != 0 ? cli_lib_error(NULL) : cli_predict(net, &view, probs);
        free(view.x);
        for (int i = 0; !rc && i < n; i++) {
            int best = 0;
            for (int k = 1; k < nc; k++)
                if (probs[(size_t)i * nc + k] > probs[(size_t)i * nc + best]) best = k;
            cls[i] = (float)best;
        }
        free(probs);
        return rc;
    }
    int k = -1;
    for (int j = 0; j < net->n_class_names; j++)
        if (!strcmp(net->class_names[j], o->cls)) k = j;
    if (k < 0 && cli_parse_int("--class", o->cls, 0, nc - 1, &k)) return 2;
    for (int i = 0; i < n; i++) cls[i] = (float)k;
    return 0;
}

/* --layer's node; without it the last convolution's output with a spatial
 * map, as Selvaraju et al. (ds_explain's own default, the last 4-D node,
 * may be a global pooling's [N, C, 1, 1], whose Grad-CAM is a constant),
 * or failing one the last 4-D layer output with a spatial map */
static int find_layer(cli_net *net, const checks_opts *o, ds_node **node)
{
    const char *name = o->layer;
    int say = 0;
    for (int j = 0; j < o->n_methods; j++) say |= o->methods[j] == DS_EXPLAIN_GRADCAM;
    *node = NULL;
    if (!name) {
        for (int pass = 0; pass < 2 && !*node; pass++)
            for (int i = ds_model_num_layers(net->model) - 1; i >= 0 && !*node; i--) {
                ds_shape s = ds_node_shape(ds_model_layer_output(net->model, i));
                if (s.ndim == 4 && s.d[2] * s.d[3] > 1 && (pass || !strcmp(ds_model_layer_type(net->model, i), "conv")))
                    *node = ds_model_layer_output(net->model, i), name = ds_model_layer_name(net->model, i);
            }
        if (*node && say) printf("gradcam on layer %s (--layer)\n", name);
        return 0;
    }
    char list[512] = "";
    for (int i = 0; i < ds_model_num_layers(net->model); i++) {
        ds_node *out = ds_model_layer_output(net->model, i);
        if (!strcmp(ds_model_layer_name(net->model, i), name)) {
            if (ds_node_shape(out).ndim != 4)
                return cli_error("--layer %s: a %s layer, not a convolution's [N, C, H, W] output", name,
                                 ds_model_layer_type(net->model, i));
            *node = out;
            return 0;
        }
        if (ds_node_shape(out).ndim == 4)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "",
                     ds_model_layer_name(net->model, i));
    }
    return cli_error("--layer %s: no such layer in %s (layers with [N, C, H, W] outputs: %s)", name,
                     ds_model_file(net->model), *list ? list : "none");
}

static FILE *csv_open(ds_atomic *f, const char *dir, const char *name, char *path, size_t size)
{
    if (cli_mkdirs(dir) != 0) return NULL;
    if (cli_path(path, size, "%s/%s", dir, name) != 0) return NULL;
    if (ds_atomic_open(f, path) != 0) return cli_lib_error(NULL), NULL;
    return f->f;
}

static int run_sanity(cli_net *net, const checks_opts *o, const float *x, int n, const float *cls)
{
    /* the re-initialisation's seed: not the seed the model was trained from ([train] seed = 1 in the zoo) */
    ds_sanity_cfg c = {.methods = o->methods, .n_methods = o->n_methods, .explain = o->e, .batch = net->batch,
                       .seed = o->seed + 1000003};
    ds_sanity_result r;
    int layers[256], stages = 1 + ds_param_layers_top_down(net->model, net->g, layers, 256);
    ds_shape s = ds_node_shape(net->x);
    size_t hw = (size_t)s.d[2] * s.d[3];
    if (o->out) { /* the first images' maps at every stage, for pictures */
        c.keep = n < 16 ? n : 16;
        if (!(c.maps = calloc((size_t)stages * o->n_methods * c.keep * hw, sizeof(float))))
            return cli_error("out of memory");
    }
    if (ds_sanity_cascade(&net->prog, net->model, &net->in_norm[0], &c, x, n, cls, &r) != 0) {
        free(c.maps);
        return cli_lib_error(NULL);
    }
    int w = 7;
    for (int s = 0; s < r.n_stages; s++)
        if ((int)strlen(r.stage[s]) > w) w = (int)strlen(r.stage[s]);
    printf("sanity check (cascading randomisation, Adebayo et al. 2018): Spearman rank correlation of |map| with\n"
           "the trained model's, mean ± std over %d images; each row re-initialises one more layer from the top\n",
           n);
    printf("%-*s", w, "stage");
    for (int j = 0; j < r.n_methods; j++) printf("  %20s", ds_explain_method_name(o->methods[j]));
    printf("\n");
    int undefined = 0;
    for (int s = 0; s < r.n_stages; s++) {
        printf("%-*s", w, r.stage[s]);
        for (int j = 0; j < r.n_methods; j++) {
            char cell[64];
            int k = s * r.n_methods + j;
            if (r.count[k])
                snprintf(cell, sizeof cell, "%.3f ± %.3f%s", r.mean[k], r.std[k], r.count[k] < n ? "*" : "");
            else snprintf(cell, sizeof cell, "-");
            undefined |= r.count[k] < n;
            printf("  %20s", cell);
        }
        printf("\n");
    }
    if (undefined)
        printf("*: over fewer images: a constant map (e.g. an all-zero Grad-CAM) has no ranking "
               "(sanity.csv: images)\n");
    int rc = 0;
    if (o->out) {
        ds_atomic f = {0};
        char path[PATH_MAX];
        FILE *fp = csv_open(&f, o->out, "sanity.csv", path, sizeof path);
        if (!fp) rc = 1;
        else {
            fprintf(fp, "stage,randomized_layers,method,spearman_mean,spearman_std,images\n");
            for (int s = 0; s < r.n_stages; s++)
                for (int j = 0; j < r.n_methods; j++) {
                    int k = s * r.n_methods + j;
                    fprintf(fp, "%s,%d,%s,%.6f,%.6f,%d\n", r.stage[s], s, ds_explain_method_name(o->methods[j]),
                            r.mean[k], r.std[k], r.count[k]);
                }
            rc = ds_atomic_commit(&f) != 0 ? cli_lib_error(NULL) : 0;
            if (!rc) printf("wrote %s\n", path);
        }
        if (!rc && !cli_path(path, sizeof path, "%s/sanity_maps.npy", o->out) &&
            ds_npy_write(path, ds_shape_of(5, stages, o->n_methods, c.keep, s.d[2], s.d[3]), c.maps) != 0)
            rc = cli_lib_error(NULL);
        if (!rc && !cli_path(path, sizeof path, "%s/sanity_inputs.npy", o->out) &&
            ds_npy_write(path, ds_shape_of(4, c.keep, s.d[1], s.d[2], s.d[3]), x) != 0)
            rc = cli_lib_error(NULL);
    }
    free(c.maps);
    ds_sanity_result_free(&r);
    return rc;
}

/* the footprint masks [n, H, W] from FILE, checked against the data */
static int load_footprint(const char *path, const ds_dataset *d, float **mask)
{
    char spec[PATH_MAX + 8], a[96];
    if (snprintf(spec, sizeof spec, "npy:%s", path) >= (int)sizeof spec) return cli_error("%s: path too long", path);
    ds_dataset f;
    if (ds_data_load(spec, &f) != 0) return cli_lib_error("--footprint");
    ds_shape s = f.sample;
    int H = d->sample.d[1], W = d->sample.d[2];
    if (f.n != d->n || s.ndim != 3 || s.d[0] != 1 || s.d[1] != H || s.d[2] != W) {
        int rc = cli_error("--footprint %s: %d masks of %s, but the data has %d images of %dx%d: want an array "
                           "[%d, %d, %d] (deepsky simulate --footprint writes it beside x.npy)",
                           path, f.n, ds_shape_str(s, a, sizeof a), d->n, H, W, d->n, H, W);
        ds_dataset_free(&f);
        return rc;
    }
    *mask = f.x;
    f.x = NULL;
    ds_dataset_free(&f);
    return 0;
}

static double mean_of(const double *v, int n, double *sd)
{
    double s = 0, q = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) s += v[i], q += v[i] * v[i], k++;
    double m = k ? s / k : NAN;
    if (sd) *sd = k ? sqrt(fmax(0, q / k - m * m)) : NAN;
    return m;
}

static int run_pointing(cli_net *net, const checks_opts *o, const ds_dataset *d, int n, const float *cls)
{
    float *mask = NULL;
    if (!d->y) return cli_error("--footprint: %s has no labels (the table is per class)", o->spec);
    if (load_footprint(o->footprint, d, &mask) != 0) return 1;
    int H = d->sample.d[1], W = d->sample.d[2], nc = ds_model_classes(net->model), rc = 1, B = net->batch;
    size_t hw = (size_t)H * W, per = hw * d->sample.d[0];
    float *attr = malloc(sizeof(float) * per * B), *maps = malloc(sizeof(float) * hw * n);
    double *share = malloc(sizeof(double) * n * 5); /* per stamp: the shares and hits of ROW_* */
    int *next = malloc(sizeof(int) * n), *cnt = calloc((size_t)nc, sizeof(int));
    int *empty = calloc((size_t)nc, sizeof(int));
    double *res = calloc((size_t)o->n_methods * nc * 6 + nc, sizeof(double)); /* [method][class][6], then the area's */
    ds_atomic f = {0};
    if (!attr || !maps || !share || !next || !cnt || !empty || !res) {
        cli_error("out of memory");
        goto done;
    }
    /* the shuffled baseline: each map scored on the next stamp of its class's footprint (a map that
     * ignores the image, e.g. one always on the centre, scores as well there as on its own) */
    for (int i = 0; i < n; i++) {
        next[i] = i;
        for (int k = 1; k < n; k++)
            if (d->y[(i + k) % n] == d->y[i]) {
                next[i] = (i + k) % n;
                break;
            }
    }
    for (int i = 0; i < n; i++) {
        int c = (int)d->y[i], area = 0;
        for (size_t k = 0; k < hw; k++) area += mask[hw * i + k] > 0.5f;
        if (c >= 0 && c < nc) cnt[c]++, empty[c] += area == 0;
    }
    ds_explain_cfg e = o->e;
    if (find_layer(net, o, &e.layer) != 0) goto done;
    ds_shape sample = d->sample;
    for (int j = 0; j < o->n_methods; j++) {
        e.method = o->methods[j];
        for (int r = 0; r < n; r += B) {
            int b = n - r < B ? n - r : B;
            if (ds_explain(&net->prog, &net->in_norm[0], &e, d->x + per * r, b, cls + r, attr) != 0 ||
                ds_explain_map(e.method, attr, b, sample, maps + hw * r) != 0) {
                cli_lib_error(ds_explain_method_name(e.method));
                goto done;
            }
        }
        if (o->out) { /* the maps scored, for pictures of them */
            char path[PATH_MAX];
            if (cli_mkdirs(o->out) != 0 ||
                cli_path(path, sizeof path, "%s/maps_%s.npy", o->out, ds_explain_method_name(e.method)) != 0)
                goto done;
            if (ds_npy_write(path, ds_shape_of(3, n, H, W), maps) != 0) {
                cli_lib_error(NULL);
                goto done;
            }
        }
        for (int c = 0; c < nc; c++) {
            int m = 0;
            for (int i = 0; i < n; i++) {
                if ((int)d->y[i] != c) continue;
                const float *mp = maps + hw * i, *own = mask + hw * i, *other = mask + hw * next[i];
                share[m] = ds_mass_share(mp, own, (long)hw);
                share[n + m] = next[i] != i ? ds_mass_share(mp, other, (long)hw) : NAN;
                double a = 0, ao = 0;
                for (size_t k = 0; k < hw; k++) a += own[k] > 0.5f, ao += other[k] > 0.5f;
                share[2 * n + m] = a > 0 ? a / hw : NAN;
                /* the pointing game proper (Zhang et al. 2016): is the map's maximum on the source? A map
                 * without a maximum (constant) hits as a uniform random pick, with the area's chance */
                size_t top = 0;
                int flat = 1;
                for (size_t k = 1; k < hw; k++) {
                    if (fabsf(mp[k]) > fabsf(mp[top])) top = k;
                    flat &= fabsf(mp[k]) == fabsf(mp[0]);
                }
                share[3 * n + m] = a == 0 ? NAN : flat ? a / hw : own[top] > 0.5f;
                share[4 * n + m] = next[i] == i || ao == 0 ? NAN : flat ? ao / hw : other[top] > 0.5f;
                m++;
            }
            double *q = res + ((size_t)j * nc + c) * 6;
            q[0] = mean_of(share, m, &q[1]);
            q[2] = mean_of(share + n, m, NULL);
            q[3] = mean_of(share + 3 * n, m, NULL);
            q[4] = mean_of(share + 4 * n, m, NULL);
            res[(size_t)o->n_methods * nc * 6 + c] = mean_of(share + 2 * n, m, NULL);
        }
    }
    const char *const *names = (const char *const *)net->class_names;
    char nb[32];
    printf("pointing game on %s: 'mass', the share of |map|'s mass inside the source's footprint, mean ± std\n"
           "over stamps; 'hit', how often the map's maximum is on the footprint; 'shuf', the same on another stamp's\n"
           "footprint of its class; 'uniform': the footprint's area share, a uniform random map's mass and hit rate\n",
           o->footprint);
    printf("%-22s", "method");
    for (int c = 0; c < nc; c++) {
        if (!cnt[c]) continue;
        char h[64];
        snprintf(h, sizeof h, "%s (%d)", names ? names[c] : (snprintf(nb, sizeof nb, "%d", c), nb), cnt[c] - empty[c]);
        printf("  %-15s %6s %6s %6s", h, "shuf", "hit", "shuf");
    }
    printf("\n");
    for (int j = 0; j < o->n_methods; j++) {
        printf("%-22s", ds_explain_method_name(o->methods[j]));
        for (int c = 0; c < nc; c++) {
            if (!cnt[c]) continue;
            const double *q = res + ((size_t)j * nc + c) * 6;
            char cell[40];
            snprintf(cell, sizeof cell, "%.3f ± %.3f", q[0], q[1]);
            printf("  %-15s %6.3f %6.3f %6.3f", cell, q[2], q[3], q[4]);
        }
        printf("\n");
    }
    printf("%-22s", "uniform (area share)");
    for (int c = 0; c < nc; c++)
        if (cnt[c]) {
            double area = res[(size_t)o->n_methods * nc * 6 + c];
            printf("  %-15.3f %6s %6.3f %6s", area, "", area, "");
        }
    printf("\n");
    for (int c = 0; c < nc; c++)
        if (empty[c])
            printf("note: %d %s stamps have an empty footprint and are left out\n", empty[c],
                   names ? names[c] : (snprintf(nb, sizeof nb, "%d", c), nb));
    rc = 0;
    if (o->out) {
        char path[PATH_MAX];
        FILE *fp = csv_open(&f, o->out, "pointing.csv", path, sizeof path);
        if (!fp) {
            rc = 1;
            goto done;
        }
        fprintf(fp, "method,class,stamps,share_mean,share_std,shuffled_mean,hit_rate,shuffled_hit_rate,uniform_mean\n");
        for (int j = 0; j < o->n_methods; j++)
            for (int c = 0; c < nc; c++) {
                if (!cnt[c]) continue;
                const double *q = res + ((size_t)j * nc + c) * 6;
                fprintf(fp, "%s,%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", ds_explain_method_name(o->methods[j]),
                        names ? names[c] : (snprintf(nb, sizeof nb, "%d", c), nb), cnt[c] - empty[c], q[0], q[1], q[2],
                        q[3], q[4], res[(size_t)o->n_methods * nc * 6 + c]);
            }
        rc = ds_atomic_commit(&f) != 0 ? cli_lib_error(NULL) : 0;
        if (!rc) printf("wrote %s\n", path);
    }
done:
    if (f.path) ds_atomic_abort(&f);
    free(mask), free(attr), free(maps), free(share), free(next), free(cnt), free(empty), free(res);
    return rc;
}

int cli_explain_checks(int argc, char **argv)
{
    checks_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    if (o.out && cli_check_out_dir("--out", o.out) != 0) return 2;
    cli_net net;
    ds_dataset d = {0};
    if (cli_net_from_checkpoint_ex(o.ckpt, o.batch, &net, NULL, CLI_NET_GRAD | CLI_NET_NO_FUSE) != 0) return 1;
    rc = 1;
    float *cls = NULL;
    if (load_raw(&net, o.spec, &d) != 0) goto done;
    int n = d.n < o.max ? d.n : o.max;
    if (!(cls = malloc(sizeof(float) * n))) {
        cli_error("out of memory");
        goto done;
    }
    if (classes_of(&net, &o, &d, n, cls) != 0) goto done;
    if (o.sanity) {
        ds_node *layer;
        if (find_layer(&net, &o, &layer) != 0) goto done;
        o.e.layer = layer;
        rc = run_sanity(&net, &o, d.x, n, cls);
    } else if (o.footprint) rc = run_pointing(&net, &o, &d, n, cls);
    else rc = cli_usage("explain checks: --sanity or --footprint FILE");
done:
    free(cls);
    ds_dataset_free(&d);
    cli_net_free(&net);
    return rc;
}
