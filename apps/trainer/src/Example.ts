/**
 * One question over one image, whatever its source (a built-in task or a user's JSONL file), and the
 * classification of a wrong answer as a perception or a reasoning error.
 *
 * @since 0.1.0
 */

/**
 * A grayscale or color image, row-major `height × width × channels`, values in [0, 1].
 *
 * @category models
 */
export interface Image {
  readonly height: number
  readonly width: number
  readonly channels: number
  readonly data: Float32Array
}

/**
 * What the image shows, for classifying errors: the values a correct reading gives, in the order the
 * gold trace states them (digits left to right; shape counts).
 *
 * @category models
 */
export interface Perceived {
  readonly values: ReadonlyArray<number>
  /** Reads the values a response's `<think>` states; null when it states none in the expected form. */
  readonly parse: (think: string) => ReadonlyArray<number> | null
  /** The values the question's text suggests (a cue's digit), when it suggests any: stating them where the image shows others is following the prior. */
  readonly prior?: ReadonlyArray<number> | undefined
}

/**
 * A question, its image and its ground truth. `id` is stable across runs (the group id of its rollouts).
 *
 * @category models
 */
export interface Example {
  readonly id: string
  readonly image: Image
  readonly problem: string
  /** The ground truth the verifier compares the boxed answer with. */
  readonly answer: string
  /** A gold response in the paper's format, for SFT; absent for user data without one. */
  readonly trace?: string | undefined
  /** Evaluation subset: `high` / `low` vision dependency for the built-in tasks, else `all`. */
  readonly subset: string
  readonly perceived?: Perceived | undefined
  /** Where the image came from (MNIST image ids, file paths), for provenance and split checks. */
  readonly sources?: ReadonlyArray<string> | undefined
}

/**
 * How a graded response turned out. Wrong answers are split by what the thinking states it saw: the
 * image's values (`reasoning`: the computation went wrong), the values the text suggests where the image
 * shows others (`prior`: it followed the language prior), other values (`perception`); `format` when it
 * states nothing readable.
 *
 * @category models
 */
export type Outcome = "correct" | "prior" | "perception" | "reasoning" | "format" | "unclassified"

/**
 * The thinking of a response: the text between `<think>` and `</think>`, or null.
 *
 * @category verification
 */
export const thinkOf = (response: string): string | null => {
  const m = /<think>([\s\S]*?)<\/think>/.exec(response)
  return m ? m[1]! : null
}

/**
 * Classifies one graded response.
 *
 * @example
 * classify(digitExample, "<think>7+3=10</think>\\boxed{10}", false) // => "perception" (the image showed 7 and 5)
 *
 * @category verification
 */
export const classify = (example: Example, response: string, correct: boolean): Outcome => {
  if (correct) return "correct"
  if (example.perceived === undefined) return "unclassified"
  const think = thinkOf(response)
  const seen = think === null ? null : example.perceived.parse(think)
  if (seen === null) return "format"
  const same = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((v, i) => v === b[i])
  const { values, prior } = example.perceived
  if (same(seen, values)) return "reasoning"
  return prior !== undefined && same(seen, prior) ? "prior" : "perception"
}

/**
 * Every outcome, in the order tables show them.
 *
 * @category models
 */
export const outcomes: ReadonlyArray<Outcome> = ["correct", "prior", "perception", "reasoning", "format", "unclassified"]
