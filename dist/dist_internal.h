/* dist_internal.h — what dist.c (the MPI runtime) lends reduce.c (the
 * fixed-order sums): the job object and one point-to-point exchange.
 * Not installed; nothing outside dist/ includes it.
 */
#ifndef TG_DIST_INTERNAL_H
#define TG_DIST_INTERNAL_H

#include "dist.h"

#include <pthread.h>

#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

struct tg_dist {
  int rank, size;
  int64_t bucket; /* elements per message at most */
  double timeout; /* watchdog seconds; <= 0: none */
#ifdef TG_HAVE_MPI
  MPI_Comm comm;
  int finalize; /* we initialised MPI, so we finalise it */
#endif
  /* What tg_dist_sendrecv has done since tg_dist_new (tg_dist_exchanged). */
  double exchange_s;
  int64_t sent_bytes;
  tg_real *scratch; /* bucket elements, for received halves */
  int64_t scratch_n;
  /* The watchdog: `beat` is the time of the last completed step. */
  pthread_t watchdog;
  int watching, stop;
  double beat;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

__attribute__((visibility("hidden")))
/* Sends sn elements to rank dest while receiving rn from rank src. */
int tg_dist_sendrecv(tg_dist *d, const tg_real *send, int64_t sn, int dest, tg_real *recv,
                     int64_t rn, int src, tg_error *err);

__attribute__((visibility("hidden")))
/* The scratch buffer, grown to at least n elements (NULL: no memory). */
tg_real *
tg_dist_scratch(tg_dist *d, int64_t n);

#endif
