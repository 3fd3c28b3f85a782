// The fused causal attention of attention.h. Per (sequence, head) pair everything sits in L1: q (scaled), k, v
// and dO are copied from their strided rows into zero-padded tiles (widths rounded up to 8 floats), and every
// product is a "row combination" c[r][0, w) = Σ_s a(r, s)·B[s][0, w), three rows r at a time, over the s that
// the causal mask keeps: S = Q·Kᵀ (B = Kᵀ), O = P·V, dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q. The
// softmax rows are rows.cc's. The backward reads the forward's P (recomputing it, the loads, Q·Kᵀ and the
// softmax, took a third of the backward's time).
#include "attention.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAPO_X86 1
#endif

#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"
#include "rows.h"
#include "sgemm.h"

namespace papo {
namespace {

inline int64_t round8(int64_t x) { return (x + 7) / 8 * 8; }

// Rows are combined kRows at a time (each B row loaded once for all of them).
constexpr int64_t kRows = 3;

// For r < rows (≤ kRows): c[r·ldc + (0, w)] = Σ_{s0 ≤ s < s1} a[r·ars + s·acs] · b[s·ldb + (0, w)], w a multiple
// of 8. Callers widen [s0, s1) to the block's union where the other rows' a is zero (the causal mask).
using Combine = void (*)(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c,
                         int64_t ldc, int64_t rows, int64_t w);

void combine_generic(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c,
                     int64_t ldc, int64_t rows, int64_t w) {
  for (int64_t r = 0; r < rows; r++, a += ars, c += ldc) {
    for (int64_t j = 0; j < w; j++) c[j] = 0;
    for (int64_t s = s0; s < s1; s++) {
      const float as = a[s * acs];
      const float* bs = b + s * ldb;
      for (int64_t j = 0; j < w; j++) c[j] = c[j] + as * bs[j];
    }
  }
}

#ifdef PAPO_X86
// R ≤ 3 rows × NV ≤ 4 vectors of 8 columns in R·NV accumulators: per s, NV loads of B and R broadcasts of a
// feed R·NV FMAs. The accumulators are named variables: GCC spilled arrays of them to the stack on every step.
#define PAPO_ROW(r, ar)                                                 \
  c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                           \
  if constexpr (NV > 1) c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);     \
  if constexpr (NV > 2) c##r##2 = _mm256_fmadd_ps(ar, b2, c##r##2);     \
  if constexpr (NV > 3) c##r##3 = _mm256_fmadd_ps(ar, b3, c##r##3);
#define PAPO_STORE(r, dst)                                    \
  _mm256_storeu_ps(dst, c##r##0);                             \
  if constexpr (NV > 1) _mm256_storeu_ps(dst + 8, c##r##1);   \
  if constexpr (NV > 2) _mm256_storeu_ps(dst + 16, c##r##2);  \
  if constexpr (NV > 3) _mm256_storeu_ps(dst + 24, c##r##3);

template <int R, int NV>
__attribute__((target("avx2,fma"))) void combine_block(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t s0,
                                                       int64_t s1, float* c, int64_t ldc) {
  static_assert(R >= 1 && R <= 3 && NV >= 1 && NV <= 4, "3 × 4 accumulators at most");
  const __m256 z = _mm256_setzero_ps();
  __m256 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z, c23 = z;
  for (int64_t s = s0; s < s1; s++) {
    const float* bs = b + s * ldb;
    const float* as = a + s * acs;
    const __m256 b0 = _mm256_loadu_ps(bs);
    const __m256 b1 = NV > 1 ? _mm256_loadu_ps(bs + 8) : z, b2 = NV > 2 ? _mm256_loadu_ps(bs + 16) : z, b3 = NV > 3 ? _mm256_loadu_ps(bs + 24) : z;
    const __m256 a0 = _mm256_broadcast_ss(as);
    PAPO_ROW(0, a0)
    if constexpr (R > 1) {
      const __m256 a1 = _mm256_broadcast_ss(as + ars);
      PAPO_ROW(1, a1)
    }
    if constexpr (R > 2) {
      const __m256 a2 = _mm256_broadcast_ss(as + 2 * ars);
      PAPO_ROW(2, a2)
    }
  }
  PAPO_STORE(0, c)
  if constexpr (R > 1) { PAPO_STORE(1, (c + ldc)) }
  if constexpr (R > 2) { PAPO_STORE(2, (c + 2 * ldc)) }
}
#undef PAPO_ROW
#undef PAPO_STORE

template <int R>
void combine_rows(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c, int64_t ldc,
                  int64_t w) {
  for (int64_t j = 0; j < w; j += 32, b += 32, c += 32) {
    switch ((w - j) / 8 < 4 ? (w - j) / 8 : 4) {
      case 1: combine_block<R, 1>(a, ars, acs, b, ldb, s0, s1, c, ldc); break;
      case 2: combine_block<R, 2>(a, ars, acs, b, ldb, s0, s1, c, ldc); break;
      case 3: combine_block<R, 3>(a, ars, acs, b, ldb, s0, s1, c, ldc); break;
      default: combine_block<R, 4>(a, ars, acs, b, ldb, s0, s1, c, ldc); break;
    }
  }
}

void combine_avx2(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c, int64_t ldc,
                  int64_t rows, int64_t w) {
  if (rows == 3) return combine_rows<3>(a, ars, acs, b, ldb, s0, s1, c, ldc, w);
  if (rows == 2) return combine_rows<2>(a, ars, acs, b, ldb, s0, s1, c, ldc, w);
  combine_rows<1>(a, ars, acs, b, ldb, s0, s1, c, ldc, w);
}
// exp(x) of 8 lanes for x ≤ 0 (a score minus its row's maximum): the Cephes single-precision algorithm (range
// reduction by ln 2 in two parts, degree-5 polynomial, 2ⁿ built in the exponent bits) evaluated with fused
// multiply-adds; x below −87.3 (where 2ⁿ leaves the normal range) gives exp(−87.3), and NaN stays NaN.
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);  // returns x when x is NaN
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  for (const float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(c));
  y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(x, x), x), _mm256_set1_ps(1.0f));
  const __m256i n = _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127));
  return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
}

