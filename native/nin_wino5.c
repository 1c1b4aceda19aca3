/*
 * 5x5 stride-1 convolutions by Winograd's minimal filtering F(2x2, 5x5) (Lavin and Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016), for NiN's second block, which
 * takes half of a training step. oneDNN has Winograd only for 3x3 filters.
 *
 * Each 2x2 block of outputs ("tile") comes from a 6x6 block of inputs. With the interpolation
 * points 0, 1, -1, 2, -2 and infinity, one tile costs 36 multiplications per channel pair
 * instead of 100:
 *
 *   y  = A^T [ (G g G^T) . (B^T d B) ] A           forward (g the 5x5 filter, d the 6x6 input)
 *   dg = G^T [ sum over tiles (B^T d B) . (A dy A^T) ] G     filter gradient
 *
 * and the input gradient is the forward convolution of dy with the filters turned by 180
 * degrees and transposed (padding 4 - p). Summed over channels, the product "." at each of the
 * 36 points is a matrix product: tiles x in-channels times in-channels x out-channels, done by
 * oneDNN's sgemm on a chunk of tiles at a time, so the transformed tiles stay in cache. Chunks
 * are shared out statically among the threads: the result is bitwise the same on every run
 * with the same thread count. Tensors are tfjs's NHWC activations and HWIO filters.
 */
#include "nin_wino5.h"
#include "nin_eltwise.h"
#include "nin_scratch.h"
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define POINTS 36 /* a 6x6 tile */
#define CB 64     /* channels transformed at a time (stack buffers) */

/* Chunks of tiles per matrix product: forward-like passes, and the filter gradient. */
#define CHUNK 32
#define CHUNK_W 64

/* The length of the block that starts at `start` of `total`: `block`, or what is left. */
static inline int64_t block_len(int64_t total, int64_t start, int64_t block) { return total - start < block ? total - start : block; }

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTORISED
#endif

static char last_error[256] = "";
const char *wino5_error(void) { return last_error; }

/*
 * Where it pays, measured against oneDNN's direct convolution (three passes, batch 128,
 * padding 2, AVX-512, 2 threads): 96 -> 256 channels won 1.77x at 10x10 outputs, 1.98x at
 * 26x26, 1.24x at 7x7 (its 2x2 tiles 77% full), and broke even at 5x5 (69% full); it lost at
 * 3x3 (0.74x) and 2x2 (0.51x). At 10x10, 32 -> 32 channels broke even, 48 -> 48 won 1.25x,
 * 16 -> 16 lost (0.41x), 32 -> 256 won 1.44x.
 */
int wino5_fits(const Geometry *g) {
  const int64_t pb = g->oh + 4 - g->h - g->pt, pr = g->ow + 4 - g->w - g->pl;
  const int64_t tiles = ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
  const int padding_ok = g->pt >= 0 && g->pl >= 0 && g->pt <= 4 && g->pl <= 4 && pb >= 0 && pb <= 4 && pr >= 0 && pr <= 4;
  const int pays = g->oh >= 4 && g->ow >= 4 && g->oh * g->ow >= 3 * tiles && /* tiles at least 3/4 full */
                   g->ci >= 32 && g->co >= 32 && g->ci * g->co >= 48 * 48;
  return g->kh == 5 && g->kw == 5 && g->sh == 1 && g->sw == 1 && padding_ok && pays;
}

/* ---- Scratch: grown as needed, kept between calls (calls run one at a time). ---- */

enum { S_FILTER, S_FLIPPED, S_TILES, S_ACC, S_ZEROS, S_COUNT };
static NinScratch scratch[S_COUNT];

/* `floats` floats of buffer `which` (zeroed when new, for S_ZEROS), or NULL with last_error set. */
static float *scratch_for(int which, size_t floats) {
  float *p = which == S_ZEROS ? nin_scratch_zeroed(&scratch[which], floats * sizeof(float))
                              : nin_scratch(&scratch[which], floats * sizeof(float));
  if (!p) snprintf(last_error, sizeof last_error, "Winograd 5x5: out of memory for %zu floats", floats);
  return p;
}

