/* test_movement.c — reshape, permute, transpose, broadcast_to, slice, pad
 * and detach.
 *
 * Forward values are checked by index arithmetic written here (multi-index
 * in, multi-index out), gradients by gradcheck, slice and pad against each
 * other by adjointness, errors by their messages. Tests that need
 * ops/binary.c (detach's gradient cut measured through mul, and double
 * backward) are grouped in the "needs_binary" case.
 */
#include "testutil.h"

#include <omp.h>

static void unravel(int64_t i, const int64_t *shape, int nd, int64_t *idx) {
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
}

static int64_t ravel(const int64_t *idx, const int64_t *shape, int nd) {
  int64_t i = 0;
  for (int d = 0; d < nd; d++)
    i = i * shape[d] + idx[d];
  return i;
}

/* An arena tensor whose element i holds a value derived from i, so a
 * misplaced element is visible (no grad). */
static tg_tensor *iota(tg_tape *tape, const int64_t *shape, int nd) {
  tg_tensor *t = tg_empty(tape, shape, nd);
  ck_assert_msg(t != NULL, "%s", tg_tape_error(tape));
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)(i % 1000) + (tg_real)0.5;
  return t;
}

static void assert_shape(const tg_tensor *t, const int64_t *shape, int nd) {
  char want[160];
  tg_shape_str(shape, nd, want, sizeof want);
  ck_assert_msg(t != NULL, "tensor is NULL, want shape %s", want);
  ck_assert_msg(strcmp(TG_SHAPE(t), want) == 0, "shape %s, want %s", TG_SHAPE(t), want);
}

/* ------------------------------------------------------------------------
 * reshape */

START_TEST(test_reshape_is_a_view) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){2, 3, 4}, 3);
  tg_tensor *y = tg_reshape(tape, x, (int64_t[]){4, -1}, 2);
  assert_shape(y, (int64_t[]){4, 6}, 2);
  ck_assert_ptr_eq(y->data, x->data);
  ck_assert(y->flags & TG_VIEW);
  assert_shape(tg_reshape(tape, x, (int64_t[]){-1}, 1), (int64_t[]){24}, 1);
  assert_shape(tg_reshape(tape, x, (int64_t[]){2, -1, 3}, 3), (int64_t[]){2, 4, 3}, 3);
  assert_shape(tg_reshape(tape, x, (int64_t[]){1, 24, 1}, 3), (int64_t[]){1, 24, 1}, 3);
  tg_tensor *one = iota(tape, (int64_t[]){1, 1}, 2);
  tg_tensor *s = tg_reshape(tape, one, NULL, 0);
  assert_shape(s, NULL, 0);
  ck_assert_ptr_eq(s->data, one->data);

  /* An owned tensor: a view of its storage; recorded when it needs grad. */
  tg_tensor *w = tg_tensor_new((int64_t[]){6}, 1, 1, "w", NULL);
  tg_tensor *wv = tg_reshape(tape, w, (int64_t[]){3, 2}, 2);
  ck_assert_ptr_eq(wv->data, w->data);
  ck_assert_int_ge(wv->node, 0);
  ck_assert(!(y->flags & TG_REQUIRES_GRAD)); /* x needs none: not recorded */
  ck_assert_int_eq(y->node, -1);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 1);
  tg_tape_free(tape);
  tg_tensor_free(w);
}
END_TEST

struct shape_ctx {
  int64_t shape[6];
  int nd;
};

static tg_tensor *reshape_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct shape_ctx *c = ctx;
  return tg_reshape(tape, in[0], c->shape, c->nd);
}

