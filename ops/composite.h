/* composite.h — the composite twins of the fused ops: test oracles.
 *
 * A fused op is a speed path; its definition stays in the code as a
 * composition of primitive ops, and the tests hold the fused op against
 * it (values, gradients, gradients of gradients). These are those
 * definitions. They are slower than the fused ops and not meant for
 * models: include tapegrad_ext.h to use them, e.g. to test an op of your
 * own the same way. Arguments, shapes and errors are the fused op's
 * (ops.h).
 */
#ifndef TG_COMPOSITE_H
#define TG_COMPOSITE_H

#include "ops.h"

/* where(gt(x, 0), a, 0): the definition of tg_where_pos. */
TG_API tg_tensor *tg_where_pos_composite(tg_tape *tape, tg_tensor *x, tg_tensor *a);

/* ½ tanh(x/2) + ½: the definition of tg_sigmoid. */
TG_API tg_tensor *tg_sigmoid_composite(tg_tape *tape, tg_tensor *x);

/* dy·(1 − y·y) and dy·(y·(1 − y)) as mul, neg and add_scalar: the
 * definitions of tg_tanh_grad and tg_sigmoid_grad. */
TG_API tg_tensor *tg_tanh_grad_composite(tg_tape *tape, tg_tensor *y, tg_tensor *dy);
TG_API tg_tensor *tg_sigmoid_grad_composite(tg_tape *tape, tg_tensor *y, tg_tensor *dy);

/* max_mask(x) * dy broadcast to x's shape: the definition of tg_max_scatter. */
TG_API tg_tensor *tg_max_scatter_composite(tg_tape *tape, tg_tensor *x, tg_tensor *dy,
                                           const int *axes, int naxes);

/* im2col, matmul, add, permute (the book's Convolution.forward): the
 * definition of tg_conv. */
TG_API tg_tensor *tg_conv_composite(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                    int64_t stride, int64_t pad);

#endif
