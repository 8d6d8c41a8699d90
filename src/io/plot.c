/* plot.c — line charts and confusion-matrix heat maps, rasterised into an
 * RGB buffer and saved as PNG. Lines are anti-aliased by coverage (distance
 * from each pixel centre to the segment); text is the 5x7 font of font.c
 * drawn at 2x. */
#include "internal.h"
#include "font.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rgb {
    uint8_t r, g, b;
} rgb;

typedef struct canvas {
    int w, h;
    uint8_t *px; /* [h, w, 3] */
} canvas;

#define TS 2 /* text scale */
static const rgb WHITE = {255, 255, 255}, INK = {34, 34, 34}, AXIS = {90, 90, 90},
                 GRID = {232, 232, 232};
/* matplotlib's "tab10" palette */
static const rgb PALETTE[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                {188, 189, 34},  {23, 190, 207}};

static int canvas_new(canvas *c, int w, int h, const char *path)
{
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return ds_fail("plot %s: out of memory for %dx%d pixels", path, w, h);
    memset(c->px, 255, (size_t)w * h * 3);
    return 0;
}

static int canvas_save(canvas *c, const char *path)
{
    int rc = ds_png_write(path, c->w, c->h, 3, c->px);
    free(c->px);
    c->px = NULL;
    return rc;
}

/* p ← (1 − a)·p + a·col */
static void blend(canvas *c, int x, int y, rgb col, float a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0) return;
    if (a > 1) a = 1;
    uint8_t *p = c->px + 3 * ((size_t)y * c->w + x);
    p[0] = (uint8_t)(p[0] * (1 - a) + col.r * a + 0.5f);
    p[1] = (uint8_t)(p[1] * (1 - a) + col.g * a + 0.5f);
    p[2] = (uint8_t)(p[2] * (1 - a) + col.b * a + 0.5f);
}

/* Solid rectangle [x0, x1) × [y0, y1). */
static void fill(canvas *c, int x0, int y0, int x1, int y1, rgb col)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) blend(c, x, y, col, 1);
}

/* One-pixel outline just outside [x0, x1) × [y0, y1). */
static void frame(canvas *c, int x0, int y0, int x1, int y1, rgb col)
{
    fill(c, x0 - 1, y0 - 1, x1 + 1, y0, col);
    fill(c, x0 - 1, y1, x1 + 1, y1 + 1, col);
    fill(c, x0 - 1, y0, x0, y1, col);
    fill(c, x1, y0, x1 + 1, y1, col);
}

/* ---- text ---- */

/* UTF-8 continuation bytes take no place: a multi-byte character draws as
 * one '?'. */
static int is_cont(char ch) { return ((unsigned char)ch & 0xC0) == 0x80; }

/* Width of s in pixels at `scale` (6-pixel advance, no trailing gap). */
static int text_w(const char *s, int scale)
{
    int n = 0;
    for (; *s; s++) n += !is_cont(*s);
    return n ? (6 * n - 1) * scale : 0;
}

/* Draw s with its box's top-left at (x, y); vertical text reads bottom to
 * top and then (x, y) is the box's top-left after rotation. */
static void text_raw(canvas *c, int x, int y, const char *s, int scale, rgb col, int vertical)
{
    int w = text_w(s, scale), i = -1;
    for (; *s; s++) {
        if (is_cont(*s)) continue;
        i++;
        for (int r = 0; r < DS_FONT_ROWS; r++) {
            unsigned bits = ds_font_row((unsigned char)*s, r);
            for (int k = 0; k < DS_FONT_W; k++) {
                if (!(bits >> (DS_FONT_W - 1 - k) & 1)) continue;
                int gx = (6 * i + k) * scale, gy = r * scale; /* unrotated offsets */
                for (int dy = 0; dy < scale; dy++)
                    for (int dx = 0; dx < scale; dx++) {
                        if (vertical) blend(c, x + gy + dy, y + w - 1 - gx - dx, col, 1);
                        else blend(c, x + gx + dx, y + gy + dy, col, 1);
                    }
            }
        }
    }
}

/* Draw s anchored at (x, y): ax, ay ∈ {0, 0.5, 1} pick the left/centre/right
 * and top/middle/bottom of its box (the rotated box for vertical text). */
static void text(canvas *c, int x, int y, const char *s, int scale, rgb col, float ax, float ay,
                 int vertical)
{
    int bw = text_w(s, scale), bh = DS_FONT_H * scale;
    if (vertical) {
        int t = bw;
        bw = bh;
        bh = t;
    }
    text_raw(c, x - (int)lroundf(ax * bw), y - (int)lroundf(ay * bh), s, scale, col, vertical);
}

