/* test_schedule.c — learning-rate schedules (optim/schedule.h): rates at
 * chosen updates against values worked out by hand in the comments, the
 * warm-up's ramp, bad configurations, names, and the optimizer's lr set.
 */
#include "testutil.h"

/* Rates are compared to 1e-12 relative: the hand values are exact
 * decimals or quoted to 17 digits. */
#define ck_rate(got, want)                                                                         \
  ck_assert_msg(fabs((got) - (want)) <= 1e-12 * fabs(want) + 1e-300, "rate %.17g, want %.17g",     \
                (double)(got), (double)(want))

START_TEST(test_constant) {
  tg_schedule s = tg_schedule_constant(0.1);
  /* No warm-up: lr itself, to the bit, at every update. */
  for (int64_t k = 0; k < 100; k += 7)
    ck_assert(tg_schedule_lr(&s, k, 10) == 0.1);
  /* A warm-up of 2 epochs at 10 updates per epoch: 20 updates of ramp,
   * update k at 0.1·(k+1)/20. */
  s.warmup = 2;
  ck_rate(tg_schedule_lr(&s, 0, 10), 0.005);
  ck_rate(tg_schedule_lr(&s, 9, 10), 0.05);
  ck_rate(tg_schedule_lr(&s, 18, 10), 0.095);
  ck_rate(tg_schedule_lr(&s, 19, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 100, 10), 0.1);
  /* A fractional warm-up: half an epoch of 3 updates is 1.5 updates; the
   * first at 0.1·1/1.5, the second already at the full rate. */
  s.warmup = 0.5;
  ck_rate(tg_schedule_lr(&s, 0, 3), 0.1 / 1.5);
  ck_rate(tg_schedule_lr(&s, 1, 3), 0.1);
}
END_TEST

START_TEST(test_step) {
  tg_schedule s = tg_schedule_constant(0.1);
  s.kind = TG_SCHEDULE_STEP;
  s.step_size = 3;
  s.gamma = 0.5;
  /* 10 updates per epoch: update 29 is at t = 2.9 (no decay yet), 30 at
   * t = 3 (one halving), 60 at 6 (two), 95 at 9.5 (three). */
  ck_rate(tg_schedule_lr(&s, 0, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 29, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 30, 10), 0.05);
  ck_rate(tg_schedule_lr(&s, 59, 10), 0.05);
  ck_rate(tg_schedule_lr(&s, 60, 10), 0.025);
  ck_rate(tg_schedule_lr(&s, 95, 10), 0.0125);
  /* Warm-up of 1 epoch in front, decay by 10 every 2 epochs after it:
   * update 4 ramps (0.1·5/10), 10 starts the schedule at u = 0, 29 is
   * at u = 1.9, 30 at u = 2 (one decay). */
  s.warmup = 1;
  s.step_size = 2;
  s.gamma = 0.1;
  ck_rate(tg_schedule_lr(&s, 4, 10), 0.05);
  ck_rate(tg_schedule_lr(&s, 10, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 29, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 30, 10), 0.01);
}
END_TEST

START_TEST(test_cosine) {
  tg_schedule s = tg_schedule_constant(0.1);
  s.kind = TG_SCHEDULE_COSINE;
  s.epochs = 4;
  /* One update per epoch, over 4 epochs: 0.1·½(1 + cos(πk/4)).
   * cos(π/4) = 0.70710678118654752. */
  ck_rate(tg_schedule_lr(&s, 0, 1), 0.1);
  ck_rate(tg_schedule_lr(&s, 1, 1), 0.085355339059327376);
  ck_rate(tg_schedule_lr(&s, 2, 1), 0.05);
  ck_rate(tg_schedule_lr(&s, 3, 1), 0.014644660940672624);
  ck_assert(fabs(tg_schedule_lr(&s, 4, 1)) < 1e-18); /* the end: 0 */
  ck_assert(fabs(tg_schedule_lr(&s, 9, 1)) < 1e-18); /* and after it */
  /* 12 epochs, 2 of warm-up, 10 updates per epoch: the cosine spans
   * u in [0, 10]. Update 20: u = 0; 45: u = 2.5 (a quarter); 70: u = 5
   * (half); 119: u = 9.9, 0.05·(1 − cos(0.01π)) with
   * cos(0.01π) = 1 − 0.000493480220 + 0.0000000406 = 0.99950656036. */
  s.epochs = 12;
  s.warmup = 2;
  ck_rate(tg_schedule_lr(&s, 0, 10), 0.005);
  ck_rate(tg_schedule_lr(&s, 20, 10), 0.1);
  ck_rate(tg_schedule_lr(&s, 45, 10), 0.085355339059327376);
  ck_rate(tg_schedule_lr(&s, 70, 10), 0.05);
  double r = tg_schedule_lr(&s, 119, 10);
  ck_assert_msg(fabs(r - 0.05 * (1 - 0.99950656036)) < 1e-12, "%.17g", r);
}
END_TEST

