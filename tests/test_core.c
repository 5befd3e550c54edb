/* test_core.c — the engine without any particular op family: tensors,
 * arena, tape recording, backward semantics, higher-order gradients,
 * errors and anomaly mode. Op correctness is tested in the per-family
 * suites, threads in test_parallel.c, the DOT export in test_dot.c; here
 * ops are only the means.
 */
#include "testutil.h"

#include "arena.h"

/* ------------------------------------------------------------------------
 * Tensors and shapes */

START_TEST(test_tensor_new_checks_shapes) {
  tg_error err = {0};
  ck_assert_ptr_null(tg_tensor_new((int64_t[]){3, 0}, 2, 0, "w", &err));
  ck_assert_int_eq(err.status, TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "dimension 1 of (3, 0) is 0"), "%s", err.msg);

  err = (tg_error){0};
  ck_assert_ptr_null(tg_tensor_new((int64_t[]){-2}, 1, 0, NULL, &err));
  ck_assert_msg(strstr(err.msg, "(-2,)"), "%s", err.msg);

  err = (tg_error){0};
  ck_assert_ptr_null(tg_tensor_new((int64_t[]){1, 1, 1, 1, 1, 1, 1}, 7, 0, NULL, &err));
  ck_assert_msg(strstr(err.msg, "7 dimensions"), "%s", err.msg);

  err = (tg_error){0};
  int64_t huge[] = {INT64_C(1) << 40, INT64_C(1) << 40};
  ck_assert_ptr_null(tg_tensor_new(huge, 2, 0, NULL, &err));
  ck_assert_msg(strstr(err.msg, "too many elements"), "%s", err.msg);

  /* NULL err is allowed: the failure is still a NULL return. */
  ck_assert_ptr_null(tg_tensor_new((int64_t[]){0}, 1, 0, NULL, NULL));
}
END_TEST

START_TEST(test_tensor_new_owned) {
  tg_tensor *t = tg_tensor_new((int64_t[]){2, 3, 4}, 3, 1, "W1", NULL);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(t->numel, 24);
  ck_assert_int_eq(t->ndim, 3);
  ck_assert_str_eq(t->name, "W1");
  ck_assert_int_eq((uintptr_t)t->data % TG_ALIGN, 0);
  ck_assert_ptr_nonnull(t->grad);
  for (int64_t i = 0; i < t->numel; i++)
    ck_assert(t->data[i] == 0 && t->grad->data[i] == 0);
  tg_tensor_fill(t, 2.5);
  ck_assert(t->data[23] == (tg_real)2.5);
  t->grad->data[5] = 1;
  tg_tensor_zero_grad(t);
  ck_assert(t->grad->data[5] == 0);
  tg_tensor_free(t);
  tg_tensor_free(NULL);

  char buf[64];
  ck_assert_str_eq(tg_shape_str((int64_t[]){2, 3}, 2, buf, sizeof buf), "(2, 3)");
  ck_assert_str_eq(tg_shape_str((int64_t[]){5}, 1, buf, sizeof buf), "(5,)");
  ck_assert_str_eq(tg_shape_str(NULL, 0, buf, sizeof buf), "()");
}
END_TEST

/* ------------------------------------------------------------------------
 * Arena */

