/**
 * AdamW (decoupled weight decay, as `torch.optim.AdamW`) with global grad-norm clipping, learning-rate
 * schedules, and one train-step function.
 *
 * A step whose gradient norm is not finite (NaN or ±∞) changes nothing but the counters: the weights and
 * moments stay as they were and `skippedSteps` grows by one.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { Wasm } from "@papo/kernels"
import type { Policy } from "./Policy.js"
import { parameterShapes } from "./Policy.js"
import { nativeMatMuls } from "./internal/ops.js"

/**
 * Learning-rate schedule, as a multiplier of the base rate at (0-based) step k:
 * - `constant`: 1;
 * - `warmup`: linear (k + 1) / warmupSteps up to 1, then 1;
 * - `cosine`: the warm-up, then a half cosine from 1 down to `minRatio` at `totalSteps`.
 *
 * @category configuration
 */
export type LrSchedule =
  | { readonly kind: "constant" }
  | { readonly kind: "warmup"; readonly warmupSteps: number }
  | { readonly kind: "cosine"; readonly warmupSteps: number; readonly totalSteps: number; readonly minRatio?: number }

/**
 * Hyperparameters of AdamW; defaults are PyTorch's (weight decay 0.01) plus clipping at norm 1.
 *
 * @category configuration
 */
export interface AdamWConfig {
  readonly lr: number
  readonly beta1?: number
  readonly beta2?: number
  readonly eps?: number
  /** Decoupled decay applied to every parameter: `θ ← θ − lr·wd·θ`. Default 0.01. */
  readonly weightDecay?: number
  /** Global L2 grad-norm clip; `Infinity` disables it. Default 1. */
  readonly maxGradNorm?: number
  readonly schedule?: LrSchedule
}

/**
 * The optimizer: its config, first and second moments per parameter, and its counters.
 *
 * @category models
 */
export interface AdamW {
  readonly config: AdamWConfig
  readonly m: Readonly<Record<string, tf.Variable>>
  readonly v: Readonly<Record<string, tf.Variable>>
  /** Calls of {@link applyGradients} so far (skipped ones included): the schedule's step. */
  step: number
  /** Steps skipped because the gradient norm was not finite. */
  skippedSteps: number
}

/**
 * The rate multiplier of a schedule at 0-based step `k`.
 *
 * @example
 * lrMultiplier({ kind: "warmup", warmupSteps: 4 }, 1) // => 0.5
 *
 * @category math
 */
export const lrMultiplier = (schedule: LrSchedule, k: number): number => {
  switch (schedule.kind) {
    case "constant":
      return 1
    case "warmup":
      return Math.min(1, (k + 1) / Math.max(1, schedule.warmupSteps))
    case "cosine": {
      const w = schedule.warmupSteps
      if (k < w) return (k + 1) / w
      const min = schedule.minRatio ?? 0
      const progress = Math.min(1, (k - w) / Math.max(1, schedule.totalSteps - w))
      return min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * progress))
    }
  }
}

let counter = 0

/**
 * A fresh AdamW for a trainable policy (moments at zero).
 *
 * @example
 * const opt = adamW(policy, { lr: 1e-3, schedule: { kind: "cosine", warmupSteps: 10, totalSteps: 500 } })
 *
 * @category constructors
 */
export const adamW = (policy: Policy, config: AdamWConfig): AdamW => {
  if (!policy.trainable) throw new Error("adamW: the policy is a frozen reference copy")
  if (!(config.lr >= 0)) throw new Error(`adamW: lr must be ≥ 0, got ${config.lr}`)
  const m: Record<string, tf.Variable> = {}
  const v: Record<string, tf.Variable> = {}
  for (const { name, shape } of parameterShapes(policy.config)) {
    // tidy frees the zeros a variable is copied from (variables are not tidied).
    m[name] = tf.tidy(() => tf.variable(tf.zeros([...shape]), false, `adam_m/${name}#${counter}`))
    v[name] = tf.tidy(() => tf.variable(tf.zeros([...shape]), false, `adam_v/${name}#${counter}`))
  }
  counter++
  return { config, m, v, step: 0, skippedSteps: 0 }
}

/**
 * What a loss function may return: the scalar to minimize, optionally with metric tensors to read
 * (they are kept across the gradient tape and returned as numbers).
 *
 * @category models
 */
