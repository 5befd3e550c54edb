/* dist.c — the job: joining MPI, the configuration and weights checks,
 * the watchdog, and the one point-to-point exchange the sums in reduce.c are built on.
 *
 * Every MPI call goes through a communicator whose errors return, and is
 * checked: a failure becomes a tg_error naming the call. This file never
 * aborts on its own except in tg_dist_abort and in the watchdog, whose
 * whole purpose is to end a job that no longer makes progress. Only
 * standard MPI-3 calls, so Open MPI and MPICH build the same code. Without
 * MPI (TG_HAVE_MPI unset) the same functions act as a single rank.
 */
#include "dist_internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TG_HAVE_MPI
/* The MPI error string for rc, in err, after "dist: <what> failed: ". */
static int mpi_fail(int rc, const char *what, tg_error *err) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
    snprintf(s, sizeof s, "MPI error code %d", rc);
  return tg_error_set(err, TG_ERR_IO, "dist: %s failed: %s", what, s);
}
#define MPI_CHECK(call, err)                                                                       \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != MPI_SUCCESS)                                                                        \
      return mpi_fail(rc_, #call, err);                                                            \
  } while (0)
#endif

int tg_dist_available(void) {
#ifdef TG_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * The watchdog: a thread that wakes at least once a second and ends the
 * job when no step has completed for `timeout` seconds. A rank stopped or
 * killed leaves the others blocked inside MPI; their watchdogs end it. */

static void *watchdog_main(void *arg) {
  tg_dist *d = arg;
  pthread_mutex_lock(&d->mu);
  while (!d->stop) {
    double idle = now_s() - d->beat;
    if (idle > d->timeout) {
      pthread_mutex_unlock(&d->mu);
      char msg[160];
      snprintf(msg, sizeof msg,
               "dist: no step completed in %g s (watchdog timeout); ending the job", d->timeout);
      tg_dist_abort(d, msg);
    }
    double wait = d->timeout - idle < 1 ? d->timeout - idle : 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + (wait > 0.01 ? wait : 0.01);
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - floor(t)) * 1e9);
    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

static int watchdog_start(tg_dist *d, tg_error *err) {
  d->beat = now_s();
  if (d->size > 1 && d->timeout > 0) {
    int rc = pthread_create(&d->watchdog, NULL, watchdog_main, d);
    if (rc != 0)
      return tg_error_set(err, TG_ERR_MEMORY, "dist: cannot start the watchdog thread: %s",
                          strerror(rc));
    d->watching = 1;
  }
  return TG_OK;
}

void tg_dist_step_done(tg_dist *d) {
  if (!d)
    return;
  pthread_mutex_lock(&d->mu);
  d->beat = now_s();
  pthread_mutex_unlock(&d->mu);
}

/* ------------------------------------------------------------------------
 * The job */

static int join(tg_dist *d, int *argc, char ***argv, tg_error *err) {
#ifdef TG_HAVE_MPI
  int inited = 0, provided = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    /* Open MPI's shared-memory transport sends a message above 4 KiB by
     * the kernel's single copy (CMA), which pins the peer's pages for
     * every message: at the book networks' gradient sizes (0.1 to 2 MiB)
     * its copies through shared buffers take half the time (bench_dist).
     * A setting the user made (the variable, or mpirun's --mca) stays. */
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    /* MULTIPLE: the watchdog thread calls MPI_Abort while the main
     * thread may be blocked in a receive. */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
      return tg_error_set(err, TG_ERR_IO, "dist: MPI_Init_thread failed (code %d)", rc);
    d->finalize = 1;
  }
  /* Errors of the world communicator too return rather than abort, so the
   * message that reaches the user is ours. */
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), err);
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm), err);
  MPI_CHECK(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN), err);
  MPI_CHECK(MPI_Comm_rank(d->comm, &d->rank), err);
  MPI_CHECK(MPI_Comm_size(d->comm, &d->size), err);
#else
  (void)argc, (void)argv, (void)err;
  d->rank = 0;
  d->size = 1;
