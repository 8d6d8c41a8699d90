/* fid.c — sample quality without ImageNet (docs/gan.md): the Fréchet
 * distance between Gaussians fitted to two sets of feature vectors
 * (Heusel et al. 2017's FID, with a domain classifier's features in place
 * of Inception's), and the nearest-neighbour distances that tell whether a
 * generator's samples are copies of its training images.
 *
 * The matrix square roots come from symmetric eigendecompositions in
 * double (Householder tridiagonalisation and the implicit QL iteration,
 * EISPACK's tred2/tql2 as JAMA gives them): c1^½ = V diag(√λ) Vᵀ, then
 * tr((c1^½ c2 c1^½)^½) = Σ √λ of that symmetric positive semi-definite
 * product. Unlike scipy's sqrtm of the non-symmetric c1·c2 this never
 * produces complex parts; round-off's tiny negative eigenvalues (rank-
 * deficient covariances: fewer samples than features, dead ReLUs) are
 * clamped to 0. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ds_feature_stats(const float *f, int n, int dim, double *mean, double *cov)
{
    if (!f || !mean || !cov || dim < 1) return ds_fail("feature statistics: no data (dim %d)", dim);
    if (n < 2) return ds_fail("feature statistics: %d sample%s; a covariance needs at least 2", n, n == 1 ? "" : "s");
    for (long i = 0; i < (long)n * dim; i++)
        if (!isfinite(f[i]))
            return ds_fail("feature statistics: sample %ld, feature %ld is %g (not finite)", i / dim, i % dim, (double)f[i]);
    double *d = malloc(sizeof *d * (size_t)dim);
    if (!d) return ds_fail("feature statistics: out of memory (dim %d)", dim);
    for (int j = 0; j < dim; j++) mean[j] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) mean[j] += f[(size_t)i * dim + j];
    for (int j = 0; j < dim; j++) mean[j] /= n;
    /* two passes: centred before the products, so large means cost no precision */
    memset(cov, 0, sizeof *cov * (size_t)dim * dim);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < dim; j++) d[j] = f[(size_t)i * dim + j] - mean[j];
        for (int a = 0; a < dim; a++) {
            double da = d[a], *row = cov + (size_t)a * dim;
            if (da == 0) continue; /* dead ReLUs: whole rows of zeros */
            for (int b = a; b < dim; b++) row[b] += da * d[b];
        }
    }
    for (int a = 0; a < dim; a++)
        for (int b = a; b < dim; b++) {
            double v = cov[(size_t)a * dim + b] / (n - 1);
            cov[(size_t)a * dim + b] = cov[(size_t)b * dim + a] = v;
        }
    free(d);
    return 0;
}

/* Householder reduction of the symmetric V [n, n] (overwritten by the
 * orthogonal transformation, transposed) to tridiagonal form: diagonal d,
 * sub-diagonal e (e[0] = 0). JAMA's tred2. */
