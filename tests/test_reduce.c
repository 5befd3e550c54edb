/* test_reduce.c — sum, mean, max, max_mask, argmax, max_scatter and sum_to
 * on the general path (ops/reduce.c); the small-group kernels
 * (ops/reduce_small.c) have test_reduce_small.c.
 *
 * Forward values are checked against plain multi-index loops written here
 * (never against the kernels' block/chunk plan, except where the order of
 * a sum is itself the contract: test_sum_order_is_fixed), gradients by
 * gradcheck, errors by their messages. Tests that need ops/binary.c (mean's and max's
 * backward use mul_scalar and mul; the double-backward test uses mul) are
 * grouped in the "needs_binary" case, so a failure there while binary.c is
 * a stub says nothing about this file.
 */
#include <omp.h>

#include "reduce_test_helpers.h" /* SUM, MEAN, MAX, run_op, filled */
#include "testutil.h"

/* Tolerance for sums of ~10^5 terms: the kernel and the loop below add in
 * different orders. */
#define BIG_TOL (sizeof(tg_real) == 8 ? 1e-10 : 1e-5)

/* The reference: for each element of x, its output index is the row-major
 * index over the kept axes. want: (nout,) value; first: (nout,) flat index
 * of the first maximum (strictly greater replaces). Returns nout. */
static int64_t ref_reduce(const tg_tensor *x, unsigned mask, int op, double *want, int64_t *first) {
  int64_t nout = 1, count = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (mask & (1u << d))
      count *= x->shape[d];
    else
      nout *= x->shape[d];
  }
  long double *acc = calloc((size_t)nout, sizeof *acc);
  int64_t *arg = malloc((size_t)nout * sizeof *arg);
  for (int64_t j = 0; j < nout; j++)
    arg[j] = -1;
  for (int64_t i = 0; i < x->numel; i++) {
    int64_t rem = i, j = 0, scale = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
      int64_t id = rem % x->shape[d];
      rem /= x->shape[d];
      if (!(mask & (1u << d))) {
        j += id * scale;
        scale *= x->shape[d];
      }
    }
    double v = tg_at(x, i);
    if (op == MAX) {
      if (arg[j] < 0 || v > (double)acc[j]) {
        acc[j] = v;
        arg[j] = i;
      }
    } else {
      acc[j] += v;
    }
  }
  for (int64_t j = 0; j < nout; j++) {
    if (want)
      want[j] = (double)(op == MEAN ? acc[j] / count : acc[j]);
    if (first)
      first[j] = arg[j];
  }
  free(acc);
  free(arg);
  return nout;
}

/* Checks op over mask (given as axes) against the reference, with shape. */
static void check_reduce(tg_tape *tape, tg_tensor *x, int op, const int *axes, int naxes,
                         unsigned mask, int keep, double tol) {
  tg_tensor *y = run_op(tape, op, x, axes, naxes, keep);
  ck_assert_msg(y != NULL, "%s failed: %s", op_names[op], tg_tape_error(tape));
  int64_t want_shape[TG_MAX_DIMS];
  int wn = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!(mask & (1u << d)))
      want_shape[wn++] = x->shape[d];
    else if (keep)
      want_shape[wn++] = 1;
  char got_s[160], want_s[160];
  tg_shape_str(y->shape, y->ndim, got_s, sizeof got_s);
  tg_shape_str(want_shape, wn, want_s, sizeof want_s);
  ck_assert_msg(strcmp(got_s, want_s) == 0,
                "%s of %s over mask 0x%x keepdims %d: shape %s, want %s", op_names[op], TG_SHAPE(x),
                mask, keep, got_s, want_s);
  double *want = malloc((size_t)y->numel * sizeof *want);
  ck_assert_int_eq(ref_reduce(x, mask, op, want, NULL), y->numel);
  for (int64_t j = 0; j < y->numel; j++)
    ck_assert_msg(tu_rel(tg_at(y, j), want[j]) <= tol,
                  "%s of %s over mask 0x%x (keepdims %d): element %lld is %.17g, want %.17g",
                  op_names[op], TG_SHAPE(x), mask, keep, (long long)j, tg_at(y, j), want[j]);
  free(want);
}

