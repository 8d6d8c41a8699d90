/* test_attack.c — input gradients through the normalisation against finite
 * differences, the relu backward rules, FGSM/PGD balls and clipping, PGD at
 * eps 0 returning the input exactly, adversarial training through the
 * trainer's pass hook (at eps 0 and alpha 0.5 it is plain training up to
 * rounding: two half-weighted passes sum to one), and the errors. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { B = 5, C = 2, H = 6, W = 6, K = 3 };
#define SAMPLE (C * H * W)

static const char *MODEL = "[net]\ninput = 2,6,6\nclasses = 3\n"
                           "[conv]\nfilters = 4\nsize = 3\npad = 1\nactivation = relu\n"
                           "[maxpool]\nsize = 2\n"
                           "[dense]\nunits = 6\nactivation = relu\n"
                           "[dense]\nunits = 3\n"
                           "[train]\noptimizer = sgd\nlr = 0.1\nbatch = 5\n";

/* smooth (tanh, average pooling), so that central differences are exact to O(h²) */
static const char *SMOOTH = "[net]\ninput = 2,6,6\nclasses = 3\n"
                            "[conv]\nfilters = 4\nsize = 3\npad = 1\nactivation = tanh\n"
                            "[avgpool]\nsize = 2\n"
                            "[dense]\nunits = 6\nactivation = tanh\n"
                            "[dense]\nunits = 3\n";

typedef struct {
    ds_model *m;
    ds_graph *g;
    ds_program p;
} net;

static int build_text(net *n, const char *text, int input_grad, int fuse, uint64_t seed)
{
    memset(n, 0, sizeof *n);
    n->m = ds_model_parse(text, "test");
    n->g = ds_graph_new(seed);
    if (!n->m || !n->g || ds_model_build_program(n->m, n->g, B, &(ds_program_opts){0}, &n->p) != 0) return -1;
    if (input_grad) ds_node_set_requires_grad(n->p.feeds[0], 1);
    if (!fuse) ds_graph_set_fusion(n->g, 0);
    return ds_graph_compile(n->g);
}

static int build(net *n, int input_grad, int fuse, uint64_t seed) { return build_text(n, MODEL, input_grad, fuse, seed); }

static void destroy(net *n)
{
    ds_graph_free(n->g);
    ds_model_free(n->m);
}

static float mean_c[C] = {0.3f, -0.2f}, std_c[C] = {0.5f, 2.0f};

/* the score or the summed loss at raw x, by a plain forward */
static double objective(net *n, const ds_norm *nm, const float *x, const float *cls, int of)
{
    ds_feed_normalized(&n->p, nm, x, B);
    memcpy(ds_node_value(n->p.labels), cls, B * sizeof *cls);
    ds_graph_forward(n->g);
    const float *z = ds_node_value(n->p.heads[0].out);
    if (of == DS_GRAD_LOSS) return (double)ds_node_value(n->p.heads[0].loss)[0] * B;
    double s = 0;
    for (int r = 0; r < B; r++) s += z[r * K + (int)cls[r]];
    return s;
}

static void test_input_grad(void)
{
    net n;
    CHECK(build_text(&n, SMOOTH, 1, 1, 7) == 0);
    ds_graph_set_training(n.g, 0);
    ds_norm nm = {C, mean_c, std_c};
    float x[B * SAMPLE], g[B * SAMPLE], cls[B] = {0, 1, 2, 1, 0};
    ds_rng r;
    ds_rng_seed(&r, 3);
    ds_test_fill(x, B * SAMPLE, -1, 1, &r);
    for (int of = DS_GRAD_SCORE; of <= DS_GRAD_LOSS; of++) {
        CHECK(ds_input_grad(&n.p, &nm, x, B, cls, of, g) == 0);
        double worst = 0, scale = 0;
        for (int i = 0; i < B * SAMPLE; i += 7) {
            float keep = x[i];
            double h = 1e-2;
            x[i] = keep + (float)h;
            double up = objective(&n, &nm, x, cls, of);
            x[i] = keep - (float)h;
            double dn = objective(&n, &nm, x, cls, of);
            x[i] = keep;
            double fd = (up - dn) / (2 * h);
            if (fabs(fd - g[i]) > worst) worst = fabs(fd - g[i]);
            if (fabs(fd) > scale) scale = fabs(fd);
        }
        CHECK(scale > 0);
        CHECK(worst <= 1e-3 * scale + 1e-5);
    }
    /* fewer rows than the compiled batch: the same rows' gradients (the batch's own size, not the compiled one) */
    float g2[B * SAMPLE];
    CHECK(ds_input_grad(&n.p, &nm, x, B, cls, DS_GRAD_SCORE, g) == 0);
    CHECK(ds_input_grad(&n.p, &nm, x, 2, cls, DS_GRAD_SCORE, g2) == 0);
    double gap = 0;
    for (int i = 0; i < 2 * SAMPLE; i++) gap = fmax(gap, fabs(g[i] - g2[i]));
    CHECK(gap < 1e-6);
    /* parameter gradients untouched */
    ds_node *w = ds_graph_param(n.g, 0);
    int zero = 1;
    for (size_t i = 0; w && i < ds_node_numel(w); i++) zero &= ds_node_grad(w) == NULL || ds_node_grad(w)[i] == 0;
    CHECK(zero);
    destroy(&n);
}

