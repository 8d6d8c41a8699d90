/* dbn.c — a Deep Belief Network on Fashion-MNIST: two RBMs (784→500→500)
 * pretrained greedily without labels on all 60,000 training images, then
 * unrolled into a sigmoid network with a softmax head and fine-tuned with
 * labels; optionally the same network from random weights for comparison.
 *
 *   dbn [pretrain_epochs=10] [finetune_epochs=10] [labels=60000] [compare=0] [seed=1] [out=runs/dbn]
 *
 * Pixels are intensities in [0, 1], read as the probabilities of Bernoulli
 * visible units. Writes OUT/rbm1_weights.png (the first 100 hidden units'
 * weights as 28×28 pictures) and OUT/rbm1_samples.png (Gibbs chains of the
 * first RBM, started from test images, after 1,000 steps). */
#include "deepsky.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { B = 100 };

static int die(const char *what)
{
    fprintf(stderr, "dbn: %s: %s\n", what, ds_last_error());
    return 1;
}

/* Greedy training of one RBM on x [n × visible], shuffled batches of B. */
static int pretrain(ds_rbm *r, const float *x, int n, int epochs, const float *held, int n_held, const char *tag)
{
    for (int e = 1; e <= epochs; e++) {
        double err;
        if (ds_rbm_epoch(r, x, n, &err) != 0) return -1;
        /* free-energy gap: training rows against held-out rows (overfitting shows as a growing gap) */
        double ft = ds_rbm_free_energy(r, x, B), fh = ds_rbm_free_energy(r, held, n_held < B ? n_held : B);
        printf("%s epoch %d: reconstruction error %.3f, free energy train %.2f held-out %.2f (gap %.2f)\n", tag, e,
               err, ft, fh, fh - ft);
        fflush(stdout);
    }
    return 0;
}

/* Fine-tune 784-500-500-10 (sigmoid) on the first `labels` rows of train;
 * from the RBMs' weights when r1, r2 are given. Returns the test accuracy. */
static double finetune(const ds_dataset *train, const ds_dataset *test, int labels, int epochs, ds_rbm *r1,
                       ds_rbm *r2, unsigned long seed, const char *tag)
{
    ds_dataset sub = *train;
    sub.n = labels;
    ds_graph *g = ds_graph_new(seed);
    ds_node *x = ds_input(g, "x", ds_shape_of(2, B, 784)), *y = ds_input(g, "y", ds_shape_of(1, B));
    ds_init def = {0};
    ds_node *h1 = ds_sigmoid(g, ds_nn_dense(g, "h1", x, 500, def, 1));
    ds_node *h2 = ds_sigmoid(g, ds_nn_dense(g, "h2", h1, 500, def, 1));
    ds_node *logits = ds_nn_dense(g, "out", h2, 10, def, 1);
    ds_node *loss = ds_softmax_cross_entropy(g, logits, y, NULL);
    ds_optim_cfg cfg = {.kind = DS_SGD, .lr = 0.1f, .momentum = 0.9f};
    ds_optim *o = NULL;
    ds_loader *tl = NULL, *el = NULL;
    double acc = -1;
    sub.sample = ds_shape_of(1, 784);
    ds_dataset te = *test;
    te.sample = ds_shape_of(1, 784);
    if (!loss || ds_graph_compile(g) != 0) goto done;
    if (r1) { /* unroll: the RBMs' W and hidden biases become the layers' weights and biases */
        memcpy(ds_node_value(ds_graph_find(g, "h1.weight")), ds_rbm_weights(r1), sizeof(float) * 500 * 784);
        memcpy(ds_node_value(ds_graph_find(g, "h1.bias")), ds_rbm_hidden_bias(r1), sizeof(float) * 500);
        memcpy(ds_node_value(ds_graph_find(g, "h2.weight")), ds_rbm_weights(r2), sizeof(float) * 500 * 500);
        memcpy(ds_node_value(ds_graph_find(g, "h2.bias")), ds_rbm_hidden_bias(r2), sizeof(float) * 500);
    }
    if (!(o = ds_optim_new(g, &cfg)) || !(tl = ds_loader_new(&sub, B, 1, seed)) || !(el = ds_loader_new(&te, B, 0, 0)))
        goto done;
    for (int e = 1; e <= epochs; e++) {
        ds_epoch_stats tr, ev;
        if (ds_train_epoch(g, o, tl, x, y, logits, loss, &tr) != 0 || ds_evaluate(g, el, x, y, logits, loss, &ev) != 0)
            goto done;
        printf("%s fine-tune epoch %d (%d labels): train loss %.4f acc %.4f | test acc %.4f\n", tag, e, labels,
               tr.loss, tr.accuracy, ev.accuracy);
        fflush(stdout);
        acc = ev.accuracy;
    }
done:
    if (acc < 0) fprintf(stderr, "dbn: %s: %s\n", tag, ds_last_error());
    ds_loader_free(tl);
    ds_loader_free(el);
    ds_optim_free(o);
    ds_graph_free(g);
    return acc;
}

