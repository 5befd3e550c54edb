/* plot.h — pictures of the book's experiments: learning curves, optimizer
 * paths over contour lines, activation histograms, grids of digits and of
 * convolution filters. Drawn with cairo; the same drawing goes to PNG or SVG,
 * chosen by the path's extension (".png" or ".svg", any case; anything else
 * is an error naming the path).
 *
 * A figure holds rows × cols panels (axes). Everything given to an axes is
 * copied, so the caller's arrays may be freed before tg_figure_save. Like a
 * cairo object, a figure that meets an invalid argument records the first
 * error and ignores every later call; tg_figure_save then reports it, so the
 * caller checks once:
 *
 *   tg_figure *f = tg_figure_new(1, 1, 640, 480);
 *   tg_axes *ax = tg_figure_axes(f, 0, 0);
 *   tg_axes_line(ax, NULL, loss, n, "train", NULL);     // x = 0, 1, ..., n-1
 *   tg_axes_xlabel(ax, "iteration");
 *   tg_error err = {0};
 *   if (tg_figure_save(f, "loss.png", &err)) fprintf(stderr, "%s\n", err.msg);
 *   tg_figure_free(f);
 *
 * Non-finite values (NaN, ±Inf; on a log axis also values <= 0) are skipped,
 * never drawn and never an error: a line breaks there. Nothing here touches
 * a tape.
 */
#ifndef TG_PLOT_H
#define TG_PLOT_H

#include <stdint.h>

#include "tensor.h"

typedef struct tg_figure tg_figure;
typedef struct tg_axes tg_axes;

/* ---------------------------------------------------------------------
 * Styles */

/* A colour given explicitly; 0 stands for "the next palette colour". The
 * palette (matplotlib's tab10) is cycled per axes, one step for every line,
 * scatter and histogram series that takes its colour from it: 0x1f77b4,
 * 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f,
 * 0xbcbd22, 0x17becf. */
#define TG_RGB(r, g, b) (0x1000000u | ((uint32_t)(r) << 16) | ((uint32_t)(g) << 8) | (uint32_t)(b))

enum tg_dash {
  TG_DASH_SOLID = 0,
  TG_DASH_DASHED,
  TG_DASH_DOTTED,
  TG_DASH_NONE, /* markers only */
};

enum tg_marker {
  TG_MARKER_NONE = 0,
  TG_MARKER_CIRCLE,
  TG_MARKER_SQUARE,
  TG_MARKER_TRIANGLE,
  TG_MARKER_PLUS,
  TG_MARKER_CROSS,
};

/* A line's look; a zeroed struct (or NULL) is a solid 1.5 px line in the
 * next palette colour without markers. */
typedef struct tg_line_style {
  int dash;           /* enum tg_dash */
  int marker;         /* enum tg_marker */
  uint32_t color;     /* TG_RGB(r, g, b); 0: the next palette colour */
  double width;       /* line width in px; 0: 1.5 */
  double marker_size; /* marker radius in px; 0: 3 */
} tg_line_style;

enum tg_legend_loc {
  TG_LEGEND_BEST = 0, /* the corner that hides the fewest data points */
  TG_LEGEND_UPPER_RIGHT,
  TG_LEGEND_UPPER_LEFT,
  TG_LEGEND_LOWER_LEFT,
  TG_LEGEND_LOWER_RIGHT,
  TG_LEGEND_NONE,
};

/* ---------------------------------------------------------------------
 * Figures */

/* A figure of rows × cols panels (each 1..16) on width_px × height_px
 * pixels (each 16..16384). Bad sizes give a figure in the error state
 * (tg_figure_status), never NULL; NULL only when memory runs out, and every
 * function here takes a NULL figure or axes as a no-op. */
TG_API tg_figure *tg_figure_new(int rows, int cols, int width_px, int height_px);
/* Frees the figure and all its axes and data; NULL is a no-op. */
TG_API void tg_figure_free(tg_figure *f);

