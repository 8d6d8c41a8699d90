/* winograd.c — 3×3 and 5×5 stride-1 convolutions by Winograd's minimal
 * filtering F(m×m, r×r): F(2×2, 3×3), F(4×4, 3×3) and F(2×2, 5×5) (Lavin &
 * Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
 *   Y_tile = Aᵀ [ Σ_c U_c ⊙ V_c ] A,  U = G g Gᵀ (the filter), V = Bᵀ d B
 * (an α×α input tile d, α = m + r − 1; F(4×4, 3×3) and F(2×2, 5×5) share
 * α = 6, the points 0, ±1, ±2, ∞ and so Bᵀ). The sum over input channels
 * of the element-wise products is, for each of the α² positions ξ, a matrix
 * product M_ξ [K × tiles] = U_ξ [K × C] · V_ξ [C × tiles], done by GEMM's own
 * micro-kernel (ds_tile_shifted with unmasked rows: B is V_ξ as it lies).
 * Per output pixel and channel pair that is α²/m² multiplies instead of r²:
 * 4 for F(2×2, 3×3) (2.25× fewer), 2.25 for F(4×4, 3×3) (4×), 9 for
 * F(2×2, 5×5) (2.8×), plus transforms that cost O(C + K) per tile.
 *
 * Vector lanes are tile rows: lane l of row block rb is the tile row
 * (s, ty) = divmod(rb·VW + l, th) of sample s. The input is copied,
 * transposed to [row block][c][α][wp][VW] (the α input rows of each tile
 * row side by side, zero outside the image and past the batch), so every
 * value of VW tiles is one aligned vector load (no gathers: about 50 cycles
 * each on the CI machine) and every tile reads in bounds; a small batch
 * still fills the lanes (n·th of them), and since each tile's arithmetic is
 * the same in any lane, results do not depend on the batch. The tw tile
 * positions of a row block are tw·VW product columns. A task takes a chunk
 * of row blocks (about 1 MiB of copies, in cache; with fewer row blocks
 * than threads the stages run one after another, each in parallel),
 * transforms their input in blocks of TB columns (a multiple of NR), runs
 * the α² products into GEMM tiles laid out so that the output transform
 * reads VW columns of one output channel as one vector, and stores into a
 * copy of the same lane layout, which a last pass transposes back to NCHW
 * with the bias, relu or accumulation. The filter transform (K·C of them,
 * in double) is done once per call: it is what makes small batches slow.
 */
#include "internal.h"
#include "transpose16.h"
#include "winograd.h"

#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX2__)
#define VW 8
#else
#define VW 4
#endif
typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));
#define TB_MAX 256 /* columns per block, at most */

#if defined(__AVX512F__)
/* transpose16: src/ops/transpose16.h */
#endif

/* the plan shared by ds_wino_scratch and ds_wino_conv. A "row" is one tile
 * row of one sample (n·th of them); VW rows side by side are a row block,
 * copied to [c][α][wp][VW]; its tw tile positions are tw·VW product columns. */
typedef struct {
    int a, th, tw, wp, mr, nr, kp, tb, slots, nb, g;
    int fused; /* each task whole row blocks, g at a time (copy in, products, copy out: in cache) */
    long tiles; /* nb·tw: tile positions × row blocks (VW columns each) */
    long chunks, blocks; /* fused: chunks of g row blocks; else the blocks of all columns */
    size_t xs, ys, xp, yp, u, per_slot; /* floats, each rounded to 16 */
} plan;

static size_t up16(size_t v) { return (v + 15) / 16 * 16; }

