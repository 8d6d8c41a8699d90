/* ds_bench.c — deepsky's side of the benchmarks (bench/run.py runs it
 * alternately with bench/torch_bench.py). One workload per process, so peak
 * RSS belongs to that workload. Prints one JSON line.
 *
 *   ds_bench WORKLOAD [MODELS_DIR] [BATCHES]
 *
 * Workloads: softmax, mlp, lenet64, lenet256, resnet128 (training, images/s),
 * infer1000 (LeNet inference throughput), infer1 (LeNet median latency, ms),
 * conv (LeNet's conv2 alone, forward GFLOP/s at batch 64); issue 14:
 * fgsm_train (LeNet, batch 64, a step of loss 0.5·L(x) + 0.5·L(x_adv) with
 * x_adv = FGSM at eps 0.1 in [0, 1] pixels, made in eval mode through the
 * trainer's pass hook, images/s and the mean step loss) and pgd10_eval (PGD-10 at eps 0.1, step
 * 0.025, no random start, eval mode, batch 1000, on the test images with the
 * trained weights of $DS_BENCH_CKPT, images/s and adversarial accuracy).
 * peak: the machine's fp32 FMA peak (GFLOP/s) on as many threads as deepsky's
 * pool uses: independent FMA chains in registers, AVX-512 where the CPU has
 * it, else AVX2+FMA, else scalar (the "isa" field says which; $DS_BENCH_ISA=avx2
 * or scalar measures a fallback).
 * Data: Fashion-MNIST, preloaded and normalised; batches taken in order (no
 * shuffling cost). */
#include "deepsky.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double peak_rss_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what)
{
    fprintf(stderr, "ds_bench: %s: %s\n", what, ds_last_error());
    return 1;
}

/* ---- peak: the FMA roofline of this machine ---------------------------
 * 16 accumulators, each its own dependency chain: 16 chains cover an FMA
 * latency of 4 cycles on 2 FMA ports (8 in flight) with room to spare, so
 * the loop runs at the issue rate. acc = acc·a + b with a < 1 converges to
 * b / (1 - a): no overflow, no denormals. */
#define PEAK_CHAINS 16
#define PEAK_ITERS (1L << 24)

struct peak_job {
    int isa; /* 2: AVX-512, 1: AVX2+FMA, 0: scalar */
    long iters;
    float sink;
    double t0, t1; /* the thread's own clock: a preempted main thread would time nothing */
    pthread_barrier_t *start;
};

#define FMA16() A(0) A(1) A(2) A(3) A(4) A(5) A(6) A(7) A(8) A(9) A(10) A(11) A(12) A(13) A(14) A(15)

