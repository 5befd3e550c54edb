/* test_models.c — the book's networks through model.h: the table of
 * kinds, parameter shapes worked out by hand from the book's
 * architectures, gradients of whole networks against central
 * differences, AlexNet at its real input size, input fitting, and the
 * errors a bad configuration gets.
 */
#include "testutil.h"

static tg_model *make(const char *kind, uint64_t seed) {
  tg_model_config c;
  tg_error err = {0};
  ck_assert_int_eq(tg_model_defaults(kind, &c, &err), TG_OK);
  tg_rng rng;
  tg_rng_seed(&rng, seed);
  tg_model *m = tg_model_new(&c, &rng, &err);
  ck_assert_msg(m != NULL, "%s: %s", kind, err.msg);
  return m;
}

/* SimpleConvNet built for 3×60×60 images, from rng seeded with 4. */
static tg_model *make_rgb60(tg_rng *rng) {
  tg_model_config c;
  ck_assert_int_eq(tg_model_defaults("simple-convnet", &c, NULL), TG_OK);
  c.input[0] = 3;
  c.input[1] = c.input[2] = 60;
  tg_rng_seed(rng, 4);
  tg_model *m = tg_model_new(&c, rng, NULL);
  ck_assert_ptr_nonnull(m);
  return m;
}

static void assert_shape(const tg_tensor *t, int ndim, const int64_t *want) {
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(t->ndim, ndim);
  for (int d = 0; d < ndim; d++)
    ck_assert_msg(t->shape[d] == want[d], "%s: axis %d is %lld, want %lld", t->name, d,
                  (long long)t->shape[d], (long long)want[d]);
}

/* ------------------------------------------------------------------------
 * The table */

START_TEST(test_kinds_and_optimizers) {
  const char *want[] = {"two-layer-net", "multi-layer-net", "simple-convnet",
                        "deep-convnet",  "lenet",           "alexnet"};
  const char *const *k = tg_model_kinds();
  for (int i = 0; i < 6; i++)
    ck_assert_str_eq(k[i], want[i]);
  ck_assert_ptr_null(k[6]);
  ck_assert_str_eq(tg_model_default_optimizer("two-layer-net"), "sgd");
  ck_assert_str_eq(tg_model_default_optimizer("simple-convnet"), "adam");
  ck_assert_str_eq(tg_model_default_optimizer("deep-convnet"), "adam");
  ck_assert_ptr_null(tg_model_default_optimizer("resnet"));
}
END_TEST

/* Shapes from the book: SimpleConvNet's pool output is 30·12·12 = 4320;
 * DeepConvNet's last pool is 64·4·4 = 1024 (conv 4 pads by 2: 14 → 16);
 * LeNet's second pool is 16·5·5 = 400; AlexNet's last is 256·6·6 = 9216. */
START_TEST(test_parameter_shapes) {
  tg_model *m = make("simple-convnet", 1);
  ck_assert_int_eq(m->n_layers, 3);
  assert_shape(m->W[0], 4, (int64_t[]){30, 1, 5, 5});
  assert_shape(m->W[1], 2, (int64_t[]){4320, 100});
  assert_shape(m->W[2], 2, (int64_t[]){100, 10});
  ck_assert_int_eq(tg_params_numel(&m->params), 30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10);
  tg_model_free(m);

  m = make("deep-convnet", 1);
  ck_assert_int_eq(m->n_layers, 8);
  int64_t deep[6][2] = {{16, 1}, {16, 16}, {32, 16}, {32, 32}, {64, 32}, {64, 64}};
  for (int i = 0; i < 6; i++)
    assert_shape(m->W[i], 4, (int64_t[]){deep[i][0], deep[i][1], 3, 3});
  assert_shape(m->W[6], 2, (int64_t[]){1024, 50});
  assert_shape(m->W[7], 2, (int64_t[]){50, 10});
  tg_model_free(m);

  m = make("lenet", 1);
  ck_assert_int_eq(m->n_layers, 5);
  assert_shape(m->W[0], 4, (int64_t[]){6, 1, 5, 5});
  assert_shape(m->W[1], 4, (int64_t[]){16, 6, 5, 5});
  assert_shape(m->W[2], 2, (int64_t[]){400, 120});
  assert_shape(m->W[3], 2, (int64_t[]){120, 84});
  assert_shape(m->W[4], 2, (int64_t[]){84, 10});
  tg_model_free(m);

  m = make("alexnet", 1);
  ck_assert_int_eq(m->n_layers, 8);
  assert_shape(m->W[0], 4, (int64_t[]){96, 3, 11, 11});
  assert_shape(m->W[1], 4, (int64_t[]){256, 96, 5, 5});
  assert_shape(m->W[4], 4, (int64_t[]){256, 384, 3, 3});
  assert_shape(m->W[5], 2, (int64_t[]){9216, 4096});
  assert_shape(m->W[7], 2, (int64_t[]){4096, 10});
  tg_model_free(m);
}
END_TEST

