/* test_reduce_small.c — the reductions' kernels for small groups
 * (ops/reduce_small.c: pooling windows, short last axes): sum, mean, max,
 * max_mask and max_scatter against a plain loop, NaNs, and max_scatter's
 * gradient. The tests that need ops/binary.c (max_scatter's composite
 * twin and gradient) are in the "needs_binary" case, as in test_reduce.c.
 */
#include <omp.h>

#include "reduce_test_helpers.h" /* SUM, MEAN, MAX, run_op, filled */
#include "testutil.h"

/* ------------------------------------------------------------------------
 * Small groups (at most 64 elements: pooling windows, short last axes)
 * take their own kernels. x is (A, R, B, L) reduced over axes 1 and 3 (a
 * window of R rows of L, or the last axis when R == 1), against a plain
 * loop, to the bit for groups the small kernels take (sums in double, in
 * row-major order, as the loop), within rounding for a larger one: with
 * ties (integers in [0, 3)), lengths 2-16, odd sizes, tiles along a long
 * kept axis (B >= 32) and across short ones, 2×2 windows side by side in
 * rows shorter and longer than a vector, and a size that runs threaded, at
 * 1 and 2 threads. */
static const int64_t small_cases[][4] = {
    {37, 1, 1, 2}, {37, 1, 1, 3}, {5, 1, 1, 4},  {5, 1, 1, 7},     {9, 1, 1, 10},
    {3, 1, 1, 16}, {7, 2, 5, 2},  {9, 2, 13, 2}, {3, 3, 40, 3},    {4, 3, 7, 3},
    {2, 4, 33, 4}, {1, 1, 1, 5},  {6, 4, 1, 4},  {3000, 2, 12, 2}, {3, 5, 4, 20}};

START_TEST(test_small_groups_against_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 31);
  const int axes[2] = {1, 3};
  for (size_t c = 0; c < sizeof small_cases / sizeof small_cases[0]; c++) {
    const int64_t A = small_cases[c][0], R = small_cases[c][1], B = small_cases[c][2],
                  L = small_cases[c][3];
    /* Groups of at most 64 take the small kernels, which add in the
     * loop's order; larger ones the general sums (16 lanes). */
    const int small = R * L <= 64;
    for (int ties = 0; ties < 2; ties++) {
      tg_tensor *x = filled(tape, small_cases[c], 4, 0, 3);
      for (int64_t i = 0; ties && i < x->numel; i++)
        x->data[i] = (tg_real)floor(x->data[i]);
      tg_tensor *dy = filled(tape, (int64_t[]){A, B}, 2, 1, 2);
      for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        tg_tensor *y[3], *mask = tg_max_mask(tape, x, axes, 2);
        tg_tensor *gs = tg_max_scatter(tape, x, dy, axes, 2);
        tg_tensor *gc = tg_max_scatter_composite(tape, x, dy, axes, 2);
        for (int op = SUM; op <= MAX; op++)
          y[op] = run_op(tape, op, x, axes, 2, 0);
        ck_assert_msg(y[MAX] && mask && gs && gc, "%s", tg_tape_error(tape));
        /* The first output and the first element of x that differ from
         * the loop (one assertion each after it: Check records every
         * passing assertion with a write()). */
        int64_t bad_a = -1, bad_b = 0, bad_i = -1, bad_first = 0;
        int bad_op = SUM;
        double bad_got = 0, bad_want = 0;
        for (int64_t a = 0; a < A && bad_a < 0 && bad_i < 0; a++)
          for (int64_t b = 0; b < B && bad_a < 0 && bad_i < 0; b++) {
            double s = 0, m = 0;
            int64_t first = -1;
            for (int64_t r = 0; r < R; r++)
              for (int64_t l = 0; l < L; l++) {
                int64_t i = ((a * R + r) * B + b) * L + l;
                s += x->data[i];
                if (first < 0 || x->data[i] > m)
                  m = x->data[i], first = i;
              }
            const double want[3] = {s, s / (double)(R * L), m};
            for (int op = SUM; op <= MAX; op++)
              if (bad_a < 0 &&
                  !(small ? tg_at(y[op], a * B + b) == (double)(tg_real)want[op]
                          : tu_rel(tg_at(y[op], a * B + b), want[op]) <= TU_VALUE_TOL)) {
                bad_a = a, bad_b = b, bad_op = op;
                bad_got = tg_at(y[op], a * B + b), bad_want = want[op];
              }
            for (int64_t r = 0; r < R; r++)
              for (int64_t l = 0; l < L; l++) {
                int64_t i = ((a * R + r) * B + b) * L + l;
                double g = i == first ? dy->data[a * B + b] : 0;
                if (bad_i < 0 &&
                    !(tg_at(mask, i) == (i == first) && tg_at(gs, i) == g && tg_at(gc, i) == g))
                  bad_i = i, bad_first = first;
              }
          }
        ck_assert_msg(bad_a < 0, "%s of %s, %d threads: output (%lld, %lld) is %.17g, loop %.17g",
                      op_names[bad_op], TG_SHAPE(x), threads, (long long)bad_a, (long long)bad_b,
                      bad_got, bad_want);
        ck_assert_msg(bad_i < 0,
                      "%s (ties %d, %d threads): x[%lld]: mask %g, scatter %g, "
                      "composite %g; the first maximum is x[%lld]",
                      TG_SHAPE(x), ties, threads, (long long)bad_i, tg_at(mask, bad_i),
                      tg_at(gs, bad_i), tg_at(gc, bad_i), (long long)bad_first);
      }
      tg_tape_reset(tape);
    }
  }
  tg_tape_free(tape);
}
END_TEST

/* A NaN anywhere in a short group wins, the first one if several. */
START_TEST(test_small_group_nan) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = filled(tape, (int64_t[]){40, 4}, 2, 0, 1);
  x->data[4 * 3 + 2] = NAN;
  x->data[4 * 7 + 0] = NAN;
  x->data[4 * 7 + 3] = NAN;
  tg_tensor *m = tg_max(tape, x, (int[]){1}, 1, 0);
  tg_tensor *k = tg_max_mask(tape, x, (int[]){1}, 1);
  ck_assert(m && k && isnan(tg_at(m, 3)) && isnan(tg_at(m, 7)) && !isnan(tg_at(m, 4)));
  ck_assert(tg_at(k, 4 * 3 + 2) == 1 && tg_at(k, 4 * 7) == 1 && tg_at(k, 4 * 7 + 3) == 0);
  tg_tape_free(tape);
}
END_TEST

/* max_scatter's own gradient (to dy): a gradcheck against its definition. */
struct scatter_ctx {
  tg_tensor *x;
};
static tg_tensor *scatter_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return tg_max_scatter(tape, ((struct scatter_ctx *)ctx)->x, in[0], (int[]){1, 3}, 2);
}

START_TEST(test_max_scatter_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 32);
  struct scatter_ctx ctx = {filled(tape, (int64_t[]){3, 2, 5, 2}, 4, 0, 1)};
  tg_tensor *dy = tu_leaf(tape, (int64_t[]){3, 5}, 2, 0.5, 1.5);
  tu_assert_gradcheck(tape, scatter_fn, &ctx, 1, &dy, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("reduce_small");
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_small_group_nan);
  suite_add_tcase(s, fwd);
  TCase *bin = tcase_create("needs_binary");
  tcase_add_test(bin, test_small_groups_against_loop);
  tcase_add_test(bin, test_max_scatter_gradcheck);
  suite_add_tcase(s, bin);
  return s;
}

TU_MAIN(make_suite)
