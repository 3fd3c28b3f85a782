/**
 * Math-Verify (huggingface/Math-Verify 0.8.0) as TRL's `accuracy_reward` calls it, re-implemented:
 *
 * - the gold is wrapped in `\boxed{}` unless it is boxed or delimited already, then parsed with the
 *   default LaTeX + plain-expression extraction (any match, boxed at priority 50);
 * - the response is parsed with LaTeX extraction only: `\boxed{…}` first (every box, joined as a set),
 *   then "final answer is $…$", then "answer: $…$"; no unanchored match; units removed;
 * - `verify` compares every gold item with every answer item: strings as strings; values with
 *   unordered sets, tuples, intervals, relations (symmetric/scaled equations), assignment unwrapping
 *   (`x = 5` against `5`), letter products against words, and numbers rounded to 6 decimals when either
 *   side is a decimal.
 *
 * The parse results are data (`Extracted`), so callers can show what was extracted.
 *
 * @since 0.1.0
 */
import { BudgetExceeded, checkBudget, checkPredictedWork } from "./internal/Budget.js"
import { exactlyEqual } from "./internal/Exact.js"
import { numericallyEqual, pointScope, evaluateIn, freeSymbols } from "./internal/Numeric.js"
import { approx, canonical, LatexParseError, parseLatexValue, type RelOp, type Scalar, show, toMathjs, type Value } from "./internal/LatexValue.js"
import { type MvNormalization, normalizeLatex } from "./internal/MvNormalize.js"

/**
 * One extracted item: a parsed value, or the normalized string of a match (Math-Verify's fallback).
 *
 * @category models
 */
export type Extracted = { readonly _tag: "Value"; readonly value: Value; readonly text: string } | { readonly _tag: "Text"; readonly text: string }

// ---------------------------------------------------------------------------------------------------
// extraction regexes

const ci = (s: string) => [...s].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c === " " ? " " : `\\${c}`)).join("")

const envPattern = (prefix: string, context: "boxed" | "plain"): string => {
  const pct = `(?<${prefix}percent>(?:\\\\?%|[Pp]ercent|[Pp]ercentage|[Pp]ct))`
  let dd = "(?:[^$]|\\$(?!\\$))"
  let db = "(?:[^\\\\]|\\\\(?!\\]))"
  let id = "(?:\\\\[$]|[^\\n$])"
  let ip = "(?:[^\\\\\\n]|\\\\(?!\\)))"
  let ib = "[^\\n\\]\\[]"
  // Math-Verify's boxed form is `x*?\\boxed\{x+?\}x*?`. Its nested lazy loops backtrack over every later
  // `\boxed{` and "}" of the span (cubic on unclosed boxes). If a later box or brace completes the
  // match, the first one does too (x accepts "}" and "\\" alone), so both loops are made atomic with the
  // lookahead-and-backreference idiom: the same matches, linear work per start.
  const wrap = (x: string, k: string) => {
    if (context !== "boxed") return `${x}+?`
    const a = `${prefix}${k}_box`
    const b = `${prefix}${k}_brace`
    return `(?=(?<${a}>${x}*?\\\\boxed\\{))\\k<${a}>(?=(?<${b}>${x}+?\\}))\\k<${b}>${x}*?`
  }
  dd = wrap(dd, "dd")
  db = wrap(db, "db")
  id = wrap(id, "id")
  ip = wrap(ip, "ip")
  ib = wrap(ib, "ib")
  const patterns = [
    `(?<!\\\\)\\$\\$(?<${prefix}latexDisplayDollar>${dd})(?<!\\\\)\\$\\$`,
    `(?<!\\\\)\\\\\\[(?<${prefix}latexDisplayBracket>${db})(?<!\\\\)\\\\\\]`,
    `(?<![\\\\\\d])\\$(?<${prefix}latexInlineDollar>${id})(?<!\\\\)\\$`,
    `(?<!\\\\)\\\\\\((?<${prefix}latexInlineParenthesis>${ip})(?<!\\\\)\\\\\\)`,
    `\\s\\[(?<${prefix}latexInlineBracket>${ib})\\]\\s`
  ]
  if (context === "plain") {
    const simple = "-?\\d+(?:[.,]\\d+)?"
    patterns.push(`(?<${prefix}latexFraction>-?\\\\frac\\{${simple}\\}\\{${simple}\\})`)
  }
  return `(?:(?:${patterns.join("|")})\\s*${pct}?)`
}

