/**
 * MT19937 that reproduces numpy's legacy global generator bit for bit: `np.random.seed(s)` followed by
 * `np.random.rand()` (`random_sample`) and `np.random.randn()` (`legacy_gauss`).
 *
 * The reference `random_patch_blackening` draws from that global generator, so seeding this one with
 * the same integer gives the reference's very masks.
 *
 * - Seeding an integer `s` in [0, 2³²−1] is Matsumoto–Nishimura's `init_genrand(s)` (numpy's
 *   `_legacy_seeding` for a scalar; `init_by_array` is only used for array seeds).
 * - `random()` = (a >>> 5, b >>> 6) → (a·2²⁶ + b) / 2⁵³, a 53-bit double from two 32-bit outputs.
 * - `normal()` is the polar Box–Muller method with one cached value, as numpy's legacy `gauss`.
 * - `state()` has the fields of `np.random.get_state()`: `key` (624 words), `pos`, `hasGauss`, `gauss`.
 *
 * @since 0.1.0
 */
import type { Rng } from "./Rng.js"

const N = 624
const M = 397
const MATRIX_A = 0x9908b0df
const UPPER_MASK = 0x80000000
const LOWER_MASK = 0x7fffffff

/**
 * A saved generator state: plain JSON, the same fields as numpy's `get_state()` tuple
 * `('MT19937', key, pos, has_gauss, cached_gaussian)`.
 *
 * @category models
 */
export interface Mt19937State {
  readonly key: ReadonlyArray<number>
  readonly pos: number
  readonly hasGauss: boolean
  readonly gauss: number
}

/**
 * numpy-compatible MT19937 (see the module comment).
 *
 * @example
 * const rng = Mt19937.seed(0)
 * rng.random() // => 0.5488135039273248   (np.random.seed(0); np.random.rand())
 * const saved = rng.state()
 * const a = rng.random()
 * Mt19937.fromState(saved).random() === a // => true
 *
 * @category models
 */
export class Mt19937 implements Rng {
  private readonly key = new Uint32Array(N)
  private pos = N
  private hasGauss = false
  private gauss = 0

  private constructor() {}

  /** `np.random.seed(seed)` for an integer seed in [0, 2³²−1]. */
  static seed(seed: number): Mt19937 {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`Mt19937.seed: seed must be an integer in [0, 4294967295], got ${seed}`)
    }
    const g = new Mt19937()
    const key = g.key
    key[0] = seed
    for (let i = 1; i < N; i++) {
      const prev = key[i - 1]!
      key[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i
    }
    return g
  }

  /** A generator that continues exactly from a saved {@link Mt19937State}. */
  static fromState(state: Mt19937State): Mt19937 {
    const g = new Mt19937()
    g.restore(state)
    return g
  }

  /** A copy of the current state; {@link Mt19937.restore} or {@link Mt19937.fromState} resume from it. */
  state(): Mt19937State {
    return { key: Array.from(this.key), pos: this.pos, hasGauss: this.hasGauss, gauss: this.gauss }
  }

  /** Puts the generator back into a saved state (validated). */
  restore(state: Mt19937State): void {
    if (state.key.length !== N || state.key.some((k) => !Number.isInteger(k) || k < 0 || k > 0xffffffff)) {
      throw new RangeError(`Mt19937.restore: key must hold ${N} integers in [0, 4294967295]`)
    }
    if (!Number.isInteger(state.pos) || state.pos < 0 || state.pos > N) {
      throw new RangeError(`Mt19937.restore: pos must be an integer in [0, ${N}], got ${state.pos}`)
    }
    this.key.set(state.key)
    this.pos = state.pos
    this.hasGauss = state.hasGauss
    this.gauss = state.gauss
  }

  /** The next tempered 32-bit output (`genrand_int32`). */
  nextUint32(): number {
    if (this.pos >= N) this.twist()
    let y = this.key[this.pos++]!
    y ^= y >>> 11
    y ^= (y << 7) & 0x9d2c5680
    y ^= (y << 15) & 0xefc60000
    y ^= y >>> 18
    return y >>> 0
  }

  /** A uniform double in [0, 1) with 53 random bits: `np.random.rand()`. */
  random(): number {
    const a = this.nextUint32() >>> 5 // 27 bits
    const b = this.nextUint32() >>> 6 // 26 bits
    return (a * 67108864 + b) / 9007199254740992
  }

  /** A standard normal draw: `np.random.randn()` (legacy polar method, caches its second value). */
  normal(): number {
    if (this.hasGauss) {
      this.hasGauss = false
      const g = this.gauss
      this.gauss = 0
      return g
    }
    let x1: number
    let x2: number
    let r2: number
    do {
      x1 = 2 * this.random() - 1
      x2 = 2 * this.random() - 1
      r2 = x1 * x1 + x2 * x2
    } while (r2 >= 1 || r2 === 0)
    const f = Math.sqrt((-2 * Math.log(r2)) / r2)
    this.gauss = f * x1
    this.hasGauss = true
    return f * x2
  }

  /** Regenerates the 624 words of state. */
  private twist(): void {
    const mt = this.key
    let kk = 0
    for (; kk < N - M; kk++) {
      const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK)
      mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
    }
    for (; kk < N - 1; kk++) {
      const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK)
      mt[kk] = mt[kk + M - N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
    }
    const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK)
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)
    this.pos = 0
  }
}
