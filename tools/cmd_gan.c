/* cmd_gan.c — `deepsky gan MODEL --data SPEC`: train a GAN model file
 * (docs/gan.md) through src/train/gan.c, with a progress line, a
 * fixed-noise sample grid per epoch, metrics.csv (both losses, D(x) and
 * D(G(z)) per epoch), plots, an HTML report, a latent interpolation and
 * resumable checkpoints holding both networks (--resume continues
 * bit-identically from the last finished epoch). */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *spec, *out, *resume;
    int epochs, batch, limit, quiet;
    long seed;
} gan_opts;

static int parse(int argc, char **argv, gan_opts *o)
{
    *o = (gan_opts){.seed = -1};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (cli_opt(argc, argv, &i, "--data", &o->spec) || cli_opt(argc, argv, &i, "--out", &o->out) ||
            cli_opt(argc, argv, &i, "--resume", &o->resume))
            continue;
        if (cli_opt(argc, argv, &i, "--epochs", &v)) {
            if (cli_parse_int("--epochs", v, 1, 1000000, &o->epochs)) return 2;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("--batch", v, 1, 1 << 20, &o->batch)) return 2;
        } else if (cli_opt(argc, argv, &i, "--limit", &v)) {
            if (cli_parse_int("--limit", v, 1, INT_MAX, &o->limit)) return 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            int s;
            if (cli_parse_int("--seed", v, 0, INT_MAX, &s)) return 2;
            o->seed = s;
        } else if (!strcmp(argv[i], "--quiet")) {
            o->quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("gan: unknown option %s (see deepsky gan --help)", argv[i]);
        } else if (!o->model) {
            o->model = argv[i];
        } else {
            return cli_usage("gan: one MODEL.cfg only (got %s and %s)", o->model, argv[i]);
        }
    }
    if (!o->spec) return cli_usage("gan: --data SPEC is required (e.g. --data fashion-mnist)");
    if (!o->model && !o->resume) return cli_usage("gan: give a GAN model file or --resume CKPT");
    if (o->model && o->resume) return cli_usage("gan: --resume takes the model from the checkpoint; drop %s", o->model);
    return 0;
}

/* ---- what each epoch leaves ---- */

#define MAX_EPOCH_ROWS 8 /* samples of each epoch in progress.png */

typedef struct {
    const gan_opts *o;
    ds_gan *gan;
    ds_gan_model *m;
    const ds_gan_cfg *gc;
    char out[PATH_MAX];
    int epochs, bpe, first;
    int sh, sw, sc;             /* sample height, width, channels */
    int cols;                   /* the grid's columns (0: square); a conditional GAN's class is the column's */
    float *zfix, *cfix, *grid;  /* the fixed noise, its classes, one grid of samples */
    float *hist;                /* [6][epochs]: loss_d, loss_g, d_real, d_fake, d_fake_after, images/s */
    float *strip;               /* [epochs][MAX_EPOCH_ROWS] samples: progress.png */
    char *csv;                  /* metrics.csv so far */
    size_t csv_len;
    cli_progress bar;
} run;

static int append(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append(run *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *p = n < 0 || n >= (int)sizeof line ? NULL : realloc(r->csv, r->csv_len + (size_t)n + 1);
    if (!p) return cli_error("metrics.csv: out of memory");
    memcpy(p + r->csv_len, line, (size_t)n + 1);
    r->csv = p, r->csv_len += (size_t)n;
    return 0;
}

static int write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if (cli_path(tmp, sizeof tmp, "%s.tmp", path)) return 1;
    FILE *f = fopen(tmp, "wb");
    if (!f) return cli_error("%s: cannot write", tmp);
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return cli_error("%s: cannot write", path);
    }
    return 0;
}

/* the first channel of n samples (the tiles are grey) */
static const float *plane0(const run *r, const float *x, int n, float *buf)
{
    if (r->sc == 1) return x;
    size_t hw = (size_t)r->sh * r->sw;
    for (int i = 0; i < n; i++) memcpy(buf + i * hw, x + (size_t)i * r->sc * hw, hw * sizeof *buf);
    return buf;
}

