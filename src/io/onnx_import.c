/* onnx_import.c — an ONNX model as a deepsky model file and checkpoint
 * (docs/onnx.md): one layer section per ONNX node that has a deepsky layer,
 * the weights from the initializers (raw_data or the typed fields) or
 * Constant nodes; Sub/Div of constants on the input become the checkpoint's
 * normalisation (per input, for several inputs), a last Softmax the softmax
 * head, Cast+Gather an [embedding], deepsky export's [tree] tail (metadata
 * deepsky.tree) the hierarchical head, and a trailing chain of scalar
 * Mul/Add/Sub/Div/Sinh the output transform. Anything else is an error
 * naming the node and its operator. Decoded with protobuf-c over ONNX's own
 * onnx.proto (generated at build time). */
#include "model.h"
#include "../data/data.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef DS_HAVE_ONNX
int ds_onnx_import(const char *onnx_path, const char *out_dir, const char *run_x, const char *run_y)
{
    (void)out_dir, (void)run_x, (void)run_y;
    return ds_fail("%s: this deepsky was built without ONNX support (needs protobuf-c: libprotobuf-c-dev, "
                   "protobuf-c-compiler)", onnx_path);
}
#else
#include "onnx_import.h"

int oi_nfail(im *m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_fail("node '%s' (%s): %s", m->node && m->node->name && *m->node->name ? m->node->name
                   : m->node && m->node->n_output ? m->node->output[0] : "?",
                   m->node ? m->node->op_type : "?", msg);
}

/* Prefix the current error with the file (copied first: ds_fail writes the buffer it reads). */
static int file_fail(const char *path)
{
    char e[1024];
    snprintf(e, sizeof e, "%s", ds_last_error());
    return ds_fail("%s: %s", path, e);
}

val *oi_find(im *m, const char *name)
{
    for (int i = m->nv - 1; i >= 0; i--)
        if (!strcmp(m->v[i].name, name)) return &m->v[i];
    return NULL;
}

/* m->v is allocated once for every value the graph can define (the
 * initializers, inputs and one output per node), so val pointers stay valid. */
val *oi_add_val(im *m, const char *name, int kind)
{
    if (m->nv >= m->cap_v) return NULL;
    val *v = &m->v[m->nv++];
    memset(v, 0, sizeof *v);
    v->name = name, v->kind = kind;
    return v;
}

/* A TensorProto as doubles (float32, float64, int32, int64; raw_data or the typed field). */
static int tensor(const Onnx__TensorProto *t, val *v)
{
    if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ds_fail("tensor '%s': external data is not supported (save with the weights inside)", t->name);
    v->kind = V_CONST;
    v->shape.ndim = (int)t->n_dims;
    if (t->n_dims > DS_MAX_DIMS) return ds_fail("tensor '%s': %zu dims, at most %d", t->name, t->n_dims, DS_MAX_DIMS);
    size_t n = 1;
    for (size_t k = 0; k < t->n_dims; k++) {
        if (t->dims[k] < 0 || t->dims[k] > INT32_MAX) return ds_fail("tensor '%s': bad dim", t->name);
        v->shape.d[k] = (int)t->dims[k], n *= (size_t)t->dims[k];
    }
    v->data = malloc((n ? n : 1) * sizeof *v->data);
    if (!v->data) return ds_fail("tensor '%s': out of memory", t->name);
    int ty = t->data_type;
    size_t es = ty == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || ty == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4
                : ty == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE || ty == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8
                : ty == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? 1 : 0;
    if (!es) return ds_fail("tensor '%s': data type %d (float, double, int32, int64 and bool only)", t->name, ty);
    if (t->has_raw_data && t->raw_data.len) {
        if (t->raw_data.len != n * es)
            return ds_fail("tensor '%s': raw_data has %zu bytes, its shape needs %zu", t->name, t->raw_data.len, n * es);
        const uint8_t *p = t->raw_data.data;
        for (size_t i = 0; i < n; i++, p += es) {
            if (ty == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { float f; memcpy(&f, p, 4); v->data[i] = f; }
            else if (ty == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) { int32_t f; memcpy(&f, p, 4); v->data[i] = f; }
            else if (ty == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) { double f; memcpy(&f, p, 8); v->data[i] = f; }
            else if (ty == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) v->data[i] = *p != 0;
            else { int64_t f; memcpy(&f, p, 8); v->data[i] = (double)f; }
        }
        return 0;
    }
    size_t have = ty == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                  : ty == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || ty == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? t->n_int32_data
                  : ty == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data : t->n_int64_data;
    if (have != n) return ds_fail("tensor '%s': %zu values, its shape needs %zu", t->name, have, n);
    for (size_t i = 0; i < n; i++)
        v->data[i] = ty == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->float_data[i]
                     : ty == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || ty == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? t->int32_data[i]
                     : ty == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->double_data[i] : (double)t->int64_data[i];
    return 0;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}
int64_t oi_attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}
static float attr_f(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}
/* ints attribute into v (at most k), its count; -1 when absent */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *v, int k)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) return -1;
    int c = (int)a->n_ints < k ? (int)a->n_ints : k;
    for (int i = 0; i < c; i++) v[i] = a->ints[i];
    return (int)a->n_ints;
}

int oi_append(im *m, char **buf, const char *fmt, ...)
{
    (void)m;
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    size_t old = *buf ? strlen(*buf) : 0;
    char *b = realloc(*buf, old + (size_t)k + 1);
    if (!b) return ds_fail("out of memory");
    memcpy(b + old, tmp, (size_t)k + 1);
    *buf = b;
    return 0;
}

/* The name from= gives value v (an input or a layer); records which
 * normalisation stage of an input the layers read. */
void oi_ref_name(im *m, val *v, char *out, size_t size)
{
    if (v->kind == V_INPUT) {
        m->in[v->layer].used |= 1 << v->stage;
        snprintf(out, size, "%s", m->sections ? m->in[v->layer].name : "input");
    } else
        snprintf(out, size, "l%d", v->layer);
}

/* Value name as from= writes it. */
int oi_src_name(im *m, const char *onnx_name, char *out, size_t size)
{
    val *v = oi_find(m, onnx_name);
    if (!v) return oi_nfail(m, "input '%s' is not produced by any earlier node", onnx_name);
    if (v->kind == V_CONST) return oi_nfail(m, "input '%s' is a constant where deepsky needs a computed tensor", onnx_name);
    if (v->softmax) return oi_nfail(m, "a Softmax output ('%s') feeds another node: only a last Softmax is supported", onnx_name);
    if (v->ntail) {
        const tailop *t = &m->tail[v->ntail - 1];
        return ds_fail("node '%s' (%s): an elementwise op on a constant is supported only in the chain after the "
                       "last layer (the output transform); node '%s' (%s) reads its output", t->node, t->op_type,
                       m->node->name && *m->node->name ? m->node->name : m->node->output[0], m->node->op_type);
    }
    if (v->index) return oi_nfail(m, "input '%s' is a Cast to an integer: only a Gather (an embedding lookup) may read it", onnx_name);
    if (v->embed3d)
        return oi_nfail(m, "input '%s' is a Gather's [N, 1, D]: deepsky's embedding gives [N, D], so only a Flatten "
                        "(axis=1) or a Reshape to [N, D] may read it", onnx_name);
    if (v->tree) return oi_nfail(m, "input '%s' is part of the [tree] tail", onnx_name);
    oi_ref_name(m, v, out, size);
    return 0;
}

