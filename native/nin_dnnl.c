/*
 * The three convolutions of nin_conv.c (forward with bias and ReLU, input gradient, filter
 * gradient) on oneDNN's primitives, which are JIT-compiled for the CPU at hand and run on
 * every core. The ReLU is not oneDNN's post-op: that one computes max(x, 0), which turns NaN
 * into 0 and would hide a diverged network; nin_relu keeps NaN, as tfjs and PyTorch do. Built only where libdnnl-dev is installed (NIN_DNNL); nin_conv.c picks this path
 * or its own OpenBLAS one (NIN_NATIVE_CONV=blas|dnnl, default dnnl when built).
 *
 * Activations stay in tfjs's NHWC layout and the filters in its HWIO layout; oneDNN chooses
 * its own layout for the filters (`any`) and a reorder converts them on each call (they change
 * every step). Primitives are created once per shape and kept.
 */
#include "nin_dnnl.h"
#include "nin_eltwise.h"
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FORWARD, BACKWARD_DATA, BACKWARD_WEIGHTS };

typedef struct {
  int kind, bias;
  Geometry g;
  dnnl_primitive_t prim;
  dnnl_primitive_t reorder;          /* user filters -> primitive's, or primitive's -> user (backward weights) */
  dnnl_memory_desc_t user_w, prim_w; /* HWIO, and the layout the primitive wants */
  float *w_buf;                      /* filters in the primitive's layout, when it differs */
  char impl[64];
} Entry;

#define MAX_ENTRIES 96
static Entry entries[MAX_ENTRIES];
static int n_entries = 0;
static dnnl_engine_t engine = NULL;
static dnnl_stream_t stream = NULL;
static char last_error[512] = "";

const char *dnnl_path_error(void) { return last_error; }

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

/* Logical oneDNN dims (N, C, H, W) of the three tensors, and the right/bottom padding. */
static void descs(const Geometry *g, dnnl_memory_desc_t *src, dnnl_memory_desc_t *w_user, dnnl_memory_desc_t *w_any,
                  dnnl_memory_desc_t *dst, dnnl_dims_t strides, dnnl_dims_t pad_l, dnnl_dims_t pad_r) {
  dnnl_dims_t sd = {g->n, g->ci, g->h, g->w}, wd = {g->co, g->ci, g->kh, g->kw}, dd = {g->n, g->co, g->oh, g->ow};
  dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nhwc);
  dnnl_memory_desc_init_by_tag(w_user, 4, wd, dnnl_f32, dnnl_hwio);
  dnnl_memory_desc_init_by_tag(w_any, 4, wd, dnnl_f32, dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nhwc);
  strides[0] = g->sh; strides[1] = g->sw;
  pad_l[0] = g->pt; pad_l[1] = g->pl;
  pad_r[0] = (g->oh - 1) * g->sh + g->kh - g->h - g->pt;
  pad_r[1] = (g->ow - 1) * g->sw + g->kw - g->w - g->pl;
}

static int forward_pd(const Geometry *g, int bias, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t src, w_user, w_any, dst, b;
  dnnl_dims_t strides, pl, pr, bd = {g->co};
  descs(g, &src, &w_user, &w_any, &dst, strides, pl, pr);
  dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x);
  dnnl_convolution_desc_t cd;
  CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src, &w_any,
                                           bias ? &b : NULL, &dst, strides, pl, pr));
  CHECK(dnnl_primitive_desc_create(pd, &cd, NULL, engine, NULL));
  return 1;
}

static int build(Entry *e) {
  const Geometry *g = &e->g;
  dnnl_memory_desc_t src, w_user, w_any, dst;
  dnnl_dims_t strides, pl, pr;
  descs(g, &src, &w_user, &w_any, &dst, strides, pl, pr);
  dnnl_primitive_desc_t pd = NULL, hint = NULL;
  if (e->kind == FORWARD) {
    if (!forward_pd(g, e->bias, &pd)) return 0;
  } else {
    if (!forward_pd(g, 0, &hint)) return 0;
    dnnl_convolution_desc_t cd;
    if (e->kind == BACKWARD_DATA) {
      CHECK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &w_any, &dst, strides, pl, pr));
    } else {
      CHECK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src, &w_any, NULL, &dst, strides, pl, pr));
    }
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint);
    dnnl_primitive_desc_destroy(hint);
    CHECK(s);
  }
  const dnnl_query_t which = e->kind == BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md;
  e->user_w = w_user;
  e->prim_w = *dnnl_primitive_desc_query_md(pd, which, 0);
  const char *impl = NULL;
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
  dnnl_status_t s = dnnl_primitive_create(&e->prim, pd);
  dnnl_primitive_desc_destroy(pd);
  CHECK(s);
  e->reorder = NULL;
  e->w_buf = NULL;
  if (!dnnl_memory_desc_equal(&e->user_w, &e->prim_w)) {
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = e->kind == BACKWARD_WEIGHTS ? &e->prim_w : &e->user_w;
    const dnnl_memory_desc_t *to = e->kind == BACKWARD_WEIGHTS ? &e->user_w : &e->prim_w;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL));
    s = dnnl_primitive_create(&e->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    CHECK(s);
    e->w_buf = (float *)aligned_alloc(64, (dnnl_memory_desc_get_size(&e->prim_w) + 63) / 64 * 64);
    if (!e->w_buf) {
      snprintf(last_error, sizeof last_error, "oneDNN path: out of memory for filters");
      return 0;
    }
  }
  return 1;
}

