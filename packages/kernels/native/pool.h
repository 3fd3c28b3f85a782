// One persistent helper thread: part 0 of a job runs on the caller, part 1 on the helper.
#pragma once

namespace papo {

// Runs fn(arg, 0) on the calling thread and fn(arg, 1) on the helper, and returns when both are done.
// Returns false without running anything when another thread is using the helper (the caller then runs both parts).
bool pool_run(void (*fn)(void*, int), void* arg);

}  // namespace papo
