/*
 * NHWC 2-D convolution and its two gradients on float32 data, for tfjs's wasm backend.
 *
 * The tensors live in the wasm module's linear memory; JavaScript passes that memory's
 * ArrayBuffer and byte offsets, and the results are written in place. Each convolution is
 * lowered to one matrix product per chunk of images (im2col), done by OpenBLAS, which uses
 * every core. 1x1 stride-1 unpadded convolutions need no im2col at all.
 *
 *   x  [N, H, W, Ci]     w [KH, KW, Ci, Co] (row-major, i.e. a [K, Co] matrix, K = KH*KW*Ci)
 *   y  [N, OH, OW, Co]   cols [rows = images*OH*OW, K]
 *
 *   forward:        y    = cols(x) . w           (+ bias, relu)
 *   input grad:     dx   = col2im(dy . w^T)
 *   filter grad:    dw   = sum over chunks of cols(x)^T . dy
 *
 * Also max pooling and its gradient, memory-bound loops wasm runs on one thread; the other
 * memory-bound passes of a training step are in nin_eltwise.c.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#include <node_api.h>
#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include "nin_dnnl.h"
#include "nin_eltwise.h"
#include "nin_scratch.h"

/*
 * Which library the three convolutions run on: oneDNN where the addon was built with it
 * (NIN_DNNL), unless NIN_NATIVE_CONV=blas asks for the OpenBLAS path (to compare the two);
 * NIN_NATIVE_CONV=dnnl-direct keeps oneDNN but without its Winograd convolutions.
 */
#ifdef NIN_DNNL
static int use_dnnl = 1;
#else
static int use_dnnl = 0;
#endif

/* Column buffers are capped near this many floats (32 MB); the batch is processed in chunks. */
#define COLS_BUDGET_FLOATS (8 << 20)

/* The column matrix of a chunk of images, kept between calls. */
static NinScratch cols_scratch;

static int is_pointwise(const Geometry *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
         g->oh == g->h && g->ow == g->w;
}

/* Floats of one image's rows of the column matrix: OH*OW rows of K = KH*KW*Ci. */
static int64_t cols_per_image(const Geometry *g) { return g->oh * g->ow * g->kh * g->kw * g->ci; }

/* Images per chunk so that the chunk's column matrix fits the budget. */
static int64_t chunk_images(const Geometry *g) {
  int64_t per_image = cols_per_image(g);
  int64_t nb = per_image > 0 ? COLS_BUDGET_FLOATS / per_image : g->n;
  if (nb < 1) nb = 1;
  return nb < g->n ? nb : g->n;
}

/* Images in the chunk that starts at image n0: nb, or what is left of the batch. */
static int64_t chunk_at(const Geometry *g, int64_t n0, int64_t nb) { return n0 + nb <= g->n ? nb : g->n - n0; }

/* The column matrix of nb images, or NULL when out of memory. */
static float *cols_for(const Geometry *g, int64_t nb) {
  return (float *)nin_scratch(&cols_scratch, (size_t)(nb * cols_per_image(g)) * sizeof(float));
}

/* cols[r, (kh*KW + kw)*Ci + ci] = x[n, oh*sh + kh - pt, ow*sw + kw - pl, ci], zero outside. */
static void im2col(const float *x, const Geometry *g, int64_t n0, int64_t nb, float *cols) {
  const int64_t K = g->kh * g->kw * g->ci, rowlen = g->kw * g->ci;
  float *row = cols;
  for (int64_t n = n0; n < n0 + nb; n++) {
    const float *img = x + n * g->h * g->w * g->ci;
    for (int64_t oh = 0; oh < g->oh; oh++) {
      for (int64_t ow = 0; ow < g->ow; ow++, row += K) {
        const int64_t iw0 = ow * g->sw - g->pl;
        for (int64_t kh = 0; kh < g->kh; kh++) {
          const int64_t ih = oh * g->sh + kh - g->pt;
          float *dst = row + kh * rowlen;
          if (ih < 0 || ih >= g->h) {
            memset(dst, 0, rowlen * sizeof(float));
          } else if (iw0 >= 0 && iw0 + g->kw <= g->w) {
            /* the whole KW x Ci window is contiguous in NHWC */
            memcpy(dst, img + (ih * g->w + iw0) * g->ci, rowlen * sizeof(float));
          } else {
            for (int64_t kw = 0; kw < g->kw; kw++) {
              const int64_t iw = iw0 + kw;
              if (iw < 0 || iw >= g->w) memset(dst + kw * g->ci, 0, g->ci * sizeof(float));
              else memcpy(dst + kw * g->ci, img + (ih * g->w + iw) * g->ci, g->ci * sizeof(float));
            }
          }
        }
      }
    }
  }
}

