/**
 * Tensor building blocks tuned for the wasm backend (see the package README, "Performance"):
 * only plain 2-D matMuls are fast there, and tfjs's own matMul gradient uses the slow transpose flags.
 * Under the native matMul kernels of @papo/kernels every transpose flag is as fast as none, and the
 * gradients below use the flags instead of explicit transposes.
 */
import * as tf from "@tensorflow/tfjs"
import { Wasm } from "@papo/kernels"

/**
 * True when the active backend's kernels are the native ones of @papo/kernels: matMuls (transpose flags cost
 * nothing), the row kernels behind {@link layerNorm}, the fused products and attention behind
 * {@link attentionResidual} and {@link mlpResidual}, and native column sums.
 */
export const nativeMatMuls = (): boolean => Wasm.isInstalled() && tf.getBackend() === "wasm"

/** `xᵀ @ dy`. */
const transposedTimes = (x: tf.Tensor, dy: tf.Tensor): tf.Tensor2D =>
  nativeMatMuls() ? tf.matMul(x as tf.Tensor2D, dy as tf.Tensor2D, true, false) : tf.matMul(tf.transpose(x as tf.Tensor2D), dy as tf.Tensor2D)

/**
 * Column sums of `[M, N]` → `[N]` (bias and LayerNorm-parameter gradients). wasm sums an outer axis by
 * transposing first; under the native kernels it is one native pass (it was a `1ᵀ·x` matMul, whose packing of
 * `x` cost 2–3× the pass).
 */
const columnSums = (x: tf.Tensor): tf.Tensor1D => (nativeMatMuls() ? Wasm.columnSums(x) : tf.sum(x, 0))

const addPositionsGrad: (x: tf.Tensor, pos: tf.Tensor) => tf.Tensor3D = tf.customGrad(((x: tf.Tensor3D, pos: tf.Tensor2D) => ({
  value: tf.add(x, pos),
  gradFunc: (dy: tf.Tensor3D) => [dy, tf.reshape(columnSums(tf.reshape(dy, [dy.shape[0], dy.shape[1] * dy.shape[2]])), pos.shape)]
})) as never) as never

/**
 * `x [N, L, d] + pos [L, d]` (position embeddings). Under the native kernels and a gradient tape, `pos`'s
 * gradient (the sum of `dy` over the batch) is one native column sum of `dy` as `[N, L·d]`: wasm's sum over
 * the outer axis transposes first (1.3 ms for `[80, 32, 128]`, a `1ᵀ·dy` matMul 0.3).
 */
export const addPositions = (x: tf.Tensor, pos: tf.Tensor): tf.Tensor3D =>
  nativeMatMuls() && recording() ? addPositionsGrad(x, pos) : (tf.add(x, pos) as tf.Tensor3D)

/** `dy @ wᵀ`: the input gradient of `x @ w`. */
const inputGrad = (dy: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D => (nativeMatMuls() ? tf.matMul(dy, w, false, true) : tf.matMul(dy, tf.transpose(w)))

/**
 * True while a gradient tape records (inside `tf.variableGrads` / `tf.grad`). Outside one, the ops below
 * skip their `tf.customGrad` wrappers (each wrapper costs an extra copy of its output).
 */
export const recording = (): boolean => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0

/** `tf.tidy` typed for results that hold plain values next to tensors. */
export const tidy = <T>(f: () => T): T => tf.tidy(f as () => tf.TensorContainer) as T

/**
 * `x @ w` for 2-D `x [M, K]`, `w [K, N]`, whose gradient transposes explicitly and runs two plain
 * 2-D matMuls (`dy @ wᵀ`, `xᵀ @ dy`) instead of tfjs's transposeA/transposeB kernels (5–10× slower on wasm).
 */
export const matMul2d = (x: tf.Tensor, w: tf.Tensor): tf.Tensor2D => (recording() ? matMul2dGrad(x, w) : tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D))

const matMul2dGrad: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor2D = tf.customGrad(((
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  save: tf.GradSaveFunc
) => {
  save([x, w])
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor2D, saved: Array<tf.Tensor>) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D]
      return [inputGrad(dy, sw), transposedTimes(sx, dy)]
    }
  }
}) as never) as never

/**
 * The weight gradient `xᵀ @ dy` of `x @ w`. On wasm, XNNPACK re-packs a matMul's right operand on every
 * call, and here that operand is an activation `[M, ·]`: make it the narrower of `x` and `dy` (measured on
 * wasm, M = 4480: 32 ms instead of 60 for 128 → 512, 34 instead of 44 for 512 → 128).
 */
