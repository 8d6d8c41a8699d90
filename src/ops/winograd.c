/* winograd.c — 3×3 stride-1 convolutions by Winograd's minimal filtering
 * F(m×m, 3×3), m = 2 or 4 (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016):
 *   Y_tile = Aᵀ [ Σ_c U_c ⊙ V_c ] A,  U = G g Gᵀ (the filter), V = Bᵀ d B
 * (an α×α input tile d, α = m + 2). The sum over input channels of the
 * element-wise products is, for each of the α² positions ξ, a matrix
 * product M_ξ [K × tiles] = U_ξ [K × C] · V_ξ [C × tiles], done by GEMM's own
 * micro-kernel (ds_tile_shifted with unmasked rows: B is V_ξ as it lies).
 * Per output pixel and channel pair that is α²/m² multiplies instead of 9:
 * 4 for F(2×2) (2.25× fewer), 2.25 for F(4×4) (4× fewer), plus transforms
 * that cost O(C + K) per tile.
 *
 * The input is copied once, zero-padded to whole tiles, so every tile reads
 * in bounds. Tiles go in blocks of TB (a multiple of NR) to one task at a
 * time: the task transforms its block's input (VW tiles per vector, one
 * lane per tile, the α×α values gathered), runs the α² products into GEMM
 * tiles laid out so that the output transform reads VW tiles of one output
 * channel as one vector, transforms and stores (bias, relu, accumulate).
 * Edge tiles are computed whole and stored only where they lie inside.
 * The filter transform (K·C of them, in double) is done once per call.
 */
#include "internal.h"
#include "winograd.h"

#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
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
#define TB_MAX 256 /* tiles per block, at most */

/* the plan shared by ds_wino_scratch and ds_wino_conv */
typedef struct {
    int a, th, tw, hp, wp, mr, nr, kp, tb, slots;
    long tiles, blocks;
    size_t xp, u, per_slot; /* floats, each rounded to 16 */
} plan;

static size_t up16(size_t v) { return (v + 15) / 16 * 16; }

static plan plan_of(const ds_wino_pass *p)
{
    plan q;
    q.a = p->m + 2;
    q.th = (p->oh + p->m - 1) / p->m, q.tw = (p->ow + p->m - 1) / p->m;
    q.hp = q.th * p->m + 2, q.wp = q.tw * p->m + 2;
    q.mr = ds_gemm_mr(), q.nr = ds_gemm_nr();
    q.kp = (p->k + q.mr - 1) / q.mr;
    q.tiles = (long)p->n * q.th * q.tw;
    /* a block's V and M together about 256 KiB (L2), 1 to 8 column panels */
    size_t per_tile = (size_t)q.a * q.a * ((size_t)p->c + (size_t)q.kp * q.mr);
    long tb = (long)(65536 / per_tile) / q.nr * q.nr;
    if (tb < q.nr) tb = q.nr;
    if (tb > TB_MAX) tb = TB_MAX / q.nr * q.nr;
    long need = (q.tiles + q.nr - 1) / q.nr * q.nr;
    if (tb > need) tb = need;
    q.tb = (int)tb;
    q.blocks = (q.tiles + tb - 1) / tb;
    long slots = 2L * ds_num_threads();
    q.slots = (int)(slots < q.blocks ? slots : q.blocks);
    q.xp = up16((size_t)p->n * p->c * q.hp * q.wp);
    q.u = up16((size_t)q.a * q.a * q.kp * q.mr * p->c);
    q.per_slot = up16((size_t)q.a * q.a * p->c * tb) + up16((size_t)q.a * q.a * q.kp * q.mr * tb);
    return q;
}

int ds_wino_fits(const ds_wino_pass *p)
{
    plan q = plan_of(p);
    return (p->m == 2 || p->m == 4) && p->ph >= 0 && p->pw >= 0 && p->oh == p->h + 2 * p->ph - 2 && p->ow == p->w_ + 2 * p->pw - 2 &&
           p->oh >= 1 && p->ow >= 1 && q.xp < ((size_t)1 << 31) &&
           (size_t)p->n * p->k * p->oh * p->ow < ((size_t)1 << 31);
}

size_t ds_wino_scratch(const ds_wino_pass *p)
{
    plan q = plan_of(p);
    /* + 16: the alignment to 64 bytes; + c: the row offsets */
    return 16 + q.xp + q.u + (size_t)q.slots * q.per_slot + up16((size_t)p->c);
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

/* G g for a 3-tap g (stride sg), in double: α values */
static void g_1d(int m, const double *g, int sg, double *o, int so)
{
    double g0 = g[0], g1 = g[sg], g2 = g[2 * sg];
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
            double g[9], t[6 * 3], u[36];
            for (int e = 0; e < 9; e++)
                g[e] = ko >= p->k ? 0
                       : p->flip ? p->w[((size_t)c * p->k + ko) * 9 + 8 - e] /* W[c][k] flipped */
                                 : p->w[((size_t)ko * p->c + c) * 9 + e];
            for (int col = 0; col < 3; col++) g_1d(p->m, g + col, 3, t + col, 3); /* t [α][3] */
            for (int r = 0; r < a; r++) g_1d(p->m, t + r * 3, 1, u + r * a, 1);   /* u [α][α] */
            for (int x = 0; x < a * a; x++)
                j->up[(((size_t)x * q->kp + kp) * p->c + c) * q->mr + i] = (float)u[x];
        }
    }
}