export type LossResult = tf.Scalar | { readonly loss: tf.Scalar; readonly metrics?: Readonly<Record<string, tf.Tensor>> }

/**
 * The outcome of one {@link applyGradients} call.
 *
 * @category models
 */
export interface StepResult {
  readonly loss: number
  /** Global L2 norm of the gradient before clipping. */
  readonly gradNorm: number
  readonly skipped: boolean
  /** The learning rate used (or that would have been used, if skipped). */
  readonly lr: number
  /** The loss function's metrics as numbers (mean of each tensor). */
  readonly metrics: Readonly<Record<string, number>>
}

/**
 * The gradients of a loss w.r.t. every parameter (by parameter name; zeros for a parameter the loss does
 * not reach), with the loss and the loss function's metrics as numbers. The caller disposes `grads`.
 *
 * @category math
 */
export interface Gradients {
  readonly loss: number
  readonly grads: Record<string, tf.Tensor>
  readonly metrics: Readonly<Record<string, number>>
}

/**
 * Computes {@link Gradients} of `lossFn`, which builds the loss from scratch (e.g. `Policy.logProbs`
 * inside `PapoLoss.papoLoss`).
 *
 * @category math
 */
export const gradients = (policy: Policy, lossFn: () => LossResult): Gradients => {
  const shapes = parameterShapes(policy.config)
  const vars = shapes.map((s) => policy.params[s.name]!)
  let kept: Record<string, tf.Tensor> = {}
  const { value, grads } = tf.variableGrads(() => {
    const out = lossFn()
    if (out instanceof tf.Tensor) return out
    kept = {}
    for (const [k, t] of Object.entries(out.metrics ?? {})) kept[k] = tf.keep(tf.mean(t))
    return out.loss
  }, vars)
  const metrics: Record<string, number> = {}
  for (const [k, t] of Object.entries(kept)) {
    metrics[k] = t.dataSync()[0]!
    t.dispose()
  }
  const loss = value.dataSync()[0]!
  value.dispose()
  const byName: Record<string, tf.Tensor> = {}
  shapes.forEach(({ name, shape }, i) => {
    byName[name] = grads[vars[i]!.name] ?? tf.zeros([...shape])
  })
  return { loss, grads: byName, metrics }
}

/** Σ g² over the gradients in wasm kernels: a float32 sum per tensor, then their float32 sum. */
const sumOfSquaresWasm = (grads: ReadonlyArray<tf.Tensor>): number => {
  const sq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.mul(g, g)))))
  const value = sq.dataSync()[0]!
  sq.dispose()
  return value
}

/**
 * One AdamW update from given gradients (by parameter name): global-norm clipping, then the moments and
 * the decoupled decay. Skips (and counts) a step whose gradient norm is not finite. Does not dispose `grads`.
 * Under the native kernels of `@papo/kernels` (wasm backend) the norm (summed in double precision) and the
 * step over all parameters are one native call each; the step's float32 operations are the wasm path's, so
 * for the same clip factor both give the same bits.
 *
 * @category math
 */
export const update = (
  policy: Policy,
  opt: AdamW,
  grads: Readonly<Record<string, tf.Tensor>>
): { readonly gradNorm: number; readonly skipped: boolean; readonly lr: number } => {
  const names = parameterShapes(policy.config).map((s) => s.name)
  const missing = names.filter((n) => grads[n] === undefined)
  if (missing.length > 0) throw new Error(`Optimizer.update: no gradient for ${missing.join(", ")}`)
  const native = nativeMatMuls()
  const gradNorm = Math.sqrt(native ? Wasm.sumOfSquares(names.map((n) => grads[n]!)) : sumOfSquaresWasm(names.map((n) => grads[n]!)))
  const c = opt.config
  const k = opt.step
  opt.step++
  const lr = c.lr * lrMultiplier(c.schedule ?? { kind: "constant" }, k)
  const skipped = !Number.isFinite(gradNorm)
  if (skipped) {
    opt.skippedSteps++
    return { gradNorm, skipped, lr }
  }
  const b1 = c.beta1 ?? 0.9, b2 = c.beta2 ?? 0.999, eps = c.eps ?? 1e-8, wd = c.weightDecay ?? 0.01
  const maxNorm = c.maxGradNorm ?? 1
  const clip = gradNorm > maxNorm ? maxNorm / (gradNorm + 1e-6) : 1
  const t = opt.step - opt.skippedSteps // applied updates, this one included
  const bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t)
  if (native) {
    const constants = { clip, beta1: b1, beta2: b2, bias1: bc1, bias2: bc2, eps, decay: 1 - lr * wd, lr }
    const updated = Wasm.adamW(names.map((n) => policy.params[n]!), names.map((n) => grads[n]!), names.map((n) => opt.m[n]!), names.map((n) => opt.v[n]!), constants)
    names.forEach((n, i) => {
      const [p, m, v] = updated[i]!
      policy.params[n]!.assign(p)
      opt.m[n]!.assign(m)
      opt.v[n]!.assign(v)
    })
    tf.dispose(updated.flat())
    return { gradNorm, skipped, lr }
  }
  tf.tidy(() => {
    for (const name of names) {
      const p = policy.params[name]!
      const g = clip === 1 ? grads[name]! : tf.mul(grads[name]!, clip)
      const m = opt.m[name]!, v = opt.v[name]!
      const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1))
      const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.mul(g, g), 1 - b2))
      m.assign(m1)
      v.assign(v1)
      const step = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps))
      p.assign(tf.sub(tf.mul(p, 1 - lr * wd), tf.mul(step, lr)))
    }
  })
  return { gradNorm, skipped, lr }
}

