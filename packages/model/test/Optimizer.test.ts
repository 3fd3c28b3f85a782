import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { Config, Optimizer, Policy, Sampling } from "../src/index.js"
import { Xoshiro128 } from "@papo/random"
import { randomBatch, setup } from "./helpers.js"

before(setup)
const c = Config.configs.tiny

test("learning-rate schedules: constant, linear warm-up, cosine to minRatio", () => {
  assert.equal(Optimizer.lrMultiplier({ kind: "constant" }, 123), 1)
  assert.deepEqual([0, 1, 3, 9].map((k) => Optimizer.lrMultiplier({ kind: "warmup", warmupSteps: 4 }, k)), [0.25, 0.5, 1, 1])
  const cos = { kind: "cosine", warmupSteps: 2, totalSteps: 12, minRatio: 0.1 } as const
  assert.equal(Optimizer.lrMultiplier(cos, 0), 0.5)
  assert.equal(Optimizer.lrMultiplier(cos, 2), 1)
  assert.ok(Math.abs(Optimizer.lrMultiplier(cos, 7) - 0.55) < 1e-12) // halfway: 0.1 + 0.9·0.5
  assert.ok(Math.abs(Optimizer.lrMultiplier(cos, 12) - 0.1) < 1e-12)
  assert.ok(Math.abs(Optimizer.lrMultiplier(cos, 50) - 0.1) < 1e-12)
})

test("one AdamW step matches the hand-computed update, with clipping and decoupled weight decay", () => {
  const policy = Policy.create(c, 0)
  const opt = Optimizer.adamW(policy, { lr: 0.1, weightDecay: 0.5, maxGradNorm: 1 })
  const before = Policy.getWeights(policy)
  const d = c.dModel
  // loss = Σ 3·ln_f.bias  → gradient 3 everywhere on ln_f.bias, 0 elsewhere; norm 3√d > 1, so clipped.
  const r = Optimizer.applyGradients(policy, opt, () => tf.mul(tf.sum(policy.params["ln_f.bias"]!), 3) as tf.Scalar)
  assert.ok(Math.abs(r.gradNorm - 3 * Math.sqrt(d)) < 1e-4)
  assert.equal(r.skipped, false)
  assert.equal(r.lr, 0.1)
  const after = Policy.getWeights(policy)
  // Adam's first step is lr·sign(g) whatever the scale (clipping included): θ ← θ(1 − lr·wd) − lr·ĝ/(|ĝ| + ε).
  after["ln_f.bias"]!.forEach((x, i) => assert.ok(Math.abs(x - (before["ln_f.bias"]![i]! * 0.95 - 0.1)) < 1e-6))
  after["token_embed"]!.forEach((x, i) => assert.ok(Math.abs(x - before["token_embed"]![i]! * 0.95) < 1e-7))
  const st = Optimizer.getState(opt)
  const g = 3 / (3 * Math.sqrt(d) + 1e-6) // clipped gradient
  assert.ok(Math.abs(st.m["ln_f.bias"]![0]! - 0.1 * g) < 1e-7)
  assert.ok(Math.abs(st.v["ln_f.bias"]![0]! - 0.001 * g * g) < 1e-9)
  Optimizer.dispose(opt)
  Policy.dispose(policy)
})

test("a step with a non-finite gradient norm is skipped and counted; weights and moments unchanged", () => {
  const policy = Policy.create(c, 1)
  const opt = Optimizer.adamW(policy, { lr: 0.1 })
  const w0 = Policy.getWeights(policy)
  const r = Optimizer.applyGradients(policy, opt, () => tf.mul(tf.sum(policy.params["ln_f.bias"]!), NaN) as tf.Scalar)
  assert.equal(r.skipped, true)
  assert.ok(Number.isNaN(r.gradNorm))
  assert.equal(opt.skippedSteps, 1)
  assert.equal(opt.step, 1)
  assert.deepEqual(Policy.getWeights(policy), w0)
  assert.ok(Optimizer.getState(opt).m["ln_f.bias"]!.every((x) => x === 0))
  const ref = Policy.reference(policy)
  assert.throws(() => Optimizer.adamW(ref, { lr: 1 }), /frozen reference/)
  Optimizer.dispose(opt)
  Policy.dispose(policy)
  Policy.dispose(ref)
})

