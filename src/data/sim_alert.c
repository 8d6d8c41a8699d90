/* sim_alert.c — the alert metadata of a simulated stamp (meta.csv): what a
 * survey pipeline records beside the cutouts. docs/simulator.md fixes every
 * column's model, with its source, before any model was trained on it.
 *
 * What a pipeline measures is measured here on the stamp's own noisy
 * difference image, with no random numbers and no knowledge of the class;
 * what it looks up (reference catalogue, known asteroids, history) or
 * estimates from the whole image (seeing, sky) is drawn, with scatter, from
 * what the simulator put into the stamp. The draws use the stamp's second
 * random stream, so the pixels are the same with or without this file. */
#include "sim_alert.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double uni(ds_rng *r, double a, double b) { return a + (b - a) * ds_rng_uniform(r); }
static double loguni(ds_rng *r, double a, double b) { return exp(uni(r, log(a), log(b))); }
static double mag(double zp, double f) { return zp - 2.5 * log10(f > 1 ? f : 1); }

static int poisson(ds_rng *r, double lam)
{
    double l = exp(-lam), p = 1;
    int k = 0;
    do {
        k++;
        p *= ds_rng_uniform(r);
    } while (p > l && k < 1000);
    return k - 1;
}

/* ---- the measurement on the difference image ---- */

static double gauss_pix(double c, double sigma, int k)
{
    double s = sigma * M_SQRT2;
    return 0.5 * (erf((k + 1 - c) / s) - erf((k - c) / s));
}

typedef struct {
    int px, py;          /* the detection pixel */
    double x, y;         /* its position: the footprint's centroid */
    double flux, snr;    /* PSF fit (signed) */
} detection;

/* The PSF fit F = Σp·d / Σp² at the 5 × 5 pixel centres around (cx, cy);
 * the one of largest |S/N| is the detection. */
static detection psf_detect(const float *d, int S, double cx, double cy, double sigma, double sig_d)
{
    detection best = {0};
    double gx[512], gy[512];
    int n = S < 512 ? S : 512, x0 = (int)floor(cx) - 2, y0 = (int)floor(cy) - 2, found = 0;
    for (int j = 0; j < 5; j++)
        for (int i = 0; i < 5; i++) {
            int px = x0 + i, py = y0 + j;
            if (px < 0 || py < 0 || px >= n || py >= n) continue;
            double sx = 0, sy = 0, num = 0;
            for (int k = 0; k < n; k++) gx[k] = gauss_pix(px + 0.5, sigma, k), gy[k] = gauss_pix(py + 0.5, sigma, k);
            for (int k = 0; k < n; k++) sx += gx[k] * gx[k], sy += gy[k] * gy[k];
            for (int y = 0; y < n; y++) {
                if (gy[y] < 1e-12) continue;
                double row = 0;
                for (int x = 0; x < n; x++) row += gx[x] * d[y * S + x];
                num += gy[y] * row;
            }
            double pp = sx * sy, snr = num / (sig_d * sqrt(pp));
            if (!found || fabs(snr) > fabs(best.snr)) {
                best.px = px, best.py = py, best.flux = num / pp, best.snr = snr;
                found = 1;
            }
        }
    best.x = best.px + 0.5, best.y = best.py + 0.5;
    return best;
}

/* Footprint (4-connected, s·d > 1.5σ_d, within 15 px of the detection
 * pixel): its centroid, second moments and half-maximum area. */