/* The adjoint of im2col: dx[n, ih, iw, ci] += dcols[r, c] (dx already zeroed). */
static void col2im(const float *cols, const Geometry *g, int64_t n0, int64_t nb, float *dx) {
  const int64_t K = g->kh * g->kw * g->ci;
  const float *row = cols;
  for (int64_t n = n0; n < n0 + nb; n++) {
    float *img = dx + n * g->h * g->w * g->ci;
    for (int64_t oh = 0; oh < g->oh; oh++) {
      for (int64_t ow = 0; ow < g->ow; ow++, row += K) {
        for (int64_t kh = 0; kh < g->kh; kh++) {
          const int64_t ih = oh * g->sh + kh - g->pt;
          if (ih < 0 || ih >= g->h) continue;
          for (int64_t kw = 0; kw < g->kw; kw++) {
            const int64_t iw = ow * g->sw + kw - g->pl;
            if (iw < 0 || iw >= g->w) continue;
            const float *src = row + (kh * g->kw + kw) * g->ci;
            float *dst = img + (ih * g->w + iw) * g->ci;
            for (int64_t c = 0; c < g->ci; c++) dst[c] += src[c];
          }
        }
      }
    }
  }
}

/* The three convolutions each return 1, or 0 when out of memory for the column matrix (nothing written). */
static int conv_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu) {
  const int64_t K = g->kh * g->kw * g->ci, per_image = g->oh * g->ow;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(g->n * per_image), (int)g->co, (int)K,
                1.0f, x, (int)K, w, (int)g->co, 0.0f, y, (int)g->co);
  } else {
    const int64_t nb = chunk_images(g);
    float *cols = cols_for(g, nb);
    if (!cols) return 0;
    for (int64_t n0 = 0; n0 < g->n; n0 += nb) {
      const int64_t m = chunk_at(g, n0, nb);
      im2col(x, g, n0, m, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m * per_image), (int)g->co, (int)K,
                  1.0f, cols, (int)K, w, (int)g->co, 0.0f, y + n0 * per_image * g->co, (int)g->co);
    }
  }
  if (bias != NULL) nin_binary(NIN_ADD, y, bias, y, g->n * per_image, g->co);
  if (relu) nin_relu(y, y, g->n * per_image * g->co);
  return 1;
}

static int conv_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g) {
  const int64_t K = g->kh * g->kw * g->ci, per_image = g->oh * g->ow;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(g->n * per_image), (int)K, (int)g->co,
                1.0f, dy, (int)g->co, w, (int)g->co, 0.0f, dx, (int)K);
    return 1;
  }
  const int64_t nb = chunk_images(g);
  float *cols = cols_for(g, nb);
  if (!cols) return 0;
  memset(dx, 0, (size_t)(g->n * g->h * g->w * g->ci) * sizeof(float));
  for (int64_t n0 = 0; n0 < g->n; n0 += nb) {
    const int64_t m = chunk_at(g, n0, nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m * per_image), (int)K, (int)g->co,
                1.0f, dy + n0 * per_image * g->co, (int)g->co, w, (int)g->co, 0.0f, cols, (int)K);
    col2im(cols, g, n0, m, dx);
  }
  return 1;
}

