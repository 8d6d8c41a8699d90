/* test_gan.c — GAN model files, the GAN step's gradients (each network's,
 * the other held fixed) against central differences, checkpoints of both
 * networks resuming bit for bit, the data scale, and bad inputs. The step's
 * agreement with PyTorch is tests/parity/test_gan.py. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* a tiny pair: z 4 -> 2x3x3 -> 1x6x6 image; image -> 1 logit */
static const char *tiny(const char *gan_extra, const char *g_out, int d_side)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "[gan]\nlatent = 4\n%s\n"
             "[train]\noptimizer = sgd\nlr = 0.05\nbatch = 4\nepochs = 2\nseed = 3\n"
             "[generator]\ninput = 4\n"
             "[dense]\nname = g_fc\nunits = 18\nbatch_normalize = 1\nactivation = relu\n"
             "[reshape]\nshape = 2,3,3\n"
             "[deconv]\nname = g_out\nfilters = 1\nsize = 4\nstride = 2\npad = 1\nactivation = tanh\n%s"
             "[discriminator]\ninput = 1,%d,%d\n"
             "[conv]\nname = d_conv\nfilters = 3\nsize = 3\nstride = 2\npad = 1\nactivation = leaky_relu\nalpha = 0.2\n"
             "[flatten]\n[dense]\nname = d_out\nunits = 1\n",
             gan_extra, g_out, d_side, d_side);
    return buf;
}

/* L_G = BCE(D(G(z)), 1) and L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) by forwards alone (training mode) */
static double losses(ds_gan *g, const float *x, const float *z, int b, double *ld)
{
    ds_program *gp = ds_gan_program(g, 0), *dp = ds_gan_program(g, 1);
    memcpy(ds_node_value(gp->feeds[0]), z, (size_t)b * 4 * sizeof(float));
    ds_graph_forward(gp->g);
    size_t n = ds_node_numel(dp->feeds[0]);
    float *dx = ds_node_value(dp->feeds[0]), *t = ds_node_value(dp->feeds[dp->n_feeds - 1]);
    float *fake = malloc(n * sizeof *fake);
    memcpy(fake, ds_node_value(gp->heads[0].out), n * sizeof *fake);
    double r[3];
    const float *src[3] = {x, fake, fake};
    const float tv[3] = {1, 0, 1};
    for (int k = 0; k < 3; k++) {
        memcpy(dx, src[k], n * sizeof *dx);
        for (int i = 0; i < b; i++) t[i] = tv[k];
        ds_graph_forward(dp->g);
        r[k] = ds_node_value(dp->loss)[0];
    }
    free(fake);
    if (ld) *ld = r[0] + r[1];
    return r[2];
}

/* central differences of the generator's and the discriminator's loss
 * against the gradients one ds_gan_step left (G's through the updated D) */
