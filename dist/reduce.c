/* reduce.c — sums in a fixed order: across ranks (tg_dist_allreduce) and
 * across one rank's shards (tg_dist_shards).
 *
 * Floating-point addition is commutative but not associative, so the bits
 * of a sum depend only on its tree. Every sum here follows one tree, the
 * level-by-level pairwise tree (neighbours added, an odd last one carried
 * up), whatever the message sizes, bucket sizes or MPI's algorithms. MPI
 * only moves bytes (tg_dist_sendrecv); it never adds. This file must not
 * change the order of any addition without changing the documented tree.
 */
#include "dist_internal.h"
#include "parallel.h"

#include <stdlib.h>
#include <string.h>

TG_KERNEL static void add_into(tg_real *restrict a, const tg_real *restrict b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    a[i] += b[i];
}

static int is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

/* a /= V: the mean over V shards. For a power of two V the product with
 * 1/V (exact) is the quotient to the bit, and several times faster than
 * a division; any other V divides. */
TG_KERNEL static void divide_by(tg_real *restrict a, int64_t n, int V) {
  if (is_pow2(V)) {
    tg_real r = (tg_real)1 / (tg_real)V;
    for (int64_t i = 0; i < n; i++)
      a[i] *= r;
  } else {
    tg_real v = (tg_real)V;
    for (int64_t i = 0; i < n; i++)
      a[i] /= v;
  }
}

/* ------------------------------------------------------------------------
 * Across ranks */

/* N a power of two. Reduce-scatter by recursive halving with the partner
 * distance doubling (1, 2, 4, ...): at distance k rank r and r^k hold the
 * sums over their aligned blocks of k ranks for the same slice, so adding
 * them makes the sum over the block of 2k: exactly the pairwise tree.
 * The owner divides its slice of the sum by V (V > 1: a mean; the same
 * bits as dividing the whole sum afterwards, in a slice still in cache).
 * Then the allgather retraces the steps backwards. */
static int allreduce_pow2(tg_dist *d, tg_real *x, int64_t n, int V, tg_real *tmp, tg_error *err) {
  int64_t lo[32], hi[32];
  int64_t a = 0, b = n;
  int steps = 0;
  for (int k = 1; k < d->size; k <<= 1, steps++) {
    int peer = d->rank ^ k;
    int64_t mid = a + (b - a) / 2;
    int lower = !(d->rank & k);
    int64_t ka = lower ? a : mid, kb = lower ? mid : b; /* kept */
    int64_t sa = lower ? mid : a, sb = lower ? b : mid; /* sent */
    if (tg_dist_sendrecv(d, x + sa, sb - sa, peer, tmp, kb - ka, peer, err) != TG_OK)
      return err ? err->status : TG_ERR_IO;
    add_into(x + ka, tmp, kb - ka);
    lo[steps] = a;
    hi[steps] = b;
    a = ka;
    b = kb;
  }
  if (V > 1)
    divide_by(x + a, b - a, V);
  for (int s = steps - 1; s >= 0; s--) {
    int peer = d->rank ^ (1 << s);
    /* The peer owns the other half of [lo, hi). */
    int lower = !(d->rank & (1 << s));
    int64_t pa = lower ? b : lo[s], pb = lower ? hi[s] : a;
    if (tg_dist_sendrecv(d, x + a, b - a, peer, x + pa, pb - pa, peer, err) != TG_OK)
      return err ? err->status : TG_ERR_IO;
    a = lo[s];
    b = hi[s];
  }
  return TG_OK;
}

/* The pairwise tree over m arrays of n elements, in place: the sum ends in
 * v[0]. */
static void tree_sum(tg_real **v, int m, int64_t n) {
  while (m > 1) {
    int k = 0;
    for (int i = 0; i < m; i += 2) {
      if (i + 1 < m)
        add_into(v[i], v[i + 1], n);
      v[k++] = v[i];
    }
    m = k;
  }
}

/* Any N. Rank c owns slice c; it receives every rank's copy of it (round
 * s: from rank − s, while sending to rank + s), sums them in the pairwise
 * tree in rank order, divides by V as above, then hands the result to
 * every rank the same way. */
