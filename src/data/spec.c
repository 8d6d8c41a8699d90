/* spec.c — data specs ("scheme:ARGS" or a bare path) to loaders.
 *
 *   fashion-mnist[:train|:test]       ds_fashion_mnist_load (default: train)
 *   idx:IMAGES,LABELS                 ds_idx_load
 *   npy:X[,Y]                         X [n,F] | [n,H,W] | [n,C,H,W]; Y labels
 *   csv:FILE[,label=NAME|INDEX|none][,header=auto|yes|no][,skip=N]
 *                                     a table (.csv or .csv.gz); label column
 *                                     by header name or index (−1 the last,
 *                                     the default), or none
 *   folder:DIR                        DIR/<class>/<image>.png|jpg|jpeg
 *   fits:FILE|DIR[,labels=FILE][,channels=C]
 *                                     2-D image, 3-D cube, 4-D [N,C,H,W], or
 *                                     DIR/<class>/<image>.fits; channels=C:
 *                                     C consecutive planes make one sample
 *   shards:DIR                        a sharded data set (DIR/index.json,
 *                                     docs/data.md), loaded whole: refused
 *                                     beyond a quarter of the memory (training
 *                                     streams it instead)
 *   PATH                              by what it is: a directory with
 *                                     index.json (or index.json) → shards; a directory → fits if
 *                                     its class folders hold FITS, else folder;
 *                                     .npy, .csv(.gz), .fits/.fit/.fts/.fz → that
 *                                     loader; .png/.jpg/.jpeg → one sample
 * Labels files (Y, labels=) are .npy (1-D) or .csv (header, one column).
 * Without labels, y is all 0 and classes is 0. Paths cannot contain ','.
 * spec.c only parses specs and calls the loaders; what they share (names,
 * folders, whole files) is in files.c, so no loader calls back here. */
#include "shards.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SPECS                                                                      \
    "fashion-mnist[:train|:test], idx:IMAGES,LABELS, npy:X[,Y], csv:FILE[,label=NAME|INDEX|none][,header=..][,skip=N], " \
    "folder:DIR, fits:FILE|DIR[,labels=FILE][,channels=C], shards:DIR, or a path"

/* Splits s in place at ','; returns the number of parts (at most max + 1). */
static int split(char *s, char **part, int max)
{
    int n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (n < max) part[n] = s;
        n++;
        if (!comma || n > max) return n;
        *comma = 0;
        s = comma + 1;
    }
}

/* The value of "key=value", or NULL if `opt` is not that key. */
static const char *option(const char *opt, const char *key)
{
    size_t k = strlen(key);
    return strncmp(opt, key, k) == 0 && opt[k] == '=' ? opt + k + 1 : NULL;
}

static int by_path(const char *spec, int want, ds_dataset *out)
{
    struct stat st;
    const char *colon = strchr(spec, ':');
    if (stat(spec, &st) != 0) {
        int err = errno;
        size_t k = colon ? (size_t)(colon - spec) : 0;
        int word = k >= 2;
        for (size_t i = 0; i < k; i++) word &= isalnum((unsigned char)spec[i]) || spec[i] == '-';
        if (word)
            return ds_fail("data spec '%s': unknown scheme '%.*s' (use %s)", spec, (int)k, spec,
                           SPECS);
        return ds_fail("%s: cannot open: %s", spec, strerror(err));
    }
    if (ds_shards_is(spec)) return ds_shards_load(spec, out);
    if (S_ISDIR(st.st_mode)) return ds_dir_has(spec, ds_is_fits_name, 1) ? ds_fits_load(spec, NULL, want, out) : ds_folder_load(spec, out);
    if (ds_has_ext(spec, ".npy")) return ds_npy_load(spec, NULL, out);
    if (ds_has_ext(spec, ".csv") || ds_has_ext(spec, ".csv.gz")) return ds_csv_load(spec, NULL, 0, out);
    if (ds_is_fits_name(spec)) return ds_fits_load(spec, NULL, want, out);
    if (ds_has_ext(spec, ".png") || ds_has_ext(spec, ".jpg") || ds_has_ext(spec, ".jpeg"))
        return ds_image_file_load(spec, out);
    if (ds_has_ext(spec, ".gz") || strstr(spec, "idx") || strstr(spec, "ubyte"))
        return ds_fail("%s: IDX images need their labels: use idx:IMAGES,LABELS", spec);
    return ds_fail("%s: cannot tell the data format from the name; use %s", spec, SPECS);
}

/* fits:FILE|DIR[,labels=FILE][,channels=C], options in any order */
static int fits_spec(const char *spec, char *args, int want, ds_dataset *out)
{
    char *a[4];
    const char *labels = NULL, *v;
    int n = split(args, a, 3), channels = 0;
    const char *given = NULL;
    if (n > 3 || !*a[0])
        return ds_fail("data spec '%s': expected fits:FILE|DIR[,labels=FILE][,channels=C]", spec);
    for (int i = 1; i < n; i++) {
        if ((v = option(a[i], "labels")) && *v && !labels) {
            labels = v;
        } else if ((v = option(a[i], "channels")) && !given) {
            given = v;
            char *end;
            long c = strtol(v, &end, 10);
            if (end == v || *end || c < 1 || c > 4096)
                return ds_fail("data spec '%s': channels=%s is not a count from 1 to 4096", spec, v);
            channels = (int)c;
        } else {
            return ds_fail("data spec '%s': unknown or repeated option '%s' (expected "
                           "fits:FILE|DIR[,labels=FILE][,channels=C])", spec, a[i]);
        }
    }
    return ds_fits_load(a[0], labels, given ? channels : want, out);
}