#endif
  return TG_OK;
}

tg_dist *tg_dist_new(int *argc, char ***argv, const tg_dist_options *opt, tg_error *err) {
  tg_dist_options o = opt ? *opt : (tg_dist_options){0};
  if (!(o.timeout == o.timeout) || o.bucket_bytes < 0 || o.bucket_bytes > ((int64_t)1 << 30)) {
    tg_error_set(err, TG_ERR_ARG,
                 "dist: invalid options: timeout %g, bucket_bytes %lld (0 .. 1 GiB)", o.timeout,
                 (long long)o.bucket_bytes);
    return NULL;
  }
  tg_dist *d = calloc(1, sizeof *d);
  if (!d) {
    tg_error_set(err, TG_ERR_MEMORY, "dist: out of memory");
    return NULL;
  }
#ifdef TG_HAVE_MPI
  d->comm = MPI_COMM_NULL;
#endif
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&d->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&d->mu, NULL);
  d->timeout = o.timeout == 0 ? 300 : o.timeout;
  int64_t bytes = o.bucket_bytes ? o.bucket_bytes : (int64_t)25 << 20;
  d->bucket = bytes / (int64_t)sizeof(tg_real) > 0 ? bytes / (int64_t)sizeof(tg_real) : 1;
  if (join(d, argc, argv, err) != TG_OK || watchdog_start(d, err) != TG_OK) {
    tg_dist_free(d);
    return NULL;
  }
  return d;
}

void tg_dist_free(tg_dist *d) {
  if (!d)
    return;
  if (d->watching) {
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->watchdog, NULL);
  }
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
#ifdef TG_HAVE_MPI
  if (d->comm != MPI_COMM_NULL)
    MPI_Comm_free(&d->comm);
  if (d->finalize)
    MPI_Finalize();
#endif
  free(d->scratch);
  free(d);
}

int tg_dist_rank(const tg_dist *d) { return d ? d->rank : 0; }
int tg_dist_size(const tg_dist *d) { return d ? d->size : 1; }

#ifdef TG_HAVE_MPI
/* Ends the process ABORT_GRACE_S after tg_dist_abort started, whatever
 * MPI_Abort does meanwhile. */
#define ABORT_GRACE_S 2
static void *abort_reaper(void *arg) {
  (void)arg;
  nanosleep(&(struct timespec){.tv_sec = ABORT_GRACE_S}, NULL);
  _Exit(1);
}
#endif

_Noreturn void tg_dist_abort(tg_dist *d, const char *msg) {
  fprintf(stderr, "[rank %d] %s\n", tg_dist_rank(d), msg ? msg : "dist: aborted");
  fflush(stderr);
#ifdef TG_HAVE_MPI
  /* MPI_Abort called by the watchdog while the main thread waits inside
   * MPI can itself wait forever (MPICH 4.0 on UCX: both threads block on
   * MPICH's own lock, and the job hangs with a peer stopped). So a thread
   * ends this process after a grace period, and the launcher ends the job,
   * as Open MPI's and MPICH's do for any rank that exits without
   * MPI_Finalize. */
  pthread_t reaper;
  if (pthread_create(&reaper, NULL, abort_reaper, NULL) == 0)
    pthread_detach(reaper);
  MPI_Abort(d && d->comm != MPI_COMM_NULL ? d->comm : MPI_COMM_WORLD, 1);
#endif
  /* MPI_Abort should not return; if it does, this process still ends. */
  _Exit(1);
}

tg_real *tg_dist_scratch(tg_dist *d, int64_t n) {
  if (n <= d->scratch_n)
    return d->scratch;
  tg_real *s = tg_aligned_alloc((size_t)n * sizeof(tg_real));
  if (!s)
    return NULL;
  free(d->scratch);
  d->scratch = s;
  d->scratch_n = n;
  return s;
}

