/* index.c — ops that assemble or pick along one axis: concat and stack,
 * index_select (the embedding lookup) and its adjoint index_add (the
 * scatter-add of index_select's gradient).
 *
 * Kernels are runs of memcpy (or a plain add loop for index_add) over the
 * (outer, axis, inner) view of a tensor, parallel over independent runs
 * above TG_PAR_MIN elements. Backward rules are the adjoint ops, written
 * with ops: concat's is slice (and reshape, for stack), index_select's is
 * index_add and index_add's is index_select, so second derivatives work.
 * Nothing here computes on values beyond index_add's sums, or keeps state
 * between calls.
 *
 * A node holds at most TG_MAX_INPUTS inputs, so concat of more tensors is
 * a tree of primitive concats (each level copies every element once).
 */
#include <math.h>
#include <string.h>

#include "op.h"
#include "ops.h"

/* Node attributes of concat (and stack). */
enum { CAT_AXIS, CAT_STACK, CAT_NATTR };
/* Node attributes of index_select and index_add. */
enum { IX_AXIS, IX_NATTR };

/* Product of shape[lo..hi-1]. */
static int64_t prod(const int64_t *shape, int lo, int hi) {
  int64_t p = 1;
  for (int d = lo; d < hi; d++)
    p *= shape[d];
  return p;
}

/* ------------------------------------------------------------------------
 * concat / stack: dx_i = slice of dy along the axis (reshaped back to x_i
 * for stack). One descriptor per input count, all named "concat": the
 * engine walks n_in inputs of a node. */
static void concat_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const int axis = (int)n->attr[CAT_AXIS], stack = (int)n->attr[CAT_STACK];
  int64_t start[TG_MAX_DIMS] = {0}, stop[TG_MAX_DIMS];
  for (int d = 0; d < gy->ndim; d++)
    stop[d] = gy->shape[d];
  int64_t off = 0;
  for (int i = 0; i < n->op->n_in; i++) {
    const tg_tensor *x = n->in[i];
    int64_t len = stack ? 1 : x->shape[axis];
    if (tg_op_needs_grad(n, i)) {
      start[axis] = off;
      stop[axis] = off + len;
      tg_tensor *g = tg_slice(tape, gy, start, stop);
      gx[i] = stack ? tg_reshape(tape, g, x->shape, x->ndim) : g;
    }
    off += len;
  }
}
static const tg_op op_concat[TG_MAX_INPUTS + 1] = {
    {"concat", 0, TG_COMPOSITE, NULL}, {"concat", 1, 0, concat_backward},
    {"concat", 2, 0, concat_backward}, {"concat", 3, 0, concat_backward},
    {"concat", 4, 0, concat_backward},
};
_Static_assert(TG_MAX_INPUTS == 4, "op_concat has one descriptor per input count");
/* Names the public ops in their own messages. */
static const tg_op op_stack = {"stack", 0, TG_COMPOSITE, NULL};

typedef struct concat_ctx {
  tg_tensor *const *xs;
  int n;
  int64_t inner[TG_MAX_INPUTS]; /* elements of x_i per outer index */
  int64_t row;                  /* elements of y per outer index */
  tg_real *y;
} concat_ctx;

static void concat_rows(void *arg, int64_t lo, int64_t hi) {
  const concat_ctx *c = arg;
  for (int64_t o = lo; o < hi; o++) {
    tg_real *yo = c->y + o * c->row;
    for (int i = 0; i < c->n; i++) {
      memcpy(yo, c->xs[i]->data + o * c->inner[i], (size_t)c->inner[i] * sizeof *yo);
      yo += c->inner[i];
    }
  }
}

/* The primitive: n <= TG_MAX_INPUTS tensors already checked to fit
 * (same ndim; with stack, same shape and axis in [0, ndim]; else equal
 * but for axis). */
