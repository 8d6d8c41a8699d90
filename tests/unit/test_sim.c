/* test_sim.c — the stamp simulator: deterministic by seed and index; PSFs
 * and trails conserve flux; a trail's length and angle come back from its
 * second moments and a PSF's FWHM from its profile; each bogus kind shows
 * the property that defines it (noiseless stamps, three channels). */
#include "harness.h"

#include <fitsio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { S = 63, N = S * S };

static double total(const float *p, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += p[i];
    return s;
}

/* centroid and second moments of an image (pixel centres at k + 0.5) */
static void moments(const float *p, double *mx, double *my, double *xx, double *yy, double *xy)
{
    double s = total(p, N), ax = 0, ay = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) ax += p[y * S + x] * (x + 0.5), ay += p[y * S + x] * (y + 0.5);
    ax /= s, ay /= s;
    double a = 0, b = 0, c = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double dx = x + 0.5 - ax, dy = y + 0.5 - ay, v = p[y * S + x];
            a += v * dx * dx, b += v * dy * dy, c += v * dx * dy;
        }
    *mx = ax, *my = ay, *xx = a / s, *yy = b / s, *xy = c / s;
}

static void test_psf_and_trail(void)
{
    static float img[N];
    double mx, my, xx, yy, xy;
    /* flux conservation: Gaussian exactly, Moffat within its 8-FWHM window */
    memset(img, 0, sizeof img);
    ds_sim_psf(img, S, 31.3, 30.8, 2.5, 0, 1000);
    CHECK_NEAR(total(img, N), 1000, 0.5);
    /* FWHM from the second moment: σ² + 1/12 (pixel integration) */
    moments(img, &mx, &my, &xx, &yy, &xy);
    CHECK_NEAR(mx, 31.3, 1e-3);
    double fw = 2 * sqrt(2 * log(2)) * sqrt(xx - 1.0 / 12);
    CHECK_NEAR(fw / 2.5, 1, 0.05);
    memset(img, 0, sizeof img);
    ds_sim_psf(img, S, 31.5, 31.5, 3.0, 3.0, 1000);
    CHECK_NEAR(total(img, N), 1000, 5);
    /* Moffat FWHM: the half-maximum contour of a wide one (area πr²) */
    memset(img, 0, sizeof img);
    ds_sim_psf(img, S, 31.5, 31.5, 12.0, 3.0, 1000);
    float peak = 0;
    for (int i = 0; i < N; i++) peak = img[i] > peak ? img[i] : peak;
    int above = 0;
    for (int i = 0; i < N; i++) above += img[i] >= peak / 2;
    CHECK_NEAR(2 * sqrt(above / M_PI) / 12.0, 1, 0.05);
    /* trails: flux, length and angle from the moments
     * (along: L²/12 + σ² + 1/12, across: σ² + 1/12 for a Gaussian PSF) */
    double lens[3] = {6, 15, 30}, angs[3] = {0.3, 1.2, 2.6};
    for (int t = 0; t < 3; t++) {
        memset(img, 0, sizeof img);
        ds_sim_trail(img, S, 31.2, 31.7, lens[t], angs[t], 2.0, 0, 5000, 0);
        CHECK_NEAR(total(img, N) / 5000, 1, 0.005);
        moments(img, &mx, &my, &xx, &yy, &xy);
        double tr = xx + yy, det = xx * yy - xy * xy, l1 = tr / 2 + sqrt(tr * tr / 4 - det), l2 = tr / 2 - sqrt(tr * tr / 4 - det);
        double len = sqrt(12 * (l1 - l2)), ang = 0.5 * atan2(2 * xy, xx - yy);
        if (ang < 0) ang += M_PI;
        CHECK_NEAR(len / lens[t], 1, 0.05);
        CHECK_NEAR(ang, angs[t], 2 * M_PI / 180);
    }
}

