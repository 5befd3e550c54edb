/* ch4_gradient.c — chapter 4 of "Deep Learning from Scratch": numerical
 * differentiation, gradients and gradient descent.
 *
 * Reproduces
 *   - section 4.3.2: the central difference (f(x+h) − f(x−h)) / 2h, h = 1e-4,
 *     of function_1(x) = 0.01x² + 0.1x at 5 and 10, next to the analytic
 *     derivative 0.02x + 0.1 taken by the tape (tg_backward);
 *   - section 4.4: the numerical gradient of function_2(x0, x1) = x0² + x1²
 *     at (3, 4), (0, 2) and (3, 0), and the field of −gradients (figure 4-9);
 *   - section 4.4.1: gradient descent from (−3, 4), lr 0.1, 20 steps
 *     (figure 4-10), and what a too-large (10.0) and a too-small (1e-10)
 *     learning rate do.
 * The numerical parts run in double, like the book's NumPy code, so the
 * printed values can be compared with the book's digit by digit.
 *
 * Draws gradient.png and gradient.svg: function_1 with its tangent at 5
 * (figure 4-7), the gradient field, and the descent path over contour
 * lines of function_2. The same chapter's training of TwoLayerNet by
 * numerical gradient is ch4_numerical_training.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <plot.h>
#include <tapegrad.h>

#define H 1e-4 /* the book's h */

/* Written as the book's 0.01*x**2 + 0.1*x, so it rounds the same way. */
static double function_1(double x) { return 0.01 * (x * x) + 0.1 * x; }

static double function_2(const double *x) { return x[0] * x[0] + x[1] * x[1]; }

/* The book's numerical_diff: the central difference. */
static double numerical_diff(double (*f)(double), double x) {
  return (f(x + H) - f(x - H)) / (2 * H);
}

/* The book's numerical_gradient for a vector of n values: one central
 * difference per coordinate, the others held. */
static void numerical_gradient(double (*f)(const double *), double *x, int n, double *grad) {
  for (int i = 0; i < n; i++) {
    double tmp = x[i];
    x[i] = tmp + H;
    double fxh1 = f(x);
    x[i] = tmp - H;
    double fxh2 = f(x);
    grad[i] = (fxh1 - fxh2) / (2 * H);
    x[i] = tmp;
  }
}

/* The book's gradient_descent; path (step_num + 1 points of 2) may be NULL. */
static void gradient_descent(double *x, double lr, int step_num, double *path) {
  for (int i = 0; i < step_num; i++) {
    if (path) {
      path[2 * i] = x[0];
      path[2 * i + 1] = x[1];
    }
    double grad[2];
    numerical_gradient(function_2, x, 2, grad);
    x[0] -= lr * grad[0];
    x[1] -= lr * grad[1];
  }
  if (path) {
    path[2 * step_num] = x[0];
    path[2 * step_num + 1] = x[1];
  }
}

/* d function_1 / dx at x0, by the tape: y = 0.01·x·x + 0.1·x, backward. */
static int analytic_diff(tg_tape *tape, double x0, double *dydx) {
  tg_tensor *x = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){1}, 1, &x0)); /* (1,) */
  tg_tensor *y =
      tg_add(tape, tg_mul_scalar(tape, tg_mul(tape, x, x), 0.01), tg_mul_scalar(tape, x, 0.1));
  if (!y || tg_backward(tape, y, NULL) != TG_OK) {
    fprintf(stderr, "ch4_gradient: function_1 on the tape: %s\n", tg_tape_error(tape));
    return 1;
  }
  *dydx = tg_at(x->grad, 0);
  tg_tape_reset(tape);
  return 0;
}

static double contour_f2(double x, double y, void *ctx) {
  (void)ctx;
  return x * x + y * y;
}

