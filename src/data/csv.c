/* csv.c — tables: numeric feature columns and (usually) one label column.
 *
 * Fields are separated by ','; a field may be "quoted" ("" is a quote inside
 * one) but may not span lines; spaces around fields are ignored; blank lines
 * are skipped. The file may be gzip-compressed (zlib reads a plain file as
 * it is). Options (ds_csv_opts): skip the first N lines; header yes, no or
 * auto (header_auto; scikit-learn's "n_samples,n_features,names" first line
 * is recognised, sklearn_line); the label column by header name, by index
 * (0 the first, −1 the last: the default) or none. Samples are [F], F = the
 * other columns. Labels that all read as numbers must be class indices
 * 0, 1, 2, …; otherwise each distinct string is a class, numbered in sorted
 * (strcmp) order, with class_names. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    const char *path;
    int ncols, lc;       /* columns, label column (−1: none) */
    char **hdr;          /* header names, NULL without a header */
    char **cell;         /* [ncols] scratch for one row */
    float *x;            /* [n, F] */
    char **lab;          /* [n] label cells (point into the file buffer) */
    int *line;           /* [n] line number of each row */
    int n, cap;
    unsigned char *use;  /* [ncols] 1 for a column kept (usecols=); NULL: all */
    int cat_col;         /* a categorical column (cat=COL:a|b), read as the index of its text; −1 none */
    char *cat_buf, *cat_list, *cats[1024]; /* cat_list: "a,b,c" for messages */
    int n_cats;
    int nuse;            /* feature columns kept */
} table;

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
    float dummy;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || fabs(d) > 3.4e38) return 0;
    *(v ? v : &dummy) = (float)d;
    return 1;
}

