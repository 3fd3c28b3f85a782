/**
 * Runs a planned study: per seed, the SFT warm start, then every arm from that checkpoint, collecting
 * each run's evaluation and metrics. A run folder that already holds a finished result is reused, so an
 * interrupted study picks up where it stopped (`--fresh` deletes the study's folder first). Each run gets
 * the verifier its own `worker.reward` describes and loads the backend its `trainer.backend` names; what
 * ran is read back from the run folder's `start` event.
 *
 * @since 0.1.0
 */
import { execFileSync } from "node:child_process"
import { readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import { Config, Evaluate, RunFolder, Train, Verifier } from "@papo/trainer"
import { Console, Data, Effect } from "effect"
import type { Plan, PlannedRun } from "./Study.js"

/**
 * One finished run.
 *
 * @category models
 */
export interface RunOutcome {
  readonly kind: "sft" | "rl"
  readonly label: string
  readonly seed: number
  readonly dir: string
  readonly eval: Evaluate.EvalResult
  /** One row per training step (empty for SFT's own steps, which the report does not plot). */
  readonly metrics: ReadonlyArray<Readonly<Record<string, number>>>
  /** The collapse guard's log (`events.jsonl` without its `start` events): warnings, collapses, rollbacks. */
  readonly events: ReadonlyArray<Readonly<Record<string, unknown>>>
  /** The backend that ran (`describe` of what loaded), from the run's last `start` event; null when not recorded. */
  readonly backend: string | null
  /** The verifier's grading mode (`worker.reward.mode` as the verifier ran it); null when not recorded. */
  readonly verifier: string | null
  readonly seconds: number
}

/**
 * The warm-start checks of a task with a language prior: uncued accuracy (it can see) and the share of
 * conflict answers that follow the cue (the shortcut exists, and — below `followsPriorMax` — RL still
 * samples a correct reading often enough to learn from), fractions in [0, 1], against the study's
 * thresholds.
 *
 * @category models
 */
export interface Checks {
  readonly canSee: number
  readonly followsPrior: number
  readonly valid: boolean
  readonly thresholds: { readonly canSee: number; readonly followsPrior: number; readonly followsPriorMax?: number | undefined }
}

/**
 * The checks of a warm start's evaluation (NaN, and not valid, when a subset is missing).
 *
 * @example
 * warmStartChecks(evalOfWarmStart, { canSee: 0.8, followsPrior: 0.6, followsPriorMax: 0.9 }) // => { canSee: 0.91, followsPrior: 0.72, valid: true, thresholds }
 *
 * @category constructors
 */
export const warmStartChecks = (result: Evaluate.EvalResult, thresholds: Checks["thresholds"]): Checks => {
  const canSee = result.subsets["uncued"]?.accuracy ?? NaN
  const followsPrior = result.subsets["conflict"]?.priorRate ?? NaN
  const valid = canSee >= thresholds.canSee && followsPrior >= thresholds.followsPrior && followsPrior <= (thresholds.followsPriorMax ?? 1)
  return { canSee, followsPrior, valid, thresholds }
}

/**
 * The checks' figures against their thresholds, in words (for the console and the report).
 *
 * @example
 * checksText(checks) // => "uncued accuracy 98.5% (needs ≥ 80.0%: it can see), conflict answers that follow the cue 72.0% (needs 60.0% … 90.0%: …)"
 *
 * @category constructors
 */
export const checksText = (c: Checks): string => {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`
  const t = c.thresholds
  const follow = t.followsPriorMax === undefined
    ? `needs ≥ ${pct(t.followsPrior)}: it has learned the prior`
    : `needs ${pct(t.followsPrior)} … ${pct(t.followsPriorMax)}: it has learned the prior, and still reads often enough for RL to learn from`
  return `uncued accuracy ${pct(c.canSee)} (needs ≥ ${pct(t.canSee)}: it can see), conflict answers that follow the cue ${pct(c.followsPrior)} (${follow})`
}

/**
 * Everything a report needs.
 *
 * @category models
 */
export interface StudyResult {
  readonly name: string
  readonly description: string
  readonly baseline: string
  readonly arms: ReadonlyArray<string>
  readonly seeds: ReadonlyArray<number>
  readonly runs: ReadonlyArray<RunOutcome>
  /** The warm-start checks, when the study asks for them; the arms ran only if they passed. */
  readonly checks: Checks | null
  /** The primary comparison the study names: this arm minus the baseline on this subset's accuracy. */
  readonly primary: { readonly method: string; readonly subset: string } | null
  /** Arm label → preset name. */
  readonly presets: Readonly<Record<string, string>>
  /** `git describe` of the code, or "unknown" outside a git checkout. */
  readonly codeVersion: string
  /** The backend asked for (`--backend`, default `auto`); each run's `backend` is the one that ran. */
  readonly requestedBackend: string
  readonly startedAt: string
  readonly seconds: number
}

const codeVersion = (): string => {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return "unknown"
  }
}

/**
 * A run of the study (the warm start or an arm, at a seed) failed; `cause` is the trainer's error.
 *
 * @example
 * new RunFailedError({ run: "PAPO-G", seed: 2, dir: "runs/compare/seed-2/papo-g", cause: new Error("disk full") }).message
 * // => "PAPO-G (seed 2) failed in runs/compare/seed-2/papo-g: disk full"
 *
 * @category errors
 */
export class RunFailedError extends Data.TaggedError("RunFailedError")<{
  /** The arm's label, or "SFT warm start". */
  readonly run: string
  readonly seed: number
  readonly dir: string
  readonly cause: unknown
}> {
  override get message(): string {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.run} (seed ${this.seed}) failed in ${this.dir}: ${why}`
  }
}