type Kind = "latex" | "expr"
interface Pattern {
  /** Every match, left to right, as a global `RegExp.exec` loop would give them. */
  readonly matches: (text: string) => Iterable<RegExpExecArray>
  readonly priority: number
  readonly kind: Kind
  /** A cheap necessary condition on the lower-cased text (skips the regex when false). */
  readonly gate: (lower: string) => boolean
}

/** At most this many matches of one pattern are considered (only garbage has more). */
const MAX_MATCHES = 10_000

/** The matches of a global regex (exec on the shared regex: matchAll would clone the big pattern on every call). */
const regexMatches = (re: RegExp) =>
  function* (text: string): Generator<RegExpExecArray> {
    re.lastIndex = 0
    try {
      let n = 0
      for (let m = re.exec(text); m !== null && n++ < MAX_MATCHES; m = re.exec(text)) {
        if (m[0].length === 0) re.lastIndex++
        yield m
      }
    } finally {
      re.lastIndex = 0
    }
  }

/**
 * The matches of Math-Verify's `(?P<latexBoxed>\\boxed{.+})` (DOTALL, greedy) in linear time: the regex
 * engine tries every `\boxed{` and scans to the end from each one, quadratic in unclosed boxes. The
 * greedy `.+\}` ends at the last "}" of the text, so the only match runs from the first `\boxed{` that
 * has at least one character before that "}" to it; after it no "}" is left for another match.
 */
function* greedyBoxed(text: string): Generator<RegExpExecArray> {
  const close = text.lastIndexOf("}")
  const start = text.indexOf("\\boxed{")
  if (close < 0 || start < 0) return
  // leftmost `\boxed{` at i with i + 8 <= close (".+" needs one character); the first one is leftmost
  if (start + 8 > close) return
  const full = text.slice(start, close + 1)
  const m = Object.assign([full], { index: start, input: text, groups: { first_latexBoxed: full } }) as unknown as RegExpExecArray
  yield m
}

const hasAny = (...subs: ReadonlyArray<string>) => (lower: string) => subs.some((x) => lower.includes(x))

const latexPatterns = (withoutAnchor: boolean, boxedPriority: number): Array<Pattern> => {
  const next = (ctx: "boxed" | "plain", lead: string) =>
    [1, 2, 3, 4, 5].map((i) => `${lead}(?:\\s*(?:,?and|,?or|,)\\s*${envPattern(`next${i}_`, ctx)})?`).join("")
  const L = `(?:${envPattern("first_", "plain")}${next("plain", "")})`
  const env = hasAny("$", "\\[", "\\(", "\\frac", "[")
  const out: Array<[string, number, (lower: string) => boolean]> = [
    [`${ci("final answer is")}:?\\s*${L}\\.?\\s?I hope`, 0, hasAny("final answer is")],
    [`${ci("final answer")}.{0,100}?\\s+is:?\\s*${L}`, 50, hasAny("final answer")],
    [`${ci("answer")}:.{0,50}?${L}`, 100, hasAny("answer:")],
    [`${ci("answer")}.{0,50}?${L}`, 200, hasAny("answer")]
  ]
  if (withoutAnchor) out.push([L, 300, env])
  if (boxedPriority >= 0) {
    out.push([`${envPattern("first_", "boxed")}${next("boxed", "\\s*")}`, boxedPriority, hasAny("\\boxed")])
  }
  const patterns = out.map(([p, priority, gate]) => ({ matches: regexMatches(new RegExp(p, "gs")), priority, kind: "latex" as const, gate }))
  if (boxedPriority >= 0) patterns.push({ matches: greedyBoxed, priority: boxedPriority, kind: "latex", gate: hasAny("\\boxed{") })
  return patterns
}

