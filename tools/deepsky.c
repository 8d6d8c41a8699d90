/* deepsky.c — the command-line tool: a dispatch table of subcommands and the
 * helpers they share. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "the main job: asteroid real/bogus on simulated survey stamps, trained and reported",
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
     "per bogus kind and recall per S/N, and writes DIR/report.html.\n"},
    {"train", cmd_train, "train a model file on data, writing checkpoints and a report",
     "usage: deepsky train MODEL.cfg --data SPEC [options]\n"
     "       deepsky train --resume CKPT --data SPEC [options]\n"
     "\n"
     "  --data SPEC        training data (see docs/cli.md: fashion-mnist, idx:, npy:, csv:, folder:, fits:)\n"
     "  --val SPEC         validation data\n"
     "  --val-split F      hold out a fraction F of the training data for validation\n"
     "  --test SPEC        evaluate the best model on this data at the end\n"
     "                     (default for --data fashion-mnist: fashion-mnist:test)\n"
     "  --epochs N         total epochs (default: [train] epochs)\n"
     "  --batch N          batch size (default: [train] batch)\n"
     "  --lr X             learning rate (default: [train] lr)\n"
     "  --seed N           seed for initialisation, shuffling and dropout\n"
     "  --out DIR          output folder (default runs/<model name>)\n"
     "  --resume CKPT      continue from a checkpoint (its model and state)\n"
     "  --init CKPT        start from a checkpoint's weights (e.g. deepsky pretrain's)\n"
     "  --quiet            no progress bar\n"
     "\n"
     "Writes DIR/last.safetensors, DIR/best.safetensors, DIR/metrics.csv,\n"
     "DIR/loss.png, DIR/accuracy.png, DIR/confusion.png and DIR/report.html.\n"
     "best is the epoch of the best validation accuracy; without validation\n"
     "data, the last epoch.\n"},
    {"pretrain", cmd_pretrain, "train a model's [rbm] layers without labels, one after the other (DBN)",
     "usage: deepsky pretrain MODEL.cfg --data SPEC [--val SPEC | --val-split F] [--epochs N] [--out DIR]\n"
     "\n"
     "  --data SPEC        data (labels, if any, are not used)\n"
     "  --val SPEC         held-out data: its free energy against the training data's (the gap)\n"
     "  --val-split F      hold out a fraction F of the data for that\n"
     "  --epochs N         epochs per RBM (default: [pretrain] epochs)\n"
     "  --out DIR          output folder (default runs/<model name>)\n"
     "\n"
     "Trains each [rbm] layer as a restricted Boltzmann machine on the previous\n"
     "one's hidden probabilities ([pretrain]: CD-k or persistent CD, rate, momentum,\n"
     "weight decay, sparsity). Writes DIR/pretrained.safetensors, DIR/pretrain.csv\n"
     "and, for images, DIR/<first rbm>_weights.png and DIR/<first rbm>_samples.png.\n"
     "Then: deepsky train MODEL.cfg --init DIR/pretrained.safetensors --data SPEC\n"},
    {"eval", cmd_eval, "evaluate a checkpoint: accuracy, per-class metrics, confusion matrix",
     "usage: deepsky eval CKPT --data SPEC [--meta FILE.csv] [--report DIR] [--batch N] [--json]\n"
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
     "Warns when the data overlaps the checkpoint's training data.\n"},
    {"predict", cmd_predict, "class probabilities for files or a data spec",
     "usage: deepsky predict CKPT INPUT... [--top K] [--format text|json|npy] [--output FILE] [--strict]\n"
     "       deepsky predict CKPT --data SPEC [...]\n"
     "\n"
     "  INPUT              an image (PNG/JPEG), FITS, NPY or CSV file, or a folder of FITS files\n"
     "  --top K            classes to list per sample (default 1)\n"
     "  --format F         text (default), json, or npy (probabilities [n, classes]; needs --output)\n"
     "  --output FILE      write there instead of standard output (atomically)\n"
     "  --strict           stop at the first input that cannot be read (default: report it, score\n"
     "                     the others, exit 1)\n"},
    {"simulate", cmd_simulate, "simulated survey stamps: real asteroids and bogus detections",
     "usage: deepsky simulate --out DIR [--n N] [--size S] [--channels 1|3] [--real-fraction F] [--seed N]\n"
     "                        [--cutouts] [--force]\n"
     "\n"
     "  --n N              stamps (default 2000)\n"
     "  --size S           pixels per side (default 45)\n"
     "  --channels C       1: the difference image (default); 3: science, reference, difference\n"
     "  --real-fraction F  share of real asteroids (default 0.0773, the course's 1,681 of 21,753)\n"
     "  --seed N           the same seed gives the same stamps (default 4242; the demo trains on 1)\n"
     "  --cutouts          also one FITS file per stamp, DIR/cutouts/{real,bogus}/NNNNNN.fits,\n"
     "                     its class, kind, S/N, trail, FWHM and sky in the header\n"
     "  --force            DIR may hold files: remove simulate's own there first (else refused)\n"
     "\n"
     "Writes DIR/x.npy [n, C, S, S] (electrons, sky-subtracted), DIR/y.npy (1 real,\n"
     "0 bogus), DIR/y.csv (the same by name: train on npy:DIR/x.npy,DIR/y.csv and the\n"
     "model keeps the names bogus/real), DIR/labels.csv (kind, S/N, trail length and\n"
     "angle, FWHM, sky, ...), FITS cubes DIR/difference.fits (and science.fits,\n"
     "reference.fits with 3 channels), and DIR/provenance.json (seed and stamp range\n"
     "of each file, by hash).\n"     "The model and its parameter ranges: docs/simulator.md.\n"},
    {"info", cmd_info, "layer table of a model file or checkpoint",
     "usage: deepsky info MODEL.cfg|CKPT\n"
     "       deepsky info CKPT --tensor NAME\n"
     "\n"
     "Prints each layer's output shape, parameters, FLOPs per sample and\n"
     "activation memory per sample, then the totals; with --tensor, one\n"
     "checkpoint tensor's shape and values.\n"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "deepsky %s — deep learning for scientific images and tables\n\n"
               "usage: deepsky COMMAND [options]   (deepsky COMMAND --help for details)\n\n",
            DS_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
}

static char last_message[1024];
static bool usage_seen; /* a usage error was reported: the exit status is 2 */

