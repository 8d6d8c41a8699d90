/* forest.c — a random forest of CART trees (Breiman 2001): each tree grown
 * on a bootstrap sample, each split the best Gini decrease among a random
 * subset of the features (√F by default), leaves holding class frequencies;
 * the forest's probabilities are the trees' mean. Trees are grown in
 * parallel, each from its own generator seeded by (seed, tree), so the
 * forest depends on the seed alone. The course's "traditional flow"
 * baseline (hand-made stamp features into a forest) is built on it. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int feature;   /* −1: a leaf */
    float thresh;  /* go left when x[feature] <= thresh */
    int left, right;
    int prob;      /* leaf: offset of its class frequencies in probs */
} tnode;

typedef struct {
    tnode *nodes;
    int n_nodes, cap;
    float *probs;
    int n_probs, cap_probs;
} tree;

struct ds_forest {
    ds_forest_cfg cfg;
    int features, classes;
    tree *trees;
};

typedef struct {
    float v;
    int i;
} fv;

static int by_value(const void *a, const void *b)
{
    float x = ((const fv *)a)->v, y = ((const fv *)b)->v;
    return (x > y) - (x < y);
}

typedef struct {
    const ds_forest *f;
    const float *x, *y;
    int n;
    int failed;
} grow_task;

static int push_node(tree *t)
{
    if (t->n_nodes == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        tnode *p = realloc(t->nodes, sizeof *p * (size_t)cap);
        if (!p) return -1;
        t->nodes = p, t->cap = cap;
    }
    return t->n_nodes++;
}

static int push_leaf(tree *t, const float *y, const int *idx, int n, int classes)
{
    int k = push_node(t);
    if (k < 0) return -1;
    if (t->n_probs + classes > t->cap_probs) {
        int cap = t->cap_probs ? 2 * t->cap_probs + classes : 64 * classes;
        float *p = realloc(t->probs, sizeof *p * (size_t)cap);
        if (!p) return -1;
        t->probs = p, t->cap_probs = cap;
    }
    float *pr = t->probs + t->n_probs;
    for (int c = 0; c < classes; c++) pr[c] = 0;
    for (int i = 0; i < n; i++) pr[(int)y[idx[i]]] += 1.0f / n;
    t->nodes[k] = (tnode){-1, 0, -1, -1, t->n_probs};
    t->n_probs += classes;
    return k;
}

/* grow the subtree of idx[0..n); returns its node index (−1: out of memory) */
static int grow(const grow_task *g, tree *t, int *idx, int n, int depth, ds_rng *r, fv *buf, int *feats)
{
    const ds_forest_cfg *k = &g->f->cfg;
    int F = g->f->features, C = g->f->classes;
    double cnt[64] = {0};
    for (int i = 0; i < n; i++) cnt[(int)g->y[idx[i]]]++;
    int pure = 0;
    for (int c = 0; c < C; c++) pure |= cnt[c] == n;
    if (pure || depth >= k->max_depth || n < 2 * k->min_leaf) return push_leaf(t, g->y, idx, n, C);
    /* √F (or max_features) features, drawn without replacement */
    int mtry = k->max_features > 0 && k->max_features < F ? k->max_features : (int)ceil(sqrt((double)F));
    for (int i = 0; i < F; i++) feats[i] = i;
    for (int i = 0; i < mtry; i++) {
        int j = i + (int)ds_rng_below(r, (uint32_t)(F - i)), tmp = feats[i];
        feats[i] = feats[j], feats[j] = tmp;
    }
    double parent = 1;
    for (int c = 0; c < C; c++) parent -= (cnt[c] / n) * (cnt[c] / n);
    double best = 0;
    int bf = -1;
    float bt = 0;
    for (int m = 0; m < mtry; m++) {
        int f = feats[m];
        for (int i = 0; i < n; i++) buf[i] = (fv){g->x[(size_t)idx[i] * F + f], idx[i]};
        qsort(buf, (size_t)n, sizeof *buf, by_value);
        double left[64] = {0};
        for (int i = 0; i + 1 < n; i++) {
            left[(int)g->y[buf[i].i]]++;
            if (buf[i].v == buf[i + 1].v || i + 1 < k->min_leaf || n - i - 1 < k->min_leaf) continue;
            double nl = i + 1, nr = n - nl, gl = 1, gr = 1;
            for (int c = 0; c < C; c++) {
                gl -= (left[c] / nl) * (left[c] / nl);
                gr -= ((cnt[c] - left[c]) / nr) * ((cnt[c] - left[c]) / nr);
            }
            double gain = parent - (nl * gl + nr * gr) / n;
            if (gain > best + 1e-12) best = gain, bf = f, bt = 0.5f * (buf[i].v + buf[i + 1].v);
        }
    }
    if (bf < 0) return push_leaf(t, g->y, idx, n, C);
    /* partition idx in place */
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        if (g->x[(size_t)idx[lo] * F + bf] <= bt) lo++;
        else {
            int tmp = idx[lo];
            idx[lo] = idx[hi], idx[hi--] = tmp;
        }
    }
    int me = push_node(t);
    if (me < 0) return -1;
    int l = grow(g, t, idx, lo, depth + 1, r, buf, feats);
    int rr = l < 0 ? -1 : grow(g, t, idx + lo, n - lo, depth + 1, r, buf, feats);
    if (rr < 0) return -1;
    t->nodes[me] = (tnode){bf, bt, l, rr, 0};
    return me;
}