/* A new layer section "[type]" reading from ONNX value `from` (NULL: none
 * written; concat/add write their own); its output is node output 0. */
int oi_new_layer(im *m, const char *type, const char *from)
{
    char **lt = realloc(m->layer_text, (size_t)(m->n_layers + 1) * sizeof *lt);
    int *lu = realloc(m->layer_units, (size_t)(m->n_layers + 1) * sizeof *lu);
    if (lt) m->layer_text = lt;
    if (lu) m->layer_units = lu;
    if (!lt || !lu) return ds_fail("out of memory");
    m->layer_text[m->n_layers] = NULL;
    m->layer_units[m->n_layers] = 0;
    int i = m->n_layers++;
    char src[32];
    if (from && oi_src_name(m, from, src, sizeof src)) return -1;
    if (oi_append(m, &m->layer_text[i], "\n[%s]\nname = l%d\n", type, i)) return -1;
    if (from && oi_append(m, &m->layer_text[i], "from = %s\n", src)) return -1;
    val *o = oi_add_val(m, m->node->output[0], V_LAYER);
    if (!o) return ds_fail("out of memory");
    o->layer = i;
    return 0;
}

/* A weight "l<i>.<role>" of the given shape from doubles. */
int oi_weight(im *m, const char *role, ds_shape s, const double *d, int transpose2d, double scale)
{
    wt *w = realloc(m->w, (size_t)(m->nw + 1) * sizeof *w);
    if (!w) return ds_fail("out of memory");
    m->w = w;
    w = &m->w[m->nw];
    snprintf(w->key, sizeof w->key, "l%d.%s", m->n_layers - 1, role);
    size_t n = ds_shape_numel(s);
    w->data = malloc((n ? n : 1) * sizeof *w->data);
    if (!w->data) return ds_fail("out of memory");
    m->nw++;
    if (transpose2d) { /* s is the transposed (deepsky) shape [out, in]; d is [in, out] */
        int r = s.d[0], c = s.d[1];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) w->data[(size_t)i * c + j] = (float)(d[(size_t)j * r + i] * scale);
    } else
        for (size_t i = 0; i < n; i++) w->data[i] = (float)(d[i] * scale);
    w->shape = s;
    return 0;
}

val *oi_const_in(im *m, size_t k)
{
    if (k >= m->node->n_input || !*m->node->input[k]) return NULL;
    val *v = oi_find(m, m->node->input[k]);
    return v && v->kind == V_CONST ? v : NULL;
}

/* kernel/stride/pad/dilation of a 2-D conv or pool, square and symmetric
 * (deepsky's); -1 naming the attribute otherwise. */
static int window(im *m, int *k, int *s, int *p, int *d, int kdefault)
{
    int64_t ks[8] = {kdefault, kdefault}, st[8] = {1, 1}, pd[8] = {0, 0, 0, 0}, dl[8] = {1, 1};
    int nk = attr_ints(m->node, "kernel_shape", ks, 8);
    if (nk > 0 && nk != 2) return oi_nfail(m, "%d-D kernel_shape: only 2-D is supported", nk);
    attr_ints(m->node, "strides", st, 8);
    int np = attr_ints(m->node, "pads", pd, 8);
    attr_ints(m->node, "dilations", dl, 8);
    if (ks[0] != ks[1]) return oi_nfail(m, "kernel_shape %lldx%lld: deepsky's kernels are square", (long long)ks[0], (long long)ks[1]);
    if (st[0] != st[1]) return oi_nfail(m, "strides %lld,%lld: deepsky's are equal", (long long)st[0], (long long)st[1]);
    if (dl[0] != dl[1]) return oi_nfail(m, "dilations %lld,%lld: deepsky's are equal", (long long)dl[0], (long long)dl[1]);
    const Onnx__AttributeProto *ap = attr(m->node, "auto_pad");
    const char *auto_pad = ap && ap->has_s ? (const char *)ap->s.data : NULL;
    size_t apl = ap && ap->has_s ? ap->s.len : 0;
    if (auto_pad && apl && !(apl == 6 && !memcmp(auto_pad, "NOTSET", 6)) && !(apl == 5 && !memcmp(auto_pad, "VALID", 5))) {
        int tot[2] = {-1, -1};
        if (st[0] != 1 || ks[0] % 2 == 0) { /* SAME_* pads total (ceil(H/s) - 1) s + (k - 1) d + 1 - H: of a graph input's known H, W */
            const val *x = oi_find(m, m->node->input[0]);
            const imin *gi = x && x->kind == V_INPUT && strcmp(m->node->op_type, "ConvTranspose") ? &m->in[x->layer] : NULL;
            for (int a = 0; a < 2 && gi && gi->ndim == 4; a++) {
                int64_t H = gi->dims[2 + a], t = ((H + st[0] - 1) / st[0] - 1) * st[0] + (ks[0] - 1) * dl[0] + 1 - H;
                tot[a] = (int)(t > 0 ? t : 0);
            }
            if (tot[0] < 0 || tot[0] % 2 || tot[0] != tot[1])
                return oi_nfail(m, "auto_pad=%.*s with stride %lld or an even kernel: not supported (unless the pads it gives "
                                   "a graph input are the same on every side)", (int)apl, auto_pad, (long long)st[0]);
        }
        pd[0] = pd[1] = pd[2] = pd[3] = tot[0] >= 0 ? tot[0] / 2 : dl[0] * (ks[0] - 1) / 2; /* symmetric */
    } else if (np > 0 && (np != 4 || pd[0] != pd[1] || pd[0] != pd[2] || pd[0] != pd[3]))
        return oi_nfail(m, "pads %lld,%lld,%lld,%lld: deepsky pads every side alike", (long long)pd[0], (long long)pd[1],
                     (long long)pd[2], (long long)pd[3]);
    *k = (int)ks[0], *s = (int)st[0], *p = (int)pd[0], *d = (int)dl[0];
    return 0;
}

