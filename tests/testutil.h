/* testutil.h — what every Check suite shares: seeded random fills, the
 * gradcheck assertion, a scratch directory, and main(). Header-only so
 * each suite is one file.
 *
 * Never run an op (or any OpenMP region) in main(): with libgomp a forked
 * Check test hangs if its parent ran OpenMP (TOOLCHAIN.md).
 */
#ifndef TG_TESTUTIL_H
#define TG_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tapegrad_ext.h" /* the engine and its extension interface */

/* Gradcheck tolerance: the double build is the strict one. */
#define TU_GRAD_TOL (sizeof(tg_real) == 8 ? 1e-6 : 3e-2)
/* Forward values against an independent computation. */
#define TU_VALUE_TOL (sizeof(tg_real) == 8 ? 1e-12 : 1e-5)

/* Uniform in [lo, hi). */
static inline void tu_fill_uniform(tg_tensor *t, tg_rng *r, double lo, double hi) {
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)(lo + (hi - lo) * tg_rng_uniform(r));
}

/* Magnitude uniform in [lo, hi), random sign: keeps inputs off the kink at 0. */
static inline void tu_fill_signed(tg_tensor *t, tg_rng *r, double lo, double hi) {
  for (int64_t i = 0; i < t->numel; i++) {
    double m = lo + (hi - lo) * tg_rng_uniform(r);
    t->data[i] = (tg_real)(tg_rng_uniform(r) < 0.5 ? -m : m);
  }
}

/* An arena leaf of the given shape that requires grad, filled uniformly. */
/* Ones of y's shape: the seed that makes backward give the gradient of
 * sum(y) (an implied seed is only for outputs of one element). */
static inline tg_tensor *tu_ones_like(tg_tape *tape, const tg_tensor *y) {
  return y ? tg_full(tape, y->shape, y->ndim, 1) : NULL;
}

static inline tg_tensor *tu_leaf(tg_tape *tape, const int64_t *shape, int ndim, double lo,
                                 double hi) {
  tg_tensor *t = tg_requires_grad(tape, tg_empty(tape, shape, ndim));
  if (t)
    tu_fill_uniform(t, tg_tape_rng(tape), lo, hi);
  return t;
}

/* Relative difference with an absolute floor of 1. */
static inline double tu_rel(double a, double b) {
  return fabs(a - b) / fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* 1 when a and b are non-NULL with the same number of elements and the
 * same bits (threads tests: one thread against two). */
static inline int tu_same_bits(const tg_tensor *a, const tg_tensor *b) {
  return a && b && a->numel == b->numel &&
         memcmp(a->data, b->data, (size_t)a->numel * sizeof(tg_real)) == 0;
}

/* Asserts that every element of t matches want[] within tol (relative,
 * floor 1), naming the first element that does not. */
#define tu_assert_values(t, want, tol)                                                             \
  do {                                                                                             \
    const tg_tensor *tu_t_ = (t);                                                                  \
    ck_assert_msg(tu_t_ != NULL, "tensor is NULL");                                                \
    for (int64_t tu_i = 0; tu_i < tu_t_->numel; tu_i++)                                            \
      ck_assert_msg(tu_rel(tg_at(tu_t_, tu_i), (want)[tu_i]) <= (tol),                             \
                    "element %lld: got %.17g, want %.17g", (long long)tu_i, tg_at(tu_t_, tu_i),    \
                    (double)(want)[tu_i]);                                                         \
  } while (0)

/* Runs tg_gradcheck and fails with the full report if any input's worst
 * relative error exceeds tol. */
#define tu_assert_gradcheck(tape, fn, ctx, n, inputs, tol)                                         \
  do {                                                                                             \
    tg_gradcheck_report tu_r_[16];                                                                 \
    tg_gradcheck_opts tu_o_ = {.seed = 7};                                                         \
    int tu_st_ = tg_gradcheck((tape), (fn), (ctx), (n), (inputs), &tu_o_, tu_r_);                  \
    ck_assert_msg(tu_st_ == TG_OK, "gradcheck failed to run: %s", tg_tape_error(tape));            \
    double tu_w_ = tg_gradcheck_worst(tu_r_, (n));                                                 \
    if (!(tu_w_ <= (tol))) {                                                                       \
      char *tu_buf_ = NULL;                                                                        \
      size_t tu_len_ = 0;                                                                          \
      FILE *tu_f_ = open_memstream(&tu_buf_, &tu_len_);                                            \
      tg_gradcheck_print(tu_r_, (n), (inputs), tu_f_);                                             \
      fclose(tu_f_);                                                                               \
      ck_abort_msg("gradcheck worst %.3g > %.3g\n%s", tu_w_, (double)(tol), tu_buf_);              \
    }                                                                                              \
  } while (0)

/* For second derivatives: the gradient of L = sum_i (0.5 + step * i) * y_i
 * with respect to x, kept on the tape so that gradcheck can differentiate
 * it again (the weights differ so that no element's error hides in a sum);
 * NULL when y is NULL or the tape fails. y must be computed with grad on:
 * gradcheck evaluates with grad off. */
static inline tg_tensor *tu_weighted_grad(tg_tape *tape, tg_tensor *y, tg_tensor *x, double step) {
  tg_tensor *dy = y ? tg_empty(tape, y->shape, y->ndim) : NULL;
  for (int64_t i = 0; dy && i < dy->numel; i++)
    dy->data[i] = (tg_real)(0.5 + step * (double)i);
  tg_tensor *g = NULL;
  if (dy && tg_grad(tape, y, dy, 1, &x, &g, 1) != TG_OK)
    g = NULL;
  return g;
}

/* Asserts that the tape failed and its message contains every given
 * fragment (NULL-terminated list). */
#define tu_assert_error(tape, ...)                                                                 \
  do {                                                                                             \
    const char *tu_frags_[] = {__VA_ARGS__, NULL};                                                 \
    ck_assert_msg(tg_tape_status(tape) != TG_OK, "expected an error, tape is OK");                 \
    for (int tu_k = 0; tu_frags_[tu_k]; tu_k++)                                                    \
      ck_assert_msg(strstr(tg_tape_error(tape), tu_frags_[tu_k]) != NULL,                          \
                    "error \"%s\" does not mention \"%s\"", tg_tape_error(tape), tu_frags_[tu_k]); \
  } while (0)

/* ------------------------------------------------------------------------
 * A scratch directory per test, for the suites that write files: make it
 * in a checked fixture (tu_dir_make), name files in it (tu_path), remove
 * it in the teardown (tu_rm_tree(tu_dir())). A failed assertion ends a
 * forked test before its teardown, so main() sweeps whatever this run's
 * tests left (tu_dir_sweep). */

/* The scratch directory's path (one per suite: each test is a process). */
static inline char *tu_dir(void) {
  static char d[4096];
  return d;
}

/* The pid of the process that runs the suite, set by main() before Check
 * forks the tests: every scratch directory's name carries it, so the sweep
 * takes this run's directories and never those of a run beside it. */
static inline long *tu_dir_owner(void) {
  static long owner;
  return &owner;
}

/* Where scratch directories go: $TMPDIR, or /tmp. */
static inline const char *tu_tmp_base(void) {
  const char *base = getenv("TMPDIR");
  return base && base[0] ? base : "/tmp";
}

/* Removes path and, for a directory, everything under it; a symbolic link
 * is removed, never followed, and a directory a test made read-only is
 * made writable first. */
static inline void tu_rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  chmod(path, 0700);
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char p[4400];
      if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) < (int)sizeof p)
        tu_rm_tree(p);
    }
    closedir(d);
  }
  rmdir(path);
}