/* He init for DeepConvNet: std √(2/fan_in) with fan_in = C·3·3. */
START_TEST(test_deep_convnet_he_init) {
  tg_model *m = make("deep-convnet", 3);
  const tg_tensor *W = m->W[3]; /* (32, 32, 3, 3): fan_in 288 */
  double ss = 0;
  for (int64_t i = 0; i < W->numel; i++)
    ss += tg_at(W, i) * tg_at(W, i);
  double std = sqrt(ss / (double)W->numel), want = sqrt(2.0 / 288);
  ck_assert_msg(fabs(std - want) < 0.05 * want, "std %g, want %g", std, want);
  tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * Gradients of whole networks */

typedef struct loss_ctx {
  tg_model *m;
  tg_tensor *x, *t;
} loss_ctx;

static tg_tensor *model_loss(tg_tape *tape, tg_tensor *const *in, void *arg) {
  (void)in;
  loss_ctx *c = arg;
  tg_tape_seed(tape, 11); /* the same Dropout mask at every evaluation */
  return tg_model_loss(tape, c->m, tg_model_forward(tape, c->m, c->x), c->t);
}

/* The gradient of the training loss (Dropout included: the tape is
 * reseeded at every evaluation) against central differences, for every
 * parameter. Bigger tensors are checked along random directions; so are
 * small ones beyond 32 elements, to keep the double build's
 * deep networks within seconds. ReLU networks are checked with tanh:
 * perturbing a filter moves thousands of pre-activations at once, and
 * one of them crossing ReLU's kink within the step is then likely (ReLU
 * and max-pool are checked away from their kinks in test_nn and
 * test_conv). */
static void check_model_gradients(const char *kind, const char *act, int64_t batch, double tol) {
  tg_model_config cfg;
  tg_error err = {0};
  ck_assert_int_eq(tg_model_defaults(kind, &cfg, &err), TG_OK);
  if (act)
    strcpy(cfg.activation, act);
  tg_rng rng;
  tg_rng_seed(&rng, 5);
  tg_model *m = tg_model_new(&cfg, &rng, &err);
  ck_assert_msg(m != NULL, "%s: %s", kind, err.msg);
  tg_tape *tape = tg_tape_new();
  loss_ctx c = {m, tg_empty(tape, (int64_t[]){batch, 1, 28, 28}, 4),
                tg_empty(tape, (int64_t[]){batch}, 1)};
  tu_fill_uniform(c.x, tg_tape_rng(tape), 0, 1);
  for (int64_t i = 0; i < batch; i++)
    c.t->data[i] = (tg_real)(i * 3 % 10);
  tg_gradcheck_report r[16];
  tg_gradcheck_opts o = {.seed = 7, .elementwise_max = 32, .directions = 4};
  ck_assert_int_le(m->params.n, 16);
  ck_assert_msg(tg_gradcheck(tape, model_loss, &c, m->params.n, m->params.items, &o, r) == TG_OK,
                "%s", tg_tape_error(tape));
  double worst = tg_gradcheck_worst(r, m->params.n);
  if (!(worst <= tol)) {
    tg_gradcheck_print(r, m->params.n, m->params.items, stderr);
    ck_abort_msg("%s: gradcheck worst %.3g > %.3g", kind, worst, tol);
  }
  tg_tape_free(tape);
  tg_model_free(m);
}

START_TEST(test_simple_convnet_gradients) {
  check_model_gradients("simple-convnet", "tanh", 3, TU_GRAD_TOL);
}
END_TEST

START_TEST(test_lenet_gradients) { check_model_gradients("lenet", NULL, 3, TU_GRAD_TOL); }
END_TEST

/* Eight layers with Dropout: rounding of the loss over the step leaves
 * ~1e-5 on the smallest gradients in double; a wrong rule errs by O(1). */
START_TEST(test_deep_convnet_gradients) { check_model_gradients("deep-convnet", "tanh", 2, 1e-4); }
END_TEST

/* AlexNet at its real input size: forward and backward on two random
 * images; every gradient finite and the logits of the right shape. */
START_TEST(test_alexnet_real_size) {
  tg_model *m = make("alexnet", 2);
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_empty(tape, (int64_t[]){2, 3, 227, 227}, 4);
  tu_fill_uniform(x, tg_tape_rng(tape), 0, 1);
  tg_tensor *t = tg_zeros(tape, (int64_t[]){2}, 1);
  t->data[1] = 7;
  tg_tensor *logits = tg_model_forward(tape, m, x);
  tg_tensor *loss = tg_model_loss(tape, m, logits, t);
  ck_assert_msg(loss && tg_backward(tape, loss, NULL) == TG_OK, "%s", tg_tape_error(tape));
  assert_shape(logits, 2, (int64_t[]){2, 10});
  ck_assert(isfinite(tg_at(loss, 0)));
  for (int i = 0; i < m->params.n; i++) {
    const tg_tensor *g = m->params.items[i]->grad;
    double ss = 0;
    for (int64_t k = 0; k < g->numel; k++)
      ss += tg_at(g, k) * tg_at(g, k);
    ck_assert_msg(isfinite(ss), "%s: gradient not finite", m->params.items[i]->name);
  }
  ck_assert_msg(tg_at(m->W[0]->grad, 0) != 0 || tg_at(m->W[0]->grad, 1) != 0,
                "no gradient reached conv1");
  tg_tape_free(tape);
  tg_model_free(m);
}
END_TEST

/* The documented enlargement at AlexNet's real size: a gray 28×28 digit
 * is the 3×227×227 image made by hand from it — each pixel an 8×8 block
 * (224×224), padded 1 above and left and 2 below and right, the same in
 * every channel — and nothing else gray is taken. */
START_TEST(test_alexnet_enlarges_digits) {
  tg_model *m = make("alexnet", 3);
  tg_error err = {0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 28, 28}, 3, &err), TG_OK);
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){3, 227, 227}, 3, &err), TG_OK);
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 14, 14}, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "samples (1, 14, 14) do not fit alexnet, which takes "
                                "(3, 227, 227) or 154587 values flat, or gray (1, 28, 28)"),
                "%s", err.msg);
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 227, 227}, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "(1, 227, 227) do not fit alexnet"), "%s", err.msg);

  tg_tape *tape = tg_tape_new();
  tg_tape_set_train(tape, 0); /* no Dropout: the two forwards must agree */
  tg_tape_set_grad(tape, 0);
  tg_tensor *digit = tg_empty(tape, (int64_t[]){1, 1, 28, 28}, 4);
  tu_fill_uniform(digit, tg_tape_rng(tape), 0, 1);
  tg_tensor *big = tg_zeros(tape, (int64_t[]){1, 3, 227, 227}, 4);
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < 224; i++)
      for (int j = 0; j < 224; j++)
        big->data[(ch * 227 + i + 1) * 227 + j + 1] = digit->data[(i / 8) * 28 + j / 8];
  tg_tensor *a = tg_model_forward(tape, m, digit), *b = tg_model_forward(tape, m, big);
  ck_assert_msg(a && b, "%s", tg_tape_error(tape));
  assert_shape(a, 2, (int64_t[]){1, 10});
  for (int k = 0; k < 10; k++)
    ck_assert_double_eq_tol(tg_at(a, k), tg_at(b, k), 1e-5 * (1 + fabs(tg_at(b, k))));
  /* 14×14 digits were once enlarged ×16 without a word. */
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){1, 1, 14, 14}, 4)));
  tu_assert_error(tape, "model_forward", "(1, 1, 14, 14)", "alexnet's (N, 3, 227, 227)",
                  "gray (N, 1, 28, 28) images are enlarged");
  tg_tape_free(tape);
  tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * Input fitting */

