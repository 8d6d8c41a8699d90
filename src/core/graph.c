/* graph.c — building, compiling and running the static graph.
 *
 * Nodes are recorded in creation order, which is already a topological
 * order (an op's inputs exist before it). Shapes are inferred when a node is
 * recorded, so a mismatch is reported at the call that made it, and again
 * whenever the batch size changes. compile() lays every buffer out in one
 * arena:
 *
 *   [leaf values][leaf grads][op values][op grads][aux][scratch]
 *
 * and the hot path (forward, backward, optimizer step) never allocates.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ds_graph *ds_graph_new(uint64_t seed)
{
    ds_graph *g = calloc(1, sizeof *g);
    if (!g) {
        ds_fail("out of memory");
        return NULL;
    }
    ds_rng_seed(&g->rng, seed);
    g->training = true;
    return g;
}

/* DS_PROFILE=1: time each op's forward and backward; the table goes to
 * stderr when the graph is freed, slowest first. */
static void prof_report(const ds_graph *g)
{
    double total = 0;
    int *order = malloc(sizeof(int) * (size_t)g->n_nodes);
    if (!order) return;
    for (int i = 0; i < g->n_nodes; i++) order[i] = i, total += g->prof[i] + g->prof[g->n_nodes + i];
    for (int i = 1; i < g->n_nodes; i++) /* insertion sort by total time */
        for (int j = i; j > 0; j--) {
            double a = g->prof[order[j]] + g->prof[g->n_nodes + order[j]];
            double b = g->prof[order[j - 1]] + g->prof[g->n_nodes + order[j - 1]];
            if (a <= b) break;
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    fprintf(stderr, "profile (DS_PROFILE): %-24s %-18s %10s %10s %6s\n", "node", "op", "fwd s", "bwd s", "%");
    for (int k = 0; k < g->n_nodes; k++) {
        int i = order[k];
        double f = g->prof[i], b = g->prof[g->n_nodes + i];
        if (f + b <= 0) continue;
        fprintf(stderr, "profile (DS_PROFILE): %-24s %-18s %10.4f %10.4f %6.1f\n", g->nodes[i]->name,
                g->nodes[i]->op->name, f, b, total > 0 ? 100 * (f + b) / total : 0);
    }
    free(order);
}

void ds_graph_free(ds_graph *g)
{
    if (!g) return;
    if (g->prof) {
        prof_report(g);
        free(g->prof);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        free(n->in);
        free(n->name);
        free(n->cdata);
        free(n);
    }
    free(g->nodes);
    free(g->params);
    free(g->mark);
    free(g->arena);
    free(g);
}

static void graph_failed(ds_graph *g)
{
    if (!g->failed) {
        g->failed = true;
        snprintf(g->fail_msg, sizeof g->fail_msg, "%s", ds_last_error());
    }
}

static ds_node *push_node(ds_graph *g, ds_node *n)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        ds_node **p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        g->nodes = p;
        g->cap_nodes = cap;
    }
    n->id = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return n;
}

static ds_node *leaf(ds_graph *g, ds_node_kind kind, const char *name, ds_shape shape,
                     ds_init init)
{
    if (!g) {
        ds_fail("graph is NULL");
        return NULL;
    }
    if (g->compiled) {
        ds_fail("cannot add '%s': the graph is already compiled", name ? name : "?");
        graph_failed(g);
        return NULL;
    }
    if (!name || !*name) {
        ds_fail("every input, parameter and buffer needs a name");
        graph_failed(g);
        return NULL;
    }
    if (ds_graph_find(g, name)) {
        ds_fail("duplicate node name '%s'", name);
        graph_failed(g);
        return NULL;
    }
    if (shape.ndim < 1 || shape.ndim > DS_MAX_DIMS) {
        ds_fail("'%s': rank %d is outside 1..%d", name, shape.ndim, DS_MAX_DIMS);
        graph_failed(g);
        return NULL;
    }
    for (int i = 0; i < shape.ndim; i++)
        if (shape.d[i] < 1) {
            char b[96];
            ds_fail("'%s': bad shape %s", name, ds_shape_str(shape, b, sizeof b));
            graph_failed(g);
            return NULL;
        }
    ds_node *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(name)) || !push_node(g, n)) {
        if (n) free(n->name);
        free(n);
        ds_fail("out of memory");
        return NULL;
    }
    n->kind = kind;
    n->shape = shape;
    n->init = init;
    n->requires_grad = kind == DS_NODE_PARAM;
    if (kind == DS_NODE_PARAM || kind == DS_NODE_BUFFER) {
        if (g->n_params == g->cap_params) {
            int cap = g->cap_params ? 2 * g->cap_params : 32;
            ds_node **p = realloc(g->params, (size_t)cap * sizeof *p);
            if (!p) {
                ds_fail("out of memory");
                return NULL;
            }
            g->params = p;
            g->cap_params = cap;
        }
        g->params[g->n_params++] = n;
    }
    return n;
}