/* s, or its first max − 2 characters and ".." in buf when it is longer. */
static const char *clip(char *buf, size_t size, const char *s, int max)
{
    int n = 0;
    size_t k = 0;
    for (size_t i = 0; s[i]; i++) n += !is_cont(s[i]);
    if (n <= max) return s;
    for (n = 0; s[k] && (n < max - 2 || is_cont(s[k])); k++) n += !is_cont(s[k]);
    if (k > size - 3) k = size - 3;
    snprintf(buf, size, "%.*s..", (int)k, s);
    return buf;
}

/* ---- axes ---- */

/* 1, 2 or 5 × 10^k, near span/target. */
static double nice_step(double span, int target)
{
    double raw = span / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Tick label with as many decimals as the step needs. */
static void tick_label(char *buf, size_t size, double v, double step)
{
    int dec = (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0.00" */
    if (dec > 6 || fabs(v) >= 1e6) snprintf(buf, size, "%.3g", v);
    else snprintf(buf, size, "%.*f", dec < 0 ? 0 : dec, v);
}

/* ---- x-y charts ---- */

enum { LW = 800, LH = 500 };
#define LINE_R 1.3f /* line half-width in pixels */
#define MARK_R 3.6f /* point marker radius */

/* Coverage of segment (ax, ay)–(bx, by) with radius r into cov [ph, pw]
 * (plot-area coordinates), keeping the maximum so joints do not darken. */
static void stroke_r(float *cov, int pw, int ph, float ax, float ay, float bx, float by, float r)
{
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, pad = r + 1;
    if (!isfinite(ax) || !isfinite(ay) || !isfinite(bx) || !isfinite(by)) return;
    int x0 = (int)floorf(fminf(ax, bx) - pad), x1 = (int)ceilf(fmaxf(ax, bx) + pad);
    int y0 = (int)floorf(fminf(ay, by) - pad), y1 = (int)ceilf(fmaxf(ay, by) + pad);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > pw - 1) x1 = pw - 1;
    if (y1 > ph - 1) y1 = ph - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float px = x + 0.5f - ax, py = y + 0.5f - ay;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float a = r + 0.5f - sqrtf(ex * ex + ey * ey);
            if (a > cov[y * pw + x]) cov[y * pw + x] = a > 1 ? 1 : a;
        }
}

static void stroke(float *cov, int pw, int ph, float ax, float ay, float bx, float by)
{
    stroke_r(cov, pw, ph, ax, ay, bx, by, LINE_R);
}

/* A dashed segment: 8 pixels on, 6 off. */
static void stroke_dashed(float *cov, int pw, int ph, float ax, float ay, float bx, float by)
{
    float len = hypotf(bx - ax, by - ay);
    if (!(len > 0)) return;
    for (float t = 0; t < len; t += 14) {
        float e = fminf(t + 8, len);
        stroke_r(cov, pw, ph, ax + (bx - ax) * t / len, ay + (by - ay) * t / len, ax + (bx - ax) * e / len,
                 ay + (by - ay) * e / len, 1.0f);
    }
}

/* log10 ticks: the decades, labelled like 0.001, 0.01, ..., 1, 10 */
static void log_label(char *buf, size_t size, double decade)
{
    int k = (int)lround(decade);
    if (k < -4 || k > 5) snprintf(buf, size, "1e%d", k);
    else if (k < 0) snprintf(buf, size, "%.*f", -k, pow(10, k));
    else snprintf(buf, size, "%.0f", pow(10, k));
}

typedef struct box {
    int x0, y0, x1, y1;
} box;

/* How many pixels of the plot-area mask m [ph, pw] a box covers (off the area counts too: it must not go there). */
static long box_ink(const uint8_t *m, int pw, int ph, box b)
{
    long n = 0;
    for (int y = b.y0; y < b.y1; y++)
        for (int x = b.x0; x < b.x1; x++) n += x < 0 || y < 0 || x >= pw || y >= ph ? 1 : m[y * pw + x];
    return n;
}

static void box_mark(uint8_t *m, int pw, int ph, box b)
{
    for (int y = b.y0 < 0 ? 0 : b.y0; y < b.y1 && y < ph; y++)
        for (int x = b.x0 < 0 ? 0 : b.x0; x < b.x1 && x < pw; x++) m[y * pw + x] = 1;
}

/* a series' x of point i */
static double sx(const ds_plot_series *s, int i) { return s->x ? s->x[i] : i + 1; }

