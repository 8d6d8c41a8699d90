/* cmd_eval.c — `deepsky eval` (metrics on labelled data) and `deepsky
 * predict` (probabilities and top-k for files, folders of FITS cutouts or
 * a data spec). */
#include "cli.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Load data for a checkpoint: load, check finite, labels numbered by the
 * checkpoint's class names, normalise as in training. */
static int load_for(cli_net *net, const ds_norm *norm, const char *spec, const cli_specs *extra, ds_dataset *d)
{
    cli_specs all = {{spec}, 1}; /* the first input's source, then NAME=SPEC for the others */
    for (int k = 0; extra && k < extra->n && all.n < CLI_MAX_SPECS; k++) all.spec[all.n++] = extra->spec[k];
    if (cli_data_bind(net->model, &all, 0, d) != 0) return 1;
    if (ds_dataset_map_classes(d, (const char *const *)net->class_names, net->n_class_names, spec) != 0)
        return cli_lib_error(NULL);
    if (cli_check_input(net, d, spec) != 0) return 1;
    if (norm->channels && norm->channels != d->sample.d[0])
        return cli_error("%s: the checkpoint's normalisation has %d channels, the data %d", spec,
                         norm->channels, d->sample.d[0]);
    if (ds_norm_apply(norm, d) != 0) return cli_lib_error(spec);
    if (d->n_fields) { /* the other inputs' normalisations (x's is applied above: once) */
        ds_norm rest[DS_MAX_INPUTS] = {{0}};
        for (int k = 1; k < ds_model_num_inputs(net->model); k++) rest[k] = net->in_norm[k];
        if (cli_norms_apply(rest, ds_model_num_inputs(net->model), d, spec) != 0) return 1;
    }
    return 0;
}

static const char *class_name(const ds_dataset *d, int k, char *buf, size_t size)
{
    if (d->class_names && k < d->classes && d->class_names[k]) return d->class_names[k];
    snprintf(buf, size, "%d", k);
    return buf;
}

