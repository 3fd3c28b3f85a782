/**
 * The native addon (`build/Release/papo_kernels.node`, built by node-gyp when the package is installed):
 * whether it loaded, with which micro-kernel, and its blocked SGEMM over an ArrayBuffer.
 *
 * Loading never throws: where the addon was not built (no compiler at install time), or `PAPO_NATIVE=0`
 * is set, {@link status} says why and callers stay on the wasm kernels. (`PAPO_NATIVE=1` makes the tests
 * require the addon, as CI does.)
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"

/**
 * The addon's state: loaded (micro-kernel name and thread count) or not (and why).
 *
 * @category models
 */
export type Status =
  | { readonly available: true; readonly isa: string; readonly threads: number }
  | { readonly available: false; readonly reason: string }

/**
 * One batched product `C[b] = op(A[b]) · op(B[b]) (+ bias)` over a heap, as byte offsets and element
 * strides: `op(A)(i, p) = A[aOffset/4 + b·aBatch + i·aRow + p·aCol]`, `op(B)(p, j)` likewise, `C` dense
 * `[batch, m, n]`. A batch stride of 0 broadcasts that operand; `biasOffset` −1 means no bias.
 *
 * @category models
 */
export interface GemmParams {
  readonly batch: number
  readonly m: number
  readonly n: number
  readonly k: number
  readonly aOffset: number
  readonly aBatch: number
  readonly aRow: number
  readonly aCol: number
  readonly bOffset: number
  readonly bBatch: number
  readonly bRow: number
  readonly bCol: number
  readonly cOffset: number
  readonly biasOffset: number
}

/**
 * The addon's row kernels (`native/rows.h`): each replaces a chain of wasm kernels with one pass over memory.
 *
 * @category models
 */
export type RowOp = "gelu" | "geluGrad" | "layerNorm" | "layerNormGrad"

const rowOps: Record<RowOp, number> = { gelu: 0, geluGrad: 1, layerNorm: 2, layerNormGrad: 3 }

/**
 * One row kernel over `rows × cols` dense floats on a heap: byte offsets of its inputs (up to 3) and outputs
 * (up to 2), in the order `native/rows.h` lists them.
 *
 * @category models
 */
export interface RowParams {
  readonly op: RowOp
  readonly rows: number
  readonly cols: number
  readonly inputs: ReadonlyArray<number>
  readonly outputs: ReadonlyArray<number>
}

interface Addon {
  readonly gemm: (heap: ArrayBuffer, params: Float64Array) => void
  readonly rows: (heap: ArrayBuffer, params: Float64Array) => void
  readonly attend: (qkv: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, params: Float64Array) => void
  readonly attention: (heap: ArrayBuffer, params: Float64Array) => void
  readonly configure: (options: { readonly threads?: number; readonly generic?: boolean }) => { isa: string; threads: number }
  readonly sumSquares: (heap: ArrayBuffer, table: Float64Array) => number
  readonly adamw: (heap: ArrayBuffer, table: Float64Array) => void
  readonly gemmEpilogue: (heap: ArrayBuffer, params: Float64Array) => void
  readonly columnSums: (heap: ArrayBuffer, params: Float64Array) => void
  readonly decoderCreate: (heap: ArrayBuffer, params: Float64Array) => unknown
  readonly decoderFill: (decoder: unknown, heap: ArrayBuffer, params: Float64Array) => void
  readonly decoderStep: (decoder: unknown, ids: Int32Array, offset: number, logits: Float32Array) => void
  readonly decoderFree: (decoder: unknown) => void
  readonly layerNormResidualGrad: (heap: ArrayBuffer, params: Float64Array) => void
}

const loadAddon = (): { readonly addon: Addon | null; readonly reason: string } => {
  if (process.env["PAPO_NATIVE"] === "0") return { addon: null, reason: "disabled by PAPO_NATIVE=0" }
  // The package root is two levels up from dist/src/Native.js, one from src/Native.ts (tests under tsx).
  const root = import.meta.url.includes("/dist/src/") ? "../../" : "../"
  try {
    return { addon: createRequire(import.meta.url)(`${root}build/Release/papo_kernels.node`) as Addon, reason: "" }
  } catch {
    return { addon: null, reason: "the @papo/kernels addon was not built (see packages/kernels/build.log)" }
  }
}

const loaded = loadAddon()
const params = new Float64Array(14)
const rowParams = new Float64Array(8)
const attendParams = new Float64Array(5)