/* Figure 4-7: function_1 and its tangent at 5. */
static void plot_tangent(tg_axes *ax, double slope) {
  enum { N = 201 };
  double xs[N], ys[N], ts[N];
  for (int i = 0; i < N; i++) {
    xs[i] = 0.1 * i;
    ys[i] = function_1(xs[i]);
    ts[i] = function_1(5) + slope * (xs[i] - 5);
  }
  tg_axes_line(ax, xs, ys, N, "f(x) = 0.01x^2 + 0.1x", NULL);
  tg_axes_line(ax, xs, ts, N, "tangent at x = 5", &(tg_line_style){.dash = TG_DASH_DASHED});
  tg_axes_title(ax, "function_1 and its tangent (fig. 4-7)");
  tg_axes_xlabel(ax, "x");
  tg_axes_ylabel(ax, "f(x)");
  tg_axes_xlim(ax, 0, 20);
  tg_axes_legend(ax, TG_LEGEND_UPPER_LEFT);
  tg_axes_grid(ax, 1);
}

/* Figure 4-9: −∇f on a grid, as short segments with a dot at the head. */
static void plot_field(tg_axes *ax) {
  tg_line_style seg = {.color = TG_RGB(31, 119, 180), .width = 1.2};
  tg_line_style head = {
      .marker = TG_MARKER_CIRCLE, .color = TG_RGB(31, 119, 180), .marker_size = 1.8};
  double hx[169], hy[169];
  int n = 0;
  for (int i = 0; i < 13; i++)
    for (int j = 0; j < 13; j++) {
      double p[2] = {-2 + (double)i / 3, -2 + (double)j / 3}, g[2];
      numerical_gradient(function_2, p, 2, g);
      double x[2] = {p[0], p[0] - 0.06 * g[0]}, y[2] = {p[1], p[1] - 0.06 * g[1]};
      tg_axes_line(ax, x, y, 2, NULL, &seg);
      hx[n] = x[1];
      hy[n++] = y[1];
    }
  tg_axes_scatter(ax, hx, hy, n, NULL, &head);
  tg_axes_title(ax, "-gradient of x0^2 + x1^2 (fig. 4-9)");
  tg_axes_xlabel(ax, "x0");
  tg_axes_ylabel(ax, "x1");
  tg_axes_xlim(ax, -2.5, 2.5);
  tg_axes_ylim(ax, -2.5, 2.5);
  tg_axes_grid(ax, 1);
}

/* Figure 4-10: the descent path over contour lines. */
static void plot_descent(tg_axes *ax, const double *path, int npts) {
  double px[64], py[64];
  for (int i = 0; i < npts; i++) {
    px[i] = path[2 * i];
    py[i] = path[2 * i + 1];
  }
  static const double levels[] = {0.5, 2, 4.5, 8, 12.5, 18, 24.5};
  tg_axes_contour_fn(ax, contour_f2, NULL, -4, 4, -4.5, 4.5, 81, 91, levels, 7);
  tg_line_style dash = {.dash = TG_DASH_DASHED, .color = TG_RGB(110, 110, 110), .width = 1};
  tg_axes_line(ax, (double[]){-3.5, 3.5}, (double[]){0, 0}, 2, NULL, &dash);
  tg_axes_line(ax, (double[]){0, 0}, (double[]){-4.5, 4.5}, 2, NULL, &dash);
  tg_axes_line(ax, px, py, npts, "lr 0.1, 20 steps",
               &(tg_line_style){.marker = TG_MARKER_CIRCLE,
                                .color = TG_RGB(214, 39, 40),
                                .width = 1,
                                .marker_size = 3.5});
  tg_axes_title(ax, "gradient descent from (-3, 4) (fig. 4-10)");
  tg_axes_xlabel(ax, "x0");
  tg_axes_ylabel(ax, "x1");
  tg_axes_xlim(ax, -3.5, 3.5);
  tg_axes_ylim(ax, -4.5, 4.5);
  tg_axes_legend(ax, TG_LEGEND_LOWER_RIGHT);
}

