/**
 * The run folder `<outputDir>/<experimentName>/`, one Schema per file it holds:
 *
 *     config.yaml            the resolved config ({@link checkConfig} compares it on --resume)
 *     metrics.jsonl          one {@link MetricsLine} per step, fsynced as it is appended
 *     eval.json              the latest {@link EvalFile}; eval-step-000010.json every evaluation
 *     events.jsonl           {@link Event}s of the collapse guard
 *     samples/step-000010/   0.png … (original | masked image) and samples.jsonl ({@link SampleLine})
 *     checkpoints/step-000010/{actor,reference}/   model checkpoints; actor's extra is the {@link CheckpointState}
 *
 * Crash safety: every file is written to a `.tmp-*` sibling, fsynced and renamed (then the folder is
 * fsynced); a checkpoint is a `.tmp-*` folder renamed into place, and an existing checkpoint of the same
 * name is renamed aside, not deleted, until the new one is in place. {@link open} removes the `.tmp-*`
 * left by a killed run (and puts back a checkpoint set aside by a replacement the kill cut short);
 * {@link readJsonl} names the file and line of a bad line and drops a torn last line; resuming keeps the
 * metrics prefix by writing it to a temporary and renaming it, never by truncating in place.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { Checkpoint, type Config as ModelConfigs, type Optimizer, type Policy, type Tokenizer } from "@papo/model"
import { Data, Effect, Schema } from "effect"
import { type Config, toYaml } from "./Config.js"
import { loadConfig } from "./ConfigLoad.js"
import * as Images from "./Images.js"

// ---------------------------------------------------------------------------------------------------
// errors

/**
 * A file or folder of the run could not be read or written.
 *
 * @example
 * new RunFolderError({ path: "runs/x/eval.json", reason: "EROFS: read-only file system" }).message
 * // => "runs/x/eval.json: EROFS: read-only file system"
 *
 * @category errors
 */
export class RunFolderError extends Data.TaggedError("RunFolderError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/**
 * A line of a JSONL file of the run that is not JSON or does not match its schema.
 *
 * @example
 * new JsonlLineError({ path: "runs/x/metrics.jsonl", line: 7, reason: "not JSON" }).message
 * // => "runs/x/metrics.jsonl:7: not JSON"
 *
 * @category errors
 */
export class JsonlLineError extends Data.TaggedError("JsonlLineError")<{ readonly path: string; readonly line: number; readonly reason: string }> {
  override get message(): string {
    return `${this.path}:${this.line}: ${this.reason}`
  }
}

/**
 * A fresh run asked for a folder that already holds a run (`--overwrite` replaces it, `--resume` continues it).
 *
 * @example
 * new RunFolderNotEmptyError({ dir: "runs/x", entries: ["checkpoints", "metrics.jsonl"] }).message
 * // => "runs/x already holds a run (checkpoints, metrics.jsonl); continue it with --resume, replace it with --overwrite, or choose another trainer.experimentName"
 *
 * @category errors
 */
export class RunFolderNotEmptyError extends Data.TaggedError("RunFolderNotEmptyError")<{ readonly dir: string; readonly entries: ReadonlyArray<string> }> {
  override get message(): string {
    return `${this.dir} already holds a run (${this.entries.join(", ")}); continue it with --resume, replace it with --overwrite, or choose another trainer.experimentName`
  }
}

/**
 * `--resume` with a config whose model or algorithm differs from the run's `config.yaml`.
 *
 * @example
 * new ConfigChangedError({ path: "runs/x/config.yaml", keys: [{ key: "worker.actor.model", saved: "tiny", given: "small" }] }).message
 * // => 'runs/x/config.yaml: --resume with a changed config: worker.actor.model "tiny" → "small"; resume with the saved config, or pass --allow-config-change'
 *
 * @category errors
 */
export class ConfigChangedError extends Data.TaggedError("ConfigChangedError")<{
  readonly path: string
  readonly keys: ReadonlyArray<{ readonly key: string; readonly saved: unknown; readonly given: unknown }>
}> {
  override get message(): string {
    const keys = this.keys.map((k) => `${k.key} ${JSON.stringify(k.saved)} → ${JSON.stringify(k.given)}`).join(", ")
    return `${this.path}: --resume with a changed config: ${keys}; resume with the saved config, or pass --allow-config-change`
  }
}

/**
 * A checkpoint folder that does not load: a file missing, truncated or not matching its checksum, or a
 * trainer state that does not decode.
 *
 * @example
 * new CheckpointCorruptError({ path: "runs/x/checkpoints/step-000004", reason: "bad sha256" }).message
 * // => "runs/x/checkpoints/step-000004: corrupt checkpoint: bad sha256"
 *
 * @category errors
 */
export class CheckpointCorruptError extends Data.TaggedError("CheckpointCorruptError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `${this.path}: corrupt checkpoint: ${this.reason}`
  }
}

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, " ")

