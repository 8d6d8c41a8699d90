/* conv.c — 2-D convolution and transposed convolution by im2col + sgemm.
 *
 * A chunk of S samples is laid out as columns (im2col), one receptive field
 * per column, so that each group's convolution is one large matrix product
 *   Y_g [OCg, S·OH·OW] = W_g [OCg, Cg·KH·KW] · col_g [Cg·KH·KW, S·OH·OW]
 * and a transposed convolution is the same product read backwards (col2im).
 * Big products keep both cores busy; S is capped so the scratch stays small.
 */
#include "internal.h"

#include <string.h>

typedef struct {
    int n, c, h, w;        /* input of the convolution (for transposed: its output) */
    int oc, oh, ow;        /* output of the convolution (for transposed: its input) */
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
} geom;

/* ip: 0,1 stride; 2,3 pad; 4,5 dilation; 6 groups; 7,8 output_padding; 9 chunk S */
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

/* The output columns ox whose input column ox·sw − pw + j·dw lies in [0, w):
 * [*lo, *hi). Loops over that range need no bounds test. */
static void valid_cols(const geom *q, int j, int *lo, int *hi)
{
    int off = j * q->dw - q->pw; /* ix = ox·sw + off */
    int a = off >= 0 ? 0 : (-off + q->sw - 1) / q->sw;
    int b = q->w - off <= 0 ? 0 : (q->w - off - 1) / q->sw + 1;
    *lo = a < q->ow ? a : q->ow;
    *hi = b < q->ow ? b : q->ow;
    if (*hi < *lo) *hi = *lo;
}

/* col rows of length ld (≥ oh·ow) from one image x [c, h, w]: row
 * (ci·kh + i)·kw + j holds x[ci, oy·sh − ph + i·dh, ox·sw − pw + j·dw] (0 outside). */
static void im2col(const float *x, int c, const geom *q, float *col, size_t ld)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * ld;
                const float *xc = x + (size_t)ci * q->h * q->w;
                int lo, hi, off = j * q->dw - q->pw;
                valid_cols(q, j, &lo, &hi);
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    float *r = row + (size_t)oy * q->ow;
                    if (iy < 0 || iy >= q->h) {
                        memset(r, 0, (size_t)q->ow * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * q->w;
                    for (int ox = 0; ox < lo; ox++) r[ox] = 0;
                    if (q->sw == 1) memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *r);
                    else
                        for (int ox = lo; ox < hi; ox++) r[ox] = xr[ox * q->sw + off];
                    for (int ox = hi; ox < q->ow; ox++) r[ox] = 0;
                }
            }
}

/* x [c, h, w] += the columns of col put back where im2col took them. */
static void col2im(const float *col, int c, const geom *q, float *x, size_t ld)
{
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < q->kh; i++)
            for (int j = 0; j < q->kw; j++) {
                const float *row = col + ((size_t)(ci * q->kh + i) * q->kw + j) * ld;
                float *xc = x + (size_t)ci * q->h * q->w;
                int lo, hi, off = j * q->dw - q->pw;
                valid_cols(q, j, &lo, &hi);
                for (int oy = 0; oy < q->oh; oy++) {
                    int iy = oy * q->sh - q->ph + i * q->dh;
                    if (iy < 0 || iy >= q->h) continue;
                    const float *r = row + (size_t)oy * q->ow;
                    float *xr = xc + (size_t)iy * q->w;
                    if (q->sw == 1)
                        for (int ox = lo; ox < hi; ox++) xr[ox + off] += r[ox];
                    else
                        for (int ox = lo; ox < hi; ox++) xr[ox * q->sw + off] += r[ox];
                }
            }
}

/* Between a chunk of NCHW tensor t [S, ch_total, hw] (channels c0..c0+cn)
 * and the matrix m [cn, S·hw]: gather (to_m = 1) or add back (to_m = 0). */
typedef struct {
    float *t, *m;
    const float *src;
    int s, ch_total, c0, cn, s0, gi, cg, to_m;
    size_t hw;
    const geom *q;
} chunk_task;

static void chunk_matrix_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    for (long si = lo; si < hi; si++)
        for (int ci = 0; ci < k->cn; ci++) {
            float *tp = k->t + ((size_t)si * k->ch_total + k->c0 + ci) * k->hw;
            float *mp = k->m + (size_t)ci * k->s * k->hw + (size_t)si * k->hw;
            if (k->to_m) memcpy(mp, tp, k->hw * sizeof *mp);
            else
                for (size_t i = 0; i < k->hw; i++) tp[i] += mp[i];
        }
}

