/**
 * Native matMul kernels for TensorFlow.js's wasm backend: `BatchMatMul` and `_FusedMatMul` (linear
 * activation) replaced by kernels that read the operands in place from the wasm heap and run the addon's
 * SGEMM on both cores. Every transpose combination and broadcast batch runs natively; other dtypes, fused
 * activations and bias shapes go to the original wasm kernels.
 *
 * The native kernels are also right where tfjs-backend-wasm 4.22's are not: its `_FusedMatMul` with a bias
 * and either transpose flag, and its `BatchMatMul` with outer dims that broadcast both ways, return wrong
 * values (see test/Wasm.test.ts).
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import * as Native from "./Native.js"

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  readonly wasm: { readonly HEAPU8: Uint8Array }
  readonly dataIdMap: { get(dataId: object): { readonly memoryOffset: number } }
  makeOutput(shape: Array<number>, dtype: tf.DataType): tf.TensorInfo
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo | undefined>; backend: unknown; attrs?: Record<string, unknown> }
type KernelFunc = (args: KernelArgs) => tf.TensorInfo

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1)

/**
 * `op(a) · op(b) (+ bias)` natively, or `null` where the inputs are outside what the native kernel covers
 * (non-float32, empty, a bias that is not one value per column).
 */
const nativeMatMul = (
  backend: WasmBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: tf.TensorInfo | undefined
): tf.TensorInfo | null => {
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return null
  const ra = a.shape.length, rb = b.shape.length
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!
  const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!
  if (k !== kb) {
    throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`)
  }
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2)
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB)
  const batch = sizeOf(outer), batchA = sizeOf(outerA), batchB = sizeOf(outerB)
  if (batch * m * n === 0) return null
  if (bias !== undefined && (bias.dtype !== "float32" || bias.shape.length !== 1 || bias.shape[0] !== n)) return null
  const out = backend.makeOutput([...outer, m, n], "float32")
  const offset = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId).memoryOffset
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer // after makeOutput, which may grow the heap
  const params = {
    batch, m, n, k,
    aOffset: offset(a), aBatch: batchA === 1 ? 0 : m * k, aRow: transposeA ? 1 : k, aCol: transposeA ? m : 1,
    bOffset: offset(b), bBatch: batchB === 1 ? 0 : k * n, bRow: transposeB ? 1 : n, bCol: transposeB ? k : 1,
    cOffset: offset(out),
    biasOffset: bias === undefined ? -1 : offset(bias)
  }
  if ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1)) {
    Native.gemm(heap, params)
  } else {
    // Outer dims that broadcast both ways ([2, 1] with [1, 3]): one product per output matrix.
    for (let i = 0; i < batch; i++) {
      Native.gemm(heap, {
        ...params,
        batch: 1,
        aOffset: params.aOffset + 4 * m * k * sourceIndex(i, outer, outerA),
        bOffset: params.bOffset + 4 * k * n * sourceIndex(i, outer, outerB),
        cOffset: params.cOffset + 4 * m * n * i
      })
    }
  }
  return out
}

/** The flat index, in a tensor of outer shape `shape`, of the element that broadcasts to flat index `i` of `outer`. */
const sourceIndex = (i: number, outer: ReadonlyArray<number>, shape: ReadonlyArray<number>): number => {
  let index = 0, stride = 1, rest = i
  for (let d = outer.length - 1; d >= 0; d--) {
    const coord = rest % outer[d]!
    rest = Math.floor(rest / outer[d]!)
    const size = shape[d - (outer.length - shape.length)] ?? 1
    if (size !== 1) index += coord * stride
    stride *= size
  }
  return index
}

const replace = (name: string, kernel: (args: KernelArgs, original: KernelFunc) => tf.TensorInfo): void => {
  const original = tf.getKernel(name, "wasm")
  if (original === undefined) throw new Error(`@papo/kernels: no wasm kernel "${name}" to replace (import @tensorflow/tfjs-backend-wasm first)`)
  const originalFunc = original.kernelFunc as unknown as KernelFunc
  tf.unregisterKernel(name, "wasm")
  tf.registerKernel({
    ...original,
    kernelFunc: ((args: KernelArgs) => kernel(args, originalFunc)) as unknown as tf.KernelFunc
  })
}

let installed = false

/**
 * Replaces the wasm backend's `BatchMatMul` and `_FusedMatMul` with the native ones, once per thread
 * (idempotent). Call after importing `@tensorflow/tfjs-backend-wasm`, before or after `tf.setBackend("wasm")`.
 * Returns the addon's status; when it is unavailable nothing is replaced.
 *
 * @example
 * await import("@tensorflow/tfjs-backend-wasm")
 * install().available // => true where the addon was built
 *
 * @category layers
 */
export const install = (): Native.Status => {
  const s = Native.status()
  if (!s.available || installed) return s
  replace(tf.BatchMatMul, (args, original) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo }
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean }
    return nativeMatMul(args.backend as WasmBackend, a, b, transposeA, transposeB, undefined) ?? original(args)
  })
  replace(tf._FusedMatMul, (args, original) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo>
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation: string }
    const eligible = activation === "linear" && preluActivationWeights === undefined
    return (eligible ? nativeMatMul(args.backend as WasmBackend, a!, b!, transposeA, transposeB, bias) : null) ?? original(args)
  })
  installed = true
  return s
}

/**
 * Whether {@link install} replaced the kernels in this thread (the model picks its attention layout by it).
 *
 * @example
 * isInstalled() // => false before install()
 *
 * @category layers
 */
export const isInstalled = (): boolean => installed
