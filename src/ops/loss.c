/* loss.c — scalar losses, mean over the batch. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int scalar_out(ds_node *n)
{
    n->shape = ds_shape_of(1, 1);
    return 0;
}

/* ---- softmax cross-entropy: logits [N, C…] read as [N, C], labels [N] ----
 * aux: softmax probabilities [N, C], then Σ wᵧ. */

static int ce_shape(ds_node *n)
{
    const ds_node *z = n->in[0], *t = n->in[1];
    size_t rows = (size_t)z->shape.d[0], c = ds_numel(z) / rows;
    char sz[96], st[96];
    if (ds_numel(t) != rows)
        return ds_shape_fail(n, "labels '%s' %s need one class index per row of logits '%s' %s",
                             t->name, ds_shape_str(t->shape, st, sizeof st), z->name,
                             ds_shape_str(z->shape, sz, sizeof sz));
    if (n->cdata && (size_t)n->cdata_n != c)
        return ds_shape_fail(n, "%d class weights for %zu classes", n->cdata_n, c);
    n->aux_bytes = (rows * c + 1) * sizeof(float);
    return scalar_out(n);
}

/* loss = Σᵢ wᵧᵢ·(log Σⱼ e^zᵢⱼ − zᵢᵧᵢ) / Σᵢ wᵧᵢ */
static void ce_forward(ds_node *n, ds_graph *g)
{
    const float *z = n->in[0]->val, *t = n->in[1]->val, *w = n->cdata;
    size_t rows = (size_t)n->in[0]->shape.d[0], c = ds_numel(n->in[0]) / rows;
    float *p = n->aux;
    double loss = 0, wsum = 0;
    for (size_t r = 0; r < rows; r++) {
        float lab = t[r];
        if (!(lab >= 0 && lab < (float)c) || lab != floorf(lab)) {
            ds_op_error(g, n, "label %g in row %zu is not a class index in 0..%zu", lab, r, c - 1);
            return;
        }
        const float *zr = z + r * c;
        float *pr = p + r * c, m = zr[0];
        for (size_t k = 1; k < c; k++) m = fmaxf(m, zr[k]);
        double s = 0, e[256]; /* each e^z once (it was a quarter of softmax regression's step) */
        if (c <= 256) {
            for (size_t k = 0; k < c; k++) s += e[k] = exp((double)(zr[k] - m));
            for (size_t k = 0; k < c; k++) pr[k] = (float)(e[k] / s);
        } else {
            for (size_t k = 0; k < c; k++) s += exp((double)(zr[k] - m));
            for (size_t k = 0; k < c; k++) pr[k] = (float)(exp((double)(zr[k] - m)) / s);
        }
        size_t y = (size_t)lab;
        double wy = w ? w[y] : 1.0;
        loss += wy * (log(s) + m - zr[y]);
        wsum += wy;
    }
    p[rows * c] = (float)wsum;
    n->val[0] = (float)(loss / wsum);
}

/* dz = dL·wᵧ·(p − onehot(y))/Σ wᵧ */
static void ce_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *t = n->in[1]->val, *w = n->cdata, *p = n->aux;
    size_t rows = (size_t)n->in[0]->shape.d[0], c = ds_numel(n->in[0]) / rows;
    float *dz = n->in[0]->grad, scale = n->grad[0] / p[rows * c];
    if (!dz) return;
    for (size_t r = 0; r < rows; r++) {
        size_t y = (size_t)t[r];
        float k = scale * (w ? w[y] : 1.0f);
        for (size_t j = 0; j < c; j++) dz[r * c + j] += k * (p[r * c + j] - (j == y));
    }
}

static const ds_op op_ce = {"softmax_cross_entropy", ce_shape, ce_forward, ce_backward};

ds_node *ds_softmax_cross_entropy(ds_graph *g, ds_node *logits, ds_node *labels,
                                  const float *class_weights)
{
    ds_node *n = ds_node_new(g, &op_ce, 2, (ds_node *[]){logits, labels});
    if (!n) return NULL;
    if (class_weights) {
        size_t c = ds_numel(logits) / (size_t)logits->shape.d[0];
        n->cdata = malloc(c * sizeof(float));
        if (!n->cdata) {
            ds_fail("out of memory");
            return NULL;
        }
        memcpy(n->cdata, class_weights, c * sizeof(float));
        n->cdata_n = (int)c;
    }
    return ds_node_finish(g, n);
}

/* ---- element-wise losses on equal shapes ---- */

