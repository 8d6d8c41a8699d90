/* fuzz_idx_gz.c — the IDX reader behind gzip: the input (laid out as for
 * fuzz_idx.c) is compressed before it is written, so the fuzzer explores
 * the IDX header and sizes through the gzip path; a last input byte with
 * bit 7 set also appends trailing garbage after the gzip stream, which
 * must be refused (issue 12: a gzip IDX with trailing bytes). */
#define FUZZ_IDX_NO_MAIN
#include "fuzz_idx.c"

#include <zlib.h>

/* data[0..n) as one gzip member (+ "junk" if trailing). */
static uint8_t *gzip(const uint8_t *data, size_t n, int trailing, size_t *out_n)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 8;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)data, z.avail_in = (uInt)n;
    z.next_out = out, z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    if (trailing) memcpy(out + *out_n, "junk", 4), *out_n += 4;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int trailing = data[size - 1] >> 7;
    size--;
    /* mode byte and the split stay plain; each file is compressed */
    uint8_t head[3] = {data[0], size > 1 ? data[1] : 0, size > 2 ? data[2] : 0};
    if (!(data[0] & 1)) {
        size_t zn;
        uint8_t *z = gzip(data + 1, size - 1, trailing, &zn);
        if (!z) return 0;
        uint8_t *in = malloc(zn + 1);
        if (in) {
            in[0] = head[0];
            memcpy(in + 1, z, zn);
            run(in, zn + 1, ".gz");
        }
        free(in), free(z);
        return 0;
    }
    if (size < 3) return 0;
    size_t k = (size_t)data[1] | (size_t)data[2] << 8;
    if (k > size - 3) k = size - 3;
    size_t an, bn;
    uint8_t *a = gzip(data + 3, k, 0, &an), *b = gzip(data + 3 + k, size - 3 - k, trailing, &bn);
    uint8_t *in = a && b && an <= 0xffff ? malloc(3 + an + bn) : NULL;
    if (in) {
        in[0] = head[0], in[1] = (uint8_t)an, in[2] = (uint8_t)(an >> 8);
        memcpy(in + 3, a, an), memcpy(in + 3 + an, b, bn);
        run(in, 3 + an + bn, ".gz");
    }
    free(in), free(a), free(b);
    return 0;
}
