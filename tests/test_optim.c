/* test_optim.c — parameter lists, initialisers and the book's six
 * optimizers.
 *
 * Every optimizer's first three steps are checked against the book's
 * formulas written out again here in double, one line per formula — not
 * against the optimizer — and each minimises the book's chapter-6 function
 * f(x, y) = x²/20 + y² from (−7, 2) with the learning rates of the book's
 * optimizer comparison. Gradients are set by hand (∂f = (x/10, 2y)) except
 * in one test that drives a step through a tape.
 */
#include "testutil.h"

#include <omp.h>

#include "optim.h"
#include "params.h"

/* ------------------------------------------------------------------------
 * Parameter lists */

START_TEST(test_params_list) {
  tg_params p = {0};
  tg_error err = {0};
  tg_tensor *W = tg_params_new(&p, "W1", (int64_t[]){3, 4}, 2, 1, &err);
  tg_tensor *b = tg_params_new(&p, "b1", (int64_t[]){4}, 1, 1, &err);
  tg_tensor *m = tg_params_new(&p, "bn.running_mean", (int64_t[]){4}, 1, 0, &err);
  ck_assert_msg(W && b && m, "%s", err.msg);
  ck_assert_int_eq(p.n, 3);
  ck_assert_str_eq(W->name, "W1");
  ck_assert_ptr_nonnull(W->grad);
  ck_assert_ptr_null(m->grad);
  ck_assert_ptr_eq(tg_params_find(&p, "b1"), b);
  ck_assert_ptr_eq(tg_params_find(&p, "bn.running_mean"), m);
  ck_assert_ptr_null(tg_params_find(&p, "b2"));
  ck_assert_int_eq(tg_params_numel(&p), 12 + 4 + 4);

  /* Many more than the first capacity: the list grows, order is kept. */
  for (int i = 0; i < 40; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", i);
    ck_assert_ptr_nonnull(tg_params_new(&p, name, (int64_t[]){2}, 1, 0, &err));
  }
  ck_assert_int_eq(p.n, 43);
  ck_assert_str_eq(p.items[42]->name, "t39");
  ck_assert_ptr_eq(p.items[0], W);

  W->grad->data[5] = 3;
  b->grad->data[1] = -2;
  tg_params_zero_grad(&p);
  ck_assert(W->grad->data[5] == 0 && b->grad->data[1] == 0);

  tg_params_free(&p);
  ck_assert_int_eq(p.n, 0);
  ck_assert_ptr_null(p.items);
  /* Reusable after free. */
  ck_assert_ptr_nonnull(tg_params_new(&p, "W1", (int64_t[]){1}, 1, 0, &err));
  tg_params_free(&p);
  tg_params_free(NULL);
}
END_TEST

START_TEST(test_params_errors) {
  tg_params p = {0};
  tg_error err = {0};
  ck_assert_ptr_nonnull(tg_params_new(&p, "W1", (int64_t[]){2, 2}, 2, 1, &err));

  ck_assert_ptr_null(tg_params_new(&p, "W1", (int64_t[]){3}, 1, 1, &err));
  ck_assert_int_eq(err.status, TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, "duplicate name \"W1\""), "%s", err.msg);

  err = (tg_error){0};
  ck_assert_ptr_null(tg_params_new(&p, "conv1.W", (int64_t[]){3, 0}, 2, 1, &err));
  ck_assert_int_eq(err.status, TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "conv1.W") && strstr(err.msg, "(3, 0)"), "%s", err.msg);

  err = (tg_error){0};
  ck_assert_ptr_null(tg_params_new(&p, "", (int64_t[]){1}, 1, 0, &err));
  ck_assert_msg(err.status == TG_ERR_ARG && strstr(err.msg, "name"), "%s", err.msg);
  err = (tg_error){0};
  ck_assert_ptr_null(tg_params_new(&p, NULL, (int64_t[]){1}, 1, 0, &err));
  ck_assert_int_eq(err.status, TG_ERR_ARG);
  err = (tg_error){0};
  ck_assert_ptr_null(tg_params_new(NULL, "x", (int64_t[]){1}, 1, 0, &err));
  ck_assert_int_eq(err.status, TG_ERR_NULL);

  /* Failures add nothing. */
  ck_assert_int_eq(p.n, 1);
  tg_params_free(&p);
}
END_TEST

/* Two tensors with gradients (3, 4) and (12,), one without: the norm is
 * √(9 + 16 + 144) = 13. */
