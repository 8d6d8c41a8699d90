/* onnx_import.h — what src/io/onnx_import.c and onnx_import_heads.c share
 * (internal; built only with DS_HAVE_ONNX): the decoded values, inputs,
 * the output transform and the importer's state. */
#ifndef DS_ONNX_IMPORT_H
#define DS_ONNX_IMPORT_H
#include "model.h"
#include "onnx.pb-c.h"

enum { V_INPUT, V_LAYER, V_CONST };

/* An ONNX value: the model input, a layer's output or a constant tensor. */
typedef struct val {
    const char *name;   /* the ONNX name (owned by the decoded model) */
    int kind, layer;    /* V_*; layer index for V_LAYER, input index for V_INPUT */
    ds_shape shape;     /* V_CONST: dims; data float (or int64 as doubles) */
    double *data;
    int softmax;        /* a Softmax on this layer's output (the last node only) */
    int stage;          /* V_INPUT: 0 raw, 1 after its Sub, 2 after its Div */
    int index;          /* a Cast to int64 of it: only a Gather reads it */
    int embed3d;        /* a Gather's [N, 1, D]: only a Flatten or Reshape to [N, D] reads it */
    int ntail;          /* the trailing constant ops m->tail[0..ntail) applied to layer */
    int tree, tj;       /* the [tree] tail: 1 Slice j, 2 its LogSoftmax, 3 Concat, 4 MatMul, 5 Exp */
} val;

/* A graph input: its ONNX and model-file names, shape, normalisation. */
typedef struct imin {
    const char *onnx_name;
    char name[DS_LAYER_NAME_MAX];
    int ndim, dims[DS_MAX_DIMS]; /* batch first */
    int rank3;                   /* [N, A, B] read as [N, 1, A, B] */
    int nobatch;                 /* [F] read as [1, F] (elementwise graphs only) */
    ds_norm norm;
    int final_stage, used;       /* the stage its Sub/Div reach; mask of the stages layers read */
    float asinh_soft;            /* > 0: Div(x, s) then Asinh before the Sub/Div (a GAN discriminator's asinh
                                    scale): the input transform asinh(x / s), stages 3.. after it */
    const char *columns;         /* metadata deepsky.columns.NAME */
} imin;

/* One op of the output transform: y = op(x, c). */
typedef struct tailop {
    char op[8];
    double c;
    const char *node, *op_type;
} tailop;
#define MAX_TAIL 16

typedef struct wt {
    char key[DS_LAYER_NAME_MAX + 24];
    ds_shape shape;
    float *data;
} wt;

typedef struct im {
    val *v;
    int nv, cap_v;
    wt *w;
    int nw;
    char *text;
    size_t len, cap;
    int n_layers, dense_no_bias_last; /* index of a MatMul layer still without bias, or -1 */
    char **layer_text; /* per layer: its section, so a later Add can give a MatMul its bias */
    int *layer_units;
    imin in[DS_MAX_INPUTS];
    int n_in, sections;                /* sections: write [input] sections (else [net] input=) */
    tailop tail[MAX_TAIL];
    int n_tail, tail_layer;
    const char *tree_text;             /* metadata deepsky.tree */
    int tree_layer, n_slices, *slice_ab; /* the tail's Slices of layer tree_layer: [a, b) each */
    const val *paths;                  /* the MatMul's constant */
    const char *paths_node;
    const Onnx__NodeProto *node;       /* the one being imported, for messages */
} im;

#define CUR (m->layer_text[m->n_layers - 1]) /* the newest layer's section */

/* onnx_import.c: an error "node 'NAME' (OP): ..." for the current node */
int oi_nfail(im *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the latest value of that name; NULL if none */
val *oi_find(im *m, const char *name);
val *oi_add_val(im *m, const char *name, int kind);
int64_t oi_attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt);
int oi_append(im *m, char **buf, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* from= names: ref_name of any input or layer value, src_name of one a layer may read */
void oi_ref_name(im *m, val *v, char *out, size_t size);
int oi_src_name(im *m, const char *onnx_name, char *out, size_t size);
/* a new layer section reading `from` (NULL: the caller writes from=) */
int oi_new_layer(im *m, const char *type, const char *from);
/* weight "l<newest>.role" */
int oi_weight(im *m, const char *role, ds_shape s, const double *d, int transpose2d, double scale);
/* input k of the current node if it is a constant; else NULL */
val *oi_const_in(im *m, size_t k);
/* the node's output is `from` (softmax: a Softmax of it) */
int oi_alias(im *m, const char *from, int softmax);

/* onnx_import_heads.c: the forms deepsky export writes beyond one input and a softmax */
int oi_alias_flat(im *m, const char *from);
int oi_imp_scalar(im *m, const char *op);
int oi_imp_cast(im *m);
int oi_imp_gather(im *m);
int oi_imp_tree_tail(im *m, const char *op);
int oi_check_tree(im *m, const ds_class_tree *t, int width);
float oi_transform(const im *m, float x);
char *oi_transform_json(im *m);
int oi_run_file(im *m, const char *run_x, int k, char *path, size_t size);
const char *oi_meta(const Onnx__ModelProto *mp, const char *key);
int oi_read_inputs(im *m, const Onnx__ModelProto *mp, const char *onnx_path);
#endif
