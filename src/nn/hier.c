/* hier.c — a class tree's conditional softmaxes turned into class
 * probabilities, the greedy path of questions that `predict` prints, and
 * metrics per level of the tree (docs/design.md). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lse[k] = log Σ_{j ∈ block k} e^z_j for every node; fails on a non-finite
 * logit (sample ≥ 0 names the row, as ds_softmax_rows). */
static int block_lse(const ds_class_tree *t, const float *z, int sample, double *lse)
{
    for (int j = 0; j < t->n_logits; j++)
        if (!isfinite(z[j])) {
            const char *v = isnan(z[j]) ? "NaN" : z[j] > 0 ? "+Inf" : "-Inf";
            if (sample >= 0)
                return ds_fail("sample %d: the model's output %d (a logit of the class tree) is %s (non-finite "
                               "weights, or an input far outside the training data's range)", sample, j, v);
            return ds_fail("logit %d of the class tree is %s", j, v);
        }
    for (int k = 0; k < t->n_nodes; k++) {
        const float *zb = z + t->first[k];
        float m = zb[0];
        for (int j = 1; j < t->n_children[k]; j++) m = fmaxf(m, zb[j]);
        double s = 0;
        for (int j = 0; j < t->n_children[k]; j++) s += exp((double)(zb[j] - m));
        lse[k] = m + log(s);
    }
    return 0;
}

/* log P(id): Σ over the steps from the root of log softmax(block)[step]. */
static double log_reach(const ds_class_tree *t, const float *z, const double *lse, int id)
{
    double lp = 0;
    for (; t->parent[id] >= 0; id = t->classes + t->parent[id]) lp += z[t->logit[id]] - lse[t->parent[id]];
    return lp;
}

static int probs_row(const ds_class_tree *t, const float *z, int sample, double *lse, float *cp, float *np)
{
    if (block_lse(t, z, sample, lse)) return -1;
    for (int c = 0; c < t->classes; c++) cp[c] = (float)exp(log_reach(t, z, lse, c));
    for (int k = 0; np && k < t->n_nodes; k++) np[k] = (float)exp(log_reach(t, z, lse, t->classes + k));
    return 0;
}

static int tree_ok(const ds_class_tree *t, const void *a, const void *b)
{
    return t && a && b ? 0 : ds_fail("class tree: NULL tree or buffer");
}

int ds_hier_probs(const ds_class_tree *t, const float *logits, float *class_probs, float *node_probs)
{
    if (tree_ok(t, logits, class_probs)) return -1;
    double *lse = malloc((size_t)t->n_nodes * sizeof *lse);
    if (!lse) return ds_fail("out of memory");
    int rc = probs_row(t, logits, -1, lse, class_probs, node_probs);
    free(lse);
    return rc;
}

int ds_hier_probs_rows(const ds_class_tree *t, const float *logits, int rows, int first, float *class_probs)
{
    if (tree_ok(t, logits, class_probs)) return -1;
    double *lse = malloc((size_t)t->n_nodes * sizeof *lse);
    if (!lse) return ds_fail("out of memory");
    int rc = 0;
    for (int i = 0; i < rows && !rc; i++)
        rc = probs_row(t, logits + (size_t)i * t->n_logits, first + i, lse,
                       class_probs + (size_t)i * t->classes, NULL);
    free(lse);
    return rc;
}

int ds_hier_path_text(const ds_class_tree *t, const float *logits, const char *const *class_names, char *buf,
                      size_t size)
{
    if (buf && size) buf[0] = 0;
    if (tree_ok(t, logits, buf)) return -1;
    if (!size) return ds_fail("class tree: empty text buffer");
    double *lse = malloc((size_t)t->n_nodes * sizeof *lse);
    if (!lse) return ds_fail("out of memory");
    if (block_lse(t, logits, -1, lse)) {
        free(lse);
        return -1;
    }
    size_t len = 0;
    for (int k = t->root;;) {
        int best = t->first[k];
        for (int j = best + 1; j < t->first[k] + t->n_children[k]; j++)
            if (logits[j] > logits[best]) best = j;
        double p = exp(logits[best] - lse[k]);
        int id = t->children[best];
        const char *sep = k == t->root ? "" : " > ";
        if (len < size) {
            if (id >= t->classes)
                len += (size_t)snprintf(buf + len, size - len, "%s%s? %.2f", sep, t->names[id - t->classes], p);
            else if (class_names)
                len += (size_t)snprintf(buf + len, size - len, "%s%s %.2f", sep, class_names[id], p);
            else
                len += (size_t)snprintf(buf + len, size - len, "%s%d %.2f", sep, id, p);
        }
        if (id < t->classes) break;
        k = id - t->classes;
    }
    free(lse);
    return 0;
}

