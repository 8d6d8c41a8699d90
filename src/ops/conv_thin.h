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
#endif

#endif
