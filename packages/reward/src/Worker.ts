/**
 * The worker-thread side of `Pool`: grades one request at a time with the synchronous grader and posts
 * the result back. Not part of the public API.
 *
 * @internal
 */
import { parentPort } from "node:worker_threads"
import { grade, score } from "./Grader.js"
import type { PoolBatch, PoolResponse } from "./Pool.js"

const port = parentPort
if (port !== null) {
  port.on("message", (msg: PoolBatch) => {
    for (const req of msg.batch) {
      const reply: PoolResponse =
        req.kind === "score"
          ? { id: req.id, kind: "score", score: score(req.response, req.gold, req.options) }
          : { id: req.id, kind: "grade", outcome: grade(req.response, req.gold, req.options) }
      port.postMessage(reply)
    }
  })
  port.postMessage({ ready: true })
}
