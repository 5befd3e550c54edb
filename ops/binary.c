/* binary.c — broadcasting elementwise ops: add, sub, mul, div, pow,
 * maximum, where (and where_pos, ReLU's fused where), and the comparison
 * masks.
 *
 * Every op here is a loop body plugged into one broadcasting driver. The
 * driver maps the output onto its inputs by NumPy's rules (stride 0 on a
 * broadcast dimension), merges dimensions that walk memory together, and
 * hands contiguous rows to the op's row kernel, whose innermost loop has
 * constant strides (0 or 1) so the compiler vectorises it. The common
 * shapes — equal, one side a scalar, a trailing-row broadcast like a bias
 * (N, M) + (M,) — skip the general planning, which keeps tiny ops cheap.
 *
 * Backward rules are written with ops only (never loops), so recording
 * them gives second derivatives; a broadcast input's gradient is summed
 * back to its shape with tg_sum_to, skipped when no broadcast happened.
 * Nothing here keeps state between calls or knows about any other op family.
 * Adding an op: one section here, its declaration in ops.h, its tests in
 * tests/test_binary.c.
 */
#include <math.h>

#include "composite.h"
#include "op.h"
#include "ops.h"
#include "ops_internal.h"

/* ------------------------------------------------------------------------
 * Broadcast shapes */

/* The broadcast shape of n inputs into shape/ndim; fails the tape naming
 * op and every shape when they do not broadcast. */
static int bc_shape(tg_tape *tape, const tg_op *op, int n, const tg_tensor *const *in,
                    int64_t *shape, int *ndim) {
  int nd = 0;
  for (int k = 0; k < n; k++)
    if (in[k]->ndim > nd)
      nd = in[k]->ndim;
  for (int d = 0; d < nd; d++) {
    int64_t s = 1;
    for (int k = 0; k < n; k++) {
      int j = d - (nd - in[k]->ndim); /* input k's axis aligned with output axis d */
      if (j < 0 || in[k]->shape[j] == 1)
        continue;
      if (s != 1 && s != in[k]->shape[j]) {
        if (n == 2)
          tg_op_fail(tape, op, TG_ERR_SHAPE,
                     "shapes %s and %s do not broadcast (%lld vs %lld at axis %d)", TG_SHAPE(in[0]),
                     TG_SHAPE(in[1]), (long long)s, (long long)in[k]->shape[j], d - nd);
        else
          tg_op_fail(tape, op, TG_ERR_SHAPE,
                     "shapes %s, %s and %s do not broadcast (%lld vs %lld at axis %d)",
                     TG_SHAPE(in[0]), TG_SHAPE(in[1]), TG_SHAPE(in[2]), (long long)s,
                     (long long)in[k]->shape[j], d - nd);
        return TG_ERR_SHAPE;
      }
      s = in[k]->shape[j];
    }
    shape[d] = s;
  }
  *ndim = nd;
  return TG_OK;
}

tg_status tg_broadcast_shape(tg_tape *tape, const char *what, const tg_tensor *a,
                             const tg_tensor *b, int64_t *shape, int *ndim) {
  const tg_op who = {what ? what : "broadcast", 2, 0, NULL};
  if (!tape)
    return TG_ERR_NULL;
  if (!a || !b || !shape || !ndim) {
    const char *which = !a ? "input 0" : !b ? "input 1" : "the result";
    tg_op_fail(tape, &who, TG_ERR_NULL, "%s is NULL", which);
    return TG_ERR_NULL;
  }
  const tg_tensor *in[2] = {a, b};
  return bc_shape(tape, &who, 2, in, shape, ndim);
}

/* ------------------------------------------------------------------------
 * The broadcasting driver */

/* How output elements map to input elements, after merging dimensions:
 * output element at multi-index i reads input k at Σ i[d] * st[k][d]. */
typedef struct bc_plan {
  int64_t oshape[TG_MAX_DIMS]; /* the output's shape, (ondim) */
  int ondim;
  int64_t numel;
  int nd;                     /* merged dimensions, >= 1 */
  int64_t shape[TG_MAX_DIMS]; /* merged output shape, (nd) */
  int64_t st[3][TG_MAX_DIMS]; /* per input, per merged dim; 0 where it broadcasts */
} bc_plan;

/* A row kernel: y[i] = f(in[0][i*st[0]], in[1][i*st[1]], ...) for i < n,
 * each st[k] being 0 or 1. */
