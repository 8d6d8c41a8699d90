/* test_groups.c — parameter groups: a frozen group stays bit-identical while
 * the rest trains, its gradients are switched off, overlap and no-match
 * errors, no_decay, per-group rates and schedules, checkpoint resume with
 * groups, and [group] / no_decay in model files. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { B = 6, IN = 4, HID = 5, OUT = 3 };

/* x [B, IN] → d1 → (bn) → relu → d2 → softmax cross-entropy */
typedef struct net {
    ds_graph *g;
    ds_node *x, *y, *h, *loss;
    ds_node *w1, *b1, *w2, *b2, *gamma, *beta;
} net;

static net build(int with_bn)
{
    net n = {0};
    n.g = ds_graph_new(3);
    n.x = ds_input(n.g, "x", ds_shape_of(2, B, IN));
    ds_node *h = ds_nn_dense(n.g, "d1", n.x, HID, (ds_init){0}, 1);
    if (with_bn) h = ds_nn_batchnorm(n.g, "bn", h);
    n.h = ds_relu(n.g, h);
    ds_node *logits = ds_nn_dense(n.g, "d2", n.h, OUT, (ds_init){0}, 1);
    n.y = ds_input(n.g, "y", ds_shape_of(1, B));
    n.loss = ds_softmax_cross_entropy(n.g, logits, n.y, NULL);
    CHECK(ds_graph_compile(n.g) == 0);
    n.w1 = ds_graph_find(n.g, "d1.weight");
    n.b1 = ds_graph_find(n.g, "d1.bias");
    n.w2 = ds_graph_find(n.g, "d2.weight");
    n.b2 = ds_graph_find(n.g, "d2.bias");
    n.gamma = ds_graph_find(n.g, "bn.weight");
    n.beta = ds_graph_find(n.g, "bn.bias");
    ds_rng r;
    ds_rng_seed(&r, 11);
    ds_test_fill(ds_node_value(n.x), ds_node_numel(n.x), -1, 1, &r);
    for (int i = 0; i < B; i++) ds_node_value(n.y)[i] = (float)(i % OUT);
    return n;
}

static int train_step(net *n, ds_optim *o)
{
    ds_graph_zero_grad(n->g);
    return ds_graph_set_training(n->g, 1), ds_graph_forward(n->g) || ds_graph_backward(n->g, n->loss, NULL) ||
                                               ds_optim_step(o);
}

static float *copy_of(ds_node *p)
{
    float *c = malloc(ds_node_numel(p) * sizeof *c);
    memcpy(c, ds_node_value(p), ds_node_numel(p) * sizeof *c);
    return c;
}

static int same(ds_node *p, const float *c) { return !memcmp(ds_node_value(p), c, ds_node_numel(p) * sizeof *c); }

