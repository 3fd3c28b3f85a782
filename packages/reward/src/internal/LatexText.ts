/**
 * LaTeX to plain text, the way pylatexenc 2.10's `LatexNodes2Text().latex_to_text` renders the short
 * math answers MathRuler feeds it: `\frac{a}{b}` → `a/b`, `\sqrt{x}` → `√(x)`, `\pi` → `π`, `\cdot` → `·`,
 * `\text{…}` and groups → their content, math delimiters dropped, unknown macros dropped (their brace
 * groups stay as text). Only what MathRuler's `_normalize` can observe is modelled.
 *
 * @internal
 */

const GREEK: Record<string, string> = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ϵ", zeta: "ζ", eta: "η", theta: "θ", iota: "ι",
  kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ", omicron: "ο", pi: "π", rho: "ρ", sigma: "σ", tau: "τ",
  upsilon: "υ", phi: "ϕ", chi: "χ", psi: "ψ", omega: "ω",
  Alpha: "Α", Beta: "Β", Gamma: "Γ", Delta: "Δ", Epsilon: "Ε", Zeta: "Ζ", Eta: "Η", Theta: "Θ", Iota: "Ι",
  Kappa: "Κ", Lambda: "Λ", Mu: "Μ", Nu: "Ν", Xi: "Ξ", Omicron: "Ο", Pi: "Π", Rho: "Ρ", Sigma: "Σ", Tau: "Τ",
  Upsilon: "Υ", Phi: "Φ", Chi: "Χ", Psi: "Ψ", Omega: "Ω",
  varepsilon: "ε", vartheta: "ϑ", varpi: "ϖ", varrho: "ϱ", varsigma: "ς", varphi: "φ"
}

/** Macros rendered as a fixed string (no arguments). */
const SYMBOLS: Record<string, string> = {
  ...GREEK,
  in: "∈", notin: "∉", ni: "∋", prod: "∏", coprod: "∐", sum: "∑", setminus: "∖", smallsetminus: "∖", ast: "∗",
  circ: "∘", bullet: "∙", propto: "∝", infty: "∞", parallel: "∥", nparallel: "∦", wedge: "∧", vee: "∨",
  cap: "∩", cup: "∪", int: "∫", iint: "∬", iiint: "∭", oint: "∮", sim: "∼", simeq: "≃", approx: "≈",
  neq: "≠", equiv: "≡", ge: ">", le: "<", leq: "≤", geq: "≥", leqslant: "≤", geqslant: "≥", leqq: "≦",
  geqq: "≧", ll: "≪", gg: "≫", subset: "⊂", supset: "⊃", subseteq: "⊆", supseteq: "⊇", cdot: "·", times: "×",
  otimes: "⊗", oplus: "⊕", cos: "cos", sin: "sin", tan: "tan", arccos: "arccos", arcsin: "arcsin",
  arctan: "arctan", cosh: "cosh", sinh: "sinh", tanh: "tanh", ln: "ln", log: "log", max: "max", min: "min",
  sup: "sup", inf: "inf", lim: "lim", prime: "'", pm: "±", mp: "∓", quad: "  ", qquad: "    ", ldots: "...",
  cdots: "...", ddots: "...", dots: "...", langle: "⟨", rangle: "⟩", lvert: "|", rvert: "|", vert: "|",
  mid: "|", to: "→", rightarrow: "→", leftarrow: "←", forall: "∀", exists: "∃", emptyset: "∅",
  varnothing: "∅", partial: "∂", nabla: "∇", hbar: "ħ", ell: "ℓ", backslash: "\\", hspace: "", vspace: "\n",
  ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "\\": "\n", "{": "{", "}": "}", "%": "%", $: "$", "#": "#",
  _: "_", "&": "&", "~": "~"
}

/** Macros whose (single, mandatory) argument is rendered as plain content. */
const CONTENT1 = new Set([
  "emph", "textrm", "textit", "textbf", "textsc", "textsl", "text", "mathrm", "mathsf",
  "mathscr", "mathfrak", "textsf", "texttt", "mathit", "mathcal", "textup", "textnormal", "mbox"
])
/** Letters that Unicode encodes outside the double-struck block. */
const DOUBLE_STRUCK: Record<string, string> = { C: "ℂ", H: "ℍ", N: "ℕ", P: "ℙ", Q: "ℚ", R: "ℝ", Z: "ℤ" }

/** pylatexenc renders `\mathbf`/`\mathbb` with Unicode mathematical alphanumerics. */
const mathStyle = (text: string, upper: number, lower: number, digit: number, exceptions: Record<string, string>): string =>
  [...text].map((c) => {
    if (c in exceptions) return exceptions[c]!
    if (c >= "A" && c <= "Z") return String.fromCodePoint(upper + c.charCodeAt(0) - 65)
    if (c >= "a" && c <= "z") return String.fromCodePoint(lower + c.charCodeAt(0) - 97)
    if (c >= "0" && c <= "9") return String.fromCodePoint(digit + c.charCodeAt(0) - 48)
    return c
  }).join("")

