/**
 * Stage 8 of a step, the update: `worker.actor.ppoEpochs` passes over mini-batches of `globalBatchSize`
 * prompts; each mini-batch is one optimizer step, split into micro-batches of
 * `microBatchSizePerDeviceForUpdate` rows whose losses are summed, each divided by their count (gradient
 * accumulation). The loss is `PapoLoss.papoLoss` with this step's γ, through `@papo/model`'s `Parallel.step`,
 * which runs the same way on one thread and on two (a worker replica then takes half of every micro-batch).
 *
 * @since 0.1.0
 */
import { Parallel } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { type Config, lossConfig } from "./Config.js"
import type { Experience } from "./Experience.js"
import type { Rollouts } from "./Rollout.js"
import * as Session from "./Session.js"

/**
 * The outcome of the actor update: averaged `actor/*` metrics, the non-finite count and the number of
 * optimizer steps.
 *
 * @category models
 */
export interface UpdateResult {
  readonly metrics: Record<string, number>
  readonly nonFinite: number
  readonly updates: number
}

/**
 * The micro-batches of rows [m0, m1) as tensors: the policy's batch and the PAPO loss inputs, `[n, T]` each
 * (per-token advantages A_i·M_i,t; the masked log-probs only with the perception loss, recomputed from the
 * masked images with `recomputeMaskedLogProbs`). The caller disposes them (`Parallel.disposeMicroBatches`).
 *
 * @example
 * microBatches(session, config, batch, exp, advantages, 0, 40).length // => ceil(40 / microBatchSizePerDeviceForUpdate)
 *
 * @category constructors
 */
export const microBatches = (
  session: Session.Session,
  config: Config,
  batch: Rollouts,
  exp: Experience,
  advantages: Float64Array, // [N]
  m0: number,
  m1: number
): Array<Parallel.MicroBatch> => {
  const { rows } = batch
  const T = rows.responseLength
  const imageSize = rows.images.length / rows.n
  const micro = config.worker.actor.microBatchSizePerDeviceForUpdate
  // Masked images of rows [first·G, …) only: the prompts [first, last) these rows belong to, each repeated G times.
  const G = config.worker.rollout.n
  const first = Math.floor(m0 / G)
  const maskedImages = config.worker.actor.recomputeMaskedLogProbs
    ? Session.stackImages(batch.maskedImages.slice(first, Math.ceil(m1 / G)), G) // [(last − first)·G, H, W, C]
    : null
  const out: Array<Parallel.MicroBatch> = []
  for (let s = m0; s < m1; s += micro) {
    const e = Math.min(m1, s + micro)
    const part = Session.rowsBetween(rows, s, e)
    const slice = (a: Float32Array | null) => (a === null ? null : tf.tensor2d(a.subarray(s * T, e * T), [e - s, T])) // [n, T]
    const tokenAdvantages = new Float32Array((e - s) * T) // [n, T]
    for (let r = 0; r < e - s; r++) for (let t = 0; t < T; t++) tokenAdvantages[r * T + t] = advantages[s + r]! * part.responseMask[r * T + t]!
    const policyBatch = Session.batchTensors(session, part, rows.images.subarray(s * imageSize, e * imageSize))
    const perception = config.algorithm.useKlPrcp
    out.push({
      batch: policyBatch,
      inputs: {
        responseMask: tf.tensor2d(part.responseMask, [e - s, T]),
        oldLogProbs: slice(exp.old),
        advantages: tf.tensor2d(tokenAdvantages, [e - s, T]),
        refLogProbs: slice(exp.ref),
        maskedLogProbs: perception && maskedImages === null ? slice(exp.masked) : null,
        maskedImages: perception && maskedImages !== null
          ? tf.tensor4d(maskedImages.subarray((s - first * G) * imageSize, (e - first * G) * imageSize), policyBatch.images.shape as [number, number, number, number])
          : null
      }
    })
  }
  return out
}

/**
 * The PPO update of a batch with γ = `klPrcpCoef` (this step's value of the schedule).
 *
 * @example
 * const u = yield* updateActor(session, config, batch, exp, advantages, 0.02)
 * u.updates // => ppoEpochs · ceil(B / globalBatchSize)
 *
 * @category math
 */
export const updateActor = (
  session: Session.Session,
  config: Config,
  batch: Rollouts,
  exp: Experience,
  advantages: Float64Array, // [N]
  klPrcpCoef: number
): Effect.Effect<UpdateResult> =>
  // Tensor math on rows the step built (a non-finite loss is a skipped update, not a throw): a throw is a bug.
  Effect.promise(async () => {
    const { actor } = config.worker
    const miniRows = actor.globalBatchSize * config.worker.rollout.n
    const sums: Record<string, number> = {}
    const add = (k: string, v: number) => {
      sums[k] = (sums[k] ?? 0) + v
    }
    let updates = 0
    let nonFinite = 0
    for (let epoch = 0; epoch < actor.ppoEpochs; epoch++) {
      for (let m0 = 0; m0 < batch.rows.n; m0 += miniRows) {
        const micro = microBatches(session, config, batch, exp, advantages, m0, Math.min(batch.rows.n, m0 + miniRows))
        const result = await Parallel.step(session.team, micro, { name: "papo", config: lossConfig(config, micro.length), klPrcpCoef }, config.worker.rollout.temperature)
          .finally(() => Parallel.disposeMicroBatches(micro))
        updates++
        if (result.skipped || !Number.isFinite(result.loss)) nonFinite++
        for (const [k, v] of Object.entries(result.metrics)) add(k, v)
        add("actor/grad_norm", result.gradNorm)
        add("actor/lr", result.lr)
      }
    }
    const metrics: Record<string, number> = {}
    for (const [k, v] of Object.entries(sums)) metrics[k] = v / updates
    return { metrics, nonFinite, updates }
  })
