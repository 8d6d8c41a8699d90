/* report.c — DIR/report.html: one self-contained page (inline CSS, no
 * scripts, nothing fetched from elsewhere) that shows a run's summary, the
 * plots found in DIR and its metrics.csv as a table. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char CSS[] =
    "body{margin:0;background:#f4f5f7;color:#222;"
    "font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\n"
    "main{max-width:1680px;margin:0 auto;padding:20px 32px 40px}\n"
    "h1{font-size:26px;margin:6px 0 2px}\n"
    "h2{font-size:18px;margin:26px 0 10px;padding-bottom:4px;border-bottom:1px solid #dcdfe4}\n"
    ".sub{color:#667;margin:0;font-size:13px}\n"
    "pre{background:#fff;border:1px solid #dcdfe4;border-radius:6px;padding:12px 16px;"
    "margin:0;overflow-x:auto;font:13px/1.45 ui-monospace,'DejaVu Sans Mono',Menlo,monospace}\n"
    ".figs{display:flex;flex-wrap:wrap;gap:16px}\n"
    "figure{margin:0;flex:0 1 auto;max-width:100%;box-sizing:border-box;background:#fff;"
    "border:1px solid #dcdfe4;border-radius:6px;padding:8px}\n"
    "figure img{display:block;max-width:100%;height:auto;margin:0 auto}\n"
    "figcaption{color:#556;font-size:13px;text-align:center;margin-top:6px}\n"
    ".tbl{overflow-x:auto}\n"
    "table{border-collapse:collapse;background:#fff;border:1px solid #dcdfe4;font-size:13px}\n"
    "th,td{padding:4px 12px;border-bottom:1px solid #eceef2;text-align:left;white-space:nowrap}\n"
    "th{background:#eaedf2}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "table.prov td{white-space:normal;word-break:break-all}\n"
    "tbody tr:nth-child(even){background:#f8f9fb}\n";

/* The plots a run leaves, in page order. */
static const struct {
    const char *file, *alt, *caption;
} FIGS[] = {
    {"loss.png", "Loss per epoch", "Loss per epoch"},
    {"accuracy.png", "Accuracy per epoch", "Accuracy per epoch"},
    {"confusion.png", "Confusion matrix",
     "Confusion matrix: rows are the true class, columns the prediction; colour is the share "
     "of the row"},
    {"reliability.png", "Reliability diagram",
     "Reliability: per bin of the score, the observed share (two classes: of class 1; more: accuracy) against "
     "the mean score; on the diagonal a score is a probability"},
    {"roc.png", "ROC curve", "Recall against the false-positive rate"},
    {"recall_snr.png", "Recall against S/N", "Recall of real sources per S/N bin"},
    {"stamps_real.png", "Real stamps", "Test stamps of the real class (difference images)"},
    {"stamps_bogus.png", "Bogus stamps", "Test stamps of each bogus kind (difference images)"},
    {"samples.png", "Samples", "The generator's samples from a fixed noise (the same z every epoch), as the networks see the data (in [-1, 1])"},
    {"progress.png", "Samples epoch by epoch", "The first fixed-noise samples after each epoch, one row per epoch"},
    {"interpolation.png", "Latent interpolation", "Each row: 10 steps along the straight line between two z (a conditional GAN: one class per row)"},
    {"d_output.png", "Discriminator output", "Mean D (the probability of real) on real samples and on the generator's, per epoch"},
    {"mistakes.png", "The worst mistakes", "The stamps the model was most confidently wrong about, most confident first; each labelled with its rank, "
     "sample index, true class, kind (when known) and score, as in the list the command printed"},
};

