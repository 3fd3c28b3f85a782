/**
 * The update's losses, by name, and the gradient of one thread's share of a mini-batch. Used by the main
 * thread and by the worker replica alike (Parallel.ts, worker.ts), so both compute the same thing.
 */
import * as tf from "@tensorflow/tfjs"
import { PapoLoss } from "@papo/loss"
import * as Optimizer from "../Optimizer.js"
import * as Policy from "../Policy.js"

/** The loss of an update, by name, with its parameters. */
export type LossSpec =
  | {
    /** `PapoLoss.papoLoss` (GRPO / DAPO / PAPO); its `gradientAccumulation` is set to the micro-batch count. */
    readonly name: "papo"
    readonly config: PapoLoss.LossConfig
    /** γ of this step (an annealed schedule's value); `config.klPrcpCoef` when absent. */
    readonly klPrcpCoef?: number
  }
  | {
    /** Token cross-entropy: the mean negative log-likelihood of the response tokens (temperature 1). */
    readonly name: "sft"
  }

/** The names of {@link LossSpec}. */
export type LossName = LossSpec["name"]

/** Per-row inputs of a loss besides the policy's batch: `[n, T]` (images `[n, H, W, C]`). */
export interface LossRows {
  readonly responseMask: tf.Tensor
  readonly oldLogProbs?: tf.Tensor | null
  readonly advantages?: tf.Tensor | null
  readonly refLogProbs?: tf.Tensor | null
  /** Masked-image log-probs from the no-grad pass. */
  readonly maskedLogProbs?: tf.Tensor | null
  /** Masked images: the masked log-probs are recomputed with gradient (`recomputeMaskedLogProbs`). */
  readonly maskedImages?: tf.Tensor | null
}

/** Rows of one micro-batch (or one thread's part of it). */
export interface MicroBatch {
  readonly batch: Policy.Batch
  readonly inputs: LossRows
}

/** One thread's part of a micro-batch, with its share of the micro-batch's loss normalizer (response tokens). */
export interface Part extends MicroBatch {
  readonly share: number
}

/** Frees every tensor of the given micro-batches (or parts): the policy's batch and the loss rows. */
export const disposeMicroBatches = (micro: ReadonlyArray<MicroBatch>): void =>
  tf.dispose(micro.flatMap((m) => [m.batch.images, m.batch.promptIds, m.batch.responseIds, ...Object.values(m.inputs).filter((t): t is tf.Tensor => t != null)]))

const required = (t: tf.Tensor | null | undefined, what: string): tf.Tensor => {
  if (t == null) throw new Error(`papo loss: the micro-batch has no ${what}`)
  return t
}

/** The closed table of losses; each divides by `count`, the number of micro-batches (gradient accumulation). */
const losses: { readonly [K in LossName]: (policy: Policy.Policy, part: MicroBatch, spec: Extract<LossSpec, { name: K }>, count: number, temperature: number) => { loss: tf.Scalar; metrics: Record<string, tf.Tensor> } } = {
  papo: (policy, { batch, inputs }, spec, count, temperature) => {
    const maskedLogProbs = inputs.maskedImages != null
      ? Policy.logProbs(policy, { ...batch, images: inputs.maskedImages }, temperature)
      : inputs.maskedLogProbs ?? null
    const out = PapoLoss.papoLoss({
      logProbs: Policy.logProbs(policy, batch, temperature),
      oldLogProbs: required(inputs.oldLogProbs, "oldLogProbs"),
      advantages: required(inputs.advantages, "advantages"),
      responseMask: inputs.responseMask,
      refLogProbs: inputs.refLogProbs ?? null,
      maskedLogProbs,
      ...(spec.klPrcpCoef !== undefined ? { klPrcpCoef: spec.klPrcpCoef } : {})
    }, { ...spec.config, gradientAccumulation: count })
    return { loss: out.loss, metrics: out.metrics }
  },
  sft: (policy, { batch, inputs }, _spec, count) => {
    const nll = Policy.sftLoss(policy, batch, inputs.responseMask)
    return { loss: tf.div(nll, count), metrics: { "sft/loss": nll } }
  }
}

/** The table's entry for a spec; an unknown name (from an untyped caller) throws with the valid ones. */
const lossFn = (spec: LossSpec) => {
  const f = (losses as Record<string, (typeof losses)[LossName]>)[spec.name]
  if (f === undefined) throw new Error(`unknown loss "${(spec as { name: string }).name}"; valid: ${Object.keys(losses).join(", ")}`)
  return f as (policy: Policy.Policy, part: MicroBatch, spec: LossSpec, count: number, temperature: number) => { loss: tf.Scalar; metrics: Record<string, tf.Tensor> }
}

/**
 * The gradient of Σ_parts share·loss(part) (each loss already divided by `count`), on one tape. Metrics are
 * Σ share·metric / count. A thread with no part (a one-row micro-batch stays on the main thread) has zero
 * gradients.
 */
export const gradientsOf = (
  policy: Policy.Policy,
  parts: ReadonlyArray<Part>,
  spec: LossSpec,
  count: number,
  temperature: number
): Optimizer.Gradients => {
  if (parts.length === 0) {
    return { loss: 0, metrics: {}, grads: Object.fromEntries(Object.entries(policy.params).map(([k, v]) => [k, tf.zerosLike(v)])) }
  }
  const f = lossFn(spec)
  return Optimizer.gradients(policy, () => {
    let total: tf.Scalar | null = null
    const sums: Record<string, tf.Tensor> = {}
    for (const part of parts) {
      const out = f(policy, part, spec, count, temperature)
      // A whole micro-batch on one thread has share 1: no multiplication, so one thread computes what it always did.
      const loss = part.share === 1 ? out.loss : (tf.mul(out.loss, part.share) as tf.Scalar)
      total = total === null ? loss : tf.add(total, loss)
      for (const [k, v] of Object.entries(out.metrics)) {
        const w = part.share === 1 ? v : tf.mul(v, part.share)
        sums[k] = sums[k] === undefined ? w : tf.add(sums[k]!, w)
      }
    }
    const metrics: Record<string, tf.Tensor> = {}
    for (const [k, v] of Object.entries(sums)) metrics[k] = tf.div(v, count)
    return { loss: total!, metrics }
  })
}
