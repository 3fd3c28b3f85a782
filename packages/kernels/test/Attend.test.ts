// Native one-token attention over a KV cache against a plain loop (the model's own fallback does the same
// math), on random shapes: one row or many, one head or several, hd 1 / odd / 32, the first position and
// the last. Tolerance: |native − loop| ≤ 1e-5·(1 + |loop|) (both accumulate in double; the output is fp32).
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { Native } from "../src/index.js"

const s = Native.status()
const skip = !s.available && `native kernels off: ${s.available ? "" : s.reason}`

interface Case {
  readonly rows: number
  readonly heads: number
  readonly hd: number
  readonly capacity: number
  readonly pos: number
  readonly seed: number
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    rows: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 90 })),
    heads: fc.integer({ min: 1, max: 8 }),
    hd: fc.constantFrom(1, 3, 7, 32),
    capacity: fc.integer({ min: 1, max: 64 }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer({ min: 1, max: 1e6 })
  })
  .map(({ at, ...c }) => ({ ...c, pos: Math.min(c.capacity - 1, Math.floor(at * c.capacity)) }))

/** Deterministic values in [−2, 2) from a seed (xorshift32). */
const values = (n: number, seed: number): Float32Array => {
  let x = seed >>> 0 || 1
  return Float32Array.from({ length: n }, () => {
    x ^= x << 13, x >>>= 0, x ^= x >>> 17, x ^= x << 5, x >>>= 0
    return (x / 2 ** 32) * 4 - 2
  })
}

const inputs = (c: Case) => {
  const d = c.heads * c.hd, size = c.rows * c.heads * c.capacity * c.hd
  return { qkv: values(c.rows * 3 * d, c.seed), k: values(size, c.seed + 1), v: values(size, c.seed + 2), out: new Float32Array(c.rows * d) }
}

/** softmax(q·kᵀ/√hd)·v over positions 0…pos, after storing the new k, v at pos: the plain loop. */
const reference = (c: Case, qkv: Float32Array, k: Float32Array, v: Float32Array): Float32Array => {
  const d = c.heads * c.hd, out = new Float32Array(c.rows * d)
  for (let r = 0; r < c.rows; r++) {
    for (let h = 0; h < c.heads; h++) {
      const base = (r * c.heads + h) * c.capacity * c.hd, q = r * 3 * d + h * c.hd
      k.set(qkv.subarray(q + d, q + d + c.hd), base + c.pos * c.hd)
      v.set(qkv.subarray(q + 2 * d, q + 2 * d + c.hd), base + c.pos * c.hd)
      const scores = Array.from({ length: c.pos + 1 }, (_, t) => {
        let s = 0
        for (let j = 0; j < c.hd; j++) s += qkv[q + j]! * k[base + t * c.hd + j]!
        return s / Math.sqrt(c.hd)
      })
      const max = Math.max(...scores), e = scores.map((s) => Math.exp(s - max)), sum = e.reduce((a, b) => a + b, 0)
      for (let j = 0; j < c.hd; j++) out[r * d + h * c.hd + j] = e.reduce((acc, w, t) => acc + (w / sum) * v[base + t * c.hd + j]!, 0)
    }
  }
  return out
}

test("native attention over a KV cache agrees with the plain loop and stores the new key and value", { skip }, () => {
  fc.assert(fc.property(cases, (c) => {
    const a = inputs(c), b = inputs(c)
    Native.attend(a.qkv, a.k, a.v, a.out, c)
    const want = reference(c, b.qkv, b.k, b.v)
    assert.deepEqual(a.k, b.k)
    assert.deepEqual(a.v, b.v)
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(a.out[i]! - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)))) assert.fail(`${JSON.stringify(c)}: element ${i}: ${a.out[i]} vs ${want[i]}`)
    }
  }), { numRuns: 60, seed: 30 })
})

test("native attention is bit-identical on one thread and two, and refuses a full cache", { skip }, () => {
  const c = { rows: 80, heads: 4, hd: 32, capacity: 56, pos: 50, seed: 9 }
  const one = inputs(c), two = inputs(c)
  Native.configure({ threads: 1 })
  Native.attend(one.qkv, one.k, one.v, one.out, c)
  Native.configure({ threads: 2 })
  Native.attend(two.qkv, two.k, two.v, two.out, c)
  assert.deepEqual(Buffer.from(two.out.buffer), Buffer.from(one.out.buffer))
  assert.throws(() => Native.attend(one.qkv, one.k, one.v, one.out, { ...c, pos: 56 }), /cache is full/)
})
