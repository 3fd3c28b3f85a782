/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32: a small generator whose whole state is four
 * 32-bit words, so a run can save it in a checkpoint, send it to a worker thread, and resume the exact
 * same stream. `random()` has 32 random bits (enough for token sampling; use {@link Mt19937} where a
 * draw must match numpy).
 *
 * @since 0.1.0
 */
import type { Rng } from "./Rng.js"

/**
 * The saved state of a {@link Xoshiro128}: its four words.
 *
 * @category models
 */
export type Xoshiro128State = readonly [number, number, number, number]

const splitmix32 = (seed: number): (() => number) => {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

/**
 * A seeded xoshiro128** generator. Never shared behind the caller's back: pass it in.
 *
 * @example
 * const a = new Xoshiro128(7), b = Xoshiro128.fromState(a.state())
 * a.random() === b.random() // => true
 *
 * @category models
 */
export class Xoshiro128 implements Rng {
  private s: Uint32Array
  constructor(seed: number) {
    const next = splitmix32(seed)
    this.s = Uint32Array.of(next(), next(), next(), next())
    if (this.s.every((x) => x === 0)) this.s[0] = 1
  }

  /** A generator that continues from a saved state. */
  static fromState(state: Xoshiro128State): Xoshiro128 {
    const r = new Xoshiro128(0)
    if (state.length !== 4 || state.every((x) => x === 0)) throw new Error(`Invalid Xoshiro128 state [${state.join(", ")}]`)
    r.s = Uint32Array.from(state)
    return r
  }

  /** The current state, to save. */
  state(): Xoshiro128State {
    const s = this.s
    return [s[0]!, s[1]!, s[2]!, s[3]!]
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s
    let s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
    const t = s1 << 9
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 11)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  random(): number {
    return this.nextUint32() / 4294967296
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.random() // (0, 1]
    const v = this.random()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** A derived generator for an independent stream (the parent advances by one draw). */
  fork(): Xoshiro128 {
    return new Xoshiro128(this.nextUint32())
  }
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0
