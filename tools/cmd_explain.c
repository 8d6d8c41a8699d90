/* cmd_explain.c — `deepsky explain`: attribution maps (saliency,
 * gradxinput, smoothgrad, integrated gradients, Grad-CAM, guided backprop,
 * deconvnet; src/train/explain.c) for files or a data spec, as NPY arrays,
 * PNG maps and an HTML page with input, map and overlay per sample; and
 * --filters, a conv layer's filters with the input patches that excite
 * them most (tools/explain_filters.c). The data is read raw (its own
 * units) and the checkpoint's normalisation is part of the model, so a map
 * is ∂score/∂x of the values in the file. docs/cli.md, docs/explain.md. */
#include "explain.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HTML_MAX 32 /* samples shown on the page (the arrays hold them all) */

const char *xrun_class_name(const xrun *r, const ds_dataset *d, int k, char *buf, size_t size)
{
    ds_dataset names = {.classes = r->net.n_class_names, .class_names = r->net.class_names};
    return cli_class_name(r->net.class_names ? &names : d, k, buf, size);
}

static int is_4d_layer(const xrun *r, int i)
{
    ds_node *n = ds_model_layer_output(r->net.model, i);
    return n && ds_node_shape(n).ndim == 4;
}

int xrun_layer(const xrun *r, const char *name, const char *opt)
{
    const ds_model *m = r->net.model;
    int n = ds_model_num_layers(m), last = -1;
    for (int i = 0; i < n; i++) {
        if (!is_4d_layer(r, i)) continue;
        if (name && !strcmp(ds_model_layer_name(m, i), name)) return i;
        if (!strcmp(ds_model_layer_type(m, i), "conv")) last = i;
    }
    if (!name && last >= 0) return last;
    /* the valid names, for the message */
    char list[1024] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof list; i++)
        if (is_4d_layer(r, i) && !strcmp(ds_model_layer_type(m, i), "conv"))
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", ds_model_layer_name(m, i));
    if (!k) return cli_error("%s: the model has no conv layer%s", r->ckpt, name ? "" : " (gradcam needs one)") * -1;
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(ds_model_layer_name(m, i), name))
            return -cli_error("%s %s: layer '%s' is a %s layer, not an image layer [C, H, W]; the conv layers are: %s",
                              opt, name, name, ds_model_layer_type(m, i), list);
    return -cli_error("%s %s: the model has no layer '%s'; its conv layers are: %s", opt, name, name, list);
}

void xrun_fill_fields(xrun *r, const ds_dataset *d, const int *rows, int n)
{
    ds_program *p = &r->net.prog;
    int mb = r->net.batch;
    for (int k = 1; k < p->n_feeds; k++) {
        float *v = ds_node_value(p->feeds[k]);
        ds_shape s = ds_node_shape(p->feeds[k]);
        size_t per = ds_shape_numel(s) / (size_t)s.d[0];
        const ds_field *f = k - 1 < d->n_fields ? &d->fields[k - 1] : NULL;
        for (int j = 0; j < mb; j++) {
            int row = rows[j < n ? j : n - 1];
            if (f) memcpy(v + (size_t)j * per, f->x + (size_t)row * per, per * sizeof *v);
            else memset(v + (size_t)j * per, 0, per * sizeof *v); /* a target: numbers for the loss */
        }
    }
    if (p->labels) memset(ds_node_value(p->labels), 0, (size_t)mb * sizeof(float));
}

int xrun_forward(xrun *r, const ds_dataset *d, const int *rows, int n)
{
    ds_program *p = &r->net.prog;
    int mb = r->net.batch;
    float *buf = malloc((size_t)mb * r->sample * sizeof *buf);
    if (!buf) return cli_error("out of memory");
    for (int j = 0; j < mb; j++) /* a full batch: the padding repeats the last row */
        memcpy(buf + (size_t)j * r->sample, d->x + (size_t)rows[j < n ? j : n - 1] * r->sample,
               r->sample * sizeof *buf);
    int rc = 0;
    if (ds_graph_set_batch(r->net.g, mb) != 0 || ds_feed_normalized(p, &r->norm, buf, mb) != 0)
        rc = cli_lib_error(NULL);
    if (rc == 0) xrun_fill_fields(r, d, rows, n);
    if (rc == 0 && ds_graph_forward(r->net.g) != 0) rc = cli_lib_error(NULL);
    free(buf);
    return rc;
}

