/* ch2_perceptron.c — chapter 2 of "Deep Learning from Scratch": perceptrons.
 *
 * Reproduces sections 2.3-2.5: the AND, NAND and OR gates as perceptrons
 * y = step(x·w + b) with the book's hand-set weights (AND: 0.5, 0.5, -0.7;
 * NAND: -0.5, -0.5, 0.7; OR: 0.5, 0.5, -0.2), and XOR, which no single
 * perceptron can compute, as the two-layer perceptron AND(NAND(x), OR(x)).
 * Each gate runs on the tape over all four inputs at once (a (4, 2) batch).
 *
 * Prints the four truth tables and draws perceptron_gates.png / .svg: each
 * gate's decision line over the unit square, the four inputs coloured by
 * the gate's output (XOR shows the NAND and OR lines: it is 1 between them).
 */
#include <stdio.h>
#include <stdlib.h>

#include <plot.h>
#include <tapegrad.h>

#include "example.h"

typedef struct gate {
  const char *name;
  double w1, w2, b;
} gate;

static const gate AND = {"AND", 0.5, 0.5, -0.7};
static const gate NAND = {"NAND", -0.5, -0.5, 0.7};
static const gate OR = {"OR", 0.5, 0.5, -0.2};

/* The four inputs (0,0), (1,0), (0,1), (1,1), in the book's order. */
static const double INPUTS[8] = {0, 0, 1, 0, 0, 1, 1, 1};

/* y (4,) = step(x (4, 2) · w (2, 1) + b), on the tape. */
static tg_tensor *perceptron(tg_tape *tape, tg_tensor *x, const gate *g) {
  tg_tensor *w = tg_from_values(tape, (int64_t[]){2, 1}, 2, (double[]){g->w1, g->w2});
  tg_tensor *b = tg_scalar(tape, (tg_real)g->b);
  tg_tensor *a = tg_add(tape, tg_matmul(tape, x, w), b); /* (4, 1) */
  return tg_reshape(tape, tg_step(tape, a), (int64_t[]){4}, 1);
}

static void print_table(const char *name, const tg_tensor *y) {
  printf("%s\n  x1 x2 | y\n", name);
  for (int i = 0; i < 4; i++)
    printf("   %g  %g | %g\n", INPUTS[2 * i], INPUTS[2 * i + 1], tg_at(y, i));
}

/* The line w1·x1 + w2·x2 + b = 0 across the panel. */
static void decision_line(tg_axes *ax, const gate *g, const char *label, uint32_t color) {
  double x[2] = {-0.5, 1.5};
  double y[2] = {-(g->w1 * x[0] + g->b) / g->w2, -(g->w1 * x[1] + g->b) / g->w2};
  tg_line_style st = {.dash = TG_DASH_DASHED, .color = color, .width = 2};
  tg_axes_line(ax, x, y, 2, label, &st);
}

/* The four inputs, split by output: 0 as blue circles, 1 as orange squares. */
static void points(tg_axes *ax, const tg_tensor *y) {
  double x0[4], y0[4], x1[4], y1[4];
  int n0 = 0, n1 = 0;
  for (int i = 0; i < 4; i++) {
    if (tg_at(y, i) > 0.5) {
      x1[n1] = INPUTS[2 * i];
      y1[n1++] = INPUTS[2 * i + 1];
    } else {
      x0[n0] = INPUTS[2 * i];
      y0[n0++] = INPUTS[2 * i + 1];
    }
  }
  tg_line_style s0 = {.marker = TG_MARKER_CIRCLE, .color = TG_RGB(31, 119, 180), .marker_size = 7};
  tg_line_style s1 = {.marker = TG_MARKER_SQUARE, .color = TG_RGB(255, 127, 14), .marker_size = 7};
  if (n0)
    tg_axes_scatter(ax, x0, y0, n0, "output 0", &s0);
  if (n1)
    tg_axes_scatter(ax, x1, y1, n1, "output 1", &s1);
}

static void panel_setup(tg_axes *ax, const char *title) {
  tg_axes_title(ax, title);
  tg_axes_xlabel(ax, "x1");
  tg_axes_ylabel(ax, "x2");
  tg_axes_xlim(ax, -0.25, 1.5);
  tg_axes_ylim(ax, -0.25, 1.5);
  tg_axes_legend(ax, TG_LEGEND_UPPER_RIGHT);
  tg_axes_grid(ax, 1);
}

