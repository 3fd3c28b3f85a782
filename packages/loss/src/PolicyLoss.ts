/**
 * The clipped PPO surrogate with clip-higher and dual clip (`core_algos.py::compute_policy_loss`).
 *
 *     logRatio     = clamp(ℓ − ℓ_old, −20, 20)
 *     ratio        = exp(logRatio)
 *     clippedRatio = exp(clamp(logRatio, log(1 − ε_low), log(1 + ε_high)))   = clip(ratio, 1 − ε_low, 1 + ε_high)
 *     L1 = −A·ratio;  L2 = −A·clippedRatio;  L3 = −A·C
 *     perTokenLoss = max(L1, L2)                 if A ≥ 0
 *                    min(max(L1, L2), L3)        if A < 0     (dual clip: the loss never exceeds −A·C)
 *     pgLoss = averageLoss(perTokenLoss, mask, mode)
 *
 * ε_low = 0.2; ε_high = 0.3 for GRPO / PAPO-G (the reference default), 0.28 for DAPO / PAPO-D; C = 3 is
 * always on in the reference. The paper does not mention the dual clip.
 *
 * Metrics, as the reference computes them (note the first one's name):
 * - `pg_clipfrac_higher`: the fraction of valid tokens with L1 < L2, i.e. **every** clipped token, low-side
 *   clipping of negative advantages included. The paper's "Clipping Ratio-High", an early sign of collapse.
 * - `pg_clipfrac_lower`: the fraction where the dual clip is active.
 * - `ppo_kl`: masked mean of ℓ_old − ℓ (with the ±20 clamp).
 * - `entropy_loss`: `masked_mean(average_loss(−ℓ, mask, mode))`, the reference's own expression
 *   (a scalar times N / (N + 1e-8)).
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { averageLoss, type LossAggMode, maskedMean } from "./Aggregation.js"
import { asFloat, assertRank, assertSameShape, tidy } from "./internal/ops.js"

/**
 * Inputs of {@link policyLoss}; every tensor is `[B, T]`.
 *
 * @category models
 */
export interface PolicyLossInput {
  /** ℓ: log π_θ(o_t | q, I), with gradient. */
  readonly logProbs: tf.Tensor
  /** ℓ_old: log π_θold(o_t | q, I), the rollout policy, no gradient. */
  readonly oldLogProbs: tf.Tensor
  /** Â_i broadcast over the response (0 in padding). */
  readonly advantages: tf.Tensor
  readonly responseMask: tf.Tensor
}

/**
 * Hyperparameters of {@link policyLoss}.
 *
 * @category configuration
 */
export interface PolicyLossConfig {
  readonly clipRatioLow: number
  readonly clipRatioHigh: number
  /** Dual-clip constant C (> 1). */
  readonly clipRatioDual: number
  readonly lossAggMode: LossAggMode
}

/**
 * The surrogate's value, its per-token pieces and the reference's metrics (scalars, reference names).
 *
 * @category models
 */
export interface PolicyLossOutput {
  readonly pgLoss: tf.Scalar
  readonly ratio: tf.Tensor
  readonly perTokenLoss: tf.Tensor
  readonly metrics: {
    readonly pg_clipfrac_higher: tf.Scalar
    readonly pg_clipfrac_lower: tf.Scalar
    readonly ppo_kl: tf.Scalar
    readonly entropy_loss: tf.Scalar
  }
}

/**
 * The clipped surrogate with clip-higher and dual clip (see the module doc).
 *
 * @example
 * const z = tf.zeros([1, 2]), a = tf.ones([1, 2]), m = tf.ones([1, 2])
 * policyLoss({ logProbs: z, oldLogProbs: z, advantages: a, responseMask: m },
 *   { clipRatioLow: 0.2, clipRatioHigh: 0.3, clipRatioDual: 3, lossAggMode: "token" }).pgLoss.arraySync() // => ≈ -1
 *
 * @category losses
 */
export const policyLoss = (input: PolicyLossInput, config: PolicyLossConfig): PolicyLossOutput =>
  tidy(() => {
    const { logProbs, oldLogProbs, advantages, responseMask } = input
    assertRank("policyLoss", "logProbs", logProbs, 2)
    assertSameShape("policyLoss", { logProbs, oldLogProbs, advantages, responseMask })
    if (!(config.clipRatioDual > 1)) {
      throw new Error(`Error in policyLoss: clipRatioDual must be > 1, got ${config.clipRatioDual}`)
    }
    const mask = asFloat(responseMask)
    const negAdvantages = tf.neg(advantages)
    const logRatio = tf.clipByValue(tf.sub(logProbs, oldLogProbs), -20, 20)
    const ratio = tf.exp(logRatio)
    const clippedRatio = tf.exp(
      tf.clipByValue(logRatio, Math.log(1 - config.clipRatioLow), Math.log(1 + config.clipRatioHigh))
    )
    const pgLosses1 = tf.mul(negAdvantages, ratio)
    const pgLosses2 = tf.mul(negAdvantages, clippedRatio)
    const pgLosses3 = tf.mul(negAdvantages, config.clipRatioDual)
    const clippedLosses = tf.maximum(pgLosses1, pgLosses2)
    const isNegative = tf.less(advantages, 0)
    const perTokenLoss = tf.where(isNegative, tf.minimum(clippedLosses, pgLosses3), clippedLosses)
    const pgLoss = averageLoss(perTokenLoss, mask, config.lossAggMode)
    const metrics = {
      pg_clipfrac_higher: maskedMean(tf.cast(tf.less(pgLosses1, pgLosses2), "float32"), mask),
      pg_clipfrac_lower: maskedMean(
        tf.cast(tf.logicalAnd(tf.greater(clippedLosses, pgLosses3), isNegative), "float32"),
        mask
      ),
      ppo_kl: maskedMean(tf.neg(logRatio), mask),
      entropy_loss: maskedMean(
        tf.mul(averageLoss(tf.neg(logProbs), mask, config.lossAggMode), tf.onesLike(mask)),
        mask
      )
    }
    return { pgLoss, ratio, perTokenLoss, metrics }
  })