START_TEST(test_reshape_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 31);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
  struct shape_ctx c1 = {{4, -1}, 2}, c2 = {{24}, 1};
  tu_assert_gradcheck(tape, reshape_fn, &c1, 1, &x, TU_GRAD_TOL);
  tu_assert_gradcheck(tape, reshape_fn, &c2, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * permute and transpose */

/* y[i_0..] = x[j] with j[perm[k]] = i[k]. */
static void check_permute(tg_tape *tape, tg_tensor *x, const int *perm) {
  tg_tensor *y = tg_permute(tape, x, perm);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  int nd = x->ndim;
  int64_t ys[TG_MAX_DIMS], iy[TG_MAX_DIMS], ix[TG_MAX_DIMS];
  for (int k = 0; k < nd; k++)
    ys[k] = x->shape[perm[k]];
  assert_shape(y, ys, nd);
  for (int64_t i = 0; i < y->numel; i++) {
    unravel(i, ys, nd, iy);
    for (int k = 0; k < nd; k++)
      ix[perm[k]] = iy[k];
    int64_t j = ravel(ix, x->shape, nd);
    if (y->data[i] != x->data[j]) {
      char pb[64];
      int n = 0;
      for (int k = 0; k < nd; k++)
        n += snprintf(pb + n, sizeof pb - (size_t)n, " %d", perm[k]);
      ck_abort_msg("permute %s by [%s ]: element %lld is %g, want x[%lld] = %g", TG_SHAPE(x), pb,
                   (long long)i, tg_at(y, i), (long long)j, tg_at(x, j));
    }
  }
}

START_TEST(test_permute_every_perm_3d) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){2, 3, 4}, 3);
  int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int p = 0; p < 6; p++)
    check_permute(tape, x, perms[p]);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_permute_layouts) {
  tg_tape *tape = tg_tape_new();
  /* NCHW <-> NHWC with sizes that are not multiples of the tile. */
  tg_tensor *nchw = iota(tape, (int64_t[]){2, 3, 37, 41}, 4);
  check_permute(tape, nchw, (int[]){0, 2, 3, 1});
  tg_tensor *nhwc = iota(tape, (int64_t[]){2, 37, 41, 3}, 4);
  check_permute(tape, nhwc, (int[]){0, 3, 1, 2});
  /* 2-D transposes, small and above TG_PAR_MIN (threaded). */
  check_permute(tape, iota(tape, (int64_t[]){70, 45}, 2), (int[]){1, 0});
  check_permute(tape, iota(tape, (int64_t[]){1, 5}, 2), (int[]){1, 0});
  check_permute(tape, iota(tape, (int64_t[]){613, 301}, 2), (int[]){1, 0});
  check_permute(tape, iota(tape, (int64_t[]){64, 40, 50}, 3), (int[]){0, 2, 1});
  /* Innermost axis kept: runs are copied (small and threaded). */
  check_permute(tape, iota(tape, (int64_t[]){3, 5, 7}, 3), (int[]){1, 0, 2});
  check_permute(tape, iota(tape, (int64_t[]){300, 400, 2}, 3), (int[]){1, 0, 2});
  /* Size-1 axes and merged neighbours. */
  tg_tensor *x5 = iota(tape, (int64_t[]){2, 1, 3, 1, 5}, 5);
  check_permute(tape, x5, (int[]){4, 1, 0, 3, 2});
  check_permute(tape, x5, (int[]){1, 3, 0, 2, 4});
  check_permute(tape, x5, (int[]){3, 1, 2, 4, 0});
  /* 6-D. */
  tg_tensor *x6 = iota(tape, (int64_t[]){2, 3, 2, 4, 3, 2}, 6);
  check_permute(tape, x6, (int[]){5, 2, 0, 4, 1, 3});
  check_permute(tape, x6, (int[]){0, 1, 4, 5, 2, 3});
  check_permute(tape, x6, (int[]){3, 4, 5, 0, 1, 2});
  /* Scalar and 1-D: copies. */
  tg_tensor *s = tg_permute(tape, tg_scalar(tape, 4), NULL);
  ck_assert(s && s->ndim == 0 && tg_at(s, 0) == 4);
  check_permute(tape, iota(tape, (int64_t[]){7}, 1), (int[]){0});
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_transpose) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){2, 3}, 2);
  tu_assert_values(tg_transpose(tape, x), ((double[]){0.5, 3.5, 1.5, 4.5, 2.5, 5.5}), 0);
  tg_tensor *x3 = iota(tape, (int64_t[]){4, 5, 6}, 3);
  tg_tensor *y = tg_transpose(tape, x3);
  assert_shape(y, (int64_t[]){4, 6, 5}, 3);
  for (int64_t n = 0; n < 4; n++)
    for (int64_t i = 0; i < 6; i++)
      for (int64_t j = 0; j < 5; j++)
        ck_assert(y->data[(n * 6 + i) * 5 + j] == x3->data[(n * 5 + j) * 6 + i]);
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *permute_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return tg_permute(tape, in[0], ctx);
}

