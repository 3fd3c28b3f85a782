/**
 * One entry point for grading: a response and a gold answer in, an `Outcome` out, in either mode, on
 * the calling thread. It never throws: oversized or non-string input is `Invalid`, an unexpected error
 * inside a grader is `Invalid` with its message. (A hard wall-clock limit needs a thread that can be
 * killed: see `Pool`.)
 *
 * - `"mathruler"`: MathRuler's `grade_answer(extract_boxed_content(r), gold)` on PAPO's whitespace-squeezed
 *   response, as PAPO/EasyR1 compute accuracy.
 * - `"math-verify"`: Math-Verify as TRL's `accuracy_reward` calls it.
 *
 * @since 0.1.0
 */
import * as Extract from "./Extract.js"
import { BudgetExceeded, withBudget } from "./internal/Budget.js"
import * as MathRuler from "./MathRuler.js"
import * as MathVerify from "./MathVerify.js"

/**
 * The grading mode.
 *
 * @category models
 */
export type Mode = "mathruler" | "math-verify"

/**
 * Every accepted {@link Mode}.
 *
 * @category constructors
 */
export const modes: ReadonlyArray<Mode> = ["mathruler", "math-verify"]

/**
 * The result of one verification, as data: count these separately, never fold them into 0 silently.
 *
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Correct"; readonly extracted: string }
  | { readonly _tag: "Incorrect"; readonly extracted: string }
  | { readonly _tag: "NoAnswer" }
  | { readonly _tag: "TimedOut"; readonly limitMs: number }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * Options of {@link grade}.
 *
 * @category configuration
 */
export interface GradeOptions {
  readonly mode: Mode
  /**
   * `"reference"` (default): the reference's own extraction, for numbers comparable with published
   * results. `"lenient"`: the last `\boxed{}`/`\fbox{}`, else `<answer>…</answer>`, else "the answer is X"
   * (see `Extract.extractAnswer`); and when the gold is a single choice letter, any common spelling of
   * that letter ("(B)", "B.", "B. 45°", `\text{B}`) is accepted.
   */
  readonly extraction?: "reference" | "lenient"
  /**
   * `"mathruler"` only: keep integers exact instead of MathRuler's `int(float(x))` normalization (under
   * which `12345678901234567` equals `12345678901234568`). Default false, as the reference grades.
   * (`"math-verify"` is always exact for integers, rationals and integer powers, as Math-Verify is.)
   */
  readonly exactIntegers?: boolean
  /**
   * Work budget of one grading on the calling thread, in milliseconds (default 1000): the graders check
   * the clock at every step whose count grows with the input and answer `TimedOut` once it is spent.
   * A single regular-expression scan cannot be interrupted: in `"math-verify"` mode one predicted to
   * need more than the budget allows is refused at once, also `TimedOut`. In a pool's workers the
   * default is the pool's `timeoutMs`.
   */
  readonly workMs?: number
  /** Longer responses are `Invalid` (default 300 000 characters). */
  readonly maxResponseChars?: number
  /** Longer gold answers are `Invalid` (default 20 000 characters). */
  readonly maxGoldChars?: number
}

/**
 * The default limits of {@link GradeOptions}.
 *
 * @category configuration
 */
export const defaultLimits = { maxResponseChars: 300_000, maxGoldChars: 20_000, workMs: 1000 } as const

const check = (response: unknown, gold: unknown, options: GradeOptions): Outcome | undefined => {
  if (typeof response !== "string") return { _tag: "Invalid", reason: "response is not a string" }
  if (typeof gold !== "string") return { _tag: "Invalid", reason: "gold is not a string" }
  const maxR = options.maxResponseChars ?? defaultLimits.maxResponseChars
  const maxG = options.maxGoldChars ?? defaultLimits.maxGoldChars
  if (response.length > maxR) return { _tag: "Invalid", reason: `response has ${response.length} characters, limit ${maxR}` }
  if (gold.length > maxG) return { _tag: "Invalid", reason: `gold has ${gold.length} characters, limit ${maxG}` }
  if (options.mode !== "mathruler" && options.mode !== "math-verify") {
    return { _tag: "Invalid", reason: `unknown mode "${String(options.mode)}"; expected one of ${modes.join(", ")}` }
  }
  return undefined
}

/** Lenient extraction: the answer users mean, and the choice-letter rule. */
const gradeLenient = (response: string, gold: string, mode: Mode, exactIntegers: boolean): Outcome => {
  const found = Extract.extractAnswer(mode === "mathruler" ? MathRuler.squeezeTags(response) : response)
  if (found === undefined) return { _tag: "NoAnswer" }
  const extracted = found.answer
  const goldLetter = Extract.choiceLetter(gold)
  if (goldLetter !== undefined && /^\s*[A-Za-z]\s*$/.test(gold)) {
    const letter = Extract.choiceLetter(extracted)
    if (letter !== undefined) return letter === goldLetter ? { _tag: "Correct", extracted } : { _tag: "Incorrect", extracted }
  }
  return gradeUnchecked(`\\boxed{${extracted}}`, gold, mode, exactIntegers, extracted)
}

const gradeUnchecked = (response: string, gold: string, mode: Mode, exactIntegers: boolean, shown?: string): Outcome => {
  if (mode === "mathruler") {
    const content = MathRuler.boxedContent(MathRuler.squeezeTags(response))
    const extracted = content ?? "None"
    if (MathRuler.gradeAnswer(extracted, gold, { exactIntegers })) return { _tag: "Correct", extracted: shown ?? extracted }
    return content === undefined ? { _tag: "NoAnswer" } : { _tag: "Incorrect", extracted: shown ?? extracted }
  }
  const g = MathVerify.parseGold(gold)
  if (g.length === 0) return { _tag: "Invalid", reason: "gold answer does not parse (TRL skips this sample)" }
  const a = MathVerify.parseAnswer(response)
  if (a.length === 0) return { _tag: "NoAnswer" }
  const extracted = shown ?? a[0]!.text
  return MathVerify.verify(g, a) ? { _tag: "Correct", extracted } : { _tag: "Incorrect", extracted }
}

