/* ch5_backprop.c — chapter 5 of "Deep Learning from Scratch":
 * backpropagation on the tape, and the gradient check.
 *
 * Reproduces
 *   - sections 5.2-5.4: the shopping examples. Apples: 100 each × 2, tax
 *     1.1, price 220. Apples and oranges: 100 × 2 + 150 × 3, tax 1.1,
 *     price 715, with d price / d apple_num = 110, d apple = 2.2,
 *     d orange = 3.3, d orange_num = 165, d tax = 650. The book writes
 *     MulLayer and AddLayer by hand; here the tape records the products
 *     and sums and tg_backward walks it back;
 *   - section 5.7.3: the gradient check of TwoLayerNet (784-50-10, weights
 *     N(0, 0.01²)) on the first 3 training samples: backprop's gradient
 *     against the book's numerical_gradient (central differences, h = 1e-4,
 *     every element), as the mean absolute difference per parameter. The
 *     book, in float64, gets about 1e-10 and below; in tapegrad's float
 *     build the numerical side is limited by float's 7 digits and the
 *     differences are about 1e-3 to 1e-5, in the double build far smaller.
 *     tg_gradcheck adds its own worst relative errors.
 *
 * Prints every number next to the book's and draws gradient_check.png and
 * gradient_check.svg: the four differences as bars on a log axis.
 * Data: the MNIST digits, else Fashion-MNIST.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <plot.h>
#include <tapegrad.h>

#define H 1e-4 /* the book's h */

static int fail(tg_tape *tape, const char *what) {
  fprintf(stderr, "ch5_backprop: %s: %s\n", what, tg_tape_error(tape));
  return 1;
}

/* A scalar leaf that backward fills a gradient for. */
static tg_tensor *leaf(tg_tape *tape, double v) {
  return tg_requires_grad(tape, tg_scalar(tape, (tg_real)v));
}

/* ------------------------------------------------------------------------
 * Sections 5.3-5.4: the shopping examples */

static int shopping(tg_tape *tape) {
  tg_tensor *apple = leaf(tape, 100), *apple_num = leaf(tape, 2), *tax = leaf(tape, 1.1);
  tg_tensor *price = tg_mul(tape, tg_mul(tape, apple, apple_num), tax);
  if (!price || tg_backward(tape, price, NULL) != TG_OK)
    return fail(tape, "apples");
  printf("Buying apples (section 5.4.1): 100 x 2, tax 1.1  (tg_real is %s)\n", TG_REAL_NAME);
  printf("  price          %-10.7g book: 220\n", tg_at(price, 0));
  printf("  d/d apple      %-10.7g book: 2.2\n", tg_at(apple->grad, 0));
  printf("  d/d apple_num  %-10.7g book: 110\n", tg_at(apple_num->grad, 0));
  printf("  d/d tax        %-10.7g book: 200\n\n", tg_at(tax->grad, 0));
  tg_tape_reset(tape);

  apple = leaf(tape, 100), apple_num = leaf(tape, 2), tax = leaf(tape, 1.1);
  tg_tensor *orange = leaf(tape, 150), *orange_num = leaf(tape, 3);
  tg_tensor *apple_price = tg_mul(tape, apple, apple_num);        /* MulLayer */
  tg_tensor *orange_price = tg_mul(tape, orange, orange_num);     /* MulLayer */
  tg_tensor *all_price = tg_add(tape, apple_price, orange_price); /* AddLayer */
  price = tg_mul(tape, all_price, tax);                           /* MulLayer */
  if (!price || tg_backward(tape, price, NULL) != TG_OK)
    return fail(tape, "apples and oranges");
  struct {
    const char *name;
    double ours, book;
  } rows[] = {
      {"price", tg_at(price, 0), 715},
      {"d/d apple_num", tg_at(apple_num->grad, 0), 110},
      {"d/d apple", tg_at(apple->grad, 0), 2.2},
      {"d/d orange", tg_at(orange->grad, 0), 3.3},
      {"d/d orange_num", tg_at(orange_num->grad, 0), 165},
      {"d/d tax", tg_at(tax->grad, 0), 650},
  };
  printf("Buying apples and oranges (section 5.4.2): 100 x 2 + 150 x 3, tax 1.1\n");
  for (int i = 0; i < 6; i++) {
    printf("  %-14s %-10.7g book: %g\n", rows[i].name, rows[i].ours, rows[i].book);
    if (fabs(rows[i].ours - rows[i].book) > 1e-4 * fabs(rows[i].book)) {
      fprintf(stderr, "ch5_backprop: %s is %g, the book has %g\n", rows[i].name, rows[i].ours,
              rows[i].book);
      return 1;
    }
  }
  tg_tape_reset(tape);
  return 0;
}