__attribute__((target("avx2,fma"))) inline float lanes_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

__attribute__((target("avx2,fma"))) inline float lanes_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// Lanes j with 8·v + j < valid (v the vector's index in the row) as an all-ones mask.
__attribute__((target("avx2,fma"))) inline __m256i lanes_below(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Rows [i0, i0 + rows) of P (tile of width tp) from their scores in place: row i is the softmax of its first
// i + 1 values (max, exp of the differences, float sum, times its reciprocal), 0 past the diagonal. In registers
// of 8 lanes, one pass per step over a row that sits in L1.
__attribute__((target("avx2,fma"))) void softmax_block_avx2(float* p, int64_t tp, int64_t i0, int64_t rows) {
  for (int64_t i = i0; i < i0 + rows; i++) {
    float* r = p + i * tp;
    const int64_t full = (i + 1) / 8 * 8, vend = (i + 8) / 8 * 8;  // whole vectors; end of the last, partial or not
    const __m256 keep = _mm256_castsi256_ps(lanes_below(i + 1 - full));
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 m = minus_inf;
    for (int64_t j = 0; j < full; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(r + j));
    if (full < vend) m = _mm256_max_ps(m, _mm256_blendv_ps(minus_inf, _mm256_loadu_ps(r + full), keep));
    const __m256 mx = _mm256_set1_ps(lanes_max(m));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) {
      __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(r + j), mx));
      if (j == full) e = _mm256_and_ps(e, keep);
      _mm256_storeu_ps(r + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / lanes_sum(sum));
    for (int64_t j = 0; j < vend; j += 8) _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), inv));
    for (int64_t j = vend; j < tp; j += 8) _mm256_storeu_ps(r + j, _mm256_setzero_ps());
  }
}

// The 8 values at y + j, or only the `keep` lanes of them (the rest 0, not read) from j = full on.
__attribute__((target("avx2,fma"))) inline __m256 load_upto(const float* y, int64_t j, int64_t full, __m256i keep) {
  return j < full ? _mm256_loadu_ps(y + j) : _mm256_maskload_ps(y + j, keep);
}

