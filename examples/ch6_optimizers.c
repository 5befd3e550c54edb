/* ch6_optimizers.c — the book's section 6.1 (optimizer_compare_naive.py and
 * optimizer_compare_mnist.py): how SGD, Momentum, AdaGrad and Adam move.
 *
 * Part 1 minimises f(x, y) = x²/20 + y² from (−7, 2) for 30 steps with
 * the library's optimizers on one 2-element parameter, the gradient taken
 * by the tape, and draws the four paths over f's contour lines (Figure
 * 6-8): SGD zig-zags along y, Momentum rolls like a ball, AdaGrad and Adam
 * damp the steep y direction early.
 *
 * Part 2 trains the book's 5-layer net (4 hidden layers of 100, ReLU, He
 * init) on the MNIST digits with each optimizer at the book's learning
 * rate, batch 128, 2000 iterations, and draws the smoothed loss curves
 * (Figure 6-9). Our digits are 8000 training images, not the book's 60000.
 *
 * Writes ch6_optimizer_paths.{png,svg} and ch6_optimizer_mnist.{png,svg}.
 * TG_EXAMPLE_QUICK=1 runs 60 iterations of part 2 instead of 2000.
 */
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tg_optim_kind kinds[4] = {TG_SGD, TG_MOMENTUM, TG_ADAGRAD, TG_ADAM};
static const char *const names[4] = {"SGD", "Momentum", "AdaGrad", "Adam"};

/* ------------------------------------------------------------------------
 * Part 1: paths on f(x, y) = x²/20 + y² */

#define PATH_STEPS 30

static double f2d(double x, double y, void *ctx) {
  (void)ctx;
  return x * x / 20 + y * y;
}

/* Runs 30 steps of kind at lr from (−7, 2); px/py get the 31 points. */
static int run_path(tg_optim_kind kind, double lr, double *px, double *py) {
  tg_error err = {0};
  tg_params p = {0};
  tg_tensor *xy = tg_params_new(&p, "xy", (int64_t[]){2}, 1, 1, &err); /* (2,): x, y */
  tg_optim_config cfg = tg_optim_defaults(kind);
  cfg.lr = lr;
  tg_optim *opt = xy ? tg_optim_new(&cfg, &p, &err) : NULL;
  tg_tape *tape = tg_tape_new();
  int rc = 0;
  if (!opt || !tape) {
    fprintf(stderr, "ch6_optimizers: %s\n", err.msg[0] ? err.msg : "out of memory");
    rc = 1;
    goto done;
  }
  xy->data[0] = -7;
  xy->data[1] = 2;
  for (int i = 0;; i++) {
    px[i] = xy->data[0];
    py[i] = xy->data[1];
    if (i == PATH_STEPS)
      break;
    /* f = sum((1/20, 1) * xy²) */
    tg_tensor *w = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1.0 / 20, 1.0});
    tg_tensor *f = tg_sum(tape, tg_mul(tape, w, tg_mul(tape, xy, xy)), NULL, 0, 0);
    if (!f || tg_backward(tape, f, NULL) != TG_OK) {
      fprintf(stderr, "ch6_optimizers: %s\n", tg_tape_error(tape));
      rc = 1;
      goto done;
    }
    tg_optim_step(opt);
    tg_tape_reset(tape);
  }
done:
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_params_free(&p);
  return rc;
}