static int imp_conv(im *m, int transposed)
{
    val *W = oi_const_in(m, 1), *B = oi_const_in(m, 2);
    if (!W || W->shape.ndim != 4) return oi_nfail(m, "the weight must be a 4-D constant (an initializer)");
    if (m->node->n_input > 2 && *m->node->input[2] && !B) return oi_nfail(m, "the bias must be a constant");
    int k, s, p, d, g = (int)oi_attr_i(m->node, "group", 1);
    if (window(m, &k, &s, &p, &d, W->shape.d[2])) return -1;
    if (W->shape.d[2] != W->shape.d[3] || W->shape.d[2] != k) return oi_nfail(m, "weight %dx%d kernel: deepsky's are square", W->shape.d[2], W->shape.d[3]);
    if (transposed && attr(m->node, "output_shape")) return oi_nfail(m, "output_shape is not supported (give pads and output_padding)");
    int64_t op[2] = {0, 0};
    attr_ints(m->node, "output_padding", op, 2);
    if (op[0] != op[1]) return oi_nfail(m, "output_padding %lld,%lld: deepsky's are equal", (long long)op[0], (long long)op[1]);
    int filters = transposed ? W->shape.d[1] * g : W->shape.d[0];
    if (oi_new_layer(m, transposed ? "deconv" : "conv", m->node->input[0])) return -1;
    if (oi_append(m, &CUR, "filters = %d\nsize = %d\nstride = %d\npad = %d\ndilation = %d\ngroups = %d\nbias = %d\n", filters,
               k, s, p, d, g, B ? 1 : 0))
        return -1;
    if (transposed && op[0] && oi_append(m, &CUR, "output_padding = %d\n", (int)op[0])) return -1;
    if (oi_weight(m, "weight", W->shape, W->data, 0, 1)) return -1;
    return B ? oi_weight(m, "bias", ds_shape_of(1, filters), B->data, 0, 1) : 0;
}

/* Gemm (transA 0; alpha, beta folded) or MatMul with a constant 2-D B. */
static int imp_dense(im *m, int gemm)
{
    val *Bm = oi_const_in(m, 1), *C = gemm ? oi_const_in(m, 2) : NULL;
    if (!Bm || Bm->shape.ndim != 2) return oi_nfail(m, "B must be a 2-D constant (an initializer)");
    if (gemm && oi_attr_i(m->node, "transA", 0)) return oi_nfail(m, "transA=1 is not supported");
    if (gemm && m->node->n_input > 2 && *m->node->input[2] && !C) return oi_nfail(m, "C must be a constant");
    int tb = gemm && oi_attr_i(m->node, "transB", 0);
    int out = tb ? Bm->shape.d[0] : Bm->shape.d[1], in = tb ? Bm->shape.d[1] : Bm->shape.d[0];
    double alpha = gemm ? attr_f(m->node, "alpha", 1) : 1, beta = gemm ? attr_f(m->node, "beta", 1) : 1;
    if (C && ds_shape_numel(C->shape) != (size_t)out && ds_shape_numel(C->shape) != 1)
        return oi_nfail(m, "C must have %d values (one per output) or 1", out);
    if (oi_new_layer(m, "dense", m->node->input[0])) return -1;
    m->layer_units[m->n_layers - 1] = out;
    if (oi_append(m, &CUR, "units = %d\nbias = %%BIAS%%\n", out)) return -1;
    if (oi_weight(m, "weight", ds_shape_of(2, out, in), Bm->data, !tb, alpha)) return -1;
    m->dense_no_bias_last = -1;
    if (C) {
        memcpy(strstr(CUR, "%BIAS%"), "1\n", 3); /* the section's last line: cut there */
        double *b = malloc((size_t)out * sizeof *b);
        if (!b) return ds_fail("out of memory");
        for (int i = 0; i < out; i++) b[i] = C->data[ds_shape_numel(C->shape) == 1 ? 0 : i];
        int rc = oi_weight(m, "bias", ds_shape_of(1, out), b, 0, beta);
        free(b);
        return rc;
    }
    m->dense_no_bias_last = m->n_layers - 1;
    return 0;
}

static int imp_add(im *m)
{
    if (m->node->n_input != 2) return oi_nfail(m, "Add takes two inputs");
    val *a = oi_find(m, m->node->input[0]), *b = oi_find(m, m->node->input[1]);
    if (!a || !b) return oi_nfail(m, "an input is not produced by an earlier node");
    if (a->kind == V_CONST || b->kind == V_CONST) { /* MatMul + bias, as PyTorch writes nn.Linear on 3-D inputs */
        val *x = a->kind == V_CONST ? b : a, *c = a->kind == V_CONST ? a : b;
        int L = x->kind == V_LAYER ? x->layer : -1;
        if ((L < 0 || L != m->dense_no_bias_last || x->ntail) && ds_shape_numel(c->shape) == 1) return oi_imp_scalar(m, "Add");
        size_t nc = ds_shape_numel(c->shape), units = L >= 0 ? (size_t)m->layer_units[L] : 0;
        if (L < 0 || L != m->dense_no_bias_last || (nc != units && nc != 1))
            return oi_nfail(m, "Add of a constant is supported only as the bias of the MatMul before it, or of a scalar "
                            "in the output transform after the last layer");
        double *bias = malloc(units * sizeof *bias); /* a scalar: the same bias for every output */
        if (!bias) return ds_fail("out of memory");
        for (size_t i = 0; i < units; i++) bias[i] = c->data[nc == 1 ? 0 : i];
        char *t = strstr(m->layer_text[L], "%BIAS%");
        memcpy(t, "1\n", 3);
        int save = m->n_layers;
        m->n_layers = L + 1; /* oi_weight() names l<L> */
        int rc = oi_weight(m, "bias", ds_shape_of(1, m->layer_units[L]), bias, 0, 1);
        free(bias);
        m->n_layers = save;
        m->dense_no_bias_last = -1;
        val *o = oi_add_val(m, m->node->output[0], V_LAYER);
        if (!o) return ds_fail("out of memory");
        o->layer = L;
        return rc;
    }
    char sa[32], sb[32];
    if (oi_src_name(m, m->node->input[0], sa, sizeof sa) || oi_src_name(m, m->node->input[1], sb, sizeof sb)) return -1;
    if (oi_new_layer(m, "add", NULL)) return -1;
    return oi_append(m, &CUR, "from = %s, %s\n", sa, sb);
}

int oi_alias(im *m, const char *from, int softmax)
{
    val *v = oi_find(m, from);
    if (!v) return oi_nfail(m, "input '%s' is not produced by an earlier node", from);
    val copy = *v;
    if (softmax && (copy.ntail || copy.index || copy.tree))
        return oi_nfail(m, "a Softmax of '%s' (an output transform, index or [tree] value): not supported", from);
    val *o = oi_add_val(m, m->node->output[0], copy.kind);
    if (!o) return ds_fail("out of memory");
    o->layer = copy.layer, o->softmax = softmax || copy.softmax;
    o->stage = copy.stage, o->index = copy.index, o->embed3d = copy.embed3d, o->ntail = copy.ntail;
    o->tree = copy.tree, o->tj = copy.tj;
    if (copy.kind == V_CONST) o->shape = copy.shape, o->data = NULL, o->kind = V_INPUT; /* never: refused above */
    return 0;
}

