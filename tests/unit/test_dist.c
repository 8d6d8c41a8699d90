/* test_dist.c — what data-parallel training stands on, in one process:
 * the communicator's world of one (every collective the identity),
 * micro-batches (each batch as M parts whose gradients are summed, the sums
 * M ranks make) against plain steps, dropout drawing the whole batch's masks
 * whatever the part, batch norm keeping the first part's running update,
 * and the errors. tests/e2e/test_mpi.sh runs the same over 2 and 3 ranks. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 8, C = 1, H = 6, W = 6, K = 3, N = 32 };
#define SAMPLE (C * H * W)

/* smooth and without batch norm: M parts and one batch agree up to rounding */
static const char *MLP = "[net]\ninput = 1,6,6\nclasses = 3\n"
                         "[dense]\nunits = 10\nactivation = tanh\n"
                         "[dense]\nunits = 3\n"
                         "[train]\noptimizer = sgd\nlr = 0.1\nbatch = 8\n";
static const char *DROP = "[net]\ninput = 1,6,6\nclasses = 3\n"
                          "[dense]\nunits = 10\nactivation = tanh\n"
                          "[dropout]\np = 0.5\n"
                          "[dense]\nunits = 3\n";
static const char *BN = "[net]\ninput = 1,6,6\nclasses = 3\n"
                        "[conv]\nfilters = 2\nsize = 3\npad = 1\nbatch_normalize = 1\nactivation = relu\n"
                        "[global_avgpool]\n"
                        "[dense]\nunits = 3\n";

typedef struct {
    ds_model *m;
    ds_graph *g;
    ds_program p;
    ds_optim *o;
    ds_trainer *t;
} net;

static int build(net *n, const char *text, int batch, int micro, uint64_t seed)
{
    memset(n, 0, sizeof *n);
    n->m = ds_model_parse(text, "test");
    n->g = ds_graph_new(seed);
    if (!n->m || !n->g || ds_model_build_program(n->m, n->g, batch, &(ds_program_opts){0}, &n->p) != 0 ||
        ds_graph_compile(n->g) != 0)
        return -1;
    ds_optim_cfg oc = {.kind = DS_SGD, .lr = 0.1f, .momentum = 0.9f};
    if (!(n->o = ds_optim_new(n->g, &oc))) return -1;
    n->t = ds_trainer_new(&n->p, &n->o, 1, &(ds_trainer_cfg){.epochs = 1, .micro_batches = micro}, NULL);
    return n->t ? 0 : -1;
}

static void destroy(net *n)
{
    ds_trainer_free(n->t);
    ds_optim_free(n->o);
    ds_graph_free(n->g);
    ds_model_free(n->m);
}

static double max_rel(const ds_graph *a, const ds_graph *b)
{
    double worst = 0;
    for (int i = 0; i < ds_graph_num_params(a); i++) {
        ds_node *pa = ds_graph_param(a, i), *pb = ds_graph_param(b, i);
        for (size_t j = 0; j < ds_node_numel(pa); j++) {
            double d = fabs(ds_node_value(pa)[j] - ds_node_value(pb)[j]) / (fabs(ds_node_value(pa)[j]) + 1e-3);
            if (d > worst) worst = d;
        }
    }
    return worst;
}

static ds_dataset data(void)
{
    ds_dataset d = {.n = N, .sample = ds_shape_of(3, C, H, W), .classes = K};
    d.x = malloc(sizeof(float) * N * SAMPLE);
    d.y = malloc(sizeof(float) * N);
    ds_rng r;
    ds_rng_seed(&r, 5);
    ds_test_fill(d.x, N * SAMPLE, -1, 1, &r);
    for (int i = 0; i < N; i++) d.y[i] = (float)(i % K);
    return d;
}

static void test_world_of_one(void)
{
    ds_comm *w = ds_comm_world(NULL, NULL);
    CHECK(w && ds_comm_rank(w) == 0 && ds_comm_size(w) == 1);
    float v[3] = {1, 2, 3};
    double d[2] = {4, 5};
    CHECK(ds_comm_allreduce_sum(w, v, 3) == 0 && v[0] == 1 && v[2] == 3);
    CHECK(ds_comm_allreduce_f64(w, d, 2, DS_COMM_MAX) == 0 && d[1] == 5);
    CHECK(ds_comm_bcast(w, v, sizeof v, 0) == 0 && ds_comm_barrier(w) == 0);
    CHECK(ds_comm_set_ordered(w, 1) == 0 && ds_comm_allreduce_sum(w, v, 3) == 0 && v[1] == 2);
    CHECK(ds_comm_world(NULL, NULL) == w); /* idempotent */
    CHECK(ds_comm_backend() && ds_comm_backend()[0]);
    CHECK(ds_comm_size(NULL) == 1 && ds_comm_rank(NULL) == 0);
}

