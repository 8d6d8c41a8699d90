/* fuzz_meta.c — the per-stamp CSV of `eval --meta` (simulate's labels.csv;
 * cli_meta_read in tools/survey.c, built into this harness): header with
 * kind and/or snr, one row per sample. data[0] is the sample count the
 * rows must match; the rest is the file. */
#include "fuzz_common.h"
#include "../../tools/cli.h"

#include <stdarg.h>

/* tools/deepsky.c's error printers, quiet: the message is not the point */
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
    if (size < 1) return 0;
    const char *p = fuzz_write(0, ".csv", data + 1, size - 1);
    if (!p) return 0;
    cli_meta m;
    if (cli_meta_read(p, data[0], &m) == 0) {
        for (int i = 0; i < m.n_kinds; i++) fuzz_sink += (float)strlen(m.names[i]);
        for (int i = 0; i < data[0]; i++) fuzz_sink += (m.kind ? (float)m.kind[i] : 0) + (m.snr ? m.snr[i] : 0);
        cli_meta_free(&m);
    }
    return 0;
}