static void footprint(const float *d, int S, detection *det, double s, double sig_d, ds_sim_alert *a)
{
    int N = S * S, *stack = malloc(sizeof(int) * (size_t)N);
    unsigned char *seen = calloc((size_t)N, 1);
    double thr = 1.5 * sig_d, w = 0, mx = 0, my = 0, xx = 0, yy = 0, xy = 0, peak = 0;
    int n = 0, top = 0, p0 = det->py * S + det->px;
    if (!stack || !seen) { /* out of memory: the detection pixel alone */
        free(stack), free(seen);
        a->fwhm = (float)(2 / sqrt(M_PI)), a->aimage = a->bimage = (float)sqrt(1.0 / 12), a->elong = 1;
        return;
    }
    int *pix = stack; /* reused: the stack grows from the front, the footprint list from the back */
    int back = N;
    stack[top++] = p0, seen[p0] = 1;
    while (top) {
        int p = stack[--top], x = p % S, y = p / S;
        pix[--back] = p, n++;
        static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
        for (int k = 0; k < 4; k++) {
            int u = x + dx[k], v = y + dy[k], q = v * S + u;
            if (u < 0 || v < 0 || u >= S || v >= S || seen[q] || abs(u - det->px) > 15 || abs(v - det->py) > 15) continue;
            seen[q] = 1;
            if (s * d[q] > thr) stack[top++] = q;
        }
    }
    /* the footprint's pixels are pix[back..N) (the stack never reaches them: top + n <= pixels seen <= N) */
    for (int i = back; i < N; i++) {
        int p = pix[i];
        double v = s * d[p];
        if (v > peak) peak = v;
        if (v <= 0) continue;
        double x = p % S + 0.5, y = p / S + 0.5;
        w += v, mx += v * x, my += v * y;
    }
    if (w > 0 && n > 1) {
        mx /= w, my /= w;
        for (int i = back; i < N; i++) {
            int p = pix[i];
            double v = s * d[p];
            if (v <= 0) continue;
            double x = p % S + 0.5 - mx, y = p / S + 0.5 - my;
            xx += v * x * x, yy += v * y * y, xy += v * x * y;
        }
        xx /= w, yy /= w, xy /= w;
        det->x = mx, det->y = my;
    }
    double tr = (xx + yy) / 2, disc = sqrt((xx - yy) * (xx - yy) / 4 + xy * xy);
    double l1 = tr + disc + 1.0 / 12, l2 = tr - disc + 1.0 / 12;
    if (l2 < 1.0 / 12) l2 = 1.0 / 12;
    int half = 0;
    for (int i = back; i < N; i++) half += peak > 0 && s * d[pix[i]] >= peak / 2;
    if (!half) half = 1;
    a->aimage = (float)sqrt(l1), a->bimage = (float)sqrt(l2), a->elong = (float)(sqrt(l1) / sqrt(l2));
    a->fwhm = (float)(2 * sqrt(half / M_PI));
    free(stack), free(seen);
}

/* ---- the reference catalogue ---- */

typedef struct {
    double x, y, flux;
    int type; /* 0 star, 1 galaxy, 2 saturated star */
} source;

static void nearest_source(ds_rng *r, const sim_truth *t, double zp, const detection *det, ds_sim_alert *a)
{
    source best = {0};
    double bd = 1e30;
    /* (a) the stamp's field stars and (b) the star an artifact sits on */
    for (int k = 0; k < t->nstars + (t->on_star ? 1 : 0); k++) {
        source c = k < t->nstars ? (source){t->star[k][0], t->star[k][1], t->star[k][2], 0}
                                 : (source){t->star_x, t->star_y, t->star_f, t->kind == DS_SIM_SATURATED ? 2 : 0};
        double dx = c.x + 0.1 * ds_rng_normal(r) - det->x, dy = c.y + 0.1 * ds_rng_normal(r) - det->y;
        double dist = sqrt(dx * dx + dy * dy);
        if (dist < bd) bd = dist, best = c;
    }
    /* (c) the faint field within 30″: density 1e-4..1e-3 per arcsec², S/N 1–10, half galaxies */
    double rho = loguni(r, 1e-4, 1e-3);
    int nf = poisson(r, rho * M_PI * 900);
    for (int k = 0; k < nf; k++) {
        double dist = 30 * sqrt(ds_rng_uniform(r));
        source c = {0, 0, loguni(r, 1, 10) * t->sig_sci * t->fwhm, ds_rng_uniform(r) < 0.5};
        if (dist < bd) bd = dist, best = c;
    }
    if (bd > 30) {
        a->nr_match = 0, a->distnr = a->magnr = a->sgscore1 = a->sharpnr = a->chinr = -1;
        return;
    }
    a->nr_match = 1, a->distnr = (float)bd;
    a->magnr = (float)(mag(zp, best.flux) + 0.02 * ds_rng_normal(r) + (best.type == 2 ? uni(r, 0.5, 2) : 0));
    if (best.type == 1) {
        a->sgscore1 = (float)uni(r, 0, 0.3), a->sharpnr = (float)uni(r, 0.2, 1), a->chinr = (float)loguni(r, 1.5, 5);
    } else {
        a->sgscore1 = (float)uni(r, 0.85, 1);
        if (best.type == 2)
            a->sharpnr = (float)(0.5 + 0.2 * ds_rng_normal(r)), a->chinr = (float)loguni(r, 5, 50);
        else
            a->sharpnr = (float)(0.1 * ds_rng_normal(r)), a->chinr = (float)exp(0.3 * ds_rng_normal(r));
    }
}