START_TEST(test_grad_norm_and_clip) {
  tg_params p = {0};
  tg_tensor *a = tg_params_new(&p, "a", (int64_t[]){2}, 1, 1, NULL);
  tg_tensor *c = tg_params_new(&p, "c", (int64_t[]){3}, 1, 0, NULL);
  tg_tensor *b = tg_params_new(&p, "b", (int64_t[]){1, 1}, 2, 1, NULL);
  a->grad->data[0] = 3;
  a->grad->data[1] = 4;
  b->grad->data[0] = 12;
  tg_init_constant(c, 100);
  ck_assert_double_eq_tol(tg_params_grad_norm(&p), 13.0, 1e-12);

  /* Under the limit: returned, nothing changes. */
  ck_assert_double_eq_tol(tg_params_clip_grad_norm(&p, 20), 13.0, 1e-12);
  ck_assert(a->grad->data[0] == 3 && a->grad->data[1] == 4 && b->grad->data[0] == 12);

  /* Over it: every gradient times 6.5/13 = 0.5, the norm before returned. */
  ck_assert_double_eq_tol(tg_params_clip_grad_norm(&p, 6.5), 13.0, 1e-12);
  ck_assert_double_eq_tol(tg_at(a->grad, 0), 1.5, 1e-6);
  ck_assert_double_eq_tol(tg_at(a->grad, 1), 2.0, 1e-6);
  ck_assert_double_eq_tol(tg_at(b->grad, 0), 6.0, 1e-6);
  ck_assert_double_eq_tol(tg_params_grad_norm(&p), 6.5, 1e-6);
  ck_assert(tg_at(c, 0) == 100);

  /* A NaN gradient makes a NaN norm and is left for the caller to see. */
  a->grad->data[0] = (tg_real)NAN;
  ck_assert(isnan(tg_params_clip_grad_norm(&p, 1)));
  ck_assert(tg_at(b->grad, 0) == 6.0);
  /* A nonsense limit clips nothing. */
  a->grad->data[0] = 1.5;
  ck_assert_double_eq_tol(tg_params_clip_grad_norm(&p, -1), 6.5, 1e-6);
  ck_assert(tg_at(b->grad, 0) == 6.0);

  ck_assert_double_eq(tg_params_grad_norm(NULL), 0);
  tg_params_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------
 * Initialisers: 10^5 seeded draws; mean within ~5 standard errors of 0
 * (σ/√n ≈ 0.003σ) and the sample deviation within 1% (its standard error
 * is σ/√(2n) ≈ 0.22%). */

static void assert_normal_stats(const tg_tensor *t, double want_std, const char *what) {
  double s = 0, ss = 0;
  for (int64_t i = 0; i < t->numel; i++)
    s += tg_at(t, i);
  double mean = s / (double)t->numel;
  for (int64_t i = 0; i < t->numel; i++)
    ss += (tg_at(t, i) - mean) * (tg_at(t, i) - mean);
  double std = sqrt(ss / (double)(t->numel - 1));
  ck_assert_msg(fabs(mean) < 0.016 * want_std, "%s: mean %g (std %g)", what, mean, want_std);
  ck_assert_msg(fabs(std / want_std - 1) < 0.01, "%s: std %g, want %g", what, std, want_std);
}

START_TEST(test_init_statistics) {
  tg_rng rng;
  tg_rng_seed(&rng, 20240601);
  tg_tensor *t = tg_tensor_new((int64_t[]){1000, 100}, 2, 0, "W", NULL);
  ck_assert_ptr_nonnull(t);

  tg_init_normal(t, 0.01, &rng); /* the book's weight_init_std */
  assert_normal_stats(t, 0.01, "normal(0.01)");
  tg_init_xavier(t, 100, &rng); /* √(1/100) */
  assert_normal_stats(t, 0.1, "xavier(100)");
  tg_init_he(t, 50, &rng); /* √(2/50) */
  assert_normal_stats(t, 0.2, "he(50)");
  tg_init_he(t, 784, &rng);
  assert_normal_stats(t, sqrt(2.0 / 784), "he(784)");

  /* Same seed, same values. */
  tg_tensor *u = tg_tensor_new((int64_t[]){1000, 100}, 2, 0, "U", NULL);
  tg_rng_seed(&rng, 5);
  tg_init_he(t, 10, &rng);
  tg_rng_seed(&rng, 5);
  tg_init_he(u, 10, &rng);
  ck_assert(memcmp(t->data, u->data, (size_t)t->numel * sizeof(tg_real)) == 0);

  tg_init_constant(t, 0.25);
  for (int64_t i = 0; i < t->numel; i++)
    ck_assert(t->data[i] == (tg_real)0.25);

  /* Invalid arguments leave a loud NaN, not a silently dead layer. */
  tg_init_he(t, 0, &rng);
  ck_assert(isnan(tg_at(t, 0)) && isnan(tg_at(t, t->numel - 1)));
  tg_init_constant(t, 1);
  tg_init_normal(t, -1, &rng);
  ck_assert(isnan(tg_at(t, 7)));
  tg_init_constant(t, 1);
  tg_init_xavier(t, 10, NULL);
  ck_assert(isnan(tg_at(t, 3)));
  tg_init_he(NULL, 10, &rng); /* no-op */

  tg_tensor_free(t);
  tg_tensor_free(u);
}
END_TEST

/* ------------------------------------------------------------------------
 * Names, defaults, configs */

START_TEST(test_defaults_are_the_books) {
  tg_optim_config c = tg_optim_defaults(TG_SGD);
  ck_assert(c.kind == TG_SGD && c.lr == 0.01);
  c = tg_optim_defaults(TG_MOMENTUM);
  ck_assert(c.kind == TG_MOMENTUM && c.lr == 0.01 && c.momentum == 0.9);
  c = tg_optim_defaults(TG_NESTEROV);
  ck_assert(c.lr == 0.01 && c.momentum == 0.9);
  c = tg_optim_defaults(TG_ADAGRAD);
  ck_assert(c.lr == 0.01);
  c = tg_optim_defaults(TG_RMSPROP);
  ck_assert(c.lr == 0.01 && c.decay_rate == 0.99);
  c = tg_optim_defaults(TG_ADAM);
  ck_assert(c.lr == 0.001 && c.beta1 == 0.9 && c.beta2 == 0.999);
}
END_TEST

START_TEST(test_parse_and_name) {
  const char *names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"};
  const tg_optim_kind kinds[] = {TG_SGD, TG_MOMENTUM, TG_NESTEROV, TG_ADAGRAD, TG_RMSPROP, TG_ADAM};
  for (int i = 0; i < 6; i++) {
    tg_optim_kind k = (tg_optim_kind)-1;
    ck_assert_int_eq(tg_optim_parse(names[i], &k), TG_OK);
    ck_assert_int_eq(k, kinds[i]);
    ck_assert_str_eq(tg_optim_name(kinds[i]), names[i]);
  }
  tg_optim_kind k = TG_SGD;
  ck_assert_int_eq(tg_optim_parse("Adam", &k), TG_OK); /* the book's spelling */
  ck_assert_int_eq(k, TG_ADAM);
  k = TG_MOMENTUM;
  ck_assert_int_eq(tg_optim_parse("adamw", &k), TG_ERR_ARG);
  ck_assert_int_eq(tg_optim_parse("ada", &k), TG_ERR_ARG);
  ck_assert_int_eq(tg_optim_parse("", &k), TG_ERR_ARG);
  ck_assert_int_eq(tg_optim_parse(NULL, &k), TG_ERR_ARG);
  ck_assert_int_eq(k, TG_MOMENTUM); /* untouched on failure */
  ck_assert_str_eq(tg_optim_name((tg_optim_kind)42), "unknown");
}
END_TEST

/* Builds cfg from a kind's defaults, applies one change, and expects
 * tg_optim_new to refuse it with a message holding both fragments. */
static void assert_rejected(tg_optim_config c, const char *frag1, const char *frag2) {
  tg_params p = {0};
  tg_params_new(&p, "w", (int64_t[]){2}, 1, 1, NULL);
  tg_error err = {0};
  tg_optim *o = tg_optim_new(&c, &p, &err);
  ck_assert_msg(o == NULL, "%s config accepted (lr %g)", tg_optim_name(c.kind), c.lr);
  ck_assert_int_eq(err.status, TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, frag1) && strstr(err.msg, frag2), "\"%s\" lacks \"%s\"/\"%s\"",
                err.msg, frag1, frag2);
  tg_params_free(&p);
}

