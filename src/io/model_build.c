/* model_build.c — record a parsed model file into a graph, one ds_nn_* or
 * op call per layer, each layer's output node renamed to the layer's name;
 * and the model's accessors. Shape errors read
 * "FILE:LINE: layer 'conv2' (conv): <the op's message>". */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ds_node *activate(ds_graph *g, ds_node *x, const ds_layer *L)
{
    switch (L->act) {
    case A_RELU: return ds_relu(g, x);
    case A_LEAKY:
    case A_LEAKY_RELU: return ds_leaky_relu(g, x, L->alpha);
    case A_ELU: return ds_elu(g, x, L->alpha);
    case A_SIGMOID: return ds_sigmoid(g, x);
    case A_TANH: return ds_tanh(g, x);
    case A_SOFTPLUS: return ds_softplus(g, x);
    default: return x; /* linear */
    }
}

/* conv/deconv/dense tail: optional batch norm "<name>.bn", then the activation. */
static ds_node *bn_act(ds_graph *g, ds_node *y, const ds_layer *L)
{
    if (y && L->bn) {
        char bn[DS_LAYER_NAME_MAX + 8];
        snprintf(bn, sizeof bn, "%s.bn", L->name);
        y = ds_nn_batchnorm(g, bn, y);
    }
    return y ? activate(g, y, L) : NULL;
}

static int same_shape(ds_shape a, ds_shape b)
{
    if (a.ndim != b.ndim) return 0;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return 0;
    return 1;
}

/* The layer's output from its inputs in[0..L->n_from); NULL with the error set. */
static ds_node *build_layer(const ds_model *m, ds_graph *g, const ds_layer *L, ds_node **in)
{
    ds_node *x = in[0];
    ds_init winit = {(ds_init_kind)L->init, 0, L->init == DS_INIT_NORMAL ? 0.02f : 0}; /* init=dcgan */
    switch (L->kind) {
    case L_CONV:
    case L_DECONV: {
        if (x->shape.ndim == 4 && x->shape.d[1] % L->groups) {
            ds_fail("groups=%d must divide the input's %d channels", L->groups, x->shape.d[1]);
            return NULL;
        }
        ds_conv_opt o = {.stride = {L->stride, L->stride}, .pad = {L->pad, L->pad},
                         .dilation = {L->dilation, L->dilation}, .groups = L->groups,
                         .output_padding = {L->out_pad, L->out_pad}};
        ds_node *y = L->kind == L_CONV
                         ? ds_nn_conv2d(g, L->name, x, L->out, L->size, o, winit, L->bias)
                         : ds_nn_conv_transpose2d(g, L->name, x, L->out, L->size, o, winit, L->bias);
        return bn_act(g, y, L);
    }
    case L_DENSE: return bn_act(g, ds_nn_dense(g, L->name, x, L->out, winit, L->bias), L);
    case L_RBM: { /* dense + sigmoid, and the visible bias that pretraining sets (kept for sampling) */
        size_t in = ds_shape_numel(x->shape) / (size_t)x->shape.d[0];
        char vb[DS_LAYER_NAME_MAX + 16];
        snprintf(vb, sizeof vb, "%s.visible_bias", L->name);
        if (!ds_buffer(g, vb, ds_shape_of(1, (int)in), (ds_init){0})) return NULL;
        return ds_sigmoid(g, ds_nn_dense(g, L->name, x, L->out, winit, 1));
    }
    case L_MAXPOOL:
    case L_AVGPOOL: {
        ds_pool_opt o = {{L->size, L->size}, {L->stride, L->stride}, {L->pad, L->pad}};
        return L->kind == L_MAXPOOL ? ds_maxpool2d(g, x, o) : ds_avgpool2d(g, x, o);
    }
    case L_GAP: return ds_global_avgpool(g, x);
    case L_BN: return ds_nn_batchnorm(g, L->name, x);
    case L_INSTNORM: return ds_instancenorm(g, x, 1e-5f);
    case L_DROPOUT: return ds_dropout(g, x, L->p);
    case L_ACT: return activate(g, x, L);
    case L_FLATTEN: return ds_flatten(g, x);
    case L_CONCAT: return ds_concat(g, L->n_from, in);
    case L_ADD: {
        for (int k = 1; k < L->n_from; k++)
            if (!same_shape(in[0]->shape, in[k]->shape)) {
                char sa[96], sb[96];
                int a = L->from[0], b = L->from[k];
                ds_fail("inputs differ in shape: '%s' is %s, '%s' is %s",
                        a < 0 ? m->inputs[-1 - a].name : m->layers[a].name, ds_shape_str(in[0]->shape, sa, sizeof sa),
                        b < 0 ? m->inputs[-1 - b].name : m->layers[b].name, ds_shape_str(in[k]->shape, sb, sizeof sb));
                return NULL;
            }
        ds_node *y = x;
        for (int k = 1; k < L->n_from && y; k++) y = ds_add(g, y, in[k]);
        return y ? activate(g, y, L) : NULL;
    }
    case L_EMBED: {
        int cats = L->categories;
        if (!cats && L->from[0] < 0) cats = m->inputs[-1 - L->from[0]].n_categories;
        if (!cats) {
            ds_fail("needs categories= (the table's rows), or from= a categorical [input]");
            return NULL;
        }
        if (L->from[0] < 0 && m->inputs[-1 - L->from[0]].n_categories > cats) {
            ds_fail("categories=%d, but input '%s' has %d", cats, m->inputs[-1 - L->from[0]].name,
                    m->inputs[-1 - L->from[0]].n_categories);
            return NULL;
        }
        return ds_nn_embedding(g, L->name, x, cats, L->out);
    }
    case L_RESHAPE: {
        ds_shape s = {.ndim = L->shape.ndim + 1};
        for (int k = 0; k < L->shape.ndim; k++) s.d[k + 1] = L->shape.d[k]; /* d[0] = 0: the batch */
        return ds_reshape(g, x, s);
    }
    }
    ds_fail("unknown layer kind %d", L->kind);
    return NULL;
}

