/* hier.c — hierarchical softmax cross-entropy over a class tree: each
 * internal node's block of logits is a softmax over its children, and a
 * sample's loss sums −log of the conditional probability of each step on
 * its true class's path (Morin & Bengio 2005; YOLO9000's WordTree). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the op keeps of the tree (n->cdata points at it: one malloc'd block,
 * freed with the node): every node's logit block, and every class's path
 * from the root as the nodes and the logits chosen on the way. */
typedef struct hier_plan {
    int classes, n_nodes, n_logits;
    const int *first, *n_children; /* [n_nodes] */
    const int *path_off;           /* [classes + 1] class c's steps are path_off[c] .. path_off[c+1]−1 */
    const int *path_node, *path_logit;
    const float *weights;          /* [classes] or NULL */
} hier_plan;

static const hier_plan *plan_of(const ds_node *n) { return (const hier_plan *)(const void *)n->cdata; }

static hier_plan *plan_new(const ds_class_tree *t, const float *w)
{
    size_t steps = 0;
    for (int c = 0; c < t->classes; c++) steps += (size_t)t->level[c];
    size_t ints = 2 * (size_t)t->n_nodes + (size_t)t->classes + 1 + 2 * steps;
    size_t bytes = sizeof(hier_plan) + ints * sizeof(int) + (w ? (size_t)t->classes * sizeof(float) : 0);
    hier_plan *p = malloc(bytes);
    if (!p) return NULL;
    int *v = (int *)(p + 1), *first = v, *nch = first + t->n_nodes, *off = nch + t->n_nodes;
    int *node = off + t->classes + 1, *logit = node + steps;
    memcpy(first, t->first, (size_t)t->n_nodes * sizeof *first);
    memcpy(nch, t->n_children, (size_t)t->n_nodes * sizeof *nch);
    off[0] = 0;
    for (int c = 0; c < t->classes; c++) {
        off[c + 1] = off[c] + t->level[c];
        /* walk up from the class, filling its steps from the last */
        for (int id = c, s = off[c + 1] - 1; t->parent[id] >= 0; id = t->classes + t->parent[id], s--) {
            node[s] = t->parent[id];
            logit[s] = t->logit[id];
        }
    }
    float *wc = NULL;
    if (w) {
        wc = (float *)(logit + steps);
        memcpy(wc, w, (size_t)t->classes * sizeof *wc);
    }
    *p = (hier_plan){t->classes, t->n_nodes, t->n_logits, first, nch, off, node, logit, wc};
    return p;
}

/* logits [N, L…] read as [N, L], labels [N]; aux: softmax of every block [N, L], then Σ wᵧ. */
static int hier_shape(ds_node *n)
{
    const ds_node *z = n->in[0], *t = n->in[1];
    const hier_plan *p = plan_of(n);
    size_t rows = (size_t)z->shape.d[0], l = ds_numel(z) / rows;
    char sz[96], st[96];
    if (l != (size_t)p->n_logits)
        return ds_shape_fail(n, "logits '%s' %s need %d columns, one per child of each node of the class tree",
                             z->name, ds_shape_str(z->shape, sz, sizeof sz), p->n_logits);
    if (ds_numel(t) != rows)
        return ds_shape_fail(n, "labels '%s' %s need one class index per row of logits '%s' %s", t->name,
                             ds_shape_str(t->shape, st, sizeof st), z->name, ds_shape_str(z->shape, sz, sizeof sz));
    n->aux_bytes = (rows * l + 1) * sizeof(float);
    n->shape = ds_shape_of(1, 1);
    return 0;
}