static tg_tensor *concat_prim(tg_tape *tape, tg_tensor *const *xs, int n, int axis, int stack) {
  const tg_op *op = &op_concat[n];
  const tg_tensor *x0 = xs[0];
  int64_t ys[TG_MAX_DIMS]; /* y: x's shape, axis summed (concat) or inserted as n (stack) */
  int nd = stack ? x0->ndim + 1 : x0->ndim;
  for (int d = 0, s = 0; d < nd; d++)
    ys[d] = stack && d == axis ? n : x0->shape[s++];
  if (!stack)
    for (int i = 1; i < n; i++)
      ys[axis] += xs[i]->shape[axis];
  tg_tensor *y = tg_empty(tape, ys, nd);
  if (!y)
    return NULL;
  concat_ctx c = {xs, n, {0}, prod(ys, axis, nd), y->data};
  int64_t outer = prod(ys, 0, axis);
  for (int i = 0; i < n; i++)
    c.inner[i] = xs[i]->numel / outer;
  /* a row of the output per item (tg_parallel_for: serial below TG_PAR_MIN) */
  tg_parallel_for(outer, tg_grain_of(y->numel / outer), y->numel, concat_rows, &c);
  const int64_t attr[CAT_NATTR] = {[CAT_AXIS] = axis, [CAT_STACK] = stack};
  return tg_op_record(tape, op, y, n, xs, attr, CAT_NATTR);
}

/* xs[0..n-1] joined as a tree of primitives of at most TG_MAX_INPUTS
 * inputs; with stack the leaves stack and the levels above concat. */
static tg_tensor *concat_tree(tg_tape *tape, tg_tensor *const *xs, int n, int axis, int stack) {
  if (n <= TG_MAX_INPUTS)
    return concat_prim(tape, xs, n, axis, stack);
  tg_tensor *part[TG_MAX_INPUTS];
  for (int k = 0; k < TG_MAX_INPUTS; k++) {
    int lo = n * k / TG_MAX_INPUTS, hi = n * (k + 1) / TG_MAX_INPUTS;
    part[k] = concat_tree(tape, xs + lo, hi - lo, axis, stack);
    if (!part[k])
      return NULL;
  }
  return concat_prim(tape, part, TG_MAX_INPUTS, axis, 0);
}

/* Checks the inputs of concat (stack 0) or stack (1) and normalises the
 * axis into *ax. Returns 0 after failing the tape. */
static int concat_check(tg_tape *tape, const tg_op *op, tg_tensor *const *xs, int n, int axis,
                        int stack, int *ax) {
  if (!tape || tg_tape_status(tape) != TG_OK)
    return 0;
  if (!xs) {
    tg_op_fail(tape, op, TG_ERR_NULL, "the array of inputs is NULL");
    return 0;
  }
  if (n < 1) {
    tg_op_fail(tape, op, TG_ERR_ARG, "needs at least one input, got %d", n);
    return 0;
  }
  if (!tg_op_begin(tape, op, n, xs))
    return 0;
  const tg_tensor *x0 = xs[0];
  int nd = stack ? x0->ndim + 1 : x0->ndim;
  if (!stack && nd == 0) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "cannot concatenate scalars (shape %s): stack them",
               TG_SHAPE(x0));
    return 0;
  }
  if (stack && nd > TG_MAX_DIMS) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "stacking %s would make %d dimensions (at most %d)",
               TG_SHAPE(x0), nd, TG_MAX_DIMS);
    return 0;
  }
  if (axis < -nd || axis >= nd) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "axis %d is out of range for %d dimensions (shape %s%s)",
               axis, nd, TG_SHAPE(x0), stack ? " stacked" : "");
    return 0;
  }
  *ax = axis < 0 ? axis + nd : axis;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const tg_tensor *x = xs[i];
    int fits = x->ndim == x0->ndim;
    for (int d = 0; fits && d < x->ndim; d++)
      fits = x->shape[d] == x0->shape[d] || (!stack && d == *ax);
    if (!fits) {
      tg_op_fail(tape, op, TG_ERR_SHAPE,
                 stack ? "input %d %s does not have the shape of input 0 %s"
                       : "input %d %s does not match input 0 %s outside axis %d",
                 i, TG_SHAPE(x), TG_SHAPE(x0), *ax);
      return 0;
    }
    total += stack ? 1 : x->shape[*ax];
  }
  int64_t ys[TG_MAX_DIMS];
  for (int d = 0, s = 0; d < nd; d++) {
    ys[d] = d == *ax ? total : x0->shape[s];
    s += !stack || d != *ax;
  }
  tg_error e = {0};
  if (tg_shape_check(ys, nd, NULL, "result", &e) != TG_OK) {
    tg_op_fail(tape, op, e.status, "%s (from %d inputs like %s)", e.msg, n, TG_SHAPE(x0));
    return 0;
  }
  return 1;
}