/* Re-word the current error as "FILE:LINE: layer 'name' (type): …" and
 * poison the graph with it, so a later compile repeats the same message. */
static void layer_fail(const ds_model *m, ds_graph *g, const ds_layer *L)
{
    char msg[1024];
    const char *e = ds_last_error();
    if (!strncmp(e, "layer '", 7) && strstr(e, "': ")) e = strstr(e, "': ") + 3; /* ds_nn_* prefix */
    snprintf(msg, sizeof msg, "%s", e);
    ds_fail("%s:%d: layer '%s' (%s): %s", m->file, L->line, L->name, ds_layer_kind_name(L->kind), msg);
    g->failed = true;
    snprintf(g->fail_msg, sizeof g->fail_msg, "%s", ds_last_error());
}

/* The inputs (named as the model names them) and every layer; in[k] gets
 * the input nodes. 0, or -1 with the error set (the graph poisoned). */
static int build_net(ds_model *m, ds_graph *g, int batch, ds_node **inputs)
{
    if (!m || !g) return ds_fail("ds_model_build: model and graph must not be NULL");
    if (g->failed) return ds_fail("%s: cannot build into a graph that already failed: %s", m->file, g->fail_msg);
    if (batch < 1) return ds_fail("%s: batch %d must be >= 1", m->file, batch);
    for (int i = 0; i < m->n_layers; i++) m->layers[i].node = NULL;
    for (int k = 0; k < m->n_inputs; k++) {
        const ds_input_def *d = &m->inputs[k];
        ds_shape s = {.ndim = d->shape.ndim + 1, .d = {batch}};
        for (int j = 0; j < d->shape.ndim; j++) s.d[j + 1] = d->shape.d[j];
        if (!(inputs[k] = ds_input(g, d->name, s))) return -1;
    }
    ds_node **in = malloc((size_t)(m->max_from > 0 ? m->max_from : 1) * sizeof *in);
    if (!in) return ds_fail("out of memory");
    for (int i = 0; i < m->n_layers; i++) {
        ds_layer *L = &m->layers[i];
        for (int k = 0; k < L->n_from; k++) in[k] = L->from[k] < 0 ? inputs[-1 - L->from[k]] : m->layers[L->from[k]].node;
        int first = ds_graph_num_nodes(g);
        ds_node *y = build_layer(m, g, L, in);
        /* a layer that made no node (activation=linear) keeps its input's name */
        if (!y || (y->id >= first && ds_node_set_name(y, L->name))) {
            layer_fail(m, g, L);
            free(in);
            return -1;
        }
        L->node = y;
    }
    free(in);
    return 0;
}