/* A gray 28×28 image into a model built for 3×60×60 (AlexNet's case on
 * the book's data): it must see the image doubled by pixel replication,
 * padded by 2 and repeated over the channels — the same logits as
 * feeding that 3×60×60 image directly. */
START_TEST(test_fit_input_upscales) {
  tg_rng rng;
  tg_model *m = make_rgb60(&rng);
  tg_tape *tape = tg_tape_new();
  tg_tensor *small = tg_empty(tape, (int64_t[]){1, 1, 28, 28}, 4);
  tu_fill_uniform(small, &rng, 0, 1);
  tg_tensor *big = tg_zeros(tape, (int64_t[]){1, 3, 60, 60}, 4);
  for (int ch = 0; ch < 3; ch++)
    for (int i = 0; i < 56; i++)
      for (int j = 0; j < 56; j++)
        big->data[(ch * 60 + i + 2) * 60 + j + 2] = small->data[(i / 2) * 28 + j / 2];
  tg_tensor *a = tg_model_forward(tape, m, small), *b = tg_model_forward(tape, m, big);
  ck_assert_msg(a && b, "%s", tg_tape_error(tape));
  for (int k = 0; k < 10; k++)
    ck_assert_double_eq_tol(tg_at(a, k), tg_at(b, k), 1e-12);
  /* Flat input of the right size is reshaped. */
  tg_tensor *flat = tg_reshape(tape, big, (int64_t[]){1, 10800}, 2);
  tg_tensor *f = tg_model_forward(tape, m, flat);
  ck_assert_ptr_nonnull(f);
  ck_assert_double_eq(tg_at(f, 3), tg_at(b, 3));
  tg_tape_free(tape);
  tg_model_free(m);
}
END_TEST

