/* test_augment.c — crops, flips and erasing (data/augment.h): every
 * augmented image is one of the crops/flips built here by a plain loop (one
 * of them also written out by hand), all of them occur about equally
 * often; an erased image differs from the unerased one in exactly one
 * filled rectangle of random values whose size, shape, place and
 * frequency are what the spec says; the same key gives the same picture,
 * and a batch does not depend on the thread count. Spec parsing, good and
 * bad.
 */
#include <omp.h>

#include "testutil.h"

enum { R = 3, C = 4 };

/* The image 1..12, row by row: (R, C). */
static void image(tg_real *x) {
  for (int i = 0; i < R * C; i++)
    x[i] = (tg_real)(i + 1);
}

/* The crop at offset (dy, dx) of the zero-padded image, then mirrored when
 * flip: out(r, c) = x(r + dy, c' + dx), c' = C-1-c if flip else c. */
static void shifted(const tg_real *x, int dy, int dx, int flip, tg_real *out) {
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      int sr = r + dy, sc = (flip ? C - 1 - c : c) + dx;
      out[r * C + c] = sr >= 0 && sr < R && sc >= 0 && sc < C ? x[sr * C + sc] : 0;
    }
}

START_TEST(test_reference_by_hand) {
  /* The loop above against a picture drawn on paper: pad 1, crop at
   * (dy, dx) = (-1, +1), i.e. one row down, one column left:
   *   1  2  3  4        0  0  0  0
   *   5  6  7  8   ->   2  3  4  0
   *   9 10 11 12        6  7  8  0
   * and the same mirrored: 0 0 0 0 / 0 4 3 2 / 0 8 7 6. */
  tg_real x[R * C], out[R * C];
  image(x);
  const tg_real want[R * C] = {0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0};
  const tg_real want_flip[R * C] = {0, 0, 0, 0, 0, 4, 3, 2, 0, 8, 7, 6};
  shifted(x, -1, 1, 0, out);
  for (int i = 0; i < R * C; i++)
    ck_assert_msg(out[i] == want[i], "at %d: %g", i, (double)out[i]);
  shifted(x, -1, 1, 1, out);
  for (int i = 0; i < R * C; i++)
    ck_assert_msg(out[i] == want_flip[i], "flipped, at %d: %g", i, (double)out[i]);
}
END_TEST

/* Over 3600 keys, each output is exactly one candidate of the spec, and
 * each candidate turns up 3600/n times give or take 40%. */
static void check_spread(tg_augment a) {
  tg_real x[R * C], out[R * C], cand[50][R * C];
  image(x);
  int n = 0, p = a.crop_pad;
  for (int dy = -p; dy <= p; dy++)
    for (int dx = -p; dx <= p; dx++)
      for (int f = 0; f <= a.flip; f++)
        shifted(x, dy, dx, f, cand[n++]);
  int seen[50] = {0};
  const int keys = 3600;
  for (int k = 0; k < keys; k++) {
    tg_augment_image(&a, x, out, R, C, tg_augment_key(42, k));
    int hit = -1;
    for (int j = 0; j < n && hit < 0; j++)
      if (memcmp(out, cand[j], sizeof out) == 0)
        hit = j;
    ck_assert_msg(hit >= 0, "key %d: not a crop/flip of the image", k);
    seen[hit]++;
  }
  for (int j = 0; j < n; j++)
    ck_assert_msg(seen[j] > 0.6 * keys / n && seen[j] < 1.4 * keys / n,
                  "candidate %d of %d seen %d times in %d", j, n, seen[j], keys);
}

START_TEST(test_crop_and_flip_spread) {
  check_spread((tg_augment){.crop_pad = 1});
  check_spread((tg_augment){.flip = 1});
  check_spread((tg_augment){.crop_pad = 2, .flip = 1});
  /* Nothing asked: the image itself. */
  tg_real x[R * C], out[R * C];
  image(x);
  tg_augment_image(&(tg_augment){0}, x, out, R, C, 7);
  ck_assert(memcmp(x, out, sizeof x) == 0);
}
END_TEST

