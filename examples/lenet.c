/* LeNet-style CNN: conv5x5 32 pad 2 → relu → maxpool 2 → conv5x5 64 pad 2 →
 * relu → maxpool 2 → dense 128 → relu → dropout 0.5 → dense 10; Adam 1e-3. */
#include "fashion.h"

static ds_node *build(ds_graph *g, ds_node *x)
{
    ds_init def = {0};
    ds_conv_opt pad2 = {.pad = {2, 2}};
    ds_pool_opt pool2 = {.kernel = {2, 2}};
    ds_node *h = ds_relu(g, ds_nn_conv2d(g, "conv1", x, 32, 5, pad2, def, 1));
    h = ds_maxpool2d(g, h, pool2);
    h = ds_relu(g, ds_nn_conv2d(g, "conv2", h, 64, 5, pad2, def, 1));
    h = ds_maxpool2d(g, h, pool2);
    h = ds_relu(g, ds_nn_dense(g, "fc1", h, 128, def, 1));
    h = ds_dropout(g, h, 0.5f);
    return ds_nn_dense(g, "fc2", h, 10, def, 1);
}

int main(int argc, char **argv)
{
    ds_optim_cfg cfg = {.kind = DS_ADAM, .lr = 1e-3f};
    return fashion_run("lenet", build, cfg, argc, argv);
}