START_TEST(test_fit_input_refuses) {
  tg_model *m = make("simple-convnet", 1);
  tg_tape *tape = tg_tape_new();
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){2, 1, 29, 29}, 4)));
  tu_assert_error(tape, "model_forward", "(2, 1, 29, 29)", "simple-convnet", "(N, 1, 28, 28)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){2, 3, 20, 20}, 4)));
  tu_assert_error(tape, "model_forward", "(2, 3, 20, 20)");
  tg_tape_reset(tape);
  /* Smaller gray images are not enlarged into a one-channel model. */
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){2, 1, 14, 14}, 4)));
  tu_assert_error(tape, "model_forward", "(2, 1, 14, 14)", "(N, 1, 28, 28) or (N, 784)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){2, 196}, 2)));
  tu_assert_error(tape, "model_forward", "(2, 196)", "(N, 784)");
  tg_tape_free(tape);
  tg_model_free(m);
  /* A dense net refuses a flat input of another size. */
  m = make("two-layer-net", 1);
  tape = tg_tape_new();
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){3, 196}, 2)));
  tu_assert_error(tape, "model_forward", "(3, 196)", "two-layer-net", "(N, 784)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, (int64_t[]){3, 1, 14, 14}, 4)));
  tu_assert_error(tape, "model_forward", "(3, 1, 14, 14)", "two-layer-net's (N, 1, 28, 28)");
  tg_tape_free(tape);
  tg_model_free(m);
  /* A model of several channels larger than 28×28 enlarges gray 28×28
   * images and nothing else: not 14×14 (×4 once), not gray images of its
   * own size (repeated over the channels once), not 3-channel ones. */
  tg_rng rng;
  m = make_rgb60(&rng);
  tape = tg_tape_new();
  const int64_t refused[][4] = {{2, 1, 14, 14}, {2, 1, 60, 60}, {2, 1, 30, 30}, {2, 3, 28, 28}};
  for (int i = 0; i < 4; i++) {
    char want[64];
    tg_shape_str(refused[i], 4, want, sizeof want);
    ck_assert_ptr_null(tg_model_forward(tape, m, tg_zeros(tape, refused[i], 4)));
    tu_assert_error(tape, "model_forward", want, "simple-convnet's (N, 3, 60, 60) or (N, 10800)",
                    "gray (N, 1, 28, 28) images are enlarged to fit");
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
  tg_model_free(m);
}
END_TEST

/* tg_model_check_input: a data set's sample shape against the model,
 * before any step — the same verdicts as tg_model_forward, with a
 * message naming the model, its input and the samples. */
START_TEST(test_check_input) {
  tg_model *m = make("two-layer-net", 1);
  tg_error err = {0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 28, 28}, 3, &err), TG_OK);
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){28, 28}, 2, &err), TG_OK);
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){784}, 1, &err), TG_OK);
  /* A dense net for 784 inputs given 196 features. */
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){196}, 1, &err), TG_ERR_SHAPE);
  ck_assert_str_eq(err.msg, "samples (196,) do not fit two-layer-net, which takes (1, 28, 28) or "
                            "784 values flat");
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 14, 14}, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "(1, 14, 14) do not fit two-layer-net"), "%s", err.msg);
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){28, 28}, 7, &err), TG_ERR_SHAPE);
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(m, NULL, 3, &err), TG_ERR_NULL);
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(NULL, (int64_t[]){784}, 1, &err), TG_ERR_NULL);
  tg_model_free(m);

  /* A 28×28 conv net given 14×14 images, and given 28×28 ones. */
  m = make("simple-convnet", 1);
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 28, 28}, 3, &err), TG_OK);
  ck_assert_int_eq(tg_model_check_input(m, (int64_t[]){1, 14, 14}, 3, &err), TG_ERR_SHAPE);
  ck_assert_str_eq(err.msg, "samples (1, 14, 14) do not fit simple-convnet, which takes "
                            "(1, 28, 28) or 784 values flat");
  tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------
 * Configuration errors */

