/* fuzz_fits.c — FITS files through CFITSIO (ds_fits_load: the first image
 * HDU, NAXIS 2-4, BITPIX, BSCALE/BZERO, BLANK, NaN/Inf, tile compression).
 * data[0] % 5 is channels= (0: one per plane, or a 4-D array's own); the
 * rest is the file. */
#include "fuzz_common.h"
#include "data.h"

#include <fitsio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *p = fuzz_write(0, ".fits", data + 1, size - 1);
    if (!p) return 0;
    ds_dataset ds;
    if (ds_fits_load(p, NULL, data[0] % 5, &ds) == 0) fuzz_touch_dataset(&ds);
    ds_dataset_free(&ds);
    fits_clear_errmsg();
    return 0;
}
