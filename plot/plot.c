/* plot.c — figures and axes as data: everything the caller hands over is
 * checked and copied here, and the first invalid argument puts the figure
 * in its error state (cairo's model: later calls are no-ops, save reports
 * it). Also the one writer of files (PNG or SVG by the extension), shared
 * with the image grid.
 *
 * No drawing happens here (render.c draws), and nothing here keeps a
 * pointer to the caller's memory.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cairo-svg.h>
#include <fontconfig/fontconfig.h>

#include "plot_internal.h"

static const uint32_t palette[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

#define MAX_PANELS 16
#define MIN_PX     16
#define MAX_PX     16384
#define MAX_BINS   10000

// ----------------------------------------------------------------------------
// Errors

static void fig_fail(tg_figure *f, tg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fig_fail(tg_figure *f, tg_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tg_error_vset(&f->err, status, fmt, ap);
  va_end(ap);
}

/* 1 when calls on ax may do something: it exists and its figure is OK. */
static int ax_ok(const tg_axes *ax) { return ax && ax->fig->err.status == TG_OK; }

/* "panel (r, c)" of ax, for messages. */
static const char *ax_name(const tg_axes *ax, char *buf, size_t n) {
  int i = (int)(ax - ax->fig->axes);
  snprintf(buf, n, "panel (%d, %d)", i / ax->fig->cols, i % ax->fig->cols);
  return buf;
}

/* Names a series for messages: its label, or its index in the panel. */
static const char *series_name(const tg_axes *ax, const char *label, char *buf, size_t n) {
  char p[48];
  if (label)
    snprintf(buf, n, "%s, series '%.200s'", ax_name(ax, p, sizeof p), label);
  else
    snprintf(buf, n, "%s, series %d", ax_name(ax, p, sizeof p), ax->ns);
  return buf;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Replaces *dst by a copy of s; records a memory error on failure. */
static void set_string(tg_figure *f, char **dst, const char *s) {
  char *c = dup_or_null(s);
  if (s && !c) {
    fig_fail(f, TG_ERR_MEMORY, "plot: out of memory copying a string");
    return;
  }
  free(*dst);
  *dst = c;
}

// ----------------------------------------------------------------------------
// Figures

tg_figure *tg_figure_new(int rows, int cols, int width_px, int height_px) {
  tg_figure *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  if (rows < 1 || rows > MAX_PANELS || cols < 1 || cols > MAX_PANELS) {
    fig_fail(f, TG_ERR_ARG, "tg_figure_new: %d x %d panels (rows and cols must be 1..%d)", rows,
             cols, MAX_PANELS);
    return f;
  }
  if (width_px < MIN_PX || width_px > MAX_PX || height_px < MIN_PX || height_px > MAX_PX) {
    fig_fail(f, TG_ERR_ARG, "tg_figure_new: size %d x %d px (each side must be %d..%d)", width_px,
             height_px, MIN_PX, MAX_PX);
    return f;
  }
  f->axes = calloc((size_t)rows * (size_t)cols, sizeof *f->axes);
  if (!f->axes) {
    fig_fail(f, TG_ERR_MEMORY, "tg_figure_new: out of memory");
    return f;
  }
  f->rows = rows;
  f->cols = cols;
  f->width = width_px;
  f->height = height_px;
  for (int i = 0; i < rows * cols; i++)
    f->axes[i].fig = f;
  return f;
}

static void series_free(tg_series *s) {
  free(s->label);
  free(s->x);
  free(s->y);
  free(s->counts);
  free(s->z);
  free(s->levels);
}

void tg_figure_free(tg_figure *f) {
  if (!f)
    return;
  for (int i = 0; i < f->rows * f->cols; i++) {
    tg_axes *ax = &f->axes[i];
    for (int k = 0; k < ax->ns; k++)
      series_free(&ax->s[k]);
    free(ax->s);
    free(ax->title);
    free(ax->xlabel);
    free(ax->ylabel);
    for (int k = 0; k < ax->nxticks; k++)
      free(ax->xtick_lab[k]);
    free(ax->xtick_at);
    free(ax->xtick_lab);
  }
  free(f->axes);
  free(f->title);
  free(f);
}

tg_axes *tg_figure_axes(tg_figure *f, int row, int col) {
  if (!f || f->err.status != TG_OK)
    return NULL;
  if (row < 0 || row >= f->rows || col < 0 || col >= f->cols) {
    fig_fail(f, TG_ERR_ARG, "tg_figure_axes: panel (%d, %d) is outside the %d x %d figure", row,
             col, f->rows, f->cols);
    return NULL;
  }
  return &f->axes[row * f->cols + col];
}

void tg_figure_title(tg_figure *f, const char *title) {
  if (f && f->err.status == TG_OK)
    set_string(f, &f->title, title);
}

tg_status tg_figure_status(const tg_figure *f) { return f ? f->err.status : TG_ERR_NULL; }

const char *tg_figure_error(const tg_figure *f) { return f ? f->err.msg : "figure is NULL"; }

static void draw_figure_cb(cairo_t *cr, void *ctx) { tg_plot__draw_figure(ctx, cr); }

tg_status tg_figure_save(tg_figure *f, const char *path, tg_error *err) {
  if (!f)
    return tg_error_set(err, TG_ERR_NULL, "tg_figure_save: figure is NULL");
  if (f->err.status != TG_OK)
    return tg_error_set(err, f->err.status, "%s", f->err.msg);
  if (!path)
    return tg_error_set(err, TG_ERR_NULL, "tg_figure_save: path is NULL");
  return tg_plot__write(path, f->width, f->height, draw_figure_cb, f, "tg_figure_save", err);
}

// ----------------------------------------------------------------------------
// Axes: decorations

void tg_axes_title(tg_axes *ax, const char *s) {
  if (ax_ok(ax))
    set_string(ax->fig, &ax->title, s);
}
void tg_axes_xlabel(tg_axes *ax, const char *s) {
  if (ax_ok(ax))
    set_string(ax->fig, &ax->xlabel, s);
}
void tg_axes_ylabel(tg_axes *ax, const char *s) {
  if (ax_ok(ax))
    set_string(ax->fig, &ax->ylabel, s);
}

static int check_lim(tg_axes *ax, const char *who, double lo, double hi, int log) {
  char p[48];
  if (!(isfinite(lo) && isfinite(hi) && lo < hi)) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: limits [%g, %g] (want finite lo < hi)", who,
             ax_name(ax, p, sizeof p), lo, hi);
    return 0;
  }
  if (log && lo <= 0) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: limits [%g, %g] on a log axis (want lo > 0)", who,
             ax_name(ax, p, sizeof p), lo, hi);
    return 0;
  }
  return 1;
}