/* each row's predicted class and its probability, and the class to explain */
static int choose_classes(xrun *r, const ds_dataset *d, const char *what, float *cls, int *pred, float *prob)
{
    ds_program *p = &r->net.prog;
    int h = ds_program_class_head(p), k = p->heads[h].classes, mb = r->net.batch;
    float *probs = malloc((size_t)mb * k * sizeof *probs);
    int *rows = malloc((size_t)mb * sizeof *rows);
    if (!probs || !rows) {
        free(probs), free(rows);
        return cli_error("out of memory");
    }
    for (int r0 = 0; r0 < d->n; r0 += mb) {
        int n = d->n - r0 < mb ? d->n - r0 : mb;
        for (int j = 0; j < n; j++) rows[j] = r0 + j;
        int e = xrun_forward(r, d, rows, n);
        if (!e && ds_program_probs(p, h, n, r0, probs) != 0) e = cli_lib_error(what);
        if (e) {
            free(probs), free(rows);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            pred[r0 + j] = ds_argmax(probs + (size_t)j * k, k);
            prob[r0 + j] = probs[(size_t)j * k + pred[r0 + j]];
        }
    }
    free(probs), free(rows);
    const char *s = r->class_spec;
    int fixed = -1;
    if (!strcmp(s, "label")) {
        if (!d->y || d->classes < 1)
            return cli_error("%s: --class label: the data has no labels (use pred, a class name or index)", what);
        for (int i = 0; i < d->n; i++) cls[i] = d->y[i];
        return 0;
    }
    if (strcmp(s, "pred")) {
        for (int c = 0; c < r->net.n_class_names && fixed < 0; c++)
            if (!strcmp(r->net.class_names[c], s)) fixed = c;
        char *end;
        long v = strtol(s, &end, 10);
        if (fixed < 0 && *s && !*end && v >= 0 && v < k) fixed = (int)v;
        if (fixed < 0) {
            char names[512] = "";
            size_t n = 0;
            for (int c = 0; c < r->net.n_class_names && n < sizeof names; c++)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", c ? ", " : "", r->net.class_names[c]);
            return cli_usage("explain: --class %s: not pred, label, a class index 0..%d%s%s", s, k - 1,
                             n ? " or a class name: " : "", names);
        }
    }
    for (int i = 0; i < d->n; i++) cls[i] = (float)(fixed >= 0 ? fixed : pred[i]);
    return 0;
}

/* the baseline of integrated gradients for data d, [sample] (NULL: zeros) */
static int make_baseline(xrun *r, const ds_dataset *d, float **out)
{
    *out = NULL;
    if (!strcmp(r->baseline, "zero")) return 0;
    float *b = malloc(r->sample * sizeof *b);
    if (!b) return cli_error("out of memory");
    size_t plane = r->sample / (size_t)r->C;
    if (!strcmp(r->baseline, "mean")) {
        /* the training data's mean (a normalised input of zeros); without a
         * normalisation, the mean of the data explained, per channel */
        for (int c = 0; c < r->C; c++) {
            double m = 0;
            if (r->norm.channels == r->C) m = r->norm.mean[c];
            else {
                for (int i = 0; i < d->n; i++)
                    for (size_t j = 0; j < plane; j++) m += d->x[(size_t)i * r->sample + c * plane + j];
                m /= (double)d->n * (double)plane;
            }
            for (size_t j = 0; j < plane; j++) b[c * plane + j] = (float)m;
        }
    } else {
        float v;
        if (cli_parse_float("--baseline", r->baseline, -3e38, 3e38, &v)) {
            free(b);
            return 1;
        }
        for (size_t j = 0; j < r->sample; j++) b[j] = v;
    }
    *out = b;
    return 0;
}

/* attr for all rows of d by method m: a single-input model in one call; a
 * several-input one row by row, its other inputs that row's (every path
 * point and noisy copy of a row shares them) */
static int explain_rows(xrun *r, const ds_dataset *d, int m, const float *cls, const float *baseline, float *attr)
{
    ds_explain_cfg c = r->cfg;
    c.method = m;
    c.baseline = baseline;
    if (m == DS_EXPLAIN_GRADCAM) {
        int li = xrun_layer(r, r->layer_name, "--layer");
        if (li < 0) return 1;
        c.layer = ds_model_layer_output(r->net.model, li);
    }
    size_t per = m == DS_EXPLAIN_GRADCAM ? (size_t)r->H * r->W : r->sample;
    if (r->net.prog.n_inputs == 1) { /* targets only after the input: zeros, the same for every row */
        xrun_fill_fields(r, d, (int[]){0}, 1);
        if (ds_explain(&r->net.prog, &r->norm, &c, d->x, d->n, cls, attr) != 0)
            return cli_lib_error(ds_explain_method_name(m));
        return 0;
    }
    for (int i = 0; i < d->n; i++) {
        xrun_fill_fields(r, d, &i, 1);
        c.seed = r->cfg.seed + (uint64_t)i; /* smoothgrad's noise differs from row to row */
        const float *xi = d->x + (size_t)i * r->sample;
        if (ds_explain(&r->net.prog, &r->norm, &c, xi, 1, cls + i, attr + (size_t)i * per) != 0)
            return cli_lib_error(ds_explain_method_name(m));
    }
    return 0;
}

