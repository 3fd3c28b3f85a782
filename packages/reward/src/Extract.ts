/**
 * Answer extraction for the forms users meet, beyond the reference's last-`\boxed{}` rule:
 * `\boxed{…}` and `\fbox{…}` (the last one, brace-matched), `<answer>…</answer>` tags, "the (final)
 * answer is X", and multiple-choice letters in their common spellings.
 *
 * @since 0.1.0
 */

/**
 * Where an extracted answer came from.
 *
 * @category models
 */
export type AnswerSource = "boxed" | "fbox" | "answer-tag" | "phrase"

/**
 * An extracted answer and where it came from.
 *
 * @category models
 */
export interface ExtractedAnswer {
  readonly answer: string
  readonly source: AnswerSource
}

/** Brace-matched content after `open` (the index just past "{"), or undefined if never closed. */
const braceContent = (text: string, open: number): { readonly content: string; readonly end: number } | undefined => {
  let depth = 0
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 123) depth++
    else if (c === 125) {
      if (depth === 0) return { content: text.slice(open, i), end: i + 1 }
      depth--
    }
  }
  return undefined
}

/**
 * The last complete `\boxed{…}` or `\fbox{…}` (whichever starts later), brace-matched and trimmed.
 *
 * @category extraction
 * @example
 * import { Extract } from "@papo/reward"
 * Extract.lastBoxed("\\boxed{1} then \\fbox{\\frac{1}{2}}") // => { answer: "\\frac{1}{2}", source: "fbox" }
 */
export const lastBoxed = (text: string): ExtractedAnswer | undefined => {
  let from = text.length
  // a later box that is never closed must not hide an earlier complete one
  for (let guard = 0; guard < 64 && from > 0; guard++) {
    const b = text.lastIndexOf("\\boxed{", from - 1)
    const f = text.lastIndexOf("\\fbox{", from - 1)
    if (b < 0 && f < 0) return undefined
    const isBox = b > f
    const start = isBox ? b : f
    const r = braceContent(text, start + (isBox ? 7 : 6))
    if (r !== undefined) return { answer: r.content.trim(), source: isBox ? "boxed" : "fbox" }
    from = start
  }
  return undefined
}

/**
 * The content of the last `<answer>…</answer>` (tags matched case-insensitively, whitespace inside the
 * tags tolerated), trimmed.
 *
 * @category extraction
 */
export const answerTag = (text: string): ExtractedAnswer | undefined => {
  const re = /<\s*answer\s*>([\s\S]*?)<\s*\/\s*answer\s*>/gi
  let last: string | undefined
  for (const m of text.matchAll(re)) last = m[1]
  return last === undefined ? undefined : { answer: last.trim(), source: "answer-tag" }
}

const PHRASE = /(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?\s*/gi

/**
 * The answer after the last "the (final) answer is" / "answer:": a `$…$`, `\(…\)` or `\boxed{}` span
 * right after it, else the rest of the sentence (up to a newline, or a period not followed by a digit).
 *
 * @category extraction
 * @example
 * import { Extract } from "@papo/reward"
 * Extract.answerPhrase("So the final answer is $\\frac{3}{4}$.") // => { answer: "\\frac{3}{4}", source: "phrase" }
 */
export const answerPhrase = (text: string): ExtractedAnswer | undefined => {
  let at = -1
  for (const m of text.matchAll(PHRASE)) at = (m.index ?? 0) + m[0].length
  if (at < 0) return undefined
  const rest = text.slice(at, at + 2000)
  const span = /^\$\$([\s\S]+?)\$\$|^\$([^$\n]+?)\$|^\\\(([\s\S]+?)\\\)|^\\\[([\s\S]+?)\\\]/.exec(rest)
  if (span !== null) return { answer: (span[1] ?? span[2] ?? span[3] ?? span[4] ?? "").trim(), source: "phrase" }
  const boxed = rest.startsWith("\\boxed{") ? braceContent(rest, 7) : undefined
  if (boxed !== undefined) return { answer: boxed.content.trim(), source: "phrase" }
  const sentence = /^([^\n]*?)(?:\.(?!\d)|\n|$)/.exec(rest)
  const answer = (sentence?.[1] ?? "").trim().replace(/[*_]+$/g, "").replace(/^[*_]+/g, "").trim()
  return answer === "" ? undefined : { answer, source: "phrase" }
}

/**
 * The answer of a response: the last `\boxed{}`/`\fbox{}`, else the last `<answer>` tag (whose own box,
 * if any, wins), else the "answer is" phrase.
 *
 * @category extraction
 * @example
 * import { Extract } from "@papo/reward"
 * Extract.extractAnswer("<answer>(B) 45°</answer>") // => { answer: "(B) 45°", source: "answer-tag" }
 */
export const extractAnswer = (text: string): ExtractedAnswer | undefined => {
  const boxed = lastBoxed(text)
  if (boxed !== undefined) return boxed
  const tag = answerTag(text)
  if (tag !== undefined) return tag
  return answerPhrase(text)
}

const LETTER_FORMS: ReadonlyArray<RegExp> = [
  /^\\(?:text|textbf|mathbf|mathrm|textrm|mbox)\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}$/, // \text{B}, \text{(B)}
  /^\(\s*([A-Za-z])\s*\)(?:\s+[\s\S]*)?$/, // (B), (B) 45°
  /^([A-Za-z])\s*[.):](?:\s+[\s\S]*)?$/, // B. / B) / B: with or without the option text
  /^(?:option|choice)\s+([A-Za-z])\b[\s\S]*$/i, // option B
  /^([A-Za-z])$/ // B
]

/**
 * The multiple-choice letter an answer names (upper-cased), or undefined: `B`, `(B)`, `B.`, `B)`, `B:`,
 * `\text{B}`, `\textbf{(B)}`, `\mathbf{B}`, "B. 45°", "(B) 45°", "option B". `letters` restricts the
 * accepted letters (default A–J).
 *
 * @category extraction
 * @example
 * import { Extract } from "@papo/reward"
 * Extract.choiceLetter("B. 45°") // => "B"
 * Extract.choiceLetter("\\text{(c)}") // => "C"
 * Extract.choiceLetter("45°") // => undefined
 */
export const choiceLetter = (answer: string, letters = "ABCDEFGHIJ"): string | undefined => {
  const a = answer.trim().replace(/^\$+|\$+$/g, "").trim()
  for (const re of LETTER_FORMS) {
    const m = re.exec(a)
    if (m !== null) {
      const l = m[1]!.toUpperCase()
      return letters.includes(l) ? l : undefined
    }
  }
  return undefined
}
