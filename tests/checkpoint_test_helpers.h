/* checkpoint_test_helpers.h — what the two checkpoint suites
 * (test_checkpoint.c: round trips, layout, another model;
 * test_checkpoint_damage.c: damaged files, safe saves) share: a scratch
 * directory per test, a small model to save, and files assembled by hand
 * from the format's description. Header-only.
 */
#ifndef TG_CHECKPOINT_TEST_HELPERS_H
#define TG_CHECKPOINT_TEST_HELPERS_H

#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "optim.h"
#include "params.h"

/* ------------------------------------------------------------------------
 * A scratch directory per test (testutil.h's, swept by main() when a test
 * dies before its teardown) */

static inline void tmp_setup(void) { tu_dir_make("ckpt"); }

static inline void tmp_teardown(void) { tu_rm_tree(tu_dir()); }

/* Number of entries in the scratch directory whose name contains frag. */
static inline int tmp_count(const char *frag) {
  DIR *d = opendir(tu_dir());
  ck_assert_ptr_nonnull(d);
  int k = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, frag))
      k++;
  closedir(d);
  return k;
}

/* ------------------------------------------------------------------------
 * A small model: an MLP's weights, Batch Norm's running statistics as
 * buffers, and Adam's state — the three lists a program saves. */

typedef struct model {
  tg_params params, buffers;
  tg_optim *opt;
  tg_params *lists[3];
} model;

/* hidden sets the shapes; extra (may be NULL) names one more parameter;
 * seed fills every value, gradients included. */
static inline void model_make(model *m, int64_t hidden, const char *extra, uint64_t seed) {
  memset(m, 0, sizeof *m);
  tg_error err = {0};
  tg_params_new(&m->params, "W1", (int64_t[]){4, hidden}, 2, 1, &err);
  tg_params_new(&m->params, "b1", (int64_t[]){hidden}, 1, 1, &err);
  tg_params_new(&m->params, "W2", (int64_t[]){hidden, 3}, 2, 1, &err);
  tg_params_new(&m->params, "b2", (int64_t[]){3}, 1, 1, &err);
  if (extra)
    tg_params_new(&m->params, extra, (int64_t[]){2, 1, 2}, 3, 1, &err);
  tg_params_new(&m->buffers, "bn1.running_mean", (int64_t[]){hidden}, 1, 0, &err);
  tg_params_new(&m->buffers, "bn1.running_var", (int64_t[]){hidden}, 1, 0, &err);
  ck_assert_msg(err.status == TG_OK, "%s", err.msg);
  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  m->opt = tg_optim_new(&c, &m->params, &err);
  ck_assert_msg(m->opt != NULL, "%s", err.msg);
  m->lists[0] = &m->params;
  m->lists[1] = &m->buffers;
  m->lists[2] = &m->opt->state;

  tg_rng r;
  tg_rng_seed(&r, seed);
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < m->lists[l]->n; i++) {
      tg_tensor *t = m->lists[l]->items[i];
      tu_fill_uniform(t, &r, -2, 2);
      if (t->grad)
        tu_fill_uniform(t->grad, &r, -1, 1);
    }
  tg_params_find(&m->opt->state, "step")->data[0] = 0;
}

static inline void model_free(model *m) {
  tg_optim_free(m->opt);
  tg_params_free(&m->params);
  tg_params_free(&m->buffers);
}

/* Random gradients, one optimizer step. */
static inline void model_train(model *m, uint64_t seed) {
  tg_rng r;
  tg_rng_seed(&r, seed);
  for (int i = 0; i < m->params.n; i++)
    tu_fill_uniform(m->params.items[i]->grad, &r, -1, 1);
  tg_optim_step(m->opt);
}

/* Every value of every list, in order, as raw tg_real. */
typedef struct snapshot {
  tg_real *v;
  int64_t n;
} snapshot;