int main(void) {
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "ch2_perceptron: out of memory\n");
    return 1;
  }
  tg_tape_set_grad(tape, 0); /* hand-set weights: nothing to differentiate */

  tg_tensor *x = tg_from_values(tape, (int64_t[]){4, 2}, 2, INPUTS); /* (4, 2) */
  tg_tensor *y_and = perceptron(tape, x, &AND);
  tg_tensor *y_nand = perceptron(tape, x, &NAND);
  tg_tensor *y_or = perceptron(tape, x, &OR);

  /* XOR (section 2.5.2): the first layer's outputs s1 = NAND, s2 = OR are
   * the second layer's inputs, and the second layer is AND. */
  tg_tensor *s = tg_empty(tape, (int64_t[]){4, 2}, 2); /* (4, 2): s1, s2 per row */
  if (!s || !y_nand || !y_or) {
    fprintf(stderr, "ch2_perceptron: %s\n", tg_tape_error(tape));
    tg_tape_free(tape);
    return 1;
  }
  for (int i = 0; i < 4; i++) {
    s->data[2 * i] = y_nand->data[i];
    s->data[2 * i + 1] = y_or->data[i];
  }
  tg_tensor *y_xor = perceptron(tape, s, &AND);
  if (!y_and || !y_xor) {
    fprintf(stderr, "ch2_perceptron: %s\n", tg_tape_error(tape));
    tg_tape_free(tape);
    return 1;
  }

  printf("Perceptrons with the book's weights (w1, w2, b):\n");
  printf("  AND (0.5, 0.5, -0.7)  NAND (-0.5, -0.5, 0.7)  OR (0.5, 0.5, -0.2)\n\n");
  print_table("AND  (book: 0 0 0 1)", y_and);
  print_table("NAND (book: 1 1 1 0)", y_nand);
  print_table("OR   (book: 0 1 1 1)", y_or);
  print_table("XOR = AND(NAND, OR)  (book: 0 1 1 0)", y_xor);

  /* Check the tables against the gates' definitions. */
  static const int want[4][4] = {{0, 0, 0, 1}, {1, 1, 1, 0}, {0, 1, 1, 1}, {0, 1, 1, 0}};
  const tg_tensor *got[4] = {y_and, y_nand, y_or, y_xor};
  for (int g = 0; g < 4; g++)
    for (int i = 0; i < 4; i++)
      if ((int)tg_at(got[g], i) != want[g][i]) {
        fprintf(stderr, "ch2_perceptron: gate %d, input %d: got %g, want %d\n", g, i,
                tg_at(got[g], i), want[g][i]);
        tg_tape_free(tape);
        return 1;
      }

  tg_figure *f = tg_figure_new(2, 2, 900, 860);
  tg_figure_title(f, "Perceptrons: decision lines over the unit square");
  const char *titles[3] = {"AND: 0.5 x1 + 0.5 x2 - 0.7 > 0", "OR: 0.5 x1 + 0.5 x2 - 0.2 > 0",
                           "NAND: -0.5 x1 - 0.5 x2 + 0.7 > 0"};
  const gate *gates[3] = {&AND, &OR, &NAND};
  const tg_tensor *outs[3] = {y_and, y_or, y_nand};
  for (int i = 0; i < 3; i++) {
    tg_axes *ax = tg_figure_axes(f, i / 2, i % 2);
    panel_setup(ax, titles[i]);
    decision_line(ax, gates[i], "decision line", TG_RGB(90, 90, 90));
    points(ax, outs[i]);
  }
  tg_axes *ax = tg_figure_axes(f, 1, 1);
  panel_setup(ax, "XOR = AND(NAND, OR): 1 between the lines");
  decision_line(ax, &NAND, "NAND line", TG_RGB(44, 160, 44));
  decision_line(ax, &OR, "OR line", TG_RGB(214, 39, 40));
  points(ax, y_xor);

  int rc = ex_save_figure("ch2_perceptron", f, "perceptron_gates");
  tg_figure_free(f);
  tg_plot_release_caches();
  tg_tape_free(tape);
  return rc;
}