static int conv_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g) {
  const int64_t K = g->kh * g->kw * g->ci, per_image = g->oh * g->ow;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)g->co, (int)(g->n * per_image),
                1.0f, x, (int)K, dy, (int)g->co, 0.0f, dw, (int)g->co);
    return 1;
  }
  const int64_t nb = chunk_images(g);
  float *cols = cols_for(g, nb);
  if (!cols) return 0;
  for (int64_t n0 = 0; n0 < g->n; n0 += nb) {
    const int64_t m = chunk_at(g, n0, nb);
    im2col(x, g, n0, m, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)g->co, (int)(m * per_image),
                1.0f, cols, (int)K, dy + n0 * per_image * g->co, (int)g->co, n0 == 0 ? 0.0f : 1.0f, dw, (int)g->co);
  }
  return 1;
}

/*
 * Max pooling, NHWC: y = the largest x of each window (NaN is never the largest, as in tfjs's
 * cpu backend; a window of only NaN gives -inf). Vectors over a tile of channels.
 */
static void max_pool(const float *x, float *y, const Geometry *g) {
  const int64_t c = g->ci;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g->n; n++) {
    const float *img = x + n * g->h * g->w * c;
    for (int64_t oh = 0; oh < g->oh; oh++) {
      for (int64_t ow = 0; ow < g->ow; ow++) {
        float *out = y + ((n * g->oh + oh) * g->ow + ow) * c;
        for (int64_t k = 0; k < c; k++) out[k] = -INFINITY;
        for (int64_t kh = 0; kh < g->kh; kh++) {
          const int64_t ih = oh * g->sh + kh - g->pt;
          if (ih < 0 || ih >= g->h) continue;
          for (int64_t kw = 0; kw < g->kw; kw++) {
            const int64_t iw = ow * g->sw + kw - g->pl;
            if (iw < 0 || iw >= g->w) continue;
            const float *v = img + (ih * g->w + iw) * c;
            for (int k = 0; k < (int)c; k++) out[k] = v[k] > out[k] ? v[k] : out[k];
          }
        }
      }
    }
  }
}

/* Channels a max-pool window is scanned for at once (vectors over channels; NHWC keeps them adjacent). */
#define POOL_TILE 256

/*
 * Max-pool gradient of one image: each dy goes to the first maximum of its window in x
 * (scanning rows, then columns, as tfjs does; ties are common after a ReLU; NaN is never a
 * maximum). img [H,W,C] and dimg (zeroed here) are the image's x and dx, d its dy [OH,OW,C].
 * Each window position is compared for a tile of channels at once.
 */
static void pool_grad_image(const float *img, const float *d, float *dimg, const Geometry *g) {
  const int64_t c = g->ci;
  float best[POOL_TILE];
  int32_t where[POOL_TILE];
  memset(dimg, 0, (size_t)(g->h * g->w * c) * sizeof(float));
  for (int64_t oh = 0; oh < g->oh; oh++) {
    for (int64_t ow = 0; ow < g->ow; ow++, d += c) {
      for (int64_t c0 = 0; c0 < c; c0 += POOL_TILE) {
        const int64_t nc = c - c0 < POOL_TILE ? c - c0 : POOL_TILE;
        for (int64_t k = 0; k < nc; k++) { best[k] = -INFINITY; where[k] = -1; }
        for (int64_t kh = 0; kh < g->kh; kh++) {
          const int64_t ih = oh * g->sh + kh - g->pt;
          if (ih < 0 || ih >= g->h) continue;
          for (int64_t kw = 0; kw < g->kw; kw++) {
            const int64_t iw = ow * g->sw + kw - g->pl;
            if (iw < 0 || iw >= g->w) continue;
            const int32_t pos = (int32_t)(ih * g->w + iw);
            const float *v = img + pos * c + c0;
            for (int k = 0; k < (int)nc; k++) { /* branch-free, so that it vectorizes */
              const float vk = v[k], bk = best[k];
              const int32_t more = -(int32_t)(vk > bk);
              best[k] = vk > bk ? vk : bk;
              where[k] = (pos & more) | (where[k] & ~more);
            }
          }
        }
        for (int64_t k = 0; k < nc; k++) {
          if (where[k] >= 0) dimg[where[k] * c + c0 + k] += d[c0 + k];
        }
      }
    }
  }
}

