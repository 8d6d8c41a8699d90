/* test_plot_axes.c — the x-y chart's axes (log-scale x, y label), error
 * bars, point labels and legend placement, the labelled stamp grid, the
 * provenance block (metrics.csv comments, report.html) and the chunked
 * simulator behind simulate's progress line. Images are read back with
 * stb_image and checked by their pixels. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define STBI_ONLY_PNG
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image.h>

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

static const uint8_t *pix(const img *m, int x, int y) { return m->px + 3 * ((size_t)y * m->w + x); }
/* the first series' colour (tab10 blue), exactly: the inside of a line or marker */
static int blue(const uint8_t *p) { return p[0] == 31 && p[1] == 119 && p[2] == 180; }
static int dark(const uint8_t *p) { return p[0] < 100 && p[1] < 100 && p[2] < 100; }

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

/* x centres of the blue blobs in rows [y0, y1), left to right */
static int blob_centres(const img *m, int y0, int y1, float *cx, int max)
{
    int n = 0, in = 0, start = 0;
    for (int x = 0; x <= m->w && n < max; x++) {
        int any = 0;
        for (int y = y0; x < m->w && y < y1; y++) any |= blue(pix(m, x, y));
        if (any && !in) in = 1, start = x;
        if (!any && in) in = 0, cx[n++] = (start + x - 1) / 2.0f;
    }
    return n;
}

