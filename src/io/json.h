/* json.h — a small JSON reader (into a tree) and writer (into a growing
 * buffer), enough for safetensors headers and checkpoint metadata. */
#ifndef DS_JSON_H
#define DS_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ds_json_type {
    DS_JSON_NULL = 0,
    DS_JSON_BOOL,
    DS_JSON_NUM,
    DS_JSON_STR,
    DS_JSON_ARR,
    DS_JSON_OBJ
} ds_json_type;

typedef struct ds_json {
    ds_json_type type;
    char *key;            /* member name inside an object, else NULL */
    char *str;            /* STR: unescaped text (NUL-terminated); NUM: the literal */
    size_t len;           /* bytes in str */
    int boolean;
    struct ds_json *kids; /* ARR/OBJ members in document order */
    int n;
} ds_json;

/* Parse text[0..len) (trailing whitespace allowed). Strict: strings must be
 * valid UTF-8, an object's member names distinct and free of U+0000. On
 * error returns NULL and writes "byte K: problem" into err. */
ds_json *ds_json_parse(const char *text, size_t len, char *err, size_t errsize);
void ds_json_free(ds_json *j);
/* Member `key` of an object, or NULL. */
const ds_json *ds_json_get(const ds_json *obj, const char *key);
/* A NUM that is a non-negative integer ≤ UINT64_MAX, or a signed one. */
int ds_json_u64(const ds_json *j, uint64_t *out);
int ds_json_i64(const ds_json *j, int64_t *out);
/* Any NUM, read as the nearest double. */
int ds_json_double(const ds_json *j, double *out);

/* Writer: appends to a malloc'd buffer; after an allocation failure every
 * call is a no-op and oom is set. */
typedef struct ds_jbuf {
    char *p;
    size_t len, cap;
    int oom;
} ds_jbuf;

void ds_jb_put(ds_jbuf *b, const char *s, size_t n);
void ds_jb_printf(ds_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A quoted, escaped JSON string. Valid UTF-8 passes through; a byte that is
 * not part of valid UTF-8 is written as \u00XX (read back as Latin-1). */
void ds_jb_str(ds_jbuf *b, const char *s, size_t n);
void ds_jb_free(ds_jbuf *b);

#endif
