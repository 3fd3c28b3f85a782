import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { initBackend } from "@papo/backend"
import { Entropy } from "../src/index.js"
import { assertNoLeak, close, read, t2 } from "./arbitraries.js"

test("log-probs of sampled tokens at a temperature, with a gradient, on the wasm backend (no tf.gather gradient there)", async () => {
  await initBackend("wasm")
  try {
    const logits = tf.tensor3d([[[1, 2, 3], [0, 0, 0]]])
    const ids = tf.tensor2d([[2, 0]], undefined, "int32")
    const lp = Entropy.logProbsFromLogits(logits, ids, 0.5).arraySync() as Array<Array<number>>
    const z = [2, 4, 6]
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0))
    close(lp[0]![0]!, 6 - lse)
    close(lp[0]![1]!, -Math.log(3))
    const g = tf.grad((l: tf.Tensor) => tf.sum(Entropy.logProbsFromLogits(l, ids, 0.5)))(logits).arraySync() as Array<Array<Array<number>>>
    // d log p_k / d logit_v = (1[v = k] − p_v) / T
    const p = z.map((v) => Math.exp(v - lse))
    g[0]![0]!.forEach((v, i) => close(v, ((i === 2 ? 1 : 0) - p[i]!) / 0.5))
  } finally {
    await initBackend("cpu")
  }
})

test("log-probs are normalized over the vocabulary", () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: 2, maxLength: 9 }), fc.double({ min: 0.3, max: 2, noNaN: true }), (row, temp) => {
      const logits = tf.tensor3d([[row]])
      const total = row.reduce((s, _, k) => s + Math.exp(read(Entropy.logProbsFromLogits(logits, tf.tensor2d([[k]], undefined, "int32"), temp))), 0)
      close(total, 1, 1e-5)
    }),
    { numRuns: 30 }
  )
})

test("the true entropy of a uniform distribution is log V", () => {
  close(read(Entropy.trueEntropy(tf.zeros([5]))), Math.log(5))
})

test("double entropy: token-mean always, the masked term detached, the discount applied to both", () => {
  const x = { logProbs: t2([[-1, -3], [-2, -9]]), maskedLogProbs: t2([[-2, -4], [-1, -9]]), responseMask: t2([[1, 1], [1, 0]]), discountRatio: 0.5 }
  const config = { useAugEntropyLoss: true, augEntropyLossCoef: 0.03, useOriEntropyLoss: true, oriEntropyLossCoef: 0.05 }
  const out = Entropy.doubleEntropy(x, config)
  close(read(out.entropyLoss), 2)
  close(read(out.augEntropyLoss!), 7 / 3)
  close(read(out.loss), 0.03 * 0.5 * (7 / 3) + 0.05 * 0.5 * 2)
  const g = tf.grad((lp: tf.Tensor) => Entropy.doubleEntropy({ ...x, logProbs: lp }, config).loss)(x.logProbs).arraySync() as Array<Array<number>>
  g.flat().forEach((v, i) => close(v, i === 3 ? 0 : -0.05 * 0.5 / 3))
  assert.deepEqual(Object.keys(out.metrics).sort(), [
    "actor/aug_entropy_loss", "actor/aug_entropy_loss_coef", "actor/kl_prcp_coef_annealing_discount", "actor/ori_entropy_loss", "actor/ori_entropy_loss_coef"
  ])
  assertNoLeak(() => Entropy.doubleEntropy(x, config))
})