static Entry *entry(int kind, const Geometry *g, int bias) {
  if (!ensure_engine()) return NULL;
  for (int i = 0; i < n_entries; i++) {
    if (entries[i].kind == kind && entries[i].bias == bias && same_geometry(&entries[i].g, g)) return &entries[i];
  }
  if (n_entries == MAX_ENTRIES) { /* forget them all: shapes keep changing (a sweep of sizes) */
    for (int i = 0; i < n_entries; i++) {
      dnnl_primitive_destroy(entries[i].prim);
      if (entries[i].reorder) dnnl_primitive_destroy(entries[i].reorder);
      free(entries[i].w_buf);
    }
    n_entries = 0;
  }
  Entry *e = &entries[n_entries];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->bias = bias;
  e->g = *g;
  if (!build(e)) return NULL;
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

/* The filters in the layout `e` computes with: `w` itself, or reordered into e->w_buf. */
static int filters_in(const Entry *e, const float *w, dnnl_memory_t *out) {
  if (!e->reorder) return memory(out, &e->user_w, (void *)w);
  dnnl_memory_t user, mine;
  if (!memory(&user, &e->user_w, (void *)w) || !memory(&mine, &e->prim_w, e->w_buf)) return 0;
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, mine}};
  int ok = run(e->reorder, 2, args);
  dnnl_memory_destroy(user);
  *out = mine;
  return ok;
}

int dnnl_conv_forward(const float *x, const float *w, const float *bias, float *y, const Geometry *g, int relu) {
  Entry *e = entry(FORWARD, g, bias != NULL);
  if (!e) return 0;
  dnnl_memory_desc_t src, w_user, w_any, dst, b;
  dnnl_dims_t strides, pl, pr, bd = {g->co};
  descs(g, &src, &w_user, &w_any, &dst, strides, pl, pr);
  dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x);
  dnnl_memory_t ms = NULL, mw = NULL, mb = NULL, md = NULL;
  int ok = memory(&ms, &src, (void *)x) && filters_in(e, w, &mw) && memory(&md, &dst, y) &&
           (!bias || memory(&mb, &b, (void *)bias));
  if (ok) {
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}, {DNNL_ARG_BIAS, mb}};
    ok = run(e->prim, bias ? 4 : 3, args);
  }
  if (ok && relu) nin_relu(y, y, g->n * g->oh * g->ow * g->co);
  dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md); dnnl_memory_destroy(mb);
  return ok;
}

int dnnl_conv_backprop_input(const float *dy, const float *w, float *dx, const Geometry *g) {
  Entry *e = entry(BACKWARD_DATA, g, 0);
  if (!e) return 0;
  dnnl_memory_desc_t src, w_user, w_any, dst;
  dnnl_dims_t strides, pl, pr;
  descs(g, &src, &w_user, &w_any, &dst, strides, pl, pr);
  dnnl_memory_t mdx = NULL, mw = NULL, mdy = NULL;
  int ok = memory(&mdx, &src, dx) && filters_in(e, w, &mw) && memory(&mdy, &dst, (void *)dy);
  if (ok) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, mdx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_DST, mdy}};
    ok = run(e->prim, 3, args);
  }
  dnnl_memory_destroy(mdx); dnnl_memory_destroy(mw); dnnl_memory_destroy(mdy);
  return ok;
}

int dnnl_conv_backprop_filter(const float *x, const float *dy, float *dw, const Geometry *g) {
  Entry *e = entry(BACKWARD_WEIGHTS, g, 0);
  if (!e) return 0;
  dnnl_memory_desc_t src, w_user, w_any, dst;
  dnnl_dims_t strides, pl, pr;
  descs(g, &src, &w_user, &w_any, &dst, strides, pl, pr);
  dnnl_memory_t mx = NULL, mdw = NULL, mdy = NULL, muser = NULL;
  int ok = memory(&mx, &src, (void *)x) && memory(&mdy, &dst, (void *)dy) &&
           memory(&mdw, &e->prim_w, e->reorder ? (void *)e->w_buf : (void *)dw);
  if (ok) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_WEIGHTS, mdw}, {DNNL_ARG_DIFF_DST, mdy}};
    ok = run(e->prim, 3, args);
  }
  if (ok && e->reorder && memory(&muser, &e->user_w, dw)) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mdw}, {DNNL_ARG_TO, muser}};
    ok = run(e->reorder, 2, args);
  }
  dnnl_memory_destroy(mx); dnnl_memory_destroy(mdw); dnnl_memory_destroy(mdy); dnnl_memory_destroy(muser);
  return ok;
}

/* "jit:avx2 ..." for each primitive made so far, distinct, comma-separated. */
void dnnl_path_describe(char *out, size_t size) {
  out[0] = '\0';
  for (int i = 0; i < n_entries; i++) {
    if (strstr(out, entries[i].impl)) continue;
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s%s", used ? ", " : "", entries[i].impl);
  }
}
