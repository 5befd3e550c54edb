/* render.c — draws a figure's panels with cairo: layout from measured
 * text, nice ticks, contour lines (marching squares), histograms, lines,
 * markers and a legend placed where it hides the least data.
 *
 * It only reads the figure (plot.c owns and checks the data) and draws on
 * the cairo context it is given, so PNG and SVG get the very same calls.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_internal.h"

#define MAX_TICKS 64
#define PI        3.14159265358979323846

/* One axis: its limits (data units) and ticks. */
typedef struct scale {
  double lo, hi;
  int log;
  int nt, nminor;
  double ticks[MAX_TICKS];
  double minor[2 * MAX_TICKS];
  double step;              /* linear: the tick step */
  const char *const *label; /* NULL, or the ticks' own labels (tg_axes_xticks) */
} scale;

/* The panel's plot area in px and its two scales. */
typedef struct frame {
  double L, R, T, B;
  scale x, y;
} frame;

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void tg_plot__font(cairo_t *cr, double size, int bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  return e.x_advance;
}

/* Draws s with its anchor at (x, y): ha 0 left, 0.5 centre, 1 right; va 0
 * top, 0.5 middle, 1 bottom of the capital letters (descenders hang below
 * the bottom). fs is the font size in use. */
static void text_at(cairo_t *cr, double fs, double x, double y, double ha, double va,
                    const char *s) {
  double cap = 0.73 * fs;
  cairo_move_to(cr, x - ha * text_width(cr, s), y + (1 - va) * cap);
  cairo_show_text(cr, s);
}

// ----------------------------------------------------------------------------
// Ticks

double tg_plot__nice_step(double span, int target) {
  if (!(span > 0))
    return 1;
  if (target < 1)
    target = 1;
  double raw = span / target;
  double p = pow(10, floor(log10(raw)));
  double m = raw / p;
  /* the nice step nearest to raw (on a log scale) */
  return (m < 1.42 ? 1 : m < 3.17 ? 2 : m < 7.08 ? 5 : 10) * p;
}

/* Linear ticks at multiples of a nice step; without fixed limits the
 * limits widen to the ticks around [dlo, dhi]. */
static void scale_linear(scale *s, double dlo, double dhi, int fixed, int target) {
  double step = tg_plot__nice_step(dhi - dlo, target);
  s->log = 0;
  s->step = step;
  if (fixed) {
    s->lo = dlo;
    s->hi = dhi;
  } else {
    s->lo = floor(dlo / step + 1e-9) * step;
    s->hi = ceil(dhi / step - 1e-9) * step;
  }
  s->nt = s->nminor = 0;
  for (double k = ceil(s->lo / step - 1e-9); s->nt < MAX_TICKS; k++) {
    double v = k * step;
    if (v > s->hi + step * 1e-9)
      break;
    s->ticks[s->nt++] = fabs(v) < step * 1e-9 ? 0 : v;
  }
}

/* Log ticks at powers of ten (every k-th decade when there are many),
 * minor ticks at 2..9 × 10^k when the decades are few. */
static void scale_log(scale *s, double dlo, double dhi, int fixed, int target) {
  s->log = 1;
  s->step = 0;
  if (fixed) {
    s->lo = dlo;
    s->hi = dhi;
  } else {
    s->lo = pow(10, floor(log10(dlo) + 1e-9));
    s->hi = pow(10, ceil(log10(dhi) - 1e-9));
    if (s->hi <= s->lo)
      s->hi = s->lo * 10;
  }
  int e0 = (int)floor(log10(s->lo) + 1e-9), e1 = (int)ceil(log10(s->hi) - 1e-9);
  if (e1 - e0 <= 1 && fixed &&
      !(s->lo <= pow(10, e0) * (1 + 1e-9) && s->hi >= pow(10, e1) * (1 - 1e-9))) {
    /* less than a decade between fixed limits: linear ticks, log positions */
    double lo = s->lo, hi = s->hi;
    scale_linear(s, lo, hi, 1, target);
    s->log = 1;
    return;
  }
  int every = (e1 - e0) / (target > 1 ? target : 1) + 1;
  s->nt = s->nminor = 0;
  for (int e = e0; e <= e1 && s->nt < MAX_TICKS; e++) {
    double v = pow(10, e);
    if (e % every == 0 && v >= s->lo * (1 - 1e-9) && v <= s->hi * (1 + 1e-9))
      s->ticks[s->nt++] = v;
    if (e1 - e0 <= 6)
      for (int m = 2; m <= 9 && s->nminor < 2 * MAX_TICKS; m++)
        if (m * v > s->lo && m * v < s->hi)
          s->minor[s->nminor++] = m * v;
  }
}

