/* checkpoint.h — saving and loading named tensors, safely.
 *
 * A checkpoint holds a free-form text header (the program writes the model
 * kind and its configuration there) and the tensors of one or more
 * tg_params lists (weights, buffers, optimizer state), each with its name
 * and shape. The file has a magic, a version and a CRC-32 over all of it.
 * Saving writes a temporary file in the same directory, flushes it to disk
 * and renames it over the target, so a crash leaves either the old
 * checkpoint or the new one, never half of one. A process killed while
 * saving leaves its temporary file (PATH.tmp.PID); the next successful
 * save into that directory removes those whose process no longer exists.
 * Loading reads and checks everything — magic, version, CRC, every name
 * and shape against the lists — before it changes a single tensor, and
 * names what does not match.
 */
#ifndef TG_CHECKPOINT_H
#define TG_CHECKPOINT_H

#include "params.h"

#define TG_CHECKPOINT_META_MAX 4096

/* Writes meta (NULL = "", shorter than TG_CHECKPOINT_META_MAX) and every
 * tensor of lists[0..nlists-1]; names must be unique over all the lists.
 * Returns TG_OK; TG_ERR_ARG/TG_ERR_NULL for bad arguments (no file is
 * touched); or TG_ERR_IO with err naming the path and the failing step
 * ("cannot create the temporary file ...: No such file or directory"),
 * the previous file at path, if any, left as it was and the temporary
 * file removed. A failure to sync the directory after the rename is also
 * TG_ERR_IO, and says that the new file is in place. */
TG_API tg_status tg_checkpoint_save(const char *path, const char *meta, tg_params *const *lists,
                                    int nlists, tg_error *err);

/* Reads only the text header into meta (cap bytes, NUL-terminated), so a
 * program can build the right model before loading. The whole file is
 * checked as for a load (magic, version, structure, CRC); a meta text
 * that does not fit in cap is TG_ERR_ARG. */
TG_API tg_status tg_checkpoint_read_meta(const char *path, char *meta, size_t cap, tg_error *err);

/* Loads every tensor of lists from path. The file must hold exactly these
 * tensors (same names, same shapes, in any order); otherwise nothing is
 * changed and err says what differs. Values stored in the other precision
 * (float vs double builds) are converted. Errors, each naming the path:
 * TG_ERR_IO the file cannot be read; TG_ERR_FORMAT it is not a valid
 * checkpoint (bad magic, newer version, truncated at an offset, CRC
 * mismatch); TG_ERR_SHAPE it is a valid checkpoint of another model
 * ("W1: shape (784, 50) in the file, (784, 100) in the model", "b3:
 * missing from the file", "conv1.W: not in the model"). */
TG_API tg_status tg_checkpoint_load(const char *path, tg_params *const *lists, int nlists,
                                    tg_error *err);

#endif
