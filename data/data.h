/* data.h — IDX files (the MNIST format), data sets and mini-batches.
 *
 * The IDX reader takes gzipped or plain files alike (zlib) and checks the
 * magic, the element type, the rank, the dimensions against the file's
 * real size, and truncation, naming the file and the byte offset of what
 * is wrong. It never allocates what the header merely claims before
 * checking it is plausible.
 *
 * Nothing here touches the tape except tg_dataset_batch, which returns
 * arena tensors; everything else is plain heap memory owned by the caller
 * and freed by the matching _free. No function aborts: each returns TG_OK
 * or a tg_status and fills err (which may be NULL; as everywhere, an err
 * that already holds an error keeps its first message, so start from
 * `tg_error err = {0}`).
 */
#ifndef TG_DATA_H
#define TG_DATA_H

#include "tape.h"

/* ---------------------------------------------------------------------
 * IDX files
 *
 * Layout (big-endian): two zero bytes, the element type (0x08 = unsigned
 * byte), the rank r (1..4 here), r 32-bit dimensions, then the elements in
 * row-major order and nothing after them. Byte offsets in messages count
 * from 0 in the decompressed contents, e.g.
 *   "train-images-idx3-ubyte.gz: byte 3: rank 7 (an IDX image file has rank 3)"
 */

/* The largest data part the reader accepts (2 GiB): bigger claims are
 * rejected from the header alone, before any allocation. */
#define TG_IDX_MAX_BYTES ((int64_t)1 << 31)

/* An IDX array of unsigned bytes (type 0x08, the only type MNIST uses). */
typedef struct tg_idx {
  int ndim;
  int64_t dims[4];
  int64_t count; /* product of dims */
  uint8_t *data; /* count bytes, malloc'd */
} tg_idx;

/* Reads path into out (zeroed first; out->data is the caller's, freed by
 * tg_idx_free). Errors: TG_ERR_IO (cannot open or read: strerror),
 * TG_ERR_FORMAT (empty, truncated anywhere, bad magic, a type other than
 * 0x08, rank 0 or > 4, a zero dimension, a size over TG_IDX_MAX_BYTES,
 * bytes after the data, a corrupt gzip stream), TG_ERR_MEMORY. On error out
 * holds nothing to free. A gzipped file is read incrementally, so a header
 * that lies costs at most about twice what the stream really holds. */
TG_API tg_status tg_idx_read(const char *path, tg_idx *out, tg_error *err);
/* Writes a plain (or, when path ends in ".gz", gzipped) IDX file. idx must
 * have 1..4 dims, each in 1..2^32-1, with count their product. Not atomic:
 * on error a partial file may remain. */
TG_API tg_status tg_idx_write(const char *path, const tg_idx *idx, tg_error *err);
/* Frees idx->data and zeroes idx; NULL or a zeroed idx is a no-op. */
TG_API void tg_idx_free(tg_idx *idx);

/* ---------------------------------------------------------------------
 * Data sets */

/* A labelled image set: n samples of rows×cols bytes and a label each. */
typedef struct tg_dataset {
  int64_t n;
  int64_t rows, cols;
  int classes;     /* 10 */
  uint8_t *pixels; /* (n, rows, cols), 0..255, malloc'd */
  uint8_t *labels; /* (n,), each < classes, malloc'd */
} tg_dataset;

/* Reads an image file (rank 3) and its label file (rank 1), checking that
 * the counts agree and every label is below `classes` (1..256; the message
 * names the file and the index of the first bad label). ds is zeroed first
 * and holds nothing to free on error. */
TG_API tg_status tg_dataset_load(const char *images, const char *labels, int classes,
                                 tg_dataset *ds, tg_error *err);

/* Opens a named data set, 10 classes each:
 *   "fashion-mnist"  Debian's dataset-fashion-mnist, read from
 *                    /usr/share/datasets/fashion-mnist/ (60,000 + 10,000);
 *   "mnist-digits"   the 8,000 + 2,000 real digits that
 *                    scripts/mnist-digits.sh converts, read from the first
 *                    of these that holds a folder mnist-digits/:
 *                    $TAPEGRAD_DATA (when set and not empty), the user's
 *                    data directory ($XDG_DATA_HOME/tapegrad, else
 *                    $HOME/.local/share/tapegrad), the install prefix's
 *                    share/tapegrad, the source tree's datasets/ (for
 *                    programs run from the build);
 *   anything else    a directory holding the four standard MNIST files
 *                    train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *                    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each
 *                    plain or with .gz (the plain one wins if both exist).
 * A missing file gives TG_ERR_IO with a message saying how to get the set.
 * train and test are zeroed first and hold nothing to free on error. */
TG_API tg_status tg_dataset_open(const char *name, tg_dataset *train, tg_dataset *test,
                                 tg_error *err);

/* Frees both buffers and zeroes ds; NULL or a zeroed ds is a no-op. */
TG_API void tg_dataset_free(tg_dataset *ds);

/* Moves the last n_val samples of ds (after it was shuffled by the caller,
 * if wanted) into val; ds keeps the rest. 1 <= n_val < ds->n, else
 * TG_ERR_ARG and nothing changes. val is zeroed first. */
TG_API tg_status tg_dataset_split(tg_dataset *ds, int64_t n_val, tg_dataset *val, tg_error *err);

/* A shuffled order: order[i] = a permutation of 0..n-1 from rng
 * (Fisher–Yates); order is filled, not read. n <= 0 does nothing. */
TG_API void tg_shuffle(int64_t *order, int64_t n, tg_rng *rng);

/* The mini-batch of samples order[start..start+count) (order NULL: the
 * identity) as arena tensors: x with pixels scaled to [0, 1] (pixel / 255,
 * correctly rounded in tg_real), shaped (count, rows·cols) when flatten,
 * else (count, 1, rows, cols); labels (count,) holding class indices
 * (labels may be NULL when they are not wanted). Returns x, or NULL with
 * the tape failed (a range past the set's end, an order entry that is not
 * a sample index, the tape already failed). */
TG_API tg_tensor *tg_dataset_batch(tg_tape *tape, const tg_dataset *ds, const int64_t *order,
                                   int64_t start, int64_t count, int flatten, tg_tensor **labels);

/* Asks the memory system for the samples order[start..start+count) (order
 * NULL: the identity) ahead of a later tg_dataset_batch, and returns at
 * once: a hint that changes no value. A training loop calls it for the
 * next batch before computing this one, so that the shuffled rows' cache
 * misses overlap the forward and backward passes instead of stalling the
 * next gather (TwoLayerNet: a gather of 100 rows from 24 to 8 µs). The
 * part of the range outside the set and order entries that are not
 * sample indices are skipped; a NULL ds does nothing. */
TG_API void tg_dataset_prefetch(const tg_dataset *ds, const int64_t *order, int64_t start,
                                int64_t count);

#endif