/* Max-pool gradient, x [N,H,W,C], dy/dx as usual. Images are independent: one per thread, same result. */
static void max_pool_grad(const float *x, const float *dy, float *dx, const Geometry *g) {
  const int64_t in = g->h * g->w * g->ci, out = g->oh * g->ow * g->ci;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g->n; n++) pool_grad_image(x + n * in, dy + n * out, dx + n * in, g);
}

/*
 * The backward pass of maxpool(y) with y = relu(conv + bias), up to the convolution's own
 * gradients: dz = maxpool_grad(dy) * step(y) and db = the column sums of dz, the same bits as
 * MaxPoolGrad, then NinReluBackprop (nin_relu_backprop). Each image's gradient is masked
 * while it is still in cache; returns 0 when out of memory.
 */
static int pool_relu_backprop(const float *dy, const float *y, float *dz, float *db, const Geometry *g) {
  const int64_t in = g->h * g->w * g->ci, out = g->oh * g->ow * g->ci;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g->n; n++) {
    pool_grad_image(y + n * in, dy + n * out, dz + n * in, g);
    nin_relu_mask(dz + n * in, y + n * in, in);
  }
  return nin_sum_rows(dz, db, g->n * g->h * g->w, g->ci);
}

/* ---- N-API glue ---------------------------------------------------------------------------- */

#define NUM_OFFSETS 4 /* a, b, c, out: meaning depends on the function; -1 means absent */
#define NUM_PARAMS (NUM_OFFSETS + 13 + 1)

/*
 * Every exported function takes (memory: ArrayBuffer, params: Float64Array) with params =
 * [off0, off1, off2, off3, n, h, w, ci, kh, kw, co, oh, ow, sh, sw, pt, pl, flag].
 */
static int read_args(napi_env env, napi_callback_info info, char **base, size_t *len, double *p) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) goto bad;
  void *data;
  if (napi_get_arraybuffer_info(env, argv[0], &data, len) != napi_ok) goto bad;
  *base = (char *)data;
  napi_typedarray_type type;
  size_t count;
  void *pdata;
  if (napi_get_typedarray_info(env, argv[1], &type, &count, &pdata, NULL, NULL) != napi_ok ||
      type != napi_float64_array || count != NUM_PARAMS) goto bad;
  memcpy(p, pdata, NUM_PARAMS * sizeof(double));
  return 1;
bad:
  napi_throw_type_error(env, NULL, "nin_conv: expected (ArrayBuffer, Float64Array(18))");
  return 0;
}

static Geometry geometry(const double *p) {
  Geometry g = {(int64_t)p[4], (int64_t)p[5], (int64_t)p[6], (int64_t)p[7], (int64_t)p[8], (int64_t)p[9],
                (int64_t)p[10], (int64_t)p[11], (int64_t)p[12], (int64_t)p[13], (int64_t)p[14],
                (int64_t)p[15], (int64_t)p[16]};
  return g;
}

/* A pointer to `floats` floats at byte offset `off`, or NULL (with a JS error) if out of range. */
static float *at(napi_env env, char *base, size_t len, double off, int64_t floats) {
  if (off < 0 || floats < 0 || (size_t)off + (size_t)floats * sizeof(float) > len) {
    napi_throw_range_error(env, NULL, "nin_conv: tensor lies outside the wasm memory");
    return NULL;
  }
  return (float *)(base + (size_t)off);
}

