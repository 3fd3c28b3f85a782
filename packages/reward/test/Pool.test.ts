import assert from "node:assert/strict"
import { after, describe, it } from "node:test"
import fc from "fast-check"
import { Grader, VerifierPool } from "../src/index.js"
import { junk } from "./arbitraries.js"

describe("VerifierPool", () => {
  const pool = VerifierPool.create({ size: 2, timeoutMs: 1500 })
  after(() => pool.close())

  it("grades a batch in input order, like the synchronous grader", async () => {
    const items = [
      { response: "<think>a</think> \\boxed{\\frac{2}{4}}", gold: "\\frac{1}{2}" },
      { response: "\\boxed{3}", gold: "3" },
      { response: "no answer", gold: "3" },
      { response: "\\boxed{\\{3,1\\}}", gold: "\\{1,3\\}" }
    ]
    for (const mode of Grader.modes) {
      const got = await pool.gradeBatch(items, { mode })
      assert.deepEqual(got, items.map((it) => Grader.grade(it.response, it.gold, { mode })))
    }
    const scores = await pool.scoreBatch(items, { mode: "mathruler" })
    assert.deepEqual(scores.map((s) => s.overall), [0.1, 0.9, 0, 0])
  })

  it("times out a deliberately slow verification and keeps serving", async () => {
    // Math-Verify's `\boxed{.+}` pattern is quadratic in unclosed boxes: ~seconds for 280k characters.
    const slow = "\\boxed{".repeat(40_000)
    const before = pool.counters.timedOut
    const [timedOut, ok] = await Promise.all([
      pool.grade(slow, "1", { mode: "math-verify" }),
      pool.grade("\\boxed{7}", "7", { mode: "math-verify" })
    ])
    assert.deepEqual(timedOut, { _tag: "TimedOut", limitMs: 1500 })
    assert.equal(ok._tag, "Correct")
    assert.equal(pool.counters.timedOut, before + 1)
    const s = await pool.score(`<think>x</think>${slow}`, "1", { mode: "math-verify" })
    assert.deepEqual(s, { overall: 0, format: 0, accuracy: 0, outcome: { _tag: "TimedOut", limitMs: 1500 } })
    // the replacement worker serves
    const again = await pool.gradeBatch([{ response: "\\boxed{9}", gold: "9" }, { response: "\\boxed{8}", gold: "9" }], { mode: "mathruler" })
    assert.deepEqual(again.map((o) => o._tag), ["Correct", "Incorrect"])
  })

  it("answers every arbitrary string within the limit, off the main thread (both modes)", async () => {
    const items = fc.sample(fc.record({ response: junk, gold: junk }), { numRuns: 60, seed: 7 })
    for (const mode of Grader.modes) {
      const outcomes = await pool.gradeBatch(items, { mode })
      assert.equal(outcomes.length, items.length)
      outcomes.forEach((o, i) => assert.notEqual(o._tag, "TimedOut", JSON.stringify(items[i])))
    }
  })

  it("answers Invalid once closed", async () => {
    const p = VerifierPool.create({ size: 1 })
    await p.close()
    assert.equal((await p.grade("\\boxed{1}", "1", { mode: "mathruler" }))._tag, "Invalid")
  })
})