int ds_model_build_net(ds_model *m, ds_graph *g, int batch, ds_node **inputs, ds_node **out)
{
    if (build_net(m, g, batch, inputs) != 0) return -1;
    *out = m->layers[m->n_layers - 1].node;
    return 0;
}

/* out must be [batch, width]; else an error on the layer that makes it */
static int check_width(ds_model *m, ds_graph *g, const ds_layer *L, int batch, int width, const char *why)
{
    ds_shape ys = L->node->shape;
    if (ys.ndim == 2 && ys.d[1] == width) return 0;
    char sy[96];
    ds_fail("the %s layer's output is %s; the model needs [%d, %d] (%s)%s", L == &m->layers[m->n_layers - 1] ? "last" : "head's",
            ds_shape_str(ys, sy, sizeof sy), batch, width, why, ys.ndim > 2 ? "; add [flatten] or end with [dense]" : "");
    layer_fail(m, g, L);
    return -1;
}

ds_node *ds_model_build(ds_model *m, ds_graph *g, int batch, ds_node **xp)
{
    if (xp) *xp = NULL;
    ds_node *inputs[DS_MAX_INPUTS];
    if (build_net(m, g, batch, inputs) != 0) return NULL;
    const ds_layer *last = &m->layers[m->n_layers - 1];
    if (m->tree) {
        char per[512], why[600];
        ds_class_tree_logits_str(m->tree, per, sizeof per);
        snprintf(why, sizeof why, "the [tree]'s %d logits, one per child of each node: %s", m->tree->n_logits, per);
        if (check_width(m, g, last, batch, m->tree->n_logits, why) != 0) return NULL;
    } else {
        char why[64];
        snprintf(why, sizeof why, "classes=%d in [net]", m->classes);
        if (check_width(m, g, last, batch, m->classes, why) != 0) return NULL;
    }
    if (xp) *xp = inputs[0];
    return last->node;
}

