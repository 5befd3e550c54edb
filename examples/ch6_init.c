/* ch6_init.c — the book's section 6.2 (weight_init_activation_histogram.py
 * and weight_init_compare.py): why the scale of the initial weights
 * matters.
 *
 * Part 1 sends 1000 random inputs (100 features, N(0, 1)) through 5 layers
 * of 100 units without biases and draws each layer's activations as a
 * histogram of 30 bins over [0, 1], as the book does:
 *   sigmoid with weight std 1 (activations pile up at 0 and 1: vanishing
 *   gradients), std 0.01 (all near 0.5: every unit alike) and Xavier
 *   (spread out) — Figures 6-10, 6-11 and 6-13;
 *   ReLU with std 0.01 (activations shrink towards 0), Xavier (they shrink
 *   layer by layer) and He (the same spread in every layer) — Figure 6-14.
 *
 * Part 2 trains the book's 5-layer net (4 hidden layers of 100, ReLU) on
 * the MNIST digits with SGD lr 0.01, batch 128, 2000 iterations, from each
 * of std 0.01, Xavier and He, and draws the smoothed losses (Figure 6-15):
 * std 0.01 does not learn at all.
 *
 * Writes ch6_init_sigmoid.{png,svg}, ch6_init_relu.{png,svg} and
 * ch6_init_mnist.{png,svg}. TG_EXAMPLE_QUICK=1 runs 60 iterations of part 2.
 */
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Part 1: activation histograms */

enum { SAMPLES = 1000, NODES = 100, LAYERS = 5 };

typedef struct init_case {
  const char *label;
  double std; /* 0: use fan_in */
  int kind;   /* 0 std, 1 Xavier, 2 He */
} init_case;

/* One figure: 3 rows (the inits) × 5 columns (the layers). */
static int activation_figure(tg_tape *tape, tg_tensor *x, const char *act, const init_case *cases,
                             const char *stem) {
  tg_figure *fig = tg_figure_new(3, LAYERS, 1500, 820);
  char title[128];
  snprintf(title, sizeof title, "%s activations of 5 layers (1000 inputs, 100 units each)", act);
  tg_figure_title(fig, title);
  printf("%s: mean/std of each layer's activations\n", act);
  int rc = 0;
  tg_tensor *w = tg_tensor_new((int64_t[]){NODES, NODES}, 2, 0, "w", NULL); /* (100, 100) */
  if (!w || !fig) {
    fprintf(stderr, "ch6_init: out of memory\n");
    rc = 1;
  }
  for (int c = 0; c < 3 && !rc; c++) {
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_tensor *z = x; /* (1000, 100) */
    printf("  %-18s", cases[c].label);
    for (int l = 0; l < LAYERS; l++) {
      if (cases[c].kind == 1)
        tg_init_xavier(w, NODES, &rng);
      else if (cases[c].kind == 2)
        tg_init_he(w, NODES, &rng);
      else
        tg_init_normal(w, cases[c].std, &rng);
      tg_tensor *a = tg_matmul(tape, z, w);
      z = strcmp(act, "sigmoid") == 0 ? tg_sigmoid(tape, a) : tg_relu(tape, a);
      if (!z) {
        fprintf(stderr, "ch6_init: %s\n", tg_tape_error(tape));
        rc = 1;
        break;
      }
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < z->numel; i++) {
        sum += tg_at(z, i);
        sq += tg_at(z, i) * tg_at(z, i);
      }
      double mean = sum / (double)z->numel;
      printf("  %.3f/%.3f", mean, sqrt(fmax(sq / (double)z->numel - mean * mean, 0)));
      tg_axes *ax = tg_figure_axes(fig, c, l);
      tg_axes_hist_tensor(ax, z, 30, 0, 1, NULL, 0);
      snprintf(title, sizeof title, "%s: %d-layer", cases[c].label, l + 1);
      tg_axes_title(ax, title);
      tg_axes_xlim(ax, 0, 1);
      /* The book's ReLU figure cuts the y axis at 7000: about half of the
       * values are 0 and would flatten everything else. */
      if (strcmp(act, "ReLU") == 0)
        tg_axes_ylim(ax, 0, 7000);
    }
    printf("\n");
  }
  if (!rc)
    rc = ex_save_figure("ch6_init", fig, stem);
  tg_tensor_free(w);
  tg_figure_free(fig);
  tg_tape_reset(tape);
  return rc;
}

