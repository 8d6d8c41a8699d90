/* fuzz_ini.c — the INI tokenizer under model files (src/io/ini.c):
 * sections, key=value lines, comments, trimming; the text is the input up
 * to its first NUL. */
#include "fuzz_common.h"
#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ini p;
    if (ini_parse(text, "fuzz.ini", &p) == 0) {
        for (int i = 0; i < p.n_sec; i++) {
            fuzz_sink += (float)strlen(p.sec[i].name) + (float)p.sec[i].line;
            for (int k = 0; k < p.sec[i].n_kv; k++)
                fuzz_sink += (float)strlen(p.sec[i].kv[k].key) + (float)strlen(p.sec[i].kv[k].val);
        }
        ini_free(&p);
    }
    free(text);
    return 0;
}