/* guided backprop and the deconvnet rule, on one relu by hand */
static void test_relu_rules(void)
{
    for (int fuse = 0; fuse < 2; fuse++) {
        ds_graph *g = ds_graph_new(1);
        ds_node *x = ds_input(g, "x", ds_shape_of(2, 1, 4));
        ds_node_set_requires_grad(x, 1);
        ds_node *w = ds_param(g, "w", ds_shape_of(2, 4, 4), (ds_init){DS_INIT_ZEROS, 0, 0});
        ds_node *y = ds_relu(g, ds_linear(g, x, w, NULL));
        if (!fuse) ds_graph_set_fusion(g, 0);
        CHECK(ds_graph_compile(g) == 0);
        float *wv = ds_node_value(w);
        for (int i = 0; i < 4; i++) wv[i * 4 + i] = 1; /* identity: y = relu(x) */
        const float xv[4] = {1, -1, 2, -2}, dy[4] = {-3, 4, 5, -6};
        const float want[3][4] = {{-3, 0, 5, 0}, {0, 0, 5, 0}, {0, 4, 5, 0}};
        memcpy(ds_node_value(x), xv, sizeof xv);
        for (int rule = 0; rule < 3; rule++) {
            int rc = ds_graph_set_relu_backward(g, rule);
            CHECK(rc == 0);
            ds_graph_zero_grad(g);
            CHECK(ds_graph_forward(g) == 0 && ds_graph_backward(g, y, dy) == 0);
            for (int i = 0; i < 4; i++) CHECK_NEAR(ds_node_grad(x)[i], want[rule][i], 0);
        }
        CHECK(ds_graph_set_relu_backward(g, 7) != 0);
        ds_graph_free(g);
    }
}