/* ---- per block of tiles ---- */
typedef struct {
    const ds_wino_pass *p;
    const plan *q;
    const float *xp, *up;
    const int32_t *off;
    float *slots;
} block_job;

/* VW lanes of xc at the offsets idx */
static inline vf gather(const float *xc, const int32_t *idx, int32_t d)
{
#if defined(__AVX512F__)
    __m512i i = _mm512_add_epi32(_mm512_loadu_si512(idx), _mm512_set1_epi32(d));
    return (vf)_mm512_i32gather_ps(i, xc, 4);
#elif defined(__AVX2__)
    __m256i i = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)idx), _mm256_set1_epi32(d));
    return (vf)_mm256_i32gather_ps(xc, i, 4);
#else
    vf v;
    for (int l = 0; l < VW; l++) v[l] = xc[idx[l] + d];
    return v;
#endif
}

static inline vf loadv(const float *s)
{
    vf v;
    memcpy(&v, s, sizeof v);
    return v;
}
static inline void storev(float *d, vf v) { memcpy(d, &v, sizeof v); }

/* V_ξ [C][TB] of tiles t0.. (lanes past the last tile repeat it) */
static void input_block(const block_job *j, long t0, int width, float *v)
{
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a, tb = q->tb, m = p->m;
    size_t plane = (size_t)q->hp * q->wp;
    long per_img = (long)q->th * q->tw;
    for (int g0 = 0; g0 < width; g0 += VW) {
        int32_t base[VW];
        for (int l = 0; l < VW; l++) {
            long t = t0 + g0 + l < q->tiles ? t0 + g0 + l : q->tiles - 1, r = t % per_img;
            base[l] = (int32_t)((t / per_img) * (long)p->c * (long)plane + (r / q->tw) * m * q->wp + (r % q->tw) * m);
        }
        for (int c = 0; c < p->c; c++) {
            const float *xc = j->xp + (size_t)c * plane;
            vf d[36], t[36];
            for (int r = 0; r < a; r++)
                for (int s = 0; s < a; s++) d[r * a + s] = gather(xc, base, r * q->wp + s);
            float *o = v + (size_t)c * tb + g0;
            size_t so = (size_t)p->c * tb; /* next ξ */
            if (m == 2) {
                for (int s = 0; s < 4; s++) BT2(d + s, 4, t + s, 4);
                for (int r = 0; r < 4; r++) {
                    vf e[4];
                    BT2(t + r * 4, 1, e, 1);
                    for (int s = 0; s < 4; s++) storev(o + (r * 4 + s) * so, e[s]);
                }
            } else {
                for (int s = 0; s < 6; s++) BT4(d + s, 6, t + s, 6);
                for (int r = 0; r < 6; r++) {
                    vf e[6];
                    BT4(t + r * 6, 1, e, 1);
                    for (int s = 0; s < 6; s++) storev(o + (r * 6 + s) * so, e[s]);
                }
            }
        }
    }
}

/* Aᵀ M A of tiles t0.. into y, output channel by output channel */
static void output_block(const block_job *j, long t0, const float *mt)
{
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a, m = p->m, tb = q->tb, qb = tb / q->nr, mr = q->mr, nr = q->nr;
    long per_img = (long)q->th * q->tw;
    size_t oplane = (size_t)p->oh * p->ow;
    int32_t obase[TB_MAX];
    int8_t rows[TB_MAX], cols[TB_MAX];
    int nt = q->tiles - t0 < tb ? (int)(q->tiles - t0) : tb;
    for (int l = 0; l < nt; l++) {
        long t = t0 + l, r = t % per_img;
        int ty = (int)(r / q->tw) * m, tx = (int)(r % q->tw) * m;
        obase[l] = (int32_t)((t / per_img) * (long)p->k * (long)oplane + (long)ty * p->ow + tx);
        rows[l] = (int8_t)(p->oh - ty < m ? p->oh - ty : m);
        cols[l] = (int8_t)(p->ow - tx < m ? p->ow - tx : m);
    }
    for (int k = 0; k < p->k; k++) {
        float b = p->bias ? p->bias[k] : 0;
        float *yk = p->y + (size_t)k * oplane;
        const float *mk = mt + (size_t)(k / mr) * qb * mr * nr + (size_t)(k % mr) * nr;
        size_t sx = (size_t)q->kp * qb * mr * nr; /* next ξ */
        for (int g0 = 0; g0 < nt; g0 += VW) {
            const float *src = mk + (size_t)(g0 / nr) * mr * nr + g0 % nr;
            vf d[36], t[24], o[16];
            for (int x = 0; x < a * a; x++) d[x] = loadv(src + x * sx);
            if (m == 2) {
                for (int s = 0; s < 4; s++) AT2(d + s, 4, t + s, 4); /* t [2][4] */
                for (int r = 0; r < 2; r++) AT2(t + r * 4, 1, o + r * 2, 1);
            } else {
                for (int s = 0; s < 6; s++) AT4(d + s, 6, t + s, 6); /* t [4][6] */
                for (int r = 0; r < 4; r++) AT4(t + r * 6, 1, o + r * 4, 1);
            }
            float out[16][VW];
            memcpy(out, o, (size_t)m * m * sizeof(vf));
            int ln = nt - g0 < VW ? nt - g0 : VW;
            for (int l = 0; l < ln; l++) {
                float *yt = yk + obase[g0 + l];
                for (int r = 0; r < rows[g0 + l]; r++)
                    for (int s = 0; s < cols[g0 + l]; s++) {
                        float v = out[r * m + s][l];
                        float *d = yt + (size_t)r * p->ow + s;
                        if (p->accumulate) *d += v;
                        else {
                            v += b;
                            *d = p->relu && v < 0 ? 0 : v;
                        }
                    }
            }
        }
    }
}

