/* test_nn.c — the book's layers and losses (nn/), first half: forward
 * values against plain loops and hand values, and gradients against
 * central differences. test_nn_book.c holds the other half: the book's
 * hand-derived backward formulas as oracles, train/eval modes, errors.
 *
 * Expected values never come from the code under test: every reference is
 * a loop over the raw data in double, or a number worked out by hand (the
 * book's printed examples). No op runs in main() (TOOLCHAIN.md: a forked
 * Check test hangs if its parent ran OpenMP).
 */
#include "nn_test_helpers.h"

/* ------------------------------------------------------------------------
 * (a) Forward values */

START_TEST(test_relu_step_identity_forward) {
  tg_tape *tape = tg_tape_new();
  const double v[6] = {-2, -0.5, 0, 0.5, 3, -1e-3};
  tg_tensor *x = tg_requires_grad(tape, vals(tape, (int64_t[]){2, 3}, 2, v));
  double relu[6], step[6], same[6]; /* from x's data: -1e-3 is not a float */
  for (int i = 0; i < 6; i++) {
    same[i] = tg_at(x, i);
    relu[i] = same[i] > 0 ? same[i] : 0;
    step[i] = same[i] > 0 ? 1 : 0;
  }
  tg_tensor *r = tg_relu(tape, x), *s = tg_step(tape, x), *id = tg_identity(tape, x);
  expect(r, relu, 6, 0, "relu");
  expect(s, step, 6, 0, "step");
  expect(id, same, 6, 0, "identity");
  ck_assert_msg(tg_shape_eq(r, x) && tg_shape_eq(s, x), "relu/step change the shape");
  ck_assert_msg(!(s->flags & TG_REQUIRES_GRAD), "step must be a constant");
  ck_assert_msg(r->flags & TG_REQUIRES_GRAD, "relu must carry a gradient");
  tg_tape_free(tape);
}
END_TEST

/* Includes ±1000, where the book's 1/(1 + e^-x) overflows e^-x. */
START_TEST(test_sigmoid_forward_and_saturation) {
  tg_tape *tape = tg_tape_new();
  const double v[10] = {-1000, -40, -3, -0.5, 0, 0.25, 0.5, 3, 40, 1000};
  tg_tensor *x = tg_requires_grad(tape, vals(tape, (int64_t[]){10}, 1, v));
  double want[10];
  for (int i = 0; i < 10; i++)
    want[i] = 1 / (1 + exp(-v[i])); /* in double: e^1000 = inf gives 0, still exact */
  tg_tensor *y = tg_sigmoid(tape, x);
  expect(y, want, 10, TU_VALUE_TOL, "sigmoid");
  ck_assert(tg_at(y, 0) == 0 && tg_at(y, 9) == 1);
  ck_assert_int_eq(tg_backward(tape, y, tu_ones_like(tape, y)), TG_OK);
  ck_assert_msg(all_finite(x->grad), "sigmoid's gradient is not finite at ±1000");
  ck_assert(tg_at(x->grad, 0) == 0 && tg_at(x->grad, 9) == 0);
  ck_assert_msg(fabs(tg_at(x->grad, 4) - 0.25) <= TU_VALUE_TOL, "sigmoid'(0) = %g, want 1/4",
                tg_at(x->grad, 4));
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_softmax_large_logits) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = vals(tape, (int64_t[]){3}, 1, (double[]){1010, 1000, 990});
  tg_tensor *y = tg_softmax(tape, x, 0);
  /* By hand: e^0, e^-10, e^-20 over their sum. */
  double s = 1 + exp(-10) + exp(-20);
  double want[3] = {1 / s, exp(-10) / s, exp(-20) / s};
  expect(y, want, 3, TU_VALUE_TOL, "softmax(1010, 1000, 990)");
  ck_assert_msg(all_finite(y), "softmax(1010, 1000, 990) is not finite");
  ck_assert_msg(fabs(tg_at(y, 0) + tg_at(y, 1) + tg_at(y, 2) - 1) <= TU_VALUE_TOL,
                "softmax does not sum to 1");
  tg_tensor *ly = tg_log_softmax(tape, x, -1);
  double lwant[3] = {-log(s), -10 - log(s), -20 - log(s)};
  expect(ly, lwant, 3, TU_VALUE_TOL, "log_softmax(1010, 1000, 990)");
  tg_tape_free(tape);
}
END_TEST

