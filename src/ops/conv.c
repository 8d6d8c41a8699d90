/* conv.c — 2-D convolution and transposed convolution by im2col + sgemm.
 *
 * Per sample and group, a convolution is one matrix product
 *   y_g [OCg, OH·OW] = W_g [OCg, Cg·KH·KW] · col_g [Cg·KH·KW, OH·OW]
 * where col (im2col) lays every receptive field out as a column. A
 * transposed convolution is the same product read backwards, with col2im.
 */
#include "internal.h"

#include <string.h>

typedef struct {
    int n, c, h, w;        /* input of the convolution (for transposed: its output) */
    int oc, oh, ow;        /* output of the convolution (for transposed: its input) */
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
} geom;

/* ip: 0,1 stride; 2,3 pad; 4,5 dilation; 6 groups; 7,8 output_padding */
static geom geom_of(const ds_node *n, int transposed)
{
    const ds_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *y = &n->shape;
    geom q = {0};
    q.kh = w->d[2], q.kw = w->d[3];
    q.sh = n->ip[0], q.sw = n->ip[1], q.ph = n->ip[2], q.pw = n->ip[3];
    q.dh = n->ip[4], q.dw = n->ip[5], q.groups = n->ip[6];
    q.n = x->d[0];
    if (!transposed) {
        q.c = x->d[1], q.h = x->d[2], q.w = x->d[3];
        q.oc = y->d[1], q.oh = y->d[2], q.ow = y->d[3];
    } else {
        q.oc = x->d[1], q.oh = x->d[2], q.ow = x->d[3];
        q.c = y->d[1], q.h = y->d[2], q.w = y->d[3];
    }
    return q;
}

/* col [c·kh·kw, oh·ow] from one image x [c, h, w] (zero outside). */
static void im2col(const float *x, int c, const geom *q, float *col)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * q->oh * q->ow;
                const float *xc = x + (size_t)ci * q->h * q->w;
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    float *r = row + (size_t)oy * q->ow;
                    if (iy < 0 || iy >= q->h) {
                        memset(r, 0, (size_t)q->ow * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * q->w;
                    int ix = -q->pw + j * q->dw;
                    for (int ox = 0; ox < q->ow; ox++, ix += q->sw)
                        r[ox] = ix >= 0 && ix < q->w ? xr[ix] : 0;
                }
            }
}

/* x [c, h, w] += the columns of col put back where im2col took them. */
static void col2im(const float *col, int c, const geom *q, float *x)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * q->oh * q->ow;
                float *xc = x + (size_t)ci * q->h * q->w;
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    if (iy < 0 || iy >= q->h) continue;
                    const float *r = row + (size_t)oy * q->ow;
                    float *xr = xc + (size_t)iy * q->w;
                    int ix = -q->pw + j * q->dw;
                    for (int ox = 0; ox < q->ow; ox++, ix += q->sw)
                        if (ix >= 0 && ix < q->w) xr[ix] += r[ox];
                }
            }
}

/* A 1x1, stride-1, unpadded convolution needs no im2col: col is x itself. */
static int is_pointwise(const geom *q)
{
    return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
}