/* Sub(input, mean) / Div(., std) right on an input: its normalisation
 * (a Div alone: mean 0). */
static int imp_norm(im *m, val *x, val *c, int div)
{
    imin *in = &m->in[x->layer];
    int ch = in->ndim >= 2 ? in->dims[1] : 1, base = in->asinh_soft > 0 ? 3 : 0;
    if (!c || (ds_shape_numel(c->shape) != (size_t)ch && ds_shape_numel(c->shape) != 1) || x->stage != in->final_stage ||
        x->stage - base >= (div ? 2 : 1))
        return oi_nfail(m, "only Sub(input, mean) then Div(that, std), constants of one value per channel, are supported "
                        "(the normalisation deepsky export writes)");
    if (!in->norm.channels) {
        in->norm.channels = ch;
        in->norm.mean = calloc((size_t)ch, sizeof(float));
        in->norm.std = malloc((size_t)ch * sizeof(float));
        if (!in->norm.mean || !in->norm.std) return ds_fail("out of memory");
        for (int i = 0; i < ch; i++) in->norm.std[i] = 1;
    }
    for (int i = 0; i < ch; i++) {
        double v = c->data[ds_shape_numel(c->shape) == 1 ? 0 : i];
        if (div && v == 0) return oi_nfail(m, "a std of 0");
        if (div) in->norm.std[i] = (float)v;
        else in->norm.mean[i] = (float)v;
    }
    val *o = oi_add_val(m, m->node->output[0], V_INPUT);
    if (!o) return ds_fail("out of memory");
    o->layer = x->layer, o->stage = in->final_stage = base + (div ? 2 : 1);
    return 0;
}

/* Asinh right after an input's Div by a scalar (no Sub): the input
 * transform asinh(x / s) of a GAN discriminator's asinh scale (deepsky
 * export --net discriminator); its own Sub/Div may follow. */
static int imp_asinh(im *m)
{
    val *x = oi_find(m, m->node->input[0]);
    imin *in = x && x->kind == V_INPUT ? &m->in[x->layer] : NULL;
    int ok = in && in->asinh_soft == 0 && x->stage == 2 && in->final_stage == 2 && in->norm.channels;
    for (int i = 0; ok && i < in->norm.channels; i++)
        ok = in->norm.mean[i] == 0 && in->norm.std[i] == in->norm.std[0] && in->norm.std[0] > 0;
    if (!ok)
        return oi_nfail(m, "operator Asinh has no deepsky layer (only Asinh(Div(input, s)) right on an input, a GAN "
                        "discriminator's asinh scale, is read, as the input transform)");
    in->asinh_soft = in->norm.std[0];
    ds_norm_free(&in->norm);
    in->norm = (ds_norm){0};
    val *o = oi_add_val(m, m->node->output[0], V_INPUT);
    if (!o) return ds_fail("out of memory");
    o->layer = x->layer, o->stage = in->final_stage = 3;
    return 0;
}

