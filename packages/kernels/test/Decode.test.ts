// Native.decodeLayer (one decode step of a transformer block in one call) against the tfjs kernels it replaces
// in @papo/model's decode step under Wasm.install (LayerNorm, fused matMuls with bias, Native.attend over the
// same cache, Add, GELU), bit for bit, on random shapes: one row or many, 1 to 4 heads, hd 1 / odd / 32, an
// MLP of odd width, the first cache position and the last; and the same bits on one thread and two.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const skip = !original.status.available && `native kernels off: ${original.status.available ? "" : original.status.reason}`

/** A decode step's shape (as `Native.decodeLayer` takes it) and a seed for its random operands. */
type Case = Pick<Native.DecodeLayerParams, "rows" | "heads" | "hd" | "dMlp" | "capacity" | "pos"> & { readonly seed: number }

const cases: fc.Arbitrary<Case> = fc
  .record({
    rows: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 90 })),
    heads: fc.integer({ min: 1, max: 4 }),
    hd: fc.constantFrom(1, 3, 32),
    dMlp: fc.constantFrom(1, 37, 512),
    capacity: fc.integer({ min: 1, max: 60 }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer({ min: 0, max: 1e6 })
  })
  .map(({ at, ...c }) => ({ ...c, pos: Math.min(c.capacity - 1, Math.floor(at * c.capacity)) }))

const names = ["ln1Gamma", "ln1Beta", "qkvWeight", "qkvBias", "projWeight", "projBias", "ln2Gamma", "ln2Beta", "fcWeight", "fcBias", "outWeight", "outBias"] as const

/** Random weights, input rows and a filled cache for a case. */
const inputs = (c: Case) => {
  const d = c.heads * c.hd
  const shapes: Record<(typeof names)[number], Array<number>> = {
    ln1Gamma: [d], ln1Beta: [d], qkvWeight: [d, 3 * d], qkvBias: [3 * d], projWeight: [d, d], projBias: [d],
    ln2Gamma: [d], ln2Beta: [d], fcWeight: [d, c.dMlp], fcBias: [c.dMlp], outWeight: [c.dMlp, d], outBias: [d]
  }
  const w = Object.fromEntries(names.map((n, i) => [n, tf.randomUniform(shapes[n], -0.5, 0.5, "float32", c.seed + i)])) as Record<(typeof names)[number], tf.Tensor>
  const x = tf.randomUniform([c.rows, d], -2, 2, "float32", c.seed + 20)
  const size = c.rows * d * c.capacity
  const k = tf.randomUniform([size], -1, 1, "float32", c.seed + 21).dataSync() as Float32Array
  const v = tf.randomUniform([size], -1, 1, "float32", c.seed + 22).dataSync() as Float32Array
  return { w, x, k, v }
}

/** The block as @papo/model's decode step ran it on the tfjs kernels (with Native.attend on the cache). */
const reference = (c: Case, w: Record<(typeof names)[number], tf.Tensor>, x: tf.Tensor, k: Float32Array, v: Float32Array): Float32Array => {
  const d = c.heads * c.hd
  const qkv = tf.tidy(() => tf.fused.matMul({ a: Wasm.layerNorm(x, w.ln1Gamma, w.ln1Beta) as tf.Tensor2D, b: w.qkvWeight as tf.Tensor2D, bias: w.qkvBias }))
  const att = new Float32Array(c.rows * d)
  Native.attend(qkv.dataSync() as Float32Array, k, v, att, c)
  qkv.dispose()
  return tf.tidy(() => {
    const x1 = tf.add(x, tf.fused.matMul({ a: tf.tensor2d(att, [c.rows, d]), b: w.projWeight as tf.Tensor2D, bias: w.projBias }))
    const u = Wasm.gelu(tf.fused.matMul({ a: Wasm.layerNorm(x1, w.ln2Gamma, w.ln2Beta) as tf.Tensor2D, b: w.fcWeight as tf.Tensor2D, bias: w.fcBias }))
    return tf.add(x1, tf.fused.matMul({ a: u as tf.Tensor2D, b: w.outWeight as tf.Tensor2D, bias: w.outBias })).dataSync() as Float32Array
  })
}

/** Native.decodeLayer on a copy of `x` and scratch on the heap; returns x after the step. */
const native = (c: Case, w: Record<(typeof names)[number], tf.Tensor>, x: tf.Tensor, k: Float32Array, v: Float32Array): Float32Array => {
  const d = c.heads * c.hd
  const buf = tf.tidy(() => tf.concat([tf.reshape(x, [-1]), tf.zeros([c.rows * (6 * d + c.dMlp)])]))
  const base = Wasm.address(buf), f = 4 * c.rows
  const weights = Object.fromEntries(names.map((n) => [n, Wasm.address(w[n])])) as unknown as Native.BlockWeights
  Native.decodeLayer(Wasm.heap(), k, v, { ...c, x: base, a: base + f * d, y: base + 2 * f * d, qkv: base + 3 * f * d, h: base + 6 * f * d, weights })
  const out = new Float32Array(Wasm.heap(), base, c.rows * d).slice()
  buf.dispose()
  return out
}

test("a native decode step of a block gives the tfjs kernels' bits, and stores the same keys and values", { skip }, () => {
  fc.assert(fc.property(cases, (c) => {
    const { w, x, k, v } = inputs(c)
    const k2 = k.slice(), v2 = v.slice()
    const want = reference(c, w, x, k, v)
    const got = native(c, w, x, k2, v2)
    tf.dispose([...Object.values(w), x])
    assert.deepEqual(k2, k)
    assert.deepEqual(v2, v)
    assert.deepEqual(got, want, JSON.stringify(c))
  }), { numRuns: 40, seed: 10 })
})

test("a native decode step is bit-identical on one thread and two, and refuses a full cache or a short heap", { skip }, () => {
  const c = { rows: 80, heads: 4, hd: 32, dMlp: 512, capacity: 56, pos: 50, seed: 3 }
  const { w, x, k, v } = inputs(c)
  const k2 = k.slice(), v2 = v.slice()
  Native.configure({ threads: 1 })
  const one = native(c, w, x, k, v)
  Native.configure({ threads: 2 })
  const two = native(c, w, x, k2, v2)
  assert.deepEqual(Buffer.from(two.buffer), Buffer.from(one.buffer))
  assert.throws(() => native({ ...c, pos: 56 }, w, x, k, v), /or full/)
  const weights = Object.fromEntries(names.map((n) => [n, Wasm.address(w[n])])) as unknown as Native.BlockWeights
  const end = Wasm.heap().byteLength
  assert.throws(() => Native.decodeLayer(Wasm.heap(), k, v, { ...c, x: end - 4, a: 0, y: 0, qkv: 0, h: 0, weights }), /operand 0 lies outside the heap/)
  tf.dispose([...Object.values(w), x])
})
