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
      const got = await Parallel.step(team, [{ batch, inputs }], { name: "papo", config })
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

/** Rows [s, e) of every tensor of a micro-batch. */
const rows = (m: Parallel.MicroBatch, s: number, e: number): Parallel.MicroBatch => {
  const cut = (t: tf.Tensor) => tf.slice(t, [s, ...t.shape.slice(1).map(() => 0)], [e - s, ...t.shape.slice(1)])
  return {
    batch: { images: cut(m.batch.images) as tf.Tensor4D, promptIds: cut(m.batch.promptIds) as tf.Tensor2D, responseIds: cut(m.batch.responseIds) as tf.Tensor2D },
    inputs: Object.fromEntries(Object.entries(m.inputs).map(([k, t]) => [k, t == null ? null : cut(t)])) as unknown as Parallel.MicroBatch["inputs"]
  }
}

/** A batch of 7 rows with ragged response masks, old/ref/masked log-probs and masked images. */
const lossBatch = (policy: Policy.Policy): Parallel.MicroBatch => {
  const n = 7, t = 4
  const { images, promptIds } = randomBatch(c, n, 2, 3)
  const rng = new Xoshiro128(4)
  const responseIds = tf.tensor2d(Int32Array.from({ length: n * t }, () => rng.nextUint32() % c.vocabSize), [n, t], "int32")
  const lengths = [4, 1, 3, 2, 4, 4, 1]
  const responseMask = tf.tensor2d(Float32Array.from({ length: n * t }, (_, i) => (i % t < lengths[Math.floor(i / t)]! ? 1 : 0)), [n, t])
  const batch = { images, promptIds, responseIds }
  const maskedImages = tf.tidy(() => tf.mul(images, tf.tensor4d(Float32Array.from({ length: images.size }, (_, i) => (i % 3 === 0 ? 0 : 1)), images.shape)))
  const old = Policy.logProbs(policy, batch)
  return {
    batch,
    inputs: {
      responseMask,
      oldLogProbs: tf.tidy(() => tf.add(old, 0.05)),
      advantages: tf.tidy(() => tf.mul(tf.tensor2d([1.5, -1, 0.5, -0.5, 2, -2, 0.25], [n, 1]), responseMask)),
      refLogProbs: tf.tidy(() => tf.sub(old, 0.1)),
      maskedImages
    }
  }
}

for (const loss of [
  { name: "papo", config: { ...PapoLoss.presets["papo-d"], useKlLoss: true, recomputeMaskedLogProbs: true }, klPrcpCoef: 0.004 },
  { name: "sft" }
] satisfies ReadonlyArray<Parallel.LossSpec>) {
  test(`one thread and two agree on ${loss.name} updates with micro-batches (loss and grad norm to 1e-5 relative, weights to 1e-5)`, async () => {
    const policy = Policy.create(c, 5), single = Policy.create(c, 5)
    const opt = Optimizer.adamW(policy, { lr: 1e-2 }), optSingle = Optimizer.adamW(single, { lr: 1e-2 })
    const team = await Parallel.start(policy, { optimizer: opt })
    const solo = Parallel.local(single, { optimizer: optSingle })
    const whole = lossBatch(single)
    // Three micro-batches of 3, 3 and 1 rows: the last stays on the main thread.
    const micro = [rows(whole, 0, 3), rows(whole, 3, 6), rows(whole, 6, 7)]
    try {
      for (let s = 0; s < 2; s++) {
        const two = await Parallel.step(team, micro, loss)
        const one = await Parallel.step(solo, micro, loss)
        const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b) + 1e-6, `${what}: ${a} vs ${b}`)
        close(two.loss, one.loss, "loss")
        close(two.gradNorm, one.gradNorm, "grad norm")
        for (const k of Object.keys(one.metrics)) close(two.metrics[k]!, one.metrics[k]!, k)
        assert.ok(Number.isFinite(one.loss) && one.gradNorm > 0)
      }
      const w = Policy.getWeights(policy), ws = Policy.getWeights(single), ww = await Parallel.workerWeights(team)
      for (const k of Object.keys(w)) {
        assert.deepEqual(ww[k], w[k], `replica ${k} differs`)
        w[k]!.forEach((x, i) => assert.ok(Math.abs(x - ws[k]![i]!) < 1e-5, `${k}[${i}] ${x} vs ${ws[k]![i]}`))
      }
    } finally {
      Parallel.disposeMicroBatches([whole, ...micro])
      await Parallel.stop(team)
    }
  })
}

test("sft is token cross-entropy: the loss is the mean over micro-batches of each one's mean NLL of its response tokens", async () => {
  const policy = Policy.create(c, 6)
  const solo = Parallel.local(policy, { optimizer: Optimizer.adamW(policy, { lr: 1e-2 }) })
  const whole = lossBatch(policy)
  const micro = [rows(whole, 0, 4), rows(whole, 4, 7)]
  // By hand from the per-token log-probs: −Σ mask·ℓ / Σ mask per micro-batch, then the mean of the two.
  const nll = (m: Parallel.MicroBatch) => {
    const lp = Policy.logProbs(policy, m.batch)
    const l = lp.dataSync(), mask = m.inputs.responseMask.dataSync()
    lp.dispose()
    let sum = 0, tokens = 0
    mask.forEach((x, i) => {
      sum -= x * l[i]!
      tokens += x
    })
    return sum / tokens
  }
  const expected = (nll(micro[0]!) + nll(micro[1]!)) / 2
  const before = Policy.getWeights(policy)
  try {
    const r = await Parallel.step(solo, micro, { name: "sft" })
    assert.ok(Math.abs(r.loss - expected) < 1e-5 * expected, `loss ${r.loss} vs ${expected}`)
    assert.ok(Math.abs(r.metrics["sft/loss"]! - expected) < 1e-5 * expected, `metric ${r.metrics["sft/loss"]} vs ${expected}`)
    const after = Policy.getWeights(policy)
    assert.ok(Object.keys(after).some((k) => after[k]!.some((x, i) => x !== before[k]![i])), "the weights moved")
    assert.ok((nll(micro[0]!) + nll(micro[1]!)) / 2 < expected, "the loss on the same batch went down")
    await assert.rejects(Parallel.step(solo, micro, { name: "ppo" } as unknown as Parallel.LossSpec), /unknown loss "ppo"; valid: papo, sft/)
  } finally {
    Parallel.disposeMicroBatches([whole, ...micro])
  }
})

test("a worker replica pays only where the native kernels do not already use both cores", async () => {
  assert.equal(Parallel.pays(), !Wasm.isInstalled())
  await tf.setBackend("cpu")
  assert.equal(Parallel.pays(), true)
  await tf.setBackend("wasm")
})
