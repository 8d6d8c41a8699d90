/* test_pool.c — the thread pool's thread-start hooks (what GEMM uses to make
 * its packing buffers before the first job): each pool thread runs every
 * hook once, with its index, before it takes part in a job; a hook given
 * after the pool has started is refused. */
#include "harness.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>

#define NT 3

static atomic_int calls, seen_mask;

static void hook(int thread)
{
    atomic_fetch_add(&calls, 1);
    if (thread >= 0 && thread < 30) atomic_fetch_or(&seen_mask, 1 << thread);
}

static void hook2(int thread) { (void)thread; }

static atomic_long sum;

static void add(void *arg, long lo, long hi)
{
    (void)arg;
    for (long i = lo; i < hi; i++) atomic_fetch_add(&sum, i);
}

int main(void)
{
    setenv("DS_NUM_THREADS", "3", 1); /* before the pool starts: it reads this once */
    CHECK(ds_pool_set_thread_start(NULL) == -1);
    CHECK(ds_pool_set_thread_start(hook) == 0);
    CHECK(atomic_load(&calls) == 0); /* nothing runs until the pool starts */
    CHECK(ds_num_threads() == NT);
    /* a job waits for every worker, and a worker runs its hooks first */
    ds_parallel_for(1000, 1, add, NULL);
    CHECK(atomic_load(&sum) == 999L * 1000 / 2);
    CHECK(atomic_load(&calls) == NT);
    CHECK(atomic_load(&seen_mask) == (1 << NT) - 1);
    ds_parallel_for(1000, 1, add, NULL);
    CHECK(atomic_load(&calls) == NT); /* once per thread, not per job */
    CHECK(ds_pool_set_thread_start(hook2) == -1); /* too late: the threads exist */
    return ds_test_summary("pool");
}