static int imp_node(im *m)
{
    const Onnx__NodeProto *n = m->node;
    const char *op = n->op_type;
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) return oi_nfail(m, "operator domain '%s' is not supported", n->domain);
    if (!n->n_output) return oi_nfail(m, "no output");
    if (!strcmp(op, "Constant")) {
        const Onnx__AttributeProto *a = attr(n, "value");
        if (!a || !a->t) return oi_nfail(m, "only a tensor 'value' is supported");
        val *v = oi_add_val(m, n->output[0], V_CONST);
        return v ? tensor(a->t, v) : ds_fail("out of memory");
    }
    if (!n->n_input) return oi_nfail(m, "no input");
    if (m->tree_text && (m->n_slices || !strcmp(op, "Slice"))) return oi_imp_tree_tail(m, op);
    static const struct { const char *op, *act; } acts[] = {{"Relu", "relu"}, {"Sigmoid", "sigmoid"}, {"Tanh", "tanh"},
                                                            {"Softplus", "softplus"}, {"LeakyRelu", "leaky_relu"}, {"Elu", "elu"}};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (!strcmp(op, acts[i].op)) {
            if (oi_new_layer(m, "activation", n->input[0]) || oi_append(m, &CUR, "activation = %s\n", acts[i].act)) return -1;
            if (!strcmp(op, "LeakyRelu")) return oi_append(m, &CUR, "alpha = %.9g\n", attr_f(n, "alpha", 0.01f));
            if (!strcmp(op, "Elu")) return oi_append(m, &CUR, "alpha = %.9g\n", attr_f(n, "alpha", 1.0f));
            return 0;
        }
    if (!strcmp(op, "Conv")) return imp_conv(m, 0);
    if (!strcmp(op, "ConvTranspose")) return imp_conv(m, 1);
    if (!strcmp(op, "Gemm")) return imp_dense(m, 1);
    if (!strcmp(op, "MatMul")) return imp_dense(m, 0);
    if (!strcmp(op, "Add")) return imp_add(m);
    if (!strcmp(op, "Sub") || !strcmp(op, "Div")) {
        val *x = oi_find(m, n->input[0]);
        if (x && x->kind == V_INPUT && n->n_input == 2) return imp_norm(m, x, oi_const_in(m, 1), op[0] == 'D');
        return oi_imp_scalar(m, op);
    }
    if (!strcmp(op, "Mul") || !strcmp(op, "Sinh")) return oi_imp_scalar(m, op);
    if (!strcmp(op, "Asinh")) return imp_asinh(m);
    if (!strcmp(op, "Cast")) return oi_imp_cast(m);
    if (!strcmp(op, "Gather")) return oi_imp_gather(m);
    if (!strcmp(op, "Identity")) return oi_alias(m, n->input[0], 0);
    if (!strcmp(op, "Pad")) { /* PyTorch writes a Pad of zeros before avg_pool2d: the identity */
        val *p = oi_const_in(m, 1);
        if (!p) return oi_nfail(m, "pads must be a constant");
        for (size_t i = 0; i < ds_shape_numel(p->shape); i++)
            if (p->data[i] != 0) return oi_nfail(m, "only a Pad of zeros (the identity) is supported; give the pads to the Conv or pool");
        return oi_alias(m, n->input[0], 0);
    }
    if (!strcmp(op, "Dropout")) {
        if (n->n_output > 1 && *n->output[1]) return oi_nfail(m, "the mask output is not supported");
        if (n->n_input > 2 && *n->input[2]) {
            val *t = oi_find(m, n->input[2]);
            val *r = n->n_input > 1 && *n->input[1] ? oi_find(m, n->input[1]) : NULL;
            int zero_ratio = r && r->kind == V_CONST && ds_shape_numel(r->shape) == 1 && r->data[0] == 0;
            if (!t || t->kind != V_CONST || (ds_shape_numel(t->shape) && t->data[0] != 0 && !zero_ratio))
                return oi_nfail(m, "training_mode must be a constant false (or the ratio a constant 0)");
        }
        return oi_alias(m, n->input[0], 0); /* the identity at inference */
    }
    if (!strcmp(op, "Softmax")) {
        int64_t axis = oi_attr_i(n, "axis", -1);
        if (axis != 1 && axis != -1) return oi_nfail(m, "axis=%lld: only the class axis of [N, K] (1 or -1)", (long long)axis);
        return oi_alias(m, n->input[0], 1);
    }
    if (!strcmp(op, "BatchNormalization")) {
        val *sc = oi_const_in(m, 1), *b = oi_const_in(m, 2), *mu = oi_const_in(m, 3), *var = oi_const_in(m, 4);
        if (!sc || !b || !mu || !var) return oi_nfail(m, "scale, B, mean and var must be constants");
        if (n->n_output > 1 || oi_attr_i(n, "training_mode", 0)) return oi_nfail(m, "training mode is not supported");
        size_t c = ds_shape_numel(sc->shape);
        if (ds_shape_numel(b->shape) != c || ds_shape_numel(mu->shape) != c || ds_shape_numel(var->shape) != c)
            return oi_nfail(m, "scale, B, mean and var must have one value per channel");
        double eps = attr_f(n, "epsilon", 1e-5f);
        double *v2 = malloc(c * sizeof *v2);
        if (!v2) return ds_fail("out of memory");
        for (size_t i = 0; i < c; i++) v2[i] = var->data[i] + eps - 1e-5; /* deepsky's eps is 1e-5: var + eps kept */
        ds_shape s = ds_shape_of(1, (int)c);
        int rc = oi_new_layer(m, "batchnorm", n->input[0]) || oi_weight(m, "weight", s, sc->data, 0, 1) ||
                 oi_weight(m, "bias", s, b->data, 0, 1) || oi_weight(m, "running_mean", s, mu->data, 0, 1) ||
                 oi_weight(m, "running_var", s, v2, 0, 1);
        free(v2);
        return rc ? -1 : 0;
    }
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        int mx = op[0] == 'M', k, s, p, d;
        if (window(m, &k, &s, &p, &d, 1)) return -1;
        if (d != 1) return oi_nfail(m, "dilations are not supported in pooling");
        if (oi_attr_i(n, "ceil_mode", 0)) return oi_nfail(m, "ceil_mode=1 is not supported (deepsky rounds down)");
        if (mx && (n->n_output > 1 && *n->output[1])) return oi_nfail(m, "the Indices output is not supported");
        if (mx && oi_attr_i(n, "storage_order", 0)) return oi_nfail(m, "storage_order=1 is not supported");
        if (!mx && p && !oi_attr_i(n, "count_include_pad", 0))
            return oi_nfail(m, "count_include_pad=0 with padding: deepsky's average pooling counts the zeros");
        if (2 * p > k) return oi_nfail(m, "pad %d over half the window %d", p, k);
        if (oi_new_layer(m, mx ? "maxpool" : "avgpool", n->input[0])) return -1;
        return oi_append(m, &CUR, "size = %d\nstride = %d\npad = %d\n", k, s, p);
    }
    if (!strcmp(op, "InstanceNormalization")) {
        /* deepsky's has no parameters: scale and B, unless 1 and 0, become a
         * depthwise 1x1 convolution after it (the same per-channel affine map) */
        val *sc = oi_const_in(m, 1), *b = oi_const_in(m, 2);
        if (!sc || !b || ds_shape_numel(sc->shape) != ds_shape_numel(b->shape))
            return oi_nfail(m, "scale and B must be constants of one value per channel");
        if (fabs(attr_f(n, "epsilon", 1e-5f) - 1e-5) > 1e-9)
            return oi_nfail(m, "epsilon=%g: deepsky's is 1e-5", attr_f(n, "epsilon", 1e-5f));
        int c = (int)ds_shape_numel(sc->shape), affine = 0;
        for (int i = 0; i < c; i++) affine |= sc->data[i] != 1 || b->data[i] != 0;
        if (oi_new_layer(m, "instancenorm", n->input[0])) return -1;
        if (!affine) return 0;
        val *o = oi_find(m, n->output[0]);
        o->name = "";                    /* the affine layer's output takes the node's name */
        int in_layer = m->n_layers - 1;
        if (oi_new_layer(m, "conv", NULL)) return -1;
        if (oi_append(m, &CUR, "from = l%d\nfilters = %d\nsize = 1\ngroups = %d\nbias = 1\n", in_layer, c, c)) return -1;
        return oi_weight(m, "weight", ds_shape_of(4, c, 1, 1, 1), sc->data, 0, 1) ||
               oi_weight(m, "bias", ds_shape_of(1, c), b->data, 0, 1) ? -1 : 0;
    }
    if (!strcmp(op, "GlobalAveragePool")) return oi_new_layer(m, "global_avgpool", n->input[0]);
    if (!strcmp(op, "Flatten")) {
        val *x = oi_find(m, n->input[0]);
        int64_t axis = oi_attr_i(n, "axis", 1);
        if (axis < 0 && x && x->kind == V_INPUT) axis += m->in[x->layer].ndim; /* the rank is known */
        if (axis != 1) return oi_nfail(m, "axis=%lld: only 1 (keep the batch)", (long long)oi_attr_i(n, "axis", 1));
        if (x && x->embed3d && !x->ntail) return oi_alias_flat(m, n->input[0]); /* deepsky's embedding is [N, D] already */
        return oi_new_layer(m, "flatten", n->input[0]);
    }
    if (!strcmp(op, "Concat")) {
        if (oi_attr_i(n, "axis", 0) != 1) return oi_nfail(m, "axis=%lld: only the channel axis 1", (long long)oi_attr_i(n, "axis", 0));
        char *from = NULL;
        for (size_t k = 0; k < n->n_input; k++) {
            char s[32];
            if (oi_src_name(m, n->input[k], s, sizeof s) || oi_append(m, &from, "%s%s", k ? ", " : "", s)) {
                free(from);
                return -1;
            }
        }
        int rc = oi_new_layer(m, "concat", NULL) || oi_append(m, &CUR, "from = %s\n", from);
        free(from);
        return rc ? -1 : 0;
    }
    if (!strcmp(op, "Reshape")) {
        val *s = oi_const_in(m, 1);
        if (!s || s->shape.ndim != 1 || s->shape.d[0] < 1) return oi_nfail(m, "the shape must be a 1-D constant");
        int nd = s->shape.d[0], batch = m->in[0].dims[0];
        if (oi_attr_i(n, "allowzero", 0)) return oi_nfail(m, "allowzero=1 is not supported");
        if (!(s->data[0] == 0 || s->data[0] == batch || (s->data[0] == -1 && nd == 1)))
            return oi_nfail(m, "the first size must keep the batch (0 or %d)", batch);
        if (nd == 1) return oi_nfail(m, "a reshape to 1-D drops the batch");
        val *x = oi_find(m, n->input[0]);
        if (x && x->embed3d && !x->ntail && nd == 2 && x->kind == V_LAYER &&
            (s->data[1] == -1 || s->data[1] == m->layer_units[x->layer]))
            return oi_alias_flat(m, n->input[0]);
        if (nd == 2 && s->data[1] == -1) return oi_new_layer(m, "flatten", n->input[0]);
        /* a 0 copies the input's size: known where the input is a graph input */
        const imin *gi = x && x->kind == V_INPUT ? &m->in[x->layer] : NULL;
        long long sz[DS_MAX_DIMS + 1], known = 1, per = 1;
        int minus = -1;
        if (nd > DS_MAX_DIMS + 1) return oi_nfail(m, "%d dims: at most %d", nd, DS_MAX_DIMS + 1);
        for (int k = 1; gi && k < gi->ndim; k++) per *= gi->dims[k];
        for (int k = 1; k < nd; k++) {
            sz[k] = (long long)s->data[k];
            if (sz[k] == 0 && gi && k < gi->ndim) sz[k] = gi->dims[k];
            if (sz[k] == 0) return oi_nfail(m, "a 0 (copied) size after the batch is supported only on a graph input");
            if (sz[k] == -1) minus = k;
            else known *= sz[k];
        }
        if (minus > 0 && gi && known > 0 && per % known == 0) sz[minus] = per / known;
        char *shape = NULL;
        for (int k = 1; k < nd; k++)
            if (oi_append(m, &shape, "%s%lld", k > 1 ? "," : "", sz[k])) return -1;
        int rc = oi_new_layer(m, "reshape", n->input[0]) || oi_append(m, &CUR, "shape = %s\n", shape);
        free(shape);
        return rc ? -1 : 0;
    }
    return oi_nfail(m, "operator %s has no deepsky layer (docs/onnx.md lists the supported ones)", op);
}