const exprPatterns = (): Array<Pattern> => {
  const numberRe = "(?<![\\d])(?:(?<integer1>-?[1-9]\\d{0,2}(?:[ ,]\\d{3})+)(?<decimal1>\\.\\d+)?|(?<integer2>-?\\d+)(?<decimal2>[.,]\\d+)|(?<decimal3>\\.\\d+)|(?<integer3>-?\\d+))(?<percent>\\s*(?:%|[Pp]ercent|\\s*[Pp]ercentage|\\s*[Pp]ct))?"
  const ops = "\\+\\-\\*\\×\\/\\^\\(\\)\\÷"
  const chars = `[\\d\\.\\s${ops}]`
  const exprRe = `(?<expr>-?\\(?-?\\d${chars}*[${ops}]${chars}+\\)?)`
  const currency = "$€£¥₹₽₪₩₫฿₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₴₵₶₷₸₹₺₻₼₽₾₿".replace(/[$]/g, "\\$")
  const prefix = "(?:^|\\s|\\=)(?:\\*\\*)?"
  const suffix = "(?:\\*\\*)?(?:\\.|,|:|\\s|\\)|\\$|$)"
  const exprWith = `(?:${prefix}${exprRe}${suffix})`
  const numberWith = `(?:${prefix}[${currency}]?${numberRe})`
  const either = `(?:${exprWith}|${numberWith})`
  const digits = (lower: string) => /[\d.]/.test(lower)
  const out: Array<[string, number, (lower: string) => boolean]> = [
    [`${ci("final answer is")}:?\\s*${either}\\.?\\s?I hope`, 0, hasAny("final answer is")],
    [`${ci("final answer")}[^\\n]{0,100}?\\s+is:?${either}`, 50, hasAny("final answer")],
    [`${ci("answer")}:(?:[^\\n]{0,100}=\\s*|[^\\n]{0,50}?)${either}(?!\\s*=)`, 100, hasAny("answer:")],
    [`${ci("answer")}(?:[^\\n]{0,100}=\\s*|[^\\n]{0,50}?)${either}(?!\\s*=)`, 200, hasAny("answer")],
    [exprWith, 300, digits],
    [numberWith, 300, digits]
  ]
  return out.map(([p, priority, gate]) => ({ matches: regexMatches(new RegExp(p, "g")), priority, kind: "expr" as const, gate }))
}

const GOLD_PATTERNS = [...latexPatterns(true, 50), ...exprPatterns()].sort((a, b) => a.priority - b.priority)
const ANSWER_PATTERNS = latexPatterns(false, 0).sort((a, b) => a.priority - b.priority)

const GOLD_NORM: MvNormalization = { units: true, malformedOperators: true, nits: true }
const ANSWER_NORM: MvNormalization = { units: true, malformedOperators: false, nits: false }

const pct = (v: Value): Value => (v.t === "scalar" ? { t: "scalar", s: { k: "pct", x: v.s } } : v)

const tryParse = (latex: string): Value | undefined => {
  try {
    return parseLatexValue(latex)
  } catch (e) {
    if (e instanceof LatexParseError || e instanceof RangeError) {
      // latex2sympy's fallback: the part after the last "=" of an equation chain
      if (!latex.includes(",") && !latex.includes(";")) {
        const parts = latex.split(/(?<![\\<!>])=/)
        if (parts.length > 2) {
          try {
            return parseLatexValue(parts[parts.length - 1]!)
          } catch (e2) {
            if (e2 instanceof BudgetExceeded) throw e2
            return undefined
          }
        }
      }
      return undefined
    }
    throw e
  }
}

const PREFIXES = ["first", "next1", "next2", "next3", "next4", "next5"]
const SPAN_KINDS = ["latexDisplayDollar", "latexDisplayBracket", "latexInlineDollar", "latexInlineParenthesis", "latexInlineBracket", "latexFraction", "latexBoxed"]

const extractLatex = (m: RegExpMatchArray, norm: MvNormalization): { value: Value | undefined; text: string } => {
  const groups = m.groups ?? {}
  const found: Array<{ latex: string; prefix: string }> = []
  for (const prefix of PREFIXES) {
    // one alternative of an environment matches, so at most one of these groups is set
    for (const kind of SPAN_KINDS) {
      const v = groups[`${prefix}_${kind}`]
      if (v !== undefined && v !== "") {
        found.push({ latex: v, prefix })
        break
      }
    }
  }
  if (found.length === 0) return { value: undefined, text: "" }
  const values: Array<Value | undefined> = []
  const texts: Array<string> = []
  for (const f of found) {
    const normalized = normalizeLatex(f.latex, norm)
    texts.push(normalized)
    let v = tryParse(normalized)
    if (v !== undefined && groups[`${f.prefix}_percent`]) v = pct(v)
    values.push(v)
  }
  if (values.length > 1 && values.every((v) => v !== undefined)) {
    const items = (values as Array<Value>).flatMap((v) => (v.t === "set" ? v.items : [v]))
    return { value: { t: "set", items }, text: texts.join(" and ") }
  }
  return { value: values[0], text: texts[0]! }
}