ds_node *ds_input(ds_graph *g, const char *name, ds_shape shape)
{
    ds_node *n = leaf(g, DS_NODE_INPUT, name, shape, (ds_init){DS_INIT_ZEROS, 0, 0});
    if (n && (g->max_batch == 0 || shape.d[0] > g->max_batch)) g->max_batch = shape.d[0];
    return n;
}

ds_node *ds_param(ds_graph *g, const char *name, ds_shape shape, ds_init init)
{
    return leaf(g, DS_NODE_PARAM, name, shape, init);
}

ds_node *ds_buffer(ds_graph *g, const char *name, ds_shape shape, ds_init init)
{
    return leaf(g, DS_NODE_BUFFER, name, shape, init);
}

void ds_node_set_requires_grad(ds_node *n, int on)
{
    if (n && n->kind == DS_NODE_INPUT) n->requires_grad = on != 0;
}

int ds_shape_fail(const ds_node *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_fail("%s '%s': %s", n->op ? n->op->name : "node", n->name ? n->name : "?", msg);
}

int ds_require_nchw(const ds_node *n, int k)
{
    char s[96];
    if (n->in[k]->shape.ndim == 4) return 0;
    return ds_shape_fail(n, "input '%s' is %s; expected [N, C, H, W]", n->in[k]->name,
                         ds_shape_str(n->in[k]->shape, s, sizeof s));
}

ds_node *ds_node_new(ds_graph *g, const ds_op *op, int n_in, ds_node **in)
{
    if (!g) {
        ds_fail("graph is NULL");
        return NULL;
    }
    if (g->failed) return NULL; /* an earlier call failed: keep its message */
    if (g->compiled) {
        ds_fail("cannot add a %s node: the graph is already compiled", op->name);
        graph_failed(g);
        return NULL;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            ds_fail("%s: input %d is NULL", op->name, i);
            graph_failed(g);
            return NULL;
        }
    ds_node *n = calloc(1, sizeof *n);
    char nm[64];
    snprintf(nm, sizeof nm, "%s_%d", op->name, g->n_nodes);
    if (!n || !(n->in = malloc((size_t)(n_in ? n_in : 1) * sizeof *n->in)) ||
        !(n->name = strdup(nm)) || !push_node(g, n)) {
        if (n) {
            free(n->in);
            free(n->name);
        }
        free(n);
        ds_fail("out of memory");
        return NULL;
    }
    n->kind = DS_NODE_OP;
    n->op = op;
    n->n_in = n_in;
    memcpy(n->in, in, (size_t)n_in * sizeof *in);
    return n;
}

/* Builders call this after filling ip/fp: infer the shape now so that the
 * error points at the call that made the mismatch. */
ds_node *ds_node_finish(ds_graph *g, ds_node *n)
{
    if (!n) return NULL;
    if (n->op->shape(n) != 0) {
        graph_failed(g);
        return NULL;
    }
    return n;
}

int ds_node_set_name(ds_node *n, const char *name)
{
    if (!n || !name || !*name) return ds_fail("ds_node_set_name: empty name");
    char *s = strdup(name);
    if (!s) return ds_fail("out of memory");
    free(n->name);
    n->name = s;
    return 0;
}

