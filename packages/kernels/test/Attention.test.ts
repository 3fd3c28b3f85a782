// The fused causal attention (PapoAttention / PapoAttentionGrad) against the composition it replaces in
// @papo/model (q, k, v sliced from the fused qkv, q scaled by 1/√hd, heads transposed out, q·kᵀ, a softmax
// with −1e9 above the diagonal, ·v, heads merged back) and tfjs's autodiff of it, on random shapes: one
// sequence or many, T = 1, odd and 56, 1 to 8 heads, hd 1 / odd / 32. Tolerance: |fused − composition| ≤
// 1e-5·(1 + max |composition|) over each output (fp32 dot products of ≤ 56 terms accumulated in a different
// order on each side; the largest difference seen is given in the README).
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const skip = !original.status.available && `native kernels off: ${original.status.available ? "" : original.status.reason}`

interface Case {
  readonly n: number
  readonly t: number
  readonly heads: number
  readonly hd: number
  readonly seed: number
}

const cases: fc.Arbitrary<Case> = fc.record({
  n: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 12 })),
  t: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 37 }), fc.constant(56), fc.integer({ min: 57, max: 90 })),
  heads: fc.integer({ min: 1, max: 8 }),
  hd: fc.constantFrom(1, 3, 7, 32),
  seed: fc.integer({ min: 0, max: 1e6 })
})

/** The composition @papo/model ran before the fused kernel, on `qkv [N·T, 3d]`. */
const reference = (qkv: tf.Tensor, n: number, t: number, h: number): tf.Tensor => {
  const d = qkv.shape[1]! / 3, hd = d / h
  const heads = (x: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(x, [n, t, h, hd]), [0, 2, 1, 3]) // (N, H, T, hd)
  const part = (j: number): tf.Tensor => tf.slice(qkv, [0, j * d], [n * t, d])
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9)
  const att = tf.softmax(tf.add(tf.matMul(heads(tf.mul(part(0), 1 / Math.sqrt(hd))), heads(part(1)), false, true), mask)) // (N, H, T, T)
  return tf.reshape(tf.transpose(tf.matMul(att, heads(part(2))), [0, 2, 1, 3]), [n * t, d])
}

const inputs = ({ n, t, heads, hd, seed }: Case): { qkv: tf.Tensor; dy: tf.Tensor } => ({
  qkv: tf.randomNormal([n * t, 3 * heads * hd], 0, 1.5, "float32", seed),
  dy: tf.randomNormal([n * t, heads * hd], 0, 1, "float32", seed + 1)
})

/** The largest |x − y| over an output, relative to 1 + max |y|. */
const error = (x: tf.Tensor, y: tf.Tensor): number =>
  tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(x, y))), tf.add(1, tf.max(tf.abs(y)))).dataSync()[0]!)

const tolerance = 1e-5

const check = (c: Case): void => {
  tf.tidy(() => {
    const { qkv, dy } = inputs(c)
    const out = Wasm.attention(qkv, c.t, c.heads), ref = reference(qkv, c.n, c.t, c.heads)
    assert.deepEqual(out.shape, ref.shape)
    const e = error(out, ref)
    assert.ok(e <= tolerance, `forward ${JSON.stringify(c)}: relative error ${e}`)
    const [kept, probs] = Wasm.attentionKeepingProbs(qkv, c.t, c.heads)
    assert.deepEqual(Array.from(kept.dataSync()), Array.from(out.dataSync()))
    const grad = Wasm.attentionGrad(qkv, probs, dy, c.t, c.heads)
    const refGrad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(reference(x, c.n, c.t, c.heads), dy)))(qkv)
    assert.deepEqual(grad.shape, qkv.shape)
    // dq, dk and dv separately: each has its own scale.
    const d = c.heads * c.hd
    for (const [j, name] of ["dq", "dk", "dv"].entries()) {
      const part = (x: tf.Tensor): tf.Tensor => tf.slice(x, [0, j * d], [c.n * c.t, d])
      const ge = error(part(grad), part(refGrad))
      assert.ok(ge <= tolerance, `${name} ${JSON.stringify(c)}: relative error ${ge}`)
    }
  })
}

