/* reduce.c — reductions over a set of axes (sum, mean, max), the constant
 * max mask and argmax, and sum_to, the adjoint of broadcasting.
 *
 * Every reduction runs through one plan: x's axes are normalised to a bit
 * mask, size-1 axes are dropped and neighbouring axes of the same kind
 * (kept or reduced) merged, so any axis set becomes a few blocks. Two
 * layouts then cover everything: the innermost block is reduced (rows:
 * "the last axis", "all axes") or kept (columns: "the first axis", the
 * bias gradient). The arithmetic of each output is fixed by the shape
 * alone: the reduced elements are cut into chunks of CHUNK elements (or
 * rows), each chunk is summed in double, and chunk results are added in
 * order. Threads (tg_parallel_for) only decide who computes which chunk,
 * so results are bit-identical for every thread count. Code here must not
 * make the arithmetic depend on the thread count, must not allocate from the system
 * (scratch comes from the tape's arena) and must not record the constant
 * ops (max_mask, argmax).
 */
#include <omp.h>
#include <string.h>

#include "composite.h"
#include "op.h"
#include "ops.h"
#include "ops_internal.h"
#include "reduce_internal.h"

/* Reduced elements per chunk (case A) or rows times row length per chunk
 * (case B). Part of the arithmetic: changing it changes the last bits. */
#define CHUNK 8192
/* Columns handled by one task in case B: its accumulators live on the stack. */
#define IBLOCK 256

/* The attribute of sum, mean, max and max_scatter: the reduced axes as a
 * bit mask over x's axes. */
enum { RED_AXES, RED_NATTR };

/* ------------------------------------------------------------------------
 * Axes */

static char *axes_str(const int *axes, int naxes, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < naxes && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", axes[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
  return buf;
}

/* Normalises axes into a bit mask over x's axes (naxes == 0: all of them).
 * Returns 0 after failing the tape on a bad list. */
static int axes_mask(tg_tape *tape, const tg_op *op, const tg_tensor *x, const int *axes, int naxes,
                     unsigned *mask) {
  char ab[96];
  if (naxes < 0) {
    tg_op_fail(tape, op, TG_ERR_ARG, "naxes is %d (must be >= 0) for shape %s", naxes, TG_SHAPE(x));
    return 0;
  }
  if (naxes > 0 && !axes) {
    tg_op_fail(tape, op, TG_ERR_NULL, "axes is NULL with naxes %d for shape %s", naxes,
               TG_SHAPE(x));
    return 0;
  }
  if (naxes == 0) {
    *mask = (1u << x->ndim) - 1;
    return 1;
  }
  unsigned m = 0;
  for (int i = 0; i < naxes; i++) {
    int a = axes[i];
    if (a < -x->ndim || a >= x->ndim) {
      tg_op_fail(tape, op, TG_ERR_SHAPE, "axis %d is out of range for shape %s (axes %s)", a,
                 TG_SHAPE(x), axes_str(axes, naxes, ab, sizeof ab));
      return 0;
    }
    int d = a < 0 ? a + x->ndim : a;
    if (m & (1u << d)) {
      tg_op_fail(tape, op, TG_ERR_SHAPE, "axis %d repeats in axes %s for shape %s", a,
                 axes_str(axes, naxes, ab, sizeof ab), TG_SHAPE(x));
      return 0;
    }
    m |= 1u << d;
  }
  *mask = m;
  return 1;
}

/* The output shape: reduced axes become 1 (keepdims) or disappear. */
static int reduced_shape(const tg_tensor *x, unsigned mask, int keepdims, int64_t *shape) {
  int n = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!(mask & (1u << d)))
      shape[n++] = x->shape[d];
    else if (keepdims)
      shape[n++] = 1;
  }
  return n;
}

/* ------------------------------------------------------------------------
 * The plan: x as kept and reduced blocks */