static void chunk_matrix(float *t, int s, int ch_total, int c0, int cn, size_t hw, float *m, int to_m)
{
    chunk_task k = {.t = t, .m = m, .s = s, .ch_total = ch_total, .c0 = c0, .cn = cn, .to_m = to_m, .hw = hw};
    ds_parallel_for(s, 1, chunk_matrix_range, &k);
}

static int conv_shape_common(ds_node *n, int transposed)
{
    const ds_node *x = n->in[0], *w = n->in[1];
    char sx[96], sw[96];
    ds_shape_str(x->shape, sx, sizeof sx);
    ds_shape_str(w->shape, sw, sizeof sw);
    if (ds_require_nchw(n, 0)) return -1;
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
    /* per sample: col and dcol [kk, ohw] plus two [OC/g, ohw] matrices */
    size_t per = ((size_t)2 * (q.c / g) * kh * kw + 2 * (size_t)(q.oc / g)) * q.oh * q.ow;
    size_t budget = (size_t)8 << 20, chunk = budget / per; /* floats: 32 MiB of scratch */
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)q.n) chunk = (size_t)q.n;
    n->ip[9] = (int)chunk;
    n->work_bytes = chunk * per * sizeof(float);
    return 0;
}

static int conv_shape(ds_node *n) { return conv_shape_common(n, 0); }
static int convt_shape(ds_node *n) { return conv_shape_common(n, 1); }

/* Σ over n, h, w of dy [N, OC, H, W] into db [OC]. */
typedef struct {
    const float *dy, *b;
    float *y, *db;
    int n, c;
    size_t hw;
} bias_task;

static void bias_backward_range(void *arg, long lo, long hi)
{
    const bias_task *k = arg;
    for (long o = lo; o < hi; o++) {
        double acc = 0;
        for (int s = 0; s < k->n; s++) {
            const float *p = k->dy + ((size_t)s * k->c + o) * k->hw;
            for (size_t i = 0; i < k->hw; i++) acc += p[i];
        }
        k->db[o] += (float)acc;
    }
}

static void bias_backward(const float *dy, int n, int oc, size_t hw, float *db)
{
    bias_task k = {.dy = dy, .db = db, .n = n, .c = oc, .hw = hw};
    ds_parallel_for(oc, 1, bias_backward_range, &k);
}

/* y[n, c] += b[c] */
static void bias_forward_range(void *arg, long lo, long hi)
{
    const bias_task *k = arg;
    for (long s = lo; s < hi; s++)
        for (int o = 0; o < k->c; o++) {
            float *p = k->y + ((size_t)s * k->c + o) * k->hw;
            for (size_t i = 0; i < k->hw; i++) p[i] += k->b[o];
        }
}

static void bias_forward(float *y, const float *b, int n, int c, size_t hw)
{
    bias_task k = {.y = y, .b = b, .n = n, .c = c, .hw = hw};
    ds_parallel_for(n, 1, bias_forward_range, &k);
}

/* col_g = im2col of channels [g·Cg, (g+1)·Cg) of samples s0..s0+S of x, as [kk, S·ohw]. */
static void im2col_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    const geom *q = k->q;
    size_t ld = (size_t)k->s * q->oh * q->ow, hw = (size_t)q->h * q->w;
    for (long si = lo; si < hi; si++)
        im2col(k->src + ((size_t)(k->s0 + si) * q->c + (size_t)k->gi * k->cg) * hw, k->cg, q,
               k->m + (size_t)si * q->oh * q->ow, ld);
}

static void chunk_im2col(const float *x, int s0, int s, int gi, int cg, const geom *q, float *col)
{
    chunk_task k = {.src = x, .m = col, .s = s, .s0 = s0, .gi = gi, .cg = cg, .q = q};
    ds_parallel_for(s, 1, im2col_range, &k);
}

static void col2im_range(void *arg, long lo, long hi)
{
    const chunk_task *k = arg;
    const geom *q = k->q;
    size_t ld = (size_t)k->s * q->oh * q->ow, hw = (size_t)q->h * q->w;
    for (long si = lo; si < hi; si++)
        col2im(k->src + (size_t)si * q->oh * q->ow, k->cg, q,
               k->t + ((size_t)(k->s0 + si) * q->c + (size_t)k->gi * k->cg) * hw, ld);
}

static void chunk_col2im(const float *col, int s0, int s, int gi, int cg, const geom *q, float *x)
{
    chunk_task k = {.src = col, .t = x, .s = s, .s0 = s0, .gi = gi, .cg = cg, .q = q};
    ds_parallel_for(s, 1, col2im_range, &k);
}