test("the fused attention and its gradient agree with the batched-matMul composition and tfjs's autodiff of it", { skip }, () => {
  fc.assert(fc.property(cases, check), { numRuns: 25, seed: 30 })
  // The model's shapes: small (4 heads) and medium (8 heads) of hd 32, T = 56.
  check({ n: 80, t: 56, heads: 4, hd: 32, seed: 1 })
  check({ n: 20, t: 56, heads: 8, hd: 32, seed: 2 })
})

test("the fused attention keeps hand-checked values and checks its operands", { skip }, () => {
  // T = 2, one head, hd = 1: q = k = 0 gives uniform weights over the visible positions: o = [v0, (v0 + v1)/2].
  const qkv = tf.tensor2d([[0, 0, 2], [0, 0, 4]])
  assert.deepEqual(Array.from(Wasm.attention(qkv, 2, 1).dataSync()), [2, 3])
  const [, probs] = Wasm.attentionKeepingProbs(qkv, 2, 1)
  assert.deepEqual(Array.from(probs.dataSync()), [1, 0, 0.5, 0.5])
  // dv: position 0 gets all of row 0's weight and half of row 1's: dv = [1 + ½, ½] for dy = [1, 1].
  assert.deepEqual(Array.from(Wasm.attentionGrad(qkv, probs, tf.ones([2, 1]), 2, 1).dataSync()).filter((_, i) => i % 3 === 2), [1.5, 0.5])
  assert.throws(() => Wasm.attention(tf.ones([6, 9]), 4, 1), /PapoAttention: qkv must be float32 \[N·T, 3·heads·hd\] with T = 4/)
  assert.throws(() => Wasm.attention(tf.ones([4, 9]), 4, 2), /heads = 2/)
  assert.throws(() => Wasm.attentionGrad(tf.ones([4, 6]), tf.ones([1, 1, 4, 4]), tf.ones([4, 3]), 4, 1), /PapoAttentionGrad: dy must be float32 of shape \[4,2\]/)
  assert.throws(() => Wasm.attentionGrad(tf.ones([4, 6]), tf.ones([1, 1, 4, 3]), tf.ones([4, 2]), 4, 1), /PapoAttentionGrad: probs must be float32 of shape \[1,1,4,4\]/)
})

const bits = (ts: ReadonlyArray<tf.Tensor>): Array<Buffer> => ts.map((t) => Buffer.from(t.dataSync().buffer.slice(0)))

test("the fused attention is bit-identical on one thread and two", { skip }, () => {
  const c = { n: 40, t: 56, heads: 4, hd: 32, seed: 3 }
  const { qkv, dy } = inputs(c)
  const run = (): Array<Buffer> =>
    tf.tidy(() => {
      const [out, probs] = Wasm.attentionKeepingProbs(qkv, c.t, c.heads)
      return bits([out, probs, Wasm.attentionGrad(qkv, probs, dy, c.t, c.heads)])
    })
  Native.configure({ threads: 1 })
  const one = run()
  Native.configure({ threads: 2 })
  assert.deepEqual(run(), one)
  tf.dispose([qkv, dy])
})

// Last: forcing the portable code is process-wide and cannot be undone.
test("the portable fused attention agrees with the AVX2/FMA one and with the composition", { skip }, () => {
  const c = { n: 6, t: 56, heads: 4, hd: 32, seed: 4 }
  const { qkv, dy } = inputs(c)
  const run = (): Array<tf.Tensor> => {
    const [out, probs] = Wasm.attentionKeepingProbs(qkv, c.t, c.heads)
    return [out, probs, Wasm.attentionGrad(qkv, probs, dy, c.t, c.heads)]
  }
  const simd = run()
  const s = Native.configure({ generic: true })
  assert.ok(s.available && s.isa === "generic")
  const generic = run()
  simd.forEach((x, i) => assert.ok(error(generic[i]!, x) <= tolerance, `output ${i}: ${error(generic[i]!, x)}`))
  fc.assert(fc.property(cases, check), { numRuns: 8, seed: 31 })
  tf.dispose([qkv, dy, ...simd, ...generic])
})