void tg_axes_xlim(tg_axes *ax, double lo, double hi) {
  if (!ax_ok(ax) || !check_lim(ax, "tg_axes_xlim", lo, hi, 0))
    return;
  ax->has_xlim = 1;
  ax->xlim[0] = lo;
  ax->xlim[1] = hi;
}

void tg_axes_xticks(tg_axes *ax, const double *at, const char *const *labels, int n) {
  char p[48];
  if (!ax_ok(ax))
    return;
  if (n < 0 || n > 64 || (n > 0 && (!at || !labels))) {
    fig_fail(ax->fig, TG_ERR_ARG, "tg_axes_xticks: %s: %d ticks%s (want 0..64 and both arrays)",
             ax_name(ax, p, sizeof p), n, n > 0 && (!at || !labels) ? " with a NULL array" : "");
    return;
  }
  for (int i = 0; i < n; i++)
    if (!isfinite(at[i]) || (i > 0 && !(at[i] > at[i - 1])) || !labels[i]) {
      fig_fail(ax->fig, TG_ERR_ARG,
               "tg_axes_xticks: %s: tick %d at %g%s (want finite, increasing, labelled)",
               ax_name(ax, p, sizeof p), i, at[i], labels[i] ? "" : " has no label");
      return;
    }
  double *a = n ? malloc((size_t)n * sizeof *a) : NULL;
  char **l = n ? calloc((size_t)n, sizeof *l) : NULL;
  int ok = !n || (a && l);
  for (int i = 0; ok && i < n; i++)
    ok = (a[i] = at[i], l[i] = strdup(labels[i])) != NULL;
  if (!ok) {
    for (int i = 0; l && i < n; i++)
      free(l[i]);
    free(a), free(l);
    fig_fail(ax->fig, TG_ERR_MEMORY, "tg_axes_xticks: out of memory");
    return;
  }
  for (int k = 0; k < ax->nxticks; k++)
    free(ax->xtick_lab[k]);
  free(ax->xtick_at), free(ax->xtick_lab);
  ax->xtick_at = a, ax->xtick_lab = l, ax->nxticks = n;
}

