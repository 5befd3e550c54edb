/* tape.c — the tape's life cycle, its status, its arena tensors and the
 * recording of ops. Backward lives in backward.c; no op is known here.
 */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tape_internal.h"

tg_tape *tg_tape_new(void) {
  tg_tape *tape = calloc(1, sizeof *tape);
  if (!tape)
    return NULL;
  tg_arena_init(&tape->arena);
  tape->grad_enabled = 1;
  tape->training = 1;
  tape->gen = 1;
  tg_rng_seed(&tape->rng, 0);
  return tape;
}

void tg_tape_free(tg_tape *tape) {
  if (!tape)
    return;
  tg_arena_release(&tape->arena);
  free(tape->nodes);
  free(tape);
}

void tg_tape_reset(tg_tape *tape) {
  if (!tape)
    return;
  /* In anomaly mode no memory of a step is reused, so every stale arena
   * tensor keeps its old generation and is refused by name. */
  if (tape->anomaly)
    tg_arena_retire(&tape->arena);
  else
    tg_arena_reset(&tape->arena);
  tape->n_nodes = 0;
  tape->backwards = 0;
  tape->prof.depth = 0; /* an op that failed left its frame */
  tape->prof.in_rule = 0;
  tape->gen++;
  tape->err.status = TG_OK;
  tape->err.msg[0] = '\0';
}

/* ------------------------------------------------------------------------
 * Status and modes */

tg_status tg_tape_status(const tg_tape *tape) { return tape ? tape->err.status : TG_ERR_NULL; }

const char *tg_tape_error(const tg_tape *tape) { return tape ? tape->err.msg : "tape is NULL"; }

/* The one formatter of tape errors: "who (op #k): message", k the position
 * the next op would take, with the op whose backward rule is running when
 * there is one. The message goes through tg_error_set like every other
 * error; the first one wins. */
