/* onnx_import_heads.c — the parts of ONNX import (onnx_import.c,
 * docs/onnx.md) for what deepsky export writes beyond one input and a
 * softmax: several inputs, an embedding (Cast, Gather), the [tree] tail, and
 * the output transform (a trailing chain of scalar Mul/Add/Sub/Div/Sinh). */
#ifdef DS_HAVE_ONNX
#include "onnx_import.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Flatten of a Gather's [N, 1, D]: deepsky's [N, D] as it is. */
int oi_alias_flat(im *m, const char *from)
{
    if (oi_alias(m, from, 0)) return -1;
    oi_find(m, m->node->output[0])->embed3d = 0;
    return 0;
}

/* Mul/Add/Sub/Div of a layer's value and a scalar constant, or Sinh: one
 * more op of the output transform, which must run from one layer's value
 * to the graph's output (checked when it is read, and at the end). */
int oi_imp_scalar(im *m, const char *op)
{
    const Onnx__NodeProto *n = m->node;
    int unary = !strcmp(op, "Sinh");
    if (!unary && n->n_input != 2) return oi_nfail(m, "%s takes two inputs", op);
    val *a = oi_find(m, n->input[0]), *b = unary ? NULL : oi_find(m, n->input[1]);
    if (!a || (!unary && !b)) return oi_nfail(m, "an input is not produced by an earlier node");
    int rev = !unary && a->kind == V_CONST; /* c op x */
    val *x = rev ? b : a, *c = unary ? NULL : rev ? a : b;
    if (!unary && (c->kind != V_CONST || ds_shape_numel(c->shape) != 1))
        return oi_nfail(m, "%s of two tensors, or of a constant that is not a scalar: deepsky has %s only by a scalar, in "
                        "the output transform after the last layer", op, op);
    if (x->kind != V_LAYER || x->softmax || x->index || x->tree)
        return oi_nfail(m, "%s by a constant is supported only after the last layer (the output transform)%s", op,
                     x->kind == V_INPUT ? "; on an input only Sub then Div (the normalisation)" : "");
    if (rev && !strcmp(op, "Div")) return oi_nfail(m, "Div of a constant by a tensor is not supported");
    if (x->ntail != m->n_tail || (m->n_tail && x->layer != m->tail_layer))
        return oi_nfail(m, "a second chain of elementwise ops on constants: only one, from the last layer to the output");
    if (m->n_tail == MAX_TAIL) return oi_nfail(m, "more than %d ops in the output transform", MAX_TAIL);
    tailop *t = &m->tail[m->n_tail];
    snprintf(t->op, sizeof t->op, "%s", rev && !strcmp(op, "Sub") ? "rsub" : op);
    for (char *q = t->op; *q; q++) *q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
    t->c = unary ? 0 : c->data[0];
    t->node = n->name && *n->name ? n->name : n->output[0];
    t->op_type = n->op_type;
    m->tail_layer = x->layer;
    val *o = oi_add_val(m, n->output[0], V_LAYER);
    if (!o) return ds_fail("out of memory");
    o->layer = x->layer, o->embed3d = x->embed3d, o->ntail = ++m->n_tail;
    return 0;
}

/* Cast: to an integer type, the index an embedding's Gather reads; to
 * float32, the identity. */
