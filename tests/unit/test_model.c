/* test_model.c — model files: every zoo model parses, builds and runs;
 * parameter counts and names match the C examples (and so PyTorch); from=
 * wiring computes what it says (residual sums, concatenated branches);
 * [train] keys land in ds_train_cfg; and each class of bad input fails with
 * "FILE:LINE:" and the section, layer and key. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* models/NAME: DS_TEST_DATA is <repo>/tests/data (which need not exist, so
 * strip two components rather than append ".."); unset: run from the repo. */
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

static long trainable_count(ds_graph *g)
{
    long n = 0;
    for (int i = 0; i < ds_graph_num_params(g); i++)
        if (ds_node_is_trainable(ds_graph_param(g, i))) n += (long)ds_node_numel(ds_graph_param(g, i));
    return n;
}

static int shape_is(ds_shape s, int ndim, int d0, int d1, int d2, int d3)
{
    int d[4] = {d0, d1, d2, d3};
    if (s.ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (s.d[i] != d[i]) return 0;
    return 1;
}

/* Parse text, expect NULL and an error containing every one of the needles. */
#define EXPECT_PARSE_ERROR(text, ...) expect_error(__LINE__, text, 0, (const char *[]){__VA_ARGS__, NULL})
/* Parse must succeed; ds_model_build must fail with the needles. */
#define EXPECT_BUILD_ERROR(text, ...) expect_error(__LINE__, text, 1, (const char *[]){__VA_ARGS__, NULL})

static void expect_error(int line, const char *text, int at_build, const char **needles)
{
    ds_model *m = ds_model_parse(text, "bad.cfg");
    ds_graph *g = NULL;
    int failed = !m;
    if (at_build && m) {
        g = ds_graph_new(1);
        ds_node *x;
        failed = ds_model_build(m, g, 4, &x) == NULL;
    }
    if (at_build && !m) {
        ds_t_fail++;
        fprintf(stderr, "test_model.c:%d: expected a build error, parse failed: %s\n", line, ds_last_error());
    } else if (!failed) {
        ds_t_fail++;
        fprintf(stderr, "test_model.c:%d: expected an error, got success\n", line);
    } else {
        const char *e = ds_last_error();
        int ok = !strncmp(e, "bad.cfg:", 8);
        for (const char **n = needles; *n; n++) ok &= strstr(e, *n) != NULL;
        if (ok) ds_t_pass++;
        else {
            ds_t_fail++;
            fprintf(stderr, "test_model.c:%d: error message lacks an expected part:\n  %s\n", line, e);
        }
        /* a failed build poisons the graph: compile repeats the same message */
        if (g) {
            char first[1024];
            snprintf(first, sizeof first, "%s", e);
            CHECK(ds_graph_compile(g) != 0 && !strcmp(ds_last_error(), first));
        }
    }
    ds_graph_free(g);
    ds_model_free(m);
}

/* Build a model for batch n, compile, fill x with U(−1, 1) and run forward. */
typedef struct built {
    ds_model *m;
    ds_graph *g;
    ds_node *x, *logits;
} built;

static int no_fusion; /* build_run compiles without fusion (to read every layer's own value) */

static built build_run(ds_model *m, int n, int training)
{
    built b = {m, NULL, NULL, NULL};
    if (!m) return b;
    b.g = ds_graph_new(3);
    b.logits = ds_model_build(m, b.g, n, &b.x);
    if (no_fusion) ds_graph_set_fusion(b.g, 0);
    if (!b.logits || ds_graph_compile(b.g) != 0) {
        b.logits = NULL;
        return b;
    }
    ds_rng r;
    ds_rng_seed(&r, 11);
    ds_test_fill(ds_node_value(b.x), ds_node_numel(b.x), -1, 1, &r);
    ds_graph_set_training(b.g, training);
    if (ds_graph_forward(b.g) != 0) b.logits = NULL;
    return b;
}

static void built_free(built *b)
{
    ds_graph_free(b->g);
    ds_model_free(b->m);
}

static int all_finite(ds_node *n)
{
    const float *v = ds_node_value(n);
    for (size_t i = 0; i < ds_node_numel(n); i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* ---- the zoo ---- */

static void test_zoo_builds(void)
{
    static const char *const zoo[] = {"softmax.cfg", "mlp.cfg", "lenet.cfg", "alexnet-small.cfg",
                                      "resnet-small.cfg", "inception-small.cfg"};
    for (size_t i = 0; i < sizeof zoo / sizeof *zoo; i++) {
        char path[1024];
        zoo_path(zoo[i], path, sizeof path);
        ds_model *m = ds_model_load(path);
        CHECK(m != NULL);
        if (!m) continue;
        CHECK(shape_is(ds_model_input_shape(m), 3, 1, 28, 28, 0));
        CHECK(ds_model_classes(m) == 10);
        for (int training = 0; training <= 1; training++) {
            built b = build_run(training ? ds_model_load(path) : m, 3, training);
            CHECK(b.logits != NULL);
            if (b.logits) {
                CHECK(shape_is(ds_node_shape(b.logits), 2, 3, 10, 0, 0));
                CHECK(all_finite(b.logits));
                /* train mode needs a gradient path from the logits to every parameter */
                if (training) CHECK(ds_graph_backward(b.g, b.logits, ds_node_value(b.logits)) == 0);
            }
            if (training) built_free(&b);
            else ds_graph_free(b.g);
        }
        ds_model_free(m);
    }
}

static void test_lenet(void)
{
    char path[1024];
    zoo_path("lenet.cfg", path, sizeof path);
    built b = build_run(ds_model_load(path), 2, 0);
    CHECK(b.logits != NULL);
    if (!b.logits) return built_free(&b);
    /* conv1 32·25+32, conv2 64·32·25+64, fc1 3136·128+128, fc2 128·10+10 */
    CHECK(trainable_count(b.g) == 832 + 51264 + 401536 + 1290);
    CHECK(ds_graph_find(b.g, "conv1.weight") != NULL &&
          shape_is(ds_node_shape(ds_graph_find(b.g, "conv1.weight")), 4, 32, 1, 5, 5));
    CHECK(ds_graph_find(b.g, "conv2.bias") != NULL);
    CHECK(ds_graph_find(b.g, "fc1.weight") != NULL &&
          shape_is(ds_node_shape(ds_graph_find(b.g, "fc1.weight")), 2, 128, 3136, 0, 0));
    CHECK(ds_graph_find(b.g, "fc2.bias") != NULL);

    static const char *const names[] = {"conv1", "maxpool1", "conv2", "maxpool2", "fc1", "dropout1", "fc2"};
    static const char *const types[] = {"conv", "maxpool", "conv", "maxpool", "dense", "dropout", "dense"};
    CHECK(ds_model_num_layers(b.m) == 7);
    for (int i = 0; i < 7 && i < ds_model_num_layers(b.m); i++) {
        CHECK(!strcmp(ds_model_layer_name(b.m, i), names[i]));
        CHECK(!strcmp(ds_model_layer_type(b.m, i), types[i]));
        /* each layer's output node carries the layer's name */
        CHECK(ds_graph_find(b.g, names[i]) == ds_model_layer_output(b.m, i));
    }
    CHECK(ds_model_layer_output(b.m, 6) == b.logits);
    CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 1)), 4, 2, 32, 14, 14));
    CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 3)), 4, 2, 64, 7, 7));
    CHECK(ds_model_layer_name(b.m, 7) == NULL && ds_model_layer_output(b.m, -1) == NULL);

    /* FLOPs per sample: 2·MACs; conv1 32·28·28·25, conv2 64·14·14·(32·25), fc1 128·3136 */
    double conv = 0, fc = 0, pool = 0;
    for (int i = 0; i < ds_graph_num_nodes(b.g); i++) {
        ds_node *n = ds_graph_node(b.g, i);
        if (!strcmp(ds_node_op(n), "conv2d")) conv += ds_node_flops(n);
        if (!strcmp(ds_node_op(n), "linear")) fc += ds_node_flops(n);
        if (!strcmp(ds_node_op(n), "maxpool2d")) pool += ds_node_flops(n);
    }
    CHECK_NEAR(conv, 2.0 * (32 * 784 * 25 + 64 * 196 * 800), 0.5);
    CHECK_NEAR(fc, 2.0 * (128 * 3136 + 10 * 128), 0.5);
    CHECK_NEAR(pool, 4.0 * (32 * 196 + 64 * 49), 0.5); /* 2x2 windows */
    CHECK(ds_node_flops(b.x) == 0);
    CHECK_NEAR(ds_node_flops(ds_graph_find(b.g, "conv1")), 32 * 784, 0.5); /* the relu */

    const ds_train_cfg *t = ds_model_train_cfg(b.m);
    CHECK(t->optim.kind == DS_ADAM && t->epochs == 12 && t->batch == 64 && t->seed == 1);
    CHECK(t->optim.schedule.kind == DS_SCHED_COSINE && t->schedule_in_epochs == 1);
    CHECK(strstr(ds_model_text(b.m), "name = conv1") != NULL);
    built_free(&b);
}

