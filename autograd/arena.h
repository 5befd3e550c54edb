/* arena.h — the bump allocator behind a step's intermediates.
 *
 * Allocation bumps a pointer inside the current block; when a block is
 * full a bigger one is chained on. tg_arena_reset releases everything at
 * once, and if more than one block was needed (or a rewind freed one) it
 * replaces them with a single block as large as the most the step held,
 * so a steady-state step allocates from the system zero times, scratch
 * that an op rewinds included. The arena never frees single
 * allocations and knows nothing about tensors.
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "tg_api.h"

typedef struct tg_arena_block tg_arena_block;

typedef struct tg_arena {
  tg_arena_block *head;  /* current block; older ones follow ->prev */
  size_t in_use;         /* bytes handed out since the last reset */
  size_t peak;           /* largest in_use ever seen */
  size_t capacity;       /* bytes in all blocks */
  size_t high;           /* the most capacity held since the last reset */
  uint64_t sys_allocs;   /* system allocations made so far */
  tg_arena_block *kept;  /* blocks of earlier steps, kept unused by tg_arena_retire */
  size_t kept_bytes;     /* their size */
  tg_arena_block *spare; /* the largest block a rewind released, for the next block needed */
} tg_arena;

/* A mark remembers the arena's position so tg_arena_rewind can release
 * everything allocated after it (gradcheck's repeated evaluations; ops'
 * scratch, released when the op is done). Of the blocks a rewind
 * releases, the largest is kept as a spare that the next block needed
 * reuses when it fits, so the same evaluation repeated from the same mark
 * allocates from the system (and faults its pages in) once, not every
 * time; reset, retire and release free the spare. */
typedef struct tg_arena_mark {
  tg_arena_block *block;
  size_t used;
  size_t in_use;
} tg_arena_mark;

TG_API void tg_arena_init(tg_arena *a);
TG_API void tg_arena_release(tg_arena *a); /* frees every block */

/* Returns `bytes` of TG_ALIGN-aligned memory, or NULL if the system refuses. */
TG_API void *tg_arena_alloc(tg_arena *a, size_t bytes);

TG_API void tg_arena_reset(tg_arena *a);
/* Like reset, but the step's blocks are kept, unused, until the next plain
 * reset or the release: nothing handed out before is handed out again, so
 * a stale pointer into them never aliases a newer allocation (anomaly
 * mode). Memory grows by a step's size at every retire. */
TG_API void tg_arena_retire(tg_arena *a);
TG_API tg_arena_mark tg_arena_get_mark(const tg_arena *a);
TG_API void tg_arena_rewind(tg_arena *a, tg_arena_mark m);

#endif
