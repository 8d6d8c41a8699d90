/* test_checkpoint.c — safetensors checkpoints: exact round trips of weights,
 * buffers, optimizer moments and metadata; resuming gives the same next
 * step; every malformed file is an error naming the file and the problem;
 * failed saves leave the previous checkpoint intact. Also the JSON reader
 * and writer the format rests on. */
#include "harness.h"

#include "../../src/io/json.h"

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp; /* ds_test_tmpdir() */

/* The last error names `a` and `b` (b may be NULL). */
static int err_has(const char *a, const char *b)
{
    const char *e = ds_last_error();
    int ok = strstr(e, a) && (!b || strstr(e, b));
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\" / \"%s\"\n", e, a, b ? b : "");
    return ok;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len ? *len : 1);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

/* ---- a small network: conv → batch norm → relu → dropout → dense ---- */

typedef struct net {
    ds_graph *g;
    ds_node *x, *y, *loss;
    ds_optim *o;
} net;

#define B 4

static net build(uint64_t seed, int with_bn, int fc_out, ds_optim_kind kind)
{
    net n = {0};
    n.g = ds_graph_new(seed);
    n.x = ds_input(n.g, "x", ds_shape_of(4, B, 2, 6, 6));
    ds_node *h = ds_nn_conv2d(n.g, "conv1", n.x, 3, 3, (ds_conv_opt){0}, (ds_init){0}, 1);
    if (with_bn) h = ds_nn_batchnorm(n.g, "bn1", h);
    h = ds_dropout(n.g, ds_relu(n.g, h), 0.25f);
    ds_node *logits = ds_nn_dense(n.g, "fc", h, fc_out, (ds_init){0}, 1);
    n.y = ds_input(n.g, "y", ds_shape_of(1, B));
    n.loss = ds_softmax_cross_entropy(n.g, logits, n.y, NULL);
    CHECK(ds_graph_compile(n.g) == 0);
    ds_optim_cfg cfg = {.kind = kind, .lr = 0.01f, .weight_decay = 0.01f, .momentum = 0.9f};
    n.o = ds_optim_new(n.g, &cfg);
    CHECK(n.o != NULL);
    return n;
}

static void drop(net *n)
{
    ds_optim_free(n->o);
    ds_graph_free(n->g);
}

static int step(net *n, ds_rng *data)
{
    ds_test_fill(ds_node_value(n->x), ds_node_numel(n->x), -1, 1, data);
    for (int i = 0; i < B; i++) ds_node_value(n->y)[i] = (float)ds_rng_below(data, 5);
    ds_graph_zero_grad(n->g);
    if (ds_graph_forward(n->g) || ds_graph_backward(n->g, n->loss, NULL)) return -1;
    return ds_optim_step(n->o);
}

/* Every parameter and buffer of a and b, and every optimizer buffer,
 * bit-identical. */
static int same_state(net *a, net *b)
{
    int np = ds_graph_num_params(a->g), t = 0;
    if (np != ds_graph_num_params(b->g) || ds_optim_steps(a->o) != ds_optim_steps(b->o)) return 0;
    for (int i = 0; i < np; i++) {
        ds_node *p = ds_graph_param(a->g, i), *q = ds_graph_param(b->g, i);
        size_t bytes = ds_node_numel(p) * sizeof(float);
        if (memcmp(ds_node_value(p), ds_node_value(q), bytes) != 0) return 0;
        if (!ds_node_is_trainable(p)) continue;
        for (int k = 0; k < ds_optim_num_state(a->o); k++)
            if (memcmp(ds_optim_state(a->o, t, k), ds_optim_state(b->o, t, k), bytes) != 0)
                return 0;
        t++;
    }
    return 1;
}

/* quotes, newlines, backslashes, a tab, a control byte, UTF-8 */
static const char *model_text = "[net]\ninput=2x6x6 # \"quoted\" \\ back\\slash\n"
                                "[conv]\tname=conv1\r\n\x01 caf\xc3\xa9 \xe2\x9c\x93 "
                                "\xf0\x9f\x98\x80\n";

