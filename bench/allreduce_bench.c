/* allreduce_bench.c — the cost of MPI_Allreduce(MPI_SUM, float) by message
 * size, and the fit t(n) = α + β·n that docs/scaling.md's model extrapolates
 * from. Standalone MPI program (no deepsky library).
 *
 *   mpirun --allow-run-as-root --oversubscribe -np 2 build/allreduce_bench [--json OUT.json]
 *          [--min BYTES] [--max BYTES] [--target SECONDS] [--bucket BYTES]
 *
 * Sizes: powers of two from --min (4 B) to --max (64 MiB). Per size: warm-up
 * calls, then enough repetitions for about --target seconds (0.2 s), each call
 * timed alone; a rank's figure is the median of its per-call times, the size's
 * figure the largest over the ranks (the collective ends when the slowest does).
 * Back-to-back calls without a barrier: a barrier's exit skew would be timed
 * as part of the next call.
 *
 * The fit weights each size by 1/t² (least squares on relative error): an
 * unweighted fit is decided by the large sizes alone and leaves α to their
 * noise; the largest size's own t/n is reported too. Ring interpretation for N ranks: a ring allreduce sends 2(N−1)/N·n
 * bytes per rank in 2(N−1) steps, so β_ring = β / (2(N−1)/N) is the per-byte
 * cost of the link and α_step = α / (2(N−1)) the latency of one step (Open MPI
 * chooses its own algorithm by size; at N = 2 every algorithm sends n bytes
 * each way and the two readings coincide up to the step count).
 *
 * Then the DDP pattern: the largest size cut in --bucket (25 MB) buckets, all
 * started with MPI_Iallreduce and waited for together, against one blocking
 * call of the same bytes; and whether a bucket's reduction proceeds while the
 * rank computes (overlap), with and without MPI_Test calls during the compute. */
#include <mpi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, nranks;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* the largest value over the ranks (every rank gets it) */
static double max_over_ranks(double x)
{
    double m;
    MPI_Allreduce(&x, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

/* repetitions for ~target seconds, the same on every rank (from the slowest's estimate) */
static int reps_for(double per_call, double target)
{
    double r = max_over_ranks(per_call);
    long n = r > 0 ? (long)(target / r) : 100000;
    if (n < 5) n = 5;
    if (n > 100000) n = 100000;
    return (int)n;
}

/* median per-call time of MPI_Allreduce on count floats (largest over ranks) */
static double time_allreduce(float *send, float *recv, int count, double target, int *reps_out)
{
    /* warm-up (connections, page faults, caches): 3 calls, then ~target/10 seconds; every count
     * is agreed by all ranks, since a rank that called once more would pair with the next size */
    double t0 = MPI_Wtime();
    for (int r = 0; r < 3; r++) MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    int warm = reps_for((MPI_Wtime() - t0) / 3, target / 10);
    t0 = MPI_Wtime();
    for (int r = 0; r < warm; r++) MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    int reps = reps_for((MPI_Wtime() - t0) / warm, target);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int r = 0; r < reps; r++) {
        double a = MPI_Wtime();
        MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - a;
    }
    double m = max_over_ranks(median(t, reps));
    free(t);
    *reps_out = reps;
    return m;
}

/* weighted least squares of t = a + b·n with weights w: closed form of the 2x2 normal equations */
static void fit_line(const double *n, const double *t, const double *w, int k, double *a, double *b)
{
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < k; i++) {
        sw += w[i]; sx += w[i] * n[i]; sy += w[i] * t[i];
        sxx += w[i] * n[i] * n[i]; sxy += w[i] * n[i] * t[i];
    }
    double det = sw * sxx - sx * sx;
    *b = (sw * sxy - sx * sy) / det;
    *a = (sy - *b * sx) / sw;
}

/* about `secs` of arithmetic that touches no MPI and little memory (a stand-in for backward);
 * with poll set, MPI_Test on req every ~1 ms, as a trainer could between layers */
static volatile float sink;
static void compute_for(double secs, MPI_Request *req, int nreq, int poll)
{
    double end = MPI_Wtime() + secs, next = MPI_Wtime() + 1e-3;
    float x = 1.0f;
    while (MPI_Wtime() < end) {
        for (int i = 0; i < 20000; i++) x = x * 1.0000001f + 1e-7f;
        if (poll && MPI_Wtime() >= next) {
            int done;
            MPI_Testall(nreq, req, &done, MPI_STATUSES_IGNORE);
            next += 1e-3;
        }
    }
    sink = x;
}

