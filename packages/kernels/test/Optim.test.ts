// The native optimizer kernels (global sum of squares, fused AdamW) against the math they replace. AdamW:
// the same bits as the composition of wasm kernels that @papo/model ran before (every operation is one
// correctly rounded float32 operation on both sides, so the tolerance is zero). Sum of squares: double
// accumulation of float32 squares, within 1e-12 relative of a plain JavaScript double sum (the orders differ).
// Both: the same bits for 1 and 2 threads, and with the portable loops as with the AVX2 ones.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const native = original.status.available
const skip = !native && `native kernels off: ${original.status.available ? "" : original.status.reason}`

// Tensor sizes: 1, odd, past a chunk (2¹⁴) and past the two-thread threshold (2¹⁵) in total.
const size = fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 37 }), fc.integer({ min: 16_000, max: 40_000 }))
const problem = fc.record({
  sizes: fc.array(size, { minLength: 1, maxLength: 5 }),
  seed: fc.integer({ min: 0, max: 1e6 }),
  clip: fc.oneof(fc.constant(1), fc.double({ min: 1e-3, max: 1, noNaN: true })),
  t: fc.integer({ min: 1, max: 1000 }),
  lr: fc.double({ min: 1e-7, max: 1e-2, noNaN: true }),
  wd: fc.constantFrom(0, 0.01, 0.1)
})

type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never

const tensorsOf = ({ sizes, seed }: Problem) => {
  const make = (scale: number, k: number) => sizes.map((n, i) => tf.mul(tf.randomNormal([n], 0, 1, "float32", seed + 10 * i + k), scale))
  const v = make(1e-2, 3).map((x) => tf.square(x)) // second moments are ≥ 0
  return { p: make(0.05, 0), g: make(1e-1, 1), m: make(1e-2, 2), v }
}

const constantsOf = ({ clip, t, lr, wd }: Problem): Native.AdamWConstants => {
  const beta1 = 0.9, beta2 = 0.999
  return { clip, beta1, beta2, bias1: 1 - Math.pow(beta1, t), bias2: 1 - Math.pow(beta2, t), eps: 1e-8, decay: 1 - lr * wd, lr }
}

// The step as @papo/model wrote it in wasm kernels (each scalar a float32 operand).
const reference = (p: tf.Tensor, g0: tf.Tensor, m: tf.Tensor, v: tf.Tensor, c: Native.AdamWConstants): Array<tf.Tensor> => {
  const g = c.clip === 1 ? g0 : tf.mul(g0, c.clip)
  const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1))
  const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.mul(g, g), 1 - c.beta2))
  const step = tf.div(tf.div(m1, c.bias1), tf.add(tf.sqrt(tf.div(v1, c.bias2)), c.eps))
  return [tf.sub(tf.mul(p, c.decay), tf.mul(step, c.lr)), m1, v1]
}

const bits = (ts: ReadonlyArray<tf.Tensor>): Array<Buffer> => ts.map((t) => Buffer.from(t.dataSync().buffer.slice(0)))

const nativeStep = (x: ReturnType<typeof tensorsOf>, c: Native.AdamWConstants): Array<Buffer> => bits(Wasm.adamW(x.p, x.g, x.m, x.v, c).flat())

test("the fused AdamW step gives the bits of the wasm composition", { skip }, () => {
  fc.assert(fc.property(problem, (pr) => {
    tf.tidy(() => {
      const x = tensorsOf(pr), c = constantsOf(pr)
      const want = bits(x.p.flatMap((p, i) => reference(p, x.g[i]!, x.m[i]!, x.v[i]!, c)))
      assert.deepEqual(nativeStep(x, c), want)
    })
  }), { numRuns: 25, seed: 5 })
})

test("the sum of squares is Σ g² in double precision", { skip }, () => {
  fc.assert(fc.property(problem, (pr) => {
    tf.tidy(() => {
      const { g } = tensorsOf(pr)
      let want = 0
      for (const t of g) for (const x of t.dataSync()) want += x * x
      const got = Wasm.sumOfSquares(g)
      assert.ok(Math.abs(got - want) <= 1e-12 * want, `native ${got} vs ${want}`)
    })
  }), { numRuns: 25, seed: 6 })
})

test("a non-finite gradient gives a non-finite sum of squares", { skip }, () => {
  tf.tidy(() => {
    assert.ok(Number.isNaN(Wasm.sumOfSquares([tf.ones([40_000]), tf.tensor1d([1, NaN])])))
    assert.equal(Wasm.sumOfSquares([tf.tensor1d([Infinity])]), Infinity)
  })
})

const large: Problem = { sizes: [1, 70_001, 33, 16_384, 200_000], seed: 9, clip: 0.37, t: 3, lr: 1e-3, wd: 0.01 }

test("both kernels give the same bits on 1 and 2 threads", { skip }, () => {
  tf.tidy(() => {
    const x = tensorsOf(large), c = constantsOf(large)
    const run = () => ({ sum: Wasm.sumOfSquares(x.g), step: nativeStep(x, c) })
    Native.configure({ threads: 1 })
    const one = run()
    Native.configure({ threads: 2 })
    assert.deepEqual(run(), one)
  })
})

test("a tensor outside the heap is refused", { skip }, () => {
  const heap = new ArrayBuffer(16)
  assert.throws(() => Native.sumSquares(heap, [{ offset: 8, size: 3 }]), /outside the heap/)
  const c = constantsOf(large)
  assert.throws(() => Native.adamw(heap, c, [{ p: 0, g: 4, m: 8, v: 12, pOut: 0, mOut: 8, vOut: 16, size: 1 }]), /outside the heap/)
})

// Last: forcing the portable loops cannot be undone in this process.
test("the portable loops give the same bits as the AVX2 ones", { skip }, () => {
  tf.tidy(() => {
    const x = tensorsOf(large), c = constantsOf(large)
    const before = { sum: Wasm.sumOfSquares(x.g), step: nativeStep(x, c) }
    assert.ok(Native.configure({ generic: true }).available)
    assert.deepEqual({ sum: Wasm.sumOfSquares(x.g), step: nativeStep(x, c) }, before)
  })
})