START_TEST(test_invalid_configs) {
  tg_optim_config c = tg_optim_defaults(TG_SGD);
  c.lr = 0;
  assert_rejected(c, "lr is 0", "> 0");
  c.lr = -1;
  assert_rejected(c, "sgd", "lr is -1");
  c.lr = NAN;
  assert_rejected(c, "lr is nan", "finite");
  c.lr = INFINITY;
  assert_rejected(c, "lr is inf", "finite");

  c = tg_optim_defaults(TG_MOMENTUM);
  c.momentum = 1;
  assert_rejected(c, "momentum", "momentum is 1 (must be in [0, 1))");
  c = tg_optim_defaults(TG_NESTEROV);
  c.momentum = -0.1;
  assert_rejected(c, "nesterov", "momentum is -0.1");
  c = tg_optim_defaults(TG_RMSPROP);
  c.decay_rate = 1.5;
  assert_rejected(c, "rmsprop", "decay_rate is 1.5");
  c = tg_optim_defaults(TG_ADAM);
  c.beta1 = 1;
  assert_rejected(c, "adam", "beta1 is 1");
  c = tg_optim_defaults(TG_ADAM);
  c.beta2 = NAN;
  assert_rejected(c, "adam", "beta2 is nan");
  c = tg_optim_defaults(TG_ADAM);
  c.kind = (tg_optim_kind)42;
  assert_rejected(c, "unknown kind 42", "adam");

  /* Fields of other kinds are not read: SGD with momentum 5 is fine. */
  tg_params p = {0};
  tg_params_new(&p, "w", (int64_t[]){2}, 1, 1, NULL);
  c = tg_optim_defaults(TG_SGD);
  c.momentum = 5;
  tg_error err = {0};
  tg_optim *o = tg_optim_new(&c, &p, &err);
  ck_assert_msg(o != NULL, "%s", err.msg);
  tg_optim_free(o);

  err = (tg_error){0};
  ck_assert_ptr_null(tg_optim_new(NULL, &p, &err));
  ck_assert_int_eq(err.status, TG_ERR_NULL);
  err = (tg_error){0};
  ck_assert_ptr_null(tg_optim_new(&c, NULL, &err));
  ck_assert_int_eq(err.status, TG_ERR_NULL);
  tg_optim_free(NULL);
  tg_optim_step(NULL);
  tg_params_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------
 * The first three steps against the formulas */

#define NP 4
/* The parameter's start and the gradient of each step: signs and sizes
 * mixed so no element is a copy of another. */
static const double P0[NP] = {1.0, -0.5, 2.0, 0.25};
static const double G[3][NP] = {
    {0.5, -1.0, 0.25, 2.0},
    {-0.3, 0.7, 0.1, 1.5},
    {0.2, -0.2, -0.4, 1.0},
};

/* Runs three steps of cfg on a (2, 2) parameter starting at P0 with the
 * gradients G; got[s] is the parameter after step s + 1 and state[s] the
 * values of opt->state's tensor `slot` (NULL: none) after it. */
static void run3(tg_optim_config cfg, const char *slot, double got[3][NP], double state[3][NP]) {
  tg_params p = {0};
  tg_error err = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2, 2}, 2, 1, &err);
  ck_assert_msg(w != NULL, "%s", err.msg);
  for (int i = 0; i < NP; i++)
    w->data[i] = (tg_real)P0[i];
  tg_optim *o = tg_optim_new(&cfg, &p, &err);
  ck_assert_msg(o != NULL, "%s", err.msg);
  tg_tensor *st = slot ? tg_params_find(&o->state, slot) : NULL;
  ck_assert_msg(!slot || st, "no state tensor %s", slot);
  for (int s = 0; s < 3; s++) {
    for (int i = 0; i < NP; i++)
      w->grad->data[i] = (tg_real)G[s][i];
    tg_optim_step(o);
    for (int i = 0; i < NP; i++) {
      got[s][i] = tg_at(w, i);
      if (st)
        state[s][i] = tg_at(st, i);
    }
  }
  tg_optim_free(o);
  tg_params_free(&p);
}

