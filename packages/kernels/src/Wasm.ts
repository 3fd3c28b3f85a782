/**
 * Native matMul kernels for TensorFlow.js's wasm backend: `BatchMatMul` and `_FusedMatMul` (linear
 * activation) replaced by kernels that read the operands in place from the wasm heap and run the addon's
 * SGEMM on both cores. Every transpose combination and broadcast batch runs natively; other dtypes, fused
 * activations and bias shapes go to the original wasm kernels. Also native: the row kernels of the
 * transformer block (GELU, LayerNorm, causal softmax and their gradients), each one pass over memory where
 * wasm runs a chain of five to nine kernels, and a copy-free `Identity`.
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
  incRef(dataId: object): void
}

/**
 * The backend's heap and a tensor's byte offset in it. Read it after `makeOutput`, which may grow the heap and
 * replace its buffer.
 */
const onHeap = (backend: WasmBackend): { readonly heap: ArrayBuffer; readonly offset: (t: tf.TensorInfo) => number } => ({
  heap: backend.wasm.HEAPU8.buffer as ArrayBuffer,
  offset: (t) => backend.dataIdMap.get(t.dataId).memoryOffset
})

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
  bias: tf.TensorInfo | undefined,
  finish?: Finish
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
  if (finish !== undefined) finish.second = finish.keep ? backend.makeOutput([m, n], "float32") : undefined
  const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
  const params = {
    batch, m, n, k,
    aOffset: offset(a), aBatch: batchA === 1 ? 0 : m * k, aRow: transposeA ? 1 : k, aCol: transposeA ? m : 1,
    bOffset: offset(b), bBatch: batchB === 1 ? 0 : k * n, bRow: transposeB ? 1 : n, bCol: transposeB ? k : 1,
    cOffset: offset(out),
    biasOffset: bias === undefined ? -1 : offset(bias)
  }
  if (finish !== undefined) {
    const input = finish.input === undefined ? -1 : offset(finish.input), second = finish.second === undefined ? -1 : offset(finish.second)
    Native.gemmEpilogue(heap, params, { op: finish.op, input, output: second })
  } else if ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1)) {
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

/**
 * A product's epilogue (`Native.Epilogue`) for {@link nativeMatMul}: its `[m, n]` operand, and whether the product
 * is kept and the epilogue's result goes to a second output (`second`, made by nativeMatMul).
 */
interface Finish {
  readonly op: Native.Epilogue
  readonly input: tf.TensorInfo | undefined
  readonly keep: boolean
  second?: tf.TensorInfo | undefined
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

/**
 * The row kernels registered as wasm kernels `Papo<Op>`: inputs named as in `native/rows.h`, every full-size
 * operand shaped like the first, γ and β one value per column; outputs shaped like the first input.
 */
const rowKernels: ReadonlyArray<{ readonly op: Native.RowOp; readonly inputs: ReadonlyArray<string>; readonly vectors: ReadonlyArray<string>; readonly outputs: number }> = [
  { op: "gelu", inputs: ["x"], vectors: [], outputs: 1 },
  { op: "geluGrad", inputs: ["x", "dy"], vectors: [], outputs: 1 },
  { op: "layerNorm", inputs: ["x", "gamma", "beta"], vectors: ["gamma", "beta"], outputs: 1 },
  { op: "layerNormGrad", inputs: ["x", "gamma", "dy"], vectors: ["gamma"], outputs: 2 }
]

const kernelName = (op: Native.RowOp): string => `Papo${op[0]!.toUpperCase()}${op.slice(1)}`

const registerRowKernel = ({ op, inputs, vectors, outputs }: (typeof rowKernels)[number]): void => {
  const name = kernelName(op)
  tf.registerKernel({
    kernelName: name,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const backend = args.backend as WasmBackend
      const ins = inputs.map((n) => args.inputs[n]!)
      const x = ins[0]!
      const cols = x.shape[x.shape.length - 1] ?? 1
      ins.forEach((t, i) => {
        const want = vectors.includes(inputs[i]!) ? [cols] : x.shape
        if (t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, want)) {
          throw new Error(`Error in ${name}: ${inputs[i]} must be float32 of shape [${want}], got ${t.dtype} [${t.shape}]`)
        }
      })
      const outs = Array.from({ length: outputs }, () => backend.makeOutput([...x.shape], "float32"))
      const size = sizeOf(x.shape)
      if (size > 0) {
        const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
        Native.rows(heap, { op, rows: size / cols, cols, inputs: ins.map(offset), outputs: outs.map(offset) })
      }
      return outputs === 1 ? outs[0]! : outs
    }) as unknown as tf.KernelFunc
  })
}