static void test_determinism(void)
{
    ds_sim_cfg c = {.n = 12, .size = 30, .channels = 3, .real_fraction = 0.5f, .seed = 42};
    ds_dataset a, b;
    ds_sim_meta *ma, *mb;
    CHECK(ds_sim_dataset(&c, &a, &ma) == 0);
    CHECK(ds_sim_dataset(&c, &b, &mb) == 0);
    CHECK(memcmp(a.x, b.x, sizeof(float) * 12 * 3 * 30 * 30) == 0);
    CHECK(memcmp(ma, mb, sizeof *ma * 12) == 0);
    /* stamp i does not depend on n; another seed gives other stamps */
    float one[3 * 30 * 30];
    CHECK(ds_sim_stamp(&c, 7, one, NULL) == 0);
    CHECK(memcmp(one, a.x + 7 * 3 * 30 * 30, sizeof one) == 0);
    c.seed = 43;
    CHECK(ds_sim_stamp(&c, 7, one, NULL) == 0);
    CHECK(memcmp(one, a.x + 7 * 3 * 30 * 30, sizeof one) != 0);
    CHECK(a.classes == 2 && a.sample.ndim == 3 && a.sample.d[0] == 3 && a.sample.d[1] == 30);
    for (int i = 0; i < 12; i++) CHECK(a.y[i] == (float)ma[i].label && (ma[i].label == 1) == (ma[i].kind == DS_SIM_REAL));
    ds_dataset_free(&a), ds_dataset_free(&b);
    free(ma), free(mb);
    /* the class balance */
    ds_sim_cfg big = {.n = 4000, .size = 16, .channels = 1, .real_fraction = 0.0773f, .seed = 1};
    ds_dataset d;
    CHECK(ds_sim_dataset(&big, &d, NULL) == 0);
    double real = 0;
    for (int i = 0; i < d.n; i++) real += d.y[i];
    CHECK_NEAR(real / d.n, 0.0773, 0.015);
    ds_dataset_free(&d);
    /* bad settings */
    ds_sim_cfg bad = {.n = 1, .size = 4, .channels = 1, .seed = 1};
    CHECK(ds_sim_dataset(&bad, &d, NULL) != 0);
    bad.size = 30, bad.channels = 2;
    CHECK(ds_sim_dataset(&bad, &d, NULL) != 0);
}

/* the first stamp of each kind among noiseless three-channel stamps */
static int find_kind(int kind, float *out, ds_sim_meta *m)
{
    ds_sim_cfg c = {.n = 1, .size = S, .channels = 3, .real_fraction = kind == DS_SIM_REAL ? 1 : 0, .seed = 5,
                    .noiseless = 1};
    for (long i = 0; i < 5000; i++) {
        if (ds_sim_stamp(&c, i, out, m) != 0) return 0;
        if (m->kind == kind) return 1;
    }
    return 0;
}

static void test_kinds(void)
{
    static float st[3 * N];
    const float *sci = st, *ref = st + N, *diff = st + 2 * N;
    ds_sim_meta m;
    for (int k = 0; k < DS_SIM_KINDS; k++) {
        CHECK(find_kind(k, st, &m));
        double sd = 0, sabs = 0, far = 0;
        float peak = 0;
        int ipeak = 0;
        for (int i = 0; i < N; i++) {
            sd += diff[i], sabs += fabs(diff[i]);
            if (diff[i] > peak) peak = diff[i], ipeak = i;
            int x = i % S, y = i / S;
            if (fabs(x - S / 2.0) > S / 3.0 || fabs(y - S / 2.0) > S / 3.0) far += fabs(diff[i]);
        }
        int px = ipeak % S, py = ipeak / S;
        double local = 0; /* the 5×5 around the peak */
        for (int y = py - 2; y <= py + 2; y++)
            for (int x = px - 2; x <= px + 2; x++)
                if (x >= 0 && x < S && y >= 0 && y < S) local += diff[y * S + x];
        switch (k) {
        case DS_SIM_REAL: /* all the trail's flux is in the difference, none in the reference */
            CHECK_NEAR(sd / m.flux, 1, 0.02);
            CHECK(m.snr >= 5 && m.snr <= 100 && m.length >= 1 && m.length <= 40 && m.fwhm >= 1.5f && m.fwhm <= 3.5f);
            break;
        case DS_SIM_COSMIC_RAY: /* sharper than any PSF: most of the light in the peak pixel's 5×5, ref untouched there */
            CHECK(peak > 0 && fabs(ref[ipeak]) < 1e-3 * peak);
            CHECK(peak / local > 0.2);
            break;
        case DS_SIM_HOT_PIXEL: /* one pixel */
            CHECK_NEAR(peak / sd, 1, 1e-3);
            break;
        case DS_SIM_BAD_COLUMN: { /* one column: every other column of the difference is 0 */
            double off = 0;
            for (int i = 0; i < N; i++)
                if (i % S != px) off += fabs(diff[i]);
            CHECK(off < 1e-6 * sabs && m.length >= 5);
            break;
        }
        case DS_SIM_DIPOLE: { /* positive and negative lobes; little net flux */
            float low = 0;
            for (int i = 0; i < N; i++) low = diff[i] < low ? diff[i] : low;
            CHECK(peak > 0 && low < 0 && fabs(sd) < 0.5 * sabs);
            break;
        }
        case DS_SIM_SATURATED: { /* the science image is clipped at full well, with a bleed column */
            float top = 0;
            for (int i = 0; i < N; i++) top = sci[i] > top ? sci[i] : top;
            int flat = 0;
            for (int i = 0; i < N; i++) flat += sci[i] >= top * 0.999f;
            CHECK(top > 2e4 && flat >= 3);
            break;
        }
        case DS_SIM_SPIKES: /* residual light along the arms, far from the core */
            CHECK(far > 0.01 * sabs);
            break;
        case DS_SIM_SATELLITE: { /* the trail reaches the stamp's edges */
            double edge = 0;
            for (int i = 0; i < S; i++) edge += diff[i] + diff[(S - 1) * S + i] + diff[i * S] + diff[i * S + S - 1];
            CHECK(edge > 0.02 * sd && m.length > S);
            break;
        }
        case DS_SIM_GHOST: { /* broad: a second moment of several pixels, a low peak */
            double mx, my, xx, yy, xy;
            moments(diff, &mx, &my, &xx, &yy, &xy);
            CHECK(xx + yy > 2 * 9.0 && peak < 0.05 * sd);
            break;
        }
        }
    }
}