static void assert_steps(const char *what, double got[3][NP], double want[3][NP]) {
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++)
      ck_assert_msg(tu_rel(got[s][i], want[s][i]) <= TU_VALUE_TOL,
                    "%s, step %d, element %d: got %.17g, want %.17g", what, s + 1, i, got[s][i],
                    want[s][i]);
}

START_TEST(test_sgd_by_hand) {
  const double lr = 0.1;
  double got[3][NP], want[3][NP], p[NP];
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++)
      want[s][i] = p[i] = p[i] - lr * G[s][i];
  /* On paper: 1 − 0.1·0.5 = 0.95, then 0.95 + 0.03 = 0.98, then 0.96. */
  ck_assert_double_eq_tol(want[0][0], 0.95, 1e-15);
  ck_assert_double_eq_tol(want[2][0], 0.96, 1e-15);

  tg_optim_config c = tg_optim_defaults(TG_SGD);
  c.lr = lr;
  run3(c, NULL, got, NULL);
  assert_steps("sgd", got, want);
}
END_TEST

START_TEST(test_momentum_by_hand) {
  const double lr = 0.1, mom = 0.9;
  double got[3][NP], gv[3][NP], want[3][NP], wv[3][NP], p[NP], v[NP] = {0};
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++) {
      v[i] = mom * v[i] - lr * G[s][i];
      p[i] = p[i] + v[i];
      want[s][i] = p[i];
      wv[s][i] = v[i];
    }
  /* On paper, element 0: v = −0.05, p = 0.95; v = −0.045 + 0.03 = −0.015,
   * p = 0.935. */
  ck_assert_double_eq_tol(want[1][0], 0.935, 1e-15);

  tg_optim_config c = tg_optim_defaults(TG_MOMENTUM);
  c.lr = lr;
  run3(c, "w.v", got, gv);
  assert_steps("momentum", got, want);
  assert_steps("momentum v", gv, wv);
}
END_TEST

