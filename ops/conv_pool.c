/* conv_pool.c — conv_max_pool, a convolution whose output is max-pooled
 * in s×s windows at stride s, image by image, and the private ops of its
 * gradient (conv_pool_grad_x, conv_pool_grad_w, pool_scatter and
 * pool_gather). The products, the pooling inside them and the scatters
 * run in ops/conv.c's jobs (conv_internal.h); this file checks shapes,
 * fills the jobs and records the ops. Nothing here may allocate from the
 * system or let the thread count change a result.
 */
#include <string.h>

#include "conv_internal.h"
#include "ops.h"
#include "ops_internal.h"

/* conv_max_pool: max_pool2d(conv(x, W, b), s, s, 0) image by image, each
 * image's conv output pooled while it is in cache, so the (N, FN, OH, OW)
 * map is never written (SimpleConvNet: 6.9 MB at batch 100, written and
 * read back in forward, and again in backward by max's scatter and db's
 * sum). The op keeps arg (N, FN, PH, PW), the index of each window's
 * first maximum (a constant input, filled by the forward), and its
 * gradient is conv's on S(dy) = pool_scatter(dy, arg), dy at each
 * window's maximum:
 *
 *   dx = conv_pool_grad_x(dy, W, arg) = conv_grad_x(S(dy), W)
 *   dW = conv_pool_grad_w(x, dy, arg) = conv_grad_w(x, S(dy))
 *   db = Σ dy over (N, PH, PW)     (S moves values, it does not add them)
 *
 * with S applied per image, into the product's operand in cache: S(dy)
 * is never materialised (DeepConvNet: it was written and read back, 10 MB
 * per step, for dx alone). pool_scatter and pool_gather are S and its
 * adjoint Sᵀ (each the other's gradient), and the two private ops' rules
 * are written with them, conv and each other, so second derivatives
 * work. The twin is max_pool2d of
 * tg_conv_composite (tests/test_conv_pool.c). */

enum { POOL_SIZE = PATCH_NATTR, POOL_NATTR }; /* attr: the patch slots, then s */

/* The three ops behind conv_max_pool's gradient, private to this file:
 * their arg always comes from conv_max_pool (indices in [0, s²)).
 *   conv_pool_grad_x: dy (N, FN, PH, PW), W (FN, C, fh, fw) -> dx (N, C, H, W)
 *   conv_pool_grad_w: x (N, C, H, W), dy (N, FN, PH, PW) -> dW (FN, C, fh, fw)
 *   pool_scatter: dy (N, C, PH, PW) -> (N, C, oh, ow), S(dy)
 *   pool_gather: g (N, C, OH, OW) -> (N, C, PH, PW), Sᵀ(g) */
static tg_tensor *conv_pool_grad_x(tg_tape *tape, tg_tensor *dy, tg_tensor *W, tg_tensor *arg,
                                   const int64_t *xshape, int64_t stride, int64_t pad,
                                   int64_t size);
static tg_tensor *conv_pool_grad_w(tg_tape *tape, tg_tensor *x, tg_tensor *dy, tg_tensor *arg,
                                   int64_t fh, int64_t fw, int64_t stride, int64_t pad,
                                   int64_t size);
static tg_tensor *pool_scatter(tg_tape *tape, tg_tensor *dy, tg_tensor *arg, int64_t size,
                               int64_t oh, int64_t ow);
static tg_tensor *pool_gather(tg_tape *tape, tg_tensor *g, tg_tensor *arg, int64_t size);

static void conv_max_pool_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_pool_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy,
                                      tg_tensor **gx);
static void conv_pool_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy,
                                      tg_tensor **gx);
