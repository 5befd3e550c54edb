/* test_plot.c — figures and image grids (plot/): the files written (PNG
 * signature and header, SVG header and size), pixels where the geometry
 * puts them, grey levels of image grids worked out by hand, the sizes that
 * captions and titles add, and every error naming what was wrong.
 *
 * Pictures are read back with cairo (cairo_image_surface_create_from_png),
 * never compared with files made by this code. The frame of a panel is
 * found by scanning the picture for its dark lines, so the checks do not
 * depend on how wide the tick labels happen to be. Every file goes into a
 * mkdtemp directory that the test removes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>

#include "testutil.h"

#include "plot.h"

// ----------------------------------------------------------------------------
// A scratch directory per test, and files in it

static void dir_setup(void) { tu_dir_make("tg_plot"); }

static void dir_teardown(void) {
  tu_rm_tree(tu_dir());
  tg_plot_release_caches(); /* else ASan reports fontconfig's caches */
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The first n bytes of a file (NUL-terminated); returns how many were read. */
static size_t read_head(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
  size_t got = fread(buf, 1, n - 1, f);
  buf[got] = 0;
  fclose(f);
  return got;
}

// ----------------------------------------------------------------------------
// Reading pictures back

/* A PNG read back by cairo; fails the test unless it is width × height. */
static cairo_surface_t *load_png(const char *path, int width, int height) {
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  ck_assert_msg(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, "%s: %s", path,
                cairo_status_to_string(cairo_surface_status(s)));
  ck_assert_msg(cairo_image_surface_get_width(s) == width &&
                    cairo_image_surface_get_height(s) == height,
                "%s is %d x %d, want %d x %d", path, cairo_image_surface_get_width(s),
                cairo_image_surface_get_height(s), width, height);
  return s;
}

/* Pixel (x, y) as 0xRRGGBB. */
static uint32_t px(cairo_surface_t *s, int x, int y) {
  cairo_surface_flush(s);
  const unsigned char *row =
      cairo_image_surface_get_data(s) + (size_t)y * cairo_image_surface_get_stride(s);
  return ((const uint32_t *)row)[x] & 0xffffff;
}

static int dist(uint32_t a, uint32_t b) {
  int d = 0;
  for (int sh = 0; sh <= 16; sh += 8)
    d += abs((int)((a >> sh) & 0xff) - (int)((b >> sh) & 0xff));
  return d;
}

static int is_dark(uint32_t c) {
  return ((c >> 16) & 0xff) < 60 && ((c >> 8) & 0xff) < 60 && (c & 0xff) < 60;
}

/* The frame of a one-panel figure: its dark lines found from the picture's
 * centre outwards along the middle row and column. */
typedef struct box {
  int l, r, t, b;
} box;

static box find_frame(cairo_surface_t *s) {
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  box f = {-1, -1, -1, -1};
  for (int y = h / 2; y >= 0 && f.t < 0; y--)
    if (is_dark(px(s, w / 2, y)))
      f.t = y;
  for (int y = h / 2; y < h && f.b < 0; y++)
    if (is_dark(px(s, w / 2, y)))
      f.b = y;
  for (int x = w / 2; x >= 0 && f.l < 0; x--)
    if (is_dark(px(s, x, h / 2)))
      f.l = x;
  for (int x = w / 2; x < w && f.r < 0; x++)
    if (is_dark(px(s, x, h / 2)))
      f.r = x;
  ck_assert_msg(f.l > 0 && f.r > f.l + 20 && f.t > 0 && f.b > f.t + 20,
                "no frame found: l %d r %d t %d b %d", f.l, f.r, f.t, f.b);
  return f;
}

/* The row in [t, b] of column x closest to colour c; its distance in *d. */
static int best_row(cairo_surface_t *s, int x, int t, int b, uint32_t c, int *d) {
  int best = -1;
  *d = 1 << 30;
  for (int y = t; y <= b; y++)
    if (dist(px(s, x, y), c) < *d) {
      *d = dist(px(s, x, y), c);
      best = y;
    }
  return best;
}

#define BLUE   0x1f77b4u /* palette colour 0 */
#define ORANGE 0xff7f0eu /* palette colour 1 */
#define WHITE  0xffffffu

/* Asserts err holds status and mentions every given fragment. */
#define assert_err(err, want_status, ...)                                                          \
  do {                                                                                             \
    const char *frags_[] = {__VA_ARGS__, NULL};                                                    \
    ck_assert_msg((err).status == (want_status), "status %d, want %d (%s)", (err).status,          \
                  (want_status), (err).msg);                                                       \
    for (int k_ = 0; frags_[k_]; k_++)                                                             \
      ck_assert_msg(strstr((err).msg, frags_[k_]) != NULL, "error \"%s\" does not mention \"%s\"", \
                    (err).msg, frags_[k_]);                                                        \
  } while (0)

