/**
 * The verifier conformance corpus: the public split (test/fixtures/verifier/cases-public.json, copied
 * from the project's shared corpus) and the exact-numbers supplement (cases-exact.json), both described
 * in the README beside them, plus the `reward` cases of papo-golden.json. Every case must agree with the
 * reference verdicts in both modes; a failure lists the ids of the cases that disagree.
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { describe, it } from "node:test"
import { Grader, MathRuler } from "../src/index.js"

interface Case {
  readonly id: string
  readonly source: string
  readonly gold: string
  readonly response: string
  readonly mathruler: { readonly status: string; readonly accuracy: number; readonly format: number; readonly overall: number }
  readonly math_verify: { readonly status: string; readonly correct: boolean | null; readonly internal_timeout?: boolean }
  readonly meta?: { readonly mathruler_exact_integers_accuracy?: number }
}

const fixture = (p: string) => new URL(`../../../test/fixtures/${p}`, import.meta.url)
const load = (p: string) => JSON.parse(readFileSync(fixture(p), "utf8")) as { format: string; cases: Array<Case> }
const corpora = { public: load("verifier/cases-public.json"), exact: load("verifier/cases-exact.json") }

/**
 * The only cases not compared, each with its reason. Anything else that is skipped, or any case here
 * that becomes comparable, fails the test.
 */
const unreproducible: Readonly<Record<string, string>> = {
  "adversarial/nest/braces-5k [math-verify]": "Math-Verify's own signal.alarm fired while parsing (parse_timeout): its verdict is a product of machine speed",
  "adversarial/nest/left-right-2k [math-verify]": "Math-Verify's own signal.alarm fired while parsing (parse_timeout): its verdict is a product of machine speed"
}

/** Generous, so that a verdict here never depends on the machine's speed (the budget has its own tests). */
const workMs = 60_000

/** The ids that disagree and the ids not comparable (with the mode), per the corpus README's rules. */
const compare = (cases: ReadonlyArray<Case>, mode: Grader.Mode) => {
  const disagree: Array<string> = []
  const skipped: Array<string> = []
  for (const c of cases) {
    const key = `${c.id} [${mode}]`
    if (mode === "mathruler") {
      if (c.mathruler.status !== "ok") {
        skipped.push(key)
        continue
      }
      const s = Grader.score(c.response, c.gold, { mode, workMs })
      const agree = s.accuracy === c.mathruler.accuracy && s.format === c.mathruler.format && Math.abs(s.overall - c.mathruler.overall) < 1e-9
      if (!agree) disagree.push(`${key}: expected accuracy ${c.mathruler.accuracy} format ${c.mathruler.format}, got ${s.accuracy} ${s.format} (${s.outcome._tag})`)
    } else {
      const v = c.math_verify
      if ((v.status !== "ok" && v.status !== "gold_unparseable") || v.internal_timeout === true) {
        skipped.push(key)
        continue
      }
      const o = Grader.grade(c.response, c.gold, { mode, workMs })
      const got = o._tag === "Correct" ? true : o._tag === "Invalid" && o.reason.startsWith("gold answer does not parse") ? null : false
      const expected = v.status === "gold_unparseable" ? null : v.correct
      if (got !== expected) disagree.push(`${key}: expected ${expected}, got ${got} (${o._tag})`)
    }
  }
  return { disagree, skipped }
}

describe("verifier conformance corpus", () => {
  it("is the corpus the README describes", () => {
    for (const c of Object.values(corpora)) assert.equal(c.format, "math-answer-verifier conformance corpus")
    assert.equal(corpora.public.cases.length, 1023)
    assert.equal(corpora.exact.cases.length, 17)
    const ids = [...corpora.public.cases, ...corpora.exact.cases].map((c) => c.id)
    assert.equal(new Set(ids).size, ids.length, "case ids are unique")
  })

  for (const [name, corpus] of Object.entries(corpora)) {
    for (const mode of Grader.modes) {
      it(`${name} split, ${mode} mode: every case agrees with the reference`, () => {
        const { disagree, skipped } = compare(corpus.cases, mode)
        assert.deepEqual(disagree, [])
        assert.deepEqual(skipped.sort(), Object.keys(unreproducible).filter((k) => k.endsWith(`[${mode}]`) && corpus.cases.some((c) => k.startsWith(`${c.id} `))).sort())
      })
    }
  }

  it("exact split: mathruler mode with exactIntegers keeps large integers apart", () => {
    const wrong: Array<string> = []
    for (const c of corpora.exact.cases) {
      const expected = c.meta?.mathruler_exact_integers_accuracy
      if (expected === undefined) continue
      const s = Grader.score(c.response, c.gold, { mode: "mathruler", exactIntegers: true })
      if (s.accuracy !== expected) wrong.push(`${c.id}: expected ${expected}, got ${s.accuracy}`)
    }
    assert.deepEqual(wrong, [])
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
