/* explain.c — attribution maps: which input values a classifier's score
 * for one class depends on. Every method is built from ds_input_grad (the
 * gradient of the class score, the logit, with respect to the raw input
 * through the checkpoint's normalisation): saliency is that gradient,
 * gradxinput x ⊙ it, smoothgrad its mean over noisy copies, integrated
 * gradients (x − x') ⊙ its mean along the straight path from a baseline,
 * guided backprop and deconvnet the same gradient with the graph's relu
 * backward rule changed for the call (the same graph and weights, nothing
 * copied), Grad-CAM relu(Σ_k α_k A_k) of a conv layer's activation A with
 * α_k the spatial mean of ∂score/∂A_k, upsampled to the input. Noisy
 * copies and path points run in batches of the graph's batch, so memory
 * is that of one batch whatever samples or steps ask for. Everything runs
 * in eval mode (dropout off, batch norm's running statistics): a map must
 * not depend on which rows share its batch. docs/explain.md. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[DS_EXPLAIN_METHODS] = {
    "saliency", "gradxinput", "smoothgrad", "integrated-gradients", "gradcam", "guided-backprop", "deconvnet",
};

const char *ds_explain_method_name(int method)
{
    return method >= 0 && method < DS_EXPLAIN_METHODS ? method_names[method] : "unknown";
}

int ds_explain_method_parse(const char *s)
{
    if (!s) return -1;
    for (int m = 0; m < DS_EXPLAIN_METHODS; m++)
        if (strcmp(s, method_names[m]) == 0) return m;
    /* the short names people type (Captum's, the papers') */
    if (strcmp(s, "ig") == 0 || strcmp(s, "integrated_gradients") == 0) return DS_EXPLAIN_IG;
    if (strcmp(s, "guided") == 0 || strcmp(s, "guided_backprop") == 0) return DS_EXPLAIN_GUIDED;
    if (strcmp(s, "grad-cam") == 0) return DS_EXPLAIN_GRADCAM;
    return -1;
}

/* the scratch of one batch of the graph */
typedef struct scratch {
    float *x, *g, *cls;
} scratch;

/* values in one sample of the first input (its d[0] is the current batch) */
static size_t sample_of(const ds_program *p) { return ds_numel(p->feeds[0]) / (size_t)p->feeds[0]->shape.d[0]; }

static void scratch_free(scratch *s) { free(s->x), free(s->g), free(s->cls); }

static int scratch_new(scratch *s, int mb, size_t sample)
{
    s->x = malloc((size_t)mb * sample * sizeof(float));
    s->g = malloc((size_t)mb * sample * sizeof(float));
    s->cls = malloc((size_t)mb * sizeof(float));
    if (!s->x || !s->g || !s->cls) {
        scratch_free(s);
        return ds_fail("out of memory");
    }
    return 0;
}

/* s->g = ∂score/∂x of the n rows in s->x, classes s->cls */
static int score_grad(ds_program *p, const ds_norm *norm, scratch *s, int n)
{
    return ds_input_grad(p, norm, s->x, n, s->cls, DS_GRAD_SCORE, s->g);
}

/* rows r0..r0+n of x into the scratch, and their gradient */
static int chunk_grad(ds_program *p, const ds_norm *norm, scratch *s, const float *x, const float *cls, int r0, int n)
{
    size_t sample = sample_of(p);
    memcpy(s->x, x + (size_t)r0 * sample, (size_t)n * sample * sizeof *s->x);
    memcpy(s->cls, cls + r0, (size_t)n * sizeof *s->cls);
    return score_grad(p, norm, s, n);
}

/* attr = ∂score/∂x for any number of rows, in chunks of the graph's batch */
static int gradient(ds_program *p, const ds_norm *norm, const float *x, int b, const float *cls, float *attr,
                    scratch *s)
{
    int mb = p->g->max_batch;
    size_t sample = sample_of(p);
    for (int r0 = 0; r0 < b; r0 += mb) {
        int n = b - r0 < mb ? b - r0 : mb;
        if (chunk_grad(p, norm, s, x, cls, r0, n) != 0) return -1;
        memcpy(attr + (size_t)r0 * sample, s->g, (size_t)n * sample * sizeof *attr);
    }
    return 0;
}

