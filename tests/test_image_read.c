/* test_image_read.c — PNG files made into input images (plot/image_read.h):
 * area averaging against sums worked out by hand, gray conversion, the
 * square padding, alpha over the background, inversion, and corrupt or
 * missing files. The PNGs are drawn here, pixel by pixel, with cairo.
 */
#include <cairo.h>

#include "testutil.h"

#include "image_read.h"

static void setup(void) { tu_dir_make("image_read"); }
static void teardown(void) { tu_rm_tree(tu_dir()); }

START_TEST(test_area_average_by_hand) {
  /* 3x3 to 2x2: each output pixel covers 1.5 x 1.5 source pixels: one
   * whole, two halves and a quarter, area 2.25. Top left:
   * (1·0 + ½·30 + ½·90 + ¼·120) / 2.25 = 90 / 2.25 = 40; top right
   * (½·30 + 1·60 + ¼·120 + ½·150) / 2.25 = 180 / 2.25 = 80; bottom left
   * (½·90 + ¼·120 + 1·180 + ½·210) / 2.25 = 160; bottom right
   * (¼·120 + ½·150 + ½·210 + 1·240) / 2.25 = 450 / 2.25 = 200. */
  const double src[9] = {0, 30, 60, 90, 120, 150, 180, 210, 240};
  const double want[4] = {40, 80, 160, 200};
  double dst[4];
  tg_image_area_average(src, 3, 3, dst, 2, 2);
  for (int i = 0; i < 4; i++)
    ck_assert_msg(fabs(dst[i] - want[i]) < 1e-12, "pixel %d: %g, want %g", i, dst[i], want[i]);
  /* 2x4 to 1x2: the means of the two 2x2 halves. */
  const double s2[8] = {1, 2, 10, 20, 3, 4, 30, 40};
  tg_image_area_average(s2, 2, 4, dst, 1, 2);
  ck_assert(fabs(dst[0] - 2.5) < 1e-12 && fabs(dst[1] - 25) < 1e-12);
  /* Enlarging 1x1 to 2x2 repeats it. */
  tg_image_area_average((double[]){7}, 1, 1, dst, 2, 2);
  for (int i = 0; i < 4; i++)
    ck_assert(dst[i] == 7);
}
END_TEST

/* Writes a w x h PNG of format fmt whose pixel (r, c) is px(r, c) (native
 * 0xAARRGGBB, premultiplied; A8: the alpha byte). */
static const char *write_png(const char *name, cairo_format_t fmt, int w, int h,
                             uint32_t (*px)(int r, int c)) {
  cairo_surface_t *s = cairo_image_surface_create(fmt, w, h);
  ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  cairo_surface_flush(s);
  unsigned char *d = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++) {
      uint32_t v = px(r, c);
      if (fmt == CAIRO_FORMAT_A8)
        d[r * stride + c] = (unsigned char)v;
      else
        memcpy(d + r * stride + 4 * c, &v, 4);
    }
  cairo_surface_mark_dirty(s);
  const char *path = tu_path(name);
  ck_assert_int_eq(cairo_surface_write_to_png(s, path), CAIRO_STATUS_SUCCESS);
  cairo_surface_destroy(s);
  return path;
}

static uint32_t left_white(int r, int c) { return (void)r, c < 28 ? 0xffffffffu : 0xff000000u; }
static uint32_t orange(int r, int c) { return (void)r, (void)c, 0xffc86432u; } /* 200,100,50 */
static uint32_t all_white(int r, int c) { return (void)r, (void)c, 0xffffffffu; }
static uint32_t clear(int r, int c) { return (void)r, (void)c, 0; }
static uint32_t half_black(int r, int c) { return (void)r, (void)c, 0x80000000u; }
static uint32_t alpha_ramp(int r, int c) { return (uint32_t)(r * 4 + c) * 17; }

static void read_ok(const char *path, int64_t rows, int64_t cols, int invert, uint8_t *out) {
  tg_error err = {0};
  ck_assert_msg(tg_image_read_png(path, rows, cols, invert, out, &err) == TG_OK, "%s", err.msg);
}

