/* image_read.c — a PNG made into a gray input image (image_read.h).
 *
 * cairo decodes every PNG colour type into premultiplied ARGB32 (or RGB24,
 * or A8), so one loop handles gray, colour and alpha alike. The arithmetic
 * is in double and rounded once at the end, as the training bytes were.
 */
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_read.h"

/* The length of [a0, a1) ∩ [b0, b1), or 0. */
static double overlap(double a0, double a1, double b0, double b1) {
  double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? hi - lo : 0;
}

void tg_image_area_average(const double *src, int64_t h, int64_t w, double *dst, int64_t H,
                           int64_t W) {
  const double sy = (double)h / (double)H, sx = (double)w / (double)W;
  for (int64_t i = 0; i < H; i++) {
    const double y0 = (double)i * sy, y1 = (double)(i + 1) * sy;
    for (int64_t j = 0; j < W; j++) {
      const double x0 = (double)j * sx, x1 = (double)(j + 1) * sx;
      double sum = 0, area = 0;
      for (int64_t r = (int64_t)y0; r < h && (double)r < y1; r++) {
        double fy = overlap(y0, y1, (double)r, (double)r + 1);
        for (int64_t c = (int64_t)x0; c < w && (double)c < x1; c++) {
          double a = fy * overlap(x0, x1, (double)c, (double)c + 1);
          sum += a * src[r * w + c];
          area += a;
        }
      }
      dst[i * W + j] = area > 0 ? sum / area : 0;
    }
  }
}

tg_status tg_image_read_png(const char *path, int64_t rows, int64_t cols, int invert, uint8_t *out,
                            tg_error *err) {
  if (!path || !out || rows < 1 || cols < 1)
    return tg_error_set(err, TG_ERR_ARG, "image_read_png: %s, %lld x %lld",
                        path ? path : "NULL path", (long long)rows, (long long)cols);
  /* Opened here first for errno's reason: cairo says only "file not
   * found", and reports a damaged PNG as "out of memory". */
  FILE *f = fopen(path, "rb");
  if (!f)
    return tg_error_set(err, TG_ERR_IO, "%s: %s", path, strerror(errno));
  fclose(f);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  cairo_status_t cs = cairo_surface_status(s);
  if (cs != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return tg_error_set(err, TG_ERR_FORMAT, "%s: not a readable PNG file (cairo: %s)", path,
                        cairo_status_to_string(cs));
  }
  cairo_surface_flush(s);
  const cairo_format_t fmt = cairo_image_surface_get_format(s);
  const int64_t h = cairo_image_surface_get_height(s), w = cairo_image_surface_get_width(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char *data = cairo_image_surface_get_data(s);
  const int64_t n = h > w ? h : w; /* the square's side */
  const double bg = invert ? 255 : 0;
  double *sq = malloc(sizeof(double) * (size_t)(n * n)); /* (n, n) */
  double *small = malloc(sizeof(double) * (size_t)(rows * cols));
  int st = TG_OK;
  if (!sq || !small || !data ||
      (fmt != CAIRO_FORMAT_ARGB32 && fmt != CAIRO_FORMAT_RGB24 && fmt != CAIRO_FORMAT_A8)) {
    st = tg_error_set(err, sq && small ? TG_ERR_FORMAT : TG_ERR_MEMORY, "%s: %s", path,
                      sq && small ? "an image format cairo gave that is not read here"
                                  : "out of memory");
    goto done;
  }
  for (int64_t i = 0; i < n * n; i++)
    sq[i] = 0; /* the padding: the background as it ends up, black */
  const int64_t top = (n - h) / 2, left = (n - w) / 2;
  for (int64_t r = 0; r < h; r++) {
    const unsigned char *row = data + r * stride;
    for (int64_t c = 0; c < w; c++) {
      double g, a;
      if (fmt == CAIRO_FORMAT_A8) {
        g = row[c]; /* alpha only: the ink is white, over the background */
        a = row[c] / 255.0;
      } else {
        uint32_t px;
        memcpy(&px, row + 4 * c, 4); /* native-endian 0xAARRGGBB, premultiplied */
        a = fmt == CAIRO_FORMAT_ARGB32 ? (double)(px >> 24) / 255.0 : 1.0;
        g = 0.299 * (double)((px >> 16) & 255) + 0.587 * (double)((px >> 8) & 255) +
            0.114 * (double)(px & 255);
      }
      double v = g + (1 - a) * bg; /* premultiplied colour over the background */
      sq[(top + r) * n + left + c] = invert ? 255 - v : v;
    }
  }
  tg_image_area_average(sq, n, n, small, rows, cols);
  for (int64_t i = 0; i < rows * cols; i++) {
    double v = floor(small[i] + 0.5);
    out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
done:
  free(sq);
  free(small);
  cairo_surface_destroy(s);
  return st;
}
