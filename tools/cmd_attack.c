/* cmd_attack.c — `deepsky attack`: how easily a classifier is fooled.
 * Clean and adversarial accuracy per epsilon (FGSM or PGD, L∞ or L2) on a
 * data set, the robustness curve, a grid of originals / perturbations /
 * adversarial images with their predicted classes, and the adversarial
 * examples as NPY. Epsilon is in the data's own units: the checkpoint's
 * normalisation is part of the model (src/train/attack.c). */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EPS 32
#define MAX_RECALL 16 /* per-class columns up to this many classes */

typedef struct {
    const char *ckpt, *spec, *out, *clip;
    cli_specs extra;
    ds_attack_cfg c;
    float eps[MAX_EPS];
    int n_eps, batch, max, random_start_given;
    long seed;
} attack_opts;

static int parse_eps(const char *v, attack_opts *o)
{
    char buf[1024], *p = buf, *tok;
    if (strlen(v) >= sizeof buf) return cli_usage("--eps: list too long");
    strcpy(buf, v);
    while ((tok = strsep(&p, ","))) {
        if (o->n_eps == MAX_EPS) return cli_usage("--eps: at most %d values", MAX_EPS);
        char *end;
        double e = strtod(tok, &end);
        if (end == tok || *end || !isfinite(e)) return cli_usage("--eps: '%s' is not a number", tok);
        if (e < 0) return cli_usage("--eps: %s is negative; eps is the radius of the ball around each input (>= 0)", tok);
        o->eps[o->n_eps++] = (float)e;
    }
    return o->n_eps ? 0 : cli_usage("--eps needs a value");
}

static int parse_clip(const char *v, const char *spec, ds_attack_cfg *c)
{
    if (!strcmp(v, "none")) return c->clip = 0, 0;
    if (!strcmp(v, "auto")) {
        c->clip = cli_spec_unit_range(spec);
        c->lo = 0, c->hi = 1;
        return 0;
    }
    if (ds_parse_range(v, &c->lo, &c->hi) != 0) return cli_usage("--clip: '%s' is not auto, none or LO,HI with LO < HI", v);
    c->clip = 1;
    return 0;
}

/* rows [off, off + b) of d's other inputs into their feeds; targets the data lacks are zeros */
static void feed_fields(cli_net *net, const ds_dataset *d, int off, int b)
{
    for (int k = 1; k < net->prog.n_feeds; k++) {
        float *dst = ds_node_value(net->prog.feeds[k]);
        size_t per = ds_node_numel(net->prog.feeds[k]) / (size_t)ds_graph_batch(net->g);
        if (k - 1 < d->n_fields) memcpy(dst, d->fields[k - 1].x + (size_t)off * per, (size_t)b * per * sizeof *dst);
        else memset(dst, 0, (size_t)b * per * sizeof *dst);
    }
}

/* predicted classes of raw rows x (eval mode) into pred */
static int predict_rows(cli_net *net, const ds_norm *norm, const float *x, int b, float *probs, int *pred)
{
    ds_program *p = &net->prog;
    int h = ds_program_class_head(p), k = p->heads[h].classes;
    if (p->labels) memset(ds_node_value(p->labels), 0, (size_t)b * sizeof(float));
    if (ds_feed_normalized(p, norm, x, b) != 0 || ds_graph_forward(net->g) != 0 || ds_program_probs(p, h, b, 0, probs) != 0)
        return cli_lib_error(NULL);
    for (int r = 0; r < b; r++) pred[r] = ds_argmax(probs + (size_t)r * k, k);
    return 0;
}