static plan plan_of(const ds_wino_pass *p)
{
    plan q;
    q.a = p->m + p->r - 1;
    q.th = (p->oh + p->m - 1) / p->m, q.tw = (p->ow + p->m - 1) / p->m;
    q.wp = q.tw * p->m + p->r - 1;
    q.mr = ds_gemm_mr(), q.nr = ds_gemm_nr();
    q.kp = (p->k + q.mr - 1) / q.mr;
    q.nb = (int)(((long)p->n * q.th + VW - 1) / VW);
    q.tiles = (long)q.nb * q.tw;
    /* a block's V and M together about 256 KiB (L2), 1 to 8 column panels */
    size_t per_col = (size_t)q.a * q.a * ((size_t)p->c + (size_t)q.kp * q.mr);
    long tb = (long)(65536 / per_col) / q.nr * q.nr;
    if (tb < q.nr) tb = q.nr;
    if (tb > TB_MAX) tb = TB_MAX / q.nr * q.nr;
    long need = (q.tiles * VW + q.nr - 1) / q.nr * q.nr;
    if (tb > need) tb = need;
    q.tb = (int)tb;
    int threads = ds_num_threads();
    q.xs = up16((size_t)p->c * q.a * q.wp * VW), q.ys = up16((size_t)p->k * p->m * p->ow * VW);
    q.fused = q.nb >= threads;
    if (q.fused) {
        /* g row blocks a chunk: their copies about 1 MiB, and every thread some chunks */
        long g = (long)(262144 / (q.xs + q.ys));
        if (g > q.nb / threads) g = q.nb / threads;
        q.g = g < 1 ? 1 : (int)g;
        q.chunks = (q.nb + q.g - 1) / q.g;
        q.slots = (int)(threads < q.chunks ? threads : q.chunks);
        q.xp = q.yp = 0;
    } else {
        q.g = q.nb, q.chunks = 1;
        q.blocks = (q.tiles * VW + tb - 1) / tb;
        q.slots = (int)(2L * threads < q.blocks ? 2L * threads : q.blocks);
        q.xp = q.nb * q.xs, q.yp = q.nb * q.ys;
    }
    q.u = up16((size_t)q.a * q.a * q.kp * q.mr * p->c);
    q.per_slot = up16((size_t)q.a * q.a * p->c * tb) + up16((size_t)q.a * q.a * q.kp * q.mr * tb);
    if (q.fused) q.per_slot += (size_t)q.g * (q.xs + q.ys); /* the chunk's copies */
    return q;
}

int ds_wino_fits(const ds_wino_pass *p)
{
    plan q = plan_of(p);
    return ((p->r == 3 && (p->m == 2 || p->m == 4)) || (p->r == 5 && p->m == 2)) && p->ph >= 0 && p->pw >= 0 &&
           p->oh == p->h + 2 * p->ph - (p->r - 1) && p->ow == p->w_ + 2 * p->pw - (p->r - 1) && p->oh >= 1 &&
           p->ow >= 1 && (size_t)q.nb * q.xs < ((size_t)1 << 31) && (size_t)q.nb * q.ys < ((size_t)1 << 31);
}

size_t ds_wino_scratch(const ds_wino_pass *p)
{
    plan q = plan_of(p);
    /* + 16: the alignment to 64 bytes; + c: the row offsets */
    return 16 + q.xp + q.yp + q.u + (size_t)q.slots * q.per_slot + up16((size_t)p->c);
}

/* ---- the 1-D transforms (the 2-D ones are rows, then columns) ---- */

/* Bᵀ d, d of length α read with stride sd, into o with stride so */
#define BT2(d, sd, o, so)                                                                                   \
    do {                                                                                                    \
        vf w0 = (d)[0], w1 = (d)[sd], w2 = (d)[2 * (sd)], w3 = (d)[3 * (sd)];                               \
        (o)[0] = w0 - w2, (o)[so] = w1 + w2, (o)[2 * (so)] = w2 - w1, (o)[3 * (so)] = w1 - w3;              \
    } while (0)