static tg_tensor *transpose_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_transpose(tape, in[0]);
}

START_TEST(test_permute_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 32);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
  int p1[] = {2, 0, 1}, p2[] = {1, 2, 0};
  tu_assert_gradcheck(tape, permute_fn, p1, 1, &x, TU_GRAD_TOL);
  tu_assert_gradcheck(tape, permute_fn, p2, 1, &x, TU_GRAD_TOL);
  tg_tensor *x4 = tu_leaf(tape, (int64_t[]){2, 3, 4, 5}, 4, -1, 1);
  int p3[] = {0, 2, 3, 1};
  tu_assert_gradcheck(tape, permute_fn, p3, 1, &x4, TU_GRAD_TOL);
  tu_assert_gradcheck(tape, transpose_fn, NULL, 1, &x4, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * broadcast_to */

static const struct bcast_case {
  int64_t from[4];
  int nfrom;
  int64_t to[4];
  int nto;
} bcast_cases[] = {
    {{3}, 1, {2, 3}, 2},
    {{2, 1}, 2, {2, 3}, 2},
    {{2, 1, 4}, 3, {3, 2, 5, 4}, 4},
    {{0}, 0, {2, 2}, 2},
    {{1, 1}, 2, {3, 4}, 2},
    {{1, 3, 1}, 3, {2, 3, 4}, 3},
    {{4, 1, 3}, 3, {4, 5, 3}, 3},
    {{5}, 1, {1, 1, 5}, 3},
    /* A short fill last (fewer than 16) joins the copy before it: 2x2
     * pooling's gradient, and the sizes either side of the limit. */
    {{2, 1, 3, 1}, 4, {2, 2, 3, 2}, 4},
    {{3, 1}, 2, {3, 15}, 2},
    {{3, 1}, 2, {3, 16}, 2},
};

START_TEST(test_broadcast_to_forward) {
  tg_tape *tape = tg_tape_new();
  for (size_t c = 0; c < sizeof bcast_cases / sizeof bcast_cases[0]; c++) {
    const struct bcast_case *bc = &bcast_cases[c];
    tg_tensor *x = iota(tape, bc->from, bc->nfrom);
    tg_tensor *y = tg_broadcast_to(tape, x, bc->to, bc->nto);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    assert_shape(y, bc->to, bc->nto);
    int lead = bc->nto - bc->nfrom;
    int64_t iy[TG_MAX_DIMS], ix[TG_MAX_DIMS];
    for (int64_t i = 0; i < y->numel; i++) {
      unravel(i, bc->to, bc->nto, iy);
      for (int d = 0; d < bc->nfrom; d++)
        ix[d] = bc->from[d] == 1 ? 0 : iy[d + lead];
      int64_t j = ravel(ix, bc->from, bc->nfrom);
      ck_assert_msg(y->data[i] == x->data[j], "broadcast %s to %s: element %lld is %g, want %g",
                    TG_SHAPE(x), TG_SHAPE(y), (long long)i, tg_at(y, i), tg_at(x, j));
    }
  }
  /* Threaded fill and copy paths. */
  tg_tensor *col = iota(tape, (int64_t[]){500, 1}, 2);
  tg_tensor *y = tg_broadcast_to(tape, col, (int64_t[]){500, 300}, 2);
  for (int64_t i = 0; i < y->numel; i++)
    ck_assert(y->data[i] == col->data[i / 300]);
  tg_tensor *row = iota(tape, (int64_t[]){300}, 1);
  y = tg_broadcast_to(tape, row, (int64_t[]){500, 300}, 2);
  for (int64_t i = 0; i < y->numel; i++)
    ck_assert(y->data[i] == row->data[i % 300]);
  /* Threaded stretch: each element of a row written twice in a row, each
   * row twice (2x2 average pooling's backward). */
  tg_tensor *g = iota(tape, (int64_t[]){3000, 1, 14, 1}, 4);
  y = tg_broadcast_to(tape, g, (int64_t[]){3000, 2, 14, 2}, 4);
  int64_t bad = -1;
  for (int64_t i = 0; i < y->numel && bad < 0; i++)
    if (y->data[i] != g->data[i / 56 * 14 + i % 28 / 2])
      bad = i;
  ck_assert_msg(bad < 0, "stretch (3000, 1, 14, 1) to (3000, 2, 14, 2): element %lld is %g",
                (long long)bad, bad < 0 ? 0.0 : tg_at(y, bad));
  /* The same shape: x itself. */
  ck_assert_ptr_eq(tg_broadcast_to(tape, row, (int64_t[]){300}, 1), row);
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *broadcast_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct bcast_case *bc = ctx;
  return tg_broadcast_to(tape, in[0], bc->to, bc->nto);
}

START_TEST(test_broadcast_to_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 33);
  for (size_t c = 0; c < sizeof bcast_cases / sizeof bcast_cases[0]; c++) {
    const struct bcast_case *bc = &bcast_cases[c];
    tg_tensor *x = tu_leaf(tape, bc->from, bc->nfrom, -1, 1);
    tu_assert_gradcheck(tape, broadcast_fn, (void *)bc, 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * slice and pad */

struct box_ctx {
  const int64_t *a, *b; /* slice: start, stop; pad: before, after */
};

static tg_tensor *slice_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct box_ctx *c = ctx;
  return tg_slice(tape, in[0], c->a, c->b);
}

static tg_tensor *pad_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct box_ctx *c = ctx;
  return tg_pad(tape, in[0], c->a, c->b);
}

START_TEST(test_slice_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){4, 5, 6}, 3);
  /* start (1, -4, 0), stop (3, -1, 6) is x[1:3, 1:4, 0:6]. */
  tg_tensor *y = tg_slice(tape, x, (int64_t[]){1, -4, 0}, (int64_t[]){3, -1, 6});
  assert_shape(y, (int64_t[]){2, 3, 6}, 3);
  for (int64_t i = 0; i < 2; i++)
    for (int64_t j = 0; j < 3; j++)
      for (int64_t k = 0; k < 6; k++)
        ck_assert_msg(y->data[(i * 3 + j) * 6 + k] == x->data[((i + 1) * 5 + j + 1) * 6 + k],
                      "slice: element (%lld, %lld, %lld)", (long long)i, (long long)j,
                      (long long)k);
  /* NULL start / stop: the whole axis. */
  y = tg_slice(tape, x, NULL, (int64_t[]){4, 5, 2});
  assert_shape(y, (int64_t[]){4, 5, 2}, 3);
  for (int64_t i = 0; i < y->numel; i++)
    ck_assert(y->data[i] == x->data[(i / 2) * 6 + i % 2]);
  y = tg_slice(tape, x, (int64_t[]){3, 0, 0}, NULL);
  assert_shape(y, (int64_t[]){1, 5, 6}, 3);
  for (int64_t i = 0; i < y->numel; i++)
    ck_assert(y->data[i] == x->data[90 + i]);
  y = tg_slice(tape, x, NULL, NULL);
  for (int64_t i = 0; i < x->numel; i++)
    ck_assert(y->data[i] == x->data[i]);
  /* Threaded: rows of a big matrix. */
  tg_tensor *big = iota(tape, (int64_t[]){700, 300}, 2);
  y = tg_slice(tape, big, (int64_t[]){10, 7}, (int64_t[]){690, 290});
  for (int64_t i = 0; i < 680; i++)
    for (int64_t j = 0; j < 283; j++)
      ck_assert(y->data[i * 283 + j] == big->data[(i + 10) * 300 + j + 7]);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_pad_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){2, 3}, 2);
  tg_tensor *y = tg_pad(tape, x, (int64_t[]){1, 0}, (int64_t[]){0, 2});
  assert_shape(y, (int64_t[]){3, 5}, 2);
  tu_assert_values(y, ((double[]){0, 0, 0, 0, 0, 0.5, 1.5, 2.5, 0, 0, 3.5, 4.5, 5.5, 0, 0}), 0);
  tg_tensor *x3 = iota(tape, (int64_t[]){2, 3, 4}, 3);
  int64_t before[] = {0, 2, 1}, after[] = {1, 0, 3};
  y = tg_pad(tape, x3, before, after);
  assert_shape(y, (int64_t[]){3, 5, 8}, 3);
  int64_t iy[3];
  for (int64_t i = 0; i < y->numel; i++) {
    unravel(i, y->shape, 3, iy);
    int inside = 1;
    for (int d = 0; d < 3; d++) {
      iy[d] -= before[d];
      inside = inside && iy[d] >= 0 && iy[d] < x3->shape[d];
    }
    double want = inside ? tg_at(x3, ravel(iy, x3->shape, 3)) : 0;
    ck_assert_msg(tg_at(y, i) == want, "pad: element %lld is %g, want %g", (long long)i,
                  tg_at(y, i), want);
  }
  /* NULL: no padding on that side. */
  y = tg_pad(tape, x, NULL, NULL);
  tu_assert_values(y, ((double[]){0.5, 1.5, 2.5, 3.5, 4.5, 5.5}), 0);
  tg_tape_free(tape);
}
END_TEST