/** A file-system call as an Effect failing with a {@link RunFolderError} that names `path`. */
const io = <A>(path: string, f: () => Promise<A>): Effect.Effect<A, RunFolderError> =>
  Effect.tryPromise({ try: f, catch: (e) => new RunFolderError({ path, reason: reasonOf(e) }) })

/** A write: not abandoned half-way when the fiber is interrupted (the finalizer that follows may write too). */
const write = <A>(path: string, f: () => Promise<A>): Effect.Effect<A, RunFolderError> => Effect.uninterruptible(io(path, f))

// ---------------------------------------------------------------------------------------------------
// schemas

/** A metric value: JSON writes a non-finite number as null. */
const MetricValue = Schema.NullOr(Schema.Number)

/**
 * One line of `metrics.jsonl`: the step and the step's metrics (null for a non-finite value).
 *
 * @example
 * Schema.decodeUnknownSync(MetricsLine)({ step: 3, "actor/pg_loss": null }) // => { step: 3, "actor/pg_loss": null }
 *
 * @category models
 */
export const MetricsLine = Schema.StructWithRest(Schema.Struct({ step: Schema.Int }), [Schema.Record(Schema.String, MetricValue)])

const Subset = Schema.Struct({
  questions: Schema.Int,
  responses: Schema.Int,
  accuracy: Schema.Number,
  format: Schema.Number,
  outcomes: Schema.Record(Schema.String, Schema.Int),
  perceptionErrorRate: MetricValue,
  perceptionErrorShare: MetricValue,
  priorRate: MetricValue,
  blankAccuracy: MetricValue,
  maskedAccuracy: MetricValue,
  klPrcpAnswer: MetricValue
})

/**
 * `eval.json` and `eval-step-<k>.json`: an evaluation (`Evaluate.EvalResult`) and, from `papo eval`, the checkpoint.
 *
 * @example
 * Schema.is(EvalFile)({ step: 1 }) // => false (the rest is missing)
 *
 * @category models
 */
export const EvalFile = Schema.Struct({
  step: Schema.Int,
  split: Schema.String,
  k: Schema.Int,
  temperature: Schema.Number,
  probeK: Schema.Int,
  overall: Subset,
  subsets: Schema.Record(Schema.String, Subset),
  examples: Schema.Array(Schema.Struct({ id: Schema.String, problem: Schema.String, answer: Schema.String, response: Schema.String, outcome: Schema.String })),
  checkpoint: Schema.optionalKey(Schema.String)
})

/**
 * One line of `samples/step-<k>/samples.jsonl`: a logged rollout and the PNG of its images.
 *
 * @example
 * Schema.is(SampleLine)({ id: "7", problem: "x+3?", answer: "10", response: "\\boxed{10}", reward: 1, advantage: 0.5, outcome: "correct", png: "0.png" }) // => true
 *
 * @category models
 */
export const SampleLine = Schema.Struct({
  id: Schema.String,
  problem: Schema.String,
  answer: Schema.String,
  response: Schema.String,
  reward: Schema.Number,
  advantage: Schema.Number,
  outcome: Schema.String,
  png: Schema.String
})

const Signal = Schema.Struct({ name: Schema.Literals(["kl_prcp", "reward", "clipfrac", "entropy"]), value: Schema.Number, baseline: Schema.Number })

/**
 * One line of `events.jsonl`: the start of a command (the backend that loaded and the verifier's settings), a
 * collapse-guard warning or collapse, or a rollback.
 *
 * @example
 * Schema.is(Event)({ event: "rollback", fromStep: 40, toStep: 25, klPrcpCoef: 0.01, rollback: 1 }) // => true
 *
 * @category models
 */
export const Event = Schema.Union([
  Schema.Struct({
    event: Schema.Literal("start"),
    step: Schema.Int,
    backend: Schema.Struct({ requested: Schema.String, name: Schema.String, threads: Schema.Int, replicas: Schema.Int, description: Schema.String }),
    reward: Schema.Struct({ mode: Schema.String, formatWeight: Schema.Number, workers: Schema.Int, timeoutMs: Schema.Number })
  }),
  Schema.Struct({ event: Schema.Literals(["warning", "collapse"]), step: Schema.Int, klPrcpCoef: Schema.Number, signals: Schema.Array(Signal) }),
  Schema.Struct({ event: Schema.Literal("rollback"), fromStep: Schema.Int, toStep: Schema.Int, klPrcpCoef: Schema.Number, rollback: Schema.Int })
])

/**
 * The trainer state a checkpoint keeps beside the model (the actor checkpoint's `extra`): the step, the
 * data cursor, the sampling and mask generators' states and the non-finite streak.
 *
 * @example
 * Schema.is(CheckpointState)({ kind: "sft", step: 40, cursor: 320 }) // => true
 *
 * @category models
 */
