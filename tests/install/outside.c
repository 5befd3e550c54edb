/* outside.c — a program outside the tree, built against an installed tapegrad.
 *
 * The install test compiles it with nothing but `pkg-config --cflags --libs
 * tapegrad` (shared, and --static) and runs it: the headers must be
 * self-contained under include/tapegrad, and the library must link and
 * compute. It checks d/dx of y = x * tanh(x) against the formula written
 * out by hand, so a wrong gradient fails here too.
 */
#include <math.h>
#include <stdio.h>

#include <tapegrad.h>

int main(void) {
  static const double xs[] = {-1.5, -0.25, 0.5, 2.0};
  tg_error err = {0};
  tg_tensor *x = tg_tensor_new((int64_t[]){4}, 1, 1, "x", &err); /* x: (4) */
  if (!x) {
    fprintf(stderr, "outside: %s\n", err.msg);
    return 1;
  }
  for (int i = 0; i < 4; i++)
    x->data[i] = (tg_real)xs[i];

  tg_tape *tape = tg_tape_new();
  tg_tensor *y = tg_mul(tape, x, tg_tanh(tape, x));      /* y: (4) */
  tg_tensor *ones = tg_full(tape, (int64_t[]){4}, 1, 1); /* the seed of sum(y) */
  if (!y || tg_backward(tape, y, ones) != TG_OK) {
    fprintf(stderr, "outside: %s\n", tg_tape_error(tape));
    return 1;
  }

  int bad = 0;
  double tol = sizeof(tg_real) == 8 ? 1e-12 : 1e-5;
  for (int i = 0; i < 4; i++) {
    double t = tanh(xs[i]);
    double want = t + xs[i] * (1 - t * t); /* d/dx x tanh x */
    double got = tg_at(x->grad, i);
    if (fabs(got - want) > tol * fmax(1, fabs(want))) {
      fprintf(stderr, "outside: dy/dx[%d] = %.17g, want %.17g\n", i, got, want);
      bad = 1;
    }
  }
  printf("outside (%s): dy/dx at x = 2 is %.6f\n", TG_REAL_NAME, tg_at(x->grad, 3));
  tg_tape_free(tape);
  tg_tensor_free(x);
  return bad;
}
