// The row kernels of rows.h. Everything is plain scalar C++ (the compiler vectorizes the simple loops; with
// -ffp-contract=off every operation rounds as written) except exp, which has an AVX2 version of the same
// operation sequence: the Cephes single-precision exp (range reduction by ln 2 split in two constants, a
// degree-5 polynomial, scaling by 2ⁿ built in the exponent bits), evaluated without FMA so that the scalar
// twin gives the same bits.
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
__attribute__((target("avx2"))) __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(kLo), x);  // returns x when x is NaN, as the scalar clamps do
  x = _mm256_min_ps(_mm256_set1_ps(kHi), x);
  const __m256 fx = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _mm256_set1_ps(0.5f)));
  x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(kC1)));
  x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(kC2)));
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(kP0);
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(kP1));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(kP2));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(kP3));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(kP4));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(kP5));
  y = _mm256_add_ps(_mm256_mul_ps(y, z), x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i n = _mm256_cvttps_epi32(_mm256_blendv_ps(fx, _mm256_setzero_ps(), _mm256_cmp_ps(fx, fx, _CMP_UNORD_Q)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

__attribute__((target("avx2"))) void exp_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float tail[8] = {};
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    _mm256_store_ps(tail, exp8(_mm256_load_ps(tail)));
    std::memcpy(x + i, tail, (n - i) * sizeof(float));
  }
}
#endif

// x[i] = exp(x[i]) in place, same bits on both paths.
void exp_inplace(float* x, int64_t n) {
#ifdef PAPO_X86
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2 && std::strcmp(isa_name(), "generic") != 0) return exp_avx2(x, n);
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
constexpr int64_t kChunk = 512;

// s[i] = σ(x[i]·(a·x[i]² + b)) for a chunk of n ≤ kChunk elements.
PAPO_CLONES void gelu_sigmoid(const float* x, float* s, int64_t n) {
  for (int64_t i = 0; i < n; i++) s[i] = -(x[i] * (x[i] * x[i] * kGeluA + kGeluB));
  exp_inplace(s, n);
  for (int64_t i = 0; i < n; i++) s[i] = 1.0f / (1.0f + s[i]);
}

PAPO_CLONES void gelu(const float* x, float* y, int64_t n) {
  float s[kChunk];
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t len = n - c < kChunk ? n - c : kChunk;
    gelu_sigmoid(x + c, s, len);
    for (int64_t i = 0; i < len; i++) y[c + i] = x[c + i] * s[i];
  }
}

PAPO_CLONES void gelu_grad(const float* x, const float* dy, float* dx, int64_t n) {
  float s[kChunk];
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t len = n - c < kChunk ? n - c : kChunk;
    const float* xc = x + c;
    gelu_sigmoid(xc, s, len);
    for (int64_t i = 0; i < len; i++) {
      const float dz = xc[i] * xc[i] * (3 * kGeluA) + kGeluB;
      const float ds = s[i] * (1.0f - s[i]);
      dx[c + i] = dy[c + i] * (s[i] + xc[i] * ds * dz);
    }
  }
}

// c[i] = c[i] + in[i] (the same bits as wasm's Add of the two, either order).
PAPO_CLONES void add(float* c, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; i++) c[i] = c[i] + in[i];
}

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
      return gelu(a, o, (r1 - r0) * d);
    case RowOp::GeluGrad:
      return gelu_grad(a, b + r0 * d, o, (r1 - r0) * d);
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

void epilogue(Epilogue op, float* c, const float* in, float* out, int64_t n) {
  switch (op) {
    case Epilogue::None:
      return;
    case Epilogue::Add:
      return add(c, in, n);
    case Epilogue::Gelu:
      return gelu(c, out, n);
    case Epilogue::GeluGrad:
      return gelu_grad(in, c, c, n);
  }
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

}  // namespace papo

// --- the LayerNorm backward of a residual sublayer with its column sums (rows.h's LayerNormResidualGrad) ---

namespace papo {
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
