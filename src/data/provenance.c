/* provenance.c — where a data set's samples came from, so that a
 * checkpoint can say what it was trained on and eval/predict can warn when
 * they are asked to score that same data (docs/design.md, "Provenance").
 *
 * Simulated stamps are named by (seed, size, index): stamp i of a seed is the
 * same whatever --n was (src/data/sim.c), so index ranges say exactly which
 * stamps two data sets share. simulate records them in the FITS headers
 * (SIMSEED/SIMINDEX per cutout, SIMSEED/NSTAMPS per cube) and, for NPY
 * arrays, in DIR/provenance.json with each file's hash. Any other file is
 * named by its path and a 64-bit FNV-1a hash of its bytes: a copy under
 * another name is still recognised. */
#include "data.h"
#include "../io/json.h"

#include <dirent.h>
#include <errno.h>
#include <fitsio.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t ds_fnv1a64(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

int ds_file_hash(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    static _Thread_local unsigned char buf[1 << 16];
    uint64_t h = DS_FNV1A64_INIT;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) h = ds_fnv1a64(buf, k, h);
    int bad = ferror(f);
    fclose(f);
    if (bad) return ds_fail("%s: read error", path);
    *out = h;
    return 0;
}

void ds_provenance_free(ds_provenance *p)
{
    for (int i = 0; i < p->n_files; i++) free(p->files[i].path);
    free(p->files);
    free(p->sim);
    memset(p, 0, sizeof *p);
}

static int add_range(ds_provenance *p, uint64_t seed, int size, long first, long end)
{
    ds_sim_range *r = realloc(p->sim, sizeof *r * (size_t)(p->n_sim + 1));
    if (!r) return ds_fail("out of memory");
    p->sim = r;
    r[p->n_sim++] = (ds_sim_range){seed, size, first, end};
    return 0;
}

static int add_file(ds_provenance *p, const char *path, uint64_t hash, long samples)
{
    ds_data_file *f = realloc(p->files, sizeof *f * (size_t)(p->n_files + 1));
    if (!f) return ds_fail("out of memory");
    p->files = f;
    if (!(f[p->n_files].path = strdup(path))) return ds_fail("out of memory");
    f[p->n_files].hash = hash, f[p->n_files].samples = samples;
    p->n_files++;
    return 0;
}

