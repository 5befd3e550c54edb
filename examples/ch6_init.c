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

/* The book's smooth_curve: a Kaiser window of 11 (beta 2) over the curve
 * with its ends mirrored (the first point not repeated, the last one is). */
static double bessel_i0(double x) {
  double sum = 1, term = 1;
  for (int k = 1; k < 50; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
  }
  return sum;
}

static void smooth_curve(const double *x, double *y, int n) {
  enum { W = 11, H = W / 2 };
  double w[W], wsum = 0;
  for (int i = 0; i < W; i++) {
    double r = 2.0 * i / (W - 1) - 1;
    w[i] = bessel_i0(2 * sqrt(1 - r * r)) / bessel_i0(2);
    wsum += w[i];
  }
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = -H; j <= H; j++) {
      int k = i + j;
      k = k < 0 ? -k : k >= n ? 2 * n - 1 - k : k;
      k = k < 0 ? 0 : k >= n ? n - 1 : k; /* curves shorter than the window */
      s += w[j + H] * x[k];
    }
    y[i] = s / wsum;
  }
}

/* SGD lr 0.01, batch 128 drawn at random with replacement (as the book). */
static int train_mnist(const tg_dataset *train, const char *init, double std, int iters,
                       double *loss) {
  enum { BATCH = 128 };
  tg_error err = {0};
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL);
  cfg.n_hidden = 4; /* 784-100-100-100-100-10, ReLU */
  snprintf(cfg.init, sizeof cfg.init, "%s", init);
  cfg.init_std = std;
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  tg_model *m = tg_model_new(&cfg, &rng, &err);
  tg_optim_config oc = tg_optim_defaults(TG_SGD);
  oc.lr = 0.01;
  tg_optim *opt = m ? tg_optim_new(&oc, &m->params, &err) : NULL;
  tg_tape *tape = tg_tape_new();
  int rc = 0;
  if (!opt || !tape) {
    fprintf(stderr, "ch6_init: %s\n", err.msg[0] ? err.msg : "out of memory");
    rc = 1;
    goto done;
  }
  tg_tape_seed(tape, 2);
  int64_t idx[BATCH];
  for (int it = 0; it < iters; it++) {
    for (int i = 0; i < BATCH; i++)
      idx[i] = (int64_t)tg_rng_below(tg_tape_rng(tape), (uint64_t)train->n);
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, train, idx, 0, BATCH, 1, &t); /* (128, 784) */
    tg_tensor *l = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
    if (!l || tg_backward(tape, l, NULL) != TG_OK) {
      fprintf(stderr, "ch6_init: %s\n", tg_tape_error(tape));
      rc = 1;
      goto done;
    }
    loss[it] = tg_at(l, 0);
    tg_optim_step(opt);
    tg_tape_reset(tape);
  }
done:
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_model_free(m);
  return rc;
}

static int part_mnist(int quick) {
  static const char *const inits[3] = {"std", "xavier", "he"};
  static const char *const labels[3] = {"std=0.01", "Xavier", "He"};
  int iters = quick ? 60 : 2000;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_init", &train, &test))
    return 1;
  double *loss = malloc(sizeof(double) * (size_t)iters);
  double *smooth = malloc(sizeof(double) * (size_t)iters);
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
    smooth_curve(loss, smooth, iters);
    printf("  %-10s                  ", labels[k]);
    for (int it = 0; it < iters; it += iters / 4)
      printf(" %8.4f", smooth[it]);
    printf(" %8.4f\n", smooth[iters - 1]);
    tg_axes_line(ax, NULL, smooth, iters, labels[k], NULL);
  }
  if (!rc) {
    tg_axes_xlabel(ax, "iterations");
    tg_axes_ylabel(ax, "loss");
    tg_axes_ylim(ax, 0, 2.5);
    tg_axes_legend(ax, TG_LEGEND_UPPER_RIGHT);
    tg_axes_title(ax, "weight init on MNIST digits (loss smoothed as the book)");
    rc = ex_save_figure("ch6_init", fig, "ch6_init_mnist");
  }
  tg_figure_free(fig);
  free(loss);
  free(smooth);
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