static void pool_scatter_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void pool_gather_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
/* conv_max_pool decides where each window's maximum is: arg (input 2). */
static uint64_t conv_max_pool_decide(tg_tape *tape, int n, tg_tensor *const *in,
                                     const tg_tensor *out, const int64_t *attr) {
  (void)tape, (void)n, (void)out, (void)attr;
  return tg_hash_bytes(0, in[2]->data, (size_t)in[2]->numel * sizeof(tg_real));
}
static const tg_kinked_op op_conv_max_pool = {
    {"conv_max_pool", 4, TG_KINKED | TG_NONDIFF(2), conv_max_pool_backward}, conv_max_pool_decide};
static const tg_op op_conv_pool_grad_x = {"conv_pool_grad_x", 3, TG_NONDIFF(2),
                                          conv_pool_grad_x_backward};
static const tg_op op_conv_pool_grad_w = {"conv_pool_grad_w", 3, TG_NONDIFF(2),
                                          conv_pool_grad_w_backward};
static const tg_op op_pool_scatter = {"pool_scatter", 2, TG_NONDIFF(1), pool_scatter_backward};
static const tg_op op_pool_gather = {"pool_gather", 2, TG_NONDIFF(1), pool_gather_backward};

/* conv_grad_x(S(dy), W) for node n, whose inputs 0 and 2 are x and arg:
 * x's gradient in both conv_max_pool (W the filters) and
 * conv_pool_grad_w (W the incoming gradient of dW). */
static tg_tensor *grad_x_at_maxima(tg_tape *tape, const tg_node *n, tg_tensor *dy, tg_tensor *W) {
  const int64_t *a = n->attr;
  return conv_pool_grad_x(tape, dy, W, n->in[2], n->in[0]->shape, a[PATCH_STRIDE], a[PATCH_PAD],
                          a[POOL_SIZE]);
}

static void conv_max_pool_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0], *w = n->in[1], *arg = n->in[2];
  const int64_t *a = n->attr, s = a[POOL_SIZE];
  if (tg_op_needs_grad(n, 0))
    gx[0] = grad_x_at_maxima(tape, n, gy, w);
  if (tg_op_needs_grad(n, 1))
    gx[1] = conv_pool_grad_w(tape, x, gy, arg, w->shape[2], w->shape[3], a[PATCH_STRIDE],
                             a[PATCH_PAD], s);
  if (tg_op_needs_grad(n, 3))
    gx[3] = tg_sum(tape, gy, (const int[]){0, 2, 3}, 3, 0);
}

/* dx = conv_grad_x(S(dy), W), linear in each: ⟨G, dx⟩ = ⟨conv(G, W),
 * S(dy)⟩, so d(dy) = Sᵀ(conv(G, W)) and dW = conv_grad_w(G, S(dy)). */
static void conv_pool_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy,
                                      tg_tensor **gx) {
  tg_tensor *dy = n->in[0], *w = n->in[1], *arg = n->in[2];
  const int64_t *a = n->attr, s = a[POOL_SIZE];
  if (tg_op_needs_grad(n, 0))
    gx[0] = pool_gather(tape, tg_conv(tape, gy, w, NULL, a[PATCH_STRIDE], a[PATCH_PAD]), arg, s);
  if (tg_op_needs_grad(n, 1))
    gx[1] = conv_pool_grad_w(tape, gy, dy, arg, w->shape[2], w->shape[3], a[PATCH_STRIDE],
                             a[PATCH_PAD], s);
}

/* dW = conv_grad_w(x, S(dy)): ⟨H, dW⟩ = ⟨conv(x, H), S(dy)⟩, so
 * dx = conv_grad_x(S(dy), H) and d(dy) = Sᵀ(conv(x, H)). */
static void conv_pool_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy,
                                      tg_tensor **gx) {
  tg_tensor *x = n->in[0], *arg = n->in[2];
  const int64_t *a = n->attr, s = a[POOL_SIZE];
  if (tg_op_needs_grad(n, 0))
    gx[0] = grad_x_at_maxima(tape, n, n->in[1], gy);
  if (tg_op_needs_grad(n, 1))
    gx[1] = pool_gather(tape, tg_conv(tape, x, gy, NULL, a[PATCH_STRIDE], a[PATCH_PAD]), arg, s);
}