const weightGrad = (x: tf.Tensor, dy: tf.Tensor): tf.Tensor =>
  !nativeMatMuls() && x.shape[1]! <= dy.shape[1]! ? tf.transpose(tf.matMul(tf.transpose(dy), x)) : transposedTimes(x, dy)

const linearWithBias: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor2D = tf.customGrad(((
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  save: tf.GradSaveFunc
) => {
  save([x, w])
  return {
    value: tf.fused.matMul({ a: x, b: w, bias: b }),
    gradFunc: (dy: tf.Tensor2D, saved: Array<tf.Tensor>) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D]
      return [inputGrad(dy, sw), weightGrad(sx, dy), columnSums(dy)]
    }
  }
}) as never) as never

/** `x @ w + b` on 2-D `x` (bias fused into the matMul; gradients as in {@link matMul2d}). */
export const dense = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor2D =>
  b === null
    ? matMul2d(x, w)
    : recording()
    ? linearWithBias(x, w, b)
    : (tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }) as tf.Tensor2D)

const GELU_C = Math.sqrt(2 / Math.PI)
const GELU_A = 2 * GELU_C * 0.044715
const GELU_B = 2 * GELU_C

/**
 * tanh-GELU, `0.5·x·(1 + tanh(u))` with `u = √(2/π)(x + 0.044715x³)`, written exactly as `x·σ(2u)`
 * (wasm's tanh and pow are slow; under the native kernels the MLP runs it in the fc product's store: {@link mlpResidual}), with a hand-written gradient
 * `σ(z) + x·σ(z)(1 − σ(z))·dz/dx`, `z = 2u`, `dz/dx = 2√(2/π)(1 + 3·0.044715x²)`.
 */
export const gelu = (x: tf.Tensor): tf.Tensor =>
  recording() ? geluGrad(x) : tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.mul(x, x), GELU_A), GELU_B))))

const geluGrad: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const x2 = tf.mul(x, x)
  const s = tf.sigmoid(tf.mul(x, tf.add(tf.mul(x2, GELU_A), GELU_B)))
  save([x, s])
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => {
      const [sx, ss] = saved as [tf.Tensor, tf.Tensor]
      const dz = tf.add(tf.mul(tf.mul(sx, sx), 3 * GELU_A), GELU_B) // dz/dx
      const ds = tf.mul(ss, tf.sub(1, ss)) // σ'(z)
      return tf.mul(dy, tf.add(ss, tf.mul(tf.mul(sx, ds), dz)))
    }
  }
}) as never) as never

/**
 * LayerNorm over the last axis of `[M, d]`, ε = 1e-5 (PyTorch's default), with the closed-form gradient
 * `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))`, `g = dy·γ` (a third of the ops of the autodiff one; under the
 * native kernels, one native pass per row each way).
 */
export const layerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor2D => {
  if (nativeMatMuls()) return (recording() ? layerNormNative(x, gamma, beta) : Wasm.layerNorm(x, gamma, beta)) as tf.Tensor2D
  if (recording()) return layerNormGrad(x, gamma, beta)
  const xc = tf.sub(x, tf.mean(x, -1, true))
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.mul(xc, xc), -1, true), 1e-5))
  return tf.add(tf.mul(tf.mul(xc, rstd), gamma), beta)
}

const layerNormGrad: (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor2D = tf.customGrad(((
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  save: tf.GradSaveFunc
) => {
  const xc = tf.sub(x, tf.mean(x, -1, true))
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.mul(xc, xc), -1, true), 1e-5)) // (M, 1)
  const xhat = tf.mul(xc, rstd)
  save([xhat, rstd, gamma])
  return {
    value: tf.add(tf.mul(xhat, gamma), beta),
    gradFunc: (dy: tf.Tensor2D, saved: Array<tf.Tensor>) => {
      const [sxhat, srstd, sgamma] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D]
      const g = tf.mul(dy, sgamma)
      const inner = tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(sxhat, tf.mean(tf.mul(g, sxhat), -1, true)))
      return [tf.mul(inner, srstd), columnSums(tf.mul(dy, sxhat)), columnSums(dy)]
    }
  }
}) as never) as never

