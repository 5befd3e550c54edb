/* reduce_internal.h — what reduce.c shares with reduce_small.c, its
 * kernels for small groups (pooling windows, short last axes): the plan
 * of a reduction, the modes, max's order, and the small-group entry
 * points. Private to ops/.
 */
#ifndef TG_REDUCE_INTERNAL_H
#define TG_REDUCE_INTERNAL_H

#include <stdint.h>

#include "tensor.h"

/* x as kept and reduced blocks (reduce.c: plan_make). */
typedef struct plan {
  int64_t ksize[3], kstride[3]; /* kept blocks, outer to inner (B: without the inner one) */
  int64_t rsize[3], rstride[3]; /* reduced blocks (A: without the inner one) */
  int nk, nr;
  int inner_reduced; /* 1: case A, the innermost block is reduced */
  int64_t inner;     /* its length: L (A) or I (B); contiguous in x */
  int64_t units;     /* A: outputs; B: output rows of I elements */
  int64_t q;         /* product of rsize: runs (A) or rows (B) per output */
  int64_t rows;      /* B: rows per chunk */
  int64_t nch;       /* chunks per output */
  int64_t numel;     /* x's */
  int64_t nout;      /* outputs */
} plan;

/* RED_SCATTER: max's gradient (dy at each group's first maximum). */
enum { RED_SUM, RED_MAX, RED_SCATTER };

/* Max's order: v replaces best when strictly greater, so the first maximum
 * in row-major order wins (NumPy's argmax); a NaN beats every number and
 * the first NaN stays, so max propagates NaN like NumPy. */
static inline int better(double v, double best) { return v > best || (v != v && best == best); }

/* 1 when every output reduces at most a small group (reduce_small.c) and
 * tg_reduce_small can run the plan. */
int tg_reduce_small_ok(const plan *p);

/* Runs p over x (x's shape) on small groups: y (nout,) values divided by
 * div, or NULL; yarg (nout,) first maxima, or NULL; with RED_SCATTER, gx
 * (x's shape) = dy (nout,) at each group's first maximum, 0 elsewhere. */
void tg_reduce_small(const plan *p, const tg_real *x, int mode, double div, tg_real *y,
                     int64_t *yarg, const tg_real *dy, tg_real *gx);

#endif
