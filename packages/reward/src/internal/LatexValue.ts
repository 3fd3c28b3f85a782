/**
 * A LaTeX answer parsed into a small value model, the subset of what latex2sympy2_extended builds that
 * Math-Verify's `verify` can tell apart: scalar expressions (numbers, symbols, constants, + − × ÷, powers,
 * roots, functions, percent), finite sets, tuples, intervals, unions, relations (chains allowed) and
 * matrices. Numeric work is delegated to mathjs through `toMathjs`.
 *
 * Throws `LatexParseError` on anything it does not understand; the caller then keeps the string form,
 * as Math-Verify does when latex2sympy raises.
 *
 * @internal
 */

import { checkBudget } from "./Budget.js"

/** A scalar expression tree. */
export type Scalar =
  | { readonly k: "num"; readonly text: string; readonly float: boolean }
  | { readonly k: "sym"; readonly name: string }
  | { readonly k: "const"; readonly name: "pi" | "E" | "I" | "oo" }
  | { readonly k: "add"; readonly terms: ReadonlyArray<Scalar> }
  | { readonly k: "mul"; readonly factors: ReadonlyArray<Scalar> }
  | { readonly k: "div"; readonly num: Scalar; readonly den: Scalar }
  | { readonly k: "pow"; readonly base: Scalar; readonly exp: Scalar }
  | { readonly k: "neg"; readonly x: Scalar }
  | { readonly k: "fn"; readonly name: string; readonly args: ReadonlyArray<Scalar> }
  | { readonly k: "pct"; readonly x: Scalar }

/** A parsed answer. */
export type Value =
  | { readonly t: "scalar"; readonly s: Scalar }
  | { readonly t: "set"; readonly items: ReadonlyArray<Value> }
  | { readonly t: "tuple"; readonly items: ReadonlyArray<Value> }
  | { readonly t: "interval"; readonly lo: Scalar; readonly hi: Scalar; readonly lopen: boolean; readonly ropen: boolean }
  | { readonly t: "union"; readonly parts: ReadonlyArray<Value> }
  | { readonly t: "rel"; readonly ops: ReadonlyArray<RelOp>; readonly sides: ReadonlyArray<Value> }
  | { readonly t: "matrix"; readonly rows: ReadonlyArray<ReadonlyArray<Scalar>> }

/** A relation operator. */
export type RelOp = "=" | "<" | ">" | "<=" | ">=" | "!="

/** Raised for LaTeX the parser does not support. */
export class LatexParseError extends Error {}

function fail(why: string): never {
  throw new LatexParseError(why)
}

type Tok =
  | { readonly k: "num"; readonly v: string }
  | { readonly k: "letter"; readonly v: string }
  | { readonly k: "cmd"; readonly v: string }
  | { readonly k: "ch"; readonly v: string }
  | { readonly k: "end" }