/* ------------------------------------------------------------------------
 * Forward */

START_TEST(test_every_axis_subset_3d) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 11);
  tg_tensor *x = filled(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
  for (int op = SUM; op <= MAX; op++)
    for (unsigned mask = 0; mask < 8; mask++)
      for (int keep = 0; keep <= 1; keep++) {
        int pos[3], neg[3], rev[3], n = 0;
        for (int d = 0; d < 3; d++)
          if (mask & (1u << d)) {
            pos[n] = d;
            neg[n++] = d - 3;
          }
        for (int i = 0; i < n; i++)
          rev[i] = pos[n - 1 - i];
        unsigned m = mask ? mask : 7; /* no axes: all of them */
        check_reduce(tape, x, op, pos, n, m, keep, TU_VALUE_TOL);
        check_reduce(tape, x, op, neg, n, m, keep, TU_VALUE_TOL);
        check_reduce(tape, x, op, rev, n, m, keep, TU_VALUE_TOL);
      }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_every_axis_subset_6d) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 12);
  tg_tensor *x = filled(tape, (int64_t[]){2, 1, 3, 2, 4, 3}, 6, -2, 2);
  for (int op = SUM; op <= MAX; op++)
    for (unsigned mask = 1; mask < 64; mask++) {
      int axes[6], n = 0;
      for (int d = 0; d < 6; d++)
        if (mask & (1u << d))
          axes[n++] = (d % 2) ? d - 6 : d; /* mix negative and positive */
      check_reduce(tape, x, op, axes, n, mask, (int)(mask % 2), TU_VALUE_TOL);
    }
  tg_tape_free(tape);
}
END_TEST

/* The kernel's layouts (inner axis reduced or kept, several blocks) and
 * both parallel strategies, above TG_PAR_MIN and with many chunks. */
static const struct big_case {
  int64_t shape[4];
  int nd;
  int axes[3];
  int naxes;
} big_cases[] = {
    {{400, 300}, 2, {0}, 0},          /* all axes */
    {{400, 300}, 2, {1}, 1},          /* rows */
    {{400, 300}, 2, {0}, 1},          /* columns, many outputs */
    {{3, 60000}, 2, {1}, 1},          /* few long rows: chunks in parallel */
    {{6, 30000}, 2, {-1}, 1},         /* six long rows */
    {{60000, 3}, 2, {0}, 1},          /* few long columns: chunks in parallel */
    {{6, 20000, 5}, 3, {1}, 1},       /* column blocks between kept axes */
    {{50, 40, 60}, 3, {0, 2}, 2},     /* (N, C, HW) over N and HW */
    {{20, 30, 20, 10}, 4, {0, 2}, 2}, /* inner kept, two reduced blocks */
    {{20, 30, 20, 10}, 4, {1, 3}, 2}, /* inner reduced, two kept blocks */
    {{2, 130000}, 2, {0, 1}, 2},      /* all axes, given explicitly */
};