static void grow_range(void *arg, long lo, long hi)
{
    grow_task *g = arg;
    int n = g->n;
    int *idx = malloc(sizeof(int) * (size_t)n), *feats = malloc(sizeof(int) * (size_t)g->f->features);
    fv *buf = malloc(sizeof(fv) * (size_t)n);
    if (!idx || !feats || !buf) {
        g->failed = 1;
        free(idx), free(feats), free(buf);
        return;
    }
    for (long ti = lo; ti < hi; ti++) {
        ds_rng r;
        ds_rng_seed(&r, g->f->cfg.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)ti + 1);
        for (int i = 0; i < n; i++) idx[i] = (int)ds_rng_below(&r, (uint32_t)n); /* bootstrap */
        if (grow(g, &g->f->trees[ti], idx, n, 0, &r, buf, feats) < 0) g->failed = 1;
    }
    free(idx), free(feats), free(buf);
}

ds_forest *ds_forest_train(const float *x, const float *y, int n, int features, int classes, const ds_forest_cfg *cfg)
{
    if (n < 2 || features < 1 || classes < 2 || classes > 64) {
        ds_fail("forest: need 2+ samples, 1+ features and 2..64 classes");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!(y[i] >= 0 && y[i] < classes && y[i] == (int)y[i])) {
            ds_fail("forest: label %d is %g, not a class in 0..%d", i, y[i], classes - 1);
            return NULL;
        }
    for (size_t i = 0; i < (size_t)n * features; i++)
        if (!isfinite(x[i])) {
            ds_fail("forest: feature %zu of sample %zu is not finite", i % (size_t)features, i / (size_t)features);
            return NULL;
        }
    ds_forest *f = calloc(1, sizeof *f);
    if (!f) {
        ds_fail("out of memory");
        return NULL;
    }
    f->cfg = *cfg;
    if (f->cfg.trees < 1) f->cfg.trees = 100;
    if (f->cfg.max_depth < 1) f->cfg.max_depth = 30;
    if (f->cfg.min_leaf < 1) f->cfg.min_leaf = 1;
    f->features = features, f->classes = classes;
    if (!(f->trees = calloc((size_t)f->cfg.trees, sizeof *f->trees))) {
        free(f);
        ds_fail("out of memory");
        return NULL;
    }
    grow_task g = {f, x, y, n, 0};
    ds_parallel_for_grains(f->cfg.trees, 1, 8, grow_range, &g);
    if (g.failed) {
        ds_forest_free(f);
        ds_fail("forest: out of memory growing the trees");
        return NULL;
    }
    return f;
}

void ds_forest_predict(const ds_forest *f, const float *x, int n, float *probs)
{
    int C = f->classes;
    for (int s = 0; s < n; s++) {
        float *p = probs + (size_t)s * C;
        for (int c = 0; c < C; c++) p[c] = 0;
        for (int ti = 0; ti < f->cfg.trees; ti++) {
            const tree *t = &f->trees[ti];
            int k = 0;
            while (t->nodes[k].feature >= 0)
                k = x[(size_t)s * f->features + t->nodes[k].feature] <= t->nodes[k].thresh ? t->nodes[k].left
                                                                                          : t->nodes[k].right;
            for (int c = 0; c < C; c++) p[c] += t->probs[t->nodes[k].prob + c] / f->cfg.trees;
        }
    }
}

void ds_forest_free(ds_forest *f)
{
    if (!f) return;
    for (int i = 0; f->trees && i < f->cfg.trees; i++) free(f->trees[i].nodes), free(f->trees[i].probs);
    free(f->trees);
    free(f);
}
