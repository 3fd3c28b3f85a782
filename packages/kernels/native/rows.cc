// The row kernels of rows.h. Everything is plain scalar C++ (the compiler vectorizes the simple loops; with
// -ffp-contract=off every operation rounds as written) except exp and the epilogues built on it (the GELU and
// its gradient), which have AVX2 versions of the same operation sequence: the Cephes single-precision exp
// (range reduction by ln 2 split in two constants, a degree-5 polynomial, scaling by 2ⁿ built in the exponent
// bits), evaluated without FMA so that the scalar twin gives the same bits.
#include "rows.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAPO_X86 1
#endif

#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"
#include "sgemm.h"

namespace papo {
namespace {

constexpr float kLo = -87.3f, kHi = 88.3f;  // 2ⁿ stays a normal float for n = floor(x·log₂e + ½)
constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

float exp_scalar(float x) {
  x = kLo > x ? kLo : x;  // NaN passes through both clamps (comparisons with NaN are false)
  x = kHi < x ? kHi : x;
  const float fx = std::floor(x * kLog2e + 0.5f);
  x = x - fx * kC1;
  x = x - fx * kC2;
  const float z = x * x;
  float y = kP0;
  y = y * x + kP1;
  y = y * x + kP2;
  y = y * x + kP3;
  y = y * x + kP4;
  y = y * x + kP5;
  y = y * z + x;
  y = y + 1.0f;
  const int32_t bits = ((std::isnan(fx) ? 0 : static_cast<int32_t>(fx)) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

void exp_generic(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = exp_scalar(x[i]);
}

#ifdef PAPO_X86
// exp of G vectors, each step taken on all G before the next: G independent dependency chains side by side
// (one vector's chain is ~25 dependent operations long).
template <int G>
__attribute__((target("avx2"))) inline void exp8(__m256 (&x)[G]) {
  __m256 y[G], scale[G];  // three live vectors a chain (x, y, 2ⁿ) through the polynomial: fewer spills
  for (int g = 0; g < G; g++) {
    x[g] = _mm256_max_ps(_mm256_set1_ps(kLo), x[g]);  // returns x when x is NaN, as the scalar clamps do
    x[g] = _mm256_min_ps(_mm256_set1_ps(kHi), x[g]);
  }
  for (int g = 0; g < G; g++) {
    const __m256 fx = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x[g], _mm256_set1_ps(kLog2e)), _mm256_set1_ps(0.5f)));
    x[g] = _mm256_sub_ps(x[g], _mm256_mul_ps(fx, _mm256_set1_ps(kC1)));
    x[g] = _mm256_sub_ps(x[g], _mm256_mul_ps(fx, _mm256_set1_ps(kC2)));
    // A NaN fx converts to 0x80000000, which the shift turns into the bits of 1.0 as the scalar twin's 0 does.
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    scale[g] = _mm256_castsi256_ps(bits);
    y[g] = _mm256_set1_ps(kP0);
  }
  for (const float p : {kP1, kP2, kP3, kP4, kP5})
    for (int g = 0; g < G; g++) y[g] = _mm256_add_ps(_mm256_mul_ps(y[g], x[g]), _mm256_set1_ps(p));
  for (int g = 0; g < G; g++) y[g] = _mm256_add_ps(_mm256_mul_ps(y[g], _mm256_mul_ps(x[g], x[g])), x[g]);  // y·z + x, z = x²
  for (int g = 0; g < G; g++) x[g] = _mm256_mul_ps(_mm256_add_ps(y[g], _mm256_set1_ps(1.0f)), scale[g]);
}

__attribute__((target("avx2"))) void exp_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v[1] = {_mm256_loadu_ps(x + i)};
    exp8(v);
    _mm256_storeu_ps(x + i, v[0]);
  }
  if (i < n) {
    alignas(32) float tail[8] = {};
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    __m256 v[1] = {_mm256_load_ps(tail)};
    exp8(v);
    _mm256_store_ps(tail, v[0]);
    std::memcpy(x + i, tail, (n - i) * sizeof(float));
  }
}
#endif

// Whether the AVX2 exp and epilogues run: the CPU has AVX2 and the portable kernels are not forced.
bool simd() {
#ifdef PAPO_X86
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 && std::strcmp(isa_name(), "generic") != 0;
#else
  return false;
#endif
}

// x[i] = exp(x[i]) in place, same bits on both paths.
void exp_inplace(float* x, int64_t n) {
#ifdef PAPO_X86
  if (simd()) return exp_avx2(x, n);
#endif
  exp_generic(x, n);
}

