/**
 * The whole per-micro-batch actor loss of GRPO, DAPO, PAPO-G and PAPO-D, composed in the exact order of
 * `dp_actor.py::update_policy`:
 *
 *     L = PG(ε_low, ε_high, C; mode)
 *       + β · avg(KL(ℓ ‖ ℓ_ref); mode)                  [useKlLoss and refLogProbs given: the GRPO family]
 *       − γ · avg(k3(ℓ ‖ a); mode)                       [maskedLogProbs given: PAPO]
 *       + η2 · disc · (−mean_M a)                        [useAugEntropyLoss, with the masked branch]
 *       + η1 · disc · (−mean_M ℓ)                        [useOriEntropyLoss]
 *     loss = L / gradientAccumulation                    (what is differentiated; `actor/pg_loss` logs L)
 *
 * The reference KL is a loss term, not a reward penalty. The masked branch runs iff `maskedLogProbs` is
 * given (with `recomputeMaskedLogProbs`, also only if `useKlPrcp`). Zero-advantage rows stay in the batch:
 * they add nothing to PG but still count in the token denominators and still get the other terms' gradients.
 *
 * `presets` holds the configs of the paper's Table 1 and ablations.
 *
 * @since 0.1.0
 */
import { tidy } from "./internal/ops.js"
import * as tf from "@tensorflow/tfjs"
import { averageLoss } from "./Aggregation.js"
import { doubleEntropy } from "./Entropy.js"
import { klPenalty, type KlPenalty } from "./Kl.js"
import { perceptionKl, type PerceptionKlConfig } from "./PerceptionKl.js"
import { policyLoss, type PolicyLossConfig } from "./PolicyLoss.js"
import { discountRatio } from "./Schedule.js"

/**
 * Every hyperparameter of the actor loss, under the reference's names (camelCase).
 *
 * @category configuration
 */
export interface LossConfig extends PolicyLossConfig, PerceptionKlConfig {
  /** Add β·KL(π_θ ‖ π_ref) as a loss term (needs `refLogProbs`). */
  readonly useKlLoss: boolean
  readonly klPenalty: KlPenalty
  /** β. */
  readonly klCoef: number
  /** PAPO on. With `recomputeMaskedLogProbs`, also gates the masked branch. */
  readonly useKlPrcp: boolean
  /** γ as configured: the reference value for the annealing discount. */
  readonly klPrcpCoef: number
  readonly useAugEntropyLoss: boolean
  /** η2. */
  readonly augEntropyLossCoef: number
  readonly useOriEntropyLoss: boolean
  /** η1. */
  readonly oriEntropyLossCoef: number
  /** The reference's `RECOMPUTE_AUG_LOG_PROBS`: the masked log-probs carry a gradient. */
  readonly recomputeMaskedLogProbs: boolean
  /** Micro-batches per optimizer step: the loss is divided by it. */
  readonly gradientAccumulation: number
}

/**
 * One micro-batch; tensors are `[B, T]`.
 *
 * @category models
 */
export interface LossInput {
  readonly logProbs: tf.Tensor
  readonly oldLogProbs: tf.Tensor
  readonly advantages: tf.Tensor
  readonly responseMask: tf.Tensor
  /** The frozen reference model's log-probs; null or absent without a reference model. */
  readonly refLogProbs?: tf.Tensor | null
  /** The old policy's log-probs with the masked image; null or absent without the PAPO branch. */
  readonly maskedLogProbs?: tf.Tensor | null
  /** Per-row KL_prcp weight `[B]` (1 in the reference). */
  readonly klPrcpWeighting?: tf.Tensor | null
  /** γ stored in the batch by the schedule; default `config.klPrcpCoef`. */
  readonly klPrcpCoef?: number
}

/**
 * The loss to differentiate, the logged `actor/*` metrics (reference names, scalar tensors), and the
 * separate terms.
 *
 * @category models
 */
export interface LossOutput {
  /** `pgLoss / gradientAccumulation`. */
  readonly loss: tf.Scalar
  /** The composed loss before the division: `actor/pg_loss`. */
  readonly pgLoss: tf.Scalar
  readonly metrics: Readonly<Record<string, tf.Scalar>>
  readonly components: {
    readonly pgSurrogateLoss: tf.Scalar
    readonly klLoss: tf.Scalar | null
    readonly klPrcpLoss: tf.Scalar | null
    readonly entropyLoss: tf.Scalar
    readonly augEntropyLoss: tf.Scalar | null
    readonly discountRatio: number
  }
}

/**
 * The total actor loss (see the module doc).
 *
 * @example
 * const out = papoLoss({ logProbs, oldLogProbs, advantages, responseMask, refLogProbs, maskedLogProbs }, presets["papo-g"])
 * out.metrics["actor/kl_prcp_loss"] // => the negated KL_prcp, as the reference logs it
 *
 * @category losses
 */