/* Softmax and log-softmax of a (3, 4) matrix along either axis, against
 * loops over rows or columns. */
START_TEST(test_softmax_axes_vs_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 3);
  tg_tensor *x = rand_t(tape, (int64_t[]){3, 4}, 2, -3, 3, 0);
  for (int axis = -2; axis < 2; axis++) {
    int d = axis < 0 ? axis + 2 : axis;
    double want[12], lwant[12];
    int64_t outer = d == 0 ? 4 : 3, len = d == 0 ? 3 : 4;
    for (int64_t o = 0; o < outer; o++) {
      /* element k of line o: row-major index */
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < len; k++)
        m = fmax(m, tg_at(x, d == 0 ? k * 4 + o : o * 4 + k));
      for (int64_t k = 0; k < len; k++)
        s += exp(tg_at(x, d == 0 ? k * 4 + o : o * 4 + k) - m);
      for (int64_t k = 0; k < len; k++) {
        int64_t i = d == 0 ? k * 4 + o : o * 4 + k;
        want[i] = exp(tg_at(x, i) - m) / s;
        lwant[i] = tg_at(x, i) - m - log(s);
      }
    }
    expect(tg_softmax(tape, x, axis), want, 12, TU_VALUE_TOL, "softmax");
    expect(tg_log_softmax(tape, x, axis), lwant, 12, TU_VALUE_TOL, "log_softmax");
  }
  tg_tape_free(tape);
}
END_TEST

/* The book's worked examples (chapter 4): t is "2", y1 puts 0.6 on it, y2
 * puts 0.6 on "7". Values as the book prints them. */
START_TEST(test_mse_cross_entropy_book_values) {
  tg_tape *tape = tg_tape_new();
  const double t[10] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  const double y1[10] = {0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0};
  const double y2[10] = {0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0};
  int64_t sh[1] = {10};
  tg_tensor *tt = vals(tape, sh, 1, t), *a = vals(tape, sh, 1, y1), *b = vals(tape, sh, 1, y2);
  expect(tg_mse(tape, a, tt), (double[]){0.0975}, 1, TU_VALUE_TOL, "mse(y1)");
  expect(tg_mse(tape, b, tt), (double[]){0.5975}, 1, TU_VALUE_TOL, "mse(y2)");
  expect(tg_cross_entropy(tape, a, tt), (double[]){0.51082545709933802}, 1, TU_VALUE_TOL,
         "cross_entropy(y1)");
  expect(tg_cross_entropy(tape, b, tt), (double[]){2.3025840929945458}, 1, TU_VALUE_TOL,
         "cross_entropy(y2)");
  /* One sample with a label instead of one-hot. */
  tg_tensor *label = vals(tape, (int64_t[]){1}, 1, (double[]){2});
  expect(tg_cross_entropy(tape, a, label), (double[]){0.51082545709933802}, 1, TU_VALUE_TOL,
         "cross_entropy(y1, label 2)");
  tg_tape_free(tape);
}
END_TEST

/* Batches: cross-entropy and softmax-with-loss with labels and with
 * one-hot rows, against loops. */