/* The Done-when test: 10 Adam steps with weight decay; d1 frozen. */
static void test_frozen(void)
{
    net n = build(0), ref = build(0);
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 0.01f, .weight_decay = 0.1f};
    ds_param_group frozen = {.params = "d1", .frozen = 1};
    ds_optim *o = ds_optim_new_groups(n.g, &cfg, &frozen, 1, 0);
    CHECK(o != NULL);
    ds_optim *oref = ds_optim_new(ref.g, &cfg);
    CHECK(ds_optim_num_groups(o) == 2 && ds_optim_num_groups(oref) == 1);
    CHECK(ds_optim_param_group(o, n.w1) == 0 && ds_optim_param_group(o, n.b1) == 0);
    CHECK(ds_optim_param_group(o, n.w2) == 1 && ds_optim_param_group(o, n.b2) == 1);
    CHECK(ds_optim_param_group(o, n.x) == -1);
    CHECK(ds_optim_group_lr(o, 0) == 0.0f && ds_optim_group_lr(o, 1) == 0.01f);
    CHECK(ds_optim_param_weight_decay(o, n.w1) == 0.0f && ds_optim_param_weight_decay(o, n.w2) == 0.1f);
    /* no gradient for d1 and none through the relu that only it needed */
    CHECK(ds_node_grad(n.w1) == NULL && ds_node_grad(n.b1) == NULL && ds_node_grad(n.h) == NULL);
    CHECK(ds_node_grad(n.w2) != NULL && ds_node_grad(ref.h) != NULL);

    float *w1 = copy_of(n.w1), *b1 = copy_of(n.b1), *w2 = copy_of(n.w2), *b2 = copy_of(n.b2);
    CHECK(same(ref.w2, w2) && same(ref.w1, w1)); /* same seed: same initial weights */
    for (int s = 0; s < 10; s++) {
        CHECK(train_step(&n, o) == 0);
        if (s == 0) { /* d2's gradient is the unfrozen net's, bit for bit */
            ds_graph_zero_grad(ref.g);
            ds_graph_forward(ref.g);
            ds_graph_backward(ref.g, ref.loss, NULL);
            CHECK(!memcmp(ds_node_grad(n.w2), ds_node_grad(ref.w2), sizeof(float) * HID * OUT));
            CHECK(ds_grad_norm(n.g) < ds_grad_norm(ref.g)); /* d1's gradients are not counted */
        }
    }
    CHECK(same(n.w1, w1) && same(n.b1, b1));   /* frozen: bit-identical */
    CHECK(!same(n.w2, w2) && !same(n.b2, b2)); /* the rest trained */
    CHECK(ds_optim_steps(o) == 10);

    /* unfreezing brings the gradient buffers back */
    CHECK(ds_graph_freeze(n.g, n.w1, 0) == 0 && ds_graph_freeze(n.g, n.b1, 0) == 0);
    CHECK(ds_node_grad(n.w1) != NULL && ds_node_grad(n.h) != NULL);
    CHECK(ds_graph_freeze(n.g, n.x, 1) == -1 && strstr(ds_last_error(), "'x' is not a trainable parameter"));

    /* everything frozen: refused, and nothing was frozen by the attempt */
    ds_param_group all = {.params = "*", .frozen = 1};
    CHECK(ds_optim_new_groups(n.g, &cfg, &all, 1, 0) == NULL &&
          strstr(ds_last_error(), "every trainable parameter is in a frozen group"));
    CHECK(ds_node_grad(n.w2) != NULL);
    free(w1), free(b1), free(w2), free(b2);
    ds_optim_free(o), ds_optim_free(oref);
    ds_graph_free(n.g), ds_graph_free(ref.g);
}

static void test_errors(void)
{
    net n = build(1);
    ds_optim_cfg cfg = {.kind = DS_SGD, .lr = 0.1f};
    ds_param_group two[2] = {{.params = "d1"}, {.params = "d2, *.bias", .name = "m.cfg:9: [group]"}};
    CHECK(ds_optim_new_groups(n.g, &cfg, two, 2, 0) == NULL);
    CHECK(strstr(ds_last_error(), "m.cfg:9: [group] params: parameter 'd1.bias' (pattern '*.bias') is also "
                                  "in ds_param_group[0] (pattern 'd1')") != NULL);
    ds_param_group none = {.params = "d1, d9", .name = "m.cfg:4: [group]"};
    CHECK(ds_optim_new_groups(n.g, &cfg, &none, 1, 0) == NULL);
    CHECK(strstr(ds_last_error(), "m.cfg:4: [group] params: pattern 'd9' matches no trainable parameter "
                                  "(they are: d1.weight, d1.bias, bn.weight, bn.bias, d2.weight, d2.bias)") != NULL);
    ds_param_group empty = {.params = "d1,,d2"};
    CHECK(ds_optim_new_groups(n.g, &cfg, &empty, 1, 0) == NULL && strstr(ds_last_error(), "empty pattern"));
    ds_param_group nul = {0};
    CHECK(ds_optim_new_groups(n.g, &cfg, &nul, 1, 0) == NULL && strstr(ds_last_error(), "params= is required"));
    ds_param_group badlr = {.params = "d1", .set = DS_PG_LR, .lr = -1};
    CHECK(ds_optim_new_groups(n.g, &cfg, &badlr, 1, 0) == NULL && strstr(ds_last_error(), "lr: must be > 0"));
    ds_param_group fz = {.params = "d1", .set = DS_PG_LR, .lr = 1, .frozen = 1};
    CHECK(ds_optim_new_groups(n.g, &cfg, &fz, 1, 0) == NULL && strstr(ds_last_error(), "a frozen group"));
    ds_param_group bs = {.params = "d1", .set = DS_PG_SCHED, .schedule = {.kind = DS_SCHED_STEP}};
    CHECK(ds_optim_new_groups(n.g, &cfg, &bs, 1, 0) == NULL &&
          strstr(ds_last_error(), "ds_param_group[0]: optimizer: schedule.step_size"));
    CHECK(ds_optim_new_groups(n.g, &cfg, NULL, 0, 8) == NULL && strstr(ds_last_error(), "no_decay"));
    /* a parameter listed twice by one group is not an overlap */
    ds_param_group twice = {.params = "d1, d1.weight, d*"};
    ds_optim *o = ds_optim_new_groups(n.g, &cfg, &twice, 1, 0);
    CHECK(o && ds_optim_param_group(o, n.w2) == 0 && ds_optim_param_group(o, n.gamma) == 1);
    ds_optim_free(o);
    ds_graph_free(n.g);
}

