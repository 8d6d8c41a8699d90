/* shape.c — concat along channels, reshape and flatten. */
#include "internal.h"

#include <string.h>

/* ---- concat along dim 1: inputs agree on every other dimension ---- */

static int concat_shape(ds_node *n)
{
    const ds_shape *a = &n->in[0]->shape;
    char sa[96], sb[96];
    if (a->ndim < 2) return ds_shape_fail(n, "input '%s' has no dim 1 to concatenate on", n->in[0]->name);
    n->shape = *a;
    n->shape.d[1] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const ds_shape *b = &n->in[i]->shape;
        bool ok = b->ndim == a->ndim;
        for (int k = 0; ok && k < a->ndim; k++) ok = k == 1 || a->d[k] == b->d[k];
        if (!ok)
            return ds_shape_fail(n, "'%s' %s and '%s' %s differ outside dim 1", n->in[0]->name,
                                 ds_shape_str(*a, sa, sizeof sa), n->in[i]->name,
                                 ds_shape_str(*b, sb, sizeof sb));
        n->shape.d[1] += b->d[1];
    }
    return 0;
}

/* Each input is [outer, Ci·inner]; the output interleaves them per outer index. */
static void concat_run(ds_node *n, int backward)
{
    size_t outer = (size_t)n->shape.d[0], row = ds_numel(n) / outer, off = 0;
    for (int i = 0; i < n->n_in; i++) {
        ds_node *x = n->in[i];
        size_t len = ds_numel(x) / outer;
        if (backward && !x->grad) {
            off += len;
            continue;
        }
        for (size_t o = 0; o < outer; o++) {
            if (backward) {
                const float *src = n->grad + o * row + off;
                float *dst = x->grad + o * len;
                for (size_t k = 0; k < len; k++) dst[k] += src[k];
            } else {
                memcpy(n->val + o * row + off, x->val + o * len, len * sizeof(float));
            }
        }
        off += len;
    }
}

static void concat_forward(ds_node *n, ds_graph *g) { (void)g; concat_run(n, 0); }
static void concat_backward(ds_node *n, ds_graph *g) { (void)g; concat_run(n, 1); }

static const ds_op op_concat = {"concat", concat_shape, concat_forward, concat_backward};

ds_node *ds_concat(ds_graph *g, int n, ds_node **xs)
{
    if (n < 1 || !xs) {
        ds_fail("concat needs at least one input");
        return NULL;
    }
    return ds_node_finish(g, ds_node_new(g, &op_concat, n, xs));
}

/* ---- reshape: ip[0] = ndim, ip[1..] = sizes (0 copies, −1 infers) ---- */

static int reshape_shape(ds_node *n)
{
    const ds_shape *x = &n->in[0]->shape;
    int nd = n->ip[0], infer = -1;
    size_t known = 1, total = ds_shape_numel(*x);
    char sx[96];
    if (nd < 1 || nd > DS_MAX_DIMS) return ds_shape_fail(n, "target rank %d is outside 1..%d", nd, DS_MAX_DIMS);
    n->shape.ndim = nd;
    for (int k = 0; k < nd; k++) {
        int v = n->ip[1 + k];
        if (v == 0) {
            if (k >= x->ndim) return ds_shape_fail(n, "size 0 at dim %d copies a dimension '%s' lacks", k, n->in[0]->name);
            v = x->d[k];
        } else if (v == -1) {
            if (infer >= 0) return ds_shape_fail(n, "more than one -1 in the target shape");
            infer = k;
            v = 1;
        } else if (v < 0) {
            return ds_shape_fail(n, "size %d at dim %d", v, k);
        }
        n->shape.d[k] = v;
        known *= (size_t)v;
    }
    if (infer >= 0 && known && total % known == 0) n->shape.d[infer] = (int)(total / known);
    if (ds_shape_numel(n->shape) != total) {
        char sy[96];
        return ds_shape_fail(n, "cannot reshape '%s' %s (%zu elements) to %s", n->in[0]->name,
                             ds_shape_str(*x, sx, sizeof sx), total,
                             ds_shape_str(n->shape, sy, sizeof sy));
    }
    n->is_view = true;       /* compile may make it share its input's buffers */
    n->grad_overwrites = 1; /* backward writes dx whole when it is fresh */
    return 0;
}

/* A view (n->alias: compile found nothing else reading the input, the
 * tensors are contiguous) shares its input's value and gradient: nothing
 * to do either way. Otherwise a copy. */
static void reshape_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    if (n->alias) return;
    memcpy(n->val, n->in[0]->val, ds_numel(n) * sizeof(float));
}

static void reshape_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    if (n->alias) return; /* dy is dx: the graph marked it fresh rather than zeroing it */
    float *dx = n->in[0]->grad;
    if (n->in[0]->grad_fresh) memcpy(dx, n->grad, ds_numel(n) * sizeof *dx);
    else
        for (size_t i = 0, e = ds_numel(n); i < e; i++) dx[i] += n->grad[i];
}

static const ds_op op_reshape = {"reshape", reshape_shape, reshape_forward, reshape_backward};

ds_node *ds_reshape(ds_graph *g, ds_node *x, ds_shape shape)
{
    ds_node *n = ds_node_new(g, &op_reshape, 1, &x);
    if (!n) return NULL;
    n->ip[0] = shape.ndim;
    for (int k = 0; k < shape.ndim && k < DS_MAX_DIMS; k++) n->ip[1 + k] = shape.d[k];
    return ds_node_finish(g, n);
}

ds_node *ds_flatten(ds_graph *g, ds_node *x) { return ds_reshape(g, x, ds_shape_of(2, 0, -1)); }
