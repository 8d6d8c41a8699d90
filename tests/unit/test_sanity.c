/* test_sanity.c — the checks of attribution maps (src/train/sanity.c):
 * Spearman's rank correlation with ties, the pointing game's mass share,
 * and the simulator's footprints (src/data/sim_footprint.c) they are
 * scored against. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void test_spearman(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, up[6] = {10, 20, 30, 40, 50, 600}, down[6] = {6, 5, 4, 3, 2, -100};
    CHECK_NEAR(ds_spearman(a, up, 6), 1, 1e-12);    /* any increasing function: +1 */
    CHECK_NEAR(ds_spearman(a, down, 6), -1, 1e-12); /* any decreasing one: −1 */
    /* ties get the mean of their ranks: ranks 1,2.5,2.5,4,5 and 1,4,2.5,2.5,5, Pearson 29/38 */
    float t1[5] = {1, 2, 2, 3, 4}, t2[5] = {1, 3, 2, 2, 5};
    CHECK_NEAR(ds_spearman(t1, t2, 5), 29.0 / 38, 1e-12);
    /* ranks 2,2,2,4.5,4.5 and 3,1,2,5,4: √3/2 */
    float z1[5] = {0, 0, 0, 1, 1}, z2[5] = {3, 1, 2, 5, 4};
    CHECK_NEAR(ds_spearman(z1, z2, 5), 0.8660254037844386, 1e-12);
    /* symmetric, and a constant or too short input has no correlation */
    CHECK_NEAR(ds_spearman(t2, t1, 5), 29.0 / 38, 1e-12);
    float c[4] = {2, 2, 2, 2};
    CHECK(isnan(ds_spearman(a, c, 4)));
    CHECK(isnan(ds_spearman(a, up, 1)));
    /* a large permutation and its reverse */
    enum { N = 1000 };
    static float p[N], q[N];
    for (int i = 0; i < N; i++) p[i] = (float)((i * 389) % N), q[i] = -p[i];
    CHECK_NEAR(ds_spearman(p, q, N), -1, 1e-12);
}

static void test_share(void)
{
    /* a 4×4 map and a 2×2 mask in its corner */
    float map[16] = {0}, mask[16] = {0};
    mask[0] = mask[1] = mask[4] = mask[5] = 1;
    map[0] = 3, map[5] = -1, map[15] = 4; /* |map|: 4 of 8 inside */
    CHECK_NEAR(ds_mass_share(map, mask, 16), 0.5, 1e-12);
    map[15] = 0; /* all of it inside */
    CHECK_NEAR(ds_mass_share(map, mask, 16), 1, 1e-12);
    memset(map, 0, sizeof map); /* no mass: a uniform map's share, the area's */
    CHECK_NEAR(ds_mass_share(map, mask, 16), 4.0 / 16, 1e-12);
    for (int i = 0; i < 16; i++) map[i] = 1; /* uniform: the area's share */
    CHECK_NEAR(ds_mass_share(map, mask, 16), 0.25, 1e-12);
    memset(mask, 0, sizeof mask);
    CHECK(isnan(ds_mass_share(map, mask, 16)));
}

enum { S = 45, N = S * S };

static void test_footprint(void)
{
    ds_sim_cfg c = {.n = 40, .size = S, .channels = 1, .real_fraction = 1, .seed = 77};
    static float fp[N], fp2[N], noisy[N], clean[N], all[40 * N];
    int checked = 0;
    for (long i = 0; i < 40; i++) {
        ds_sim_meta m, mc;
        CHECK(ds_sim_footprint(&c, i, fp, &m) == 0 && m.kind == DS_SIM_REAL);
        /* the trail passes through its centre, within 1.5 px of the stamp's: a pixel of the central 4×4 */
        int centre = 0, area = 0;
        for (int y = S / 2 - 2; y < S / 2 + 2; y++)
            for (int x = S / 2 - 2; x < S / 2 + 2; x++) centre |= fp[y * S + x] == 1;
        int binary = 1;
        for (int k = 0; k < N; k++) area += fp[k] == 1, binary &= fp[k] == 0 || fp[k] == 1;
        CHECK(binary);
        CHECK(area > 0);
        if (m.snr >= 10) {
            CHECK(centre);
            checked++;
        }
        if (m.length < 5 && m.snr >= 10) CHECK(area < N / 4); /* a short trail is not the whole stamp */
        /* the noiseless stamp is the same draw: the noisy one minus it is noise of σ meta.noise off the source */
        ds_sim_cfg q = c;
        q.noiseless = 1;
        CHECK(ds_sim_stamp(&c, i, noisy, NULL) == 0 && ds_sim_stamp(&q, i, clean, &mc) == 0);
        CHECK(mc.snr == m.snr && mc.length == m.length && mc.noise == m.noise && m.noise > 0);
        double s2 = 0;
        int off = 0;
        for (int k = 0; k < N; k++)
            if (!fp[k]) s2 += (double)(noisy[k] - clean[k]) * (noisy[k] - clean[k]), off++;
        CHECK(off > 0 && fabs(sqrt(s2 / off) / m.noise - 1) < 0.15);
        /* deterministic: the same seed and index, the same footprint; another seed, another */
        CHECK(ds_sim_footprint(&c, i, fp2, NULL) == 0 && memcmp(fp, fp2, sizeof fp) == 0);
    }
    CHECK(checked >= 10);
    /* all at once, as simulate --footprint writes them: the same as one by one */
    CHECK(ds_sim_footprints(&c, all) == 0);
    CHECK(ds_sim_footprint(&c, 39, fp, NULL) == 0 && memcmp(fp, all + 39 * N, sizeof fp) == 0);
    ds_sim_cfg o = c;
    o.seed = 78;
    CHECK(ds_sim_footprint(&o, 39, fp2, NULL) == 0 && memcmp(fp, fp2, sizeof fp) != 0);
    /* a bogus hot pixel: its footprint is that pixel */
    ds_sim_cfg b = {.n = 1, .size = S, .channels = 3, .real_fraction = 0, .seed = 5};
    int hot = 0;
    for (long i = 0; i < 2000 && !hot; i++) {
        ds_sim_meta m;
        CHECK(ds_sim_footprint(&b, i, fp, &m) == 0);
        if (m.kind != DS_SIM_HOT_PIXEL) continue;
        int area = 0;
        for (int k = 0; k < N; k++) area += fp[k] == 1;
        CHECK(area >= 1 && area <= 4);
        hot = 1;
    }
    CHECK(hot);
}

int main(void)
{
    test_spearman();
    test_share();
    test_footprint();
    return ds_test_summary("sanity");
}