const UNICODE: Record<string, string> = {
  "π": "\\pi ", "×": "\\times ", "−": "-", "÷": "\\div ", "·": "\\cdot ", "∞": "\\infty ", "√": "\\sqrt ",
  "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "–": "-", "∪": "\\cup ", "∩": "\\cap "
}
const IGNORED_CMDS = new Set([",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "left", "right", "big", "Big", "bigg", "Bigg", "mleft", "mright", "limits", "nolimits"])
const GREEK = new Set(["alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"])
const FUNCS: Record<string, string> = {
  sin: "sin", cos: "cos", tan: "tan", cot: "cot", sec: "sec", csc: "csc", arcsin: "asin", arccos: "acos",
  arctan: "atan", sinh: "sinh", cosh: "cosh", tanh: "tanh", ln: "log", log: "log", exp: "exp"
}
const MAX_TOKENS = 4000
const MAX_DEPTH = 100

const tokenize = (src: string): Array<Tok> => {
  const out: Array<Tok> = []
  let i = 0
  const s = src
  while (i < s.length) {
    if (out.length > MAX_TOKENS) fail("too long")
    const c = s[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    const u = UNICODE[c]
    if (u !== undefined) {
      out.push(...tokenize(u))
      i++
      continue
    }
    if (c === "\\") {
      const n = s[i + 1]
      if (n === undefined) fail("trailing backslash")
      if (/[A-Za-z]/.test(n!)) {
        let j = i + 1
        while (j < s.length && /[A-Za-z]/.test(s[j]!)) j++
        out.push({ k: "cmd", v: s.slice(i + 1, j) })
        i = j
      } else {
        // \( \) \[ \] read as plain brackets (latex2sympy does)
        out.push("()[]".includes(n!) ? { k: "ch", v: n! } : { k: "cmd", v: n! })
        i += 2
      }
      continue
    }
    if (/[0-9.]/.test(c)) {
      const m = /^(?:\d+(?:,\d{3}(?!\d))*(?:\.\d+)?|\.\d+)/.exec(s.slice(i, i + 400))
      if (m === null) {
        out.push({ k: "ch", v: c })
        i++
        continue
      }
      let j = i + m[0].length
      while (j < s.length && /\d/.test(s[j]!)) j++ // very long digit runs
      out.push({ k: "num", v: s.slice(i, j).replace(/,/g, "") })
      i = j
      continue
    }
    if (/[A-Za-z]/.test(c)) {
      out.push({ k: "letter", v: c })
      i++
      continue
    }
    out.push({ k: "ch", v: c })
    i++
  }
  out.push({ k: "end" })
  return out
}

const scalar = (s: Scalar): Value => ({ t: "scalar", s })
const isScalar = (v: Value): v is { t: "scalar"; s: Scalar } => v.t === "scalar"
const asScalar = (v: Value): Scalar => (isScalar(v) ? v.s : fail(`expected a scalar, got ${v.t}`))

const flattenSetItems = (items: ReadonlyArray<Value>): Array<Value> => items.flatMap((v) => (v.t === "set" ? flattenSetItems(v.items) : [v]))

class Parser {
  private i = 0
  private depth = 0
  constructor(private readonly toks: ReadonlyArray<Tok>, private readonly complex: boolean) {}

  private peek(o = 0): Tok {
    return this.toks[Math.min(this.i + o, this.toks.length - 1)]!
  }
  private next(): Tok {
    const t = this.peek()
    if (this.i < this.toks.length - 1) this.i++
    return t
  }
  private isCh(v: string, o = 0) {
    const t = this.peek(o)
    return t.k === "ch" && t.v === v
  }
  private isCmd(v: string, o = 0) {
    const t = this.peek(o)
    return t.k === "cmd" && t.v === v
  }
  private expectCh(v: string) {
    if (!this.isCh(v)) fail(`expected "${v}"`)
    this.next()
  }
  private skipIgnored() {
    for (;;) {
      const t = this.peek()
      if (t.k === "cmd" && IGNORED_CMDS.has(t.v)) this.next()
      else return
    }
  }
  private enter() {
    checkBudget()
    if (++this.depth > MAX_DEPTH) fail("too deep")
  }
  private leave() {
    this.depth--
  }

  parseAll(): Value {
    const v = this.parseList(undefined)
    this.skipIgnored()
    if (this.peek().k !== "end") fail("trailing input")
    return v
  }

  /** Comma-separated relations up to a closing token (not consumed). */
  private parseList(close: ((p: Parser) => boolean) | undefined): Value {
    const items: Array<Value> = [this.parseRelation()]
    for (;;) {
      this.skipIgnored()
      if (close !== undefined && close(this)) break
      if (this.isCh(",") || this.isCh(";")) {
        this.next()
        items.push(this.parseRelation())
        continue
      }
      break
    }
    if (items.length === 1) return items[0]!
    const first = items[0]!
    if (first.t === "rel" && first.ops.length === 1 && first.ops[0] === "=" && items.slice(1).every((v) => v.t !== "rel")) {
      return { t: "rel", ops: ["="], sides: [first.sides[0]!, { t: "set", items: flattenSetItems([first.sides[1]!, ...items.slice(1)]) }] }
    }
    return { t: "set", items: flattenSetItems(items) }
  }

  private relOp(): RelOp | "in" | "approx" | undefined {
    this.skipIgnored()
    const t = this.peek()
    if (t.k === "ch") {
      if (t.v === "!" && this.isCh("=", 1)) return "!="
      if (t.v === "=") return "="
      if (t.v === "<") return this.isCh("=", 1) ? "<=" : "<"
      if (t.v === ">") return this.isCh("=", 1) ? ">=" : ">"
    }
    if (t.k === "cmd") {
      switch (t.v) {
        case "le": case "leq": case "leqslant": return "<="
        case "ge": case "geq": case "geqslant": return ">="
        case "lt": return "<"
        case "gt": return ">"
        case "ne": case "neq": return "!="
        case "in": return "in"
        case "approx": return "approx"
      }
    }
    return undefined
  }

  private parseRelation(): Value {
    this.enter()
    const sides: Array<Value> = [this.parseSetExpr()]
    const ops: Array<RelOp> = []
    for (;;) {
      const op = this.relOp()
      if (op === undefined) break
      const t = this.next()
      if (t.k === "ch" && (op === "<=" || op === ">=" || op === "!=")) this.next()
      if (op === "approx") {
        // `x \approx 11` reads as x = 11; after another relation (`x = 1/3 \approx 0.33`) it is dropped
        const rhs = this.parseSetExpr()
        if (ops.length === 0) {
          ops.push("=")
          sides.push(rhs)
        }
        continue
      }
      const rhs = this.parseSetExpr()
      if (op === "in") {
        sides[sides.length - 1] = rhs
        continue
      }
      ops.push(op)
      sides.push(rhs)
    }
    this.leave()
    return ops.length === 0 ? sides[0]! : { t: "rel", ops, sides }
  }

  private parseSetExpr(): Value {
    let left = this.parseExpr()
    for (;;) {
      this.skipIgnored()
      if (this.isCmd("cup")) {
        this.next()
        const right = this.parseExpr()
        const parts = [...(left.t === "union" ? left.parts : [left]), ...(right.t === "union" ? right.parts : [right])]
        left = { t: "union", parts }
      } else if (this.isCmd("cap") || this.isCmd("setminus")) fail("set algebra")
      else return left
    }
  }

  /** Sums; `\pm` makes a two-element set. */
  private parseExpr(): Value {
    this.enter()
    this.skipIgnored()
    let alts: Array<Array<Scalar>> = [[]]
    let sign: "+" | "-" | "pm" | "mp" = "+"
    if (this.isCh("-")) {
      this.next()
      sign = "-"
    } else if (this.isCh("+")) this.next()
    else if (this.isCmd("pm")) {
      this.next()
      sign = "pm"
    } else if (this.isCmd("mp")) {
      this.next()
      sign = "mp"
    }
    let single: Value | undefined
    for (;;) {
      const term = this.parseTerm()
      if (!isScalar(term)) {
        if (alts.length === 1 && alts[0]!.length === 0 && sign === "+") {
          single = term
          break
        }
        fail("arithmetic on a non-scalar")
      }
      const s = term.s
      const neg: Scalar = { k: "neg", x: s }
      if (sign === "+") alts = alts.map((a) => [...a, s])
      else if (sign === "-") alts = alts.map((a) => [...a, neg])
      else {
        if (alts.length >= 8) fail("too many ±")
        const [first, second] = sign === "pm" ? [neg, s] : [s, neg]
        alts = [...alts.map((a) => [...a, first]), ...alts.map((a) => [...a, second])]
      }
      this.skipIgnored()
      if (this.isCh("+")) sign = "+"
      else if (this.isCh("-")) sign = "-"
      else if (this.isCmd("pm")) sign = "pm"
      else if (this.isCmd("mp")) sign = "mp"
      else break
      this.next()
    }
    this.leave()
    if (single !== undefined) return single
    const mk = (terms: Array<Scalar>): Scalar => (terms.length === 1 ? terms[0]! : { k: "add", terms })
    return alts.length === 1 ? scalar(mk(alts[0]!)) : { t: "set", items: alts.map((a) => scalar(mk(a))) }
  }

  private startsAtom(): boolean {
    this.skipIgnored()
    const t = this.peek()
    if (t.k === "num" || t.k === "letter") return true
    if (t.k === "ch") return t.v === "(" || t.v === "{" || t.v === "|"
    if (t.k === "cmd") {
      return ["frac", "dfrac", "tfrac", "cfrac", "sqrt", "pi", "infty", "text", "textbf", "mathrm", "mbox", "operatorname", "begin", "binom", "lfloor", "lceil", "{", "e", "sum", "prod"].includes(t.v) ||
        t.v in FUNCS || GREEK.has(t.v)
    }
    return false
  }

  private parseTerm(): Value {
    let left = this.parseFactor()
    for (;;) {
      this.skipIgnored()
      let op: "*" | "/" | undefined
      if (this.isCh("*") || this.isCmd("cdot") || this.isCmd("times") || this.isCmd("ast")) op = "*"
      else if (this.isCh("/") || this.isCmd("div")) op = "/"
      if (op !== undefined) {
        this.next()
        const right = asScalar(this.parseFactor())
        const l = asScalar(left)
        left = scalar(op === "*" ? mul(l, right) : { k: "div", num: l, den: right })
        continue
      }
      if (this.startsAtom() && isScalar(left)) {
        // mixed number: an integer directly followed by a numeric \frac
        const right = asScalar(this.parseFactor())
        const l = asScalar(left)
        if (l.k === "num" && !l.float && right.k === "div" && right.num.k === "num" && right.den.k === "num") {
          left = scalar({ k: "add", terms: [l, right] })
        } else left = scalar(mul(l, right))
        continue
      }
      return left
    }
  }

  private parseFactor(): Value {
    this.skipIgnored()
    if (this.isCh("-")) {
      this.next()
      return scalar({ k: "neg", x: asScalar(this.parseFactor()) })
    }
    if (this.isCh("+")) {
      this.next()
      return this.parseFactor()
    }
    return this.parsePostfix()
  }

  private parsePostfix(): Value {
    let v = this.parseAtom()
    for (;;) {
      this.skipIgnored()
      if (this.isCh("^")) {
        this.next()
        this.skipIgnored()
        if (this.isCmd("circ")) {
          this.next()
          continue
        }
        if (this.isCh("{") && this.peek(1).k === "cmd" && (this.peek(1) as { v: string }).v === "circ" && this.isCh("}", 2)) {
          this.i += 3
          continue
        }
        const e = asScalar(this.parseScriptArg())
        v = scalar({ k: "pow", base: asScalar(v), exp: e })
      } else if (this.isCh("_")) {
        this.next()
        const sub = this.rawScript()
        const s = asScalar(v)
        if (s.k === "num") continue // a base subscript: 204_5 is read as 204
        if (s.k === "sym") v = scalar({ k: "sym", name: `${s.name}_${sub}` })
        else fail("subscript")
      } else if (this.isCh("!") && !this.isCh("=", 1)) {
        this.next()
        v = scalar({ k: "fn", name: "factorial", args: [asScalar(v)] })
      } else if (this.isCmd("%") || this.isCh("%")) {
        this.next()
        v = scalar({ k: "pct", x: asScalar(v) })
      } else if (this.isCh("'")) fail("prime")
      else return v
    }
  }

  /** The raw text of a subscript (for symbol names). */
  private rawScript(): string {
    this.skipIgnored()
    const t = this.next()
    if (t.k === "num" || t.k === "letter") return t.v
    if (t.k === "ch" && t.v === "{") {
      let depth = 1
      let out = ""
      for (;;) {
        const u = this.next()
        if (u.k === "end") fail("unclosed subscript")
        if (u.k === "ch" && u.v === "{") depth++
        if (u.k === "ch" && u.v === "}" && --depth === 0) return out
        out += u.v
      }
    }
    return fail("subscript")
  }

  /** A superscript/argument: a brace group or a single token. */
  private parseScriptArg(): Value {
    this.skipIgnored()
    if (this.isCh("{")) return this.parseBraceGroup()
    const t = this.peek()
    if (t.k === "num") {
      this.next()
      // `x^23` is x^2 · 3 in TeX; single digit only
      if (t.v.length > 1 && !t.v.includes(".")) {
        const rest = t.v.slice(1)
        ;(this.toks as Array<Tok>).splice(this.i, 0, { k: "num", v: rest })
        return scalar({ k: "num", text: t.v[0]!, float: false })
      }
      return scalar(num(t.v))
    }
    if (t.k === "letter") {
      this.next()
      return scalar(this.letter(t.v))
    }
    return this.parseAtom()
  }

  private parseBraceGroup(): Value {
    this.expectCh("{")
    this.enter()
    if (this.isCh("}")) fail("empty group")
    const v = this.parseList((p) => p.isCh("}"))
    this.skipIgnored()
    this.expectCh("}")
    this.leave()
    return v
  }

  private letter(v: string): Scalar {
    if (v === "e") return { k: "const", name: "E" }
    if (v === "i" && this.complex) return { k: "const", name: "I" }
    return { k: "sym", name: v.toLowerCase() }
  }

  private parseAtom(): Value {
    this.enter()
    try {
      return this.parseAtomInner()
    } finally {
      this.leave()
    }
  }

  private parseAtomInner(): Value {
    this.skipIgnored()
    const t = this.next()
    switch (t.k) {
      case "end":
        return fail("unexpected end")
      case "num":
        return scalar(num(t.v))
      case "letter":
        return scalar(this.letter(t.v))
      case "ch":
        if (t.v === "{") {
          this.i--
          return this.parseBraceGroup()
        }
        if (t.v === "(" || t.v === "[") return this.parseBracketed(t.v)
        if (t.v === "|") {
          const inner = asScalar(this.parseExpr())
          this.skipIgnored()
          this.expectCh("|")
          return scalar({ k: "fn", name: "abs", args: [inner] })
        }
        return fail(`unexpected "${t.v}"`)
      case "cmd":
        return this.parseCommand(t.v)
    }
  }

  private parseBracketed(open: "(" | "["): Value {
    const closes = (p: Parser) => p.isCh(")") || p.isCh("]")
    const v = this.parseList(closes)
    this.skipIgnored()
    const close = this.next()
    if (close.k !== "ch" || (close.v !== ")" && close.v !== "]")) fail("unclosed bracket")
    const c = (close as { v: string }).v
    if (v.t === "set") {
      const items = v.items
      if (items.length === 2 && items.every(isScalar)) {
        const lo = (items[0] as { s: Scalar }).s
        const hi = (items[1] as { s: Scalar }).s
        if (open === "(" && c === ")" && !ordered(lo, hi)) return { t: "tuple", items }
        return { t: "interval", lo, hi, lopen: open === "(", ropen: c === ")" }
      }
      if (open === "(" && c === ")") return { t: "tuple", items }
      return fail("bracketed list")
    }
    if (open === "(" && c === ")") return v
    return fail("mismatched brackets")
  }

  private requiredGroup(): Value {
    this.skipIgnored()
    if (!this.isCh("{")) fail("expected a brace group")
    return this.parseBraceGroup()
  }

  private textContent(): string {
    this.skipIgnored()
    this.expectCh("{")
    let depth = 1
    let out = ""
    for (;;) {
      const u = this.next()
      if (u.k === "end") fail("unclosed text")
      if (u.k === "ch" && u.v === "{") depth++
      if (u.k === "ch" && u.v === "}" && --depth === 0) break
      out += u.k === "cmd" ? `\\${u.v} ` : u.v
    }
    return out
  }

  private parseCommand(name: string): Value {
    switch (name) {
      case "frac": case "dfrac": case "tfrac": case "cfrac": {
        const a = asScalar(this.requiredGroup())
        const b = asScalar(this.requiredGroup())
        return scalar({ k: "div", num: a, den: b })
      }
      case "sum": case "prod": {
        // \sum_{k=a}^{b} body: expanded when the bounds are small integers, else kept as a term
        this.skipIgnored()
        this.expectCh("_")
        const bound = this.parseScriptArg()
        if (bound.t !== "rel" || bound.ops.length !== 1 || bound.ops[0] !== "=") fail("sum bound")
        const v = asScalar(bound.sides[0]!)
        if (v.k !== "sym") fail("sum variable")
        const lo = asScalar(bound.sides[1]!)
        this.skipIgnored()
        this.expectCh("^")
        const hi = asScalar(this.parseScriptArg())
        const body = asScalar(this.parseTerm())
        const a = approx(lo)
        const b = approx(hi)
        if (a !== undefined && b !== undefined && Number.isInteger(a) && Number.isInteger(b) && b - a < 1000) {
          const terms: Array<Scalar> = []
          for (let k = a; k <= b; k++) terms.push(substitute(body, v.name, { k: "num", text: String(k), float: false }))
          if (terms.length === 0) return scalar({ k: "num", text: name === "sum" ? "0" : "1", float: false })
          return scalar(name === "sum" ? { k: "add", terms } : { k: "mul", factors: terms })
        }
        return scalar({ k: "fn", name, args: [body, v, lo, hi] })
      }
      case "binom": {
        const a = asScalar(this.requiredGroup())
        const b = asScalar(this.requiredGroup())
        return scalar({ k: "fn", name: "combinations", args: [a, b] })
      }
      case "sqrt": {
        this.skipIgnored()
        let index: Scalar | undefined
        if (this.isCh("[")) {
          this.next()
          index = asScalar(this.parseExpr())
          this.skipIgnored()
          this.expectCh("]")
        }
        const x = asScalar(this.requiredGroup())
        return scalar(index === undefined ? { k: "fn", name: "sqrt", args: [x] } : { k: "pow", base: x, exp: { k: "div", num: { k: "num", text: "1", float: false }, den: index } })
      }
      case "pi":
        return scalar({ k: "const", name: "pi" })
      case "infty":
        return scalar({ k: "const", name: "oo" })
      case "e":
        return scalar({ k: "const", name: "E" })
      case "emptyset": case "varnothing":
        return { t: "set", items: [] }
      case "{": {
        if (this.isCmd("}")) {
          this.next()
          return { t: "set", items: [] }
        }
        const v = this.parseList((p) => p.isCmd("}"))
        this.skipIgnored()
        if (!this.isCmd("}")) fail("unclosed set")
        this.next()
        return { t: "set", items: v.t === "set" ? v.items : [v] }
      }
      case "text": case "textbf": case "mathrm": case "mbox": case "operatorname": case "textit": case "mathbf": {
        const content = this.textContent().trim()
        if (/^[A-Za-z]+$/.test(content)) return scalar({ k: "sym", name: content.toLowerCase() })
        if (content === "") fail("empty text")
        return new Parser(tokenize(content), this.complex).parseAll()
      }
      case "lfloor": case "lceil": {
        const inner = asScalar(this.parseExpr())
        this.skipIgnored()
        const close = name === "lfloor" ? "rfloor" : "rceil"
        if (!this.isCmd(close)) fail("unclosed floor/ceil")
        this.next()
        return scalar({ k: "fn", name: name === "lfloor" ? "floor" : "ceil", args: [inner] })
      }
      case "begin":
        return this.parseEnvironment()
    }
    if (GREEK.has(name)) return scalar({ k: "sym", name })
    const fn = FUNCS[name]
    if (fn !== undefined) {
      let base: Scalar | undefined
      this.skipIgnored()
      if (name === "log" && this.isCh("_")) {
        this.next()
        base = asScalar(this.parseScriptArg())
      }
      let power: Scalar | undefined
      if (this.isCh("^")) {
        this.next()
        power = asScalar(this.parseScriptArg())
      }
      const arg = asScalar(this.parsePostfix())
      let f: Scalar = { k: "fn", name: fn, args: base === undefined ? [arg] : [arg, base] }
      if (power !== undefined) f = { k: "pow", base: f, exp: power }
      return scalar(f)
    }
    return fail(`unsupported \\${name}`)
  }

  private parseEnvironment(): Value {
    const env = this.textContent().trim()
    if (!/^(?:p|b|v|B|V|small)?matrix\*?$|^array$/.test(env)) fail(`environment ${env}`)
    if (env === "array") {
      this.skipIgnored()
      if (this.isCh("{")) this.textContent()
    }
    const rows: Array<Array<Scalar>> = [[]]
    for (;;) {
      this.skipIgnored()
      if (this.isCmd("end")) {
        this.next()
        const e = this.textContent().trim()
        if (e !== env) fail("mismatched \\end")
        break
      }
      if (this.isCmd("\\")) {
        this.next()
        rows.push([])
        continue
      }
      if (this.isCh("&")) {
        this.next()
        continue
      }
      rows[rows.length - 1]!.push(asScalar(this.parseExpr()))
      if (this.peek().k === "end") fail("unclosed environment")
    }
    while (rows.length > 1 && rows[rows.length - 1]!.length === 0) rows.pop()
    const width = rows[0]!.length
    if (width === 0 || rows.some((r) => r.length !== width)) fail("ragged matrix")
    if (env.startsWith("v") || env.startsWith("V")) fail("determinant")
    return { t: "matrix", rows }
  }
}

/** `s` with every occurrence of the symbol `name` replaced by `by`. */
const substitute = (s: Scalar, name: string, by: Scalar): Scalar => {
  switch (s.k) {
    case "sym": return s.name === name ? by : s
    case "num": case "const": return s
    case "add": return { k: "add", terms: s.terms.map((x) => substitute(x, name, by)) }
    case "mul": return { k: "mul", factors: s.factors.map((x) => substitute(x, name, by)) }
    case "div": return { k: "div", num: substitute(s.num, name, by), den: substitute(s.den, name, by) }
    case "pow": return { k: "pow", base: substitute(s.base, name, by), exp: substitute(s.exp, name, by) }
    case "neg": return { k: "neg", x: substitute(s.x, name, by) }
    case "pct": return { k: "pct", x: substitute(s.x, name, by) }
    case "fn": return { k: "fn", name: s.name, args: s.args.map((x) => substitute(x, name, by)) }
  }
}

/**
 * A canonical string of a scalar: sums and products flattened and their operands sorted (sympy's
 * structural equality sees `a·b` and `b·a` as the same expression).
 */
export const canonical = (s: Scalar): string => {
  switch (s.k) {
    case "num": return s.text
    case "sym": return `v_${s.name}`
    case "const": return s.name
    case "add": return `(${s.terms.flatMap((t) => (t.k === "add" ? t.terms : [t])).map(canonical).sort().join("+")})`
    case "mul": return `(${s.factors.flatMap((t) => (t.k === "mul" ? t.factors : [t])).map(canonical).sort().join("*")})`
    case "div": return `(${canonical(s.num)}/${canonical(s.den)})`
    case "pow": return `(${canonical(s.base)}^${canonical(s.exp)})`
    case "neg": return `-(${canonical(s.x)})`
    case "pct": return `(${canonical(s.x)}%)`
    case "fn": return `${s.name}(${s.args.map(canonical).join(",")})`
  }
}

const num = (text: string): Scalar => ({ k: "num", text: text.startsWith(".") ? "0" + text : text, float: text.includes(".") })

const mul = (a: Scalar, b: Scalar): Scalar => ({ k: "mul", factors: [...(a.k === "mul" ? a.factors : [a]), ...(b.k === "mul" ? b.factors : [b])] })

/** True when both ends are numbers and lo < hi (latex2sympy reads `(a, b)` as an interval only then). */
const ordered = (lo: Scalar, hi: Scalar): boolean => {
  const a = approx(lo)
  const b = approx(hi)
  return a !== undefined && b !== undefined && a < b
}

/** A quick real value for constant expressions (no mathjs): used only to order interval ends. */
export const approx = (s: Scalar): number | undefined => {
  switch (s.k) {
    case "num": return Number(s.text)
    case "const": return s.name === "pi" ? Math.PI : s.name === "E" ? Math.E : s.name === "oo" ? Infinity : undefined
    case "neg": {
      const x = approx(s.x)
      return x === undefined ? undefined : -x
    }
    case "add": {
      let t = 0
      for (const x of s.terms) {
        const v = approx(x)
        if (v === undefined) return undefined
        t += v
      }
      return t
    }
    case "mul": {
      let t = 1
      for (const x of s.factors) {
        const v = approx(x)
        if (v === undefined) return undefined
        t *= v
      }
      return t
    }
    case "div": {
      const a = approx(s.num)
      const b = approx(s.den)
      return a === undefined || b === undefined ? undefined : a / b
    }
    case "pow": {
      const a = approx(s.base)
      const b = approx(s.exp)
      return a === undefined || b === undefined ? undefined : Math.pow(a, b)
    }
    case "fn": {
      if (s.name !== "sqrt") return undefined
      const a = approx(s.args[0]!)
      return a === undefined ? undefined : Math.sqrt(a)
    }
    case "pct": {
      const a = approx(s.x)
      return a === undefined ? undefined : a / 100
    }
    case "sym": return undefined
  }
}

const COMPLEX_RE = /\\mathbb\{C\}|\\i\b|\bi\b|\\text\{i\}|\\mathrm\{i\}|\\imath\b|\\det|\\operatorname\{tr\}|\\operatorname\{rank\}|\\text\{rank\}|\\arg\{|\\Re\{|\\Im\{|\\operatorname\{Re\}|\\operatorname\{Im\}|\\text\{Re\}|\\text\{Im\}/

/** Parses normalized LaTeX into a value (throws `LatexParseError`). */
export const parseLatexValue = (latex: string): Value => {
  const complex = COMPLEX_RE.test(latex)
  return new Parser(tokenize(latex), complex).parseAll()
}

/** Renders a scalar in mathjs syntax; symbols become `v_<name>`. */
export const toMathjs = (s: Scalar): string => {
  switch (s.k) {
    case "num": return s.text
    case "sym": return `v_${s.name.replace(/[^A-Za-z0-9]/g, "_")}`
    case "const": return s.name === "pi" ? "pi" : s.name === "E" ? "e" : s.name === "I" ? "i" : "Infinity"
    case "add": return `(${s.terms.map(toMathjs).join(" + ")})`
    case "mul": return `(${s.factors.map(toMathjs).join(" * ")})`
    case "div": return `((${toMathjs(s.num)}) / (${toMathjs(s.den)}))`
    case "pow": return `((${toMathjs(s.base)}) ^ (${toMathjs(s.exp)}))`
    case "neg": return `(-(${toMathjs(s.x)}))`
    case "fn": return `${s.name}(${s.args.map(toMathjs).join(", ")})`
    case "pct": return `((${toMathjs(s.x)}) / 100)`
  }
}

/** A canonical string of a value (structural equality, like comparing sympy objects with ==). */
export const show = (v: Value): string => {
  switch (v.t) {
    case "scalar": return toMathjs(v.s)
    case "set": return `{${v.items.map(show).sort().join(",")}}`
    case "tuple": return `(${v.items.map(show).join(",")})`
    case "interval": return `${v.lopen ? "(" : "["}${toMathjs(v.lo)},${toMathjs(v.hi)}${v.ropen ? ")" : "]"}`
    case "union": return v.parts.map(show).join(" U ")
    case "rel": return v.sides.map((s, i) => (i === 0 ? show(s) : `${v.ops[i - 1]}${show(s)}`)).join("")
    case "matrix": return `[${v.rows.map((r) => r.map(toMathjs).join(",")).join(";")}]`
  }
}
