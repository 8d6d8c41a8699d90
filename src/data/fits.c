/* fits.c — FITS images and cubes through CFITSIO.
 *
 * The first HDU holding image data is read (so tile-compressed .fz files
 * work): a 2-D image [H,W] is one sample [1,H,W]; a 3-D cube [N,H,W] is N
 * one-channel samples, or with channels=C, N/C samples of C consecutive
 * planes (a science/reference/difference triplet is one 3-plane cutout); a
 * 4-D array [N,C,H,W] is N samples of C channels. BSCALE/BZERO are applied.
 * NaN pixels (and integer BLANK pixels) become 0: survey cutouts mark
 * missing or masked pixels with NaN, and 0 is the background after sky
 * subtraction. ±Inf is an error naming the pixel. Paths are taken literally
 * (no CFITSIO "file.fits[1]" syntax). */
#include "data.h"

#include <errno.h>
#include <fitsio.h>
#include <inttypes.h>
#include <stdio.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Error from CFITSIO's status; its message stack is cleared. */
static int fits_fail(const char *path, const char *what, int status)
{
    char text[FLEN_STATUS];
    fits_get_errstatus(status, text);
    fits_clear_errmsg();
    return ds_fail("%s: %s: %s (CFITSIO status %d)", path, what, text, status);
}

static void fits_close(fitsfile *f)
{
    int status = 0;
    if (f) fits_close_file(f, &status);
    fits_clear_errmsg();
}

/* The pixels the current HDU declares must be in the file before a buffer
 * is allocated for them (a 46 KB file saying NAXIS3 = 1000000 once cost
 * 1 GB): uncompressed, every byte is in the file (for .gz, CFITSIO's
 * decompressed copy); tile-compressed (.fz), at most DS_MAX_EXPANSION
 * times the stored bytes. */
static int check_declared_size(fitsfile *f, const char *path, int hdu, const LONGLONG ax[4])
{
    int status = 0, bitpix = 0;
    LONGLONG head, data, end, file = f->Fptr->logfilesize;
    uint64_t pixels = (uint64_t)ax[0] * (uint64_t)ax[1] * (uint64_t)ax[2] * (uint64_t)ax[3];
    if (fits_get_hduaddrll(f, &head, &data, &end, &status) || fits_get_img_equivtype(f, &bitpix, &status))
        return fits_fail(path, "cannot read the HDU header", status);
    int compressed = fits_is_compressed_image(f, &status);
    uint64_t need = pixels * (uint64_t)(bitpix < 0 ? -bitpix : bitpix) / 8;
    if (!compressed && (uint64_t)data + need > (uint64_t)file)
        return ds_fail("%s: HDU %d declares %lld×%lld×%lld×%lld pixels (%llu bytes) but the file has only %lld bytes "
                       "after its header; the file is truncated or its NAXISn keywords are wrong",
                       path, hdu, (long long)ax[0], (long long)ax[1], (long long)ax[2], (long long)ax[3],
                       (unsigned long long)need, (long long)(file > data ? file - data : 0));
    uint64_t stored = end > data ? (uint64_t)(end - data) : 0, cap = stored * DS_MAX_EXPANSION;
    if (compressed && pixels * sizeof(float) > (cap > DS_MIN_EXPANDED ? cap : DS_MIN_EXPANDED))
        return ds_fail("%s: HDU %d declares %llu pixels, more than %llu bytes of compressed data can hold "
                       "(at most %d:1)", path, hdu, (unsigned long long)pixels, (unsigned long long)stored,
                       DS_MAX_EXPANSION);
    return 0;
}

/* What CFITSIO may open: a FITS file starts with the card "SIMPLE  =" (the
 * standard's first keyword), else it must be gzip or zip. CFITSIO also
 * guesses bzip2, pack, compress and LZH from two magic bytes and
 * decompresses into memory, trusting the sizes it finds: a 12-byte file
 * starting "BZ" made it read 2,880 bytes from a 36-byte buffer (found by
 * fuzz_fits), so those are refused. A gzip or zip file's own size claim
 * (gzip's trailer, zip's header at byte 22) is what CFITSIO allocates: a
 * 150-byte file could make it allocate 4 GB, and a claim under one FITS
 * block makes it read past its buffer. Deflate expands at most 1032:1, so
 * a claim beyond that, or under 2,880 bytes, is a corrupt file. */
