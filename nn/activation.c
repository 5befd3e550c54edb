/* activation.c — the book's activation functions (ReLU, step, identity)
 * and softmax / log-softmax, each a few primitive ops (the sigmoid is a
 * fused op of its own: ops/unary.c).
 *
 * Nothing here may define a backward rule, an op descriptor or a raw loop
 * over data: the engine derives every gradient from the ops used, and
 * tests/test_nn.c holds the book's hand-derived formulas against it.
 * Nothing here keeps state between calls.
 */
#include "nn_internal.h"

/* ------------------------------------------------------------------------
 * ReLU, step, identity */

/* where_pos(x, x), the fused where(x > 0, x, 0), routes the gradient
 * through the mask x > 0: exactly the book's Relu layer, whose mask also
 * sends 0 to x <= 0, so x == 0 gets 0. */
tg_tensor *tg_relu(tg_tape *tape, tg_tensor *x) { /* x: any shape -> x's shape */
  if (!nn_begin(tape, "relu", 1, &x, (const char *[]){"x"}))
    return NULL;
  return tg_where_pos(tape, x, x);
}

/* A comparison is a constant, so no gradient flows (the book's point:
 * the step function's derivative is 0 almost everywhere). */
tg_tensor *tg_step(tg_tape *tape, tg_tensor *x) { /* x: any shape -> x's shape */
  if (!nn_begin(tape, "step", 1, &x, (const char *[]){"x"}))
    return NULL;
  return tg_gt(tape, x, tg_scalar(tape, 0));
}

tg_tensor *tg_identity(tg_tape *tape, tg_tensor *x) {
  if (!nn_begin(tape, "identity", 1, &x, (const char *[]){"x"}))
    return NULL;
  return x;
}

/* ------------------------------------------------------------------------
 * Softmax and log-softmax along one axis.
 *
 * Both subtract the maximum along the axis first, so exp never overflows
 * (logits (1010, 1000, 990) give finite values). The maximum is detached:
 * softmax(x − c) = softmax(x) for any c, so the exact gradient through c is
 * zero, and detaching spares backward a max_mask that would only add
 * terms that cancel. */

/* x − detach(max(x, axis)) (x's shape); the axis as an index in *d. */
static tg_tensor *shifted(tg_tape *tape, const char *layer, tg_tensor *x, int axis, int *d) {
  if (!nn_begin(tape, layer, 1, &x, (const char *[]){"x"}) || !nn_axis(tape, layer, x, axis, d))
    return NULL;
  tg_tensor *m = tg_detach(tape, tg_max(tape, x, d, 1, 1)); /* x's shape, axis d of size 1 */
  return tg_sub(tape, x, m);
}

tg_tensor *tg_softmax(tg_tape *tape, tg_tensor *x, int axis) { /* x: any shape -> x's shape */
  int d;
  tg_tensor *e = tg_exp(tape, shifted(tape, "softmax", x, axis, &d)); /* in (0, 1] */
  if (!e)
    return NULL;
  return tg_div(tape, e, tg_sum(tape, e, &d, 1, 1)); /* sum >= 1: no division by 0 */
}

/* z − log Σ e^z with z = x − max: the sum is at least 1, so its log is
 * finite, and nothing takes the log of a probability that rounded to 0. */
tg_tensor *tg_log_softmax(tg_tape *tape, tg_tensor *x, int axis) { /* x: any shape */
  int d;
  tg_tensor *z = shifted(tape, "log_softmax", x, axis, &d);
  if (!z)
    return NULL;
  return tg_sub(tape, z, tg_log(tape, tg_sum(tape, tg_exp(tape, z), &d, 1, 1)));
}