int ds_plot_xy(const char *path, const ds_plot_opts *o, const ds_plot_series *ser, int n_series)
{
    static const ds_plot_opts none;
    if (!path) return ds_fail("plot: NULL path");
    if (!o) o = &none;
    if (n_series < 1 || n_series > 64 || !ser)
        return ds_fail("plot %s: need 1..64 series (got %d)", path, n_series);
    int any_x = 0;
    for (int s = 0; s < n_series; s++) {
        if (!ser[s].y || ser[s].n < 1)
            return ds_fail("plot %s: series %d has no points (y NULL or n = %d)", path, s, ser[s].n);
        any_x |= ser[s].x != NULL;
    }
    int logx = o->log_x;

    /* data ranges over the finite values (x > 0 on a log axis), error bars included */
    double lo = INFINITY, hi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < ser[s].n; i++) {
            double x = sx(&ser[s], i), y = ser[s].y[i];
            if (!isfinite(x) || (logx && x <= 0) || !isfinite(y)) continue;
            if (ser[s].style == DS_PLOT_DASHED && n_series > 1) continue; /* guides do not set the range */
            x = logx ? log10(x) : x;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x);
            lo = fmin(lo, y), hi = fmax(hi, y);
            if (ser[s].lo && isfinite(ser[s].lo[i])) lo = fmin(lo, ser[s].lo[i]);
            if (ser[s].hi && isfinite(ser[s].hi[i])) hi = fmax(hi, ser[s].hi[i]);
        }
    if (lo > hi) lo = 0, hi = 1;
    if (xlo > xhi) xlo = logx ? -1 : 0, xhi = logx ? 0 : 1;
    if (o->y_fixed && o->ymax > o->ymin) {
        lo = o->ymin, hi = o->ymax;
    } else if (hi - lo < 1e-12 * fmax(1, fabs(hi))) {
        double d = fabs(hi) > 0 ? 0.1 * fabs(hi) : 1;
        lo -= d, hi += d;
    } else {
        double d = 0.05 * (hi - lo);
        lo -= d, hi += d;
    }
    if (o->x_fixed && o->xmax > o->xmin && (!logx || o->xmin > 0))
        xlo = logx ? log10(o->xmin) : o->xmin, xhi = logx ? log10(o->xmax) : o->xmax;
    else if (logx) {
        xlo = floor(xlo + 1e-9), xhi = ceil(xhi - 1e-9);
        if (xhi <= xlo) xhi = xlo + 1;
    } else if (!any_x) {
        int np = 1;
        for (int s = 0; s < n_series; s++) np = ser[s].n > np ? ser[s].n : np;
        double xpad = np > 1 ? 0.02 * (np - 1) : 1;
        xlo = 1 - xpad, xhi = np + xpad;
    } else if (xhi - xlo < 1e-12 * fmax(1, fabs(xhi))) {
        xlo -= 1, xhi += 1;
    } else {
        double d = 0.03 * (xhi - xlo);
        xlo -= d, xhi += d;
    }
    double ystep = nice_step(hi - lo, 6);
    double xstep = nice_step(xhi - xlo, 8);
    if (!any_x && !logx && xstep < 1) xstep = 1; /* x = 1..n: whole numbers */

    /* left margin fits the widest y tick label, and the y label beside them */
    char buf[64];
    int ml = 0;
    for (double v = ceil(lo / ystep) * ystep; v <= hi + 1e-9 * ystep; v += ystep) {
        tick_label(buf, sizeof buf, v, ystep);
        int w = text_w(buf, TS);
        if (w > ml) ml = w;
    }
    int ylab = o->ylabel && *o->ylabel ? DS_FONT_H * TS + 14 : 0;
    int x0 = 8 + ylab + ml + 14, x1 = LW - 24, y0 = 52, y1 = LH - 66, pw = x1 - x0, ph = y1 - y0;