/* Build the parsed model for `batch`, put the imported weights in, and
 * compile: every parameter and buffer must come from the ONNX file. */
static int build(im *m, ds_model *md, int batch, ds_graph **gout, ds_node **ins, ds_node **out)
{
    ds_graph *g = ds_graph_new(0);
    if (!g || ds_model_build_net(md, g, batch, ins, out) || ds_graph_plan_inference(g)) {
        ds_graph_free(g);
        return -1;
    }
    ds_node_keep(*out);
    if (ds_graph_compile(g)) {
        ds_graph_free(g);
        return -1;
    }
    for (int k = 0; k < m->nw; k++) {
        ds_node *p = ds_graph_find(g, m->w[k].key);
        if (!p || ds_shape_numel(m->w[k].shape) != ds_numel(p)) {
            char a[96], b[96];
            if (!p) ds_fail("the imported weight '%s' has no parameter in the built model", m->w[k].key);
            else ds_fail("'%s': the ONNX weight is %s, deepsky's layer wants %s", p->name,
                         ds_shape_str(m->w[k].shape, a, sizeof a), ds_shape_str(p->shape, b, sizeof b));
            ds_graph_free(g);
            return -1;
        }
        memcpy(p->val, m->w[k].data, ds_numel(p) * sizeof(float));
    }
    for (int i = 0; i < ds_graph_num_params(g); i++) {
        ds_node *p = ds_graph_param(g, i);
        int k = 0;
        while (k < m->nw && strcmp(m->w[k].key, p->name)) k++;
        if (k == m->nw) {
            ds_graph_free(g);
            return ds_fail("the imported model's '%s' has no value in the ONNX file", p->name);
        }
    }
    *gout = g;
    return 0;
}

static void im_free(im *m)
{
    for (int i = 0; i < m->nv; i++) free(m->v[i].data);
    free(m->v);
    for (int i = 0; i < m->nw; i++) free(m->w[i].data);
    free(m->w);
    for (int i = 0; i < m->n_layers; i++) free(m->layer_text[i]);
    free(m->layer_text);
    free(m->layer_units);
    free(m->text);
    free(m->slice_ab);
    for (int k = 0; k < m->n_in; k++) ds_norm_free(&m->in[k].norm);
}

/* Input k's per-sample shape as the model file writes it. */
static int shape_text(im *m, char **t, int k)
{
    int rc = m->in[k].rank3 ? oi_append(m, t, "1,") : 0;
    for (int d = 1; d < m->in[k].ndim && !rc; d++) rc = oi_append(m, t, "%s%d", d > 1 ? "," : "", m->in[k].dims[d]);
    return rc;
}

/* The model text: [input] sections or [net] input=, [net], the [tree]
 * (with_tree), then the layer sections; NULL on failure. */
static char *model_text(im *m, const char *onnx_path, int classes, int with_tree)
{
    char *t = NULL;
    int rc = oi_append(m, &t, "# imported from %s by deepsky import (docs/onnx.md)\n", onnx_path);
    for (int k = 0; k < m->n_in && m->sections && !rc; k++) {
        rc = oi_append(m, &t, "[input]\nname = %s\nshape = ", m->in[k].name) || shape_text(m, &t, k);
        if (!rc && m->in[k].columns) rc = oi_append(m, &t, "\ncolumns = %s", m->in[k].columns);
        if (!rc) rc = oi_append(m, &t, "\nnormalize = %s\n\n", m->in[k].norm.channels ? "standard" : "none");
    }
    if (!rc) rc = oi_append(m, &t, "[net]\n");
    if (!rc && !m->sections) rc = oi_append(m, &t, "input = ") || shape_text(m, &t, 0) || oi_append(m, &t, "\n");
    if (!rc) rc = oi_append(m, &t, "classes = %d\n", classes);
    if (!rc && !m->sections) rc = oi_append(m, &t, "normalize = %s\n", m->in[0].norm.channels ? "standard" : "none");
    if (!rc && with_tree && m->tree_text) rc = oi_append(m, &t, "\n[tree]\n%s\n", m->tree_text);
    for (int i = 0; i < m->n_layers && !rc; i++) {
        char *s = strstr(m->layer_text[i], "%BIAS%");
        if (s) memcpy(s, "0\n", 3); /* a MatMul no Add gave a bias */
        rc = oi_append(m, &t, "%s", m->layer_text[i]);
    }
    if (rc) {
        free(t);
        return NULL;
    }
    return t;
}

