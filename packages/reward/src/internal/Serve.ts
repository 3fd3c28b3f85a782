/**
 * The worker-thread protocol of `Pool`: `handle` answers one request with the synchronous grader,
 * `serve` answers each request of a batch and posts each result back as soon as it has it.
 *
 * @internal
 */
import { isMainThread, parentPort } from "node:worker_threads"
import { grade, modes, score } from "../Grader.js"
import type { PoolBatch, PoolRequest, PoolResponse } from "../Pool.js"

/** Answers one request with the synchronous grader. */
export const handle = (req: PoolRequest): PoolResponse =>
  req.kind === "score"
    ? { id: req.id, kind: "score", score: score(req.response, req.gold, req.options) }
    : { id: req.id, kind: "grade", outcome: grade(req.response, req.gold, req.options) }

/** Serves the pool's messages with `answer` on this worker thread. */
export const serve = (answer: (req: PoolRequest) => PoolResponse): void => {
  const port = parentPort
  if (port === null || isMainThread) return
  port.on("message", (msg: PoolBatch) => {
    for (const req of msg.batch) port.postMessage(answer(req))
  })
  // the first grading in each mode warms the grader up (regexes, mathjs): before the first clock starts
  for (const mode of modes) grade("\\boxed{1}", "1", { mode })
  port.postMessage({ ready: true })
}