const runRow = (op: Native.RowOp, inputs: Record<string, tf.Tensor>): tf.Tensor | Array<tf.Tensor> =>
  tf.engine().runKernel(kernelName(op), inputs as tf.NamedTensorMap) as tf.Tensor | Array<tf.Tensor>

let installed = false

/**
 * Replaces the wasm backend's `BatchMatMul`, `_FusedMatMul`, `Identity` (a shared buffer instead of a copy),
 * `Slice` and `SplitV` (copies within the heap) with native ones and registers the kernels behind
 * {@link gelu}, {@link layerNorm}, {@link attention}, {@link adamW} and their gradients, once per thread
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
  // Identity (tf.clone, and every tensor the gradient tape saves) shares the buffer, as Reshape does, instead of
  // copying it: tensors are immutable, so a copy is never needed.
  replace(tf.Identity, (args, original) => {
    const { x } = args.inputs as { x: tf.TensorInfo }
    if (x.dtype === "string") return original(args)
    ;(args.backend as WasmBackend).incRef(x.dataId)
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }
  })
  rowKernels.forEach(registerRowKernel)
  registerAttentionKernels()
  registerAdamW()
  replaceCopies()
  registerFusedProducts()
  registerLayerNormResidualGrad()
  installed = true
  return s
}

/**
 * tanh-GELU `x·σ(2√(2/π)(x + 0.044715x³))` in one native pass (wasm: six kernels). Requires {@link install}; no
 * gradient (wrap it in `tf.customGrad` with {@link geluGrad}).
 *
 * @example
 * gelu(tf.tensor1d([0, 10])).dataSync() // => Float32Array [0, 10]
 *
 * @category math
 */
export const gelu = (x: tf.Tensor): tf.Tensor => runRow("gelu", { x }) as tf.Tensor

/**
 * The input gradient of {@link gelu}: `dy·(s + x·s(1 − s)·dz/dx)`, `s = σ(z)`, recomputed from `x`.
 *
 * @example
 * geluGrad(tf.tensor1d([0]), tf.tensor1d([1])).dataSync() // => Float32Array [0.5]
 *
 * @category math
 */
export const geluGrad = (x: tf.Tensor, dy: tf.Tensor): tf.Tensor => runRow("geluGrad", { x, dy }) as tf.Tensor

/**
 * LayerNorm over the last axis, ε = 1e-5: `(x − mean)/√(var + ε)·γ + β` in one native pass per row
 * (moments accumulated in double). Requires {@link install}.
 *
 * @example
 * layerNorm(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.zeros([2])).dataSync() // => ≈ Float32Array [-1, 1]
 *
 * @category math
 */
export const layerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => runRow("layerNorm", { x, gamma, beta }) as tf.Tensor

/**
 * The gradients of {@link layerNorm} from one pass per row: `[dx, dy·x̂]` (`γ`'s gradient is the column sum
 * of the second, `β`'s that of `dy`), `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))`, `g = dy·γ`.
 *
 * @example
 * layerNormGrad(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.tensor2d([[1, 1]]))[0].dataSync() // => Float32Array [0, 0]
 *
 * @category math
 */
export const layerNormGrad = (x: tf.Tensor, gamma: tf.Tensor, dy: tf.Tensor): [tf.Tensor, tf.Tensor] =>
  runRow("layerNormGrad", { x, gamma, dy }) as [tf.Tensor, tf.Tensor]

