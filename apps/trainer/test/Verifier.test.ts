import assert from "node:assert/strict"
import { test } from "node:test"
import { Effect } from "effect"
import { type RewardConfig, Verifier } from "../src/Verifier.js"

// 2/4 against 1/2: MathRuler compares the strings after normalization (different), Math-Verify the values (equal).
const half = { response: "<think>2/4</think> \\boxed{\\frac{2}{4}}", answer: "\\frac{1}{2}" }

const gradeWith = (config: RewardConfig) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const verifier = yield* Verifier
      return { grades: yield* verifier.grade([half]), settings: verifier.settings }
    }).pipe(Effect.provide(Verifier.layer(config)))
  )

test("the layer grades with the mode its reward config names, and says which", async () => {
  const base = { formatWeight: 0.1, workers: 0, timeoutMs: 5000 }
  const mv = await gradeWith({ ...base, mode: "math-verify" })
  const mr = await gradeWith({ ...base, mode: "mathruler" })
  assert.deepEqual(mv.grades.map((g) => [g.verdict, g.accuracy]), [["Correct", 1]])
  assert.deepEqual(mr.grades.map((g) => [g.verdict, g.accuracy]), [["Incorrect", 0]])
  assert.equal(mv.settings.mode, "math-verify")
  assert.deepEqual(mr.settings, { ...base, mode: "mathruler" })
})