static void block_range(void *arg, long lo, long hi)
{
    const block_job *j = arg;
    const ds_wino_pass *p = j->p;
    const plan *q = j->q;
    int a = q->a, tb = q->tb, qb = tb / q->nr, mr = q->mr, nr = q->nr;
    uint32_t mask[1024];
    for (int c = 0; c < p->c && c < 1024; c++) mask[c] = (uint32_t)-1 >> (32 - nr);
    for (long slot = lo; slot < hi; slot++) {
        float *v = j->slots + (size_t)slot * q->per_slot;
        float *mt = v + up16((size_t)a * a * p->c * tb);
        long b0 = slot * q->blocks / q->slots, b1 = (slot + 1) * q->blocks / q->slots;
        for (long b = b0; b < b1; b++) {
            long t0 = b * tb;
            int cols = (int)((q->tiles - t0 < tb ? q->tiles - t0 : tb) + nr - 1) / nr;
            input_block(j, t0, cols * nr, v);
            for (int x = 0; x < a * a; x++)
                for (int kp = 0; kp < q->kp; kp++)
                    for (int cp = 0; cp < cols; cp++) {
                        const float *ap = j->up + ((size_t)x * q->kp + kp) * p->c * mr;
                        float *t = mt + (((size_t)x * q->kp + kp) * qb + cp) * mr * nr;
                        /* channels in chunks of 1024 (the mask array) */
                        for (int c0 = 0; c0 < p->c; c0 += 1024) {
                            int kc = p->c - c0 < 1024 ? p->c - c0 : 1024;
                            ds_tile_shifted(kc, ap + (size_t)c0 * mr, v + ((size_t)x * p->c + c0) * tb + cp * nr,
                                            j->off, mask, t, c0 > 0);
                        }
                    }
            output_block(j, t0, mt);
        }
    }
}

/* the padded copy: in [n·c planes of h×w] at (ph, pw) of hp×wp planes of zeros */
typedef struct {
    const ds_wino_pass *p;
    const plan *q;
    float *xp;
} pad_job;

static void pad_range(void *arg, long lo, long hi)
{
    const pad_job *j = arg;
    const ds_wino_pass *p = j->p;
    int hp = j->q->hp, wp = j->q->wp;
    for (long pl = lo; pl < hi; pl++) {
        float *d = j->xp + (size_t)pl * hp * wp;
        const float *s = p->in + (size_t)pl * p->h * p->w_;
        memset(d, 0, (size_t)p->ph * wp * sizeof *d);
        for (int y = 0; y < p->h; y++) {
            float *r = d + (size_t)(y + p->ph) * wp;
            memset(r, 0, (size_t)p->pw * sizeof *r);
            memcpy(r + p->pw, s + (size_t)y * p->w_, (size_t)p->w_ * sizeof *r);
            memset(r + p->pw + p->w_, 0, (size_t)(wp - p->pw - p->w_) * sizeof *r);
        }
        memset(d + (size_t)(p->ph + p->h) * wp, 0, (size_t)(hp - p->ph - p->h) * wp * sizeof *d);
    }
}

void ds_wino_conv(const ds_wino_pass *p, float *work)
{
    plan q = plan_of(p);
    float *base = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    float *xp = base, *up = xp + q.xp, *slots = up + q.u;
    int32_t *off = (int32_t *)(slots + (size_t)q.slots * q.per_slot);
    pad_job pj = {p, &q, xp};
    ds_parallel_for((long)p->n * p->c, 4, pad_range, &pj);
    filt_job fj = {p, &q, up};
    ds_parallel_for((long)q.kp * q.mr, 4, filt_range, &fj);
    for (int c = 0; c < p->c && c < 1024; c++) off[c] = c * q.tb;
    block_job bj = {p, &q, xp, up, off, slots};
    ds_parallel_for(q.slots, 1, block_range, &bj);
}
