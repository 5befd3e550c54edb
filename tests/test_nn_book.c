/* test_nn_book.c — the book's layers and losses (nn/), second half: the
 * engine's gradients against the book's hand-derived backward formulas
 * (written here as loops), Batch Norm's running statistics and Dropout's
 * train/eval modes, and errors. test_nn.c holds forward values and
 * gradient checks.
 *
 * Expected values never come from the code under test: every reference is
 * a loop over the raw data in double, or a number worked out by hand. No
 * op runs in main() (TOOLCHAIN.md: a forked Check test hangs if its
 * parent ran OpenMP).
 */
#include "nn_test_helpers.h"

/* ------------------------------------------------------------------------
 * (c) The book's backward formulas as oracles */

/* Gradients of y seeded by dy with respect to xs[0..n-1]; asserts success. */
static void grads(tg_tape *tape, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *xs,
                  tg_tensor **gx) {
  ck_assert_msg(y != NULL, "forward failed: %s", tg_tape_error(tape));
  ck_assert_msg(tg_grad(tape, y, dy, n, xs, gx, 0) == TG_OK, "tg_grad: %s", tg_tape_error(tape));
}

/* Affine.backward: dx = dout·Wᵀ (in x's shape), dW = xᵀ·dout, db = Σ_rows dout. */
static void affine_oracle(const int64_t *xshape, int xnd) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 21);
  tg_tensor *x = rand_t(tape, xshape, xnd, -1, 1, 1);
  const int64_t N = xshape[0], D = x->numel / N, M = 4;
  tg_tensor *W = rand_t(tape, (int64_t[]){D, M}, 2, -1, 1, 1);
  tg_tensor *b = rand_t(tape, (int64_t[]){M}, 1, -1, 1, 1);
  tg_tensor *dout = rand_t(tape, (int64_t[]){N, M}, 2, -1, 1, 0);
  tg_tensor *gx[3];
  grads(tape, tg_affine(tape, x, W, b), dout, 3, (tg_tensor *[]){x, W, b}, gx);
  double *dx = calloc((size_t)(N * D), sizeof *dx), *dW = calloc((size_t)(D * M), sizeof *dW);
  double db[4] = {0};
  for (int64_t i = 0; i < N; i++)
    for (int64_t k = 0; k < D; k++)
      for (int64_t j = 0; j < M; j++) {
        double g = tg_at(dout, i * M + j);
        dx[i * D + k] += g * tg_at(W, k * M + j);
        dW[k * M + j] += tg_at(x, i * D + k) * g;
      }
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < M; j++)
      db[j] += tg_at(dout, i * M + j);
  ck_assert_msg(tg_shape_eq(gx[0], x), "dx has shape %s, x %s", TG_SHAPE(gx[0]), TG_SHAPE(x));
  expect(gx[0], dx, N * D, ORACLE_TOL, "affine dx = dout·Wᵀ");
  expect(gx[1], dW, D * M, ORACLE_TOL, "affine dW = xᵀ·dout");
  expect(gx[2], db, M, ORACLE_TOL, "affine db = Σ dout");
  free(dx);
  free(dW);
  tg_tape_free(tape);
}

START_TEST(test_book_affine_backward) {
  affine_oracle((int64_t[]){5, 7}, 2);
  affine_oracle((int64_t[]){3, 2, 2, 3}, 4);
}
END_TEST

/* SoftmaxWithLoss.backward (dout = 1): (softmax(x) − t)/N, t one-hot or
 * labels. */
START_TEST(test_book_softmax_with_loss_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 22);
  const int64_t N = 6, C = 4;
  const double labels[6] = {0, 3, 1, 1, 2, 3};
  tg_tensor *x = rand_t(tape, (int64_t[]){N, C}, 2, -5, 5, 1);
  tg_tensor *lab = vals(tape, (int64_t[]){N}, 1, labels);
  double want[24], p[4];
  double oh[24] = {0};
  for (int64_t i = 0; i < N; i++) {
    oh[i * C + (int64_t)labels[i]] = 1;
    ref_softmax_row(x, i, C, p);
    for (int64_t j = 0; j < C; j++)
      want[i * C + j] = (p[j] - oh[i * C + j]) / (double)N;
  }
  tg_tensor *onehot = vals(tape, (int64_t[]){N, C}, 2, oh);
  for (int k = 0; k < 2; k++) {
    tg_tensor *g;
    grads(tape, tg_softmax_cross_entropy(tape, x, k ? onehot : lab), NULL, 1, &x, &g);
    expect(g, want, N * C, ORACLE_TOL, k ? "(y − t)/N, one-hot" : "(y − t)/N, labels");
  }
  tg_tape_free(tape);
}
END_TEST

