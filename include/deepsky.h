/* deepsky.h — the whole public C API of deepsky.
 *
 * A static graph of float32 nodes (row-major, NCHW for images). Build nodes,
 * compile once, then forward/backward as often as you like; compiled graphs
 * never allocate. Functions that can fail return 0 on success and -1 on
 * error (or NULL), and ds_last_error() says what went wrong.
 */
#ifndef DEEPSKY_H
#define DEEPSKY_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_VERSION "0.1.0"
#define DS_MAX_DIMS 6

/* ---- errors ------------------------------------------------------------ */

/* Message for the last failure in this thread ("" if none). */
const char *ds_last_error(void);

/* ---- shapes ------------------------------------------------------------ */

typedef struct ds_shape {
    int ndim;
    int d[DS_MAX_DIMS];
} ds_shape;

/* Shape from ndim sizes, e.g. ds_shape_of(4, n, c, h, w). */
ds_shape ds_shape_of(int ndim, ...);
/* Number of elements: Π d[i]. */
size_t ds_shape_numel(ds_shape s);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated); returns buf. */
char *ds_shape_str(ds_shape s, char *buf, size_t size);

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256** state; the same seed gives the same stream on every machine. */
typedef struct ds_rng {
    uint64_t s[4];
} ds_rng;

void ds_rng_seed(ds_rng *r, uint64_t seed);
uint64_t ds_rng_u64(ds_rng *r);
/* Uniform in [0, 1). */
float ds_rng_uniform(ds_rng *r);
/* Standard normal N(0, 1) (Box–Muller). */
float ds_rng_normal(ds_rng *r);
/* Uniform integer in [0, n). */
uint32_t ds_rng_below(ds_rng *r, uint32_t n);
/* Fisher–Yates shuffle of idx[0..n). */
void ds_rng_shuffle(ds_rng *r, int *idx, int n);

/* ---- small helpers ------------------------------------------------------ */

/* Seconds on the monotonic clock (for timing; its zero is arbitrary). */
double ds_now(void);
/* Index of the largest of v[0..n): the first one on ties; a NaN never wins
 * (a NaN v[0] gives 0); -1 when n < 1. */
int ds_argmax(const float *v, int n);
/* "LO,HI" (two finite numbers, LO < HI) into lo, hi; -1 (nothing set) otherwise. */
int ds_parse_range(const char *s, float *lo, float *hi);

/* ---- graph ------------------------------------------------------------- */

typedef struct ds_graph ds_graph;
struct ds_comm; /* data-parallel training: the communicator (ds_comm_world) */
typedef struct ds_node ds_node;

/* Parameter initialisers. fan_in = d[1]·Π d[2..], fan_out = d[0]·Π d[2..]
 * (PyTorch's convention for linear [out,in] and conv [out,in,kh,kw]). */
typedef enum ds_init_kind {
    DS_INIT_DEFAULT = 0,   /* PyTorch's Linear/Conv default: U(±1/√fan_in) */
    DS_INIT_ZEROS,
    DS_INIT_ONES,
    DS_INIT_CONSTANT,      /* a */
    DS_INIT_UNIFORM,       /* U(a, b) */
    DS_INIT_NORMAL,        /* N(mean a, std b) */
    DS_INIT_XAVIER_UNIFORM,/* U(±√(6/(fan_in+fan_out))) */
    DS_INIT_XAVIER_NORMAL, /* N(0, √(2/(fan_in+fan_out))) */
    DS_INIT_HE_UNIFORM,    /* U(±√(6/fan_in)) */
    DS_INIT_HE_NORMAL      /* N(0, √(2/fan_in)) */
} ds_init_kind;

typedef struct ds_init {
    ds_init_kind kind;
    float a, b;
} ds_init;

/* New empty graph; seed drives parameter init and dropout. */
ds_graph *ds_graph_new(uint64_t seed);
void ds_graph_free(ds_graph *g);

/* Input placeholder; shape includes the batch dimension d[0]. */
ds_node *ds_input(ds_graph *g, const char *name, ds_shape shape);
/* Trainable parameter named e.g. "conv1.weight" (names are checkpoint keys). */
ds_node *ds_param(ds_graph *g, const char *name, ds_shape shape, ds_init init);
/* Non-trainable state saved with the model (e.g. "bn1.running_mean"). */
ds_node *ds_buffer(ds_graph *g, const char *name, ds_shape shape, ds_init init);
/* Ask for d(output)/d(input) on an input node (saliency, adversarial). */
void ds_node_set_requires_grad(ds_node *n, int on);

/* Compile: topological order, shape inference, one arena, parameter init.
 * No nodes may be added afterwards. An arena over ds_memory_limit() is
 * refused, with both numbers, before anything is allocated. */
int ds_graph_compile(ds_graph *g);
/* The bytes compile() would allocate for the arena, computed without
 * allocating it (e.g. `deepsky info`); the arena's size once compiled. */
int ds_graph_plan_bytes(ds_graph *g, size_t *bytes);
/* The machine's physical memory (_SC_PHYS_PAGES × page size), or
 * DS_MEMORY_LIMIT (bytes, suffix K/M/G for 10^3/10^6/10^9) if set. */
size_t ds_memory_limit(void);
/* Before compiling: the graph will only run forward (predict, eval). No
 * gradients are allocated and op values share memory by liveness, so
 * after a forward only the sinks (nodes nothing consumes) and nodes marked
 * with ds_node_keep hold their values. */
int ds_graph_plan_inference(ds_graph *g);
void ds_node_keep(ds_node *n);
/* Run with batch n ≤ the compiled batch (e.g. the last, short batch). */
int ds_graph_set_batch(ds_graph *g, int n);
int ds_graph_batch(const ds_graph *g);
/* Training mode (dropout active, batch norm uses batch statistics). */
void ds_graph_set_training(ds_graph *g, int on);
int ds_graph_training(const ds_graph *g);
/* Forward pass over every node. */
int ds_graph_forward(ds_graph *g);
/* Reverse pass from `out`: seeds d(out) with dout (NULL: ones, for a scalar
 * loss). Non-leaf gradients are reset; parameter and input gradients
 * accumulate until ds_graph_zero_grad, as in PyTorch. */
int ds_graph_backward(ds_graph *g, ds_node *out, const float *dout);
/* Zero the gradients of parameters and inputs. */
void ds_graph_zero_grad(ds_graph *g);
/* After compiling: on 0, backward computes no parameter gradient (they are
 * left as they are), only those of inputs that require one and of the ops
 * between: attribution and adversarial examples at the cost of the input
 * gradient alone. On 1 again, parameters not frozen have gradients. */
int ds_graph_set_param_grads(ds_graph *g, int on);
/* Data-parallel training: batch-norm layers in training mode take their
 * batch statistics over every rank's rows (sums all-reduced over comm, in
 * forward and backward: PyTorch's SyncBatchNorm); comm NULL: off. */
int ds_graph_set_sync_bn(ds_graph *g, struct ds_comm *comm);
/* The rows of the global batch before and after this rank's (data-parallel
 * training; the trainer sets them each step): dropout draws the whole
 * global batch's mask and keeps its rows, so masks match one process. */
void ds_graph_set_shard_rows(ds_graph *g, int before, int after);
/* Switch an input's gradient off and on after compiling (compiled with
 * one: ds_node_set_requires_grad before compile): adversarial training
 * needs ∂L/∂x for the attack but not in the training passes, where it
 * would cost the first layer's input gradient. ds_graph_input_grad: on now. */
int ds_graph_set_input_grad(ds_graph *g, ds_node *x, int on);
int ds_graph_input_grad(const ds_node *x);
/* Before compiling: on 0, compile fuses no relu into its producer, so every
 * layer's output keeps a gradient of its own (Grad-CAM reads the gradient
 * of a conv layer's activation; the deconvnet rule needs it). */
int ds_graph_set_fusion(ds_graph *g, int on);
/* The rule relu's backward applies (for attribution maps): standard
 * dy·[x > 0]; guided backprop dy·[x > 0]·[dy > 0] (Springenberg et al.
 * 2015); deconvnet dy·[dy > 0] (Zeiler & Fergus 2013; needs a graph
 * compiled without fusion). The same graph and weights: nothing copied. */
enum { DS_RELU_BACKWARD_STANDARD, DS_RELU_BACKWARD_GUIDED, DS_RELU_BACKWARD_DECONVNET };
int ds_graph_set_relu_backward(ds_graph *g, int rule);

/* Node lookup and access. Values/gradients are valid after compile. */
ds_node *ds_graph_find(const ds_graph *g, const char *name);
int ds_graph_num_nodes(const ds_graph *g);
ds_node *ds_graph_node(const ds_graph *g, int i);
/* Parameters and buffers in creation order (trainable first is not implied). */
int ds_graph_num_params(const ds_graph *g);
ds_node *ds_graph_param(const ds_graph *g, int i);
/* Bytes of the compiled arena (activations, gradients, parameters, scratch). */
size_t ds_graph_arena_bytes(const ds_graph *g);
/* The graph's RNG (init, dropout); reseed to repeat a run. */
ds_rng *ds_graph_rng(ds_graph *g);

const char *ds_node_name(const ds_node *n);
/* Rename a node (before compile), e.g. to find an output by name. */
int ds_node_set_name(ds_node *n, const char *name);
const char *ds_node_op(const ds_node *n);
ds_shape ds_node_shape(const ds_node *n);
size_t ds_node_numel(const ds_node *n);
float *ds_node_value(ds_node *n);
/* NULL if no gradient flows to this node. */
float *ds_node_grad(ds_node *n);
/* 1 for a trainable parameter, 0 otherwise. */
int ds_node_is_trainable(const ds_node *n);
/* 1 for a parameter or buffer (saved in checkpoints). */
int ds_node_is_state(const ds_node *n);

/* ---- ops (each records a node; the derivative is implemented) ---------- */

/* y = a·b for a [M,K], b [K,N]. */
ds_node *ds_matmul(ds_graph *g, ds_node *a, ds_node *b);
/* y = x·Wᵀ + b; x [N, …] is read as [N, K], W [out, K], b [out] or NULL. */
ds_node *ds_linear(ds_graph *g, ds_node *x, ds_node *w, ds_node *b);
/* Elementwise with NumPy broadcasting (sizes equal or 1, right-aligned). */
ds_node *ds_add(ds_graph *g, ds_node *a, ds_node *b);
ds_node *ds_sub(ds_graph *g, ds_node *a, ds_node *b);
ds_node *ds_mul(ds_graph *g, ds_node *a, ds_node *b);

/* Convolution options; zero fields mean the defaults (stride 1, pad 0,
 * dilation 1, groups 1, output_padding 0). */
typedef struct ds_conv_opt {
    int stride[2], pad[2], dilation[2];
    int groups;
    int output_padding[2]; /* transposed convolution only */
} ds_conv_opt;

/* y = W ⋆ x + b: x [N,C,H,W], W [OC, C/groups, KH, KW], b [OC] or NULL;
 * OH = (H + 2·pad − dil·(KH−1) − 1)/stride + 1. */
ds_node *ds_conv2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt);
/* Transposed convolution (the gradient of conv2d w.r.t. its input):
 * x [N,C,H,W], W [C, OC/groups, KH, KW], b [OC] or NULL;
 * OH = (H−1)·stride − 2·pad + dil·(KH−1) + output_padding + 1. */
ds_node *ds_conv_transpose2d(ds_graph *g, ds_node *x, ds_node *w, ds_node *b, ds_conv_opt opt);

/* Pooling options; stride 0 means stride = kernel. */
typedef struct ds_pool_opt {
    int kernel[2], stride[2], pad[2];
} ds_pool_opt;

/* Max over each window (padding counts as −∞). */
ds_node *ds_maxpool2d(ds_graph *g, ds_node *x, ds_pool_opt opt);
/* Mean over each window, zero padding included in the count (PyTorch's
 * count_include_pad=True). */
ds_node *ds_avgpool2d(ds_graph *g, ds_node *x, ds_pool_opt opt);
/* [N,C,H,W] → [N,C,1,1], the mean over H·W. */
ds_node *ds_global_avgpool(ds_graph *g, ds_node *x);

/* max(0, x) */
ds_node *ds_relu(ds_graph *g, ds_node *x);
/* x if x > 0 else slope·x */
ds_node *ds_leaky_relu(ds_graph *g, ds_node *x, float slope);
/* x if x > 0 else alpha·(eˣ − 1) */
ds_node *ds_elu(ds_graph *g, ds_node *x, float alpha);
/* 1/(1 + e⁻ˣ) */
ds_node *ds_sigmoid(ds_graph *g, ds_node *x);
ds_node *ds_tanh(ds_graph *g, ds_node *x);
/* log(1 + eˣ) (x for x > 20, as PyTorch) */
ds_node *ds_softplus(ds_graph *g, ds_node *x);
/* eˣⁱ/Σⱼ eˣʲ over dim 1 (classes / channels). */
ds_node *ds_softmax(ds_graph *g, ds_node *x);
/* xᵢ − log Σⱼ eˣʲ over dim 1. */
ds_node *ds_log_softmax(ds_graph *g, ds_node *x);
/* Training: zero with probability p, scale the rest by 1/(1−p). Eval: id. */
ds_node *ds_dropout(ds_graph *g, ds_node *x, float p);
/* Batch normalisation over dim 1 of [N,C] or [N,C,H,W]:
 * y = γ·(x − μ)/√(σ² + eps) + β. Training uses batch statistics and updates
 * running = (1 − momentum)·running + momentum·batch (unbiased variance);
 * eval uses the running statistics. */
