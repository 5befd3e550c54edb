/* arena.c — chained blocks, folded into one at reset.
 *
 * Blocks grow geometrically so a step that needs B bytes costs O(log B)
 * system allocations the first time and none once the arena has folded to
 * a block of that size. Memory is never returned to the system before
 * tg_arena_release: the largest step seen sets the footprint.
 */
#include "arena.h"

#include <assert.h>
#include <stdlib.h>

#include "tensor.h"

struct tg_arena_block {
  tg_arena_block *prev;
  size_t size; /* usable bytes after the header */
  size_t used;
};

#define HEADER    (((sizeof(tg_arena_block) + TG_ALIGN - 1) / TG_ALIGN) * TG_ALIGN)
#define MIN_BLOCK ((size_t)1 << 16)

static char *block_base(tg_arena_block *b) { return (char *)b + HEADER; }

void tg_arena_init(tg_arena *a) { *a = (tg_arena){0}; }

static void free_spare(tg_arena *a) {
  free(a->spare);
  a->spare = NULL;
}

static tg_arena_block *block_new(tg_arena *a, size_t size) {
  tg_arena_block *b = a->spare && a->spare->size >= size ? a->spare : NULL;
  if (b) {
    a->spare = NULL;
    size = b->size;
  } else {
    b = aligned_alloc(TG_ALIGN, HEADER + size);
    if (!b)
      return NULL;
    a->sys_allocs++;
  }
  b->prev = NULL;
  b->size = size;
  b->used = 0;
  a->capacity += size;
  if (a->capacity > a->high)
    a->high = a->capacity;
  return b;
}

static void free_chain(tg_arena *a, tg_arena_block *b, tg_arena_block *stop) {
  while (b != stop) {
    tg_arena_block *p = b->prev;
    a->capacity -= b->size;
    free(b);
    b = p;
  }
}

static void free_kept(tg_arena *a) {
  while (a->kept) {
    tg_arena_block *p = a->kept->prev;
    free(a->kept);
    a->kept = p;
  }
  a->kept_bytes = 0;
}

void tg_arena_release(tg_arena *a) {
  free_chain(a, a->head, NULL);
  free_kept(a);
  free_spare(a);
  a->head = NULL;
  a->in_use = 0;
  a->high = 0;
}

void *tg_arena_alloc(tg_arena *a, size_t bytes) {
  size_t n = (bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
  if (n < bytes || n > SIZE_MAX / 4)
    return NULL; /* overflow, or so large that doubling a block size below would overflow */
  tg_arena_block *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t size = a->capacity > MIN_BLOCK ? a->capacity : MIN_BLOCK;
    while (size < n)
      size *= 2;
    tg_arena_block *nb = block_new(a, size);
    if (!nb)
      return NULL;
    nb->prev = b;
    a->head = b = nb;
  }
  void *p = block_base(b) + b->used;
  b->used += n;
  a->in_use += n;
  if (a->in_use > a->peak)
    a->peak = a->in_use;
  return p;
}

void tg_arena_retire(tg_arena *a) {
  free_spare(a);
  /* The chain moves, whole, in front of the kept blocks. */
  tg_arena_block *b = a->head;
  if (b) {
    tg_arena_block *last = b;
    while (last->prev)
      last = last->prev;
    last->prev = a->kept;
    a->kept = b;
    a->kept_bytes += a->capacity;
  }
  a->head = NULL;
  a->capacity = 0;
  a->high = 0;
  a->in_use = 0;
}

void tg_arena_reset(tg_arena *a) {
  free_kept(a);
  free_spare(a);
  tg_arena_block *b = a->head;
  const int fits = b && !b->prev && b->size >= a->high;
  if (a->high > 0 && !fits) {
    /* Several blocks were needed, or one that a rewind freed: replace
     * them by one as large as the most the step held, so the next step
     * of the same size fits without the system. */
    size_t total = a->high;
    free_chain(a, b, NULL);
    a->head = block_new(a, total);
  } else if (b) {
    b->used = 0;
  }
  a->high = a->capacity;
  a->in_use = 0;
}

tg_arena_mark tg_arena_get_mark(const tg_arena *a) {
  return (tg_arena_mark){a->head, a->head ? a->head->used : 0, a->in_use};
}

void tg_arena_rewind(tg_arena *a, tg_arena_mark m) {
  /* Blocks chained on after the mark are freed but the largest, kept as
   * the spare: a repeated evaluation (gradcheck's) then runs in memory
   * already mapped, while repeated rewinds still cannot grow the arena. */
  tg_arena_block *b = a->head;
  while (b && b != m.block) {
    tg_arena_block *p = b->prev;
    a->capacity -= b->size;
    if (!a->spare || b->size > a->spare->size) {
      free(a->spare);
      a->spare = b;
    } else {
      free(b);
    }
    b = p;
  }
  a->head = b;
  if (b)
    b->used = m.used;
  assert(b || m.block == NULL);
  a->in_use = m.in_use;
}
