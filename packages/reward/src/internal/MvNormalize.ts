/**
 * The LaTeX clean-up Math-Verify applies before parsing (latex2sympy2_extended `normalize_latex`, as
 * configured by Math-Verify 0.8.0 / TRL): boxed extraction (every box, joined by commas), basic LaTeX
 * clean-up, unit removal, the "nits" and the malformed-operator fixes. The unit list is the library's data.
 *
 * @internal
 */

/** Which normalization groups run (Math-Verify's `NormalizationConfig`). */
export interface MvNormalization {
  readonly units: boolean
  readonly malformedOperators: boolean
  readonly nits: boolean
}

const UNITS = [
  "integerpoint", "feet", "sue", "digit", "pound", "meal", "edge", "student", "children ticket", "multiple", "east",
  "degree", "mph", "kmph", "ft", "m square", " m east", "sq m", "deg", "mile", "q .", "monkey", "prime", "ratio",
  "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per", "dm", "lt", "gain", "ab", "way", "west", "a .",
  "b .", "c .", "d .", "e .", "f .", "g .", "h .", "t", "h", "no change", "men", "soldier", "pie", "bc", "excess",
  "st", "inches", "noon", "cent", "by", "gal", "kmh", "c", "acre", "rise", "a . m", "th", "π r 2", "sq", "mark",
  "l", "toy", "coin", "sq . m", "gallon", "° f", "profit", "minw", "yr", "women", "am", "pm", "hr", "cu cm",
  "square", "v â € ™", "are", "rupee", "rounds", "cubic", "cc", "mtr", "s", "ohm", "number", "kmph", "day", "hour",
  "minute", "min", "second", "man", "woman", "sec", "cube", "mt", "sq inch", "mp", "∏ cm ³", "hectare", "more",
  "sec", "unit", "cu . m", "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m", "cm", "mm", "apple", "liter",
  "loss", "yard", "pure", "year", "increase", "decrease", "d", "less", "Surface", "litre", "pi sq m", "s .",
  "metre", "meter", "inch"
]
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
const unitsRe = new RegExp(`(\\d|\\}|\\s)\\s*(?:(?:${UNITS.map(esc).join("|")})(?:s|es)?)\\s*$`)
const unitSuperscriptRe = /(\\(?:text|mbox)\{.*?\})(\^\d|\{\^\d\})?$/

