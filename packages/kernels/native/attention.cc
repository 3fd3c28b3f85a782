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
#endif

// The AVX2/FMA combination where the SGEMM uses its AVX2/FMA micro-kernel, the portable one otherwise.
Combine pick_combine() {
#ifdef PAPO_X86
  if (std::strcmp(isa_name(), "generic") != 0) return combine_avx2;
#endif
  return combine_generic;
}

// The tiles of one (sequence, head) pair: T × hp row tiles, hp × tp transposed ones, T × tp probabilities.
struct Work {
  const Attention& a;
  const Combine combine;
  const int64_t t, hd, tp, hp;
  const float scale;
  std::vector<float> buf;
  float *qs, *k, *kt, *v, *vt, *d_out, *p, *dp, *block;

  Work(const Attention& at, bool backward)
      : a(at), combine(pick_combine()), t(at.t), hd(at.hd), tp(round8(at.t)), hp(round8(at.hd)),
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
    for (int64_t i = 0; i < t; i++) {
      const float* r = src + (n * t + i) * ld + h * hd;
      for (int64_t j = 0; j < hd; j++) cols[j * tp + i] = r[j];
    }
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
      for (int64_t i = i0; i < i0 + rows; i++) softmax_row(p + i * tp, p + i * tp, tp, i + 1);
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
      for (int64_t i = i0; i < i0 + rows; i++) {
        float* di = dp + i * tp;
        softmax_grad_row(pr + i * t, di, di, i + 1);
        for (int64_t j = i + 1; j < tp; j++) di[j] = 0;
      }
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
