/* fuzz_npy.c — NPY arrays: the magic, version, header length, the header
 * dict (descr, fortran_order, shape) and the data. data[0] % 3 picks the
 * entry point: 0 ds_npy_read, 1 ds_npy_load of one file (samples, no
 * labels), 2 ds_npy_load of X and Y, split at data[1] | data[2] << 8. */
#include "fuzz_common.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0] % 3;
    ds_dataset ds;
    if (mode == 0) {
        const char *p = fuzz_write(0, ".npy", data + 1, size - 1);
        float *x = NULL;
        int nd, d[DS_MAX_DIMS];
        if (p && ds_npy_read(p, &x, &nd, d) == 0) {
            size_t n = 1;
            for (int i = 0; i < nd; i++) n *= (size_t)d[i];
            fuzz_touch(x, n);
            free(x);
        }
    } else if (mode == 1) {
        const char *p = fuzz_write(0, ".npy", data + 1, size - 1);
        if (p && ds_npy_load(p, NULL, &ds) == 0) fuzz_touch_dataset(&ds);
        if (p) ds_dataset_free(&ds);
    } else if (size >= 3) {
        size_t k = (size_t)data[1] | (size_t)data[2] << 8;
        if (k > size - 3) k = size - 3;
        const char *a = fuzz_write(0, ".npy", data + 3, k);
        const char *b = a ? fuzz_write(1, ".npy", data + 3 + k, size - 3 - k) : NULL;
        if (b && ds_npy_load(a, b, &ds) == 0) fuzz_touch_dataset(&ds);
        if (b) ds_dataset_free(&ds);
    }
    return 0;
}
