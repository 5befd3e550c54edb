/* backward.c — reverse-mode differentiation over the tape.
 *
 * The tape is in forward order, so walking it from the output's node down
 * to 0 visits every consumer of a tensor before its producer: when a node
 * is reached, the gradient of its output is complete. Each node's rule
 * returns the gradients of its inputs, which are summed into the inputs'
 * `gacc`. Rules run as ordinary ops: with grad mode off they record
 * nothing; with create_graph they are recorded like any forward op and can
 * be differentiated again. This file knows no particular op.
 *
 * tg_backward, when not recording, also offers a rule the gradient buffer
 * of a leaf that has taken nothing yet in the pass (tg_grad_into): a
 * product's rule adds a weight's gradient into it with the product itself,
 * where the engine would add a fresh gradient into the buffer in a second
 * pass over both (TwoLayerNet's step: 4 us of about 110).
 */
#include <stdio.h>
#include <string.h>

#include "tape_internal.h"

/* Gradient accumulation is the one op autograd owns: a same-shape sum
 * whose rule passes gy to both inputs. When recording (create_graph) it is
 * taped like any op, so accumulated gradients can be differentiated. */
static void accumulate_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  (void)tape;
  (void)n;
  gx[0] = gy;
  gx[1] = gy;
}

static const tg_op op_accumulate = {"accumulate", 2, 0, accumulate_backward};

typedef struct add_ctx {
  tg_real *dst;
  const tg_real *a, *b;
} add_ctx;

/* dst = a + b over [lo, hi); dst may be a. */
TG_KERNEL static void add_chunk(void *arg, int64_t lo, int64_t hi) {
  add_ctx *c = arg;
  tg_real *dst = c->dst;
  const tg_real *a = c->a, *b = c->b;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++)
    dst[i] = a[i] + b[i];
}

static int accumulate(tg_tape *tape, tg_tensor *x, tg_tensor *g) {
  if (!x->gacc) {
    x->gacc = g;
    return TG_OK;
  }
  tg_tensor *in[2] = {x->gacc, g};
  tg_tensor *sum = tg_empty(tape, x->shape, x->ndim);
  if (!sum)
    return tape->err.status;
  add_ctx c = {sum->data, in[0]->data, in[1]->data};
  tg_parallel_for(sum->numel, TG_GRAIN, sum->numel, add_chunk, &c);
  x->gacc = tg_op_record(tape, &op_accumulate, sum, 2, in, NULL, 0);
  return x->gacc ? TG_OK : tape->err.status;
}

static void clear_gacc(tg_tape *tape, int64_t top) {
  for (int64_t i = 0; i <= top; i++) {
    tg_node *n = &tape->nodes[i];
    n->out->gacc = NULL;
    for (int k = 0; k < n->n_in; k++)
      n->in[k]->gacc = NULL;
  }
}

/* Fails the tape when a tensor node n (op #i) saved was written since it
 * was recorded: through the API (its version moved) or, in anomaly mode,
 * by hand without tg_tensor_bump (its checksum moved). */
static tg_status check_saved(tg_tape *tape, const tg_node *n, int64_t i, const char *who) {
  for (int k = 0; k <= n->n_in; k++) {
    const tg_tensor *t = k < n->n_in ? n->in[k] : n->out;
    const int moved = t->version != n->version[k];
    if (!moved && !(tape->anomaly && tg_checksum(t) != n->checksum[k]))
      continue; /* the common case: formats nothing */
    char what[32];
    snprintf(what, sizeof what, k < n->n_in ? "input %d" : "the output", k);
    if (moved)
      return tg_tape_fail(tape, TG_ERR_GRAD, who,
                          "%s %s%s%s of %s (op #%lld) was modified after the op was recorded "
                          "(version %u, now %u): run the forward again after changing it",
                          what, t->name ? t->name : "", t->name ? " " : "", TG_SHAPE(t),
                          n->op->name, (long long)i, n->version[k], t->version);
    return tg_tape_fail(tape, TG_ERR_GRAD, who,
                          "%s %s%s%s of %s (op #%lld) was written after the op was recorded, "
                          "without tg_tensor_bump (its data changed): run the forward again after "
                          "changing it",
                          what, t->name ? t->name : "", t->name ? " " : "", TG_SHAPE(t),
                          n->op->name, (long long)i);
  }
  return TG_OK;
}

/* Counts a backward pass; in anomaly mode, warns once when a tape looks
 * like a training loop's that is never reset. */
