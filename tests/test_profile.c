/* test_profile.c — the op profiler (tape.h): the calls and bytes of a
 * small graph against counts made by hand, forward and backward; nested
 * ops counted once and timed as self time; times non-negative and within
 * the wall time of the passes they cover; figures that add up over steps,
 * stop with profiling off and clear on reset; the table; a NULL tape.
 *
 * The bytes by hand: every op reads its inputs and writes its output once
 * (a view moves nothing), S = sizeof(tg_real) bytes an element; a
 * backward rule's bytes are those of the ops it runs, read off the rules
 * (exp: gy·y; mul: gy·b and gy·a; sum: gy reshaped, then broadcast;
 * matmul: gy·Wᵀ and xᵀ·gy, each added straight into the leaf's gradient
 * buffer, which it reads and writes).
 */
#include <time.h>

#include "testutil.h"

#define S ((int64_t)sizeof(tg_real))

static double wall_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The row of op kind `name`, or a zeroed one named NULL. */
static tg_op_profile row_named(const tg_tape *tape, const char *name) {
  tg_op_profile rows[64];
  int n = tg_tape_get_profile(tape, rows, 64);
  ck_assert_int_le(n, 64);
  for (int i = 0; i < n; i++)
    if (strcmp(rows[i].name, name) == 0)
      return rows[i];
  return (tg_op_profile){0};
}

static void assert_row(const tg_tape *tape, const char *name, int64_t calls, int64_t fwd_bytes,
                       int64_t bw_calls, int64_t bw_bytes) {
  tg_op_profile r = row_named(tape, name);
  ck_assert_msg(r.name, "no row for %s", name);
  ck_assert_msg(r.calls == calls && r.fwd_bytes == fwd_bytes && r.bw_calls == bw_calls &&
                    r.bw_bytes == bw_bytes,
                "%s: calls %lld fwd bytes %lld bw calls %lld bw bytes %lld, want %lld %lld %lld "
                "%lld",
                name, (long long)r.calls, (long long)r.fwd_bytes, (long long)r.bw_calls,
                (long long)r.bw_bytes, (long long)calls, (long long)fwd_bytes, (long long)bw_calls,
                (long long)bw_bytes);
  ck_assert(r.fwd_s >= 0 && r.bw_s >= 0);
}

/* The graphs' parameters, x (2, 3) and W (3, 4), uniform in ±0.5. */
static void params(tg_tape *tape, tg_tensor **x, tg_tensor **W) {
  *x = tg_tensor_new((int64_t[]){2, 3}, 2, 1, "x", NULL);
  *W = tg_tensor_new((int64_t[]){3, 4}, 2, 1, "W", NULL);
  ck_assert(tape && *x && *W);
  tu_fill_uniform(*x, tg_tape_rng(tape), -0.5, 0.5);
  tu_fill_uniform(*W, tg_tape_rng(tape), -0.5, 0.5);
}

/* Sums of the rows' forward and backward seconds. */
static void row_sums(const tg_tape *tape, double *fwd, double *bw) {
  tg_op_profile rows[64];
  int n = tg_tape_get_profile(tape, rows, 64);
  *fwd = *bw = 0;
  for (int i = 0; i < n; i++) {
    ck_assert(rows[i].fwd_s >= 0 && rows[i].bw_s >= 0);
    *fwd += rows[i].fwd_s, *bw += rows[i].bw_s;
  }
}

/* One step of s = sum(exp(x·W)²), with an unused reshape of x first.
 * Adds the wall time of its forward and backward to *wf and *wb. */
static void step(tg_tape *tape, tg_tensor *x, tg_tensor *W, double *wf, double *wb) {
  double t0 = wall_s();
  tg_tensor *r = tg_reshape(tape, x, (int64_t[]){3, 2}, 2);    /* (3, 2), a view */
  tg_tensor *e = tg_exp(tape, tg_matmul(tape, x, W));          /* (2, 4) */
  tg_tensor *s = tg_sum(tape, tg_mul(tape, e, e), NULL, 0, 0); /* () */
  double t1 = wall_s();
  ck_assert_msg(r && s && tg_backward(tape, s, NULL) == TG_OK, "%s", tg_tape_error(tape));
  double t2 = wall_s();
  *wf += t1 - t0, *wb += t2 - t1;
  tg_tape_reset(tape);
}

