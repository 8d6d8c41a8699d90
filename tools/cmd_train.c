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

typedef struct {
    const char *model_path, *data, *val, *test, *out, *resume, *init;
    float val_split;
    int epochs, batch, quiet;
    float lr;
    long seed;
} train_opts;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse(int argc, char **argv, train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = -1;
    for (int i = 1; i < argc; i++) {
        const char *v, *opt = argv[i];
        if (cli_opt(argc, argv, &i, "--data", &o->data) || cli_opt(argc, argv, &i, "--val", &o->val) ||
            cli_opt(argc, argv, &i, "--test", &o->test) || cli_opt(argc, argv, &i, "--out", &o->out) ||
            cli_opt(argc, argv, &i, "--resume", &o->resume) || cli_opt(argc, argv, &i, "--init", &o->init)) {
            if (argv[i] == opt || !argv[i][0]) return cli_usage("%s needs a value", opt); /* i stays on a last option */
            continue;
        }
        if (cli_opt(argc, argv, &i, "--val-split", &v)) {
            if (cli_parse_float("--val-split", v, 0.0, 0.9, &o->val_split)) return 1;
        } else if (cli_opt(argc, argv, &i, "--epochs", &v)) {
            if (cli_parse_int("--epochs", v, 1, 100000, &o->epochs)) return 1;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 20, &o->batch)) return 1;
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
    if (!o->data) return cli_usage("train: --data SPEC is required (e.g. --data fashion-mnist)");
    if (!o->model_path && !o->resume) return cli_usage("train: give a MODEL.cfg or --resume CKPT");
    if (o->val && o->val_split > 0) return cli_usage("train: use --val or --val-split, not both");
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

/* Progress on a terminal: one line redrawn in place. */
static void progress(int epoch, int epochs, int batch, int batches, double loss, double acc,
                     double rate, double eta)
{
    char bar[31];
    int fill = batches ? 30 * batch / batches : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d loss %.4f acc %.4f %.0f img/s ETA %d:%02d", epoch,
            epochs, bar, batch, batches, loss, acc, rate, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

typedef struct {
    double loss, acc;
    int n;
} epoch_result;

#define TRAIN_INTERRUPTED (-2)

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

static int argmax_hits(const float *z, const float *y, int b, int classes)
{
    int hits = 0;
    for (int r = 0; r < b; r++) {
        const float *zr = z + (size_t)r * classes;
        int best = 0;
        for (int k = 1; k < classes; k++)
            if (zr[k] > zr[best]) best = k;
        hits += (float)best == y[r];
    }
    return hits;
}

static int train_epoch(cli_net *net, ds_optim *opt, ds_loader *l, int epoch, int epochs, bool bar,
                       epoch_result *r)
{
    ds_graph *g = net->g;
    int classes = ds_model_classes(net->model), b, batches = ds_loader_batches(l), k = 0;
    double t0 = now(), last_draw = 0, loss_sum = 0;
    long hits = 0, seen = 0;
    float *x = ds_node_value(net->x), *y = ds_node_value(net->y);
    ds_graph_set_training(g, 1);
    ds_loader_reset(l);
    while (!cli_interrupted && (b = ds_loader_next(l, x, y)) > 0) {
        if (ds_graph_set_batch(g, b) != 0) return cli_lib_error(NULL);
        ds_graph_zero_grad(g);
        if (ds_graph_forward(g) != 0) return cli_lib_error("forward");
        float lv = ds_node_value(net->loss)[0];
        if (!isfinite(lv))
            return cli_error("epoch %d, batch %d: the loss is %s; stopping (the last checkpoint is "
                             "intact). Lower the learning rate or check the data.",
                             epoch, k + 1, isnan(lv) ? "NaN" : "infinite");
        if (ds_graph_backward(g, net->loss, NULL) != 0 || ds_optim_step(opt) != 0)
            return cli_error("epoch %d, batch %d: %s", epoch, k + 1, ds_last_error());
        loss_sum += (double)lv * b;
        hits += argmax_hits(ds_node_value(net->logits), y, b, classes);
        seen += b;
        k++;
        double t = now();
        if (bar && (t - last_draw > 0.1 || k == batches)) {
            double rate = seen / (t - t0);
            progress(epoch, epochs, k, batches, loss_sum / seen, (double)hits / seen, rate,
                     (double)(batches - k) * net->batch / rate);
            last_draw = t;
        }
    }
    if (bar) fputc('\n', stderr);
    ds_graph_set_batch(g, net->batch);
    if (cli_interrupted) return TRAIN_INTERRUPTED; /* between batches: the epoch is dropped, checkpoints stay whole */
    r->loss = seen ? loss_sum / seen : 0;
    r->acc = seen ? (double)hits / seen : 0;
    r->n = (int)seen;
    return 0;
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
    if (ds_plot_lines(path, "loss", "epoch", series, names, loss, epochs_done) != 0) return cli_lib_error(NULL);
    if (cli_path(path, sizeof path, "%s/accuracy.png", out)) return 1;
    if (ds_plot_lines(path, "accuracy", "epoch", series, names, acc, epochs_done) != 0) return cli_lib_error(NULL);
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

/* step_size and t_max count epochs unless the model file says
 * schedule_unit=step; warm-up always counts optimizer steps. t_max = 0 means
 * the rest of the run after the warm-up. */
static void schedule_to_steps(ds_schedule *s, int in_epochs, int bpe, int epochs)
{
    if (in_epochs) {
        s->step_size *= bpe;
        s->t_max *= bpe;
    }
    if (s->kind == DS_SCHED_COSINE && s->t_max <= 0) {
        s->t_max = epochs * bpe - s->warmup_steps;
        if (s->t_max < 1) s->t_max = 1;
    }
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    if (parse(argc, argv, &o) != 0) return 1;
    cli_graceful_interrupts(true); /* Ctrl-C stops between batches, never inside a checkpoint write */
    int rc = 1;
    cli_net net = {0};
    ds_optim *opt = NULL;
    ds_loader *loader = NULL;
    ds_checkpoint *ck = NULL, *init_ck = NULL;
    ds_dataset all = {0}, train = {0}, val = {0}, test = {0};
    ds_norm norm = {0};
    ds_train_state st = {0};
    float *probs = NULL, *hist = NULL;
    char *classes_json = NULL;
    ds_metrics m = {0};
    text_buf csv = {0};
    char out[PATH_MAX], path[PATH_MAX], *data_json = NULL;
    ds_best bestrec = {.split = "none"};
    if (o.out && cli_check_out_dir("--out", o.out) != 0) return 2;

    /* model: from the file, or the checkpoint being resumed */
    ds_model *model = NULL;
    if (o.resume) {
        if (!(ck = ds_checkpoint_open(o.resume))) return cli_lib_error(NULL);
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
        if (!o.val && !o.val_split) o.val_split = st.val_split;
    }
    if (o.epochs) tc.epochs = o.epochs;
    if (o.batch) tc.batch = o.batch;
    if (o.lr > 0) tc.optim.lr = o.lr;
    if (o.seed >= 0) tc.seed = (uint64_t)o.seed;
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
    if (cli_data_load(model, o.data, &all) != 0 || (ck && cli_map_classes(ck, &all, o.data) != 0)) goto done;
    data_json = cli_data_provenance(model, o.data, all.n); /* checkpoint metadata "data" */
    if (o.val_split > 0) {
        if (ds_dataset_split(&all, o.val_split, tc.seed, &train, &val) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        ds_dataset_free(&all);
    } else {
        train = all;
        memset(&all, 0, sizeof all);
        if (o.val && cli_data_load(model, o.val, &val) != 0) goto done;
    }
    const char *test_spec = o.test ? o.test : !strcmp(o.data, "fashion-mnist") ? "fashion-mnist:test" : NULL;
    if (test_spec && cli_data_load(model, test_spec, &test) != 0) goto done;
    /* the training data's class names are the model's; --val and --test are numbered by them */
    const char *const *vocab = (const char *const *)train.class_names;
    int n_vocab = vocab ? train.classes : 0;
    if (ds_dataset_map_classes(&val, vocab, n_vocab, o.val) != 0 ||
        ds_dataset_map_classes(&test, vocab, n_vocab, test_spec) != 0 ||
        (n_vocab && !(classes_json = ds_class_names_json(vocab, n_vocab)))) {
        cli_lib_error(NULL);
        goto done;
    }
    if (o.init && !(init_ck = ds_checkpoint_open(o.init))) {
        cli_lib_error(NULL);
        goto done;
    }
    /* the normalisation: a resumed run's, an initial checkpoint's (its weights were fitted to it), or
     * the training data's — identity where the model says normalize=none */
    if (ck || init_ck ? ds_checkpoint_norm(ck ? ck : init_ck, &norm) != 0 : ds_norm_compute(&train, &norm) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    if (!ck && !init_ck && !ds_model_normalize(model))
        for (int c = 0; c < norm.channels; c++) norm.mean[c] = 0, norm.std[c] = 1;
    if (ds_norm_apply(&norm, &train) != 0 ? cli_lib_error(o.data)
        : val.n && ds_norm_apply(&norm, &val) != 0 ? cli_lib_error(o.val ? o.val : "validation data")
        : test.n && ds_norm_apply(&norm, &test) != 0 ? cli_lib_error(test_spec) : 0)
        goto done;

    tc.batch = cli_cap_batch(tc.batch, train.n, "training");
    if (cli_net_build(&net, model, tc.batch, tc.seed) != 0) {
        model = NULL; /* owned by net now */
        goto done;
    }
    model = NULL;
    if (cli_check_input(&net, &train, o.data) != 0 || (val.n && cli_check_input(&net, &val, "validation data")))
        goto done;
    if (train.classes == 0) {
        cli_error("%s has no labels; training needs them (e.g. npy:X.npy,Y.npy or csv:FILE,label=NAME)", o.data);
        goto done;
    }
    if (train.classes > ds_model_classes(net.model) || val.classes > ds_model_classes(net.model)) {
        cli_error("the data has %d classes but the model's [net] classes is %d", train.classes > val.classes ? train.classes : val.classes,
                  ds_model_classes(net.model));
        goto done;
    }
    if (!(loader = ds_loader_new(&train, tc.batch, 1, tc.seed ^ 0x5eedULL))) {
        cli_lib_error(NULL);
        goto done;
    }
    if (tc.augment && ds_loader_set_augment(loader, tc.augment) != 0) {
        cli_lib_error("[train] augment");
        goto done;
    }
    int bpe = ds_loader_batches(loader);
    schedule_to_steps(&tc.optim.schedule, tc.schedule_in_epochs, bpe, tc.epochs);
    if (!(opt = ds_optim_new(net.g, &tc.optim))) {
        cli_lib_error("[train]");
        goto done;
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
        st.best_metric = -1;
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
    if (cli_mkdirs(out) != 0) goto done;

    /* history for the plots: train loss, val loss, train acc, val acc */
    int classes = ds_model_classes(net.model);
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
        ds_atomic_clean(out, ours, 4);
    }
    if (cli_path(path, sizeof path, "%s/metrics.csv", out)) goto done;
    if (tb_printf(&csv, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n")) goto done;
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

    bool bar = !o.quiet && isatty(STDERR_FILENO);
    const char *title = o.model_path ? o.model_path : o.resume;
    printf("training %s on %s: %d samples, %d validation, batch %d, %d epochs -> %s\n",
           o.model_path ? o.model_path : o.resume, o.data, train.n, val.n, tc.batch, tc.epochs, out);
    fflush(stdout);
    for (int e = st.epoch + 1; e <= tc.epochs; e++) {
        epoch_result r = {0};
        double t0 = now();
        float lr = ds_optim_lr(opt);
        int te = train_epoch(&net, opt, loader, e, tc.epochs, bar, &r);
        if (te == TRAIN_INTERRUPTED) goto interrupted;
        if (te != 0) goto done;
        double secs = now() - t0;
        hist[e - 1] = (float)r.loss;
        hist[2 * tc.epochs + e - 1] = (float)r.acc;
        double metric = r.acc;
        ds_metrics_free(&m);
        if (val.n) {
            if (evaluate(&net, &val, probs, &m) != 0) goto done;
            hist[tc.epochs + e - 1] = (float)m.log_loss;
            hist[3 * tc.epochs + e - 1] = (float)m.accuracy;
            metric = m.accuracy;
        }
        printf("epoch %d/%d  loss %.4f  acc %.4f", e, tc.epochs, r.loss, r.acc);
        if (val.n) printf("  val_loss %.4f  val_acc %.4f", m.log_loss, m.accuracy);
        printf("  lr %.3g  %.1f s  %.0f img/s\n", lr, secs, r.n / secs);
        fflush(stdout);
        if (tb_printf(&csv, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f\n", e, r.loss, r.acc, val.n ? m.log_loss : NAN,
                      val.n ? m.accuracy : NAN, lr, secs))
            goto done;

        st.epoch = e;
        st.step = ds_optim_steps(opt);
        st.batch_in_epoch = 0;
        st.loader_rng = *ds_loader_rng(loader);
        st.graph_rng = *ds_graph_rng(net.g);
        st.batch = tc.batch, st.epochs = tc.epochs, st.seed = tc.seed;
        st.lr = tc.optim.lr, st.val_split = o.val_split;
        /* without validation data nothing can choose an epoch: best is the last (docs/design.md) */
        bool best = !val.n || metric > st.best_metric;
        if (best) {
            st.best_metric = metric;
            bestrec = (ds_best){.epoch = e, .value = metric};
            snprintf(bestrec.split, sizeof bestrec.split, "%s", val.n ? "validation" : "none");
        }
        char best_json[160];
        ds_best_json(&bestrec, best_json, sizeof best_json);
        ds_meta_kv kv[3]; /* checkpoint metadata: class names, which split chose best, the data's provenance */
        int n_kv = 0;
        if (classes_json) kv[n_kv++] = (ds_meta_kv){"classes", classes_json};
        kv[n_kv++] = (ds_meta_kv){"best", best_json};
        if (data_json) kv[n_kv++] = (ds_meta_kv){"data", data_json};
        /* last.safetensors is the commit point of an epoch: everything else
         * (metrics.csv, plots, report, best) is written before it, so a kill
         * at any moment resumes from the previous epoch and rewrites them
         * all, exactly as the uninterrupted run would (best first: written
         * after last, a kill between the two left best stale for good) */
        if (cli_path(path, sizeof path, "%s/metrics.csv", out)) goto done;
        if (ds_atomic_write(path, csv.p, csv.len) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        if (write_report(out, title, val.n ? &m : NULL, "validation", &val, hist, tc.epochs, e, val.n > 0) != 0)
            goto done;
        for (int k = best ? 0 : 1; k < 2; k++) {
            if (cli_path(path, sizeof path, "%s/%s.safetensors", out, k ? "last" : "best")) goto done;
            if (ds_checkpoint_save_ex(path, net.g, opt, ds_model_text(net.model), &norm, &st, kv, n_kv) != 0) {
                cli_lib_error(NULL);
                goto done;
            }
        }
        if (cli_interrupted) goto interrupted; /* during the validation pass or the writes: the epoch is kept */
    }
    if (test.n) { /* the final model on the held-out test set */
        ds_metrics tm;
        if (cli_check_input(&net, &test, test_spec) != 0 || evaluate(&net, &test, probs, &tm) != 0) goto done;
        printf("test accuracy: %.4f  (log-loss %.4f, %d samples of %s)\n", tm.accuracy, tm.log_loss, test.n, test_spec);
        int bad = write_report(out, title, &tm, "test", &test, hist, tc.epochs, tc.epochs, val.n > 0);
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
    if (st.epoch > 0) {
        fprintf(stderr, "\ndeepsky: interrupted after epoch %d of %d; resume with:\n  deepsky train --resume %s/last.safetensors --data %s",
                st.epoch, tc.epochs, out, o.data);
        if (o.val) fprintf(stderr, " --val %s", o.val);
        if (o.test) fprintf(stderr, " --test %s", o.test);
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "\ndeepsky: interrupted before the first epoch ended; no checkpoint was written\n");
    }
done:
    cli_graceful_interrupts(false);
    free(csv.p);
    free(data_json);
    ds_metrics_free(&m);
    free(probs);
    free(hist);
    free(classes_json);
    ds_checkpoint_close(ck);
    ds_checkpoint_close(init_ck);
    ds_optim_free(opt);
    ds_loader_free(loader);
    if (net.g) cli_net_free(&net);
    ds_model_free(model);
    ds_norm_free(&norm);
    ds_dataset_free(&all);
    ds_dataset_free(&train);
    ds_dataset_free(&val);
    ds_dataset_free(&test);
    return rc;
}