START_TEST(test_arena_aligns_grows_and_folds) {
  tg_arena a;
  tg_arena_init(&a);
  void *p = tg_arena_alloc(&a, 3);
  void *q = tg_arena_alloc(&a, 100);
  ck_assert_int_eq((uintptr_t)p % TG_ALIGN, 0);
  ck_assert_int_eq((uintptr_t)q % TG_ALIGN, 0);
  ck_assert_int_eq((char *)q - (char *)p, 64);
  /* Force several blocks, then fold them into one at reset. */
  for (int i = 0; i < 10; i++)
    ck_assert_ptr_nonnull(tg_arena_alloc(&a, 100000));
  uint64_t before = a.sys_allocs;
  ck_assert_uint_gt(before, 1);
  size_t used = a.in_use;
  tg_arena_reset(&a);
  ck_assert_uint_eq(a.in_use, 0);
  ck_assert_uint_ge(a.capacity, used);
  uint64_t folded = a.sys_allocs;
  for (int i = 0; i < 10; i++)
    ck_assert_ptr_nonnull(tg_arena_alloc(&a, 100000));
  ck_assert_uint_eq(a.sys_allocs, folded); /* the same step fits now */
  /* Marks: rewinding releases what came after. */
  tg_arena_mark m = tg_arena_get_mark(&a);
  tg_arena_alloc(&a, 5000);
  tg_arena_rewind(&a, m);
  ck_assert_uint_eq(a.in_use, m.in_use);
  /* A rewind keeps the largest block it releases as a spare: the same
   * evaluation repeated from a mark (gradcheck's) goes to the system only
   * until a spare holds it all, and the arena does not grow. */
  const size_t cap = a.capacity;
  uint64_t allocs[8];
  for (int rep = 0; rep < 8; rep++) {
    for (int i = 0; i < 10; i++)
      ck_assert_ptr_nonnull(tg_arena_alloc(&a, (size_t)1 << 20));
    tg_arena_rewind(&a, m);
    ck_assert_uint_eq(a.capacity, cap);
    allocs[rep] = a.sys_allocs;
  }
  ck_assert_msg(allocs[7] == allocs[3],
                "system allocations after each rewind: %llu %llu %llu %llu "
                "%llu %llu %llu %llu",
                (unsigned long long)allocs[0], (unsigned long long)allocs[1],
                (unsigned long long)allocs[2], (unsigned long long)allocs[3],
                (unsigned long long)allocs[4], (unsigned long long)allocs[5],
                (unsigned long long)allocs[6], (unsigned long long)allocs[7]);
  tg_arena_release(&a);
  ck_assert_uint_eq(a.capacity, 0);
}
END_TEST

/* Scratch that a rewind hands back, in a block of its own: the reset
 * folds the arena to the most it held (not to what is left after the
 * rewind), so the same step then needs no system allocation. */
START_TEST(test_arena_folds_to_the_most_held) {
  tg_arena a;
  tg_arena_init(&a);
  uint64_t allocs = 0;
  for (int step = 0; step < 3; step++) {
    ck_assert_ptr_nonnull(tg_arena_alloc(&a, 100000)); /* an output */
    tg_arena_mark m = tg_arena_get_mark(&a);
    ck_assert_ptr_nonnull(tg_arena_alloc(&a, 400000)); /* scratch: a block of its own at first */
    tg_arena_rewind(&a, m);
    ck_assert_ptr_nonnull(tg_arena_alloc(&a, 100000)); /* the next output */
    if (step == 1)
      allocs = a.sys_allocs;
    tg_arena_reset(&a);
  }
  ck_assert_uint_eq(a.sys_allocs, allocs);
  ck_assert_uint_ge(a.capacity, 500000);
  tg_arena_release(&a);
}
END_TEST

/* One training-like step: y = sum(tanh(x*W)) and backward. */
static void step(tg_tape *tape, tg_tensor *W, tg_tensor *x) {
  tg_tensor *y = tg_sum(tape, tg_tanh(tape, tg_mul(tape, x, W)), NULL, 0, 0);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
}

START_TEST(test_steady_state_step_allocates_nothing) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = tg_tensor_new((int64_t[]){64, 300}, 2, 1, "W", NULL);
  tu_fill_uniform(W, tg_tape_rng(tape), -1, 1);
  uint64_t after_first = 0;
  for (int i = 0; i < 100; i++) {
    tg_tensor *x = tg_full(tape, (int64_t[]){64, 300}, 2, (tg_real)0.01 * (tg_real)i);
    step(tape, W, x);
    tg_tape_reset(tape);
    if (i == 1)
      after_first = tg_tape_get_stats(tape).sys_allocs;
  }
  tg_tape_stats st = tg_tape_get_stats(tape);
  ck_assert_msg(st.sys_allocs == after_first, "steps 3..100 made %llu system allocations (want 0)",
                (unsigned long long)(st.sys_allocs - after_first));
  ck_assert_uint_gt(st.arena_peak, 2 * 64 * 300 * sizeof(tg_real));
  tg_tensor_free(W);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Recording and modes */