/* A fresh directory BASE/tu-OWNER-PREFIX-XXXXXX as tu_dir(). */
static inline void tu_dir_make(const char *prefix) {
  snprintf(tu_dir(), 4096, "%s/tu-%ld-%s-XXXXXX", tu_tmp_base(), *tu_dir_owner(), prefix);
  ck_assert_msg(mkdtemp(tu_dir()) != NULL, "mkdtemp %s: %s", tu_dir(), strerror(errno));
}

/* Removes every scratch directory this run made and left (main() calls it
 * after the suite). */
static inline void tu_dir_sweep(void) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "tu-%ld-", *tu_dir_owner());
  DIR *d = opendir(tu_tmp_base());
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      char p[4400];
      if (snprintf(p, sizeof p, "%s/%s", tu_tmp_base(), e->d_name) < (int)sizeof p)
        tu_rm_tree(p);
    }
  closedir(d);
}

/* tu_dir()/name, in one of 16 rotating buffers. */
static inline const char *tu_path(const char *name) {
  static char buf[16][4400];
  static int k;
  k = (k + 1) % 16;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tu_dir(), name);
  return buf[k];
}

/* The whole file at path, malloc'd (one spare byte at the end); *n its
 * length. */
static inline unsigned char *tu_slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  size_t cap = 1 << 16, len = 0, k;
  unsigned char *b = malloc(cap);
  while ((k = fread(b + len, 1, cap - 1 - len, f)) > 0)
    if ((len += k) == cap - 1)
      b = realloc(b, cap *= 2);
  fclose(f);
  *n = len;
  return b;
}

/* Writes n bytes of b to path, gzip-compressed when gz. */
static inline void tu_spit(const char *path, const void *b, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (n)
      ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
  }
}

/* main(): runs the suite made by make_suite, then sweeps its scratch
 * directories; exit status 1 on any failure. */
#define TU_MAIN(make_suite)                                                                        \
  int main(void) {                                                                                 \
    *tu_dir_owner() = (long)getpid();                                                              \
    SRunner *sr = srunner_create(make_suite());                                                    \
    srunner_run_all(sr, CK_NORMAL);                                                                \
    int failed = srunner_ntests_failed(sr);                                                        \
    srunner_free(sr);                                                                              \
    tu_dir_sweep();                                                                                \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                                   \
  }

#endif