export const CheckpointState = Schema.Struct({
  kind: Schema.Literals(["train", "sft"]),
  step: Schema.Int,
  cursor: Schema.Int,
  samplingRng: Schema.optionalKey(Schema.Tuple([Schema.Number, Schema.Number, Schema.Number, Schema.Number])),
  maskRng: Schema.optionalKey(Schema.Struct({ key: Schema.Array(Schema.Number), pos: Schema.Int, hasGauss: Schema.Boolean, gauss: Schema.Number })),
  nonFiniteStreak: Schema.optionalKey(Schema.Int)
})

/**
 * The decoded {@link CheckpointState}.
 *
 * @category models
 */
export type CheckpointState = typeof CheckpointState.Type

// ---------------------------------------------------------------------------------------------------
// files

const pad = (step: number) => String(step).padStart(6, "0")
const tmpName = (name: string) => `.tmp-${name}-${process.pid}`

/**
 * The folder of a config's run.
 *
 * @example
 * runDir(defaultConfig) // => "runs/papo"
 *
 * @category constructors
 */
export const runDir = (config: Config): string => join(config.trainer.outputDir, config.trainer.experimentName)

/**
 * Writes a file atomically: a `.tmp-*` sibling, fsynced, renamed over `path`, then the folder fsynced.
 * A reader sees the old content or the new, never a part.
 *
 * @example
 * await Effect.runPromise(writeAtomic("runs/x/eval.json", "{}\n"))
 * await readFile("runs/x/eval.json", "utf8") // => "{}\n"
 *
 * @category constructors
 */
export const writeAtomic = (path: string, data: string | Uint8Array): Effect.Effect<void, RunFolderError> =>
  write(path, async () => {
    const tmp = join(dirname(path), tmpName(basename(path)))
    await Checkpoint.writeSynced(tmp, data)
    await fs.rename(tmp, path)
    await Checkpoint.syncDir(dirname(path))
  })

/** Appends text and fsyncs it. */
const appendSynced = (path: string, text: string): Effect.Effect<void, RunFolderError> => write(path, () => Checkpoint.writeSynced(path, text, "a"))

/**
 * What {@link readJsonl} read: the decoded lines, and the number of a torn last line it dropped (a line
 * cut short by a kill: no newline after it and not JSON), or null.
 *
 * @example
 * const read: Jsonl<{ step: number }> = { rows: [{ step: 1 }], tornLine: 2 }
 * read.tornLine // => 2
 *
 * @category models
 */
export interface Jsonl<A> {
  readonly rows: ReadonlyArray<A>
  readonly tornLine: number | null
}

/**
 * Reads a JSONL file line by line through `schema`. A line that is not JSON or does not match fails with
 * a {@link JsonlLineError} naming the file and the line number, except a torn last line (no newline after
 * it), which is dropped and reported in `tornLine`. Blank lines are skipped.
 *
 * @example
 * const { rows, tornLine } = await Effect.runPromise(readJsonl("runs/x/metrics.jsonl", MetricsLine))
 * rows[0].step // => 1
 *
 * @category constructors
 */
export const readJsonl = <S extends Schema.Decoder<unknown>>(path: string, schema: S): Effect.Effect<Jsonl<S["Type"]>, RunFolderError | JsonlLineError> =>
  Effect.gen(function*() {
    const text = yield* io(path, () => fs.readFile(path, "utf8"))
    const lines = text.split("\n")
    const decode = Schema.decodeUnknownEffect(schema)
    const rows: Array<S["Type"]> = []
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue
      const json = parseJson(line)
      if (!json.ok) {
        // The file does not end with a newline after it: a kill cut the append short.
        if (i === lines.length - 1) return { rows, tornLine: i + 1 }
        return yield* new JsonlLineError({ path, line: i + 1, reason: `not JSON (${json.reason})` })
      }
      rows.push(yield* decode(json.value).pipe(Effect.mapError((e) => new JsonlLineError({ path, line: i + 1, reason: oneLine(e.message) }))))
    }
    return { rows, tornLine: null }
  })

const parseJson = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (e) {
    return { ok: false, reason: reasonOf(e) }
  }
}

const metricsFile = (dir: string) => join(dir, "metrics.jsonl")

/**
 * Appends one metrics line and fsyncs it (a non-finite value is written as null).
 *
 * @example
 * await Effect.runPromise(appendMetrics("runs/x", 1, { "sft/loss": NaN }))
 * // metrics.jsonl gains {"step":1,"sft/loss":null}
 *
 * @category constructors
 */
export const appendMetrics = (dir: string, step: number, metrics: Readonly<Record<string, number>>): Effect.Effect<void, RunFolderError> =>
  appendSynced(metricsFile(dir), JSON.stringify({ step, ...metrics }) + "\n")

