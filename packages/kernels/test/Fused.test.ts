// The fused products (a residual add, a GELU or a GELU gradient in the SGEMM's store) and the native column
// sums, on random shapes (sizes 1, odd and large, past the blocking and the two-thread split; every transpose
// pair for the gradient product): the same bits as the separate native kernels they fuse, the wasm kernels'
// math within a stated tolerance, and the same bits on 1 and 2 threads.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const skip = !original.status.available && `native kernels off: ${original.status.available ? "" : original.status.reason}`

const size = fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 37 }), fc.integer({ min: 300, max: 700 }))
const shapes = fc.record({ m: size, n: size, k: size, transposeA: fc.boolean(), transposeB: fc.boolean(), seed: fc.integer({ min: 0, max: 1e6 }) })

type KernelFunc = Awaited<ReturnType<typeof setup>>["batchMatMul"]
const run = (f: KernelFunc, inputs: object, attrs: object): tf.Tensor =>
  tf.engine().makeTensorFromTensorInfo(f({ inputs, backend: tf.backend(), attrs }))

const same = (label: string, x: tf.Tensor, y: tf.Tensor): void => {
  assert.deepEqual(x.shape, y.shape, label)
  const a = x.dataSync(), b = y.dataSync()
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${label}: element ${i}: ${a[i]} vs ${b[i]}`)
}

/** |x − y| ≤ tol elementwise. */
const within = (label: string, x: tf.Tensor, y: tf.Tensor, tol: tf.Tensor): void => {
  const a = x.dataSync(), b = y.dataSync(), t = tol.dataSync()
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= t[i]!)) assert.fail(`${label}: element ${i}: ${a[i]} vs ${b[i]} (tolerance ${t[i]})`)
}

// The wasm math the fused kernels replace: wasm's own matMul (2-D, flags as tfjs passes them), Add, and the
// GELU composition of @papo/model's wasm path.
const A = 2 * Math.sqrt(2 / Math.PI) * 0.044715, B = 2 * Math.sqrt(2 / Math.PI)
const geluRef = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.mul(x, x), A), B))))
const wasmProduct = (a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): { value: tf.Tensor; bound: tf.Tensor } => {
  const attrs = { transposeA, transposeB }
  const value = tf.reshape(run(original.batchMatMul, { a: tf.expandDims(a, 0), b: tf.expandDims(b, 0) }, attrs), [-1, transposeB ? b.shape[0]! : b.shape[1]!])
  const scale = tf.reshape(run(original.batchMatMul, { a: tf.expandDims(tf.abs(a), 0), b: tf.expandDims(tf.abs(b), 0) }, attrs), value.shape)
  const k = transposeA ? a.shape[0]! : a.shape[1]!
  return { value, bound: tf.mul(scale, 2 * k * 2 ** -24) } // the fp32 dot-product bound of both products
}

const operands = (c: { m: number; n: number; k: number; transposeA: boolean; transposeB: boolean; seed: number }) => ({
  a: tf.randomUniform(c.transposeA ? [c.k, c.m] : [c.m, c.k], -1, 1, "float32", c.seed),
  b: tf.randomUniform(c.transposeB ? [c.n, c.k] : [c.k, c.n], -1, 1, "float32", c.seed + 1),
  bias: tf.randomUniform([c.n], -1, 1, "float32", c.seed + 2),
  other: tf.randomUniform([c.m, c.n], -3, 3, "float32", c.seed + 3)
})

test("a residual added in the product's store: the same bits as adding it after, and wasm's math", { skip }, () => {
  fc.assert(fc.property(shapes, (c) => {
    tf.tidy(() => {
      const { a, b, bias, other } = operands(c)
      const fused = Wasm.matMulAdd(a, b, bias, other, c.transposeA, c.transposeB)
      same("matMulAdd", fused, tf.add(other, tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, transposeA: c.transposeA, transposeB: c.transposeB })))
      same("matMulAdd, no bias", Wasm.matMulAdd(a, b, null, other, c.transposeA, c.transposeB), tf.add(tf.matMul(a, b, c.transposeA, c.transposeB), other))
      const { value, bound } = wasmProduct(a, b, c.transposeA, c.transposeB)
      within("matMulAdd vs wasm", fused, tf.add(tf.add(value, bias), other), tf.add(tf.mul(bound, 2), 1e-6))
    })
  }), { numRuns: 20, seed: 30 })
})

test("a GELU in the fc product's store: the same bits as the GELU kernel after it, and wasm's math", { skip }, () => {
  fc.assert(fc.property(shapes, (c) => {
    tf.tidy(() => {
      const { a, b, bias } = operands({ ...c, transposeA: false, transposeB: false })
      const h = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias })
      const [kept, u] = Wasm.matMulGelu(a, b, bias, true)
      same("matMulGelu keeps the product", kept, h)
      same("matMulGelu", u, Wasm.gelu(h))
      same("matMulGelu, product not kept", Wasm.matMulGelu(a, b, bias, false), Wasm.gelu(h))
      const { value, bound } = wasmProduct(a, b, false, false)
      // gelu' ≤ 1.13: the product's error carries over at most 1.13×; wasm's sigmoid adds its own rounding.
      const ref = geluRef(tf.add(value, bias))
      within("matMulGelu vs wasm", u, ref, tf.add(tf.mul(bound, 2.3), tf.mul(tf.add(tf.abs(ref), 1), 1e-5)))
    })
  }), { numRuns: 20, seed: 31 })
})

test("a GELU gradient in the input-gradient product's store: the same bits as the gradient kernel after it, and wasm's math", { skip }, () => {
  fc.assert(fc.property(shapes, (c) => {
    tf.tidy(() => {
      const { a, b, other: x } = operands(c)
      const fused = Wasm.matMulGeluGrad(a, b, x, c.transposeA, c.transposeB)
      const dy = tf.matMul(a, b, c.transposeA, c.transposeB)
      same("matMulGeluGrad", fused, Wasm.geluGrad(x, dy))
      const { value, bound } = wasmProduct(a, b, c.transposeA, c.transposeB)
      const ref = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(geluRef(v), value)))(x) // gelu'(x)·dy, tfjs's autodiff
      within("matMulGeluGrad vs wasm", fused, ref, tf.add(tf.mul(bound, 2.3), tf.mul(tf.add(tf.abs(ref), 1), 1e-5)))
    })
  }), { numRuns: 20, seed: 32 })
})

test("column sums: the float rounding of the double sums of 256-row blocks added in order, and wasm's sum within its rounding", { skip }, () => {
  fc.assert(fc.property(fc.record({ rows: fc.oneof(size, fc.integer({ min: 2000, max: 5000 })), cols: size, seed: fc.integer({ min: 0, max: 1e6 }) }), ({ rows, cols, seed }) => {
    tf.tidy(() => {
      const x = tf.randomNormal([rows, cols], 0.5, 2, "float32", seed)
      const sums = Wasm.columnSums(x).dataSync(), values = x.dataSync()
      const abs = tf.sum(tf.abs(x), 0).dataSync(), wasm = tf.sum(x, 0).dataSync()
      for (let j = 0; j < cols; j++) {
        let s = 0
        for (let b = 0; b < rows; b += 256) {
          let block = 0
          for (let i = b; i < Math.min(rows, b + 256); i++) block += values[i * cols + j]!
          s += block
        }
        assert.ok(Object.is(sums[j], Math.fround(s)), `column ${j}: ${sums[j]} vs ${Math.fround(s)}`)
        const tol = 2 * rows * 2 ** -24 * abs[j]!
        assert.ok(Math.abs(sums[j]! - wasm[j]!) <= tol, `column ${j}: ${sums[j]} vs wasm ${wasm[j]} (tolerance ${tol})`)
      }
    })
  }), { numRuns: 15, seed: 33 })
})

test("the fused products and column sums give the same bits on 1 and 2 threads", { skip }, () => {
  const cases = [[4480, 512, 128], [4480, 128, 512], [997, 389, 131]] as const
  const results = (threads: 1 | 2): Array<Float32Array> => {
    Native.configure({ threads })
    return cases.flatMap(([m, n, k], i) => tf.tidy(() => {
      const { a, b, bias, other } = operands({ m, n, k, transposeA: false, transposeB: i === 2, seed: 40 + i })
      const [h, u] = Wasm.matMulGelu(a, b.shape[0] === k ? b : tf.transpose(b), bias, true)
      return [Wasm.matMulAdd(a, b, bias, other, false, i === 2), h, u, Wasm.matMulGeluGrad(a, b, other, false, i === 2), Wasm.columnSums(other)]
        .map((t) => t.dataSync() as Float32Array)
    }))
  }
  const one = results(1), two = results(2)
  one.forEach((x, i) => assert.ok(x.every((v, j) => Object.is(v, two[i]![j])), `output ${i} differs between 1 and 2 threads`))
})