static void test_round_trip(void)
{
    net a = build(1, 1, 5, DS_ADAM);
    ds_rng data;
    ds_rng_seed(&data, 42);
    CHECK(step(&a, &data) == 0);
    CHECK(step(&a, &data) == 0);

    float mean[2] = {0.1f, 1.0f / 3}, sd[2] = {0.2860402f, 1e-6f};
    ds_norm nm = {2, mean, sd};
    ds_train_state st = {.epoch = 3, .step = ds_optim_steps(a.o), .batch_in_epoch = 7,
                         .graph_rng = *ds_graph_rng(a.g),
                         .best_metric = nextafter(0.9, 1)}; /* needs all 17 digits */
    ds_rng_seed(&st.loader_rng, 99);
    st.loader_rng.s[3] = 0xffffffffffffffffULL; /* every hex digit used */
    st.loader_rng.s[2] = 0x0123456789abcdefULL;
    const char *p = ds_test_path("a.ckpt");
    CHECK(ds_checkpoint_save(p, a.g, a.o, model_text, &nm, &st) == 0);

    /* layout: u64 length, space-padded header to a multiple of 8 */
    size_t len;
    unsigned char *raw = slurp(p, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)raw[i] << (8 * i);
    CHECK(len > 8 && n % 8 == 0 && n <= len - 8 && raw[8] == '{');
    CHECK(raw[8 + n - 1] == ' ' || raw[8 + n - 1] == '}');
    free(raw);

    ds_checkpoint *c = ds_checkpoint_open(p);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(strcmp(ds_checkpoint_model_text(c), model_text) == 0);
    ds_norm nb;
    CHECK(ds_checkpoint_norm(c, &nb) == 0);
    CHECK(nb.channels == 2 && memcmp(nb.mean, mean, sizeof mean) == 0 &&
          memcmp(nb.std, sd, sizeof sd) == 0);
    free(nb.mean);
    free(nb.std);
    ds_train_state sb;
    CHECK(ds_checkpoint_state(c, &sb) == 0);
    CHECK(sb.epoch == 3 && sb.step == 2 && sb.batch_in_epoch == 7 &&
          sb.best_metric == nextafter(0.9, 1));
    CHECK(memcmp(&sb.loader_rng, &st.loader_rng, sizeof st.loader_rng) == 0);
    CHECK(memcmp(&sb.graph_rng, &st.graph_rng, sizeof st.graph_rng) == 0);

    /* 8 parameters and buffers, then Adam's m and v for the 6 trainable */
    CHECK(ds_checkpoint_num_tensors(c) == 8 + 2 * 6);
    ds_shape s;
    const float *d;
    CHECK(strcmp(ds_checkpoint_tensor(c, 0, &s, &d), "conv1.weight") == 0);
    CHECK(s.ndim == 4 && s.d[0] == 3 && s.d[1] == 2 && s.d[2] == 3 && s.d[3] == 3);
    CHECK(memcmp(d, ds_node_value(ds_graph_find(a.g, "conv1.weight")), 54 * sizeof(float)) == 0);
    CHECK(strcmp(ds_checkpoint_tensor(c, 8, NULL, NULL), "optim.0.conv1.weight") == 0);
    CHECK(strcmp(ds_checkpoint_tensor(c, 19, NULL, NULL), "optim.1.fc.bias") == 0);
    CHECK(ds_checkpoint_tensor(c, 20, NULL, NULL) == NULL);

    /* a fresh network (other init) restored from the file equals the first */
    net b = build(2, 1, 5, DS_ADAM);
    CHECK(!same_state(&a, &b));
    CHECK(ds_checkpoint_restore(c, b.g, b.o) == 0);
    CHECK(same_state(&a, &b));
    CHECK(ds_optim_steps(b.o) == 2);
    const float *rm = ds_node_value(ds_graph_find(b.g, "bn1.running_mean"));
    CHECK(rm[0] != 0.0f); /* running stats moved during training, and came back */

    /* the next step (dropout included) is identical once the RNGs are restored */
    *ds_graph_rng(b.g) = sb.graph_rng;
    ds_rng data_b = data;
    CHECK(step(&a, &data) == 0);
    CHECK(step(&b, &data_b) == 0);
    CHECK(same_state(&a, &b));

    /* the moments matter: weights alone with a fresh optimizer diverge */
    net w = build(3, 1, 5, DS_ADAM);
    CHECK(ds_checkpoint_restore(c, w.g, NULL) == 0);
    CHECK(ds_optim_steps(w.o) == 0);
    *ds_graph_rng(w.g) = sb.graph_rng;
    ds_rng data_w = data_b;
    ds_rng data_a = data_b;
    CHECK(step(&w, &data_w) == 0);
    CHECK(step(&b, &data_a) == 0);
    CHECK(memcmp(ds_node_value(ds_graph_find(w.g, "fc.weight")),
                 ds_node_value(ds_graph_find(b.g, "fc.weight")), 5 * 48 * sizeof(float)) != 0);

    /* an optimizer of another kind is refused, naming both */
    net m = build(4, 1, 5, DS_SGD);
    CHECK(ds_checkpoint_restore(c, m.g, m.o) == -1);
    CHECK(err_has(p, "adam") && err_has("sgd", NULL));
    ds_checkpoint_close(c);
    drop(&a), drop(&b), drop(&w), drop(&m);
}