/* Sigmoid.backward: dx = dout·y(1 − y); Relu.backward: dx = dout·(x > 0),
 * zero where x <= 0 (including x == 0, the book's mask). */
START_TEST(test_book_sigmoid_relu_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 23);
  tg_tensor *x = rand_t(tape, (int64_t[]){3, 5}, 2, -5, 5, 1);
  x->data[2] = 0;
  x->data[7] = 0;
  tg_tensor *dout = rand_t(tape, (int64_t[]){3, 5}, 2, -1, 1, 0);
  double ws[15], wr[15];
  for (int i = 0; i < 15; i++) {
    double y = 1 / (1 + exp(-tg_at(x, i)));
    ws[i] = tg_at(dout, i) * y * (1 - y);
    wr[i] = tg_at(x, i) > 0 ? tg_at(dout, i) : 0;
  }
  tg_tensor *g;
  grads(tape, tg_sigmoid(tape, x), dout, 1, &x, &g);
  expect(g, ws, 15, ORACLE_TOL, "sigmoid dx = dout·y(1 − y)");
  grads(tape, tg_relu(tape, x), dout, 1, &x, &g);
  expect(g, wr, 15, 0, "relu dx = dout·(x > 0)");
  tg_tape_free(tape);
}
END_TEST

/* BatchNormalization.__backward of the book, per channel c over the
 * M = N·S elements of x viewed as (N, C, S) (S = 1 for x (N, D), where it
 * is exactly the book's code; S = H·W is the same code per channel):
 *   dbeta = Σ dout; dgamma = Σ xn·dout; dxn = gamma·dout; dxc = dxn/std;
 *   dstd = −Σ (dxn·xc)/(std·std); dvar = 0.5·dstd/std;
 *   dxc += (2/M)·xc·dvar; dmu = Σ dxc; dx = dxc − dmu/M. */
static void bn_book_backward(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *dout,
                             int64_t N, int64_t C, int64_t S, double eps, double *dx,
                             double *dgamma, double *dbeta) {
  const double M = (double)(N * S);
  for (int64_t c = 0; c < C; c++) {
#define AT(t, n, s) tg_at(t, ((n)*C + c) * S + (s))
#define FOR_NS                                                                                     \
  for (int64_t n = 0; n < N; n++)                                                                  \
    for (int64_t s = 0; s < S; s++)
    double mu = 0, var = 0, dstd = 0, dmu = 0, g = tg_at(gamma, c);
    FOR_NS mu += AT(x, n, s) / M;
    FOR_NS var += (AT(x, n, s) - mu) * (AT(x, n, s) - mu) / M;
    double std = sqrt(var + eps);
    dbeta[c] = dgamma[c] = 0;
    FOR_NS {
      double xc = AT(x, n, s) - mu, d = AT(dout, n, s);
      dbeta[c] += d;
      dgamma[c] += xc / std * d;
      dstd -= g * d * xc / (std * std);
    }
    double dvar = 0.5 * dstd / std;
    FOR_NS {
      double xc = AT(x, n, s) - mu;
      double dxc = g * AT(dout, n, s) / std + 2.0 / M * xc * dvar;
      dx[(n * C + c) * S + s] = dxc;
      dmu += dxc;
    }
    FOR_NS dx[(n * C + c) * S + s] -= dmu / M;
#undef AT
#undef FOR_NS
  }
}

