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

/* Bᵀ d B of the α×α tile at xc (rows wp·VW apart) into d, α = 4 or 6 */
static inline void input_tile(const float *xc, int wp, int a, vf d[36])
{
    vf e[36];
    for (int y = 0; y < a; y++)
        for (int x = 0; x < a; x++) d[y * a + x] = loadv(xc + ((size_t)y * wp + x) * VW);
    if (a == 4) {
        for (int x = 0; x < 4; x++) BT2(d + x, 4, e + x, 4);
        for (int y = 0; y < 4; y++) BT2(e + y * 4, 1, d + y * 4, 1);
    } else {
        for (int x = 0; x < 6; x++) BT4(d + x, 6, e + x, 6);
        for (int y = 0; y < 6; y++) BT4(e + y * 6, 1, d + y * 6, 1);
    }
}

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
            vf d[36];
            input_tile(x0 + (size_t)c * plane, q->wp, a, d);
            float *o = v + (size_t)c * tb + g0;
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

/* ---- dW: dU_ξ [K × C] = Σ_tiles (A dY Aᵀ)_ξ · V_ξᵀ, dW = Gᵀ dU G ----
 *
 * The forward's layout: a row block's x copied to lanes as above (VW tiles
 * a vector), dy likewise ([k][m][tw·m][VW], zero past the output edge and
 * the batch). A group of TV tile positions of one row block (TV·VW tiles)
 * is transformed (V = Bᵀ d B, dM = A dY Aᵀ); V is transposed by 16×16
 * blocks into [ξ][tile][c], dM stays [ξ][k][tile], so that the product's
 * reduction over tiles reads one tile's input channels as vectors and its
 * output channels as broadcasts: an R × NV tile of dU (R output channels,
 * NV·16 input channels in lanes) stays in registers for the whole group,
 * (R + NV) loads per R·NV FMAs. Row blocks are split into DWC chunks by
 * the shape alone, each summing into its own partial dU in float; the
 * partials are added in double in chunk order and transformed back
 * (Gᵀ dU G, in double): the result does not depend on the thread count. */
#if defined(__AVX512F__)
#define DWC 8 /* chunks of row blocks, at most */

typedef struct {
    int a, th, tw, wp, nb, cp, tv, chunks, slots;
    size_t xs, ds, vx, mx, vt, mt, part, per_slot; /* floats */
} dplan;

static dplan dplan_of(const ds_wino_pass *p)
{
    dplan q;
    q.a = p->m + p->r - 1;
    q.th = (p->oh + p->m - 1) / p->m, q.tw = (p->ow + p->m - 1) / p->m;
    q.wp = q.tw * p->m + p->r - 1;
    q.nb = (int)(((long)p->n * q.th + VW - 1) / VW);
    q.cp = (p->c + 15) / 16 * 16;
    /* a group's transposed V and dM about 512 KiB */
    long per_tv = (long)q.a * q.a * (q.cp + p->k) * VW;
    q.tv = (int)(131072 / per_tv);
    if (q.tv < 1) q.tv = 1;
    if (q.tv > q.tw) q.tv = q.tw;
    q.chunks = q.nb < DWC ? q.nb : DWC;
    int threads = ds_num_threads();
    q.slots = threads < q.chunks ? threads : q.chunks;
    q.xs = up16((size_t)p->c * q.a * q.wp * VW), q.ds = up16((size_t)p->k * p->m * q.tw * p->m * VW);
    /* one ξ's V and dM (+ 16: not 4 KiB apart, which would fill one L1 set) */
    q.vx = (size_t)q.tv * VW * q.cp + 16, q.mx = up16((size_t)q.tv * VW * p->k) + 16;
    q.vt = (size_t)q.a * q.a * q.vx, q.mt = (size_t)q.a * q.a * q.mx;
    q.part = (size_t)q.a * q.a * p->k * q.cp;
    q.per_slot = q.xs + q.ds + q.vt + q.mt;
    return q;
}

int ds_wino_dw_fits(const ds_wino_pass *p)
{
    ds_wino_pass f = *p;
    f.flip = 0;
    return ds_wino_fits(&f) && p->c <= 4096 && p->k <= 4096;
}

size_t ds_wino_dw_scratch(const ds_wino_pass *p)
{
    dplan q = dplan_of(p);
    return 16 + (size_t)q.chunks * q.part + (size_t)q.slots * q.per_slot + 2 * q.part;
}

/* A y: m values to α (the transposes of AT2, AT4, AT26) */
#define A2(d, sd, o, so)                                                                                    \
    do {                                                                                                    \
        vf y0 = (d)[0], y1 = (d)[sd];                                                                       \
        (o)[0] = y0, (o)[so] = y0 + y1, (o)[2 * (so)] = y0 - y1, (o)[3 * (so)] = -y1;                       \
    } while (0)
