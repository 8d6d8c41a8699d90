/* internal.h — structures shared by the core, the ops and the nn code. */
#ifndef DS_INTERNAL_H
#define DS_INTERNAL_H

#include "deepsky.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record an error for ds_last_error(); returns -1 so callers can
 * `return ds_fail(...)`. */
int ds_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current error with more context ("file:line: " etc.). */
int ds_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef enum ds_node_kind {
    DS_NODE_OP = 0,
    DS_NODE_INPUT,
    DS_NODE_PARAM,  /* trainable */
    DS_NODE_BUFFER  /* saved state, not trained */
} ds_node_kind;

typedef enum ds_device { DS_DEVICE_CPU = 0, DS_DEVICE_CUDA } ds_device;

struct ds_graph;

/* An op is one table entry: shape rule, forward and backward side by side.
 * shape() sets n->shape and the aux/work sizes from the inputs' shapes;
 * forward() writes n->val; backward() adds into in[i]->grad where non-NULL. */
typedef struct ds_op {
    const char *name;
    int (*shape)(struct ds_node *n);
    void (*forward)(struct ds_node *n, struct ds_graph *g);
    void (*backward)(struct ds_node *n, struct ds_graph *g);
} ds_op;

#define DS_MAX_IP 20
#define DS_MAX_FP 4

struct ds_node {
    int id;
    ds_node_kind kind;
    const ds_op *op;      /* NULL for leaves */
    struct ds_node **in;
    int n_in;
    char *name;
    ds_shape shape;
    ds_device device;
    float *val;
    float *grad;          /* NULL when no gradient flows here */
    float *grad_planned;  /* the gradient buffer compile gave it (ds_graph_freeze
                             sets grad NULL, and back, while it is frozen) */
    size_t cap;           /* elements allocated for val/grad (compiled batch) */
    size_t aux_cap;
    bool requires_grad;   /* leaves: params always, inputs on request */
    bool needs_grad;      /* computed at compile */
    /* backward: bit k set when this op's backward can write (not add to)
     * in[k]->grad whole; it then does so when in[k]->grad_fresh, which the
     * graph sets instead of zeroing that gradient first (set in shape()) */
    unsigned grad_overwrites;
    bool grad_fresh;
    bool keep;            /* inference plan: the value outlives its consumers */
    /* a relu fused into its producer (conv, linear, batchnorm; compile does
     * it when the relu is the producer's only consumer): the producer stores
     * max(0, ·) and the relu node shares its value and gradient */
    bool fused_relu;      /* on the producer */
    /* on the producer: its backward applies the fused relu's mask (y > 0)
     * to dy as it reads it, and the relu's backward does nothing */
    bool relu_mask_in_backward;
    /* set by the op's shape rule and read by compile when it fuses relus,
     * so that the graph names no op: is_relu on a relu; fuses_relu on a
     * producer that can store max(0, ·) itself (its backward reads only its
     * inputs, never its output: conv2d, linear, batchnorm, add, sub, mul);
     * masks_relu when its backward can also apply the relu's mask to dy */
    bool is_relu, fuses_relu, masks_relu;
    /* set by the shape rule of an op whose backward writes its input's
     * gradient only where one element of the input was chosen (max
     * pooling): it can apply a fused relu's mask there itself. Compile sets
     * relu_input_masked on such a consumer and masked_by_consumer on the relu
     * when the relu (fused into its producer) has no other consumer: the
     * relu's backward pass over the gradient is skipped. */
    bool masks_relu_input, relu_input_masked, masked_by_consumer;
    struct ds_node *alias; /* on the relu: the producer whose buffers it shares */
    /* batch norm: folds_into_add set by its shape rule; folded by compile
     * when a residual add applies it and shares its buffers (the add's
     * alias; src/ops/bn_add.h): its forward then only takes statistics */
    bool folds_into_add, folded;
    /* set by reshape's shape rule: compile makes it an alias of its input
     * (a view, nothing copied) when nothing else reads that input */
    bool is_view;
    /* a leaky relu (slope in (0, 1]) fused like a relu into a producer that
     * sets fuses_leaky: it stores max(v, slope·v), fused_slope on it (0: a relu) */
    bool is_leaky, fuses_leaky;
    float fused_slope;
    ds_init init;
    int ip[DS_MAX_IP];    /* op integer parameters */
    float fp[DS_MAX_FP];  /* op float parameters */
    float *cdata;         /* op constant data owned by the node (class weights) */
    int cdata_n;
    void *aux;            /* per-node state kept from forward to backward */
    size_t aux_bytes;
    /* a copy the forward makes that the backward can reuse (a convolution's
     * padded input): allocated only where gradients are planned, else NULL */
    float *saved;
    size_t saved_bytes, saved_cap;
    size_t work_bytes;    /* scratch needed during forward/backward */
};