static void plan_make(const tg_tensor *x, unsigned mask, plan *p) {
  int64_t st[TG_MAX_DIMS], bsize[TG_MAX_DIMS], bstride[TG_MAX_DIMS];
  int bred[TG_MAX_DIMS], nb = 0;
  tg_strides(x->shape, x->ndim, st);
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] == 1)
      continue;
    int r = (mask >> d) & 1;
    if (nb > 0 && bred[nb - 1] == r) {
      bsize[nb - 1] *= x->shape[d];
      bstride[nb - 1] = st[d];
    } else {
      bsize[nb] = x->shape[d];
      bstride[nb] = st[d];
      bred[nb++] = r;
    }
  }
  memset(p, 0, sizeof *p);
  p->numel = x->numel;
  p->inner_reduced = nb > 0 && bred[nb - 1];
  p->inner = nb > 0 ? bsize[nb - 1] : 1;
  int last = nb - 1; /* the inner block is described by `inner` alone */
  for (int b = 0; b < last; b++) {
    if (bred[b]) {
      p->rsize[p->nr] = bsize[b];
      p->rstride[p->nr++] = bstride[b];
    } else {
      p->ksize[p->nk] = bsize[b];
      p->kstride[p->nk++] = bstride[b];
    }
  }
  p->q = 1;
  for (int i = 0; i < p->nr; i++)
    p->q *= p->rsize[i];
  p->units = 1;
  for (int i = 0; i < p->nk; i++)
    p->units *= p->ksize[i];
  if (p->inner_reduced) {
    p->nch = (p->q * p->inner + CHUNK - 1) / CHUNK;
    p->nout = p->units;
  } else {
    p->rows = p->inner >= CHUNK ? 1 : CHUNK / p->inner;
    p->nch = (p->q + p->rows - 1) / p->rows;
    p->nout = p->units * p->inner;
  }
}

/* ------------------------------------------------------------------------
 * Kernels. The chunk functions are the whole arithmetic; they are out of
 * line (their clones are chosen at load time and never inlined), so every
 * caller runs the very same vectorised code. */

/* Sums in SUM_LANES double accumulators. A run adds its element i to
 * lane i % SUM_LANES, in order: the elements of its whole blocks of
 * SUM_LANES into s, those of its last partial block into t (scalar
 * adds: the same array would stall every run's vector adds behind
 * them). A chunk's runs all add into the same s and t, which are added,
 * then their lanes pairwise, once at the chunk's end. The order is
 * written out rather than left to `omp simd reduction`, whose partial
 * sums follow the vector width: so the SSE2, AVX2 and AVX-512 clones of
 * the chunk kernels give the same bits. */
enum { SUM_LANES = 16 };

static inline __attribute__((always_inline)) void sum_run(double *restrict s, double *restrict t,
                                                          const tg_real *restrict x, int64_t n) {
  int64_t i = 0;
  for (; i + SUM_LANES <= n; i += SUM_LANES)
    for (int k = 0; k < SUM_LANES; k++)
      s[k] += x[i + k];
  for (int k = 0; i + k < n; k++)
    t[k] += x[i + k];
}

static inline __attribute__((always_inline)) double sum_lanes(double *restrict s,
                                                              const double *restrict t) {
  for (int k = 0; k < SUM_LANES; k++)
    s[k] += t[k];
  for (int w = SUM_LANES / 2; w > 0; w /= 2)
    for (int k = 0; k < w; k++)
      s[k] += s[k + w];
  return s[0];
}

/* The largest value of a run, vectorised; *nan is set when the run holds
 * a NaN (the value is then meaningless and the caller scans instead). */
static tg_real max_run(const tg_real *restrict x, int64_t n, int *nan) {
  tg_real m = x[0];
  int bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
  for (int64_t i = 0; i < n; i++) {
    m = x[i] > m ? x[i] : m;
    bad |= x[i] != x[i];
  }
  *nan = bad;
  return m;
}