/* check_bad: s is refused, and the message names `field`. */
static void check_bad(const tg_schedule *s, const char *field) {
  tg_error err = {0};
  ck_assert_int_eq(tg_schedule_check(s, &err), TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, field), "'%s' does not name %s", err.msg, field);
}

START_TEST(test_bad_configs) {
  tg_schedule ok = tg_schedule_constant(0.1), s;
  tg_error err = {0};
  ck_assert_int_eq(tg_schedule_check(&ok, &err), TG_OK);
  s = ok, s.lr = 0, check_bad(&s, "lr");
  s = ok, s.lr = NAN, check_bad(&s, "lr");
  s = ok, s.warmup = -1, check_bad(&s, "warmup");
  s = ok, s.warmup = INFINITY, check_bad(&s, "warmup");
  s = ok, s.kind = TG_SCHEDULE_STEP, s.gamma = 0, check_bad(&s, "gamma");
  s = ok, s.kind = TG_SCHEDULE_STEP, s.gamma = -0.5, check_bad(&s, "gamma");
  s = ok, s.kind = TG_SCHEDULE_STEP, s.step_size = 0, check_bad(&s, "step_size");
  s = ok, s.kind = TG_SCHEDULE_COSINE, s.epochs = 2, s.warmup = 2, check_bad(&s, "cosine");
  s = ok, s.kind = (tg_schedule_kind)7, check_bad(&s, "kind");
  /* A kind's fields that it does not use are not read. */
  s = ok, s.gamma = 0, s.step_size = -1;
  ck_assert_int_eq(tg_schedule_check(&s, &err), TG_OK);
}
END_TEST

START_TEST(test_names) {
  const char *names[] = {"constant", "step", "cosine"};
  for (int i = 0; i < 3; i++) {
    tg_schedule_kind k;
    ck_assert_int_eq(tg_schedule_parse(names[i], &k), TG_OK);
    ck_assert_int_eq(k, i);
    ck_assert_str_eq(tg_schedule_name(k), names[i]);
  }
  tg_schedule_kind k = TG_SCHEDULE_STEP;
  ck_assert_int_eq(tg_schedule_parse("linear", &k), TG_ERR_ARG);
  ck_assert_int_eq(tg_schedule_parse(NULL, &k), TG_ERR_ARG);
  ck_assert_int_eq(k, TG_SCHEDULE_STEP);
  ck_assert_str_eq(tg_schedule_name((tg_schedule_kind)9), "?");
}
END_TEST

/* apply sets the optimizer's rate, and the next SGD step uses it:
 * w = 1, g = 2, lr 0.1 halved at update 1 (step_size 1 epoch of 1
 * update, gamma 0.5) moves w by 0.05·2 = 0.1. */
START_TEST(test_apply_to_sgd) {
  tg_error err = {0};
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){1}, 1, 1, &err);
  ck_assert_ptr_nonnull(w);
  w->data[0] = 1;
  tg_optim_config c = tg_optim_defaults(TG_SGD);
  c.lr = 0.1;
  tg_optim *o = tg_optim_new(&c, &p, &err);
  ck_assert_ptr_nonnull(o);
  tg_schedule s = tg_schedule_constant(0.1);
  s.kind = TG_SCHEDULE_STEP;
  s.step_size = 1;
  s.gamma = 0.5;
  tg_schedule_apply(&s, o, 1, 1);
  ck_rate(o->cfg.lr, 0.05);
  w->grad->data[0] = 2;
  tg_optim_step(o);
  ck_assert_msg(fabs(w->data[0] - 0.9) < TU_VALUE_TOL, "w = %g", (double)w->data[0]);
  tg_optim_free(o);
  tg_params_free(&p);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("schedule");
  TCase *tc = tcase_create("rates");
  tcase_add_test(tc, test_constant);
  tcase_add_test(tc, test_step);
  tcase_add_test(tc, test_cosine);
  suite_add_tcase(s, tc);
  tc = tcase_create("config");
  tcase_add_test(tc, test_bad_configs);
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_apply_to_sgd);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