/**
 * Reads `metrics.jsonl` back (null values as NaN); a torn last line is left out (a bad line elsewhere is a
 * {@link JsonlLineError}).
 *
 * @example
 * (await Effect.runPromise(readMetrics("runs/x"))).map((m) => m.step) // => [1, 2, 3]
 *
 * @category constructors
 */
export const readMetrics = (dir: string): Effect.Effect<Array<Record<string, number>>, RunFolderError | JsonlLineError> =>
  readJsonl(metricsFile(dir), MetricsLine).pipe(
    Effect.map(({ rows }) => rows.map((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v ?? Number.NaN]))))
  )

/**
 * Keeps the metrics lines up to `step` (a resumed run rewrites the steps after its checkpoint): the kept
 * lines go to a temporary that is renamed over `metrics.jsonl`. With `droppedTo`, the dropped lines are
 * kept in that file of the run folder (a rollback's evidence). A torn last line is dropped with a warning.
 *
 * @example
 * await Effect.runPromise(keepMetrics("runs/x", 2, console.warn))
 * (await Effect.runPromise(readMetrics("runs/x"))).map((m) => m.step) // => [1, 2]
 *
 * @category constructors
 */
export const keepMetrics = (dir: string, step: number, warn: (line: string) => void, droppedTo?: string) =>
  Effect.gen(function*() {
    const file = metricsFile(dir)
    const exists = yield* io(file, () => fs.stat(file).then(() => true, () => false))
    if (!exists) return
    const { rows, tornLine } = yield* readJsonl(file, MetricsLine)
    if (tornLine !== null) warn(`${file}:${tornLine}: dropped a torn last line (the run was killed while writing it)`)
    const text = (ms: ReadonlyArray<typeof MetricsLine.Type>) => ms.map((m) => JSON.stringify(m) + "\n").join("")
    if (droppedTo !== undefined) yield* writeAtomic(join(dir, droppedTo), text(rows.filter((m) => m.step > step)))
    yield* writeAtomic(file, text(rows.filter((m) => m.step <= step)))
  })

/**
 * Appends one event (collapse warnings, rollbacks) to `events.jsonl`, fsynced.
 *
 * @example
 * await Effect.runPromise(appendEvent("runs/x", { event: "rollback", fromStep: 40, toStep: 25, klPrcpCoef: 0.01, rollback: 1 }))
 *
 * @category constructors
 */
export const appendEvent = (dir: string, event: typeof Event.Type): Effect.Effect<void, RunFolderError> =>
  appendSynced(join(dir, "events.jsonl"), JSON.stringify(event) + "\n")

/**
 * Reads `events.jsonl` back through {@link Event} (no file: no events); a bad line names the file and line.
 *
 * @example
 * (await Effect.runPromise(readEvents("runs/x"))).filter((e) => e.event === "start").at(-1)?.backend.name // => "wasm"
 *
 * @category constructors
 */
export const readEvents = (dir: string): Effect.Effect<ReadonlyArray<typeof Event.Type>, RunFolderError | JsonlLineError> => {
  const path = join(dir, "events.jsonl")
  return io(path, () => fs.access(path).then(() => true, () => false)).pipe(
    Effect.flatMap((exists) => (exists ? readJsonl(path, Event).pipe(Effect.map((j) => j.rows)) : Effect.succeed([])))
  )
}

/**
 * Writes `eval-step-<k>.json` and `eval.json`, each atomically.
 *
 * @example
 * await Effect.runPromise(writeEval("runs/x", 100, result))
 * (await Effect.runPromise(readEval("runs/x/eval-step-000100.json"))).step // => 100
 *
 * @category constructors
 */
export const writeEval = (dir: string, step: number, result: typeof EvalFile.Encoded): Effect.Effect<void, RunFolderError> => {
  const text = JSON.stringify(result, null, 2) + "\n"
  return Effect.andThen(writeAtomic(join(dir, `eval-step-${pad(step)}.json`), text), writeAtomic(join(dir, "eval.json"), text))
}

/**
 * Reads `eval.json` (or another evaluation file) through {@link EvalFile}.
 *
 * @example
 * (await Effect.runPromise(readEval("runs/x/eval.json"))).overall.accuracy // => 0.62
 *
 * @category constructors
 */
export const readEval = (path: string): Effect.Effect<typeof EvalFile.Type, RunFolderError> =>
  io(path, () => fs.readFile(path, "utf8")).pipe(
    Effect.flatMap((text) => {
      const json = parseJson(text)
      return json.ok ? Effect.succeed(json.value) : Effect.fail(new RunFolderError({ path, reason: `not JSON (${json.reason})` }))
    }),
    Effect.flatMap((json) => Schema.decodeUnknownEffect(EvalFile)(json).pipe(Effect.mapError((e) => new RunFolderError({ path, reason: oneLine(e.message) }))))
  )