/* Saved without optimizer, norm, state or model: each absent piece reads
 * as documented; NaN and ±Inf best metrics survive. */
static void test_optional_metadata(void)
{
    net a = build(5, 1, 5, DS_ADAMW);
    const char *p = ds_test_path("bare.ckpt");
    CHECK(ds_checkpoint_save(p, a.g, NULL, NULL, NULL, NULL) == 0);
    ds_checkpoint *c = ds_checkpoint_open(p);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(ds_checkpoint_num_tensors(c) == 8);
    CHECK(strcmp(ds_checkpoint_model_text(c), "") == 0);
    ds_norm nm = {7, NULL, NULL};
    CHECK(ds_checkpoint_norm(c, &nm) == 0 && nm.channels == 0 && !nm.mean);
    ds_train_state st;
    CHECK(ds_checkpoint_state(c, &st) == -1 && err_has(p, "no training state"));
    CHECK(ds_checkpoint_restore(c, a.g, a.o) == -1 && err_has(p, "no optimizer state"));
    CHECK(ds_checkpoint_restore(c, a.g, NULL) == 0);
    ds_checkpoint_close(c);

    double vals[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        ds_train_state s = {.best_metric = vals[i], .step = 123456789012L};
        CHECK(ds_checkpoint_save(p, a.g, a.o, "", NULL, &s) == 0);
        c = ds_checkpoint_open(p);
        CHECK(c && ds_checkpoint_state(c, &st) == 0);
        CHECK(st.step == 123456789012L);
        CHECK(i == 0 ? isnan(st.best_metric) : st.best_metric == vals[i]);
        ds_checkpoint_close(c);
    }
    /* extra metadata strings round-trip; reserved and repeated keys are refused */
    ds_meta_kv kv[2] = {{"classes", "[\"bogus\",\"real\"]"}, {"data", "{\"seed\":7}"}};
    CHECK(ds_checkpoint_save_ex(p, a.g, NULL, NULL, NULL, NULL, kv, 2) == 0);
    c = ds_checkpoint_open(p);
    CHECK(c && ds_checkpoint_meta(c, "classes") && strcmp(ds_checkpoint_meta(c, "classes"), kv[0].value) == 0);
    CHECK(c && ds_checkpoint_meta(c, "data") && strcmp(ds_checkpoint_meta(c, "data"), kv[1].value) == 0);
    CHECK(c && ds_checkpoint_meta(c, "absent") == NULL);
    ds_checkpoint_close(c);
    ds_meta_kv dup[2] = {{"x", "1"}, {"x", "2"}}, res[1] = {{"model", "m"}};
    CHECK(ds_checkpoint_save_ex(p, a.g, NULL, NULL, NULL, NULL, dup, 2) == -1 && err_has(p, "twice"));
    CHECK(ds_checkpoint_save_ex(p, a.g, NULL, NULL, NULL, NULL, res, 1) == -1 && err_has(p, "reserved"));
    float bad = NAN, one = 1;
    ds_norm nn = {1, &bad, &one};
    CHECK(ds_checkpoint_save(p, a.g, a.o, "", &nn, NULL) == -1 && err_has(p, "mean[0]"));
    drop(&a);
}