START_TEST(test_batch_losses_vs_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 5);
  const int64_t N = 4, C = 5;
  const double labels[4] = {3, 0, 4, 3};
  tg_tensor *p = rand_t(tape, (int64_t[]){N, C}, 2, 0.01, 1, 0);
  tg_tensor *z = rand_t(tape, (int64_t[]){N, C}, 2, -4, 4, 0);
  tg_tensor *lab = vals(tape, (int64_t[]){N}, 1, labels);
  double oh[20] = {0}, ce = 0, sce = 0, mse = 0, row[5];
  for (int64_t i = 0; i < N; i++) {
    int64_t k = (int64_t)labels[i];
    oh[i * C + k] = 1;
    ce -= log(tg_at(p, i * C + k) + 1e-7) / (double)N;
    ref_softmax_row(z, i, C, row);
    sce -= log(row[k]) / (double)N;
  }
  for (int64_t i = 0; i < N * C; i++)
    mse += 0.5 * (tg_at(p, i) - oh[i]) * (tg_at(p, i) - oh[i]);
  tg_tensor *onehot = vals(tape, (int64_t[]){N, C}, 2, oh);
  expect(tg_one_hot(tape, lab, C), oh, N * C, 0, "one_hot");
  expect(tg_cross_entropy(tape, p, lab), &ce, 1, TU_VALUE_TOL, "cross_entropy(labels)");
  expect(tg_cross_entropy(tape, p, onehot), &ce, 1, TU_VALUE_TOL, "cross_entropy(one-hot)");
  expect(tg_softmax_cross_entropy(tape, z, lab), &sce, 1, TU_VALUE_TOL, "sce(labels)");
  expect(tg_softmax_cross_entropy(tape, z, onehot), &sce, 1, TU_VALUE_TOL, "sce(one-hot)");
  expect(tg_mse(tape, p, onehot), &mse, 1, TU_VALUE_TOL, "mse");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_one_hot_and_accuracy) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *lab = vals(tape, (int64_t[]){3}, 1, (double[]){2, 0, 1});
  tg_tensor *oh = tg_one_hot(tape, lab, 4);
  expect(oh, (double[]){0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0}, 12, 0, "one_hot");
  ck_assert(oh->ndim == 2 && oh->shape[0] == 3 && oh->shape[1] == 4);
  ck_assert_msg(!(oh->flags & TG_REQUIRES_GRAD), "one_hot must be a constant");
  /* Row argmaxes 0, 2, 0, 1 against labels 0, 2, 1, 1: 3 of 4. */
  tg_tensor *logits = vals(tape, (int64_t[]){4, 3}, 2,
                           (double[]){0.9, 0.1, 0.0, -1, 0.5, 2, 3, 1, 2, 0.1, 0.7, 0.2});
  tg_tensor *labels = vals(tape, (int64_t[]){4}, 1, (double[]){0, 2, 1, 1});
  ck_assert_double_eq(tg_accuracy(tape, logits, labels), 0.75);
  tg_tensor *onehot =
      vals(tape, (int64_t[]){4, 3}, 2, (double[]){1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0});
  ck_assert_double_eq(tg_accuracy(tape, logits, onehot), 0.75);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  /* A label outside the classes, or not a class index, is an error as in
   * one_hot and cross-entropy, not a miss counted silently. */
  ck_assert(
      isnan(tg_accuracy(tape, logits, vals(tape, (int64_t[]){4}, 1, (double[]){0, 2, 3, 1}))));
  tu_assert_error(tape, "accuracy", "label 3 in row 2 is outside [0, 3)");
  tg_tape_reset(tape);
  logits = vals(tape, (int64_t[]){2, 3}, 2, (double[]){1, 0, 0, 0, 1, 0});
  ck_assert(isnan(tg_accuracy(tape, logits, vals(tape, (int64_t[]){2}, 1, (double[]){0, 1.5}))));
  tu_assert_error(tape, "accuracy", "label 1.5 in row 1 is not a class index");
  tg_tape_reset(tape);
  logits = vals(tape, (int64_t[]){2, 3}, 2, (double[]){1, 0, 0, 0, 1, 0});
  ck_assert(isnan(tg_accuracy(tape, logits, vals(tape, (int64_t[]){2}, 1, (double[]){-1, 1}))));
  tu_assert_error(tape, "accuracy", "label -1 in row 0");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_weight_decay_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *w[2] = {vals(tape, (int64_t[]){2, 2}, 2, (double[]){1, -2, 3, 0.5}),
                     vals(tape, (int64_t[]){3}, 1, (double[]){-1, 1, 2})};
  /* ½·0.1·(1 + 4 + 9 + 0.25 + 1 + 1 + 4) */
  expect(tg_weight_decay(tape, w, 2, 0.1), (double[]){0.05 * 20.25}, 1, TU_VALUE_TOL, "wd");
  expect(tg_weight_decay(tape, w, 2, 0), (double[]){0}, 1, 0, "wd(lambda 0)");
  expect(tg_weight_decay(tape, NULL, 0, 0.1), (double[]){0}, 1, 0, "wd(no weights)");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * (b) Gradient checks */

