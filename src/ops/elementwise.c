/* elementwise.c — add/sub/mul with NumPy broadcasting, and the pointwise
 * activations. Each forward is followed by its derivative. */
#include "internal.h"
#include "bn_add.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- broadcasting binary ops ---------------------------------------------
 * Shapes are right-aligned; a size-1 dimension repeats. Iteration runs over
 * the output with per-operand strides (0 on repeated dimensions), so the
 * backward pass sums over repeated positions just by accumulating. */

enum { BIN_ADD, BIN_SUB, BIN_MUL };

typedef struct {
    int nd;
    int d[DS_MAX_DIMS];
    size_t sa[DS_MAX_DIMS], sb[DS_MAX_DIMS];
} bcast;

static void bcast_make(const ds_node *n, bcast *bc)
{
    const ds_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape, *o = &n->shape;
    size_t ma = 1, mb = 1;
    bc->nd = o->ndim;
    for (int k = o->ndim - 1; k >= 0; k--) {
        int ka = k - (o->ndim - a->ndim), kb = k - (o->ndim - b->ndim);
        int da = ka >= 0 ? a->d[ka] : 1, db = kb >= 0 ? b->d[kb] : 1;
        bc->d[k] = o->d[k];
        bc->sa[k] = da == 1 ? 0 : ma;
        bc->sb[k] = db == 1 ? 0 : mb;
        ma *= (size_t)da;
        mb *= (size_t)db;
    }
}

static bool same_shapes(const ds_node *n)
{
    size_t total = ds_numel(n);
    return ds_numel(n->in[0]) == total && ds_numel(n->in[1]) == total && n->in[0] != n->in[1];
}

static int binary_shape(ds_node *n)
{
    const ds_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    n->shape.ndim = nd;
    for (int k = 0; k < nd; k++) {
        int ka = k - (nd - a->ndim), kb = k - (nd - b->ndim);
        int da = ka >= 0 ? a->d[ka] : 1, db = kb >= 0 ? b->d[kb] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            return ds_shape_fail(n, "cannot broadcast %s ('%s') with %s ('%s')",
                                 ds_shape_str(*a, sa, sizeof sa), n->in[0]->name,
                                 ds_shape_str(*b, sb, sizeof sb), n->in[1]->name);
        }
        n->shape.d[k] = da > db ? da : db;
    }
    if (same_shapes(n)) n->grad_overwrites = 3;
    /* a relu after it can be fused; after a same-shape add (a residual
     * block's end) the backward masks dy itself */
    n->fuses_relu = true;
    n->masks_relu = n->ip[0] == BIN_ADD && n->n_in == 2 && ds_numel(n->in[0]) == ds_numel(n) &&
                    ds_numel(n->in[1]) == ds_numel(n) && n->in[0] != n->in[1];
    return 0;
}

/* Visit the output in rows of the last dimension: body(ia, ib, io, len, sa, sb). */
#define BCAST_LOOP(bc, total, ...)                                                   \
    do {                                                                             \
        int _idx[DS_MAX_DIMS] = {0};                                                 \
        int _nd = (bc).nd, _inner = _nd ? (bc).d[_nd - 1] : 1;                       \
        size_t ia = 0, ib = 0, sa = _nd ? (bc).sa[_nd - 1] : 0,                      \
               sb = _nd ? (bc).sb[_nd - 1] : 0;                                      \
        for (size_t io = 0; io < (total); io += (size_t)_inner) {                    \
            __VA_ARGS__;                                                                  \
            for (int k = _nd - 2; k >= 0; k--) {                                     \
                ia += (bc).sa[k];                                                    \
                ib += (bc).sb[k];                                                    \
                if (++_idx[k] < (bc).d[k]) break;                                    \
                ia -= (bc).sa[k] * (size_t)(bc).d[k];                                \
                ib -= (bc).sb[k] * (size_t)(bc).d[k];                                \
                _idx[k] = 0;                                                         \
            }                                                                        \
        }                                                                            \
        (void)sa;                                                                    \
        (void)sb;                                                                    \
    } while (0)