/**
 * Whether the addon loaded, and its micro-kernel (`avx2-fma` or `generic`) and thread count.
 *
 * @example
 * const s = status()
 * s.available ? s.isa : s.reason // => "avx2-fma" (or why not)
 *
 * @category constructors
 */
export const status = (): Status => {
  if (loaded.addon === null) return { available: false, reason: loaded.reason }
  const { isa, threads } = loaded.addon.configure({})
  return { available: true, isa, threads }
}

/**
 * Sets the addon's thread count (1 or 2) and/or forces its portable micro-kernel (for tests of the
 * fallback). Results are bit-identical for every thread count. Returns the new status.
 *
 * @example
 * configure({ threads: 1 }) // => { available: true, isa: "avx2-fma", threads: 1 } (where built)
 *
 * @category constructors
 */
export const configure = (options: { readonly threads?: 1 | 2; readonly generic?: boolean }): Status => {
  if (loaded.addon === null) return { available: false, reason: loaded.reason }
  loaded.addon.configure(options)
  return status()
}

/**
 * Runs one batched SGEMM in place on `heap` (see {@link GemmParams}). Throws when the addon is not loaded
 * or an operand would reach outside the heap.
 *
 * @example
 * const heap = new Float32Array([1, 2, 3, 4, 0, 0])
 * gemm(heap.buffer, { batch: 1, m: 1, n: 1, k: 2, aOffset: 0, aBatch: 0, aRow: 2, aCol: 1, bOffset: 8, bBatch: 0, bRow: 1, bCol: 1, cOffset: 16, biasOffset: -1 })
 * heap[4] // => 11
 *
 * @category math
 */
export const gemm = (heap: ArrayBuffer, p: GemmParams): void => {
  if (loaded.addon === null) throw new Error(`@papo/kernels: native gemm unavailable (${loaded.reason})`)
  params[0] = p.batch, params[1] = p.m, params[2] = p.n, params[3] = p.k
  params[4] = p.aOffset, params[5] = p.aBatch, params[6] = p.aRow, params[7] = p.aCol
  params[8] = p.bOffset, params[9] = p.bBatch, params[10] = p.bRow, params[11] = p.bCol
  params[12] = p.cOffset, params[13] = p.biasOffset
  loaded.addon.gemm(heap, params)
}

/**
 * Runs one row kernel in place on `heap` (see {@link RowParams}), on the configured thread count. Throws
 * when the addon is not loaded or an operand would reach outside the heap.
 *
 * @example
 * const heap = new Float32Array([0, 20, 0, 0])
 * rows(heap.buffer, { op: "gelu", rows: 1, cols: 2, inputs: [0], outputs: [8] })
 * Array.from(heap.subarray(2)) // => [0, 20] (gelu(0) = 0; gelu(x) → x for large x)
 *
 * @category math
 */
export const rows = (heap: ArrayBuffer, p: RowParams): void => {
  if (loaded.addon === null) throw new Error(`@papo/kernels: native row kernels unavailable (${loaded.reason})`)
  rowParams[0] = rowOps[p.op], rowParams[1] = p.rows, rowParams[2] = p.cols
  for (let i = 0; i < 3; i++) rowParams[3 + i] = p.inputs[i] ?? -1
  for (let i = 0; i < 2; i++) rowParams[6 + i] = p.outputs[i] ?? -1
  loaded.addon.rows(heap, rowParams)
}

/**
 * The shape of one {@link attend} call: `rows` sequences of `heads` heads of `hd` values, a cache of
 * `capacity` positions, and the position `pos` the new token takes.
 *
 * @category models
 */
export interface AttendParams {
  readonly rows: number
  readonly heads: number
  readonly hd: number
  readonly capacity: number
  readonly pos: number
}

/**
 * One decode step of causal attention over a KV cache in plain arrays: stores the new key and value of each
 * (row, head) from `qkv [rows, 3d]` (q | k | v) at `pos` of `k`, `v` (`[rows·heads, capacity, hd]`), and
 * writes `softmax(q·kᵀ/√hd)·v` over positions 0…pos to `out [rows, d]` (double accumulation, both cores).
 *
 * @example
 * const k = new Float32Array(2), v = new Float32Array(2), out = new Float32Array(1)
 * attend(new Float32Array([1, 1, 3]), k, v, out, { rows: 1, heads: 1, hd: 1, capacity: 2, pos: 0 })
 * out[0] // => 3 (one position: its value)
 *
 * @category math
 */
