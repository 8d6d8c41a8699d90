/* cmd_predict.c — `deepsky predict`: probabilities and top-k (and a class
 * tree's path of questions) for files, folders of FITS cutouts or a data
 * spec. */
#include "cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            snprintf(buf + k, size - k, "%s%s %.2f", k ? " > " : "", cli_class_name(d, pick, b, sizeof b), cond);
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
        for (int i = 0; i < k; i++) fprintf(po->out, "\t%s %.4f", cli_class_name(d, order[i], b, sizeof b), p[order[i]]);
        if (po->tree) fprintf(po->out, "\t%s", path);
        fputc('\n', po->out);
        return;
    }
    fprintf(po->out, "%s{\"source\": ", po->first ? "" : ",\n");
    po->first = 0;
    cli_print_json_string(po->out, src);
    fprintf(po->out, ", \"index\": %d, \"top\": [", index);
    for (int i = 0; i < k; i++) {
        fprintf(po->out, "%s{\"class\": ", i ? ", " : "");
        cli_print_json_string(po->out, cli_class_name(d, order[i], b, sizeof b));
        fprintf(po->out, ", \"index\": %d, \"probability\": %.6f}", order[i], p[order[i]]);
    }
    fprintf(po->out, "]");
    if (po->tree) {
        fprintf(po->out, ", \"path\": ");
        cli_print_json_string(po->out, path);
    }
    fprintf(po->out, ", \"probabilities\": [");
    for (int c = 0; c < classes; c++) fprintf(po->out, "%s%.6f", c ? ", " : "", p[c]);
    fprintf(po->out, "]}");
}

/* JSON: the record of an input that could not be read or scored. */
static void emit_error(pred_out *po, const char *src, const char *message)
{
    fprintf(po->out, "%s{\"source\": ", po->first ? "" : ",\n");
    po->first = 0;
    cli_print_json_string(po->out, src);
    fprintf(po->out, ", \"error\": ");
    cli_print_json_string(po->out, message);
    fprintf(po->out, "}");
}

static int cmd_predict(int argc, char **argv)
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
            const char *val = argv[i + 1];
            if (cli_is_binding(val)) {
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
    cli_path_list files = {0};
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
    if (cli_inputs_expand(inputs, n_inputs, spec, &files) != 0) goto done;
    /* an input that cannot be read is reported (stderr; a JSON error record)
     * and the others are still scored, unless --strict */
    for (int f = 0; f < files.n; f++) {
        ds_dataset d = {0};
        const char *input = files.path[f];
        if (cli_net_load_data(&net, &norm, input, &extra, &d) != 0) {
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
    cli_path_list_free(&files);
    ds_norm_free(&norm);
    cli_net_free(&net);
    return rc;
usage:
    free(inputs);
    return rc;
}

/* `deepsky predict`: its help (deepsky predict --help) and its registration in deepsky.c */
static const char *const predict_repeatable[] = {"--data", NULL}; /* NAME=SPEC: one source each */
const cli_command cli_cmd_predict = {
    "predict",
    cmd_predict,
    "class probabilities for files or a data spec",
    "usage: deepsky predict CKPT INPUT... [--top K] [--format text|json|npy] [--output FILE] [--strict]\n"
    "       deepsky predict CKPT --data SPEC [...]\n"
    "\n"
    "  INPUT              an image (PNG/JPEG), FITS, NPY or CSV file, or a folder of FITS files\n"
    "  --data NAME=SPEC   the source of the model's other [input] NAME, as for train (the first\n"
    "                     input's is INPUT or --data SPEC)\n"
    "  --top K            classes to list per sample (default 1)\n"
    "  --format F         text (default), json, or npy (probabilities [n, classes]; needs --output)\n"
    "  --output FILE      write there instead of standard output (atomically)\n"
    "  --strict           stop at the first input that cannot be read (default: report it, score\n"
    "                     the others, exit 1)\n"
    "\n"
    "A hierarchical model (a [tree]) also prints the path of questions with the\n"
    "probability of each answer: top? 0.97 > shirt_like? 0.88 > Shirt 0.71\n",
    predict_repeatable,
};