#define CSV_SPEC "csv:FILE[,label=NAME|INDEX|none][,header=auto|yes|no][,skip=N][,usecols=A|B|...][,cat=COL:a|b|...]"

/* csv:FILE[,label=…][,header=…][,skip=N], options in any order, each once */
static int csv_spec(const char *spec, char *args, ds_dataset *out)
{
    char *a[7];
    const char *v;
    int n = split(args, a, 6), seen[4] = {0};
    ds_csv_opts o = {0};
    if (n > 6 || !*a[0]) return ds_fail("data spec '%s': expected %s", spec, CSV_SPEC);
    for (int i = 1; i < n; i++) {
        if ((v = option(a[i], "label")) && *v && !seen[0]++) {
            o.label = v;
        } else if ((v = option(a[i], "header")) && !seen[1]++) {
            if (!strcmp(v, "auto")) o.header = DS_CSV_HEADER_AUTO;
            else if (!strcmp(v, "yes")) o.header = DS_CSV_HEADER_YES;
            else if (!strcmp(v, "no")) o.header = DS_CSV_HEADER_NO;
            else return ds_fail("data spec '%s': header=%s; use header=auto, yes or no", spec, v);
        } else if ((v = option(a[i], "skip")) && !seen[2]++) {
            char *end;
            errno = 0;
            long k = strtol(v, &end, 10);
            if (end == v || *end || errno || k < 0 || k > 1000000000)
                return ds_fail("data spec '%s': skip=%s is not a line count from 0", spec, v);
            o.skip = (int)k;
        } else if ((v = option(a[i], "cat")) && *v && !o.categorical) {
            o.categorical = v; /* COL:a|b|c */
        } else if ((v = option(a[i], "usecols")) && *v && !seen[3]++) {
            o.usecols = v; /* names separated by '|' (',' separates the spec's options) */
        } else {
            return ds_fail("data spec '%s': unknown or repeated option '%s' (expected %s)", spec, a[i], CSV_SPEC);
        }
    }
    return ds_csv_load_opts(a[0], &o, out);
}

static int by_scheme(const char *spec, const char *scheme, char *args, int want, ds_dataset *out)
{
    if (strcmp(scheme, "fits") == 0) return fits_spec(spec, args, want, out);
    if (strcmp(scheme, "csv") == 0) return csv_spec(spec, args, out);
    char *a[3];
    int n = split(args, a, 2);
    for (int i = 0; i < n && i < 2; i++)
        if (!*a[i]) return ds_fail("data spec '%s': empty argument", spec);
    if (strcmp(scheme, "fashion-mnist") == 0) {
        if (n == 1 && strcmp(a[0], "train") == 0) return ds_fashion_mnist_load(NULL, 1, out);
        if (n == 1 && strcmp(a[0], "test") == 0) return ds_fashion_mnist_load(NULL, 0, out);
        return ds_fail("data spec '%s': expected fashion-mnist, fashion-mnist:train or "
                       "fashion-mnist:test", spec);
    }
    if (strcmp(scheme, "idx") == 0) {
        if (n != 2) return ds_fail("data spec '%s': expected idx:IMAGES,LABELS", spec);
        return ds_idx_load(a[0], a[1], out);
    }
    if (strcmp(scheme, "npy") == 0) {
        if (n > 2) return ds_fail("data spec '%s': expected npy:X[,Y]", spec);
        return ds_npy_load(a[0], n == 2 ? a[1] : NULL, out);
    }
    if (strcmp(scheme, "shards") == 0) {
        if (n != 1) return ds_fail("data spec '%s': expected shards:DIR", spec);
        return ds_shards_load(a[0], out);
    }
    if (strcmp(scheme, "folder") == 0) {
        if (n != 1) return ds_fail("data spec '%s': expected folder:DIR", spec);
        return ds_folder_load(a[0], out);
    }
    return ds_fail("data spec '%s': unknown scheme '%s'", spec, scheme);
}

int ds_data_load(const char *spec, ds_dataset *out) { return ds_data_load_channels(spec, 0, out); }

int ds_data_load_channels(const char *spec, int channels, ds_dataset *out)
{
    static const char *const schemes[] = {"fashion-mnist", "idx", "npy", "csv", "folder", "fits", "shards"};
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return ds_fail("empty data spec; use %s", SPECS);
    if (strcmp(spec, "fashion-mnist") == 0) return ds_fashion_mnist_load(NULL, 1, out);
    const char *colon = strchr(spec, ':');
    for (size_t i = 0; colon && i < sizeof schemes / sizeof *schemes; i++) {
        size_t k = strlen(schemes[i]);
        if ((size_t)(colon - spec) != k || strncmp(spec, schemes[i], k) != 0) continue;
        char *args = strdup(colon + 1);
        if (!args) return ds_fail("data spec '%s': out of memory", spec);
        int rc = by_scheme(spec, schemes[i], args, channels, out);
        free(args);
        return rc;
    }
    return by_path(spec, channels, out);
}