/* the grid: originals, perturbations (scaled to ±their largest), adversarial images; 8 columns */
static int write_examples(const char *out, const ds_dataset *d, const float *xa, const int *pred_clean,
                          const int *pred_adv, float eps, int n_show)
{
    ds_shape s = d->sample;
    int H = s.ndim == 3 ? s.d[1] : 1, W = s.ndim == 3 ? s.d[2] : s.d[0], C = s.ndim == 3 ? s.d[0] : 1;
    size_t plane = (size_t)H * W, sample = (size_t)C * plane;
    float *tiles = malloc(3 * (size_t)n_show * plane * sizeof *tiles);
    char **labels = calloc(3 * (size_t)n_show, sizeof *labels);
    int rc = 0;
    if (!tiles || !labels) rc = cli_error("out of memory");
    for (int i = 0; !rc && i < n_show; i++) {
        const float *x0 = d->x + (size_t)i * sample + (size_t)(C - 1) * plane; /* the last channel (a stamp's difference) */
        const float *x1 = xa + (size_t)i * sample + (size_t)(C - 1) * plane;
        float *a = tiles + (size_t)i * plane, *dp = tiles + (size_t)(n_show + i) * plane,
              *b = tiles + (size_t)(2 * n_show + i) * plane;
        for (size_t j = 0; j < plane; j++) a[j] = x0[j], dp[j] = x1[j] - x0[j], b[j] = x1[j];
        char t[96], c1[32], c2[32], buf[160];
        snprintf(buf, sizeof buf, "#%d %s\npred %s", i, cli_class_name(d, (int)d->y[i], t, sizeof t),
                 cli_class_name(d, pred_clean[i], c1, sizeof c1));
        labels[i] = strdup(buf);
        snprintf(buf, sizeof buf, "perturbation\neps %g", (double)eps);
        labels[n_show + i] = strdup(buf);
        snprintf(buf, sizeof buf, "adversarial\npred %s%s", cli_class_name(d, pred_adv[i], c2, sizeof c2),
                 pred_adv[i] != (int)d->y[i] ? " (wrong)" : "");
        labels[2 * n_show + i] = strdup(buf);
    }
    char path[PATH_MAX];
    if (!rc && !cli_path(path, sizeof path, "%s/examples.png", out) &&
        ds_png_grid_labeled(path, tiles, 3 * n_show, H, W, n_show, 1, (const char *const *)labels) != 0)
        rc = cli_lib_error(NULL);
    for (int i = 0; labels && i < 3 * n_show; i++) free(labels[i]);
    free(labels);
    free(tiles);
    return rc;
}

