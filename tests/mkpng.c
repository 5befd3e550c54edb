/* mkpng.c — draws the PNG files of the program's predict tests with cairo:
 * the synthetic data set's class c (mkdata.c: a bright bar on rows 2+2c
 * and 3+2c of 28) as a drawing, dark ink on light paper, at any size, so
 * a model trained on that set must read it only after the resize and
 * --invert; a handwritten-looking digit (0, 1 or 4: pen strokes as a
 * person would draw them, in MNIST's proportions: the figure in the middle
 * 20 of 28, the stroke about 2.5 of 28 wide) for a model trained on real
 * digits; and a file that starts like a PNG and is not one.
 * usage: mkpng FILE bar SIZE CLASS | mkpng FILE digit SIZE DIGIT | mkpng FILE corrupt
 */
#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[2], "corrupt") == 0) {
    FILE *f = fopen(argv[1], "wb");
    if (!f || fputs("\x89PNG\r\n\x1a\nnot the rest of a PNG file", f) < 0 || fclose(f) != 0) {
      perror(argv[1]);
      return 1;
    }
    return 0;
  }
  const int digit = argc == 5 && strcmp(argv[2], "digit") == 0;
  if (argc != 5 || (!digit && strcmp(argv[2], "bar") != 0)) {
    fprintf(stderr, "usage: mkpng FILE bar SIZE CLASS | mkpng FILE digit SIZE DIGIT | mkpng FILE "
                    "corrupt\n");
    return 2;
  }
  int size = atoi(argv[3]), c = atoi(argv[4]);
  if (size < 28 || size > 2000 || c < 0 || c > 9 || (digit && c != 0 && c != 1 && c != 4)) {
    fprintf(stderr, "mkpng: SIZE 28..2000, CLASS 0..9, DIGIT 0, 1 or 4\n");
    return 2;
  }
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, size, size);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 0.98, 0.96, 0.90); /* paper */
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0.08, 0.08, 0.25); /* ink */
  double unit = size / 28.0;
  if (!digit) {
    cairo_rectangle(cr, 0, (2 + 2 * c) * unit, size, 2 * unit);
    cairo_fill(cr);
  } else {
    /* In units of 28ths of the picture, y down. */
    cairo_scale(cr, unit, unit);
    cairo_set_line_width(cr, 2.5);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (c == 0) { /* an upright oval */
      cairo_save(cr);
      cairo_translate(cr, 14, 14);
      cairo_scale(cr, 6, 9);
      cairo_arc(cr, 0, 0, 1, 0, 6.2832);
      cairo_restore(cr);
    } else if (c == 1) { /* one stroke, leaning right */
      cairo_move_to(cr, 15.5, 4.5);
      cairo_line_to(cr, 12.5, 23.5);
    } else { /* 4: down, across, then the long stroke */
      cairo_move_to(cr, 11, 4.5);
      cairo_line_to(cr, 8, 15.5);
      cairo_line_to(cr, 20, 15.5);
      cairo_move_to(cr, 17.5, 8);
      cairo_line_to(cr, 16.5, 23.5);
    }
    cairo_stroke(cr);
  }
  cairo_status_t st = cairo_surface_write_to_png(s, argv[1]);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS) {
    fprintf(stderr, "mkpng: %s: %s\n", argv[1], cairo_status_to_string(st));
    return 1;
  }
  return 0;
}