#define PX(x) ((float)(((logx ? log10(x) : (x)) - xlo) / (xhi - xlo) * pw))
#define PY(y) ((float)((hi - (y)) / (hi - lo) * ph))

    canvas c;
    if (canvas_new(&c, LW, LH, path) != 0) return -1;
    float *cov = malloc(sizeof(float) * pw * ph);
    uint8_t *ink = calloc((size_t)pw * ph, 1); /* where any series or its text drew */
    if (!cov || !ink) {
        free(cov), free(ink), free(c.px);
        return ds_fail("plot %s: out of memory", path);
    }

    /* grid, ticks and tick labels */
    for (double v = ceil(lo / ystep) * ystep; v <= hi + 1e-9 * ystep; v += ystep) {
        int y = y0 + (int)lroundf(PY(v));
        fill(&c, x0, y, x1, y + 1, GRID);
        fill(&c, x0 - 6, y, x0, y + 1, AXIS);
        tick_label(buf, sizeof buf, v, ystep);
        text(&c, x0 - 10, y, buf, TS, INK, 1, 0.5f, 0);
    }
    if (logx) {
        int decades = (int)lround(xhi - xlo), every = decades > 8 ? 2 : 1;
        for (int k = (int)floor(xlo + 1e-9); k <= (int)floor(xhi + 1e-9); k++) {
            int x = x0 + (int)lroundf((float)((k - xlo) / (xhi - xlo) * pw));
            if (k >= xlo - 1e-9) {
                fill(&c, x, y0, x + 1, y1, GRID);
                fill(&c, x, y1, x + 1, y1 + 6, AXIS);
            }
            if (k >= xlo - 1e-9 && (k - (int)ceil(xlo - 1e-9)) % every == 0) {
                log_label(buf, sizeof buf, k);
                text(&c, x, y1 + 12, buf, TS, INK, 0.5f, 0, 0);
            }
            for (int m = 2; m <= 9 && decades <= 6; m++) { /* minor ticks at 2..9 × 10^k */
                double t = k + log10(m);
                if (t > xhi + 1e-9) break;
                if (t < xlo - 1e-9) continue;
                int xm = x0 + (int)lroundf((float)((t - xlo) / (xhi - xlo) * pw));
                fill(&c, xm, y1, xm + 1, y1 + 3, AXIS);
                if (decades <= 2 && (m == 2 || m == 5)) {
                    fill(&c, xm, y0, xm + 1, y1, GRID);
                    snprintf(buf, sizeof buf, "%g", m * pow(10, k));
                    text(&c, xm, y1 + 12, buf, TS, INK, 0.5f, 0, 0);
                }
            }
        }
    } else {
        for (double v = ceil(xlo / xstep) * xstep; v <= xhi + 1e-9 * xstep; v += xstep) {
            int x = x0 + (int)lroundf(PX(v));
            fill(&c, x, y0, x + 1, y1, GRID);
            fill(&c, x, y1, x + 1, y1 + 6, AXIS);
            tick_label(buf, sizeof buf, v, xstep);
            text(&c, x, y1 + 12, buf, TS, INK, 0.5f, 0, 0);
        }
    }
    frame(&c, x0, y0, x1, y1, AXIS);

    /* series: a segment between each pair of finite neighbours, a dot for a
     * finite point with no finite neighbour; markers and error bars */
    for (int s = 0; s < n_series; s++) {
        const ds_plot_series *S = &ser[s];
        const float *v = S->y;
        int st = S->style;
        rgb col = st == DS_PLOT_DASHED ? AXIS : PALETTE[s % 10];
#define OK(i) (isfinite(v[i]) && isfinite(sx(S, i)) && (!logx || sx(S, i) > 0))
        memset(cov, 0, sizeof(float) * pw * ph);
        for (int i = 0; i < S->n; i++) {
            if (!OK(i)) continue;
            float ax = PX(sx(S, i)), ay = PY(v[i]);
            int prev = i > 0 && OK(i - 1), next = i + 1 < S->n && OK(i + 1);
            if (st != DS_PLOT_POINTS && next) {
                if (st == DS_PLOT_DASHED) stroke_dashed(cov, pw, ph, ax, ay, PX(sx(S, i + 1)), PY(v[i + 1]));
                else stroke(cov, pw, ph, ax, ay, PX(sx(S, i + 1)), PY(v[i + 1]));
            } else if (!prev && st != DS_PLOT_POINTS && st != DS_PLOT_LINE_POINTS) {
                stroke(cov, pw, ph, ax, ay, ax, ay);
            }
            if (st == DS_PLOT_POINTS || st == DS_PLOT_LINE_POINTS) stroke_r(cov, pw, ph, ax, ay, ax, ay, MARK_R);
            if (S->lo && S->hi && isfinite(S->lo[i]) && isfinite(S->hi[i])) {
                float a = PY(S->lo[i]), b = PY(S->hi[i]);
                stroke_r(cov, pw, ph, ax, a, ax, b, 0.9f);
                stroke_r(cov, pw, ph, ax - 6, a, ax + 6, a, 0.9f);
                stroke_r(cov, pw, ph, ax - 6, b, ax + 6, b, 0.9f);
            }
        }
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
                if (cov[y * pw + x] > 0) {
                    blend(&c, x0 + x, y0 + y, col, cov[y * pw + x]);
                    ink[y * pw + x] = 1;
                }
    }
    /* point labels (e.g. counts): above the point or its error bar, else below; never over ink */
    for (int s = 0; s < n_series; s++) {
        const ds_plot_series *S = &ser[s];
        const float *v = S->y;
        for (int i = 0; S->labels && i < S->n; i++) {
            if (!OK(i) || !S->labels[i] || !*S->labels[i]) continue;
            char lb[4 * 16 + 1];
            const char *t = clip(lb, sizeof lb, S->labels[i], 16);
            int sc = TS, tw = text_w(t, sc), th = DS_FONT_H * sc;
            float ax = PX(sx(S, i));
            float top = PY(S->hi && isfinite(S->hi[i]) ? fmaxf(S->hi[i], v[i]) : v[i]);
            float bot = PY(S->lo && isfinite(S->lo[i]) ? fminf(S->lo[i], v[i]) : v[i]);
            int lx = (int)lroundf(ax) - tw / 2;
            if (lx < 2) lx = 2;
            if (lx + tw > pw - 2) lx = pw - 2 - tw;
            box cand[4] = {{lx - 2, (int)top - 8 - th - 2, lx + tw + 2, (int)top - 8 + 2},
                           {lx - 2, (int)bot + 8 - 2, lx + tw + 2, (int)bot + 8 + th + 2},
                           {(int)ax + 10, (int)PY(v[i]) - th / 2 - 2, (int)ax + 14 + tw, (int)PY(v[i]) + th / 2 + 2},
                           {(int)ax - 14 - tw, (int)PY(v[i]) - th / 2 - 2, (int)ax - 10, (int)PY(v[i]) + th / 2 + 2}};
            int best = -1;
            long bn = 0;
            for (int k = 0; k < 4; k++) {
                long n = box_ink(ink, pw, ph, cand[k]);
                if (best < 0 || n < bn) best = k, bn = n;
            }
            box b = cand[best];
            fill(&c, x0 + b.x0, y0 + b.y0, x0 + b.x1, y0 + b.y1, WHITE);
            text(&c, x0 + b.x0 + 2, y0 + b.y0 + 2, t, sc, INK, 0, 0, 0);
            box_mark(ink, pw, ph, b);
        }
    }
