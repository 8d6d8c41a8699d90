/* harness.h — a tiny test harness: CHECK macros, a pass/fail tally and a
 * finite-difference gradient checker shared by every op test. */
#ifndef DS_HARNESS_H
#define DS_HARNESS_H

#include "deepsky.h"

#include <math.h>
#include <stdio.h>

extern int ds_t_pass, ds_t_fail;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) ds_t_pass++;                                                       \
        else {                                                                       \
            ds_t_fail++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, ds_last_error());                              \
        }                                                                            \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                        \
    do {                                                                             \
        double _a = (a), _b = (b);                                                   \
        if (fabs(_a - _b) <= (tol)) ds_t_pass++;                                     \
        else {                                                                       \
            ds_t_fail++;                                                             \
            fprintf(stderr, "%s:%d: %s = %g, expected %s = %g (tol %g)\n", __FILE__, \
                    __LINE__, #a, _a, #b, _b, (double)(tol));                        \
        }                                                                            \
    } while (0)

/* max |a − ref| over max |ref| (the absolute error when ref is all zeros;
 * 1e30 when any difference is NaN): a kernel against its reference path. */
double ds_test_rel_err(const float *a, const float *ref, size_t n);

/* Prints "N passed, N failed" and returns the exit status for main. */
int ds_test_summary(const char *suite);

/* A fresh folder under /tmp for this test binary (made on the first call,
 * removed with its contents at exit unless DS_KEEP_TMP is set); NULL on failure. */
const char *ds_test_tmpdir(void);
/* "<tmpdir>/name" in one of 4 rotating static buffers (several may be live). */
const char *ds_test_path(const char *name);

/* Fill with U(lo, hi) from a fixed-seed generator. */
void ds_test_fill(float *v, size_t n, float lo, float hi, ds_rng *r);

/* For a graph x → y with a loss mse(y, t) (t an input named "t" of y's
 * shape, added here): compile, fill x and t with U(−0.5, 0.5) from seed,
 * run one training forward and backward from zeroed gradients. 0 on success. */
int ds_test_mse_step(ds_graph *g, ds_node *x, ds_node *y, uint64_t seed);

/* A malloc'd copy of v[0..n) (NULL when out of memory). */
float *ds_test_dup(const float *v, size_t n);

/* A ds_gemm_direct epilogue that doubles each element handed over and
 * counts it in seen[1 + i·n + j] (n = seen[0]): a tile handed over twice or
 * before its last block shows in the bits or the count. */
void ds_test_epilogue_twice(void *seen, float *c, long ldc, int rows, int cols, int i0, int j0);

/* Finite-difference check of d(Σ out·R)/d(x) for every node in wrt, R a
 * random weighting; compares central differences (step eps) with the
 * backward pass on up to max_elems elements per node. Values of all leaves
 * must already be set. Returns the worst relative error
 * |num − ana| / max(1, |num|, |ana|) scaled by 1/tol, so ≤ 1 passes. */
double ds_gradcheck(ds_graph *g, ds_node *out, ds_node **wrt, int n_wrt, float eps,
                    double tol, int max_elems);

#endif
