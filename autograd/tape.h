/* tape.h — the tape: what ran in the forward pass, and backward over it.
 *
 * A tape is the context of every op: it owns the arena for intermediates,
 * the list of recorded ops (in forward order, which is a topological order),
 * the error status, the grad/train/anomaly modes and a seeded generator.
 * Nothing here is global, so two tapes never collide.
 *
 *   tg_tape *tape = tg_tape_new();
 *   tg_tensor *x = tg_tensor_new((int64_t[]){3}, 1, 1, "x", NULL);
 *   ...fill x->data...
 *   tg_tensor *y = tg_sum(tape, tg_mul(tape, x, x), NULL, 0, 0);  // sum x^2
 *   if (!y) fprintf(stderr, "%s\n", tg_tape_error(tape));
 *   tg_backward(tape, y, NULL);            // x->grad += 2x
 *   tg_tape_reset(tape);                   // frees y and every intermediate
 *
 * Errors (DESIGN.md §7): an op that fails returns NULL and puts the tape in
 * an error state with a message naming the op, its tape position and the
 * shapes. While the tape is in that state every op returns NULL at once, so
 * a chain of calls fails cleanly and the caller checks once. tg_tape_reset
 * clears the state.
 */
#ifndef TG_TAPE_H
#define TG_TAPE_H

#include "arena.h"
#include "rng.h"
#include "tensor.h"

/* Returns a new tape (grad mode on, train mode on, anomaly mode off, seed
 * 0), or NULL if memory runs out. */
tg_tape *tg_tape_new(void);
void tg_tape_free(tg_tape *tape);

/* Releases every arena tensor and recorded op and clears the error state.
 * Owned tensors (parameters) and their gradients are untouched: zeroing
 * gradients is the optimizer's or the caller's job (tg_tensor_zero_grad). */
void tg_tape_reset(tg_tape *tape);

/* ---------------------------------------------------------------------
 * Status */

int tg_tape_status(const tg_tape *tape);        /* TG_OK or a tg_status */
const char *tg_tape_error(const tg_tape *tape); /* "" when TG_OK */
/* Puts the tape in an error state unless it already is in one; returns
 * status. Messages are prefixed with nothing: name the op yourself. */
