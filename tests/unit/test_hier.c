/* test_hier.c — hierarchical classification: [tree] parsing and each of
 * its errors, the model's logit width, the loss against hand-computed
 * values and −log P(y), its gradient by finite differences, class
 * probabilities and the path text, per-level metrics on a hand-worked
 * example, a small tree-headed MLP that learns, and models/lenet-hier.cfg
 * (built, and one short epoch on Fashion-MNIST when it is installed). */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_TREE                                                                                         \
    "[tree]\nroot = top, 1, 3, footwear, 8\ntop = shirt_like, 2, 4\nshirt_like = 0, 6\nfootwear = 5, 7, 9\n"
/* classes 0..4: root = a, b, 4; a = 0, 1; b = 2, 3 (logits: root 0..2, a 3..4, b 5..6) */
#define SMALL_TREE "[tree]\nroot = a, b, 4\na = 0, 1\nb = 2, 3\n"

/* models/NAME: DS_TEST_DATA is <repo>/tests/data (as in test_model.c). */
static void zoo_path(const char *name, char *buf, size_t size)
{
    const char *d = getenv("DS_TEST_DATA");
    snprintf(buf, size, "%s", d ? d : "");
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(buf, '/');
        if (slash) *slash = 0;
        else buf[0] = 0;
    }
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%smodels/%s", n ? "/" : "", name);
}

/* The parse must fail with an error holding every needle. */
#define EXPECT_TREE_ERROR(text, classes, ...) tree_error(__LINE__, text, classes, (const char *[]){__VA_ARGS__, NULL})
static void tree_error(int line, const char *text, int classes, const char **needles)
{
    ds_class_tree *t = ds_class_tree_parse(text, classes, "bad.cfg");
    if (t) {
        ds_t_fail++;
        fprintf(stderr, "test_hier.c:%d: expected an error, got a tree\n", line);
        ds_class_tree_free(t);
        return;
    }
    const char *e = ds_last_error();
    int ok = 1;
    for (const char **n = needles; *n; n++) ok &= strstr(e, *n) != NULL;
    if (ok) ds_t_pass++;
    else {
        ds_t_fail++;
        fprintf(stderr, "test_hier.c:%d: error message lacks an expected part:\n  %s\n", line, e);
    }
}