static int by_range(const void *a, const void *b)
{
    const ds_sim_range *x = a, *y = b;
    if (x->seed != y->seed) return x->seed < y->seed ? -1 : 1;
    if (x->size != y->size) return x->size < y->size ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* sort and merge overlapping or touching ranges of the same seed and size */
static void normalise(ds_provenance *p)
{
    if (p->n_sim < 2) return;
    qsort(p->sim, (size_t)p->n_sim, sizeof *p->sim, by_range);
    int k = 0;
    for (int i = 1; i < p->n_sim; i++) {
        ds_sim_range *a = &p->sim[k], *b = &p->sim[i];
        if (a->seed == b->seed && a->size == b->size && b->first <= a->end) {
            if (b->end > a->end) a->end = b->end;
        } else {
            p->sim[++k] = *b;
        }
    }
    p->n_sim = k + 1;
}

int ds_provenance_merge(ds_provenance *a, const ds_provenance *b)
{
    for (int i = 0; i < b->n_sim; i++)
        if (add_range(a, b->sim[i].seed, b->sim[i].size, b->sim[i].first, b->sim[i].end)) return -1;
    for (int i = 0; i < b->n_files; i++)
        if (add_file(a, b->files[i].path, b->files[i].hash, b->files[i].samples)) return -1;
    normalise(a);
    return 0;
}

long ds_provenance_overlap(const ds_provenance *t, const ds_provenance *d, char *why, size_t size)
{
    long sim = 0, files = 0;
    const ds_sim_range *rs = NULL;
    const ds_data_file *fs = NULL;
    for (int i = 0; i < d->n_sim; i++)
        for (int j = 0; j < t->n_sim; j++) {
            const ds_sim_range *a = &d->sim[i], *b = &t->sim[j];
            long lo = a->first > b->first ? a->first : b->first, hi = a->end < b->end ? a->end : b->end;
            if (a->seed != b->seed || a->size != b->size || hi <= lo) continue;
            sim += hi - lo;
            if (!rs) rs = b;
        }
    for (int i = 0; i < d->n_files; i++)
        for (int j = 0; j < t->n_files; j++)
            if (d->files[i].hash == t->files[j].hash) {
                files += d->files[i].samples;
                if (!fs) fs = &t->files[j];
                break;
            }
    if (why && size) {
        *why = 0;
        if (sim >= files && rs)
            snprintf(why, size, "simulate --seed %" PRIu64 " --size %d stamps %ld-%ld", rs->seed, rs->size, rs->first,
                     rs->end - 1);
        else if (fs)
            snprintf(why, size, "the same bytes as %s", fs->path);
    }
    return sim > files ? sim : files;
}

/* ---- JSON ---- */

char *ds_provenance_json(const ds_provenance *p)
{
    ds_jbuf b = {0};
    ds_jb_printf(&b, "{\"sim\": [");
    for (int i = 0; i < p->n_sim; i++)
        ds_jb_printf(&b, "%s{\"seed\": %" PRIu64 ", \"size\": %d, \"first\": %ld, \"end\": %ld}", i ? ", " : "",
                     p->sim[i].seed, p->sim[i].size, p->sim[i].first, p->sim[i].end);
    ds_jb_printf(&b, "], \"files\": [");
    for (int i = 0; i < p->n_files; i++) {
        ds_jb_printf(&b, "%s{\"path\": ", i ? ", " : "");
        ds_jb_str(&b, p->files[i].path, strlen(p->files[i].path));
        ds_jb_printf(&b, ", \"fnv1a64\": \"%016" PRIx64 "\", \"samples\": %ld}", p->files[i].hash,
                     p->files[i].samples);
    }
    ds_jb_printf(&b, "]}");
    ds_jb_put(&b, "", 1);
    if (b.oom) {
        ds_jb_free(&b);
        ds_fail("out of memory");
        return NULL;
    }
    return b.p;
}

static int hex64(const ds_json *j, uint64_t *out)
{
    if (!j || j->type != DS_JSON_STR || j->len != 16) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(j->str, &end, 16);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int get_long(const ds_json *o, const char *key, long *out)
{
    int64_t v;
    if (ds_json_i64(ds_json_get(o, key), &v) != 0 || v < 0 || v > LONG_MAX) return -1;
    *out = (long)v;
    return 0;
}

int ds_provenance_parse(const char *json, ds_provenance *out)
{
    memset(out, 0, sizeof *out);
    char err[128];
    ds_json *j = json ? ds_json_parse(json, strlen(json), err, sizeof err) : NULL;
    if (!j) return ds_fail("data provenance: bad JSON (%s)", json ? err : "none");
    const ds_json *sim = ds_json_get(j, "sim"), *files = ds_json_get(j, "files");
    int rc = -1;
    if (j->type != DS_JSON_OBJ || (sim && sim->type != DS_JSON_ARR) || (files && files->type != DS_JSON_ARR)) {
        ds_fail("data provenance: expected {\"sim\": [...], \"files\": [...]}");
        goto done;
    }
    for (int i = 0; sim && i < sim->n; i++) {
        const ds_json *e = &sim->kids[i];
        uint64_t seed;
        long size, first, end;
        if (ds_json_u64(ds_json_get(e, "seed"), &seed) || get_long(e, "size", &size) || size > INT_MAX ||
            get_long(e, "first", &first) || get_long(e, "end", &end) || end < first) {
            ds_fail("data provenance: sim entry %d needs seed, size, first and end (first <= end)", i);
            goto done;
        }
        if (add_range(out, seed, (int)size, first, end)) goto done;
    }
    for (int i = 0; files && i < files->n; i++) {
        const ds_json *e = &files->kids[i], *path = ds_json_get(e, "path");
        uint64_t h;
        long samples;
        if (!path || path->type != DS_JSON_STR || hex64(ds_json_get(e, "fnv1a64"), &h) ||
            get_long(e, "samples", &samples)) {
            ds_fail("data provenance: file entry %d needs path, fnv1a64 (16 hex digits) and samples", i);
            goto done;
        }
        if (add_file(out, path->str, h, samples)) goto done;
    }
    normalise(out);
    rc = 0;
done:
    ds_json_free(j);
    if (rc) ds_provenance_free(out);
    return rc;
}

/* ---- reading a data spec's files ---- */

/* The file or folder a spec reads its samples from (labels files aside). */
static int main_path(const char *spec, char *buf, size_t size)
{
    if (!strncmp(spec, "fashion-mnist", 13) && (!spec[13] || spec[13] == ':')) {
        const char *dir = getenv("DS_FASHION_MNIST");
        if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
        const char *set = !strcmp(spec + 13, ":test") ? "t10k" : "train";
        snprintf(buf, size, "%s/%s-images-idx3-ubyte", dir, set);
        if (access(buf, R_OK) != 0) snprintf(buf, size, "%s/%s-images-idx3-ubyte.gz", dir, set);
        return 0;
    }
    static const char *const schemes[] = {"npy:", "csv:", "fits:", "folder:", "idx:", "shards:"};
    const char *s = spec;
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (!strncmp(spec, schemes[i], strlen(schemes[i]))) s = spec + strlen(schemes[i]);
    size_t k = s == spec ? strlen(s) : strcspn(s, ",");
    if (k >= size) return ds_fail("%s: path too long", spec);
    memcpy(buf, s, k);
    buf[k] = 0;
    return 0;
}

/* What simulate wrote in a FITS header, and the image's planes. */
typedef struct {
    int sim;        /* SIMSEED present */
    long long seed, index, nstamps; /* index, nstamps: -1 when absent */
    int w, planes, c4, plane_keys;
} fits_head;

static int fits_head_read(const char *path, fits_head *fh)
{
    memset(fh, 0, sizeof *fh);
    fh->index = fh->nstamps = -1;
    fitsfile *f = NULL;
    int status = 0, hdus = 0, found = 0;
    if (fits_open_diskfile(&f, path, READONLY, &status)) {
        fits_clear_errmsg();
        return ds_fail("%s: cannot open as FITS (CFITSIO status %d)", path, status);
    }
    fits_get_num_hdus(f, &hdus, &status);
    for (int k = 1; k <= hdus && !status && !found; k++) {
        int type = 0, naxis = 0;
        if (fits_movabs_hdu(f, k, &type, &status) || type != IMAGE_HDU) continue;
        if (fits_get_img_dim(f, &naxis, &status) || naxis < 2 || naxis > 4) continue;
        LONGLONG ax[4] = {1, 1, 1, 1};
        if (fits_get_img_sizell(f, naxis, ax, &status)) break;
        fh->w = (int)ax[0], fh->planes = (int)(ax[2] * ax[3]), fh->c4 = naxis == 4 ? (int)ax[2] : 0;
        found = 1;
    }
    if (found) {
        LONGLONG v;
        char name[24];
        int st = 0;
        if (!fits_read_key(f, TLONGLONG, "SIMSEED", &v, NULL, &st)) fh->sim = 1, fh->seed = v;
        st = 0;
        if (!fits_read_key(f, TLONGLONG, "SIMINDEX", &v, NULL, &st)) fh->index = v;
        st = 0;
        if (!fits_read_key(f, TLONGLONG, "NSTAMPS", &v, NULL, &st)) fh->nstamps = v;
        char text[FLEN_VALUE];
        for (st = 0; fh->plane_keys < 64; fh->plane_keys++) {
            snprintf(name, sizeof name, "PLANE%d", fh->plane_keys + 1);
            if (fits_read_key(f, TSTRING, name, text, NULL, &st)) break;
        }
    }
    int cs = 0;
    fits_close_file(f, &cs);
    fits_clear_errmsg();
    return found ? 0 : ds_fail("%s: no HDU with image data", path);
}

/* Samples in one FITS file as the loader groups its planes (src/data/fits.c). */
static long fits_samples(const fits_head *fh, int channels)
{
    int c = fh->c4 ? fh->c4 : fh->plane_keys > 1 && fh->plane_keys == fh->planes ? fh->planes
                              : channels ? channels : 1;
    return c > 0 ? fh->planes / c : 0;
}

/* A file's simulator stamps, if its header or a provenance.json beside it
 * says; else its hash. index[0..samples) gets the stamp indices. */
static int one_file(const char *path, int channels, long samples, int hash_sim, ds_provenance *p, long *index)
{
    fits_head fh = {0};
    int is_fits = ds_is_fits_name(path);
    if (is_fits && fits_head_read(path, &fh)) return -1;
    if (is_fits && fh.sim && fh.seed >= 0) {
        long k = fits_samples(&fh, channels);
        if (samples < 0) samples = k;
        if (fh.index >= 0 && samples == 1) { /* a cutout */
            if (index) index[0] = (long)fh.index;
            if (add_range(p, (uint64_t)fh.seed, fh.w, (long)fh.index, (long)fh.index + 1)) return -1;
            if (!hash_sim) return 0;
        } else if (fh.nstamps == samples) { /* a cube of stamps 0..n-1 */
            for (long i = 0; index && i < samples; i++) index[i] = i;
            if (add_range(p, (uint64_t)fh.seed, fh.w, 0, samples)) return -1;
            if (!hash_sim) return 0;
        }
    }
    uint64_t h;
    if (ds_file_hash(path, &h)) return -1;
    if (samples < 0) samples = is_fits ? fits_samples(&fh, channels) : 1;
    if (add_file(p, path, h, samples)) return -1;
    /* DIR/provenance.json, written by simulate and demo beside their NPY files */
    char side[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path) : 1;
    if (snprintf(side, sizeof side, "%.*s/provenance.json", dl, slash ? path : ".") >= (int)sizeof side) return 0;
    size_t len;
    char *text = ds_file_read(side, (size_t)64 << 20, &len);
    if (text && len > 0) {
        char err[64];
        ds_json *j = ds_json_parse(text, len, err, sizeof err);
        const ds_json *files = j ? ds_json_get(j, "files") : NULL;
        for (int i = 0; files && files->type == DS_JSON_ARR && i < files->n; i++) {
            const ds_json *e = &files->kids[i], *sim = ds_json_get(e, "sim");
            uint64_t eh, seed;
            long first, end, size;
            if (hex64(ds_json_get(e, "fnv1a64"), &eh) || eh != h || !sim || ds_json_u64(ds_json_get(sim, "seed"), &seed) ||
                get_long(sim, "size", &size) || get_long(sim, "first", &first) || get_long(sim, "end", &end) ||
                end - first != samples)
                continue;
            for (long k = 0; index && k < samples; k++) index[k] = first + k;
            if (add_range(p, seed, (int)size, first, end)) {
                ds_json_free(j);
                free(text);
                return -1;
            }
            break;
        }
        ds_json_free(j);
    }
    free(text);
    return 0;
}

static int is_data_file(const char *name)
{
    return ds_is_fits_name(name) || ds_has_ext(name, ".png") || ds_has_ext(name, ".jpg") ||
           ds_has_ext(name, ".jpeg");
}

/* A sharded set (docs/data.md): its index.json, hashed (the shards are not
 * read: a streamed set may be larger than memory and the index names each
 * shard's size), and the simulator's stamp range when simulate wrote one
 * ("sim": {"seed", "size", "first", "end"}). */
static int shards_provenance(const char *ipath, int n, ds_provenance *p, long *index)
{
    uint64_t h;
    if (ds_file_hash(ipath, &h)) return -1;
    if (add_file(p, ipath, h, n)) return -1;
    size_t len;
    char *text = ds_file_read(ipath, (size_t)64 << 20, &len), err[64];
    ds_json *j = text ? ds_json_parse(text, len, err, sizeof err) : NULL;
    const ds_json *sim = j ? ds_json_get(j, "sim") : NULL;
    uint64_t seed;
    long first, end, size;
    int rc = 0;
    if (sim && !ds_json_u64(ds_json_get(sim, "seed"), &seed) && !get_long(sim, "size", &size) &&
        !get_long(sim, "first", &first) && !get_long(sim, "end", &end) && end - first == n) {
        for (long k = 0; index && k < n; k++) index[k] = first + k;
        rc = add_range(p, seed, (int)size, first, end);
    }
    ds_json_free(j);
    free(text);
    return rc;
}

int ds_provenance_of(const char *spec, int channels, int n, ds_provenance *out, long **index)
{
    memset(out, 0, sizeof *out);
    if (index) *index = NULL;
    char path[PATH_MAX];
    if (!spec || main_path(spec, path, sizeof path)) return -1;
    long *idx = NULL;
    if (index && !(idx = malloc(sizeof *idx * (size_t)(n > 0 ? n : 1)))) return ds_fail("out of memory");
    for (int i = 0; idx && i < n; i++) idx[i] = -1;
    struct stat st;
    int rc = -1;
    if (stat(path, &st) != 0) {
        ds_fail("%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    char ipath[PATH_MAX + 16];
    size_t pl = strlen(path);
    snprintf(ipath, sizeof ipath, S_ISDIR(st.st_mode) ? "%s/index.json" : "%s", path);
    if ((S_ISDIR(st.st_mode) && access(ipath, R_OK) == 0) || (pl >= 10 && !strcmp(path + pl - 10, "index.json"))) {
        if (shards_provenance(ipath, n, out, idx)) goto done;
    } else if (S_ISDIR(st.st_mode)) {
        ds_file_list l;
        if (ds_class_files(path, is_data_file, "FITS or PNG/JPEG", &l)) goto done;
        long k = 0;
        for (int i = 0; i < l.n; i++) {
            fits_head fh;
            long s = 1;
            if (ds_is_fits_name(l.paths[i])) {
                if (fits_head_read(l.paths[i], &fh)) {
                    ds_file_list_free(&l);
                    goto done;
                }
                s = fits_samples(&fh, channels);
            }
            /* a folder's cutouts are many small files: their headers name them, no hash needed */
            if (one_file(l.paths[i], channels, s, 0, out, idx && k + s <= n ? idx + k : NULL)) {
                ds_file_list_free(&l);
                goto done;
            }
            k += s;
        }
        ds_file_list_free(&l);
        if (k != n && idx) /* the loader grouped the planes otherwise: no per-sample indices */
            for (int i = 0; i < n; i++) idx[i] = -1;
    } else if (one_file(path, channels, n, 1, out, idx)) {
        goto done;
    }
    normalise(out);
    rc = 0;
done:
    if (rc) {
        ds_provenance_free(out);
        free(idx);
    } else if (index) {
        *index = idx;
    }
    return rc;
}

/* ---- simulate's sidecar ---- */

int ds_provenance_sidecar_add(const char *dir, const char *file, uint64_t seed, int size, int channels,
                              long first, long samples)
{
    char path[PATH_MAX], side[PATH_MAX], tmp[PATH_MAX + 8];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path ||
        snprintf(side, sizeof side, "%s/provenance.json", dir) >= (int)sizeof side)
        return ds_fail("%s: path too long", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", side);
    uint64_t h;
    if (ds_file_hash(path, &h)) return -1;
    /* the entries already there, except this file's */
    ds_json *old = NULL;
    size_t len;
    char *text = ds_file_read(side, (size_t)64 << 20, &len);
    if (text && len > 0) {
        char err[64];
        old = ds_json_parse(text, len, err, sizeof err);
    }
    free(text);
    ds_jbuf b = {0};
    ds_jb_printf(&b, "{\"format\": \"deepsky provenance 1\",\n \"files\": [\n");
    const ds_json *files = old ? ds_json_get(old, "files") : NULL;
    int k = 0;
    for (int i = 0; files && files->type == DS_JSON_ARR && i < files->n; i++) {
        const ds_json *e = &files->kids[i], *name = ds_json_get(e, "file"), *sim = ds_json_get(e, "sim");
        uint64_t eh, s;
        long sz, c, a, z, m;
        if (!name || name->type != DS_JSON_STR || !strcmp(name->str, file) || hex64(ds_json_get(e, "fnv1a64"), &eh) ||
            !sim || ds_json_u64(ds_json_get(sim, "seed"), &s) || get_long(sim, "size", &sz) ||
            get_long(sim, "channels", &c) || get_long(sim, "first", &a) || get_long(sim, "end", &z) ||
            get_long(e, "samples", &m))
            continue;
        ds_jb_printf(&b, "%s  {\"file\": ", k++ ? ",\n" : "");
        ds_jb_str(&b, name->str, name->len);
        ds_jb_printf(&b,
                     ", \"fnv1a64\": \"%016" PRIx64 "\", \"samples\": %ld, \"sim\": {\"seed\": %" PRIu64
                     ", \"size\": %ld, \"channels\": %ld, \"first\": %ld, \"end\": %ld}}",
                     eh, m, s, sz, c, a, z);
    }
    ds_json_free(old);
    ds_jb_printf(&b, "%s  {\"file\": ", k ? ",\n" : "");
    ds_jb_str(&b, file, strlen(file));
    ds_jb_printf(&b,
                 ", \"fnv1a64\": \"%016" PRIx64 "\", \"samples\": %ld, \"sim\": {\"seed\": %" PRIu64
                 ", \"size\": %d, \"channels\": %d, \"first\": %ld, \"end\": %ld}}\n ]}\n",
                 h, samples, seed, size, channels, first, first + samples);
    if (b.oom) {
        ds_jb_free(&b);
        return ds_fail("out of memory");
    }
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = ds_fail("%s: cannot write: %s", tmp, strerror(errno));
    } else {
        int bad = fwrite(b.p, 1, b.len, f) != b.len;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, side) != 0) {
            rc = ds_fail("%s: cannot write: %s", side, strerror(errno));
            remove(tmp); /* ours: created just above */
        }
    }
    ds_jb_free(&b);
    return rc;
}

/* ---- simulate's output folder ---- */

static const char *const sim_files[] = {"x.npy",           "y.npy",        "y.csv",          "footprint.npy",
                                        "labels.csv",      "meta.csv",     "provenance.json", "science.fits",
                                        "reference.fits", "difference.fits"};

/* <digits>.fits, as simulate names its cutouts */
static int is_cutout_name(const char *name)
{
    size_t k = strspn(name, "0123456789");
    return k > 0 && !strcmp(name + k, ".fits");
}

/* Entries in dir other than . and ..; -1 if it cannot be read. */
static int entries(const char *dir, int *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) (*n)++;
    closedir(d);
    return 0;
}