/**
 * Checks that a folder can be written (creating it), before long work whose result goes there.
 *
 * @example
 * await Effect.runPromise(Effect.flip(ensureWritable("/proc/x"))) // => RunFolderError { path: "/proc/x", reason: "not writable (…)" }
 *
 * @category constructors
 */
export const ensureWritable = (dir: string): Effect.Effect<void, RunFolderError> =>
  write(dir, async () => {
    await fs.mkdir(dir, { recursive: true })
    const probe = join(dir, tmpName("probe"))
    await Checkpoint.writeSynced(probe, "")
    await fs.rm(probe)
  }).pipe(Effect.mapError((e) => new RunFolderError({ path: dir, reason: `not writable (${e.reason})` })))

/**
 * One logged rollout: a {@link SampleLine} without its file name, with the original and masked images.
 *
 * @example
 * const sample: Sample = { id: "7", problem: "x+3?", answer: "10", response, reward: 1, advantage: 0.5, outcome: "correct", image, masked }
 *
 * @category models
 */
export interface Sample extends Omit<typeof SampleLine.Type, "png"> {
  readonly image: Images.ImageShape & { readonly data: Float32Array }
  readonly masked: Float32Array
}

/**
 * Writes samples: `samples/step-<k>/<i>.png` (original | masked) and `samples.jsonl`, each atomically.
 *
 * @example
 * await Effect.runPromise(writeSamples("runs/x", 10, samples))
 * await readdir("runs/x/samples/step-000010") // => ["0.png", "1.png", "samples.jsonl"]
 *
 * @category constructors
 */
export const writeSamples = (dir: string, step: number, samples: ReadonlyArray<Sample>): Effect.Effect<void, RunFolderError> => {
  const out = join(dir, "samples", `step-${pad(step)}`)
  return Effect.gen(function*() {
    yield* io(out, () => fs.mkdir(out, { recursive: true }))
    const lines: Array<typeof SampleLine.Type> = []
    for (const [i, s] of samples.entries()) {
      const png = `${i}.png`
      yield* writeAtomic(join(out, png), Images.encodePng([s.image, { ...s.image, data: s.masked }]))
      const { image: _i, masked: _m, ...rest } = s
      lines.push({ ...rest, png })
    }
    yield* writeAtomic(join(out, "samples.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
  })
}

// ---------------------------------------------------------------------------------------------------
// the folder as a whole

/** What a run writes, by name (what `--overwrite` removes). */
const runEntry = (name: string): boolean =>
  ["config.yaml", "metrics.jsonl", "eval.json", "events.jsonl", "checkpoints", "samples", "done.json"].includes(name) ||
  /^eval-step-\d+\.json$/.test(name) || /^metrics-rolled-back-\d+\.jsonl$/.test(name)

const entriesOf = (dir: string) => io(dir, () => fs.readdir(dir).catch((): Array<string> => []))

/**
 * Removes what a killed run left half-written: `.tmp-*` files and folders in the run folder and in
 * `checkpoints/`. A checkpoint set aside by a replacement that was cut short (`.tmp-old-step-*` without its
 * `step-*`) is put back. Returns the paths removed.
 *
 * @example
 * await Effect.runPromise(removeStale("runs/x")) // => ["runs/x/checkpoints/.tmp-step-000030-4711"]
 *
 * @category constructors
 */
export const removeStale = (dir: string): Effect.Effect<Array<string>, RunFolderError> =>
  Effect.gen(function*() {
    const removed: Array<string> = []
    for (const folder of [dir, join(dir, "checkpoints")]) {
      const names = yield* entriesOf(folder)
      for (const name of names.filter((n) => n.startsWith(".tmp-"))) {
        const path = join(folder, name)
        const aside = /^\.tmp-old-(step-\d+.*)-\d+$/.exec(name)
        if (aside !== null && !names.includes(aside[1]!)) {
          yield* write(path, () => fs.rename(path, join(folder, aside[1]!)))
          continue
        }
        yield* write(path, () => fs.rm(path, { recursive: true, force: true }))
        removed.push(path)
      }
    }
    return removed
  })

/**
 * Opens the run folder at the start of a command: removes stale temporaries (logging them), then, for a
 * fresh run (not `resume`), refuses a folder that already holds a run with a {@link RunFolderNotEmptyError}
 * unless `overwrite`, which removes that run's files (other files stay). Creates `checkpoints/`.
 *
 * @example
 * await Effect.runPromise(Effect.flip(open("runs/x", { resume: false, overwrite: false }, console.log)))
 * // => RunFolderNotEmptyError { dir: "runs/x", entries: ["checkpoints", "config.yaml", "metrics.jsonl"] }
 *
 * @category constructors
 */
export const open = (
  dir: string,
  options: { readonly resume: boolean; readonly overwrite: boolean },
  log: (line: string) => void
): Effect.Effect<void, RunFolderError | RunFolderNotEmptyError> =>
  Effect.gen(function*() {
    const stale = yield* removeStale(dir)
    if (stale.length > 0) log(`removed ${stale.length} temporary file(s) left by an interrupted write: ${stale.join(", ")}`)
    if (!options.resume) {
      const used = (yield* entriesOf(dir)).filter(runEntry).sort()
      if (used.length > 0 && !options.overwrite) return yield* new RunFolderNotEmptyError({ dir, entries: used })
      for (const name of used) yield* write(join(dir, name), () => fs.rm(join(dir, name), { recursive: true, force: true }))
    }
    yield* write(dir, () => fs.mkdir(join(dir, "checkpoints"), { recursive: true }))
  })

/**
 * Writes `config.yaml` atomically.
 *
 * @example
 * await Effect.runPromise(writeConfig("runs/x", config))
 * (await Effect.runPromise(loadConfig({ file: "runs/x/config.yaml" }))).trainer.seed // => config.trainer.seed
 *
 * @category constructors
 */
export const writeConfig = (dir: string, config: Config): Effect.Effect<void, RunFolderError> => writeAtomic(join(dir, "config.yaml"), toYaml(config))

/**
 * Keys that may change on `--resume` (how long, how often to save, evaluate and log, on how many threads,
 * the test split): everything else changes the model or the algorithm.
 */
const benignKeys = [
  "trainer.maxSteps", "trainer.saveFreq", "trainer.saveLimit", "trainer.valFreq", "trainer.valAvgK", "trainer.valTemperature",
  "trainer.curveFreq", "trainer.logSampleFreq", "trainer.numSamples", "trainer.logger", "trainer.threads", "trainer.backend",
  "trainer.maxConsecutiveNonFinite", "trainer.collapseGuard.", "trainer.outputDir", "trainer.experimentName",
  "sft.steps", "data.test", "data.testSize", "worker.reward.workers", "worker.reward.timeoutMs"
]
const isBenign = (key: string) => benignKeys.some((b) => (b.endsWith(".") ? key.startsWith(b) : key === b))

const flatten = (o: unknown, prefix = ""): Array<[string, unknown]> =>
  typeof o === "object" && o !== null && !Array.isArray(o)
    ? Object.entries(o).flatMap(([k, v]) => flatten(v, prefix === "" ? k : `${prefix}.${k}`))
    : [[prefix, o]]

/**
 * The keys whose values differ between two configs, except those that may change on resume (run length,
 * save / evaluation / logging frequency, threads, backend, the test split).
 *
 * @example
 * changedKeys(defaultConfig, { ...defaultConfig, trainer: { ...defaultConfig.trainer, maxSteps: 5 } }) // => []
 *
 * @category constructors
 */
export const changedKeys = (saved: Config, given: Config): Array<{ readonly key: string; readonly saved: unknown; readonly given: unknown }> => {
  const a = new Map(flatten(saved)), b = new Map(flatten(given))
  return [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => !isBenign(k) && JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k)))
    .sort()
    .map((key) => ({ key, saved: a.get(key), given: b.get(key) }))
}

