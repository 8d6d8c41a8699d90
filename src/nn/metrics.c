/* metrics.c — accuracy, per-class precision/recall/F1, confusion matrix,
 * log-loss, calibration (reliability bins, ECE) and, for two classes, ROC
 * AUC and the survey figures of merit. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ds_metrics_free(ds_metrics *m)
{
    if (!m) return;
    free(m->precision);
    free(m->support);
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

typedef struct {
    float score;
    int pos;
} scored;

static int by_score(const void *a, const void *b)
{
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

/* AUC = P(score of a positive > score of a negative), ties counting ½:
 * the Mann–Whitney U statistic over ranks with averaged ties. */
static double roc_auc(const float *probs, const float *labels, int n)
{
    scored *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    long npos = 0;
    for (int i = 0; i < n; i++) {
        s[i] = (scored){probs[2 * (size_t)i + 1], labels[i] == 1};
        npos += s[i].pos;
    }
    qsort(s, (size_t)n, sizeof *s, by_score);
    double rank_sum = 0;
    for (int i = 0; i < n;) {
        int j = i + 1; /* a group holds s[i] even when its score equals nothing (NaN) */
        while (j < n && s[j].score == s[i].score) j++;
        double avg = (i + 1 + j) / 2.0; /* ranks i+1..j */
        for (int k = i; k < j; k++)
            if (s[k].pos) rank_sum += avg;
        i = j;
    }
    free(s);
    long nneg = n - npos;
    if (!npos || !nneg) return NAN;
    return (rank_sum - npos * (npos + 1) / 2.0) / ((double)npos * nneg);
}

/* Walk the ROC curve from the highest score down, a group of tied scores
 * at a time: the FPR where TPR first reaches 95 % and 99 %, and 1 − TPR at
 * the last point with FPR ≤ 1 %. */
static void roc_points(const float *probs, const float *labels, int n, ds_metrics *m)
{
    m->fpr_at_tpr95 = m->fpr_at_tpr99 = m->mdr_at_fpr1 = NAN;
    scored *s = malloc((size_t)n * sizeof *s);
    if (!s) return;
    long npos = 0;
    for (int i = 0; i < n; i++) {
        s[i] = (scored){probs[2 * (size_t)i + 1], labels[i] == 1};
        npos += s[i].pos;
    }
    long nneg = n - npos;
    if (!npos || !nneg) {
        free(s);
        return;
    }
    qsort(s, (size_t)n, sizeof *s, by_score);
    long tp = 0, fp = 0;
    double best_tpr = 0; /* at FPR ≤ 1 % (the empty selection: TPR 0) */
    for (int i = n - 1; i >= 0;) {
        int j = i - 1;
        tp += s[i].pos, fp += !s[i].pos;
        while (j >= 0 && s[j].score == s[i].score) tp += s[j].pos, fp += !s[j].pos, j--;
        double tpr = (double)tp / npos, fpr = (double)fp / nneg;
        if (isnan(m->fpr_at_tpr95) && tpr >= 0.95) m->fpr_at_tpr95 = fpr;
        if (isnan(m->fpr_at_tpr99) && tpr >= 0.99) m->fpr_at_tpr99 = fpr;
        if (fpr <= 0.01 && tpr > best_tpr) best_tpr = tpr;
        i = j;
    }
    m->mdr_at_fpr1 = 1 - best_tpr;
    free(s);
}

/* Reliability bins: score p(class 1) against the share of class 1 (two
 * classes) or the top-1 probability against accuracy (more). */
static void calibration(const float *probs, const float *labels, int n, int classes, ds_metrics *m)
{
    double sum[DS_CALIB_BINS] = {0}, hit[DS_CALIB_BINS] = {0};
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        int best = ds_argmax(p, classes);
        double score = classes == 2 ? p[1] : p[best];
        int ok = classes == 2 ? labels[i] == 1 : labels[i] == best;
        int b = (int)(score * DS_CALIB_BINS);
        b = b < 0 ? 0 : b >= DS_CALIB_BINS ? DS_CALIB_BINS - 1 : b; /* score 1 goes in the last bin */
        m->calib_count[b]++, sum[b] += score, hit[b] += ok;
    }
    m->ece = 0;
    for (int b = 0; b < DS_CALIB_BINS; b++) {
        int c = m->calib_count[b];
        m->calib_score[b] = c ? sum[b] / c : NAN;
        m->calib_observed[b] = c ? hit[b] / c : NAN;
        if (c) m->ece += (double)c / n * fabs(m->calib_observed[b] - m->calib_score[b]);
    }
}

