/* pictures.c — the program's pictures: learning curves (`train --plot`),
 * the confusion matrix and the worst-classified images (`eval
 * --confusion`, `--misclassified`). Drawn with plot/ (plot.h); the
 * confusion matrix's cells straight with cairo, since plot/ has no
 * heat map. Program code: it prints nothing and fails through tg_error.
 */
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pictures.h"

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

const char *const *class_names(const char *which, const char *data_name, int classes) {
  if (!which || !*which)
    which = !data_name                                ? ""
            : strcmp(data_name, "fashion-mnist") == 0 ? "fashion"
            : strcmp(data_name, "mnist-digits") == 0  ? "digits"
                                                      : "";
  if (classes != 10)
    return NULL;
  return strcmp(which, "fashion") == 0  ? fashion_names
         : strcmp(which, "digits") == 0 ? digit_names
                                        : NULL;
}

int draw_curves(const char *path, const curves *c, tg_error *err) {
  tg_figure *f = tg_figure_new(1, 2, 1100, 420);
  tg_axes *loss = tg_figure_axes(f, 0, 0), *acc = tg_figure_axes(f, 0, 1);
  const tg_line_style mark = {.marker = TG_MARKER_CIRCLE};
  tg_axes_line(loss, c->epoch, c->train_loss, c->n, "train (mean over the epoch)", &mark);
  if (c->has_val)
    tg_axes_line(loss, c->epoch, c->val_loss, c->n, "validation", &mark);
  tg_axes_line(loss, c->epoch, c->test_loss, c->n, "test", &mark);
  tg_axes_line(acc, c->epoch, c->train_acc, c->n, "train", &mark);
  if (c->has_val)
    tg_axes_line(acc, c->epoch, c->val_acc, c->n, "validation", &mark);
  tg_axes_line(acc, c->epoch, c->test_acc, c->n, "test", &mark);
  tg_axes_title(loss, "loss");
  tg_axes_title(acc, "accuracy");
  tg_axes_xlabel(loss, "epoch");
  tg_axes_xlabel(acc, "epoch");
  tg_axes_grid(loss, 1);
  tg_axes_grid(acc, 1);
  /* From the lowest accuracy shown, down to a tenth, to 1: late epochs
   * differ in the second digit, which 0..1 would squash. */
  double lo = 1;
  for (int64_t i = 0; i < c->n; i++) {
    lo = fmin(lo, fmin(c->train_acc[i], c->test_acc[i]));
    if (c->has_val)
      lo = fmin(lo, c->val_acc[i]);
  }
  tg_axes_ylim(acc, fmax(0, floor(lo * 10 - 1e-9) / 10), 1);
  if (c->n <= 20) { /* whole epochs on the x axis */
    double at[20];
    char text[20][24];
    const char *labels[20];
    for (int64_t i = 0; i < c->n; i++) {
      at[i] = c->epoch[i];
      snprintf(text[i], sizeof text[i], "%.0f", c->epoch[i]);
      labels[i] = text[i];
    }
    tg_axes_xticks(loss, at, labels, (int)c->n);
    tg_axes_xticks(acc, at, labels, (int)c->n);
  }
  if (c->n == 1) { /* one point: give the x axis a width */
    tg_axes_xlim(loss, c->epoch[0] - 1, c->epoch[0] + 1);
    tg_axes_xlim(acc, c->epoch[0] - 1, c->epoch[0] + 1);
  }
  tg_figure_title(f, c->title);
  int st = tg_figure_save(f, path, err);
  tg_figure_free(f);
  return st;
}

int draw_misclassified(const char *path, const tg_tensor *images, const char *const *captions,
                       const char *title, tg_error *err) {
  tg_image_grid_opts go = {.cols = 8, .scale = 3, .captions = captions, .title = title};
  return tg_plot_image_grid(path, images, &go, err);
}

/* The confusion matrix: a k x k grid of cells, row = true class, column =
 * predicted, each shaded by its share of its row and labelled with its
 * count, the class names along both sides. */