/* Restoring into another architecture fails, names the tensor, and leaves
 * the graph unchanged. */
static void test_mismatch(void)
{
    net a = build(6, 1, 5, DS_ADAM), nobn = build(7, 0, 5, DS_ADAM), wide = build(8, 1, 6, DS_ADAM);
    const char *p = ds_test_path("mm.ckpt"), *q = ds_test_path("nobn.ckpt");
    CHECK(ds_checkpoint_save(p, a.g, a.o, "m", NULL, NULL) == 0);
    CHECK(ds_checkpoint_save(q, nobn.g, NULL, "m", NULL, NULL) == 0);

    ds_checkpoint *c = ds_checkpoint_open(q);
    CHECK(ds_checkpoint_restore(c, a.g, NULL) == -1);
    CHECK(err_has(q, "has no tensor 'bn1.weight'"));
    ds_checkpoint_close(c);

    float before[54];
    memcpy(before, ds_node_value(ds_graph_find(wide.g, "conv1.weight")), sizeof before);
    c = ds_checkpoint_open(p);
    CHECK(ds_checkpoint_restore(c, wide.g, NULL) == -1);
    CHECK(err_has(p, "'fc.weight'") && err_has("[5, 48]", "[6, 48]"));
    CHECK(memcmp(before, ds_node_value(ds_graph_find(wide.g, "conv1.weight")), sizeof before) == 0);
    ds_checkpoint_close(c);
    drop(&a), drop(&nobn), drop(&wide);
}