/* Smoothgrad and integrated gradients: each row r's attribution is a mean
 * of the gradients at `per` points (noisy copies; path points), which are
 * made item by item — item t is row t / per, point t % per — and run
 * mb at a time, so that a batch mixes rows when per < mb. */
typedef struct averaged {
    const ds_explain_cfg *c;
    const float *x;
    int per;
    float noise_sd; /* smoothgrad: this row's σ */
    ds_rng rng;
} averaged;

/* point k of row x0 into dst (x's units) */
static void make_point(averaged *a, const float *x0, int row, int k, size_t sample, float *dst)
{
    if (a->c->method == DS_EXPLAIN_SMOOTHGRAD) {
        (void)row, (void)k;
        for (size_t i = 0; i < sample; i++) dst[i] = x0[i] + a->noise_sd * ds_rng_normal(&a->rng);
        return;
    }
    /* integrated gradients by the midpoint rule: α_k = (k + ½)/steps. Its
     * error is O(1/steps²) like the trapezoid's, with one gradient per step */
    double alpha = ((double)k + 0.5) / (double)a->per;
    const float *base = a->c->baseline;
    for (size_t i = 0; i < sample; i++) {
        double b0 = base ? base[i] : 0.0;
        dst[i] = (float)(b0 + alpha * ((double)x0[i] - b0));
    }
}

/* the noise σ of row x0: noise × (max − min) (Smilkov et al. 2017) */
static float row_sd(const float *x0, size_t sample, float noise)
{
    float lo = x0[0], hi = x0[0];
    for (size_t i = 1; i < sample; i++) lo = x0[i] < lo ? x0[i] : lo, hi = x0[i] > hi ? x0[i] : hi;
    float range = hi - lo;
    return noise * (range > 0 && isfinite(range) ? range : 1.0f);
}

static int average(ds_program *p, const ds_norm *norm, averaged *a, int b, const float *cls, float *attr, scratch *s)
{
    int mb = p->g->max_batch;
    size_t sample = sample_of(p);
    double *acc = calloc(sample, sizeof *acc); /* row r's running sum, in double */
    if (!acc) return ds_fail("out of memory");
    long total = (long)b * a->per;
    int rc = 0;
    for (long t0 = 0; t0 < total && rc == 0; t0 += mb) {
        int n = (int)(total - t0 < mb ? total - t0 : mb);
        for (int j = 0; j < n; j++) {
            long t = t0 + j;
            int r = (int)(t / a->per), k = (int)(t % a->per);
            const float *x0 = a->x + (size_t)r * sample;
            if (k == 0 && a->c->method == DS_EXPLAIN_SMOOTHGRAD) a->noise_sd = row_sd(x0, sample, a->c->noise);
            make_point(a, x0, r, k, sample, s->x + (size_t)j * sample);
            s->cls[j] = cls[r];
        }
        if ((rc = score_grad(p, norm, s, n)) != 0) break;
        for (int j = 0; j < n; j++) {
            long t = t0 + j;
            int r = (int)(t / a->per), k = (int)(t % a->per);
            const float *gj = s->g + (size_t)j * sample;
            for (size_t i = 0; i < sample; i++) acc[i] += gj[i];
            if (k != a->per - 1) continue;
            /* row r is complete: its mean gradient, times (x − x') for IG */
            float *out = attr + (size_t)r * sample;
            const float *x0 = a->x + (size_t)r * sample, *base = a->c->baseline;
            for (size_t i = 0; i < sample; i++) {
                double m = acc[i] / a->per;
                out[i] = (float)(a->c->method == DS_EXPLAIN_IG ? m * ((double)x0[i] - (base ? base[i] : 0.0)) : m);
            }
            memset(acc, 0, sample * sizeof *acc);
        }
    }
    free(acc);
    return rc;
}

/* the last 4-D op node that has a gradient (the deepest conv activation
 * the score flows back through) */
