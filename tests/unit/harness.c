#include "harness.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>

int ds_t_pass, ds_t_fail;

double ds_test_rel_err(const float *a, const float *ref, size_t n)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > e || d != d) e = d != d ? 1e30 : d;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? e / m : e;
}

int ds_test_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, ds_t_pass, ds_t_fail);
    return ds_t_fail ? 1 : 0;
}

static char tmp_dir[] = "/tmp/ds_test_XXXXXX";
static int tmp_made;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    if (!getenv("DS_KEEP_TMP")) nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *ds_test_tmpdir(void)
{
    if (!tmp_made) {
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            return NULL;
        }
        tmp_made = 1;
        atexit(remove_tmpdir);
    }
    return tmp_dir;
}

const char *ds_test_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", ds_test_tmpdir(), name);
    return buf[k];
}

void ds_test_fill(float *v, size_t n, float lo, float hi, ds_rng *r)
{
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * ds_rng_uniform(r);
}

int ds_test_mse_step(ds_graph *g, ds_node *x, ds_node *y, uint64_t seed)
{
    ds_node *t = ds_input(g, "t", ds_node_shape(y));
    ds_node *l = ds_mse(g, y, t);
    if (ds_graph_compile(g) != 0) return -1;
    ds_rng r;
    ds_rng_seed(&r, seed);
    ds_test_fill(ds_node_value(x), ds_node_numel(x), -0.5f, 0.5f, &r);
    ds_test_fill(ds_node_value(t), ds_node_numel(t), -0.5f, 0.5f, &r);
    ds_graph_set_training(g, 1);
    ds_graph_zero_grad(g);
    return ds_graph_forward(g) == 0 && ds_graph_backward(g, l, NULL) == 0 ? 0 : -1;
}

float *ds_test_dup(const float *v, size_t n)
{
    float *o = malloc(n * sizeof *o);
    if (o) memcpy(o, v, n * sizeof *o);
    return o;
}

void ds_test_epilogue_twice(void *seen, float *c, long ldc, int rows, int cols, int i0, int j0)
{
    int *s = seen, n = s[0];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            c[(size_t)i * ldc + j] *= 2;
            s[1 + (i0 + i) * n + j0 + j]++;
        }
}

static double weighted_out(ds_graph *g, ds_node *out, const float *r, const ds_rng *rng0)
{
    *ds_graph_rng(g) = *rng0; /* same dropout mask on every evaluation */
    ds_graph_forward(g);
    const float *v = ds_node_value(out);
    double s = 0;
    for (size_t i = 0; i < ds_node_numel(out); i++) s += (double)v[i] * r[i];
    return s;
}

double ds_gradcheck(ds_graph *g, ds_node *out, ds_node **wrt, int n_wrt, float eps, double tol,
                    int max_elems)
{
    ds_rng pick, rng0 = *ds_graph_rng(g);
    ds_rng_seed(&pick, 1234);
    size_t no = ds_node_numel(out);
    float *r = malloc(no * sizeof *r);
    ds_test_fill(r, no, -1, 1, &pick);
    weighted_out(g, out, r, &rng0);
    ds_graph_zero_grad(g);
    if (ds_graph_backward(g, out, r) != 0) {
        fprintf(stderr, "gradcheck: backward failed: %s\n", ds_last_error());
        free(r);
        return 1e9;
    }
    double worst = 0;
    for (int k = 0; k < n_wrt; k++) {
        size_t n = ds_node_numel(wrt[k]);
        float *x = ds_node_value(wrt[k]);
        float *ana = malloc(n * sizeof *ana);
        memcpy(ana, ds_node_grad(wrt[k]), n * sizeof *ana);
        size_t step = n > (size_t)max_elems ? n / (size_t)max_elems : 1;
        for (size_t i = ds_rng_below(&pick, (uint32_t)step); i < n; i += step) {
            float x0 = x[i];
            x[i] = x0 + eps;
            double fp = weighted_out(g, out, r, &rng0);
            x[i] = x0 - eps;
            double fm = weighted_out(g, out, r, &rng0);
            x[i] = x0;
            double num = (fp - fm) / (2.0 * eps), a = ana[i];
            double scale = fmax(1.0, fmax(fabs(num), fabs(a)));
            double err = fabs(num - a) / scale / tol;
            if (err > worst) worst = err;
            if (err > 1)
                fprintf(stderr, "gradcheck: d/d%s[%zu]: numeric %.6g, backward %.6g\n",
                        ds_node_name(wrt[k]), i, num, a);
        }
        free(ana);
    }
    weighted_out(g, out, r, &rng0);
    free(r);
    return worst;
}
