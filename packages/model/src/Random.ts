/**
 * A small seeded generator (xoshiro128**) whose whole state is four 32-bit words, so a run can save it
 * in a checkpoint and resume the exact same random stream.
 *
 * @since 0.1.0
 */

/**
 * The saved state of an {@link Rng}.
 *
 * @category models
 */
export type RngState = readonly [number, number, number, number]

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
 * A seeded random number generator. Never shared behind the caller's back: pass it in.
 *
 * @example
 * const a = new Rng(7), b = Rng.fromState(a.state())
 * a.nextFloat() === b.nextFloat() // => true
 *
 * @category constructors
 */
export class Rng {
  private s: Uint32Array
  constructor(seed: number) {
    const next = splitmix32(seed)
    this.s = Uint32Array.of(next(), next(), next(), next())
    if (this.s.every((x) => x === 0)) this.s[0] = 1
  }

  /** A generator that continues from a saved state. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0)
    if (state.length !== 4 || state.every((x) => x === 0)) throw new Error(`Invalid Rng state [${state.join(", ")}]`)
    r.s = Uint32Array.from(state)
    return r
  }

  /** The current state, to save. */
  state(): RngState {
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
  nextFloat(): number {
    return this.nextUint32() / 4294967296
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.nextFloat() // (0, 1]
    const v = this.nextFloat()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** A derived generator for an independent stream (the parent advances by one draw). */
  fork(): Rng {
    return new Rng(this.nextUint32())
  }
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0