static void pool_scatter_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  if (tg_op_needs_grad(n, 0))
    gx[0] = pool_gather(tape, gy, n->in[1], n->attr[0]);
}

static void pool_gather_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  if (tg_op_needs_grad(n, 0))
    gx[0] = pool_scatter(tape, gy, n->in[1], n->attr[0], n->in[0]->shape[2], n->in[0]->shape[3]);
}

/* Fails unless s >= 1 tiles oh × ow exactly. */
static int pool_fits(tg_tape *tape, const tg_op *op, const char *what, int64_t s, int64_t oh,
                     int64_t ow) {
  if (s >= 1 && oh % s == 0 && ow % s == 0)
    return 1;
  tg_op_fail(tape, op, TG_ERR_SHAPE,
             "%s: %lld×%lld pooling windows (stride %lld) do not tile the %lld×%lld map", what,
             (long long)s, (long long)s, (long long)s, (long long)oh, (long long)ow);
  return 0;
}

/* Fails unless arg is (N, C, PH, PW) of the pooled shape. */
static int arg_fits(tg_tape *tape, const tg_op *op, const char *what, const tg_tensor *arg,
                    const int64_t *pooled) {
  if (arg->ndim == 4 && memcmp(arg->shape, pooled, 4 * sizeof *pooled) == 0)
    return 1;
  tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: arg %s must be (%lld, %lld, %lld, %lld)", what,
             TG_SHAPE(arg), (long long)pooled[0], (long long)pooled[1], (long long)pooled[2],
             (long long)pooled[3]);
  return 0;
}

tg_tensor *tg_conv_max_pool(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                            int64_t pad, int64_t size) {
  const tg_op *op = &op_conv_max_pool.op;
  if (!tg_op_begin(tape, op, b ? 3 : 2, (tg_tensor *[]){x, W, b}))
    return NULL;
  char what[400];
  snprintf(what, sizeof what, "x %s, W %s%s%s, pool %lld", TG_SHAPE(x), TG_SHAPE(W),
           b ? ", b " : "", b ? TG_SHAPE(b) : "", (long long)size);
  if (!tg_conv_operands(tape, op, what, x, W, b))
    return NULL;
  conv_job j = {.kind = CONV_Y, .x = x->data, .w = W->data, .bias = b ? b->data : NULL};
  if (!tg_conv_geom(tape, op, what, x->shape, W->shape[2], W->shape[3], stride, pad, &j.g) ||
      !pool_fits(tape, op, what, size, j.g.oh, j.g.ow))
    return NULL;
  j.fn = W->shape[0], j.k = j.g.cols, j.p = j.g.oh * j.g.ow, j.pool = size;
  const int64_t pooled[4] = {j.g.n, j.fn, j.g.oh / size, j.g.ow / size};
  tg_tensor *y = tg_empty(tape, pooled, 4), *arg = tg_empty(tape, pooled, 4);
  if (!y || !arg)
    return NULL;
  j.out = y->data, j.arg = arg->data;
  if (!tg_conv_exec(tape, op, &j))
    return NULL;
  tg_tensor *in[4] = {x, W, arg, b};
  int64_t a[POOL_NATTR];
  tg_patch_attrs(&j.g, a);
  a[POOL_SIZE] = size;
  return tg_op_record(tape, op, y, b ? 4 : 3, in, a, POOL_NATTR);
}

/* The two gradient ops' common end: j (geometry, fn and pool filled in)
 * run into a new output of shape (4-D), recorded as op with inputs in
 * (dy or x, W or dy, arg) and the patch attributes plus the window size. */