static int run_npy(im *m, ds_model *md, const char *run_x, const char *run_y, int softmax)
{
    float *x[DS_MAX_INPUTS] = {0};
    int rows = -1, rc = 0;
    for (int k = 0; k < m->n_in && !rc; k++) {
        int nd, dims[DS_MAX_DIMS];
        char path[4096];
        if ((rc = oi_run_file(m, run_x, k, path, sizeof path)) || (rc = ds_npy_read(path, &x[k], &nd, dims))) break;
        if (m->in[k].nobatch && nd == 1) dims[1] = dims[0], dims[0] = 1, nd = 2; /* one sample */
        if (nd != m->in[k].ndim) rc = ds_fail("%s: %d dims, the ONNX input '%s' has %d", path, nd, m->in[k].onnx_name, m->in[k].ndim);
        for (int d = 1; d < nd && !rc; d++)
            if (dims[d] != m->in[k].dims[d])
                rc = ds_fail("%s: size %d in dim %d, the ONNX input '%s' has %d", path, dims[d], d, m->in[k].onnx_name, m->in[k].dims[d]);
        if (!rc && rows >= 0 && dims[0] != rows) rc = ds_fail("%s: %d samples, the first input's file has %d", path, dims[0], rows);
        rows = dims[0];
    }
    ds_graph *g = NULL;
    ds_node *in[DS_MAX_INPUTS], *out;
    if (!rc) rc = build(m, md, rows, &g, in, &out);
    for (int k = 0; k < m->n_in && !rc; k++) {
        const ds_norm *nm = &m->in[k].norm;
        size_t n = ds_numel(in[k]), per = n / (size_t)rows, plane = nm->channels ? per / (size_t)nm->channels : 1;
        for (size_t i = 0; i < n; i++) {
            int c = nm->channels ? (int)((i % per) / plane) : 0;
            float v = m->in[k].asinh_soft > 0 ? asinhf(x[k][i] / m->in[k].asinh_soft) : x[k][i];
            in[k]->val[i] = nm->channels ? (v - nm->mean[c]) / nm->std[c] : v;
        }
    }
    for (int k = 0; k < m->n_in; k++) free(x[k]);
    if (rc) {
        ds_graph_free(g);
        return -1;
    }
    ds_graph_set_training(g, 0); /* batch norm on its running statistics */
    rc = ds_graph_forward(g);
    int r = out->shape.d[0], c = (int)(ds_numel(out) / (size_t)r);
    if (!rc && softmax) {
        for (int i = 0; i < r; i++) {
            float *v = out->val + (size_t)i * c, mx = v[0];
            double s = 0;
            for (int j = 1; j < c; j++) mx = v[j] > mx ? v[j] : mx;
            for (int j = 0; j < c; j++) s += exp((double)v[j] - mx);
            for (int j = 0; j < c; j++) v[j] = (float)(exp((double)v[j] - mx) / s);
        }
    }
    for (size_t i = 0; i < ds_numel(out) && m->n_tail; i++) out->val[i] = oi_transform(m, out->val[i]);
    const ds_class_tree *t = ds_model_tree(md);
    if (!rc && t) { /* the tail's probabilities */
        float *p = malloc((size_t)r * (size_t)t->classes * sizeof *p);
        rc = p ? ds_hier_probs_rows(t, out->val, r, 0, p) : ds_fail("out of memory");
        if (!rc) rc = ds_npy_write(run_y, ds_shape_of(2, r, t->classes), p);
        free(p);
    } else if (!rc)
        rc = ds_npy_write(run_y, out->shape, out->val);
    ds_graph_free(g);
    return rc;
}

/* After the nodes: the output value, checked against the tails. */
static int output_val(im *m, const Onnx__GraphProto *g, const char *onnx_path, val **out)
{
    const char *oname = g->output[g->n_output - 1]->name;
    val *o = oi_find(m, oname);
    if (o && o->kind == V_INPUT) {
        /* the output is the input (Identity, Dropout, a Softmax of it): one linear [activation] */
        int sm = o->softmax;
        char src[DS_LAYER_NAME_MAX + 8];
        oi_ref_name(m, o, src, sizeof src);
        const Onnx__NodeProto fake = {.name = "output", .op_type = "Identity", .n_output = 1, .output = (char **)&oname};
        m->node = &fake;
        int rc = oi_new_layer(m, "activation", NULL) || oi_append(m, &m->layer_text[m->n_layers - 1], "from = %s\nactivation = linear\n", src);
        m->node = NULL;
        if (rc) return -1;
        o = oi_find(m, oname);
        o->softmax = sm;
    }
    if (m->tree_text) {
        if (!m->n_slices) return ds_fail("%s: metadata deepsky.tree, but no [tree] tail (Slice, LogSoftmax, Concat, MatMul, Exp)", onnx_path);
        if (!o || o->tree != 5)
            return ds_fail("%s: the output '%s' is not the [tree] tail's Exp (the probabilities)", onnx_path, oname);
        o = NULL;
        for (int i = m->nv - 1; i >= 0 && !o; i--) /* the logits the Slices read */
            if (m->v[i].kind == V_LAYER && m->v[i].layer == m->tree_layer && !m->v[i].tree) o = &m->v[i];
    }
    if (!o || o->kind != V_LAYER) return ds_fail("%s: the output '%s' is not computed by a layer", onnx_path, oname);
    if (o->layer != m->n_layers - 1)
        return ds_fail("%s: the output '%s' is layer l%d's, but layers after it (l%d) feed no output", onnx_path, oname, o->layer,
                       m->n_layers - 1);
    if (m->n_tail && o->ntail != m->n_tail) {
        const tailop *t = &m->tail[o->ntail];
        return ds_fail("%s: node '%s' (%s): an elementwise op on a constant is supported only in the chain after the last "
                       "layer, to the output", onnx_path, t->node, t->op_type);
    }
    if (o->index || o->embed3d) return ds_fail("%s: the output '%s' is an index or a Gather's [N, 1, D]", onnx_path, oname);
    for (int k = 0; k < m->n_in; k++)
        if (m->in[k].used & ~(1 << m->in[k].final_stage))
            return ds_fail("%s: input '%s' is read both before and after its normalisation (Sub/Div): deepsky "
                           "normalises an input once", onnx_path, m->in[k].onnx_name);
    *out = o;
    return 0;
}

