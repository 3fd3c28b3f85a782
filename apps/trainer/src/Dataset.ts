/**
 * A split of examples from a built-in task or a user's file, and the seeded order in which training reads
 * them.
 *
 * Files are EasyR1 datasets: JSONL (one record a line) or Parquet as Hugging Face `datasets` writes it
 * (see `Parquet.ts`). A record has an image (`images`: a path relative to the file, a `{bytes, path}`
 * struct, or a list of one of those), a question (`problem`, an `<image>` placeholder is removed) and an
 * `answer`; optional `response` (a gold trace for SFT) and `subset` (an evaluation subset name). The field
 * names are `data.imageKey`, `promptKey`, `answerKey`, `responseKey`. A malformed record, a missing or
 * corrupt image, or an answer the verifier cannot read is reported with file, line (row for Parquet) and
 * reason; `onBadRecord` decides whether the load stops at the first one or skips them all (and reports
 * how many and why).
 *
 * {@link load} also settles what the config leaves to the data: the policy's image size and channels
 * and the prompt and response lengths (see `data.*` in `Config.ts`).
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { dirname, resolve } from "node:path"
import { Tokenizer } from "@papo/model"
import { Data, Effect } from "effect"
import { builtinTasks, type Config, defaultConfig } from "./Config.js"
import * as Cued from "./Cued.js"
import * as Digits from "./Digits.js"
import type { Example } from "./Example.js"
import * as Images from "./Images.js"
import * as Parquet from "./Parquet.js"
import { Rng } from "@papo/random"
import * as Shapes from "./Shapes.js"

/**
 * A record that could not be used: which file, which line of a JSONL file (1-based) or row of a Parquet
 * file (0-based, as `datasets` numbers them), 0 for the file itself, and why.
 *
 * @category errors
 */
