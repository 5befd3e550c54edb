/* profile.c — the op profiler: per op kind, the calls, forward and
 * backward time and bytes moved, and the table that shows them.
 *
 * The tape calls the hooks here only while profiling is on (one flag test
 * in tg_op_begin, tg_op_record and backward's walk), so nothing here may
 * be needed for an op to work, and nothing here changes a result. It
 * knows no particular op: rows are keyed by the op's descriptor.
 *
 * Nesting. A primitive op's time runs from its tg_op_begin to its
 * tg_op_record. Ops begun inside it (matmul on batched operands runs
 * reshape and matmul) are timed on their own and their time is taken out
 * of the enclosing op's: each row is self time, and the rows add up to
 * the time spent in ops. A begin that never records (a failed op, or an
 * op that returns its input: broadcast_to to the same shape, detach)
 * leaves a frame behind; a record pops down to its own op's frame,
 * discarding any above it, and the stack drops its oldest frame when
 * full, so stale frames cost nothing but a few ns of misplaced time.
 * tg_tape_reset empties the stack.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tape_internal.h"

/* At most this many kinds get rows of their own; the table stays sparse
 * enough that probing ends quickly. */
enum { PROF_KINDS = TG_PROF_SLOTS - 8 };

static int64_t clock_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static tg_prof_row *row_of(tg_profile *p, const tg_op *op) {
  size_t h = ((uintptr_t)op >> 4) * 0x9e3779b97f4a7c15ULL >> 57; /* 7 bits: 128 slots */
  for (;; h = (h + 1) % TG_PROF_SLOTS) {
    tg_prof_row *r = &p->rows[h];
    if (r->op == op)
      return r;
    if (!r->op) {
      if (p->used == PROF_KINDS)
        return &p->other;
      p->used++;
      r->op = op;
      return r;
    }
  }
}

void tg_prof_begin(tg_tape *tape, const tg_op *op) {
  tg_profile *p = &tape->prof;
  if (p->in_rule || (op->flags & TG_COMPOSITE))
    return;
  if (p->depth == TG_PROF_DEPTH) { /* only stale frames get this deep */
    memmove(p->stack, p->stack + 1, (TG_PROF_DEPTH - 1) * sizeof p->stack[0]);
    p->depth--;
  }
  p->stack[p->depth++] = (tg_prof_frame){op, clock_ns(), 0};
}

void tg_prof_record(tg_tape *tape, const tg_op *op, const tg_tensor *out, int n,
                    tg_tensor *const *in) {
  tg_profile *p = &tape->prof;
  int64_t bytes = 0;
  if (!(out->flags & TG_VIEW)) {
    int64_t elems = out->numel;
    for (int i = 0; i < n; i++)
      elems += in[i]->numel;
    bytes = elems * (int64_t)sizeof(tg_real);
  }
  if (p->in_rule) {
    p->rule_bytes += bytes;
    p->rule_ops++;
    return;
  }
  tg_prof_row *r = row_of(p, op);
  r->calls++;
  r->fwd_bytes += bytes;
  int k = p->depth - 1;
  while (k >= 0 && p->stack[k].op != op)
    k--;
  if (k < 0) /* recorded without a begin of its own: counted, not timed */
    return;
  const int64_t elapsed = clock_ns() - p->stack[k].t0;
  r->fwd_ns += elapsed - p->stack[k].child_ns;
  p->depth = k;
  if (k > 0)
    p->stack[k - 1].child_ns += elapsed;
}

int64_t tg_prof_enter(tg_tape *tape, int64_t now) {
  tape->prof.in_rule = 1;
  tape->prof.rule_bytes = 0;
  tape->prof.rule_ops = 0;
  return now ? now : clock_ns();
}

int64_t tg_prof_leave(tg_tape *tape, const tg_op *op, int64_t t0, int64_t calls) {
  tg_profile *p = &tape->prof;
  const int64_t t = clock_ns();
  p->in_rule = 0;
  if (calls < 0)
    calls = p->rule_ops;
  if (calls > 0) {
    tg_prof_row *r = row_of(p, op);
    r->bw_calls += calls;
    r->bw_ns += t - t0;
    r->bw_bytes += p->rule_bytes;
  }
  return t;
}

