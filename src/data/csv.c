/* csv.c — tables: a header row, numeric feature columns and one label column.
 *
 * Fields are separated by ','; a field may be "quoted" ("" is a quote inside
 * one) but may not span lines; spaces around fields are ignored; blank lines
 * are skipped. Samples are [F] with F = columns − 1. Labels that all read as
 * numbers must be class indices 0, 1, 2, …; otherwise each distinct string
 * is a class, numbered in sorted (strcmp) order, with class_names. */
#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    int ncols, lc;       /* columns, label column */
    char **hdr;          /* header names */
    char **cell;         /* [ncols] scratch for one row */
    float *x;            /* [n, F] */
    char **lab;          /* [n] label cells (point into the file buffer) */
    int *line;           /* [n] line number of each row */
    int n, cap;
} table;

/* The whole file, NUL-terminated. */
static char *slurp(const char *path)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ds_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (size_t r; buf; len += r) {
        if (len + 1 == cap) {
            char *nb = cap < (SIZE_MAX >> 1) ? realloc(buf, cap * 2) : NULL;
            if (!nb) free(buf);
            buf = nb, cap *= 2;
            if (!buf) break;
        }
        if ((r = fread(buf + len, 1, cap - 1 - len, f)) == 0) break;
    }
    if (!buf) ds_fail("%s: out of memory", path);
    else if (ferror(f)) {
        ds_fail("%s: read error: %s", path, strerror(errno));
        free(buf), buf = NULL;
    } else if (memchr(buf, 0, len)) {
        ds_fail("%s: not a text file (NUL byte at offset %zu)", path,
                (size_t)((char *)memchr(buf, 0, len) - buf));
        free(buf), buf = NULL;
    } else buf[len] = 0;
    fclose(f);
    return buf;
}

/* Splits one line in place into fields; stores up to max of them in f and
 * returns how many there are, or −1 for an unterminated quote. */
static int split_fields(char *s, char **f, int max)
{
    for (int n = 0;;) {
        while (*s == ' ' || *s == '\t') s++;
        char *start = s, *w;
        if (*s == '"') {
            w = s++;
            for (;; s++) {
                if (!*s) return -1;
                if (*s == '"' && s[1] != '"') break;
                *w++ = *s;
                s += *s == '"';
            }
            while (*++s && *s != ',') {} /* text after the closing quote is dropped */
        } else {
            while (*s && *s != ',') s++;
            for (w = s; w > start && (w[-1] == ' ' || w[-1] == '\t'); w--) {}
        }
        char sep = *s;
        *w = 0;
        if (n < max) f[n] = start;
        n++;
        if (sep != ',') return n;
        s++;
    }
}

/* A finite number filling the whole cell. */
static int number(const char *s, float *v)
{
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || fabs(d) > 3.4e38) return 0;
    *v = (float)d;
    return 1;
}

static int grow(table *t, int F)
{
    int cap = t->cap ? t->cap * 2 : 1024;
    float *x = F ? realloc(t->x, (size_t)cap * F * sizeof *x) : t->x;
    if (F && !x) return ds_fail("%s: out of memory at %d rows", t->path, t->n);
    t->x = x;
    char **lab = realloc(t->lab, (size_t)cap * sizeof *lab);
    if (!lab) return ds_fail("%s: out of memory at %d rows", t->path, t->n);
    t->lab = lab;
    int *line = realloc(t->line, (size_t)cap * sizeof *line);
    if (!line) return ds_fail("%s: out of memory at %d rows", t->path, t->n);
    t->line = line;
    t->cap = cap;
    return 0;
}