static tg_tensor *run_pooled(tg_tape *tape, const tg_op *op, conv_job *j, const int64_t *shape,
                             tg_tensor **in) {
  j->k = j->g.cols, j->p = j->g.oh * j->g.ow;
  tg_tensor *out = tg_empty(tape, shape, 4);
  if (!out)
    return NULL;
  j->out = out->data;
  if (!tg_conv_exec(tape, op, j))
    return NULL;
  int64_t a[POOL_NATTR];
  tg_patch_attrs(&j->g, a);
  a[POOL_SIZE] = j->pool;
  return tg_op_record(tape, op, out, 3, in, a, POOL_NATTR);
}

static tg_tensor *conv_pool_grad_x(tg_tape *tape, tg_tensor *dy, tg_tensor *W, tg_tensor *arg,
                                   const int64_t *xshape, int64_t stride, int64_t pad,
                                   int64_t size) {
  const tg_op *op = &op_conv_pool_grad_x;
  tg_tensor *in[3] = {dy, W, arg};
  if (!tg_op_begin(tape, op, 3, in))
    return NULL;
  char xsb[160], what[400];
  tg_shape_str(xshape, 4, xsb, sizeof xsb);
  snprintf(what, sizeof what, "dy %s, W %s to x %s, pool %lld", TG_SHAPE(dy), TG_SHAPE(W), xsb,
           (long long)size);
  if (W->ndim != 4 || W->shape[1] != xshape[1])
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: W must be (FN, C, FH, FW) with x's C", what);
  conv_job j = {.kind = CONV_DX, .w = W->data, .dy = dy->data, .arg = arg->data, .pool = size};
  if (!tg_conv_geom(tape, op, what, xshape, W->shape[2], W->shape[3], stride, pad, &j.g) ||
      !pool_fits(tape, op, what, size, j.g.oh, j.g.ow))
    return NULL;
  const int64_t pooled[4] = {j.g.n, W->shape[0], j.g.oh / size, j.g.ow / size};
  if (dy->ndim != 4 || memcmp(dy->shape, pooled, sizeof pooled) != 0)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: dy must be (%lld, %lld, %lld, %lld)", what,
                      (long long)pooled[0], (long long)pooled[1], (long long)pooled[2],
                      (long long)pooled[3]);
  if (!arg_fits(tape, op, what, arg, pooled))
    return NULL;
  j.fn = W->shape[0];
  return run_pooled(tape, op, &j, xshape, in); /* dx (N, C, H, W) */
}

static tg_tensor *conv_pool_grad_w(tg_tape *tape, tg_tensor *x, tg_tensor *dy, tg_tensor *arg,
                                   int64_t fh, int64_t fw, int64_t stride, int64_t pad,
                                   int64_t size) {
  const tg_op *op = &op_conv_pool_grad_w;
  tg_tensor *in[3] = {x, dy, arg};
  if (!tg_op_begin(tape, op, 3, in))
    return NULL;
  char what[400];
  snprintf(what, sizeof what, "x %s, dy %s, pool %lld", TG_SHAPE(x), TG_SHAPE(dy), (long long)size);
  if (x->ndim != 4)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: x must be (N, C, H, W)", what);
  conv_job j = {.kind = CONV_DW, .x = x->data, .dy = dy->data, .arg = arg->data, .pool = size};
  if (!tg_conv_geom(tape, op, what, x->shape, fh, fw, stride, pad, &j.g) ||
      !pool_fits(tape, op, what, size, j.g.oh, j.g.ow))
    return NULL;
  const int64_t fn = dy->ndim == 4 ? dy->shape[1] : 0;
  const int64_t pooled[4] = {j.g.n, fn, j.g.oh / size, j.g.ow / size};
  if (dy->ndim != 4 || memcmp(dy->shape, pooled, sizeof pooled) != 0 || fn < 1)
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: dy must be (%lld, FN, %lld, %lld)", what,
                      (long long)pooled[0], (long long)pooled[2], (long long)pooled[3]);
  if (!arg_fits(tape, op, what, arg, pooled))
    return NULL;
  j.fn = fn;
  return run_pooled(tape, op, &j, (int64_t[]){fn, x->shape[1], fh, fw}, in); /* dW */
}