START_TEST(test_nesterov_by_hand) {
  const double lr = 0.1, mom = 0.9;
  double got[3][NP], gv[3][NP], want[3][NP], wv[3][NP], p[NP], v[NP] = {0};
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++) {
      v[i] = v[i] * mom;
      v[i] = v[i] - lr * G[s][i];
      p[i] = p[i] + mom * mom * v[i];
      p[i] = p[i] - (1 + mom) * lr * G[s][i];
      want[s][i] = p[i];
      wv[s][i] = v[i];
    }
  /* On paper, element 0: v = −0.05; p = 1 − 0.81·0.05 − 1.9·0.05 = 0.8645. */
  ck_assert_double_eq_tol(want[0][0], 0.8645, 1e-15);

  tg_optim_config c = tg_optim_defaults(TG_NESTEROV);
  c.lr = lr;
  run3(c, "w.v", got, gv);
  assert_steps("nesterov", got, want);
  assert_steps("nesterov v", gv, wv);
}
END_TEST

START_TEST(test_adagrad_by_hand) {
  const double lr = 0.1;
  double got[3][NP], gh[3][NP], want[3][NP], wh[3][NP], p[NP], h[NP] = {0};
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++) {
      h[i] = h[i] + G[s][i] * G[s][i];
      p[i] = p[i] - lr * G[s][i] / (sqrt(h[i]) + 1e-7);
      want[s][i] = p[i];
      wh[s][i] = h[i];
    }
  /* On paper: the first step moves every element by lr against its sign
   * (g/√g² = ±1), up to the 1e-7. */
  for (int i = 0; i < NP; i++)
    ck_assert_double_eq_tol(want[0][i], P0[i] - copysign(lr, G[0][i]), 1e-6);

  tg_optim_config c = tg_optim_defaults(TG_ADAGRAD);
  c.lr = lr;
  run3(c, "w.h", got, gh);
  assert_steps("adagrad", got, want);
  assert_steps("adagrad h", gh, wh);
}
END_TEST

START_TEST(test_rmsprop_by_hand) {
  const double lr = 0.1, decay = 0.99;
  double got[3][NP], gh[3][NP], want[3][NP], wh[3][NP], p[NP], h[NP] = {0};
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < NP; i++) {
      h[i] = h[i] * decay;
      h[i] = h[i] + (1 - decay) * G[s][i] * G[s][i];
      p[i] = p[i] - lr * G[s][i] / (sqrt(h[i]) + 1e-7);
      want[s][i] = p[i];
      wh[s][i] = h[i];
    }
  /* On paper: h = 0.01·g², so the first step is lr·g/(0.1|g|) = ±10·lr. */
  for (int i = 0; i < NP; i++)
    ck_assert_double_eq_tol(want[0][i], P0[i] - copysign(10 * lr, G[0][i]), 1e-5);

  tg_optim_config c = tg_optim_defaults(TG_RMSPROP);
  c.lr = lr;
  run3(c, "w.h", got, gh);
  assert_steps("rmsprop", got, want);
  assert_steps("rmsprop h", gh, wh);
}
END_TEST

START_TEST(test_adam_by_hand) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999;
  double got[3][NP], gm[3][NP], gv[3][NP], want[3][NP], wm[3][NP], wv[3][NP], p[NP];
  double m[NP] = {0}, v[NP] = {0};
  memcpy(p, P0, sizeof p);
  for (int s = 0; s < 3; s++) {
    int t = s + 1;
    double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
    for (int i = 0; i < NP; i++) {
      m[i] = m[i] + (1 - b1) * (G[s][i] - m[i]);
      v[i] = v[i] + (1 - b2) * (G[s][i] * G[s][i] - v[i]);
      p[i] = p[i] - lr_t * m[i] / (sqrt(v[i]) + 1e-7);
      want[s][i] = p[i];
      wm[s][i] = m[i];
      wv[s][i] = v[i];
    }
  }
  /* On paper: bias correction makes the first step lr against the sign. */
  for (int i = 0; i < NP; i++)
    ck_assert_double_eq_tol(want[0][i], P0[i] - copysign(lr, G[0][i]), 1e-5);

  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  c.lr = lr;
  run3(c, "w.m", got, gm);
  assert_steps("adam", got, want);
  assert_steps("adam m", gm, wm);
  run3(c, "w.v", got, gv);
  assert_steps("adam v", gv, wv);
}
END_TEST

/* Adam's bias correction far into training: β^t in double keeps lr_t
 * right where a float power would have drifted. With a constant gradient
 * g, m = g(1 − β1^t) and v = g²(1 − β2^t), so step t moves the parameter
 * by lr·g/(|g| + 1e-7/√(1 − β2^t)): lr against the sign of g. */
START_TEST(test_adam_long_run_step_size) {
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){1}, 1, 1, NULL);
  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  tg_optim *o = tg_optim_new(&c, &p, NULL);
  double before = 0;
  for (int s = 0; s < 10000; s++) {
    w->grad->data[0] = (tg_real)0.5;
    before = tg_at(w, 0);
    tg_optim_step(o);
  }
  double moved = before - tg_at(w, 0);
  ck_assert_msg(fabs(moved / c.lr - 1) < (sizeof(tg_real) == 8 ? 1e-6 : 1e-2),
                "step 10000 moved %.9g, want %.9g", moved, c.lr);
  ck_assert_int_eq(o->step, 10000);
  tg_optim_free(o);
  tg_params_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------
 * Bookkeeping: state, step count, zeroed gradients, frozen tensors */