/* ---- metrics per level ---- */

void ds_hier_metrics_free(ds_hier_metrics *m)
{
    if (!m) return;
    free(m->groups);
    free(m->accuracy); /* macro_f1 shares its block */
    if (m->node_confusion) free(m->node_confusion[0]);
    free(m->node_confusion);
    memset(m, 0, sizeof *m);
}

/* The ancestor of id at depth l (id itself when it is no deeper). */
static int ancestor(const ds_class_tree *t, int id, int l)
{
    while (t->level[id] > l) id = t->classes + t->parent[id];
    return id;
}

/* path[d] = the ancestor of class c at depth d, d = 0 (the root) .. level[c]. */
static void path_of(const ds_class_tree *t, int c, int *path)
{
    for (int id = c; id >= 0; id = t->parent[id] >= 0 ? t->classes + t->parent[id] : -1) path[t->level[id]] = id;
}

/* Accuracy and macro F1 of level l from the predictions; grp, tp, npred and
 * nsup are scratch of classes + n_nodes entries. */
static void level_scores(const ds_class_tree *t, const int *pred, const float *labels, int n, int l, int *grp,
                         int *tp, int *npred, int *nsup, ds_hier_metrics *m)
{
    int ids = t->classes + t->n_nodes, groups = 0, hits = 0;
    for (int id = 0; id < ids; id++) {
        int is_group = id < t->classes ? t->level[id] <= l : t->level[id] == l;
        grp[id] = is_group ? groups++ : -1;
        tp[id] = npred[id] = nsup[id] = 0;
    }
    for (int i = 0; i < n; i++) {
        int a = ancestor(t, (int)labels[i], l), b = ancestor(t, pred[i], l);
        nsup[grp[a]]++;
        npred[grp[b]]++;
        if (a == b) tp[grp[a]]++, hits++;
    }
    double f1 = 0;
    for (int g = 0; g < groups; g++) {
        double p = npred[g] ? (double)tp[g] / npred[g] : 0, r = nsup[g] ? (double)tp[g] / nsup[g] : 0;
        f1 += p + r > 0 ? 2 * p * r / (p + r) : 0;
    }
    m->groups[l - 1] = groups;
    m->accuracy[l - 1] = (double)hits / n;
    m->macro_f1[l - 1] = f1 / groups;
}