/* The label of tick i at v. */
static void tick_label(const scale *s, int i, double v, char *buf, size_t n) {
  if (s->label) {
    snprintf(buf, n, "%s", s->label[i]);
    return;
  }
  if (s->log && s->step == 0) {
    snprintf(buf, n, "%g", v);
    return;
  }
  double mag = fmax(fabs(s->lo), fabs(s->hi));
  int dec = s->step >= 1 ? 0 : (int)ceil(-log10(s->step) - 1e-9);
  char tmp[64];
  if (mag >= 1e6 || dec > 6)
    snprintf(tmp, sizeof tmp, "%g", v);
  else
    snprintf(tmp, sizeof tmp, "%.*f", dec, v);
  /* a typographic minus, as wide as a digit */
  snprintf(buf, n, "%s%s", tmp[0] == '-' ? "\xe2\x88\x92" : "", tmp + (tmp[0] == '-'));
}

static double widest_label(cairo_t *cr, const scale *s) {
  char buf[64];
  double w = 0;
  for (int i = 0; i < s->nt; i++) {
    tick_label(s, i, s->ticks[i], buf, sizeof buf);
    w = fmax(w, text_width(cr, buf));
  }
  return w;
}

// ----------------------------------------------------------------------------
// Data ranges

typedef struct range {
  double lo, hi;
} range;

static void grow(range *r, double v) {
  if (v < r->lo)
    r->lo = v;
  if (v > r->hi)
    r->hi = v;
}

/* The data's x and y ranges (finite values; y > 0 on a log axis). */
static void data_ranges(const tg_axes *ax, range *xr, range *yr) {
  *xr = (range){INFINITY, -INFINITY};
  *yr = (range){INFINITY, -INFINITY};
  for (int k = 0; k < ax->ns; k++) {
    const tg_series *s = &ax->s[k];
    if (s->kind == TG_SERIES_LINE) {
      for (int64_t i = 0; i < s->n; i++)
        if (isfinite(s->x[i]) && isfinite(s->y[i]) && (!ax->ylog || s->y[i] > 0)) {
          grow(xr, s->x[i]);
          grow(yr, s->y[i]);
        }
    } else if (s->kind == TG_SERIES_HIST) {
      grow(xr, s->lo);
      grow(xr, s->hi);
      for (int b = 0; b < s->bins; b++)
        if (!ax->ylog || s->counts[b] > 0)
          grow(yr, s->counts[b]);
      if (!ax->ylog)
        grow(yr, 0);
    } else {
      grow(xr, s->x0);
      grow(xr, s->x1);
      grow(yr, s->y0);
      grow(yr, s->y1);
    }
  }
}

/* Makes r a usable interval: [0, 1] (log: [1, 10]) when empty, widened
 * when a single value. */
static void settle(range *r, int log) {
  if (r->lo > r->hi)
    *r = log ? (range){1, 10} : (range){0, 1};
  if (r->lo == r->hi) {
    if (log) {
      r->lo /= 2;
      r->hi *= 2;
    } else {
      double d = r->lo == 0 ? 0.5 : fabs(r->lo) * 0.1;
      r->lo -= d;
      r->hi += d;
    }
  }
}

// ----------------------------------------------------------------------------
// Mapping

static double map_x(const frame *fr, double x) {
  return fr->L + (x - fr->x.lo) / (fr->x.hi - fr->x.lo) * (fr->R - fr->L);
}

static double map_y(const frame *fr, double y) {
  if (fr->y.log)
    return fr->B -
           (log10(y) - log10(fr->y.lo)) / (log10(fr->y.hi) - log10(fr->y.lo)) * (fr->B - fr->T);
  return fr->B - (y - fr->y.lo) / (fr->y.hi - fr->y.lo) * (fr->B - fr->T);
}

/* 1 when (x, y) is drawable on this frame. */
static int usable(const frame *fr, double x, double y) {
  return isfinite(x) && isfinite(y) && (!fr->y.log || y > 0);
}

// ----------------------------------------------------------------------------
// Contours: marching squares, one path per level

