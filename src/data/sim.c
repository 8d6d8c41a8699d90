/* sim.c — simulated survey difference-image stamps: real asteroids (trailed
 * point sources) and the bogus detections a real/bogus classifier must
 * reject. docs/simulator.md gives every formula and parameter range with its
 * source; the ranges are fixed there, before any model sees the data.
 *
 * A stamp is built in electrons: a science exposure (sky B + sources, Poisson
 * noise in its normal approximation, read noise R), a reference 1–2 mag
 * deeper (its noise scaled by 1/√t), both sky-subtracted, and their
 * difference. Stamp i draws from its own generator, seeded by (seed, i), so
 * a stamp does not depend on how many are made or in which order. Its alert
 * metadata (sim_alert.c) draws from a second generator, seeded by (seed, i)
 * with other constants, so the pixels are the same with or without it. */
#include "sim_alert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[DS_SIM_KINDS] = {
    "real", "cosmic_ray", "hot_pixel", "bad_column", "dipole", "saturated_star", "diffraction_spikes",
    "satellite_trail", "ghost"};

const char *ds_sim_kind_name(int kind) { return kind >= 0 && kind < DS_SIM_KINDS ? kind_names[kind] : "?"; }

/* bogus kinds and their shares of the bogus class (docs/simulator.md) */
static const float bogus_share[DS_SIM_KINDS] = {0, 0.30f, 0.08f, 0.07f, 0.20f, 0.10f, 0.05f, 0.05f, 0.15f};

static double uni(ds_rng *r, double a, double b) { return a + (b - a) * ds_rng_uniform(r); }
static double loguni(ds_rng *r, double a, double b) { return exp(uni(r, log(a), log(b))); }

/* ---- point-spread functions, integrated over pixels ---- */

/* Gaussian: the integral over pixel [k, k+1) of a unit 1-D Gaussian at c */
static double gauss_pix(double c, double sigma, int k)
{
    double s = sigma * M_SQRT2;
    return 0.5 * (erf((k + 1 - c) / s) - erf((k - c) / s));
}

/* A PSF ready to render: a Gaussian (beta ≤ 0) or a Moffat of exponent
 * beta, whose profile (1 + r²/α²)^−β is tabulated over r²/α² (linear
 * interpolation; pow() per sub-sample was 80 % of the simulator's time). */
enum { MOFFAT_TAB = 4096 };
typedef struct {
    double fwhm, beta, sigma, alpha, rad, norm, du;
    float tab[MOFFAT_TAB + 1];
} psf_t;

static void psf_make(psf_t *p, double fwhm, double beta)
{
    p->fwhm = fwhm, p->beta = beta;
    if (beta <= 0) {
        p->sigma = fwhm / (2 * sqrt(2 * log(2)));
        return;
    }
    p->alpha = fwhm / (2 * sqrt(pow(2, 1 / beta) - 1));
    p->rad = 8 * fwhm;
    p->norm = (beta - 1) / (M_PI * p->alpha * p->alpha);
    double umax = 2 * (p->rad + 1) * (p->rad + 1) / (p->alpha * p->alpha);
    p->du = umax / MOFFAT_TAB;
    for (int k = 0; k <= MOFFAT_TAB; k++) p->tab[k] = (float)pow(1 + k * p->du, -beta);
}

static double moffat_at(const psf_t *p, double r2)
{
    double u = r2 / (p->alpha * p->alpha) / p->du;
    int k = (int)u;
    if (k >= MOFFAT_TAB) return 0;
    double f = u - k;
    return p->norm * (p->tab[k] + f * (p->tab[k + 1] - p->tab[k]));
}

/* Add `flux` electrons of PSF p centred at (cx, cy) (pixel centres at
 * k + 0.5), integrated over each pixel: exactly for a Gaussian (separable
 * erf), by 4×4 sub-samples for a Moffat within 8 FWHM. */