START_TEST(test_records_only_what_needs_grad) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *c = tg_full(tape, (int64_t[]){3}, 1, 2);
  tg_tensor *y = tg_exp(tape, tg_neg(tape, c));
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0); /* constants: nothing recorded */
  ck_assert(!(y->flags & TG_REQUIRES_GRAD));

  tg_tensor *x = tg_requires_grad(tape, tg_full(tape, (int64_t[]){3}, 1, 2));
  y = tg_exp(tape, tg_neg(tape, x));
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 2);
  ck_assert_int_eq(y->node, 1);
  ck_assert(y->flags & TG_REQUIRES_GRAD);

  ck_assert_int_eq(tg_tape_set_grad(tape, 0), 1);
  y = tg_exp(tape, tg_neg(tape, x));
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 2); /* grad mode off */
  ck_assert(!(y->flags & TG_REQUIRES_GRAD));
  ck_assert_int_eq(tg_tape_set_grad(tape, 1), 0);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_reset_keeps_parameter_gradients) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *w = tg_tensor_new((int64_t[]){2}, 1, 1, "w", NULL);
  w->data[0] = 1;
  w->data[1] = 2;
  ck_assert_int_eq(tg_backward(tape, tg_sum(tape, tg_exp(tape, w), NULL, 0, 0), NULL), TG_OK);
  tg_tape_reset(tape);
  /* Reset frees intermediates only: the gradient stays until zeroed. */
  ck_assert(fabs(tg_at(w->grad, 0) - exp(1)) < 1e-6);
  ck_assert(fabs(tg_at(w->grad, 1) - exp(2)) < 1e-5);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  ck_assert_uint_eq(tg_tape_get_stats(tape).arena_in_use, 0);
  tg_tensor_free(w);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_second_backward_adds_again) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){4}, 1, 0.5, 1.5);
  tg_tensor *y = tg_sum(tape, tg_mul(tape, x, x), NULL, 0, 0);
  ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
  ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
  for (int i = 0; i < 4; i++) /* 2 passes of 2x */
    ck_assert(tu_rel(tg_at(x->grad, i), 4 * tg_at(x, i)) < TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_backward_seed_and_leaf_output) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 2}, 2, -1, 1);
  tg_tensor *y = tg_exp(tape, x);
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_OK);
  for (int i = 0; i < 4; i++)
    ck_assert(tu_rel(tg_at(x->grad, i), (i + 1) * exp(tg_at(x, i))) < TU_VALUE_TOL);
  /* The output may be the leaf itself: its gradient is the seed. */
  tg_tensor *z = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  ck_assert_int_eq(tg_backward(tape, z, tu_ones_like(tape, z)), TG_OK);
  ck_assert(tg_at(z->grad, 0) == 1 && tg_at(z->grad, 1) == 1);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_grad_leaves_leaf_grads_alone) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){3}, 1, 0.5, 1);
  tg_tensor *unused = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  tg_tensor *y = tg_sum(tape, tg_exp(tape, x), NULL, 0, 0);
  tg_tensor *xs[] = {x, unused}, *gx[2];
  ck_assert_int_eq(tg_grad(tape, y, NULL, 2, xs, gx, 0), TG_OK);
  ck_assert_ptr_null(x->grad);
  for (int i = 0; i < 3; i++)
    ck_assert(tu_rel(tg_at(gx[0], i), exp(tg_at(x, i))) < TU_VALUE_TOL);
  ck_assert(tg_at(gx[1], 0) == 0 && tg_at(gx[1], 1) == 0);
  /* Without create_graph nothing was recorded for the gradients. */
  ck_assert(!(gx[0]->flags & TG_REQUIRES_GRAD));
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Higher order */

START_TEST(test_second_derivative_of_tanh) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){5}, 1, -2, 2);
  tg_tensor *g, *gg;
  tg_tensor *y = tg_tanh(tape, x);
  ck_assert_int_eq(tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 1), TG_OK);
  ck_assert(g->flags & TG_REQUIRES_GRAD);
  ck_assert_int_eq(tg_grad(tape, g, tu_ones_like(tape, g), 1, &x, &gg, 0), TG_OK);
  for (int i = 0; i < 5; i++) {
    double t = tanh(tg_at(x, i));
    ck_assert(tu_rel(tg_at(g, i), 1 - t * t) < TU_VALUE_TOL);
    ck_assert_msg(tu_rel(tg_at(gg, i), -2 * t * (1 - t * t)) < 1e-5, "x=%g: %g vs %g", tg_at(x, i),
                  tg_at(gg, i), -2 * t * (1 - t * t));
  }
  tg_tape_free(tape);
}
END_TEST

/* The gradient of tanh, as a function for gradcheck: checks the second
 * derivative against central differences of the first. */
static tg_tensor *tanh_grad_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  tg_tensor *g = NULL;
  tg_tensor *x = in[0];
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *y = tg_tanh(tape, x);
  int st = tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 1);
  tg_tape_set_grad(tape, was);
  return st == TG_OK ? g : NULL;
}

