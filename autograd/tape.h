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
 * Errors follow the policy written in tapegrad.h: an op that fails returns
 * NULL and puts the tape in an error state with a message naming the op,
 * its tape position and the shapes; while the tape is in that state every
 * op returns NULL at once, so a chain of calls fails cleanly and the caller
 * checks once. tg_tape_reset clears the state.
 *
 * A NULL tape (what tg_tape_new returns when memory runs out) is accepted
 * by every function here and changes nothing: tg_tape_status returns
 * TG_ERR_NULL and tg_tape_error "tape is NULL"; functions returning a
 * status return TG_ERR_NULL (tg_tape_fail: its own status), a tensor or
 * the generator NULL, a mode or tg_tape_holds 0, stats and marks zeros,
 * tg_tape_get_profile 0 kinds; free, reset, seed, rewind and
 * tg_tape_profile_reset do nothing.
 */
#ifndef TG_TAPE_H
#define TG_TAPE_H

#include "rng.h"
#include "tensor.h"

/* Returns a new tape (grad mode on, train mode on, anomaly mode off, seed
 * 0), or NULL if memory runs out. */
TG_API tg_tape *tg_tape_new(void);
TG_API void tg_tape_free(tg_tape *tape);

/* Releases every arena tensor and recorded op and clears the error state.
 * Owned tensors (parameters) and their gradients are untouched: zeroing
 * gradients is the optimizer's or the caller's job (tg_tensor_zero_grad). */
TG_API void tg_tape_reset(tg_tape *tape);

/* ---------------------------------------------------------------------
 * Status */

TG_API tg_status tg_tape_status(const tg_tape *tape);  /* TG_OK or the first error */
TG_API const char *tg_tape_error(const tg_tape *tape); /* "" when TG_OK */
/* Puts the tape in an error state unless it already is in one, with the
 * message "who (op #k): ..." (k: the position the next op would take), and
 * returns status. For layers, losses and other compositions of ops, which
 * have no op descriptor; an op itself fails with tg_op_fail (op.h). */