static ds_node *last_4d(const ds_graph *g)
{
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        ds_node *n = g->nodes[i];
        /* a 1×1 map (after global pooling) would give a constant Grad-CAM */
        if (n->op && n->shape.ndim == 4 && n->shape.d[2] * n->shape.d[3] > 1 && n->grad && !n->fused_relu && !n->alias)
            return n;
    }
    return NULL;
}

/* out [oh, ow] = in [ih, iw] resized bilinearly, PyTorch's
 * interpolate(mode="bilinear", align_corners=False) */
static void bilinear(const float *in, int ih, int iw, float *out, int oh, int ow)
{
    for (int y = 0; y < oh; y++) {
        double sy = ((double)y + 0.5) * ih / oh - 0.5;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
        double fy = sy - y0;
        for (int x = 0; x < ow; x++) {
            double sx = ((double)x + 0.5) * iw / ow - 0.5;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
            double fx = sx - x0;
            double v = (1 - fy) * ((1 - fx) * in[y0 * iw + x0] + fx * in[y0 * iw + x1]) +
                       fy * ((1 - fx) * in[y1 * iw + x0] + fx * in[y1 * iw + x1]);
            out[y * ow + x] = (float)v;
        }
    }
}

static int gradcam(ds_program *p, const ds_norm *norm, ds_node *L, const float *x, int b, const float *cls, float *attr,
                   scratch *s)
{
    ds_graph *g = p->g;
    int mb = g->max_batch;
    ds_shape in = p->feeds[0]->shape;
    if (in.ndim != 4) return ds_fail("gradcam: input '%s' is not an image [N, C, H, W]", p->feeds[0]->name);
    bool ours = false;
    for (int i = 0; i < g->n_nodes && !ours; i++) ours = g->nodes[i] == L;
    if (!ours) return ds_fail("gradcam: the layer node is not in this program's graph");
    if (L->shape.ndim != 4) {
        char buf[64];
        return ds_fail("gradcam: layer '%s' has shape %s, not a conv layer's [N, C, H, W]", L->name,
                       ds_shape_str(L->shape, buf, sizeof buf));
    }
    if (!L->grad) return ds_fail("gradcam: no gradient reaches layer '%s'", L->name);
    if (L->fused_relu || L->alias)
        return ds_fail("gradcam: layer '%s' shares its buffers with a fused relu: compile with "
                       "ds_graph_set_fusion(g, 0)", L->name);
    int K = L->shape.d[1], lh = L->shape.d[2], lw = L->shape.d[3], H = in.d[2], W = in.d[3];
    size_t plane = (size_t)lh * lw;
    float *cam = malloc(plane * sizeof *cam);
    if (!cam) return ds_fail("out of memory");
    int rc = 0;
    for (int r0 = 0; r0 < b && rc == 0; r0 += mb) {
        int n = b - r0 < mb ? b - r0 : mb;
        if ((rc = chunk_grad(p, norm, s, x, cls, r0, n)) != 0) break;
        for (int r = 0; r < n; r++) {
            const float *A = L->val + (size_t)r * K * plane, *dA = L->grad + (size_t)r * K * plane;
            for (size_t i = 0; i < plane; i++) cam[i] = 0;
            for (int k = 0; k < K; k++) {
                double alpha = 0;
                for (size_t i = 0; i < plane; i++) alpha += dA[(size_t)k * plane + i];
                alpha /= (double)plane;
                for (size_t i = 0; i < plane; i++) cam[i] += (float)(alpha * A[(size_t)k * plane + i]);
            }
            for (size_t i = 0; i < plane; i++) cam[i] = cam[i] > 0 ? cam[i] : 0;
            bilinear(cam, lh, lw, attr + (size_t)(r0 + r) * H * W, H, W);
        }
    }
    free(cam);
    return rc;
}

