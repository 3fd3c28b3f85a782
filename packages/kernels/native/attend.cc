#include "attend.h"

#include <cmath>
#include <vector>

#include "pool.h"
#include "rows.h"
#include "sgemm.h"

namespace papo {
namespace {

// Also compiled for AVX2 and picked at load time: the dot products' four partial sums are one 4-lane vector and
// the weighted sum over v runs 4 lanes of j at a time, with the same roundings (no contraction: the same bits
// as the default clone); exp stays libm's scalar exp in double.
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target_clones("avx2", "default")))
#endif
void attend_rows(const Attend& a, int64_t r0, int64_t r1) {
  const int64_t h = a.heads, hd = a.hd, d = h * hd, cap = a.capacity, len = a.pos + 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> scores(len), acc(hd);
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t hh = 0; hh < h; hh++) {
      const int64_t base = (r * h + hh) * cap * hd;
      const float* q = a.qkv + r * 3 * d + hh * hd;
      for (int64_t j = 0; j < hd; j++) {
        a.k[base + a.pos * hd + j] = q[d + j];
        a.v[base + a.pos * hd + j] = q[2 * d + j];
      }
      double max = -INFINITY;
      for (int64_t t = 0; t < len; t++) {
        const float* kt = a.k + base + t * hd;
        double part[4] = {};  // four interleaved partial sums: one serial chain of hd adds is latency-bound
        int64_t j = 0;
        for (; j + 4 <= hd; j += 4)
          for (int l = 0; l < 4; l++) part[l] += static_cast<double>(q[j + l]) * kt[j + l];
        for (; j < hd; j++) part[0] += static_cast<double>(q[j]) * kt[j];
        const double s = ((part[0] + part[1]) + (part[2] + part[3])) * scale;
        scores[t] = s;
        max = s > max ? s : max;
      }
      double sum = 0;
      for (int64_t t = 0; t < len; t++) sum += scores[t] = std::exp(scores[t] - max);
      for (int64_t j = 0; j < hd; j++) acc[j] = 0;
      for (int64_t t = 0; t < len; t++) {
        const double w = scores[t] / sum;
        const float* vt = a.v + base + t * hd;
        for (int64_t j = 0; j < hd; j++) acc[j] += w * vt[j];
      }
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

// y = x·w + b for x [m, k], w [k, n] row-major: the gemm() call the tfjs _FusedMatMul kernel makes.
void dense(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t k, int64_t n, int threads) {
  gemm({1, m, n, k, x, 0, k, 1, w, 0, n, 1, y, m * n, n, b}, threads);
}

void add_into(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = x[i] + y[i];
}

}  // namespace

void decode_layer(const DecodeLayer& l, int threads) {
  const int64_t n = l.rows, d = l.heads * l.hd;
  if (n == 0) return;
  rows({RowOp::LayerNorm, n, d, {l.x, l.ln1_g, l.ln1_b}, {l.a, nullptr}}, threads);
  dense(l.a, l.w_qkv, l.b_qkv, l.qkv, n, d, 3 * d, threads);
  attend({n, l.heads, l.hd, l.capacity, l.pos, l.qkv, l.k, l.v, l.a}, threads);
  dense(l.a, l.w_o, l.b_o, l.y, n, d, d, threads);
  add_into(l.x, l.y, n * d);
  rows({RowOp::LayerNorm, n, d, {l.x, l.ln2_g, l.ln2_b}, {l.a, nullptr}}, threads);
  dense(l.a, l.w_fc, l.b_fc, l.h, n, d, l.d_mlp, threads);
  rows({RowOp::Gelu, n, l.d_mlp, {l.h, nullptr, nullptr}, {l.h, nullptr}}, threads);
  dense(l.h, l.w_out, l.b_out, l.y, n, l.d_mlp, d, threads);
  add_into(l.x, l.y, n * d);
}

}  // namespace papo