static void viridis(double t, double rgb[3]) {
  static const double stops[5][3] = {{0.267, 0.005, 0.329},
                                     {0.230, 0.322, 0.546},
                                     {0.128, 0.567, 0.551},
                                     {0.369, 0.789, 0.383},
                                     {0.993, 0.906, 0.144}};
  t = clampd(t, 0, 1) * 4;
  int i = t >= 4 ? 3 : (int)t;
  double u = t - i;
  for (int c = 0; c < 3; c++)
    rgb[c] = stops[i][c] * (1 - u) + stops[i + 1][c] * u;
}

static void draw_contour(cairo_t *cr, const frame *fr, const tg_series *s) {
  double lmin = INFINITY, lmax = -INFINITY;
  for (int l = 0; l < s->nlevels; l++) {
    lmin = fmin(lmin, s->levels[l]);
    lmax = fmax(lmax, s->levels[l]);
  }
  cairo_set_line_width(cr, 1.0);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  double dx = (s->x1 - s->x0) / (s->nx - 1), dy = (s->y1 - s->y0) / (s->ny - 1);
  for (int l = 0; l < s->nlevels; l++) {
    double lv = s->levels[l], rgb[3];
    viridis(lmax > lmin ? (lv - lmin) / (lmax - lmin) : 0.5, rgb);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    for (int j = 0; j + 1 < s->ny; j++)
      for (int i = 0; i + 1 < s->nx; i++) {
        /* corners counter-clockwise: (i,j) (i+1,j) (i+1,j+1) (i,j+1) */
        const double *z = s->z;
        double c[4] = {z[(int64_t)j * s->nx + i], z[(int64_t)j * s->nx + i + 1],
                       z[(int64_t)(j + 1) * s->nx + i + 1], z[(int64_t)(j + 1) * s->nx + i]};
        static const int cx[4] = {0, 1, 1, 0}, cy[4] = {0, 0, 1, 1};
        int hi[4], ncross = 0, ok = 1;
        for (int k = 0; k < 4; k++) {
          ok &= isfinite(c[k]);
          hi[k] = c[k] >= lv;
        }
        if (!ok)
          continue;
        /* edge k joins corner k and k+1; where it crosses the level */
        double ex[4], ey[4];
        int cross[4];
        for (int k = 0; k < 4; k++) {
          int a = k, b = (k + 1) % 4;
          cross[k] = hi[a] != hi[b];
          if (!cross[k])
            continue;
          ncross++;
          double t = (lv - c[a]) / (c[b] - c[a]);
          ex[k] = s->x0 + (i + cx[a] + t * (cx[b] - cx[a])) * dx;
          ey[k] = s->y0 + (j + cy[a] + t * (cy[b] - cy[a])) * dy;
        }
        int seg[2][2], nseg = 0;
        if (ncross == 2) {
          int a = -1, b = -1;
          for (int k = 0; k < 4; k++)
            if (cross[k])
              *(a < 0 ? &a : &b) = k;
          seg[0][0] = a;
          seg[0][1] = b;
          nseg = 1;
        } else if (ncross == 4) {
          /* a saddle: the centre decides which corners stand alone */
          int centre = (c[0] + c[1] + c[2] + c[3]) / 4 >= lv;
          for (int k = 0; k < 4; k++)
            if (hi[k] != centre) {
              seg[nseg][0] = (k + 3) % 4;
              seg[nseg][1] = k;
              nseg++;
            }
        }
        for (int q = 0; q < nseg; q++) {
          int a = seg[q][0], b = seg[q][1];
          if (!usable(fr, ex[a], ey[a]) || !usable(fr, ex[b], ey[b]))
            continue;
          cairo_move_to(cr, map_x(fr, ex[a]), map_y(fr, ey[a]));
          cairo_line_to(cr, map_x(fr, ex[b]), map_y(fr, ey[b]));
        }
      }
    cairo_stroke(cr);
  }
}

// ----------------------------------------------------------------------------
// Histograms, lines, markers

static void draw_hist(cairo_t *cr, const frame *fr, const tg_series *s) {
  double base = fr->y.log ? fr->B : map_y(fr, fmax(0, fr->y.lo));
  double w = (s->hi - s->lo) / s->bins;
  cairo_set_source_rgba(cr, s->rgb[0], s->rgb[1], s->rgb[2], s->alpha);
  for (int b = 0; b < s->bins; b++) {
    if (s->counts[b] <= 0)
      continue;
    double x0 = map_x(fr, s->lo + b * w), x1 = map_x(fr, s->lo + (b + 1) * w);
    double top = map_y(fr, s->counts[b]);
    cairo_rectangle(cr, x0, top, x1 - x0, base - top);
  }
  cairo_fill(cr);
}