typedef struct gc_ctx {
  int which; /* the layer, see gc_fn */
  int axis;
  double ratio;
  uint64_t seed;
  tg_batchnorm *bn;
} gc_ctx;

enum {
  GC_RELU,
  GC_SIGMOID,
  GC_SOFTMAX,
  GC_LOG_SOFTMAX,
  GC_MSE,
  GC_CE,
  GC_SCE,
  GC_AFFINE,
  GC_AFFINE_NOBIAS,
  GC_DROPOUT,
  GC_BN,
  GC_WD
};

static tg_tensor *gc_fn(tg_tape *tape, tg_tensor *const *in, void *vctx) {
  gc_ctx *c = vctx;
  switch (c->which) {
  case GC_RELU:
    return tg_relu(tape, in[0]);
  case GC_SIGMOID:
    return tg_sigmoid(tape, in[0]);
  case GC_SOFTMAX:
    return tg_softmax(tape, in[0], c->axis);
  case GC_LOG_SOFTMAX:
    return tg_log_softmax(tape, in[0], c->axis);
  case GC_MSE:
    return tg_mse(tape, in[0], in[1]);
  case GC_CE:
    return tg_cross_entropy(tape, in[0], in[1]);
  case GC_SCE:
    return tg_softmax_cross_entropy(tape, in[0], in[1]);
  case GC_AFFINE:
    return tg_affine(tape, in[0], in[1], in[2]);
  case GC_AFFINE_NOBIAS:
    return tg_affine(tape, in[0], in[1], NULL);
  case GC_DROPOUT:
    /* The same mask on every evaluation: reseed before drawing it. */
    tg_tape_seed(tape, c->seed);
    return tg_dropout(tape, in[0], c->ratio);
  case GC_BN:
    return tg_batchnorm_forward(tape, c->bn, in[0]);
  default:
    return tg_weight_decay(tape, in, 2, 0.3);
  }
}

static void gradcheck(tg_tape *tape, gc_ctx c, int n, tg_tensor *const *in) {
  tu_assert_gradcheck(tape, gc_fn, &c, n, in, TU_GRAD_TOL);
}

