/* tape_internal.h — the tape's fields, shared by the autograd/ files only.
 * Nothing outside autograd/ includes this: ops go through op.h.
 */
#ifndef TG_TAPE_INTERNAL_H
#define TG_TAPE_INTERNAL_H

#include "arena.h"
#include "op.h"

/* A checksum of t's data (anomaly mode's check of saved tensors). */
uint64_t tg_checksum(const tg_tensor *t);

/* ------------------------------------------------------------------------
 * The profiler's figures (profile.c). Rows are found by the op's
 * descriptor in an open-addressed table; kinds beyond it share one row. */

enum { TG_PROF_SLOTS = 128, TG_PROF_DEPTH = 16 };

typedef struct tg_prof_row {
  const tg_op *op; /* NULL: a free slot */
  int64_t calls, bw_calls;
  int64_t fwd_ns, bw_ns;
  int64_t fwd_bytes, bw_bytes;
} tg_prof_row;

/* An op between tg_op_begin and tg_op_record: when it began and how long
 * the ops nested in it took, so that its own time excludes theirs. */
typedef struct tg_prof_frame {
  const tg_op *op;
  int64_t t0, child_ns;
} tg_prof_frame;

typedef struct tg_profile {
  tg_prof_row rows[TG_PROF_SLOTS];
  tg_prof_row other; /* every kind that found the table full */
  int used;          /* slots taken */
  tg_prof_frame stack[TG_PROF_DEPTH];
  int depth;
  /* Inside a backward rule (or the gradients' accumulation): the ops it
   * runs are its own work, their bytes and count summed here. */
  int in_rule;
  int64_t rule_bytes, rule_ops;
} tg_profile;

/* The hooks, called only while profiling (tape->profiling). */
void tg_prof_begin(tg_tape *tape, const tg_op *op);
void tg_prof_record(tg_tape *tape, const tg_op *op, const tg_tensor *out, int n,
                    tg_tensor *const *in);
/* Around a backward rule, or the accumulation of gradients: enter returns
 * the clock (now, or `now` when it is not 0: a leave's, which saves a
 * read); leave adds the time since t0, the bytes of the ops run in
 * between and `calls` (< 0: the number of those ops) to op's backward
 * figures when there is something to add, and returns the clock. */
int64_t tg_prof_enter(tg_tape *tape, int64_t now);
int64_t tg_prof_leave(tg_tape *tape, const tg_op *op, int64_t t0, int64_t calls);
/* Work done without an op inside enter/leave (the leaves' gradient sums). */
static inline void tg_prof_count(tg_tape *tape, int64_t bytes);

struct tg_tape {
  tg_arena arena;
  tg_node *nodes; /* recorded ops, in forward order */
  int64_t n_nodes;
  int64_t cap_nodes;
  uint64_t node_allocs; /* system allocations for the node array */
  uint32_t gen;         /* bumped at every reset: stale tensors are caught */
  int grad_enabled;
  int training;
  int anomaly;
  int64_t backwards;  /* backward passes since the last reset */
  int warned;         /* anomaly mode's "reset missing?" warning given */
  const tg_op *bw_op; /* during a backward rule: its op and node, for messages */
  int64_t bw_node;
  int bw_offer;       /* in tg_backward's walk: rules may add into leaves' buffers (tg_grad_into) */
  int deciding;       /* gradcheck's evaluations: kinked ops fingerprint their decisions */
  uint64_t decisions; /* the fingerprint so far (op.h's tg_kinked_op) */
  tg_error err;
  tg_rng rng;
  int profiling;   /* tested once per op: the profiler's only cost when off */
  tg_profile prof; /* its figures, kept while it is off until reset */
};

static inline void tg_prof_count(tg_tape *tape, int64_t bytes) {
  tape->prof.rule_bytes += bytes;
  tape->prof.rule_ops++;
}

#endif