START_TEST(test_second_derivative_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){3, 2}, 2, -1.5, 1.5);
  tg_tensor *in[] = {x};
  tu_assert_gradcheck(tape, tanh_grad_fn, NULL, 1, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_second_and_third_derivative_of_cube) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){2, -0.5}));
  tg_tensor *y = tg_mul(tape, x, tg_mul(tape, x, x));
  tg_tensor *g1, *g2, *g3;
  ck_assert_int_eq(tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g1, 1), TG_OK);
  ck_assert_int_eq(tg_grad(tape, g1, tu_ones_like(tape, g1), 1, &x, &g2, 1), TG_OK);
  ck_assert_int_eq(tg_grad(tape, g2, tu_ones_like(tape, g2), 1, &x, &g3, 0), TG_OK);
  double want1[] = {12, 0.75}, want2[] = {12, -3}, want3[] = {6, 6};
  tu_assert_values(g1, want1, TU_VALUE_TOL);
  tu_assert_values(g2, want2, TU_VALUE_TOL);
  tu_assert_values(g3, want3, TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

/* Newton's method on f(x) = x^4 - 2x^2 from x = 2: x <- x - f'(x)/f''(x),
 * both derivatives from the tape. Converges to the minimum at x = 1. */
START_TEST(test_newton_minimisation) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_tensor_new((int64_t[]){1}, 1, 1, "x", NULL);
  x->data[0] = 2;
  int iters = 0;
  for (; iters < 20 && fabs(tg_at(x, 0) - 1) > 1e-10; iters++) {
    tg_tensor *x2 = tg_mul(tape, x, x);
    tg_tensor *f = tg_sub(tape, tg_mul(tape, x2, x2), tg_mul_scalar(tape, x2, 2));
    tg_tensor *g1, *g2;
    ck_assert_int_eq(tg_grad(tape, f, NULL, 1, &x, &g1, 1), TG_OK);
    ck_assert_int_eq(tg_grad(tape, g1, NULL, 1, &x, &g2, 0), TG_OK);
    x->data[0] -= g1->data[0] / g2->data[0];
    tg_tape_reset(tape);
  }
  ck_assert_msg(fabs(tg_at(x, 0) - 1) < 1e-6, "x = %.17g after %d iterations", tg_at(x, 0), iters);
  ck_assert_int_le(iters, 8); /* quadratic convergence: 7 steps from 2 */
  tg_tensor_free(x);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors */

START_TEST(test_errors_are_sticky_and_named) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  ck_assert_ptr_null(tg_exp(tape, NULL));
  tu_assert_error(tape, "exp (op #0)", "input 0 is NULL");
  /* Every later op returns NULL at once and the first message stays. */
  ck_assert_ptr_null(tg_tanh(tape, x));
  tu_assert_error(tape, "exp (op #0)");
  ck_assert_int_eq(tg_backward(tape, x, NULL), TG_ERR_NULL);
  tg_tape_reset(tape);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  ck_assert_str_eq(tg_tape_error(tape), "");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_stale_and_foreign_tensors) {
  tg_tape *tape = tg_tape_new(), *other = tg_tape_new();
  tg_tensor *x = tg_full(tape, (int64_t[]){2, 3}, 2, 1);
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_exp(tape, x));
  tu_assert_error(tape, "exp (op #0)", "(2, 3)", "earlier step");
  tg_tape_reset(tape);
  tg_tensor *y = tg_full(other, (int64_t[]){4}, 1, 1);
  ck_assert_ptr_null(tg_neg(tape, y));
  tu_assert_error(tape, "neg", "another tape");
  tg_tape_free(tape);
  tg_tape_free(other);
}
END_TEST

