// The portable micro-kernel (what a CPU without AVX2/FMA runs), forced in this process only.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { agree, cases, setup } from "./agreement.js"

const original = await setup()
const native = original.status.available
const skip = !native && `native kernels off: ${original.status.available ? "" : original.status.reason}`

test("the row kernels give the same bits with the portable exp as with the AVX2 one", { skip }, () => {
  const x = tf.randomUniform([301, 77], -90, 90, "float32", 3), g = tf.randomNormal([77], 1, 0.3, "float32", 4)
  // where exp clamps, overflows or meets a NaN (the AVX2 exp takes a NaN's 2ⁿ from the conversion's 0x80000000)
  const edges = [NaN, Infinity, -Infinity, 0, -0, 1e-40, 88.4, -88.4, 87.3, -87.3, 90, -90, 300, -300, 1e19, -1e19, 1e30, -1e30, 3.4e38, -3.4e38, 7]
  const special = tf.tensor2d(edges, [3, 7]), dy = tf.tensor2d(edges.map((_, i) => edges[(i * 5) % edges.length]!), [3, 7])
  const run = (): Array<Buffer> =>
    [Wasm.gelu(x), Wasm.geluGrad(x, x), Wasm.gelu(special), Wasm.geluGrad(special, dy), Wasm.geluGrad(dy, special), Wasm.layerNorm(x, g, g), ...Wasm.layerNormGrad(x, g, x)]
      .map((t) => Buffer.from(t.dataSync().buffer.slice(0)))
  const before = run()
  assert.ok(Native.configure({ generic: true }).available)
  assert.deepEqual(run(), before)
})

test("the generic micro-kernel agrees with the wasm kernel on random shapes", { skip }, () => {
  const s = Native.configure({ generic: true })
  assert.ok(s.available && s.isa === "generic")
  fc.assert(fc.property(cases, (c) => agree(original, c)), { numRuns: 30, seed: 11 })
  // depth chunks (K = 4480) and a transposed A packed whole (≥ 512 columns)
  agree(original, { m: 45, n: 530, k: 4480, transposeA: true, transposeB: false, outerA: [], outerB: [], bias: true, seed: 12 })
})

test("on the portable path too, the fused epilogues give the bits of the separate kernels (ragged tiles and rows)", { skip }, () => {
  const s = Native.configure({ generic: true })
  assert.ok(s.available && s.isa === "generic")
  for (const [m, n, k] of [[37, 77, 19], [200, 45, 130], [7, 16, 1]] as const) {
    tf.tidy(() => {
      const a = tf.randomUniform([m, k], -1, 1, "float32", m), w = tf.randomUniform([k, n], -1, 1, "float32", n)
      const bias = tf.randomUniform([n], -1, 1, "float32", k), x = tf.randomUniform([m, n], -4, 4, "float32", m + n)
      const h = tf.fused.matMul({ a: a as tf.Tensor2D, b: w as tf.Tensor2D, bias })
      const [kept, u] = Wasm.matMulGelu(a, w, bias, true)
      assert.deepEqual(Buffer.from(kept.dataSync().buffer), Buffer.from(h.dataSync().buffer), `${m}×${n}×${k}: the kept product`)
      assert.deepEqual(Buffer.from(u.dataSync().buffer), Buffer.from(Wasm.gelu(h).dataSync().buffer), `${m}×${n}×${k}: gelu`)
      const grad = Wasm.matMulGeluGrad(a, w, x, false, false)
      assert.deepEqual(Buffer.from(grad.dataSync().buffer), Buffer.from(Wasm.geluGrad(x, tf.matMul(a, w)).dataSync().buffer), `${m}×${n}×${k}: geluGrad`)
      const added = Wasm.matMulAdd(a, w, bias, x, false, false)
      assert.deepEqual(Buffer.from(added.dataSync().buffer), Buffer.from(tf.add(x, h).dataSync().buffer), `${m}×${n}×${k}: add`)
    })
  }
})