/* Same shapes: plain loops over ranges, in parallel (no broadcasting). */
static void same_forward_range(void *arg, long lo, long hi)
{
    const ds_node *n = arg;
    const float *a = n->in[0]->val, *b = n->in[1]->val;
    float *y = n->val;
    if (n->ip[0] == BIN_ADD && n->fused_relu)
        for (long i = lo; i < hi; i++) y[i] = a[i] + b[i] > 0 ? a[i] + b[i] : 0; /* a residual block's end */
    else if (n->ip[0] == BIN_ADD) for (long i = lo; i < hi; i++) y[i] = a[i] + b[i];
    if (n->ip[0] == BIN_SUB) for (long i = lo; i < hi; i++) y[i] = a[i] - b[i];
    if (n->ip[0] == BIN_MUL) for (long i = lo; i < hi; i++) y[i] = a[i] * b[i];
    if (n->ip[0] != BIN_ADD && n->fused_relu)
        for (long i = lo; i < hi; i++) y[i] = y[i] > 0 ? y[i] : 0;
}

/* an add with a batch norm folded into it (bn_add.h; the batch norm is its
 * alias): z from the batch norm's input and statistics, planes [lo, hi) */
static int folded_input(const ds_node *n) { return n->in[0] == n->alias ? 0 : 1; }

static void bn_add_forward_range(void *arg, long lo, long hi)
{
    const ds_node *n = arg;
    int j = folded_input(n);
    ds_bn_add_apply(n->in[j], n->in[1 - j]->val, n->val, n->fused_relu, lo, hi);
}

/* its backward: dz (the batch norm's dy: one buffer) masked in place by
 * z > 0 under a fused relu, and into the shortcut's gradient */
static void bn_add_backward_range(void *arg, long lo, long hi)
{
    const ds_node *n = arg;
    int j = folded_input(n);
    const float *z = n->val;
    float *dz = n->grad, *ds = n->in[1 - j]->grad;
    bool fresh = n->in[1 - j]->grad_fresh, mask = n->relu_mask_in_backward;
    for (long i = lo; i < hi; i++) {
        float d = mask && !(z[i] > 0) ? 0 : dz[i];
        if (mask) dz[i] = d;
        if (ds) ds[i] = (fresh ? 0 : ds[i]) + d;
    }
}

static void same_backward_range(void *arg, long lo, long hi)
{
    const ds_node *n = arg;
    const float *a = n->in[0]->val, *b = n->in[1]->val, *dy = n->grad;
    float *da = n->in[0]->grad, *db = n->in[1]->grad;
    int kind = n->ip[0];
    bool fa = n->in[0]->grad_fresh, fb = n->in[1]->grad_fresh; /* write, don't add */
    if (n->alias) {
        bn_add_backward_range(arg, lo, hi);
        return;
    }
    if (n->relu_mask_in_backward) { /* a residual block's end: d(relu(a + b)) */
        const float *y = n->val;
        for (long i = lo; i < hi; i++) {
            float d = y[i] > 0 ? dy[i] : 0;
            if (da) da[i] = (fa ? 0 : da[i]) + d;
            if (db) db[i] = (fb ? 0 : db[i]) + d;
        }
        return;
    }
    if (da && kind == BIN_MUL) for (long i = lo; i < hi; i++) da[i] = (fa ? 0 : da[i]) + dy[i] * b[i];
    else if (da && fa) memcpy(da + lo, dy + lo, (size_t)(hi - lo) * sizeof *da);
    else if (da) for (long i = lo; i < hi; i++) da[i] += dy[i];
    if (db && kind == BIN_MUL) for (long i = lo; i < hi; i++) db[i] = (fb ? 0 : db[i]) + dy[i] * a[i];
    else if (db && kind == BIN_SUB) for (long i = lo; i < hi; i++) db[i] = (fb ? 0 : db[i]) - dy[i];
    else if (db && fb) memcpy(db + lo, dy + lo, (size_t)(hi - lo) * sizeof *db);
    else if (db) for (long i = lo; i < hi; i++) db[i] += dy[i];
}