/* Pattern forms: layer names and globs on them; dotted patterns on names. */
static void test_patterns(void)
{
    net n = build(1);
    ds_optim_cfg cfg = {.kind = DS_SGD, .lr = 0.1f};
    struct {
        const char *pat;
        int w1, b1, gamma, beta, w2, b2; /* 1: in the group */
    } cases[] = {
        {"d1", 1, 1, 0, 0, 0, 0},          {"d*", 1, 1, 0, 0, 1, 1},
        {"*.bias", 0, 1, 0, 1, 0, 1},      {"*.weight", 1, 0, 1, 0, 1, 0},
        {"bn, d2.weight", 0, 0, 1, 1, 1, 0}, {"d?", 1, 1, 0, 0, 1, 1},
        {"[b]*", 0, 0, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ds_param_group gr = {.params = cases[i].pat};
        ds_optim *o = ds_optim_new_groups(n.g, &cfg, &gr, 1, 0);
        CHECK(o != NULL);
        int got[6] = {ds_optim_param_group(o, n.w1) == 0,    ds_optim_param_group(o, n.b1) == 0,
                      ds_optim_param_group(o, n.gamma) == 0, ds_optim_param_group(o, n.beta) == 0,
                      ds_optim_param_group(o, n.w2) == 0,    ds_optim_param_group(o, n.b2) == 0};
        int want[6] = {cases[i].w1, cases[i].b1, cases[i].gamma, cases[i].beta, cases[i].w2, cases[i].b2};
        if (memcmp(got, want, sizeof got)) fprintf(stderr, "pattern '%s'\n", cases[i].pat);
        CHECK(!memcmp(got, want, sizeof got));
        ds_optim_free(o);
    }
    /* "*s" is a layer pattern: it does not catch every name ending in ".bias" */
    ds_param_group s = {.params = "*s"};
    CHECK(ds_optim_new_groups(n.g, &cfg, &s, 1, 0) == NULL && strstr(ds_last_error(), "'*s' matches no"));
    ds_graph_free(n.g);
}

/* no_decay: biases by name, γ/β found through the batch-norm op; SGD with
 * zero gradients leaves exactly the decayed parameters changed. */
static void test_no_decay(void)
{
    net n = build(1);
    ds_optim_cfg cfg = {.kind = DS_SGD, .lr = 0.1f, .weight_decay = 0.5f};
    ds_param_group gr = {.params = "d2", .set = DS_PG_WD, .weight_decay = 0.25f};
    ds_optim *o = ds_optim_new_groups(n.g, &cfg, &gr, 1, DS_NO_DECAY_NORM);
    CHECK(ds_optim_param_weight_decay(o, n.w1) == 0.5f && ds_optim_param_weight_decay(o, n.b1) == 0.5f);
    CHECK(ds_optim_param_weight_decay(o, n.gamma) == 0 && ds_optim_param_weight_decay(o, n.beta) == 0);
    CHECK(ds_optim_param_weight_decay(o, n.w2) == 0.25f && ds_optim_param_weight_decay(o, n.b2) == 0.25f);
    ds_optim_free(o);

    o = ds_optim_new_groups(n.g, &cfg, &gr, 1, DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM);
    CHECK(ds_optim_param_weight_decay(o, n.w1) == 0.5f && ds_optim_param_weight_decay(o, n.b1) == 0);
    CHECK(ds_optim_param_weight_decay(o, n.gamma) == 0 && ds_optim_param_weight_decay(o, n.beta) == 0);
    CHECK(ds_optim_param_weight_decay(o, n.w2) == 0.25f && ds_optim_param_weight_decay(o, n.b2) == 0);
    ds_node *ps[] = {n.w1, n.b1, n.gamma, n.beta, n.w2, n.b2};
    float *before[6];
    for (int i = 0; i < 6; i++) {
        ds_node_value(ps[i])[0] = 0.75f; /* biases and β start at 0: give every one a value to decay */
        before[i] = copy_of(ps[i]);
    }
    ds_graph_zero_grad(n.g);
    CHECK(ds_optim_step(o) == 0);
    int decayed[] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) {
        CHECK(same(ps[i], before[i]) == !decayed[i]);
        free(before[i]);
    }
    /* p − lr·wd·p, in the float operations of PyTorch's SGD */
    CHECK(ds_node_value(n.w1)[0] == 0.75f + -0.1f * (0.5f * 0.75f));
    CHECK(ds_node_value(n.w2)[0] == 0.75f + -0.1f * (0.25f * 0.75f));
    ds_optim_free(o);
    ds_graph_free(n.g);
}