START_TEST(test_config_errors) {
  tg_model_config c;
  tg_error err = {0};
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  ck_assert_int_eq(tg_model_defaults("simple-convnet", &c, NULL), TG_OK);
  c.n_hidden = 2;
  ck_assert_ptr_null(tg_model_new(&c, &rng, &err));
  ck_assert_msg(strstr(err.msg, "simple-convnet has 1 hidden affine layer, not 2"), "%s", err.msg);

  err = (tg_error){0};
  ck_assert_int_eq(tg_model_defaults("lenet", &c, NULL), TG_OK);
  c.batchnorm = 1;
  ck_assert_ptr_null(tg_model_new(&c, &rng, &err));
  ck_assert_msg(strstr(err.msg, "lenet has no Batch Norm"), "%s", err.msg);

  /* 30×30: conv 3 (pad 2) makes 17, which a 2×2/2 pool cannot split. */
  err = (tg_error){0};
  ck_assert_int_eq(tg_model_defaults("deep-convnet", &c, NULL), TG_OK);
  c.input[1] = c.input[2] = 30;
  ck_assert_ptr_null(tg_model_new(&c, &rng, &err));
  ck_assert_msg(strstr(err.msg, "deep-convnet: layer 10 (pool 2x2, stride 2, pad 0) does not "
                                "fit its input (32, 17, 17)"),
                "%s", err.msg);
}
END_TEST

/* Label smoothing ε: the loss is −(1/N) Σ_i Σ_k q_ik log softmax(z_i)_k
 * with q = (1 − ε)·one-hot + ε/C, and its gradient in the logits is
 * (softmax(z) − q)/N; both computed here in a plain double loop. The
 * configuration carries ε through its text, and ε outside [0, 1) is an
 * error. */
START_TEST(test_label_smoothing) {
  enum { N = 3, C = 10 };
  const double eps = 0.1;
  tg_model_config c;
  tg_error err = {0};
  ck_assert_int_eq(tg_model_defaults("two-layer-net", &c, NULL), TG_OK);
  c.label_smoothing = eps;
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  tg_model *m = tg_model_new(&c, &rng, &err);
  ck_assert_msg(m != NULL, "%s", err.msg);
  tg_tape *tape = tg_tape_new();
  tg_tensor *z = tg_tensor_new((int64_t[]){N, C}, 2, 1, "z", NULL); /* (N, C) logits */
  tg_tensor *t = tg_tensor_new((int64_t[]){N}, 1, 0, "t", NULL);    /* (N,) labels */
  for (int i = 0; i < N * C; i++)
    z->data[i] = (tg_real)(0.37 * ((i * 7) % 11) - 1.5);
  const int label[N] = {2, 9, 0};
  for (int i = 0; i < N; i++)
    t->data[i] = (tg_real)label[i];
  tg_tensor *loss = tg_model_loss(tape, m, z, t);
  ck_assert_msg(loss != NULL, "%s", tg_tape_error(tape));
  ck_assert_int_eq(tg_backward(tape, loss, NULL), TG_OK);
  double want = 0;
  for (int i = 0; i < N; i++) {
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < C; k++)
      mx = fmax(mx, (double)z->data[i * C + k]);
    for (int k = 0; k < C; k++)
      sum += exp((double)z->data[i * C + k] - mx);
    for (int k = 0; k < C; k++) {
      double logp = (double)z->data[i * C + k] - mx - log(sum);
      double q = (k == label[i] ? 1 - eps : 0) + eps / C;
      want -= q * logp / N;
      double g = (exp(logp) - q) / N;
      ck_assert_msg(fabs((double)z->grad->data[i * C + k] - g) < 1e-6,
                    "dz[%d][%d] = %.9g, want %.9g", i, k, (double)z->grad->data[i * C + k], g);
    }
  }
  ck_assert_msg(fabs(tg_at(loss, 0) - want) < 1e-6 * fabs(want), "loss %.9g, want %.9g",
                tg_at(loss, 0), want);

  char text[512];
  ck_assert_int_eq(tg_model_config_write(&c, text, sizeof text), TG_OK);
  ck_assert_ptr_nonnull(strstr(text, "label_smoothing=0.1"));
  tg_model_config back;
  ck_assert_int_eq(tg_model_config_read(text, &back, &err), TG_OK);
  ck_assert(back.label_smoothing == eps);
  c.label_smoothing = 0; /* unused: not written, as before it existed */
  ck_assert_int_eq(tg_model_config_write(&c, text, sizeof text), TG_OK);
  ck_assert_ptr_null(strstr(text, "label_smoothing"));
  const double bad[] = {1, -0.1, NAN};
  for (int i = 0; i < 3; i++) {
    c.label_smoothing = bad[i];
    err = (tg_error){0};
    ck_assert_ptr_null(tg_model_new(&c, &rng, &err));
    ck_assert_msg(strstr(err.msg, "label smoothing"), "%s", err.msg);
  }
  tg_tape_free(tape);
  tg_tensor_free(z);
  tg_tensor_free(t);
  tg_model_free(m);
}
END_TEST