/* FITS round trip: a simulated set written as a cube reads back bit for bit;
 * three-channel stamps as a cube of planes (channels=3), a 4-D array, and
 * one cutout per stamp in class folders with its parameters in the header */
static void test_fits(void)
{
    ds_sim_cfg c = {.n = 7, .size = 20, .channels = 1, .real_fraction = 0.5f, .seed = 11};
    ds_dataset a, b;
    CHECK(ds_sim_dataset(&c, &a, NULL) == 0);
    const char *path = ds_test_path("stamps.fits");
    ds_fits_key keys[] = {{"NSTAMPS", 'i', 7, NULL, "stamps"}, {"KIND", 's', 0, "cosmic_ray", NULL},
                          {"SNR", 'f', 12.375, NULL, "S/N"}};
    CHECK(ds_fits_write(path, 3, (int[]){7, 20, 20}, a.x, keys, 3) == 0);
    char spec[4200];
    snprintf(spec, sizeof spec, "fits:%s", path);
    CHECK(ds_data_load(spec, &b) == 0);
    CHECK(b.n == 7 && b.sample.d[0] == 1 && b.sample.d[1] == 20 && b.sample.d[2] == 20);
    if (b.n == 7) CHECK(memcmp(a.x, b.x, sizeof(float) * 7 * 400) == 0);
    ds_dataset_free(&b);
    /* the header keywords, read by CFITSIO itself */
    fitsfile *f = NULL;
    int status = 0;
    char text[FLEN_VALUE] = "";
    double snr = 0;
    long ns = 0;
    fits_open_file(&f, path, READONLY, &status);
    fits_read_key(f, TLONG, "NSTAMPS", &ns, NULL, &status);
    fits_read_key(f, TSTRING, "KIND", text, NULL, &status);
    fits_read_key(f, TDOUBLE, "SNR", &snr, NULL, &status);
    fits_close_file(f, &status);
    CHECK(status == 0 && ns == 7 && !strcmp(text, "cosmic_ray") && snr == 12.375);
    ds_dataset_free(&a);
    static float zeros[7 * 400];
    CHECK(ds_fits_write("/nonexistent-dir/x.fits", 3, (int[]){7, 20, 20}, zeros, keys, 1) != 0); /* no crash */
    CHECK(ds_fits_write(path, 3, (int[]){7, 0, 20}, zeros, keys, 1) != 0);

    /* three channels: 6 stamps as 18 planes, grouped by channels=3 */
    ds_sim_cfg c3 = {.n = 6, .size = 20, .channels = 3, .real_fraction = 0.5f, .seed = 12};
    ds_sim_meta *m = NULL;
    CHECK(ds_sim_dataset(&c3, &a, &m) == 0);
    const size_t per = 3 * 400;
    CHECK(ds_fits_write(path, 3, (int[]){18, 20, 20}, a.x, keys, 0) == 0);
    snprintf(spec, sizeof spec, "fits:%s,channels=3", path);
    CHECK(ds_data_load(spec, &b) == 0 && b.n == 6 && b.sample.d[0] == 3);
    if (b.n == 6) CHECK(memcmp(a.x, b.x, sizeof(float) * 6 * per) == 0);
    ds_dataset_free(&b);
    CHECK(ds_data_load_channels(path, 3, &b) == 0 && b.n == 6 && b.sample.d[0] == 3); /* a model's channels */
    ds_dataset_free(&b);
    CHECK(ds_data_load_channels(spec, 1, &b) == 0 && b.n == 6); /* the spec's channels= wins */
    ds_dataset_free(&b);
    snprintf(spec, sizeof spec, "fits:%s,channels=4", path);
    CHECK(ds_data_load(spec, &b) != 0 && strstr(ds_last_error(), "18 image planes do not make samples of 4"));
    snprintf(spec, sizeof spec, "fits:%s,channels=x", path);
    CHECK(ds_data_load(spec, &b) != 0 && strstr(ds_last_error(), "channels=x is not a count"));
    snprintf(spec, sizeof spec, "fits:%s,colour=3", path);
    CHECK(ds_data_load(spec, &b) != 0 && strstr(ds_last_error(), "unknown or repeated option 'colour=3'"));
    /* a 4-D array [6, 3, 20, 20] knows its channels */
    CHECK(ds_fits_write(path, 4, (int[]){6, 3, 20, 20}, a.x, keys, 0) == 0);
    CHECK(ds_data_load(path, &b) == 0 && b.n == 6 && b.sample.d[0] == 3);
    if (b.n == 6) CHECK(memcmp(a.x, b.x, sizeof(float) * 6 * per) == 0);
    ds_dataset_free(&b);
    snprintf(spec, sizeof spec, "fits:%s,channels=2", path);
    CHECK(ds_data_load(spec, &b) != 0 && strstr(ds_last_error(), "a 4-D array of 3 channels"));
    /* cutouts in class folders, read as a directory (bogus before real) */
    char dir[4000], file[4300];
    snprintf(dir, sizeof dir, "%s", ds_test_path("cutouts"));
    mkdir(dir, 0700);
    for (int k = 0; k < 2; k++) {
        snprintf(file, sizeof file, "%s/%s", dir, k ? "real" : "bogus");
        mkdir(file, 0700);
    }
    int nreal = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(file, sizeof file, "%s/%s/%06d.fits", dir, m[i].label ? "real" : "bogus", i);
        CHECK(ds_fits_write(file, 3, (int[]){3, 20, 20}, a.x + per * i, keys, 3) == 0);
        nreal += m[i].label;
    }
    CHECK(ds_data_load_channels(dir, 3, &b) == 0 && b.n == 6 && b.sample.d[0] == 3 && b.classes == 2);
    for (int i = 0, k = 0; i < 6 && b.n == 6; i++) /* bogus in index order, then real */
        if (!m[i].label) CHECK(b.y[k] == 0 && memcmp(b.x + per * k++, a.x + per * i, sizeof(float) * per) == 0);
    for (int i = 0, k = 6 - nreal; i < 6 && b.n == 6; i++)
        if (m[i].label) CHECK(b.y[k] == 1 && memcmp(b.x + per * k++, a.x + per * i, sizeof(float) * per) == 0);
    ds_dataset_free(&b);
    snprintf(spec, sizeof spec, "fits:%s", dir); /* one channel per plane: 18 samples */
    CHECK(ds_data_load(spec, &b) == 0 && b.n == 18 && b.sample.d[0] == 1);
    ds_dataset_free(&b);
    free(m);
    ds_dataset_free(&a);
}

int main(void)
{
    test_fits();
    test_psf_and_trail();
    test_determinism();
    test_kinds();
    return ds_test_summary("sim");
}
