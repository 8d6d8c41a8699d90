/* explain_filters.c — `deepsky explain --filters LAYER`: what each filter
 * of a conv layer responds to (Zeiler & Fergus 2013, figure 2). Over a
 * data set, each filter's strongest activations (its top-k samples, at
 * the position of their spatial maximum); the input patch under each is
 * its receptive field, found generically as the bounding box of the
 * nonzero input gradient of that one activation — taken with the
 * deconvnet's relu rule, which makes the same gradient the deconvnet's
 * reconstruction of the activation, the filter's picture for layers
 * after the first (the first's are its weights). */
#include "explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct hit {
    float v;            /* the activation */
    int sample, pos;    /* the data row and position in the layer's plane */
    int y0, y1, x0, x1; /* the receptive field in the input, [y0, y1) x [x0, x1) */
} hit;

/* best[0..top) sorted by v, descending: insert h if it belongs there */
static void keep_top(hit *best, int top, hit h)
{
    if (!(h.v > best[top - 1].v)) return;
    int i = top - 1;
    while (i > 0 && h.v > best[i - 1].v) best[i] = best[i - 1], i--;
    best[i] = h;
}

/* the weight of a first conv layer [K, C, kh, kw] (the input's channels), else NULL */
static ds_node *first_conv_weight(const xrun *r, int li)
{
    const ds_model *m = r->net.model;
    for (int i = 0; i < li; i++)
        if (!strcmp(ds_model_layer_type(m, i), "conv") || !strcmp(ds_model_layer_type(m, i), "dense")) return NULL;
    char key[160];
    snprintf(key, sizeof key, "%s.weight", ds_model_layer_name(m, li));
    ds_node *w = ds_graph_find(r->net.g, key);
    return w && ds_node_shape(w).ndim == 4 && ds_node_shape(w).d[1] == r->C ? w : NULL;
}

/* the deconvnet gradient of each hit's activation w.r.t. the input (raw
 * units), hits in batches; their receptive fields; recon[k] (H x W, the
 * last channel) of each filter's top hit */
static int reconstruct(xrun *r, ds_node *L, const ds_dataset *d, hit *hits, int K, int top, float *recon)
{
    ds_program *p = &r->net.prog;
    ds_graph *g = r->net.g;
    int mb = r->net.batch, rc = 0;
    ds_shape ls = ds_node_shape(L);
    size_t plane = (size_t)ls.d[2] * ls.d[3], per = (size_t)ls.d[1] * plane, hw = (size_t)r->H * r->W;
    float *dout = malloc((size_t)mb * per * sizeof *dout);
    int *rows = malloc((size_t)mb * sizeof *rows), *which = malloc((size_t)mb * sizeof *which);
    if (!dout || !rows || !which) rc = cli_error("out of memory");
    int total = K * top;
    for (int t0 = 0; t0 < total && rc == 0;) {
        int n = 0;
        for (; t0 < total && n < mb; t0++)
            if (hits[t0].sample >= 0) which[n] = t0, rows[n] = hits[t0].sample, n++;
        if (!n) break;
        if ((rc = xrun_forward(r, d, rows, n)) != 0) break;
        memset(dout, 0, (size_t)mb * per * sizeof *dout);
        for (int j = 0; j < n; j++) dout[(size_t)j * per + (size_t)(which[j] / top) * plane + hits[which[j]].pos] = 1;
        float *gx = ds_node_grad(p->feeds[0]);
        memset(gx, 0, (size_t)mb * r->sample * sizeof *gx); /* an input's gradient accumulates */
        if (ds_graph_set_relu_backward(g, DS_RELU_BACKWARD_DECONVNET) != 0 || ds_graph_backward(g, L, dout) != 0)
            rc = cli_lib_error("--filters");
        ds_graph_set_relu_backward(g, DS_RELU_BACKWARD_STANDARD);
        for (int j = 0; j < n && rc == 0; j++) {
            hit *h = &hits[which[j]];
            const float *gr = gx + (size_t)j * r->sample;
            h->y0 = r->H, h->y1 = 0, h->x0 = r->W, h->x1 = 0;
            for (int c = 0; c < r->C; c++)
                for (int y = 0; y < r->H; y++)
                    for (int x = 0; x < r->W; x++)
                        if (gr[(size_t)c * hw + (size_t)y * r->W + x] != 0) {
                            h->y0 = y < h->y0 ? y : h->y0, h->y1 = y + 1 > h->y1 ? y + 1 : h->y1;
                            h->x0 = x < h->x0 ? x : h->x0, h->x1 = x + 1 > h->x1 ? x + 1 : h->x1;
                        }
            if (which[j] % top == 0) { /* the filter's strongest: its reconstruction, in the data's units */
                int c = r->C - 1;
                double sd = r->norm.channels == r->C ? r->norm.std[c] : 1;
                for (size_t i = 0; i < hw; i++) recon[(size_t)(which[j] / top) * hw + i] = (float)(gr[c * hw + i] / sd);
            }
        }
    }
    free(dout), free(rows), free(which);
    return rc;
}

/* tiles [n, ph, pw] of src's [y0, y1) x [x0, x1) (src H x W), centred; NaN around (black) */
static void crop(const float *src, int W, const hit *h, int ph, int pw, float *tile)
{
    for (int i = 0; i < ph * pw; i++) tile[i] = NAN;
    if (h->sample < 0 || h->y1 <= h->y0) return;
    int bh = h->y1 - h->y0, bw = h->x1 - h->x0, oy = (ph - bh) / 2, ox = (pw - bw) / 2;
    for (int y = 0; y < bh && y < ph; y++)
        for (int x = 0; x < bw && x < pw; x++) tile[(oy + y) * pw + ox + x] = src[(h->y0 + y) * W + h->x0 + x];
}

