/* Softmax regression: logits = x·Wᵀ + b, trained with Adam 1e-3. */
#include "fashion.h"

static ds_node *build(ds_graph *g, ds_node *x)
{
    return ds_nn_dense(g, "fc", x, 10, (ds_init){DS_INIT_ZEROS, 0, 0}, 1);
}

int main(int argc, char **argv)
{
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 1e-3f};
    return fashion_run("softmax_regression", build, cfg, argc, argv);
}
