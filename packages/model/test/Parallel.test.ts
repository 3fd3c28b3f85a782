import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { Wasm } from "@papo/kernels"
import { PapoLoss } from "@papo/loss"
import { Config, Optimizer, Parallel, Policy } from "../src/index.js"
import { Xoshiro128 } from "@papo/random"
import { randomBatch, setup } from "./helpers.js"

before(setup)
const c = Config.configs.tiny

test("a worker replica gives the same log-probs and the same train step as one thread, and stays bit-identical", async () => {
  const policy = Policy.create(c, 0), single = Policy.create(c, 0)
  const ref = Policy.reference(policy)
  const opt = Optimizer.adamW(policy, { lr: 1e-2 }), optSingle = Optimizer.adamW(single, { lr: 1e-2 })
  const team = await Parallel.start(policy, { reference: ref, optimizer: opt })
  try {
    const n = 6
    const { images, promptIds } = randomBatch(c, n, 2, 1)
    const r = await Parallel.sample(team, images, promptIds, { groupSize: 1, maxNewTokens: 3, padId: 0, stopTokens: [1] }, new Xoshiro128(2))
    assert.deepEqual(r.responseIds.shape, [n, 3])
    const batch = { images, promptIds, responseIds: r.responseIds }
    const old = await Parallel.logProbs(team, "policy", batch)
    const expected = Policy.logProbs(single, batch)
    const a = old.dataSync(), e = expected.dataSync()
    a.forEach((x, i) => assert.ok(Math.abs(x - e[i]!) < 1e-5, `row-split log-prob ${i}: ${x} vs ${e[i]}`))
    const refLp = await Parallel.logProbs(team, "reference", batch)
    const advantages = tf.tidy(() => tf.mul(tf.tensor2d([1, -1, 0.5, -0.5, 2, -2], [n, 1]), r.responseMask))
    const inputs = { oldLogProbs: old, advantages, responseMask: r.responseMask, refLogProbs: refLp, maskedLogProbs: null }
    const config = PapoLoss.presets.grpo
    const tensors = tf.memory().numTensors
    const extra = await Parallel.logProbs(team, "reference", batch)
    extra.dispose()
    for (let s = 0; s < 3; s++) {
      const got = await Parallel.step(team, batch, inputs, config)
      const want = Optimizer.applyGradients(single, optSingle, () => PapoLoss.papoLoss({ ...inputs, logProbs: Policy.logProbs(single, batch) }, config).loss)
      assert.ok(Math.abs(got.gradNorm - want.gradNorm) < 1e-4 * want.gradNorm + 1e-6, `grad norm ${got.gradNorm} vs ${want.gradNorm}`)
      assert.ok(Math.abs(got.loss - want.loss) < 1e-5, `loss ${got.loss} vs ${want.loss}`)
    }
    assert.equal(tf.memory().numTensors, tensors, "no tensor leak")
    const w = Policy.getWeights(policy), ws = Policy.getWeights(single), ww = await Parallel.workerWeights(team)
    for (const k of Object.keys(w)) {
      assert.deepEqual(ww[k], w[k], `replica ${k} differs`)
      w[k]!.forEach((x, i) => assert.ok(Math.abs(x - ws[k]![i]!) < 1e-4, `${k}[${i}] ${x} vs ${ws[k]![i]}`))
    }
    tf.dispose([images, promptIds, r.responseIds, r.responseMask, old, expected, refLp, advantages])
  } finally {
    await Parallel.stop(team)
  }
})

test("a worker replica pays only where the native kernels do not already use both cores", async () => {
  assert.equal(Parallel.pays(), !Wasm.isInstalled())
  await tf.setBackend("cpu")
  assert.equal(Parallel.pays(), true)
  await tf.setBackend("wasm")
})
