/* create.c — constructors of arena tensors beside tg_empty, tg_zeros and
 * tg_full (autograd/tape.h): ones, arange, and rand/randn drawn from the
 * tape's generator.
 *
 * They make constant leaves (no gradient; tg_requires_grad makes one a
 * variable) and record nothing. rand and randn advance the tape's
 * generator, so a seeded tape draws the same values every run. Shape
 * errors are tg_empty's ("empty: ..."), as for tg_zeros.
 */
#include <math.h>

#include "op.h"
#include "ops.h"

static const tg_op op_arange = {"arange", 0, TG_COMPOSITE, NULL};

tg_tensor *tg_ones(tg_tape *tape, const int64_t *shape, int ndim) {
  return tg_full(tape, shape, ndim, 1);
}

tg_tensor *tg_arange(tg_tape *tape, double start, double stop, double step) {
  if (!tape || tg_tape_status(tape) != TG_OK)
    return NULL;
  double len = ceil((stop - start) / step);
  if (!(step != 0 && isfinite(start) && isfinite(stop) && isfinite(step) && len >= 1 &&
        len < 9.007199254740992e15)) /* 2^53: beyond, start + i·step repeats values */
    return tg_op_fail(tape, &op_arange, TG_ERR_ARG,
                      "[%g, %g) in steps of %g is empty, infinite or too long", start, stop, step);
  tg_tensor *t = tg_empty(tape, (int64_t[]){(int64_t)len}, 1); /* (len,) */
  if (t)
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = (tg_real)(start + (double)i * step);
  return t;
}

tg_tensor *tg_rand(tg_tape *tape, const int64_t *shape, int ndim) {
  tg_tensor *t = tg_empty(tape, shape, ndim);
  if (t) {
    tg_rng *r = tg_tape_rng(tape);
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = (tg_real)tg_rng_uniform(r);
  }
  return t;
}

tg_tensor *tg_randn(tg_tape *tape, const int64_t *shape, int ndim) {
  tg_tensor *t = tg_empty(tape, shape, ndim);
  if (t) {
    tg_rng *r = tg_tape_rng(tape);
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = (tg_real)tg_rng_normal(r);
  }
  return t;
}