START_TEST(test_large_layouts) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 13);
  for (size_t c = 0; c < sizeof big_cases / sizeof big_cases[0]; c++) {
    const struct big_case *bc = &big_cases[c];
    tg_tensor *x = filled(tape, bc->shape, bc->nd, -1, 1);
    unsigned mask = 0;
    for (int i = 0; i < bc->naxes; i++)
      mask |= 1u << (bc->axes[i] < 0 ? bc->axes[i] + bc->nd : bc->axes[i]);
    if (bc->naxes == 0)
      mask = (1u << bc->nd) - 1;
    for (int op = SUM; op <= MAX; op++)
      check_reduce(tape, x, op, bc->axes, bc->naxes, mask, 0, op == MAX ? 0 : BIG_TOL);
    /* Few distinct values: ties within runs and across chunks. */
    for (int64_t i = 0; i < x->numel; i++)
      x->data[i] = (tg_real)floor(8 * tg_at(x, i));
    check_reduce(tape, x, MAX, bc->axes, bc->naxes, mask, 0, 0);
    tg_tensor *m = tg_max_mask(tape, x, bc->axes, bc->naxes);
    ck_assert_msg(m != NULL, "%s", tg_tape_error(tape));
    int64_t *first = malloc((size_t)x->numel * sizeof *first);
    int64_t nout = ref_reduce(x, mask, MAX, NULL, first), ones = 0;
    for (int64_t i = 0; i < m->numel; i++)
      ones += m->data[i] != 0;
    ck_assert_int_eq(ones, nout);
    for (int64_t j = 0; j < nout; j++)
      ck_assert_msg(m->data[first[j]] == 1,
                    "max_mask of %s (case %zu): group %lld's first maximum x[%lld] is not marked",
                    TG_SHAPE(x), c, (long long)j, (long long)first[j]);
    free(first);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* Same input, 1, 2 and 3 threads: bit-identical results. The cases
 * include shapes whose parallel strategy changes with the thread count. */
START_TEST(test_thread_count_independent) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 14);
  for (size_t c = 0; c < sizeof big_cases / sizeof big_cases[0]; c++) {
    const struct big_case *bc = &big_cases[c];
    tg_tensor *x = filled(tape, bc->shape, bc->nd, -1, 1);
    ck_assert_int_ge(x->numel, TG_PAR_MIN);
    for (int op = SUM; op <= MAX; op++) {
      tg_tensor *ref = NULL;
      for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        tg_tensor *y = run_op(tape, op, x, bc->axes, bc->naxes, 0);
        ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
        if (!ref) {
          ref = y;
          continue;
        }
        for (int64_t j = 0; j < y->numel; j++)
          ck_assert_msg(memcmp(&y->data[j], &ref->data[j], sizeof(tg_real)) == 0,
                        "%s of %s (case %zu): element %lld is %.17g with %d threads, %.17g with 1",
                        op_names[op], TG_SHAPE(x), c, (long long)j, tg_at(y, j), threads,
                        tg_at(ref, j));
      }
    }
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* The order of a long sum is part of its contract: the same bits on every
 * machine, whichever vector width ops/reduce.c's kernels were cloned for
 * (the valgrind run of the suite takes the AVX2 or SSE2 clones, a native
 * run on an AVX-512 machine the AVX-512 ones). So this test, unlike the
 * others, follows reduce.c's documented order, written out in scalars:
 * chunks of 8192 reduced elements added in order; in a chunk, element i
 * of each contiguous run goes to lane i % 16, the runs' whole blocks of 16
 * to one set of lanes and their last partial blocks to another; at the
 * chunk's end the two sets are added lane by lane, then the lanes
 * pairwise. A value of 2^60 absorbs the small values added to its
 * accumulator until a −2^60 cancels it, so another order (a vector
 * reduction of another width, say) changes the result, in float as in
 * double. */
static double spec_sum(const tg_real *x, int64_t runs, int64_t L, int64_t stride) {
  enum { CH = 8192, LANES = 16 };
  double total = 0;
  for (int64_t r0 = 0; r0 < runs * L; r0 += CH) {
    double s[LANES] = {0}, t[LANES] = {0};
    for (int64_t r = r0; r < r0 + CH && r < runs * L;) {
      int64_t l = r % L, n = L - l < r0 + CH - r ? L - l : r0 + CH - r;
      const tg_real *run = x + (r / L) * stride + l;
      int64_t whole = n / LANES * LANES;
      for (int64_t i = 0; i < n; i++)
        (i < whole ? s : t)[i % LANES] += run[i];
      r += n;
    }
    for (int k = 0; k < LANES; k++)
      s[k] += t[k];
    for (int w = LANES / 2; w > 0; w /= 2)
      for (int k = 0; k < w; k++)
        s[k] += s[k + w];
    total = r0 == 0 ? s[0] : total + s[0];
  }
  return total;
}

