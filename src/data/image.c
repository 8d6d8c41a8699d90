/* image.c — folders of PNG/JPEG images, one sub-folder per class (stb_image;
 * the class-folder walk, shared with FITS directories, is in files.c).
 *
 * Grayscale → [1,H,W], RGB → [3,H,W]; an alpha channel is dropped. Pixels are
 * scaled by 1/255. Every image must have the size and channels of the first. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decoder lives here and nowhere else; PNG and JPEG only. */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "stb_image.h"
#pragma GCC diagnostic pop

static int is_image(const char *name)
{
    return ds_has_ext(name, ".png") || ds_has_ext(name, ".jpg") || ds_has_ext(name, ".jpeg");
}

/* stb_image 2.27 (Debian's) writes past its Huffman tables when a JPEG DHT
 * segment's code counts sum past 256 (nothings/stb#1289), and decodes a scan
 * with a Huffman table no DHT defined from uninitialised memory (an index of
 * 1.3e9 into a 257-entry table; found by fuzz_image), so such files are
 * refused first. The walk mirrors stb's: markers are FF xx with xx not 00,
 * RSTn or FF; segments are skipped by length; DHT tables are read while the
 * segment length lasts, as stb does, even past the end of the segment. A
 * scan needs the DC tables of its components when it starts at coefficient
 * 0 and their AC tables when it ends past it (Ss, Se: a progressive DC scan
 * needs no AC table). */
static int jpeg_tables_ok(const unsigned char *b, size_t n)
{
    unsigned char defined[2][16] = {{0}}; /* [class: 0 DC, 1 AC][table id] */
    for (size_t i = 2; i + 1 < n;) {
        unsigned m = b[i + 1];
        if (b[i] != 0xff || m == 0xff) {
            i++;
            continue;
        }
        if (m == 0x00 || m == 0x01 || (m >= 0xd0 && m <= 0xd8)) {
            i += 2;
            continue;
        }
        if (m == 0xd9 || i + 3 >= n) return 1;
        long len = (long)b[i + 2] << 8 | b[i + 3];
        if (m == 0xc4)
            for (size_t p = i + 4, left = (size_t)(len > 2 ? len - 2 : 0); left > 0;) {
                size_t sum = 0;
                if (p < n) defined[(b[p] >> 4) & 1][b[p] & 15] = 1;
                for (size_t k = 1; k <= 16; k++) sum += p + k < n ? b[p + k] : 0;
                if (sum > 256) return 0;
                p += 17 + sum;
                left = left > 17 + sum ? left - (17 + sum) : 0;
            }
        if (m == 0xda && i + 4 < n) {
            size_t ns = b[i + 4], at = i + 5 + 2 * ns;
            int ss = at < n ? b[at] : 0, se = at + 1 < n ? b[at + 1] : 63;
            for (size_t k = 0; k < ns && i + 6 + 2 * k < n; k++) {
                unsigned t = b[i + 6 + 2 * k];
                if ((ss == 0 && !defined[0][t >> 4]) || (se > 0 && !defined[1][t & 15])) return 0;
            }
        }
        i += 2 + (size_t)len;
    }
    return 1;
}

/* The header's width × height × channels must fit what the file can hold
 * (PNG is deflate, 1032:1 at most; JPEG's ratio is lower) before stb
 * allocates them: a 100-byte PNG saying 20000×20000 would cost 400 MB. */
static int size_ok(const char *path, const unsigned char *buf, size_t size)
{
    int w, h, c;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &c)) return 1; /* stb reports what is wrong */
    uint64_t need = (uint64_t)w * (uint64_t)h * (uint64_t)c, cap = (uint64_t)size * DS_MAX_EXPANSION;
    if (need <= (cap > DS_MIN_EXPANDED ? cap : DS_MIN_EXPANDED)) return 1;
    ds_fail("%s: the header declares %dx%d pixels of %d channels (%llu bytes), more than a %zu-byte image file "
            "can hold", path, w, h, c, (unsigned long long)need, size);
    return 0;
}

/* A PNG's chunks before stb sees them: a chunk claiming more bytes than the
 * file has left is refused (stb grows its data buffer to the claim first:
 * a 70-byte file made it allocate 2 GB), and empty IDAT chunks are dropped
 * in place (legal and empty, but stb then offsets its still-NULL data
 * buffer: undefined behaviour); both found by fuzz_image. *size is
 * updated; 0 on success (a file that is not a PNG is left alone). */
static int png_chunks(const char *path, unsigned char *b, size_t *size)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = *size;
    if (n < 8 || memcmp(b, sig, 8)) return 0;
    size_t at = 8;
    while (n - at >= 8) { /* a chunk's length and type: the rest must hold its data and CRC */
        uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if (n - at < 12 || len > n - at - 12) {
            ds_fail("%s: truncated PNG: chunk '%.4s' at byte %zu needs %llu bytes, the file has %zu left", path,
                    (const char *)b + at + 4, at, 12ULL + len, n - at);
            return -1;
        }
        if (len == 0 && !memcmp(b + at + 4, "IDAT", 4)) {
            memmove(b + at, b + at + 12, n - at - 12);
            n -= 12;
            continue;
        }
        if (!memcmp(b + at + 4, "IEND", 4)) break;
        at += 12 + (size_t)len;
    }
    *size = n;
    return 0;
}