#define BT4(d, sd, o, so)                                                                                   \
    do {                                                                                                    \
        vf w0 = (d)[0], w1 = (d)[sd], w2 = (d)[2 * (sd)], w3 = (d)[3 * (sd)], w4 = (d)[4 * (sd)],           \
           w5 = (d)[5 * (sd)];                                                                              \
        vf p_ = w4 - 4.f * w2, q_ = w3 - 4.f * w1, r_ = w4 - w2, s_ = 2.f * (w3 - w1);                                \
        (o)[0] = 4.f * w0 - 5.f * w2 + w4, (o)[so] = p_ + q_, (o)[2 * (so)] = p_ - q_, (o)[3 * (so)] = r_ + s_,        \
        (o)[4 * (so)] = r_ - s_, (o)[5 * (so)] = 4.f * w1 - 5.f * w3 + w5;                                         \
    } while (0)
/* Aᵀ m: α values to m */
#define AT2(d, sd, o, so)                                                                                   \
    do {                                                                                                    \
        vf w0 = (d)[0], w1 = (d)[sd], w2 = (d)[2 * (sd)], w3 = (d)[3 * (sd)];                               \
        (o)[0] = w0 + w1 + w2, (o)[so] = w1 - w2 - w3;                                                      \
    } while (0)
#define AT4(d, sd, o, so)                                                                                   \
    do {                                                                                                    \
        vf w0 = (d)[0], w1 = (d)[sd], w2 = (d)[2 * (sd)], w3 = (d)[3 * (sd)], w4 = (d)[4 * (sd)],           \
           w5 = (d)[5 * (sd)];                                                                              \
        vf s12_ = w1 + w2, d12_ = w1 - w2, s34_ = w3 + w4, d34_ = w3 - w4;                                      \
        (o)[0] = w0 + s12_ + s34_, (o)[so] = d12_ + 2.f * d34_, (o)[2 * (so)] = s12_ + 4.f * s34_,                    \
        (o)[3 * (so)] = d12_ + 8.f * d34_ + w5;                                                                 \
    } while (0)

/* Aᵀ m of F(2, 5): 6 values to 2 */
#define AT26(d, sd, o, so)                                                                                  \
    do {                                                                                                    \
        vf w0 = (d)[0], w1 = (d)[sd], w2 = (d)[2 * (sd)], w3 = (d)[3 * (sd)], w4 = (d)[4 * (sd)],           \
           w5 = (d)[5 * (sd)];                                                                              \
        (o)[0] = w0 + (w1 + w2) + (w3 + w4), (o)[so] = (w1 - w2) + 2.f * (w3 - w4) + w5;                    \
    } while (0)

/* G g for an r-tap g (stride sg), in double: α values */
static void g_1d(int m, int r, const double *g, int sg, double *o, int so)
{
    double g0 = g[0], g1 = g[sg], g2 = g[2 * sg];
    if (r == 5) { /* the points of F(4, 3): 0, ±1, ±2, ∞; row p is s_p·(1, p, p², p³, p⁴) */
        double g3 = g[3 * sg], g4 = g[4 * sg];
        o[0] = g0 / 4, o[so] = -(g0 + g1 + g2 + g3 + g4) / 6, o[2 * so] = -(g0 - g1 + g2 - g3 + g4) / 6;
        o[3 * so] = (g0 + 2 * g1 + 4 * g2 + 8 * g3 + 16 * g4) / 24;
        o[4 * so] = (g0 - 2 * g1 + 4 * g2 - 8 * g3 + 16 * g4) / 24, o[5 * so] = g4;
        return;
    }
    if (m == 2) {
        o[0] = g0, o[so] = (g0 + g1 + g2) / 2, o[2 * so] = (g0 - g1 + g2) / 2, o[3 * so] = g2;
        return;
    }
    o[0] = g0 / 4, o[so] = -(g0 + g1 + g2) / 6, o[2 * so] = -(g0 - g1 + g2) / 6;
    o[3 * so] = g0 / 24 + g1 / 12 + g2 / 6, o[4 * so] = g0 / 24 - g1 / 12 + g2 / 6, o[5 * so] = g2;
}

