/* augment.h — data augmentation for image batches, on the fly: random
 * crops of a zero-padded image, random horizontal flips and random
 * erasing of a rectangle.
 *
 * Every sample's draw comes from its own generator, seeded from a key the
 * caller makes of (seed, epoch, sample index), so an augmented batch is
 * the same whatever the batch size, the order of the samples within it or
 * the number of threads. Functions over caller-owned buffers: nothing
 * here allocates, touches a tape or keeps state.
 */
#ifndef TG_AUGMENT_H
#define TG_AUGMENT_H

#include "tape.h"

/* What to do to each image, in this order: crop_pad > 0 pads every side
 * with crop_pad zeros and takes a random crop of the image's size (offsets
 * uniform in [0, 2·crop_pad] each way); flip mirrors left-right with
 * probability ½; erase > 0 is the probability of random erasing (Zhong et
 * al., 2017): a rectangle of 2% to 40% of the image's area (uniform), its
 * aspect ratio h/w log-uniform in [0.3, 1/0.3], placed uniformly where it
 * fits (10 tries, else nothing is erased), filled with values uniform in
 * [0, 1), the range of the pixels tg_dataset_batch makes. A zeroed struct
 * does nothing. */
typedef struct tg_augment {
  int crop_pad;
  int flip;
  double erase; /* probability in [0, 1]; 0: never */
} tg_augment;

/* Parses a comma-separated list of "crop:P" (P in 1..64), "flip" and
 * "erase" or "erase:P" (P in (0, 1], default 0.5), each at most once, in
 * any order, into a (zeroed first). TG_OK, or TG_ERR_ARG with err naming
 * the part that is wrong. */
TG_API tg_status tg_augment_parse(const char *spec, tg_augment *a, tg_error *err);

/* Writes spec back ("crop:2,flip,erase:0.5", "flip", "none") into buf of
 * cap bytes, so that tg_augment_parse gives a back exactly; TG_OK or
 * TG_ERR_ARG when it does not fit. */
TG_API tg_status tg_augment_format(const tg_augment *a, char *buf, size_t cap);

/* Whether a does anything at all. */
TG_API int tg_augment_active(const tg_augment *a);

/* The key of sample `index` in the epoch whose seed is epoch_seed: mixes
 * both, so neighbouring samples and epochs draw independent streams. */
TG_API uint64_t tg_augment_key(uint64_t epoch_seed, int64_t index);

/* dst (rows, cols) = the augmentation of src (rows, cols) drawn from key.
 * src and dst must not overlap. */
TG_API void tg_augment_image(const tg_augment *a, const tg_real *src, tg_real *dst, int64_t rows,
                             int64_t cols, uint64_t key);

/* dst (count, rows, cols) = sample i of src (count, rows, cols) augmented
 * with key tg_augment_key(epoch_seed, index[i]): index holds the samples'
 * indices in the data set. Runs over the samples in parallel (OpenMP);
 * the result does not depend on the thread count. */
TG_API void tg_augment_batch(const tg_augment *a, const tg_real *src, tg_real *dst, int64_t count,
                             int64_t rows, int64_t cols, uint64_t epoch_seed, const int64_t *index);

#endif
