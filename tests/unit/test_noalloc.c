/* test_noalloc.c — a compiled graph's training step (zero_grad, forward,
 * backward, optimizer step) performs no heap allocation. malloc and friends
 * are interposed here and counted while a step runs. */
#include "harness.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
int main(void)
{
    puts("noalloc: skipped under AddressSanitizer (it owns malloc)");
    return 77;
}
#else

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int counting, allocs;

static void note(void)
{
    if (atomic_load(&counting)) atomic_fetch_add(&allocs, 1);
}

void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void *aligned_alloc(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
int posix_memalign(void **p, size_t al, size_t n)
{
    note();
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12;
}
void free(void *p) { __libc_free(p); }

static int step(ds_graph *g, ds_optim *o, ds_node *loss)
{
    ds_graph_zero_grad(g);
    return ds_graph_forward(g) | ds_graph_backward(g, loss, NULL) | ds_optim_step(o);
}

int main(void)
{
    /* every op family, in a LeNet-like net with batch norm and a residual add */
    ds_graph *g = ds_graph_new(1);
    ds_init def = {0};
    ds_node *x = ds_input(g, "x", ds_shape_of(4, 16, 1, 12, 12));
    ds_node *y = ds_input(g, "y", ds_shape_of(1, 16));
    ds_node *h = ds_relu(g, ds_nn_conv2d(g, "c1", x, 8, 5, (ds_conv_opt){.pad = {2, 2}}, def, 1));
    h = ds_nn_batchnorm(g, "bn1", h);
    ds_node *r = ds_leaky_relu(g, ds_nn_conv2d(g, "c2", h, 8, 3, (ds_conv_opt){.pad = {1, 1}}, def, 1), 0.1f);
    h = ds_add(g, h, r);
    h = ds_concat(g, 2, (ds_node *[]){ds_maxpool2d(g, h, (ds_pool_opt){.kernel = {2, 2}}),
                                     ds_avgpool2d(g, h, (ds_pool_opt){.kernel = {2, 2}})});
    h = ds_nn_conv_transpose2d(g, "up", h, 4, 2, (ds_conv_opt){.stride = {2, 2}}, def, 1);
    h = ds_tanh(g, ds_elu(g, h, 1.0f));
    h = ds_dropout(g, ds_flatten(g, h), 0.3f);
    h = ds_sigmoid(g, ds_nn_dense(g, "fc1", h, 32, def, 1));
    h = ds_nn_dense(g, "fc2", ds_softplus(g, h), 10, def, 1);
    ds_node *loss = ds_softmax_cross_entropy(g, h, y, NULL);
    CHECK(loss != NULL);
    CHECK(ds_graph_compile(g) == 0);
    ds_rng rng;
    ds_rng_seed(&rng, 5);
    ds_test_fill(ds_node_value(x), ds_node_numel(x), 0, 1, &rng);
    for (int i = 0; i < 16; i++) ds_node_value(y)[i] = (float)(i % 10);

    ds_optim_kind kinds[] = {DS_SGD, DS_ADAM, DS_ADAMW, DS_RMSPROP};
    for (int k = 0; k < 4; k++) {
        ds_optim_cfg cfg = {.kind = kinds[k], .lr = 1e-3f, .momentum = kinds[k] == DS_SGD ? 0.9f : 0,
                            .weight_decay = 1e-4f, .clip_norm = 5,
                            .schedule = {.kind = DS_SCHED_COSINE, .t_max = 100, .warmup_steps = 2}};
        ds_optim *o = ds_optim_new(g, &cfg);
        CHECK(o != NULL);
        CHECK(step(g, o, loss) == 0); /* warm-up: thread pools, packing buffers */
        atomic_store(&allocs, 0);
        atomic_store(&counting, 1);
        int rc = 0;
        for (int s = 0; s < 3; s++) rc |= step(g, o, loss);
        ds_graph_set_training(g, 0);
        rc |= ds_graph_forward(g); /* an eval forward too */
        ds_graph_set_training(g, 1);
        atomic_store(&counting, 0);
        CHECK(rc == 0);
        printf("optimizer %d: %d allocations in 3 training steps + 1 eval forward\n", k, atomic_load(&allocs));
        CHECK(atomic_load(&allocs) == 0);
        ds_optim_free(o);
    }
    /* the counter itself works: a plain malloc is seen */
    atomic_store(&allocs, 0);
    atomic_store(&counting, 1);
    void *p = malloc(16);
    atomic_store(&counting, 0);
    free(p);
    CHECK(atomic_load(&allocs) == 1);
    ds_graph_free(g);
    return ds_test_summary("noalloc");
}
#endif
