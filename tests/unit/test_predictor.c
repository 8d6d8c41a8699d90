/* test_predictor.c — ds_predictor (src/io/predictor.c): a checkpoint with
 * known weights, normalisation and class names scores raw samples as worked
 * out by hand; parameters are the live tensors; bad inputs fail cleanly. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *model_text = "[net]\ninput=2\nclasses=2\n\n[dense]\nunits=2\n";

static int err_has(const char *a)
{
    int ok = strstr(ds_last_error(), a) != NULL;
    if (!ok) fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", ds_last_error(), a);
    return ok;
}

/* dense: identity weights, bias (0, 1); normalisation mean 1, std 2; classes "bogus", "real" */
static const char *write_checkpoint(void)
{
    ds_model *m = ds_model_parse(model_text, "t.cfg");
    ds_graph *g = ds_graph_new(1);
    ds_program prog;
    CHECK(m && g && ds_model_build_program(m, g, 4, NULL, &prog) == 0 && ds_graph_compile(g) == 0);
    for (int i = 0; i < ds_graph_num_params(g); i++) {
        ds_node *p = ds_graph_param(g, i);
        float *v = ds_node_value(p);
        if (ds_node_numel(p) == 4) v[0] = 1, v[1] = 0, v[2] = 0, v[3] = 1;
        else v[0] = 0, v[1] = 1;
    }
    float mean[2] = {1, 1}, sd[2] = {2, 2};
    ds_norm nm = {2, mean, sd};
    const char *path = ds_test_path("p.safetensors");
    ds_meta_kv kv[1] = {{"classes", "[\"bogus\", \"real\"]"}};
    CHECK(ds_checkpoint_save_ex(path, g, NULL, model_text, &nm, NULL, kv, 1) == 0);
    ds_graph_free(g);
    ds_model_free(m);
    return path;
}

int main(void)
{
    const char *path = write_checkpoint();
    for (int batch = 1; batch <= 8; batch += 7) { /* 5 samples in batches of 1, and in one of 8 */
        ds_predictor *p = ds_predictor_open(path, batch);
        CHECK(p != NULL);
        if (!p) break;
        int dims[DS_MAX_DIMS];
        CHECK(ds_predictor_input_shape(p, dims) == 1 && dims[0] == 2);
        CHECK(ds_predictor_classes(p) == 2);
        CHECK(!strcmp(ds_predictor_class_name(p, 0), "bogus") && !strcmp(ds_predictor_class_name(p, 1), "real"));
        CHECK(ds_predictor_class_name(p, 2) == NULL && ds_predictor_class_name(p, -1) == NULL);
        float x[10] = {3, 1, 1, 1, 1, 3, -1, 1, 5, 5}, keep[10], probs[10];
        memcpy(keep, x, sizeof x);
        CHECK(ds_predictor_predict(p, x, 5, probs) == 0);
        CHECK(!memcmp(x, keep, sizeof x)); /* the caller's array is not normalised */
        for (int i = 0; i < 5; i++) {     /* logits ((x0-1)/2, (x1-1)/2 + 1) */
            double a = (x[2 * i] - 1) / 2, b = (x[2 * i + 1] - 1) / 2 + 1;
            CHECK_NEAR(probs[2 * i], 1 / (1 + exp(b - a)), 1e-6);
            CHECK_NEAR(probs[2 * i] + probs[2 * i + 1], 1, 1e-6);
        }
        CHECK(ds_predictor_predict(p, x, 0, probs) == 0);
        CHECK(ds_predictor_predict(p, x, -1, probs) == -1 && err_has("at least 0"));
        x[3] = NAN;
        CHECK(ds_predictor_predict(p, x, 5, probs) == -1 && err_has("sample 1"));
        /* parameters: names, shapes, and the live values */
        CHECK(ds_predictor_num_params(p) == 2);
        int nd;
        float *w;
        const char *name = ds_predictor_param(p, 0, dims, &nd, &w);
        CHECK(name && !strcmp(name, "dense1.weight") && nd == 2 && dims[0] == 2 && dims[1] == 2 && w[0] == 1 && w[1] == 0);
        name = ds_predictor_param(p, 1, dims, &nd, &w);
        CHECK(name && !strcmp(name, "dense1.bias") && nd == 1 && dims[0] == 2 && w[1] == 1);
        if (w) w[1] = 0; /* zero bias: sample (3, 3) is then even */
        float even[2] = {3, 3};
        CHECK(ds_predictor_predict(p, even, 1, probs) == 0);
        CHECK_NEAR(probs[0], 0.5, 1e-6);
        CHECK(ds_predictor_param(p, 2, dims, &nd, &w) == NULL && err_has("parameter 2"));
        ds_predictor_free(p);
    }
    ds_predictor_free(NULL);
    CHECK(ds_predictor_open(path, 0) == NULL && err_has("batch must be at least 1"));
    CHECK(ds_predictor_open(ds_test_path("none.safetensors"), 4) == NULL && err_has("none.safetensors"));
    /* a truncated checkpoint */
    FILE *f = fopen(path, "rb");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    const char *cut = ds_test_path("cut.safetensors");
    f = fopen(cut, "wb");
    if (f) fwrite(buf, 1, n / 2, f), fclose(f);
    CHECK(ds_predictor_open(cut, 4) == NULL && err_has("cut.safetensors"));
    return ds_test_summary("predictor");
}
