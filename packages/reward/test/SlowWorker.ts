/**
 * A pool worker for tests: a response of the form `spin:<ms>` busy-waits that long on the worker thread
 * (a deterministic slow verification, independent of the grader's speed); anything else is graded as
 * usual.
 */
import { handle, serve } from "../src/internal/Serve.js"

serve((req) => {
  const m = /^spin:(\d+)$/.exec(req.response)
  if (m === null) return handle(req)
  const until = performance.now() + Number(m[1])
  while (performance.now() < until) {
    // a synchronous step the worker cannot interrupt
  }
  return handle({ ...req, response: "\\boxed{0}" })
})