static void binary_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *a = n->in[0]->val, *b = n->in[1]->val;
    float *y = n->val;
    size_t total = ds_numel(n);
    int kind = n->ip[0];
    if (n->alias) { /* a batch norm folded into it (bn_add.h) */
        long planes;
        size_t inner;
        ds_bn_planes(n->alias, &planes, &inner);
        ds_parallel_for(planes, (long)((1 << 14) / (inner ? inner : 1)) + 1, bn_add_forward_range, n);
        return;
    }
    if (ds_numel(n->in[0]) == total && ds_numel(n->in[1]) == total) { /* same shape */
        ds_parallel_for((long)total, 1 << 14, same_forward_range, n);
        return;
    }
    bcast bc;
    bcast_make(n, &bc);
    int inner = bc.nd ? bc.d[bc.nd - 1] : 1;
    BCAST_LOOP(bc, total, {
        for (int j = 0; j < inner; j++) {
            float av = a[ia + (size_t)j * sa], bv = b[ib + (size_t)j * sb];
            y[io + (size_t)j] = kind == BIN_ADD ? av + bv : kind == BIN_SUB ? av - bv : av * bv;
        }
    });
    if (n->fused_relu) ds_relu_inplace(y, total);
}

/* d(a+b) = (dy, dy); d(a−b) = (dy, −dy); d(a·b) = (dy·b, dy·a) */
static void binary_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *a = n->in[0]->val, *b = n->in[1]->val, *dy = n->grad;
    float *da = n->in[0]->grad, *db = n->in[1]->grad;
    size_t total = ds_numel(n);
    int kind = n->ip[0];
    if (same_shapes(n)) { /* (add(x, x) shares one gradient: the general loop below) */
        ds_parallel_for((long)total, 1 << 14, same_backward_range, n);
        return;
    }
    bcast bc;
    bcast_make(n, &bc);
    int inner = bc.nd ? bc.d[bc.nd - 1] : 1;
    BCAST_LOOP(bc, total, {
        for (int j = 0; j < inner; j++) {
            float d = dy[io + (size_t)j];
            size_t pa = ia + (size_t)j * sa, pb = ib + (size_t)j * sb;
            if (da) da[pa] += kind == BIN_MUL ? d * b[pb] : d;
            if (db) db[pb] += kind == BIN_MUL ? d * a[pa] : kind == BIN_SUB ? -d : d;
        }
    });
}

static const ds_op op_add = {"add", binary_shape, binary_forward, binary_backward};
static const ds_op op_sub = {"sub", binary_shape, binary_forward, binary_backward};
static const ds_op op_mul = {"mul", binary_shape, binary_forward, binary_backward};

static ds_node *binary(ds_graph *g, const ds_op *op, int kind, ds_node *a, ds_node *b)
{
    ds_node *n = ds_node_new(g, op, 2, (ds_node *[]){a, b});
    if (!n) return NULL;
    n->ip[0] = kind;
    return ds_node_finish(g, n);
}

ds_node *ds_add(ds_graph *g, ds_node *a, ds_node *b) { return binary(g, &op_add, BIN_ADD, a, b); }
ds_node *ds_sub(ds_graph *g, ds_node *a, ds_node *b) { return binary(g, &op_sub, BIN_SUB, a, b); }
ds_node *ds_mul(ds_graph *g, ds_node *a, ds_node *b) { return binary(g, &op_mul, BIN_MUL, a, b); }

/* ---- pointwise activations ---- */

static int same_shape(ds_node *n)
{
    n->shape = n->in[0]->shape;
    return 0;
}