/* <slice(x), y> == <x, pad(y)> for random x and y. */
START_TEST(test_slice_pad_adjoint) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 34);
  int64_t shape[] = {4, 5, 6}, start[] = {1, 0, 2}, stop[] = {3, 5, 5};
  int64_t before[3], after[3], box[3];
  for (int d = 0; d < 3; d++) {
    before[d] = start[d];
    after[d] = shape[d] - stop[d];
    box[d] = stop[d] - start[d];
  }
  tg_tensor *x = tg_empty(tape, shape, 3), *y = tg_empty(tape, box, 3);
  tu_fill_uniform(x, tg_tape_rng(tape), -1, 1);
  tu_fill_uniform(y, tg_tape_rng(tape), -1, 1);
  tg_tensor *sx = tg_slice(tape, x, start, stop), *py = tg_pad(tape, y, before, after);
  ck_assert_ptr_nonnull(sx);
  ck_assert_ptr_nonnull(py);
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < y->numel; i++)
    lhs += tg_at(sx, i) * tg_at(y, i);
  for (int64_t i = 0; i < x->numel; i++)
    rhs += tg_at(x, i) * tg_at(py, i);
  ck_assert_msg(fabs(lhs - rhs) <= 1e-12 * fmax(1, fabs(lhs)),
                "<slice x, y> = %.17g, <x, pad y> = %.17g", lhs, rhs);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_slice_pad_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 35);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){4, 5, 6}, 3, -1, 1);
  struct box_ctx s1 = {(int64_t[]){1, -4, 0}, (int64_t[]){3, -1, 6}};
  struct box_ctx s2 = {NULL, (int64_t[]){2, 5, 3}};
  tu_assert_gradcheck(tape, slice_fn, &s1, 1, &x, TU_GRAD_TOL);
  tu_assert_gradcheck(tape, slice_fn, &s2, 1, &x, TU_GRAD_TOL);
  struct box_ctx p1 = {(int64_t[]){1, 0, 2}, (int64_t[]){0, 3, 1}};
  struct box_ctx p2 = {NULL, (int64_t[]){2, 0, 0}};
  tu_assert_gradcheck(tape, pad_fn, &p1, 1, &x, TU_GRAD_TOL);
  tu_assert_gradcheck(tape, pad_fn, &p2, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * flip */

static tg_tensor *flip_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return tg_flip(tape, in[0], *(const int *)ctx);
}