static void count_pass(tg_tape *tape) {
  if (++tape->backwards < TG_ANOMALY_BACKWARDS || !tape->anomaly || tape->warned)
    return;
  tape->warned = 1;
  fprintf(stderr,
          "tapegrad: warning: %lld backward passes on one tape since its last reset (%lld ops "
          "recorded, %.1f MiB of arena in use): is tg_tape_reset missing from a loop?\n",
          (long long)tape->backwards, (long long)tape->n_nodes,
          (double)tape->arena.in_use / (1 << 20));
}

tg_tensor *tg_grad_into(tg_tape *tape, const tg_node *n, int i) {
  if (!tape || !tape->bw_offer || !n || i < 0 || i >= n->n_in ||
      !(n->op->flags & TG_GRAD_INTO) || !tg_op_needs_grad(n, i))
    return NULL;
  tg_tensor *x = n->in[i]; /* a leaf that has taken nothing in this pass */
  if (x->node >= 0 || x->gacc || !x->grad || !tg_shape_eq(x->grad, x))
    return NULL;
  tg_tensor_bump(x->grad); /* the rule writes into it */
  return x->grad;
}

void tg_op_work(tg_tape *tape, int64_t bytes) {
  if (tape && tape->profiling)
    tg_prof_count(tape, bytes);
}

/* Seeds y->gacc and walks the tape from y's node down to 0. */
static int walk(tg_tape *tape, tg_tensor *y, tg_tensor *dy, const char *who) {
  if (!tape || tape->err.status != TG_OK)
    return tape ? tape->err.status : TG_ERR_NULL;
  count_pass(tape);
  if (!y)
    return tg_tape_fail(tape, TG_ERR_NULL, who, "output is NULL");
  if (!(y->flags & TG_OWNED) && (y->tape != tape || y->gen != tape->gen))
    return tg_tape_fail(tape, TG_ERR_ARG, who, "output %s is not from this tape's current step",
                        TG_SHAPE(y));
  if (!(y->flags & TG_REQUIRES_GRAD))
    return tg_tape_fail(tape, TG_ERR_GRAD, who,
                        "output %s does not require grad (no input of it needs a "
                        "gradient, or it was computed with grad mode off)",
                        TG_SHAPE(y));
  if (dy && !tg_shape_eq(y, dy)) {
    char a[160], b[160];
    return tg_tape_fail(tape, TG_ERR_SHAPE, who, "seed gradient %s does not match output %s",
                        tg_shape_str(dy->shape, dy->ndim, a, sizeof a),
                        tg_shape_str(y->shape, y->ndim, b, sizeof b));
  }
  if (!dy && y->numel != 1)
    return tg_tape_fail(tape, TG_ERR_SHAPE, who,
                        "output %s is not a scalar: a seed gradient can be implied only for one "
                        "element; pass dy of its shape (ones for the gradient of its sum), or sum "
                        "it first",
                        TG_SHAPE(y));
  int64_t top = y->node;
  if (top >= 0)
    clear_gacc(tape, top);
  y->gacc = dy ? dy : tg_full(tape, y->shape, y->ndim, 1);
  if (!y->gacc)
    return tape->err.status;

  /* Profiling: a rule's time is its op's backward time, and the sums of
   * the gradients it gives are accumulate's. */
  const int prof = tape->profiling;
  for (int64_t i = top; i >= 0; i--) {
    /* A copy: recording rules may grow (move) the node array. */
    tg_node n = tape->nodes[i];
    tg_tensor *gy = n.out->gacc;
    if (!gy)
      continue;
    tg_tensor *gx[TG_MAX_INPUTS] = {0};
    for (int k = 0; k < n.n_in; k++)
      if ((n.op->flags & TG_NONDIFF(k)) && (n.in[k]->flags & TG_REQUIRES_GRAD))
        return tg_tape_fail(tape, TG_ERR_GRAD, who,
                            "input %d of %s (op #%lld) is not differentiable, but %s "
                            "requires grad",
                            k, n.op->name, (long long)i, TG_SHAPE(n.in[k]));
    tg_status st = check_saved(tape, &n, i, who);
    if (st != TG_OK)
      return st;
    tape->bw_op = n.op;
    tape->bw_node = i;
    int64_t t = __builtin_expect(prof, 0) ? tg_prof_enter(tape, 0) : 0;
    n.op->backward(tape, &n, gy, gx);
    if (__builtin_expect(prof, 0))
      t = tg_prof_enter(tape, tg_prof_leave(tape, n.op, t, 1));
    tape->bw_op = NULL;
    if (tape->err.status != TG_OK)
      return tape->err.status;
    for (int k = 0; k < n.n_in; k++) {
      tg_tensor *g = gx[k];
      if (!tg_op_needs_grad(&n, k) || (!g && (n.op->flags & TG_GRAD_INTO)))
        continue; /* none, or added into the leaf's buffer (tg_grad_into) */
      if (!g || !tg_shape_eq(g, n.in[k]))
        return tg_tape_fail(
            tape, TG_ERR_GRAD, who, "the rule of %s (op #%lld) gave %s for input %d of shape %s",
            n.op->name, (long long)i, g ? TG_SHAPE(g) : "no gradient", k, TG_SHAPE(n.in[k]));
      if (tape->anomaly && !tg_all_finite(g->data, g->numel))
        return tg_tape_fail(tape, TG_ERR_ANOMALY, who,
                            "gradient of input %d of %s (op #%lld) has NaN or Inf", k, n.op->name,
                            (long long)i);
      tg_status st = accumulate(tape, n.in[k], g);
      if (st != TG_OK)
        return st;
    }
    if (__builtin_expect(prof, 0))
      tg_prof_leave(tape, &op_accumulate, t, -1);
  }
  return TG_OK;
}