int main(int argc, char **argv)
{
    int pe = argc > 1 ? atoi(argv[1]) : 10, fe = argc > 2 ? atoi(argv[2]) : 10;
    int labels = argc > 3 ? atoi(argv[3]) : 60000, compare = argc > 4 ? atoi(argv[4]) : 0;
    unsigned long seed = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
    const char *out = argc > 6 ? argv[6] : "runs/dbn";
    if (pe < 0 || fe < 1 || labels < B || labels > 60000) {
        fprintf(stderr, "usage: dbn [pretrain_epochs>=0] [finetune_epochs>=1] [labels 100..60000] [compare 0|1] "
                        "[seed] [out]\n");
        return 2;
    }
    labels = labels / B * B;
    ds_dataset train = {0}, test = {0};
    if (ds_fashion_mnist_load(NULL, 1, &train) != 0 || ds_fashion_mnist_load(NULL, 0, &test) != 0) return die("data");
    /* a fixed shuffle, so that the first `labels` rows are a random labelled subset */
    {
        ds_rng g;
        ds_rng_seed(&g, seed + 1000);
        float row[784];
        for (int i = train.n - 1; i > 0; i--) {
            int j = (int)ds_rng_below(&g, (uint32_t)i + 1);
            memcpy(row, train.x + (size_t)i * 784, sizeof row);
            memcpy(train.x + (size_t)i * 784, train.x + (size_t)j * 784, sizeof row);
            memcpy(train.x + (size_t)j * 784, row, sizeof row);
            float t = train.y[i];
            train.y[i] = train.y[j], train.y[j] = t;
        }
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        /* runs/dbn: make runs first */
        mkdir("runs", 0755);
        if (mkdir(out, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "dbn: cannot create %s\n", out);
            return 1;
        }
    }
    ds_rbm_cfg c1 = {.visible = 784, .hidden = 500, .k = 1, .lr = 0.05f, .momentum = 0.5f, .weight_decay = 2e-4f,
                     .seed = seed};
    ds_rbm_cfg c2 = c1;
    c2.visible = 500, c2.seed = seed + 1;
    ds_rbm *r1 = ds_rbm_new(&c1, B), *r2 = ds_rbm_new(&c2, B);
    if (!r1 || !r2) return die("rbm");
    int rc = 1;
    float *h1 = NULL, *h1test = NULL;
    char path[4096];
    if (pe > 0) {
        if (pretrain(r1, train.x, train.n, pe, test.x, test.n, "rbm1 784->500") != 0) goto fail;
        /* pictures: the first 100 hidden units' weights, and Gibbs samples */
        snprintf(path, sizeof path, "%s/rbm1_weights.png", out);
        if (ds_png_grid(path, ds_rbm_weights(r1), 100, 28, 28, 10, 1) != 0) goto fail;
        float *s = malloc(sizeof(float) * B * 784);
        if (!s) goto fail;
        memcpy(s, test.x, sizeof(float) * B * 784);
        if (ds_rbm_gibbs(r1, s, B, 1000) != 0) {
            free(s);
            goto fail;
        }
        snprintf(path, sizeof path, "%s/rbm1_samples.png", out);
        int prc = ds_png_grid(path, s, B, 28, 28, 10, 0);
        free(s);
        if (prc != 0) goto fail;
        printf("wrote %s/rbm1_weights.png and %s/rbm1_samples.png\n", out, out);
        if (!(h1 = malloc(sizeof(float) * (size_t)train.n * 500)) || !(h1test = malloc(sizeof(float) * (size_t)test.n * 500)) ||
            ds_rbm_hidden_probs(r1, train.x, train.n, h1) != 0 || ds_rbm_hidden_probs(r1, test.x, test.n, h1test) != 0)
            goto fail;
        if (pretrain(r2, h1, train.n, pe, h1test, test.n, "rbm2 500->500") != 0) goto fail;
    }
    double a = finetune(&train, &test, labels, fe, pe > 0 ? r1 : NULL, r2, seed, pe > 0 ? "pretrained" : "random");
    if (a < 0) goto fail;
    printf("dbn test accuracy (%s, %d labels): %.4f\n", pe > 0 ? "pretrained" : "random init", labels, a);
    if (compare && pe > 0) {
        double b = finetune(&train, &test, labels, fe, NULL, NULL, seed, "random");
        if (b < 0) goto fail;
        printf("random-init test accuracy (%d labels, same fine-tuning): %.4f\n", labels, b);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "dbn: %s\n", ds_last_error());
done:
    free(h1), free(h1test);
    ds_rbm_free(r1), ds_rbm_free(r2);
    ds_dataset_free(&train), ds_dataset_free(&test);
    return rc;
}
