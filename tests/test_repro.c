/* test_repro.c — reproducibility and numerical robustness.
 *
 * DESIGN.md §8: one seeded generator drives init, shuffling and dropout,
 * so a run with the same seed and thread count is reproducible. Here the
 * book's MultiLayerNetExtend (Batch Norm, Dropout, weight decay, Adam) is
 * trained for a few steps on synthetic data twice with the same seed and
 * thread count, and its weights, buffers and optimizer state must be
 * bit-identical (memcmp). With 1 and with 2 OpenMP threads the results
 * must agree within rounding; whether they are in fact bit-identical is
 * printed ("repro: ...") for the record, not asserted.
 *
 * Robustness: softmax, log-softmax, cross-entropy and softmax-with-loss at
 * logits of ±1e4 give finite losses and gradients, checked in anomaly
 * mode (which would name any op producing NaN or Inf, forward or
 * backward), in both the float and double builds.
 *
 * OpenMP runs only inside the (forked) tests, never in main (testutil.h).
 */
#include "testutil.h"

#include <omp.h>

#include "model.h"
#include "optim.h"

#define BATCH 256 /* x is (256, 784): above the parallel thresholds */
#define STEPS 12

typedef struct run {
  tg_real *v; /* every value of params, buffers and optimizer state */
  size_t n;
  double loss;
} run;

/* Appends every value of a list to r. */
static void collect(run *r, const tg_params *p) {
  size_t add = (size_t)tg_params_numel(p);
  r->v = realloc(r->v, (r->n + add) * sizeof *r->v);
  for (int i = 0; i < p->n; i++) {
    memcpy(r->v + r->n, p->items[i]->data, (size_t)p->items[i]->numel * sizeof(tg_real));
    r->n += (size_t)p->items[i]->numel;
  }
}

static run train(int threads, uint64_t seed) {
  omp_set_num_threads(threads);
  tg_error err = {0};
  tg_model_config cfg;
  ck_assert_int_eq(tg_model_defaults("multi-layer-net", &cfg, &err), TG_OK);
  cfg.batchnorm = 1;
  cfg.dropout = 0.2;
  cfg.weight_decay = 0.01;
  tg_rng rng;
  tg_rng_seed(&rng, seed);
  tg_model *m = tg_model_new(&cfg, &rng, &err);
  ck_assert_msg(m != NULL, "%s", err.msg);
  tg_optim_config oc = tg_optim_defaults(TG_ADAM);
  tg_optim *opt = tg_optim_new(&oc, &m->params, &err);
  ck_assert_msg(opt != NULL, "%s", err.msg);

  /* Synthetic data from a generator of its own (the same in every run):
   * class c lights pixel block c, plus noise. */
  tg_rng drng;
  tg_rng_seed(&drng, 99);
  tg_tensor *x = tg_tensor_new((int64_t[]){BATCH, 784}, 2, 0, "x", &err);
  tg_tensor *t = tg_tensor_new((int64_t[]){BATCH}, 1, 0, "t", &err);
  ck_assert_ptr_nonnull(x);
  ck_assert_ptr_nonnull(t);
  for (int64_t i = 0; i < BATCH; i++) {
    int c = (int)(tg_rng_uniform(&drng) * 10);
    t->data[i] = (tg_real)c;
    for (int64_t j = 0; j < 784; j++)
      x->data[i * 784 + j] = (tg_real)(0.3 * tg_rng_uniform(&drng) + (j / 78 == c ? 0.7 : 0.0));
  }

  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, seed + 1);
  run r = {0};
  for (int s = 0; s < STEPS; s++) {
    tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
    ck_assert_msg(loss != NULL, "step %d: %s", s, tg_tape_error(tape));
    ck_assert_int_eq(tg_backward(tape, loss, NULL), TG_OK);
    r.loss = tg_at(loss, 0);
    tg_optim_step(opt);
    tg_tape_reset(tape);
  }
  collect(&r, &m->params);
  collect(&r, &m->buffers);
  collect(&r, &opt->state);
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_model_free(m);
  tg_tensor_free(x);
  tg_tensor_free(t);
  return r;
}

static void same_bits(int threads) {
  run a = train(threads, 7), b = train(threads, 7);
  ck_assert_uint_eq(a.n, b.n);
  ck_assert(isfinite(a.loss));
  size_t first = a.n;
  for (size_t i = 0; i < a.n && first == a.n; i++)
    if (memcmp(&a.v[i], &b.v[i], sizeof(tg_real)) != 0)
      first = i;
  ck_assert_msg(first == a.n, "%d threads, same seed: value %zu differs: %.9g vs %.9g", threads,
                first, first < a.n ? (double)a.v[first] : 0.0,
                first < a.n ? (double)b.v[first] : 0.0);
  free(a.v);
  free(b.v);
}

START_TEST(same_seed_same_threads_1) { same_bits(1); }
END_TEST

START_TEST(same_seed_same_threads_2) { same_bits(2); }
END_TEST

/* The seed matters (else the tests above prove nothing). */
START_TEST(other_seed_differs) {
  run a = train(1, 7), b = train(1, 8);
  ck_assert_uint_eq(a.n, b.n);
  ck_assert(memcmp(a.v, b.v, a.n * sizeof(tg_real)) != 0);
  free(a.v);
  free(b.v);
}
END_TEST