/* ---- compile ---- */

static int infer_all(ds_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        if (n->kind != DS_NODE_OP) continue;
        if (n->op->shape(n) != 0) return -1;
        if (g->compiled && (ds_numel(n) > n->cap || n->aux_bytes > n->aux_cap ||
                            (n->saved && n->saved_bytes > n->saved_cap) ||
                            n->work_bytes > g->work_bytes))
            return ds_shape_fail(n, "needs more memory than compiled for");
    }
    return 0;
}

/* Inference plan: op values share memory by liveness. Node i's value lives
 * from i to its last consumer (for ever for sinks and kept nodes); a value
 * takes the smallest dead slot that holds it, or a new one. An op never
 * shares with its inputs: they are alive while it runs. */
static int plan_values(ds_graph *g, size_t **out, size_t *bytes)
{
    int n = g->n_nodes, nslots = 0;
    int *last = malloc(sizeof(int) * (size_t)n), *busy = malloc(sizeof(int) * (size_t)n);
    size_t *off = malloc(sizeof(size_t) * (size_t)n), *soff = malloc(sizeof(size_t) * (size_t)n);
    size_t *ssize = malloc(sizeof(size_t) * (size_t)n), end = 0;
    if (!last || !busy || !off || !soff || !ssize) {
        free(last), free(busy), free(off), free(soff), free(ssize);
        return ds_fail("out of memory planning the graph");
    }
    for (int i = 0; i < n; i++) last[i] = -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (last[g->nodes[i]->in[j]->id] < i) last[g->nodes[i]->in[j]->id] = i;
    for (int i = 0; i < n; i++) { /* an add a batch norm is folded into reads the batch norm's input */
        ds_node *v = g->nodes[i];
        if (v->alias && v->alias->folded && last[v->alias->in[0]->id] < i) last[v->alias->in[0]->id] = i;
    }
    for (int i = n - 1; i >= 0; i--) { /* a fused relu's value lives in its producer's slot */
        ds_node *v = g->nodes[i];
        if (v->kind == DS_NODE_OP && (last[i] < 0 || v->keep)) last[i] = n; /* sinks and kept values stay */
        if (v->alias && last[v->alias->id] < last[i]) last[v->alias->id] = last[i];
    }
    for (int i = 0; i < n; i++) {
        ds_node *v = g->nodes[i];
        off[i] = 0;
        if (v->kind != DS_NODE_OP || v->alias) continue;
        size_t need = ds_align_up(ds_numel(v) * sizeof(float));
        int best = -1;
        for (int k = 0; k < nslots; k++)
            if (busy[k] < i && ssize[k] >= need && (best < 0 || ssize[k] < ssize[best])) best = k;
        if (best < 0) {
            best = nslots++;
            soff[best] = end, ssize[best] = need;
            end += need;
        }
        busy[best] = last[i];
        off[i] = soff[best];
    }
    free(last), free(busy), free(soff), free(ssize);
    *out = off;
    *bytes = end;
    return 0;
}

/* A relu whose input is a conv, dense, batch-norm or add/sub/mul output
 * that nothing else reads is fused into it (DS_NO_FUSE=1 turns this off): the producer
 * stores max(0, ·) and the relu shares its buffers, saving a pass over the
 * activation, its memory, and a pass over its gradient. */