export class DatasetError extends Data.TaggedError("DatasetError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
  readonly unit?: "line" | "row"
}> {
  override get message(): string {
    if (this.unit === "row") return `${this.file} row ${this.line}: ${this.reason}`
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
 * The record fields of a file split (EasyR1's `prompt_key`, `answer_key`, `image_key`).
 *
 * @category configuration
 */
export interface RecordKeys {
  readonly promptKey: string
  readonly answerKey: string
  readonly imageKey: string
  readonly responseKey: string
}

/**
 * EasyR1's field names.
 *
 * @example
 * easyR1Keys.promptKey // => "problem"
 *
 * @category configuration
 */
export const easyR1Keys: RecordKeys = { promptKey: "problem", answerKey: "answer", imageKey: "images", responseKey: "response" }

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
  /** Field names of file records (default: {@link easyR1Keys}). */
  readonly keys?: RecordKeys
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A record's image: a path (relative to the data file) or embedded bytes (a Parquet `{bytes, path}` struct).
 *
 * @category models
 */
export type ImageRef = { readonly path: string } | { readonly bytes: Uint8Array; readonly path: string | null }

/**
 * A record's fields, checked.
 *
 * @category models
 */
export interface ParsedRecord {
  readonly image: ImageRef
  readonly problem: string
  readonly answer: string
  readonly response?: string
  readonly subset?: string
}

const imageRefOf = (cell: unknown): ImageRef | null => {
  if (typeof cell === "string" && cell !== "") return { path: cell }
  if (!isRecord(cell)) return null
  const path = typeof cell["path"] === "string" && cell["path"] !== "" ? cell["path"] : null
  if (cell["bytes"] instanceof Uint8Array && cell["bytes"].length > 0) return { bytes: cell["bytes"], path }
  return path === null ? null : { path }
}

const describe = (u: unknown): string =>
  u instanceof Uint8Array ? `${u.length} bytes` : JSON.stringify(u, (_, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? String(u)

/**
 * Checks one record's fields (a parsed JSON line or a Parquet row), or says why it cannot be used.
 *
 * @example
 * parseFields({ images: ["a.png"], problem: "<image>Colour?", answer: "red" }, easyR1Keys, (a) => a)
 * // => { image: { path: "a.png" }, problem: "Colour?", answer: "red" }
 *
 * @category constructors
 */
export const parseFields = (
  record: Readonly<Record<string, unknown>>,
  keys: RecordKeys,
  parseAnswer: (answer: string) => string | null
): ParsedRecord | string => {
  const { imageKey, promptKey, answerKey, responseKey } = keys
  const cell = record[imageKey]
  const cells = Array.isArray(cell) ? cell : cell === undefined || cell === null ? [] : [cell]
  const refs = cells.map(imageRefOf)
  if (refs.length === 0 || refs.some((r) => r === null)) {
    return `"${imageKey}" must be an image path, a {bytes, path} struct, or a list of one of those, got ${describe(cell)}`
  }
  if (refs.length > 1) return `"${imageKey}" lists ${refs.length} images; the policy takes one image per question`
  const problem = record[promptKey]
  if (typeof problem !== "string" || problem.trim() === "") return `"${promptKey}" must be a non-empty string`
  const rawAnswer = record[answerKey]
  if (typeof rawAnswer !== "string" && typeof rawAnswer !== "number" && typeof rawAnswer !== "bigint") {
    return `"${answerKey}" must be a string or a number`
  }
  const answer = String(rawAnswer)
  if (parseAnswer(answer) === null) return `the verifier cannot read the answer ${JSON.stringify(answer)}`
  for (const k of [responseKey, "subset"]) {
    if (record[k] !== undefined && record[k] !== null && typeof record[k] !== "string") return `"${k}" must be a string when present`
  }
  const response = record[responseKey], subset = record["subset"]
  return {
    image: refs[0]!,
    problem: problem.replace(/<image>/g, "").trim(),
    answer,
    ...(typeof response === "string" ? { response } : {}),
    ...(typeof subset === "string" ? { subset } : {})
  }
}

/** A JSONL line as a JSON object, or why it is not one. */
const jsonObject = (text: string): Readonly<Record<string, unknown>> | string => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return `malformed JSON (${(e as Error).message})`
  }
  return isRecord(json) ? json : "a record must be a JSON object"
}

/** One raw record of a file and where it is. */
interface RawRecord {
  readonly at: number
  readonly record: Readonly<Record<string, unknown>> | string
}

const isParquet = (file: string) => file.endsWith(".parquet")

/** A file's records in order: JSONL lines (parsed JSON, or why not) or Parquet rows, read as they are needed. */
async function* rawRecords(file: string, keys: RecordKeys): AsyncGenerator<RawRecord> {
  if (isParquet(file)) {
    for await (const { row, record } of Parquet.readRows(file, [keys.imageKey, keys.promptKey, keys.answerKey, keys.responseKey, "subset"])) {
      yield { at: row, record }
    }
    return
  }
  const lines = (await readFile(file, "utf8")).split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line !== "") yield { at: i + 1, record: jsonObject(line) }
  }
}

const fileError = (file: string, e: unknown) =>
  new DatasetError({
    file,
    line: 0,
    reason: (e as NodeJS.ErrnoException).code !== undefined
      ? `cannot read the file (${(e as NodeJS.ErrnoException).code})`
      : `cannot read the file (${e instanceof Error ? e.message : String(e)})`
  })

/**
 * Walks a file's records: each usable one is handed to `use` with its decoded image (RGBA), each bad one
 * to `bad`; `use` returns false to stop early. A file that cannot be read at all fails.
 */
const walk = (
  file: string,
  keys: RecordKeys,
  parseAnswer: (answer: string) => string | null,
  use: (rec: ParsedRecord, image: Images.Decoded, at: number, source: string) => boolean,
  bad: (error: DatasetError) => boolean
): Effect.Effect<void, DatasetError> =>
  Effect.tryPromise({
    try: async () => {
      const dir = dirname(resolve(file))
      const unit = isParquet(file) ? "row" : "line"
      for await (const { at, record } of rawRecords(file, keys)) {
        const fail = (reason: string) => new DatasetError({ file, line: at, reason, unit })
        const rec = typeof record === "string" ? record : parseFields(record, keys, parseAnswer)
        if (typeof rec === "string") {
          if (!bad(fail(rec))) return
          continue
        }
        const ref = rec.image
        const name = ref.path ?? "(embedded)"
        let bytes: Uint8Array
        let source: string
        if ("bytes" in ref) {
          bytes = ref.bytes
          source = `${file}#${unit} ${at}`
        } else {
          source = resolve(dir, ref.path)
          try {
            bytes = await readFile(source)
          } catch (e) {
            if (!bad(fail(`image ${name} cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`))) return
            continue
          }
        }
        let image: Images.Decoded
        try {
          image = Images.decode(bytes)
        } catch (e) {
          if (!bad(fail(`image ${name} is corrupt or not a PNG/JPEG (${(e as Error).message})`))) return
          continue
        }
        if (!use(rec, image, at, source)) return
      }
    },
    catch: (e) => (e instanceof DatasetError ? e : fileError(file, e))
  })

const loadFile = (options: SplitOptions): Effect.Effect<Split, DatasetError> =>
  Effect.gen(function*() {
    const file = options.source
    const examples: Array<Example> = []
    const skipped: Array<DatasetError> = []
    const stopped: Array<DatasetError> = []
    yield* walk(file, options.keys ?? easyR1Keys, options.parseAnswer, (rec, image, at, source) => {
      examples.push({
        id: `${file}:${at}`,
        image: Images.toImage(image, options.imageShape),
        problem: rec.problem,
        answer: rec.answer,
        trace: rec.response,
        subset: rec.subset ?? "all",
        sources: [source]
      })
      return true
    }, (error) => {
      ;(options.onBadRecord === "stop" ? stopped : skipped).push(error)
      return options.onBadRecord === "skip"
    })
    if (stopped.length > 0) return yield* stopped[0]!
    if (examples.length === 0) return yield* new DatasetError({ file, line: 0, reason: "no usable record" })
    return { name: file, examples, skipped }
  })

/**
 * What the first `count` usable images of a file are: the largest height and width, and whether any
 * has colour. Bad records are passed over (the load reports them).
 *
 * @example
 * yield* probeImages("charts/train.jsonl", easyR1Keys, parse) // => { height: 480, width: 640, colour: true }
 *
 * @category constructors
 */
export const probeImages = (
  file: string,
  keys: RecordKeys,
  parseAnswer: (answer: string) => string | null,
  count = 256
): Effect.Effect<{ readonly height: number; readonly width: number; readonly colour: boolean }, DatasetError> =>
  Effect.gen(function*() {
    let height = 0, width = 0, colour = false, seen = 0
    yield* walk(file, keys, parseAnswer, (_, image) => {
      height = Math.max(height, image.height)
      width = Math.max(width, image.width)
      colour ||= Images.hasColour(image)
      return ++seen < count
    }, () => true)
    if (seen === 0) return yield* new DatasetError({ file, line: 0, reason: "no usable record" })
    return { height, width, colour }
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
      return loadFile(options)
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

/**
 * The SFT target of a record made from its answer alone, in the format PAPO's reward checks
 * (`<think>.*</think>.*\boxed{.*}`): an empty thought, then the boxed answer.
 *
 * @example
 * answerTarget("red") // => "<think></think>\\boxed{red}"
 *
 * @category constructors
 */
export const answerTarget = (answer: string): string => `<think></think>\\boxed{${answer}}`

/**
 * What `papo sft` trains an example on under `sft.target`: its gold response, its {@link answerTarget},
 * or the response when present and the answer otherwise; null when `response` is asked and absent.
 *
 * @example
 * sftTarget({ ...example, trace: undefined, answer: "3" }, "response-or-answer") // => "<think></think>\\boxed{3}"
 *
 * @category constructors
 */
export const sftTarget = (example: Example, target: Config["sft"]["target"]): string | null =>
  target === "answer" ? answerTarget(example.answer) : example.trace ?? (target === "response" ? null : answerTarget(example.answer))

/**
 * The text lengths of the built-in tasks (their prompts are at most 40 tokens, their traces 12–20).
 *
 * @example
 * builtinLengths.maxResponseLength // => 24
 *
 * @category configuration
 */
export const builtinLengths = { maxPromptLength: 48, maxResponseLength: 24 } as const

/**
 * A length that follows the data: `longest` rounded up to a multiple of 8.
 *
 * @example
 * followLength(41) // => 48
 *
 * @category configuration
 */
export const followLength = (longest: number): number => Math.max(8, Math.ceil(longest / 8) * 8)

/**
 * The model sizes a checkpoint fixes (`worker.actor.init`, `--resume`, `papo eval`).
 *
 * @category models
 */
export interface FixedModel {
  readonly imageHeight: number
  readonly imageWidth: number
  readonly imageChannels: number
  readonly patchSize: number
  readonly maxPromptLength: number
  readonly maxResponseLength: number
}

const isBuiltin = (source: string) => (builtinTasks as ReadonlyArray<string>).includes(source)

/**
 * A record whose text is longer than the model takes: where it is (`file`, `id` = file:line or file:row
 * for a file split, task:index for a built-in one) and how many tokens it has.
 *
 * @category models
 */
export interface LongRecord {
  readonly file: string
  readonly id: string
  readonly tokens: number
}

/** What a too-long error holds: the limit, the first offenders (longest first) and how many there are. */
interface TooLong {
  readonly max: number
  /** The longest offending records, at most {@link shownOffenders}. */
  readonly offenders: ReadonlyArray<LongRecord>
  /** How many records are over the limit, of how many checked. */
  readonly count: number
  readonly total: number
}

/**
 * How many offending records a too-long error names (the count covers them all).
 *
 * @category configuration
 */
export const shownOffenders = 5

const tooLongMessage = (e: TooLong, what: string, key: string): string =>
  `${e.count} of ${e.total} ${what} have more than ${key} = ${e.max} tokens: ${
    e.offenders.map((o) => `${o.id} (${o.tokens})`).join(", ")
  }${e.count > e.offenders.length ? `, …` : ""}; raise ${key}, or leave it unset to follow the data`

/**
 * Prompts longer than `data.maxPromptLength`, found when the data is loaded (before any model is built).
 *
 * @example
 * new PromptTooLongError({ max: 16, count: 1, total: 4, offenders: [{ file: "d.jsonl", id: "d.jsonl:2", tokens: 67 }] }).message
 * // => "1 of 4 prompts have more than data.maxPromptLength = 16 tokens: d.jsonl:2 (67); raise data.maxPromptLength, or leave it unset to follow the data"
 *
 * @category errors
 */
export class PromptTooLongError extends Data.TaggedError("PromptTooLongError")<TooLong> {
  override get message(): string {
    return tooLongMessage(this, "prompts", "data.maxPromptLength")
  }
}

/**
 * SFT targets (with EOS) longer than `data.maxResponseLength`, found when the data is loaded.
 *
 * @example
 * new ResponseTooLongError({ max: 16, count: 1, total: 2, offenders: [{ file: "d.jsonl", id: "d.jsonl:1", tokens: 30 }] }).message
 * // => "1 of 2 SFT targets (with EOS) have more than data.maxResponseLength = 16 tokens: d.jsonl:1 (30); raise …"
 *
 * @category errors
 */
export class ResponseTooLongError extends Data.TaggedError("ResponseTooLongError")<TooLong> {
  override get message(): string {
    return tooLongMessage(this, "SFT targets (with EOS)", "data.maxResponseLength")
  }
}

/** The records of `items` over `max` (each record once, even when both splits read the same file), or null. */
const overLimit = (max: number, items: ReadonlyArray<LongRecord>): TooLong | null => {
  const unique = [...new Map(items.map((i) => [i.id, i])).values()]
  const over = unique.filter((i) => i.tokens > max).sort((a, b) => b.tokens - a.tokens)
  return over.length === 0 ? null : { max, offenders: over.slice(0, shownOffenders), count: over.length, total: unique.length }
}

/**
 * Loads the train and test splits and settles what the config leaves to the data, returning the config
 * with those values filled in (what a run writes to `config.yaml`):
 *
 * - image size and channels (`data.imageHeight`, `imageWidth`, `imageChannels`) and `worker.actor.patchSize`:
 *   a checkpoint's (`fixed`), else the set value, else the built-in model's for a built-in task, else
 *   chosen from the training file's first 256 images (`Images.fitShape` into `data.minPixels`..`maxPixels`;
 *   RGB when any has colour);
 * - `data.maxPromptLength`: a checkpoint's, else the set value, else the longest prompt of both splits
 *   rounded up to a multiple of 8 (48 for built-in tasks);
 * - `data.maxResponseLength`: likewise from 1.5 × the longest SFT target with EOS, at least 16 (24 for
 *   built-in tasks).
 *
 * A set (or fixed) length that some records exceed fails with {@link PromptTooLongError} or
 * {@link ResponseTooLongError}, naming how many and the longest records (file and line or row).
 *
 * @example
 * const { config: resolved } = yield* load(config, { parseAnswer, named: ModelConfigs.configs.small })
 * resolved.data.imageChannels // => 3 (for an RGB dataset)
 *
 * @category constructors
 */
export const load = (
  config: Config,
  options: {
    readonly parseAnswer: (answer: string) => string | null
    readonly named: FixedModel
    readonly fixed?: FixedModel | null
  }
): Effect.Effect<
  { readonly config: Config; readonly train: Split; readonly test: Split },
  DatasetError | PromptTooLongError | ResponseTooLongError
> =>
  Effect.gen(function*() {
    const d = config.data
    const fixed = options.fixed ?? null
    const keys: RecordKeys = { promptKey: d.promptKey, answerKey: d.answerKey, imageKey: d.imageKey, responseKey: d.responseKey }
    const patchSize = fixed?.patchSize ?? config.worker.actor.patchSize ?? options.named.patchSize
    let imageShape: Images.ImageShape
    if (fixed !== null) {
      imageShape = { height: fixed.imageHeight, width: fixed.imageWidth, channels: fixed.imageChannels }
    } else if (isBuiltin(d.train) || (d.imageHeight !== null && d.imageWidth !== null && d.imageChannels !== null)) {
      imageShape = {
        height: d.imageHeight ?? options.named.imageHeight,
        width: d.imageWidth ?? options.named.imageWidth,
        channels: d.imageChannels ?? options.named.imageChannels
      }
    } else {
      const probe = yield* probeImages(d.train, keys, options.parseAnswer)
      const fit = Images.fitShape(probe.height, probe.width, { minPixels: d.minPixels, maxPixels: d.maxPixels, patchSize })
      imageShape = { height: d.imageHeight ?? fit.height, width: d.imageWidth ?? fit.width, channels: d.imageChannels ?? (probe.colour ? 3 : 1) }
    }
    const common = {
      numDigits: d.numDigits,
      questionTypes: d.questionTypes,
      hintRate: d.hintRate,
      testImageShare: d.testImageShare,
      seed: d.seed,
      onBadRecord: d.onBadRecord,
      cued: d.cued,
      imageShape,
      parseAnswer: options.parseAnswer,
      keys
    }
    const train = yield* loadSplit({ ...common, source: d.train, split: "train", size: d.trainSize })
    const test = yield* loadSplit({ ...common, source: d.test, split: "test", size: d.testSize })
    const prompts = [train, test].flatMap((s) => s.examples.map((e) => ({ file: s.name, id: e.id, text: e.problem + d.promptSuffix })))
    const targets = train.examples.flatMap((e) => {
      const t = sftTarget(e, config.sft.target)
      return t === null ? [] : [{ file: train.name, id: e.id, text: t }]
    })
    const tokenizer = Tokenizer.make([...prompts, ...targets].map((p) => p.text).join(""))
    const count = (items: ReadonlyArray<{ file: string; id: string; text: string }>, extra: number): Array<LongRecord> =>
      items.map((i) => ({ file: i.file, id: i.id, tokens: Tokenizer.encode(tokenizer, i.text).length + extra }))
    const promptLengths = count(prompts, 0), targetLengths = count(targets, 1) // + EOS
    const longest = (xs: ReadonlyArray<LongRecord>) => xs.reduce((m, x) => Math.max(m, x.tokens), 0)
    const builtin = isBuiltin(d.train) && isBuiltin(d.test)
    const maxPromptLength = fixed?.maxPromptLength ?? d.maxPromptLength ??
      (builtin ? builtinLengths.maxPromptLength : followLength(longest(promptLengths)))
    const maxResponseLength = fixed?.maxResponseLength ?? d.maxResponseLength ??
      (builtin ? builtinLengths.maxResponseLength : followLength(Math.max(16, 1.5 * longest(targetLengths))))
    const longPrompts = overLimit(maxPromptLength, promptLengths)
    if (longPrompts !== null) return yield* new PromptTooLongError(longPrompts)
    const longTargets = overLimit(maxResponseLength, targetLengths)
    if (longTargets !== null) return yield* new ResponseTooLongError(longTargets)
    const resolved: Config = {
      ...config,
      data: { ...d, imageHeight: imageShape.height, imageWidth: imageShape.width, imageChannels: imageShape.channels as 1 | 3, maxPromptLength, maxResponseLength },
      worker: { ...config.worker, actor: { ...config.worker.actor, patchSize } }
    }
    return { config: resolved, train, test }
  })