/* score[i] = the logit of class cls[i] for the raw rows x [n, sample] of d
 * (x: d's own rows, or others with d's other inputs) */
static int scores(xrun *r, const ds_dataset *d, const float *x, const float *cls, double *score)
{
    ds_program *p = &r->net.prog;
    int mb = r->net.batch, h = ds_program_class_head(p), k = p->heads[h].classes;
    ds_dataset view = *d;
    view.x = (float *)x;
    int *rows = malloc((size_t)mb * sizeof *rows);
    if (!rows) return cli_error("out of memory");
    for (int r0 = 0; r0 < d->n; r0 += mb) {
        int n = d->n - r0 < mb ? d->n - r0 : mb;
        for (int j = 0; j < n; j++) rows[j] = r0 + j;
        if (xrun_forward(r, &view, rows, n) != 0) {
            free(rows);
            return 1;
        }
        const float *z = ds_node_value(p->heads[h].out);
        for (int j = 0; j < n; j++) score[r0 + j] = z[(size_t)j * k + (size_t)cls[r0 + j]];
    }
    free(rows);
    return 0;
}

/* Integrated gradients' completeness over d's rows: Σ|Σa − (S(x) − S(x′))|
 * / Σ|S(x) − S(x′)| (Sundararajan et al. 2017 advise checking it: a large
 * gap asks for more steps) */
static int completeness(xrun *r, const ds_dataset *d, const float *cls, const float *baseline, const float *attr,
                        double *gap)
{
    double *sx = malloc((size_t)d->n * sizeof *sx), *sb = malloc((size_t)d->n * sizeof *sb);
    float *xb = malloc((size_t)d->n * r->sample * sizeof *xb);
    int rc = 1;
    if (!sx || !sb || !xb) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < d->n; i++)
        for (size_t j = 0; j < r->sample; j++) xb[(size_t)i * r->sample + j] = baseline ? baseline[j] : 0;
    if (scores(r, d, d->x, cls, sx) != 0 || scores(r, d, xb, cls, sb) != 0) goto done;
    double num = 0, den = 0;
    for (int i = 0; i < d->n; i++) {
        double sum = 0;
        for (size_t j = 0; j < r->sample; j++) sum += attr[(size_t)i * r->sample + j];
        num += fabs(sum - (sx[i] - sb[i])), den += fabs(sx[i] - sb[i]);
    }
    *gap = den > 0 ? num / den : 0;
    rc = 0;
done:
    free(sx), free(sb), free(xb);
    return rc;
}

/* one source's maps: [n, H, W] per method, and the arrays written */
typedef struct source {
    const char *what;    /* the file or spec */
    char stem[PATH_MAX]; /* where its files go: STEM.METHOD.npy (or DIR/METHOD.npy) */
    int n;
} source;

/* "dir/a.fits.gz" → "dir/a" (or "OUT/a" with out) */
static int stem_of(const char *path, const char *out, char *stem, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s", base);
    size_t n = strlen(name);
    if (n > 3 && !strcmp(name + n - 3, ".gz")) name[n -= 3] = 0;
    if (n > 3 && !strcmp(name + n - 3, ".fz")) name[n -= 3] = 0;
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
    if (out) return cli_path(stem, size, "%s/%s", out, name);
    if (base == path) return cli_path(stem, size, "%s", name);
    return cli_path(stem, size, "%.*s%s", (int)(base - path), path, name);
}

/* the overview: per sample a row of tiles input | map | overlay per method */
typedef struct overview {
    uint8_t *rgb;
    char **labels;
    int rows, cols;
    xhtml page;
} overview;

