/* reduce_test_helpers.h — what the suites of the reductions (test_reduce.c
 * and test_reduce_small.c) share: the three reductions by number, and
 * seeded operands. Header-only.
 */
#ifndef TG_REDUCE_TEST_HELPERS_H
#define TG_REDUCE_TEST_HELPERS_H

#include "testutil.h"

enum { SUM, MEAN, MAX };
static const char *const op_names[] = {"sum", "mean", "max"};

static tg_tensor *run_op(tg_tape *tape, int op, tg_tensor *x, const int *axes, int naxes,
                         int keep) {
  switch (op) {
  case SUM:
    return tg_sum(tape, x, axes, naxes, keep);
  case MEAN:
    return tg_mean(tape, x, axes, naxes, keep);
  default:
    return tg_max(tape, x, axes, naxes, keep);
  }
}

/* An arena tensor with seeded uniform values in [lo, hi) (no grad). */
static tg_tensor *filled(tg_tape *tape, const int64_t *shape, int nd, double lo, double hi) {
  tg_tensor *t = tg_empty(tape, shape, nd);
  ck_assert_msg(t != NULL, "tg_empty: %s", tg_tape_error(tape));
  tu_fill_uniform(t, tg_tape_rng(tape), lo, hi);
  return t;
}

#endif
