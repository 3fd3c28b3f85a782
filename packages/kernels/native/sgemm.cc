// Blocked SGEMM after Goto & van de Geijn (2008) and the BLIS loop nest (Van Zee & van de Geijn, 2015): the
// product is cut into KC-deep slices of B packed into NR-wide panels (kept in L3/L2) and MC-row blocks of A
// (kept in L2), and a register-tiled MR × NR micro-kernel streams an A panel and a B panel from L1. As in
// BLIS's "sup" path for skinny products, full MR-row panels of A are read in place (either layout) rather
// than packed: at the model's sizes (n = 32 … 1024) packing A costs more than the strided loads.
#include "sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAPO_X86 1
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "pool.h"

namespace papo {
namespace {

constexpr int64_t MR = 6, NR = 16;                  // 12 ymm accumulators + 2 B vectors + 1 broadcast
constexpr int64_t KC = 256, MC = 168, NC = 4080;    // A panel 6·256·4 = 6 KB + B panel 16 KB (L1), A block 168 KB (L2)

using Kernel = void (*)(int64_t kc, const float* a, int64_t rs, int64_t cs, const float* pb, float* c, int64_t ldc, bool first,
                        const float* bias);

// C (MR × NR, row stride ldc) = [C +] Σ_p a[r·rs + p·cs] · pb[p·NR + j] [+ bias[j] when first]. A is read in
// place (any strides: either transpose), B from a packed panel.
void kernel_generic(int64_t kc, const float* a, int64_t rs, int64_t cs, const float* pb, float* c, int64_t ldc, bool first,
                    const float* bias) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; p++, a += cs, pb += NR)
    for (int64_t r = 0; r < MR; r++)
      for (int64_t j = 0; j < NR; j++) acc[r][j] += a[r * rs] * pb[j];
  for (int64_t r = 0; r < MR; r++)
    for (int64_t j = 0; j < NR; j++) {
      float* out = c + r * ldc + j;
      *out = first ? (bias ? acc[r][j] + bias[j] : acc[r][j]) : *out + acc[r][j];
    }
}

#ifdef PAPO_X86
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* a, int64_t rs, int64_t cs, const float* pb,
                                                     float* c, int64_t ldc, bool first, const float* bias) {
  const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs, *a5 = a + 5 * rs;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0, o = 0; p < kc; p++, o += cs, pb += NR) {
    const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
    __m256 x = _mm256_broadcast_ss(a0 + o);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + o);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + o);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + o);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + o);
    c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + o);
    c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t r = 0; r < MR; r++)
    for (int64_t h = 0; h < 2; h++) {
      float* out = c + r * ldc + 8 * h;
      __m256 v = acc[r][h];
      if (!first) v = _mm256_add_ps(_mm256_loadu_ps(out), v);
      else if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + 8 * h));
      _mm256_storeu_ps(out, v);
    }
}

Kernel best_kernel() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? kernel_avx2 : kernel_generic; }
#else
Kernel best_kernel() { return kernel_generic; }
#endif
Kernel kernel = best_kernel();

// Packs the last, partial row panel of op(A) (rows [0, rows) × depth [0, kc), origin `a`) into an MR-row
// panel, zero-padded, so that the micro-kernel reads MR rows (full panels are read in place).
void pack_a_edge(const float* a, int64_t rs, int64_t cs, int64_t rows, int64_t kc, float* dst) {
  for (int64_t p = 0; p < kc; p++)
    for (int64_t r = 0; r < MR; r++) dst[p * MR + r] = r < rows ? a[r * rs + p * cs] : 0.0f;
}

// Packs depth [0, kc) × columns [0, nc) of op(B) (origin `b`) into NR-column panels, zero-padded.
void pack_b(const float* b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, float* dst) {
  for (int64_t j = 0; j < nc; j += NR) {
    const int64_t cols = std::min(NR, nc - j);
    if (cs == 1) {
      for (int64_t p = 0; p < kc; p++) {
        std::memcpy(dst + p * NR, b + p * rs + j, sizeof(float) * cols);
        std::fill(dst + p * NR + cols, dst + p * NR + NR, 0.0f);
      }
    } else {
      for (int64_t c = 0; c < cols; c++) {
        const float* src = b + (j + c) * cs;
        for (int64_t p = 0; p < kc; p++) dst[p * NR + c] = src[p * rs];
      }
      for (int64_t p = 0; p < kc; p++) std::fill(dst + p * NR + cols, dst + p * NR + NR, 0.0f);
    }
    dst += NR * kc;
  }
}

float* aligned_floats(size_t n) { return static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64)); }