static void fuse_relus(ds_graph *g)
{
    const char *off = getenv("DS_NO_FUSE");
    if (g->no_fuse || (off && *off && strcmp(off, "0") != 0)) return;
    int *uses = calloc((size_t)g->n_nodes + 1, sizeof *uses);
    if (!uses) return; /* an optimisation: without memory, run unfused */
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++) uses[g->nodes[i]->in[j]->id]++;
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *r = g->nodes[i], *c = r->n_in == 1 ? r->in[0] : NULL;
        if (r->kind != DS_NODE_OP || !(r->is_relu || r->is_leaky) || !c || c->kind != DS_NODE_OP ||
            uses[c->id] != 1 || c->keep || c->fused_relu || ds_numel(c) != ds_numel(r))
            continue;
        /* producers whose backward reads their inputs, never their own output */
        if (!c->fuses_relu || (r->is_leaky && !c->fuses_leaky)) continue;
        c->fused_relu = true;
        c->fused_slope = r->is_leaky ? r->fp[0] : 0;
        r->alias = c;
        /* batch norm (AVX-512) and same-shape add mask dy themselves: one
         * pass over the gradient fewer */
        c->relu_mask_in_backward = c->masks_relu && !r->is_leaky;
    }
    /* a reshape of an op's value that nothing else reads is a view of it (shape.c) */
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *v = g->nodes[i], *c = v->n_in == 1 ? v->in[0] : NULL;
        if (v->kind == DS_NODE_OP && v->is_view && c && c->kind == DS_NODE_OP && uses[c->id] == 1 && !c->keep)
            v->alias = c;
    }
    /* a max pool whose input is such a relu, read by nothing else, masks
     * the gradient where it writes it (everywhere else it is 0) */
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *m = g->nodes[i], *r = m->n_in >= 1 ? m->in[0] : NULL;
        if (m->kind != DS_NODE_OP || !m->masks_relu_input || !r || !r->is_relu || !r->alias || uses[r->id] != 1 ||
            r->keep || r->alias->relu_mask_in_backward)
            continue;
        m->relu_input_masked = true;
        r->masked_by_consumer = true;
    }
    /* a batch norm read only by a same-shape add (a residual block's end) is
     * applied by the add (src/ops/bn_add.h): the add shares its buffers */
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *a = g->nodes[i];
        if (a->kind != DS_NODE_OP || !a->masks_relu || a->alias || a->n_in != 2) continue;
        for (int j = 0; j < 2; j++) {
            ds_node *b = a->in[j];
            if (!b->folds_into_add || uses[b->id] != 1 || b->keep || b->fused_relu || b->alias || b->folded ||
                a->in[1 - j] == b || ds_numel(b) != ds_numel(a))
                continue;
            b->folded = true;
            /* its value is the add's (not its own): marked as a fused
             * producer's, so that Grad-CAM (explain.c) passes it over */
            b->fused_relu = true;
            a->alias = b;
            break;
        }
    }
    free(uses);
}

int ds_graph_plan_inference(ds_graph *g)
{
    if (!g) return ds_fail("graph is NULL");
    if (g->compiled) return ds_fail("plan the graph for inference before compiling it");
    g->inference = true;
    return 0;
}

void ds_node_keep(ds_node *n)
{
    if (n) n->keep = true;
}

/* The arena compile() lays out: the five regions' offsets r[0..5], the
 * scratch size, the total and the inference plan (*planned, malloc'd, or
 * NULL). Shapes, relu fusion and which nodes need gradients are settled
 * here; nothing the size of a tensor is allocated. */
static int layout(ds_graph *g, size_t **planned, size_t r[6], size_t *work, size_t *total)
{
    if (infer_all(g) != 0) return -1;
    g->batch = g->max_batch;

    fuse_relus(g);
    /* which nodes carry a gradient */
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        n->needs_grad = n->requires_grad && !g->inference;
        for (int j = 0; j < n->n_in; j++) n->needs_grad |= n->in[j]->needs_grad;
    }
    size_t planned_bytes = 0;
    *planned = NULL;
    if (g->inference && plan_values(g, planned, &planned_bytes) != 0) return -1;

    /* layout: five regions, each buffer 64-byte aligned */
    size_t off = 0;
    for (int pass = 0; pass < 5; pass++) {
        r[pass] = off;
        for (int i = 0; i < g->n_nodes; i++) {
            ds_node *n = g->nodes[i];
            bool is_leaf = n->kind != DS_NODE_OP;
            size_t bytes = ds_numel(n) * sizeof(float);
            if (n->alias) continue; /* shares its producer's buffers */
            if ((pass == 0 && is_leaf) || (pass == 2 && !is_leaf && !*planned)) off += ds_align_up(bytes);
            if ((pass == 1 && is_leaf && n->needs_grad) || (pass == 3 && !is_leaf && n->needs_grad))
                off += ds_align_up(bytes);
            if (pass == 4) off += ds_align_up(n->aux_bytes) + (n->needs_grad ? ds_align_up(n->saved_bytes) : 0);
        }
        if (pass == 2 && *planned) off += planned_bytes;
    }
    r[5] = off;
    *work = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->work_bytes > *work) *work = g->nodes[i]->work_bytes;
    *total = off + ds_align_up(*work);
    return 0;
}

