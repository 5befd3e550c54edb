/* parallel.h — splitting elementwise work over threads, for any layer.
 *
 * Kernels of ops/ and the optimizers' updates use the same threshold and
 * the same chunking, so a step's threading is decided in one place. Knows
 * nothing about tensors or tapes.
 */
#ifndef TG_PARALLEL_H
#define TG_PARALLEL_H

#include <stdint.h>

#include "tg_api.h"

/* Elementwise and reduction kernels go parallel above this many elements
 * (a 2-thread fork/join costs about what 10^4-10^5 simple element
 * operations do). */
#define TG_PAR_MIN 100000

/* Calls fn(ctx, lo, hi) over [0, n) in fixed chunks: directly on this
 * thread when n < TG_PAR_MIN, else on OpenMP threads. The branch is taken
 * here, not by an `if` clause, because entering libgomp at all costs
 * microseconds — more than a small op. Chunks do not depend on the thread
 * count. */
TG_API void tg_parallel_for(int64_t n, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);

#endif
