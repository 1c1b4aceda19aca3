/* 5x5 stride-1 convolutions by Winograd's F(2x2, 5x5) (nin_wino5.c), for the oneDNN path. */
#ifndef NIN_WINO5_H
#define NIN_WINO5_H
#include "nin_dnnl.h"

/* Whether `g` is a convolution this file computes, and one where it pays (measured: see nin_wino5.c). */
int wino5_fits(const Geometry *g);
/* Each returns 1 on success, 0 with wino5_error() saying why (out of memory). */
int wino5_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu);
int wino5_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g);
int wino5_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g);
const char *wino5_error(void);
#endif
