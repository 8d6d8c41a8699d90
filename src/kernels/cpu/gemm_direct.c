/* gemm_direct.c — products whose operands are read where they lie:
 *   C [m×n] = alpha·op(A)·B + beta·C (+ bias[j] on column j), B [k×n] row-major.
 *
 * The RBM's four products per update (100×784×500 and its transposes) are
 * too small for packing to pay: GotoBLAS packing copies each operand once
 * per product and per thread (the 100-row side gives every packed B panel
 * only 10 tiles of reuse), which was a fifth of an RBM epoch. Here the
 * micro-kernel reads B rows in place (kc rows of NR floats, an L1-sized
 * strip reused by every row tile) and A in place too (MR rows of A at their
 * stride, or MR contiguous floats of Aᵀ per k); only tiles at the edges of
 * A or B are copied into a zero-padded buffer. The caller transposes an
 * operand it would need as Bᵀ once (ds_transpose) and reuses that copy.
 *
 * Sums run over k in blocks of KC = 256 (each block's sum added to C), the
 * blocks in order, like ds_gemm's packed path, so for the same operands the
 * two paths give the same bits; a finished tile can be handed to an
 * epilogue (an activation) while it is in cache. ds_gemm_binary (below)
 * gives the same bits for a 0/1 A by adding the rows of B it selects.
 */
#include "internal.h"
#include "transpose8.h"

#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VW 16
#define MR 10 /* 20 accumulators of 32 registers; 100 and 500 rows split evenly */
#elif defined(__AVX__)
#define VW 8
#define MR 6
#else
#define VW 4
#define MR 6
#endif
#define NR (2 * VW)
#define KC 256 /* as gemm.c: the same blocks of k, so the same sums */

typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));

typedef struct {
    int m, n, k;
    bool ta;
    const float *a, *b, *bias;
    long lda, ldb, ldc;
    float *c;
    float alpha, beta;
    ds_tile_fn epi;
    void *ctx;
    const int *idx, *start; /* ds_gemm_binary: A's index lists */
} direct_job;

/* acc[i][h] = Σ_k A(k, i)·B(k, h·VW ..), A(k, i) = a[k·sk + i·si], B(k, ·) =
 * b[k·ldb ..]; inlined with si or sk constant 1 */
#if defined(__AVX512F__)
static inline __attribute__((always_inline)) void dkernel(int kc, const float *a, long si, long sk,
                                                          const float *b, long ldb, float *out)
{
    /* named accumulators: GCC keeps an array of them in memory */
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z,
           c51 = z, c60 = z, c61 = z, c70 = z, c71 = z, c80 = z, c81 = z, c90 = z, c91 = z;
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const float *bk = b + (size_t)k * ldb, *ak = a + (size_t)k * sk;
        __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16), t;
#define ROW(i)                                                                                                  \
    t = _mm512_set1_ps(ak[(i) * si]);                                                                         \
    c##i##0 = _mm512_fmadd_ps(t, b0, c##i##0);                                                                \
    c##i##1 = _mm512_fmadd_ps(t, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7) ROW(8) ROW(9)
#undef ROW
    }
    __m512 r[2 * MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41,
                        c50, c51, c60, c61, c70, c71, c80, c81, c90, c91};
    for (int i = 0; i < 2 * MR; i++) _mm512_storeu_ps(out + 16 * i, r[i]);
}
#else
static inline __attribute__((always_inline)) void dkernel(int kc, const float *a, long si, long sk,
                                                          const float *b, long ldb, float *out)
{
    vf acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (vf){0};
    for (int k = 0; k < kc; k++) {
        vf b0, b1;
        memcpy(&b0, b + (size_t)k * ldb, sizeof b0);
        memcpy(&b1, b + (size_t)k * ldb + VW, sizeof b1);
        const float *ak = a + (size_t)k * sk;
        for (int i = 0; i < MR; i++) {
            acc[i][0] += ak[i * si] * b0;
            acc[i][1] += ak[i * si] * b1;
        }
    }
    memcpy(out, acc, sizeof acc);
}
#endif