static void test_step_gradients(void)
{
    /* g_lr ~ 0: G keeps its weights, so the D step's fake is G(z) now */
    ds_gan_model *m = ds_gan_model_parse(tiny("g_lr = 1e-12", "", 6), "tiny.cfg");
    CHECK(m != NULL);
    if (!m) return;
    ds_gan *g = ds_gan_new(m, 4, 11);
    CHECK(g != NULL);
    if (!g) {
        ds_gan_model_free(m);
        return;
    }
    ds_rng r;
    ds_rng_seed(&r, 5);
    float x[4 * 36], z[4 * 4];
    ds_test_fill(x, 4 * 36, -1, 1, &r);
    for (int i = 0; i < 16; i++) z[i] = ds_rng_normal(&r);
    ds_graph *dg = ds_gan_program(g, 1)->g, *gg = ds_gan_program(g, 0)->g;
    /* D's weights before its step, to check its gradient there */
    int nd = ds_graph_num_params(dg);
    float *before[16];
    for (int i = 0; i < nd && i < 16; i++) {
        ds_node *p = ds_graph_param(dg, i);
        before[i] = malloc(ds_node_numel(p) * sizeof(float));
        memcpy(before[i], ds_node_value(p), ds_node_numel(p) * sizeof(float));
    }
    ds_gan_stats st;
    CHECK(ds_gan_step(g, x, NULL, 4, z, NULL, &st) == 0);
    CHECK(st.g_steps == 1 && st.d_steps == 1 && st.samples == 4);
    CHECK(st.d_real > 0 && st.d_real < 1 && st.d_fake > 0 && st.d_fake_after > 0);
    /* the generator's gradient, through the discriminator as updated */
    double worst = 0;
    for (int i = 0; i < ds_graph_num_params(gg); i++) {
        ds_node *p = ds_graph_param(gg, i);
        const float *gr = ds_node_grad(p);
        if (!gr) continue; /* buffers (running statistics) */
        float *v = ds_node_value(p);
        for (size_t j = 0; j < ds_node_numel(p) && j < 6; j++) {
            float keep = v[j], h = 2e-3f;
            v[j] = keep + h;
            double lp = losses(g, x, z, 4, NULL);
            v[j] = keep - h;
            double lm = losses(g, x, z, 4, NULL);
            v[j] = keep;
            double num = (lp - lm) / (2 * h), e = fabs(num - gr[j]) / fmax(1e-2, fabs(num));
            if (e > worst) worst = e;
        }
    }
    CHECK(worst < 2e-2);
    if (worst >= 2e-2) fprintf(stderr, "generator gradient: worst relative error %g\n", worst);
    /* the discriminator's gradient at its weights before the step */
    float *now[16];
    for (int i = 0; i < nd && i < 16; i++) {
        ds_node *p = ds_graph_param(dg, i);
        now[i] = malloc(ds_node_numel(p) * sizeof(float));
        memcpy(now[i], ds_node_value(p), ds_node_numel(p) * sizeof(float));
        memcpy(ds_node_value(p), before[i], ds_node_numel(p) * sizeof(float));
    }
    worst = 0;
    for (int i = 0; i < nd; i++) {
        ds_node *p = ds_graph_param(dg, i);
        const float *gr = ds_node_grad(p);
        if (!gr) continue;
        float *v = ds_node_value(p);
        for (size_t j = 0; j < ds_node_numel(p) && j < 6; j++) {
            float keep = v[j], h = 2e-3f;
            double lp, lm;
            v[j] = keep + h;
            losses(g, x, z, 4, &lp);
            v[j] = keep - h;
            losses(g, x, z, 4, &lm);
            v[j] = keep;
            double num = (lp - lm) / (2 * h), e = fabs(num - gr[j]) / fmax(1e-2, fabs(num));
            if (e > worst) worst = e;
        }
    }
    CHECK(worst < 2e-2);
    if (worst >= 2e-2) fprintf(stderr, "discriminator gradient: worst relative error %g\n", worst);
    for (int i = 0; i < nd && i < 16; i++) free(before[i]), free(now[i]);
    ds_gan_free(g);
    ds_gan_model_free(m);
}

/* 4 steps straight = 2 steps, save, a new GAN restored, 2 steps: every tensor equal */
static void test_resume_bitwise(void)
{
    ds_gan_model *m = ds_gan_model_parse(tiny("instance_noise = 0.1\nlabel_smoothing = 0.1", "", 6), "tiny.cfg");
    CHECK(m != NULL);
    if (!m) return;
    ds_rng r;
    ds_rng_seed(&r, 9);
    float x[4][4 * 36];
    for (int k = 0; k < 4; k++) ds_test_fill(x[k], 4 * 36, -1, 1, &r);
    ds_gan *a = ds_gan_new(m, 4, 21), *b = ds_gan_new(m, 4, 21);
    CHECK(a && b);
    if (!a || !b) goto out;
    for (int k = 0; k < 4; k++) CHECK(ds_gan_step(a, x[k], NULL, 4, NULL, NULL, NULL) == 0);
    for (int k = 0; k < 2; k++) CHECK(ds_gan_step(b, x[k], NULL, 4, NULL, NULL, NULL) == 0);
    const char *path = ds_test_path("gan.safetensors");
    ds_train_state st = {.epoch = 1, .batch = 4, .epochs = 2, .seed = 21};
    CHECK(ds_gan_save(b, path, &st, NULL, 0) == 0);
    ds_gan_free(b);
    b = ds_gan_new(m, 4, 999); /* another seed: everything must come from the checkpoint */
    ds_checkpoint *c = ds_checkpoint_open(path);
    CHECK(c != NULL);
    ds_train_state back;
    CHECK(c && ds_gan_restore(b, c, &back) == 0);
    CHECK(back.epoch == 1 && back.seed == 21);
    /* both networks, prefixed */
    int gen = 0, dis = 0;
    for (int i = 0; c && i < ds_checkpoint_num_tensors(c); i++) {
        const char *nm = ds_checkpoint_tensor(c, i, NULL, NULL);
        gen += !strncmp(nm, "generator.", 10);
        dis += !strncmp(nm, "discriminator.", 14);
    }
    CHECK(gen > 0 && dis > 0);
    ds_checkpoint_close(c);
    for (int k = 2; k < 4; k++) CHECK(ds_gan_step(b, x[k], NULL, 4, NULL, NULL, NULL) == 0);
    int same = 1;
    for (int w = 0; w < 2; w++) {
        ds_graph *ga = ds_gan_program(a, w)->g, *gb = ds_gan_program(b, w)->g;
        for (int i = 0; i < ds_graph_num_params(ga); i++) {
            ds_node *pa = ds_graph_param(ga, i), *pb = ds_graph_param(gb, i);
            same &= !memcmp(ds_node_value(pa), ds_node_value(pb), ds_node_numel(pa) * sizeof(float));
        }
    }
    CHECK(same);
out:
    ds_gan_free(a);
    ds_gan_free(b);
    ds_gan_model_free(m);
}