/* an epoch of M-part steps against plain steps: the same batches, losses and
 * accuracy to rounding, weights to 1e-5 */
static void test_micro_epoch(void)
{
    ds_dataset d = data();
    for (int micro = 2; micro <= 4; micro += 2) {
        net a, b;
        CHECK(build(&a, MLP, B, 1, 7) == 0 && build(&b, MLP, B / micro, micro, 7) == 0);
        ds_loader *la = ds_loader_new(&d, B, 1, 3), *lb = ds_loader_new(&d, B, 1, 3);
        ds_epoch_stats sa, sb;
        CHECK(ds_trainer_epoch(a.t, la, 1, &sa) == 0 && ds_trainer_epoch(b.t, lb, 1, &sb) == 0);
        CHECK(sa.samples == N && sb.samples == N);
        CHECK_NEAR(sa.loss, sb.loss, 1e-5 * fabs(sa.loss));
        CHECK(sa.accuracy == sb.accuracy);
        CHECK(max_rel(a.g, b.g) < 1e-5);
        ds_loader_free(la), ds_loader_free(lb);
        destroy(&a), destroy(&b);
    }
    /* a loader batch the parts cannot hold is an error, not an overrun */
    net c;
    CHECK(build(&c, MLP, 2, 2, 7) == 0);
    ds_loader *l = ds_loader_new(&d, B, 1, 3);
    ds_epoch_stats s;
    CHECK(ds_trainer_epoch(c.t, l, 1, &s) != 0 && strstr(ds_last_error(), "micro-batches"));
    ds_loader_free(l);
    destroy(&c);
    ds_dataset_free(&d);
}

/* dropout: each part draws the whole batch's masks and keeps its rows, so the
 * first step's loss is the plain step's, and so is the generator afterwards */
static void test_micro_dropout(void)
{
    ds_dataset d = data();
    net a, b;
    CHECK(build(&a, DROP, B, 1, 9) == 0 && build(&b, DROP, B / 2, 2, 9) == 0);
    ds_loader *la = ds_loader_new(&d, B, 1, 3), *lb = ds_loader_new(&d, B, 1, 3);
    ds_epoch_stats sa, sb;
    CHECK(ds_trainer_epoch(a.t, la, 1, &sa) == 0 && ds_trainer_epoch(b.t, lb, 1, &sb) == 0);
    CHECK_NEAR(sa.loss, sb.loss, 1e-5 * fabs(sa.loss));
    CHECK(max_rel(a.g, b.g) < 1e-5);
    ds_rng ra = *ds_graph_rng(a.g), rb = *ds_graph_rng(b.g);
    CHECK(ds_rng_uniform(&ra) == ds_rng_uniform(&rb));
    ds_loader_free(la), ds_loader_free(lb);
    destroy(&a), destroy(&b);
    ds_dataset_free(&d);
}

/* batch norm: a 2-part step's running statistics are those of a plain step
 * on the first part alone (as N ranks keep rank 0's) */
static void test_micro_bn(void)
{
    ds_dataset d = data();
    net a, b;
    CHECK(build(&a, BN, B / 2, 1, 11) == 0 && build(&b, BN, B / 2, 2, 11) == 0);
    ds_graph_set_training(a.g, 1), ds_graph_set_training(b.g, 1);
    memcpy(ds_node_value(a.p.feeds[0]), d.x, sizeof(float) * (B / 2) * SAMPLE);
    memcpy(ds_node_value(a.p.labels), d.y, sizeof(float) * (B / 2));
    double l;
    CHECK(ds_trainer_step(a.t, B / 2, &l) == 0);
    ds_loader *lb = ds_loader_new(&d, B, 0, 3);
    ds_dataset one = d;
    one.n = B; /* one batch: the first 8 samples in order */
    ds_loader_free(lb);
    lb = ds_loader_new(&one, B, 0, 3);
    ds_epoch_stats sb;
    CHECK(ds_trainer_epoch(b.t, lb, 1, &sb) == 0 && sb.samples == B);
    int buffers = 0;
    for (int i = 0; i < ds_graph_num_params(a.g); i++) {
        ds_node *pa = ds_graph_param(a.g, i), *pb = ds_graph_param(b.g, i);
        if (ds_node_is_trainable(pa)) continue;
        buffers++;
        CHECK(!memcmp(ds_node_value(pa), ds_node_value(pb), ds_node_numel(pa) * sizeof(float)));
    }
    CHECK(buffers >= 2);
    ds_loader_free(lb);
    destroy(&a), destroy(&b);
    ds_dataset_free(&d);
}

int main(void)
{
    test_world_of_one();
    test_micro_epoch();
    test_micro_dropout();
    test_micro_bn();
    return ds_test_summary("test_dist");
}