// The loops below are also compiled for AVX2 (8 lanes instead of SSE's 4) and picked at load time; neither
// clone contracts multiply-adds, so both give the same bits.
#ifdef PAPO_X86
#define PAPO_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PAPO_CLONES
#endif

// tanh-GELU through σ: z = x·(a·x² + b), a = 2√(2/π)·0.044715, b = 2√(2/π).
const float kGeluA = static_cast<float>(2 * std::sqrt(2 / M_PI) * 0.044715), kGeluB = static_cast<float>(2 * std::sqrt(2 / M_PI));

// The epilogues' element formulas, on one float (the portable path) and on 8 lanes (AVX2) with the same
// operations in the same order: σ(x·(a·x² + b)) = 1 / (1 + exp(−x·(x·x·a + b))) with a true division; the
// GELU x·σ; its gradient dy·(σ + x·σ(1 − σ)·(3a·x² + b)); the residual add c + in.
inline float gelu_sigma(float x) { return 1.0f / (1.0f + exp_scalar(-(x * (x * x * kGeluA + kGeluB)))); }
inline float gelu_grad(float x, float dy) {
  const float s = gelu_sigma(x), dz = x * x * (3 * kGeluA) + kGeluB, ds = s * (1.0f - s);
  return dy * (s + x * ds * dz);
}

// out = f(c, in) over rows × cols elements at row stride ld (in ignored by Gelu), element by element.
void epilogue_generic(Epilogue op, const float* c, const float* in, float* out, int64_t ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++, c += ld, in += in ? ld : 0, out += ld)
    for (int64_t j = 0; j < cols; j++) switch (op) {
        case Epilogue::None:
          return;
        case Epilogue::Add:
          out[j] = c[j] + in[j];
          break;
        case Epilogue::Gelu:
          out[j] = c[j] * gelu_sigma(c[j]);
          break;
        case Epilogue::GeluGrad:
          out[j] = gelu_grad(in[j], c[j]);
          break;
      }
}

#ifdef PAPO_X86
// s = σ(x·(a·x² + b)) on G vectors.
template <int G>
__attribute__((target("avx2"))) inline void gelu_sigma8(const __m256 (&x)[G], __m256 (&s)[G]) {
  for (int g = 0; g < G; g++) {
    const __m256 poly = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(x[g], x[g]), _mm256_set1_ps(kGeluA)), _mm256_set1_ps(kGeluB));
    s[g] = _mm256_xor_ps(_mm256_set1_ps(-0.0f), _mm256_mul_ps(x[g], poly));  // −(…): the scalar negation's sign flip
  }
  exp8(s);
  for (int g = 0; g < G; g++) s[g] = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), s[g]));
}

// The element formulas as functors out = f(c, in) on G vectors for epilogue_avx2 (kIn: whether `in` is read).
struct Add8 {
  static constexpr bool kIn = true;
  template <int G>
  __attribute__((target("avx2"))) void operator()(const __m256 (&c)[G], const __m256 (&in)[G], __m256 (&out)[G]) const {
    for (int g = 0; g < G; g++) out[g] = _mm256_add_ps(c[g], in[g]);
  }
};
struct Gelu8 {
  static constexpr bool kIn = false;
  template <int G>
  __attribute__((target("avx2"))) void operator()(const __m256 (&x)[G], const __m256 (&)[G], __m256 (&out)[G]) const {
    gelu_sigma8(x, out);
    for (int g = 0; g < G; g++) out[g] = _mm256_mul_ps(x[g], out[g]);
  }
};
struct GeluGrad8 {
  static constexpr bool kIn = true;
  template <int G>
  __attribute__((target("avx2"))) void operator()(const __m256 (&dy)[G], const __m256 (&x)[G], __m256 (&out)[G]) const {
    __m256 s[G];
    gelu_sigma8(x, s);
    for (int g = 0; g < G; g++) {
      const __m256 dz = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(x[g], x[g]), _mm256_set1_ps(3 * kGeluA)), _mm256_set1_ps(kGeluB));
      const __m256 ds = _mm256_mul_ps(s[g], _mm256_sub_ps(_mm256_set1_ps(1.0f), s[g]));
      out[g] = _mm256_mul_ps(dy[g], _mm256_add_ps(s[g], _mm256_mul_ps(_mm256_mul_ps(x[g], ds), dz)));
    }
  }
};

