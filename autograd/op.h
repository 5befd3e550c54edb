/* op.h — how an op is written: the interface between ops/ and the tape.
 *
 * An op is a public function (tg_exp, tg_matmul, ...) plus one static
 * tg_op descriptor that names it and holds its backward rule. The function
 * checks its inputs with tg_op_begin, computes its output (tg_empty gives
 * arena memory) and hands it to tg_op_record, which records a node when a
 * gradient may flow and scans the output in anomaly mode.
 *
 * A backward rule receives the node and the gradient of its output (gy)
 * and stores in gx[i] the gradient for each input i that needs one
 * (tg_op_needs_grad), with the same shape as that input. Rules are written
 * with ops, never with raw loops, so that running them while recording
 * gives gradients of gradients. The engine sums gx into the inputs.
 *
 * Nothing in autograd/ knows a particular op; everything an op needs to
 * say about itself is in its descriptor.
 */
#ifndef TG_OP_H
#define TG_OP_H

#include "tape.h"

#define TG_MAX_INPUTS 3
#define TG_MAX_ATTRS  12

typedef struct tg_node tg_node;
typedef struct tg_op tg_op;

typedef void (*tg_backward_fn)(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);

/* A descriptor's flags. TG_NONDIFF(i): input i has no gradient, and
 * backward fails if it requires one (where's condition). */
#define TG_NONDIFF(i) (1u << (i))
/* TG_ZEROGRAD(i): input i's gradient is 0 almost everywhere (it only
 * decides, like a comparison's operand), so none is computed or added, and
 * an output whose other inputs need none is a constant. */
#define TG_ZEROGRAD(i) (1u << (16 + (i)))
/* TG_COMPOSITE: not an op but the name of a composite (sum_to is sum and
 * reshape), for tg_op_begin and messages; nothing is recorded under it. */
#define TG_COMPOSITE (1u << 31)

struct tg_op {
  const char *name;
  int n_in;
  unsigned flags;          /* TG_NONDIFF(i), TG_ZEROGRAD(i), TG_COMPOSITE */
  tg_backward_fn backward; /* NULL: the output is a constant (comparisons, argmax,
                              detach) or the descriptor names a composite */
};

struct tg_node {
  const tg_op *op;
  tg_tensor *in[TG_MAX_INPUTS];
  tg_tensor *out;
  int64_t attr[TG_MAX_ATTRS]; /* op-specific: axes, permutation, offsets */
};

/* The one parallel loop of the engine, used by every kernel that threads
 * (elementwise, broadcasting, movement, reductions, patches, products,
 * optimizer updates).
 *
 * tg_parallel_for(n, grain, work, fn, ctx) calls fn(ctx, lo, hi) over the
 * items [0, n). work estimates the whole loop's cost in simple element
 * operations: below TG_PAR_MIN (TOOLCHAIN.md: a 2-thread fork/join costs
 * about what 10^4-10^5 of them do) fn gets all of [0, n) in one call on
 * this thread, and OpenMP is never entered (entering libgomp at all, even
 * with a false `if` clause, costs microseconds: more than a small op).
 * Otherwise [0, n) is cut into chunks of grain items, fixed by n and grain
 * alone, and the chunks are handed out one at a time to whichever thread
 * is free (on one thread, they run in order): when another process
 * deschedules a thread, the others take its chunks instead of waiting for
 * it. fn must compute each item the same way whichever chunk or thread it
 * falls in, so results never depend on the thread count. */
#define TG_PAR_MIN 100000

/* A grain for elementwise loops: enough elements that handing out a chunk
 * (an atomic add) costs nothing in comparison, few enough that two
 * threads share even a tensor just above TG_PAR_MIN. */
#define TG_GRAIN 16384

typedef void (*tg_range_fn)(void *ctx, int64_t lo, int64_t hi);

void tg_parallel_for(int64_t n, int64_t grain, int64_t work, tg_range_fn fn, void *ctx);

/* The grain for items of item_cost elements each: about TG_GRAIN elements
 * per chunk, at least one item. */
static inline int64_t tg_grain_of(int64_t item_cost) {
  return item_cost >= TG_GRAIN ? 1 : TG_GRAIN / (item_cost > 0 ? item_cost : 1);
}

/* Returns 1 when the op may run: the tape is not in an error state, no
 * input is NULL, and each input belongs to this tape's current step (or is
 * owned). Otherwise fails the tape (unless it already failed) and returns 0. */
int tg_op_begin(tg_tape *tape, const tg_op *op, int n, tg_tensor *const *in);

/* Fails the tape with "name (op #k): message", k the position the op would
 * take on the tape. Returns NULL so ops can `return tg_op_fail(...)`. */
tg_tensor *tg_op_fail(tg_tape *tape, const tg_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Finishes an op: in anomaly mode scans out for NaN/Inf; when grad mode is
 * on and a differentiable input requires grad, records a node (with n_attr
 * attributes copied from attr) and marks out as requiring grad. Returns out,
 * or NULL after failing the tape. */
tg_tensor *tg_op_record(tg_tape *tape, const tg_op *op, tg_tensor *out, int n, tg_tensor *const *in,
                        const int64_t *attr, int n_attr);

/* In a backward rule: 1 when input i of the node needs a gradient. */
static inline int tg_op_needs_grad(const tg_node *n, int i) {
  return n->in[i] && (n->in[i]->flags & TG_REQUIRES_GRAD) &&
         !(n->op->flags & (TG_NONDIFF(i) | TG_ZEROGRAD(i)));
}

/* A view: a new arena tensor header sharing x's data with another shape
 * (same numel). Not recorded; the reshape op records it. */
tg_tensor *tg_view(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim);

/* 1 when every element is finite. */
int tg_all_finite(const tg_real *x, int64_t n);

#endif
