/* dist.h — data-parallel training: several processes (ranks), each with
 * the whole model, the same weights to the bit on every rank and at any
 * rank count.
 *
 * A global batch is cut into V shards (micro-batches). Rank r of N
 * computes the V/N consecutive shards r·V/N .. (r+1)·V/N − 1, one forward
 * and backward each, and hands each shard's gradients to
 * tg_dist_shard_accumulate; tg_dist_shard_allreduce then leaves on every
 * rank the mean of the V shard gradients, summed by one fixed pairwise
 * tree (below), and every rank runs the same optimizer step. Nothing here
 * knows a model, an optimizer or a data set, and nothing calls MPI's own
 * reductions (whose order the standard leaves open).
 *
 * The tree: level by level, neighbours are added ((g0+g1), (g2+g3), ...),
 * an odd last one is carried up unchanged, until one sum is left. When
 * V/N is a power of two each rank's shards are whole subtrees, so N ranks
 * sum exactly as one process does: 1, 2 or 4 ranks with V = 4 give the
 * same bits.
 *
 * Built without MPI (meson -Dmpi=disabled) every call works as a single
 * rank. No function here aborts: each returns a status with err filled;
 * a rank that meets any fatal error must call tg_dist_abort, or the other
 * ranks wait for it (until the watchdog ends the job).
 *
 *   tg_dist *d = tg_dist_new(&argc, &argv, NULL, &err);
 *   tg_dist_check_config(d, fields, n_fields, &err);   // same on all ranks?
 *   tg_dist_shards *s = tg_dist_shards_new(d, &params, &buffers, V, &err);
 *   for (step...) {
 *     tg_dist_shard_begin(s);
 *     for (int i = first; i < first + count; i++) {   // tg_dist_shard_range
 *       forward and backward of shard i; tg_tape_reset;
 *       tg_dist_shard_accumulate(s, &err);
 *     }
 *     tg_dist_shard_allreduce(s, &err);
 *     tg_optim_step(opt);
 *   }
 */
#ifndef TG_DIST_H
#define TG_DIST_H

#include "params.h"

typedef struct tg_dist tg_dist;
typedef struct tg_dist_shards tg_dist_shards;

typedef struct tg_dist_options {
  /* Seconds without a completed step (tg_dist_step_done) after which the
   * watchdog aborts the whole job; 0 means 300, < 0 no watchdog. */
  double timeout;
  /* Largest message of an exchange in bytes; 0 means 25 MiB. Sums do not
   * depend on it. */
  int64_t bucket_bytes;
} tg_dist_options;

/* 1 when the library was built with MPI, 0 for the single-rank stub. */
TG_API int tg_dist_available(void);

/* Joins the job: initialises MPI (thread level MULTIPLE, for the
 * watchdog) unless the program did, on a private duplicate of
 * MPI_COMM_WORLD whose errors return instead of aborting, and starts the
 * watchdog when there is more than one rank. argc/argv may be NULL; opt
 * NULL means the defaults. NULL with err filled on an invalid option or
 * an MPI failure.
 *
 * When it initialises MPI, it first makes Open MPI's shared-memory
 * transport copy through its buffers rather than by the kernel's single
 * copy (the environment variable OMPI_MCA_btl_vader_single_copy_mechanism
 * =none), unless the environment already sets it (mpirun's --mca does):
 * exchanges of 0.1 to 2 MiB, the book networks' gradients, take half the
 * time (benchmarks/README.md). */
TG_API tg_dist *tg_dist_new(int *argc, char ***argv, const tg_dist_options *opt, tg_error *err);

/* Stops the watchdog, frees the communicator and finalises MPI if
 * tg_dist_new initialised it. NULL is a no-op. */
TG_API void tg_dist_free(tg_dist *d);

TG_API int tg_dist_rank(const tg_dist *d); /* 0 .. size-1; 0 for NULL */
TG_API int tg_dist_size(const tg_dist *d); /* 1 for NULL */

/* Prints msg prefixed "[rank r] " to stderr and ends the whole job with
 * exit code 1 (MPI_Abort; exit(1) without MPI). Never returns. */
TG_API _Noreturn void tg_dist_abort(tg_dist *d, const char *msg);

/* Tells the watchdog a step has completed (tg_dist_shard_allreduce does
 * it itself). */
TG_API void tg_dist_step_done(tg_dist *d);

