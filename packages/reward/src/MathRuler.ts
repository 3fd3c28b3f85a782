/**
 * MathRuler's grader (hiyouga/MathRuler @ 14dadeb, itself derived from openai/prm800k's `grader.py`),
 * re-implemented: the grader behind PAPO's and EasyR1's published numbers, quirks included.
 *
 * `gradeAnswer(given, groundTruth)`:
 * 1. equal after the Hendrycks-MATH ("mathd") string normalization → correct;
 * 2. otherwise both sides go through `normalize` (units, `\text{}`, `%`, `$` stripped, LaTeX rendered to
 *    text, lower-cased); equal strings → correct; an empty answer → wrong;
 * 3. both are split into tuple elements (`(a,b)`, `[a,b]`; the brackets must agree when the ground truth
 *    has several elements) and compared element by element: two `a/b` fractions only as strings (an
 *    unreduced fraction is wrong), an integer on exactly one side → wrong, otherwise `gt − given`
 *    must vanish (sympy's `simplify(...) == 0`; here mathjs evaluation at generic points).
 *
 * @since 0.1.0
 */
import { latexToText } from "./internal/LatexText.js"
import { numericallyEqual } from "./internal/Numeric.js"
import { isPySpace, pyFloat, pyIntString, pyRoundIntString, pyStrip } from "./internal/Py.js"
import { pyToMathjs } from "./internal/PyExpr.js"

/**
 * The content of the last `\boxed{…}` (brace-matched, stripped), or the string `"None"` when there is no
 * `\boxed{` or it is never closed — MathRuler's `extract_boxed_content`, whose `"None"` string is then
 * graded like any answer.
 *
 * @category extraction
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.extractBoxedContent("a \\boxed{1} b \\boxed{\\frac{1}{2}}") // => "\\frac{1}{2}"
 */
export const extractBoxedContent = (text: string): string => boxedContent(text) ?? "None"

/**
 * The content of the last `\boxed{…}` (brace-matched, stripped), or undefined when there is none or it
 * is never closed (where {@link extractBoxedContent} returns `"None"`).
 *
 * @category extraction
 */