START_TEST(test_backward_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *c = tg_full(tape, (int64_t[]){2}, 1, 1);
  ck_assert_int_eq(tg_backward(tape, tg_exp(tape, c), NULL), TG_ERR_GRAD);
  tu_assert_error(tape, "backward", "does not require grad");
  tg_tape_reset(tape);

  tg_tensor *x = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  tg_tensor *bad_seed = tg_full(tape, (int64_t[]){3}, 1, 1);
  ck_assert_int_eq(tg_backward(tape, tg_exp(tape, x), bad_seed), TG_ERR_SHAPE);
  tu_assert_error(tape, "seed gradient (3,) does not match output (2,)");
  tg_tape_reset(tape);

  x = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  tg_tensor *gx, *k = tg_full(tape, (int64_t[]){2}, 1, 1);
  ck_assert_int_eq(tg_grad(tape, tg_exp(tape, x), NULL, 1, &k, &gx, 0), TG_ERR_GRAD);
  tu_assert_error(tape, "grad (op #1): input 0 (2,) does not require grad");
  tg_tape_reset(tape);

  tg_tensor *y = tg_exp(tape, tu_leaf(tape, (int64_t[]){2}, 1, 0, 1));
  ck_assert_ptr_null(tg_requires_grad(tape, y));
  tu_assert_error(tape, "requires_grad", "not a leaf");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Anomaly mode */

/* tape.h's NULL policy, function by function: a NULL tape is accepted
 * everywhere, changes nothing and reads as TG_ERR_NULL, 0, NULL or zeros. */
START_TEST(test_null_tape_policy) {
  tg_tape *t = NULL;
  ck_assert_int_eq(tg_tape_status(t), TG_ERR_NULL);
  ck_assert_str_eq(tg_tape_error(t), "tape is NULL");
  ck_assert_int_eq(tg_tape_fail(t, TG_ERR_SHAPE, "who", "what"), TG_ERR_SHAPE);
  ck_assert_int_eq(tg_tape_set_grad(t, 1), 0);
  ck_assert_int_eq(tg_tape_grad_enabled(t), 0);
  ck_assert_int_eq(tg_tape_set_train(t, 1), 0);
  ck_assert_int_eq(tg_tape_training(t), 0);
  ck_assert_int_eq(tg_tape_set_anomaly(t, 1), 0);
  ck_assert_int_eq(tg_tape_holds(t, NULL), 0);
  ck_assert_ptr_null(tg_tape_rng(t));
  tg_tape_seed(t, 7);
  const int64_t shape[] = {2};
  ck_assert_ptr_null(tg_empty(t, shape, 1));
  ck_assert_ptr_null(tg_zeros(t, shape, 1));
  ck_assert_ptr_null(tg_full(t, shape, 1, 1));
  ck_assert_ptr_null(tg_scalar(t, 1));
  ck_assert_ptr_null(tg_from_values(t, shape, 1, (double[]){1, 2}));
  ck_assert_ptr_null(tg_requires_grad(t, NULL));
  ck_assert_int_eq(tg_backward(t, NULL, NULL), TG_ERR_NULL);
  tg_tensor *gx = NULL;
  ck_assert_int_eq(tg_grad(t, NULL, NULL, 0, NULL, &gx, 0), TG_ERR_NULL);
  tg_tape_stats st = tg_tape_get_stats(t);
  ck_assert(st.nodes == 0 && st.arena_in_use == 0 && st.arena_peak == 0 && st.arena_capacity == 0 &&
            st.sys_allocs == 0);
  ck_assert_int_eq(tg_tape_write_dot(t, stdout), TG_ERR_NULL);
  tg_tape_mark m = tg_tape_get_mark(t);
  ck_assert(m.nodes == 0 && m.block == NULL && m.used == 0 && m.in_use == 0);
  tg_tape_rewind(t, m);
  tg_tape_reset(t);
  tg_tape_free(t);
}
END_TEST

/* Layers, ops and the engine fail through one formatter: "who (op #k): ...",
 * k the position the next op would take, whoever is speaking. */
START_TEST(test_error_messages_name_the_position) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_requires_grad(tape, tg_zeros(tape, (int64_t[]){2}, 1));
  tg_tensor *y = tg_exp(tape, tg_exp(tape, x)); /* ops #0 and #1 */
  ck_assert_ptr_nonnull(y);
  ck_assert_ptr_null(tg_relu(tape, NULL)); /* a layer of nn/ */
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_NULL);
  ck_assert_str_eq(tg_tape_error(tape), "relu (op #2): x is NULL");
  tg_tape_reset(tape);
  x = tg_zeros(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_nonnull(tg_exp(tape, x)); /* not recorded: no gradient needed */
  ck_assert_ptr_null(tg_exp(tape, NULL)); /* an op */
  ck_assert_str_eq(tg_tape_error(tape), "exp (op #0): input 0 is NULL");
  tg_tape_reset(tape);
  tg_tape_fail(tape, TG_ERR_ARG, "mine", "%d is wrong", 3); /* a caller's own */
  ck_assert_str_eq(tg_tape_error(tape), "mine (op #0): 3 is wrong");
  tg_tape_fail(tape, TG_ERR_SHAPE, "later", "ignored"); /* the first error stays */
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_ARG);
  ck_assert_str_eq(tg_tape_error(tape), "mine (op #0): 3 is wrong");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_anomaly_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, -1, 2});
  /* Off: NaN flows through quietly, as in IEEE arithmetic. */
  ck_assert_ptr_nonnull(tg_log(tape, x));
  ck_assert_int_eq(tg_tape_set_anomaly(tape, 1), 0);
  tg_tensor *e = tg_exp(tape, x);
  ck_assert_ptr_nonnull(e);
  ck_assert_ptr_null(tg_log(tape, tg_neg(tape, e)));
  tu_assert_error(tape, "log (op #0)", "NaN or Inf");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_anomaly_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_anomaly(tape, 1);
  /* sqrt at 0 is finite forward; its gradient 1/(2·0) is not. */
  tg_tensor *x = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){4, 0}));
  tg_tensor *y = tg_sum(tape, tg_sqrt(tape, x), NULL, 0, 0);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_ne(tg_backward(tape, y, NULL), TG_OK);
  tu_assert_error(tape, "backward of op #", "NaN or Inf");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Safety: writes after forward, stale tensors, a forgotten reset */