typedef void (*bc_rows_fn)(const tg_real *const *in, const int64_t *st, tg_real *restrict y,
                           int64_t n);

static void plan_flat(bc_plan *p, const tg_tensor *like) {
  for (int d = 0; d < like->ndim; d++)
    p->oshape[d] = like->shape[d];
  p->ondim = like->ndim;
  p->numel = like->numel;
  p->nd = 1;
  p->shape[0] = like->numel;
}

/* 1 when small's shape equals big's trailing dimensions (bias-like). */
static int is_trailing(const tg_tensor *small, const tg_tensor *big) {
  if (small->ndim < 1 || small->ndim >= big->ndim)
    return 0;
  for (int j = 0; j < small->ndim; j++)
    if (small->shape[j] != big->shape[big->ndim - small->ndim + j])
      return 0;
  return 1;
}

/* Fills p for inputs in[0..n-1]; 0 after failing the tape. */
static int bc_plan_make(tg_tape *tape, const tg_op *op, int n, tg_tensor *const *in, bc_plan *p) {
  int same = 1;
  for (int k = 1; k < n; k++)
    same = same && tg_shape_eq(in[0], in[k]);
  if (same) {
    plan_flat(p, in[0]);
    for (int k = 0; k < n; k++)
      p->st[k][0] = 1;
    return 1;
  }
  if (n == 2) {
    for (int k = 0; k < 2; k++) {
      const tg_tensor *s = in[k], *o = in[1 - k];
      if (s->numel == 1 && s->ndim <= o->ndim) { /* scalar operand */
        plan_flat(p, o);
        p->st[k][0] = 0;
        p->st[1 - k][0] = 1;
        return 1;
      }
      if (is_trailing(s, o)) { /* (N, M) with (M,): rows of o against s */
        plan_flat(p, o);
        p->nd = 2;
        p->shape[0] = o->numel / s->numel;
        p->shape[1] = s->numel;
        p->st[k][0] = 0;
        p->st[k][1] = 1;
        p->st[1 - k][0] = s->numel;
        p->st[1 - k][1] = 1;
        return 1;
      }
    }
  }

  /* The general case: output shape, aligned strides, then merging. */
  if (bc_shape(tape, op, n, (const tg_tensor *const *)in, p->oshape, &p->ondim) != TG_OK)
    return 0;
  /* Inputs that each fit can still broadcast to a size that does not. */
  tg_error e = {0};
  if (tg_shape_check(p->oshape, p->ondim, &p->numel, "result", &e) != TG_OK) {
    tg_op_fail(tape, op, e.status, "%s", e.msg);
    return 0;
  }
  int nd = p->ondim;
  int64_t st[3][TG_MAX_DIMS]; /* (n, nd): input strides along output axes */
  for (int k = 0; k < n; k++) {
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int j = d - (nd - in[k]->ndim);
      int64_t e = j >= 0 ? in[k]->shape[j] : 1;
      st[k][d] = e == 1 ? 0 : s;
      s *= e;
    }
  }
  /* Drop size-1 axes; merge axis d into the previous kept one when every
   * input steps through both as through one axis. */
  int m = 0;
  for (int d = 0; d < nd; d++) {
    int64_t e = p->oshape[d];
    if (e == 1)
      continue;
    int merge = m > 0;
    for (int k = 0; k < n && merge; k++)
      merge = p->st[k][m - 1] == st[k][d] * e;
    if (merge) {
      p->shape[m - 1] *= e;
      for (int k = 0; k < n; k++)
        p->st[k][m - 1] = st[k][d];
    } else {
      p->shape[m] = e;
      for (int k = 0; k < n; k++)
        p->st[k][m] = st[k][d];
      m++;
    }
  }
  if (m == 0) { /* every axis is 1: a single element */
    p->shape[0] = 1;
    for (int k = 0; k < n; k++)
      p->st[k][0] = 0;
    m = 1;
  }
  p->nd = m;
  return 1;
}

