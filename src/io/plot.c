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

/* ---- line chart ---- */

enum { LW = 800, LH = 500 };
#define LINE_R 1.3f /* line half-width in pixels */

/* Coverage of segment (ax, ay)–(bx, by) with radius LINE_R into cov [ph, pw]
 * (plot-area coordinates), keeping the maximum so joints do not darken. */
static void stroke(float *cov, int pw, int ph, float ax, float ay, float bx, float by)
{
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, pad = LINE_R + 1;
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
            float a = LINE_R + 0.5f - sqrtf(ex * ex + ey * ey);
            if (a > cov[y * pw + x]) cov[y * pw + x] = a > 1 ? 1 : a;
        }
}

int ds_plot_lines(const char *path, const char *title, const char *xlabel, int n_series,
                  const char *const *names, const float *const *ys, int n_points)
{
    if (!path) return ds_fail("plot: NULL path");
    if (n_series < 1 || n_points < 1 || !ys)
        return ds_fail("plot %s: need at least one series of at least one point (got %d of %d)",
                       path, n_series, n_points);
    for (int s = 0; s < n_series; s++)
        if (!ys[s]) return ds_fail("plot %s: series %d is NULL", path, s);

    /* y range over the finite values, padded by 5% */
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < n_points; i++)
            if (isfinite(ys[s][i])) {
                lo = fmin(lo, ys[s][i]);
                hi = fmax(hi, ys[s][i]);
            }
    if (lo > hi) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) {
        double d = fabs(hi) > 0 ? 0.1 * fabs(hi) : 1;
        lo -= d, hi += d;
    } else {
        double d = 0.05 * (hi - lo);
        lo -= d, hi += d;
    }
    double ystep = nice_step(hi - lo, 6);
    double xpad = n_points > 1 ? 0.02 * (n_points - 1) : 1;
    double xlo = 1 - xpad, xhi = n_points + xpad;
    double xstep = fmax(1, nice_step(xhi - xlo, 8));

    /* left margin fits the widest y tick label */
    char buf[64];
    int ml = 0;
    for (double v = ceil(lo / ystep) * ystep; v <= hi; v += ystep) {
        tick_label(buf, sizeof buf, v, ystep);
        int w = text_w(buf, TS);
        if (w > ml) ml = w;
    }
    int x0 = ml + 22, x1 = LW - 24, y0 = 52, y1 = LH - 66, pw = x1 - x0, ph = y1 - y0;