/* A safetensors file from a header string and `data` zero bytes. */
static void write_st(const char *path, const char *header, size_t data)
{
    size_t n = strlen(header);
    unsigned char *b = calloc(8 + n + data, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    spit(path, b, 8 + n + data);
    free(b);
}

static void expect_open_fail(const char *path, const char *what, const char *what2)
{
    ds_checkpoint *c = ds_checkpoint_open(path);
    CHECK(c == NULL);
    CHECK(err_has(path, what) && (!what2 || err_has(what2, NULL)));
    ds_checkpoint_close(c);
}

static void test_bad_files(void)
{
    expect_open_fail(ds_test_path("missing.ckpt"), "No such file", NULL);
    expect_open_fail(tmp, "not a regular file", NULL);

    /* truncations of a good file: in the length, in the header, in the data */
    size_t len;
    unsigned char *raw = slurp(ds_test_path("a.ckpt"), &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)raw[i] << (8 * i);
    size_t cuts[] = {0, 5, 8, 8 + (size_t)n / 2, 8 + (size_t)n - 1, 8 + (size_t)n,
                     8 + (size_t)n + 1, (8 + n + len) / 2, len - 1};
    const char *cp = ds_test_path("cut.ckpt");
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(cp, raw, cuts[i]);
        int in_data = cuts[i] >= 8 + n;
        expect_open_fail(cp, in_data ? "lie outside the" : "truncated",
                         in_data ? "data section" : NULL);
    }

    /* absurd header lengths */
    memset(raw, 0xff, 8);
    spit(cp, raw, len);
    expect_open_fail(cp, "header length 18446744073709551615", "100 MB");
    raw[7] = 0, raw[6] = 0, raw[5] = 0; /* 2^40 − 1 */
    spit(cp, raw, len);
    expect_open_fail(cp, "header length", "100 MB");
    free(raw);

    const char *bp = ds_test_path("bad.ckpt");
    static const struct {
        const char *header, *what, *what2;
        size_t data;
    } cases[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "bad JSON header",
         "expected ',' or '}'", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", "bad JSON header",
         "after the value", 8},
        {"{\"w\" {}}", "bad JSON header", "expected ':'", 0},
        {"[1, 2]", "bad JSON header", "not an object", 0},
        {"", "bad JSON header", "end of input", 0},
        {"{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", "tensor 'w'",
         "dtype F16", 4},
        {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 'w'", "no dtype", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", "tensor 'w'",
         "lie outside the 8-byte data section", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", "tensor 'w'",
         "lie outside", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "tensor 'w'",
         "needs 12 bytes but data_offsets span 8", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor 'w'",
         "bad size at shape[0]", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
         "tensor 'w'", "at most 6", 4},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "tensor 'w'",
         "needs data_offsets", 8},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]}}", "tensor 'w'",
         "multiple of 4", 12},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "bad JSON header", "member name 'w' is repeated", 8},
        /* issue 12: what the reference reader refuses and deepsky once took */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "4 bytes after the last tensor",
         "data section is 8 bytes", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         "4 bytes at 4", "hole before tensor 'b'", 12},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "tensor 'b'", "overlap tensor 'a'", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         "overlap", NULL, 4},
        {"{\"__metadata__\":{\"format\":\"pt\"},\"__metadata__\":{\"format\":\"deepsky-1\"}}", "bad JSON header",
         "'__metadata__' is repeated", 0},
        {"{\"w\":{\"dtype\":\"F32\\u0000junk\",\"shape\":[1],\"data_offsets\":[0,4]}}", "tensor 'w'",
         "NUL character", 4},
        {"{\"w\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "bad JSON header",
         "NUL character", 4},
        {"{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "bad JSON header",
         "invalid UTF-8", 4},
        {"{\"__metadata__\":{\"model\":\"[net]\\u0000x\"}}", "metadata 'model'", "NUL character", 0},
        {"{\"__metadata__\":{\"format\":\"deepsky-1\",\"epoch\":3}}", "metadata 'epoch'",
         "not a string", 0},
        {"{\"__metadata__\":{\"format\":\"deepsky-9\"}}", "format 'deepsky-9'", NULL, 0},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,8]}}",
         "tensor 'w'", "bad size", 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_st(bp, cases[i].header, cases[i].data);
        expect_open_fail(bp, cases[i].what, cases[i].what2);
    }

    /* deep nesting is an error, not a stack overflow */
    char deep[4096];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    write_st(bp, deep, 0);
    expect_open_fail(bp, "bad JSON header", "nesting too deep");

    /* a file from another writer (PyTorch's metadata, no padding, empty and
     * scalar tensors) opens */
    write_st(bp, "{\"__metadata__\":{\"format\":\"pt\"},\"s\":{\"dtype\":\"F32\",\"shape\":[],"
                 "\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],"
                 "\"data_offsets\":[4,4]}}", 4);
    ds_checkpoint *c = ds_checkpoint_open(bp);
    ds_shape s;
    CHECK(c && ds_checkpoint_num_tensors(c) == 2);
    CHECK(c && strcmp(ds_checkpoint_tensor(c, 1, &s, NULL), "e") == 0 && s.ndim == 2 &&
          s.d[0] == 0);
    ds_checkpoint_close(c);

    /* malformed metadata documents: reported when read */
    write_st(bp, "{\"__metadata__\":{\"state\":\"{\\\"epoch\\\":1}\",\"norm\":\"[1]\"}}", 0);
    c = ds_checkpoint_open(bp);
    ds_train_state st;
    ds_norm nm;
    CHECK(c && ds_checkpoint_state(c, &st) == -1 && err_has(bp, "no valid 'step'"));
    CHECK(c && ds_checkpoint_norm(c, &nm) == -1 && err_has(bp, "metadata 'norm'"));
    ds_checkpoint_close(c);
}

/* Temporary files of path (path.tmp.XXXXXX) left in its folder. */
static size_t temps_of(const char *path)
{
    char pat[512];
    snprintf(pat, sizeof pat, "%s.tmp*", path);
    glob_t gl;
    size_t n = glob(pat, 0, NULL, &gl) == 0 ? gl.gl_pathc : 0;
    globfree(&gl);
    return n;
}