static void bn_oracle(const int64_t *xshape, int nd) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 24);
  const int64_t N = xshape[0], C = xshape[1], S = nd == 4 ? xshape[2] * xshape[3] : 1;
  tg_batchnorm bn = bn_make(C, tg_tape_rng(tape));
  tg_tensor *x = rand_t(tape, xshape, nd, -2, 3, 1);
  tg_tensor *dout = rand_t(tape, xshape, nd, -1, 1, 0);
  tg_tensor *g[3];
  grads(tape, tg_batchnorm_forward(tape, &bn, x), dout, 3, (tg_tensor *[]){x, bn.gamma, bn.beta},
        g);
  double *dx = malloc((size_t)x->numel * sizeof *dx);
  double dgamma[8], dbeta[8];
  bn_book_backward(x, bn.gamma, dout, N, C, S, bn.eps, dx, dgamma, dbeta);
  expect(g[0], dx, x->numel, ORACLE_TOL, "batchnorm dx (book)");
  expect(g[1], dgamma, C, ORACLE_TOL, "batchnorm dgamma (book)");
  expect(g[2], dbeta, C, ORACLE_TOL, "batchnorm dbeta (book)");
  free(dx);
  bn_free(&bn);
  tg_tape_free(tape);
}

START_TEST(test_book_batchnorm_backward) {
  bn_oracle((int64_t[]){8, 5}, 2);
  bn_oracle((int64_t[]){3, 4, 2, 3}, 4);
}
END_TEST

/* ------------------------------------------------------------------------
 * (d) Train and eval modes */

/* Per-channel batch mean and biased variance of x viewed as (N, C, S). */
static void ref_stats(const tg_tensor *x, int64_t N, int64_t C, int64_t S, double *mu,
                      double *var) {
  for (int64_t c = 0; c < C; c++) {
    double m = 0, v = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++)
        m += tg_at(x, (n * C + c) * S + s);
    m /= (double)(N * S);
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) {
        double d = tg_at(x, (n * C + c) * S + s) - m;
        v += d * d;
      }
    mu[c] = m;
    var[c] = v / (double)(N * S);
  }
}

/* k train steps: the output normalised with the batch's statistics and
 * the running statistics after each step, by hand; then eval uses the
 * running statistics and leaves them alone. */
static void bn_modes(const int64_t *xshape, int nd) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 31);
  const int64_t N = xshape[0], C = xshape[1], S = nd == 4 ? xshape[2] * xshape[3] : 1;
  tg_batchnorm bn = bn_make(C, tg_tape_rng(tape));
  tu_fill_uniform(bn.running_var, tg_tape_rng(tape), 0, 0); /* the book starts from 0 */
  double rm[8] = {0}, rv[8] = {0}, mu[8], var[8];
  int64_t numel = N * C * S;
  double *want = malloc((size_t)numel * sizeof *want);
  for (int step = 0; step < 3; step++) {
    tg_tensor *x = rand_t(tape, xshape, nd, -1 + step, 2 + 2 * step, 0);
    tg_tensor *y = tg_batchnorm_forward(tape, &bn, x);
    ref_stats(x, N, C, S, mu, var);
    for (int64_t i = 0; i < numel; i++) {
      int64_t c = (i / S) % C;
      want[i] = tg_at(bn.gamma, c) * (tg_at(x, i) - mu[c]) / sqrt(var[c] + BOOK_BN_EPS) +
                tg_at(bn.beta, c);
    }
    expect(y, want, numel, TU_VALUE_TOL, "batchnorm train output");
    for (int64_t c = 0; c < C; c++) {
      rm[c] = 0.9 * rm[c] + 0.1 * mu[c];
      rv[c] = 0.9 * rv[c] + 0.1 * var[c];
    }
    expect(bn.running_mean, rm, C, TU_VALUE_TOL, "running_mean");
    expect(bn.running_var, rv, C, TU_VALUE_TOL, "running_var");
    tg_tape_reset(tape);
  }
  tg_tape_set_train(tape, 0);
  tg_tensor *x = rand_t(tape, xshape, nd, -1, 1, 1);
  tg_tensor *y = tg_batchnorm_forward(tape, &bn, x);
  for (int64_t i = 0; i < numel; i++) {
    int64_t c = (i / S) % C;
    want[i] =
        tg_at(bn.gamma, c) * (tg_at(x, i) - rm[c]) / sqrt(rv[c] + BOOK_BN_EPS) + tg_at(bn.beta, c);
  }
  expect(y, want, numel, TU_VALUE_TOL, "batchnorm eval output");
  expect(bn.running_mean, rm, C, TU_VALUE_TOL, "running_mean after eval");
  expect(bn.running_var, rv, C, TU_VALUE_TOL, "running_var after eval");
  free(want);
  bn_free(&bn);
  tg_tape_free(tape);
}

