/* fuzz_csv.c — CSV tables through the data-spec path, so that every
 * option the spec parser accepts for csv: is fuzzed with the file. The
 * input's first line is the options (e.g. "label=y" or "header=no,skip=1";
 * empty: none), the rest is the file, loaded as csv:FILE[,OPTIONS]. A first
 * line of "!" reads the file as a labels file instead (ds_labels_read: one
 * column, string or integer labels). */
#include "fuzz_common.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
    if (!nl) return 0;
    size_t olen = (size_t)(nl - data);
    if (memchr(data, 0, olen)) return 0;
    const char *p = fuzz_write(0, ".csv", nl + 1, size - olen - 1);
    if (!p) return 0;
    ds_dataset ds;
    if (olen == 1 && data[0] == '!') {
        if (ds_labels_read(p, &ds) == 0) fuzz_touch_dataset(&ds);
        ds_dataset_free(&ds);
        return 0;
    }
    char spec[1024];
    snprintf(spec, sizeof spec, "csv:%s%s%.*s", p, olen ? "," : "", (int)olen, (const char *)data);
    if (ds_data_load(spec, &ds) == 0) fuzz_touch_dataset(&ds);
    ds_dataset_free(&ds);
    return 0;
}