// Rows [i0, i0 + rows) of dS = P ⊙ (dP − Σ_j P·dP) in place of dP (tile of width tp), P's row i read from
// pr + i·ld (its first i + 1 values), 0 past the diagonal.
__attribute__((target("avx2,fma"))) void softmax_grad_block_avx2(const float* pr, int64_t ld, float* dp, int64_t tp, int64_t i0, int64_t rows) {
  for (int64_t i = i0; i < i0 + rows; i++) {
    const float* y = pr + i * ld;
    float* r = dp + i * tp;
    const int64_t full = (i + 1) / 8 * 8, vend = (i + 8) / 8 * 8;
    const __m256i keep = lanes_below(i + 1 - full);
    __m256 dot = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) dot = _mm256_fmadd_ps(load_upto(y, j, full, keep), _mm256_loadu_ps(r + j), dot);
    const __m256 s = _mm256_set1_ps(lanes_sum(dot));
    for (int64_t j = 0; j < vend; j += 8) {
      const __m256 yj = load_upto(y, j, full, keep);
      __m256 g = _mm256_mul_ps(yj, _mm256_sub_ps(_mm256_loadu_ps(r + j), s));
      if (j == full) g = _mm256_and_ps(g, _mm256_castsi256_ps(keep));
      _mm256_storeu_ps(r + j, g);
    }
    for (int64_t j = vend; j < tp; j += 8) _mm256_storeu_ps(r + j, _mm256_setzero_ps());
  }
}

// cols[j·tp + i] = src[i·ld + j] for i < t, j < hd: 8 × 8 blocks through registers, the edges one by one.
__attribute__((target("avx2,fma"))) void transpose_avx2(const float* src, int64_t ld, int64_t t, int64_t hd, float* cols, int64_t tp) {
  const int64_t t8 = t / 8 * 8, hd8 = hd / 8 * 8;
  for (int64_t i = 0; i < t8; i += 8) {
    for (int64_t j = 0; j < hd8; j += 8) {
      __m256 r[8], u[8];
      for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(src + (i + k) * ld + j);
      for (int k = 0; k < 8; k += 2) u[k] = _mm256_unpacklo_ps(r[k], r[k + 1]), u[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      for (int k = 0; k < 8; k += 4)
        for (int l = 0; l < 2; l++) {
          r[k + l] = _mm256_shuffle_ps(u[k + l], u[k + l + 2], _MM_SHUFFLE(1, 0, 1, 0));
          r[k + l + 2] = _mm256_shuffle_ps(u[k + l], u[k + l + 2], _MM_SHUFFLE(3, 2, 3, 2));
        }
      // r[0 … 3] hold columns j + (0, 2, 1, 3) of rows i … i + 3 in their low halves and of rows i + 4 … in their high ones, alike r[4 … 7]
      static constexpr int kOrder[4] = {0, 2, 1, 3};
      for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(cols + (j + c) * tp + i, _mm256_permute2f128_ps(r[kOrder[c]], r[kOrder[c] + 4], 0x20));
        _mm256_storeu_ps(cols + (j + c + 4) * tp + i, _mm256_permute2f128_ps(r[kOrder[c]], r[kOrder[c] + 4], 0x31));
      }
    }
    for (int64_t k = i; k < i + 8; k++)
      for (int64_t j = hd8; j < hd; j++) cols[j * tp + k] = src[k * ld + j];
  }
  for (int64_t k = t8; k < t; k++)
    for (int64_t j = 0; j < hd; j++) cols[j * tp + k] = src[k * ld + j];
}
#endif

void transpose_generic(const float* src, int64_t ld, int64_t t, int64_t hd, float* cols, int64_t tp) {
  for (int64_t i = 0; i < t; i++)
    for (int64_t j = 0; j < hd; j++) cols[j * tp + i] = src[i * ld + j];
}

// The portable softmax rows (rows.cc's), with the signatures of the AVX2 ones above.
void softmax_block_generic(float* p, int64_t tp, int64_t i0, int64_t rows) {
  for (int64_t i = i0; i < i0 + rows; i++) softmax_row(p + i * tp, p + i * tp, tp, i + 1);
}

void softmax_grad_block_generic(const float* pr, int64_t ld, float* dp, int64_t tp, int64_t i0, int64_t rows) {
  for (int64_t i = i0; i < i0 + rows; i++) {
    float* di = dp + i * tp;
    softmax_grad_row(pr + i * ld, di, di, i + 1);
    for (int64_t j = i + 1; j < tp; j++) di[j] = 0;
  }
}