int ds_metrics_compute(const float *probs, const float *labels, int n, int classes, ds_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (n < 1 || classes < 1) return ds_fail("metrics: no samples");
    /* A NaN or ±Inf probability has no rank (NaN compares false with all)
     * and no bin: refused, so every metric below is a number. */
    for (size_t i = 0; i < (size_t)n * classes; i++)
        if (!isfinite(probs[i]))
            return ds_fail("metrics: sample %zu: the probability of class %zu is %s (the model's output is "
                           "not finite)",
                           i / (size_t)classes, i % (size_t)classes,
                           isnan(probs[i]) ? "NaN" : probs[i] > 0 ? "+Inf" : "-Inf");
    m->n = n;
    m->classes = classes;
    m->precision = calloc((size_t)3 * classes, sizeof(double));
    m->support = calloc((size_t)classes, sizeof(int));
    m->confusion = calloc((size_t)classes * classes, sizeof(int));
    if (!m->precision || !m->support || !m->confusion) {
        ds_metrics_free(m);
        return ds_fail("metrics: out of memory");
    }
    m->recall = m->precision + classes;
    m->f1 = m->recall + classes;
    double ll = 0;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        int y = (int)labels[i];
        if (y < 0 || y >= classes || labels[i] != (float)y) {
            ds_metrics_free(m);
            return ds_fail("metrics: label %g of sample %d is not a class in 0..%d", labels[i], i,
                           classes - 1);
        }
        int best = ds_argmax(p, classes);
        hits += best == y;
        m->confusion[y * classes + best]++;
        m->support[y]++;
        ll -= log(fmax(p[y], 1e-15));
    }
    m->accuracy = (double)hits / n;
    m->log_loss = ll / n;
    for (int k = 0; k < classes; k++) {
        int tp = m->confusion[k * classes + k], pred = 0;
        for (int t = 0; t < classes; t++) pred += m->confusion[t * classes + k];
        m->precision[k] = pred ? (double)tp / pred : 0;
        m->recall[k] = m->support[k] ? (double)tp / m->support[k] : 0;
        double s = m->precision[k] + m->recall[k];
        m->f1[k] = s > 0 ? 2 * m->precision[k] * m->recall[k] / s : 0;
        m->macro_f1 += m->f1[k] / classes;
    }
    m->auc = classes == 2 ? roc_auc(probs, labels, n) : NAN;
    m->fpr_at_tpr95 = m->fpr_at_tpr99 = m->mdr_at_fpr1 = NAN;
    if (classes == 2) roc_points(probs, labels, n, m);
    calibration(probs, labels, n, classes, m);
    return 0;
}

int ds_softmax_rows(const float *logits, int rows, int classes, int first, float *probs)
{
    for (int i = 0; i < rows; i++) {
        const float *z = logits + (size_t)i * classes;
        float *p = probs + (size_t)i * classes, mx = z[0];
        for (int k = 0; k < classes; k++) {
            if (!isfinite(z[k]))
                return ds_fail("sample %d: the model's output for class %d is %s (non-finite weights, or an "
                               "input far outside the training data's range)",
                               first + i, k, isnan(z[k]) ? "NaN" : z[k] > 0 ? "+Inf" : "-Inf");
            mx = fmaxf(mx, z[k]);
        }
        double s = 0;
        for (int k = 0; k < classes; k++) s += exp((double)(z[k] - mx));
        for (int k = 0; k < classes; k++) p[k] = (float)(exp((double)(z[k] - mx)) / s);
    }
    return 0;
}
