/* fuzz_meta.c — the per-stamp CSV of `eval --meta` (simulate's labels.csv;
 * cli_meta_read in tools/survey.c, built into this harness): header with
 * kind and/or snr, one row per sample. data[0] is the sample count, data[1]
 * how rows find samples (bit 0: by simulator index — bit 1 reversed, else
 * every third — bit 2: labels to agree with); the rest is the file. */
#include "fuzz_common.h"
#include "../../tools/cli.h"

#include <stdarg.h>

/* tools/cli_util.c's error printers, quiet: the message is not the point */
int cli_error(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return 1;
}
int cli_lib_error(const char *context) { return cli_error("%s", context ? context : ""); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int n = data[0], mode = data[1];
    const char *p = fuzz_write(0, ".csv", data + 2, size - 2);
    if (!p) return 0;
    long index[256];
    float y[256];
    for (int i = 0; i < n; i++) {
        index[i] = mode & 2 ? n - 1 - i : 3L * i;
        y[i] = (float)((i + mode) % 2);
    }
    cli_meta m;
    if (cli_meta_read(p, n, mode & 1 ? index : NULL, mode & 4 ? y : NULL, &m) == 0) {
        for (int i = 0; i < m.n_kinds; i++) fuzz_sink += (float)strlen(m.names[i]);
        for (int i = 0; i < n; i++) fuzz_sink += (m.kind ? (float)m.kind[i] : 0) + (m.snr ? m.snr[i] : 0);
        cli_meta_free(&m);
    }
    return 0;
}