static void print_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* m, and with per-stamp metadata the survey breakdown bd (NULL: none) */
static void print_metrics(const ds_metrics *m, const ds_dataset *d, int json, const cli_breakdown *bd,
                          const cli_meta *meta)
{
    char b[32];
    int c = m->classes;
    if (json) {
        printf("{\"samples\": %d, \"accuracy\": %.6f, \"log_loss\": %.6f, \"macro_f1\": %.6f", m->n,
               m->accuracy, m->log_loss, m->macro_f1);
        if (c == 2)
            printf(", \"roc_auc\": %.6f, \"fpr_at_tpr95\": %.6f, \"fpr_at_tpr99\": %.6f, \"mdr_at_fpr1\": %.6f", m->auc,
                   m->fpr_at_tpr95, m->fpr_at_tpr99, m->mdr_at_fpr1);
        printf(", \"classes\": [");
        for (int k = 0; k < c; k++) {
            printf("%s{\"name\": ", k ? ", " : "");
            print_json_string(stdout, class_name(d, k, b, sizeof b));
            printf(", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %d}", m->precision[k],
                   m->recall[k], m->f1[k], m->support[k]);
        }
        printf("], \"ece\": %.6f, \"reliability\": [", m->ece);
        for (int b = 0; b < DS_CALIB_BINS; b++) {
            printf("%s{\"from\": %.2f, \"to\": %.2f, \"count\": %d", b ? ", " : "", (double)b / DS_CALIB_BINS,
                   (double)(b + 1) / DS_CALIB_BINS, m->calib_count[b]);
            if (m->calib_count[b])
                printf(", \"mean_score\": %.6f, \"observed\": %.6f", m->calib_score[b], m->calib_observed[b]);
            printf("}");
        }
        printf("], \"confusion\": [");
        for (int t = 0; t < c; t++) {
            printf("%s[", t ? ", " : "");
            for (int p = 0; p < c; p++) printf("%s%d", p ? ", " : "", m->confusion[t * c + p]);
            printf("]");
        }
        printf("]");
        if (bd) {
            printf(", \"threshold_at_fpr1\": %.6f, \"per_kind\": [", bd->threshold);
            for (int t = 0, first = 1; t < bd->n_kinds; t++) {
                if (!bd->total[t]) continue;
                int real = cli_breakdown_real(bd, t);
                printf("%s{\"kind\": ", first ? "" : ", ");
                first = 0;
                print_json_string(stdout, meta->names[t]);
                printf(", \"class\": %d, \"count\": %d, \"%s\": %.6f}", real, bd->total[t], real ? "found" : "rejected",
                       (double)bd->hit[t] / bd->total[t]);
            }
            printf("], \"recall_per_snr\": [");
            for (int t = 0, first = 1; t < CLI_SNR_BINS && meta->snr; t++) {
                printf("%s{\"from\": %g, \"to\": %g, \"count\": %d, \"found\": %d}", first ? "" : ", ",
                       cli_snr_edges[t], floor(cli_snr_edges[t + 1]), bd->snr_total[t], bd->snr_hit[t]);
                first = 0;
            }
            printf("]");
        }
        printf("}\n");
        return;
    }
    printf("samples   %d\naccuracy  %.4f\nlog-loss  %.4f\nmacro F1  %.4f\n", m->n, m->accuracy, m->log_loss,
           m->macro_f1);
    if (c == 2)
        printf("ROC AUC   %.4f\nerror     %.4f\nFPR at 95%% TPR  %.4f\nFPR at 99%% TPR  %.4f\n"
               "missed-detection rate at 1%% FPR  %.4f\n",
               m->auc, 1 - m->accuracy, m->fpr_at_tpr95, m->fpr_at_tpr99, m->mdr_at_fpr1);
    printf("expected calibration error  %.4f (%d bins)\n", m->ece, DS_CALIB_BINS);
    printf("\nreliability: %s\n%-11s %8s %10s %9s\n",
           c == 2 ? "the share of class 1 against p(class 1)" : "accuracy against the top-1 probability", "score",
           "samples", "mean score", "observed");
    for (int b = 0; b < DS_CALIB_BINS; b++)
        if (m->calib_count[b])
            printf("%.1f-%.1f     %8d %10.4f %9.4f\n", (double)b / DS_CALIB_BINS, (double)(b + 1) / DS_CALIB_BINS,
                   m->calib_count[b], m->calib_score[b], m->calib_observed[b]);
    printf("\n%-16s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
    for (int k = 0; k < c; k++)
        printf("%-16.16s %9.4f %9.4f %9.4f %8d\n", class_name(d, k, b, sizeof b), m->precision[k],
               m->recall[k], m->f1[k], m->support[k]);
    printf("\nconfusion matrix (rows: true, columns: predicted)\n%8s", "");
    for (int p = 0; p < c; p++) printf(" %7.7s", class_name(d, p, b, sizeof b));
    printf("\n");
    for (int t = 0; t < c; t++) {
        printf("%8.8s", class_name(d, t, b, sizeof b));
        for (int p = 0; p < c; p++) printf(" %7d", m->confusion[t * c + p]);
        printf("\n");
    }
    char text[8192];
    if (bd && cli_breakdown_text(bd, (const char *const *)meta->names, text, sizeof text) == 0) printf("\n%s", text);
}

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *spec = NULL, *meta_path = NULL, *report = NULL, *v, *tree_path_opt = NULL;
    int batch = 256, json = 0, batch_given = 0;
    cli_specs extra = {{0}, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data")) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage("--data needs a value");
            const char *val = argv[++i], *eq = strchr(val, '='), *colon = strchr(val, ':');
            if (eq && (!colon || eq < colon) && eq > val) { /* NAME=SPEC: another input's source */
                if (cli_specs_add(&extra, "--data", val)) return 1;
            } else if (spec) {
                return cli_usage("--data is given twice (another input's source is --data NAME=SPEC)");
            } else {
                spec = val;
            }
        } else if (cli_opt(argc, argv, &i, "--tree", &tree_path_opt)) {
            if (!tree_path_opt) return cli_usage("--tree needs a model file with a [tree]");
        } else if (cli_opt(argc, argv, &i, "--meta", &meta_path)) {
            if (!meta_path) return cli_usage("--meta needs a value");
        } else if (cli_opt(argc, argv, &i, "--report", &report)) {
            if (!report || !*report) return cli_usage("--report needs a value");
            if (cli_check_out_dir("--report", report) != 0) return 2;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 20, &batch)) return 1;
            batch_given = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage("eval: unknown option '%s' (see deepsky eval --help)", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            return cli_usage("eval: unexpected argument '%s'", argv[i]);
        }
    }
    if (!ckpt || !spec) return cli_usage("eval: usage: deepsky eval CKPT --data SPEC [--data NAME=SPEC ...]");
    cli_net net;
    ds_norm norm = {0};
    ds_dataset d = {0};
    ds_metrics m = {0};
    cli_meta meta = {0};
    float *probs = NULL;
    ds_provenance prov = {0};
    long *sim_index = NULL; /* per sample, for --meta */
    int rc = 1;
    /* built at batch 1 until the data's size is known, then at min(--batch, samples) */
    if (cli_net_from_checkpoint(ckpt, 1, &net, &norm) != 0) return 1;
    if (load_for(&net, &norm, spec, &extra, &d) != 0 || cli_net_rebatch(&net, cli_cap_batch(batch, d.n, batch_given ? spec : NULL)) != 0) goto done;
    if (cli_provenance_of(net.model, spec, d.n, &prov, meta_path ? &sim_index : NULL) == 0)
        cli_warn_trained_on(ckpt, &prov, spec, d.n);
    int classes = ds_model_classes(net.model);
    if (d.classes == 0) {
        cli_error("%s has no labels to evaluate against (e.g. npy:X.npy,Y.npy)", spec);
        goto done;
    }
    if (d.classes > classes) {
        cli_error("%s has %d classes but the model predicts %d", spec, d.classes, classes);
        goto done;
    }
    if (!(probs = malloc((size_t)d.n * classes * sizeof *probs))) {
        cli_error("out of memory");
        goto done;
    }
    if (cli_predict(&net, &d, probs) != 0) goto done;
    if (ds_metrics_compute(probs, d.y, d.n, classes, &m) != 0) {
        cli_lib_error(spec);
        goto done;
    }
    cli_breakdown bd;
    if (meta_path) {
        if (classes != 2) {
            cli_error("--meta: the survey breakdown is for two classes (0 bogus, 1 real); the model has %d", classes);
            goto done;
        }
        if (cli_meta_read(meta_path, d.n, sim_index, d.y, &meta) != 0 ||
            cli_breakdown_compute(probs, d.y, d.n, meta.kind, meta.n_kinds, meta.snr, &bd) != 0)
            goto done;
    }
    print_metrics(&m, &d, json, meta_path ? &bd : NULL, &meta);
    /* --tree MODEL.cfg: a flat model's mistakes measured on another model file's tree */
    ds_model *tm = tree_path_opt ? ds_model_load(tree_path_opt) : NULL;
    if (tree_path_opt && (!tm || !ds_model_tree(tm) || ds_model_classes(tm) != classes)) {
        if (!tm) cli_lib_error(NULL);
        else cli_error("--tree %s: %s", tree_path_opt, !ds_model_tree(tm) ? "has no [tree]" : "its classes differ from the model's");
        ds_model_free(tm);
        goto done;
    }
    const ds_class_tree *tree = tm ? ds_model_tree(tm) : ds_model_tree(net.model);
    if (tree && !json) { /* a hierarchical model: accuracy and macro F1 at each level of its tree */
        ds_hier_metrics hm;
        char text[8192];
        if (ds_hier_metrics_compute(tree, probs, d.y, d.n, &hm) != 0 ||
            ds_hier_metrics_text(tree, &hm, (const char *const *)(net.class_names ? net.class_names : d.class_names),
                                 text, sizeof text) != 0) {
            cli_lib_error(spec);
            ds_model_free(tm);
            goto done;
        }
        printf("\n%s", text);
        ds_hier_metrics_free(&hm);
    }
    ds_model_free(tm);
    /* the pictures, the worst mistakes (listed as the grid shows them) and report.html with its provenance */
    if (report && cli_eval_report(report, argc, argv, ckpt, spec, &d, probs, &m, meta_path && meta.snr ? &bd : NULL,
                                  meta_path ? &meta : NULL, prov.n_sim || prov.n_files ? &prov : NULL,
                                  json ? NULL : stdout) != 0)
        goto done;
    rc = 0;
