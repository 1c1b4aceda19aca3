/* The element-wise passes, the bias-gradient sum and the fused ReLU backward of a training step (nin_eltwise.c). */
#ifndef NIN_ELTWISE_H
#define NIN_ELTWISE_H
#include <stdint.h>

enum { NIN_ADD = 0, NIN_MUL = 1 };

/* tfjs's ReLU of one value: relu(-0) = +0 and relu(NaN) = NaN (a max with 0 would give 0). */
static inline float nin_relu1(float v) { return v > 0.0f || v != v ? v : 0.0f; }
/* tfjs's Step of one value: 1 above 0, else alpha, and step(NaN) = NaN. */
static inline float nin_step1(float v, float alpha) {
  const float s = v > 0.0f ? 1.0f : alpha; /* both sides computed, so loops over it vectorize (no branch on the data) */
  return v != v ? v : s;
}

void nin_relu(const float *x, float *y, int64_t n);
void nin_step(const float *x, float *y, int64_t n, float alpha);
void nin_binary(int op, const float *a, const float *b, float *y, int64_t rows, int64_t cols);
int nin_sum_rows(const float *x, float *out, int64_t rows, int64_t cols);
void nin_relu_mask(float *dz, const float *y, int64_t n);
int nin_relu_backprop(const float *dy, const float *y, float *dz, float *db, int64_t rows, int64_t cols);

/* Adam's constants for one step, each already rounded to float as tfjs rounds its scalars. */
typedef struct {
  float beta1, beta2;           /* the moments' decays */
  float one_minus_beta1, one_minus_beta2;
  float bias1, bias2;           /* 1 - beta1^t and 1 - beta2^t: the bias corrections */
  float epsilon, neg_lr;        /* epsilon and -(the learning rate) */
} NinAdam;

void nin_adam(const NinAdam *a, const float *w, const float *g, const float *m, const float *v,
              float *w_out, float *m_out, float *v_out, int64_t n);
#endif
