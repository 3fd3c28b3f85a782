/**
 * PAPO's Implicit Perception Loss, KL_prcp, exactly as `dp_actor.py::update_policy` computes it.
 *
 *     d_t      = clamp(a_t − ℓ_t, −20, 20)            a = log π_θold(o_t | q, I_mask), ℓ = log π_θ(o_t | q, I)
 *     kld_t    = clamp(e^{d_t} − d_t − 1, −10, 10) · w_i          (k3 with ratio π_mask / π_θ; w_i = 1 in the reference)
 *     [optional] kld_t ·= [kld_t ≥ per-row quantile_{1−p}]        (experimental token top-p mask, off)
 *     [optional] kld_t  = clamp(kld_t, 0, c)                      (experimental clipping, off)
 *     klPrcpLoss = averageLoss(kld, mask, lossAggMode)            (≥ 0)
 *     loss       = −γ · klPrcpLoss                                 MAXIMIZED: added to the loss with a minus sign
 *     metric actor/kl_prcp_loss = −klPrcpLoss                      a "drastic decrease" means the KL is blowing up
 *
 * Where the paper and the code differ, this follows the code: the paper's r = π_θ/π_mask with
 * r − log r − 1 is the reciprocal ratio (the code computes 1/r + log r − 1 per token), and the paper
 * writes the term per sequence while the code is per token.
 *
 * The gradient flows only through ℓ: a comes from a no-grad pass at θ_old, computed once per rollout
 * step. `recomputeMaskedLogProbs` (the reference's `RECOMPUTE_AUG_LOG_PROBS`) lets it flow through a too.
 * Per valid token in token mode, ∂loss/∂ℓ_t = −(γ/N)(1 − e^{a_t − ℓ_t}), and 0 where a clamp is active.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { averageLoss, type LossAggMode } from "./Aggregation.js"
import { asFloat, assertRank, assertSameShape, stopGradient, tidy } from "./internal/ops.js"
import { klPenalty, type KlPenalty } from "./Kl.js"

/**
 * Inputs of {@link perceptionKl}; tensors are `[B, T]`.
 *
 * @category models
 */
export interface PerceptionKlInput {
  readonly logProbs: tf.Tensor
  /** a_t: the old policy's log-probs of the same tokens with the masked image. */
  readonly maskedLogProbs: tf.Tensor
  readonly responseMask: tf.Tensor
  /** Per-row weight `[B]` (the reference's `kl_prcp_weighting`, always 1 there). Default: 1. */
  readonly weighting?: tf.Tensor
  /** γ for this batch (the scheduled value). */
  readonly coef: number
}

/**
 * Hyperparameters of {@link perceptionKl}, under the reference's names.
 *
 * @category configuration
 */
export interface PerceptionKlConfig {
  /** The estimator; the reference uses `low_var_kl` (k3). */
  readonly klPrcpPenalty: KlPenalty
  readonly lossAggMode: LossAggMode
  /** Clamp the per-token KL to [0, klPrcpClipping] (experimental, off in every released config). */
  readonly useKlPrcpClipping: boolean
  readonly klPrcpClipping: number
  /** Keep only each row's top-p tokens by KL (experimental, off). The denominator is unchanged. */
  readonly useKlPrcpTokenLevelMask: boolean
  readonly klPrcpTokenLevelMaskTopP: number
  readonly recomputeMaskedLogProbs?: boolean
}

/**
 * The per-row threshold of the token top-p mask, as `torch.nanquantile(kld, 1 − topP, dim=-1)` over the
 * valid positions, in float32 and with torch's `lerp`; NaN for a row with no valid token.
 */