// One pass over the full vectors of the rows, taken G = 6 at a time in row order (six chains side by side: 0.69
// ns a float against 0.94 one at a time, README.md), a group free to span rows; the last group repeats its last
// vector (the same value stored twice; every load of a group comes before its stores, so out may be c). The
// rows' last cols mod 8 elements go G rows at a time through a copy (lanes past the row's end are computed and
// dropped; AMD's masked stores are microcoded).
template <class F>
__attribute__((target("avx2"))) void epilogue_avx2(F f, const float* c, const float* in, float* out, int64_t ld, int64_t rows,
                                                   int64_t cols) {
  constexpr int G = 6;
  const int64_t vecs = cols / 8, total = rows * vecs;
  for (int64_t i = 0, r = 0, v = 0; i < total; i += G) {
    int64_t at[G];
    for (int g = 0; g < G; g++) {
      at[g] = r * ld + 8 * v;
      if (i + g + 1 < total && ++v == vecs) v = 0, r++;
    }
    __m256 x[G], y[G] = {}, z[G];
    for (int g = 0; g < G; g++) x[g] = _mm256_loadu_ps(c + at[g]);
    if (F::kIn)
      for (int g = 0; g < G; g++) y[g] = _mm256_loadu_ps(in + at[g]);
    f(x, y, z);
    for (int g = 0; g < G; g++) _mm256_storeu_ps(out + at[g], z[g]);
  }
  const int64_t j = vecs * 8, tail = cols - j;
  if (tail == 0) return;
  alignas(32) float buf[2][G][8] = {};  // up to G rows' last elements
  for (int64_t r0 = 0; r0 < rows; r0 += G) {
    const int n = static_cast<int>(rows - r0 < G ? rows - r0 : G);
    __m256 x[G], y[G] = {}, z[G];
    for (int g = 0; g < n; g++) {
      std::memcpy(buf[0][g], c + (r0 + g) * ld + j, tail * sizeof(float));
      if (F::kIn) std::memcpy(buf[1][g], in + (r0 + g) * ld + j, tail * sizeof(float));
    }
    for (int g = 0; g < G; g++) x[g] = _mm256_load_ps(buf[0][g]);
    if (F::kIn)
      for (int g = 0; g < G; g++) y[g] = _mm256_load_ps(buf[1][g]);
    f(x, y, z);
    for (int g = 0; g < n; g++) {
      _mm256_store_ps(buf[0][g], z[g]);
      std::memcpy(out + (r0 + g) * ld + j, buf[0][g], tail * sizeof(float));
    }
  }
}
#endif

// Σ f(i) over i < n in double, in 8 interleaved partial sums added in a fixed order at the end (one serial
// chain of n adds would take 4 cycles each).
template <class F>
inline double sum8(int64_t n, F f) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += f(i + l);
  for (int l = 0; i < n; i++, l++) acc[l] += f(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Mean and 1/√(var + 1e-5) of one row, accumulated in double.
PAPO_CLONES void moments(const float* x, int64_t d, float* mean, float* rstd) {
  const float m = static_cast<float>(sum8(d, [&](int64_t i) { return static_cast<double>(x[i]); }) / d);
  const double sq = sum8(d, [&](int64_t i) {
    const double c = x[i] - m;
    return c * c;
  });
  *mean = m;
  *rstd = static_cast<float>(1.0 / std::sqrt(sq / d + 1e-5));
}

PAPO_CLONES void layer_norm(const float* x, const float* gamma, const float* beta, float* y, int64_t d) {
  float m, r;
  moments(x, d, &m, &r);
  for (int64_t i = 0; i < d; i++) y[i] = (x[i] - m) * r * gamma[i] + beta[i];
}

PAPO_CLONES void layer_norm_grad(const float* x, const float* gamma, const float* dy, float* dx, float* dy_xhat, int64_t d) {
  float m, r;
  moments(x, d, &m, &r);
  for (int64_t i = 0; i < d; i++) dy_xhat[i] = dy[i] * ((x[i] - m) * r);
  const double sg = sum8(d, [&](int64_t i) { return static_cast<double>(dy[i] * gamma[i]); });
  const double sgx = sum8(d, [&](int64_t i) { return static_cast<double>(dy[i] * gamma[i]) * ((x[i] - m) * r); });
  const float mg = static_cast<float>(sg / d), mgx = static_cast<float>(sgx / d);
  for (int64_t i = 0; i < d; i++) {
    const float xhat = (x[i] - m) * r, g = dy[i] * gamma[i];
    dx[i] = (g - mg - xhat * mgx) * r;
  }
}

struct Split {
  const RowJob* job;
  int64_t bounds[9];
};

void run_range(const RowJob& j, int64_t r0, int64_t r1) {
  const int64_t d = j.cols;
  const float *a = j.in[0] + r0 * d, *b = j.in[1], *c = j.in[2];
  float* o = j.out[0] + r0 * d;
  switch (j.op) {
    case RowOp::Gelu:
      return epilogue(Epilogue::Gelu, a, nullptr, o, 0, 1, (r1 - r0) * d);
    case RowOp::GeluGrad:
      return epilogue(Epilogue::GeluGrad, b + r0 * d, a, o, 0, 1, (r1 - r0) * d);
    case RowOp::LayerNorm:
      for (int64_t r = r0; r < r1; r++, a += d, o += d) layer_norm(a, b, c, o, d);
      return;
    case RowOp::LayerNormGrad: {
      const float* dy = c + r0 * d;
      float* o1 = j.out[1] + r0 * d;
      for (int64_t r = r0; r < r1; r++, a += d, dy += d, o += d, o1 += d) layer_norm_grad(a, b, dy, o, o1, d);
      return;
    }
  }
}

void run_task(void* arg, int t) {
  const Split& s = *static_cast<const Split*>(arg);
  run_range(*s.job, s.bounds[t], s.bounds[t + 1]);
}

// Below this many elements a job runs on the calling thread (waking the helper costs more).
constexpr int64_t kParallelElements = 1 << 15;

// The largest of x[0, n), n ≥ 1, as 8 interleaved running maxima (one serial chain of compares is
// latency-bound). Which element wins a tie or meets a NaN can differ from a serial scan, but not the
// softmax: ±0 give the same x − m, and a NaN or +∞ anywhere makes the whole row NaN either way.
PAPO_CLONES float max8(const float* x, int64_t n) {
  float m[8];
  for (int l = 0; l < 8; l++) m[l] = x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  for (int l = 0; j < n; j++, l++) m[l] = x[j] > m[l] ? x[j] : m[l];
  for (int l = 1; l < 8; l++) m[0] = m[l] > m[0] ? m[l] : m[0];
  return m[0];
}

}  // namespace