/* y = max(0, x);  dx = dy·[x > 0] (the two largest pointwise ops in a CNN: threaded) */
static void relu_forward_range(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    const float *x = n->in[0]->val;
    float *y = n->val;
    for (long i = lo; i < hi; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
static void relu_backward_range(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    const float *x = n->in[0]->val, *dy = n->grad;
    float *dx = n->in[0]->grad;
    bool fresh = n->in[0]->grad_fresh;
    int rule = n->ip[1]; /* the graph's rule, copied by relu_backward */
    if (rule == DS_RELU_BACKWARD_STANDARD && fresh) {
        for (long i = lo; i < hi; i++) dx[i] = x[i] > 0 ? dy[i] : 0;
        return;
    }
    if (rule == DS_RELU_BACKWARD_STANDARD) {
        for (long i = lo; i < hi; i++) dx[i] += x[i] > 0 ? dy[i] : 0;
        return;
    }
    for (long i = lo; i < hi; i++) {
        /* guided backprop: dy·[x > 0]·[dy > 0]; deconvnet: dy·[dy > 0]
         * (Springenberg et al. 2015, Zeiler & Fergus 2013) */
        float d = rule == DS_RELU_BACKWARD_GUIDED ? (x[i] > 0 && dy[i] > 0 ? dy[i] : 0) : (dy[i] > 0 ? dy[i] : 0);
        dx[i] = fresh ? d : dx[i] + d;
    }
}

static int relu_shape(ds_node *n)
{
    n->is_relu = true; /* compile may fuse it into its producer */
    n->grad_overwrites = 1;
    return same_shape(n);
}
static void relu_inplace_range(void *arg, long lo, long hi)
{
    float *v = arg;
    for (long i = lo; i < hi; i++) v[i] = v[i] > 0 ? v[i] : 0;
}

void ds_relu_inplace(float *v, size_t n) { ds_parallel_for((long)n, 1 << 14, relu_inplace_range, v); }

/* fused into the producer: the value is already max(0, ·); the gradient,
 * shared with the producer, is masked in place */
static void relu_mask_range(void *arg, long lo, long hi)
{
    ds_node *n = arg;
    const float *y = n->val;
    float *d = n->grad;
    int rule = n->ip[1];
    if (rule == DS_RELU_BACKWARD_STANDARD) {
        for (long i = lo; i < hi; i++) d[i] = y[i] > 0 ? d[i] : 0;
        return;
    }
    for (long i = lo; i < hi; i++)
        d[i] = rule == DS_RELU_BACKWARD_GUIDED ? (y[i] > 0 && d[i] > 0 ? d[i] : 0) : (d[i] > 0 ? d[i] : 0);
}

static void relu_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    if (!n->alias) ds_parallel_for((long)ds_numel(n), 1 << 14, relu_forward_range, n);
}

static void relu_backward(ds_node *n, ds_graph *g)
{
    n->ip[1] = g->relu_backward; /* read by the ranges */
    /* the producer masks dy (guided backprop: after the relu's own rule) */
    if (n->alias && n->alias->relu_mask_in_backward && g->relu_backward == DS_RELU_BACKWARD_STANDARD) return;
    /* the max pool that alone reads it has masked dy where it wrote it */
    if (n->masked_by_consumer && g->relu_backward == DS_RELU_BACKWARD_STANDARD) return;
    if (n->alias && n->alias->relu_mask_in_backward) {
        ds_parallel_for((long)ds_numel(n), 1 << 14, relu_mask_range, n);
        return;
    }
    ds_parallel_for((long)ds_numel(n), 1 << 14, n->alias ? relu_mask_range : relu_backward_range, n);
}

/* y = x > 0 ? x : s·x;  dx = dy·(x > 0 ? 1 : s). Fused into its producer
 * (n->alias, slope in (0, 1]: conv2d stores max(v, s·v)): the gradient it
 * shares is scaled in place where y ≤ 0 (y > 0 exactly where x > 0). */
static int leaky_shape(ds_node *n)
{
    n->is_leaky = n->fp[0] > 0 && n->fp[0] <= 1;
    n->grad_overwrites = 1;
    return same_shape(n);
}
static void leaky_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    if (n->alias) return;
    const float *x = n->in[0]->val, s = n->fp[0];
    float *y = n->val;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) y[i] = x[i] > 0 ? x[i] : s * x[i];
}
static void leaky_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val, *dy = n->grad, s = n->fp[0];
    float *dx = n->in[0]->grad;
    size_t e = ds_numel(n);
    if (n->alias) {
        for (size_t i = 0; i < e; i++) dx[i] = n->val[i] > 0 ? dx[i] : s * dx[i];
        return;
    }
    if (n->in[0]->grad_fresh)
        for (size_t i = 0; i < e; i++) dx[i] = x[i] > 0 ? dy[i] : s * dy[i];
    else
        for (size_t i = 0; i < e; i++) dx[i] += x[i] > 0 ? dy[i] : s * dy[i];
}