static void test_balls(void)
{
    net n;
    CHECK(build(&n, 1, 1, 9) == 0);
    ds_norm nm = {C, mean_c, std_c};
    float x[B * SAMPLE], xa[B * SAMPLE], cls[B] = {0, 1, 2, 1, 0};
    int wrong[B], clean_wrong[B];
    ds_rng r;
    ds_rng_seed(&r, 5);
    ds_test_fill(x, B * SAMPLE, 0, 1, &r);
    /* the clean verdict */
    ds_attack_cfg c0 = {.method = DS_ATTACK_FGSM, .eps = 0};
    ds_attacker *a = ds_attacker_new(&n.p, &nm, &c0);
    CHECK(a && ds_attacker_run(a, x, cls, B, &r, xa, clean_wrong) == 0);
    CHECK(!memcmp(xa, x, sizeof x));
    ds_attacker_free(a);
    for (int l2 = 0; l2 < 2; l2++)
        for (int method = 0; method < 2; method++) {
            ds_attack_cfg c = {.method = method, .l2 = l2, .eps = l2 ? 1.0f : 0.1f, .steps = 5, .random_start = 1,
                               .restarts = 2, .clip = 1, .lo = 0, .hi = 1};
            CHECK((a = ds_attacker_new(&n.p, &nm, &c)) != NULL);
            CHECK(ds_attacker_run(a, x, cls, B, &r, xa, wrong) == 0);
            int inside = 1;
            for (int s = 0; s < B; s++) {
                double sq = 0;
                for (int i = 0; i < SAMPLE; i++) {
                    float d = xa[s * SAMPLE + i] - x[s * SAMPLE + i];
                    sq += (double)d * d;
                    inside &= xa[s * SAMPLE + i] >= 0 && xa[s * SAMPLE + i] <= 1;
                    if (!l2) inside &= fabsf(d) <= c.eps * (1 + 1e-6f);
                }
                if (l2) inside &= sqrt(sq) <= c.eps * (1 + 1e-5);
            }
            CHECK(inside);
            ds_attacker_free(a);
        }
    /* PGD at eps 0: the input itself, and the clean verdict */
    ds_attack_cfg z = {.method = DS_ATTACK_PGD, .eps = 0, .steps = 10, .random_start = 1, .restarts = 3, .clip = 1, .hi = 1};
    CHECK((a = ds_attacker_new(&n.p, &nm, &z)) != NULL);
    CHECK(ds_attacker_run(a, x, cls, B, &r, xa, wrong) == 0);
    CHECK(!memcmp(xa, x, sizeof x));
    CHECK(!memcmp(wrong, clean_wrong, sizeof wrong));
    ds_attacker_free(a);
    /* errors */
    ds_attack_cfg bad = {.method = DS_ATTACK_FGSM, .eps = -0.1f};
    CHECK(ds_attacker_new(&n.p, &nm, &bad) == NULL && strstr(ds_last_error(), "eps"));
    bad = (ds_attack_cfg){.method = DS_ATTACK_PGD, .eps = 0.1f, .steps = 0};
    CHECK(ds_attacker_new(&n.p, &nm, &bad) == NULL);
    destroy(&n);
    net plain;
    CHECK(build(&plain, 0, 1, 9) == 0); /* no input gradient compiled */
    CHECK(ds_attacker_new(&plain.p, &nm, &c0) == NULL && strstr(ds_last_error(), "gradient"));
    destroy(&plain);
}

typedef struct {
    float x[4][B * SAMPLE], y[4][B];
} batches;

static int feed_batch(net *n, const batches *d, int k)
{
    memcpy(ds_node_value(n->p.feeds[0]), d->x[k], sizeof d->x[k]);
    memcpy(ds_node_value(n->p.labels), d->y[k], sizeof d->y[k]);
    return 0;
}