/* Y_g = W_g · col_g, scattered into y[n, g·OCg + o] (+ b) */
static void conv_forward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow;
    const float *w = n->in[1]->val;
    memset(n->val, 0, ds_numel(n) * sizeof(float));
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *ym = col + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_im2col(n->in[0]->val, s0, s, gi, cg, &q, col);
            ds_gemm(false, false, ocg, cols, kk, 1, w + (size_t)gi * ocg * kk, kk, col, cols, 0, ym, cols);
            chunk_matrix(n->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * ocg, ocg, ohw, ym, 0);
        }
    }
    if (n->n_in == 3) bias_forward(n->val, n->in[2]->val, q.n, q.oc, ohw);
}

/* dW_g += dY_g · col_gᵀ;  dx += col2im(W_gᵀ · dY_g);  db += Σ dy */
static void conv_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 0);
    int cg = q.c / q.groups, ocg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow;
    const float *w = n->in[1]->val;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *dcol = col + (size_t)kk * cols, *dym = dcol + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_matrix(n->grad + (size_t)s0 * q.oc * ohw, s, q.oc, gi * ocg, ocg, ohw, dym, 1);
            if (dw) {
                chunk_im2col(n->in[0]->val, s0, s, gi, cg, &q, col);
                ds_gemm(false, true, ocg, kk, cols, 1, dym, cols, col, cols, 1, dw + (size_t)gi * ocg * kk, kk);
            }
            if (dx) {
                ds_gemm(true, false, kk, cols, ocg, 1, w + (size_t)gi * ocg * kk, kk, dym, cols, 0, dcol, cols);
                chunk_col2im(dcol, s0, s, gi, cg, &q, dx);
            }
        }
    }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(n->grad, q.n, q.oc, ohw, n->in[2]->grad);
}

/* Transposed: y[n, g] = col2im(W_gᵀ · X_g) + b with W [C, OCg, KH, KW]; the
 * "convolution" geometry runs from y (c, h, w) to x (oc, oh, ow). */
static void convt_forward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
    int cg = q.c / q.groups, xg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *w = n->in[1]->val;
    memset(n->val, 0, ds_numel(n) * sizeof(float));
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *xm = col + (size_t)kk * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_matrix(n->in[0]->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, xm, 1);
            ds_gemm(true, false, kk, cols, xg, 1, w + (size_t)gi * xg * kk, kk, xm, cols, 0, col, cols);
            chunk_col2im(col, s0, s, gi, cg, &q, n->val);
        }
    }
    if (n->n_in == 3) bias_forward(n->val, n->in[2]->val, q.n, q.c, hw);
}

/* dX_g += W_g · im2col(dy_g);  dW_g += X_g · im2col(dy_g)ᵀ;  db += Σ dy */
static void convt_backward(ds_node *n, ds_graph *g)
{
    geom q = geom_of(n, 1);
    int cg = q.c / q.groups, xg = q.oc / q.groups, kk = cg * q.kh * q.kw, chunk = n->ip[9];
    size_t ohw = (size_t)q.oh * q.ow, hw = (size_t)q.h * q.w;
    const float *w = n->in[1]->val;
    float *dx = n->in[0]->grad, *dw = n->in[1]->grad;
    for (int s0 = 0; s0 < q.n; s0 += chunk) {
        int s = q.n - s0 < chunk ? q.n - s0 : chunk, cols = (int)(s * ohw);
        float *col = g->work, *xm = col + (size_t)kk * cols, *dxm = xm + (size_t)xg * cols;
        for (int gi = 0; gi < q.groups; gi++) {
            chunk_im2col(n->grad, s0, s, gi, cg, &q, col);
            if (dx) {
                ds_gemm(false, false, xg, cols, kk, 1, w + (size_t)gi * xg * kk, kk, col, cols, 0, dxm, cols);
                chunk_matrix(dx + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, dxm, 0);
            }
            if (dw) {
                chunk_matrix(n->in[0]->val + (size_t)s0 * q.oc * ohw, s, q.oc, gi * xg, xg, ohw, xm, 1);
                ds_gemm(false, true, xg, kk, cols, 1, xm, cols, col, cols, 1, dw + (size_t)gi * xg * kk, kk);
            }
        }
    }
    if (n->n_in == 3 && n->in[2]->grad) bias_backward(n->grad, q.n, q.c, hw, n->in[2]->grad);
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