static void kernel_rows(int kc, const float *a, long lda, const float *b, long ldb, float *out)
{
    dkernel(kc, a, lda, 1, b, ldb, out);
}

static void kernel_cols(int kc, const float *a, long lda, const float *b, long ldb, float *out)
{
    dkernel(kc, a, 1, lda, b, ldb, out);
}

/* C tile = alpha·acc + bias + beta·C on its mr×nr corner, in the order
 * gemm.c's kernel uses (a·alpha + bias, then + beta·old), so that a sum
 * split the same way rounds the same way */
static inline __attribute__((always_inline)) void store(const direct_job *q, const float *acc, float *c,
                                                        const float *bias, float beta, int mr, int nr)
{
    if (nr == NR) {
        vf bv[2] = {{0}, {0}};
        if (bias) memcpy(bv, bias, sizeof bv);
        for (int i = 0; i < mr; i++) {
            float *ci = c + (size_t)i * q->ldc;
            for (int h = 0; h < 2; h++) {
                vf a, old;
                memcpy(&a, acc + i * NR + h * VW, sizeof a);
                vf r = a * q->alpha + bv[h];
                if (beta != 0) {
                    memcpy(&old, ci + h * VW, sizeof old);
                    r += old * beta;
                }
                memcpy(ci + h * VW, &r, sizeof r);
            }
        }
        return;
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *cij = c + (size_t)i * q->ldc + j, r = acc[i * NR + j] * q->alpha + (bias ? bias[j] : 0);
            if (beta != 0) r += *cij * beta;
            *cij = r;
        }
}

/* The strip of B that a range of panels reads next (this panel's next
 * block, or the next panel's first; none past the range or at the copied
 * edge strip), fetched into L2 a share at a time, one share per row
 * tile: the hardware prefetcher does not see rows read at a stride of
 * ldb, or in no order (measured with one thread: 6-8 % of the RBM epoch
 * with the binary products' prefetch alone). */
typedef struct {
    const float *b;
    long ldb;
    int rows, per, at;
} next_strip;

static next_strip strip_after(const direct_job *q, long p, long hi, int blk, int tiles)
{
    int nb = (q->k + KC - 1) / KC, nblk = blk + 1 < nb ? blk + 1 : 0;
    long np = blk + 1 < nb ? p : p + 1;
    next_strip s = {NULL, q->ldb, 0, 0, 0};
    if (np < hi && np * NR + NR <= q->ldb) {
        s.b = q->b + (size_t)nblk * KC * q->ldb + np * NR;
        s.rows = q->k - nblk * KC < KC ? q->k - nblk * KC : KC;
        s.per = (s.rows + tiles - 1) / tiles;
    }
    return s;
}

static inline void fetch_share(next_strip *s)
{
    for (int e = 0; e < s->per && s->at < s->rows; e++, s->at++) {
        __builtin_prefetch(s->b + (size_t)s->at * s->ldb, 0, 2);
        __builtin_prefetch(s->b + (size_t)s->at * s->ldb + NR - 1, 0, 2);
    }
}

/* column panels [lo, hi) of C: for each, the k blocks in order, and in each
 * every row tile */
