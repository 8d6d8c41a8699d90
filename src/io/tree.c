/* tree.c — the [tree] section of a model file: internal nodes (keys) and
 * their children (class indices or other nodes), checked into a
 * ds_class_tree: one root, every class exactly once, no cycle, at least two
 * children per node. Reference: docs/model-file.md. */
#include "tree.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ds_class_tree_free(ds_class_tree *t)
{
    if (!t) return;
    for (int k = 0; t->names && k < t->n_nodes; k++) free(t->names[k]);
    free(t->names);
    free(t->first);
    free(t->n_children);
    free(t->children);
    free(t->parent);
    free(t->logit);
    free(t->level);
    free(t);
}

static int tree_fail(const char *file, int line, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: [tree] node: message" (node NULL: "[tree]: message"). */
static int tree_fail(const char *file, int line, const char *node, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_fail("%s:%d: [tree]%s%s: %s", file, line, node ? " " : "", node ? node : "", msg);
}


static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static int node_name_ok(const char *s)
{
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

/* "class 3" or "node 'top'" for messages. */
static const char *id_text(const ds_class_tree *t, int id, char *buf, size_t size)
{
    if (id < t->classes) snprintf(buf, size, "class %d", id);
    else snprintf(buf, size, "node '%s'", t->names[id - t->classes]);
    return buf;
}

/* Children of every node into t->children (ids), each listed once. */
static int read_children(const ini_sec *s, const char *file, ds_class_tree *t, int *listed_by)
{
    int total = 0;
    for (int k = 0; k < t->n_nodes; k++) {
        const ini_kv *kv = &s->kv[k];
        char *buf = strdup(kv->val), *p = buf, *tok;
        if (!buf) return ds_fail("out of memory");
        t->first[k] = total;
        while ((tok = ini_next_item(&p))) {
            int id = -1;
            char what[96];
            if (!*tok) {
                free(buf);
                return tree_fail(file, kv->line, kv->key, "empty item in '%s' (children are comma-separated)",
                                 kv->val);
            }
            if (all_digits(tok)) {
                errno = 0;
                long c = strtol(tok, NULL, 10);
                if (errno || c >= t->classes) {
                    tree_fail(file, kv->line, kv->key, "class %s is out of range (0..%d; classes=%d in [net])",
                              tok, t->classes - 1, t->classes);
                    free(buf);
                    return -1;
                }
                id = (int)c;
            } else if (node_name_ok(tok)) {
                for (int j = 0; j < t->n_nodes; j++)
                    if (!strcmp(t->names[j], tok)) id = t->classes + j;
                if (id < 0) {
                    tree_fail(file, kv->line, kv->key, "unknown node '%s' (not a class index, nor a key of [tree])",
                              tok);
                    free(buf);
                    return -1;
                }
                if (id == t->classes + k) {
                    tree_fail(file, kv->line, kv->key, "'%s' lists itself as a child", tok);
                    free(buf);
                    return -1;
                }
            } else {
                tree_fail(file, kv->line, kv->key, "'%s' is neither a class index nor a node name", tok);
                free(buf);
                return -1;
            }
            if (listed_by[id] >= 0) {
                const ini_kv *o = &s->kv[listed_by[id]];
                tree_fail(file, kv->line, kv->key, "%s is listed twice (also under '%s' at line %d); a class or "
                          "node has one parent", id_text(t, id, what, sizeof what), o->key, o->line);
                free(buf);
                return -1;
            }
            listed_by[id] = k;
            t->children[total++] = id;
        }
        free(buf);
        t->n_children[k] = total - t->first[k];
        if (t->n_children[k] < 2)
            return tree_fail(file, kv->line, kv->key, "one child: a question needs two or more answers (list "
                             "the child in place of '%s')", kv->key);
    }
    t->n_logits = total;
    return 0;
}

/* Parents, logits and levels by a walk from the root; nodes it does not
 * reach are in a cycle (each has exactly one parent, none the root). */
static int walk(const ini_sec *s, const char *file, ds_class_tree *t)
{
    int ids = t->classes + t->n_nodes;
    for (int i = 0; i < ids; i++) t->parent[i] = t->logit[i] = t->level[i] = -1;
    int *stack = malloc((size_t)t->n_nodes * sizeof *stack), top = 0;
    if (!stack) return ds_fail("out of memory");
    t->level[t->classes + t->root] = 0;
    stack[top++] = t->root;
    while (top) {
        int k = stack[--top], lk = t->level[t->classes + k];
        for (int j = t->first[k]; j < t->first[k] + t->n_children[k]; j++) {
            int id = t->children[j];
            t->parent[id] = k;
            t->logit[id] = j;
            t->level[id] = lk + 1;
            if (id >= t->classes) stack[top++] = id - t->classes;
            else if (lk + 1 > t->depth) t->depth = lk + 1;
        }
    }
    free(stack);
    for (int k = 0; k < t->n_nodes; k++)
        if (t->level[t->classes + k] < 0)
            return tree_fail(file, s->kv[k].line, s->kv[k].key, "in a cycle: following its parents never reaches "
                             "the root '%s'", t->names[t->root]);
    return 0;
}

int ds_tree_from_ini(const ini_sec *s, int classes, const char *file, ds_class_tree **out)
{
    *out = NULL;
    if (!s->n_kv)
        return tree_fail(file, s->line, NULL, "no nodes (e.g. root = a, 2 and a = 0, 1)");
    ds_class_tree *t = calloc(1, sizeof *t);
    if (!t) return ds_fail("out of memory");
    t->classes = classes;
    t->n_nodes = s->n_kv;
    int n = s->n_kv, ids = classes + n, cap = 0;
    for (int k = 0; k < n; k++) {
        cap++;
        for (const char *c = s->kv[k].val; *c; c++) cap += *c == ',';
    }
    int *listed_by = malloc((size_t)ids * sizeof *listed_by);
    t->names = calloc((size_t)n, sizeof *t->names);
    t->first = malloc((size_t)n * sizeof *t->first);
    t->n_children = malloc((size_t)n * sizeof *t->n_children);
    t->children = malloc((size_t)cap * sizeof *t->children);
    t->parent = malloc((size_t)ids * sizeof *t->parent);
    t->logit = malloc((size_t)ids * sizeof *t->logit);
    t->level = malloc((size_t)ids * sizeof *t->level);
    if (!listed_by || !t->names || !t->first || !t->n_children || !t->children || !t->parent || !t->logit ||
        !t->level) {
        ds_fail("out of memory");
        goto fail;
    }
    for (int k = 0; k < n; k++) {
        const ini_kv *kv = &s->kv[k];
        if (!node_name_ok(kv->key)) {
            tree_fail(file, kv->line, kv->key, "a node name starts with a letter or _ (class indices are the "
                      "children, right of '=')");
            goto fail;
        }
        for (int j = 0; j < k; j++)
            if (!strcmp(t->names[j], kv->key)) {
                tree_fail(file, kv->line, kv->key, "node defined twice (first at line %d)", s->kv[j].line);
                goto fail;
            }
        if (!(t->names[k] = strdup(kv->key))) {
            ds_fail("out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < ids; i++) listed_by[i] = -1;
    if (read_children(s, file, t, listed_by)) goto fail;
    char missing[256];
    size_t len = 0;
    int n_missing = 0;
    for (int c = 0; c < classes; c++)
        if (listed_by[c] < 0) {
            if (len < sizeof missing)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%d", n_missing ? ", " : "", c);
            n_missing++;
        }
    if (n_missing) {
        tree_fail(file, s->line, NULL, "class%s %s %s in no node (each class 0..%d is listed once)",
                  n_missing > 1 ? "es" : "", missing, n_missing > 1 ? "are" : "is", classes - 1);
        goto fail;
    }
    t->root = -1;
    for (int k = 0; k < n; k++) {
        if (listed_by[classes + k] >= 0) continue;
        if (t->root >= 0) {
            tree_fail(file, s->kv[k].line, s->kv[k].key, "a second root: no node lists '%s' nor '%s' (line %d); "
                      "a tree has one root", s->kv[k].key, t->names[t->root], s->kv[t->root].line);
            goto fail;
        }
        t->root = k;
    }
    if (t->root < 0) {
        tree_fail(file, s->line, NULL, "no root: every node is listed as another's child (a cycle)");
        goto fail;
    }
    if (walk(s, file, t)) goto fail;
    free(listed_by);
    *out = t;
    return 0;
fail:
    free(listed_by);
    ds_class_tree_free(t);
    return -1;
}

ds_class_tree *ds_class_tree_parse(const char *text, int classes, const char *name)
{
    const char *file = name ? name : "tree";
    if (!text) {
        ds_fail("%s: no text", file);
        return NULL;
    }
    if (classes < 1) {
        ds_fail("%s: classes %d must be >= 1", file, classes);
        return NULL;
    }
    ini p;
    if (ini_parse(text, file, &p)) return NULL;
    const ini_sec *s = NULL;
    ds_class_tree *t = NULL;
    for (int i = 0; i < p.n_sec; i++) {
        if (strcmp(p.sec[i].name, "tree")) continue;
        if (s) {
            ds_fail("%s:%d: [tree]: second [tree] section (the first is at line %d)", file, p.sec[i].line, s->line);
            ini_free(&p);
            return NULL;
        }
        s = &p.sec[i];
    }
    if (!s) ds_fail("%s: no [tree] section", file);
    else ds_tree_from_ini(s, classes, file, &t);
    ini_free(&p);
    return t;
}

void ds_class_tree_logits_str(const ds_class_tree *t, char *buf, size_t size)
{
    if (!size) return;
    buf[0] = 0;
    size_t k = 0;
    for (int i = 0; t && i < t->n_nodes && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%s %d", i ? ", " : "", t->names[i], t->n_children[i]);
}