static int overview_add(overview *o, xrun *r, const ds_dataset *d, const char *what, int i, const float *cls,
                        const int *pred, const float *prob, float *const *maps)
{
    if (o->rows >= HTML_MAX) return 0;
    size_t tile = (size_t)r->H * r->W * 3;
    int row = o->rows++;
    const float *x = d->x + (size_t)i * r->sample;
    char b1[64], b2[64], lab[256];
    xdraw_input(x, r->C, r->H, r->W, o->rgb + (size_t)row * o->cols * tile);
    if (pred[i] == (int)cls[i]) /* short lines: a tile is about 16 characters wide */
        snprintf(lab, sizeof lab, "#%d %s\npred, p=%.2f", i, xrun_class_name(r, d, (int)cls[i], b1, sizeof b1),
                 (double)prob[i]);
    else
        snprintf(lab, sizeof lab, "#%d %s\npred %s %.2f", i, xrun_class_name(r, d, (int)cls[i], b1, sizeof b1),
                 xrun_class_name(r, d, pred[i], b2, sizeof b2), (double)prob[i]);
    o->labels[row * o->cols] = strdup(lab);
    for (int k = 0; k < r->n_methods; k++) {
        int m = r->methods[k], sg = xdraw_signed(m);
        const float *map = maps[k] + (size_t)i * r->H * r->W;
        xdraw_map(map, r->H, r->W, sg, o->rgb + ((size_t)row * o->cols + 1 + 2 * k) * tile);
        xdraw_overlay(x, r->C, r->H, r->W, map, sg, o->rgb + ((size_t)row * o->cols + 2 + 2 * k) * tile);
        o->labels[row * o->cols + 1 + 2 * k] = strdup(ds_explain_method_name(m));
        o->labels[row * o->cols + 2 + 2 * k] = strdup("overlay");
    }
    /* the table: sample, source, class explained, prediction */
    xhtml *h = &o->page;
    char **cells = h->cells + (size_t)(row + 1) * h->cols, num[32];
    snprintf(num, sizeof num, "%d", row);
    cells[0] = strdup(num);
    cells[1] = xhtml_escape(what);
    snprintf(num, sizeof num, "%d", i);
    cells[2] = strdup(num);
    cells[3] = xhtml_escape(xrun_class_name(r, d, (int)cls[i], b1, sizeof b1));
    snprintf(lab, sizeof lab, "%s (%.4f)", xrun_class_name(r, d, pred[i], b2, sizeof b2), (double)prob[i]);
    cells[4] = xhtml_escape(lab);
    h->rows = row + 2;
    return 0;
}

