/* conv_internal.h — what the two files of the fused convolution share:
 * the job that ops/conv.c runs image by image (or through Winograd), and
 * the pooled planes' scatter and gather on the threads. conv.c holds conv,
 * conv_relu, conv_grad_x and conv_grad_w and their kernels; conv_pool.c
 * holds conv_max_pool and the private ops of its gradient, which fill a
 * job and hand it to tg_conv_exec.
 *
 * Private to ops/.
 */
#ifndef TG_CONV_INTERNAL_H
#define TG_CONV_INTERNAL_H

#include "gemm.h"
#include "im2col.h"
#include "op.h"

enum { CONV_Y, CONV_DX, CONV_DW };

typedef struct conv_job {
  int kind;
  conv_geom g;               /* the batch's geometry */
  int64_t fn, k, p;          /* filters, C·FH·FW, OH·OW */
  mm_plan mm, mm_acc;        /* the per-image product; conv_grad_w's accumulating one */
  const tg_real *x, *w, *dy; /* x (N, C, H, W); W (FN, K); dy (N, FN, P) */
  const tg_real *bias;       /* conv: (FN,) or NULL */
  int relu;                  /* conv_relu: y = max(y, 0) as each image is done */
  int64_t pool;              /* conv_max_pool, conv_pool_grad_w: the window size, or 0 */
  tg_real *arg;              /* with pool: (N, FN, OH/pool, OW/pool), each window's argmax */
  tg_real *out;              /* y (N, FN, P), dx (N, C, H, W) or dW (FN, K) */
  tg_real *part;             /* conv_grad_w: (groups, K, FN), dWᵀ of each group */
  tg_real *scratch;          /* (nth, K·P + P·FN) */
  int nth;                   /* scratch slots: threads that may run */
  int64_t groups;            /* conv_grad_w: min(N, CONV_GROUPS) */
} conv_job;

/* Runs j (its shapes checked by the caller, j->out allocated), then hands
 * its scratch back to the arena. 0 after failing the tape (as op), else 1. */
int tg_conv_exec(tg_tape *tape, const tg_op *op, conv_job *j);

/* conv's and conv_max_pool's operand checks: x (N, C, H, W), W (FN, C,
 * FH, FW) and b (FN,) or NULL. 0 after failing the tape as op, with what
 * (the operands' shapes) in the message. */
int tg_conv_operands(tg_tape *tape, const tg_op *op, const char *what, const tg_tensor *x,
                     const tg_tensor *W, const tg_tensor *b);

/* On the threads, over `planes` planes (images × channels) with s×s
 * windows: gather 0 scatters src = dy (planes, OH/s, OW/s) to dst = g
 * (planes, OH, OW), each value to its window's argmax and 0 elsewhere;
 * gather 1 takes src = g back to dst = dy at the argmaxes. */
void tg_pool_planes(int gather, const tg_real *src, const tg_real *arg, int64_t planes, int64_t oh,
                    int64_t ow, int64_t s, tg_real *dst);

#endif