const extractExpr = (m: RegExpMatchArray): { value: Value | undefined; text: string } => {
  const g = m.groups ?? {}
  const integer = [g.integer1, g.integer2, g.integer3].find((v) => v) ?? ""
  const decimal = [g.decimal1, g.decimal2, g.decimal3].find((v) => v) ?? ""
  if (integer || decimal) {
    let int = integer.replace(/[, ]/g, "")
    const neg = int.startsWith("-")
    int = int.replace(/^-/, "").replace(/^0+/, "")
    if (int === "") int = "0"
    const numStr = `${neg ? "-" : ""}${int}${decimal.replace(",", ".")}`
    let v: Value = { t: "scalar", s: neg ? { k: "neg", x: { k: "num", text: numStr.slice(1), float: numStr.includes(".") } } : { k: "num", text: numStr, float: numStr.includes(".") } }
    if (g.percent) v = pct(v)
    return { value: v, text: numStr }
  }
  const expr = g.expr ?? ""
  if (expr) {
    const v = tryParse(expr.replace(/\n/g, " ").replace(/\*\*/g, "^").replace(/×/g, "\\times ").replace(/÷/g, "\\div "))
    return { value: v, text: expr }
  }
  return { value: undefined, text: expr }
}

/**
 * The steps the extraction regexes can take on `text`, within a constant factor. Every span pattern
 * scans lazily from its opening delimiter to its closing one. `$…$`, `$$…$$` and ` […] ` spans end at the
 * next delimiter of their kind, which is the next start, so they cost O(n) in all. `\(…\)` (which may
 * contain `\(`, not a newline) and `\[…\]` (which may contain `\[`) can overlap: each opening
 * scans to its closing delimiter, and the sum of those distances is the quadratic part.
 */
const regexWork = (text: string): number => {
  const n = text.length
  // an "answer" anchor retries the spans that open within its `.{0,50}?` reach: weight by the anchors
  // in the 60 characters before an opening
  const anchors = new Int32Array(n + 1)
  const lower = text.toLowerCase()
  for (let at = lower.indexOf("answer"); at >= 0; at = lower.indexOf("answer", at + 1)) anchors[at + 1] = 1
  for (let i = 1; i <= n; i++) anchors[i]! += anchors[i - 1]!
  const weight = (i: number) => 1 + anchors[i]! - anchors[Math.max(0, i - 60)]!
  // each anchor also tries every span alternative at each of the 50 positions after it (≈ 2000 steps)
  let work = n + 2000 * anchors[n]!
  let parenClose = n
  let newline = n
  let bracketClose = n
  for (let i = n - 2; i >= 0; i--) {
    const c = text.charCodeAt(i)
    if (c === 10) newline = i
    else if (c === 92) {
      const d = text.charCodeAt(i + 1)
      if (d === 41) parenClose = i // \)
      else if (d === 93) bracketClose = i // \]
      else if (d === 40) work += (Math.min(parenClose, newline) - i) * weight(i) // \(
      else if (d === 91) work += (bracketClose - i) * weight(i) // \[
    }
  }
  return work
}

/**
 * The steps of the plain-expression patterns (gold answers only): an expression starts at a digit and
 * its `[digits . whitespace operators]*` run is scanned to its end and back from every such start.
 */
const exprWork = (text: string): number => {
  let work = text.length
  let runEnd = text.length
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text[i]!
    if (!/[\d.\s+\-*×/^()÷]/.test(c)) runEnd = i
    else if (c >= "0" && c <= "9") work += runEnd - i
  }
  return work
}

/**
 * Regex steps per millisecond of work budget: a scan predicted to need more than the budget allows is
 * refused at once (`TimedOut`). Measured here at ≈ 8 ns per step, so the default 1000 ms admits 4·10⁷
 * steps, ≈ 0.3 s.
 */
const REGEX_STEPS_PER_MS = 40_000

