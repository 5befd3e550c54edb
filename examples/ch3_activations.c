/* ch3_activations.c — chapter 3 of "Deep Learning from Scratch": activation
 * functions, a 3-layer forward pass and the softmax overflow.
 *
 * Reproduces
 *   - sections 3.2.2-3.2.7: the step function, the sigmoid and ReLU over
 *     [-5, 5] (the book's figures 3-6, 3-7 and 3-9), computed on a tensor
 *     with tg_step, tg_sigmoid and tg_relu;
 *   - section 3.4.3: the 3-layer network of init_network() (2-3-2-2,
 *     sigmoid hidden layers, identity output) on x = (1.0, 0.5), which
 *     gives y = [0.3168, 0.6963];
 *   - section 3.5.2: softmax of (1010, 1000, 990): the naive formula
 *     exp(a) / sum(exp(a)) overflows to NaN, tg_softmax (which subtracts
 *     the maximum first) stays finite.
 *
 * Prints the numbers, each next to the book's, and draws activations.png
 * and activations.svg.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <plot.h>
#include <tapegrad.h>

#define NPOINTS 101 /* x = -5.0, -4.9, ..., 5.0 (the book's np.arange(-5, 5, 0.1)) */

static int fail(tg_tape *tape, const char *what) {
  fprintf(stderr, "ch3_activations: %s: %s\n", what, tg_tape_error(tape));
  return 1;
}

static void print_vec(const char *label, const tg_tensor *t, const char *book) {
  printf("  %-22s [", label);
  int digits = sizeof(tg_real) == sizeof(float) ? 7 : 10; /* what tg_real holds */
  for (int64_t i = 0; i < t->numel; i++) {
    double v = tg_at(t, i);
    if (isnan(v))
      printf("%snan", i ? ", " : ""); /* printf may say -nan */
    else
      printf("%s%.*g", i ? ", " : "", digits, v);
  }
  printf("]   book: %s\n", book);
}

/* ------------------------------------------------------------------------
 * Section 3.2: the activation functions, and figure 3-6/3-7/3-9 */

static int activations(tg_tape *tape) {
  double xs[NPOINTS];
  for (int i = 0; i < NPOINTS; i++)
    xs[i] = -5.0 + 0.1 * i;
  tg_tensor *x = tg_from_values(tape, (int64_t[]){NPOINTS}, 1, xs); /* (101,) */
  tg_tensor *y_step = tg_step(tape, x);
  tg_tensor *y_sig = tg_sigmoid(tape, x);
  tg_tensor *y_relu = tg_relu(tape, x);

  tg_tensor *probe = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){-1.0, 1.0, 2.0});
  tg_tensor *p_step = tg_step(tape, probe);
  tg_tensor *p_sig = tg_sigmoid(tape, probe);
  tg_tensor *p_relu = tg_relu(tape, probe);
  if (!y_step || !y_sig || !y_relu || !p_step || !p_sig || !p_relu)
    return fail(tape, "activations");

  printf("Activation functions at x = (-1.0, 1.0, 2.0) (section 3.2):\n");
  print_vec("step", p_step, "[0, 1, 1]");
  print_vec("sigmoid", p_sig, "[0.26894142, 0.73105858, 0.88079708]");
  print_vec("relu", p_relu, "(max(0, x)) [0, 1, 2]");
  printf("  over [-5, 5]: sigmoid(-5) = %.6f, sigmoid(5) = %.6f, relu(5) = %g\n\n", tg_at(y_sig, 0),
         tg_at(y_sig, NPOINTS - 1), tg_at(y_relu, NPOINTS - 1));

  double ystep[NPOINTS], ysig[NPOINTS], yrelu[NPOINTS];
  for (int i = 0; i < NPOINTS; i++) {
    ystep[i] = tg_at(y_step, i);
    ysig[i] = tg_at(y_sig, i);
    yrelu[i] = tg_at(y_relu, i);
  }
  tg_figure *f = tg_figure_new(1, 2, 1000, 440);
  tg_figure_title(f, "Activation functions (tg_step, tg_sigmoid, tg_relu)");
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_title(ax, "step and sigmoid (figures 3-6, 3-7)");
  tg_axes_line(ax, xs, ystep, NPOINTS, "step", &(tg_line_style){.dash = TG_DASH_DASHED});
  tg_axes_line(ax, xs, ysig, NPOINTS, "sigmoid", NULL);
  tg_axes_ylim(ax, -0.1, 1.1);
  tg_axes_xlabel(ax, "x");
  tg_axes_ylabel(ax, "h(x)");
  tg_axes_legend(ax, TG_LEGEND_UPPER_LEFT);
  tg_axes_grid(ax, 1);
  ax = tg_figure_axes(f, 0, 1);
  tg_axes_title(ax, "ReLU (figure 3-9)");
  tg_axes_line(ax, xs, yrelu, NPOINTS, "relu", &(tg_line_style){.color = TG_RGB(44, 160, 44)});
  tg_axes_ylim(ax, -1.0, 5.5);
  tg_axes_xlabel(ax, "x");
  tg_axes_ylabel(ax, "h(x)");
  tg_axes_legend(ax, TG_LEGEND_UPPER_LEFT);
  tg_axes_grid(ax, 1);

  int rc = 0;
  const char *paths[2] = {"activations.png", "activations.svg"};
  for (int i = 0; i < 2 && rc == 0; i++) {
    tg_error err = {0};
    if (tg_figure_save(f, paths[i], &err) != TG_OK) {
      fprintf(stderr, "ch3_activations: cannot save %s: %s\n", paths[i], err.msg);
      rc = 1;
    } else {
      printf("wrote %s\n", paths[i]);
    }
  }
  tg_figure_free(f);
  tg_tape_reset(tape);
  return rc;
}