START_TEST(test_profile_counts_and_bytes_by_hand) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x, *W;
  params(tape, &x, &W);
  ck_assert_int_eq(tg_tape_set_profile(tape, 1), 0);
  double wf = 0, wb = 0;
  for (int k = 1; k <= 2; k++) { /* figures add up over steps and resets */
    step(tape, x, W, &wf, &wb);
    ck_assert_int_eq(tg_tape_get_profile(tape, NULL, 0), 6);
    /*                       calls fwd bytes          bw calls  bw bytes */
    assert_row(tape, "reshape", k, 0, 0, 0);
    assert_row(tape, "matmul", k, k * (6 + 12 + 8) * S, k,
               k * ((8 + 12 + 2 * 6) + (6 + 8 + 2 * 12)) * S);
    assert_row(tape, "exp", k, k * (8 + 8) * S, k, k * (8 + 8 + 8) * S);
    assert_row(tape, "mul", k, k * (8 + 8 + 8) * S, k, k * 2 * (8 + 8 + 8) * S);
    assert_row(tape, "sum", k, k * (8 + 1) * S, k, k * (0 + (1 + 8)) * S);
    /* e's two gradients summed (one sum of 8); x's and W's went into
     * their grad buffers in matmul's rule. */
    assert_row(tape, "accumulate", 0, 0, k, k * 3 * 8 * S);
  }
  double fwd, bw;
  row_sums(tape, &fwd, &bw);
  ck_assert_msg(fwd > 0 && fwd <= wf, "forward rows %g s, wall %g s", fwd, wf);
  ck_assert_msg(bw > 0 && bw <= wb, "backward rows %g s, wall %g s", bw, wb);

  /* Off: the figures stay and grow no more; reset clears them. */
  ck_assert_int_eq(tg_tape_set_profile(tape, 0), 1);
  step(tape, x, W, &wf, &wb);
  assert_row(tape, "matmul", 2, 2 * 26 * S, 2, 2 * 70 * S);
  tg_tape_profile_reset(tape);
  ck_assert_int_eq(tg_tape_get_profile(tape, NULL, 0), 0);
  tg_tape_free(tape);
  tg_tensor_free(x);
  tg_tensor_free(W);
}
END_TEST

/* A parameter whose gradient comes from a rule that returns it (exp's),
 * not one that adds it into the buffer itself: the engine adds it into
 * the buffer after the walk, one accumulate reading both and writing one
 * (3 x 6 elements); a parameter in a product (W) costs accumulate nothing. */
START_TEST(test_profile_leaf_sums) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x, *W;
  params(tape, &x, &W);
  tg_tape_set_profile(tape, 1);
  tg_tensor *s = tg_sum(tape, tg_matmul(tape, tg_exp(tape, x), W), NULL, 0, 0); /* () */
  ck_assert_msg(s && tg_backward(tape, s, NULL) == TG_OK, "%s", tg_tape_error(tape));
  /* matmul's rule: de = gy·Wᵀ returned, dW = eᵀ·gy added into W's
   * buffer, which it reads and writes. */
  assert_row(tape, "matmul", 1, (6 + 12 + 8) * S, 1, ((8 + 12 + 6) + (6 + 8 + 2 * 12)) * S);
  assert_row(tape, "accumulate", 0, 0, 1, 3 * 6 * S);
  tg_tape_free(tape);
  tg_tensor_free(x);
  tg_tensor_free(W);
}
END_TEST

/* matmul of a batch by a matrix is reshapes around a 2-D matmul, begun
 * under matmul's own name: one matmul call, timed once. */
START_TEST(test_profile_nested_ops_counted_once) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_profile(tape, 1);
  tg_tensor *a = tg_full(tape, (int64_t[]){2, 2, 3}, 3, 1); /* (2, 2, 3) */
  tg_tensor *b = tg_full(tape, (int64_t[]){3, 4}, 2, 1);    /* (3, 4) */
  double t0 = wall_s();
  tg_tensor *c = tg_matmul(tape, a, b); /* (2, 2, 4) */
  double t1 = wall_s();
  ck_assert_msg(c && c->ndim == 3, "%s", tg_tape_error(tape));
  assert_row(tape, "matmul", 1, (12 + 12 + 16) * S, 0, 0);
  ck_assert_int_eq(row_named(tape, "reshape").calls, 3); /* a, b and c reshaped */
  double fwd, bw;
  row_sums(tape, &fwd, &bw);
  ck_assert_msg(fwd > 0 && fwd <= t1 - t0 && bw == 0, "rows %g s, wall %g s", fwd, t1 - t0);
  tg_tape_free(tape);
}
END_TEST

/* An op whose forward runs other ops before it records (none of the
 * library's does yet): its row holds its own time only, so the rows'
 * sum stays within the wall time. Counting the nested exp in the outer
 * op too would double it: the exp does nearly all the work. */
static const tg_op op_outer = {"outer", 1, 0, NULL};

static tg_tensor *outer(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_outer, 1, &x))
    return NULL;
  tg_tensor *e = tg_exp(tape, tg_exp(tape, x)); /* x's shape */
  return e ? tg_op_record(tape, &op_outer, tg_view(tape, e, e->shape, e->ndim), 1, &x, NULL, 0)
           : NULL;
}

START_TEST(test_profile_self_time) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_profile(tape, 1);
  tg_tensor *x = tg_full(tape, (int64_t[]){50000}, 1, 0.5); /* (50000,): one thread */
  double t0 = wall_s();
  ck_assert(outer(tape, x));
  double t1 = wall_s(), fwd, bw;
  row_sums(tape, &fwd, &bw);
  assert_row(tape, "outer", 1, 0, 0, 0); /* its output is a view */
  assert_row(tape, "exp", 2, 2 * 2 * 50000 * S, 0, 0);
  ck_assert_msg(fwd <= t1 - t0, "rows %g s, wall %g s", fwd, t1 - t0);
  tg_tape_free(tape);
}
END_TEST