static void test_parse(void)
{
    ds_class_tree *t = ds_class_tree_parse(FASHION_TREE, 10, "f.cfg");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(t->classes == 10 && t->n_nodes == 4 && t->n_logits == 13 && t->root == 0 && t->depth == 3);
    CHECK(!strcmp(t->names[0], "root") && !strcmp(t->names[2], "shirt_like"));
    CHECK(t->first[0] == 0 && t->first[1] == 5 && t->first[2] == 8 && t->first[3] == 10);
    CHECK(t->n_children[0] == 5 && t->n_children[1] == 3 && t->n_children[2] == 2 && t->n_children[3] == 3);
    /* children ids: classes 0..9, nodes 10 + k */
    static const int kids[13] = {11, 1, 3, 13, 8, 12, 2, 4, 0, 6, 5, 7, 9};
    int same = 1;
    for (int j = 0; j < 13; j++) same &= t->children[j] == kids[j];
    CHECK(same);
    /* Shirt (6): under shirt_like (node 2), its logit 9, depth 3; Bag under the root at depth 1 */
    CHECK(t->parent[6] == 2 && t->logit[6] == 9 && t->level[6] == 3);
    CHECK(t->parent[8] == 0 && t->logit[8] == 4 && t->level[8] == 1);
    CHECK(t->parent[10] == -1 && t->logit[10] == -1 && t->level[10] == 0);
    CHECK(t->parent[12] == 1 && t->level[12] == 2 && t->parent[13] == 0 && t->level[13] == 1);
    char s[128];
    ds_class_tree_logits_str(t, s, sizeof s);
    CHECK(!strcmp(s, "root 5, top 3, shirt_like 2, footwear 3"));
    ds_class_tree_free(t);

    /* the root need not come first; blocks follow the file order */
    t = ds_class_tree_parse("[net]\nclasses=3\n[tree]\na = 0, 1\nroot = 2, a\n", 3, "o.cfg");
    CHECK(t && t->root == 1 && t->first[1] == 2 && t->depth == 2 && t->parent[0] == 0 && t->logit[2] == 2);
    ds_class_tree_free(t);

    EXPECT_TREE_ERROR("[net]\n", 3, "bad.cfg", "no [tree] section");
    EXPECT_TREE_ERROR("[tree]\n", 3, "bad.cfg:1:", "[tree]", "no nodes");
    EXPECT_TREE_ERROR("[tree]\nroot=0,1\n[tree]\nr=0,1\n", 2, "bad.cfg:3:", "second [tree]");
    EXPECT_TREE_ERROR("[tree]\n3 = 0, 1\n", 3, "bad.cfg:2:", "[tree] 3:", "starts with a letter");
    EXPECT_TREE_ERROR("[tree]\nroot = a, 2\na = 0, 1\na = 0, 1\n", 3, "bad.cfg:4:", "[tree] a:",
                      "defined twice (first at line 3)");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, , 1\n", 2, "bad.cfg:2:", "[tree] root:", "empty item");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1, 3\n", 3, "bad.cfg:2:", "class 3 is out of range (0..2; classes=3");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1, tops\n", 3, "bad.cfg:2:", "unknown node 'tops'");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1, a-b\n", 3, "bad.cfg:2:", "'a-b' is neither a class index nor a node name");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, root, 1\n", 2, "bad.cfg:2:", "'root' lists itself");
    EXPECT_TREE_ERROR("[tree]\nroot = a, 1\na = 0, 1\n", 2, "bad.cfg:3:", "[tree] a:",
                      "class 1 is listed twice (also under 'root' at line 2)");
    EXPECT_TREE_ERROR("[tree]\nroot = a, 2, a\na = 0, 1\n", 3, "bad.cfg:2:", "node 'a' is listed twice");
    EXPECT_TREE_ERROR("[tree]\nroot = a, 2\na = 0\n", 3, "bad.cfg:3:", "[tree] a:", "one child");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1\n", 4, "bad.cfg:1:", "classes 2, 3 are in no node");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1\nother = 2, 3\n", 4, "bad.cfg:3:", "[tree] other:", "a second root");
    EXPECT_TREE_ERROR("[tree]\na = b, 0\nb = a, 1\n", 2, "bad.cfg:1:", "no root");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1\na = b, 2\nb = a, 3\n", 4, "bad.cfg:3:", "[tree] a:", "in a cycle");
    EXPECT_TREE_ERROR("[tree]\nroot = 0, 1\n", 0, "classes 0 must be >= 1");
}

#define NET "[net]\ninput=4\nclasses=5\n"

static void small_logits(float *z);