export const papoLoss = (input: LossInput, config: LossConfig): LossOutput =>
  tidy(() => {
    if (!(Number.isInteger(config.gradientAccumulation) && config.gradientAccumulation >= 1)) {
      throw new Error(`Error in papoLoss: gradientAccumulation must be an integer ≥ 1, got ${config.gradientAccumulation}`)
    }
    const { logProbs, responseMask } = input
    const pg = policyLoss(input, config)
    let pgLoss = pg.pgLoss
    const metrics: Record<string, tf.Scalar> = {}

    let klLoss: tf.Scalar | null = null
    if (config.useKlLoss && input.refLogProbs != null) {
      klLoss = averageLoss(klPenalty(logProbs, input.refLogProbs, config.klPenalty), responseMask, config.lossAggMode)
      pgLoss = tf.add(pgLoss, tf.mul(config.klCoef, klLoss))
      metrics["actor/kl_loss"] = klLoss
      metrics["actor/kl_coef"] = tf.scalar(config.klCoef)
    }

    const maskedBranch = input.maskedLogProbs != null && (!config.recomputeMaskedLogProbs || config.useKlPrcp)
    const coef = input.klPrcpCoef ?? config.klPrcpCoef
    const disc = maskedBranch ? discountRatio(coef, config.klPrcpCoef) : 1
    let klPrcpLoss: tf.Scalar | null = null
    if (maskedBranch) {
      const prcp = perceptionKl(
        {
          logProbs,
          maskedLogProbs: input.maskedLogProbs!,
          responseMask,
          coef,
          ...(input.klPrcpWeighting != null ? { weighting: input.klPrcpWeighting } : {})
        },
        config
      )
      klPrcpLoss = prcp.klPrcpLoss
      pgLoss = tf.add(pgLoss, prcp.loss)
      metrics["actor/kl_prcp_loss"] = prcp.metrics["actor/kl_prcp_loss"]
      metrics["actor/kl_prcp_coef"] = tf.scalar(coef)
    }
    const entropy = doubleEntropy(
      { logProbs, maskedLogProbs: maskedBranch ? input.maskedLogProbs! : null, responseMask, discountRatio: disc },
      config
    )
    pgLoss = tf.add(pgLoss, entropy.loss)
    Object.assign(metrics, entropy.metrics)

    metrics["actor/pg_loss"] = pgLoss
    metrics["actor/pg_clipfrac_higher"] = pg.metrics.pg_clipfrac_higher
    metrics["actor/pg_clipfrac_lower"] = pg.metrics.pg_clipfrac_lower
    metrics["actor/entropy_loss"] = pg.metrics.entropy_loss
    metrics["actor/ppo_kl"] = pg.metrics.ppo_kl
    return {
      loss: tf.div(pgLoss, config.gradientAccumulation),
      pgLoss,
      metrics,
      components: {
        pgSurrogateLoss: pg.pgLoss,
        klLoss,
        klPrcpLoss,
        entropyLoss: entropy.entropyLoss,
        augEntropyLoss: entropy.augEntropyLoss,
        discountRatio: disc
      }
    }
  })

const base: LossConfig = {
  clipRatioLow: 0.2,
  clipRatioHigh: 0.3, // the reference default; the paper says clip-higher is used everywhere
  clipRatioDual: 3, // always on in the reference (ActorConfig.clip_ratio_dual), not mentioned in the paper
  lossAggMode: "token", // every released config, GRPO included (the paper's Eq. 1 is seq-mean)
  useKlLoss: true,
  klPenalty: "low_var_kl",
  klCoef: 0.01, // β, fixed controller
  useKlPrcp: false,
  klPrcpPenalty: "low_var_kl",
  klPrcpCoef: 0.02,
  useKlPrcpClipping: false,
  klPrcpClipping: 0.2,
  useKlPrcpTokenLevelMask: false,
  klPrcpTokenLevelMaskTopP: 0.2,
  useAugEntropyLoss: false,
  augEntropyLossCoef: 0.03,
  useOriEntropyLoss: false,
  oriEntropyLossCoef: 0.03,
  recomputeMaskedLogProbs: false,
  gradientAccumulation: 1
}

/**
 * The named variants. When PAPO is on, the trainer must also pass `maskedLogProbs`; without a reference
 * KL, it need not compute `refLogProbs`.
 *
 * @category models
 */
export type PresetName = "grpo" | "dapo" | "papo-g" | "papo-g-7b" | "papo-d" | "grpo-no-kl-ref" | "papo-g-no-kl-ref"

/**
 * The paper's Table 1 and Table 8 loss settings, as in the official scripts:
 * - `grpo`: clip 0.2/0.3, dual clip 3, token-mean, k3 reference KL with β = 0.01.
 * - `dapo`: clip 0.2/0.28, no reference KL (dynamic sampling is a trainer setting).
 * - `papo-g`: GRPO + KL_prcp with γ = 0.02 (3B: no Double Entropy).
 * - `papo-g-7b`: γ = 0.02 with Double Entropy η1 = η2 = 0.05 (without it, 7B collapses at γ = 0.02).
 * - `papo-d`: DAPO + γ = 0.01 + Double Entropy 0.03.
 * - `grpo-no-kl-ref`, `papo-g-no-kl-ref` (Table 8): no reference KL; PAPO with γ = 0.01 and Double Entropy 0.03.
 *
 * @category configuration
 */
export const presets: Readonly<Record<PresetName, LossConfig>> = {
  grpo: base,
  dapo: { ...base, clipRatioHigh: 0.28, useKlLoss: false },
  "papo-g": { ...base, useKlPrcp: true, klPrcpCoef: 0.02 },
  "papo-g-7b": {
    ...base,
    useKlPrcp: true,
    klPrcpCoef: 0.02,
    useAugEntropyLoss: true,
    augEntropyLossCoef: 0.05,
    useOriEntropyLoss: true,
    oriEntropyLossCoef: 0.05
  },
  "papo-d": {
    ...base,
    clipRatioHigh: 0.28,
    useKlLoss: false,
    useKlPrcp: true,
    klPrcpCoef: 0.01,
    useAugEntropyLoss: true,
    useOriEntropyLoss: true
  },
  "grpo-no-kl-ref": { ...base, useKlLoss: false },
  "papo-g-no-kl-ref": {
    ...base,
    useKlLoss: false,
    useKlPrcp: true,
    klPrcpCoef: 0.01,
    useAugEntropyLoss: true,
    useOriEntropyLoss: true
  }
}