#undef OK

    /* legend: in the corner of the plot area that covers no ink (the least,
     * if every corner has some and the legend cannot go below) */
    int n_named = 0;
    for (int s = 0; s < n_series; s++) n_named += ser[s].name && *ser[s].name;
    int below = 0, extra = 0;
    if (n_named) {
        int maxc = (pw - 10 - 28 - 8 - 10 - 20) / (6 * TS), tw = 0;
        if (maxc > 48) maxc = 48;
        char nb[4 * 48 + 1];
        for (int s = 0; s < n_series; s++)
            if (ser[s].name && *ser[s].name) {
                int w = text_w(clip(nb, sizeof nb, ser[s].name, maxc), TS);
                if (w > tw) tw = w;
            }
        int bw = 10 + 28 + 8 + tw + 10, bh = 8 + 22 * n_named;
        long best = -1;
        int bx = 0, by = 0;
        for (int k = 0; k < 4 && bh + 20 <= ph; k++) {
            box b = {k & 1 ? 10 : pw - 10 - bw, k & 2 ? ph - 10 - bh : 10, 0, 0};
            b.x1 = b.x0 + bw, b.y1 = b.y0 + bh;
            long n = box_ink(ink, pw, ph, b);
            if (best < 0 || n < best) best = n, bx = x0 + b.x0, by = y0 + b.y0;
        }
        if (best != 0) { /* every corner hides something: below the chart, the image grows */
            below = 1, extra = bh + 16;
            uint8_t *np = realloc(c.px, (size_t)c.w * (c.h + extra) * 3);
            if (!np) {
                free(cov), free(ink), free(c.px);
                return ds_fail("plot %s: out of memory", path);
            }
            memset(np + (size_t)c.w * c.h * 3, 255, (size_t)c.w * extra * 3);
            c.px = np, c.h += extra;
            bx = x0 + (pw - bw) / 2, by = LH + 4;
        }
        fill(&c, bx, by, bx + bw, by + bh, WHITE);
        frame(&c, bx, by, bx + bw, by + bh, (rgb){200, 200, 200});
        for (int s = 0, row = 0; s < n_series; s++) {
            if (!ser[s].name || !*ser[s].name) continue;
            int ly = by + 15 + 22 * row++;
            rgb col = ser[s].style == DS_PLOT_DASHED ? AXIS : PALETTE[s % 10];
            if (ser[s].style == DS_PLOT_DASHED) fill(&c, bx + 10, ly - 1, bx + 18, ly + 1, col), fill(&c, bx + 24, ly - 1, bx + 32, ly + 1, col);
            else if (ser[s].style == DS_PLOT_POINTS) fill(&c, bx + 21, ly - 3, bx + 27, ly + 4, col);
            else fill(&c, bx + 10, ly - 1, bx + 38, ly + 2, col);
            if (ser[s].style == DS_PLOT_LINE_POINTS) fill(&c, bx + 21, ly - 3, bx + 27, ly + 4, col);
            text(&c, bx + 46, ly, clip(nb, sizeof nb, ser[s].name, maxc), TS, INK, 0, 0.5f, 0);
        }
    }
    (void)below;
    free(cov);
    free(ink);
