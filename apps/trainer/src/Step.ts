/**
 * One training step of GRPO / DAPO / PAPO-G / PAPO-D, in the order of the reference's `RayPPOTrainer.fit`
 * (papo-spec §1), each stage in its own module:
 *
 *     sample prompts → one mask per prompt → roll out G per prompt → reward          (Rollout)
 *       → [DAPO: dynamic sampling: more rounds until enough groups have mixed rewards]
 *       → advantages                                                                (@papo/loss Advantage)
 *       → experience: old / masked / reference log-probs, no gradient               (Experience)
 *       → PPO mini-batch updates with `PapoLoss.papoLoss` at this step's γ         (Update)
 *       → metrics                                                                  (Metrics)
 *
 * The step is an Effect: rollouts, log-prob passes and updates wait for the worker replica (when there is
 * one), and grading goes through the {@link Verifier} service. Tensor math stays inside the stages' synchronous
 * functions. Rows are prompt-major, N = B·G rows of T response tokens.
 *
 * @since 0.1.0
 */
import { Advantage, DynamicSampling, Schedule } from "@papo/loss"
import type { Mt19937, Xoshiro128 } from "@papo/random"
// Named in trainStep's declared type: the Verifier it needs carries a `Grader.Mode`.
import type { Grader } from "@papo/reward"
import { Data, Effect } from "effect"
import type { Config } from "./Config.js"
import type { Example } from "./Example.js"
import * as Experience from "./Experience.js"
import * as Metrics from "./Metrics.js"
import * as Rollout from "./Rollout.js"
import * as Session from "./Session.js"
import * as Update from "./Update.js"
import type { Verifier } from "./Verifier.js"

/**
 * Everything that changes from step to step besides the weights; all of it goes into a checkpoint.
 *
 * @category models
 */
export interface StepState {
  /** Steps completed. */
  readonly step: number
  /** Prompts read from the training order so far. */
  readonly cursor: number
  readonly samplingRng: Xoshiro128
  readonly maskRng: Mt19937
  /** Non-finite losses or gradients in a row. */
  readonly nonFiniteStreak: number
}

/**
 * What a step produced: the next state, the metrics line and the batch (for sample logging).
 *
 * @category models
 */
export interface StepOutput {
  readonly state: StepState
  readonly metrics: Record<string, number>
  readonly batch: Rollout.Rollouts
  /** [N] */
  readonly advantages: Float64Array
  readonly nonFinite: number
}

/**
 * DAPO's dynamic sampling could not fill a batch within `maxTryMakeBatch` generation rounds (the reference
 * raises the same).
 *
 * @category errors
 */
export class DynamicSamplingError extends Data.TaggedError("DynamicSamplingError")<{
  readonly numTries: number
  readonly maxTryMakeBatch: number
}> {
  override get message(): string {
    return `dynamic sampling found too few prompts with mixed outcomes after ${this.numTries} chunks (algorithm.maxTryMakeBatch = ${this.maxTryMakeBatch}); lower data.rolloutBatchSize or raise maxTryMakeBatch`
  }
}

/**
 * γ of step `step` (1-based): the configured KL_prcp coefficient, or the annealing schedule's value.
 *
 * @example
 * klPrcpCoefAt(papoG, 10) // => 0.02 (fixed schedule)
 *
 * @category configuration
 */
export const klPrcpCoefAt = (config: Config, step: number): number => {
  const a = config.algorithm
  const schedule: Schedule.KlPrcpSchedule = a.klPrcpSchedule === "fixed"
    ? { kind: "fixed", klPrcpCoef: a.klPrcpCoef }
    : {
      kind: "annealing",
      klPrcpCoef: a.klPrcpCoef,
      startValue: a.klPrcpStartValue,
      endValue: a.klPrcpEndValue,
      annealingRatio: a.klPrcpAnnealingRatio,
      trainingSteps: config.trainer.maxSteps
    }
  return Schedule.klPrcpCoefAt(schedule, step).coef
}

/**
 * One training step (see the module doc). Advances the generators in `state` and returns the next state.
 *
 * @example
 * const out = yield* trainStep(session, config, train, state, classify)
 * out.state.step // => state.step + 1
 *
 * @category math
 */
