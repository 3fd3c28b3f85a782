/**
 * The statistics of a paired comparison: per seed, the method's figure minus the baseline's (same warm
 * start, same data order, same seed), then the mean of those differences and its 95% t-interval across
 * seeds, with the exact Student-t quantile (no normal approximation: with 6 seeds t₀.₉₇₅ is 2.571, not
 * 1.96). The verdict is read from the interval: it says "better" or "worse" only when the interval
 * excludes zero.
 *
 * @since 0.1.0
 */

/**
 * P(|T| ≤ t) for Student's t with `df` degrees of freedom (a positive integer), by the finite series of
 * Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df), exact up to float rounding.
 *
 * @example
 * tCentralProbability(12.706204736, 1) // => 0.95 (to 1e-9)
 *
 * @category math
 */
export const tCentralProbability = (t: number, df: number): number => {
  if (!(Number.isInteger(df) && df >= 1)) throw new Error(`Error in tCentralProbability: df must be a positive integer, got ${df}`)
  const theta = Math.atan(Math.abs(t) / Math.sqrt(df))
  const s = Math.sin(theta)
  const c2 = Math.cos(theta) ** 2
  if (df % 2 === 0) {
    // sinθ · (1 + ½cos²θ + (1·3)/(2·4)cos⁴θ + … up to cos^(df−2)θ)
    let term = 1
    let sum = 1
    for (let j = 2; j <= df - 2; j += 2) {
      term *= ((j - 1) / j) * c2
      sum += term
    }
    return s * sum
  }
  if (df === 1) return (2 / Math.PI) * theta
  // (2/π)(θ + sinθ·cosθ·(1 + (2/3)cos²θ + (2·4)/(3·5)cos⁴θ + … up to cos^(df−3)θ))
  let term = 1
  let sum = 1
  for (let j = 3; j <= df - 2; j += 2) {
    term *= ((j - 1) / j) * c2
    sum += term
  }
  return (2 / Math.PI) * (theta + s * Math.cos(theta) * sum)
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (`p` in (0, 1)), by bisection on the exact
 * distribution function.
 *
 * @example
 * tQuantile(0.975, 5) // => 2.5705818 (to 1e-6)
 *
 * @category math
 */
export const tQuantile = (p: number, df: number): number => {
  if (!(p > 0 && p < 1)) throw new Error(`Error in tQuantile: p must be in (0, 1), got ${p}`)
  if (p === 0.5) return 0
  const target = Math.abs(2 * p - 1)
  let lo = 0
  let hi = 1
  while (tCentralProbability(hi, df) < target) hi *= 2
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2
    if (tCentralProbability(mid, df) < target) lo = mid
    else hi = mid
  }
  const t = (lo + hi) / 2
  return p > 0.5 ? t : -t
}

/**
 * A paired comparison across seeds.
 *
 * @category models
 */
export interface Paired {
  /** Seeds with both figures. */
  readonly n: number
  /** method − baseline, per seed. */
  readonly diffs: ReadonlyArray<number>
  readonly mean: number
  /** Sample standard deviation of the differences. */
  readonly sd: number
  /** The interval's half width: t₀.₉₇₅(n − 1) · sd / √n (NaN for fewer than 2 seeds). */
  readonly halfWidth: number
  /** The 95% t-interval of the mean difference ([NaN, NaN] for fewer than 2 seeds). */
  readonly ci95: readonly [number, number]
}

/**
 * Differences `method[i] − baseline[i]` (pairs with a non-finite side are left out), their mean and 95%
 * t-interval.
 *
 * @example
 * paired([0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]).ci95 // => [1.5367, 5.4633] (to 1e-4)
 *
 * @category math
 */
export const paired = (baseline: ReadonlyArray<number>, method: ReadonlyArray<number>): Paired => {
  if (baseline.length !== method.length) {
    throw new Error(`Error in paired: ${baseline.length} baseline values but ${method.length} method values`)
  }
  const diffs = method.flatMap((m, i) => (Number.isFinite(m) && Number.isFinite(baseline[i]!) ? [m - baseline[i]!] : []))
  const n = diffs.length
  const mean = n ? diffs.reduce((a, b) => a + b, 0) / n : NaN
  const sd = n > 1 ? Math.sqrt(diffs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN
  const halfWidth = n > 1 ? (tQuantile(0.975, n - 1) * sd) / Math.sqrt(n) : NaN
  return { n, diffs, mean, sd, halfWidth, ci95: [mean - halfWidth, mean + halfWidth] }
}

/**
 * What an interval says about the method: `better` or `worse` when it excludes zero (in the direction
 * that is good for the figure), else `indistinguishable`.
 *
 * @example
 * verdictOf([0.01, 0.05], "higher") // => "better"
 * verdictOf([0.01, 0.05], "lower") // => "worse"
 *
 * @category math
 */
export const verdictOf = (
  ci95: readonly [number, number],
  good: "higher" | "lower"
): "better" | "worse" | "indistinguishable" => {
  const [lo, hi] = ci95
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return "indistinguishable"
  const up = lo > 0
  const down = hi < 0
  if (!up && !down) return "indistinguishable"
  return up === (good === "higher") ? "better" : "worse"
}