static int run_attack(attack_opts *o)
{
    cli_net net;
    ds_norm norm = {0}, none = {0};
    ds_dataset d = {0};
    int rc = 1, classes;
    float *xa = NULL, *xa_keep = NULL, *probs = NULL, *acc = NULL;
    int *wrong = NULL, *pred_clean = NULL, *pred_adv = NULL;
    char *csv = NULL;
    size_t csv_len = 0;
    /* built at batch 1 until the data's size is known */
    if (cli_net_from_checkpoint_ex(o->ckpt, 1, &net, &norm, CLI_NET_GRAD) != 0) return 1;
    /* the data stays in its own units (the first input's normalisation is applied per batch, as part of the model) */
    if (cli_net_load_data(&net, &none, o->spec, &o->extra, &d) != 0) goto done;
    if (d.classes == 0) {
        cli_error("%s has no labels; an attack needs the true classes (e.g. npy:X.npy,Y.npy)", o->spec);
        goto done;
    }
    if (norm.channels && norm.channels != d.sample.d[0]) {
        cli_error("%s: the checkpoint's normalisation has %d channels, the data %d", o->spec, norm.channels, d.sample.d[0]);
        goto done;
    }
    if (o->max > 0 && o->max < d.n) d.n = o->max; /* the first --max samples */
    int batch = cli_cap_batch(o->batch, d.n, NULL);
    if (batch != 1) {
        ds_norm_free(&norm);
        cli_net_free(&net);
        if (cli_net_from_checkpoint_ex(o->ckpt, batch, &net, &norm, CLI_NET_GRAD) != 0) {
            ds_dataset_free(&d);
            return 1;
        }
    }
    ds_provenance prov = {0};
    if (cli_provenance_of(net.model, o->spec, d.n, &prov, NULL) == 0) cli_warn_trained_on(o->ckpt, &prov, o->spec, d.n);
    ds_provenance_free(&prov);
    classes = net.prog.heads[ds_program_class_head(&net.prog)].classes;
    size_t sample = ds_shape_numel(d.sample), n = (size_t)d.n;
    if (o->c.clip) { /* clean inputs outside the valid range would be changed by the clipping itself */
        size_t out = 0;
        for (size_t i = 0; i < n * sample; i++) out += d.x[i] < o->c.lo || d.x[i] > o->c.hi;
        if (out)
            fprintf(stderr, "deepsky: warning: %zu values of %s lie outside the clipping range [%g, %g] "
                            "(--clip none or --clip LO,HI to change it)\n", out, o->spec, (double)o->c.lo, (double)o->c.hi);
    }
    if (!(xa = malloc(n * sample * sizeof *xa)) || !(xa_keep = malloc(n * sample * sizeof *xa)) ||
        !(probs = malloc((size_t)batch * (size_t)classes * sizeof *probs)) || !(wrong = malloc(n * sizeof *wrong)) ||
        !(pred_clean = malloc(n * sizeof *pred_clean)) || !(pred_adv = malloc(n * sizeof *pred_adv)) ||
        !(acc = malloc((size_t)o->n_eps * sizeof *acc))) {
        cli_error("out of memory");
        goto done;
    }
    /* clean accuracy, in the same batches as the attacks (eps 0 then gives the same floats) */
    long hits = 0;
    /* per class (up to MAX_RECALL): a class-imbalanced set's accuracy can rise when everything becomes the
     * majority class, so the recall of each class is shown beside it */
    int nrec = classes <= MAX_RECALL ? classes : 0;
    long total_k[MAX_RECALL] = {0}, clean_k[MAX_RECALL] = {0};
    for (int off = 0; off < d.n; off += batch) {
        int b = d.n - off < batch ? d.n - off : batch;
        feed_fields(&net, &d, off, b);
        if (predict_rows(&net, &norm, d.x + (size_t)off * sample, b, probs, pred_clean + off) != 0) goto done;
        for (int r = 0; r < b; r++) {
            int t = (int)d.y[off + r], hit = pred_clean[off + r] == t;
            hits += hit;
            if (nrec) total_k[t]++, clean_k[t] += hit;
        }
    }
    double clean = (double)hits / d.n;
    const char *mname = o->c.method == DS_ATTACK_FGSM ? "FGSM" : "PGD";
    printf("attack %s on %s (%d samples): %s%s, %s", o->ckpt, o->spec, d.n, mname, o->c.l2 ? " L2" : " Linf",
           o->c.clip ? "" : "inputs not clipped");
    if (o->c.clip) printf("inputs clipped to [%g, %g]", (double)o->c.lo, (double)o->c.hi);
    if (o->c.method == DS_ATTACK_PGD)
        printf(", %d steps, step %s, %s, %d restart%s", o->c.steps, o->c.step_size > 0 ? "given" : "2.5*eps/steps",
               o->c.random_start ? "random start" : "no random start", o->c.restarts < 1 ? 1 : o->c.restarts,
               o->c.restarts > 1 ? "s" : "");
    printf("\nclean accuracy %.4f\n", clean);
    char cname[64];
    if (nrec && nrec <= 4) { /* a few classes: their recall in the table */
        printf("clean recall");
        for (int k = 0; k < nrec; k++)
            printf("  %s %.4f", cli_class_name(&d, k, cname, sizeof cname), total_k[k] ? (double)clean_k[k] / total_k[k] : NAN);
        printf("\n");
    }
    printf("\n%10s %12s %12s %10s", "eps", "adv_acc", "drop", "seconds");
    for (int k = 0; nrec && nrec <= 4 && k < nrec; k++) printf(" %12.12s", cli_class_name(&d, k, cname, sizeof cname));
    printf("\n");
    ds_rng rng;
    for (int e = 0; e < o->n_eps; e++) {
        ds_attack_cfg c = o->c;
        c.eps = o->eps[e];
        ds_attacker *a = ds_attacker_new(&net.prog, &norm, &c);
        if (!a) {
            cli_lib_error("attack");
            goto done;
        }
        ds_rng_seed(&rng, (uint64_t)o->seed ^ (0xa77acULL + (uint64_t)e * 0x9e3779b97f4a7c15ULL));
        double t0 = ds_now();
        long right = 0, adv_k[MAX_RECALL] = {0};
        for (int off = 0; off < d.n; off += batch) {
            int b = d.n - off < batch ? d.n - off : batch;
            feed_fields(&net, &d, off, b);
            if (ds_attacker_run(a, d.x + (size_t)off * sample, d.y + off, b, &rng, xa + (size_t)off * sample,
                                wrong + off) != 0) {
                ds_attacker_free(a);
                cli_lib_error("attack");
                goto done;
            }
            for (int r = 0; r < b; r++) {
                right += !wrong[off + r];
                if (nrec) adv_k[(int)d.y[off + r]] += !wrong[off + r];
            }
            if (cli_interrupted) break;
        }
        ds_attacker_free(a);
        acc[e] = (float)((double)right / d.n);
        printf("%10g %12.4f %12.4f %10.1f", (double)c.eps, acc[e], clean - acc[e], ds_now() - t0);
        for (int k = 0; nrec && nrec <= 4 && k < nrec; k++) printf(" %12.4f", total_k[k] ? (double)adv_k[k] / total_k[k] : NAN);
        printf("\n");
        fflush(stdout);
        if (o->out) {
            char path[PATH_MAX], line[160 + MAX_RECALL * 160];
            if (cli_path(path, sizeof path, "%s/adversarial_eps%g.npy", o->out, (double)c.eps)) goto done;
            ds_shape s = {.ndim = d.sample.ndim + 1};
            s.d[0] = d.n;
            for (int k = 0; k < d.sample.ndim; k++) s.d[k + 1] = d.sample.d[k];
            if (ds_npy_write(path, s, xa) != 0) {
                cli_lib_error(NULL);
                goto done;
            }
            int len = 0;
            if (!e) { /* the header: per class, the clean and adversarial recall */
                len += snprintf(line + len, sizeof line - (size_t)len, "eps,clean_accuracy,adversarial_accuracy,n");
                for (int k = 0; k < nrec; k++) {
                    const char *nm = cli_class_name(&d, k, cname, sizeof cname);
                    len += snprintf(line + len, sizeof line - (size_t)len, ",clean_recall_%s,adversarial_recall_%s", nm, nm);
                }
                len += snprintf(line + len, sizeof line - (size_t)len, "\n");
            }
            len += snprintf(line + len, sizeof line - (size_t)len, "%g,%.6f,%.6f,%d", (double)c.eps, clean, acc[e], d.n);
            for (int k = 0; k < nrec; k++)
                len += snprintf(line + len, sizeof line - (size_t)len, ",%.6f,%.6f",
                                total_k[k] ? (double)clean_k[k] / total_k[k] : NAN, total_k[k] ? (double)adv_k[k] / total_k[k] : NAN);
            len += snprintf(line + len, sizeof line - (size_t)len, "\n");
            if (len >= (int)sizeof line) {
                cli_error("attack.csv: a row too long (class names)");
                goto done;
            }
            char *grown = realloc(csv, csv_len + (size_t)len + 1);
            if (!grown) {
                cli_error("out of memory");
                goto done;
            }
            csv = grown;
            memcpy(csv + csv_len, line, (size_t)len + 1);
            csv_len += (size_t)len;
            memcpy(xa_keep, xa, n * sample * sizeof *xa); /* the largest eps so far: the examples grid */
        }
        if (cli_interrupted) {
            rc = 128 + cli_interrupted;
            goto done;
        }
    }
    if (o->out) {
        char path[PATH_MAX];
        if (cli_path(path, sizeof path, "%s/attack.csv", o->out) || ds_atomic_write(path, csv, csv_len) != 0) {
            if (!cli_usage_seen()) cli_lib_error(NULL);
            goto done;
        }
        float x[MAX_EPS + 1], yc[MAX_EPS + 1], ya[MAX_EPS + 1];
        for (int e = 0; e < o->n_eps; e++) x[e] = o->eps[e], ya[e] = acc[e], yc[e] = (float)clean;
        ds_plot_series sr[2] = {{.name = "adversarial", .x = x, .y = ya, .n = o->n_eps, .style = DS_PLOT_LINE_POINTS},
                                {.name = "clean", .x = x, .y = yc, .n = o->n_eps, .style = DS_PLOT_DASHED}};
        char title[160], xl[64];
        snprintf(title, sizeof title, "%s%s robustness", mname, o->c.l2 ? " L2" : "");
        snprintf(xl, sizeof xl, "eps (%s, the data's units)", o->c.l2 ? "L2" : "Linf");
        ds_plot_opts po = {.title = title, .xlabel = xl, .ylabel = "accuracy", .y_fixed = 1, .ymin = 0, .ymax = 1};
        if (cli_path(path, sizeof path, "%s/robustness.png", o->out) || ds_plot_xy(path, &po, sr, 2) != 0) {
            if (!cli_usage_seen()) cli_lib_error(NULL);
            goto done;
        }
        /* the grid for the last eps: predictions of its adversarial rows */
        int show = d.n < 8 ? d.n : 8;
        for (int off = 0; off < show; off += batch) {
            int b = show - off < batch ? show - off : batch;
            feed_fields(&net, &d, off, b);
            if (predict_rows(&net, &norm, xa_keep + (size_t)off * sample, b, probs, pred_adv + off) != 0) goto done;
        }
        if (write_examples(o->out, &d, xa_keep, pred_clean, pred_adv, o->eps[o->n_eps - 1], show) != 0) goto done;
        printf("\nwrote %s/attack.csv, robustness.png, examples.png and adversarial_eps*.npy\n", o->out);
    }
    rc = 0;
done:
    free(xa), free(xa_keep), free(probs), free(wrong), free(pred_clean), free(pred_adv), free(acc), free(csv);
    ds_dataset_free(&d);
    ds_norm_free(&norm);
    cli_net_free(&net);
    return rc;
}