int oi_imp_cast(im *m)
{
    int64_t to = oi_attr_i(m->node, "to", 0);
    if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return oi_alias(m, m->node->input[0], 0);
    if (to != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && to != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return oi_nfail(m, "to=%lld: only int64 or int32 (an embedding's index) and float", (long long)to);
    val *x = oi_find(m, m->node->input[0]);
    if (!x || x->kind == V_CONST) return oi_nfail(m, "only a Cast of a computed tensor (an input or a layer) is supported");
    char s[DS_LAYER_NAME_MAX + 8];
    if (oi_src_name(m, m->node->input[0], s, sizeof s)) return -1;
    if (oi_alias(m, m->node->input[0], 0)) return -1;
    oi_find(m, m->node->output[0])->index = 1;
    return 0;
}

/* Gather(table [K, D], Cast index, axis=0): an [embedding] layer. */
int oi_imp_gather(im *m)
{
    val *t = oi_const_in(m, 0), *x = m->node->n_input == 2 ? oi_find(m, m->node->input[1]) : NULL;
    if (oi_attr_i(m->node, "axis", 0) != 0) return oi_nfail(m, "axis=%lld: only 0 (an embedding lookup)", (long long)oi_attr_i(m->node, "axis", 0));
    if (!t || t->shape.ndim != 2) return oi_nfail(m, "only Gather(table, index) with a constant 2-D table (an embedding) is supported");
    if (!x || !x->index) return oi_nfail(m, "the indices must be a Cast to int64 of an input or a layer (an embedding's index)");
    char s[DS_LAYER_NAME_MAX + 8];
    oi_ref_name(m, x, s, sizeof s);
    if (oi_new_layer(m, "embedding", NULL) || oi_append(m, &CUR, "from = %s\ncategories = %d\nunits = %d\n", s, t->shape.d[0], t->shape.d[1]))
        return -1;
    oi_find(m, m->node->output[0])->embed3d = 1;
    m->layer_units[m->n_layers - 1] = t->shape.d[1];
    return oi_weight(m, "weight", t->shape, t->data, 0, 1);
}

/* deepsky export's [tree] tail: Slices of the logits, a LogSoftmax each,
 * their Concat, MatMul by tree/paths, Exp. Only checked here; the model
 * file gets the [tree] from the metadata, and the end compares the two. */
int oi_imp_tree_tail(im *m, const char *op)
{
    const Onnx__NodeProto *n = m->node;
    val *x = oi_find(m, n->input[0]);
    if (!x) return oi_nfail(m, "input '%s' is not produced by an earlier node", n->input[0]);
    if (!strcmp(op, "Identity")) return oi_alias(m, n->input[0], 0);
    val *o = NULL;
    if (!strcmp(op, "Slice")) {
        val *st = oi_const_in(m, 1), *en = oi_const_in(m, 2), *ax = oi_const_in(m, 3), *sp = oi_const_in(m, 4);
        if (x->kind != V_LAYER || x->ntail || x->tree || x->softmax || (m->n_slices && x->layer != m->tree_layer))
            return oi_nfail(m, "the [tree] tail's Slices must all read the last layer's logits");
        if (!st || !en || !ax || ds_shape_numel(st->shape) != 1 || ds_shape_numel(en->shape) != 1 ||
            ds_shape_numel(ax->shape) != 1 || (ax->data[0] != 1 && ax->data[0] != -1) ||
            (n->n_input > 4 && (!sp || ds_shape_numel(sp->shape) != 1 || sp->data[0] != 1)))
            return oi_nfail(m, "a [tree] Slice needs constant starts, ends and axes=[1] (steps 1)");
        int *ab = realloc(m->slice_ab, (size_t)(m->n_slices + 1) * 2 * sizeof *ab);
        if (!ab) return ds_fail("out of memory");
        m->slice_ab = ab;
        ab[2 * m->n_slices] = (int)st->data[0], ab[2 * m->n_slices + 1] = (int)en->data[0];
        m->tree_layer = x->layer;
        if (!(o = oi_add_val(m, n->output[0], V_LAYER))) return ds_fail("out of memory");
        o->layer = x->layer, o->tree = 1, o->tj = m->n_slices++;
        return 0;
    }
    if (!strcmp(op, "LogSoftmax")) {
        int64_t axis = oi_attr_i(n, "axis", -1);
        if (x->tree != 1 || (axis != 1 && axis != -1)) return oi_nfail(m, "a [tree] LogSoftmax reads one Slice, axis 1");
    } else if (!strcmp(op, "Concat")) {
        if (oi_attr_i(n, "axis", 0) != 1 || (int)n->n_input != m->n_slices)
            return oi_nfail(m, "the [tree] Concat joins every LogSoftmax (%d), axis 1", m->n_slices);
        for (size_t k = 0; k < n->n_input; k++) {
            val *v = oi_find(m, n->input[k]);
            if (!v || v->tree != 2 || v->tj != (int)k) return oi_nfail(m, "input %zu is not the LogSoftmax of Slice %zu", k, k);
        }
    } else if (!strcmp(op, "MatMul")) {
        val *p = oi_const_in(m, 1);
        if (x->tree != 3 || !p || p->shape.ndim != 2) return oi_nfail(m, "the [tree] MatMul is Concat x tree/paths (a constant)");
        m->paths = p;
        m->paths_node = n->name && *n->name ? n->name : n->output[0];
    } else if (!strcmp(op, "Exp")) {
        if (x->tree != 4) return oi_nfail(m, "the [tree] Exp reads the MatMul");
    } else
        return oi_nfail(m, "after the [tree] tail's first Slice only Slice, LogSoftmax, Concat, MatMul, Exp and Identity");
    if (!(o = oi_add_val(m, n->output[0], V_LAYER))) return ds_fail("out of memory");
    o->layer = x->layer, o->tree = x->tree + 1, o->tj = x->tj;
    return 0;
}

/* The [tree] tail against the model's tree: each node's Slice, and
 * tree/paths (1 where logit i is on class c's path). */
int oi_check_tree(im *m, const ds_class_tree *t, int width)
{
    if (width != t->n_logits)
        return ds_fail("the last layer gives %d logits, the [tree] in metadata deepsky.tree needs %d", width, t->n_logits);
    if (m->n_slices != t->n_nodes) return ds_fail("the [tree] tail has %d Slices, the tree %d nodes", m->n_slices, t->n_nodes);
    for (int j = 0; j < t->n_nodes; j++)
        if (m->slice_ab[2 * j] != t->first[j] || m->slice_ab[2 * j + 1] != t->first[j] + t->n_children[j])
            return ds_fail("the [tree] tail's Slice %d takes logits %d..%d, tree node '%s' has %d..%d", j, m->slice_ab[2 * j],
                           m->slice_ab[2 * j + 1], t->names[j], t->first[j], t->first[j] + t->n_children[j]);
    const val *p = m->paths;
    if (p->shape.d[0] != t->n_logits || p->shape.d[1] != t->classes)
        return ds_fail("node '%s': tree/paths is %dx%d, the tree gives %dx%d", m->paths_node, p->shape.d[0], p->shape.d[1],
                       t->n_logits, t->classes);
    for (int c = 0; c < t->classes; c++) {
        for (int i = 0; i < t->n_logits; i++) {
            int on = 0;
            for (int id = c; t->parent[id] >= 0; id = t->classes + t->parent[id]) on |= t->logit[id] == i;
            if (p->data[(size_t)i * t->classes + c] != on)
                return ds_fail("node '%s': tree/paths[%d][%d] is %g, the tree in metadata deepsky.tree gives %d (logit %d is "
                               "%son class %d's path)", m->paths_node, i, c, p->data[(size_t)i * t->classes + c], on, i,
                               on ? "" : "not ", c);
        }
    }
    return 0;
}


/* y = the output transform of x, in float32 as ONNX computes it. */
float oi_transform(const im *m, float x)
{
    for (int k = 0; k < m->n_tail; k++) {
        const tailop *t = &m->tail[k];
        float c = (float)t->c;
        x = !strcmp(t->op, "mul") ? x * c : !strcmp(t->op, "add") ? x + c : !strcmp(t->op, "sub") ? x - c
            : !strcmp(t->op, "rsub") ? c - x : !strcmp(t->op, "div") ? x / c : sinhf(x);
    }
    return x;
}

/* The transform as checkpoint metadata: [["mul",0.5],["add",0.5],["sinh"]]. */
char *oi_transform_json(im *m)
{
    char *j = NULL;
    int rc = oi_append(m, &j, "[");
    for (int k = 0; k < m->n_tail && !rc; k++)
        rc = !strcmp(m->tail[k].op, "sinh") ? oi_append(m, &j, "%s[\"sinh\"]", k ? "," : "")
                                             : oi_append(m, &j, "%s[\"%s\",%.9g]", k ? "," : "", m->tail[k].op, m->tail[k].c);
    if (!rc) rc = oi_append(m, &j, "]");
    if (rc) free(j), j = NULL;
    return j;
}

/* Input k's file for --run: the one path, or NAME=PATH among a list. */
int oi_run_file(im *m, const char *run_x, int k, char *path, size_t size)
{
    if (!strchr(run_x, '=')) {
        if (m->n_in > 1) return ds_fail("--run: the model has %d inputs: give each as NAME=FILE.npy, comma-separated", m->n_in);
        snprintf(path, size, "%s", run_x);
        return 0;
    }
    for (const char *p = run_x; *p;) {
        const char *e = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!eq || eq >= p + len) return ds_fail("--run: '%.*s' is not NAME=FILE.npy", (int)len, p);
        size_t nl = (size_t)(eq - p);
        if ((nl == strlen(m->in[k].onnx_name) && !strncmp(p, m->in[k].onnx_name, nl)) ||
            (nl == strlen(m->in[k].name) && !strncmp(p, m->in[k].name, nl))) {
            snprintf(path, size, "%.*s", (int)(len - nl - 1), eq + 1);
            return 0;
        }
        p += len + (e ? 1 : 0);
    }
    return ds_fail("--run: no file for input '%s'", m->in[k].onnx_name);
}


