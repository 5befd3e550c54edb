/* test_parallel.c — the process's thread count (tg_set_threads,
 * tg_threads) and tg_parallel_for, which every kernel's threads go
 * through. Whether results depend on the count is tested with each op
 * family; here only how the work is handed out, and what it does on a
 * busy machine.
 */
#include "testutil.h"

#include <omp.h>
#include <time.h>

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
  tg_set_threads_adaptive(0); /* the team sizes asserted below, whatever the machine's load */
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
  tg_set_threads_adaptive(1);
}
END_TEST

/* A busy machine, staged: in the first region the second thread stalls
 * 200 ms in its first chunk (as if another process held its core), so
 * the region took far longer than the calling thread alone would have.
 * The next 4 calls of the same site then run every chunk on the calling
 * thread, in order, and nothing is lost or run twice. */
typedef struct stall_ctx {
  int calls;       /* tg_parallel_for calls so far */
  int stalled;     /* set once the second thread has stalled */
  int team[8];     /* per call: the largest team that ran a chunk */
  int order_ok[8]; /* per call: chunks ran in ascending order */
  int64_t last[8]; /* per call: the last chunk start seen */
  int seen[8][64]; /* per call: times each item ran */
} stall_ctx;

static void stall_fn(void *arg, int64_t lo, int64_t hi) {
  stall_ctx *c = arg;
  const int k = c->calls;
  if (k == 0 && omp_get_thread_num() == 1 &&
      !__atomic_exchange_n(&c->stalled, 1, __ATOMIC_RELAXED)) {
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  /* The calling thread waits (up to 2 s) for the other to take a chunk,
   * so that the first call does stall. */
  for (int i = 0; k == 0 && omp_get_thread_num() == 0 && i < 2000 &&
                  !__atomic_load_n(&c->stalled, __ATOMIC_RELAXED);
       i++) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (int64_t i = lo; i < hi; i++)
    __atomic_add_fetch(&c->seen[k][i], 1, __ATOMIC_RELAXED);
  int team = omp_in_parallel() ? omp_get_num_threads() : 1;
  if (team > __atomic_load_n(&c->team[k], __ATOMIC_RELAXED))
    __atomic_store_n(&c->team[k], team, __ATOMIC_RELAXED);
  if (team == 1) {
    c->order_ok[k] &= lo > c->last[k];
    c->last[k] = lo;
  }
}

START_TEST(test_parallel_for_busy_machine) {
  omp_set_dynamic(0);
  ck_assert_int_eq(tg_set_threads(2), TG_OK);
  tg_set_threads_adaptive(1);
  stall_ctx c = {0};
  for (int k = 0; k < 6; k++) {
    c.calls = k, c.order_ok[k] = 1, c.last[k] = -1;
    tg_parallel_for(64, 4, TG_PAR_MIN, stall_fn, &c);
    for (int i = 0; i < 64; i++)
      ck_assert_msg(c.seen[k][i] == 1, "call %d: item %d ran %d times", k, i, c.seen[k][i]);
  }
  ck_assert_msg(c.stalled && c.team[0] == 2, "the first call ran on %d thread(s)", c.team[0]);
  for (int k = 1; k <= 4; k++)
    ck_assert_msg(c.team[k] == 1 && c.order_ok[k],
                  "call %d after the stall: a team of %d, chunks in order %d", k, c.team[k],
                  c.order_ok[k]);
  ck_assert_int_eq(tg_set_threads(0), TG_OK);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("parallel");
  TCase *tc = tcase_create("threads");
  tcase_add_test(tc, test_threads_and_parallel_for);
  tcase_add_test(tc, test_parallel_for_busy_machine);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
