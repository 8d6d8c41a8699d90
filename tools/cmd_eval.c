/* cmd_eval.c — `deepsky eval`: metrics on labelled data (per class, per
 * level of a class tree, the survey's breakdown) and eval --report. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            cli_print_json_string(stdout, cli_class_name(d, k, b, sizeof b));
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
                cli_print_json_string(stdout, meta->names[t]);
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
        printf("%-16.16s %9.4f %9.4f %9.4f %8d\n", cli_class_name(d, k, b, sizeof b), m->precision[k],
               m->recall[k], m->f1[k], m->support[k]);
    printf("\nconfusion matrix (rows: true, columns: predicted)\n%8s", "");
    for (int p = 0; p < c; p++) printf(" %7.7s", cli_class_name(d, p, b, sizeof b));
    printf("\n");
    for (int t = 0; t < c; t++) {
        printf("%8.8s", cli_class_name(d, t, b, sizeof b));
        for (int p = 0; p < c; p++) printf(" %7d", m->confusion[t * c + p]);
        printf("\n");
    }
    char text[8192];
    if (bd && cli_breakdown_text(bd, (const char *const *)meta->names, text, sizeof text) == 0) printf("\n%s", text);
}

static int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *spec = NULL, *meta_path = NULL, *report = NULL, *v, *tree_path_opt = NULL;
    int batch = 256, json = 0, batch_given = 0;
    cli_specs extra = {{0}, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data")) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage("--data needs a value");
            const char *val = argv[++i];
            if (cli_is_binding(val)) { /* NAME=SPEC: another input's source */
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
    if (cli_net_load_data(&net, &norm, spec, &extra, &d) != 0 || cli_net_rebatch(&net, cli_cap_batch(batch, d.n, batch_given ? spec : NULL)) != 0) goto done;
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
    if (net.prog.n_heads > 1 && !json) { /* every head's mean loss on this data (a head without its target: not scored) */
        ds_loader *l = ds_loader_new(&d, net.batch, 0, 0);
        ds_trainer *t = l ? ds_trainer_new(&net.prog, NULL, 0, &(ds_trainer_cfg){.epochs = 1}, NULL) : NULL;
        ds_epoch_stats es;
        if (!t || ds_trainer_evaluate(t, l, &es, NULL) != 0) {
            cli_lib_error(spec);
            ds_trainer_free(t);
            ds_loader_free(l);
            goto done;
        }
        static const char *const kinds[] = {"softmax", "binary", "mse", "hierarchical"};
        printf("\nheads (mean loss on this data):\n");
        for (int h = 0; h < net.prog.n_heads; h++) {
            const ds_head *hd = &net.prog.heads[h];
            int f = -1;
            for (int k = 1; k < net.prog.n_feeds; k++)
                if (net.prog.feeds[k] == hd->target) f = k;
            if (f >= 1 + d.n_fields)
                printf("  %-16s %-12s (no data for target '%s': --data %s=SPEC)\n", hd->name, kinds[hd->loss_kind],
                       net.prog.feed_names[f], net.prog.feed_names[f]);
            else
                printf("  %-16s %-12s %.6f\n", hd->name, kinds[hd->loss_kind], es.head_loss[h]);
        }
        ds_trainer_free(t);
        ds_loader_free(l);
    }
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

/* `deepsky eval`: its help (deepsky eval --help) and its registration in deepsky.c */
static const char *const eval_repeatable[] = {"--data", NULL}; /* NAME=SPEC: one source each */
const cli_command cli_cmd_eval = {
    "eval",
    cmd_eval,
    "evaluate a checkpoint: accuracy, per-class metrics, confusion matrix",
    "usage: deepsky eval CKPT --data SPEC [--data NAME=SPEC ...] [--meta FILE.csv] [--tree MODEL.cfg]\n"
    "                    [--report DIR] [--batch N] [--json]\n"
    "\n"
    "Prints accuracy, log-loss, per-class precision/recall/F1, the confusion\n"
    "matrix and the reliability table (expected calibration error); for two\n"
    "classes also ROC AUC, the false-positive rates at 95 % and 99 % recall and\n"
    "the missed-detection rate at 1 % FPR. --meta FILE.csv (one row per sample\n"
    "with 'kind' and/or 'snr' columns, as simulate's labels.csv) adds, at the\n"
    "1 %-FPR threshold, the share of each bogus kind rejected and of real\n"
    "sources found per S/N bin (rows matched by its 'index' column to the stamps'\n"
    "simulator indices, 'label' checked). --json prints one JSON object.\n"
    "--report DIR writes confusion, reliability, ROC (false-positive rate on a\n"
    "log axis) and recall-against-S/N plots, the worst mistakes (a labelled\n"
    "grid, listed in the same order) and DIR/report.html with the provenance\n"
    "(command, checkpoint hash, data, version, date).\n"
    "A hierarchical model (a [tree]) also gets accuracy and macro F1 per level of\n"
    "its tree; --tree MODEL.cfg measures a flat model on that model file's tree.\n"
    "--data NAME=SPEC is the source of a several-input model's other [input] NAME,\n"
    "as for train.\n"
    "Warns when the data overlaps the checkpoint's training data.\n",
    eval_repeatable,
};