/* samples_epochE.png and samples.png from the fixed noise; its first rows into the strip */
static int grid_png(run *r, int epoch)
{
    int n = r->gc->grid;
    if (ds_gan_generate(r->gan, n, r->zfix, r->gc->conditional ? r->cfix : NULL, NULL, NULL, r->grid))
        return cli_lib_error("sample grid");
    size_t hw = (size_t)r->sh * r->sw;
    float *g0 = malloc((size_t)n * hw * sizeof *g0);
    if (!g0) return cli_error("out of memory");
    const float *p = plane0(r, r->grid, n, g0);
    char path[PATH_MAX];
    int rc = 0;
    /* one scale for every tile: how bright each sample is, is part of what it shows */
    for (int pass = 0; !rc && pass < 2; pass++) {
        if (cli_path(path, sizeof path, pass ? "%s/samples.png" : "%s/samples_epoch%d.png", r->out, epoch)) rc = 1;
        else if (ds_png_grid(path, p, n, r->sh, r->sw, r->cols, 0)) rc = cli_lib_error(NULL);
    }
    int rows = n < MAX_EPOCH_ROWS ? n : MAX_EPOCH_ROWS;
    if (!rc && epoch >= 1 && epoch <= r->epochs) memcpy(r->strip + (size_t)(epoch - 1) * MAX_EPOCH_ROWS * hw, p, (size_t)rows * hw * sizeof *p);
    free(g0);
    return rc;
}

/* progress.png: one row per epoch, the same fixed-noise samples left to right */
static int strip_png(run *r, int epochs_done)
{
    char path[PATH_MAX];
    int rows = r->gc->grid < MAX_EPOCH_ROWS ? r->gc->grid : MAX_EPOCH_ROWS;
    size_t hw = (size_t)r->sh * r->sw;
    float *t = malloc((size_t)epochs_done * rows * hw * sizeof *t);
    if (!t) return cli_error("out of memory");
    for (int e = 0; e < epochs_done; e++)
        memcpy(t + (size_t)e * rows * hw, r->strip + (size_t)e * MAX_EPOCH_ROWS * hw, (size_t)rows * hw * sizeof *t);
    int rc = cli_path(path, sizeof path, "%s/progress.png", r->out);
    if (!rc && ds_png_grid(path, t, epochs_done * rows, r->sh, r->sw, rows, 0)) rc = cli_lib_error(NULL);
    free(t);
    return rc;
}

/* interpolation.png: 8 rows, each 10 steps along the line between two fixed z (the same class per row) */
static int interpolation_png(run *r)
{
    enum { ROWS = 8, STEPS = 10 };
    int L = r->gc->latent, n = ROWS * STEPS;
    float *z = malloc((size_t)n * L * sizeof *z), *c = malloc((size_t)n * sizeof *c);
    size_t per = (size_t)r->sc * r->sh * r->sw, hw = (size_t)r->sh * r->sw;
    float *x = malloc((size_t)n * per * sizeof *x), *g0 = malloc((size_t)n * hw * sizeof *g0);
    int rc = z && c && x && g0 ? 0 : cli_error("out of memory");
    ds_rng rng;
    ds_rng_seed(&rng, 0x1e7e7ULL);
    for (int row = 0; !rc && row < ROWS; row++) {
        /* the row's ends a (its first z) and b (its last), the steps between them */
        float *a = z + (size_t)row * STEPS * L, *b = a + (size_t)(STEPS - 1) * L;
        for (int j = 0; j < L; j++) a[j] = ds_rng_normal(&rng), b[j] = ds_rng_normal(&rng);
        for (int s = 0; s < STEPS; s++) {
            float t = (float)s / (STEPS - 1);
            if (s > 0 && s < STEPS - 1)
                for (int j = 0; j < L; j++) a[(size_t)s * L + j] = (1 - t) * a[j] + t * b[j];
            c[row * STEPS + s] = r->gc->conditional ? (float)(row % r->gc->classes) : 0;
        }
    }
    char path[PATH_MAX];
    if (!rc && ds_gan_generate(r->gan, n, z, r->gc->conditional ? c : NULL, NULL, NULL, x)) rc = cli_lib_error("interpolation");
    if (!rc && cli_path(path, sizeof path, "%s/interpolation.png", r->out)) rc = 1;
    if (!rc && ds_png_grid(path, plane0(r, x, n, g0), n, r->sh, r->sw, STEPS, 0)) rc = cli_lib_error(NULL);
    free(z), free(c), free(x), free(g0);
    return rc;
}