START_TEST(test_batchnorm_running_stats) {
  bn_modes((int64_t[]){10, 3}, 2);
  bn_modes((int64_t[]){4, 2, 3, 2}, 4);
}
END_TEST

/* tg_batchnorm_init with parameter lists: names, shapes, values, which
 * tensors have gradients, the defaults; a second init under the same
 * prefix fails and changes nothing. */
START_TEST(test_batchnorm_init) {
  tg_params params = {0}, buffers = {0};
  tg_batchnorm bn;
  tg_error err = {0};
  ck_assert_int_eq(tg_batchnorm_init(&bn, "bn1", 3, &params, &buffers, &err), TG_OK);
  ck_assert_int_eq(params.n, 2);
  ck_assert_int_eq(buffers.n, 2);
  ck_assert_ptr_eq(tg_params_find(&params, "bn1.gamma"), bn.gamma);
  ck_assert_ptr_eq(tg_params_find(&params, "bn1.beta"), bn.beta);
  ck_assert_ptr_eq(tg_params_find(&buffers, "bn1.running_mean"), bn.running_mean);
  ck_assert_ptr_eq(tg_params_find(&buffers, "bn1.running_var"), bn.running_var);
  tg_tensor *t[4] = {bn.gamma, bn.beta, bn.running_mean, bn.running_var};
  for (int k = 0; k < 4; k++) {
    ck_assert(t[k]->ndim == 1 && t[k]->shape[0] == 3);
    for (int i = 0; i < 3; i++)
      ck_assert_double_eq(tg_at(t[k], i), k == 0 ? 1 : 0);
    ck_assert_msg((t[k]->grad != NULL) == (k < 2), "tensor %d: gradient buffer", k);
  }
  ck_assert_double_eq(bn.momentum, 0.9);
  ck_assert_double_eq(bn.eps, 1e-6);
  tg_batchnorm bn2;
  ck_assert_int_ne(tg_batchnorm_init(&bn2, "bn1", 3, &params, &buffers, &err), TG_OK);
  ck_assert_msg(strstr(err.msg, "bn1.gamma") != NULL, "message: %s", err.msg);
  ck_assert_int_eq(params.n, 2);
  ck_assert_int_eq(buffers.n, 2);
  err = (tg_error){0};
  ck_assert_int_eq(tg_batchnorm_init(&bn2, "bn2", 0, &params, &buffers, &err), TG_ERR_ARG);
  ck_assert_int_eq(tg_batchnorm_init(NULL, "bn2", 3, &params, &buffers, NULL), TG_ERR_NULL);
  tg_params_free(&params);
  tg_params_free(&buffers);
}
END_TEST

/* Eval: the identity. Train: about a ratio of zeros, the rest x/(1 − ratio),
 * the same mask for the same seed, another for another seed. */
START_TEST(test_dropout_modes) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 41);
  const int64_t n = 20000;
  const double ratio = 0.3;
  tg_tensor *x = rand_t(tape, (int64_t[]){100, 200}, 2, 0.5, 1.5, 1);
  tg_tape_set_train(tape, 0);
  ck_assert_ptr_eq(tg_dropout(tape, x, ratio), x);
  tg_tape_set_train(tape, 1);
  ck_assert_ptr_eq(tg_dropout(tape, x, 0), x);
  tg_tensor *y[3];
  for (int k = 0; k < 3; k++) {
    tg_tape_seed(tape, k < 2 ? 7 : 8);
    y[k] = tg_dropout(tape, x, ratio);
    ck_assert_msg(y[k] != NULL && tg_shape_eq(y[k], x), "dropout: %s", tg_tape_error(tape));
  }
  int64_t zeros = 0, differ = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = tg_at(y[0], i);
    if (v == 0)
      zeros++;
    else
      ck_assert_msg(tu_rel(v, tg_at(x, i) / (1 - ratio)) <= TU_VALUE_TOL,
                    "kept element %lld is %g, want x/(1 − ratio) = %g", (long long)i, v,
                    tg_at(x, i) / (1 - ratio));
    ck_assert_msg(tg_at(y[1], i) == v, "the same seed gave another mask at %lld", (long long)i);
    differ += (tg_at(y[2], i) == 0) != (v == 0);
  }
  /* Binomial(20000, 0.3): standard deviation 0.0032; allow 6 of them. */
  double frac = (double)zeros / (double)n;
  ck_assert_msg(fabs(frac - ratio) < 0.02, "dropped fraction %g, want about %g", frac, ratio);
  ck_assert_msg(differ > n / 10, "another seed changed only %lld mask entries", (long long)differ);
  tg_tape_free(tape);
}
END_TEST

