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

/* The one parallel loop of the engine, used by every kernel that threads
 * (elementwise, broadcasting, movement, reductions, patches, products,
 * optimizer updates).
 *
 * tg_parallel_for(n, grain, work, fn, ctx) calls fn(ctx, lo, hi) over the
 * items [0, n). work estimates the whole loop's cost in simple element
 * operations: below TG_PAR_MIN (measured here: a 2-thread fork/join costs
 * about what 10^4-10^5 of them do) fn gets all of [0, n) in one call on
 * this thread, and OpenMP is never entered (entering libgomp at all, even
 * with a false `if` clause, costs microseconds: more than a small op).
 * Otherwise [0, n) is cut into chunks of grain items, fixed by n and grain
 * alone. Each thread runs a contiguous block of chunks, one chunk at a
 * time, then takes what is left of the others' blocks (on one thread, the
 * chunks run in order): when another process deschedules a thread, the
 * others take its chunks instead of waiting for it, and no two threads
 * work chunk by chunk side by side. fn must compute each item the same
 * way whichever chunk or thread it falls in, so results never depend on
 * the thread count. */
#define TG_PAR_MIN 100000

/* A grain for elementwise loops: enough elements that handing out a chunk
 * (an atomic add) costs nothing in comparison, few enough that two
 * threads share even a tensor just above TG_PAR_MIN. */
#define TG_GRAIN 16384

/* The attribute of an elementwise kernel: the build targets plain x86-64
 * (SSE2), so a kernel gets x86-64-v3 (AVX2) and x86-64-v4 (AVX-512) clones,
 * chosen at load time. v4 rather than bare avx512f: without AVX-512BW
 * and VL, GCC keeps byte and word conversions (the data set's pixels) at 8
 * lanes. The clones do the same IEEE operations on wider vectors (the
 * build does not contract a·b + c into FMAs), so their bits do not depend
 * on the machine's vector width. */
#define TG_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

typedef void (*tg_range_fn)(void *ctx, int64_t lo, int64_t hi);

TG_API void tg_parallel_for(int64_t n, int64_t grain, int64_t work, tg_range_fn fn, void *ctx);

/* The grain for items of item_cost elements each: about TG_GRAIN elements
 * per chunk, at least one item. */
static inline int64_t tg_grain_of(int64_t item_cost) {
  return item_cost >= TG_GRAIN ? 1 : TG_GRAIN / (item_cost > 0 ? item_cost : 1);
}

#endif
