/**
 * The verifier as a service: grades responses against ground truths with `@papo/reward`'s MathRuler
 * (PAPO's `compute_score`: overall = 0.9·accuracy + 0.1·format) and says what each outcome was.
 *
 * @since 0.1.0
 */
import { MathRuler } from "@papo/reward"
import { Context, Effect, Layer } from "effect"

/**
 * One graded response. `verdict`: `correct`, `incorrect`, or `no_answer` (no closed `\boxed{}`).
 *
 * @category models
 */
export interface Grade {
  readonly overall: number
  readonly accuracy: number
  readonly format: number
  readonly verdict: "correct" | "incorrect" | "no_answer"
}

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
    /** The verifier's reading of a ground truth; null when it cannot read it (it does not match itself). */
    readonly parseAnswer: (answer: string) => string | null
  }
>()("@papo/trainer/Verifier") {
  /** MathRuler grading in this thread (the responses here are short; a pool costs more than it saves). */
  static readonly mathRuler = Layer.succeed(Verifier, Verifier.of({
    grade: (items) =>
      Effect.sync(() =>
        items.map(({ response, answer }) => {
          const s = MathRuler.computeScore(response, answer)
          const boxed = MathRuler.extractBoxedContent(MathRuler.squeezeTags(response))
          return { ...s, verdict: s.accuracy === 1 ? "correct" : boxed === "None" ? "no_answer" : "incorrect" } as const
        })
      ),
    parseAnswer: (answer) => (answer.trim() !== "" && MathRuler.gradeAnswer(answer, answer) ? answer.trim() : null)
  }))
}