/* ---- the filter transform: U_ξ as GEMM A panels ----
 * up[((ξ·KP + kp)·C + c)·MR + i] = U_ξ[kp·MR + i][c] (0 past K) */
typedef struct {
    const ds_wino_pass *p;
    const plan *q;
    float *up;
} filt_job;

static void filt_range(void *arg, long lo, long hi)
{
    const filt_job *j = arg;
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a;
    for (long ko = lo; ko < hi; ko++) {
        int kp = (int)(ko / q->mr), i = (int)(ko % q->mr);
        for (int c = 0; c < p->c; c++) {
            const int kr = p->r, taps = kr * kr;
            double g[25], t[6 * 5], u[36];
            for (int e = 0; e < taps; e++)
                g[e] = ko >= p->k ? 0
                       : p->flip ? p->w[((size_t)c * p->k + ko) * taps + taps - 1 - e] /* W[c][k] flipped */
                                 : p->w[((size_t)ko * p->c + c) * taps + e];
            for (int col = 0; col < kr; col++) g_1d(p->m, kr, g + col, kr, t + col, kr); /* t [α][r] */
            for (int r = 0; r < a; r++) g_1d(p->m, kr, t + r * kr, 1, u + r * a, 1);       /* u [α][α] */
            for (int x = 0; x < a * a; x++)
                j->up[(((size_t)x * q->kp + kp) * p->c + c) * q->mr + i] = (float)u[x];
        }
    }
}

/* ---- per block of tiles ---- */
typedef struct {
    const ds_wino_pass *p;
    const plan *q;
    const float *xp, *up; /* xp, yp: the copies of the row blocks from sb0 on */
    const int32_t *off;
    float *slots, *yp;
    long sb0;
} block_job;

static inline vf loadv(const float *s)
{
    vf v;
    memcpy(&v, s, sizeof v);
    return v;
}
static inline void storev(float *d, vf v) { memcpy(d, &v, sizeof v); }

/* V_ξ [C][TB] of the tiles of columns j0.. (VW each: a tile position of a row block) */
static void input_block(const block_job *j, long j0, int width, float *v)
{
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a, tb = q->tb, m = p->m;
    for (int g0 = 0; g0 < width; g0 += VW) {
        long t = (j0 + g0) / VW;
        const float *x0 = j->xp + (size_t)(t / q->tw - j->sb0) * q->xs + (size_t)(t % q->tw) * m * VW;
        size_t so = (size_t)p->c * tb, plane = (size_t)a * q->wp * VW; /* next ξ; next channel */
        for (int c = 0; c < p->c; c++) {
            const float *xc = x0 + (size_t)c * plane;
            vf d[36], e[36];
            for (int y = 0; y < a; y++)
                for (int x = 0; x < a; x++) d[y * a + x] = loadv(xc + ((size_t)y * q->wp + x) * VW);
            float *o = v + (size_t)c * tb + g0;
            if (a == 4) {
                for (int x = 0; x < 4; x++) BT2(d + x, 4, e + x, 4);
                for (int y = 0; y < 4; y++) BT2(e + y * 4, 1, d + y * 4, 1);
            } else {
                for (int x = 0; x < 6; x++) BT4(d + x, 6, e + x, 6);
                for (int y = 0; y < 6; y++) BT4(e + y * 6, 1, d + y * 6, 1);
            }
            for (int x = 0; x < a * a; x++) storev(o + x * so, d[x]);
        }
    }
}