/* Output elements [lo, hi) in row-major order, row piece by row piece. */
static void bc_range(const bc_plan *p, int n, tg_tensor *const *in, tg_real *y, bc_rows_fn f,
                     int64_t lo, int64_t hi) {
  const int last = p->nd - 1;
  const int64_t inner = p->shape[last];
  int64_t idx[TG_MAX_DIMS], off[3] = {0, 0, 0}, ist[3] = {0, 0, 0};
  int64_t rem = lo;
  for (int d = last; d >= 0; d--) {
    idx[d] = rem % p->shape[d];
    rem /= p->shape[d];
  }
  for (int k = 0; k < n; k++) {
    for (int d = 0; d <= last; d++)
      off[k] += idx[d] * p->st[k][d];
    ist[k] = p->st[k][last];
  }
  for (int64_t pos = lo; pos < hi;) {
    int64_t len = inner - idx[last];
    if (len > hi - pos)
      len = hi - pos;
    const tg_real *row[3] = {NULL, NULL, NULL};
    for (int k = 0; k < n; k++)
      row[k] = in[k]->data + off[k];
    f(row, ist, y + pos, len);
    pos += len;
    idx[last] += len;
    if (idx[last] < inner)
      break; /* stopped inside a row: that was the end of the range */
    /* Next row: odometer carry over the outer axes. */
    idx[last] = 0;
    for (int k = 0; k < n; k++)
      off[k] += (len - inner) * ist[k];
    for (int d = last - 1; d >= 0; d--) {
      for (int k = 0; k < n; k++)
        off[k] += p->st[k][d];
      if (++idx[d] < p->shape[d])
        break;
      idx[d] = 0;
      for (int k = 0; k < n; k++)
        off[k] -= p->shape[d] * p->st[k][d];
    }
  }
}

typedef struct bc_job {
  const bc_plan *p;
  int n;
  tg_tensor *const *in;
  tg_real *y;
  bc_rows_fn f;
} bc_job;

static void bc_chunk(void *arg, int64_t lo, int64_t hi) {
  const bc_job *j = arg;
  bc_range(j->p, j->n, j->in, j->y, j->f, lo, hi);
}

/* Large outputs go in fixed chunks of elements (tg_parallel_for), so
 * which thread computes an element never changes what is computed. */
static void bc_run(const bc_plan *p, int n, tg_tensor *const *in, tg_real *y, bc_rows_fn f) {
  int64_t total = p->numel;
  if (total < TG_PAR_MIN && p->nd == 1) { /* the small-tensor path: one call, no odometer */
    const tg_real *row[3] = {in[0]->data, in[1]->data, n > 2 ? in[2]->data : NULL};
    int64_t ist[3] = {p->st[0][0], p->st[1][0], n > 2 ? p->st[2][0] : 0};
    f(row, ist, y, total);
    return;
  }
  tg_parallel_for(total, TG_GRAIN, total, bc_chunk, &(bc_job){p, n, in, y, f});
}

/* Checks, plans, computes and records op over in[0..n-1]. */
static tg_tensor *bc_apply(tg_tape *tape, const tg_op *op, int n, tg_tensor *const *in,
                           bc_rows_fn f) {
  if (!tg_op_begin(tape, op, n, in))
    return NULL;
  bc_plan p;
  if (!bc_plan_make(tape, op, n, in, &p))
    return NULL;
  tg_tensor *y = tg_empty(tape, p.oshape, p.ondim); /* y: broadcast shape */
  if (!y)
    return NULL;
  bc_run(&p, n, in, y->data, f);
  return tg_op_record(tape, op, y, n, in, NULL, 0);
}

/* One loop per stride pattern, the strides compile-time constants, so
 * a stride-0 operand becomes a loop invariant and the loop vectorises. */
#define LOOP2(SA, SB, EXPR)                                                                        \
  for (int64_t i = 0; i < n; i++) {                                                                \
    tg_real u = a[i * (SA)], v = b[i * (SB)];                                                      \
    y[i] = (tg_real)(EXPR);                                                                        \
  }

#define BINARY_LOOPS(EXPR)                                                                         \
  const tg_real *restrict a = in[0], *restrict b = in[1];                                          \
  if (st[0] && st[1]) {                                                                            \
    LOOP2(1, 1, EXPR)                                                                              \
  } else if (st[0]) {                                                                              \
    LOOP2(1, 0, EXPR)                                                                              \
  } else if (st[1]) {                                                                              \
    LOOP2(0, 1, EXPR)                                                                              \
  } else {                                                                                         \
    LOOP2(0, 0, EXPR)                                                                              \
  }

/* Defines name_rows, the row kernel of op `name` computing EXPR(u, v). */
#define BINARY_ROWS(name, EXPR)                                                                    \
  TG_KERNEL static void name##_rows(const tg_real *const *in, const int64_t *st,                   \
                                    tg_real *restrict y, int64_t n) {                              \
    BINARY_LOOPS(EXPR);                                                                            \
  }