/**
 * Whether {@link install} replaced the kernels in this thread (the model picks its attention layout by it).
 *
 * @example
 * isInstalled() // => false before install()
 *
 * @category layers
 */
export const isInstalled = (): boolean => installed

/** `[N·T, 3d]` q | k | v checked against `seqLength` and `heads` for kernel `name`; returns N, T, H, hd. */
const attentionShape = (name: string, qkv: tf.TensorInfo, seqLength: number, heads: number): { n: number; t: number; h: number; hd: number } => {
  const [rows, cols] = qkv.shape as [number, number]
  if (qkv.dtype !== "float32" || qkv.shape.length !== 2 || !(heads >= 1) || cols % (3 * heads) !== 0 || seqLength < 1 || rows % seqLength !== 0) {
    throw new Error(`Error in ${name}: qkv must be float32 [N·T, 3·heads·hd] with T = ${seqLength}, heads = ${heads}; got ${qkv.dtype} [${qkv.shape}]`)
  }
  return { n: rows / seqLength, t: seqLength, h: heads, hd: cols / (3 * heads) }
}

/**
 * `PapoAttention` (`qkv` → `[N·T, d]`, and with attr `keepProbs` also the probabilities `[N, H, T, T]`) and
 * `PapoAttentionGrad` (`qkv`, `probs`, `dy` → dqkv `[N·T, 3d]`), attrs `seqLength`, `heads`.
 */
const registerAttentionKernels = (): void => {
  for (const backward of [false, true]) {
    const name = backward ? "PapoAttentionGrad" : "PapoAttention"
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: ((args: KernelArgs) => {
        const backend = args.backend as WasmBackend
        const { seqLength, heads, keepProbs } = args.attrs as { seqLength: number; heads: number; keepProbs?: boolean }
        const { qkv, probs, dy } = args.inputs
        const { n, t, h, hd } = attentionShape(name, qkv!, seqLength, heads)
        const d = h * hd
        const expect = (x: tf.TensorInfo | undefined, label: string, shape: Array<number>): void => {
          if (x === undefined || x.dtype !== "float32" || !tf.util.arraysEqual(x.shape, shape)) {
            throw new Error(`Error in ${name}: ${label} must be float32 of shape [${shape}], got ${x?.dtype} [${x?.shape}]`)
          }
        }
        if (backward) expect(probs, "probs", [n, h, t, t]), expect(dy, "dy", [n * t, d])
        const out = backend.makeOutput(backward ? [n * t, 3 * d] : [n * t, d], "float32")
        const kept = !backward && keepProbs === true ? backend.makeOutput([n, h, t, t], "float32") : undefined
        if (n * t * d > 0) {
          const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
          const q = offset(qkv!), o = offset(out)
          Native.attention(heap, {
            n, t, heads: h, hd, q, k: q + 4 * d, v: q + 8 * d, ldIn: 3 * d,
            ...(backward
              ? { out: offset(dy!), ldOut: d, probs: offset(probs!), grads: { dq: o, dk: o + 4 * d, dv: o + 8 * d, ld: 3 * d } }
              : { out: o, ldOut: d, ...(kept === undefined ? {} : { probs: offset(kept) }) })
          })
        }
        return kept === undefined ? out : [out, kept]
      }) as unknown as tf.KernelFunc
    })
  }
}

