#include "attend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <utility>
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
// at a time: the same operations in the same order (no fused multiply-adds), so the same bits. Each score's
// chain of hd / 4 dependent adds is short and latency-bound, so T positions run side by side; the weighted sum
// keeps up to 32 j's of acc in registers over all t (the adds per j still in t order).
template <int T>
__attribute__((target("avx2"))) inline void scores_block(const double* q, const float* kt, int64_t hd, double scale, double* out) {
  __m256d acc[T];
  for (int i = 0; i < T; i++) acc[i] = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 4 <= hd; j += 4) {
    const __m256d qv = _mm256_loadu_pd(q + j);
    for (int i = 0; i < T; i++) acc[i] = _mm256_add_pd(acc[i], _mm256_mul_pd(qv, _mm256_cvtps_pd(_mm_loadu_ps(kt + i * hd + j))));
  }
  for (int i = 0; i < T; i++) {
    alignas(32) double part[4];
    _mm256_store_pd(part, acc[i]);
    for (int64_t jj = j; jj < hd; jj++) part[0] += q[jj] * kt[i * hd + jj];
    out[i] = ((part[0] + part[1]) + (part[2] + part[3])) * scale;
  }
}

__attribute__((target("avx2"))) double scores_avx2(const double* q, const float* k, int64_t hd, int64_t len, double scale, double* scores) {
  int64_t t = 0;
  for (; t + 4 <= len; t += 4) scores_block<4>(q, k + t * hd, hd, scale, scores + t);
  for (; t < len; t++) scores_block<1>(q, k + t * hd, hd, scale, scores + t);
  double max = -INFINITY;
  for (t = 0; t < len; t++) max = scores[t] > max ? scores[t] : max;
  return max;
}

// acc[j0 … j0 + 4V) = Σ_t w_t·v_t[j] over t < len in order, in V vectors.
template <int V>
__attribute__((target("avx2"))) inline void weighted_block(const double* w, const float* v, int64_t hd, int64_t len, int64_t j0, double* acc) {
  __m256d a[V];
  for (int i = 0; i < V; i++) a[i] = _mm256_setzero_pd();
  for (int64_t t = 0; t < len; t++) {
    const __m256d wv = _mm256_set1_pd(w[t]);
    const float* vt = v + t * hd + j0;
    for (int i = 0; i < V; i++) a[i] = _mm256_add_pd(a[i], _mm256_mul_pd(wv, _mm256_cvtps_pd(_mm_loadu_ps(vt + 4 * i))));
  }
  for (int i = 0; i < V; i++) _mm256_storeu_pd(acc + j0 + 4 * i, a[i]);
}