START_TEST(test_gradcheck_activations) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 11);
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){3, 4}, 2));
  tu_fill_signed(x, tg_tape_rng(tape), 0.1, 2); /* away from ReLU's kink */
  gradcheck(tape, (gc_ctx){.which = GC_RELU}, 1, &x);
  tg_tensor *s = rand_t(tape, (int64_t[]){3, 4}, 2, -4, 4, 1);
  gradcheck(tape, (gc_ctx){.which = GC_SIGMOID}, 1, &s);
  tg_tensor *x3 = rand_t(tape, (int64_t[]){2, 3, 4}, 3, -3, 3, 1);
  for (int axis = -3; axis < 3; axis++) {
    gradcheck(tape, (gc_ctx){.which = GC_SOFTMAX, .axis = axis}, 1, &x3);
    gradcheck(tape, (gc_ctx){.which = GC_LOG_SOFTMAX, .axis = axis}, 1, &x3);
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_losses) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 12);
  int64_t sh[2] = {4, 5};
  tg_tensor *y = rand_t(tape, sh, 2, -1, 1, 1), *t = rand_t(tape, sh, 2, -1, 1, 1);
  gradcheck(tape, (gc_ctx){.which = GC_MSE}, 2, (tg_tensor *[]){y, t});
  tg_tensor *p = rand_t(tape, sh, 2, 0.05, 1, 1); /* probabilities away from 0 */
  tg_tensor *z = rand_t(tape, sh, 2, -3, 3, 1);
  tg_tensor *lab = vals(tape, (int64_t[]){4}, 1, (double[]){1, 4, 0, 1});
  tg_tensor *oh = tg_one_hot(tape, lab, 5);
  gradcheck(tape, (gc_ctx){.which = GC_CE}, 2, (tg_tensor *[]){p, lab});
  gradcheck(tape, (gc_ctx){.which = GC_CE}, 2, (tg_tensor *[]){p, oh});
  gradcheck(tape, (gc_ctx){.which = GC_SCE}, 2, (tg_tensor *[]){z, lab});
  gradcheck(tape, (gc_ctx){.which = GC_SCE}, 2, (tg_tensor *[]){z, oh});
  /* A single sample (C,) with one label, as the book allows. */
  tg_tensor *z1 = rand_t(tape, (int64_t[]){5}, 1, -3, 3, 1);
  tg_tensor *l1 = vals(tape, NULL, 0, (double[]){3});
  gradcheck(tape, (gc_ctx){.which = GC_SCE}, 2, (tg_tensor *[]){z1, l1});
  /* Soft targets that require grad get −log_softmax/N. */
  tg_tensor *soft = rand_t(tape, sh, 2, 0, 1, 1);
  gradcheck(tape, (gc_ctx){.which = GC_SCE}, 2, (tg_tensor *[]){z, soft});
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_affine) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 13);
  tg_tensor *x = rand_t(tape, (int64_t[]){4, 6}, 2, -1, 1, 1);
  tg_tensor *W = rand_t(tape, (int64_t[]){6, 3}, 2, -1, 1, 1);
  tg_tensor *b = rand_t(tape, (int64_t[]){3}, 1, -1, 1, 1);
  gradcheck(tape, (gc_ctx){.which = GC_AFFINE}, 3, (tg_tensor *[]){x, W, b});
  /* x (N, C, H, W) flattened to (N, C·H·W). */
  tg_tensor *x4 = rand_t(tape, (int64_t[]){2, 3, 2, 2}, 4, -1, 1, 1);
  tg_tensor *W4 = rand_t(tape, (int64_t[]){12, 5}, 2, -1, 1, 1);
  gradcheck(tape, (gc_ctx){.which = GC_AFFINE_NOBIAS}, 2, (tg_tensor *[]){x4, W4});
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_dropout_fixed_seed) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 14);
  tg_tensor *x = rand_t(tape, (int64_t[]){5, 6}, 2, -2, 2, 1);
  gradcheck(tape, (gc_ctx){.which = GC_DROPOUT, .ratio = 0.4, .seed = 99}, 1, &x);
  tg_tape_free(tape);
}
END_TEST

/* Train mode for (N, D) and (N, C, H, W), then eval mode; gradients with
 * respect to x, gamma and beta. */
START_TEST(test_gradcheck_batchnorm) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 15);
  tg_rng *r = tg_tape_rng(tape);
  tg_batchnorm bn2 = bn_make(4, r), bn4 = bn_make(3, r);
  tg_tensor *x2 = rand_t(tape, (int64_t[]){6, 4}, 2, -1, 2, 1);
  tg_tensor *x4 = rand_t(tape, (int64_t[]){2, 3, 2, 3}, 4, -1, 2, 1);
  gradcheck(tape, (gc_ctx){.which = GC_BN, .bn = &bn2}, 3,
            (tg_tensor *[]){x2, bn2.gamma, bn2.beta});
  gradcheck(tape, (gc_ctx){.which = GC_BN, .bn = &bn4}, 3,
            (tg_tensor *[]){x4, bn4.gamma, bn4.beta});
  tg_tape_set_train(tape, 0);
  tu_fill_uniform(bn4.running_var, r, 0.5, 2);
  gradcheck(tape, (gc_ctx){.which = GC_BN, .bn = &bn4}, 3,
            (tg_tensor *[]){x4, bn4.gamma, bn4.beta});
  bn_free(&bn2);
  bn_free(&bn4);
  tg_tape_free(tape);
}
END_TEST

