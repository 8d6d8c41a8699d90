/* test_report.c — PNG writing, line and confusion plots (read back with
 * stb_image and checked pixel by pixel) and the HTML report page.
 *
 *   test_report                       the unit tests
 *   DS_REPORT_DIR=DIR test_report     also leaves a complete report in DIR
 *   test_report --check-screenshot P  checks a browser screenshot of that
 *                                     report shows its plots (tests/e2e) */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* src/data may compile stb_image into the library: keep this copy private.
 * (The warning stays off to the end: GCC reports static functions declared
 * but never defined there.) */
#define STBI_ONLY_PNG
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image.h>

static const char *dir; /* ds_test_tmpdir() */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* An RGB image read back from disk. */
typedef struct img {
    int w, h, comp;
    uint8_t *px;
} img;

static img load(const char *path)
{
    img m = {0};
    m.px = stbi_load(path, &m.w, &m.h, &m.comp, 3);
    return m;
}

static const uint8_t *pix(const img *m, int x, int y)
{
    return m->px + 3 * ((size_t)y * m->w + x);
}

static int is_rgb(const uint8_t *p, int r, int g, int b)
{
    return p[0] == r && p[1] == g && p[2] == b;
}

/* tab10 colours of the first two series */
#define BLUE 31, 119, 180
#define ORANGE 255, 127, 14

static void test_png(void)
{
    for (int ch = 1; ch <= 4; ch++) {
        if (ch == 2) continue;
        uint8_t px[7 * 5 * 4];
        for (int i = 0; i < 7 * 5 * ch; i++) px[i] = (uint8_t)(i * 37 + ch);
        const char *p = ds_test_path("rt.png");
        CHECK(ds_png_write(p, 7, 5, ch, px) == 0);
        int w = 0, h = 0, comp = 0;
        uint8_t *back = stbi_load(p, &w, &h, &comp, 0);
        CHECK(back && w == 7 && h == 5 && comp == ch);
        CHECK(back && memcmp(back, px, (size_t)7 * 5 * ch) == 0);
        stbi_image_free(back);
        CHECK(!exists(ds_test_path("rt.png.tmp")));
    }
    uint8_t one[4] = {0};
    CHECK(ds_png_write(ds_test_path("bad.png"), 1, 1, 2, one) == -1);
    CHECK(strstr(ds_last_error(), "bad.png") != NULL);
    CHECK(!exists(ds_test_path("bad.png")));
    const char *nodir = ds_test_path("no-such-dir/x.png");
    CHECK(ds_png_write(nodir, 1, 1, 1, one) == -1);
    CHECK(strstr(ds_last_error(), "no-such-dir/x.png") &&
          strstr(ds_last_error(), strerror(ENOENT)));
}