int tg_dist_sendrecv(tg_dist *d, const tg_real *send, int64_t sn, int dest, tg_real *recv,
                     int64_t rn, int src, tg_error *err) {
#ifdef TG_HAVE_MPI
  /* Counts stay below the bucket (at most 1 GiB), so they fit an int. */
  MPI_Datatype t = sizeof(tg_real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
  double t0 = now_s();
  MPI_CHECK(
      MPI_Sendrecv(send, (int)sn, t, dest, 0, recv, (int)rn, t, src, 0, d->comm, MPI_STATUS_IGNORE),
      err);
  d->exchange_s += now_s() - t0;
  d->sent_bytes += sn * (int64_t)sizeof(tg_real);
  return TG_OK;
#else
  (void)d, (void)send, (void)sn, (void)dest, (void)recv, (void)rn, (void)src;
  return tg_error_set(err, TG_ERR_ARG, "dist: no other rank to exchange with (built without MPI)");
#endif
}

void tg_dist_exchanged(const tg_dist *d, double *seconds, int64_t *bytes) {
  if (seconds)
    *seconds = d ? d->exchange_s : 0;
  if (bytes)
    *bytes = d ? d->sent_bytes : 0;
}

int tg_dist_allgather(tg_dist *d, const void *mine, int64_t bytes, void *all, tg_error *err) {
  if (bytes < 0 || bytes > INT32_MAX || (bytes > 0 && (!mine || !all)))
    return tg_error_set(err, TG_ERR_ARG, "dist: allgather: %lld bytes, or NULL buffers",
                        (long long)bytes);
  if (tg_dist_size(d) == 1) {
    if (bytes > 0 && all != mine)
      memmove(all, mine, (size_t)bytes);
    return TG_OK;
  }
#ifdef TG_HAVE_MPI
  MPI_CHECK(MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, d->comm), err);
#endif
  return TG_OK;
}

int tg_dist_broadcast(tg_dist *d, void *buf, int64_t bytes, int root, tg_error *err) {
  if (bytes < 0 || (bytes > 0 && !buf) || root < 0 || root >= tg_dist_size(d))
    return tg_error_set(err, TG_ERR_ARG, "dist: broadcast: %lld bytes at NULL, or root %d",
                        (long long)bytes, root);
  if (tg_dist_size(d) == 1)
    return TG_OK;
#ifdef TG_HAVE_MPI
  int64_t piece = d->bucket * (int64_t)sizeof(tg_real);
  for (int64_t off = 0; off < bytes; off += piece) {
    int64_t n = bytes - off < piece ? bytes - off : piece;
    MPI_CHECK(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, d->comm), err);
  }
#endif
  return TG_OK;
}

/* ------------------------------------------------------------------------
 * The configuration check */

#ifdef TG_HAVE_MPI
/* FNV-1a, 64 bits, over name, a NUL, value: a field renamed or reordered
 * differs as surely as a value. */
static uint64_t field_hash(const char *name, const char *value) {
  uint64_t h = 1469598103934665603u;
  const char *parts[2] = {name ? name : "", value ? value : ""};
  for (int p = 0; p < 2; p++) {
    for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++)
      h = (h ^ *c) * 1099511628211u;
    h = (h ^ 0u) * 1099511628211u;
  }
  return h;
}
#endif