ds_node *ds_batchnorm(ds_graph *g, ds_node *x, ds_node *gamma, ds_node *beta,
                      ds_node *running_mean, ds_node *running_var,
                      float momentum, float eps);
/* Concatenate n nodes along dim 1 (channels). */
ds_node *ds_concat(ds_graph *g, int n, ds_node **xs);
/* Reshape; a size of 0 copies that dimension of x, −1 is inferred. */
ds_node *ds_reshape(ds_graph *g, ds_node *x, ds_shape shape);
/* [N, …] → [N, Π …] */
ds_node *ds_flatten(ds_graph *g, ds_node *x);

/* Losses (scalar, mean over the batch). */
/* −Σ wᵧ log softmax(z)ᵧ / Σ wᵧ; labels [N] hold class indices as floats;
 * class_weights: C floats (copied) or NULL for all ones. */
ds_node *ds_softmax_cross_entropy(ds_graph *g, ds_node *logits, ds_node *labels,
                                  const float *class_weights);
/* mean(max(z,0) − z·t + log(1 + e^−|z|)) */
ds_node *ds_bce_with_logits(ds_graph *g, ds_node *logits, ds_node *targets);
/* mean((p − t)²) */
ds_node *ds_mse(ds_graph *g, ds_node *pred, ds_node *target);

/* ---- layers (parameters named "<name>.weight" etc.) -------------------- */

/* Linear layer: creates <name>.weight [out, K] and <name>.bias [out]. */
ds_node *ds_nn_dense(ds_graph *g, const char *name, ds_node *x, int out,
                     ds_init winit, int bias);
/* Conv layer: <name>.weight [out, C/groups, k, k], <name>.bias [out]. */
ds_node *ds_nn_conv2d(ds_graph *g, const char *name, ds_node *x, int out, int k,
                      ds_conv_opt opt, ds_init winit, int bias);
/* Transposed conv layer: <name>.weight [C, out/groups, k, k], <name>.bias. */
ds_node *ds_nn_conv_transpose2d(ds_graph *g, const char *name, ds_node *x, int out,
                                int k, ds_conv_opt opt, ds_init winit, int bias);
/* Batch norm layer: <name>.weight (γ=1), <name>.bias (β=0),
 * <name>.running_mean, <name>.running_var; momentum 0.1, eps 1e-5. */
ds_node *ds_nn_batchnorm(ds_graph *g, const char *name, ds_node *x);
/* y [N, dim] = table[idx[n]]: idx [N] or [N, 1] holds category indices (as
 * floats; one outside 0..categories−1 is an error naming the sample); the
 * table is "<name>.weight" [categories, dim], N(0, 1) (PyTorch's
 * nn.Embedding). ds_embedding is the op on a given table. */
ds_node *ds_nn_embedding(ds_graph *g, const char *name, ds_node *idx, int categories, int dim);
ds_node *ds_embedding(ds_graph *g, ds_node *idx, ds_node *table);
/* Instance norm: each sample's channel planes to mean 0, variance 1
 * (x − μ)/√(σ² + eps), no parameters (PyTorch InstanceNorm2d(affine=False)). */
ds_node *ds_instancenorm(ds_graph *g, ds_node *x, float eps);

/* ---- optimizers -------------------------------------------------------- */

typedef enum ds_optim_kind { DS_SGD = 0, DS_ADAM, DS_ADAMW, DS_RMSPROP } ds_optim_kind;

typedef enum ds_sched_kind {
    DS_SCHED_CONSTANT = 0,
    DS_SCHED_STEP,   /* lr·gamma^⌊t/step_size⌋ */
    DS_SCHED_COSINE  /* eta_min + (lr − eta_min)(1 + cos(π·t/t_max))/2 */
} ds_sched_kind;

/* Learning-rate schedule over optimizer steps t = 0, 1, …; an optional
 * linear warm-up scales the rate from warmup_start·lr to lr over the first
 * warmup_steps steps (t counts from the end of the warm-up afterwards). */
typedef struct ds_schedule {
    ds_sched_kind kind;
    int step_size;
    float gamma;
    int t_max;
    float eta_min;
    int warmup_steps;
    float warmup_start;
} ds_schedule;

/* Zero fields take PyTorch's defaults: beta1 0.9, beta2 0.999, eps 1e-8,
 * alpha 0.99 (RMSprop). weight_decay is L2 added to the gradient for SGD,
 * Adam and RMSprop, and decoupled (W −= lr·wd·W) for AdamW.
 * clip_norm > 0 scales all gradients so their global L2 norm ≤ clip_norm. */
typedef struct ds_optim_cfg {
    ds_optim_kind kind;
    float lr, momentum, weight_decay;
    int nesterov;
    float beta1, beta2, eps, alpha;
    float clip_norm;
    ds_schedule schedule;
} ds_optim_cfg;

typedef struct ds_optim ds_optim;

/* Optimizer over the graph's trainable parameters (state allocated here). */
ds_optim *ds_optim_new(ds_graph *g, const ds_optim_cfg *cfg);
void ds_optim_free(ds_optim *o);
/* One update from the current gradients; fails on a non-finite gradient. */
int ds_optim_step(ds_optim *o);
/* Learning rate the next step will use. */
float ds_optim_lr(const ds_optim *o);
/* Steps taken so far. */
long ds_optim_steps(const ds_optim *o);
/* Learning rate of a schedule at step t for base rate lr. */
float ds_schedule_lr(const ds_schedule *s, float lr, long t);
/* A schedule counted in epochs (in_epochs) into optimizer steps: step_size
 * and t_max ×batches_per_epoch; a cosine t_max of 0 becomes the rest of the
 * run after warm-up, epochs·batches_per_epoch − warmup_steps (at least 1). */
void ds_schedule_to_steps(ds_schedule *s, int in_epochs, int batches_per_epoch, int epochs);
/* Global L2 norm of the trainable gradients. */
float ds_grad_norm(const ds_graph *g);

/* Parameter groups (PyTorch's param_groups; docs/design.md). A pattern list
 * "a, b*, *.bias" selects parameters: a pattern without '.' matches a
 * parameter's layer (its name up to the first '.'), one with '.' its whole
 * name or a prefix ending before a '.'; '*', '?' and [..] glob (fnmatch).
 * Parameters no group selects form the default group, which has the
 * optimizer's own settings. `set` says which of lr, weight_decay and
 * schedule replace the optimizer's (a group without DS_PG_SCHED follows the
 * optimizer's schedule from its own lr). A frozen group is never updated
 * and its gradients are switched off in the graph (ds_graph_freeze). */
#define DS_PG_LR 1u
#define DS_PG_WD 2u
#define DS_PG_SCHED 4u
typedef struct ds_param_group {
    const char *params;     /* comma-separated patterns */
    unsigned set;           /* DS_PG_* */
    float lr, weight_decay;
    ds_schedule schedule;
    int schedule_in_epochs; /* for ds_schedule_to_steps before ds_optim_new_groups */
    int frozen;
    const char *name;       /* in messages, e.g. "m.cfg:12: [group]"; NULL: "ds_param_group[k]" */
} ds_param_group;
/* no_decay: weight decay 0, whatever the group, for biases (names ending
 * ".bias") and normalisation parameters (γ, β of batch-norm nodes). */
#define DS_NO_DECAY_BIAS 1u
#define DS_NO_DECAY_NORM 2u
/* Optimizer with groups[0..n_groups) and the default group (index n_groups).
 * A pattern that matches nothing, or a parameter two groups select, is an
 * error naming the group(s), pattern(s) and parameter. ds_optim_new(g, c)
 * is ds_optim_new_groups(g, c, NULL, 0, 0). */
ds_optim *ds_optim_new_groups(ds_graph *g, const ds_optim_cfg *cfg, const ds_param_group *groups,
                              int n_groups, unsigned no_decay);
/* How groups would split g's trainable parameters, before compile too
 * (deepsky info): counts[k] parameters and values[k] elements in group k,
 * k = n_groups the default group (either array may be NULL); the errors of
 * ds_optim_new_groups. */
int ds_param_groups_count(const ds_graph *g, const ds_param_group *groups, int n_groups, unsigned no_decay,
                          int *counts, long *values);
/* Groups, the default group (the last) included. */
int ds_optim_num_groups(const ds_optim *o);
/* Learning rate group k's next step uses (0 for a frozen group). */
float ds_optim_group_lr(const ds_optim *o, int k);
/* A trainable parameter's group index, -1 if it is not one of the graph's. */
int ds_optim_param_group(const ds_optim *o, const ds_node *param);
/* Its weight decay as applied (0 under no_decay or when frozen). */
float ds_optim_param_weight_decay(const ds_optim *o, const ds_node *param);
/* After (or before) compile: a trainable parameter stops (frozen 1) or
 * resumes (0) receiving gradients, as PyTorch's requires_grad_(False): its
 * gradient reads NULL and backward skips the work only it needed. One
 * frozen before compile has no gradient buffer and cannot resume. */
int ds_graph_freeze(ds_graph *g, ds_node *param, int frozen);

/* ---- data -------------------------------------------------------------- */

/* In-memory dataset: n samples of `sample` shape (without batch), float x,
 * labels y (class indices as floats). */
typedef struct ds_dataset {
    int n;
    ds_shape sample;
    int classes;
    float *x;
    float *y;
    char **class_names; /* NULL, or `classes` names (folder datasets, CSV) */
    /* tables with a header: the names of the sample's F features (NULL: unnamed) */
    char **feature_names;
    /* further per-sample arrays, row i paired with sample i: the other
     * inputs of a several-input model (a stamp's metadata) and regression
     * targets, in the program's feed order after the first (ds_data_bind) */
    int n_fields;
    struct ds_field *fields;
} ds_dataset;

/* One further array of a dataset: n rows of `sample` shape. */
typedef struct ds_field {
    char *name;
    ds_shape sample;
    float *x;
} ds_field;

/* Read an IDX file (plain or gzip) of unsigned bytes; *data gets a malloc'd
 * buffer of Π dims bytes, dims[0..*ndim) the sizes. */
int ds_idx_read(const char *path, uint8_t **data, int *ndim, int dims[DS_MAX_DIMS]);
/* Images (IDX3, scaled to [0,1], shape [1,H,W]) with labels (IDX1). */
int ds_idx_load(const char *images, const char *labels, ds_dataset *out);
/* Fashion-MNIST from dir (NULL: /usr/share/datasets/fashion-mnist or
 * $DS_FASHION_MNIST); train=1 for the 60k training set, 0 for the 10k test. */
int ds_fashion_mnist_load(const char *dir, int train, ds_dataset *out);
void ds_dataset_free(ds_dataset *d);

/* Mini-batch iterator over a dataset: shuffled each epoch when shuffle=1.
 * A background thread gathers the next batch while the caller computes, so
 * the dataset must outlive the loader and may change only before a reset
 * (which also drops a batch already gathered). */
typedef struct ds_loader ds_loader;
ds_loader *ds_loader_new(const ds_dataset *d, int batch, int shuffle, uint64_t seed);
void ds_loader_free(ds_loader *l);
/* Start an epoch (reshuffles). */
void ds_loader_reset(ds_loader *l);
/* Copy the next batch into x [b, sample] and y [b]; returns b (0 at the
 * end of the epoch; -1 with the error set when a streamed sharded set
 * cannot be read: a loop `while ((b = next()) > 0)` must check b < 0). */
int ds_loader_next(ds_loader *l, float *x, float *y);
/* The same for a dataset with fields: dst[0] gets x [b, sample], dst[1+k]
 * field k [b, fields[k].sample] (NULL: skipped); augmentation changes only x. */
int ds_loader_next_fields(ds_loader *l, float *const *dst, float *y);
/* Draw each epoch's samples with replacement, class c with probability
 * ∝ 1/count(c), so that every class is seen equally often on average
 * (PyTorch's WeightedRandomSampler with balanced weights). */
int ds_loader_set_balanced(ds_loader *l, int on);
int ds_loader_batches(const ds_loader *l);
/* Data augmentation against over-learning, for image samples [C, H, W]:
 * each epoch every sample gets a random flip (DS_AUG_FLIP: left-right,
 * up-down) or, with DS_AUG_ROT90 too, one of the 8 symmetries of the
 * square; drawn from the loader's generator after the order. */
enum { DS_AUG_NONE = 0, DS_AUG_FLIP = 1, DS_AUG_ROT90 = 2 };
int ds_loader_set_augment(ds_loader *l, int flags);
/* The loader's generator (save/restore it to resume an epoch order). */
ds_rng *ds_loader_rng(ds_loader *l);

/* Data-parallel sharding (docs/scaling.md): l hands out only rank's share
 * of every global batch — rows [floor(r*b/size), floor((r+1)*b/size)) of
 * each global batch of b samples, b = the loader's batch (the epoch's last
 * may be smaller) — in the one global order the seed gives every rank, so
 * N ranks at global batch B see exactly the batches of one process at B.
 * size 1: the whole batch (the default). Restarts the current epoch in the
 * order already drawn, without drawing from the generator (so size 1 stays
 * bit-identical to a loader never sharded); rank outside 0..size-1 or
 * size < 1: -1. */