export const attend = (qkv: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, p: AttendParams): void => {
  if (loaded.addon === null) throw new Error(`@papo/kernels: native attention unavailable (${loaded.reason})`)
  attendParams[0] = p.rows, attendParams[1] = p.heads, attendParams[2] = p.hd, attendParams[3] = p.capacity, attendParams[4] = p.pos
  loaded.addon.attend(qkv, k, v, out, attendParams)
}

/**
 * One fused causal attention call on a heap (`native/attention.h`): `n` sequences of `t` positions, `heads`
 * heads of `hd` values. `q`, `k`, `v` are byte offsets of strided row views `[n·t, ≥ heads·hd]` sharing the row
 * stride `ldIn` (in floats: a fused `[n·t, 3d]` q | k | v has `ldIn = 3d` and offsets 4·d apart); `out` is the
 * attention output (forward) or its gradient dO (backward), row stride `ldOut`. `probs` is the byte offset of the
 * probabilities `[n, heads, t, t]`, written by the forward when given and read by the backward. With `grads`,
 * the backward writes dq, dk, dv there (row stride `ld`).
 *
 * @category models
 */
export interface AttentionParams {
  readonly n: number
  readonly t: number
  readonly heads: number
  readonly hd: number
  readonly q: number
  readonly k: number
  readonly v: number
  readonly ldIn: number
  readonly out: number
  readonly ldOut: number
  readonly probs?: number
  readonly grads?: { readonly dq: number; readonly dk: number; readonly dv: number; readonly ld: number }
}

const attentionParams = new Float64Array(16)

/**
 * Causal attention `softmax(q·kᵀ/√hd)·v` per (sequence, head), or (with `grads`, from the forward's `probs`) its gradients, in place on
 * `heap` as one native kernel (see {@link AttentionParams}), split by whole (sequence, head) pairs over the
 * configured threads (bit-identical for any thread count). Throws when the addon is not loaded or an operand
 * would reach outside the heap.
 *
 * @example
 * const heap = new Float32Array([1, 2, 3, 0]) // one position: q = 1, k = 2, v = 3
 * attention(heap.buffer, { n: 1, t: 1, heads: 1, hd: 1, q: 0, k: 4, v: 8, ldIn: 3, out: 12, ldOut: 1 })
 * heap[3] // => 3 (one position: its value)
 *
 * @category math
 */
export const attention = (heap: ArrayBuffer, p: AttentionParams): void => {
  if (loaded.addon === null) throw new Error(`@papo/kernels: native attention unavailable (${loaded.reason})`)
  const g = p.grads
  attentionParams.set([g === undefined ? 0 : 1, p.n, p.t, p.heads, p.hd, p.q, p.k, p.v, p.ldIn, p.out, p.ldOut, g?.dq ?? -1, g?.dk ?? -1, g?.dv ?? -1, g?.ld ?? 0, p.probs ?? -1])
  loaded.addon.attention(heap, attentionParams)
}

// --- optimizer (native/optim.h) ---

/**
 * AdamW's per-step scalars, as `@papo/model`'s optimizer computes them in double precision; the kernel
 * rounds each to float once, as tfjs does with a scalar operand.
 *
 * @category models
 */
export interface AdamWConstants {
  /** The gradient's scale: `maxGradNorm / (‖g‖ + 1e-6)` when clipping, else 1. */
  readonly clip: number
  readonly beta1: number
  readonly beta2: number
  /** `1 − β1ᵗ` and `1 − β2ᵗ` for the t-th applied update. */
  readonly bias1: number
  readonly bias2: number
  readonly eps: number
  /** `1 − lr·weightDecay`. */
  readonly decay: number
  readonly lr: number
}

/**
 * One tensor of an AdamW step on a heap: byte offsets of the parameter, its gradient and moments, and of
 * where their new values go (which may be the same places), and the element count.
 *
 * @category models
 */
export interface AdamWTensor {
  readonly p: number
  readonly g: number
  readonly m: number
  readonly v: number
  readonly pOut: number
  readonly mOut: number
  readonly vOut: number
  readonly size: number
}

const requireAddon = (what: string): Addon => {
  if (loaded.addon === null) throw new Error(`@papo/kernels: native ${what} unavailable (${loaded.reason})`)
  return loaded.addon
}