/* ---- interrupts ---- */

volatile sig_atomic_t cli_interrupted;
static volatile sig_atomic_t graceful;

/* SIGINT/SIGTERM: with cli_graceful_interrupts() on (train), the first one
 * only sets cli_interrupted, which the training loop checks between batches
 * so that no checkpoint is cut short; otherwise (or the second time) the
 * temporary files being written are unlinked and the signal kills us, so
 * the exit status is 128 + signal (130 for Ctrl-C) and no output is half
 * written. */
static void on_signal(int sig)
{
    if (graceful && !cli_interrupted) {
        cli_interrupted = sig;
        return;
    }
    ds_atomic_unlink_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_graceful_interrupts(bool on) { graceful = on; }

/* Everything printed must have reached standard output: a full disk or a
 * closed pipe is an error (status 1), not a silent loss. */
static int check_stdout(int rc)
{
    errno = 0;
    int bad = ferror(stdout) != 0, err = errno;
    if (fflush(stdout) != 0) bad = 1, err = errno;
    if (fclose(stdout) != 0 && !bad) bad = 1, err = errno;
    if (!bad) return rc;
    cli_error("cannot write the standard output: %s", err ? strerror(err) : "write error");
    return rc ? rc : 1;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2)
            for (int i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    fputs(commands[i].usage, stdout);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("deepsky %s\n", DS_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name)) continue;
        for (int a = 2; a < argc; a++) {
            if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                fputs(commands[i].usage, stdout);
                return 0;
            }
            /* a repeated option is a mistake, whichever one was meant */
            bool sources = !strcmp(argv[a], "--data") || !strcmp(argv[a], "--val") || !strcmp(argv[a], "--test");
            for (int b = 2; b < a && !sources && !strncmp(argv[a], "--", 2); b++) /* sources: NAME=SPEC each */
                if (!strcmp(argv[a], argv[b])) return cli_usage("%s: %s is given twice", name, argv[a]);
        }
        int rc = commands[i].run(argc - 1, argv + 1);
        return rc == 1 && usage_seen ? 2 : rc;
    }
    cli_error("unknown command '%s'", name);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return check_stdout(run(argc, argv));
}

/* ---- shared helpers ---- */

static void report(const char *fmt, va_list ap)
{
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    cli_progress_interrupt(); /* the message on a line of its own, not after a progress bar */
    fprintf(stderr, "deepsky: %s\n", last_message);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    return 1;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    usage_seen = true;
    return 2;
}

const char *cli_last_message(void) { return last_message; }

