/* binary_test_helpers.h — what test_binary.c and test_where.c share:
 * the binary op type and the reference broadcasting index map.
 */
#ifndef TG_BINARY_TEST_HELPERS_H
#define TG_BINARY_TEST_HELPERS_H

#include "testutil.h"

typedef tg_tensor *(*binary_fn)(tg_tape *, tg_tensor *, tg_tensor *);

/* Flat index into an input of shape xs (xnd dims) of output element i of
 * shape os (ond dims), by NumPy's broadcasting rule. */
static inline int64_t ref_index(const int64_t *os, int ond, const int64_t *xs, int xnd, int64_t i) {
  int64_t idx = 0, step = 1;
  for (int d = ond - 1; d >= 0; d--) {
    int64_t c = i % os[d];
    i /= os[d];
    int k = d - (ond - xnd);
    if (k >= 0) {
      if (xs[k] > 1)
        idx += c * step;
      step *= xs[k];
    }
  }
  return idx;
}

#endif