START_TEST(test_state_step_and_zeroing) {
  tg_params p = {0};
  tg_tensor *W = tg_params_new(&p, "W1", (int64_t[]){2, 3}, 2, 1, NULL);
  tg_tensor *frozen = tg_params_new(&p, "running_mean", (int64_t[]){3}, 1, 0, NULL);
  tg_tensor *b = tg_params_new(&p, "b1", (int64_t[]){3}, 1, 1, NULL);
  tg_init_constant(W, 1);
  tg_init_constant(frozen, 7);
  tg_init_constant(b, -1);

  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  tg_error err = {0};
  tg_optim *o = tg_optim_new(&c, &p, &err);
  ck_assert_msg(o != NULL, "%s", err.msg);
  ck_assert_ptr_eq(o->params, &p);
  const char *names[] = {"step", "W1.m", "W1.v", "b1.m", "b1.v"};
  ck_assert_int_eq(o->state.n, 5);
  for (int i = 0; i < 5; i++)
    ck_assert_str_eq(o->state.items[i]->name, names[i]);
  ck_assert(tg_shape_eq(tg_params_find(&o->state, "W1.v"), W));
  ck_assert_int_eq(tg_params_find(&o->state, "step")->ndim, 1);
  ck_assert_int_eq(tg_params_find(&o->state, "step")->numel, 1);
  ck_assert_ptr_null(tg_params_find(&o->state, "running_mean.m"));
  for (int i = 0; i < 5; i++) /* zeroed at creation */
    for (int64_t k = 0; k < o->state.items[i]->numel; k++)
      ck_assert(o->state.items[i]->data[k] == 0);

  for (int s = 1; s <= 3; s++) {
    tg_init_constant(W->grad, 0.5);
    tg_init_constant(b->grad, -0.25);
    tg_optim_step(o);
    ck_assert_int_eq(o->step, s);
    ck_assert(tg_at(tg_params_find(&o->state, "step"), 0) == s);
    for (int64_t k = 0; k < W->numel; k++)
      ck_assert(W->grad->data[k] == 0);
    for (int64_t k = 0; k < b->numel; k++)
      ck_assert(b->grad->data[k] == 0);
  }
  ck_assert(tg_at(W, 0) < 1 && tg_at(b, 0) > -1);
  for (int64_t k = 0; k < frozen->numel; k++)
    ck_assert(frozen->data[k] == 7);

  /* A step count loaded into the "step" tensor is picked up. */
  tg_params_find(&o->state, "step")->data[0] = 41;
  tg_optim_sync_step(o);
  ck_assert_int_eq(o->step, 41);
  tg_optim_step(o);
  ck_assert_int_eq(o->step, 42);
  ck_assert(tg_at(tg_params_find(&o->state, "step"), 0) == 42);
  tg_params_find(&o->state, "step")->data[0] = (tg_real)NAN;
  tg_optim_sync_step(o);
  ck_assert_int_eq(o->step, 0);

  tg_optim_free(o);
  tg_params_free(&p);
}
END_TEST

/* Stateless SGD has only "step"; a tensor frozen after tg_optim_new (its
 * flag cleared) is left alone, and one added later is not trained. */
START_TEST(test_sgd_state_and_frozen) {
  tg_params p = {0};
  tg_tensor *a = tg_params_new(&p, "a", (int64_t[]){2}, 1, 1, NULL);
  tg_tensor *b = tg_params_new(&p, "b", (int64_t[]){2}, 1, 1, NULL);
  tg_optim_config c = tg_optim_defaults(TG_SGD);
  tg_optim *o = tg_optim_new(&c, &p, NULL);
  tg_tensor *late = tg_params_new(&p, "late", (int64_t[]){2}, 1, 1, NULL);
  ck_assert_int_eq(o->state.n, 1);
  ck_assert_str_eq(o->state.items[0]->name, "step");

  b->flags &= ~(unsigned)TG_REQUIRES_GRAD;
  tg_init_constant(a->grad, 1);
  tg_init_constant(b->grad, 1);
  tg_init_constant(late->grad, 1);
  tg_optim_step(o);
  ck_assert_double_eq_tol(tg_at(a, 0), -0.01, 1e-7);
  ck_assert(tg_at(b, 0) == 0 && tg_at(late, 0) == 0);
  for (int k = 0; k < 2; k++) /* every gradient of the list is zeroed, trained or not */
    ck_assert(a->grad->data[k] == 0 && b->grad->data[k] == 0 && late->grad->data[k] == 0);
  tg_optim_free(o);
  tg_params_free(&p);
}
END_TEST

/* A parameter above TG_PAR_MIN after three steps of optimizer _i, on
 * `threads` threads, from seeded values and gradients. Returns its values
 * and the optimizer's state, concatenated, in a malloc'd buffer of *n. */