/* ---- The three transforms, each along one axis, element-wise over `len` channels. ---- */

/* r = B^T d: 6 points from 6 inputs. */
VECTORISED static void bt6(const float *const d[6], float *const r[6], int64_t len) {
#pragma omp simd
  for (int64_t c = 0; c < len; c++) {
    const float d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c], d4 = d[4][c], d5 = d[5][c];
    r[0][c] = 4.0f * d0 - 5.0f * d2 + d4;
    r[1][c] = -4.0f * (d1 + d2) + d3 + d4;
    r[2][c] = 4.0f * (d1 - d2) - d3 + d4;
    r[3][c] = 2.0f * (d3 - d1) - d2 + d4;
    r[4][c] = 2.0f * (d1 - d3) - d2 + d4;
    r[5][c] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}

/* y = A^T m: 2 outputs from 6 points. */
VECTORISED static void at6(const float *const m[6], float *const y[2], int64_t len) {
#pragma omp simd
  for (int64_t c = 0; c < len; c++) {
    const float m1 = m[1][c], m2 = m[2][c], m3 = m[3][c], m4 = m[4][c];
    y[0][c] = m[0][c] + m1 + m2 + m3 + m4;
    y[1][c] = m1 - m2 + 2.0f * (m3 - m4) + m[5][c];
  }
}

/* z = A dy: 6 points from 2 output gradients (the transpose of at6). */
VECTORISED static void a6(const float *const dy[2], float *const z[6], int64_t len) {
#pragma omp simd
  for (int64_t c = 0; c < len; c++) {
    const float a = dy[0][c], b = dy[1][c];
    z[0][c] = a;
    z[1][c] = a + b;
    z[2][c] = a - b;
    z[3][c] = a + 2.0f * b;
    z[4][c] = a - 2.0f * b;
    z[5][c] = b;
  }
}

/* u = G g: 6 points from 5 filter taps. */
VECTORISED static void g6(const float *const g[5], float *const u[6], int64_t len) {
#pragma omp simd
  for (int64_t c = 0; c < len; c++) {
    const float g0 = g[0][c], g1 = g[1][c], g2 = g[2][c], g3 = g[3][c], g4 = g[4][c];
    const float even = g0 + g2 + g4, odd = g1 + g3;
    const float even2 = g0 / 24.0f + g2 / 6.0f + g4 * (2.0f / 3.0f), odd2 = g1 / 12.0f + g3 / 3.0f;
    u[0][c] = g0 / 4.0f;
    u[1][c] = -(even + odd) / 6.0f;
    u[2][c] = -(even - odd) / 6.0f;
    u[3][c] = even2 + odd2;
    u[4][c] = even2 - odd2;
    u[5][c] = g4;
  }
}

/* dg = G^T u: 5 filter taps from 6 points (the transpose of g6). */
VECTORISED static void gt5(const float *const u[6], float *const g[5], int64_t len) {
#pragma omp simd
  for (int64_t c = 0; c < len; c++) {
    const float u0 = u[0][c], u1 = u[1][c], u2 = u[2][c], u3 = u[3][c], u4 = u[4][c];
    const float s = (u1 + u2) / 6.0f, t = (u1 - u2) / 6.0f, p = u3 + u4, q = u3 - u4;
    g[0][c] = u0 / 4.0f - s + p / 24.0f;
    g[1][c] = -t + q / 12.0f;
    g[2][c] = -s + p / 6.0f;
    g[3][c] = -t + q / 3.0f;
    g[4][c] = -s + p * (2.0f / 3.0f) + u[5][c];
  }
}

/*
 * A 2-D transform of one block of `len` channels: the 1-D `pass` along the second axis of each
 * row of the n_in x n_in inputs `in` (row-major pointers), then along the first axis of the
 * result, into the n_out x n_out outputs `out`.
 */
typedef void (*Pass)(const float *const *, float *const *, int64_t);

