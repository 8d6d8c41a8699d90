/* embedding.c — y[n, :] = W[idx[n], :]: a categorical input (a category's
 * index per sample, as a float) looked up in a table of learned vectors,
 * PyTorch's nn.Embedding; the backward adds dy's rows into dW's. */
#include "internal.h"

#include <math.h>

/* in[0] indices [N] or [N, 1]; in[1] the table [categories, dim] → [N, dim] */
static int embedding_shape(ds_node *n)
{
    const ds_node *x = n->in[0], *w = n->in[1];
    if (ds_numel(x) != (size_t)x->shape.d[0])
        return ds_shape_fail(n, "'%s' must hold one category index per sample ([N] or [N, 1])", x->name);
    if (w->shape.ndim != 2) return ds_shape_fail(n, "the table '%s' must be [categories, dim]", w->name);
    n->shape = ds_shape_of(2, x->shape.d[0], w->shape.d[1]);
    return 0;
}

static void embedding_forward(ds_node *n, ds_graph *g)
{
    const float *idx = n->in[0]->val, *w = n->in[1]->val;
    int N = n->shape.d[0], D = n->shape.d[1], C = n->in[1]->shape.d[0];
    for (int i = 0; i < N; i++) {
        float v = idx[i];
        if (!(v >= 0 && v < C) || v != floorf(v)) {
            ds_op_error(g, n, "sample %d: category %g is not an index 0..%d", i, (double)v, C - 1);
            for (int d = 0; d < D; d++) n->val[(size_t)i * D + d] = 0;
            continue;
        }
        const float *row = w + (size_t)v * D;
        for (int d = 0; d < D; d++) n->val[(size_t)i * D + d] = row[d];
    }
}

/* dW[idx[n]] += dy[n] (in sample order: the same sums on every run); no gradient to the indices */
static void embedding_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    float *dw = n->in[1]->grad;
    if (!dw) return;
    const float *idx = n->in[0]->val;
    int N = n->shape.d[0], D = n->shape.d[1], C = n->in[1]->shape.d[0];
    for (int i = 0; i < N; i++) {
        float v = idx[i];
        if (!(v >= 0 && v < C)) continue;
        float *row = dw + (size_t)v * D;
        for (int d = 0; d < D; d++) row[d] += n->grad[(size_t)i * D + d];
    }
}

static const ds_op op_embedding = {"embedding", embedding_shape, embedding_forward, embedding_backward};

ds_node *ds_embedding(ds_graph *g, ds_node *idx, ds_node *table)
{
    return ds_node_finish(g, ds_node_new(g, &op_embedding, 2, (ds_node *[]){idx, table}));
}
