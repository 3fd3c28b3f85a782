/**
 * Reads the plain-text expressions MathRuler hands to `sympy.parse_expr` (Python syntax with `^` already
 * turned into `**`, and sympy's implicit multiplication, implicit function application and
 * symbol splitting) and rewrites them in mathjs syntax. Anything Python or sympy would reject
 * (tuples, lists, `=`, relations, unknown characters, leading-zero integers) is rejected here too.
 *
 * @internal
 */

const FUNCTIONS: Record<string, string> = {
  sqrt: "sqrt", sin: "sin", cos: "cos", tan: "tan", log: "log", ln: "log", exp: "exp", factorial: "factorial",
  abs: "abs", asin: "asin", acos: "acos", atan: "atan", sinh: "sinh", cosh: "cosh", tanh: "tanh", sec: "sec",
  csc: "csc", cot: "cot"
}
const CONSTANTS: Record<string, string> = { pi: "pi", oo: "Infinity" }

type Tok = { readonly k: "num" | "name" | "op"; readonly v: string }

const NUM = /^(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/
const NAME = /^[A-Za-z_][A-Za-z_0-9]*/

const tokenize = (s: string): Array<Tok> | undefined => {
  const out: Array<Tok> = []
  let i = 0
  while (i < s.length) {
    const c = s[i]!
    if (c === " " || c === "\t") {
      i++
      continue
    }
    const rest = s.slice(i, i + 64)
    const n = NUM.exec(rest)
    if (n !== null && /[\d.]/.test(c)) {
      let v = n[0]
      // extend beyond the 64-char window for long literals
      let j = i + v.length
      while (j < s.length && /\d/.test(s[j]!)) j++
      v = s.slice(i, j)
      if (/^0\d/.test(v) && !/^0+\./.test(v) && !/^0+$/.test(v)) return undefined // Python: leading zeros
      if (/[eE]/.test(v) && /[eE]$/.test(v)) return undefined
      out.push({ k: "num", v })
      i = j
      continue
    }
    const m = NAME.exec(rest)
    if (m !== null) {
      let j = i + m[0].length
      while (j < s.length && /[A-Za-z_0-9]/.test(s[j]!)) j++
      out.push({ k: "name", v: s.slice(i, j) })
      i = j
      continue
    }
    if (s.startsWith("**", i)) {
      out.push({ k: "op", v: "^" })
      i += 2
      continue
    }
    if ("+-*/()!".includes(c)) {
      out.push({ k: "op", v: c })
      i++
      continue
    }
    return undefined
  }
  return out
}

/** sympy's `split_symbols`: a multi-letter name that is not a known function or constant becomes letters. */
const splitName = (name: string): Array<Tok> => {
  if (name in FUNCTIONS || name in CONSTANTS) return [{ k: "name", v: name }]
  if (name.includes("_") || /\d/.test(name)) return [{ k: "name", v: name }]
  // a known name at the start is kept whole (sympy splits greedily, keeping namespace names)
  for (const known of [...Object.keys(FUNCTIONS), ...Object.keys(CONSTANTS)]) {
    if (name.startsWith(known) && name.length > known.length) return [{ k: "name", v: known }, ...splitName(name.slice(known.length))]
  }
  return [...name].map((ch) => ({ k: "name", v: ch }))
}

const endsOperand = (t: Tok | undefined) =>
  t !== undefined && (t.k === "num" || (t.k === "name" && !(t.v in FUNCTIONS)) || t.v === ")" || t.v === "!")
const startsOperand = (t: Tok | undefined) => t !== undefined && (t.k === "num" || t.k === "name" || t.v === "(")

/**
 * The mathjs rendering of a Python/sympy expression, or undefined if sympy would not parse it.
 * Free symbols are renamed `s_<name>` so they can never collide with mathjs constants.
 */
export const pyToMathjs = (expr: string): string | undefined => {
  const raw = tokenize(expr)
  if (raw === undefined || raw.length === 0) return undefined
  const toks = raw.flatMap((t) => (t.k === "name" ? splitName(t.v) : [t]))
  const parts: Array<string> = []
  let depth = 0
  let pendingClose = 0 // implicit application: `sqrt 3` → sqrt(3)
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!
    const prev = toks[i - 1]
    if (endsOperand(prev) && startsOperand(t)) parts.push("*")
    if (t.k === "num") parts.push(t.v.endsWith(".") ? t.v + "0" : t.v.startsWith(".") ? "0" + t.v : t.v)
    else if (t.k === "name") {
      if (t.v in FUNCTIONS) {
        parts.push(FUNCTIONS[t.v]!)
        const next = toks[i + 1]
        if (next === undefined) return undefined
        if (next.v !== "(") {
          if (!(next.k === "num" || next.k === "name")) return undefined
          parts.push("(")
          pendingClose++
          const nv = next.k === "num" ? next.v : next.v in CONSTANTS ? CONSTANTS[next.v]! : `s_${next.v}`
          parts.push(nv, ")")
          pendingClose--
          i++
        }
      } else if (t.v in CONSTANTS) parts.push(CONSTANTS[t.v]!)
      else parts.push(`s_${t.v}`)
    } else {
      if (t.v === "(") depth++
      if (t.v === ")") depth--
      if (depth < 0) return undefined
      parts.push(t.v)
    }
  }
  if (depth !== 0 || pendingClose !== 0) return undefined
  return parts.join(" ")
}