/* A tensor holding NaN or ±Inf, or a normalisation that is not finite or
 * has std ≤ 0, is refused when read (issue 12: a NaN weight once hung the
 * metrics); a model file given as a checkpoint says so. */
static void test_non_finite(void)
{
    const char *bp = ds_test_path("nf.ckpt");
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    float vals[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"NaN", "+Inf", "-Inf"};
    for (int v = 0; v < 3; v++) {
        size_t n = strlen(hdr);
        unsigned char b[256] = {0};
        float w[3] = {1, vals[v], 2};
        b[0] = (unsigned char)n;
        memcpy(b + 8, hdr, n);
        memcpy(b + 8 + n, w, sizeof w);
        spit(bp, b, 8 + n + sizeof w);
        expect_open_fail(bp, "tensor 'a' element 1", names[v]);
    }
    static const struct {
        const char *norm, *what;
    } norms[] = {
        {"{\\\"channels\\\":1,\\\"mean\\\":[1e39],\\\"std\\\":[1]}", "mean[0] is inf"},
        {"{\\\"channels\\\":2,\\\"mean\\\":[0,0],\\\"std\\\":[1,0]}", "std[1] is 0"},
        {"{\\\"channels\\\":1,\\\"mean\\\":[0],\\\"std\\\":[-2]}", "std[0] is -2"},
        {"{\\\"channels\\\":1,\\\"mean\\\":[0],\\\"std\\\":[1e39]}", "std[0] is inf"},
    };
    for (size_t i = 0; i < sizeof norms / sizeof *norms; i++) {
        char h[512];
        snprintf(h, sizeof h, "{\"__metadata__\":{\"norm\":\"%s\"}}", norms[i].norm);
        write_st(bp, h, 0);
        ds_checkpoint *c = ds_checkpoint_open(bp);
        ds_norm nm = {0};
        CHECK(c != NULL);
        CHECK(c && ds_checkpoint_norm(c, &nm) == -1 && err_has(bp, norms[i].what) && nm.mean == NULL);
        ds_checkpoint_close(c);
    }
    const char *cfg = ds_test_path("model.cfg");
    spit(cfg, "[net]\ninput=1,8,8\nclasses=2\n", 28);
    expect_open_fail(cfg, "not a checkpoint", "this is a model file");
    spit(cfg, "hello world, this is text", 25);
    expect_open_fail(cfg, "is a text file, not a checkpoint", NULL);
}

/* A failed save reports the path and the reason, removes its temporary
 * file and leaves the previous checkpoint byte-identical. */