/* Each group's rate follows its own schedule from its own base rate; a
 * group without DS_PG_SCHED follows the optimizer's. */
static void test_rates(void)
{
    net n = build(0);
    ds_optim_cfg cfg = {.kind = DS_SGD, .lr = 0.01f, .schedule = {.kind = DS_SCHED_STEP, .step_size = 3, .gamma = 0.1f}};
    ds_param_group gr[2] = {
        {.params = "d1.weight", .set = DS_PG_LR | DS_PG_SCHED, .lr = 0.2f,
         .schedule = {.kind = DS_SCHED_STEP, .step_size = 2, .gamma = 0.5f}},
        {.params = "d1.bias", .set = DS_PG_LR, .lr = 0.4f},
    };
    ds_optim *o = ds_optim_new_groups(n.g, &cfg, gr, 2, 0);
    CHECK(o && ds_optim_num_groups(o) == 3);
    for (int s = 0; s < 7; s++) {
        CHECK(ds_optim_group_lr(o, 0) == ds_schedule_lr(&gr[0].schedule, 0.2f, s));
        CHECK(ds_optim_group_lr(o, 1) == ds_schedule_lr(&cfg.schedule, 0.4f, s));
        CHECK(ds_optim_lr(o) == ds_schedule_lr(&cfg.schedule, 0.01f, s));
        CHECK(ds_optim_group_lr(o, 2) == ds_optim_lr(o));
        /* plain SGD: p + (−lr·g) with each group's rate */
        ds_graph_zero_grad(n.g);
        ds_node *ps[] = {n.w1, n.b1, n.w2};
        float lr[] = {ds_optim_group_lr(o, 0), ds_optim_group_lr(o, 1), ds_optim_lr(o)}, want[3];
        for (int i = 0; i < 3; i++) {
            ds_node_grad(ps[i])[0] = 1.5f;
            want[i] = ds_node_value(ps[i])[0] + -lr[i] * 1.5f;
        }
        CHECK(ds_optim_step(o) == 0);
        for (int i = 0; i < 3; i++) CHECK(ds_node_value(ps[i])[0] == want[i]);
    }
    CHECK_NEAR(ds_optim_group_lr(o, 0), 0.2 * 0.125, 1e-8); /* t = 7: 0.5³ */
    CHECK_NEAR(ds_optim_group_lr(o, 1), 0.4 * 0.01, 1e-8);  /* t = 7: 0.1² */
    CHECK(ds_optim_group_lr(o, 3) == 0 && ds_optim_group_lr(o, -1) == 0);
    ds_optim_free(o);
    ds_graph_free(n.g);
}

static void test_schedule_to_steps(void)
{
    ds_schedule s = {.kind = DS_SCHED_STEP, .step_size = 2, .gamma = 0.5f};
    ds_schedule_to_steps(&s, 1, 10, 5);
    CHECK(s.step_size == 20);
    ds_schedule c = {.kind = DS_SCHED_COSINE, .warmup_steps = 7};
    ds_schedule_to_steps(&c, 1, 10, 5);
    CHECK(c.t_max == 43); /* 5·10 − 7 */
    ds_schedule c2 = {.kind = DS_SCHED_COSINE, .t_max = 3};
    ds_schedule_to_steps(&c2, 0, 10, 5);
    CHECK(c2.t_max == 3);
}