START_TEST(test_sum_order_is_fixed) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 15);
  /* (N, C, L) over N and L: runs of L, several per chunk, partial blocks
   * (L = 49, 144: DeepConvNet's and SimpleConvNet's bias gradients), runs
   * split by a chunk's end (L = 1000); and one long run (all axes). */
  const int64_t shapes[][3] = {{100, 3, 49}, {100, 2, 144}, {30, 2, 1000}, {1, 1, 100003}};
  for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
    const int64_t N = shapes[c][0], C = shapes[c][1], L = shapes[c][2];
    tg_tensor *x = filled(tape, shapes[c], 3, -1, 1);
    /* +2^60 then −2^60 32 elements later, in the same lane of 16 (or
     * of 8, or of 1): what that lane gets in between is lost, and how
     * much that is depends on the lanes. */
    for (int64_t i = 0; i < x->numel; i++) {
      int64_t at = i % (L < 1000 ? L : 1000);
      if (at == 3 || at == 35)
        x->data[i] = (tg_real)ldexp(at == 3 ? 1 : -1, 60);
    }
    tg_tensor *y = tg_sum(tape, x, (const int[]){0, 2}, 2, 0); /* (C,) */
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    for (int64_t j = 0; j < C; j++) {
      tg_real want = (tg_real)spec_sum(x->data + j * L, N, L, C * L);
      ck_assert_msg(memcmp(&y->data[j], &want, sizeof want) == 0,
                    "sum of %s over (0, 2): element %lld is %.17g, the documented order gives "
                    "%.17g",
                    TG_SHAPE(x), (long long)j, tg_at(y, j), (double)want);
    }
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_scalar_and_keepdims_all) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *s = tg_scalar(tape, 2.5);
  tg_tensor *y = tg_sum(tape, s, NULL, 0, 0);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(y->ndim, 0);
  ck_assert(tg_at(y, 0) == 2.5);
  ck_assert(tg_at(tg_max(tape, s, NULL, 0, 1), 0) == 2.5);

  tg_tensor *x = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 4, 5, 6});
  y = tg_mean(tape, x, NULL, 0, 1);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(y->ndim, 2);
  ck_assert_int_eq(y->shape[0], 1);
  ck_assert_int_eq(y->shape[1], 1);
  ck_assert(tg_at(y, 0) == 3.5);
  y = tg_sum(tape, x, NULL, 0, 0);
  ck_assert_int_eq(y->ndim, 0);
  ck_assert(tg_at(y, 0) == 21);
  /* By hand: rows and columns. */
  tu_assert_values(tg_sum(tape, x, (int[]){1}, 1, 0), ((double[]){6, 15}), 0);
  tu_assert_values(tg_sum(tape, x, (int[]){0}, 1, 0), ((double[]){5, 7, 9}), 0);
  tu_assert_values(tg_max(tape, x, (int[]){-2}, 1, 0), ((double[]){4, 5, 6}), 0);
  tg_tape_free(tape);
}
END_TEST

/* NumPy's rules: a NaN in a group makes max NaN and argmax points at it. */
START_TEST(test_max_nan) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, NAN, 3, 4, 5, NAN});
  tg_tensor *m = tg_max(tape, x, (int[]){1}, 1, 0);
  ck_assert(isnan(tg_at(m, 0)) && isnan(tg_at(m, 1)));
  tu_assert_values(tg_argmax(tape, x, 1), ((double[]){1, 2}), 0);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * max_mask and argmax: the first maximum in row-major order */