done:
    ds_provenance_free(&prov);
    free(sim_index);
    cli_meta_free(&meta);
    ds_metrics_free(&m);
    free(probs);
    ds_dataset_free(&d);
    ds_norm_free(&norm);
    cli_net_free(&net);
    return rc;
}

/* ---- predict ---- */

typedef struct {
    int top, format; /* 0 text, 1 json, 2 npy */
    FILE *out;
    int first;       /* JSON: no comma before the first record */
    const ds_class_tree *tree; /* a hierarchical model's: the path of questions is printed */
} pred_out;

static int by_prob_desc(const float *p, int a, int b) { return p[b] > p[a] || (p[b] == p[a] && b < a); }

/* Probability of reaching id (a class, or classes + node) = the sum of its classes' probabilities. */
static double mass(const ds_class_tree *t, const float *p, int id)
{
    if (id < t->classes) return p[id];
    int k = id - t->classes;
    double s = 0;
    for (int j = 0; j < t->n_children[k]; j++) s += mass(t, p, t->children[t->first[k] + j]);
    return s;
}

/* The questions from the root with their answers' conditional probabilities,
 * "top? 0.97 > shirt_like? 0.88 > Shirt 0.71": at each node the likeliest
 * child, until a class. */
static void tree_path(const ds_class_tree *t, const float *p, const ds_dataset *d, char *buf, size_t size)
{
    int node = t->root;
    size_t k = 0;
    buf[0] = 0;
    for (int guard = 0; guard <= t->n_nodes && k < size; guard++) {
        double here = mass(t, p, t->classes + node), best = -1;
        int pick = -1;
        for (int j = 0; j < t->n_children[node]; j++) {
            int id = t->children[t->first[node] + j];
            double m = mass(t, p, id);
            if (m > best) best = m, pick = id;
        }
        double cond = here > 0 ? best / here : 0;
        char b[32];
        if (pick >= t->classes) {
            k += (size_t)snprintf(buf + k, size - k, "%s%s? %.2f", k ? " > " : "", t->names[pick - t->classes], cond);
            node = pick - t->classes;
        } else {
            snprintf(buf + k, size - k, "%s%s %.2f", k ? " > " : "", class_name(d, pick, b, sizeof b), cond);
            return;
        }
    }
}