/* Ops begun but never recorded (detach, a failed op) leave frames that
 * must not swallow later ops' times. */
START_TEST(test_profile_abandoned_begins) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_profile(tape, 1);
  tg_tensor *x = tg_full(tape, (int64_t[]){2, 3}, 2, 1); /* (2, 3) */
  for (int i = 0; i < 100; i++)
    ck_assert(tg_detach(tape, x));
  ck_assert(tg_exp(tape, x));
  ck_assert(row_named(tape, "exp").fwd_s > 0);
  ck_assert(!tg_conv(tape, x, x, NULL, 1, 0)); /* fails after its begin */
  tg_tape_reset(tape);
  tg_tape_profile_reset(tape);
  x = tg_full(tape, (int64_t[]){2, 3}, 2, 1);
  double t0 = wall_s();
  ck_assert(tg_neg(tape, tg_exp(tape, x)));
  double t1 = wall_s(), fwd, bw;
  row_sums(tape, &fwd, &bw);
  ck_assert_int_eq(row_named(tape, "exp").calls, 1);
  ck_assert(row_named(tape, "exp").fwd_s > 0 && row_named(tape, "neg").fwd_s > 0);
  ck_assert_msg(fwd <= t1 - t0, "rows %g s, wall %g s", fwd, t1 - t0);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_profile_off_by_default) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_full(tape, (int64_t[]){4}, 1, 2); /* (4,) */
  ck_assert(tg_exp(tape, tg_mul(tape, x, x)));
  ck_assert_int_eq(tg_tape_get_profile(tape, NULL, 0), 0);
  ck_assert_int_eq(tg_tape_set_profile(tape, 1), 0);
  ck_assert_int_eq(tg_tape_set_profile(tape, 1), 1);
  tg_tape_free(tape);
}
END_TEST

/* The table: a header, one line per kind in tg_tape_get_profile's order
 * (longest total first), a total line whose counts are the rows'. */
START_TEST(test_profile_table) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x, *W;
  params(tape, &x, &W);
  tg_tape_set_profile(tape, 1);
  double wf = 0, wb = 0;
  step(tape, x, W, &wf, &wb);
  tg_op_profile rows[8];
  const int n = tg_tape_get_profile(tape, rows, 8);
  ck_assert_int_eq(n, 6);
  for (int i = 1; i < n; i++)
    ck_assert(rows[i - 1].fwd_s + rows[i - 1].bw_s >= rows[i].fwd_s + rows[i].bw_s);
  ck_assert_int_eq(tg_tape_get_profile(tape, rows, 2), 6); /* a short array: the count */

  FILE *f = tmpfile();
  ck_assert(f);
  ck_assert_int_eq(tg_tape_write_profile(tape, f), TG_OK);
  rewind(f);
  char line[256], name[64];
  ck_assert(fgets(line, sizeof line, f) && strncmp(line, "op ", 3) == 0);
  tg_tape_get_profile(tape, rows, 8);
  for (int i = 0; i < n; i++) {
    ck_assert(fgets(line, sizeof line, f));
    ck_assert(sscanf(line, "%63s", name) == 1);
    ck_assert_str_eq(name, rows[i].name);
  }
  long long calls, bw_calls;
  double fwd_ms, bw_ms;
  ck_assert(fgets(line, sizeof line, f));
  ck_assert_int_eq(sscanf(line, "%63s %lld %lf %lld %lf", name, &calls, &fwd_ms, &bw_calls, &bw_ms),
                   5);
  ck_assert_str_eq(name, "total");
  ck_assert_int_eq(calls, 5);    /* reshape, matmul, exp, mul, sum */
  ck_assert_int_eq(bw_calls, 5); /* four rules and one sum */
  ck_assert(!fgets(line, sizeof line, f));
  fclose(f);
  tg_tape_free(tape);
  tg_tensor_free(x);
  tg_tensor_free(W);
}
END_TEST

START_TEST(test_profile_null_tape) {
  ck_assert_int_eq(tg_tape_set_profile(NULL, 1), 0);
  ck_assert_int_eq(tg_tape_get_profile(NULL, NULL, 0), 0);
  tg_tape_profile_reset(NULL);
  ck_assert_int_eq(tg_tape_write_profile(NULL, stderr), TG_ERR_NULL);
  tg_tape *tape = tg_tape_new();
  ck_assert_int_eq(tg_tape_write_profile(tape, NULL), TG_ERR_NULL);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("profile");
  TCase *tc = tcase_create("profile");
  tcase_add_test(tc, test_profile_counts_and_bytes_by_hand);
  tcase_add_test(tc, test_profile_leaf_sums);
  tcase_add_test(tc, test_profile_nested_ops_counted_once);
  tcase_add_test(tc, test_profile_self_time);
  tcase_add_test(tc, test_profile_abandoned_begins);
  tcase_add_test(tc, test_profile_off_by_default);
  tcase_add_test(tc, test_profile_table);
  tcase_add_test(tc, test_profile_null_tape);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
