/* ch6_batchnorm.c — the book's section 6.3.2 (batch_norm_test.py): Batch
 * Normalization makes training fast and almost independent of the scale of
 * the initial weights.
 *
 * For 16 weight scales from 1 down to 1e-4 (a log grid), a net of 5 hidden
 * layers of 100 (ReLU, weights N(0, scale²)) is trained with and without
 * Batch Norm on 1000 training digits, SGD lr 0.01, batch 100 drawn at
 * random as the book does, 20 epochs of 10 iterations; the accuracy on
 * those 1000 samples is recorded before training and after every epoch,
 * and the curves go in a 4×4 grid (Figure 6-18). Without Batch Norm only a
 * narrow band of scales learns; with it almost every scale does.
 *
 * Writes ch6_batchnorm.{png,svg}. TG_EXAMPLE_QUICK=1 runs 4 scales for 3
 * epochs in a 2×2 grid.
 */
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRAIN_SIZE = 1000, BATCH = 100, MAX_EPOCHS = 20, NSCALES = 16 };

/* Trains one net; acc[0..epochs] gets the accuracies. */
static int run(const tg_dataset *train, double scale, int batchnorm, int epochs, double *acc) {
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL); /* 5 hidden layers of 100, ReLU */
  snprintf(cfg.init, sizeof cfg.init, "std");
  cfg.init_std = scale;
  cfg.batchnorm = batchnorm;
  ex_run r;
  if (ex_run_new("ch6_batchnorm", &r, &cfg, 1, TG_SGD, 0.01, 2))
    return 1;
  int rc = 0;
  acc[0] = ex_accuracy("ch6_batchnorm", r.tape, r.m, train, TRAIN_SIZE);
  for (int e = 1; e <= epochs && !isnan(acc[e - 1]); e++) {
    for (int it = 0; it < TRAIN_SIZE / BATCH && !rc; it++)
      rc = ex_step("ch6_batchnorm", &r, train, NULL, TRAIN_SIZE, BATCH, NULL);
    if (rc)
      break;
    acc[e] = ex_accuracy("ch6_batchnorm", r.tape, r.m, train, TRAIN_SIZE);
  }
  if (!rc && isnan(acc[epochs]))
    rc = 1;
  ex_run_free(&r);
  return rc;
}

int main(void) {
  int quick = ex_quick();
  int epochs = quick ? 3 : MAX_EPOCHS, side = quick ? 2 : 4, step = quick ? 5 : 1;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_batchnorm", &train, &test)) {
    tg_plot_release_caches();
    return 1;
  }
  tg_figure *fig = tg_figure_new(side, side, 300 * side, 250 * side + 40);
  tg_figure_title(fig, "train accuracy: Batch Norm (solid) vs none (dashed), per weight scale");
  printf("5 hidden layers of 100, ReLU, %d training samples, SGD lr 0.01, batch %d, %d epochs\n",
         TRAIN_SIZE, BATCH, epochs);
  printf("  weight std   train acc with Batch Norm   without\n");
  int rc = 0;
  double with_bn[MAX_EPOCHS + 1], without[MAX_EPOCHS + 1], ep[MAX_EPOCHS + 1];
  for (int e = 0; e <= epochs; e++)
    ep[e] = e;
  for (int i = 0, panel = 0; i < NSCALES && !rc; i += step, panel++) {
    double scale = pow(10, -4.0 * i / (NSCALES - 1)); /* np.logspace(0, -4, 16) */
    rc = run(&train, scale, 1, epochs, with_bn) || run(&train, scale, 0, epochs, without);
    if (rc)
      break;
    printf("  %-10.3g   %8.3f                    %8.3f\n", scale, with_bn[epochs], without[epochs]);
    tg_axes *ax = tg_figure_axes(fig, panel / side, panel % side);
    char title[32];
    snprintf(title, sizeof title, "W: %.3g", scale);
    tg_axes_title(ax, title);
    tg_axes_line(ax, ep, with_bn, epochs + 1, "Batch Normalization",
                 &(tg_line_style){.color = TG_RGB(31, 119, 180)});
    tg_axes_line(ax, ep, without, epochs + 1, "Normal (without BatchNorm)",
                 &(tg_line_style){.color = TG_RGB(255, 127, 14), .dash = TG_DASH_DASHED});
    tg_axes_ylim(ax, 0, 1);
    tg_axes_xlim(ax, 0, epochs);
    tg_axes_legend(ax, panel == side * side - 1 ? TG_LEGEND_LOWER_RIGHT : TG_LEGEND_NONE);
    if (panel / side == side - 1)
      tg_axes_xlabel(ax, "epochs");
    if (panel % side == 0)
      tg_axes_ylabel(ax, "accuracy");
  }
  if (!rc)
    rc = ex_save_figure("ch6_batchnorm", fig, "ch6_batchnorm");
  tg_figure_free(fig);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