START_TEST(one_vs_two_threads) {
  run a = train(1, 7), b = train(2, 7);
  ck_assert_uint_eq(a.n, b.n);
  size_t ndiff = 0, worst_i = 0;
  double worst = 0;
  for (size_t i = 0; i < a.n; i++) {
    if (memcmp(&a.v[i], &b.v[i], sizeof(tg_real)) == 0)
      continue;
    ndiff++;
    double d = tu_rel(a.v[i], b.v[i]);
    if (!(d <= worst)) {
      worst = d;
      worst_i = i;
    }
  }
  printf("repro (%s build): 1 vs 2 threads after %d Adam steps: %s (%zu of %zu values differ, "
         "worst relative difference %.3g at value %zu; losses %.17g vs %.17g)\n",
         TG_REAL_NAME, STEPS, ndiff ? "NOT bit-identical" : "bit-identical", ndiff, a.n, worst,
         worst_i, a.loss, b.loss);
  fflush(stdout);
  /* Adam's steps are lr-sized whatever the gradient's scale, so rounding
   * differences stay near lr·(last bits); a real divergence is O(lr). */
  ck_assert_msg(worst <= (sizeof(tg_real) == 8 ? 1e-9 : 1e-4),
                "1 vs 2 threads: value %zu differs by %.3g (relative)", worst_i, worst);
  free(a.v);
  free(b.v);
}
END_TEST

/* ------------------------------------------------------------------------
 * ±1e4 logits */

static tg_tensor *huge_logits(tg_tape *tape) {
  /* (3, 4): a dominant class, a row of equal extremes, a row of mixed
   * signs whose label is the smallest logit. */
  const double v[] = {1e4, -1e4, 0, 1, -1e4, -1e4, -1e4, -1e4, 1e4, -1e4, 1e4, -5e3};
  return tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){3, 4}, 2, v));
}
static tg_tensor *labels(tg_tape *tape) {
  return tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, 2, 3});
}

static void assert_finite(tg_tape *tape, const tg_tensor *t, const char *what) {
  ck_assert_msg(t != NULL, "%s: %s", what, tg_tape_error(tape));
  for (int64_t i = 0; i < t->numel; i++)
    ck_assert_msg(isfinite(tg_at(t, i)), "%s: element %lld is %g", what, (long long)i, tg_at(t, i));
}

/* Runs loss(x), backward, and checks loss and x's gradient are finite. */
static void check_loss(int which) {
  static const char *const names[] = {"softmax_cross_entropy (labels)",
                                      "softmax_cross_entropy (one-hot)", "cross_entropy(softmax)",
                                      "sum(log_softmax)", "sum(softmax * w)"};
  tg_tape *tape = tg_tape_new();
  tg_tape_set_anomaly(tape, 1);
  for (int sign = -1; sign <= 1; sign += 2) {
    tg_tensor *x = huge_logits(tape);
    for (int64_t i = 0; i < x->numel; i++)
      x->data[i] *= (tg_real)sign;
    tg_tensor *t = labels(tape), *loss = NULL;
    switch (which) {
    case 0:
      loss = tg_softmax_cross_entropy(tape, x, t);
      break;
    case 1:
      loss = tg_softmax_cross_entropy(tape, x, tg_one_hot(tape, t, 4));
      break;
    case 2:
      loss = tg_cross_entropy(tape, tg_softmax(tape, x, -1), t);
      break;
    case 3:
      loss = tg_sum(tape, tg_log_softmax(tape, x, 1), NULL, 0, 0);
      break;
    default: {
      tg_tensor *w = tg_from_values(tape, (int64_t[]){4}, 1, (double[]){1, -2, 3, 0.5});
      loss = tg_sum(tape, tg_mul(tape, tg_softmax(tape, x, -1), w), NULL, 0, 0);
    }
    }
    assert_finite(tape, loss, names[which]);
    ck_assert_msg(tg_backward(tape, loss, NULL) == TG_OK, "%s: %s", names[which],
                  tg_tape_error(tape));
    assert_finite(tape, x->grad, names[which]);
    tg_tape_reset(tape);
    tg_tape_set_anomaly(tape, 1);
  }
  tg_tape_free(tape);
}

START_TEST(huge_logits_finite) { check_loss(_i); }
END_TEST

/* Values too: softmax-with-loss of row 0 (label 1, logit −1e4 against
 * 1e4) is 2e4 — the book's formula, not a clamp; its gradient is the
 * book's (softmax − t)/N. */
START_TEST(huge_logits_values) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = huge_logits(tape);
  tg_tensor *loss = tg_softmax_cross_entropy(tape, x, labels(tape));
  ck_assert_ptr_nonnull(loss);
  /* rows: 2e4, log 4 (all equal: label 2 gets 1/4), 1e4 + 5e3 + log 2 */
  double want = (2e4 + log(4.0) + (1.5e4 + log(2.0))) / 3;
  ck_assert_msg(fabs(tg_at(loss, 0) - want) <= 1e-6 * want, "loss %.10g, want %.10g",
                tg_at(loss, 0), want);
  ck_assert_int_eq(tg_backward(tape, loss, NULL), TG_OK);
  const double g[] = {1, -1, 0, 0, 0.25, 0.25, -0.75, 0.25, 0.5, 0, 0.5, -1};
  for (int i = 0; i < 12; i++)
    ck_assert_msg(fabs(tg_at(x->grad, i) - g[i] / 3) <= 1e-6, "grad %d: %.9g want %.9g", i,
                  tg_at(x->grad, i), g[i] / 3);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("repro");
  TCase *tc = tcase_create("training");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, same_seed_same_threads_1);
  tcase_add_test(tc, same_seed_same_threads_2);
  tcase_add_test(tc, other_seed_differs);
  tcase_add_test(tc, one_vs_two_threads);
  suite_add_tcase(s, tc);
  tc = tcase_create("robustness");
  tcase_add_loop_test(tc, huge_logits_finite, 0, 5);
  tcase_add_test(tc, huge_logits_values);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
