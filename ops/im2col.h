/* im2col.h — the geometry of image patches, shared by im2col.c (im2col,
 * col2im) and conv.c (the fused convolution). Private to ops/.
 */
#ifndef TG_IM2COL_H
#define TG_IM2COL_H

#include "op.h"

/* The geometry of one im2col / col2im. */
typedef struct conv_geom {
  int64_t n, c, h, w;          /* x: (N, C, H, W) */
  int64_t fh, fw, stride, pad; /* filter FH×FW */
  int64_t oh, ow;              /* output positions per image */
  int64_t rows, cols;          /* col: (N·OH·OW, C·FH·FW) */
  int64_t owa, owb;            /* the interior: see interior() */
} conv_geom;

/* The attributes every patch op (im2col, col2im, conv, conv_grad_x,
 * conv_grad_w) records, in the same named slots, so each backward rule
 * reads x's shape, the filter, stride and pad from the same place. */
enum {
  PATCH_N,
  PATCH_C,
  PATCH_H,
  PATCH_W,
  PATCH_FH,
  PATCH_FW,
  PATCH_STRIDE,
  PATCH_PAD,
  PATCH_NATTR
};

/* g's slots, for tg_op_record; returns a. */
static inline const int64_t *tg_patch_attrs(const conv_geom *g, int64_t a[PATCH_NATTR]) {
  a[PATCH_N] = g->n, a[PATCH_C] = g->c, a[PATCH_H] = g->h, a[PATCH_W] = g->w;
  a[PATCH_FH] = g->fh, a[PATCH_FW] = g->fw, a[PATCH_STRIDE] = g->stride, a[PATCH_PAD] = g->pad;
  return a;
}

/* Fills g from x's shape xs (N, C, H, W; every dimension >= 1) and the
 * filter, or fails the tape naming op and `what` (the operands, already
 * formatted) and returns 0. */
int tg_conv_geom(tg_tape *tape, const tg_op *op, const char *what, const int64_t *xs, int64_t fh,
                 int64_t fw, int64_t stride, int64_t pad, conv_geom *g);

#endif