START_TEST(test_tie_rule_by_hand) {
  tg_tape *tape = tg_tape_new();
  /* (2, 3):  1 3 3
   *          2 2 0 */
  tg_tensor *x = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 3, 3, 2, 2, 0});
  tu_assert_values(tg_max_mask(tape, x, (int[]){1}, 1), ((double[]){0, 1, 0, 1, 0, 0}), 0);
  tu_assert_values(tg_max_mask(tape, x, (int[]){0}, 1), ((double[]){0, 1, 1, 1, 0, 0}), 0);
  tu_assert_values(tg_max_mask(tape, x, NULL, 0), ((double[]){0, 1, 0, 0, 0, 0}), 0);
  tu_assert_values(tg_argmax(tape, x, 1), ((double[]){1, 0}), 0);
  tu_assert_values(tg_argmax(tape, x, -2), ((double[]){1, 0, 0}), 0);

  /* A column of equal values: the first row wins. */
  tg_tensor *c = tg_from_values(tape, (int64_t[]){3, 2}, 2, (double[]){7, 1, 7, 2, 7, 2});
  tu_assert_values(tg_max_mask(tape, c, (int[]){0}, 1), ((double[]){1, 0, 0, 1, 0, 0}), 0);
  tu_assert_values(tg_argmax(tape, c, 0), ((double[]){0, 1}), 0);
  tg_tape_free(tape);
}
END_TEST

/* Small integer values: many ties. max_mask and argmax against the loop. */
START_TEST(test_mask_and_argmax_against_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 15);
  int64_t shapes[][4] = {{2, 3, 4, 1}, {3, 1, 5, 2}, {70, 1, 1, 1}};
  int nds[] = {3, 4, 1};
  for (int s = 0; s < 3; s++) {
    tg_tensor *x = tg_empty(tape, shapes[s], nds[s]);
    for (int64_t i = 0; i < x->numel; i++)
      x->data[i] = (tg_real)tg_rng_below(tg_tape_rng(tape), 3);
    int nd = x->ndim;
    for (unsigned mask = 1; mask < (1u << nd); mask++) {
      int axes[4], n = 0;
      for (int d = 0; d < nd; d++)
        if (mask & (1u << d))
          axes[n++] = d;
      tg_tensor *m = tg_max_mask(tape, x, axes, n);
      ck_assert_msg(m != NULL, "%s", tg_tape_error(tape));
      int64_t *first = malloc((size_t)x->numel * sizeof *first);
      int64_t nout = ref_reduce(x, mask, MAX, NULL, first);
      double *want = calloc((size_t)x->numel, sizeof *want);
      for (int64_t j = 0; j < nout; j++)
        want[first[j]] = 1;
      tu_assert_values(m, want, 0);
      if (n == 1) {
        tg_tensor *a = tg_argmax(tape, x, axes[0] - nd); /* negative axis */
        int64_t stride = 1;
        for (int d = axes[0] + 1; d < nd; d++)
          stride *= x->shape[d];
        ck_assert_int_eq(a->numel, nout);
        for (int64_t j = 0; j < nout; j++)
          ck_assert_msg(tg_at(a, j) == (double)((first[j] / stride) % x->shape[axes[0]]),
                        "argmax of %s along %d: element %lld is %g", TG_SHAPE(x), axes[0],
                        (long long)j, tg_at(a, j));
      }
      free(want);
      free(first);
    }
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_constants_not_recorded) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 16);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){3, 4}, 2, -1, 1);
  tg_tensor *m = tg_max_mask(tape, x, (int[]){1}, 1);
  tg_tensor *a = tg_argmax(tape, x, 0);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(a);
  ck_assert_int_eq(m->node, -1);
  ck_assert_int_eq(a->node, -1);
  ck_assert(!(m->flags & TG_REQUIRES_GRAD) && !(a->flags & TG_REQUIRES_GRAD));
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  /* No input needs a gradient: nothing recorded either. */
  tg_tensor *c = tg_full(tape, (int64_t[]){3, 4}, 2, 1);
  tg_tensor *s = tg_sum(tape, c, NULL, 0, 0);
  ck_assert(!(s->flags & TG_REQUIRES_GRAD));
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  /* Grad mode off: nothing recorded. */
  tg_tape_set_grad(tape, 0);
  ck_assert_int_eq(tg_max(tape, x, NULL, 0, 0)->node, -1);
  tg_tape_set_grad(tape, 1);
  ck_assert_int_ge(tg_sum(tape, x, NULL, 0, 0)->node, 0);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * sum_to */

