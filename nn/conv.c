/* conv.c — the book's chapter-7 layers, Convolution and Pooling, and
 * AlexNet's Local Response Normalization, as compositions of primitive
 * ops: conv (ops/conv.c: the fused im2col-and-matmul, whose composite twin
 * is its oracle), im2col, add, max, mean, pad, slice, pow.
 *
 * Nothing here may define a backward rule or an op descriptor: the engine
 * derives every gradient, and the book's Convolution.backward and
 * Pooling.backward are oracles in tests/test_conv.c. Each layer checks its
 * shapes before running any op, so a mistake is reported in the layer's
 * terms (its name, x, W, stride, pad) rather than as a failed reshape
 * deep inside it.
 */
#include <math.h>
#include <stdio.h>

#include "nn_internal.h"

/* Output size along one axis of a window of size f sliding over size
 * elements padded by pad on both sides, in *o; 0 after failing the tape
 * with "layer: ... (ctx): why". The division must be exact (the book's
 * networks are built so that it is). */
static int out_size(tg_tape *tape, const char *layer, const char *ctx, const char *axis,
                    int64_t size, int64_t f, int64_t stride, int64_t pad, int64_t *o) {
  if (pad > (INT64_MAX - size) / 2) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer, "the padded %s overflows (%s)", axis, ctx);
    return 0;
  }
  int64_t padded = size + 2 * pad;
  if (f > padded) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer,
                 "the window %s %lld is larger than the padded input (%s): %lld + 2*%lld = %lld",
                 axis, (long long)f, ctx, (long long)size, (long long)pad, (long long)padded);
    return 0;
  }
  if ((padded - f) % stride != 0) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer,
                 "the windows do not tile the %s (%s): (%lld + 2*%lld - %lld) = %lld is not a "
                 "multiple of stride %lld",
                 axis, ctx, (long long)size, (long long)pad, (long long)f, (long long)(padded - f),
                 (long long)stride);
    return 0;
  }
  *o = (padded - f) / stride + 1;
  return 1;
}

/* Checks stride and pad, then both spatial axes of x (N, C, H, W) against
 * a window fh×fw; fills oh, ow. */
static int window_check(tg_tape *tape, const char *layer, const char *ctx, const tg_tensor *x,
                        int64_t fh, int64_t fw, int64_t stride, int64_t pad, int64_t *oh,
                        int64_t *ow) {
  if (stride < 1 || pad < 0) {
    tg_tape_fail(tape, TG_ERR_ARG, layer, "stride must be >= 1 and pad >= 0 (%s)", ctx);
    return 0;
  }
  return out_size(tape, layer, ctx, "height", x->shape[2], fh, stride, pad, oh) &&
         out_size(tape, layer, ctx, "width", x->shape[3], fw, stride, pad, ow);
}

/* Fails unless x is (N, C, H, W). */
static int is_image(tg_tape *tape, const char *layer, const char *name, const tg_tensor *x,
                    const char *want) {
  if (x->ndim == 4)
    return 1;
  tg_tape_fail(tape, TG_ERR_SHAPE, layer, "%s %s must be 4-D %s", name, TG_SHAPE(x), want);
  return 0;
}

/* ------------------------------------------------------------------------
 * Convolution, the book's Convolution.forward: the op conv, a fused
 * im2col-and-GEMM image by image whose definition is exactly the book's
 * col·Wᵀ + b moved to (N, FN, OH, OW) (ops.h). */