static void test_lines(void)
{
    /* top: constant at the maximum; ramp: rises from 0 to 1 */
    enum { N = 10 };
    float top[N], ramp[N];
    for (int i = 0; i < N; i++) top[i] = 1, ramp[i] = (float)i / (N - 1);
    const float *ys[2] = {top, ramp};
    const char *names[2] = {"top", "ramp"};
    CHECK(ds_plot_lines(ds_test_path("lines.png"), "Two lines", "epoch", 2, names, ys, N) == 0);
    img m = load(ds_test_path("lines.png"));
    CHECK(m.px && m.w == 800 && m.h == 500 && m.comp == 3);
    if (!m.px) return;
    /* rows where the top series draws a long run (the legend's sample is short) */
    int rows = 0, high = 1;
    for (int y = 0; y < m.h; y++) {
        int n = 0;
        for (int x = 0; x < m.w; x++) n += is_rgb(pix(&m, x, y), BLUE);
        if (n > m.w / 2) rows++, high &= y < m.h / 4;
    }
    CHECK(rows >= 1 && rows <= 4);
    CHECK(high);
    /* the ramp's pixels sit lower (larger y) on the left than on the right */
    double sy[2] = {0}, sn[2] = {0};
    for (int y = m.h / 4; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            if (is_rgb(pix(&m, x, y), ORANGE)) sy[x >= m.w / 2] += y, sn[x >= m.w / 2]++;
    CHECK(sn[0] > 50 && sn[1] > 50);
    /* the legend goes where it hides no data: the ramp's end stays visible */
    int right = 0;
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            if (is_rgb(pix(&m, x, y), ORANGE) && x > right) right = x;
    CHECK(right > m.w - 60);
    CHECK(sn[0] > 0 && sn[1] > 0 && sy[0] / sn[0] > sy[1] / sn[1] + 50);
    /* the title is drawn: dark pixels in the top band */
    int ink = 0;
    for (int y = 0; y < 45; y++)
        for (int x = 0; x < m.w; x++) ink += pix(&m, x, y)[0] < 100;
    CHECK(ink > 100);
    stbi_image_free(m.px);

    CHECK(ds_plot_lines(ds_test_path("x.png"), "t", "x", 0, NULL, ys, N) == -1);
    CHECK(strstr(ds_last_error(), "x.png") != NULL);
}

static void test_nan_gap(void)
{
    float v[8] = {0.5f, 0.4f, NAN, NAN, NAN, NAN, 0.6f, 0.5f};
    const float *ys[1] = {v};
    CHECK(ds_plot_lines(ds_test_path("gap.png"), "gap", "x", 1, NULL, ys, 8) == 0);
    img m = load(ds_test_path("gap.png"));
    CHECK(m.px != NULL);
    if (!m.px) return;
    int lo = m.w, hi = -1;
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            if (is_rgb(pix(&m, x, y), BLUE)) lo = x < lo ? x : lo, hi = x > hi ? x : hi;
    CHECK(hi - lo > m.w / 2);
    /* x = 1..8 spans [lo, hi]; points 3..6 are missing, so between x = 2.3
     * and 6.7 nothing is coloured: white paper or grey grid only */
    int x0 = lo + (hi - lo) * 13 / 70, x1 = lo + (hi - lo) * 57 / 70, coloured = 0, white = 0,
        all = 0;
    for (int y = 0; y < m.h; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = pix(&m, x, y);
            coloured += !(p[0] == p[1] && p[1] == p[2]);
            white += is_rgb(p, 255, 255, 255);
            all++;
        }
    CHECK(coloured == 0);
    CHECK(white > all * 3 / 4);
    /* and the segments on either side are there */
    int left = 0, right = 0;
    for (int y = 0; y < m.h; y++) {
        left += is_rgb(pix(&m, lo + (hi - lo) / 14, y), BLUE);
        right += is_rgb(pix(&m, hi - (hi - lo) / 14, y), BLUE);
    }
    CHECK(left > 0 && right > 0);
    stbi_image_free(m.px);

    /* a finite point between two gaps still shows, as a dot */
    float dot[3] = {NAN, 1, NAN};
    ys[0] = dot;
    char title[300];
    memset(title, 'W', sizeof title - 1);
    title[sizeof title - 1] = 0;
    CHECK(ds_plot_lines(ds_test_path("dot.png"), title, NULL, 1, NULL, ys, 3) == 0);
    m = load(ds_test_path("dot.png"));
    int n = 0, edge = 0;
    for (int i = 0; m.px && i < m.w * m.h; i++) n += is_rgb(m.px + 3 * i, BLUE);
    CHECK(n >= 4);
    /* an over-long title is cut short of the image's edges */
    for (int y = 0; m.px && y < 45; y++)
        for (int x = 0; x < 10; x++)
            edge += !is_rgb(pix(&m, x, y), 255, 255, 255) +
                    !is_rgb(pix(&m, m.w - 1 - x, y), 255, 255, 255);
    CHECK(m.px && edge == 0);
    stbi_image_free(m.px);
}

/* r + g + b of the cell (t, p), sampled away from its centred count. */
static int cell_sum(const img *m, int x0, int y0, int cell, int t, int p)
{
    const uint8_t *q = pix(m, x0 + p * cell + cell / 8 + 1, y0 + t * cell + cell / 8 + 1);
    return q[0] + q[1] + q[2];
}

static void test_confusion(void)
{
    int counts[4 * 4] = {70,  20,  10,  0, /* true class 0 */
                         5,   80,  15,  0, /* 1 */
                         0,   0,   0,   0, /* 2: never seen */
                         700, 200, 100, 0}; /* 3: class 0's row ×10 */
    const char *names[4] = {"cat", "dog", "a-very-long-class-name", "<bird>"};
    CHECK(ds_plot_confusion(ds_test_path("cm.png"), 4, counts, names) == 0);
    img m = load(ds_test_path("cm.png"));
    CHECK(m.px && m.comp == 3);
    if (!m.px) return;
    /* the matrix frame: the first long run of the axis grey (90,90,90) */
    int fx = -1, fy = -1, run = 0;
    for (int y = 0; y < m.h && fy < 0; y++) {
        int r = 0;
        for (int x = 0; x < m.w; x++) {
            r = is_rgb(pix(&m, x, y), 90, 90, 90) ? r + 1 : 0;
            if (r > 100 && fy < 0) fy = y;
            if (fy == y && r > run) run = r, fx = x - r + 1;
        }
    }
    CHECK(fy >= 0 && run > 100);
    if (fy < 0) {
        stbi_image_free(m.px);
        return;
    }
    int x0 = fx + 1, y0 = fy + 1, cell = (run - 2) / 4;
    CHECK((run - 2) % 4 == 0);
    /* darker (smaller r+g+b) for a larger share of the row */
    CHECK(cell_sum(&m, x0, y0, cell, 0, 0) < cell_sum(&m, x0, y0, cell, 0, 1));
    CHECK(cell_sum(&m, x0, y0, cell, 0, 1) < cell_sum(&m, x0, y0, cell, 0, 2));
    CHECK(cell_sum(&m, x0, y0, cell, 0, 2) < cell_sum(&m, x0, y0, cell, 0, 3));
    CHECK(cell_sum(&m, x0, y0, cell, 1, 1) < cell_sum(&m, x0, y0, cell, 1, 2));
    CHECK(cell_sum(&m, x0, y0, cell, 1, 2) < cell_sum(&m, x0, y0, cell, 1, 0));
    CHECK(cell_sum(&m, x0, y0, cell, 3, 0) < cell_sum(&m, x0, y0, cell, 3, 1));
    CHECK(cell_sum(&m, x0, y0, cell, 3, 2) < cell_sum(&m, x0, y0, cell, 3, 3));
    /* rows are normalised: the same shares give the same colours whatever
     * the counts, and an empty row is as pale as a zero count */
    for (int p = 0; p < 4; p++)
        CHECK(cell_sum(&m, x0, y0, cell, 3, p) == cell_sum(&m, x0, y0, cell, 0, p));
    CHECK(cell_sum(&m, x0, y0, cell, 2, 2) == cell_sum(&m, x0, y0, cell, 0, 3));
    CHECK(cell_sum(&m, x0, y0, cell, 2, 0) > 3 * 240);
    /* counts are written: white digits on the dark cell, dark on a pale one */
    int white = 0, dark = 0;
    for (int y = 0; y < cell / 2; y++)
        for (int x = 0; x < cell / 2; x++) {
            const uint8_t *d = pix(&m, x0 + 0 * cell + cell / 4 + x, y0 + 3 * cell + cell / 4 + y);
            const uint8_t *p = pix(&m, x0 + 2 * cell + cell / 4 + x, y0 + 0 * cell + cell / 4 + y);
            white += is_rgb(d, 255, 255, 255);
            dark += p[0] < 60 && p[1] < 60 && p[2] < 60;
        }
    CHECK(white > 10);
    CHECK(dark > 10);
    stbi_image_free(m.px);

    CHECK(ds_plot_confusion(ds_test_path("cm.png"), 0, counts, NULL) == -1);
    counts[5] = -1;
    CHECK(ds_plot_confusion(ds_test_path("cm.png"), 4, counts, NULL) == -1);
    CHECK(strstr(ds_last_error(), "cm.png") && strstr(ds_last_error(), "-1"));
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

static void test_report(void)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/run", dir);
    CHECK(mkdir(sub, 0755) == 0);
    const char *html = NULL;
    char hp[160];
    snprintf(hp, sizeof hp, "%s/report.html", sub);

    /* no plots, no metrics */
    CHECK(ds_report_html(sub, "Run <b>&", "acc <0.9> & \"done\"") == 0);
    char *s = slurp(hp);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(count(s, "<img") == 0);
    CHECK(count(s, "<table") == 0);
    CHECK(strstr(s, "<title>Run &lt;b&gt;&amp;</title>") != NULL);
    CHECK(strstr(s, "<h1>Run &lt;b&gt;&amp;</h1>") != NULL);
    CHECK(strstr(s, "acc &lt;0.9&gt; &amp; &quot;done&quot;") != NULL);
    CHECK(strstr(s, "<b>&") == NULL);
    free(s);

    /* only the plots that exist get an <img> */
    float v[3] = {3, 2, 1};
    const float *ys[1] = {v};
    char lp[160];
    snprintf(lp, sizeof lp, "%s/loss.png", sub);
    CHECK(ds_plot_lines(lp, "Loss", "epoch", 1, NULL, ys, 3) == 0);
    CHECK(ds_report_html(sub, "t", NULL) == 0);
    s = slurp(hp);
    CHECK(s && count(s, "<img") == 1 && strstr(s, "src=\"loss.png\"") && strstr(s, "alt=\""));
    CHECK(s && !strstr(s, "accuracy.png") && !strstr(s, "confusion.png"));
    CHECK(s && !strstr(s, "<pre>"));
    free(s);

    int counts[4] = {3, 1, 0, 4};
    char cp[160], mp[160];
    snprintf(cp, sizeof cp, "%s/confusion.png", sub);
    snprintf(mp, sizeof mp, "%s/metrics.csv", sub);
    CHECK(ds_plot_confusion(cp, 2, counts, NULL) == 0);
    write_text(mp, "epoch,<b>&,note\r\n1,0.5,\"a, \"\"quoted\"\" <i>\"\r\n\r\n2,0.25\n");
    CHECK(ds_report_html(sub, "t", "s") == 0);
    html = s = slurp(hp);
    CHECK(s && count(s, "<img") == 2 && strstr(s, "src=\"confusion.png\""));
    CHECK(s && count(s, "<figcaption>") == 2);
    CHECK(s && strstr(s, "<th>epoch</th><th>&lt;b&gt;&amp;</th><th>note</th>"));
    CHECK(s && strstr(s, "<td class=\"num\">0.5</td><td>a, &quot;quoted&quot; &lt;i&gt;</td>"));
    /* a short row is padded to the header's width; the blank line is skipped */
    CHECK(s && strstr(s, "<td class=\"num\">0.25</td><td></td></tr>"));
    CHECK(s && count(s, "<tr>") == 3);
    CHECK(s && strstr(s, "href=\"metrics.csv\""));
    /* self-contained: no scripts, nothing fetched from elsewhere */
    CHECK(html && !strstr(html, "<script") && !strstr(html, "://") && !strstr(html, "<link"));
    free(s);
    snprintf(hp, sizeof hp, "%s/report.html.tmp", sub);
    CHECK(!exists(hp));

    /* errors name the directory */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/not-there", dir);
    CHECK(ds_report_html(missing, "t", NULL) == -1);
    CHECK(strstr(ds_last_error(), missing) && strstr(ds_last_error(), strerror(ENOENT)));
    CHECK(ds_report_html(mp, "t", NULL) == -1);
    CHECK(strstr(ds_last_error(), "metrics.csv") && strstr(ds_last_error(), "not a directory"));
}

/* A complete report like a training run leaves, for people and browsers. */
static void write_demo(const char *out)
{
    enum { E = 15, C = 10 };
    static const char *const cls[C] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    float tl[E], vl[E], ta[E], va[E];
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", out);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n");
    for (int e = 0; e < E; e++) {
        tl[e] = 0.25f + 0.6f * expf(-0.45f * e);
        vl[e] = 0.29f + 0.5f * expf(-0.5f * e) + 0.004f * e;
        ta[e] = 0.92f - 0.2f * expf(-0.5f * e);
        va[e] = 0.905f - 0.16f * expf(-0.55f * e);
        fprintf(f, "%d,%.4f,%.4f,%.4f,%.4f,%.5f,%.1f\n", e + 1, tl[e], ta[e], vl[e], va[e],
                0.01 * pow(0.7, e / 3), 41.5 + e % 3);
    }
    fclose(f);
    vl[6] = NAN; /* a missed evaluation draws as a gap */
    const char *names[2] = {"train", "validation"};
    const float *loss[2] = {tl, vl}, *acc[2] = {ta, va};
    snprintf(path, sizeof path, "%s/loss.png", out);
    CHECK(ds_plot_lines(path, "Loss", "epoch", 2, names, loss, E) == 0);
    snprintf(path, sizeof path, "%s/accuracy.png", out);
    CHECK(ds_plot_lines(path, "Accuracy", "epoch", 2, names, acc, E) == 0);
    int cm[C * C];
    ds_rng r;
    ds_rng_seed(&r, 7);
    for (int t = 0; t < C; t++)
        for (int p = 0; p < C; p++)
            cm[t * C + p] = t == p ? 700 + (int)ds_rng_below(&r, 280) : (int)ds_rng_below(&r, 40);
    cm[6 * C + 0] = 160; /* shirts taken for T-shirts */
    snprintf(path, sizeof path, "%s/confusion.png", out);
    CHECK(ds_plot_confusion(path, C, cm, cls) == 0);
    CHECK(ds_report_html(out, "lenet on fashion-mnist <demo> & co",
                         "model      models/lenet.cfg\n"
                         "data       fashion-mnist (60000 train, 10000 test)\n"
                         "epochs     15, batch 64, sgd lr 0.01 momentum 0.9\n"
                         "test       accuracy 0.9112, log-loss 0.2521\n") == 0);
}