static int pair_shape(ds_node *n)
{
    const ds_node *a = n->in[0], *b = n->in[1];
    char sa[96], sb[96];
    if (ds_numel(a) != ds_numel(b) || a->shape.d[0] != b->shape.d[0])
        return ds_shape_fail(n, "'%s' %s and '%s' %s must have the same shape", a->name,
                             ds_shape_str(a->shape, sa, sizeof sa), b->name,
                             ds_shape_str(b->shape, sb, sizeof sb));
    return scalar_out(n);
}

/* loss = mean(max(z, 0) − z·t + log(1 + e^−|z|)) */
static void bce_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *z = n->in[0]->val, *t = n->in[1]->val;
    size_t e = ds_numel(n->in[0]);
    double s = 0;
    for (size_t i = 0; i < e; i++) s += fmaxf(z[i], 0) - z[i] * t[i] + log1pf(expf(-fabsf(z[i])));
    n->val[0] = (float)(s / (double)e);
}

/* dz = dL·(σ(z) − t)/n;  dt = −dL·z/n */
static void bce_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *z = n->in[0]->val, *t = n->in[1]->val;
    float *dz = n->in[0]->grad, *dt = n->in[1]->grad;
    size_t e = ds_numel(n->in[0]);
    float k = n->grad[0] / (float)e;
    for (size_t i = 0; i < e; i++) {
        if (dz) dz[i] += k * (1.0f / (1.0f + expf(-z[i])) - t[i]);
        if (dt) dt[i] -= k * z[i];
    }
}

/* loss = mean((p − t)²) */
static void mse_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *p = n->in[0]->val, *t = n->in[1]->val;
    size_t e = ds_numel(n->in[0]);
    double s = 0;
    for (size_t i = 0; i < e; i++) s += (double)(p[i] - t[i]) * (p[i] - t[i]);
    n->val[0] = (float)(s / (double)e);
}

/* dp = 2·dL·(p − t)/n;  dt = −dp */
static void mse_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    const float *p = n->in[0]->val, *t = n->in[1]->val;
    float *dp = n->in[0]->grad, *dt = n->in[1]->grad;
    size_t e = ds_numel(n->in[0]);
    float k = 2.0f * n->grad[0] / (float)e;
    for (size_t i = 0; i < e; i++) {
        if (dp) dp[i] += k * (p[i] - t[i]);
        if (dt) dt[i] -= k * (p[i] - t[i]);
    }
}

static const ds_op op_bce = {"bce_with_logits", pair_shape, bce_forward, bce_backward};
static const ds_op op_mse = {"mse", pair_shape, mse_forward, mse_backward};

ds_node *ds_bce_with_logits(ds_graph *g, ds_node *logits, ds_node *targets)
{
    return ds_node_finish(g, ds_node_new(g, &op_bce, 2, (ds_node *[]){logits, targets}));
}

ds_node *ds_mse(ds_graph *g, ds_node *pred, ds_node *target)
{
    return ds_node_finish(g, ds_node_new(g, &op_mse, 2, (ds_node *[]){pred, target}));
}

/* ---- Σ w_k·x_k over scalar nodes: the total of several heads' losses ---- */

static int wsum_shape(ds_node *n)
{
    for (int k = 0; k < n->n_in; k++)
        if (ds_numel(n->in[k]) != 1) return ds_shape_fail(n, "input %d ('%s') is not a scalar", k, n->in[k]->name);
    n->shape = ds_shape_of(1, 1);
    return 0;
}

static void wsum_forward(ds_node *n, ds_graph *g)
{
    (void)g;
    double s = 0;
    for (int k = 0; k < n->n_in; k++) s += (double)n->cdata[k] * n->in[k]->val[0];
    n->val[0] = (float)s;
}

static void wsum_backward(ds_node *n, ds_graph *g)
{
    (void)g;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k]->grad) n->in[k]->grad[0] += n->cdata[k] * n->grad[0];
}

static const ds_op op_wsum = {"weighted_sum", wsum_shape, wsum_forward, wsum_backward};

ds_node *ds_weighted_sum(ds_graph *g, int n, ds_node **x, const float *w)
{
    if (n < 1) {
        ds_fail("weighted_sum: no terms");
        return NULL;
    }
    ds_node *s = ds_node_new(g, &op_wsum, n, x);
    if (s) {
        if (!(s->cdata = malloc((size_t)n * sizeof *s->cdata))) {
            ds_fail("out of memory");
            return NULL;
        }
        memcpy(s->cdata, w, (size_t)n * sizeof *w);
        s->cdata_n = n;
    }
    return ds_node_finish(g, s);
}