static void test_model(void)
{
    char path[512];
    zoo_path("lenet-hier.cfg", path, sizeof path);
    ds_model *m = ds_model_load(path);
    CHECK(m != NULL);
    if (m) {
        const ds_class_tree *t = ds_model_tree(m);
        CHECK(t && t->n_logits == 13 && t->classes == 10 && ds_model_classes(m) == 10);
        ds_graph *g = ds_graph_new(1);
        ds_node *x, *z = ds_model_build(m, g, 4, &x);
        CHECK(z && ds_node_shape(z).ndim == 2 && ds_node_shape(z).d[1] == 13);
        long params = 0;
        for (int i = 0; i < ds_graph_num_params(g); i++) params += (long)ds_node_numel(ds_graph_param(g, i));
        CHECK(params == 455309);
        ds_graph_free(g);
        ds_model_free(m);
    }
    zoo_path("lenet.cfg", path, sizeof path);
    m = ds_model_load(path);
    CHECK(m && ds_model_tree(m) == NULL);
    ds_model_free(m);

    /* the last layer's width is the tree's logits, not the classes */
    m = ds_model_parse(NET SMALL_TREE "[dense]\nunits=5\n", "bad.cfg");
    CHECK(m != NULL);
    if (m) {
        ds_graph *g = ds_graph_new(1);
        ds_node *x;
        CHECK(ds_model_build(m, g, 4, &x) == NULL);
        CHECK(strstr(ds_last_error(), "bad.cfg:8: layer 'dense1' (dense): the last layer's output is [4, 5]; the "
                                      "model needs [4, 7] (the [tree]'s 7 logits, one per child of each node: root 3, a 2, b 2)"));
        ds_graph_free(g);
        ds_model_free(m);
    }
    m = ds_model_parse(NET SMALL_TREE "[dense]\nunits=7\n", "ok.cfg");
    CHECK(m && ds_model_tree(m) && ds_model_tree(m)->n_logits == 7 && ds_model_outputs(m) == 7);
    if (m) { /* the model's loss and probabilities follow its head */
        ds_graph *g = ds_graph_new(1);
        ds_node *x, *z = ds_model_build(m, g, 2, &x);
        ds_node *loss = ds_model_loss(m, g, z, ds_input(g, "y", ds_shape_of(1, 2)), NULL);
        CHECK(loss && !strcmp(ds_node_op(loss), "hier_softmax_cross_entropy"));
        float out[14], p[10], want[10];
        small_logits(out);
        small_logits(out + 7);
        CHECK(ds_model_probs(m, out, 2, 0, p) == 0 && ds_hier_probs_rows(ds_model_tree(m), out, 2, 0, want) == 0 &&
              !memcmp(p, want, sizeof p));
        ds_graph_free(g);
    }
    ds_model_free(m);
    m = ds_model_parse(NET "[dense]\nunits=5\n", "flat.cfg");
    CHECK(m && ds_model_outputs(m) == 5);
    if (m) {
        ds_graph *g = ds_graph_new(1);
        ds_node *x, *z = ds_model_build(m, g, 2, &x);
        ds_node *loss = ds_model_loss(m, g, z, ds_input(g, "y", ds_shape_of(1, 2)), NULL);
        CHECK(loss && !strcmp(ds_node_op(loss), "softmax_cross_entropy"));
        float out[5] = {1, 2, 3, 4, 5}, p[5], want[5];
        CHECK(ds_model_probs(m, out, 1, 0, p) == 0 && ds_softmax_rows(out, 1, 5, 0, want) == 0 &&
              !memcmp(p, want, sizeof p));
        ds_graph_free(g);
    }
    ds_model_free(m);
    /* [tree] may come before [net]; its errors name the model file's lines */
    m = ds_model_parse(SMALL_TREE NET "[dense]\nunits=7\n", "ok.cfg");
    CHECK(m && ds_model_tree(m));
    ds_model_free(m);
    m = ds_model_parse(NET "[dense]\nunits=7\n" "[tree]\nroot = a, b\na = 0, 1\nb = 2, 3, 5\n", "bad.cfg");
    CHECK(!m && strstr(ds_last_error(), "bad.cfg:9: [tree] b: class 5 is out of range (0..4; classes=5 in [net])"));
    m = ds_model_parse(NET SMALL_TREE "[dense]\nunits=7\n[tree]\nr=0,1\n", "bad.cfg");
    CHECK(!m && strstr(ds_last_error(), "bad.cfg:10: [tree]: second [tree] section (the first is at line 4)"));
    m = ds_model_parse(NET "[dense]\nunits=7\n[trees]\n", "bad.cfg");
    CHECK(!m && strstr(ds_last_error(), "unknown section (valid sections: net, input, output, tree, train, pretrain, group,"));
}

/* logits of the small tree (root: a b 4 | a: 0 1 | b: 2 3) with
 * P(a) = 0.5, P(b) = 0.3, P(4) = 0.2, P(0|a) = 0.25, P(2|b) = 0.6. */
static void small_logits(float *z)
{
    const float v[7] = {logf(0.5f), logf(0.3f), logf(0.2f), logf(0.25f), logf(0.75f), logf(0.6f), logf(0.4f)};
    for (int j = 0; j < 7; j++) z[j] = v[j] + 1.5f; /* a shift per block changes nothing */
}

