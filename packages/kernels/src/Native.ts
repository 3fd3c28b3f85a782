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

interface Addon {
  readonly gemm: (heap: ArrayBuffer, params: Float64Array) => void
  readonly configure: (options: { readonly threads?: number; readonly generic?: boolean }) => { isa: string; threads: number }
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