const rowQuantiles = (values: Float32Array, mask: Float32Array | Int32Array | Uint8Array, b: number, t: number, q: number) => {
  const f = Math.fround
  const out = new Float32Array(b)
  for (let i = 0; i < b; i++) {
    const s: Array<number> = []
    for (let j = 0; j < t; j++) if (mask[i * t + j] !== 0) s.push(values[i * t + j]!)
    if (s.length === 0) {
      out[i] = NaN
      continue
    }
    s.sort((x, y) => x - y)
    const rank = f(f(q) * (s.length - 1))
    const lo = Math.floor(rank)
    const hi = Math.ceil(rank)
    const w = f(rank - lo)
    const start = s[lo]!
    const end = s[hi]!
    const diff = f(end - start)
    out[i] = Math.abs(w) < 0.5 ? f(start + f(w * diff)) : f(end - f(diff * f(1 - w)))
  }
  return out
}

/**
 * The token top-p mask: true where a token's KL is at or above its row's (1 − topP) quantile of valid
 * tokens, at every position (padding included; aggregation removes it). A row without valid tokens is
 * all false.
 *
 * @category losses
 */
export const tokenTopPMask = (perTokenKl: tf.Tensor, responseMask: tf.Tensor, topP: number): tf.Tensor => {
  assertRank("tokenTopPMask", "perTokenKl", perTokenKl, 2)
  assertSameShape("tokenTopPMask", { perTokenKl, responseMask })
  if (!(topP >= 0 && topP <= 1)) throw new Error(`Error in tokenTopPMask: topP must be in [0, 1], got ${topP}`)
  const [b, t] = perTokenKl.shape as [number, number]
  const thresholds = rowQuantiles(
    perTokenKl.dataSync() as Float32Array,
    responseMask.dataSync() as Float32Array,
    b,
    t,
    Math.fround(1 - topP)
  )
  return tf.tidy(() => tf.greaterEqual(perTokenKl, tf.tensor2d(thresholds, [b, 1])))
}

/**
 * KL_prcp, its loss term −γ·KL and the intermediate tensors the reference computes (see the module doc).
 *
 * @category losses
 */
export const perceptionKl = (
  input: PerceptionKlInput,
  config: PerceptionKlConfig
): {
  readonly loss: tf.Scalar
  readonly klPrcpLoss: tf.Scalar
  readonly perTokenKl: tf.Tensor
  readonly tokenMask: tf.Tensor | null
  readonly perTokenKlFinal: tf.Tensor
  readonly metrics: { readonly "actor/kl_prcp_loss": tf.Scalar }
} =>
  tidy(() => {
    const { logProbs, responseMask, coef } = input
    assertRank("perceptionKl", "logProbs", logProbs, 2)
    assertSameShape("perceptionKl", { logProbs, maskedLogProbs: input.maskedLogProbs, responseMask })
    const masked = config.recomputeMaskedLogProbs === true ? input.maskedLogProbs : stopGradient(input.maskedLogProbs)
    let perTokenKl = klPenalty(logProbs, masked, config.klPrcpPenalty)
    if (perTokenKl.rank !== 2) {
      throw new Error(`Error in perceptionKl: klPrcpPenalty "${config.klPrcpPenalty}" gives one value per row; use a per-token estimator`)
    }
    if (input.weighting !== undefined) perTokenKl = tf.mul(perTokenKl, tf.reshape(input.weighting, [-1, 1]))
    let final = perTokenKl
    let tokenMask: tf.Tensor | null = null
    if (config.useKlPrcpTokenLevelMask) {
      tokenMask = tokenTopPMask(perTokenKl, asFloat(responseMask), config.klPrcpTokenLevelMaskTopP)
      final = tf.mul(final, tf.cast(tokenMask, "float32"))
    }
    if (config.useKlPrcpClipping) final = tf.clipByValue(final, 0, config.klPrcpClipping)
    const klPrcpLoss = averageLoss(final, responseMask, config.lossAggMode)
    return {
      loss: tf.mul(-coef, klPrcpLoss),
      klPrcpLoss,
      perTokenKl,
      tokenMask,
      perTokenKlFinal: final,
      metrics: { "actor/kl_prcp_loss": tf.neg(klPrcpLoss) }
    }
  })