const extract = (text: string, patterns: ReadonlyArray<Pattern>, norm: MvNormalization, firstMatch: boolean): Array<Extracted> => {
  checkPredictedWork(regexWork(text) + (patterns.some((p) => p.kind === "expr") ? exprWork(text) : 0), REGEX_STEPS_PER_MS)
  const extracted: Array<Extracted> = []
  const fallbacks: Array<string> = []
  const lower = text.toLowerCase()
  let i = 0
  while (i < patterns.length) {
    const priority = patterns[i]!.priority
    const group: Array<Pattern> = []
    while (i < patterns.length && patterns[i]!.priority === priority) group.push(patterns[i++]!)
    const matches: Array<{ m: RegExpMatchArray; start: number; end: number; kind: Kind; order: number }> = []
    let order = 0
    for (const p of group) {
      if (!p.gate(lower)) continue
      checkBudget()
      for (const m of p.matches(text)) {
        checkBudget()
        const start = m.index
        matches.push({ m, start, end: start + m[0].length, kind: p.kind, order: order++ })
      }
    }
    // rightmost end first, then leftmost start, then pattern order (Python's stable sort, reversed)
    matches.sort((a, b) => b.end - a.end || a.start - b.start || b.order - a.order)
    let found = false
    for (const x of matches) {
      checkBudget()
      const r = x.kind === "latex" ? extractLatex(x.m, norm) : extractExpr(x.m)
      found = true
      if (r.text) fallbacks.push(r.text)
      if (r.value !== undefined) {
        extracted.push({ _tag: "Value", value: r.value, text: r.text })
        break
      }
      if (firstMatch) break
    }
    if (extracted.length > 0 || (found && firstMatch)) break
  }
  if (fallbacks.length > 0) extracted.push({ _tag: "Text", text: fallbacks[0]! })
  return extracted
}

/**
 * The string passed to `parse` for a gold answer: the gold itself when it contains `\boxed` or is
 * already delimited (`$`, `\(`, `\[`), else `\boxed{gold}`.
 *
 * @category extraction
 * @example
 * import { MathVerify } from "@papo/reward"
 * MathVerify.goldInput("B") // => "\\boxed{B}"
 */
export const goldInput = (gold: string): string =>
  gold.includes("\\boxed") || /(?<!\\)\$/.test(gold) || gold.includes("\\(") || gold.includes("\\[") ? gold : `\\boxed{${gold}}`

/**
 * Parses a gold answer (after `goldInput`); an empty list means "unparseable" (TRL skips the sample).
 *
 * @category extraction
 */
export const parseGold = (gold: string): Array<Extracted> => extract(goldInput(gold), GOLD_PATTERNS, GOLD_NORM, false)

/**
 * Parses a model response the way TRL's `accuracy_reward` does.
 *
 * @category extraction
 */
export const parseAnswer = (response: string): Array<Extracted> => extract(response, ANSWER_PATTERNS, ANSWER_NORM, true)

// ---------------------------------------------------------------------------------------------------
// verify

type Rel = Extract<Value, { t: "rel" }>

const isSymbolOnly = (s: Scalar): boolean => {
  switch (s.k) {
    case "sym": return true
    case "mul": return s.factors.every(isSymbolOnly)
    case "div": return isSymbolOnly(s.num) && isSymbolOnly(s.den)
    case "add": return s.terms.every(isSymbolOnly)
    case "neg": return isSymbolOnly(s.x)
    case "pow": return isSymbolOnly(s.base) && isSymbolOnly(s.exp)
    default: return false
  }
}
const isRelation = (v: Value): v is Rel => v.t === "rel"
const isEquation = (v: Value) => v.t === "rel" && v.ops.every((o) => o === "=")
const isAssignment = (v: Value) => isEquation(v) && v.t === "rel" && v.sides[0]!.t === "scalar" && isSymbolOnly((v.sides[0] as { s: Scalar }).s)
const lastRhs = (v: Rel): Value => v.sides[v.sides.length - 1]!

const isNumberAtom = (s: Scalar): boolean => s.k === "num" || (s.k === "neg" && s.x.k === "num") || (s.k === "pct" && isNumberAtom(s.x))
const isFloatAtom = (s: Scalar): boolean => (s.k === "num" && s.float) || (s.k === "neg" && isFloatAtom(s.x)) || (s.k === "pct" && isFloatAtom(s.x))
const hasFloat = (s: Scalar): boolean => {
  switch (s.k) {
    case "num": return s.float
    case "add": return s.terms.some(hasFloat)
    case "mul": return s.factors.some(hasFloat)
    case "div": return hasFloat(s.num) || hasFloat(s.den)
    case "pow": return hasFloat(s.base) || hasFloat(s.exp)
    case "neg": case "pct": return hasFloat(s.x)
    case "fn": return s.args.some(hasFloat)
    default: return false
  }
}

