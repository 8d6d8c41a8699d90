/* test_optim.c — schedules, clipping, the non-finite guard, config checks
 * and hand-computed single updates. Gradients are written directly into the
 * parameters' gradient buffers, so no op is involved. */
#include "harness.h"

#include <string.h>

/* A graph with params a [2], b [1] and buffer r [3], values set by hand. */
typedef struct fixture {
    ds_graph *g;
    ds_node *a, *b, *r;
} fixture;

static fixture make(void)
{
    fixture f;
    f.g = ds_graph_new(7);
    ds_input(f.g, "x", ds_shape_of(2, 1, 1));
    f.a = ds_param(f.g, "a", ds_shape_of(1, 2), (ds_init){DS_INIT_ZEROS, 0, 0});
    f.r = ds_buffer(f.g, "r", ds_shape_of(1, 3), (ds_init){DS_INIT_CONSTANT, 5, 0});
    f.b = ds_param(f.g, "b", ds_shape_of(1, 1), (ds_init){DS_INIT_ZEROS, 0, 0});
    CHECK(ds_graph_compile(f.g) == 0);
    float *a = ds_node_value(f.a), *ga = ds_node_grad(f.a);
    a[0] = 1.0f, a[1] = -2.0f;
    ds_node_value(f.b)[0] = 0.5f;
    ga[0] = 3.0f, ga[1] = 4.0f;
    ds_node_grad(f.b)[0] = 12.0f; /* ‖(3, 4, 12)‖ = 13 */
    return f;
}

static void test_schedules(void)
{
    ds_schedule st = {.kind = DS_SCHED_STEP, .step_size = 3, .gamma = 0.5f};
    CHECK_NEAR(ds_schedule_lr(&st, 0.1f, 0), 0.1, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&st, 0.1f, 2), 0.1, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&st, 0.1f, 3), 0.05, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&st, 0.1f, 7), 0.025, 1e-7);

    /* 0.1 + 0.9·(1 + cos(0.3π))/2 = 0.1 + 0.9·0.79389263 */
    ds_schedule cs = {.kind = DS_SCHED_COSINE, .t_max = 10, .eta_min = 0.1f};
    CHECK_NEAR(ds_schedule_lr(&cs, 1.0f, 0), 1.0, 1e-6);
    CHECK_NEAR(ds_schedule_lr(&cs, 1.0f, 3), 0.81450337, 1e-6);
    CHECK_NEAR(ds_schedule_lr(&cs, 1.0f, 5), 0.55, 1e-6);
    CHECK_NEAR(ds_schedule_lr(&cs, 1.0f, 10), 0.1, 1e-6);
    CHECK_NEAR(ds_schedule_lr(&cs, 1.0f, 25), 0.1, 1e-6); /* held at eta_min past t_max */

    /* warm-up over 4 steps from 0.25·lr: 0.05, 0.0875, 0.125, 0.1625, then 0.2 */
    ds_schedule wu = {.kind = DS_SCHED_CONSTANT, .warmup_steps = 4, .warmup_start = 0.25f};
    CHECK_NEAR(ds_schedule_lr(&wu, 0.2f, 0), 0.05, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&wu, 0.2f, 1), 0.0875, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&wu, 0.2f, 3), 0.1625, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&wu, 0.2f, 4), 0.2, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&wu, 0.2f, 100), 0.2, 1e-7);

    /* warm-up 2 then step(3, 0.1): the step count restarts after warm-up */
    ds_schedule ws = {.kind = DS_SCHED_STEP, .step_size = 3, .gamma = 0.1f,
                      .warmup_steps = 2, .warmup_start = 0.5f};
    CHECK_NEAR(ds_schedule_lr(&ws, 1.0f, 1), 0.75, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&ws, 1.0f, 4), 1.0, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&ws, 1.0f, 5), 0.1, 1e-7);
    CHECK_NEAR(ds_schedule_lr(&ws, 1.0f, 8), 0.01, 1e-8);

    /* the optimizer reports the rate of its next step */
    fixture f = make();
    ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_SGD, .lr = 1.0f, .schedule = ws});
    CHECK(o != NULL);
    CHECK(ds_optim_steps(o) == 0);
    CHECK_NEAR(ds_optim_lr(o), 0.5, 1e-7);
    for (int i = 0; i < 5; i++) {
        memset(ds_node_grad(f.a), 0, 2 * sizeof(float));
        ds_node_grad(f.b)[0] = 0;
        CHECK(ds_optim_step(o) == 0);
    }
    CHECK(ds_optim_steps(o) == 5);
    CHECK_NEAR(ds_optim_lr(o), 0.1, 1e-7);
    ds_optim_free(o);
    ds_graph_free(f.g);
}

