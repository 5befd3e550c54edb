/* test_parallel.c — the process's thread count (tg_set_threads,
 * tg_threads) and tg_parallel_for, which every kernel's threads go
 * through. Whether results depend on the count is tested with each op
 * family; here only how the work is handed out.
 */
#include "testutil.h"

#include <omp.h>

/* tg_parallel_for: every item handed out exactly once, in chunks of grain
 * items cut from 0 (the last one shorter), by a team of min(tg_threads(),
 * chunks) threads; serial below TG_PAR_MIN. */
typedef struct pf_ctx {
  int64_t n, grain;
  int *seen;     /* (n,): times each item was handed out */
  int bad_chunk; /* a chunk that is not [k·grain, min(n, (k+1)·grain)) */
  int team;      /* the largest team size seen */
} pf_ctx;

static void pf_fn(void *arg, int64_t lo, int64_t hi) {
  pf_ctx *c = arg;
  if (lo % c->grain || hi != (lo + c->grain < c->n ? lo + c->grain : c->n))
    __atomic_store_n(&c->bad_chunk, 1, __ATOMIC_RELAXED);
  for (int64_t i = lo; i < hi; i++)
    __atomic_add_fetch(&c->seen[i], 1, __ATOMIC_RELAXED);
  const int team = omp_get_num_threads();
  int old = __atomic_load_n(&c->team, __ATOMIC_RELAXED);
  while (team > old &&
         !__atomic_compare_exchange_n(&c->team, &old, team, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
}

START_TEST(test_threads_and_parallel_for) {
  ck_assert_int_eq(tg_set_threads(-1), TG_ERR_ARG);
  ck_assert_int_eq(tg_set_threads(0), TG_OK);
  ck_assert_int_eq(tg_threads(), omp_get_max_threads());
  const int64_t cases[][2] = {{1000, 7}, {64, 1}, {5, 10}, {130, 64}, {3, 1}};
  for (int t = 1; t <= 4; t++) {
    ck_assert_int_eq(tg_set_threads(t), TG_OK);
    ck_assert_int_eq(tg_threads(), t);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
      for (int parallel = 0; parallel <= 1; parallel++) {
        const int64_t n = cases[k][0], grain = cases[k][1], chunks = (n + grain - 1) / grain;
        int seen[1000] = {0};
        pf_ctx c = {n, grain, seen, 0, 0};
        tg_parallel_for(n, grain, parallel ? TG_PAR_MIN : TG_PAR_MIN - 1, pf_fn, &c);
        for (int64_t i = 0; i < n; i++)
          ck_assert_msg(seen[i] == 1, "t %d n %lld grain %lld: item %lld handed out %d times", t,
                        (long long)n, (long long)grain, (long long)i, seen[i]);
        const int want = parallel && chunks > 1 ? (int)(chunks < t ? chunks : t) : 1;
        ck_assert_msg(c.team == want, "t %d n %lld grain %lld: a team of %d, not %d", t,
                      (long long)n, (long long)grain, c.team, want);
        /* Below TG_PAR_MIN fn gets [0, n) whole: one "chunk" of n. */
        ck_assert(parallel ? !c.bad_chunk : 1);
      }
  }
  ck_assert_int_eq(tg_set_threads(0), TG_OK);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("parallel");
  TCase *tc = tcase_create("threads");
  tcase_add_test(tc, test_threads_and_parallel_for);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