#ifdef PEAK_X86
__attribute__((target("avx512f"))) static float peak_avx512(long iters)
{
    __m512 acc[PEAK_CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#define A(i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        FMA16()
#undef A
    }
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float peak_avx2(long iters)
{
    __m256 acc[PEAK_CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#define A(i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        FMA16()
#undef A
    }
    float out[8], sum = 0;
    __m256 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(out, s);
    for (int i = 0; i < 8; i++) sum += out[i];
    return sum;
}
#else /* not x86: the scalar loop only */
static float peak_avx512(long iters) { (void)iters; return 0; }
static float peak_avx2(long iters) { (void)iters; return 0; }
#endif

static float peak_scalar(long iters)
{
    float acc[PEAK_CHAINS], sum = 0;
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = acc[i] * 0.999999f + 1e-6f;
    for (int i = 0; i < PEAK_CHAINS; i++) sum += acc[i];
    return sum;
}

static void *peak_thread(void *arg)
{
    struct peak_job *j = arg;
    pthread_barrier_wait(j->start);
    j->t0 = ds_now();
    j->sink = j->isa == 2 ? peak_avx512(j->iters) : j->isa == 1 ? peak_avx2(j->iters) : peak_scalar(j->iters);
    j->t1 = ds_now();
    return NULL;
}

/* The best of `reps` runs of all threads at once, each timed from the first
 * thread's start to the last one's end (threads: deepsky's
 * pool size, $DS_NUM_THREADS, else $OMP_NUM_THREADS, else the CPUs online). */
static int fma_peak(int reps)
{
    const char *e = getenv("DS_NUM_THREADS");
    if (!e || !*e) e = getenv("OMP_NUM_THREADS");
    long nt = e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    int isa = 0;
#ifdef PEAK_X86
    __builtin_cpu_init();
    isa = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
#endif
    const char *force = getenv("DS_BENCH_ISA"); /* avx2 / scalar: measure a fallback (no wider than the CPU's) */
    if (force && !strcmp(force, "avx2") && isa > 1) isa = 1;
    if (force && !strcmp(force, "scalar")) isa = 0;
    int lanes = isa == 2 ? 16 : isa == 1 ? 8 : 1;
    long iters = isa ? PEAK_ITERS : PEAK_ITERS / 16;
    pthread_t *th = malloc((size_t)nt * sizeof *th);
    struct peak_job *jobs = calloc((size_t)nt, sizeof *jobs);
    if (!th || !jobs) return fail("peak: out of memory");
    double best = 0;
    float sink = 0;
    for (int r = 0; r < reps; r++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
        for (long t = 0; t < nt; t++) {
            jobs[t] = (struct peak_job){.isa = isa, .iters = iters, .start = &start};
            if (pthread_create(&th[t], NULL, peak_thread, &jobs[t]) != 0) return fail("peak: pthread_create");
        }
        pthread_barrier_wait(&start);
        double t0 = 1e300, t1 = 0;
        for (long t = 0; t < nt; t++) {
            pthread_join(th[t], NULL);
            sink += jobs[t].sink;
            t0 = jobs[t].t0 < t0 ? jobs[t].t0 : t0, t1 = jobs[t].t1 > t1 ? jobs[t].t1 : t1;
        }
        double secs = t1 - t0, gflops = 2.0 * PEAK_CHAINS * lanes * iters * nt / secs / 1e9;
        pthread_barrier_destroy(&start);
        if (gflops > best) best = gflops;
    }
    printf("{\"workload\": \"peak\", \"gflops\": %.1f, \"threads\": %ld, \"isa\": \"%s\", \"check\": %.1f, "
           "\"peak_rss_mb\": %.1f}\n",
           best, nt, isa == 2 ? "avx512" : isa == 1 ? "avx2" : "scalar", sink, peak_rss_mb());
    free(th), free(jobs);
    return 0;
}

/* LeNet's conv2 (32→64 channels, 5x5, pad 2, 14x14) forward at batch 64. */
static int conv_gflops(int reps)
{
    ds_graph *g = ds_graph_new(1);
    ds_node *x = ds_input(g, "x", ds_shape_of(4, 64, 32, 14, 14));
    ds_node *c = ds_nn_conv2d(g, "conv2", x, 64, 5, (ds_conv_opt){.pad = {2, 2}}, (ds_init){0}, 1);
    if (!c || ds_graph_compile(g) != 0) return fail("conv");
    ds_graph_set_training(g, 0);
    for (size_t i = 0; i < ds_node_numel(x); i++) ds_node_value(x)[i] = (float)(i % 7) * 0.1f;
    ds_graph_forward(g);
    double t0 = ds_now();
    for (int r = 0; r < reps; r++) ds_graph_forward(g);
    double secs = ds_now() - t0, flop = ds_node_flops(c) * 64 * reps;
    printf("{\"workload\": \"conv\", \"gflops\": %.2f, \"peak_rss_mb\": %.1f}\n", flop / secs / 1e9, peak_rss_mb());
    ds_graph_free(g);
    return 0;
}

/* Issue 5's reference RBM (bench/torch_bench.py rbm_epoch): 784 -> 500
 * Bernoulli, CD-1, batch 100, rate 0.05, pixels binarised at 0.5, one epoch
 * in order, no momentum or weight decay. */
static int rbm_epoch(uint64_t seed)
{
    ds_dataset d;
    if (ds_fashion_mnist_load(NULL, 1, &d) != 0) return fail("fashion-mnist");
    for (size_t i = 0; i < (size_t)d.n * 784; i++) d.x[i] = d.x[i] >= 128.0f / 255 ? 1.0f : 0.0f;
    ds_rbm_cfg k = {.visible = 784, .hidden = 500, .k = 1, .lr = 0.05f, .seed = seed};
    ds_rbm *r = ds_rbm_new(&k, 100);
    if (!r) return fail("rbm");
    double err = 0, e, t0 = ds_now();
    int batches = d.n / 100;
    for (int b = 0; b < batches; b++) {
        if (ds_rbm_update(r, d.x + (size_t)b * 100 * 784, 100, &e) != 0) return fail("rbm update");
        err += e;
    }
    double secs = ds_now() - t0;
    printf("{\"workload\": \"rbm\", \"epoch_s\": %.3f, \"recon_error\": %.3f, \"peak_rss_mb\": %.1f}\n", secs,
           err / batches, peak_rss_mb());
    ds_rbm_free(r);
    ds_dataset_free(&d);
    return 0;
}

/* Issue 14: PGD-10 (L∞, eps 0.1 in [0, 1] pixels, step 2.5·eps/10, no
 * random start, clipped to [0, 1]) on `batches` batches of 1000 test images
 * in order, with the weights and normalisation of checkpoint ckpt (the same
 * file bench/torch_bench.py loads), eval mode, no parameter gradients. */
static int pgd10_eval(const char *ckpt, int batches)
{
    const int bs = 1000;
    ds_dataset d = {0};
    if (ds_fashion_mnist_load(NULL, 0, &d) != 0) return fail("fashion-mnist test");
    if (batches * bs > d.n) batches = d.n / bs;
    ds_checkpoint *ck = ds_checkpoint_open(ckpt);
    if (!ck) return fail(ckpt);
    ds_model *m = ds_model_parse(ds_checkpoint_model_text(ck), ckpt);
    ds_graph *g = ds_graph_new(1);
    ds_program prog;
    ds_norm norm = {0};
    if (!m || ds_model_build_program(m, g, bs, NULL, &prog) != 0) return fail("build");
    ds_node_set_requires_grad(prog.feeds[0], 1);
    if (ds_graph_compile(g) != 0 || ds_graph_set_param_grads(g, 0) != 0 || ds_checkpoint_restore(ck, g, NULL) != 0 ||
        ds_checkpoint_norm(ck, &norm) != 0)
        return fail(ckpt);
    ds_checkpoint_close(ck);
    ds_graph_set_training(g, 0);
    ds_attack_cfg c = {.method = DS_ATTACK_PGD, .eps = 0.1f, .steps = 10, .clip = 1, .lo = 0, .hi = 1};
    ds_attacker *a = ds_attacker_new(&prog, &norm, &c);
    if (!a) return fail("attacker");
    size_t row = ds_shape_numel(d.sample);
    float *xa = malloc((size_t)bs * row * sizeof *xa);
    int *wrong = malloc((size_t)bs * sizeof *wrong), right = 0, warm = 1;
    ds_rng rng;
    ds_rng_seed(&rng, 1);
    double t0 = 0;
    for (int b = 0; b < warm + batches; b++) {
        int first = (b < warm ? b : b - warm) * bs;
        if (b == warm) t0 = ds_now();
        if (ds_attacker_run(a, d.x + (size_t)first * row, d.y + first, bs, &rng, xa, wrong) != 0) return fail("attack");
        for (int r = 0; b >= warm && r < bs; r++) right += !wrong[r];
    }
    double secs = ds_now() - t0;
    printf("{\"workload\": \"pgd10_eval\", \"images_per_s\": %.1f, \"adv_accuracy\": %.4f, \"images\": %d, "
           "\"peak_rss_mb\": %.1f}\n",
           (double)batches * bs / secs, (double)right / (batches * bs), batches * bs, peak_rss_mb());
    free(xa), free(wrong);
    ds_attacker_free(a);
    ds_norm_free(&norm);
    ds_graph_free(g);
    ds_model_free(m);
    ds_dataset_free(&d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ds_bench WORKLOAD [MODELS_DIR] [BATCHES]\n");
        return 2;
    }
    const char *w = argv[1], *dir = argc > 2 ? argv[2] : "models";
    int batches = argc > 3 ? atoi(argv[3]) : 0;
    struct { const char *name, *model; int batch, train, def_batches; } table[] = {
        {"softmax", "softmax", 64, 1, 900}, {"mlp", "mlp", 64, 1, 300},
        {"lenet64", "lenet", 64, 1, 60},    {"lenet256", "lenet", 256, 1, 15},
        {"resnet128", "resnet-small", 128, 1, 8}, {"infer1000", "lenet", 1000, 0, 10},
        {"infer1", "lenet", 1, 0, 300},     {"fgsm_train", "lenet", 64, 1, 60},
    };
    if (!strcmp(w, "peak")) return fma_peak(batches > 0 ? batches : 5); /* BATCHES: timed runs */
    if (!strcmp(w, "conv")) return conv_gflops(batches > 0 ? batches : 50);
    if (!strcmp(w, "rbm")) return rbm_epoch(batches > 0 ? (uint64_t)batches : 1); /* BATCHES: the seed */
    if (!strcmp(w, "pgd10_eval")) {
        const char *ck = getenv("DS_BENCH_CKPT");
        return pgd10_eval(ck && *ck ? ck : "build/bench-lenet/last.safetensors", batches > 0 ? batches : 10);
    }
    int k = -1;
    for (int i = 0; i < (int)(sizeof table / sizeof *table); i++)
        if (!strcmp(w, table[i].name)) k = i;
    if (k < 0) {
        fprintf(stderr, "ds_bench: unknown workload '%s'\n", w);
        return 2;
    }
    if (batches <= 0) batches = table[k].def_batches;
    int bs = table[k].batch;

    ds_dataset d = {0};
    ds_norm norm = {0};
    if (ds_fashion_mnist_load(NULL, 1, &d) != 0 || ds_norm_compute(&d, &norm) != 0) return fail("data");
    ds_norm_apply(&norm, &d);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.cfg", dir, table[k].model);
    ds_model *m = ds_model_load(path);
    if (!m) return fail(path);
    ds_graph *g = ds_graph_new(1);
    ds_program prog;
    if (ds_model_build_program(m, g, bs, NULL, &prog) != 0) return fail("build");
    ds_node *x = prog.feeds[0], *logits = prog.heads[0].out, *y = prog.labels;
    if (!table[k].train) { /* inference: planned activation memory, no gradients */
        ds_node_keep(logits);
        ds_graph_plan_inference(g);
    }
    if (!strcmp(w, "fgsm_train")) ds_node_set_requires_grad(x, 1); /* the attack's input gradient */
    if (ds_graph_compile(g) != 0) return fail("build");
    ds_optim_cfg oc = ds_model_train_cfg(m)->optim;
    oc.schedule = (ds_schedule){0}; /* the rate does not change the cost of a step */
    ds_optim *o = table[k].train ? ds_optim_new(g, &oc) : NULL;
    if (table[k].train && !o) return fail("optimizer");
    ds_graph_set_training(g, table[k].train);
    /* fgsm_train: Goodfellow et al.'s step through the trainer's pass hook
     * (eps in the data's own [0, 1] units: the attacker maps the normalised
     * batch back through norm) */
    ds_adv_trainer *adv = NULL;
    ds_trainer_hooks hooks = {0};
    if (!strcmp(w, "fgsm_train")) {
        ds_attack_cfg ac = {.method = DS_ATTACK_FGSM, .eps = 0.1f, .clip = 1, .lo = 0, .hi = 1};
        if (!(adv = ds_adv_trainer_new(&prog, &norm, &ac, 0.5f, 1))) return fail("adversarial trainer");
        hooks = (ds_trainer_hooks){.user = adv, .pass = ds_adv_pass};
    }
    ds_trainer *tr = table[k].train ? ds_trainer_new(&prog, &o, 1, &(ds_trainer_cfg){.epochs = 1}, adv ? &hooks : NULL) : NULL;
    if (table[k].train && !tr) return fail("trainer");

    size_t row = ds_shape_numel(d.sample);
    int warm = 3, per_epoch = d.n / bs;
    double *lat = malloc(sizeof(double) * (size_t)batches), t0 = 0, loss_sum = 0;
    for (int b = 0; b < warm + batches; b++) {
        int first = (b % per_epoch) * bs;
        memcpy(ds_node_value(x), d.x + (size_t)first * row, (size_t)bs * row * sizeof(float));
        memcpy(ds_node_value(y), d.y + first, (size_t)bs * sizeof(float));
        if (b == warm) t0 = ds_now();
        double t = ds_now();
        if (table[k].train) {
            double lv = 0;
            if (ds_trainer_step(tr, bs, adv ? &lv : NULL)) return fail("step");
            if (b >= warm) loss_sum += lv;
        } else if (ds_graph_forward(g)) {
            return fail("forward");
        }
        if (b >= warm) lat[b - warm] = ds_now() - t;
    }
    double secs = ds_now() - t0;
    qsort(lat, (size_t)batches, sizeof *lat, cmp_double);
    printf("{\"workload\": \"%s\", \"images_per_s\": %.1f, \"median_ms\": %.4f, \"peak_rss_mb\": %.1f",
           w, (double)batches * bs / secs, 1e3 * lat[batches / 2], peak_rss_mb());
    if (adv) printf(", \"loss\": %.4f", loss_sum / batches); /* the mean of 0.5·L(x) + 0.5·L(x_adv) */
    printf("}\n");
    free(lat);
    ds_adv_trainer_free(adv);
    ds_trainer_free(tr);
    ds_optim_free(o);
    ds_graph_free(g);
    ds_model_free(m);
    ds_norm_free(&norm);
    ds_dataset_free(&d);
    return 0;
}
