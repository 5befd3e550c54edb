/* loss.c — the book's loss functions (mean squared error, cross-entropy,
 * softmax-with-loss), one-hot targets and accuracy.
 *
 * Losses are compositions of primitive ops and return scalars whose
 * gradients the engine derives; nothing here may define a backward rule,
 * an op descriptor or a raw loop over data that a gradient flows through.
 * The raw loops here only build constants (one-hot rows) or count
 * (accuracy), and nothing keeps state between calls.
 *
 * Targets follow the book: a batch of outputs y (N, C) comes with one-hot
 * rows t (N, C) or class labels t (N,) (class indices stored as tg_real);
 * a single output y (C,) is a batch of one, with t (C,) one-hot or one
 * label (a scalar or (1,)).
 */
#include <math.h>

#include "nn_internal.h"

/* The book's delta in cross_entropy_error: log(y + 1e-7) stays finite
 * where a probability is 0. */
#define CE_DELTA 1e-7

/* ------------------------------------------------------------------------
 * One-hot rows */

/* 1 when every label of lab (N,) is a class index in [0, classes);
 * otherwise fails the tape naming the layer, the row and the label. */
static int labels_ok(tg_tape *tape, const char *layer, const tg_tensor *lab, int64_t classes) {
  for (int64_t i = 0; i < lab->numel; i++) {
    double v = (double)lab->data[i];
    if (!(v >= 0 && v < (double)classes)) {
      tg_tape_fail(tape, TG_ERR_ARG, layer, "label %.*g in row %lld is outside [0, %lld)",
                   NN_REAL_DIGITS, v, (long long)i, (long long)classes);
      return 0;
    }
    if (v != floor(v)) {
      tg_tape_fail(tape, TG_ERR_ARG, layer, "label %.*g in row %lld is not a class index",
                   NN_REAL_DIGITS, v, (long long)i);
      return 0;
    }
  }
  return 1;
}

tg_tensor *tg_one_hot(tg_tape *tape, tg_tensor *labels, int64_t classes) { /* labels: (N,) */
  if (!nn_begin(tape, "one_hot", 1, &labels, (const char *[]){"labels"}))
    return NULL;
  if (labels->ndim != 1) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "one_hot", "labels %s must be (N,)", TG_SHAPE(labels));
    return NULL;
  }
  if (classes < 1) {
    tg_tape_fail(tape, TG_ERR_ARG, "one_hot", "%lld classes for labels %s (must be >= 1)",
                 (long long)classes, TG_SHAPE(labels));
    return NULL;
  }
  /* detach checks that labels belong to this tape's current step. */
  tg_tensor *lab = tg_detach(tape, labels); /* (N,) */
  int64_t n = labels->shape[0];
  tg_tensor *y = tg_zeros(tape, (int64_t[]){n, classes}, 2); /* (N, C), a constant */
  if (!lab || !y)
    return NULL;
  if (!labels_ok(tape, "one_hot", lab, classes))
    return NULL;
  for (int64_t i = 0; i < n; i++)
    y->data[i * classes + (int64_t)lab->data[i]] = 1;
  return y;
}

/* ------------------------------------------------------------------------
 * Targets */

/* Brings outputs and targets to *y (N, C) and *t (N, C), one-hot rows made
 * from labels when t holds labels. Returns 0 after failing the tape (the
 * message names the layer, both inputs and their shapes) when they do not
 * fit; yname is the output's name in messages. */
static int as_batch(tg_tape *tape, const char *layer, const char *yname, tg_tensor **y,
                    tg_tensor **t) {
  tg_tensor *y0 = *y, *t0 = *t;
  if (y0->ndim == 1) { /* one sample: the book reshapes to a batch of one */
    int64_t c = y0->shape[0];
    if (t0->ndim <= 1 && t0->numel == c) {
      *y = tg_reshape(tape, y0, (int64_t[]){1, c}, 2);
      *t = tg_reshape(tape, t0, (int64_t[]){1, c}, 2);
      return *y && *t;
    }
    if (t0->ndim <= 1 && t0->numel == 1) {
      *y = tg_reshape(tape, y0, (int64_t[]){1, c}, 2);
      *t = tg_one_hot(tape, tg_reshape(tape, t0, (int64_t[]){1}, 1), c);
      return *y && *t;
    }
  } else if (y0->ndim == 2) {
    if (tg_shape_eq(t0, y0))
      return 1;
    if (t0->ndim == 1 && t0->shape[0] == y0->shape[0]) {
      *t = tg_one_hot(tape, t0, y0->shape[1]);
      return *t != NULL;
    }
  } else {
    tg_tape_fail(tape, TG_ERR_SHAPE, layer, "%s %s must be (N, C) or (C,)", yname, TG_SHAPE(y0));
    return 0;
  }
  tg_tape_fail(tape, TG_ERR_SHAPE, layer,
               "t %s is neither labels (N,) nor one-hot rows (N, C) for %s %s", TG_SHAPE(t0), yname,
               TG_SHAPE(y0));
  return 0;
}

