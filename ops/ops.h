/* ops.h — the primitive ops: the closed set every layer is built from.
 *
 * Every op takes the tape first, returns an arena tensor (valid until the
 * next tg_tape_reset; never freed by the caller), and on bad input returns
 * NULL with the tape in an error state whose message names the op, its tape
 * position and the shapes. Given a NULL input, or a tape already in an
 * error state, an op returns NULL at once. Inputs may be arena tensors of
 * this tape's current step or owned tensors (parameters).
 *
 * Each op's backward rule sits next to its forward kernel in the op's
 * family file (ops/unary.c, ops/binary.c, ...), written with these same
 * ops. Where an input has no gradient the op says so here.
 */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "tape.h"

/* ---------------------------------------------------------------------
 * Elementwise unary (ops/unary.c): y has x's shape.
 *   neg  -x             exp   e^x          log  ln x (x > 0)
 *   sqrt √x (x > 0)     tanh  tanh x       abs  |x| (gradient sign(x), 0 at 0)
 *   sigmoid  1/(1 + e^−x), a fused op (tg_sigmoid_composite, ½ tanh(x/2)
 *            + ½, is its oracle); dx = dy·y·(1 − y)
 *
 * exp, log, tanh and sigmoid are the engine's own vectorised functions.
 * Their largest error over every input, in ulp of the exact result
 * (tests/test_unary.c measures it against libm in a wider type):
 *            float  double
 *   exp      1.5    1.5     0 below −103.97 (float; −745.13 double),
 *                           denormals above, inf from 88.72 (709.78)
 *   log      1      1       denormal x exact to the same bound; ln 0 = −inf,
 *                           ln x<0 = NaN, ln inf = inf
 *   tanh     2      2       ±1 exactly from |x| = 9.01 (float; 19.06 double)
 *   sigmoid  3      3       1 exactly from 16.64 (float; 36.74 double),
 *                           e^x (denormals included) to the left, 0 below
 *                           −103.97 (−745.13)
 * NaN gives NaN.
 */