/* Every axis of a (3, 4, 5) tensor, by its index and counted from the end,
 * against the element it must come from; flipping twice gives x's bits. */
START_TEST(test_flip_forward) {
  tg_tape *tape = tg_tape_new();
  const int64_t n[3] = {3, 4, 5};
  tg_tensor *x = iota(tape, n, 3);
  for (int axis = -3; axis < 3; axis++) {
    const int ax = axis < 0 ? axis + 3 : axis;
    tg_tensor *y = tg_flip(tape, x, axis);
    ck_assert_msg(y, "flip axis %d: %s", axis, tg_tape_error(tape));
    assert_shape(y, n, 3);
    for (int64_t i = 0; i < 3; i++)
      for (int64_t j = 0; j < 4; j++)
        for (int64_t k = 0; k < 5; k++) {
          int64_t s[3] = {i, j, k};
          s[ax] = n[ax] - 1 - s[ax];
          ck_assert_msg(y->data[(i * 4 + j) * 5 + k] == x->data[(s[0] * 4 + s[1]) * 5 + s[2]],
                        "flip axis %d: element (%lld, %lld, %lld)", axis, (long long)i,
                        (long long)j, (long long)k);
        }
    ck_assert_msg(tu_same_bits(tg_flip(tape, y, axis), x), "flip twice on axis %d", axis);
  }
  /* A length-1 axis and a 1-D tensor. */
  tg_tensor *one = iota(tape, (int64_t[]){1, 7}, 2);
  ck_assert(tu_same_bits(tg_flip(tape, one, 0), one));
  tg_tensor *v = tg_flip(tape, iota(tape, (int64_t[]){4}, 1), 0);
  tu_assert_values(v, ((double[]){3.5, 2.5, 1.5, 0.5}), 0);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_flip_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 39);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
  for (int axis = -1; axis < 3; axis++)
    tu_assert_gradcheck(tape, flip_fn, &axis, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * detach */

START_TEST(test_detach_cuts_the_gradient) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 36);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){3, 4}, 2, -1, 1);
  tg_tensor *d = tg_detach(tape, x);
  ck_assert_ptr_nonnull(d);
  assert_shape(d, x->shape, x->ndim);
  for (int64_t i = 0; i < x->numel; i++)
    ck_assert(d->data[i] == x->data[i]);
  ck_assert(!(d->flags & TG_REQUIRES_GRAD));
  ck_assert_int_eq(d->node, -1);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  /* Nothing reaches x through d: the sum does not even need a gradient. */
  tg_tensor *s = tg_sum(tape, tg_permute(tape, d, (int[]){1, 0}), NULL, 0, 0);
  ck_assert(!(s->flags & TG_REQUIRES_GRAD));
  ck_assert_int_ne(tg_backward(tape, s, NULL), TG_OK);
  tu_assert_error(tape, "does not require grad");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors: every message names the op and the shape */