static inline snapshot snap_take(model *m) {
  snapshot s = {0};
  for (int l = 0; l < 3; l++)
    s.n += tg_params_numel(m->lists[l]);
  s.v = malloc((size_t)s.n * sizeof(tg_real));
  int64_t k = 0;
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < m->lists[l]->n; i++) {
      const tg_tensor *t = m->lists[l]->items[i];
      memcpy(s.v + k, t->data, (size_t)t->numel * sizeof(tg_real));
      k += t->numel;
    }
  return s;
}

/* Asserts that m holds exactly the values of s, bit for bit. */
static inline void snap_assert_same(const snapshot *s, model *m, const char *what) {
  snapshot now = snap_take(m);
  ck_assert_int_eq(now.n, s->n);
  int same = memcmp(now.v, s->v, (size_t)s->n * sizeof(tg_real)) == 0;
  free(now.v);
  ck_assert_msg(same, "%s: the model changed", what);
}

/* Two models hold the same values in every tensor, bit for bit. */
static inline void assert_models_equal(model *a, model *b) {
  for (int l = 0; l < 3; l++) {
    ck_assert_int_eq(a->lists[l]->n, b->lists[l]->n);
    for (int i = 0; i < a->lists[l]->n; i++) {
      const tg_tensor *x = a->lists[l]->items[i], *y = b->lists[l]->items[i];
      ck_assert_str_eq(x->name, y->name);
      ck_assert_msg(memcmp(x->data, y->data, (size_t)x->numel * sizeof(tg_real)) == 0, "%s differs",
                    x->name);
    }
  }
}

/* ------------------------------------------------------------------------
 * Files assembled by hand from the format's description */

typedef struct bytes {
  unsigned char b[4096];
  size_t n;
} bytes;

static inline void b_raw(bytes *x, const void *p, size_t n) {
  ck_assert(x->n + n <= sizeof x->b);
  memcpy(x->b + x->n, p, n);
  x->n += n;
}
static inline void b_le(bytes *x, uint64_t v, int width) {
  for (int i = 0; i < width; i++)
    x->b[x->n++] = (unsigned char)(v >> (8 * i));
}
static inline void b_f32(bytes *x, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  b_le(x, u, 4);
}
static inline void b_f64(bytes *x, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  b_le(x, u, 8);
}
static inline void b_header(bytes *x, uint32_t version, uint32_t es, const char *meta,
                            uint32_t count) {
  b_raw(x, "TAPEGRAD", 8);
  b_le(x, version, 4);
  b_le(x, es, 4);
  b_le(x, strlen(meta), 4);
  b_raw(x, meta, strlen(meta));
  b_le(x, count, 4);
}
static inline void b_tensor_head(bytes *x, const char *name, int ndim, const int64_t *dims) {
  b_le(x, strlen(name), 2);
  b_raw(x, name, strlen(name));
  b_le(x, (uint32_t)ndim, 4);
  for (int d = 0; d < ndim; d++)
    b_le(x, (uint64_t)dims[d], 8);
}
static inline void b_crc(bytes *x) { b_le(x, crc32(crc32(0L, Z_NULL, 0), x->b, (uInt)x->n), 4); }

/* Puts a correct CRC back after editing a file's bytes. */
static inline void fix_crc(unsigned char *b, size_t n) {
  uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
  for (int i = 0; i < 4; i++)
    b[n - 4 + i] = (unsigned char)(c >> (8 * i));
}

/* Loading path into a one-tensor list "w" of shape (2,) must fail, say
 * every fragment and leave w's values alone. Returns the status. */
static inline int assert_load_fails(const char *path, const char *frag1, const char *frag2) {
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  w->data[0] = 11;
  w->data[1] = 12;
  tg_params *lists[] = {&p};
  tg_error err = {0};
  tg_status st = tg_checkpoint_load(path, lists, 1, &err);
  ck_assert_msg(st != TG_OK && err.status == st, "loaded a bad file (%s)", frag1);
  ck_assert_msg(strstr(err.msg, frag1) && (!frag2 || strstr(err.msg, frag2)),
                "\"%s\" lacks \"%s\" / \"%s\"", err.msg, frag1, frag2 ? frag2 : "");
  ck_assert(w->data[0] == 11 && w->data[1] == 12);
  tg_params_free(&p);
  return st;
}

#endif
