/**
 * Stage 7 of a step, the experience: per-token log-probs of the batch's responses under θ_old on the original
 * images (`old`) and on the masked images (`masked`), and under the frozen reference (`ref`), each `[N, T]`,
 * without gradient. The masked pass runs for PAPO and, with `trainer.monitorPerception`, for every method (then
 * only for the logged perception metrics); the reference pass only with a reference KL.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Config } from "./Config.js"
import { timed, type Timing } from "./Metrics.js"
import type { Rollouts } from "./Rollout.js"
import * as Session from "./Session.js"

/**
 * The no-grad log-probs of a batch, `[N, T]` each (null where the pass does not run).
 *
 * @category models
 */
export interface Experience {
  readonly old: Float32Array
  readonly masked: Float32Array | null
  readonly ref: Float32Array | null
}

/**
 * Computes the {@link Experience} of a batch, `microBatchSizePerDeviceForExperience` rows at a time (split
 * between the threads with a worker replica), timing each pass as `old`, `aug` and `ref`.
 *
 * @example
 * const exp = yield* experience(session, config, batch, timing)
 * exp.old.length // => batch.rows.n * batch.rows.responseLength
 *
 * @category math
 */
export const experience = (session: Session.Session, config: Config, batch: Rollouts, timing: Timing): Effect.Effect<Experience> =>
  Effect.gen(function*() {
    const opts = { temperature: config.worker.rollout.temperature, microBatch: config.worker.actor.microBatchSizePerDeviceForExperience }
    // Forward passes on rows the rollout built: a throw is a bug, a defect.
    const pass = (model: "policy" | "reference", images?: Float32Array) =>
      Effect.promise(() => Session.logProbsOf(session, model, batch.rows, images === undefined ? opts : { ...opts, images }))
    const old = yield* pass("policy").pipe(timed(timing, "old"))
    const masked = config.algorithm.useKlPrcp || config.trainer.monitorPerception
      ? yield* pass("policy", Session.stackImages(batch.maskedImages, config.worker.rollout.n)).pipe(timed(timing, "aug"))
      : null
    const ref = config.algorithm.useKlLoss && session.reference !== null ? yield* pass("reference").pipe(timed(timing, "ref")) : null
    return { old, masked, ref }
  })
