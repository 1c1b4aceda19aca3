/*
 * The three convolutions of nin_conv.c (forward with bias and ReLU, input gradient, filter
 * gradient) on oneDNN's primitives, which are JIT-compiled for the CPU at hand and run on
 * every core. The ReLU is not oneDNN's post-op: that one computes max(x, 0), which turns NaN
 * into 0 and would hide a diverged network; nin_relu keeps NaN, as tfjs and PyTorch do. Built
 * only where libdnnl-dev is installed (NIN_DNNL); nin_conv.c picks this path or its own
 * OpenBLAS one (NIN_NATIVE_CONV=blas|dnnl|dnnl-direct, default dnnl when built).
 *
 * Activations stay in tfjs's NHWC layout and the filters in its HWIO layout. 3x3 stride-1
 * convolutions use oneDNN's Winograd algorithm where it has one (F(4x4, 3x3) on AVX-512: about
 * 2.5 times fewer multiplications; not with dnnl-direct) and where it pays (is_winograd_shape);
 * it works in blocked layouts, so their activations are reordered in and out. 5x5 stride-1
 * convolutions, for which oneDNN has no Winograd, go to nin_wino5.c's F(2x2, 5x5) under the
 * same switch. Everything else is a direct convolution on NHWC. The filters are in the
 * layout oneDNN picks (`any`), reordered on each call (they change every step). Primitives are
 * created once per shape and kept.
 */
#include "nin_dnnl.h"
#include "nin_eltwise.h"
#include "nin_scratch.h"
#include "nin_wino5.h"
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>

enum { FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS };

/*
 * One of a primitive's three tensors: how tfjs lays it out, how the primitive wants it, and
 * the reorder between them (user -> primitive for an input, back for the output), NULL when
 * they agree. Ports 0 and 1 are inputs, port 2 the output: forward (src, weights, dst),
 * backward data (diff_dst, weights, diff_src), backward weights (src, diff_dst, diff_weights).
 */
typedef struct {
  dnnl_memory_desc_t user, prim;
  dnnl_primitive_t reorder;
} Port;

typedef struct {
  int kind, bias;
  Geometry g;
  dnnl_primitive_t prim;
  Port port[3];
  char impl[64];
} Entry;