static void emit(pred_out *po, const char *src, int index, const float *p, int classes, const ds_dataset *d)
{
    char path[1024] = "";
    if (po->tree) tree_path(po->tree, p, d, path, sizeof path);
    int order[64], k = po->top < classes ? po->top : classes;
    if (k > 64) k = 64;
    for (int i = 0; i < k; i++) { /* partial selection sort: top k */
        int best = -1;
        for (int c = 0; c < classes; c++) {
            bool used = false;
            for (int j = 0; j < i; j++) used |= order[j] == c;
            if (!used && (best < 0 || by_prob_desc(p, best, c))) best = c;
        }
        order[i] = best;
    }
    char b[32];
    if (po->format == 0) {
        fprintf(po->out, "%s[%d]", src, index);
        for (int i = 0; i < k; i++) fprintf(po->out, "\t%s %.4f", class_name(d, order[i], b, sizeof b), p[order[i]]);
        if (po->tree) fprintf(po->out, "\t%s", path);
        fputc('\n', po->out);
        return;
    }
    fprintf(po->out, "%s{\"source\": ", po->first ? "" : ",\n");
    po->first = 0;
    print_json_string(po->out, src);
    fprintf(po->out, ", \"index\": %d, \"top\": [", index);
    for (int i = 0; i < k; i++) {
        fprintf(po->out, "%s{\"class\": ", i ? ", " : "");
        print_json_string(po->out, class_name(d, order[i], b, sizeof b));
        fprintf(po->out, ", \"index\": %d, \"probability\": %.6f}", order[i], p[order[i]]);
    }
    fprintf(po->out, "]");
    if (po->tree) {
        fprintf(po->out, ", \"path\": ");
        print_json_string(po->out, path);
    }
    fprintf(po->out, ", \"probabilities\": [");
    for (int c = 0; c < classes; c++) fprintf(po->out, "%s%.6f", c ? ", " : "", p[c]);
    fprintf(po->out, "]}");
}