static int conv_shape_common(ds_node *n, int transposed)
{
    const ds_node *x = n->in[0], *w = n->in[1];
    char sx[96], sw[96];
    ds_shape_str(x->shape, sx, sizeof sx);
    ds_shape_str(w->shape, sw, sizeof sw);
    if (x->shape.ndim != 4) return ds_shape_fail(n, "input '%s' is %s; expected [N, C, H, W]", x->name, sx);
    if (w->shape.ndim != 4) return ds_shape_fail(n, "weight '%s' is %s; expected 4-D", w->name, sw);
    for (int i = 0; i < 2; i++)
        if (n->ip[i] < 1 || n->ip[2 + i] < 0 || n->ip[4 + i] < 1 || n->ip[7 + i] < 0 || n->ip[6] < 1 ||
            (n->ip[7 + i] && n->ip[7 + i] >= n->ip[i] && n->ip[7 + i] >= n->ip[4 + i]))
            return ds_shape_fail(n, "bad options: stride %d,%d pad %d,%d dilation %d,%d groups %d "
                                    "output_padding %d,%d",
                                 n->ip[0], n->ip[1], n->ip[2], n->ip[3], n->ip[4], n->ip[5], n->ip[6],
                                 n->ip[7], n->ip[8]);
    int g = n->ip[6], c = x->shape.d[1];
    if (c % g) return ds_shape_fail(n, "%d input channels do not split into %d groups", c, g);
    int oc = transposed ? w->shape.d[1] * g : w->shape.d[0];
    if (!transposed && (w->shape.d[1] != c / g || oc % g))
        return ds_shape_fail(n, "input '%s' %s needs a weight [OC, %d, KH, KW] (OC divisible by %d); "
                                "weight '%s' is %s",
                             x->name, sx, c / g, g, w->name, sw);
    if (transposed && w->shape.d[0] != c)
        return ds_shape_fail(n, "input '%s' %s needs a weight [%d, OC/groups, KH, KW]; weight '%s' is %s",
                             x->name, sx, c, w->name, sw);
    if (n->n_in == 3 && ds_numel(n->in[2]) != (size_t)oc)
        return ds_shape_fail(n, "bias '%s' has %zu elements for %d output channels", n->in[2]->name,
                             ds_numel(n->in[2]), oc);
    int kh = w->shape.d[2], kw = w->shape.d[3], oh, ow;
    if (!transposed) {
        oh = (x->shape.d[2] + 2 * n->ip[2] - n->ip[4] * (kh - 1) - 1) / n->ip[0] + 1;
        ow = (x->shape.d[3] + 2 * n->ip[3] - n->ip[5] * (kw - 1) - 1) / n->ip[1] + 1;
        if (x->shape.d[2] + 2 * n->ip[2] < n->ip[4] * (kh - 1) + 1 ||
            x->shape.d[3] + 2 * n->ip[3] < n->ip[5] * (kw - 1) + 1)
            oh = ow = 0;
    } else {
        oh = (x->shape.d[2] - 1) * n->ip[0] - 2 * n->ip[2] + n->ip[4] * (kh - 1) + n->ip[7] + 1;
        ow = (x->shape.d[3] - 1) * n->ip[1] - 2 * n->ip[3] + n->ip[5] * (kw - 1) + n->ip[8] + 1;
    }
    if (oh < 1 || ow < 1)
        return ds_shape_fail(n, "kernel %dx%d does not fit input '%s' %s with this stride/padding",
                             kh, kw, x->name, sx);
    n->shape = ds_shape_of(4, x->shape.d[0], oc, oh, ow);
    geom q = geom_of(n, transposed);
    size_t col = (size_t)(q.c / g) * kh * kw * q.oh * q.ow;
    n->work_bytes = 2 * col * sizeof(float); /* col and dcol */
    return 0;
}

static int conv_shape(ds_node *n) { return conv_shape_common(n, 0); }
static int convt_shape(ds_node *n) { return conv_shape_common(n, 1); }

/* Σ over n, h, w of dy [N, OC, H, W] into db [OC]. */
static void bias_backward(const float *dy, int n, int oc, size_t hw, float *db)
{
    for (int s = 0; s < n; s++)
        for (int o = 0; o < oc; o++) {
            const float *p = dy + ((size_t)s * oc + o) * hw;
            double acc = 0;
            for (size_t i = 0; i < hw; i++) acc += p[i];
            db[o] += (float)acc;
        }
}

/* y[n, o] = b[o] + Σ_g W_g · im2col(x[n, g]) */
static void conv_forward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw;
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *x = n->in[0]->val, *w = n->in[1]->val;
    float *y = n->val, *col = g->work;
    for (int s = 0; s < q.n; s++)
        for (int gi = 0; gi < q.groups; gi++) {
            const float *xs = x + ((size_t)s * q.c + (size_t)gi * cg) * hw;
            const float *c = xs;
            if (!is_pointwise(&q)) {
                im2col(xs, cg, &q, col);
                c = col;
            }
            float *ys = y + ((size_t)s * q.oc + (size_t)gi * ocg) * ohw;
            ds_gemm(false, false, ocg, (int)ohw, kk, 1, w + (size_t)gi * ocg * kk, kk, c, (int)ohw, 0,
                    ys, (int)ohw);
        }
    if (n->n_in == 3)
        for (int s = 0; s < q.n; s++)
            for (int o = 0; o < q.oc; o++) {
                float b = n->in[2]->val[o], *p = y + ((size_t)s * q.oc + o) * ohw;
                for (size_t i = 0; i < ohw; i++) p[i] += b;
            }
}