/* everything for one source: classes, maps, arrays, PNGs, its overview rows */
static int explain_source(xrun *r, const ds_dataset *d, source *s, int is_data, overview *o)
{
    int n = d->n, rc = 1;
    float *cls = malloc((size_t)n * sizeof *cls), *prob = malloc((size_t)n * sizeof *prob), *baseline = NULL;
    int *pred = malloc((size_t)n * sizeof *pred);
    float *maps[DS_EXPLAIN_METHODS] = {0}, *attr = NULL;
    uint8_t *tiles = NULL;
    char **labels = calloc((size_t)n, sizeof *labels);
    if (!cls || !prob || !pred || !labels) {
        cli_error("out of memory");
        goto done;
    }
    if (choose_classes(r, d, s->what, cls, pred, prob) != 0 || make_baseline(r, d, &baseline) != 0) goto done;
    char path[PATH_MAX], b1[64];
    if (is_data) { /* the class each row was explained for */
        if (cli_path(path, sizeof path, "%s/classes.npy", s->stem) != 0) goto done;
        if (ds_npy_write(path, ds_shape_of(1, n), cls) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
    }
    size_t hw = (size_t)r->H * r->W;
    int show = n < 256 ? n : 256; /* tiles in METHOD.png */
    if (!(tiles = malloc((size_t)show * hw * 3))) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < show; i++) {
        char lab[128];
        snprintf(lab, sizeof lab, "#%d %s", i, xrun_class_name(r, d, (int)cls[i], b1, sizeof b1));
        labels[i] = strdup(lab);
    }
    for (int k = 0; k < r->n_methods; k++) {
        int m = r->methods[k];
        size_t per = m == DS_EXPLAIN_GRADCAM ? hw : r->sample;
        free(attr);
        if (!(attr = malloc((size_t)n * per * sizeof *attr)) || !(maps[k] = malloc((size_t)n * hw * sizeof *maps[k]))) {
            cli_error("out of memory");
            goto done;
        }
        if (explain_rows(r, d, m, cls, baseline, attr) != 0) goto done;
        ds_shape sh = m == DS_EXPLAIN_GRADCAM ? ds_shape_of(3, n, r->H, r->W) : ds_shape_of(4, n, r->C, r->H, r->W);
        if (r->C == 1 && r->H == 1 && m != DS_EXPLAIN_GRADCAM) sh = ds_shape_of(2, n, r->W); /* a table's rows */
        const char *name = ds_explain_method_name(m), *sep = is_data ? "/" : ".";
        if (cli_path(path, sizeof path, "%s%s%s.npy", s->stem, sep, name) != 0) goto done;
        if (ds_npy_write(path, sh, attr) != 0 ||
            ds_explain_map(m, attr, n, ds_shape_of(3, r->C, r->H, r->W), maps[k]) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        for (int i = 0; i < show; i++)
            xdraw_map(maps[k] + (size_t)i * hw, r->H, r->W, xdraw_signed(m), tiles + (size_t)i * hw * 3);
        if (cli_path(path, sizeof path, "%s%s%s.png", s->stem, sep, name) != 0) goto done;
        if (ds_png_grid_rgb(path, tiles, show, r->H, r->W, 0, (const char *const *)labels) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        printf("%s: %s -> %s%s%s.{npy,png}\n", s->what, name, s->stem, sep, name);
        double gap;
        if (m == DS_EXPLAIN_IG) {
            if (completeness(r, d, cls, baseline, attr, &gap) != 0) goto done;
            printf("  completeness: the attributions sum to S(x) - S(baseline) within %.2f %% (%d steps)\n", 100 * gap,
                   r->cfg.steps ? r->cfg.steps : 64);
        }
    }
    for (int i = 0; i < n; i++)
        if (overview_add(o, r, d, s->what, i, cls, pred, prob, maps) != 0) goto done;
    rc = 0;
done:
    for (int k = 0; k < DS_EXPLAIN_METHODS; k++) free(maps[k]);
    for (int i = 0; labels && i < n; i++) free(labels[i]);
    free(labels), free(tiles), free(attr), free(cls), free(prob), free(pred), free(baseline);
    return rc;
}

/* --method saliency,gradcam | all */
static int parse_methods(const char *v, xrun *r)
{
    if (!strcmp(v, "all")) {
        for (int m = 0; m < DS_EXPLAIN_METHODS; m++) r->methods[m] = m;
        r->n_methods = DS_EXPLAIN_METHODS;
        return 0;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int m = ds_explain_method_parse(t);
        if (m < 0) {
            char names[256] = "";
            size_t k = 0;
            for (int j = 0; j < DS_EXPLAIN_METHODS; j++)
                k += (size_t)snprintf(names + k, sizeof names - k, "%s, ", ds_explain_method_name(j));
            return cli_usage("explain: --method: unknown method '%s' (one of %sall)", t, names);
        }
        bool dup = false;
        for (int j = 0; j < r->n_methods; j++) dup |= r->methods[j] == m;
        if (!dup) r->methods[r->n_methods++] = m;
    }
    return r->n_methods ? 0 : cli_usage("explain: --method needs a method");
}

static void overview_free(overview *o)
{
    for (int i = 0; o->labels && i < HTML_MAX * o->cols; i++) free(o->labels[i]);
    for (int i = 0; o->page.cells && i < (HTML_MAX + 1) * o->page.cols; i++) free(o->page.cells[i]);
    free(o->labels), free(o->rgb), free(o->page.cells);
}

/* the page: DIR/explain.html and DIR/explain.png (or STEM.explain.*) */
static int overview_write(overview *o, xrun *r, const char *stem, int is_data, int argc, char **argv)
{
    if (!o->rows) return 0;
    char png[PATH_MAX], html[PATH_MAX];
    const char *sep = is_data ? "/" : ".";
    if (cli_path(png, sizeof png, "%s%sexplain.png", stem, sep) ||
        cli_path(html, sizeof html, "%s%sexplain.html", stem, sep))
        return 1;
    if (ds_png_grid_rgb(png, o->rgb, o->rows * o->cols, r->H, r->W, o->cols, (const char *const *)o->labels) != 0)
        return cli_lib_error(NULL);
    char *cmd = cli_shell_join(argc, argv), summary[2048];
    char methods[256] = "";
    size_t k = 0;
    for (int i = 0; i < r->n_methods; i++)
        k += (size_t)snprintf(methods + k, sizeof methods - k, "%s%s", i ? ", " : "",
                              ds_explain_method_name(r->methods[i]));
    snprintf(summary, sizeof summary,
             "deepsky %s\ncheckpoint %s\nmethods    %s\nclass      %s\n"
             "per sample: the input (its last channel), then each method's map and the map over the input%s",
             cmd ? cmd : "explain", r->ckpt, methods, r->class_spec,
             o->rows >= HTML_MAX ? "\n(the first samples only: the NPY arrays hold them all)" : "");
    free(cmd);
    const char *slash = strrchr(png, '/');
    o->page.title = "deepsky explain";
    o->page.summary = summary;
    o->page.picture = slash ? slash + 1 : png;
    if (xhtml_write(html, &o->page) != 0) return cli_lib_error(NULL);
    printf("page -> %s\n", html);
    return 0;
}

static int cmd_explain(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* the checks of the maps, options of their own: tools/cmd_explain_checks.c */
        if (!strcmp(argv[i], "--sanity") || !strcmp(argv[i], "--footprint")) return cli_explain_checks(argc, argv);
    xrun r = {.baseline = "zero", .class_spec = "pred", .top = 9};
    const char *spec = NULL, *out = NULL, *method = NULL, *filters = NULL, *v;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0, batch = 64, rc = 1;
    long seed = 0;
    if (!inputs) return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--data") && i + 1 < argc) { /* NAME=SPEC: another input's source */
            const char *val = argv[i + 1];
            if (cli_is_binding(val)) {
                if (cli_specs_add(&r.extra, "--data", val)) goto usage;
                i++;
                continue;
            }
        }
        if (opt[0] != '-') {
            if (!r.ckpt) r.ckpt = opt;
            else inputs[n_inputs++] = opt;
            continue;
        }
        static const char *const with_value[] = {"--data", "--method", "--class", "--layer", "--samples", "--noise",
                                                 "--steps", "--baseline", "--max", "--batch", "--out", "--seed",
                                                 "--filters", "--top", NULL};
        int known = 0;
        for (int k = 0; with_value[k] && !known; k++) known = cli_opt(argc, argv, &i, with_value[k], &v);
        if (!known) {
            cli_usage("explain: unknown option '%s' (see deepsky explain --help)", opt);
            goto usage;
        }
        if (argv[i] == opt || !v || !*v) {
            cli_usage("explain: %s needs a value", opt);
            goto usage;
        }
        int bad = 0;
        if (!strcmp(opt, "--data")) spec = v;
        else if (!strcmp(opt, "--method")) method = v;
        else if (!strcmp(opt, "--class")) r.class_spec = v;
        else if (!strcmp(opt, "--layer")) r.layer_name = v;
        else if (!strcmp(opt, "--baseline")) r.baseline = v;
        else if (!strcmp(opt, "--out")) out = v;
        else if (!strcmp(opt, "--filters")) filters = v;
        else if (!strcmp(opt, "--samples")) bad = cli_parse_int(opt, v, 1, 100000, &r.cfg.samples);
        else if (!strcmp(opt, "--steps")) bad = cli_parse_int(opt, v, 1, 100000, &r.cfg.steps);
        else if (!strcmp(opt, "--noise")) bad = cli_parse_float(opt, v, 0, 100, &r.cfg.noise);
        else if (!strcmp(opt, "--max")) bad = cli_parse_int(opt, v, 1, INT_MAX, &r.max);
        else if (!strcmp(opt, "--batch")) bad = cli_parse_int(opt, v, 1, 65536, &batch);
        else if (!strcmp(opt, "--top")) bad = cli_parse_int(opt, v, 1, 64, &r.top);
        else if (!strcmp(opt, "--seed")) {
            char *end;
            seed = strtol(v, &end, 10);
            if (*end || seed < 0) bad = cli_usage("explain: --seed must be an integer >= 0, got '%s'", v);
        }
        if (bad) goto usage;
    }
    if (!r.ckpt || (!n_inputs && !spec)) {
        cli_usage("explain: usage: deepsky explain CKPT INPUT... | --data SPEC --method M[,M...] (see --help)");
        goto usage;
    }
    if (filters && !spec) {
        cli_usage("explain: --filters needs --data SPEC (the data set searched for the strongest activations)");
        goto usage;
    }
    if (filters && method) {
        cli_usage("explain: --filters and --method are separate runs: give one of them");
        goto usage;
    }
    if (!filters && !method) {
        cli_usage("explain: --method is needed (saliency, gradxinput, smoothgrad, integrated-gradients, gradcam, "
                  "guided-backprop, deconvnet or all)");
        goto usage;
    }
    if (method && parse_methods(method, &r) != 0) goto usage;
    if (strcmp(r.baseline, "zero") && strcmp(r.baseline, "mean")) {
        char *end;
        double bv = strtod(r.baseline, &end);
        if (*end || !isfinite(bv) || fabs(bv) > 3e38) {
            cli_usage("explain: --baseline must be zero, mean or a number, got '%s'", r.baseline);
            goto usage;
        }
    }
    if (out && cli_check_out_dir("--out", out) != 0) goto usage;
    r.cfg.seed = (uint64_t)seed;

    if (cli_net_from_checkpoint_ex(r.ckpt, batch, &r.net, &r.norm, CLI_NET_GRAD | CLI_NET_NO_FUSE) != 0) goto fail;
    ds_shape in = ds_model_input_shape(r.net.model);
    r.sample = ds_shape_numel(in);
    r.C = in.ndim == 3 ? in.d[0] : 1, r.H = in.ndim == 3 ? in.d[1] : in.ndim == 2 ? in.d[0] : 1;
    r.W = in.ndim >= 2 ? in.d[in.ndim - 1] : in.d[0];
    if (ds_model_num_inputs(r.net.model) > 1 && n_inputs)
        rc = cli_error("explain: %s has %d inputs; give its data with --data SPEC --data NAME=SPEC (files name only "
                       "the first input's values)", r.ckpt, ds_model_num_inputs(r.net.model));
    else {
        bool cam = r.layer_name != NULL; /* a layer that does not exist is an error before any work */
        for (int k = 0; k < r.n_methods; k++) cam |= r.methods[k] == DS_EXPLAIN_GRADCAM;
        rc = cam && xrun_layer(&r, r.layer_name, "--layer") < 0;
    }
    if (rc) goto fail;
    rc = 1;

    /* the sources: the data spec (into --out, default runs/explain) or each file (beside it) */
    overview o = {0};
    o.cols = 1 + 2 * r.n_methods;
    o.page.cols = 5;
    o.rgb = calloc((size_t)HTML_MAX * o.cols, (size_t)r.H * r.W * 3);
    o.labels = calloc((size_t)HTML_MAX * o.cols, sizeof *o.labels);
    o.page.cells = calloc((size_t)(HTML_MAX + 1) * o.page.cols, sizeof *o.page.cells);
    if (!o.rgb || !o.labels || !o.page.cells) {
        overview_free(&o);
        cli_error("out of memory");
        goto fail;
    }
    const char *head[5] = {"row", "source", "sample", "class explained", "predicted (probability)"};
    for (int k = 0; k < 5; k++) o.page.cells[k] = strdup(head[k]);
    o.page.rows = 1;
    char first_stem[PATH_MAX] = "";
    int is_data = spec != NULL;
    cli_path_list files = {0};
    if (spec) {
        const char *dir = out ? out : "runs/explain";
        ds_dataset d = {0};
        source s = {.what = spec};
        if (cli_mkdirs(dir) != 0 || cli_path(s.stem, sizeof s.stem, "%s", dir) != 0) goto sources_done;
        if (cli_net_load_raw(&r.net, &r.norm, spec, &r.extra, &d) != 0) {
            ds_dataset_free(&d);
            goto sources_done;
        }
        if (r.max && d.n > r.max) d.n = r.max; /* the first --max rows (the arrays stay allocated: freed whole) */
        if (filters) rc = xrun_filters(&r, filters, &d, dir);
        else rc = explain_source(&r, &d, &s, 1, &o);
        ds_dataset_free(&d);
        snprintf(first_stem, sizeof first_stem, "%s", dir);
        if (rc) goto sources_done;
        rc = 1;
    } else {
        if (out && cli_mkdirs(out) != 0) goto sources_done;
        if (cli_inputs_expand(inputs, n_inputs, NULL, &files) != 0) goto sources_done;
        for (int f = 0; f < files.n; f++) {
            ds_dataset d = {0};
            source s = {.what = files.path[f]};
            if (stem_of(files.path[f], out, s.stem, sizeof s.stem) != 0) goto sources_done;
            if (cli_net_load_raw(&r.net, &r.norm, files.path[f], &r.extra, &d) != 0) {
                ds_dataset_free(&d);
                goto sources_done;
            }
            int e = explain_source(&r, &d, &s, 0, &o);
            ds_dataset_free(&d);
            if (e) goto sources_done;
            if (!f) snprintf(first_stem, sizeof first_stem, "%s", s.stem);
        }
    }
    rc = filters ? 0 : overview_write(&o, &r, first_stem, is_data, argc, argv);
sources_done:
    cli_path_list_free(&files);
    overview_free(&o);
fail:
    ds_norm_free(&r.norm);
    if (r.net.g) cli_net_free(&r.net);
    free(inputs);
    return rc;
usage:
    free(inputs);
    return 1;
}