static int row(table *t, char *s, int ln)
{
    int F = t->ncols - 1;
    int k = split_fields(s, t->cell, t->ncols);
    if (k < 0) return ds_fail("%s:%d: unterminated quote", t->path, ln);
    if (k != t->ncols)
        return ds_fail("%s:%d: %d fields, expected %d as in the header", t->path, ln, k,
                       t->ncols);
    if (t->n == t->cap && grow(t, F)) return -1;
    float *xr = F ? t->x + (size_t)t->n * F : NULL; /* a labels file has no x (NULL + 0 is UB) */
    for (int c = 0; c < t->ncols; c++) {
        const char *v = t->cell[c];
        if (!*v)
            return ds_fail("%s:%d:%d: empty cell in column '%s'", t->path, ln, c + 1, t->hdr[c]);
        if (c == t->lc) continue;
        if (!number(v, xr++))
            return ds_fail("%s:%d:%d: '%.40s' in column '%s' is not a finite number", t->path,
                           ln, c + 1, v, t->hdr[c]);
    }
    t->lab[t->n] = t->cell[t->lc];
    t->line[t->n++] = ln;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Label cells → y: class indices, or sorted distinct strings as classes. */
static int labels(table *t, ds_dataset *d)
{
    int numeric = 1;
    for (int i = 0; i < t->n && numeric; i++) numeric = number(t->lab[i], &d->y[i]);
    if (numeric) {
        for (int i = 0; i < t->n; i++) {
            float v = d->y[i];
            if (!(v >= 0 && v < DS_MAX_LABEL) || v != floorf(v))
                return ds_fail("%s:%d:%d: label %s is not a class index (an integer 0 ≤ y < "
                               "2^24)", t->path, t->line[i], t->lc + 1, t->lab[i]);
        }
        return ds_labels_check(t->path, d->y, t->n, &d->classes);
    }
    char **u = malloc((size_t)t->n * sizeof *u);
    if (!u) return ds_fail("%s: out of memory", t->path);
    memcpy(u, t->lab, (size_t)t->n * sizeof *u);
    qsort(u, (size_t)t->n, sizeof *u, cmp_str);
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (k == 0 || strcmp(u[k - 1], u[i]) != 0) u[k++] = u[i];
    for (int i = 0; i < t->n; i++) {
        char **hit = bsearch(&t->lab[i], u, (size_t)k, sizeof *u, cmp_str);
        d->y[i] = (float)(hit - u);
    }
    /* calloc'd and counted first, so ds_dataset_free frees a partial copy */
    int ok = (d->class_names = calloc((size_t)k, sizeof *d->class_names)) != NULL;
    d->classes = ok ? k : 0;
    for (int c = 0; c < d->classes; c++) ok &= (d->class_names[c] = strdup(u[c])) != NULL;
    free(u);
    return ok ? 0 : ds_fail("%s: out of memory for %d class names", t->path, k);
}

/* Header → column names and the label column. */
static int header(table *t, char *s, const char *label, int labels_only)
{
    int k = 1; /* fields ≤ commas + 1 */
    for (const char *p = s; *p; p++) k += *p == ',';
    t->hdr = malloc((size_t)k * sizeof *t->hdr);
    t->cell = malloc((size_t)k * sizeof *t->cell);
    if (!t->hdr || !t->cell) return ds_fail("%s: out of memory", t->path);
    if ((k = split_fields(s, t->hdr, k)) < 0)
        return ds_fail("%s:1: unterminated quote in the header", t->path);
    t->ncols = k;
    t->lc = k - 1;
    if (label) {
        for (t->lc = 0; t->lc < k && strcmp(t->hdr[t->lc], label) != 0; t->lc++) {}
        if (t->lc == k) return ds_fail("%s:1: no column named '%s' in the header", t->path, label);
    }
    if (labels_only && k != 1)
        return ds_fail("%s:1: a labels file has one column, this header has %d", t->path, k);
    if (!labels_only && k < 2)
        return ds_fail("%s:1: need feature columns and a label column; the header has %d column",
                       t->path, k);
    return 0;
}

int ds_csv_load(const char *path, const char *label, int labels_only, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    table t = {.path = path};
    char *buf = slurp(path), *s = buf;
    int rc = -1, ln = 0;
    if (!buf) return -1;
    for (char *next; s && *s; s = next) {
        char *nl = strchr(s, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[len - 1] = 0;
        if (++ln == 1) {
            if (!*s) {
                ds_fail("%s:1: empty header row (a header row naming the columns is required)",
                        path);
                goto done;
            }
            if (header(&t, s, label, labels_only)) goto done;
        } else if (*s && row(&t, s, ln)) goto done;
    }
    if (ln == 0) {
        ds_fail("%s: empty file (a header row naming the columns is required)", path);
        goto done;
    }
    if (t.n == 0) {
        ds_fail("%s: no data rows after the header", path);
        goto done;
    }
    out->y = malloc((size_t)t.n * sizeof *out->y);
    if (!out->y) {
        ds_fail("%s: out of memory", path);
        goto done;
    }
    out->n = t.n;
    if (labels(&t, out)) goto done;
    out->sample = labels_only ? (ds_shape){0} : ds_shape_of(1, t.ncols - 1);
    out->x = labels_only ? NULL : t.x;
    t.x = labels_only ? t.x : NULL;
    rc = 0;
done:
    if (rc) ds_dataset_free(out);
    free(t.x), free(t.lab), free(t.line), free(t.hdr), free(t.cell), free(buf);
    return rc;
}