static int check_container(const char *path, const struct stat *st)
{
    FILE *f = fopen(path, "rb");
    unsigned char b[26] = {0}, t[4] = {0};
    if (!f) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(b, 1, sizeof b, f);
    uint64_t claim = 0, size = (uint64_t)st->st_size;
    int gz = n >= 2 && b[0] == 0x1f && b[1] == 0x8b, zip = n >= 2 && b[0] == 'P' && b[1] == 'K';
    if (gz && size >= 4 && fseek(f, -4, SEEK_END) == 0 && fread(t, 1, 4, f) == 4)
        claim = t[0] | (uint64_t)t[1] << 8 | (uint64_t)t[2] << 16 | (uint64_t)t[3] << 24;
    /* ISIZE is the size mod 2^32: CFITSIO reads one below the compressed
     * size as a file over 4 GB and allocates 2^32 more */
    if (gz && claim < size) claim += (uint64_t)1 << 32;
    if (zip) claim = b[22] | (uint64_t)b[23] << 8 | (uint64_t)b[24] << 16 | (uint64_t)b[25] << 24;
    fclose(f);
    if (!gz && !zip) {
        if (n >= 9 && !memcmp(b, "SIMPLE  =", 9)) return 0;
        return ds_fail("%s: not a FITS file (it does not begin with the card 'SIMPLE  =', and is not gzip- or "
                       "zip-compressed)", path);
    }
    if (claim > DS_MAX_EXPANSION * size + 65536 || claim < 2880)
        return ds_fail("%s: corrupt %s file: it claims %" PRIu64 " bytes uncompressed from %" PRIu64
                       " compressed (a FITS file has at least 2880; deflate expands at most 1032 times)",
                       path, gz ? "gzip" : "zip", claim, size);
    return 0;
}

/* Opens path at its first HDU with image data: `planes` planes of h×w
 * pixels; *c4 is NAXIS3 of a 4-D array [N,C,H,W], else 0. */
static int open_image(const char *path, fitsfile **fp, int *planes, int *h, int *w, int *c4)
{
    struct stat st;
    *fp = NULL;
    if (stat(path, &st) != 0) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    int status = 0, hdus = 0;
    if (check_container(path, &st)) return -1;
    if (fits_open_diskfile(fp, path, READONLY, &status))
        return fits_fail(path, "cannot open as FITS", status);
    fits_get_num_hdus(*fp, &hdus, &status);
    for (int k = 1; k <= hdus && !status; k++) {
        int type = 0, naxis = 0;
        if (fits_movabs_hdu(*fp, k, &type, &status) || type != IMAGE_HDU) continue;
        if (fits_get_img_dim(*fp, &naxis, &status) || naxis == 0) continue;
        LONGLONG ax[4] = {1, 1, 1, 1};
        if (naxis > 4) {
            fits_close(*fp);
            *fp = NULL;
            return ds_fail("%s: HDU %d has %d axes; expected a 2-D image, a 3-D cube [N,H,W] or a 4-D "
                           "array [N,C,H,W]", path, k, naxis);
        }
        if (fits_get_img_sizell(*fp, naxis, ax, &status)) break;
        if (naxis == 1 || ax[0] > INT_MAX || ax[1] > INT_MAX || ax[2] * ax[3] > INT_MAX) {
            fits_close(*fp);
            *fp = NULL;
            return ds_fail("%s: HDU %d: image of size %lld×%lld×%lld×%lld is not 2-, 3- or 4-D, or too "
                           "large", path, k, (long long)ax[0], (long long)ax[1],
                           (long long)ax[2], (long long)ax[3]);
        }
        if (check_declared_size(*fp, path, k, ax) != 0) {
            fits_close(*fp);
            *fp = NULL;
            return -1;
        }
        /* FITS lists the fastest axis first: NAXIS1 = width. */
        *w = (int)ax[0], *h = (int)ax[1], *planes = (int)(ax[2] * ax[3]);
        *c4 = naxis == 4 ? (int)ax[2] : 0;
        return 0;
    }
    int rc = status ? fits_fail(path, "cannot read the HDUs", status)
                    : ds_fail("%s: no HDU with image data", path);
    fits_close(*fp);
    *fp = NULL;
    return rc;
}

/* The planes of one cutout named in its header (PLANE1..PLANEk, as simulate
 * writes them): k when there are as many names as planes (k > 1), else 0;
 * names gets "science, reference, difference". */
static int named_planes(fitsfile *f, int planes, char *names, size_t size)
{
    int k = 0, status = 0;
    size_t used = 0;
    names[0] = 0;
    for (; k < planes && k < 64; k++) {
        char key[16], v[FLEN_VALUE];
        snprintf(key, sizeof key, "PLANE%d", k + 1);
        if (fits_read_key(f, TSTRING, key, v, NULL, &status)) break;
        used += (size_t)snprintf(names + used, used < size ? size - used : 0, "%s%s", k ? ", " : "", v);
    }
    fits_clear_errmsg();
    return k > 1 && k == planes ? k : 0;
}

/* Channels per sample: a 4-D array's NAXIS3; a cutout whose header names
 * each of its planes is one sample of them all (a model asking for another
 * count is refused rather than fed each plane as a sample); else `want`
 * (0: 1). */
