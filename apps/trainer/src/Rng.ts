/**
 * The trainer's random streams: `@papo/masking`'s numpy-compatible MT19937, one generator per named
 * stream (data generation, data order, masks, sampling), each seeded from the run seed and its name so
 * that adding draws to one stream never shifts another. A generator's `state()` goes into checkpoints;
 * nothing in the trainer calls `Math.random`.
 *
 * @since 0.1.0
 */
import { Mt19937 } from "@papo/masking"

/**
 * A generator of one stream (the masking package's MT19937).
 *
 * @category models
 */
export type Rng = Mt19937

/**
 * The generator of stream `labels` under `seed`: the labels are hashed (FNV-1a) into the 32-bit seed.
 *
 * @example
 * make(1, "data").random() === make(1, "data").random() // => true
 *
 * @category constructors
 */
export const make = (seed: number, ...labels: ReadonlyArray<string | number>): Rng => {
  const text = [seed, ...labels].join("\u0000")
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return Mt19937.seed(h >>> 0)
}

/**
 * A uniform integer in [0, n).
 *
 * @category math
 */
export const int = (rng: Rng, n: number): number => Math.floor(rng.random() * n)

/**
 * A Fisher–Yates permutation of `0..n-1`.
 *
 * @category math
 */
export const permutation = (n: number, rng: Rng): Array<number> => {
  const p = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = int(rng, i + 1)
    const t = p[i]!
    p[i] = p[j]!
    p[j] = t
  }
  return p
}