/* Aᵀ M A of the columns j0.. into the lane-layout output, channel by channel */
static void output_block(const block_job *j, long j0, int width, const float *mt)
{
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    const int a = q->a, m = p->m, qb = q->tb / q->nr, mr = q->mr, nr = q->nr, oh = p->oh, ow = p->ow, kn = p->k;
    (void)oh;
    size_t oplane = (size_t)m * ow * VW, sx = (size_t)q->kp * qb * mr * nr; /* next k; next ξ */
    for (int g0 = 0; g0 < width; g0 += VW) {
        long t = (j0 + g0) / VW;
        int tx = (int)(t % q->tw) * m, rows = m, cols = ow - tx < m ? ow - tx : m; /* rows past oh: dropped later */
        float *y0 = j->yp + (size_t)(t / q->tw - j->sb0) * q->ys + (size_t)tx * VW;
        const float *m0 = mt + (size_t)(g0 / nr) * mr * nr + g0 % nr;
        for (int k = 0; k < kn; k++) {
            const float *src = m0 + (size_t)(k / mr) * qb * mr * nr + (size_t)(k % mr) * nr;
            float *yk = y0 + (size_t)k * oplane;
            vf d[36], e[24], o[16];
            for (int x = 0; x < a * a; x++) d[x] = loadv(src + x * sx);
            if (a == 4) {
                for (int x = 0; x < 4; x++) AT2(d + x, 4, e + x, 4); /* e [2][4] */
                for (int y = 0; y < 2; y++) AT2(e + y * 4, 1, o + y * 2, 1);
            } else if (m == 2) { /* F(2, 5) */
                for (int x = 0; x < 6; x++) AT26(d + x, 6, e + x, 6); /* e [2][6] */
                for (int y = 0; y < 2; y++) AT26(e + y * 6, 1, o + y * 2, 1);
            } else {
                for (int x = 0; x < 6; x++) AT4(d + x, 6, e + x, 6); /* e [4][6] */
                for (int y = 0; y < 4; y++) AT4(e + y * 6, 1, o + y * 4, 1);
            }
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < cols; x++) storev(yk + ((size_t)y * ow + x) * VW, o[y * m + x]);
        }
    }
}

/* blocks [b0, b1) of TB columns from column c0 on (up to c1), with the slot's V and M */
static void run_blocks(const block_job *j, float *v, float *mt, long c0, long c1, long b0, long b1)
{
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a, tb = q->tb, qb = tb / q->nr, mr = q->mr, nr = q->nr;
    uint32_t mask[1024];
    for (int c = 0; c < p->c && c < 1024; c++) mask[c] = (uint32_t)-1 >> (32 - nr);
    for (long b = b0; b < b1; b++) {
        long j0 = c0 + b * tb, width = c1 - j0 < tb ? c1 - j0 : tb;
        int cols = (int)(width + nr - 1) / nr;
        /* columns past the last tile (the last panel's tail): zeros */
        for (int x = 0; x < a * a && width < cols * nr; x++)
            for (int c = 0; c < p->c; c++)
                memset(v + ((size_t)x * p->c + c) * tb + width, 0, (size_t)(cols * nr - width) * sizeof *v);
        input_block(j, j0, (int)width, v);
        for (int x = 0; x < a * a; x++)
            for (int kp = 0; kp < q->kp; kp++)
                for (int cp = 0; cp < cols; cp++) {
                    const float *ap = j->up + ((size_t)x * q->kp + kp) * p->c * mr;
                    float *t = mt + (((size_t)x * q->kp + kp) * qb + cp) * mr * nr;
                    /* channels in chunks of 1024 (the mask array) */
                    for (int k0 = 0; k0 < p->c; k0 += 1024) {
                        int kc = p->c - k0 < 1024 ? p->c - k0 : 1024;
                        ds_tile_shifted(kc, ap + (size_t)k0 * mr, v + ((size_t)x * p->c + k0) * tb + cp * nr,
                                        j->off, mask, t, k0 > 0);
                    }
                }
        output_block(j, j0, (int)width, mt);
    }
}

static void lanes_in(const ds_wino_pass *p, const plan *q, float *xp, long it0, long lo, long hi);
static void lanes_out(const ds_wino_pass *p, const plan *q, const float *yp, long it0, long lo, long hi);