const runAttention = (inputs: tf.NamedTensorMap, attrs: { seqLength: number; heads: number; keepProbs?: boolean }, backward = false): tf.Tensor | Array<tf.Tensor> =>
  tf.engine().runKernel(backward ? "PapoAttentionGrad" : "PapoAttention", inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | Array<tf.Tensor>

/**
 * Causal self-attention over whole sequences in one native kernel: `qkv [N·T, 3d]` holds q | k | v of N
 * sequences of `seqLength` positions (rows (n, t)), each split into `heads` heads of `d / heads` columns; returns
 * `softmax(q·kᵀ/√hd)·v` per (sequence, head) under a causal mask, merged back to `[N·T, d]` (head h in columns
 * h·hd …). Replaces the head transposes, two batched matMuls and the causal softmax. Requires {@link install};
 * no gradient (see {@link attentionKeepingProbs} and {@link attentionGrad}).
 *
 * @example
 * attention(tf.tensor2d([[1, 1, 3]]), 1, 1).dataSync() // => Float32Array [3] (one position: its value)
 *
 * @category math
 */
export const attention = (qkv: tf.Tensor, seqLength: number, heads: number): tf.Tensor2D =>
  runAttention({ qkv }, { seqLength, heads }) as tf.Tensor2D

/**
 * {@link attention} that also returns its probabilities `[N, H, T, T]` (zero past the diagonal), which
 * {@link attentionGrad} needs.
 *
 * @example
 * attentionKeepingProbs(tf.tensor2d([[0, 0, 2], [0, 0, 4]]), 2, 1)[1].dataSync() // => Float32Array [1, 0, 0.5, 0.5]
 *
 * @category math
 */
export const attentionKeepingProbs = (qkv: tf.Tensor, seqLength: number, heads: number): [tf.Tensor2D, tf.Tensor4D] =>
  runAttention({ qkv }, { seqLength, heads, keepProbs: true }) as [tf.Tensor2D, tf.Tensor4D]

/**
 * The gradient of {@link attention} with respect to `qkv`, from the forward's probabilities and the output's
 * gradient `dy [N·T, d]`: dq | dk | dv as one `[N·T, 3d]`.
 *
 * @example
 * const qkv = tf.tensor2d([[1, 1, 3]])
 * attentionGrad(qkv, attentionKeepingProbs(qkv, 1, 1)[1], tf.tensor2d([[1]]), 1, 1).dataSync() // => Float32Array [0, 0, 1]
 *
 * @category math
 */
export const attentionGrad = (qkv: tf.Tensor, probs: tf.Tensor, dy: tf.Tensor, seqLength: number, heads: number): tf.Tensor2D =>
  runAttention({ qkv, probs, dy }, { seqLength, heads }, true) as tf.Tensor2D

// --- optimizer (native/optim.h) ---

const adamWKernel = "PapoAdamW"

const registerAdamW = (): void => {
  tf.registerKernel({
    kernelName: adamWKernel,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const backend = args.backend as WasmBackend
      const count = Object.keys(args.inputs).length / 4
      const groups = Array.from({ length: count }, (_, i) => ["p", "g", "m", "v"].map((k) => args.inputs[`${k}${i}`]!))
      groups.forEach((ts, i) => {
        if (ts.some((t) => t === undefined || t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, ts[0]!.shape))) {
          throw new Error(`Error in ${adamWKernel}: p${i}, g${i}, m${i}, v${i} must be float32 of one shape`)
        }
      })
      const outs = groups.map(([p]) => [0, 1, 2].map(() => backend.makeOutput([...p!.shape], "float32")))
      const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
      Native.adamw(heap, args.attrs as unknown as Native.AdamWConstants, groups.map(([p, g, m, v], i) => ({
        p: offset(p!), g: offset(g!), m: offset(m!), v: offset(v!),
        pOut: offset(outs[i]![0]!), mOut: offset(outs[i]![1]!), vOut: offset(outs[i]![2]!),
        size: sizeOf(p!.shape)
      })))
      return outs.flat()
    }) as unknown as tf.KernelFunc
  })
}

/**
 * `Σ g²` over float32 tensors of the wasm backend, natively in double precision (one pass, both cores, the
 * same bits for any thread count). Requires {@link install}.
 *
 * @example
 * sumOfSquares([tf.tensor1d([3, 4]), tf.tensor1d([12])]) // => 169
 *
 * @category math
 */