static const struct sum_to_case {
  int64_t shape[3];
  int nd;
} sum_to_cases[] = {
    {{3, 4}, 2}, {{1, 4}, 2},    {{2, 1, 4}, 3}, {{4}, 1}, {{1, 1, 1}, 3},
    {{0}, 0},    {{2, 3, 1}, 3}, {{3, 1}, 2},    {{1}, 1},
};

START_TEST(test_sum_to_patterns) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 17);
  tg_tensor *g = filled(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
  for (size_t c = 0; c < sizeof sum_to_cases / sizeof sum_to_cases[0]; c++) {
    const struct sum_to_case *sc = &sum_to_cases[c];
    tg_tensor *y = tg_sum_to(tape, g, sc->shape, sc->nd);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    char want_s[160];
    tg_shape_str(sc->shape, sc->nd, want_s, sizeof want_s);
    ck_assert_msg(strcmp(TG_SHAPE(y), want_s) == 0, "sum_to %s: got %s", want_s, TG_SHAPE(y));
    /* Reference: each element of g goes to its broadcast source. */
    double want[24] = {0};
    int lead = 3 - sc->nd;
    for (int64_t i = 0; i < 24; i++) {
      int64_t idx[3] = {i / 12, (i / 4) % 3, i % 4}, j = 0;
      for (int d = lead; d < 3; d++)
        j = j * sc->shape[d - lead] + (sc->shape[d - lead] == 1 ? 0 : idx[d]);
      want[j] += tg_at(g, i);
    }
    tu_assert_values(y, want, TU_VALUE_TOL);
  }
  /* Same shape: g itself. Leading 1s only: a view of g. */
  ck_assert_ptr_eq(tg_sum_to(tape, g, (int64_t[]){2, 3, 4}, 3), g);
  tg_tensor *g1 = filled(tape, (int64_t[]){1, 3, 4}, 3, -1, 1);
  tg_tensor *v = tg_sum_to(tape, g1, (int64_t[]){3, 4}, 2);
  ck_assert_ptr_eq(v->data, g1->data);
  ck_assert_int_eq(v->ndim, 2);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Gradients (sum and sum_to need no other op family) */

struct red_ctx {
  int op;
  int axes[6];
  int naxes;
  int keep;
};

static tg_tensor *red_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct red_ctx *c = ctx;
  return run_op(tape, c->op, in[0], c->axes, c->naxes, c->keep);
}

static const struct red_ctx grad_cases[] = {
    {0, {0}, 0, 0},  {0, {1}, 1, 0},    {0, {0, 2}, 2, 1},
    {0, {-1}, 1, 1}, {0, {2, 0}, 2, 0}, {0, {0, 1, 2}, 3, 0},
};