/* A leaf written between forward and backward: the gradient at the
 * recorded x is 27, at the new x 3; returning 11 (a mix) silently was the
 * bug. Through the API (or with tg_tensor_bump) backward names the tensor
 * and the op; in anomaly mode even the raw write alone is caught. */
static int cube_after_write(int anomaly, int bump, tg_tape *tape, tg_tensor *x) {
  tg_tape_set_anomaly(tape, anomaly);
  x->data[0] = 3;
  tg_tensor_bump(x);
  tg_tensor *y = tg_mul(tape, x, tg_mul(tape, x, x));
  x->data[0] = 1;
  if (bump)
    tg_tensor_bump(x);
  return tg_backward(tape, y, NULL);
}

START_TEST(test_leaf_written_after_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_tensor_new((int64_t[]){1}, 1, 1, "x", NULL);
  ck_assert_int_eq(cube_after_write(0, 1, tape, x), TG_ERR_GRAD);
  tu_assert_error(tape, "backward", "x (1,) of mul (op #", "modified after the op was recorded",
                  "version");
  ck_assert_double_eq(tg_at(x->grad, 0), 0);
  tg_tape_reset(tape);
  ck_assert_int_eq(cube_after_write(1, 0, tape, x), TG_ERR_GRAD); /* the issue's example */
  tu_assert_error(tape, "backward", "x (1,) of mul", "without tg_tensor_bump");
  ck_assert_double_eq(tg_at(x->grad, 0), 0);
  /* Written through the API: tg_tensor_fill bumps too. */
  tg_tape_reset(tape);
  tg_tape_set_anomaly(tape, 0);
  tg_tensor *y = tg_exp(tape, x);
  tg_tensor_fill(x, 2);
  ck_assert_int_eq(tg_backward(tape, y, NULL), TG_ERR_GRAD);
  tu_assert_error(tape, "exp (op #0)", "modified");
  /* Nothing written: the gradient at the recorded x. */
  tg_tape_reset(tape);
  x->data[0] = 3;
  tg_tensor_bump(x);
  y = tg_mul(tape, x, tg_mul(tape, x, x));
  ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
  ck_assert_double_eq(tg_at(x->grad, 0), 27);
  tg_tape_free(tape);
  tg_tensor_free(x);
}
END_TEST

/* A tensor of an earlier step after the arena has handed its memory out
 * again: in normal mode p is q (the documented limit); in anomaly mode no
 * memory is reused, so p keeps its old generation and is refused. */
START_TEST(test_stale_tensor_after_reuse) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *p = tg_full(tape, (int64_t[]){4}, 1, 1);
  tg_tape_reset(tape);
  tg_tensor *q = tg_full(tape, (int64_t[]){4}, 1, 2);
  ck_assert_ptr_eq(p, q); /* normal mode: reused, indistinguishable */
  tg_tape_reset(tape);
  tg_tape_set_anomaly(tape, 1);
  p = tg_full(tape, (int64_t[]){4}, 1, 1);
  for (int step = 0; step < 3; step++) {
    tg_tape_reset(tape);
    q = tg_full(tape, (int64_t[]){4}, 1, 2);
    ck_assert_ptr_ne(p, q);
    ck_assert_msg(!tg_tape_holds(tape, p), "step %d: a stale tensor is held", step);
    ck_assert_ptr_null(tg_exp(tape, p));
    tu_assert_error(tape, "exp (op #0)", "input 0 (4,) is from an earlier step");
    ck_assert_double_eq(tg_at(p, 0), 1); /* its memory is still its own */
  }
  /* Back in normal mode, the next reset returns the kept memory. */
  tg_tape_set_anomaly(tape, 0);
  tg_tape_reset(tape);
  ck_assert_ptr_nonnull(tg_full(tape, (int64_t[]){4}, 1, 2));
  tg_tape_free(tape);
}
END_TEST

