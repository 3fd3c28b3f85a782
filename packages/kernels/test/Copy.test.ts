// The heap-copy Slice and SplitV against tfjs-backend-wasm's own kernels (kept from before
// Wasm.install() replaced them) on random float32 and int32 tensors of rank 1 to 4: the same bits.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import "@tensorflow/tfjs-backend-wasm"
import fc from "fast-check"
import { Wasm } from "../src/index.js"

await tf.setBackend("wasm")
await tf.ready()
type KernelFunc = (args: { inputs: object; backend: unknown; attrs: object }) => tf.TensorInfo | Array<tf.TensorInfo>
const originalOf = (name: string): KernelFunc => tf.getKernel(name, "wasm")!.kernelFunc as unknown as KernelFunc
const original = { slice: originalOf(tf.Slice), splitV: originalOf(tf.SplitV) }
const status = Wasm.install()
const skip = !status.available && `native kernels off: ${status.available ? "" : status.reason}`

const run = (f: KernelFunc, inputs: object, attrs: object): Array<tf.Tensor> =>
  [f({ inputs, backend: tf.backend(), attrs })].flat().map((t) => tf.engine().makeTensorFromTensorInfo(t))

const same = (got: ReadonlyArray<tf.Tensor>, want: ReadonlyArray<tf.Tensor>): void => {
  assert.deepEqual(got.map((t) => t.shape), want.map((t) => t.shape))
  assert.deepEqual(got.map((t) => Buffer.from(t.dataSync().buffer.slice(0))), want.map((t) => Buffer.from(t.dataSync().buffer.slice(0))))
}

const shape = fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 9 })), { minLength: 1, maxLength: 4 })
const dtype = fc.constantFrom<"float32" | "int32">("float32", "int32")
const tensor = (s: ReadonlyArray<number>, d: "float32" | "int32", seed: number): tf.Tensor =>
  d === "int32" ? tf.randomUniformInt([...s], -1000, 1000, seed) : tf.randomNormal([...s], 0, 1, "float32", seed)

test("Slice copies the same box as the wasm kernel", { skip }, () => {
  const box = shape.chain((s) => fc.tuple(fc.constant(s), ...s.map((n) => fc.integer({ min: 0, max: n - 1 }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 0, max: n - b }))))))
  fc.assert(fc.property(box, dtype, fc.integer({ min: 0, max: 1e6 }), ([s, ...bs], d, seed) => {
    tf.tidy(() => {
      const x = tensor(s, d, seed)
      const attrs = { begin: bs.map(([b]) => b), size: bs.map(([, z]) => z) }
      same([tf.slice(x, attrs.begin, attrs.size)], run(original.slice, { x }, attrs))
    })
  }), { numRuns: 200, seed: 1 })
})

test("SplitV gives the same parts as the wasm kernel", { skip }, () => {
  const split = shape.chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }))).chain(([s, axis]) =>
    fc.tuple(fc.constant(s), fc.constant(axis), fc.array(fc.integer({ min: 0, max: s[axis]! }), { minLength: 1, maxLength: 3 })))
  fc.assert(fc.property(split, dtype, fc.integer({ min: 0, max: 1e6 }), ([s, axis, cuts], d, seed) => {
    tf.tidy(() => {
      const x = tensor(s, d, seed)
      const points = [...cuts].sort((a, b) => a - b)
      const sizes = [...points, s[axis]!].map((p, i) => p - (i === 0 ? 0 : points[i - 1]!))
      same(tf.split(x, sizes, axis), run(original.splitV, { x }, { numOrSizeSplits: sizes, axis }))
    })
  }), { numRuns: 200, seed: 2 })
})