static int plots_and_report(run *r, int done)
{
    char path[PATH_MAX], summary[1024];
    const float *h = r->hist;
    int E = r->epochs;
    const char *ln[2] = {"discriminator", "generator"};
    const float *lv[2] = {h, h + E};
    if (cli_path(path, sizeof path, "%s/loss.png", r->out) ||
        ds_plot_lines_ex(path, "GAN losses", "epoch", "mean loss per step", 2, ln, lv, done))
        return cli_lib_error(NULL);
    const char *dn[3] = {"D(x)", "D(G(z)) at D's step", "D(G(z)) at G's step"};
    const float *dv[3] = {h + 2 * E, h + 3 * E, h + 4 * E};
    if (cli_path(path, sizeof path, "%s/d_output.png", r->out) ||
        ds_plot_lines_ex(path, "discriminator output", "epoch", "mean D (probability real)", 3, dn, dv, done))
        return cli_lib_error(NULL);
    if (strip_png(r, done)) return 1;
    int e = done - 1;
    snprintf(summary, sizeof summary,
             "epochs: %d\ndiscriminator loss: %.4f\ngenerator loss: %.4f\nD(x): %.4f\nD(G(z)): %.4f / %.4f\n"
             "images/s: %.0f\n",
             done, h[e], h[E + e], h[2 * E + e], h[3 * E + e], h[4 * E + e], h[5 * E + e]);
    if (ds_report_html(r->out, r->o->model ? r->o->model : r->o->resume, summary)) return cli_lib_error(NULL);
    return 0;
}

static int on_batch(void *user, int batch, int batches, const ds_gan_stats *s)
{
    run *r = user;
    char f[160];
    snprintf(f, sizeof f, "loss D %.3f G %.3f  D(x) %.2f D(G(z)) %.2f", s->loss_d, s->loss_g, s->d_real, s->d_fake);
    (void)batches;
    cli_progress_update(&r->bar, (long)r->first * r->bpe + batch, f);
    return cli_interrupted ? DS_TRAIN_STOP : 0;
}

/* ---- the command ---- */