/**
 * On `--resume`: compares the resolved config with the run's `config.yaml` and fails with a
 * {@link ConfigChangedError} listing the changed model or algorithm keys (nothing is written), unless
 * `allowChange`.
 *
 * @example
 * const e = await Effect.runPromise(Effect.flip(checkConfig("runs/x", { ...saved, algorithm: { ...saved.algorithm, klPrcpCoef: 0.04 } }, false)))
 * e.keys.map((k) => k.key) // => ["algorithm.klPrcpCoef"]
 *
 * @category constructors
 */
export const checkConfig = (dir: string, config: Config, allowChange: boolean): Effect.Effect<void, RunFolderError | ConfigChangedError> =>
  Effect.gen(function*() {
    const path = join(dir, "config.yaml")
    const saved = yield* loadConfig({ file: path }).pipe(Effect.mapError((e) => new RunFolderError({ path, reason: e.message })))
    const keys = changedKeys(saved, config)
    if (keys.length > 0 && !allowChange) return yield* new ConfigChangedError({ path, keys })
  })

// ---------------------------------------------------------------------------------------------------
// checkpoints

/**
 * What a checkpoint holds: the policy, its reference (GRPO family), optimizer, tokenizer and the trainer state.
 *
 * @example
 * const input: SaveInput = { policy, reference: null, optimizer, tokenizer, state: { kind: "sft", step: 30, cursor: 240 } }
 *
 * @category models
 */
export interface SaveInput {
  readonly policy: Policy.Policy
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW
  readonly tokenizer: Tokenizer.Tokenizer
  readonly state: CheckpointState
}

const checkpointNames = (dir: string) =>
  entriesOf(join(dir, "checkpoints")).pipe(Effect.map((names) => names.filter((f) => /^step-\d+$/.test(f)).sort()))