tg_status tg_backward(tg_tape *tape, tg_tensor *y, tg_tensor *dy) {
  int was = tape ? tape->grad_enabled : 0;
  if (tape) {
    tape->grad_enabled = 0;
    tape->bw_offer = !tape->anomaly; /* not recording: rules may add into leaves' buffers */
  }
  tg_status st = walk(tape, y, dy, "backward");
  if (tape)
    tape->grad_enabled = was, tape->bw_offer = 0;
  if (st != TG_OK)
    return st;
  /* Leaves: add this pass's gradient into their buffers, each once. */
  const int prof = tape->profiling;
  int64_t t = prof ? tg_prof_enter(tape, 0) : 0;
  for (int64_t i = y->node; i >= -1; i--) {
    tg_tensor *ins[TG_MAX_INPUTS] = {0};
    int n_in = 1;
    if (i >= 0) {
      memcpy(ins, tape->nodes[i].in, sizeof ins);
      n_in = tape->nodes[i].n_in;
    } else {
      ins[0] = y; /* y itself may be a leaf */
    }
    for (int k = 0; k < n_in; k++) {
      tg_tensor *x = ins[k];
      if (!x || x->node >= 0 || !x->gacc || !(x->flags & TG_REQUIRES_GRAD))
        continue;
      if (!x->grad && (x->flags & TG_OWNED)) {
        /* An owned leaf outlives the step: so must its gradient. */
        x->grad = tg_tensor_new(x->shape, x->ndim, 0, NULL, &tape->err);
        if (!x->grad)
          return tape->err.status;
      } else if (!x->grad) {
        x->grad = tg_zeros(tape, x->shape, x->ndim);
        if (!x->grad)
          return tape->err.status;
      }
      add_ctx c = {x->grad->data, x->grad->data, x->gacc->data};
      tg_parallel_for(x->numel, TG_GRAIN, x->numel, add_chunk, &c);
      tg_tensor_bump(x->grad);
      x->gacc = NULL;
      if (prof)
        tg_prof_count(tape, 3 * x->numel * (int64_t)sizeof(tg_real));
    }
  }
  if (prof)
    tg_prof_leave(tape, &op_accumulate, t, -1);
  return TG_OK;
}

tg_status tg_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *xs,
                  tg_tensor **gx, int create_graph) {
  if (!tape || tape->err.status != TG_OK)
    return tape ? tape->err.status : TG_ERR_NULL;
  if (n < 0 || (n > 0 && (!xs || !gx)))
    return tg_tape_fail(tape, TG_ERR_ARG, "grad", "%d inputs with xs or gx NULL", n);
  for (int i = 0; i < n; i++) {
    gx[i] = NULL;
    if (!xs[i])
      return tg_tape_fail(tape, TG_ERR_NULL, "grad", "input %d is NULL", i);
    if (!(xs[i]->flags & TG_REQUIRES_GRAD))
      return tg_tape_fail(tape, TG_ERR_GRAD, "grad", "input %d %s does not require grad", i,
                          TG_SHAPE(xs[i]));
  }
  for (int i = 0; i < n; i++)
    xs[i]->gacc = NULL; /* an input y does not use keeps no stale gradient */
  int was = tape->grad_enabled;
  tape->grad_enabled = create_graph != 0;
  tg_status st = walk(tape, y, dy, "grad");
  tape->grad_enabled = was;
  if (st != TG_OK)
    return st;
  for (int i = 0; i < n; i++) {
    gx[i] = xs[i]->gacc ? xs[i]->gacc : tg_zeros(tape, xs[i]->shape, xs[i]->ndim);
    if (!gx[i])
      return tape->err.status;
  }
  return TG_OK;
}