const valueOf = (s: Scalar): readonly [number, number] | undefined => {
  const e = toMathjs(s)
  try {
    if (freeSymbols(e).length > 0) return undefined
  } catch {
    return undefined
  }
  return evaluateIn(e, {})
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6

const scalarEq = (a: Scalar, b: Scalar): boolean => {
  const ea = toMathjs(a)
  const eb = toMathjs(b)
  if (ea === eb || canonical(a) === canonical(b)) return true
  if (isNumberAtom(a) || isNumberAtom(b)) {
    if (isFloatAtom(a) || isFloatAtom(b)) {
      const x = valueOf(a)
      const y = valueOf(b)
      if (x !== undefined && y !== undefined && x[1] === 0 && y[1] === 0 && round6(x[0]) === round6(y[0])) return true
    }
  }
  // integers, rationals and integer powers (symbols at rational points): exact, as sympy compares them
  if (!hasFloat(a) && !hasFloat(b)) {
    const exact = exactlyEqual(a, b)
    if (exact !== undefined) return exact
  }
  // symbolic: simplify(a − b) is zero; exact when a float is involved
  const relTol = hasFloat(a) || hasFloat(b) ? 0 : 1e-9
  const x = approx(a)
  const y = approx(b)
  if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)) {
    // constant real expressions: plain double arithmetic suffices (mathjs for symbols, functions, complex)
    return Math.abs(x - y) <= relTol * Math.max(1, Math.abs(x), Math.abs(y))
  }
  return numericallyEqual(ea, eb, relTol)
}

const letters = (s: Scalar): string | undefined => {
  if (s.k === "sym") return s.name
  if (s.k === "const" && s.name === "E") return "e"
  if (s.k === "mul") {
    let out = ""
    for (const f of s.factors) {
      const l = f.k === "sym" ? f.name : f.k === "const" && f.name === "E" ? "e" : undefined
      if (l === undefined) return undefined
      out += l
    }
    return out
  }
  return undefined
}

const symbolsEq = (a: Scalar, b: Scalar): boolean => {
  const la = letters(a)
  const lb = letters(b)
  if (la === undefined || lb === undefined) return false
  return la.toLowerCase() === lb.toLowerCase()
}

const sortKey = (v: Value): number => {
  const u = v.t === "rel" && isAssignment(v) ? lastRhs(v) : v
  if (u.t !== "scalar") return NaN
  const x = approx(u.s)
  return x === undefined ? NaN : x
}

const elementwise = (a: ReadonlyArray<Value>, b: ReadonlyArray<Value>): boolean => a.length === b.length && a.every((x, i) => valueEq(x, b[i]!))

const sortedItems = (items: ReadonlyArray<Value>): Array<Value> =>
  [...items].sort((x, y) => {
    const kx = sortKey(x)
    const ky = sortKey(y)
    if (Number.isNaN(kx) || Number.isNaN(ky)) return Number.isNaN(kx) === Number.isNaN(ky) ? show(x).localeCompare(show(y)) : Number.isNaN(kx) ? 1 : -1
    return kx - ky
  })

const sameMembers = (a: ReadonlyArray<Value>, b: ReadonlyArray<Value>): boolean => {
  if (a.length !== b.length) return false
  const used = new Array<boolean>(b.length).fill(false)
  return a.every((x) => {
    const j = b.findIndex((y, k) => !used[k] && valueEq(x, y))
    if (j < 0) return false
    used[j] = true
    return true
  })
}