#undef PX
#undef PY

    char tb[4 * 80 + 1];
    if (o->title) {
        const char *t = clip(tb, sizeof tb, o->title, (LW - 60) / (6 * TS));
        text(&c, (x0 + x1) / 2, 18, t, TS, INK, 0.5f, 0, 0);
        text(&c, (x0 + x1) / 2 + 1, 18, t, TS, INK, 0.5f, 0, 0); /* bold */
    }
    if (o->xlabel)
        text(&c, (x0 + x1) / 2, LH - 12, clip(tb, sizeof tb, o->xlabel, (LW - 60) / (6 * TS)), TS, INK, 0.5f, 1, 0);
    if (ylab)
        text(&c, 8, (y0 + y1) / 2, clip(tb, sizeof tb, o->ylabel, (ph - 10) / (6 * TS)), TS, INK, 0, 0.5f, 1);
    return canvas_save(&c, path);
}

int ds_plot_lines(const char *path, const char *title, const char *xlabel, int n_series,
                  const char *const *names, const float *const *ys, int n_points)
{
    return ds_plot_lines_ex(path, title, xlabel, NULL, n_series, names, ys, n_points);
}

int ds_plot_lines_ex(const char *path, const char *title, const char *xlabel, const char *ylabel, int n_series,
                     const char *const *names, const float *const *ys, int n_points)
{
    if (!path) return ds_fail("plot: NULL path");
    if (n_series < 1 || n_series > 64 || n_points < 1 || !ys)
        return ds_fail("plot %s: need 1..64 series of at least one point (got %d of %d)", path, n_series, n_points);
    ds_plot_series s[64];
    char nb[64][16];
    for (int k = 0; k < n_series; k++) {
        if (!ys[k]) return ds_fail("plot %s: series %d is NULL", path, k);
        snprintf(nb[k], sizeof nb[k], "series %d", k + 1);
        s[k] = (ds_plot_series){.name = names ? names[k] ? names[k] : nb[k] : NULL, .y = ys[k], .n = n_points};
    }
    ds_plot_opts o = {.title = title, .xlabel = xlabel, .ylabel = ylabel};
    return ds_plot_xy(path, &o, s, n_series);
}


/* ---- confusion matrix ---- */

