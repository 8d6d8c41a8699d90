/* onnx_export.c — a checkpoint as an ONNX model (docs/onnx.md): one or a
 * few ONNX nodes per layer of the checkpoint's model file, the weights as
 * float32 initializers in raw_data, the input normalisation as Sub/Div
 * nodes in front, a Softmax after a softmax head, and the class names in
 * metadata_props "classes". Encoded with protobuf-c over ONNX's own
 * onnx.proto (third_party/onnx; generated at build time). Without
 * protobuf-c the build has no DS_HAVE_ONNX and ds_onnx_export says so. */
#include "json.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DS_HAVE_ONNX
int ds_onnx_export(const char *ckpt_path, const char *onnx_path) { return ds_onnx_export_ex(ckpt_path, onnx_path, NULL); }

int ds_onnx_export_ex(const char *ckpt_path, const char *onnx_path, const char *net)
{
    (void)onnx_path, (void)net;
    return ds_fail("%s: this deepsky was built without ONNX support (needs protobuf-c: libprotobuf-c-dev, "
                   "protobuf-c-compiler)", ckpt_path);
}
#else
#include "onnx.pb-c.h"

/* Every string and message is malloc'd and linked into the model, so one
 * onnx__model_proto__free_unpacked(model, NULL) frees it all; a failed
 * allocation sets oom, checked once before writing. */
typedef struct ex {
    Onnx__GraphProto *g;
    const ds_checkpoint *ck;
    const char *prefix; /* a GAN network's checkpoint keys: "generator." / "discriminator."; else "" */
    int oom, n_tmp, has_norm;
} ex;

static char *sdup(ex *e, const char *s)
{
    char *p = strdup(s);
    if (!p) e->oom = 1;
    return p;
}

/* Append p to a repeated field (array of pointers of count *n). */
static void push(ex *e, void ***arr, size_t *n, void *p)
{
    if (!p) {
        e->oom = 1;
        return;
    }
    void **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) { /* p is leaked, not freed: a caller may still read a name it pushed */
        e->oom = 1;
        return;
    }
    a[(*n)++] = p;
    *arr = a;
}

/* A new value name "<base>/<op>" unique in the graph (outputs of inner nodes). */
static char *tmp_name(ex *e, const char *base, const char *op)
{
    char buf[DS_LAYER_NAME_MAX + 48];
    snprintf(buf, sizeof buf, "%s/%s_%d", base, op, e->n_tmp++);
    return sdup(e, buf);
}

/* Node op(in...) -> out (a name this takes over), named after it. */
static Onnx__NodeProto *node(ex *e, const char *op, int nin, const char *const *in, char *out)
{
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n) { /* out is leaked, not freed: callers copy its name after */
        e->oom = 1;
        return NULL;
    }
    onnx__node_proto__init(n);
    n->op_type = sdup(e, op);
    n->name = out ? sdup(e, out) : NULL;
    for (int i = 0; i < nin; i++) push(e, (void ***)&n->input, &n->n_input, sdup(e, in[i]));
    push(e, (void ***)&n->output, &n->n_output, out);
    push(e, (void ***)&e->g->node, &e->g->n_node, n);
    return e->oom ? NULL : n;
}

static Onnx__AttributeProto *attr(ex *e, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType t)
{
    if (!n) return NULL;
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a) {
        e->oom = 1;
        return NULL;
    }
    onnx__attribute_proto__init(a);
    a->name = sdup(e, name);
    a->has_type = 1;
    a->type = t;
    push(e, (void ***)&n->attribute, &n->n_attribute, a);
    return e->oom ? NULL : a;
}

