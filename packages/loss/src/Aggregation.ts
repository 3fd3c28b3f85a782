/**
 * Loss aggregation: how a `[B, T]` per-token loss becomes the scalar that is differentiated.
 *
 * The reference (EasyR1 / PAPO `core_algos.py::average_loss`) has two modes, `token` and `seq`; verl has
 * four names for the same family. Every mode reads only the positions where the mask is 1, so whatever
 * sits in padding never changes the result or its gradient.
 *
 * | mode | formula | bias |
 * |---|---|---|
 * | `token` = `token-mean` | Σ(v·m) / (Σm + 1e-8) | every token weighs the same; long responses weigh more. Used by every released PAPO config, GRPO included. |
 * | `seq` = `seq-mean-token-mean` | mean_i[Σ_t v·m / (Σ_t m + 1e-8)] | the paper's Eq. 1–2 (1/G Σ_i 1/\|o_i\| Σ_t): short responses weigh more per token. A fully masked row adds 0 but counts in the mean. |
 * | `seq-mean-token-sum` | mean_i Σ_t v·m | sequence sums: long responses weigh more. |
 * | `seq-mean-token-sum-norm` | Σ(v·m) / L | Dr. GRPO: divide by a constant L (default: the padded length T, as verl does; pass `normLength` to make it independent of padding). |
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { asFloat, assertRank, assertSameShape, tidy } from "./internal/ops.js"

/**
 * The aggregation modes, under the reference's names and verl's.
 *
 * @category models
 */
export type LossAggMode = "token" | "seq" | "token-mean" | "seq-mean-token-mean" | "seq-mean-token-sum" | "seq-mean-token-sum-norm"

/**
 * Every accepted {@link LossAggMode}, for validating a config.
 *
 * @category constructors
 */
export const lossAggModes: ReadonlyArray<LossAggMode> = [
  "token",
  "seq",
  "token-mean",
  "seq-mean-token-mean",
  "seq-mean-token-sum",
  "seq-mean-token-sum-norm"
]

/**
 * The reference's two modes, under the names of EasyR1's `loss_avg_mode` (the trainer's config accepts
 * these; the others are verl's names for the same family).
 *
 * @example
 * referenceLossAggModes // => ["token", "seq"]
 *
 * @category constructors
 */
export const referenceLossAggModes = ["token", "seq"] as const satisfies ReadonlyArray<LossAggMode>

/**
 * The reference's epsilon in every masked denominator (the default of the `eps` options).
 *
 * @category constructors
 */
export const EPS = 1e-8

/**
 * `Σ(values·mask) / (Σmask + 1e-8)` over the whole array (the reference's `VF.masked_mean`).
 *
 * @example
 * maskedMean(tf.tensor2d([[1, 9]]), tf.tensor2d([[1, 0]])).arraySync() // => ≈ 1
 *
 * @category math
 */
export const maskedMean = (values: tf.Tensor, mask: tf.Tensor, eps = EPS): tf.Scalar =>
  tidy(() => {
    assertSameShape("maskedMean", { values, mask })
    const m = asFloat(mask)
    // where() rather than values·mask: junk in padding (even Inf or NaN) cannot reach the result.
    return tf.div(tf.sum(tf.where(tf.cast(m, "bool"), values, tf.zerosLike(values))), tf.add(tf.sum(m), eps))
  })

/**
 * Aggregates a `[B, T]` per-token quantity into a scalar (see the module table).
 *
 * @example
 * const v = tf.tensor2d([[1, 2, 3], [4, 0, 0]]), m = tf.tensor2d([[1, 1, 1], [1, 0, 0]])
 * averageLoss(v, m, "token").arraySync() // => ≈ 2.5
 * averageLoss(v, m, "seq").arraySync() // => ≈ 3
 *
 * @category losses
 */
export const averageLoss = (
  values: tf.Tensor,
  mask: tf.Tensor,
  mode: LossAggMode,
  options: { readonly normLength?: number; readonly eps?: number } = {}
): tf.Scalar =>
  tidy(() => {
    assertRank("averageLoss", "values", values, 2)
    assertSameShape("averageLoss", { values, mask })
    const m = asFloat(mask)
    const eps = options.eps ?? EPS
    const masked = tf.where(tf.cast(m, "bool"), values, tf.zerosLike(values))
    switch (mode) {
      case "token":
      case "token-mean":
        return maskedMean(values, m, eps)
      case "seq":
      case "seq-mean-token-mean":
        return tf.mean(tf.div(tf.sum(masked, 1), tf.add(tf.sum(m, 1), eps)))
      case "seq-mean-token-sum":
        return tf.mean(tf.sum(masked, 1))
      case "seq-mean-token-sum-norm": {
        const length = options.normLength ?? values.shape[1]!
        if (!(length > 0)) throw new Error(`Error in averageLoss: normLength must be > 0, got ${length}`)
        return tf.div(tf.sum(masked), length)
      }
      default:
        throw new Error(`Error in averageLoss: unknown loss_avg_mode "${String(mode)}"; expected one of ${lossAggModes.join(", ")}`)
    }
  })