static void test_sgd_by_hand(void)
{
    /* momentum 0.5, lr 0.1, wd 0.1: d = g + 0.1·p; buf = 0.5·buf + d; p −= 0.1·buf
     * a[0]: p=1, g=3 → d=3.1, buf=3.1, p=0.69; again g=3 → d=3.069,
     * buf=1.55+3.069=4.619, p=0.69−0.4619=0.2281 */
    fixture f = make();
    ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_SGD, .lr = 0.1f, .momentum = 0.5f,
                                                    .weight_decay = 0.1f});
    CHECK(ds_optim_step(o) == 0);
    CHECK_NEAR(ds_node_value(f.a)[0], 0.69, 1e-6);
    CHECK(ds_optim_step(o) == 0);
    CHECK_NEAR(ds_node_value(f.a)[0], 0.2281, 1e-6);
    ds_optim_free(o);
    ds_graph_free(f.g);
}

static void test_adam_by_hand(void)
{
    /* Step 1 with bias correction: m̂ = g, v̂ = g², so p −= lr·g/(|g| + eps). */
    fixture f = make();
    ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_ADAM, .lr = 0.01f});
    CHECK(ds_optim_step(o) == 0);
    CHECK_NEAR(ds_node_value(f.a)[0], 1.0 - 0.01, 1e-6);
    CHECK_NEAR(ds_node_value(f.a)[1], -2.0 - 0.01, 1e-6);
    CHECK_NEAR(ds_node_value(f.b)[0], 0.5 - 0.01, 1e-6);
    ds_optim_free(o);
    ds_graph_free(f.g);

    /* AdamW with zero gradients only decays: p *= 1 − lr·wd = 0.98 per step. */
    f = make();
    memset(ds_node_grad(f.a), 0, 2 * sizeof(float));
    ds_node_grad(f.b)[0] = 0;
    o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_ADAMW, .lr = 0.1f, .weight_decay = 0.2f});
    CHECK(ds_optim_step(o) == 0);
    CHECK(ds_optim_step(o) == 0);
    CHECK_NEAR(ds_node_value(f.a)[1], -2.0 * 0.98 * 0.98, 1e-6);
    ds_optim_free(o);
    ds_graph_free(f.g);

    /* Zero beta1/beta2/eps fields mean 0.9/0.999/1e-8: same weights after 3 steps. */
    fixture f1 = make(), f2 = make();
    ds_optim *o1 = ds_optim_new(f1.g, &(ds_optim_cfg){.kind = DS_ADAM, .lr = 0.01f});
    ds_optim *o2 = ds_optim_new(f2.g, &(ds_optim_cfg){.kind = DS_ADAM, .lr = 0.01f, .beta1 = 0.9f,
                                                      .beta2 = 0.999f, .eps = 1e-8f});
    for (int i = 0; i < 3; i++) {
        ds_node_grad(f1.a)[0] = ds_node_grad(f2.a)[0] = (float)(i + 1);
        CHECK(ds_optim_step(o1) == 0 && ds_optim_step(o2) == 0);
    }
    CHECK(memcmp(ds_node_value(f1.a), ds_node_value(f2.a), 2 * sizeof(float)) == 0);
    ds_optim_free(o1);
    ds_optim_free(o2);
    ds_graph_free(f1.g);
    ds_graph_free(f2.g);
}

static void test_clip(void)
{
    fixture f = make();
    CHECK_NEAR(ds_grad_norm(f.g), 13.0, 1e-5);
    /* SGD lr 1: p −= g·1.3/(13 + 1e-6) */
    ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_SGD, .lr = 1.0f, .clip_norm = 1.3f});
    CHECK(ds_optim_step(o) == 0);
    double s = 1.3 / (13.0 + 1e-6);
    CHECK_NEAR(ds_grad_norm(f.g), 1.3, 1e-5);
    CHECK_NEAR(ds_node_value(f.a)[0], 1.0 - 3.0 * s, 1e-6);
    CHECK_NEAR(ds_node_value(f.a)[1], -2.0 - 4.0 * s, 1e-6);
    CHECK_NEAR(ds_node_value(f.b)[0], 0.5 - 12.0 * s, 1e-6);
    ds_optim_free(o);
    ds_graph_free(f.g);

    /* a norm below clip_norm leaves the gradients as they are */
    f = make();
    o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_SGD, .lr = 1.0f, .clip_norm = 20.0f});
    CHECK(ds_optim_step(o) == 0);
    CHECK(ds_node_grad(f.a)[1] == 4.0f);
    CHECK_NEAR(ds_node_value(f.b)[0], 0.5 - 12.0, 1e-6);
    ds_optim_free(o);
    ds_graph_free(f.g);
}