int xrun_filters(xrun *r, const char *name, const ds_dataset *d, const char *dir)
{
    int li = xrun_layer(r, name, "--filters");
    if (li < 0) return 1;
    ds_node *L = ds_model_layer_output(r->net.model, li);
    int mb = r->net.batch, top = r->top < d->n ? r->top : d->n, rc = 1;
    ds_shape ls = ds_node_shape(L);
    int K = ls.d[1];
    size_t plane = (size_t)ls.d[2] * ls.d[3], hw = (size_t)r->H * r->W;
    hit *hits = malloc((size_t)K * top * sizeof *hits);
    int *rows = malloc((size_t)mb * sizeof *rows);
    float *recon = calloc((size_t)K * hw, sizeof *recon), *tiles = NULL;
    char **labels = calloc((size_t)K * top, sizeof *labels);
    if (!hits || !rows || !recon || !labels) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < K * top; i++) hits[i] = (hit){.v = -INFINITY, .sample = -1};
    /* each filter's top samples: the maximum over positions, per sample */
    for (int r0 = 0; r0 < d->n; r0 += mb) {
        int n = d->n - r0 < mb ? d->n - r0 : mb;
        for (int j = 0; j < n; j++) rows[j] = r0 + j;
        if (xrun_forward(r, d, rows, n) != 0) goto done;
        const float *A = ds_node_value(L);
        for (int j = 0; j < n; j++)
            for (int k = 0; k < K; k++) {
                const float *a = A + ((size_t)j * K + k) * plane;
                size_t best = 0;
                for (size_t i = 1; i < plane; i++)
                    if (a[i] > a[best]) best = i;
                if (isfinite(a[best]))
                    keep_top(hits + (size_t)k * top, top, (hit){a[best], r0 + j, (int)best, 0, 0, 0, 0});
            }
    }
    if (reconstruct(r, L, d, hits, K, top, recon) != 0) goto done;
    int ph = 1, pw = 1;
    for (int i = 0; i < K * top; i++)
        if (hits[i].sample >= 0 && hits[i].y1 > hits[i].y0) {
            ph = hits[i].y1 - hits[i].y0 > ph ? hits[i].y1 - hits[i].y0 : ph;
            pw = hits[i].x1 - hits[i].x0 > pw ? hits[i].x1 - hits[i].x0 : pw;
        }
    /* the patches: one row per filter, its top samples' receptive fields (the last channel) */
    if (!(tiles = malloc((size_t)K * top * (hw > (size_t)ph * pw ? hw : (size_t)ph * pw) * sizeof *tiles))) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < K * top; i++) {
        const hit *h = &hits[i];
        const float *src = h->sample >= 0 ? d->x + (size_t)h->sample * r->sample + (size_t)(r->C - 1) * hw : NULL;
        if (src) crop(src, r->W, h, ph, pw, tiles + (size_t)i * ph * pw);
        else for (int q = 0; q < ph * pw; q++) tiles[(size_t)i * ph * pw + q] = NAN;
        char lab[64];
        if (h->sample >= 0) snprintf(lab, sizeof lab, "f%d #%d\n%.3g", i / top, h->sample, (double)h->v);
        else snprintf(lab, sizeof lab, "f%d -", i / top);
        labels[i] = strdup(lab);
    }
    char path[4096];
    if (cli_path(path, sizeof path, "%s/patches_%s.png", dir, name) != 0) goto done;
    if (ds_png_grid_labeled(path, tiles, K * top, ph, pw, top, 1, (const char *const *)labels) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    printf("%s: %d filters x top %d patches (%d x %d) -> %s\n", name, K, top, ph, pw, path);
    /* the filters: a first layer's weights, else each filter's reconstruction */
    ds_node *w = first_conv_weight(r, li);
    if (cli_path(path, sizeof path, "%s/filters_%s.png", dir, name) != 0) goto done;
    if (w) {
        ds_shape ws = ds_node_shape(w);
        int n = ws.d[0] * ws.d[1];
        for (int i = 0; i < K * top; i++) free(labels[i]), labels[i] = NULL;
        for (int i = 0; i < n && i < K * top; i++) {
            char lab[32];
            snprintf(lab, sizeof lab, ws.d[1] > 1 ? "f%d c%d" : "f%d", i / ws.d[1], i % ws.d[1]);
            labels[i] = strdup(lab);
        }
        if (ds_png_grid_labeled(path, ds_node_value(w), n, ws.d[2], ws.d[3], ws.d[1] > 1 ? ws.d[1] : 0, 1,
                                n <= K * top ? (const char *const *)labels : NULL) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        printf("%s: the weights of %d filters (%d x %d) -> %s\n", name, ws.d[0], ws.d[2], ws.d[3], path);
    } else {
        for (int k = 0; k < K; k++) {
            crop(recon + (size_t)k * hw, r->W, &hits[(size_t)k * top], ph, pw, tiles + (size_t)k * ph * pw);
            free(labels[k]);
            char lab[32];
            snprintf(lab, sizeof lab, "f%d", k);
            labels[k] = strdup(lab);
        }
        if (ds_png_grid_labeled(path, tiles, K, ph, pw, 0, 1, (const char *const *)labels) != 0) {
            cli_lib_error(NULL);
            goto done;
        }
        printf("%s: the deconvnet reconstruction of each filter's strongest activation -> %s\n", name, path);
    }
    rc = 0;
done:
    for (int i = 0; labels && i < K * top; i++) free(labels[i]);
    free(labels), free(hits), free(rows), free(recon), free(tiles);
    return rc;
}