static void test_probs(void)
{
    ds_class_tree *t = ds_class_tree_parse(SMALL_TREE, 5, "s.cfg");
    CHECK(t != NULL);
    if (!t) return;
    float z[7], cp[5], np[3];
    small_logits(z);
    CHECK(ds_hier_probs(t, z, cp, np) == 0);
    const double want[5] = {0.5 * 0.25, 0.5 * 0.75, 0.3 * 0.6, 0.3 * 0.4, 0.2};
    for (int c = 0; c < 5; c++) CHECK_NEAR(cp[c], want[c], 1e-6);
    CHECK_NEAR(np[0], 1, 1e-7);
    CHECK_NEAR(np[1], 0.5, 1e-6);
    CHECK_NEAR(np[2], 0.3, 1e-6);

    char buf[128];
    const char *names[5] = {"cat", "dog", "car", "bus", "tree"};
    CHECK(ds_hier_path_text(t, z, names, buf, sizeof buf) == 0 && !strcmp(buf, "a? 0.50 > dog 0.75"));
    CHECK(ds_hier_path_text(t, z, NULL, buf, sizeof buf) == 0 && !strcmp(buf, "a? 0.50 > 1 0.75"));
    /* greedy: a (0.5) then 0|a and 1|a tie at 0.5, the first wins; argmax P(c) is 4 (0.30 > 0.25) */
    float z2[7] = {logf(0.5f), logf(0.2f), logf(0.3f), 0, 0, 0, 0};
    CHECK(ds_hier_path_text(t, z2, names, buf, sizeof buf) == 0 && !strcmp(buf, "a? 0.50 > cat 0.50"));
    CHECK(ds_hier_probs(t, z2, cp, NULL) == 0 && cp[4] > cp[0]);
    /* a short buffer truncates, NUL-terminated */
    CHECK(ds_hier_path_text(t, z, names, buf, 6) == 0 && !strcmp(buf, "a? 0."));
    z2[5] = NAN;
    CHECK(ds_hier_probs(t, z2, cp, NULL) != 0 && strstr(ds_last_error(), "logit 5 of the class tree is NaN"));
    CHECK(ds_hier_path_text(t, z2, NULL, buf, sizeof buf) != 0);

    /* rows: each row as ds_hier_probs; errors name the sample */
    float zz[14], pp[10];
    small_logits(zz);
    small_logits(zz + 7);
    zz[7] = 3; /* raises P(a) in row 1 */
    CHECK(ds_hier_probs_rows(t, zz, 2, 0, pp) == 0);
    CHECK_NEAR(pp[1], want[1], 1e-6);
    CHECK(ds_hier_probs(t, zz + 7, cp, NULL) == 0 && !memcmp(cp, pp + 5, sizeof cp));
    zz[9] = INFINITY;
    CHECK(ds_hier_probs_rows(t, zz, 2, 40, pp) != 0 && strstr(ds_last_error(), "sample 41: the model's output 2"));

    /* the Fashion tree's class probabilities sum to 1 */
    ds_class_tree *f = ds_class_tree_parse(FASHION_TREE, 10, "f.cfg");
    ds_rng r;
    ds_rng_seed(&r, 5);
    float fz[13], fp[10], fn[4];
    ds_test_fill(fz, 13, -4, 4, &r);
    CHECK(f && ds_hier_probs(f, fz, fp, fn) == 0);
    double sum = 0;
    for (int c = 0; c < 10; c++) sum += fp[c];
    CHECK_NEAR(sum, 1, 1e-6);
    /* P(top) = P(T-shirt) + P(Pullover) + P(Coat) + P(Shirt) */
    CHECK_NEAR(fn[1], fp[0] + fp[2] + fp[4] + fp[6], 1e-6);
    ds_class_tree_free(f);
    ds_class_tree_free(t);
}

/* Graph: logits [n, L] input (with gradient), labels [n]; returns the loss. */
static ds_node *loss_graph(ds_graph *g, const ds_class_tree *t, int n, const float *w)
{
    ds_node *z = ds_input(g, "z", ds_shape_of(2, n, t->n_logits));
    ds_node_set_requires_grad(z, 1);
    return ds_hier_softmax_cross_entropy(g, z, ds_input(g, "y", ds_shape_of(1, n)), t, w);
}