/**
 * `Σ g²` over float tensors on a heap (byte offsets and element counts), accumulated in double precision in
 * fixed chunks added in a fixed order: the same bits for any thread count. Throws when the addon is not
 * loaded or a tensor lies outside the heap.
 *
 * @example
 * const heap = new Float32Array([3, 4, 12])
 * sumSquares(heap.buffer, [{ offset: 0, size: 2 }, { offset: 8, size: 1 }]) // => 169
 *
 * @category math
 */
export const sumSquares = (heap: ArrayBuffer, tensors: ReadonlyArray<{ readonly offset: number; readonly size: number }>): number => {
  const addon = requireAddon("sum of squares")
  const table = new Float64Array(1 + 2 * tensors.length)
  table[0] = tensors.length
  tensors.forEach((t, i) => {
    table[1 + 2 * i] = t.offset
    table[2 + 2 * i] = t.size
  })
  return addon.sumSquares(heap, table)
}

/**
 * One AdamW step over every given tensor in one call (both cores), elementwise as `native/optim.h` writes
 * it: `m' = m·β1 + g'·(1 − β1)`, `v' = v·β2 + g'²·(1 − β2)`, `p' = p·decay − (m'/bias1)/(√(v'/bias2) + ε)·lr`,
 * `g' = g·clip`, every operation rounded to float. Throws when the addon is not loaded or a tensor lies
 * outside the heap.
 *
 * @example
 * const heap = new Float32Array([1, 0.5, 0, 0])
 * const c = { clip: 1, beta1: 0.9, beta2: 0.999, bias1: 0.1, bias2: 0.001, eps: 0, decay: 1, lr: 0.1 }
 * adamw(heap.buffer, c, [{ p: 0, g: 4, m: 8, v: 12, pOut: 0, mOut: 8, vOut: 12, size: 1 }])
 * heap[0] // => ≈ 0.9 (the first step moves each weight by lr·sign(g))
 *
 * @category math
 */
export const adamw = (heap: ArrayBuffer, c: AdamWConstants, tensors: ReadonlyArray<AdamWTensor>): void => {
  const addon = requireAddon("AdamW")
  const table = new Float64Array(11 + 8 * tensors.length)
  table.set([tensors.length, c.clip, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.bias1, c.bias2, c.eps, c.decay, c.lr])
  tensors.forEach((t, i) => table.set([t.p, t.g, t.m, t.v, t.pOut, t.mOut, t.vOut, t.size], 11 + 8 * i))
  addon.adamw(heap, table)
}

// --- fused products (an epilogue in the product's store) and column sums ---

/**
 * The element-wise finish of a product `C = op(A)·op(B) (+ bias)` (`native/rows.h`'s `Epilogue`), computed on
 * each block of C while it is in cache, with the same operations (and bits) as the separate kernel:
 * `add`: `C + input` (a residual); `gelu`: `gelu(C)` into `output` (or into C when no output is given);
 * `geluGrad`: `geluGrad(x = input, dy = C)` into C.
 *
 * @category models
 */
export type Epilogue = "add" | "gelu" | "geluGrad"

const epilogues: Record<Epilogue, number> = { add: 1, gelu: 2, geluGrad: 3 }
const epilogueParams = new Float64Array(17)

/**
 * {@link gemm} of one matrix (`batch` 1) followed by an {@link Epilogue}: `input` and `output` are byte offsets
 * of dense `[m, n]` operands (−1: none; `add` and `geluGrad` need `input`).
 *
 * @example
 * const heap = new Float32Array([2, 3, 10, 0])
 * gemmEpilogue(heap.buffer, { batch: 1, m: 1, n: 1, k: 1, aOffset: 0, aBatch: 0, aRow: 1, aCol: 1, bOffset: 4, bBatch: 0, bRow: 1, bCol: 1, cOffset: 12, biasOffset: -1 }, { op: "add", input: 8, output: -1 })
 * heap[3] // => 16
 *
 * @category math
 */
export const gemmEpilogue = (heap: ArrayBuffer, p: GemmParams, e: { readonly op: Epilogue; readonly input: number; readonly output: number }): void => {
  const addon = requireAddon("fused product")
  epilogueParams.set([p.batch, p.m, p.n, p.k, p.aOffset, p.aBatch, p.aRow, p.aCol, p.bOffset, p.bBatch, p.bRow, p.bCol, p.cOffset, p.biasOffset, epilogues[e.op], e.input, e.output])
  addon.gemmEpilogue(heap, epilogueParams)
}

