/**
 * A split of examples from a built-in task or a user's JSONL file, and the seeded order in which
 * training reads them.
 *
 * JSONL records use EasyR1's fields: `images` (one path, or a list of one, relative to the JSONL file),
 * `problem` (an `<image>` placeholder is removed), `answer`; optional `response` (a gold trace for SFT)
 * and `subset` (an evaluation subset name). A malformed line, a missing or corrupt image, or an answer the
 * verifier cannot read is reported with file, line and reason; `onBadRecord` decides whether the load
 * stops at the first one or skips them all (and reports how many and why).
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { dirname, resolve } from "node:path"
import { Data, Effect } from "effect"
import { type Config, defaultConfig } from "./Config.js"
import * as Cued from "./Cued.js"
import * as Digits from "./Digits.js"
import type { Example } from "./Example.js"
import * as Images from "./Images.js"
import * as Rng from "./Rng.js"
import * as Shapes from "./Shapes.js"

/**
 * A record that could not be used: which file, which line (1-based, 0 for the file itself) and why.
 *
 * @category errors
 */
export class DatasetError extends Data.TaggedError("DatasetError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
}> {
  override get message(): string {
    return this.line > 0 ? `${this.file}:${this.line}: ${this.reason}` : `${this.file}: ${this.reason}`
  }
}

/**
 * A loaded split and the records skipped on the way.
 *
 * @category models
 */
export interface Split {
  readonly name: string
  readonly examples: ReadonlyArray<Example>
  readonly skipped: ReadonlyArray<DatasetError>
}

/**
 * What loading a split needs from the config and the model.
 *
 * @category configuration
 */
export interface SplitOptions {
  readonly source: string
  readonly split: "train" | "test"
  readonly size: number
  readonly numDigits: number
  readonly questionTypes: ReadonlyArray<Digits.QuestionType>
  readonly hintRate: number
  readonly testImageShare: number
  readonly seed: number
  readonly onBadRecord: "stop" | "skip"
  /** The cued-digit task's settings (`data.cued`); its defaults when absent. */
  readonly cued?: Config["data"]["cued"] | undefined
  /** The model's input: every image is resized to it. */
  readonly imageShape: Images.ImageShape
  /** The verifier's reading of a ground-truth answer; null when it cannot read it. */
  readonly parseAnswer: (answer: string) => string | null
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Parses one JSONL line into its fields, or says why not.
 *
 * @category constructors
 */
export const parseRecord = (
  text: string,
  parseAnswer: (answer: string) => string | null
): { readonly image: string; readonly problem: string; readonly answer: string; readonly response?: string; readonly subset?: string } | string => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return `malformed JSON (${(e as Error).message})`
  }
  if (!isRecord(json)) return "a record must be a JSON object"
  const images = typeof json["images"] === "string" ? [json["images"]] : json["images"]
  if (!Array.isArray(images) || images.length === 0 || !images.every((p) => typeof p === "string")) {
    return `"images" must be an image path or a list of paths, got ${JSON.stringify(json["images"])}`
  }
  if (images.length > 1) return `"images" lists ${images.length} images; the policy takes one image per question`
  if (typeof json["problem"] !== "string" || json["problem"].trim() === "") return `"problem" must be a non-empty string`
  const rawAnswer = json["answer"]
  if (typeof rawAnswer !== "string" && typeof rawAnswer !== "number") return `"answer" must be a string or a number`
  const answer = String(rawAnswer)
  if (parseAnswer(answer) === null) return `the verifier cannot read the answer ${JSON.stringify(answer)}`
  for (const k of ["response", "subset"] as const) {
    if (json[k] !== undefined && typeof json[k] !== "string") return `"${k}" must be a string when present`
  }
  return {
    image: images[0] as string,
    problem: json["problem"].replace(/<image>/g, "").trim(),
    answer,
    ...(typeof json["response"] === "string" ? { response: json["response"] } : {}),
    ...(typeof json["subset"] === "string" ? { subset: json["subset"] } : {})
  }
}