static void test_loss(void)
{
    ds_class_tree *t = ds_class_tree_parse(SMALL_TREE, 5, "s.cfg");
    ds_graph *g = ds_graph_new(1);
    const float w[5] = {1, 2, 3, 0.5f, 1};
    ds_node *loss = loss_graph(g, t, 3, NULL);
    ds_class_tree_free(t); /* the op keeps its own copy */
    CHECK(loss && ds_graph_compile(g) == 0);
    if (!loss) return;
    float *z = ds_node_value(ds_graph_find(g, "z")), *y = ds_node_value(ds_graph_find(g, "y"));
    for (int i = 0; i < 3; i++) small_logits(z + 7 * i);
    y[0] = 1, y[1] = 2, y[2] = 4;
    CHECK(ds_graph_forward(g) == 0);
    double l1 = -log(0.5) - log(0.75), l2 = -log(0.3) - log(0.6), l4 = -log(0.2);
    CHECK_NEAR(ds_node_value(loss)[0], (l1 + l2 + l4) / 3, 1e-6);
    /* d/dz: (softmax − onehot)/N on the path's blocks, 0 elsewhere (row 2 reaches only the root) */
    ds_graph_zero_grad(g);
    CHECK(ds_graph_backward(g, loss, NULL) == 0);
    const float *dz = ds_node_grad(ds_graph_find(g, "z"));
    CHECK_NEAR(dz[0], (0.5 - 1) / 3, 1e-6);
    CHECK_NEAR(dz[3], 0.25 / 3, 1e-6);
    CHECK_NEAR(dz[4], (0.75 - 1) / 3, 1e-6);
    CHECK(dz[5] == 0 && dz[6] == 0);
    CHECK_NEAR(dz[7 + 1], (0.3 - 1) / 3, 1e-6);
    CHECK(dz[7 + 3] == 0 && dz[7 + 4] == 0);
    CHECK_NEAR(dz[14 + 2], (0.2 - 1) / 3, 1e-6);
    CHECK(dz[14 + 3] == 0 && dz[14 + 5] == 0);
    y[1] = 5;
    CHECK(ds_graph_forward(g) != 0 && strstr(ds_last_error(), "label 5 in row 1 is not a class index in 0..4"));
    y[1] = 1.5f;
    CHECK(ds_graph_forward(g) != 0 && strstr(ds_last_error(), "label 1.5 in row 1"));
    ds_graph_free(g);

    /* class weights: Σ wᵧ·loss / Σ wᵧ */
    t = ds_class_tree_parse(SMALL_TREE, 5, "s.cfg");
    g = ds_graph_new(1);
    loss = loss_graph(g, t, 3, w);
    CHECK(loss && ds_graph_compile(g) == 0);
    z = ds_node_value(ds_graph_find(g, "z")), y = ds_node_value(ds_graph_find(g, "y"));
    for (int i = 0; i < 3; i++) small_logits(z + 7 * i);
    y[0] = 1, y[1] = 2, y[2] = 4;
    CHECK(ds_graph_forward(g) == 0);
    CHECK_NEAR(ds_node_value(loss)[0], (2 * l1 + 3 * l2 + 1 * l4) / 6, 1e-6);
    ds_graph_free(g);

    /* wrong widths and a NULL tree are build errors */
    g = ds_graph_new(1);
    ds_node *bad = ds_hier_softmax_cross_entropy(g, ds_input(g, "z", ds_shape_of(2, 3, 5)),
                                                 ds_input(g, "y", ds_shape_of(1, 3)), t, NULL);
    CHECK(!bad && strstr(ds_last_error(), "logits 'z' [3, 5] need 7 columns"));
    CHECK(ds_graph_compile(g) != 0);
    ds_graph_free(g);
    g = ds_graph_new(1);
    bad = ds_hier_softmax_cross_entropy(g, ds_input(g, "z", ds_shape_of(2, 3, 7)),
                                        ds_input(g, "y", ds_shape_of(1, 4)), t, NULL);
    CHECK(!bad && strstr(ds_last_error(), "labels 'y' [4] need one class index per row"));
    ds_graph_free(g);
    g = ds_graph_new(1);
    bad = ds_hier_softmax_cross_entropy(g, ds_input(g, "z", ds_shape_of(2, 3, 7)),
                                        ds_input(g, "y", ds_shape_of(1, 3)), NULL, NULL);
    CHECK(!bad && strstr(ds_last_error(), "class tree is NULL") && ds_graph_compile(g) != 0);
    ds_graph_free(g);
    ds_class_tree_free(t);

    /* on the Fashion tree: loss = mean −log P(y) of ds_hier_probs, and the
     * gradient by finite differences (every class, weighted and not) */
    t = ds_class_tree_parse(FASHION_TREE, 10, "f.cfg");
    for (int weighted = 0; weighted < 2; weighted++) {
        const float fw[10] = {1, 0.5f, 2, 1, 3, 1, 0.25f, 1, 1.5f, 1};
        g = ds_graph_new(1);
        loss = loss_graph(g, t, 10, weighted ? fw : NULL);
        CHECK(loss && ds_graph_compile(g) == 0);
        ds_rng r;
        ds_rng_seed(&r, 9 + (uint64_t)weighted);
        z = ds_node_value(ds_graph_find(g, "z")), y = ds_node_value(ds_graph_find(g, "y"));
        ds_test_fill(z, 130, -3, 3, &r);
        for (int i = 0; i < 10; i++) y[i] = (float)((i * 7) % 10);
        CHECK(ds_graph_forward(g) == 0);
        double want = 0, wsum = 0;
        for (int i = 0; i < 10; i++) {
            float p[10];
            ds_hier_probs(t, z + 13 * i, p, NULL);
            double wi = weighted ? fw[(int)y[i]] : 1;
            want -= wi * log(p[(int)y[i]]);
            wsum += wi;
        }
        CHECK_NEAR(ds_node_value(loss)[0], want / wsum, 1e-5);
        ds_node *wrt[1] = {ds_graph_find(g, "z")};
        double err = ds_gradcheck(g, loss, wrt, 1, 1e-2f, 1e-4, 130);
        printf("ok   hier_softmax_cross_entropy gradcheck%s (worst %.2f x tol)\n", weighted ? " weighted" : "", err);
        CHECK(err <= 1);
        ds_graph_free(g);
    }
    ds_class_tree_free(t);
}