static const int PORT_ARGS[3][3] = {
  {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
  {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
  {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
};
static const dnnl_query_t PORT_QUERIES[3][3] = {
  {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
  {dnnl_query_diff_dst_md, dnnl_query_weights_md, dnnl_query_diff_src_md},
  {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md},
};

#define MAX_ENTRIES 96
static Entry entries[MAX_ENTRIES];
static int n_entries = 0;
static dnnl_engine_t engine = NULL;
static dnnl_stream_t stream = NULL;
static char last_error[512] = "";
static int winograd_allowed = 1;
static int wino5_ran = 0; /* whether nin_wino5.c has run a convolution (for dnnl_path_describe) */

/* A reordered tensor of port i lives here during a call (calls run one at a time). */
static NinScratch port_buf[3];

const char *dnnl_path_error(void) { return last_error; }

void dnnl_path_set_winograd(int allowed) { winograd_allowed = allowed; }

#define CHECK(call)                                                                   \
  do {                                                                                \
    dnnl_status_t s_ = (call);                                                        \
    if (s_ != dnnl_success) {                                                         \
      snprintf(last_error, sizeof last_error, "oneDNN: %s failed (status %d)", #call, (int)s_); \
      return 0;                                                                       \
    }                                                                                 \
  } while (0)

static int ensure_engine(void) {
  if (engine) return 1;
  CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
  CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
  return 1;
}

static int same_geometry(const Geometry *a, const Geometry *b) { return memcmp(a, b, sizeof *a) == 0; }

/* The user (NHWC / HWIO) descs of x, w, y, and the strides and left/right padding. */
typedef struct {
  dnnl_memory_desc_t x, w, y;
  dnnl_dims_t strides, pad_l, pad_r;
} Shapes;

static Shapes shapes_of(const Geometry *g) {
  Shapes s;
  dnnl_dims_t sd = {g->n, g->ci, g->h, g->w}, wd = {g->co, g->ci, g->kh, g->kw}, dd = {g->n, g->co, g->oh, g->ow};
  dnnl_memory_desc_init_by_tag(&s.x, 4, sd, dnnl_f32, dnnl_nhwc);
  dnnl_memory_desc_init_by_tag(&s.w, 4, wd, dnnl_f32, dnnl_hwio);
  dnnl_memory_desc_init_by_tag(&s.y, 4, dd, dnnl_f32, dnnl_nhwc);
  s.strides[0] = g->sh; s.strides[1] = g->sw;
  s.pad_l[0] = g->pt; s.pad_l[1] = g->pl;
  s.pad_r[0] = (g->oh - 1) * g->sh + g->kh - g->h - g->pt;
  s.pad_r[1] = (g->ow - 1) * g->sw + g->kw - g->w - g->pl;
  return s;
}

/* The bias [co] of a convolution. */
static dnnl_memory_desc_t bias_desc(const Geometry *g) {
  dnnl_memory_desc_t b;
  dnnl_dims_t bd = {g->co};
  dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x);
  return b;
}

static dnnl_memory_desc_t any_like(const dnnl_memory_desc_t *md) {
  dnnl_memory_desc_t out;
  dnnl_memory_desc_init_by_tag(&out, md->ndims, md->dims, dnnl_f32, dnnl_format_tag_any);
  return out;
}

/*
 * The primitive descriptor of `kind` with algorithm `alg` (activations in any layout for
 * Winograd, NHWC otherwise), or NULL (with last_error) when oneDNN has none.
 */
static dnnl_primitive_desc_t make_pd(int kind, dnnl_alg_kind_t alg, const Geometry *g, int bias) {
  const Shapes s = shapes_of(g);
  const int blocked = alg == dnnl_convolution_winograd;
  dnnl_memory_desc_t x = blocked ? any_like(&s.x) : s.x, y = blocked ? any_like(&s.y) : s.y, w = any_like(&s.w);
  const dnnl_memory_desc_t b = bias_desc(g);
  dnnl_convolution_desc_t fd, cd;
  dnnl_primitive_desc_t fpd = NULL, pd = NULL;
  dnnl_status_t st = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &x, &w,
                                                        kind == FORWARD && bias ? &b : NULL, &y, s.strides, s.pad_l, s.pad_r);
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL);
  if (st == dnnl_success && kind == FORWARD) return fpd;
  if (st == dnnl_success && kind == BACKWARD_DATA) {
    st = dnnl_convolution_backward_data_desc_init(&cd, alg, &x, &w, &y, s.strides, s.pad_l, s.pad_r);
  } else if (st == dnnl_success) {
    st = dnnl_convolution_backward_weights_desc_init(&cd, alg, &x, &w, NULL, &y, s.strides, s.pad_l, s.pad_r);
  }
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &cd, NULL, engine, fpd);
  if (fpd) dnnl_primitive_desc_destroy(fpd);
  if (st != dnnl_success) {
    snprintf(last_error, sizeof last_error, "oneDNN: no %s convolution for this shape (status %d)",
             blocked ? "Winograd" : "direct", (int)st);
    return NULL;
  }
  return pd;
}

/*
 * Whether Winograd pays: it computes 4x4 output tiles, each costing about as much as 7 output
 * pixels of the direct convolution (measured here with NiN's 3x3 layer at outputs of 1x1 to
 * 12x12), so it is used when the tiles are at least half full: a 3x3 or 4x4 output, not a
 * 1x1, 2x2 or 5x5 one (NiN's class block at 1x1 was 14 times slower with it).
 */
static int is_winograd_shape(const Geometry *g) {
  const int64_t tiles = ((g->oh + 3) / 4) * ((g->ow + 3) / 4);
  return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && 2 * g->oh * g->ow >= 16 * tiles;
}

/* Sets up port i of `e` from the primitive's wish `prim` and tfjs's layout `user`. */
static int make_port(Entry *e, int i, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *prim) {
  Port *p = &e->port[i];
  p->user = *user;
  p->prim = *prim;
  p->reorder = NULL;
  if (dnnl_memory_desc_equal(user, prim)) return 1;
  const int out = i == 2;
  dnnl_primitive_desc_t rpd;
  CHECK(dnnl_reorder_primitive_desc_create(&rpd, out ? prim : user, engine, out ? user : prim, engine, NULL));
  dnnl_status_t s = dnnl_primitive_create(&p->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  CHECK(s);
  return 1;
}

static int build(Entry *e) {
  const Geometry *g = &e->g;
  dnnl_primitive_desc_t pd = NULL;
  if (winograd_allowed && is_winograd_shape(g)) pd = make_pd(e->kind, dnnl_convolution_winograd, g, e->bias);
  if (!pd) pd = make_pd(e->kind, dnnl_convolution_direct, g, e->bias);
  if (!pd) return 0;
  const Shapes s = shapes_of(g);
  const dnnl_memory_desc_t *users[3][3] = {{&s.x, &s.w, &s.y}, {&s.y, &s.w, &s.x}, {&s.x, &s.y, &s.w}};
  const char *impl = NULL;
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
  int ok = 1;
  for (int i = 0; i < 3 && ok; i++) ok = make_port(e, i, users[e->kind][i], dnnl_primitive_desc_query_md(pd, PORT_QUERIES[e->kind][i], 0));
  dnnl_status_t st = ok ? dnnl_primitive_create(&e->prim, pd) : dnnl_success;
  dnnl_primitive_desc_destroy(pd);
  CHECK(st);
  return ok;
}

static void forget(Entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  for (int i = 0; i < 3; i++) if (e->port[i].reorder) dnnl_primitive_destroy(e->port[i].reorder);
}

static Entry *entry(int kind, const Geometry *g, int bias) {
  if (!ensure_engine()) return NULL;
  for (int i = 0; i < n_entries; i++) {
    if (entries[i].kind == kind && entries[i].bias == bias && same_geometry(&entries[i].g, g)) return &entries[i];
  }
  if (n_entries == MAX_ENTRIES) { /* forget them all: shapes keep changing (a sweep of sizes) */
    for (int i = 0; i < n_entries; i++) forget(&entries[i]);
    n_entries = 0;
  }
  Entry *e = &entries[n_entries];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->bias = bias;
  e->g = *g;
  if (!build(e)) {
    forget(e);
    return NULL;
  }
  n_entries++;
  return e;
}

static int memory(dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *ptr) {
  CHECK(dnnl_memory_create(m, md, engine, ptr));
  return 1;
}

static int run(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
  CHECK(dnnl_primitive_execute(p, stream, n, args));
  CHECK(dnnl_stream_wait(stream));
  return 1;
}

/* The memory port i computes with: the user's tensor itself, or port_buf[i] (grown as needed). */
static int port_memory(const Port *p, int i, void *user, dnnl_memory_t *out) {
  if (!p->reorder) return memory(out, &p->user, user);
  void *buf = nin_scratch(&port_buf[i], dnnl_memory_desc_get_size(&p->prim));
  if (!buf) {
    snprintf(last_error, sizeof last_error, "oneDNN path: out of memory for a reordered tensor");
    return 0;
  }
  return memory(out, &p->prim, buf);
}

/* Reorders between port i's user tensor and its memory `mine`: in for inputs, out for the output. */
static int port_reorder(const Port *p, int i, void *user, dnnl_memory_t mine) {
  if (!p->reorder) return 1;
  dnnl_memory_t u;
  if (!memory(&u, &p->user, user)) return 0;
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, i == 2 ? mine : u}, {DNNL_ARG_TO, i == 2 ? u : mine}};
  const int ok = run(p->reorder, 2, args);
  dnnl_memory_destroy(u);
  return ok;
}

