/* cli_bind.c — a several-input model's data: --data SPEC for its first
 * input (with the labels) and --data NAME=SPEC for each other input and
 * each regression target, rows matched to the first source's samples in
 * order or by id (id=COLUMN on a CSV: its values are the first source's
 * simulator indices where those are known, else its row numbers). A
 * model's columns= picks a table's columns by header name. */
#include "cli.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* "NAME=SPEC" → name (copied into buf) and the spec; else NULL (a plain spec) */
static const char *binding(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return NULL;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-') n++;
    if (s[n] != '=' || n >= size) return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    return s + n + 1;
}

int cli_is_binding(const char *v)
{
    char name[64];
    return v && binding(v, name, sizeof name) != NULL;
}

int cli_specs_add(cli_specs *s, const char *opt, const char *v)
{
    char name[64];
    if (s->n == CLI_MAX_SPECS) return cli_usage("%s: at most %d sources", opt, CLI_MAX_SPECS);
    const char *spec = binding(v, name, sizeof name);
    for (int k = 0; k < s->n; k++) {
        char other[64];
        const char *os = binding(s->spec[k], other, sizeof other);
        if (spec ? os && !strcmp(name, other) : !os)
            return cli_usage("%s is given twice for %s%s", opt, spec ? "input " : "the first input", spec ? name : "");
    }
    s->spec[s->n++] = v;
    return 0;
}

/* the feeds a model's data must give: its inputs, then targets that are not the labels */
static int model_feeds(const ds_model *m, const char **names, int max)
{
    int n = 0;
    for (int k = 0; k < ds_model_num_inputs(m) && n < max; k++) names[n++] = ds_model_input_name(m, k);
    for (int h = 0; h < ds_model_num_outputs(m) && n < max; h++) {
        const char *t = ds_model_output_target(m, h);
        int dup = !strcmp(t, "label");
        for (int k = 0; k < n; k++) dup |= !strcmp(names[k], t);
        if (!dup) names[n++] = t;
    }
    return n;
}

/* the spec bound to `name` (k == 0: a plain spec also binds it) */
static const char *spec_for(const cli_specs *s, const char *name, int k)
{
    for (int i = 0; i < s->n; i++) {
        char b[64];
        const char *v = binding(s->spec[i], b, sizeof b);
        if (v ? !strcmp(b, name) : k == 0) return v ? v : s->spec[i];
    }
    return NULL;
}

/* the spec with ",id=COL" taken out (into id); csv without label= reads every column as data */
static int split_id(const char *spec, char *out, size_t size, char *id, size_t idsize)
{
    *id = 0;
    char *p = out;
    if (snprintf(out, size, "%s", spec) >= (int)size) return cli_error("data spec too long: %.80s", spec);
    while ((p = strstr(p, ",id=")) != NULL) {
        char *end = strchr(p + 1, ',');
        size_t len = end ? (size_t)(end - p - 4) : strlen(p + 4);
        if (len == 0 || len >= idsize) return cli_error("%s: id= needs a column name", spec);
        memcpy(id, p + 4, len);
        id[len] = 0;
        memmove(p, end ? end : p + strlen(p), strlen(end ? end : p + strlen(p)) + 1);
    }
    if (!strncmp(out, "csv:", 4) && !strstr(out, ",label=") && strlen(out) + 12 < size) strcat(out, ",label=none");
    return 0;
}

static int column_of(const ds_dataset *t, const char *name)
{
    for (int c = 0; t->feature_names && c < t->sample.d[0]; c++)
        if (!strcmp(t->feature_names[c], name)) return c;
    return -1;
}