/* The hand-worked example of docs/design.md on the small tree:
 * (y, predicted) = (0,0) (0,1) (1,2) (2,2) (3,2) (4,4) (4,0) (1,1). */
static void test_metrics(void)
{
    ds_class_tree *t = ds_class_tree_parse(SMALL_TREE, 5, "s.cfg");
    const int y[8] = {0, 0, 1, 2, 3, 4, 4, 1}, pr[8] = {0, 1, 2, 2, 2, 4, 0, 1};
    float labels[8], probs[40];
    for (int i = 0; i < 8; i++) {
        labels[i] = (float)y[i];
        for (int c = 0; c < 5; c++) probs[5 * i + c] = c == pr[i] ? 0.9f : 0.025f;
    }
    ds_hier_metrics m;
    CHECK(ds_hier_metrics_compute(t, probs, labels, 8, &m) == 0);
    CHECK(m.n == 8 && m.levels == 2 && m.groups[0] == 3 && m.groups[1] == 5);
    /* level 1: groups a, b, 4; six of eight agree; F1 a 0.75, b 0.8, 4 2/3 */
    CHECK_NEAR(m.accuracy[0], 0.75, 1e-12);
    CHECK_NEAR(m.macro_f1[0], (0.75 + 0.8 + 2.0 / 3) / 3, 1e-12);
    /* level 2: the classes; F1 0.5 0.5 0.5 0 2/3 */
    CHECK_NEAR(m.accuracy[1], 0.5, 1e-12);
    CHECK_NEAR(m.macro_f1[1], (1.5 + 2.0 / 3) / 5, 1e-12);
    CHECK(m.leaf_errors == 4 && m.errors_in_parent == 2);
    CHECK_NEAR(m.in_parent_share, 0.5, 1e-12);
    /* root: rows true a b 4, columns predicted */
    static const int root[9] = {3, 1, 0, 0, 2, 0, 1, 0, 1}, a[4] = {1, 1, 0, 1}, b[4] = {1, 0, 1, 0};
    CHECK(!memcmp(m.node_confusion[0], root, sizeof root));
    CHECK(!memcmp(m.node_confusion[1], a, sizeof a));
    CHECK(!memcmp(m.node_confusion[2], b, sizeof b));
    /* the deepest level is the flat metrics */
    ds_metrics flat;
    CHECK(ds_metrics_compute(probs, labels, 8, 5, &flat) == 0);
    CHECK_NEAR(m.accuracy[1], flat.accuracy, 1e-12);
    CHECK_NEAR(m.macro_f1[1], flat.macro_f1, 1e-12);
    ds_metrics_free(&flat);
    char text[1024];
    const char *names[5] = {"cat", "dog", "car", "bus", "tree"};
    CHECK(ds_hier_metrics_text(t, &m, names, text, sizeof text) == 0);
    CHECK(!strcmp(text, "level 1, 3 groups (tree, a, b): accuracy 0.7500, macro F1 0.7389\n"
                        "level 2, 5 groups (cat, dog, car, bus, tree): accuracy 0.5000, macro F1 0.4333\n"
                        "question 'root': the same answer for 0.7500 of 8 samples that reach it on both paths\n"
                        "question 'a': the same answer for 0.6667 of 3 samples that reach it on both paths\n"
                        "question 'b': the same answer for 0.5000 of 2 samples that reach it on both paths\n"
                        "mistakes inside their parent: 2 of 4 (50.0 %)\n"));
    CHECK(ds_hier_metrics_text(t, &m, NULL, text, 20) == 0 && !strcmp(text, "level 1, 3 groups ("));
    ds_hier_metrics_free(&m);

    /* no error: the share is NaN */
    CHECK(ds_hier_metrics_compute(t, probs, (const float[]){0}, 1, &m) == 0 && m.leaf_errors == 0 &&
          isnan(m.in_parent_share) && m.accuracy[0] == 1 && m.accuracy[1] == 1);
    ds_hier_metrics_free(&m);
    labels[3] = 7;
    CHECK(ds_hier_metrics_compute(t, probs, labels, 8, &m) != 0 &&
          strstr(ds_last_error(), "label 7 of sample 3 is not a class in 0..4"));
    labels[3] = 2;
    probs[12] = NAN;
    CHECK(ds_hier_metrics_compute(t, probs, labels, 8, &m) != 0 &&
          strstr(ds_last_error(), "sample 2: the probability of class 2 is NaN"));
    CHECK(ds_hier_metrics_compute(t, probs, labels, 0, &m) != 0);
    ds_class_tree_free(t);
}