/* Write s with & < > " ' escaped. */
static void put_esc(FILE *f, const char *s)
{
    for (; *s; s++) switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

/* "DIR/name" in a malloc'd string. */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_file(const char *dir, const char *name)
{
    struct stat st;
    char *p = join(dir, name);
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* Whole file as a NUL-terminated string; NULL with errno set on failure. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += k;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int err = ferror(f) ? (errno ? errno : EIO) : buf ? 0 : ENOMEM;
    fclose(f);
    if (err) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* Split the CSV record at *p (RFC 4180 quoting) into at most max fields,
 * decoded in place; returns the field count and moves *p to the next record
 * (NULL after the last). */
static int csv_record(char **p, char **fields, int max)
{
    char *r = *p, *w = r;
    int n = 0;
    for (;;) {
        char *start = w;
        if (*r == '"')
            for (r++; *r;) {
                if (*r == '"' && r[1] != '"') {
                    r++;
                    break;
                }
                if (*r == '"') r++; /* "" is a literal quote */
                *w++ = *r++;
            }
        while (*r && *r != ',' && *r != '\n') {
            if (*r != '\r') *w++ = *r;
            r++;
        }
        char d = *r;
        *w++ = 0; /* w ≤ r, so this overwrites only consumed text */
        if (n < max) fields[n] = start;
        n++;
        if (d != ',') {
            *p = d ? r + 1 : NULL;
            return n;
        }
        r++;
    }
}

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == 0;
}

#define MAX_COLS 64

/* metrics.csv as a table: the first record is the header. */
static void put_table(FILE *f, char *csv)
{
    char *cells[MAX_COLS];
    int cols = 0;
    fputs("<div class=\"tbl\"><table>\n", f);
    for (char *p = csv; p && *p;) {
        if (*p == '\n' || *p == '\r') { /* blank line */
            p++;
            continue;
        }
        if (*p == '#') { /* a comment line: the provenance block (shown above the table) */
            p = strchr(p, '\n');
            continue;
        }
        int n = csv_record(&p, cells, MAX_COLS);
        if (n > MAX_COLS) n = MAX_COLS;
        if (!cols) {
            cols = n;
            fputs("<thead><tr>", f);
            for (int i = 0; i < n; i++) {
                fputs("<th>", f);
                put_esc(f, cells[i]);
                fputs("</th>", f);
            }
            fputs("</tr></thead>\n<tbody>\n", f);
            continue;
        }
        fputs("<tr>", f);
        for (int i = 0; i < (n > cols ? n : cols); i++) {
            const char *s = i < n ? cells[i] : "";
            fputs(is_number(s) ? "<td class=\"num\">" : "<td>", f);
            put_esc(f, s);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs(cols ? "</tbody></table></div>\n" : "</table></div>\n", f);
}

char *ds_provenance_comments(const ds_meta_kv *kv, int n)
{
    size_t cap = 64, len = 0;
    for (int i = 0; i < n; i++) cap += 8 + (kv[i].key ? strlen(kv[i].key) : 0) + 2 * (kv[i].value ? strlen(kv[i].value) : 0);
    char *b = malloc(cap);
    if (!b) {
        ds_fail("provenance: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!kv[i].key || !kv[i].value) continue;
        len += (size_t)snprintf(b + len, cap - len, "# %s: ", kv[i].key);
        for (const char *s = kv[i].value; *s; s++) /* one line each: a newline in a value is written \n */
            if (*s == '\n') b[len++] = '\\', b[len++] = 'n';
            else if (*s == '\r') b[len++] = '\\', b[len++] = 'r';
            else b[len++] = *s;
        b[len++] = '\n';
    }
    b[len] = 0;
    return b;
}

/* The provenance block: a definition list of key: value. */
static void put_prov_item(FILE *f, const char *key, size_t klen, const char *value, size_t vlen)
{
    fputs("<tr><th>", f);
    for (size_t i = 0; i < klen; i++) {
        char one[2] = {key[i], 0};
        put_esc(f, one);
    }
    fputs("</th><td><code>", f);
    for (size_t i = 0; i < vlen; i++) {
        char one[2] = {value[i], 0};
        put_esc(f, one);
    }
    fputs("</code></td></tr>\n", f);
}

/* From kv, or else from the "# key: value" lines at the top of metrics.csv. */
static void put_provenance(FILE *f, const ds_meta_kv *kv, int n, const char *csv)
{
    int any = 0;
    for (int i = 0; kv && i < n; i++) {
        if (!kv[i].key || !kv[i].value) continue;
        if (!any++) fputs("<h2>Provenance</h2>\n<div class=\"tbl\"><table class=\"prov\">\n", f);
        put_prov_item(f, kv[i].key, strlen(kv[i].key), kv[i].value, strlen(kv[i].value));
    }
    for (const char *p = any ? NULL : csv; p && *p == '#';) {
        const char *end = strchr(p, '\n'), *line = p + 1 + (p[1] == ' ');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        while (len && line[len - 1] == '\r') len--;
        const char *colon = memchr(line, ':', len);
        if (colon) {
            if (!any++) fputs("<h2>Provenance</h2>\n<div class=\"tbl\"><table class=\"prov\">\n", f);
            const char *v = colon + 1 + (colon + 1 < line + len && colon[1] == ' ');
            put_prov_item(f, line, (size_t)(colon - line), v, (size_t)(line + len - v));
        }
        p = end ? end + 1 : NULL;
    }
    if (any) fputs("</table></div>\n", f);
}

int ds_report_html(const char *dir, const char *title, const char *summary)
{
    return ds_report_html_ex(dir, title, summary, NULL, 0);
}

int ds_report_html_ex(const char *dir, const char *title, const char *summary, const ds_meta_kv *prov, int n_prov)
{
    if (!dir) return ds_fail("report: NULL directory");
    struct stat st;
    if (stat(dir, &st) != 0) return ds_fail("report: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ds_fail("report: %s: not a directory", dir);
    if (!title) title = "deepsky report";

    char *csv = NULL, *csv_path = join(dir, "metrics.csv");
    char *path = join(dir, "report.html");
    int rc = -1;
    ds_atomic a = {0};
    if (!csv_path || !path) {
        ds_fail("report %s: out of memory", dir);
        goto done;
    }
    if (is_file(dir, "metrics.csv") && !(csv = slurp(csv_path))) {
        ds_fail("report: cannot read %s: %s", csv_path, strerror(errno));
        goto done;
    }
    if (ds_atomic_open(&a, path) != 0) {
        ds_fail_prefix("report: ");
        goto done;
    }
    FILE *f = a.f;

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"deepsky " DS_VERSION "\">\n<title>",
          f);
    put_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", CSS);
    put_esc(f, title);
    fputs("</h1>\n<p class=\"sub\">deepsky " DS_VERSION " report</p>\n", f);
    if (summary) {
        fputs("<h2>Summary</h2>\n<pre>", f);
        put_esc(f, summary);
        fputs("</pre>\n", f);
    }
    put_provenance(f, prov, n_prov, csv);
    int any = 0;
    for (size_t i = 0; i < sizeof FIGS / sizeof FIGS[0]; i++) {
        if (!is_file(dir, FIGS[i].file)) continue;
        if (!any++) fputs("<h2>Plots</h2>\n<div class=\"figs\">\n", f);
        fprintf(f, "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s</figcaption></figure>\n",
                FIGS[i].file, FIGS[i].alt, FIGS[i].caption);
    }
    if (any) fputs("</div>\n", f);
    if (csv) {
        fputs("<h2>Metrics per epoch</h2>\n", f);
        put_table(f, csv);
        fputs("<p class=\"sub\">From <a href=\"metrics.csv\">metrics.csv</a>.</p>\n", f);
    }
    fputs("</main>\n</body>\n</html>\n", f);

    if (ds_atomic_commit(&a) != 0) {
        ds_fail_prefix("report: ");
        goto done;
    }
    rc = 0;
done:
    free(csv);
    free(csv_path);
    free(path);
    return rc;
}