int ds_model_build_program(ds_model *m, ds_graph *g, int batch, const ds_program_opts *o, ds_program *p)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    if (build_net(m, g, batch, p->feeds) != 0) return -1;
    p->n_inputs = p->n_feeds = m->n_inputs;
    for (int k = 0; k < m->n_inputs; k++) p->feed_names[k] = m->inputs[k].name;
    ds_output_def dflt = {.name = "output", .from = m->n_layers - 1, .loss = DS_LOSS_SOFTMAX, .weight = 1,
                          .target = "label"};
    const ds_output_def *outs = m->n_outputs ? m->outputs : &dflt;
    int n_out = m->n_outputs ? m->n_outputs : 1, weighted_class = 0;
    ds_node *losses[DS_MAX_HEADS];
    float w[DS_MAX_HEADS];
    for (int h = 0; h < n_out; h++) {
        const ds_output_def *d = &outs[h];
        const ds_layer *L = &m->layers[d->from];
        ds_head *hd = &p->heads[h];
        *hd = (ds_head){.name = d->name, .loss_kind = (ds_loss_kind)d->loss, .weight = d->weight, .out = L->node};
        char why[1024];
        /* a model with a [tree] and no [output] has one hierarchical head */
        if (d == &dflt && m->tree) hd->loss_kind = DS_LOSS_HIER;
        if (hd->loss_kind == DS_LOSS_SOFTMAX || hd->loss_kind == DS_LOSS_HIER) {
            int hier = hd->loss_kind == DS_LOSS_HIER;
            if (hier && !m->tree) {
                ds_fail("%s:%d: [output] '%s': loss=hierarchical needs a [tree] section", m->file, d->line, d->name);
                return -1;
            }
            hd->classes = m->classes;
            hd->tree = hier ? m->tree : NULL;
            if (hier) {
                char per[512];
                ds_class_tree_logits_str(m->tree, per, sizeof per);
                snprintf(why, sizeof why, "the [tree]'s %d logits, one per child of each node: %.400s",
                         m->tree->n_logits, per);
            } else {
                snprintf(why, sizeof why, "classes=%d in [net]%s%.63s", m->classes, m->n_outputs ? " for output " : "",
                         m->n_outputs ? d->name : "");
            }
            if (check_width(m, g, L, batch, hier ? m->tree->n_logits : m->classes, why) != 0) return -1;
            if (!p->labels && !(p->labels = ds_input(g, "y", ds_shape_of(1, batch)))) return -1;
            hd->target = p->labels;
            const float *cw = o && o->class_weights && !weighted_class++ ? o->class_weights : NULL;
            hd->loss = hier ? ds_hier_softmax_cross_entropy(g, L->node, p->labels, m->tree, cw)
                            : ds_softmax_cross_entropy(g, L->node, p->labels, cw);
        } else {
            if (L->node->shape.ndim != 2) {
                snprintf(why, sizeof why, "the width of target %.63s", d->target);
                if (check_width(m, g, L, batch, -1, why) != 0) return -1;
            }
            if (p->n_feeds == DS_MAX_FEEDS) return ds_fail("%s: too many inputs and targets", m->file);
            ds_node *t = NULL;
            for (int k = m->n_inputs; k < p->n_feeds; k++)
                if (!strcmp(p->feed_names[k], d->target)) t = p->feeds[k];
            for (int k = 0; k < m->n_inputs; k++)
                if (!strcmp(m->inputs[k].name, d->target)) {
                    ds_fail("%s:%d: [output] '%s': target=%s is one of the model's inputs", m->file, d->line, d->name,
                            d->target);
                    return -1;
                }
            if (!t) {
                if (!(t = ds_input(g, d->target, L->node->shape))) return -1;
                p->feed_names[p->n_feeds] = d->target;
                p->feeds[p->n_feeds++] = t;
            }
            hd->target = t;
            hd->loss = d->loss == DS_LOSS_BCE ? ds_bce_with_logits(g, L->node, t) : ds_mse(g, L->node, t);
        }
        if (!hd->loss) return -1;
        losses[h] = hd->loss;
        w[h] = d->weight;
        p->n_heads++;
    }
    /* one head of weight 1 is its own total (the single-head graph stays as it was) */
    p->loss = n_out == 1 && w[0] == 1.0f ? losses[0] : ds_weighted_sum(g, n_out, losses, w);
    if (!p->loss) return -1;
    if (n_out > 1) {
        for (int h = 0; h < n_out; h++) {
            char nm[DS_LAYER_NAME_MAX + 8];
            snprintf(nm, sizeof nm, "loss.%s", p->heads[h].name);
            if (ds_node_set_name(p->heads[h].loss, nm)) return -1;
        }
        if (ds_node_set_name(p->loss, "loss")) return -1;
    }
    return 0;
}

int ds_program_class_head(const ds_program *p)
{
    for (int h = 0; p && h < p->n_heads; h++)
        if (p->heads[h].loss_kind == DS_LOSS_SOFTMAX || p->heads[h].loss_kind == DS_LOSS_HIER) return h;
    return -1;
}

int ds_program_probs(const ds_program *p, int h, int rows, int first, float *probs)
{
    if (!p || h < 0 || h >= p->n_heads || !p->heads[h].classes) return ds_fail("ds_program_probs: head %d classifies nothing", h);
    const ds_head *hd = &p->heads[h];
    if (hd->tree) return ds_hier_probs_rows(hd->tree, ds_node_value(hd->out), rows, first, probs);
    return ds_softmax_rows(ds_node_value(hd->out), rows, hd->classes, first, probs);
}

