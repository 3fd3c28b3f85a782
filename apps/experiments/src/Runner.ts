/**
 * Runs a planned study: per seed, the SFT warm start, then every arm from that checkpoint, collecting
 * each run's evaluation and metrics. A run folder that already holds a finished result is reused, so an
 * interrupted study picks up where it stopped (`--fresh` deletes the study's folder first).
 *
 * @since 0.1.0
 */
import { execFileSync } from "node:child_process"
import { readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Config, Evaluate, RunFolder, Train, Verifier } from "@papo/trainer"
import { Console, Effect } from "effect"
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
  /** The collapse guard's log (`events.jsonl`): warnings, collapses, rollbacks. */
  readonly events: ReadonlyArray<Readonly<Record<string, unknown>>>
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
  readonly backend: string
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

const readDone = (dir: string) =>
  Effect.tryPromise(() => readFile(join(dir, "done.json"), "utf8")).pipe(
    Effect.map((t) => JSON.parse(t) as Done),
    Effect.orElseSucceed(() => null)
  )

type Done = { readonly eval: Evaluate.EvalResult; readonly seconds: number }

const readEvents = (dir: string) =>
  Effect.promise(() =>
    readFile(join(dir, "events.jsonl"), "utf8")
      .then((t) => t.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>))
      .catch(() => [])
  )

const runOne = (
  run: PlannedRun,
  init: string | null,
  index: number,
  total: number
): Effect.Effect<{ readonly done: Done; readonly dir: string }, Error, Verifier.Verifier> =>
  Effect.gen(function*() {
    const config: Config.Config = init === null
      ? run.config
      : { ...run.config, worker: { ...run.config.worker, actor: { ...run.config.worker.actor, init } } }
    const dir = RunFolder.runDir(config)
    const what = `[${index}/${total}] ${run.kind === "sft" ? "SFT warm start" : run.label} (seed ${run.seed})`
    const done = yield* readDone(dir)
    if (done !== null) {
      yield* Console.log(`${what}: already done in ${dir}, reusing it`)
      return { done, dir }
    }
    yield* Console.log(`${what} → ${dir}`)
    const started = performance.now()
    // No done.json: an earlier attempt was cut short, or there was none; the run starts over in its folder.
    const result = run.kind === "sft" ? yield* Train.sft(config, { overwrite: true }) : yield* Train.train(config, { overwrite: true })
    if (result.eval === null) return yield* Effect.die(new Error(`${what} finished without an evaluation`))
    const seconds = (performance.now() - started) / 1000
    const record = { eval: result.eval, seconds }
    yield* Effect.tryPromise(() => writeFile(join(dir, "done.json"), JSON.stringify(record)))
    return { done: record, dir }
  })

/**
 * Runs the plan in order and gathers the results.
 *
 * @category commands
 */
export const runStudy = (plan: Plan, options: { readonly fresh?: boolean; readonly backend: string }): Effect.Effect<StudyResult, Error> =>
  Effect.gen(function*() {
    const startedAt = new Date().toISOString()
    const started = performance.now()
    const root = join(plan.runs[0]!.config.trainer.outputDir, plan.name)
    if (options.fresh) yield* Effect.tryPromise(() => rm(root, { recursive: true, force: true }))
    const outcomes: Array<RunOutcome> = []
    let init: string | null = null
    let checks: Checks | null = null
    for (const [i, run] of plan.runs.entries()) {
      if (run.kind === "rl" && checks !== null && !checks.valid) break
      const { done, dir }: { readonly done: Done; readonly dir: string } = yield* runOne(run, run.kind === "sft" ? null : init, i + 1, plan.runs.length)
      if (run.kind === "sft") {
        const checkpoint: string | null = yield* RunFolder.latestCheckpoint(dir)
        if (checkpoint === null) return yield* Effect.die(new Error(`the warm start in ${dir} left no checkpoint`))
        init = checkpoint
        const thresholds = plan.spec.checks
        if (thresholds !== undefined) {
          checks = warmStartChecks(done.eval, thresholds)
          yield* Console.log(`warm-start checks: ${checksText(checks)}: ${checks.valid ? "valid" : "INVALID for the question; the arms are not run"}`)
        }
      }
      const metrics = run.kind === "rl" ? yield* RunFolder.readMetrics(dir) : []
      const events = yield* readEvents(dir)
      outcomes.push({ kind: run.kind, label: run.label, seed: run.seed, dir, eval: done.eval, metrics, events, seconds: done.seconds })
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
      backend: options.backend,
      startedAt,
      seconds: (performance.now() - started) / 1000
    } satisfies StudyResult
  }).pipe(Effect.provide(Verifier.Verifier.mathRuler))