/* One call's arguments: its params, their geometry, the tensors they point at, and the memory. */
typedef struct {
  double p[NUM_PARAMS];
  Geometry g;
  float *t[NUM_OFFSETS];
  char *base;
  size_t len;
} Call;

/*
 * Floats in a tensor of kind `k`: x a convolution's input [n,h,w,ci], y its output
 * [n,oh,ow,co], w its filters, b its bias [co], m a matrix [p4, p5], c a row [p5], v [p4].
 */
static int64_t floats_of(char k, const Call *c) {
  const Geometry *g = &c->g;
  switch (k) {
    case 'x': return g->n * g->h * g->w * g->ci;
    case 'y': return g->n * g->oh * g->ow * g->co;
    case 'w': return g->kh * g->kw * g->ci * g->co;
    case 'b': return g->co;
    case 'm': return (int64_t)c->p[4] * (int64_t)c->p[5];
    case 'c': return (int64_t)c->p[5];
    default: return (int64_t)c->p[4]; /* 'v' */
  }
}

/*
 * Reads a call's (memory, params) and points t[i] at its tensor i, whose kind is layout[i]
 * (see floats_of; '-' none, and a bias whose offset is negative is absent: NULL). Returns 0,
 * a JS error thrown, when the arguments are wrong or a tensor lies outside the wasm memory.
 */
static int begin(napi_env env, napi_callback_info info, const char layout[NUM_OFFSETS + 1], Call *c) {
  if (!read_args(env, info, &c->base, &c->len, c->p)) return 0;
  c->g = geometry(c->p);
  for (int i = 0; i < NUM_OFFSETS; i++) {
    c->t[i] = NULL;
    if (layout[i] == '-' || (layout[i] == 'b' && c->p[i] < 0)) continue;
    if (!(c->t[i] = at(env, c->base, c->len, c->p[i], floats_of(layout[i], c)))) return 0;
  }
  return 1;
}

/* Throws "nin_conv: out of memory for <what>" (the exported function's name). */
static napi_value out_of_memory(napi_env env, const char *what) {
  char text[96];
  snprintf(text, sizeof text, "nin_conv: out of memory for %s", what);
  napi_throw_error(env, NULL, text);
  return NULL;
}

#ifdef NIN_DNNL
static napi_value dnnl_failed(napi_env env) {
  napi_throw_error(env, NULL, dnnl_path_error());
  return NULL;
}
#endif

/* params: [x, w, bias or -1, y, geometry..., relu] */
static napi_value js_forward(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "xwby", &c)) return NULL;
  const int relu = c.p[17] != 0;
#ifdef NIN_DNNL
  if (use_dnnl) return dnnl_conv_forward(c.t[0], c.t[1], c.t[2], c.t[3], &c.g, relu) ? NULL : dnnl_failed(env);
#endif
  return conv_forward(c.t[0], c.t[1], c.t[2], c.t[3], &c.g, relu) ? NULL : out_of_memory(env, "conv2d");
}

/* params: [dy, w, -, dx, geometry...] */
static napi_value js_backprop_input(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "yw-x", &c)) return NULL;
#ifdef NIN_DNNL
  if (use_dnnl) return dnnl_conv_backprop_input(c.t[0], c.t[1], c.t[3], &c.g) ? NULL : dnnl_failed(env);
#endif
  return conv_backprop_input(c.t[0], c.t[1], c.t[3], &c.g) ? NULL : out_of_memory(env, "conv2dBackpropInput");
}

/* params: [x, dy, -, dw, geometry...] */
static napi_value js_backprop_filter(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "xy-w", &c)) return NULL;
#ifdef NIN_DNNL
  if (use_dnnl) return dnnl_conv_backprop_filter(c.t[0], c.t[1], c.t[3], &c.g) ? NULL : dnnl_failed(env);
#endif
  return conv_backprop_filter(c.t[0], c.t[1], c.t[3], &c.g) ? NULL : out_of_memory(env, "conv2dBackpropFilter");
}

