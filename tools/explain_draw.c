/* explain_draw.c — `deepsky explain`'s pictures: a map in colour, the map
 * over the input, and the HTML page that shows them. */
#include "explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int xdraw_signed(int method) { return method == DS_EXPLAIN_GRADXINPUT || method == DS_EXPLAIN_IG; }

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the 99.5th percentile of |v| over the finite values: a few extreme
 * pixels (a map's usual outliers) do not wash the rest out */
static float robust_max(const float *v, size_t n)
{
    float *a = malloc(n * sizeof *a);
    size_t k = 0;
    float mx = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            float e = fabsf(v[i]);
            if (a) a[k++] = e;
            mx = e > mx ? e : mx;
        }
    if (!a || !k) {
        free(a);
        return mx;
    }
    qsort(a, k, sizeof *a, by_value);
    float q = a[(size_t)(0.995 * (double)(k - 1))];
    free(a);
    return q > 0 ? q : mx;
}

static uint8_t to8(double t) { return (uint8_t)lrint(255 * (t < 0 ? 0 : t > 1 ? 1 : t)); }

/* black → red → yellow → white ("hot") at t in [0, 1] */
static void hot(double t, uint8_t *p)
{
    p[0] = to8(3 * t), p[1] = to8(3 * t - 1), p[2] = to8(3 * t - 2);
}

/* blue (−1) → white (0) → red (+1) */
static void diverging(double t, uint8_t *p)
{
    if (t >= 0) p[0] = 255, p[1] = p[2] = to8(1 - t);
    else p[2] = 255, p[0] = p[1] = to8(1 + t);
}

/* the value of map pixel i on [−1, 1] or [0, 1] */
static double level(const float *map, size_t i, float scale, int is_signed)
{
    double v = isfinite(map[i]) && scale > 0 ? map[i] / scale : 0;
    if (!is_signed) v = fabs(v);
    return v > 1 ? 1 : v < -1 ? -1 : v;
}

void xdraw_map(const float *map, int H, int W, int is_signed, uint8_t *rgb)
{
    size_t n = (size_t)H * W;
    float s = robust_max(map, n);
    for (size_t i = 0; i < n; i++) {
        double t = level(map, i, s, is_signed);
        if (is_signed) diverging(t, rgb + 3 * i);
        else hot(t, rgb + 3 * i);
    }
}

/* the grey level of the input's last channel at each pixel, over its range */
static void grey(const float *x, int C, int H, int W, float *g)
{
    size_t n = (size_t)H * W;
    const float *last = x + (size_t)(C - 1) * n;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(last[i])) lo = fminf(lo, last[i]), hi = fmaxf(hi, last[i]);
    for (size_t i = 0; i < n; i++) g[i] = hi > lo && isfinite(last[i]) ? (last[i] - lo) / (hi - lo) : 0;
}

void xdraw_input(const float *x, int C, int H, int W, uint8_t *rgb)
{
    size_t n = (size_t)H * W;
    float *g = malloc(n * sizeof *g);
    if (!g) {
        memset(rgb, 0, 3 * n);
        return;
    }
    grey(x, C, H, W, g);
    for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = to8(g[i]);
    free(g);
}

void xdraw_overlay(const float *x, int C, int H, int W, const float *map, int is_signed, uint8_t *rgb)
{
    size_t n = (size_t)H * W;
    float *g = malloc(n * sizeof *g), s = robust_max(map, n);
    if (!g) {
        memset(rgb, 0, 3 * n);
        return;
    }
    grey(x, C, H, W, g);
    for (size_t i = 0; i < n; i++) {
        double t = level(map, i, s, is_signed), a = fabs(t);
        uint8_t c[3];
        if (is_signed) c[0] = t > 0 ? 255 : 0, c[1] = 0, c[2] = t < 0 ? 255 : 0; /* red: for the class, blue: against */
        else hot(0.35 + 0.65 * a, c);
        for (int k = 0; k < 3; k++) rgb[3 * i + k] = to8(((1 - a) * 0.8 * g[i] + a * c[k] / 255.0));
    }
    free(g);
}

char *xhtml_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++) n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '"' ? 6 : 1;
    char *o = malloc(n + 1), *q = o;
    if (!o) return NULL;
    for (const char *p = s; *p; p++) {
        const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : NULL;
        if (e) q += sprintf(q, "%s", e);
        else *q++ = *p;
    }
    *q = 0;
    return o;
}

int xhtml_write(const char *path, const xhtml *h)
{
    ds_atomic a = {0};
    if (ds_atomic_open(&a, path) != 0) return -1;
    FILE *f = a.f;
    char *title = xhtml_escape(h->title), *summary = xhtml_escape(h->summary), *pic = xhtml_escape(h->picture);
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n"
               "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
               "img{image-rendering:pixelated;max-width:100%%}</style></head><body>\n<h1>%s</h1>\n<pre>%s</pre>\n",
            title ? title : "", title ? title : "", summary ? summary : "");
    fprintf(f, "<p><img src=\"%s\" alt=\"inputs, maps and overlays\"></p>\n<table>\n", pic ? pic : "");
    for (int r = 0; r < h->rows; r++) {
        fprintf(f, "<tr>");
        for (int c = 0; c < h->cols; c++) {
            const char *cell = h->cells[(size_t)r * h->cols + c];
            fprintf(f, r ? "<td>%s</td>" : "<th>%s</th>", cell ? cell : "");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n</body></html>\n");
    free(title), free(summary), free(pic);
    return ds_atomic_commit(&a); /* a write error fails here, the old page kept */
}