// The row combination and softmax rows of one code path.
struct Kernels {
  Combine combine;
  void (*softmax)(float* p, int64_t tp, int64_t i0, int64_t rows);
  void (*softmax_grad)(const float* pr, int64_t ld, float* dp, int64_t tp, int64_t i0, int64_t rows);
  void (*transpose)(const float* src, int64_t ld, int64_t t, int64_t hd, float* cols, int64_t tp);
};

// The AVX2/FMA kernels where the SGEMM uses its AVX2/FMA micro-kernel, the portable ones otherwise.
Kernels pick_kernels() {
#ifdef PAPO_X86
  if (std::strcmp(isa_name(), "generic") != 0) return {combine_avx2, softmax_block_avx2, softmax_grad_block_avx2, transpose_avx2};
#endif
  return {combine_generic, softmax_block_generic, softmax_grad_block_generic, transpose_generic};
}

// The tiles of one (sequence, head) pair: T × hp row tiles, hp × tp transposed ones, T × tp probabilities.
struct Work {
  const Attention& a;
  const Kernels kernels;
  const Combine combine;
  const int64_t t, hd, tp, hp;
  const float scale;
  std::vector<float> buf;
  float *qs, *k, *kt, *v, *vt, *d_out, *p, *dp, *block;

  Work(const Attention& at, bool backward)
      : a(at), kernels(pick_kernels()), combine(kernels.combine), t(at.t), hd(at.hd), tp(round8(at.t)), hp(round8(at.hd)),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(at.hd)))),
        buf((backward ? 3 * t * hp + hp * tp + t * tp : 2 * t * hp + hp * tp + t * tp) + kRows * hp) {
    float* f = buf.data();
    const auto take = [&f](int64_t count) { float* x = f; f += count; return x; };
    qs = take(t * hp), block = take(kRows * hp);
    if (backward) k = take(t * hp), vt = take(hp * tp), d_out = take(t * hp), dp = take(t * tp), v = kt = p = nullptr;
    else v = take(t * hp), kt = take(hp * tp), p = take(t * tp), k = vt = d_out = dp = nullptr;
  }

  // Head h of sequence n from rows of stride ld, times `mul`, into a row tile (row stride hp).
  void load_rows(const float* src, int64_t ld, int64_t n, int64_t h, float mul, float* rows) const {
    for (int64_t i = 0; i < t; i++) {
      const float* r = src + (n * t + i) * ld + h * hd;
      float* d = rows + i * hp;
      if (mul == 1.0f) std::memcpy(d, r, hd * sizeof(float));
      else for (int64_t j = 0; j < hd; j++) d[j] = r[j] * mul;
    }
  }

  // The same head transposed into a column tile (row stride tp).
  void load_cols(const float* src, int64_t ld, int64_t n, int64_t h, float* cols) const {
    kernels.transpose(src + n * t * ld + h * hd, ld, t, hd, cols, tp);
  }

  // The first hd values of the block's `rows` rows, times `mul`, to rows (n, i0 …) of dst (stride ld) at head h.
  void store(float* dst, int64_t ld, int64_t n, int64_t i0, int64_t rows, int64_t h, float mul) const {
    for (int64_t r = 0; r < rows; r++) {
      float* d = dst + (n * t + i0 + r) * ld + h * hd;
      const float* b = block + r * hp;
      for (int64_t j = 0; j < hd; j++) d[j] = mul == 1.0f ? b[j] : b[j] * mul;
    }
  }

  // Row blocks [i0, i0 + rows) of kRows.
  template <class F>
  void blocks(F f) const {
    for (int64_t i0 = 0; i0 < t; i0 += kRows) f(i0, t - i0 < kRows ? t - i0 : kRows);
  }

  // P = causal softmax(Q·Kᵀ) from the loaded qs and kt; columns past the diagonal are 0.
  void probabilities() const {
    blocks([&](int64_t i0, int64_t rows) {
      combine(qs + i0 * hp, hp, 1, kt, tp, 0, hd, p + i0 * tp, tp, rows, round8(i0 + rows));
      kernels.softmax(p, tp, i0, rows);
    });
  }

  void forward(int64_t n, int64_t h) {
    load_rows(a.q, a.ld_in, n, h, scale, qs);
    load_cols(a.k, a.ld_in, n, h, kt);
    load_rows(a.v, a.ld_in, n, h, 1.0f, v);
    probabilities();
    if (a.probs != nullptr)
      for (int64_t i = 0; i < t; i++) std::memcpy(a.probs + ((n * a.heads + h) * t + i) * t, p + i * tp, t * sizeof(float));
    blocks([&](int64_t i0, int64_t rows) {  // O = P·V: P[i][s] = 0 for s > i
      combine(p + i0 * tp, tp, 1, v, hp, 0, i0 + rows, block, hp, rows, hp);
      store(a.out, a.ld_o, n, i0, rows, h, 1.0f);
    });
  }

  void backward(int64_t n, int64_t h) {
    const float* pr = a.probs + (n * a.heads + h) * t * t;  // P, row stride t
    load_rows(a.q, a.ld_in, n, h, scale, qs);
    load_rows(a.k, a.ld_in, n, h, 1.0f, k);
    load_cols(a.v, a.ld_in, n, h, vt);
    load_rows(a.d_out, a.ld_o, n, h, 1.0f, d_out);
    // dS = P ⊙ (dP − rowsum(dP ⊙ P)), dP = dO·Vᵀ, in place of dP; 0 past the diagonal.
    blocks([&](int64_t i0, int64_t rows) {
      combine(d_out + i0 * hp, hp, 1, vt, tp, 0, hd, dp + i0 * tp, tp, rows, round8(i0 + rows));
      kernels.softmax_grad(pr, t, dp, tp, i0, rows);
    });
    blocks([&](int64_t r0, int64_t rows) {
      combine(pr + r0, 1, t, d_out, hp, r0, t, block, hp, rows, hp);  // dV[r] = Σ_{s ≥ r} P[s][r]·dO[s]
      store(a.dv, a.ld_grad, n, r0, rows, h, 1.0f);
      combine(dp + r0 * tp, tp, 1, k, hp, 0, r0 + rows, block, hp, rows, hp);  // dQ[r] = Σ_{s ≤ r} dS[r][s]·K[s], then /√hd
      store(a.dq, a.ld_grad, n, r0, rows, h, scale);
      combine(dp + r0, 1, tp, qs, hp, r0, t, block, hp, rows, hp);  // dK[r] = Σ_{s ≥ r} dS[s][r]·Q[s]
      store(a.dk, a.ld_grad, n, r0, rows, h, 1.0f);
    });
  }
};

