/* survey.c — the survey's breakdown of a real/bogus classifier, shared by
 * `deepsky demo` and `deepsky eval --meta`: at the threshold that lets 1 %
 * of the bogus through, the share of each bogus kind rejected and of real
 * sources found per S/N bin; and the per-stamp CSV (simulate's labels.csv)
 * that says each stamp's kind and S/N. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double cli_snr_edges[CLI_SNR_BINS + 1] = {5, 7, 10, 20, 50, 100.001};

static int by_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int cli_breakdown_compute(const float *probs, const float *y, int n, const int *kind, int n_kinds,
                          const float *snr, cli_breakdown *b)
{
    memset(b, 0, sizeof *b);
    if (n_kinds > CLI_MAX_KINDS) return cli_error("more than %d kinds of stamps", CLI_MAX_KINDS);
    b->n_kinds = kind ? n_kinds : 0;
    float *neg = malloc(sizeof *neg * (size_t)(n ? n : 1));
    if (!neg) return cli_error("out of memory");
    int nb = 0;
    for (int i = 0; i < n; i++)
        if (y[i] == 0) neg[nb++] = probs[2 * i + 1];
    qsort(neg, (size_t)nb, sizeof *neg, by_desc);
    /* the 1 %-th highest bogus score: above it, at most 1 % of the bogus */
    b->threshold = nb ? neg[nb / 100] : 1.0f;
    free(neg);
    for (int i = 0; i < n; i++) {
        int pos = probs[2 * i + 1] > b->threshold;
        if (kind && kind[i] >= 0 && kind[i] < n_kinds) {
            int t = kind[i];
            b->total[t]++, b->positives[t] += y[i] == 1, b->hit[t] += y[i] == 0 ? !pos : pos;
        }
        if (snr && y[i] == 1)
            for (int k = 0; k < CLI_SNR_BINS; k++)
                if (snr[i] >= cli_snr_edges[k] && snr[i] < cli_snr_edges[k + 1]) b->snr_total[k]++, b->snr_hit[k] += pos;
    }
    for (int k = 0; k < CLI_SNR_BINS; k++)
        b->recall[k] = b->snr_total[k] ? (float)b->snr_hit[k] / b->snr_total[k] : NAN;
    return 0;
}

int cli_breakdown_text(const cli_breakdown *b, const char *const *names, char *buf, size_t size)
{
    size_t k = 0;
#define PUT(...) (k += (size_t)snprintf(buf + k, k < size ? size - k : 0, __VA_ARGS__))
    PUT("at the 1%%-FPR threshold (score %.3f):\n", b->threshold);
    for (int pass = 0; pass < 2 && b->n_kinds; pass++) {
        int any = 0;
        for (int t = 0; t < b->n_kinds; t++) {
            if (!b->total[t] || cli_breakdown_real(b, t) != pass) continue;
            if (!any++) PUT(pass ? "  real found, per kind:\n" : "  bogus rejected, per kind:\n");
            PUT("    %-20s %5d of %5d  %.4f\n", names[t], b->hit[t], b->total[t], (double)b->hit[t] / b->total[t]);
        }
    }
    int any = 0;
    for (int t = 0; t < CLI_SNR_BINS; t++) any += b->snr_total[t];
    if (any) {
        PUT("  real asteroids found, per S/N:\n");
        for (int t = 0; t < CLI_SNR_BINS; t++)
            PUT("    S/N %5.0f-%-5.0f %5d of %5d  %.4f\n", cli_snr_edges[t], floor(cli_snr_edges[t + 1]), b->snr_hit[t],
                b->snr_total[t], b->recall[t]);
    }
#undef PUT
    return k < size ? 0 : cli_error("breakdown: text too long");
}

void cli_meta_free(cli_meta *m)
{
    for (int i = 0; i < m->n_kinds; i++) free(m->names[i]);
    free(m->kind);
    free(m->snr);
    memset(m, 0, sizeof *m);
}

/* Splits a CSV line in place at ',' (no quoting), the line end dropped;
 * returns the number of fields, at most max. */
