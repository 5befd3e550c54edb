/* image_grid.c — many small images in one picture: MNIST digits, the
 * filters of a convolution layer, their outputs.
 *
 * The pixels are computed here, one screen pixel at a time (nearest
 * neighbour, exact grey levels), into a cairo image surface; the writer of
 * plot.c then paints that surface 1:1 and the captions and title over it,
 * so a PNG holds exactly the levels documented in plot.h. Nothing here
 * keeps the tensor or touches a tape.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot_internal.h"

#define WHO    "tg_plot_image_grid"
#define MAX_PX 16384

/* What the draw callback needs. */
typedef struct grid {
  cairo_surface_t *pixels; /* (height, width) RGB24 */
  const tg_image_grid_opts *o;
  int64_t n, h, w;
  int cols, rows, scale, cap, title;
} grid;

/* v's level 0..255 in [lo, hi]; 128 when the range is a single value. */
static int level(double v, double lo, double hi, int invert) {
  if (!(hi > lo))
    return 128;
  long g = lround(255.0 * (v - lo) / (hi - lo));
  g = g < 0 ? 0 : g > 255 ? 255 : g;
  return invert ? 255 - (int)g : (int)g;
}

/* The finite min and max of n values at p (lo > hi when there are none). */
static void minmax(const tg_real *p, int64_t n, double *lo, double *hi) {
  for (int64_t i = 0; i < n; i++) {
    double v = (double)p[i];
    if (isfinite(v)) {
      *lo = fmin(*lo, v);
      *hi = fmax(*hi, v);
    }
  }
}

