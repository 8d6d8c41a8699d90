/* classes.c — the class vocabulary: the names of a model's classes in index
 * order, kept in checkpoints (metadata "classes", a JSON array of strings)
 * so that every later file's labels are numbered by name as in training,
 * not by the sorted order of that file's own names (issue 12 item 1). */
#include "data.h"
#include "../io/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ds_class_names_json(const char *const *names, int n)
{
    ds_jbuf b = {0};
    ds_jb_put(&b, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i) ds_jb_put(&b, ", ", 2);
        ds_jb_str(&b, names[i], strlen(names[i]));
    }
    ds_jb_put(&b, "]", 2); /* and the NUL */
    if (b.oom) {
        ds_jb_free(&b);
        ds_fail("out of memory for %d class names", n);
        return NULL;
    }
    return b.p;
}

int ds_checkpoint_classes(const ds_checkpoint *c, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    const char *text = ds_checkpoint_meta(c, "classes");
    if (!text) return 0; /* a checkpoint from before names were kept, or of numeric labels */
    char err[128];
    ds_json *j = ds_json_parse(text, strlen(text), err, sizeof err);
    int rc = 0;
    if (!j || j->type != DS_JSON_ARR || j->n < 1) {
        rc = ds_fail("checkpoint metadata 'classes' is not a JSON array of class names (%s)",
                     j ? "another JSON value" : err);
        goto done;
    }
    char **v = calloc((size_t)j->n, sizeof *v);
    if (!v) {
        rc = ds_fail("out of memory for %d class names", j->n);
        goto done;
    }
    for (int i = 0; i < j->n && !rc; i++) {
        const ds_json *e = &j->kids[i];
        if (e->type != DS_JSON_STR || !e->len || strlen(e->str) != e->len)
            rc = ds_fail("checkpoint metadata 'classes': entry %d is not a non-empty string", i);
        for (int k = 0; k < i && !rc; k++)
            if (!strcmp(v[k], e->str)) rc = ds_fail("checkpoint metadata 'classes': '%s' is there twice", e->str);
        if (!rc && !(v[i] = strdup(e->str))) rc = ds_fail("out of memory for the class names");
    }
    if (rc) ds_names_free(v, j->n);
    else *names = v, *n = j->n;
done:
    ds_json_free(j);
    return rc;
}

/* "a, b, c" for messages, cut with "..." to fit buf. */
static void name_list(const char *const *names, int n, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + k, size - k, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= size - k) {
            strcpy(buf + size - 8, ", ...");
            return;
        }
        k += (size_t)w;
    }
}

int ds_dataset_map_classes(ds_dataset *d, const char *const *names, int n, const char *what)
{
    if (!what) what = "data";
    if (!names || n <= 0 || d->classes == 0) return 0; /* no vocabulary, or nothing labelled */
    char list[256];
    name_list(names, n, list, sizeof list);
    int *map = malloc((size_t)(d->classes > 0 ? d->classes : 1) * sizeof *map);
    if (!map) return ds_fail("%s: out of memory", what);
    for (int k = 0; k < d->classes; k++) {
        map[k] = d->class_names ? -1 : k < n ? k : -1;
        for (int c = 0; d->class_names && c < n && map[k] < 0; c++)
            if (!strcmp(d->class_names[k], names[c])) map[k] = c;
    }
    for (int i = 0; i < d->n; i++) {
        int k = (int)d->y[i];
        if (k >= 0 && k < d->classes && map[k] >= 0) continue;
        free(map);
        if (d->class_names && k >= 0 && k < d->classes)
            return ds_fail("%s: sample %d (from 0) has label '%s', which is not one of the %d classes the model "
                           "was trained on (%s)", what, i, d->class_names[k], n, list);
        return ds_fail("%s: sample %d (from 0) has label %d, but the model's classes are 0 to %d (%s)", what, i, k,
                       n - 1, list);
    }
    for (int i = 0; i < d->n; i++) d->y[i] = (float)map[(int)d->y[i]];
    free(map);
    /* the vocabulary's names replace the file's own (calloc'd and counted first, so a partial copy frees) */
    char **copy = calloc((size_t)n, sizeof *copy);
    int ok = copy != NULL;
    for (int c = 0; ok && c < n; c++) ok = (copy[c] = strdup(names[c])) != NULL;
    if (!ok) {
        ds_names_free(copy, n);
        return ds_fail("%s: out of memory for %d class names", what, n);
    }
    ds_names_free(d->class_names, d->class_names ? d->classes : 0);
    d->class_names = copy;
    d->classes = n;
    return 0;
}

void ds_class_names_free(char **names, int n) { ds_names_free(names, n); }

int ds_labels_write_csv(const char *path, const ds_dataset *d)
{
    if (!d->class_names) return ds_fail("%s: the data has no class names to write", path);
    ds_atomic a;
    if (ds_atomic_open(&a, path) != 0) return -1;
    fputs("class\n", a.f);
    for (int i = 0; i < d->n; i++) {
        int k = (int)d->y[i];
        if (k < 0 || k >= d->classes) {
            ds_atomic_abort(&a);
            return ds_fail("%s: sample %d has label %g, not one of the %d classes", path, i, (double)d->y[i], d->classes);
        }
        fprintf(a.f, "%s\n", d->class_names[k]);
    }
    return ds_atomic_commit(&a);
}