/* ---------------------------------------------------------------------
 * The configuration every rank must share */

typedef struct tg_dist_field {
  const char *name;  /* "model", "seed", "batch", "shards", ... */
  const char *value; /* its value as text */
} tg_dist_field;

/* Collective: compares a hash of each field (and of the library's
 * version and element type, added first) across the ranks. TG_OK on
 * every rank when all agree; otherwise TG_ERR_ARG on every rank, with a
 * message naming the first field that differs, this rank's value and the
 * ranks that differ from rank 0. */
TG_API int tg_dist_check_config(tg_dist *d, const tg_dist_field *fields, int n, tg_error *err);

/* Collective: x (n) becomes, on every rank, the sum over ranks of the
 * ranks' x, added in the pairwise tree over ranks (recursive halving and
 * doubling for a power-of-two rank count; otherwise each slice is summed
 * by its owner in the same tree, which for 3 ranks is rank order). Every
 * rank must pass the same n. */
TG_API int tg_dist_allreduce(tg_dist *d, tg_real *x, int64_t n, tg_error *err);

/* What this rank's allreduces have done since tg_dist_new: seconds spent
 * in their messages (waiting for a late peer included) and bytes sent.
 * Either pointer may be NULL; zeros for NULL or one rank. */
TG_API void tg_dist_exchanged(const tg_dist *d, double *seconds, int64_t *bytes);

/* Collective: every rank's `bytes` bytes at mine land, in rank order, in
 * all (size·bytes). Moves bytes, adds nothing: callers that sum the
 * pieces choose the order (integers, exactly; reals, in rank order). */
TG_API int tg_dist_allgather(tg_dist *d, const void *mine, int64_t bytes, void *all, tg_error *err);
/* (Both take d NULL as one process alone.) */

/* Collective: rank root's `bytes` bytes at buf replace every other rank's
 * (in pieces of at most the bucket size, so any size works). */
TG_API int tg_dist_broadcast(tg_dist *d, void *buf, int64_t bytes, int root, tg_error *err);

/* Collective: whether every rank holds the same bytes in the tensors of
 * the n lists (weights, buffers, optimizer state), compared by a 64-bit
 * checksum. TG_OK on every rank when all agree; otherwise TG_ERR_ARG on
 * every rank, with a message naming the first rank that differs from
 * rank 0 and both checksums. Every rank must pass the same lists' shapes. */
TG_API int tg_dist_check_same(tg_dist *d, const tg_params *const *lists, int n, tg_error *err);

/* ---------------------------------------------------------------------
 * Shards: a global batch as V micro-batches */

/* Exchanges the gradients of params and the mean of buffers (Batch Norm's
 * running statistics; NULL for none) for V = shards shards, V a multiple
 * of the rank count. Flattens params' gradients (tg_params_flatten_grads,
 * with room for the buffers after them) unless they are flat already with
 * that room; allocates every working buffer now. d NULL means one process
 * alone. Both lists must outlive the object. NULL with err filled. */
TG_API tg_dist_shards *tg_dist_shards_new(tg_dist *d, tg_params *params, tg_params *buffers,
                                          int shards, tg_error *err);
TG_API void tg_dist_shards_free(tg_dist_shards *s);

/* The shards this rank computes: first .. first + count − 1 of V. */
TG_API void tg_dist_shard_range(const tg_dist_shards *s, int *first, int *count);

/* Starts a step: zeroes the gradients (skipping those the optimizer's step
 * left zero, tensor.h's TG_ZEROED) and remembers the buffers, so every
 * shard's forward starts from the same running statistics. */
TG_API void tg_dist_shard_begin(tg_dist_shards *s);

/* After one shard's backward: adds its gradients (and the buffers it
 * updated) into this rank's part of the tree, then zeroes the gradients
 * and restores the buffers for the next shard. Allocates nothing. Fails
 * (TG_ERR_ARG) when called more than count times in a step. */
TG_API int tg_dist_shard_accumulate(tg_dist_shards *s, tg_error *err);

/* Collective, after this rank's count shards: every parameter's gradient
 * becomes the mean over all V shards and every buffer the mean of the
 * shards' updated buffers, the same bits on every rank. Then reports the
 * step to the watchdog. */
TG_API int tg_dist_shard_allreduce(tg_dist_shards *s, tg_error *err);

#endif