static void psf_render(float *img, int size, double cx, double cy, const psf_t *p, double flux)
{
    if (flux == 0) return;
    if (p->beta <= 0) {
        double gx[512], gy[512];
        int n = size < 512 ? size : 512;
        for (int k = 0; k < n; k++) gx[k] = gauss_pix(cx, p->sigma, k), gy[k] = gauss_pix(cy, p->sigma, k);
        for (int y = 0; y < n; y++) {
            if (gy[y] < 1e-12) continue;
            for (int x = 0; x < n; x++) img[y * size + x] += (float)(flux * gy[y] * gx[x]);
        }
        return;
    }
    int x0 = (int)floor(cx - p->rad), x1 = (int)ceil(cx + p->rad), y0 = (int)floor(cy - p->rad),
        y1 = (int)ceil(cy + p->rad);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size) x1 = size;
    if (y1 > size) y1 = size;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            double s = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++) {
                    double dx = x + (sx + 0.5) / 4 - cx, dy = y + (sy + 0.5) / 4 - cy;
                    s += moffat_at(p, dx * dx + dy * dy);
                }
            img[y * size + x] += (float)(flux * s / 16);
        }
}

void ds_sim_psf(float *img, int size, double cx, double cy, double fwhm, double beta, double flux)
{
    static _Thread_local psf_t p;
    psf_make(&p, fwhm, beta);
    psf_render(img, size, cx, cy, &p, flux);
}

/* A trail: the PSF swept along a segment of `len` px at `angle` (radians,
 * from +x towards +y) centred at (cx, cy), brightness rising linearly by
 * `grad` (−1..1) from one end to the other, total `flux`; PSF samples every
 * 0.2 px (well under the smallest σ, 0.64 px). */
void ds_sim_trail(float *img, int size, double cx, double cy, double len, double angle, double fwhm, double beta,
                  double flux, double grad)
{
    static _Thread_local psf_t p;
    psf_make(&p, fwhm, beta);
    int steps = (int)ceil(len / 0.2) + 1;
    double ux = cos(angle), uy = sin(angle), wsum = 0;
    for (int i = 0; i < steps; i++) {
        double t = steps > 1 ? (double)i / (steps - 1) - 0.5 : 0;
        wsum += 1 + grad * 2 * t;
    }
    for (int i = 0; i < steps; i++) {
        double t = steps > 1 ? (double)i / (steps - 1) - 0.5 : 0;
        psf_render(img, size, cx + t * len * ux, cy + t * len * uy, &p, flux * (1 + grad * 2 * t) / wsum);
    }
}

/* Σ p² of a unit-flux profile (for S/N): rendered once on a scratch stamp */
static double sum_sq(const float *p, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)p[i] * p[i];
    return s;
}

static void add_noise(ds_rng *r, float *img, int n, const float *expect, double sky, double read, double scale)
{
    /* Poisson(sky + source) in its normal approximation (sky ≥ 100 e⁻), plus read noise;
     * scale < 1: a deeper (longer, then rescaled) exposure */
    for (int i = 0; i < n; i++) {
        double lam = sky + (expect ? (expect[i] > 0 ? expect[i] : 0) : 0);
        img[i] += (float)(scale * sqrt(lam + read * read) * ds_rng_normal(r));
    }
}