/* ------------------------------------------------------------------------
 * The public side */

int tg_tape_set_profile(tg_tape *tape, int on) {
  if (!tape)
    return 0;
  int old = tape->profiling;
  tape->profiling = on != 0;
  tape->prof.depth = 0; /* frames of the other mode's ops mean nothing now */
  tape->prof.in_rule = 0;
  return old;
}

void tg_tape_profile_reset(tg_tape *tape) {
  if (tape)
    memset(&tape->prof, 0, sizeof tape->prof);
}

static tg_op_profile public_row(const tg_prof_row *r, const char *name) {
  return (tg_op_profile){
      name,         r->calls,   r->bw_calls, 1e-9 * (double)r->fwd_ns, 1e-9 * (double)r->bw_ns,
      r->fwd_bytes, r->bw_bytes};
}

static double total_s(const tg_op_profile *r) { return r->fwd_s + r->bw_s; }

static int by_time(const void *a, const void *b) {
  const tg_op_profile *x = a, *y = b;
  if (total_s(x) != total_s(y))
    return total_s(x) < total_s(y) ? 1 : -1;
  return strcmp(x->name, y->name);
}

/* Every kind's row into all (room for TG_PROF_SLOTS + 1), sorted; returns
 * how many. */
static int collect(const tg_profile *p, tg_op_profile *all) {
  int n = 0;
  for (int i = 0; i < TG_PROF_SLOTS; i++)
    if (p->rows[i].op)
      all[n++] = public_row(&p->rows[i], p->rows[i].op->name);
  if (p->other.calls || p->other.bw_calls)
    all[n++] = public_row(&p->other, "(other)");
  qsort(all, (size_t)n, sizeof all[0], by_time);
  return n;
}

int tg_tape_get_profile(const tg_tape *tape, tg_op_profile *rows, int cap) {
  if (!tape)
    return 0;
  tg_op_profile all[TG_PROF_SLOTS + 1];
  int n = collect(&tape->prof, all);
  for (int i = 0; rows && i < n && i < cap; i++)
    rows[i] = all[i];
  return n;
}

static void write_row(FILE *f, const tg_op_profile *r, double all_s) {
  const double t = total_s(r), bytes = (double)(r->fwd_bytes + r->bw_bytes);
  fprintf(f, "%-16s %9lld %10.3f %9lld %10.3f %10.3f %6.1f%% %11.1f %7.2f\n", r->name,
          (long long)r->calls, 1e3 * r->fwd_s, (long long)r->bw_calls, 1e3 * r->bw_s, 1e3 * t,
          all_s > 0 ? 100 * t / all_s : 0.0, 1e-6 * bytes, t > 0 ? 1e-9 * bytes / t : 0.0);
}

tg_status tg_tape_write_profile(const tg_tape *tape, FILE *f) {
  if (!tape || !f)
    return TG_ERR_NULL;
  tg_op_profile all[TG_PROF_SLOTS + 1];
  const int n = collect(&tape->prof, all);
  tg_op_profile sum = {"total", 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; i++) {
    sum.calls += all[i].calls, sum.bw_calls += all[i].bw_calls;
    sum.fwd_s += all[i].fwd_s, sum.bw_s += all[i].bw_s;
    sum.fwd_bytes += all[i].fwd_bytes, sum.bw_bytes += all[i].bw_bytes;
  }
  fprintf(f, "%-16s %9s %10s %9s %10s %10s %7s %11s %7s\n", "op", "calls", "fwd ms", "bw calls",
          "bw ms", "total ms", "share", "MB moved", "GB/s");
  for (int i = 0; i < n; i++)
    write_row(f, &all[i], total_s(&sum));
  write_row(f, &sum, total_s(&sum));
  return ferror(f) ? TG_ERR_IO : TG_OK;
}