/* params: [dy, x, -, dx, geometry (co = ci)...] */
static napi_value js_max_pool_grad(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "yx-x", &c)) return NULL;
  max_pool_grad(c.t[1], c.t[0], c.t[3], &c.g);
  return NULL;
}

/* params: [dy, y, db, dz, geometry (co = ci)...] */
static napi_value js_pool_relu_backprop(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "yxbx", &c)) return NULL;
  return pool_relu_backprop(c.t[0], c.t[1], c.t[3], c.t[2], &c.g) ? NULL : out_of_memory(env, "poolReluBackprop");
}

/* params: [x, -, -, y, geometry (co = ci)...] */
static napi_value js_max_pool(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "x--y", &c)) return NULL;
  max_pool(c.t[0], c.t[3], &c.g);
  return NULL;
}

/* params: [x, -, -, out, rows, cols, ...] */
static napi_value js_sum_rows(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "m--c", &c)) return NULL;
  return nin_sum_rows(c.t[0], c.t[3], (int64_t)c.p[4], (int64_t)c.p[5]) ? NULL : out_of_memory(env, "sumRows");
}

/* params: [dy, y, db, dz, rows, cols, ...]: dz = dy * step(y), db = column sums of dz */
static napi_value js_relu_backprop(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "mmcm", &c)) return NULL;
  const int ok = nin_relu_backprop(c.t[0], c.t[1], c.t[3], c.t[2], (int64_t)c.p[4], (int64_t)c.p[5]);
  return ok ? NULL : out_of_memory(env, "reluBackprop");
}

/* params: [x, -, -, y, n, op (0 relu, 1 step), alpha, ...] */
static napi_value js_unary(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "v--v", &c)) return NULL;
  if (c.p[5] == 0) nin_relu(c.t[0], c.t[3], (int64_t)c.p[4]);
  else nin_step(c.t[0], c.t[3], (int64_t)c.p[4], (float)c.p[6]);
  return NULL;
}

/* params: [a, b, -, y, rows, cols, op (NIN_ADD, NIN_MUL), ...]: y[r, c] = a[r, c] op b[c] */
static napi_value js_binary(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "mc-m", &c)) return NULL;
  nin_binary(c.p[6] == 0 ? NIN_ADD : NIN_MUL, c.t[0], c.t[1], c.t[3], (int64_t)c.p[4], (int64_t)c.p[5]);
  return NULL;
}

/*
 * params: [w, g, m, v, n, w', m', v', β1, β2, 1−β1, 1−β2, 1−β1^t, 1−β2^t, ε, −lr, -, -]: one
 * Adam step of n weights (nin_adam), into the three new tensors w', m', v'.
 */
static napi_value js_adam(napi_env env, napi_callback_info info) {
  Call c;
  if (!begin(env, info, "vvvv", &c)) return NULL;
  float *out[3];
  for (int i = 0; i < 3; i++) {
    if (!(out[i] = at(env, c.base, c.len, c.p[5 + i], (int64_t)c.p[4]))) return NULL;
  }
  const double *p = c.p;
  const NinAdam a = {(float)p[8], (float)p[9], (float)p[10], (float)p[11], (float)p[12], (float)p[13],
                     (float)p[14], (float)p[15]};
  nin_adam(&a, c.t[0], c.t[1], c.t[2], c.t[3], out[0], out[1], out[2], (int64_t)p[4]);
  return NULL;
}

/* threads() and ompThreads(): set(n) when given an int32 n >= 1, then the count get() says is in force. */
static napi_value thread_count(napi_env env, napi_callback_info info, void (*set)(int), int (*get)(void)) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc == 1) {
    int32_t n;
    if (napi_get_value_int32(env, argv[0], &n) == napi_ok && n > 0) set(n);
  }
  napi_create_int32(env, get(), &out);
  return out;
}