int ds_hier_metrics_compute(const ds_class_tree *t, const float *probs, const float *labels, int n,
                            ds_hier_metrics *m)
{
    if (!m) return ds_fail("hier metrics: output is NULL");
    memset(m, 0, sizeof *m);
    if (tree_ok(t, probs, labels)) return -1;
    if (n < 1) return ds_fail("hier metrics: no samples");
    int C = t->classes, ids = C + t->n_nodes;
    for (size_t i = 0; i < (size_t)n * C; i++)
        if (!isfinite(probs[i]))
            return ds_fail("hier metrics: sample %zu: the probability of class %zu is %s (the model's output is "
                           "not finite)", i / (size_t)C, i % (size_t)C,
                           isnan(probs[i]) ? "NaN" : probs[i] > 0 ? "+Inf" : "-Inf");
    for (int i = 0; i < n; i++)
        if (!(labels[i] >= 0 && labels[i] < (float)C) || labels[i] != floorf(labels[i]))
            return ds_fail("hier metrics: label %g of sample %d is not a class in 0..%d", labels[i], i, C - 1);
    size_t cells = 0;
    for (int k = 0; k < t->n_nodes; k++) cells += (size_t)t->n_children[k] * (size_t)t->n_children[k];
    int *pred = malloc((size_t)n * sizeof *pred), *scratch = malloc((size_t)4 * ids * sizeof *scratch);
    int *py = malloc(2 * ((size_t)t->depth + 1) * sizeof *py), *pp = py + t->depth + 1;
    m->groups = calloc((size_t)t->depth, sizeof *m->groups);
    m->accuracy = calloc(2 * (size_t)t->depth, sizeof *m->accuracy);
    m->node_confusion = calloc((size_t)t->n_nodes, sizeof *m->node_confusion);
    int *cells_block = m->node_confusion ? calloc(cells, sizeof *cells_block) : NULL;
    if (!pred || !scratch || !py || !m->groups || !m->accuracy || !cells_block) {
        free(cells_block);
        free(pred), free(scratch), free(py);
        ds_hier_metrics_free(m);
        return ds_fail("hier metrics: out of memory");
    }
    for (int k = 0, off = 0; k < t->n_nodes; k++) {
        m->node_confusion[k] = cells_block + off;
        off += t->n_children[k] * t->n_children[k];
    }
    m->n = n;
    m->levels = t->depth;
    m->macro_f1 = m->accuracy + t->depth;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * C;
        int best = 0, y = (int)labels[i];
        for (int k = 1; k < C; k++)
            if (p[k] > p[best]) best = k;
        pred[i] = best;
        if (best != y) {
            m->leaf_errors++;
            m->errors_in_parent += t->parent[best] == t->parent[y];
        }
        /* every node both paths pass through: which child each takes there */
        path_of(t, y, py);
        path_of(t, best, pp);
        for (int d = 0; d < t->level[y] && d < t->level[best] && py[d] == pp[d]; d++) {
            int k = py[d] - C, a = t->logit[py[d + 1]] - t->first[k], b = t->logit[pp[d + 1]] - t->first[k];
            m->node_confusion[k][a * t->n_children[k] + b]++;
        }
    }
    m->in_parent_share = m->leaf_errors ? (double)m->errors_in_parent / m->leaf_errors : NAN;
    for (int l = 1; l <= t->depth; l++)
        level_scores(t, pred, labels, n, l, scratch, scratch + ids, scratch + 2 * ids, scratch + 3 * ids, m);
    free(pred), free(scratch), free(py);
    return 0;
}

int ds_hier_metrics_text(const ds_class_tree *t, const ds_hier_metrics *m, const char *const *class_names,
                         char *buf, size_t size)
{
    if (!t || !m || !buf || !size) return ds_fail("hier metrics text: NULL tree, metrics or buffer");
    buf[0] = 0;
    size_t len = 0;
#define PUT(...) (len += len < size ? (size_t)snprintf(buf + len, size - len, __VA_ARGS__) : 0)
    for (int l = 1; l <= m->levels; l++) {
        PUT("level %d, %d groups (", l, m->groups[l - 1]);
        int k = 0;
        for (int id = 0; id < t->classes + t->n_nodes; id++) {
            int is_group = id < t->classes ? t->level[id] <= l : t->level[id] == l;
            if (!is_group) continue;
            if (id >= t->classes) PUT("%s%s", k++ ? ", " : "", t->names[id - t->classes]);
            else if (class_names) PUT("%s%s", k++ ? ", " : "", class_names[id]);
            else PUT("%s%d", k++ ? ", " : "", id);
        }
        PUT("): accuracy %.4f, macro F1 %.4f\n", m->accuracy[l - 1], m->macro_f1[l - 1]);
    }
    for (int k = 0; k < t->n_nodes; k++) {
        int nc = t->n_children[k], reach = 0, same = 0;
        for (int a = 0; a < nc; a++)
            for (int b = 0; b < nc; b++) {
                reach += m->node_confusion[k][a * nc + b];
                same += a == b ? m->node_confusion[k][a * nc + b] : 0;
            }
        if (reach)
            PUT("question '%s': the same answer for %.4f of %d samples that reach it on both paths\n", t->names[k],
                (double)same / reach, reach);
        else PUT("question '%s': no sample reaches it on both paths\n", t->names[k]);
    }
    if (m->leaf_errors)
        PUT("mistakes inside their parent: %d of %d (%.1f %%)\n", m->errors_in_parent, m->leaf_errors,
            100 * m->in_parent_share);
    else PUT("mistakes inside their parent: no mistakes\n");
#undef PUT
    return 0;
}