static void confusion_draw(cairo_t *cr, const int64_t *counts, int k, const char *const *names,
                           const char *title) {
  const double cell = 44, left = 110, top = 70;
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_text_extents_t te;
  char buf[32];
  for (int r = 0; r < k; r++) {
    int64_t row = 0;
    for (int c = 0; c < k; c++)
      row += counts[r * k + c];
    for (int c = 0; c < k; c++) {
      double share = row ? (double)counts[r * k + c] / (double)row : 0;
      /* white to dark blue, as matplotlib's Blues */
      cairo_set_source_rgb(cr, 1 - 0.97 * share, 1 - 0.8 * share, 1 - 0.5 * share);
      cairo_rectangle(cr, left + c * cell, top + r * cell, cell, cell);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, share > 0.5 ? 1 : 0, share > 0.5 ? 1 : 0, share > 0.5 ? 1 : 0);
      cairo_set_font_size(cr, 11);
      snprintf(buf, sizeof buf, "%lld", (long long)counts[r * k + c]);
      cairo_text_extents(cr, buf, &te);
      cairo_move_to(cr, left + c * cell + (cell - te.width) / 2 - te.x_bearing,
                    top + r * cell + (cell - te.height) / 2 - te.y_bearing);
      cairo_show_text(cr, buf);
    }
  }
  cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, left, top, k * cell, k * cell);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_font_size(cr, 11);
  for (int i = 0; i < k; i++) {
    const char *name = names ? names[i] : (snprintf(buf, sizeof buf, "%d", i), buf);
    cairo_text_extents(cr, name, &te);
    cairo_move_to(cr, left - 8 - te.width - te.x_bearing, top + i * cell + cell / 2 + 4);
    cairo_show_text(cr, name);
    cairo_save(cr); /* column names turned, reading upwards */
    cairo_move_to(cr, left + i * cell + cell / 2 + 4, top + k * cell + 8 + te.width);
    cairo_rotate(cr, -1.5707963267948966);
    cairo_show_text(cr, name);
    cairo_restore(cr);
  }
  cairo_set_font_size(cr, 13);
  cairo_text_extents(cr, "predicted", &te);
  cairo_move_to(cr, left + k * cell / 2 - te.width / 2, top + k * cell + 100);
  cairo_show_text(cr, "predicted");
  cairo_save(cr);
  cairo_move_to(cr, 22, top + k * cell / 2 + te.width / 2);
  cairo_rotate(cr, -1.5707963267948966);
  cairo_show_text(cr, "true");
  cairo_restore(cr);
  cairo_set_font_size(cr, 15);
  cairo_text_extents(cr, title, &te);
  cairo_move_to(cr, left + k * cell / 2 - te.width / 2, 35);
  cairo_show_text(cr, title);
}

int draw_confusion(const char *path, const int64_t *counts, int k, const char *const *names,
                   const char *title, tg_error *err) {
  size_t len = strlen(path);
  int svg = len >= 4 && strcasecmp(path + len - 4, ".svg") == 0;
  if (!svg && !(len >= 4 && strcasecmp(path + len - 4, ".png") == 0))
    return tg_error_set(err, TG_ERR_ARG, "%s: the picture's name must end in .png or .svg", path);
  if (k < 1 || k > 100)
    return tg_error_set(err, TG_ERR_ARG, "%s: %d classes", path, k);
  const int w = (int)(110 + 44 * k + 30), h = (int)(70 + 44 * k + 120);
  cairo_surface_t *s = svg ? cairo_svg_surface_create(path, w, h)
                           : cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(s);
  confusion_draw(cr, counts, k, names, title);
  cairo_status_t cs = cairo_status(cr);
  cairo_destroy(cr);
  if (cs == CAIRO_STATUS_SUCCESS && !svg)
    cs = cairo_surface_write_to_png(s, path);
  cairo_surface_finish(s);
  if (cs == CAIRO_STATUS_SUCCESS)
    cs = cairo_surface_status(s);
  cairo_surface_destroy(s);
  if (cs != CAIRO_STATUS_SUCCESS) {
    remove(path);
    return tg_error_set(err, TG_ERR_IO, "cannot write %s: %s", path, cairo_status_to_string(cs));
  }
  return TG_OK;
}

/* A misclassified sample: how sure the model was of the true class. */
typedef struct miss {
  double p_true;
  int64_t index;
  int pred;
} miss;