/* Flip test-time augmentation, on TwoLayerNet with images of odd width
 * (3 × 5 × 7, so a mirror moves every column but the middle one): the
 * result is log ½(softmax(f(x)) + softmax(f(x'))) for x' the images
 * mirrored by a plain loop, computed here in double from two plain
 * forwards; a batch and its mirror image give the same bits (the two
 * views, swapped); flat input gives the bits of the (N, C, H, W) one. */
START_TEST(test_flip_tta) {
  enum { N = 4, C = 3, H = 5, W = 7, K = 10 };
  tg_model_config c;
  ck_assert_int_eq(tg_model_defaults("two-layer-net", &c, NULL), TG_OK);
  c.input[0] = C;
  c.input[1] = H;
  c.input[2] = W;
  tg_rng rng;
  tg_rng_seed(&rng, 5);
  tg_error err = {0};
  tg_model *m = tg_model_new(&c, &rng, &err);
  ck_assert_msg(m != NULL, "%s", err.msg);
  tg_tape *tape = tg_tape_new();
  tg_tape_set_train(tape, 0);
  tg_tape_set_grad(tape, 0);
  tg_tensor *x = tg_tensor_new((int64_t[]){N, C, H, W}, 4, 0, "x", NULL);
  tg_tensor *xm = tg_tensor_new((int64_t[]){N, C, H, W}, 4, 0, "x mirrored", NULL);
  for (int i = 0; i < N * C * H * W; i++)
    x->data[i] = (tg_real)(((i * 37) % 101) / 50.0 - 1);
  for (int r = 0; r < N * C * H; r++)
    for (int j = 0; j < W; j++)
      xm->data[r * W + j] = x->data[r * W + (W - 1 - j)];

  tg_tensor *a = tg_model_forward(tape, m, x), *b = tg_model_forward(tape, m, xm);
  tg_tensor *y = tg_model_forward_flip_tta(tape, m, x);
  ck_assert_msg(a && b && y, "%s", tg_tape_error(tape));
  assert_shape(y, 2, (int64_t[]){N, K});
  for (int i = 0; i < N; i++) {
    double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
    for (int k = 0; k < K; k++) {
      ma = fmax(ma, (double)a->data[i * K + k]);
      mb = fmax(mb, (double)b->data[i * K + k]);
    }
    for (int k = 0; k < K; k++) {
      sa += exp((double)a->data[i * K + k] - ma);
      sb += exp((double)b->data[i * K + k] - mb);
    }
    for (int k = 0; k < K; k++) {
      double p = exp((double)a->data[i * K + k] - ma) / sa;
      double q = exp((double)b->data[i * K + k] - mb) / sb;
      double want = log(0.5 * (p + q));
      ck_assert_msg(fabs((double)y->data[i * K + k] - want) < 1e-5 * (1 + fabs(want)),
                    "tta[%d][%d] = %.9g, want %.9g", i, k, (double)y->data[i * K + k], want);
    }
  }
  tg_tensor *ym = tg_model_forward_flip_tta(tape, m, xm);
  ck_assert_msg(ym && tu_same_bits(y, ym), "a batch and its mirror image differ");
  tg_tensor *flat =
      tg_model_forward_flip_tta(tape, m, tg_reshape(tape, x, (int64_t[]){N, C * H * W}, 2));
  ck_assert_msg(flat && tu_same_bits(y, flat), "flat input differs");

  ck_assert_ptr_null(tg_model_forward_flip_tta(tape, NULL, x));
  ck_assert_msg(strstr(tg_tape_error(tape), "model_forward_flip_tta") &&
                    strstr(tg_tape_error(tape), "model is NULL"),
                "%s", tg_tape_error(tape));
  tg_tape_free(tape);
  tg_tensor_free(x);
  tg_tensor_free(xm);
  tg_model_free(m);
}
END_TEST