static int sample_channels(const char *path, fitsfile *f, int planes, int c4, int want, int *c)
{
    char names[256];
    int named = c4 ? 0 : named_planes(f, planes, names, sizeof names);
    if (named && want && want != named)
        return ds_fail("%s: one cutout of %d planes (%s: PLANE1..PLANE%d), but samples of %d channel%s were asked "
                       "for (the model's input or channels=): its planes are not separate samples; use a model "
                       "with %d input channels, or cutouts of %d plane%s",
                       path, named, names, named, want, want == 1 ? "" : "s", named, want, want == 1 ? "" : "s");
    *c = c4 ? c4 : named ? named : want ? want : 1;
    if (c4 && want && c4 != want)
        return ds_fail("%s: a 4-D array of %d channels, but channels=%d was asked for", path, c4, want);
    if (planes % *c)
        return ds_fail("%s: %d image planes do not make samples of %d channels (channels=%d)", path, planes, *c,
                       *c);
    return 0;
}

/* Reads the open image (n×h×w pixels) into x; NaN → 0, ±Inf an error. */
static int read_pixels(fitsfile *f, const char *path, int n, int h, int w, float *x)
{
    LONGLONG first[4] = {1, 1, 1, 1}, count = (LONGLONG)n * h * w;
    float nul = NAN;
    int status = 0, anynul = 0, bitpix = 0;
    /* CFITSIO's null check would turn ±Inf into the null value too, so float
     * data is read unchecked; integer data maps its BLANK value to NaN. */
    if (fits_get_img_type(f, &bitpix, &status) ||
        fits_read_pixll(f, TFLOAT, first, count, bitpix < 0 ? NULL : &nul, x, &anynul, &status))
        return fits_fail(path, "cannot read pixels", status);
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < (size_t)count; i++) {
        if (isnan(x[i])) x[i] = 0;
        else if (isinf(x[i]))
            return ds_fail("%s: sample %zu, pixel x=%zu y=%zu (from 0) is %cInf; FITS pixels "
                           "must be finite (NaN is read as 0)", path, i / plane,
                           i % plane % (size_t)w, i % plane / (size_t)w, x[i] > 0 ? '+' : '-');
    }
    return 0;
}

/* One FILE (image or cube), with labels from a labels file or none. */
static int load_file(const char *path, const char *labels, int channels, ds_dataset *out)
{
    fitsfile *f;
    int planes, h, w, c4, c;
    ds_dataset lab = {0};
    if (open_image(path, &f, &planes, &h, &w, &c4)) return -1;
    if (sample_channels(path, f, planes, c4, channels, &c) ||
        ds_dataset_alloc(out, planes / c, ds_shape_of(3, c, h, w), path) ||
        read_pixels(f, path, planes, h, w, out->x))
        goto fail;
    fits_close(f), f = NULL;
    if (!labels) return 0;
    if (ds_labels_read(labels, &lab)) goto fail;
    if (lab.n != out->n) {
        ds_fail("count mismatch: %s has %d images but %s has %d labels", path, out->n, labels, lab.n);
        goto fail;
    }
    free(out->y);
    out->y = lab.y;
    out->classes = lab.classes;
    out->class_names = lab.class_names;
    return 0;
fail:
    fits_close(f);
    ds_dataset_free(&lab);
    ds_dataset_free(out);
    return -1;
}