static int by_p_true(const void *a, const void *b) {
  const miss *x = a, *y = b;
  return x->p_true < y->p_true   ? -1
         : x->p_true > y->p_true ? 1
                                 : (x->index > y->index) - (x->index < y->index);
}

int eval_pictures(const train_opts *o, tg_model *m, const tg_dataset *test, tg_error *err) {
  const int k = (int)o->model.classes;
  const char *const *names = class_names(NULL, o->data_name, k);
  int64_t *counts = calloc((size_t)(k * k), sizeof *counts); /* (k, k) */
  miss *misses = malloc((size_t)test->n * sizeof *misses);
  tg_tape *tape = tg_tape_new();
  int64_t n_miss = 0, correct = 0;
  int st = TG_OK;
  if (!counts || !misses || !tape || k > 256) {
    st = tg_error_set(err, TG_ERR_MEMORY, "eval pictures: out of memory");
    goto done;
  }
  tg_tape_set_train(tape, 0);
  tg_tape_set_grad(tape, 0);
  for (int64_t start = 0; start < test->n; start += 100) {
    int64_t count = test->n - start < 100 ? test->n - start : 100;
    tg_tensor *x = tg_dataset_batch(tape, test, NULL, start, count, 0, NULL);
    tg_tensor *logits = cli_scores(tape, m, x, o->tta); /* (count, k) */
    if (!logits) {
      st = tg_error_set(err, tg_tape_status(tape), "%s", tg_tape_error(tape));
      goto done;
    }
    for (int64_t i = 0; i < count; i++) {
      const tg_real *z = logits->data + i * k;
      int pred = 0, t = test->labels[start + i];
      double mx = z[0], sum = 0;
      for (int j = 1; j < k; j++)
        if (z[j] > z[pred])
          pred = j, mx = z[j];
      for (int j = 0; j < k; j++)
        sum += exp((double)z[j] - mx);
      counts[t * k + pred]++;
      if (pred == t)
        correct++;
      else
        misses[n_miss++] = (miss){exp((double)z[t] - mx) / sum, start + i, pred};
    }
    tg_tape_reset(tape);
  }
  char title[160];
  if (o->confusion) {
    snprintf(title, sizeof title, "%s: test accuracy %.4f (%lld samples)", o->model.kind,
             (double)correct / (double)test->n, (long long)test->n);
    if ((st = draw_confusion(o->confusion, counts, k, names, title, err)) != TG_OK)
      goto done;
  }
  if (o->misclassified && n_miss > 0) {
    qsort(misses, (size_t)n_miss, sizeof *misses, by_p_true);
    const int64_t n = n_miss < 32 ? n_miss : 32, px = test->rows * test->cols;
    tg_tensor *img = tg_tensor_new((int64_t[]){n, 1, test->rows, test->cols}, 4, 0, "worst", err);
    char(*text)[64] = malloc((size_t)n * sizeof *text);
    const char **captions = malloc((size_t)n * sizeof *captions);
    if (img && text && captions) {
      for (int64_t i = 0; i < n; i++) {
        const miss *w = &misses[i];
        int t = test->labels[w->index];
        for (int64_t q = 0; q < px; q++)
          img->data[i * px + q] = (tg_real)test->pixels[w->index * px + q] / (tg_real)255;
        if (names)
          snprintf(text[i], sizeof text[i], "%s \u2192 %s", names[t], names[w->pred]);
        else
          snprintf(text[i], sizeof text[i], "%d \u2192 %d", t, w->pred);
        captions[i] = text[i];
      }
      snprintf(title, sizeof title, "the %lld worst of %lld misclassified: true \u2192 predicted",
               (long long)n, (long long)n_miss);
      st = draw_misclassified(o->misclassified, img, captions, title, err);
    } else {
      st = tg_error_set(err, TG_ERR_MEMORY, "eval pictures: out of memory");
    }
    tg_tensor_free(img);
    free(text);
    free(captions);
  } else if (o->misclassified) {
    st = tg_error_set(err, TG_ERR_ARG, "--misclassified %s: every test image is classified right",
                      o->misclassified);
  }
done:
  tg_tape_free(tape);
  free(counts);
  free(misses);
  return st;
}
