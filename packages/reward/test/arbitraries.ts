/**
 * Shared fast-check arbitraries: short math answers in the forms datasets use, and transforms that must
 * not change a verdict.
 */
import fc from "fast-check"

const int = fc.integer({ min: -999, max: 99999 }).map(String)
const frac = fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 2, max: 99 })).map(([a, b]) => `\\frac{${a}}{${b}}`)
const negFrac = frac.map((f) => `-${f}`)
const sqrt = fc.tuple(fc.integer({ min: 2, max: 20 }), fc.integer({ min: 2, max: 50 })).map(([a, n]) => `${a}\\sqrt{${n}}`)
const pi = fc.integer({ min: 2, max: 20 }).map((n) => `${n}\\pi`)
const dec = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: 9 })).map(([a, b]) => `${a}.${b}`)
const pair = fc.tuple(fc.integer({ min: -20, max: 20 }), fc.integer({ min: -20, max: 20 })).map(([a, b]) => `(${a},${b})`)
const letter = fc.constantFrom("A", "B", "C", "D")
const word = fc.constantFrom("\\text{even}", "\\text{odd}", "\\text{Navin}")
const poly = fc.tuple(fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 9 })).map(([a, b]) => `${a}x+${b}`)

/** A short answer as a dataset would write it. */
export const answer: fc.Arbitrary<string> = fc.oneof(int, frac, negFrac, sqrt, pi, dec, pair, letter, word, poly)

/** A finite set of distinct integers, as its elements. */
export const setElements: fc.Arbitrary<Array<number>> = fc.uniqueArray(fc.integer({ min: -30, max: 30 }), { minLength: 2, maxLength: 5 })

/** `<think>…</think>` then the answer boxed. */
export const boxedResponse = (ans: string): string => `<think>\nreasoning\n</think>\nThe final answer is \\boxed{${ans}}.`

/**
 * Transforms of an answer that leave its meaning unchanged, with the answers a mode is known to treat
 * differently: Math-Verify's unit stripping removes a trailing `\text{…}}` (regex
 * `(\\(?:text|mbox){.*?})(\^\d|\{\^\d\})?$`), so `{\text{even}}` reads as `{` there, as in the library.
 */
export const invariants: ReadonlyArray<readonly [string, (a: string) => string, (mode: string, a: string) => boolean]> = [
  ["whitespace", (a) => ` ${a.replace(/,/g, ", ").replace(/(?<=.)\+/g, " + ")} `, () => false],
  ["\\left/\\right", (a) => a.replace(/\(/g, "\\left(").replace(/\)/g, "\\right)"), () => false],
  ["\\dfrac", (a) => a.replace(/\\frac/g, "\\dfrac"), () => false],
  ["extra braces", (a) => `{${a}}`, (mode, a) => mode === "math-verify" && a.includes("\\text")]
]

/** Arbitrary text including LaTeX-ish and pathological fragments. */
export const junk: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.array(fc.constantFrom("\\boxed{", "}", "{", "\\frac", "\\sqrt", "$", "\\(", "\\)", "<think>", "</think>", "^", "_", "\\left(", "\\right)", "\\\\", "&", "\\begin{pmatrix}", "\\end{pmatrix}", "1", "x", "=", ",", " ", "\n", "\u0000", "%", "\\%", "answer is ", "\\text{", "**", "!", "9", "\\pm", "\\infty", "\\{", "\\}", "(", ")", "[", "]", "-", "/", ".", "e", "i", "\\pi"), { maxLength: 120 }).map((xs) => xs.join(""))
)