/* A loop that forgets tg_tape_reset: the stats count its backward passes,
 * and anomaly mode says so once on stderr; with resets, no word. */
static char *stderr_of_loop(int anomaly, int reset) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_anomaly(tape, anomaly);
  tg_tensor *w = tg_tensor_new((int64_t[]){3}, 1, 1, "w", NULL);
  FILE *cap = tmpfile();
  ck_assert_ptr_nonnull(cap);
  fflush(stderr);
  int saved = dup(fileno(stderr));
  dup2(fileno(cap), fileno(stderr));
  for (int i = 0; i < 2 * TG_ANOMALY_BACKWARDS; i++) {
    if (reset)
      tg_tape_reset(tape);
    tg_tensor *y = tg_sum(tape, tg_exp(tape, w), NULL, 0, 0);
    ck_assert_int_eq(tg_backward(tape, y, NULL), TG_OK);
  }
  fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  ck_assert_int_eq(tg_tape_get_stats(tape).backwards, reset ? 1 : 2 * TG_ANOMALY_BACKWARDS);
  long n = ftell(cap);
  char *text = calloc(1, (size_t)n + 1);
  rewind(cap);
  ck_assert_int_eq((long)fread(text, 1, (size_t)n, cap), n);
  fclose(cap);
  tg_tensor_free(w);
  tg_tape_free(tape);
  return text;
}

START_TEST(test_missing_reset_is_noticed) {
  char *t = stderr_of_loop(1, 0);
  ck_assert_msg(strstr(t, "100 backward passes on one tape since its last reset") &&
                    strstr(t, "is tg_tape_reset missing from a loop?"),
                "%s", t);
  ck_assert_msg(strstr(strstr(t, "warning") + 1, "warning") == NULL, "warned twice: %s", t);
  free(t);
  t = stderr_of_loop(1, 1);
  ck_assert_str_eq(t, "");
  free(t);
  t = stderr_of_loop(0, 0);
  ck_assert_str_eq(t, "");
  free(t);
}
END_TEST

/* ------------------------------------------------------------------------
 * Op descriptors that disagree with what an op records: a bug in the op,
 * caught and named, never a silently missing gradient. */

static void pass_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  (void)tape;
  for (int i = 0; i < n->n_in; i++)
    gx[i] = gy;
}
static const tg_op op_one_input = {"one_input", 1, 0, pass_backward};