static int cmd_attack(int argc, char **argv)
{
    attack_opts o = {.c = {.method = -1, .steps = 20, .random_start = 1, .restarts = 1}, .batch = 256, .seed = 1,
                     .clip = "auto"};
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data")) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage("--data needs a value");
            const char *val = argv[++i];
            if (cli_is_binding(val)) { /* NAME=SPEC: another input's source */
                if (cli_specs_add(&o.extra, "--data", val)) return 1;
            } else if (o.spec) {
                return cli_usage("--data is given twice (another input's source is --data NAME=SPEC)");
            } else {
                o.spec = val;
            }
        } else if (cli_opt(argc, argv, &i, "--method", &v)) {
            if (!v) return cli_usage("--method needs fgsm or pgd");
            if (!strcmp(v, "fgsm")) o.c.method = DS_ATTACK_FGSM;
            else if (!strcmp(v, "pgd")) o.c.method = DS_ATTACK_PGD;
            else return cli_usage("--method: '%s' is not fgsm or pgd", v);
        } else if (cli_opt(argc, argv, &i, "--eps", &v)) {
            if (!v) return cli_usage("--eps needs a value");
            if (parse_eps(v, &o)) return 2;
        } else if (cli_opt(argc, argv, &i, "--norm", &v)) {
            if (!v || (strcmp(v, "linf") && strcmp(v, "l2"))) return cli_usage("--norm: give linf or l2");
            o.c.l2 = !strcmp(v, "l2");
        } else if (cli_opt(argc, argv, &i, "--steps", &v)) {
            if (cli_parse_int("--steps", v, 1, 1 << 16, &o.c.steps)) return 1;
        } else if (cli_opt(argc, argv, &i, "--step-size", &v)) {
            if (cli_parse_float("--step-size", v, 0, 1e30, &o.c.step_size)) return 1;
        } else if (cli_opt(argc, argv, &i, "--random-start", &v)) {
            if (cli_parse_int("--random-start", v, 0, 1, &o.c.random_start)) return 1;
        } else if (cli_opt(argc, argv, &i, "--restarts", &v)) {
            if (cli_parse_int("--restarts", v, 1, 1000, &o.c.restarts)) return 1;
        } else if (cli_opt(argc, argv, &i, "--clip", &v)) {
            if (!v) return cli_usage("--clip needs auto, none or LO,HI");
            o.clip = v;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 20, &o.batch)) return 1;
        } else if (cli_opt(argc, argv, &i, "--max", &v)) {
            if (cli_parse_int("--max", v, 1, INT_MAX, &o.max)) return 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            int s;
            if (cli_parse_int("--seed", v, 0, INT_MAX, &s)) return 1;
            o.seed = s;
        } else if (cli_opt(argc, argv, &i, "--out", &o.out)) {
            if (!o.out || !*o.out) return cli_usage("--out needs a value");
            if (cli_check_out_dir("--out", o.out) != 0) return 2;
        } else if (argv[i][0] == '-') {
            return cli_usage("attack: unknown option '%s' (see deepsky attack --help)", argv[i]);
        } else if (!o.ckpt) {
            o.ckpt = argv[i];
        } else {
            return cli_usage("attack: unexpected argument '%s'", argv[i]);
        }
    }
    if (!o.ckpt || !o.spec || o.c.method < 0 || !o.n_eps)
        return cli_usage("attack: usage: deepsky attack CKPT --data SPEC --method fgsm|pgd --eps E[,E2,...]");
    if (parse_clip(o.clip, o.spec, &o.c)) return 2;
    if (o.out && cli_mkdirs(o.out) != 0) return 1;
    cli_graceful_interrupts(true);
    int rc = run_attack(&o);
    cli_graceful_interrupts(false);
    return rc;
}

