/* image_read.h — pictures in: a PNG file (gray or colour, with or without
 * alpha, any size) made into a gray image of a model's input size, the way
 * the MNIST-format training data was made.
 *
 * Lives beside the plotting code because both read and write through
 * cairo. It must not guess: the conversion is the fixed recipe below, and
 * a file cairo cannot read is an error naming the file.
 */
#ifndef TG_IMAGE_READ_H
#define TG_IMAGE_READ_H

#include <stdint.h>

#include "tensor.h"

/* dst (H, W) = src (h, w) resampled by area averaging: dst pixel (i, j)
 * covers the rectangle [i·h/H, (i+1)·h/H) × [j·w/W, (j+1)·w/W) of src,
 * whose pixels are unit squares, and is the mean of src over it, each
 * pixel weighted by the area it shares. Shrinks and enlarges alike. */
TG_API void tg_image_area_average(const double *src, int64_t h, int64_t w, double *dst, int64_t H,
                                  int64_t W);

/* Reads the PNG at path into out (rows, cols) bytes, as the training images
 * are: gray = 0.299 R + 0.587 G + 0.114 B; transparent parts show the
 * background, black (MNIST's), or white with invert; invert then maps
 * g to 255 − g (for dark-on-light drawings); the image is padded with
 * black (the background after inversion) to a centred square (its aspect
 * kept), area-averaged to
 * rows × cols and rounded to 0..255. TG_OK, or TG_ERR_IO / TG_ERR_FORMAT
 * (not a PNG, truncated, unreadable: cairo's reason) / TG_ERR_MEMORY /
 * TG_ERR_ARG with err naming the path. */
TG_API tg_status tg_image_read_png(const char *path, int64_t rows, int64_t cols, int invert,
                                   uint8_t *out, tg_error *err);

#endif