/* Case A: chunk g of output j, whose kept offset is base. x: runs of L. */
TG_KERNEL static double chunk_a(const tg_real *x, const plan *p, int mode, int64_t base, int64_t g,
                                int64_t *arg) {
  int64_t L = p->inner;
  int64_t r = g * CHUNK, end = min64(p->q * L, r + CHUNK);
  double acc = 0, lanes[SUM_LANES] = {0}, tail[SUM_LANES] = {0};
  int64_t at = base + offset_of(r / L, p->nr, p->rsize, p->rstride) + r % L;
  if (mode == RED_MAX)
    acc = x[at];
  *arg = at;
  while (r < end) {
    int64_t l = r % L, n = min64(L - l, end - r);
    int64_t off = base + offset_of(r / L, p->nr, p->rsize, p->rstride) + l;
    if (mode == RED_SUM) {
      sum_run(lanes, tail, x + off, n);
    } else {
      /* The run's maximum first (vectorised); only when it beats the
       * chunk's so far is the run searched for its first occurrence. */
      const tg_real *xp = x + off;
      int nan;
      tg_real m = max_run(xp, n, &nan);
      if (nan || better(m, acc))
        for (int64_t k = 0; k < n; k++)
          if (better(xp[k], acc)) {
            acc = xp[k];
            *arg = off + k;
            if (!nan && xp[k] == m)
              break; /* the first maximum of the run: nothing later beats it */
          }
    }
    r += n;
  }
  return mode == RED_SUM ? sum_lanes(lanes, tail) : acc;
}

/* Case B: chunk g (rows q0..q1) of output row u, columns i0..i0+ni.
 * v: (ni,) sums or maxima; arg: (ni,) flat indices in x (max only). */
TG_KERNEL static void chunk_b(const tg_real *x, const plan *p, int mode, int64_t base, int64_t g,
                              int64_t i0, int64_t ni, double *restrict v, int64_t *restrict arg) {
  int64_t q0 = g * p->rows, q1 = min64(p->q, q0 + p->rows);
  if (mode == RED_SUM) {
    for (int64_t i = 0; i < ni; i++)
      v[i] = 0;
    for (int64_t q = q0; q < q1; q++) {
      const tg_real *restrict row = x + base + offset_of(q, p->nr, p->rsize, p->rstride) + i0;
#pragma omp simd
      for (int64_t i = 0; i < ni; i++)
        v[i] += row[i];
    }
    return;
  }
  int64_t off0 = base + offset_of(q0, p->nr, p->rsize, p->rstride) + i0;
  for (int64_t i = 0; i < ni; i++) {
    v[i] = x[off0 + i];
    arg[i] = off0 + i;
  }
  for (int64_t q = q0 + 1; q < q1; q++) {
    int64_t off = base + offset_of(q, p->nr, p->rsize, p->rstride) + i0;
    for (int64_t i = 0; i < ni; i++)
      if (better(x[off + i], v[i])) {
        v[i] = x[off + i];
        arg[i] = off + i;
      }
  }
}

/* Folds chunk result (v, a) into the running result (acc, arg); the first
 * chunk (g == 0) starts it. The same fold runs on every path. */
static inline void fold(int mode, int64_t g, double v, int64_t a, double *acc, int64_t *arg) {
  if (mode == RED_SUM) {
    *acc = (g == 0 ? 0 : *acc) + v;
  } else if (g == 0 || better(v, *acc)) {
    *acc = v;
    *arg = a;
  }
}

static inline void emit(tg_real *y, int64_t *yarg, int64_t j, double acc, int64_t arg, double div) {
  if (y)
    y[j] = (tg_real)(div != 1 ? acc / div : acc);
  if (yarg)
    yarg[j] = arg;
}

/* Case A, output j computed whole: its chunks in order. */
static inline void whole_a(const tg_real *x, const plan *p, int mode, double div, tg_real *y,
                           int64_t *yarg, int64_t j) {
  int64_t base = offset_of(j, p->nk, p->ksize, p->kstride), arg = 0, a;
  double acc = 0;
  for (int64_t g = 0; g < p->nch; g++) {
    double v = chunk_a(x, p, mode, base, g, &a);
    fold(mode, g, v, a, &acc, &arg);
  }
  emit(y, yarg, j, acc, arg, div);
}

