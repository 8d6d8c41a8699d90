/* fuzz_json.c — the JSON reader under safetensors headers and checkpoint
 * metadata (src/io/json.c): strings and escapes, numbers, nesting; every
 * node is visited with the accessors the checkpoint code uses, and every
 * string is written back through the escaper (ds_jb_str). */
#include "fuzz_common.h"
#include "json.h"

static void walk(const ds_json *j, ds_jbuf *b)
{
    uint64_t u;
    int64_t i;
    double d;
    if (j->key) ds_jb_str(b, j->key, strlen(j->key));
    switch (j->type) {
    case DS_JSON_NUM:
        fuzz_sink += (float)ds_json_u64(j, &u) + (float)ds_json_i64(j, &i) + (float)ds_json_double(j, &d);
        break;
    case DS_JSON_STR: ds_jb_str(b, j->str, j->len); break;
    case DS_JSON_OBJ:
        if (j->n) fuzz_sink += ds_json_get(j, j->kids[j->n - 1].key) != NULL;
        /* fall through */
    case DS_JSON_ARR:
        for (int k = 0; k < j->n; k++) walk(&j->kids[k], b);
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    ds_json *j = ds_json_parse((const char *)data, size, err, sizeof err);
    if (!j) return 0;
    ds_jbuf b = {0};
    walk(j, &b);
    ds_jb_free(&b);
    ds_json_free(j);
    return 0;
}