const columnParams = new Float64Array(4)

/**
 * Column sums `out[j] = Σ_i x[i, j]` of a dense `[rows, cols]` on a heap (byte offsets): blocks of 256 rows
 * summed in double in row order, the block sums added in order, rounded to float once; blocks shared between
 * the configured threads (the same bits for any thread count).
 *
 * @example
 * const heap = new Float32Array([1, 2, 3, 4, 0, 0])
 * columnSums(heap.buffer, { rows: 2, cols: 2, x: 0, out: 16 })
 * Array.from(heap.subarray(4)) // => [4, 6]
 *
 * @category math
 */
export const columnSums = (heap: ArrayBuffer, p: { readonly rows: number; readonly cols: number; readonly x: number; readonly out: number }): void => {
  const addon = requireAddon("column sums")
  columnParams.set([p.rows, p.cols, p.x, p.out])
  addon.columnSums(heap, columnParams)
}

// --- decode (native/attend.h) ---

/**
 * The byte offsets on a heap of one transformer block's weights (row-major `[in, out]`, as `@papo/model` names
 * them: `ln1.weight/bias`, `attn.qkv.weight/bias`, `attn.proj.weight/bias`, `ln2.weight/bias`,
 * `mlp.fc.weight/bias`, `mlp.proj.weight/bias`).
 *
 * @category models
 */
export interface BlockWeights {
  readonly ln1Gamma: number
  readonly ln1Beta: number
  readonly qkvWeight: number
  readonly qkvBias: number
  readonly projWeight: number
  readonly projBias: number
  readonly ln2Gamma: number
  readonly ln2Beta: number
  readonly fcWeight: number
  readonly fcBias: number
  readonly outWeight: number
  readonly outBias: number
}

/**
 * The shape of a {@link decoder}: `rows` sequences, `layers` blocks of `heads` heads of `hd` values (d = heads·hd)
 * and an MLP of `dMlp`, a vocabulary of `vocab` tokens, a table of `positions` text positions, and a KV cache of
 * `capacity` positions.
 *
 * @category models
 */
export interface DecoderShape {
  readonly rows: number
  readonly heads: number
  readonly hd: number
  readonly dMlp: number
  readonly layers: number
  readonly vocab: number
  readonly positions: number
  readonly capacity: number
}

/**
 * The byte offsets on a heap of a policy's tensors for a {@link decoder}: each block's ({@link BlockWeights}),
 * the final LayerNorm's γ and β, the head `[d, vocab]`, the token table `[vocab, d]` and the text positions
 * `[positions, d]`.
 *
 * @category models
 */
export interface DecoderWeights {
  readonly blocks: ReadonlyArray<BlockWeights>
  readonly lnFGamma: number
  readonly lnFBeta: number
  readonly head: number
  readonly tokenTable: number
  readonly textPositions: number
}

/**
 * A native decoder (see {@link decoder}). `fill` stores a layer's keys and values from a pass over `prompts`
 * sequences of `length` positions (byte offsets on `heap` and row strides in floats; prompt p for the `group`
 * rows p·group … p·group + group − 1) and sets the cache's length; `step` embeds `ids` (one per row) at text
 * position `offset`, runs every block and the head, and returns the logits `[rows, vocab]` row-major (the
 * cache one position longer after); `dispose` frees its memory.
 *
 * @category models
 */
export interface Decoder {
  readonly fill: (heap: ArrayBuffer, layer: number, kv: { readonly k: number; readonly kLd: number; readonly v: number; readonly vLd: number; readonly prompts: number; readonly length: number; readonly group: number }) => void
  readonly step: (ids: Int32Array, offset: number) => Float32Array
  readonly dispose: () => void
}

