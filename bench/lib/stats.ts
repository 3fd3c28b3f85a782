/** Order statistics of a bench's timings. */

/** The q-quantile of xs, interpolating linearly between order statistics (q 0.5: the median; q 0, 1: min, max). */
export const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  const h = (s.length - 1) * q
  const lo = Math.floor(h)
  return s[lo]! + (h - lo) * (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!)
}

/** The median of xs (of an even count: the mean of the middle two). */
export const median = (xs: ReadonlyArray<number>): number => quantile(xs, 0.5)