int ds_explain(ds_program *p, const ds_norm *norm, const ds_explain_cfg *c, const float *x, int b, const float *cls,
               float *attr)
{
    if (!p || !p->g || !p->g->compiled || !p->n_feeds) return ds_fail("explain: a compiled program is needed");
    if (!c || c->method < 0 || c->method >= DS_EXPLAIN_METHODS)
        return ds_fail("explain: unknown method %d", c ? c->method : -1);
    if (b < 1 || !x || !cls || !attr) return ds_fail("explain: no rows to explain");
    if (c->samples < 0 || c->steps < 0 || !(c->noise >= 0 && isfinite(c->noise)))
        return ds_fail("explain: samples, steps and noise must be >= 0 (got %d, %d, %g)", c->samples, c->steps,
                       (double)c->noise);
    ds_graph *g = p->g;
    int mb = g->max_batch;
    size_t sample = sample_of(p);
    scratch s = {0};
    if (scratch_new(&s, mb, sample) != 0) return -1;
    int was_training = g->training, rule = g->relu_backward, rc = 0;
    ds_graph_set_training(g, 0);
    switch (c->method) {
    case DS_EXPLAIN_SALIENCY:
        rc = gradient(p, norm, x, b, cls, attr, &s);
        break;
    case DS_EXPLAIN_GRADXINPUT:
        rc = gradient(p, norm, x, b, cls, attr, &s);
        for (size_t i = 0; rc == 0 && i < (size_t)b * sample; i++) attr[i] *= x[i];
        break;
    case DS_EXPLAIN_SMOOTHGRAD:
    case DS_EXPLAIN_IG: {
        averaged a = {.c = c, .x = x};
        a.per = c->method == DS_EXPLAIN_IG ? (c->steps ? c->steps : 64) : (c->samples ? c->samples : 50);
        ds_explain_cfg cc = *c;
        if (cc.method == DS_EXPLAIN_SMOOTHGRAD && cc.noise == 0) cc.noise = 0.15f;
        a.c = &cc;
        ds_rng_seed(&a.rng, c->seed);
        rc = average(p, norm, &a, b, cls, attr, &s);
        break;
    }
    case DS_EXPLAIN_GRADCAM: {
        ds_node *L = c->layer ? c->layer : last_4d(g);
        rc = L ? gradcam(p, norm, L, x, b, cls, attr, &s)
               : ds_fail("gradcam: the graph has no 4-D layer output with a gradient (a conv layer)");
        break;
    }
    case DS_EXPLAIN_GUIDED:
    case DS_EXPLAIN_DECONVNET:
        rc = ds_graph_set_relu_backward(g, c->method == DS_EXPLAIN_GUIDED ? DS_RELU_BACKWARD_GUIDED
                                                                          : DS_RELU_BACKWARD_DECONVNET);
        if (rc == 0) rc = gradient(p, norm, x, b, cls, attr, &s);
        break;
    }
    g->relu_backward = rule; /* restored even when a call failed */
    ds_graph_set_training(g, was_training);
    scratch_free(&s);
    return rc;
}

int ds_explain_map(int method, const float *attr, int b, ds_shape sample, float *map)
{
    if (method < 0 || method >= DS_EXPLAIN_METHODS) return ds_fail("explain: unknown method %d", method);
    if (b < 0 || sample.ndim < 1) return ds_fail("explain: a map needs rows of a known shape");
    /* [C, H, W]: C channels; [H, W] or [F]: one */
    size_t numel = ds_shape_numel(sample), C = sample.ndim == 3 ? (size_t)sample.d[0] : 1, hw = numel / (C ? C : 1);
    if (method == DS_EXPLAIN_GRADCAM) {
        memcpy(map, attr, (size_t)b * hw * sizeof *map);
        return 0;
    }
    bool signed_sum = method == DS_EXPLAIN_GRADXINPUT || method == DS_EXPLAIN_IG;
    for (int r = 0; r < b; r++) {
        const float *a = attr + (size_t)r * numel;
        float *m = map + (size_t)r * hw;
        for (size_t i = 0; i < hw; i++) {
            float v = 0;
            for (size_t k = 0; k < C; k++) {
                float e = a[k * hw + i];
                if (signed_sum) v += e;
                else v = fabsf(e) > v ? fabsf(e) : v;
            }
            m[i] = v;
        }
    }
    return 0;
}