/* A model-file name for ONNX input k: its own where it is one and not
 * taken (layers are l0, l1, ...), else in<k>. */
static void input_name(im *m, int k)
{
    const char *s = m->in[k].onnx_name;
    int ok = (s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) && strlen(s) < DS_LAYER_NAME_MAX;
    for (const char *q = s; ok && *q; q++)
        ok = *q == '_' || *q == '-' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9');
    if (ok && (!strcmp(s, "input") || !strcmp(s, "y") || !strcmp(s, "loss") || !strcmp(s, "label"))) ok = 0;
    if (ok && s[0] == 'l' && s[1] && strspn(s + 1, "0123456789") == strlen(s + 1)) ok = 0;
    if (ok && !strncmp(s, "in", 2) && s[2] && strspn(s + 2, "0123456789") == strlen(s + 2)) ok = 0;
    if (ok) snprintf(m->in[k].name, sizeof m->in[k].name, "%s", s);
    else snprintf(m->in[k].name, sizeof m->in[k].name, "in%d", k);
}

const char *oi_meta(const Onnx__ModelProto *mp, const char *key)
{
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (mp->metadata_props[i]->key && !strcmp(mp->metadata_props[i]->key, key)) return mp->metadata_props[i]->value;
    return NULL;
}

/* The graph inputs (those no initializer names), their shapes and names. */
int oi_read_inputs(im *m, const Onnx__ModelProto *mp, const char *onnx_path)
{
    const Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *input = g->input[i];
        if (oi_find(m, input->name)) continue; /* an initializer listed as an input (old exporters) */
        if (m->n_in == DS_MAX_INPUTS) return ds_fail("%s: more than %d inputs", onnx_path, DS_MAX_INPUTS);
        imin *in = &m->in[m->n_in];
        in->onnx_name = input->name;
        const Onnx__TypeProto *t = input->type;
        if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape ||
            t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return ds_fail("%s: input '%s' must be a float tensor of known shape", onnx_path, input->name);
        const Onnx__TensorShapeProto *s = t->tensor_type->shape;
        in->ndim = (int)s->n_dim;
        if (s->n_dim == 3) { /* [N, A, B] as one-channel images: only where no node has a channel axis */
            static const char *const chan_ops[] = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                                                  "BatchNormalization", "InstanceNormalization", "Concat", "Sub", "Div"};
            for (size_t j = 0; j < g->n_node; j++)
                for (size_t k = 0; k < sizeof chan_ops / sizeof *chan_ops; k++)
                    if (!strcmp(g->node[j]->op_type, chan_ops[k]))
                        return ds_fail("%s: input '%s' is [N, A, B] and node '%s' (%s) has a channel axis: deepsky "
                                       "takes [N, F] or [N, C, H, W]", onnx_path, input->name, g->node[j]->name, chan_ops[k]);
            in->rank3 = 1;
        }
        if (s->n_dim == 1) { /* [F], no batch: one sample [1, F], where every node is elementwise */
            static const char *const elem_ops[] = {"Relu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "Elu", "Dropout", "Identity"};
            for (size_t j = 0; j < g->n_node; j++) {
                size_t k = 0;
                while (k < sizeof elem_ops / sizeof *elem_ops && strcmp(g->node[j]->op_type, elem_ops[k])) k++;
                if (k == sizeof elem_ops / sizeof *elem_ops)
                    return ds_fail("%s: input '%s' is 1-D (no batch) and node '%s' (%s) is not elementwise: deepsky takes "
                                   "[N, F] or [N, C, H, W]", onnx_path, input->name, g->node[j]->name, g->node[j]->op_type);
            }
            in->nobatch = 1;
        }
        if (s->n_dim > 4)
            return ds_fail("%s: input '%s' has %zu dims: deepsky takes [N, F] or [N, C, H, W]", onnx_path, input->name, s->n_dim);
        if (in->nobatch) in->dims[0] = 1, in->ndim = 2;
        for (size_t k = 0; k < s->n_dim; k++) {
            const Onnx__TensorShapeProto__Dimension *d = s->dim[k];
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) in->dims[k + in->nobatch] = (int)d->dim_value;
            else if (k == 0 && !in->nobatch) in->dims[k] = 1; /* a symbolic batch */
            else return ds_fail("%s: input '%s' dim %zu is symbolic: deepsky needs the sample shape", onnx_path, input->name, k);
        }
        char key[256];
        snprintf(key, sizeof key, "deepsky.columns.%s", input->name);
        in->columns = oi_meta(mp, key);
        if (in->columns && (in->ndim != 2 || strpbrk(in->columns, "\n[]#")))
            return ds_fail("%s: metadata %s: columns for a [N, F] input, one line", onnx_path, key);
        input_name(m, m->n_in);
        val *v = oi_add_val(m, input->name, V_INPUT);
        if (!v) return ds_fail("out of memory");
        v->layer = m->n_in++;
        m->sections |= in->columns != NULL;
    }
    if (!m->n_in) return ds_fail("%s: the graph has no input", onnx_path);
    m->sections |= m->n_in > 1;
    return 0;
}
#else
typedef int ds_onnx_import_heads_unused; /* not an empty translation unit without ONNX */
#endif