/* Writes every image's pixels into g->pixels (already white). */
static void fill_pixels(grid *g, const tg_tensor *images, int channels) {
  const tg_image_grid_opts *o = g->o;
  int64_t plane = g->h * g->w, per = channels * plane;
  double glo = INFINITY, ghi = -INFINITY;
  if (!o->per_image_range)
    minmax(images->data, images->numel, &glo, &ghi);
  cairo_surface_flush(g->pixels);
  unsigned char *base = cairo_image_surface_get_data(g->pixels);
  int stride = cairo_image_surface_get_stride(g->pixels);
  int s = g->scale;
  for (int64_t k = 0; k < g->n; k++) {
    const tg_real *img = images->data + k * per; /* (C, H, W) */
    double lo = glo, hi = ghi;
    if (o->per_image_range) {
      lo = INFINITY;
      hi = -INFINITY;
      minmax(img, per, &lo, &hi);
    }
    int r = (int)(k / g->cols), c = (int)(k % g->cols);
    int64_t x0 = c * (g->w * s + s);
    int64_t y0 = g->title + r * (g->h * s + g->cap + s);
    for (int64_t i = 0; i < g->h; i++)
      for (int64_t j = 0; j < g->w; j++) {
        int rgb[3];
        int bad = 0;
        for (int ch = 0; ch < channels; ch++) {
          double v = (double)img[ch * plane + i * g->w + j];
          bad |= !isfinite(v);
          rgb[ch] = level(v, lo, hi, o->invert);
        }
        if (channels == 1)
          rgb[1] = rgb[2] = rgb[0];
        uint32_t px =
            bad ? 0xffff00ffu
                : 0xff000000u | (uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | (uint32_t)rgb[2];
        for (int64_t yy = 0; yy < s; yy++) {
          uint32_t *row = (uint32_t *)(base + (y0 + i * s + yy) * stride);
          for (int64_t xx = 0; xx < s; xx++)
            row[x0 + j * s + xx] = px;
        }
      }
  }
  cairo_surface_mark_dirty(g->pixels);
}

/* Draws s centred at x on the baseline y, shrunk (down to 6 px) to fit
 * `room` px, clipped to [x - clip_w/2, x + clip_w/2]. */
static void centred_text(cairo_t *cr, const char *s, double x, double y, double size, int bold,
                         double room, double clip_w, double clip_top, double clip_h) {
  cairo_text_extents_t e;
  tg_plot__font(cr, size, bold);
  cairo_text_extents(cr, s, &e);
  if (e.x_advance > room && e.x_advance > 0) {
    size = fmax(6, size * room / e.x_advance);
    tg_plot__font(cr, size, bold);
    cairo_text_extents(cr, s, &e);
  }
  cairo_save(cr);
  cairo_rectangle(cr, x - clip_w / 2, clip_top, clip_w, clip_h);
  cairo_clip(cr);
  cairo_move_to(cr, x - e.x_advance / 2, y);
  cairo_show_text(cr, s);
  cairo_restore(cr);
}

static void draw_grid(cairo_t *cr, void *ctx) {
  grid *g = ctx;
  cairo_set_source_surface(cr, g->pixels, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  double cell_w = (double)(g->w * g->scale), pitch = cell_w + g->scale;
  double width = g->cols * pitch - g->scale;
  if (g->o->title)
    centred_text(cr, g->o->title, width / 2, g->title * 0.7, g->title * 0.58, 1, width - 4, width,
                 0, g->title);
  if (!g->o->captions)
    return;
  for (int64_t k = 0; k < g->n; k++) {
    const char *s = g->o->captions[k];
    if (!s)
      continue;
    int r = (int)(k / g->cols), c = (int)(k % g->cols);
    double band = g->title + r * (g->h * g->scale + g->cap + g->scale) + g->h * g->scale;
    centred_text(cr, s, c * pitch + cell_w / 2, band + g->cap * 0.78, g->cap * 0.72, 0, cell_w,
                 cell_w + g->scale, band, g->cap);
  }
}

tg_status tg_plot_image_grid(const char *path, const tg_tensor *images,
                             const tg_image_grid_opts *opts, tg_error *err) {
  static const tg_image_grid_opts defaults = {0};
  const tg_image_grid_opts *o = opts ? opts : &defaults;
  if (!path)
    return tg_error_set(err, TG_ERR_NULL, WHO ": path is NULL");
  if (!images)
    return tg_error_set(err, TG_ERR_NULL, WHO ": '%s': images is NULL", path);
  char shp[160];
  tg_shape_str(images->shape, images->ndim, shp, sizeof shp);
  int channels = images->ndim == 4 ? (int)images->shape[1] : 1;
  if (!(images->ndim == 3 || (images->ndim == 4 && (channels == 1 || channels == 3))))
    return tg_error_set(err, TG_ERR_SHAPE,
                        WHO ": '%s': images of shape %s (want (N, H, W), (N, 1, H, W) or "
                            "(N, 3, H, W))",
                        path, shp);
  int64_t n = images->shape[0], h = images->shape[images->ndim - 2],
          w = images->shape[images->ndim - 1];
  if (n < 1 || images->numel < 1)
    return tg_error_set(err, TG_ERR_SHAPE, WHO ": '%s': no images to draw (shape %s)", path, shp);
  if (h < 1 || w < 1 || images->numel != n * channels * h * w)
    return tg_error_set(err, TG_ERR_SHAPE, WHO ": '%s': shape %s does not hold %lld elements", path,
                        shp, (long long)images->numel);
  if (!images->data)
    return tg_error_set(err, TG_ERR_NULL, WHO ": '%s': images have no data", path);
  if (o->scale < 0 || o->scale > 64 || o->cols < 0)
    return tg_error_set(err, TG_ERR_ARG, WHO ": '%s': scale %d (want 0..64), cols %d (want >= 0)",
                        path, o->scale, o->cols);

  grid g = {.o = o, .n = n, .h = h, .w = w, .scale = o->scale ? o->scale : 4};
  int64_t cols = o->cols ? o->cols : (int64_t)ceil(sqrt((double)n));
  if (cols > n)
    cols = n;
  int64_t rows = (n + cols - 1) / cols;
  g.cap = o->captions ? TG_GRID_CAPTION_PX : 0;
  g.title = o->title ? TG_GRID_TITLE_PX : 0;
  int64_t s = g.scale;
  int64_t width = cols * w * s + (cols - 1) * s;
  int64_t height = rows * (h * s + g.cap) + (rows - 1) * s + g.title;
  if (width > MAX_PX || height > MAX_PX)
    return tg_error_set(err, TG_ERR_ARG,
                        WHO ": '%s': the picture would be %lld x %lld px (at most %d a side; "
                            "lower scale or cols)",
                        path, (long long)width, (long long)height, MAX_PX);
  g.cols = (int)cols;
  g.rows = (int)rows;

  g.pixels = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)width, (int)height);
  if (cairo_surface_status(g.pixels) != CAIRO_STATUS_SUCCESS) {
    int st =
        tg_error_set(err, TG_ERR_MEMORY, WHO ": '%s': %lld x %lld px: %s", path, (long long)width,
                     (long long)height, cairo_status_to_string(cairo_surface_status(g.pixels)));
    cairo_surface_destroy(g.pixels);
    return st;
  }
  cairo_t *cr = cairo_create(g.pixels);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_destroy(cr);
  fill_pixels(&g, images, channels);
  tg_status st = tg_plot__write(path, (int)width, (int)height, draw_grid, &g, WHO, err);
  cairo_surface_destroy(g.pixels);
  return st;
}
