import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { Extract, MathRuler } from "../src/index.js"

describe("Extract", () => {
  it("takes the last complete box, brace-matched (\\boxed and \\fbox)", () => {
    assert.deepEqual(Extract.lastBoxed("\\boxed{1} and \\boxed{\\frac{a}{b}}"), { answer: "\\frac{a}{b}", source: "boxed" })
    assert.deepEqual(Extract.lastBoxed("\\boxed{1} then \\fbox{2}"), { answer: "2", source: "fbox" })
    assert.deepEqual(Extract.lastBoxed("\\boxed{1} then \\boxed{2"), { answer: "1", source: "boxed" })
    assert.equal(Extract.lastBoxed("none"), undefined)
    // the reference rule (MathRuler): last "\boxed{" only, "None" when unclosed
    assert.equal(MathRuler.extractBoxedContent("\\boxed{1} then \\boxed{2"), "None")
    assert.equal(MathRuler.extractBoxedContent("x \\boxed{ {a}{b} } y"), "{a}{b}")
  })

  it("reads <answer> tags and 'the answer is' phrases", () => {
    assert.deepEqual(Extract.extractAnswer("<think>..</think><answer> 42 </answer>"), { answer: "42", source: "answer-tag" })
    assert.deepEqual(Extract.extractAnswer("< answer >7</ answer >"), { answer: "7", source: "answer-tag" })
    assert.deepEqual(Extract.extractAnswer("So the final answer is $\\frac{3}{4}$. Done"), { answer: "\\frac{3}{4}", source: "phrase" })
    assert.deepEqual(Extract.extractAnswer("Thus the answer is 3.5 meters.\nBye"), { answer: "3.5 meters", source: "phrase" })
    assert.deepEqual(Extract.extractAnswer("Answer: (B)"), { answer: "(B)", source: "phrase" })
    assert.deepEqual(Extract.extractAnswer("<answer>\\boxed{5}</answer>"), { answer: "5", source: "boxed" })
    assert.equal(Extract.extractAnswer("nothing here"), undefined)
  })

  it("recognizes multiple-choice letters in their common spellings", () => {
    for (const s of ["B", "(B)", "B.", "B)", "B:", "\\text{B}", "\\text{(B)}", "\\textbf{B}", "\\mathbf{B}", "B. 45°", "(B) 45°", "b", "$B$", "option B"]) {
      assert.equal(Extract.choiceLetter(s), "B", s)
    }
    for (const s of ["45°", "AB", "Yes", "x=3", "\\frac{1}{2}", "Z"]) assert.equal(Extract.choiceLetter(s), undefined, s)
    assert.equal(Extract.choiceLetter("E", "ABCD"), undefined)
  })
})