/* Keyed: a sample's mask depends on (key, its id) alone. A batch of ids
 * (7, 3, 9, 1) and a batch of (9, 1) give rows 9 and 1 the same masks,
 * another key other masks; kept elements are x/(1 − ratio), about a ratio
 * of them dropped; eval mode is the identity; NULL ids an error. */
START_TEST(test_dropout_keyed) {
  tg_tape *tape = tg_tape_new();
  const double ratio = 0.4;
  const int64_t per = 3000;                                         /* elements per sample */
  tg_tensor *x = rand_t(tape, (int64_t[]){4, per}, 2, 0.5, 1.5, 1); /* (4, per) */
  tg_tensor *x2 = tg_slice(tape, x, (int64_t[]){2, 0}, (int64_t[]){4, per}); /* (2, per): 9, 1 */
  const int64_t ids[4] = {7, 3, 9, 1};
  tg_tape_set_train(tape, 1);
  tg_tensor *y = tg_dropout_keyed(tape, x, ratio, 11, ids);
  tg_tape_seed(tape, 99); /* the tape's generator plays no part */
  tg_tensor *y2 = tg_dropout_keyed(tape, x2, ratio, 11, ids + 2);
  tg_tensor *z = tg_dropout_keyed(tape, x, ratio, 12, ids);
  ck_assert_msg(y && y2 && z, "dropout_keyed: %s", tg_tape_error(tape));
  int64_t zeros = 0, differ = 0, rows_differ = 0;
  for (int64_t i = 0; i < 4 * per; i++) {
    double v = tg_at(y, i);
    if (v == 0)
      zeros++;
    else
      ck_assert_msg(tu_rel(v, tg_at(x, i) / (1 - ratio)) <= TU_VALUE_TOL,
                    "kept element %lld is %g, want %g", (long long)i, v, tg_at(x, i) / (1 - ratio));
    if (i >= 2 * per)
      ck_assert_msg(tg_at(y2, i - 2 * per) == v, "sample %lld: another batch, another mask at %lld",
                    (long long)ids[i / per], (long long)(i % per));
    else
      rows_differ += (tg_at(y, i + per * (i < per ? 1 : -1)) == 0) != (v == 0);
    differ += (tg_at(z, i) == 0) != (v == 0);
  }
  /* Binomial(12000, 0.4): standard deviation 0.0045; allow 6 of them. */
  double frac = (double)zeros / (double)(4 * per);
  ck_assert_msg(fabs(frac - ratio) < 0.027, "dropped fraction %g, want about %g", frac, ratio);
  ck_assert_msg(differ > per, "another key changed only %lld mask entries", (long long)differ);
  ck_assert_msg(rows_differ > per / 2, "samples 7 and 3 share most of a mask (%lld differ)",
                (long long)rows_differ);
  tg_tape_set_train(tape, 0);
  ck_assert_ptr_eq(tg_dropout_keyed(tape, x, ratio, 11, ids), x);
  ck_assert_ptr_null(tg_dropout_keyed(tape, x, ratio, 11, NULL));
  tu_assert_error(tape, "dropout", "ids", "NULL");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * (e) Errors and extreme inputs */

START_TEST(test_affine_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_zeros(tape, (int64_t[]){100, 784}, 2);
  tg_tensor *W = tg_zeros(tape, (int64_t[]){785, 50}, 2);
  ck_assert_ptr_null(tg_affine(tape, x, W, NULL));
  tu_assert_error(tape, "affine (op #0): x (100, 784) and W (785, 50) do not fit");
  tg_tape_reset(tape);
  x = tg_zeros(tape, (int64_t[]){2, 1, 28, 28}, 4);
  W = tg_zeros(tape, (int64_t[]){785, 50}, 2);
  ck_assert_ptr_null(tg_affine(tape, x, W, NULL));
  tu_assert_error(tape, "affine", "(2, 1, 28, 28)", "(2, 784)", "(785, 50)");
  tg_tape_reset(tape);
  x = tg_zeros(tape, (int64_t[]){2, 784}, 2);
  W = tg_zeros(tape, (int64_t[]){784, 50}, 2);
  tg_tensor *b = tg_zeros(tape, (int64_t[]){49}, 1);
  ck_assert_ptr_null(tg_affine(tape, x, W, b));
  tu_assert_error(tape, "affine", "b (49,)", "(784, 50)", "(50,)");
  tg_tape_reset(tape);
  x = tg_zeros(tape, (int64_t[]){784}, 1);
  W = tg_zeros(tape, (int64_t[]){784, 50}, 2);
  ck_assert_ptr_null(tg_affine(tape, x, W, NULL));
  tu_assert_error(tape, "affine", "(784,)", "batch");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_one_hot_errors) {
  static const struct {
    double v[3];
    const char *frag[3];
  } cases[] = {
      {{0, 3, 10}, {"one_hot (op #0): label 10 in row 2", "[0, 10)", NULL}},
      {{-1, 3, 1}, {"label -1 in row 0", "outside", NULL}},
      {{1, 2.5, 1}, {"label 2.5 in row 1", "not a class index", NULL}},
      {{1, NAN, 1}, {"label nan in row 1", NULL, NULL}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    tg_tape *tape = tg_tape_new();
    tg_tensor *lab = vals(tape, (int64_t[]){3}, 1, cases[k].v);
    ck_assert_ptr_null(tg_one_hot(tape, lab, 10));
    for (int f = 0; f < 3 && cases[k].frag[f]; f++)
      tu_assert_error(tape, cases[k].frag[f]);
    tg_tape_reset(tape);
    /* Through the losses too. */
    lab = vals(tape, (int64_t[]){3}, 1, cases[k].v);
    ck_assert_ptr_null(tg_softmax_cross_entropy(tape, tg_zeros(tape, (int64_t[]){3, 10}, 2), lab));
    tu_assert_error(tape, cases[k].frag[0]);
    tg_tape_free(tape);
  }
  tg_tape *tape = tg_tape_new();
  ck_assert_ptr_null(tg_one_hot(tape, tg_zeros(tape, (int64_t[]){3, 1}, 2), 4));
  tu_assert_error(tape, "one_hot", "(3, 1)", "(N,)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_one_hot(tape, tg_zeros(tape, (int64_t[]){3}, 1), 0));
  tu_assert_error(tape, "one_hot", "0 classes");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_dropout_errors) {
  const double bad[3] = {1.0, -0.1, NAN};
  const char *frag[3] = {"ratio 1 ", "ratio -0.1", "ratio nan"};
  for (int k = 0; k < 3; k++) {
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_zeros(tape, (int64_t[]){2, 3}, 2);
    ck_assert_ptr_null(tg_dropout(tape, x, bad[k]));
    tu_assert_error(tape, "dropout", frag[k], "(2, 3)", "[0, 1)");
    tg_tape_set_train(tape, 0); /* invalid in eval mode too */
    tg_tape_reset(tape);
    x = tg_zeros(tape, (int64_t[]){2, 3}, 2);
    ck_assert_ptr_null(tg_dropout(tape, x, bad[k]));
    tg_tape_free(tape);
  }
}
END_TEST

START_TEST(test_shape_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2, 3}, 2), *b = tg_zeros(tape, (int64_t[]){3, 2}, 2);
  ck_assert_ptr_null(tg_mse(tape, a, b));
  tu_assert_error(tape, "mse", "(2, 3)", "(3, 2)");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  b = tg_zeros(tape, (int64_t[]){3}, 1);
  ck_assert_ptr_null(tg_cross_entropy(tape, a, b));
  tu_assert_error(tape, "cross_entropy", "t (3,)", "y (2, 3)");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  ck_assert_ptr_null(tg_softmax(tape, a, 2));
  tu_assert_error(tape, "softmax (op #0): axis 2", "(2, 3)");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  ck_assert_ptr_null(tg_log_softmax(tape, a, -3));
  tu_assert_error(tape, "log_softmax (op #0): axis -3", "(2, 3)");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  b = tg_zeros(tape, (int64_t[]){2, 4}, 2);
  ck_assert(isnan(tg_accuracy(tape, a, b)));
  tu_assert_error(tape, "accuracy", "(2, 4)", "(2, 3)");
  tg_tape_reset(tape);

  tg_batchnorm bn = bn_make(4, tg_tape_rng(tape));
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  ck_assert_ptr_null(tg_batchnorm_forward(tape, &bn, a));
  tu_assert_error(tape, "batchnorm", "(2, 3)", "(N, 4)", "(4,)");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 4, 3}, 3);
  ck_assert_ptr_null(tg_batchnorm_forward(tape, &bn, a));
  tu_assert_error(tape, "batchnorm", "(2, 4, 3)", "(N, 4, H, W)");
  tg_tape_reset(tape);
  tg_tensor *keep = bn.beta;
  bn.beta = NULL;
  ck_assert_ptr_null(tg_batchnorm_forward(tape, &bn, tg_zeros(tape, (int64_t[]){2, 4}, 2)));
  tu_assert_error(tape, "batchnorm (op #0): beta is NULL");
  bn.beta = keep;
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
  ck_assert_ptr_null(tg_weight_decay(tape, (tg_tensor *[]){a}, 1, -1));
  tu_assert_error(tape, "weight_decay", "lambda -1");
  bn_free(&bn);
  tg_tape_free(tape);
}
END_TEST