int ds_graph_plan_bytes(ds_graph *g, size_t *bytes)
{
    if (!g || !bytes) return ds_fail("ds_graph_plan_bytes: graph and bytes are required");
    if (g->failed) return ds_fail("%s", g->fail_msg);
    if (g->compiled) {
        *bytes = g->arena_bytes;
        return 0;
    }
    size_t *planned, r[6], work;
    int rc = layout(g, &planned, r, &work, bytes);
    free(planned);
    return rc;
}

size_t ds_memory_limit(void)
{
    const char *env = getenv("DS_MEMORY_LIMIT");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        double unit = *end == 'K' || *end == 'k' ? 1e3 : *end == 'M' || *end == 'm' ? 1e6
                    : *end == 'G' || *end == 'g' ? 1e9 : 1;
        if (v > 0 && v * unit < 1.8e19) return (size_t)(v * unit);
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
}

int ds_graph_compile(ds_graph *g)
{
    if (!g) return ds_fail("graph is NULL");
    if (g->failed) return ds_fail("%s", g->fail_msg);
    if (g->compiled) return 0;
    size_t *planned = NULL, r[6], work, off;
    if (layout(g, &planned, r, &work, &off) != 0) return -1;
    /* refused with the number before allocating (and zero-filling) what cannot fit */
    size_t limit = ds_memory_limit();
    if (off > limit) {
        free(planned);
        return ds_fail("the graph needs %.4g GB of memory at batch %d (values%s, workspace) but %s %.4g GB; use a "
                       "smaller batch or model", off / 1e9, g->max_batch, g->inference ? "" : ", gradients",
                       getenv("DS_MEMORY_LIMIT") && *getenv("DS_MEMORY_LIMIT") ? "DS_MEMORY_LIMIT is"
                                                                               : "this machine has",
                       limit / 1e9);
    }

    g->arena = aligned_alloc(DS_ALIGN, off ? off : DS_ALIGN);
    g->mark = calloc((size_t)g->n_nodes + 1, 1);
    if (!g->arena || !g->mark) {
        free(planned);
        return ds_fail("out of memory allocating a %zu-byte arena", off);
    }
    memset(g->arena, 0, off);
    g->arena_bytes = off;

    size_t p[5] = {r[0], r[1], r[2], r[3], r[4]};
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        bool is_leaf = n->kind != DS_NODE_OP;
        size_t bytes = ds_align_up(ds_numel(n) * sizeof(float));
        int v = is_leaf ? 0 : 2;
        if (n->alias) { /* created after its producer: those buffers are set */
            n->val = n->alias->val;
            n->grad = n->needs_grad ? n->alias->grad : NULL;
            n->cap = ds_numel(n);
            n->aux_cap = 0;
            continue;
        }
        if (planned && !is_leaf) {
            n->val = (float *)(g->arena + r[2] + planned[i]);
        } else {
            n->val = (float *)(g->arena + p[v]);
            p[v] += bytes;
        }
        if (n->needs_grad && (!is_leaf || n->kind == DS_NODE_PARAM)) { /* input gradients after all parameters' */
            n->grad = (float *)(g->arena + p[v + 1]);
            p[v + 1] += bytes;
        }
        n->cap = ds_numel(n);
        if (n->aux_bytes) {
            n->aux = g->arena + p[4];
            p[4] += ds_align_up(n->aux_bytes);
        }
        n->aux_cap = n->aux_bytes;
        n->saved = NULL;
        if (n->needs_grad && n->saved_bytes) {
            n->saved = (float *)(g->arena + p[4]);
            p[4] += ds_align_up(n->saved_bytes);
        }
        n->saved_cap = n->saved_bytes;
    }
    g->paramgrad_hi = g->arena + p[1];
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        if (n->alias || n->kind == DS_NODE_OP || n->kind == DS_NODE_PARAM || !n->needs_grad) continue;
        n->grad = (float *)(g->arena + p[1]);
        p[1] += ds_align_up(ds_numel(n) * sizeof(float));
    }
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->grad_planned = g->nodes[i]->grad;
    g->leafgrad_lo = g->arena + r[1];
    g->leafgrad_hi = g->arena + r[2];
    g->grad_lo = g->arena + r[3];
    g->grad_hi = g->arena + r[4];
    g->work = (float *)(g->arena + r[5]);
    g->work_bytes = work;
    free(planned);

    for (int i = 0; i < g->n_params; i++)
        ds_init_fill(g->params[i]->val, g->params[i]->shape, g->params[i]->init, &g->rng);
    const char *prof = getenv("DS_PROFILE");
    free(g->prof);
    g->prof = prof && atoi(prof) > 0 ? calloc(2 * (size_t)g->n_nodes, sizeof(double)) : NULL;
    g->compiled = true;
    return 0;
}

