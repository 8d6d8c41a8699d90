/* model.h — the parsed model file, shared by the parser (model.c) and the
 * graph builder (model_build.c). Reference: docs/model-file.md. */
#ifndef DS_MODEL_H
#define DS_MODEL_H

#include "internal.h"

/* Layer kinds; the section names (aliases included) map onto these. */
enum {
    L_CONV, L_DECONV, L_DENSE, L_MAXPOOL, L_AVGPOOL, L_GAP, L_BN, L_DROPOUT,
    L_ACT, L_FLATTEN, L_CONCAT, L_ADD, L_RESHAPE, L_RBM, L_INSTNORM, L_EMBED, L_COUNT
};

/* activation= values, in the order of ACT_CHOICES. */
enum { A_LINEAR, A_RELU, A_LEAKY, A_LEAKY_RELU, A_ELU, A_SIGMOID, A_TANH, A_SOFTPLUS };

#define DS_LAYER_NAME_MAX 64

/* One layer section. Which fields apply depends on kind; the parser has
 * filled in every default, so the builder reads them as they are. */
typedef struct ds_layer {
    int kind;
    char name[DS_LAYER_NAME_MAX];
    int line;                 /* of the [section] header */
    int *from, n_from;        /* earlier layer indices; -1 is the input */
    int out;                  /* filters / units */
    int size, stride, pad, same, dilation, groups, out_pad;
    int bias, bn;             /* bias term; batch_normalize (conv/dense + bn) */
    int act;                  /* A_* */
    float alpha;              /* leaky slope or elu alpha */
    int init;                 /* ds_init_kind for the weight */
    float p;                  /* dropout */
    int visible;              /* rbm: ds_rbm_visible of its visible units */
    float rbm_lr;             /* rbm: its own pretraining rate (0: [pretrain] lr) */
    int rbm_epochs;           /* rbm: its own pretraining epochs (0: [pretrain] epochs) */
    ds_shape shape;           /* reshape target without the batch */
    int categories;           /* embedding: the table's rows (0: the categorical input's count) */
    ds_node *node;            /* output in the last ds_model_build */
} ds_layer;

/* An [input] section (or [net] input=, which is the one input "x"). */
typedef struct ds_input_def {
    char name[DS_LAYER_NAME_MAX];
    int line;
    ds_shape shape;           /* per sample */
    int normalize;            /* 1 standard, 0 none */
    char *columns;            /* "a,b,c": the table columns that feed it, in order (NULL: the source's all) */
    char *categories;         /* categorical: "g,r,i", the values of its one column, in index order (NULL: numbers) */
    int n_categories;
} ds_input_def;

/* An [output] section: a head, its loss and what it is compared with. */
typedef struct ds_output_def {
    char name[DS_LAYER_NAME_MAX];
    int line;
    int from;                 /* layer index */
    int loss;                 /* ds_loss_kind */
    float weight;
    char target[DS_LAYER_NAME_MAX]; /* "label" or the name of a data field */
} ds_output_def;

struct ds_model {
    char *text, *file;
    ds_shape input;           /* per sample: [C, H, W] or [F] */
    int classes;
    ds_train_cfg train;
    ds_pretrain_cfg pretrain; /* [pretrain]: the rbm layers' greedy training */
    int normalize;            /* [net] normalize: 1 standard (per channel/feature), 0 none */
    ds_class_tree *tree;      /* [tree], or NULL: the last layer's width is then classes */
    ds_layer *layers;
    int n_layers, max_from;
    ds_input_def inputs[DS_MAX_INPUTS]; /* layers' from = -1 - k is inputs[k] */
    int n_inputs;
    ds_output_def outputs[DS_MAX_HEADS]; /* none: one softmax head on the last layer */
    int n_outputs;
    float *class_weight;      /* [train] class_weight=w0,w1,... */
    ds_param_group *groups;   /* [group] sections in file order (model.c) */
    char **group_strs;        /* their params= and label strings, owned */
    int n_groups;
    unsigned no_decay;        /* [train] no_decay: DS_NO_DECAY_* */
    int no_classes;           /* a GAN's network: [net] needs no classes= (gan_model.c) */
};

/* A model file's text (malloc'd, NUL-terminated; at most 16 MiB, no NUL
 * byte), or NULL with the error set naming the file. */
char *ds_model_read_text(const char *path);
/* ds_model_parse for one network of a GAN file: no_classes 1 lets [net]
 * go without classes= (gan_model.c). */
ds_model *ds_model_parse_part(const char *text, const char *name, int no_classes);
/* The inputs and layers into g (inputs[k] the input nodes, as the model
 * names them), without a head or a width check; the last layer's output
 * node in *out. 0, or -1 with the error set. */
int ds_model_build_net(ds_model *m, ds_graph *g, int batch, ds_node **inputs, ds_node **out);

/* Canonical type name of a layer kind ("conv", "dense", ...). */
const char *ds_layer_kind_name(int kind);

#endif
