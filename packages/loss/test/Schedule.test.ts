import assert from "node:assert/strict"
import { test } from "node:test"
import { Schedule } from "../src/index.js"

const annealing: Schedule.KlPrcpSchedule = { kind: "annealing", klPrcpCoef: 0.02, startValue: 0.01, endValue: 0, annealingRatio: 0.5, trainingSteps: 10 }

test("annealing is linear from start to end over ⌊steps·ratio⌋ steps, then stays at the end", () => {
  assert.equal(Schedule.annealingTotalSteps(annealing), 5)
  const coefs = [1, 2, 3, 6, 7].map((k) => Schedule.klPrcpCoefAt(annealing, k).coef)
  assert.deepEqual(coefs.map((c) => Math.round(c * 1e6) / 1e6), [0.01, 0.008, 0.006, 0, 0])
})

test("the discount is γ_k over the configured γ, and exactly 1 when they are equal", () => {
  assert.equal(Schedule.klPrcpCoefAt(annealing, 1).discountRatio, 0.5)
  assert.equal(Schedule.klPrcpCoefAt({ kind: "fixed", klPrcpCoef: 0.02 }, 9).discountRatio, 1)
  assert.equal(Schedule.annealingTotalSteps({ kind: "fixed", klPrcpCoef: 0.02 }), null)
})

test("steps are 1-based", () => {
  assert.throws(() => Schedule.klPrcpCoefAt(annealing, 0), /step must be an integer ≥ 1, got 0/)
})