int ds_graph_set_batch(ds_graph *g, int n)
{
    if (!g->compiled) return ds_fail("set_batch: compile the graph first");
    if (n < 1 || n > g->max_batch)
        return ds_fail("batch %d is outside 1..%d (the compiled batch)", n, g->max_batch);
    if (n == g->batch) return 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->kind == DS_NODE_INPUT) g->nodes[i]->shape.d[0] = n;
    g->batch = n;
    return infer_all(g);
}

int ds_graph_batch(const ds_graph *g) { return g->batch; }
void ds_graph_set_training(ds_graph *g, int on) { g->training = on != 0; }
int ds_graph_training(const ds_graph *g) { return g->training; }

int ds_graph_forward(ds_graph *g)
{
    if (!g->compiled) return ds_fail("forward: compile the graph first");
    g->run_failed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *n = g->nodes[i];
        if (n->kind == DS_NODE_OP) {
            double t = g->prof ? ds_now() : 0;
            n->op->forward(n, g);
            if (g->prof) g->prof[i] += ds_now() - t;
        }
        if (g->run_failed) return -1;
    }
    return 0;
}

void ds_op_error(ds_graph *g, const ds_node *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (g->run_failed) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ds_fail("%s '%s': %s", n->op ? n->op->name : "node", n->name, msg);
    g->run_failed = true;
}

/* one node's gradient, in 16 KiB pieces over the threads */
static void zero_range(void *arg, long lo, long hi)
{
    ds_node *u = arg;
    size_t n = ds_numel(u), a = (size_t)lo << 12, b = (size_t)hi << 12;
    if (b > n) b = n;
    if (a < b) memset(u->grad + a, 0, (b - a) * sizeof(float));
}

static void zero_grad_of(ds_node *u)
{
    ds_parallel_for((long)(ds_numel(u) >> 12) + 1, 16, zero_range, u);
}

