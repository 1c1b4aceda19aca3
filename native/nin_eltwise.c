/*
 * The memory-bound passes of a training step, on every core: what tfjs runs between the
 * convolutions when it trains (tfjs fuses bias and ReLU into the convolution only outside of
 * a gradient tape, so a training step runs them as separate kernels):
 *
 *   forward:   y = x + bias (Add, bias broadcast over the last axis), y = relu(x) (Relu)
 *   backward:  s = step(y) (Step), dx = dy * s (Multiply), bias grad = sum over rows (Sum)
 *
 * wasm runs each on one thread with 128-bit SIMD. Each element's result is computed exactly as
 * tfjs computes it (NaN stays NaN, so a diverged network is still seen as one), and does not
 * depend on the thread count; the sum splits its rows into a fixed number of blocks, so it
 * does not either.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nin_eltwise.h"

/* y may be x (in place); so in nin_binary, y may be a. */
void nin_relu(const float *x, float *y, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = nin_relu1(x[i]);
}

void nin_step(const float *restrict x, float *restrict y, int64_t n, float alpha) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = nin_step1(x[i], alpha);
}

/* y[r, c] = a[r, c] op b[c] for r < rows, c < cols (b the same shape as a when rows == 1). */
void nin_binary(int op, const float *a, const float *restrict b, float *y, int64_t rows, int64_t cols) {
  if (rows == 1) {
    if (op == NIN_ADD) {
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < cols; i++) y[i] = a[i] + b[i];
    } else {
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < cols; i++) y[i] = a[i] * b[i];
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *ar = a + r * cols;
    float *yr = y + r * cols;
    if (op == NIN_ADD) {
#pragma omp simd
      for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] + b[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; c++) yr[c] = ar[c] * b[c];
    }
  }
}

/* The gradient through y = relu(z): dy * step(y), as tfjs computes it (step(NaN) = NaN). */
static inline float relu_grad(float dy, float y) { return dy * nin_step1(y, 0.0f); }

/* dz *= step(y) in place, element by element (one thread: the caller splits the work). */
void nin_relu_mask(float *restrict dz, const float *restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) dz[i] = relu_grad(dz[i], y[i]);
}

/* Blocks the rows of a sum are cut into: fixed, so the rounding is the same on any core count. */
#define SUM_BLOCKS 32

static int64_t sum_blocks(int64_t rows) { return rows < SUM_BLOCKS ? (rows > 0 ? rows : 1) : SUM_BLOCKS; }

/*
 * The one way rows are summed: out[c] = sum over r of z[r, c], where z = x, or, with y given,
 * z = x * step(y) (as tfjs computes it: NaN where y is NaN), also written to dz. Each of
 * sum_blocks(rows) blocks of rows is summed in order into its own partial row, then the
 * partials in block order. Returns 0 when out of memory (nothing written).
 */
static int block_sum(const float *restrict x, const float *restrict y, float *restrict dz, float *restrict out,
                     int64_t rows, int64_t cols) {
  const int64_t blocks = sum_blocks(rows);
  float *partial = (float *)calloc((size_t)(blocks * cols), sizeof(float));
  if (!partial) return 0;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < blocks; k++) {
    float *restrict p = partial + k * cols;
    for (int64_t r = rows * k / blocks; r < rows * (k + 1) / blocks; r++) {
      const float *restrict xr = x + r * cols;
      if (y == NULL) {
#pragma omp simd
        for (int64_t c = 0; c < cols; c++) p[c] += xr[c];
        continue;
      }
      const float *restrict yr = y + r * cols;
      float *restrict dzr = dz + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; c++) {
        const float z = relu_grad(xr[c], yr[c]);
        dzr[c] = z;
        p[c] += z;
      }
    }
  }
  memcpy(out, partial, (size_t)cols * sizeof(float));
  for (int64_t k = 1; k < blocks; k++) {
    const float *restrict pk = partial + k * cols;
    for (int64_t c = 0; c < cols; c++) out[c] += pk[c];
  }
  free(partial);
  return 1;
}

/* out[c] = sum over rows of x[rows, cols]: a bias gradient, all leading axes summed. */
int nin_sum_rows(const float *x, float *out, int64_t rows, int64_t cols) {
  return block_sum(x, NULL, NULL, out, rows, cols);
}

/*
 * The backward pass of y = relu(conv + bias) up to the convolution's own gradients, in one
 * pass: dz = dy * step(y) and db = the column sums of dz, summed as nin_sum_rows sums.
 */
int nin_relu_backprop(const float *dy, const float *y, float *dz, float *db, int64_t rows, int64_t cols) {
  return block_sum(dy, y, dz, db, rows, cols);
}

/*
 * One Adam step of a weight tensor, in one pass over its n values: tfjs's AdamOptimizer
 * computes the same in twelve passes (its operations, in the same order, each rounded to
 * float; the addon is built without contracting a * b + c into a fused multiply-add), so the
 * new weights and moments are the same bits:
 *
 *   m' = m·β1 + g·(1−β1)     v' = v·β2 + g²·(1−β2)
 *   w' = ((m'/bias1) / (√(v'/bias2) + ε))·(−lr) + w
 */
void nin_adam(const NinAdam *a, const float *restrict w, const float *restrict g, const float *restrict m,
              const float *restrict v, float *restrict w_out, float *restrict m_out, float *restrict v_out, int64_t n) {
  const NinAdam k = *a;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float m1 = m[i] * k.beta1 + g[i] * k.one_minus_beta1;
    const float v1 = v[i] * k.beta2 + (g[i] * g[i]) * k.one_minus_beta2;
    m_out[i] = m1;
    v_out[i] = v1;
    w_out[i] = ((m1 / k.bias1) / (sqrtf(v1 / k.bias2) + k.epsilon)) * k.neg_lr + w[i];
  }
}
