/* cmd_train.c — `deepsky train`: data → normalise → model → epochs of
 * training with a progress bar, checkpoints (last, best), metrics.csv,
 * plots and an HTML report; --resume continues bit-identically. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int parse(int argc, char **argv, cli_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = -1;
    for (int i = 1; i < argc; i++) {
        const char *v, *opt = argv[i];
        cli_specs *specs = !strcmp(opt, "--data") ? &o->data : !strcmp(opt, "--val") ? &o->val
                         : !strcmp(opt, "--test") ? &o->test : NULL;
        if (specs) { /* repeatable as NAME=SPEC for a several-input model */
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage("%s needs a value", opt);
            if (cli_specs_add(specs, opt, argv[++i])) return 1;
            continue;
        }
        if (cli_opt(argc, argv, &i, "--out", &o->out) || cli_opt(argc, argv, &i, "--resume", &o->resume) ||
            cli_opt(argc, argv, &i, "--init", &o->init)) {
            if (argv[i] == opt || !argv[i][0]) return cli_usage("%s needs a value", opt); /* i stays on a last option */
            continue;
        }
        if (cli_opt(argc, argv, &i, "--val-split", &v)) {
            if (cli_parse_float("--val-split", v, 0.0, 0.9, &o->val_split)) return 1;
        } else if (cli_opt(argc, argv, &i, "--epochs", &v)) {
            if (cli_parse_int("--epochs", v, 1, 100000, &o->epochs)) return 1;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 20, &o->batch)) return 1;
        } else if (cli_opt(argc, argv, &i, "--shuffle-window", &v)) {
            if (cli_parse_int("--shuffle-window", v, 1, 1 << 30, &o->shuffle_window)) return 1;
        } else if (cli_opt(argc, argv, &i, "--prefetch", &v)) {
            if (cli_parse_int("--prefetch", v, 1, 1024, &o->prefetch)) return 1;
        } else if (cli_opt(argc, argv, &i, "--loader-threads", &v)) {
            if (cli_parse_int("--loader-threads", v, 1, 64, &o->loader_threads)) return 1;
        } else if (cli_opt(argc, argv, &i, "--micro-batches", &v)) {
            if (cli_parse_int("--micro-batches", v, 1, 1 << 16, &o->micro_batches)) return 1;
        } else if (cli_opt(argc, argv, &i, "--lr", &v)) {
            if (cli_parse_float("--lr", v, 1e-12, 1e6, &o->lr)) return 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            int s;
            if (cli_parse_int("--seed", v, 0, INT_MAX, &s)) return 1;
            o->seed = s;
        } else if (!strcmp(argv[i], "--quiet")) {
            o->quiet = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage("train: unknown option '%s' (see deepsky train --help)", argv[i]);
        } else if (!o->model_path) {
            o->model_path = argv[i];
        } else {
            return cli_usage("train: unexpected argument '%s'", argv[i]);
        }
    }
    if (!o->data.n) return cli_usage("train: --data SPEC is required (e.g. --data fashion-mnist)");
    if (!o->model_path && !o->resume) return cli_usage("train: give a MODEL.cfg or --resume CKPT");
    if (o->val.n && o->val_split > 0) return cli_usage("train: use --val or --val-split, not both");
    if (o->init && o->resume) return cli_usage("train: --init starts a run from a checkpoint's weights; --resume "
                                               "continues one; give one of them");
    if (o->init && !o->model_path) return cli_usage("train: --init needs a MODEL.cfg");
    return 0;
}

/* runs/<model file name without .cfg> */
static void default_out(const char *model_path, char *buf, size_t size)
{
    const char *base = model_path ? strrchr(model_path, '/') : NULL;
    base = base ? base + 1 : model_path ? model_path : "model";
    size_t len = strcspn(base, ".");
    snprintf(buf, size, "runs/%.*s", (int)len, base);
}



/* metrics.csv as text, rewritten whole (atomically) after every epoch */
typedef struct {
    char *p;
    size_t len, cap;
} text_buf;

static int tb_printf(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tb_printf(text_buf *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return cli_error("metrics.csv: formatting failed");
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return 0;
        }
        size_t cap = (t->cap ? 2 * t->cap : 4096) + (size_t)n;
        char *q = realloc(t->p, cap);
        if (!q) return cli_error("out of memory");
        t->p = q, t->cap = cap;
    }
}

/* Loss and accuracy over a dataset, plus probabilities for the metrics. */
static int evaluate(cli_net *net, const ds_dataset *d, float *probs, ds_metrics *m)
{
    if (cli_predict(net, d, probs) != 0) return 1;
    if (ds_metrics_compute(probs, d->y, d->n, ds_model_classes(net->model), m) != 0) return cli_lib_error(NULL);
    return 0;
}

/* hist holds four rows of `stride` epochs: train loss, val loss, train acc,
 * val acc. m (validation or, at the end, test metrics; NULL if neither) gives
 * the confusion matrix and the summary; `which` names its data. */
