/* dist_check.c — the MPI side of tests/dist_test.sh: a program each rank
 * of an mpirun job runs, checking one property and exiting 0 or 1.
 *
 *   dist_check bits N BUCKET_BYTES   tg_dist_allreduce of N elements gives,
 *                                    on every rank, the bits of the
 *                                    pairwise tree over ranks computed
 *                                    here element by element
 *   dist_check same none|R1,R2,... 0
 *                                    every rank builds the same weights,
 *                                    except that ranks R1, R2, ... flip
 *                                    the last bit of one element:
 *                                    tg_dist_check_same passes with none,
 *                                    and otherwise fails on every rank
 *                                    naming the lowest of them
 *   dist_check stall none|stop|kill TIMEOUT
 *                                    ten steps; at step 3 the last rank
 *                                    stops (SIGSTOP) or dies (SIGKILL):
 *                                    the others' watchdog must end the job
 *
 * It must not use MPI itself: only the tg_dist_* API under test.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

/* Rank r's element i: magnitudes over six decades, so that the order of
 * the additions shows in the bits. */
static void contribution(int r, int64_t n, tg_real *x) {
  tg_rng rng;
  tg_rng_seed(&rng, 1000u + (uint64_t)r);
  for (int64_t i = 0; i < n; i++)
    x[i] = (tg_real)(tg_rng_normal(&rng) * pow(10.0, 6 * tg_rng_uniform(&rng) - 3));
}

static int bits(tg_dist *d, int64_t n) {
  int N = tg_dist_size(d), me = tg_dist_rank(d);
  tg_real *x = malloc((size_t)(n ? n : 1) * sizeof *x);
  tg_real *all = malloc((size_t)(n ? n : 1) * (size_t)N * sizeof *all);
  if (!x || !all)
    return 1;
  for (int r = 0; r < N; r++)
    contribution(r, n, all + (int64_t)r * n);
  contribution(me, n, x);
  tg_error err = {0};
  if (tg_dist_allreduce(d, x, n, &err) != TG_OK)
    tg_dist_abort(d, err.msg);
  /* The oracle, one element at a time: add neighbours level by level, an
   * odd last one carried up. */
  int64_t bad = 0, order_matters = 0;
  tg_real v[64];
  for (int64_t i = 0; i < n; i++) {
    int m = N;
    for (int r = 0; r < N; r++)
      v[r] = all[(int64_t)r * n + i];
    tg_real serial = 0;
    for (int r = 0; r < N; r++)
      serial += v[r];
    while (m > 1) {
      int k = 0;
      for (int j = 0; j < m; j += 2)
        v[k++] = j + 1 < m ? v[j] + v[j + 1] : v[j];
      m = k;
    }
    if (memcmp(&v[0], &x[i], sizeof(tg_real)) != 0 && bad++ < 5)
      fprintf(stderr, "[rank %d] element %lld: allreduce %.9g, pairwise tree %.9g\n", me,
              (long long)i, (double)x[i], (double)v[0]);
    order_matters += serial != v[0];
  }
  printf("[rank %d] %d ranks, %lld elements: %lld differ from the pairwise tree; "
         "rank-order sums differ from it in %lld\n",
         me, N, (long long)n, (long long)bad, (long long)order_matters);
  free(x);
  free(all);
  /* With four ranks the trees differ from rank order: the comparison
   * above can see an order change. */
  return bad != 0 || (N == 4 && n >= 1000 && order_matters == 0);
}

static int same(tg_dist *d, const char *ranks) {
  int me = tg_dist_rank(d), N = tg_dist_size(d), first = 0, mine = 0;
  for (const char *p = ranks; strcmp(ranks, "none") != 0 && *p;) {
    int r = (int)strtol(p, (char **)&p, 10);
    first = first && first < r ? first : r;
    mine |= r == me;
    p += *p == ',';
  }
  tg_params w = {0}, b = {0};
  tg_error err = {0};
  tg_tensor *W = tg_params_new(&w, "W", (int64_t[]){37, 11}, 2, 1, &err); /* (37, 11) */
  tg_tensor *m = tg_params_new(&b, "m", (int64_t[]){5}, 1, 0, &err);      /* (5,) */
  if (!W || !m)
    tg_dist_abort(d, err.msg);
  contribution(0, W->numel, W->data);
  contribution(1, m->numel, m->data);
  if (mine) { /* one bit of one element, in the second list */
    unsigned char *byte = (unsigned char *)&m->data[3];
    byte[0] ^= 1;
  }
  const tg_params *lists[] = {&w, &b};
  int st = tg_dist_check_same(d, lists, 2, &err);
  char want[64];
  snprintf(want, sizeof want, "rank %d is the first that differs", first);
  int ok = first ? st == TG_ERR_ARG && strstr(err.msg, want) : st == TG_OK;
  if (me == 0 || !ok)
    printf("[rank %d] %d ranks, %s differ: %s\n", me, N, ranks,
           st == TG_OK ? "all the same" : err.msg);
  tg_params_free(&w);
  tg_params_free(&b);
  return !ok;
}

static int stall(tg_dist *d, const char *how) {
  int last = tg_dist_rank(d) == tg_dist_size(d) - 1;
  tg_real x[16] = {0};
  tg_error err = {0};
  for (int step = 0; step < 10; step++) {
    if (step == 3 && last && strcmp(how, "stop") == 0)
      raise(SIGSTOP);
    if (step == 3 && last && strcmp(how, "kill") == 0)
      raise(SIGKILL);
    if (tg_dist_allreduce(d, x, 16, &err) != TG_OK)
      tg_dist_abort(d, err.msg);
    tg_dist_step_done(d);
    nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "bits") != 0 && strcmp(argv[1], "stall") != 0 &&
                    strcmp(argv[1], "same") != 0)) {
    fprintf(stderr, "usage: dist_check bits N BUCKET_BYTES | same none|R1,R2,... 0 | "
                    "stall none|stop|kill TIMEOUT\n");
    return 2;
  }
  int is_bits = strcmp(argv[1], "bits") == 0;
  tg_dist_options o = {0};
  if (is_bits)
    o.bucket_bytes = atoll(argv[3]);
  else if (strcmp(argv[1], "stall") == 0)
    o.timeout = atof(argv[3]);
  tg_error err = {0};
  tg_dist *d = tg_dist_new(&argc, &argv, &o, &err);
  if (!d) {
    fprintf(stderr, "dist_check: %s\n", err.msg);
    return 1;
  }
  if (tg_dist_size(d) > 64)
    tg_dist_abort(d, "dist_check: at most 64 ranks");
  int rc = is_bits                        ? bits(d, atoll(argv[2]))
           : strcmp(argv[1], "same") == 0 ? same(d, argv[2])
                                          : stall(d, argv[2]);
  if (rc != 0)
    tg_dist_abort(d, "dist_check: FAILED");
  tg_dist_free(d);
  return 0;
}
