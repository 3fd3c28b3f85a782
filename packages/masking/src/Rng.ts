/**
 * The randomness a masking function consumes, passed in by the caller: nothing in this package calls
 * `Math.random`, so a run can be reproduced and resumed exactly.
 *
 * @since 0.1.0
 */

/**
 * A source of uniform and standard-normal draws. {@link Mt19937} is the seeded, restorable
 * implementation; any object with these two methods works (for instance one that replays logged draws).
 *
 * @example
 * const rng: Rng = Mt19937.seed(1234)
 * rng.random() // => 0.1915194503788923
 *
 * @category models
 */
export interface Rng {
  /** A uniform double in [0, 1). */
  random(): number
  /** A standard normal double. */
  normal(): number
}