/* Resume with groups is bit-identical: 3 + 3 steps equal 6 in one go. */
static void test_resume(void)
{
    ds_optim_cfg cfg = {.kind = DS_ADAMW, .lr = 0.01f, .weight_decay = 0.1f};
    ds_param_group gr[2] = {{.params = "bn", .frozen = 1}, {.params = "d2", .set = DS_PG_LR, .lr = 0.05f}};
    net a = build(1), b = build(1);
    ds_optim *oa = ds_optim_new_groups(a.g, &cfg, gr, 2, DS_NO_DECAY_BIAS);
    ds_optim *ob = ds_optim_new_groups(b.g, &cfg, gr, 2, DS_NO_DECAY_BIAS);
    for (int s = 0; s < 3; s++) CHECK(train_step(&a, oa) == 0);
    ds_train_state st = {.step = ds_optim_steps(oa)};
    const char *path = ds_test_path("groups.safetensors");
    CHECK(ds_checkpoint_save(path, a.g, oa, "", NULL, &st) == 0);
    ds_checkpoint *ck = ds_checkpoint_open(path);
    CHECK(ck && ds_checkpoint_restore(ck, b.g, ob) == 0);
    ds_checkpoint_close(ck);
    CHECK(ds_optim_steps(ob) == 3);
    for (int s = 0; s < 3; s++) CHECK(train_step(&a, oa) == 0 && train_step(&b, ob) == 0);
    ds_node *pa[] = {a.w1, a.b1, a.gamma, a.beta, a.w2, a.b2}, *pb[] = {b.w1, b.b1, b.gamma, b.beta, b.w2, b.b2};
    for (int i = 0; i < 6; i++) CHECK(!memcmp(ds_node_value(pa[i]), ds_node_value(pb[i]), ds_node_numel(pa[i]) * 4));
    ds_optim_free(oa), ds_optim_free(ob);
    ds_graph_free(a.g), ds_graph_free(b.g);
}

/* ---- model files ---- */

static const char *MODEL =
    "[net]\ninput = 4\nclasses = 3\n"   /* lines 1-3 */
    "[dense]\nname = d1\nunits = 5\nbatch_normalize = 1\n" /* 4-7 */
    "[dense]\nname = d2\nunits = 3\nactivation = linear\n"  /* 8-11 */
    "[group]\nparams = d1\nfreeze = 1\n"                    /* 12-14 */
    "[group]\nparams = d2.weight\nlr = 0.5\nweight_decay = 0\nschedule = step\nstep_size = 2\n" /* 15-20 */
    "[train]\noptimizer = sgd\nlr = 0.1\nweight_decay = 0.01\nno_decay = bias, norm\nschedule=cosine\n" /* 21-27 */
    "schedule_unit = step\n";

static ds_model *parse_with(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s", MODEL, extra);
    return ds_model_parse(text, "m.cfg");
}

static void expect_error(const char *extra, const char *msg)
{
    ds_model *m = parse_with(extra);
    CHECK(m == NULL);
    if (!strstr(ds_last_error(), msg)) fprintf(stderr, "expected '%s' in: %s\n", msg, ds_last_error());
    CHECK(strstr(ds_last_error(), msg) != NULL);
    ds_model_free(m);
}

