/**
 * @papo/random: the seeded, restorable random streams of papo-ts. One interface ({@link Rng}), two
 * generators (numpy-compatible {@link Mt19937}, small {@link Xoshiro128}), and one derivation of a stream
 * from `(seed, label)`.
 *
 * @since 0.1.0
 */
export * from "./Mt19937.js"
export * as Rng from "./Rng.js"
export * from "./Xoshiro128.js"