/**
 * A rollout's decoder, in native memory: copies of the weights, each product's weight packed once into the SGEMM's
 * panels (the packing every product would otherwise repeat at every step), the KV cache and the scratch. A step
 * is one native call and one job for the two threads: the same kernels on the same values as the model's tfjs
 * kernels under {@link Wasm.install} (per block: LayerNorm, the products with their bias, GELU and residual adds,
 * {@link attend} over the cache; then the final LayerNorm and the head product), so the same bits, for any thread
 * count. The weights are read at creation only (later changes to them are not seen). Throws when the addon is not
 * loaded, a tensor lies outside the heap, the cache is full, or an id or position is out of range.
 *
 * @example
 * const dec = decoder(Wasm.heap(), { rows: 80, heads: 4, hd: 32, dMlp: 512, layers: 4, vocab: 32, positions: 32, capacity: 56 }, weights)
 * dec.fill(Wasm.heap(), 0, { k: qkv + 4 * 128, kLd: 384, v: qkv + 8 * 128, vLd: 384, prompts: 80, length: 40, group: 1 }) // every layer
 * dec.step(ids, 8).length // => 80 * 32
 * dec.dispose()
 *
 * @category constructors
 */
export const decoder = (heap: ArrayBuffer, shape: DecoderShape, weights: DecoderWeights): Decoder => {
  const addon = requireAddon("decoder")
  const s = shape, w = weights
  const blocks = w.blocks.flatMap((b) => [
    b.ln1Gamma, b.ln1Beta, b.qkvWeight, b.qkvBias, b.projWeight, b.projBias, b.ln2Gamma, b.ln2Beta, b.fcWeight, b.fcBias, b.outWeight, b.outBias
  ])
  if (w.blocks.length !== s.layers) throw new Error(`@papo/kernels decoder: ${w.blocks.length} blocks of weights for ${s.layers} layers`)
  const handle = addon.decoderCreate(heap, Float64Array.from([
    s.rows, s.heads, s.hd, s.dMlp, s.layers, s.vocab, s.positions, s.capacity, ...blocks, w.lnFGamma, w.lnFBeta, w.head, w.tokenTable, w.textPositions
  ]))
  const fillParams = new Float64Array(8)
  return {
    fill: (heap, layer, kv) => {
      fillParams.set([layer, kv.k, kv.kLd, kv.v, kv.vLd, kv.prompts, kv.length, kv.group])
      addon.decoderFill(handle, heap, fillParams)
    },
    step: (ids, offset) => {
      const logits = new Float32Array(s.rows * s.vocab)
      addon.decoderStep(handle, ids, offset, logits)
      return logits
    },
    dispose: () => addon.decoderFree(handle)
  }
}

// --- the LayerNorm backward of a residual sublayer (native/rows.h's LayerNormResidualGrad) ---

/**
 * One {@link layerNormResidualGrad} call: `rows × cols` and the byte offsets on a heap of `x`, `da`, `dy`, `dx`
 * (`[rows, cols]`) and of `gamma`, `dgamma`, `dbeta`, `dySums` (`[cols]`).
 *
 * @category models
 */
export interface LayerNormResidualGradParams {
  readonly rows: number
  readonly cols: number
  readonly x: number
  readonly gamma: number
  readonly da: number
  readonly dy: number
  readonly dx: number
  readonly dgamma: number
  readonly dbeta: number
  readonly dySums: number
}

const layerNormResidualParams = new Float64Array(10)

/**
 * The backward of a pre-norm residual sublayer's LayerNorm in one pass, in place on `heap`: from `x`, `γ`, the
 * LayerNorm output's gradient `da` and the sublayer output's gradient `dy`, writes `dx = LN'(da) + dy` and the
 * column sums `dgamma = Σ da·x̂`, `dbeta = Σ da`, `dySums = Σ dy`: the bits of the `layerNormGrad` row kernel, an
 * add and three {@link columnSums} (same blocks, same order), for any thread count. Throws when the addon is not
 * loaded or an operand lies outside the heap.
 *
 * @example
 * const heap = new Float32Array([1, 3, 1, 1, 0, 0, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0]) // x, γ, da, dy, dx, dγ, dβ, Σdy
 * layerNormResidualGrad(heap.buffer, { rows: 1, cols: 2, x: 0, gamma: 8, da: 16, dy: 24, dx: 32, dgamma: 40, dbeta: 48, dySums: 56 })
 * Array.from(heap.subarray(8)) // => [2, 5, 0, 0, 0, 0, 2, 5] (da = 0: dx = dy)
 *
 * @category math
 */
export const layerNormResidualGrad = (heap: ArrayBuffer, p: LayerNormResidualGradParams): void => {
  const addon = requireAddon("LayerNorm backward")
  layerNormResidualParams.set([p.rows, p.cols, p.x, p.gamma, p.da, p.dy, p.dx, p.dgamma, p.dbeta, p.dySums])
  addon.layerNormResidualGrad(heap, layerNormResidualParams)
}