/* field k of d from spec: the model's columns (or all), its rows in d's order */
static int load_field(const ds_model *m, const char *name, int input, const char *spec, const ds_dataset *d,
                      const char *first_spec, ds_field *f)
{
    char buf[PATH_MAX + 64], id[64];
    ds_dataset t = {0};
    int rc = 1, *cols = NULL, nc = 0;
    long *pid = NULL;
    if (split_id(spec, buf, sizeof buf, id, sizeof id)) return 1;
    const char *want = input >= 0 ? ds_model_input_columns(m, input) : NULL;
    if (want && !strncmp(buf, "csv:", 4) && !strstr(buf, ",usecols=")) {
        /* read only the columns the model takes (and the id): a table may hold text columns besides */
        size_t k = strlen(buf);
        int w = snprintf(buf + k, sizeof buf - k, ",usecols=%s%s%s", want, *id ? "|" : "", id);
        if (w < 0 || (size_t)w >= sizeof buf - k) return cli_error("%s: data spec too long", spec);
        for (char *q = buf + k + 9; *q; q++)
            if (*q == ',') *q = '|';
        const char *cats = ds_model_input_categories(m, input);
        if (cats) { /* a categorical column: its texts read as their index in the model's list */
            k = strlen(buf);
            w = snprintf(buf + k, sizeof buf - k, ",cat=%s:%s", want, cats);
            if (w < 0 || (size_t)w >= sizeof buf - k) return cli_error("%s: data spec too long", spec);
            for (char *q = buf + k + 5; *q; q++)
                if (*q == ',') *q = '|';
                else if (*q == ' ') memmove(q, q + 1, strlen(q)), q--;
        }
    }
    if (ds_data_load(buf, &t) != 0) {
        if (want && strstr(ds_last_error(), "(usecols=)"))
            return cli_error("%.*s(the model's input '%s' takes columns %s)", (int)(strstr(ds_last_error(), "(usecols=)") - ds_last_error()),
                             ds_last_error(), name, want);
        return cli_lib_error(NULL);
    }
    if (ds_dataset_check_finite(&t, spec) != 0) return cli_lib_error(NULL);
    if (want || *id) {
        if (t.sample.ndim != 1 || !t.feature_names) {
            cli_error("%s: %s needs a table with a header (columns are picked by name)", spec, *id ? "id=" : "columns=");
            goto done;
        }
    }
    int F = t.sample.ndim == 1 ? t.sample.d[0] : 0;
    if (want) {
        char list[1024], *save = NULL;
        snprintf(list, sizeof list, "%s", want);
        cols = malloc(sizeof *cols * (strlen(want) + 1));
        if (!cols) goto oom;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            for (char *e = tok + strlen(tok); e > tok && e[-1] == ' ';) *--e = 0;
            if ((cols[nc] = column_of(&t, tok)) < 0) {
                cli_error("%s: no column '%s' (the model's input '%s' takes columns %s)", spec, tok, name, want);
                goto done;
            }
            nc++;
        }
    }
    ds_shape shape = input >= 0 ? ds_model_input_shape_k(m, input) : ds_shape_of(1, want ? nc : F);
    size_t per = ds_shape_numel(shape), tper = ds_shape_numel(t.sample);
    if (!want && tper != per + (*id ? 1 : 0) && input >= 0) {
        char a[96], b[96];
        cli_error("%s: samples are %s but the model's input '%s' is %s%s", spec, ds_shape_str(t.sample, a, sizeof a), name,
                  ds_shape_str(shape, b, sizeof b), *id ? " (besides the id column)" : "");
        goto done;
    }
    if (input < 0 && !want) per = tper - (*id ? 1 : 0), shape = ds_shape_of(1, (int)per);
    int idc = *id ? column_of(&t, id) : -1;
    if (*id && idc < 0) {
        cli_error("%s: no column '%s' (id=)", spec, id);
        goto done;
    }
    /* row of t for each sample of d */
    int *row = malloc((size_t)d->n * sizeof *row);
    if (!row) goto oom;
    if (idc < 0) {
        if (t.n != d->n) {
            cli_error("%s has %d rows but %s has %d samples: the rows of input '%s' cannot be paired with them (give "
                      "id=COLUMN to match rows by id)", spec, t.n, first_spec, d->n, name);
            free(row);
            goto done;
        }
        for (int i = 0; i < d->n; i++) row[i] = i;
    } else {
        ds_provenance p;
        int have = ds_provenance_of(first_spec, 0, d->n, &p, &pid) == 0;
        if (have) ds_provenance_free(&p);
        if (!have || !pid) free(pid), pid = NULL;
        for (int i = 0; i < d->n; i++) row[i] = -1;
        /* ids are small integers here (simulator indices, row numbers): match through a sorted copy */
        for (int r = 0; r < t.n; r++) {
            float v = t.x[(size_t)r * tper + idc];
            long key = (long)v;
            if ((float)key != v) {
                cli_error("%s: row %d: id %g is not an integer", spec, r + 1, (double)v);
                free(row);
                goto done;
            }
            int lo = 0, hi = d->n - 1, at = -1;
            if (!pid) at = key >= 0 && key < d->n ? (int)key : -1;
            else
                while (lo <= hi) { /* simulator indices of a set are ascending */
                    int mid = (lo + hi) / 2;
                    if (pid[mid] == key) { at = mid; break; }
                    if (pid[mid] < key) lo = mid + 1;
                    else hi = mid - 1;
                }
            if (at < 0) continue; /* a row for a sample not in this set */
            if (row[at] >= 0) {
                cli_error("%s: id %ld appears twice (rows %d and %d)", spec, key, row[at] + 1, r + 1);
                free(row);
                goto done;
            }
            row[at] = r;
        }
        for (int i = 0; i < d->n; i++)
            if (row[i] < 0) {
                cli_error("%s: no row with %s = %ld (sample %d of %s)", spec, id, pid ? pid[i] : (long)i, i, first_spec);
                free(row);
                goto done;
            }
    }
    f->sample = shape;
    if (!(f->name = strdup(name)) || !(f->x = malloc((per * (size_t)d->n + 1) * sizeof *f->x))) {
        free(row);
        goto oom;
    }
    for (int i = 0; i < d->n; i++) {
        const float *src = t.x + (size_t)row[i] * tper;
        float *dst = f->x + (size_t)i * per;
        if (want)
            for (int c = 0; c < nc; c++) dst[c] = src[cols[c]];
        else
            for (int c = 0, o = 0; c < (int)tper; c++)
                if (c != idc) dst[o++] = src[c];
    }
    free(row);
    rc = 0;
    goto done;
