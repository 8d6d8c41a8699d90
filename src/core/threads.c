/* threads.c — a small fork-join thread pool for the CPU kernels (and the
 * graph, the optimizers, the simulator: it is part of the core and calls
 * nothing above it; code that wants per-thread state made before the first
 * job, as GEMM's packing buffers, registers ds_pool_set_thread_start).
 *
 * Why not OpenMP: libgomp's workers spin at every barrier, so when other
 * processes hold the cores a 2-thread training step ran up to 7x slower
 * than its single-thread speed (docs/design.md). Here a worker spins only
 * briefly for the next job, then sleeps on a condition variable, and the
 * calling thread always does a share of the work itself.
 *
 * ds_parallel_for splits [0, n) into a fixed set of contiguous grains
 * (a few per thread) that the threads take in turn, so a core slowed by
 * another process does less of the work. Which grains exist depends only
 * on n and the thread count, and each element is computed by the same code
 * whatever thread runs it, so results are bit-identical from run to run.
 * Created on first use; no allocation afterwards.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define DS_MAX_THREADS 64
/* how long a worker polls for the next job (and the caller for the last
 * grain) before it sleeps: 50 µs, as a wake-up from the condition variable
 * cost 20–40 µs on the 2-core VMs (batch-1 LeNet inference 0.19 → 0.17 ms
 * against 10 µs of polling; a training step on a machine whose other core
 * is busy unchanged within noise; bench/PROFILE.md) */
static const double spin_s = 50e-6;

/* a poll of a wait that started with *t0 = 0: pause, and every 128 polls
 * read the clock; true once spin_s has passed since the first reading */
static bool spun_out(int i, double *t0)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
    if (i & 127) return false;
    double t = ds_now();
    if (!*t0) *t0 = t;
    return t - *t0 > spin_s;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    void (*fn)(void *arg, long lo, long hi);
    void *arg;
    long n;
    int nthreads;
    atomic_ulong generation; /* bumped once per job */
    atomic_int pending;      /* workers still running the current job */
    atomic_long next;        /* next grain to take */
    long grains;
    int sleepers;
} pool_t;

static pool_t pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

#define MAX_STARTS 8
static void (*starts[MAX_STARTS])(int thread);
static int n_starts;
static int started; /* set as pool_init begins: no more hooks */
static pthread_mutex_t starts_mu = PTHREAD_MUTEX_INITIALIZER;

int ds_pool_set_thread_start(void (*fn)(int thread))
{
    pthread_mutex_lock(&starts_mu);
    int ok = fn && !started && n_starts < MAX_STARTS;
    if (ok) starts[n_starts++] = fn;
    pthread_mutex_unlock(&starts_mu);
    return ok ? 0 : -1;
}

static void run_starts(int thread)
{
    for (int i = 0; i < n_starts; i++) starts[i](thread);
}

static void chunk(long n, long parts, long k, long *lo, long *hi)
{
    long base = n / parts, rem = n % parts;
    *lo = k * base + (k < rem ? k : rem);
    *hi = *lo + base + (k < rem);
}

static _Thread_local int in_job; /* nested calls run serially */

static void take_grains(void)
{
    for (;;) {
        long k = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed), lo, hi;
        if (k >= pool.grains) return;
        chunk(pool.n, pool.grains, k, &lo, &hi);
        pool.fn(pool.arg, lo, hi);
    }
}

static void *worker(void *p)
{
    unsigned long seen = 0;
    in_job = 1;
    run_starts((int)(intptr_t)p);
    for (;;) {
        unsigned long gen;
        double t0 = 0;
        for (int i = 1; (gen = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen; i++)
            if (spun_out(i, &t0)) break;
        if (gen == seen) {
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while ((gen = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        seen = gen;
        take_grains();
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

static int threads_wanted(void)
{
    const char *e = getenv("DS_NUM_THREADS");
    if (!e || !*e) e = getenv("OMP_NUM_THREADS");
    long n = e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > DS_MAX_THREADS ? DS_MAX_THREADS : (int)n;
}

static void pool_init(void)
{
    pthread_mutex_lock(&starts_mu);
    started = 1; /* the hooks are fixed from here: the workers read them unlocked */
    pthread_mutex_unlock(&starts_mu);
    run_starts(0); /* the calling thread works in every job too */
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.nthreads = threads_wanted();
    for (int i = 1; i < pool.nthreads; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, worker, (void *)(intptr_t)i) != 0) {
            pool.nthreads = i; /* run with the threads we got */
            pthread_attr_destroy(&at);
            break;
        }
        pthread_attr_destroy(&at);
    }
}

int ds_num_threads(void)
{
    pthread_once(&pool_once, pool_init);
    return pool.nthreads;
}

void ds_parallel_for(long n, long min_per_thread, void (*fn)(void *arg, long lo, long hi), void *arg)
{
    ds_parallel_for_grains(n, min_per_thread, 4, fn, arg);
}

void ds_parallel_for_grains(long n, long min_per_thread, int per_thread,
                            void (*fn)(void *arg, long lo, long hi), void *arg)
{
    if (n <= 0) return;
    int nt = ds_num_threads();
    long min = min_per_thread > 0 ? min_per_thread : 1;
    if (nt == 1 || in_job || n < 2 * min) {
        fn(arg, 0, n);
        return;
    }
    long grains = (long)nt * (per_thread > 0 ? per_thread : 1);
    if (grains > n / min) grains = n / min;
    /* one job at a time: callers on other threads wait their turn */
    static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&job_mu);
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.grains = grains;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.pending, nt - 1);
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    if (pool.sleepers) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    in_job = 1;
    take_grains();
    in_job = 0;

    double t0 = 0;
    for (int i = 1; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; i++)
        if (spun_out(i, &t0)) break;
    if (atomic_load(&pool.pending) > 0) {
        pthread_mutex_lock(&pool.mu);
        while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
    pthread_mutex_unlock(&job_mu);
}
