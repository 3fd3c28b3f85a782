import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { PapoLoss } from "../src/index.js"
import { assertNoLeak, close, mask, read, shape, t2 } from "./arbitraries.js"

/**
 * A batch away from every kink of the loss: |ℓ − ℓ_old| < 1 (below the dual clip's log 3), |a − ℓ| and
 * |ℓ_ref − ℓ| < 2 (below the k3 value clamp at d ≈ 2.53), so central differences are meaningful.
 */
const smoothBatch = shape.chain(({ b, t }) => {
  const m = (lo: number, hi: number) =>
    fc.array(fc.array(fc.double({ min: lo, max: hi, noNaN: true }), { minLength: t, maxLength: t }), { minLength: b, maxLength: b })
  return fc.record({
    logProbs: m(-3, -0.5),
    dOld: m(-0.9, 0.9),
    dRef: m(-1.9, 1.9),
    dMasked: m(-1.9, 1.9),
    rowAdvantages: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: b, maxLength: b }),
    mask: mask(b, t)
  })
})

const presetNames = Object.keys(PapoLoss.presets) as Array<PapoLoss.PresetName>

test("the gradient of the total loss with respect to logProbs matches central finite differences", () => {
  fc.assert(
    fc.property(smoothBatch, fc.constantFrom(...presetNames), fc.constantFrom("token", "seq") , (x, preset, mode) => {
      const config = { ...PapoLoss.presets[preset], lossAggMode: mode as "token" | "seq" }
      const shift = (d: Array<Array<number>>) => x.logProbs.map((r, i) => r.map((v, j) => v + d[i]![j]!))
      const fixed = {
        oldLogProbs: t2(shift(x.dOld)),
        refLogProbs: t2(shift(x.dRef)),
        maskedLogProbs: t2(shift(x.dMasked)),
        advantages: t2(x.mask.map((r, i) => r.map((v) => v * x.rowAdvantages[i]!))),
        responseMask: t2(x.mask)
      }
      const f = (lp: tf.Tensor) => PapoLoss.papoLoss({ logProbs: lp, ...fixed }, config).loss
      const grad = tf.grad(f)(t2(x.logProbs)).arraySync() as Array<Array<number>>
      const h = 1e-2
      const lo = Math.log(1 - config.clipRatioLow)
      const hi = Math.log(1 + config.clipRatioHigh)
      x.logProbs.forEach((row, i) =>
        row.forEach((_, j) => {
          const d = -x.dOld[i]![j]! // ℓ − ℓ_old
          if (Math.abs(d - lo) < 2 * h || Math.abs(d - hi) < 2 * h) return // a clip kink within the stencil
          const at = (e: number) => read(f(t2(x.logProbs.map((r, a) => r.map((v, b) => (a === i && b === j ? v + e : v))))))
          const numeric = (at(h) - at(-h)) / (2 * h)
          assert.ok(Math.abs(numeric - grad[i]![j]!) < 2e-3, `${preset}/${mode} [${i},${j}]: analytic ${grad[i]![j]}, numeric ${numeric}`)
        })
      )
      tf.dispose(Object.values(fixed))
    }),
    { numRuns: 15 }
  )
})

test("presets compose the terms of the paper's variants", () => {
  const x = { logProbs: t2([[-1, -2]]), oldLogProbs: t2([[-1.1, -2]]), advantages: t2([[1, 1]]), responseMask: t2([[1, 1]]), refLogProbs: t2([[-1.2, -1.9]]), maskedLogProbs: t2([[-1.5, -2.5]]) }
  const keys = (p: PapoLoss.PresetName) => Object.keys(PapoLoss.papoLoss(x, PapoLoss.presets[p]).metrics)
  assert.ok(keys("grpo").includes("actor/kl_loss") && keys("grpo").includes("actor/kl_prcp_loss"))
  assert.ok(!keys("dapo").includes("actor/kl_loss"))
  assert.ok(keys("papo-d").includes("actor/ori_entropy_loss"))
  // Without masked log-probs there is no PAPO branch, whatever the preset says.
  assert.ok(!Object.keys(PapoLoss.papoLoss({ ...x, maskedLogProbs: null }, PapoLoss.presets["papo-g"]).metrics).includes("actor/kl_prcp_loss"))
  // PAPO maximizes KL_prcp: the loss is lower than GRPO's by exactly γ·KL_prcp.
  const g = PapoLoss.papoLoss({ ...x, maskedLogProbs: null }, PapoLoss.presets["grpo"])
  const p = PapoLoss.papoLoss(x, PapoLoss.presets["papo-g"])
  close(read(p.pgLoss), read(g.pgLoss) - 0.02 * read(p.components.klPrcpLoss!))
  close(read(p.metrics["actor/kl_prcp_loss"]!), -read(p.components.klPrcpLoss!))
})

test("gradient accumulation divides the loss, not the logged pg_loss", () => {
  const x = { logProbs: t2([[-1, -2]]), oldLogProbs: t2([[-1.1, -2]]), advantages: t2([[1, 1]]), responseMask: t2([[1, 1]]) }
  const out = PapoLoss.papoLoss(x, { ...PapoLoss.presets.dapo, gradientAccumulation: 4 })
  close(read(out.loss), read(out.pgLoss) / 4)
  close(read(out.metrics["actor/pg_loss"]!), read(out.pgLoss))
  assert.throws(() => PapoLoss.papoLoss(x, { ...PapoLoss.presets.dapo, gradientAccumulation: 0 }), /gradientAccumulation must be an integer ≥ 1/)
})

test("the masked branch carries no gradient unless recompute is on", () => {
  const fixed = { logProbs: t2([[-1, -2]]), oldLogProbs: t2([[-1, -2]]), advantages: t2([[1, -1]]), responseMask: t2([[1, 1]]) }
  const g = (recompute: boolean) =>
    tf.grad((m: tf.Tensor) => tf.add(PapoLoss.papoLoss({ ...fixed, maskedLogProbs: m }, { ...PapoLoss.presets["papo-d"], recomputeMaskedLogProbs: recompute }).loss, 0))(
      t2([[-1.5, -2.5]])
    ).arraySync() as Array<Array<number>>
  assert.deepEqual(g(false).flat().map(Math.abs), [0, 0])
  assert.ok(g(true).flat().every((v) => v !== 0))
})

test("the total loss leaves no tensor behind, in every preset", () => {
  const x = { logProbs: t2([[-1, -2]]), oldLogProbs: t2([[-1.1, -2]]), advantages: t2([[1, 1]]), responseMask: t2([[1, 0]]), refLogProbs: t2([[-1.2, -1.9]]), maskedLogProbs: t2([[-1.5, -2.5]]) }
  for (const p of presetNames) {
    assertNoLeak(() => PapoLoss.papoLoss(x, PapoLoss.presets[p]))
    assertNoLeak(() => tf.grad((lp: tf.Tensor) => PapoLoss.papoLoss({ ...x, logProbs: lp }, PapoLoss.presets[p]).loss)(x.logProbs))
  }
  tf.dispose(Object.values(x))
})
