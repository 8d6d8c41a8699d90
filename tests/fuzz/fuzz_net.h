/* fuzz_net.h — build a parsed model into a graph at batch 2, as train and
 * eval do, but compile it only when the memory it would plan stays under
 * FUZZ_NET_BYTES and run a forward (and backward) pass only when it is
 * cheap: the parser and the shape rules are the attack surface, not the
 * machine's memory. The estimate is made in double from the shapes that
 * shape inference has already set, so it cannot overflow. */
#ifndef DS_FUZZ_NET_H
#define DS_FUZZ_NET_H

#include "fuzz_common.h"
#include "internal.h"

#define FUZZ_NET_BATCH 2
#define FUZZ_NET_BYTES (64.0 * 1024 * 1024)
#define FUZZ_NET_FLOPS 2e7

static inline double fuzz_numel(const ds_node *n)
{
    double v = 1;
    for (int i = 0; i < n->shape.ndim; i++) v *= (double)n->shape.d[i];
    return v;
}

/* Bytes the compiled arena would take (values and gradients of every node,
 * aux and saved buffers, the largest scratch): an upper bound. */
static inline double fuzz_plan_bytes(const ds_graph *g, double *flops)
{
    double bytes = 0, work = 0;
    *flops = 0;
    for (int i = 0; i < ds_graph_num_nodes(g); i++) {
        const ds_node *n = ds_graph_node(g, i);
        bytes += 2 * 4 * fuzz_numel(n) + (double)n->aux_bytes + (double)n->saved_bytes + 128;
        if ((double)n->work_bytes > work) work = (double)n->work_bytes;
        *flops += ds_node_flops(n) * FUZZ_NET_BATCH;
    }
    return bytes + work;
}

/* Build m (not taken over); inference: plan for forward only, as eval does.
 * When ck is given, restore its tensors into the compiled graph. */
static inline void fuzz_net(ds_model *m, int inference, const ds_checkpoint *ck)
{
    ds_graph *g = ds_graph_new(1);
    if (!g) return;
    /* the program train builds: every [input], the heads and their losses */
    ds_program prog;
    ds_node *loss = NULL;
    if (ds_model_build_program(m, g, FUZZ_NET_BATCH, NULL, &prog) == 0 && prog.n_heads > 0) loss = prog.loss;
    for (int i = 0; i < ds_model_num_layers(m); i++) {
        fuzz_sink += (float)strlen(ds_model_layer_name(m, i)) + (float)strlen(ds_model_layer_type(m, i));
        ds_pretrain_cfg pc;
        fuzz_sink += (float)ds_model_layer_rbm_visible(m, i) + (float)ds_model_layer_pretrain_cfg(m, i, &pc);
    }
    double flops = 0;
    if (loss && fuzz_plan_bytes(g, &flops) <= FUZZ_NET_BYTES) {
        if (inference) {
            for (int h = 0; h < prog.n_heads; h++) ds_node_keep(prog.heads[h].out);
            ds_graph_plan_inference(g);
        }
        if (ds_graph_compile(g) == 0) {
            int ok = !ck || ds_checkpoint_restore(ck, g, NULL) == 0;
            if (ok && flops <= FUZZ_NET_FLOPS && ds_graph_forward(g) == 0) {
                for (int h = 0; h < prog.n_heads; h++)
                    fuzz_touch(ds_node_value(prog.heads[h].out), ds_node_numel(prog.heads[h].out));
                if (!inference) ds_graph_backward(g, loss, NULL);
            }
        }
    }
    ds_graph_free(g);
}

#endif