int ds_loader_set_shard(ds_loader *l, int rank, int size);
/* 1 while the epoch has global batches left (with shards, a rank's share of
 * a small last batch may be 0 samples: loop on this, not on next() > 0). */
int ds_loader_more(const ds_loader *l);
/* The most rows of a (global) batch: the batch size, or the data's size when smaller. */
int ds_loader_batch_size(const ds_loader *l);
/* The global size of the batch whose share the last next() handed out. */
int ds_loader_last_global(const ds_loader *l);
/* Seconds the caller spent waiting in next() for data since the last reset
 * (the input pipeline's stall time of the epoch). */
double ds_loader_wait_seconds(const ds_loader *l);

/* ---- data larger than memory: sharded data sets (src/data/shards.c) ---
 * A folder of shards with an index (DIR/index.json: sample shape, classes,
 * class names, per-channel statistics, and per shard its x and y files and
 * sample count). Shards are NPY (float32, uint8, int16, float64...) or
 * FITS cubes; they are read by chunks (pread), never whole, so memory is
 * bounded by the prefetch window, not the data set. docs/data.md. */
struct ds_norm;
typedef struct ds_shards ds_shards;
/* Open DIR (holding index.json), the index file itself, or either as the
 * data spec shards:PATH; checks every
 * shard's header against the index (missing or truncated shard: an error
 * naming the file). */
ds_shards *ds_shards_open(const char *path);
void ds_shards_close(ds_shards *s);
/* 1 when path is a sharded data set (a folder with index.json, or one;
 * with or without the spec's "shards:"): the test for --data to stream. */
int ds_shards_is(const char *path);
/* Total samples. */
int64_t ds_shards_samples(const ds_shards *s);
/* The data set's description as a dataset without rows: n (capped at
 * INT_MAX), sample, classes, class_names (owned by *meta: ds_dataset_free). */
int ds_shards_describe(const ds_shards *s, ds_dataset *meta);
/* Per-channel mean and std (as ds_norm_compute): the index's, written by
 * the writer, else one streaming pass over the data. */
int ds_shards_norm(ds_shards *s, struct ds_norm *out);
/* count[c] = samples of class c (classes entries), from the index. */
int ds_shards_class_counts(const ds_shards *s, int64_t *count);
/* How a loader streams shards: shards in a random order per epoch, then
 * the samples shuffled within a window of `window` consecutive samples;
 * `prefetch` batches read ahead by `threads` loader threads, each sample
 * normalised by norm (NULL: as stored) and augmented there. */
typedef struct ds_stream_cfg {
    int window;          /* samples per shuffle window (0: 65536) */
    int prefetch;        /* batches read ahead (0: 4) */
    int threads;         /* loader threads (0: 1) */
    const struct ds_norm *norm; /* applied on the loader threads (NULL: none) */
} ds_stream_cfg;
/* A loader over a sharded data set, with the ds_loader API (reset, next,
 * next_fields, batches, set_augment, set_shard, wait_seconds, rng); the
 * order is a function of the seed and the epoch alone. s must outlive it. */
ds_loader *ds_loader_new_shards(ds_shards *s, int batch, uint64_t seed, const ds_stream_cfg *cfg);
/* Writing a sharded data set in pieces of shard_size samples: NPY float32
 * x and y per shard, the index (with the statistics) written last and
 * atomically, so a killed writer leaves no index. */
typedef struct ds_shard_writer ds_shard_writer;
ds_shard_writer *ds_shard_writer_open(const char *dir, ds_shape sample, int classes,
                                      const char *const *class_names, int shard_size);
int ds_shard_writer_add(ds_shard_writer *w, const float *x, const float *y, int n);
/* Record that the samples are simulator stamps 0..n-1 of (seed, size): the
 * index's "sim", from which provenance knows them (ds_provenance_of). */
int ds_shard_writer_set_sim(ds_shard_writer *w, uint64_t seed, int size);
/* Finish (last shard, index); returns 0, and frees w either way. */
int ds_shard_writer_close(ds_shard_writer *w);
/* Drop w without writing an index (the shards written stay, unindexed). */
void ds_shard_writer_abort(ds_shard_writer *w);

/* ---- metrics ------------------------------------------------------------ */

/* Classification metrics from probabilities [n, classes] and labels [n]. */
#define DS_CALIB_BINS 10
typedef struct ds_metrics {
    int n, classes;
    double accuracy, log_loss;
    double auc;        /* ROC AUC of class 1 for two classes, else NaN */
    /* two classes (class 1 the positive: real): the false-positive rate at
     * the thresholds that first reach 95 % and 99 % true-positive rate, and
     * the missed-detection rate 1 − TPR at the lowest threshold keeping the
     * false-positive rate ≤ 1 % (the PTF figure of merit); NaN otherwise */
    double fpr_at_tpr95, fpr_at_tpr99, mdr_at_fpr1;
    double macro_f1;
    /* reliability diagram: DS_CALIB_BINS equal bins of the score; for two
     * classes the score is p(class 1) and `observed` the share of class 1 in
     * the bin; for more, the score is the top-1 probability and `observed`
     * the accuracy. NaN in an empty bin. ece: the expected calibration
     * error Σ count/n · |observed − mean score|. */
    int calib_count[DS_CALIB_BINS];
    double calib_score[DS_CALIB_BINS], calib_observed[DS_CALIB_BINS], ece;
    double *precision, *recall, *f1; /* [classes] */
    int *support;      /* [classes] true count */
    int *confusion;    /* [true·classes + predicted] */
} ds_metrics;
/* Fails (naming the sample and class) on a NaN or ±Inf probability: every
 * metric is then a number and the ROC walks end. */
int ds_metrics_compute(const float *probs, const float *labels, int n, int classes, ds_metrics *m);
void ds_metrics_free(ds_metrics *m);
/* probs[i] = softmax(logits[i]) for rows i of [rows, classes]; a non-finite
 * logit fails with "sample first+i: the model's output for class k is NaN". */
int ds_softmax_rows(const float *logits, int rows, int classes, int first, float *probs);

/* Load the data a spec names (docs/cli.md lists them):
 *   fashion-mnist[:train|:test]      Debian's dataset-fashion-mnist
 *   idx:IMAGES,LABELS                 IDX(.gz) pair
 *   npy:X.npy[,Y.npy]                 float32/float64/uint8 arrays, X [n, …]
 *   csv:FILE[,label=NAME|INDEX|none][,header=auto|yes|no][,skip=N]
 *                                     numeric columns + a label column (.csv.gz too)
 *   folder:DIR  (or a directory)      one sub-folder of PNG/JPEG per class
 *   fits:FILE|DIR[,labels=FILE]       FITS images or cubes (NaN pixels → 0)
 * Errors name the file (and line or sample) and the problem. */
int ds_data_load(const char *spec, ds_dataset *out);
/* The same, with FITS planes grouped into samples of `channels` channels
 * (what a model's input asks for) unless the spec gives channels=; other
 * formats ignore it. */
int ds_data_load_channels(const char *spec, int channels, ds_dataset *out);
/* Fail naming the first sample and element that is NaN or ±Inf. */
int ds_dataset_check_finite(const ds_dataset *d, const char *what);
/* Renumber d's labels through a class vocabulary names[0..n) (a model's
 * classes in index order, e.g. ds_checkpoint_classes): string-labelled data
 * (class_names set) by name, an unknown name being an error naming `what`
 * and the sample; numeric labels are indices into names and must be < n.
 * d then carries a copy of names (classes = n). No-op without names
 * (n 0: numeric labels, old checkpoints) or without labels (classes 0). */
int ds_dataset_map_classes(ds_dataset *d, const char *const *names, int n, const char *what);
/* d's labels by name as a labels CSV (header "class", one name a row;
 * written atomically): npy:X.npy,PATH reads them back with the names. */
int ds_labels_write_csv(const char *path, const ds_dataset *d);
/* Split off the last `frac` of a seeded permutation as validation; the two
 * outputs own copies of the data. */
int ds_dataset_split(const ds_dataset *d, float frac, uint64_t seed, ds_dataset *train,
                     ds_dataset *val);
/* A FITS header keyword: type 'i' (integer value), 'f' (real value) or
 * 's' (text); name up to 8 characters. */
typedef struct ds_fits_key {
    const char *name;
    char type;
    double value;
    const char *text, *comment;
} ds_fits_key;
/* Write a float32 FITS image of naxis 2–4 axes, dims slowest first ([h, w],
 * [n, h, w] or [n, c, h, w]), with header keywords, atomically;
 * `fits:PATH[,labels=Y][,channels=C]` reads it back. */
int ds_fits_write(const char *path, int naxis, const int *dims, const float *x, const ds_fits_key *keys, int nkeys);
/* Whether a file name ends in .fits, .fit, .fts or .fz, or one of the first three plus .gz. */
int ds_is_fits_name(const char *name);
/* Write an NPY (float32) array of the given shape. */
int ds_npy_write(const char *path, ds_shape shape, const float *data);
/* A whole NPY array (float32/float64/uint8/int…) as malloc'd floats, its dims batch first. */
int ds_npy_read(const char *path, float **data, int *ndim, int dims[DS_MAX_DIMS]);
/* An NPY file's bytes in memory, read as npy:X.npy reads the file (X [n, …],
 * labels zeros); name is the body's name in messages (deepsky serve). */
int ds_npy_load_mem(const void *buf, size_t size, const char *name, ds_dataset *out);
/* A PNG or JPEG file's bytes in memory: one sample [C, H, W] in [0, 1], as a
 * .png file reads. */
int ds_image_load_mem(const void *buf, size_t size, const char *name, ds_dataset *out);

/* Normalisation x' = (x − mean[c]) / std[c]: per channel (dim 0) for image
 * samples [C, H, W], per feature for table samples [F]. */
typedef struct ds_norm {
    int channels;
    float *mean, *std;
} ds_norm;
/* Statistics of d: mean and population std; a constant channel or feature
 * (variance zero up to round-off) gets std 1, as scikit-learn's scaler. */
int ds_norm_compute(const ds_dataset *d, ds_norm *out);
/* Apply in place, computed in double: fails (d unchanged) naming the sample and element
 * when a value leaves float range (one 3e38 pixel over a std below 1), or
 * when nm's channels are not the data's; a nm of 0 channels changes nothing. */
int ds_norm_apply(const ds_norm *nm, ds_dataset *d);
void ds_norm_free(ds_norm *nm);

/* ---- model files (.cfg; reference in docs/model-file.md) -------------- */

typedef struct ds_model ds_model;

/* [pretrain]: how `deepsky pretrain` trains the model's [rbm] layers, one
 * after the other, each on the previous one's hidden probabilities. */
typedef struct ds_pretrain_cfg {
    int epochs, batch, k, persistent;
    float lr, momentum, weight_decay, sparsity_target, sparsity_cost;
    uint64_t seed;
} ds_pretrain_cfg;

/* The [train] section. */
typedef enum ds_attack_method { DS_ATTACK_FGSM, DS_ATTACK_PGD } ds_attack_method;
/* An attack on the first input within a ball of radius eps around x, in
 * the input's own units (Goodfellow et al. 2015; Madry et al. 2018). */
typedef struct ds_attack_cfg {
    int method;       /* DS_ATTACK_FGSM or DS_ATTACK_PGD */
    int l2;           /* 0: the L∞ ball; 1: the L2 ball (per sample) */
    float eps;        /* radius, >= 0 */
    int steps;        /* PGD iterations */
    float step_size;  /* PGD step; 0: 2.5·eps/steps (Madry et al.) */
    int random_start; /* PGD: start at a uniform point of the ball */
    int restarts;     /* PGD tries (0 or 1: one); a row keeps the first that fools the model */
    int clip;         /* keep adversarial inputs in [lo, hi] (the data's valid range) */
    float lo, hi;
} ds_attack_cfg;

typedef struct ds_train_cfg {
    ds_optim_cfg optim;
    int batch, epochs;
    uint64_t seed;
    /* per-epoch schedules are converted to steps by the trainer */
    int schedule_in_epochs;
    int augment; /* DS_AUG_* flags ([train] augment=none|flip|dihedral) */
    /* class_weight: auto (n/(classes·count), scikit-learn's "balanced") or
     * a list of n_class_weight weights; NULL/0 none */
    int class_weight_auto, n_class_weight;
    const float *class_weight;
    int balanced;  /* sampler=balanced: ds_loader_set_balanced */
    int sync_bn;   /* data-parallel: batch-norm statistics over every rank (ds_graph_set_sync_bn) */
    int ordered_allreduce; /* allreduce=ordered: rank-ordered gradient sums (ds_comm_set_ordered) */
    int micro_batches; /* micro_batches=N: each batch in N micro-batches, gradients summed (ds_trainer_cfg) */
    int monitor;   /* DS_MONITOR_*: what chooses best and drives early stopping */
    int patience;  /* epochs without a better monitor before stopping; 0 never */
    /* adversarial= fgsm|pgd: adversarial training (ds_adv_trainer): the
     * attack (eps, steps, step_size, l2, random_start; clip from
     * adversarial_clip=LO,HI), the clean loss's weight alpha, and whether
     * the clipping range is the data's own (adversarial_clip=auto, the
     * command's choice: [0, 1] for images read as [0, 1]) */
    int adversarial;
    ds_attack_cfg adv;
    float adv_alpha;
    int adv_clip_auto;
} ds_train_cfg;
enum { DS_MONITOR_VAL_ACC = 0, DS_MONITOR_VAL_LOSS, DS_MONITOR_VAL_AUC, DS_MONITOR_VAL_MDR };

