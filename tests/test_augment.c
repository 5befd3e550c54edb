/* test_augment.c — crops and flips (data/augment.h): every augmented image
 * is one of the crops/flips built here by a plain loop (one of them also
 * written out by hand), all of them occur about equally often, the same
 * key gives the same picture, and a batch does not depend on the thread
 * count. Spec parsing, good and bad.
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

/* A batch of 300 28x28 images, big enough to run in parallel, is the same
 * at 1, 2 and 3 threads and sample by sample the single-image function. */
START_TEST(test_batch_threads) {
  enum { N = 400, S = 28 };
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
  tg_augment a = {.crop_pad = 2, .flip = 1};
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
  char buf[32];
  const struct {
    const char *spec;
    int pad, flip;
    const char *back;
  } good[] = {{"crop:2", 2, 0, "crop:2"},
              {"flip", 0, 1, "flip"},
              {"crop:2,flip", 2, 1, "crop:2,flip"},
              {"flip,crop:4", 4, 1, "crop:4,flip"}};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(tg_augment_parse(good[i].spec, &a, &err), TG_OK);
    ck_assert_int_eq(a.crop_pad, good[i].pad);
    ck_assert_int_eq(a.flip, good[i].flip);
    ck_assert_int_eq(tg_augment_format(&a, buf, sizeof buf), TG_OK);
    ck_assert_str_eq(buf, good[i].back);
  }
  const char *bad[] = {"",       "crop",      "crop:",   "crop:0", "crop:65",      "crop:2x",
                       "rotate", "flip,flip", "crop:2,", ",flip",  "crop:1,crop:2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tg_error e = {0};
    ck_assert_msg(tg_augment_parse(bad[i], &a, &e) == TG_ERR_ARG, "'%s' accepted", bad[i]);
    ck_assert_msg(strstr(e.msg, "augment"), "%s", e.msg);
  }
  ck_assert_int_eq(tg_augment_format(&(tg_augment){0}, buf, sizeof buf), TG_OK);
  ck_assert_str_eq(buf, "none");
  ck_assert_int_eq(tg_augment_format(&(tg_augment){.crop_pad = 2, .flip = 1}, buf, 5), TG_ERR_ARG);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("augment");
  TCase *tc = tcase_create("augment");
  tcase_add_test(tc, test_reference_by_hand);
  tcase_add_test(tc, test_crop_and_flip_spread);
  tcase_add_test(tc, test_keys);
  tcase_add_test(tc, test_batch_threads);
  tcase_add_test(tc, test_parse);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
