// The native row kernels (GELU, LayerNorm, causal softmax and their gradients) against the same math in
// wasm kernels, the gradients against tfjs's autodiff of that math, on random shapes: 1, odd and large
// sizes, one row and many. Tolerance: |native − wasm| ≤ 1e-5·(1 + |wasm|) elementwise (fp32 rounding of
// both, plus wasm's own sigmoid/exp approximations; the largest relative difference seen was 2.7e-6, in LayerNorm).
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const native = original.status.available
const skip = !native && `native kernels off: ${original.status.available ? "" : original.status.reason}`

const size = fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 37 }), fc.integer({ min: 200, max: 700 }))
const shapes = fc.record({ rows: size, cols: size, seed: fc.integer({ min: 0, max: 1e6 }) })

const close = (label: string, native: tf.Tensor, wasm: tf.Tensor): void => {
  assert.deepEqual(native.shape, wasm.shape, label)
  const x = native.dataSync(), y = wasm.dataSync()
  for (let i = 0; i < x.length; i++) {
    if (!(Math.abs(x[i]! - y[i]!) <= 1e-5 * (1 + Math.abs(y[i]!)))) assert.fail(`${label}: element ${i}: native ${x[i]} vs wasm ${y[i]}`)
  }
}

// The reference math, in wasm kernels (what @papo/model ran before the row kernels).
const A = 2 * Math.sqrt(2 / Math.PI) * 0.044715, B = 2 * Math.sqrt(2 / Math.PI)
const geluRef = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.mul(x, x), A), B))))
const layerNormRef = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => {
  const xc = tf.sub(x, tf.mean(x, -1, true))
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(tf.mean(tf.mul(xc, xc), -1, true), 1e-5))), gamma), beta)
}

test("GELU and its gradient agree with wasm's composition and tfjs's autodiff of it", { skip }, () => {
  fc.assert(fc.property(shapes, ({ rows, cols, seed }) => {
    tf.tidy(() => {
      const x = tf.randomUniform([rows, cols], -6, 6, "float32", seed), dy = tf.randomNormal([rows, cols], 0, 1, "float32", seed + 1)
      close("gelu", Wasm.gelu(x), geluRef(x))
      close("geluGrad", Wasm.geluGrad(x, dy), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(geluRef(v), dy)))(x))
    })
  }), { numRuns: 15, seed: 20 })
})

test("LayerNorm and its gradients agree with wasm's composition and tfjs's autodiff of it", { skip }, () => {
  fc.assert(fc.property(shapes, ({ rows, cols, seed }) => {
    tf.tidy(() => {
      const x = tf.add(tf.randomNormal([rows, cols], 0, 3, "float32", seed), tf.randomUniform([rows, 1], -5, 5, "float32", seed + 3))
      const gamma = tf.randomNormal([cols], 1, 0.5, "float32", seed + 1), beta = tf.randomNormal([cols], 0, 1, "float32", seed + 2)
      const dy = tf.randomNormal([rows, cols], 0, 1, "float32", seed + 4)
      close("layerNorm", Wasm.layerNorm(x, gamma, beta), layerNormRef(x, gamma, beta))
      const [dx, dyXhat] = Wasm.layerNormGrad(x, gamma, dy)
      const [rx, rg] = tf.grads((v: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(layerNormRef(v, g, beta), dy)))([x, gamma]) as [tf.Tensor, tf.Tensor]
      // dx sums rounding over a row: scale the tolerance by the row's gradient size.
      close("layerNormGrad dx", tf.div(dx, tf.add(1, tf.max(tf.abs(rx)))), tf.div(rx, tf.add(1, tf.max(tf.abs(rx)))))
      close("layerNormGrad γ", tf.div(tf.sum(dyXhat, 0), Math.sqrt(rows)), tf.div(rg, Math.sqrt(rows)))
    })
  }), { numRuns: 15, seed: 21 })
})

test("row kernels are bit-identical on one thread and two", { skip }, () => {
  const x = tf.randomNormal([701, 129], 0, 2, "float32", 5), dy = tf.randomNormal([701, 129], 0, 1, "float32", 6)
  const g = tf.randomNormal([129], 1, 0.3, "float32", 7), b = tf.randomNormal([129], 0, 1, "float32", 8)
  const all = (): Array<Buffer> =>
    [Wasm.gelu(x), Wasm.geluGrad(x, dy), Wasm.layerNorm(x, g, b), ...Wasm.layerNormGrad(x, g, dy)].map((t) => {
      const bytes = Buffer.from(t.dataSync().buffer.slice(0))
      t.dispose()
      return bytes
    })
  Native.configure({ threads: 1 })
  const one = all()
  Native.configure({ threads: 2 })
  assert.deepEqual(all(), one)
  tf.dispose([x, dy, g, b])
})

test("row kernels check their operands; GELU and LayerNorm keep hand-checked values", { skip }, () => {
  assert.throws(() => Wasm.layerNorm(tf.ones([2, 3]), tf.ones([2]), tf.zeros([3])), /PapoLayerNorm: gamma must be float32 of shape \[3\]/)
  assert.throws(() => Wasm.geluGrad(tf.ones([2, 3]), tf.ones([3, 2])), /PapoGeluGrad: dy/)
  // gelu(0) = 0, gelu(x) → x for large x; σ(0) = ½ so gelu'(0) = ½.
  assert.deepEqual(Array.from(Wasm.gelu(tf.tensor1d([0, 20])).dataSync()), [0, 20])
  assert.deepEqual(Array.from(Wasm.geluGrad(tf.tensor1d([0]), tf.tensor1d([2])).dataSync()), [1])
  // [1, 3]: mean 2, var 1 → x̂ = [−1, 1] (within ε = 1e-5).
  const ln = Wasm.layerNorm(tf.tensor2d([[1, 3]]), tf.tensor1d([2, 1]), tf.tensor1d([0, 5])).dataSync()
  assert.ok(Math.abs(ln[0]! + 2) < 1e-4 && Math.abs(ln[1]! - 6) < 1e-4, `${ln}`)
  // NaN propagates through the exp (a non-finite gradient must stay visible to the update's check).
  assert.ok(Number.isNaN(Wasm.gelu(tf.tensor1d([NaN])).dataSync()[0]))
})

test("Identity shares the buffer instead of copying it, and the clone outlives the original", { skip }, () => {
  const x = tf.tensor1d([1, 2, 3])
  const buffers = tf.memory().numDataBuffers
  const y = tf.clone(x)
  assert.equal(tf.memory().numDataBuffers, buffers)
  x.dispose()
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3])
  y.dispose()
})
