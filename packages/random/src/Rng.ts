/**
 * The one random-number interface of papo-ts, and the one way a stream is derived from a run's seed.
 *
 * Two generators implement {@link Rng}: {@link Mt19937} (numpy's legacy generator, bit for bit: where a
 * draw must match the reference, as PAPO's patch masks do) and {@link Xoshiro128} (four words of state,
 * cheap to send to a worker thread: token sampling and weight initialization).
 *
 * **Derivation.** A stream is named by the run's seed and one or more labels (`"masks"`, `"order", 3`).
 * {@link deriveSeed} hashes `[seed, ...labels].join("\0")` with 32-bit FNV-1a; the stream is the generator
 * seeded with that word ({@link make} for MT19937, {@link makeXoshiro} for xoshiro128**). Adding draws to one stream never shifts another, and
 * the same `(seed, labels)` gives the same stream on every machine. Nothing calls `Math.random`.
 *
 * @since 0.1.0
 */
import { Mt19937 } from "./Mt19937.js"
import { Xoshiro128 } from "./Xoshiro128.js"

/**
 * A source of uniform and standard-normal draws. Any object with these methods works (for instance one
 * that replays logged draws); each generator documents the resolution of its `random()`.
 *
 * @example
 * const rng: Rng = Mt19937.seed(1234)
 * rng.random() // => 0.1915194503788923   (np.random.seed(1234); np.random.rand())
 *
 * @category models
 */
export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number
  /** A uniform double in [0, 1). */
  random(): number
  /** A standard normal double. */
  normal(): number
}

/**
 * The 32-bit seed of stream `labels` under `seed`: FNV-1a over `[seed, ...labels].join("\0")`.
 *
 * @example
 * deriveSeed(1, "masks") === deriveSeed(1, "masks") // => true
 * deriveSeed(1, "masks") === deriveSeed(1, "sampling") // => false
 *
 * @category constructors
 */
export const deriveSeed = (seed: number, ...labels: ReadonlyArray<string | number>): number => {
  const text = [seed, ...labels].join("\u0000")
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/**
 * The MT19937 stream of `labels` under `seed` (seeded with {@link deriveSeed}).
 *
 * @example
 * make(1, "data").random() === make(1, "data").random() // => true
 *
 * @category constructors
 */
export const make = (seed: number, ...labels: ReadonlyArray<string | number>): Mt19937 => Mt19937.seed(deriveSeed(seed, ...labels))

/**
 * The xoshiro128** stream of `labels` under `seed` (seeded with {@link deriveSeed}).
 *
 * @example
 * makeXoshiro(1, "sampling").state() // => new Xoshiro128(deriveSeed(1, "sampling")).state()
 *
 * @category constructors
 */
export const makeXoshiro = (seed: number, ...labels: ReadonlyArray<string | number>): Xoshiro128 =>
  new Xoshiro128(deriveSeed(seed, ...labels))

/**
 * A uniform integer in [0, n): `⌊random() · n⌋`.
 *
 * @example
 * int(make(1, "dice"), 6) < 6 // => true
 *
 * @category math
 */
export const int = (rng: Rng, n: number): number => Math.floor(rng.random() * n)

/**
 * A Fisher–Yates permutation of `0..n-1` (one {@link int} per position, from the end).
 *
 * @example
 * permutation(5, make(1, "order")).sort() // => [0, 1, 2, 3, 4]
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
