/* tape_internal.h — the tape's fields, shared by the autograd/ files only.
 * Nothing outside autograd/ includes this: ops go through op.h.
 */
#ifndef TG_TAPE_INTERNAL_H
#define TG_TAPE_INTERNAL_H

#include "arena.h"
#include "op.h"

/* A checksum of t's data (anomaly mode's check of saved tensors). */
uint64_t tg_checksum(const tg_tensor *t);

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
  int deciding;       /* gradcheck's evaluations: kinked ops fingerprint their decisions */
  uint64_t decisions; /* the fingerprint so far (op.h's tg_kinked_op) */
  tg_error err;
  tg_rng rng;
};

#endif