int tg_dist_check_config(tg_dist *d, const tg_dist_field *fields, int n, tg_error *err) {
  if (!d || n < 0 || (n > 0 && !fields))
    return tg_error_set(err, TG_ERR_ARG, "dist: check_config: no job, or %d fields at NULL", n);
  if (d->size == 1)
    return TG_OK;
#ifdef TG_HAVE_MPI
  enum { BUILTIN = 2 };
  const tg_dist_field builtin[BUILTIN] = {{"version", TG_VERSION}, {"element type", TG_REAL_NAME}};
  int total = n + BUILTIN;
  /* First the count alone: a gather of differing lengths would be
   * undefined. */
  int *counts = malloc((size_t)d->size * sizeof *counts);
  uint64_t *mine = malloc((size_t)total * sizeof *mine);
  uint64_t *all = malloc((size_t)total * (size_t)d->size * sizeof *all);
  int status = TG_OK;
  if (!counts || !mine || !all) {
    status = tg_error_set(err, TG_ERR_MEMORY, "dist: check_config: out of memory");
    goto done;
  }
  int rc = MPI_Allgather(&total, 1, MPI_INT, counts, 1, MPI_INT, d->comm);
  if (rc != MPI_SUCCESS) {
    status = mpi_fail(rc, "MPI_Allgather of the configuration", err);
    goto done;
  }
  for (int r = 1; r < d->size; r++)
    if (counts[r] != counts[0]) {
      status = tg_error_set(err, TG_ERR_ARG,
                            "dist: the ranks' configurations differ: rank 0 has %d fields, "
                            "rank %d has %d",
                            counts[0] - BUILTIN, r, counts[r] - BUILTIN);
      goto done;
    }
  for (int i = 0; i < total; i++) {
    const tg_dist_field *f = i < BUILTIN ? &builtin[i] : &fields[i - BUILTIN];
    mine[i] = field_hash(f->name, f->value);
  }
  rc = MPI_Allgather(mine, total, MPI_UINT64_T, all, total, MPI_UINT64_T, d->comm);
  if (rc != MPI_SUCCESS) {
    status = mpi_fail(rc, "MPI_Allgather of the configuration", err);
    goto done;
  }
  for (int i = 0; i < total && status == TG_OK; i++) {
    char ranks[256] = "";
    size_t len = 0;
    int differ = 0;
    for (int r = 1; r < d->size; r++)
      if (all[(size_t)r * (size_t)total + (size_t)i] != all[i]) {
        differ++;
        if (len + 16 < sizeof ranks)
          len +=
              (size_t)snprintf(ranks + len, sizeof ranks - len, "%s%d", differ > 1 ? ", " : "", r);
      }
    if (differ) {
      const tg_dist_field *f = i < BUILTIN ? &builtin[i] : &fields[i - BUILTIN];
      status = tg_error_set(err, TG_ERR_ARG,
                            "dist: the ranks' configurations differ in \"%s\" (or its name): "
                            "rank%s %s differ%s from rank 0; this rank has \"%s\"",
                            f->name ? f->name : "", differ > 1 ? "s" : "", ranks,
                            differ > 1 ? "" : "s", f->value ? f->value : "");
    }
  }
done:
  free(counts);
  free(mine);
  free(all);
  return status;
#else
  return TG_OK;
#endif
}

/* ------------------------------------------------------------------------
 * The weights check */

int tg_dist_check_same(tg_dist *d, const tg_params *const *lists, int n, tg_error *err) {
  if (n < 0 || (n > 0 && !lists))
    return tg_error_set(err, TG_ERR_ARG, "dist: check_same: %d lists at NULL", n);
  int N = tg_dist_size(d);
  if (N == 1)
    return TG_OK;
  /* FNV-1a over every byte: one flipped bit anywhere changes it. */
  uint64_t h = 1469598103934665603u;
  for (int l = 0; l < n; l++)
    for (int i = 0; lists[l] && i < lists[l]->n; i++) {
      const tg_tensor *t = lists[l]->items[i];
      const unsigned char *b = (const unsigned char *)t->data;
      for (size_t k = 0; k < (size_t)t->numel * sizeof(tg_real); k++)
        h = (h ^ b[k]) * 1099511628211u;
    }
  uint64_t *all = malloc((size_t)N * sizeof *all);
  if (!all)
    return tg_error_set(err, TG_ERR_MEMORY, "dist: check_same: out of memory");
  int status = tg_dist_allgather(d, &h, sizeof h, all, err);
  int first = 0;
  for (int r = 1; status == TG_OK && r < N && !first; r++)
    if (all[r] != all[0])
      first = r;
  if (first)
    status = tg_error_set(err, TG_ERR_ARG,
                          "dist: the ranks' weights differ: rank %d is the first that differs "
                          "from rank 0 (checksums %016llx, %016llx)",
                          first, (unsigned long long)all[first], (unsigned long long)all[0]);
  free(all);
  return status;
}