/* Case B, task t (output row u, column block i0..i0+ni) computed whole. */
static inline void whole_b(const tg_real *x, const plan *p, int mode, double div, tg_real *y,
                           int64_t *yarg, int64_t t) {
  int64_t I = p->inner, nib = (I + IBLOCK - 1) / IBLOCK;
  int64_t u = t / nib, i0 = (t % nib) * IBLOCK, ni = min64(IBLOCK, I - i0);
  int64_t base = offset_of(u, p->nk, p->ksize, p->kstride);
  double acc[IBLOCK], v[IBLOCK];  /* (ni,) */
  int64_t arg[IBLOCK], a[IBLOCK]; /* (ni,); sum leaves them unused */
  for (int64_t i = 0; i < ni; i++)
    arg[i] = a[i] = 0;
  for (int64_t g = 0; g < p->nch; g++) {
    chunk_b(x, p, mode, base, g, i0, ni, v, a);
    for (int64_t i = 0; i < ni; i++)
      fold(mode, g, v[i], a[i], &acc[i], &arg[i]);
  }
  for (int64_t i = 0; i < ni; i++)
    emit(y, yarg, u * I + i0 + i, acc[i], arg[i], div);
}

/* Scratch from the arena (it lives until the tape's reset: a few bytes per
 * CHUNK elements reduced). */
static void *scratch(tg_tape *tape, int64_t bytes) {
  int64_t n = (bytes + (int64_t)sizeof(tg_real) - 1) / (int64_t)sizeof(tg_real);
  tg_tensor *t = tg_empty(tape, (int64_t[]){n > 0 ? n : 1}, 1);
  return t ? t->data : NULL;
}

/* One reduction's job for tg_parallel_for; sv, sa: partial results of
 * chunks, (J, nch) in case A and (P, nch, I) in case B. */
typedef struct red_job {
  const tg_real *x;
  const plan *p;
  int mode;
  double div;
  tg_real *y;
  int64_t *yarg;
  double *sv;
  int64_t *sa;
} red_job;

static void whole_a_chunk(void *arg, int64_t lo, int64_t hi) {
  const red_job *r = arg;
  for (int64_t j = lo; j < hi; j++)
    whole_a(r->x, r->p, r->mode, r->div, r->y, r->yarg, j);
}

static void whole_b_chunk(void *arg, int64_t lo, int64_t hi) {
  const red_job *r = arg;
  for (int64_t t = lo; t < hi; t++)
    whole_b(r->x, r->p, r->mode, r->div, r->y, r->yarg, t);
}

/* Case A, task t = (output j, chunk g): its partial result. */
static void part_a_chunk(void *arg, int64_t lo, int64_t hi) {
  const red_job *r = arg;
  const plan *p = r->p;
  for (int64_t t = lo; t < hi; t++)
    r->sv[t] = chunk_a(r->x, p, r->mode, offset_of(t / p->nch, p->nk, p->ksize, p->kstride),
                       t % p->nch, &r->sa[t]);
}

/* Case B, task t = (output row u, chunk g, column block i0): its partials. */
static void part_b_chunk(void *arg, int64_t lo, int64_t hi) {
  const red_job *r = arg;
  const plan *p = r->p;
  const int64_t nch = p->nch, I = p->inner, nib = (I + IBLOCK - 1) / IBLOCK;
  for (int64_t t = lo; t < hi; t++) {
    int64_t u = t / (nch * nib), g = (t / nib) % nch, i0 = (t % nib) * IBLOCK;
    int64_t at = (u * nch + g) * I + i0;
    chunk_b(r->x, p, r->mode, offset_of(u, p->nk, p->ksize, p->kstride), g, i0,
            min64(IBLOCK, I - i0), r->sv + at, r->sa + at);
  }
}

/* Case B, output o: its chunks' partials folded in chunk order. */
static void fold_b_chunk(void *arg, int64_t lo, int64_t hi) {
  const red_job *r = arg;
  const int64_t nch = r->p->nch, I = r->p->inner;
  for (int64_t o = lo; o < hi; o++) {
    int64_t u = o / I, i = o % I, arg = 0;
    double acc = 0;
    for (int64_t g = 0; g < nch; g++)
      fold(r->mode, g, r->sv[(u * nch + g) * I + i], r->sa[(u * nch + g) * I + i], &acc, &arg);
    emit(r->y, r->yarg, o, acc, arg, r->div);
  }
}

