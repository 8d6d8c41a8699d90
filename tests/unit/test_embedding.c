/* test_embedding.c — the embedding op (a categorical input's lookup):
 * forward rows, the gradient against finite differences, repeated indices
 * adding up, and an index out of range as an error naming the sample. */
#include "deepsky.h"
#include "harness.h"

#include <math.h>
#include <string.h>

int main(void)
{
    ds_graph *g = ds_graph_new(3);
    ds_node *idx = ds_input(g, "band", ds_shape_of(2, 4, 1));
    ds_node *y = ds_nn_embedding(g, "emb", idx, 3, 2);
    ds_node *t = ds_input(g, "t", ds_shape_of(2, 4, 2));
    ds_node *loss = ds_mse(g, y, t);
    CHECK(loss && ds_graph_compile(g) == 0);
    ds_node *w = ds_graph_find(g, "emb.weight");
    CHECK(w && ds_node_shape(w).d[0] == 3 && ds_node_shape(w).d[1] == 2);
    float *iv = ds_node_value(idx), *tv = ds_node_value(t), *wv = ds_node_value(w);
    const float cat[4] = {2, 0, 2, 1};
    memcpy(iv, cat, sizeof cat);
    for (int i = 0; i < 8; i++) tv[i] = 0.1f * (float)i - 0.3f;
    CHECK(ds_graph_forward(g) == 0);
    const float *yv = ds_node_value(y);
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 2; d++) CHECK(yv[2 * i + d] == wv[2 * (int)cat[i] + d]);
    ds_graph_zero_grad(g);
    CHECK(ds_graph_backward(g, loss, NULL) == 0);
    float an[6];
    memcpy(an, ds_node_grad(w), sizeof an);
    double worst = 0;
    for (int k = 0; k < 6; k++) { /* central differences in double through the float graph */
        float keep = wv[k], h = 1e-2f;
        wv[k] = keep + h;
        ds_graph_forward(g);
        double up = ds_node_value(loss)[0];
        wv[k] = keep - h;
        ds_graph_forward(g);
        double down = ds_node_value(loss)[0];
        wv[k] = keep;
        double num = (up - down) / (2.0 * h), err = fabs(num - an[k]) / (fabs(num) + 1e-3);
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-2);
    /* category 2 appears twice: its row's gradient is the sum of both samples' */
    CHECK(fabsf(an[4]) > 0 && fabsf(an[2]) > 0);
    iv[1] = 3; /* out of range */
    CHECK(ds_graph_forward(g) != 0 && strstr(ds_last_error(), "sample 1: category 3 is not an index 0..2"));
    iv[1] = 0.5f;
    CHECK(ds_graph_forward(g) != 0 && strstr(ds_last_error(), "category 0.5"));
    ds_graph_free(g);
    return ds_test_summary("embedding");
}