START_TEST(test_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_tensor_new((int64_t[]){2, 3, 4}, 3, 0, "x", NULL);

  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){5, 5}, 2));
  tu_assert_error(tape, "reshape (op #", "(2, 3, 4)", "(5, 5)", "24 elements");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){5, -1}, 2));
  tu_assert_error(tape, "reshape", "(2, 3, 4)", "(5, -1)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){-1, 4, -1}, 3));
  tu_assert_error(tape, "reshape", "(2, 3, 4)", "(-1, 4, -1)", "more than one");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){0, 24}, 2));
  tu_assert_error(tape, "reshape", "(2, 3, 4)", "(0, 24)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){INT64_MAX, INT64_MAX}, 2));
  tu_assert_error(tape, "reshape", "(2, 3, 4)", "elements");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, x, (int64_t[]){1, 1, 1, 1, 1, 1, 24}, 7));
  tu_assert_error(tape, "reshape", "(2, 3, 4)", "7 dimensions");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_reshape(tape, NULL, (int64_t[]){1}, 1));
  tu_assert_error(tape, "reshape", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_permute(tape, x, (int[]){0, 2, 2}));
  tu_assert_error(tape, "permute (op #", "[0, 2, 2]", "not a permutation", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_permute(tape, x, (int[]){0, 3, 1}));
  tu_assert_error(tape, "permute", "[0, 3, 1]", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_permute(tape, x, (int[]){-1, 0, 1}));
  tu_assert_error(tape, "permute", "[-1, 0, 1]", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_permute(tape, x, NULL));
  tu_assert_error(tape, "permute", "NULL", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_transpose(tape, tg_empty(tape, (int64_t[]){3}, 1)));
  tu_assert_error(tape, "transpose (op #", "(3,)", "at least 2");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_transpose(tape, NULL));
  tu_assert_error(tape, "transpose", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_broadcast_to(tape, x, (int64_t[]){2, 5, 4}, 3));
  tu_assert_error(tape, "broadcast_to (op #", "cannot broadcast", "(2, 3, 4)", "(2, 5, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_broadcast_to(tape, x, (int64_t[]){3, 4}, 2));
  tu_assert_error(tape, "broadcast_to", "(2, 3, 4)", "(3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_broadcast_to(tape, x, (int64_t[]){0, 2, 3, 4}, 4));
  tu_assert_error(tape, "broadcast_to", "(2, 3, 4)", "(0, 2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_broadcast_to(tape, x, NULL, 3));
  tu_assert_error(tape, "broadcast_to", "NULL", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_broadcast_to(tape, NULL, (int64_t[]){2}, 1));
  tu_assert_error(tape, "broadcast_to", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_slice(tape, x, (int64_t[]){0, 2, 0}, (int64_t[]){2, 2, 4}));
  tu_assert_error(tape, "slice (op #", "axis 1", "[2:2]", "empty or out of range", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_slice(tape, x, NULL, (int64_t[]){2, 3, 5}));
  tu_assert_error(tape, "slice", "axis 2", "[0:5]", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_slice(tape, x, (int64_t[]){-3, 0, 0}, NULL));
  tu_assert_error(tape, "slice", "axis 0", "[-3:2]", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_slice(tape, x, (int64_t[]){0, 2, 0}, (int64_t[]){2, 1, 4}));
  tu_assert_error(tape, "slice", "axis 1", "[2:1]", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_slice(tape, NULL, NULL, NULL));
  tu_assert_error(tape, "slice", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_pad(tape, x, (int64_t[]){0, -1, 0}, NULL));
  tu_assert_error(tape, "pad (op #", "negative", "axis 1", "-1", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_pad(tape, x, NULL, (int64_t[]){0, 0, -2}));
  tu_assert_error(tape, "pad", "negative", "axis 2", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_pad(tape, x, (int64_t[]){INT64_MAX / 2, 0, 0}, NULL));
  tu_assert_error(tape, "pad", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_pad(tape, NULL, NULL, NULL));
  tu_assert_error(tape, "pad", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_detach(tape, NULL));
  tu_assert_error(tape, "detach", "NULL");
  tg_tensor_free(x);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Needs ops/binary.c */

/* L = Σ x ⊙ detach(x): the gradient is x, not 2x. */
START_TEST(test_detach_gradient_through_mul) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 37);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){3, 4}, 2, -1, 1);
  tg_tensor *L = tg_sum(tape, tg_mul(tape, x, tg_detach(tape, x)), NULL, 0, 0);
  ck_assert_int_eq(tg_backward(tape, L, NULL), TG_OK);
  double want[12];
  for (int i = 0; i < 12; i++)
    want[i] = tg_at(x, i);
  tu_assert_values(x->grad, want, TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

/* Second derivatives through the movement rules: the gradient of
 * L(x) = Σ d ⊙ m(x) ⊙ m(x) for a movement m, differentiated by gradcheck. */
struct dd_ctx {
  int which;
};

static tg_tensor *move(tg_tape *tape, tg_tensor *x, int which) {
  switch (which) {
  case 0:
    return tg_permute(tape, x, (int[]){2, 0, 1});
  case 1:
    return tg_slice(tape, x, (int64_t[]){1, 0, 1}, (int64_t[]){2, 3, -1});
  case 2:
    return tg_pad(tape, x, (int64_t[]){1, 0, 2}, (int64_t[]){0, 1, 0});
  case 3:
    return tg_broadcast_to(tape, tg_reshape(tape, x, (int64_t[]){2, 1, 12}, 3),
                           (int64_t[]){2, 3, 12}, 3);
  case 4:
    return tg_flip(tape, x, 1);
  default:
    return tg_transpose(tape, x);
  }
}

static tg_tensor *grad_of_moved_square(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct dd_ctx *c = ctx;
  tg_tensor *x = in[0];
  int was = tg_tape_set_grad(tape, 1); /* gradcheck evaluates with grad off */
  tg_tensor *m = move(tape, x, c->which);
  tg_tensor *g = tu_weighted_grad(tape, tg_mul(tape, m, m), x, 0.01);
  tg_tape_set_grad(tape, was);
  return g;
}

START_TEST(test_double_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 38);
  for (int w = 0; w < 6; w++) {
    tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
    struct dd_ctx c = {w};
    tu_assert_gradcheck(tape, grad_of_moved_square, &c, 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* Above TG_PAR_MIN, one thread against two, bit for bit: a tiled
 * transpose, copied runs, both kinds of broadcast run, slice, pad, and
 * flip of runs and of the last axis. */
START_TEST(test_threads_bit_identical) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = iota(tape, (int64_t[]){300, 401}, 2), *r = iota(tape, (int64_t[]){60, 50, 41}, 3);
  tg_tensor *col = iota(tape, (int64_t[]){400, 1}, 2), *row = iota(tape, (int64_t[]){401}, 1);
  static const char *const names[] = {"transpose", "runs", "broadcast column", "broadcast row",
                                      "slice",     "pad",  "flip runs",        "flip last"};
  tg_tensor *y[2][8];
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    y[t][0] = tg_permute(tape, x, (int[]){1, 0});
    y[t][1] = tg_permute(tape, r, (int[]){1, 0, 2});
    y[t][2] = tg_broadcast_to(tape, col, (int64_t[]){400, 301}, 2);
    y[t][3] = tg_broadcast_to(tape, row, (int64_t[]){300, 401}, 2);
    y[t][4] = tg_slice(tape, x, (int64_t[]){1, 2}, (int64_t[]){299, 400});
    y[t][5] = tg_pad(tape, x, (int64_t[]){1, 2}, (int64_t[]){3, 4});
    y[t][6] = tg_flip(tape, r, 1);
    y[t][7] = tg_flip(tape, x, -1);
  }
  for (int k = 0; k < 8; k++) {
    ck_assert_msg(y[0][k] && y[0][k]->numel >= TG_PAR_MIN, "%s: %s", names[k], tg_tape_error(tape));
    ck_assert_msg(tu_same_bits(y[0][k], y[1][k]), "%s: 1 and 2 threads differ", names[k]);
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("movement");
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_reshape_is_a_view);
  tcase_add_test(fwd, test_permute_every_perm_3d);
  tcase_add_test(fwd, test_permute_layouts);
  tcase_add_test(fwd, test_transpose);
  tcase_add_test(fwd, test_broadcast_to_forward);
  tcase_add_test(fwd, test_slice_forward);
  tcase_add_test(fwd, test_pad_forward);
  tcase_add_test(fwd, test_slice_pad_adjoint);
  tcase_add_test(fwd, test_flip_forward);
  tcase_add_test(fwd, test_detach_cuts_the_gradient);
  tcase_add_test(fwd, test_threads_bit_identical);
  suite_add_tcase(s, fwd);
  TCase *grad = tcase_create("gradient");
  tcase_add_test(grad, test_reshape_gradcheck);
  tcase_add_test(grad, test_permute_gradcheck);
  tcase_add_test(grad, test_broadcast_to_gradcheck);
  tcase_add_test(grad, test_slice_pad_gradcheck);
  tcase_add_test(grad, test_flip_gradcheck);
  suite_add_tcase(s, grad);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_errors);
  suite_add_tcase(s, err);
  TCase *bin = tcase_create("needs_binary");
  tcase_add_test(bin, test_detach_gradient_through_mul);
  tcase_add_test(bin, test_double_backward);
  suite_add_tcase(s, bin);
  return s;
}

TU_MAIN(make_suite)
