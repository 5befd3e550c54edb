/* demo.c — the engine at work, in three short acts, through the public API
 * only (tapegrad.h); the networks will replace it as the main program.
 *
 * 1. Minimise Rosenbrock's f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from
 *    (-1.5, 2): gradient descent with momentum, the gradient taken from the
 *    tape every step; then Newton's method, with the Hessian taken by
 *    differentiating the gradient again (tg_grad with create_graph).
 * 2. Compare that Hessian at the minimum with the one derived by hand.
 * 3. Gradient-check a small layer, sum over columns of tanh(x W + b).
 *
 * Exit status 0 when every op ran, the minimum was found and both checks
 * passed; 1 otherwise, with the tape's message. It never calls into the
 * engine's internals: what it shows is what a user's program can do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

/* Gradcheck tolerance: the double build is the strict one (as in tests/). */
#define GRAD_TOL (sizeof(tg_real) == 8 ? 1e-6 : 3e-2)
/* Hessian by double backward against the hand-derived one (relative). */
#define HESS_TOL (sizeof(tg_real) == 8 ? 1e-10 : 1e-4)

static int fail(tg_tape *tape, const char *what) {
  fprintf(stderr, "demo: %s failed: %s\n", what, tg_tape_error(tape));
  return 1;
}

/* ------------------------------------------------------------------------
 * Act 1: Rosenbrock */

/* f = (1 - x)^2 + 100 (y - x^2)^2, x and y: (1) -> f: (1). */
static tg_tensor *rosenbrock(tg_tape *tape, tg_tensor *x, tg_tensor *y) {
  tg_tensor *a = tg_sub(tape, tg_scalar(tape, 1), x); /* 1 - x */
  tg_tensor *b = tg_sub(tape, y, tg_mul(tape, x, x)); /* y - x^2 */
  return tg_add(tape, tg_mul(tape, a, a), tg_mul_scalar(tape, tg_mul(tape, b, b), 100));
}

/* Gradient descent with momentum (heavy ball): v = mu v - lr g; p += v. */
static int descend(tg_tape *tape, tg_tensor *x, tg_tensor *y, int steps, const char *dot_path) {
  const double lr = 1e-3, mu = 0.9;
  double vx = 0, vy = 0;
  printf("gradient descent with momentum (lr %g, mu %g) from (%g, %g)\n", lr, mu, tg_at(x, 0),
         tg_at(y, 0));
  for (int k = 0; k < steps; k++) {
    tg_tensor *f = rosenbrock(tape, x, y);
    if (!f)
      return fail(tape, "forward");
    if (k == 0 && dot_path) {
      FILE *out = fopen(dot_path, "w");
      int st = out ? tg_tape_write_dot(tape, out) : TG_ERR_IO;
      if (out && fclose(out) != 0)
        st = TG_ERR_IO;
      if (st != TG_OK) {
        fprintf(stderr, "demo: cannot write %s\n", dot_path);
        return 1;
      }
      printf("  tape of step 0 (%lld ops) written to %s\n",
             (long long)tg_tape_get_stats(tape).nodes, dot_path);
    }
    tg_tensor_zero_grad(x);
    tg_tensor_zero_grad(y);
    if (tg_backward(tape, f, NULL) != TG_OK)
      return fail(tape, "backward");
    double gx = tg_at(x->grad, 0), gy = tg_at(y->grad, 0);
    if (k % 200 == 0 || k == steps - 1)
      printf("  step %5d  f %-12.6g at (%.6f, %.6f)  |grad| %.3g\n", k, tg_at(f, 0), tg_at(x, 0),
             tg_at(y, 0), hypot(gx, gy));
    vx = mu * vx - lr * gx;
    vy = mu * vy - lr * gy;
    x->data[0] = (tg_real)(tg_at(x, 0) + vx);
    y->data[0] = (tg_real)(tg_at(y, 0) + vy);
    tg_tape_reset(tape);
  }
  return 0;
}

/* Gradient g (2) and Hessian h (2x2, row-major) of f at (x, y): the
 * gradient is recorded (create_graph), so each of its components can be
 * differentiated once more. */
static int grad_and_hessian(tg_tape *tape, tg_tensor *x, tg_tensor *y, double *g, double *h) {
  tg_tensor *xs[2] = {x, y}, *g1[2], *row[2];
  tg_tensor *f = rosenbrock(tape, x, y);
  if (!f || tg_grad(tape, f, NULL, 2, xs, g1, 1) != TG_OK)
    return fail(tape, "gradient");
  for (int i = 0; i < 2; i++) {
    g[i] = tg_at(g1[i], 0);
    if (tg_grad(tape, g1[i], NULL, 2, xs, row, 0) != TG_OK)
      return fail(tape, "second derivative");
    h[2 * i] = tg_at(row[0], 0);
    h[2 * i + 1] = tg_at(row[1], 0);
  }
  tg_tape_reset(tape);
  return 0;
}