/* y = x > 0 ? x : α(eˣ − 1);  dx = dy·(x > 0 ? 1 : y + α) */
static void elu_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val, a = n->fp[0];
    float *y = n->val;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) y[i] = x[i] > 0 ? x[i] : a * expm1f(x[i]);
}
static void elu_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val, *y = n->val, *dy = n->grad, a = n->fp[0];
    float *dx = n->in[0]->grad;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) dx[i] += x[i] > 0 ? dy[i] : dy[i] * (y[i] + a);
}

/* y = 1/(1 + e⁻ˣ);  dx = dy·y(1 − y) */
static void sigmoid_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val;
    float *y = n->val;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void sigmoid_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *y = n->val, *dy = n->grad;
    float *dx = n->in[0]->grad;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

/* y = tanh x;  dx = dy·(1 − y²) */
static void tanh_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val;
    float *y = n->val;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) y[i] = tanhf(x[i]);
}
static void tanh_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *y = n->val, *dy = n->grad;
    float *dx = n->in[0]->grad;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

/* y = log(1 + eˣ) (= x above 20);  dx = dy·σ(x) */
static void softplus_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val;
    float *y = n->val;
    for (size_t i = 0, e = ds_numel(n); i < e; i++) y[i] = x[i] > 20 ? x[i] : log1pf(expf(x[i]));
}
static void softplus_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *x = n->in[0]->val, *dy = n->grad;
    float *dx = n->in[0]->grad;
    for (size_t i = 0, e = ds_numel(n); i < e; i++)
        dx[i] += x[i] > 20 ? dy[i] : dy[i] / (1.0f + expf(-x[i]));
}

static const ds_op op_relu = {"relu", relu_shape, relu_forward, relu_backward};
static const ds_op op_leaky = {"leaky_relu", leaky_shape, leaky_forward, leaky_backward};
static const ds_op op_elu = {"elu", same_shape, elu_forward, elu_backward};
static const ds_op op_sigmoid = {"sigmoid", same_shape, sigmoid_forward, sigmoid_backward};
static const ds_op op_tanh = {"tanh", same_shape, tanh_forward, tanh_backward};
static const ds_op op_softplus = {"softplus", same_shape, softplus_forward, softplus_backward};

static ds_node *unary(ds_graph *g, const ds_op *op, ds_node *x, float p)
{
    ds_node *n = ds_node_new(g, op, 1, &x);
    if (!n) return NULL;
    n->fp[0] = p;
    return ds_node_finish(g, n);
}

ds_node *ds_relu(ds_graph *g, ds_node *x) { return unary(g, &op_relu, x, 0); }
ds_node *ds_leaky_relu(ds_graph *g, ds_node *x, float slope) { return unary(g, &op_leaky, x, slope); }
ds_node *ds_elu(ds_graph *g, ds_node *x, float alpha) { return unary(g, &op_elu, x, alpha); }
ds_node *ds_sigmoid(ds_graph *g, ds_node *x) { return unary(g, &op_sigmoid, x, 0); }
ds_node *ds_tanh(ds_graph *g, ds_node *x) { return unary(g, &op_tanh, x, 0); }
ds_node *ds_softplus(ds_graph *g, ds_node *x) { return unary(g, &op_softplus, x, 0); }

