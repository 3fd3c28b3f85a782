// Blocked SGEMM after Goto & van de Geijn (2008) and the BLIS loop nest (Van Zee & van de Geijn, 2015): the
// product is cut into deep slices of B packed into NR-wide panels (kept in L3/L2) and row blocks of A (kept
// in L2), and a register-tiled MR × NR micro-kernel streams an A panel and a B panel. As in BLIS's "sup" path
// for skinny products, full MR-row panels of A are read in place where that measured faster than packing them
// (see pack_all); deep reductions are cut into depth chunks that two threads share (see gemm()). README.md,
// "Design", gives the measurements behind each choice.
#include "sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAPO_X86 1
#endif

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "pool.h"

namespace papo {
namespace {

constexpr int64_t MR = 6, NR = kPanelWidth;         // 12 ymm accumulators + 2 B vectors + 1 broadcast
// Depth of a slice: the whole depth up to 1024 when op(A)'s rows are contiguous (C is then written once for
// every product of the model but the weight gradients; measured 91–94 GFLOP/s per core at k = 512 and 1024,
// against 74–84 with 256-deep slices), 256 when A is transposed (read in place, each k-step of an A panel is
// another cache line: 512- or 1024-deep slices overflow L1 and L2 and measured slower).
constexpr int64_t KC_ROWS = 1024, KC_TRANSPOSED = 256;
// An A block holds at most MC rows and A_FLOATS floats (240 KB, about half of the 512 KB L2, the rest for the
// C tiles and B panels streaming through), a B slice B_FLOATS floats (4 MB, in L3).
constexpr int64_t MC = 168, A_FLOATS = 60 * 1024, B_FLOATS = 1 << 20;

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

// Packs lanes [0, lanes) × depth [0, depth) of an operand (lane l, step p at src[l·lane + p·step]) into
// W-lane panels, zero-padded: panel q holds dst[q·W·depth + p·W + l]. For A, lanes are op(A)'s rows (W = MR);
// for B, op(B)'s columns (W = NR). With lanes contiguous (lane = 1: a transposed A, a plain B) it walks memory
// in order, step by step, rather than panel by panel (which strides across every row once per panel).
template <int64_t W>
void pack(const float* src, int64_t lane, int64_t step, int64_t lanes, int64_t depth, float* dst) {
  const int64_t full = lanes / W * W;
  if (lane == 1) {
    for (int64_t p = 0; p < depth; p++) {
      const float* in = src + p * step;
      float* out = dst + p * W;
      for (int64_t q = 0; q < full; q += W, out += W * depth)
        for (int64_t l = 0; l < W; l++) out[l] = in[q + l];
      for (int64_t l = 0; l < W && full < lanes; l++) out[l] = full + l < lanes ? in[full + l] : 0.0f;
    }
    return;
  }
  for (int64_t q = 0; q < lanes; q += W, dst += W * depth)
    for (int64_t l = 0; l < W; l++)
      for (int64_t p = 0; p < depth; p++) dst[p * W + l] = q + l < lanes ? src[(q + l) * lane + p * step] : 0.0f;
}

float* aligned_floats(size_t n) { return static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64)); }

// The epilogue of a product on rows [i0, i1) and columns [j0, j0 + cols) of C (row stride ldc, shared by the
// epilogue's operands, which are offset like C).
struct Finish {
  Epilogue op;
  const float* in;
  float* out;
};

void finish(const Finish& f, float* c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t cols) {
  const int64_t o = i0 * ldc + j0;
  epilogue(f.op, c + o, f.in ? f.in + o : nullptr, f.out ? f.out + o : c + o, ldc, i1 - i0, cols);
}

// The depth of each slice of a reduction of depth k: equal slices, at most KC_ROWS deep when op(A)'s rows are
// contiguous (a_cs = 1), else KC_TRANSPOSED.
int64_t slice_step(int64_t k, int64_t a_cs) {
  const int64_t kc_max = a_cs == 1 ? KC_ROWS : KC_TRANSPOSED, slices = (k + kc_max - 1) / kc_max;
  return (k + slices - 1) / slices;
}

// Where gemm_one() finds B's panels when B was packed beforehand (Gemm::b_packed): pack_b()'s layout, the slice
// at depth p stored from p·ld (ld: the columns rounded up to NR), panel by panel; depth0 and col0 place this
// call's op(B) in the packed matrix. `data` nullptr: gemm_one() packs B itself.
struct Packed {
  const float* data;
  int64_t ld, depth0, col0;
};