int ds_sim_stamp(const ds_sim_cfg *cfg, long index, float *out, ds_sim_meta *meta)
{
    int S = cfg->size, N = S * S;
    if (S < 8 || S > 512) return ds_fail("simulate: stamp size %d outside 8..512", S);
    if (cfg->channels != 1 && cfg->channels != 3) return ds_fail("simulate: channels must be 1 or 3");
    ds_rng r;
    ds_rng_seed(&r, cfg->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)index * 0xBF58476D1CE4E5B9ULL + 1);
    float *sci = calloc((size_t)4 * N, sizeof(float));
    if (!sci) return ds_fail("out of memory");
    float *ref = sci + N, *only_sci = ref + N, *tmp = only_sci + N; /* only_sci: what the reference lacks */
    unsigned char *mask = calloc((size_t)N, 1); /* the pipeline's flagged pixels (alert metadata's nbad) */
    if (!mask) {
        free(sci);
        return ds_fail("out of memory");
    }
    ds_rng ra; /* the alert metadata's stream: never drawn for pixels */
    ds_rng_seed(&ra, cfg->seed * 0xD1B54A32D192ED03ULL + (uint64_t)index * 0x94D049BB133111EBULL + 0x2545F4914F6CDD1DULL);
    ds_sim_meta m = {0};
    sim_truth tr = {.size = S, .mask = mask};
    /* observing conditions */
    double sky = loguni(&r, 100, 2000), read = uni(&r, 5, 10), dmag = uni(&r, 1, 2), tref = pow(10, 0.4 * dmag);
    double fwhm = uni(&r, 1.5, 3.5), beta = ds_rng_uniform(&r) < 0.5 ? 0 : uni(&r, 2.5, 4.5);
    double fwhm_ref = fwhm * uni(&r, 0.9, 1.1);
    double sig_sci = sqrt(sky + read * read), sig_ref = sig_sci / sqrt(tref), sig_diff = sqrt(sig_sci * sig_sci + sig_ref * sig_ref);
    m.sky = (float)sky, m.read_noise = (float)read, m.fwhm = (float)fwhm, m.noise = (float)sig_diff;
    m.label = ds_rng_uniform(&r) < cfg->real_fraction;
    double cx = S / 2.0 + uni(&r, -1.5, 1.5), cy = S / 2.0 + uni(&r, -1.5, 1.5);
    /* a static field: 0–2 stars in both exposures (they subtract, leaving noise) */
    int stars = (int)ds_rng_below(&r, 3);
    for (int k = 0; k < stars; k++) {
        double sx = uni(&r, 0, S), sy = uni(&r, 0, S), f = loguni(&r, 10, 200) * sig_sci * fwhm;
        ds_sim_psf(sci, S, sx, sy, fwhm, beta, f);
        ds_sim_psf(ref, S, sx, sy, fwhm, beta, f); /* the pipeline matched the PSFs */
        tr.star[k][0] = sx, tr.star[k][1] = sy, tr.star[k][2] = f;
    }
    tr.nstars = stars;
    if (m.label) {
        m.kind = DS_SIM_REAL;
        double maxlen = 0.7 * S < 40 ? 0.7 * S : 40;
        double len = loguni(&r, 1, maxlen), ang = uni(&r, 0, M_PI), grad = ds_rng_uniform(&r) < 0.5 ? 0 : uni(&r, -0.5, 0.5);
        double snr = ds_rng_uniform(&r) < 0.5 ? loguni(&r, 5, 10) : loguni(&r, 10, 100);
        /* flux for the wanted S/N in the difference image: S/N = F·√Σp² / σ (matched filter) */
        memset(tmp, 0, sizeof(float) * (size_t)N);
        ds_sim_trail(tmp, S, cx, cy, len, ang, fwhm, beta, 1, grad);
        double flux = snr * sig_diff / sqrt(sum_sq(tmp, N));
        for (int i = 0; i < N; i++) only_sci[i] += (float)(flux * tmp[i]);
        m.snr = (float)snr, m.length = (float)len, m.angle = (float)(ang * 180 / M_PI), m.flux = (float)flux;
    } else {
        float u = ds_rng_uniform(&r), acc = 0;
        int kind = DS_SIM_KINDS - 1;
        for (int k = 1; k < DS_SIM_KINDS; k++) {
            acc += bogus_share[k];
            if (u < acc) {
                kind = k;
                break;
            }
        }
        m.kind = kind;
        switch (kind) {
        case DS_SIM_COSMIC_RAY: { /* sharper than the PSF: a 1–4 px hit, or a worm track */
            double amp = loguni(&r, 5, 100) * sig_sci;
            if (ds_rng_uniform(&r) < 0.6) {
                int n = 1 + (int)ds_rng_below(&r, 4), x = (int)(cx), y = (int)(cy);
                for (int k = 0; k < n; k++) {
                    only_sci[y * S + x] += (float)(amp * uni(&r, 0.5, 1));
                    if (ds_rng_uniform(&r) < 0.5) x += ds_rng_uniform(&r) < 0.5 ? 1 : -1;
                    else y += ds_rng_uniform(&r) < 0.5 ? 1 : -1;
                    x = x < 0 ? 0 : x >= S ? S - 1 : x, y = y < 0 ? 0 : y >= S ? S - 1 : y;
                }
            } else {
                double x = cx, y = cy, a = uni(&r, 0, 2 * M_PI);
                int n = 5 + (int)ds_rng_below(&r, 16);
                for (int k = 0; k < n; k++) {
                    int ix = (int)x, iy = (int)y;
                    if (ix >= 0 && ix < S && iy >= 0 && iy < S) only_sci[iy * S + ix] += (float)(amp * uni(&r, 0.4, 1));
                    a += uni(&r, -0.5, 0.5);
                    x += cos(a), y += sin(a);
                }
            }
            m.snr = (float)(amp / sig_diff);
            break;
        }
        case DS_SIM_HOT_PIXEL: {
            double amp = loguni(&r, 10, 200) * sig_sci;
            only_sci[(int)cy * S + (int)cx] += (float)amp;
            if (ds_rng_uniform(&ra) < 0.7) mask[(int)cy * S + (int)cx] = 1; /* a defect the mask knows */
            m.snr = (float)(amp / sig_diff);
            break;
        }
        case DS_SIM_BAD_COLUMN: { /* a column segment with an offset */
            double amp = loguni(&r, 3, 30) * sig_sci;
            int x = (int)cx, len = 5 + (int)ds_rng_below(&r, (uint32_t)(S - 4)), y0 = (int)ds_rng_below(&r, (uint32_t)(S - len + 1));
            int known = ds_rng_uniform(&ra) < 0.7; /* a defect the mask knows */
            for (int y = y0; y < y0 + len; y++) only_sci[y * S + x] += (float)amp, mask[y * S + x] = (unsigned char)known;
            m.snr = (float)(amp / sig_diff), m.length = (float)len;
            break;
        }
        case DS_SIM_DIPOLE: { /* a static star, misregistered and with a different seeing */
            double f = loguni(&r, 20, 300) * sig_sci * fwhm, d = uni(&r, 0.1, 0.7), a = uni(&r, 0, 2 * M_PI);
            double ratio = uni(&r, 0.8, 1.25);
            ds_sim_psf(sci, S, cx + d * cos(a), cy + d * sin(a), fwhm, beta, f);
            ds_sim_psf(ref, S, cx, cy, fwhm / ratio, beta, f);
            m.snr = (float)(f / (sig_sci * fwhm)), m.flux = (float)f;
            tr.on_star = 1, tr.star_x = cx, tr.star_y = cy, tr.star_f = f;
            break;
        }
        case DS_SIM_SATURATED: { /* a bright star clipped at full well, a bleed trail in the science image */
            double f = loguni(&r, 2e5, 5e6), full = uni(&r, 3e4, 6e4), d = uni(&r, 0, 0.3), a = uni(&r, 0, 2 * M_PI);
            memset(tmp, 0, sizeof(float) * (size_t)N);
            ds_sim_psf(tmp, S, cx + d * cos(a), cy + d * sin(a), fwhm, beta, f);
            double excess = 0;
            for (int i = 0; i < N; i++)
                if (tmp[i] + sky > full) excess += tmp[i] + sky - full, tmp[i] = (float)(full - sky), mask[i] = 1;
            /* the excess charge bleeds up and down the column */
            int x = (int)cx, reach = (int)fmin(S / 2 - 1, excess / (full - sky) / 2 + 1);
            for (int k = 1; k <= reach; k++) {
                if ((int)cy + k < S) tmp[((int)cy + k) * S + x] = (float)(full - sky), mask[((int)cy + k) * S + x] = 1;
                if ((int)cy - k >= 0) tmp[((int)cy - k) * S + x] = (float)(full - sky), mask[((int)cy - k) * S + x] = 1;
            }
            for (int i = 0; i < N; i++) sci[i] += tmp[i];
            memset(tmp, 0, sizeof(float) * (size_t)N);
            ds_sim_psf(tmp, S, cx, cy, fwhm_ref, beta, f);
            for (int i = 0; i < N; i++) ref[i] += (float)fmin(tmp[i], (full - sky));
            m.flux = (float)f, m.length = (float)(2 * reach);
            tr.on_star = 1, tr.star_x = cx, tr.star_y = cy, tr.star_f = f;
            break;
        }
        case DS_SIM_SPIKES: { /* a bright star's diffraction spikes, rotated between the exposures */
            double f = loguni(&r, 1e4, 1e5), a = uni(&r, 0, M_PI / 2), da = uni(&r, 0.02, 0.1), w = uni(&r, 0.02, 0.08);
            ds_sim_psf(sci, S, cx, cy, fwhm, beta, f);
            ds_sim_psf(ref, S, cx, cy, fwhm_ref, beta, f);
            for (int arm = 0; arm < 4; arm++) {
                ds_sim_trail(sci, S, cx, cy, S, a + arm * M_PI / 2, fwhm, 0, f * w / 4, 0);
                ds_sim_trail(ref, S, cx, cy, S, a + da + arm * M_PI / 2, fwhm_ref, 0, f * w / 4 * uni(&r, 0.7, 1.3), 0);
            }
            m.flux = (float)f;
            tr.on_star = 1, tr.star_x = cx, tr.star_y = cy, tr.star_f = f;
            break;
        }
        case DS_SIM_SATELLITE: { /* a long bright trail crossing the whole stamp */
            double ang = uni(&r, 0, M_PI), off = uni(&r, -S / 4.0, S / 4.0), snr = loguni(&r, 10, 200);
            double len = 3.0 * S;
            memset(tmp, 0, sizeof(float) * (size_t)N);
            double px = cx - sin(ang) * off, py = cy + cos(ang) * off;
            ds_sim_trail(tmp, S, px, py, len, ang, fwhm * uni(&r, 0.8, 1.2), beta, 1, 0);
            double flux = snr * sig_diff / sqrt(sum_sq(tmp, N));
            for (int i = 0; i < N; i++) only_sci[i] += (float)(flux * tmp[i]);
            m.snr = (float)snr, m.length = (float)len, m.angle = (float)(ang * 180 / M_PI);
            break;
        }
        default: { /* a faint ghost: a broad, smooth blob or ring from internal reflections */
            double sig = uni(&r, 3, S / 4.0), amp = uni(&r, 1, 4) * sig_diff, ring = ds_rng_uniform(&r) < 0.5 ? uni(&r, 2, 6) : 0;
            double gx = cx + uni(&r, -S / 6.0, S / 6.0), gy = cy + uni(&r, -S / 6.0, S / 6.0);
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    double rr = sqrt((x + 0.5 - gx) * (x + 0.5 - gx) + (y + 0.5 - gy) * (y + 0.5 - gy)) - ring;
                    only_sci[y * S + x] += (float)(amp * exp(-rr * rr / (2 * sig * sig)));
                }
            m.snr = (float)(amp / sig_diff);
            break;
        }
        }
    }
    /* exposures: the expected counts, then noise; sky subtracted */
    for (int i = 0; i < N; i++) tmp[i] = sci[i] + only_sci[i];
    memcpy(sci, tmp, sizeof(float) * (size_t)N);
    if (!cfg->noiseless) {
        add_noise(&r, sci, N, tmp, sky, read, 1);
        add_noise(&r, ref, N, ref, sky, read, 1 / sqrt(tref));
    }
    float *o = out;
    if (cfg->channels == 3) {
        memcpy(o, sci, sizeof(float) * (size_t)N);
        memcpy(o + N, ref, sizeof(float) * (size_t)N);
        o += 2 * N;
    }
    for (int i = 0; i < N; i++) o[i] = sci[i] - ref[i];
    /* the alert metadata, measured on this difference image (docs/simulator.md) */
    tr.kind = m.kind, tr.cx = cx, tr.cy = cy, tr.fwhm = fwhm, tr.sky = sky, tr.read = read, tr.sig_sci = sig_sci;
    tr.sig_diff = sig_diff, tr.snr = m.snr, tr.length = m.length, tr.flux = m.flux;
    ds_sim_alert_make(&ra, &tr, o, &m.alert);
    free(sci);
    free(mask);
    if (meta) *meta = m;
    return 0;
}

