/* Shared by nin_conv.c and nin_dnnl.c: a convolution's shape, and the oneDNN path's entry points. */
#ifndef NIN_DNNL_H
#define NIN_DNNL_H
#include <stddef.h>
#include <stdint.h>

/* x [n, h, w, ci], filters [kh, kw, ci, co], y [n, oh, ow, co]; strides sh, sw; padding top pt, left pl. */
typedef struct {
  int64_t n, h, w, ci, kh, kw, co, oh, ow, sh, sw, pt, pl;
} Geometry;

/* Each returns 1 on success, 0 with dnnl_path_error() saying why. */
int dnnl_conv_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu);
int dnnl_conv_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g);
int dnnl_conv_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g);
const char *dnnl_path_error(void);
/* Whether 3x3 stride-1 convolutions may use the Winograd algorithm (default yes). */
void dnnl_path_set_winograd(int allowed);
void dnnl_path_describe(char *out, size_t size);
#endif
