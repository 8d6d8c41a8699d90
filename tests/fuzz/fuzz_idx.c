/* fuzz_idx.c — IDX files as written (plain, or gzip: gzopen reads both).
 * First byte even: ds_idx_read of the rest. Odd: the rest is an images file
 * and a labels file, the first of length data[1] | data[2] << 8, through
 * ds_idx_load (the pairing and dataset checks). */
#include "fuzz_common.h"

static void run(const uint8_t *data, size_t size, const char *ext)
{
    if (size < 1) return;
    if (!(data[0] & 1)) {
        const char *p = fuzz_write(0, ext, data + 1, size - 1);
        uint8_t *buf = NULL;
        int nd, d[DS_MAX_DIMS];
        if (p && ds_idx_read(p, &buf, &nd, d) == 0) {
            size_t n = 1;
            for (int i = 0; i < nd; i++) n *= (size_t)d[i];
            for (size_t i = 0; i < n; i++) fuzz_sink += buf[i];
        }
        free(buf);
        return;
    }
    if (size < 3) return;
    size_t k = (size_t)data[1] | (size_t)data[2] << 8;
    if (k > size - 3) k = size - 3;
    const char *a = fuzz_write(0, ext, data + 3, k), *b = a ? fuzz_write(1, ext, data + 3 + k, size - 3 - k) : NULL;
    ds_dataset ds;
    if (b && ds_idx_load(a, b, &ds) == 0) fuzz_touch_dataset(&ds);
    if (b) ds_dataset_free(&ds);
}

#ifndef FUZZ_IDX_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, "-ubyte");
    return 0;
}
#endif
