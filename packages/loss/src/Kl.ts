/**
 * Per-token KL estimators between the policy and another policy, from the log-probs of the sampled
 * tokens (`core_algos.py::compute_kl`), and a true KL for callers that hold whole distributions.
 *
 * | name (EasyR1) | verl alias | per token | notes |
 * |---|---|---|---|
 * | `kl` | `k1` | ℓ − ℓ_ref | unbiased, can be negative |
 * | `abs` | | \|ℓ − ℓ_ref\| | subgradient 0 at 0, as PyTorch |
 * | `mse` | `k2` | ½(ℓ − ℓ_ref)² | |
 * | `low_var_kl` | `k3` | d = clamp(ℓ_ref − ℓ, −20, 20); clamp(eᵈ − d − 1, −10, 10) | Schulman's k3 with ratio π_ref/π; the gradient is 0 wherever a clamp is active |
 * | `full` | | Σ_t exp(ℓ)·(ℓ − ℓ_ref), one value per row | the reference's `F.kl_div(...).sum(-1)` on per-token log-probs. **This is not a KL divergence**: it sums over time, not over the vocabulary, and can be negative. Kept only for conformance; use {@link fullVocabularyKl} for a real one. |
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { abs, assertSameShape, tidy } from "./internal/ops.js"

/**
 * KL estimator names, EasyR1's and verl's.
 *
 * @category models
 */
export type KlPenalty = "kl" | "k1" | "abs" | "mse" | "k2" | "low_var_kl" | "k3" | "full"

/**
 * The estimators defined per token, for a config that applies them to `[B, T]` log-probs (every
 * {@link KlPenalty} but `full`, which sums over time and is not a KL).
 *
 * @example
 * perTokenKlPenalties.includes("low_var_kl") // => true
 *
 * @category constructors
 */
export const perTokenKlPenalties = ["kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3"] as const

/**
 * Every accepted {@link KlPenalty}.
 *
 * @example
 * klPenalties.at(-1) // => "full"
 *
 * @category constructors
 */
export const klPenalties: ReadonlyArray<KlPenalty> = [...perTokenKlPenalties, "full"]

/**
 * Schulman's k3 with the reference's clamps: d = clamp(other − logProbs, −20, 20),
 * clamp(eᵈ − d − 1, −10, 10). Non-negative; 0 exactly where the two log-probs agree.
 *
 * @example
 * lowVarKl(tf.tensor1d([-1]), tf.tensor1d([-1])).arraySync() // => [0]
 *
 * @category losses
 */
export const lowVarKl = (logProbs: tf.Tensor, other: tf.Tensor): tf.Tensor =>
  tidy(() => {
    const d = tf.clipByValue(tf.sub(other, logProbs), -20, 20)
    // expm1(d) − d is eᵈ − d − 1 without the float32 cancellation that makes the reference's expression
    // slightly negative (−3e-8) for |d| near 1e-8; values agree to ~1e-7, gradients (eᵈ − 1) are identical.
    return tf.clipByValue(tf.sub(tf.expm1(d), d), -10, 10)
  })

/**
 * The per-token KL estimate `compute_kl(logProbs, refLogProbs, penalty)`: `[B, T]`, or `[B]` for `full`.
 * Inputs are float32.
 *
 * @example
 * klPenalty(tf.tensor2d([[-1, -2]]), tf.tensor2d([[-1.5, -2]]), "mse").arraySync() // => [[0.125, 0]]
 *
 * @category losses
 */
export const klPenalty = (logProbs: tf.Tensor, refLogProbs: tf.Tensor, penalty: KlPenalty): tf.Tensor =>
  tidy(() => {
    assertSameShape("klPenalty", { logProbs, refLogProbs })
    switch (penalty) {
      case "kl":
      case "k1":
        return tf.sub(logProbs, refLogProbs)
      case "abs":
        return abs(tf.sub(logProbs, refLogProbs))
      case "mse":
      case "k2":
        return tf.mul(0.5, tf.square(tf.sub(logProbs, refLogProbs)))
      case "low_var_kl":
      case "k3":
        return lowVarKl(logProbs, refLogProbs)
      case "full":
        return tf.sum(tf.mul(tf.exp(logProbs), tf.sub(logProbs, refLogProbs)), -1)
      default:
        throw new Error(`Error in klPenalty: unknown kl_penalty "${String(penalty)}"; expected one of ${klPenalties.join(", ")}`)
    }
  })

/**
 * The true KL(P ‖ Q) = Σ_v p_v (log p_v − log q_v) over the last axis, from two tensors of log-probabilities
 * (or logits, normalized here with log-softmax) over the whole vocabulary: `[..., V]` → `[...]`.
 * Always ≥ 0, and 0 only where the distributions are equal.
 *
 * @example
 * fullVocabularyKl(tf.tensor1d([0, 0]), tf.tensor1d([0, 0])).arraySync() // => 0
 *
 * @category losses
 */
export const fullVocabularyKl = (logitsP: tf.Tensor, logitsQ: tf.Tensor): tf.Tensor =>
  tidy(() => {
    assertSameShape("fullVocabularyKl", { logitsP, logitsQ })
    const logP = tf.logSoftmax(logitsP)
    const logQ = tf.logSoftmax(logitsQ)
    // Clamp at 0: rounding can leave −1e-9 where P = Q.
    return tf.relu(tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), -1))
  })