/* Call k of the NULL-input table: one input NULL, the others valid. */
static const char *const null_frag[] = {"relu (op #0): x is NULL",
                                        "sigmoid (op #0): input 0 is NULL",
                                        "step (op #0): x is NULL",
                                        "identity (op #0): x is NULL",
                                        "softmax (op #0): x is NULL",
                                        "log_softmax (op #0): x is NULL",
                                        "mse (op #0): t is NULL",
                                        "cross_entropy (op #0): y is NULL",
                                        "softmax_cross_entropy (op #0): t is NULL",
                                        "one_hot (op #0): labels is NULL",
                                        "affine (op #0): W is NULL",
                                        "dropout (op #0): x is NULL",
                                        "batchnorm (op #0): x is NULL",
                                        "batchnorm (op #0): bn is NULL",
                                        "weight_decay (op #0): W[1] is NULL",
                                        "weight_decay (op #0): W is NULL",
                                        "accuracy (op #0): t is NULL"};
enum { NNULL = sizeof null_frag / sizeof null_frag[0] };

static tg_tensor *null_call(tg_tape *tape, int k, tg_tensor *x, tg_batchnorm *bn) {
  switch (k) {
  case 0:
    return tg_relu(tape, NULL);
  case 1:
    return tg_sigmoid(tape, NULL);
  case 2:
    return tg_step(tape, NULL);
  case 3:
    return tg_identity(tape, NULL);
  case 4:
    return tg_softmax(tape, NULL, 0);
  case 5:
    return tg_log_softmax(tape, NULL, 0);
  case 6:
    return tg_mse(tape, x, NULL);
  case 7:
    return tg_cross_entropy(tape, NULL, x);
  case 8:
    return tg_softmax_cross_entropy(tape, x, NULL);
  case 9:
    return tg_one_hot(tape, NULL, 3);
  case 10:
    return tg_affine(tape, x, NULL, NULL);
  case 11:
    return tg_dropout(tape, NULL, 0.5);
  case 12:
    return tg_batchnorm_forward(tape, bn, NULL);
  case 13:
    return tg_batchnorm_forward(tape, NULL, x);
  case 14:
    return tg_weight_decay(tape, (tg_tensor *[]){x, NULL}, 2, 0.1);
  case 15:
    return tg_weight_decay(tape, NULL, 2, 0.1);
  default:
    return isnan(tg_accuracy(tape, x, NULL)) ? NULL : x;
  }
}