typedef struct {
    const ds_sim_cfg *cfg;
    ds_dataset *out;
    ds_sim_meta *meta;
    size_t per;
    int failed;
} sim_task;

static void sim_range(void *arg, long lo, long hi)
{
    sim_task *t = arg;
    for (long i = lo; i < hi; i++) {
        ds_sim_meta m;
        if (ds_sim_stamp(t->cfg, i, t->out->x + t->per * (size_t)i, &m) != 0) {
            t->failed = 1; /* only ever set, so the race is benign */
            continue;
        }
        t->out->y[i] = (float)m.label;
        if (t->meta) t->meta[i] = m;
    }
}

int ds_sim_dataset(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta)
{
    if (cfg->size < 8 || cfg->size > 512) return ds_fail("simulate: stamp size %d outside 8..512", cfg->size);
    if (cfg->channels != 1 && cfg->channels != 3) return ds_fail("simulate: channels must be 1 or 3");
    memset(out, 0, sizeof *out);
    if (meta) *meta = NULL;
    if (cfg->n < 1) return ds_fail("simulate: n must be >= 1");
    if (!(cfg->real_fraction >= 0 && cfg->real_fraction <= 1)) return ds_fail("simulate: real fraction outside [0, 1]");
    size_t per = (size_t)cfg->channels * cfg->size * cfg->size;
    out->x = malloc(sizeof(float) * per * (size_t)cfg->n);
    out->y = malloc(sizeof(float) * (size_t)cfg->n);
    ds_sim_meta *mm = meta ? malloc(sizeof *mm * (size_t)cfg->n) : NULL;
    if (!out->x || !out->y || (meta && !mm)) {
        free(mm);
        ds_dataset_free(out);
        return ds_fail("out of memory for %d stamps", cfg->n);
    }
    out->n = cfg->n;
    out->sample = ds_shape_of(3, cfg->channels, cfg->size, cfg->size);
    out->classes = 2;
    sim_task t = {cfg, out, mm, per, 0};
    ds_parallel_for(cfg->n, 16, sim_range, &t); /* stamps are independent: each has its own stream */
    if (t.failed) {
        free(mm);
        ds_dataset_free(out);
        return ds_fail("simulate: a stamp failed (out of memory?)");
    }
    /* the class names, as simulate's cutouts/{bogus,real}/ and y.csv give them */
    static const char *const names[2] = {"bogus", "real"};
    if (!(out->class_names = calloc(2, sizeof *out->class_names)) || !(out->class_names[0] = strdup(names[0])) ||
        !(out->class_names[1] = strdup(names[1]))) {
        free(mm);
        ds_dataset_free(out);
        return ds_fail("out of memory for the class names");
    }
    if (meta) *meta = mm;
    return 0;
}
