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

#include "parallel.h" /* TG_PAR_MIN, tg_parallel_for */
#include "tape.h"

#define TG_MAX_INPUTS 4
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
  unsigned flags;          /* TG_NONDIFF(i), TG_ZEROGRAD(i), TG_COMPOSITE, TG_GRAD_INTO */
  tg_backward_fn backward; /* NULL: the output is a constant (comparisons, argmax,
                              detach) or the descriptor names a composite */
};

/* TG_GRAD_INTO: the op's rule may add an input's gradient straight into
 * the input's gradient buffer (tg_grad_into); only such rules are offered
 * one, and a NULL gx[i] from one means it took it. */
#define TG_GRAD_INTO (1u << 29)

/* TG_KINKED: the op decides between smooth pieces (a comparison, a
 * ReLU's sign, a max's position), and its descriptor is the op member of
 * a tg_kinked_op, whose decide function fingerprints those decisions. */
#define TG_KINKED (1u << 30)

/* Returns a hash of the decisions the op made: which piece each output
 * element took (the mask, the signs, the argmax positions), computed from
 * what tg_op_record is given (attr: its attributes). May allocate arena
 * scratch; never fails the tape (0 when it cannot compute). */
typedef uint64_t (*tg_decide_fn)(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                                 const int64_t *attr);

/* A kinked op's descriptor: op.flags has TG_KINKED, and the op passes
 * &k.op wherever a descriptor is wanted. While a gradient check evaluates
 * its function (gradcheck.h), tg_op_record folds every kinked op's decide
 * result into a fingerprint of the whole evaluation, so a perturbation
 * that flips a decision is seen; at other times decide never runs and the
 * mechanism costs tg_op_record one predictable branch. */
typedef struct tg_kinked_op {
  tg_op op;
  tg_decide_fn decide;
} tg_kinked_op;

/* Helpers for decide functions. tg_hash_bytes: FNV-1a of n bytes, chained
 * from h. tg_hash_signs: a hash of x[i] > 0 for every element, and with
 * both also of x[i] < 0 (so 0 differs from either sign). */
TG_API uint64_t tg_hash_bytes(uint64_t h, const void *p, size_t n);
TG_API uint64_t tg_hash_signs(const tg_real *x, int64_t n, int both);

struct tg_node {
  const tg_op *op;
  int n_in; /* inputs this node recorded: at most op->n_in (a trailing one may be optional) */
  tg_tensor *in[TG_MAX_INPUTS];
  tg_tensor *out;
  int64_t attr[TG_MAX_ATTRS]; /* op-specific: axes, permutation, offsets */
  /* What the tensors were when recorded, checked by backward: versions of
   * in[0..n_in-1] and out (last), and in anomaly mode checksums of their
   * data (a raw write that skipped tg_tensor_bump). */
  uint32_t version[TG_MAX_INPUTS + 1];
  uint64_t checksum[TG_MAX_INPUTS + 1];
};

/* Returns 1 when the op may run: the tape is not in an error state, no
 * input is NULL, and each input belongs to this tape's current step (or is
 * owned). Otherwise fails the tape (unless it already failed) and returns 0. */
TG_API int tg_op_begin(tg_tape *tape, const tg_op *op, int n, tg_tensor *const *in);

/* Fails the tape with "name (op #k): message", k the position the op would
 * take on the tape. Returns NULL so ops can `return tg_op_fail(...)`. */
TG_API tg_tensor *tg_op_fail(tg_tape *tape, const tg_op *op, tg_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Finishes an op: in anomaly mode scans out for NaN/Inf; when grad mode is
 * on and a differentiable input requires grad, records a node (with n_attr
 * attributes copied from attr) and marks out as requiring grad. Returns out,
 * or NULL after failing the tape. n may be below op->n_in (an optional
 * trailing input left out, as conv's bias) but never above it, and n_attr
 * is at most TG_MAX_ATTRS: either mistake in an op fails the tape. */
TG_API tg_tensor *tg_op_record(tg_tape *tape, const tg_op *op, tg_tensor *out, int n,
                               tg_tensor *const *in, const int64_t *attr, int n_attr);

/* In a backward rule: 1 when input i of the node needs a gradient. */
static inline int tg_op_needs_grad(const tg_node *n, int i) {
  return i < n->n_in && n->in[i] && (n->in[i]->flags & TG_REQUIRES_GRAD) &&
         !(n->op->flags & (TG_NONDIFF(i) | TG_ZEROGRAD(i)));
}

/* In the backward rule of a TG_GRAD_INTO op: the gradient buffer of input
 * i when the rule may add input i's gradient into it directly instead of
 * returning it in gx[i] (leaving gx[i] NULL), else NULL. Offered only by
 * tg_backward when not recording, outside anomaly mode, to a leaf whose
 * buffer exists and has taken nothing yet in this pass: a product's rule
 * then writes a weight's gradient once, where the engine would have added
 * a fresh tensor into the buffer in a second pass. A rule that takes the
 * buffer adds into it and leaves gx[i] NULL. */
TG_API tg_tensor *tg_grad_into(tg_tape *tape, const tg_node *n, int i);

/* In a backward rule: work done without an op (a sum into a buffer from
 * tg_grad_into), counted by the profiler as the rule's bytes. */
TG_API void tg_op_work(tg_tape *tape, int64_t bytes);

/* A view: a new arena tensor header sharing x's data with another shape
 * (same numel). Not recorded; the reshape op records it. */
TG_API tg_tensor *tg_view(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim);

/* 1 when every element is finite. */
TG_API int tg_all_finite(const tg_real *x, int64_t n);

#endif
