#include "attend.h"

#include <cmath>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "pool.h"
#include "rows.h"
#include "sgemm.h"

namespace papo {
namespace {

// scores[t] = (q·k_t)·scale for t < len, q·k_t in four interleaved partial sums (lane l takes j ≡ l mod 4; one
// serial chain of hd adds is latency-bound) added as (p₀ + p₁) + (p₂ + p₃); returns the largest score.
double scores_generic(const double* q, const float* k, int64_t hd, int64_t len, double scale, double* scores) {
  double max = -INFINITY;
  for (int64_t t = 0; t < len; t++) {
    const float* kt = k + t * hd;
    double part[4] = {};
    int64_t j = 0;
    for (; j + 4 <= hd; j += 4)
      for (int l = 0; l < 4; l++) part[l] += q[j + l] * kt[j + l];
    for (; j < hd; j++) part[0] += q[j] * kt[j];
    const double s = ((part[0] + part[1]) + (part[2] + part[3])) * scale;
    scores[t] = s;
    max = s > max ? s : max;
  }
  return max;
}

// acc[j] = Σ_t (e_t / sum)·v_t[j] over t < len in order.
void weighted_generic(const double* e, double sum, const float* v, int64_t hd, int64_t len, double* acc) {
  for (int64_t j = 0; j < hd; j++) acc[j] = 0;
  for (int64_t t = 0; t < len; t++) {
    const double w = e[t] / sum;
    const float* vt = v + t * hd;
    for (int64_t j = 0; j < hd; j++) acc[j] += w * vt[j];
  }
}

#if defined(__x86_64__) || defined(__i386__)
// The same two loops with the four partial sums as one AVX2 vector of doubles, and four j's of the weighted sum
// at a time: the same operations in the same order (no fused multiply-adds), so the same bits.
__attribute__((target("avx2"))) double scores_avx2(const double* q, const float* k, int64_t hd, int64_t len, double scale, double* scores) {
  double max = -INFINITY;
  for (int64_t t = 0; t < len; t++) {
    const float* kt = k + t * hd;
    __m256d acc = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j + 4 <= hd; j += 4) acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(q + j), _mm256_cvtps_pd(_mm_loadu_ps(kt + j))));
    alignas(32) double part[4];
    _mm256_store_pd(part, acc);
    for (; j < hd; j++) part[0] += q[j] * kt[j];
    const double s = ((part[0] + part[1]) + (part[2] + part[3])) * scale;
    scores[t] = s;
    max = s > max ? s : max;
  }
  return max;
}

__attribute__((target("avx2"))) void weighted_avx2(const double* e, double sum, const float* v, int64_t hd, int64_t len, double* acc) {
  for (int64_t j = 0; j < hd; j++) acc[j] = 0;
  for (int64_t t = 0; t < len; t++) {
    const double w = e[t] / sum;
    const __m256d wv = _mm256_set1_pd(w);
    const float* vt = v + t * hd;
    int64_t j = 0;
    for (; j + 4 <= hd; j += 4)
      _mm256_storeu_pd(acc + j, _mm256_add_pd(_mm256_loadu_pd(acc + j), _mm256_mul_pd(wv, _mm256_cvtps_pd(_mm_loadu_ps(vt + j)))));
    for (; j < hd; j++) acc[j] += w * vt[j];
  }
}
#endif

void attend_rows(const Attend& a, int64_t r0, int64_t r1) {
  const int64_t h = a.heads, hd = a.hd, d = h * hd, cap = a.capacity, len = a.pos + 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  const auto scores_of = avx2 ? scores_avx2 : scores_generic;
  const auto weighted = avx2 ? weighted_avx2 : weighted_generic;
#else
  const auto scores_of = scores_generic;
  const auto weighted = weighted_generic;
#endif
  std::vector<double> scores(len), acc(hd), q(hd);
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t hh = 0; hh < h; hh++) {
      const int64_t base = (r * h + hh) * cap * hd;
      const float* qkv = a.qkv + r * 3 * d + hh * hd;
      for (int64_t j = 0; j < hd; j++) {
        q[j] = qkv[j];  // exact in double
        a.k[base + a.pos * hd + j] = qkv[d + j];
        a.v[base + a.pos * hd + j] = qkv[2 * d + j];
      }
      const double max = scores_of(q.data(), a.k + base, hd, len, scale, scores.data());
      double sum = 0;
      for (int64_t t = 0; t < len; t++) sum += scores[t] = std::exp(scores[t] - max);
      weighted(scores.data(), sum, a.v + base, hd, len, acc.data());
      float* o = a.out + r * d + hh * hd;
      for (int64_t j = 0; j < hd; j++) o[j] = static_cast<float>(acc[j]);
    }
  }
}

struct Split {
  const Attend* a;
  int64_t bounds[5];
};

void run_task(void* arg, int t) {
  const Split& s = *static_cast<const Split*>(arg);
  attend_rows(*s.a, s.bounds[t], s.bounds[t + 1]);
}

}  // namespace

void attend(const Attend& a, int threads) {
  if (a.rows == 0) return;
  if (threads < 2 || a.rows < 4) return attend_rows(a, 0, a.rows);
  Split s{&a, {}};
  const int count = cut(a.rows, 1, 4, s.bounds);
  if (count < 2 || !pool_run(run_task, &s, count))
    for (int t = 0; t < count; t++) run_task(&s, t);
}

namespace {

// y = x·w + b for x [m, k], w [k, n] row-major (the gemm() call the tfjs _FusedMatMul kernel makes), finished by
// the epilogue `op` (sgemm.h) with operand `in`: the same bits as the separate kernel after the product.
void dense(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t k, int64_t n, int threads,
           Epilogue op = Epilogue::None, const float* in = nullptr) {
  Gemm g{1, m, n, k, x, 0, k, 1, w, 0, n, 1, y, m * n, n, b};
  g.epilogue = op;
  g.e_in = in;
  gemm(g, threads);
}

}  // namespace

// The residual stream alternates between x and y: y = x + attn(LN1(x))·W_o + b_o, then
// x = y + gelu(LN2(y)·W_fc + b_fc)·W_out + b_out, each add and the GELU in the product's store.
void decode_layer(const DecodeLayer& l, int threads) {
  const int64_t n = l.rows, d = l.heads * l.hd;
  if (n == 0) return;
  rows({RowOp::LayerNorm, n, d, {l.x, l.ln1_g, l.ln1_b}, {l.a, nullptr}}, threads);
  dense(l.a, l.w_qkv, l.b_qkv, l.qkv, n, d, 3 * d, threads);
  attend({n, l.heads, l.hd, l.capacity, l.pos, l.qkv, l.k, l.v, l.a}, threads);
  dense(l.a, l.w_o, l.b_o, l.y, n, d, d, threads, Epilogue::Add, l.x);
  rows({RowOp::LayerNorm, n, d, {l.y, l.ln2_g, l.ln2_b}, {l.a, nullptr}}, threads);
  dense(l.a, l.w_fc, l.b_fc, l.h, n, d, l.d_mlp, threads, Epilogue::Gelu);
  dense(l.h, l.w_out, l.b_out, l.x, n, l.d_mlp, d, threads, Epilogue::Add, l.y);
}

}  // namespace papo
