/* ch3_inference.c — chapter 3 of "Deep Learning from Scratch": inference on
 * MNIST, one image at a time and in batches.
 *
 * Reproduces section 3.6. The book loads a network trained beforehand
 * (sample_weight.pkl, 784-50-100-10, accuracy 0.9352); we train the book's
 * TwoLayerNet (784-50-10) for a few epochs of SGD, lr 0.1, batch 100, and
 * then run inference on the test set twice: image by image (section 3.6.2)
 * and in batches of 100 (section 3.6.3), which must agree.
 *
 * Prints the accuracy and the time of both passes, and draws the first
 * misclassified test digits with "p7 t2" captions (predicted 7, true 2)
 * to misclassified.png and misclassified.svg.
 *
 * Data: the MNIST digits (8,000 train / 2,000 test); when they are not
 * installed, Fashion-MNIST, with a note. TG_EXAMPLE_QUICK=1 trains for one
 * epoch on the first 2,000 training samples.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <plot.h>
#include <tapegrad.h>

#define BATCH     100
#define MAX_SHOWN 32 /* misclassified digits drawn */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int open_data(tg_dataset *train, tg_dataset *test, const char **name) {
  tg_error err = {0};
  *name = "mnist-digits";
  if (tg_dataset_open(*name, train, test, &err) == TG_OK)
    return 0;
  printf("note: the MNIST digits are not installed (%s); using Fashion-MNIST instead\n\n", err.msg);
  err = (tg_error){0};
  *name = "fashion-mnist";
  if (tg_dataset_open(*name, train, test, &err) == TG_OK)
    return 0;
  fprintf(stderr, "ch3_inference: %s\n", err.msg);
  return 1;
}

/* Trains m with SGD over the first n samples of ds, reshuffled each epoch. */
static int train(tg_tape *tape, tg_model *m, const tg_dataset *ds, int64_t n, int epochs) {
  tg_error err = {0};
  tg_optim_config cfg = tg_optim_defaults(TG_SGD);
  cfg.lr = 0.1;
  tg_optim *opt = tg_optim_new(&cfg, &m->params, &err);
  int64_t *order = malloc((size_t)n * sizeof *order);
  if (!opt || !order) {
    fprintf(stderr, "ch3_inference: %s\n", opt ? "out of memory" : err.msg);
    tg_optim_free(opt);
    free(order);
    return 1;
  }
  int rc = 0;
  for (int e = 0; e < epochs && rc == 0; e++) {
    tg_shuffle(order, n, tg_tape_rng(tape));
    double loss_sum = 0;
    int64_t steps = 0;
    for (int64_t start = 0; start + BATCH <= n; start += BATCH, steps++) {
      tg_tensor *t = NULL;
      tg_tensor *x = tg_dataset_batch(tape, ds, order, start, BATCH, 1, &t); /* (100, 784) */
      tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
      if (!loss || tg_backward(tape, loss, NULL) != TG_OK) {
        fprintf(stderr, "ch3_inference: training step: %s\n", tg_tape_error(tape));
        rc = 1;
        break;
      }
      loss_sum += tg_at(loss, 0);
      tg_optim_step(opt);
      tg_tape_reset(tape);
    }
    if (rc == 0)
      printf("  epoch %d: mean training loss %.4f\n", e + 1, loss_sum / (double)steps);
  }
  tg_optim_free(opt);
  free(order);
  return rc;
}

/* Predicts every test sample, `batch` at a time, into pred[]; show_shapes
 * prints the first batch's shapes. */
static int predict(tg_tape *tape, tg_model *m, const tg_dataset *ds, int64_t batch, int *pred,
                   int show_shapes) {
  for (int64_t start = 0; start < ds->n; start += batch) {
    int64_t count = ds->n - start < batch ? ds->n - start : batch;
    tg_tensor *x = tg_dataset_batch(tape, ds, NULL, start, count, 1, NULL); /* (count, 784) */
    tg_tensor *y = tg_model_forward(tape, m, x);                            /* (count, 10) */
    tg_tensor *p = tg_argmax(tape, y, 1);                                   /* (count,) */
    if (!p) {
      fprintf(stderr, "ch3_inference: inference: %s\n", tg_tape_error(tape));
      return 1;
    }
    if (start == 0 && show_shapes) {
      char xs[64], ys[64];
      printf("  shapes: x %s -> y %s\n", tg_shape_str(x->shape, x->ndim, xs, sizeof xs),
             tg_shape_str(y->shape, y->ndim, ys, sizeof ys));
    }
    for (int64_t i = 0; i < count; i++)
      pred[start + i] = (int)tg_at(p, i);
    tg_tape_reset(tape);
  }
  return 0;
}