/* The panel at (row, col), counted from the top left; owned by the figure.
 * Out of range: NULL, and the figure records the error. */
TG_API tg_axes *tg_figure_axes(tg_figure *f, int row, int col);

/* A title over all panels (copied; NULL removes it). */
TG_API void tg_figure_title(tg_figure *f, const char *title);

/* TG_OK, or the status of the first error recorded; its message (""
 * when none). A NULL figure (tg_figure_new ran out of memory) reports
 * TG_ERR_NULL and "figure is NULL", as a NULL tape does. */
TG_API tg_status tg_figure_status(const tg_figure *f);
TG_API const char *tg_figure_error(const tg_figure *f);

/* Draws the figure to path (.png or .svg). Returns TG_OK, or a status with
 * err filled: the figure's first recorded error (nothing is written);
 * TG_ERR_ARG for another extension; TG_ERR_IO when the file cannot be
 * written, naming the path, cairo's status string and the system's reason.
 * A file that failed half-way is removed. */
TG_API tg_status tg_figure_save(tg_figure *f, const char *path, tg_error *err);

/* ---------------------------------------------------------------------
 * Axes: decorations and scales. Strings are copied; NULL removes them. */

TG_API void tg_axes_title(tg_axes *ax, const char *title);
TG_API void tg_axes_xlabel(tg_axes *ax, const char *label);
TG_API void tg_axes_ylabel(tg_axes *ax, const char *label);

/* Fixed limits (lo < hi, finite; on a log y axis lo > 0). Without them the
 * limits come from the data, widened to "nice" ticks (1, 2 or 5 × 10^k);
 * data outside fixed limits is clipped. */
TG_API void tg_axes_xlim(tg_axes *ax, double lo, double hi);
TG_API void tg_axes_ylim(tg_axes *ax, double lo, double hi);

/* Ticks of the x axis at at[0..n-1] (finite, increasing) with the given
 * labels (copied), instead of computed ones: categories such as a bar
 * chart's. n == 0 goes back to computed ticks; n is at most 64. */
TG_API void tg_axes_xticks(tg_axes *ax, const double *at, const char *const *labels, int n);

/* 1: logarithmic y axis (ticks at powers of ten). */
TG_API void tg_axes_ylog(tg_axes *ax, int on);
/* 1: light grid lines at the ticks. */
TG_API void tg_axes_grid(tg_axes *ax, int on);
/* Where the legend goes (enum tg_legend_loc). A legend is drawn when any
 * series of the axes has a label. */
TG_API void tg_axes_legend(tg_axes *ax, int loc);

/* ---------------------------------------------------------------------
 * Axes: data. n >= 1 for every series (0 is an error naming the series). */

/* A line through (x[i], y[i]); x NULL means x[i] = i. label NULL: not in
 * the legend. style NULL: the default line. */
TG_API void tg_axes_line(tg_axes *ax, const double *x, const double *y, int64_t n,
                         const char *label, const tg_line_style *style);

/* Points only: like tg_axes_line with style->dash forced to TG_DASH_NONE
 * and, when style is NULL or has no marker, circles. */
TG_API void tg_axes_scatter(tg_axes *ax, const double *x, const double *y, int64_t n,
                            const char *label, const tg_line_style *style);

/* A histogram of n values in `bins` equal bins (1..10000) over [lo, hi]
 * (the last bin includes hi; values outside are not counted). lo == hi:
 * the range of the finite values. alpha in (0, 1] is the bars' opacity;
 * 0 means 1. The y axis starts at 0 unless limits are fixed. */
TG_API void tg_axes_hist(tg_axes *ax, const double *values, int64_t n, int bins, double lo,
                         double hi, const char *label, double alpha);
/* The same for every element of a tensor (e.g. a layer's activations). */
TG_API void tg_axes_hist_tensor(tg_axes *ax, const tg_tensor *t, int bins, double lo, double hi,
                                const char *label, double alpha);

