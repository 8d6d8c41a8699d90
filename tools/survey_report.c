/* survey_report.c — the survey's pictures, shared by `deepsky eval
 * --report` and the demo: the ROC curve and the missed-detection rate
 * against the false-positive rate on a log scale (a survey works at 0.1-1 %
 * FPR, invisible on a linear axis), recall against S/N with binomial error
 * bars and the counts, and the worst mistakes as a labelled grid that
 * matches the printed list line for line. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_wilson(int k, int n, double z, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = *hi = NAN;
        return;
    }
    /* (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n) */
    double p = (double)k / n, z2 = z * z, d = 1 + z2 / n, c = p + z2 / (2.0 * n);
    double h = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
    *lo = fmax(0, (c - h) / d);
    *hi = fmin(1, (c + h) / d);
}

typedef struct {
    float score;
    int i;
} ranked;

static int by_score_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->score != y->score ? (x->score < y->score) - (x->score > y->score) : (x->i > y->i) - (x->i < y->i);
}

int cli_plot_roc(const char *dir, const float *probs, const float *y, int n)
{
    char path[PATH_MAX];
    if (cli_path(path, sizeof path, "%s/roc.png", dir)) return 1;
    int npos = 0, nneg = 0;
    for (int i = 0; i < n; i++) npos += y[i] == 1, nneg += y[i] == 0;
    if (!npos || !nneg) return cli_error("%s: the ROC curve needs samples of both classes (%d real, %d bogus)", path, npos, nneg);
    ranked *r = malloc(sizeof *r * (size_t)n);
    float *fpr = malloc(sizeof(float) * ((size_t)n + 1)), *tpr = malloc(sizeof(float) * ((size_t)n + 1)),
          *mdr = malloc(sizeof(float) * ((size_t)n + 1));
    if (!r || !fpr || !tpr || !mdr) {
        free(r), free(fpr), free(tpr), free(mdr);
        return cli_error("out of memory");
    }
    for (int i = 0; i < n; i++) r[i] = (ranked){probs[2 * i + 1], i};
    qsort(r, (size_t)n, sizeof *r, by_score_desc);
    /* one point per distinct score: everything at or above it called real */
    int m = 0, tp = 0, fp = 0;
    for (int i = 0; i < n; i++) {
        tp += y[r[i].i] == 1, fp += y[r[i].i] == 0;
        if (i + 1 < n && r[i + 1].score == r[i].score) continue;
        if (fp == 0) continue; /* FPR 0 is off a log axis */
        fpr[m] = (float)fp / nneg, tpr[m] = (float)tp / npos, mdr[m] = 1 - tpr[m];
        m++;
    }
    free(r);
    float gx[2] = {0.01f, 0.01f}, gy[2] = {0, 1};
    ds_plot_series s[3] = {
        {.name = "recall (true-positive rate)", .x = fpr, .y = tpr, .n = m, .style = m > 1 ? DS_PLOT_LINE : DS_PLOT_POINTS},
        {.name = "missed-detection rate", .x = fpr, .y = mdr, .n = m, .style = m > 1 ? DS_PLOT_LINE : DS_PLOT_POINTS},
        {.name = "1 % false-positive rate", .x = gx, .y = gy, .n = 2, .style = DS_PLOT_DASHED}};
    /* from the smallest rate the bogus count can show (one bogus) to 1 */
    double xmin = pow(10, floor(log10(1.0 / nneg) + 1e-9));
    char title[128];
    snprintf(title, sizeof title, "ROC: %d real, %d bogus", npos, nneg);
    ds_plot_opts o = {.title = title, .xlabel = "false-positive rate (log scale)", .ylabel = "rate", .log_x = 1,
                      .x_fixed = 1, .xmin = xmin, .xmax = 1, .y_fixed = 1, .ymin = 0, .ymax = 1.02};
    int rc = m ? ds_plot_xy(path, &o, s, 3) : 0;
    free(fpr), free(tpr), free(mdr);
    return rc ? cli_lib_error(NULL) : 0;
}

