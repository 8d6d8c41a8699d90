/* winograd.h — 3×3 stride-1 convolutions by Winograd's F(m×m, 3×3),
 * m = 2 or 4 (src/ops/winograd.c; chosen per layer in src/ops/conv.c). */
#ifndef DS_WINOGRAD_H
#define DS_WINOGRAD_H

#include <stddef.h>

/* y [n, k, oh, ow] (=, or += when accumulate) the correlation of
 * in [n, c, h, w], zero-padded by ph, pw, with a 3×3 kernel, where
 * oh = h + 2·ph − 2 and ow = w + 2·pw − 2: the forward (w [k, c, 3, 3]) or
 * dx (flip: w is the forward's [c, k, 3, 3], read flipped and transposed). */
typedef struct ds_wino_pass {
    const float *in, *w, *bias;
    float *y;
    int n, c, h, w_, ph, pw, k, oh, ow;
    int flip, relu, accumulate;
    int m; /* output tile: 2 or 4 */
} ds_wino_pass;

/* True when the pass fits (32-bit offsets into its padded copy). */
int ds_wino_fits(const ds_wino_pass *p);
/* Floats of scratch ds_wino_conv needs for p (at most this for a smaller batch). */
size_t ds_wino_scratch(const ds_wino_pass *p);
/* Run p with the scratch work (64-byte aligned, ds_wino_scratch floats). */
void ds_wino_conv(const ds_wino_pass *p, float *work);

#endif
