/* MLP 784-512-256-10 with ReLU, Adam 1e-3. */
#include "fashion.h"

static ds_node *build(ds_graph *g, ds_node *x)
{
    ds_init def = {0};
    ds_node *h = ds_relu(g, ds_nn_dense(g, "fc1", x, 512, def, 1));
    h = ds_relu(g, ds_nn_dense(g, "fc2", h, 256, def, 1));
    return ds_nn_dense(g, "fc3", h, 10, def, 1);
}

int main(int argc, char **argv)
{
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 1e-3f};
    return fashion_run("mlp", build, cfg, argc, argv);
}