/* dW_g += dy_g · colᵀ;  dx += col2im(W_gᵀ · dy_g);  db += Σ dy */
static void conv_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw;
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *x = n->in[0]->val, *w = n->in[1]->val, *dy = n->grad;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
    float *col = g->work, *dcol = g->work + (size_t)kk * ohw;
    bool pw = is_pointwise(&q);
    for (int s = 0; s < q.n; s++)
        for (int gi = 0; gi < q.groups; gi++) {
            const float *xs = x + ((size_t)s * q.c + (size_t)gi * cg) * hw;
            const float *dys = dy + ((size_t)s * q.oc + (size_t)gi * ocg) * ohw;
            const float *wg = w + (size_t)gi * ocg * kk;
            if (dw) {
                const float *c = xs;
                if (!pw) {
                    im2col(xs, cg, &q, col);
                    c = col;
                }
                ds_gemm(false, true, ocg, kk, (int)ohw, 1, dys, (int)ohw, c, (int)ohw, 1,
                        dw + (size_t)gi * ocg * kk, kk);
            }
            if (dx) {
                float *dxs = dx + ((size_t)s * q.c + (size_t)gi * cg) * hw;
                if (pw) {
                    ds_gemm(true, false, kk, (int)ohw, ocg, 1, wg, kk, dys, (int)ohw, 1, dxs, (int)ohw);
                } else {
                    ds_gemm(true, false, kk, (int)ohw, ocg, 1, wg, kk, dys, (int)ohw, 0, dcol, (int)ohw);
                    col2im(dcol, cg, &q, dxs);
                }
            }
        }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(dy, q.n, q.oc, ohw, n->in[2]->grad);
}

/* Transposed: y[n, g] = col2im(W_gᵀ · x[n, g]) + b, W [C, OCg, KH, KW]. Here
 * the "convolution" geometry runs from y (c, h, w) to x (oc, oh, ow). */
static void convt_forward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
    int cg = q.c / q.groups;   /* output channels per group */
    int xg = q.oc / q.groups;  /* input channels per group */
    int kk = cg * q.kh * q.kw;
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *x = n->in[0]->val, *w = n->in[1]->val;
    float *y = n->val, *col = g->work;
    memset(y, 0, ds_numel(n) * sizeof *y);
    for (int s = 0; s < q.n; s++)
        for (int gi = 0; gi < q.groups; gi++) {
            const float *xs = x + ((size_t)s * q.oc + (size_t)gi * xg) * ohw;
            float *ys = y + ((size_t)s * q.c + (size_t)gi * cg) * hw;
            ds_gemm(true, false, kk, (int)ohw, xg, 1, w + (size_t)gi * xg * kk, kk, xs, (int)ohw, 0,
                    col, (int)ohw);
            col2im(col, cg, &q, ys);
        }
    if (n->n_in == 3)
        for (int s = 0; s < q.n; s++)
            for (int o = 0; o < q.c; o++) {
                float b = n->in[2]->val[o], *p = y + ((size_t)s * q.c + o) * hw;
                for (size_t i = 0; i < hw; i++) p[i] += b;
            }
}

/* dx_g += W_g · im2col(dy_g);  dW_g += x_g · im2col(dy_g)ᵀ;  db += Σ dy */
static void convt_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
    int cg = q.c / q.groups, xg = q.oc / q.groups, kk = cg * q.kh * q.kw;
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *x = n->in[0]->val, *w = n->in[1]->val, *dy = n->grad;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad, *col = g->work;
    for (int s = 0; s < q.n; s++)
        for (int gi = 0; gi < q.groups; gi++) {
            const float *dys = dy + ((size_t)s * q.c + (size_t)gi * cg) * hw;
            im2col(dys, cg, &q, col);
            if (dx)
                ds_gemm(false, false, xg, (int)ohw, kk, 1, w + (size_t)gi * xg * kk, kk, col,
                        (int)ohw, 1, dx + ((size_t)s * q.oc + (size_t)gi * xg) * ohw, (int)ohw);
            if (dw)
                ds_gemm(false, true, xg, kk, (int)ohw, 1,
                        x + ((size_t)s * q.oc + (size_t)gi * xg) * ohw, (int)ohw, col, (int)ohw, 1,
                        dw + (size_t)gi * xg * kk, kk);
        }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(dy, q.n, q.c, hw, n->in[2]->grad);
}

static const ds_op op_conv = {"conv2d", conv_shape, conv_forward, conv_backward};
static const ds_op op_convt = {"conv_transpose2d", convt_shape, convt_forward, convt_backward};

static ds_node *conv_make(ds_graph *g, const ds_op *op, ds_node *x, ds_node *w, ds_node *b,
                          ds_conv_opt o)
{
    ds_node *n = ds_node_new(g, op, b ? 3 : 2, (ds_node *[]){x, w, b});
    if (!n) return NULL;
    for (int i = 0; i < 2; i++) {
        n->ip[0 + i] = o.stride[i] ? o.stride[i] : 1;
        n->ip[2 + i] = o.pad[i];
        n->ip[4 + i] = o.dilation[i] ? o.dilation[i] : 1;
        n->ip[7 + i] = o.output_padding[i];
    }
    n->ip[6] = o.groups ? o.groups : 1;
    return ds_node_finish(g, n);
}

ds_node *ds_conv2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt)
{
    return conv_make(g, &op_conv, x, w, b, opt);
}

ds_node *ds_conv_transpose2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt)
{
    return conv_make(g, &op_convt, x, w, b, opt);
}