static int allreduce_owner(tg_dist *d, tg_real *x, int64_t n, int V, tg_real *tmp, tg_error *err) {
  int N = d->size, r = d->rank;
#define SLICE(c) ((int64_t)(c)*n / N)
  int64_t mine = SLICE(r + 1) - SLICE(r);
  tg_real *v[64] = {0}; /* zeroed: gcc cannot see that N >= 1 fills parts[0] */
  tg_real **parts = N <= 64 ? v : malloc((size_t)N * sizeof *parts);
  if (!parts)
    return tg_error_set(err, TG_ERR_MEMORY, "dist: allreduce: out of memory");
  int status = TG_OK;
  for (int s = 1; s < N && status == TG_OK; s++) {
    int to = (r + s) % N, from = (r - s + N) % N;
    status = tg_dist_sendrecv(d, x + SLICE(to), SLICE(to + 1) - SLICE(to), to,
                              tmp + (int64_t)(s - 1) * mine, mine, from, err);
  }
  if (status == TG_OK) {
    for (int c = 0; c < N; c++) /* rank c's copy arrived in round (r − c) mod N */
      parts[c] = c == r ? x + SLICE(r) : tmp + (int64_t)((r - c + N) % N - 1) * mine;
    tree_sum(parts, N, mine);
    if (parts[0] != x + SLICE(r))
      memcpy(x + SLICE(r), parts[0], (size_t)mine * sizeof(tg_real));
    if (V > 1)
      divide_by(x + SLICE(r), mine, V);
  }
  for (int s = 1; s < N && status == TG_OK; s++) {
    int to = (r + s) % N, from = (r - s + N) % N;
    status = tg_dist_sendrecv(d, x + SLICE(r), mine, to, x + SLICE(from),
                              SLICE(from + 1) - SLICE(from), from, err);
  }
#undef SLICE
  if (parts != v)
    free(parts);
  return status;
}

/* x = (the sum over ranks of x) / V, V >= 1. */
static int allreduce_mean(tg_dist *d, tg_real *x, int64_t n, int V, tg_error *err) {
  if (!d || n < 0 || (n > 0 && !x))
    return tg_error_set(err, TG_ERR_ARG, "dist: allreduce: no job, or %lld elements at NULL",
                        (long long)n);
  if (d->size == 1 || n == 0) {
    if (V > 1)
      divide_by(x, n, V);
    return TG_OK;
  }
  /* Buckets keep messages bounded; each element's tree is the same. */
  int64_t bucket = n < d->bucket ? n : d->bucket;
  /* Power of two: half a bucket at most; otherwise N − 1 slices of
   * ceil(bucket / N). */
  int64_t need = is_pow2(d->size) ? bucket / 2 + 1 : (bucket / d->size + 1) * (d->size - 1);
  tg_real *tmp = tg_dist_scratch(d, need);
  if (!tmp)
    return tg_error_set(err, TG_ERR_MEMORY, "dist: allreduce: out of memory for %lld elements",
                        (long long)need);
  for (int64_t off = 0; off < n; off += bucket) {
    int64_t m = n - off < bucket ? n - off : bucket;
    int rc = is_pow2(d->size) ? allreduce_pow2(d, x + off, m, V, tmp, err)
                              : allreduce_owner(d, x + off, m, V, tmp, err);
    if (rc != TG_OK)
      return rc;
  }
  return TG_OK;
}

int tg_dist_allreduce(tg_dist *d, tg_real *x, int64_t n, tg_error *err) {
  return allreduce_mean(d, x, n, 1, err);
}

/* ------------------------------------------------------------------------
 * Across one rank's shards.
 *
 * Shard gradients arrive one at a time. A stack of partial sums keeps the
 * pairwise tree without holding every shard: a new leaf merges with the
 * top while the top two cover the same number of shards (a binary
 * counter), and at the end the stack folds from the right, which is where
 * the level-by-level tree carries its odd last elements. */

#define MAX_LEVELS 32

struct tg_dist_shards {
  tg_dist *d; /* NULL: one process */
  tg_params *params, *buffers;
  int V, first, count, done;
  int64_t n;                /* exchanged elements: gradients, then buffers */
  tg_real *flat;            /* params->grad_flat */
  tg_real *saved;           /* buffers at the start of the step */
  tg_real *acc[MAX_LEVELS]; /* partial sums, n each */
  int leaves[MAX_LEVELS];   /* shards in each */
  int top;
};

static int64_t buffers_numel(const tg_params *b) { return b ? tg_params_numel(b) : 0; }

tg_dist_shards *tg_dist_shards_new(tg_dist *d, tg_params *params, tg_params *buffers, int shards,
                                   tg_error *err) {
  int N = tg_dist_size(d);
  if (!params || shards < 1 || shards % N != 0) {
    tg_error_set(err, TG_ERR_ARG,
                 "dist: shards_new: %d shards do not split over %d ranks (need a multiple)%s",
                 shards, N, params ? "" : ", or no parameter list");
    return NULL;
  }
  int64_t nb = buffers_numel(buffers);
  if (!params->grad_flat && tg_params_flatten_grads(params, nb, err) != TG_OK)
    return NULL;
  if (params->grad_flat_extra < nb) {
    tg_error_set(err, TG_ERR_ARG,
                 "dist: shards_new: the flat gradients leave room for %lld buffer elements, "
                 "the buffers have %lld",
                 (long long)params->grad_flat_extra, (long long)nb);
    return NULL;
  }
  tg_dist_shards *s = calloc(1, sizeof *s);
  if (!s) {
    tg_error_set(err, TG_ERR_MEMORY, "dist: shards_new: out of memory");
    return NULL;
  }
  *s = (tg_dist_shards){.d = d, .params = params, .buffers = buffers, .V = shards};
  s->count = shards / N;
  s->first = tg_dist_rank(d) * s->count;
  s->flat = params->grad_flat;
  s->n = params->grad_flat_n + nb;
  /* One shard per rank sums nothing locally: its gradients stay where
   * backward put them. Otherwise one buffer per level of the tree. */
  int levels = 0;
  if (s->count > 1)
    for (int c = s->count; c > 0; c >>= 1)
      levels++;
  int ok = !nb || (s->saved = tg_aligned_alloc((size_t)nb * sizeof(tg_real)));
  for (int l = 0; ok && l < levels; l++)
    ok = (s->acc[l] = tg_aligned_alloc((size_t)s->n * sizeof(tg_real))) != NULL;
  if (!ok) {
    tg_dist_shards_free(s);
    tg_error_set(err, TG_ERR_MEMORY, "dist: shards_new: out of memory for %d sums of %lld elements",
                 levels, (long long)s->n);
    return NULL;
  }
  return s;
}

