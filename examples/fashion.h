/* fashion.h — the shared driver of the Fashion-MNIST examples: load the data,
 * build the model with the example's function, train, print test accuracy.
 * Usage: <example> [epochs] [batch] [seed]   (defaults 5, 64, 1) */
#ifndef DS_EXAMPLE_FASHION_H
#define DS_EXAMPLE_FASHION_H

#include "deepsky.h"

#include <stdio.h>
#include <stdlib.h>

/* Builds the network on x [batch, 1, 28, 28] and returns the logits [batch, 10]. */
typedef ds_node *(*build_fn)(ds_graph *g, ds_node *x);

static int fashion_run(const char *name, build_fn build, ds_optim_cfg cfg, int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 5, batch = argc > 2 ? atoi(argv[2]) : 64;
    unsigned long seed = argc > 3 ? strtoul(argv[3], NULL, 10) : 1;
    ds_dataset train = {0}, test = {0};
    if (epochs < 1 || batch < 1) {
        fprintf(stderr, "usage: %s [epochs>0] [batch>0] [seed]\n", argv[0]);
        return 2;
    }
    if (ds_fashion_mnist_load(NULL, 1, &train) != 0 || ds_fashion_mnist_load(NULL, 0, &test) != 0) {
        fprintf(stderr, "%s: %s\n", name, ds_last_error());
        ds_dataset_free(&train);
        return 1;
    }
    ds_graph *g = ds_graph_new(seed);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, batch, 1, 28, 28));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, batch));
    ds_node *logits = build(g, x);
    ds_node *loss = ds_softmax_cross_entropy(g, logits, y, NULL);
    ds_optim *o = NULL;
    ds_loader *tl = ds_loader_new(&train, batch, 1, seed), *el = ds_loader_new(&test, batch, 0, 0);
    int rc = 1;
    if (!loss || ds_graph_compile(g) != 0 || !(o = ds_optim_new(g, &cfg)) || !tl || !el) goto done;
    for (int e = 1; e <= epochs; e++) {
        ds_epoch_stats tr, te;
        if (ds_train_epoch(g, o, tl, x, y, logits, loss, &tr) != 0) goto done;
        if (ds_evaluate(g, el, x, y, logits, loss, &te) != 0) goto done;
        printf("%s epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.1f s (%.0f img/s)\n",
               name, e, tr.loss, tr.accuracy, te.loss, te.accuracy, tr.seconds,
               tr.samples / tr.seconds);
        if (e == epochs) printf("%s test accuracy: %.4f\n", name, te.accuracy);
        fflush(stdout);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "%s: %s\n", name, ds_last_error());
    ds_loader_free(tl);
    ds_loader_free(el);
    ds_optim_free(o);
    ds_graph_free(g);
    ds_dataset_free(&train);
    ds_dataset_free(&test);
    return rc;
}

#endif
