/* param_groups.c — selecting a graph's parameters by layer names and glob
 * patterns for the optimizer's parameter groups (PyTorch's param_groups).
 *
 * A pattern without '.' is matched against a parameter's layer — its name
 * up to the first '.' ("conv1" and "conv*" select conv1.weight and
 * conv1.bias); a pattern with '.' against its whole name or a prefix that
 * ends before a '.' ("*.bias", "enc.conv1" for enc.conv1.weight). Matching
 * is fnmatch without flags, so '*' crosses dots in the second form.
 */
#include "param_groups.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ds_param_group_label(const ds_param_group *groups, int k, char *buf, size_t size)
{
    if (groups[k].name && groups[k].name[0]) return groups[k].name;
    snprintf(buf, size, "ds_param_group[%d]", k);
    return buf;
}

/* Does pattern pat select the parameter named name? */
static int selects(const char *pat, const char *name)
{
    char part[512];
    size_t n = strlen(name);
    if (n >= sizeof part) return 0;
    memcpy(part, name, n + 1);
    if (!strchr(pat, '.')) {
        part[strcspn(part, ".")] = 0; /* the layer */
        return fnmatch(pat, part, 0) == 0;
    }
    if (fnmatch(pat, part, 0) == 0) return 1;
    for (size_t i = n; i-- > 0;)
        if (part[i] == '.') {
            part[i] = 0;
            if (fnmatch(pat, part, 0) == 0) return 1;
        }
    return 0;
}

/* The patterns of one group, split in place: pats[0..*np) point into buf. */
static int split(const char *label, const char *list, char *buf, size_t size, char **pats, int max, int *np)
{
    *np = 0;
    if (!list || strlen(list) >= size)
        return ds_fail("%s params: %s", label, list ? "the list is too long" : "no patterns (params= is required)");
    strcpy(buf, list);
    for (char *p = buf; p;) {
        char *tok = p, *comma = strchr(p, ',');
        if (comma) *comma = 0;
        p = comma ? comma + 1 : NULL;
        while (*tok == ' ' || *tok == '\t') tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) tok[--len] = 0;
        if (!len) return ds_fail("%s params: '%s' has an empty pattern", label, list);
        if (*np == max) return ds_fail("%s params: more than %d patterns", label, max);
        pats[(*np)++] = tok;
    }
    return 0;
}

/* "a, b, c" of the trainable parameters' names, cut short to fit. */
static void param_names(const ds_graph *g, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < g->n_params && k + 1 < size; i++)
        if (g->params[i]->kind == DS_NODE_PARAM)
            k += (size_t)snprintf(buf + k, size - k, "%s%s", k ? ", " : "", g->params[i]->name);
    if (k >= size && size > 4) strcpy(buf + size - 4, "...");
}

enum { MAX_PATS = 256, LIST_MAX = 4096 };

/* The first pattern of group k that selects name (for messages). */
static const char *selecting_pattern(const ds_param_group *gr, int k, const char *name, char *buf)
{
    char *pats[MAX_PATS];
    int np;
    if (split("", gr[k].params, buf, LIST_MAX, pats, MAX_PATS, &np)) return "?";
    for (int j = 0; j < np; j++)
        if (selects(pats[j], name)) return pats[j];
    return "?";
}

int ds_param_groups_assign(const ds_graph *g, const ds_param_group *groups, int n, unsigned no_decay,
                           int *group, unsigned char *no_wd)
{
    if (no_decay & ~(DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM))
        return ds_fail("optimizer: no_decay has unknown bits 0x%x (DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM)",
                       no_decay);
    for (int i = 0; i < g->n_params; i++) {
        group[i] = g->params[i]->kind == DS_NODE_PARAM ? n : -1;
        no_wd[i] = 0;
    }
    char *buf = malloc(2 * LIST_MAX), *other = buf + LIST_MAX;
    if (!buf) return ds_fail("out of memory");
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        char lb[32], lb2[32], *pats[MAX_PATS];
        const char *label = ds_param_group_label(groups, k, lb, sizeof lb);
        int np;
        if ((rc = split(label, groups[k].params, buf, LIST_MAX, pats, MAX_PATS, &np))) break;
        for (int j = 0; j < np && rc == 0; j++) {
            int hits = 0;
            for (int i = 0; i < g->n_params && rc == 0; i++) {
                const ds_node *p = g->params[i];
                if (p->kind != DS_NODE_PARAM || !selects(pats[j], p->name)) continue;
                hits++;
                if (group[i] != n && group[i] != k)
                    rc = ds_fail("%s params: parameter '%s' (pattern '%s') is also in %s (pattern '%s'); "
                                 "a parameter may be in one group only",
                                 label, p->name, pats[j], ds_param_group_label(groups, group[i], lb2, sizeof lb2),
                                 selecting_pattern(groups, group[i], p->name, other));
                group[i] = k;
            }
            if (rc == 0 && !hits) {
                char names[400];
                param_names(g, names, sizeof names);
                rc = ds_fail("%s params: pattern '%s' matches no trainable parameter (they are: %s)", label,
                             pats[j], names);
            }
        }
    }
    free(buf);
    if (rc) return rc;

    for (int i = 0; i < g->n_params; i++) {
        const char *nm = g->params[i]->name;
        size_t len = strlen(nm);
        if ((no_decay & DS_NO_DECAY_BIAS) && group[i] >= 0 &&
            (!strcmp(nm, "bias") || (len > 5 && !strcmp(nm + len - 5, ".bias"))))
            no_wd[i] = 1;
    }
    if (no_decay & DS_NO_DECAY_NORM) /* γ and β: the batch-norm ops' parameter inputs */
        for (int v = 0; v < g->n_nodes; v++) {
            const ds_node *bn = g->nodes[v];
            if (!ds_is_batchnorm(bn)) continue;
            for (int j = 1; j < bn->n_in; j++)
                for (int i = 0; i < g->n_params; i++)
                    if (g->params[i] == bn->in[j] && group[i] >= 0) no_wd[i] = 1;
        }
    return 0;
}

int ds_param_groups_count(const ds_graph *g, const ds_param_group *groups, int n_groups, unsigned no_decay,
                          int *counts, long *values)
{
    if (!g || n_groups < 0 || (n_groups && !groups)) return ds_fail("ds_param_groups_count: bad arguments");
    int *group = malloc(((size_t)g->n_params + 1) * sizeof *group);
    unsigned char *no_wd = malloc((size_t)g->n_params + 1);
    int rc = group && no_wd ? ds_param_groups_assign(g, groups, n_groups, no_decay, group, no_wd)
                            : ds_fail("out of memory");
    for (int k = 0; rc == 0 && k <= n_groups; k++) {
        if (counts) counts[k] = 0;
        if (values) values[k] = 0;
    }
    for (int i = 0; rc == 0 && i < g->n_params; i++)
        if (group[i] >= 0) {
            if (counts) counts[group[i]]++;
            if (values) values[group[i]] += (long)ds_numel(g->params[i]);
        }
    free(group);
    free(no_wd);
    return rc;
}