/* ---- softmax / log-softmax over dim 1 ----
 * x is viewed as [outer = d0, C = d1, inner = Π d2..]. */

static void dim1_view(const ds_node *n, size_t *outer, int *c, size_t *inner)
{
    *outer = (size_t)n->shape.d[0];
    *c = n->shape.ndim > 1 ? n->shape.d[1] : 1;
    *inner = ds_numel(n) / (*outer * (size_t)*c);
}

static int softmax_shape(ds_node *n)
{
    if (n->in[0]->shape.ndim < 2) return ds_shape_fail(n, "needs at least 2 dimensions [N, C, ...]");
    n->shape = n->in[0]->shape;
    return 0;
}

/* take_log = 0: y = e^(x − m)/Σ e^(x − m);  1: y = x − m − log Σ e^(x − m) */
static void softmax_common(ds_node *n, int take_log)
{
    size_t outer, inner;
    int c;
    dim1_view(n, &outer, &c, &inner);
    const float *x = n->in[0]->val;
    float *y = n->val;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *xr = x + o * (size_t)c * inner + i;
            float *yr = y + o * (size_t)c * inner + i, m = xr[0];
            for (int k = 1; k < c; k++) m = fmaxf(m, xr[(size_t)k * inner]);
            double s = 0;
            for (int k = 0; k < c; k++) s += exp((double)(xr[(size_t)k * inner] - m));
            if (take_log) {
                float ls = (float)log(s);
                for (int k = 0; k < c; k++) yr[(size_t)k * inner] = xr[(size_t)k * inner] - m - ls;
            } else {
                for (int k = 0; k < c; k++)
                    yr[(size_t)k * inner] = (float)(exp((double)(xr[(size_t)k * inner] - m)) / s);
            }
        }
}

/* softmax: dx = y·(dy − Σ dy·y);  log_softmax: dx = dy − e^y·Σ dy */
static void softmax_back_common(ds_node *n, int take_log)
{
    size_t outer, inner;
    int c;
    dim1_view(n, &outer, &c, &inner);
    const float *y = n->val, *dy = n->grad;
    float *dx = n->in[0]->grad;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t base = o * (size_t)c * inner + i;
            double s = 0;
            for (int k = 0; k < c; k++) {
                size_t p = base + (size_t)k * inner;
                s += take_log ? (double)dy[p] : (double)dy[p] * y[p];
            }
            for (int k = 0; k < c; k++) {
                size_t p = base + (size_t)k * inner;
                dx[p] += take_log ? (float)(dy[p] - expf(y[p]) * s) : (float)(y[p] * (dy[p] - s));
            }
        }
}

static void softmax_forward(ds_node *n, ds_graph *g) { (void)g; softmax_common(n, 0); }
static void softmax_backward(ds_node *n, ds_graph *g) { (void)g; softmax_back_common(n, 0); }
static void log_softmax_forward(ds_node *n, ds_graph *g) { (void)g; softmax_common(n, 1); }
static void log_softmax_backward(ds_node *n, ds_graph *g) { (void)g; softmax_back_common(n, 1); }

static const ds_op op_softmax = {"softmax", softmax_shape, softmax_forward, softmax_backward};
static const ds_op op_log_softmax = {"log_softmax", softmax_shape, log_softmax_forward,
                                     log_softmax_backward};

ds_node *ds_softmax(ds_graph *g, ds_node *x) { return unary(g, &op_softmax, x, 0); }
ds_node *ds_log_softmax(ds_graph *g, ds_node *x) { return unary(g, &op_log_softmax, x, 0); }
