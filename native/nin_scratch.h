/*
 * A scratch buffer kept between calls and grown on demand (nin_scratch.c): the column matrix of
 * nin_conv.c's OpenBLAS path, the reordered tensors of nin_dnnl.c, the buffers of nin_wino5.c.
 */
#ifndef NIN_SCRATCH_H
#define NIN_SCRATCH_H
#include <stddef.h>

/* Zero-initialised ({0}) it holds nothing. */
typedef struct {
  void *data;
  size_t bytes;
} NinScratch;

/*
 * At least `bytes` bytes, 64-byte aligned (never NULL otherwise, even for 0 bytes): the buffer
 * as it is when large enough, else a new one (the old contents dropped). NULL when out of
 * memory: the buffer is then empty, and the caller says why. Not thread-safe: the addon's calls
 * run one at a time on JavaScript's thread, and take their buffers before any parallel region.
 */
void *nin_scratch(NinScratch *s, size_t bytes);

/* nin_scratch, with the buffer zeroed whenever it is new: for one that is only read (a row of zeros). */
void *nin_scratch_zeroed(NinScratch *s, size_t bytes);
#endif
