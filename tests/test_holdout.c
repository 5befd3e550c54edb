/* test_holdout.c — the seeded validation split (data/holdout.h): both
 * parts together are the set, each sample exactly once and in order; the
 * same seed holds out the same samples, another seed others; bad sizes
 * change nothing.
 */
#include "testutil.h"

enum { N = 50, PX = 4 };

/* A set whose sample i has pixels (i, i+1, i+2, i+3) and label i % 10, so
 * every copied sample tells where it came from. */
static void make_set(tg_dataset *ds) {
  memset(ds, 0, sizeof *ds);
  ds->n = N;
  ds->rows = ds->cols = 2;
  ds->classes = 10;
  ds->pixels = malloc(N * PX);
  ds->labels = malloc(N);
  ck_assert(ds->pixels && ds->labels);
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < PX; k++)
      ds->pixels[i * PX + k] = (uint8_t)(i + k);
    ds->labels[i] = (uint8_t)(i % 10);
  }
}

/* Holds out n_val with seed; idx receives the held-out indices. */
static void split(uint64_t seed, int64_t n_val, int64_t *idx) {
  tg_dataset ds, val;
  tg_error err = {0};
  make_set(&ds);
  ck_assert_int_eq(tg_dataset_holdout(&ds, n_val, seed, &val, idx, &err), TG_OK);
  ck_assert_int_eq(val.n, n_val);
  ck_assert_int_eq(ds.n, N - n_val);
  ck_assert_int_eq(val.rows, 2);
  ck_assert_int_eq(val.classes, 10);
  /* Walk 0..N-1 once: each index is in val (at the next val place) or in
   * the rest (at the next kept place), never both, never out of order. */
  int held[N] = {0};
  for (int64_t v = 0; v < n_val; v++) {
    ck_assert(idx[v] >= 0 && idx[v] < N);
    ck_assert_msg(v == 0 || idx[v] > idx[v - 1], "indices not ascending at %lld", (long long)v);
    held[idx[v]] = 1;
  }
  int64_t v = 0, k = 0;
  for (int i = 0; i < N; i++) {
    const tg_dataset *part = held[i] ? &val : &ds;
    int64_t at = held[i] ? v++ : k++;
    for (int q = 0; q < PX; q++)
      ck_assert_int_eq(part->pixels[at * PX + q], i + q);
    ck_assert_int_eq(part->labels[at], i % 10);
  }
  ck_assert_int_eq(v, n_val);
  ck_assert_int_eq(k, N - n_val);
  tg_dataset_free(&ds);
  tg_dataset_free(&val);
}

START_TEST(test_parts_are_the_set) {
  int64_t idx[N];
  split(1, 10, idx);
  split(7, 1, idx);
  split(7, N - 1, idx);
}
END_TEST

START_TEST(test_seeded) {
  int64_t a[N], b[N], c[N];
  split(3, 12, a);
  split(3, 12, b);
  split(4, 12, c);
  ck_assert_msg(memcmp(a, b, sizeof a[0] * 12) == 0, "the same seed chose other samples");
  ck_assert_msg(memcmp(a, c, sizeof a[0] * 12) != 0, "seeds 3 and 4 chose the same samples");
  /* Not simply the first or last samples of the set. */
  int64_t first = 0, last = 0;
  for (int i = 0; i < 12; i++)
    first += a[i] == i, last += a[i] == N - 12 + i;
  ck_assert(first < 12 && last < 12);
}
END_TEST

START_TEST(test_bad_sizes) {
  tg_dataset ds, val;
  make_set(&ds);
  int64_t bad[] = {0, -1, N, N + 1};
  for (int i = 0; i < 4; i++) {
    tg_error err = {0};
    ck_assert_int_eq(tg_dataset_holdout(&ds, bad[i], 1, &val, NULL, &err), TG_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "n_val"), "%s", err.msg);
    ck_assert_int_eq(ds.n, N);
    ck_assert_ptr_null(val.pixels);
  }
  tg_error err = {0};
  ck_assert_int_eq(tg_dataset_holdout(&ds, 5, 1, &ds, NULL, &err), TG_ERR_NULL);
  ck_assert_int_eq(tg_dataset_holdout(NULL, 5, 1, &val, NULL, &err), TG_ERR_NULL);
  tg_dataset_free(&ds);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("holdout");
  TCase *tc = tcase_create("holdout");
  tcase_add_test(tc, test_parts_are_the_set);
  tcase_add_test(tc, test_seeded);
  tcase_add_test(tc, test_bad_sizes);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