static void block_range(void *arg, long lo, long hi)
{
    const block_job *j = arg;
    const plan *q = j->q;
    const ds_wino_pass *p = j->p;
    size_t vs = up16((size_t)q->a * q->a * p->c * q->tb), ms = up16((size_t)q->a * q->a * q->kp * q->mr * q->tb);
    long per_rb = (long)q->tw * VW; /* columns of a row block */
    for (long slot = lo; slot < hi; slot++) {
        float *v = j->slots + (size_t)slot * q->per_slot, *mt = v + vs;
        if (!q->fused) {
            run_blocks(j, v, mt, 0, q->tiles * VW, slot * q->blocks / q->slots, (slot + 1) * q->blocks / q->slots);
            continue;
        }
        /* chunks of g row blocks: copy in, the products, copy out */
        float *xs = mt + ms, *ys = xs + (size_t)q->g * q->xs;
        for (long ch = slot * q->chunks / q->slots; ch < (slot + 1) * q->chunks / q->slots; ch++) {
            long r0 = ch * q->g, r1 = r0 + q->g < q->nb ? r0 + q->g : q->nb;
            block_job js = *j;
            js.xp = xs, js.yp = ys, js.sb0 = r0;
            lanes_in(p, q, xs, r0 * p->c, r0 * p->c, r1 * p->c);
            long cols = (r1 - r0) * per_rb;
            run_blocks(&js, v, mt, r0 * per_rb, r1 * per_rb, 0, (cols + q->tb - 1) / q->tb);
            lanes_out(p, q, ys, r0 * p->k, r0 * p->k, r1 * p->k);
        }
    }
}

/* in [n, c, h, w] → xp [nb][c][α][wp][VW]: lane l of row block rb is tile row
 * (s, ty) = divmod(rb·VW + l, th), input rows ty·m − ph .. + α, columns from
 * −pw; zeros outside the image and past the batch */
typedef struct {
    const ds_wino_pass *p;
    const plan *q;
    float *xp;
} lanes_job;

/* planes it of xp (it = rb·c + ci) from lo to hi; xp holds them from it0 on */
static void lanes_in(const ds_wino_pass *p, const plan *q, float *xp, long it0, long lo, long hi)
{
    const int a = q->a, wp = q->wp, h = p->h, w = p->w_, n = p->n, c = p->c, ph = p->ph, pw = p->pw, m = p->m;
    for (long it = lo; it < hi; it++) {
        long rb = it / c;
        int ci = (int)(it % c);
        float *d = xp + (size_t)(rb - it0 / c) * q->xs + (size_t)ci * a * wp * VW;
        for (int y = 0; y < a; y++) {
            float *r = d + (size_t)y * wp * VW;
            memset(r, 0, (size_t)pw * VW * sizeof *r);
            memset(r + (size_t)(pw + w) * VW, 0, (size_t)(wp - pw - w) * VW * sizeof *r);
            r += (size_t)pw * VW;
            const float *src[VW];
            for (int l = 0; l < VW; l++) {
                long row = rb * VW + l, s = row / q->th;
                int iy = (int)(row % q->th) * m - ph + y;
                src[l] = s < n && iy >= 0 && iy < h ? p->in + (((size_t)s * c + ci) * h + iy) * w : NULL;
            }
#if defined(__AVX512F__)
            for (int x0 = 0; x0 < w; x0 += 16) {
                int cnt = w - x0 < 16 ? w - x0 : 16;
                __mmask16 mk = (__mmask16)((1u << cnt) - 1);
                __m512 t[16];
                for (int l = 0; l < 16; l++) t[l] = src[l] ? _mm512_maskz_loadu_ps(mk, src[l] + x0) : _mm512_setzero_ps();
                transpose16(t);
                for (int x = 0; x < cnt; x++) _mm512_store_ps(r + (size_t)(x0 + x) * 16, t[x]);
            }
#else
            for (int x = 0; x < w; x++)
                for (int l = 0; l < VW; l++) r[(size_t)x * VW + l] = src[l] ? src[l][x] : 0;
#endif
        }
    }
}