export const sumOfSquares = (tensors: ReadonlyArray<tf.Tensor>): number => {
  const backend = tf.backend() as unknown as WasmBackend
  const bad = tensors.find((t) => t.dtype !== "float32")
  if (bad !== undefined) throw new Error(`Error in sumOfSquares: tensors must be float32, got ${bad.dtype}`)
  const { heap, offset } = onHeap(backend)
  return Native.sumSquares(heap, tensors.map((t) => ({ offset: offset(t), size: t.size })))
}

/**
 * One AdamW step of many tensors in one native pass (see `Native.adamw` for the math): for each parameter
 * `params[i]` with gradient `grads[i]` and moments `m[i]`, `v[i]`, returns the new `[p, m, v]`, each a new
 * tensor (the caller assigns them and disposes them). Requires {@link install}.
 *
 * @example
 * const c = { clip: 1, beta1: 0.9, beta2: 0.999, bias1: 0.1, bias2: 0.001, eps: 0, decay: 1, lr: 0.1 }
 * const [[p]] = adamW([tf.tensor1d([1])], [tf.tensor1d([0.5])], [tf.zeros([1])], [tf.zeros([1])], c)
 * p.dataSync() // => ≈ Float32Array [0.9]
 *
 * @category math
 */
export const adamW = (
  params: ReadonlyArray<tf.Tensor>,
  grads: ReadonlyArray<tf.Tensor>,
  m: ReadonlyArray<tf.Tensor>,
  v: ReadonlyArray<tf.Tensor>,
  constants: Native.AdamWConstants
): Array<[tf.Tensor, tf.Tensor, tf.Tensor]> => {
  if (grads.length !== params.length || m.length !== params.length || v.length !== params.length) {
    throw new Error(`Error in adamW: ${params.length} params, ${grads.length} grads, ${m.length} and ${v.length} moments`)
  }
  const inputs: Record<string, tf.Tensor> = {}
  params.forEach((p, i) => {
    inputs[`p${i}`] = p, inputs[`g${i}`] = grads[i]!, inputs[`m${i}`] = m[i]!, inputs[`v${i}`] = v[i]!
  })
  const outs = tf.engine().runKernel(adamWKernel, inputs as tf.NamedTensorMap, constants as unknown as tf.NamedAttrMap) as Array<tf.Tensor>
  return params.map((_, i) => [outs[3 * i]!, outs[3 * i + 1]!, outs[3 * i + 2]!])
}

// --- copies: Slice and SplitV (exact copies within the heap) ---

const copyable = (dtype: tf.DataType): boolean => dtype === "float32" || dtype === "int32"

/**
 * Copies the box `begin … begin + size` of `x` into `out` (dense, row-major) with one `copyWithin` (a memmove
 * within the heap) per run of contiguous elements: the trailing dims the box spans whole merge into the run.
 */
const copyBox = (backend: WasmBackend, x: tf.TensorInfo, begin: ReadonlyArray<number>, size: ReadonlyArray<number>, out: tf.TensorInfo): void => {
  const rank = x.shape.length // ≥ 1
  if (sizeOf(size) === 0) return
  const strides = tf.util.computeStrides(x.shape)
  const stride = (d: number): number => (d === rank - 1 ? 1 : strides[d]!)
  // j: the innermost dim the box does not span whole; the run covers it and every dim after it.
  let j = rank - 1
  while (j > 0 && begin[j] === 0 && size[j] === x.shape[j]) j--
  const run = size[j]! * stride(j)
  const { heap: buffer, offset } = onHeap(backend) // after makeOutput, which may grow the heap
  const heap = new Int32Array(buffer) // 4-byte words: float32 and int32 alike (a copy moves bits)
  const src = offset(x) / 4
  let dst = offset(out) / 4
  const index = new Array<number>(j).fill(0) // position in the box's outer dims 0 … j − 1
  const runs = sizeOf(size.slice(0, j))
  for (let r = 0; r < runs; r++) {
    let from = src + begin[j]! * stride(j)
    for (let d = 0; d < j; d++) from += (begin[d]! + index[d]!) * stride(d)
    heap.copyWithin(dst, from, from + run)
    dst += run
    for (let d = j - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break
      index[d] = 0
    }
  }
}

