import assert from "node:assert/strict"
import { test } from "node:test"
import { Parallel } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import { Effect, Exit } from "effect"
import * as Rollout from "../src/Rollout.js"
import * as Session from "../src/Session.js"
import * as Sft from "../src/Sft.js"
import { fixture, session } from "./helpers.js"

test("a scoped session frees every tensor when its scope closes, after success and after a failure", async () => {
  const f = await fixture(["preset=grpo"])
  const baseline = tf.memory().numTensors
  const seen = await Effect.runPromise(Effect.scoped(Effect.map(session(f), (s) => ({ reference: s.reference !== null, tensors: tf.memory().numTensors }))))
  assert.ok(seen.reference, "grpo keeps a reference")
  assert.ok(seen.tensors > baseline, "the open session holds its weights")
  assert.equal(tf.memory().numTensors, baseline, "closed after success")
  const failed = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(session(f), () => Effect.fail("boom" as const))))
  assert.ok(Exit.isFailure(failed))
  assert.equal(tf.memory().numTensors, baseline, "closed after a failure")
})

test("opening from a missing checkpoint fails with a SessionError naming it", async () => {
  const f = await fixture()
  const error = await Effect.runPromise(Effect.flip(Effect.scoped(Session.acquire(f.config, {
    text: Session.textOf(f.config, f.train),
    init: "/nonexistent/papo-checkpoint",
    optim: { lr: 1e-3 },
    withReference: false
  }, 1))))
  assert.equal(error._tag, "SessionError")
  assert.equal(error.init, "/nonexistent/papo-checkpoint")
  assert.match(error.message, /^\/nonexistent\/papo-checkpoint: /)
})

test("two threads start a worker replica only on plain wasm (Parallel.pays), and either way give the log-probs of one thread", async () => {
  const f = await fixture()
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const one = yield* session(f, 1)
    const two = yield* session(f, 2)
    assert.equal(one.team.threads, 1)
    assert.equal(two.team.threads, Parallel.pays() ? 2 : 1)
    // Same seed, same weights; micro-batches of 3 rows against one pass of all 8.
    const rows = Sft.goldRows(one, f.config, Rollout.samplePrompts(f.train, 0, 8, 1), one.modelConfig.maxResponseLength)
    const whole = yield* Effect.promise(() => Session.logProbsOf(one, "policy", rows, { temperature: 1, microBatch: 8 }))
    const split = yield* Effect.promise(() => Session.logProbsOf(two, "policy", rows, { temperature: 1, microBatch: 3 }))
    whole.forEach((x, i) => assert.ok(Math.abs(x - split[i]!) < 1e-5, `log-prob ${i}: ${x} vs ${split[i]}`))
  })))
})