const warm = new Set<Mode>()
/**
 * The first grading in a process compiles the extraction regexes and mathjs's functions (≈ 0.3 s for
 * `math-verify`): done once, outside the work budget, so that the budget measures the input's cost only.
 */
const warmUp = (mode: Mode) => {
  if (warm.has(mode)) return
  warm.add(mode)
  gradeUnchecked("<think>w</think> \\boxed{x^2+\\frac{1}{2}}", "x^2+0.5", mode, false)
}

/**
 * Grades one response against one gold answer, synchronously. Never throws.
 *
 * @category grading
 * @example
 * import { Grader } from "@papo/reward"
 * Grader.grade("<think>…</think> \\boxed{\\frac{2}{4}}", "\\frac{1}{2}", { mode: "mathruler" })
 * // => { _tag: "Incorrect", extracted: "\\frac{2}{4}" }
 * Grader.grade("<think>…</think> \\boxed{\\frac{2}{4}}", "\\frac{1}{2}", { mode: "math-verify" })
 * // => { _tag: "Correct", extracted: "\\frac{2}{4}" }
 */
export const grade = (response: string, gold: string, options: GradeOptions): Outcome => {
  const bad = check(response, gold, options)
  if (bad !== undefined) return bad
  try {
    const exact = options.exactIntegers === true
    warmUp(options.mode)
    return withBudget(options.workMs ?? defaultLimits.workMs, () =>
      options.extraction === "lenient" ? gradeLenient(response, gold, options.mode, exact) : gradeUnchecked(response, gold, options.mode, exact))
  } catch (e) {
    if (e instanceof BudgetExceeded) return { _tag: "TimedOut", limitMs: e.limitMs }
    return { _tag: "Invalid", reason: `grader error: ${e instanceof Error ? e.message : String(e)}` }
  }
}

/**
 * 1 for `Correct`, 0 for everything else (how the reference turns a verdict into accuracy).
 *
 * @category grading
 */
export const accuracyOf = (o: Outcome): number => (o._tag === "Correct" ? 1 : 0)

/**
 * PAPO's format rules: `"think-boxed"` is the reference's `<think>.*</think>.*\boxed{.*}.*` (fullmatch,
 * DOTALL); `"qwen3-vl"` drops the leading `<think>` (the template opens it); `"none"` always 0; or any
 * predicate on the whitespace-squeezed response.
 *
 * @category configuration
 */
export type FormatRule = "think-boxed" | "qwen3-vl" | "none" | ((squeezed: string) => boolean)

/**
 * Options of {@link score}.
 *
 * @category configuration
 */
export interface ScoreOptions extends GradeOptions {
  /** w in overall = (1 − w)·accuracy + w·format (default 0.1, PAPO's `format_weight`). */
  readonly formatWeight?: number
  /** Default `"think-boxed"`. */
  readonly formatRule?: FormatRule
}

/**
 * PAPO's reward for one response, with the outcome behind its accuracy.
 *
 * @category models
 */
export interface Score {
  readonly overall: number
  readonly format: number
  readonly accuracy: number
  readonly outcome: Outcome
}

const formatOk = (squeezed: string, rule: FormatRule): boolean => {
  if (typeof rule === "function") return rule(squeezed)
  if (rule === "none") return false
  if (rule === "think-boxed") return MathRuler.hasThinkBoxedFormat(squeezed)
  return MathRuler.hasThinkBoxedFormat(`<think>${squeezed}`) // ".*</think>.*\\boxed\{.*\}.*"
}

/**
 * PAPO's `compute_score` for one response, generalized: `overall = (1 − w)·accuracy + w·format`, accuracy
 * from {@link grade} in the chosen mode, format from the chosen rule on the whitespace-squeezed response.
 * With the defaults and mode `"mathruler"` it equals the reference number for number.
 *
 * @category grading
 * @example
 * import { Grader } from "@papo/reward"
 * Grader.score("<think>18/2 = 9</think> The answer is \\boxed{9}", "9", { mode: "mathruler" }).overall // => 1
 */
export const score = (response: string, gold: string, options: ScoreOptions): Score => {
  const outcome = grade(response, gold, options)
  const w = options.formatWeight ?? 0.1
  let format = 0
  if (typeof response === "string" && response.length <= (options.maxResponseChars ?? defaultLimits.maxResponseChars)) {
    try {
      format = formatOk(MathRuler.squeezeTags(response), options.formatRule ?? "think-boxed") ? 1 : 0
    } catch {
      format = 0
    }
  }
  const accuracy = accuracyOf(outcome)
  return { overall: (1 - w) * accuracy + w * format, format, accuracy, outcome }
}

/**
 * Counts of each outcome tag over a batch (for the trainer's metrics).
 *
 * @category grading
 * @example
 * import { Grader } from "@papo/reward"
 * Grader.countOutcomes([{ _tag: "NoAnswer" }, { _tag: "Correct", extracted: "1" }])
 * // => { Correct: 1, Incorrect: 0, NoAnswer: 1, TimedOut: 0, Invalid: 0 }
 */
export const countOutcomes = (outcomes: ReadonlyArray<Outcome>): Record<Outcome["_tag"], number> => {
  const c: Record<Outcome["_tag"], number> = { Correct: 0, Incorrect: 0, NoAnswer: 0, TimedOut: 0, Invalid: 0 }
  for (const o of outcomes) c[o._tag]++
  return c
}
