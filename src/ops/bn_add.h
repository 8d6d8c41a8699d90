/* bn_add.h — batch norm → add (→ relu) in one pass (a residual block's end).
 *
 * Compile (graph.c fuse_bn_adds) fuses a same-shape add whose input j is a
 * batch norm that nothing else reads: the batch norm's forward computes
 * only its statistics (bn->folded), the add (whose alias it is) writes
 * z = relu?(γ·(x − μ)·invstd + β + s) straight from the batch norm's input,
 * and the add shares the batch norm's value and gradient buffers (alias):
 * its backward masks dz in place, which is then the batch norm's dy, and
 * adds it to the shortcut's gradient. The batch norm's own output is never
 * stored: two passes over the activation fewer per block. */
#ifndef DS_BN_ADD_H
#define DS_BN_ADD_H

#include "internal.h"

#include <stdbool.h>

/* z = bn(x) + s, relu'd when relu, over planes [lo, hi) of bn's [N, C, inner] */
void ds_bn_add_apply(const ds_node *bn, const float *s, float *z, bool relu, long lo, long hi);

/* the number of [N·C] planes and values per plane of bn's output */
void ds_bn_planes(const ds_node *bn, long *planes, size_t *inner);

#endif