/* Five Gaussian blobs in 4-D learnt through the small tree by an MLP from a
 * model file: the loss falls and the tree's argmax class is right. */
static void test_learns(void)
{
    ds_model *m = ds_model_parse(NET SMALL_TREE "[dense]\nunits=16\nactivation=relu\n[dense]\nunits=7\n", "mlp.cfg");
    CHECK(m != NULL);
    if (!m) return;
    enum { N = 200 };
    ds_graph *g = ds_graph_new(2);
    ds_node *x, *z = ds_model_build(m, g, N, &x);
    ds_node *y = ds_input(g, "y", ds_shape_of(1, N));
    ds_node *loss = ds_hier_softmax_cross_entropy(g, z, y, ds_model_tree(m), NULL);
    CHECK(loss && ds_graph_compile(g) == 0);
    ds_rng r;
    ds_rng_seed(&r, 3);
    float *xv = ds_node_value(x), *yv = ds_node_value(y);
    for (int i = 0; i < N; i++) {
        int c = i % 5;
        yv[i] = (float)c;
        for (int f = 0; f < 4; f++) xv[4 * i + f] = 0.5f * ds_rng_normal(&r) + (f == c % 4 ? 2.0f : 0) + (c == 4 ? -2.0f : 0);
    }
    ds_optim_cfg oc = {.kind = DS_ADAM, .lr = 0.02f};
    ds_optim *o = ds_optim_new(g, &oc);
    ds_graph_set_training(g, 1);
    float first = 0, last = 0;
    int fails = 0;
    for (int step = 0; step < 150; step++) {
        ds_graph_zero_grad(g);
        fails += ds_graph_forward(g) != 0 || ds_graph_backward(g, loss, NULL) != 0 || ds_optim_step(o) != 0;
        if (!step) first = ds_node_value(loss)[0];
        last = ds_node_value(loss)[0];
    }
    CHECK(fails == 0);
    ds_graph_forward(g);
    float *probs = malloc((size_t)N * 5 * sizeof *probs);
    CHECK(ds_hier_probs_rows(ds_model_tree(m), ds_node_value(z), N, 0, probs) == 0);
    ds_hier_metrics hm;
    CHECK(ds_hier_metrics_compute(ds_model_tree(m), probs, yv, N, &hm) == 0);
    printf("ok   small tree MLP: loss %.3f -> %.3f, level accuracy %.3f %.3f\n", first, last, hm.accuracy[0],
           hm.accuracy[1]);
    CHECK(last < 0.25f * first && hm.accuracy[1] > 0.95 && hm.accuracy[0] >= hm.accuracy[1]);
    ds_hier_metrics_free(&hm);
    free(probs);
    ds_optim_free(o);
    ds_graph_free(g);
    ds_model_free(m);
}