/* The forward of a two-input op over its row kernel. */
static tg_tensor *binary(tg_tape *tape, const tg_op *op, bc_rows_fn rows, tg_tensor *a,
                         tg_tensor *b) {
  tg_tensor *in[2] = {a, b};
  return bc_apply(tape, op, 2, in, rows);
}

/* g summed down to x's shape: the adjoint of broadcasting x. Nothing to
 * do (and no op recorded) when x was not broadcast. */
static tg_tensor *reduce_to(tg_tape *tape, tg_tensor *g, const tg_tensor *x) {
  if (!g || tg_shape_eq(g, x))
    return g;
  return tg_sum_to(tape, g, x->shape, x->ndim);
}

/* ------------------------------------------------------------------------
 * add: da = dy, db = dy */
static void add_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  for (int i = 0; i < 2; i++)
    if (tg_op_needs_grad(n, i))
      gx[i] = reduce_to(tape, gy, n->in[i]);
}
static const tg_op op_add = {"add", 2, 0, add_backward};
BINARY_ROWS(add, u + v)
tg_tensor *tg_add(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_add, add_rows, a, b);
}

/* ------------------------------------------------------------------------
 * sub: da = dy, db = -dy (negated after the reduction: fewer elements) */
static void sub_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  if (tg_op_needs_grad(n, 0))
    gx[0] = reduce_to(tape, gy, n->in[0]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_neg(tape, reduce_to(tape, gy, n->in[1]));
}
static const tg_op op_sub = {"sub", 2, 0, sub_backward};
BINARY_ROWS(sub, u - v)
tg_tensor *tg_sub(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_sub, sub_rows, a, b);
}

/* ------------------------------------------------------------------------
 * mul: da = dy * b, db = dy * a */
static void mul_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = reduce_to(tape, tg_mul(tape, gy, b), a);
  if (tg_op_needs_grad(n, 1))
    gx[1] = reduce_to(tape, tg_mul(tape, gy, a), b);
}
static const tg_op op_mul = {"mul", 2, 0, mul_backward};
BINARY_ROWS(mul, (u) * (v))
tg_tensor *tg_mul(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_mul, mul_rows, a, b);
}

/* ------------------------------------------------------------------------
 * div: da = dy / b, db = -dy a / b² = -(dy / b) y, so both share dy / b */
static void div_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1];
  tg_tensor *q = tg_div(tape, gy, b); /* q: broadcast shape */
  if (tg_op_needs_grad(n, 0))
    gx[0] = reduce_to(tape, q, a);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_neg(tape, reduce_to(tape, tg_mul(tape, q, n->out), b));
}
static const tg_op op_div = {"div", 2, 0, div_backward};
BINARY_ROWS(div, u / v)
tg_tensor *tg_div(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_div, div_rows, a, b);
}

/* ------------------------------------------------------------------------
 * pow: da = dy b a^(b-1), db = dy y ln a (a > 0 wherever db is needed).
 * A scalar exponent 2 (squares: losses, variances) is computed as u*u,
 * exact and far cheaper than pow. */
static void pow_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1];
  if (tg_op_needs_grad(n, 0)) {
    tg_tensor *d = tg_mul(tape, b, tg_pow(tape, a, tg_add_scalar(tape, b, -1)));
    gx[0] = reduce_to(tape, tg_mul(tape, gy, d), a);
  }
  if (tg_op_needs_grad(n, 1))
    gx[1] = reduce_to(tape, tg_mul(tape, tg_mul(tape, gy, n->out), tg_log(tape, a)), b);
}
static const tg_op op_pow = {"pow", 2, 0, pow_backward};
static void pow_rows(const tg_real *const *in, const int64_t *st, tg_real *restrict y, int64_t n) {
  if (st[1] == 0 && in[1][0] == 2) {
    const tg_real *restrict a = in[0];
    if (st[0])
      for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * a[i];
    else
      for (int64_t i = 0; i < n; i++)
        y[i] = a[0] * a[0];
    return;
  }
  BINARY_LOOPS(F(pow)(u, v))
}
tg_tensor *tg_pow(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_pow, pow_rows, a, b);
}

/* ------------------------------------------------------------------------
 * maximum: the gradient goes to a where a >= b (ties to a), else to b.
 * where() routes it rather than multiplying by the mask, which saves the
 * 1 - mask op and keeps an infinite dy from turning into NaN. A NaN on
 * either side gives NaN (as in NumPy), so it is not silently dropped. */
