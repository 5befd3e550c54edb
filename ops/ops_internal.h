/* ops_internal.h — small helpers the op families' kernels share: integer
 * min and max, the offset of a multi-index, and F() for libm's float or
 * double names. Private to ops/; nothing here knows an op.
 */
#ifndef TG_OPS_INTERNAL_H
#define TG_OPS_INTERNAL_H

#include <stdint.h>

#include "tensor.h"

#ifdef TG_DOUBLE
#define F(name) name
#else
#define F(name) name##f
#endif

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Offset of the lin-th combination (row-major over size[0..n-1]) with the
 * given strides. */
static inline int64_t offset_of(int64_t lin, int n, const int64_t *size, const int64_t *stride) {
  if (n == 1)
    return lin * stride[0];
  int64_t off = 0;
  for (int i = n - 1; i >= 0; i--) {
    off += (lin % size[i]) * stride[i];
    lin /= size[i];
  }
  return off;
}

#endif