static tg_tensor *conv2d(tg_tape *tape, const char *layer, int relu, tg_tensor *x, tg_tensor *W,
                         tg_tensor *b, int64_t stride, int64_t pad, int64_t pool) {
  /* x: (N, C, H, W); W: (FN, C, FH, FW); b: (FN,) or NULL -> (N, FN, OH, OW) */
  if (!nn_begin(tape, layer, 2, (tg_tensor *[]){x, W}, (const char *[]){"x", "W"}))
    return NULL;
  if (!is_image(tape, layer, "x", x, "(N, C, H, W)") ||
      !is_image(tape, layer, "W", W, "(FN, C, FH, FW)"))
    return NULL;
  const int64_t C = x->shape[1], FN = W->shape[0], FH = W->shape[2], FW = W->shape[3];
  if (W->shape[1] != C) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer, "x %s has %lld channels but W %s has %lld", TG_SHAPE(x),
                 (long long)C, TG_SHAPE(W), (long long)W->shape[1]);
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != FN)) {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer, "b %s does not fit W %s (b must be (%lld,))",
                 TG_SHAPE(b), TG_SHAPE(W), (long long)FN);
    return NULL;
  }
  char ctx[400];
  snprintf(ctx, sizeof ctx, "x %s, W %s, stride %lld, pad %lld", TG_SHAPE(x), TG_SHAPE(W),
           (long long)stride, (long long)pad);
  int64_t OH, OW;
  if (!window_check(tape, layer, ctx, x, FH, FW, stride, pad, &OH, &OW))
    return NULL;
  if (pool) { /* size×size windows at stride size over (OH, OW) */
    char pctx[500];
    snprintf(pctx, sizeof pctx, "%s, pool %lld", ctx, (long long)pool);
    if (pool < 1) {
      tg_tape_fail(tape, TG_ERR_ARG, layer, "the window size must be >= 1 (%s)", pctx);
      return NULL;
    }
    int64_t PH, PW;
    if (!out_size(tape, layer, pctx, "height", OH, pool, pool, 0, &PH) ||
        !out_size(tape, layer, pctx, "width", OW, pool, pool, 0, &PW))
      return NULL;
    return tg_conv_max_pool(tape, x, W, b, stride, pad, pool); /* (N, FN, PH, PW) */
  }
  /* (N, FN, OH, OW) */
  return relu ? tg_conv_relu(tape, x, W, b, stride, pad) : tg_conv(tape, x, W, b, stride, pad);
}

tg_tensor *tg_conv2d(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                     int64_t pad) {
  return conv2d(tape, "conv2d", 0, x, W, b, stride, pad, 0);
}

tg_tensor *tg_conv2d_relu(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                          int64_t pad) {
  return conv2d(tape, "conv2d_relu", 1, x, W, b, stride, pad, 0);
}

tg_tensor *tg_conv2d_max_pool(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                              int64_t stride, int64_t pad, int64_t size) {
  return conv2d(tape, "conv2d_max_pool", 0, x, W, b, stride, pad, size);
}

/* ------------------------------------------------------------------------
 * Pooling, as the book's Pooling.forward: every channel is an image of
 * its own (x viewed as (N·C, 1, H, W)), so each im2col row is one window
 * and the rows come out in (n, c, oh, ow) order: the reduction over a row
 * is already (N, C, OH, OW), with no transpose. Padding is zeros, which
 * take part in the max and count in the mean (the book's im2col pads
 * with zeros too).
 *
 * When the windows tile x exactly (no padding, stride = size, the book's
 * 2×2/2 pools) x viewed as (N, C, OH, size, OW, size) already holds each
 * window on axes 3 and 5, in the same (fh, fw) order as an im2col row, so
 * the reduction runs on the view: the same values, ties and gradients
 * without the patch matrix and its col2im (two passes and two tensors of
 * x's size).
 *
 * Max-pooling's gradient goes, in each window, to the first maximum in
 * row-major order (tg_max's tie rule; the book's argmax picks the same
 * one), so a window of equal values sends all of it to its top-left. */
enum { POOL_MAX, POOL_AVG };

static tg_tensor *pool2d(tg_tape *tape, const char *layer, int kind, tg_tensor *x, int64_t size,
                         int64_t stride, int64_t pad) {
  /* x: (N, C, H, W) -> (N, C, OH, OW) */
  if (!nn_begin(tape, layer, 1, &x, (const char *[]){"x"}) ||
      !is_image(tape, layer, "x", x, "(N, C, H, W)"))
    return NULL;
  char ctx[300];
  snprintf(ctx, sizeof ctx, "x %s, size %lld, stride %lld, pad %lld", TG_SHAPE(x), (long long)size,
           (long long)stride, (long long)pad);
  if (size < 1) {
    tg_tape_fail(tape, TG_ERR_ARG, layer, "the window size must be >= 1 (%s)", ctx);
    return NULL;
  }
  const int64_t N = x->shape[0], C = x->shape[1];
  int64_t OH, OW;
  if (!window_check(tape, layer, ctx, x, size, size, stride, pad, &OH, &OW))
    return NULL;
  if (pad == 0 && stride == size) {
    /* Windows that tile x: the reduction runs on a view, no patches. */
    tg_tensor *xw = tg_reshape(tape, x, (int64_t[]){N, C, OH, size, OW, size}, 6);
    const int win[2] = {3, 5};
    return kind == POOL_MAX ? tg_max(tape, xw, win, 2, 0) : tg_mean(tape, xw, win, 2, 0);
  }
  tg_tensor *xv = tg_reshape(tape, x, (int64_t[]){N * C, 1, x->shape[2], x->shape[3]}, 4);
  tg_tensor *col = tg_im2col(tape, xv, size, size, stride, pad); /* (N·C·OH·OW, size·size) */
  const int axis[1] = {1};
  tg_tensor *m = kind == POOL_MAX ? tg_max(tape, col, axis, 1, 0) : tg_mean(tape, col, axis, 1, 0);
  return tg_reshape(tape, m, (int64_t[]){N, C, OH, OW}, 4); /* (N, C, OH, OW) */
}