/* matplotlib's "Blues" at t ∈ [0, 1]: each channel falls monotonically. */
static rgb blues(double t)
{
    static const rgb stop[5] = {
        {247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int i = t >= 1 ? 3 : (int)(t * 4);
    double f = t * 4 - i;
    return (rgb){(uint8_t)lround(stop[i].r + f * (stop[i + 1].r - stop[i].r)),
                 (uint8_t)lround(stop[i].g + f * (stop[i + 1].g - stop[i].g)),
                 (uint8_t)lround(stop[i].b + f * (stop[i + 1].b - stop[i].b))};
}

#define NAME_MAX_CHARS 12

int ds_plot_confusion(const char *path, int classes, const int *counts,
                      const char *const *class_names)
{
    if (!path) return ds_fail("plot: NULL path");
    if (classes < 1 || classes > 1000 || !counts)
        return ds_fail("plot %s: need 1..1000 classes and their counts (got %d)", path, classes);
    for (int i = 0; i < classes * classes; i++)
        if (counts[i] < 0)
            return ds_fail("plot %s: negative count %d for true class %d, predicted %d", path,
                           counts[i], i / classes, i % classes);

    int cell = 600 / classes;
    cell = cell < 4 ? 4 : cell > 110 ? 110 : cell;
    int ns = cell >= 16 ? TS : 1; /* name scale; names are left out below 8 px */
    char names[1000][4 * NAME_MAX_CHARS + 1], nb[4 * NAME_MAX_CHARS + 1]; /* UTF-8 */
    int nw = 0;
    for (int i = 0; i < classes; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        const char *s = class_names && class_names[i] ? class_names[i] : num;
        snprintf(names[i], sizeof names[i], "%s", clip(nb, sizeof nb, s, NAME_MAX_CHARS));
        int w = text_w(names[i], ns);
        if (w > nw) nw = w;
    }
    if (cell < 8) nw = 0;
    int vertical = nw > cell - 4; /* column names turn when they do not fit */
    const char *title = "Confusion matrix";
    int m = classes * cell;
    int x0 = 10 + 7 * TS + 12 + nw + 10, y0 = 52;
    int bar_x = x0 + m + 24;               /* colour bar: 16 px + "100%" */
    int w = bar_x + 16 + 8 + text_w("100%", TS) + 16;
    int y1 = y0 + m, h = y1 + 10 + (vertical ? nw : 7 * ns) + 14 + 7 * TS + 12;
    if (w < text_w(title, TS) + 40) w = text_w(title, TS) + 40;

    canvas c;
    if (canvas_new(&c, w, h, path) != 0) return -1;
    char buf[32];
    for (int t = 0; t < classes; t++) {
        long long row = 0;
        for (int p = 0; p < classes; p++) row += counts[t * classes + p];
        for (int p = 0; p < classes; p++) {
            int n = counts[t * classes + p], cx = x0 + p * cell, cy = y0 + t * cell;
            double f = row > 0 ? (double)n / row : 0;
            fill(&c, cx, cy, cx + cell, cy + cell, blues(f));
            snprintf(buf, sizeof buf, "%d", n);
            int sc = text_w(buf, TS) <= cell - 6 && cell >= 7 * TS + 4 ? TS
                     : text_w(buf, 1) <= cell - 4 && cell >= 11         ? 1
                                                                        : 0;
            if (sc)
                text(&c, cx + cell / 2, cy + cell / 2, buf, sc, f > 0.5 ? WHITE : INK, 0.5f, 0.5f,
                     0);
        }
    }
    frame(&c, x0, y0, x0 + m, y1, AXIS);
    if (nw)
        for (int i = 0; i < classes; i++) {
            int mid = i * cell + cell / 2;
            text(&c, x0 - 8, y0 + mid, names[i], ns, INK, 1, 0.5f, 0);
            if (vertical) text(&c, x0 + mid, y1 + 8, names[i], ns, INK, 0.5f, 0, 1);
            else text(&c, x0 + mid, y1 + 8, names[i], ns, INK, 0.5f, 0, 0);
        }
    text(&c, 10, y0 + m / 2, "true", TS, INK, 0, 0.5f, 1);
    text(&c, x0 + m / 2, h - 10, "predicted", TS, INK, 0.5f, 1, 0);
    text(&c, w / 2, 18, title, TS, INK, 0.5f, 0, 0);
    text(&c, w / 2 + 1, 18, title, TS, INK, 0.5f, 0, 0);

    /* colour bar: fraction of the true class's row, 100% at the top */
    for (int y = 0; y < m; y++)
        fill(&c, bar_x, y0 + y, bar_x + 16, y0 + y + 1, blues(1 - (double)y / (m > 1 ? m - 1 : 1)));
    frame(&c, bar_x, y0, bar_x + 16, y1, AXIS);
    text(&c, bar_x + 22, y0, "100%", TS, INK, 0, 0, 0);
    text(&c, bar_x + 22, y1, "0%", TS, INK, 0, 1, 0);
    return canvas_save(&c, path);
}

/* The smallest and largest finite values of v[0..n) (lo > hi when none is). */
static void finite_range(const float *v, size_t n, float *lo, float *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) *lo = fminf(*lo, v[i]), *hi = fmaxf(*hi, v[i]);
}

/* ---- image grids (RBM weights, samples) ---- */

int ds_png_grid(const char *path, const float *x, int n, int h, int w, int cols, int per_tile)
{
    if (!path || !x || n < 1 || h < 1 || w < 1) return ds_fail("ds_png_grid: nothing to draw");
    if (cols < 1) cols = (int)ceil(sqrt((double)n));
    int rows = (n + cols - 1) / cols, gap = 1, W = cols * (w + gap) + gap, H = rows * (h + gap) + gap;
    if ((long)W * H > (1L << 28)) return ds_fail("%s: a %d x %d grid is too large", path, W, H);
    uint8_t *px = malloc((size_t)W * H);
    if (!px) return ds_fail("out of memory for %s", path);
    memset(px, 96, (size_t)W * H); /* grey lines between tiles */
    /* one range for all tiles, or one per tile (weights: each unit's own) */
    float glo, ghi;
    finite_range(x, (size_t)n * h * w, &glo, &ghi);
    for (int t = 0; t < n; t++) {
        const float *img = x + (size_t)t * h * w;
        float lo = glo, hi = ghi;
        if (per_tile) finite_range(img, (size_t)h * w, &lo, &hi);
        float scale = hi > lo ? 255.0f / (hi - lo) : 0;
        int x0 = gap + (t % cols) * (w + gap), y0 = gap + (t / cols) * (h + gap);
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++) {
                float v = img[r * w + c];
                px[(size_t)(y0 + r) * W + x0 + c] = isfinite(v) ? (uint8_t)lrintf((v - lo) * scale) : 0;
            }
    }
    int rc = ds_png_write(path, W, H, 1, px);
    free(px);
    return rc;
}

/* ---- labelled image grids (worst mistakes, sample stamps) ---- */

#define GRID_LINES 4 /* label lines under a tile */

/* The labelled grid of n tiles h x w, tile t's pixel (r, q) coloured by
 * px(ctx, t, r, q, rgb out) */
typedef void (*tile_px)(const void *ctx, int t, int r, int q, uint8_t *out);