static int run_gan(int argc, char **argv)
{
    gan_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    ds_checkpoint *ck = NULL;
    ds_gan_model *m = NULL;
    ds_gan *gan = NULL;
    ds_loader *l = NULL;
    ds_dataset d = {0};
    ds_train_state st = {0};
    run r = {.o = &o};
    rc = 1;
    if (o.resume) {
        if (!(ck = ds_checkpoint_open(o.resume))) return cli_lib_error(NULL);
        const char *text = ds_checkpoint_model_text(ck);
        if (!text || !ds_model_text_is_gan(text)) {
            ds_checkpoint_close(ck);
            return cli_error("%s: not a GAN checkpoint (train it with deepsky train --resume)", o.resume);
        }
        if (!(m = ds_gan_model_parse(text, o.resume)) || ds_checkpoint_state(ck, &st)) goto lib_fail;
    } else if (!(m = ds_gan_model_load(o.model))) {
        goto lib_fail;
    }
    const ds_gan_cfg *gc = ds_gan_model_cfg(m);
    const ds_train_cfg *tc = ds_gan_model_train_cfg(m);
    int batch = o.batch ? o.batch : ck ? st.batch : tc->batch;
    r.epochs = o.epochs ? o.epochs : ck ? st.epochs : tc->epochs;
    uint64_t seed = o.seed >= 0 ? (uint64_t)o.seed : ck ? st.seed : tc->seed;
    if (ck && (batch != st.batch || seed != st.seed)) {
        rc = cli_usage("gan: a resumed run keeps its batch (%d) and seed (%llu)", st.batch, (unsigned long long)st.seed);
        goto done;
    }
    const char *out = o.out ? o.out : NULL;
    char dflt[PATH_MAX];
    if (!out && ck) { /* resume in place */
        snprintf(dflt, sizeof dflt, "%s", o.resume);
        char *slash = strrchr(dflt, '/');
        if (slash) *slash = 0;
        else strcpy(dflt, ".");
        out = dflt;
    } else if (!out) {
        out = "runs/gan";
    }
    if (cli_check_out_dir("--out", out)) goto done;
    snprintf(r.out, sizeof r.out, "%s", out);
    if (!(gan = ds_gan_new(m, batch, seed))) goto lib_fail; /* the model is checked before the data is read */
    /* the data, as the discriminator sees it */
    ds_model *dm = ds_gan_model_net(m, 1);
    if (cli_data_load(dm, o.spec, &d)) goto done;
    if (o.limit && o.limit < d.n) d.n = o.limit;
    ds_shape want = ds_gan_model_sample_shape(m);
    int same = d.sample.ndim == want.ndim;
    for (int k = 0; same && k < want.ndim; k++) same = d.sample.d[k] == want.d[k];
    if (!same) {
        char a[64], b[64];
        rc = cli_error("%s: samples are %s; the discriminator's input is %s", o.spec, ds_shape_str(d.sample, a, sizeof a),
                       ds_shape_str(want, b, sizeof b));
        goto done;
    }
    if (gc->conditional)
        for (int i = 0; i < d.n; i++)
            if (!(d.y[i] >= 0 && d.y[i] < gc->classes)) {
                rc = cli_error("%s: sample %d has class %g; the conditional GAN has classes 0..%d ([gan] classes=%d)",
                               o.spec, i, (double)d.y[i], gc->classes - 1, gc->classes);
                goto done;
            }
    char n_text[24];
    snprintf(n_text, sizeof n_text, "%d", d.n);
    ds_gan_scale sc;
    if (ck) {
        /* the loader's state and the scale belong to the data the run began on */
        const char *was_n = ds_checkpoint_meta(ck, "data_samples"), *was_spec = ds_checkpoint_meta(ck, "data_spec");
        if (was_n && strcmp(was_n, n_text)) {
            rc = cli_error("%s: %d samples, but the run being resumed trained on %s (give the same --data and --limit)",
                           o.spec, d.n, was_n);
            goto done;
        }
        if (was_spec && strcmp(was_spec, o.spec))
            fprintf(stderr, "deepsky: warning: --data %s; the run being resumed was given %s\n", o.spec, was_spec);
        if (ds_gan_restore(gan, ck, &st)) goto lib_fail;
        sc = *ds_gan_get_scale(gan);
    } else if (ds_gan_scale_fit(gc, &d, &sc)) {
        goto lib_fail;
    }
    ds_gan_set_scale(gan, &sc);
    ds_gan_scale_apply(&sc, d.x, (size_t)d.n * ds_shape_numel(d.sample));
    if (!(l = ds_loader_new(&d, batch, 1, seed ^ 0x5eedULL))) goto lib_fail;
    /* sampler = balanced: each class equally often (a conditional GAN's rare class learns its look too) */
    if (tc->balanced && ds_loader_set_balanced(l, 1)) goto lib_fail;
    if (tc->augment && ds_loader_set_augment(l, tc->augment)) goto lib_fail; /* [train] augment=flip|dihedral */
    if (ck) *ds_loader_rng(l) = st.loader_rng;
    r.gan = gan, r.m = m, r.gc = gc, r.bpe = ds_loader_batches(l), r.first = ck ? st.epoch : 0;
    r.sc = want.ndim == 3 ? want.d[0] : 1, r.sh = want.ndim == 3 ? want.d[1] : 1, r.sw = want.d[want.ndim - 1];
    size_t per = ds_shape_numel(want);
    r.zfix = malloc((size_t)gc->grid * gc->latent * sizeof *r.zfix);
    r.cfix = malloc((size_t)gc->grid * sizeof *r.cfix);
    r.grid = malloc((size_t)gc->grid * per * sizeof *r.grid);
    r.hist = calloc((size_t)6 * r.epochs, sizeof *r.hist);
    r.strip = calloc((size_t)r.epochs * MAX_EPOCH_ROWS * r.sh * r.sw, sizeof *r.strip);
    if (!r.zfix || !r.cfix || !r.grid || !r.hist || !r.strip) {
        rc = cli_error("out of memory");
        goto done;
    }
    ds_rng fixed; /* the grid's noise: the seed's, the same every epoch and after a resume */
    ds_rng_seed(&fixed, seed ^ 0xf1dedULL);
    for (size_t i = 0; i < (size_t)gc->grid * gc->latent; i++) r.zfix[i] = ds_rng_normal(&fixed);
    /* a conditional grid: a column per class (two or three classes: alternating columns of 8) */
    r.cols = !gc->conditional ? 0 : gc->classes >= 4 && gc->classes <= 16 ? gc->classes : gc->grid >= 64 ? 8 : 0;
    for (int i = 0; i < gc->grid; i++) {
        int col = r.cols ? i % r.cols : i;
        r.cfix[i] = gc->conditional ? (float)(col % gc->classes) : 0;
    }
    if (cli_mkdirs(r.out)) {
        rc = cli_error("%s: cannot create the folder", r.out);
        goto done;
    }
    /* metrics.csv: a resumed run's rows come back from the file it wrote */
    char path[PATH_MAX];
    if (cli_path(path, sizeof path, "%s/metrics.csv", r.out)) goto done;
    append(&r, "epoch,loss_d,loss_g,d_real,d_fake,d_fake_after,seconds,images_per_s\n");
    if (ck) {
        FILE *f = fopen(path, "r");
        char line[1024];
        int row = 0;
        while (f && fgets(line, sizeof line, f) && row <= r.first) {
            if (line[0] < '0' || line[0] > '9') continue;
            int e;
            float v[7];
            if (sscanf(line, "%d,%f,%f,%f,%f,%f,%f,%f", &e, v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6) == 8 && e >= 1 &&
                e <= r.first && e <= r.epochs) {
                for (int k = 0; k < 5; k++) r.hist[k * r.epochs + e - 1] = v[k];
                r.hist[5 * r.epochs + e - 1] = v[6];
                append(&r, "%s", line);
                row++;
            }
        }
        if (f) fclose(f);
    }
    if (!o.quiet)
        printf("gan: %s, %d samples of %s, batch %d, %d epochs (from %d), seed %llu; scale %s%s\n",
               o.model ? o.model : o.resume, d.n, o.spec, batch, r.epochs, r.first, (unsigned long long)seed,
               sc.transform == DS_GAN_ASINH ? "asinh" : "linear", gc->conditional ? "; conditional" : "");
    if (r.first >= r.epochs) {
        printf("%s already has %d of %d epochs; nothing to do\n", o.resume, r.first, r.epochs);
        rc = 0;
        goto done;
    }
    cli_graceful_interrupts(true);
    ds_gan_set_batch_hook(gan, on_batch, &r);
    if (!o.quiet) cli_progress_start(&r.bar, "gan", (long)r.epochs * r.bpe, (long)r.first * r.bpe);
    int stopped = 0;
    for (int e = r.first + 1; e <= r.epochs; e++) {
        ds_gan_stats s;
        ds_gan_set_progress(gan, (double)(e - 1) / r.epochs);
        int erc = ds_gan_epoch(gan, l, e, &s);
        if (erc == DS_TRAIN_STOP) {
            stopped = 1;
            break;
        }
        if (erc) {
            cli_progress_clear(&r.bar);
            rc = cli_lib_error(NULL);
            goto done;
        }
        r.first = e;
        float v[6] = {(float)s.loss_d, (float)s.loss_g, (float)s.d_real, (float)s.d_fake, (float)s.d_fake_after,
                      (float)(s.samples / s.seconds)};
        for (int k = 0; k < 6; k++) r.hist[k * r.epochs + e - 1] = v[k];
        if (append(&r, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", e, s.loss_d, s.loss_g, s.d_real, s.d_fake,
                   s.d_fake_after, s.seconds, v[5]))
            goto done;
        /* every output of the epoch before the checkpoint, so a kill resumes and rewrites them */
        if (grid_png(&r, e) || write_file(path, r.csv) || plots_and_report(&r, e)) goto done;
        ds_train_state ns = {.epoch = e, .step = ds_optim_steps(ds_gan_optim(gan, 1)), .loader_rng = *ds_loader_rng(l),
                             .graph_rng = *ds_graph_rng(ds_gan_program(gan, 0)->g), .best_metric = NAN,
                             .batch = batch, .epochs = r.epochs, .seed = seed, .lr = tc->optim.lr};
        char ckp[PATH_MAX];
        if (cli_path(ckp, sizeof ckp, "%s/last.safetensors", r.out)) goto done;
        ds_meta_kv data_kv[2] = {{"data_spec", o.spec}, {"data_samples", n_text}};
        if (ds_gan_save(gan, ckp, &ns, data_kv, 2)) goto lib_fail;
        if (!o.quiet) {
            cli_progress_clear(&r.bar);
            printf("epoch %d/%d  loss D %.4f G %.4f  D(x) %.3f  D(G(z)) %.3f / %.3f  %.0f img/s\n", e, r.epochs,
                   s.loss_d, s.loss_g, s.d_real, s.d_fake, s.d_fake_after, v[5]);
        }
    }
    if (!o.quiet) cli_progress_end(&r.bar);
    cli_graceful_interrupts(false);
    if (stopped) {
        fprintf(stderr, "deepsky: interrupted after epoch %d of %d; resume with:\n  deepsky gan --resume %s/last.safetensors --data %s\n",
                r.first, r.epochs, r.out, o.spec);
        rc = 130;
        goto done;
    }
    if (interpolation_png(&r)) goto done;
    if (!o.quiet) printf("wrote %s/last.safetensors, samples.png, progress.png, interpolation.png, metrics.csv, report.html\n", r.out);
    rc = 0;
    goto done;
lib_fail:
    rc = cli_lib_error(NULL);
done:
    cli_graceful_interrupts(false);
    free(r.zfix), free(r.cfix), free(r.grid), free(r.hist), free(r.strip), free(r.csv);
    ds_loader_free(l);
    ds_gan_free(gan);
    ds_gan_model_free(m);
    ds_dataset_free(&d);
    ds_checkpoint_close(ck);
    return rc;
}