// One matrix: C (m × n) = op(A) op(B) [+ bias], then the epilogue `f` on each block of C once its last depth
// slice is stored. Packing buffers are per thread and kept for the thread's life.
void gemm_one(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs,
              int64_t b_cs, float* c, int64_t ldc, const float* bias, const Finish& f, const Packed& packed) {
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c[i * ldc + j] = bias ? bias[j] : 0.0f;
    if (f.op != Epilogue::None) finish(f, c, ldc, 0, m, 0, n);
    return;
  }
  thread_local float* pa = aligned_floats(A_FLOATS + MR * std::max(KC_ROWS, KC_TRANSPOSED));
  thread_local float* pb = aligned_floats(B_FLOATS + NR * std::max(KC_ROWS, KC_TRANSPOSED));
  // A transposed op(A) is packed whole when its k-steps are ≥ 4 KB apart (each lands on a new page, where the
  // hardware prefetcher stops, and on the same L1 set) or when ≥ 32 B panels reuse each packed A panel;
  // otherwise its 6 adjacent values per k-step are read in place, the packing costing more than it saves.
  const bool pack_all = a_cs != 1 && (a_cs >= 1024 || n >= 32 * NR);
  alignas(64) float tile[MR * NR];
  alignas(64) float edge_bias[NR];
  // Slices of equal depth, blocks of A of equal height (a multiple of MR): 512 rows are 4 × 128, not 3 × 168 + 8.
  const int64_t kc_step = slice_step(k, a_cs);
  const int64_t mc_max = std::max(MR, std::min(MC, A_FLOATS / kc_step) / MR * MR), blocks = (m + mc_max - 1) / mc_max;
  const int64_t mc_step = (m + blocks * MR - 1) / (blocks * MR) * MR;
  const int64_t nc_step = std::max(NR, B_FLOATS / kc_step / NR * NR);
  for (int64_t jc = 0; jc < n; jc += nc_step) {
    const int64_t nc = std::min(nc_step, n - jc);
    for (int64_t pc = 0; pc < k; pc += kc_step) {
      const int64_t kc = std::min(kc_step, k - pc);
      const bool first = pc == 0;
      const float* panels = pb;
      if (packed.data) panels = packed.data + (packed.depth0 + pc) * packed.ld + (packed.col0 + jc) * kc;
      else pack<NR>(b + pc * b_rs + jc * b_cs, b_cs, b_rs, nc, kc, pb);
      for (int64_t ic = 0; ic < m; ic += mc_step) {
        const int64_t mc = std::min(mc_step, m - ic);
        const float* a_block = a + ic * a_rs + pc * a_cs;
        const int64_t full = pack_all ? 0 : mc / MR * MR;
        if (full < mc) pack<MR>(a_block + full * a_rs, a_rs, a_cs, mc - full, kc, pa);
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
            const bool packed = ir >= full;
            const float* a_panel = packed ? pa + (ir - full) * kc : a_block + ir * a_rs;
            const int64_t rs = packed ? 1 : a_rs, cs = packed ? MR : a_cs;
            const float* b_panel = panels + jr * kc;
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
        if (f.op != Epilogue::None && pc + kc >= k) finish(f, c, ldc, ic, ic + mc, jc, nc);  // the block is in L2
      }
    }
  }
}

// Below this many flops a second thread costs more than it saves.
constexpr double kParallelFlops = 4e5;

// A reduction at least this deep, and 4× deeper than C is tall or wide (the weight gradients xᵀ·dy: k = 4480,
// m, n ≤ 1024), is cut into depth chunks whatever the thread count (see gemm()).
constexpr int64_t kChunkDepth = 2048;

// A job cut into tasks: task t covers batches [b0, b1), rows [i0, i1), columns [j0, j1) and depth [p0, p1) of
// the product; a depth chunk other than the first writes its partial product to `partial` + (t − 1)·m·n.
struct Task {
  int64_t b0, b1, i0, i1, j0, j1, p0, p1;
};
struct Split {
  const Gemm* g;
  float* partial;
  int count;
  Task task[8];
};

void run_task(void* arg, int t) {
  const Split& s = *static_cast<const Split*>(arg);
  const Gemm& g = *s.g;
  const Task& w = s.task[t];
  const bool own = w.p0 == 0;  // the first depth chunk (or the whole depth) writes C and adds the bias
  // The epilogue runs here on whole-depth tasks (batch 1), after the sum of the depth chunks otherwise.
  const int64_t e0 = w.i0 * g.ldc + w.j0;
  const Finish f = s.partial || g.epilogue == Epilogue::None
                       ? Finish{Epilogue::None, nullptr, nullptr}
                       : Finish{g.epilogue, g.e_in ? g.e_in + e0 : nullptr, g.e_out ? g.e_out + e0 : nullptr};
  for (int64_t bi = w.b0; bi < w.b1; bi++) {
    float* out = own ? g.c + bi * g.c_batch + w.i0 * g.ldc + w.j0 : s.partial + (t - 1) * g.m * g.n;
    gemm_one(w.i1 - w.i0, w.j1 - w.j0, w.p1 - w.p0, g.a + bi * g.a_batch + w.i0 * g.a_rs + w.p0 * g.a_cs, g.a_rs, g.a_cs,
             g.b + bi * g.b_batch + w.j0 * g.b_cs + w.p0 * g.b_rs, g.b_rs, g.b_cs, out, own ? g.ldc : g.n,
             g.bias && own ? g.bias + w.j0 : nullptr, f, {g.b_packed, (g.n + NR - 1) / NR * NR, w.p0, w.j0});
  }
}

}  // namespace

