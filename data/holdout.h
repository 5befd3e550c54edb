/* holdout.h — a validation set held out of a training set by a seeded,
 * reproducible choice.
 *
 * The choice depends on the seed and the set's size only (one generator,
 * drawn in a fixed order, no threads), so the same seed holds out the same
 * samples on every machine and thread count. Plain heap memory, as the
 * rest of data.h; nothing here touches a tape.
 */
#ifndef TG_HOLDOUT_H
#define TG_HOLDOUT_H

#include "data.h"

/* Moves n_val samples of ds, chosen uniformly without replacement by a
 * generator seeded from seed, into val (zeroed first), in their order in
 * ds; ds keeps the others, in their order. When val_index is not NULL it
 * receives the n_val original indices of the held-out samples, ascending.
 * 1 <= n_val < ds->n, else TG_ERR_ARG; TG_ERR_NULL, TG_ERR_MEMORY. On
 * error ds is unchanged and val holds nothing to free. */
TG_API tg_status tg_dataset_holdout(tg_dataset *ds, int64_t n_val, uint64_t seed, tg_dataset *val,
                                    int64_t *val_index, tg_error *err);

#endif