__attribute__((target("avx2"))) void weighted_avx2(const double* e, double sum, const float* v, int64_t hd, int64_t len, double* acc) {
  thread_local std::vector<double> weights;
  weights.resize(len);
  double* w = weights.data();
  for (int64_t t = 0; t < len; t++) w[t] = e[t] / sum;
  int64_t j = 0;
  for (; j + 32 <= hd; j += 32) weighted_block<8>(w, v, hd, len, j, acc);
  for (; j + 4 <= hd; j += 4) weighted_block<1>(w, v, hd, len, j, acc);
  for (int64_t jj = j; jj < hd; jj++) acc[jj] = 0;
  for (int64_t t = 0; t < len && j < hd; t++)
    for (int64_t jj = j; jj < hd; jj++) acc[jj] += w[t] * v[t * hd + jj];
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

// Ranges a kernel is cut into for the two threads: enough that the one who finishes first takes more.
constexpr int kParts = 4;

// One task of a step: rows [lo, hi) of a LayerNorm (`job` a RowJob) or of the attention (an Attend), or columns
// [lo, hi) of a product (a Gemm; lo −1: the whole product, which gemm() cuts by depth), started once the first
// `after` tasks (the earlier kernels) are done.
struct Task {
  enum Kind { Norm, Attention, Product } kind;
  const void* job;
  int64_t lo, hi;
  int after;
};

void run_one(const Task& t) {
  switch (t.kind) {
    case Task::Norm: {
      RowJob j = *static_cast<const RowJob*>(t.job);
      j.in[0] += t.lo * j.cols, j.out[0] += t.lo * j.cols, j.rows = t.hi - t.lo;
      return rows(j, 1);
    }
    case Task::Attention: {
      Attend a = *static_cast<const Attend*>(t.job);
      const int64_t d = a.heads * a.hd, cache = a.heads * a.capacity * a.hd;
      a.qkv += t.lo * 3 * d, a.k += t.lo * cache, a.v += t.lo * cache, a.out += t.lo * d, a.rows = t.hi - t.lo;
      return attend(a, 1);
    }
    case Task::Product: {
      const Gemm& g = *static_cast<const Gemm*>(t.job);
      return t.lo < 0 ? gemm(g, 1) : gemm_part(g, t.lo, t.hi);
    }
  }
}

// The kernels of a step in order, each cut into tasks. The two threads claim tasks in order (pool_run), and a
// task waits only for the tasks of earlier kernels, all claimed before it: the caller never waits for a task
// nobody has started, and each task computes its range as the whole kernel would (the same bits for any cut
// and thread count). One job per step instead of one per kernel.
class Steps {
 public:
  void add(Task::Kind kind, const void* job, int64_t n, int64_t unit) {
    const int after = static_cast<int>(tasks_.size());
    int64_t bounds[kParts + 1];
    if (kind == Task::Product && depth_chunked(*static_cast<const Gemm*>(job))) return tasks_.push_back({kind, job, -1, -1, after});
    const int count = cut(n, unit, kParts, bounds);
    for (int i = 0; i < count; i++) tasks_.push_back({kind, job, bounds[i], bounds[i + 1], after});
  }

  void run(int threads) const {
    Progress p{tasks_.data(), {0}};
    const int n = static_cast<int>(tasks_.size());
    if (threads < 2 || n < 2 || !pool_run(run_task, &p, n))
      for (const Task& t : tasks_) run_one(t);
  }

 private:
  struct Progress {
    const Task* tasks;
    std::atomic<int> done;
  };
  static void run_task(void* arg, int i) {
    Progress& p = *static_cast<Progress*>(arg);
    const Task& t = p.tasks[i];
    while (p.done.load(std::memory_order_acquire) < t.after) cpu_relax();
    run_one(t);
    p.done.fetch_add(1, std::memory_order_release);
  }
  std::vector<Task> tasks_;
};

// One decode step of a pre-LayerNorm transformer block for `rows` new tokens (d = heads·hd), in place:
//   a = LN₁(x);  qkv = a·W_qkv + b_qkv;  a = attend(qkv) (k, v stored at `pos`);  x = x + (a·W_o + b_o);
//   a = LN₂(x);  h = gelu(a·W_fc + b_fc);  x = x + (h·W_out + b_out).
// Every product is gemm()'s arithmetic, the GELU and the residual adds in its store (sgemm.h's epilogues), every
// LayerNorm rows()'s: the same operations, in the same order, as the model's tfjs kernels under this addon
// (bit-identical to that path, and for any thread count). Weights are row-major [in, out]; a, y [rows, d],
// qkv [rows, 3d] and h [rows, d_mlp] are scratch.
struct DecodeLayer {
  int64_t rows, heads, hd, d_mlp, capacity, pos;
  float* x;
  float* a;
  float* qkv;
  float* h;
  float* y;
  const float *ln1_g, *ln1_b, *w_qkv, *b_qkv, *w_o, *b_o, *ln2_g, *ln2_b, *w_fc, *b_fc, *w_out, *b_out;
  float* k;
  float* v;
  bool packed = false;  // the four weights are pack_b()'s panels (sgemm.h) for `rows` rows, not row-major
};

// The kernels of one block's decode step (a DecodeLayer), in order; the residual stream alternates
// between x and y: y = x + attn(LN1(x))·W_o + b_o, then x = y + gelu(LN2(y)·W_fc + b_fc)·W_out + b_out, each add
// and the GELU in the product's store (the calls the tfjs kernels make: LayerNorm, _FusedMatMul with its bias,
// matMulAdd, matMulGelu).
struct Block {
  RowJob ln1, ln2;
  Gemm qkv, proj, fc, out;
  Attend att;

  explicit Block(const DecodeLayer& l)
      : ln1{RowOp::LayerNorm, l.rows, d(l), {l.x, l.ln1_g, l.ln1_b}, {l.a, nullptr}},
        ln2{RowOp::LayerNorm, l.rows, d(l), {l.y, l.ln2_g, l.ln2_b}, {l.a, nullptr}},
        qkv(dense(l, l.a, l.w_qkv, l.b_qkv, l.qkv, d(l), 3 * d(l))),
        proj(dense(l, l.a, l.w_o, l.b_o, l.y, d(l), d(l), Epilogue::Add, l.x)),
        fc(dense(l, l.a, l.w_fc, l.b_fc, l.h, d(l), l.d_mlp, Epilogue::Gelu)),
        out(dense(l, l.h, l.w_out, l.b_out, l.x, l.d_mlp, d(l), Epilogue::Add, l.y)),
        att{l.rows, l.heads, l.hd, l.capacity, l.pos, l.qkv, l.k, l.v, l.a} {}

  void add_to(Steps& s) const {
    const int64_t n = ln1.rows;
    s.add(Task::Norm, &ln1, n, 1);
    s.add(Task::Product, &qkv, qkv.n, kPanelWidth);
    s.add(Task::Attention, &att, n, 1);
    s.add(Task::Product, &proj, proj.n, kPanelWidth);
    s.add(Task::Norm, &ln2, n, 1);
    s.add(Task::Product, &fc, fc.n, kPanelWidth);
    s.add(Task::Product, &out, out.n, kPanelWidth);
  }

 private:
  static int64_t d(const DecodeLayer& l) { return l.heads * l.hd; }
  // y = x·w + b for x [rows, k], w [k, n] (row-major, or packed), finished by the epilogue `op` with operand `in`.
  static Gemm dense(const DecodeLayer& l, const float* x, const float* w, const float* b, float* y, int64_t k, int64_t n,
                    Epilogue op = Epilogue::None, const float* in = nullptr) {
    Gemm g{1, l.rows, n, k, x, 0, k, 1, w, 0, n, 1, y, l.rows * n, n, b};
    g.epilogue = op;
    g.e_in = in;
    g.b_packed = l.packed ? w : nullptr;
    return g;
  }
};

// An owned, 64-byte aligned float buffer (the packed panels are read with aligned loads), not zeroed. A freed
// buffer is kept for the thread's next decoder (up to three: a decoder's scratch, cache and weights): fresh
// memory costs a page fault per 4 KB on first touch, ~35 ms for a `medium` rollout's 55 MB KV cache.
class Floats {
 public:
  explicit Floats(int64_t n) : size_(n) {
    auto& kept = spare();
    auto best = kept.end();
    for (auto it = kept.begin(); it != kept.end(); ++it)
      if (it->second >= n && (best == kept.end() || it->second < best->second)) best = it;
    if (best != kept.end()) {
      p = best->first, size_ = best->second;
      kept.erase(best);
    } else {
      p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64));
    }
  }
  ~Floats() {
    auto& kept = spare();
    kept.emplace_back(p, size_);
    if (kept.size() > 3) {
      auto smallest = std::min_element(kept.begin(), kept.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
      std::free(smallest->first);
      kept.erase(smallest);
    }
  }
  Floats(const Floats&) = delete;
  Floats& operator=(const Floats&) = delete;
  float* p;

 private:
  struct Kept : std::vector<std::pair<float*, int64_t>> {
    ~Kept() {
      for (auto& [p, n] : *this) std::free(p);
    }
  };
  static Kept& spare() {
    thread_local Kept kept;
    return kept;
  }
  int64_t size_;
};

}  // namespace

