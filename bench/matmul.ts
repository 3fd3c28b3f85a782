/**
 * npm run bench -- matmul [small|medium ...] [--threads 1|2] [--ms N] [--no-wasm]
 *
 * GFLOP/s of every matMul the papo-step update runs under the native kernels (forward and backward, one
 * layer's worth: the other layers repeat them), on the wasm backend's own kernels (`tf.matMul` with the same
 * transpose flags, or `tf.fused.matMul` with a bias: the product alone) and on the native kernels of
 * @papo/kernels as `@papo/model` calls them (with the residual add, GELU or GELU gradient in the store, `epilogue`).
 * One JSON line per shape: wall-clock GFLOP/s (`wasm_gflops`, `native_gflops`), `native_peak` = the native
 * rate as a fraction of the machine's fp32 peak (`--peak`, default 200 GFLOP/s: 2 cores × 2 FMA pipes ×
 * 8 lanes × 2 flops × ~3.1 GHz), and `native_core_gflops` = flops per CPU-second of this process (all its
 * threads): the rate per busy core, which a machine shared with other work does not inflate, and
 * `native_best_gflops` = the rate of the fastest single call (the least disturbed by other work). `--no-wasm`
 * skips the wasm kernels (their transposed products take seconds each) and prints `wasm_gflops: null`.
 *
 * Shapes (rows M = 80 sequences × 56 tokens = 4480; d, MLP hidden f): the patch embedding (2560 × 49 → d),
 * the fused qkv product (d → 3d), the attention output (d → d, + residual), the MLP's fc (d → f, + GELU) and
 * proj (f → d, + residual), their input gradients dy·Wᵀ (fc's input gradient with the GELU gradient) and their
 * weight gradients xᵀ·dy. The attention's own products run inside the fused attention kernel (no matMuls).
 */
import * as tf from "@tensorflow/tfjs"
import "@tensorflow/tfjs-backend-wasm"
import { Native, Wasm } from "@papo/kernels"
import { args, flag, names } from "./lib/args.js"

const configs = { small: { d: 128, f: 512 }, medium: { d: 256, f: 1024 } } as const
const threads = flag("--threads", 2)
const minMs = flag("--ms", 300)
const peak = flag("--peak", 200)
const withWasm = !args.includes("--no-wasm")
if (threads !== 1 && threads !== 2) throw new Error(`--threads must be 1 or 2, got ${threads}`)

interface Shape {
  readonly op: string
  readonly batch: number
  readonly m: number
  readonly n: number
  readonly k: number
  readonly transposeA: boolean
  readonly transposeB: boolean
  readonly bias: boolean
  readonly epilogue?: "add" | "gelu" | "geluGrad"
}

const shapesOf = (c: { d: number; f: number }): Array<Shape> => {
  const M = 4480
  const s = (op: string, m: number, n: number, k: number, transposeA = false, transposeB = false, bias = false, epilogue?: Shape["epilogue"]): Shape =>
    ({ op, batch: 1, m, n, k, transposeA, transposeB, bias, ...(epilogue ? { epilogue } : {}) })
  return [
    s("patch x·W+b", 2560, c.d, 49, false, false, true),
    s("qkv x·W+b", M, 3 * c.d, c.d, false, false, true),
    s("attn-out x·W+b+x0", M, c.d, c.d, false, false, true, "add"),
    s("fc gelu(x·W+b)", M, c.f, c.d, false, false, true, "gelu"),
    s("proj x·W+b+x0", M, c.d, c.f, false, false, true, "add"),
    s("qkv dy·Wᵀ", M, c.d, 3 * c.d, false, true),
    s("attn-out dy·Wᵀ", M, c.d, c.d, false, true),
    s("fc dy·Wᵀ", M, c.d, c.f, false, true),
    s("proj gelu'·(dy·Wᵀ)", M, c.f, c.d, false, true, false, "geluGrad"),
    s("qkv xᵀ·dy", c.d, 3 * c.d, M, true, false),
    s("attn-out xᵀ·dy", c.d, c.d, M, true, false),
    s("fc xᵀ·dy", c.d, c.f, M, true, false),
    s("proj xᵀ·dy", c.f, c.d, M, true, false)
  ]
}

const rate = (sh: Shape): { readonly wall: number; readonly best: number; readonly core: number } => {
  const a = tf.randomNormal(sh.batch > 1 ? [sh.batch, ...(sh.transposeA ? [sh.k, sh.m] : [sh.m, sh.k])] : sh.transposeA ? [sh.k, sh.m] : [sh.m, sh.k])
  const b = tf.randomNormal(sh.batch > 1 ? [sh.batch, ...(sh.transposeB ? [sh.n, sh.k] : [sh.k, sh.n])] : sh.transposeB ? [sh.n, sh.k] : [sh.k, sh.n])
  const bias = sh.bias ? tf.randomNormal([sh.n]) : null
  const other = tf.randomNormal([sh.m, sh.n]) // the residual, or the GELU's input
  const product = (): tf.Tensor | Array<tf.Tensor> => {
    if (Wasm.isInstalled() && sh.epilogue === "add") return Wasm.matMulAdd(a, b, bias, other, sh.transposeA, sh.transposeB)
    if (Wasm.isInstalled() && sh.epilogue === "gelu") return Wasm.matMulGelu(a, b, bias, true) // h and gelu(h), as under a tape
    if (Wasm.isInstalled() && sh.epilogue === "geluGrad") return Wasm.matMulGeluGrad(a, b, other, sh.transposeA, sh.transposeB)
    return bias
      ? tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, transposeA: sh.transposeA, transposeB: sh.transposeB })
      : tf.matMul(a, b, sh.transposeA, sh.transposeB)
  }
  const once = (): void => {
    tf.dispose(product()) // the wasm backend runs kernels synchronously: the product is done when the call returns
  }
  once()
  let reps = 0
  let fastest = Infinity
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  while (performance.now() - t0 < minMs || reps < 3) {
    const t = performance.now()
    once()
    fastest = Math.min(fastest, performance.now() - t)
    reps++
  }
  const ms = (performance.now() - t0) / reps
  const cpu = process.cpuUsage(c0)
  const cpuMs = (cpu.user + cpu.system) / 1000 / reps
  tf.dispose([a, b, other, ...(bias ? [bias] : [])])
  const flops = 2 * sh.batch * sh.m * sh.n * sh.k
  return { wall: flops / (ms * 1e6), best: flops / (fastest * 1e6), core: flops / (cpuMs * 1e6) }
}

await tf.setBackend("wasm")
await tf.ready()
const todo = (names.length > 0 ? names : (["small", "medium"] as const)).flatMap((config) => shapesOf(configs[config]).map((shape) => ({ config, shape })))
const wasm = todo.map(({ shape }) => (withWasm ? rate(shape) : null))
const status = Wasm.install()
if (!status.available) {
  console.error(`native kernels unavailable (${status.reason}): printing wasm rates only`)
} else {
  Native.configure({ threads })
}
todo.forEach(({ config, shape }, i) => {
  const native = status.available ? rate(shape) : null
  console.log(
    JSON.stringify({
      config,
      ...shape,
      threads,
      wasm_gflops: wasm[i] ? +wasm[i].wall.toFixed(1) : null,
      native_gflops: native === null ? null : +native.wall.toFixed(1),
      native_peak: native === null ? null : +(native.wall / peak).toFixed(3),
      native_core_gflops: native === null ? null : +native.core.toFixed(1),
      native_best_gflops: native === null ? null : +native.best.toFixed(1)
    })
  )
})
