/* nn_internal.h — what the layer files of nn/ (activation.c, loss.c,
 * layers.c) share: the check every layer starts with.
 *
 * Private to nn/: not installed, not part of the API. It must hold no
 * layer, no gradient rule and no op descriptor; layers are compositions of
 * the public ops (ops.h) only.
 */
#ifndef TG_NN_INTERNAL_H
#define TG_NN_INTERNAL_H

#include "nn.h"

/* 1 when a layer may run: the tape exists and has not failed, and no input
 * is NULL. Otherwise fails the tape (unless it already failed) with
 * "layer (op #k): NAME is NULL" and returns 0, so a layer given the NULL of an
 * earlier failure returns NULL at once and keeps that first message. */
static inline int nn_begin(tg_tape *tape, const char *layer, int n, tg_tensor *const *in,
                           const char *const *names) {
  if (!tape || tg_tape_status(tape) != TG_OK)
    return 0;
  for (int i = 0; i < n; i++) {
    if (!in[i]) {
      tg_tape_fail(tape, TG_ERR_NULL, layer, "%s is NULL", names[i]);
      return 0;
    }
    if (!tg_tape_holds(tape, in[i])) {
      tg_tape_fail(tape, TG_ERR_ARG, layer,
                   "%s %s is from an earlier step (the tape was reset since) or another tape",
                   names[i], TG_SHAPE(in[i]));
      return 0;
    }
  }
  return 1;
}

/* axis (negative counts from the end) as an index into x's dimensions, in
 * *d; 0 after failing the tape when x has no such axis. */
static inline int nn_axis(tg_tape *tape, const char *layer, const tg_tensor *x, int axis, int *d) {
  if (axis < -x->ndim || axis >= x->ndim) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer, "axis %d is out of range for x %s", axis, TG_SHAPE(x));
    return 0;
  }
  *d = axis < 0 ? axis + x->ndim : axis;
  return 1;
}

/* Digits that print a tg_real exactly (and an integral value without a
 * fraction) with "%.*g". */
#define NN_REAL_DIGITS (sizeof(tg_real) == 8 ? 17 : 9)

#endif