/* The first misclassified test images (at most MAX_SHOWN), captioned. */
static int draw_misclassified(const tg_dataset *ds, const int *pred) {
  int64_t idx[MAX_SHOWN];
  int n = 0;
  for (int64_t i = 0; i < ds->n && n < MAX_SHOWN; i++)
    if (pred[i] != ds->labels[i])
      idx[n++] = i;
  if (n == 0) {
    printf("no misclassified digits to draw\n");
    n = 1; /* draw the first test image, so the program still makes its files */
    idx[0] = 0;
  }
  int64_t hw = ds->rows * ds->cols;
  tg_error err = {0};
  tg_tensor *img = tg_tensor_new((int64_t[]){n, ds->rows, ds->cols}, 3, 0, "images", &err);
  if (!img) {
    fprintf(stderr, "ch3_inference: %s\n", err.msg);
    return 1;
  }
  char text[MAX_SHOWN][16];
  const char *captions[MAX_SHOWN];
  printf("\nfirst %d misclassified test samples (index: predicted, true):\n", n);
  for (int k = 0; k < n; k++) {
    const uint8_t *px = ds->pixels + idx[k] * hw;
    for (int64_t j = 0; j < hw; j++)
      img->data[k * hw + j] = (tg_real)(px[j] / 255.0);
    snprintf(text[k], sizeof text[k], "p%d t%d", pred[idx[k]], ds->labels[idx[k]]);
    captions[k] = text[k];
    printf("  %5lld: %d, %d\n", (long long)idx[k], pred[idx[k]], ds->labels[idx[k]]);
  }
  tg_image_grid_opts opts = {.cols = 8,
                             .scale = 3,
                             .captions = captions,
                             .title = "misclassified: p = predicted, t = true"};
  const char *paths[2] = {"misclassified.png", "misclassified.svg"};
  int rc = 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    if (tg_plot_image_grid(paths[i], img, &opts, &err) != TG_OK) {
      fprintf(stderr, "ch3_inference: cannot draw %s: %s\n", paths[i], err.msg);
      rc = 1;
    } else {
      printf("wrote %s\n", paths[i]);
    }
  }
  tg_tensor_free(img);
  return rc;
}

int main(void) {
  const char *q = getenv("TG_EXAMPLE_QUICK");
  int quick = q && strcmp(q, "1") == 0;
  tg_dataset train_set, test_set;
  const char *data_name;
  if (open_data(&train_set, &test_set, &data_name))
    return 1;

  tg_error err = {0};
  tg_model_config cfg;
  tg_tape *tape = tg_tape_new();
  tg_model *m = NULL;
  int *pred1 = malloc((size_t)test_set.n * sizeof *pred1);
  int *predb = malloc((size_t)test_set.n * sizeof *predb);
  int rc = 1;
  if (!tape || !pred1 || !predb) {
    fprintf(stderr, "ch3_inference: out of memory\n");
    goto done;
  }
  tg_tape_seed(tape, 1);
  if (tg_model_defaults("two-layer-net", &cfg, &err) != TG_OK ||
      !(m = tg_model_new(&cfg, tg_tape_rng(tape), &err))) {
    fprintf(stderr, "ch3_inference: %s\n", err.msg);
    goto done;
  }

  int epochs = quick ? 1 : 10;
  int64_t n_train = quick && train_set.n > 2000 ? 2000 : train_set.n;
  printf("Training TwoLayerNet (784-50-10, ReLU) on %lld %s samples: %d epoch(s) of SGD, lr 0.1, "
         "batch %d\n",
         (long long)n_train, data_name, epochs, BATCH);
  double t0 = now();
  if (train(tape, m, &train_set, n_train, epochs))
    goto done;
  printf("  %.2f s\n\n", now() - t0);

  /* Inference: no gradients, eval mode. */
  tg_tape_set_grad(tape, 0);
  tg_tape_set_train(tape, 0);
  printf("Inference on %lld test samples:\n", (long long)test_set.n);
  /* Each pass is timed as the fastest of 3, so a busy machine distorts less. */
  double t_one = INFINITY, t_batch = INFINITY;
  for (int r = 0; r < 3; r++) {
    t0 = now();
    if (predict(tape, m, &test_set, 1, pred1, 0))
      goto done;
    t_one = fmin(t_one, now() - t0);
    t0 = now();
    if (predict(tape, m, &test_set, BATCH, predb, r == 0))
      goto done;
    t_batch = fmin(t_batch, now() - t0);
  }

  int64_t correct = 0, agree = 0;
  for (int64_t i = 0; i < test_set.n; i++) {
    correct += predb[i] == test_set.labels[i];
    agree += predb[i] == pred1[i];
  }
  double acc = (double)correct / (double)test_set.n;
  printf("  one at a time: %.3f s;  batches of %d: %.3f s (one at a time / batched = %.1f)\n",
         t_one, BATCH, t_batch, t_one / t_batch);
  printf("  the two passes agree on %lld of %lld predictions\n", (long long)agree,
         (long long)test_set.n);
  printf("  Accuracy: %.4f   (book: 0.9352, its pre-trained 784-50-100-10 network on the full "
         "MNIST test set)\n",
         acc);
  if (agree != test_set.n) {
    fprintf(stderr, "ch3_inference: batched and single inference disagree\n");
    goto done;
  }
  rc = draw_misclassified(&test_set, predb);

done:
  tg_plot_release_caches();
  tg_model_free(m);
  tg_tape_free(tape);
  free(pred1);
  free(predb);
  tg_dataset_free(&train_set);
  tg_dataset_free(&test_set);
  return rc;
}