/* Runs the plan. y: (nout,) values divided by div, or NULL; yarg: (nout,)
 * flat index in x of each output's first maximum (max only), or NULL.
 * Few outputs with many chunks each are spread over chunks (partial results
 * in scratch, folded in order afterwards), else over outputs; either way
 * each output is the same chunks folded in the same order. Returns 0 when
 * scratch could not be had (the tape has failed). */
static int reduce_run(tg_tape *tape, const tg_real *x, const plan *p, int mode, double div,
                      tg_real *y, int64_t *yarg) {
  const int64_t N = p->numel, nch = p->nch;
  /* Enough tasks to keep every thread busy without splitting outputs. */
  const int split = N >= TG_PAR_MIN && nch > 1;
  const int64_t busy = split ? 4 * (int64_t)tg_threads() : 0;
  red_job r = {x, p, mode, div, y, yarg, NULL, NULL};

  if (tg_reduce_small_ok(p)) {
    tg_reduce_small(p, x, mode, div, y, yarg, NULL, NULL);
    return 1;
  }
  if (p->inner_reduced) {
    int64_t J = p->units;
    if (!split || J >= busy) {
      tg_parallel_for(J, tg_grain_of(N / J), N, whole_a_chunk, &r);
      return 1;
    }
    int64_t nt = J * nch;
    r.sv = scratch(tape, nt * (int64_t)sizeof(double));
    r.sa = scratch(tape, nt * (int64_t)sizeof(int64_t));
    if (!r.sv || !r.sa)
      return 0;
    tg_parallel_for(nt, tg_grain_of(N / nt), N, part_a_chunk, &r);
    for (int64_t j = 0; j < J; j++) {
      double acc = 0;
      int64_t arg = 0;
      for (int64_t g = 0; g < nch; g++)
        fold(mode, g, r.sv[j * nch + g], r.sa[j * nch + g], &acc, &arg);
      emit(y, yarg, j, acc, arg, div);
    }
    return 1;
  }

  int64_t P = p->units, I = p->inner, nib = (I + IBLOCK - 1) / IBLOCK;
  if (!split || P * nib >= busy) {
    tg_parallel_for(P * nib, tg_grain_of(N / (P * nib)), N, whole_b_chunk, &r);
    return 1;
  }
  int64_t nt = P * nch * I;
  r.sv = scratch(tape, nt * (int64_t)sizeof(double));
  r.sa = scratch(tape, nt * (int64_t)sizeof(int64_t));
  if (!r.sv || !r.sa)
    return 0;
  tg_parallel_for(P * nch * nib, tg_grain_of(N / (P * nch * nib)), N, part_b_chunk, &r);
  tg_parallel_for(P * I, tg_grain_of(nch), P * I * nch, fold_b_chunk, &r);
  return 1;
}

/* ------------------------------------------------------------------------
 * sum, mean, max: forward */

static tg_tensor *reduce_op(tg_tape *tape, const tg_op *op, int mode, int mean, tg_tensor *x,
                            const int *axes, int naxes, int keepdims) {
  if (!tg_op_begin(tape, op, 1, &x))
    return NULL;
  unsigned mask;
  if (!axes_mask(tape, op, x, axes, naxes, &mask))
    return NULL;
  int64_t ys[TG_MAX_DIMS];
  int yn = reduced_shape(x, mask, keepdims != 0, ys);
  tg_tensor *y = tg_empty(tape, ys, yn); /* y: kept axes of x */
  if (!y)
    return NULL;
  plan p;
  plan_make(x, mask, &p);
  double div = mean ? (double)(x->numel / y->numel) : 1;
  if (!reduce_run(tape, x->data, &p, mode, div, y->data, NULL))
    return NULL;
  int64_t attr[RED_NATTR];
  attr[RED_AXES] = mask;
  return tg_op_record(tape, op, y, 1, &x, attr, RED_NATTR);
}

/* gy (x's shape with reduced axes dropped or 1) stretched back to x's
 * shape: the backward of every reduction. */