static void test_model_file(void)
{
    ds_model *m = parse_with("");
    CHECK(m != NULL);
    const ds_param_group *gr;
    CHECK(ds_model_param_groups(m, &gr) == 2);
    CHECK(ds_model_no_decay(m) == (DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM));
    CHECK(!strcmp(gr[0].params, "d1") && gr[0].frozen && gr[0].set == 0 && !strcmp(gr[0].name, "m.cfg:12: [group]"));
    CHECK(!strcmp(gr[1].params, "d2.weight") && !gr[1].frozen && gr[1].set == (DS_PG_LR | DS_PG_WD | DS_PG_SCHED));
    CHECK(gr[1].lr == 0.5f && gr[1].weight_decay == 0 && gr[1].schedule.kind == DS_SCHED_STEP &&
          gr[1].schedule.step_size == 2 && gr[1].schedule.gamma == 0.1f);
    CHECK(gr[1].schedule_in_epochs == 0); /* [train]'s schedule_unit = step */
    CHECK(!strcmp(gr[1].name, "m.cfg:15: [group]"));

    /* the trainer's sequence: build, convert each group's schedule, make the optimizer */
    ds_graph *g = ds_graph_new(1);
    ds_node *x, *logits = ds_model_build(m, g, 2, &x);
    CHECK(logits && ds_graph_compile(g) == 0);
    ds_param_group cp[2];
    memcpy(cp, gr, sizeof cp);
    for (int k = 0; k < 2; k++) ds_schedule_to_steps(&cp[k].schedule, cp[k].schedule_in_epochs, 10, 3);
    CHECK(cp[1].schedule.step_size == 2);
    ds_train_cfg tc = *ds_model_train_cfg(m);
    ds_schedule_to_steps(&tc.optim.schedule, tc.schedule_in_epochs, 10, 3);
    ds_optim *o = ds_optim_new_groups(g, &tc.optim, cp, 2, ds_model_no_decay(m));
    CHECK(o != NULL);
    CHECK(ds_optim_param_group(o, ds_graph_find(g, "d1.bn.weight")) == 0); /* "d1" covers its batch norm */
    CHECK(ds_optim_param_weight_decay(o, ds_graph_find(g, "d2.bias")) == 0);
    CHECK(ds_optim_param_weight_decay(o, ds_graph_find(g, "d2.weight")) == 0);
    CHECK(ds_node_grad(ds_graph_find(g, "d1.weight")) == NULL);
    ds_optim_free(o);
    /* a pattern that matches nothing is reported at the [group]'s line */
    cp[1].params = "d3";
    CHECK(ds_optim_new_groups(g, &tc.optim, cp, 2, 0) == NULL &&
          strstr(ds_last_error(), "m.cfg:15: [group] params: pattern 'd3' matches no trainable parameter"));
    ds_graph_free(g);
    ds_model_free(m);

    /* a group's schedule_unit; a [group] before [train] inherits [train]'s */
    m = ds_model_parse("[group]\nparams=d1\nschedule=step\nstep_size=1\n[net]\ninput=4\nclasses=2\n[dense]\n"
                       "name=d1\nunits=2\n[group]\nparams=*.bias\nschedule=step\nstep_size=1\nschedule_unit=step\n"
                       "[train]\nschedule=step\nstep_size=1\nschedule_unit=epoch\n",
                       "n.cfg");
    CHECK(m && ds_model_param_groups(m, &gr) == 2 && gr[0].schedule_in_epochs == 1 && gr[1].schedule_in_epochs == 0);
    ds_model_free(m);
    m = ds_model_parse("[net]\ninput=4\nclasses=2\n[dense]\nunits=2\n", "n.cfg");
    CHECK(m && ds_model_param_groups(m, &gr) == 0 && ds_model_no_decay(m) == 0);
    ds_model_free(m);

    expect_error("[group]\nparams = d1\nmomentum = 0.9\n", "m.cfg:30: [group] momentum: unknown key (valid keys: params, lr");
    expect_error("[group]\nlr = 0.1\n", "m.cfg:28: [group]: missing params=");
    expect_error("[group]\nparams = d1,,d2\n", "m.cfg:29: [group] params: 'd1,,d2' has an empty item");
    expect_error("[group]\nparams = d1\nfreeze = 1\nlr = 0.1\n", "m.cfg:31: [group] lr: does not apply to a frozen group");
    expect_error("[group]\nparams = d1\nfreeze = 2\n", "m.cfg:30: [group] freeze: '2' is not 0 or 1");
    expect_error("[group]\nparams = d1\nstep_size = 2\n", "m.cfg:30: [group] step_size: needs schedule= in this [group]");
    expect_error("[group]\nparams = d1\nschedule = cosine\nstep_size = 2\n", "m.cfg:31: [group] step_size: applies to schedule=step");
    expect_error("[group]\nparams = d1\nschedule = step\n", "m.cfg:28: [group]: schedule=step needs step_size=");
    expect_error("[group]\nparams = d1\nlr = 0\n", "m.cfg:30: [group] lr: 0 is out of range");
    expect_error("[group]\nparams = d1\nparams = d2\n", "m.cfg:30: [group] params: set twice");
    m = ds_model_parse("[net]\ninput=4\nclasses=2\n[dense]\nunits=2\n[train]\nno_decay = bias, weights\n", "n.cfg");
    CHECK(!m && strstr(ds_last_error(), "n.cfg:7: [train] no_decay: unknown item 'weights'"));
    m = ds_model_parse("[net]\ninput=4\nclasses=2\n[dense]\nunits=2\n[train]\nno_decay = none\n", "n.cfg");
    CHECK(m && ds_model_no_decay(m) == 0);
    ds_model_free(m);
    m = ds_model_parse("[net]\ninput=4\nclasses=2\n[dense]\nunits=2\n[train]\nno_decay = norm\n", "n.cfg");
    CHECK(m && ds_model_no_decay(m) == DS_NO_DECAY_NORM);
    ds_model_free(m);
}

int main(void)
{
    test_frozen();
    test_errors();
    test_patterns();
    test_no_decay();
    test_rates();
    test_schedule_to_steps();
    test_resume();
    test_model_file();
    return ds_test_summary("groups");
}
