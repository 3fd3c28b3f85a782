import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { PerceptionKl } from "../src/index.js"
import { assertNoLeak, batch, close, prcpConfig, read, t2 } from "./arbitraries.js"


test("KL_prcp uses the code's direction d = a − ℓ, and the update maximizes it", () => {
  // ℓ = −1, a = −2: d = −1, k3 = e^−1 + 1 − 1 = e^−1. The paper's ratio would give e − 2 instead.
  const out = PerceptionKl.perceptionKl({ logProbs: t2([[-1]]), maskedLogProbs: t2([[-2]]), responseMask: t2([[1]]), coef: 0.02 }, prcpConfig)
  close(read(out.klPrcpLoss), Math.exp(-1))
  close(read(out.loss), -0.02 * Math.exp(-1))
  close(read(out.metrics["actor/kl_prcp_loss"]), -Math.exp(-1))
})

test("per valid token, the gradient is −(γ/N)(1 − e^{a−ℓ}) away from the clamps", () => {
  fc.assert(
    fc.property(batch, ({ logProbs, other, mask }) => {
      const near = other.map((r, i) => r.map((v, j) => logProbs[i]![j]! + Math.max(-2, Math.min(2, v - logProbs[i]![j]!))))
      const g = tf.grad((lp: tf.Tensor) =>
        PerceptionKl.perceptionKl({ logProbs: lp, maskedLogProbs: t2(near), responseMask: t2(mask), coef: 0.02 }, prcpConfig).loss
      )(t2(logProbs)).arraySync() as Array<Array<number>>
      const n = mask.flat().filter((m) => m === 1).length
      g.forEach((r, i) => r.forEach((v, j) => {
        const d = Math.fround(near[i]![j]!) - Math.fround(logProbs[i]![j]!)
        close(v, mask[i]![j] === 1 ? -(0.02 / n) * (1 - Math.exp(d)) : 0, 1e-4)
      }))
    }),
    { numRuns: 30 }
  )
})

test("the token top-p mask keeps each row's tokens at or above its (1 − p) quantile of valid tokens", () => {
  // Row 0: valid KLs [1, 2, 3, 4, 5] (quantile 0.8 → 4.2): keeps 5. Row 1: no valid token: keeps nothing.
  const kl = t2([[1, 2, 3, 4, 5], [9, 9, 9, 9, 9]])
  const m = PerceptionKl.tokenTopPMask(kl, t2([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]), 0.2).arraySync()
  assert.deepEqual(m, [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]) // a bool tensor reads back as 0/1
})

test("clipping bounds the per-token KL to [0, c]", () => {
  const out = PerceptionKl.perceptionKl(
    { logProbs: t2([[-1, -1]]), maskedLogProbs: t2([[-4, -1.01]]), responseMask: t2([[1, 1]]), coef: 0.02 },
    { ...prcpConfig, useKlPrcpClipping: true }
  )
  const final = out.perTokenKlFinal.arraySync() as Array<Array<number>>
  assert.equal(final[0]![0], Math.fround(0.2))
  assert.ok(final[0]![1]! > 0 && final[0]![1]! < 0.2)
})

test("a per-row KL estimator is refused for the perception loss", () => {
  assert.throws(
    () => PerceptionKl.perceptionKl({ logProbs: t2([[-1]]), maskedLogProbs: t2([[-2]]), responseMask: t2([[1]]), coef: 0.02 }, { ...prcpConfig, klPrcpPenalty: "full" }),
    /gives one value per row/
  )
})

test("KL_prcp leaves no tensor behind, with every option on", () => {
  const x = { logProbs: t2([[-1, -2]]), maskedLogProbs: t2([[-2, -2.5]]), responseMask: t2([[1, 1]]), weighting: tf.tensor1d([1]), coef: 0.02 }
  assertNoLeak(() => PerceptionKl.perceptionKl(x, { ...prcpConfig, useKlPrcpClipping: true, useKlPrcpTokenLevelMask: true }))
})