/* OpenBLAS's thread count (the OpenBLAS convolutions): sets it when given a count >= 1, returns it. */
static napi_value js_threads(napi_env env, napi_callback_info info) {
  return thread_count(env, info, openblas_set_num_threads, openblas_get_num_threads);
}

/*
 * OpenMP's thread count (oneDNN, the 5x5 Winograd, pooling and the element-wise passes):
 * sets it for the calling thread, which runs every parallel region here, when given a count
 * >= 1; returns the count in force (omp_get_max_threads). The JavaScript side caps the count
 * at the CPUs the process may use before calling (a count far above them fails oneDNN's
 * scratchpad or the Winograd's per-thread buffers, or crashes starting the threads).
 */
static napi_value js_omp_threads(napi_env env, napi_callback_info info) {
  return thread_count(env, info, omp_set_num_threads, omp_get_max_threads);
}

/*
 * The machine's single-precision matrix-product rate: OpenBLAS's sgemm on n x n matrices with
 * every thread, the best of `reps` timed calls after one warm-up, in GFLOP/s (2 n^3 per call).
 */
static napi_value js_sgemm_gflops(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t n = 2048, reps = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_int32(env, argv[0], &n);
  if (argc >= 2) napi_get_value_int32(env, argv[1], &reps);
  if (n < 1 || n > 8192 || reps < 1) {
    napi_throw_range_error(env, NULL, "nin_conv: sgemmGflops(n in 1..8192, reps >= 1)");
    return NULL;
  }
  const size_t nn = (size_t)n * (size_t)n;
  float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
  double best = 0;
  if (a && b && c) {
    for (size_t i = 0; i < nn; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    for (int r = 0; r <= reps; r++) {
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      const double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
      const double rate = 2.0 * n * (double)n * n / s / 1e9;
      if (r > 0 && rate > best) best = rate;
    }
  }
  free(a); free(b); free(c);
  if (best == 0) return out_of_memory(env, "sgemmGflops");
  napi_create_double(env, best, &out);
  return out;
}

/* "OpenBLAS", or "oneDNN (jit:avx2, ...)" with the implementations oneDNN chose so far. */
static napi_value js_library(napi_env env, napi_callback_info info) {
  char text[512] = "OpenBLAS";
#ifdef NIN_DNNL
  if (use_dnnl) {
    char impls[440];
    dnnl_path_describe(impls, sizeof impls);
    snprintf(text, sizeof text, impls[0] ? "oneDNN (%s)" : "oneDNN", impls);
  }
#endif
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  const char *choice = getenv("NIN_NATIVE_CONV");
  if (choice && strcmp(choice, "blas") == 0) use_dnnl = 0;
#ifdef NIN_DNNL
  if (choice && strcmp(choice, "dnnl-direct") == 0) dnnl_path_set_winograd(0);
#endif
  napi_property_descriptor props[] = {
      {"conv2d", NULL, js_forward, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropInput", NULL, js_backprop_input, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropFilter", NULL, js_backprop_filter, NULL, NULL, NULL, napi_default, NULL},
      {"maxPool", NULL, js_max_pool, NULL, NULL, NULL, napi_default, NULL},
      {"maxPoolGrad", NULL, js_max_pool_grad, NULL, NULL, NULL, napi_default, NULL},
      {"sumRows", NULL, js_sum_rows, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, js_unary, NULL, NULL, NULL, napi_default, NULL},
      {"reluBackprop", NULL, js_relu_backprop, NULL, NULL, NULL, napi_default, NULL},
      {"poolReluBackprop", NULL, js_pool_relu_backprop, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, js_binary, NULL, NULL, NULL, napi_default, NULL},
      {"adam", NULL, js_adam, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, js_threads, NULL, NULL, NULL, napi_default, NULL},
      {"ompThreads", NULL, js_omp_threads, NULL, NULL, NULL, napi_default, NULL},
      {"library", NULL, js_library, NULL, NULL, NULL, napi_default, NULL},
      {"sgemmGflops", NULL, js_sgemm_gflops, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