static int part_paths(void) {
  static const double lrs[4] = {0.95, 0.1, 1.5, 0.3}; /* the book's */
  static const double levels[7] = {1, 2, 3, 4, 5, 6, 7};
  tg_figure *fig = tg_figure_new(2, 2, 1000, 900);
  printf("f(x, y) = x^2/20 + y^2 from (-7, 2), %d steps:\n", PATH_STEPS);
  for (int k = 0; k < 4; k++) {
    double px[PATH_STEPS + 1], py[PATH_STEPS + 1];
    if (run_path(kinds[k], lrs[k], px, py)) {
      tg_figure_free(fig);
      return 1;
    }
    printf("  %-8s lr %-4g final (x, y) = (% .6f, % .6f)  f = %.3g\n", names[k], lrs[k],
           px[PATH_STEPS], py[PATH_STEPS], f2d(px[PATH_STEPS], py[PATH_STEPS], NULL));
    tg_axes *ax = tg_figure_axes(fig, k / 2, k % 2);
    /* The book draws levels up to 7 (it masks f > 7) on x in [-10, 10),
     * y in [-5, 5). */
    tg_axes_contour_fn(ax, f2d, NULL, -10, 10, -5, 5, 121, 61, levels, 7);
    tg_line_style path = {.marker = TG_MARKER_CIRCLE, .color = TG_RGB(230, 0, 0)};
    tg_axes_line(ax, px, py, PATH_STEPS + 1, NULL, &path);
    tg_line_style plus = {.marker = TG_MARKER_PLUS, .color = TG_RGB(0, 0, 0), .marker_size = 6};
    tg_axes_scatter(ax, (double[]){0}, (double[]){0}, 1, NULL, &plus);
    tg_axes_xlim(ax, -10, 10);
    tg_axes_ylim(ax, -10, 10);
    tg_axes_title(ax, names[k]);
    tg_axes_xlabel(ax, "x");
    tg_axes_ylabel(ax, "y");
  }
  int rc = ex_save_figure("ch6_optimizers", fig, "ch6_optimizer_paths");
  tg_figure_free(fig);
  return rc;
}

/* ------------------------------------------------------------------------
 * Part 2: the optimizers on the MNIST digits */

/* Trains a fresh net with kind at lr for iters steps of batch 128, each
 * batch drawn at random with replacement as the book does; loss[i] gets
 * every step's loss. */
static int train_mnist(const tg_dataset *train, tg_optim_kind kind, double lr, int iters,
                       double *loss) {
  enum { BATCH = 128 };
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL);
  cfg.n_hidden = 4; /* 784-100-100-100-100-10, ReLU, He */
  char prog[64];    /* failures name the optimizer */
  snprintf(prog, sizeof prog, "ch6_optimizers: %s", tg_optim_name(kind));
  ex_run r;
  if (ex_run_new(prog, &r, &cfg, 1, kind, lr, 2))
    return 1;
  int rc = 0;
  for (int it = 0; it < iters && !rc; it++)
    rc = ex_step(prog, &r, train, NULL, train->n, BATCH, &loss[it]);
  ex_run_free(&r);
  return rc;
}

static int part_mnist(int quick) {
  static const double lrs[4] = {0.01, 0.01, 0.01, 0.001}; /* the book's defaults */
  int iters = quick ? 60 : 2000;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_optimizers", &train, &test))
    return 1;
  double *loss = malloc(sizeof(double) * 4 * (size_t)iters);
  double *smooth = malloc(sizeof(double) * (size_t)iters);
  tg_figure *fig = tg_figure_new(1, 1, 800, 600);
  tg_axes *ax = tg_figure_axes(fig, 0, 0);
  int rc = !loss || !smooth;
  printf("\n5-layer net (4 hidden x 100, ReLU, He) on %lld images, batch 128, %d iterations\n",
         (long long)train.n, iters);
  printf("loss (smoothed) at iteration:");
  for (int it = 0; it < iters; it += iters / 4)
    printf(" %8d", it);
  printf(" %8d (last)\n", iters - 1);
  for (int k = 0; k < 4 && !rc; k++) {
    double *l = loss + (size_t)k * (size_t)iters;
    rc = train_mnist(&train, kinds[k], lrs[k], iters, l);
    if (rc)
      break;
    printf("  %-8s lr %-6g      ", names[k], lrs[k]);
    ex_loss_row(ax, names[k], l, smooth, iters);
  }
  if (!rc)
    rc = ex_save_loss_figure("ch6_optimizers", fig, ax, 1,
                             "optimizers on MNIST digits (loss smoothed as the book)",
                             "ch6_optimizer_mnist");
  tg_figure_free(fig);
  free(loss);
  free(smooth);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  return rc;
}

int main(void) {
  int rc = part_paths();
  if (!rc)
    rc = part_mnist(ex_quick());
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