#define A4(d, sd, o, so)                                                                                    \
    do {                                                                                                    \
        vf y0 = (d)[0], y1 = (d)[sd], y2 = (d)[2 * (sd)], y3 = (d)[3 * (sd)];                               \
        vf e_ = y0 + y2, o_ = y1 + y3, e4_ = y0 + 4.f * y2, o4_ = 2.f * y1 + 8.f * y3;                      \
        (o)[0] = y0, (o)[so] = e_ + o_, (o)[2 * (so)] = e_ - o_, (o)[3 * (so)] = e4_ + o4_,                 \
        (o)[4 * (so)] = e4_ - o4_, (o)[5 * (so)] = y3;                                                      \
    } while (0)
#define A26(d, sd, o, so)                                                                                   \
    do {                                                                                                    \
        vf y0 = (d)[0], y1 = (d)[sd], t_ = 2.f * y1;                                                        \
        (o)[0] = y0, (o)[so] = y0 + y1, (o)[2 * (so)] = y0 - y1, (o)[3 * (so)] = y0 + t_,                   \
        (o)[4 * (so)] = y0 - t_, (o)[5 * (so)] = y1;                                                        \
    } while (0)

/* du[r][j·16..] += Σ_t bs[r·ldb + t] · vs[t·ldv + j·16..]: R output channels (broadcast) by NV vectors of input channels */
static inline __attribute__((always_inline)) void dw_tile(int R, int NV, const float *bs, int ldb, const float *vs,
                                                          int ldv, int tiles, float *du, int ldu)
{
    __m512 acc[24][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NV; j++) acc[r][j] = _mm512_loadu_ps(du + (size_t)r * ldu + j * 16);
    for (int t = 0; t < tiles; t++) {
        __m512 v[4];
        for (int j = 0; j < NV; j++) v[j] = _mm512_load_ps(vs + (size_t)t * ldv + j * 16);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(bs[(size_t)r * ldb + t]);
            for (int j = 0; j < NV; j++) acc[r][j] = _mm512_fmadd_ps(b, v[j], acc[r][j]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(du + (size_t)r * ldu + j * 16, acc[r][j]);
}

typedef void (*dw_fn)(const float *bs, int ldb, const float *vs, int ldv, int tiles, float *du, int ldu);
#define DWT(NV, R)                                                                                          \
    static void dwt_##NV##_##R(const float *bs, int ldb, const float *vs, int ldv, int tiles, float *du,    \
                               int ldu)                                                                     \
    {                                                                                                       \
        dw_tile(R, NV, bs, ldb, vs, ldv, tiles, du, ldu);                                                   \
    }
DWT(1, 1) DWT(1, 2) DWT(1, 3) DWT(1, 4) DWT(1, 5) DWT(1, 6) DWT(1, 7) DWT(1, 8) DWT(1, 9) DWT(1, 10) DWT(1,
11) DWT(1, 12) DWT(1, 13) DWT(1, 14) DWT(1, 15) DWT(1, 16) DWT(1, 17) DWT(1, 18) DWT(1, 19) DWT(1, 20) DWT(1,
21) DWT(1, 22) DWT(1, 23) DWT(1, 24) DWT(2, 1) DWT(2, 2) DWT(2, 3) DWT(2, 4) DWT(2, 5) DWT(2, 6) DWT(2, 7)
DWT(2, 8) DWT(2, 9) DWT(2, 10) DWT(2, 11) DWT(2, 12) DWT(3, 1) DWT(3, 2) DWT(3, 3) DWT(3, 4) DWT(3, 5) DWT(3,
6) DWT(3, 7) DWT(3, 8) DWT(4, 1) DWT(4, 2) DWT(4, 3) DWT(4, 4) DWT(4, 5) DWT(4, 6)
#define E(NV, R) [R] = dwt_##NV##_##R,
static const dw_fn dwt[5][25] = {
    [1] = {E(1, 1) E(1, 2) E(1, 3) E(1, 4) E(1, 5) E(1, 6) E(1, 7) E(1, 8) E(1, 9) E(1, 10) E(1, 11) E(1, 12) E(1, 13) E(1, 14) E(1, 15) E(1, 16) E(1, 17) E(1, 18) E(1, 19) E(1, 20) E(1, 21) E(1, 22) E(1, 23) E(1, 24)},
    [2] = {E(2, 1) E(2, 2) E(2, 3) E(2, 4) E(2, 5) E(2, 6) E(2, 7) E(2, 8) E(2, 9) E(2, 10) E(2, 11) E(2, 12)},
    [3] = {E(3, 1) E(3, 2) E(3, 3) E(3, 4) E(3, 5) E(3, 6) E(3, 7) E(3, 8)},
    [4] = {E(4, 1) E(4, 2) E(4, 3) E(4, 4) E(4, 5) E(4, 6)},
};
static const int dwt_rmax[5] = {0, 24, 12, 8, 6};
#undef E

typedef struct {
    const ds_wino_pass *p;
    const dplan *q;
    float *part, *slots;
    double *us; /* [α²][k][cp]: the partials' sum */
} dw_job;

/* tile positions tx0 .. tx0 + cnt of the row block in xl (x) and dl (dy):
 * vt [α²][cnt·VW][cp] (transposed), mt [α²][k][cnt·VW] (as computed) */
static void dw_transform(const ds_wino_pass *p, const dplan *q, const float *xl, const float *dl, int tx0, int cnt,
                         float *vt, float *mt)
{
    const int a = q->a, m = p->m, tiles = cnt * VW, dwp = q->tw * m;
    __m512 tmp[36][16];
    for (int g = 0; g < cnt; g++) {
        int tx = tx0 + g;
        for (int c0 = 0; c0 < q->cp; c0 += 16) {
            for (int cc = 0; cc < 16; cc++) {
                int c = c0 + cc;
                vf d[36];
                if (c >= p->c) {
                    for (int x = 0; x < a * a; x++) tmp[x][cc] = _mm512_setzero_ps();
                    continue;
                }
                input_tile(xl + (size_t)c * a * q->wp * VW + (size_t)tx * m * VW, q->wp, a, d);
                for (int x = 0; x < a * a; x++) tmp[x][cc] = (__m512)d[x];
            }
            for (int x = 0; x < a * a; x++) {
                transpose16(tmp[x]);
                float *o = vt + (size_t)x * q->vx + (size_t)g * VW * q->cp + c0;
                for (int l = 0; l < 16; l++) _mm512_store_ps(o + (size_t)l * q->cp, tmp[x][l]);
            }
        }
        for (int k = 0; k < p->k; k++) {
            vf d[16], e[24], o[36];
            const float *dk = dl + (size_t)k * m * dwp * VW + (size_t)tx * m * VW;
            for (int y = 0; y < m; y++)
                for (int x = 0; x < m; x++) d[y * m + x] = loadv(dk + ((size_t)y * dwp + x) * VW);
            if (a == 4) {
                for (int x = 0; x < 2; x++) A2(d + x, 2, e + x, 2); /* e [4][2] */
                for (int y = 0; y < 4; y++) A2(e + y * 2, 1, o + y * 4, 1);
            } else if (m == 2) {
                for (int x = 0; x < 2; x++) A26(d + x, 2, e + x, 2); /* e [6][2] */
                for (int y = 0; y < 6; y++) A26(e + y * 2, 1, o + y * 6, 1);
            } else {
                for (int x = 0; x < 4; x++) A4(d + x, 4, e + x, 4); /* e [6][4] */
                for (int y = 0; y < 6; y++) A4(e + y * 4, 1, o + y * 6, 1);
            }
            float *om = mt + (size_t)k * tiles + g * VW;
            for (int x = 0; x < a * a; x++) storev(om + (size_t)x * q->mx, o[x]);
        }
    }
}

/* part [α²][k][cp] += the products of one group of tiles */
static void dw_products(const ds_wino_pass *p, const dplan *q, const float *vt, const float *mt, int tiles,
                        float *part)
{
    const int a2 = q->a * q->a, nv = q->cp / 16, vgroups = (nv + 3) / 4;
    for (int x = 0; x < a2; x++)
        for (int vg = 0; vg < vgroups; vg++) {
            int v0 = vg * nv / vgroups, NV = (vg + 1) * nv / vgroups - v0;
            int rmax = dwt_rmax[NV], rblocks = (p->k + rmax - 1) / rmax;
            for (int rb = 0; rb < rblocks; rb++) {
                int r0 = rb * p->k / rblocks, R = (rb + 1) * p->k / rblocks - r0;
                dwt[NV][R](mt + (size_t)x * q->mx + (size_t)r0 * tiles, tiles, vt + (size_t)x * q->vx + v0 * 16,
                           q->cp, tiles, part + ((size_t)x * p->k + r0) * q->cp + v0 * 16, q->cp);
            }
        }
}

static void dw_range(void *arg, long lo, long hi)
{
    const dw_job *j = arg;
    const ds_wino_pass *p = j->p;
    const dplan *q = j->q;
    /* dy's copy by lanes_in: a pass over dy (k channels, m rows a tile, no padding) */
    ds_wino_pass pd = {.in = p->dy, .n = p->n, .c = p->k, .h = p->oh, .w_ = p->ow, .m = p->m};
    plan qx = {0}, qd = {0};
    qx.a = q->a, qx.th = q->th, qx.wp = q->wp, qx.xs = q->xs;
    qd.a = p->m, qd.th = q->th, qd.wp = q->tw * p->m, qd.xs = q->ds;
    for (long slot = lo; slot < hi; slot++) {
        float *xl = j->slots + (size_t)slot * q->per_slot, *dl = xl + q->xs, *vt = dl + q->ds, *mt = vt + q->vt;
        for (long ch = slot * q->chunks / q->slots; ch < (slot + 1) * q->chunks / q->slots; ch++) {
            float *part = j->part + (size_t)ch * q->part;
            memset(part, 0, q->part * sizeof *part);
            for (long rb = ch * q->nb / q->chunks; rb < (ch + 1) * q->nb / q->chunks; rb++) {
                lanes_in(p, &qx, xl, rb * p->c, rb * p->c, (rb + 1) * p->c);
                lanes_in(&pd, &qd, dl, rb * p->k, rb * p->k, (rb + 1) * p->k);
                for (int tx = 0; tx < q->tw; tx += q->tv) {
                    int cnt = q->tw - tx < q->tv ? q->tw - tx : q->tv;
                    dw_transform(p, q, xl, dl, tx, cnt, vt, mt);
                    dw_products(p, q, vt, mt, cnt * VW, part);
                }
            }
        }
    }
}

/* us[e] = Σ_chunks part[chunk][e] in double, chunk by chunk (e: ξ, c, k) */
static void dw_sum_range(void *arg, long lo, long hi)
{
    const dw_job *j = arg;
    for (long e = lo; e < hi; e++) j->us[e] = 0;
    for (int ch = 0; ch < j->q->chunks; ch++) {
        const float *pc = j->part + (size_t)ch * j->q->part;
        for (long e = lo; e < hi; e++) j->us[e] += pc[e];
    }
}

/* dW[k][c] += Gᵀ us[·][k][c] G, in double, 64 input channels at a time */
static void dw_inverse_range(void *arg, long lo, long hi)
{
    const dw_job *j = arg;
    const ds_wino_pass *p = j->p;
    const dplan *q = j->q;
    const int a = q->a, r = p->r;
    double gm[6][5], e[5] = {0}; /* G [α][r], column i = G·e_i */
    for (int i = 0; i < r; i++) {
        double col[6];
        e[i] = 1;
        g_1d(p->m, r, e, 1, col, 1);
        e[i] = 0;
        for (int x = 0; x < a; x++) gm[x][i] = col[x];
    }
    for (long k = lo; k < hi; k++)
        for (int c0 = 0; c0 < p->c; c0 += 64) {
            int cn = p->c - c0 < 64 ? p->c - c0 : 64;
            double t[5][6][64]; /* Gᵀ u along the rows */
            for (int i = 0; i < r; i++)
                for (int x = 0; x < a; x++) {
                    for (int c = 0; c < cn; c++) t[i][x][c] = 0;
                    for (int y = 0; y < a; y++) {
                        const double *u = j->us + ((size_t)(y * a + x) * p->k + k) * q->cp + c0;
                        for (int c = 0; c < cn; c++) t[i][x][c] += gm[y][i] * u[c];
                    }
                }
            for (int c = 0; c < cn; c++) {
                float *dw = p->dw + ((size_t)k * p->c + c0 + c) * r * r;
                for (int i = 0; i < r; i++)
                    for (int jj = 0; jj < r; jj++) {
                        double s = 0;
                        for (int x = 0; x < a; x++) s += t[i][x][c] * gm[x][jj];
                        dw[i * r + jj] += (float)s;
                    }
            }
        }
}

void ds_wino_dw(const ds_wino_pass *p, float *work)
{
    dplan q = dplan_of(p);
    float *base = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    float *slots = base + (size_t)q.chunks * q.part;
    dw_job j = {p, &q, base, slots, (double *)(slots + (size_t)q.slots * q.per_slot)};
    ds_parallel_for(q.slots, 1, dw_range, &j);
    ds_parallel_for((long)q.part, 4096, dw_sum_range, &j);
    ds_parallel_for(p->k, 1, dw_inverse_range, &j);
}
#else
int ds_wino_dw_fits(const ds_wino_pass *p)
{
    (void)p;
    return 0;
}
size_t ds_wino_dw_scratch(const ds_wino_pass *p)
{
    (void)p;
    return 0;
}
void ds_wino_dw(const ds_wino_pass *p, float *work) { (void)p, (void)work; }
#endif