static void test_atomic(void)
{
    net a = build(9, 1, 5, DS_RMSPROP);
    char p[512], t[512], other[512]; /* ds_test_path's buffers rotate */
    snprintf(p, sizeof p, "%s", ds_test_path("keep.ckpt"));
    snprintf(t, sizeof t, "%s", ds_test_path("keep.ckpt.tmp"));
    snprintf(other, sizeof other, "%s", ds_test_path("other.ckpt"));
    ds_train_state st = {.step = 1};
    CHECK(ds_checkpoint_save(p, a.g, a.o, "old", NULL, &st) == 0);
    size_t n0, n1;
    unsigned char *before = slurp(p, &n0), *after;
    struct stat sb;

    const char *nodir = ds_test_path("no/such/dir/x.ckpt");
    CHECK(ds_checkpoint_save(nodir, a.g, a.o, "m", NULL, &st) == -1);
    CHECK(err_has(nodir, "No such file or directory"));

    st.step = 2;
    /* a file-size limit hit part way through the data (as a full disk) */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = n0 / 2;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK(ds_checkpoint_save(p, a.g, a.o, "new", NULL, &st) == -1);
    CHECK(err_has(p, "File too large"));
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(temps_of(p) == 0);

    /* the old fixed temporary name taken by a link to /dev/full and by a
     * directory: neither is used (the temporary file is created O_EXCL under
     * a fresh name) nor removed (not ours) */
    CHECK(symlink("/dev/full", t) == 0);
    CHECK(ds_checkpoint_save(other, a.g, a.o, "m", NULL, &st) == 0);
    CHECK(lstat(t, &sb) == 0 && S_ISLNK(sb.st_mode));
    unlink(t);
    CHECK(mkdir(t, 0700) == 0);
    CHECK(ds_checkpoint_save(other, a.g, a.o, "m", NULL, &st) == 0);
    CHECK(stat(t, &sb) == 0 && S_ISDIR(sb.st_mode));
    rmdir(t);

    after = slurp(p, &n1);
    CHECK(n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);

    /* the target is a directory: refused, nothing left behind */
    const char *d = ds_test_path("isdir.ckpt");
    CHECK(mkdir(d, 0700) == 0);
    CHECK(ds_checkpoint_save(d, a.g, a.o, "m", NULL, &st) == -1 && err_has(d, "folder"));
    CHECK(temps_of(d) == 0);

    /* writing to /dev/full fails and leaves the device alone */
    if (stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode)) {
        CHECK(ds_checkpoint_save("/dev/full", a.g, a.o, "m", NULL, &st) == -1 && err_has("/dev/full", "No space"));
        CHECK(stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode));
    }

    /* and a good save replaces the file */
    CHECK(ds_checkpoint_save(p, a.g, a.o, "new", NULL, &st) == 0);
    ds_checkpoint *c = ds_checkpoint_open(p);
    CHECK(c && strcmp(ds_checkpoint_model_text(c), "new") == 0);
    CHECK(c && ds_checkpoint_state(c, &st) == 0 && st.step == 2);
    ds_checkpoint_close(c);
    CHECK(temps_of(p) == 0);
    free(before);
    drop(&a);
}

/* ds_optim_state's layout: buffer k of the t-th trainable parameter, buffers
 * skipped; after one Adam step from zero, m = (1 − β₁)g and v = (1 − β₂)g². */
static void test_optim_state(void)
{
    ds_graph *g = ds_graph_new(1);
    ds_input(g, "x", ds_shape_of(1, 1));
    ds_node *a = ds_param(g, "a", ds_shape_of(1, 2), (ds_init){DS_INIT_ZEROS, 0, 0});
    ds_buffer(g, "r", ds_shape_of(1, 3), (ds_init){DS_INIT_ZEROS, 0, 0});
    ds_node *b = ds_param(g, "b", ds_shape_of(1, 1), (ds_init){DS_INIT_ZEROS, 0, 0});
    CHECK(ds_graph_compile(g) == 0);
    static const struct {
        ds_optim_kind kind;
        float momentum;
        int n;
    } kinds[] = {{DS_SGD, 0, 0}, {DS_SGD, 0.9f, 1}, {DS_ADAM, 0, 2}, {DS_ADAMW, 0, 2},
                 {DS_RMSPROP, 0, 1}, {DS_RMSPROP, 0.5f, 2}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        ds_optim_cfg cfg = {.kind = kinds[i].kind, .lr = 0.1f, .momentum = kinds[i].momentum};
        ds_optim *o = ds_optim_new(g, &cfg);
        CHECK(o && ds_optim_num_state(o) == kinds[i].n);
        ds_optim_free(o);
    }
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 0.1f};
    ds_optim *o = ds_optim_new(g, &cfg);
    float ga[2] = {3, -4}, gb = 12;
    memcpy(ds_node_grad(a), ga, sizeof ga);
    ds_node_grad(b)[0] = gb;
    CHECK(ds_optim_step(o) == 0);
    float c1 = (float)(1.0 - 0.9f), c2 = (float)(1.0 - 0.999f);
    float *ma = ds_optim_state(o, 0, 0), *va = ds_optim_state(o, 0, 1);
    float *mb = ds_optim_state(o, 1, 0), *vb = ds_optim_state(o, 1, 1);
    CHECK(ma && va && mb && vb);
    if (ma && va && mb && vb) {
        CHECK(ma[0] == c1 * 3 && ma[1] == c1 * -4 && mb[0] == c1 * 12);
        CHECK(va[0] == c2 * 3 * 3 && va[1] == c2 * -4 * -4 && vb[0] == c2 * 12 * 12);
    }
    CHECK(!ds_optim_state(o, 2, 0) && !ds_optim_state(o, -1, 0) && !ds_optim_state(o, 0, 2));
    CHECK(ds_optim_steps(o) == 1);
    ds_optim_set_steps(o, 41);
    CHECK(ds_optim_steps(o) == 41);
    ds_optim_free(o);
    ds_graph_free(g);
}