int ds_is_fits_name(const char *name)
{
    /* CFITSIO reads gzip'd FITS files, so .fits.gz is a FITS name */
    static const char *const ext[] = {".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz", ".fts.gz"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (ds_has_ext(name, ext[i])) return 1;
    return 0;
}

/* DIR/<class>/<image>.fits: each file's samples (1 for an image or one
 * cutout of C planes, more for a cube) take the class of its folder. Two
 * passes: sizes, then pixels. */
static int load_dir(const char *dir, int channels, ds_dataset *out)
{
    ds_file_list l;
    if (ds_class_files(dir, ds_is_fits_name, "FITS", &l)) return -1;
    int *count = calloc((size_t)l.n, sizeof *count), total = 0, w0 = 0, h0 = 0, c0 = 0;
    if (!count) {
        ds_file_list_free(&l);
        return ds_fail("%s: out of memory", dir);
    }
    for (int i = 0; i < l.n; i++) {
        fitsfile *f;
        int h, w, c4, c;
        if (open_image(l.paths[i], &f, &count[i], &h, &w, &c4)) goto fail;
        int bad = sample_channels(l.paths[i], f, count[i], c4, channels, &c);
        fits_close(f);
        if (bad) goto fail;
        if (i == 0) w0 = w, h0 = h, c0 = c;
        if (w != w0 || h != h0) {
            ds_fail("%s: %dx%d pixels, but %s is %dx%d; all images must have the same size", l.paths[i], w, h,
                    l.paths[0], w0, h0);
            goto fail;
        }
        if (c != c0) {
            ds_fail("%s: samples of %d channels, but %s has %d", l.paths[i], c, l.paths[0], c0);
            goto fail;
        }
        if (count[i] > INT_MAX - total) {
            ds_fail("%s: too many samples", dir);
            goto fail;
        }
        total += count[i];
    }
    if (ds_dataset_alloc(out, total / c0, ds_shape_of(3, c0, h0, w0), dir)) goto fail;
    size_t plane = (size_t)h0 * w0;
    for (int i = 0, k = 0; i < l.n; k += count[i++]) {
        fitsfile *f;
        int n, h, w, c4;
        if (open_image(l.paths[i], &f, &n, &h, &w, &c4)) goto fail;
        /* the file may have changed between the passes */
        int rc = n != count[i] || h != h0 || w != w0
                     ? ds_fail("%s: changed while being read", l.paths[i])
                     : read_pixels(f, l.paths[i], n, h, w, out->x + (size_t)k * plane);
        fits_close(f);
        if (rc) goto fail;
        for (int j = 0; j < n / c0; j++) out->y[k / c0 + j] = (float)l.label[i];
    }
    out->classes = l.classes;
    out->class_names = l.class_names;
    l.class_names = NULL, l.classes = 0;
    free(count);
    ds_file_list_free(&l);
    return 0;
fail:
    free(count);
    ds_file_list_free(&l);
    ds_dataset_free(out);
    return -1;
}

int ds_fits_load(const char *path, const char *labels, int channels, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (channels < 0) return ds_fail("%s: channels=%d; give a count of 1 or more", path, channels);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (labels)
            return ds_fail("%s: labels=%s applies to a FITS file; a directory's labels are its "
                           "class sub-folders", path, labels);
        return load_dir(path, channels, out);
    }
    return load_file(path, labels, channels, out);
}

/* A float32 image of naxis axes, dims slowest first ([h, w], [n, h, w] or
 * [n, c, h, w]), with header keywords; written to a temporary file and
 * renamed (ds_atomic_open): never half a file. */
int ds_fits_write(const char *path, int naxis, const int *dims, const float *x, const ds_fits_key *keys, int nkeys)
{
    if (!path || naxis < 2 || naxis > 4 || !dims || !x) return ds_fail("ds_fits_write: nothing to write");
    long ax[4];
    LONGLONG count = 1;
    for (int k = 0; k < naxis; k++) {
        if (dims[k] < 1) return ds_fail("%s: axis %d has size %d", path, k, dims[k]);
        ax[naxis - 1 - k] = dims[k]; /* NAXIS1 is the fastest */
        count *= dims[k];
    }
    /* CFITSIO writes by name: ds_atomic_open reserves the temporary file
     * (ours, so '!' may overwrite it), commit fsyncs and renames it */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ds_fail("%s: not a regular file; FITS is written to files only", path);
    ds_atomic a;
    if (ds_atomic_open(&a, path) != 0) return -1;
    fclose(a.f);
    a.f = NULL;
    char name[PATH_MAX + 2];
    if (snprintf(name, sizeof name, "!%s", a.tmp) >= (int)sizeof name) {
        ds_fail("%s: path too long", path);
        ds_atomic_abort(&a);
        return -1;
    }
    fitsfile *f = NULL;
    int status = 0;
    if (fits_create_file(&f, name, &status) || fits_create_img(f, FLOAT_IMG, naxis, ax, &status)) {
        if (f) fits_close_file(f, &(int){0});
        ds_atomic_abort(&a);
        return fits_fail(path, "cannot create", status);
    }
    for (int k = 0; k < nkeys && !status; k++) {
        const ds_fits_key *kk = &keys[k];
        if (kk->type == 's') {
            fits_update_key(f, TSTRING, kk->name, (void *)kk->text, kk->comment, &status);
        } else if (kk->type == 'i') {
            LONGLONG v = (LONGLONG)kk->value;
            fits_update_key(f, TLONGLONG, kk->name, &v, kk->comment, &status);
        } else {
            fits_update_key_dbl(f, kk->name, kk->value, -9, kk->comment, &status); /* 9 significant digits */
        }
    }
    LONGLONG first[4] = {1, 1, 1, 1};
    if (!status) fits_write_pixll(f, TFLOAT, first, count, (void *)x, &status);
    int cstatus = 0;
    fits_close_file(f, &cstatus);
    if (status || cstatus) {
        ds_atomic_abort(&a);
        return fits_fail(path, "cannot write", status ? status : cstatus);
    }
    if (ds_atomic_commit(&a) != 0) return -1;
    return 0;
}