static void set_dash(cairo_t *cr, int dash, double w) {
  if (dash == TG_DASH_DASHED) {
    double d[2] = {4 * w, 2.5 * w};
    cairo_set_dash(cr, d, 2, 0);
  } else if (dash == TG_DASH_DOTTED) {
    double d[2] = {w, 1.8 * w};
    cairo_set_dash(cr, d, 2, 0);
  } else {
    cairo_set_dash(cr, NULL, 0, 0);
  }
}

static void marker(cairo_t *cr, int kind, double x, double y, double r) {
  switch (kind) {
  case TG_MARKER_CIRCLE:
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, r, 0, 2 * PI);
    cairo_fill(cr);
    break;
  case TG_MARKER_SQUARE:
    cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r);
    cairo_fill(cr);
    break;
  case TG_MARKER_TRIANGLE:
    cairo_move_to(cr, x, y - 1.2 * r);
    cairo_line_to(cr, x + 1.1 * r, y + 0.8 * r);
    cairo_line_to(cr, x - 1.1 * r, y + 0.8 * r);
    cairo_close_path(cr);
    cairo_fill(cr);
    break;
  case TG_MARKER_PLUS:
    cairo_move_to(cr, x - 1.3 * r, y);
    cairo_line_to(cr, x + 1.3 * r, y);
    cairo_move_to(cr, x, y - 1.3 * r);
    cairo_line_to(cr, x, y + 1.3 * r);
    cairo_stroke(cr);
    break;
  case TG_MARKER_CROSS:
    cairo_move_to(cr, x - r, y - r);
    cairo_line_to(cr, x + r, y + r);
    cairo_move_to(cr, x - r, y + r);
    cairo_line_to(cr, x + r, y - r);
    cairo_stroke(cr);
    break;
  default:
    break;
  }
}

/* 1 when (x, y) lies within the limits (markers there are drawn whole,
 * not clipped by the frame). */
static int within(const frame *fr, double x, double y) {
  double ex = 1e-9 * (fr->x.hi - fr->x.lo), ey = 1e-9 * (fr->y.hi - fr->y.lo);
  return x >= fr->x.lo - ex && x <= fr->x.hi + ex && y >= fr->y.lo - ey && y <= fr->y.hi + ey;
}