START_TEST(test_sum_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 18);
  for (size_t c = 0; c < sizeof grad_cases / sizeof grad_cases[0]; c++) {
    tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
    struct red_ctx ctx = grad_cases[c];
    ctx.op = SUM;
    tu_assert_gradcheck(tape, red_fn, &ctx, 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

struct sum_to_ctx {
  const int64_t *shape;
  int nd;
};

static tg_tensor *sum_to_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct sum_to_ctx *c = ctx;
  return tg_sum_to(tape, in[0], c->shape, c->nd);
}

START_TEST(test_sum_to_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 19);
  for (size_t c = 0; c < sizeof sum_to_cases / sizeof sum_to_cases[0]; c++) {
    tg_tensor *g = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
    struct sum_to_ctx ctx = {sum_to_cases[c].shape, sum_to_cases[c].nd};
    tu_assert_gradcheck(tape, sum_to_fn, &ctx, 1, &g, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors: every message names the op and the shape */

START_TEST(test_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_tensor_new((int64_t[]){2, 3, 4}, 3, 0, "x", NULL);
  for (int op = SUM; op <= MAX; op++) {
    ck_assert_ptr_null(run_op(tape, op, x, (int[]){3}, 1, 0));
    tu_assert_error(tape, op_names[op], "axis 3", "out of range", "(2, 3, 4)", "[3]");
    tg_tape_reset(tape);
    ck_assert_ptr_null(run_op(tape, op, x, (int[]){0, -4}, 2, 0));
    tu_assert_error(tape, op_names[op], "axis -4", "(2, 3, 4)", "[0, -4]");
    tg_tape_reset(tape);
    ck_assert_ptr_null(run_op(tape, op, x, (int[]){1, -2}, 2, 1));
    tu_assert_error(tape, op_names[op], "repeats", "[1, -2]", "(2, 3, 4)");
    tg_tape_reset(tape);
    ck_assert_ptr_null(run_op(tape, op, x, NULL, 2, 0));
    tu_assert_error(tape, op_names[op], "axes is NULL", "(2, 3, 4)");
    tg_tape_reset(tape);
    ck_assert_ptr_null(run_op(tape, op, x, NULL, -1, 0));
    tu_assert_error(tape, op_names[op], "naxes is -1", "(2, 3, 4)");
    tg_tape_reset(tape);
    ck_assert_ptr_null(run_op(tape, op, NULL, NULL, 0, 0));
    tu_assert_error(tape, op_names[op], "input 0 is NULL");
    ck_assert_int_eq(tg_tape_status(tape), TG_ERR_NULL);
    tg_tape_reset(tape);
  }
  ck_assert_ptr_null(tg_max_mask(tape, x, (int[]){2, 2}, 2));
  tu_assert_error(tape, "max_mask (op #", "repeats", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_argmax(tape, x, 3));
  tu_assert_error(tape, "argmax (op #", "axis 3", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_argmax(tape, tg_scalar(tape, 1), 0));
  tu_assert_error(tape, "argmax", "axis 0", "()");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_argmax(tape, NULL, 0));
  tu_assert_error(tape, "argmax", "NULL");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_sum_to(tape, x, (int64_t[]){3, 3}, 2));
  tu_assert_error(tape, "sum_to (op #", "(3, 3)", "(2, 3, 4)", "does not broadcast");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_sum_to(tape, x, (int64_t[]){1, 2, 3, 4}, 4));
  tu_assert_error(tape, "sum_to", "(1, 2, 3, 4)", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_sum_to(tape, x, (int64_t[]){2, 0, 4}, 3));
  tu_assert_error(tape, "sum_to", "(2, 0, 4)", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_sum_to(tape, x, NULL, 2));
  tu_assert_error(tape, "sum_to", "NULL", "(2, 3, 4)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_sum_to(tape, NULL, (int64_t[]){1}, 1));
  tu_assert_error(tape, "sum_to", "NULL");
  tg_tape_reset(tape);

  /* A failed tape stays failed: the next op returns NULL at once and the
   * first message is kept. */
  ck_assert_ptr_null(tg_sum(tape, x, (int[]){5}, 1, 0));
  ck_assert_ptr_null(tg_sum(tape, x, NULL, 0, 0));
  tu_assert_error(tape, "sum", "axis 5");
  tg_tensor_free(x);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Needs ops/binary.c: mean's backward (mul_scalar), max's (mul), double
 * backward (mul) */

START_TEST(test_mean_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 20);
  for (size_t c = 0; c < sizeof grad_cases / sizeof grad_cases[0]; c++) {
    tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 4}, 3, -1, 1);
    struct red_ctx ctx = grad_cases[c];
    ctx.op = MEAN;
    tu_assert_gradcheck(tape, red_fn, &ctx, 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* Distinct positive values 0.1 apart (shuffled): far from ties at
 * eps = 1e-6, and so are their squares. */
static tg_tensor *distinct_leaf(tg_tape *tape, const int64_t *shape, int nd) {
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, shape, nd));
  for (int64_t i = 0; i < x->numel; i++)
    x->data[i] = (tg_real)(0.5 + 0.1 * (double)i);
  for (int64_t i = x->numel - 1; i > 0; i--) {
    int64_t j = (int64_t)tg_rng_below(tg_tape_rng(tape), (uint64_t)i + 1);
    tg_real t = x->data[i];
    x->data[i] = x->data[j];
    x->data[j] = t;
  }
  return x;
}