/* models/lenet-hier.cfg, one epoch on the first 2,000 Fashion-MNIST
 * training images, evaluated on the first 1,000 test images: a smoke test
 * that the file trains through the tree (not a measured accuracy). */
static void test_lenet_fashion(void)
{
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
    printf("skip lenet-hier on Fashion-MNIST (6 minutes unoptimised or under the sanitizers; 3 s in Release)\n");
    return;
#endif
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0 && !getenv("DS_FASHION_MNIST")) {
        printf("skip lenet-hier on Fashion-MNIST (not installed)\n");
        return;
    }
    char path[512];
    zoo_path("lenet-hier.cfg", path, sizeof path);
    ds_model *m = ds_model_load(path);
    ds_dataset tr = {0}, te = {0};
    int ok = m && ds_fashion_mnist_load(NULL, 1, &tr) == 0 && ds_fashion_mnist_load(NULL, 0, &te) == 0;
    CHECK(ok);
    if (!ok) {
        ds_dataset_free(&tr);
        ds_model_free(m);
        return;
    }
    const ds_class_tree *t = ds_model_tree(m);
    enum { B = 50, TRAIN = 2000, TEST = 1000 };
    ds_graph *g = ds_graph_new(1);
    ds_node *x, *z = ds_model_build(m, g, B, &x), *y = ds_input(g, "y", ds_shape_of(1, B));
    ds_node *loss = ds_hier_softmax_cross_entropy(g, z, y, t, NULL);
    CHECK(loss && ds_graph_compile(g) == 0);
    ds_optim_cfg oc = ds_model_train_cfg(m)->optim;
    oc.schedule = (ds_schedule){0}; /* the file's cosine spans a whole run; one epoch here at its rate */
    ds_optim *o = ds_optim_new(g, &oc);
    size_t px = 28 * 28;
    double first = 0, last = 0;
    ds_graph_set_training(g, 1);
    for (int b = 0; b < TRAIN / B; b++) {
        memcpy(ds_node_value(x), tr.x + (size_t)b * B * px, B * px * sizeof(float));
        memcpy(ds_node_value(y), tr.y + (size_t)b * B, B * sizeof(float));
        ds_graph_zero_grad(g);
        CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, loss, NULL) == 0 && ds_optim_step(o) == 0);
        double l = ds_node_value(loss)[0];
        if (b < 4) first += l / 4;
        if (b >= TRAIN / B - 4) last += l / 4;
    }
    ds_graph_set_training(g, 0);
    float *probs = malloc((size_t)TEST * 10 * sizeof *probs);
    for (int b = 0; b < TEST / B; b++) {
        memcpy(ds_node_value(x), te.x + (size_t)b * B * px, B * px * sizeof(float));
        CHECK(ds_graph_forward(g) == 0);
        CHECK(ds_hier_probs_rows(t, ds_node_value(z), B, b * B, probs + (size_t)b * B * 10) == 0);
    }
    ds_hier_metrics hm;
    CHECK(ds_hier_metrics_compute(t, probs, te.y, TEST, &hm) == 0);
    char path_text[256];
    ds_hier_path_text(t, ds_node_value(z), (const char *const[]){"T-shirt/top", "Trouser", "Pullover", "Dress",
                      "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}, path_text, sizeof path_text);
    printf("ok   lenet-hier, 1 epoch of 2000: loss %.3f -> %.3f; test[0:1000] accuracy by level %.3f %.3f %.3f, "
           "mistakes inside their parent %.2f; test image 950: %s\n",
           first, last, hm.accuracy[0], hm.accuracy[1], hm.accuracy[2], hm.in_parent_share, path_text);
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    char table[2048];
    CHECK(ds_hier_metrics_text(t, &hm, fashion, table, sizeof table) == 0);
    printf("%s", table);
    CHECK(last < first && hm.accuracy[2] > 0.5 && hm.accuracy[0] >= hm.accuracy[2]);
    ds_hier_metrics_free(&hm);
    free(probs);
    ds_optim_free(o);
    ds_graph_free(g);
    ds_dataset_free(&tr);
    ds_dataset_free(&te);
    ds_model_free(m);
}

int main(void)
{
    test_parse();
    test_model();
    test_probs();
    test_loss();
    test_metrics();
    test_learns();
    test_lenet_fashion();
    return ds_test_summary("hier");
}
