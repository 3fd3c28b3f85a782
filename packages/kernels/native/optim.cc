// The optimizer kernels of optim.h, split into chunks that the calling thread and the pool's helper claim.
// Plain C++ loops (-ffp-contract=off keeps every operation rounded as written), and an AVX2 twin of the AdamW
// loop picked at load time (sqrt and division are correctly rounded on both: the same bits).
#include "optim.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAPO_X86 1
#endif

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "pool.h"
#include "sgemm.h"

namespace papo {
namespace {

// Elements per task: fixed, so the sum of squares adds the same partial sums in the same order for any
// thread count.
constexpr int64_t kChunk = 1 << 14;
// Below this many elements a job runs on the calling thread (waking the helper costs more).
constexpr int64_t kParallelElements = 1 << 15;
// pool_run's limit on tasks per job.
constexpr int kMaxTasks = 65535;

struct Piece {
  int tensor;
  int64_t begin, end;
};

// Every tensor cut into pieces of at most kChunk elements, in order.
std::vector<Piece> pieces_of(const OptimTensor* t, int count, int64_t* total) {
  std::vector<Piece> out;
  *total = 0;
  for (int i = 0; i < count; i++) {
    for (int64_t b = 0; b < t[i].size; b += kChunk) out.push_back({i, b, b + kChunk < t[i].size ? b + kChunk : t[i].size});
    *total += t[i].size;
  }
  return out;
}

struct Job {
  const OptimTensor* t;
  const Piece* pieces;
  const AdamWConstants* c;
  double* sums;
};

// Runs task(job, i) for every piece, on both threads when the job is large enough.
void run_pieces(Job& job, size_t count, int64_t total, int threads, void (*task)(void*, int)) {
  for (size_t first = 0; first < count; first += kMaxTasks) {
    const int n = static_cast<int>(count - first < static_cast<size_t>(kMaxTasks) ? count - first : kMaxTasks);
    Job window = job;
    window.pieces = job.pieces + first;
    window.sums = job.sums == nullptr ? nullptr : job.sums + first;
    if (threads < 2 || total < kParallelElements || n < 2 || !pool_run(task, &window, n))
      for (int i = 0; i < n; i++) task(&window, i);
  }
}

void sum_task(void* arg, int i) {
  const Job& j = *static_cast<const Job*>(arg);
  const Piece& piece = j.pieces[i];
  const float* g = j.t[piece.tensor].p;
  // Four running sums (a fixed order the compiler may vectorize without reassociating), then their pair sums.
  double s[4] = {0, 0, 0, 0};
  int64_t k = piece.begin;
  for (; k + 4 <= piece.end; k += 4)
    for (int l = 0; l < 4; l++) s[l] += static_cast<double>(g[k + l]) * static_cast<double>(g[k + l]);
  for (; k < piece.end; k++) s[0] += static_cast<double>(g[k]) * static_cast<double>(g[k]);
  j.sums[i] = (s[0] + s[1]) + (s[2] + s[3]);
}

// Elements [begin, end) of one tensor, one at a time.
void adamw_scalar(const OptimTensor& t, const AdamWConstants& c, int64_t begin, int64_t end) {
  for (int64_t k = begin; k < end; k++) {
    const float g = t.g[k] * c.clip;
    const float m = t.m[k] * c.beta1 + g * c.one_minus_beta1;
    const float v = t.v[k] * c.beta2 + (g * g) * c.one_minus_beta2;
    const float step = (m / c.bias1) / (std::sqrt(v / c.bias2) + c.eps);
    t.p_out[k] = t.p[k] * c.decay - step * c.lr;
    t.m_out[k] = m;
    t.v_out[k] = v;
  }
}

#ifdef PAPO_X86
// The same operations 8 lanes at a time (each one correctly rounded, as the scalar ones: the same bits); the
// tail goes to adamw_scalar.
__attribute__((target("avx2"))) void adamw_avx2(const OptimTensor& t, const AdamWConstants& c, int64_t begin, int64_t end) {
  const __m256 clip = _mm256_set1_ps(c.clip), b1 = _mm256_set1_ps(c.beta1), c1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(c.beta2), c2 = _mm256_set1_ps(c.one_minus_beta2), bias1 = _mm256_set1_ps(c.bias1);
  const __m256 bias2 = _mm256_set1_ps(c.bias2), eps = _mm256_set1_ps(c.eps), decay = _mm256_set1_ps(c.decay), lr = _mm256_set1_ps(c.lr);
  int64_t k = begin;
  for (; k + 8 <= end; k += 8) {
    const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(t.g + k), clip);
    const __m256 m = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(t.m + k), b1), _mm256_mul_ps(g, c1));
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(t.v + k), b2), _mm256_mul_ps(_mm256_mul_ps(g, g), c2));
    const __m256 step = _mm256_div_ps(_mm256_div_ps(m, bias1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(v, bias2)), eps));
    _mm256_storeu_ps(t.p_out + k, _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(t.p + k), decay), _mm256_mul_ps(step, lr)));
    _mm256_storeu_ps(t.m_out + k, m);
    _mm256_storeu_ps(t.v_out + k, v);
  }
  adamw_scalar(t, c, k, end);
}
#endif

void adamw_task(void* arg, int i) {
  const Job& j = *static_cast<const Job*>(arg);
  const Piece& piece = j.pieces[i];
#ifdef PAPO_X86
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2 && std::strcmp(isa_name(), "generic") != 0) return adamw_avx2(j.t[piece.tensor], *j.c, piece.begin, piece.end);
#endif
  adamw_scalar(j.t[piece.tensor], *j.c, piece.begin, piece.end);
}

}  // namespace

double sum_squares(const OptimTensor* t, int count, int threads) {
  int64_t total = 0;
  const std::vector<Piece> pieces = pieces_of(t, count, &total);
  std::vector<double> sums(pieces.size());
  Job job{t, pieces.data(), nullptr, sums.data()};
  run_pieces(job, pieces.size(), total, threads, sum_task);
  double sum = 0;
  for (const double s : sums) sum += s;
  return sum;
}

void adamw(const OptimTensor* t, int count, const AdamWConstants& c, int threads) {
  int64_t total = 0;
  const std::vector<Piece> pieces = pieces_of(t, count, &total);
  Job job{t, pieces.data(), &c, nullptr};
  run_pieces(job, pieces.size(), total, threads, adamw_task);
}

}  // namespace papo