static tg_status tape_vfail(tg_tape *tape, tg_status status, const char *who, const char *fmt,
                            va_list ap) {
  if (!tape || tape->err.status != TG_OK)
    return status;
  char msg[TG_MSG_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (tape->bw_op)
    return tg_error_set(&tape->err, status, "%s (op #%lld, in the backward of op #%lld (%s)): %s",
                        who, (long long)tape->n_nodes, (long long)tape->bw_node, tape->bw_op->name,
                        msg);
  return tg_error_set(&tape->err, status, "%s (op #%lld): %s", who, (long long)tape->n_nodes, msg);
}

tg_status tg_tape_fail(tg_tape *tape, tg_status status, const char *who, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tape_vfail(tape, status, who, fmt, ap);
  va_end(ap);
  return status;
}

static int swap_flag(int *flag, int on) {
  int old = *flag;
  *flag = on != 0;
  return old;
}

/* A NULL tape (tape.h's policy): setters change nothing and report 0. */
int tg_tape_set_grad(tg_tape *tape, int on) {
  return tape ? swap_flag(&tape->grad_enabled, on) : 0;
}
int tg_tape_grad_enabled(const tg_tape *tape) { return tape ? tape->grad_enabled : 0; }
int tg_tape_set_train(tg_tape *tape, int on) { return tape ? swap_flag(&tape->training, on) : 0; }
int tg_tape_training(const tg_tape *tape) { return tape ? tape->training : 0; }
int tg_tape_set_anomaly(tg_tape *tape, int on) { return tape ? swap_flag(&tape->anomaly, on) : 0; }
tg_rng *tg_tape_rng(tg_tape *tape) { return tape ? &tape->rng : NULL; }

int tg_tape_holds(const tg_tape *tape, const tg_tensor *t) {
  return tape && t && ((t->flags & TG_OWNED) || (t->tape == tape && t->gen == tape->gen));
}
void tg_tape_seed(tg_tape *tape, uint64_t seed) {
  if (tape)
    tg_rng_seed(&tape->rng, seed);
}

/* ------------------------------------------------------------------------
 * Arena tensors: header and data in one allocation */

#define HEADER_BYTES ((sizeof(tg_tensor) + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN)

static tg_tensor *header_new(tg_tape *tape, const int64_t *shape, int ndim, int64_t numel,
                             size_t data_bytes) {
  char *p = tg_arena_alloc(&tape->arena, HEADER_BYTES + data_bytes);
  if (!p) {
    char buf[160];
    tg_tape_fail(tape, TG_ERR_MEMORY, "arena", "out of memory for a tensor of shape %s",
                 tg_shape_str(shape, ndim, buf, sizeof buf));
    return NULL;
  }
  tg_tensor *t = (tg_tensor *)p;
  memset(t, 0, sizeof *t);
  t->data = data_bytes ? (tg_real *)(p + HEADER_BYTES) : NULL;
  for (int i = 0; i < TG_MAX_DIMS; i++)
    t->shape[i] = i < ndim ? shape[i] : 1;
  t->ndim = ndim;
  t->numel = numel;
  t->node = -1;
  t->gen = tape->gen;
  t->tape = tape;
  return t;
}

tg_tensor *tg_empty(tg_tape *tape, const int64_t *shape, int ndim) {
  if (!tape || tape->err.status != TG_OK)
    return NULL;
  int64_t numel;
  if (tg_shape_check(shape, ndim, &numel, "empty", &tape->err) != TG_OK)
    return NULL;
  return header_new(tape, shape, ndim, numel, (size_t)numel * sizeof(tg_real));
}

tg_tensor *tg_full(tg_tape *tape, const int64_t *shape, int ndim, tg_real v) {
  tg_tensor *t = tg_empty(tape, shape, ndim);
  if (t)
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = v;
  return t;
}

tg_tensor *tg_zeros(tg_tape *tape, const int64_t *shape, int ndim) {
  tg_tensor *t = tg_empty(tape, shape, ndim);
  if (t)
    memset(t->data, 0, (size_t)t->numel * sizeof(tg_real));
  return t;
}

tg_tensor *tg_scalar(tg_tape *tape, tg_real v) { return tg_full(tape, NULL, 0, v); }

tg_tensor *tg_from_values(tg_tape *tape, const int64_t *shape, int ndim, const double *values) {
  if (tape && tape->err.status == TG_OK && !values) {
    tg_tape_fail(tape, TG_ERR_NULL, "from_values", "values is NULL");
    return NULL;
  }
  tg_tensor *t = tg_empty(tape, shape, ndim);
  if (t)
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = (tg_real)values[i];
  return t;
}

tg_tensor *tg_requires_grad(tg_tape *tape, tg_tensor *t) {
  if (!tape || tape->err.status != TG_OK || !t)
    return NULL;
  if (t->node >= 0) {
    tg_tape_fail(tape, TG_ERR_GRAD, "requires_grad",
                 "tensor %s is the output of op #%d, not a leaf", TG_SHAPE(t), t->node);
    return NULL;
  }
  t->flags |= TG_REQUIRES_GRAD;
  return t;
}

tg_tensor *tg_view(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim) {
  tg_tensor *t = header_new(tape, shape, ndim, x->numel, 0);
  if (t) {
    t->data = x->data;
    t->flags = TG_VIEW;
  }
  return t;
}

/* ------------------------------------------------------------------------
 * Recording */

int tg_op_begin(tg_tape *tape, const tg_op *op, int n, tg_tensor *const *in) {
  if (!tape || tape->err.status != TG_OK)
    return 0;
  /* A composite's name may front any number of inputs; an op's count is
   * its descriptor's. */
  if (n < 0 || (!(op->flags & TG_COMPOSITE) && n > op->n_in)) {
    tg_op_fail(tape, op, TG_ERR_ARG, "given %d inputs, but its descriptor declares %d", n,
               op->n_in);
    return 0;
  }
  for (int i = 0; i < n; i++) {
    const tg_tensor *t = in[i];
    if (!t) {
      tg_op_fail(tape, op, TG_ERR_NULL, "input %d is NULL", i);
      return 0;
    }
    if (!(t->flags & TG_OWNED) && t->tape != tape) {
      tg_op_fail(tape, op, TG_ERR_ARG, "input %d %s belongs to another tape", i, TG_SHAPE(t));
      return 0;
    }
    if (!(t->flags & TG_OWNED) && t->gen != tape->gen) {
      tg_op_fail(tape, op, TG_ERR_ARG,
                 "input %d %s is from an earlier step (the tape was reset since)", i, TG_SHAPE(t));
      return 0;
    }
  }
  if (__builtin_expect(tape->profiling, 0))
    tg_prof_begin(tape, op);
  return 1;
}

tg_tensor *tg_op_fail(tg_tape *tape, const tg_op *op, tg_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tape_vfail(tape, status, op->name, fmt, ap);
  va_end(ap);
  return NULL;
}

/* tg_parallel_for's hand-out. The chunks are cut into one contiguous
 * block per thread, each with its own counter on its own cache line.
 * A thread takes its own block's chunks from the front, in order, then
 * helps with the others' blocks the same way: when another process
 * deschedules a thread, the rest take its chunks instead of waiting for
 * it. One shared counter (OpenMP's dynamic schedule) did that too, but
 * interleaved the threads chunk by chunk, and neighbouring chunks on two
 * cores fight over cache lines and defeat the prefetchers: a 57600x25x30
 * product ran no faster on two threads than on one. */
enum { PAR_BLOCKS = 64 };

typedef struct par_block {
  _Alignas(64) int64_t next; /* the block's next chunk, taken by atomic add */
  int64_t end;               /* one past its last chunk */
} par_block;

static void run_chunk(int64_t c, int64_t n, int64_t grain, tg_range_fn fn, void *ctx) {
  fn(ctx, c * grain, c * grain + grain < n ? c * grain + grain : n);
}

/* tg_set_threads's count; 0: OpenMP's default. */
static int threads_set;

tg_status tg_set_threads(int n) {
  if (n < 0)
    return TG_ERR_ARG;
  __atomic_store_n(&threads_set, n, __ATOMIC_RELAXED);
  return TG_OK;
}

int tg_threads(void) {
  const int n = __atomic_load_n(&threads_set, __ATOMIC_RELAXED);
  return n > 0 ? n : omp_get_max_threads();
}

/* A busy machine. When another process holds a core, a thread of ours
 * may not run for a whole time slice (milliseconds), and the region
 * waits for it at its end: for the chunk it took, or only for its
 * arrival. So the calling thread times its own share of each region:
 * when it then waited more than 200 µs for the others, and the region
 * took more than 1.5 times what this thread's pace would have taken for
 * all of its chunks, the threads did not run side by side. That is the
 * machine's state, not the loop's: every parallel loop then runs on the
 * calling thread alone for 5 ms (and at least the next 4 loops, however
 * slowly they come: under valgrind), and tries the threads again after;
 * a stall soon after (within 4 periods' lengths) doubles the period, up
 * to a second, so a machine that stays busy costs one stalled region a
 * second. (Resetting the length at the first region that ran well kept
 * a steady competitor's cost high: SimpleConvNet at 2.3x.) The chunks are
 * the same either way, so results do not change. */
#define PAR_SERIAL_MIN_NS 5000000LL    /* 5 ms */
#define PAR_SERIAL_MAX_NS 1000000000LL /* 1 s */
#define PAR_WAITED_NS     200000LL     /* 200 µs */
#define PAR_SERIAL_CALLS  4            /* the period lasts at least this many loops too */

static int64_t par_serial_until; /* monotonic ns: one thread until then */
static int64_t par_serial_for;   /* the last such period's length; 0: none */
static int par_serial_calls;     /* and for at least this many more loops */
static int par_adaptive = 1;     /* tg_set_threads_adaptive */

static int64_t wall_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

void tg_set_threads_adaptive(int on) {
  __atomic_store_n(&par_adaptive, on != 0, __ATOMIC_RELAXED);
  __atomic_store_n(&par_serial_until, 0, __ATOMIC_RELAXED); /* a fresh start either way */
  __atomic_store_n(&par_serial_for, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&par_serial_calls, 0, __ATOMIC_RELAXED);
}

void tg_parallel_for(int64_t n, int64_t grain, int64_t work, tg_range_fn fn, void *ctx) {
  if (n <= 0)
    return;
  if (work < TG_PAR_MIN) {
    fn(ctx, 0, n);
    return;
  }
  if (grain < 1)
    grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  const int nth = omp_in_parallel() ? 1 : tg_threads();
  const int adaptive = __atomic_load_n(&par_adaptive, __ATOMIC_RELAXED);
  const int64_t t0 = wall_ns();
  if (chunks < 2 || nth < 2 ||
      (adaptive && ((__atomic_load_n(&par_serial_calls, __ATOMIC_RELAXED) > 0 &&
                     __atomic_fetch_sub(&par_serial_calls, 1, __ATOMIC_RELAXED) > 0) ||
                    t0 < __atomic_load_n(&par_serial_until, __ATOMIC_RELAXED)))) {
    for (int64_t c = 0; c < chunks; c++)
      run_chunk(c, n, grain, fn, ctx);
    return;
  }
  const int nb = (int)(chunks < nth ? chunks : nth < PAR_BLOCKS ? nth : PAR_BLOCKS);
  par_block blocks[PAR_BLOCKS];
  for (int b = 0; b < nb; b++) {
    blocks[b].next = chunks * b / nb;
    blocks[b].end = chunks * (b + 1) / nb;
  }
  int64_t mine = 0; /* chunks this thread ran, and when it had no more */
  int64_t done = 0;
#pragma omp parallel num_threads(nb)
  {
    const int me = omp_get_thread_num();
    int64_t ran = 0;
    for (int v = 0; v < nb; v++) {
      par_block *blk = &blocks[(me + v) % nb];
      for (int64_t c; (c = __atomic_fetch_add(&blk->next, 1, __ATOMIC_RELAXED)) < blk->end; ran++)
        run_chunk(c, n, grain, fn, ctx);
    }
    if (me == 0)
      mine = ran, done = wall_ns();
  }
  if (mine == 0 || !adaptive)
    return; /* (mine == 0: the others ran every chunk, no pace to compare) */
  const int64_t end = wall_ns();
  const double alone = (double)(done - t0) * (double)chunks / (double)mine;
  if (end - done > PAR_WAITED_NS && (double)(end - t0) > 1.5 * alone) {
    /* A stall soon after the last serial period (within 4 of its
     * lengths): the machine is still busy, twice as long this time. */
    const int64_t last = __atomic_load_n(&par_serial_until, __ATOMIC_RELAXED);
    int64_t len = __atomic_load_n(&par_serial_for, __ATOMIC_RELAXED);
    len = len == 0 || end - last > 4 * len ? PAR_SERIAL_MIN_NS
          : 2 * len < PAR_SERIAL_MAX_NS    ? 2 * len
                                           : PAR_SERIAL_MAX_NS;
    __atomic_store_n(&par_serial_for, len, __ATOMIC_RELAXED);
    __atomic_store_n(&par_serial_until, end + len, __ATOMIC_RELAXED);
    __atomic_store_n(&par_serial_calls, PAR_SERIAL_CALLS, __ATOMIC_RELAXED);
  }
}

typedef struct finite_ctx {
  const tg_real *x;
  int bad; /* set by any chunk that finds NaN or Inf */
} finite_ctx;

static void finite_chunk(void *arg, int64_t lo, int64_t hi) {
  finite_ctx *c = arg;
  int bad = 0;
  for (int64_t i = lo; i < hi; i++)
    bad |= !isfinite(c->x[i]);
  if (bad) {
#pragma omp atomic write
    c->bad = 1;
  }
}

int tg_all_finite(const tg_real *x, int64_t n) {
  finite_ctx c = {x, 0};
  tg_parallel_for(n, TG_GRAIN, n, finite_chunk, &c);
  return !c.bad;
}

/* FNV-1a over the bytes of t's data: anomaly mode's witness that what an
 * op saved is what its backward reads. */
uint64_t tg_checksum(const tg_tensor *t) {
  const unsigned char *p = (const unsigned char *)t->data;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < (size_t)t->numel * sizeof(tg_real); i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

static int grow_nodes(tg_tape *tape) {
  int64_t cap = tape->cap_nodes ? 2 * tape->cap_nodes : 1024;
  tg_node *p = realloc(tape->nodes, (size_t)cap * sizeof *p);
  if (!p)
    return 0;
  tape->nodes = p;
  tape->cap_nodes = cap;
  tape->node_allocs++;
  return 1;
}

tg_tensor *tg_op_record(tg_tape *tape, const tg_op *op, tg_tensor *out, int n, tg_tensor *const *in,
                        const int64_t *attr, int n_attr) {
  if (!out)
    return NULL;
  /* A wrong count here is a bug in the op, which must not pass silently:
   * an input beyond n_in would get no gradient, an attribute beyond
   * TG_MAX_ATTRS would write past the node. */
  if (n < 0 || n > op->n_in || op->n_in > TG_MAX_INPUTS || (op->flags & TG_COMPOSITE))
    return tg_op_fail(tape, op, TG_ERR_ARG,
                      "recorded with %d inputs, but its descriptor declares %d (at most %d)", n,
                      op->n_in, TG_MAX_INPUTS);
  if (n_attr < 0 || n_attr > TG_MAX_ATTRS)
    return tg_op_fail(tape, op, TG_ERR_ARG, "recorded with %d attributes (at most %d)", n_attr,
                      TG_MAX_ATTRS);
  if (__builtin_expect(tape->profiling, 0))
    tg_prof_record(tape, op, out, n, in);
  if (tape->anomaly && !tg_all_finite(out->data, out->numel))
    return tg_op_fail(tape, op, TG_ERR_ANOMALY, "output %s has NaN or Inf", TG_SHAPE(out));
  if (tape->deciding && (op->flags & TG_KINKED)) { /* gradcheck's kink detection (op.h) */
    uint64_t d = ((const tg_kinked_op *)op)->decide(tape, n, in, out, attr);
    tape->decisions = tg_hash_bytes(tape->decisions, &d, sizeof d);
  }
  if (!tape->grad_enabled)
    return out;
  int needs = 0;
  for (int i = 0; i < n; i++)
    needs |= (in[i]->flags & TG_REQUIRES_GRAD) && !(op->flags & TG_ZEROGRAD(i));
  if (!needs || !op->backward)
    return out;
  if (tape->n_nodes == tape->cap_nodes && !grow_nodes(tape))
    return tg_op_fail(tape, op, TG_ERR_MEMORY, "out of memory for the tape");
  tg_node *node = &tape->nodes[tape->n_nodes];
  node->op = op;
  node->n_in = n;
  for (int i = 0; i < TG_MAX_INPUTS; i++)
    node->in[i] = i < n ? in[i] : NULL;
  node->out = out;
  for (int i = 0; i < n_attr; i++)
    node->attr[i] = attr[i];
  for (int i = 0; i < n; i++)
    node->version[i] = in[i]->version;
  node->version[n] = out->version;
  if (tape->anomaly)
    for (int i = 0; i <= n; i++)
      node->checksum[i] = tg_checksum(i < n ? in[i] : out);
  out->node = (int32_t)tape->n_nodes++;
  out->flags |= TG_REQUIRES_GRAD;
  return out;
}

/* ------------------------------------------------------------------------
 * Inspection */

tg_tape_stats tg_tape_get_stats(const tg_tape *tape) {
  if (!tape)
    return (tg_tape_stats){0};
  return (tg_tape_stats){tape->n_nodes,
                         tape->arena.in_use,
                         tape->arena.peak,
                         tape->arena.capacity,
                         tape->arena.sys_allocs + tape->node_allocs,
                         tape->backwards};
}

tg_tape_mark tg_tape_get_mark(const tg_tape *tape) {
  if (!tape)
    return (tg_tape_mark){0};
  tg_arena_mark a = tg_arena_get_mark(&tape->arena);
  return (tg_tape_mark){tape->n_nodes, a.block, a.used, a.in_use};
}

void tg_tape_rewind(tg_tape *tape, tg_tape_mark m) {
  if (!tape)
    return;
  tape->n_nodes = m.nodes;
  tg_arena_rewind(&tape->arena, (tg_arena_mark){m.block, m.used, m.in_use});
}

static void dot_tensor(FILE *f, const tg_tensor *t) {
  fprintf(f, "  t%p [shape=box,label=\"%s\\n%s\"];\n", (const void *)t,
          t->name ? t->name : (t->flags & TG_REQUIRES_GRAD ? "leaf" : "const"), TG_SHAPE(t));
}

tg_status tg_tape_write_dot(const tg_tape *tape, FILE *f) {
  if (!tape || !f)
    return TG_ERR_NULL;
  fprintf(f, "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
  for (int64_t i = 0; i < tape->n_nodes; i++) {
    const tg_node *n = &tape->nodes[i];
    fprintf(f, "  n%lld [label=\"#%lld %s\\n%s\"];\n", (long long)i, (long long)i, n->op->name,
            TG_SHAPE(n->out));
    for (int k = 0; k < n->n_in; k++) {
      const tg_tensor *t = n->in[k];
      if (t->node >= 0) {
        fprintf(f, "  n%d -> n%lld [label=\"%d\"];\n", t->node, (long long)i, k);
      } else {
        dot_tensor(f, t);
        fprintf(f, "  t%p -> n%lld [label=\"%d\"%s];\n", (const void *)t, (long long)i, k,
                n->op->flags & (TG_NONDIFF(k) | TG_ZEROGRAD(k)) ? ",style=dashed" : "");
      }
    }
  }
  fprintf(f, "}\n");
  return ferror(f) ? TG_ERR_IO : TG_OK;
}