oom:
    cli_error("out of memory");
done:
    free(pid);
    free(cols);
    ds_dataset_free(&t);
    return rc;
}

int cli_data_bind(const ds_model *m, const cli_specs *s, int targets, ds_dataset *d)
{
    const char *names[DS_MAX_FEEDS];
    int nf = model_feeds(m, names, DS_MAX_FEEDS), n_in = ds_model_num_inputs(m);
    for (int i = 0; i < s->n; i++) { /* every binding names a feed */
        char b[64];
        int known = !binding(s->spec[i], b, sizeof b);
        for (int k = 0; k < nf && !known; k++) known = !strcmp(names[k], b);
        if (!known) return cli_usage("%s: the model has no input or target '%s' (it has: %s%s%s)", s->spec[i], b,
                                     names[0], nf > 1 ? ", " : "", nf > 1 ? names[1] : "");
    }
    const char *first = spec_for(s, names[0], 0);
    if (!first) return cli_usage("no data for the model's input '%s'", names[0]);
    if (cli_data_load(m, first, d) != 0) return 1;
    int want = targets ? nf : n_in;
    if (targets == 2) /* optional (eval): the targets given, in feed order up to the first one missing */
        for (want = n_in; want < nf && spec_for(s, names[want], want);) want++;
    if (want == 1) return 0;
    if (!(d->fields = calloc((size_t)want - 1, sizeof *d->fields))) return cli_error("out of memory");
    for (int k = 1; k < want; k++) {
        const char *spec = spec_for(s, names[k], k);
        if (!spec) {
            ds_dataset_free(d);
            return cli_usage("no data for the model's %s '%s': give --data %s=SPEC", k < n_in ? "input" : "target",
                             names[k], names[k]);
        }
        d->n_fields = k; /* the fields so far are freed with d */
        if (load_field(m, names[k], k < n_in ? k : -1, spec, d, first, &d->fields[k - 1]) != 0) {
            ds_dataset_free(d);
            return 1;
        }
    }
    d->n_fields = want - 1;
    return 0;
}

/* the spec of the model's first input, for messages and provenance */
const char *cli_specs_first(const ds_model *m, const cli_specs *s)
{
    return spec_for(s, ds_model_input_name(m, 0), 0);
}
