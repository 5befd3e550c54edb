/* ch7_im2col.c — the book's section 7.4.3: im2col unrolls every filter-sized
 * window of the input into one row, so a convolution becomes one matrix
 * product.
 *
 * As in the book, x1 (1, 3, 7, 7) with a 5×5 filter (stride 1, no
 * padding) gives col1 (9, 75): 3×3 output positions, each a row of
 * 3·5·5 values; x2 (10, 3, 7, 7) gives col2 (90, 75). Then a convolution of
 * x2 with two 3×5×5 filters is computed as col2 · Wᵀ and compared with
 * the library's tg_conv2d. Finally a 7×7 one-channel picture of a "7" and
 * its nine 5×5 windows (the rows of its col) are drawn.
 *
 * Writes ch7_im2col_input.{png,svg} and ch7_im2col_patches.{png,svg}.
 * It is instant, so TG_EXAMPLE_QUICK changes nothing.
 */
#include <math.h>
#include <plot.h>
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>

static void print_shape(const char *what, const tg_tensor *t) {
  char buf[96];
  printf("%-32s %s\n", what, tg_shape_str(t->shape, t->ndim, buf, sizeof buf));
}

/* An arena tensor of the given shape filled with N(0, 1) values. */
static tg_tensor *randn(tg_tape *tape, const int64_t *shape, int ndim) {
  tg_tensor *t = tg_empty(tape, shape, ndim);
  for (int64_t i = 0; t && i < t->numel; i++)
    t->data[i] = (tg_real)tg_rng_normal(tg_tape_rng(tape));
  return t;
}

static int draw(const char *stem, const tg_tensor *images, const tg_image_grid_opts *opts) {
  const char *exts[] = {".png", ".svg"};
  for (int i = 0; i < 2; i++) {
    char path[256];
    tg_error err = {0};
    snprintf(path, sizeof path, "%s%s", stem, exts[i]);
    if (tg_plot_image_grid(path, images, opts, &err) != TG_OK) {
      fprintf(stderr, "ch7_im2col: %s\n", err.msg);
      return 1;
    }
    printf("wrote %s\n", path);
  }
  return 0;
}

int main(void) {
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "ch7_im2col: out of memory\n");
    return 1;
  }
  tg_tape_seed(tape, 1);
  tg_tape_set_grad(tape, 0);

  /* The book's two shapes. */
  tg_tensor *x1 = randn(tape, (int64_t[]){1, 3, 7, 7}, 4);
  tg_tensor *col1 = tg_im2col(tape, x1, 5, 5, 1, 0); /* (9, 75) */
  tg_tensor *x2 = randn(tape, (int64_t[]){10, 3, 7, 7}, 4);
  tg_tensor *col2 = tg_im2col(tape, x2, 5, 5, 1, 0); /* (90, 75) */

  /* Convolution as a matrix product: (90, 75) · (75, 2) -> (90, 2), rows
   * ordered (n, oh, ow): reshape to (10, 3, 3, 2), channels to axis 1. */
  tg_tensor *W = randn(tape, (int64_t[]){2, 3, 5, 5}, 4);
  tg_tensor *Wm = tg_reshape(tape, W, (int64_t[]){2, 75}, 2);
  tg_tensor *prod = tg_matmul_t(tape, col2, Wm, 0, 1); /* (90, 2) */
  tg_tensor *y = tg_permute(tape, tg_reshape(tape, prod, (int64_t[]){10, 3, 3, 2}, 4),
                            (int[]){0, 3, 1, 2});      /* (10, 2, 3, 3) */
  tg_tensor *ref = tg_conv2d(tape, x2, W, NULL, 1, 0); /* (10, 2, 3, 3) */
  if (!y || !ref) {
    fprintf(stderr, "ch7_im2col: %s\n", tg_tape_error(tape));
    tg_tape_free(tape);
    return 1;
  }
  print_shape("x1:", x1);
  print_shape("im2col(x1, 5x5) = col1:", col1);
  print_shape("x2:", x2);
  print_shape("im2col(x2, 5x5) = col2:", col2);
  double worst = 0;
  for (int64_t i = 0; i < y->numel; i++)
    worst = fmax(worst, fabs(tg_at(y, i) - tg_at(ref, i)));
  print_shape("col2 . W^T, as (N, FN, OH, OW):", y);
  printf("largest difference from tg_conv2d: %.3g\n", worst);
  int rc = worst > 1e-4;
  if (rc)
    fprintf(stderr, "ch7_im2col: col2 . W^T differs from tg_conv2d by %g\n", worst);

  /* The picture: a 7×7 "7" and the nine windows of its col. */
  static const char *const seven[7] = {".......", ".#####.", ".....#.", "....#..",
                                       "...#...", "..#....", "..#...."};
  tg_tensor *img = tg_zeros(tape, (int64_t[]){1, 1, 7, 7}, 4);
  for (int r = 0; img && r < 7; r++)
    for (int c = 0; c < 7; c++)
      img->data[r * 7 + c] = seven[r][c] == '#';
  tg_tensor *col = tg_im2col(tape, img, 5, 5, 1, 0);                      /* (9, 25) */
  tg_tensor *patches = tg_reshape(tape, col, (int64_t[]){9, 1, 5, 5}, 4); /* row -> window */
  if (!patches) {
    fprintf(stderr, "ch7_im2col: %s\n", tg_tape_error(tape));
    rc = 1;
  } else {
    print_shape("im2col of the 7x7 picture:", col);
    /* col's row r is the window at (oh, ow) = (r / 3, r % 3) */
    static const char *const captions[9] = {"row 0 (0,0)", "row 1 (0,1)", "row 2 (0,2)",
                                            "row 3 (1,0)", "row 4 (1,1)", "row 5 (1,2)",
                                            "row 6 (2,0)", "row 7 (2,1)", "row 8 (2,2)"};
    /* white on black, as MNIST digits are; the white gaps outline each window */
    tg_image_grid_opts in = {.scale = 16, .title = "input 7x7"};
    tg_image_grid_opts out = {
        .cols = 3, .scale = 16, .captions = captions, .title = "its 5x5 windows"};
    rc |= draw("ch7_im2col_input", img, &in) || draw("ch7_im2col_patches", patches, &out);
  }
  tg_tape_free(tape);
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
