/* pictures.h — the program's pictures (pictures.c): learning curves, a
 * confusion matrix and a grid of misclassified images, each to a .png or
 * .svg path. Each returns TG_OK or a status with err naming the path.
 */
#ifndef TG_PICTURES_H
#define TG_PICTURES_H

#include "cli.h"
#include "plot.h"

/* The names of a data set's classes: which is "fashion" or "digits", or
 * NULL/"" to go by the data set's name ("fashion-mnist", "mnist-digits");
 * NULL when there are none (or classes is not 10). */
const char *const *class_names(const char *which, const char *data_name, int classes);

/* `tapegrad eval --confusion/--misclassified`: runs m over test and draws
 * the pictures o asks for. TG_OK or a status with err filled. */
int eval_pictures(const train_opts *o, tg_model *m, const tg_dataset *test, tg_error *err);

/* Per-epoch figures of a run, n epochs; val_* only when has_val. */
typedef struct curves {
  int64_t n;
  int has_val;
  const char *title;
  double *epoch, *train_loss, *train_acc, *val_loss, *val_acc, *test_loss, *test_acc;
} curves;

int draw_curves(const char *path, const curves *c, tg_error *err);

/* counts (k, k): row = true class, column = predicted. names: k strings or
 * NULL (class numbers). */
int draw_confusion(const char *path, const int64_t *counts, int k, const char *const *names,
                   const char *title, tg_error *err);

/* images (N, 1, H, W) with one caption each. */
int draw_misclassified(const char *path, const tg_tensor *images, const char *const *captions,
                       const char *title, tg_error *err);

#endif
