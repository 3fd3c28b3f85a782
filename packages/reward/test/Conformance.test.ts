/**
 * The verifier conformance corpus (test/fixtures/verifier/cases-public.json, copied from the project's
 * shared corpus) and the `reward` cases of papo-golden.json, graded with the synchronous grader and,
 * for the adversarial cases, on the worker pool under a hard time limit.
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { after, describe, it } from "node:test"
import { Grader, MathRuler, VerifierPool } from "../src/index.js"

interface Case {
  readonly id: string
  readonly source: string
  readonly gold: string
  readonly response: string
  readonly mathruler: { readonly status: string; readonly accuracy: number; readonly format: number; readonly overall: number }
  readonly math_verify: { readonly status: string; readonly correct: boolean | null; readonly internal_timeout?: boolean }
}

const fixture = (p: string) => new URL(`../../../test/fixtures/${p}`, import.meta.url)
const corpus = JSON.parse(readFileSync(fixture("verifier/cases-public.json"), "utf8")) as { format: string; cases: Array<Case> }

/** Agreement per source (adversarial excluded), counted as the corpus README says. */
const agreement = (mode: "mathruler" | "math-verify") => {
  const by: Record<string, { agree: number; total: number }> = {}
  for (const c of corpus.cases) {
    if (c.source === "adversarial") continue
    let agree: boolean
    if (mode === "mathruler") {
      if (c.mathruler.status !== "ok") continue
      const s = Grader.score(c.response, c.gold, { mode })
      agree = s.accuracy === c.mathruler.accuracy && s.format === c.mathruler.format && Math.abs(s.overall - c.mathruler.overall) < 1e-9
    } else {
      const v = c.math_verify
      if ((v.status !== "ok" && v.status !== "gold_unparseable") || v.internal_timeout === true) continue
      const o = Grader.grade(c.response, c.gold, { mode })
      const got = o._tag === "Correct" ? true : o._tag === "Invalid" ? null : false
      agree = got === (v.status === "gold_unparseable" ? null : v.correct)
    }
    const t = (by[c.source] ??= { agree: 0, total: 0 })
    t.total++
    if (agree) t.agree++
  }
  const all = Object.values(by).reduce((a, t) => ({ agree: a.agree + t.agree, total: a.total + t.total }), { agree: 0, total: 0 })
  return { by, overall: all.agree / all.total, total: all.total }
}

describe("verifier conformance corpus (public split)", () => {
  it("is the corpus the README describes", () => {
    assert.equal(corpus.format, "math-answer-verifier conformance corpus")
    assert.equal(corpus.cases.length, 1023)
  })

  it("mathruler mode: ≥ 99% agreement overall and ≥ 95% on every source", () => {
    const a = agreement("mathruler")
    assert.ok(a.total > 1000)
    assert.ok(a.overall >= 0.99, `overall ${a.overall}`)
    for (const [source, t] of Object.entries(a.by)) assert.ok(t.agree / t.total >= 0.95, `${source}: ${t.agree}/${t.total}`)
  })

  it("math-verify mode: ≥ 97% agreement overall and ≥ 90% on every source", () => {
    const a = agreement("math-verify")
    assert.ok(a.total > 1000)
    assert.ok(a.overall >= 0.97, `overall ${a.overall}`)
    for (const [source, t] of Object.entries(a.by)) assert.ok(t.agree / t.total >= 0.9, `${source}: ${t.agree}/${t.total}`)
  })

  const pool = VerifierPool.create({ size: 2, timeoutMs: 20_000 })
  after(() => pool.close())

  it("answers every adversarial case within the time limit, in both modes", async () => {
    const adversarial = corpus.cases.filter((c) => c.source === "adversarial")
    assert.ok(adversarial.length >= 15)
    for (const mode of Grader.modes) {
      const outcomes = await pool.gradeBatch(adversarial, { mode })
      outcomes.forEach((o, i) => assert.notEqual(o._tag, "TimedOut", `${adversarial[i]!.id} [${mode}]`))
    }
  })
})

describe("papo-golden.json reward cases", () => {
  const golden = JSON.parse(readFileSync(fixture("papo-golden.json"), "utf8")) as {
    cases: Array<{ name: string; category: string; hyperparameters: { format_weight: number }; inputs: { responses: Array<string>; ground_truths: Array<string> }; outputs: { scores: Array<{ overall: number; format: number; accuracy: number }> } }>
  }
  const cases = golden.cases.filter((c) => c.category === "reward")
  it("has the three reward cases", () => assert.equal(cases.length, 3))
  for (const c of cases) {
    it(c.name, () => {
      const got = c.inputs.responses.map((r, i) => MathRuler.computeScore(r, c.inputs.ground_truths[i]!, c.hyperparameters.format_weight))
      got.forEach((g, i) => {
        const e = c.outputs.scores[i]!
        assert.equal(g.accuracy, e.accuracy, `#${i} accuracy`)
        assert.equal(g.format, e.format, `#${i} format`)
        assert.ok(Math.abs(g.overall - e.overall) < 1e-9, `#${i} overall`)
      })
    })
  }
})