/* Parse a model file; errors read "FILE:LINE: [section] key: problem". */
ds_model *ds_model_load(const char *path);
/* Parse text; `name` stands for the file in error messages. */
ds_model *ds_model_parse(const char *text, const char *name);
void ds_model_free(ds_model *m);
/* The text it was parsed from (stored in checkpoints). */
const char *ds_model_text(const ds_model *m);
/* The file name it was parsed under (for messages). */
const char *ds_model_file(const ds_model *m);
/* Per-sample input shape from [net]: [C, H, W] or [F]. */
ds_shape ds_model_input_shape(const ds_model *m);
int ds_model_classes(const ds_model *m);
/* The model's inputs ([input] sections, or [net] input= as the one input
 * "x"): name, per-sample shape, the table columns that feed it ("a,b,c";
 * NULL: all of its source's) and whether it is standardised. */
int ds_model_num_inputs(const ds_model *m);
const char *ds_model_input_name(const ds_model *m, int k);
ds_shape ds_model_input_shape_k(const ds_model *m, int k);
const char *ds_model_input_columns(const ds_model *m, int k);
int ds_model_input_normalize(const ds_model *m, int k);
/* A categorical input's categories ("g,r,i": the values of its one column,
 * index 0 first); NULL for a numeric input. */
const char *ds_model_input_categories(const ds_model *m, int k);
/* The [output] heads (0 without: one softmax head on the last layer) and
 * what head h compares with ("label" or a data field's name). */
int ds_model_num_outputs(const ds_model *m);
const char *ds_model_output_target(const ds_model *m, int h);
const ds_train_cfg *ds_model_train_cfg(const ds_model *m);
const ds_pretrain_cfg *ds_model_pretrain_cfg(const ds_model *m);
/* [net] normalize: 1 standard (the training data's mean and std), 0 none
 * (values as they are: Bernoulli RBM inputs must stay in [0, 1]). */
int ds_model_normalize(const ds_model *m);
/* Layer i's visible units (ds_rbm_visible) if it is an [rbm], else -1. */
int ds_model_layer_rbm_visible(const ds_model *m, int i);
/* [pretrain] with the [rbm] layer i's own lr= and epochs= applied; -1 if
 * layer i is not an [rbm]. */
int ds_model_layer_pretrain_cfg(const ds_model *m, int i, ds_pretrain_cfg *out);
/* Record the network for batch size `batch`: creates input "x" and returns
 * the logits [batch, classes] ([batch, n_logits] with a [tree]). Parameters are named "<layer>.weight" etc.
 * Shape errors name FILE:LINE and the layer. */
ds_node *ds_model_build(ds_model *m, ds_graph *g, int batch, ds_node **x);
/* The [group] sections in file order (owned by m), as ds_optim_new_groups
 * takes them; names are "FILE:LINE: [group]". Schedules are in their
 * schedule_unit: convert a copy with ds_schedule_to_steps first. */
int ds_model_param_groups(const ds_model *m, const ds_param_group **groups);
/* [train] no_decay: DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM. */
unsigned ds_model_no_decay(const ds_model *m);
/* Layers in file order, after build: name, type and output node. */
int ds_model_num_layers(const ds_model *m);
const char *ds_model_layer_name(const ds_model *m, int i);
const char *ds_model_layer_type(const ds_model *m, int i);
ds_node *ds_model_layer_output(const ds_model *m, int i);
/* Multiply-adds ×2 for one sample through this node's op (0 for leaves). */
double ds_node_flops(const ds_node *n);

/* ---- hierarchical classification (src/io/tree.c, src/ops/hier.c,
 * src/nn/hier.c; docs/model-file.md [tree], docs/design.md) ------------- */

/* A class tree: each internal node asks one question, a softmax over its
 * children (classes or other nodes); the leaves are the classes
 * 0..classes−1, each exactly once. Ids: 0..classes−1 are the classes,
 * classes + k is internal node k. Node k's conditional softmax reads
 * logits first[k] .. first[k] + n_children[k] − 1, nodes in file order. */
typedef struct ds_class_tree {
    int classes;      /* leaves */
    int n_nodes;      /* internal nodes (questions), in file order */
    int n_logits;     /* Σ n_children: the width the logits need */
    int root;         /* the internal node no node lists */
    int depth;        /* levels: the deepest class's depth (the root's children have depth 1) */
    char **names;     /* [n_nodes] node names */
    int *first;       /* [n_nodes] node k's first logit */
    int *n_children;  /* [n_nodes] ≥ 2 */
    int *children;    /* [n_logits] the id logit j selects */
    int *parent;      /* [classes + n_nodes] the internal node above id; −1 for the root */
    int *logit;       /* [classes + n_nodes] the logit that selects id at its parent; −1 for the root */
    int *level;       /* [classes + n_nodes] depth of id (root 0) */
} ds_class_tree;

/* The [tree] section of a model-file text (other sections are ignored):
 * keys are node names (a letter or _, then letters, digits, _), values the
 * children, class indices 0..classes−1 or node names. Errors read
 * "NAME:LINE: [tree] node: problem". */
ds_class_tree *ds_class_tree_parse(const char *text, int classes, const char *name);
void ds_class_tree_free(ds_class_tree *t);
/* "root 5, top 3, shirt_like 2, footwear 3": each node's logits, file order. */
void ds_class_tree_logits_str(const ds_class_tree *t, char *buf, size_t size);
/* The model file's [tree]; NULL without one (a flat softmax over classes). */
const ds_class_tree *ds_model_tree(const ds_model *m);
/* Width of the model's output: classes, or with a [tree] its n_logits. */
int ds_model_outputs(const ds_model *m);
/* The loss the model file implies for its outputs: softmax cross-entropy
 * over the classes, or with a [tree] ds_hier_softmax_cross_entropy. */
ds_node *ds_model_loss(const ds_model *m, ds_graph *g, ds_node *logits, ds_node *labels,
                       const float *class_weights);
/* Class probabilities [rows, classes] from the model's outputs [rows,
 * ds_model_outputs]: a softmax (ds_softmax_rows), or the tree's products
 * (ds_hier_probs_rows); errors name sample first+i. */
int ds_model_probs(const ds_model *m, const float *outputs, int rows, int first, float *probs);

/* Σᵢ wᵧᵢ·Σ_{k on yᵢ's path} −log softmax(z_i[block k])[child towards yᵢ] / Σᵢ wᵧᵢ:
 * the conditional softmaxes of every node on the true class's path, trained
 * jointly (hierarchical softmax). logits [N, n_logits], labels [N] class
 * indices as floats, class_weights: classes floats (copied) or NULL. The
 * tree is copied, so it may be freed after the call. */
ds_node *ds_hier_softmax_cross_entropy(ds_graph *g, ds_node *logits, ds_node *labels,
                                       const ds_class_tree *tree, const float *class_weights);
/* One sample's logits [n_logits] → class_probs [classes]: P(c) = the product
 * of the conditionals on c's path (they sum to 1); node_probs (NULL or
 * [n_nodes]): P(reaching node k). Fails on a non-finite logit. */
int ds_hier_probs(const ds_class_tree *t, const float *logits, float *class_probs, float *node_probs);
/* ds_hier_probs for rows [rows, n_logits] → [rows, classes]; errors name
 * sample first+i, as ds_softmax_rows. */
int ds_hier_probs_rows(const ds_class_tree *t, const float *logits, int rows, int first, float *class_probs);
/* The greedy path of questions from the root: at each node its most probable
 * child and that child's conditional probability, ending at a class, e.g.
 * "top? 0.97 > shirt_like? 0.88 > Shirt 0.71" (class_names NULL: indices).
 * Its class can differ from argmax P(c). Fails on a non-finite logit. */
int ds_hier_path_text(const ds_class_tree *t, const float *logits, const char *const *class_names, char *buf,
                      size_t size);

/* Per-level metrics of class predictions (argmax of class probabilities,
 * from a hierarchical or a flat model) against a tree. Level l = 1..depth:
 * each class read as its ancestor at depth l (a class shallower than l as
 * itself); the groups of level l are those ancestors. */
typedef struct ds_hier_metrics {
    int n, levels;         /* samples; the tree's depth */
    int *groups;           /* [levels] groups at level l (index l − 1) */
    double *accuracy;      /* [levels] true and predicted group agree */
    double *macro_f1;      /* [levels] F1 averaged over the level's groups */
    int leaf_errors;       /* predicted class ≠ true class */
    int errors_in_parent;  /* of those, the predicted class has the true class's parent */
    double in_parent_share;/* errors_in_parent / leaf_errors (NaN with no error) */
    /* per internal node k, the samples whose true and predicted classes both
     * descend from k: node_confusion[k][a·m + b] counts truth under child a,
     * prediction under child b (m = n_children[k], children in file order) */
    int **node_confusion;
} ds_hier_metrics;
/* probs [n, classes], labels [n]; fails on a non-finite probability or a
 * label that is not a class, naming the sample. */
int ds_hier_metrics_compute(const ds_class_tree *t, const float *probs, const float *labels, int n,
                            ds_hier_metrics *out);
void ds_hier_metrics_free(ds_hier_metrics *m);
/* For people, one line each: every level ("level 1, 5 groups (Trouser,
 * Dress, Bag, top, footwear): accuracy 0.9512, macro F1 0.9400"), every
 * question ("question 'top': the same answer for 0.9120 of 2950 samples
 * that reach it on both paths") and "mistakes inside their parent: 412 of
 * 903 (45.6 %)"; class_names NULL: indices. Truncated to size, NUL-terminated. */
int ds_hier_metrics_text(const ds_class_tree *t, const ds_hier_metrics *m, const char *const *class_names,
                         char *buf, size_t size);

/* ---- checkpoints (safetensors) ---------------------------------------- */

/* What a checkpoint holds besides the weights. */
typedef struct ds_train_state {
    int epoch;           /* epochs completed */
    long step;           /* optimizer steps taken */
    int batch_in_epoch;  /* batches done in the current epoch (0 at a boundary) */
    ds_rng loader_rng;   /* the training loader's generator at that point */
    ds_rng graph_rng;    /* the graph's generator (dropout) */
    double best_metric;  /* best validation accuracy so far */
    /* the run's effective settings, so that a resume repeats them */
    int batch, epochs;
    uint64_t seed;
    float lr, val_split;
} ds_train_state;

/* Save parameters and buffers (keys = node names), optimizer moments (keys
 * "optim.<k>.<name>"), and metadata: "model" (model-file text), "norm",
 * "state". Written atomically: PATH.tmp, fsync, rename. o may be NULL. */
int ds_checkpoint_save(const char *path, ds_graph *g, const ds_optim *o, const char *model_text,
                       const ds_norm *norm, const ds_train_state *st);

/* One more metadata string (a key that is not "format", "model", "norm",
 * "state" or "optim_kind"; e.g. "classes", "data"). */
typedef struct ds_meta_kv {
    const char *key, *value;
} ds_meta_kv;
/* ds_checkpoint_save with n_extra more metadata strings. */
int ds_checkpoint_save_ex(const char *path, ds_graph *g, const ds_optim *o, const char *model_text,
                          const ds_norm *norm, const ds_train_state *st, const ds_meta_kv *extra,
                          int n_extra);

/* Which epoch best.safetensors holds and on what data it was chosen
 * (checkpoint metadata "best", src/io/best.c): split "validation" — the
 * highest validation accuracy, `value`; or "none" — no validation data, so
 * best is the last epoch and `value` its training accuracy (chosen on
 * nothing; docs/design.md). */
typedef struct ds_best {
    char split[16];
    int epoch;
    double value;
    char metric[16]; /* accuracy (""), log_loss, auc or mdr_at_fpr1 ([train] monitor) */
} ds_best;
/* {"split": "...", "epoch": E, "metric": "accuracy", "value": V} into buf. */
int ds_best_json(const ds_best *b, char *buf, size_t size);
int ds_best_parse(const char *json, ds_best *out);
/* One line for people: "epoch 7, validation accuracy 0.9812" or "the last
 * epoch (7; no validation data, training accuracy 0.9700)". */
void ds_best_describe(const ds_best *b, char *buf, size_t size);

/* Several graphs in one checkpoint (a GAN's two networks): part q's
 * tensors are keyed "<prefix>.<name>", its optimizer's "optim.<k>.<prefix>.<name>",
 * with metadata "optim_kind.<prefix>" and "optim_steps.<prefix>". */
typedef struct ds_ckpt_part {
    const char *prefix;   /* required with two or more parts; NULL: plain names */
    ds_graph *g;
    const ds_optim *o;    /* NULL: no optimizer state */
} ds_ckpt_part;
int ds_checkpoint_save_parts(const char *path, const ds_ckpt_part *parts, int n_parts, const char *model_text,
                             const ds_norm *norm, const ds_train_state *st, const ds_meta_kv *extra, int n_extra);

