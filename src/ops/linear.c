/* linear.c — matmul and the dense (fully connected) op, on sgemm. */
#include "internal.h"

#include <string.h>

/* y [M,N] = a [M,K] · b [K,N] */
static int matmul_shape(ds_node *n)
{
    const ds_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    if (a->ndim != 2 || b->ndim != 2 || a->d[1] != b->d[0]) {
        char sa[96], sb[96];
        return ds_shape_fail(n, "needs a [M,K] and b [K,N]; got %s ('%s') and %s ('%s')",
                             ds_shape_str(*a, sa, sizeof sa), n->in[0]->name,
                             ds_shape_str(*b, sb, sizeof sb), n->in[1]->name);
    }
    n->shape = ds_shape_of(2, a->d[0], b->d[1]);
    return 0;
}

static void matmul_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    int m = n->shape.d[0], k = n->in[0]->shape.d[1], p = n->shape.d[1];
    ds_gemm(false, false, m, p, k, 1, n->in[0]->val, k, n->in[1]->val, p, 0, n->val, p);
}

/* da += dy·bᵀ;  db += aᵀ·dy */
static void matmul_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    int m = n->shape.d[0], k = n->in[0]->shape.d[1], p = n->shape.d[1];
    if (n->in[0]->grad)
        ds_gemm(false, true, m, k, p, 1, n->grad, p, n->in[1]->val, p, 1, n->in[0]->grad, k);
    if (n->in[1]->grad)
        ds_gemm(true, false, k, p, m, 1, n->in[0]->val, k, n->grad, p, 1, n->in[1]->grad, p);
}

static const ds_op op_matmul = {"matmul", matmul_shape, matmul_forward, matmul_backward};

ds_node *ds_matmul(ds_graph *g, ds_node *a, ds_node *b)
{
    return ds_node_finish(g, ds_node_new(g, &op_matmul, 2, (ds_node *[]){a, b}));
}

/* y [N,O] = x [N,K] · Wᵀ + b, W [O,K]; x of any rank is read as [d0, Π rest]. */
static int linear_shape(ds_node *n)
{
    n->fuses_relu = true; /* a following relu is applied as the output is stored */
    const ds_node *x = n->in[0], *w = n->in[1];
    size_t rows = (size_t)x->shape.d[0], k = ds_numel(x) / rows;
    char sx[96], sw[96];
    if (w->shape.ndim != 2 || (size_t)w->shape.d[1] != k)
        return ds_shape_fail(n, "input %s ('%s') has %zu features per sample but weight '%s' is %s "
                                "(expected [out, %zu])",
                             ds_shape_str(x->shape, sx, sizeof sx), x->name, k, w->name,
                             ds_shape_str(w->shape, sw, sizeof sw), k);
    if (n->n_in == 3 && ds_numel(n->in[2]) != (size_t)w->shape.d[0])
        return ds_shape_fail(n, "bias '%s' has %zu elements, weight '%s' has %d outputs",
                             n->in[2]->name, ds_numel(n->in[2]), w->name, w->shape.d[0]);
    n->shape = ds_shape_of(2, x->shape.d[0], w->shape.d[0]);
    n->grad_overwrites = 1;
    return 0;
}

static void linear_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    int rows = n->shape.d[0], o = n->shape.d[1], k = n->in[1]->shape.d[1];
    float *y = n->val;
    float beta = 0;
    if (rows < 8 || o <= 16) { /* thin: dot products, nothing packed */
        ds_gemm_nt(rows, o, k, n->in[0]->val, k, n->in[1]->val, k, 0, y, o, n->n_in == 3 ? n->in[2]->val : NULL);
        if (n->fused_relu) ds_relu_inplace(y, ds_numel(n));
        return;
    }
    if (n->n_in == 3) {
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * o, n->in[2]->val, (size_t)o * sizeof *y);
        beta = 1;
    }
    ds_gemm(false, true, rows, o, k, 1, n->in[0]->val, k, n->in[1]->val, k, beta, y, o);
    if (n->fused_relu) ds_relu_inplace(y, ds_numel(n));
}

/* dx += dy·W;  dW += dyᵀ·x;  db += Σ_rows dy */
static void linear_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    int rows = n->shape.d[0], o = n->shape.d[1], k = n->in[1]->shape.d[1];
    const float *dy = n->grad;
    if (o <= 4) { /* a few outputs (a discriminator's logit): axpys along k, nothing packed */
        const float *w = n->in[1]->val, *x = n->in[0]->val;
        float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
        for (int r = 0; dx && r < rows; r++) {
            float *d = dx + (size_t)r * k;
            if (n->in[0]->grad_fresh) memset(d, 0, (size_t)k * sizeof *d);
            for (int j = 0; j < o; j++) {
                const float a = dy[(size_t)r * o + j], *wj = w + (size_t)j * k;
                for (int i = 0; i < k; i++) d[i] += a * wj[i];
            }
        }
        for (int j = 0; dw && j < o; j++)
            for (int r = 0; r < rows; r++) {
                const float a = dy[(size_t)r * o + j], *xr = x + (size_t)r * k;
                float *d = dw + (size_t)j * k;
                for (int i = 0; i < k; i++) d[i] += a * xr[i];
            }
    } else {
        if (n->in[0]->grad)
            ds_gemm(false, false, rows, k, o, 1, dy, o, n->in[1]->val, k, n->in[0]->grad_fresh ? 0 : 1,
                    n->in[0]->grad, k);
        if (n->in[1]->grad)
            ds_gemm(true, false, o, k, rows, 1, dy, o, n->in[0]->val, k, 1, n->in[1]->grad, k);
    }
    if (n->n_in == 3 && n->in[2]->grad) {
        float *db = n->in[2]->grad;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < o; j++) db[j] += dy[(size_t)r * o + j];
    }
}

static const ds_op op_linear = {"linear", linear_shape, linear_forward, linear_backward};

ds_node *ds_linear(ds_graph *g, ds_node *x, ds_node *w, ds_node *b)
{
    return ds_node_finish(g, ds_node_new(g, &op_linear, b ? 3 : 2, (ds_node *[]){x, w, b}));
}