/* pool_scatter and pool_gather: the shared checks; dy (N, C, PH, PW) is
 * the pooled shape of g (N, C, OH, OW). */
static int pool_pair_check(tg_tape *tape, const tg_op *op, const tg_tensor *g, const tg_tensor *dy,
                           const tg_tensor *arg, int64_t size) {
  char what[300];
  snprintf(what, sizeof what, "%s %s, %s %s, pool %lld", op == &op_pool_scatter ? "dy" : "g",
           TG_SHAPE(op == &op_pool_scatter ? dy : g), op == &op_pool_scatter ? "to" : "dy",
           op == &op_pool_scatter ? TG_SHAPE(g) : TG_SHAPE(dy), (long long)size);
  if (!pool_fits(tape, op, what, size, g->shape[2], g->shape[3])) /* g is 4-D */
    return 0;
  const int64_t pooled[4] = {g->shape[0], g->shape[1], g->shape[2] / size, g->shape[3] / size};
  if (dy->ndim != 4 || memcmp(dy->shape, pooled, sizeof pooled) != 0) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: the pooled tensor must be (%lld, %lld, %lld, %lld)",
               what, (long long)pooled[0], (long long)pooled[1], (long long)pooled[2],
               (long long)pooled[3]);
    return 0;
  }
  return arg_fits(tape, op, what, arg, pooled);
}

static tg_tensor *pool_scatter(tg_tape *tape, tg_tensor *dy, tg_tensor *arg, int64_t size,
                               int64_t oh, int64_t ow) {
  tg_tensor *in[2] = {dy, arg};
  if (!tg_op_begin(tape, &op_pool_scatter, 2, in))
    return NULL;
  if (dy->ndim != 4 || size < 1 || oh < size || ow < size)
    return tg_op_fail(tape, &op_pool_scatter, TG_ERR_SHAPE,
                      "dy %s to %lld×%lld, pool %lld: need dy (N, C, PH, PW) and windows "
                      "inside the map",
                      TG_SHAPE(dy), (long long)oh, (long long)ow, (long long)size);
  tg_tensor *g = tg_empty(tape, (int64_t[]){dy->shape[0], dy->shape[1], oh, ow}, 4);
  if (!g || !pool_pair_check(tape, &op_pool_scatter, g, dy, arg, size))
    return NULL;
  tg_pool_planes(0, dy->data, arg->data, dy->shape[0] * dy->shape[1], oh, ow, size, g->data);
  return tg_op_record(tape, &op_pool_scatter, g, 2, in, (const int64_t[]){size}, 1);
}

static tg_tensor *pool_gather(tg_tape *tape, tg_tensor *g, tg_tensor *arg, int64_t size) {
  tg_tensor *in[2] = {g, arg};
  if (!tg_op_begin(tape, &op_pool_gather, 2, in))
    return NULL;
  if (g->ndim != 4 || size < 1)
    return tg_op_fail(tape, &op_pool_gather, TG_ERR_SHAPE,
                      "g %s, pool %lld: need g (N, C, OH, OW) and a window size >= 1", TG_SHAPE(g),
                      (long long)size);
  tg_tensor *dy = tg_empty(
      tape, (int64_t[]){g->shape[0], g->shape[1], g->shape[2] / size, g->shape[3] / size}, 4);
  if (!dy || !pool_pair_check(tape, &op_pool_gather, g, dy, arg, size))
    return NULL;
  tg_pool_planes(1, g->data, arg->data, g->shape[0] * g->shape[1], g->shape[2], g->shape[3], size,
                 dy->data);
  return tg_op_record(tape, &op_pool_gather, dy, 2, in, (const int64_t[]){size}, 1);
}