static int grid_labeled(const char *path, int n, int h, int w, int cols, const char *const *labels, tile_px px,
                        const void *ctx)
{
    if (h > 1024 || w > 1024) return ds_fail("%s: tiles of %d x %d are too large to label", path, h, w);
    if (cols < 1) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    /* tiles scaled up by a whole factor to about 96 pixels; each label line
     * at the 5x7 font's own size (1x) under its tile */
    int z = w >= 96 ? 1 : (96 + w - 1) / w, tw = w * z, th = h * z;
    int chars = tw / 6 < 16 ? 16 : tw / 6, cw = chars * 6 > tw ? chars * 6 : tw;
    int lines = 0;
    for (int t = 0; labels && t < n; t++) {
        int k = labels[t] && *labels[t] ? 1 : 0;
        for (const char *s = labels[t]; s && *s; s++) k += *s == '\n';
        if (k > lines) lines = k > GRID_LINES ? GRID_LINES : k;
    }
    int gap = 6, cell_w = cw + gap, cell_h = th + (lines ? 4 + 10 * lines : 0) + gap;
    int rows = (n + cols - 1) / cols, W = cols * cell_w + gap, H = rows * cell_h + gap;
    if ((long)W * H > (1L << 26)) return ds_fail("%s: a %d x %d grid is too large", path, W, H);
    canvas c;
    if (canvas_new(&c, W, H, path) != 0) return -1;
    for (int t = 0; t < n; t++) {
        int cx = gap + (t % cols) * cell_w, cy = gap + (t / cols) * cell_h, ox = cx + (cw - tw) / 2;
        for (int r = 0; r < th; r++)
            for (int q = 0; q < tw; q++) px(ctx, t, r / z, q / z, c.px + 3 * ((size_t)(cy + r) * W + ox + q));
        frame(&c, ox, cy, ox + tw, cy + th, AXIS);
        const char *s = labels ? labels[t] : NULL;
        for (int l = 0; s && *s && l < lines; l++) {
            size_t len = strcspn(s, "\n");
            char one[4 * 64 + 1], cb[4 * 64 + 1];
            snprintf(one, sizeof one, "%.*s", (int)(len < 4 * 64 ? len : 4 * 64), s);
            text(&c, cx + cw / 2, cy + th + 4 + 10 * l, clip(cb, sizeof cb, one, chars), 1, INK, 0.5f, 0, 0);
            s += len + (s[len] == '\n');
        }
    }
    return canvas_save(&c, path);
}

typedef struct grey_tiles {
    const float *x;
    int h, w;
    float *lo, *hi; /* each tile's black and white */
} grey_tiles;

static void grey_px(const void *ctx, int t, int r, int q, uint8_t *out)
{
    const grey_tiles *g = ctx;
    float lo = g->lo[t], hi = g->hi[t], scale = hi > lo ? 255.0f / (hi - lo) : 0;
    float v = g->x[((size_t)t * g->h + r) * g->w + q];
    out[0] = out[1] = out[2] = isfinite(v) ? (uint8_t)lrintf((v - lo) * scale) : 0;
}

int ds_png_grid_labeled(const char *path, const float *x, int n, int h, int w, int cols, int per_tile,
                        const char *const *labels)
{
    if (!path || !x || n < 1 || h < 1 || w < 1) return ds_fail("ds_png_grid_labeled: nothing to draw");
    grey_tiles g = {x, h, w, malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float))};
    if (!g.lo || !g.hi) {
        free(g.lo), free(g.hi);
        return ds_fail("out of memory for %s", path);
    }
    float glo, ghi;
    finite_range(x, (size_t)n * h * w, &glo, &ghi);
    for (int t = 0; t < n; t++) {
        g.lo[t] = glo, g.hi[t] = ghi;
        if (per_tile) finite_range(x + (size_t)t * h * w, (size_t)h * w, &g.lo[t], &g.hi[t]);
    }
    int rc = grid_labeled(path, n, h, w, cols, labels, grey_px, &g);
    free(g.lo), free(g.hi);
    return rc;
}

typedef struct rgb_tiles {
    const uint8_t *rgb;
    int h, w;
} rgb_tiles;

static void rgb_px(const void *ctx, int t, int r, int q, uint8_t *out)
{
    const rgb_tiles *g = ctx;
    memcpy(out, g->rgb + 3 * (((size_t)t * g->h + r) * g->w + q), 3);
}

int ds_png_grid_rgb(const char *path, const uint8_t *rgb, int n, int h, int w, int cols, const char *const *labels)
{
    if (!path || !rgb || n < 1 || h < 1 || w < 1) return ds_fail("ds_png_grid_rgb: nothing to draw");
    rgb_tiles g = {rgb, h, w};
    return grid_labeled(path, n, h, w, cols, labels, rgb_px, &g);
}