/* The line of s (markers 0), or its markers (markers 1). */
static void draw_line(cairo_t *cr, const frame *fr, const tg_series *s, int markers) {
  const tg_line_style *st = &s->style;
  cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
  cairo_set_line_width(cr, st->width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, st->dash == TG_DASH_SOLID ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_BUTT);
  if (!markers && st->dash != TG_DASH_NONE) {
    set_dash(cr, st->dash, st->width);
    int pen = 0;
    for (int64_t i = 0; i < s->n; i++) {
      if (!usable(fr, s->x[i], s->y[i])) {
        pen = 0; /* a gap: the line breaks here */
        continue;
      }
      double px = map_x(fr, s->x[i]), py = map_y(fr, s->y[i]);
      if (pen)
        cairo_line_to(cr, px, py);
      else
        cairo_move_to(cr, px, py);
      pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
  }
  if (markers && st->marker != TG_MARKER_NONE) {
    cairo_set_line_width(cr, fmax(1.0, st->width * 0.8));
    for (int64_t i = 0; i < s->n; i++)
      if (usable(fr, s->x[i], s->y[i]) && within(fr, s->x[i], s->y[i]))
        marker(cr, st->marker, map_x(fr, s->x[i]), map_y(fr, s->y[i]), st->marker_size);
  }
}

// ----------------------------------------------------------------------------
// Legend

/* How much data the box (x, y, w, h) would hide: line points and samples
 * along segments, and histogram bars it touches. */
static double hidden_by(const tg_axes *ax, const frame *fr, double x, double y, double w,
                        double h) {
  double n = 0;
#define INSIDE(px, py) ((px) >= x && (px) <= x + w && (py) >= y && (py) <= y + h)
  for (int k = 0; k < ax->ns; k++) {
    const tg_series *s = &ax->s[k];
    if (s->kind == TG_SERIES_LINE) {
      double qx = 0, qy = 0;
      int have = 0;
      for (int64_t i = 0; i < s->n; i++) {
        if (!usable(fr, s->x[i], s->y[i])) {
          have = 0;
          continue;
        }
        double px = map_x(fr, s->x[i]), py = map_y(fr, s->y[i]);
        n += INSIDE(px, py);
        if (have && s->style.dash != TG_DASH_NONE) {
          int m = (int)fmin(64, hypot(px - qx, py - qy) / 4);
          for (int t = 1; t < m; t++)
            n += INSIDE(qx + (px - qx) * t / m, qy + (py - qy) * t / m);
        }
        qx = px;
        qy = py;
        have = 1;
      }
    } else if (s->kind == TG_SERIES_HIST) {
      double bw = (s->hi - s->lo) / s->bins;
      for (int b = 0; b < s->bins; b++) {
        if (s->counts[b] <= 0)
          continue;
        double x0 = map_x(fr, s->lo + b * bw), x1 = map_x(fr, s->lo + (b + 1) * bw);
        double top = map_y(fr, s->counts[b]);
        if (x1 >= x && x0 <= x + w && top <= y + h)
          n += 4;
      }
    }
  }
#undef INSIDE
  return n;
}

static void legend_swatch(cairo_t *cr, const tg_series *s, double x, double y, double len) {
  if (s->kind == TG_SERIES_HIST) {
    cairo_set_source_rgba(cr, s->rgb[0], s->rgb[1], s->rgb[2], s->alpha);
    cairo_rectangle(cr, x, y - len * 0.22, len, len * 0.44);
    cairo_fill(cr);
    return;
  }
  const tg_line_style *st = &s->style;
  cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
  if (st->dash != TG_DASH_NONE) {
    cairo_set_line_width(cr, st->width);
    set_dash(cr, st->dash, st->width);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + len, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
  }
  cairo_set_line_width(cr, fmax(1.0, st->width * 0.8));
  marker(cr, st->marker, x + len / 2, y, st->marker_size);
}

static void draw_legend(cairo_t *cr, const tg_axes *ax, const frame *fr, double fs) {
  int n = 0;
  double tw = 0;
  tg_plot__font(cr, fs, 0);
  for (int k = 0; k < ax->ns; k++)
    if (ax->s[k].label) {
      n++;
      tw = fmax(tw, text_width(cr, ax->s[k].label));
    }
  if (n == 0 || ax->legend == TG_LEGEND_NONE)
    return;
  double pad = 0.5 * fs, row = 1.35 * fs, swatch = 2 * fs;
  double w = fmin(pad + swatch + pad + tw + pad, fr->R - fr->L - 2 * pad);
  double h = pad + n * row;
  double inset = 0.6 * fs;
  double xs[4] = {fr->R - inset - w, fr->L + inset, fr->L + inset, fr->R - inset - w};
  double ys[4] = {fr->T + inset, fr->T + inset, fr->B - inset - h, fr->B - inset - h};
  int best = 0;
  if (ax->legend == TG_LEGEND_BEST) {
    double least = INFINITY;
    for (int c = 0; c < 4; c++) {
      double hid = hidden_by(ax, fr, xs[c], ys[c], w, h);
      if (hid < least) {
        least = hid;
        best = c;
      }
    }
  } else {
    best = ax->legend - TG_LEGEND_UPPER_RIGHT;
  }
  /* whole pixels, so the 1 px border is crisp */
  double x = floor(xs[best]) + 0.5, y = floor(ys[best]) + 0.5;
  w = floor(w);
  h = floor(h);
  cairo_rectangle(cr, x, y, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, h);
  cairo_clip(cr);
  int i = 0;
  for (int k = 0; k < ax->ns; k++) {
    const tg_series *s = &ax->s[k];
    if (!s->label)
      continue;
    double cy = y + pad / 2 + (i + 0.5) * row;
    legend_swatch(cr, s, x + pad, cy, swatch);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, fs, x + pad + swatch + pad, cy, 0, 0.5, s->label);
    i++;
  }
  cairo_restore(cr);
}

// ----------------------------------------------------------------------------
// A panel

