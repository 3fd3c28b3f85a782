/**
 * Log-probs of sampled tokens, PAPO's entropy estimates, and the Double Entropy loss.
 *
 * PAPO's "entropy" is the Monte-Carlo estimate −masked_mean(ℓ): the mean negative log-prob of the
 * **sampled** tokens, not the full-vocabulary entropy (which {@link trueEntropy} gives, for contrast).
 *
 * Double Entropy (`dp_actor.py::update_policy`), always token-mean whatever the loss mode:
 *
 *     entropy_loss     = −masked_mean(ℓ)          H[π_θ], with gradient
 *     aug_entropy_loss = −masked_mean(a)          H[π_θ^mask]; a is detached in the reference, so no gradient
 *     term = [useAug]·η2·disc·aug_entropy_loss + [useOri]·η1·disc·entropy_loss
 *
 * The term is **added** to the loss, so minimizing lowers both entropies (the paper's text; its Eq. 2
 * has the opposite sign). `disc` is the annealing discount of the perception coefficient (see Schedule).
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { maskedMean } from "./Aggregation.js"
import { assertRank, assertSameShape, stopGradient, tidy } from "./internal/ops.js"

/**
 * `log_softmax(logits / temperature)[tokenIds]`: `[B, T, V]`, `[B, T]` → `[B, T]`.
 *
 * Gathers with a one-hot product instead of `tf.gather`, whose gradient kernel (`UnsortedSegmentSum`)
 * the wasm backend lacks. The gradient flows to the raw logits, 1/temperature included.
 *
 * @example
 * logProbsFromLogits(tf.zeros([1, 1, 4]), tf.tensor2d([[2]], [1, 1], "int32"), 1).arraySync() // => [[≈ -1.386]]
 *
 * @category math
 */
export const logProbsFromLogits = (logits: tf.Tensor, tokenIds: tf.Tensor, temperature = 1): tf.Tensor =>
  tidy(() => {
    assertRank("logProbsFromLogits", "logits", logits, 3)
    assertRank("logProbsFromLogits", "tokenIds", tokenIds, 2)
    const [b, t, v] = logits.shape as [number, number, number]
    if (tokenIds.shape[0] !== b || tokenIds.shape[1] !== t) {
      throw new Error(
        `Error in logProbsFromLogits: tokenIds has shape [${tokenIds.shape.join(", ")}] but logits has shape [${logits.shape.join(", ")}]`
      )
    }
    if (!(temperature > 0)) throw new Error(`Error in logProbsFromLogits: temperature must be > 0, got ${temperature}`)
    const logp = tf.logSoftmax(temperature === 1 ? logits : tf.div(logits, temperature)) // (B, T, V)
    const oneHot = tf.oneHot(tf.cast(tokenIds, "int32"), v) // (B, T, V)
    return tf.sum(tf.mul(logp, oneHot), -1) // (B, T)
  })

/**
 * The full-vocabulary entropy −Σ_v p log p of `softmax(logits / temperature)`: `[..., V]` → `[...]`.
 * Not what PAPO optimizes; offered for monitoring and for contrast.
 *
 * @example
 * trueEntropy(tf.zeros([2]), 1).arraySync() // => ≈ 0.693
 *
 * @category math
 */
export const trueEntropy = (logits: tf.Tensor, temperature = 1): tf.Tensor =>
  tidy(() => {
    const logp = tf.logSoftmax(temperature === 1 ? logits : tf.div(logits, temperature))
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1))
  })

/**
 * Inputs of {@link doubleEntropy}; tensors are `[B, T]`.
 *
 * @category models
 */
export interface DoubleEntropyInput {
  readonly logProbs: tf.Tensor
  /** a_t: log-probs under the masked image; absent when there is no masked branch (then only the η1 term applies). */
  readonly maskedLogProbs?: tf.Tensor | null
  readonly responseMask: tf.Tensor
  /** The annealing discount γ_k / γ (1 with a fixed schedule). */
  readonly discountRatio: number
}

/**
 * Hyperparameters of {@link doubleEntropy}, under the reference's names.
 *
 * @category configuration
 */
export interface DoubleEntropyConfig {
  readonly useAugEntropyLoss: boolean
  readonly augEntropyLossCoef: number
  readonly useOriEntropyLoss: boolean
  readonly oriEntropyLossCoef: number
  /** Let the masked term backpropagate (the reference's `RECOMPUTE_AUG_LOG_PROBS`). Default false. */
  readonly recomputeMaskedLogProbs?: boolean
}

/**
 * The Double Entropy term and its metrics (see the module doc). Metric keys are the reference's:
 * `actor/kl_prcp_coef_annealing_discount`, `actor/aug_entropy_loss`, `actor/aug_entropy_loss_coef` whenever
 * masked log-probs are given (even with the η2 term off, as the reference logs them), and
 * `actor/ori_entropy_loss`, `actor/ori_entropy_loss_coef` when the original-image term is on.
 *
 * @category losses
 */
export const doubleEntropy = (
  input: DoubleEntropyInput,
  config: DoubleEntropyConfig
): {
  readonly loss: tf.Scalar
  readonly entropyLoss: tf.Scalar
  readonly augEntropyLoss: tf.Scalar | null
  readonly metrics: Readonly<Record<string, tf.Scalar>>
} =>
  tidy(() => {
    const { logProbs, responseMask, discountRatio } = input
    assertSameShape("doubleEntropy", { logProbs, responseMask })
    const entropyLoss = tf.neg(maskedMean(logProbs, responseMask))
    let loss: tf.Scalar = tf.scalar(0)
    let augEntropyLoss: tf.Scalar | null = null
    const metrics: Record<string, tf.Scalar> = {}
    if (input.maskedLogProbs != null) {
      assertSameShape("doubleEntropy", { logProbs, maskedLogProbs: input.maskedLogProbs })
      const masked = config.recomputeMaskedLogProbs === true ? input.maskedLogProbs : stopGradient(input.maskedLogProbs)
      augEntropyLoss = tf.neg(maskedMean(masked, responseMask))
      metrics["actor/kl_prcp_coef_annealing_discount"] = tf.scalar(discountRatio)
      metrics["actor/aug_entropy_loss"] = augEntropyLoss
      metrics["actor/aug_entropy_loss_coef"] = tf.scalar(config.augEntropyLossCoef)
      if (config.useAugEntropyLoss) loss = tf.add(loss, tf.mul(config.augEntropyLossCoef * discountRatio, augEntropyLoss))
    }
    if (config.useOriEntropyLoss) {
      loss = tf.add(loss, tf.mul(config.oriEntropyLossCoef * discountRatio, entropyLoss))
      metrics["actor/ori_entropy_loss"] = entropyLoss
      metrics["actor/ori_entropy_loss_coef"] = tf.scalar(config.oriEntropyLossCoef)
    }
    return { loss, entropyLoss, augEntropyLoss, metrics }
  })