int main(void) {
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "ch4_gradient: out of memory\n");
    return 1;
  }

  printf("Numerical derivative of function_1(x) = 0.01x^2 + 0.1x, h = 1e-4 (section 4.3.2):\n");
  static const char *book_diff[2] = {"0.1999999999990898", "0.2999999999986347"};
  double slope5 = 0;
  for (int i = 0; i < 2; i++) {
    double x0 = 5.0 * (i + 1), analytic;
    if (analytic_diff(tape, x0, &analytic)) {
      tg_tape_free(tape);
      return 1;
    }
    double num = numerical_diff(function_1, x0);
    if (i == 0)
      slope5 = num;
    printf("  x = %2g: numerical %.16g (book: %s), tape %.7g (analytic 0.02x + 0.1 = %g)\n", x0,
           num, book_diff[i], analytic, 0.02 * x0 + 0.1);
  }

  printf("\nNumerical gradient of function_2(x0, x1) = x0^2 + x1^2 (section 4.4):\n");
  static const double at[3][2] = {{3, 4}, {0, 2}, {3, 0}};
  static const char *book_grad[3] = {"[6, 8]", "[0, 4]", "[6, 0]"};
  for (int i = 0; i < 3; i++) {
    double p[2] = {at[i][0], at[i][1]}, g[2];
    numerical_gradient(function_2, p, 2, g);
    printf("  at (%g, %g): [%.15g, %.15g]   book: %s\n", at[i][0], at[i][1], g[0], g[1],
           book_grad[i]);
  }

  printf("\nGradient descent on function_2 from (-3, 4), 20 steps (section 4.4.1):\n");
  double path[2 * 21];
  double x[2] = {-3, 4};
  gradient_descent(x, 0.1, 20, path);
  for (int i = 0; i <= 20; i += 5)
    printf("  step %2d: (%.6g, %.6g)\n", i, path[2 * i], path[2 * i + 1]);
  printf("  after 20 steps (figure 4-10): [%.8e, %.8e]\n", x[0], x[1]);
  printf("The book's printed results run 100 steps (gradient_descent's default):\n");
  double conv[2] = {-3, 4}, big[2] = {-3, 4}, tiny[2] = {-3, 4};
  gradient_descent(conv, 0.1, 100, NULL);
  gradient_descent(big, 10.0, 100, NULL);
  gradient_descent(tiny, 1e-10, 100, NULL);
  printf("  lr 0.1:   [%.8e, %.8e]   book: [-6.11110793e-10, 8.14814391e-10]\n", conv[0], conv[1]);
  printf("  lr 10.0:  [%.8e, %.8e]   book: [-2.58983747e+13, -1.29524862e+12] (diverges)\n", big[0],
         big[1]);
  printf("  lr 1e-10: [%.8f, %.8f]   book: [-2.99999994, 3.99999992] (barely moves)\n", tiny[0],
         tiny[1]);
  if (!(fabs(conv[0]) < 1e-8 && fabs(conv[1]) < 1e-8)) {
    fprintf(stderr, "ch4_gradient: gradient descent with lr 0.1 did not reach (0, 0)\n");
    tg_tape_free(tape);
    return 1;
  }

  tg_figure *f = tg_figure_new(1, 3, 1500, 500);
  tg_figure_title(f, "Numerical differentiation and gradient descent (chapter 4)");
  plot_tangent(tg_figure_axes(f, 0, 0), slope5);
  plot_field(tg_figure_axes(f, 0, 1));
  plot_descent(tg_figure_axes(f, 0, 2), path, 21);
  int rc = 0;
  const char *paths[2] = {"gradient.png", "gradient.svg"};
  for (int i = 0; i < 2 && rc == 0; i++) {
    tg_error err = {0};
    if (tg_figure_save(f, paths[i], &err) != TG_OK) {
      fprintf(stderr, "ch4_gradient: cannot save %s: %s\n", paths[i], err.msg);
      rc = 1;
    } else {
      printf("wrote %s\n", paths[i]);
    }
  }
  tg_figure_free(f);
  tg_plot_release_caches();
  tg_tape_free(tape);
  return rc;
}
