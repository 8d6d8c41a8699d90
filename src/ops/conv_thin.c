/* conv_thin.c — thin-channel convolution helpers (conv_thin.h). */
#include "conv_thin.h"
#include "internal.h"
#include "transpose16.h"

#if defined(__AVX512F__)
#include <immintrin.h>

typedef struct {
    const float *dy;
    float *dyt;
    int oc, ocg, ocp, groups, ohw;
} dyt_task;

/* one (sample, group) per item: for each block of 16 channels × 16 pixels,
 * 16 masked row loads (rows past ocg are zeros), a register transpose, 16
 * stores of 16 channels (pixels past ohw are not stored) */
static void dyt_range(void *arg, long lo, long hi)
{
    const dyt_task *k = arg;
    for (long sg = lo; sg < hi; sg++) {
        long s = sg / k->groups, gi = sg % k->groups;
        const float *src = k->dy + ((size_t)s * k->oc + (size_t)gi * k->ocg) * k->ohw;
        float *d = k->dyt + (size_t)sg * k->ohw * k->ocp;
        for (int o0 = 0; o0 < k->ocp; o0 += 16)
            for (int p0 = 0; p0 < k->ohw; p0 += 16) {
                int np = k->ohw - p0 < 16 ? k->ohw - p0 : 16;
                __mmask16 mp = (__mmask16)((1u << np) - 1);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = o0 + i < k->ocg ? _mm512_maskz_loadu_ps(mp, src + (size_t)(o0 + i) * k->ohw + p0)
                                           : _mm512_setzero_ps();
                transpose16(r);
                for (int i = 0; i < np; i++) _mm512_storeu_ps(d + (size_t)(p0 + i) * k->ocp + o0, r[i]);
            }
    }
}

void ds_conv_dyt(const float *dy, float *dyt, int n, int oc, int ocg, int ocp, int groups, int ohw)
{
    dyt_task k = {dy, dyt, oc, ocg, ocp, groups, ohw};
    ds_parallel_for((long)n * groups, 1, dyt_range, &k);
}
#else
typedef int ds_conv_thin_unused; /* (no AVX-512: nothing here) */
#endif
