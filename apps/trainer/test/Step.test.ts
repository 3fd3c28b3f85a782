import assert from "node:assert/strict"
import { test } from "node:test"
import { PapoLoss } from "@papo/loss"
import { Optimizer, Parallel, Policy } from "@papo/model"
import { Rng } from "@papo/random"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { lossConfig } from "../src/Config.js"
import { classify } from "../src/Example.js"
import * as Experience from "../src/Experience.js"
import * as Session from "../src/Session.js"
import * as Step from "../src/Step.js"
import * as Update from "../src/Update.js"
import { Verifier } from "../src/Verifier.js"
import { fixture, session, warmUp } from "./helpers.js"

const initialState = (seed: number): Step.StepState => ({
  step: 0,
  cursor: 0,
  samplingRng: Rng.makeXoshiro(seed, "sampling"),
  maskRng: Rng.make(seed, "masks"),
  nonFiniteStreak: 0
})

/** The PAPO loss of a batch at the session's current weights, against the given experience: Σ over micro-batches of loss / count. */
const lossOn = (s: Session.Session, config: Parameters<typeof lossConfig>[0], out: Step.StepOutput, exp: Experience.Experience, gamma: number): number => {
  const micro = Update.microBatches(s, config, out.batch, exp, out.advantages, 0, out.batch.rows.n)
  const loss = tf.tidy(() =>
    tf.addN(micro.map((m) =>
      PapoLoss.papoLoss({
        logProbs: Policy.logProbs(s.policy, m.batch, config.worker.rollout.temperature),
        oldLogProbs: m.inputs.oldLogProbs!,
        advantages: m.inputs.advantages!,
        responseMask: m.inputs.responseMask,
        refLogProbs: m.inputs.refLogProbs ?? null,
        maskedLogProbs: m.inputs.maskedLogProbs ?? null,
        klPrcpCoef: gamma
      }, lossConfig(config, micro.length)).loss
    ))
  )
  const value = loss.dataSync()[0]!
  loss.dispose()
  Parallel.disposeMicroBatches(micro)
  return value
}

test("a PAPO-G step moves the parameters and lowers the PAPO loss on its own batch (2 micro-batches)", async () => {
  // One optimizer step per training step (globalBatchSize = rolloutBatchSize), two micro-batches of 8 rows.
  const f = await fixture(["preset=papo-g"])
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const s = yield* session(f)
    yield* Effect.promise(() => warmUp(s, f, 30))
    const before = Policy.getWeights(s.policy)
    const out = yield* Step.trainStep(s, f.config, f.train, initialState(1), classify)
    assert.equal(out.state.step, 1)
    assert.equal(out.state.cursor, f.config.data.rolloutBatchSize)
    assert.equal(out.batch.rows.n, 16)
    assert.equal(out.metrics["actor/non_finite_updates"], 0)
    assert.ok(out.advantages.some((a) => a !== 0), "the warm start gives groups with mixed rewards")
    for (const stage of ["mask", "gen", "reward", "adv", "old", "aug", "ref", "update_actor", "step"]) {
      assert.ok(out.metrics[`timing_s/${stage}`]! >= 0, `timing_s/${stage}`)
    }
    const after = Policy.getWeights(s.policy)
    assert.ok(Object.keys(after).some((k) => after[k]!.some((x, i) => x !== before[k]![i])), "the parameters moved")
    // θ_old again, in a copy: the experience of the step's batch, and the loss there and at the new weights.
    const old = Policy.create(s.modelConfig, 0)
    Policy.setWeights(old, before)
    const oldSession = Session.make({ ...s, policy: old, optimizer: Optimizer.adamW(old, { lr: 0 }) })
    const exp = yield* Experience.experience(oldSession, f.config, out.batch, {})
    const gamma = f.config.algorithm.klPrcpCoef
    const lossBefore = lossOn(oldSession, f.config, out, exp, gamma)
    const lossAfter = lossOn(s, f.config, out, exp, gamma)
    assert.ok(Math.abs(lossBefore - out.metrics["actor/pg_loss"]!) < 1e-5, `the logged loss ${out.metrics["actor/pg_loss"]} is the loss at θ_old ${lossBefore}`)
    assert.ok(lossAfter < lossBefore, `loss on the step's batch: ${lossBefore} → ${lossAfter}`)
    Optimizer.dispose(oldSession.optimizer)
    Policy.dispose(old)
  })).pipe(Effect.provide(Verifier.mathRuler)))
})

test("DAPO's dynamic sampling gives up with a tagged error carrying its tries", async () => {
  // Rounds of 2 prompts for a batch of 4: one round (all it may try) cannot fill it, whatever it keeps.
  const f = await fixture(["preset=dapo", "algorithm.maxTryMakeBatch=1", "data.miniRolloutBatchSize=2"])
  const error = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const s = yield* session(f)
    return yield* Effect.flip(Step.trainStep(s, f.config, f.train, initialState(1), classify))
  })).pipe(Effect.provide(Verifier.mathRuler)))
  assert.equal(error._tag, "DynamicSamplingError")
  assert.deepEqual([error.numTries, error.maxTryMakeBatch], [1, 1])
  assert.match(error.message, /after 1 chunks \(algorithm\.maxTryMakeBatch = 1\)/)
})

test("γ follows the configured schedule: fixed, or annealed linearly from startValue to endValue over annealingRatio of the run", async () => {
  const fixed = (await fixture(["preset=papo-g"])).config
  assert.deepEqual([1, 50, 100].map((s) => Step.klPrcpCoefAt(fixed, s)), [0.02, 0.02, 0.02])
  const annealed = (await fixture(["preset=papo-g", "algorithm.klPrcpSchedule=annealing", "trainer.maxSteps=100"])).config
  // Defaults: 0.01 → 0 over ⌊100·0.5⌋ = 50 steps; step k has (k − 1)/50 of the way done.
  const gammas = [1, 26, 51, 100].map((s) => Step.klPrcpCoefAt(annealed, s))
  ;[0.01, 0.005, 0, 0].forEach((want, i) => assert.ok(Math.abs(gammas[i]! - want) < 1e-12, `step ${[1, 26, 51, 100][i]}: ${gammas[i]} vs ${want}`))
})
