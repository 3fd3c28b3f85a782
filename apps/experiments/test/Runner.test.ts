import assert from "node:assert/strict"
import { test } from "node:test"
import type { Evaluate } from "@papo/trainer"
import { checksText, warmStartChecks } from "../src/Runner.js"

/** A warm start's evaluation with only what the checks read: uncued accuracy and conflict prior-following. */
const evalWith = (uncued: number, prior: number) =>
  ({ subsets: { uncued: { accuracy: uncued }, conflict: { priorRate: prior } } }) as unknown as Evaluate.EvalResult

const thresholds = { canSee: 0.8, followsPrior: 0.6, followsPriorMax: 0.9 }

test("warm-start checks: valid only when it can see and follows the cue within the band", () => {
  assert.equal(warmStartChecks(evalWith(0.96, 0.755), thresholds).valid, true)
  assert.equal(warmStartChecks(evalWith(0.79, 0.755), thresholds).valid, false, "cannot see")
  assert.equal(warmStartChecks(evalWith(0.96, 0.55), thresholds).valid, false, "no shortcut")
  assert.equal(warmStartChecks(evalWith(0.985, 0.995), thresholds).valid, false, "so much prior that RL never samples a correct reading")
  assert.equal(warmStartChecks(evalWith(0.985, 0.995), { canSee: 0.8, followsPrior: 0.6 }).valid, true, "no upper bound unless asked")
  assert.equal(warmStartChecks({ subsets: {} } as unknown as Evaluate.EvalResult, thresholds).valid, false, "missing subsets")
})

test("warm-start checks in words name each figure and its bounds", () => {
  const text = checksText(warmStartChecks(evalWith(0.96, 0.755), thresholds))
  assert.match(text, /uncued accuracy 96\.0% \(needs ≥ 80\.0%/)
  assert.match(text, /follow the cue 75\.5% \(needs 60\.0% … 90\.0%/)
})