/* Whether b is a JPEG as stb sees it: FF D8, after any number of extra FF
 * fill bytes (stb's marker reader skips them); *soi: where FF D8 starts. */
static int jpeg_start(const unsigned char *b, size_t n, size_t *soi)
{
    size_t i = 0;
    while (i < n && b[i] == 0xff) i++;
    *soi = i ? i - 1 : 0;
    return i >= 1 && i < n && b[i] == 0xd8;
}

/* Decoded pixels [h, w, raw] of the encoded image buf[0, size) (stbi_image_free
 * them; buf may be changed: png_chunks); *c = raw less alpha. */
static unsigned char *decode_bytes(const char *path, unsigned char *buf, size_t size, int *w, int *h, int *c, int *raw)
{
    unsigned char *px = NULL;
    size_t soi = 0, n = size;
    if (size > INT_MAX)
        ds_fail("%s: cannot decode an image over 2 GiB", path);
    else if (jpeg_start(buf, size, &soi) && !jpeg_tables_ok(buf + soi, size - soi))
        ds_fail("%s: cannot decode image: corrupt JPEG (bad or missing Huffman table)", path);
    else if (png_chunks(path, buf, &n) != 0 || !size_ok(path, buf, n))
        ; /* the message is set */
    else if (!(px = stbi_load_from_memory(buf, (int)n, w, h, raw, 0)))
        ds_fail("%s: cannot decode image: %s", path, stbi_failure_reason());
    if (px) *c = *raw == 2 || *raw == 4 ? *raw - 1 : *raw;
    return px;
}

/* The same for a file. */
static unsigned char *decode(const char *path, int *w, int *h, int *c, int *raw)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ds_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = NULL, *px = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || size > INT_MAX || fseek(f, 0, SEEK_SET) != 0)
        ds_fail("%s: cannot read (not a regular file, or over 2 GiB)", path);
    else if (!(buf = malloc(size ? (size_t)size : 1)))
        ds_fail("%s: out of memory for %ld bytes", path, size);
    else if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        ds_fail("%s: read error: %s", path, strerror(errno));
    else
        px = decode_bytes(path, buf, (size_t)size, w, h, c, raw);
    fclose(f);
    free(buf);
    return px;
}

/* HWC bytes (raw channels per pixel) → CHW floats /255, first c channels. */
static void to_chw(float *dst, const unsigned char *px, int w, int h, int c, int raw)
{
    size_t hw = (size_t)w * h;
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < hw; i++) dst[ch * hw + i] = px[i * raw + ch] / 255.0f;
}

int ds_folder_load(const char *dir, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    ds_file_list l;
    if (ds_class_files(dir, is_image, "PNG/JPEG", &l)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ds_last_error());
        return strstr(msg, "no PNG/JPEG files") ? ds_fail("%s (for FITS use fits:DIR)", msg) : -1;
    }
    int w0 = 0, h0 = 0, c0 = 0;
    size_t per = 0;
    for (int i = 0; i < l.n; i++) {
        int w, h, c, raw;
        unsigned char *px = decode(l.paths[i], &w, &h, &c, &raw);
        if (!px) goto fail;
        if (i == 0) {
            w0 = w, h0 = h, c0 = c;
            per = (size_t)w * h * c;
            if (ds_dataset_alloc(out, l.n, ds_shape_of(3, c, h, w), dir)) {
                stbi_image_free(px);
                goto fail;
            }
        } else if (w != w0 || h != h0 || c != c0) {
            ds_fail("%s: %dx%d pixels with %d channel%s, but %s is %dx%d with %d; all images "
                    "must have the same size and channels", l.paths[i], w, h, c,
                    c == 1 ? "" : "s", l.paths[0], w0, h0, c0);
            stbi_image_free(px);
            goto fail;
        }
        to_chw(out->x + (size_t)i * per, px, w, h, c, raw);
        stbi_image_free(px);
        out->y[i] = (float)l.label[i];
    }
    out->classes = l.classes;
    out->class_names = l.class_names;
    l.class_names = NULL, l.classes = 0;
    ds_file_list_free(&l);
    return 0;
fail:
    ds_file_list_free(&l);
    ds_dataset_free(out);
    return -1;
}

/* one image's pixels px as a one-sample dataset [c, h, w] in [0, 1] */
static int image_dataset(const char *path, unsigned char *px, int w, int h, int c, int raw, ds_dataset *out)
{
    int rc = ds_dataset_alloc(out, 1, ds_shape_of(3, c, h, w), path);
    if (rc == 0) to_chw(out->x, px, w, h, c, raw);
    stbi_image_free(px);
    return rc;
}

int ds_image_load_mem(const void *data, size_t size, const char *name, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf = malloc(size ? size : 1); /* a copy: png_chunks edits the bytes in place */
    if (!buf) return ds_fail("%s: out of memory for %zu bytes", name, size);
    memcpy(buf, data, size);
    int w, h, c, raw;
    unsigned char *px = decode_bytes(name, buf, size, &w, &h, &c, &raw);
    free(buf);
    return px ? image_dataset(name, px, w, h, c, raw, out) : -1;
}

int ds_image_file_load(const char *path, ds_dataset *out)
{
    memset(out, 0, sizeof *out);
    int w, h, c, raw;
    unsigned char *px = decode(path, &w, &h, &c, &raw);
    return px ? image_dataset(path, px, w, h, c, raw, out) : -1;
}
