/**
 * A study: an SFT warm start (one per seed, or one shared by all with `sharedWarmStart`), then several RL
 * arms trained from that checkpoint with the same seeds and data order, each evaluated on the held-out
 * split. `compare` (the main job) is GRPO vs PAPO-G on the cued-digit task, with the warm-start checks
 * and a primary result paired by seed. Studies are YAML files in `apps/experiments/studies/`.
 *
 * ```yaml
 * description: GRPO vs PAPO-G on the digit task
 * seeds: [1]
 * base: { trainer: { maxSteps: 40 } }     # a partial trainer config for every run
 * sft: { sft: { steps: 300 } }            # extra settings of the warm start
 * arms:
 *   - { label: GRPO, preset: grpo }
 *   - { label: PAPO-G, preset: papo-g, overrides: { algorithm: { klPrcpCoef: 0.02 } } }
 * ```
 *
 * Every run's config is resolved and validated before any work, so a bad key stops the study at once.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { type Config, ConfigLoad, Presets } from "@papo/trainer"
import { Data, Effect, Schema } from "effect"
import * as YAML from "yaml"

/**
 * A study file could not be read or is not valid.
 *
 * @category errors
 */
export class StudyError extends Data.TaggedError("StudyError")<{ readonly source: string; readonly problems: ReadonlyArray<string> }> {
  override get message(): string {
    return `${this.source}:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

const Partial = Schema.Record(Schema.String, Schema.Unknown)
/** A partial trainer config, `{}` when absent. */
const OptionalPartial = Partial.pipe(Schema.withDecodingDefaultKey(Effect.succeed({})))

const Arm = Schema.Struct({
  /** Shown in tables and legends. */
  label: Schema.String.check(Schema.isMinLength(1)),
  preset: Schema.Literals(Presets.presetNames),
  overrides: OptionalPartial
})

/**
 * The study file's schema.
 *
 * @category configuration
 */
export const StudySpec = Schema.Struct({
  description: Schema.String,
  seeds: Schema.Array(Schema.Int).check(Schema.isMinLength(1)),
  base: OptionalPartial,
  sft: OptionalPartial,
  arms: Schema.Array(Arm).check(Schema.isMinLength(1)),
  /** Which arm the others are compared with (its label); default the first. */
  baseline: Schema.optionalKey(Schema.String),
  /**
   * The seed of one warm start that every seed's arms start from (the arms still differ by seed: data
   * order, sampling, masks). Absent: one warm start per seed.
   */
  sharedWarmStart: Schema.optionalKey(Schema.Int),
  /**
   * The warm-start checks of a task with a language prior (test subsets `uncued` and `conflict`): the
   * least uncued accuracy (it can see) and the least share of conflict answers that follow the cue (the
   * shortcut exists); optionally the most (`followsPriorMax`: above it a group of rollouts almost never
   * holds a correct reading of a conflict, so RL has nothing to learn there). When one fails, the arms
   * are not run and the report says the miniature is invalid for the question.
   */
  checks: Schema.optionalKey(Schema.Struct({ canSee: Schema.Number, followsPrior: Schema.Number, followsPriorMax: Schema.optionalKey(Schema.Number) })),
  /** The primary result: this arm minus the baseline on this test subset's accuracy, paired by seed. */
  primary: Schema.optionalKey(Schema.Struct({ method: Schema.String, subset: Schema.String }))
})

/**
 * A decoded study file.
 *
 * @category models
 */
export type StudySpec = typeof StudySpec.Type

/**
 * One run of a study, with its resolved config.
 *
 * @category models
 */
export interface PlannedRun {
  readonly kind: "sft" | "rl"
  readonly label: string
  readonly seed: number
  readonly config: Config.Config
}

/**
 * A study ready to run: every config resolved.
 *
 * @category models
 */
export interface Plan {
  readonly name: string
  readonly spec: StudySpec
  readonly baseline: string
  readonly runs: ReadonlyArray<PlannedRun>
}

/**
 * Where a plan's runs go, and the command line's overrides (they win over the study's own settings).
 *
 * @category configuration
 */
export interface PlanOptions {
  readonly outputDir: string
  readonly overrides?: Presets.PartialConfig
}

/** A label as a folder name. */
const slug = (label: string) => label.toLowerCase().replace(/[^a-z0-9.]+/g, "-").replace(/^-|-$/g, "")

/**
 * Decodes a study (from YAML text) and resolves the config of every run. RL runs get
 * `worker.actor.init` from their seed's SFT run when they are executed.
 *
 * @category constructors
 */
export const plan = (name: string, yamlText: string, options: PlanOptions): Effect.Effect<Plan, StudyError | ConfigLoad.ConfigError> =>
  Effect.gen(function*() {
    const source = `study "${name}"`
    const raw = yield* Effect.try({
      try: () => YAML.parse(yamlText) as unknown,
      catch: (e) => new StudyError({ source, problems: [`not valid YAML: ${(e as Error).message.split("\n")[0]}`] })
    })
    const spec = yield* Schema.decodeUnknownEffect(StudySpec)(raw, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) =>
new StudyError({ source, problems: ConfigLoad.schemaProblems(e.issue, raw) })
      )
    )
    const labels = spec.arms.map((a) => a.label)
    const duplicate = labels.find((l, i) => labels.indexOf(l) !== i)
    if (duplicate !== undefined) return yield* new StudyError({ source, problems: [`arm label "${duplicate}" is used twice`] })
    const baseline = spec.baseline ?? labels[0]!
    for (const [what, label] of [["baseline", baseline], ["primary.method", spec.primary?.method ?? baseline]] as const) {
      if (!labels.includes(label)) return yield* new StudyError({ source, problems: [`${what} "${label}" is not an arm; arms: ${labels.join(", ")}`] })
    }
    // Command-line overrides win over the study's own settings, for every run.
    const resolve = (label: string, seed: number, extra: Presets.PartialConfig, kind: "sft" | "rl") =>
      ConfigLoad.resolveConfig(
        Presets.deepMerge(Presets.deepMerge(Presets.deepMerge(spec.base, extra), options.overrides ?? {}), {
          trainer: {
            seed,
            outputDir: options.outputDir,
            experimentName: kind === "sft" && spec.sharedWarmStart !== undefined ? `${name}/warm-start` : `${name}/seed-${seed}/${slug(label)}`
          },
          data: { seed }
        }),
        `${source}, ${kind === "sft" ? "warm start" : `arm "${label}"`}, seed ${seed}`
      ).pipe(Effect.map((config): PlannedRun => ({ kind, label, seed, config })))
    const runs: Array<PlannedRun> = []
    const shared = spec.sharedWarmStart
    if (shared !== undefined) runs.push(yield* resolve("SFT", shared, { ...spec.sft, preset: "grpo" }, "sft"))
    for (const seed of spec.seeds) {
      if (shared === undefined) runs.push(yield* resolve("SFT", seed, { ...spec.sft, preset: "grpo" }, "sft"))
      for (const arm of spec.arms) runs.push(yield* resolve(arm.label, seed, { ...arm.overrides, preset: arm.preset }, "rl"))
    }
    return { name, spec, baseline, runs } satisfies Plan
  })

/**
 * Reads `apps/experiments/studies/<name>.yaml` (or a path to a YAML file) and plans it.
 *
 * @category constructors
 */
export const load = (nameOrPath: string, studiesDir: string, options: PlanOptions): Effect.Effect<Plan, StudyError | ConfigLoad.ConfigError> =>
  Effect.gen(function*() {
    const isPath = nameOrPath.endsWith(".yaml") || nameOrPath.endsWith(".yml")
    const file = isPath ? nameOrPath : `${studiesDir}/${nameOrPath}.yaml`
    const name = isPath ? slug(nameOrPath.replace(/^.*\//, "").replace(/\.ya?ml$/, "")) : nameOrPath
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: () => new StudyError({ source: file, problems: [`no such study; see ${studiesDir}/ for the available ones`] })
    })
    return yield* plan(name, text, options)
  })
