/* freeze.c — switching a trainable parameter's gradient off and on after
 * compile (PyTorch's p.requires_grad_(False)), for frozen parameter groups.
 *
 * Compile plans a gradient buffer for every node that needs one
 * (grad_planned). Freezing re-derives needs_grad from the leaves in
 * topological order and points grad at that buffer or NULL: backward skips
 * op nodes without needs_grad, and ops skip inputs whose grad is NULL, so a
 * frozen first layer costs no weight gradient and no gradient of its input
 * either. Nothing is allocated or freed, so a step still allocates nothing.
 */
#include "internal.h"

/* needs_grad from requires_grad again; only a node compile gave a buffer
 * can carry one (freezing only ever removes gradients). */
static void replan(ds_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        bool need = n->requires_grad && !g->inference && !(g->param_grads_off && n->kind == DS_NODE_PARAM);
        for (int j = 0; j < n->n_in; j++) need |= n->in[j]->needs_grad;
        n->needs_grad = need && n->grad_planned;
        n->grad = n->needs_grad ? n->grad_planned : NULL;
    }
}

int ds_graph_freeze(ds_graph *g, ds_node *param, int frozen)
{
    if (!g || !param) return ds_fail("ds_graph_freeze: graph and parameter must not be NULL");
    int found = 0;
    for (int i = 0; i < g->n_params && !found; i++) found = g->params[i] == param;
    if (!found || param->kind != DS_NODE_PARAM)
        return ds_fail("ds_graph_freeze: '%s' is not a trainable parameter of this graph", param->name);
    if (!frozen && g->compiled && !param->grad_planned && !g->inference)
        return ds_fail("ds_graph_freeze: '%s' was frozen when the graph was compiled, so it has no "
                       "gradient buffer; unfreeze it before compiling",
                       param->name);
    param->requires_grad = !frozen;
    if (g->compiled) replan(g);
    return 0;
}

int ds_graph_set_param_grads(ds_graph *g, int on)
{
    if (!g || !g->compiled) return ds_fail("ds_graph_set_param_grads: compile the graph first");
    if (g->param_grads_off == !on) return 0;
    g->param_grads_off = !on;
    replan(g);
    return 0;
}

int ds_graph_set_fusion(ds_graph *g, int on)
{
    if (!g) return ds_fail("ds_graph_set_fusion: graph is NULL");
    if (g->compiled) return ds_fail("ds_graph_set_fusion: set it before compiling the graph");
    g->no_fuse = !on;
    return 0;
}

int ds_graph_set_relu_backward(ds_graph *g, int rule)
{
    if (!g || rule < DS_RELU_BACKWARD_STANDARD || rule > DS_RELU_BACKWARD_DECONVNET)
        return ds_fail("ds_graph_set_relu_backward: unknown rule %d", rule);
    /* a producer that masks dy itself applies the standard rule after the
     * relu's: harmless for guided backprop (the masks agree), wrong for the
     * deconvnet's, which ignores the forward's sign */
    if (rule == DS_RELU_BACKWARD_DECONVNET)
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->relu_mask_in_backward)
                return ds_fail("the deconvnet rule needs a graph compiled without relu fusion "
                               "(ds_graph_set_fusion(g, 0)); '%s' masks its relu's gradient itself",
                               g->nodes[i]->name);
    g->relu_backward = rule;
    return 0;
}

int ds_graph_set_input_grad(ds_graph *g, ds_node *x, int on)
{
    if (!g || !x || x->kind != DS_NODE_INPUT) return ds_fail("ds_graph_set_input_grad: an input node of the graph is needed");
    if (!g->compiled) {
        x->requires_grad = on != 0;
        return 0;
    }
    if (on && !x->grad_planned)
        return ds_fail("input '%s' was compiled without a gradient (ds_node_set_requires_grad before compiling)", x->name);
    if (x->requires_grad == (on != 0)) return 0;
    x->requires_grad = on != 0;
    replan(g);
    return 0;
}

int ds_graph_input_grad(const ds_node *x) { return x && x->requires_grad && x->grad_planned; }
