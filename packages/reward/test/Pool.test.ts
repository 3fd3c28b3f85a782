import assert from "node:assert/strict"
import { after, describe, it } from "node:test"
import fc from "fast-check"
import { Grader, VerifierPool } from "../src/index.js"
import { junk } from "./arbitraries.js"

describe("VerifierPool", () => {
  // workers that busy-wait on `spin:<ms>` (a deterministic slow verification) and grade everything else;
  // the compiled module (`npm test` builds first), which starts in a fraction of the time tsx needs
  const limit = 1500
  const pool = VerifierPool.create({ size: 2, timeoutMs: limit, workerModule: new URL("../dist/test/SlowWorker.js", import.meta.url) })
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
    // PAPO's score: 0.9·accuracy + 0.1·format, by hand: \frac{2}{4} ≠ \frac{1}{2} for MathRuler but the
    // format holds (0.1); 3 = 3 without think tags (0.9); no box (0); the set is unordered only for Math-Verify (0)
    const scores = await pool.scoreBatch(items, { mode: "mathruler" })
    assert.deepEqual(scores.map((s) => s.overall), [0.1, 0.9, 0, 0])
  })

  it("kills a verification that runs past the hard limit, answers TimedOut and keeps serving", async () => {
    const before = { ...pool.counters }
    const [timedOut, ok] = await Promise.all([
      pool.grade("spin:600000", "1", { mode: "math-verify" }),
      pool.grade("\\boxed{7}", "7", { mode: "math-verify" })
    ])
    assert.deepEqual(timedOut, { _tag: "TimedOut", limitMs: limit })
    assert.equal(ok._tag, "Correct")
    assert.equal(pool.counters.timedOut, before.timedOut + 1)
    assert.equal(pool.counters.replaced, before.replaced + 1)
    // a score keeps its format part: the spin response has none
    const s = await pool.score("spin:600000", "1", { mode: "mathruler" })
    assert.deepEqual(s, { overall: 0, format: 0, accuracy: 0, outcome: { _tag: "TimedOut", limitMs: limit } })
    // the replacement workers start and serve
    await pool.ready()
    const again = await pool.gradeBatch([{ response: "\\boxed{9}", gold: "9" }, { response: "\\boxed{8}", gold: "9" }], { mode: "mathruler" })
    assert.deepEqual(again.map((o) => o._tag), ["Correct", "Incorrect"])
  })

  it("a worker answers its own work budget's TimedOut without being replaced", async () => {
    const replaced = pool.counters.replaced
    const o = await pool.grade(`\\boxed{${"1+".repeat(500)}1}`, "501", { mode: "math-verify", workMs: 0 })
    assert.deepEqual(o, { _tag: "TimedOut", limitMs: 0 })
    assert.equal(pool.counters.replaced, replaced)
  })

  it("answers every arbitrary string, off the main thread (both modes)", async () => {
    const items = fc.sample(fc.record({ response: junk, gold: junk }), { numRuns: 60, seed: 7 })
    for (const mode of Grader.modes) {
      const outcomes = await pool.gradeBatch(items, { mode, workMs: 60_000 })
      assert.deepEqual(outcomes, items.map((it) => Grader.grade(it.response, it.gold, { mode, workMs: 60_000 })))
    }
  })

  it("answers Invalid once closed", async () => {
    const p = VerifierPool.create({ size: 1 })
    await p.close()
    assert.equal((await p.grade("\\boxed{1}", "1", { mode: "mathruler" }))._tag, "Invalid")
  })
})
