/* winograd.h — the Winograd kernels behind the fused convolution ops
 * (ops/conv.c) for 3×3 filters at stride 1.
 *
 * Private to ops/. These are kernels, not ops: conv, conv_grad_x and
 * conv_grad_w call them when tg_winograd_fits says the geometry
 * qualifies, after checking the shapes, and record themselves as usual,
 * so derivatives (and derivatives of derivatives) are those ops' rules.
 */
#ifndef TG_WINOGRAD_H
#define TG_WINOGRAD_H

#include "op.h"

/* What to compute (the three fused convolution ops). */
enum { TG_WG_Y, TG_WG_DX, TG_WG_DW };

/* 1 when a convolution with a fh×fw filter, this stride and padding, C
 * input and FN output channels runs faster here than by im2col. */
int tg_winograd_fits(int64_t fh, int64_t fw, int64_t stride, int64_t pad, int64_t c, int64_t fn);

/* One of the three products, for x (N, C, H, W) = xs, W (FN, C, 3, 3),
 * stride 1 and pad (<= 2), OH = H + 2·pad − 2, OW likewise:
 *   TG_WG_Y:  out y (N, FN, OH, OW) = conv(x, W) (+ bias (FN,) if not NULL),
 *             then max(y, 0) when relu is 1
 *   TG_WG_DX: out dx (N, C, H, W) = conv_grad_x(dy (N, FN, OH, OW), W)
 *   TG_WG_DW: out dW (FN, C, 3, 3) = conv_grad_w(x, dy)
 * With pool > 0 (conv_max_pool's windows, which tile OH × OW), y and dy
 * are pooled, each image while it is in cache: TG_WG_Y writes out
 * (N, FN, OH/pool, OW/pool) = the windows' maxima and arg (same shape)
 * their indices (tg_max_pool_planes); TG_WG_DW reads dy (N, FN, OH/pool,
 * OW/pool) and arg, and uses as its dy the scatter of dy to the
 * windows' maxima (pool_scatter's values); TG_WG_DX likewise
 * (conv_pool_grad_x).
 * Operands that the kind does not read may be NULL. Scratch comes from
 * the tape's arena. Results do not depend on the thread count. Returns
 * 0 after failing the tape (as op), else 1. */
int tg_winograd_conv(tg_tape *tape, const tg_op *op, int kind, const int64_t *xs, int64_t fn,
                     int64_t pad, const tg_real *x, const tg_real *w, const tg_real *dy,
                     const tg_real *bias, int relu, int64_t pool, tg_real *arg, tg_real *out);

/* y[i] = y[i] > 0 ? y[i] : 0 (ReLU as where_pos computes it), in place. */
void tg_relu_inplace(tg_real *y, int64_t n);

/* conv_max_pool's pooling of planes y (planes, oh, ow) in s×s windows:
 * m (planes, oh/s, ow/s) each window's first maximum, arg its index. */
void tg_max_pool_planes(const tg_real *y, int64_t planes, int64_t oh, int64_t ow, int64_t s,
                        tg_real *m, tg_real *arg);

#endif