struct Decoder::State {
  explicit State(const DecoderShape& s)
      : d(s.heads * s.hd),
        cache_floats(s.rows * d * s.capacity),
        scratch(s.rows * (6 * d + s.d_mlp) + s.rows * s.vocab),
        cache(2 * s.layers * cache_floats),
        weights(s.layers * (packed_floats(3 * d, d) + packed_floats(d, d) + packed_floats(s.d_mlp, d) + packed_floats(d, s.d_mlp) +
                            9 * d + s.d_mlp) +
                packed_floats(s.vocab, d) + 2 * d + (s.vocab + s.positions) * d + kAlign * (12 * s.layers + 5)) {}
  static constexpr int64_t kAlign = 16;  // each weight starts on a 64-byte line
  const int64_t d, cache_floats;
  Floats scratch, cache, weights;
  float *x, *a, *logits, *embed, *positions;
  std::vector<Block> blocks;
  RowJob norm;
  Gemm head;
  Steps steps;
};

Decoder::Decoder(const DecoderShape& s, const float* const* tensors) : shape(s), state_(new State(s)) {
  State& st = *state_;
  const int64_t n = s.rows, d = st.d;
  // scratch: x [n, d] | a [n, d] | y [n, d] | qkv [n, 3d] | h [n, d_mlp] | logits [n, vocab]
  float* x = st.scratch.p;
  float *a = x + n * d, *y = a + n * d, *qkv = y + n * d, *h = qkv + 3 * n * d;
  st.x = x, st.a = a, st.logits = h + n * s.d_mlp;
  float* w = st.weights.p;
  // Copies `count` floats (a bias, γ, β, a table) into the weights, or packs a [k, cols] weight; returns where.
  const auto take = [&](int64_t count) {
    float* at = w;
    w += (count + State::kAlign - 1) / State::kAlign * State::kAlign;
    return at;
  };
  const auto copy = [&](const float* src, int64_t count) { return std::copy(src, src + count, take(count)) - count; };
  const auto pack = [&](const float* src, int64_t k, int64_t cols) {
    float* at = take(packed_floats(cols, k));
    pack_b(n, cols, k, src, cols, 1, at);
    return at;
  };
  st.blocks.reserve(s.layers);  // the tasks point into the blocks: no reallocation
  for (int64_t i = 0; i < s.layers; i++) {
    const float* const* t = tensors + 12 * i;
    DecodeLayer l{n, s.heads, s.hd, s.d_mlp, s.capacity, 0, x, a, qkv, h, y,
                  copy(t[0], d), copy(t[1], d), pack(t[2], d, 3 * d), copy(t[3], 3 * d), pack(t[4], d, d), copy(t[5], d),
                  copy(t[6], d), copy(t[7], d), pack(t[8], d, s.d_mlp), copy(t[9], s.d_mlp), pack(t[10], s.d_mlp, d), copy(t[11], d),
                  st.cache.p + 2 * i * st.cache_floats, st.cache.p + (2 * i + 1) * st.cache_floats};
    l.packed = true;
    st.blocks.emplace_back(l);
  }
  const float* const* t = tensors + 12 * s.layers;
  const float *g = copy(t[0], d), *b = copy(t[1], d), *head = pack(t[2], d, s.vocab);
  st.embed = copy(t[3], s.vocab * d), st.positions = copy(t[4], s.positions * d);
  st.norm = {RowOp::LayerNorm, n, d, {x, g, b}, {a, nullptr}};
  st.head = Gemm{1, n, s.vocab, d, a, 0, d, 1, head, 0, s.vocab, 1, st.logits, n * s.vocab, s.vocab, nullptr};
  st.head.b_packed = head;
  for (const Block& block : st.blocks) block.add_to(st.steps);
  st.steps.add(Task::Norm, &st.norm, n, 1);
  st.steps.add(Task::Product, &st.head, s.vocab, kPanelWidth);
}