static int split_fields(char *line, char **field, int max)
{
    line[strcspn(line, "\r\n")] = 0;
    int n = 0;
    for (char *s = line; n < max; s++) {
        field[n++] = s;
        if (!(s = strchr(s, ','))) break;
        *s = 0;
    }
    return n;
}

static int by_index_then_row(const void *a, const void *b)
{
    const long *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* A whole field as a number: no trailing characters but spaces ("2s.07" is not 2). */
static int full_number(const char *s, double *v)
{
    char *end = NULL;
    *v = strtod(s, &end);
    if (end == s) return -1;
    end += strspn(end, " \t");
    return *end || !isfinite(*v) ? -1 : 0;
}

int cli_meta_read(const char *path, int n, const long *index, const float *y, cli_meta *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("%s: cannot open", path);
    char line[4096], *fld[256];
    int rc = 1, rows = 0, cap = 0, ck = -1, cs = -1, ci = -1, cl = -1, *rkind = NULL, *rline = NULL, *rlabel = NULL,
        *row_of = NULL;
    float *rsnr = NULL;
    long *rindex = NULL, *pos = NULL;
    if (!fgets(line, sizeof line, f)) {
        cli_error("%s: empty; expected a header row with 'kind' and/or 'snr' (as simulate's labels.csv)", path);
        goto done;
    }
    for (int c = 0, nf = split_fields(line, fld, 256); c < nf; c++) {
        if (!strcmp(fld[c], "kind")) ck = c;
        if (!strcmp(fld[c], "snr")) cs = c;
        if (!strcmp(fld[c], "index")) ci = c;
        if (!strcmp(fld[c], "label")) cl = c;
    }
    if (ck < 0 && cs < 0) {
        cli_error("%s: no 'kind' or 'snr' column in the header", path);
        goto done;
    }
    for (int ln = 2; fgets(line, sizeof line, f); ln++) {
        if (!strchr(line, '\n') && !feof(f)) {
            cli_error("%s:%d: line longer than %zu characters", path, ln, sizeof line - 2);
            goto done;
        }
        if (line[strspn(line, " \r\n")] == 0) continue;
        if (rows == cap) {
            cap = cap ? 2 * cap : 1024;
            int *a = realloc(rkind, sizeof *a * (size_t)cap), *b = a ? realloc(rline, sizeof *b * (size_t)cap) : NULL;
            if (a) rkind = a;
            if (b) rline = b;
            int *c = b ? realloc(rlabel, sizeof *c * (size_t)cap) : NULL;
            if (c) rlabel = c;
            float *d = c ? realloc(rsnr, sizeof *d * (size_t)cap) : NULL;
            if (d) rsnr = d;
            long *e = d ? realloc(rindex, sizeof *e * (size_t)cap) : NULL;
            if (!e) {
                cli_error("out of memory");
                goto done;
            }
            rindex = e;
        }
        int nf = split_fields(line, fld, 256);
        rline[rows] = ln, rkind[rows] = -1, rsnr[rows] = NAN, rindex[rows] = -1, rlabel[rows] = -1;
        if (ck >= 0) {
            const char *k = ck < nf ? fld[ck] : "";
            if (!*k) {
                cli_error("%s:%d: no 'kind' value", path, ln);
                goto done;
            }
            int t = 0;
            while (t < m->n_kinds && strcmp(m->names[t], k)) t++;
            if (t == m->n_kinds) {
                if (t == CLI_MAX_KINDS) {
                    cli_error("%s:%d: more than %d kinds", path, ln, CLI_MAX_KINDS);
                    goto done;
                }
                if (!(m->names[t] = strdup(k))) {
                    cli_error("out of memory");
                    goto done;
                }
                m->n_kinds++;
            }
            rkind[rows] = t;
        }
        double v;
        if (cs >= 0) {
            if (cs >= nf || full_number(fld[cs], &v)) {
                cli_error("%s:%d: 'snr' is not a number: '%s'", path, ln, cs < nf ? fld[cs] : "");
                goto done;
            }
            rsnr[rows] = (float)v;
        }
        if (ci >= 0) {
            if (ci >= nf || full_number(fld[ci], &v) || v < 0 || v > 1e9 || v != floor(v)) {
                cli_error("%s:%d: 'index' is not a stamp index (0, 1, ...): '%s'", path, ln, ci < nf ? fld[ci] : "");
                goto done;
            }
            rindex[rows] = (long)v;
        }
        if (cl >= 0) {
            if (cl >= nf || full_number(fld[cl], &v) || v < 0 || v > 1 << 24 || v != floor(v)) {
                cli_error("%s:%d: 'label' is not a class index: '%s'", path, ln, cl < nf ? fld[cl] : "");
                goto done;
            }
            rlabel[rows] = (int)v;
        }
        rows++;
    }
    /* which row describes sample i: by simulator index where both sides know it, else in order */
    int by_index = ci >= 0 && index && n > 0;
    for (int i = 0; by_index && i < n; i++) by_index = index[i] >= 0;
    if (!(row_of = malloc(sizeof *row_of * (size_t)(n ? n : 1)))) {
        cli_error("out of memory");
        goto done;
    }
    if (by_index) { /* (index, row) pairs sorted by index, looked up by bisection */
        if (!(pos = malloc(sizeof *pos * 2 * (size_t)(rows ? rows : 1)))) {
            cli_error("out of memory");
            goto done;
        }
        for (int r = 0; r < rows; r++) pos[2 * r] = rindex[r], pos[2 * r + 1] = r;
        qsort(pos, (size_t)rows, 2 * sizeof *pos, by_index_then_row);
        for (int r = 1; r < rows; r++)
            if (pos[2 * r] == pos[2 * r - 2]) {
                cli_error("%s:%d: index %ld again (first on line %d)", path, rline[pos[2 * r + 1]], pos[2 * r],
                          rline[pos[2 * r - 1]]);
                goto done;
            }
        for (int i = 0; i < n; i++) {
            int lo = 0, hi = rows; /* first pair with index >= index[i] */
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (pos[2 * mid] < index[i]) lo = mid + 1;
                else hi = mid;
            }
            if (lo == rows || pos[2 * lo] != index[i]) {
                cli_error("%s: no row with index %ld, the simulator index of sample %d of the data", path, index[i], i);
                goto done;
            }
            row_of[i] = (int)pos[2 * lo + 1];
        }
    } else {
        if (rows != n) {
            cli_error("%s: %d rows, but the data has %d samples", path, rows, n);
            goto done;
        }
        for (int i = 0; i < n; i++) row_of[i] = i;
    }
    for (int i = 0; cl >= 0 && y && i < n; i++)
        if (rlabel[row_of[i]] != (int)y[i]) {
            cli_error("%s:%d: label %d, but the sample it is matched to (sample %d of the data%s) is labelled %d: "
                      "the rows do not describe these samples%s",
                      path, rline[row_of[i]], rlabel[row_of[i]], i, by_index ? ", by its simulator index" : ", in order",
                      (int)y[i],
                      by_index ? "" : " (rows are matched in order unless the CSV has an 'index' column and the data "
                                      "says each sample's simulator index: FITS SIMINDEX, or simulate's provenance.json)");
            goto done;
        }
    m->kind = ck >= 0 ? malloc(sizeof *m->kind * (size_t)(n ? n : 1)) : NULL;
    m->snr = cs >= 0 ? malloc(sizeof *m->snr * (size_t)(n ? n : 1)) : NULL;
    if ((ck >= 0 && !m->kind) || (cs >= 0 && !m->snr)) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (m->kind) m->kind[i] = rkind[row_of[i]];
        if (m->snr) m->snr[i] = rsnr[row_of[i]];
    }
    rc = 0;
done:
    fclose(f);
    free(rkind), free(rline), free(rlabel), free(rsnr), free(rindex), free(pos), free(row_of);
    if (rc) cli_meta_free(m);
    return rc;
}
