import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { PolicyLoss } from "../src/index.js"
import { assertNoLeak, batch, close, read, t2 } from "./arbitraries.js"

const config: PolicyLoss.PolicyLossConfig = { clipRatioLow: 0.2, clipRatioHigh: 0.3, clipRatioDual: 3, lossAggMode: "token" }
const broadcast = (rowAdvantages: Array<number>, mask: Array<Array<number>>) =>
  mask.map((r, i) => r.map((m) => m * rowAdvantages[i]!))

test("with logProbs = oldLogProbs the token-mean surrogate equals −mean(advantage) over valid tokens", () => {
  fc.assert(
    fc.property(batch, ({ logProbs, rowAdvantages, mask }) => {
      const adv = broadcast(rowAdvantages, mask)
      const out = PolicyLoss.policyLoss({ logProbs: t2(logProbs), oldLogProbs: t2(logProbs), advantages: t2(adv), responseMask: t2(mask) }, config)
      const n = mask.flat().filter((m) => m === 1).length
      const mean = adv.flat().reduce((a, b) => a + b, 0) / n
      close(read(out.pgLoss), -mean, 1e-5)
      assert.equal(read(out.metrics.pg_clipfrac_higher), 0)
      assert.equal(read(out.metrics.ppo_kl), 0)
    }),
    { numRuns: 40 }
  )
})

test("clipping never gives a gradient through a token whose ratio is outside the range in the direction its advantage favours", () => {
  fc.assert(
    fc.property(batch, ({ logProbs, other, rowAdvantages, mask }) => {
      const adv = broadcast(rowAdvantages, mask)
      const rest = { oldLogProbs: t2(other), advantages: t2(adv), responseMask: t2(mask) }
      const g = tf.grad((lp: tf.Tensor) => PolicyLoss.policyLoss({ logProbs: lp, ...rest }, config).pgLoss)(t2(logProbs))
      const grad = g.arraySync() as Array<Array<number>>
      logProbs.forEach((row, i) =>
        row.forEach((lp, j) => {
          const ratio = Math.exp(Math.fround(lp) - Math.fround(other[i]![j]!))
          const a = adv[i]![j]!
          const beyond = (a > 0 && ratio > 1.3 * (1 + 1e-5)) || (a < 0 && ratio < 0.8 * (1 - 1e-5))
          if (beyond) assert.equal(grad[i]![j], 0, `ratio ${ratio}, advantage ${a}`)
        })
      )
    }),
    { numRuns: 60 }
  )
})

test("the dual clip caps a negative-advantage token's loss at −A·C", () => {
  // ratio e^3 ≈ 20 with A = −1: L1 = 20, capped at 3; the token counts in pg_clipfrac_lower.
  const out = PolicyLoss.policyLoss({ logProbs: t2([[0]]), oldLogProbs: t2([[-3]]), advantages: t2([[-1]]), responseMask: t2([[1]]) }, config)
  close(read(out.pgLoss), 3)
  assert.equal(read(out.metrics.pg_clipfrac_lower), 1)
})

test("pg_clipfrac_higher counts low-side clipping of negative advantages too, as the reference does", () => {
  const out = PolicyLoss.policyLoss(
    { logProbs: t2([[-2, 0]]), oldLogProbs: t2([[-1, 0]]), advantages: t2([[-1, 1]]), responseMask: t2([[1, 1]]) },
    config
  )
  close(read(out.metrics.pg_clipfrac_higher), 0.5)
})

test("the policy loss leaves no tensor behind", () => {
  const x = [t2([[-1, -2]]), t2([[-1.5, -2]]), t2([[1, 1]]), t2([[1, 0]])] as const
  assertNoLeak(() => PolicyLoss.policyLoss({ logProbs: x[0], oldLogProbs: x[1], advantages: x[2], responseMask: x[3] }, config))
  tf.dispose([...x])
})