static void test_mlp_softmax_counts(void)
{
    char path[1024];
    zoo_path("mlp.cfg", path, sizeof path);
    built b = build_run(ds_model_load(path), 1, 0);
    CHECK(b.logits && trainable_count(b.g) == 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
    built_free(&b);
    zoo_path("softmax.cfg", path, sizeof path);
    b = build_run(ds_model_load(path), 1, 0);
    CHECK(b.logits && trainable_count(b.g) == 7850);
    /* init=zeros reaches the weight (the bias keeps PyTorch's default) */
    ds_node *w = b.g ? ds_graph_find(b.g, "fc.weight") : NULL;
    int zeros = w != NULL;
    for (size_t i = 0; w && i < ds_node_numel(w); i++) zeros &= ds_node_value(w)[i] == 0.0f;
    CHECK(zeros);
    built_free(&b);
}

/* The residual sum really adds the listed layers: s1b1 = relu(s1b1_conv2 + stem)
 * (compiled unfused: fused, the add applies s1b1_conv2's batch norm itself
 * and the batch norm's own output is never stored) */
static void test_resnet_wiring(void)
{
    char path[1024];
    zoo_path("resnet-small.cfg", path, sizeof path);
    no_fusion = 1;
    built b = build_run(ds_model_load(path), 2, 1);
    no_fusion = 0;
    CHECK(b.logits != NULL);
    if (!b.logits) return built_free(&b);
    ds_node *sum = ds_graph_find(b.g, "s1b1"), *a = ds_graph_find(b.g, "s1b1_conv2"),
            *stem = ds_graph_find(b.g, "stem");
    CHECK(sum && a && stem && shape_is(ds_node_shape(sum), 4, 2, 16, 28, 28));
    if (sum && a && stem) {
        double err = 0;
        for (size_t i = 0; i < ds_node_numel(sum); i++) {
            float want = ds_node_value(a)[i] + ds_node_value(stem)[i];
            err = fmax(err, fabs(ds_node_value(sum)[i] - (want > 0 ? want : 0)));
        }
        CHECK(err < 1e-6);
    }
    CHECK(shape_is(ds_node_shape(ds_graph_find(b.g, "s2b1")), 4, 2, 32, 14, 14));
    CHECK(shape_is(ds_node_shape(ds_graph_find(b.g, "s3b2")), 4, 2, 64, 7, 7));
    CHECK(shape_is(ds_node_shape(ds_graph_find(b.g, "s2b1_proj.weight")), 4, 32, 16, 1, 1));
    /* batch_normalize=1: no conv bias, batch norm state under "<layer>.bn" */
    CHECK(ds_graph_find(b.g, "stem.bias") == NULL && ds_graph_find(b.g, "stem.bn.weight") != NULL);
    ds_node *rm = ds_graph_find(b.g, "stem.bn.running_mean");
    CHECK(rm && ds_node_is_state(rm) && !ds_node_is_trainable(rm));
    const ds_train_cfg *t = ds_model_train_cfg(b.m);
    CHECK(t->optim.kind == DS_SGD && t->optim.nesterov && t->optim.momentum > 0.89f);
    CHECK_NEAR(t->optim.weight_decay, 5e-4, 1e-9);
    CHECK(t->optim.schedule.kind == DS_SCHED_COSINE && t->optim.schedule.t_max == 0); /* the whole run */
    built_free(&b);
}

/* Concatenated branches: the 1x1 branch is channels 0..31 of inc3a. */
static void test_inception_wiring(void)
{
    char path[1024];
    zoo_path("inception-small.cfg", path, sizeof path);
    built b = build_run(ds_model_load(path), 2, 0);
    CHECK(b.logits != NULL);
    if (!b.logits) return built_free(&b);
    ds_node *cat = ds_graph_find(b.g, "inc3a"), *one = ds_graph_find(b.g, "inc3a_1x1"),
            *pool = ds_graph_find(b.g, "inc3a_pool");
    CHECK(cat && one && shape_is(ds_node_shape(cat), 4, 2, 112, 14, 14));
    CHECK(pool && shape_is(ds_node_shape(pool), 4, 2, 32, 14, 14)); /* 3x3, stride 1, pad 1 */
    CHECK(shape_is(ds_node_shape(ds_graph_find(b.g, "inc4a")), 4, 2, 224, 7, 7));
    if (cat && one) {
        int same = 1;
        for (int s = 0; s < 2; s++)
            same &= !memcmp(ds_node_value(cat) + (size_t)s * 112 * 196, ds_node_value(one) + (size_t)s * 32 * 196,
                            32 * 196 * sizeof(float));
        CHECK(same);
    }
    built_free(&b);
}

/* ---- keys and options ---- */

static void test_options(void)
{
    const char *text =
        "# options\r\n"
        "[net]\r\n"
        "input = 3, 9, 9   ; C,H,W\r\n"
        "classes = 4\r\n"
        "[conv]\n"
        "filters=6\n size=3 \n stride=2\n padding=same\n activation=leaky\n"
        "[conv]\n"
        "name=c2\nfilters=6\nsize=3\npadding=same\ngroups=2\nactivation=leaky_relu\nalpha=0.2\n"
        "[deconv]\n"
        "filters=2\nsize=3\nstride=2\npad=1\noutput_padding=1\nbias=0\n"
        "[shortcut]\n"
        "from=-3\n"                 /* the deconv [2,10,10] + conv1 [6,5,5] */
        "[avgpool]\nsize=3\nstride=1\npad=1\n"
        "[reshape]\nshape=-1,2,5\n"
        "[flatten]\n"
        "[dense]\nunits=4\nactivation=elu\n"
        "[activation]\nactivation=linear\n"
        "[train]\n"
        "optimizer=sgd\nlearning_rate=0.05\nmomentum=0.9\nnesterov=true\nweight_decay=1e-4\n"
        "schedule=step\nstep_size=300\ngamma=0.5\nschedule_unit=step\nwarmup=10\nwarmup_start=0.1\n"
        "batch=32\nepochs=3\nseed=18446744073709551615\nclip_norm=5\n";
    ds_model *m = ds_model_parse(text, "opts.cfg");
    CHECK(m != NULL);
    if (!m) return;
    const ds_train_cfg *t = ds_model_train_cfg(m);
    CHECK(t->optim.kind == DS_SGD && t->optim.nesterov == 1);
    CHECK_NEAR(t->optim.lr, 0.05, 1e-9);
    CHECK_NEAR(t->optim.weight_decay, 1e-4, 1e-10);
    CHECK_NEAR(t->optim.clip_norm, 5, 0);
    CHECK(t->optim.schedule.kind == DS_SCHED_STEP && t->optim.schedule.step_size == 300);
    CHECK_NEAR(t->optim.schedule.gamma, 0.5, 0);
    CHECK(t->optim.schedule.warmup_steps == 10 && t->schedule_in_epochs == 0);
    CHECK(t->batch == 32 && t->epochs == 3 && t->seed == UINT64_MAX);
    CHECK(!strcmp(ds_model_layer_name(m, 0), "conv1") && !strcmp(ds_model_layer_name(m, 3), "add1"));
    CHECK(!strcmp(ds_model_layer_type(m, 2), "deconv") && !strcmp(ds_model_layer_type(m, 3), "add"));
    ds_graph *g = ds_graph_new(1);
    ds_node *x;
    CHECK(ds_model_build(m, g, 2, &x) == NULL);
    CHECK(strstr(ds_last_error(), "opts.cfg:26: layer 'add1' (add): inputs differ in shape: "
                                  "'deconv1' is [2, 2, 10, 10], 'conv1' is [2, 6, 5, 5]") != NULL);
    ds_graph_free(g);
    ds_model_free(m);

    /* the same with the shortcut taking the deconv's input instead: builds */
    const char *ok =
        "[net]\ninput=3,9,9\nclasses=4\n"
        "[conv]\nfilters=6\nsize=3\nstride=2\npadding=same\nactivation=leaky\n"   /* [6,5,5] */
        "[conv]\nname=c2\nfilters=6\nsize=3\npadding=same\ngroups=2\nactivation=leaky_relu\nalpha=0.2\n"
        "[deconv]\nfilters=6\nsize=3\nstride=2\npad=1\noutput_padding=1\nbias=0\n" /* [6,10,10] */
        "[conv]\nfilters=6\nsize=2\nstride=2\n"                                      /* [6,5,5] */
        "[shortcut]\nfrom=-4\n"                                                       /* + conv1 */
        "[avgpool]\nsize=3\nstride=1\npad=1\n"
        "[reshape]\nshape=-1,2,5\n"                                                   /* [15,2,5] */
        "[flatten]\n"
        "[dense]\nunits=4\nactivation=elu\n"
        "[activation]\nactivation=linear\n";
    built b = build_run(ds_model_parse(ok, "ok.cfg"), 2, 1);
    CHECK(b.logits != NULL);
    if (b.logits) {
        CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 0)), 4, 2, 6, 5, 5)); /* same, stride 2 */
        CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 1)), 4, 2, 6, 5, 5));
        CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 2)), 4, 2, 6, 10, 10));
        CHECK(shape_is(ds_node_shape(ds_model_layer_output(b.m, 6)), 4, 2, 15, 2, 5));
        CHECK(ds_graph_find(b.g, "deconv1.bias") == NULL);
        CHECK(shape_is(ds_node_shape(ds_graph_find(b.g, "c2.weight")), 4, 6, 3, 3, 3)); /* groups 2 */
        /* activation=linear makes no node: the logits are dense1's */
        CHECK(ds_model_layer_output(b.m, 9) == ds_model_layer_output(b.m, 8));
        CHECK(ds_model_layer_output(b.m, 9) == ds_graph_find(b.g, "dense1"));
        /* leaky with the default slope 0.1: conv1 = leaky(conv node feeding it) */
        ds_node *c1 = ds_graph_find(b.g, "conv1");
        CHECK(c1 && !strcmp(ds_node_op(c1), "leaky_relu"));
        /* shortcut from=-4: the previous layer (conv3, the third conv) + conv1 */
        ds_node *s = ds_graph_find(b.g, "add1"), *c4 = ds_graph_find(b.g, "conv3");
        double err = 0;
        for (size_t i = 0; s && c4 && c1 && i < ds_node_numel(s); i++)
            err = fmax(err, fabs(ds_node_value(s)[i] - ds_node_value(c4)[i] - ds_node_value(c1)[i]));
        CHECK(s && c4 && err < 1e-6);
    }
    built_free(&b);

    /* tables: input=F, dense layers, no [train] → the defaults */
    built tb = build_run(ds_model_parse("[net]\ninput=8\nclasses=3\n[dense]\nunits=5\nactivation=tanh\n"
                                        "batch_normalize=1\n[dropout]\nprobability=0.1\n[dense]\nunits=3\n",
                                        "table.cfg"),
                         4, 1);
    CHECK(tb.logits && shape_is(ds_node_shape(tb.x), 2, 4, 8, 0, 0));
    CHECK(tb.logits && ds_graph_find(tb.g, "dense1.bn.running_var") != NULL);
    if (tb.m) {
        const ds_train_cfg *d = ds_model_train_cfg(tb.m);
        CHECK(d->optim.kind == DS_ADAM && d->batch == 64 && d->epochs == 5 && d->seed == 1);
        CHECK_NEAR(d->optim.lr, 1e-3, 1e-9);
        CHECK(d->optim.schedule.kind == DS_SCHED_CONSTANT && d->schedule_in_epochs == 1);
    }
    built_free(&tb);
}