START_TEST(test_png_conversion) {
  uint8_t out[28 * 28];
  /* 56x56, left half white: 28x28 with the left 14 columns 255. */
  read_ok(write_png("half.png", CAIRO_FORMAT_RGB24, 56, 56, left_white), 28, 28, 0, out);
  for (int i = 0; i < 28 * 28; i++)
    ck_assert_int_eq(out[i], i % 28 < 14 ? 255 : 0);
  /* Gray of (200, 100, 50): 0.299·200 + 0.587·100 + 0.114·50 = 59.8 +
   * 58.7 + 5.7 = 124.2, so 124; inverted 130.8, so 131. */
  const char *o = write_png("orange.png", CAIRO_FORMAT_RGB24, 10, 10, orange);
  read_ok(o, 4, 4, 0, out);
  for (int i = 0; i < 16; i++)
    ck_assert_int_eq(out[i], 124);
  read_ok(o, 4, 4, 1, out);
  for (int i = 0; i < 16; i++)
    ck_assert_int_eq(out[i], 131);
  /* 20 wide, 10 high, white: padded to 20x20 with black rows 0-4 and
   * 15-19; each of 2x2 output pixels sees 5 white rows of 10: 127.5,
   * rounded to 128. */
  read_ok(write_png("wide.png", CAIRO_FORMAT_RGB24, 20, 10, all_white), 2, 2, 0, out);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(out[i], 128);
  /* Transparent: the background, which ends black either way. */
  const char *c = write_png("clear.png", CAIRO_FORMAT_ARGB32, 8, 8, clear);
  read_ok(c, 2, 2, 0, out);
  ck_assert(out[0] == 0 && out[3] == 0);
  read_ok(c, 2, 2, 1, out);
  ck_assert(out[0] == 0 && out[3] == 0);
  /* Black ink at alpha 128/255 over white, inverted: the pixel is
   * 255·(1 − 128/255) = 127 gray, inverted 128. */
  read_ok(write_png("ink.png", CAIRO_FORMAT_ARGB32, 8, 8, half_black), 2, 2, 1, out);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(out[i], 128);
  /* A8 (alpha only): white ink, pixel (r, c) = 17·(4r + c); 4x4 to 2x2,
   * top left = 17·(0 + 1 + 4 + 5)/4 = 42.5, so 43 (ties round up). */
  read_ok(write_png("a8.png", CAIRO_FORMAT_A8, 4, 4, alpha_ramp), 2, 2, 0, out);
  ck_assert_int_eq(out[0], 43);
  ck_assert_int_eq(out[3], (int)floor(17 * (10 + 11 + 14 + 15) / 4.0 + 0.5));
}
END_TEST

START_TEST(test_bad_files) {
  uint8_t out[4];
  tg_error err = {0};
  const char *missing = tu_path("missing.png");
  ck_assert_int_eq(tg_image_read_png(missing, 2, 2, 0, out, &err), TG_ERR_IO);
  ck_assert_msg(strstr(err.msg, "missing.png"), "%s", err.msg);
  /* A PNG signature and then rubbish; and a text file. */
  const char *bad = tu_path("bad.png");
  FILE *f = fopen(bad, "wb");
  ck_assert_ptr_nonnull(f);
  fputs("\x89PNG\r\n\x1a\nthis is not the rest of a PNG file", f);
  fclose(f);
  tg_error e2 = {0};
  ck_assert_int_eq(tg_image_read_png(bad, 2, 2, 0, out, &e2), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e2.msg, "bad.png"), "%s", e2.msg);
  /* A real PNG cut in half. */
  const char *whole = write_png("whole.png", CAIRO_FORMAT_RGB24, 50, 50, left_white);
  const char *cut = tu_path("cut.png");
  FILE *in = fopen(whole, "rb"), *o = fopen(cut, "wb");
  ck_assert(in && o);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, in);
  fwrite(buf, 1, n / 2, o);
  fclose(in);
  fclose(o);
  tg_error e3 = {0};
  ck_assert_int_ne(tg_image_read_png(cut, 2, 2, 0, out, &e3), TG_OK);
  ck_assert_msg(strstr(e3.msg, "cut.png"), "%s", e3.msg);
  tg_error e4 = {0};
  ck_assert_int_eq(tg_image_read_png(whole, 0, 2, 0, out, &e4), TG_ERR_ARG);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("image_read");
  TCase *tc = tcase_create("image_read");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_area_average_by_hand);
  tcase_add_test(tc, test_png_conversion);
  tcase_add_test(tc, test_bad_files);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