const setsEq = (gold: Value, pred: Value): boolean => {
  const asSet = (v: Value): Value => (v.t === "set" || v.t === "tuple" || v.t === "interval" || v.t === "union" ? v : { t: "set", items: [v] })
  const a = asSet(gold)
  const b = asSet(pred)
  if (a.t === "interval" && b.t === "interval") return a.lopen === b.lopen && a.ropen === b.ropen && scalarEq(a.lo, b.lo) && scalarEq(a.hi, b.hi)
  if (show(a) === show(b)) return true
  if (a.t === "set" && b.t === "set") return sameMembers(a.items, b.items) || elementwise(sortedItems(a.items), sortedItems(b.items))
  if (a.t === "union" && b.t === "union") return sameMembers(a.parts, b.parts)
  if ((a.t === "set" || a.t === "tuple") && (b.t === "set" || b.t === "tuple")) {
    if (a.t === "tuple" && b.t === "set") return elementwise(a.items, b.items)
    if (a.t === "set" && b.t === "tuple") return elementwise(sortedItems(a.items), b.items)
    return elementwise(a.items, b.items)
  }
  const asTuple = (i: Value & { t: "interval" }): Array<Value> => [{ t: "scalar", s: i.lo }, { t: "scalar", s: i.hi }]
  if (a.t === "interval" && (b.t === "set" || b.t === "tuple") && a.lopen && a.ropen && b.items.length === 2) return elementwise(asTuple(a), b.t === "set" ? b.items : b.items)
  if (b.t === "interval" && (a.t === "set" || a.t === "tuple") && b.lopen && b.ropen && a.items.length === 2) return elementwise(a.t === "set" ? sortedItems(a.items) : a.items, asTuple(b))
  return false
}

const INVERSE: Record<RelOp, RelOp> = { "<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!=" }

const diff = (r: Rel, i: number): Scalar | undefined => {
  const l = r.sides[i]!
  const rr = r.sides[i + 1]!
  if (l.t !== "scalar" || rr.t !== "scalar") return undefined
  return { k: "add", terms: [l.s, { k: "neg", x: rr.s }] }
}

/** (lhs − rhs) of two relations are proportional: c such that a = c·b at generic points, or undefined. */
const ratio = (a: Scalar, b: Scalar): number | undefined => {
  const ea = toMathjs(a)
  const eb = toMathjs(b)
  let symbols: Array<string>
  try {
    symbols = [...new Set([...freeSymbols(ea), ...freeSymbols(eb)])].sort()
    if (freeSymbols(ea).join() !== freeSymbols(eb).join()) return undefined
  } catch {
    return undefined
  }
  let c: number | undefined
  for (let k = 0; k < 3; k++) {
    const scope = pointScope(symbols, k)
    const x = evaluateIn(ea, scope)
    const y = evaluateIn(eb, scope)
    if (x === undefined || y === undefined || x[1] !== 0 || y[1] !== 0 || !Number.isFinite(x[0]) || !Number.isFinite(y[0]) || y[0] === 0) return undefined
    const r = x[0] / y[0]
    if (c === undefined) c = r
    else if (Math.abs(r - c) > 1e-9 * Math.max(1, Math.abs(c))) return undefined
  }
  return c
}

const relationsEq = (g: Rel, p: Rel): boolean => {
  if (g.ops.length !== p.ops.length) return false
  for (let i = 0; i < g.ops.length; i++) {
    const go = g.ops[i]!
    const po = p.ops[i]!
    const dg = diff(g, i)
    const dp = diff(p, i)
    if (dg === undefined || dp === undefined) {
      if (!(go === po && valueEq(g.sides[i]!, p.sides[i]!) && valueEq(g.sides[i + 1]!, p.sides[i + 1]!))) return false
      continue
    }
    if (go === po && scalarEq(dg, dp)) continue
    if (INVERSE[go] === po && scalarEq(dg, { k: "neg", x: dp })) continue
    const c = ratio(dg, dp)
    if (c === undefined || c === 0) return false
    if (go === "=" && po === "=") continue
    if (go === "!=" && po === "!=") continue
    if (go === po && c > 0) continue
    if (INVERSE[go] === po && c < 0) continue
    return false
  }
  return true
}

/** `x > a`, `a < x < b` as an interval (sympy's `as_set` for one variable), else undefined. */
const relationAsSet = (r: Rel): Value | undefined => {
  const scal = r.sides.map((s) => (s.t === "scalar" ? s.s : undefined))
  if (scal.some((s) => s === undefined)) return undefined
  const ss = scal as Array<Scalar>
  const oo: Scalar = { k: "const", name: "oo" }
  const noo: Scalar = { k: "neg", x: oo }
  if (r.ops.length === 1) {
    const [l, rr] = ss as [Scalar, Scalar]
    const op = r.ops[0]!
    const varLeft = l.k === "sym"
    const v = varLeft ? rr : l
    const o = varLeft ? op : INVERSE[op]!
    if (!(varLeft || rr.k === "sym")) return undefined
    if (o === ">") return { t: "interval", lo: v, hi: oo, lopen: true, ropen: true }
    if (o === ">=") return { t: "interval", lo: v, hi: oo, lopen: false, ropen: true }
    if (o === "<") return { t: "interval", lo: noo, hi: v, lopen: true, ropen: true }
    if (o === "<=") return { t: "interval", lo: noo, hi: v, lopen: true, ropen: false }
    return undefined
  }
  if (r.ops.length === 2 && ss[1]!.k === "sym") {
    const [o1, o2] = r.ops as [string, string]
    if ((o1 === "<" || o1 === "<=") && (o2 === "<" || o2 === "<=")) return { t: "interval", lo: ss[0]!, hi: ss[2]!, lopen: o1 === "<", ropen: o2 === "<" }
    if ((o1 === ">" || o1 === ">=") && (o2 === ">" || o2 === ">=")) return { t: "interval", lo: ss[2]!, hi: ss[0]!, lopen: o2 === ">", ropen: o1 === ">" }
  }
  return undefined
}

