/* rng.h — the one seeded generator (xoshiro256**, Blackman & Vigna 2018).
 *
 * A tg_rng is plain state owned by whoever needs it (each tape holds one);
 * there is no global generator. Same seed, same sequence, on every machine.
 */
#ifndef TG_RNG_H
#define TG_RNG_H

#include <stdint.h>

#include "tg_api.h"

typedef struct tg_rng {
  uint64_t s[4];
  double spare; /* second normal deviate of the last Box-Muller pair */
  int has_spare;
} tg_rng;

/* Seeds the state through splitmix64, as the generator's authors advise. */
TG_API void tg_rng_seed(tg_rng *r, uint64_t seed);
TG_API uint64_t tg_rng_next(tg_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
TG_API double tg_rng_uniform(tg_rng *r);
/* Standard normal deviate (Box-Muller). */
TG_API double tg_rng_normal(tg_rng *r);
/* Uniform integer in [0, n), without modulo bias; n >= 1. */
TG_API uint64_t tg_rng_below(tg_rng *r, uint64_t n);

#endif