tg_tensor *tg_max_pool2d(tg_tape *tape, tg_tensor *x, int64_t size, int64_t stride, int64_t pad) {
  return pool2d(tape, "max_pool2d", POOL_MAX, x, size, stride, pad);
}

tg_tensor *tg_avg_pool2d(tg_tape *tape, tg_tensor *x, int64_t size, int64_t stride, int64_t pad) {
  return pool2d(tape, "avg_pool2d", POOL_AVG, x, size, stride, pad);
}

/* ------------------------------------------------------------------------
 * Local Response Normalization (AlexNet, section 3.3):
 * y = x / (k + alpha·s)^beta, s[c] = Σ x[c']² over the n channels c' from
 * c − ⌊n/2⌋ to c + ⌊(n−1)/2⌋ (n channels, centred for odd n), clipped at
 * the edges. alpha multiplies the sum itself, as in the paper (some
 * libraries divide it by n).
 *
 * The window sum is the squares padded with zeros on the channel axis and
 * added up as n shifted slices: only movement and add, so the sum of each
 * element is exact in the order written, its gradient is pads of the
 * incoming gradient (the adjoint of slice), and a zero channel simply
 * adds nothing at the edges. For AlexNet's n = 5 that is 5 copies of x's
 * size; a banded (C, C) matrix product would need two transposes and C/n
 * times the arithmetic. A window reaching past every channel is cut to
 * the 2C − 1 offsets that can matter. */
tg_tensor *tg_lrn(tg_tape *tape, tg_tensor *x, int64_t n, double alpha, double beta, double k) {
  /* x: (N, C, H, W) -> x's shape */
  if (!nn_begin(tape, "lrn", 1, &x, (const char *[]){"x"}) ||
      !is_image(tape, "lrn", "x", x, "(N, C, H, W)"))
    return NULL;
  if (n < 1 || !(alpha >= 0 && isfinite(alpha)) || !isfinite(beta) || !(k > 0 && isfinite(k))) {
    tg_tape_fail(tape, TG_ERR_ARG, "lrn",
                 "n %lld, alpha %g, beta %g, k %g for x %s: need n >= 1, alpha >= 0, beta "
                 "finite and k > 0",
                 (long long)n, alpha, beta, k, TG_SHAPE(x));
    return NULL;
  }
  const int64_t C = x->shape[1];
  int64_t before = n / 2, after = (n - 1) / 2; /* channels below and above c */
  before = before < C - 1 ? before : C - 1;
  after = after < C - 1 ? after : C - 1;
  tg_tensor *sq = tg_mul(tape, x, x); /* (N, C, H, W) */
  tg_tensor *s = sq;                  /* (N, C, H, W): the window sums */
  if (before + after > 0) {
    tg_tensor *p = tg_pad(tape, sq, (int64_t[]){0, before, 0, 0}, (int64_t[]){0, after, 0, 0});
    /* p: (N, C + before + after, H, W); slice j holds channel c − before + j at c */
    s = NULL;
    for (int64_t j = 0; j <= before + after; j++) {
      tg_tensor *sl = tg_slice(tape, p, (int64_t[]){0, j, 0, 0},
                               (int64_t[]){x->shape[0], j + C, x->shape[2], x->shape[3]});
      s = s ? tg_add(tape, s, sl) : sl;
    }
  }
  tg_tensor *base = tg_add_scalar(tape, tg_mul_scalar(tape, s, (tg_real)alpha), (tg_real)k);
  return tg_div(tape, x, tg_pow_scalar(tape, base, (tg_real)beta));
}