PAPO_CLONES void softmax_row(const float* x, float* y, int64_t n, int64_t valid) {
  const float m = max8(x, valid);
  for (int64_t j = 0; j < valid; j++) y[j] = x[j] - m;
  exp_inplace(y, valid);
  const float sum = static_cast<float>(sum8(valid, [&](int64_t j) { return static_cast<double>(y[j]); }));
  for (int64_t j = 0; j < valid; j++) y[j] = y[j] / sum;
  for (int64_t j = valid; j < n; j++) y[j] = 0;
}

PAPO_CLONES void softmax_grad_row(const float* y, const float* dy, float* dx, int64_t n) {
  const float dot = static_cast<float>(sum8(n, [&](int64_t j) { return static_cast<double>(y[j]) * dy[j]; }));
  for (int64_t j = 0; j < n; j++) dx[j] = y[j] * dy[j] - y[j] * dot;
}

void epilogue(Epilogue op, const float* c, const float* in, float* out, int64_t ld, int64_t rows, int64_t cols) {
#ifdef PAPO_X86
  if (simd()) switch (op) {
      case Epilogue::None:
        return;
      case Epilogue::Add:
        return epilogue_avx2(Add8{}, c, in, out, ld, rows, cols);
      case Epilogue::Gelu:
        return epilogue_avx2(Gelu8{}, c, in, out, ld, rows, cols);
      case Epilogue::GeluGrad:
        return epilogue_avx2(GeluGrad8{}, c, in, out, ld, rows, cols);
    }
#endif
  epilogue_generic(op, c, in, out, ld, rows, cols);
}

namespace {

// Column sums are taken over fixed blocks of rows, streamed in order, each into its own double partial; the
// partials are added in block order. The blocks depend on the shape only, never on the thread count.
constexpr int64_t kSumRows = 256;

// partial[j] = Σ_{i in block} x[i, j] (double, row order) for the block of rows starting at r0.
PAPO_CLONES void column_sums_block(const float* x, int64_t rows, int64_t cols, int64_t r0, double* partial) {
  for (int64_t j = 0; j < cols; j++) partial[j] = 0.0;
  const int64_t r1 = r0 + kSumRows < rows ? r0 + kSumRows : rows;
  for (int64_t i = r0; i < r1; i++) {
    const float* r = x + i * cols;
    for (int64_t j = 0; j < cols; j++) partial[j] += r[j];
  }
}

struct ColumnSplit {
  const float* x;
  int64_t rows, cols;
  double* partials;  // one row of cols per block
  int64_t bounds[5];  // tasks' block ranges
};

void run_column_blocks(void* arg, int t) {
  const ColumnSplit& s = *static_cast<const ColumnSplit*>(arg);
  for (int64_t b = s.bounds[t]; b < s.bounds[t + 1]; b++) column_sums_block(s.x, s.rows, s.cols, b * kSumRows, s.partials + b * s.cols);
}

}  // namespace

