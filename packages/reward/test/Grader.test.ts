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

  it("math-verify mode compares large integers, rationals and integer powers exactly (issue 14)", () => {
    const mv = (a: string, g: string) => Grader.grade(boxedResponse(a), g, { mode: "math-verify" })._tag
    assert.equal(mv("12345678901234567", "12345678901234568"), "Incorrect")
    assert.equal(mv("100000000000000000001", "100000000000000000002"), "Incorrect")
    assert.equal(mv("2^{64}", "18446744073709551616"), "Correct") // 2^64 by hand
    assert.equal(mv("2^{64}", "18446744073709551617"), "Incorrect")
    assert.equal(mv("1000000001", "1000000000"), "Incorrect") // a relative tolerance of 1e-9 accepted this
    assert.equal(mv("\\frac{10^{20}+1}{3}", "\\frac{100000000000000000001}{3}"), "Correct")
    assert.equal(mv("x\\cdot 10^{20}+1", "10^{20}x"), "Incorrect") // symbols at exact rational points
  })

  it("mathruler mode keeps MathRuler's int(float(x)) by default, and is exact with exactIntegers", () => {
    const mr = (a: string, g: string, exactIntegers?: boolean) => Grader.grade(boxedResponse(a), g, { mode: "mathruler", exactIntegers })._tag
    assert.equal(mr("12345678901234567", "12345678901234568"), "Correct") // both are the double 12345678901234568
    assert.equal(mr("100000000000000000001", "100000000000000000002"), "Correct")
    assert.equal(mr("12345678901234567", "12345678901234568", true), "Incorrect")
    assert.equal(mr("100000000000000000001", "100000000000000000002", true), "Incorrect")
    assert.equal(mr("12345678901234567", "12345678901234567", true), "Correct")
  })

  it("large integers: equal ones agree, neighbours differ (math-verify; mathruler with exactIntegers)", () => {
    const big = fc.bigInt({ min: 10n ** 16n, max: 10n ** 40n })
    fc.assert(
      fc.property(big, fc.bigInt({ min: 1n, max: 1000n }), (n, d) => {
        const g = n.toString()
        for (const options of [{ mode: "math-verify" }, { mode: "mathruler", exactIntegers: true }] as const) {
          assert.equal(Grader.grade(boxedResponse(g), g, options)._tag, "Correct")
          assert.equal(Grader.grade(boxedResponse((n + d).toString()), g, options)._tag, "Incorrect", `${options.mode}: ${n + d} vs ${g}`)
        }
      }),
      { numRuns: 100 }
    )
  })

  it("integer powers are exact: b^k equals its decimal expansion and not its neighbours (math-verify)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 20, max: 60 }), (b, k) => {
        const exact = BigInt(b) ** BigInt(k)
        const mv = (g: bigint) => Grader.grade(boxedResponse(`${b}^{${k}}`), g.toString(), { mode: "math-verify" })._tag
        assert.equal(mv(exact), "Correct")
        assert.equal(mv(exact + 1n), "Incorrect")
        assert.equal(mv(exact - 1n), "Incorrect")
      }),
      { numRuns: 60 }
    )
  })

  it("the in-thread work budget answers TimedOut instead of running on", () => {
    const heavy = boxedResponse("1+".repeat(500) + "1")
    assert.deepEqual(Grader.grade(heavy, "501", { mode: "math-verify", workMs: 0 }), { _tag: "TimedOut", limitMs: 0 })
    assert.equal(Grader.grade(heavy, "501", { mode: "math-verify", workMs: 60_000 })._tag, "Correct")
    // 40k unclosed boxes (280k characters): the extraction is linear, the verdict is NoAnswer
    for (const mode of Grader.modes) assert.equal(Grader.grade("\\boxed{".repeat(40_000), "1", { mode, workMs: 60_000 })._tag, "NoAnswer")
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