static void test_log_axis(void)
{
    /* points at 0.001, 0.01, 0.1, 1: evenly spaced on a log axis (on a linear one the first three crowd at the left) */
    float x[4] = {0.001f, 0.01f, 0.1f, 1}, y[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    ds_plot_series s = {.x = x, .y = y, .n = 4, .style = DS_PLOT_POINTS};
    ds_plot_opts o = {.title = "log", .xlabel = "false-positive rate", .ylabel = "recall", .log_x = 1};
    const char *p = ds_test_path("log.png");
    CHECK(ds_plot_xy(p, &o, &s, 1) == 0);
    img m = load(p);
    CHECK(m.px && m.w == 800 && m.h == 500);
    if (!m.px) return;
    float cx[8];
    int n = blob_centres(&m, 60, 430, cx, 8);
    CHECK(n == 4);
    if (n == 4) {
        float d = cx[1] - cx[0];
        CHECK(d > 100);
        CHECK(fabsf(cx[2] - cx[1] - d) <= 2 && fabsf(cx[3] - cx[2] - d) <= 2);
    }
    /* the y label: ink left of the tick labels, around the middle */
    int left = m.w;
    for (int yy = 150; yy < 350; yy++)
        for (int xx = 0; xx < left; xx++)
            if (dark(pix(&m, xx, yy))) left = xx;
    CHECK(left <= 10);
    stbi_image_free(m.px);
    /* without a y label those columns stay empty */
    o.ylabel = NULL;
    CHECK(ds_plot_xy(p, &o, &s, 1) == 0);
    m = load(p);
    int left0 = m.w;
    for (int yy = 150; m.px && yy < 350; yy++)
        for (int xx = 0; xx < left0; xx++)
            if (dark(pix(&m, xx, yy))) left0 = xx;
    CHECK(m.px && left0 > 10 && left0 < 40);
    stbi_image_free(m.px);
    /* x <= 0 is left out of a log axis, not an error */
    float xz[4] = {0, 0.01f, 0.1f, 1};
    s.x = xz;
    CHECK(ds_plot_xy(p, &o, &s, 1) == 0);
    m = load(p);
    CHECK(m.px && blob_centres(&m, 60, 430, cx, 8) == 3);
    stbi_image_free(m.px);
}

static void test_error_bars(void)
{
    /* y fixed to [0, 1]: a bar from 0.2 to 0.8 spans 60 % of the plot's height */
    float x[3] = {1, 2, 3}, y[3] = {0.5f, 0.5f, 0.5f}, lo[3] = {0.2f, 0.4f, 0.45f}, hi[3] = {0.8f, 0.6f, 0.55f};
    const char *labels[3] = {"n=10", "n=100", "n=1000"};
    ds_plot_series s = {.x = x, .y = y, .lo = lo, .hi = hi, .n = 3, .style = DS_PLOT_POINTS};
    ds_plot_opts o = {.y_fixed = 1, .ymin = 0, .ymax = 1};
    const char *p = ds_test_path("bars.png");
    CHECK(ds_plot_xy(p, &o, &s, 1) == 0);
    img m = load(p);
    if (!m.px) {
        CHECK(0);
        return;
    }
    float cx[8];
    int n = blob_centres(&m, 52, 434, cx, 8);
    CHECK(n == 3);
    int top = m.h, bot = -1, ph = 434 - 52;
    for (int yy = 0; n == 3 && yy < m.h; yy++)
        if (blue(pix(&m, (int)cx[0], yy)) || blue(pix(&m, (int)cx[0] + 1, yy))) top = yy < top ? yy : top, bot = yy;
    CHECK(fabs((bot - top) - 0.6 * ph) < 6);
    long ink0 = 0, ink1 = 0;
    for (int i = 0; i < m.w * m.h; i++) ink0 += dark(m.px + 3 * i);
    stbi_image_free(m.px);
    /* labels add text and hide no marker or bar */
    s.labels = labels;
    CHECK(ds_plot_xy(p, &o, &s, 1) == 0);
    m = load(p);
    if (!m.px) {
        CHECK(0);
        return;
    }
    for (int i = 0; i < m.w * m.h; i++) ink1 += dark(m.px + 3 * i);
    CHECK(ink1 > ink0 + 60);
    int top2 = m.h, bot2 = -1;
    for (int yy = 0; n == 3 && yy < m.h; yy++)
        if (blue(pix(&m, (int)cx[0], yy)) || blue(pix(&m, (int)cx[0] + 1, yy))) top2 = yy < top2 ? yy : top2, bot2 = yy;
    CHECK(top2 == top && bot2 == bot);
    stbi_image_free(m.px);
}

static void test_legend_room(void)
{
    /* a zigzag through all four corners: no corner is free, the legend goes below and the image grows */
    enum { N = 41 };
    float a[N], b[N];
    for (int i = 0; i < N; i++) a[i] = (float)(i % 2), b[i] = (float)((i + 1) % 2);
    const char *names[2] = {"a very long name for the first series that does not fit in eight hundred pixels at all",
                            "validation"};
    const float *ys[2] = {a, b};
    const char *p = ds_test_path("legend.png");
    CHECK(ds_plot_lines_ex(p, "crowded", "epoch", "loss", 2, names, ys, N) == 0);
    img m = load(p);
    CHECK(m.px && m.w == 800 && m.h > 500);
    int ink = 0, edge = 0;
    for (int yy = 500; m.px && yy < m.h; yy++)
        for (int xx = 0; xx < m.w; xx++) {
            ink += dark(pix(&m, xx, yy));
            edge += (xx < 3 || xx >= m.w - 3) && !(pix(&m, xx, yy)[0] == 255 && pix(&m, xx, yy)[1] == 255);
        }
    CHECK(ink > 100);  /* the names, below the chart */
    CHECK(edge == 0);  /* cut short of the image's edges */
    stbi_image_free(m.px);
    /* two gentle curves: the legend fits inside, the image keeps its size */
    float t[N], v[N];
    for (int i = 0; i < N; i++) t[i] = 1.0f / (i + 1), v[i] = 1.2f / (i + 1) + 0.01f * i;
    ys[0] = t, ys[1] = v;
    names[0] = "train";
    CHECK(ds_plot_lines_ex(p, "loss", "epoch", "loss", 2, names, ys, N) == 0);
    m = load(p);
    CHECK(m.px && m.h == 500);
    stbi_image_free(m.px);
    CHECK(ds_plot_xy(p, NULL, NULL, 0) == -1);
    ds_plot_series none = {.n = 3};
    CHECK(ds_plot_xy(p, NULL, &none, 1) == -1 && strstr(ds_last_error(), "legend.png"));
}

static void test_grid_labels(void)
{
    enum { S = 20, N = 5 };
    float x[N * S * S];
    for (int i = 0; i < N * S * S; i++) x[i] = (float)(i % 7);
    const char *labels[N] = {"1: #17\ntrue real\nstreak\nscore 0.012", "2: #3\ntrue bogus", NULL, "4", "5: #9"};
    const char *p = ds_test_path("grid.png"), *q = ds_test_path("grid0.png");
    CHECK(ds_png_grid_labeled(p, x, N, S, S, 3, 1, labels) == 0);
    CHECK(ds_png_grid_labeled(q, x, N, S, S, 3, 1, NULL) == 0);
    img a = load(p), b = load(q);
    CHECK(a.px && b.px && a.w == b.w && a.h == b.h + 2 * (4 + 10 * 4));
    /* tiles scaled up 5x to 100 px */
    CHECK(b.px && b.w == 6 + 3 * (100 + 6));
    /* the first tile's label: ink under it, four lines of it */
    int lines = 0;
    for (int yy = 6 + 100 + 4; a.px && yy < 6 + 100 + 4 + 40; yy += 10) {
        int ink = 0;
        for (int r = 0; r < 7; r++)
            for (int xx = 6; xx < 6 + 100; xx++) ink += dark(pix(&a, xx, yy + r));
        lines += ink > 10;
    }
    CHECK(lines == 4);
    stbi_image_free(a.px);
    stbi_image_free(b.px);
}

static void test_provenance_block(void)
{
    ds_meta_kv kv[3] = {{"command", "deepsky train m.cfg --data 'a b'"}, {"note", "two\nlines"}, {"date", "2026-01-01T00:00:00Z"}};
    char *c = ds_provenance_comments(kv, 3);
    CHECK(c && !strcmp(c, "# command: deepsky train m.cfg --data 'a b'\n# note: two\\nlines\n# date: 2026-01-01T00:00:00Z\n"));
    /* metrics.csv headed by the block: the report shows it as provenance, not as table rows */
    const char *dir = ds_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "%sepoch,train_loss\n1,0.5\n2,0.25\n", c);
    fclose(f);
    CHECK(ds_report_html(dir, "t", NULL) == 0);
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *h = slurp(path);
    CHECK(h && strstr(h, "<h2>Provenance</h2>") && strstr(h, "<th>command</th><td><code>deepsky train m.cfg --data &#39;a b&#39;"));
    CHECK(h && strstr(h, "<th>date</th><td><code>2026-01-01T00:00:00Z</code>"));
    CHECK(h && !strstr(h, "<td># command")); /* no comment line among the metrics rows */
    CHECK(h && strstr(h, "<th>epoch</th>") && strstr(h, "<td class=\"num\">0.25</td>"));
    free(h);
    /* a block given directly wins over metrics.csv's */
    ds_meta_kv mine[1] = {{"checkpoint", "best.safetensors (fnv1a64 0123456789abcdef)"}};
    CHECK(ds_report_html_ex(dir, "t", "s", mine, 1) == 0);
    h = slurp(path);
    CHECK(h && strstr(h, "fnv1a64 0123456789abcdef") && !strstr(h, "<th>note</th>"));
    free(h);
    free(c);
}