/**
 * A run finished without what the study needs from it: its evaluation (it was interrupted), or, for the
 * warm start, a checkpoint for the arms to start from.
 *
 * @example
 * new RunIncompleteError({ run: "SFT warm start", seed: 0, dir: "runs/compare/warm-start", missing: "checkpoint" }).message
 * // => "SFT warm start (seed 0) in runs/compare/warm-start finished without a checkpoint"
 *
 * @category errors
 */
export class RunIncompleteError extends Data.TaggedError("RunIncompleteError")<{
  readonly run: string
  readonly seed: number
  readonly dir: string
  readonly missing: "evaluation" | "checkpoint"
}> {
  override get message(): string {
    return `${this.run} (seed ${this.seed}) in ${this.dir} finished without ${this.missing === "evaluation" ? "an evaluation" : "a checkpoint"}`
  }
}

/**
 * A file of the study's folders could not be read, parsed or written.
 *
 * @example
 * new StudyFileError({ path: "runs/compare/warm-start/done.json", reason: "not JSON: Unexpected end of JSON input" }).message
 * // => "runs/compare/warm-start/done.json: not JSON: Unexpected end of JSON input"
 *
 * @category errors
 */
export class StudyFileError extends Data.TaggedError("StudyFileError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/**
 * Every way running a study can fail (besides its trainer config, checked when it is planned).
 *
 * @category errors
 */
export type RunnerError = RunFailedError | RunIncompleteError | StudyFileError | RunFolder.RunFolderError | RunFolder.JsonlLineError

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? ""

/** A file's text, or null when it does not exist. */
const readIfExists = (path: string): Effect.Effect<string | null, StudyFileError> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? null : Promise.reject(e))),
    catch: (e) => new StudyFileError({ path, reason: reasonOf(e) })
  })

const parseJson = (path: string, text: string, line?: number): Effect.Effect<unknown, StudyFileError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => new StudyFileError({ path, reason: `${line === undefined ? "" : `line ${line}: `}not JSON: ${reasonOf(e)}` })
  })

type Done = { readonly eval: Evaluate.EvalResult; readonly seconds: number }

/** `done.json`: a finished run's evaluation and time, or null when the run has not finished. */
const readDone = (dir: string): Effect.Effect<Done | null, StudyFileError> =>
  Effect.gen(function*() {
    const path = join(dir, "done.json")
    const text = yield* readIfExists(path)
    return text === null ? null : (yield* parseJson(path, text)) as Done
  })

/** Written last and atomically (`RunFolder.writeAtomic`), so a killed study never leaves a torn one. */
const writeDone = (dir: string, done: Done): Effect.Effect<void, StudyFileError> =>
  RunFolder.writeAtomic(join(dir, "done.json"), JSON.stringify(done)).pipe(
    Effect.mapError((e) => new StudyFileError({ path: e.path, reason: `cannot write: ${e.reason}` }))
  )

/** What the run's last `start` event says ran: the backend line and the verifier's mode. */
const servicesOf = (events: ReadonlyArray<typeof RunFolder.Event.Type>) => {
  const start = events.flatMap((e) => (e.event === "start" ? [e] : [])).at(-1)
  return { backend: start?.backend.description ?? null, verifier: start?.reward.mode ?? null }
}