static void transform2d(Pass pass, int n_in, int n_out, const float *const *in, float *const *out, int64_t len) {
  float tmp[POINTS][CB];
  for (int i = 0; i < n_in; i++) { /* along each input row */
    float *t[6];
    for (int j = 0; j < n_out; j++) t[j] = tmp[i * n_out + j];
    pass(in + i * n_in, t, len);
  }
  for (int j = 0; j < n_out; j++) { /* along each column */
    const float *col[6];
    float *o[6];
    for (int i = 0; i < n_in; i++) col[i] = tmp[i * n_out + j];
    for (int i = 0; i < n_out; i++) o[i] = out[i * n_out + j];
    pass(col, o, len);
  }
}

/* ---- Filters ---- */

/* u[36][k][c] = G g G^T for HWIO filters w [5][5][k][c]. */
static void filter_transform(const float *w, int64_t k, int64_t c, float *u) {
#pragma omp parallel for schedule(static)
  for (int64_t ki = 0; ki < k; ki++) {
    for (int64_t c0 = 0; c0 < c; c0 += CB) {
      const float *in[25];
      float *out[POINTS];
      for (int t = 0; t < 25; t++) in[t] = w + (t * k + ki) * c + c0;
      for (int p = 0; p < POINTS; p++) out[p] = u + (p * k + ki) * c + c0;
      transform2d(g6, 5, 6, in, out, block_len(c, c0, CB));
    }
  }
}

/* wf[a][b][co][ci] = w[4 - a][4 - b][ci][co]: the filters of the input gradient. */
static void flip_filters(const float *w, int64_t ci, int64_t co, float *wf) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < 25; t++) {
    const float *src = w + (24 - t) * ci * co;
    float *dst = wf + t * ci * co;
    for (int64_t i = 0; i < ci; i++)
      for (int64_t o = 0; o < co; o++) dst[o * ci + i] = src[i * co + o];
  }
}

/* ---- A forward-like convolution: in [n, h, w, k] -> out [n, oh, ow, c], filters u. ---- */

typedef struct {
  const float *in, *u, *bias, *zeros;
  float *out;
  int64_t n, h, w, k, oh, ow, c, pt, pl, th, tw, tiles;
  int relu;
} Job;

/* Tile t's image n and its row ty and column tx among the th x tw tiles of an image. */
static void tile_at(const Job *j, int64_t t, int64_t *n, int64_t *ty, int64_t *tx) {
  *n = t / (j->th * j->tw);
  *ty = t / j->tw % j->th;
  *tx = t % j->tw;
}

/* The 36 input pixels of tile t (a zero row outside the image), into v[p][.][k] with `stride`. */
static void input_tile(const Job *j, int64_t t, float *v, int64_t stride, int64_t k0, int64_t len) {
  int64_t n, ty, tx;
  tile_at(j, t, &n, &ty, &tx);
  const float *in[POINTS];
  float *out[POINTS];
  for (int a = 0; a < 6; a++) {
    for (int b = 0; b < 6; b++) {
      const int64_t y = 2 * ty - j->pt + a, x = 2 * tx - j->pl + b;
      const int inside = y >= 0 && y < j->h && x >= 0 && x < j->w;
      in[a * 6 + b] = inside ? j->in + ((n * j->h + y) * j->w + x) * j->k + k0 : j->zeros;
      out[a * 6 + b] = v + a * 6 * stride + b * stride + k0;
    }
  }
  transform2d(bt6, 6, 6, in, out, len);
}

/* Output tile t from its 36 points m[p][.][c] (with `stride`): + bias, ReLU, the pixels inside. */
static void output_tile(const Job *j, int64_t t, const float *m, int64_t stride, int64_t c0, int64_t len) {
  int64_t n, ty, tx;
  tile_at(j, t, &n, &ty, &tx);
  const float *in[POINTS];
  float y[4][CB];
  float *out[4] = {y[0], y[1], y[2], y[3]};
  for (int p = 0; p < POINTS; p++) in[p] = m + p * stride + c0;
  transform2d(at6, 6, 2, in, out, len);
  for (int q = 0; q < 4; q++) {
    const int64_t oy = 2 * ty + q / 2, ox = 2 * tx + q % 2;
    if (oy >= j->oh || ox >= j->ow) continue;
    float *dst = j->out + ((n * j->oh + oy) * j->ow + ox) * j->c + c0;
    for (int64_t c = 0; c < len; c++) {
      const float v = y[q][c] + (j->bias ? j->bias[c0 + c] : 0.0f);
      dst[c] = j->relu ? nin_relu1(v) : v;
    }
  }
}