START_TEST(test_max_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 21);
  for (size_t c = 0; c < sizeof grad_cases / sizeof grad_cases[0]; c++) {
    tg_tensor *x = distinct_leaf(tape, (int64_t[]){2, 3, 4}, 3);
    struct red_ctx ctx = grad_cases[c];
    ctx.op = MAX;
    tu_assert_gradcheck(tape, red_fn, &ctx, 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* With ties the gradient goes to the first maximum only, whole. */
START_TEST(test_max_tie_gradient_by_hand) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 3, 3, 2, 2, 0}));
  tg_tensor *y = tg_max(tape, x, (int[]){1}, 1, 0);
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){10, 20});
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_OK);
  tu_assert_values(x->grad, ((double[]){0, 10, 0, 20, 0, 0}), 0);

  tg_tensor *z = tg_requires_grad(tape, tg_full(tape, (int64_t[]){2, 2}, 2, 5));
  ck_assert_int_eq(tg_backward(tape, tg_max(tape, z, NULL, 0, 0), NULL), TG_OK);
  tu_assert_values(z->grad, ((double[]){1, 0, 0, 0}), 0);
  tg_tape_free(tape);
}
END_TEST

/* Second derivatives through the reductions' backward rules: the gradient
 * of L(x) = Σ_j d_j · op_j(x ⊙ x), itself differentiated by gradcheck. */
static tg_tensor *grad_of_reduced_square(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const struct red_ctx *c = ctx;
  tg_tensor *x = in[0];
  int was = tg_tape_set_grad(tape, 1); /* gradcheck evaluates with grad off */
  tg_tensor *y = run_op(tape, c->op, tg_mul(tape, x, x), c->axes, c->naxes, c->keep);
  tg_tensor *g = tu_weighted_grad(tape, y, x, 0.25);
  tg_tape_set_grad(tape, was);
  return g;
}

START_TEST(test_double_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 22);
  struct red_ctx cases[] = {{SUM, {1}, 1, 0}, {MEAN, {0, 2}, 2, 1}, {MAX, {-1}, 1, 0}};
  for (int c = 0; c < 3; c++) {
    tg_tensor *x = distinct_leaf(tape, (int64_t[]){2, 3, 4}, 3);
    tu_assert_gradcheck(tape, grad_of_reduced_square, &cases[c], 1, &x, TU_GRAD_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("reduce");
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_every_axis_subset_3d);
  tcase_add_test(fwd, test_every_axis_subset_6d);
  tcase_add_test(fwd, test_large_layouts);
  tcase_add_test(fwd, test_thread_count_independent);
  tcase_add_test(fwd, test_sum_order_is_fixed);
  tcase_add_test(fwd, test_scalar_and_keepdims_all);
  tcase_add_test(fwd, test_max_nan);
  tcase_add_test(fwd, test_tie_rule_by_hand);
  tcase_add_test(fwd, test_mask_and_argmax_against_loop);
  tcase_add_test(fwd, test_constants_not_recorded);
  tcase_add_test(fwd, test_sum_to_patterns);
  suite_add_tcase(s, fwd);
  TCase *grad = tcase_create("gradient");
  tcase_add_test(grad, test_sum_gradcheck);
  tcase_add_test(grad, test_sum_to_gradcheck);
  suite_add_tcase(s, grad);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_errors);
  suite_add_tcase(s, err);
  TCase *bin = tcase_create("needs_binary");
  tcase_add_test(bin, test_mean_gradcheck);
  tcase_add_test(bin, test_max_gradcheck);
  tcase_add_test(bin, test_max_tie_gradient_by_hand);
  tcase_add_test(bin, test_double_backward);
  suite_add_tcase(s, bin);
  return s;
}

TU_MAIN(make_suite)