tg_tensor *tg_concat(tg_tape *tape, tg_tensor *const *xs, int n, int axis) {
  int ax;
  if (!concat_check(tape, &op_concat[0], xs, n, axis, 0, &ax))
    return NULL;
  if (n == 1)
    return xs[0]; /* nothing to join: x itself, nothing recorded */
  return concat_tree(tape, xs, n, ax, 0);
}

tg_tensor *tg_stack(tg_tape *tape, tg_tensor *const *xs, int n, int axis) {
  int ax;
  if (!concat_check(tape, &op_stack, xs, n, axis, 1, &ax))
    return NULL;
  return concat_tree(tape, xs, n, ax, 1);
}

/* ------------------------------------------------------------------------
 * index_select and index_add: an adjoint pair. With pre = x.shape[:axis],
 * post = x.shape[axis+1:] and idx of any shape (its values integers in
 * [0, n)):
 *   index_select: y (pre, idx.shape, post), y[p, j, q] = x[p, idx[j], q]
 *   index_add:    y (pre, n, post) = 0, y[p, idx[j], q] += src[p, j, q]
 * idx (input 1) only decides, so it is declared non-differentiable. */
static void index_select_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const int axis = (int)n->attr[IX_AXIS];
  gx[0] = tg_index_add(tape, gy, axis, n->in[1], n->in[0]->shape[axis]);
}
static const tg_op op_index_select = {"index_select", 2, TG_NONDIFF(1), index_select_backward};

static void index_add_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_index_select(tape, gy, (int)n->attr[IX_AXIS], n->in[1]);
}
static const tg_op op_index_add = {"index_add", 2, TG_NONDIFF(1), index_add_backward};

/* Checks that every value of idx is an integer in [0, n); 0 after
 * failing the tape with the first one that is not. */
static int index_check(tg_tape *tape, const tg_op *op, const tg_tensor *idx, int64_t n, int axis,
                       const tg_tensor *x) {
  for (int64_t j = 0; j < idx->numel; j++) {
    double v = idx->data[j];
    if (!(v >= 0 && v < (double)n && v == floor(v))) {
      tg_op_fail(tape, op, TG_ERR_ARG,
                 "index %g at position %lld of idx %s is %s [0, %lld) of axis %d of %s", v,
                 (long long)j, TG_SHAPE(idx), v == floor(v) ? "outside" : "not an integer in",
                 (long long)n, axis, TG_SHAPE(x));
      return 0;
    }
  }
  return 1;
}

typedef struct ix_ctx {
  const tg_real *x, *idx;
  tg_real *y;
  int64_t m, n, post; /* indices, axis length, elements per index */
} ix_ctx;

/* index_select rows r in [lo, hi) of y viewed as (pre·m, post). */
static void select_rows(void *arg, int64_t lo, int64_t hi) {
  const ix_ctx *c = arg;
  for (int64_t r = lo; r < hi; r++) {
    int64_t p = r / c->m, j = r % c->m, i = (int64_t)c->idx[j];
    memcpy(c->y + r * c->post, c->x + (p * c->n + i) * c->post, (size_t)c->post * sizeof *c->y);
  }
}

/* index_add over outer slabs [lo, hi): y (pre, n, post) += src (pre, m,
 * post) scattered by idx, in index order (repeated indices sum in a fixed
 * order whatever the thread count). */
static void add_slabs(void *arg, int64_t lo, int64_t hi) {
  const ix_ctx *c = arg;
  for (int64_t p = lo; p < hi; p++)
    for (int64_t j = 0; j < c->m; j++) {
      const tg_real *restrict s = c->x + (p * c->m + j) * c->post;
      tg_real *restrict d = c->y + (p * c->n + (int64_t)c->idx[j]) * c->post;
      for (int64_t q = 0; q < c->post; q++)
        d[q] += s[q];
    }
}