void tg_axes_ylim(tg_axes *ax, double lo, double hi) {
  if (!ax_ok(ax) || !check_lim(ax, "tg_axes_ylim", lo, hi, ax->ylog))
    return;
  ax->has_ylim = 1;
  ax->ylim[0] = lo;
  ax->ylim[1] = hi;
}

void tg_axes_ylog(tg_axes *ax, int on) {
  if (!ax_ok(ax))
    return;
  if (on && ax->has_ylim && ax->ylim[0] <= 0) {
    char p[48];
    fig_fail(ax->fig, TG_ERR_ARG, "tg_axes_ylog: %s: fixed y limits [%g, %g] include values <= 0",
             ax_name(ax, p, sizeof p), ax->ylim[0], ax->ylim[1]);
    return;
  }
  ax->ylog = on != 0;
}

void tg_axes_grid(tg_axes *ax, int on) {
  if (ax_ok(ax))
    ax->grid = on != 0;
}

void tg_axes_legend(tg_axes *ax, int loc) {
  if (!ax_ok(ax))
    return;
  if (loc < TG_LEGEND_BEST || loc > TG_LEGEND_NONE) {
    char p[48];
    fig_fail(ax->fig, TG_ERR_ARG, "tg_axes_legend: %s: location %d (want enum tg_legend_loc)",
             ax_name(ax, p, sizeof p), loc);
    return;
  }
  ax->legend = loc;
}

// ----------------------------------------------------------------------------
// Axes: series

/* A new zeroed series at the end of ax (label copied), or NULL after
 * recording a memory error. */
static tg_series *series_push(tg_axes *ax, int kind, const char *label) {
  if (ax->ns == ax->cap) {
    int cap = ax->cap ? 2 * ax->cap : 4;
    tg_series *s = realloc(ax->s, (size_t)cap * sizeof *s);
    if (!s) {
      fig_fail(ax->fig, TG_ERR_MEMORY, "plot: out of memory adding a series");
      return NULL;
    }
    ax->s = s;
    ax->cap = cap;
  }
  tg_series *s = &ax->s[ax->ns];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->label = dup_or_null(label);
  if (label && !s->label) {
    fig_fail(ax->fig, TG_ERR_MEMORY, "plot: out of memory adding a series");
    return NULL;
  }
  ax->ns++;
  return s;
}

/* The series' colour: explicit, or the next one of the palette. */
static void series_color(tg_axes *ax, tg_series *s, uint32_t color) {
  uint32_t c = color ? color : palette[ax->ncolors++ % 10];
  s->rgb[0] = ((c >> 16) & 0xff) / 255.0;
  s->rgb[1] = ((c >> 8) & 0xff) / 255.0;
  s->rgb[2] = (c & 0xff) / 255.0;
}

static double *copy_doubles(const double *src, int64_t n) {
  double *d = malloc((size_t)n * sizeof *d);
  if (d && src)
    memcpy(d, src, (size_t)n * sizeof *d);
  return d;
}

static void add_line(tg_axes *ax, const char *who, const double *x, const double *y, int64_t n,
                     const char *label, const tg_line_style *style, int scatter) {
  if (!ax_ok(ax))
    return;
  char name[320];
  series_name(ax, label, name, sizeof name);
  if (!y) {
    fig_fail(ax->fig, TG_ERR_NULL, "%s: %s: y is NULL", who, name);
    return;
  }
  if (n < 1 || n > ((int64_t)1 << 40)) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: empty or absurd series (n = %lld, want n >= 1)", who,
             name, (long long)n);
    return;
  }
  tg_line_style st = style ? *style : (tg_line_style){0};
  if (st.dash < TG_DASH_SOLID || st.dash > TG_DASH_NONE || st.marker < TG_MARKER_NONE ||
      st.marker > TG_MARKER_CROSS || !(st.width >= 0 && st.width <= 100) ||
      !(st.marker_size >= 0 && st.marker_size <= 100) || st.color > 0x1ffffffu ||
      (st.color && !(st.color & 0x1000000u))) {
    fig_fail(ax->fig, TG_ERR_ARG,
             "%s: %s: bad style (dash %d, marker %d, width %g, marker size %g, color 0x%x)", who,
             name, st.dash, st.marker, st.width, st.marker_size, (unsigned)st.color);
    return;
  }
  if (scatter) {
    st.dash = TG_DASH_NONE;
    if (st.marker == TG_MARKER_NONE)
      st.marker = TG_MARKER_CIRCLE;
  }
  if (st.width == 0)
    st.width = 1.5;
  if (st.marker_size == 0)
    st.marker_size = 3;
  double *cx = copy_doubles(x, n), *cy = copy_doubles(y, n);
  tg_series *s = cx && cy ? series_push(ax, TG_SERIES_LINE, label) : NULL;
  if (!s) {
    free(cx);
    free(cy);
    if (ax->fig->err.status == TG_OK)
      fig_fail(ax->fig, TG_ERR_MEMORY, "%s: %s: out of memory copying %lld points", who, name,
               (long long)n);
    return;
  }
  if (!x)
    for (int64_t i = 0; i < n; i++)
      cx[i] = (double)i;
  s->x = cx;
  s->y = cy;
  s->n = n;
  s->style = st;
  series_color(ax, s, st.color);
}