/* ------------------------------------------------------------------------
 * Section 3.4.3: the 3-layer network of init_network() */

static int three_layer(tg_tape *tape) {
  /* x (1, 2); W1 (2, 3), b1 (3,); W2 (3, 2), b2 (2,); W3 (2, 2), b3 (2,) */
  tg_tensor *x = tg_from_values(tape, (int64_t[]){1, 2}, 2, (double[]){1.0, 0.5});
  tg_tensor *W1 =
      tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){0.1, 0.3, 0.5, 0.2, 0.4, 0.6});
  tg_tensor *b1 = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){0.1, 0.2, 0.3});
  tg_tensor *W2 =
      tg_from_values(tape, (int64_t[]){3, 2}, 2, (double[]){0.1, 0.4, 0.2, 0.5, 0.3, 0.6});
  tg_tensor *b2 = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){0.1, 0.2});
  tg_tensor *W3 = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){0.1, 0.3, 0.2, 0.4});
  tg_tensor *b3 = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){0.1, 0.2});

  tg_tensor *a1 = tg_affine(tape, x, W1, b1);  /* (1, 3) */
  tg_tensor *z1 = tg_sigmoid(tape, a1);        /* (1, 3) */
  tg_tensor *a2 = tg_affine(tape, z1, W2, b2); /* (1, 2) */
  tg_tensor *z2 = tg_sigmoid(tape, a2);        /* (1, 2) */
  tg_tensor *a3 = tg_affine(tape, z2, W3, b3); /* (1, 2) */
  tg_tensor *y = tg_identity(tape, a3);        /* (1, 2) */
  if (!y)
    return fail(tape, "3-layer network");

  printf("\n3-layer network of init_network(), x = [1.0, 0.5] (section 3.4.3):\n");
  print_vec("A1 = x W1 + b1", a1, "[0.3, 0.7, 1.1]");
  print_vec("Z1 = sigmoid(A1)", z1, "[0.57444252, 0.66818777, 0.75026011]");
  print_vec("y", y, "[0.31682708, 0.69627909]");
  if (fabs(tg_at(y, 0) - 0.31682708) > 1e-5 || fabs(tg_at(y, 1) - 0.69627909) > 1e-5) {
    fprintf(stderr, "ch3_activations: y differs from the book's [0.3168, 0.6963]\n");
    return 1;
  }
  tg_tape_reset(tape);
  return 0;
}

/* ------------------------------------------------------------------------
 * Section 3.5: softmax, and why the maximum is subtracted */

static int softmax(tg_tape *tape) {
  tg_tensor *a = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1010, 1000, 990});
  /* The naive formula, op by op: exp(1010) overflows to inf, inf/inf = NaN. */
  tg_tensor *e = tg_exp(tape, a);
  tg_tensor *naive = tg_div(tape, e, tg_sum(tape, e, NULL, 0, 0));
  tg_tensor *safe = tg_softmax(tape, a, -1);
  tg_tensor *b = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){0.3, 2.9, 4.0});
  tg_tensor *sb = tg_softmax(tape, b, -1);
  tg_tensor *sum_sb = tg_sum(tape, sb, NULL, 0, 0);
  if (!naive || !safe || !sum_sb)
    return fail(tape, "softmax");

  printf("\nSoftmax (section 3.5):\n");
  print_vec("softmax(0.3, 2.9, 4.0)", sb, "[0.01821127, 0.24519181, 0.73659691]");
  printf("  %-22s %.8g   book: 1.0\n", "sum of it", tg_at(sum_sb, 0));
  print_vec("naive (1010,1000,990)", naive, "[nan, nan, nan]");
  print_vec("tg_softmax", safe, "[9.99954600e-01, 4.53978686e-05, 2.06106005e-09]");
  for (int i = 0; i < 3; i++)
    if (!isfinite(tg_at(safe, i)) || !isnan(tg_at(naive, i))) {
      fprintf(stderr, "ch3_activations: softmax of (1010, 1000, 990) is not as expected\n");
      return 1;
    }
  tg_tape_reset(tape);
  return 0;
}

int main(void) {
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "ch3_activations: out of memory\n");
    return 1;
  }
  tg_tape_set_grad(tape, 0); /* forward passes only */
  printf("tg_real is %s\n\n", TG_REAL_NAME);
  int rc = activations(tape) || three_layer(tape) || softmax(tape);
  tg_plot_release_caches();
  tg_tape_free(tape);
  return rc;
}