static void to_lanes_range(void *arg, long lo, long hi)
{
    const lanes_job *j = arg;
    lanes_in(j->p, j->q, j->xp, 0, lo, hi);
}

/* the lane-layout output yp [nb][k][m][ow][VW] → y [n, k, oh, ow] (+ bias, relu; or +=) */
static void lanes_out(const ds_wino_pass *p, const plan *q, const float *yp, long it0, long lo, long hi)
{
    const int k = p->k, n = p->n, relu = p->relu, acc = p->accumulate, m = p->m, oh = p->oh, ow = p->ow;
    for (long it = lo; it < hi; it++) {
        long rb = it / k;
        int ki = (int)(it % k);
        const float *s0 = yp + (size_t)(rb - it0 / k) * q->ys + (size_t)ki * m * ow * VW;
        float b = p->bias && !acc ? p->bias[ki] : 0;
        for (int i = 0; i < m; i++) {
            const float *si = s0 + (size_t)i * ow * VW;
            float *dst[VW];
            for (int l = 0; l < VW; l++) {
                long row = rb * VW + l, s = row / q->th;
                int oy = (int)(row % q->th) * m + i;
                dst[l] = s < n && oy < oh ? p->y + (((size_t)s * k + ki) * oh + oy) * ow : NULL;
            }
#if defined(__AVX512F__)
            __m512 vb = _mm512_set1_ps(b), z = _mm512_setzero_ps();
            for (int x0 = 0; x0 < ow; x0 += 16) {
                int cnt = ow - x0 < 16 ? ow - x0 : 16;
                __mmask16 mk = (__mmask16)((1u << cnt) - 1);
                __m512 t[16];
                for (int x = 0; x < 16; x++) t[x] = x < cnt ? _mm512_load_ps(si + (size_t)(x0 + x) * 16) : z;
                transpose16(t);
                for (int l = 0; l < 16; l++) {
                    if (!dst[l]) continue;
                    __m512 v = t[l];
                    if (acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, dst[l] + x0));
                    else {
                        v = _mm512_add_ps(v, vb);
                        if (relu) v = _mm512_max_ps(v, z);
                    }
                    _mm512_mask_storeu_ps(dst[l] + x0, mk, v);
                }
            }
#else
            for (int l = 0; l < VW; l++) {
                float *d = dst[l];
                if (!d) continue;
                for (int x = 0; x < ow; x++) {
                    float v = si[(size_t)x * VW + l];
                    if (acc) d[x] += v;
                    else {
                        v += b;
                        d[x] = relu && v < 0 ? 0 : v;
                    }
                }
            }
#endif
        }
    }
}

static void from_lanes_range(void *arg, long lo, long hi)
{
    const lanes_job *j = arg;
    lanes_out(j->p, j->q, j->xp, 0, lo, hi);
}

void ds_wino_conv(const ds_wino_pass *p, float *work)
{
    plan q = plan_of(p);
    float *base = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    float *xp = base, *yp = xp + q.xp, *up = yp + q.yp, *slots = up + q.u;
    int32_t *off = (int32_t *)(slots + (size_t)q.slots * q.per_slot);
    lanes_job lj = {p, &q, xp};
    if (!q.fused) ds_parallel_for((long)q.nb * p->c, 1, to_lanes_range, &lj);
    filt_job fj = {p, &q, up};
    ds_parallel_for((long)q.kp * q.mr, 4, filt_range, &fj);
    for (int c = 0; c < p->c && c < 1024; c++) off[c] = c * q.tb;
    block_job bj = {p, &q, xp, up, off, slots, yp, 0};
    ds_parallel_for(q.slots, 1, block_range, &bj);
    lanes_job oj = {p, &q, yp};
    if (!q.fused) ds_parallel_for((long)q.nb * p->k, 1, from_lanes_range, &oj);
}