/* Every layer given a NULL input returns NULL and names the layer and the
 * input; on a tape that already failed it returns NULL and keeps the first
 * message; without a tape it returns NULL. */
START_TEST(test_null_inputs) {
  tg_tape *tape = tg_tape_new();
  tg_batchnorm bn = bn_make(2, tg_tape_rng(tape));
  for (int k = 0; k < NNULL; k++)
    for (int failed = 0; failed < 2; failed++) {
      tg_tensor *x = tg_zeros(tape, (int64_t[]){2, 2}, 2);
      if (failed)
        tg_tape_fail(tape, TG_ERR_ARG, "test", "an earlier failure");
      ck_assert_msg(null_call(tape, k, x, &bn) == NULL, "%s: not NULL", null_frag[k]);
      ck_assert_int_eq(tg_tape_status(tape), failed ? TG_ERR_ARG : TG_ERR_NULL);
      tu_assert_error(tape, failed ? "an earlier failure" : null_frag[k]);
      tg_tape_reset(tape);
      ck_assert_msg(null_call(NULL, k, NULL, &bn) == NULL, "%s: not NULL without a tape",
                    null_frag[k]);
    }
  bn_free(&bn);
  tg_tape_free(tape);
}
END_TEST

/* Logits of ±1e4: softmax, log-softmax and softmax-with-loss stay finite,
 * values and gradients, against hand values. */