const loadJsonl = (options: SplitOptions): Effect.Effect<Split, DatasetError> =>
  Effect.gen(function*() {
    const file = options.source
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => new DatasetError({ file, line: 0, reason: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})` })
    })
    const dir = dirname(resolve(file))
    const examples: Array<Example> = []
    const skipped: Array<DatasetError> = []
    const lines = text.split("\n")
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim()
      if (line === "") continue
      const fail = (reason: string) => new DatasetError({ file, line: i + 1, reason })
      const rec = parseRecord(line, options.parseAnswer)
      let problem: DatasetError | null = typeof rec === "string" ? fail(rec) : null
      if (typeof rec !== "string") {
        const path = resolve(dir, rec.image)
        const bytes = yield* Effect.tryPromise(() => readFile(path)).pipe(Effect.result)
        if (bytes._tag === "Failure") {
          problem = fail(`image ${rec.image} cannot be read (${(bytes.failure.cause as NodeJS.ErrnoException)?.code ?? "error"})`)
        } else {
          try {
            const image = Images.toImage(Images.decode(bytes.success), options.imageShape)
            examples.push({
              id: `${file}:${i + 1}`,
              image,
              problem: rec.problem,
              answer: rec.answer,
              trace: rec.response,
              subset: rec.subset ?? "all",
              sources: [path]
            })
          } catch (e) {
            problem = fail(`image ${rec.image} is corrupt or not a PNG/JPEG (${(e as Error).message})`)
          }
        }
      }
      if (problem !== null) {
        if (options.onBadRecord === "stop") return yield* problem
        skipped.push(problem)
      }
    }
    if (examples.length === 0) return yield* new DatasetError({ file, line: 0, reason: "no usable record" })
    return { name: file, examples, skipped }
  })

/**
 * Loads (or generates) a split, every image at the model's input shape.
 *
 * @category constructors
 */
export const loadSplit = (options: SplitOptions): Effect.Effect<Split, DatasetError> => {
  switch (options.source) {
    case "digits":
      return Effect.sync(() => ({
        name: "digits",
        examples: Digits.generate({ ...options }).map((e) => ({ ...e, image: Images.resize(e.image, options.imageShape) })),
        skipped: []
      }))
    case "shapes":
      return Effect.sync(() => ({
        name: "shapes",
        // Drawn on the digit task's 28 × 56 canvas, then resized like any image.
        examples: Shapes.generate({ ...options, height: 28, width: 56 }).map(
          (e) => ({ ...e, image: Images.resize(e.image, options.imageShape) })
        ),
        skipped: []
      }))
    case "cued":
      return Effect.sync(() => ({
        name: "cued",
        // Drawn at the model's input size (no resize blurs the glyph), in its channels.
        examples: Cued.generate({
          ...(options.cued ?? defaultConfig.data.cued),
          split: options.split,
          size: options.size,
          seed: options.seed,
          height: options.imageShape.height,
          width: options.imageShape.width
        }).map((e) => ({ ...e, image: Images.resize(e.image, options.imageShape) })),
        skipped: []
      }))
    default:
      return loadJsonl(options)
  }
}

/**
 * The example indices training reads, from position `cursor` on: epoch after epoch, each a fresh
 * seeded permutation, so a cursor (one integer) is the whole data-loader state of a checkpoint.
 *
 * @example
 * const b = batchAt(100, 8, 16, 1) // 8 indices: the 17th to 24th draw of the seeded order
 *
 * @category constructors
 */
export const batchAt = (size: number, count: number, cursor: number, seed: number): Array<number> => {
  const out: Array<number> = []
  let epoch = -1
  let perm: Array<number> = []
  for (let k = cursor; k < cursor + count; k++) {
    const e = Math.floor(k / size)
    if (e !== epoch) {
      epoch = e
      perm = Rng.permutation(size, Rng.make(seed, "order", e))
    }
    out.push(perm[k % size]!)
  }
  return out
}