static void direct_range(void *arg, long lo, long hi)
{
    const direct_job *q = arg;
    float acc[MR * NR] __attribute__((aligned(64)));
    float bbuf[KC * NR] __attribute__((aligned(64)));
    float abuf[KC * MR] __attribute__((aligned(64)));
    for (long p = lo; p < hi; p++) {
        int j = (int)p * NR, nr = q->n - j < NR ? q->n - j : NR;
        for (int pc = 0; pc < q->k; pc += KC) {
            int kc = q->k - pc < KC ? q->k - pc : KC;
            bool first = pc == 0, last = pc + kc == q->k;
            const float *bp = q->b + (size_t)pc * q->ldb + j;
            long ldb = q->ldb;
            if (j + NR > q->ldb) { /* the strip would run past B's rows: a padded copy */
                for (int kk = 0; kk < kc; kk++) {
                    memcpy(bbuf + kk * NR, bp + (size_t)kk * q->ldb, (size_t)nr * sizeof(float));
                    memset(bbuf + kk * NR + nr, 0, (size_t)(NR - nr) * sizeof(float));
                }
                bp = bbuf, ldb = NR;
            }
            next_strip ns = strip_after(q, p, hi, pc / KC, (q->m + MR - 1) / MR);
            for (int i = 0; i < q->m; i += MR) {
                int mr = q->m - i < MR ? q->m - i : MR;
                fetch_share(&ns);
                if (mr == MR) {
                    if (q->ta) kernel_cols(kc, q->a + (size_t)pc * q->lda + i, q->lda, bp, ldb, acc);
                    else kernel_rows(kc, q->a + (size_t)i * q->lda + pc, q->lda, bp, ldb, acc);
                } else { /* the last rows: a zero-padded copy, MR floats per k */
                    memset(abuf, 0, sizeof(float) * (size_t)kc * MR);
                    for (int kk = 0; kk < kc; kk++)
                        for (int ii = 0; ii < mr; ii++)
                            abuf[kk * MR + ii] = q->ta ? q->a[(size_t)(pc + kk) * q->lda + i + ii]
                                                       : q->a[(size_t)(i + ii) * q->lda + pc + kk];
                    kernel_cols(kc, abuf, MR, bp, ldb, acc);
                }
                float *c = q->c + (size_t)i * q->ldc + j;
                store(q, acc, c, first && q->bias ? q->bias + j : NULL, first ? q->beta : 1.0f, mr, nr);
                if (last && q->epi) q->epi(q->ctx, c, q->ldc, mr, nr, i, j);
            }
        }
    }
}

void ds_gemm_direct(bool ta, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                    float beta, float *c, int ldc, const float *bias, ds_tile_fn epi, void *ctx)
{
    if (m <= 0 || n <= 0 || k <= 0) return;
    direct_job q = {m, n, k, ta, a, b, bias, lda, ldb, ldc, c, alpha, beta, epi, ctx, NULL, NULL};
    long panels = (n + NR - 1) / NR;
    /* runs of panels taken in turn (4 per thread): a thread that the
     * machine's other load holds back leaves its share to the others
     * instead of making them wait; small products stay on the calling
     * thread. The panel split does not change any sum. */
    long min = (double)m * n * k <= 262144.0 ? panels : 1;
    ds_parallel_for_grains(panels, min, 4, direct_range, &q);
}

/* ---- products whose A is 0/1: each row of A·B a sum of selected rows of B ----
 *
 * With a = 1 the kernel's fma(a, b, s) is the rounded b + s, and with a = 0
 * it leaves s as it is (s is never −0: it starts at +0, and a rounded sum
 * is −0 only when both terms are): so the adds of the rows of B that A
 * selects, in the order of k, in the same blocks of KC, give the dense
 * kernel's bits, for B finite (0·inf is NaN there, nothing here). Loads
 * bound the sums (one vector of B per add, no reuse in registers): on Zen 4
 * an add costs about 1.8 of the dense kernel's FMAs, so at 31 % ones (the
 * binarised pixels) a product takes 0.6 of the dense time (lists
 * included), and past about 60 % none is saved. BR rows run together, their 2·BR sums independent,
 * to hide the add's latency, the rows of each block sorted by their count
 * of ones so that the four run out together (the rest of a longer row is
 * summed alone, latency-bound); B is read as the dense path reads it
 * (a KC × NR strip per block, the edge strip copied, 64-byte aligned rows
 * wanted: a split load costs a second one). Each panel's rows go to the
 * epilogue in order once all are stored, so its column sums see the rows
 * in order, as from ds_gemm_direct. */
#define BR 4

static int by_key(const void *x, const void *y) { return *(const int *)x - *(const int *)y; }

