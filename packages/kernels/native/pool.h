// One persistent helper thread sharing the tasks of a job with the caller.
#pragma once

namespace papo {

// Runs fn(arg, t) for every task t < tasks (at most 65535), each exactly once, on the calling thread and the
// helper, which claim tasks in turn; returns when all are done. A helper that is late (asleep, or descheduled
// on a busy machine) leaves its tasks to the caller, which never waits for a task nobody has started.
// Returns false without running anything when another thread is using the helper.
bool pool_run(void (*fn)(void*, int), void* arg, int tasks);

}  // namespace papo