static void forward_chunk(const Job *j, int64_t t0, int64_t nt, float *v, float *m) {
  for (int64_t t = 0; t < nt; t++)
    for (int64_t k0 = 0; k0 < j->k; k0 += CB) input_tile(j, t0 + t, v + t * j->k, CHUNK * j->k, k0, block_len(j->k, k0, CB));
  for (int p = 0; p < POINTS; p++)
    dnnl_sgemm('N', 'N', nt, j->c, j->k, 1.0f, v + p * CHUNK * j->k, j->k, j->u + p * j->k * j->c, j->c, 0.0f,
               m + p * CHUNK * j->c, j->c);
  for (int64_t t = 0; t < nt; t++)
    for (int64_t c0 = 0; c0 < j->c; c0 += CB) output_tile(j, t0 + t, m + t * j->c, CHUNK * j->c, c0, block_len(j->c, c0, CB));
}

static int run_forward(const Job *j) {
  const int threads = omp_get_max_threads();
  const size_t per_thread = (size_t)POINTS * CHUNK * (j->k + j->c);
  float *buf = scratch_for(S_TILES, per_thread * threads);
  if (!buf) return 0;
  const int64_t chunks = (j->tiles + CHUNK - 1) / CHUNK;
#pragma omp parallel num_threads(threads)
  {
    float *v = buf + per_thread * omp_get_thread_num(), *m = v + (size_t)POINTS * CHUNK * j->k;
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < chunks; ch++) {
      const int64_t t0 = ch * CHUNK;
      forward_chunk(j, t0, block_len(j->tiles, t0, CHUNK), v, m);
    }
  }
  return 1;
}

static Job job_of(const float *in, const float *u, const float *bias, float *out, int64_t n, int64_t h, int64_t w,
                  int64_t k, int64_t oh, int64_t ow, int64_t c, int64_t pt, int64_t pl, int relu, const float *zeros) {
  Job j = {in, u, bias, zeros, out, n, h, w, k, oh, ow, c, pt, pl, (oh + 1) / 2, (ow + 1) / 2, 0, relu};
  j.tiles = n * j.th * j.tw;
  return j;
}

/* A row of zeros for the pixels outside the image or the output: as long as the wider of ci and co. */
static const float *zeros_for(const Geometry *g) { return scratch_for(S_ZEROS, (size_t)(g->ci > g->co ? g->ci : g->co)); }

int wino5_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu) {
  float *u = scratch_for(S_FILTER, (size_t)POINTS * g->ci * g->co);
  const float *zeros = zeros_for(g);
  if (!u || !zeros) return 0;
  filter_transform(w, g->ci, g->co, u);
  const Job j = job_of(x, u, bias, y, g->n, g->h, g->w, g->ci, g->oh, g->ow, g->co, g->pt, g->pl, relu, zeros);
  return run_forward(&j);
}

int wino5_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g) {
  float *u = scratch_for(S_FILTER, (size_t)POINTS * g->ci * g->co), *wf = scratch_for(S_FLIPPED, (size_t)25 * g->ci * g->co);
  const float *zeros = zeros_for(g);
  if (!u || !wf || !zeros) return 0;
  flip_filters(w, g->ci, g->co, wf);
  filter_transform(wf, g->co, g->ci, u);
  const Job j = job_of(dy, u, NULL, dx, g->n, g->oh, g->ow, g->co, g->h, g->w, g->ci, 4 - g->pt, 4 - g->pl, 0, zeros);
  return run_forward(&j);
}

/* ---- The filter gradient ---- */