const char* isa_name() { return kernel == kernel_generic ? "generic" : "avx2-fma"; }

const char* force_generic() {
  kernel = kernel_generic;
  return isa_name();
}

bool depth_chunked(const Gemm& g) { return g.batch == 1 && g.k >= kChunkDepth && g.k >= 4 * std::max(g.m, g.n); }

void gemm(const Gemm& g, int threads) {
  Split s{&g, nullptr, 1, {{0, g.batch, 0, g.m, 0, g.n, 0, g.k}}};
  int64_t bounds[9];
  if (depth_chunked(g)) {
    // Depth chunks at multiples of 256, fixed by the shape alone: C = ((P₀ + P₁) + P₂) + P₃ in this order on
    // any thread count, so the threads share the work without packing either operand twice.
    thread_local std::vector<float> partial;
    s.count = cut(g.k, KC_TRANSPOSED, 4, bounds);
    partial.resize((s.count - 1) * g.m * g.n);
    s.partial = partial.data();
    for (int t = 0; t < s.count; t++) s.task[t] = {0, 1, 0, g.m, 0, g.n, bounds[t], bounds[t + 1]};
  } else if (threads >= 2 && 2.0 * g.batch * g.m * g.n * g.k >= kParallelFlops) {
    if (g.batch >= 2) {  // whole matrices per task
      s.count = cut(g.batch, 1, 8, bounds);
      for (int t = 0; t < s.count; t++) s.task[t] = {bounds[t], bounds[t + 1], 0, g.m, 0, g.n, 0, g.k};
    } else if (g.m >= g.n) {  // rows, at micro-tile boundaries (each task packs B: the smaller operand)
      s.count = cut(g.m, MR, 4, bounds);
      for (int t = 0; t < s.count; t++) s.task[t] = {0, 1, bounds[t], bounds[t + 1], 0, g.n, 0, g.k};
    } else {  // columns (each task packs only its own columns of B)
      s.count = cut(g.n, NR, 4, bounds);
      for (int t = 0; t < s.count; t++) s.task[t] = {0, 1, 0, g.m, bounds[t], bounds[t + 1], 0, g.k};
    }
  }
  if (s.count < 2 || threads < 2 || !pool_run(run_task, &s, s.count))
    for (int t = 0; t < s.count; t++) run_task(&s, t);
  for (int t = 1; t < s.count && s.partial; t++) {
    const float* part = s.partial + (t - 1) * g.m * g.n;
    for (int64_t i = 0; i < g.m; i++)
      for (int64_t j = 0; j < g.n; j++) g.c[i * g.ldc + j] += part[i * g.n + j];
  }
  if (s.partial && g.epilogue != Epilogue::None) finish({g.epilogue, g.e_in, g.e_out}, g.c, g.ldc, 0, g.m, 0, g.n);
}

void gemm_part(const Gemm& g, int64_t j0, int64_t j1) {
  Split s{&g, nullptr, 1, {{0, 1, 0, g.m, j0, j1, 0, g.k}}};
  run_task(&s, 0);
}

int64_t packed_floats(int64_t n, int64_t k) { return k * ((n + NR - 1) / NR * NR); }

// The slices gemm() cuts a product of m rows into (its depth chunks, each cut by gemm_one()), each packed as
// gemm_one() packs it, at its depth·ld.
void pack_b(int64_t m, int64_t n, int64_t k, const float* b, int64_t b_rs, int64_t b_cs, float* out) {
  const Gemm g{1, m, n, k, nullptr, 0, k, 1, b, 0, b_rs, b_cs, nullptr, 0, n, nullptr};
  int64_t bounds[5] = {0, k};
  const int chunks = depth_chunked(g) ? cut(k, KC_TRANSPOSED, 4, bounds) : 1;
  const int64_t ld = (n + NR - 1) / NR * NR;
  for (int ch = 0; ch < chunks; ch++) {
    const int64_t c0 = bounds[ch], depth = bounds[ch + 1] - c0, kc_step = slice_step(depth, 1);
    for (int64_t pc = 0; pc < depth; pc += kc_step)
      pack<NR>(b + (c0 + pc) * b_rs, b_cs, b_rs, n, std::min(kc_step, depth - pc), out + (c0 + pc) * ld);
  }
}

}  // namespace papo