int cli_lib_error(const char *context)
{
    return context ? cli_error("%s: %s", context, ds_last_error()) : cli_error("%s", ds_last_error());
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    if (strcmp(argv[*i], name)) return false;
    if (*i + 1 >= argc) {
        *value = NULL;
        return true;
    }
    *value = argv[++*i];
    return true;
}

int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi)
        return cli_usage("%s needs an integer in %d..%d, got '%s'", opt, lo, hi, s ? s : "(nothing)");
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, float *out)
{
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || *end || end == s || !(v >= lo && v <= hi))
        return cli_usage("%s needs a number in [%g, %g], got '%s'", opt, lo, hi, s ? s : "(nothing)");
    *out = (float)v;
    return 0;
}

int cli_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < size) return 0;
    return cli_error("path too long (%d characters; at most %zu): %.80s...", n, size - 1, buf);
}

/* the longest name written into an output folder, with its temporary
 * suffix: "cutouts/bogus/NNNNNNNNNN.fits.tmp.XXXXXX" and the like */
#define CLI_OUT_NAME_MAX 64

int cli_check_out_dir(const char *opt, const char *dir)
{
    size_t n = strlen(dir);
    if (n + CLI_OUT_NAME_MAX < PATH_MAX) return 0;
    return cli_usage("%s: the folder name has %zu characters; at most %d fit (PATH_MAX %d less %d for the file "
                     "names in it)",
                     opt, n, PATH_MAX - 1 - CLI_OUT_NAME_MAX, PATH_MAX, CLI_OUT_NAME_MAX);
}

int cli_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return cli_error("path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == 0) {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return cli_error("cannot create folder %s: %s", buf, strerror(errno));
            *p = c;
        }
        if (!c) break;
    }
    return 0;
}

enum { NET_TRAIN, NET_INFERENCE, NET_PLAN };

static int net_build(cli_net *net, ds_model *model, int batch, uint64_t seed, int mode, const float *cw)
{
    memset(net, 0, sizeof *net);
    net->model = model;
    net->batch = batch;
    net->g = ds_graph_new(seed);
    if (!net->g) return cli_lib_error(NULL);
    ds_program_opts po = {.class_weights = cw};
    if (ds_model_build_program(model, net->g, batch, &po, &net->prog) != 0) return cli_lib_error(NULL);
    int ch = ds_program_class_head(&net->prog);
    net->x = net->prog.feeds[0];
    net->y = net->prog.labels;
    net->logits = ch >= 0 ? net->prog.heads[ch].out : NULL;
    net->loss = net->prog.loss;
    if (!net->logits) return cli_error("%s: the model has no classifying [output] (loss=softmax or hierarchical); "
                                       "train, eval and predict need one", ds_model_file(model));
    if (mode == NET_INFERENCE) { /* eval/predict: no gradients, activations share memory */
        for (int h = 0; h < net->prog.n_heads; h++) ds_node_keep(net->prog.heads[h].out);
        if (ds_graph_plan_inference(net->g) != 0) return cli_lib_error(NULL);
    }
    if (mode != NET_PLAN && ds_graph_compile(net->g) != 0) return cli_lib_error(NULL);
    return 0;
}

int cli_net_build(cli_net *net, ds_model *model, int batch, uint64_t seed, const float *class_weights)
{
    return net_build(net, model, batch, seed, NET_TRAIN, class_weights);
}

int cli_net_plan(cli_net *net, ds_model *model, int batch)
{
    return net_build(net, model, batch, 0, NET_PLAN, NULL);
}

void cli_net_free(cli_net *net)
{
    for (int k = 0; k < DS_MAX_INPUTS; k++) ds_norm_free(&net->in_norm[k]);
    ds_class_names_free(net->class_names, net->n_class_names);
    ds_graph_free(net->g);
    ds_model_free(net->model);
    memset(net, 0, sizeof *net);
}

