/* example.h — what the chapter examples share and is not the point of
 * any of them: quick mode for the tests, saving a figure as PNG and SVG,
 * opening the digits (or Fashion-MNIST when they are missing), and test
 * accuracy. Each takes the program's name for its messages.
 */
#ifndef TG_EXAMPLE_H
#define TG_EXAMPLE_H

#include <math.h>
#include <plot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

/* 1 when TG_EXAMPLE_QUICK is set (and not "0"): run a few seconds only. */
static inline int ex_quick(void) {
  const char *q = getenv("TG_EXAMPLE_QUICK");
  return q && *q && strcmp(q, "0") != 0;
}

/* Writes f to STEM.png and STEM.svg; 1 (and a message) on failure. */
static inline int ex_save_figure(const char *prog, tg_figure *f, const char *stem) {
  const char *exts[] = {".png", ".svg"};
  for (int i = 0; i < 2; i++) {
    char path[256];
    tg_error err = {0};
    snprintf(path, sizeof path, "%s%s", stem, exts[i]);
    if (tg_figure_save(f, path, &err) != TG_OK) {
      fprintf(stderr, "%s: %s\n", prog, err.msg);
      return 1;
    }
    printf("wrote %s\n", path);
  }
  return 0;
}

/* The MNIST digits, or Fashion-MNIST with a note; 1 when neither opens. */
static inline int ex_open_data(const char *prog, tg_dataset *train, tg_dataset *test) {
  tg_error err = {0};
  if (tg_dataset_open("mnist-digits", train, test, &err) == TG_OK)
    return 0;
  printf("note: the MNIST digits are missing (%s); using Fashion-MNIST instead\n", err.msg);
  tg_error err2 = {0};
  if (tg_dataset_open("fashion-mnist", train, test, &err2) == TG_OK)
    return 0;
  fprintf(stderr, "%s: %s\n", prog, err2.msg);
  return 1;
}

/* Accuracy over the first n samples of ds, in eval mode (Dropout off,
 * Batch Norm on running statistics) without grad; NAN (and a message) if
 * the tape fails. */
static inline double ex_accuracy(const char *prog, tg_tape *tape, tg_model *m, const tg_dataset *ds,
                                 int64_t n) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
  double correct = 0;
  for (int64_t start = 0; start < n; start += 250) {
    int64_t count = n - start < 250 ? n - start : 250;
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, ds, NULL, start, count, 0, &t); /* (count, 1, 28, 28) */
    double acc = tg_accuracy(tape, tg_model_forward(tape, m, x), t);
    if (tg_tape_status(tape) != TG_OK) {
      fprintf(stderr, "%s: evaluation: %s\n", prog, tg_tape_error(tape));
      correct = NAN;
      tg_tape_reset(tape);
      break;
    }
    correct += acc * (double)count;
    tg_tape_reset(tape);
  }
  tg_tape_set_train(tape, was_train);
  tg_tape_set_grad(tape, was_grad);
  return correct / (double)n;
}

#endif