START_TEST(test_keys) {
  tg_augment a = {.crop_pad = 2, .flip = 1};
  tg_real x[R * C], o1[R * C], o2[R * C];
  image(x);
  tg_augment_image(&a, x, o1, R, C, tg_augment_key(5, 17));
  tg_augment_image(&a, x, o2, R, C, tg_augment_key(5, 17));
  ck_assert(memcmp(o1, o2, sizeof o1) == 0);
  ck_assert(tg_augment_key(5, 17) == tg_augment_key(5, 17));
  ck_assert(tg_augment_key(5, 17) != tg_augment_key(5, 18));
  ck_assert(tg_augment_key(5, 17) != tg_augment_key(6, 17));
  /* Neighbouring samples draw differently: over 100 pairs, at most a
   * few of 50 candidates' coincidences (1/50 each). */
  int same = 0;
  for (int k = 0; k < 100; k++) {
    tg_augment_image(&a, x, o1, R, C, tg_augment_key(5, k));
    tg_augment_image(&a, x, o2, R, C, tg_augment_key(5, k + 1));
    same += memcmp(o1, o2, sizeof o1) == 0;
  }
  ck_assert_msg(same < 10, "%d of 100 neighbours alike", same);
}
END_TEST

/* ---------------------------------------------------------------------------
 * Random erasing, on 28x28 images whose pixels are 2, 3, ... or the crop's
 * zero padding, never in [0, 1) apart from 0: the erased pixels are found
 * by comparing with the same key's picture without erase. */

enum { S = 28 };

typedef struct rect {
  int top, left, h, w;
} rect;

/* Where after differs from before: must be one filled rectangle of values
 * in (0, 1) (0 has probability 2^-53), or nothing (h = 0). Fails the test
 * otherwise, naming the key. */
static rect erased_rect(const tg_real *before, const tg_real *after, int key) {
  rect b = {S, S, 0, 0};
  int bottom = -1, right = -1, changed = 0;
  for (int r = 0; r < S; r++)
    for (int c = 0; c < S; c++)
      if (before[r * S + c] != after[r * S + c]) {
        changed++;
        b.top = r < b.top ? r : b.top;
        b.left = c < b.left ? c : b.left;
        bottom = r > bottom ? r : bottom;
        right = c > right ? c : right;
      }
  if (!changed)
    return (rect){0, 0, 0, 0};
  b.h = bottom - b.top + 1;
  b.w = right - b.left + 1;
  ck_assert_msg(changed == b.h * b.w, "key %d: %d pixels changed, not a %dx%d rectangle", key,
                changed, b.h, b.w);
  for (int r = b.top; r <= bottom; r++)
    for (int c = b.left; c <= right; c++) {
      double v = (double)after[r * S + c];
      ck_assert_msg(v > 0 && v < 1, "key %d: fill %g at (%d, %d) not in (0, 1)", key, v, r, c);
    }
  return b;
}

static void big_image(tg_real *x) {
  for (int i = 0; i < S * S; i++)
    x[i] = (tg_real)(i + 2);
}

