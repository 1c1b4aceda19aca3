/* The grown-on-demand scratch buffer of nin_scratch.h. */
#include "nin_scratch.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Grows `s` to at least `bytes`; sets *grew when the buffer is new. */
static void *grow(NinScratch *s, size_t bytes, int *grew) {
  *grew = 0;
  if (s->data && bytes <= s->bytes) return s->data;
  free(s->data);
  s->data = NULL;
  s->bytes = 0;
  if (bytes > SIZE_MAX - 63) return NULL;
  const size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple */
  s->data = aligned_alloc(64, rounded);
  if (!s->data) return NULL;
  s->bytes = rounded;
  *grew = 1;
  return s->data;
}

void *nin_scratch(NinScratch *s, size_t bytes) {
  int grew;
  return grow(s, bytes, &grew);
}

void *nin_scratch_zeroed(NinScratch *s, size_t bytes) {
  int grew;
  void *p = grow(s, bytes, &grew);
  if (p && grew) memset(p, 0, s->bytes);
  return p;
}