typedef struct ds_checkpoint ds_checkpoint;
/* Read and validate a checkpoint file (header, offsets, sizes). */
ds_checkpoint *ds_checkpoint_open(const char *path);
void ds_checkpoint_close(ds_checkpoint *c);
/* Metadata: the model text (NUL-terminated), normalisation, train state. */
const char *ds_checkpoint_model_text(const ds_checkpoint *c);
int ds_checkpoint_norm(const ds_checkpoint *c, ds_norm *out);
int ds_checkpoint_state(const ds_checkpoint *c, ds_train_state *out);
/* The normalisation stored under metadata `key` ("norm" is the first
 * input's, "norm.NAME" another input's); channels 0 when absent. */
int ds_checkpoint_norm_key(const ds_checkpoint *c, const char *key, ds_norm *out);
/* nm as the JSON those keys hold (malloc'd). */
char *ds_norm_json(const ds_norm *nm);
/* A metadata string by key (NUL-terminated, owned by c); NULL if absent. */
const char *ds_checkpoint_meta(const ds_checkpoint *c, const char *key);
/* The class vocabulary (metadata "classes", a JSON array of distinct
 * non-empty strings): *names malloc'd (free with ds_class_names_free), *n.
 * Absent: *names NULL, *n 0, returns 0 (numeric labels, old checkpoints). */
int ds_checkpoint_classes(const ds_checkpoint *c, char ***names, int *n);
/* names[0..n) as a JSON array, malloc'd: the "classes" value for
 * ds_checkpoint_save_ex. */
char *ds_class_names_json(const char *const *names, int n);
void ds_class_names_free(char **names, int n);
/* Copy every parameter and buffer of g (and o's moments if o) from the
 * checkpoint; a missing key or a shape mismatch is an error naming both. */
int ds_checkpoint_restore(const ds_checkpoint *c, ds_graph *g, ds_optim *o);
/* The same for the part saved under prefix (NULL: plain names); o's step
 * count from "optim_steps.<prefix>". */
int ds_checkpoint_restore_part(const ds_checkpoint *c, const char *prefix, ds_graph *g, ds_optim *o);
/* Number of tensors and their names/shapes/data (for tools and tests). */
int ds_checkpoint_num_tensors(const ds_checkpoint *c);
const char *ds_checkpoint_tensor(const ds_checkpoint *c, int i, ds_shape *shape, const float **data);

/* Optimizer state for checkpoints: buffers per parameter element, and the
 * k-th buffer of trainable parameter i (in ds_graph_param order, skipping
 * buffers). */
int ds_optim_num_state(const ds_optim *o);
float *ds_optim_state(ds_optim *o, int param, int k);
void ds_optim_set_steps(ds_optim *o, long steps);

/* ---- simulated survey stamps (src/data/sim.c; docs/simulator.md) ------ */

typedef enum {
    DS_SIM_REAL = 0,      /* a trailed point source: an asteroid */
    DS_SIM_COSMIC_RAY, DS_SIM_HOT_PIXEL, DS_SIM_BAD_COLUMN, DS_SIM_DIPOLE, DS_SIM_SATURATED,
    DS_SIM_SPIKES, DS_SIM_SATELLITE, DS_SIM_GHOST, DS_SIM_KINDS
} ds_sim_kind;

typedef struct ds_sim_cfg {
    int n, size;         /* stamps; pixels per side */
    int channels;        /* 1: difference image; 3: science, reference, difference */
    float real_fraction; /* the course's balance: 1,681 of 21,753 = 0.0773 */
    uint64_t seed;
    int noiseless;       /* tests: the expected counts, without noise */
} ds_sim_cfg;

/* The alert metadata of one stamp, as a survey pipeline records it beside
 * the cutouts (meta.csv's columns, named as the ZTF alert fields;
 * docs/simulator.md defines each): measured on the stamp's difference image,
 * or looked up with scatter from what the simulator drew. −1: no such value
 * (nr_match / ss_match say which). */
typedef struct ds_sim_alert {
    char band; /* 'g', 'r' or 'i' */
    float xpos, ypos, mindtoedge, airmass, seeing, sky, diffmaglim;
    int isdiffpos;
    float snr, magpsf, sigmapsf, magap, magdiff, fwhm, fwhm_ratio, aimage, bimage, elong;
    int nneg, nbad;
    float sumrat;
    int nr_match;
    float distnr, magnr, sgscore1, sharpnr, chinr;
    int ss_match;
    float ssdistnr, ssmagnr, ss_rate;
    int ncovhist, ndethist;
} ds_sim_alert;

/* What went into one stamp (labels.csv's columns) and its alert metadata. */
typedef struct ds_sim_meta {
    int label;           /* 1 real, 0 bogus */
    int kind;            /* ds_sim_kind */
    float snr, length, angle, fwhm, sky, read_noise, flux;
    float noise;         /* the difference image's noise σ per pixel on the sky, √(σ_sci² + σ_ref²) */
    ds_sim_alert alert;  /* meta.csv's row; drawn from a stream of its own, so the stamp is unchanged by it */
} ds_sim_meta;

/* simulate's default --seed: not a seed a default run trains or tests on
 * (demo: --seed 1 for training and validation, seed + 1000003 for the test
 * stamps), so simulated stamps are held out from the demo's checkpoint. */
#define DS_SIM_DEFAULT_SEED 4242
const char *ds_sim_kind_name(int kind);
/* Stamp `index` of the set cfg describes (its own random stream: the same
 * whatever n is): out [channels × size × size] in electrons, sky-subtracted. */
int ds_sim_stamp(const ds_sim_cfg *cfg, long index, float *out, ds_sim_meta *meta);
/* cfg->n stamps as a dataset (labels 0 bogus, 1 real, named so); *meta (if meta)
 * gets a malloc'd array of n records. */
int ds_sim_dataset(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta);
/* meta.csv's columns after `index`: how many; column c's name (as meta.csv's
 * header), its FITS keyword (cutout headers) and its type ('i', 'f' or 's'). */
int ds_sim_alert_columns(void);
const char *ds_sim_alert_column(int c, const char **fits_key, char *type);
/* Column c of a as meta.csv writes it (into buf), and as a number (band: its
 * letter's position in "gri"). */
int ds_sim_alert_format(const ds_sim_alert *a, int c, char *buf, size_t size);
double ds_sim_alert_value(const ds_sim_alert *a, int c);
/* Write path (atomically): a header `index,<columns>` and one row per record,
 * meta[i] with index first + i. */
int ds_sim_alert_write_csv(const char *path, const ds_sim_meta *meta, int n, long first);
/* Progress of a long job: `done` of `total` units (called from the thread
 * that started the job). */
typedef void (*ds_progress_fn)(void *arg, long done, long total);
/* ds_sim_dataset, the same stamps, made in chunks of 2048 with fn(arg,
 * done, n) after each (fn NULL: ds_sim_dataset). */
int ds_sim_dataset_progress(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta, ds_progress_fn fn,
                            void *arg);
/* cfg->n stamps as a sharded data set in dir (ds_shard_writer, shard_size
 * stamps a shard), made and written a chunk at a time: memory is one shard.
 * Stamp i is ds_sim_stamp(cfg, i): the stamps of ds_sim_dataset, in order. */
int ds_sim_shards(const ds_sim_cfg *cfg, const char *dir, int shard_size, ds_progress_fn fn, void *arg);
/* Rendering, in electrons added to img [size × size] (pixel centres at
 * k + 0.5): a PSF of FWHM fwhm (beta ≤ 0: Gaussian, else Moffat β)
 * integrated over pixels; and that PSF swept along a segment (a trail). */
void ds_sim_psf(float *img, int size, double cx, double cy, double fwhm, double beta, double flux);
void ds_sim_trail(float *img, int size, double cx, double cy, double len, double angle, double fwhm, double beta,
                  double flux, double grad);
/* The footprint of stamp `index` (src/data/sim_footprint.c): mask [size ×
 * size] 1 where its source is (the trail; a bogus stamp's artefact), 0
 * elsewhere: |noiseless difference| ≥ the stamp's noise σ (meta->noise), or
 * ≥ half the peak where no pixel reaches σ. meta (may be NULL): the stamp's. */
int ds_sim_footprint(const ds_sim_cfg *cfg, long index, float *mask, ds_sim_meta *meta);
/* The footprints of stamps 0..cfg->n−1: mask [n × size × size]. */
int ds_sim_footprints(const ds_sim_cfg *cfg, float *mask);

/* ---- data provenance (src/data/provenance.c; docs/design.md) ---------- */

/* 64-bit FNV-1a: h = (h ^ byte) · 0x100000001b3 over p[0..n), from h
 * (DS_FNV1A64_INIT to start). */
#define DS_FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t ds_fnv1a64(const void *p, size_t n, uint64_t h);
/* ds_fnv1a64 of a whole file's bytes. */
int ds_file_hash(const char *path, uint64_t *out);

/* Where samples came from: simulator stamps [first, end) of `deepsky
 * simulate --seed seed --size size`, and files by content hash. */
typedef struct ds_sim_range {
    uint64_t seed;
    int size;
    long first, end;
} ds_sim_range;
typedef struct ds_data_file {
    char *path;
    uint64_t hash;  /* ds_file_hash */
    long samples;   /* samples it holds */
} ds_data_file;
typedef struct ds_provenance {
    int n_sim, n_files;
    ds_sim_range *sim;  /* sorted by (seed, size, first), disjoint */
    ds_data_file *files;
} ds_provenance;
/* The provenance of the n samples a data spec loads (for `channels` as in
 * ds_data_load_channels): simulator seed and stamp indices from FITS
 * SIMSEED/SIMINDEX (cutouts) or SIMSEED/NSTAMPS (cubes) headers, or from the
 * provenance.json beside a file whose hash it lists; every file that is not
 * a simulated cutout is hashed. index (if not NULL) gets a malloc'd array of
 * n simulator indices in the loader's sample order (-1: not simulated). */
int ds_provenance_of(const char *spec, int channels, int n, ds_provenance *out, long **index);
/* Add b's records to a (ranges merged). */
int ds_provenance_merge(ds_provenance *a, const ds_provenance *b);
/* How many of data's samples are in trained (same seed and size with
 * overlapping stamps, or a file of the same hash; the larger count); a
 * short description of the overlap into why. */
long ds_provenance_overlap(const ds_provenance *trained, const ds_provenance *data, char *why, size_t size);
/* As JSON {"sim":[{"seed","size","first","end"}…],"files":[{"path","fnv1a64","samples"}…]}
 * (malloc'd), and back. */
char *ds_provenance_json(const ds_provenance *p);
int ds_provenance_parse(const char *json, ds_provenance *out);
void ds_provenance_free(ds_provenance *p);
/* Before `simulate --out DIR`: a missing or empty DIR is fine; a DIR with
 * anything in it is refused unless force, which removes only what simulate
 * writes there (x.npy, y.npy, y.csv, labels.csv, meta.csv, provenance.json, the three cubes,
 * cutouts/{real,bogus}/<digits>.fits and their folders once empty); *removed
 * (if not NULL) counts the files removed. */
int ds_sim_out_prepare(const char *dir, int force, int *removed);
/* Record in DIR/provenance.json (written atomically; other entries kept)
 * that DIR/file holds `samples` stamps [first, first + samples) of seed and
 * size; the file's hash is stored so that a changed file is not taken for it. */
int ds_provenance_sidecar_add(const char *dir, const char *file, uint64_t seed, int size, int channels,
                              long first, long samples);

/* Hand-made features of a difference-image stamp [size × size] (intensity
 * and morphology in units of its own noise; src/data/features.c) — the
 * course's "traditional flow" into a random forest. */
#define DS_STAMP_FEATURES 16
int ds_stamp_features(const float *stamp, int size, float *out);
const char *ds_stamp_feature_name(int i);

/* ---- random forest (src/nn/forest.c) ----------------------------------- */

typedef struct ds_forest_cfg {
    int trees;          /* 0: 100 */
    int max_depth;      /* 0: 30 */
    int min_leaf;       /* 0: 1 */
    int max_features;   /* features tried per split; 0: √F */
    uint64_t seed;
} ds_forest_cfg;
typedef struct ds_forest ds_forest;
/* CART trees on bootstrap samples, Gini splits; x [n × features], y class indices. */
ds_forest *ds_forest_train(const float *x, const float *y, int n, int features, int classes, const ds_forest_cfg *cfg);
/* probs [n × classes]: the trees' mean leaf frequencies. */
void ds_forest_predict(const ds_forest *f, const float *x, int n, float *probs);
void ds_forest_free(ds_forest *f);

/* ---- restricted Boltzmann machines (src/nn/rbm.c) -------------------- */

typedef enum { DS_RBM_BERNOULLI = 0, DS_RBM_GAUSSIAN = 1 } ds_rbm_visible;

typedef struct ds_rbm_cfg {
    int visible, hidden;
    ds_rbm_visible visible_type; /* Gaussian: unit variance (standardise the data) */
    int k;                       /* Gibbs steps of CD-k (0: 1) */
    int persistent;              /* 1: persistent CD (chains kept across updates) */
    float lr, momentum, weight_decay;
    float sparsity_target, sparsity_cost; /* cost 0: no sparsity term */
    uint64_t seed;
} ds_rbm_cfg;