static void test_nonfinite(void)
{
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        fixture f = make();
        ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = DS_ADAM, .lr = 0.1f,
                                                        .clip_norm = 1.0f});
        float a0[2], b0 = ds_node_value(f.b)[0];
        memcpy(a0, ds_node_value(f.a), sizeof a0);
        ds_node_grad(f.b)[0] = bad[k];
        CHECK(ds_optim_step(o) == -1);
        CHECK(strstr(ds_last_error(), "'b'") != NULL);
        CHECK(memcmp(a0, ds_node_value(f.a), sizeof a0) == 0);
        CHECK(ds_node_value(f.b)[0] == b0);
        CHECK(ds_node_grad(f.a)[0] == 3.0f); /* not clipped either */
        CHECK(ds_optim_steps(o) == 0);
        /* a finite gradient afterwards steps normally */
        ds_node_grad(f.b)[0] = 1.0f;
        CHECK(ds_optim_step(o) == 0);
        CHECK(ds_optim_steps(o) == 1);
        ds_optim_free(o);
        ds_graph_free(f.g);
    }
}

static void test_buffers_untouched(void)
{
    const ds_optim_kind kinds[4] = {DS_SGD, DS_ADAM, DS_ADAMW, DS_RMSPROP};
    for (int k = 0; k < 4; k++) {
        fixture f = make();
        ds_optim *o = ds_optim_new(f.g, &(ds_optim_cfg){.kind = kinds[k], .lr = 0.1f,
                                                        .momentum = 0.9f, .weight_decay = 0.5f});
        CHECK(o != NULL);
        CHECK(ds_optim_step(o) == 0 && ds_optim_step(o) == 0);
        const float *r = ds_node_value(f.r);
        CHECK(r[0] == 5.0f && r[1] == 5.0f && r[2] == 5.0f);
        CHECK(ds_node_value(f.a)[0] != 1.0f); /* while the parameters did move */
        ds_optim_free(o);
        ds_graph_free(f.g);
    }
}

static void reject(ds_graph *g, ds_optim_cfg c, const char *field)
{
    ds_optim *o = ds_optim_new(g, &c);
    CHECK(o == NULL);
    CHECK(strstr(ds_last_error(), field) != NULL);
    ds_optim_free(o);
}

static void test_bad_cfg(void)
{
    fixture f = make();
    const ds_optim_cfg ok = {.kind = DS_SGD, .lr = 0.1f};
    ds_optim_cfg c;
    c = ok, c.lr = 0;
    reject(f.g, c, "lr");
    c = ok, c.lr = -1;
    reject(f.g, c, "lr");
    c = ok, c.lr = NAN;
    reject(f.g, c, "lr");
    c = ok, c.lr = INFINITY;
    reject(f.g, c, "lr");
    c = ok, c.momentum = 1.0f;
    reject(f.g, c, "momentum");
    c = ok, c.momentum = -0.1f;
    reject(f.g, c, "momentum");
    c = ok, c.nesterov = 1;
    reject(f.g, c, "nesterov");
    c = ok, c.kind = DS_ADAM, c.beta1 = 1.0f;
    reject(f.g, c, "beta1");
    c = ok, c.kind = DS_ADAM, c.beta2 = -0.5f;
    reject(f.g, c, "beta2");
    c = ok, c.kind = DS_RMSPROP, c.alpha = 1.5f;
    reject(f.g, c, "alpha");
    c = ok, c.eps = -1e-8f;
    reject(f.g, c, "eps");
    c = ok, c.weight_decay = -0.1f;
    reject(f.g, c, "weight_decay");
    c = ok, c.clip_norm = -1.0f;
    reject(f.g, c, "clip_norm");
    c = ok, c.kind = (ds_optim_kind)9;
    reject(f.g, c, "kind");
    c = ok, c.schedule.kind = DS_SCHED_STEP;
    reject(f.g, c, "step_size");
    c = ok, c.schedule.kind = DS_SCHED_STEP, c.schedule.step_size = 2;
    reject(f.g, c, "gamma");
    c = ok, c.schedule.kind = DS_SCHED_COSINE;
    reject(f.g, c, "t_max");
    c = ok, c.schedule.warmup_steps = 3, c.schedule.warmup_start = 2.0f;
    reject(f.g, c, "warmup_start");
    ds_optim *o = ds_optim_new(f.g, &ok); /* the base cfg itself is fine */
    CHECK(o != NULL);
    ds_optim_free(o);
    ds_graph_free(f.g);

    ds_graph *g = ds_graph_new(1);
    ds_param(g, "w", ds_shape_of(1, 3), (ds_init){DS_INIT_ZEROS, 0, 0});
    reject(g, ok, "compile");
    ds_graph_free(g);
}

int main(void)
{
    test_schedules();
    test_sgd_by_hand();
    test_adam_by_hand();
    test_clip();
    test_nonfinite();
    test_buffers_untouched();
    test_bad_cfg();
    return ds_test_summary("optim");
}