const slice = (backend: WasmBackend, x: tf.TensorInfo, begin: ReadonlyArray<number>, size: ReadonlyArray<number>): tf.TensorInfo => {
  const out = backend.makeOutput([...size], x.dtype)
  copyBox(backend, x, begin, size, out)
  return out
}

/**
 * Replaces the wasm backend's `Slice` and `SplitV` of float32 and int32 tensors with copies within the heap.
 * tfjs-backend-wasm 4.22 runs them in JavaScript and first copies the whole input out of the heap
 * (`readSync`): slicing the 16 response positions out of `[160, 56, 128]` took 3.5 ms, now 0.1 ms. Same
 * values, bit for bit.
 */
const replaceCopies = (): void => {
  replace(tf.Slice, (args, original) => {
    const x = args.inputs["x"]!
    if (!copyable(x.dtype) || x.shape.length === 0) return original(args)
    const { begin, size } = args.attrs as { begin: number | Array<number>; size: number | Array<number> }
    const [b, z] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [Array<number>, Array<number>]
    tf.slice_util.assertParamsValid(x as tf.Tensor, b, z)
    return slice(args.backend as WasmBackend, x, b, z)
  })
  replace(tf.SplitV, (args, original) => {
    const x = args.inputs["x"]!
    if (!copyable(x.dtype)) return original(args)
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | Array<number>; axis: number }
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, a)
    const begin = new Array<number>(x.shape.length).fill(0)
    return sizes.map((s) => {
      const size = [...x.shape]
      size[a] = s
      const out = slice(args.backend as WasmBackend, x, begin, size)
      begin[a]! += s
      return out
    }) as unknown as tf.TensorInfo
  })
}

// --- fused products (an epilogue in the product's store) and column sums ---

const fusedKernel = "PapoMatMul", columnSumsKernel = "PapoColumnSums"

/**
 * `PapoMatMul` (`a`, `b` 2-D, optional `bias [n]` and `input [m, n]`; attrs `transposeA`, `transposeB`,
 * `epilogue`, `keep`) → the product finished by its epilogue, or with `keep` `[product, epilogue(product)]`;
 * `PapoColumnSums` (`x [M, N]`) → `[N]`.
 */
const registerFusedProducts = (): void => {
  tf.registerKernel({
    kernelName: fusedKernel,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const { a, b, bias, input } = args.inputs
      const { transposeA, transposeB, epilogue, keep } = args.attrs as { transposeA: boolean; transposeB: boolean; epilogue: Native.Epilogue; keep: boolean }
      const m = transposeA ? a!.shape[1]! : a!.shape[0]!, n = transposeB ? b!.shape[0]! : b!.shape[1]!
      if (a!.shape.length !== 2 || b!.shape.length !== 2 || (input !== undefined && (input.dtype !== "float32" || !tf.util.arraysEqual(input.shape, [m, n])))) {
        throw new Error(`Error in ${fusedKernel}: a [${a!.shape}] and b [${b!.shape}] must be 2-D and input [${input?.shape}] float32 [${m}, ${n}]`)
      }
      const finish: Finish = { op: epilogue, input, keep }
      const out = nativeMatMul(args.backend as WasmBackend, a!, b!, transposeA, transposeB, bias, finish)
      if (out === null) throw new Error(`Error in ${fusedKernel}: operands must be non-empty float32, the bias one value per column`)
      return finish.second === undefined ? out : [out, finish.second]
    }) as unknown as tf.KernelFunc
  })
  tf.registerKernel({
    kernelName: columnSumsKernel,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const backend = args.backend as WasmBackend
      const x = args.inputs["x"]!
      if (x.dtype !== "float32" || x.shape.length !== 2) throw new Error(`Error in ${columnSumsKernel}: x must be float32 [M, N], got ${x.dtype} [${x.shape}]`)
      const [rows, cols] = x.shape as [number, number]
      const out = backend.makeOutput([cols], "float32")
      const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
      if (cols > 0) Native.columnSums(heap, { rows, cols, x: offset(x), out: offset(out) })
      return out
    }) as unknown as tf.KernelFunc
  })
}