void tg_axes_line(tg_axes *ax, const double *x, const double *y, int64_t n, const char *label,
                  const tg_line_style *style) {
  add_line(ax, "tg_axes_line", x, y, n, label, style, 0);
}

void tg_axes_scatter(tg_axes *ax, const double *x, const double *y, int64_t n, const char *label,
                     const tg_line_style *style) {
  add_line(ax, "tg_axes_scatter", x, y, n, label, style, 1);
}

/* The histogram of n values read through get(i). */
static void add_hist(tg_axes *ax, const char *who, double (*get)(const void *, int64_t),
                     const void *src, int64_t n, int bins, double lo, double hi, const char *label,
                     double alpha) {
  if (!ax_ok(ax))
    return;
  char name[320];
  series_name(ax, label, name, sizeof name);
  if (!src) {
    fig_fail(ax->fig, TG_ERR_NULL, "%s: %s: values are NULL", who, name);
    return;
  }
  if (n < 1) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: empty series (n = %lld, want n >= 1)", who, name,
             (long long)n);
    return;
  }
  if (bins < 1 || bins > MAX_BINS || !(alpha >= 0 && alpha <= 1) || !isfinite(lo) ||
      !isfinite(hi) || lo > hi) {
    fig_fail(ax->fig, TG_ERR_ARG,
             "%s: %s: bins %d (want 1..%d), range [%g, %g] (want finite lo <= hi), alpha %g "
             "(want 0..1)",
             who, name, bins, MAX_BINS, lo, hi, alpha);
    return;
  }
  if (lo == hi) { /* the range of the finite values */
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
      double v = get(src, i);
      if (isfinite(v)) {
        mn = fmin(mn, v);
        mx = fmax(mx, v);
      }
    }
    if (mn > mx)
      mn = mx = 0;
    lo = mn;
    hi = mx;
    if (lo == hi) {
      lo -= 0.5;
      hi += 0.5;
    }
  }
  double *counts = calloc((size_t)bins, sizeof *counts);
  tg_series *s = counts ? series_push(ax, TG_SERIES_HIST, label) : NULL;
  if (!s) {
    free(counts);
    if (ax->fig->err.status == TG_OK)
      fig_fail(ax->fig, TG_ERR_MEMORY, "%s: %s: out of memory", who, name);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    double v = get(src, i);
    if (!(v >= lo && v <= hi))
      continue; /* outside, or NaN */
    int b = (int)((v - lo) / (hi - lo) * bins);
    counts[b < bins ? b : bins - 1] += 1;
  }
  s->counts = counts;
  s->bins = bins;
  s->lo = lo;
  s->hi = hi;
  s->alpha = alpha == 0 ? 1 : alpha;
  series_color(ax, s, 0);
}

void tg_axes_bar(tg_axes *ax, double x, double height, double width, const char *label) {
  if (!ax_ok(ax))
    return;
  char name[320];
  series_name(ax, label, name, sizeof name);
  if (!isfinite(x) || !isfinite(height) || !(width > 0 && isfinite(width))) {
    fig_fail(ax->fig, TG_ERR_ARG,
             "tg_axes_bar: %s: x %g, height %g, width %g (want finite, width > 0)", name, x, height,
             width);
    return;
  }
  /* A histogram of one bin whose count is the height. */
  double *counts = malloc(sizeof *counts);
  tg_series *s = counts ? series_push(ax, TG_SERIES_HIST, label) : NULL;
  if (!s) {
    free(counts);
    if (ax->fig->err.status == TG_OK)
      fig_fail(ax->fig, TG_ERR_MEMORY, "tg_axes_bar: %s: out of memory", name);
    return;
  }
  counts[0] = height;
  s->counts = counts;
  s->bins = 1;
  s->lo = x - width / 2;
  s->hi = x + width / 2;
  s->alpha = 1;
  series_color(ax, s, 0);
}