/* A whole number in [lo, hi] filling the string. */
static int integer(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
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

/* Column c's name for messages: the header's, or "column c+1". */
static const char *col_name(const table *t, int c, char *buf, size_t size)
{
    if (t->hdr) return t->hdr[c];
    snprintf(buf, size, "column %d", c + 1);
    return buf;
}

static int row(table *t, char *s, int ln)
{
    int F = t->use ? t->nuse : t->ncols - (t->lc >= 0);
    char nb[32];
    int k = split_fields(s, t->cell, t->ncols);
    if (k < 0) return ds_fail("%s:%d: unterminated quote", t->path, ln);
    if (k != t->ncols)
        return ds_fail("%s:%d: %d fields, expected %d as in %s", t->path, ln, k, t->ncols,
                       t->hdr ? "the header" : "the first row");
    if (t->n == INT_MAX - 1) return ds_fail("%s:%d: too many rows", t->path, ln);
    if (t->n == t->cap && grow(t, F)) return -1;
    float *xr = F ? t->x + (size_t)t->n * F : NULL; /* a labels file has no x (NULL + 0 is UB) */
    for (int c = 0; c < t->ncols; c++) {
        const char *v = t->cell[c];
        if (!*v)
            return ds_fail("%s:%d:%d: empty cell in column '%s'", t->path, ln, c + 1,
                           col_name(t, c, nb, sizeof nb));
        if (c == t->lc || (t->use && !t->use[c])) continue;
        if (c == t->cat_col) {
            int k = 0;
            while (k < t->n_cats && strcmp(t->cats[k], v)) k++;
            if (k == t->n_cats)
                return ds_fail("%s:%d:%d: '%.40s' in column '%s' is not one of its categories (%s)", t->path, ln, c + 1,
                               v, col_name(t, c, nb, sizeof nb), t->cat_list);
            *xr++ = (float)k;
            continue;
        }
        if (!number(v, xr++))
            return ds_fail("%s:%d:%d: '%.40s' in column '%s' is not a finite number", t->path,
                           ln, c + 1, v, col_name(t, c, nb, sizeof nb));
    }
    t->lab[t->n] = t->lc >= 0 ? t->cell[t->lc] : NULL;
    t->line[t->n++] = ln;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* names[0..k) (not NULL) as d's class names, copied. */
static int set_names(ds_dataset *d, char *const *names, int k, const char *path)
{
    /* calloc'd and counted first, so ds_dataset_free frees a partial copy */
    int ok = (d->class_names = calloc((size_t)k, sizeof *d->class_names)) != NULL;
    d->classes = ok ? k : 0;
    for (int c = 0; c < d->classes; c++) ok &= (d->class_names[c] = strdup(names[c])) != NULL;
    return ok ? 0 : ds_fail("%s: out of memory for %d class names", path, k);
}

/* Label cells → y: class indices (named by `names`, if given), or sorted
 * distinct strings as classes. */
static int labels(table *t, ds_dataset *d, char *const *names, int n_names)
{
    int numeric = 1;
    for (int i = 0; i < t->n && numeric; i++) numeric = number(t->lab[i], &d->y[i]);
    if (numeric) {
        for (int i = 0; i < t->n; i++) {
            float v = d->y[i];
            if (!(v >= 0 && v < DS_MAX_LABEL) || v != floorf(v))
                return ds_fail("%s:%d:%d: label %s is not a class index (an integer 0 ≤ y < "
                               "2^24)", t->path, t->line[i], t->lc + 1, t->lab[i]);
            if (names && v >= n_names)
                return ds_fail("%s:%d:%d: label %s, but line 1 names %d classes (0 to %d)", t->path,
                               t->line[i], t->lc + 1, t->lab[i], n_names, n_names - 1);
        }
        if (names) return set_names(d, names, n_names, t->path);
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
    int rc = set_names(d, u, k, t->path);
    free(u);
    return rc;
}

/* The label option → column (−1 none): an integer is an index (0 the
 * first, −1 the last), anything else a name in hdr (line 1's fields, NULL
 * when there is no header); *by_name is set when found by name (so line 1
 * is the header). */
static int label_column(const char *path, int ln, const ds_csv_opts *o, char **hdr, int k, int *lc,
                        int *by_name)
{
    const char *label = o->label;
    long v;
    *by_name = 0;
    if (o->labels_only) return *lc = 0, 0;
    if (!label) return *lc = k - 1, 0;
    if (!strcmp(label, "none")) return *lc = -1, 0;
    if (integer(label, LONG_MIN, LONG_MAX, &v)) {
        if (v < -(long)k || v >= k)
            return ds_fail("%s: label=%s: no such column (the file has %d: 0 to %d, or -1 to -%d from the end)",
                           path, label, k, k - 1, k);
        return *lc = v < 0 ? (int)(k + v) : (int)v, 0;
    }
    if (!hdr)
        return ds_fail("%s: label=%s: without a header row columns have no names; give the column's index "
                       "(0 the first, -1 the last)", path, label);
    for (int c = 0; c < k; c++)
        if (!strcmp(hdr[c], label)) return *lc = c, *by_name = 1, 0;
    return ds_fail("%s:%d: no column named '%s' in the header", path, ln, label);
}

/* header=auto: line 1 (fields a[0..k)) is data when each of its feature
 * cells is a number and its label cell is not a word above a number in
 * line 2 (fields b[0..kb), kb < 0 if there is no line 2); else it is the
 * header. A header of numbers only (e.g. "0,1,2,3") therefore reads as
 * data: say header=yes. */
static int header_auto(char **a, int k, char **b, int kb, int lc)
{
    for (int c = 0; c < k; c++) {
        if (c != lc && !number(a[c], NULL)) return 1;
        if (c == lc && !number(a[c], NULL) && kb == k && number(b[c], NULL)) return 1;
    }
    return 0;
}

/* scikit-learn's first line, "n_samples,n_features,name0,name1,…" above
 * rows of n_features + 1 fields: *n_samples, or 0 if a[] is not one. */
static long sklearn_line(char **a, int k, int kb)
{
    long ns, nf;
    if (k < 3 || !integer(a[0], 1, INT_MAX, &ns) || !integer(a[1], 1, INT_MAX - 1, &nf) || kb != nf + 1 ||
        kb == k)
        return 0;
    for (int c = 2; c < k; c++)
        if (!*a[c] || number(a[c], NULL)) return 0;
    return ns;
}

/* Field count of a copy of line s (−1: unterminated quote); fields of the
 * copy in *f (malloc'd with the copy in *copy). */
static int peek_fields(const char *s, char **copy, char ***f)
{
    int k = 1;
    for (const char *p = s; *p; p++) k += *p == ',';
    *copy = strdup(s);
    *f = malloc((size_t)k * sizeof **f);
    if (!*copy || !*f) return -2;
    return split_fields(*copy, *f, k);
}

int ds_csv_load(const char *path, const char *label, int labels_only, ds_dataset *out)
{
    ds_csv_opts o = {.label = label, .header = labels_only ? DS_CSV_HEADER_YES : DS_CSV_HEADER_AUTO,
                     .labels_only = labels_only};
    return ds_csv_load_opts(path, &o, out);
}

int ds_csv_load_opts(const char *path, const ds_csv_opts *o, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    table t = {.path = path};
    char *buf = ds_text_read(path), *line1 = NULL, *copy2 = NULL, **first = NULL, **second = NULL, **line = NULL;
    int *lno = NULL, nl = 0, cap = 0, rc = -1, lines = 0, has_hdr = 0, by_name = 0;
    long n_samples = 0;
    if (!buf) return -1;
    /* the lines after the skipped ones, blank lines left out, with their numbers */
    for (char *s = buf, *next; s && *s; s = next) {
        char *end = strchr(s, '\n');
        next = end ? end + 1 : NULL;
        if (end) *end = 0;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[--len] = 0;
        if (++lines <= o->skip || !len) continue;
        if (nl == cap) {
            cap = cap ? 2 * cap : 4096;
            char **nline = realloc(line, (size_t)cap * sizeof *line);
            if (nline) line = nline;
            int *nlno = nline ? realloc(lno, (size_t)cap * sizeof *lno) : NULL;
            if (!nlno) {
                ds_fail("%s: out of memory at line %d", path, lines);
                goto done;
            }
            lno = nlno;
        }
        line[nl] = s, lno[nl++] = lines;
    }
    if (nl == 0) {
        if (lines == 0) ds_fail("%s: empty file (no header and no rows)", path);
        else if (o->skip) ds_fail("%s: no rows after the %d lines skipped (skip=%d)", path, lines, o->skip);
        else ds_fail("%s: only blank lines", path);
        goto done;
    }
    /* line 1 split in a copy (the header, or a row parsed again with the others), line 2 peeked at */
    int k = peek_fields(line[0], &line1, &first), kb = nl > 1 ? peek_fields(line[1], &copy2, &second) : -1;
    if (k == -2 || kb == -2) {
        ds_fail("%s: out of memory", path);
        goto done;
    }
    if (k < 0) {
        ds_fail("%s:%d: unterminated quote", path, lno[0]);
        goto done;
    }
    t.ncols = k;
    if (o->labels_only && k != 1) {
        ds_fail("%s:%d: a labels file has one column, this %s has %d", path, lno[0],
                o->header == DS_CSV_HEADER_NO ? "row" : "header", k);
        goto done;
    }
    if (o->header == DS_CSV_HEADER_AUTO && !o->skip && !o->labels_only && (n_samples = sklearn_line(first, k, kb))) {
        /* scikit-learn's layout: line 1 names the classes; the table starts at line 2 */
        t.ncols = kb;
        if (label_column(path, lno[0], o, NULL, kb, &t.lc, &by_name)) goto done;
    } else {
        if (label_column(path, lno[0], o, o->header == DS_CSV_HEADER_NO ? NULL : first, k, &t.lc, &by_name))
            goto done;
        has_hdr = o->header == DS_CSV_HEADER_YES || by_name ||
                  (o->header == DS_CSV_HEADER_AUTO && header_auto(first, k, second, kb, t.lc));
    }
    if (!o->labels_only && t.ncols < (t.lc >= 0 ? 2 : 1)) {
        ds_fail("%s:%d: need feature columns and a label column; the %s has %d column", path, lno[0],
                has_hdr ? "header" : "first row", t.ncols);
        goto done;
    }
    if (o->usecols) { /* pandas' usecols: only these columns (by header name) are read as features */
        if (!has_hdr) {
            ds_fail("%s: usecols= picks columns by header name, and the file has no header", path);
            goto done;
        }
        if (!(t.use = calloc((size_t)t.ncols, 1))) {
            ds_fail("%s: out of memory", path);
            goto done;
        }
        char list[4096], *save = NULL;
        snprintf(list, sizeof list, "%s", o->usecols);
        for (char *tok = strtok_r(list, ",|", &save); tok; tok = strtok_r(NULL, ",|", &save)) {
            while (*tok == ' ') tok++;
            for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';) *--e = 0;
            int c = 0;
            while (c < t.ncols && strcmp(first[c], tok)) c++;
            if (c == t.ncols) {
                ds_fail("%s: no column '%s' (usecols=)", path, tok);
                goto done;
            }
            if (c != t.lc && !t.use[c]) t.use[c] = 1, t.nuse++;
        }
    }
    t.cat_col = -1;
    if (o->categorical) { /* COL:a|b|c — cat_buf holds "COL\0a\0b\0c\0" then the list again for messages */
        size_t len = strlen(o->categorical);
        const char *colon = strchr(o->categorical, ':');
        if (!colon || colon == o->categorical || !colon[1]) {
            ds_fail("%s: cat=%s: expected COLUMN:a|b|...", path, o->categorical);
            goto done;
        }
        if (!has_hdr) {
            ds_fail("%s: cat= names a column by its header name, and the file has no header", path);
            goto done;
        }
        if (!(t.cat_buf = malloc(2 * len + 2))) {
            ds_fail("%s: out of memory", path);
            goto done;
        }
        memcpy(t.cat_buf, o->categorical, len + 1);
        char *list = t.cat_buf + (colon - o->categorical);
        *list++ = 0;
        char *copy = t.cat_list = t.cat_buf + len + 1;
        strcpy(copy, list);
        for (char *q = copy; *q; q++)
            if (*q == '|') *q = ',';
        for (char *tok = list, *bar; tok && t.n_cats < 1024; tok = bar) {
            bar = strchr(tok, '|');
            if (bar) *bar++ = 0;
            t.cats[t.n_cats++] = tok;
        }
        for (int c = 0; c < t.ncols && t.cat_col < 0; c++)
            if (!strcmp(first[c], t.cat_buf)) t.cat_col = c;
        if (t.cat_col < 0) {
            ds_fail("%s: no column '%s' (cat=)", path, t.cat_buf);
            goto done;
        }
    }
    if (!(t.cell = malloc((size_t)t.ncols * sizeof *t.cell))) {
        ds_fail("%s: out of memory", path);
        goto done;
    }
    if (has_hdr) t.hdr = first;
    for (int i = has_hdr || n_samples ? 1 : 0; i < nl; i++)
        if (row(&t, line[i], lno[i])) goto done;
    if (t.n == 0) {
        ds_fail("%s: no data rows after the header", path);
        goto done;
    }
    if (n_samples && n_samples != t.n) {
        ds_fail("%s:%d: this line reads as scikit-learn's 'n_samples,n_features,class names' and says %ld "
                "samples, but the file has %d rows (for a header of another kind give header=yes, or skip=1)",
                path, lno[0], n_samples, t.n);
        goto done;
    }
    if (!(out->y = calloc((size_t)t.n, sizeof *out->y))) {
        ds_fail("%s: out of memory", path);
        goto done;
    }
    out->n = t.n;
    if (t.lc >= 0 && labels(&t, out, n_samples ? first + 2 : NULL, n_samples ? k - 2 : 0)) goto done;
    out->sample = o->labels_only ? (ds_shape){0} : ds_shape_of(1, t.use ? t.nuse : t.ncols - (t.lc >= 0));
    out->x = o->labels_only ? NULL : t.x;
    t.x = o->labels_only ? t.x : NULL;
    if (has_hdr && !o->labels_only) { /* the features' names, for models that pick columns by name */
        int F = out->sample.d[0];
        if (!(out->feature_names = calloc((size_t)F, sizeof *out->feature_names))) {
            ds_fail("%s: out of memory", path);
            goto done;
        }
        for (int c = 0, f = 0; c < t.ncols; c++)
            if (c != t.lc && (!t.use || t.use[c]) && !(out->feature_names[f++] = strdup(first[c]))) {
                ds_fail("%s: out of memory", path);
                goto done;
            }
    }
    rc = 0;
done:
    if (rc) ds_dataset_free(out);
    free(t.x), free(t.lab), free(t.line), free(t.cell), free(t.use), free(t.cat_buf), free(buf);
    free(line1), free(copy2), free(first), free(second), free(line), free(lno);
    return rc;
}
