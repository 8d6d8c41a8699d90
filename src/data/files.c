/* files.c — what the data loaders share, below all of them: file names,
 * folder listings, whole files, and the dataset struct's allocation and
 * checks. Nothing here calls a loader or spec.c (spec.c calls the loaders,
 * the loaders call this file; tests/layering.sh checks it). */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- names and folders ---- */

int ds_has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), k = strlen(ext);
    return n > k && strcasecmp(name + n - k, ext) == 0;
}

int ds_dir_has(const char *dir, int (*accept)(const char *name), int depth)
{
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (accept(e->d_name)) found = 1;
        else if (depth > 0) {
            char sub[4096];
            struct stat st;
            if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub && stat(sub, &st) == 0 &&
                S_ISDIR(st.st_mode))
                found = ds_dir_has(sub, accept, depth - 1);
        }
    }
    closedir(dp);
    return found;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir, hidden ones skipped: sub-directories when want_dir,
 * else regular files that `accept`. */
static int list_dir(const char *dir, int want_dir, int (*accept)(const char *), char ***names,
                    int *n)
{
    *names = NULL;
    *n = 0;
    errno = 0;
    DIR *d = opendir(dir);
    if (!d) return ds_fail("%s: cannot open directory: %s", dir, strerror(errno));
    int cap = 0, rc = 0;
    char path[4096];
    struct stat st;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) {
            rc = ds_fail("%s/%s: path too long", dir, e->d_name);
            break;
        }
        if (stat(path, &st) != 0 || (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
            continue;
        if (!want_dir && !accept(e->d_name)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(*names, (size_t)cap * sizeof *nn);
            if (!nn) {
                rc = ds_fail("%s: out of memory", dir);
                break;
            }
            *names = nn;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            rc = ds_fail("%s: out of memory", dir);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc) {
        ds_names_free(*names, *n);
        *names = NULL, *n = 0;
        return rc;
    }
    if (*n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

void ds_file_list_free(ds_file_list *l)
{
    ds_names_free(l->paths, l->n);
    ds_names_free(l->class_names, l->classes);
    free(l->label);
    memset(l, 0, sizeof *l);
}

/* Appends dir/cls/name for each name, labelled c. */
static int add_files(ds_file_list *l, const char *dir, int c, char **names, int k)
{
    char **p = realloc(l->paths, (size_t)(l->n + k) * sizeof *p);
    if (p) l->paths = p;
    int *lab = p ? realloc(l->label, (size_t)(l->n + k) * sizeof *lab) : NULL;
    if (!lab) return ds_fail("%s: out of memory", dir);
    l->label = lab;
    for (int i = 0; i < k; i++) {
        size_t len = strlen(dir) + strlen(l->class_names[c]) + strlen(names[i]) + 3;
        if (!(l->paths[l->n] = malloc(len))) return ds_fail("%s: out of memory", dir);
        snprintf(l->paths[l->n], len, "%s/%s/%s", dir, l->class_names[c], names[i]);
        l->label[l->n++] = c;
    }
    return 0;
}

int ds_class_files(const char *dir, int (*accept)(const char *name), const char *kinds,
                   ds_file_list *out)
{
    memset(out, 0, sizeof *out);
    if (list_dir(dir, 1, NULL, &out->class_names, &out->classes)) return -1;
    if (out->classes == 0)
        return ds_fail("%s: no class sub-folders (expected %s/<class>/<%s files>)", dir, dir,
                       kinds);
    char sub[4096];
    for (int c = 0; c < out->classes; c++) {
        char **names;
        int k;
        snprintf(sub, sizeof sub, "%s/%s", dir, out->class_names[c]);
        if (list_dir(sub, 0, accept, &names, &k)) goto fail;
        int rc = k == 0 ? ds_fail("%s: no %s files in this class folder", sub, kinds)
                        : add_files(out, dir, c, names, k);
        ds_names_free(names, k);
        if (rc) goto fail;
    }
    return 0;
fail:
    ds_file_list_free(out);
    return -1;
}

/* ---- whole files ---- */

char *ds_text_read(const char *path)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        ds_fail("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    int r = 0;
    while (buf) {
        if (len + 1 == cap) {
            /* a text over 2 GiB is not one a loader can hold (and a gzip bomb stops here) */
            char *nb = cap <= DS_MAX_ELEMS / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                ds_fail(cap > DS_MAX_ELEMS / 2 ? "%s: larger than 2 GiB" : "%s: out of memory", path);
                free(buf), buf = NULL;
                break;
            }
            buf = nb, cap *= 2;
        }
        unsigned want = cap - 1 - len > INT_MAX ? INT_MAX : (unsigned)(cap - 1 - len);
        if ((r = gzread(f, buf + len, want)) <= 0) break;
        len += (size_t)r;
    }
    int err;
    const char *msg = gzerror(f, &err);
    if (buf && r < 0) {
        ds_fail("%s: read error: %s", path, err == Z_ERRNO ? strerror(errno) : msg);
        free(buf), buf = NULL;
    }
    int direct = gzdirect(f), closed = gzclose_r(f);
    if (buf && closed != Z_OK) {
        ds_fail("%s: %s", path, closed == Z_BUF_ERROR ? "truncated gzip data" : "gzip read error");
        free(buf), buf = NULL;
    }
    if (buf && memchr(buf, 0, len)) {
        ds_fail("%s: not a text file (NUL byte at %s offset %zu)", path, direct ? "byte" : "decompressed byte",
                (size_t)((char *)memchr(buf, 0, len) - buf));
        free(buf), buf = NULL;
    }
    if (buf) buf[len] = 0;
    return buf;
}

char *ds_file_read(const char *path, size_t max, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && (size_t)n < max && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) &&
        fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = 0;
        *len = (size_t)n;
    } else {
        free(text), text = NULL;
    }
    fclose(f);
    return text;
}