static void test_bad_inputs(void)
{
    /* the generator makes 6x6, the discriminator wants 7x7: one message naming both */
    ds_gan_model *m = ds_gan_model_parse(tiny("", "", 7), "tiny.cfg");
    CHECK(m != NULL);
    ds_gan *g = m ? ds_gan_new(m, 4, 1) : NULL;
    CHECK(g == NULL);
    const char *e = ds_last_error();
    CHECK(strstr(e, "generator's output is [4, 1, 6, 6]") && strstr(e, "discriminator's input 'x' is [4, 1, 7, 7]") &&
          strstr(e, "g_out"));
    ds_gan_model_free(m);
    /* errors point at the file's line and the part's own header */
    CHECK(ds_gan_model_parse("[gan]\n[generator]\ninput = 4\n[dense]\nunits=1\n[discriminator]\ninput=1\n[dense]\nunits=1\n",
                             "a.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "a.cfg:1: [gan]: missing latent="));
    CHECK(ds_gan_model_parse("[gan]\nlatent=4\n[generator]\ninput = 4\n[dense]\nunits=1\nbogus=2\n[discriminator]\ninput=1\n"
                             "[dense]\nunits=1\n",
                             "b.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "b.cfg:7:") && strstr(ds_last_error(), "bogus"));
    CHECK(ds_gan_model_parse("[gan]\nlatent=4\n[generator]\n[dense]\nunits=1\n[discriminator]\ninput=1\n[dense]\nunits=1\n",
                             "c.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "c.cfg:3: [generator]"));
    CHECK(ds_gan_model_parse("[gan]\nlatent=4\n[generator]\ninput=4\n[dense]\nunits=1\n[train]\nlr=1\n[discriminator]\n"
                             "input=1\n[dense]\nunits=1\n",
                             "d.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "d.cfg:7: [train] belongs before [generator]"));
    CHECK(ds_gan_model_parse("[gan]\nlatent=5\n[generator]\ninput=4\n[dense]\nunits=1\n[discriminator]\ninput=1\n"
                             "[dense]\nunits=1\n",
                             "e.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "latent=5"));
    CHECK(ds_gan_model_parse("[gan]\nlatent=4\nconditional=1\n[generator]\ninput=4\n[dense]\nunits=1\n[discriminator]\n"
                             "input=1\n[dense]\nunits=1\n",
                             "f.cfg") == NULL);
    CHECK(strstr(ds_last_error(), "classes="));
    /* [train] settings a GAN would not apply are errors, not silently dropped */
    const char *refused[] = {"schedule = cosine", "class_weight = auto", "patience = 2", "warmup = 10"};
    for (int i = 0; i < 4; i++) {
        char t[4096];
        snprintf(t, sizeof t, "%s", tiny("", "", 6));
        char *at = strstr(t, "seed = 3\n");
        char rest[4096];
        snprintf(rest, sizeof rest, "%s", at + 9);
        snprintf(at + 9, sizeof t - (size_t)(at + 9 - t), "%s\n%s", refused[i], rest);
        m = ds_gan_model_parse(t, "r.cfg");
        g = m ? ds_gan_new(m, 4, 1) : NULL;
        CHECK(m != NULL && g == NULL && strstr(ds_last_error(), "does not apply to a GAN"));
        ds_gan_free(g);
        ds_gan_model_free(m);
    }
    CHECK(ds_model_text_is_gan(tiny("", "", 6)) == 1);
    CHECK(ds_model_text_is_gan("[net]\ninput=1\nclasses=2\n[dense]\nunits=2\n") == 0);
}

static void test_conditional_classes(void)
{
    const char *t = "[gan]\nlatent = 3\nconditional = 1\nclasses = 2\n[train]\nbatch = 2\n"
                    "[generator]\n[input]\nname = z\nshape = 3\n[input]\nname = c\nshape = 1\n"
                    "[embedding]\nname = e\nfrom = c\ncategories = 2\nunits = 2\n[concat]\nfrom = z, e\n"
                    "[dense]\nunits = 4\nactivation = tanh\n"
                    "[discriminator]\n[input]\nname = x\nshape = 4\n[input]\nname = c\nshape = 1\n"
                    "[embedding]\nname = e\nfrom = c\ncategories = 2\nunits = 4\n[concat]\nfrom = x, e\n[dense]\nunits = 1\n";
    ds_gan_model *m = ds_gan_model_parse(t, "cond.cfg");
    CHECK(m != NULL);
    ds_gan *g = m ? ds_gan_new(m, 2, 1) : NULL;
    CHECK(g != NULL);
    if (g) {
        float x[8] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f}, y[2] = {0, 1}, bad[2] = {0, 2}, out[12];
        CHECK(ds_gan_step(g, x, y, 2, NULL, NULL, NULL) == 0);
        CHECK(ds_gan_step(g, x, bad, 2, NULL, NULL, NULL) != 0);
        CHECK(strstr(ds_last_error(), "sample 1's class 2"));
        CHECK(ds_gan_step(g, x, NULL, 2, NULL, NULL, NULL) != 0);
        float cls[3] = {1, 1, 0};
        CHECK(ds_gan_generate(g, 3, NULL, cls, NULL, NULL, out) == 0);
        for (int i = 0; i < 12; i++) CHECK(out[i] >= -1 && out[i] <= 1);
        cls[0] = 5;
        CHECK(ds_gan_generate(g, 3, NULL, cls, NULL, NULL, out) != 0);
    }
    ds_gan_free(g);
    ds_gan_model_free(m);
}

static void test_scale(void)
{
    float v[6] = {-3, 0, 1, 10, 1000, 50000};
    ds_dataset d = {.n = 6, .sample = ds_shape_of(1, 1), .x = v};
    for (int tr = 0; tr < 2; tr++) {
        ds_gan_cfg c = {.transform = tr, .softening = tr ? 5 : 0};
        ds_gan_scale s;
        CHECK(ds_gan_scale_fit(&c, &d, &s) == 0);
        float w[6];
        memcpy(w, v, sizeof w);
        ds_gan_scale_apply(&s, w, 6);
        CHECK_NEAR(w[0], -1, 1e-6);
        CHECK_NEAR(w[5], 1, 1e-6);
        ds_gan_scale_invert(&s, w, 6);
        for (int i = 0; i < 6; i++) CHECK_NEAR(w[i], v[i], 2e-6 * 50003 + 1e-4 * fabs(v[i]));
    }
    float flat[3] = {2, 2, 2};
    ds_dataset f = {.n = 3, .sample = ds_shape_of(1, 1), .x = flat};
    ds_gan_cfg c = {0};
    ds_gan_scale s;
    CHECK(ds_gan_scale_fit(&c, &f, &s) != 0);
}

int main(void)
{
    test_step_gradients();
    test_resume_bitwise();
    test_bad_inputs();
    test_conditional_classes();
    test_scale();
    return ds_test_summary("gan");
}