static tg_tensor *expand(tg_tape *tape, const tg_node *n, tg_tensor *gy) {
  const tg_tensor *x = n->in[0];
  unsigned mask = (unsigned)n->attr[RED_AXES];
  int64_t ks[TG_MAX_DIMS]; /* x's shape, reduced axes 1 */
  int kn = reduced_shape(x, mask, 1, ks);
  return tg_broadcast_to(tape, tg_reshape(tape, gy, ks, kn), x->shape, x->ndim);
}

/* ------------------------------------------------------------------------
 * sum: dx = broadcast(dy) */
static void sum_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = expand(tape, n, gy);
}
static const tg_op op_sum = {"sum", 1, 0, sum_backward};

tg_tensor *tg_sum(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  return reduce_op(tape, &op_sum, RED_SUM, 0, x, axes, naxes, keepdims);
}

/* ------------------------------------------------------------------------
 * mean: dx = broadcast(dy / count); the sum divided once, in double */
static void mean_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  double count = (double)(n->in[0]->numel / n->out->numel);
  gx[0] = expand(tape, n, tg_mul_scalar(tape, gy, (tg_real)(1 / count)));
}
static const tg_op op_mean = {"mean", 1, 0, mean_backward};

tg_tensor *tg_mean(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  return reduce_op(tape, &op_mean, RED_SUM, 1, x, axes, naxes, keepdims);
}

/* ------------------------------------------------------------------------
 * max: dx = max_mask(x) * broadcast(dy). The mask is one-hot per group, so
 * the whole gradient goes to the first maximum (row-major order within the
 * group), never split between ties. */
static int mask_axes(unsigned mask, int ndim, int *axes) {
  int n = 0;
  for (int d = 0; d < ndim; d++)
    if (mask & (1u << d))
      axes[n++] = d;
  return n;
}

static void max_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  int axes[TG_MAX_DIMS];
  int na = mask_axes((unsigned)n->attr[RED_AXES], n->in[0]->ndim, axes);
  /* na == 0 only for a scalar x, where "all axes" is the same thing. */
  gx[0] = tg_max_scatter(tape, n->in[0], gy, axes, na);
}
static int64_t *first_max(tg_tape *tape, tg_tensor *x, unsigned mask, int64_t *nout);

/* The decisions of max and max_scatter: where each group's first maximum
 * of x (input 0) is (op.h's tg_kinked_op). */
static uint64_t max_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                           const int64_t *attr) {
  (void)n, (void)out;
  int64_t nout, *idx = first_max(tape, in[0], (unsigned)attr[RED_AXES], &nout);
  return idx ? tg_hash_bytes(0, idx, (size_t)nout * sizeof *idx) : 0;
}
static const tg_kinked_op op_max = {{"max", 1, TG_KINKED, max_backward}, max_decide};

tg_tensor *tg_max(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  return reduce_op(tape, &op_max.op, RED_MAX, 0, x, axes, naxes, keepdims);
}

/* ------------------------------------------------------------------------
 * max_scatter: max's gradient in one pass, a fused op whose composite twin
 * (tg_max_scatter_composite: max_mask, broadcast, mul) is its oracle in
 * tests/test_reduce.c. The composite writes three tensors of x's size and
 * searches every group twice; this one searches once and writes gx once.
 * x only picks the positions, so its gradient is zero (the mask is a
 * constant in the composite too; zero, not "not differentiable", so a
 * double backward through max with x requiring grad runs); dy gets ggx
 * gathered at the first maxima: sum(max_mask(x) * ggx) over the axes, in dy's shape. */

/* The reduced shape dy must have (keepdims or not); 0 after failing. */
static int dy_fits(const tg_tensor *x, unsigned mask, const tg_tensor *dy) {
  int64_t s[2][TG_MAX_DIMS];
  for (int keep = 0; keep < 2; keep++) {
    int n = reduced_shape(x, mask, keep, s[keep]);
    if (n == dy->ndim && (n == 0 || memcmp(s[keep], dy->shape, (size_t)n * sizeof(int64_t)) == 0))
      return 1;
  }
  return 0;
}