struct Split {
  const Attention* a;
  bool backward;
  int64_t bounds[17];
};

void run_pairs(const Attention& a, bool backward, int64_t p0, int64_t p1) {
  Work w(a, backward);
  for (int64_t pair = p0; pair < p1; pair++) {
    if (backward) w.backward(pair / a.heads, pair % a.heads);
    else w.forward(pair / a.heads, pair % a.heads);
  }
}

void run_task(void* arg, int task) {
  const Split& s = *static_cast<const Split*>(arg);
  run_pairs(*s.a, s.backward, s.bounds[task], s.bounds[task + 1]);
}

// Below this many multiply-adds (forward) a call runs on the calling thread (waking the helper costs more).
constexpr int64_t kParallelWork = 1 << 17;

void run(const Attention& a, bool backward, int threads) {
  const int64_t pairs = a.n * a.heads;
  if (pairs == 0 || a.t == 0 || a.hd == 0) return;
  if (threads < 2 || pairs < 2 || pairs * a.t * a.t * a.hd < kParallelWork) return run_pairs(a, backward, 0, pairs);
  // Up to 16 tasks of whole pairs: a helper that starts late (a busy machine) still takes its share.
  Split s{&a, backward, {}};
  const int count = cut(pairs, 1, 16, s.bounds);
  if (!pool_run(run_task, &s, count))
    for (int t = 0; t < count; t++) run_task(&s, t);
}

}  // namespace

void attention_forward(const Attention& a, int threads) { run(a, false, threads); }
void attention_backward(const Attention& a, int threads) { run(a, true, threads); }

}  // namespace papo