static long ticks, last_done = -1;
static int in_order = 1;
static void tick(void *arg, long done, long total)
{
    (void)arg;
    ticks++;
    in_order &= done > last_done && done <= total;
    last_done = done;
}

static void test_sim_progress(void)
{
    ds_sim_cfg c = {.n = 5000, .size = 16, .channels = 1, .real_fraction = 0.3f, .seed = 11};
    ds_dataset a = {0}, b = {0};
    ds_sim_meta *ma = NULL, *mb = NULL;
    CHECK(ds_sim_dataset(&c, &a, &ma) == 0);
    CHECK(ds_sim_dataset_progress(&c, &b, &mb, tick, NULL) == 0);
    CHECK(a.n == b.n && b.n == 5000 && b.classes == 2 && b.class_names && !strcmp(b.class_names[1], "real"));
    CHECK(a.x && b.x && !memcmp(a.x, b.x, sizeof(float) * 5000 * 16 * 16));
    CHECK(a.y && b.y && !memcmp(a.y, b.y, sizeof(float) * 5000));
    CHECK(ma && mb && !memcmp(ma, mb, sizeof *ma * 5000));
    CHECK(ticks >= 3 && in_order && last_done == 5000);
    free(ma), free(mb);
    ds_dataset_free(&a), ds_dataset_free(&b);
    ds_sim_cfg bad = c;
    bad.size = 4;
    CHECK(ds_sim_dataset_progress(&bad, &b, &mb, tick, NULL) == -1 && strstr(ds_last_error(), "size"));
}

int main(void)
{
    if (!ds_test_tmpdir()) return 1;
    test_log_axis();
    test_error_bars();
    test_legend_room();
    test_grid_labels();
    test_provenance_block();
    test_sim_progress();
    return ds_test_summary("plot_axes");
}