static void max_scatter_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  int axes[TG_MAX_DIMS];
  const tg_tensor *dy = n->in[1];
  int na = mask_axes((unsigned)n->attr[RED_AXES], n->in[0]->ndim, axes);
  if (tg_op_needs_grad(n, 1)) {
    tg_tensor *picked = tg_mul(tape, tg_max_mask(tape, n->in[0], axes, na), gy);
    gx[1] = tg_reshape(tape, tg_sum(tape, picked, axes, na, 1), dy->shape, dy->ndim);
  }
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_zeros(tape, n->in[0]->shape, n->in[0]->ndim);
}
static const tg_kinked_op op_max_scatter = {{"max_scatter", 2, TG_KINKED, max_scatter_backward},
                                            max_decide};

tg_tensor *tg_max_scatter(tg_tape *tape, tg_tensor *x, tg_tensor *dy, const int *axes, int naxes) {
  tg_tensor *in[2] = {x, dy};
  if (!tg_op_begin(tape, &op_max_scatter.op, 2, in))
    return NULL;
  unsigned mask;
  if (!axes_mask(tape, &op_max_scatter.op, x, axes, naxes, &mask))
    return NULL;
  if (!dy_fits(x, mask, dy)) {
    char ab[96];
    return tg_op_fail(tape, &op_max_scatter.op, TG_ERR_SHAPE,
                      "dy %s is not x %s reduced over axes %s", TG_SHAPE(dy), TG_SHAPE(x),
                      naxes ? axes_str(axes, naxes, ab, sizeof ab) : "[all]");
  }
  tg_tensor *g = tg_empty(tape, x->shape, x->ndim); /* g: x's shape */
  if (!g)
    return NULL;
  plan p;
  plan_make(x, mask, &p);
  if (tg_reduce_small_ok(&p)) {
    tg_reduce_small(&p, x->data, RED_SCATTER, 1, NULL, NULL, dy->data, g->data);
  } else {
    int64_t nout, *idx = first_max(tape, x, mask, &nout);
    if (!idx)
      return NULL;
    memset(g->data, 0, (size_t)g->numel * sizeof(tg_real));
    for (int64_t j = 0; j < nout; j++)
      g->data[idx[j]] = dy->data[j];
  }
  int64_t attr[RED_NATTR];
  attr[RED_AXES] = mask;
  return tg_op_record(tape, &op_max_scatter.op, g, 2, in, attr, RED_NATTR);
}

tg_tensor *tg_max_scatter_composite(tg_tape *tape, tg_tensor *x, tg_tensor *dy, const int *axes,
                                    int naxes) {
  if (!tg_op_begin(tape, &op_max_scatter.op, 2, (tg_tensor *[]){x, dy}))
    return NULL;
  unsigned mask;
  if (!axes_mask(tape, &op_max_scatter.op, x, axes, naxes, &mask))
    return NULL;
  if (!dy_fits(x, mask, dy))
    return tg_op_fail(tape, &op_max_scatter.op, TG_ERR_SHAPE, "dy %s is not x %s reduced",
                      TG_SHAPE(dy), TG_SHAPE(x));
  int64_t ks[TG_MAX_DIMS]; /* x's shape, reduced axes 1 */
  int kn = reduced_shape(x, mask, 1, ks);
  tg_tensor *wide = tg_broadcast_to(tape, tg_reshape(tape, dy, ks, kn), x->shape, x->ndim);
  return tg_mul(tape, tg_max_mask(tape, x, axes, naxes), wide);
}

/* ------------------------------------------------------------------------
 * max_mask and argmax: constants (no backward, never recorded) */

/* Flat index in x of each group's first maximum: (nout,) from the arena. */
static int64_t *first_max(tg_tape *tape, tg_tensor *x, unsigned mask, int64_t *nout) {
  plan p;
  plan_make(x, mask, &p);
  int64_t *idx = scratch(tape, p.nout * (int64_t)sizeof(int64_t));
  if (!idx || !reduce_run(tape, x->data, &p, RED_MAX, 1, NULL, idx))
    return NULL;
  *nout = p.nout;
  return idx;
}