START_TEST(test_extreme_logits) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 51);
  const double v[6] = {1e4, -1e4, 0, -1e4, 1e4, 1e4};
  tg_tensor *x = tg_requires_grad(tape, vals(tape, (int64_t[]){2, 3}, 2, v));
  tg_tensor *dout = rand_t(tape, (int64_t[]){2, 3}, 2, 0.5, 1.5, 0);
  const double l2 = log(2);
  expect(tg_softmax(tape, x, 1), (double[]){1, 0, 0, 0, 0.5, 0.5}, 6, TU_VALUE_TOL, "softmax");
  expect(tg_log_softmax(tape, x, 1), (double[]){0, -2e4, -1e4, -2e4 - l2, -l2, -l2}, 6,
         TU_VALUE_TOL, "log_softmax");
  tg_tensor *g;
  grads(tape, tg_softmax(tape, x, 1), dout, 1, &x, &g);
  ck_assert_msg(all_finite(g), "softmax gradient not finite");
  grads(tape, tg_log_softmax(tape, x, 1), dout, 1, &x, &g);
  ck_assert_msg(all_finite(g), "log_softmax gradient not finite");
  /* Labels 1 and 0 pick the lowest logit of each row: loss (2e4 + 2e4 + ln 2)/2. */
  tg_tensor *lab = vals(tape, (int64_t[]){2}, 1, (double[]){1, 0});
  tg_tensor *oh = tg_one_hot(tape, lab, 3);
  for (int k = 0; k < 2; k++) {
    tg_tensor *loss = tg_softmax_cross_entropy(tape, x, k ? oh : lab);
    expect(loss, (double[]){2e4 + l2 / 2}, 1, TU_VALUE_TOL, "softmax_cross_entropy");
    grads(tape, loss, NULL, 1, &x, &g);
    expect(g, (double[]){0.5, -0.5, 0, -0.5, 0.25, 0.25}, 6, TU_VALUE_TOL, "(y − t)/N");
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("nn_book");
  TCase *book = tcase_create("book_backward");
  tcase_add_test(book, test_book_affine_backward);
  tcase_add_test(book, test_book_softmax_with_loss_backward);
  tcase_add_test(book, test_book_sigmoid_relu_backward);
  tcase_add_test(book, test_book_batchnorm_backward);
  suite_add_tcase(s, book);

  TCase *modes = tcase_create("modes");
  tcase_add_test(modes, test_batchnorm_running_stats);
  tcase_add_test(modes, test_batchnorm_init);
  tcase_add_test(modes, test_dropout_modes);
  tcase_add_test(modes, test_dropout_keyed);
  suite_add_tcase(s, modes);

  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_affine_errors);
  tcase_add_test(err, test_one_hot_errors);
  tcase_add_test(err, test_dropout_errors);
  tcase_add_test(err, test_shape_errors);
  tcase_add_test(err, test_null_inputs);
  tcase_add_test(err, test_extreme_logits);
  suite_add_tcase(s, err);
  return s;
}

TU_MAIN(make_suite)
