/* test_onnx_gan.c — a GAN's discriminator exported to ONNX (its data scale
 * as Sub/Div nodes in front) and imported back by deepsky gives the
 * probabilities of the original discriminator on data in the data's units;
 * the generator export's own check against `deepsky sample --z` is in
 * tests/e2e/test_onnx.sh. Skipped (77) in a build without ONNX support. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static const char *TINY =
    "[gan]\nlatent = 4\n"
    "[train]\noptimizer = sgd\nlr = 0.05\nbatch = 4\nepochs = 1\nseed = 3\n"
    "[generator]\ninput = 4\n"
    "[dense]\nname = g_fc\nunits = 18\nbatch_normalize = 1\nactivation = relu\n"
    "[reshape]\nshape = 2,3,3\n"
    "[deconv]\nname = g_out\nfilters = 1\nsize = 4\nstride = 2\npad = 1\nactivation = tanh\n"
    "[discriminator]\ninput = 1,6,6\n"
    "[conv]\nname = d_conv\nfilters = 3\nsize = 3\nstride = 2\npad = 1\nbatch_normalize = 1\n"
    "activation = leaky_relu\nalpha = 0.2\n"
    "[flatten]\n[dense]\nname = d_out\nunits = 1\n";

int main(void)
{
    if (!ds_onnx_available()) {
        printf("test_onnx_gan: built without ONNX: skipped\n");
        return 77;
    }
    enum { B = 5, N = 36 };
    ds_gan_model *m = ds_gan_model_parse(TINY, "tiny.cfg");
    CHECK(m != NULL);
    ds_gan *g = m ? ds_gan_new(m, B, 7) : NULL;
    CHECK(g != NULL);
    if (!g) return ds_test_summary("test_onnx_gan");
    ds_gan_scale s = {DS_GAN_LINEAR, 1, 10.0f, 250.0f}; /* data in 10..250 (counts, say) */
    ds_gan_set_scale(g, &s);
    ds_program *dp = ds_gan_program(g, 1);
    ds_graph_set_training(dp->g, 0);
    /* running statistics other than 0/1, so the exported BatchNormalization is checked */
    for (int i = 0; i < ds_graph_num_params(dp->g); i++) {
        ds_node *p = ds_graph_param(dp->g, i);
        const char *nm = ds_node_name(p);
        float *v = ds_node_value(p);
        for (size_t k = 0; k < ds_node_numel(p); k++)
            if (strstr(nm, "running_var")) v[k] = 0.5f + 0.1f * (float)k;
            else if (strstr(nm, "running_mean")) v[k] = 0.05f * (float)k - 0.1f;
    }
    CHECK(ds_gan_save(g, ds_test_path("gan.safetensors"), NULL, NULL, 0) == 0);
    CHECK(ds_onnx_export_ex(ds_test_path("gan.safetensors"), ds_test_path("d.onnx"), "discriminator") == 0);
    CHECK(ds_onnx_export_ex(ds_test_path("gan.safetensors"), ds_test_path("x.onnx"), "critic") != 0);

    /* x in data units (inside lo..hi: deepsky's scale clips outside it, the export does not) */
    float x[B * N], xs[B * N], want[B];
    ds_rng r;
    ds_rng_seed(&r, 5);
    ds_test_fill(x, B * N, 10.5f, 249.5f, &r);
    memcpy(xs, x, sizeof xs);
    ds_gan_scale_apply(&s, xs, B * N);
    memcpy(ds_node_value(dp->feeds[0]), xs, sizeof xs);
    CHECK(ds_graph_forward(dp->g) == 0);
    const float *logit = ds_node_value(dp->heads[0].out);
    for (int i = 0; i < B; i++) want[i] = 1.0f / (1.0f + expf(-logit[i]));

    CHECK(ds_npy_write(ds_test_path("x.npy"), ds_shape_of(4, B, 1, 6, 6), x) == 0);
    CHECK(ds_onnx_import(ds_test_path("d.onnx"), ds_test_path("imported"), ds_test_path("x.npy"), ds_test_path("p.npy")) == 0);
    float *got = NULL;
    int nd = 0, dims[DS_MAX_DIMS] = {0};
    CHECK(ds_npy_read(ds_test_path("p.npy"), &got, &nd, dims) == 0);
    CHECK(got && nd == 2 && dims[0] == B && dims[1] == 1);
    double worst = 0;
    for (int i = 0; got && i < B; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    printf("discriminator: D(x) %.6f .. %.6f, max |deepsky - ONNX re-imported| = %.2e\n", (double)want[0],
           (double)want[B - 1], worst);
    CHECK(got && worst <= 1e-6);
    free(got);
    ds_gan_free(g);
    ds_gan_model_free(m);
    return ds_test_summary("test_onnx_gan");
}