/* max_mask's and argmax's outputs are their decisions. */
static uint64_t out_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                           const int64_t *attr) {
  (void)tape, (void)n, (void)in, (void)attr;
  return tg_hash_bytes(0, out->data, (size_t)out->numel * sizeof(tg_real));
}

static const tg_kinked_op op_max_mask = {{"max_mask", 1, TG_KINKED, NULL}, out_decide};

tg_tensor *tg_max_mask(tg_tape *tape, tg_tensor *x, const int *axes, int naxes) {
  if (!tg_op_begin(tape, &op_max_mask.op, 1, &x))
    return NULL;
  unsigned mask;
  if (!axes_mask(tape, &op_max_mask.op, x, axes, naxes, &mask))
    return NULL;
  tg_tensor *y = tg_zeros(tape, x->shape, x->ndim); /* y: x's shape */
  int64_t nout, *idx = y ? first_max(tape, x, mask, &nout) : NULL;
  if (!idx)
    return NULL;
  for (int64_t j = 0; j < nout; j++)
    y->data[idx[j]] = 1;
  return tg_op_record(tape, &op_max_mask.op, y, 1, &x, NULL, 0);
}

static const tg_kinked_op op_argmax = {{"argmax", 1, TG_KINKED, NULL}, out_decide};

tg_tensor *tg_argmax(tg_tape *tape, tg_tensor *x, int axis) {
  if (!tg_op_begin(tape, &op_argmax.op, 1, &x))
    return NULL;
  unsigned mask;
  if (!axes_mask(tape, &op_argmax.op, x, &axis, 1, &mask))
    return NULL;
  int d = axis < 0 ? axis + x->ndim : axis;
  int64_t ys[TG_MAX_DIMS], st[TG_MAX_DIMS];
  int yn = reduced_shape(x, mask, 0, ys);
  tg_strides(x->shape, x->ndim, st);
  tg_tensor *y = tg_empty(tape, ys, yn); /* y: x's shape without axis d */
  int64_t nout, *idx = y ? first_max(tape, x, mask, &nout) : NULL;
  if (!idx)
    return NULL;
  for (int64_t j = 0; j < nout; j++)
    y->data[j] = (tg_real)((idx[j] / st[d]) % x->shape[d]);
  return tg_op_record(tape, &op_argmax.op, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * sum_to: a composite (sum with keepdims, then a reshape view), so its
 * gradient, broadcast_to, comes from those two. The descriptor only names
 * it in messages. */
static const tg_op op_sum_to = {"sum_to", 1, TG_COMPOSITE, NULL};

tg_tensor *tg_sum_to(tg_tape *tape, tg_tensor *g, const int64_t *shape, int ndim) {
  if (!tg_op_begin(tape, &op_sum_to, 1, &g))
    return NULL;
  if (ndim < 0 || ndim > TG_MAX_DIMS)
    return tg_op_fail(tape, &op_sum_to, TG_ERR_SHAPE, "%d target dimensions for %s", ndim,
                      TG_SHAPE(g));
  if (ndim > 0 && !shape)
    return tg_op_fail(tape, &op_sum_to, TG_ERR_NULL, "target shape is NULL for %s", TG_SHAPE(g));
  int lead = g->ndim - ndim, ok = lead >= 0;
  for (int i = 0; ok && i < ndim; i++)
    ok = shape[i] == 1 || shape[i] == g->shape[lead + i];
  if (!ok) {
    char sb[160];
    return tg_op_fail(tape, &op_sum_to, TG_ERR_SHAPE,
                      "target shape %s does not broadcast to the gradient's shape %s",
                      tg_shape_str(shape, ndim, sb, sizeof sb), TG_SHAPE(g));
  }
  int axes[TG_MAX_DIMS], naxes = 0, real = 0; /* real: an axis of size > 1 to sum */
  for (int d = 0; d < g->ndim; d++)
    if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) {
      axes[naxes++] = d;
      real |= g->shape[d] != 1;
    }
  if (naxes == 0 && lead == 0)
    return g; /* same shape */
  if (!real)
    return tg_reshape(tape, g, shape, ndim); /* only size-1 axes go */
  return tg_reshape(tape, tg_sum(tape, g, axes, naxes, 1), shape, ndim);
}