/**
 * Saves `checkpoints/step-<k><label>`: written into a `.tmp-*` folder (every file fsynced), renamed into
 * place; a checkpoint already there is renamed aside first and removed only after. Keeps the newest `keep`.
 * Not interruptible.
 *
 * @example
 * await Effect.runPromise(saveCheckpoint("runs/x", 30, input, 3)) // => "runs/x/checkpoints/step-000030"
 *
 * @category constructors
 */
export const saveCheckpoint = (dir: string, step: number, input: SaveInput, keep: number, label = ""): Effect.Effect<string, RunFolderError> => {
  const root = join(dir, "checkpoints")
  const name = `step-${pad(step)}${label}`
  const final = join(root, name)
  return Effect.gen(function*() {
    yield* write(final, async () => {
      const tmp = join(root, tmpName(name))
      await fs.rm(tmp, { recursive: true, force: true })
      await fs.mkdir(tmp, { recursive: true })
      await Checkpoint.save(join(tmp, "actor"), { policy: input.policy, tokenizer: input.tokenizer, optimizer: input.optimizer, extra: input.state })
      if (input.reference !== null) await Checkpoint.save(join(tmp, "reference"), { policy: input.reference })
      await Checkpoint.syncDir(tmp)
      const aside = join(root, tmpName(`old-${name}`))
      const existed = await fs.rename(final, aside).then(() => true, () => false)
      await fs.rename(tmp, final)
      await Checkpoint.syncDir(root)
      if (existed) await fs.rm(aside, { recursive: true, force: true })
    })
    const all = yield* checkpointNames(dir)
    for (const old of all.slice(0, Math.max(0, all.length - keep))) yield* write(join(root, old), () => fs.rm(join(root, old), { recursive: true, force: true }))
    return final
  })
}

/**
 * The newest checkpoint folder of a run by name (not loaded), or null.
 *
 * @example
 * await Effect.runPromise(latestCheckpoint("runs/x")) // => "runs/x/checkpoints/step-000030"
 *
 * @category constructors
 */
export const latestCheckpoint = (dir: string): Effect.Effect<string | null, RunFolderError> =>
  checkpointNames(dir).pipe(Effect.map((all) => (all.length ? join(dir, "checkpoints", all[all.length - 1]!) : null)))

/**
 * A loaded trainer checkpoint.
 *
 * @example
 * const { policy, state } = await Effect.runPromise(loadCheckpoint(folder, optim))
 *
 * @category models
 */
export interface Loaded {
  readonly policy: Policy.Policy
  readonly optimizer: Optimizer.AdamW
  readonly tokenizer: Tokenizer.Tokenizer
  readonly referenceWeights: Record<string, Float32Array> | null
  readonly state: CheckpointState
}

const corrupt = (path: string) => (e: unknown) => new CheckpointCorruptError({ path, reason: reasonOf(e) })

/**
 * Reads a model checkpoint folder (its `config.json` and weights, no model built), failing with a
 * {@link CheckpointCorruptError} that names it.
 *
 * @example
 * (await Effect.runPromise(readModelCheckpoint("runs/warm/checkpoints/step-000300/actor"))).extra // => { kind: "sft", step: 300, … }
 *
 * @category constructors
 */
export const readModelCheckpoint = (path: string): Effect.Effect<Checkpoint.Loaded, CheckpointCorruptError> =>
  Effect.tryPromise({ try: () => Checkpoint.load(path), catch: corrupt(path) })

/**
 * The architecture a model checkpoint folder's `config.json` holds (under `"model"`), failing with a
 * {@link CheckpointCorruptError} that names the file.
 *
 * @example
 * (await Effect.runPromise(readModelConfig("runs/warm/checkpoints/step-000300/actor"))).maxPromptLength // => 48
 *
 * @category constructors
 */
export const readModelConfig = (path: string): Effect.Effect<ModelConfigs.ModelConfig, CheckpointCorruptError> => {
  const file = join(path, "config.json")
  return Effect.tryPromise({
    try: async () => (JSON.parse(await fs.readFile(file, "utf8")) as { model: ModelConfigs.ModelConfig }).model,
    catch: corrupt(file)
  })
}

const hasReference = (folder: string) => Effect.promise(() => fs.stat(join(folder, "reference")).then(() => true, () => false))

const decodeState = (folder: string, extra: unknown) =>
  Schema.decodeUnknownEffect(CheckpointState)(extra).pipe(
    Effect.mapError((e) => new CheckpointCorruptError({ path: join(folder, "actor"), reason: `trainer state: ${oneLine(e.message)}` }))
  )

/**
 * Checks a trainer checkpoint folder without building a model: every file against the checksums of its
 * `config.json`, the reference if there is one, the trainer state against {@link CheckpointState}.
 *
 * @example
 * (await Effect.runPromise(verifyCheckpoint("runs/x/checkpoints/step-000030"))).step // => 30
 *
 * @category constructors
 */
