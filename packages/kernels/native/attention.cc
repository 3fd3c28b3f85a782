// The fused causal attention of attention.h. Per (sequence, head) pair everything sits in L1: q (scaled), k, v
// and dO are copied from their strided rows into zero-padded tiles (widths rounded up to 8 floats), and every
// product is one "row combination" c[0, w) = Σ_s a(s)·B[s][0, w) over the rows s that the causal mask keeps:
// S = Q·Kᵀ (B = Kᵀ), O = P·V, dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q. The softmax rows are rows.cc's.
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

// c[0, w) = Σ_{s0 ≤ s < s1} a[s·acs] · b[s·ldb + 0, w), w a multiple of 8.
using Combine = void (*)(const float* a, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c, int64_t w);

void combine_generic(const float* a, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c, int64_t w) {
  for (int64_t j = 0; j < w; j++) c[j] = 0;
  for (int64_t s = s0; s < s1; s++) {
    const float as = a[s * acs];
    const float* bs = b + s * ldb;
    for (int64_t j = 0; j < w; j++) c[j] = c[j] + as * bs[j];
  }
}

#ifdef PAPO_X86
// NV vectors of 8 columns in registers. With NV ≤ 4 the even and odd s go to two sets of accumulators (one
// chain of dependent FMAs per register would leave the two FMA pipes idle for most of their 4-cycle latency).
template <int NV>
__attribute__((target("avx2,fma"))) void combine_block(const float* a, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c) {
  __m256 x[NV], y[NV];
  for (int v = 0; v < NV; v++) x[v] = y[v] = _mm256_setzero_ps();
  int64_t s = s0;
  if (NV <= 4) {
    for (; s + 2 <= s1; s += 2) {
      const __m256 a0 = _mm256_broadcast_ss(a + s * acs), a1 = _mm256_broadcast_ss(a + (s + 1) * acs);
      const float *b0 = b + s * ldb, *b1 = b0 + ldb;
      for (int v = 0; v < NV; v++) {
        x[v] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0 + 8 * v), x[v]);
        y[v] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b1 + 8 * v), y[v]);
      }
    }
  }
  for (; s < s1; s++) {
    const __m256 a0 = _mm256_broadcast_ss(a + s * acs);
    const float* b0 = b + s * ldb;
    for (int v = 0; v < NV; v++) x[v] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b0 + 8 * v), x[v]);
  }
  for (int v = 0; v < NV; v++) _mm256_storeu_ps(c + 8 * v, NV <= 4 ? _mm256_add_ps(x[v], y[v]) : x[v]);
}