typedef struct {
    char **path;
    int n, cap;
} path_list;

static void path_list_free(path_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int path_add(path_list *l, const char *p)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **np = realloc(l->path, sizeof *np * (size_t)cap);
        if (!np) return cli_error("out of memory");
        l->path = np, l->cap = cap;
    }
    if (!(l->path[l->n] = strdup(p))) return cli_error("out of memory");
    l->n++;
    return 0;
}

/* Adds the FITS files in dir and its sub-folders (depth levels), unsorted. */
static int fits_files(const char *dir, int depth, path_list *l)
{
    DIR *dp = opendir(dir);
    if (!dp) return cli_error("%s: cannot read the folder", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            rc = cli_error("%s/%s: path too long", dir, e->d_name);
        else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rc = depth > 0 ? fits_files(p, depth - 1, l) : 0;
        else if (ds_is_fits_name(e->d_name))
            rc = path_add(l, p);
    }
    closedir(dp);
    return rc;
}

/* JSON: the record of an input that could not be read or scored. */
static void emit_error(pred_out *po, const char *src, const char *message)
{
    fprintf(po->out, "%s{\"source\": ", po->first ? "" : ",\n");
    po->first = 0;
    print_json_string(po->out, src);
    fprintf(po->out, ", \"error\": ");
    print_json_string(po->out, message);
    fprintf(po->out, "}");
}