static void make_scales(const tg_axes *ax, frame *fr, const range *xr, const range *yr, cairo_t *cr,
                        double fs) {
  /* x: fewer ticks until the labels leave room between them */
  fr->x.label = fr->y.label = NULL;
  for (int target = (int)clampd((fr->R - fr->L) / (5 * fs), 2, 10);; target--) {
    scale_linear(&fr->x, ax->has_xlim ? ax->xlim[0] : xr->lo, ax->has_xlim ? ax->xlim[1] : xr->hi,
                 ax->has_xlim, target);
    double spacing =
        fr->x.nt > 1 ? (fr->R - fr->L) * (fr->x.ticks[1] - fr->x.ticks[0]) / (fr->x.hi - fr->x.lo)
                     : INFINITY;
    if (target <= 2 || widest_label(cr, &fr->x) + 1.2 * fs <= spacing)
      break;
  }
  if (ax->nxticks > 0) { /* the caller's ticks, those inside the limits */
    fr->x.nt = 0, fr->x.label = NULL;
    for (int i = 0; i < ax->nxticks; i++)
      if (ax->xtick_at[i] >= fr->x.lo && ax->xtick_at[i] <= fr->x.hi) {
        if (fr->x.nt == 0)
          fr->x.label = (const char *const *)ax->xtick_lab + i;
        fr->x.ticks[fr->x.nt++] = ax->xtick_at[i];
      }
  }
  int ytarget = (int)clampd((fr->B - fr->T) / (4 * fs), 2, 10);
  double ylo = ax->has_ylim ? ax->ylim[0] : yr->lo, yhi = ax->has_ylim ? ax->ylim[1] : yr->hi;
  if (ax->ylog)
    scale_log(&fr->y, ylo, yhi, ax->has_ylim, (int)fmin(ytarget, 8));
  else
    scale_linear(&fr->y, ylo, yhi, ax->has_ylim, ytarget);
}