TG_API tg_tensor *tg_neg(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_exp(tg_tape *tape, tg_tensor *x); /* max error 1.5 ulp */
TG_API tg_tensor *tg_log(tg_tape *tape, tg_tensor *x); /* max error 1 ulp */
TG_API tg_tensor *tg_sqrt(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_tanh(tg_tape *tape, tg_tensor *x); /* max error 2 ulp */
TG_API tg_tensor *tg_abs(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_sigmoid(tg_tape *tape, tg_tensor *x); /* max error 3 ulp */

/* The backward rules of tanh and sigmoid, from their output y and the
 * gradient dy (one shape): tanh_grad = dy·(1 − y·y), sigmoid_grad =
 * dy·(y·(1 − y)). Fused ops (one pass); tg_tanh_grad_composite and
 * tg_sigmoid_grad_composite, the same arithmetic as separate ops, are
 * their definitions and oracles, to the bit. tg_tanh and tg_sigmoid use
 * them as their backward rules; they differentiate again (d/d(dy) is the
 * op itself; d/dy is dy·(−2y) and dy·(1 − 2y)). */
TG_API tg_tensor *tg_tanh_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy);
TG_API tg_tensor *tg_sigmoid_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy);

/* ---------------------------------------------------------------------
 * Broadcasting binary (ops/binary.c). Shapes broadcast by NumPy's rules
 * (align trailing dimensions; a dimension of 1 stretches); the gradient of
 * a broadcast input is summed back to its shape.
 *   add a+b   sub a-b   mul a*b   div a/b
 *   pow a^b   (a > 0 wherever b's gradient is needed; d/db = a^b ln a)
 *   maximum max(a, b) (ties send the gradient to a)
 */
TG_API tg_tensor *tg_add(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_sub(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_mul(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_div(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_pow(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_maximum(tg_tape *tape, tg_tensor *a, tg_tensor *b);

/* where(cond, a, b): a where cond != 0, else b; the three broadcast.
 * cond is not differentiable: if it requires grad, backward fails. */
TG_API tg_tensor *tg_where(tg_tape *tape, tg_tensor *cond, tg_tensor *a, tg_tensor *b);

/* where_pos(x, a): a where x > 0, else 0 (NaN in x gives 0); x and a of
 * one shape. ReLU is where_pos(x, x). A fused op (one pass);
 * tg_where_pos_composite, where(gt(x, 0), a, 0), is its definition and
 * oracle. x gets no gradient (it only decides); da = where_pos(x, dy). */
TG_API tg_tensor *tg_where_pos(tg_tape *tape, tg_tensor *x, tg_tensor *a);

/* Comparisons: broadcasting masks of 1 and 0 that are constants (never
 * recorded, no gradient through them). */
TG_API tg_tensor *tg_gt(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_ge(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_lt(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_le(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_eq(tg_tape *tape, tg_tensor *a, tg_tensor *b);

/* Conveniences composed of the above with a scalar operand. */
TG_API tg_tensor *tg_add_scalar(tg_tape *tape, tg_tensor *x, tg_real s);
TG_API tg_tensor *tg_mul_scalar(tg_tape *tape, tg_tensor *x, tg_real s);
TG_API tg_tensor *tg_pow_scalar(tg_tape *tape, tg_tensor *x, tg_real p); /* x^p */

/* Broadcast result shape of a and b into shape/ndim; TG_OK or
 * TG_ERR_SHAPE (message names `what` and both shapes). */
TG_API tg_status tg_broadcast_shape(tg_tape *tape, const char *what, const tg_tensor *a,
                                    const tg_tensor *b, int64_t *shape, int *ndim);

/* ---------------------------------------------------------------------
 * Reductions (ops/reduce.c) over a set of axes: axes[0..naxes-1], each in
 * [-ndim, ndim) (negative counts from the end), no repeats; naxes == 0
 * reduces over every axis. keepdims keeps reduced axes as size 1;
 * otherwise they are dropped (all of them: a scalar).
 *   sum, mean; max (the gradient goes to the first maximum in row-major
 *   order within each reduced group, like NumPy's argmax).
 */
TG_API tg_tensor *tg_sum(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims);
TG_API tg_tensor *tg_mean(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims);
TG_API tg_tensor *tg_max(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims);

/* Constant one-hot mask of x's shape: 1 at the first maximum of each
 * group reduced over axes, 0 elsewhere (max's backward uses it). */
TG_API tg_tensor *tg_max_mask(tg_tape *tape, tg_tensor *x, const int *axes, int naxes);

/* max's gradient: dx (x's shape) holds dy at each group's first maximum
 * (max_mask's rule) and 0 elsewhere; dy is x reduced over axes, with or
 * without keepdims. A fused op (one pass); tg_max_scatter_composite is its
 * definition as max_mask(x) * dy broadcast to x's shape, kept as the
 * oracle. Only dy gets a gradient. */
TG_API tg_tensor *tg_max_scatter(tg_tape *tape, tg_tensor *x, tg_tensor *dy, const int *axes,
                                 int naxes);

/* Constant indices (as tg_real) of the first maximum along one axis; the
 * axis is dropped from the shape. */
TG_API tg_tensor *tg_argmax(tg_tape *tape, tg_tensor *x, int axis);

/* Sums g down to shape (the adjoint of broadcast_to): the gradient rule of
 * every broadcasting op. shape must broadcast to g's shape. */
TG_API tg_tensor *tg_sum_to(tg_tape *tape, tg_tensor *g, const int64_t *shape, int ndim);

/* ---------------------------------------------------------------------
 * Movement (ops/movement.c)
 *   reshape: a view (no copy) with the same number of elements; one
 *            dimension may be -1 and is inferred.
 *   permute: y.shape[i] = x.shape[perm[i]]; copies.
 *   transpose: swaps the last two axes (ndim >= 2); copies.
 *   broadcast_to: NumPy broadcast of x to shape.
 *   slice: y = x[start[i]:stop[i]] on every axis (step 1); start/stop NULL
 *          mean 0/shape; negative values count from the end.
 *   pad: zeros before[i] and after[i] around axis i (>= 0); the adjoint of
 *        slice.
 *   flip: y[.., i, ..] = x[.., n − 1 − i, ..] on one axis (negative counts
 *         from the end), as torch.flip on one dimension; flip(x, -1) of
 *         images (N, C, H, W) mirrors them left to right.
 *   detach: the same values as a constant: no gradient flows back.
 */
TG_API tg_tensor *tg_reshape(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_permute(tg_tape *tape, tg_tensor *x, const int *perm);
TG_API tg_tensor *tg_transpose(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_broadcast_to(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_slice(tg_tape *tape, tg_tensor *x, const int64_t *start, const int64_t *stop);
TG_API tg_tensor *tg_pad(tg_tape *tape, tg_tensor *x, const int64_t *before, const int64_t *after);
TG_API tg_tensor *tg_flip(tg_tape *tape, tg_tensor *x, int axis);
TG_API tg_tensor *tg_detach(tg_tape *tape, tg_tensor *x);

/* ---------------------------------------------------------------------
 * Matrix product (ops/matmul.c), through libxsmm (OpenBLAS behind it).
 * a: (M, K), b: (K, N) -> (M, N). With trans_a, a is (K, M) and op(a) =
 * aᵀ; with trans_b, b is (N, K). Transposes are GEMM flags, not copies. */
TG_API tg_tensor *tg_matmul(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_matmul_t(tg_tape *tape, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b);

/* tg_matmul also takes other ranks, with torch.matmul's rules (a
 * composition of reshape, broadcast_to, matmul and bmm):
 *   (K,) @ (K, N) -> (N,)      (M, K) @ (K,) -> (M,)      (K,) @ (K,) -> ()
 *   (..., M, K) @ (K, N) -> (..., M, N)   (one product: the batch folds into M)
 *   (..., M, K) @ (..., K, N) -> (..., M, N), the batch axes (all but the
 *   last two; a 1-D operand has none) broadcasting by NumPy's rules.
 * bmm: a (B, M, K), b (B, K, N) -> (B, M, N), a product per batch element;
 * bmm_t transposes each a[i] (then (B, K, M)) or b[i] (then (B, N, K)). */
TG_API tg_tensor *tg_bmm(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_bmm_t(tg_tape *tape, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b);

/* ---------------------------------------------------------------------
 * Image patches (ops/conv.c), the book's im2col layout. x: (N, C, H, W);
 * filter FH×FW, the same stride and zero padding `pad` on both axes;
 * OH = (H + 2·pad − FH)/stride + 1, OW likewise, and both divisions must be
 * exact (else an error naming the op and the sizes).
 *   im2col: x -> col (N·OH·OW, C·FH·FW); rows ordered (n, oh, ow), columns
 *           (c, fh, fw).
 *   col2im: the adjoint: col (N·OH·OW, C·FH·FW) -> (N, C, H, W), overlaps
 *           summed; xshape holds N, C, H, W.
 */
TG_API tg_tensor *tg_im2col(tg_tape *tape, tg_tensor *x, int64_t fh, int64_t fw, int64_t stride,
                            int64_t pad);
TG_API tg_tensor *tg_col2im(tg_tape *tape, tg_tensor *col, const int64_t *xshape, int64_t fh,
                            int64_t fw, int64_t stride, int64_t pad);

/* Convolution (ops/conv.c), fused: x (N, C, H, W), W (FN, C, FH, FW), b
 * (FN,) or NULL -> y (N, FN, OH, OW), the sizes as im2col's. A speed path
 * whose definition, tg_conv_composite (im2col, matmul, add, permute: the
 * book's Convolution.forward), is its test oracle. Its gradients in x and
 * W are two more fused ops, each the others' gradient in turn:
 *   conv_grad_x: dy (N, FN, OH, OW), W -> dx of shape xshape (N, C, H, W)
 *   conv_grad_w: x, dy (N, FN, OH, OW) -> dW (FN, C, fh, fw)
 */
TG_API tg_tensor *tg_conv(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                          int64_t pad);
/* relu(conv(x, W, b)) as one op: the ReLU applied to each image's output
 * while it is in cache, and only y kept (its gradient is conv's on
 * where_pos(y, dy)). Twin: tg_relu of tg_conv_composite. */
TG_API tg_tensor *tg_conv_relu(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                               int64_t stride, int64_t pad);
/* Max-pooling of conv(x, W, b) in size×size windows at stride size, as
 * one op: each image's convolution pooled while it is in cache, so y (N,
 * FN, OH/size, OW/size) is all that is written; the op keeps the index of
 * each window's first maximum for its gradient (conv's on dy scattered to
 * the maxima, one image at a time). The windows must tile the
 * convolution's OH×OW output (else an error naming the op and the
 * shapes). Twin: tg_max_pool2d(tg_conv_composite(...), size, size, 0),
 * with its tie rule (the first maximum in row-major order). */
TG_API tg_tensor *tg_conv_max_pool(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                   int64_t stride, int64_t pad, int64_t size);
TG_API tg_tensor *tg_conv_grad_x(tg_tape *tape, tg_tensor *dy, tg_tensor *W, const int64_t *xshape,
                                 int64_t stride, int64_t pad);
TG_API tg_tensor *tg_conv_grad_w(tg_tape *tape, tg_tensor *x, tg_tensor *dy, int64_t fh, int64_t fw,
                                 int64_t stride, int64_t pad);
/* Which algorithm the three ops use for 3×3 filters at stride 1 (with pad
 * <= 2 and at least 4 channels in and out), process-wide:
 *   TG_WINOGRAD_AUTO (the default): Winograd's F(4×4, 3×3) (ops/winograd.c,
 *     4 times fewer multiplications) when the call has at least
 *     TG_WINOGRAD_MIN_OUTPUTS output positions (images × OH × OW), else
 *     the direct product: below that, transforming the filters costs more
 *     than the product saves (AlexNet's 3×3 maps at batch 1: 4 times slower);
 *   TG_WINOGRAD_ALWAYS: Winograd whenever the geometry fits;
 *   TG_WINOGRAD_NEVER: always the direct product, whose rounding error is
 *     about 10 times smaller (in float, F(4×4)'s largest error is a few
 *     1e-6 of the output's largest magnitude, the direct product's a few
 *     1e-7).
 * Results are deterministic in every mode, and never depend on the thread
 * count; they differ between the two algorithms by rounding only. Returns
 * TG_OK, or TG_ERR_ARG for another mode. */
enum { TG_WINOGRAD_AUTO = 0, TG_WINOGRAD_ALWAYS = 1, TG_WINOGRAD_NEVER = 2 };
#define TG_WINOGRAD_MIN_OUTPUTS 256
TG_API tg_status tg_set_conv_winograd(int mode);

/* ---------------------------------------------------------------------
 * Joining and indexing along one axis (ops/index.c). Axes count from the
 * end when negative, as in NumPy.
 *   concat: xs[0..n-1] (n >= 1) of one ndim (>= 1), equal but along axis
 *           -> the axis lengths summed; n == 1 returns xs[0] itself.
 *   stack:  xs[0..n-1] of one shape s -> a new axis of length n inserted
 *           at axis (in [-(ndim+1), ndim]): (..., n, ...).
 *   index_select: x (pre, N, post) along axis, idx of any shape holding
 *           integers in [0, N) (an error names the op, the index, its
 *           position and N) -> (pre, idx.shape, post), y[p, j, q] =
 *           x[p, idx[j], q]. The embedding lookup is index_select(W, 0,
 *           ids) with W (V, D) and ids (B, T) -> (B, T, D). idx is a
 *           constant: if it requires grad, backward fails.
 *   index_add: the adjoint (index_select's gradient, a scatter-add):
 *           src (pre, idx.shape, post) -> (pre, n, post), zeros plus
 *           src[p, j, q] added at [p, idx[j], q]; axis counts in the
 *           result. Repeated indices sum, in index order.
 */
TG_API tg_tensor *tg_concat(tg_tape *tape, tg_tensor *const *xs, int n, int axis);
TG_API tg_tensor *tg_stack(tg_tape *tape, tg_tensor *const *xs, int n, int axis);
TG_API tg_tensor *tg_index_select(tg_tape *tape, tg_tensor *x, int axis, tg_tensor *idx);
TG_API tg_tensor *tg_index_add(tg_tape *tape, tg_tensor *src, int axis, tg_tensor *idx, int64_t n);

/* ---------------------------------------------------------------------
 * Special functions (ops/special.c): y has x's shape.
 *   erf       the error function; dx = dy · 2/√π · e^(−x²)
 *   softplus  ln(1 + e^x), computed stably for every x; dx = dy · sigmoid(x)
 */
TG_API tg_tensor *tg_erf(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_softplus(tg_tape *tape, tg_tensor *x);

/* ---------------------------------------------------------------------
 * Compositions (ops/compose.c) of the ops above: recorded as their parts,
 * so they differentiate again like any op; errors name the composition.
 *   minimum(a, b)  broadcasting; ties send the gradient to a, as
 *                  maximum's do (PyTorch splits a tie's gradient in halves).
 *   clamp(x, lo, hi)  min(max(x, lo), hi), lo <= hi; gradient 1 on
 *                  [lo, hi], ends included, 0 outside.
 *   leaky_relu(x, slope)  x for x > 0, else slope·x (gradient slope at 0).
 *   elu(x, alpha)  x for x > 0, else alpha·(e^x − 1).
 *   gelu(x)        x·Φ(x) = x/2·(1 + erf(x/√2)), the exact form.
 *   gelu_tanh(x)   x/2·(1 + tanh(√(2/π)(x + 0.044715x³))), the
 *                  approximation of GPT-2 and BERT.
 *   logsumexp      log Σ e^x over axes (the reductions' axes contract),
 *                  stable: the maximum is subtracted first; the gradient
 *                  is softmax(x) over the axes.
 *   var            Σ (x − mean)² / (N − correction) over axes, N the
 *                  elements reduced per group; correction in [0, N)
 *                  (1: the unbiased sample variance, 0: the population's).
 */
TG_API tg_tensor *tg_minimum(tg_tape *tape, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_clamp(tg_tape *tape, tg_tensor *x, tg_real lo, tg_real hi);
TG_API tg_tensor *tg_leaky_relu(tg_tape *tape, tg_tensor *x, tg_real slope);
TG_API tg_tensor *tg_elu(tg_tape *tape, tg_tensor *x, tg_real alpha);
TG_API tg_tensor *tg_gelu(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_gelu_tanh(tg_tape *tape, tg_tensor *x);
TG_API tg_tensor *tg_logsumexp(tg_tape *tape, tg_tensor *x, const int *axes, int naxes,
                               int keepdims);
TG_API tg_tensor *tg_var(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int correction,
                         int keepdims);

/* ---------------------------------------------------------------------
 * Constructors (ops/create.c): constant arena leaves, like tg_zeros and
 * tg_full (tape.h); shape errors as tg_empty's.
 *   ones:   all 1.
 *   arange: (ceil((stop − start)/step),) holding start + i·step; an empty
 *           or infinite range is an error.
 *   rand:   uniform in [0, 1); randn: standard normal; both drawn from the
 *           tape's generator (tg_tape_seed), in row-major order.
 */
TG_API tg_tensor *tg_ones(tg_tape *tape, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_arange(tg_tape *tape, double start, double stop, double step);
TG_API tg_tensor *tg_rand(tg_tape *tape, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_randn(tg_tape *tape, const int64_t *shape, int ndim);

#endif