static void maximum_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1];
  tg_tensor *mask = tg_ge(tape, a, b); /* (broadcast shape), a constant */
  tg_tensor *zero = tg_scalar(tape, 0);
  if (tg_op_needs_grad(n, 0))
    gx[0] = reduce_to(tape, tg_where(tape, mask, gy, zero), a);
  if (tg_op_needs_grad(n, 1))
    gx[1] = reduce_to(tape, tg_where(tape, mask, zero, gy), b);
}
/* Its decisions: a >= b, the mask its rule uses (op.h's tg_kinked_op). */
static uint64_t maximum_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                               const int64_t *attr) {
  (void)n, (void)out, (void)attr;
  tg_tensor *mask = tg_ge(tape, in[0], in[1]);
  return mask ? tg_hash_signs(mask->data, mask->numel, 0) : 0;
}
static const tg_kinked_op op_maximum = {{"maximum", 2, TG_KINKED, maximum_backward},
                                        maximum_decide};
BINARY_ROWS(maximum, u >= v || u != u ? u : v)
tg_tensor *tg_maximum(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_maximum.op, maximum_rows, a, b);
}

/* ------------------------------------------------------------------------
 * where(cond, a, b): da = where(cond, dy, 0), db = where(cond, 0, dy);
 * cond (input 0) is declared non-differentiable, so backward refuses a
 * cond that requires grad instead of silently giving it zero. */
static void where_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *cond = n->in[0];
  tg_tensor *zero = tg_scalar(tape, 0);
  if (tg_op_needs_grad(n, 1))
    gx[1] = reduce_to(tape, tg_where(tape, cond, gy, zero), n->in[1]);
  if (tg_op_needs_grad(n, 2))
    gx[2] = reduce_to(tape, tg_where(tape, cond, zero, gy), n->in[2]);
}
/* Its decisions: which of cond's elements are nonzero (a cond made by a
 * comparison has already been fingerprinted; a constant one never moves). */
static uint64_t where_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                             const int64_t *attr) {
  (void)tape, (void)n, (void)out, (void)attr;
  return tg_hash_signs(in[0]->data, in[0]->numel, 1);
}
static const tg_kinked_op op_where = {{"where", 3, TG_NONDIFF(0) | TG_KINKED, where_backward},
                                      where_decide};

/* Both branches are loaded before the select, so the loop needs no
 * masked loads to vectorise. */
#define WHERE_LOOP(SC, SA, SB)                                                                     \
  for (int64_t i = 0; i < n; i++) {                                                                \
    tg_real u = a[i * (SA)], v = b[i * (SB)];                                                      \
    y[i] = c[i * (SC)] != 0 ? u : v;                                                               \
  }

static void where_rows(const tg_real *const *in, const int64_t *st, tg_real *restrict y,
                       int64_t n) {
  const tg_real *restrict c = in[0], *restrict a = in[1], *restrict b = in[2];
  switch ((st[0] != 0) << 2 | (st[1] != 0) << 1 | (st[2] != 0)) {
  case 7:
    WHERE_LOOP(1, 1, 1);
    break;
  case 6:
    WHERE_LOOP(1, 1, 0);
    break;
  case 5:
    WHERE_LOOP(1, 0, 1);
    break;
  case 4:
    WHERE_LOOP(1, 0, 0);
    break;
  case 3:
    WHERE_LOOP(0, 1, 1);
    break;
  case 2:
    WHERE_LOOP(0, 1, 0);
    break;
  case 1:
    WHERE_LOOP(0, 0, 1);
    break;
  default:
    WHERE_LOOP(0, 0, 0);
    break;
  }
}

tg_tensor *tg_where(tg_tape *tape, tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
  tg_tensor *in[3] = {cond, a, b};
  return bc_apply(tape, &op_where.op, 3, in, where_rows);
}

/* ------------------------------------------------------------------------
 * where_pos(x, a) = a where x > 0, else 0: ReLU's forward (a = x) and its
 * backward (a = dy), one pass each. The composite where(gt(x, 0), a, 0)
 * (tg_where_pos_composite, its oracle) writes a mask and reads it back.
 * x only decides, so its gradient is 0 almost everywhere, as through the
 * composite's comparison (zerograd: none is computed, and relu's x, which
 * is also a, gets only da); da = where_pos(x, dy), so the rule is the op
 * itself and differentiates again. Same shapes only: the layers that use
 * it need no broadcast. */