/* DIR/model.safetensors (the norms and metadata) then DIR/model.cfg. */
static int write_out(im *m, const Onnx__ModelProto *mp, ds_model *md, const char *text, const char *out_dir)
{
    char path[4096], keys[DS_MAX_INPUTS][DS_LAYER_NAME_MAX + 8];
    char *json[DS_MAX_INPUTS + 1] = {0};
    ds_meta_kv extra[2 * DS_MAX_INPUTS + 2];
    int n_extra = 0, n_json = 0, rc = 0, has_classes = 0;
    if (mkdir(out_dir, 0777) && errno != EEXIST) return ds_fail("cannot create %s: %s", out_dir, strerror(errno));
    const char *cl = oi_meta(mp, "classes");
    if (cl) extra[n_extra++] = (ds_meta_kv){"classes", cl}, has_classes = 1;
    for (int k = 1; k < m->n_in && !rc; k++) /* inputs after the first: "norm.NAME", as train writes them */
        if (m->in[k].norm.channels) {
            snprintf(keys[k], sizeof keys[k], "norm.%s", m->in[k].name);
            if (!(json[n_json] = ds_norm_json(&m->in[k].norm))) rc = ds_fail("out of memory");
            else extra[n_extra++] = (ds_meta_kv){keys[k], json[n_json++]};
        }
    if (!rc && m->n_tail) {
        if (!(json[n_json] = oi_transform_json(m))) rc = -1;
        else extra[n_extra++] = (ds_meta_kv){"output_transform", json[n_json++]};
    }
    char it[DS_MAX_INPUTS][DS_LAYER_NAME_MAX + 48], itk[DS_MAX_INPUTS][DS_LAYER_NAME_MAX + 24];
    for (int k = 0; k < m->n_in && !rc; k++)
        if (m->in[k].asinh_soft > 0) { /* applied by --run only: predict refuses such a checkpoint */
            snprintf(itk[k], sizeof itk[k], "input_transform%s%s", k ? "." : "", k ? m->in[k].name : "");
            snprintf(it[k], sizeof it[k], "[[\"div\",%.9g],[\"asinh\"]]", (double)m->in[k].asinh_soft);
            extra[n_extra++] = (ds_meta_kv){itk[k], it[k]};
        }
    ds_graph *cg = NULL;
    ds_node *ins[DS_MAX_INPUTS], *o;
    if (!rc) rc = build(m, md, 1, &cg, ins, &o);
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        rc = ds_checkpoint_save_ex(path, cg, NULL, text, &m->in[0].norm, NULL, extra, n_extra);
        /* a "classes" entry that is not deepsky's vocabulary (a JSON array of distinct names) is left out */
        ds_checkpoint *ck = !rc && has_classes ? ds_checkpoint_open(path) : NULL;
        char **names = NULL;
        int nn = 0;
        if (ck && ds_checkpoint_classes(ck, &names, &nn)) {
            ds_checkpoint_close(ck);
            ck = NULL;
            rc = ds_checkpoint_save_ex(path, cg, NULL, text, &m->in[0].norm, NULL, extra + 1, n_extra - 1);
        }
        ds_class_names_free(names, nn);
        ds_checkpoint_close(ck);
    }
    ds_graph_free(cg);
    for (int k = 0; k < n_json; k++) free(json[k]);
    /* the model file last: a failed checkpoint leaves no model.cfg that looks complete */
    if (!rc && snprintf(path, sizeof path, "%s/model.cfg", out_dir) < (int)sizeof path) rc = ds_atomic_write(path, text, strlen(text));
    return rc;
}

int ds_onnx_import(const char *onnx_path, const char *out_dir, const char *run_x, const char *run_y)
{
    FILE *f = fopen(onnx_path, "rb");
    if (!f) return ds_fail("cannot open %s: %s", onnx_path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                free(buf), fclose(f);
                return ds_fail("%s: out of memory", onnx_path);
            }
            buf = b;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return ds_fail("cannot read %s", onnx_path);
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!mp || !mp->graph) {
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return ds_fail("%s: not an ONNX model (the protobuf does not decode as a ModelProto)", onnx_path);
    }
    Onnx__GraphProto *g = mp->graph;
    im m = {.dense_no_bias_last = -1};
    m.tree_text = oi_meta(mp, "deepsky.tree");
    m.cap_v = (int)(g->n_initializer + g->n_input + g->n_node + 1);
    m.v = calloc((size_t)m.cap_v, sizeof *m.v);
    int rc = m.v ? 0 : ds_fail("%s: out of memory", onnx_path);
    if (!rc && m.tree_text && strpbrk(m.tree_text, "[]"))
        rc = ds_fail("%s: metadata deepsky.tree is not the lines of a [tree] section", onnx_path);
    for (size_t i = 0; i < g->n_initializer && !rc; i++) {
        val *v = oi_add_val(&m, g->initializer[i]->name, V_CONST);
        rc = v ? tensor(g->initializer[i], v) : ds_fail("out of memory");
        if (rc) file_fail(onnx_path);
    }
    if (!rc) rc = oi_read_inputs(&m, mp, onnx_path);
    for (size_t i = 0; i < g->n_node && !rc; i++) {
        m.node = g->node[i];
        if ((rc = imp_node(&m))) file_fail(onnx_path);
    }
    m.node = NULL;
    val *o = NULL;
    /* several outputs: the last ("probabilities" after deepsky export's "logits", "sample" after "generated") */
    if (!rc && !g->n_output) rc = ds_fail("%s: the graph has no output", onnx_path);
    if (!rc) rc = output_val(&m, g, onnx_path, &o);
    if (rc) {
        im_free(&m);
        onnx__model_proto__free_unpacked(mp, NULL);
        return -1;
    }
    int softmax = o->softmax;
    /* the class count is the output's numel per sample (the tree's classes
     * with one): parse and build once with 1 to find it */
    ds_model *md = NULL;
    ds_graph *dg = NULL;
    ds_node *dx[DS_MAX_INPUTS], *dout;
    char *text = model_text(&m, onnx_path, 1, 0);
    rc = text ? 0 : -1;
    if (!rc && !(md = ds_model_parse(text, onnx_path))) rc = -1;
    if (!rc) rc = build(&m, md, 1, &dg, dx, &dout);
    int classes = 1, width = 0;
    if (!rc) {
        classes = width = (int)ds_numel(dout);
        if (softmax && dout->shape.ndim != 2) rc = ds_fail("%s: a last Softmax over a %d-D output: only [N, K]", onnx_path, dout->shape.ndim);
        if (m.tree_text) classes = m.paths->shape.d[1];
    }
    ds_graph_free(dg);
    ds_model_free(md);
    free(text);
    text = NULL, md = NULL;
    if (!rc && !(text = model_text(&m, onnx_path, classes, 1))) rc = -1;
    if (!rc && !(md = ds_model_parse(text, onnx_path))) rc = -1;
    if (!rc && m.tree_text && oi_check_tree(&m, ds_model_tree(md), width)) rc = file_fail(onnx_path);
    if (!rc && out_dir) rc = write_out(&m, mp, md, text, out_dir);
    if (!rc && run_x) rc = run_npy(&m, md, run_x, run_y, softmax);
    ds_model_free(md);
    free(text);
    im_free(&m);
    onnx__model_proto__free_unpacked(mp, NULL);
    return rc;
}
#endif