/* median over reps of f's seconds, largest over ranks; f runs one trial */
typedef double (*trial_fn)(void *);
static double median_trials(trial_fn f, void *ctx, int reps)
{
    double t[64];
    if (reps > 64) reps = 64;
    f(ctx);  /* warm-up */
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        t[r] = f(ctx);
    }
    return max_over_ranks(median(t, reps));
}

typedef struct {
    float *send, *recv;
    int count, bucket;  /* floats in all, floats per bucket */
    double compute;     /* seconds of compute for the overlap trials */
    int mode;           /* 0 blocking whole, 1 buckets Iallreduce, 2 compute alone, 3 buckets + compute, 4 same + MPI_Test */
} trial;

static double run_trial(void *p)
{
    trial *c = p;
    MPI_Request req[64];
    int nb = 0;
    double a = MPI_Wtime();
    if (c->mode == 0) {
        MPI_Allreduce(c->send, c->recv, c->count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        return MPI_Wtime() - a;
    }
    if (c->mode != 2)
        for (int off = 0; off < c->count && nb < 64; off += c->bucket, nb++) {
            int len = c->count - off < c->bucket ? c->count - off : c->bucket;
            MPI_Iallreduce(c->send + off, c->recv + off, len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req[nb]);
        }
    if (c->mode >= 2) compute_for(c->compute, req, nb, c->mode == 4);
    MPI_Waitall(nb, req, MPI_STATUSES_IGNORE);
    return MPI_Wtime() - a;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    const char *json = NULL;
    double min_b = 4, max_b = 64.0 * 1024 * 1024, target = 0.2, bucket_b = 25e6;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--json")) json = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--min")) min_b = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--max")) max_b = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--target")) target = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--bucket")) bucket_b = atof(argv[++i]);
        else {
            if (rank == 0)
                fprintf(stderr, "usage: mpirun -np N allreduce_bench [--json OUT] [--min BYTES] [--max BYTES] "
                                "[--target SECONDS] [--bucket BYTES]\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (min_b < 4 || max_b < min_b || max_b > 1024.0 * 1024 * 1024 || target <= 0 || bucket_b < 4) {
        if (rank == 0) fprintf(stderr, "allreduce_bench: need 4 <= --min <= --max <= 1 GiB, --target > 0, --bucket >= 4\n");
        MPI_Finalize();
        return 2;
    }
    int maxc = (int)(max_b / 4);
    float *send = malloc((size_t)maxc * 4), *recv = malloc((size_t)maxc * 4);
    if (!send || !recv) {
        fprintf(stderr, "allreduce_bench: rank %d: out of memory for %d floats\n", rank, maxc);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int i = 0; i < maxc; i++) send[i] = (float)(i % 1000) * 1e-3f + (float)rank;
    memset(recv, 0, (size_t)maxc * 4);

    double n[40], t[40], w[40];
    int reps[40], k = 0;
    for (double b = min_b; b <= max_b && k < 40; b *= 2, k++) {
        n[k] = b;
        t[k] = time_allreduce(send, recv, (int)(b / 4), target, &reps[k]);
        w[k] = 1.0 / (t[k] * t[k]);
    }
    /* the sums must be right: element i is Σ_r (i%1000·1e-3 + r) */
    double want = (double)nranks * ((maxc - 1) % 1000) * 1e-3 + nranks * (nranks - 1) / 2.0;
    int ok = fabs(recv[maxc - 1] - want) <= 1e-4 * (fabs(want) + 1);
    double alpha, beta;
    fit_line(n, t, w, k, &alpha, &beta);
    /* the largest message's own rate: where buffers outgrow the caches the line no longer holds */
    double beta_l = t[k - 1] / n[k - 1];
    double ring = nranks > 1 ? 2.0 * (nranks - 1) / nranks : 1;
    double steps = nranks > 1 ? 2.0 * (nranks - 1) : 1;

    /* DDP's pattern on the largest size: buckets of bucket_b, overlapped with compute */
    trial c = {send, recv, maxc, (int)(bucket_b / 4), 0, 0};
    if (c.bucket > maxc) c.bucket = maxc;
    int nbuckets = (maxc + c.bucket - 1) / c.bucket;
    if (nbuckets > 64) c.bucket = (maxc + 63) / 64, nbuckets = (maxc + c.bucket - 1) / c.bucket;
    int tr = (int)(2 * target / t[k - 1]) + 3;  /* ~2·target seconds per pattern */
    c.mode = 0; double t_block = median_trials(run_trial, &c, tr);
    c.mode = 1; double t_ibuck = median_trials(run_trial, &c, tr);
    c.compute = t_ibuck;
    c.mode = 2; double t_comp = median_trials(run_trial, &c, tr);
    c.mode = 3; double t_both = median_trials(run_trial, &c, tr);
    c.mode = 4; double t_poll = median_trials(run_trial, &c, tr);
    /* overlap: the share of the shorter of (reduction, compute) hidden behind the other */
    double lo = t_ibuck < t_comp ? t_ibuck : t_comp;
    double ov_plain = (t_ibuck + t_comp - t_both) / lo, ov_poll = (t_ibuck + t_comp - t_poll) / lo;

    if (rank == 0) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len;
        MPI_Get_library_version(lib, &len);
        char *nl = strchr(lib, '\n');
        if (nl) *nl = 0;
        printf("MPI_Allreduce(MPI_SUM, float) on %d ranks (%s); sums %s\n", nranks, lib, ok ? "correct" : "WRONG");
        printf("| bytes | reps | median us | fit us | GB/s (n/t) |\n|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < k; i++)
            printf("| %.0f | %d | %.2f | %.2f | %.3f |\n", n[i], reps[i], t[i] * 1e6, (alpha + beta * n[i]) * 1e6,
                   n[i] / t[i] / 1e9);
        printf("fit t(n) = alpha + beta*n (weights 1/t^2): alpha = %.2f us, beta = %.4f ns/B (%.2f GB/s)\n",
               alpha * 1e6, beta * 1e9, 1 / beta / 1e9);
        printf("largest message (%.0f B): %.4f ns/B (%.2f GB/s)\n", n[k - 1], beta_l * 1e9, 1 / beta_l / 1e9);
        printf("ring reading (N = %d): %.3f*n bytes per rank in %.0f steps: %.4f ns/B per link byte "
               "(%.2f GB/s), %.2f us per step\n", nranks, ring, steps, beta / ring * 1e9, ring / beta / 1e9,
               alpha / steps * 1e6);
        printf("%.0f B in %d buckets of <= %.0f B: blocking %.2f ms, Iallreduce buckets %.2f ms; compute %.2f ms, "
               "buckets during compute %.2f ms (overlap %.0f%%), with MPI_Test every 1 ms %.2f ms (overlap %.0f%%)\n",
               max_b, nbuckets, c.bucket * 4.0, t_block * 1e3, t_ibuck * 1e3, t_comp * 1e3, t_both * 1e3,
               100 * ov_plain, t_poll * 1e3, 100 * ov_poll);
        if (json) {
            FILE *f = fopen(json, "w");
            if (!f) {
                fprintf(stderr, "allreduce_bench: cannot write %s\n", json);
            } else {
                fprintf(f, "{\"ranks\": %d, \"library\": \"%s\", \"sums_correct\": %s, \"sizes\": [", nranks, lib,
                        ok ? "true" : "false");
                for (int i = 0; i < k; i++)
                    fprintf(f, "%s\n  {\"bytes\": %.0f, \"reps\": %d, \"median_s\": %.9g}", i ? "," : "", n[i], reps[i], t[i]);
                fprintf(f, "],\n \"alpha_s\": %.9g, \"beta_s_per_byte\": %.9g, \"ring_factor\": %.6g, "
                           "\"ring_steps\": %.0f, \"beta_link_s_per_byte\": %.9g, \"alpha_step_s\": %.9g,\n"
                           " \"beta_largest_s_per_byte\": %.9g,\n"
                           " \"buckets\": {\"bytes\": %.0f, \"bucket_bytes\": %.0f, \"n\": %d, \"blocking_s\": %.9g, "
                           "\"iallreduce_s\": %.9g, \"compute_s\": %.9g, \"overlapped_s\": %.9g, \"overlap\": %.4f, "
                           "\"overlapped_poll_s\": %.9g, \"overlap_poll\": %.4f}}\n",
                        alpha, beta, ring, steps, beta / ring, alpha / steps, beta_l, max_b, c.bucket * 4.0, nbuckets,
                        t_block, t_ibuck, t_comp, t_both, ov_plain, t_poll, ov_poll);
                fclose(f);
            }
        }
    }
    free(send);
    free(recv);
    MPI_Finalize();
    return ok ? 0 : 1;
}