static void where_pos_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[1] = tg_where_pos(tape, n->in[0], gy);
}
/* Its decisions: x > 0 (x == 0 and x < 0 take the same piece). */
static uint64_t where_pos_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                                 const int64_t *attr) {
  (void)tape, (void)n, (void)out, (void)attr;
  return tg_hash_signs(in[0]->data, in[0]->numel, 0);
}
static const tg_kinked_op op_where_pos = {
    {"where_pos", 2, TG_ZEROGRAD(0) | TG_KINKED, where_pos_backward}, where_pos_decide};

typedef struct where_pos_ctx {
  const tg_real *x, *a;
  tg_real *y;
} where_pos_ctx;

TG_KERNEL static void where_pos_chunk(void *arg, int64_t lo, int64_t hi) {
  const where_pos_ctx *c = arg;
  const tg_real *restrict x = c->x, *restrict a = c->a;
  tg_real *restrict y = c->y;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    tg_real v = a[i];
    y[i] = x[i] > 0 ? v : 0;
  }
}

tg_tensor *tg_where_pos(tg_tape *tape, tg_tensor *x, tg_tensor *a) {
  tg_tensor *in[2] = {x, a};
  if (!tg_op_begin(tape, &op_where_pos.op, 2, in))
    return NULL;
  if (!tg_shape_eq(x, a))
    return tg_op_fail(tape, &op_where_pos.op, TG_ERR_SHAPE,
                      "x %s and a %s must have the same shape", TG_SHAPE(x), TG_SHAPE(a));
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim);
  if (!y)
    return NULL;
  tg_parallel_for(x->numel, TG_GRAIN, x->numel, where_pos_chunk,
                  &(where_pos_ctx){x->data, a->data, y->data});
  return tg_op_record(tape, &op_where_pos.op, y, 2, in, NULL, 0);
}

tg_tensor *tg_where_pos_composite(tg_tape *tape, tg_tensor *x, tg_tensor *a) {
  tg_tensor *zero = tg_scalar(tape, 0);
  return tg_where(tape, tg_gt(tape, x, zero), a, zero);
}

/* ------------------------------------------------------------------------
 * Comparisons: constant 1/0 masks. Their descriptors have no backward
 * rule, so tg_op_record never records them and their outputs never
 * require grad, whatever their inputs do. */
static uint64_t compare_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                               const int64_t *attr) {
  (void)tape, (void)n, (void)in, (void)attr;
  return tg_hash_signs(out->data, out->numel, 0); /* the mask is the decision */
}
#define COMPARE_FLAGS (TG_NONDIFF(0) | TG_NONDIFF(1) | TG_KINKED)
static const tg_kinked_op op_gt = {{"gt", 2, COMPARE_FLAGS, NULL}, compare_decide};
static const tg_kinked_op op_ge = {{"ge", 2, COMPARE_FLAGS, NULL}, compare_decide};
static const tg_kinked_op op_lt = {{"lt", 2, COMPARE_FLAGS, NULL}, compare_decide};
static const tg_kinked_op op_le = {{"le", 2, COMPARE_FLAGS, NULL}, compare_decide};
static const tg_kinked_op op_eq = {{"eq", 2, COMPARE_FLAGS, NULL}, compare_decide};
BINARY_ROWS(gt, u > v)
tg_tensor *tg_gt(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_gt.op, gt_rows, a, b);
}
BINARY_ROWS(ge, u >= v)
tg_tensor *tg_ge(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_ge.op, ge_rows, a, b);
}
BINARY_ROWS(lt, u < v)
tg_tensor *tg_lt(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_lt.op, lt_rows, a, b);
}
BINARY_ROWS(le, u <= v)
tg_tensor *tg_le(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_le.op, le_rows, a, b);
}
BINARY_ROWS(eq, u == v)
tg_tensor *tg_eq(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  return binary(tape, &op_eq.op, eq_rows, a, b);
}

/* ------------------------------------------------------------------------
 * Scalar conveniences: the scalar is a constant leaf, so only x's
 * gradient is ever taken, and the scalar fast path of the driver runs. */
tg_tensor *tg_add_scalar(tg_tape *tape, tg_tensor *x, tg_real s) {
  return tg_add(tape, x, tg_scalar(tape, s));
}

tg_tensor *tg_mul_scalar(tg_tape *tape, tg_tensor *x, tg_real s) {
  return tg_mul(tape, x, tg_scalar(tape, s));
}

tg_tensor *tg_pow_scalar(tg_tape *tape, tg_tensor *x, tg_real p) {
  return tg_pow(tape, x, tg_scalar(tape, p));
}
