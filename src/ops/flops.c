/* flops.c — floating-point operations for one sample through a node, for
 * `deepsky info`. Products count 2 per multiply-add (conv, transposed conv,
 * linear, matmul; bias additions are not counted, as in most papers);
 * pooling one per window element; batch norm 2 per element (a scale and a
 * shift once the statistics are known); softmax and the losses 3 per
 * element; other elementwise ops, activations and dropout 1 per element;
 * concat and reshape move data and count 0. */
#include "internal.h"

#include <string.h>

static double per_sample(const ds_node *n) { return (double)ds_numel(n) / (n->shape.d[0] > 0 ? n->shape.d[0] : 1); }

double ds_node_flops(const ds_node *n)
{
    if (!n || n->kind != DS_NODE_OP || !n->op || n->n_in < 1) return 0;
    const char *op = n->op->name;
    const ds_node *x = n->in[0];
    if (!strcmp(op, "conv2d")) /* each output: C/groups·KH·KW products, w [OC, C/g, KH, KW] */
        return 2.0 * per_sample(n) * n->in[1]->shape.d[1] * n->in[1]->shape.d[2] * n->in[1]->shape.d[3];
    if (!strcmp(op, "conv_transpose2d")) /* each input: OC/groups·KH·KW, w [C, OC/g, KH, KW] */
        return 2.0 * per_sample(x) * n->in[1]->shape.d[1] * n->in[1]->shape.d[2] * n->in[1]->shape.d[3];
    if (!strcmp(op, "linear")) /* w [out, K] */
        return 2.0 * n->in[1]->shape.d[0] * n->in[1]->shape.d[1];
    if (!strcmp(op, "matmul")) /* per row of a [M, K]: K·N */
        return 2.0 * x->shape.d[1] * n->in[1]->shape.d[1];
    if (!strcmp(op, "maxpool2d") || !strcmp(op, "avgpool2d")) return per_sample(n) * n->ip[0] * n->ip[1];
    if (!strcmp(op, "global_avgpool")) return per_sample(x);
    if (!strcmp(op, "batchnorm")) return 2.0 * per_sample(n);
    if (!strcmp(op, "softmax") || !strcmp(op, "log_softmax")) return 3.0 * per_sample(n);
    if (!strcmp(op, "softmax_cross_entropy") || !strcmp(op, "hier_softmax_cross_entropy") ||
        !strcmp(op, "bce_with_logits") || !strcmp(op, "mse"))
        return 3.0 * per_sample(x);
    if (!strcmp(op, "concat") || !strcmp(op, "reshape")) return 0;
    return per_sample(n);
}