static const char *const explain_repeatable[] = {"--data", NULL}; /* NAME=SPEC: one source each */
const cli_command cli_cmd_explain = {
    "explain",
    cmd_explain,
    "attribution maps (saliency, integrated gradients, Grad-CAM, ...) and filter pictures",
    "usage: deepsky explain CKPT INPUT... --method M[,M...]|all [options]\n"
    "       deepsky explain CKPT --data SPEC [--data NAME=SPEC ...] --method M[,M...]|all [options]\n"
    "       deepsky explain CKPT --filters LAYER --data SPEC [--top K] [--out DIR]\n"
    "       deepsky explain CKPT --data SPEC --sanity | --footprint FILE [--method ...] [--max N] [--out DIR]\n"
    "\n"
    "  INPUT            an image (PNG/JPEG), FITS, NPY or CSV file, or a folder of FITS files (as predict);\n"
    "                   its maps go beside it: STEM.METHOD.npy (the attribution) and STEM.METHOD.png\n"
    "  --data SPEC      a data set instead: DIR/METHOD.npy [n, C, H, W] (gradcam [n, H, W]), DIR/METHOD.png,\n"
    "                   DIR/classes.npy (the class explained per row), DIR/explain.html\n"
    "  --data NAME=SPEC the source of a several-input model's other [input] NAME (the first input is explained)\n"
    "  --method M       saliency (gradient of the class score, the logit), gradxinput (input x gradient),\n"
    "                   smoothgrad, integrated-gradients, gradcam, guided-backprop, deconvnet; several\n"
    "                   separated by commas, or all\n"
    "  --class C        the class explained: pred (the predicted one, default), label (the data's),\n"
    "                   a class name or a class index\n"
    "  --layer NAME     gradcam's conv layer (default: the last conv layer); names as in the model file\n"
    "  --samples N      smoothgrad: noisy copies (default 50)\n"
    "  --noise S        smoothgrad: noise sigma as a share of each input's max - min (default 0.15)\n"
    "  --steps N        integrated gradients: points on the path (midpoint rule; default 64)\n"
    "  --baseline B     integrated gradients: zero (default), mean (the training data's mean: the\n"
    "                   checkpoint's normalisation), or a value in the data's units\n"
    "  --max N          explain the first N samples of --data only\n"
    "  --batch B        rows per forward/backward pass (default 64): the memory used\n"
    "  --out DIR        where the files go (--data: default runs/explain; INPUTs: beside each)\n"
    "  --seed S         smoothgrad's noise (default 0)\n"
    "  --filters LAYER  the conv layer's filters (the first conv layer: its weights; deeper: the\n"
    "                   deconvnet picture of each filter's strongest activation) as DIR/filters_LAYER.png,\n"
    "                   and each filter's top-K input patches of --data as DIR/patches_LAYER.png\n"
    "  --top K          --filters: patches per filter (default 9)\n"
    "\n"
    "Maps are in the input's own units: the checkpoint's normalisation is part of the model. The\n"
    "PNG maps show max |a| over channels (gradxinput, integrated-gradients: the signed sum, blue\n"
    "negative, red positive); the page shows each sample's input, maps and overlays.\n"
    "\n"
    "Checks of the maps (docs/explain.md), with --method, --class, --layer, --samples, --noise,\n"
    "--steps, --max, --batch, --seed as above (default: every method; --max 100 with --sanity, 1000\n"
    "with --footprint; --layer: the last conv layer):\n"
    "  --sanity         cascading model randomisation (Adebayo et al. 2018): re-initialise the layers\n"
    "                   from the output down, one more per row, and print the Spearman rank correlation\n"
    "                   of |map| with the trained model's (mean, std over the images); --out DIR:\n"
    "                   DIR/sanity.csv, DIR/sanity_maps.npy [stages, methods, 16, H, W], DIR/sanity_inputs.npy\n"
    "  --footprint FILE the pointing game: FILE [n, H, W] 1 on each sample's source (deepsky simulate\n"
    "                   --footprint); per method and class, the share of |map|'s mass on it and how often\n"
    "                   the map's maximum is, against a shuffled footprint and a uniform map; --out DIR:\n"
    "                   DIR/pointing.csv, DIR/maps_METHOD.npy [n, H, W]\n",
    explain_repeatable,
};