const PLACEHOLDER_ENVS = new Set(["array", "pmatrix", "bmatrix", "smallmatrix"])
const MAX_DEPTH = 200

class Reader {
  i = 0
  constructor(readonly s: string) {}
  get done() {
    return this.i >= this.s.length
  }
  skipSpaces() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++
  }
}

const macroName = (r: Reader): string => {
  // r.i is just after the backslash
  const s = r.s
  let j = r.i
  while (j < s.length && /[A-Za-z]/.test(s[j]!)) j++
  if (j === r.i) j = Math.min(r.i + 1, s.length)
  const name = s.slice(r.i, j)
  r.i = j
  return name
}

/** Reads one macro argument: a brace group or a single token; returns its rendered text. */
const argument = (r: Reader, depth: number): string => {
  r.skipSpaces()
  if (r.done) return ""
  const c = r.s[r.i]!
  if (c === "{") {
    r.i++
    return nodes(r, depth + 1, "}")
  }
  if (c === "\\") {
    r.i++
    return macro(r, macroName(r), depth + 1)
  }
  r.i++
  return c
}

const optionalArgument = (r: Reader, depth: number): string | undefined => {
  const save = r.i
  r.skipSpaces()
  if (r.s[r.i] !== "[") {
    r.i = save
    return undefined
  }
  r.i++
  return nodes(r, depth + 1, "]")
}

const macro = (r: Reader, name: string, depth: number): string => {
  if (name === "frac" || name === "nicefrac" || name === "dfrac" || name === "tfrac") {
    const a = argument(r, depth)
    const b = argument(r, depth)
    return `${a}/${b}`
  }
  if (name === "sqrt") {
    optionalArgument(r, depth)
    return `√(${argument(r, depth)})`
  }
  if (CONTENT1.has(name)) return argument(r, depth)
  if (name === "mathbf") return mathStyle(argument(r, depth), 0x1d400, 0x1d41a, 0x1d7ce, {})
  if (name === "mathbb") return mathStyle(argument(r, depth), 0x1d538, 0x1d552, 0x1d7d8, DOUBLE_STRUCK)
  if (name === "begin") {
    const save = r.i
    r.skipSpaces()
    if (r.s[r.i] !== "{") {
      r.i = save
      return ""
    }
    const close = r.s.indexOf("}", r.i)
    if (close < 0) return ""
    const env = r.s.slice(r.i + 1, close)
    r.i = close + 1
    const endTag = `\\end{${env}}`
    const end = r.s.indexOf(endTag, r.i)
    if (end < 0) return "" // tolerant parsing: an unclosed environment leaves its content as text
    const inner = new Reader(r.s.slice(r.i, end))
    r.i = end + endTag.length
    const body = nodes(inner, depth + 1, undefined)
    return PLACEHOLDER_ENVS.has(env) ? `< ${env} >` : body
  }
  if (name === "end") {
    // a stray \end{...}
    const save = r.i
    r.skipSpaces()
    if (r.s[r.i] === "{") {
      const close = r.s.indexOf("}", r.i)
      if (close >= 0) {
        r.i = close + 1
        return ""
      }
    }
    r.i = save
    return ""
  }
  const sym = SYMBOLS[name]
  return sym ?? ""
}

const nodes = (r: Reader, depth: number, until: string | undefined): string => {
  const s = r.s
  if (depth > MAX_DEPTH) {
    const rest = s.slice(r.i)
    r.i = s.length
    return rest
  }
  let out = ""
  while (r.i < s.length) {
    const c = s[r.i]!
    if (until !== undefined && c === until) {
      r.i++
      return out
    }
    if (c === "\\") {
      r.i++
      if (r.i >= s.length) break
      const n = s[r.i]
      if (n === "(" || n === ")" || n === "[" || n === "]") {
        r.i++
        continue
      }
      out += macro(r, macroName(r), depth)
    } else if (c === "{") {
      r.i++
      if (depth >= MAX_DEPTH) out += "{"
      else out += nodes(r, depth + 1, "}")
    } else if (c === "$") {
      r.i++
    } else if (c === "&") {
      r.i++
      out += "   "
    } else if (c === "~") {
      r.i++
      out += "\u00a0"
    } else if (c === "-" && s.startsWith("---", r.i)) {
      r.i += 3
      out += "—"
    } else if (c === "-" && s.startsWith("--", r.i)) {
      r.i += 2
      out += "–"
    } else if (c === "`" && s.startsWith("``", r.i)) {
      r.i += 2
      out += "“"
    } else if (c === "'" && s.startsWith("''", r.i)) {
      r.i += 2
      out += "”"
    } else {
      r.i++
      out += c
    }
  }
  return out
}

/** Renders LaTeX as text (pylatexenc-2.10-like, see the module comment). Never throws. */
export const latexToText = (latex: string): string => nodes(new Reader(latex), 0, undefined)
