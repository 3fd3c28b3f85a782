// One persistent helper thread sharing the tasks of a job with the caller.
#pragma once
#include <cstdint>

namespace papo {

// Runs fn(arg, t) for every task t < tasks (at most 65535), each exactly once, on the calling thread and the
// helper, which claim tasks in turn; returns when all are done. A helper that is late (asleep, or descheduled
// on a busy machine) leaves its tasks to the caller, which never waits for a task nobody has started.
// Returns false without running anything when another thread is using the helper.
bool pool_run(void (*fn)(void*, int), void* arg, int tasks);

// Cuts [0, n) into at most `parts` ranges whose inner boundaries are multiples of `unit`, writing the
// count + 1 boundaries to `bounds`; returns the count.
int cut(int64_t n, int64_t unit, int parts, int64_t* bounds);

// A spin-wait's pause: tells the core this is a busy-wait loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace papo
