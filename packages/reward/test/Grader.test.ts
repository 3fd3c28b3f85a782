import assert from "node:assert/strict"
import { describe, it } from "node:test"
import fc from "fast-check"
import { Grader } from "../src/index.js"
import { answer, boxedResponse, invariants, junk, setElements } from "./arbitraries.js"

const TAGS = new Set(["Correct", "Incorrect", "NoAnswer", "TimedOut", "Invalid"])

describe("Grader", () => {
  it("reproduces the reference quirks in mathruler mode and the library's in math-verify mode", () => {
    const r = (a: string) => boxedResponse(a)
    const mr = (a: string, g: string) => Grader.grade(r(a), g, { mode: "mathruler" })._tag
    const mv = (a: string, g: string) => Grader.grade(r(a), g, { mode: "math-verify" })._tag
    assert.equal(mr("\\frac{2}{4}", "\\frac{1}{2}"), "Incorrect") // unreduced fractions compare as strings
    assert.equal(mv("\\frac{2}{4}", "\\frac{1}{2}"), "Correct")
    assert.equal(mr("50\\%", "50"), "Correct") // percent stripped
    assert.equal(mv("50\\%", "0.5"), "Correct") // percent is /100
    assert.equal(mr("\\{3,2,1\\}", "\\{1,2,3\\}"), "Incorrect") // ordered
    assert.equal(mv("\\{3,2,1\\}", "\\{1,2,3\\}"), "Correct") // unordered
    assert.equal(mr("0.0833333333333333", "\\frac{1}{12}"), "Incorrect") // no tolerance
    assert.equal(mv("0.0833333333333333", "\\frac{1}{12}"), "Correct") // float_rounding=6
    assert.equal(mr("0.333", "\\frac{1}{3}"), "Incorrect")
    assert.equal(mv("0.333", "\\frac{1}{3}"), "Incorrect")
    assert.equal(mr("x=3", "y=3"), "Correct") // short lhs dropped
    assert.equal(mv("x=3", "y=3"), "Incorrect")
    assert.equal(mv("x^2/16 + y^2/12 = 1/4", "x^2/4 + y^2/3 = 1"), "Correct") // scaled equation
    assert.equal(mr("\\mathbf{B}", "B"), "Incorrect")
    assert.equal(mv("\\mathbf{B}", "B"), "Correct")
    assert.equal(mr("1.2\\times10^{3}", "1200"), "Incorrect") // integer gt needs an integer answer
  })

  it("tells NoAnswer, Invalid and Incorrect apart", () => {
    assert.deepEqual(Grader.grade("no box here", "7", { mode: "mathruler" }), { _tag: "NoAnswer" })
    assert.deepEqual(Grader.grade("just text", "7", { mode: "math-verify" }), { _tag: "NoAnswer" })
    assert.deepEqual(Grader.grade("\\boxed{8}", "7", { mode: "mathruler" }), { _tag: "Incorrect", extracted: "8" })
    assert.equal(Grader.grade("x".repeat(400_000), "7", { mode: "mathruler" })._tag, "Invalid")
    assert.equal(Grader.grade("\\boxed{}", "", { mode: "math-verify" })._tag, "Invalid") // gold unparseable: TRL skips
    assert.equal(Grader.grade("\\boxed{1}", "1", { mode: "nope" as Grader.Mode })._tag, "Invalid")
    assert.deepEqual(Grader.countOutcomes([{ _tag: "NoAnswer" }, { _tag: "TimedOut", limitMs: 1 }, { _tag: "NoAnswer" }]), {
      Correct: 0, Incorrect: 0, NoAnswer: 2, TimedOut: 1, Invalid: 0
    })
  })

  it("lenient extraction reads <answer> tags, 'the answer is', \\fbox and choice-letter spellings", () => {
    const lenient = (r: string, g: string, mode: Grader.Mode = "mathruler") => Grader.grade(r, g, { mode, extraction: "lenient" })
    for (const mode of Grader.modes) {
      assert.deepEqual(lenient("<think>…</think><answer>42</answer>", "42", mode), { _tag: "Correct", extracted: "42" })
      assert.deepEqual(lenient("So the final answer is $\\frac{1}{2}$.", "0.5", mode), { _tag: "Correct", extracted: "\\frac{1}{2}" })
      assert.equal(lenient("\\fbox{7}", "7", mode)._tag, "Correct")
      assert.equal(lenient("The answer is B. 45°", "B", mode)._tag, "Correct")
      assert.equal(lenient("<answer>(C) 12</answer>", "B", mode)._tag, "Incorrect")
      assert.equal(lenient("nothing to see", "B", mode)._tag, "NoAnswer")
      // the reference extraction finds none of these
      assert.notEqual(Grader.grade("<answer>42</answer>", "42", { mode })._tag, "Correct")
    }
  })

  it("scores like PAPO with configurable weight and format rule", () => {
    const good = "<think>r</think> \\boxed{4}"
    assert.deepEqual(Grader.score(good, "4", { mode: "mathruler" }), { overall: 1, format: 1, accuracy: 1, outcome: { _tag: "Correct", extracted: "4" } })
    assert.equal(Grader.score("r</think> \\boxed{4}", "4", { mode: "mathruler" }).format, 0)
    assert.equal(Grader.score("r</think> \\boxed{4}", "4", { mode: "mathruler", formatRule: "qwen3-vl" }).format, 1)
    const s = Grader.score(good, "5", { mode: "math-verify", formatWeight: 0.5 })
    assert.equal(s.overall, 0.5)
    assert.equal(Grader.score(good, "4", { mode: "mathruler", formatRule: (r) => r.includes("r</think>") }).format, 1)
  })

  it("never throws and always returns an outcome, for arbitrary strings (both modes)", () => {
    fc.assert(
      fc.property(junk, junk, (response, gold) => {
        for (const mode of Grader.modes) {
          const o = Grader.grade(response, gold, { mode })
          assert.ok(TAGS.has(o._tag), JSON.stringify(o))
          const s = Grader.score(response, gold, { mode })
          assert.ok(s.overall >= 0 && s.overall <= 1)
        }
      }),
      { numRuns: 300 }
    )
  })

  it("a gold answer boxed in a response is correct against itself (both modes)", () => {
    fc.assert(
      fc.property(answer, (gold) => {
        for (const mode of Grader.modes) assert.equal(Grader.grade(boxedResponse(gold), gold, { mode })._tag, "Correct", `${mode}: ${gold}`)
      }),
      { numRuns: 300 }
    )
  })

  for (const [name, f, exempt] of invariants) {
    it(`verdicts do not change with ${name} (both modes)`, () => {
      fc.assert(
        fc.property(answer, answer, fc.boolean(), (gold, other, same) => {
          const a = same ? gold : other
          for (const mode of Grader.modes) {
            if (exempt(mode, a)) continue
            const before = Grader.grade(boxedResponse(a), gold, { mode })._tag
            const after = Grader.grade(boxedResponse(f(a)), gold, { mode })._tag
            assert.equal(after, before, `${mode}: ${a} → ${f(a)} against ${gold}`)
          }
        }),
        { numRuns: 200 }
      )
    })
  }

  it("math-verify mode is order-insensitive for sets", () => {
    fc.assert(
      fc.property(setElements, fc.nat(), (xs, seed) => {
        const shuffled = [...xs].sort((a, b) => ((a * 7919 + seed) % 31) - ((b * 7919 + seed) % 31) || a - b)
        const gold = `\\{${xs.join(",")}\\}`
        const outcome = Grader.grade(boxedResponse(`\\{${shuffled.join(", ")}\\}`), gold, { mode: "math-verify" })
        assert.equal(outcome._tag, "Correct", `${gold} vs ${shuffled}`)
        const missing = Grader.grade(boxedResponse(`\\{${shuffled.slice(1).join(", ")}\\}`), gold, { mode: "math-verify" })
        assert.equal(missing._tag, "Incorrect")
      }),
      { numRuns: 200 }
    )
  })
})