void ds_sim_alert_make(ds_rng *r, const sim_truth *t, const float *diff, ds_sim_alert *a)
{
    int S = t->size;
    memset(a, 0, sizeof *a);
    /* observing: band, zero point, airmass, position; the same for every class */
    double u = ds_rng_uniform(r);
    int b = u < 0.45 ? 0 : u < 0.9 ? 1 : 2;
    static const double zp0[3] = {26.3, 26.2, 25.8}, kext[3] = {0.20, 0.12, 0.06};
    a->band = "gri"[b];
    a->airmass = (float)(1 + fmin(fabs(0.35 * ds_rng_normal(r)), 1.5));
    double zp = zp0[b] - kext[b] * (a->airmass - 1);
    a->xpos = (float)uni(r, 0, 3072), a->ypos = (float)uni(r, 0, 3080);
    a->mindtoedge = fminf(fminf(a->xpos, 3072 - a->xpos), fminf(a->ypos, 3080 - a->ypos));
    double seeing = t->fwhm * (1 + 0.03 * ds_rng_normal(r)); /* px = ″ */
    a->seeing = (float)seeing;
    a->sky = (float)(t->sky * (1 + 0.01 * ds_rng_normal(r)));
    double sig_psf = seeing / 2.3548;
    a->diffmaglim = (float)mag(zp, 5 * t->sig_diff * sqrt(4 * M_PI) * sig_psf);
    /* the measurement: PSF fit, aperture, 5 × 5 box, footprint (deterministic) */
    detection det = psf_detect(diff, S, t->cx, t->cy, t->fwhm / 2.3548, t->sig_diff);
    double s = det.flux >= 0 ? 1 : -1;
    a->isdiffpos = s > 0;
    a->snr = (float)fabs(det.snr);
    a->magpsf = (float)mag(zp, fabs(det.flux));
    a->sigmapsf = (float)(1.0857 / fmax(a->snr, 0.01));
    double ap = 0, box = 0, boxabs = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double dx = x - det.px, dy = y - det.py, v = diff[y * S + x];
            if (dx * dx + dy * dy <= 16) ap += s * v;
            if (fabs(dx) <= 2 && fabs(dy) <= 2) {
                box += s * v, boxabs += fabs(v);
                a->nneg += s * v < 0;
                a->nbad += t->mask[y * S + x] != 0;
            }
        }
    a->magap = (float)mag(zp, ap);
    a->magdiff = a->magap - a->magpsf;
    a->sumrat = (float)(boxabs > 0 ? box / boxabs : 0);
    if (ds_rng_uniform(r) < 0.05 && a->nbad < 25) a->nbad++; /* an unrelated flagged pixel */
    footprint(diff, S, &det, s, t->sig_diff, a);
    a->fwhm_ratio = (float)(a->fwhm / seeing);
    /* the reference catalogue */
    nearest_source(r, t, zp, &det, a);
    /* known solar-system objects within 30″ */
    int kind = t->kind;
    a->ss_match = 0, a->ssdistnr = a->ssmagnr = a->ss_rate = -1;
    if (kind == DS_SIM_REAL) {
        double c = 0.9 / (1 + exp(-(log(t->snr) - log(6.0)) / 0.4)) * (t->length > 10 ? 0.6 : 1);
        if (ds_rng_uniform(r) < c) {
            double dist = ds_rng_uniform(r) < 0.85 ? sqrt(-2 * log(1 - ds_rng_uniform(r))) : loguni(r, 2, 30);
            a->ss_match = 1, a->ssdistnr = (float)fmin(dist, 30);
            a->ssmagnr = (float)(mag(zp, t->flux) + 0.3 * ds_rng_normal(r));
            a->ss_rate = (float)fmax(t->length * (1 + 0.05 * ds_rng_normal(r)), 0.01);
        }
    } else if (kind != DS_SIM_SATELLITE && ds_rng_uniform(r) < 0.01) {
        a->ss_match = 1, a->ssdistnr = (float)(30 * sqrt(ds_rng_uniform(r)));
        a->ssmagnr = (float)uni(r, 16, 21), a->ss_rate = (float)loguni(r, 1, 40);
    }
    /* detection history */
    a->ncovhist = (int)lround(loguni(r, 5, 1000));
    double p;
    switch (kind) {
    case DS_SIM_HOT_PIXEL: case DS_SIM_BAD_COLUMN: case DS_SIM_SATURATED: p = uni(r, 0.2, 0.9); break;
    case DS_SIM_SPIKES: p = uni(r, 0.1, 0.6); break;
    case DS_SIM_DIPOLE: p = uni(r, 0.02, 0.5); break;
    case DS_SIM_GHOST: p = uni(r, 0.02, 0.3); break;
    default: p = 0; /* real, cosmic ray, satellite trail: they do not recur */
    }
    for (int k = 0; k < a->ncovhist; k++) a->ndethist += p > 0 && ds_rng_uniform(r) < p;
    if (p == 0 && ds_rng_uniform(r) < 0.02) a->ndethist += 1 + (int)ds_rng_below(r, 3); /* a chance coincidence */
}