static tg_real *three_steps(tg_optim_kind kind, int threads, int64_t *n) {
  omp_set_num_threads(threads);
  tg_params p = {0};
  const int64_t len = 3 * TG_PAR_MIN + 5;
  tg_tensor *w = tg_params_new(&p, "w", &len, 1, 1, NULL);
  tg_rng r;
  tg_rng_seed(&r, 11);
  tu_fill_uniform(w, &r, -1, 1);
  tg_optim_config c = tg_optim_defaults(kind);
  tg_optim *o = tg_optim_new(&c, &p, NULL);
  ck_assert_ptr_nonnull(o);
  for (int step = 0; step < 3; step++) {
    tu_fill_uniform(w->grad, &r, -1, 1);
    tg_optim_step(o);
    /* Zeroed by the update, chunk by chunk. One assertion, not one per
     * element: Check writes every passing assertion's place to a file. */
    int64_t k = 0;
    while (k < len && w->grad->data[k] == 0)
      k++;
    ck_assert_msg(k == len, "%s: grad[%lld] = %g after the step", tg_optim_name(kind),
                  (long long)k, k < len ? (double)w->grad->data[k] : 0.0);
  }
  tg_real *all = malloc((size_t)(len * o->state.n) * sizeof *all), *at = all;
  memcpy(at, w->data, (size_t)len * sizeof *all);
  at += len;
  for (int k = 1; k < o->state.n; k++, at += len)
    memcpy(at, o->state.items[k]->data, (size_t)len * sizeof *all);
  *n = at - all;
  tg_optim_free(o);
  tg_params_free(&p);
  return all;
}

/* Each optimizer on one thread against two, bit for bit. */
START_TEST(test_threads_bit_identical) {
  int64_t n1, n2;
  tg_real *a = three_steps((tg_optim_kind)_i, 1, &n1), *b = three_steps((tg_optim_kind)_i, 2, &n2);
  ck_assert_int_eq(n1, n2);
  ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof *a) == 0, "%s: 1 and 2 threads differ",
                tg_optim_name((tg_optim_kind)_i));
  free(a);
  free(b);
}
END_TEST

/* ------------------------------------------------------------------------
 * The book's chapter-6 function: f(x, y) = x²/20 + y², from (−7, 2) */

static void minimise(tg_optim_kind kind, double lr, int steps) {
  tg_params p = {0};
  tg_tensor *xy = tg_params_new(&p, "xy", (int64_t[]){2}, 1, 1, NULL);
  xy->data[0] = -7;
  xy->data[1] = 2;
  tg_optim_config c = tg_optim_defaults(kind);
  c.lr = lr;
  tg_error err = {0};
  tg_optim *o = tg_optim_new(&c, &p, &err);
  ck_assert_msg(o != NULL, "%s", err.msg);
  double f0 = 49.0 / 20 + 4;
  for (int s = 0; s < steps; s++) {
    xy->grad->data[0] = xy->data[0] / 10; /* ∂f/∂x = x/10 */
    xy->grad->data[1] = 2 * xy->data[1];  /* ∂f/∂y = 2y */
    tg_optim_step(o);
  }
  double x = tg_at(xy, 0), y = tg_at(xy, 1);
  ck_assert_msg(fabs(x) < 1e-3 && fabs(y) < 1e-3, "%s (lr %g): (%g, %g) after %d steps",
                tg_optim_name(kind), lr, x, y, steps);
  ck_assert(x * x / 20 + y * y < 1e-6 * f0);
  tg_optim_free(o);
  tg_params_free(&p);
}

START_TEST(test_minimise_book_function) {
  minimise(TG_SGD, 0.95, 300);
  minimise(TG_MOMENTUM, 0.1, 300);
  minimise(TG_NESTEROV, 0.1, 300);
  minimise(TG_ADAGRAD, 1.5, 300);
  minimise(TG_RMSPROP, 0.1, 300);
  minimise(TG_ADAM, 0.3, 300);
}
END_TEST

/* The same minimisation with the gradient taken by the tape: backward
 * accumulates into xy->grad, the step consumes and zeroes it. */
