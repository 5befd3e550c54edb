/* plot_internal.h — what the files of plot/ share: the figure's data model
 * (filled by plot.c, drawn by render.c) and the writer that turns one
 * drawing into a PNG or an SVG file.
 *
 * Private to plot/: not installed, not part of the API. Its functions are
 * hidden from the shared library's exports.
 */
#ifndef TG_PLOT_INTERNAL_H
#define TG_PLOT_INTERNAL_H

#include <cairo.h>

#include "plot.h"

enum tg_series_kind { TG_SERIES_LINE, TG_SERIES_HIST, TG_SERIES_CONTOUR };

typedef struct tg_series {
  int kind;            /* enum tg_series_kind */
  char *label;         /* NULL: not in the legend */
  double rgb[3];       /* resolved when the series is added */
  tg_line_style style; /* lines: dash, marker, width, marker size resolved */
  /* lines: n points, x and y copies */
  int64_t n;
  double *x, *y;
  /* histograms: bins counts over [lo, hi] */
  int bins;
  double lo, hi, alpha;
  double *counts;
  /* contours: z (ny, nx) over [x0, x1] × [y0, y1], nlevels levels */
  int nx, ny, nlevels;
  double x0, x1, y0, y1;
  double *z, *levels;
} tg_series;

struct tg_axes {
  tg_figure *fig;
  char *title, *xlabel, *ylabel;
  int has_xlim, has_ylim;
  double xlim[2], ylim[2];
  int ylog, grid, legend;
  int nxticks;      /* > 0: tg_axes_xticks' ticks replace the computed ones */
  double *xtick_at; /* (nxticks,) */
  char **xtick_lab; /* (nxticks,) */
  int ncolors;      /* palette colours taken so far */
  tg_series *s;
  int ns, cap;
};

struct tg_figure {
  int rows, cols, width, height;
  char *title;
  tg_axes *axes; /* rows × cols, row-major */
  tg_error err;
};

/* Draws the whole figure on cr (width × height user units = px). */
void tg_plot__draw_figure(const tg_figure *f, cairo_t *cr);

/* Writes a width × height picture that draw(cr, ctx) paints to path, as PNG
 * or SVG by the extension. `who` prefixes messages. Returns TG_OK or the
 * status put in err (unknown extension, unwritable file, cairo failures). */
typedef void (*tg_plot_draw_fn)(cairo_t *cr, void *ctx);
int tg_plot__write(const char *path, int width, int height, tg_plot_draw_fn draw, void *ctx,
                   const char *who, tg_error *err);

/* A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` steps over
 * span (> 0). */
double tg_plot__nice_step(double span, int target);

/* The sans-serif face every text of plot/ uses, at size px. */
void tg_plot__font(cairo_t *cr, double size, int bold);

#endif