static int write_report(const char *out, const char *title, const ds_metrics *m, const char *which,
                        const ds_dataset *d, const float *hist, int stride, int epochs_done, int has_val)
{
    char path[PATH_MAX], summary[1024];
    const float *loss[2] = {hist, hist + stride}, *acc[2] = {hist + 2 * stride, hist + 3 * stride};
    const char *names[2] = {"train", "validation"};
    int series = has_val ? 2 : 1;
    if (cli_path(path, sizeof path, "%s/loss.png", out)) return 1;
    if (ds_plot_lines_ex(path, "loss", "epoch", "loss (mean cross-entropy)", series, names, loss, epochs_done) != 0)
        return cli_lib_error(NULL);
    if (cli_path(path, sizeof path, "%s/accuracy.png", out)) return 1;
    if (ds_plot_lines_ex(path, "accuracy", "epoch", "accuracy", series, names, acc, epochs_done) != 0)
        return cli_lib_error(NULL);
    int k = snprintf(summary, sizeof summary, "epochs: %d\ntrain loss: %.4f\ntrain accuracy: %.4f\n", epochs_done,
                     hist[epochs_done - 1], hist[2 * stride + epochs_done - 1]);
    if (m) {
        if (cli_path(path, sizeof path, "%s/confusion.png", out)) return 1;
        if (ds_plot_confusion(path, m->classes, m->confusion, (const char *const *)d->class_names) != 0)
            return cli_lib_error(NULL);
        if (cli_plot_reliability(out, m) != 0) return 1;
        k += snprintf(summary + k, sizeof summary - (size_t)k,
                      "%s accuracy: %.4f\n%s log-loss: %.4f\n%s macro F1: %.4f\n%s expected calibration error: "
                      "%.4f\n",
                      which, m->accuracy, which, m->log_loss, which, m->macro_f1, which, m->ece);
        if (m->classes == 2 && k < (int)sizeof summary)
            k += snprintf(summary + k, sizeof summary - (size_t)k,
                          "%s ROC AUC: %.4f\n%s missed-detection rate at 1%% FPR: %.4f\n", which, m->auc, which,
                          m->mdr_at_fpr1);
        if (k < (int)sizeof summary)
            snprintf(summary + k, sizeof summary - (size_t)k, "(confusion matrix, reliability: %s data)\n", which);
    }
    if (ds_report_html(out, title, summary) != 0) return cli_lib_error(NULL);
    return 0;
}