/* The big layers: every input of more than 64 elements is checked along 8
 * random unit directions, ⟨∇f, v⟩ against (f(x + εv) − f(x − εv)) / 2ε.
 * Sizes stay moderate: the projection L = Σ w·y grows with the output,
 * and ulp(L)/2ε is the noise floor of the numeric side (an output of
 * constant sign, like log_softmax's, reaches 1e-7 at a few hundred
 * elements in double). */
START_TEST(test_gradcheck_big_directional) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 17);
  tg_gradcheck_opts o = {.seed = 7, .elementwise_max = 64, .directions = 8};
  tg_gradcheck_report rep[3];
  tg_batchnorm bn = bn_make(4, tg_tape_rng(tape));
  tg_tensor *x4 = rand_t(tape, (int64_t[]){8, 4, 4, 4}, 4, -1, 2, 1);
  tg_tensor *x = rand_t(tape, (int64_t[]){16, 40}, 2, -1, 1, 1);
  tg_tensor *W = rand_t(tape, (int64_t[]){40, 20}, 2, -0.5, 0.5, 1);
  tg_tensor *b = rand_t(tape, (int64_t[]){20}, 1, -1, 1, 1);
  struct {
    gc_ctx c;
    int n;
    tg_tensor *in[3];
  } cases[2] = {{{.which = GC_BN, .bn = &bn}, 3, {x4, bn.gamma, bn.beta}},
                {{.which = GC_AFFINE}, 3, {x, W, b}}};
  for (int k = 0; k < 2; k++) {
    ck_assert_int_eq(tg_gradcheck(tape, gc_fn, &cases[k].c, cases[k].n, cases[k].in, &o, rep),
                     TG_OK);
    double worst = tg_gradcheck_worst(rep, cases[k].n);
    if (!(worst <= TU_GRAD_TOL))
      tg_gradcheck_print(rep, cases[k].n, cases[k].in, stderr);
    ck_assert_msg(worst <= TU_GRAD_TOL, "case %d: directional gradcheck worst %.3g", k, worst);
    ck_assert_msg(rep[0].directional, "case %d: x was not checked along directions", k);
  }
  bn_free(&bn);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_weight_decay) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 16);
  tg_tensor *w1 = rand_t(tape, (int64_t[]){3, 4}, 2, -1, 1, 1);
  tg_tensor *w2 = owned((int64_t[]){5}, 1, 1, "w2", tg_tape_rng(tape), -1, 1);
  gradcheck(tape, (gc_ctx){.which = GC_WD}, 2, (tg_tensor *[]){w1, w2});
  tg_tensor_free(w2);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("nn");
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_relu_step_identity_forward);
  tcase_add_test(fwd, test_sigmoid_forward_and_saturation);
  tcase_add_test(fwd, test_softmax_large_logits);
  tcase_add_test(fwd, test_softmax_axes_vs_loop);
  tcase_add_test(fwd, test_mse_cross_entropy_book_values);
  tcase_add_test(fwd, test_batch_losses_vs_loop);
  tcase_add_test(fwd, test_one_hot_and_accuracy);
  tcase_add_test(fwd, test_weight_decay_forward);
  suite_add_tcase(s, fwd);

  TCase *grad = tcase_create("gradcheck");
  tcase_add_test(grad, test_gradcheck_activations);
  tcase_add_test(grad, test_gradcheck_losses);
  tcase_add_test(grad, test_gradcheck_affine);
  tcase_add_test(grad, test_gradcheck_dropout_fixed_seed);
  tcase_add_test(grad, test_gradcheck_batchnorm);
  tcase_add_test(grad, test_gradcheck_weight_decay);
  tcase_add_test(grad, test_gradcheck_big_directional);
  suite_add_tcase(s, grad);

  return s;
}

TU_MAIN(make_suite)