void column_sums(const float* x, int64_t rows, int64_t cols, float* out, int threads) {
  if (cols == 0) return;
  const int64_t blocks = rows == 0 ? 0 : (rows + kSumRows - 1) / kSumRows;
  thread_local std::vector<double> partials;
  partials.resize(blocks * cols);
  ColumnSplit s{x, rows, cols, partials.data(), {0, blocks}};
  // Below ~1M elements (4 MB) one thread streams the rows faster than two share them.
  const int count = threads < 2 || rows * cols < (1 << 20) ? 1 : cut(blocks, 1, 4, s.bounds);
  if (count < 2 || !pool_run(run_column_blocks, &s, count))
    for (int t = 0; t < count; t++) run_column_blocks(&s, t);
  for (int64_t j = 0; j < cols; j++) {
    double sum = 0.0;
    for (int64_t b = 0; b < blocks; b++) sum += partials[b * cols + j];
    out[j] = static_cast<float>(sum);
  }
}

void rows(const RowJob& j, int threads) {
  if (j.rows == 0 || j.cols == 0) return;
  if (threads < 2 || j.rows * j.cols < kParallelElements) return run_range(j, 0, j.rows);
  Split s{&j, {}};
  const int count = cut(j.rows, 1, 4, s.bounds);
  if (count < 2 || !pool_run(run_task, &s, count))
    for (int t = 0; t < count; t++) run_task(&s, t);
}

// --- the LayerNorm backward of a residual sublayer with its column sums (rows.h's LayerNormResidualGrad) ---

namespace {

// One block of kSumRows rows from r0: dx = LN'(da) + dy per row, and the block's double partials of da·x̂, da
// and dy (3 × cols, each summed in row order as column_sums_block does); `dy_xhat` is one row of scratch.
PAPO_CLONES void layer_norm_residual_block(const LayerNormResidualGrad& j, int64_t r0, double* partial, float* dy_xhat) {
  const int64_t d = j.cols, r1 = r0 + kSumRows < j.rows ? r0 + kSumRows : j.rows;
  double *pg = partial, *pb = partial + d, *pr = partial + 2 * d;
  for (int64_t i = 0; i < 3 * d; i++) partial[i] = 0.0;
  for (int64_t r = r0; r < r1; r++) {
    const float *da = j.da + r * d, *dy = j.dy + r * d;
    float* dx = j.dx + r * d;
    layer_norm_grad(j.x + r * d, j.gamma, da, dx, dy_xhat, d);
    for (int64_t i = 0; i < d; i++) dx[i] = dx[i] + dy[i];
    for (int64_t i = 0; i < d; i++) pg[i] += dy_xhat[i];
    for (int64_t i = 0; i < d; i++) pb[i] += da[i];
    for (int64_t i = 0; i < d; i++) pr[i] += dy[i];
  }
}

struct LayerNormResidualSplit {
  const LayerNormResidualGrad* job;
  double* partials;  // 3 × cols per block
  int64_t bounds[5];  // tasks' block ranges
};

void run_layer_norm_residual(void* arg, int t) {
  const LayerNormResidualSplit& s = *static_cast<const LayerNormResidualSplit*>(arg);
  std::vector<float> scratch(s.job->cols);
  for (int64_t b = s.bounds[t]; b < s.bounds[t + 1]; b++)
    layer_norm_residual_block(*s.job, b * kSumRows, s.partials + b * 3 * s.job->cols, scratch.data());
}

}  // namespace

void layer_norm_residual_grad(const LayerNormResidualGrad& j, int threads) {
  const int64_t d = j.cols;
  if (d == 0) return;
  const int64_t blocks = (j.rows + kSumRows - 1) / kSumRows;
  thread_local std::vector<double> partials;
  partials.resize(blocks * 3 * d);
  LayerNormResidualSplit s{&j, partials.data(), {0, blocks}};
  const int count = threads < 2 || j.rows * d < kParallelElements ? 1 : cut(blocks, 1, 4, s.bounds);
  if (count < 2 || !pool_run(run_layer_norm_residual, &s, count))
    for (int t = 0; t < count; t++) run_layer_norm_residual(&s, t);
  float* outs[3] = {j.dgamma, j.dbeta, j.dy_sums};
  for (int k = 0; k < 3; k++)
    for (int64_t c = 0; c < d; c++) {
      double sum = 0.0;
      for (int64_t b = 0; b < blocks; b++) sum += partials[(b * 3 + k) * d + c];
      outs[k][c] = static_cast<float>(sum);
    }
}

}  // namespace papo