/* ---- meta.csv and the cutouts' keywords ---- */

typedef struct {
    const char *name, *key;
    char type; /* 'f' float, 'i' int, 's' the band */
    size_t off;
} column;

#define F(n, k) {#n, k, 'f', offsetof(ds_sim_alert, n)}
#define I(n, k) {#n, k, 'i', offsetof(ds_sim_alert, n)}
static const column columns[] = {
    {"band", "BAND", 's', offsetof(ds_sim_alert, band)},
    F(xpos, "XPOS"), F(ypos, "YPOS"), F(mindtoedge, "MINDTOED"), F(airmass, "AIRMASS"), F(seeing, "SEEING"),
    F(sky, "SKYEST"), F(diffmaglim, "DIFMGLIM"), I(isdiffpos, "ISDIFPOS"), F(snr, "SNRPSF"), F(magpsf, "MAGPSF"),
    F(sigmapsf, "SIGMAPSF"), F(magap, "MAGAP"), F(magdiff, "MAGDIFF"), F(fwhm, "FWHMDET"), F(fwhm_ratio, "FWHMRAT"),
    F(aimage, "AIMAGE"), F(bimage, "BIMAGE"), F(elong, "ELONG"), I(nneg, "NNEG"), I(nbad, "NBAD"),
    F(sumrat, "SUMRAT"), I(nr_match, "NRMATCH"), F(distnr, "DISTNR"), F(magnr, "MAGNR"), F(sgscore1, "SGSCORE1"),
    F(sharpnr, "SHARPNR"), F(chinr, "CHINR"), I(ss_match, "SSMATCH"), F(ssdistnr, "SSDISTNR"),
    F(ssmagnr, "SSMAGNR"), F(ss_rate, "SSRATE"), I(ncovhist, "NCOVHIST"), I(ndethist, "NDETHIST"),
};
#undef F
#undef I
enum { NCOLS = (int)(sizeof columns / sizeof *columns) };

int ds_sim_alert_columns(void) { return NCOLS; }

const char *ds_sim_alert_column(int c, const char **fits_key, char *type)
{
    if (c < 0 || c >= NCOLS) return NULL;
    if (fits_key) *fits_key = columns[c].key;
    if (type) *type = columns[c].type;
    return columns[c].name;
}

double ds_sim_alert_value(const ds_sim_alert *a, int c)
{
    if (c < 0 || c >= NCOLS) return 0;
    const char *p = (const char *)a + columns[c].off;
    switch (columns[c].type) {
    case 'f': return *(const float *)p;
    case 'i': return *(const int *)p;
    default: return *p == 'g' ? 0 : *p == 'r' ? 1 : 2;
    }
}

int ds_sim_alert_format(const ds_sim_alert *a, int c, char *buf, size_t size)
{
    if (c < 0 || c >= NCOLS) return ds_fail("meta.csv: no column %d", c);
    const char *p = (const char *)a + columns[c].off;
    int n = columns[c].type == 'f'   ? snprintf(buf, size, "%.6g", (double)*(const float *)p)
            : columns[c].type == 'i' ? snprintf(buf, size, "%d", *(const int *)p)
                                     : snprintf(buf, size, "%c", *p);
    return n >= 0 && (size_t)n < size ? 0 : ds_fail("meta.csv: column %s does not fit %zu bytes", columns[c].name, size);
}

int ds_sim_alert_write_csv(const char *path, const ds_sim_meta *meta, int n, long first)
{
    ds_atomic f = {0};
    if (ds_atomic_open(&f, path) != 0) return -1;
    fputs("index", f.f);
    for (int c = 0; c < NCOLS; c++) fprintf(f.f, ",%s", columns[c].name);
    fputc('\n', f.f);
    char v[64];
    for (int i = 0; i < n; i++) {
        fprintf(f.f, "%ld", first + i);
        for (int c = 0; c < NCOLS; c++) {
            if (ds_sim_alert_format(&meta[i].alert, c, v, sizeof v) != 0) {
                ds_atomic_abort(&f);
                return -1;
            }
            fprintf(f.f, ",%s", v);
        }
        fputc('\n', f.f);
    }
    return ds_atomic_commit(&f); /* checks every write */
}
