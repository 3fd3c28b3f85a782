/**
 * Group-normalized outcome advantages: GRPO and DAPO (which the reference implements with identical code,
 * `core_algos.py::compute_grpo_outcome_advantage` / `compute_dapo_outcome_advantage`).
 *
 * For response i in group g(i) with scalar reward R_i:
 *
 *     A_i = (R_i − mean_{g(i)} R) / (std_{g(i)} R + eps)          std unbiased (N − 1), eps outside the sqrt
 *
 * Groups are found by id (the reference's `uid`/`index`), not by position: a batch that was reordered
 * still gets the right groups. A group whose rewards are all equal gets exactly 0. A group of one
 * response has no spread and is an error, as in the reference (`assert len(group) > 1`).
 *
 * Variants users ask for, selected by `scaling`:
 * - `"group-std"` (default, the reference): divide by the group's std.
 * - `"none"` (Dr. GRPO, Liu et al. 2025): no division, A_i = R_i − mean; avoids up-weighting easy or hard groups.
 * - `"batch-std"`: subtract the group mean, divide by the unbiased std of all rewards in the batch
 *   (the "group mean, batch std" of Lite PPO / REINFORCE++-baseline).
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { asFloat, assertRank, assertSameShape } from "./internal/ops.js"

/**
 * How advantages are scaled after the group mean is subtracted.
 *
 * @category models
 */
export type AdvantageScaling = "group-std" | "none" | "batch-std"

/**
 * Every accepted {@link AdvantageScaling}.
 *
 * @category constructors
 */
export const advantageScalings: ReadonlyArray<AdvantageScaling> = ["group-std", "none", "batch-std"]

/**
 * Options of {@link groupAdvantages}.
 *
 * @category models
 */
export interface AdvantageOptions {
  /** Added to the std, outside the sqrt. Reference: 1e-6. */
  readonly eps?: number
  readonly scaling?: AdvantageScaling
}

const unbiasedStd = (xs: ReadonlyArray<number>, mean: number): number =>
  Math.sqrt(xs.reduce((s, x) => s + (x - mean) * (x - mean), 0) / (xs.length - 1))

/**
 * Per-response advantages from per-response scalar rewards and group ids.
 *
 * @example
 * groupAdvantages([1, 0, 0, 1], ["a", "a", "b", "b"]) // => Float64Array [≈0.707, ≈-0.707, ≈-0.707, ≈0.707]
 *
 * @category math
 */
export const groupAdvantages = (
  scores: ArrayLike<number>,
  index: ReadonlyArray<string>,
  options: AdvantageOptions = {}
): Float64Array => {
  const eps = options.eps ?? 1e-6
  const scaling = options.scaling ?? "group-std"
  if (!advantageScalings.includes(scaling)) {
    throw new Error(`Error in groupAdvantages: unknown scaling "${scaling}"; expected one of ${advantageScalings.join(", ")}`)
  }
  if (scores.length !== index.length) {
    throw new Error(`Error in groupAdvantages: ${scores.length} scores but ${index.length} group ids`)
  }
  const groups = new Map<string, Array<number>>()
  index.forEach((id, i) => {
    const g = groups.get(id)
    if (g === undefined) groups.set(id, [i])
    else g.push(i)
  })
  const all = Array.from(scores)
  const batchStd = scaling === "batch-std" && all.length > 1 ? unbiasedStd(all, all.reduce((a, b) => a + b, 0) / all.length) : 0
  const out = new Float64Array(scores.length)
  for (const [id, members] of groups) {
    if (members.length < 2) {
      throw new Error(
        `Error in groupAdvantages: group "${id}" has a single response (row ${members[0]}); group normalization needs at least 2 per group`
      )
    }
    const rs = members.map((i) => scores[i]!)
    if (rs.every((r) => r === rs[0])) continue // all equal: exactly 0 (the float mean need not equal r exactly)
    const mean = rs.reduce((a, b) => a + b, 0) / rs.length
    const scale = scaling === "group-std" ? unbiasedStd(rs, mean) + eps : scaling === "batch-std" ? batchStd + eps : 1
    members.forEach((i, k) => {
      out[i] = (rs[k]! - mean) / scale
    })
  }
  return out
}

/**
 * The reference's full `compute_grpo_outcome_advantage`: sums `tokenLevelRewards` over every position
 * (padding included: the reward manager writes the scalar at `valid_length − 1`), normalizes per group,
 * and broadcasts over the response mask.
 *
 * Returns `advantages` `[B, T]` (= `A_i · mask`; the reference also returns it as `returns`) and the
 * per-response `scores` A_i.
 *
 * @category math
 */
export const tokenAdvantages = (
  tokenLevelRewards: tf.Tensor2D,
  responseMask: tf.Tensor2D,
  index: ReadonlyArray<string>,
  options: AdvantageOptions = {}
): { readonly advantages: tf.Tensor2D; readonly scores: Float64Array } => {
  assertRank("tokenAdvantages", "tokenLevelRewards", tokenLevelRewards, 2)
  assertSameShape("tokenAdvantages", { tokenLevelRewards, responseMask })
  const rewardSums = tf.tidy(() => tf.sum(tokenLevelRewards, 1))
  const sums = rewardSums.dataSync()
  rewardSums.dispose()
  const scores = groupAdvantages(sums, index, options)
  const advantages = tf.tidy(() =>
    tf.mul(tf.tensor2d(Float32Array.from(scores), [scores.length, 1]), asFloat(responseMask))
  ) as tf.Tensor2D
  return { advantages, scores }
}
