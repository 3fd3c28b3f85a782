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
  // A transposed A packed whole: row stride ≥ 1024 floats, or ≥ 512 columns of B to reuse it.
  agree(original, { m: 1025, n: 21, k: 300, transposeA: true, transposeB: false, outerA: [], outerB: [], bias: true, seed: 5 })
  agree(original, { m: 37, n: 520, k: 259, transposeA: true, transposeB: true, outerA: [], outerB: [], bias: false, seed: 6 })
})

test("a reduction deep enough to be cut into depth chunks (xᵀ·dy, K = 4480) agrees with wasm, every transpose pair", { skip }, () => {
  for (const [transposeA, transposeB] of [[true, false], [false, false], [true, true], [false, true]] as const) {
    agree(original, { m: 131, n: 77, k: 4480, transposeA, transposeB, outerA: [], outerB: [], bias: true, seed: 9 })
  }
  agree(original, { m: 1, n: 1, k: 2049, transposeA: true, transposeB: false, outerA: [], outerB: [], bias: false, seed: 3 })
})

test("results are bit-identical on one thread and two (work is split by output tiles, or by depth chunks fixed by the shape)", { skip }, () => {
  // [a shape, b shape, transposeA, transposeB]: row and column splits, a batch, and depth-chunked reductions
  // (K = 4480 with either transpose of A, K = 2053 not a multiple of the 256-deep slices, with a bias).
  const shapes: Array<[Array<number>, Array<number>, boolean, boolean]> = [
    [[700, 300], [300, 90], false, false],
    [[90, 300], [300, 700], false, false],
    [[6, 70, 33], [6, 33, 50], false, false],
    [[4480, 128], [4480, 128], true, false],
    [[4480, 1030], [4480, 250], true, false],
    [[130, 4480], [70, 4480], false, true],
    [[2053, 37], [2053, 11], true, false]
  ]
  for (const [sa, sb, transposeA, transposeB] of shapes) {
    const a = tf.randomNormal(sa, 0, 1, "float32", 1), b = tf.randomNormal(sb, 0, 1, "float32", 2)
    const bias = tf.randomNormal([transposeB ? sb[0]! : sb[sb.length - 1]!], 0, 1, "float32", 3)
    const product = (): Buffer => {
      const y = sa.length === 2 ? tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, transposeA, transposeB }) : tf.matMul(a, b, transposeA, transposeB)
      return Buffer.from(y.dataSync().buffer)
    }
    Native.configure({ threads: 1 })
    const one = product()
    Native.configure({ threads: 2 })
    assert.deepEqual(product(), one, `${sa} × ${sb}`)
    tf.dispose([a, b, bias])
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