int cli_plot_recall_snr(const char *dir, const cli_breakdown *b)
{
    char path[PATH_MAX], lab[CLI_SNR_BINS][32];
    if (cli_path(path, sizeof path, "%s/recall_snr.png", dir)) return 1;
    float x[CLI_SNR_BINS], r[CLI_SNR_BINS], lo[CLI_SNR_BINS], hi[CLI_SNR_BINS];
    const char *labels[CLI_SNR_BINS];
    int any = 0;
    for (int k = 0; k < CLI_SNR_BINS; k++) {
        double e1 = floor(cli_snr_edges[k + 1]), l, h;
        x[k] = (float)sqrt(cli_snr_edges[k] * e1); /* the bin's middle on the log axis */
        cli_wilson(b->snr_hit[k], b->snr_total[k], 1.96, &l, &h);
        r[k] = b->recall[k], lo[k] = (float)l, hi[k] = (float)h;
        snprintf(lab[k], sizeof lab[k], "%d/%d", b->snr_hit[k], b->snr_total[k]);
        labels[k] = b->snr_total[k] ? lab[k] : NULL;
        any += b->snr_total[k];
    }
    if (!any) return 0;
    char title[160];
    snprintf(title, sizeof title, "Recall against S/N at the 1 %% FPR threshold (score %.3f)", b->threshold);
    ds_plot_series s = {.name = "recall, 95 % Wilson interval; found/real per bin", .x = x, .y = r, .lo = lo,
                        .hi = hi, .labels = labels, .n = CLI_SNR_BINS, .style = DS_PLOT_LINE_POINTS};
    ds_plot_opts o = {.title = title, .xlabel = "S/N (log scale; bins 5-7, 7-10, 10-20, 20-50, 50-100)",
                      .ylabel = "recall", .log_x = 1, .x_fixed = 1, .xmin = cli_snr_edges[0],
                      .xmax = floor(cli_snr_edges[CLI_SNR_BINS]), .y_fixed = 1, .ymin = 0, .ymax = 1.08};
    return ds_plot_xy(path, &o, &s, 1) != 0 ? cli_lib_error(NULL) : 0;
}

static const char *cname(const ds_dataset *d, int k, char *buf, size_t size)
{
    if (d->class_names && k >= 0 && k < d->classes && d->class_names[k]) return d->class_names[k];
    snprintf(buf, size, "%d", k);
    return buf;
}

int cli_worst_mistakes(const char *dir, const ds_dataset *d, const float *probs, int classes, const cli_meta *meta,
                       int max, FILE *out)
{
    char path[PATH_MAX];
    if (cli_path(path, sizeof path, "%s/mistakes.png", dir)) return 1;
    if (d->sample.ndim != 3) return 0; /* not images: no grid */
    int C = d->sample.d[0], H = d->sample.d[1], W = d->sample.d[2];
    ranked *r = malloc(sizeof *r * (size_t)(d->n ? d->n : 1));
    if (!r) return cli_error("out of memory");
    int nm = 0;
    for (int i = 0; i < d->n; i++) {
        const float *p = probs + (size_t)i * classes;
        int t = (int)d->y[i], best = 0;
        for (int k = 1; k < classes; k++)
            if (p[k] > p[best]) best = k;
        if (best != t) r[nm++] = (ranked){1 - p[t], i}; /* how wrong: the probability not given to the truth */
    }
    qsort(r, (size_t)nm, sizeof *r, by_score_desc);
    if (nm > max) nm = max;
    float *pics = malloc(sizeof(float) * (size_t)(nm ? nm : 1) * H * W);
    char **labels = calloc((size_t)(nm ? nm : 1), sizeof *labels);
    int rc = 0;
    if (!pics || !labels) {
        free(r), free(pics), free(labels);
        return cli_error("out of memory");
    }
    if (out) {
        fprintf(out, "\nworst mistakes (%s, most confident first):\n%4s %7s  %-12s %-12s %-16s %s\n", path, "rank",
                "sample", "true", "predicted", "kind", classes == 2 ? "score" : "p(true)");
    }
    for (int k = 0; k < nm; k++) {
        int i = r[k].i, t = (int)d->y[i], best = 0;
        const float *p = probs + (size_t)i * classes;
        for (int c = 1; c < classes; c++)
            if (p[c] > p[best]) best = c;
        /* the last channel: the difference image of a science/reference/difference triplet */
        memcpy(pics + (size_t)k * H * W, d->x + ((size_t)i * C + C - 1) * H * W, sizeof(float) * H * W);
        char tb[32], pb[32];
        const char *kind = meta && meta->kind && meta->kind[i] >= 0 ? meta->names[meta->kind[i]] : "";
        float score = classes == 2 ? p[1] : p[t]; /* two classes: the survey's score; more: what orders the list */
        if (out)
            fprintf(out, "%4d %7d  %-12.12s %-12.12s %-16.16s %.4f\n", k + 1, i, cname(d, t, tb, sizeof tb),
                    cname(d, best, pb, sizeof pb), *kind ? kind : "-", score);
        if (asprintf(&labels[k], "%d: #%d\ntrue %s\n%s\n%s %.3f", k + 1, i, cname(d, t, tb, sizeof tb),
                     *kind ? kind : cname(d, best, pb, sizeof pb), classes == 2 ? "score" : "p(true)", score) < 0) {
            labels[k] = NULL;
            rc = cli_error("out of memory");
            break;
        }
        if (!*kind) { /* no kind: the third line says what it was taken for */
            char *l = NULL;
            if (asprintf(&l, "%d: #%d\ntrue %s\nas %s\n%s %.3f", k + 1, i, cname(d, t, tb, sizeof tb),
                         cname(d, best, pb, sizeof pb), classes == 2 ? "score" : "p(true)", score) >= 0)
                free(labels[k]), labels[k] = l;
        }
    }
    if (out && nm == 0) fprintf(out, "  none: every sample is classified right\n");
    if (!rc && nm && ds_png_grid_labeled(path, pics, nm, H, W, nm < 8 ? nm : 8, 1, (const char *const *)labels) != 0)
        rc = cli_lib_error(NULL);
    for (int k = 0; k < nm; k++) free(labels[k]);
    free(labels), free(pics), free(r);
    return rc;
}

