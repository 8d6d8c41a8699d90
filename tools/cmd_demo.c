/* cmd_demo.c — `deepsky demo`, the main job: simulate survey stamps
 * (real asteroids among bogus detections, at the course's balance), train
 * the default real/bogus CNN (models/realbogus.cfg), print the two-class
 * metrics a survey cares about, and write the HTML report: sample stamps,
 * the confusion matrix, the ROC curve, the reliability diagram, recall
 * against S/N and the worst mistakes. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_VAL_SPLIT 0.1f

#ifndef DS_SOURCE_DIR
#define DS_SOURCE_DIR "."
#endif

/* the difference channel (the last) of stamps idx[0..n) into out [n × S × S] */
static void gather(const ds_dataset *d, const int *idx, int n, float *out)
{
    int C = d->sample.d[0], S = d->sample.d[1];
    for (int k = 0; k < n; k++)
        memcpy(out + (size_t)k * S * S, d->x + ((size_t)idx[k] * C + C - 1) * S * S, sizeof(float) * S * S);
}

/* DIR/NAME_x.npy, DIR/NAME_y.npy and DIR/NAME_y.csv (the labels by name, so
 * that the checkpoint keeps bogus/real), recorded in DIR/provenance.json as
 * the stamps of c, and the data spec that reads them */
static int write_set(const char *dir, const char *name, const ds_dataset *d, const ds_sim_cfg *c, char *spec,
                     size_t size)
{
    char x[PATH_MAX], y[PATH_MAX], yc[PATH_MAX];
    if (cli_path(x, sizeof x, "%s/%s_x.npy", dir, name) || cli_path(y, sizeof y, "%s/%s_y.npy", dir, name) ||
        cli_path(yc, sizeof yc, "%s/%s_y.csv", dir, name))
        return 1;
    if (ds_npy_write(x, ds_shape_of(4, d->n, d->sample.d[0], d->sample.d[1], d->sample.d[2]), d->x) != 0 ||
        ds_npy_write(y, ds_shape_of(1, d->n), d->y) != 0 || ds_labels_write_csv(yc, d) != 0 ||
        ds_provenance_sidecar_add(dir, x + strlen(dir) + 1, c->seed, c->size, c->channels, 0, d->n) != 0)
        return cli_lib_error(NULL);
    snprintf(spec, size, "npy:%s,%s", x, yc);
    return 0;
}