/* The 36 points A dy A^T of tile t's output gradients (zero outside the output), into z[p][.][c]. */
static void gradient_tile(const Job *j, const float *dy, int64_t t, float *z, int64_t stride, int64_t c0, int64_t len) {
  int64_t n, ty, tx;
  tile_at(j, t, &n, &ty, &tx);
  const float *in[4];
  float *out[POINTS];
  for (int q = 0; q < 4; q++) {
    const int64_t oy = 2 * ty + q / 2, ox = 2 * tx + q % 2;
    in[q] = oy < j->oh && ox < j->ow ? dy + ((n * j->oh + oy) * j->ow + ox) * j->c + c0 : j->zeros;
  }
  for (int p = 0; p < POINTS; p++) out[p] = z + p * stride + c0;
  transform2d(a6, 2, 6, in, out, len);
}

/* acc[p] += v[p]^T z[p] for the chunk of tiles at t0. */
static void filter_chunk(const Job *j, const float *dy, int64_t t0, int64_t nt, float *v, float *z, float *acc) {
  for (int64_t t = 0; t < nt; t++) {
    for (int64_t k0 = 0; k0 < j->k; k0 += CB) input_tile(j, t0 + t, v + t * j->k, CHUNK_W * j->k, k0, block_len(j->k, k0, CB));
    for (int64_t c0 = 0; c0 < j->c; c0 += CB) gradient_tile(j, dy, t0 + t, z + t * j->c, CHUNK_W * j->c, c0, block_len(j->c, c0, CB));
  }
  for (int p = 0; p < POINTS; p++)
    dnnl_sgemm('T', 'N', j->k, j->c, nt, 1.0f, v + p * CHUNK_W * j->k, j->k, z + p * CHUNK_W * j->c, j->c, 1.0f,
               acc + p * j->k * j->c, j->c);
}

/* dw = G^T (sum of the threads' acc) G, per filter pair. */
static void filter_gradient(const float *acc, int threads, int64_t k, int64_t c, float *dw) {
  const size_t each = (size_t)POINTS * k * c;
  for (int t = 1; t < threads; t++) {
    float *restrict a = (float *)acc;
    const float *restrict b = acc + t * each;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < each; i++) a[i] += b[i];
  }
#pragma omp parallel for schedule(static)
  for (int64_t ki = 0; ki < k; ki++) {
    for (int64_t c0 = 0; c0 < c; c0 += CB) {
      const float *in[POINTS];
      float *out[25];
      for (int p = 0; p < POINTS; p++) in[p] = acc + (p * k + ki) * c + c0;
      for (int t = 0; t < 25; t++) out[t] = dw + (t * k + ki) * c + c0;
      transform2d(gt5, 6, 5, in, out, block_len(c, c0, CB));
    }
  }
}

int wino5_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g) {
  const int threads = omp_get_max_threads();
  const size_t each = (size_t)POINTS * g->ci * g->co, per_thread = (size_t)POINTS * CHUNK_W * (g->ci + g->co);
  float *acc = scratch_for(S_ACC, each * threads), *buf = scratch_for(S_TILES, per_thread * threads);
  const float *zeros = zeros_for(g);
  if (!acc || !buf || !zeros) return 0;
  const Job j = job_of(x, NULL, NULL, NULL, g->n, g->h, g->w, g->ci, g->oh, g->ow, g->co, g->pt, g->pl, 0, zeros);
  const int64_t chunks = (j.tiles + CHUNK_W - 1) / CHUNK_W;
  int team = threads; /* OpenMP may start fewer threads than asked: sum only theirs */
#pragma omp parallel num_threads(threads)
  {
    const int me = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    float *v = buf + per_thread * me, *z = v + (size_t)POINTS * CHUNK_W * g->ci, *mine = acc + each * me;
    memset(mine, 0, each * sizeof(float));
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < chunks; ch++) {
      const int64_t t0 = ch * CHUNK_W;
      filter_chunk(&j, dy, t0, block_len(j.tiles, t0, CHUNK_W), v, z, mine);
    }
  }
  filter_gradient(acc, team, g->ci, g->co, dw);
  return 1;
}