static void attr_int(ex *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

static void attr_float(ex *e, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

static void attr_ints(ex *e, Onnx__NodeProto *n, const char *name, int k, const int64_t *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a) return;
    a->ints = malloc((size_t)k * sizeof *a->ints);
    if (!a->ints) {
        e->oom = 1;
        return;
    }
    memcpy(a->ints, v, (size_t)k * sizeof *v);
    a->n_ints = (size_t)k;
}

/* An initializer of `bytes` raw little-endian data (ONNX's raw_data). */
static void initializer(ex *e, const char *name, int type, int ndim, const int64_t *dims, const void *data, size_t bytes)
{
    Onnx__TensorProto *t = malloc(sizeof *t);
    if (!t) {
        e->oom = 1;
        return;
    }
    onnx__tensor_proto__init(t);
    t->name = sdup(e, name);
    t->has_data_type = 1;
    t->data_type = type;
    t->dims = malloc((size_t)(ndim ? ndim : 1) * sizeof *t->dims);
    t->raw_data.data = malloc(bytes ? bytes : 1);
    if (!t->dims || !t->raw_data.data) e->oom = 1;
    else {
        memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
        t->n_dims = (size_t)ndim;
        memcpy(t->raw_data.data, data, bytes);
        t->raw_data.len = bytes;
        t->has_raw_data = 1;
    }
    push(e, (void ***)&e->g->initializer, &e->g->n_initializer, t);
}

/* The checkpoint tensor `name` as an initializer of the same name; -1 with
 * the error naming it when the checkpoint lacks it. */
static int weight(ex *e, const char *name)
{
    for (int i = 0; i < ds_checkpoint_num_tensors(e->ck); i++) {
        ds_shape s;
        const float *d;
        const char *k = ds_checkpoint_tensor(e->ck, i, &s, &d);
        if (strcmp(k, name)) continue;
        int64_t dims[DS_MAX_DIMS];
        for (int j = 0; j < s.ndim; j++) dims[j] = s.d[j];
        initializer(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, s.ndim, dims, d, ds_shape_numel(s) * sizeof(float));
        return 0;
    }
    return ds_fail("the checkpoint has no tensor '%s'", name);
}

/* One-input node on *cur (which becomes its output); returns the node. */
static Onnx__NodeProto *step(ex *e, const char *op, const char *base, char **cur)
{
    char *out = tmp_name(e, base, op);
    if (!out) return NULL;
    Onnx__NodeProto *n = node(e, op, 1, (const char *const *)cur, out);
    free(*cur);
    *cur = sdup(e, out);
    return n;
}

static void activation(ex *e, const ds_layer *L, char **cur)
{
    static const char *const ops[] = {[A_RELU] = "Relu", [A_LEAKY] = "LeakyRelu", [A_LEAKY_RELU] = "LeakyRelu",
                                      [A_ELU] = "Elu", [A_SIGMOID] = "Sigmoid", [A_TANH] = "Tanh",
                                      [A_SOFTPLUS] = "Softplus"};
    if (L->act == A_LINEAR) return;
    Onnx__NodeProto *n = step(e, ops[L->act], L->name, cur);
    if (L->act == A_LEAKY || L->act == A_LEAKY_RELU || L->act == A_ELU) attr_float(e, n, "alpha", L->alpha);
}

/* BatchNormalization with the checkpoint's "<prefix>.weight/bias/running_mean/running_var". */
static int batchnorm(ex *e, const char *prefix, const char *base, char **cur)
{
    static const char *const roles[] = {"weight", "bias", "running_mean", "running_var"};
    const char *in[5] = {*cur};
    char names[4][DS_LAYER_NAME_MAX + 48];
    for (int k = 0; k < 4; k++) {
        snprintf(names[k], sizeof names[k], "%s.%s", prefix, roles[k]);
        if (weight(e, names[k])) return -1;
        in[k + 1] = names[k];
    }
    char *out = tmp_name(e, base, "BatchNormalization");
    Onnx__NodeProto *n = node(e, "BatchNormalization", 5, in, out);
    attr_float(e, n, "epsilon", 1e-5f);
    free(*cur);
    *cur = sdup(e, out);
    return 0;
}

/* The ONNX nodes of layer L on inputs in[0..n_in); *cur its output. */
static int layer(ex *e, const ds_model *m, const ds_layer *L, const char *const *in, int n_in, char **cur)
{
    char wn[DS_LAYER_NAME_MAX + 32], bn[DS_LAYER_NAME_MAX + 32], pn[DS_LAYER_NAME_MAX + 24];
    snprintf(wn, sizeof wn, "%s%s.weight", e->prefix, L->name);
    snprintf(bn, sizeof bn, "%s%s.bias", e->prefix, L->name);
    snprintf(pn, sizeof pn, "%s%s", e->prefix, L->name);
    *cur = sdup(e, in[0]);
    switch (L->kind) {
    case L_CONV:
    case L_DECONV: {
        if (weight(e, wn) || (L->bias && weight(e, bn))) return -1;
        const char *ins[3] = {in[0], wn, bn};
        const char *op = L->kind == L_CONV ? "Conv" : "ConvTranspose";
        char *out = tmp_name(e, L->name, op);
        Onnx__NodeProto *n = node(e, op, L->bias ? 3 : 2, ins, out);
        int64_t k[2] = {L->size, L->size}, s[2] = {L->stride, L->stride}, d[2] = {L->dilation, L->dilation};
        int64_t p[4] = {L->pad, L->pad, L->pad, L->pad}, op_[2] = {L->out_pad, L->out_pad};
        attr_ints(e, n, "kernel_shape", 2, k);
        attr_ints(e, n, "strides", 2, s);
        attr_ints(e, n, "pads", 4, p);
        attr_ints(e, n, "dilations", 2, d);
        attr_int(e, n, "group", L->groups);
        if (L->kind == L_DECONV && L->out_pad) attr_ints(e, n, "output_padding", 2, op_);
        free(*cur);
        *cur = sdup(e, out);
        break;
    }
    case L_DENSE:
    case L_RBM: {
        if (weight(e, wn) || ((L->bias || L->kind == L_RBM) && weight(e, bn))) return -1;
        attr_int(e, step(e, "Flatten", L->name, cur), "axis", 1);
        const char *ins[3] = {*cur, wn, bn};
        char *out = tmp_name(e, L->name, "Gemm");
        Onnx__NodeProto *n = node(e, "Gemm", L->bias || L->kind == L_RBM ? 3 : 2, ins, out);
        attr_int(e, n, "transB", 1);
        free(*cur);
        *cur = sdup(e, out);
        if (L->kind == L_RBM) step(e, "Sigmoid", L->name, cur);
        break;
    }
    case L_MAXPOOL:
    case L_AVGPOOL: {
        Onnx__NodeProto *n = step(e, L->kind == L_MAXPOOL ? "MaxPool" : "AveragePool", L->name, cur);
        int64_t k[2] = {L->size, L->size}, s[2] = {L->stride, L->stride};
        int64_t p[4] = {L->pad, L->pad, L->pad, L->pad};
        attr_ints(e, n, "kernel_shape", 2, k);
        attr_ints(e, n, "strides", 2, s);
        attr_ints(e, n, "pads", 4, p);
        if (L->kind == L_AVGPOOL) attr_int(e, n, "count_include_pad", 1); /* deepsky divides by size² */
        break;
    }
    case L_GAP: step(e, "GlobalAveragePool", L->name, cur); break;
    case L_BN: return batchnorm(e, pn, L->name, cur);
    case L_INSTNORM: { /* no parameters in deepsky: scale 1, bias 0 over the channels the built graph gives */
        int64_t c = L->node->shape.d[1];
        float *ones = malloc((size_t)c * sizeof *ones), *zeros = calloc((size_t)c, sizeof *zeros);
        if (!ones || !zeros) {
            free(ones), free(zeros);
            return ds_fail("out of memory");
        }
        for (int64_t k = 0; k < c; k++) ones[k] = 1;
        char sn[DS_LAYER_NAME_MAX + 16], bn_[DS_LAYER_NAME_MAX + 16];
        snprintf(sn, sizeof sn, "%s/scale", L->name);
        snprintf(bn_, sizeof bn_, "%s/B", L->name);
        initializer(e, sn, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &c, ones, (size_t)c * sizeof *ones);
        initializer(e, bn_, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &c, zeros, (size_t)c * sizeof *zeros);
        free(ones), free(zeros);
        const char *ins[3] = {*cur, sn, bn_};
        char *out = tmp_name(e, L->name, "InstanceNormalization");
        attr_float(e, node(e, "InstanceNormalization", 3, ins, out), "epsilon", 1e-5f);
        free(*cur);
        *cur = sdup(e, out);
        break;
    }
    case L_EMBED: { /* Gather(table, int64(index)) [N, 1, D] (or [N, D]), flattened to deepsky's [N, D] */
        if (weight(e, wn)) return -1;
        attr_int(e, step(e, "Cast", L->name, cur), "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        const char *ins[2] = {wn, *cur};
        char *out = tmp_name(e, L->name, "Gather");
        attr_int(e, node(e, "Gather", 2, ins, out), "axis", 0);
        free(*cur);
        *cur = sdup(e, out);
        attr_int(e, step(e, "Flatten", L->name, cur), "axis", 1);
        break;
    }
    case L_DROPOUT: break; /* the identity at inference */
    case L_ACT: break;     /* activation() below */
    case L_FLATTEN: attr_int(e, step(e, "Flatten", L->name, cur), "axis", 1); break;
    case L_CONCAT:
    case L_ADD: {
        const char *op = L->kind == L_ADD ? "Add" : "Concat";
        if (L->kind == L_CONCAT || n_in == 2) {
            char *out = tmp_name(e, L->name, op);
            Onnx__NodeProto *n = node(e, op, n_in, in, out);
            if (L->kind == L_CONCAT) attr_int(e, n, "axis", 1);
            free(*cur);
            *cur = sdup(e, out);
        } else /* Add takes two inputs: a chain, in the order deepsky adds */
            for (int k = 1; k < n_in; k++) {
                const char *ins[2] = {*cur, in[k]};
                char *out = tmp_name(e, L->name, op);
                node(e, op, 2, ins, out);
                free(*cur);
                *cur = sdup(e, out);
            }
        break;
    }
    case L_RESHAPE: {
        int64_t shape[DS_MAX_DIMS + 1] = {0}, nd = L->shape.ndim + 1; /* 0: the batch, copied */
        for (int k = 0; k < L->shape.ndim; k++) shape[k + 1] = L->shape.d[k];
        char sn[DS_LAYER_NAME_MAX + 16];
        snprintf(sn, sizeof sn, "%s/shape", L->name);
        initializer(e, sn, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &nd, shape, (size_t)nd * sizeof *shape);
        const char *ins[2] = {*cur, sn};
        char *out = tmp_name(e, L->name, "Reshape");
        node(e, "Reshape", 2, ins, out);
        free(*cur);
        *cur = sdup(e, out);
        break;
    }
    default:
        return ds_fail("%s:%d: layer '%s' (%s): no ONNX export for this layer type", m->file, L->line, L->name,
                       ds_layer_kind_name(L->kind));
    }
    if (L->bn && (L->kind == L_CONV || L->kind == L_DECONV || L->kind == L_DENSE)) {
        char p[DS_LAYER_NAME_MAX + 32];
        snprintf(p, sizeof p, "%s%s.bn", e->prefix, L->name);
        if (batchnorm(e, p, L->name, cur)) return -1;
    }
    if (L->kind == L_CONV || L->kind == L_DECONV || L->kind == L_DENSE || L->kind == L_ACT || L->kind == L_ADD)
        activation(e, L, cur);
    return 0;
}

/* A float tensor value [N, dims...] with the batch symbolic. */
static Onnx__ValueInfoProto *value_info(ex *e, const char *name, int ndim, const int *dims)
{
    Onnx__ValueInfoProto *v = malloc(sizeof *v);
    Onnx__TypeProto *t = malloc(sizeof *t);
    Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
    Onnx__TensorShapeProto *sh = malloc(sizeof *sh);
    if (!v || !t || !tt || !sh) {
        free(v), free(t), free(tt), free(sh);
        e->oom = 1;
        return NULL;
    }
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    v->name = sdup(e, name);
    v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    for (int k = 0; k <= ndim; k++) {
        Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
        if (!d) {
            e->oom = 1;
            break;
        }
        onnx__tensor_shape_proto__dimension__init(d);
        if (k == 0) d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = sdup(e, "N");
        else d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[k - 1];
        push(e, (void ***)&sh->dim, &sh->n_dim, d);
    }
    return v;
}

static void metadata(ex *e, Onnx__ModelProto *mp, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *kv = malloc(sizeof *kv);
    if (!kv) {
        e->oom = 1;
        return;
    }
    onnx__string_string_entry_proto__init(kv);
    kv->key = sdup(e, key);
    kv->value = sdup(e, value);
    push(e, (void ***)&mp->metadata_props, &mp->n_metadata_props, kv);
}

/* x' = (x − mean) / std after input value *x: constants TAG.mean, TAG.std
 * of shape [C, 1, 1] (an image input: they broadcast over H, W) or [F]. */
static void norm_nodes(ex *e, const char *tag, const ds_norm *nm, int image, char **x)
{
    char mn[DS_LAYER_NAME_MAX + 48], sn[DS_LAYER_NAME_MAX + 48], o1[DS_LAYER_NAME_MAX + 48], o2[DS_LAYER_NAME_MAX + 48];
    snprintf(mn, sizeof mn, "%s.mean", tag);
    snprintf(sn, sizeof sn, "%s.std", tag);
    snprintf(o1, sizeof o1, "%s/Sub", tag);
    snprintf(o2, sizeof o2, "%s/Div", tag);
    int64_t nd[3] = {nm->channels, 1, 1};
    initializer(e, mn, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, image ? 3 : 1, nd, nm->mean, (size_t)nm->channels * 4);
    initializer(e, sn, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, image ? 3 : 1, nd, nm->std, (size_t)nm->channels * 4);
    const char *a[2] = {*x, mn};
    node(e, "Sub", 2, a, sdup(e, o1));
    const char *b[2] = {o1, sn};
    node(e, "Div", 2, b, sdup(e, o2));
    free(*x);
    *x = sdup(e, o2);
    e->has_norm = 1;
}

/* op(*cur, a scalar constant NAME = v): *cur becomes its output. */
static void scalar_op(ex *e, const char *op, const char *name, float v, char **cur, const char *out)
{
    initializer(e, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &v, sizeof v);
    const char *in[2] = {*cur, name};
    char *o = out ? sdup(e, out) : tmp_name(e, "gan", op);
    if (!o) return;
    node(e, op, 2, in, o);
    free(*cur);
    *cur = sdup(e, o);
}

/* The "scale" of a GAN checkpoint's "gan" metadata (src/train/gan.c writes it). */
static int gan_scale(const ds_checkpoint *ck, const char *path, ds_gan_scale *s)
{
    const char *meta = ds_checkpoint_meta(ck, "gan");
    char err[128];
    ds_json *j = meta ? ds_json_parse(meta, strlen(meta), err, sizeof err) : NULL;
    const ds_json *sc = j ? ds_json_get(j, "scale") : NULL, *tr = sc ? ds_json_get(sc, "transform") : NULL;
    double soft, lo, hi;
    int bad = !tr || tr->type != DS_JSON_STR || ds_json_double(ds_json_get(sc, "softening"), &soft) ||
              ds_json_double(ds_json_get(sc, "lo"), &lo) || ds_json_double(ds_json_get(sc, "hi"), &hi) || !(hi > lo);
    if (!bad) *s = (ds_gan_scale){strcmp(tr->str, "asinh") ? DS_GAN_LINEAR : DS_GAN_ASINH, (float)soft, (float)lo, (float)hi};
    ds_json_free(j);
    return bad ? ds_fail("%s: the GAN checkpoint's scale (metadata \"gan\") is missing or damaged", path) : 0;
}

/* log p(class) = Σ over its path of the LogSoftmax of each node's block:
 * Slice + LogSoftmax per node, Concat back into the logits' layout, MatMul
 * with the 0/1 path matrix, Exp: the probabilities deepsky's [tree] head gives. */
static int tree_tail(ex *e, const ds_class_tree *t)
{
    int *order = malloc((size_t)t->n_nodes * sizeof *order);
    char **parts = calloc((size_t)t->n_nodes, sizeof *parts);
    float *paths = calloc((size_t)t->n_logits * (size_t)t->classes, sizeof *paths);
    if (!order || !parts || !paths) {
        free(order), free(parts), free(paths);
        return ds_fail("out of memory");
    }
    for (int k = 0; k < t->n_nodes; k++) order[k] = k;
    for (int a = 1; a < t->n_nodes; a++) /* by first logit: the concatenation is the logits' layout */
        for (int b = a; b > 0 && t->first[order[b]] < t->first[order[b - 1]]; b--) {
            int x = order[b];
            order[b] = order[b - 1], order[b - 1] = x;
        }
    for (int q = 0; q < t->n_nodes; q++) {
        int k = order[q];
        char st[48], en[48], ax[48];
        int64_t one = 1, a0 = t->first[k], a1 = t->first[k] + t->n_children[k], axis = 1;
        snprintf(st, sizeof st, "tree/%d/starts", k);
        snprintf(en, sizeof en, "tree/%d/ends", k);
        snprintf(ax, sizeof ax, "tree/%d/axes", k);
        initializer(e, st, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &one, &a0, sizeof a0);
        initializer(e, en, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &one, &a1, sizeof a1);
        initializer(e, ax, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &one, &axis, sizeof axis);
        const char *in[4] = {"logits", st, en, ax};
        char sl[64], nm[64];
        snprintf(sl, sizeof sl, "tree/%d/Slice", k);
        node(e, "Slice", 4, in, sdup(e, sl));
        const char *li[1] = {sl};
        snprintf(nm, sizeof nm, "tree/%d/LogSoftmax", k);
        attr_int(e, node(e, "LogSoftmax", 1, li, sdup(e, nm)), "axis", 1);
        parts[q] = sdup(e, nm);
    }
    for (int c = 0; c < t->classes; c++)
        for (int id = c; t->parent[id] >= 0; id = t->classes + t->parent[id]) paths[(size_t)t->logit[id] * t->classes + c] = 1;
    int64_t pd[2] = {t->n_logits, t->classes};
    initializer(e, "tree/paths", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, pd, paths, (size_t)t->n_logits * t->classes * 4);
    if (!e->oom) {
        attr_int(e, node(e, "Concat", t->n_nodes, (const char *const *)parts, sdup(e, "tree/log_cond")), "axis", 1);
        const char *mi[2] = {"tree/log_cond", "tree/paths"};
        node(e, "MatMul", 2, mi, sdup(e, "tree/log_probabilities"));
        const char *ei[1] = {"tree/log_probabilities"};
        node(e, "Exp", 1, ei, sdup(e, "probabilities"));
    }
    for (int q = 0; q < t->n_nodes; q++) free(parts[q]);
    free(parts), free(order), free(paths);
    return 0;
}

/* The [tree] section as model-file lines ("root = top, 1, 3\n..."), malloc'd. */
static char *tree_text(const ds_class_tree *t)
{
    ds_jbuf b = {0};
    for (int k = 0; k < t->n_nodes; k++) {
        ds_jb_printf(&b, "%s =", t->names[k]);
        for (int j = t->first[k]; j < t->first[k] + t->n_children[k]; j++) {
            int id = t->children[j];
            if (id < t->classes) ds_jb_printf(&b, "%s %d", j > t->first[k] ? "," : "", id);
            else ds_jb_printf(&b, "%s %s", j > t->first[k] ? "," : "", t->names[id - t->classes]);
        }
        ds_jb_put(&b, "\n", 1);
    }
    ds_jb_put(&b, "", 1);
    if (b.oom) {
        ds_jb_free(&b);
        return NULL;
    }
    return b.p;
}

/* A graph output of the built node's per-sample shape. */
static void output(ex *e, const char *name, const ds_node *n)
{
    int dims[DS_MAX_DIMS];
    for (int k = 1; k < n->shape.ndim; k++) dims[k - 1] = n->shape.d[k];
    push(e, (void ***)&e->g->output, &e->g->n_output, value_info(e, name, n->shape.ndim - 1, dims));
}

/* gan: 0 a classifier; 1 a GAN's generator, 2 its discriminator (with scale). */
static int build(ex *e, Onnx__ModelProto *mp, const ds_model *m, int gan, const ds_gan_scale *scale)
{
    if (m->n_outputs > 1) return ds_fail("%s: a model with %d heads has no ONNX export (one head only)", m->file, m->n_outputs);
    int n_in = m->n_inputs ? m->n_inputs : 1;
    char *x[DS_MAX_INPUTS] = {0};
    int rc = 0;
    for (int k = 0; k < n_in && !rc; k++) {
        const char *name = m->n_inputs ? m->inputs[k].name : "x";
        if (gan == 1 && n_in == 1 && !strcmp(name, "x")) name = "z"; /* a generator's one input is its latent */
        ds_shape s = m->n_inputs ? m->inputs[k].shape : m->input;
        int dims[DS_MAX_DIMS];
        for (int j = 0; j < s.ndim; j++) dims[j] = s.d[j];
        push(e, (void ***)&e->g->input, &e->g->n_input, value_info(e, name, s.ndim, dims));
        x[k] = sdup(e, name);
        char key[DS_LAYER_NAME_MAX + 32];
        if (m->n_inputs && m->inputs[k].columns) {
            snprintf(key, sizeof key, "deepsky.columns.%s", name);
            metadata(e, mp, key, m->inputs[k].columns);
        }
        if (m->n_inputs && m->inputs[k].categories) {
            snprintf(key, sizeof key, "deepsky.categories.%s", name);
            metadata(e, mp, key, m->inputs[k].categories);
        }
        ds_norm nm = {0};
        snprintf(key, sizeof key, k ? "norm.%s" : "norm", name);
        if (gan == 2 && k == 0) { /* the discriminator's data scale: t(x), then 2(t − lo)/(hi − lo) − 1 */
            if (scale->transform == DS_GAN_ASINH) {
                scalar_op(e, "Div", "gan/softening", scale->softening, &x[k], "gan/Div");
                step(e, "Asinh", "gan", &x[k]);
            }
            int c = s.ndim == 3 ? s.d[0] : 1;
            float *mean = malloc((size_t)c * sizeof *mean), *sd = malloc((size_t)c * sizeof *sd);
            if (!mean || !sd) {
                free(mean), free(sd);
                rc = ds_fail("out of memory");
                break;
            }
            for (int j = 0; j < c; j++) mean[j] = (scale->lo + scale->hi) / 2, sd[j] = (scale->hi - scale->lo) / 2;
            nm = (ds_norm){c, mean, sd};
        } else if (gan == 0 && ds_checkpoint_norm_key(e->ck, key, &nm)) {
            rc = -1;
            break;
        }
        if (nm.channels) norm_nodes(e, key, &nm, s.ndim == 3, &x[k]);
        ds_norm_free(&nm);
    }

    char **val = rc ? NULL : calloc((size_t)m->n_layers, sizeof *val);
    if (!rc && !val) rc = ds_fail("out of memory");
    for (int i = 0; i < m->n_layers && !rc && !e->oom; i++) {
        const ds_layer *L = &m->layers[i];
        const char *in[64];
        int n_from = L->n_from ? L->n_from : 1;
        if (n_from > 64) n_from = 64;
        for (int k = 0; k < n_from; k++) {
            int f = L->n_from ? L->from[k] : i - 1;
            in[k] = f < 0 ? x[-1 - f] : val[f];
        }
        rc = layer(e, m, L, in, n_from, &val[i]);
    }
    int last = m->n_outputs ? m->outputs[0].from : m->n_layers - 1;
    if (!rc && !e->oom && (last < 0 || last >= m->n_layers)) rc = ds_fail("%s: the model has no layer to export", m->file);
    if (!rc && !e->oom) {
        const ds_node *ln = m->layers[last].node;
        const char *ins[1] = {val[last]};
        const char *first = gan == 1 ? "generated" : gan == 2 ? "logit" : "logits";
        node(e, "Identity", 1, ins, sdup(e, first));
        output(e, first, ln);
        if (gan == 1) { /* data units: t = (g + 1)(hi − lo)/2 + lo, then x = softening·sinh(t) for asinh */
            char *cur = sdup(e, "generated");
            float k = (scale->hi - scale->lo) / 2;
            int asinh = scale->transform == DS_GAN_ASINH;
            scalar_op(e, "Mul", "gan/scale_a", k, &cur, NULL);
            scalar_op(e, "Add", "gan/scale_b", k + scale->lo, &cur, asinh ? NULL : "sample");
            if (asinh) {
                step(e, "Sinh", "gan", &cur);
                scalar_op(e, "Mul", "gan/softening", scale->softening, &cur, "sample");
            }
            free(cur);
            output(e, "sample", ln);
        } else if (gan == 2) {
            const char *li[1] = {"logit"};
            node(e, "Sigmoid", 1, li, sdup(e, "probability"));
            output(e, "probability", ln);
        } else if (m->tree) {
            rc = tree_tail(e, m->tree);
            int classes[1] = {m->tree->classes};
            push(e, (void ***)&e->g->output, &e->g->n_output, value_info(e, "probabilities", 1, classes));
            char *tt = tree_text(m->tree);
            if (tt) metadata(e, mp, "deepsky.tree", tt);
            else e->oom = 1;
            free(tt);
        } else if (!m->n_outputs || m->outputs[0].loss == DS_LOSS_SOFTMAX) {
            const char *li[1] = {"logits"};
            attr_int(e, node(e, "Softmax", 1, li, sdup(e, "probabilities")), "axis", 1);
            output(e, "probabilities", ln);
        }
    }
    for (int i = 0; i < m->n_layers && val; i++) free(val[i]);
    free(val);
    for (int k = 0; k < n_in; k++) free(x[k]);
    return rc;
}

int ds_onnx_export(const char *ckpt_path, const char *onnx_path) { return ds_onnx_export_ex(ckpt_path, onnx_path, NULL); }

int ds_onnx_export_ex(const char *ckpt_path, const char *onnx_path, const char *net)
{
    ds_checkpoint *ck = ds_checkpoint_open(ckpt_path);
    if (!ck) return -1;
    const char *text = ds_checkpoint_model_text(ck);
    int gan = text && ds_model_text_is_gan(text);
    ds_gan_model *gm = NULL;
    ds_model *m = NULL, *own = NULL;
    ds_gan_scale scale = {0};
    int which = 0, rc = 0;
    if (gan) {
        which = !net || !strcmp(net, "generator") ? 1 : !strcmp(net, "discriminator") ? 2 : 0;
        if (!which) rc = ds_fail("%s: --net %s: a GAN has a generator and a discriminator", ckpt_path, net);
        else if (!(gm = ds_gan_model_parse(text, ckpt_path)) || gan_scale(ck, ckpt_path, &scale)) rc = -1;
        else m = ds_gan_model_net(gm, which - 1);
    } else if (net) {
        rc = ds_fail("%s: --net %s: only a GAN checkpoint has several networks", ckpt_path, net);
    } else if (!(m = own = ds_model_parse(text, ckpt_path))) {
        rc = -1;
    }
    /* built once (batch 1, nothing compiled) for the shapes some layers need */
    ds_graph *dg = rc ? NULL : ds_graph_new(0);
    ds_node *din[DS_MAX_INPUTS], *dout;
    if (!rc && (!dg || ds_model_build_net(m, dg, 1, din, &dout))) rc = -1;
    Onnx__ModelProto *mp = rc ? NULL : malloc(sizeof *mp);
    Onnx__GraphProto *g = rc ? NULL : malloc(sizeof *g);
    Onnx__OperatorSetIdProto *ops = rc ? NULL : malloc(sizeof *ops);
    if (!rc && (!mp || !g || !ops)) {
        free(mp), free(g), free(ops);
        mp = NULL;
        rc = ds_fail("out of memory");
    }
    if (rc) {
        ds_graph_free(dg);
        ds_model_free(own);
        ds_gan_model_free(gm);
        ds_checkpoint_close(ck);
        return -1;
    }
    onnx__model_proto__init(mp);
    onnx__graph_proto__init(g);
    onnx__operator_set_id_proto__init(ops);
    ex e = {.g = g, .ck = ck, .prefix = which == 1 ? "generator." : which == 2 ? "discriminator." : ""};
    mp->graph = g;
    mp->has_ir_version = 1;
    mp->ir_version = 7; /* the IR of opset 13 */
    ops->has_version = 1;
    ops->version = 13;
    ops->domain = sdup(&e, "");
    push(&e, (void ***)&mp->opset_import, &mp->n_opset_import, ops);
    mp->producer_name = sdup(&e, "deepsky");
    mp->producer_version = sdup(&e, DS_VERSION);
    g->name = sdup(&e, which == 1 ? "deepsky generator" : which == 2 ? "deepsky discriminator" : "deepsky");

    rc = build(&e, mp, m, which, &scale);
    char **names = NULL;
    int n_names = 0;
    if (!rc && !gan && !ds_checkpoint_classes(ck, &names, &n_names) && names) {
        char *js = ds_class_names_json((const char *const *)names, n_names);
        if (js) metadata(&e, mp, "classes", js);
        else e.oom = 1;
        free(js);
        ds_class_names_free(names, n_names);
    }
    if (!rc && gan) {
        char js[256];
        snprintf(js, sizeof js, "{\"transform\":\"%s\",\"softening\":%.9g,\"lo\":%.9g,\"hi\":%.9g}",
                 scale.transform == DS_GAN_ASINH ? "asinh" : "linear", (double)scale.softening, (double)scale.lo,
                 (double)scale.hi);
        metadata(&e, mp, "deepsky.gan", which == 1 ? "generator" : "discriminator");
        metadata(&e, mp, "deepsky.scale", js);
    }
    if (!rc)
        metadata(&e, mp, "normalization",
                 which == 1   ? "none in front; the output 'sample' is 'generated' in data units (the scale inverted)"
                 : which == 2 ? "the GAN's data scale as nodes after the input (to [-1, 1], not clipped)"
                 : e.has_norm ? "Sub(norm.mean) and Div(norm.std) nodes after the input (norm.NAME.* for input NAME)"
                              : "none (the model takes its inputs as they are)");
    if (!rc && e.oom) rc = ds_fail("%s: out of memory building the ONNX model", onnx_path);
    if (!rc) {
        size_t len = onnx__model_proto__get_packed_size(mp);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) rc = ds_fail("%s: out of memory (%zu bytes)", onnx_path, len);
        else {
            onnx__model_proto__pack(mp, buf);
            rc = ds_atomic_write(onnx_path, buf, len);
            free(buf);
        }
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    ds_graph_free(dg);
    ds_model_free(own);
    ds_gan_model_free(gm);
    ds_checkpoint_close(ck);
    return rc;
}
#endif

int ds_onnx_available(void)
{
#ifdef DS_HAVE_ONNX
    return 1;
#else
    return 0;
#endif
}