int ds_graph_backward(ds_graph *g, ds_node *out, const float *dout)
{
    if (!g->compiled) return ds_fail("backward: compile the graph first");
    if (!out || !out->grad)
        return ds_fail("backward: no gradient flows to '%s' (no parameter or input "
                       "that requires grad feeds it)",
                       out ? out->name : "NULL");
    size_t n = ds_numel(out);
    if (!dout && n != 1)
        return ds_fail("backward: '%s' has %zu elements; pass dout for a non-scalar output",
                       out->name, n);
    /* A non-leaf gradient is made ready just before its first consumer's
     * backward runs: zeroed, or, when that op writes it whole
     * (grad_overwrites), only marked fresh. mark: 1 reachable, 2 ready. */
    memset(g->mark, 0, (size_t)g->n_nodes);
    if (out->kind != DS_NODE_OP) memset(out->grad, 0, n * sizeof(float));
    if (out->kind == DS_NODE_OP)
        for (size_t i = 0; i < n; i++) out->grad[i] = dout ? dout[i] : 1.0f;
    else
        for (size_t i = 0; i < n; i++) out->grad[i] += dout ? dout[i] : 1.0f;
    g->mark[out->id] = 3;
    for (int i = out->id; i >= 0; i--) {
        ds_node *v = g->nodes[i];
        if (!g->mark[i] || v->kind != DS_NODE_OP || !v->needs_grad) continue;
        for (int j = 0; j < v->n_in; j++) {
            ds_node *u = v->in[j];
            g->mark[u->id] |= 1;
            if (!u->grad || u->kind != DS_NODE_OP || (g->mark[u->id] & 2)) continue;
            g->mark[u->id] |= 2;
            bool once = true;
            for (int k = 0; k < v->n_in; k++) once &= k == j || v->in[k] != u;
            if ((v->grad_overwrites >> j & 1) && once) u->grad_fresh = true;
            else zero_grad_of(u);
        }
        double t = g->prof ? ds_now() : 0;
        v->op->backward(v, g);
        if (g->prof) g->prof[g->n_nodes + i] += ds_now() - t;
        for (int j = 0; j < v->n_in; j++) v->in[j]->grad_fresh = false;
    }
    /* gradients nothing wrote read as zeros (saliency tools read any node's) */
    for (int i = 0; i < g->n_nodes; i++) {
        ds_node *u = g->nodes[i];
        if (u->kind == DS_NODE_OP && u->grad && !(g->mark[i] & 2)) zero_grad_of(u);
    }
    return 0;
}

void ds_graph_zero_grad(ds_graph *g)
{
    if (g->compiled) memset(g->leafgrad_lo, 0, (size_t)(g->leafgrad_hi - g->leafgrad_lo));
}

int ds_graph_grad_spans(const ds_graph *g, ds_span *spans, int max)
{
    if (!g || !g->compiled || max < 1 || g->paramgrad_hi == g->leafgrad_lo) return 0;
    /* the padding between parameters is zeros that nothing writes: harmless in sums and scalings */
    spans[0] = (ds_span){(float *)g->leafgrad_lo, (size_t)(g->paramgrad_hi - g->leafgrad_lo) / sizeof(float)};
    return 1;
}

/* ---- access ---- */

ds_node *ds_graph_find(const ds_graph *g, const char *name)
{
    for (int i = 0; g && name && i < g->n_nodes; i++)
        if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

int ds_graph_num_nodes(const ds_graph *g) { return g->n_nodes; }
ds_node *ds_graph_node(const ds_graph *g, int i) { return i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL; }
int ds_graph_num_params(const ds_graph *g) { return g->n_params; }
ds_node *ds_graph_param(const ds_graph *g, int i) { return i >= 0 && i < g->n_params ? g->params[i] : NULL; }
size_t ds_graph_arena_bytes(const ds_graph *g) { return g->arena_bytes; }
ds_rng *ds_graph_rng(ds_graph *g) { return &g->rng; }

const char *ds_node_name(const ds_node *n) { return n->name; }
const char *ds_node_op(const ds_node *n)
{
    static const char *kinds[] = {"op", "input", "param", "buffer"};
    return n->op ? n->op->name : kinds[n->kind];
}
ds_shape ds_node_shape(const ds_node *n) { return n->shape; }
size_t ds_node_numel(const ds_node *n) { return ds_numel(n); }
float *ds_node_value(ds_node *n) { return n->val; }
float *ds_node_grad(ds_node *n) { return n->grad; }
int ds_node_is_trainable(const ds_node *n) { return n->kind == DS_NODE_PARAM; }
int ds_node_is_state(const ds_node *n) { return n->kind == DS_NODE_PARAM || n->kind == DS_NODE_BUFFER; }

int ds_graph_set_sync_bn(ds_graph *g, struct ds_comm *comm)
{
    if (!g) return ds_fail("ds_graph_set_sync_bn: no graph");
    g->sync_bn = ds_comm_size(comm) > 1 ? comm : NULL;
    return 0;
}

void ds_graph_set_shard_rows(ds_graph *g, int before, int after)
{
    g->rows_before = before > 0 ? before : 0;
    g->rows_after = after > 0 ? after : 0;
}
