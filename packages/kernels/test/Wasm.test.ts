import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { agree, cases, setup } from "./agreement.js"

const original = await setup()
const native = original.status.available
const skip = !native && `native kernels off: ${original.status.available ? "" : original.status.reason}`

test("PAPO_NATIVE=1 requires the addon; PAPO_NATIVE=0 keeps the wasm kernels", () => {
  if (process.env["PAPO_NATIVE"] === "1") assert.ok(native, `PAPO_NATIVE=1 but ${JSON.stringify(original.status)}`)
  if (process.env["PAPO_NATIVE"] === "0") assert.deepEqual(original.status, { available: false, reason: "disabled by PAPO_NATIVE=0" })
  assert.equal(Wasm.isInstalled(), native)
})

test("the installed kernels report their micro-kernel", { skip }, () => {
  const s = Native.status()
  assert.ok(s.available)
  assert.match(s.isa, /^(avx2-fma|generic)$/)
})

test("native matMul agrees with the wasm kernel on random shapes, transposes, broadcast batches and biases", { skip }, () => {
  fc.assert(fc.property(cases, (c) => agree(original, c)), { numRuns: 60, seed: 10 })
})

test("a product past every blocking size (K > 256, M > 168, ragged edges) agrees with wasm", { skip }, () => {
  for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    agree(original, { m: 517, n: 263, k: 601, transposeA, transposeB, outerA: [], outerB: [], bias: true, seed: 7 })
  }
})

test("results are bit-identical on one thread and two (work is split by output tiles only)", { skip }, () => {
  const shapes: Array<[Array<number>, Array<number>]> = [[[700, 300], [300, 90]], [[90, 300], [300, 700]], [[6, 70, 33], [6, 33, 50]]]
  for (const [sa, sb] of shapes) {
    const a = tf.randomNormal(sa, 0, 1, "float32", 1), b = tf.randomNormal(sb, 0, 1, "float32", 2)
    Native.configure({ threads: 1 })
    const one = tf.matMul(a, b).dataSync()
    Native.configure({ threads: 2 })
    const two = tf.matMul(a, b).dataSync()
    assert.deepEqual(Buffer.from(two.buffer), Buffer.from(one.buffer), `${sa} × ${sb}`)
    tf.dispose([a, b])
  }
})

test("fused activations go to the wasm kernel; biases with transposes and two-way batch broadcasts are right natively, unlike wasm's", { skip }, () => {
  const a = tf.tensor2d([[1, -2], [3, 4]]), eye = tf.tensor2d([[1, 0], [0, 1]])
  assert.deepEqual(Array.from(tf.fused.matMul({ a, b: eye, activation: "relu" }).dataSync()), [1, 0, 3, 4])
  // aᵀ·I + [10, 20] = [[11, 23], [8, 24]] (hand-checked); tfjs-backend-wasm's own _FusedMatMul gets this wrong.
  assert.deepEqual(Array.from(tf.fused.matMul({ a, b: eye, bias: tf.tensor1d([10, 20]), transposeA: true }).dataSync()), [11, 23, 8, 24])
  const wasmFused = original.fusedMatMul({ inputs: { a: tf.reshape(a, [1, 2, 2]), b: tf.reshape(eye, [1, 2, 2]), bias: tf.tensor1d([10, 20]) }, backend: tf.backend(), attrs: { transposeA: true, transposeB: false, activation: "linear" } })
  assert.notDeepEqual(Array.from(tf.engine().makeTensorFromTensorInfo(wasmFused).dataSync()), [11, 23, 8, 24])
  // [2, 1] × [1, 3] outer dims: out[i][j] = x[i] · y[j] for 1×1 matrices.
  const x = tf.tensor4d([2, 3], [2, 1, 1, 1]), y = tf.tensor4d([5, 7, 11], [1, 3, 1, 1])
  assert.deepEqual(Array.from(tf.matMul(x, y).dataSync()), [10, 14, 22, 15, 21, 33])
})

test("the gemm entry point computes a hand-checked product and refuses operands outside the heap", { skip }, () => {
  // [1 2; 3 4] · [5; 6] = [17; 39], plus bias 1.
  const heap = new Float32Array([1, 2, 3, 4, 5, 6, 1, 0, 0])
  const p = { batch: 1, m: 2, n: 1, k: 2, aOffset: 0, aBatch: 0, aRow: 2, aCol: 1, bOffset: 16, bBatch: 0, bRow: 1, bCol: 1, cOffset: 28, biasOffset: 24 }
  Native.gemm(heap.buffer, p)
  assert.deepEqual(Array.from(heap.subarray(7)), [18, 40])
  assert.throws(() => Native.gemm(heap.buffer, { ...p, cOffset: 32 }), /outside the heap/)
})
