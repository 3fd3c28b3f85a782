/**
 * The verifier as a service: grades responses against ground truths with `@papo/reward` (PAPO's
 * `compute_score`: overall = (1 − w)·accuracy + w·format, w = 0.1) and keeps each verification's outcome
 * (`Correct | Incorrect | NoAnswer | TimedOut | Invalid`) as data. In this thread by default; with
 * `worker.reward.workers > 0`, in `@papo/reward`'s worker pool with a hard time limit per verification.
 *
 * @since 0.1.0
 */
import { Grader, VerifierPool } from "@papo/reward"
import { Context, Effect, Layer } from "effect"

/**
 * One graded response; `verdict` is the outcome's tag.
 *
 * @category models
 */
export interface Grade {
  readonly overall: number
  readonly accuracy: number
  readonly format: number
  readonly verdict: Grader.Outcome["_tag"]
}

/**
 * The reward settings of a config (`worker.reward`).
 *
 * @category configuration
 */
export interface RewardConfig {
  readonly mode: Grader.Mode
  readonly formatWeight: number
  /** 0: grade in this thread; n: a pool of n worker threads. */
  readonly workers: number
  readonly timeoutMs: number
}

const toGrade = (s: Grader.Score): Grade => ({ overall: s.overall, accuracy: s.accuracy, format: s.format, verdict: s.outcome._tag })

/**
 * The verifier service.
 *
 * @category services
 */
export class Verifier extends Context.Service<
  Verifier,
  {
    readonly grade: (
      items: ReadonlyArray<{ readonly response: string; readonly answer: string }>
    ) => Effect.Effect<ReadonlyArray<Grade>>
    /** The verifier's reading of a ground truth; null when it cannot read it (a boxed copy does not grade as correct). */
    readonly parseAnswer: (answer: string) => string | null
    /** The settings it grades with (a run records them, so a report can say which verifier ran). */
    readonly settings: RewardConfig
  }
>()("@papo/trainer/Verifier") {
  /** The layer a reward config describes (the pool is closed when the layer's scope ends). */
  static readonly layer = (config: RewardConfig): Layer.Layer<Verifier> => {
    const options = { mode: config.mode, formatWeight: config.formatWeight }
    const parseAnswer = (answer: string) =>
      answer.trim() !== "" && Grader.grade(`\\boxed{${answer}}`, answer, options)._tag === "Correct" ? answer.trim() : null
    if (config.workers === 0) {
      return Layer.succeed(Verifier, Verifier.of({
        grade: (items) => Effect.sync(() => items.map(({ response, answer }) => toGrade(Grader.score(response, answer, options)))),
        parseAnswer,
        settings: config
      }))
    }
    return Layer.effect(
      Verifier,
      Effect.acquireRelease(
        Effect.sync(() => VerifierPool.create({ size: config.workers, timeoutMs: config.timeoutMs })),
        (pool) => Effect.promise(() => pool.close())
      ).pipe(Effect.map((pool) => Verifier.of({
        grade: (items) =>
          Effect.promise(() => pool.scoreBatch(items.map(({ response, answer }) => ({ response, gold: answer })), options)).pipe(
            Effect.map((scores) => scores.map(toGrade))
          ),
        parseAnswer,
        settings: config
      })))
    )
  }

  /** MathRuler grading in this thread, as the reference. */
  static readonly mathRuler = Verifier.layer({ mode: "mathruler", formatWeight: 0.1, workers: 0, timeoutMs: 5000 })
}