Decoder::~Decoder() = default;

void Decoder::fill(int64_t layer, const float* k, int64_t k_ld, const float* v, int64_t v_ld, int64_t prompts, int64_t len, int64_t group) {
  const int64_t h = shape.heads, hd = shape.hd, cap = shape.capacity;
  float* cache = state_->cache.p + 2 * layer * state_->cache_floats;
  for (int side = 0; side < 2; side++, cache += state_->cache_floats) {
    const float* src = side == 0 ? k : v;
    const int64_t ld = side == 0 ? k_ld : v_ld;
    for (int64_t p = 0; p < prompts; p++)
      for (int64_t r = p * group; r < (p + 1) * group; r++)
        for (int64_t hh = 0; hh < h; hh++)
          for (int64_t t = 0; t < len; t++) {
            const float* from = src + (p * len + t) * ld + hh * hd;
            std::copy(from, from + hd, cache + ((r * h + hh) * cap + t) * hd);
          }
  }
  length = len;
}

const char* Decoder::step(const int32_t* ids, int64_t offset, float* logits, int threads) {
  State& st = *state_;
  const int64_t n = shape.rows, d = st.d;
  if (length >= shape.capacity) return "KV cache full";
  if (offset < 0 || offset >= shape.positions) return "text position out of range";
  for (int64_t r = 0; r < n; r++)
    if (ids[r] < 0 || ids[r] >= shape.vocab) return "token id out of range";
  // The embeddings: a one-hot row times the table is that row exactly; float32 adds as the tfjs Add.
  for (int64_t r = 0; r < n; r++) {
    const float *e = st.embed + ids[r] * d, *pos = st.positions + offset * d;
    for (int64_t j = 0; j < d; j++) st.x[r * d + j] = e[j] + pos[j];
  }
  for (Block& b : st.blocks) b.att.pos = length;
  st.steps.run(threads);
  std::copy(st.logits, st.logits + n * shape.vocab, logits);
  length++;
  return nullptr;
}

}  // namespace papo