int ds_binary_index(int m, int k, const float *a, int lda, int *idx, int *start)
{
    if ((double)m * k + 16 > 2147483647.0) return -1; /* the offsets are ints */
    int nb = (k + KC - 1) / KC, *out = idx;
    for (int i = 0; i < m; i++) {
        const float *ai = a + (size_t)i * lda;
        unsigned bad = 0;
        for (int p = 0; p < nb; p++) {
            int k0 = p * KC, k1 = k - k0 < KC ? k : k0 + KC;
            start[i * nb + p] = (int)(out - idx);
            int kk = k0;
#if defined(__AVX512F__)
            const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            const __m512 one = _mm512_set1_ps(1), zero = _mm512_setzero_ps();
            for (; kk < k1; kk += 16) {
                __mmask16 in = k1 - kk >= 16 ? 0xffff : (__mmask16)((1u << (k1 - kk)) - 1);
                __m512 x = _mm512_maskz_loadu_ps(in, ai + kk);
                __mmask16 m1 = _mm512_cmp_ps_mask(x, one, _CMP_EQ_OQ);
                bad |= (unsigned)(__mmask16)~(m1 | _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ));
                /* the compress into a register: into memory it is microcoded on Zen 4 */
                __m512i ks = _mm512_add_epi32(_mm512_set1_epi32(kk - k0), iota);
                _mm512_storeu_si512(out, _mm512_maskz_compress_epi32(m1, ks));
                out += __builtin_popcount(m1);
            }
#endif
            for (; kk < k1; kk++) { /* branch-free: out[0] is written whatever the value */
                float x = ai[kk];
                *out = kk - k0;
                out += x == 1.0f;
                bad |= !(x == 0.0f || x == 1.0f);
            }
        }
        if (bad) return -1;
    }
    start[m * nb] = (int)(out - idx);
    /* each block's rows by their count of ones (then index: a total order,
     * the same whatever qsort does with ties), so that the BR rows summed
     * together have about as many terms (images differ: 10 % ink to 50 %);
     * the key count·2²² + row fits an int for m < 2²² */
    int *order = start + m * nb + 1;
    for (int p = 0; p < nb; p++) {
        int *o = order + (size_t)p * m;
        for (int i = 0; i < m; i++) o[i] = m < (1 << 22) ? (start[i * nb + p + 1] - start[i * nb + p]) << 22 | i : i;
        if (m < (1 << 22)) {
            qsort(o, (size_t)m, sizeof *o, by_key);
            for (int i = 0; i < m; i++) o[i] &= (1 << 22) - 1;
        }
    }
    return (int)(out - idx);
}

/* out [rows × NR] = Σ_t b[ix_r[t]·ldb ..] for each row r < rows ≤ BR, t < cnt[r], in order */
static inline __attribute__((always_inline)) void bsum(int rows, const int *const *ix, const int *cnt,
                                                       const float *b, long ldb, float *out)
{
    vf s[BR][2];
    for (int r = 0; r < BR; r++) s[r][0] = s[r][1] = (vf){0};
    int t = 0;
    if (rows == BR) {
        int n = cnt[0];
        for (int r = 1; r < BR; r++) n = cnt[r] < n ? cnt[r] : n;
        for (; t < n; t++)
#pragma GCC unroll 8
            for (int r = 0; r < BR; r++) {
                const float *p = b + (size_t)ix[r][t] * ldb;
                vf v0, v1;
                memcpy(&v0, p, sizeof v0);
                memcpy(&v1, p + VW, sizeof v1);
                s[r][0] += v0, s[r][1] += v1;
            }
    }
    /* the rest of each row (all of it for fewer than BR rows), one at a time */
#pragma GCC unroll 8
    for (int r = 0; r < BR; r++)
        if (r < rows) {
            for (int u = t; u < cnt[r]; u++) {
                const float *p = b + (size_t)ix[r][u] * ldb;
                vf v0, v1;
                memcpy(&v0, p, sizeof v0);
                memcpy(&v1, p + VW, sizeof v1);
                s[r][0] += v0, s[r][1] += v1;
            }
            memcpy(out + r * NR, s[r], sizeof s[r]);
        }
}

/* column panels [lo, hi) of C, as direct_range: the k blocks in order, in
 * each every group of BR rows */
