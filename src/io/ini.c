/* ini.c — the INI tokenizer under model files. It knows nothing of layers:
 * it checks the syntax only ([name] headers, key = value lines). */
#include "ini.h"

#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *e = 0;
    return s;
}

/* A section name or key: letters, digits and '_' (lowercase by convention). */
static int is_ident(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

static int add_section(ini *p, const char *name, int line)
{
    if (p->n_sec == p->cap_sec) {
        int cap = p->cap_sec ? 2 * p->cap_sec : 16;
        ini_sec *s = realloc(p->sec, (size_t)cap * sizeof *s);
        if (!s) return ds_fail("out of memory");
        p->sec = s;
        p->cap_sec = cap;
    }
    ini_sec *s = &p->sec[p->n_sec];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name))) return ds_fail("out of memory");
    s->line = line;
    p->n_sec++;
    return 0;
}

static int add_kv(ini_sec *s, const char *key, const char *val, int line)
{
    if (s->n_kv == s->cap_kv) {
        int cap = s->cap_kv ? 2 * s->cap_kv : 8;
        ini_kv *kv = realloc(s->kv, (size_t)cap * sizeof *kv);
        if (!kv) return ds_fail("out of memory");
        s->kv = kv;
        s->cap_kv = cap;
    }
    ini_kv *kv = &s->kv[s->n_kv];
    kv->key = strdup(key);
    kv->val = strdup(val);
    kv->line = line;
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        return ds_fail("out of memory");
    }
    s->n_kv++;
    return 0;
}

/* One line (comment already cut, trimmed); 0, or -1 with the message set. */
static int parse_line(ini *p, char *s, const char *file, int line)
{
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) return ds_fail("%s:%d: section header '%s' has no closing ']'", file, line, s);
        *close = 0;
        char *name = trim(s + 1), *rest = trim(close + 1);
        if (*rest) return ds_fail("%s:%d: unexpected '%s' after [%s]", file, line, rest, name);
        if (!is_ident(name))
            return ds_fail("%s:%d: bad section name '[%s]' (letters, digits and _ only)", file, line,
                           name);
        return add_section(p, name, line);
    }
    char *eq = strchr(s, '=');
    if (!eq) return ds_fail("%s:%d: expected 'key = value' or '[section]', got '%s'", file, line, s);
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!is_ident(key))
        return ds_fail("%s:%d: bad key '%s' (letters, digits and _ only)", file, line, key);
    if (!p->n_sec)
        return ds_fail("%s:%d: %s: key outside a section (start with [net])", file, line, key);
    if (!*val)
        return ds_fail("%s:%d: [%s] %s: no value after '='", file, line, p->sec[p->n_sec - 1].name,
                       key);
    return add_kv(&p->sec[p->n_sec - 1], key, val, line);
}

int ini_parse(const char *text, const char *file, ini *out)
{
    memset(out, 0, sizeof *out);
    char *buf = strdup(text ? text : "");
    if (!buf) return ds_fail("out of memory");
    int line = 0, rc = 0;
    for (char *s = buf; s && !rc;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        s[strcspn(s, "#;")] = 0;
        char *t = trim(s);
        if (*t) rc = parse_line(out, t, file, line);
        s = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (rc) ini_free(out);
    return rc;
}

void ini_free(ini *p)
{
    for (int i = 0; i < p->n_sec; i++) {
        for (int k = 0; k < p->sec[i].n_kv; k++) {
            free(p->sec[i].kv[k].key);
            free(p->sec[i].kv[k].val);
        }
        free(p->sec[i].kv);
        free(p->sec[i].name);
    }
    free(p->sec);
    memset(p, 0, sizeof *p);
}

/* Next comma-separated item of *p, trimmed (modifies the string); NULL at the end. */
char *ini_next_item(char **p)
{
    char *tok = *p;
    if (!tok) return NULL;
    char *comma = strchr(tok, ',');
    if (comma) *comma = 0;
    *p = comma ? comma + 1 : NULL;
    while (*tok == ' ' || *tok == '\t') tok++;
    size_t len = strlen(tok);
    while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) tok[--len] = 0;
    return tok;
}