/* FNV-1a over 8-byte words (and the tail), folded to 32 bits */
static uint32_t fnv_words(uint64_t h, const void *p, size_t bytes)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < bytes; i++) h = (h ^ b[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* data-parallel: every rank must train the same model on the same data (one
 * launched with another file would silently train on a mixture) */
static int ranks_agree(ds_comm *comm, const ds_model *model, const ds_train_cfg *tc, const ds_dataset *d, int batch)
{
    if (ds_comm_size(comm) < 2) return 0;
    const char *text = ds_model_text(model);
    uint64_t h = fnv_words(14695981039346656037ull, text, strlen(text));
    uint64_t knobs[4] = {tc->seed, (uint64_t)tc->micro_batches, (uint64_t)tc->epochs, (uint64_t)d->n};
    h = fnv_words(h, knobs, sizeof knobs);
    h = fnv_words(h, &tc->optim.lr, sizeof tc->optim.lr);
    if (d->y) h = fnv_words(h, d->y, (size_t)d->n * sizeof *d->y); /* streamed: the index's description only */
    if (d->x) h = fnv_words(h, d->x, (size_t)d->n * ds_shape_numel(d->sample) * sizeof *d->x);
    for (int k = 0; k < d->n_fields; k++)
        h = fnv_words(h, d->fields[k].x, (size_t)d->n * ds_shape_numel(d->fields[k].sample) * sizeof(float));
    double v[4] = {(double)(uint32_t)h, -(double)(uint32_t)h, batch, -batch};
    if (ds_comm_allreduce_f64(comm, v, 4, DS_COMM_MAX) != 0) return cli_lib_error(NULL);
    if (v[0] != -v[1] || v[2] != -v[3])
        return cli_error("the ranks differ in their model, settings or training data (this rank's hash %08x, batch %d): "
                         "every rank must be started with the same command on the same files",
                         (unsigned)(uint32_t)h, batch);
    return 0;
}

/* --val or --test data that is also training data (the same file, or the
 * same simulated stamps) measures memory: say so, with how many samples */
static void warn_overlap(const ds_model *model, const char *train_json, const char *spec, long n, const char *what)
{
    ds_provenance t, d;
    if (!train_json || !spec || ds_provenance_parse(train_json, &t) != 0) return;
    ds_shape in = ds_model_input_shape(model);
    if (ds_provenance_of(spec, in.ndim == 3 ? in.d[0] : 0, (int)n, &d, NULL) == 0) { /* silent where it is not known */
        char why[512];
        long k = ds_provenance_overlap(&t, &d, why, sizeof why);
        if (k > 0)
            fprintf(stderr, "deepsky: warning: %ld of the %ld samples of the %s data %s are training data too (%s): its "
                            "scores measure memory, not generalisation\n", k, n, what, spec, why);
        ds_provenance_free(&d);
    }
    ds_provenance_free(&t);
}

/* A hook's error, already printed (the trainer passes it back as it is). */
#define HOOK_FAILED (-2)

/* What the trainer's hooks need: the CLI's side of a run. */
typedef struct {
    const cli_train_opts *o;
    cli_net *net;
    ds_optim *opt;
    ds_loader *loader;
    ds_dataset *val;
    float *probs, *hist;
    ds_metrics m;
    ds_train_state *st;
    ds_best *bestrec;
    text_buf *csv;
    const char *out, *title, *classes_json, *data_json;
    const ds_norm *norm;
    char **norm_json; /* metadata "norm.NAME" of inputs 2.. */
    int n_inputs, epochs, batch, monitor;
    cli_progress bar;  /* the whole run's progress line (silent off a terminal and with --quiet) */
    int bpe;
    double epoch_t0;
    ds_adv_trainer *adv; /* [train] adversarial=: the pass hook's state */
    uint64_t seed;
    const char *stream_window; /* streamed data: the shuffle window (checkpoint metadata) */
    ds_comm *comm;       /* data-parallel: rank 0 alone validates and writes */
    int rank;
} train_ctx;

static int on_pass(void *user, ds_trainer *t, int b, int k, float *weight)
{
    return ds_adv_pass(((train_ctx *)user)->adv, t, b, k, weight);
}

/* the attack's random starts: drawn from the seed and the epoch, so a resumed run makes the same ones */
static void adv_seed(train_ctx *c, int epoch)
{
    if (c->adv) ds_adv_trainer_seed(c->adv, c->seed ^ (0xad5eedULL + 0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)));
}

/* progress bar; Ctrl-C ends the run between batches (checkpoints stay whole) */
static int on_batch(void *user, const ds_batch_log *b)
{
    train_ctx *c = user;
    if (cli_interrupted) return DS_TRAIN_STOP;
    if (!c->o->quiet) {
        char f[160];
        snprintf(f, sizeof f, "epoch %d/%d loss %.4f acc %.4f", b->epoch, b->epochs, b->loss, b->accuracy);
        cli_progress_update(&c->bar, (long)(b->epoch - 1) * c->bpe + b->batch, f);
    }
    return 0;
}

static int validate_here(train_ctx *c, ds_epoch_log *e);

/* data-parallel: rank 0 validates and hands its verdict (and the monitor) to
 * every rank, so all agree on best, patience and stop; a failure there
 * stops the others quietly (rank 0 has said why) */
static int on_validate(void *user, ds_epoch_log *e)
{
    train_ctx *c = user;
    if (ds_comm_size(c->comm) < 2) return validate_here(c, e);
    int rc = c->rank == 0 ? validate_here(c, e) : 0;
    double v[3] = {rc != 0, e->has_monitor, e->monitor};
    if (ds_comm_bcast(c->comm, v, sizeof v, 0) != 0) return cli_lib_error(NULL), HOOK_FAILED;
    e->has_monitor = (int)v[1], e->monitor = v[2];
    return v[0] != 0 ? HOOK_FAILED : 0;
}

static int validate_here(train_ctx *c, ds_epoch_log *e)
{
    ds_metrics_free(&c->m);
    if (!c->val->n) return 0;
    if (evaluate(c->net, c->val, c->probs, &c->m) != 0) return HOOK_FAILED;
    e->has_monitor = 1;
    switch (c->monitor) {
    case DS_MONITOR_VAL_LOSS: e->monitor = c->m.log_loss; break;
    case DS_MONITOR_VAL_AUC: e->monitor = c->m.auc; break;
    case DS_MONITOR_VAL_MDR: e->monitor = c->m.mdr_at_fpr1; break;
    default: e->monitor = c->m.accuracy;
    }
    if (isnan(e->monitor)) {
        cli_error("monitor=%s is not defined for %d classes (AUC and MDR need two)",
                  c->monitor == DS_MONITOR_VAL_AUC ? "val_auc" : "val_mdr", c->m.classes);
        return HOOK_FAILED;
    }
    return 0;
}

static const char *monitor_name(int m)
{
    return m == DS_MONITOR_VAL_LOSS ? "log_loss" : m == DS_MONITOR_VAL_AUC ? "auc" : m == DS_MONITOR_VAL_MDR ? "mdr_at_fpr1"
                                                                                                          : "accuracy";
}

static int on_epoch(void *user, const ds_epoch_log *e)
{
    train_ctx *c = user;
    if (c->rank > 0) return cli_interrupted ? DS_TRAIN_STOP : 0; /* rank 0 alone reports and writes */
    const ds_epoch_stats *r = &e->train;
    int E = c->epochs, n = e->epoch;
    bool has_val = c->val->n > 0;
    double secs = ds_now() - c->epoch_t0;
    c->hist[n - 1] = (float)r->loss;
    c->hist[2 * E + n - 1] = (float)r->accuracy;
    if (has_val) {
        c->hist[E + n - 1] = (float)c->m.log_loss;
        c->hist[3 * E + n - 1] = (float)c->m.accuracy;
    }
    cli_progress_clear(&c->bar);
    printf("epoch %d/%d  loss %.4f  acc %.4f", n, E, r->loss, r->accuracy);
    if (has_val) printf("  val_loss %.4f  val_acc %.4f", c->m.log_loss, c->m.accuracy);
    double wait = ds_loader_wait_seconds(c->loader);
    printf("  lr %.3g  %.1f s  %.0f img/s  data wait %.2f s\n", e->lr, r->seconds, r->samples / r->seconds, wait);
    adv_seed(c, n);
    if (e->stop)
        printf("early stopping: no better validation %s in %d epochs (patience)\n", monitor_name(c->monitor),
               e->bad_epochs);
    fflush(stdout);
    if (tb_printf(c->csv, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f", n, r->loss, r->accuracy, has_val ? c->m.log_loss : NAN,
                  has_val ? c->m.accuracy : NAN, e->lr, secs))
        return HOOK_FAILED;
    for (int h = 0; c->net->prog.n_heads > 1 && h < c->net->prog.n_heads; h++)
        if (tb_printf(c->csv, ",%.6f", r->head_loss[h])) return HOOK_FAILED;
    if (tb_printf(c->csv, ",%.3f\n", wait)) return HOOK_FAILED;

    ds_train_state *st = c->st;
    st->epoch = n;
    st->step = ds_optim_steps(c->opt);
    st->batch_in_epoch = 0;
    st->loader_rng = *ds_loader_rng(c->loader);
    st->graph_rng = *ds_graph_rng(c->net->g);
    if (e->is_best) {
        st->best_metric = has_val ? e->monitor : r->accuracy;
        *c->bestrec = (ds_best){.epoch = n, .value = has_val ? e->monitor : r->accuracy};
        snprintf(c->bestrec->split, sizeof c->bestrec->split, "%s", has_val ? "validation" : "none");
        snprintf(c->bestrec->metric, sizeof c->bestrec->metric, "%s", has_val ? monitor_name(c->monitor) : "accuracy");
    }
    char best_json[160], path[PATH_MAX];
    ds_best_json(c->bestrec, best_json, sizeof best_json);
    /* checkpoint metadata: class names, which split chose best, the data's provenance, further inputs' norms */
    ds_meta_kv kv[4 + DS_MAX_INPUTS];
    char keys[DS_MAX_INPUTS][80];
    int n_kv = 0;
    if (c->classes_json) kv[n_kv++] = (ds_meta_kv){"classes", c->classes_json};
    kv[n_kv++] = (ds_meta_kv){"best", best_json};
    if (c->data_json) kv[n_kv++] = (ds_meta_kv){"data", c->data_json};
    if (c->stream_window) kv[n_kv++] = (ds_meta_kv){"stream_window", c->stream_window}; /* the order's shuffle window */
    for (int k = 1; k < c->n_inputs; k++) {
        snprintf(keys[k], sizeof keys[k], "norm.%s", c->net->prog.feed_names[k]);
        kv[n_kv++] = (ds_meta_kv){keys[k], c->norm_json[k]};
    }
    /* last.safetensors is the commit point of an epoch: everything else
     * (metrics.csv, plots, report, best) is written before it, so a kill
     * at any moment resumes from the previous epoch and rewrites them
     * all, exactly as the uninterrupted run would (best first: written
     * after last, a kill between the two left best stale for good) */
    if (cli_path(path, sizeof path, "%s/metrics.csv", c->out)) return HOOK_FAILED;
    if (ds_atomic_write(path, c->csv->p, c->csv->len) != 0) return cli_lib_error(NULL), HOOK_FAILED;
    if (write_report(c->out, c->title, has_val ? &c->m : NULL, "validation", c->val, c->hist, E, n, has_val) != 0)
        return HOOK_FAILED;
    for (int k = e->is_best ? 0 : 1; k < 2; k++) {
        if (cli_path(path, sizeof path, "%s/%s.safetensors", c->out, k ? "last" : "best")) return HOOK_FAILED;
        if (ds_checkpoint_save_ex(path, c->net->g, c->opt, ds_model_text(c->net->model), &c->norm[0], st, kv, n_kv) != 0)
            return cli_lib_error(NULL), HOOK_FAILED;
    }
    c->epoch_t0 = ds_now();
    return cli_interrupted ? DS_TRAIN_STOP : 0; /* during the validation pass or the writes: the epoch is kept */
}

int cli_train_run(const cli_train_opts *op)
{
    cli_train_opts o = *op;
    int rc = 1;
    cli_net net = {0};
    ds_optim *opt = NULL;
    ds_loader *loader = NULL;
    ds_trainer *trainer = NULL;
    ds_checkpoint *ck = NULL, *init_ck = NULL;
    ds_dataset all = {0}, train = {0}, val = {0}, test = {0};
    ds_shards *shards = NULL; /* --data a sharded set: streamed, train.x NULL */
    char window_text[24] = "";
    ds_norm norm[DS_MAX_INPUTS] = {{0}};
    char *norm_json[DS_MAX_INPUTS] = {0};
    ds_train_state st = {0};
    float *probs = NULL, *hist = NULL, *cw = NULL;
    char *classes_json = NULL;
    ds_metrics m = {0};
    text_buf csv = {0};
    char out[PATH_MAX], path[PATH_MAX], *data_json = NULL;
    ds_best bestrec = {.split = "none"};
    train_ctx ctx = {0};
    if (o.out && cli_check_out_dir("--out", o.out) != 0) return 2;
    cli_graceful_interrupts(true); /* Ctrl-C stops between batches, never inside a checkpoint write */

    /* model: from the file, or the checkpoint being resumed */
    ds_model *model = NULL;
    if (o.resume) {
        if (!(ck = ds_checkpoint_open(o.resume))) {
            cli_lib_error(NULL);
            goto done;
        }
        model = ds_model_parse(ds_checkpoint_model_text(ck), o.resume);
        if (ds_checkpoint_state(ck, &st) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        if (ds_checkpoint_meta(ck, "best")) ds_best_parse(ds_checkpoint_meta(ck, "best"), &bestrec);
    } else {
        model = ds_model_load(o.model_path);
    }
    if (!model) {
        cli_lib_error(NULL);
        goto done;
    }
    ds_train_cfg tc = *ds_model_train_cfg(model);
    if (ck && st.batch) { /* a resume repeats the run's settings unless told otherwise */
        tc.batch = st.batch;
        tc.epochs = st.epochs;
        tc.seed = st.seed;
        tc.optim.lr = st.lr;
        if (!o.val.n && !o.val_split) o.val_split = st.val_split;
    }
    if (o.epochs) tc.epochs = o.epochs;
    if (o.batch) tc.batch = o.batch;
    if (o.lr > 0) tc.optim.lr = o.lr;
    if (o.micro_batches) tc.micro_batches = o.micro_batches;
    if (o.seed >= 0) tc.seed = (uint64_t)o.seed;
    /* data-parallel (mpirun): every rank runs this; rank 0 alone prints and writes */
    ds_comm *comm = ds_comm_world(NULL, NULL);
    int rank = ds_comm_rank(comm), size = ds_comm_size(comm);
    if (rank > 0) {
        o.quiet = 1;
        if (!freopen("/dev/null", "w", stdout)) {
            cli_error("rank %d: cannot silence its standard output", rank);
            goto done;
        }
    }
    ds_comm_set_ordered(comm, tc.ordered_allreduce);
    if (o.out) snprintf(out, sizeof out, "%s", o.out);
    else default_out(o.model_path ? o.model_path : o.resume, out, sizeof out);
    if (o.resume && !o.out) { /* resume in place */
        snprintf(out, sizeof out, "%s", o.resume);
        char *slash = strrchr(out, '/');
        if (slash) *slash = 0;
        else snprintf(out, sizeof out, ".");
    }
    if (cli_check_out_dir(o.out ? "--out" : "output folder", out) != 0) goto done;

    /* data: load, check, split, normalise (statistics of the training part) */
    const char *data_spec = cli_specs_first(model, &o.data), *val_spec = o.val.n ? cli_specs_first(model, &o.val) : NULL;
    /* a sharded data set is streamed from disk (docs/data.md): `all` describes it, without rows */
    if (o.data.n == 1 && ds_shards_is(data_spec)) {
        if (ds_model_num_inputs(model) > 1) {
            cli_error("%s: a sharded data set feeds a one-input model only; this one has %d inputs", data_spec,
                      ds_model_num_inputs(model));
            goto done;
        }
        if (o.val_split > 0) {
            cli_error("--val-split holds out rows of data in memory; %s is streamed: give --val (e.g. a smaller "
                      "sharded set, which is loaded whole)", data_spec);
            goto done;
        }
        if (!(shards = ds_shards_open(data_spec)) || ds_shards_describe(shards, &all) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        if (ck && cli_same_classes(ck, &all, data_spec) != 0) goto done;
    } else if (cli_data_bind(model, &o.data, 1, &all) != 0 || (ck && cli_map_classes(ck, &all, data_spec) != 0)) {
        goto done;
    }
    data_json = cli_data_provenance(model, data_spec, all.n); /* checkpoint metadata "data" (a sharded set: its index) */
    if (o.val_split > 0) {
        if (ds_dataset_split(&all, o.val_split, tc.seed, &train, &val) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        ds_dataset_free(&all);
    } else {
        train = all;
        memset(&all, 0, sizeof all);
        if (o.val.n && cli_data_bind(model, &o.val, 1, &val) != 0) goto done;
    }
    if (!o.test.n && !strcmp(data_spec, "fashion-mnist")) cli_specs_add(&o.test, "--test", "fashion-mnist:test");
    const char *test_spec = o.test.n ? cli_specs_first(model, &o.test) : NULL;
    if (o.test.n && cli_data_bind(model, &o.test, 1, &test) != 0) goto done;
    if (rank == 0) { /* --val-split's rows are disjoint from the rest by construction */
        if (val_spec && o.val_split <= 0) warn_overlap(model, data_json, val_spec, val.n, "validation");
        if (test_spec) warn_overlap(model, data_json, test_spec, test.n, "test");
    }
    /* the training data's class names are the model's; --val and --test are numbered by them */
    const char *const *vocab = (const char *const *)train.class_names;
    int n_vocab = vocab ? train.classes : 0;
    if (ds_dataset_map_classes(&val, vocab, n_vocab, val_spec) != 0 ||
        ds_dataset_map_classes(&test, vocab, n_vocab, test_spec) != 0 ||
        (n_vocab && !(classes_json = ds_class_names_json(vocab, n_vocab)))) {
        cli_lib_error(NULL);
        goto done;
    }
    if (o.init && !(init_ck = ds_checkpoint_open(o.init))) {
        cli_lib_error(NULL);
        goto done;
    }
    /* the normalisation of each input: a resumed run's, an initial checkpoint's (its weights were fitted
     * to it), or the training data's — identity where the model says normalize=none */
    int n_in = ds_model_num_inputs(model);
    for (int k = 0; k < n_in; k++) {
        ds_dataset view = k ? (ds_dataset){.n = train.n, .sample = train.fields[k - 1].sample, .x = train.fields[k - 1].x}
                            : train;
        char key[80];
        snprintf(key, sizeof key, k ? "norm.%s" : "norm", ds_model_input_name(model, k));
        ds_checkpoint *from = ck ? ck : init_ck;
        if (from ? ds_checkpoint_norm_key(from, key, &norm[k]) != 0
                 : shards ? ds_shards_norm(shards, &norm[k]) != 0 : ds_norm_compute(&view, &norm[k]) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        if (!from && !ds_model_input_normalize(model, k))
            for (int c = 0; c < norm[k].channels; c++) norm[k].mean[c] = 0, norm[k].std[c] = 1;
        if (k && !(norm_json[k] = ds_norm_json(&norm[k]))) {
            cli_lib_error(NULL);
            goto done;
        }
    }
    if ((!shards && cli_norms_apply(norm, n_in, &train, data_spec)) || (val.n && cli_norms_apply(norm, n_in, &val, val_spec ? val_spec : "validation data")) ||
        (test.n && cli_norms_apply(norm, n_in, &test, test_spec)))
        goto done;

    int classes = ds_model_classes(model);
    if (train.classes == 0) {
        cli_error("%s has no labels; training needs them (e.g. npy:X.npy,Y.npy or csv:FILE,label=NAME)", data_spec);
        goto done;
    }
    if (train.classes > classes || val.classes > classes) {
        cli_error("the data has %d classes but the model's [net] classes is %d", train.classes > val.classes ? train.classes : val.classes,
                  classes);
        goto done;
    }
    if (tc.class_weight_auto || tc.n_class_weight) { /* [train] class_weight */
        if (!(cw = malloc((size_t)classes * sizeof *cw))) {
            cli_error("out of memory");
            goto done;
        }
        if (tc.n_class_weight && tc.n_class_weight != classes) {
            cli_error("%s: [train] class_weight has %d weights for %d classes", ds_model_file(model), tc.n_class_weight, classes);
            goto done;
        }
        if (tc.n_class_weight) {
            memcpy(cw, tc.class_weight, (size_t)classes * sizeof *cw);
        } else { /* n / (classes · count): scikit-learn's "balanced" */
            int64_t *count = calloc((size_t)(classes > train.classes ? classes : train.classes), sizeof *count);
            if (!count) {
                cli_error("out of memory");
                goto done;
            }
            if (shards) {
                if (ds_shards_class_counts(shards, count) != 0) {
                    free(count);
                    cli_lib_error(NULL);
                    goto done;
                }
            } else {
                for (int i = 0; i < train.n; i++) count[(int)train.y[i]]++;
            }
            for (int c = 0; c < classes; c++) cw[c] = count[c] ? (float)((double)train.n / ((double)classes * count[c])) : 0;
            free(count);
        }
    }
    if (!val.n && (tc.patience > 0 || tc.monitor != DS_MONITOR_VAL_ACC)) /* as Keras' EarlyStopping warns */
        fprintf(stderr, "deepsky: warning: [train] %s needs validation data (--val or --val-split); without it "
                        "best is the last epoch and nothing stops early\n", tc.patience > 0 ? "patience" : "monitor");
    tc.batch = cli_cap_batch(tc.batch, train.n, "training");
    if (tc.batch % (size * tc.micro_batches)) {
        cli_error("the batch %d is not divisible by %d rank%s x %d micro-batch%s (each takes an equal part of every "
                  "batch; --batch sets it)", tc.batch, size, size > 1 ? "s" : "", tc.micro_batches,
                  tc.micro_batches > 1 ? "es" : "");
        goto done;
    }
    if ((tc.class_weight_auto || tc.n_class_weight) && size * tc.micro_batches > 1) {
        /* a weighted loss is Σ w·l / Σ w over the batch: a part's share of the batch is then its share of Σ w,
         * not of the rows, and weighting parts by rows would silently train another loss */
        cli_error("[train] class_weight normalises by the batch's total weight, which %s do not share; use "
                  "sampler = balanced, or one process without micro-batches", size > 1 ? "ranks" : "micro-batches");
        goto done;
    }
    if (ranks_agree(comm, model, &tc, &train, tc.batch) != 0) goto done;
    /* each rank's graph holds its share of a global batch */
    if (cli_net_build(&net, model, tc.batch / size / tc.micro_batches, tc.seed, cw) != 0) {
        model = NULL; /* owned by net now */
        goto done;
    }
    model = NULL;
    if (cli_check_input(&net, &train, data_spec) != 0 || (val.n && cli_check_input(&net, &val, "validation data")))
        goto done;
    if (shards && tc.balanced) {
        cli_error("[train] sampler = balanced draws any sample at any time; %s is streamed shard by shard", data_spec);
        goto done;
    }
    if (!shards && (o.shuffle_window || o.prefetch || o.loader_threads)) {
        cli_usage("--shuffle-window, --prefetch and --loader-threads are for streamed data (--data a sharded set); "
                  "%s is loaded into memory", data_spec);
        goto done;
    }
    if (shards) { /* the shuffle window is part of the order: a resumed run keeps its run's */
        const char *was = ck ? ds_checkpoint_meta(ck, "stream_window") : NULL;
        int w = was ? atoi(was) : 0;
        if (w > 0 && o.shuffle_window && o.shuffle_window != w) {
            cli_error("--shuffle-window %d: the run being resumed shuffled within %d samples; the order would change",
                      o.shuffle_window, w);
            goto done;
        }
        if (!o.shuffle_window) o.shuffle_window = w > 0 ? w : 65536;
        snprintf(window_text, sizeof window_text, "%d", o.shuffle_window);
    }
    ds_stream_cfg scfg = {.window = o.shuffle_window, .prefetch = o.prefetch, .threads = o.loader_threads,
                          .norm = &norm[0]};
    if (!(loader = shards ? ds_loader_new_shards(shards, tc.batch, tc.seed ^ 0x5eedULL, &scfg)
                          : ds_loader_new(&train, tc.batch, 1, tc.seed ^ 0x5eedULL))) {
        cli_lib_error(NULL);
        goto done;
    }
    if (tc.augment && ds_loader_set_augment(loader, tc.augment) != 0) {
        cli_lib_error("[train] augment");
        goto done;
    }
    if (tc.balanced && ds_loader_set_balanced(loader, 1) != 0) {
        cli_lib_error("[train] sampler");
        goto done;
    }
    if (size > 1 && ds_loader_set_shard(loader, rank, size) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    int bpe = ds_loader_batches(loader);
    ds_schedule_to_steps(&tc.optim.schedule, tc.schedule_in_epochs, bpe, tc.epochs);
    { /* [group] sections: PyTorch's param_groups, each schedule in steps too */
        const ds_param_group *mg;
        int ng = ds_model_param_groups(net.model, &mg);
        ds_param_group gs[64];
        if (ng > 64) {
            cli_error("%s: more than 64 [group] sections", ds_model_file(net.model));
            goto done;
        }
        for (int k = 0; k < ng; k++) {
            gs[k] = mg[k];
            ds_schedule_to_steps(&gs[k].schedule, gs[k].schedule_in_epochs, bpe, tc.epochs);
        }
        if (!(opt = ds_optim_new_groups(net.g, &tc.optim, ng ? gs : NULL, ng, ds_model_no_decay(net.model)))) {
            cli_lib_error("[train]");
            goto done;
        }
    }
    if (ck) {
        if (ds_checkpoint_restore(ck, net.g, opt) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        *ds_loader_rng(loader) = st.loader_rng;
        *ds_graph_rng(net.g) = st.graph_rng;
        ds_checkpoint_close(ck);
        ck = NULL;
        if (st.epoch >= tc.epochs) {
            printf("%s already has %d of %d epochs; nothing to do\n", o.resume, st.epoch, tc.epochs);
            rc = 0;
            goto done;
        }
    } else {
        st.best_metric = NAN;
        if (init_ck) { /* the weights (and buffers) of e.g. `deepsky pretrain`; fresh optimizer state */
            if (ds_checkpoint_restore(init_ck, net.g, NULL) != 0) {
                cli_lib_error(NULL);
                goto done;
            }
            printf("weights from %s\n", o.init);
            ds_checkpoint_close(init_ck);
            init_ck = NULL;
        }
    }
    if (rank == 0 && cli_mkdirs(out) != 0) goto done;

    /* history for the plots: train loss, val loss, train acc, val acc */
    hist = malloc(4 * (size_t)tc.epochs * sizeof *hist);
    probs = malloc((size_t)(val.n > test.n ? val.n : test.n ? test.n : 1) * classes * sizeof *probs);
    if (!hist || !probs) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < 4 * tc.epochs; i++) hist[i] = NAN;
    {
        /* temporary files a killed run left behind (ours only: these names
         * with ds_atomic_open's suffix) */
        const char *ours[] = {"*.safetensors", "metrics.csv", "*.png", "report.html"};
        if (rank == 0) ds_atomic_clean(out, ours, 4);
    }
    if (cli_path(path, sizeof path, "%s/metrics.csv", out)) goto done;
    { /* the provenance block: a new run's, or the resumed run's first lines and a "resumed" line */
        cli_run_info ri = {0};
        static char line[1 << 16];
        char *h = NULL;
        FILE *old = st.epoch > 0 ? fopen(path, "r") : NULL;
        int kept = 0;
        while (old && fgets(line, sizeof line, old) && line[0] == '#') {
            if (tb_printf(&csv, "%s%s", line, strchr(line, '\n') ? "" : "\n")) goto done;
            kept = 1;
        }
        if (old) fclose(old);
        if (cli_run_info_init(&ri, o.argv ? o.argc : 0, o.argv) != 0) goto done;
        if (kept) {
            char *cmd = o.argv ? cli_shell_join(o.argc, o.argv) : NULL;
            int bad = tb_printf(&csv, "# resumed: deepsky %s\n", cmd ? cmd : "(from the library)");
            free(cmd);
            cli_run_info_free(&ri);
            if (bad) goto done;
        } else {
            if (o.model_path) cli_run_info_add_file(&ri, "model", o.model_path);
            else cli_run_info_add_file(&ri, "resumed_from", o.resume);
            cli_run_info_add(&ri, "seed", "%llu", (unsigned long long)tc.seed);
            for (int k = 0; k < o.data.n; k++) cli_run_info_add(&ri, "data", "%s", o.data.spec[k]);
            if (data_json) cli_run_info_add(&ri, "data_provenance", "%s", data_json);
            h = cli_run_info_comments(&ri);
            cli_run_info_free(&ri);
            int bad = !h || tb_printf(&csv, "%s", h);
            free(h);
            if (bad) goto done;
        }
    }
    if (tb_printf(&csv, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds")) goto done;
    for (int h = 0; net.prog.n_heads > 1 && h < net.prog.n_heads; h++)
        if (tb_printf(&csv, ",train_loss_%s", net.prog.heads[h].name)) goto done;
    /* seconds the training waited for the loader in the epoch (rank 0's) */
    if (tb_printf(&csv, ",data_wait\n")) goto done;
    if (st.epoch > 0) { /* keep the rows of the epochs already done, as they are (lr and seconds too) */
        FILE *old = fopen(path, "r");
        char line[512];
        int row = 0, e;
        while (old && row < st.epoch && fgets(line, sizeof line, old)) {
            float v[4];
            if (sscanf(line, "%d,%f,%f,%f,%f", &e, &v[0], &v[1], &v[2], &v[3]) != 5 || e != row + 1) continue;
            hist[row] = v[0], hist[2 * tc.epochs + row] = v[1], hist[tc.epochs + row] = v[2],
            hist[3 * tc.epochs + row] = v[3];
            if (tb_printf(&csv, "%s%s", line, strchr(line, '\n') ? "" : "\n")) goto done;
            row++;
        }
        if (old) fclose(old);
        for (; row < st.epoch; row++) /* metrics.csv lost: the rows the checkpoint cannot give are blank */
            if (tb_printf(&csv, "%d,,,,,,\n", row + 1)) goto done;
    }
    st.batch = tc.batch, st.epochs = tc.epochs, st.seed = tc.seed;
    st.lr = tc.optim.lr, st.val_split = o.val_split;

    ctx = (train_ctx){.o = &o, .net = &net, .opt = opt, .loader = loader, .val = &val, .probs = probs, .hist = hist,
                      .st = &st, .bestrec = &bestrec, .csv = &csv, .out = out,
                      .title = o.model_path ? o.model_path : o.resume, .classes_json = classes_json,
                      .data_json = data_json, .norm = norm, .norm_json = norm_json, .n_inputs = n_in,
                      .epochs = tc.epochs, .batch = tc.batch, .monitor = tc.monitor, .bpe = bpe,
                      .epoch_t0 = ds_now(), .comm = comm, .rank = rank,
                      .stream_window = window_text[0] ? window_text : NULL};
    if (!o.quiet) {
        cli_progress_start(&ctx.bar, "train", (long)tc.epochs * bpe, (long)st.epoch * bpe);
        ctx.bar.per_unit = tc.batch;
        snprintf(ctx.bar.unit, sizeof ctx.bar.unit, "img");
    }
    ds_trainer_hooks hooks = {.user = &ctx, .batch_end = on_batch, .validate = on_validate, .epoch_end = on_epoch};
    if (tc.adversarial) { /* adversarial training: the trainer's pass hook */
        ds_attack_cfg ac = tc.adv;
        if (tc.adv_clip_auto && cli_spec_unit_range(data_spec)) ac.clip = 1, ac.lo = 0, ac.hi = 1;
        if (!(ctx.adv = ds_adv_trainer_new(&net.prog, &norm[0], &ac, tc.adv_alpha, tc.seed))) {
            cli_lib_error("[train] adversarial");
            goto done;
        }
        ctx.seed = tc.seed;
        adv_seed(&ctx, st.epoch);
        hooks.pass = on_pass;
        const ds_attack_cfg *u = ds_adv_trainer_attack(ctx.adv);
        char how[96] = "FGSM", clip[64] = "nothing";
        if (ac.method == DS_ATTACK_PGD)
            snprintf(how, sizeof how, "PGD-%d", ac.steps);
        if (ac.clip) snprintf(clip, sizeof clip, "[%g, %g]", (double)ac.lo, (double)ac.hi);
        printf("adversarial training: %s (%s) eps %g", how, ac.l2 ? "L2" : "Linf", (double)ac.eps);
        if (ac.method == DS_ATTACK_PGD) printf(" step %g%s", (double)u->step_size, ac.random_start ? " random start" : "");
        printf(", loss %g*clean + %g*adversarial, inputs clipped to %s; acc is on the adversarial batches\n",
               (double)tc.adv_alpha, 1 - (double)tc.adv_alpha, clip);
    }
    ds_trainer_cfg tcfg = {.epochs = tc.epochs, .patience = tc.patience,
                           .higher_is_better = tc.monitor == DS_MONITOR_VAL_ACC || tc.monitor == DS_MONITOR_VAL_AUC,
                           .comm = size > 1 ? comm : NULL, .micro_batches = tc.micro_batches};
    if (tc.sync_bn && size > 1 && ds_graph_set_sync_bn(net.g, comm) != 0) {
        cli_lib_error("[train] sync_bn");
        goto done;
    }
    if (!(trainer = ds_trainer_new(&net.prog, &opt, 1, &tcfg, &hooks))) {
        cli_lib_error(NULL);
        goto done;
    }
    if (!strcmp(bestrec.split, "validation") && isfinite(st.best_metric))
        ds_trainer_set_best(trainer, st.best_metric, st.epoch - bestrec.epoch);

    printf("training %s on %s: %d samples, %d validation, batch %d, %d epochs -> %s\n", ctx.title, data_spec, train.n,
           val.n, tc.batch, tc.epochs, out);
    if (size > 1)
        printf("data-parallel: %d ranks (%s), %d samples of each global batch of %d per rank, %s threads each, "
               "gradients summed%s%s\n", size, ds_comm_backend(), tc.batch / size, tc.batch,
               getenv("DS_NUM_THREADS") ? getenv("DS_NUM_THREADS") : "?", tc.ordered_allreduce ? " in rank order" : "",
               tc.sync_bn ? ", batch norm synchronised" : "");
    fflush(stdout);
    int fit = ds_trainer_fit(trainer, loader, st.epoch);
    if (fit == DS_TRAIN_STOP) goto interrupted;
    if (fit != 0) {
        if (fit != HOOK_FAILED)
            cli_error("%s%s", ds_last_error(), strstr(ds_last_error(), "loss is") ? "; stopping (the last checkpoint "
                                                                                     "is intact). Lower the learning "
                                                                                     "rate or check the data." : "");
        goto done;
    }
    if (test.n && rank == 0) { /* the final model on the held-out test set */
        ds_metrics tm;
        if (cli_check_input(&net, &test, test_spec) != 0 || evaluate(&net, &test, probs, &tm) != 0) goto done;
        printf("test accuracy: %.4f  (log-loss %.4f, %d samples of %s)\n", tm.accuracy, tm.log_loss, test.n, test_spec);
        int bad = write_report(out, ctx.title, &tm, "test", &test, hist, tc.epochs, st.epoch, val.n > 0);
        ds_metrics_free(&tm);
        if (bad) goto done;
    }
    char bestline[160];
    ds_best_describe(&bestrec, bestline, sizeof bestline);
    printf("checkpoints: %s/last.safetensors, %s/best.safetensors; report: %s/report.html\nbest: %s\n", out, out,
           out, bestline);
    rc = 0;
    goto done;
interrupted:
    rc = 128 + cli_interrupted; /* 130 for SIGINT, 143 for SIGTERM */
    if (rank > 0) {
        /* rank 0 says how to resume */
    } else if (st.epoch > 0) {
        fprintf(stderr, "\ndeepsky: interrupted after epoch %d of %d; resume with:\n  deepsky train --resume %s/last.safetensors",
                st.epoch, tc.epochs, out);
        for (int k = 0; k < o.data.n; k++) fprintf(stderr, " --data %s", o.data.spec[k]);
        for (int k = 0; k < o.val.n; k++) fprintf(stderr, " --val %s", o.val.spec[k]);
        for (int k = 0; k < o.test.n && op->test.n; k++) fprintf(stderr, " --test %s", o.test.spec[k]);
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "\ndeepsky: interrupted before the first epoch ended; no checkpoint was written\n");
    }
done:
    cli_progress_end(&ctx.bar);
    cli_graceful_interrupts(false);
    ds_trainer_free(trainer);
    ds_adv_trainer_free(ctx.adv);
    ds_metrics_free(&ctx.m);
    free(csv.p);
    free(data_json);
    ds_metrics_free(&m);
    free(probs);
    free(hist);
    free(cw);
    free(classes_json);
    ds_checkpoint_close(ck);
    ds_checkpoint_close(init_ck);
    ds_optim_free(opt);
    ds_loader_free(loader);
    ds_shards_close(shards);
    if (net.g) cli_net_free(&net);
    ds_model_free(model);
    for (int k = 0; k < DS_MAX_INPUTS; k++) ds_norm_free(&norm[k]), free(norm_json[k]);
    ds_dataset_free(&all);
    ds_dataset_free(&train);
    ds_dataset_free(&val);
    ds_dataset_free(&test);
    return rc;
}

static int cmd_train(int argc, char **argv)
{
    cli_train_opts o;
    if (parse(argc, argv, &o) != 0) return 1;
    o.argc = argc, o.argv = argv;
    return cli_train_run(&o);
}

/* `deepsky train`: its help (deepsky train --help) and its registration in deepsky.c */
static const char *const train_repeatable[] = {"--data", "--val", "--test", NULL}; /* NAME=SPEC: one source each */
const cli_command cli_cmd_train = {
    "train",
    cmd_train,
    "train a model file on data, writing checkpoints and a report",
    "usage: deepsky train MODEL.cfg --data SPEC [options]\n"
    "       deepsky train --resume CKPT --data SPEC [options]\n"
    "\n"
    "  --data SPEC        training data (see docs/cli.md: fashion-mnist, idx:, npy:, csv:, folder:, fits:)\n"
    "  --data NAME=SPEC   the source of the model's other [input] (or [output] target) NAME, rows paired\n"
    "                     in order or by id=COLUMN, e.g. --data meta=csv:meta.csv,id=index; --val and\n"
    "                     --test take NAME=SPEC the same way\n"
    "  --val SPEC         validation data\n"
    "  --val-split F      hold out a fraction F of the training data for validation\n"
    "  --test SPEC        evaluate the best model on this data at the end\n"
    "                     (default for --data fashion-mnist: fashion-mnist:test)\n"
    "  --epochs N         total epochs (default: [train] epochs)\n"
    "  --batch N          batch size (default: [train] batch)\n"
    "  --lr X             learning rate (default: [train] lr)\n"
    "  --shuffle-window N streamed data (--data a sharded set): shuffle within N samples (default 65536)\n"
    "  --prefetch N       streamed data: batches read ahead (default 4)\n"
    "  --loader-threads N streamed data: threads reading, decoding and augmenting (default 1)\n"
    "  --micro-batches N  compute each batch in N micro-batches, gradients summed in order (default:\n"
    "                     [train] micro_batches); under mpirun per rank: N ranks x M = one process x N*M\n"
    "  --seed N           seed for initialisation, shuffling and dropout\n"
    "  --out DIR          output folder (default runs/<model name>)\n"
    "  --resume CKPT      continue from a checkpoint (its model and state)\n"
    "  --init CKPT        start from a checkpoint's weights (e.g. deepsky pretrain's)\n"
    "  --quiet            no progress bar\n"
    "\n"
    "Writes DIR/last.safetensors, DIR/best.safetensors, DIR/metrics.csv,\n"
    "DIR/loss.png, DIR/accuracy.png, DIR/confusion.png and DIR/report.html.\n"
    "best is the epoch of the best validation accuracy, or of [train] monitor\n"
    "(val_loss, val_acc, val_auc, val_mdr); [train] patience stops training after\n"
    "that many epochs without a better one. Without validation data, best is\n"
    "the last epoch.\n",
    train_repeatable,
};