const cli_command cli_cmd_gan = {
    "gan", run_gan, "train a GAN (DCGAN, conditional GAN) from a GAN model file",
    "usage: deepsky gan MODEL.cfg --data SPEC [options]\n"
    "       deepsky gan --resume DIR/last.safetensors --data SPEC [options]\n"
    "  --data SPEC     the real samples (fashion-mnist, npy:X.npy,Y.npy, fits:..., as for train);\n"
    "                  a conditional GAN takes their labels as the classes\n"
    "  --out DIR       where everything goes (default runs/gan; with --resume the checkpoint's folder)\n"
    "  --epochs N      the run's epochs (default [train] epochs)\n"
    "  --batch N       default [train] batch\n"
    "  --seed S        default [train] seed: both networks' init, z, data order\n"
    "  --limit N       the first N samples only\n"
    "  --resume CKPT   continue a run from its last finished epoch, bit for bit\n"
    "  --quiet         no progress line, no per-epoch lines\n"
    "Writes DIR/last.safetensors (both networks, both optimizers), metrics.csv (per epoch: loss_d,\n"
    "loss_g, d_real = D(x), d_fake = D(G(z)) at D's step, d_fake_after = at G's step, seconds,\n"
    "images_per_s), samples_epochE.png and samples.png (a fixed-noise grid), progress.png (the same\n"
    "samples epoch by epoch), interpolation.png, loss.png, d_output.png, report.html.\n"
    "See docs/gan.md.\n",
    NULL};