tg_tensor *tg_index_select(tg_tape *tape, tg_tensor *x, int axis, tg_tensor *idx) {
  const tg_op *op = &op_index_select;
  tg_tensor *in[2] = {x, idx};
  if (!tg_op_begin(tape, op, 2, in))
    return NULL;
  if (axis < -x->ndim || axis >= x->ndim)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "axis %d is out of range for x %s", axis,
                      TG_SHAPE(x));
  const int ax = axis < 0 ? axis + x->ndim : axis;
  const int nd = x->ndim - 1 + idx->ndim;
  if (nd > TG_MAX_DIMS)
    return tg_op_fail(tape, op, TG_ERR_SHAPE,
                      "x %s indexed by idx %s would have %d dimensions (at most %d)", TG_SHAPE(x),
                      TG_SHAPE(idx), nd, TG_MAX_DIMS);
  const int64_t n = x->shape[ax];
  if (!index_check(tape, op, idx, n, ax, x))
    return NULL;
  int64_t ys[TG_MAX_DIMS]; /* y: x.shape[:ax] + idx.shape + x.shape[ax+1:] */
  int d = 0;
  for (int k = 0; k < ax; k++)
    ys[d++] = x->shape[k];
  for (int k = 0; k < idx->ndim; k++)
    ys[d++] = idx->shape[k];
  for (int k = ax + 1; k < x->ndim; k++)
    ys[d++] = x->shape[k];
  tg_error e = {0};
  if (tg_shape_check(ys, nd, NULL, "result", &e) != TG_OK)
    return tg_op_fail(tape, op, e.status, "%s (x %s, idx %s)", e.msg, TG_SHAPE(x), TG_SHAPE(idx));
  tg_tensor *y = tg_empty(tape, ys, nd);
  if (!y)
    return NULL;
  const int64_t post = prod(x->shape, ax + 1, x->ndim), rows = y->numel / post;
  const ix_ctx c = {x->data, idx->data, y->data, idx->numel, n, post};
  tg_parallel_for(rows, tg_grain_of(post), y->numel, select_rows, (void *)&c);
  const int64_t attr[IX_NATTR] = {[IX_AXIS] = ax};
  return tg_op_record(tape, op, y, 2, in, attr, IX_NATTR);
}

tg_tensor *tg_index_add(tg_tape *tape, tg_tensor *src, int axis, tg_tensor *idx, int64_t n) {
  const tg_op *op = &op_index_add;
  tg_tensor *in[2] = {src, idx};
  if (!tg_op_begin(tape, op, 2, in))
    return NULL;
  const int nd = src->ndim - idx->ndim + 1; /* the result's */
  if (nd < 1)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "src %s has fewer dimensions than idx %s",
                      TG_SHAPE(src), TG_SHAPE(idx));
  if (axis < -nd || axis >= nd)
    return tg_op_fail(tape, op, TG_ERR_SHAPE,
                      "axis %d is out of range for a %d-dimensional result (src %s, idx %s)", axis,
                      nd, TG_SHAPE(src), TG_SHAPE(idx));
  const int ax = axis < 0 ? axis + nd : axis;
  int fits = 1;
  for (int k = 0; k < idx->ndim; k++)
    fits = fits && src->shape[ax + k] == idx->shape[k];
  if (!fits)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "src %s does not hold idx %s's shape at axis %d",
                      TG_SHAPE(src), TG_SHAPE(idx), ax);
  if (n < 1)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "axis length %lld is not positive", (long long)n);
  int64_t ys[TG_MAX_DIMS]; /* y: src.shape[:ax] + (n,) + src.shape[ax+idx.ndim:] */
  for (int k = 0; k < nd; k++)
    ys[k] = k < ax ? src->shape[k] : k == ax ? n : src->shape[k - 1 + idx->ndim];
  tg_error e = {0};
  if (tg_shape_check(ys, nd, NULL, "result", &e) != TG_OK)
    return tg_op_fail(tape, op, e.status, "%s (src %s, idx %s, n %lld)", e.msg, TG_SHAPE(src),
                      TG_SHAPE(idx), (long long)n);
  tg_tensor *y = tg_zeros(tape, ys, nd);
  if (!y || !index_check(tape, op, idx, n, ax, y))
    return NULL;
  const int64_t pre = prod(ys, 0, ax), post = prod(ys, ax + 1, nd);
  const ix_ctx c = {src->data, idx->data, y->data, idx->numel, n, post};
  tg_parallel_for(pre, tg_grain_of(src->numel / pre), src->numel, add_slabs, (void *)&c);
  const int64_t attr[IX_NATTR] = {[IX_AXIS] = ax};
  return tg_op_record(tape, op, y, 2, in, attr, IX_NATTR);
}