const rLeft = /\\m?left(\\\{|\{|\\\||\||\[|\(|\\rbracl|\\lgroup|\\lbrace|\\lbrack|\\vert|\\lvert|\\lceil|\\lfloor|\\vert|\\lvert|\\langle|\\llcorner|\\ulcorner)/g
const rRight = /\\m?right(\\\}|\}|\\\||\||\]|\)|\\rbrack|\\rgroup|\\rbrace|\\rbrack|\\vert|\\rvert|\\rceil|\\rfloor|\\vert|\\rvert|\\rangle|\\lrcorner|\\urcorner)/g
const permutationRe = /\(([a-zA-Z0-9+\-*/\\ ]+?)\)_\{([a-zA-Z0-9+\-*/\\ ]+?)\}/g
const toRemoveRe = /\\mathrm\{th\}|\\!\s*|\\text\s*\{\s*\}|\\\$|\$|(?<!\\)["']|\\displaystyle/g

const REPLACEMENTS: ReadonlyArray<readonly [string, string]> = [
  ["\\\\math(?:rm|it|bf)", "\\text"],
  ["\\\\text(?:normal|bf|it|rm)", "\\text"],
  ["\\\\(?:d|t|c)frac", "\\frac"],
  ["\\s\\.", " 0."],
  ["\\{\\.", "{0."],
  ["\\~\\=", "\\approx"],
  ["\\s*\\{\\s*,\\s*\\}", ","],
  ["(?<![a-zA-Z])(,?\\s*(?:and|or))(?![a-zA-Z])", ","],
  ["(,?\\s*\\\\text\\{\\s*(?:and|or)\\s*\\})", ","],
  ["(?<!\\\\)\\\\\\s", " "],
  ["infinity", "\\infty"],
  [",?(\\\\ldots)", " "],
  ["\\s*\\bpercentage\\b", "%"],
  ["\\s*\\bpercent\\b", "%"],
  ["\\s*\\bpct\\b", "%"],
  ["\\\\text\\{percent\\}", "%"],
  ["\\\\text\\{pct\\}", "%"],
  ["\\\\text\\{percentage\\}", "%"],
  ["((?<!\\\\)inf(?!inity))", "\\infty"],
  [" sqrt", "\\sqrt"]
]
const replaceRe = new RegExp(REPLACEMENTS.map(([p], i) => `(?<g${i}>${p.replace(/\((?!\?)/g, "(?:")})`).join("|"), "g")
const replaceInLatex = (text: string): string =>
  text.replace(replaceRe, (...args) => {
    const groups = args[args.length - 1] as Record<string, string | undefined>
    for (let i = 0; i < REPLACEMENTS.length; i++) if (groups[`g${i}`] !== undefined) return REPLACEMENTS[i]![1]
    return args[0] as string
  })

/** Every `\boxed{…}`/`\fbox{…}` content, right to left as latex2sympy2_extended scans, joined by commas. */
export const extractAllBoxed = (text: string): string => {
  const results: Array<string> = []
  let current = text.length
  let maxPos = text.length
  // the last occurrence of each before `current`, searched again only once passed (one search per
  // occurrence: searching both every time is quadratic when one of them never occurs)
  let b = text.lastIndexOf("\\boxed", current - 1)
  let f = text.lastIndexOf("\\fbox", current - 1)
  for (let guard = 0; guard < 100_000; guard++) {
    if (b >= current) b = text.lastIndexOf("\\boxed", current - 1)
    if (f >= current) f = text.lastIndexOf("\\fbox", current - 1)
    if (b < 0 && f < 0) break
    const start = Math.max(b, f)
    let p = start + (b > f ? 6 : 5)
    while (p < maxPos && /\s/.test(text[p]!)) p++
    if (p >= maxPos) break
    if (text[p] === "{") {
      let depth = 1
      let end = -1
      for (let i = p + 1; i < maxPos; i++) {
        const c = text[i]
        if (c === "{") depth++
        else if (c === "}" && --depth === 0) {
          end = i
          break
        }
      }
      if (end < 0) {
        if (results.length === 0) results.push(text.slice(p))
        break
      }
      results.push(text.slice(p + 1, end).trim())
      maxPos = start
    } else {
      if (results.length === 0) results.push(text.slice(p))
      break
    }
    current = start
    if (current <= 0) break
  }
  return results.length === 0 ? text : results.reverse().join(",")
}

const fixFracs = (text: string): string => {
  const parts = text.split("\\frac")
  let out = parts[0]!
  for (let sub of parts.slice(1)) {
    sub = sub.trimStart()
    out += "\\frac"
    if (sub.length > 0 && sub[0] === "{") out += sub
    else if (sub.length < 2) return text
    else {
      const a = sub[0]!
      const b = sub[1]!
      out += b !== "{" ? `{${a}}{${b}}${sub.slice(2)}` : `{${a}}${b}${sub.slice(2)}`
    }
  }
  return out
}

const fixSqrt = (text: string): string => {
  if (!text.includes("\\sqrt")) return text
  const parts = text.split("\\sqrt")
  let out = parts[0]!
  for (let sp of parts.slice(1)) {
    sp = sp.trimStart()
    out += sp.length > 0 && sp[0] !== "{" && sp[0] !== "[" ? `\\sqrt{${sp[0]}}${sp.slice(1)}` : `\\sqrt${sp}`
  }
  return out
}

const fixASlashB = (text: string): string => {
  const parts = text.split("/")
  if (parts.length !== 2) return text
  const [a, b] = parts as [string, string]
  if (!/^\s*[+-]?\d+\s*$/.test(a) || !/^\s*[+-]?\d+\s*$/.test(b)) return text
  const ai = BigInt(a.trim())
  const bi = BigInt(b.trim())
  return text === `${ai}/${bi}` ? `\\frac{${ai}}{${bi}}` : text
}

const MALFORMED: ReadonlyArray<readonly [RegExp, string]> = [
  [/\^\s?\((.*?)\)/g, "^{$1}"],
  [/sqrt\s?\((.*?)\)/g, "\\sqrt{$1}"],
  [/\\frac\s?(\d)\s?(\d+)/g, "\\frac{$1}{$2}"],
  [/\\log_\s?(\d)\s?(\d+)/g, "\\log_{$1}{$2}"],
  [/\\frac\s?\{(.*?)\}\s?(\d)/g, "\\frac{$1}{$2}"],
  [/\\frac\s?(\d)\s?\{(.*?)\}/g, "\\frac{$1}{$2}"],
  [/\\sqrt\s?(\d)/g, "\\sqrt{$1}"]
]

/** latex2sympy2_extended's `normalize_latex` with boxed="all" and basic_latex on. */
export const normalizeLatex = (input: string, cfg: MvNormalization): string => {
  let text = extractAllBoxed(input)
  text = text.split("\\mathrm{T}").join("T").split("\\mathrm{d}").join("d").split("{\\rm d}").join("d")
  text = text.split("\\left[\\begin{matrix}").join("\\begin{bmatrix}").split("\\end{matrix}\\right]").join("\\end{bmatrix}")
  text = text.replace(rLeft, "$1").replace(rRight, "$1")
  text = text.replace(permutationRe, "\\frac{($1)!}{(($1)-($2))!}")
  text = text.replace(toRemoveRe, "")
  text = replaceInLatex(text)
  text = text.replace(/\n/g, " ").replace(/\t/g, " ")
  if (!text.includes("matrix")) text = text.replace(/\\\\(?=[a-zA-Z])/g, "\\")
  if (cfg.units) {
    const t1 = text.replace(unitSuperscriptRe, "").trim()
    if (t1 !== "" && t1 !== text) text = t1
    for (let k = 0; k < 2; k++) {
      const t2 = text.replace(unitsRe, "$1")
      if (t2 !== "" && t2 !== text) text = t2
    }
  }
  if (cfg.nits) {
    if (text.length > 0 && text[0] === ".") text = "0" + text
    if (text === "0.5") text = "\\frac{1}{2}"
  }
  if (cfg.malformedOperators) {
    for (const [re, rep] of MALFORMED) text = text.replace(re, rep)
    text = text.split(" sqrt").join("\\sqrt")
    text = fixASlashB(fixFracs(fixSqrt(text)))
  }
  return text.trim()
}