/* A few Adam steps on one fixed batch: SimpleConvNet's loss falls. */
/* ------------------------------------------------------------------------
 * ReLU then max-pooling, as max-pooling then ReLU (convnets.c) */

/* max_pool(relu(x)) and relu(max_pool(x)) on inputs full of ties, zeros
 * and all-negative windows: the same bits, and the same gradient bits for
 * a seed that differs per output element. */
START_TEST(test_relu_pool_commute) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){2, 3, 6, 6}, 4, 0, 1);
  for (int64_t i = 0; i < x->numel; i++) /* -2, -1, 0, 1, 2: many equal maxima */
    x->data[i] = (tg_real)(llround(x->data[i] * 4.9 - 2.45));
  tg_tensor *gx[2], *y[2];
  for (int order = 0; order < 2; order++) {
    y[order] = order ? tg_relu(tape, tg_max_pool2d(tape, x, 2, 2, 0))
                     : tg_max_pool2d(tape, tg_relu(tape, x), 2, 2, 0);
    tg_tensor *seed = tg_empty(tape, y[order]->shape, y[order]->ndim);
    ck_assert_ptr_nonnull(seed);
    for (int64_t i = 0; i < seed->numel; i++)
      seed->data[i] = (tg_real)(i % 7 + 1);
    ck_assert(tg_grad(tape, y[order], seed, 1, &x, &gx[order], 0) == TG_OK);
  }
  ck_assert_msg(tu_same_bits(y[0], y[1]), "values differ");
  ck_assert_msg(tu_same_bits(gx[0], gx[1]), "gradients differ");
  tg_tape_free(tape);
}
END_TEST

/* SimpleConvNet and DeepConvNet (Dropout off) against their layers written
 * out in the book's order, ReLU before each pooling: logits, loss and
 * every parameter's gradient, to the bit (the biases of the pooled
 * convolutions to rounding: see below). */
static tg_tensor *book_order(tg_tape *tape, const tg_model *m, tg_tensor *x) {
  tg_tensor *const *W = m->W, *const *b = m->b;
  if (strcmp(m->cfg.kind, "simple-convnet") == 0) {
    tg_tensor *h =
        tg_max_pool2d(tape, tg_relu(tape, tg_conv2d(tape, x, W[0], b[0], 1, 0)), 2, 2, 0);
    return tg_affine(tape, tg_relu(tape, tg_affine(tape, h, W[1], b[1])), W[2], b[2]);
  }
  static const int64_t pad[6] = {1, 1, 1, 2, 1, 1};
  tg_tensor *h = x;
  for (int k = 0; k < 6; k++) {
    h = tg_relu(tape, tg_conv2d(tape, h, W[k], b[k], 1, pad[k]));
    if (k % 2 == 1)
      h = tg_max_pool2d(tape, h, 2, 2, 0);
  }
  return tg_affine(tape, tg_relu(tape, tg_affine(tape, h, W[6], b[6])), W[7], b[7]);
}