/* loss = Σᵢ wᵧᵢ·Σ_{steps (k, j) of yᵢ} (log Σ_{b ∈ block k} e^zᵢᵦ − zᵢⱼ) / Σᵢ wᵧᵢ */
static void hier_forward(ds_node *n, ds_graph *g)
{
    const hier_plan *p = plan_of(n);
    const float *z = n->in[0]->val, *t = n->in[1]->val, *w = p->weights;
    size_t rows = (size_t)n->in[0]->shape.d[0], l = (size_t)p->n_logits;
    float *prob = n->aux;
    double loss = 0, wsum = 0;
    for (size_t r = 0; r < rows; r++) {
        float lab = t[r];
        if (!(lab >= 0 && lab < (float)p->classes) || lab != floorf(lab)) {
            ds_op_error(g, n, "label %g in row %zu is not a class index in 0..%d", lab, r, p->classes - 1);
            return;
        }
        const float *zr = z + r * l;
        float *pr = prob + r * l;
        for (int k = 0; k < p->n_nodes; k++) {
            const float *zb = zr + p->first[k];
            float *pb = pr + p->first[k], m = zb[0];
            int nc = p->n_children[k];
            for (int j = 1; j < nc; j++) m = fmaxf(m, zb[j]);
            double s = 0;
            for (int j = 0; j < nc; j++) s += exp((double)(zb[j] - m));
            for (int j = 0; j < nc; j++) pb[j] = (float)(exp((double)(zb[j] - m)) / s);
        }
        int y = (int)lab;
        double li = 0;
        for (int s = p->path_off[y]; s < p->path_off[y + 1]; s++) {
            int k = p->path_node[s], nc = p->n_children[k];
            const float *zb = zr + p->first[k];
            float m = zb[0];
            for (int j = 1; j < nc; j++) m = fmaxf(m, zb[j]);
            double e = 0;
            for (int j = 0; j < nc; j++) e += exp((double)(zb[j] - m));
            li += log(e) + m - zr[p->path_logit[s]];
        }
        double wy = w ? w[y] : 1.0;
        loss += wy * li;
        wsum += wy;
    }
    prob[rows * l] = (float)wsum;
    n->val[0] = (float)(loss / wsum);
}

/* dz[block k] = dL·wᵧ·(softmax(z[block k]) − onehot(step's logit))/Σ wᵧ for
 * each node k on y's path; 0 for the blocks off it. */
static void hier_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const hier_plan *p = plan_of(n);
    const float *t = n->in[1]->val, *w = p->weights, *prob = n->aux;
    size_t rows = (size_t)n->in[0]->shape.d[0], l = (size_t)p->n_logits;
    float *dz = n->in[0]->grad, scale = n->grad[0] / prob[rows * l];
    if (!dz) return;
    for (size_t r = 0; r < rows; r++) {
        int y = (int)t[r];
        float kf = scale * (w ? w[y] : 1.0f);
        for (int s = p->path_off[y]; s < p->path_off[y + 1]; s++) {
            int k = p->path_node[s], b = p->first[k], nc = p->n_children[k];
            for (int j = 0; j < nc; j++)
                dz[r * l + (size_t)(b + j)] += kf * (prob[r * l + (size_t)(b + j)] - (b + j == p->path_logit[s]));
        }
    }
}

static const ds_op op_hier = {"hier_softmax_cross_entropy", hier_shape, hier_forward, hier_backward};

/* The current error, recorded on the graph so that compile repeats it. */
static void poison(ds_graph *g)
{
    g->failed = true;
    snprintf(g->fail_msg, sizeof g->fail_msg, "%s", ds_last_error());
}

ds_node *ds_hier_softmax_cross_entropy(ds_graph *g, ds_node *logits, ds_node *labels, const ds_class_tree *tree,
                                       const float *class_weights)
{
    if (g && !g->failed && !tree) {
        ds_fail("hier_softmax_cross_entropy: the class tree is NULL");
        poison(g);
        return NULL;
    }
    ds_node *n = ds_node_new(g, &op_hier, 2, (ds_node *[]){logits, labels});
    if (!n) return NULL;
    if (!(n->cdata = (float *)(void *)plan_new(tree, class_weights))) {
        ds_fail("out of memory");
        poison(g); /* the node is in the graph without its plan: it must never be compiled */
        return NULL;
    }
    return ds_node_finish(g, n);
}
