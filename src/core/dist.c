/* dist.c — the communicator of data-parallel training (docs/scaling.md).
 *
 * Built with Open MPI (DS_HAVE_MPI) it wraps MPI_COMM_WORLD; built without
 * it, or started without mpirun, the world is one process and every
 * collective is the identity, so the trainer calls the same functions
 * either way. MPI is initialised only when a launcher says so (its
 * environment), so a plain `deepsky train` never pays MPI's start-up.
 * Only the calling (main) thread talks to MPI: MPI_THREAD_FUNNELED.
 *
 * Sums are MPI_SUM unless ordered: then a rank-ordered sum (gather to rank
 * 0 in buckets, summed rank 0, 1, …, N−1, broadcast), the same bits for any
 * MPI algorithm — "deterministic reductions". For two ranks MPI_SUM is
 * already one a + b, the same on both. */
#include "internal.h"

#include <math.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DS_HAVE_MPI
#include <mpi.h>
#endif

struct ds_comm {
    int rank, size;
    int ordered;
    int mpi; /* MPI_Init was ours */
    double reduce_s;
    long reduce_bytes;
    float *tmp; /* ordered sums: [size, bucket] */
};

static ds_comm world = {0, 1, 0, 0, 0, 0, NULL};
static int world_ready;

/* a launcher's environment: Open MPI, PMIx, MPICH/Hydra, Slurm's srun */
static int launched(void)
{
    const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (int i = 0; i < 4; i++)
        if (getenv(v[i]) && *getenv(v[i])) return 1;
    return 0;
}

#ifndef DS_HAVE_MPI
static int launched_size(void)
{
    const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (int i = 0; i < 2; i++)
        if (getenv(v[i]) && *getenv(v[i])) return atoi(getenv(v[i]));
    return launched() ? 2 : 1; /* PMIx alone: assume several */
}
#endif

/* Under a launcher, without DS_NUM_THREADS or OMP_NUM_THREADS: the cores this
 * rank is bound to, or (unbound) the node's cores shared by its ranks — not
 * every rank a thread per core of the node, oversubscribing it N times. */
static void default_threads(void)
{
    if ((getenv("DS_NUM_THREADS") && *getenv("DS_NUM_THREADS")) || (getenv("OMP_NUM_THREADS") && *getenv("OMP_NUM_THREADS")))
        return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN), n = cores;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < cores) {
        n = CPU_COUNT(&set);
    } else {
        const char *l = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        long local = l && *l ? atol(l) : 1;
        n = local > 0 ? cores / local : cores;
    }
    char v[24];
    snprintf(v, sizeof v, "%ld", n < 1 ? 1 : n);
    setenv("DS_NUM_THREADS", v, 0);
}

ds_comm *ds_comm_world(int *argc, char ***argv)
{
    if (world_ready) return &world;
    if (launched()) default_threads();
#ifdef DS_HAVE_MPI
    if (launched()) {
        int provided = 0;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            ds_fail("MPI_Init_thread failed");
            return NULL;
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world.size);
        world.mpi = 1;
    }
#else
    (void)argc, (void)argv;
    if (launched() && launched_size() > 1) {
        ds_fail("started by mpirun with %d processes, but this deepsky was built without MPI (install "
                "libopenmpi-dev and rebuild; docs/scaling.md)", launched_size());
        return NULL;
    }
#endif
    world_ready = 1;
    return &world;
}

int ds_comm_rank(const ds_comm *c) { return c ? c->rank : 0; }
int ds_comm_size(const ds_comm *c) { return c ? c->size : 1; }
int ds_comm_set_ordered(ds_comm *c, int on)
{
    if (c) c->ordered = on != 0;
    return 0;
}
double ds_comm_reduce_seconds(const ds_comm *c) { return c ? c->reduce_s : 0; }
long ds_comm_reduce_bytes(const ds_comm *c) { return c ? c->reduce_bytes : 0; }