/* ---- the dataset struct ---- */

int ds_dataset_alloc(ds_dataset *d, int n, ds_shape sample, const char *path)
{
    size_t per = ds_shape_numel(sample);
    memset(d, 0, sizeof *d);
    if (n <= 0 || per == 0) return ds_fail("%s: empty (%d samples of %zu values)", path, n, per);
    if (per > DS_MAX_ELEMS / (size_t)n)
        return ds_fail("%s: too large (%d samples of %zu values; limit 2^31 values)", path, n,
                       per);
    d->x = malloc((size_t)n * per * sizeof *d->x);
    d->y = calloc((size_t)n, sizeof *d->y);
    if (!d->x || !d->y) {
        ds_dataset_free(d);
        return ds_fail("%s: out of memory for %d samples of %zu values", path, n, per);
    }
    d->n = n;
    d->sample = sample;
    return 0;
}

void ds_dataset_free(ds_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    if (d->class_names)
        for (int c = 0; c < d->classes; c++) free(d->class_names[c]);
    free(d->class_names);
    ds_dataset_free_fields(d);
    memset(d, 0, sizeof *d);
}

void ds_dataset_free_fields(ds_dataset *d)
{
    if (d->feature_names && d->sample.ndim == 1)
        for (int c = 0; c < d->sample.d[0]; c++) free(d->feature_names[c]);
    free(d->feature_names);
    d->feature_names = NULL;
    for (int k = 0; k < d->n_fields; k++) {
        free(d->fields[k].name);
        free(d->fields[k].x);
    }
    free(d->fields);
    d->fields = NULL;
    d->n_fields = 0;
}

void ds_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int ds_labels_check(const char *path, const float *y, int n, int *classes)
{
    float max = -1;
    for (int i = 0; i < n; i++) {
        float v = y[i];
        if (!(v >= 0 && v < DS_MAX_LABEL) || v != floorf(v))
            return ds_fail("%s: label of sample %d is %g, not a class index (an integer "
                           "0 ≤ y < 2^24)", path, i, (double)v);
        if (v > max) max = v;
    }
    *classes = (int)max + 1;
    return 0;
}
