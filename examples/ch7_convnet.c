/* ch7_convnet.c — the book's sections 7.5 and 7.6 (train_convnet.py and
 * visualize_filter.py): the SimpleConvNet learns the digits, and its
 * first-layer filters turn from noise into edge and blob detectors.
 *
 * SimpleConvNet: conv 30 filters 5×5 → ReLU → max-pool 2×2 → Affine 100 →
 * ReLU → Affine 10, weights N(0, 0.01²), the model kind "simple-convnet".
 * It is trained with Adam lr 0.001, batch 100 drawn at random as the book
 * does, for 10 epochs of 80 iterations on the 8000 training digits (the
 * book runs 20 epochs on 60000 images and reaches about 0.99 test
 * accuracy). Train accuracy is measured on the first 1000 training
 * samples (as the book's trainer does), test accuracy on the whole test
 * set, before training and after every epoch.
 *
 * Writes ch7_convnet_accuracy.{png,svg} (Figure 7-23) and the 30 filters
 * before and after training, each scaled to its own range, dark = high
 * (Figure 7-24): ch7_filters_before.{png,svg}, ch7_filters_after.{png,svg}.
 * TG_EXAMPLE_QUICK=1 runs one epoch of 20 iterations.
 */
#define _POSIX_C_SOURCE 200809L
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH = 100, EPOCHS = 10, TRAIN_EVAL = 1000 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* W: (30, 1, 5, 5), drawn like the book's filter_show. */
static int draw_filters(const tg_tensor *W, const char *stem, const char *title) {
  tg_image_grid_opts opts = {
      .cols = 8, .scale = 12, .per_image_range = 1, .invert = 1, .title = title};
  const char *exts[] = {".png", ".svg"};
  for (int i = 0; i < 2; i++) {
    char path[256];
    tg_error err = {0};
    snprintf(path, sizeof path, "%s%s", stem, exts[i]);
    if (tg_plot_image_grid(path, W, &opts, &err) != TG_OK) {
      fprintf(stderr, "ch7_convnet: %s\n", err.msg);
      return 1;
    }
    printf("wrote %s\n", path);
  }
  return 0;
}

int main(void) {
  int quick = ex_quick();
  int epochs = quick ? 1 : EPOCHS;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch7_convnet", &train, &test)) {
    tg_plot_release_caches();
    return 1;
  }
  int64_t iters = quick ? 20 : train.n / BATCH;
  int64_t n_train_eval = quick ? 200 : TRAIN_EVAL, n_test_eval = quick ? 200 : test.n;

  tg_error err = {0};
  tg_model_config cfg;
  tg_model_defaults("simple-convnet", &cfg, NULL);
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  tg_model *m = tg_model_new(&cfg, &rng, &err);
  tg_optim_config oc = tg_optim_defaults(TG_ADAM); /* lr 0.001 */
  tg_optim *opt = m ? tg_optim_new(&oc, &m->params, &err) : NULL;
  tg_tape *tape = tg_tape_new();
  tg_figure *fig = tg_figure_new(1, 1, 800, 600);
  int rc = 0;
  if (!opt || !tape || !fig) {
    fprintf(stderr, "ch7_convnet: %s\n", err.msg[0] ? err.msg : "out of memory");
    rc = 1;
    goto done;
  }
  rc = draw_filters(m->W[0], "ch7_filters_before", "conv1 filters before training");
  printf("SimpleConvNet (%lld parameters), Adam lr %g, batch %d, %lld iterations per epoch on "
         "%lld images\n",
         (long long)tg_params_numel(&m->params), oc.lr, BATCH, (long long)iters,
         (long long)train.n);
  printf("train accuracy over the first %lld training samples, test over %lld test samples\n",
         (long long)n_train_eval, (long long)n_test_eval);
  double tr[EPOCHS + 1], te[EPOCHS + 1], ep[EPOCHS + 1];
  tg_tape_seed(tape, 2);
  for (int e = 0; e <= epochs && !rc; e++) {
    double loss_sum = 0, seconds = 0;
    if (e > 0) {
      double t0 = now();
      for (int64_t it = 0; it < iters; it++) {
        int64_t idx[BATCH];
        for (int i = 0; i < BATCH; i++)
          idx[i] = (int64_t)tg_rng_below(tg_tape_rng(tape), (uint64_t)train.n);
        tg_tensor *t = NULL;
        tg_tensor *x = tg_dataset_batch(tape, &train, idx, 0, BATCH, 0, &t); /* (100,1,28,28) */
        tg_tensor *l = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
        if (!l || tg_backward(tape, l, NULL) != TG_OK) {
          fprintf(stderr, "ch7_convnet: %s\n", tg_tape_error(tape));
          rc = 1;
          goto done;
        }
        loss_sum += tg_at(l, 0);
        tg_optim_step(opt);
        tg_tape_reset(tape);
      }
      seconds = now() - t0;
    }
    ep[e] = e;
    tr[e] = ex_accuracy("ch7_convnet", tape, m, &train, n_train_eval);
    te[e] = ex_accuracy("ch7_convnet", tape, m, &test, n_test_eval);
    if (isnan(tr[e]) || isnan(te[e])) {
      rc = 1;
      break;
    }
    if (e == 0)
      printf("epoch  0  (untrained)       train acc %.4f  test acc %.4f\n", tr[e], te[e]);
    else
      printf("epoch %2d  mean loss %.4f  train acc %.4f  test acc %.4f  %.1f s\n", e,
             loss_sum / (double)iters, tr[e], te[e], seconds);
  }
  if (!rc) {
    tg_axes *ax = tg_figure_axes(fig, 0, 0);
    tg_axes_line(ax, ep, tr, epochs + 1, "train", &(tg_line_style){.marker = TG_MARKER_CIRCLE});
    tg_axes_line(ax, ep, te, epochs + 1, "test",
                 &(tg_line_style){.marker = TG_MARKER_SQUARE, .dash = TG_DASH_DASHED});
    tg_axes_xlabel(ax, "epochs");
    tg_axes_ylabel(ax, "accuracy");
    tg_axes_ylim(ax, 0, 1);
    tg_axes_legend(ax, TG_LEGEND_LOWER_RIGHT);
    tg_axes_title(ax, "SimpleConvNet on MNIST digits");
    rc = ex_save_figure("ch7_convnet", fig, "ch7_convnet_accuracy") ||
         draw_filters(m->W[0], "ch7_filters_after", "conv1 filters after training");
  }
done:
  tg_figure_free(fig);
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_model_free(m);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
