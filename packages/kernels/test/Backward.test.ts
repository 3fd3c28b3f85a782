// The backward-pass helpers of the native install: the LayerNorm backward of a residual sublayer with its column
// sums (the same bits as the LayerNorm-gradient kernel, an add and three column sums, on random shapes: 1, odd and
// past the 256-row blocks and the two-thread split; 1 and 2 threads alike).
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const skip = !original.status.available && `native kernels off: ${original.status.available ? "" : original.status.reason}`

const same = (label: string, x: tf.Tensor, y: tf.Tensor): void => {
  assert.deepEqual(x.shape, y.shape, label)
  const a = x.dataSync(), b = y.dataSync()
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${label}: element ${i}: ${a[i]} vs ${b[i]}`)
}

const operands = (rows: number, cols: number, seed: number) => ({
  x: tf.randomNormal([rows, cols], 0.3, 2, "float32", seed),
  gamma: tf.randomNormal([cols], 1, 0.5, "float32", seed + 1),
  da: tf.randomNormal([rows, cols], 0, 1, "float32", seed + 2),
  dy: tf.randomNormal([rows, cols], 0, 1, "float32", seed + 3)
})

/** What the model ran before: the LayerNorm-gradient row kernel, tf.add, and three native column sums. */
const separate = (x: tf.Tensor, gamma: tf.Tensor, da: tf.Tensor, dy: tf.Tensor): Array<tf.Tensor> => {
  const [dxNorm, daXhat] = Wasm.layerNormGrad(x, gamma, da)
  return [tf.add(dxNorm, dy), Wasm.columnSums(daXhat), Wasm.columnSums(da), Wasm.columnSums(dy)]
}

const size = fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 37 }), fc.integer({ min: 250, max: 1100 }))

test("the LayerNorm backward of a residual sublayer: the same bits as the LayerNorm-gradient kernel, an add and three column sums", { skip }, () => {
  fc.assert(fc.property(fc.record({ rows: size, cols: size, seed: fc.integer({ min: 0, max: 1e6 }) }), ({ rows, cols, seed }) => {
    tf.tidy(() => {
      const { x, gamma, da, dy } = operands(rows, cols, seed)
      const fused = Wasm.layerNormResidualGrad(x, gamma, da, dy)
      const reference = separate(x, gamma, da, dy)
      ;["dx", "dgamma", "dbeta", "dySums"].forEach((label, i) => same(label, fused[i]!, reference[i]!))
    })
  }), { numRuns: 25, seed: 50 })
})

test("the LayerNorm backward of a residual sublayer gives the same bits on 1 and 2 threads", { skip }, () => {
  const results = (threads: 1 | 2): Array<Float32Array> => {
    Native.configure({ threads })
    return [[4480, 128], [1280, 128], [997, 131]].flatMap(([rows, cols], i) => tf.tidy(() => {
      const { x, gamma, da, dy } = operands(rows!, cols!, 60 + i)
      return Wasm.layerNormResidualGrad(x, gamma, da, dy).map((t) => t.dataSync() as Float32Array)
    }))
  }
  const one = results(1), two = results(2)
  one.forEach((x, i) => assert.ok(x.every((v, j) => Object.is(v, two[i]![j])), `output ${i} differs between 1 and 2 threads`))
})

test("the LayerNorm backward of a residual sublayer names the operand of a wrong shape", { skip }, () => {
  tf.tidy(() => {
    const { x, gamma, da } = operands(3, 4, 1)
    assert.throws(() => Wasm.layerNormResidualGrad(x, gamma, da, tf.zeros([3, 5])), /PapoLayerNormResidualGrad.*dy float32 \[3,5\]/)
    assert.throws(() => Wasm.layerNormResidualGrad(x, tf.ones([3]), da, da), /gamma float32 \[3\]/)
  })
})
