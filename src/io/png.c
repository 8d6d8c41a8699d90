/* png.c — PNG files through stb_image_write, compressed with zlib, written
 * atomically (ds_atomic_open: temporary file, fsync, rename) so a reader never
 * sees half a file. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* zlib deflates better and faster than stb's built-in compressor. */
static unsigned char *png_deflate(unsigned char *data, int len, int *out_len, int level)
{
    uLongf n = compressBound((uLong)len);
    unsigned char *out = malloc(n);
    if (!out) return NULL;
    if (compress2(out, &n, data, (uLong)len, level) != Z_OK) {
        free(out);
        return NULL;
    }
    *out_len = (int)n;
    return out;
}

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBIW_ZLIB_COMPRESS png_deflate
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

typedef struct png_sink {
    FILE *f;
    int err; /* errno of the first failed write, 0 if none */
} png_sink;

static void png_put(void *ctx, void *data, int size)
{
    png_sink *s = ctx;
    if (!s->err && fwrite(data, 1, (size_t)size, s->f) != (size_t)size)
        s->err = errno ? errno : EIO;
}

int ds_png_write(const char *path, int w, int h, int channels, const uint8_t *pixels)
{
    if (!path || !pixels) return ds_fail("png: NULL %s", path ? "pixels" : "path");
    if (w <= 0 || h <= 0 || (channels != 1 && channels != 3 && channels != 4))
        return ds_fail("png %s: bad image %dx%d with %d channels (want 1, 3 or 4)", path, w, h,
                       channels);
    if ((long long)w * channels > 0x7fffffff / h)
        return ds_fail("png %s: image %dx%d is too large", path, w, h);
    ds_atomic a;
    if (ds_atomic_open(&a, path) != 0) return ds_fail_prefix("png: ");
    png_sink s = {a.f, 0};
    errno = 0;
    int ok = stbi_write_png_to_func(png_put, &s, w, h, channels, pixels, w * channels);
    if (!ok || s.err) {
        if (s.err) ds_fail("png %s: write failed: %s", path, strerror(s.err));
        else ds_fail("png %s: encoding failed (out of memory?)", path);
        ds_atomic_abort(&a);
        return -1;
    }
    return ds_atomic_commit(&a) != 0 ? ds_fail_prefix("png: ") : 0;
}