test("no tensor leaks over many rollout + train steps", () => {
  const policy = Policy.create(c, 2)
  const ref = Policy.reference(policy)
  const opt = Optimizer.adamW(policy, { lr: 1e-3 })
  const { images, promptIds } = randomBatch(c, 2, 2, 3)
  const rng = new Xoshiro128(4)
  const step = (): void => {
    const r = Sampling.sample(policy, images, promptIds, { groupSize: 2, maxNewTokens: 3, padId: 0, stopTokens: [1] }, rng)
    const rep = tf.tidy(() => {
      const idx = tf.tensor1d([0, 0, 1, 1], "int32")
      return { images: tf.gather(images, idx), promptIds: tf.gather(promptIds, idx) }
    })
    const batch = { ...rep, responseIds: r.responseIds }
    const refLp = Policy.logProbs(ref, batch)
    const out = Optimizer.applyGradients(policy, opt, () => {
      const lp = Policy.logProbs(policy, batch)
      const kl = tf.mean(tf.sub(lp, refLp))
      return { loss: tf.add(Policy.sftLoss(policy, batch, r.responseMask), kl) as tf.Scalar, metrics: { kl } }
    })
    assert.ok(Number.isFinite(out.metrics["kl"]))
    tf.dispose([r.responseIds, r.responseMask, rep.images, rep.promptIds, refLp])
  }
  step()
  const start = tf.memory().numTensors
  for (let i = 0; i < 25; i++) step()
  assert.equal(tf.memory().numTensors, start)
  tf.dispose([images, promptIds])
  Optimizer.dispose(opt)
  Policy.dispose(policy)
  Policy.dispose(ref)
})

test("a tiny model learns an image → token mapping to 100% within a few hundred steps", () => {
  // Four images, each with one bright 4×4 quadrant k; the answer is token 4 + k, then EOS (1).
  const n = 4
  const px = new Float32Array(n * 64)
  for (let k = 0; k < n; k++) {
    const qy = Math.floor(k / 2) * 4, qx = (k % 2) * 4
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) px[k * 64 + (qy + y) * 8 + qx + x] = 1
  }
  const images = tf.tensor4d(px, [n, 8, 8, 1])
  const promptIds = tf.tensor2d(Int32Array.from({ length: n * 2 }, () => 2), [n, 2], "int32") // same prompt for all
  const responseIds = tf.tensor2d(Int32Array.from({ length: n * 2 }, (_, i) => (i % 2 === 0 ? 4 + i / 2 : 1)), [n, 2], "int32")
  const mask = tf.ones([n, 2])
  const policy = Policy.create(c, 11)
  const opt = Optimizer.adamW(policy, { lr: 3e-3, weightDecay: 0, schedule: { kind: "warmup", warmupSteps: 10 } })
  const accuracy = (): number => {
    const r = Sampling.sample(policy, images, promptIds, { groupSize: 1, maxNewTokens: 2, padId: 0, temperature: 0, stopTokens: [1] }, new Xoshiro128(0))
    tf.dispose([r.responseIds, r.responseMask])
    let ok = 0
    for (let k = 0; k < n; k++) if (r.ids[k * 2] === 4 + k && r.ids[k * 2 + 1] === 1) ok++
    return ok / n
  }
  assert.ok(accuracy() < 1, "the untrained model is not already right")
  let steps = 0
  let acc = 0
  while (steps < 400) {
    for (let i = 0; i < 20; i++, steps++) Optimizer.applyGradients(policy, opt, () => Policy.sftLoss(policy, { images, promptIds, responseIds }, mask))
    acc = accuracy()
    if (acc === 1) break
  }
  assert.equal(acc, 1, `accuracy ${acc} after ${steps} steps`)
  tf.dispose([images, promptIds, responseIds, mask])
  Optimizer.dispose(opt)
  Policy.dispose(policy)
})
