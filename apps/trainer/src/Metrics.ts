/**
 * Stage 9 of a step: the metrics line — reward, length, verifier and outcome counts of a batch, the share of
 * groups without signal, the perception monitor at θ_old, and the time of each stage (`timing_s/*`).
 *
 * @since 0.1.0
 */
import { Aggregation, Kl } from "@papo/loss"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import type { Rollouts } from "./Rollout.js"

/**
 * Seconds per stage of a step, keyed `timing_s/<stage>` as the reference logs them.
 *
 * @category models
 */
export type Timing = Record<string, number>

/**
 * Adds the wall time of an Effect (seconds) to `timing["timing_s/" + stage]`: the one timer of a step.
 *
 * @example
 * const timing: Timing = {}
 * yield* Effect.sync(() => advantagesOf(batch)).pipe(timed(timing, "adv"))
 * timing["timing_s/adv"] // => seconds spent
 *
 * @category constructors
 */
export const timed = (timing: Timing, stage: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const t0 = performance.now()
    return Effect.tap(self, () =>
      Effect.sync(() => {
        const key = `timing_s/${stage}`
        timing[key] = (timing[key] ?? 0) + (performance.now() - t0) / 1000
      }))
  })

/**
 * Perception metrics at θ_old from the no-grad passes, for methods whose loss does not log them:
 * `actor/kl_prcp_loss` (−KL_prcp, k3 as in the loss), `actor/ori_entropy_loss` and
 * `actor/aug_entropy_loss` (mean NLL of the sampled tokens on the original / masked image).
 *
 * @example
 * perceptionMonitor(old, old, mask, [n, T], "token")["actor/kl_prcp_loss"] // => 0 (same images, no divergence)
 *
 * @category math
 */
export const perceptionMonitor = (
  old: Float32Array, // [N, T]
  masked: Float32Array, // [N, T]
  responseMask: Float32Array, // [N, T]
  shape: [number, number],
  mode: "token" | "seq"
): Record<string, number> => {
  const values = tf.tidy(() => {
    const l = tf.tensor2d(old, shape)
    const a = tf.tensor2d(masked, shape)
    const m = tf.tensor2d(responseMask, shape)
    return tf.stack([
      tf.neg(Aggregation.averageLoss(Kl.lowVarKl(l, a), m, mode)),
      tf.neg(Aggregation.maskedMean(l, m)),
      tf.neg(Aggregation.maskedMean(a, m))
    ])
  })
  const [kl, ori, aug] = values.dataSync()
  values.dispose()
  return { "actor/kl_prcp_loss": kl!, "actor/ori_entropy_loss": ori!, "actor/aug_entropy_loss": aug! }
}

const mean = (xs: ArrayLike<number>): number => (xs.length === 0 ? 0 : Array.from(xs).reduce((a, b) => a + b, 0) / xs.length)

/**
 * Reward, length, verifier and perception-outcome metrics of a batch (reference names where they exist).
 *
 * @example
 * batchMetrics(batch, eosId, (r) => "correct")["outcome/correct"] // => batch.rows.n
 *
 * @category math
 */
export const batchMetrics = (batch: Rollouts, eosId: number, classify: (row: number) => string): Record<string, number> => {
  const lengths = Array.from(batch.lengths)
  const T = batch.rows.responseLength
  const clipped = (r: number) => batch.lengths[r] === T && batch.rows.responseIds[r * T + T - 1] !== eosId
  const out: Record<string, number> = {
    "reward/overall": mean(batch.grades.map((g) => g.overall)),
    "reward/accuracy": mean(batch.grades.map((g) => g.accuracy)),
    "reward/format": mean(batch.grades.map((g) => g.format)),
    "response_length/mean": mean(lengths),
    "response_length/max": Math.max(...lengths),
    "response_length/min": Math.min(...lengths),
    "response_length/clip_ratio": mean(batch.responses.map((_, r) => (clipped(r) ? 1 : 0)))
  }
  for (const v of ["Correct", "Incorrect", "NoAnswer", "TimedOut", "Invalid"] as const) {
    out[`verifier/${v}`] = batch.grades.filter((g) => g.verdict === v).length
  }
  for (let r = 0; r < batch.rows.n; r++) {
    const k = `outcome/${classify(r)}`
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

/**
 * The share of groups whose rewards are all equal (zero advantage): `frac_reward_zero_std`.
 *
 * @example
 * fracRewardZeroStd([1, 1, 0, 1], ["a", "a", "b", "b"]) // => 0.5
 *
 * @category math
 */
export const fracRewardZeroStd = (scores: ReadonlyArray<number>, uids: ReadonlyArray<string>): number => {
  const groups = new Map<string, Array<number>>()
  uids.forEach((u, i) => groups.set(u, [...(groups.get(u) ?? []), scores[i]!]))
  const all = [...groups.values()]
  return all.filter((g) => g.every((x) => x === g[0])).length / Math.max(1, all.length)
}