/** The same LayerNorm and gradient as native row kernels (the gradient pass also yields `dy·x̂` for `γ`). */
const layerNormNative: (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor = tf.customGrad(((
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  save: tf.GradSaveFunc
) => {
  save([x, gamma])
  return {
    value: Wasm.layerNorm(x, gamma, beta),
    gradFunc: (dy: tf.Tensor2D, saved: Array<tf.Tensor>) => {
      const [dx, dyXhat] = Wasm.layerNormGrad(saved[0]!, saved[1]!, dy)
      return [dx, columnSums(dyXhat), columnSums(dy)]
    }
  }
}) as never) as never

/**
 * A batched matMul with the batch as the middle axis: `y[m, c, n] = Σ_k x[m, k, c] · w[k, c, n]`
 * (`x [M, K, C]`, `w [K, C, N]` → `[M, C, N]`), run as one depthwise convolution (an XNNPACK kernel on wasm,
 * ~5× faster there than tfjs's batched matMul), with a gradient made of the same op and rank-3 transposes
 * (wasm has no depthwise-convolution gradient kernels).
 */
export const channelMatMul = (x: tf.Tensor, w: tf.Tensor): tf.Tensor3D => (recording() ? channelMatMulGrad(x, w) : channelMatMulRaw(x, w))

const channelMatMulGrad: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor3D = tf.customGrad(((
  x: tf.Tensor3D,
  w: tf.Tensor3D,
  save: tf.GradSaveFunc
) => {
  save([x, w])
  return {
    value: channelMatMulRaw(x, w),
    gradFunc: (dy: tf.Tensor3D, saved: Array<tf.Tensor>) => {
      const [sx, sw] = saved as [tf.Tensor3D, tf.Tensor3D]
      // dx[m, k, c] = Σ_n dy[m, c, n] · w[k, c, n]
      const dx = tf.transpose(channelMatMulRaw(tf.transpose(dy, [0, 2, 1]), tf.transpose(sw, [2, 1, 0])), [0, 2, 1])
      // dw[k, c, n] = Σ_m x[m, k, c] · dy[m, c, n]
      const dw = channelMatMulRaw(tf.transpose(sx, [1, 0, 2]), dy)
      return [dx, dw]
    }
  }
}) as never) as never

const channelMatMulRaw = (x: tf.Tensor, w: tf.Tensor): tf.Tensor3D => {
  const [m, k, c] = x.shape as [number, number, number]
  const n = w.shape[2]!
  const y = tf.depthwiseConv2d(tf.reshape(x, [1, m, k, c]) as tf.Tensor4D, tf.reshape(w, [1, k, c, n]) as tf.Tensor4D, 1, "valid") // (1, M, 1, C·N)
  return tf.reshape(y, [m, c, n])
}

/**
 * One pre-norm residual sublayer's parameters: LayerNorm `gamma`, `beta`, then `·w1 + b1` and `·w2 + b2` (the
 * attention's qkv and output projections, or the MLP's fc and proj).
 */
export interface Sublayer {
  readonly gamma: tf.Tensor
  readonly beta: tf.Tensor
  readonly w1: tf.Tensor
  readonly b1: tf.Tensor
  readonly w2: tf.Tensor
  readonly b2: tf.Tensor
}

/**
 * The MLP sublayer `x + gelu(LN(x)·w1 + b1)·w2 + b2` of `x [M, d]` under the native kernels: three native
 * calls (LayerNorm; the fc product with the GELU in its store; the proj product with the residual in its
 * store), and under a gradient tape one custom gradient for the whole sublayer (see {@link sublayerGrad}).
 */
export const mlpResidual = (x: tf.Tensor2D, s: Sublayer): tf.Tensor2D =>
  recording() ? mlpResidualGrad(x, s.gamma, s.beta, s.w1, s.b1, s.w2, s.b2) : Wasm.matMulAdd(Wasm.matMulGelu(Wasm.layerNorm(x, s.gamma, s.beta), s.w1, s.b1, false), s.w2, s.b2, x)

/**
 * The attention sublayer `x + attention(LN(x)·w1 + b1)·w2 + b2` of `x [N·T, d]` (N sequences of `t` positions,
 * `heads` heads) under the native kernels: LayerNorm, the fused qkv product, the fused attention kernel (no
 * head transposes, no score tensors) and the output product with the residual in its store. Outside a gradient
 * tape it also returns the q | k | v product `[N·T, 3d]` (for a KV cache); under one, a custom gradient for the
 * whole sublayer (see {@link sublayerGrad}) and `qkv: null`.
 */
export const attentionResidual = (x: tf.Tensor2D, s: Sublayer, t: number, heads: number): { readonly y: tf.Tensor2D; readonly qkv: tf.Tensor2D | null } => {
  if (recording()) return { y: attentionResidualGrad(t, heads)(x, s.gamma, s.beta, s.w1, s.b1, s.w2, s.b2), qkv: null }
  const qkv: tf.Tensor2D = tf.fused.matMul({ a: Wasm.layerNorm(x, s.gamma, s.beta) as tf.Tensor2D, b: s.w1 as tf.Tensor2D, bias: s.b1 }) as tf.Tensor2D // (N·T, 3d)
  return { y: Wasm.matMulAdd(Wasm.attention(qkv, t, heads), s.w2, s.b2, x), qkv }
}

type SublayerFn = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => tf.Tensor2D

/**
 * A residual sublayer `x + f(LN(x))` with one hand-written backward of native ops instead of a tape node per
 * op (each with its saved tensors and gradient bookkeeping). `inner(a, w1, b1)` returns the input `z` of the
 * second product and what the backward needs; `innerGrad(dz, saved)` is `z`'s gradient → the gradient `dm` of
 * the first product's output (`m = a·w1 + b1`). Weight gradients `xᵀ·dy`, `b1`'s gradient as a native column
 * sum; `dx = LN'(dm·w1ᵀ) + dy` (the residual's gradient) in one native pass that also sums the columns of
 * `da·x̂`, `da` and `dy` (γ's, β's and `b2`'s gradients: `Wasm.layerNormResidualGrad`, the bits of the
 * LayerNorm-gradient kernel, an add and three column sums).
 */
const sublayerGrad = (
  inner: (a: tf.Tensor2D, w1: tf.Tensor2D, b1: tf.Tensor) => { readonly z: tf.Tensor2D; readonly keep: Array<tf.Tensor> },
  innerGrad: (dy: tf.Tensor2D, w2: tf.Tensor2D, kept: Array<tf.Tensor>) => tf.Tensor2D
): SublayerFn =>
  tf.customGrad(((x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, w1: tf.Tensor2D, b1: tf.Tensor1D, w2: tf.Tensor2D, b2: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const a = Wasm.layerNorm(x, gamma, beta) as tf.Tensor2D // (M, d)
    const { z, keep } = inner(a, w1, b1)
    save([x, gamma, w1, w2, a, z, ...keep])
    return {
      value: Wasm.matMulAdd(z, w2, b2, x),
      gradFunc: (dy: tf.Tensor2D, saved: Array<tf.Tensor>) => {
        const [sx, sg, sw1, sw2, sa, sz, ...kept] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, ...Array<tf.Tensor>]
        const dm = innerGrad(dy, sw2, kept) // (M, n1)
        const da = tf.matMul(dm, sw1, false, true) // (M, d)
        const [dx, dGamma, dBeta, dB2] = Wasm.layerNormResidualGrad(sx, sg, da, dy)
        return [dx, dGamma, dBeta, tf.matMul(sa, dm, true, false), columnSums(dm), tf.matMul(sz, dy, true, false), dB2]
      }
    }
  }) as never) as never

/** {@link mlpResidual} under a tape: keeps the fc product `h` and `u = gelu(h)`; `dh = gelu'(h)·(dy·w2ᵀ)` in one fused product. */
const mlpResidualGrad: SublayerFn = sublayerGrad(
  (a, w1, b1) => {
    const [h, u] = Wasm.matMulGelu(a, w1, b1, true) // (M, dMlp) each
    return { z: u, keep: [h] }
  },
  (dy, w2, [h]) => Wasm.matMulGeluGrad(dy, w2, h!, false, true)
)

/** {@link attentionResidual} under a tape: keeps qkv and the attention probabilities; dq | dk | dv as one `[N·T, 3d]`. */
const attentionResidualGrad = (t: number, heads: number): SublayerFn =>
  sublayerGrad(
    (a, w1, b1) => {
      const qkv = tf.fused.matMul({ a, b: w1, bias: b1 }) // (N·T, 3d)
      const [merged, probs] = Wasm.attentionKeepingProbs(qkv, t, heads)
      return { z: merged, keep: [qkv, probs] }
    },
    (dy, w2, [qkv, probs]) => Wasm.attentionGrad(qkv!, probs!, tf.matMul(dy, w2, false, true), t, heads)
  )