/* Newton: p -= H^-1 g, until the gradient vanishes (at most `steps`). */
static int newton(tg_tape *tape, tg_tensor *x, tg_tensor *y, int steps) {
  printf("Newton's method, Hessian by double backward\n");
  for (int k = 0; k < steps; k++) {
    double g[2], h[4];
    if (grad_and_hessian(tape, x, y, g, h))
      return 1;
    double det = h[0] * h[3] - h[1] * h[2];
    printf("  step %d  at (%.9f, %.9f)  |grad| %.3g\n", k, tg_at(x, 0), tg_at(y, 0),
           hypot(g[0], g[1]));
    if (hypot(g[0], g[1]) < (sizeof(tg_real) == 8 ? 1e-12 : 1e-4) || det == 0)
      break;
    x->data[0] = (tg_real)(tg_at(x, 0) - (h[3] * g[0] - h[1] * g[1]) / det);
    y->data[0] = (tg_real)(tg_at(y, 0) - (h[0] * g[1] - h[2] * g[0]) / det);
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Act 2: the Hessian against the one derived by hand */

static int check_hessian(tg_tape *tape, tg_tensor *x, tg_tensor *y) {
  double g[2], h[4];
  if (grad_and_hessian(tape, x, y, g, h))
    return 1;
  double px = tg_at(x, 0), py = tg_at(y, 0);
  /* d2f/dx2 = 2 - 400 (y - 3x^2), d2f/dxdy = -400 x, d2f/dy2 = 200 */
  double want[4] = {2 - 400 * (py - 3 * px * px), -400 * px, -400 * px, 200};
  double worst = 0;
  for (int i = 0; i < 4; i++)
    worst = fmax(worst, fabs(h[i] - want[i]) / fmax(1, fabs(want[i])));
  printf("Hessian at (%.6f, %.6f) by double backward:\n", px, py);
  printf("  [[%10.4f, %10.4f], [%10.4f, %10.4f]]\n", h[0], h[1], h[2], h[3]);
  printf("  by hand: [[%10.4f, %10.4f], [%10.4f, %10.4f]]  worst rel. difference %.3g\n", want[0],
         want[1], want[2], want[3], worst);
  if (!(worst <= HESS_TOL)) {
    fprintf(stderr, "demo: Hessian differs from the hand-derived one by %.3g (> %.3g)\n", worst,
            HESS_TOL);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Act 3: gradcheck of a small layer */

/* sum over columns of tanh(x W + b); x: (4, 3), W: (3, 5), b: (5) -> (4). */
static tg_tensor *layer(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  tg_tensor *h = tg_tanh(tape, tg_add(tape, tg_matmul(tape, in[0], in[1]), in[2])); /* (4, 5) */
  return tg_sum(tape, h, (const int[]){1}, 1, 0);
}

static int check_layer(tg_tape *tape) {
  static const struct {
    const char *name;
    int ndim;
    int64_t shape[2];
  } spec[3] = {{"x", 2, {4, 3}}, {"W", 2, {3, 5}}, {"b", 1, {5}}};
  tg_tensor *in[3] = {0};
  tg_rng rng;
  tg_rng_seed(&rng, 2024);
  int rc = 1;
  for (int i = 0; i < 3; i++) {
    tg_error err = {0};
    in[i] = tg_tensor_new(spec[i].shape, spec[i].ndim, 1, spec[i].name, &err);
    if (!in[i]) {
      fprintf(stderr, "demo: %s\n", err.msg);
      goto done;
    }
    for (int64_t k = 0; k < in[i]->numel; k++)
      in[i]->data[k] = (tg_real)(2 * tg_rng_uniform(&rng) - 1);
  }
  tg_gradcheck_report rep[3];
  tg_gradcheck_opts opts = {.seed = 7};
  if (tg_gradcheck(tape, layer, NULL, 3, in, &opts, rep) != TG_OK) {
    rc = fail(tape, "gradcheck");
    goto done;
  }
  double worst = tg_gradcheck_worst(rep, 3);
  printf("gradcheck of sum_columns(tanh(x W + b)), x (4, 3), W (3, 5), b (5), %s:\n", TG_REAL_NAME);
  tg_gradcheck_print(rep, 3, in, stdout);
  printf("  worst relative error %.3g (tolerance %.3g): %s\n", worst, GRAD_TOL,
         worst <= GRAD_TOL ? "ok" : "FAILED");
  rc = !(worst <= GRAD_TOL);
done:
  for (int i = 0; i < 3; i++)
    tg_tensor_free(in[i]);
  return rc;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f, "usage: tapegrad-demo [--steps N] [--dot FILE]\n"
             "  --steps N   gradient-descent steps before Newton (default 1000)\n"
             "  --dot FILE  write the tape of one step as Graphviz DOT\n");
}

int main(int argc, char **argv) {
  const char *dot_path = NULL;
  int steps = 1000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dot") && i + 1 < argc) {
      dot_path = argv[++i];
    } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 10000000) {
        fprintf(stderr, "demo: --steps wants a positive integer, got '%s'\n", argv[i]);
        return 1;
      }
      steps = (int)v;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 1;
    }
  }

  tg_tape *tape = tg_tape_new();
  tg_error err = {0};
  tg_tensor *x = tg_tensor_new((int64_t[]){1}, 1, 1, "x", &err); /* (1) */
  tg_tensor *y = tg_tensor_new((int64_t[]){1}, 1, 1, "y", &err); /* (1) */
  if (!tape || !x || !y) {
    fprintf(stderr, "demo: out of memory %s\n", err.msg);
    return 1;
  }
  x->data[0] = -1.5;
  y->data[0] = 2;

  printf("tapegrad demo (tg_real = %s)\n\n", TG_REAL_NAME);
  int rc = descend(tape, x, y, steps, dot_path);
  if (!rc)
    rc = newton(tape, x, y, 20);
  if (!rc) {
    double dist = hypot(tg_at(x, 0) - 1, tg_at(y, 0) - 1);
    printf("minimum found at (%.9f, %.9f), distance %.3g from (1, 1)\n\n", tg_at(x, 0), tg_at(y, 0),
           dist);
    if (!(dist < 1e-3)) {
      fprintf(stderr, "demo: did not converge to (1, 1)\n");
      rc = 1;
    }
  }
  if (!rc)
    rc = check_hessian(tape, x, y);
  if (!rc) {
    printf("\n");
    rc = check_layer(tape);
  }
  printf("\n%s\n", rc ? "demo FAILED" : "demo ok");

  tg_tensor_free(x);
  tg_tensor_free(y);
  tg_tape_free(tape);
  return rc;
}