/* Runs `e` on tfjs's tensors t[0..2] (its ports' order) and the bias, if any. */
static int execute(const Entry *e, void *const t[3], const float *bias) {
  dnnl_memory_t m[3] = {NULL, NULL, NULL}, mb = NULL;
  int ok = 1;
  for (int i = 0; i < 3 && ok; i++) ok = port_memory(&e->port[i], i, t[i], &m[i]);
  for (int i = 0; i < 2 && ok; i++) ok = port_reorder(&e->port[i], i, t[i], m[i]);
  if (ok && bias) {
    const dnnl_memory_desc_t b = bias_desc(&e->g);
    ok = memory(&mb, &b, (void *)bias);
  }
  if (ok) {
    dnnl_exec_arg_t args[4] = {{PORT_ARGS[e->kind][0], m[0]}, {PORT_ARGS[e->kind][1], m[1]},
                               {PORT_ARGS[e->kind][2], m[2]}, {DNNL_ARG_BIAS, mb}};
    ok = run(e->prim, bias ? 4 : 3, args);
  }
  if (ok) ok = port_reorder(&e->port[2], 2, t[2], m[2]);
  for (int i = 0; i < 3; i++) dnnl_memory_destroy(m[i]);
  dnnl_memory_destroy(mb);
  return ok;
}

/* Whether nin_wino5.c takes `g`: 5x5 stride-1 layers, where Winograd is allowed. */
static int use_wino5(const Geometry *g) {
  if (!winograd_allowed || !wino5_fits(g)) return 0;
  wino5_ran = 1;
  return 1;
}

/* `ok` (1), or 0 with nin_wino5.c's reason as this path's error. */
static int wino5_result(int ok) {
  if (!ok) snprintf(last_error, sizeof last_error, "%s", wino5_error());
  return ok;
}

int dnnl_conv_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu) {
  if (use_wino5(g)) return wino5_result(wino5_forward(x, w, bias, y, g, relu));
  Entry *e = entry(FORWARD, g, bias != NULL);
  void *const t[3] = {(void *)x, (void *)w, y};
  if (!e || !execute(e, t, bias)) return 0;
  if (relu) nin_relu(y, y, g->n * g->oh * g->ow * g->co);
  return 1;
}

int dnnl_conv_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g) {
  if (use_wino5(g)) return wino5_result(wino5_backprop_input(dy, w, dx, g));
  Entry *e = entry(BACKWARD_DATA, g, 0);
  void *const t[3] = {(void *)dy, (void *)w, dx};
  return e && execute(e, t, NULL);
}

int dnnl_conv_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g) {
  if (use_wino5(g)) return wino5_result(wino5_backprop_filter(x, dy, dw, g));
  Entry *e = entry(BACKWARD_WEIGHTS, g, 0);
  void *const t[3] = {(void *)x, (void *)dy, dw};
  return e && execute(e, t, NULL);
}

/* "jit:avx2 ..." for each primitive made so far, distinct, comma-separated; first "wino5:F(2x2,5x5)"
 * where nin_wino5.c has run. */
void dnnl_path_describe(char *out, size_t size) {
  snprintf(out, size, "%s", wino5_ran ? "wino5:F(2x2,5x5)" : "");
  for (int i = 0; i < n_entries; i++) {
    if (strstr(out, entries[i].impl)) continue;
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s%s", used ? ", " : "", entries[i].impl);
  }
}
