/* ch6_overfit.c — the book's section 6.4 (overfit_weight_decay.py and
 * overfit_dropout.py): a big net on little data overfits, and weight decay
 * or Dropout narrows the gap between train and test accuracy.
 *
 * A 7-layer net (6 hidden layers of 100, ReLU, He init) is trained on the
 * first 300 training digits with SGD lr 0.01, batch 100 drawn at random as
 * the book does, for 200 epochs, three times: without regularisation
 * (Figure 6-20: train accuracy reaches 1, test stays far below), with
 * weight decay λ = 0.1 (Figure 6-21) and with Dropout 0.2 (Figure 6-23;
 * the book runs that one for 301 epochs). Train accuracy is over the 300
 * samples, test accuracy over the whole test set, before training and
 * after every epoch.
 *
 * Writes ch6_overfit.{png,svg}: three panels, train and test curves each.
 * TG_EXAMPLE_QUICK=1 runs 5 epochs.
 */
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRAIN_SIZE = 300, BATCH = 100, MAX_EPOCHS = 200 };

/* Trains one net; train_acc/test_acc[0..epochs] get the accuracies. */
static int run(const tg_dataset *train, const tg_dataset *test, double weight_decay, double dropout,
               int epochs, double *train_acc, double *test_acc) {
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL); /* ReLU, He */
  cfg.n_hidden = 6;
  for (int i = 0; i < 6; i++)
    cfg.hidden[i] = 100;
  cfg.weight_decay = weight_decay;
  cfg.dropout = dropout;
  ex_run r;
  if (ex_run_new("ch6_overfit", &r, &cfg, 1, TG_SGD, 0.01, 2))
    return 1;
  int rc = 0;
  for (int e = 0; e <= epochs; e++) {
    for (int it = 0; e > 0 && it < TRAIN_SIZE / BATCH && !rc; it++)
      rc = ex_step("ch6_overfit", &r, train, NULL, TRAIN_SIZE, BATCH, NULL);
    if (rc)
      break;
    train_acc[e] = ex_accuracy("ch6_overfit", r.tape, r.m, train, TRAIN_SIZE);
    test_acc[e] = ex_accuracy("ch6_overfit", r.tape, r.m, test, test->n);
    if (isnan(train_acc[e]) || isnan(test_acc[e])) {
      rc = 1;
      break;
    }
  }
  ex_run_free(&r);
  return rc;
}

int main(void) {
  static const char *const titles[3] = {"no regularisation", "weight decay 0.1", "Dropout 0.2"};
  static const double decay[3] = {0, 0.1, 0}, drop[3] = {0, 0, 0.2};
  int epochs = ex_quick() ? 5 : MAX_EPOCHS;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_overfit", &train, &test)) {
    tg_plot_release_caches();
    return 1;
  }
  tg_figure *fig = tg_figure_new(1, 3, 1500, 480);
  printf("6 hidden layers of 100 on %d training samples, SGD lr 0.01, batch %d, %d epochs;\n"
         "test accuracy over %lld test samples\n",
         TRAIN_SIZE, BATCH, epochs, (long long)test.n);
  printf("  %-18s  final train acc  test acc  (gap)  best test acc (epoch)\n", "");
  int rc = 0;
  double tr[MAX_EPOCHS + 1], te[MAX_EPOCHS + 1], ep[MAX_EPOCHS + 1];
  for (int e = 0; e <= epochs; e++)
    ep[e] = e;
  for (int k = 0; k < 3 && !rc; k++) {
    rc = run(&train, &test, decay[k], drop[k], epochs, tr, te);
    if (rc)
      break;
    int best = 0;
    for (int e = 1; e <= epochs; e++)
      best = te[e] > te[best] ? e : best;
    printf("  %-18s  %15.3f  %8.3f  %5.3f  %13.3f (%d)\n", titles[k], tr[epochs], te[epochs],
           tr[epochs] - te[epochs], te[best], best);
    tg_axes *ax = tg_figure_axes(fig, 0, k);
    tg_axes_line(ax, ep, tr, epochs + 1, "train", NULL);
    tg_axes_line(ax, ep, te, epochs + 1, "test", &(tg_line_style){.dash = TG_DASH_DASHED});
    tg_axes_title(ax, titles[k]);
    tg_axes_xlabel(ax, "epochs");
    tg_axes_ylabel(ax, "accuracy");
    tg_axes_ylim(ax, 0, 1);
    tg_axes_legend(ax, TG_LEGEND_LOWER_RIGHT);
  }
  if (!rc)
    rc = ex_save_figure("ch6_overfit", fig, "ch6_overfit");
  tg_figure_free(fig);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