int ds_sim_out_prepare(const char *dir, int force, int *removed)
{
    int n, gone = 0;
    char p[PATH_MAX];
    if (removed) *removed = 0;
    struct stat st;
    if (stat(dir, &st) != 0) return 0; /* made later */
    if (!S_ISDIR(st.st_mode)) return ds_fail("%s: not a folder", dir);
    if (entries(dir, &n)) return ds_fail("%s: cannot read the folder: %s", dir, strerror(errno));
    if (n == 0) return 0;
    if (!force)
        return ds_fail("%s is not empty (%d entr%s): new stamps beside old ones would mix two data sets; give a new "
                       "or empty --out, or --force to replace simulate's own files there",
                       dir, n, n == 1 ? "y" : "ies");
    for (size_t i = 0; i < sizeof sim_files / sizeof *sim_files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, sim_files[i]);
        if (unlink(p) == 0) gone++;
        else if (errno != ENOENT) return ds_fail("%s: cannot remove: %s", p, strerror(errno));
    }
    for (int k = 0; k < 2; k++) {
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/cutouts/%s", dir, k ? "real" : "bogus") >= (int)sizeof sub)
            return ds_fail("%s: path too long", dir);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        int rc = 0;
        while (!rc && (e = readdir(d))) {
            if (!is_cutout_name(e->d_name)) continue;
            if (snprintf(p, sizeof p, "%s/%s", sub, e->d_name) >= (int)sizeof p) continue;
            if (unlink(p) == 0) gone++;
            else rc = ds_fail("%s: cannot remove: %s", p, strerror(errno));
        }
        closedir(d);
        if (rc) return -1;
        rmdir(sub); /* only if nothing else is left in it */
    }
    snprintf(p, sizeof p, "%s/cutouts", dir);
    rmdir(p);
    if (removed) *removed = gone;
    return 0;
}