static double get_double(const void *p, int64_t i) { return ((const double *)p)[i]; }
static double get_real(const void *p, int64_t i) { return (double)((const tg_real *)p)[i]; }

void tg_axes_hist(tg_axes *ax, const double *values, int64_t n, int bins, double lo, double hi,
                  const char *label, double alpha) {
  add_hist(ax, "tg_axes_hist", get_double, values, n, bins, lo, hi, label, alpha);
}

void tg_axes_hist_tensor(tg_axes *ax, const tg_tensor *t, int bins, double lo, double hi,
                         const char *label, double alpha) {
  add_hist(ax, "tg_axes_hist_tensor", get_real, t ? t->data : NULL, t ? t->numel : 0, bins, lo, hi,
           label, alpha);
}

/* About `want` nice levels strictly inside (zmin, zmax), into lv (room for
 * 64); returns how many. */
static int auto_levels(double zmin, double zmax, int want, double *lv) {
  if (!(zmax > zmin))
    return 0;
  double step = tg_plot__nice_step(zmax - zmin, want);
  int n = 0;
  for (double k = ceil(zmin / step); n < 64; k++) {
    double v = k * step;
    if (v >= zmax)
      break;
    if (v > zmin)
      lv[n++] = v;
  }
  return n;
}

void tg_axes_contour(tg_axes *ax, const double *z, int nx, int ny, double x0, double x1, double y0,
                     double y1, const double *levels, int nlevels) {
  if (!ax_ok(ax))
    return;
  char name[320];
  series_name(ax, NULL, name, sizeof name);
  const char *who = "tg_axes_contour";
  if (!z) {
    fig_fail(ax->fig, TG_ERR_NULL, "%s: %s: z is NULL", who, name);
    return;
  }
  if (nx < 2 || ny < 2 || (int64_t)nx * ny > ((int64_t)1 << 28)) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: grid %d x %d (want nx, ny >= 2)", who, name, nx, ny);
    return;
  }
  if (!(isfinite(x0) && isfinite(x1) && isfinite(y0) && isfinite(y1) && x0 < x1 && y0 < y1)) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: grid spans [%g, %g] x [%g, %g] (want finite, lo < hi)",
             who, name, x0, x1, y0, y1);
    return;
  }
  if (nlevels < 0 || nlevels > 64 || (levels && nlevels < 1)) {
    fig_fail(ax->fig, TG_ERR_ARG, "%s: %s: %d levels (want 1..64, or 0 with levels NULL)", who,
             name, nlevels);
    return;
  }
  double lv[64];
  int nl = nlevels;
  if (levels) {
    memcpy(lv, levels, (size_t)nl * sizeof *lv);
  } else {
    double zmin = INFINITY, zmax = -INFINITY;
    for (int64_t i = 0; i < (int64_t)nx * ny; i++)
      if (isfinite(z[i])) {
        zmin = fmin(zmin, z[i]);
        zmax = fmax(zmax, z[i]);
      }
    nl = auto_levels(zmin, zmax, nlevels ? nlevels : 8, lv);
  }
  double *cz = copy_doubles(z, (int64_t)nx * ny), *cl = copy_doubles(lv, nl > 0 ? nl : 1);
  tg_series *s = cz && cl ? series_push(ax, TG_SERIES_CONTOUR, NULL) : NULL;
  if (!s) {
    free(cz);
    free(cl);
    if (ax->fig->err.status == TG_OK)
      fig_fail(ax->fig, TG_ERR_MEMORY, "%s: %s: out of memory", who, name);
    return;
  }
  s->z = cz;
  s->levels = cl;
  s->nlevels = nl;
  s->nx = nx;
  s->ny = ny;
  s->x0 = x0;
  s->x1 = x1;
  s->y0 = y0;
  s->y1 = y1;
}

