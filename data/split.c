/* split.c — holding a validation set out of a training set (data.h's
 * tg_dataset_split, holdout.h's tg_dataset_holdout).
 *
 * Both mark the samples to hold out and move them with one routine, which
 * copies both parts out in their original order: training on the rest sees
 * the samples it would have seen without the split, minus the held-out
 * ones. tg_dataset_split holds out the last n_val; tg_dataset_holdout a
 * seeded choice, the first n_val places of a partial Fisher–Yates shuffle.
 * The choice depends on nothing but the seed and the set's size: no thread
 * count, no clock.
 */
#include <stdlib.h>
#include <string.h>

#include "holdout.h"

/* Checks the arguments both splits share, zeroes val, and sets *held to a
 * mask of ds->n zero bytes for the caller to mark. */
static tg_status split_begin(const char *who, tg_dataset *ds, int64_t n_val, tg_dataset *val,
                             uint8_t **held, tg_error *err) {
  *held = NULL;
  if (!ds || !val || val == ds || !ds->pixels || !ds->labels)
    return tg_error_set(err, TG_ERR_NULL, "%s: %s", who,
                        !ds || !ds->pixels || !ds->labels ? "ds is NULL or empty"
                        : !val                            ? "val is NULL"
                                                          : "val is ds");
  memset(val, 0, sizeof *val);
  if (n_val < 1 || n_val >= ds->n)
    return tg_error_set(
        err, TG_ERR_ARG,
        "%s: n_val %lld is not in [1, %lld] (the set has %lld samples and must keep one)", who,
        (long long)n_val, (long long)(ds->n - 1), (long long)ds->n);
  *held = calloc((size_t)ds->n, 1);
  return *held ? TG_OK
               : tg_error_set(err, TG_ERR_MEMORY, "%s: out of memory for %lld samples", who,
                              (long long)ds->n);
}

/* Moves the n_val samples marked in held into val and keeps the rest in
 * ds, both in their order; frees held. On error ds is unchanged. */
static tg_status split_move(const char *who, tg_dataset *ds, int64_t n_val, uint8_t *held,
                            tg_dataset *val, int64_t *val_index, tg_error *err) {
  const int64_t n = ds->n, keep = n - n_val, px = ds->rows * ds->cols;
  uint8_t *vp = malloc((size_t)(n_val * px)), *vl = malloc((size_t)n_val); /* (n_val, rows, cols) */
  uint8_t *tp = malloc((size_t)(keep * px)), *tl = malloc((size_t)keep);   /* (keep, rows, cols) */
  tg_status st = TG_OK;
  if (!vp || !vl || !tp || !tl) {
    st = tg_error_set(err, TG_ERR_MEMORY, "%s: out of memory for %lld samples", who,
                      (long long)n);
    goto done;
  }
  int64_t v = 0, k = 0;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = ds->pixels + i * px;
    if (held[i]) {
      if (val_index)
        val_index[v] = i;
      memcpy(vp + v * px, src, (size_t)px);
      vl[v++] = ds->labels[i];
    } else {
      memcpy(tp + k * px, src, (size_t)px);
      tl[k++] = ds->labels[i];
    }
  }
  free(ds->pixels);
  free(ds->labels);
  *val = *ds;
  val->n = n_val;
  val->pixels = vp;
  val->labels = vl;
  ds->n = keep;
  ds->pixels = tp;
  ds->labels = tl;
  vp = vl = tp = tl = NULL;
done:
  free(held);
  free(vp);
  free(vl);
  free(tp);
  free(tl);
  return st;
}

tg_status tg_dataset_split(tg_dataset *ds, int64_t n_val, tg_dataset *val, tg_error *err) {
  uint8_t *held;
  tg_status st = split_begin("dataset_split", ds, n_val, val, &held, err);
  if (st != TG_OK)
    return st;
  memset(held + (ds->n - n_val), 1, (size_t)n_val);
  return split_move("dataset_split", ds, n_val, held, val, NULL, err);
}

tg_status tg_dataset_holdout(tg_dataset *ds, int64_t n_val, uint64_t seed, tg_dataset *val,
                             int64_t *val_index, tg_error *err) {
  uint8_t *held;
  tg_status st = split_begin("dataset_holdout", ds, n_val, val, &held, err);
  if (st != TG_OK)
    return st;
  const int64_t n = ds->n;
  int64_t *order = malloc((size_t)n * sizeof *order);
  if (!order) {
    free(held);
    return tg_error_set(err, TG_ERR_MEMORY, "dataset_holdout: out of memory for %lld samples",
                        (long long)n);
  }
  /* The first n_val places of a Fisher–Yates shuffle: a uniform choice. */
  tg_rng rng;
  tg_rng_seed(&rng, seed ^ 0x76616c2d73706c74ULL); /* not the init's stream */
  for (int64_t i = 0; i < n; i++)
    order[i] = i;
  for (int64_t i = 0; i < n_val; i++) {
    int64_t j = i + (int64_t)tg_rng_below(&rng, (uint64_t)(n - i));
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
    held[order[i]] = 1;
  }
  free(order);
  return split_move("dataset_holdout", ds, n_val, held, val, val_index, err);
}