/* ------------------------------------------------------------------------
 * Section 5.7.3: the gradient check of TwoLayerNet */

typedef struct batch_ctx {
  tg_model *m;
  tg_tensor *x, *t; /* (3, 784), (3,) */
} batch_ctx;

/* The loss with the parameters as gradcheck's inputs (they are the model's
 * own tensors, so the model's forward reads them). */
static tg_tensor *loss_fn(tg_tape *tape, tg_tensor *const *inputs, void *ctx) {
  (void)inputs;
  batch_ctx *b = ctx;
  return tg_model_loss(tape, b->m, tg_model_forward(tape, b->m, b->x), b->t);
}

/* The loss in no-grad mode; nothing stays on the tape. */
static double loss_value(tg_tape *tape, batch_ctx *b) {
  tg_tape_mark mark = tg_tape_get_mark(tape);
  tg_tensor *loss = loss_fn(tape, NULL, b);
  double v = loss ? tg_at(loss, 0) : NAN;
  tg_tape_rewind(tape, mark);
  return v;
}

/* mean |backprop − numerical| for every parameter, into diff[]. Backprop's
 * gradient must be in the parameters' gradient buffers. */
static int numerical_diff(tg_tape *tape, batch_ctx *b, double *diff) {
  int was = tg_tape_set_grad(tape, 0);
  for (int k = 0; k < b->m->params.n; k++) {
    tg_tensor *p = b->m->params.items[k];
    double sum = 0;
    for (int64_t j = 0; j < p->numel; j++) {
      tg_real v = p->data[j];
      p->data[j] = v + (tg_real)H;
      double l1 = loss_value(tape, b);
      p->data[j] = v - (tg_real)H;
      double l2 = loss_value(tape, b);
      p->data[j] = v;
      sum += fabs(tg_at(p->grad, j) - (l1 - l2) / (2 * H));
    }
    diff[k] = sum / (double)p->numel;
  }
  tg_tape_set_grad(tape, was);
  return tg_tape_status(tape);
}

static int draw(const tg_model *m, const double *diff) {
  int n = m->params.n;
  double lo = INFINITY, hi = 0;
  for (int k = 0; k < n; k++)
    if (diff[k] > 0) {
      lo = fmin(lo, diff[k]);
      hi = fmax(hi, diff[k]);
    }
  if (!(hi > 0)) /* all zero: nothing to show on a log axis, but draw the frame */
    lo = hi = 1e-10;
  lo = pow(10, floor(log10(lo)) - 1);
  hi = pow(10, ceil(log10(hi)) + 1);
  char title[96];
  snprintf(title, sizeof title, "Gradient check of TwoLayerNet (tg_real = %s, h = 1e-4)",
           TG_REAL_NAME);
  tg_figure *f = tg_figure_new(1, 1, 720, 480);
  tg_figure_title(f, title);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  double at[8];
  const char *names[8];
  for (int k = 0; k < n && k < 8; k++) {
    tg_axes_bar(ax, k, diff[k], 0.6, NULL);
    at[k] = k, names[k] = m->params.items[k]->name;
  }
  tg_axes_xticks(ax, at, names, n < 8 ? n : 8);
  tg_axes_ylog(ax, 1);
  tg_axes_xlim(ax, -0.6, n - 0.4);
  tg_axes_ylim(ax, lo, hi);
  tg_axes_xlabel(ax, "parameter");
  tg_axes_ylabel(ax, "mean |backprop - numerical|");
  tg_axes_grid(ax, 1);
  int rc = 0;
  const char *paths[2] = {"gradient_check.png", "gradient_check.svg"};
  for (int i = 0; i < 2 && rc == 0; i++) {
    tg_error err = {0};
    if (tg_figure_save(f, paths[i], &err) != TG_OK) {
      fprintf(stderr, "ch5_backprop: cannot save %s: %s\n", paths[i], err.msg);
      rc = 1;
    } else {
      printf("wrote %s\n", paths[i]);
    }
  }
  tg_figure_free(f);
  return rc;
}