typedef struct ds_rbm ds_rbm;
/* W ~ N(0, 0.01²), biases 0; batches of at most max_batch rows. */
ds_rbm *ds_rbm_new(const ds_rbm_cfg *cfg, int max_batch);
void ds_rbm_free(ds_rbm *r);
const ds_rbm_cfg *ds_rbm_config(const ds_rbm *r);
/* W [hidden × visible] (row j: hidden unit j's weights), b [visible], c [hidden]. */
float *ds_rbm_weights(ds_rbm *r);
float *ds_rbm_visible_bias(ds_rbm *r);
float *ds_rbm_hidden_bias(ds_rbm *r);
ds_rng *ds_rbm_rng(ds_rbm *r);
/* One CD-k (or PCD) update from a batch v [n × visible]; *recon_err (if
 * not NULL) gets the batch's mean squared reconstruction error per sample. */
int ds_rbm_update(ds_rbm *r, const float *v, int n, double *recon_err);
/* One epoch: the rows of x [n × visible] in an order drawn from the RBM's
 * generator, in batches of max_batch (a last short batch is left out);
 * *recon_err (if not NULL) gets the mean of the batches' errors. */
int ds_rbm_epoch(ds_rbm *r, const float *x, int n, double *recon_err);
/* p(h = 1 | v) [n × hidden]; E[v | h] [n × visible]; any number of rows. */
int ds_rbm_hidden_probs(ds_rbm *r, const float *v, int n, float *h);
int ds_rbm_visible_mean(ds_rbm *r, const float *h, int n, float *v);
/* Mean free energy F(v) of a batch (NaN on a bad batch size). */
double ds_rbm_free_energy(ds_rbm *r, const float *v, int n);
/* Exact mean log-likelihood of a batch, enumerating 2^min(visible, hidden)
 * configurations (hidden only, for Gaussian units); at most 2^24. */
int ds_rbm_exact_loglik(ds_rbm *r, const float *v, int n, double *ll);
/* `steps` Gibbs steps in place from v [n × visible]; the last visible
 * state is the mean E[v | h] (a clean picture). */
int ds_rbm_gibbs(ds_rbm *r, float *v, int n, int steps);

/* ---- output files ------------------------------------------------------ */

/* An output being written atomically: f writes PATH.tmp.XXXXXX (created
 * O_EXCL beside PATH), which commit flushes, fsyncs and renames over PATH.
 * A device, FIFO or socket (/dev/stdout, a pipe) is written in place with
 * every write checked (tmp is NULL); nothing but the temporary file is ever
 * removed. A symbolic link keeps pointing at the new file. */
typedef struct ds_atomic {
    FILE *f;
    char *path, *tmp;
    struct ds_atomic_sink *sink; /* f's file descriptor and the errno of its first failed write */
} ds_atomic;
/* Open a->f for writing path's new content. */
int ds_atomic_open(ds_atomic *a, const char *path);
/* Check every write (ferror, fflush, fsync, fclose), then rename: 0, or −1
 * with the old file intact and the temporary file removed. */
int ds_atomic_commit(ds_atomic *a);
/* Drop the new content: close and remove the temporary file. */
void ds_atomic_abort(ds_atomic *a);
/* open, fwrite n bytes, commit. */
int ds_atomic_write(const char *path, const void *data, size_t n);
/* Remove stale temporary files DIR/NAME.tmp.XXXXXX (and the older fixed
 * NAME.tmp) left by a killed run, for NAME matching one of the fnmatch
 * patterns; returns how many were removed (−1 on error). */
int ds_atomic_clean(const char *dir, const char *const *patterns, int n_patterns);
/* Unlink the temporary files being written now (async-signal-safe, for a
 * SIGINT/SIGTERM handler that then dies). */
void ds_atomic_unlink_pending(void);

/* ---- pictures and reports --------------------------------------------- */

/* 8-bit PNG (channels 1, 3 or 4), atomically written. */
int ds_png_write(const char *path, int w, int h, int channels, const uint8_t *pixels);
/* Line chart: n_series curves of n_points (NaN gaps allowed), x = 1..n. */
int ds_plot_lines(const char *path, const char *title, const char *xlabel, int n_series,
                  const char *const *names, const float *const *ys, int n_points);
/* The same with a y-axis label (NULL: none). */
int ds_plot_lines_ex(const char *path, const char *title, const char *xlabel, const char *ylabel, int n_series,
                     const char *const *names, const float *const *ys, int n_points);
/* One curve of an x-y chart: n points (x NULL: 1..n; a NaN is a gap), drawn
 * as a line, points, both, or a grey dashed guide (e.g. a diagonal, a
 * threshold) that does not set the axes' range. lo, hi (NULL: none): error
 * bars from lo[i] to hi[i]; labels (NULL: none): a short text beside each
 * point (e.g. "n=120"), placed where it hides no curve. */
enum { DS_PLOT_LINE = 0, DS_PLOT_POINTS, DS_PLOT_LINE_POINTS, DS_PLOT_DASHED };
typedef struct ds_plot_series {
    const char *name; /* in the legend (NULL: not listed) */
    const float *x, *y, *lo, *hi;
    const char *const *labels;
    int n, style;
} ds_plot_series;
typedef struct ds_plot_opts {
    const char *title, *xlabel, *ylabel;
    int log_x;                       /* log10 x axis, decades labelled 0.001, 0.01, ...; x <= 0 left out */
    int x_fixed, y_fixed;            /* the ranges below, else the data's (padded 5 %) */
    double xmin, xmax, ymin, ymax;
} ds_plot_opts;
/* An 800 x 500 chart with numbered ticks on both axes; the legend goes in a
 * corner of the plot where it hides nothing, else below the chart (the
 * image grows); names and labels are shortened to fit, never cut by the edge. */
int ds_plot_xy(const char *path, const ds_plot_opts *opts, const ds_plot_series *series, int n_series);
/* n grey images [n, h, w] as a grid of `cols` columns (0: square), each
 * scaled to black..white over its own range (per_tile) or over all of them. */
int ds_png_grid(const char *path, const float *x, int n, int h, int w, int cols, int per_tile);
/* The same in colour with a label of up to 4 lines ('\n') under each tile
 * (labels NULL or labels[i] NULL: none), e.g. "#123 real\nstreak\np=0.97";
 * tiles are scaled up to about 96 pixels, lines cut to fit their tile. */
int ds_png_grid_labeled(const char *path, const float *x, int n, int h, int w, int cols, int per_tile,
                        const char *const *labels);
/* The same for colour tiles rgb [n, h, w, 3] (heat maps, overlays), drawn as they are. */
int ds_png_grid_rgb(const char *path, const uint8_t *rgb, int n, int h, int w, int cols, const char *const *labels);
/* Confusion matrix heat map, counts[true·classes + predicted]. */
int ds_plot_confusion(const char *path, int classes, const int *counts,
                      const char *const *class_names);
/* A self-contained report page DIR/report.html linking the PNGs and
 * metrics.csv that exist in DIR; `summary` is preformatted text. */
int ds_report_html(const char *dir, const char *title, const char *summary);
/* The same with a provenance block (prov[0..n_prov): command line, model
 * hash, seeds, data, version, date) as a table above the plots; prov NULL:
 * the "# key: value" lines at the top of DIR/metrics.csv, if any. The
 * metrics table skips lines that start with '#'. */
int ds_report_html_ex(const char *dir, const char *title, const char *summary, const ds_meta_kv *prov, int n_prov);
/* kv as "# key: value\n" lines (malloc'd; a newline in a value written \n):
 * the provenance header of metrics.csv. */
char *ds_provenance_comments(const ds_meta_kv *kv, int n);

/* ---- data-parallel training: the communicator (src/core/dist.c) -------
 * One replica per process; the trainer sums the gradients over all of them
 * (docs/scaling.md). Built without MPI, or run without a launcher, the
 * world is one process and every call below is the identity. */
typedef struct ds_comm ds_comm;
enum { DS_COMM_SUM = 0, DS_COMM_MAX = 1, DS_COMM_MIN = 2 };
/* The world: initialises MPI when started by mpirun/srun (their
 * environment), else a world of one. Fails when launched with several
 * processes but built without MPI. Idempotent. */
ds_comm *ds_comm_world(int *argc, char ***argv);
int ds_comm_rank(const ds_comm *c);
int ds_comm_size(const ds_comm *c);
/* In-place sum of buf [n] over all ranks (the same result on every rank). */
int ds_comm_allreduce_sum(ds_comm *c, float *buf, size_t n);
/* In-place sum, max or min (DS_COMM_*) of n doubles over all ranks. */
int ds_comm_allreduce_f64(ds_comm *c, double *buf, int n, int op);
/* Root's bytes to every rank. */
int ds_comm_bcast(ds_comm *c, void *buf, size_t bytes, int root);
int ds_comm_barrier(ds_comm *c);
/* Sums in rank order (gather, add 0..N-1, broadcast): the same bits
 * whatever MPI's algorithm (the deterministic reduction); off: MPI_SUM. */
int ds_comm_set_ordered(ds_comm *c, int on);
/* Seconds spent in, and bytes passed through, ds_comm_allreduce_sum. */
double ds_comm_reduce_seconds(const ds_comm *c);
long ds_comm_reduce_bytes(const ds_comm *c);
/* "Open MPI v4.1.4", or "none (built without MPI)". */
const char *ds_comm_backend(void);
/* Stop every rank (MPI_Abort) — after a rank's error, so none waits forever. */
void ds_comm_abort(ds_comm *c, int code);
void ds_comm_finalize(ds_comm *c);

/* ---- the program and the trainer (src/train/; docs/design.md) -------- */

/* A contiguous run of floats: gradients are handed to the gradient hook,
 * clipping and (later) an all-reduce as a few of these. */
typedef struct ds_span {
    float *p;
    size_t n;
} ds_span;
/* The trainable parameters' gradients as spans (after compile): one span
 * covering all of them (the arena keeps them together, input gradients
 * apart); returns the number written (≤ max), 0 when none. */
int ds_graph_grad_spans(const ds_graph *g, ds_span *spans, int max);

#define DS_MAX_INPUTS 8
#define DS_MAX_HEADS 8
/* the graph inputs a batch fills: the model's inputs, then the targets of
 * heads that are not the data's labels */
#define DS_MAX_FEEDS (DS_MAX_INPUTS + DS_MAX_HEADS)

typedef enum ds_loss_kind {
    DS_LOSS_SOFTMAX = 0, /* softmax cross-entropy over [N, classes] logits, labels [N] */
    DS_LOSS_BCE,         /* binary cross-entropy with logits, targets [N, k] in [0, 1] */
    DS_LOSS_MSE,         /* mean squared error, targets [N, k] */
    DS_LOSS_HIER         /* conditional softmaxes down the model's [tree], labels [N] */
} ds_loss_kind;

/* One output: a node, what it is compared with, and its share of the loss. */
typedef struct ds_head {
    const char *name;   /* the [output]'s name ("output" without one) */
    ds_loss_kind loss_kind;
    float weight;       /* the total loss is Σ weight·loss */
    int classes;        /* SOFTMAX/HIER: classes (the labels' range); else 0 */
    ds_node *out;       /* logits or values [N, k] */
    ds_node *target;    /* the labels y [N] or a target input [N, k] */
    ds_node *loss;      /* scalar */
    const ds_class_tree *tree; /* HIER: the model's [tree] */
} ds_head;

/* What a model file expresses: named inputs → layers → heads with losses.
 * feeds[0..n_inputs) are the inputs (feeds[0] the first, fed from a data
 * set's x); the rest are non-label targets; labels is "y" (NULL when no
 * head uses the data's labels). */
typedef struct ds_program {
    ds_graph *g;
    int n_inputs, n_feeds, n_heads;
    ds_node *feeds[DS_MAX_FEEDS];
    const char *feed_names[DS_MAX_FEEDS];
    ds_head heads[DS_MAX_HEADS];
    ds_node *labels;
    ds_node *loss;      /* the total: the one head's loss, or Σ weight·loss */
} ds_program;

/* Options for building a program. class_weights: NULL or [classes] weights
 * of the first classification head's cross-entropy ([train] class_weight). */
typedef struct ds_program_opts {
    const float *class_weights;
} ds_program_opts;

/* Record the model's program for batch `batch` (not compiled). */
int ds_model_build_program(ds_model *m, ds_graph *g, int batch, const ds_program_opts *o, ds_program *p);
/* Σ w[k]·x[k] of n scalar nodes (the total of several losses). */
ds_node *ds_weighted_sum(ds_graph *g, int n, ds_node **x, const float *w);
/* The first head that classifies (SOFTMAX or HIER) or -1. */
int ds_program_class_head(const ds_program *p);
/* Class probabilities [rows, classes] from head h's output after a forward
 * (softmax, or the tree's path products). */
int ds_program_probs(const ds_program *p, int h, int rows, int first, float *probs);

/* What a step, an epoch or a pass of evaluation measured. head_loss is
 * each head's mean loss; accuracy that of the first classifying head (NaN
 * without one). */
typedef struct ds_epoch_stats {
    double loss;     /* mean total loss over samples */
    double accuracy; /* fraction of argmax == label */
    int samples;
    double seconds;
    double head_loss[DS_MAX_HEADS];
} ds_epoch_stats;

