/* winograd.h — 3×3 and 5×5 stride-1 convolutions by Winograd's F(m×m, r×r):
 * F(2×2, 3×3), F(4×4, 3×3), F(2×2, 5×5) (src/ops/winograd.c; chosen per
 * layer in src/ops/conv.c). */
#ifndef DS_WINOGRAD_H
#define DS_WINOGRAD_H

#include <stddef.h>

/* y [n, k, oh, ow] (=, or += when accumulate) the correlation of
 * in [n, c, h, w], zero-padded by ph, pw, with an r×r kernel, where
 * oh = h + 2·ph − r + 1 and ow likewise: the forward (w [k, c, r, r]) or
 * dx (flip: w is the forward's [c, k, r, r], read flipped and transposed). */
typedef struct ds_wino_pass {
    const float *in, *w, *bias;
    float *y;
    int n, c, h, w_, ph, pw, k, oh, ow;
    int flip, relu, accumulate;
    int m; /* output tile: 2 or 4 (kernel 3), 2 (kernel 5) */
    int r; /* kernel size: 3 or 5 */
    const float *dy; /* ds_wino_dw: the output gradient [n, k, oh, ow] */
    float *dw;       /* ds_wino_dw: dW [k, c, r, r], accumulated into */
} ds_wino_pass;

/* True when the pass fits (32-bit offsets into its padded copy). */
int ds_wino_fits(const ds_wino_pass *p);
/* Floats of scratch ds_wino_conv needs for p (at most this for a smaller batch). */
size_t ds_wino_scratch(const ds_wino_pass *p);
/* Run p with the scratch work (64-byte aligned, ds_wino_scratch floats). */
void ds_wino_conv(const ds_wino_pass *p, float *work);

/* dW [k, c, r, r] += the weight gradient of the forward p (in: x, dy: its
 * output gradient), dU_ξ = Σ_tiles (A dY Aᵀ)_ξ · (Bᵀ d B)_ξ, dW = Gᵀ dU G;
 * AVX-512 only (fits says no elsewhere). The sum runs in a fixed order: the
 * result does not depend on the thread count. */
int ds_wino_dw_fits(const ds_wino_pass *p);
size_t ds_wino_dw_scratch(const ds_wino_pass *p);
void ds_wino_dw(const ds_wino_pass *p, float *work);

#endif
