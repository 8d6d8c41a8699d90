/* sanity.c — checks of attribution maps themselves (docs/explain.md): the
 * Spearman rank correlation, the pointing game's mass share, and the
 * cascading model-randomisation test of Adebayo et al. 2018 ("Sanity
 * checks for saliency maps"): re-initialise the layers from the output
 * down, one more each stage, and measure how much each method's maps still
 * resemble the trained model's. A method whose maps survive the
 * randomisation of the layers that make the decision does not explain the
 * decision. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float v;
    long i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    float x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
    return x < y ? -1 : x > y;
}

/* r[i] = the rank (1-based) of v[i], ties the mean of their ranks */
static int ranks(const float *v, long n, double *r)
{
    ranked *s = malloc(sizeof *s * (size_t)n);
    if (!s) return -1;
    for (long i = 0; i < n; i++) s[i] = (ranked){v[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_ranked);
    for (long i = 0; i < n;) {
        long j = i;
        while (j + 1 < n && s[j + 1].v == s[i].v) j++;
        double avg = 0.5 * (double)(i + j) + 1;
        for (long k = i; k <= j; k++) r[s[k].i] = avg;
        i = j + 1;
    }
    free(s);
    return 0;
}

double ds_spearman(const float *a, const float *b, long n)
{
    if (n < 2) return NAN;
    double *ra = malloc(sizeof(double) * 2 * (size_t)n);
    if (!ra) return NAN;
    double *rb = ra + n;
    if (ranks(a, n, ra) != 0 || ranks(b, n, rb) != 0) {
        free(ra);
        return NAN;
    }
    /* Pearson's correlation of the ranks (both have mean (n + 1)/2) */
    double m = 0.5 * (double)(n + 1), sab = 0, saa = 0, sbb = 0;
    for (long i = 0; i < n; i++) {
        double x = ra[i] - m, y = rb[i] - m;
        sab += x * y, saa += x * x, sbb += y * y;
    }
    free(ra);
    if (saa == 0 || sbb == 0) return NAN; /* a constant map has no ranking */
    return sab / sqrt(saa * sbb);
}

double ds_mass_share(const float *map, const float *mask, long n)
{
    double in = 0, all = 0;
    long area = 0;
    for (long i = 0; i < n; i++) {
        double a = fabs(map[i]);
        all += a;
        if (mask[i] > 0.5f) in += a, area++;
    }
    if (area == 0 || n == 0) return NAN;
    if (!(all > 0)) return (double)area / n; /* no mass: a uniform map's share */
    return in / all;
}

/* 1 if name is "<layer>.<something>" */
static int owned_by(const char *name, const char *layer)
{
    size_t k = strlen(layer);
    return name && !strncmp(name, layer, k) && name[k] == '.';
}

int ds_param_layers_top_down(const ds_model *m, const ds_graph *g, int *layers, int max)
{
    int n = 0;
    for (int i = ds_model_num_layers(m) - 1; i >= 0; i--) {
        const char *ln = ds_model_layer_name(m, i);
        int owns = 0;
        for (int k = 0; ln && k < ds_graph_num_params(g) && !owns; k++)
            owns = owned_by(ds_node_name(ds_graph_param(g, k)), ln);
        if (owns && n < max) layers[n++] = i;
    }
    return n;
}

int ds_copy_layer_state(ds_graph *dst, const ds_graph *src, const char *layer)
{
    if (ds_graph_num_params(dst) != ds_graph_num_params(src))
        return ds_fail("randomising layer '%s': the graphs have %d and %d parameters", layer, ds_graph_num_params(dst),
                       ds_graph_num_params(src));
    int copied = 0;
    for (int k = 0; k < ds_graph_num_params(src); k++) {
        ds_node *s = ds_graph_param(src, k), *d = ds_graph_param(dst, k);
        if (!owned_by(ds_node_name(s), layer)) continue;
        if (strcmp(ds_node_name(s), ds_node_name(d)) || ds_node_numel(s) != ds_node_numel(d))
            return ds_fail("randomising layer '%s': parameter %d is '%s' in one graph and '%s' in the other", layer, k,
                           ds_node_name(s), ds_node_name(d));
        memcpy(ds_node_value(d), ds_node_value(s), sizeof(float) * ds_node_numel(s));
        copied++;
    }
    return copied;
}

void ds_sanity_result_free(ds_sanity_result *r)
{
    free(r->stage);
    free(r->mean);
    free(r->std);
    free(r->count);
    memset(r, 0, sizeof *r);
}

/* maps [n, H, W] of method on rows x through p (chunks of `batch`) */
static int maps_of(ds_program *p, const ds_norm *norm, const ds_sanity_cfg *c, int method, const float *x, int n,
                   const float *cls, float *attr, float *maps)
{
    ds_shape s = ds_node_shape(p->feeds[0]);
    ds_shape sample = {.ndim = s.ndim - 1};
    for (int k = 1; k < s.ndim; k++) sample.d[k - 1] = s.d[k];
    size_t per = 1, hw = (size_t)sample.d[sample.ndim - 2] * sample.d[sample.ndim - 1];
    for (int k = 0; k < sample.ndim; k++) per *= (size_t)sample.d[k];
    ds_explain_cfg e = c->explain;
    e.method = method;
    for (int r = 0; r < n; r += c->batch) {
        int b = n - r < c->batch ? n - r : c->batch;
        if (ds_explain(p, norm, &e, x + per * r, b, cls + r, attr) != 0 ||
            ds_explain_map(method, attr, b, sample, maps + hw * r) != 0)
            return -1;
    }
    return 0;
}

int ds_sanity_cascade(ds_program *p, const ds_model *m, const ds_norm *norm, const ds_sanity_cfg *c, const float *x,
                      int n, const float *cls, ds_sanity_result *res)
{
    memset(res, 0, sizeof *res);
    if (n < 1 || c->n_methods < 1 || c->batch < 1) return ds_fail("sanity check: no images, methods or batch");
    ds_shape s = ds_node_shape(p->feeds[0]);
    if (s.ndim != 4) return ds_fail("sanity check: the input is not an image [C, H, W]");
    if (c->batch > s.d[0]) return ds_fail("sanity check: batch %d over the graph's %d", c->batch, (int)s.d[0]);
    ds_graph *g = p->g, *fresh = NULL;
    ds_model *m2 = NULL;
    int np = ds_graph_num_params(g), layers[256], rc = -1;
    int nl = ds_param_layers_top_down(m, g, layers, 256);
    size_t per = (size_t)s.d[1] * s.d[2] * s.d[3], hw = (size_t)s.d[2] * s.d[3], saved_n = 0;
    for (int k = 0; k < np; k++) saved_n += ds_node_numel(ds_graph_param(g, k));
    float *saved = malloc(sizeof(float) * (saved_n ? saved_n : 1));
    float *attr = malloc(sizeof(float) * per * (size_t)c->batch);
    float *trained = malloc(sizeof(float) * hw * (size_t)n * (size_t)c->n_methods);
    float *now = malloc(sizeof(float) * hw * n);
    float *ta = malloc(sizeof(float) * hw * 2), *tb = ta ? ta + hw : NULL;
    int S = nl + 1, M = c->n_methods;
    res->stage = calloc((size_t)S, sizeof *res->stage);
    res->mean = calloc((size_t)S * M, sizeof(double));
    res->std = calloc((size_t)S * M, sizeof(double));
    res->count = calloc((size_t)S * M, sizeof(int));
    if (!saved || !attr || !trained || !now || !ta || !res->stage || !res->mean || !res->std || !res->count) {
        ds_fail("out of memory for the sanity check");
        goto done;
    }
    res->n_stages = S, res->n_methods = M;
    /* a freshly initialised copy of the model: the same text, another seed */
    if (!(m2 = ds_model_parse(ds_model_text(m), "the model, re-initialised")) || !(fresh = ds_graph_new(c->seed)))
        goto done;
    ds_program p2;
    if (ds_model_build_program(m2, fresh, 1, &(ds_program_opts){0}, &p2) != 0 || ds_graph_compile(fresh) != 0)
        goto done;
    for (size_t k = 0, o = 0; k < (size_t)np; o += ds_node_numel(ds_graph_param(g, k)), k++)
        memcpy(saved + o, ds_node_value(ds_graph_param(g, k)), sizeof(float) * ds_node_numel(ds_graph_param(g, k)));
    for (int st = 0; st < S; st++) {
        if (st == 0) snprintf(res->stage[0], sizeof res->stage[0], "trained");
        else {
            const char *ln = ds_model_layer_name(m, layers[st - 1]);
            if (ds_copy_layer_state(g, fresh, ln) < 0) goto restore;
            size_t used = strlen(res->stage[st - 1]);
            snprintf(res->stage[st], sizeof res->stage[st], "%s%s%s", st == 1 ? "" : res->stage[st - 1],
                     st == 1 ? "" : "+", ln);
            if (used + strlen(ln) + 1 >= sizeof res->stage[st]) /* too many to list */
                snprintf(res->stage[st], sizeof res->stage[st], "...+%s", ln);
        }
        for (int j = 0; j < M; j++) {
            float *mine = st == 0 ? trained + hw * (size_t)n * j : now;
            if (maps_of(p, norm, c, c->methods[j], x, n, cls, attr, mine) != 0) goto restore;
            if (c->maps && c->keep > 0) /* for pictures of the cascade */
                memcpy(c->maps + hw * (size_t)c->keep * ((size_t)st * M + j), mine,
                       sizeof(float) * hw * (size_t)(c->keep < n ? c->keep : n));
            double sum = 0, sq = 0;
            int cnt = 0;
            for (int i = 0; i < n; i++) {
                const float *t = trained + hw * ((size_t)n * j + i), *q = mine + hw * i;
                for (size_t k = 0; k < hw; k++) ta[k] = fabsf(t[k]), tb[k] = fabsf(q[k]);
                double r = ds_spearman(ta, tb, (long)hw);
                if (isnan(r)) continue; /* a constant map (an all-zero Grad-CAM) has no ranking */
                sum += r, sq += r * r, cnt++;
            }
            double mean = cnt ? sum / cnt : NAN;
            res->mean[st * M + j] = mean;
            res->std[st * M + j] = cnt ? sqrt(fmax(0, sq / cnt - mean * mean)) : NAN;
            res->count[st * M + j] = cnt;
        }
    }
    rc = 0;
restore: /* the trained weights back, whatever happened */
    for (size_t k = 0, o = 0; k < (size_t)np; o += ds_node_numel(ds_graph_param(g, k)), k++)
        memcpy(ds_node_value(ds_graph_param(g, k)), saved + o, sizeof(float) * ds_node_numel(ds_graph_param(g, k)));
done:
    ds_graph_free(fresh);
    ds_model_free(m2);
    free(saved);
    free(attr);
    free(trained);
    free(now);
    free(ta);
    if (rc) ds_sanity_result_free(res);
    return rc;
}