// One matrix: C (m × n) = op(A) op(B) [+ bias]. Packing buffers are per thread and kept for the thread's life.
void gemm_one(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs,
              int64_t b_cs, float* c, int64_t ldc, const float* bias) {
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = bias ? bias[j] : 0.0f;
    return;
  }
  thread_local float* pa = aligned_floats(MR * KC);
  thread_local float* pb = aligned_floats(KC * (NC + NR));
  alignas(64) float tile[MR * NR];
  alignas(64) float edge_bias[NR];
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const bool first = pc == 0;
      pack_b(b + pc * b_rs + jc * b_cs, b_rs, b_cs, kc, nc, pb);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        const float* a_block = a + ic * a_rs + pc * a_cs;
        const int64_t full = mc / MR * MR;
        if (full < mc) pack_a_edge(a_block + full * a_rs, a_rs, a_cs, mc - full, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t cols = std::min(NR, nc - jr);
          const float* tile_bias = bias && first ? bias + jc + jr : nullptr;
          if (tile_bias && cols < NR) {
            std::fill(edge_bias, edge_bias + NR, 0.0f);
            std::copy(tile_bias, tile_bias + cols, edge_bias);
            tile_bias = edge_bias;
          }
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t rows = std::min(MR, mc - ir);
            float* ct = c + (ic + ir) * ldc + jc + jr;
            const bool packed = rows < MR;
            const float* a_panel = packed ? pa : a_block + ir * a_rs;
            const int64_t rs = packed ? 1 : a_rs, cs = packed ? MR : a_cs;
            const float* b_panel = pb + jr * kc;
            if (rows == MR && cols == NR) {
              kernel(kc, a_panel, rs, cs, b_panel, ct, ldc, first, tile_bias);
            } else {  // edge tile: the same arithmetic on a full-size copy
              if (!first)
                for (int64_t r = 0; r < rows; r++) std::copy(ct + r * ldc, ct + r * ldc + cols, tile + r * NR);
              kernel(kc, a_panel, rs, cs, b_panel, tile, NR, first, tile_bias);
              for (int64_t r = 0; r < rows; r++) std::copy(tile + r * NR, tile + r * NR + cols, ct + r * ldc);
            }
          }
        }
      }
    }
  }
}

// Below this many flops a second thread costs more than it saves.
constexpr double kParallelFlops = 4e5;

// A job cut into tasks: task t covers batches [b0, b1), rows [i0, i1) and columns [j0, j1) of C.
struct Task {
  int64_t b0, b1, i0, i1, j0, j1;
};
struct Split {
  const Gemm* g;
  int count;
  Task task[8];
};

void run_task(void* arg, int t) {
  const Split& s = *static_cast<const Split*>(arg);
  const Gemm& g = *s.g;
  const Task& w = s.task[t];
  for (int64_t bi = w.b0; bi < w.b1; bi++) {
    gemm_one(w.i1 - w.i0, w.j1 - w.j0, g.k, g.a + bi * g.a_batch + w.i0 * g.a_rs, g.a_rs, g.a_cs,
             g.b + bi * g.b_batch + w.j0 * g.b_cs, g.b_rs, g.b_cs, g.c + bi * g.c_batch + w.i0 * g.ldc + w.j0, g.ldc,
             g.bias ? g.bias + w.j0 : nullptr);
  }
}

}  // namespace

const char* isa_name() { return kernel == kernel_generic ? "generic" : "avx2-fma"; }

const char* force_generic() {
  kernel = kernel_generic;
  return isa_name();
}

void gemm(const Gemm& g, int threads) {
  Split s{&g, 1, {{0, g.batch, 0, g.m, 0, g.n}}};
  const double flops = 2.0 * g.batch * g.m * g.n * g.k;
  if (threads < 2 || flops < kParallelFlops) return run_task(&s, 0);
  int64_t bounds[9];
  if (g.batch >= 2) {  // whole matrices per task
    s.count = cut(g.batch, 1, 8, bounds);
    for (int t = 0; t < s.count; t++) s.task[t] = {bounds[t], bounds[t + 1], 0, g.m, 0, g.n};
  } else if (g.m >= g.n) {  // rows, at micro-tile boundaries (each task packs B: the smaller operand)
    s.count = cut(g.m, MR, 4, bounds);
    for (int t = 0; t < s.count; t++) s.task[t] = {0, 1, bounds[t], bounds[t + 1], 0, g.n};
  } else {  // columns (each task packs only its own columns of B)
    s.count = cut(g.n, NR, 4, bounds);
    for (int t = 0; t < s.count; t++) s.task[t] = {0, 1, 0, g.m, bounds[t], bounds[t + 1]};
  }
  if (s.count < 2 || !pool_run(run_task, &s, s.count))
    for (int t = 0; t < s.count; t++) run_task(&s, t);
}

}  // namespace papo