const runName = (run: PlannedRun) => (run.kind === "sft" ? "SFT warm start" : run.label)

const runOne = (
  run: PlannedRun,
  init: string | null,
  index: number,
  total: number
): Effect.Effect<{ readonly done: Done; readonly dir: string }, RunFailedError | RunIncompleteError | StudyFileError> =>
  Effect.gen(function*() {
    const config: Config.Config = init === null
      ? run.config
      : { ...run.config, worker: { ...run.config.worker, actor: { ...run.config.worker.actor, init } } }
    const dir = RunFolder.runDir(config)
    const what = `[${index}/${total}] ${runName(run)} (seed ${run.seed})`
    const done = yield* readDone(dir)
    if (done !== null) {
      yield* Console.log(`${what}: already done in ${dir}, reusing it`)
      return { done, dir }
    }
    yield* Console.log(`${what} → ${dir}`)
    const started = performance.now()
    // No done.json: an earlier attempt was cut short, or there was none; the run starts over in its folder.
    // The verifier this run's own config describes (a study's `worker.reward.*` applies to its runs).
    const command: Effect.Effect<Train.RunResult, Train.RunError, Verifier.Verifier> = run.kind === "sft"
      ? Train.sft(config, { overwrite: true })
      : Train.train(config, { overwrite: true })
    const result = yield* command.pipe(
      Effect.provide(Verifier.Verifier.layer(config.worker.reward)),
      Effect.mapError((cause) => new RunFailedError({ run: runName(run), seed: run.seed, dir, cause }))
    )
    if (result.eval === null) return yield* new RunIncompleteError({ run: runName(run), seed: run.seed, dir, missing: "evaluation" })
    const record = { eval: result.eval, seconds: (performance.now() - started) / 1000 }
    yield* writeDone(dir, record)
    return { done: record, dir }
  })

/**
 * Runs the plan in order and gathers the results.
 *
 * @category commands
 */
export const runStudy = (
  plan: Plan,
  options: { readonly fresh?: boolean; readonly backend: string }
): Effect.Effect<StudyResult, RunnerError> =>
  Effect.gen(function*() {
    const startedAt = new Date().toISOString()
    const started = performance.now()
    const root = join(plan.runs[0]!.config.trainer.outputDir, plan.name)
    if (options.fresh) {
      yield* Effect.tryPromise({
        try: () => rm(root, { recursive: true, force: true }),
        catch: (e) => new StudyFileError({ path: root, reason: `cannot delete (--fresh): ${reasonOf(e)}` })
      })
    }
    const outcomes: Array<RunOutcome> = []
    let init: string | null = null
    let checks: Checks | null = null
    for (const [i, run] of plan.runs.entries()) {
      if (run.kind === "rl" && checks !== null && !checks.valid) break
      const { done, dir }: { readonly done: Done; readonly dir: string } = yield* runOne(run, run.kind === "sft" ? null : init, i + 1, plan.runs.length)
      if (run.kind === "sft") {
        const checkpoint: string | null = yield* RunFolder.latestCheckpoint(dir)
        if (checkpoint === null) return yield* new RunIncompleteError({ run: runName(run), seed: run.seed, dir, missing: "checkpoint" })
        init = checkpoint
        const thresholds = plan.spec.checks
        if (thresholds !== undefined) {
          checks = warmStartChecks(done.eval, thresholds)
          yield* Console.log(`warm-start checks: ${checksText(checks)}: ${checks.valid ? "valid" : "INVALID for the question; the arms are not run"}`)
        }
      }
      const metrics = run.kind === "rl" ? yield* RunFolder.readMetrics(dir) : []
      const events = yield* RunFolder.readEvents(dir)
      outcomes.push({
        kind: run.kind,
        label: run.label,
        seed: run.seed,
        dir,
        eval: done.eval,
        metrics,
        events: events.filter((e) => e.event !== "start"),
        ...servicesOf(events),
        seconds: done.seconds
      })
    }
    return {
      name: plan.name,
      description: plan.spec.description,
      baseline: plan.baseline,
      arms: plan.spec.arms.map((a) => a.label),
      seeds: plan.spec.seeds,
      runs: outcomes,
      checks,
      primary: plan.spec.primary ?? null,
      presets: Object.fromEntries(plan.spec.arms.map((a) => [a.label, a.preset])),
      codeVersion: codeVersion(),
      requestedBackend: options.backend,
      startedAt,
      seconds: (performance.now() - started) / 1000
    } satisfies StudyResult
  })