const char *ds_comm_backend(void)
{
#ifdef DS_HAVE_MPI
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) v[strcspn(v, ",\n")] = 0;
    return v;
#else
    return "none (built without MPI)";
#endif
}

#ifdef DS_HAVE_MPI
static int mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return ds_fail("%s failed: %s", what, msg);
}

enum { BUCKET = 1 << 20 }; /* floats per ordered-sum bucket: 4 MiB per rank at rank 0 */

static int ordered_sum(ds_comm *c, float *buf, size_t n)
{
    if (c->rank == 0 && !c->tmp && !(c->tmp = malloc((size_t)c->size * BUCKET * sizeof *c->tmp)))
        return ds_fail("ordered all-reduce: out of memory for %d ranks", c->size);
    for (size_t at = 0; at < n; at += BUCKET) {
        int k = (int)(n - at < BUCKET ? n - at : BUCKET), rc;
        if ((rc = MPI_Gather(buf + at, k, MPI_FLOAT, c->tmp, k, MPI_FLOAT, 0, MPI_COMM_WORLD)) != MPI_SUCCESS)
            return mpi_fail(rc, "MPI_Gather");
        if (c->rank == 0)
            for (int i = 0; i < k; i++) {
                float s = c->tmp[i];
                for (int r = 1; r < c->size; r++) s += c->tmp[(size_t)r * k + i];
                buf[at + i] = s;
            }
        if ((rc = MPI_Bcast(buf + at, k, MPI_FLOAT, 0, MPI_COMM_WORLD)) != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return 0;
}
#endif

int ds_comm_allreduce_sum(ds_comm *c, float *buf, size_t n)
{
    if (!c || c->size == 1 || n == 0) return 0;
#ifdef DS_HAVE_MPI
    double t0 = ds_now();
    int r = 0;
    if (c->ordered) {
        r = ordered_sum(c, buf, n);
    } else {
        for (size_t at = 0; at < n && !r; at += 1u << 30) { /* MPI counts are int */
            size_t k = n - at < (1u << 30) ? n - at : (1u << 30);
            int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS) r = mpi_fail(rc, "MPI_Allreduce");
        }
    }
    c->reduce_s += ds_now() - t0;
    c->reduce_bytes += (long)(n * sizeof *buf);
    return r;
#else
    (void)buf;
    return 0;
#endif
}

int ds_comm_allreduce_f64(ds_comm *c, double *buf, int n, int op)
{
    if (!c || c->size == 1 || n <= 0) return 0;
#ifdef DS_HAVE_MPI
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, op == DS_COMM_MAX ? MPI_MAX : op == DS_COMM_MIN ? MPI_MIN : MPI_SUM,
                           MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce");
#else
    (void)buf, (void)op;
    return 0;
#endif
}

int ds_comm_bcast(ds_comm *c, void *buf, size_t bytes, int root)
{
    if (!c || c->size == 1 || bytes == 0) return 0;
#ifdef DS_HAVE_MPI
    for (size_t at = 0; at < bytes; at += 1u << 30) {
        size_t k = bytes - at < (1u << 30) ? bytes - at : (1u << 30);
        int rc = MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return 0;
#else
    (void)buf, (void)root;
    return 0;
#endif
}

int ds_comm_barrier(ds_comm *c)
{
    if (!c || c->size == 1) return 0;
#ifdef DS_HAVE_MPI
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Barrier");
#else
    return 0;
#endif
}

void ds_comm_abort(ds_comm *c, int code)
{
#ifdef DS_HAVE_MPI
    if (c && c->mpi && c->size > 1) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
#else
    (void)c, (void)code;
#endif
}

void ds_comm_finalize(ds_comm *c)
{
    if (!c) return;
#ifdef DS_HAVE_MPI
    int fin = 0;
    if (c->mpi && MPI_Finalized(&fin) == MPI_SUCCESS && !fin) MPI_Finalize();
    c->mpi = 0;
#endif
    free(c->tmp);
    c->tmp = NULL;
}
