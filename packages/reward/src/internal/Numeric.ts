/**
 * Numeric equivalence on top of mathjs (the computer-algebra library this package uses): an expression
 * in mathjs syntax is evaluated in double precision, with every free symbol bound to a few fixed,
 * "generic" values; two expressions are taken as equal when their difference vanishes at every point.
 * This is the probabilistic identity test that stands in for `sympy.simplify(a - b) == 0`.
 *
 * @internal
 */
import { all, create, type MathNode } from "mathjs"
import { checkBudget } from "./Budget.js"

/** One mathjs instance, numbers as IEEE doubles (fast; exact rationals are not needed for a zero test). */
export const math = create(all!, { number: "number", predictable: false })

const compiled = new Map<string, { readonly fn: (scope: Record<string, unknown>) => unknown; readonly symbols: ReadonlyArray<string> }>()
const MAX_CACHE = 2000

const FUNCTIONS = new Set(["sqrt", "sin", "cos", "tan", "log", "exp", "factorial", "abs", "nthRoot", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sec", "csc", "cot", "log10", "log2", "re", "im", "arg", "conj"])
const CONSTANTS = new Set(["pi", "e", "i", "Infinity", "E"])

const compile = (expr: string) => {
  let c = compiled.get(expr)
  if (c !== undefined) return c
  const node: MathNode = math.parse(expr)
  const symbols = new Set<string>()
  node.traverse((n, _path, parent) => {
    if ((n as { isSymbolNode?: boolean }).isSymbolNode) {
      const name = (n as unknown as { name: string }).name
      const isFn = parent !== null && (parent as { isFunctionNode?: boolean }).isFunctionNode && (parent as unknown as { fn: MathNode }).fn === n
      if (!isFn && !FUNCTIONS.has(name) && !CONSTANTS.has(name)) symbols.add(name)
    }
  })
  const code = node.compile()
  c = { fn: (scope) => code.evaluate(scope), symbols: [...symbols].sort() }
  if (compiled.size >= MAX_CACHE) compiled.clear()
  compiled.set(expr, c)
  return c
}

/** The free symbols of an expression in mathjs syntax (throws on a syntax error). */
export const freeSymbols = (expr: string): ReadonlyArray<string> => compile(expr).symbols

// Generic values, far from small integers and from each other's simple rational multiples.
const POINTS = [0.5772156649015329, 1.3247179572447458, 2.6854520010653062, 0.2614972128476428, 1.9021605831040]

/** A real or complex value as a pair, or undefined when evaluation failed or was not a scalar. */
const toPair = (v: unknown): readonly [number, number] | undefined => {
  if (typeof v === "number") return [v, 0]
  if (typeof v === "boolean") return undefined
  if (v !== null && typeof v === "object" && "re" in v && "im" in v) {
    const c = v as { re: unknown; im: unknown }
    if (typeof c.re === "number" && typeof c.im === "number") return [c.re, c.im]
  }
  return undefined
}

/** The scope of sample point k for the given symbols (sorted, so both sides get the same values). */
export const pointScope = (symbols: ReadonlyArray<string>, k: number): Record<string, number> => {
  const scope: Record<string, number> = {}
  symbols.forEach((s, j) => {
    scope[s] = POINTS[(j + k) % POINTS.length]! + 0.1 * k * (j + 1)
  })
  return scope
}

/** Evaluates an expression in a scope; undefined on any failure or a non-scalar result. */
export const evaluateIn = (expr: string, scope: Readonly<Record<string, unknown>>): readonly [number, number] | undefined => {
  checkBudget()
  try {
    return toPair(compile(expr).fn({ ...scope }))
  } catch {
    return undefined
  }
}

const finite = (p: readonly [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1])

/**
 * True when `a − b` is zero at every sample point where both are finite (at least one such point, and
 * the same points must be finite for both). `relTol` is relative to the larger magnitude.
 */
export const numericallyEqual = (a: string, b: string, relTol = 1e-9): boolean => {
  // A decimal literal makes sympy compute in 53-bit floats: only an exact zero counts there.
  if (/\d\.\d|\.\d|\d\.(?!\d)|\de[+-]?\d/i.test(a + " " + b)) relTol = 0
  let symbols: Array<string>
  try {
    symbols = [...new Set([...compile(a).symbols, ...compile(b).symbols])].sort()
  } catch {
    return false
  }
  const points = symbols.length > 0 ? 3 : 1
  let ok = 0
  for (let k = 0; k < points; k++) {
    const scope = pointScope(symbols, k)
    const x = evaluateIn(a, scope)
    const y = evaluateIn(b, scope)
    if (x === undefined || y === undefined) return false
    const fx = finite(x)
    const fy = finite(y)
    if (fx !== fy) return false
    if (!fx) continue
    const scale = Math.max(1, Math.hypot(x[0], x[1]), Math.hypot(y[0], y[1]))
    if (Math.hypot(x[0] - y[0], x[1] - y[1]) > relTol * scale) return false
    ok++
  }
  return ok > 0
}