START_TEST(test_convnets_keep_the_book_order) {
  const char *kinds[] = {"simple-convnet", "deep-convnet"};
  for (int k = 0; k < 2; k++) {
    tg_model_config cfg;
    ck_assert_int_eq(tg_model_defaults(kinds[k], &cfg, NULL), TG_OK);
    cfg.dropout = 0;
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_model *m = tg_model_new(&cfg, &rng, NULL);
    ck_assert_ptr_nonnull(m);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tu_leaf(tape, (int64_t[]){3, 1, 28, 28}, 4, 0, 1);
    tg_tensor *t = tg_empty(tape, (int64_t[]){3}, 1);
    for (int i = 0; i < 3; i++)
      t->data[i] = (tg_real)(3 * i + 1);
    tg_tensor *logits[2], *loss[2], *grads[2][16];
    int n = m->params.n;
    ck_assert_int_le(n, 16);
    for (int way = 0; way < 2; way++) {
      logits[way] = way ? book_order(tape, m, x) : tg_model_forward(tape, m, x);
      loss[way] = tg_softmax_cross_entropy(tape, logits[way], t);
      ck_assert_msg(loss[way] &&
                        tg_grad(tape, loss[way], NULL, n, m->params.items, grads[way], 0) == TG_OK,
                    "%s: %s", kinds[k], tg_tape_error(tape));
    }
    ck_assert_msg(tu_same_bits(logits[0], logits[1]), "%s: logits differ", kinds[k]);
    ck_assert_msg(tu_same_bits(loss[0], loss[1]), "%s: losses differ", kinds[k]);
    for (int i = 0; i < n; i++) {
      const char *name = m->params.items[i]->name;
      if (tu_same_bits(grads[0][i], grads[1][i]))
        continue;
      /* The bias of a convolution that feeds a pooling (b1; DeepConvNet's
       * b2, b4, b6) runs through conv_max_pool, whose db sums the pooled
       * gradient: the same nonzero terms as the book's sum over the
       * scattered map, grouped otherwise, so equal up to rounding. */
      const int pooled = k == 0 ? !strcmp(name, "b1")
                                : !strcmp(name, "b2") || !strcmp(name, "b4") || !strcmp(name, "b6");
      ck_assert_msg(pooled, "%s: gradients of %s differ", kinds[k], name);
      double scale = 0;
      for (int64_t j = 0; j < grads[1][i]->numel; j++)
        scale = fmax(scale, fabs(tg_at(grads[1][i], j)));
      for (int64_t j = 0; j < grads[1][i]->numel; j++)
        ck_assert_msg(fabs(tg_at(grads[0][i], j) - tg_at(grads[1][i], j)) <= 1e-5 * scale,
                      "%s: gradient of %s, element %lld: %.9g, the book order gives %.9g", kinds[k],
                      name, (long long)j, tg_at(grads[0][i], j), tg_at(grads[1][i], j));
    }
    tg_tape_free(tape);
    tg_model_free(m);
  }
}
END_TEST

START_TEST(test_simple_convnet_learns_a_batch) {
  tg_model *m = make("simple-convnet", 9);
  tg_optim_config oc = tg_optim_defaults(TG_ADAM);
  tg_optim *opt = tg_optim_new(&oc, &m->params, NULL);
  ck_assert_ptr_nonnull(opt);
  tg_tape *tape = tg_tape_new();
  tg_rng rng;
  tg_rng_seed(&rng, 2);
  tg_real xs[20 * 784], ts[20];
  for (int i = 0; i < 20; i++) {
    ts[i] = (tg_real)(i % 10);
    for (int p = 0; p < 784; p++) /* class k: a bright row at 2k + 4, plus noise */
      xs[i * 784 + p] = (tg_real)((p / 28 == 2 * (i % 10) + 4) + 0.1 * tg_rng_uniform(&rng));
  }
  double first = 0, last = 0;
  for (int step = 0; step < 30; step++) {
    tg_tensor *x = tg_empty(tape, (int64_t[]){20, 1, 28, 28}, 4);
    tg_tensor *t = tg_empty(tape, (int64_t[]){20}, 1);
    memcpy(x->data, xs, sizeof xs);
    memcpy(t->data, ts, sizeof ts);
    tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
    ck_assert_msg(loss && tg_backward(tape, loss, NULL) == TG_OK, "%s", tg_tape_error(tape));
    if (step == 0)
      first = tg_at(loss, 0);
    last = tg_at(loss, 0);
    tg_optim_step(opt);
    tg_tape_reset(tape);
  }
  ck_assert_msg(last < 0.2 * first, "loss %g -> %g", first, last);
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_model_free(m);
}
END_TEST

static Suite *models_suite(void) {
  Suite *s = suite_create("models");
  TCase *tc = tcase_create("models");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_kinds_and_optimizers);
  tcase_add_test(tc, test_parameter_shapes);
  tcase_add_test(tc, test_deep_convnet_he_init);
  /* Whole networks in float: central differences cross ReLU and max-pool
   * kinks and lose digits to rounding, so only the double build checks
   * them (it runs in CI like the float one). */
  if (sizeof(tg_real) == 8) {
    tcase_add_test(tc, test_simple_convnet_gradients);
    tcase_add_test(tc, test_lenet_gradients);
    tcase_add_test(tc, test_deep_convnet_gradients);
  }
  tcase_add_test(tc, test_alexnet_real_size);
  tcase_add_test(tc, test_alexnet_enlarges_digits);
  tcase_add_test(tc, test_fit_input_upscales);
  tcase_add_test(tc, test_fit_input_refuses);
  tcase_add_test(tc, test_check_input);
  tcase_add_test(tc, test_config_errors);
  tcase_add_test(tc, test_label_smoothing);
  tcase_add_test(tc, test_flip_tta);
  tcase_add_test(tc, test_simple_convnet_learns_a_batch);
  tcase_add_test(tc, test_relu_pool_commute);
  tcase_add_test(tc, test_convnets_keep_the_book_order);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(models_suite)