int tg_tape_fail(tg_tape *tape, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------
 * Modes (each call returns the previous setting) */

/* Grad mode off: ops compute but record nothing; outputs need no grad. */
int tg_tape_set_grad(tg_tape *tape, int on);
int tg_tape_grad_enabled(const tg_tape *tape);
/* Train mode is read by Dropout and Batch Norm; the engine ignores it. */
int tg_tape_set_train(tg_tape *tape, int on);
int tg_tape_training(const tg_tape *tape);
/* Anomaly mode, for debugging, slower and hungrier:
 * - every op output and every gradient is scanned for NaN and Inf; the
 *   first one found fails the tape naming the op and position;
 * - what each op saved is checksummed, and backward refuses a tensor
 *   written since, even by hand without tg_tensor_bump (tensor.h);
 * - a reset reuses no memory of the step it ends (it is kept until a
 *   reset in normal mode or tg_tape_free), so every arena tensor of an
 *   earlier step stays recognisable and any op given one fails naming it.
 *   Memory grows by one step's arena per reset while the mode is on;
 * - a tape that reaches TG_ANOMALY_BACKWARDS backward passes without a
 *   reset prints one warning on stderr (once per tape): the mark of a
 *   training loop that forgot tg_tape_reset, whose memory and step time
 *   grow without bound. tg_tape_get_stats counts the passes in any mode.
 *
 * Stale arena tensors in normal mode: an op (and tg_tape_holds) refuses a
 * tensor of an earlier step as long as its memory has not been handed out
 * again. Once a later allocation has reused that memory, the stale pointer
 * points at the new tensor (same address, current generation) and cannot
 * be told from it: keep no arena tensor across tg_tape_reset, or find the
 * place that does with anomaly mode. */
int tg_tape_set_anomaly(tg_tape *tape, int on);
#define TG_ANOMALY_BACKWARDS 100

/* 1 when t may be an input of an op on tape now: an owned tensor, or an
 * arena tensor of this tape's current step (within the limits above).
 * Layers check their inputs with it before they allocate anything (an
 * allocation after a reset can reuse a stale tensor's memory and hide that
 * it is stale). */
int tg_tape_holds(const tg_tape *tape, const tg_tensor *t);

/* The tape's generator (init, dropout, gradcheck directions). */
tg_rng *tg_tape_rng(tg_tape *tape);
void tg_tape_seed(tg_tape *tape, uint64_t seed);

/* ---------------------------------------------------------------------
 * Arena tensors (valid until the next reset) */

/* Uninitialised / zero-filled / constant-filled tensor of the given shape. */
tg_tensor *tg_empty(tg_tape *tape, const int64_t *shape, int ndim);
tg_tensor *tg_zeros(tg_tape *tape, const int64_t *shape, int ndim);
tg_tensor *tg_full(tg_tape *tape, const int64_t *shape, int ndim, tg_real v);
/* A scalar (ndim 0). */
tg_tensor *tg_scalar(tg_tape *tape, tg_real v);
/* Copies numel values from `values` (doubles, so tests read the same in
 * both builds). */
tg_tensor *tg_from_values(tg_tape *tape, const int64_t *shape, int ndim, const double *values);
/* Marks an arena leaf as needing a gradient (backward fills t->grad).
 * Returns t; NULL stays NULL. Fails for non-leaves. */
tg_tensor *tg_requires_grad(tg_tape *tape, tg_tensor *t);

/* ---------------------------------------------------------------------
 * Backward */

/* Differentiates y with respect to every leaf that requires grad and adds
 * the result into the leaf's gradient (t->grad; allocated in the arena for
 * arena leaves, the tensor's own buffer for owned ones). `dy` seeds the
 * pass (same shape as y); NULL is allowed only for a y of one element
 * (a scalar, (1,), (1, 1)...) and means 1: for any other y it is an error
 * naming y's shape (sum y first, or pass ones for the gradient of its sum).
 * Calling it twice before a reset adds twice. Returns TG_OK or the tape's
 * error status. Nothing is recorded. */
int tg_backward(tg_tape *tape, tg_tensor *y, tg_tensor *dy);

/* Returns in gx[i] the gradient of y (seeded by dy, NULL as above) with
 * respect to xs[i], as arena tensors; leaf gradients are not touched. A
 * tensor y does not depend on gets zeros. With create_graph the backward
 * ops are recorded, so gx can be differentiated again (second
 * derivatives, double backprop). Returns TG_OK or the error status. */
int tg_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *xs, tg_tensor **gx,
            int create_graph);

/* ---------------------------------------------------------------------
 * Inspection */

typedef struct tg_tape_stats {
  int64_t nodes;         /* ops recorded since the last reset */
  size_t arena_in_use;   /* bytes */
  size_t arena_peak;     /* bytes, over the tape's life */
  size_t arena_capacity; /* bytes held from the system */
  uint64_t sys_allocs;   /* system allocations by the arena and the tape */
  int64_t backwards;     /* backward passes (tg_backward, tg_grad) since the last reset */
} tg_tape_stats;
tg_tape_stats tg_tape_get_stats(const tg_tape *tape);

/* Writes the recorded graph in Graphviz DOT (ops with their tape index and
 * output shape; leaves with their names). Returns TG_OK or TG_ERR_IO. */
int tg_tape_write_dot(const tg_tape *tape, FILE *f);

/* A mark remembers the tape's length and arena position; rewinding drops
 * every op and arena tensor made after it (tensors made before stay). */
typedef struct tg_tape_mark {
  int64_t nodes;
  tg_arena_mark arena;
} tg_tape_mark;
tg_tape_mark tg_tape_get_mark(const tg_tape *tape);
void tg_tape_rewind(tg_tape *tape, tg_tape_mark m);

#endif