export const verifyCheckpoint = (folder: string): Effect.Effect<CheckpointState, CheckpointCorruptError> =>
  Effect.gen(function*() {
    const actor = yield* Effect.tryPromise({ try: () => Checkpoint.load(join(folder, "actor")), catch: corrupt(folder) })
    if (yield* hasReference(folder)) yield* Effect.tryPromise({ try: () => Checkpoint.load(join(folder, "reference")), catch: corrupt(folder) })
    return yield* decodeState(folder, actor.extra)
  })

/**
 * The newest checkpoint of a run that {@link verifyCheckpoint} accepts, or null when there is none; each
 * corrupt newer one is reported through `warn` and skipped.
 *
 * @example
 * await Effect.runPromise(newestIntactCheckpoint("runs/x", console.warn)) // => "runs/x/checkpoints/step-000025"
 * // warns: "warning: runs/x/checkpoints/step-000030: corrupt checkpoint: … sha256 …; falling back to an older checkpoint"
 *
 * @category constructors
 */
export const newestIntactCheckpoint = (dir: string, warn: (line: string) => void): Effect.Effect<string | null, RunFolderError> =>
  Effect.gen(function*() {
    const names = yield* checkpointNames(dir)
    for (const name of names.reverse()) {
      const folder = join(dir, "checkpoints", name)
      const intact = yield* verifyCheckpoint(folder).pipe(
        Effect.as(true),
        Effect.catchTag("CheckpointCorruptError", (e) => Effect.sync(() => (warn(`warning: ${e.message}; falling back to an older checkpoint`), false)))
      )
      if (intact) return folder
    }
    return null
  })

/**
 * Goes back to the newest checkpoint at or before `step`: deletes the later ones and returns its step,
 * or null (and deletes them all) when there is none.
 *
 * @example
 * await Effect.runPromise(rollBackCheckpoints("runs/x", 27)) // => 25 (step-000030 deleted)
 *
 * @category constructors
 */
export const rollBackCheckpoints = (dir: string, step: number): Effect.Effect<number | null, RunFolderError> =>
  Effect.gen(function*() {
    const all = (yield* checkpointNames(dir)).map((name) => ({ name, step: Number(name.slice(5)) }))
    for (const c of all.filter((c) => c.step > step)) {
      const path = join(dir, "checkpoints", c.name)
      yield* write(path, () => fs.rm(path, { recursive: true, force: true }))
    }
    return all.filter((c) => c.step <= step).at(-1)?.step ?? null
  })

/**
 * The model checkpoint folder a path names: a model checkpoint itself, a trainer checkpoint (its
 * `actor/`), or a run folder (its newest checkpoint's `actor/`).
 *
 * @example
 * await Effect.runPromise(resolveModelCheckpoint("runs/warm")) // => "runs/warm/checkpoints/step-000300/actor"
 *
 * @category constructors
 */
export const resolveModelCheckpoint = (path: string): Effect.Effect<string, RunFolderError> =>
  Effect.gen(function*() {
    const exists = (p: string) => io(p, () => fs.stat(p).then(() => true, () => false))
    if (yield* exists(join(path, "config.json"))) return path
    if (yield* exists(join(path, "actor", "config.json"))) return join(path, "actor")
    const latest = yield* latestCheckpoint(path)
    if (latest !== null) return join(latest, "actor")
    return yield* new RunFolderError({ path, reason: "not a checkpoint, a trainer checkpoint or a run folder with checkpoints" })
  })

/**
 * Loads a trainer checkpoint folder (`actor/`, optional `reference/`) and decodes its trainer state.
 *
 * @example
 * (await Effect.runPromise(loadCheckpoint("runs/x/checkpoints/step-000030", optim))).state.step // => 30
 *
 * @category constructors
 */
export const loadCheckpoint = (folder: string, optim: Optimizer.AdamWConfig): Effect.Effect<Loaded, CheckpointCorruptError> =>
  Effect.gen(function*() {
    const actor = yield* Effect.tryPromise({ try: () => Checkpoint.restore(join(folder, "actor"), optim), catch: corrupt(folder) })
    if (actor.tokenizer === null || actor.adamW === null) {
      return yield* new CheckpointCorruptError({ path: folder, reason: "the actor checkpoint lacks its tokenizer or optimizer" })
    }
    const state = yield* decodeState(folder, actor.extra)
    const ref = (yield* hasReference(folder))
      ? yield* Effect.tryPromise({ try: () => Checkpoint.load(join(folder, "reference")), catch: corrupt(folder) })
      : null
    return { policy: actor.policy, optimizer: actor.adamW, tokenizer: actor.tokenizer, referenceWeights: ref?.weights ?? null, state }
  })