void tg_dist_shards_free(tg_dist_shards *s) {
  if (!s)
    return;
  for (int l = 0; l < MAX_LEVELS; l++)
    free(s->acc[l]);
  free(s->saved);
  free(s);
}

void tg_dist_shard_range(const tg_dist_shards *s, int *first, int *count) {
  if (first)
    *first = s ? s->first : 0;
  if (count)
    *count = s ? s->count : 0;
}

/* Buffers to (dir 1) or from (dir 0) the array b, in list order. */
static void buffers_copy(tg_params *p, tg_real *b, int to_array) {
  for (int i = 0; p && i < p->n; i++) {
    tg_tensor *t = p->items[i];
    size_t bytes = (size_t)t->numel * sizeof(tg_real);
    if (to_array)
      memcpy(b, t->data, bytes);
    else
      memcpy(t->data, b, bytes);
    b += t->numel;
  }
}

void tg_dist_shard_begin(tg_dist_shards *s) {
  if (!s)
    return;
  s->done = 0;
  s->top = 0;
  /* Gradients the optimizer's step left zero are not cleared again
   * (TG_ZEROED); the padding between them stays zero, and the buffers'
   * tail is written by each accumulate before it is read. */
  tg_params_zero_grad(s->params);
  if (s->saved)
    buffers_copy(s->buffers, s->saved, 1);
}

int tg_dist_shard_accumulate(tg_dist_shards *s, tg_error *err) {
  if (!s)
    return tg_error_set(err, TG_ERR_NULL, "dist: shard_accumulate: NULL shards");
  if (s->done >= s->count)
    return tg_error_set(err, TG_ERR_ARG,
                        "dist: shard_accumulate: this rank computes %d shards a step, and this "
                        "is shard %d (missing tg_dist_shard_begin?)",
                        s->count, s->done + 1);
  tg_real *tail = s->flat + s->params->grad_flat_n;
  if (s->saved) {
    buffers_copy(s->buffers, tail, 1);
    buffers_copy(s->buffers, s->saved, 0);
  }
  s->done++;
  if (s->count == 1)
    return TG_OK; /* the leaf is the sum: no copy */
  if (s->top > 0 && s->leaves[s->top - 1] == 1) {
    add_into(s->acc[s->top - 1], s->flat, s->n);
    s->leaves[s->top - 1] = 2;
  } else {
    memcpy(s->acc[s->top], s->flat, (size_t)s->n * sizeof(tg_real));
    s->leaves[s->top++] = 1;
  }
  while (s->top > 1 && s->leaves[s->top - 1] == s->leaves[s->top - 2]) {
    add_into(s->acc[s->top - 2], s->acc[s->top - 1], s->n);
    s->leaves[s->top - 2] *= 2;
    s->top--;
  }
  memset(s->flat, 0, (size_t)s->n * sizeof(tg_real));
  return TG_OK;
}

int tg_dist_shard_allreduce(tg_dist_shards *s, tg_error *err) {
  if (!s)
    return tg_error_set(err, TG_ERR_NULL, "dist: shard_allreduce: NULL shards");
  if (s->done != s->count)
    return tg_error_set(err, TG_ERR_ARG,
                        "dist: shard_allreduce: %d of this rank's %d shards accumulated", s->done,
                        s->count);
  if (s->count > 1) {
    for (int l = s->top - 1; l > 0; l--)
      add_into(s->acc[l - 1], s->acc[l], s->n);
    memcpy(s->flat, s->acc[0], (size_t)s->n * sizeof(tg_real));
  }
  /* The sum over ranks, then the mean over shards: each shard's loss is
   * its micro-batch's mean, so for equal shards this is the gradient of
   * the global batch's mean. */
  if (s->d) {
    if (allreduce_mean(s->d, s->flat, s->n, s->V, err) != TG_OK)
      return err ? err->status : TG_ERR_IO;
  } else if (s->V > 1) {
    divide_by(s->flat, s->n, s->V);
  }
  for (int i = 0; i < s->params->n; i++)
    tg_tensor_bump(s->params->items[i]->grad); /* written above */
  if (s->saved)
    buffers_copy(s->buffers, s->flat + s->params->grad_flat_n, 0);
  s->done = 0;
  tg_dist_step_done(s->d);
  return TG_OK;
}