START_TEST(test_erase_rectangles) {
  /* Probability 1, after crop:2 and flip: every key erases one rectangle
   * (10 failed tries in a row are about 1e-15 likely at 28x28), leaves the
   * crop/flip of the key as it was elsewhere, and the rectangle is
   * 2%..40% of the image with h/w in [0.3, 1/0.3], up to the rounding of
   * h and w to whole pixels (|h - sqrt(s·ratio)| <= 0.5, likewise w). */
  const tg_augment with = {.crop_pad = 2, .flip = 1, .erase = 1},
                   without = {.crop_pad = 2, .flip = 1};
  tg_real x[S * S], plain[S * S], out[S * S];
  big_image(x);
  const int keys = 2000;
  int tall = 0, wide = 0, at_top = 0, at_bottom = 0, at_left = 0, at_right = 0, constant = 0;
  double area_sum = 0, fill_sum = 0, fill_n = 0;
  for (int k = 0; k < keys; k++) {
    uint64_t key = tg_augment_key(11, k);
    tg_augment_image(&without, x, plain, S, S, key);
    tg_augment_image(&with, x, out, S, S, key);
    rect b = erased_rect(plain, out, k);
    ck_assert_msg(b.h > 0, "key %d: nothing erased at probability 1", k);
    const double h = b.h, w = b.w, A = S * S;
    ck_assert_msg((h + 0.5) * (w + 0.5) >= 0.02 * A && (h - 0.5) * (w - 0.5) <= 0.4 * A,
                  "key %d: %dx%d is not 2%%..40%% of the image", k, b.h, b.w);
    ck_assert_msg((h + 0.5) / (w - 0.5) >= 0.3 && (h - 0.5) / (w + 0.5) <= 1 / 0.3,
                  "key %d: %dx%d has an aspect ratio outside [0.3, 3.33]", k, b.h, b.w);
    tall += b.h > b.w;
    wide += b.h < b.w;
    at_top += b.top == 0;
    at_bottom += b.top + b.h == S;
    at_left += b.left == 0;
    at_right += b.left + b.w == S;
    area_sum += h * w / A;
    int same = 1;
    for (int r = b.top; r < b.top + b.h; r++)
      for (int c = b.left; c < b.left + b.w; c++) {
        fill_sum += (double)out[r * S + c];
        fill_n++;
        same &= out[r * S + c] == out[b.top * S + b.left];
      }
    constant += same;
  }
  /* Log-uniform ratios: as many tall as wide; the mean area near
   * (0.02 + 0.4) / 2 (a little less: the biggest, most elongated ones do
   * not fit and are drawn again); placed anywhere, edges included; filled
   * with uniform values, mean 1/2, never one constant. */
  ck_assert_msg(tall > 0.4 * (tall + wide) && wide > 0.4 * (tall + wide), "%d tall, %d wide", tall,
                wide);
  ck_assert_msg(area_sum / keys > 0.17 && area_sum / keys < 0.23, "mean area %g", area_sum / keys);
  ck_assert_msg(at_top > 20 && at_bottom > 20 && at_left > 20 && at_right > 20,
                "at the edges: top %d bottom %d left %d right %d", at_top, at_bottom, at_left,
                at_right);
  ck_assert_msg(fabs(fill_sum / fill_n - 0.5) < 0.01, "mean fill %g", fill_sum / fill_n);
  ck_assert_msg(constant == 0, "%d rectangles filled with one value", constant);
}
END_TEST

START_TEST(test_erase_probability) {
  /* erase:P erases about P of the keys (2000 keys: P·2000 ± 5 sigma). */
  tg_real x[S * S], out[S * S];
  big_image(x);
  const double ps[] = {0.5, 0.25};
  for (int i = 0; i < 2; i++) {
    tg_augment a = {.erase = ps[i]};
    int erased = 0;
    for (int k = 0; k < 2000; k++) {
      tg_augment_image(&a, x, out, S, S, tg_augment_key(3, k));
      erased += erased_rect(x, out, k).h > 0;
    }
    double sd = sqrt(2000 * ps[i] * (1 - ps[i]));
    ck_assert_msg(fabs(erased - 2000 * ps[i]) < 5 * sd, "erase:%g erased %d of 2000", ps[i],
                  erased);
  }
}
END_TEST

/* A batch of 400 28x28 images, big enough to run in parallel, is the same
 * at 1, 2 and 3 threads and sample by sample the single-image function. */
START_TEST(test_batch_threads) {
  enum { N = 400 };
  tg_real *src = malloc(sizeof(tg_real) * N * S * S), *ref = malloc(sizeof(tg_real) * N * S * S),
          *got = malloc(sizeof(tg_real) * N * S * S);
  int64_t index[N];
  ck_assert(src && ref && got);
  tg_rng rng;
  tg_rng_seed(&rng, 3);
  for (int64_t i = 0; i < (int64_t)N * S * S; i++)
    src[i] = (tg_real)tg_rng_uniform(&rng);
  for (int i = 0; i < N; i++)
    index[i] = (i * 37) % 1000;
  tg_augment a = {.crop_pad = 2, .flip = 1, .erase = 0.5};
  for (int i = 0; i < N; i++)
    tg_augment_image(&a, src + i * S * S, ref + i * S * S, S, S, tg_augment_key(99, index[i]));
  for (int t = 1; t <= 3; t++) {
    omp_set_num_threads(t);
    memset(got, 0, sizeof(tg_real) * N * S * S);
    tg_augment_batch(&a, src, got, N, S, S, 99, index);
    ck_assert_msg(memcmp(got, ref, sizeof(tg_real) * N * S * S) == 0, "%d threads differ", t);
  }
  free(src);
  free(ref);
  free(got);
}
END_TEST

