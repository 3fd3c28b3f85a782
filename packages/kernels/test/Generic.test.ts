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
  const run = (): Array<Buffer> => [Wasm.gelu(x), Wasm.geluGrad(x, x), Wasm.layerNorm(x, g, g), ...Wasm.layerNormGrad(x, g, x)].map((t) => Buffer.from(t.dataSync().buffer.slice(0)))
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