struct ds_graph {
    ds_node **nodes;
    int n_nodes, cap_nodes;
    ds_node **params;     /* params and buffers, creation order */
    int n_params, cap_params;
    ds_rng rng;
    bool compiled;
    bool training;
    int max_batch, batch;
    char *arena;
    size_t arena_bytes;
    float *work;          /* shared scratch, the largest work_bytes */
    size_t work_bytes;
    char *grad_lo, *grad_hi; /* non-leaf gradients, reset each backward */
    char *leafgrad_lo, *leafgrad_hi;
    char *paramgrad_hi;   /* [leafgrad_lo, paramgrad_hi): the trainable parameters' gradients, together */
    bool failed;          /* a build call failed; compile reports it */
    bool run_failed;      /* an op hit bad data during forward */
    unsigned char *mark;  /* per-node scratch flags for backward */
    char fail_msg[512];
    double *prof;         /* DS_PROFILE=1: seconds per node, [forward | backward] */
    bool inference;       /* planned for forward only: no gradients, values share memory */
    bool no_fuse;         /* ds_graph_set_fusion(g, 0): compile fuses no relu */
    bool param_grads_off; /* ds_graph_set_param_grads(g, 0): backward reaches the inputs only */
    int relu_backward;    /* DS_RELU_BACKWARD_*: the rule relu's backward applies */
    struct ds_comm *sync_bn; /* batch norm's statistics over every rank (NULL: this rank's) */
    int rows_before, rows_after; /* data-parallel: the global batch's rows around this rank's (dropout) */
};

/* v = max(0, v) in place, in parallel (a producer's fused relu). */
void ds_relu_inplace(float *v, size_t n);

/* Record an op node with inputs in[0..n) (NULL inputs are skipped). */
ds_node *ds_node_new(ds_graph *g, const ds_op *op, int n, ds_node **in);
/* Infer the new node's shape now (after ip/fp are set); NULL on error. */
ds_node *ds_node_finish(ds_graph *g, ds_node *n);
/* Fail unless input k of n is NCHW (4-D), naming both. */
int ds_require_nchw(const ds_node *n, int k);
/* Error inside an op's shape rule, naming the node. */
int ds_shape_fail(const ds_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bad data met while running an op (e.g. a label out of range): recorded on
 * the graph, reported by ds_graph_forward. Only the first one is kept. */
void ds_op_error(ds_graph *g, const ds_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parameter initialisation (used by compile). */
void ds_init_fill(float *v, ds_shape s, ds_init init, ds_rng *r);

/* sgemm, row-major: C = alpha·op(A)·op(B) + beta·C (src/kernels/cpu/gemm.c). */
void ds_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc);

/* The general product C [m×n] = A·B [m×k · k×n] whose operands pack
 * themselves, so that a convolution can feed the kernel straight from the
 * image (implicit im2col) and write straight into NCHW with its bias.
 * An operand is read as element (k, j): for A, j is a row of C; for B, a
 * column. pack copies rows [k0, k0+kc) and columns [j0, j0+w) into
 * d[k·ld + (j − j0)], zeroing columns w..ld−1. ds_mat_dense reads
 * p[k·sk + j·sj]. */
typedef struct ds_mat ds_mat;
struct ds_mat {
    void (*pack)(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld);
    const float *p;
    long sk, sj;
};
void ds_mat_dense(const ds_mat *m, int k0, int kc, int j0, int w, float *d, int ld);

/* Where the product goes: C = alpha·A·B + beta·C (+ bias[i] on row i when
 * bias is set). Columns come in segments of seg columns, segment s of row
 * i starting at c + s·seg_stride + i·ldc: a plain matrix has one segment
 * (seg ≥ n); an NCHW output has seg = H·W, ldc = H·W (channels are rows)
 * and seg_stride = C·H·W (one segment per sample). */
typedef struct ds_out {
    float *c;
    long ldc, seg, seg_stride;
    float alpha, beta;
    const float *bias;
} ds_out;
void ds_gemm_ex(int m, int n, int k, const ds_mat *a, const ds_mat *b, const ds_out *c);

/* The micro-kernel alone, for products whose B rows are shifted copies of one
 * array (stride-1 convolutions): the tile is MR×NR (ds_gemm_mr/nr). A [m×k]
 * (row stride lda) is packed by ds_pack_panels into ceil(m/MR) panels of
 * k×MR; ds_tile_shifted sets (add: adds to) t[i·NR + j] =
 * Σ_k a[k·MR + i]·(bit j of mask[k] ? x[off[k] + j] : 0); t is 64-byte
 * aligned; x ± NR floats must be readable. */
/* C [m×n] = A [m×k] · B [n×k]ᵀ (+ bias[j]) + beta·C by streamed dot products,
 * without packing: for thin products (few rows or few columns). */
void ds_gemm_nt(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc, const float *bias);

/* Thin products (ds_gemm_thin, ds_gemm_nt with small weights) below this
 * many multiply-adds run on the calling thread alone: the pool's wake-up
 * and join cost more than a second core saves on data already in cache. */
#define DS_GEMM_SERIAL_MACS (1L << 20)

/* C [m×n] = alpha·op(A)·B + beta·C for m ≤ DS_GEMM_THIN_M, B [k×n] row-major,
 * nothing packed (src/kernels/cpu/gemm_thin.c); ds_gemm calls it itself. */
#define DS_GEMM_THIN_M 12
void ds_gemm_thin(bool ta, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *c, int ldc);

/* C [m×n] = alpha·op(A)·B + beta·C (+ bias[j] on column j when bias is set),
 * B [k×n] row-major, both read in place, nothing packed but edge tiles
 * (src/kernels/cpu/gemm_direct.c): for products too small to repay packing
 * (the RBM). b must hold k·ldb floats (columns n..ldb−1 are read, not
 * used). epi, when set, gets each finished rows×cols tile of C at (i0, j0)
 * once its sum is complete (e.g. to apply an activation in cache). The
 * same sums, in the same order, as ds_gemm's packed path (m > 12 rows). */
typedef void (*ds_tile_fn)(void *ctx, float *c, long ldc, int rows, int cols, int i0, int j0);
void ds_gemm_direct(bool ta, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                    float beta, float *c, int ldc, const float *bias, ds_tile_fn epi, void *ctx);
/* A [m × k] (row stride lda) as the column indices of its ones, per row
 * and per block of 256 of k, each relative to its block's start: row i's
 * ones of block p are idx[start[i·nb + p] .. start[i·nb + p + 1]),
 * nb = ⌈k/256⌉; then start[m·nb + 1 + p·m ..] holds the rows in order of
 * their count of ones in block p (the product sums rows of like counts
 * together). idx holds m·k + 16 ints, start 2·m·nb + 1. Returns the number
 * of ones, or −1 (lists unusable) when a value is not exactly 0 or 1 or
 * m·k + 16 exceeds an int. */
int ds_binary_index(int m, int k, const float *a, int lda, int *idx, int *start);
/* ds_gemm_direct (not transposed) for a 0/1 A given by ds_binary_index:
 * the same bits, by adds of the selected rows of B, for B finite */
void ds_gemm_binary(int m, int n, int k, float alpha, const int *idx, const int *start, const float *b, int ldb,
                    float beta, float *c, int ldc, const float *bias, ds_tile_fn epi, void *ctx);
/* dst [cols × rows] (row stride ldd) = src [rows × cols]ᵀ (row stride lds), in parallel. */
void ds_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd);