void tg_axes_contour_fn(tg_axes *ax, double (*f)(double x, double y, void *ctx), void *ctx,
                        double x0, double x1, double y0, double y1, int nx, int ny,
                        const double *levels, int nlevels) {
  if (!ax_ok(ax))
    return;
  if (!f || nx < 2 || ny < 2 || (int64_t)nx * ny > ((int64_t)1 << 28)) {
    char p[48];
    fig_fail(ax->fig, f ? TG_ERR_ARG : TG_ERR_NULL,
             "tg_axes_contour_fn: %s: function %s, grid %d x %d (want a function, nx, ny >= 2)",
             ax_name(ax, p, sizeof p), f ? "given" : "NULL", nx, ny);
    return;
  }
  double *z = malloc((size_t)nx * (size_t)ny * sizeof *z);
  if (!z) {
    fig_fail(ax->fig, TG_ERR_MEMORY, "tg_axes_contour_fn: out of memory");
    return;
  }
  for (int j = 0; j < ny; j++)
    for (int i = 0; i < nx; i++)
      z[(int64_t)j * nx + i] = f(x0 + (x1 - x0) * i / (nx - 1), y0 + (y1 - y0) * j / (ny - 1), ctx);
  tg_axes_contour(ax, z, nx, ny, x0, x1, y0, y1, levels, nlevels);
  free(z);
}

// ----------------------------------------------------------------------------
// Files: PNG or SVG by the extension

enum { FMT_NONE, FMT_PNG, FMT_SVG };

static int path_format(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  if (!dot || (slash && dot < slash))
    return FMT_NONE;
  if (strcasecmp(dot, ".png") == 0)
    return FMT_PNG;
  if (strcasecmp(dot, ".svg") == 0)
    return FMT_SVG;
  return FMT_NONE;
}

/* cairo's output goes through our own FILE, so a failure keeps errno. */
typedef struct sink {
  FILE *f;
  int errnum;
} sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len) {
  sink *s = closure;
  errno = 0;
  if (fwrite(data, 1, len, s->f) != len) {
    if (!s->errnum)
      s->errnum = errno ? errno : EIO;
    return CAIRO_STATUS_WRITE_ERROR;
  }
  return CAIRO_STATUS_SUCCESS;
}

int tg_plot__write(const char *path, int width, int height, tg_plot_draw_fn draw, void *ctx,
                   const char *who, tg_error *err) {
  int fmt = path_format(path);
  if (fmt == FMT_NONE)
    return tg_error_set(err, TG_ERR_ARG,
                        "%s: '%s': unknown picture format (the name must end in .png or .svg)", who,
                        path);
  sink s = {fopen(path, "wb"), 0};
  if (!s.f)
    return tg_error_set(err, TG_ERR_IO, "%s: cannot write '%s': %s (%s)", who, path,
                        cairo_status_to_string(CAIRO_STATUS_WRITE_ERROR), strerror(errno));

  cairo_surface_t *surf = fmt == FMT_PNG
                              ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)
                              : cairo_svg_surface_create_for_stream(sink_write, &s, width, height);
  if (fmt == FMT_SVG)
    cairo_svg_surface_set_document_unit(surf, CAIRO_SVG_UNIT_PX);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  draw(cr, ctx);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (st == CAIRO_STATUS_SUCCESS) {
    if (fmt == FMT_PNG) {
      st = cairo_surface_write_to_png_stream(surf, sink_write, &s);
    } else {
      cairo_surface_finish(surf);
      st = cairo_surface_status(surf);
    }
  }
  cairo_surface_destroy(surf);
  errno = 0;
  if (fclose(s.f) != 0 && !s.errnum)
    s.errnum = errno ? errno : EIO;
  if (st == CAIRO_STATUS_SUCCESS && s.errnum)
    st = CAIRO_STATUS_WRITE_ERROR;
  if (st == CAIRO_STATUS_SUCCESS)
    return TG_OK;
  remove(path);
  if (st == CAIRO_STATUS_WRITE_ERROR)
    return tg_error_set(err, TG_ERR_IO, "%s: cannot write '%s': %s (%s)", who, path,
                        cairo_status_to_string(st), strerror(s.errnum ? s.errnum : EIO));
  return tg_error_set(err, st == CAIRO_STATUS_NO_MEMORY ? TG_ERR_MEMORY : TG_ERR_ARG,
                      "%s: drawing '%s' failed: %s", who, path, cairo_status_to_string(st));
}

void tg_plot_release_caches(void) {
  /* cairo first: it holds fontconfig objects that FcFini would pull away */
  cairo_debug_reset_static_data();
  FcFini();
}