/* ---- the JSON layer ---- */

static int parses(const char *s)
{
    char err[128];
    ds_json *j = ds_json_parse(s, strlen(s), err, sizeof err);
    ds_json_free(j);
    return j != NULL;
}

static void test_json(void)
{
    char err[128];
    const char *s = "{\"a\":\"\\ud83d\\ude00\\u00e9\\n\\/\",\"b\":[1,-2.5e3,true,null,{}],"
                    "\"c\":18446744073709551615,\"d\":-9223372036854775808}";
    ds_json *j = ds_json_parse(s, strlen(s), err, sizeof err);
    CHECK(j != NULL);
    if (!j) return;
    const ds_json *a = ds_json_get(j, "a"), *b = ds_json_get(j, "b");
    CHECK(a && strcmp(a->str, "\xf0\x9f\x98\x80\xc3\xa9\n/") == 0);
    CHECK(b && b->n == 5 && b->kids[2].type == DS_JSON_BOOL && b->kids[2].boolean &&
          b->kids[3].type == DS_JSON_NULL && b->kids[4].type == DS_JSON_OBJ);
    double x;
    uint64_t u;
    int64_t i;
    CHECK(ds_json_double(&b->kids[1], &x) == 0 && x == -2500.0);
    CHECK(ds_json_u64(&b->kids[1], &u) == -1);
    CHECK(ds_json_u64(ds_json_get(j, "c"), &u) == 0 && u == UINT64_MAX);
    CHECK(ds_json_i64(ds_json_get(j, "c"), &i) == -1);
    CHECK(ds_json_i64(ds_json_get(j, "d"), &i) == 0 && i == INT64_MIN);
    ds_json_free(j);

    CHECK(!parses("01") && !parses("1.") && !parses("1e") && !parses("-") && !parses("tru"));
    CHECK(!parses("\"\\ud800\"") && !parses("\"\\udc00\"") && !parses("\"\\ud800\\u0041\""));
    CHECK(!parses("\"a\nb\"") && !parses("\"\\x\"") && !parses("[1,]") && !parses("{\"a\":1,}"));
    CHECK(parses(" [ ] ") && parses("\"\"") && parses("0") && parses("-0.5E+2"));

    /* writer: escapes, and bytes that are not UTF-8 become \u00XX */
    ds_jbuf w = {0};
    const char raw[] = "q\"b\\n\n\t\x01\xc3\xa9\xff\xc3";
    ds_jb_str(&w, raw, sizeof raw - 1);
    CHECK(strcmp(w.p, "\"q\\\"b\\\\n\\n\\t\\u0001\xc3\xa9\\u00ff\\u00c3\"") == 0);
    ds_jb_free(&w);
    /* overlong '/', a surrogate, above U+10FFFF, a lone continuation byte */
    const char bad[] = "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\x80";
    ds_jb_str(&w, bad, sizeof bad - 1);
    CHECK(strcmp(w.p, "\"\\u00c0\\u00af\\u00ed\\u00a0\\u0080"
                      "\\u00f4\\u0090\\u0080\\u0080\\u0080\"") == 0);
    ds_jb_free(&w);
}

int main(void)
{
    if (!(tmp = ds_test_tmpdir())) return 1;
    test_json();
    test_optim_state();
    test_round_trip();
    test_optional_metadata();
    test_mismatch();
    test_bad_files();
    test_non_finite();
    test_atomic();
    return ds_test_summary("checkpoint");
}