int cmd_predict(int argc, char **argv)
{
    const char *ckpt = NULL, *spec = NULL, *output = NULL, *v;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0, rc = 1, strict = 0, failed = 0, completed = 0, json_open = 0;
    pred_out po = {.top = 1, .first = 1};
    cli_specs extra = {{0}, 0};
    if (!inputs) return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (!strcmp(opt, "--data") && i + 1 < argc) { /* NAME=SPEC: another input's source */
            const char *val = argv[i + 1], *eq = strchr(val, '='), *colon = strchr(val, ':');
            if (eq && (!colon || eq < colon) && eq > val) {
                if (cli_specs_add(&extra, "--data", val)) {
                    rc = 2;
                    goto usage;
                }
                i++;
                continue;
            }
        }
        if (cli_opt(argc, argv, &i, "--data", &spec) || cli_opt(argc, argv, &i, "--output", &output) ||
            cli_opt(argc, argv, &i, "--format", &v) || cli_opt(argc, argv, &i, "--top", &v)) {
            const char *val = argv[i] == opt ? NULL : argv[i]; /* cli_opt leaves i on a last, valueless option */
            if (!val || !*val) {
                rc = cli_usage("predict: %s needs a value", opt);
                goto usage;
            }
            if (!strcmp(opt, "--format")) { /* checked here: every value given is valid */
                po.format = !strcmp(val, "text") ? 0 : !strcmp(val, "json") ? 1 : !strcmp(val, "npy") ? 2 : -1;
                if (po.format < 0) {
                    rc = cli_usage("predict: --format must be text, json or npy, got '%s'", val);
                    goto usage;
                }
            } else if (!strcmp(opt, "--top") && cli_parse_int("--top", val, 1, 64, &po.top)) {
                rc = 2;
                goto usage;
            }
        } else if (!strcmp(argv[i], "--strict")) {
            strict = 1;
        } else if (argv[i][0] == '-') {
            rc = cli_usage("predict: unknown option '%s' (see deepsky predict --help)", argv[i]);
            goto usage;
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            inputs[n_inputs++] = argv[i];
        }
    }
    if (spec) inputs[n_inputs++] = spec;
    if (!ckpt || !n_inputs) {
        rc = cli_usage("predict: usage: deepsky predict CKPT INPUT... | --data SPEC");
        goto usage;
    }
    if (po.format == 2 && !output) {
        rc = cli_usage("predict: --format npy needs --output FILE.npy");
        goto usage;
    }
    cli_net net;
    ds_norm norm = {0};
    float *all = NULL;
    size_t all_n = 0;
    path_list files = {0};
    ds_atomic out_file = {0};
    ds_provenance seen = {0}, one; /* where the inputs came from, against the training data */
    if (cli_net_from_checkpoint(ckpt, 64, &net, &norm) != 0) {
        free(inputs);
        return 1;
    }
    int classes = ds_model_classes(net.model);
    po.out = stdout;
    po.tree = ds_model_tree(net.model);
    /* --output is written atomically: complete, or not at all */
    if (output && po.format != 2) {
        if (ds_atomic_open(&out_file, output) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        po.out = out_file.f;
    }
    if (po.format == 1) fprintf(po.out, "[\n"), json_open = 1;
    /* a folder holding FITS files (in it or its class folders) is its files, each named in the output */
    for (int f = 0; f < n_inputs; f++) {
        struct stat st;
        int before = files.n;
        if (inputs[f] != spec && stat(inputs[f], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (fits_files(inputs[f], 2, &files) != 0) goto done;
            if (files.n > before) qsort(files.path + before, (size_t)(files.n - before), sizeof *files.path, by_name);
        }
        if (files.n == before && path_add(&files, inputs[f]) != 0) goto done; /* a file, or PNG class folders */
    }
    /* an input that cannot be read is reported (stderr; a JSON error record)
     * and the others are still scored, unless --strict */
    for (int f = 0; f < files.n; f++) {
        ds_dataset d = {0};
        const char *input = files.path[f];
        if (load_for(&net, &norm, input, &extra, &d) != 0) {
            ds_dataset_free(&d);
            failed++;
            if (po.format == 1) emit_error(&po, input, cli_last_message());
            if (strict) goto done;
            continue;
        }
        if (cli_provenance_of(net.model, input, d.n, &one, NULL) == 0)
            ds_provenance_merge(&seen, &one), ds_provenance_free(&one);
        float *probs = realloc(all, (all_n + (size_t)d.n) * classes * sizeof *probs);
        if (!probs) {
            ds_dataset_free(&d);
            cli_error("out of memory");
            goto done;
        }
        all = probs;
        probs += all_n * classes;
        if (cli_predict(&net, &d, probs) != 0) {
            ds_dataset_free(&d);
            goto done;
        }
        ds_dataset names = {.classes = net.n_class_names, .class_names = net.class_names}; /* the model's, if kept */
        if (po.format != 2)
            for (int i = 0; i < d.n; i++)
                emit(&po, input, i, probs + (size_t)i * classes, classes, net.class_names ? &names : &d);
        all_n += (size_t)d.n;
        ds_dataset_free(&d);
    }
    completed = 1;
    cli_warn_trained_on(ckpt, &seen, n_inputs == 1 ? inputs[0] : "the inputs", (long)all_n);
    if (po.format == 2 && ds_npy_write(output, ds_shape_of(2, (int)all_n, classes), all) != 0) {
        cli_lib_error(NULL);
        completed = 0;
    }
    rc = completed && !failed ? 0 : 1;
done:
    /* JSON on standard output is closed even after an error, so that it parses */
    if (json_open && (completed || po.out == stdout)) fprintf(po.out, "\n]\n");
    if (out_file.path) {
        if (!completed) ds_atomic_abort(&out_file); /* the previous file, if any, stays */
        else if (ds_atomic_commit(&out_file) != 0) rc = cli_lib_error(NULL);
    }
    if (failed)
        cli_error("predict: %d of %d input%s could not be read (above)%s", failed, files.n, files.n == 1 ? "" : "s",
                  strict ? "; --strict: stopped at the first" : completed ? "; the others were scored" : "");
    free(all);
    free(inputs);
    ds_provenance_free(&seen);
    path_list_free(&files);
    ds_norm_free(&norm);
    cli_net_free(&net);
    return rc;
usage:
    free(inputs);
    return rc;
}
