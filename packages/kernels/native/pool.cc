#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace papo {
namespace {

// The helper spins this long for the next job before sleeping: kernels of one step follow each other
// closely, and a wake-up from sleep costs more than a small matMul.
constexpr auto kSpin = std::chrono::microseconds(50);

bool spin_until(const std::atomic<uint64_t>& x, uint64_t differs_from, std::chrono::steady_clock::time_point deadline) {
  for (int i = 0;; i++) {
    if (x.load(std::memory_order_acquire) != differs_from) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

struct Pool {
  std::mutex busy;  // one caller at a time (worker_threads each load the addon but share this helper)
  std::mutex m;
  std::condition_variable cv;
  std::atomic<uint64_t> posted{0};  // job generation
  // generation << 32 | task count << 16 | next unclaimed task: a task is claimed by a compare-and-swap that
  // also checks the generation, so a late helper can never run a task of a finished job.
  std::atomic<uint64_t> claim{0};
  std::atomic<int> finished{0};
  void (*fn)(void*, int) = nullptr;
  void* arg = nullptr;

  Pool() { std::thread([this] { loop(); }).detach(); }

  void work(uint64_t job) {
    for (;;) {
      uint64_t c = claim.load(std::memory_order_acquire);
      do {
        if ((c >> 32) != (job & 0xffffffffu) || (c & 0xffff) >= ((c >> 16) & 0xffff)) return;
      } while (!claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire));
      fn(arg, static_cast<int>(c & 0xffff));
      finished.fetch_add(1, std::memory_order_release);
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      uint64_t job = seen;
      if (spin_until(posted, seen, std::chrono::steady_clock::now() + kSpin)) job = posted.load(std::memory_order_acquire);
      if (job == seen) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return posted.load(std::memory_order_acquire) != seen; });
        job = posted.load(std::memory_order_acquire);
      }
      seen = job;
      work(job);
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: the helper outlives every caller
  return *p;
}

}  // namespace

bool pool_run(void (*fn)(void*, int), void* arg, int tasks) {
  Pool& p = pool();
  std::unique_lock<std::mutex> owner(p.busy, std::try_to_lock);
  if (!owner.owns_lock()) return false;
  p.fn = fn, p.arg = arg;
  p.finished.store(0, std::memory_order_relaxed);
  const uint64_t job = p.posted.load(std::memory_order_relaxed) + 1;
  p.claim.store((job & 0xffffffffu) << 32 | static_cast<uint64_t>(tasks) << 16, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(p.m);
    p.posted.store(job, std::memory_order_release);
  }
  p.cv.notify_one();
  p.work(job);
  while (p.finished.load(std::memory_order_acquire) != tasks) cpu_relax();
  return true;
}

int cut(int64_t n, int64_t unit, int parts, int64_t* bounds) {
  const int64_t units = (n + unit - 1) / unit;
  const int count = static_cast<int>(units < parts ? units : parts);
  for (int i = 0; i <= count; i++) {
    const int64_t b = units * i / count * unit;
    bounds[i] = b < n ? b : n;
  }
  return count;
}

}  // namespace papo