#define PX(x) ((float)(((x) - xlo) / (xhi - xlo) * pw))
#define PY(y) ((float)((hi - (y)) / (hi - lo) * ph))

    canvas c;
    if (canvas_new(&c, LW, LH, path) != 0) return -1;
    float *cov = malloc(sizeof(float) * pw * ph);
    uint8_t *ink = calloc((size_t)pw * ph, 1); /* where any series drew */
    if (!cov || !ink) {
        free(cov), free(ink), free(c.px);
        return ds_fail("plot %s: out of memory", path);
    }

    /* grid, ticks and tick labels */
    for (double v = ceil(lo / ystep) * ystep; v <= hi; v += ystep) {
        int y = y0 + (int)lroundf(PY(v));
        fill(&c, x0, y, x1, y + 1, GRID);
        fill(&c, x0 - 6, y, x0, y + 1, AXIS);
        tick_label(buf, sizeof buf, v, ystep);
        text(&c, x0 - 10, y, buf, TS, INK, 1, 0.5f, 0);
    }
    for (double v = ceil(xlo / xstep) * xstep; v <= xhi; v += xstep) {
        int x = x0 + (int)lroundf(PX(v));
        fill(&c, x, y0, x + 1, y1, GRID);
        fill(&c, x, y1, x + 1, y1 + 6, AXIS);
        snprintf(buf, sizeof buf, "%.0f", v + 0.0); /* + 0.0: no "-0" */
        text(&c, x, y1 + 12, buf, TS, INK, 0.5f, 0, 0);
    }
    frame(&c, x0, y0, x1, y1, AXIS);

    /* series: a segment between each pair of finite neighbours, a dot for a
     * finite point with no finite neighbour */
    for (int s = 0; s < n_series; s++) {
        const float *v = ys[s];
        memset(cov, 0, sizeof(float) * pw * ph);
        for (int i = 0; i < n_points; i++) {
            if (!isfinite(v[i])) continue;
            float ax = PX(i + 1), ay = PY(v[i]);
            int prev = i > 0 && isfinite(v[i - 1]), next = i + 1 < n_points && isfinite(v[i + 1]);
            if (next) stroke(cov, pw, ph, ax, ay, PX(i + 2), PY(v[i + 1]));
            else if (!prev) stroke(cov, pw, ph, ax, ay, ax, ay);
        }
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
                if (cov[y * pw + x] > 0) {
                    blend(&c, x0 + x, y0 + y, PALETTE[s % 10], cov[y * pw + x]);
                    ink[y * pw + x] = 1;
                }
    }

    /* legend in the corner of the plot area that covers the least ink */
    if (names) {
        int tw = 0;
        char nb[4 * 24 + 1];
        for (int s = 0; s < n_series; s++) {
            snprintf(buf, sizeof buf, "series %d", s + 1);
            int w = text_w(clip(nb, sizeof nb, names[s] ? names[s] : buf, 24), TS);
            if (w > tw) tw = w;
        }
        int bw = 10 + 28 + 8 + tw + 10, bh = 8 + 22 * n_series;
        int best = -1, bx = 0, by = 0;
        for (int k = 0; k < 4; k++) {
            int cx = k & 1 ? 10 : pw - 10 - bw, cy = k & 2 ? ph - 10 - bh : 10, n = 0;
            for (int y = cy; y < cy + bh; y++)
                for (int x = cx; x < cx + bw; x++)
                    n += x >= 0 && y >= 0 && x < pw && y < ph && ink[y * pw + x];
            if (best < 0 || n < best) best = n, bx = x0 + cx, by = y0 + cy;
        }
        fill(&c, bx, by, bx + bw, by + bh, WHITE);
        frame(&c, bx, by, bx + bw, by + bh, (rgb){200, 200, 200});
        for (int s = 0; s < n_series; s++) {
            int ly = by + 15 + 22 * s;
            fill(&c, bx + 10, ly - 1, bx + 38, ly + 2, PALETTE[s % 10]);
            snprintf(buf, sizeof buf, "series %d", s + 1);
            text(&c, bx + 46, ly, clip(nb, sizeof nb, names[s] ? names[s] : buf, 24), TS, INK, 0,
                 0.5f, 0);
        }
    }
    free(cov);
    free(ink);
#undef PX
#undef PY

    char tb[80];
    if (title) {
        title = clip(tb, sizeof tb, title, (LW - 60) / (6 * TS));
        text(&c, (x0 + x1) / 2, 18, title, TS, INK, 0.5f, 0, 0);
        text(&c, (x0 + x1) / 2 + 1, 18, title, TS, INK, 0.5f, 0, 0); /* bold */
    }
    if (xlabel)
        text(&c, (x0 + x1) / 2, LH - 12, clip(tb, sizeof tb, xlabel, (LW - 60) / (6 * TS)), TS,
             INK, 0.5f, 1, 0);
    return canvas_save(&c, path);
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
    float glo = INFINITY, ghi = -INFINITY;
    for (size_t i = 0; i < (size_t)n * h * w; i++)
        if (isfinite(x[i])) glo = fminf(glo, x[i]), ghi = fmaxf(ghi, x[i]);
    for (int t = 0; t < n; t++) {
        const float *img = x + (size_t)t * h * w;
        float lo = glo, hi = ghi;
        if (per_tile) {
            lo = INFINITY, hi = -INFINITY;
            for (int i = 0; i < h * w; i++)
                if (isfinite(img[i])) lo = fminf(lo, img[i]), hi = fmaxf(hi, img[i]);
        }
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