/* An epoch's record as the trainer hands it to the hooks. */
typedef struct ds_epoch_log {
    int epoch, epochs;    /* this one (from 1) and the run's total */
    float lr;             /* the first optimizer's rate at the epoch's start */
    ds_epoch_stats train;
    int has_monitor;      /* validate set monitor */
    double monitor;       /* the value that chooses best and drives early stopping */
    int is_best;          /* set by the trainer before epoch_end: best so far (always, without a monitor) */
    int stop;             /* set by the trainer: patience ran out (the run ends after epoch_end) */
    int bad_epochs;       /* epochs since the best one */
} ds_epoch_log;

/* Progress within an epoch. */
typedef struct ds_batch_log {
    int epoch, epochs, batch, batches;
    long seen;            /* samples this epoch */
    double loss, accuracy, seconds; /* running means this epoch; seconds since its start */
} ds_batch_log;

typedef struct ds_trainer ds_trainer;

/* The hooks: any may be NULL. Each returns 0 to go on, DS_TRAIN_STOP to
 * end the run between batches (Ctrl-C), or -1 for an error (set). */
#define DS_TRAIN_STOP 1
typedef struct ds_trainer_hooks {
    void *user;
    /* the batch (b samples) is in the feeds, before the forward: it may be
     * changed (an adversarial step) */
    int (*batch_begin)(void *user, ds_trainer *t, int b);
    /* a step's passes (NULL: one, weight 1): called before pass k = 0, 1, …
     * (after the gradients are zeroed) to set the feeds for it and its
     * loss weight (*weight, 1 unless set); returns 1 to run pass k, 0 when
     * there are no more (k ≥ 1). Each pass is forward, backward of
     * weight·loss, gradients summed: α·L(x) + (1 − α)·L(x_adv) is two. */
    int (*pass)(void *user, ds_trainer *t, int b, int k, float *weight);
    /* after backward, before clipping and the optimizer steps: the
     * parameter gradients (the one place to all-reduce them) */
    int (*grad)(void *user, ds_span *spans, int n_spans);
    int (*batch_end)(void *user, const ds_batch_log *b);
    /* after an epoch's training pass: set e->monitor and e->has_monitor
     * (validation); then the trainer decides is_best and stop */
    int (*validate)(void *user, ds_epoch_log *e);
    /* last in an epoch: metrics, plots, checkpoints */
    int (*epoch_end)(void *user, const ds_epoch_log *e);
    /* a program whose loss lies outside its graph (a GAN's generator, whose
     * loss is the discriminator's): after each pass's forward, sets *loss
     * and *dout = d(loss)/d(p->heads[0].out) (that node's size), which the
     * backward starts from (the pass weight is not applied: dout is the
     * whole gradient). NULL: the graph's own p->loss. */
    int (*loss_grad)(void *user, ds_trainer *t, int b, double *loss, const float **dout);
} ds_trainer_hooks;

typedef struct ds_trainer_cfg {
    int epochs;       /* the run's total */
    int patience;     /* stop after this many epochs without a better monitor (0: never) */
    int higher_is_better; /* the monitor's direction */
    float clip_norm;  /* > 0: scale all gradients to this global L2 norm (besides the optimizer's own) */
    /* data-parallel training (NULL or a world of one: none). Every rank
     * runs the same trainer on its share of each global batch (the loader's
     * ds_loader_set_shard); the trainer starts every rank from rank 0's
     * parameters and buffers, weights each rank's loss by its share of the
     * global batch and sums the gradients (before the grad hook), so N ranks
     * at global batch B train as one process at B; dropout draws the masks
     * of the whole global batch (the same as one process); batch-norm
     * statistics are the rank's own unless the graph syncs them
     * (ds_graph_set_sync_bn), its running buffers rank 0's; epoch
     * statistics and every stop are agreed over all ranks; each epoch ends
     * with a check that the replicas still hold the same weights. */
    ds_comm *comm;
    /* > 1: each batch as this many consecutive micro-batches (the graph
     * compiled for batch/micro_batches), their gradients summed in order:
     * memory for a large batch, and the very sums N ranks make, so one
     * process reproduces N ranks bit for bit (docs/scaling.md) */
    int micro_batches;
} ds_trainer_cfg;

/* A trainer over program p with n_optims optimizers (each over its own
 * parameters, or one over all); nothing is allocated per step. */
ds_trainer *ds_trainer_new(ds_program *p, ds_optim *const *optims, int n_optims, const ds_trainer_cfg *cfg,
                           const ds_trainer_hooks *hooks);
void ds_trainer_free(ds_trainer *t);
/* Resume: best monitor so far and epochs since it (from a checkpoint). */
void ds_trainer_set_best(ds_trainer *t, double best, int bad_epochs);
double ds_trainer_best(const ds_trainer *t);
int ds_trainer_bad_epochs(const ds_trainer *t);
/* One step on the b samples in the feeds: zero grads, forward, a finite
 * loss check, backward, the grad hook, clipping, the optimizer steps. */
int ds_trainer_step(ds_trainer *t, int b, double *loss);
/* The same for a rank's b rows of a global batch of gb (data-parallel:
 * its loss weighted b/gb; gb 0: an equal share of every rank). */
int ds_trainer_step_shard(ds_trainer *t, int b, int gb, double *loss);
/* One epoch over l (training mode); the hooks' batch_begin/grad/batch_end run. */
int ds_trainer_epoch(ds_trainer *t, ds_loader *l, int epoch, ds_epoch_stats *st);
/* Epochs first+1..cfg.epochs: train, validate, best/patience, epoch_end.
 * Returns 0 when done or stopped early by patience, DS_TRAIN_STOP when a
 * hook stopped it, -1 on error. */
int ds_trainer_fit(ds_trainer *t, ds_loader *l, int first);
/* Loss and accuracy over l in eval mode (no gradients, no steps); probs
 * [l's samples, classes] of the first classifying head if non-NULL. */
int ds_trainer_evaluate(ds_trainer *t, ds_loader *l, ds_epoch_stats *st, float *probs);

/* ---- attribution maps (src/train/explain.c; docs/explain.md) ---------- */

/* The methods of `deepsky explain`; names as ds_explain_method_name. */
typedef enum ds_explain_method {
    DS_EXPLAIN_SALIENCY,    /* "saliency": ∂score/∂x (Simonyan et al. 2013) */
    DS_EXPLAIN_GRADXINPUT,  /* "gradxinput": x ⊙ ∂score/∂x */
    DS_EXPLAIN_SMOOTHGRAD,  /* "smoothgrad": mean gradient over noisy copies (Smilkov et al. 2017) */
    DS_EXPLAIN_IG,          /* "integrated-gradients": (x − x') ⊙ mean gradient on the path (Sundararajan et al. 2017) */
    DS_EXPLAIN_GRADCAM,     /* "gradcam": relu(Σ_k α_k A_k) of a conv layer, upsampled (Selvaraju et al. 2017) */
    DS_EXPLAIN_GUIDED,      /* "guided-backprop": the gradient with guided relus (Springenberg et al. 2015) */
    DS_EXPLAIN_DECONVNET,   /* "deconvnet": the gradient with deconvnet relus (Zeiler & Fergus 2013) */
    DS_EXPLAIN_METHODS
} ds_explain_method;
const char *ds_explain_method_name(int method);
/* The method named s (-1: none such). */
int ds_explain_method_parse(const char *s);

typedef struct ds_explain_cfg {
    int method;
    int samples;          /* smoothgrad: noisy copies (0: 50) */
    float noise;          /* smoothgrad: noise σ as a share of the input's range max − min (0: 0.15) */
    int steps;            /* integrated gradients: path points (0: 64) */
    const float *baseline;/* integrated gradients: [sample] in the data's units (NULL: zeros) */
    ds_node *layer;       /* gradcam: the conv layer's output node (NULL: the last 4-D output larger than 1×1) */
    uint64_t seed;        /* smoothgrad's noise */
} ds_explain_cfg;

/* Attributions for raw rows x [b, sample] (the data's own units, the
 * normalisation norm applied in front as ds_input_grad) of the class
 * scores cls[r]: attr [b, sample] for the gradient methods; for gradcam
 * [b, H, W] (the input's height and width). The program is compiled with
 * its first feed requiring a gradient (gradcam and deconvnet: without relu
 * fusion); relu rules are set and restored; eval mode. Integrated
 * gradients and smoothgrad run their path points / copies in batches of
 * the graph's batch, so memory is that of one batch. */
int ds_explain(ds_program *p, const ds_norm *norm, const ds_explain_cfg *c, const float *x, int b, const float *cls,
               float *attr);
/* One map per row [b, H, W] from attributions [b, C, H, W]: max over
 * channels of |a| (saliency, smoothgrad, guided, deconvnet), Σ over
 * channels (gradxinput, integrated gradients: signed), or a copy (gradcam). */
int ds_explain_map(int method, const float *attr, int b, ds_shape sample, float *map);

/* ---- checks of attribution maps (src/train/sanity.c; docs/explain.md) - */

/* Spearman's rank correlation of a and b [n]: Pearson's of their ranks,
 * tied values given the mean of their ranks (scipy.stats.spearmanr); NaN
 * when n < 2 or either is constant. */
double ds_spearman(const float *a, const float *b, long n);
/* The pointing game's share: Σ|map| over the pixels where mask > 0.5 over
 * Σ|map| over all n; a map without mass gets the mask's area share (that of
 * a uniform map); NaN for an empty mask. */
double ds_mass_share(const float *map, const float *mask, long n);
/* The model's layers that own parameters or buffers (named "<layer>.…" in
 * g), from the output down: up to max indices (ds_model_layer_name). */
int ds_param_layers_top_down(const ds_model *m, const ds_graph *g, int *layers, int max);
/* Copy layer's parameters and buffers from src into dst (two graphs of the
 * same model text): how many tensors, or -1 when the graphs differ. */
int ds_copy_layer_state(ds_graph *dst, const ds_graph *src, const char *layer);

typedef struct ds_sanity_cfg {
    const int *methods;     /* ds_explain_method values */
    int n_methods;
    ds_explain_cfg explain; /* the methods' settings (method is set per column) */
    int batch;              /* rows per ds_explain call, ≤ the graph's batch */
    uint64_t seed;          /* the re-initialisation's graph seed */
    float *maps;            /* NULL, or [stages × methods × keep × H × W]: the first keep rows' maps at each stage */
    int keep;
} ds_sanity_cfg;
typedef struct ds_sanity_result {
    int n_stages, n_methods;
    char (*stage)[160];  /* "trained", then the randomised layers so far, "fc2+fc1" */
    double *mean, *std;  /* [stage × method]: Spearman of |map| with the trained model's, over images */
    int *count;          /* images with a defined correlation (a constant map has none) */
} ds_sanity_result;
/* The cascading model-randomisation check (Adebayo et al. 2018) on program
 * p of model m (compiled for input gradients, ds_explain's requirements):
 * stage 0 the trained model, stage s the s top parameter layers replaced by
 * a fresh initialisation (seed c->seed) of the same model text, cumulatively;
 * per stage and method, Spearman of |map| per image with the trained
 * model's, mean and std over the n rows x [n, sample] (raw units, norm in
 * front) explaining classes cls[n]. The trained weights are restored. */
int ds_sanity_cascade(ds_program *p, const ds_model *m, const ds_norm *norm, const ds_sanity_cfg *c, const float *x,
                      int n, const float *cls, ds_sanity_result *res);
void ds_sanity_result_free(ds_sanity_result *r);

/* ---- attribution and adversarial examples (src/train/attack.c) ------- */

/* Normalise raw rows x [b, sample] (the data's own units) by norm (the
 * checkpoint's; NULL or 0 channels: none) into the program's first feed,
 * in double as ds_norm_apply, and set the graph's batch to b. */
int ds_feed_normalized(ds_program *p, const ds_norm *norm, const float *x, int b);
/* What ds_input_grad differentiates: each row's class score (the logit of
 * class cls[r], not its softmax: Simonyan et al. 2013), or the classifying
 * head's loss with labels cls (each row's own loss, whatever b). */
enum { DS_GRAD_SCORE, DS_GRAD_LOSS };
/* grad [b, sample] = ∂/∂x of `of` at raw rows x, through the normalisation,
 * in the graph's current mode, the other feeds as the caller set them.
 * The first feed must require a gradient (ds_node_set_requires_grad before
 * compile); parameter gradients are left untouched. The head's outputs
 * then hold x's forward. */
int ds_input_grad(ds_program *p, const ds_norm *norm, const float *x, int b, const float *cls, int of, float *grad);

typedef struct ds_attacker ds_attacker;
/* An attacker on program p (compiled with its first feed requiring a
 * gradient), its scratch for the graph's batch allocated once. */
ds_attacker *ds_attacker_new(ds_program *p, const ds_norm *norm, const ds_attack_cfg *c);
void ds_attacker_free(ds_attacker *a);
/* The configuration in use (the PGD step size filled in). */
const ds_attack_cfg *ds_attacker_cfg(const ds_attacker *a);
/* Adversarial rows xa [b, sample] for raw rows x with labels y, in eval
 * mode (dropout off, batch norm's running statistics; the mode is restored);
 * wrong[r] = 1 when xa's row r is misclassified (NULL: not asked, one
 * forward fewer). rng: PGD's random starts. The first feed holds xa
 * (normalised) afterwards. eps = 0 gives xa = x. */
