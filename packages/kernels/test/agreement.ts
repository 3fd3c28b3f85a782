// Shared by the kernel tests: random matMul cases, and native-vs-wasm agreement checked against the
// original wasm BatchMatMul (kept from before Wasm.install() replaced it), on operands broadcast to full
// batches and with the bias added separately: the two cases where tfjs-backend-wasm 4.22 itself is wrong.
import assert from "node:assert/strict"
import * as tf from "@tensorflow/tfjs"
import "@tensorflow/tfjs-backend-wasm"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"

export interface Case {
  readonly m: number
  readonly n: number
  readonly k: number
  readonly transposeA: boolean
  readonly transposeB: boolean
  /** Outer dims of a and b (possibly broadcasting, possibly empty). */
  readonly outerA: ReadonlyArray<number>
  readonly outerB: ReadonlyArray<number>
  readonly bias: boolean
  readonly seed: number
}

const dim = fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 40 }), fc.integer({ min: 150, max: 300 }))
const outer = fc.constantFrom<[Array<number>, Array<number>]>([[], []], [[3], [3]], [[4], []], [[], [5]], [[1], [4]], [[2, 3], [3]], [[2, 1], [1, 3]], [[2, 3], [2, 3]])

/** Random cases: sizes 1, small odd and large (past the blocking), every transpose pair, broadcast batches, with and without bias. */
export const cases: fc.Arbitrary<Case> = fc.record({
  m: dim,
  n: dim,
  k: dim,
  transposeA: fc.boolean(),
  transposeB: fc.boolean(),
  outer,
  bias: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1e6 })
}).map(({ outer: [outerA, outerB], ...c }) => ({ ...c, outerA, outerB }))

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((x, y) => x * y, 1)

type KernelFunc = (args: { inputs: object; backend: unknown; attrs: object }) => tf.TensorInfo

/** Activates wasm and returns its original BatchMatMul and _FusedMatMul, then installs the native ones. */
export const setup = async (): Promise<{ readonly batchMatMul: KernelFunc; readonly fusedMatMul: KernelFunc; readonly status: Native.Status }> => {
  await tf.setBackend("wasm")
  await tf.ready()
  const batchMatMul = tf.getKernel(tf.BatchMatMul, "wasm")!.kernelFunc as unknown as KernelFunc
  const fusedMatMul = tf.getKernel(tf._FusedMatMul, "wasm")!.kernelFunc as unknown as KernelFunc
  return { batchMatMul, fusedMatMul, status: Wasm.install() }
}

const run = (f: KernelFunc, inputs: object, attrs: object): tf.Tensor => tf.engine().makeTensorFromTensorInfo(f({ inputs, backend: tf.backend(), attrs }))

/**
 * Checks tf.matMul / tf.fused.matMul (now native) against the original wasm kernel on one case, elementwise
 * within the fp32 dot-product bound of both: |native − wasm| ≤ 2·k·2⁻²⁴·Σ_p |a_ip||b_pj| + 1e-30.
 */
export const agree = (original: Awaited<ReturnType<typeof setup>>, c: Case): void => {
  tf.tidy(() => {
    const a = tf.randomUniform([...c.outerA, ...(c.transposeA ? [c.k, c.m] : [c.m, c.k])], -1, 1, "float32", c.seed)
    const b = tf.randomUniform([...c.outerB, ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])], -1, 1, "float32", c.seed + 1)
    const bias = c.bias ? tf.randomUniform([c.n], -1, 1, "float32", c.seed + 2) : undefined
    const attrs = { transposeA: c.transposeA, transposeB: c.transposeB, activation: "linear" }
    // tf.fused.matMul flattens the outer dims to one before its kernel, so it cannot take two-way broadcasts.
    const twoWay = sizeOf(c.outerA) > 1 && sizeOf(c.outerB) > 1 && sizeOf(c.outerA) !== sizeOf(c.outerB)
    const native = bias && !twoWay
      ? tf.fused.matMul({ a, b, bias, transposeA: c.transposeA, transposeB: c.transposeB })
      : tf.add(tf.matMul(a, b, c.transposeA, c.transposeB), bias ?? 0)
    // The wasm kernels take rank-3 operands with equal or unit batches, as tfjs's matMul op passes them.
    const outer = tf.broadcast_util.assertAndGetBroadcastShape([...c.outerA], [...c.outerB])
    const to3 = (x: tf.Tensor, o: ReadonlyArray<number>): tf.Tensor => tf.reshape(tf.broadcastTo(x, [...outer, ...x.shape.slice(o.length)]), [-1, ...x.shape.slice(o.length)])
    const a3 = to3(a, c.outerA), b3 = to3(b, c.outerB)
    // The reference adds the bias separately: wasm's own _FusedMatMul is wrong with a bias and a transpose flag.
    const product = run(original.batchMatMul, { a: a3, b: b3 }, attrs)
    const wasm = bias ? tf.add(product, bias) : product
    const scale = run(original.batchMatMul, { a: tf.abs(a3), b: tf.abs(b3) }, attrs)
    assert.deepEqual(native.shape, [...outer, c.m, c.n])
    const x = native.dataSync(), y = wasm.dataSync(), s = scale.dataSync()
    const eps = 2 ** -24
    for (let i = 0; i < x.length; i++) {
      const tol = 2 * c.k * eps * (s[i]! + (bias ? 1 : 0)) + 1e-30
      if (!(Math.abs(x[i]! - y[i]!) <= tol)) {
        assert.fail(`element ${i} of ${JSON.stringify(c)}: native ${x[i]} vs wasm ${y[i]} (tolerance ${tol})`)
      }
    }
  })
}
