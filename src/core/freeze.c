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
        bool need = n->requires_grad && !g->inference;
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