int ds_attacker_run(ds_attacker *a, const float *x, const float *y, int b, ds_rng *rng, float *xa, int *wrong);

/* Adversarial training through the trainer (src/train/adversarial.c):
 * each step's loss is alpha·L(x) + (1 − alpha)·L(x_adv), x_adv from attack
 * c on the batch, made in eval mode by the model being trained (Goodfellow
 * et al. 2015: FGSM, alpha 0.5; Madry et al. 2018: PGD, alpha 0). norm: the
 * normalisation the batches were given (eps is in the data's own units). */
typedef struct ds_adv_trainer ds_adv_trainer;
ds_adv_trainer *ds_adv_trainer_new(ds_program *p, const ds_norm *norm, const ds_attack_cfg *c, float alpha,
                                   uint64_t seed);
void ds_adv_trainer_free(ds_adv_trainer *a);
/* The trainer's pass hook (ds_trainer_hooks.pass), user = the ds_adv_trainer. */
int ds_adv_pass(void *user, ds_trainer *t, int b, int k, float *weight);
/* Reseed the attack's random starts (train: from the seed and the epoch, so a resumed run draws the same). */
void ds_adv_trainer_seed(ds_adv_trainer *a, uint64_t seed);
/* The attack in use (the PGD step size filled in). */
const ds_attack_cfg *ds_adv_trainer_attack(const ds_adv_trainer *a);

/* ---- generative adversarial networks (src/train/gan.c, src/io/gan_model.c;
 * docs/gan.md) ----------------------------------------------------------- */

/* A GAN model file: [gan] and [train] first, then [generator] and
 * [discriminator], each a network's [net] (its input= or [input] sections
 * and its layers after it). The generator maps z [latent] (and a class
 * input when conditional) to a sample of the data's shape in [-1, 1] (tanh);
 * the discriminator maps a sample (and the class) to one logit [N, 1].
 * Errors read "FILE:LINE: [generator] ..." as for any model file. */
enum { DS_GAN_NONSATURATING = 0, DS_GAN_MINIMAX };
enum { DS_GAN_LINEAR = 0, DS_GAN_ASINH };
typedef struct ds_gan_cfg {
    int latent;            /* z's length (the generator's first input) */
    int conditional;       /* 1: the class (an index) is both networks' second input */
    int classes;           /* conditional: the classes (the data's labels 0..classes-1) */
    int d_steps;           /* discriminator steps per generator step (k; 1) */
    int loss;              /* DS_GAN_NONSATURATING (-log D(G(z))) or DS_GAN_MINIMAX (log(1 - D(G(z)))) */
    float label_smoothing; /* one-sided: the real target is 1 - s (Salimans et al. 2016) */
    float instance_noise;  /* std of N(0, s²) added to D's inputs, real and fake, annealed linearly to 0 */
    float g_lr, d_lr;      /* 0: [train] lr */
    int transform;         /* data to [-1, 1]: DS_GAN_LINEAR (min..max) or DS_GAN_ASINH (asinh(x/softening), then min..max) */
    float softening;       /* asinh: 0 = the data's median robust noise */
    float clip_quantile;   /* q > 0: lo, hi are the q and 1 − q quantiles of t(x), not its min and max (values beyond are clipped) */
    int grid;              /* samples in the fixed-noise grid of each epoch (64) */
} ds_gan_cfg;

typedef struct ds_gan_model ds_gan_model;
ds_gan_model *ds_gan_model_load(const char *path);
ds_gan_model *ds_gan_model_parse(const char *text, const char *name);
void ds_gan_model_free(ds_gan_model *m);
/* 1 when a model-file text is a GAN's (it has a [generator] section). */
int ds_model_text_is_gan(const char *text);
/* The same for a model file (0 when it cannot be read: ds_model_load says why). */
int ds_model_file_is_gan(const char *path);
const ds_gan_cfg *ds_gan_model_cfg(const ds_gan_model *m);
const ds_train_cfg *ds_gan_model_train_cfg(const ds_gan_model *m);
const char *ds_gan_model_text(const ds_gan_model *m);
/* The two networks' models (owned by m): 0 the generator, 1 the discriminator. */
ds_model *ds_gan_model_net(ds_gan_model *m, int which);
/* The data sample shape the generator makes ([C, H, W]). */
ds_shape ds_gan_model_sample_shape(const ds_gan_model *m);

/* The map of data values to the networks' [-1, 1] and back. */
typedef struct ds_gan_scale {
    int transform;         /* DS_GAN_LINEAR or DS_GAN_ASINH */
    float softening, lo, hi; /* t(x) = linear or asinh(x/softening); x' = 2(t - lo)/(hi - lo) - 1 */
} ds_gan_scale;
/* The scale of a data set (lo, hi: the min and max of t(x) over it, or
 * its clip_quantile quantiles). */
int ds_gan_scale_fit(const ds_gan_cfg *c, const ds_dataset *d, ds_gan_scale *s);
void ds_gan_scale_apply(const ds_gan_scale *s, float *x, size_t n);   /* data → [-1, 1] */
void ds_gan_scale_invert(const ds_gan_scale *s, float *x, size_t n);  /* [-1, 1] → data */

/* What an epoch (or one step) of GAN training measured: means over the
 * generator steps' batches. d_real = D(x), d_fake = D(G(z)) at the
 * discriminator's step, d_fake_after = D(G(z)) after it (at the
 * generator's step), as PyTorch's DCGAN example prints them. */
typedef struct ds_gan_stats {
    double loss_d, loss_g, d_real, d_fake, d_fake_after;
    int samples;           /* real samples seen */
    int g_steps, d_steps;
    double seconds;
} ds_gan_stats;

/* A GAN ready to train: both programs compiled for `batch`, each with its
 * own optimizer ([train] with [gan] g_lr/d_lr) and its own ds_trainer; the
 * generator's trainer takes its loss from the discriminator (docs/design.md,
 * "GANs through the trainer"). seed: both graphs' init, z and instance noise. */
typedef struct ds_gan ds_gan;
ds_gan *ds_gan_new(ds_gan_model *m, int batch, uint64_t seed);
void ds_gan_free(ds_gan *g);
/* 0 the generator's, 1 the discriminator's. */
ds_program *ds_gan_program(ds_gan *g, int which);
ds_optim *ds_gan_optim(ds_gan *g, int which);
ds_rng *ds_gan_rng(ds_gan *g);            /* z, fake classes and instance noise are drawn from it */
/* The scale the training data is put through (set before training; data
 * given to ds_gan_step/epoch are already scaled). */
void ds_gan_set_scale(ds_gan *g, const ds_gan_scale *s);
const ds_gan_scale *ds_gan_get_scale(const ds_gan *g);
/* Instance noise's progress: the share of the run done (0..1). */
void ds_gan_set_progress(ds_gan *g, double done);
/* One iteration on b real rows (scaled), labels y (conditional; else NULL):
 * one discriminator step, then one generator step (ds_gan_epoch applies
 * d_steps). z [b, latent] is drawn when NULL; fake_y [b] NULL: the real
 * batch's classes. */
int ds_gan_step(ds_gan *g, const float *x, const float *y, int b, const float *z, const float *fake_y,
                ds_gan_stats *st);
/* Called after every batch of ds_gan_epoch with the running means so far
 * (batch from 1); a non-zero return ends the epoch with that value
 * (DS_TRAIN_STOP: Ctrl-C). */
typedef int (*ds_gan_batch_fn)(void *user, int batch, int batches, const ds_gan_stats *so_far);
void ds_gan_set_batch_hook(ds_gan *g, ds_gan_batch_fn fn, void *user);
/* An epoch over l (whose data set is scaled): every batch a discriminator
 * step, every d_steps-th also a generator step. */
int ds_gan_epoch(ds_gan *g, ds_loader *l, int epoch, ds_gan_stats *st);
/* n samples in eval mode (batch norm's running statistics), in the
 * networks' [-1, 1] (scale NULL) or inverted to data units: z [n, latent]
 * (NULL: drawn from rng), classes [n] (conditional; NULL: drawn). out [n,
 * sample]. */
int ds_gan_generate(ds_gan *g, int n, const float *z, const float *classes, ds_rng *rng,
                    const ds_gan_scale *scale, float *out);
/* Checkpoints hold both networks ("generator.*", "discriminator.*"), both
 * optimizers' state, the scale and the run's state, atomically. */
int ds_gan_save(ds_gan *g, const char *path, const ds_train_state *st, const ds_meta_kv *extra, int n_extra);
/* Restore weights, optimizer state and scale from a GAN checkpoint (the
 * model must be the same); st (NULL ok) gets the run state. */
int ds_gan_restore(ds_gan *g, const ds_checkpoint *c, ds_train_state *st);

/* ---- sample quality without ImageNet (src/train/fid.c; docs/gan.md) ---- */

/* Mean [dim] and covariance [dim, dim] (unbiased, n - 1) of n feature rows, in double. */
int ds_feature_stats(const float *f, int n, int dim, double *mean, double *cov);
/* Fréchet distance between N(m1, c1) and N(m2, c2): |m1 - m2|² + tr(c1 + c2
 * - 2 (c1^½ c2 c1^½)^½) (Heusel et al. 2017), by symmetric eigendecompositions. */
int ds_frechet_distance(int dim, const double *m1, const double *c1, const double *m2, const double *c2,
                        double *out);
/* For each of the nq rows of q [nq, dim], the Euclidean distance to the
 * nearest of the nr rows of ref [nr, dim] and that row's index (index NULL:
 * not wanted): candidates ranked by ‖r‖² − 2 q·r through the GEMM, the
 * winner's distance then recomputed exactly in double. */
int ds_nearest_neighbors(const float *q, int nq, const float *ref, int nr, int dim, float *dist, int *index);

/* The plain loops over a single-input single-head program, as thin calls
 * into the trainer (examples). */
int ds_train_epoch(ds_graph *g, ds_optim *o, ds_loader *l, ds_node *x, ds_node *y,
                   ds_node *logits, ds_node *loss, ds_epoch_stats *st);
int ds_evaluate(ds_graph *g, ds_loader *l, ds_node *x, ds_node *y, ds_node *logits,
                ds_node *loss, ds_epoch_stats *st);

/* ---- a checkpoint for inference in one call (src/io/predictor.c; the
 * Python package's entry point, docs/python.md) ------------------------- */

typedef struct ds_predictor ds_predictor;
/* Load a checkpoint's model, weights, normalisation and class names for
 * inference in batches of at most `batch` (memory is planned for it); one-input models. */
ds_predictor *ds_predictor_open(const char *path, int batch);
void ds_predictor_free(ds_predictor *p);
/* The number of classes of the first classifying head. */
int ds_predictor_classes(const ds_predictor *p);
/* Class k's name from the checkpoint, or NULL when it has none (numeric labels). */
const char *ds_predictor_class_name(const ds_predictor *p, int k);
/* The input's per-sample shape into dims[DS_MAX_DIMS]; returns its ndim. */
int ds_predictor_input_shape(const ds_predictor *p, int *dims);
/* Probabilities [n, classes] of n raw samples x (the input shape each,
 * not normalised: the checkpoint's normalisation is applied to a copy). */
int ds_predictor_predict(ds_predictor *p, const float *x, int n, float *probs);
/* Parameters and buffers, in ds_graph_param order (the checkpoint's tensors). */
int ds_predictor_num_params(const ds_predictor *p);
/* Parameter i: its name (owned by p), shape into dims[DS_MAX_DIMS] and *ndim, and
 * *data its live values (owned by p, valid until ds_predictor_free); NULL if i is out of range. */
const char *ds_predictor_param(ds_predictor *p, int i, int *dims, int *ndim, float **data);
/* ---- ONNX (docs/onnx.md; needs protobuf-c at build time) -------------- */

/* Write the checkpoint's model as ONNX (opset 13) at onnx_path, atomically:
 * normalisation as Sub/Div nodes, outputs "logits" and "probabilities",
 * class names in metadata_props "classes". -1 naming the layer otherwise. */
int ds_onnx_export(const char *ckpt_path, const char *onnx_path);
/* ds_onnx_export with a GAN checkpoint's network: net "generator" (NULL: it;
 * inputs z [and c], outputs "generated" in [-1, 1] and "sample" in data units)
 * or "discriminator" (the data scale in front; "logit", "probability"). */
int ds_onnx_export_ex(const char *ckpt_path, const char *onnx_path, const char *net);
/* Read an ONNX model (one input, one output; the operators docs/onnx.md
 * lists) and, with out_dir, write out_dir/model.cfg and
 * out_dir/model.safetensors (a checkpoint: predict reads it); with run_x,
 * also run the imported network on that NPY and write its output (after a
 * last Softmax if the ONNX graph ends in one) to run_y. An unsupported node
 * is an error naming the node and its operator. */
int ds_onnx_import(const char *onnx_path, const char *out_dir, const char *run_x, const char *run_y);
/* Whether this build has ONNX support (protobuf-c). */
int ds_onnx_available(void);

#ifdef __cplusplus
}
#endif
#endif