static const char *const attack_repeatable[] = {"--data", NULL}; /* NAME=SPEC: one source each */
const cli_command cli_cmd_attack = {
    "attack",
    cmd_attack,
    "adversarial examples (FGSM, PGD): accuracy against epsilon",
    "usage: deepsky attack CKPT --data SPEC --method fgsm|pgd --eps E[,E2,...] [options]\n"
    "\n"
    "  --data SPEC          labelled data to attack (NAME=SPEC: a several-input model's other inputs)\n"
    "  --method fgsm|pgd    the fast gradient sign method (Goodfellow et al. 2015) or projected\n"
    "                       gradient descent (Madry et al. 2018)\n"
    "  --eps E[,E2,...]     radii of the ball around each input, >= 0, in the data's own units\n"
    "                       (pixels read as [0, 1]; FITS/NPY as stored): the checkpoint's\n"
    "                       normalisation is part of the model\n"
    "  --norm linf|l2       the ball (default linf; l2: per sample)\n"
    "  --steps N            PGD iterations (default 20)\n"
    "  --step-size A        PGD step (default 2.5*eps/steps)\n"
    "  --random-start 0|1   PGD starts at a uniform point of the ball (default 1)\n"
    "  --restarts R         PGD tries; a sample counts as fooled if any try fools it (default 1)\n"
    "  --clip auto|none|LO,HI  the valid range adversarial inputs are clipped to (auto: [0, 1]\n"
    "                       for fashion-mnist, idx: and image folders, none for NPY, CSV and FITS)\n"
    "  --max N              attack the first N samples only\n"
    "  --batch N            samples per batch (default 256)\n"
    "  --seed N             PGD's random starts (default 1)\n"
    "  --out DIR            write DIR/attack.csv (eps, clean and adversarial accuracy), the\n"
    "                       robustness curve DIR/robustness.png, DIR/examples.png (originals,\n"
    "                       perturbations and adversarial images of the largest eps with their\n"
    "                       predicted classes) and DIR/adversarial_epsE.npy for each eps\n"
    "\n"
    "Attacks run in eval mode (dropout off, batch norm's running statistics) and\n"
    "maximise the classifying head's loss for the true class. Clean accuracy is\n"
    "measured in the same batches, so eps 0 gives exactly the clean accuracy.\n",
    attack_repeatable,
};
