/* json.c — recursive-descent JSON reader (RFC 8259 grammar, nesting depth
 * capped so hostile input cannot exhaust the stack) and an escaping writer. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ---- writer ---- */

static int jb_reserve(ds_jbuf *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void ds_jb_put(ds_jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void ds_jb_printf(ds_jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || jb_reserve(b, (size_t)k) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

/* Length of the valid UTF-8 sequence at s (1–4 bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) k = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) k = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) k = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (k > n) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return k;
}

void ds_jb_str(ds_jbuf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    ds_jb_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t k = utf8_seq(u + i, n - i);
        if (c == '"') ds_jb_put(b, "\\\"", 2);
        else if (c == '\\') ds_jb_put(b, "\\\\", 2);
        else if (c == '\n') ds_jb_put(b, "\\n", 2);
        else if (c == '\t') ds_jb_put(b, "\\t", 2);
        else if (c == '\r') ds_jb_put(b, "\\r", 2);
        else if (c < 0x20 || k == 0) ds_jb_printf(b, "\\u%04x", c);
        else {
            ds_jb_put(b, s + i, k);
            i += k;
            continue;
        }
        i++;
    }
    ds_jb_put(b, "\"", 1);
}

void ds_jb_free(ds_jbuf *b)
{
    free(b->p);
    *b = (ds_jbuf){0};
}

/* ---- reader ---- */

typedef struct parser {
    const char *s;
    size_t i, n;
    char *err;
    size_t errsize;
    int depth;
} parser;

static int perr(parser *p, const char *msg)
{
    if (!p->err[0]) snprintf(p->err, p->errsize, "byte %zu: %s", p->i, msg);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->i < p->n && p->s[p->i] && strchr(" \t\n\r", p->s[p->i])) p->i++;
}

static void free_node(ds_json *j)
{
    for (int i = 0; i < j->n; i++) free_node(&j->kids[i]);
    free(j->kids);
    free(j->key);
    free(j->str);
}

void ds_json_free(ds_json *j)
{
    if (!j) return;
    free_node(j);
    free(j);
}

static int hex4(parser *p, unsigned *out)
{
    if (p->n - p->i < 4) return perr(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static void put_utf8(ds_jbuf *b, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) u[0] = (char)cp, k = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
        u[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    ds_jb_put(b, u, k);
}

/* A string starting at the opening quote; *out gets a malloc'd copy. */
static int parse_string(parser *p, char **out, size_t *len)
{
    ds_jbuf b = {0};
    p->i++; /* opening quote */
    ds_jb_put(&b, "", 0);
    while (1) {
        if (p->i >= p->n) {
            ds_jb_free(&b);
            return perr(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') break;
        if (c < 0x20) {
            ds_jb_free(&b);
            return perr(p, "control character in string");
        }
        size_t run = p->i;
        while (run < p->n && p->s[run] != '"' && p->s[run] != '\\' &&
               (unsigned char)p->s[run] >= 0x20) {
            /* JSON text is UTF-8 (RFC 8259 §8.1); the reference safetensors reader refuses anything else */
            size_t k = utf8_seq((const unsigned char *)p->s + run, p->n - run);
            if (k == 0) {
                p->i = run;
                ds_jb_free(&b);
                return perr(p, "invalid UTF-8 in string");
            }
            run += k;
        }
        if (run > p->i) {
            ds_jb_put(&b, p->s + p->i, run - p->i);
            p->i = run;
            continue;
        }
        /* c == '\\' */
        if (++p->i >= p->n) {
            ds_jb_free(&b);
            return perr(p, "unterminated string");
        }
        char e = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *q = strchr(from, e);
        if (e && q) {
            ds_jb_put(&b, to + (q - from), 1);
        } else if (e == 'u') {
            unsigned cp, lo;
            if (hex4(p, &cp) != 0) {
                ds_jb_free(&b);
                return -1;
            }
            int pair = cp >= 0xd800 && cp <= 0xdbff && p->n - p->i >= 6 &&
                       p->s[p->i] == '\\' && p->s[p->i + 1] == 'u';
            if (pair) {
                p->i += 2;
                if (hex4(p, &lo) != 0) {
                    ds_jb_free(&b);
                    return -1;
                }
                pair = lo >= 0xdc00 && lo <= 0xdfff;
                if (pair) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp >= 0xd800 && cp <= 0xdfff) {
                ds_jb_free(&b);
                return perr(p, "unpaired surrogate in \\u escape");
            }
            put_utf8(&b, cp);
        } else {
            p->i--;
            ds_jb_free(&b);
            return perr(p, "bad escape in string");
        }
    }
    p->i++; /* closing quote */
    if (b.oom) {
        ds_jb_free(&b);
        return perr(p, "out of memory");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

static int is_digit(parser *p) { return p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9'; }

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(parser *p, ds_json *j)
{
    size_t start = p->i;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (!is_digit(p)) return perr(p, "expected a value");
    if (p->s[p->i] == '0') p->i++;
    else
        while (is_digit(p)) p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!is_digit(p)) return perr(p, "expected a digit after '.'");
        while (is_digit(p)) p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!is_digit(p)) return perr(p, "expected a digit in the exponent");
        while (is_digit(p)) p->i++;
    }
    j->type = DS_JSON_NUM;
    j->len = p->i - start;
    if (!(j->str = malloc(j->len + 1))) return perr(p, "out of memory");
    memcpy(j->str, p->s + start, j->len);
    j->str[j->len] = 0;
    return 0;
}

static int parse_value(parser *p, ds_json *j);

static int by_key(const void *a, const void *b)
{
    return strcmp((*(const ds_json *const *)a)->key, (*(const ds_json *const *)b)->key);
}

/* Names a repeated member of object j: sorted, so O(n log n) even for a
 * header of a million names. */
static int unique_keys(parser *p, const ds_json *j)
{
    if (j->n < 2) return 0;
    const ds_json **k = malloc((size_t)j->n * sizeof *k);
    if (!k) return perr(p, "out of memory");
    for (int i = 0; i < j->n; i++) k[i] = &j->kids[i];
    qsort(k, (size_t)j->n, sizeof *k, by_key);
    int rc = 0;
    for (int i = 1; i < j->n && rc == 0; i++)
        if (strcmp(k[i - 1]->key, k[i]->key) == 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "member name '%.60s' is repeated", k[i]->key);
            rc = perr(p, msg);
        }
    free(k);
    return rc;
}

/* Array or object; the opening bracket is at p->i. */
static int parse_container(parser *p, ds_json *j, int obj)
{
    char close = obj ? '}' : ']';
    int cap = 0;
    j->type = obj ? DS_JSON_OBJ : DS_JSON_ARR;
    if (++p->depth > MAX_DEPTH) return perr(p, "nesting too deep");
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return 0;
    }
    while (1) {
        if (j->n == cap) {
            cap = cap ? 2 * cap : 8;
            ds_json *k = realloc(j->kids, (size_t)cap * sizeof *k);
            if (!k) return perr(p, "out of memory");
            j->kids = k;
        }
        ds_json *kid = &j->kids[j->n];
        *kid = (ds_json){0};
        j->n++;
        skip_ws(p);
        if (obj) {
            size_t klen;
            if (p->i >= p->n || p->s[p->i] != '"') return perr(p, "expected a member name");
            size_t at = p->i;
            if (parse_string(p, &kid->key, &klen) != 0) return -1;
            /* names are C strings to the callers; a repeated name would make "the" value ambiguous */
            if (strlen(kid->key) != klen) {
                p->i = at;
                return perr(p, "member name holds a NUL character (\\u0000)");
            }
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return perr(p, "expected ':'");
            p->i++;
        }
        if (parse_value(p, kid) != 0) return -1;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return obj ? unique_keys(p, j) : 0;
        }
        return perr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, ds_json *j)
{
    skip_ws(p);
    if (p->i >= p->n) return perr(p, "unexpected end of input");
    char c = p->s[p->i];
    if (c == '{' || c == '[') return parse_container(p, j, c == '{');
    if (c == '"') {
        j->type = DS_JSON_STR;
        return parse_string(p, &j->str, &j->len);
    }
    static const char *const words[] = {"null", "true", "false"};
    for (int w = 0; w < 3; w++) {
        size_t k = strlen(words[w]);
        if (p->n - p->i >= k && memcmp(p->s + p->i, words[w], k) == 0) {
            p->i += k;
            j->type = w ? DS_JSON_BOOL : DS_JSON_NULL;
            j->boolean = w == 1;
            return 0;
        }
    }
    return parse_number(p, j);
}

ds_json *ds_json_parse(const char *text, size_t len, char *err, size_t errsize)
{
    parser p = {.s = text, .n = len, .err = err, .errsize = errsize};
    err[0] = 0;
    ds_json *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (parse_value(&p, j) == 0) {
        skip_ws(&p);
        if (p.i == p.n) return j;
        perr(&p, "unexpected text after the value");
    }
    ds_json_free(j);
    return NULL;
}

const ds_json *ds_json_get(const ds_json *obj, const char *key)
{
    if (!obj || obj->type != DS_JSON_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->kids[i].key, key) == 0) return &obj->kids[i];
    return NULL;
}

int ds_json_u64(const ds_json *j, uint64_t *out)
{
    if (!j || j->type != DS_JSON_NUM || j->str[0] == '-') return -1;
    uint64_t v = 0;
    for (const char *s = j->str; *s; s++) {
        if (*s < '0' || *s > '9') return -1; /* fraction or exponent */
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ds_json_i64(const ds_json *j, int64_t *out)
{
    if (!j || j->type != DS_JSON_NUM) return -1;
    int neg = j->str[0] == '-';
    ds_json t = *j;
    t.str = j->str + neg;
    uint64_t u;
    if (ds_json_u64(&t, &u) != 0 || u > (uint64_t)INT64_MAX + (uint64_t)neg) return -1;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

int ds_json_double(const ds_json *j, double *out)
{
    if (!j || j->type != DS_JSON_NUM) return -1;
    *out = strtod(j->str, NULL);
    return 0;
}
