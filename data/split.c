/* holdout.c — a seeded validation split (holdout.h).
 *
 * A partial Fisher–Yates shuffle over the indices picks the held-out
 * samples; both parts are then copied out in their original order, so
 * training on the rest sees the samples it would have seen without the
 * split, minus the held-out ones. It must not depend on anything but the
 * seed and the set's size: no thread count, no clock.
 */
#include <stdlib.h>
#include <string.h>

#include "holdout.h"

int tg_dataset_holdout(tg_dataset *ds, int64_t n_val, uint64_t seed, tg_dataset *val,
                       int64_t *val_index, tg_error *err) {
  if (!ds || !val || val == ds || !ds->pixels || !ds->labels)
    return tg_error_set(err, TG_ERR_NULL, "dataset_holdout: %s",
                        !ds || !ds->pixels || !ds->labels ? "ds is NULL or empty"
                        : !val                            ? "val is NULL"
                                                          : "val is ds");
  memset(val, 0, sizeof *val);
  if (n_val < 1 || n_val >= ds->n)
    return tg_error_set(err, TG_ERR_ARG,
                        "dataset_holdout: n_val %lld is not in [1, %lld] (the set has %lld "
                        "samples and must keep one)",
                        (long long)n_val, (long long)(ds->n - 1), (long long)ds->n);
  const int64_t n = ds->n, keep = n - n_val, px = ds->rows * ds->cols;
  int64_t *order = malloc((size_t)n * sizeof *order);
  uint8_t *held = calloc((size_t)n, 1);
  uint8_t *vp = malloc((size_t)(n_val * px)), *vl = malloc((size_t)n_val); /* (n_val, rows, cols) */
  uint8_t *tp = malloc((size_t)(keep * px)), *tl = malloc((size_t)keep);   /* (keep, rows, cols) */
  int st = TG_OK;
  if (!order || !held || !vp || !vl || !tp || !tl) {
    st = tg_error_set(err, TG_ERR_MEMORY, "dataset_holdout: out of memory for %lld samples",
                      (long long)n);
    goto done;
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
  free(order);
  free(held);
  free(vp);
  free(vl);
  free(tp);
  free(tl);
  return st;
}