static void binary_range(void *arg, long lo, long hi)
{
    const direct_job *q = arg;
    float acc[BR * NR] __attribute__((aligned(64)));
    float bbuf[KC * NR] __attribute__((aligned(64)));
    int nb = (q->k + KC - 1) / KC;
    for (long p = lo; p < hi; p++) {
        int j = (int)p * NR, nr = q->n - j < NR ? q->n - j : NR;
        for (int blk = 0; blk < nb; blk++) {
            int pc = blk * KC, kc = q->k - pc < KC ? q->k - pc : KC;
            bool first = pc == 0;
            const float *bp = q->b + (size_t)pc * q->ldb + j;
            long ldb = q->ldb;
            if (j + NR > q->ldb) {
                for (int kk = 0; kk < kc; kk++) {
                    memcpy(bbuf + kk * NR, bp + (size_t)kk * q->ldb, (size_t)nr * sizeof(float));
                    memset(bbuf + kk * NR + nr, 0, (size_t)(NR - nr) * sizeof(float));
                }
                bp = bbuf, ldb = NR;
            }
            const int *order = q->start + (size_t)q->m * nb + 1 + (size_t)blk * q->m;
            next_strip ns = strip_after(q, p, hi, blk, (q->m + BR - 1) / BR);
            for (int i = 0; i < q->m; i += BR) {
                fetch_share(&ns);
                int mr = q->m - i < BR ? q->m - i : BR, cnt[BR];
                const int *ix[BR];
                for (int r = 0; r < mr; r++) {
                    const int *st = q->start + (size_t)order[i + r] * nb + blk;
                    ix[r] = q->idx + st[0], cnt[r] = st[1] - st[0];
                }
                bsum(mr, ix, cnt, bp, ldb, acc);
                for (int r = 0; r < mr; r++)
                    store(q, acc + r * NR, q->c + (size_t)order[i + r] * q->ldc + j,
                          first && q->bias ? q->bias + j : NULL, first ? q->beta : 1.0f, 1, nr);
            }
        }
        /* the panel's rows finished: to the epilogue in order, MR at a time */
        for (int i = 0; q->epi && i < q->m; i += MR)
            q->epi(q->ctx, q->c + (size_t)i * q->ldc + j, q->ldc, q->m - i < MR ? q->m - i : MR, nr, i, j);
    }
}

void ds_gemm_binary(int m, int n, int k, float alpha, const int *idx, const int *start, const float *b, int ldb,
                    float beta, float *c, int ldc, const float *bias, ds_tile_fn epi, void *ctx)
{
    if (m <= 0 || n <= 0 || k <= 0) return;
    direct_job q = {m, n, k, false, NULL, b, bias, 0, ldb, ldc, c, alpha, beta, epi, ctx, idx, start};
    long panels = (n + NR - 1) / NR;
    long min = (double)m * n * k <= 262144.0 ? panels : 1;
    ds_parallel_for_grains(panels, min, 4, binary_range, &q);
}

/* ---- dst [cols × rows] = srcᵀ, for an operand needed transposed ---- */

typedef struct {
    int rows, cols;
    const float *s;
    long ls;
    float *d;
    long ld;
} tr_job;

/* source columns [8·lo, 8·hi): destination rows */
static void tr_range(void *arg, long lo, long hi)
{
    const tr_job *q = arg;
    int j1 = (int)hi * 8 < q->cols ? (int)hi * 8 : q->cols;
    for (int j = (int)lo * 8; j < j1; j += 8) {
        int i = 0;
        if (j + 8 <= q->cols)
            for (; i + 8 <= q->rows; i += 8) ds_transpose8(q->s + (size_t)i * q->ls + j, q->ls, q->d + (size_t)j * q->ld + i, q->ld);
        for (int jj = j; jj < j + 8 && jj < q->cols; jj++)
            for (int ii = i; ii < q->rows; ii++) q->d[(size_t)jj * q->ld + ii] = q->s[(size_t)ii * q->ls + jj];
    }
}

void ds_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd)
{
    if (rows <= 0 || cols <= 0) return;
    tr_job q = {rows, cols, src, lds, dst, ldd};
    long blocks = (cols + 7) / 8;
    ds_parallel_for(blocks, (long)(16384 / ((long)rows * 8)) + 1, tr_range, &q);
}
