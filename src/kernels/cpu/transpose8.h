/* transpose8.h — an 8×8 float transpose in registers, shared by GEMM's
 * packing (gemm.c) and the direct GEMM's operand transpose (gemm_direct.c).
 * Generic vectors (__builtin_shufflevector: GCC 12 and clang), so every
 * build has it, AVX2 and the fuzz build's clang included. */
#ifndef DS_TRANSPOSE8_H
#define DS_TRANSPOSE8_H
#include <string.h>

typedef float ds_v8f __attribute__((vector_size(32), aligned(4)));

/* d[j·ld + i] = s[i·ls + j] for i, j < 8: three rounds of shuffles (unpack
 * pairs, then pairs of pairs, then halves) instead of 64 strided stores */
static inline void ds_transpose8(const float *s, long ls, float *d, long ld)
{
    ds_v8f r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) memcpy(&r[i], s + i * ls, sizeof r[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int h = 0; h < 2; h++) {
            u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + 2 * h + 1] = __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int i = 0; i < 4; i++) {
        ds_v8f lo = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        ds_v8f hi = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(d + (size_t)i * ld, &lo, sizeof lo);
        memcpy(d + (size_t)(i + 4) * ld, &hi, sizeof hi);
    }
}
#endif