int ds_gemm_mr(void);
int ds_gemm_nr(void);
void ds_pack_panels(int m, int k, const float *a, long lda, float *d);
void ds_tile_shifted(int kc, const float *a, const float *x, const int32_t *off, const uint32_t *mask, float *t,
                     bool add);


/* Run fn(arg, lo, hi) over contiguous grains of [0, n) (at least
 * min_per_thread items each, 4 per thread), taken in turn by the threads of
 * the pool and the caller; serial when n is below 2·min_per_thread, inside
 * another parallel_for, or with one thread. */
void ds_parallel_for(long n, long min_per_thread, void (*fn)(void *arg, long lo, long hi), void *arg);
/* The same with per_thread grains per thread (ds_parallel_for: 4); fewer
 * grains when each has a cost of its own (a GEMM part packs its operands). */
void ds_parallel_for_grains(long n, long min_per_thread, int per_thread,
                            void (*fn)(void *arg, long lo, long hi), void *arg);
/* Threads of the pool: $DS_NUM_THREADS, else $OMP_NUM_THREADS, else the CPUs online. */
int ds_num_threads(void);
/* fn(thread) runs on every pool thread as it starts (0: the thread that
 * starts the pool, 1..n−1 the workers), so per-thread state is made before
 * the first job, not inside a step; e.g. GEMM's packing buffers. Up to 8,
 * registered before the pool starts (from a constructor); -1 after that or
 * when full. The pool itself knows nothing of its users. */
int ds_pool_set_thread_start(void (*fn)(int thread));

/* True for a batch-norm op node (its in[1], in[2] are γ and β). */
bool ds_is_batchnorm(const ds_node *n);

/* The optimizer's kind (checkpoints record it next to the moments). */
ds_optim_kind ds_optim_kind_of(const ds_optim *o);

static inline size_t ds_numel(const ds_node *n) { return ds_shape_numel(n->shape); }

#define DS_ALIGN 64
static inline size_t ds_align_up(size_t x) { return (x + DS_ALIGN - 1) & ~(size_t)(DS_ALIGN - 1); }

#endif