void combine_avx2(const float* a, int64_t acs, const float* b, int64_t ldb, int64_t s0, int64_t s1, float* c, int64_t w) {
  for (int64_t j = 0; j < w; j += 64, b += 64, c += 64) {
    switch ((w - j) / 8 < 8 ? (w - j) / 8 : 8) {
      case 1: combine_block<1>(a, acs, b, ldb, s0, s1, c); break;
      case 2: combine_block<2>(a, acs, b, ldb, s0, s1, c); break;
      case 3: combine_block<3>(a, acs, b, ldb, s0, s1, c); break;
      case 4: combine_block<4>(a, acs, b, ldb, s0, s1, c); break;
      case 5: combine_block<5>(a, acs, b, ldb, s0, s1, c); break;
      case 6: combine_block<6>(a, acs, b, ldb, s0, s1, c); break;
      case 7: combine_block<7>(a, acs, b, ldb, s0, s1, c); break;
      default: combine_block<8>(a, acs, b, ldb, s0, s1, c); break;
    }
  }
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
  float *qs, *k, *kt, *v, *vt, *d_out, *p, *dp, *row;

  Work(const Attention& at, bool backward)
      : a(at), combine(pick_combine()), t(at.t), hd(at.hd), tp(round8(at.t)), hp(round8(at.hd)),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(at.hd)))),
        buf((backward ? 3 * t * hp + 2 * hp * tp + 2 * t * tp : 2 * t * hp + hp * tp + t * tp) + hp) {
    float* f = buf.data();
    const auto take = [&f](int64_t count) { float* x = f; f += count; return x; };
    qs = take(t * hp), kt = take(hp * tp), p = take(t * tp), row = take(hp);
    if (backward) k = take(t * hp), vt = take(hp * tp), d_out = take(t * hp), dp = take(t * tp), v = nullptr;
    else v = take(t * hp), k = vt = d_out = dp = nullptr;
  }

  // Head h of sequence n from rows of stride ld, times `mul`, into a row tile (ld hp) or a transposed one (ld tp).
  void load(const float* src, int64_t ld, int64_t n, int64_t h, float mul, float* rows, float* cols) const {
    for (int64_t i = 0; i < t; i++) {
      const float* r = src + (n * t + i) * ld + h * hd;
      for (int64_t j = 0; j < hd; j++) {
        const float x = mul == 1.0f ? r[j] : r[j] * mul;
        if (rows != nullptr) rows[i * hp + j] = x;
        if (cols != nullptr) cols[j * tp + i] = x;
      }
    }
  }

  // The first hd values of `row`, times `mul`, to row (n, i) of dst (stride ld) at head h.
  void store(float* dst, int64_t ld, int64_t n, int64_t i, int64_t h, float mul) const {
    float* r = dst + (n * t + i) * ld + h * hd;
    for (int64_t j = 0; j < hd; j++) r[j] = mul == 1.0f ? row[j] : row[j] * mul;
  }

  // P = causal softmax(Q·Kᵀ) from the loaded qs and kt; columns past the diagonal are 0.
  void probabilities() const {
    for (int64_t i = 0; i < t; i++) {
      float* pi = p + i * tp;
      combine(qs + i * hp, 1, kt, tp, 0, hd, pi, round8(i + 1));
      softmax_row(pi, pi, tp, i + 1);
    }
  }

  void forward(int64_t n, int64_t h) {
    load(a.q, a.ld_in, n, h, scale, qs, nullptr);
    load(a.k, a.ld_in, n, h, 1.0f, nullptr, kt);
    load(a.v, a.ld_in, n, h, 1.0f, v, nullptr);
    probabilities();
    for (int64_t i = 0; i < t; i++) {
      combine(p + i * tp, 1, v, hp, 0, i + 1, row, hp);
      store(a.out, a.ld_o, n, i, h, 1.0f);
    }
  }

  void backward(int64_t n, int64_t h) {
    load(a.q, a.ld_in, n, h, scale, qs, nullptr);
    load(a.k, a.ld_in, n, h, 1.0f, k, kt);
    load(a.v, a.ld_in, n, h, 1.0f, nullptr, vt);
    load(a.d_out, a.ld_o, n, h, 1.0f, d_out, nullptr);
    probabilities();
    for (int64_t i = 0; i < t; i++) {  // dS = P ⊙ (dP − rowsum(dP ⊙ P)), dP = dO·Vᵀ, in place of dP
      float* di = dp + i * tp;
      combine(d_out + i * hp, 1, vt, tp, 0, hd, di, round8(i + 1));
      softmax_grad_row(p + i * tp, di, di, i + 1);
    }
    for (int64_t r = 0; r < t; r++) {
      combine(p + r, tp, d_out, hp, r, t, row, hp);  // dV[r] = Σ_{s ≥ r} P[s][r]·dO[s]
      store(a.dv, a.ld_grad, n, r, h, 1.0f);
      combine(dp + r * tp, 1, k, hp, 0, r + 1, row, hp);  // dQ[r] = Σ_{s ≤ r} dS[r][s]·K[s], then /√hd
      store(a.dq, a.ld_grad, n, r, h, scale);
      combine(dp + r, tp, qs, hp, r, t, row, hp);  // dK[r] = Σ_{s ≥ r} dS[s][r]·Q[s]
      store(a.dk, a.ld_grad, n, r, h, 1.0f);
    }
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