static int part_histograms(void) {
  static const init_case sigmoid_cases[3] = {
      {"std 1", 1, 0}, {"std 0.01", 0.01, 0}, {"Xavier", 0, 1}};
  static const init_case relu_cases[3] = {{"std 0.01", 0.01, 0}, {"Xavier", 0, 1}, {"He", 0, 2}};
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_tensor_new((int64_t[]){SAMPLES, NODES}, 2, 0, "x", NULL); /* (1000, 100) */
  int rc = !tape || !x;
  if (rc) {
    fprintf(stderr, "ch6_init: out of memory\n");
  } else {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_init_normal(x, 1, &rng);
    tg_tape_set_grad(tape, 0);
    rc = activation_figure(tape, x, "sigmoid", sigmoid_cases, "ch6_init_sigmoid");
    if (!rc)
      rc = activation_figure(tape, x, "ReLU", relu_cases, "ch6_init_relu");
  }
  tg_tensor_free(x);
  tg_tape_free(tape);
  return rc;
}

/* ------------------------------------------------------------------------
 * Part 2: the three inits on the MNIST digits */

/* SGD lr 0.01, batch 128 drawn at random with replacement (as the book). */
static int train_mnist(const tg_dataset *train, const char *init, double std, int iters,
                       double *loss) {
  enum { BATCH = 128 };
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL);
  cfg.n_hidden = 4; /* 784-100-100-100-100-10, ReLU */
  snprintf(cfg.init, sizeof cfg.init, "%s", init);
  cfg.init_std = std;
  ex_run r;
  if (ex_run_new("ch6_init", &r, &cfg, 1, TG_SGD, 0.01, 2))
    return 1;
  int rc = 0;
  for (int it = 0; it < iters && !rc; it++)
    rc = ex_step("ch6_init", &r, train, NULL, train->n, BATCH, &loss[it]);
  ex_run_free(&r);
  return rc;
}

static int part_mnist(int quick) {
  static const char *const inits[3] = {"std", "xavier", "he"};
  static const char *const labels[3] = {"std=0.01", "Xavier", "He"};
  int iters = quick ? 60 : 2000;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_init", &train, &test))
    return 1;
  double *loss = malloc(sizeof(double) * 2 * (size_t)iters); /* then the smoothed loss */
  double *smooth = loss ? loss + iters : NULL;
  tg_figure *fig = tg_figure_new(1, 1, 800, 600);
  tg_axes *ax = tg_figure_axes(fig, 0, 0);
  int rc = !loss || !smooth;
  printf("\n5-layer ReLU net on %lld images, SGD lr 0.01, batch 128, %d iterations\n",
         (long long)train.n, iters);
  printf("loss (smoothed) at iteration:");
  for (int it = 0; it < iters; it += iters / 4)
    printf(" %8d", it);
  printf(" %8d (last)\n", iters - 1);
  for (int k = 0; k < 3 && !rc; k++) {
    rc = train_mnist(&train, inits[k], 0.01, iters, loss);
    if (rc)
      break;
    printf("  %-10s                  ", labels[k]);
    ex_loss_row(ax, labels[k], loss, smooth, iters);
  }
  if (!rc)
    rc = ex_save_loss_figure("ch6_init", fig, ax, 2.5,
                             "weight init on MNIST digits (loss smoothed as the book)",
                             "ch6_init_mnist");
  tg_figure_free(fig);
  free(loss);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  return rc;
}

int main(void) {
  int rc = part_histograms();
  if (!rc)
    rc = part_mnist(ex_quick());
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