/* ------------------------------------------------------------------------
 * Losses */

/* ½ Σ (y − t)²; y and t of one shape (no broadcasting: a (N, 1) against a
 * (N,) would silently square a (N, N) matrix). */
tg_tensor *tg_mse(tg_tape *tape, tg_tensor *y, tg_tensor *t) { /* y, t: same shape -> () */
  if (!nn_begin(tape, "mse", 2, (tg_tensor *[]){y, t}, (const char *[]){"y", "t"}))
    return NULL;
  if (!tg_shape_eq(y, t)) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "mse", "y %s and t %s differ in shape", TG_SHAPE(y),
                 TG_SHAPE(t));
    return NULL;
  }
  tg_tensor *d = tg_sub(tape, y, t); /* y's shape */
  return tg_mul_scalar(tape, tg_sum(tape, tg_mul(tape, d, d), NULL, 0, 0), 0.5);
}

/* −Σ t·log(y + δ) / N. Written as a product with one-hot rows, which is
 * the book's picking of y[i, t_i] when t holds labels. */
tg_tensor *tg_cross_entropy(tg_tape *tape, tg_tensor *y, tg_tensor *t) { /* y: (N, C) -> () */
  if (!nn_begin(tape, "cross_entropy", 2, (tg_tensor *[]){y, t}, (const char *[]){"y", "t"}) ||
      !as_batch(tape, "cross_entropy", "y", &y, &t))
    return NULL;
  tg_tensor *logy = tg_log(tape, tg_add_scalar(tape, y, (tg_real)CE_DELTA)); /* (N, C) */
  tg_tensor *s = tg_sum(tape, tg_mul(tape, t, logy), NULL, 0, 0);
  return tg_mul_scalar(tape, s, (tg_real)(-1.0 / (double)y->shape[0]));
}

/* −Σ t·log_softmax(x) / N: the book's SoftmaxWithLoss without forming
 * probabilities, so a logit far below the others costs its distance, not a
 * log of 0, and no δ is needed. The engine's gradient is (softmax(x) − t)/N,
 * the book's backward (checked in tests/test_nn.c). */
tg_tensor *tg_softmax_cross_entropy(tg_tape *tape, tg_tensor *logits, tg_tensor *t) {
  /* logits: (N, C) or (C,); t: labels or one-hot rows -> () */
  if (!nn_begin(tape, "softmax_cross_entropy", 2, (tg_tensor *[]){logits, t},
                (const char *[]){"logits", "t"}) ||
      !as_batch(tape, "softmax_cross_entropy", "logits", &logits, &t))
    return NULL;
  tg_tensor *ls = tg_log_softmax(tape, logits, 1); /* (N, C) */
  tg_tensor *s = tg_sum(tape, tg_mul(tape, t, ls), NULL, 0, 0);
  return tg_mul_scalar(tape, s, (tg_real)(-1.0 / (double)logits->shape[0]));
}

/* ------------------------------------------------------------------------
 * Accuracy: a number, not a tensor (argmax has no gradient). */
double tg_accuracy(tg_tape *tape, tg_tensor *logits, tg_tensor *t) { /* logits: (N, C) */
  if (!nn_begin(tape, "accuracy", 2, (tg_tensor *[]){logits, t}, (const char *[]){"logits", "t"}))
    return NAN;
  if (logits->ndim != 2) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "accuracy", "logits %s must be (N, C)", TG_SHAPE(logits));
    return NAN;
  }
  int64_t n = logits->shape[0];
  tg_tensor *lab; /* (N,) */
  if (t->ndim == 1 && t->shape[0] == n) {
    lab = tg_detach(tape, t);
    /* A label outside the classes can never be hit: an error, as in
     * cross-entropy and one_hot, not a silent 0. */
    if (lab && !labels_ok(tape, "accuracy", lab, logits->shape[1]))
      return NAN;
  } else if (tg_shape_eq(t, logits)) {
    lab = tg_argmax(tape, t, 1);
  } else {
    tg_tape_fail(tape, TG_ERR_SHAPE, "accuracy",
                 "t %s is neither labels (N,) nor one-hot rows (N, C) for logits %s", TG_SHAPE(t),
                 TG_SHAPE(logits));
    return NAN;
  }
  tg_tensor *pred = tg_argmax(tape, logits, 1); /* (N,) */
  if (!pred || !lab)
    return NAN;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; i++)
    hits += pred->data[i] == lab->data[i];
  return (double)hits / (double)n;
}