static int gradient_check(tg_tape *tape) {
  tg_dataset train, test;
  tg_error err = {0};
  if (tg_dataset_open("mnist-digits", &train, &test, &err) != TG_OK) {
    printf("note: the MNIST digits are not installed (%s); using Fashion-MNIST instead\n", err.msg);
    err = (tg_error){0};
    if (tg_dataset_open("fashion-mnist", &train, &test, &err) != TG_OK) {
      fprintf(stderr, "ch5_backprop: %s\n", err.msg);
      return 1;
    }
  }
  tg_model_config cfg;
  tg_model *m = NULL;
  int rc = 1;
  tg_tape_seed(tape, 1);
  if (tg_model_defaults("two-layer-net", &cfg, &err) != TG_OK ||
      !(m = tg_model_new(&cfg, tg_tape_rng(tape), &err))) {
    fprintf(stderr, "ch5_backprop: %s\n", err.msg);
    goto done;
  }
  batch_ctx b = {.m = m};
  b.x = tg_dataset_batch(tape, &train, NULL, 0, 3, 1, &b.t); /* x_train[:3], t_train[:3] */
  tg_tensor *loss = loss_fn(tape, NULL, &b);
  if (!loss || tg_backward(tape, loss, NULL) != TG_OK) {
    rc = fail(tape, "backprop");
    goto done;
  }
  double diff[8];
  if (numerical_diff(tape, &b, diff) != TG_OK) {
    rc = fail(tape, "numerical gradient");
    goto done;
  }
  printf("\nGradient check of TwoLayerNet on 3 training samples (section 5.7.3), loss %.6f:\n",
         tg_at(loss, 0));
  printf("  mean |backprop - numerical| per parameter (h = 1e-4, tg_real is %s):\n", TG_REAL_NAME);
  static const char *book[4] = {"2.2232083226e-13", "9.70418809871e-13", "8.41139039497e-13",
                                "1.1945999745e-10"};
  for (int k = 0; k < m->params.n; k++)
    printf("    %-3s %.6e   book (float64, its own random init): %s\n", m->params.items[k]->name,
           diff[k], k < 4 ? book[k] : "-");
  double limit = sizeof(tg_real) == sizeof(float) ? 1e-2 : 1e-7;
  for (int k = 0; k < m->params.n; k++)
    if (!(diff[k] < limit)) {
      fprintf(stderr, "ch5_backprop: %s: backprop and numerical gradients differ by %g\n",
              m->params.items[k]->name, diff[k]);
      goto done;
    }

  /* The library's own check: relative errors, along every element of the
   * small inputs and along random directions for W1. */
  tg_gradcheck_report rep[8];
  tg_gradcheck_opts opts = {.seed = 1};
  tg_tensor *const *params = m->params.items;
  if (tg_gradcheck(tape, loss_fn, &b, m->params.n, params, &opts, rep) != TG_OK) {
    rc = fail(tape, "tg_gradcheck");
    goto done;
  }
  printf("\ntg_gradcheck (its default step for %s), worst relative error per parameter:\n",
         TG_REAL_NAME);
  tg_gradcheck_print(rep, m->params.n, params, stdout);
  if (sizeof(tg_real) == sizeof(float))
    printf("(in float tg_gradcheck steps by 1e-2, enough to push a hidden unit's input across\n"
           " ReLU's kink at 0: a relative error near 1 with a backward value of 0 is that, not a\n"
           " wrong gradient; the double build steps by 1e-6)\n");
  rc = draw(m, diff);

done:
  tg_model_free(m);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_tape_reset(tape);
  return rc;
}

int main(void) {
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "ch5_backprop: out of memory\n");
    return 1;
  }
  int rc = shopping(tape) || gradient_check(tape);
  tg_plot_release_caches();
  tg_tape_free(tape);
  return rc;
}