static int cmd_demo(int argc, char **argv)
{
    const char *out = "runs/demo";
    int n = 21753, size = 45, epochs = 0, seed = 1; /* epochs 0: the model file's */
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (cli_opt(argc, argv, &i, "--out", &out)) {
            if (!out || !*out) return cli_usage("--out needs a value");
        } else if (cli_opt(argc, argv, &i, "--n", &v)) {
            if (cli_parse_int("--n", v, 400, 10000000, &n)) return 1;
        } else if (cli_opt(argc, argv, &i, "--epochs", &v)) {
            if (cli_parse_int("--epochs", v, 1, 1000, &epochs)) return 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, 0, INT_MAX, &seed)) return 1;
        } else {
            return cli_usage("demo: unknown option '%s' (see deepsky demo --help)", argv[i]);
        }
    }
    if (cli_check_out_dir("--out", out) != 0) return 2;
    char model[PATH_MAX], path[PATH_MAX], data[2 * PATH_MAX + 8], test[2 * PATH_MAX + 8];
    snprintf(model, sizeof model, "%s/models/realbogus.cfg", DS_SOURCE_DIR);
    FILE *probe = fopen(model, "r");
    if (probe) fclose(probe);
    else snprintf(model, sizeof model, "models/realbogus.cfg");
    /* 1. the data: a training set and a test set a quarter its size, other seeds */
    ds_sim_cfg tc = {.n = n, .size = size, .channels = 1, .real_fraction = 0.0773f, .seed = (uint64_t)seed};
    ds_sim_cfg ec = tc;
    ec.n = n / 4, ec.seed = (uint64_t)seed + 1000003;
    ds_dataset tr = {0}, te = {0};
    ds_sim_meta *meta = NULL;
    float *probs = NULL, *pics = NULL;
    int *idx = NULL, *kind = NULL, rc = 1;
    float *snr = NULL;
    cli_net net = {0};
    ds_norm norm = {0};
    ds_metrics m = {0};
    printf("deepsky demo: simulating %d + %d survey stamps of %dx%d (real asteroids among bogus detections, "
           "7.7 %% real; docs/simulator.md); a tenth of the first %d is the validation split\n",
           tc.n, ec.n, size, size, tc.n);
    fflush(stdout);
    if (ds_sim_dataset(&tc, &tr, NULL) != 0 || ds_sim_dataset(&ec, &te, &meta) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    if (cli_mkdirs(out) != 0) goto done;
    if (write_set(out, "train", &tr, &tc, data, sizeof data) != 0 ||
        write_set(out, "test", &te, &ec, test, sizeof test) != 0)
        goto done;
    ds_dataset_free(&tr);
    /* 2. training: the normal trainer on the default model (a call, not an argv) */
    /* a tenth of the training stamps (disjoint from the test stamps: another seed) is the validation
     * split best.safetensors is chosen on */
    cli_train_opts to = {.model_path = model, .out = out, .seed = seed, .val_split = DEMO_VAL_SPLIT, .quiet = 1,
                         .epochs = epochs};
    to.data = (cli_specs){{data}, 1};
    to.argc = argc, to.argv = argv;
    to.test = (cli_specs){{test}, 1};
    int train_rc = cli_train_run(&to);
    if (train_rc != 0) {
        if (train_rc > 128) rc = train_rc; /* interrupted: 130, and train printed how to resume */
        goto done;
    }
    /* 3. the metrics on the test stamps */
    snprintf(path, sizeof path, "%s/best.safetensors", out);
    if (cli_net_from_checkpoint(path, 256, &net, &norm) != 0) goto done;
    ds_dataset tn = te;
    if (!(tn.x = malloc(sizeof(float) * (size_t)te.n * size * size))) {
        cli_error("out of memory");
        goto done;
    }
    memcpy(tn.x, te.x, sizeof(float) * (size_t)te.n * size * size);
    int norm_rc = ds_norm_apply(&norm, &tn) != 0 ? cli_lib_error(NULL) : 0;
    probs = norm_rc ? NULL : malloc(sizeof(float) * 2 * (size_t)te.n);
    int pred_rc = norm_rc ? 1 : probs ? cli_predict(&net, &tn, probs) : cli_error("out of memory");
    free(tn.x);
    if (pred_rc != 0) goto done;
    if (ds_metrics_compute(probs, te.y, te.n, 2, &m) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    idx = calloc(64, sizeof(int));
    pics = malloc(sizeof(float) * 64 * size * size);
    kind = malloc(sizeof *kind * (size_t)te.n);
    snr = malloc(sizeof *snr * (size_t)te.n);
    if (!idx || !pics || !kind || !snr) {
        cli_error("out of memory");
        goto done;
    }
    int nb = 0;
    for (int i = 0; i < te.n; i++) nb += te.y[i] == 0, kind[i] = meta[i].kind, snr[i] = meta[i].snr;
    /* rejection per bogus kind and recall per S/N bin at the threshold of 1 % false positives */
    cli_breakdown bd;
    const char *kind_names[DS_SIM_KINDS];
    for (int t = 0; t < DS_SIM_KINDS; t++) kind_names[t] = ds_sim_kind_name(t);
    if (cli_breakdown_compute(probs, te.y, te.n, kind, DS_SIM_KINDS, snr, &bd) != 0) goto done;
    char summary[4096];
    int k = snprintf(summary, sizeof summary,
                     "%d test stamps (%d real, %d bogus)\n"
                     "test error                          %.4f\n"
                     "ROC AUC                             %.4f\n"
                     "false-positive rate at 95%% recall   %.4f\n"
                     "false-positive rate at 99%% recall   %.4f\n"
                     "missed-detection rate at 1%% FPR     %.4f   (PTF's random forest: 0.077, Brink et al. 2013)\n"
                     "expected calibration error          %.4f   (reliability.png)\n"
                     "\nconfusion matrix at score 0.5 (rows: true, columns: predicted)\n"
                     "           bogus   real\n"
                     "  bogus   %6d %6d\n"
                     "  real    %6d %6d\n\n",
                     te.n, te.n - nb, nb, 1 - m.accuracy, m.auc, m.fpr_at_tpr95, m.fpr_at_tpr99, m.mdr_at_fpr1, m.ece,
                     m.confusion[0], m.confusion[1], m.confusion[2], m.confusion[3]);
    if (cli_breakdown_text(&bd, kind_names, summary + k, sizeof summary - (size_t)k) != 0) goto done;
    printf("\n%s", summary);
    /* 4. pictures: sample stamps, the worst mistakes, ROC, recall against S/N */
    int nr = 0, nbog = 0, per_kind[DS_SIM_KINDS] = {0};
    for (int i = 0; i < te.n && nr < 32; i++)
        if (meta[i].label) idx[nr++] = i;
    gather(&te, idx, nr, pics);
    snprintf(path, sizeof path, "%s/stamps_real.png", out);
    if (nr && ds_png_grid(path, pics, nr, size, size, 8, 1) != 0) goto lib_fail;
    for (int i = 0; i < te.n && nbog < 32; i++)
        if (!meta[i].label && per_kind[meta[i].kind] < 4) idx[nbog++] = i, per_kind[meta[i].kind]++;
    gather(&te, idx, nbog, pics);
    snprintf(path, sizeof path, "%s/stamps_bogus.png", out);
    if (nbog && ds_png_grid(path, pics, nbog, size, size, 8, 1) != 0) goto lib_fail;
    { /* the worst mistakes, listed as the labelled grid shows them; ROC on a log FPR axis; recall per S/N bin */
        cli_meta cm = {.kind = kind, .n_kinds = DS_SIM_KINDS, .snr = snr};
        for (int t = 0; t < DS_SIM_KINDS; t++) cm.names[t] = (char *)ds_sim_kind_name(t);
        printf("\n");
        if (cli_worst_mistakes(out, &te, probs, 2, &cm, 16, stdout) != 0 || cli_plot_roc(out, probs, te.y, te.n) != 0 ||
            cli_plot_recall_snr(out, &bd) != 0)
            goto done;
    }
    if (cli_plot_reliability(out, &m) != 0) goto done;
    snprintf(path, sizeof path, "%s/confusion.png", out);
    if (ds_plot_confusion(path, 2, m.confusion, (const char *const[]){"bogus", "real"}) != 0) goto lib_fail;
    if (ds_report_html(out, "deepsky demo: asteroid real/bogus on simulated survey stamps", summary) != 0)
        goto lib_fail;
    printf("report: %s/report.html (confusion matrix, ROC, reliability, recall against S/N, sample stamps, the "
           "worst mistakes)\n", out);
    rc = 0;
    goto done;
lib_fail:
    cli_lib_error(NULL);
done:
    ds_metrics_free(&m);
    if (net.g) cli_net_free(&net);
    ds_norm_free(&norm);
    free(probs);
    free(pics);
    free(idx);
    free(kind);
    free(snr);
    free(meta);
    ds_dataset_free(&tr);
    ds_dataset_free(&te);
    return rc;
}

/* `deepsky demo`: its help (deepsky demo --help) and its registration in deepsky.c */
const cli_command cli_cmd_demo = {
    "demo",
    cmd_demo,
    "the main job: asteroid real/bogus on simulated survey stamps, trained and reported",
    "usage: deepsky demo [--out DIR] [--n N] [--epochs N] [--seed N]\n"
    "\n"
    "  --out DIR          output folder (default runs/demo)\n"
    "  --n N              training stamps (default 21753, the course's set; a tenth of them validates,\n"
    "                     the test set is N/4 more of another seed)\n"
    "  --epochs N         training epochs (default: the model file's, 20)\n"
    "  --seed N           simulation and training seed (default 1)\n"
    "\n"
    "Simulates 45x45 difference-image stamps (7.7 % real asteroids; docs/simulator.md),\n"
    "trains models/realbogus.cfg, prints test error, ROC AUC, false-positive rates at\n"
    "95 % and 99 % recall, the missed-detection rate at 1 % false positives, rejection\n"
    "per bogus kind and recall per S/N, and writes DIR/report.html.\n",
    NULL,
};