/* ---- bad input: every message starts "bad.cfg:LINE:" ---- */

#define NET "[net]\ninput=1,8,8\nclasses=3\n" /* lines 1-3 */

static void test_errors(void)
{
    /* syntax */
    EXPECT_PARSE_ERROR("filters=3\n", "bad.cfg:1:", "outside a section");
    EXPECT_PARSE_ERROR(NET "[conv\n", "bad.cfg:4:", "no closing ']'");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits\n", "bad.cfg:5:", "expected 'key = value'");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=\n", "bad.cfg:5:", "[dense] units: no value");
    /* unknown section / key */
    EXPECT_PARSE_ERROR(NET "\n[convolution]\nfilters=3\n", "bad.cfg:5:", "[convolution]", "unknown section",
                       "conv, convolutional");
    EXPECT_PARSE_ERROR(NET "[softmax]\n", "bad.cfg:4:", "[softmax]", "the loss applies softmax");
    EXPECT_PARSE_ERROR(NET "[conv]\nname=c1\nfilters=4\nfilter=3\nsize=3\n", "bad.cfg:7:",
                       "[conv] 'c1' filter: unknown key", "valid keys: name, from, filters, size");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\nfilters=3\n", "bad.cfg:6:", "[dense] 'dense1' filters: unknown key",
                       "units");
    EXPECT_PARSE_ERROR(NET "[train]\nlearningrate=0.1\n[dense]\nunits=3\n", "bad.cfg:5:",
                       "[train] learningrate: unknown key", "learning_rate");
    EXPECT_PARSE_ERROR("[net]\ninput=1,8,8\nclasses=3\nbatch=2\n[dense]\nunits=3\n", "bad.cfg:4:",
                       "[net] batch: unknown key (valid keys: input, classes, normalize)");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\noutput=4\n", "bad.cfg:6:", "output: set twice (units= at line 5)");
    /* bad values */
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=4\nsize=abc\n", "bad.cfg:6:", "[conv] 'conv1' size: 'abc' is not an integer");
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=0\nsize=3\n", "bad.cfg:5:", "filters: 0 is out of range (1..65536)");
    EXPECT_PARSE_ERROR(NET "[dropout]\np=1.5\n[dense]\nunits=3\n", "bad.cfg:5:", "[dropout] 'dropout1' p: 1.5",
                       "[0, 1)");
    /* issue 12: a learning rate is bounded as --lr is (1e30 was accepted) */
    EXPECT_PARSE_ERROR(NET "[train]\nlr=1e30\n[dense]\nunits=3\n", "bad.cfg:5:", "[train] lr: 1e30 is out of range",
                       "[1e-12, 1e6], as --lr");
    EXPECT_PARSE_ERROR(NET "[pretrain]\nlearning_rate=1e-13\n[dense]\nunits=3\n", "bad.cfg:5:", "1e-13 is out of range");
    EXPECT_PARSE_ERROR(NET "[rbm]\nunits=4\nlr=2e6\n[dense]\nunits=3\n", "bad.cfg:6:", "lr: 2e6 is out of range");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\nbias=2\n", "bad.cfg:6:", "bias: '2' is not 0 or 1");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\nlr=-0.1\n", "bad.cfg:7:", "[train] lr: -0.1", "[1e-12, 1e6]");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\nlr=nan\n", "bad.cfg:7:", "[train] lr: 'nan' is not a finite number");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\noptimizer=adagrad\n", "bad.cfg:7:",
                       "[train] optimizer: unknown value 'adagrad' (expected sgd|adam|adamw|rmsprop)");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\nseed=-1\n", "bad.cfg:7:", "seed: '-1' is not a non-negative");
    EXPECT_PARSE_ERROR("[net]\ninput=1,28\nclasses=3\n[dense]\nunits=3\n", "bad.cfg:2:", "[net] input: '1,28'");
    EXPECT_PARSE_ERROR(NET "[reshape]\nshape=-1,-1\n", "bad.cfg:5:", "[reshape] 'reshape1' shape:", "one -1");
    /* activations */
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=4\nsize=3\nactivation=relu6\n", "bad.cfg:7:",
                       "[conv] 'conv1' activation: unknown value 'relu6'", "leaky|leaky_relu|elu");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\nactivation=relu\nalpha=0.3\n", "bad.cfg:7:",
                       "alpha: applies to activation=leaky, leaky_relu or elu");
    EXPECT_PARSE_ERROR(NET "[activation]\nname=a\n", "bad.cfg:4:", "[activation] 'a': missing activation=");
    /* missing required keys */
    EXPECT_PARSE_ERROR("[net]\nclasses=3\n[dense]\nunits=3\n", "bad.cfg:1:", "[net]: missing input=");
    EXPECT_PARSE_ERROR("\n[net]\ninput=4\n[dense]\nunits=3\n", "bad.cfg:2:", "[net]: missing classes=");
    EXPECT_PARSE_ERROR("[dense]\nunits=3\n", "bad.cfg:1:", "no [net] section");
    EXPECT_PARSE_ERROR(NET, "bad.cfg:1:", "no layer sections");
    EXPECT_PARSE_ERROR(NET "[conv]\nsize=3\n", "bad.cfg:4:", "[conv] 'conv1': missing filters=");
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=3\n", "bad.cfg:4:", "missing size=");
    EXPECT_PARSE_ERROR(NET "[net]\ninput=1\nclasses=2\n", "bad.cfg:4:", "second [net] section (the first is at line 1)");
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=3\nsize=4\npadding=same\n", "bad.cfg:7:", "padding=same needs an odd size");
    /* [train] keys that do not apply */
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\noptimizer=adam\nmomentum=0.9\n", "bad.cfg:8:",
                       "[train] momentum: applies to optimizer=sgd or rmsprop");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\noptimizer=sgd\nnesterov=1\n", "bad.cfg:8:",
                       "nesterov=1 needs optimizer=sgd and momentum > 0");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\nschedule=step\n", "bad.cfg:6:", "needs step_size=");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[train]\nt_max=4\n", "bad.cfg:7:", "t_max: applies to schedule=cosine");
    /* names and from= */
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[dense]\nunits=3\nfrom=nope\n", "bad.cfg:8:",
                       "[dense] 'dense2' from: unknown layer 'nope'");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\nfrom=d2\n[dense]\nname=d2\nunits=3\n", "bad.cfg:6:",
                       "from: layer 'd2' comes later (line 7)");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[dense]\nunits=3\nfrom=-3\n", "bad.cfg:8:", "from: -3",
                       "-2 reaches the input");
    EXPECT_PARSE_ERROR(NET "[dense]\nname=fc\nunits=3\n[dense]\nname=fc\nunits=3\n", "bad.cfg:7:",
                       "[dense] 'fc': duplicate layer name (the dense at line 4 has it)");
    EXPECT_PARSE_ERROR(NET "[dense]\nname=dense2\nunits=3\n[dense]\nunits=3\n", "bad.cfg:7:",
                       "'dense2': duplicate layer name", "default name");
    EXPECT_PARSE_ERROR(NET "[dense]\nname=2fc\nunits=3\n", "bad.cfg:5:", "name: '2fc' is not a layer name");
    EXPECT_PARSE_ERROR(NET "[dense]\nname=x\nunits=3\n", "bad.cfg:5:", "name: 'x' is reserved");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[concat]\nfrom=dense1\n", "bad.cfg:7:", "concat needs two or more");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[add]\n", "bad.cfg:6:", "[add] 'add1': missing from=");
    EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[dense]\nunits=3\nfrom=input,dense1\n", "bad.cfg:8:",
                       "[dense] takes one input; 2 are listed");
    /* shape errors at build: "bad.cfg:LINE: layer 'name' (type): " then the op's words */
    EXPECT_BUILD_ERROR(NET "[conv]\nname=a\nfilters=4\nsize=3\n[conv]\nname=b\nfrom=input\nfilters=4\nsize=5\n"
                       "[add]\nname=sum\nfrom=a,b\n[dense]\nunits=3\n",
                       "bad.cfg:13: layer 'sum' (add): inputs differ in shape: 'a' is [4, 4, 6, 6], "
                       "'b' is [4, 4, 4, 4]");
    EXPECT_BUILD_ERROR(NET "[conv]\nname=a\nfilters=4\nsize=3\n[maxpool]\nname=p\nfrom=input\n"
                       "[concat]\nname=cat\nfrom=a,p\n[dense]\nunits=3\n",
                       "bad.cfg:11: layer 'cat' (concat):", "'a' [4, 4, 6, 6]", "'p' [4, 1, 4, 4]");
    EXPECT_BUILD_ERROR(NET "[conv]\nfilters=3\nsize=3\ngroups=3\n[dense]\nunits=3\n", "bad.cfg:4: layer 'conv1' (conv):",
                       "groups=3 must divide the input's 1 channels");
    /* issue 12: 65536 filters of 256x256 feed a dense layer 2^32 inputs; (int) once wrapped that to 0 */
    EXPECT_BUILD_ERROR("[net]\ninput=1,256,256\nclasses=2\n[conv]\nfilters=65536\nsize=3\npad=1\n[dense]\nunits=2\n",
                       "bad.cfg:8: layer 'dense1' (dense):", "4294967296 input features per sample, more than 2147483647");
    EXPECT_PARSE_ERROR(NET "[conv]\nfilters=4\nsize=3\ngroups=3\n", "bad.cfg:7:",
                       "groups: 3 must divide filters=4");
    EXPECT_BUILD_ERROR(NET "[conv]\nname=big\nfilters=4\nsize=9\n[dense]\nunits=3\n", "bad.cfg:4: layer 'big' (conv):");
    EXPECT_BUILD_ERROR("[net]\ninput=5\nclasses=3\n[conv]\nfilters=4\nsize=3\n", "bad.cfg:4: layer 'conv1' (conv):",
                       "[4, 5]");
    EXPECT_BUILD_ERROR(NET "[maxpool]\nsize=2\npad=2\n[dense]\nunits=3\n", "bad.cfg:4: layer 'maxpool1' (maxpool):",
                       "pad");
    EXPECT_BUILD_ERROR(NET "[reshape]\nshape=7,7\n[dense]\nunits=3\n", "bad.cfg:4: layer 'reshape1' (reshape):",
                       "cannot reshape");
    /* the final layer must give [batch, classes] */
    EXPECT_BUILD_ERROR(NET "[dense]\nname=fc\nunits=5\n", "bad.cfg:4: layer 'fc' (dense):",
                       "output is [4, 5]; the model needs [4, 3] (classes=3 in [net])");
    EXPECT_BUILD_ERROR(NET "[conv]\nfilters=3\nsize=8\n", "bad.cfg:4: layer 'conv1' (conv):",
                       "output is [4, 3, 1, 1]", "add [flatten]");
}

