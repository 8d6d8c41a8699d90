/* conv_thin.h — helpers for the thin (16- to 64-channel) convolutions of
 * small residual networks, called from conv.c's dispatch. */
#ifndef DS_CONV_THIN_H
#define DS_CONV_THIN_H

#include <stddef.h>

#if defined(__AVX512F__)
/* dy [N, G·ocg, ohw] → dyT [N·G, ohw, ocp] (ocp ≥ ocg, a multiple of 16;
 * zeros in the lanes ocg..ocp), the layout dW's dwv tile reads: 16 × 16
 * blocks transposed in registers, samples in parallel. */
void ds_conv_dyt(const float *dy, float *dyt, int n, int oc, int ocg, int ocp, int groups, int ohw);

/* Whether ds_conv_few takes this stride-1 convolution: at most 4 output
 * channels, kernels up to 7 × 7, padding below the kernel size. */
int ds_conv_few_fits(int oc, int kh, int kw, int ph, int pw);
/* y [n, oc, oh, ow] (=, or += when acc) the stride-1 correlation of
 * in [n, c, h, w], zero outside it, with w [oc, c, kh, kw] at padding ph, pw
 * (oh = h + 2·ph − kh + 1, likewise ow); flip: w is the forward's
 * [c, oc, kh, kw], read transposed and rotated (dx of a convolution with c
 * output channels). Pixels in the lanes: 4 output rows × 2 vectors of
 * pixels a tile, each loaded input row feeding the (up to) 4 output rows it
 * reaches, the weights broadcast. For dx of a one-channel input layer
 * (LeNet's conv1 under FGSM, PGD and saliency), where every other pass
 * fills one lane of sixteen. */
void ds_conv_few(const float *in, const float *w, float *y, int n, int c, int h, int wd, int oc, int kh, int kw,
                 int ph, int pw, int oh, int ow, int flip, int acc);

/* The stride-1 convolution on the padded-width grid (conv_thin.c): xp
 * [n, c, hp, wp] already zero-padded, with at least kw + 15 readable floats
 * after it (read for dropped positions only); y [n, m, oh, ow], oh = hp −
 * kh + 1, ow = wp − kw + 1, is written (+ bias, then max(v, slope·v) or
 * max(v, 0) with relu), or added to with acc; wpk from ds_conv_flat_pack:
 * w [m, c, kh·kw] (flip = 0, a forward) or, for dx, the forward's
 * [c, m, kh·kw] read transposed and rotated (flip = 1). Kernels to 7 × 7. */
int ds_conv_flat_fits(int m, int kh, int kw);
size_t ds_conv_flat_wsize(int m, int c, int taps); /* floats of wpk */
void ds_conv_flat_pack(const float *w, int m, int c, int taps, int flip, float *wpk);
void ds_conv_flat(const float *xp, int n, int c, int hp, int wp, const float *wpk, int m, int kh, int kw, float *y,
                  const float *bias, int relu, float slope, int acc);
#endif

#endif