TG_API tg_status tg_tape_fail(tg_tape *tape, tg_status status, const char *who, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------------
 * Modes (each call returns the previous setting) */

/* Grad mode off: ops compute but record nothing; outputs need no grad. */
TG_API int tg_tape_set_grad(tg_tape *tape, int on);
TG_API int tg_tape_grad_enabled(const tg_tape *tape);
/* Train mode is read by Dropout and Batch Norm; the engine ignores it. */
TG_API int tg_tape_set_train(tg_tape *tape, int on);
TG_API int tg_tape_training(const tg_tape *tape);
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
TG_API int tg_tape_set_anomaly(tg_tape *tape, int on);
#define TG_ANOMALY_BACKWARDS 100

/* 1 when t may be an input of an op on tape now: an owned tensor, or an
 * arena tensor of this tape's current step (within the limits above).
 * Layers check their inputs with it before they allocate anything (an
 * allocation after a reset can reuse a stale tensor's memory and hide that
 * it is stale). */
TG_API int tg_tape_holds(const tg_tape *tape, const tg_tensor *t);

/* The tape's generator (init, dropout, gradcheck directions). */
TG_API tg_rng *tg_tape_rng(tg_tape *tape);
TG_API void tg_tape_seed(tg_tape *tape, uint64_t seed);

/* ---------------------------------------------------------------------
 * Arena tensors (valid until the next reset) */

/* Uninitialised / zero-filled / constant-filled tensor of the given shape. */
TG_API tg_tensor *tg_empty(tg_tape *tape, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_zeros(tg_tape *tape, const int64_t *shape, int ndim);
TG_API tg_tensor *tg_full(tg_tape *tape, const int64_t *shape, int ndim, tg_real v);
/* A scalar (ndim 0). */
TG_API tg_tensor *tg_scalar(tg_tape *tape, tg_real v);
/* Copies numel values from `values` (doubles, so tests read the same in
 * both builds). */
TG_API tg_tensor *tg_from_values(tg_tape *tape, const int64_t *shape, int ndim,
                                 const double *values);
/* Marks an arena leaf as needing a gradient (backward fills t->grad).
 * Returns t; NULL stays NULL. Fails for non-leaves. */
TG_API tg_tensor *tg_requires_grad(tg_tape *tape, tg_tensor *t);

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
TG_API tg_status tg_backward(tg_tape *tape, tg_tensor *y, tg_tensor *dy);

/* Returns in gx[i] the gradient of y (seeded by dy, NULL as above) with
 * respect to xs[i], as arena tensors; leaf gradients are not touched. A
 * tensor y does not depend on gets zeros. With create_graph the backward
 * ops are recorded, so gx can be differentiated again (second
 * derivatives, double backprop). Returns TG_OK or the error status. */
TG_API tg_status tg_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *xs,
                         tg_tensor **gx, int create_graph);

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
TG_API tg_tape_stats tg_tape_get_stats(const tg_tape *tape);

/* Writes the recorded graph in Graphviz DOT (ops with their tape index and
 * output shape; leaves with their names). Returns TG_OK, TG_ERR_IO, or
 * TG_ERR_NULL when tape or f is NULL. */
TG_API tg_status tg_tape_write_dot(const tg_tape *tape, FILE *f);

/* A mark remembers the tape's length and arena position; rewinding drops
 * every op and arena tensor made after it (tensors made before stay). */
typedef struct tg_tape_mark {
  int64_t nodes;
  /* the arena's position (arena.h's tg_arena_mark), the engine's own */
  struct tg_arena_block *block;
  size_t used, in_use;
} tg_tape_mark;
TG_API tg_tape_mark tg_tape_get_mark(const tg_tape *tape);
TG_API void tg_tape_rewind(tg_tape *tape, tg_tape_mark m);

/* Threads. Every op of every tape runs its kernels on up to tg_threads()
 * threads of this process. The default is OpenMP's: OMP_NUM_THREADS when
 * set, else one per core. tg_set_threads(n), n >= 1, sets it for the whole
 * process, whichever thread calls ops afterwards; 0 restores the default.
 * Results never depend on the count (each kernel cuts its work into
 * chunks fixed by the shapes), only the speed does. On a machine shared
 * with other busy processes, a thread that loses its core makes the
 * others take its chunks, but an op still waits for the chunk it had
 * started, a whole time slice: so after a parallel loop that ran slower
 * on its threads than one thread would have, every loop runs on the
 * calling thread alone for a while (5 ms, doubling up to a second while
 * it stays so), then tries the threads again (autograd/tape.c,
 * bench_busy.py).
 * tg_set_threads_adaptive(0) turns that off (every parallel loop then
 * uses tg_threads() threads, as a scaling measurement wants), 1 turns it
 * back on (the default). Returns TG_OK, or TG_ERR_ARG for n < 0. */
TG_API tg_status tg_set_threads(int n);
TG_API int tg_threads(void);
TG_API void tg_set_threads_adaptive(int on);

/* ---------------------------------------------------------------------
 * Profiling: where the time goes, per op kind (as torch.profiler's table)
 *
 *   tg_tape_set_profile(tape, 1);
 *   ...training steps...
 *   tg_tape_write_profile(tape, stderr);   // or tg_tape_get_profile
 *
 * While profiling is on, every op that produces an output adds to its
 * kind's row (kinds are op descriptors: matmul, conv, add, ...):
 * - calls and forward time: the op's own time, from its checks to its
 *   recording, less the time of ops nested in it (self time). A composite
 *   (a layer, a loss, gelu, concat) has no row: its time is its ops'.
 * - backward calls and time: runs of the op's backward rule. The ops a
 *   rule runs are its work and are not counted as ops of their own, so no
 *   second is counted twice. The row "accumulate" is the summing of
 *   gradients (where a tensor feeds several ops, and into leaves' grad).
 * - bytes: inputs read plus output written, in bytes of tg_real, once per
 *   call (a view, as reshape's output, moves none); backward bytes are
 *   those of the ops the rule runs. A nominal figure: what the op must
 *   touch, not what the caches did.
 * Times come from a monotonic clock on the calling thread and include
 * the threads an op's kernel forks. Figures add up over steps and survive
 * tg_tape_reset and turning profiling off; tg_tape_profile_reset clears
 * them. Profiling off costs one predictable branch per op. */

typedef struct tg_op_profile {
  const char *name;   /* the op kind (static storage); "(other)": kinds past 120 */
  int64_t calls;      /* forward runs */
  int64_t bw_calls;   /* backward rule runs ("accumulate": gradient sums) */
  double fwd_s, bw_s; /* seconds, self time */
  int64_t fwd_bytes, bw_bytes;
} tg_op_profile;

/* Profiling on or off; returns the previous setting (a mode). */
TG_API int tg_tape_set_profile(tg_tape *tape, int on);
/* Fills rows[0..min(n, cap)-1] with the n op kinds seen since the last
 * tg_tape_profile_reset, sorted by total (forward + backward) time,
 * longest first, and returns n (rows NULL: only counts them). */
TG_API int tg_tape_get_profile(const tg_tape *tape, tg_op_profile *rows, int cap);
TG_API void tg_tape_profile_reset(tg_tape *tape);
/* Writes the figures as a table, sorted as tg_tape_get_profile, with a
 * total line. Returns TG_OK, TG_ERR_IO, or TG_ERR_NULL when tape or f is
 * NULL. */
TG_API tg_status tg_tape_write_profile(const tg_tape *tape, FILE *f);

#endif