static void tred2(int n, double *V, double *d, double *e)
{
/* V is held transposed (A(i, j) is V[j][i]): the inner loops over k then
 * walk rows, and the eigenvectors come out as V's rows. */
#define A(i, j) V[(size_t)(j) * n + (i)]
    for (int j = 0; j < n; j++) d[j] = A(n - 1, j);
    for (int i = n - 1; i > 0; i--) {
        double scale = 0, h = 0;
        for (int k = 0; k < i; k++) scale += fabs(d[k]);
        if (scale == 0) {
            e[i] = d[i - 1];
            for (int j = 0; j < i; j++) {
                d[j] = A(i - 1, j);
                A(i, j) = 0;
                A(j, i) = 0;
            }
        } else {
            for (int k = 0; k < i; k++) {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            double f = d[i - 1], g = sqrt(h);
            if (f > 0) g = -g;
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for (int j = 0; j < i; j++) e[j] = 0;
            for (int j = 0; j < i; j++) {
                f = d[j];
                A(j, i) = f;
                g = e[j] + A(j, j) * f;
                for (int k = j + 1; k <= i - 1; k++) {
                    g += A(k, j) * d[k];
                    e[k] += A(k, j) * f;
                }
                e[j] = g;
            }
            f = 0;
            for (int j = 0; j < i; j++) {
                e[j] /= h;
                f += e[j] * d[j];
            }
            double hh = f / (h + h);
            for (int j = 0; j < i; j++) e[j] -= hh * d[j];
            for (int j = 0; j < i; j++) {
                f = d[j];
                g = e[j];
                for (int k = j; k <= i - 1; k++) A(k, j) -= f * e[k] + g * d[k];
                d[j] = A(i - 1, j);
                A(i, j) = 0;
            }
        }
        d[i] = h;
    }
    for (int i = 0; i < n - 1; i++) { /* accumulate the transformations */
        A(n - 1, i) = A(i, i);
        A(i, i) = 1;
        double h = d[i + 1];
        if (h != 0) {
            for (int k = 0; k <= i; k++) d[k] = A(k, i + 1) / h;
            for (int j = 0; j <= i; j++) {
                double g = 0;
                for (int k = 0; k <= i; k++) g += A(k, i + 1) * A(k, j);
                for (int k = 0; k <= i; k++) A(k, j) -= g * d[k];
            }
        }
        for (int k = 0; k <= i; k++) A(k, i + 1) = 0;
    }
    for (int j = 0; j < n; j++) {
        d[j] = A(n - 1, j);
        A(n - 1, j) = 0;
    }
    A(n - 1, n - 1) = 1;
    e[0] = 0;
}

/* The implicit QL iteration on the tridiagonal (d, e) from tred2: d becomes
 * the eigenvalues and V's rows the eigenvectors. JAMA's tql2; -1 when an
 * eigenvalue takes more than 60 iterations (never for finite input). */
static int tql2(int n, double *V, double *d, double *e)
{
    for (int i = 1; i < n; i++) e[i - 1] = e[i];
    e[n - 1] = 0;
    double f = 0, tst1 = 0, eps = 0x1p-52;
    for (int l = 0; l < n; l++) {
        tst1 = fmax(tst1, fabs(d[l]) + fabs(e[l]));
        int m = l;
        while (m < n - 1 && fabs(e[m]) > eps * tst1) m++;
        if (m > l) {
            int iter = 0;
            do {
                if (++iter > 60) return -1;
                double g = d[l], p = (d[l + 1] - g) / (2 * e[l]), r = hypot(p, 1);
                if (p < 0) r = -r;
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                double dl1 = d[l + 1], h = g - d[l];
                for (int i = l + 2; i < n; i++) d[i] -= h;
                f += h;
                p = d[m];
                double c = 1, c2 = 1, c3 = 1, el1 = e[l + 1], s = 0, s2 = 0;
                for (int i = m - 1; i >= l; i--) {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for (int k = 0; k < n; k++) {
                        h = A(k, i + 1);
                        A(k, i + 1) = s * A(k, i) + c * h;
                        A(k, i) = c * A(k, i) - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
            } while (fabs(e[l]) > eps * tst1);
        }
        d[l] += f;
        e[l] = 0;
    }
    return 0;
#undef A
}

/* Eigenvalues w and eigenvectors (V's rows, V overwritten: it holds the
 * symmetric matrix on entry) of a symmetric [n, n] matrix. */
static int eigh(int n, double *V, double *w, double *scratch)
{
    tred2(n, V, w, scratch);
    if (tql2(n, V, w, scratch) != 0) return ds_fail("Fréchet distance: the eigendecomposition did not converge");
    return 0;
}

/* C = A·B for [n, n] row-major matrices (i-k-j: rows streamed). */
static void matmul(int n, const double *a, const double *b, double *c)
{
    memset(c, 0, sizeof *c * (size_t)n * n);
    for (int i = 0; i < n; i++) {
        double *ci = c + (size_t)i * n;
        for (int k = 0; k < n; k++) {
            double aik = a[(size_t)i * n + k];
            if (aik == 0) continue;
            const double *bk = b + (size_t)k * n;
            for (int j = 0; j < n; j++) ci[j] += aik * bk[j];
        }
    }
}

int ds_frechet_distance(int dim, const double *m1, const double *c1, const double *m2, const double *c2, double *out)
{
    if (!m1 || !c1 || !m2 || !c2 || !out || dim < 1) return ds_fail("Fréchet distance: no statistics (dim %d)", dim);
    size_t nn = (size_t)dim * dim;
    for (int i = 0; i < dim; i++)
        if (!isfinite(m1[i]) || !isfinite(m2[i]))
            return ds_fail("Fréchet distance: mean %d, feature %d is not finite", isfinite(m1[i]) ? 2 : 1, i);
    for (size_t i = 0; i < nn; i++)
        if (!isfinite(c1[i]) || !isfinite(c2[i]))
            return ds_fail("Fréchet distance: covariance %d, element (%zu, %zu) is not finite", isfinite(c1[i]) ? 2 : 1,
                           i / (size_t)dim, i % (size_t)dim);
    double *v = malloc(sizeof *v * nn), *s = malloc(sizeof *s * nn), *t = malloc(sizeof *t * nn);
    double *w = malloc(sizeof *w * (size_t)dim), *e = malloc(sizeof *e * (size_t)dim);
    int rc = -1;
    if (!v || !s || !t || !w || !e) {
        ds_fail("Fréchet distance: out of memory (dim %d)", dim);
        goto done;
    }
    /* c1^½ = U diag(√λ) Uᵀ, from c1 made exactly symmetric */
    for (int i = 0; i < dim; i++)
        for (int j = 0; j < dim; j++) v[(size_t)i * dim + j] = 0.5 * (c1[(size_t)i * dim + j] + c1[(size_t)j * dim + i]);
    if (eigh(dim, v, w, e) != 0) goto done;
    for (int k = 0; k < dim; k++) w[k] = w[k] > 0 ? sqrt(w[k]) : 0;
    /* s = Σ_k √λ_k u_k u_kᵀ, u_k = row k of v: rows streamed */
    memset(s, 0, sizeof *s * nn);
    for (int k = 0; k < dim; k++) {
        const double *u = v + (size_t)k * dim;
        if (w[k] == 0) continue;
        for (int i = 0; i < dim; i++) {
            double a = w[k] * u[i], *si = s + (size_t)i * dim;
            for (int j = 0; j < dim; j++) si[j] += a * u[j];
        }
    }
    matmul(dim, s, c2, t); /* t = c1^½ c2 */
    matmul(dim, t, s, v);  /* v = c1^½ c2 c1^½, symmetric positive semi-definite up to round-off */
    for (int i = 0; i < dim; i++)
        for (int j = i + 1; j < dim; j++) {
            double a = 0.5 * (v[(size_t)i * dim + j] + v[(size_t)j * dim + i]);
            v[(size_t)i * dim + j] = v[(size_t)j * dim + i] = a;
        }
    if (eigh(dim, v, w, e) != 0) goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dm = 0;
    for (int k = 0; k < dim; k++) tr_sqrt += w[k] > 0 ? sqrt(w[k]) : 0;
    for (int i = 0; i < dim; i++) {
        tr1 += c1[(size_t)i * dim + i];
        tr2 += c2[(size_t)i * dim + i];
        dm += (m1[i] - m2[i]) * (m1[i] - m2[i]);
    }
    double fid = dm + tr1 + tr2 - 2 * tr_sqrt;
    /* the true value is ≥ 0: a negative one is round-off (identical sets) */
    *out = fid > 0 ? fid : 0;
    rc = 0;
done:
    free(v), free(s), free(t), free(w), free(e);
    return rc;
}

/* ---- nearest neighbours -------------------------------------------- */

enum { NN_QB = 256, NN_RB = 2048, NN_K = 4 }; /* query and reference rows per GEMM block; candidates kept */

int ds_nearest_neighbors(const float *q, int nq, const float *ref, int nr, int dim, float *dist, int *index)
{
    if (!q || !ref || !dist || nq < 0 || nr < 1 || dim < 1)
        return ds_fail("nearest neighbours: no data (%d queries, %d reference rows, dim %d)", nq, nr, dim);
    if (nq == 0) return 0;
    double *rn = malloc(sizeof *rn * (size_t)nr);
    float *c = malloc(sizeof *c * (size_t)NN_QB * NN_RB), *best = malloc(sizeof *best * (size_t)NN_QB * NN_K);
    int *arg = malloc(sizeof *arg * (size_t)NN_QB * NN_K);
    if (!rn || !c || !best || !arg) {
        free(rn), free(c), free(best), free(arg);
        return ds_fail("nearest neighbours: out of memory (%d reference rows)", nr);
    }
    for (int r = 0; r < nr; r++) {
        double s = 0;
        for (int k = 0; k < dim; k++) s += (double)ref[(size_t)r * dim + k] * ref[(size_t)r * dim + k];
        rn[r] = s;
    }
    for (int q0 = 0; q0 < nq; q0 += NN_QB) {
        int qb = nq - q0 < NN_QB ? nq - q0 : NN_QB;
        for (int i = 0; i < qb * NN_K; i++) best[i] = INFINITY, arg[i] = -1;
        for (int r0 = 0; r0 < nr; r0 += NN_RB) {
            int rb = nr - r0 < NN_RB ? nr - r0 : NN_RB;
            /* c = −2 q·rᵀ; ‖q‖² is the same for every candidate of a row, so the ranking needs ‖r‖² − 2 q·r */
            ds_gemm(false, true, qb, rb, dim, -2.0f, q + (size_t)q0 * dim, dim, ref + (size_t)r0 * dim, dim, 0.0f, c, rb);
            for (int i = 0; i < qb; i++) {
                const float *ci = c + (size_t)i * rb;
                float *b = best + (size_t)i * NN_K;
                int *a = arg + (size_t)i * NN_K;
                for (int j = 0; j < rb; j++) {
                    float v = ci[j] + (float)rn[r0 + j];
                    if (!(v < b[NN_K - 1])) continue;
                    int p = NN_K - 1; /* insertion into the sorted candidates */
                    for (; p > 0 && v < b[p - 1]; p--) b[p] = b[p - 1], a[p] = a[p - 1];
                    b[p] = v, a[p] = r0 + j;
                }
            }
        }
        /* the float ranking is only good to round-off of ‖q‖² + ‖r‖² (near ties, and a near copy's distance
         * lost in the cancellation): the best few candidates' distances exactly, in double */
        for (int i = 0; i < qb; i++) {
            const float *x = q + (size_t)(q0 + i) * dim;
            double bs = INFINITY;
            int bi = arg[(size_t)i * NN_K];
            for (int p = 0; p < NN_K; p++) {
                int j = arg[(size_t)i * NN_K + p];
                if (j < 0) continue;
                const float *y = ref + (size_t)j * dim;
                double s = 0;
                for (int k = 0; k < dim; k++) s += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
                if (s < bs || (s == bs && j < bi)) bs = s, bi = j;
            }
            dist[q0 + i] = (float)sqrt(bs);
            if (index) index[q0 + i] = bi;
        }
    }
    free(rn), free(c), free(best), free(arg);
    return 0;
}