static void test_api_misuse(void)
{
    CHECK(ds_model_load("/nonexistent/dir/m.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "/nonexistent/dir/m.cfg: cannot open") != NULL);
    CHECK(ds_model_parse(NULL, "n.cfg") == NULL);
    CHECK(ds_model_build(NULL, NULL, 1, NULL) == NULL);
    CHECK(ds_model_num_layers(NULL) == 0 && ds_model_train_cfg(NULL) == NULL);
    ds_model_free(NULL);

    /* building twice into one graph: the second "x" is a duplicate */
    ds_model *m = ds_model_parse(NET "[dense]\nunits=3\n", "twice.cfg");
    ds_graph *g = ds_graph_new(1);
    ds_node *x;
    CHECK(m && ds_model_build(m, g, 2, &x) != NULL);
    CHECK(m && ds_model_build(m, g, 2, &x) == NULL && x == NULL);
    CHECK(m && ds_model_build(m, g, 0, &x) == NULL);
    ds_graph_free(g);
    ds_model_free(m);

    /* a file with a NUL byte is not a model file */
    char path[] = "/tmp/ds_test_model_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "wb");
        fwrite("[net]\0", 1, 6, f);
        fclose(f);
        CHECK(ds_model_load(path) == NULL && strstr(ds_last_error(), "NUL byte") != NULL);
        remove(path);
    }
}

/* Every prefix of a zoo file parses or fails cleanly (no crash, no leak
 * under ASan); those that parse also build or fail cleanly. */
static void test_truncations(void)
{
    char path[1024];
    zoo_path("inception-small.cfg", path, sizeof path);
    ds_model *full = ds_model_load(path);
    CHECK(full != NULL);
    if (!full) return;
    const char *text = ds_model_text(full);
    size_t n = strlen(text);
    char *buf = malloc(n + 1);
    int parsed = 0, failed_ok = 1;
    for (size_t k = 0; k <= n; k += 7) {
        memcpy(buf, text, k);
        buf[k] = 0;
        ds_model *m = ds_model_parse(buf, "cut.cfg");
        if (!m) {
            failed_ok &= !strncmp(ds_last_error(), "cut.cfg:", 8);
            continue;
        }
        parsed++;
        ds_graph *g = ds_graph_new(1);
        ds_node *x;
        if (!ds_model_build(m, g, 1, &x)) failed_ok &= !strncmp(ds_last_error(), "cut.cfg:", 8);
        ds_graph_free(g);
        ds_model_free(m);
    }
    CHECK(parsed > 0 && failed_ok);
    free(buf);
    ds_model_free(full);
}

int main(void)
{
    test_zoo_builds();
    test_lenet();
    test_mlp_softmax_counts();
    test_resnet_wiring();
    test_inception_wiring();
    test_options();
    test_errors();
    test_api_misuse();
    test_truncations();
    /* a Deep Belief Network: [rbm] layers, [pretrain], normalize=none */
    {
        ds_model *m = ds_model_parse("[net]\ninput=1,4,4\nclasses=2\nnormalize=none\n[rbm]\nunits=6\n"
                                     "visible=gaussian\n[rbm]\nunits=5\n[dense]\nunits=2\n[pretrain]\nk=3\n"
                                     "persistent=1\nlr=0.01\n",
                                     "dbn.cfg");
        CHECK(m != NULL);
        if (m) {
            const ds_pretrain_cfg *p = ds_model_pretrain_cfg(m);
            CHECK(p->k == 3 && p->persistent == 1 && fabsf(p->lr - 0.01f) < 1e-9f && p->epochs == 10 && p->batch == 100);
            CHECK(ds_model_normalize(m) == 0);
            CHECK(ds_model_layer_rbm_visible(m, 0) == DS_RBM_GAUSSIAN && ds_model_layer_rbm_visible(m, 1) == DS_RBM_BERNOULLI);
            CHECK(ds_model_layer_rbm_visible(m, 2) == -1 && !strcmp(ds_model_layer_type(m, 0), "rbm"));
            ds_model_free(m);
        }
        EXPECT_PARSE_ERROR(NET "[rbm]\nunits=3\nvisible=poisson\n", "bad.cfg:6:", "visible", "bernoulli|gaussian");
        EXPECT_PARSE_ERROR(NET "[dense]\nunits=3\n[pretrain]\nk=0\n", "bad.cfg:7:", "[pretrain] k", "1..1000");
    }
    return ds_test_summary("model");
}