int cli_eval_report(const char *dir, int argc, char **argv, const char *ckpt, const char *spec, const ds_dataset *d,
                    const float *probs, const ds_metrics *m, const cli_breakdown *bd, const cli_meta *meta,
                    const ds_provenance *prov, FILE *list)
{
    char path[PATH_MAX], summary[8192];
    cli_run_info ri;
    if (cli_mkdirs(dir) != 0 || cli_run_info_init(&ri, argc, argv) != 0) return 1;
    int rc = 1;
    char *pj = prov ? ds_provenance_json(prov) : NULL;
    ds_checkpoint *c = ds_checkpoint_open(ckpt);
    ds_train_state st;
    const char *trained_on = c ? ds_checkpoint_meta(c, "data") : NULL;
    if (cli_run_info_add_file(&ri, "checkpoint", ckpt) || cli_run_info_add(&ri, "data", "%s", spec) ||
        (pj && cli_run_info_add(&ri, "data_provenance", "%s", pj)) ||
        (c && ds_checkpoint_state(c, &st) == 0 && st.batch &&
         cli_run_info_add(&ri, "trained_seed", "%llu (%d epochs)", (unsigned long long)st.seed, st.epoch)) ||
        (trained_on && cli_run_info_add(&ri, "trained_on", "%s", trained_on)))
        goto done;
    if (cli_path(path, sizeof path, "%s/confusion.png", dir)) goto done;
    if (ds_plot_confusion(path, m->classes, m->confusion, (const char *const *)d->class_names) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    if (cli_plot_reliability(dir, m) != 0) goto done;
    if (m->classes == 2 && cli_plot_roc(dir, probs, d->y, d->n) != 0) goto done;
    if (bd && cli_plot_recall_snr(dir, bd) != 0) goto done;
    if (cli_worst_mistakes(dir, d, probs, m->classes, meta, 16, list) != 0) goto done;
    int k = snprintf(summary, sizeof summary,
                     "%d samples of %s\naccuracy  %.4f\nlog-loss  %.4f\nmacro F1  %.4f\n"
                     "expected calibration error  %.4f\n",
                     m->n, spec, m->accuracy, m->log_loss, m->macro_f1, m->ece);
    if (m->classes == 2)
        k += snprintf(summary + k, sizeof summary - (size_t)k,
                      "ROC AUC   %.4f\nFPR at 95%% TPR  %.4f\nFPR at 99%% TPR  %.4f\n"
                      "missed-detection rate at 1%% FPR  %.4f\n",
                      m->auc, m->fpr_at_tpr95, m->fpr_at_tpr99, m->mdr_at_fpr1);
    if (bd && k < (int)sizeof summary - 1) {
        summary[k++] = '\n';
        if (cli_breakdown_text(bd, (const char *const *)meta->names, summary + k, sizeof summary - (size_t)k) != 0)
            goto done;
    }
    char title[PATH_MAX + 32];
    snprintf(title, sizeof title, "deepsky eval: %s", ckpt);
    if (ds_report_html_ex(dir, title, summary, ri.kv, ri.n) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    if (list) fprintf(list, "report: %s/report.html\n", dir);
    rc = 0;
done:
    ds_checkpoint_close(c);
    free(pj);
    cli_run_info_free(&ri);
    return rc;
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