/* The screenshot shows the plots' colours: both series of the curves and
 * the dark cells of the confusion matrix (an image that did not load shows
 * none of them; tests/e2e/report_chromium.sh checks that too). */
static int check_screenshot(const char *path)
{
    img m = load(path);
    CHECK(m.px != NULL);
    if (!m.px) return ds_test_summary("report screenshot");
    long blue = 0, orange = 0, navy = 0;
    for (long i = 0; i < (long)m.w * m.h; i++) {
        const uint8_t *p = m.px + 3 * i;
        blue += abs(p[0] - 31) < 16 && abs(p[1] - 119) < 16 && abs(p[2] - 180) < 16;
        orange += abs(p[0] - 255) < 16 && abs(p[1] - 127) < 16 && abs(p[2] - 14) < 16;
        navy += p[0] < 30 && p[1] < 95 && p[2] > 95 && p[2] < 170; /* Blues above 0.85 */
    }
    printf("screenshot %dx%d: %ld tab-blue, %ld tab-orange, %ld navy pixels\n", m.w, m.h, blue,
           orange, navy);
    CHECK(blue > 1000);
    CHECK(orange > 1000);
    CHECK(navy > 5000);
    stbi_image_free(m.px);
    return ds_test_summary("report screenshot");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--check-screenshot") == 0) return check_screenshot(argv[2]);
    if (!(dir = ds_test_tmpdir())) return 1;
    test_png();
    test_lines();
    test_nan_gap();
    test_confusion();
    test_report();
    const char *out = getenv("DS_REPORT_DIR");
    if (out && *out) write_demo(out);
    return ds_test_summary("report");
}