/**
 * One optimizer step: {@link gradients} of `lossFn`, then {@link update}.
 *
 * @example
 * const r = applyGradients(policy, opt, () => Policy.sftLoss(policy, batch, mask))
 * r.skipped // => false
 *
 * @category math
 */
export const applyGradients = (policy: Policy, opt: AdamW, lossFn: () => LossResult): StepResult => {
  const g = gradients(policy, lossFn)
  try {
    return { loss: g.loss, metrics: g.metrics, ...update(policy, opt, g.grads) }
  } finally {
    tf.dispose(Object.values(g.grads))
  }
}

/**
 * The optimizer's state as plain data, for a checkpoint.
 *
 * @category models
 */
export interface AdamWState {
  readonly step: number
  readonly skippedSteps: number
  readonly m: Readonly<Record<string, Float32Array>>
  readonly v: Readonly<Record<string, Float32Array>>
}

/**
 * Reads the optimizer state (a copy).
 *
 * @category models
 */
export const getState = (opt: AdamW): AdamWState => {
  const m: Record<string, Float32Array> = {}
  const v: Record<string, Float32Array> = {}
  for (const [k, t] of Object.entries(opt.m)) m[k] = t.dataSync() as Float32Array
  for (const [k, t] of Object.entries(opt.v)) v[k] = t.dataSync() as Float32Array
  return { step: opt.step, skippedSteps: opt.skippedSteps, m, v }
}

/**
 * Restores a saved state; every moment's name and size is checked before anything is assigned.
 *
 * @category models
 */
export const setState = (opt: AdamW, state: AdamWState): void => {
  const problems: Array<string> = []
  for (const [which, mine, theirs] of [["m", opt.m, state.m], ["v", opt.v, state.v]] as const) {
    for (const [k, t] of Object.entries(mine)) {
      const s = theirs[k]
      if (s === undefined) problems.push(`missing ${which}."${k}"`)
      else if (s.length !== t.size) problems.push(`${which}."${k}" has ${s.length} values, expected ${t.size}`)
    }
    for (const k of Object.keys(theirs)) if (!(k in mine)) problems.push(`unexpected ${which}."${k}"`)
  }
  if (!(Number.isInteger(state.step) && Number.isInteger(state.skippedSteps) && state.step >= state.skippedSteps && state.skippedSteps >= 0)) {
    problems.push(`invalid counters step=${state.step} skippedSteps=${state.skippedSteps}`)
  }
  if (problems.length > 0) throw new Error(`setState: optimizer state does not match: ${problems.join("; ")}`)
  tf.tidy(() => {
    for (const [k, t] of Object.entries(opt.m)) t.assign(tf.tensor(state.m[k]!, t.shape))
    for (const [k, t] of Object.entries(opt.v)) t.assign(tf.tensor(state.v[k]!, t.shape))
  })
  opt.step = state.step
  opt.skippedSteps = state.skippedSteps
}

/**
 * Frees the moments.
 *
 * @category constructors
 */
export const dispose = (opt: AdamW): void => {
  for (const t of [...Object.values(opt.m), ...Object.values(opt.v)]) t.dispose()
}