START_TEST(test_minimise_through_the_tape) {
  tg_tape *tape = tg_tape_new();
  tg_params p = {0};
  tg_tensor *xy = tg_params_new(&p, "xy", (int64_t[]){2}, 1, 1, NULL);
  xy->data[0] = -7;
  xy->data[1] = 2;
  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  c.lr = 0.3;
  tg_optim *o = tg_optim_new(&c, &p, NULL);
  for (int s = 0; s < 300; s++) {
    tg_tensor *k = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1.0 / 20, 1.0});
    tg_tensor *f = tg_sum(tape, tg_mul(tape, k, tg_mul(tape, xy, xy)), NULL, 0, 0);
    ck_assert_msg(f != NULL, "%s", tg_tape_error(tape));
    double x = tg_at(xy, 0), y = tg_at(xy, 1);
    ck_assert_int_eq(tg_backward(tape, f, NULL), TG_OK);
    ck_assert_double_eq_tol(tg_at(xy->grad, 0), x / 10, 1e-5 * fmax(1, fabs(x)));
    ck_assert_double_eq_tol(tg_at(xy->grad, 1), 2 * y, 1e-5 * fmax(1, fabs(y)));
    tg_optim_step(o);
    ck_assert(xy->grad->data[0] == 0 && xy->grad->data[1] == 0);
    tg_tape_reset(tape);
  }
  ck_assert_msg(fabs(tg_at(xy, 0)) < 1e-3 && fabs(tg_at(xy, 1)) < 1e-3, "(%g, %g)", tg_at(xy, 0),
                tg_at(xy, 1));
  tg_optim_free(o);
  tg_params_free(&p);
  tg_tape_free(tape);
}
END_TEST

/* A step zeroes and marks the gradients (TG_ZEROED); each later write must
 * drop the mark (tg_grad_into into W, accumulation into b, a raw write and
 * tg_tensor_bump), or tg_params_zero_grad would leave it standing. */
static int all_zero(const tg_tensor *g) {
  for (int64_t k = 0; k < g->numel; k++)
    if (g->data[k] != 0)
      return 0;
  return 1;
}

START_TEST(test_zeroed_gradients_skipped_until_written) {
  tg_tape *tape = tg_tape_new();
  tg_params p = {0};
  tg_tensor *W = tg_params_new(&p, "W", (int64_t[]){3, 2}, 2, 1, NULL);
  tg_tensor *b = tg_params_new(&p, "b", (int64_t[]){2}, 1, 1, NULL);
  tg_init_constant(W, 0.5);
  tg_init_constant(b, 0.25);
  tg_optim_config c = tg_optim_defaults(TG_SGD);
  tg_optim *o = tg_optim_new(&c, &p, NULL);
  for (int round = 0; round < 2; round++) {
    tg_tensor *x = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, -1, 0, 4});
    tg_tensor *y = tg_sum(tape, tg_add(tape, tg_matmul(tape, x, W), b), NULL, 0, 0);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
    ck_assert(!all_zero(W->grad) && !all_zero(b->grad));
    ck_assert(!(W->grad->flags & TG_ZEROED) && !(b->grad->flags & TG_ZEROED));
    tg_tape_reset(tape);
    if (round == 0) {
      tg_optim_step(o); /* zeroes and marks them */
      ck_assert(all_zero(W->grad) && all_zero(b->grad));
      ck_assert((W->grad->flags & TG_ZEROED) && (b->grad->flags & TG_ZEROED));
    } else {
      tg_params_zero_grad(&p); /* after a backward: must clear */
      ck_assert(all_zero(W->grad) && all_zero(b->grad));
    }
  }
  W->grad->data[4] = 3; /* by hand, and said so */
  tg_tensor_bump(W->grad);
  ck_assert(!(W->grad->flags & TG_ZEROED));
  tg_params_zero_grad(&p);
  ck_assert(all_zero(W->grad) && (W->grad->flags & TG_ZEROED));
  tg_optim_free(o);
  tg_params_free(&p);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("params");
  tcase_add_test(tc, test_params_list);
  tcase_add_test(tc, test_params_errors);
  tcase_add_test(tc, test_grad_norm_and_clip);
  tcase_add_test(tc, test_init_statistics);
  suite_add_tcase(s, tc);
  tc = tcase_create("config");
  tcase_add_test(tc, test_defaults_are_the_books);
  tcase_add_test(tc, test_parse_and_name);
  tcase_add_test(tc, test_invalid_configs);
  suite_add_tcase(s, tc);
  tc = tcase_create("by-hand");
  tcase_add_test(tc, test_sgd_by_hand);
  tcase_add_test(tc, test_momentum_by_hand);
  tcase_add_test(tc, test_nesterov_by_hand);
  tcase_add_test(tc, test_adagrad_by_hand);
  tcase_add_test(tc, test_rmsprop_by_hand);
  tcase_add_test(tc, test_adam_by_hand);
  tcase_add_test(tc, test_adam_long_run_step_size);
  suite_add_tcase(s, tc);
  tc = tcase_create("bookkeeping");
  tcase_add_test(tc, test_state_step_and_zeroing);
  tcase_add_test(tc, test_sgd_state_and_frozen);
  tcase_add_loop_test(tc, test_threads_bit_identical, TG_SGD, TG_ADAM + 1);
  suite_add_tcase(s, tc);
  tc = tcase_create("minimise");
  tcase_add_test(tc, test_minimise_book_function);
  tcase_add_test(tc, test_minimise_through_the_tape);
  tcase_add_test(tc, test_zeroed_gradients_skipped_until_written);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