export const boxedContent = (text: string): string | undefined => {
  const start = text.lastIndexOf("\\boxed{")
  if (start < 0) return undefined
  let depth = 0
  const from = start + 7
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 123) depth++
    else if (c === 125) {
      depth--
      if (depth === -1) return pyStrip(text.slice(from, i))
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------
// mathd normalization (Hendrycks MATH `_strip_string`)

class Abort extends Error {}

const fixFracs = (s: string): string => {
  const parts = s.split("\\frac")
  let out = parts[0]!
  for (const sub of parts.slice(1)) {
    out += "\\frac"
    if (sub.length === 0) throw new Abort() // Python: substr[0] raises IndexError
    if (sub[0] === "{") out += sub
    else {
      if (sub.length < 2) return s
      const a = sub[0]!
      const b = sub[1]!
      if (b !== "{") out += `{${a}}{${b}}${sub.slice(2)}`
      else out += `{${a}}${b}${sub.slice(2)}`
    }
  }
  return out
}

const fixSqrt = (s: string): string => {
  if (!s.includes("\\sqrt")) return s
  const parts = s.split("\\sqrt")
  let out = parts[0]!
  for (const sp of parts.slice(1)) {
    if (sp.length === 0) throw new Abort()
    out += sp[0] !== "{" ? `\\sqrt{${sp[0]}}${sp.slice(1)}` : `\\sqrt${sp}`
  }
  return out
}

const isPyInt = (s: string) => /^[ \t\n\r\f\v]*[+-]?\d(?:_?\d)*[ \t\n\r\f\v]*$/.test(s)

const fixASlashB = (s: string): string => {
  const parts = s.split("/")
  if (parts.length !== 2) return s
  const [a, b] = parts as [string, string]
  if (!isPyInt(a) || !isPyInt(b)) return s
  const ai = BigInt(a.replace(/_/g, "").trim())
  const bi = BigInt(b.replace(/_/g, "").trim())
  if (s !== `${ai}/${bi}`) return s
  return `\\frac{${ai}}{${bi}}`
}

const removeRightUnits = (s: string): string => {
  if (!s.includes("\\text{ ")) return s
  const parts = s.split("\\text{ ")
  if (parts.length !== 2) throw new Abort() // Python: assert len(splits) == 2
  return parts[0]!
}

const stripString = (input: string): string => {
  let s = input.replace(/\n/g, "")
  s = s.replaceAll("\\!", "")
  s = s.replaceAll("\\\\", "\\")
  s = s.replaceAll("tfrac", "frac").replaceAll("dfrac", "frac")
  s = s.replaceAll("\\left", "").replaceAll("\\right", "")
  s = s.replaceAll("^{\\circ}", "").replaceAll("^\\circ", "")
  s = s.replaceAll("\\$", "")
  s = removeRightUnits(s)
  s = s.replaceAll("\\%", "")
  s = s.replaceAll(" .", " 0.").replaceAll("{.", "{0.")
  if (s.length === 0) return s
  if (s[0] === ".") s = "0" + s
  const eq = s.split("=")
  if (eq.length === 2 && eq[0]!.length <= 2) s = eq[1]!
  s = fixSqrt(s)
  s = s.replaceAll(" ", "")
  s = fixFracs(s)
  if (s === "0.5") s = "\\frac{1}{2}"
  return fixASlashB(s)
}

/** Python `re.search("^\\\\text\{(?P<text>.+?)\}$", s)`: the text of an enclosing `\text{…}`. */
const enclosingText = (s: string): string | undefined => {
  const m = /^\\text\{([^\n]+?)\}\n?$/.exec(s)
  if (m === null) return undefined
  // `$` also matches before a final newline; `.+?` is lazy, so the first "}" that ends the string wins
  return m[1]
}

/**
 * The Hendrycks-MATH answer normalization (`math_normalize.normalize_answer`): strips `\left`/`\right`,
 * degrees, `\$`, `\%`, a right-hand `\text{ unit}`, a short `x =` prefix and spaces; fixes `\frac12`,
 * `\sqrt3` and `a/b`. On the inputs that make the Python raise, returns the stripped answer unchanged, as
 * the Python does.
 *
 * @category normalization
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.mathdNormalize("x = \\dfrac12") // => "\\frac{1}{2}"
 */
export const mathdNormalize = (answer: string): string => {
  let a = pyStrip(answer)
  try {
    const t = enclosingText(a)
    if (t !== undefined) a = pyStrip(t)
    return stripString(a)
  } catch (e) {
    if (e instanceof Abort) return a
    throw e
  }
}

// ---------------------------------------------------------------------------------------------------
// prm800k / MathRuler `_normalize`

const UNITS = ["degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month", "year", "foot", "feet", "inch", "yard"]
const unitRes = UNITS.map((u) => new RegExp(`${u}(es)?(s)? *(\\^[0-9]+)?`, "g"))

const parseLatexToText = (expr: string): string => {
  let e = expr.replaceAll("\\tfrac", "\\frac").replaceAll("\\dfrac", "\\frac").replaceAll("\\frac", " \\frac")
  e = latexToText(e)
  e = e.replaceAll("√", "sqrt").replaceAll("π", "pi").replaceAll("∞", "inf").replaceAll("∪", "U")
  e = e.replaceAll("·", "*").replaceAll("×", "*")
  return pyStrip(e)
}

const isFloatInt = (s: string): string | undefined => {
  const f = pyFloat(s)
  if (f === undefined || !Number.isFinite(f)) return undefined
  return Math.abs(f - Math.round(f)) <= 1e-7 ? pyRoundIntString(f) : undefined
}

/**
 * Repeated until nothing changes, like the Python loop (one pass can skip a comma whose digit the previous
 * match consumed, so "1,234,567,890" ends as "1234,567890"). At most 200 passes: only garbage needs more.
 */
const stripProperlyFormattedCommas = (expr: string): string => {
  if (!expr.includes(",")) return expr
  const re = /(\d)(,)(\d\d\d)($|\D)/g
  let cur = expr
  for (let pass = 0; pass < 200; pass++) {
    const next = cur.replace(re, "$1$3$4")
    if (next === cur) return next
    cur = next
  }
  return cur
}

const strIsInt = (x: string): boolean => {
  const f = pyFloat(stripProperlyFormattedCommas(x))
  if (f === undefined || !Number.isFinite(f)) return false
  return Math.abs(f - Math.round(f)) <= 1e-7
}

const strToInt = (x: string): string => pyIntString(pyFloat(x.replace(/,/g, ""))!)

/** An integer literal as Python's `int()` reads it (sign, digits, underscores between digits, outer whitespace). */
const INT_LITERAL = /^[ \t\n\r\f\v]*[+-]?\d(?:_?\d)*[ \t\n\r\f\v]*$/

/** The exact decimal string of an integer literal, or undefined. */
const exactInt = (x: string): string | undefined => (INT_LITERAL.test(x) ? BigInt(x.replace(/_/g, "").trim()).toString() : undefined)

/**
 * Options of {@link normalize} and {@link gradeAnswer}.
 *
 * @category configuration
 */
export interface MathRulerOptions {
  /**
   * `false` (default, MathRuler's behaviour): integers are normalized through a double, as
   * `str(int(float(x)))` does, so integers beyond 2^53 that round to the same double are equal
   * (`12345678901234567` = `12345678901234568`). `true`: integer literals are kept exact (BigInt).
   */
  readonly exactIntegers?: boolean
}

/**
 * MathRuler's `_normalize`: removes an enclosing `\text{}`, `%`, `$`, unit words, `^\circ`, one pair of
 * outer braces and `,\!`; maps " or "/" and " to commas and million/billion/trillion to powers of ten;
 * renders LaTeX to text; writes integral floats as integers; drops spaces and braces; lower-cases.
 *
 * @category normalization
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.normalize("\\text{5 meters}") // => "5"
 */
export const normalize = (input: string, options: MathRulerOptions = {}): string => {
  const exact = options.exactIntegers === true
  let expr = input
  const m = /^\\text\{([^\n]+?)\}\n?$/.exec(expr)
  if (m !== null) expr = m[1]!
  expr = expr.replaceAll("\\%", "%").replaceAll("\\$", "$").replaceAll("$", "").replaceAll("%", "")
  expr = expr.replaceAll(" or ", " , ").replaceAll(" and ", " , ")
  expr = expr.replaceAll("million", "*10^6").replaceAll("billion", "*10^9").replaceAll("trillion", "*10^12")
  if (/[a-z]/.test(expr)) for (const re of unitRes) expr = expr.replace(re, "")
  expr = expr.replace(/\^ *\\circ/g, "")
  if (expr.length > 0 && expr[0] === "{" && expr[expr.length - 1] === "}") expr = expr.slice(1, -1)
  expr = expr.replace(/,\\! */g, "")
  const asInt = (exact ? exactInt(expr) : undefined) ?? isFloatInt(expr)
  if (asInt !== undefined) expr = asInt
  if (expr.includes("\\")) expr = parseLatexToText(expr)
  expr = expr.replace(/- */g, "-")
  expr = expr.replace(/([0-9]) +([0-9])/g, "$1+$2")
  expr = expr.replaceAll(" ", "").replaceAll("{", "").replaceAll("}", "")
  expr = expr.toLowerCase()
  if (strIsInt(expr)) expr = (exact ? exactInt(expr.replace(/,/g, "")) : undefined) ?? strToInt(expr)
  return expr
}

const TUPLE_CHARS = "()[]"

const splitTuple = (input: string): Array<string> => {
  const expr = stripProperlyFormattedCommas(input)
  if (expr.length === 0) return []
  const inner = expr.slice(1, -1)
  if (
    expr.length > 2 && TUPLE_CHARS.includes(expr[0]!) && TUPLE_CHARS.includes(expr[expr.length - 1]!) &&
    ![...TUPLE_CHARS].some((c) => inner.includes(c))
  ) return inner.split(",").map(pyStrip)
  return [expr]
}

const isFrac = (e: string) => /^-?[0-9]+[^\n]?\/0*[1-9][0-9]*[^\n]?$/.test(e)

const countUnknownLetters = (expr: string): number => {
  const e = expr.replaceAll("sqrt", "").replaceAll("frac", "")
  return new Set([...e].filter((c) => /\p{L}/u.test(c))).size
}

const shouldAllowEval = (expr: string): boolean =>
  countUnknownLetters(expr) <= 2 && !expr.includes("^{") && !expr.includes("^(") &&
  !/\^[0-9]+\^/.test(expr) && !/\^[0-9][0-9]+/.test(expr)

/** MathRuler's `are_equal_under_sympy`: `simplify(gt − given) == 0`, guarded by `should_allow_eval`. */
const PLAIN_NUMBER = /^-?(?:[1-9]\d*|0)?(?:\.\d*)?$/

const equalUnderSympy = (gt: string, given: string, exact: boolean): boolean => {
  if (!shouldAllowEval(`(${gt})-(${given})`)) return false
  if (exact) {
    const a = exactInt(gt)
    const b = exactInt(given)
    if (a !== undefined && b !== undefined) return a === b
  }
  // fast path: two plain decimal literals (what most answers are) compare exactly, as sympy's Floats do
  if (PLAIN_NUMBER.test(gt) && PLAIN_NUMBER.test(given) && /\d/.test(gt) && /\d/.test(given)) return Number(gt) === Number(given)
  const a = pyToMathjs(gt.replaceAll("^", "**"))
  const b = pyToMathjs(given.replaceAll("^", "**"))
  if (a === undefined || b === undefined) return false
  return numericallyEqual(a, b)
}

/**
 * MathRuler's `grade_answer(given, groundTruth)` (see the module comment for the rules).
 *
 * @category grading
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.gradeAnswer("\\frac{2}{4}", "\\frac{1}{2}") // => false
 * MathRuler.gradeAnswer("0.5", "\\frac{1}{2}") // => true
 * MathRuler.gradeAnswer("12345678901234567", "12345678901234568") // => true (int(float(x)))
 * MathRuler.gradeAnswer("12345678901234567", "12345678901234568", { exactIntegers: true }) // => false
 */
export const gradeAnswer = (given: string, groundTruth: string, options: MathRulerOptions = {}): boolean => {
  if (mathdNormalize(groundTruth) === mathdNormalize(given)) return true
  const gtN = normalize(groundTruth, options)
  const givenN = normalize(given, options)
  if (gtN === givenN) return true
  if (givenN.length === 0) return false
  const gtElems = splitTuple(gtN)
  const givenElems = splitTuple(givenN)
  if (gtElems.length > 1 && (gtN[0] !== givenN[0] || gtN[gtN.length - 1] !== givenN[givenN.length - 1])) return false
  if (gtElems.length !== givenElems.length) return false
  for (let i = 0; i < gtElems.length; i++) {
    const g = gtElems[i]!
    const a = givenElems[i]!
    let ok: boolean
    if (isFrac(g) && isFrac(a)) ok = g === a
    else if (strIsInt(g) !== strIsInt(a)) ok = false
    else ok = equalUnderSympy(g, a, options.exactIntegers === true)
    if (!ok) return false
  }
  // Python's loop leaves is_correct unset for zero elements, which only happens for an empty gt (caught above)
  return gtElems.length > 0
}

/**
 * PAPO's whitespace normalization `re.sub(r"\s*(<|>|/)\s*", r"\1", response)`: every whitespace run
 * touching `<`, `>` or `/` is removed (linear time; Python's regex is quadratic on long runs).
 *
 * @category normalization
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.squeezeTags("< think >a</ think > 1 / 2") // => "<think>a</think>1/2"
 */
export const squeezeTags = (response: string): string => {
  let out = ""
  let last = 0 // everything before `last` is emitted
  const n = response.length
  for (let at = 0; at < n; at++) {
    const c = response.charCodeAt(at)
    if (c !== 60 && c !== 62 && c !== 47) continue // < > /
    let a = at
    while (a > last && isPySpace(response[a - 1])) a--
    let b = at + 1
    while (b < n && isPySpace(response[b])) b++
    if (a === at && b === at + 1) continue // nothing to remove around this one
    out += response.slice(last, a) + response[at]
    last = b
    at = b - 1
  }
  return last === 0 ? response : out + response.slice(last)
}

/**
 * PAPO's format rule: `re.fullmatch(r"<think>.*</think>.*\\boxed\{.*\}.*", r, re.DOTALL)` (linear time).
 *
 * @category grading
 */
export const hasThinkBoxedFormat = (r: string): boolean => {
  if (!r.startsWith("<think>")) return false
  const close = r.indexOf("</think>", 7)
  if (close < 0) return false
  const box = r.indexOf("\\boxed{", close + 8)
  if (box < 0) return false
  return r.indexOf("}", box + 7) >= 0
}

/**
 * PAPO / EasyR1 `compute_score` for one response: `{ overall, format, accuracy }` with
 * `overall = (1 − w)·accuracy + w·format`, accuracy graded on the whitespace-squeezed response.
 *
 * @category grading
 * @example
 * import { MathRuler } from "@papo/reward"
 * MathRuler.computeScore("<think>18/2 = 9</think> The answer is \\boxed{9}", "9")
 * // => { overall: 1, format: 1, accuracy: 1 }
 */
export const computeScore = (
  response: string,
  groundTruth: string,
  formatWeight = 0.1
): { readonly overall: number; readonly format: number; readonly accuracy: number } => {
  const r = squeezeTags(response)
  const format = hasThinkBoxedFormat(r) ? 1 : 0
  const accuracy = gradeAnswer(extractBoxedContent(r), groundTruth) ? 1 : 0
  return { overall: (1 - formatWeight) * accuracy + formatWeight * format, format, accuracy }
}