// ----------------------------------------------------------------------------
// Files

static tg_figure *small_figure(void) {
  tg_figure *f = tg_figure_new(1, 1, 320, 240);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  double y[4] = {1, 3, 2, 4};
  tg_axes_line(ax, NULL, y, 4, "y", NULL);
  tg_axes_title(ax, "title");
  tg_axes_xlabel(ax, "x");
  tg_axes_ylabel(ax, "y");
  return f;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(test_png_written) {
  tg_figure *f = small_figure();
  tg_error err = {0};
  const char *path = tu_path("a.png");
  ck_assert_int_eq(tg_figure_save(f, path, &err), TG_OK);
  tg_figure_free(f);
  unsigned char head[33];
  FILE *fp = fopen(path, "rb");
  ck_assert_ptr_nonnull(fp);
  ck_assert_int_eq(fread(head, 1, 33, fp), 33);
  fclose(fp);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ck_assert_msg(memcmp(head, sig, 8) == 0, "no PNG signature");
  ck_assert_msg(memcmp(head + 12, "IHDR", 4) == 0, "first chunk is not IHDR");
  ck_assert_uint_eq(be32(head + 16), 320);
  ck_assert_uint_eq(be32(head + 20), 240);
  cairo_surface_destroy(load_png(path, 320, 240));
}
END_TEST

START_TEST(test_svg_written) {
  tg_figure *f = small_figure();
  tg_error err = {0};
  const char *path = tu_path("a.SVG"); /* the extension in any case */
  ck_assert_int_eq(tg_figure_save(f, path, &err), TG_OK);
  /* caches released between two drawings come back */
  tg_plot_release_caches();
  ck_assert_msg(tg_figure_save(f, path, &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);
  char buf[1024];
  read_head(path, buf, sizeof buf);
  ck_assert_msg(strncmp(buf, "<?xml", 5) == 0, "SVG starts with \"%.20s\"", buf);
  char *svg = strstr(buf, "<svg");
  ck_assert_msg(svg != NULL, "no <svg element in \"%s\"", buf);
  ck_assert_msg(strstr(svg, "width=\"320px\"") && strstr(svg, "height=\"240px\""),
                "svg element lacks width/height 320px/240px: %.200s", svg);
}
END_TEST

START_TEST(test_every_kind_draws) {
  /* One figure with each kind of series in its own panel, both formats. */
  tg_figure *f = tg_figure_new(2, 2, 600, 480);
  tg_figure_title(f, "all kinds");
  double x[50], y[50], v[1000];
  for (int i = 0; i < 50; i++) {
    x[i] = i * 0.2;
    y[i] = exp(-0.1 * i) + 0.01;
  }
  tg_rng rng;
  tg_rng_seed(&rng, 3);
  for (int i = 0; i < 1000; i++)
    v[i] = tg_rng_normal(&rng);
  tg_axes *a = tg_figure_axes(f, 0, 0);
  tg_axes_line(a, x, y, 50, "loss",
               &(tg_line_style){.dash = TG_DASH_DASHED, .marker = TG_MARKER_SQUARE});
  tg_axes_ylog(a, 1);
  tg_axes_grid(a, 1);
  tg_axes_scatter(tg_figure_axes(f, 0, 1), x, y, 50, "points", NULL);
  tg_axes_hist(tg_figure_axes(f, 1, 0), v, 1000, 30, 0, 0, "normal", 0.5);
  double z[4] = {0, 1, 1, 2};
  tg_axes *c = tg_figure_axes(f, 1, 1);
  tg_axes_contour(c, z, 2, 2, -1, 1, -1, 1, NULL, 0);
  tg_axes_line(c, (double[]){-1, 0, 1}, (double[]){1, 0, -1}, 3, NULL,
               &(tg_line_style){.marker = TG_MARKER_CIRCLE, .color = TG_RGB(255, 0, 0)});
  tg_error err = {0};
  ck_assert_msg(tg_figure_save(f, tu_path("k.png"), &err) == TG_OK, "%s", err.msg);
  ck_assert_msg(tg_figure_save(f, tu_path("k.svg"), &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);
  cairo_surface_destroy(load_png(tu_path("k.png"), 600, 480));
}
END_TEST

// ----------------------------------------------------------------------------
// Pixels where the geometry puts them

static tg_tensor *tensor_of(const int64_t *shape, int ndim, const double *vals);

START_TEST(test_line_lands_on_row) {
  tg_figure *f = tg_figure_new(1, 1, 300, 220);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_xlim(ax, 0, 1);
  tg_axes_ylim(ax, 0, 1);
  /* heap copies freed before saving: the figure keeps its own */
  double *x = malloc(5 * sizeof *x), *y = malloc(5 * sizeof *y);
  for (int i = 0; i < 5; i++) {
    x[i] = 0.25 * i;
    y[i] = 0.5;
  }
  tg_axes_line(ax, x, y, 5, NULL, &(tg_line_style){.width = 2});
  y[0] = y[1] = 0.25;
  y[2] = NAN; /* the second line breaks at x = 0.5 */
  y[3] = y[4] = 0.25;
  tg_axes_line(ax, x, y, 5, NULL, &(tg_line_style){.width = 2});
  free(x);
  free(y);
  tg_error err = {0};
  const char *path = tu_path("line.png");
  ck_assert_msg(tg_figure_save(f, path, &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);

  cairo_surface_t *s = load_png(path, 300, 220);
  box fr = find_frame(s);
  int xm = (fr.l + fr.r) / 2, d;
  /* y = 0.5 halfway between the frame lines, y = 0.25 a quarter up */
  int row = best_row(s, xm, fr.t + 1, fr.b - 1, BLUE, &d);
  ck_assert_msg(d < 40, "no blue near column %d (closest %06x)", xm, px(s, xm, row));
  ck_assert_msg(abs(2 * row - (fr.t + fr.b)) <= 2, "blue line on row %d, frame rows %d..%d", row,
                fr.t, fr.b);
  /* it spans the plot area */
  ck_assert_msg(dist(px(s, fr.l + 3, row), BLUE) < 40 && dist(px(s, fr.r - 3, row), BLUE) < 40,
                "blue line does not reach both sides on row %d", row);
  int xq = fr.l + (fr.r - fr.l) / 8; /* x = 1/8 */
  int row2 = best_row(s, xq, fr.t + 1, fr.b - 1, ORANGE, &d);
  double want2 = fr.t + 0.75 * (fr.b - fr.t);
  ck_assert_msg(d < 40 && fabs(row2 - want2) <= 1.5, "orange line on row %d (distance %d), want %g",
                row2, d, want2);
  /* the NaN point leaves a gap around x = 0.5 */
  ck_assert_msg(px(s, xm, row2) == WHITE, "pixel (%d, %d) under the NaN gap is %06x, want white",
                xm, row2, px(s, xm, row2));
  cairo_surface_destroy(s);
}
END_TEST

START_TEST(test_hist_bar_heights) {
  tg_figure *f = tg_figure_new(1, 1, 300, 220);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_xlim(ax, 0, 1);
  tg_axes_ylim(ax, 0, 3);
  /* bin [0, 0.5): 3 values; bin [0.5, 1]: 1 value (NaN and 7 not counted) */
  double v[6] = {0.1, 0.2, 0.4, NAN, 0.9, 7};
  if (_i == 0) {
    tg_axes_hist(ax, v, 6, 2, 0, 1, NULL, 0);
  } else { /* the same values in a tensor, as activations come */
    tg_tensor *t = tensor_of((int64_t[]){2, 3}, 2, v);
    tg_axes_hist_tensor(ax, t, 2, 0, 1, NULL, 0);
    tg_tensor_free(t);
  }
  tg_error err = {0};
  const char *path = tu_path("hist.png");
  ck_assert_msg(tg_figure_save(f, path, &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);
  cairo_surface_t *s = load_png(path, 300, 220);
  box fr = find_frame(s);
  int xa = fr.l + (fr.r - fr.l) / 4, xb = fr.l + 3 * (fr.r - fr.l) / 4;
  int y_low = fr.b - (fr.b - fr.t) / 6;      /* y = 0.5 */
  int y_high = fr.b - 5 * (fr.b - fr.t) / 6; /* y = 2.5 */
  int y_mid = fr.b - (fr.b - fr.t) / 2;      /* y = 1.5 */
  ck_assert_msg(px(s, xa, y_high) == BLUE, "bar 1 at y = 2.5: %06x", px(s, xa, y_high));
  ck_assert_msg(px(s, xb, y_low) == BLUE, "bar 2 at y = 0.5: %06x", px(s, xb, y_low));
  ck_assert_msg(px(s, xb, y_mid) == WHITE, "above bar 2 at y = 1.5: %06x", px(s, xb, y_mid));
  cairo_surface_destroy(s);
}
END_TEST

START_TEST(test_legend_avoids_data) {
  /* data along the top: the legend goes to the lower left, the first free
   * corner after the upper two */
  tg_figure *f = tg_figure_new(1, 1, 300, 220);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_xlim(ax, 0, 1);
  tg_axes_ylim(ax, 0, 1);
  double x[41], y[41];
  for (int i = 0; i <= 40; i++) {
    x[i] = i / 40.0;
    y[i] = 0.9;
  }
  tg_axes_line(ax, x, y, 41, "along the top", NULL);
  tg_error err = {0};
  const char *path = tu_path("legend.png");
  ck_assert_msg(tg_figure_save(f, path, &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);
  cairo_surface_t *s = load_png(path, 300, 220);
  box fr = find_frame(s);
  /* the legend's border is light grey (0xbfbfbf): count it per quadrant */
  int n[2][2] = {{0}};
  int xm = (fr.l + fr.r) / 2, ym = (fr.t + fr.b) / 2;
  for (int yy = fr.t + 1; yy < fr.b; yy++)
    for (int xx = fr.l + 1; xx < fr.r; xx++)
      if (dist(px(s, xx, yy), 0xbfbfbfu) < 12)
        n[yy > ym][xx > xm]++;
  ck_assert_msg(n[1][0] > 20 && n[0][0] + n[0][1] + n[1][1] == 0,
                "legend border pixels: upper %d %d, lower %d %d", n[0][0], n[0][1], n[1][0],
                n[1][1]);
  cairo_surface_destroy(s);
}
END_TEST

// ----------------------------------------------------------------------------
// Image grids

/* An owned tensor of the given shape holding vals. */
static tg_tensor *tensor_of(const int64_t *shape, int ndim, const double *vals) {
  tg_error err = {0};
  tg_tensor *t = tg_tensor_new(shape, ndim, 0, "images", &err);
  ck_assert_msg(t != NULL, "%s", err.msg);
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)vals[i];
  return t;
}

static uint32_t grey(int g) { return (uint32_t)g * 0x010101u; }

START_TEST(test_grid_size) {
  /* 5 images of 2 x 3: 3 columns (about square), 2 rows; scale 4 */
  double vals[30] = {0};
  tg_tensor *t = tensor_of((int64_t[]){5, 2, 3}, 3, vals);
  tg_error err = {0};
  ck_assert_msg(tg_plot_image_grid(tu_path("g.png"), t, NULL, &err) == TG_OK, "%s", err.msg);
  cairo_surface_destroy(load_png(tu_path("g.png"), 3 * 3 * 4 + 2 * 4, 2 * 2 * 4 + 4));
  /* cols 5, scale 2; (N, 1, H, W) is the same as (N, H, W) */
  tg_tensor *t4 = tensor_of((int64_t[]){5, 1, 2, 3}, 4, vals);
  tg_image_grid_opts o = {.cols = 5, .scale = 2};
  ck_assert_msg(tg_plot_image_grid(tu_path("g2.png"), t4, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_destroy(load_png(tu_path("g2.png"), 5 * 3 * 2 + 4 * 2, 2 * 2));
  /* cols beyond N are clamped to N */
  o.cols = 9;
  ck_assert_msg(tg_plot_image_grid(tu_path("g3.png"), t4, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_destroy(load_png(tu_path("g3.png"), 5 * 3 * 2 + 4 * 2, 2 * 2));
  ck_assert_msg(tg_plot_image_grid(tu_path("g.svg"), t4, &o, &err) == TG_OK, "%s", err.msg);
  tg_tensor_free(t);
  tg_tensor_free(t4);
}
END_TEST

START_TEST(test_grid_levels) {
  /* two 2 x 2 images, side by side at scale 2: cells x 0..3 and 6..9, gap 4..5 */
  double vals[8] = {0, 1, 2, 3, 10, 11, 12, 13};
  tg_tensor *t = tensor_of((int64_t[]){2, 2, 2}, 3, vals);
  tg_error err = {0};
  const char *path = tu_path("lv.png");
  /* per image: both images give 0, 85, 170, 255 (1/3 and 2/3 of 255) */
  tg_image_grid_opts o = {.cols = 2, .scale = 2, .per_image_range = 1};
  for (int inv = 0; inv < 2; inv++) {
    o.invert = inv;
    ck_assert_msg(tg_plot_image_grid(path, t, &o, &err) == TG_OK, "%s", err.msg);
    cairo_surface_t *s = load_png(path, 10, 4);
    static const int want[4] = {0, 85, 170, 255};
    for (int img = 0; img < 2; img++)
      for (int k = 0; k < 4; k++) {
        uint32_t w = grey(inv ? 255 - want[k] : want[k]);
        int x0 = img * 6 + (k % 2) * 2, y0 = (k / 2) * 2;
        for (int dy = 0; dy < 2; dy++)
          for (int dx = 0; dx < 2; dx++)
            ck_assert_msg(px(s, x0 + dx, y0 + dy) == w,
                          "invert %d image %d pixel %d at (%d, %d): %06x, want %06x", inv, img, k,
                          x0 + dx, y0 + dy, px(s, x0 + dx, y0 + dy), w);
      }
    for (int y = 0; y < 4; y++)
      ck_assert_msg(px(s, 4, y) == WHITE && px(s, 5, y) == WHITE, "gap at row %d not white", y);
    cairo_surface_destroy(s);
  }
  /* one range for all: 0..13, so 2 -> round(255 * 2 / 13) = 39, 11 -> 216 */
  o = (tg_image_grid_opts){.cols = 2, .scale = 2};
  ck_assert_msg(tg_plot_image_grid(path, t, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_t *s = load_png(path, 10, 4);
  ck_assert_uint_eq(px(s, 0, 0), grey(0));
  ck_assert_uint_eq(px(s, 0, 2), grey(39));
  ck_assert_uint_eq(px(s, 8, 0), grey(216));
  ck_assert_uint_eq(px(s, 8, 2), grey(255));
  cairo_surface_destroy(s);
  tg_tensor_free(t);
}
END_TEST

START_TEST(test_grid_constant_nan_rgb) {
  tg_error err = {0};
  const char *path = tu_path("c.png");
  /* a constant image is mid-grey, inverted or not; NaN is magenta */
  double vals[4] = {5, 5, 5, NAN};
  tg_tensor *t = tensor_of((int64_t[]){1, 2, 2}, 3, vals);
  for (int inv = 0; inv < 2; inv++) {
    tg_image_grid_opts o = {.scale = 1, .per_image_range = 1, .invert = inv};
    ck_assert_msg(tg_plot_image_grid(path, t, &o, &err) == TG_OK, "%s", err.msg);
    cairo_surface_t *s = load_png(path, 2, 2);
    ck_assert_uint_eq(px(s, 0, 0), grey(128));
    ck_assert_uint_eq(px(s, 1, 0), grey(128));
    ck_assert_uint_eq(px(s, 1, 1), 0xff00ffu);
    cairo_surface_destroy(s);
  }
  tg_tensor_free(t);
  /* RGB (1, 3, 1, 2): one range over the channels, 0..1 */
  double rgb[6] = {0, 1, /* R */ 0, 0, /* G */ 1, 0 /* B */};
  t = tensor_of((int64_t[]){1, 3, 1, 2}, 4, rgb);
  tg_image_grid_opts o = {.scale = 1, .per_image_range = 1};
  ck_assert_msg(tg_plot_image_grid(path, t, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_t *s = load_png(path, 2, 1);
  ck_assert_uint_eq(px(s, 0, 0), 0x0000ffu);
  ck_assert_uint_eq(px(s, 1, 0), 0xff0000u);
  cairo_surface_destroy(s);
  tg_tensor_free(t);
}
END_TEST

START_TEST(test_grid_captions_title) {
  /* 4 images 3 x 3, cols 2, scale 3: 21 x 21 without text */
  double vals[36];
  for (int i = 0; i < 36; i++)
    vals[i] = i % 7;
  tg_tensor *t = tensor_of((int64_t[]){4, 3, 3}, 3, vals);
  const char *caps[4] = {"0", "1", "a caption far wider than its cell", NULL};
  tg_error err = {0};
  tg_image_grid_opts o = {.cols = 2, .scale = 3};
  ck_assert_msg(tg_plot_image_grid(tu_path("t0.png"), t, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_destroy(load_png(tu_path("t0.png"), 21, 21));
  o.captions = caps;
  ck_assert_msg(tg_plot_image_grid(tu_path("t1.png"), t, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_t *s = load_png(tu_path("t1.png"), 21, 21 + 2 * TG_GRID_CAPTION_PX);
  /* the second row of images starts below the first caption band and a gap */
  int y1 = 9 + TG_GRID_CAPTION_PX + 3;
  double v8 = vals[2 * 9]; /* image 2 (row 1, col 0), pixel (0, 0) */
  double lo = 0, hi = 6;   /* one range for all */
  ck_assert_uint_eq(px(s, 0, y1), grey((int)lround(255 * (v8 - lo) / (hi - lo))));
  cairo_surface_destroy(s);
  o.title = "filters";
  ck_assert_msg(tg_plot_image_grid(tu_path("t2.png"), t, &o, &err) == TG_OK, "%s", err.msg);
  cairo_surface_destroy(
      load_png(tu_path("t2.png"), 21, 21 + 2 * TG_GRID_CAPTION_PX + TG_GRID_TITLE_PX));
  o.captions = NULL;
  ck_assert_msg(tg_plot_image_grid(tu_path("t3.svg"), t, &o, &err) == TG_OK, "%s", err.msg);
  char buf[1024];
  read_head(tu_path("t3.svg"), buf, sizeof buf);
  ck_assert_msg(strstr(buf, "width=\"21px\"") && strstr(buf, "height=\"45px\""), "svg size: %.300s",
                buf);
  tg_tensor_free(t);
}
END_TEST

// ----------------------------------------------------------------------------
// Errors

START_TEST(test_errors_paths) {
  tg_figure *f = small_figure();
  tg_error err = {0};
  ck_assert_int_eq(tg_figure_save(f, tu_path("a.jpg"), &err), TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "a.jpg", ".png", ".svg");
  ck_assert(!file_exists(tu_path("a.jpg")));
  err = (tg_error){0};
  ck_assert_int_eq(tg_figure_save(f, tu_path("png"), &err), TG_ERR_ARG);
  err = (tg_error){0};
  const char *missing = tu_path("no/such/dir/a.png");
  ck_assert_int_eq(tg_figure_save(f, missing, &err), TG_ERR_IO);
  assert_err(err, TG_ERR_IO, missing, cairo_status_to_string(CAIRO_STATUS_WRITE_ERROR),
             strerror(ENOENT));
  /* a regular file where a directory should be */
  FILE *fp = fopen(tu_path("file"), "w");
  fclose(fp);
  err = (tg_error){0};
  const char *notdir = tu_path("file/a.svg");
  ck_assert_int_eq(tg_figure_save(f, notdir, &err), TG_ERR_IO);
  assert_err(err, TG_ERR_IO, notdir, strerror(ENOTDIR));
  /* a directory without write permission (root writes anyway: skipped) */
  if (geteuid() != 0) {
    const char *ro = tu_path("ro");
    ck_assert_int_eq(mkdir(ro, 0500), 0);
    err = (tg_error){0};
    const char *p = tu_path("ro/a.png");
    ck_assert_int_eq(tg_figure_save(f, p, &err), TG_ERR_IO);
    assert_err(err, TG_ERR_IO, p, strerror(EACCES));
    chmod(ro, 0700);
  }
  tg_figure_free(f);
  err = (tg_error){0};
  ck_assert_int_eq(tg_figure_save(NULL, tu_path("a.png"), &err), TG_ERR_NULL);
}
END_TEST

/* Bars of a category chart: each from 0 up to its height, in palette
 * order, and ticks of the caller's choosing (their labels can only be
 * seen in the picture, so this checks that they draw and that bad ones
 * are refused by name). */
START_TEST(test_bars_and_xticks) {
  tg_figure *f = tg_figure_new(1, 1, 300, 220);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_bar(ax, 0, 2.5, 0.5, "a");
  tg_axes_bar(ax, 1, 0.5, 0.5, NULL);
  tg_axes_xticks(ax, (double[]){0, 1}, (const char *[]){"first", "second"}, 2);
  tg_axes_xlim(ax, -0.5, 1.5);
  tg_axes_ylim(ax, 0, 3);
  tg_error err = {0};
  const char *path = tu_path("bars.png");
  ck_assert_msg(tg_figure_save(f, path, &err) == TG_OK, "%s", err.msg);
  tg_figure_free(f);
  cairo_surface_t *s = load_png(path, 300, 220);
  box fr = find_frame(s);
  int xa = fr.l + (fr.r - fr.l) / 4, xb = fr.l + 3 * (fr.r - fr.l) / 4;
  int y_low = fr.b - (fr.b - fr.t) / 12;     /* y = 0.25 */
  int y_high = fr.b - 5 * (fr.b - fr.t) / 6; /* y = 2.5 - a little */
  int y_mid = fr.b - (fr.b - fr.t) / 2;      /* y = 1.5 */
  ck_assert_msg(px(s, xa, y_high + 2) == BLUE, "bar 1 near its top: %06x", px(s, xa, y_high + 2));
  ck_assert_msg(px(s, xa, y_high - 3) == WHITE, "above bar 1: %06x", px(s, xa, y_high - 3));
  ck_assert_msg(px(s, xb, y_low) != WHITE && px(s, xb, y_low) != BLUE,
                "bar 2 is the next colour: %06x", px(s, xb, y_low));
  ck_assert_msg(px(s, xb, y_mid) == WHITE, "above bar 2: %06x", px(s, xb, y_mid));
  /* between the bars (x = 0.5) nothing */
  ck_assert_msg(px(s, (fr.l + fr.r) / 2, y_low) != BLUE, "between the bars: %06x",
                px(s, (fr.l + fr.r) / 2, y_low));
  cairo_surface_destroy(s);

  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_xticks(tg_figure_axes(f, 0, 0), (double[]){1, 0}, (const char *[]){"a", "b"}, 2);
  ck_assert_msg(strstr(tg_figure_error(f), "tg_axes_xticks") &&
                    strstr(tg_figure_error(f), "increasing"),
                "%s", tg_figure_error(f));
  tg_figure_free(f);
  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_xticks(tg_figure_axes(f, 0, 0), (double[]){0, 1}, (const char *[]){"a", NULL}, 2);
  ck_assert_msg(strstr(tg_figure_error(f), "no label"), "%s", tg_figure_error(f));
  tg_figure_free(f);
  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_xticks(tg_figure_axes(f, 0, 0), NULL, NULL, 65);
  ck_assert_msg(strstr(tg_figure_error(f), "65 ticks"), "%s", tg_figure_error(f));
  tg_figure_free(f);
  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_bar(tg_figure_axes(f, 0, 0), 0, NAN, 1, "nan bar");
  ck_assert_msg(strstr(tg_figure_error(f), "tg_axes_bar") && strstr(tg_figure_error(f), "nan bar"),
                "%s", tg_figure_error(f));
  tg_figure_free(f);
}
END_TEST

START_TEST(test_errors_figure) {
  tg_error err = {0};
  tg_figure *f = tg_figure_new(0, 2, 100, 100);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(tg_figure_status(f), TG_ERR_ARG);
  ck_assert_ptr_null(tg_figure_axes(f, 0, 0));
  ck_assert_int_eq(tg_figure_save(f, tu_path("x.png"), &err), TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "tg_figure_new", "0 x 2");
  ck_assert(!file_exists(tu_path("x.png")));
  tg_figure_free(f);

  f = tg_figure_new(1, 1, 100, 5);
  err = (tg_error){0};
  ck_assert_int_eq(tg_figure_save(f, tu_path("x.png"), &err), TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "100 x 5");
  tg_figure_free(f);

  /* an empty series names itself; the first error sticks */
  f = tg_figure_new(1, 2, 200, 100);
  tg_axes *ax = tg_figure_axes(f, 0, 1);
  double y[1] = {1};
  tg_axes_line(ax, NULL, y, 0, "train acc", NULL);
  tg_axes_xlim(ax, 1, 0);
  tg_axes_line(tg_figure_axes(f, 5, 5), NULL, y, 1, NULL, NULL);
  err = (tg_error){0};
  ck_assert_int_eq(tg_figure_save(f, tu_path("x.png"), &err), TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "tg_axes_line", "panel (0, 1)", "train acc", "n = 0");
  tg_figure_free(f);

  /* one error each, named */
  f = tg_figure_new(1, 1, 200, 100);
  ax = tg_figure_axes(f, 0, 0);
  ck_assert_ptr_null(tg_figure_axes(f, 1, 0));
  ck_assert_int_eq(tg_figure_status(f), TG_ERR_ARG);
  ck_assert_msg(strstr(tg_figure_error(f), "panel (1, 0)"), "%s", tg_figure_error(f));
  tg_figure_free(f);

  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_hist(tg_figure_axes(f, 0, 0), y, 1, 0, 0, 1, "acts", 0);
  ck_assert_msg(strstr(tg_figure_error(f), "bins 0") && strstr(tg_figure_error(f), "acts"), "%s",
                tg_figure_error(f));
  tg_figure_free(f);

  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_contour(tg_figure_axes(f, 0, 0), y, 1, 1, 0, 1, 0, 1, NULL, 0);
  ck_assert_msg(strstr(tg_figure_error(f), "grid 1 x 1"), "%s", tg_figure_error(f));
  tg_figure_free(f);

  f = tg_figure_new(1, 1, 200, 100);
  ax = tg_figure_axes(f, 0, 0);
  tg_axes_ylog(ax, 1);
  tg_axes_ylim(ax, 0, 1);
  ck_assert_msg(strstr(tg_figure_error(f), "log"), "%s", tg_figure_error(f));
  tg_figure_free(f);

  f = tg_figure_new(1, 1, 200, 100);
  tg_axes_line(tg_figure_axes(f, 0, 0), NULL, NULL, 3, NULL, NULL);
  ck_assert_int_eq(tg_figure_status(f), TG_ERR_NULL);
  ck_assert_msg(strstr(tg_figure_error(f), "y is NULL"), "%s", tg_figure_error(f));
  tg_figure_free(f);

  /* NULL figure and axes are no-ops */
  tg_axes_line(NULL, NULL, y, 1, NULL, NULL);
  tg_figure_free(NULL);
  ck_assert_int_eq(tg_figure_status(NULL), TG_ERR_NULL); /* as tg_tape_status(NULL) */
  ck_assert_str_eq(tg_figure_error(NULL), "figure is NULL");
}
END_TEST

START_TEST(test_errors_grid) {
  tg_error err = {0};
  double vals[16] = {0};
  const char *path = tu_path("e.png");
  tg_tensor *t2 = tensor_of((int64_t[]){4, 4}, 2, vals);
  ck_assert_int_eq(tg_plot_image_grid(path, t2, NULL, &err), TG_ERR_SHAPE);
  assert_err(err, TG_ERR_SHAPE, "(4, 4)", "(N, H, W)", "e.png");
  tg_tensor_free(t2);

  err = (tg_error){0};
  tg_tensor *t4 = tensor_of((int64_t[]){2, 2, 2, 2}, 4, vals);
  ck_assert_int_eq(tg_plot_image_grid(path, t4, NULL, &err), TG_ERR_SHAPE);
  assert_err(err, TG_ERR_SHAPE, "(2, 2, 2, 2)", "(N, 3, H, W)");
  tg_tensor_free(t4);

  /* zero images: a hand-made (0, 2, 2) tensor */
  tg_tensor empty = {.data = NULL, .shape = {0, 2, 2}, .numel = 0, .ndim = 3};
  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(path, &empty, NULL, &err), TG_ERR_SHAPE);
  assert_err(err, TG_ERR_SHAPE, "no images", "(0, 2, 2)");

  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(path, NULL, NULL, &err), TG_ERR_NULL);
  assert_err(err, TG_ERR_NULL, "images is NULL");

  tg_tensor *t = tensor_of((int64_t[]){1, 4, 4}, 3, vals);
  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(tu_path("e.gif"), t, NULL, &err), TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "e.gif", ".png");
  err = (tg_error){0};
  const char *missing = tu_path("none/e.png");
  ck_assert_int_eq(tg_plot_image_grid(missing, t, NULL, &err), TG_ERR_IO);
  assert_err(err, TG_ERR_IO, missing, strerror(ENOENT));
  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(path, t, &(tg_image_grid_opts){.scale = 65}, &err),
                   TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "scale 65");
  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(path, t, &(tg_image_grid_opts){.cols = -1}, &err),
                   TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "cols -1");
  tg_tensor_free(t);

  /* too big a picture: 64 images of 100 x 100 at scale 64 */
  tg_tensor big = {.data = (tg_real[1]){0}, .shape = {64, 100, 100}, .numel = 640000, .ndim = 3};
  err = (tg_error){0};
  ck_assert_int_eq(tg_plot_image_grid(path, &big, &(tg_image_grid_opts){.scale = 64}, &err),
                   TG_ERR_ARG);
  assert_err(err, TG_ERR_ARG, "at most 16384");
  ck_assert(!file_exists(path));
}
END_TEST

static Suite *plot_suite(void) {
  Suite *s = suite_create("plot");
  TCase *tc = tcase_create("files");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, test_png_written);
  tcase_add_test(tc, test_svg_written);
  tcase_add_test(tc, test_every_kind_draws);
  tcase_add_test(tc, test_line_lands_on_row);
  tcase_add_loop_test(tc, test_hist_bar_heights, 0, 2);
  tcase_add_test(tc, test_legend_avoids_data);
  tcase_add_test(tc, test_grid_size);
  tcase_add_test(tc, test_grid_levels);
  tcase_add_test(tc, test_grid_constant_nan_rgb);
  tcase_add_test(tc, test_grid_captions_title);
  tcase_add_test(tc, test_errors_paths);
  tcase_add_test(tc, test_bars_and_xticks);
  tcase_add_test(tc, test_errors_figure);
  tcase_add_test(tc, test_errors_grid);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(plot_suite)