/* One bar of the given height centred on x, width wide (data units),
 * filled in the next palette colour; from 0 up (from the bottom edge on a
 * log axis). With tg_axes_xticks, a bar chart of categories. */
TG_API void tg_axes_bar(tg_axes *ax, double x, double height, double width, const char *label);

/* Contour lines of z sampled on an nx × ny grid (each >= 2) spanning
 * [x0, x1] × [y0, y1]: z is (ny, nx), z[j*nx + i] = f(x0 + i·(x1-x0)/(nx-1),
 * y0 + j·(y1-y0)/(ny-1)). levels: nlevels values; levels NULL: about
 * nlevels (0: 8) nice levels inside z's range. Lines are coloured from dark
 * blue (low) to yellow (high) and take no palette colour. */
TG_API void tg_axes_contour(tg_axes *ax, const double *z, int nx, int ny, double x0, double x1,
                            double y0, double y1, const double *levels, int nlevels);
/* The same with z sampled from f(x, y, ctx). */
TG_API void tg_axes_contour_fn(tg_axes *ax, double (*f)(double x, double y, void *ctx), void *ctx,
                               double x0, double x1, double y0, double y1, int nx, int ny,
                               const double *levels, int nlevels);

/* ---------------------------------------------------------------------
 * Image grids (digits, convolution filters) */

typedef struct tg_image_grid_opts {
  int cols;            /* 0: about square */
  int scale;           /* screen pixels per image pixel, 0: 4 */
  int per_image_range; /* 1: each image scaled to its own min..max (the book's filters), 0: one
                          range for all */
  int invert;          /* 1: dark = high (matplotlib's gray_r) */
  const char *const *captions; /* NULL or one string per image, drawn under it */
  const char *title;           /* NULL: none */
} tg_image_grid_opts;

/* Caption band under every row of images, and title band on top, in px. */
#define TG_GRID_CAPTION_PX 16
#define TG_GRID_TITLE_PX   24

/* Draws N images in a grid to path (.png or .svg). images: (N, H, W) or
 * (N, 1, H, W) grey, or (N, 3, H, W) RGB; opts NULL: all defaults.
 *
 * Layout: cols = opts->cols (clamped to N), or ceil(sqrt(N)); rows =
 * ceil(N / cols); each cell is W·scale × H·scale screen pixels (nearest
 * neighbour), cells are one image pixel (scale screen pixels) apart, with
 * no outer border. The picture is cols·W·s + (cols-1)·s wide and
 * rows·H·s + (rows-1)·s high, plus TG_GRID_CAPTION_PX per row with
 * captions and TG_GRID_TITLE_PX with a title. Gaps and bands are white;
 * a caption wider than its cell is drawn smaller (down to 6 px), then
 * clipped to its cell and half the gaps beside it.
 *
 * Values: v maps to grey round(255 (v - lo) / (hi - lo)) with lo..hi the
 * image's own range (per_image_range) or all images' range; inverted,
 * 255 minus that. RGB images use one range over their three channels.
 * A constant range (hi == lo) draws mid-grey 128; a non-finite value is
 * drawn magenta and left out of the ranges.
 *
 * Errors (TG_ERR_NULL, TG_ERR_SHAPE, TG_ERR_ARG, TG_ERR_IO), each naming
 * what was wrong: NULL images or data, another rank or channel count, zero
 * images, a scale outside 0..64 or cols < 0, a picture over 16384 px a
 * side, an extension other than .png/.svg, an unwritable path. */
TG_API tg_status tg_plot_image_grid(const char *path, const tg_tensor *images,
                                    const tg_image_grid_opts *opts, tg_error *err);

/* ---------------------------------------------------------------------
 * Process-wide caches */

/* cairo and fontconfig keep font caches for the whole process, which leak
 * checkers (ASan, valgrind) report at exit. Call this after the last
 * drawing, when no plot call runs in another thread, to release them; a
 * later drawing simply builds them again. */
TG_API void tg_plot_release_caches(void);

#endif