int cli_net_from_checkpoint(const char *path, int batch, cli_net *net, ds_norm *norm)
{
    memset(net, 0, sizeof *net);
    ds_checkpoint *ck = ds_checkpoint_open(path);
    if (!ck) return cli_lib_error(NULL);
    int rc = 1;
    ds_model *m = ds_model_parse(ds_checkpoint_model_text(ck), path);
    if (!m) {
        cli_lib_error("model stored in the checkpoint");
        goto done;
    }
    if (net_build(net, m, batch, 0, NET_INFERENCE, NULL) != 0) goto done;
    if (ds_checkpoint_restore(ck, net->g, NULL) != 0 || (norm && ds_checkpoint_norm(ck, norm) != 0) ||
        ds_checkpoint_classes(ck, &net->class_names, &net->n_class_names) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    for (int k = 0; k < ds_model_num_inputs(m); k++) { /* every input's normalisation, stored by train */
        char key[80];
        snprintf(key, sizeof key, k ? "norm.%s" : "norm", ds_model_input_name(m, k));
        if (ds_checkpoint_norm_key(ck, key, &net->in_norm[k]) == 0) continue;
        cli_lib_error(NULL);
        goto done;
    }
    ds_graph_set_training(net->g, 0);
    rc = 0;
done:
    ds_checkpoint_close(ck);
    if (rc) cli_net_free(net);
    return rc;
}

int cli_map_classes(const ds_checkpoint *c, ds_dataset *d, const char *what)
{
    char **names;
    int n;
    if (ds_checkpoint_classes(c, &names, &n) != 0) return cli_lib_error(NULL);
    int rc = ds_dataset_map_classes(d, (const char *const *)names, n, what) != 0 ? cli_lib_error(NULL) : 0;
    ds_class_names_free(names, n);
    return rc;
}

int cli_net_rebatch(cli_net *net, int batch)
{
    if (batch == net->batch) return 0;
    ds_model *m = ds_model_parse(ds_model_text(net->model), "the checkpoint's model");
    if (!m) return cli_lib_error(NULL);
    cli_net nn;
    if (net_build(&nn, m, batch, 0, NET_INFERENCE, NULL) != 0) {
        if (nn.g) cli_net_free(&nn);
        else ds_model_free(m);
        return 1;
    }
    /* the same model text builds the same parameters in the same order */
    if (ds_graph_num_params(nn.g) != ds_graph_num_params(net->g)) {
        cli_net_free(&nn);
        return cli_error("rebuilding the model for batch %d gave other parameters", batch);
    }
    for (int i = 0; i < ds_graph_num_params(net->g); i++) {
        ds_node *a = ds_graph_param(net->g, i), *b = ds_graph_param(nn.g, i);
        memcpy(ds_node_value(b), ds_node_value(a), ds_node_numel(a) * sizeof(float));
    }
    ds_graph_set_training(nn.g, 0);
    nn.class_names = net->class_names, nn.n_class_names = net->n_class_names; /* moved, not copied */
    net->class_names = NULL, net->n_class_names = 0;
    memcpy(nn.in_norm, net->in_norm, sizeof nn.in_norm);
    memset(net->in_norm, 0, sizeof net->in_norm);
    cli_net_free(net);
    *net = nn;
    return 0;
}

int cli_cap_batch(int batch, int n, const char *what)
{
    if (n < 1 || batch <= n) return batch;
    if (what) fprintf(stderr, "note: batch %d is more than the %d samples of %s; using %d\n", batch, n, what, n);
    return n;
}

static bool same_shape(ds_shape a, ds_shape b)
{
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return false;
    return true;
}

int cli_check_input(const cli_net *net, const ds_dataset *d, const char *what)
{
    ds_shape want = ds_model_input_shape(net->model);
    char a[96], b[96];
    if (!same_shape(want, d->sample))
        return cli_error("%s: samples are %s but the model's %s%s is %s", what, ds_shape_str(d->sample, a, sizeof a),
                         ds_model_num_inputs(net->model) > 1 ? "input " : "[net] input",
                         ds_model_num_inputs(net->model) > 1 ? ds_model_input_name(net->model, 0) : "",
                         ds_shape_str(want, b, sizeof b));
    for (int k = 0; k < d->n_fields && k + 1 < net->prog.n_feeds; k++) {
        ds_shape f = ds_node_shape(net->prog.feeds[k + 1]), per = {.ndim = f.ndim - 1};
        for (int j = 1; j < f.ndim; j++) per.d[j - 1] = f.d[j];
        if (!same_shape(per, d->fields[k].sample))
            return cli_error("%s: '%s' is %s per sample but the model's %s '%s' is %s", what, d->fields[k].name,
                             ds_shape_str(d->fields[k].sample, a, sizeof a), k + 1 < net->prog.n_inputs ? "input" : "target",
                             net->prog.feed_names[k + 1], ds_shape_str(per, b, sizeof b));
    }
    return 0;
}

int cli_norms_apply(const ds_norm *norm, int n, ds_dataset *d, const char *what)
{
    if (ds_norm_apply(&norm[0], d) != 0) return cli_lib_error(what);
    for (int k = 1; k < n && k - 1 < d->n_fields; k++) {
        ds_field *f = &d->fields[k - 1];
        ds_dataset view = {.n = d->n, .sample = f->sample, .x = f->x};
        if (ds_norm_apply(&norm[k], &view) != 0) {
            char ctx[256];
            snprintf(ctx, sizeof ctx, "%s, input '%s'", what, f->name);
            return cli_lib_error(ctx);
        }
    }
    return 0;
}

int cli_data_load(const ds_model *model, const char *spec, ds_dataset *d)
{
    ds_shape in = ds_model_input_shape(model);
    if (ds_data_load_channels(spec, in.ndim == 3 ? in.d[0] : 0, d) != 0 || ds_dataset_check_finite(d, spec) != 0)
        return cli_lib_error(NULL);
    return 0;
}

int cli_plot_reliability(const char *dir, const ds_metrics *m)
{
    char path[PATH_MAX], lab[DS_CALIB_BINS][16];
    float x[DS_CALIB_BINS], obs[DS_CALIB_BINS], lo[DS_CALIB_BINS], hi[DS_CALIB_BINS];
    const char *labels[DS_CALIB_BINS];
    for (int b = 0; b < DS_CALIB_BINS; b++) {
        int n = m->calib_count[b];
        double l, h;
        /* the observed share at the bin's mean score, with its 95 % Wilson interval and count */
        x[b] = n ? (float)m->calib_score[b] : NAN, obs[b] = n ? (float)m->calib_observed[b] : NAN;
        cli_wilson((int)lround(m->calib_observed[b] * n), n, 1.96, &l, &h);
        lo[b] = (float)l, hi[b] = (float)h;
        snprintf(lab[b], sizeof lab[b], "%d", n);
        labels[b] = n ? lab[b] : NULL;
    }
    float diag[2] = {0, 1};
    const char *what = m->classes == 2 ? "class-1 share" : "accuracy";
    ds_plot_series s[2] = {{.name = what, .x = x, .y = obs, .lo = lo, .hi = hi, .labels = labels, .n = DS_CALIB_BINS,
                            .style = DS_PLOT_LINE_POINTS},
                           {.name = "a calibrated score", .x = diag, .y = diag, .n = 2, .style = DS_PLOT_DASHED}};
    char title[128];
    snprintf(title, sizeof title, "Reliability, samples per bin (ECE %.4f)", m->ece);
    ds_plot_opts o = {.title = title,
                      .xlabel = m->classes == 2 ? "mean p(class 1) in the bin (10 bins)" : "mean top-1 probability in the bin (10 bins)",
                      .ylabel = what, .x_fixed = 1, .xmin = 0, .xmax = 1, .y_fixed = 1, .ymin = 0, .ymax = 1.05};
    if (snprintf(path, sizeof path, "%s/reliability.png", dir) >= (int)sizeof path)
        return cli_error("%s: path too long", dir);
    if (ds_plot_xy(path, &o, s, 2) != 0) return cli_lib_error(NULL);
    return 0;
}

int cli_predict(cli_net *net, const ds_dataset *d, float *probs)
{
    ds_loader *l = ds_loader_new(d, net->batch, 0, 0);
    if (!l) return cli_lib_error(NULL);
    ds_graph_set_training(net->g, 0);
    int b, done = 0, classes = ds_model_classes(net->model), rc = 0;
    float *y = ds_node_value(net->y), *dst[DS_MAX_FEEDS];
    for (int k = 0; k < net->prog.n_feeds; k++) dst[k] = ds_node_value(net->prog.feeds[k]);
    /* targets the data lack (predict has none) are zeros: the loss then reads numbers */
    for (int k = 1 + d->n_fields; k < net->prog.n_feeds; k++)
        memset(dst[k], 0, ds_node_numel(net->prog.feeds[k]) * sizeof(float));
    while ((b = ds_loader_next_fields(l, dst, y)) > 0) {
        /* labels are not needed to predict: keep them valid for the loss */
        for (int i = 0; i < b; i++) y[i] = 0;
        if (ds_graph_set_batch(net->g, b) != 0 || ds_graph_forward(net->g) != 0) {
            rc = cli_lib_error(NULL);
            break;
        }
        if (ds_program_probs(&net->prog, ds_program_class_head(&net->prog), b, done, probs + (size_t)done * classes) != 0) {
            rc = cli_lib_error(NULL);
            break;
        }
        done += b;
    }
    ds_graph_set_batch(net->g, net->batch);
    ds_loader_free(l);
    return rc;
}
