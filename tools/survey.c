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

int cli_meta_read(const char *path, int n, cli_meta *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("%s: cannot open", path);
    char line[4096], *fld[256];
    int rc = 1, row = 0, ck = -1, cs = -1;
    if (!fgets(line, sizeof line, f)) {
        cli_error("%s: empty; expected a header row with 'kind' and/or 'snr' (as simulate's labels.csv)", path);
        goto done;
    }
    for (int c = 0, nf = split_fields(line, fld, 256); c < nf; c++) {
        if (!strcmp(fld[c], "kind")) ck = c;
        if (!strcmp(fld[c], "snr")) cs = c;
    }
    if (ck < 0 && cs < 0) {
        cli_error("%s: no 'kind' or 'snr' column in the header", path);
        goto done;
    }
    m->kind = ck >= 0 ? malloc(sizeof *m->kind * (size_t)n) : NULL;
    m->snr = cs >= 0 ? malloc(sizeof *m->snr * (size_t)n) : NULL;
    if ((ck >= 0 && !m->kind) || (cs >= 0 && !m->snr)) {
        cli_error("out of memory");
        goto done;
    }
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            cli_error("%s:%d: line longer than %zu characters", path, row + 2, sizeof line - 2);
            goto done;
        }
        if (line[strspn(line, " \r\n")] == 0) continue;
        if (row == n) {
            cli_error("%s: more rows than the %d samples", path, n);
            goto done;
        }
        int nf = split_fields(line, fld, 256);
        if (ck >= 0) {
            const char *k = ck < nf ? fld[ck] : "";
            if (!*k) {
                cli_error("%s:%d: no 'kind' value", path, row + 2);
                goto done;
            }
            int t = 0;
            while (t < m->n_kinds && strcmp(m->names[t], k)) t++;
            if (t == m->n_kinds) {
                if (t == CLI_MAX_KINDS) {
                    cli_error("%s:%d: more than %d kinds", path, row + 2, CLI_MAX_KINDS);
                    goto done;
                }
                if (!(m->names[t] = strdup(k))) {
                    cli_error("out of memory");
                    goto done;
                }
                m->n_kinds++;
            }
            m->kind[row] = t;
        }
        if (cs >= 0) {
            char *end = NULL;
            double v = cs < nf ? strtod(fld[cs], &end) : NAN;
            if (cs >= nf || end == fld[cs] || !isfinite(v)) {
                cli_error("%s:%d: 'snr' is not a number", path, row + 2);
                goto done;
            }
            m->snr[row] = (float)v;
        }
        row++;
    }
    if (row != n) {
        cli_error("%s: %d rows, but the data has %d samples", path, row, n);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc) cli_meta_free(m);
    return rc;
}