/** Math-Verify's `sympy_expr_eq(gold, pred)` on the value model (strict mode). */
const valueEq = (gold0: Value, pred0: Value): boolean => {
  checkBudget()
  let gold = gold0
  let pred = pred0
  const goldAssign = isAssignment(gold)
  const predAssign = isAssignment(pred)
  const goldEq = isEquation(gold)
  const predEq = isEquation(pred)
  if (goldAssign && gold.t === "rel" && gold.sides.length > 2) gold = { t: "rel", ops: ["="], sides: [gold.sides[0]!, lastRhs(gold)] }
  if (predAssign && pred.t === "rel" && pred.sides.length > 2) pred = { t: "rel", ops: ["="], sides: [pred.sides[0]!, lastRhs(pred)] }
  if (predEq && !goldEq && pred.t === "rel") pred = lastRhs(pred)
  else if (goldAssign && !predEq && gold.t === "rel") gold = lastRhs(gold)
  if (isRelation(gold) && (pred.t === "set" || pred.t === "interval" || pred.t === "union")) {
    const s = relationAsSet(gold)
    if (s !== undefined) gold = s
  }
  if (show(gold) === show(pred)) return true
  if (isRelation(gold) && isRelation(pred)) return relationsEq(gold, pred)
  if (isRelation(gold) || isRelation(pred)) return false
  const setLike = (v: Value) => v.t === "set" || v.t === "tuple" || v.t === "interval" || v.t === "union"
  if (setLike(gold) || setLike(pred)) return setsEq(gold, pred)
  if (gold.t === "matrix" || pred.t === "matrix") {
    if (gold.t !== "matrix" || pred.t !== "matrix") return false
    if (gold.rows.length !== pred.rows.length || gold.rows[0]!.length !== pred.rows[0]!.length) return false
    return gold.rows.every((r, i) => r.every((x, j) => scalarEq(x, pred.rows[i]![j]!)))
  }
  if (gold.t !== "scalar" || pred.t !== "scalar") return false
  if (gold.s.k === "sym" || pred.s.k === "sym") return symbolsEq(gold.s, pred.s)
  return scalarEq(gold.s, pred.s)
}

/**
 * Math-Verify's `verify(gold, answer)`: true when any gold item matches any answer item.
 *
 * @category grading
 */
export const verify = (gold: ReadonlyArray<Extracted>, answer: ReadonlyArray<Extracted>): boolean =>
  gold.some((g) =>
    answer.some((a) => {
      if (g._tag === "Text" && a._tag === "Text") {
        const x = g.text.trim()
        const y = a.text.trim()
        return x.length > 0 && y.length > 0 && x === y
      }
      if (g._tag === "Value" && a._tag === "Value") {
        try {
          return valueEq(g.value, a.value)
        } catch (e) {
          if (e instanceof BudgetExceeded) throw e
          return false
        }
      }
      return false
    })
  )

/**
 * TRL's `accuracy_reward` for one sample: true/false, or undefined when the gold does not parse (TRL
 * returns None and skips the sample).
 *
 * @category grading
 * @example
 * import { MathVerify } from "@papo/reward"
 * MathVerify.grade("The answer is \\boxed{\\{3,2,1\\}}", "\\{1,2,3\\}") // => true
 * MathVerify.grade("\\boxed{50\\%}", "0.5") // => true
 */
export const grade = (response: string, gold: string): boolean | undefined => {
  const g = parseGold(gold)
  if (g.length === 0) return undefined
  return verify(g, parseAnswer(response))
}