const runFused = (
  inputs: Record<string, tf.Tensor | null>,
  attrs: { transposeA: boolean; transposeB: boolean; epilogue: Native.Epilogue; keep: boolean }
): tf.Tensor2D | Array<tf.Tensor2D> => {
  const present = Object.fromEntries(Object.entries(inputs).filter(([, t]) => t !== null)) as tf.NamedTensorMap
  return tf.engine().runKernel(fusedKernel, present, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D | Array<tf.Tensor2D>
}

/**
 * `op(a)·op(b) (+ bias) + residual` as one native product, the residual added to each block of the result
 * while it is in cache (the same bits as `tf.add(residual, product)`). Requires {@link install}; no gradient.
 *
 * @example
 * matMulAdd(tf.tensor2d([[2]]), tf.tensor2d([[3]]), tf.tensor1d([1]), tf.tensor2d([[10]])).dataSync() // => Float32Array [17]
 *
 * @category math
 */
export const matMulAdd = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor | null, residual: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D =>
  runFused({ a, b, bias, input: residual }, { transposeA, transposeB, epilogue: "add", keep: false }) as tf.Tensor2D

/**
 * `a·w + bias` and its tanh-GELU from one native product (the GELU computed on each block of the product while
 * it is in cache, the same bits as {@link gelu} of it): `[h, gelu(h)]` with `keep` (a gradient needs `h`),
 * else `gelu(h)` alone. Requires {@link install}; no gradient.
 *
 * @example
 * matMulGelu(tf.tensor2d([[1]]), tf.tensor2d([[10]]), tf.tensor1d([0]), false).dataSync() // => Float32Array [10]
 *
 * @category math
 */
export const matMulGelu: {
  (a: tf.Tensor, w: tf.Tensor, bias: tf.Tensor | null, keep: true): [tf.Tensor2D, tf.Tensor2D]
  (a: tf.Tensor, w: tf.Tensor, bias: tf.Tensor | null, keep: false): tf.Tensor2D
} = ((a: tf.Tensor, w: tf.Tensor, bias: tf.Tensor | null, keep: boolean) =>
  runFused({ a, b: w, bias, input: null }, { transposeA: false, transposeB: false, epilogue: "gelu", keep })) as never

/**
 * The gradient through a GELU at `x` of a product that is the GELU output's gradient: `geluGrad(x, op(a)·op(b))`
 * as one native product (the same bits as {@link geluGrad} of it). Requires {@link install}; no gradient.
 *
 * @example
 * matMulGeluGrad(tf.tensor2d([[1]]), tf.tensor2d([[2]]), tf.tensor2d([[0]])).dataSync() // => Float32Array [1] (gelu'(0) = ½)
 *
 * @category math
 */
export const matMulGeluGrad = (a: tf.Tensor, b: tf.Tensor, x: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D =>
  runFused({ a, b, bias: null, input: x }, { transposeA, transposeB, epilogue: "geluGrad", keep: false }) as tf.Tensor2D

/**
 * Column sums of `x [M, N]` → `[N]` in one native pass (double accumulation over blocks of 256 rows, added in
 * order; the same bits for any thread count): the bias and LayerNorm-parameter gradients. Requires {@link install}.
 *
 * @example
 * columnSums(tf.tensor2d([[1, 2], [3, 4]])).dataSync() // => Float32Array [4, 6]
 *
 * @category math
 */
export const columnSums = (x: tf.Tensor): tf.Tensor1D => tf.engine().runKernel(columnSumsKernel, { x } as tf.NamedTensorMap) as tf.Tensor1D

// --- heap access (the model's native decode steps) ---

/**
 * The wasm backend's memory as an ArrayBuffer, for native calls that work in place on it (`Native.decoder`).
 * Growing the heap (any allocation) replaces the buffer: ask again after allocating. Requires {@link install}.
 *
 * @example
 * new Float32Array(heap(), address(t), t.size) // => t's values, in place
 *
 * @category layers
 */
export const heap = (): ArrayBuffer => onHeap(tf.backend() as unknown as WasmBackend).heap

/**
 * The byte offset of a float32 tensor's values in {@link heap} (fixed for the tensor's life). Requires {@link install}.
 *
 * @example
 * address(tf.zeros([4])) % 4 // => 0
 *
 * @category layers
 */
export const address = (t: tf.Tensor): number => {
  if (t.dtype !== "float32") throw new Error(`Error in address: the tensor must be float32, got ${t.dtype}`)
  return onHeap(tf.backend() as unknown as WasmBackend).offset(t)
}

// --- the LayerNorm backward of a residual sublayer (native/rows.h's LayerNormResidualGrad) ---

const layerNormResidualKernel = "PapoLayerNormResidualGrad"

/** `PapoLayerNormResidualGrad` (`x`, `gamma`, `da`, `dy`) → `[dx, dgamma, dbeta, dySums]` (see {@link layerNormResidualGrad}). */
const registerLayerNormResidualGrad = (): void => {
  tf.registerKernel({
    kernelName: layerNormResidualKernel,
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const backend = args.backend as WasmBackend
      const { x, gamma, da, dy } = args.inputs
      const [rows, cols] = x!.shape as [number, number]
      const wrong = ([["x", x], ["gamma", gamma], ["da", da], ["dy", dy]] as const).find(([n, t]) =>
        t === undefined || t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, n === "gamma" ? [cols] : [rows, cols]))
      if (x!.shape.length !== 2 || wrong !== undefined) {
        throw new Error(`Error in ${layerNormResidualKernel}: x, da, dy must be float32 [M, N] and gamma [N]; got x [${x!.shape}], ${wrong?.[0]} ${wrong?.[1]?.dtype} [${wrong?.[1]?.shape}]`)
      }
      const dx = backend.makeOutput([rows, cols], "float32")
      const sums = [0, 1, 2].map(() => backend.makeOutput([cols], "float32"))
      const { heap, offset } = onHeap(backend) // after makeOutput, which may grow the heap
      if (cols > 0) {
        Native.layerNormResidualGrad(heap, {
          rows, cols, x: offset(x!), gamma: offset(gamma!), da: offset(da!), dy: offset(dy!),
          dx: offset(dx), dgamma: offset(sums[0]!), dbeta: offset(sums[1]!), dySums: offset(sums[2]!)
        })
      }
      return [dx, ...sums]
    }) as unknown as tf.KernelFunc
  })
}

/**
 * The backward of a pre-norm residual sublayer `y = x + f(LN(x))` at its LayerNorm, in one native pass: from the
 * LayerNorm output's gradient `da` and `y`'s gradient `dy` (both `[M, N]`), `[dx, dγ, dβ, Σ dy]` with
 * `dx = layerNormGrad(x, γ, da)[0] + dy`, `dγ`, `dβ` the column sums of `da·x̂` and `da`, and `Σ dy` the column
 * sums of `dy` (the second product's bias gradient): the same bits as {@link layerNormGrad}, `tf.add` and three
 * {@link columnSums}. Requires {@link install}; no gradient.
 *
 * @example
 * const [dx, , , dySums] = layerNormResidualGrad(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.zeros([1, 2]), tf.tensor2d([[2, 5]]))
 * dx.dataSync() // => Float32Array [2, 5]
 *
 * @category math
 */
export const layerNormResidualGrad = (x: tf.Tensor, gamma: tf.Tensor, da: tf.Tensor, dy: tf.Tensor): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D] =>
  tf.engine().runKernel(layerNormResidualKernel, { x, gamma, da, dy } as tf.NamedTensorMap) as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D]
