/* features.c — hand-made intensity and morphology features of a
 * difference-image stamp, the "traditional flow" of real/bogus
 * classification (Bloom et al. 2012; Brink et al. 2013): what an
 * astronomer would measure, for a random forest. Everything is in units of
 * the stamp's own noise σ (1.4826 × the median absolute deviation), around
 * the brightest pixel of the central region. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[DS_STAMP_FEATURES] = {
    "peak_snr",      "aperture_snr",   "peak_fraction", "sharpness",    "elongation",     "major_axis",
    "minor_axis",    "negative_ratio", "symmetry",      "pixels_3sigma", "central_3sigma", "column_excess",
    "edge_flux",     "kurtosis",       "noise_sigma",   "offset"};

const char *ds_stamp_feature_name(int i) { return i >= 0 && i < DS_STAMP_FEATURES ? names[i] : "?"; }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int ds_stamp_features(const float *d, int S, float *out)
{
    if (S < 8) return ds_fail("stamp features: a %dx%d stamp is too small", S, S);
    int N = S * S;
    float *tmp = malloc(sizeof(float) * (size_t)N);
    if (!tmp) return ds_fail("out of memory");
    /* background and noise: median and MAD of the whole stamp */
    memcpy(tmp, d, sizeof(float) * (size_t)N);
    qsort(tmp, (size_t)N, sizeof *tmp, cmp_float);
    float med = tmp[N / 2];
    for (int i = 0; i < N; i++) tmp[i] = fabsf(d[i] - med);
    qsort(tmp, (size_t)N, sizeof *tmp, cmp_float);
    double sig = 1.4826 * tmp[N / 2];
    free(tmp);
    if (!(sig > 0)) sig = 1;
    /* the peak within the central half */
    int c0 = S / 4, c1 = S - S / 4, px = S / 2, py = S / 2;
    float peak = -INFINITY;
    for (int y = c0; y < c1; y++)
        for (int x = c0; x < c1; x++)
            if (d[y * S + x] > peak) peak = d[y * S + x], px = x, py = y;
    peak -= med;
    /* aperture r = 3, moments within r = 7 of the positive light, negative light */
    double ap = 0, m0 = 0, mx = 0, my = 0, pos = 0, neg = 0, n3 = 0;
    for (int y = py - 7; y <= py + 7; y++)
        for (int x = px - 7; x <= px + 7; x++) {
            if (x < 0 || y < 0 || x >= S || y >= S) continue;
            double v = d[y * S + x] - med, r2 = (x - px) * (x - px) + (y - py) * (y - py);
            if (r2 <= 9) ap += v;
            if (r2 > 49) continue;
            if (v > 3 * sig) m0 += v, mx += v * x, my += v * y, pos += v;
            if (v < -3 * sig) neg -= v;
        }
    double cx = m0 > 0 ? mx / m0 : px, cy = m0 > 0 ? my / m0 : py, xx = 0, yy = 0, xy = 0;
    for (int y = py - 7; y <= py + 7; y++)
        for (int x = px - 7; x <= px + 7; x++) {
            if (x < 0 || y < 0 || x >= S || y >= S || (x - px) * (x - px) + (y - py) * (y - py) > 49) continue;
            double v = d[y * S + x] - med;
            if (v > 3 * sig) xx += v * (x - cx) * (x - cx), yy += v * (y - cy) * (y - cy), xy += v * (x - cx) * (y - cy);
        }
    if (m0 > 0) xx /= m0, yy /= m0, xy /= m0;
    double tr = xx + yy, det = xx * yy - xy * xy, disc = sqrt(fmax(tr * tr / 4 - det, 0));
    double l1 = tr / 2 + disc, l2 = fmax(tr / 2 - disc, 0);
    /* sharpness: the peak against its 8 neighbours' mean */
    double nb = 0;
    int nn = 0;
    for (int y = py - 1; y <= py + 1; y++)
        for (int x = px - 1; x <= px + 1; x++)
            if ((x != px || y != py) && x >= 0 && y >= 0 && x < S && y < S) nb += d[y * S + x] - med, nn++;
    nb /= nn ? nn : 1;
    /* symmetry: correlation of the central 15×15 with its 180° rotation about the peak */
    double sa = 0, sb = 0, sab = 0;
    for (int y = -7; y <= 7; y++)
        for (int x = -7; x <= 7; x++) {
            int ax = px + x, ay = py + y, bx = px - x, by = py - y;
            if (ax < 0 || ay < 0 || ax >= S || ay >= S || bx < 0 || by < 0 || bx >= S || by >= S) continue;
            double a = d[ay * S + ax] - med, b = d[by * S + bx] - med;
            sa += a * a, sb += b * b, sab += a * b;
        }
    /* counts above 3σ, a bright column, light at the edges, kurtosis of the centre */
    double all3 = 0, edge = 0, colmax = 0, s2 = 0, s4 = 0;
    int nc = 0;
    for (int i = 0; i < N; i++) {
        double v = d[i] - med;
        all3 += v > 3 * sig;
        int x = i % S, y = i / S;
        if ((x == 0 || y == 0 || x == S - 1 || y == S - 1) && fabs(v) > 3 * sig) edge += fabs(v) / sig;
    }
    for (int y = c0; y < c1; y++)
        for (int x = c0; x < c1; x++) {
            double v = (d[y * S + x] - med) / sig;
            n3 += v > 3;
            s2 += v * v, s4 += v * v * v * v, nc++;
        }
    for (int x = 0; x < S; x++) { /* the column's mean over the stamp height, in σ/√S units */
        double c = 0;
        for (int y = 0; y < S; y++) c += d[y * S + x] - med;
        c /= sig * sqrt((double)S);
        if (c > colmax) colmax = c;
    }
    double var = s2 / nc;
    out[0] = (float)(peak / sig);
    out[1] = (float)(ap / (sig * sqrt(29.0))); /* 29 pixels within r = 3 */
    out[2] = (float)(ap > 0 ? peak / ap : 0);
    out[3] = (float)(nb != 0 ? peak / fmax(fabs(nb), 0.1 * sig) : peak / (0.1 * sig));
    out[4] = (float)(l2 > 0 ? sqrt(l1 / l2) : l1 > 0 ? 100 : 1);
    out[5] = (float)sqrt(l1);
    out[6] = (float)sqrt(l2);
    out[7] = (float)(pos > 0 ? neg / pos : neg > 0 ? 10 : 0);
    out[8] = (float)(sa > 0 && sb > 0 ? sab / sqrt(sa * sb) : 0);
    out[9] = (float)all3;
    out[10] = (float)n3;
    out[11] = (float)colmax;
    out[12] = (float)edge;
    out[13] = (float)(var > 0 ? s4 / nc / (var * var) : 0);
    out[14] = (float)sig;
    out[15] = (float)sqrt((px + 0.5 - S / 2.0) * (px + 0.5 - S / 2.0) + (py + 0.5 - S / 2.0) * (py + 0.5 - S / 2.0));
    for (int i = 0; i < DS_STAMP_FEATURES; i++)
        if (!isfinite(out[i])) out[i] = 0;
    return 0;
}