/* eps 0, alpha 0.5: two half-weighted passes on the same batch are one plain step, bit for bit */
static void test_adversarial_training(void)
{
    batches d;
    ds_rng r;
    ds_rng_seed(&r, 13);
    for (int k = 0; k < 4; k++) {
        ds_test_fill(d.x[k], B * SAMPLE, -1, 1, &r);
        for (int i = 0; i < B; i++) d.y[k][i] = (float)((i + k) % K);
    }
    net a, b;
    CHECK(build(&a, 0, 1, 21) == 0 && build(&b, 1, 1, 21) == 0);
    ds_optim_cfg oc = {.kind = DS_SGD, .lr = 0.1f, .momentum = 0.9f};
    ds_optim *oa = ds_optim_new(a.g, &oc), *ob = ds_optim_new(b.g, &oc);
    ds_trainer *ta = ds_trainer_new(&a.p, &oa, 1, NULL, NULL);
    ds_attack_cfg c = {.method = DS_ATTACK_FGSM, .eps = 0};
    ds_adv_trainer *adv = ds_adv_trainer_new(&b.p, NULL, &c, 0.5f, 1);
    ds_trainer_hooks h = {.user = adv, .pass = ds_adv_pass};
    ds_trainer *tb = ds_trainer_new(&b.p, &ob, 1, NULL, &h);
    CHECK(ta && tb && adv);
    ds_graph_set_training(a.g, 1), ds_graph_set_training(b.g, 1);
    double la, lb;
    for (int s = 0; s < 8; s++) {
        feed_batch(&a, &d, s % 4), feed_batch(&b, &d, s % 4);
        CHECK(ds_trainer_step(ta, B, &la) == 0 && ds_trainer_step(tb, B, &lb) == 0);
        CHECK_NEAR(la, lb, 1e-6 * fabs(la));
    }
    /* not bit for bit: a GEMM adds the second half to the first in another order than one sum */
    double worst = 0;
    for (int i = 0; i < ds_graph_num_params(a.g); i++) {
        ds_node *pa = ds_graph_param(a.g, i), *pb = ds_graph_param(b.g, i);
        for (size_t j = 0; j < ds_node_numel(pa); j++) {
            double d = fabs(ds_node_value(pa)[j] - ds_node_value(pb)[j]) / (fabs(ds_node_value(pa)[j]) + 1e-3);
            if (d > worst) worst = d;
        }
    }
    CHECK(worst < 1e-5);
    /* eps > 0: the adversarial pass changes the step, and the loss goes up on the attacked batch */
    ds_adv_trainer_free(adv);
    c.eps = 0.2f;
    CHECK((adv = ds_adv_trainer_new(&b.p, NULL, &c, 0.0f, 1)) != NULL);
    ds_trainer_free(tb);
    h.user = adv;
    tb = ds_trainer_new(&b.p, &ob, 1, NULL, &h);
    feed_batch(&a, &d, 0), feed_batch(&b, &d, 0);
    ds_graph_set_training(a.g, 0);
    CHECK(ds_graph_forward(a.g) == 0);
    double clean = ds_node_value(a.p.loss)[0];
    CHECK(ds_trainer_step(tb, B, &lb) == 0);
    CHECK(lb > clean);
    /* the training passes ran without the input's gradient; the attack turns it on for itself */
    CHECK(!ds_graph_input_grad(b.p.feeds[0]));
    CHECK(ds_trainer_step(tb, B, &lb) == 0);
    CHECK(ds_adv_trainer_new(&b.p, NULL, &c, 1.0f, 1) == NULL); /* alpha 1 trains on no adversarial example */
    ds_trainer_free(ta), ds_trainer_free(tb);
    ds_adv_trainer_free(adv);
    ds_optim_free(oa), ds_optim_free(ob);
    destroy(&a), destroy(&b);
}

/* a [train] adversarial section parses, and its mistakes are errors naming the key */
static void test_model_keys(void)
{
    char text[2048];
    snprintf(text, sizeof text, "%sadversarial = pgd\nadversarial_eps = 0.3\nadversarial_steps = 40\n"
                                "adversarial_clip = 0,1\n", MODEL);
    ds_model *m = ds_model_parse(text, "adv.cfg");
    CHECK(m != NULL);
    if (m) {
        const ds_train_cfg *t = ds_model_train_cfg(m);
        CHECK(t->adversarial == 2 && t->adv.method == DS_ATTACK_PGD && t->adv.steps == 40);
        CHECK_NEAR(t->adv.eps, 0.3, 1e-7);
        CHECK(t->adv.clip && t->adv.lo == 0 && t->adv.hi == 1 && !t->adv_clip_auto);
        CHECK_NEAR(t->adv_alpha, 0, 0); /* Madry et al.'s default */
        ds_model_free(m);
    }
    snprintf(text, sizeof text, "%sadversarial = fgsm\nadversarial_eps = 0.1\n", MODEL);
    CHECK((m = ds_model_parse(text, "adv.cfg")) != NULL);
    if (m) {
        CHECK_NEAR(ds_model_train_cfg(m)->adv_alpha, 0.5, 0);
        CHECK(ds_model_train_cfg(m)->adv_clip_auto);
        ds_model_free(m);
    }
    const char *bad[] = {"adversarial = fgsm\n", "adversarial = fgsm\nadversarial_eps = -1\n",
                         "adversarial = fgsm\nadversarial_eps = 0.1\nadversarial_steps = 3\n",
                         "adversarial_eps = 0.1\n", "adversarial = pgd\nadversarial_eps = 0.1\nadversarial_clip = 1,0\n",
                         "adversarial = pgd\nadversarial_eps = 0.1\nadversarial_alpha = 1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "%s%s", MODEL, bad[i]);
        m = ds_model_parse(text, "adv.cfg");
        CHECK(m == NULL && strstr(ds_last_error(), "adv.cfg:") && strstr(ds_last_error(), "adversarial"));
        ds_model_free(m);
    }
}

int main(void)
{
    test_input_grad();
    test_relu_rules();
    test_balls();
    test_adversarial_training();
    test_model_keys();
    return ds_test_summary("attack");
}