START_TEST(test_descriptor_counts_are_checked) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  tg_tensor *b = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  tg_tensor *in[] = {a, b};
  /* More inputs than the descriptor declares, at begin and at record. */
  ck_assert_int_eq(tg_op_begin(tape, &op_one_input, 2, in), 0);
  tu_assert_error(tape, "one_input (op #0)", "given 2 inputs", "declares 1");
  tg_tape_reset(tape);
  a = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  b = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  in[0] = a;
  in[1] = b;
  tg_tensor *y = tg_empty(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_null(tg_op_record(tape, &op_one_input, y, 2, in, NULL, 0));
  tu_assert_error(tape, "one_input", "recorded with 2 inputs", "declares 1");
  /* More attributes than a node holds. */
  tg_tape_reset(tape);
  a = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  y = tg_empty(tape, (int64_t[]){2}, 1);
  int64_t attr[TG_MAX_ATTRS + 1] = {0};
  ck_assert_ptr_null(tg_op_record(tape, &op_one_input, y, 1, &a, attr, TG_MAX_ATTRS + 1));
  tu_assert_error(tape, "one_input", "attributes (at most");
  /* Right counts record, and the node knows how many inputs it holds. */
  tg_tape_reset(tape);
  a = tu_leaf(tape, (int64_t[]){2}, 1, -1, 1);
  y = tg_empty(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_nonnull(tg_op_record(tape, &op_one_input, y, 1, &a, attr, TG_MAX_ATTRS));
  tg_tape_free(tape);
}
END_TEST

/* An implied seed is for outputs of one element only: a non-scalar y is
 * an error naming its shape, not a silent sum (PyTorch: "grad can be
 * implicitly created only for scalar outputs"). */
START_TEST(test_backward_needs_a_seed_for_non_scalars) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3}, 2, -1, 1);
  ck_assert_int_eq(tg_backward(tape, tg_exp(tape, x), NULL), TG_ERR_SHAPE);
  tu_assert_error(tape, "backward", "output (2, 3) is not a scalar", "pass dy");
  ck_assert_ptr_null(x->grad);
  tg_tape_reset(tape);
  x = tu_leaf(tape, (int64_t[]){2, 3}, 2, -1, 1);
  tg_tensor *g = NULL;
  ck_assert_int_eq(tg_grad(tape, tg_exp(tape, x), NULL, 1, &x, &g, 0), TG_ERR_SHAPE);
  tu_assert_error(tape, "grad", "output (2, 3) is not a scalar");
  /* One element in any shape is a scalar: its seed is 1. */
  tg_tape_reset(tape);
  x = tu_leaf(tape, (int64_t[]){1, 1}, 2, -1, 1);
  ck_assert_int_eq(tg_backward(tape, tg_exp(tape, x), NULL), TG_OK);
  ck_assert(tu_rel(tg_at(x->grad, 0), exp(tg_at(x, 0))) < TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Generator */

START_TEST(test_rng_is_seeded_and_uniform) {
  tg_rng a, b;
  tg_rng_seed(&a, 42);
  tg_rng_seed(&b, 42);
  for (int i = 0; i < 100; i++)
    ck_assert_uint_eq(tg_rng_next(&a), tg_rng_next(&b));
  double sum = 0, sq = 0;
  int counts[10] = {0};
  for (int i = 0; i < 100000; i++) {
    double z = tg_rng_normal(&a);
    sum += z;
    sq += z * z;
    counts[tg_rng_below(&a, 10)]++;
  }
  ck_assert_msg(fabs(sum / 1e5) < 0.02 && fabs(sq / 1e5 - 1) < 0.02, "mean %g var %g", sum / 1e5,
                sq / 1e5);
  for (int k = 0; k < 10; k++)
    ck_assert_msg(abs(counts[k] - 10000) < 500, "bucket %d: %d", k, counts[k]);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("tensor");
  tcase_add_test(tc, test_tensor_new_checks_shapes);
  tcase_add_test(tc, test_tensor_new_owned);
  tcase_add_test(tc, test_rng_is_seeded_and_uniform);
  suite_add_tcase(s, tc);
  tc = tcase_create("arena");
  tcase_add_test(tc, test_arena_aligns_grows_and_folds);
  tcase_add_test(tc, test_arena_folds_to_the_most_held);
  tcase_add_test(tc, test_steady_state_step_allocates_nothing);
  suite_add_tcase(s, tc);
  tc = tcase_create("tape");
  tcase_add_test(tc, test_records_only_what_needs_grad);
  tcase_add_test(tc, test_reset_keeps_parameter_gradients);
  tcase_add_test(tc, test_second_backward_adds_again);
  tcase_add_test(tc, test_backward_seed_and_leaf_output);
  tcase_add_test(tc, test_grad_leaves_leaf_grads_alone);
  tcase_add_test(tc, test_null_tape_policy);
  tcase_add_test(tc, test_error_messages_name_the_position);
  tcase_add_test(tc, test_descriptor_counts_are_checked);
  tcase_add_test(tc, test_leaf_written_after_forward);
  tcase_add_test(tc, test_stale_tensor_after_reuse);
  tcase_add_test(tc, test_missing_reset_is_noticed);
  tcase_add_test(tc, test_backward_needs_a_seed_for_non_scalars);
  suite_add_tcase(s, tc);
  tc = tcase_create("higher-order");
  tcase_add_test(tc, test_second_derivative_of_tanh);
  tcase_add_test(tc, test_second_derivative_gradcheck);
  tcase_add_test(tc, test_second_and_third_derivative_of_cube);
  tcase_add_test(tc, test_newton_minimisation);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, test_errors_are_sticky_and_named);
  tcase_add_test(tc, test_stale_and_foreign_tensors);
  tcase_add_test(tc, test_backward_errors);
  tcase_add_test(tc, test_anomaly_forward);
  tcase_add_test(tc, test_anomaly_backward);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
