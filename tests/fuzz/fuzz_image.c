/* fuzz_image.c — PNG and JPEG files through stb_image (ds_image_file_load:
 * one image, the JPEG Huffman-table check in front of stb, channels and
 * alpha). */
#include "fuzz_common.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(0, ".img", data, size); /* stb goes by the content */
    if (!p) return 0;
    ds_dataset ds;
    if (ds_image_file_load(p, &ds) == 0) fuzz_touch_dataset(&ds);
    ds_dataset_free(&ds);
    return 0;
}