static void draw_axes(cairo_t *cr, const tg_axes *ax, double x, double y, double w, double h,
                      double fs) {
  range xr, yr;
  data_ranges(ax, &xr, &yr);
  settle(&xr, 0);
  settle(&yr, ax->ylog);

  /* Margins depend on the tick labels, the ticks on the plot's size: a
   * few rounds settle it. The limits map onto the frame's 1 px lines, whose
   * centres are pixel centres (k + 0.5), and so are the ticks'. */
  double pad = 0.6 * fs, tick = 0.35 * fs, lab_fs = 1.05 * fs, title_fs = 1.15 * fs;
  double top = pad + 0.5 * fs + (ax->title ? title_fs * 1.5 : 0);
  double bottom = pad + tick + 0.4 * fs + fs + 0.3 * fs + (ax->xlabel ? lab_fs * 1.5 : 0);
  frame fr = {.L = x + 4 * fs,
              .R = x + w - 1.5 * fs,
              .T = floor(y + top) + 0.5,
              .B = floor(y + h - bottom) + 0.5};
  if (fr.B - fr.T < 8)
    fr.B = fr.T + 8;
  tg_plot__font(cr, fs, 0);
  char buf[64];
  for (int r = 0; r < 3; r++) {
    make_scales(ax, &fr, &xr, &yr, cr, fs);
    buf[0] = 0;
    if (fr.x.nt > 0)
      tick_label(&fr.x, fr.x.nt - 1, fr.x.ticks[fr.x.nt - 1], buf, sizeof buf);
    double right = fmax(pad * 1.5, text_width(cr, buf) / 2 + pad / 2);
    double left = pad + (ax->ylabel ? lab_fs * 1.6 : 0) + widest_label(cr, &fr.y) + 0.4 * fs + tick;
    fr.L = floor(x + left) + 0.5;
    fr.R = floor(x + w - right) + 0.5;
    if (fr.R - fr.L < 8)
      fr.R = fr.L + 8;
  }
  make_scales(ax, &fr, &xr, &yr, cr, fs);

  /* grid */
  cairo_set_line_width(cr, 1);
  if (ax->grid) {
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    for (int i = 0; i < fr.x.nt; i++) {
      double px = floor(map_x(&fr, fr.x.ticks[i])) + 0.5;
      cairo_move_to(cr, px, fr.T);
      cairo_line_to(cr, px, fr.B);
    }
    for (int i = 0; i < fr.y.nt; i++) {
      double py = floor(map_y(&fr, fr.y.ticks[i])) + 0.5;
      cairo_move_to(cr, fr.L, py);
      cairo_line_to(cr, fr.R, py);
    }
    cairo_stroke(cr);
  }

  /* data, clipped to the plot area; contours under bars under lines */
  cairo_save(cr);
  cairo_rectangle(cr, fr.L, fr.T, fr.R - fr.L, fr.B - fr.T);
  cairo_clip(cr);
  for (int pass = 0; pass < 3; pass++)
    for (int k = 0; k < ax->ns; k++) {
      const tg_series *s = &ax->s[k];
      if (pass == 0 && s->kind == TG_SERIES_CONTOUR)
        draw_contour(cr, &fr, s);
      else if (pass == 1 && s->kind == TG_SERIES_HIST)
        draw_hist(cr, &fr, s);
      else if (pass == 2 && s->kind == TG_SERIES_LINE)
        draw_line(cr, &fr, s, 0);
    }
  cairo_restore(cr);
  for (int k = 0; k < ax->ns; k++)
    if (ax->s[k].kind == TG_SERIES_LINE)
      draw_line(cr, &fr, &ax->s[k], 1);

  /* frame, ticks, labels */
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, fr.L, fr.T, fr.R - fr.L, fr.B - fr.T);
  for (int i = 0; i < fr.x.nt; i++) {
    double px = floor(map_x(&fr, fr.x.ticks[i])) + 0.5;
    cairo_move_to(cr, px, fr.B);
    cairo_line_to(cr, px, fr.B + tick);
  }
  for (int i = 0; i < fr.y.nt; i++) {
    double py = floor(map_y(&fr, fr.y.ticks[i])) + 0.5;
    cairo_move_to(cr, fr.L, py);
    cairo_line_to(cr, fr.L - tick, py);
  }
  for (int i = 0; i < fr.y.nminor; i++) {
    double py = floor(map_y(&fr, fr.y.minor[i])) + 0.5;
    cairo_move_to(cr, fr.L, py);
    cairo_line_to(cr, fr.L - 0.55 * tick, py);
  }
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  for (int i = 0; i < fr.x.nt; i++) {
    tick_label(&fr.x, i, fr.x.ticks[i], buf, sizeof buf);
    text_at(cr, fs, map_x(&fr, fr.x.ticks[i]), fr.B + tick + 0.4 * fs, 0.5, 0, buf);
  }
  for (int i = 0; i < fr.y.nt; i++) {
    tick_label(&fr.y, i, fr.y.ticks[i], buf, sizeof buf);
    text_at(cr, fs, fr.L - tick - 0.4 * fs, map_y(&fr, fr.y.ticks[i]), 1, 0.5, buf);
  }
  if (ax->xlabel) {
    tg_plot__font(cr, lab_fs, 0);
    text_at(cr, lab_fs, (fr.L + fr.R) / 2, fr.B + tick + 0.4 * fs + fs + 0.6 * lab_fs, 0.5, 0,
            ax->xlabel);
  }
  if (ax->ylabel) {
    tg_plot__font(cr, lab_fs, 0);
    cairo_save(cr);
    cairo_translate(cr, x + pad, (fr.T + fr.B) / 2);
    cairo_rotate(cr, -PI / 2);
    text_at(cr, lab_fs, 0, 0, 0.5, 0, ax->ylabel);
    cairo_restore(cr);
  }
  if (ax->title) {
    tg_plot__font(cr, title_fs, 1);
    text_at(cr, title_fs, (fr.L + fr.R) / 2, fr.T - 0.6 * title_fs, 0.5, 1, ax->title);
  }
  draw_legend(cr, ax, &fr, fs * 0.95);
}

void tg_plot__draw_figure(const tg_figure *f, cairo_t *cr) {
  double top = 0;
  double pw = (double)f->width / f->cols, ph0 = (double)f->height / f->rows;
  double fs = clampd(fmin(pw, ph0) / 24, 9, 13);
  if (f->title) {
    double tfs = 1.3 * fs;
    tg_plot__font(cr, tfs, 1);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, tfs, f->width / 2.0, 0.6 * tfs, 0.5, 0, f->title);
    top = 1.9 * tfs;
  }
  double ph = (f->height - top) / f->rows;
  for (int r = 0; r < f->rows; r++)
    for (int c = 0; c < f->cols; c++)
      draw_axes(cr, &f->axes[r * f->cols + c], c * pw, top + r * ph, pw, ph, fs);
}