/* ---- the parsed model and the layers of the last build ---- */

const char *ds_model_text(const ds_model *m) { return m ? m->text : NULL; }
const char *ds_model_file(const ds_model *m) { return m ? m->file : NULL; }
ds_shape ds_model_input_shape(const ds_model *m) { return m ? m->input : (ds_shape){0}; }
int ds_model_num_inputs(const ds_model *m) { return m ? m->n_inputs : 0; }
int ds_model_num_outputs(const ds_model *m) { return m ? m->n_outputs : 0; }
const char *ds_model_output_target(const ds_model *m, int h)
{
    return m && h >= 0 && h < m->n_outputs ? m->outputs[h].target : "label";
}
const char *ds_model_input_name(const ds_model *m, int k) { return m && k >= 0 && k < m->n_inputs ? m->inputs[k].name : NULL; }
ds_shape ds_model_input_shape_k(const ds_model *m, int k)
{
    return m && k >= 0 && k < m->n_inputs ? m->inputs[k].shape : (ds_shape){0};
}
const char *ds_model_input_columns(const ds_model *m, int k)
{
    return m && k >= 0 && k < m->n_inputs ? m->inputs[k].columns : NULL;
}
const char *ds_model_input_categories(const ds_model *m, int k)
{
    return m && k >= 0 && k < m->n_inputs ? m->inputs[k].categories : NULL;
}
int ds_model_input_normalize(const ds_model *m, int k)
{
    return m && k >= 0 && k < m->n_inputs ? m->inputs[k].normalize : 1;
}
int ds_model_classes(const ds_model *m) { return m ? m->classes : 0; }
const ds_train_cfg *ds_model_train_cfg(const ds_model *m) { return m ? &m->train : NULL; }
const ds_pretrain_cfg *ds_model_pretrain_cfg(const ds_model *m) { return m ? &m->pretrain : NULL; }
int ds_model_normalize(const ds_model *m) { return m ? m->normalize : 1; }
const ds_class_tree *ds_model_tree(const ds_model *m) { return m ? m->tree : NULL; }
int ds_model_outputs(const ds_model *m) { return !m ? 0 : m->tree ? m->tree->n_logits : m->classes; }

ds_node *ds_model_loss(const ds_model *m, ds_graph *g, ds_node *logits, ds_node *labels,
                       const float *class_weights)
{
    if (!m) {
        ds_fail("ds_model_loss: model is NULL");
        return NULL;
    }
    return m->tree ? ds_hier_softmax_cross_entropy(g, logits, labels, m->tree, class_weights)
                   : ds_softmax_cross_entropy(g, logits, labels, class_weights);
}

int ds_model_probs(const ds_model *m, const float *outputs, int rows, int first, float *probs)
{
    if (!m || !outputs || !probs) return ds_fail("ds_model_probs: NULL model or buffer");
    return m->tree ? ds_hier_probs_rows(m->tree, outputs, rows, first, probs)
                   : ds_softmax_rows(outputs, rows, m->classes, first, probs);
}
int ds_model_layer_rbm_visible(const ds_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers && m->layers[i].kind == L_RBM ? m->layers[i].visible : -1;
}
int ds_model_layer_pretrain_cfg(const ds_model *m, int i, ds_pretrain_cfg *out)
{
    if (!m || i < 0 || i >= m->n_layers || m->layers[i].kind != L_RBM) return -1;
    *out = m->pretrain;
    if (m->layers[i].rbm_lr > 0) out->lr = m->layers[i].rbm_lr;
    if (m->layers[i].rbm_epochs > 0) out->epochs = m->layers[i].rbm_epochs;
    return 0;
}
int ds_model_num_layers(const ds_model *m) { return m ? m->n_layers : 0; }

const char *ds_model_layer_name(const ds_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i].name : NULL;
}

const char *ds_model_layer_type(const ds_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? ds_layer_kind_name(m->layers[i].kind) : NULL;
}

ds_node *ds_model_layer_output(const ds_model *m, int i)
{
    return m && i >= 0 && i < m->n_layers ? m->layers[i].node : NULL;
}