START_TEST(test_parse) {
  tg_augment a;
  tg_error err = {0};
  char buf[64];
  const struct {
    const char *spec;
    int pad, flip;
    double erase;
    const char *back;
  } good[] = {{"crop:2", 2, 0, 0, "crop:2"},
              {"flip", 0, 1, 0, "flip"},
              {"crop:2,flip", 2, 1, 0, "crop:2,flip"},
              {"flip,crop:4", 4, 1, 0, "crop:4,flip"},
              {"erase", 0, 0, 0.5, "erase:0.5"},
              {"crop:2,flip,erase", 2, 1, 0.5, "crop:2,flip,erase:0.5"},
              {"erase:0.25,flip", 0, 1, 0.25, "flip,erase:0.25"},
              {"erase:1", 0, 0, 1, "erase:1"},
              {"erase:0.1,crop:1", 1, 0, 0.1, "crop:1,erase:0.1"},
              {"erase:0.123456789", 0, 0, 0.123456789, "erase:0.123456789"}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ck_assert_int_eq(tg_augment_parse(good[i].spec, &a, &err), TG_OK);
    ck_assert_int_eq(a.crop_pad, good[i].pad);
    ck_assert_int_eq(a.flip, good[i].flip);
    ck_assert_msg(a.erase == good[i].erase, "'%s': erase %g", good[i].spec, a.erase);
    ck_assert_int_eq(tg_augment_format(&a, buf, sizeof buf), TG_OK);
    ck_assert_str_eq(buf, good[i].back);
    ck_assert_int_eq(tg_augment_active(&a), 1);
  }
  /* Each bad spec, and the part of it the message must name. */
  const struct {
    const char *spec, *named;
  } bad[] = {{"", "empty"},
             {"crop", "crop"},
             {"crop:", "crop:"},
             {"crop:0", "crop:0"},
             {"crop:65", "crop:65"},
             {"crop:2x", "crop:2x"},
             {"rotate", "rotate"},
             {"flip,flip", "flip"},
             {"crop:2,", "crop:2,"},
             {",flip", ",flip"},
             {"crop:1,crop:2", "crop:2"},
             {"erase:", "erase:"},
             {"erase:0", "erase:0"},
             {"erase:-0.5", "erase:-0.5"},
             {"erase:1.5", "erase:1.5"},
             {"erase:0.5x", "erase:0.5x"},
             {"erase:nan", "erase:nan"},
             {"erase:x", "erase:x"},
             {"erasee", "erasee"},
             {"erase,erase:0.3", "erase:0.3"},
             {"crop:2,flip,erase:2", "erase:2"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tg_error e = {0};
    ck_assert_msg(tg_augment_parse(bad[i].spec, &a, &e) == TG_ERR_ARG, "'%s' accepted",
                  bad[i].spec);
    ck_assert_msg(strstr(e.msg, "augment") && strstr(e.msg, bad[i].named),
                  "'%s': the message '%s' does not name '%s'", bad[i].spec, e.msg, bad[i].named);
  }
  ck_assert_int_eq(tg_augment_format(&(tg_augment){0}, buf, sizeof buf), TG_OK);
  ck_assert_str_eq(buf, "none");
  ck_assert_int_eq(tg_augment_active(&(tg_augment){0}), 0);
  ck_assert_int_eq(tg_augment_format(&(tg_augment){.crop_pad = 2, .flip = 1}, buf, 5), TG_ERR_ARG);
  ck_assert_int_eq(tg_augment_format(&(tg_augment){.flip = 1, .erase = 0.5}, buf, 14),
                   TG_ERR_ARG); /* "flip,erase:0.5" needs 15 with its NUL */
  ck_assert_int_eq(tg_augment_format(&(tg_augment){.flip = 1, .erase = 0.5}, buf, 15), TG_OK);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("augment");
  TCase *tc = tcase_create("augment");
  tcase_add_test(tc, test_reference_by_hand);
  tcase_add_test(tc, test_crop_and_flip_spread);
  tcase_add_test(tc, test_keys);
  tcase_add_test(tc, test_erase_rectangles);
  tcase_add_test(tc, test_erase_probability);
  tcase_add_test(tc, test_batch_threads);
  tcase_add_test(tc, test_parse);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