export const trainStep = Effect.fn("Step.trainStep")(function*(
  session: Session.Session,
  config: Config,
  train: ReadonlyArray<Example>,
  state: StepState,
  classify: (example: Example, response: string, correct: boolean) => string
) {
  const t0 = performance.now()
  const timing: Metrics.Timing = {}
  const G = config.worker.rollout.n
  const stepNo = state.step + 1
  let cursor = state.cursor
  const chunkSize = config.algorithm.onlineFiltering ? config.data.miniRolloutBatchSize ?? config.data.rolloutBatchSize : config.data.rolloutBatchSize

  // 1–4, one generation round of B prompts: sample → mask → roll out → reward.
  const generate = Effect.fnUntraced(function*(tag: string) {
    const examples = Rollout.samplePrompts(train, cursor, chunkSize, config.data.seed) // [B]
    cursor += chunkSize
    const images = Session.stackImages(examples.map((e) => e.image.data)) // [B, H, W, C]
    const maskedImages = yield* Effect.sync(() => Rollout.maskPrompts(session, images, Rollout.maskingConfig(config), state.maskRng))
      .pipe(Metrics.timed(timing, "mask")) // [B] × [H·W·C]
    const rollout = yield* Rollout.rollOut(session, config, examples, images, config.worker.rollout, state.samplingRng)
      .pipe(Metrics.timed(timing, "gen")) // rows [N, …]
    const grades = yield* Rollout.grade(rollout.responses, examples, G).pipe(Metrics.timed(timing, "reward")) // [N]
    const uids = rollout.responses.map((_, r) => `${tag}:${Math.floor(r / G)}`) // [N]
    return { examples, maskedImages, ...rollout, grades, uids } satisfies Rollout.Rollouts
  })

  // [DAPO] dynamic sampling: generate rounds until enough groups have mixed rewards, keep those.
  const chunks: Array<Rollout.Rollouts> = [yield* generate(`${stepNo}.0`)]
  let batch = chunks[0]!
  if (config.algorithm.onlineFiltering) {
    const a = config.algorithm
    const dsConfig = { filterLow: a.filterLow, filterHigh: a.filterHigh, n: G, rolloutBatchSize: config.data.rolloutBatchSize, maxTryMakeBatch: a.maxTryMakeBatch }
    for (;;) {
      const made = DynamicSampling.makeBatch(chunks.map((c) => ({ uids: c.uids, filterScores: c.grades.map((g) => g[a.filterKey]) })), dsConfig)
      if (made._tag === "Full") {
        const parts = chunks.map((c, ci) => Rollout.selectRows(c, made.finalBatch.filter(([k]) => k === ci).map(([, i]) => i), G))
        batch = Rollout.concatRollouts(parts.filter((p) => p.rows.n > 0))
        break
      }
      if (made._tag === "OutOfTries") return yield* new DynamicSamplingError({ numTries: made.numTries, maxTryMakeBatch: a.maxTryMakeBatch })
      chunks.push(yield* generate(`${stepNo}.${chunks.length}`))
    }
  }

  // 5: advantages, group-normalized outcome rewards. [N]
  const scores = batch.grades.map((g) => g.overall)
  const advantages = yield* Effect.sync(() => Advantage.groupAdvantages(scores, batch.uids, { scaling: config.algorithm.advScaling }))
    .pipe(Metrics.timed(timing, "adv"))

  // 6: experience, no gradient: old / masked / reference log-probs, [N, T] each.
  const exp = yield* Experience.experience(session, config, batch, timing)

  // 7: PPO mini-batch updates with the PAPO loss at this step's γ.
  const update = yield* Update.updateActor(session, config, batch, exp, advantages, klPrcpCoefAt(config, stepNo))
    .pipe(Metrics.timed(timing, "update_actor"))

  // 8: metrics.
  const T = batch.rows.responseLength
  const monitor = exp.masked !== null
    ? Metrics.perceptionMonitor(exp.old, exp.masked, batch.rows.responseMask, [batch.rows.n, T], config.worker.actor.lossAvgMode)
    : {}
  const stepTime = (performance.now() - t0) / 1000
  const tokens = Array.from(batch.lengths).reduce((a, b) => a + b, 0)
  const metrics: Record<string, number> = {
    ...monitor,
    ...update.metrics,
    ...Metrics.batchMetrics(batch, session.tokenizer.eosId, (r) => classify(batch.examples[Math.floor(r / G)]!, batch.responses[r]!, batch.grades[r]!.accuracy === 1)),
    frac_reward_zero_std: Metrics.fracRewardZeroStd(scores, batch.uids),
    "actor/non_finite_updates": update.nonFinite,
    "dynamic_sampling/num_chunks": chunks.length,
    "batch/num_prompts": batch.examples.length,
    ...timing,
    "timing_s/step": stepTime,
    "perf/tokens_per_s": tokens / stepTime
  }
  const allFailed = update.nonFinite === update.updates
  return {
    state: {
      step: stepNo,
      cursor,
      samplingRng: state.samplingRng,
      maskRng: state.maskRng,
      nonFiniteStreak: allFailed ? state.nonFiniteStreak + 1 : 0
    },
    metrics,
    batch,
    advantages,
    nonFinite: update.nonFinite
  } satisfies StepOutput
})
