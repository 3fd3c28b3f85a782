/**
 * Exact rational arithmetic over the value model (BigInt numerator/denominator), for the comparisons
 * Math-Verify makes exactly: sympy keeps integers of any size, rationals and integer powers of them
 * exact (latex2sympy evaluates `2^{64}` to the Integer 18446744073709551616), and compares two such
 * numbers with `==`. Only a decimal literal (a sympy Float) makes it round.
 *
 * `exactValue` evaluates a scalar built from integer literals, + − × ÷, integer powers, percent and
 * small factorials; symbols take the rational values of a sample point. Anything else (a decimal, a
 * root, a function, a constant such as π) is `undefined`, and the caller falls back to floating point.
 *
 * @internal
 */
import type { Scalar } from "./LatexValue.js"

/** A rational number in lowest terms with a positive denominator. */
export interface Rational {
  readonly n: bigint
  readonly d: bigint
}

/** Results larger than this many bits are not computed (sympy would spend seconds on them, too). */
const MAX_BITS = 1 << 16
const MAX_FACTORIAL = 1000n

const abs = (x: bigint) => (x < 0n ? -x : x)
const gcd = (a: bigint, b: bigint): bigint => {
  let x = abs(a)
  let y = abs(b)
  while (y !== 0n) [x, y] = [y, x % y]
  return x
}
const bits = (x: bigint) => abs(x).toString(16).length * 4

const make = (n: bigint, d: bigint): Rational | undefined => {
  if (d === 0n) return undefined
  const g = gcd(n, d)
  const s = d < 0n ? -1n : 1n
  const r = { n: (s * n) / (g === 0n ? 1n : g), d: (s * d) / (g === 0n ? 1n : g) }
  return bits(r.n) + bits(r.d) > MAX_BITS ? undefined : r
}

const add = (a: Rational, b: Rational) => make(a.n * b.d + b.n * a.d, a.d * b.d)
const mul = (a: Rational, b: Rational) => make(a.n * b.n, a.d * b.d)

const pow = (a: Rational, e: Rational): Rational | undefined => {
  if (e.d !== 1n) return undefined
  const k = abs(e.n)
  // refuse before computing: |a|^k has about k·bits(a) bits
  if (k > 0n && (a.n > 1n || a.n < -1n || a.d > 1n) && k * BigInt(bits(a.n) + bits(a.d) - 4) > BigInt(MAX_BITS)) return undefined
  const r = { n: a.n ** k, d: a.d ** k }
  return e.n < 0n ? make(r.d, r.n) : make(r.n, r.d)
}

/**
 * The exact value of `s`, with each symbol bound by `scope` (undefined for an unbound symbol or any
 * construct that is not rational arithmetic).
 */
export const exactValue = (s: Scalar, scope: ReadonlyMap<string, Rational> = new Map()): Rational | undefined => {
  switch (s.k) {
    case "num":
      return s.float || !/^\d+$/.test(s.text) ? undefined : { n: BigInt(s.text), d: 1n }
    case "sym":
      return scope.get(s.name)
    case "neg": {
      const x = exactValue(s.x, scope)
      return x === undefined ? undefined : { n: -x.n, d: x.d }
    }
    case "pct": {
      const x = exactValue(s.x, scope)
      return x === undefined ? undefined : make(x.n, x.d * 100n)
    }
    case "add":
    case "mul": {
      const xs = s.k === "add" ? s.terms : s.factors
      let acc: Rational | undefined = { n: s.k === "add" ? 0n : 1n, d: 1n }
      for (const t of xs) {
        const v = exactValue(t, scope)
        if (v === undefined || acc === undefined) return undefined
        acc = s.k === "add" ? add(acc, v) : mul(acc, v)
      }
      return acc
    }
    case "div": {
      const a = exactValue(s.num, scope)
      const b = exactValue(s.den, scope)
      return a === undefined || b === undefined ? undefined : make(a.n * b.d, a.d * b.n)
    }
    case "pow": {
      const a = exactValue(s.base, scope)
      const e = exactValue(s.exp, scope)
      return a === undefined || e === undefined ? undefined : pow(a, e)
    }
    case "fn": {
      if (s.name !== "factorial" || s.args.length !== 1) return undefined
      const x = exactValue(s.args[0]!, scope)
      if (x === undefined || x.d !== 1n || x.n < 0n || x.n > MAX_FACTORIAL) return undefined
      let r = 1n
      for (let i = 2n; i <= x.n; i++) r *= i
      return make(r, 1n)
    }
    case "const":
      return undefined
  }
}

/** Exact equality of two rationals (both in lowest terms). */
export const rationalEq = (a: Rational, b: Rational): boolean => a.n === b.n && a.d === b.d

// Sample points for symbols: rationals with large, distinct, coprime parts, so that two different
// rational functions of a few variables agree at all three only on a measure-zero set.
const POINT_PRIMES: ReadonlyArray<readonly [bigint, bigint]> = [
  [1_000_003n, 999_983n], [7_919n, 104_729n], [2_147_483_647n, 65_537n], [3n ** 31n, 2n ** 37n + 1n], [611_953n, 15_485_863n]
]

/** The exact scope of sample point k for the given (sorted) symbols. */
export const exactScope = (symbols: ReadonlyArray<string>, k: number): Map<string, Rational> => {
  const scope = new Map<string, Rational>()
  symbols.forEach((name, j) => {
    const [n, d] = POINT_PRIMES[(j + 2 * k) % POINT_PRIMES.length]!
    scope.set(name, make(n + BigInt(k), d)!)
  })
  return scope
}

/** The symbols of a scalar, sorted. */
export const symbolsOf = (s: Scalar): Array<string> => {
  const out = new Set<string>()
  const walk = (x: Scalar): void => {
    switch (x.k) {
      case "sym": out.add(x.name); return
      case "num": case "const": return
      case "add": x.terms.forEach(walk); return
      case "mul": x.factors.forEach(walk); return
      case "div": walk(x.num); walk(x.den); return
      case "pow": walk(x.base); walk(x.exp); return
      case "neg": case "pct": walk(x.x); return
      case "fn": x.args.forEach(walk); return
    }
  }
  walk(s)
  return [...out].sort()
}

/**
 * Exact comparison of two rational expressions: true/false when both evaluate exactly (at three
 * rational sample points when they have symbols), undefined when either is not rational arithmetic.
 */
export const exactlyEqual = (a: Scalar, b: Scalar): boolean | undefined => {
  const symbols = [...new Set([...symbolsOf(a), ...symbolsOf(b)])].sort()
  const points = symbols.length === 0 ? 1 : 3
  for (let k = 0; k < points; k++) {
    const scope = exactScope(symbols, k)
    const x = exactValue(a, scope)
    const y = exactValue(b, scope)
    if (x === undefined || y === undefined) return undefined
    if (!rationalEq(x, y)) return false
  }
  return true
}
