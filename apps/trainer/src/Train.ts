/**
 * The three commands as functions a script can call: {@link train} (GRPO / DAPO / PAPO), {@link sft}
 * (the supervised warm start) and {@link evaluate} (avg@k with perception errors). Each takes a resolved
 * {@link Config} and returns an Effect that needs the {@link Verifier} service; {@link runPromise}
 * provides the one `worker.reward` describes. Each loads the backend `trainer.backend` names (the
 * `@papo/backend` layer) and records what loaded, with the verifier's settings, as a `start` event in the
 * run folder's `events.jsonl`. The CLI (`main.ts`) is a thin layer over these.
 *
 * A run that cannot go on fails with a tagged error naming what to act on: {@link NothingToResumeError},
 * {@link CheckpointKindError}, {@link MissingReferenceError}, {@link NonFiniteStreakError}, and those of the
 * modules it calls (`RunFolder`, `Dataset`, `Session`, `Sft`, `Step`); the session is a scoped resource,
 * closed after an interrupted run's checkpoint is saved.
 *
 * @example
 * const config = await Effect.runPromise(loadConfig({ overrides: ["preset=papo-g", "trainer.maxSteps=50"] }))
 * const result = await runPromise(train(config))
 * result.eval?.overall.accuracy
 *
 * @since 0.1.0
 */
import { Backend, describe } from "@papo/backend"
import { dirname, join } from "node:path"
import { Config as ModelConfigs, type Optimizer, Policy } from "@papo/model"
import { Console, Data, Effect } from "effect"
import type { Config } from "./Config.js"
import * as Dataset from "./Dataset.js"
import * as Evaluation from "./Evaluate.js"
import { classify } from "./Example.js"
import { Mt19937, Rng, Xoshiro128, type Xoshiro128State } from "@papo/random"
import * as CollapseGuard from "./CollapseGuard.js"
import * as Progress from "./Progress.js"
import * as Rollout from "./Rollout.js"
import * as RunFolder from "./RunFolder.js"
import * as Session from "./Session.js"
import * as Sft from "./Sft.js"
import * as Step from "./Step.js"
import { Verifier } from "./Verifier.js"

/**
 * `--resume` on a run folder `dir` without an intact checkpoint (none saved yet, or all corrupt).
 *
 * @example
 * new NothingToResumeError({ dir: "runs/x" }).message
 * // => "--resume: no checkpoint to resume from in runs/x/checkpoints (none, or none intact); start it without --resume"
 *
 * @category errors
 */
export class NothingToResumeError extends Data.TaggedError("NothingToResumeError")<{ readonly dir: string }> {
  override get message(): string {
    return `--resume: no checkpoint to resume from in ${join(this.dir, "checkpoints")} (none, or none intact); start it without --resume`
  }
}

/**
 * `--resume` from the checkpoint `path` of another command: `found` (`train` or `sft`) where `expected`.
 *
 * @example
 * new CheckpointKindError({ path: "runs/x/checkpoints/step-000010", found: "sft", expected: "train" }).message
 * // => "--resume: runs/x/checkpoints/step-000010 is a sft checkpoint, not train; resume it with papo sft, or start the train run with worker.actor.init=runs/x"
 *
 * @category errors
 */
export class CheckpointKindError extends Data.TaggedError("CheckpointKindError")<{
  readonly path: string
  readonly found: "train" | "sft"
  readonly expected: "train" | "sft"
}> {
  override get message(): string {
    return `--resume: ${this.path} is a ${this.found} checkpoint, not ${this.expected}; resume it with papo ${this.found}${
      this.found === "sft" ? `, or start the train run with worker.actor.init=${dirname(dirname(this.path))}` : ""
    }`
  }
}

/**
 * `--resume` of a run with a reference KL (`algorithm.useKlLoss`) from the checkpoint `path`, which has no
 * `reference/` weights (saved by a run without it).
 *
 * @example
 * new MissingReferenceError({ path: "runs/x/checkpoints/step-000010" }).message
 * // => "--resume: runs/x/checkpoints/step-000010 has no reference weights, but algorithm.useKlLoss is on; resume with the run's own algorithm settings"
 *
 * @category errors
 */
export class MissingReferenceError extends Data.TaggedError("MissingReferenceError")<{ readonly path: string }> {
  override get message(): string {
    return `--resume: ${this.path} has no reference weights, but algorithm.useKlLoss is on; resume with the run's own algorithm settings`
  }
}

/**
 * `streak` steps in a row, up to `step`, had only non-finite losses or gradients (`max` =
 * `trainer.maxConsecutiveNonFinite`); the weights from before the fault are in the checkpoint `savedTo`.
 *
 * @example
 * new NonFiniteStreakError({ step: 12, streak: 3, max: 3, savedTo: "runs/x/checkpoints/step-000012-before-fault" }).message
 * // => "stopping at step 12: 3 steps in a row had only non-finite losses or gradients (trainer.maxConsecutiveNonFinite = 3); the weights from before the fault are saved in runs/x/checkpoints/step-000012-before-fault"
 *
 * @category errors
 */
export class NonFiniteStreakError extends Data.TaggedError("NonFiniteStreakError")<{
  readonly step: number
  readonly streak: number
  readonly max: number
  readonly savedTo: string
}> {
  override get message(): string {
    return `stopping at step ${this.step}: ${this.streak} steps in a row had only non-finite losses or gradients (trainer.maxConsecutiveNonFinite = ${this.max}); the weights from before the fault are saved in ${this.savedTo}`
  }
}

/**
 * Options of the commands.
 *
 * @category configuration
 */
export interface RunOptions {
  /** Continue from the newest intact checkpoint of the run folder. */
  readonly resume?: boolean
  /** A fresh run into a folder that holds a run replaces it (else that is a `RunFolderNotEmptyError`). */
  readonly overwrite?: boolean
  /** `resume` even when the model or algorithm keys differ from the run's `config.yaml` (else a `ConfigChangedError`). */
  readonly allowConfigChange?: boolean
}

/**
 * What a command returns.
 *
 * @category models
 */
export interface RunResult {
  readonly dir: string
  readonly step: number
  readonly eval: Evaluation.EvalResult | null
  readonly lastMetrics: Readonly<Record<string, number>>
}

/**
 * Loads the train and test splits and settles what the config leaves to the data (image size, channels,
 * text lengths: see `Dataset.load`), logging skipped records. `modelDir` is the model checkpoint the
 * command continues from, whose sizes then hold. Returns the config with those values filled in.
 *
 * @category constructors
 */
export const loadData = (config: Config, log: (line: string) => void = () => {}, modelDir: string | null = null) =>
  Effect.gen(function*() {
    const verifier = yield* Verifier
    const fixed = modelDir === null ? null : yield* RunFolder.readModelConfig(modelDir)
    const data = yield* Dataset.load(config, { parseAnswer: verifier.parseAnswer, named: ModelConfigs.configs[config.worker.actor.model], fixed })
    for (const s of [data.train, data.test]) {
      if (s.skipped.length > 0) {
        log(`${s.name}: skipped ${s.skipped.length} bad record(s):`)
        for (const e of s.skipped.slice(0, 10)) log(`  ${e.message}`)
      }
    }
    return data
  })

/**
 * The start of `train` and `sft`: opens the run folder (stale temporaries removed, a checkpoint a cut-short
 * replacement set aside put back; a used folder refused without `resume` or `overwrite`), finds the
 * checkpoint to resume from (the newest intact one), loads the data with the sizes of the model it continues
 * from, checks a resumed run's config against its `config.yaml`, then writes `config.yaml`. A fresh run
 * opens its folder only after the data loaded, so bad data leaves no folder behind. `sameRun`: a
 * collapse-guard rollback restarting the run in its own folder.
 */
const prepareRun = (given: Config, options: RunOptions & { readonly sameRun?: boolean }, log: (line: string) => void) =>
  Effect.gen(function*() {
    const resume = options.resume === true
    const dir = RunFolder.runDir(given)
    const continues = resume || options.sameRun === true
    const openFolder = RunFolder.open(dir, { resume: continues, overwrite: options.overwrite === true }, log)
    if (continues) yield* openFolder
    const from = resume ? yield* RunFolder.newestIntactCheckpoint(dir, log) : null
    if (resume && from === null) return yield* new NothingToResumeError({ dir })
    const init = given.worker.actor.init === "" ? null : yield* RunFolder.resolveModelCheckpoint(given.worker.actor.init)
    if (from !== null || init !== null) log(from !== null ? `resuming from ${from}` : `initial weights from ${init}`)
    const data = yield* loadData(given, log, from !== null ? join(from, "actor") : init)
    if (!continues) yield* openFolder
    if (resume) yield* RunFolder.checkConfig(dir, data.config, options.allowConfigChange === true || options.sameRun === true)
    yield* RunFolder.writeConfig(dir, data.config)
    return { dir, data, from, init }
  })

/** The backend a config names, as a layer (each command provides it: its value is what loaded). */
const backendLayer = (config: Config) => Backend.layer({ backend: config.trainer.backend, threads: config.trainer.threads })

/** Records in the run folder's events the backend that loaded and the verifier's settings, at `step`. */
const recordStart = (dir: string, step: number) =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const verifier = yield* Verifier
    yield* RunFolder.appendEvent(dir, { event: "start", step, backend: { ...backend, description: describe(backend) }, reward: verifier.settings })
  })

const optimConfig = (config: Config): Optimizer.AdamWConfig => {
  const o = config.worker.actor.optim
  return { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm, schedule: { kind: "constant" } }
}

const sftOptimConfig = (config: Config): Optimizer.AdamWConfig => ({
  lr: config.sft.lr,
  weightDecay: config.sft.weightDecay,
  maxGradNorm: config.sft.maxGradNorm,
  schedule: { kind: "cosine", warmupSteps: config.sft.warmupSteps, totalSteps: config.sft.steps, minRatio: 0.1 }
})

/**
 * The session as a scoped resource (closed with the scope, after the run's own finalizers): restored from
 * the trainer checkpoint `from` (resume), else fresh or from the model checkpoint `init`; with the trainer
 * state it continues from.
 */
const openSession = (
  config: Config,
  data: { readonly train: Dataset.Split; readonly test: Dataset.Split },
  kind: "train" | "sft",
  from: string | null,
  init: string | null
) =>
  Effect.gen(function*() {
    const optim = kind === "train" ? optimConfig(config) : sftOptimConfig(config)
    const withReference = kind === "train" && config.algorithm.useKlLoss
    if (from === null) {
      const text = Session.textOf(config, [...data.train.examples, ...data.test.examples])
      const session = yield* Session.acquire(config, { text, init: init ?? undefined, optim, withReference }, config.trainer.threads)
      return { session, state: { step: 0, cursor: 0, kind } as RunFolder.CheckpointState }
    }
    const restored = Effect.gen(function*() {
      const loaded = yield* RunFolder.loadCheckpoint(from, optim)
      const refused = loaded.state.kind !== kind
        ? new CheckpointKindError({ path: from, found: loaded.state.kind, expected: kind })
        : withReference && loaded.referenceWeights === null
        ? new MissingReferenceError({ path: from })
        : null
      const reference = refused === null && withReference ? Policy.reference(loaded.policy) : null
      if (reference !== null) Policy.setWeights(reference, loaded.referenceWeights!)
      const session = Session.make({ tokenizer: loaded.tokenizer, policy: loaded.policy, reference, optimizer: loaded.optimizer })
      if (refused !== null) {
        // Freeing tensors fails only on a bug.
        yield* Effect.promise(() => Session.close(session))
        return yield* refused
      }
      return { session, state: loaded.state }
    })
    let state: RunFolder.CheckpointState = { step: 0, cursor: 0, kind }
    const session = yield* Session.acquireFrom(Effect.map(restored, (r) => {
      state = r.state
      return r.session
    }), config.trainer.threads, from)
    return { session, state }
  })

const summary = (m: Readonly<Record<string, number>>, keys: ReadonlyArray<[string, string]>) =>
  keys.filter(([k]) => m[k] !== undefined).map(([k, label]) => `${label} ${m[k]!.toFixed(3)}`).join(" ")

/**
 * `papo train`: GRPO / DAPO / PAPO-G / PAPO-D on the configured data, writing the run folder.
 *
 * @category commands
 */
export const train = (config: Config, options: RunOptions = {}) =>
  Effect.gen(function*() {
    let current = config
    let resume = options.resume === true
    let rollbacks = 0
    let watch = CollapseGuard.initialState
    while (true) {
      const guard = current.trainer.collapseGuard
      const { result, rollBackTo, watched } = yield* trainOnce(current, { ...options, resume, sameRun: rollbacks > 0 }, rollbacks < guard.maxRollbacks, watch)
      // The next attempt is judged against the levels of the run before the alarm, not those it resumes at.
      watch = { ...CollapseGuard.initialState, seen: watched.seen, levels: watched.levels }
      if (rollBackTo === null) return result
      // KL_prcp hacking: back to the newest checkpoint from before the alarm, with a lower γ.
      rollbacks += 1
      const kept = yield* RunFolder.rollBackCheckpoints(result.dir, rollBackTo)
      yield* RunFolder.keepMetrics(result.dir, kept ?? 0, (l) => console.log(l), `metrics-rolled-back-${rollbacks}.jsonl`)
      const gamma = current.algorithm.klPrcpCoef * guard.gammaFactor
      yield* RunFolder.appendEvent(result.dir, { event: "rollback", fromStep: result.step, toStep: kept ?? 0, klPrcpCoef: gamma, rollback: rollbacks })
      console.log(`collapse guard: rolling back from step ${result.step} to ${kept === null ? "the initial weights" : `step ${kept}`}, γ ${current.algorithm.klPrcpCoef} → ${gamma}`)
      current = { ...current, algorithm: { ...current.algorithm, klPrcpCoef: gamma } }
      resume = kept !== null
    }
  }).pipe(Effect.provide(backendLayer(config)))

const guardConfig = (config: Config): CollapseGuard.CollapseGuardConfig => {
  const { action: _a, gammaFactor: _g, maxRollbacks: _m, ...thresholds } = config.trainer.collapseGuard
  return thresholds
}

/**
 * One training attempt, watched from `watch`; stops early, asking for a rollback to a step, when the guard
 * sees a collapse.
 */
const trainOnce = (given: Config, options: RunOptions & { readonly sameRun?: boolean }, mayRollBack: boolean, watch: CollapseGuard.CollapseGuardState) =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const progress = Progress.make(given.trainer.logger, given.trainer.maxSteps, "train")
    progress.log(`backend: ${describe(backend)}`)
    const { dir, data, from, init } = yield* prepareRun(given, options, progress.log)
    const config = data.config
    const opened = yield* openSession(config, data, "train", from, init)
    const { session } = opened
    yield* recordStart(dir, opened.state.step)
    const seed = config.trainer.seed
    const saved = opened.state
    let state: Step.StepState = {
      step: saved.step,
      cursor: saved.cursor,
      samplingRng: saved.samplingRng ? Xoshiro128.fromState(saved.samplingRng) : Rng.makeXoshiro(seed, "sampling"),
      maskRng: saved.maskRng ? Mt19937.fromState(saved.maskRng) : Rng.make(seed, "masks"),
      nonFiniteStreak: saved.nonFiniteStreak ?? 0
    }
    yield* RunFolder.keepMetrics(dir, state.step, progress.log)
    let lastSaved = from !== null ? state.step : null
    const save = (label = "") =>
      RunFolder.saveCheckpoint(dir, state.step, {
        policy: session.policy,
        reference: session.reference,
        optimizer: session.optimizer,
        tokenizer: session.tokenizer,
        state: {
          kind: "train",
          step: state.step,
          cursor: state.cursor,
          samplingRng: state.samplingRng.state(),
          maskRng: state.maskRng.state(),
          nonFiniteStreak: state.nonFiniteStreak
        }
      }, config.trainer.saveLimit, label).pipe(Effect.tap(() => Effect.sync(() => {
        if (label === "") lastSaved = state.step
      })))
    const evalNow = () =>
      Evaluation.evaluate(session, config, data.test.examples, { step: state.step, split: data.test.name }).pipe(
        Effect.tap((r) => RunFolder.writeEval(dir, state.step, r)),
        Effect.tap((r) => Effect.sync(() => progress.log(Evaluation.formatEval(r))))
      )

    let lastMetrics: Record<string, number> = {}
    let lastEval: Evaluation.EvalResult | null = null
    let guard = watch
    let rollBackTo: number | null = null
    // Greedy accuracy per test subset every `trainer.curveFreq` steps (and before the first), for learning curves.
    const curvePoint = () =>
      config.trainer.curveFreq > 0 && state.step % config.trainer.curveFreq === 0
        ? Evaluation.greedyAccuracy(session, config, data.test.examples)
        : Effect.succeed({})
    const result = yield* Effect.gen(function*() {
      if (state.step === 0 && config.trainer.curveFreq > 0) yield* RunFolder.appendMetrics(dir, 0, yield* curvePoint())
      while (state.step < config.trainer.maxSteps) {
        // One step is one uninterruptible unit (the generators advance and the weights change inside it):
        // an interruption takes effect after it, so the checkpoint holds a step, its metrics and its state.
        const out = yield* Effect.uninterruptible(Effect.gen(function*() {
          const out = yield* Step.trainStep(session, config, data.train.examples, state, classify)
          state = out.state
          lastMetrics = { ...out.metrics, ...(yield* curvePoint()) }
          yield* RunFolder.appendMetrics(dir, state.step, lastMetrics)
          return out
        }))
        progress.update(state.step, summary(out.metrics, [["reward/accuracy", "acc"], ["reward/overall", "reward"], ["actor/kl_prcp_loss", "kl_prcp"], ["actor/pg_clipfrac_higher", "clip_hi"], ["timing_s/step", "s/step"]]))
        if (out.nonFinite > 0) progress.log(`step ${state.step}: ${out.nonFinite} update(s) skipped, non-finite loss or gradient`)
        if (config.trainer.collapseGuard.action !== "off") {
          const watched = CollapseGuard.observe(guard, out.metrics, guardConfig(config))
          guard = watched.state
          const { level, signals } = watched.verdict
          if (level !== "ok") {
            yield* RunFolder.appendEvent(dir, { event: level, step: state.step, klPrcpCoef: config.algorithm.klPrcpCoef, signals })
            progress.log(`step ${state.step}: collapse guard ${level}: ${signals.map((x) => `${x.name} ${x.value.toFixed(3)} (baseline ${x.baseline.toFixed(3)})`).join(", ")}`)
            // Rolling back lowers γ: it only applies to runs with the perception loss.
            if (level === "collapse" && config.trainer.collapseGuard.action === "rollback" && config.algorithm.useKlPrcp && mayRollBack) {
              // Back to before the steps in the first alarm's running median: they were already collapsing.
              rollBackTo = Math.max(0, state.step - guard.streak - config.trainer.collapseGuard.recent + 1)
              break
            }
          }
        }
        if (state.nonFiniteStreak >= config.trainer.maxConsecutiveNonFinite) {
          // Every update of the streak was skipped, so the weights are still those from before the fault.
          const savedTo = yield* save("-before-fault")
          return yield* new NonFiniteStreakError({ step: state.step, streak: state.nonFiniteStreak, max: config.trainer.maxConsecutiveNonFinite, savedTo })
        }
        if (config.trainer.logSampleFreq > 0 && state.step % config.trainer.logSampleFreq === 0) {
          yield* RunFolder.writeSamples(dir, state.step, samplesOf(out, config))
        }
        if (config.trainer.valFreq > 0 && state.step % config.trainer.valFreq === 0 && state.step < config.trainer.maxSteps) {
          lastEval = yield* evalNow()
        }
        if (config.trainer.saveFreq > 0 && state.step % config.trainer.saveFreq === 0) yield* save()
      }
      progress.done()
      if (rollBackTo !== null) return { dir, step: state.step, eval: lastEval, lastMetrics } satisfies RunResult
      if (lastSaved !== state.step) yield* save()
      lastEval = yield* evalNow()
      return { dir, step: state.step, eval: lastEval, lastMetrics } satisfies RunResult
    }).pipe(Effect.onInterrupt(() => saveOnInterrupt(progress, state.step, lastSaved === state.step ? Effect.succeed(null) : save())))
    return { result, rollBackTo, watched: guard }
  }).pipe(Effect.scoped)

/**
 * The finalizer of an interrupted run (SIGINT, SIGTERM, `Fiber.interrupt`): saves the checkpoint of the
 * last completed step (`save` is null when it is saved already) and says so; a failed save is reported,
 * not raised (the run is being interrupted).
 */
const saveOnInterrupt = (progress: Progress.Progress, step: number, save: Effect.Effect<string | null, RunFolder.RunFolderError>) =>
  save.pipe(
    Effect.match({
      onSuccess: (where) => progress.log(`interrupted at step ${step}; ${where === null ? "its checkpoint is saved" : `checkpoint ${where}`} (continue with --resume)`),
      onFailure: (e) => progress.log(`interrupted at step ${step}; the checkpoint could not be saved: ${e.message}`)
    })
  )

const samplesOf = (out: Step.StepOutput, config: Config): Array<RunFolder.Sample> => {
  const n = config.worker.rollout.n
  const b = out.batch
  return b.examples.slice(0, config.trainer.numSamples).map((e, i) => {
    const r = i * n
    return {
      id: e.id,
      problem: e.problem,
      answer: e.answer,
      response: b.responses[r]!,
      reward: b.grades[r]!.overall,
      advantage: out.advantages[r]!,
      outcome: classify(e, b.responses[r]!, b.grades[r]!.accuracy === 1),
      image: { ...e.image, data: e.image.data },
      masked: b.maskedImages[i]!
    }
  })
}

/**
 * `papo sft`: supervised warm start on the gold traces of the training split, then an evaluation.
 * Its checkpoint (`runs/<name>/checkpoints/step-*`) is what `worker.actor.init` of an RL run points to.
 *
 * @category commands
 */
export const sft = (given: Config, options: RunOptions = {}) =>
  Effect.gen(function*() {
    const backend = yield* Backend
    const progress = Progress.make(given.trainer.logger, given.sft.steps, "sft")
    progress.log(`backend: ${describe(backend)}`)
    const { dir, data, from, init } = yield* prepareRun(given, options, progress.log)
    const config = data.config
    const targets = yield* Sft.describeTargets(data.train, config.sft.target)
    if (targets !== null) progress.log(targets)
    const opened = yield* openSession(config, data, "sft", from, init)
    const { session } = opened
    let { step, cursor } = opened.state
    yield* recordStart(dir, step)
    yield* RunFolder.keepMetrics(dir, step, progress.log)
    let lastSaved = from !== null ? step : null
    const save = () =>
      RunFolder.saveCheckpoint(dir, step, {
        policy: session.policy,
        reference: null,
        optimizer: session.optimizer,
        tokenizer: session.tokenizer,
        state: { kind: "sft", step, cursor }
      }, config.trainer.saveLimit).pipe(Effect.tap(() => Effect.sync(() => (lastSaved = step))))
    const train = data.train.examples
    const T = session.modelConfig.maxResponseLength
    return yield* Effect.gen(function*() {
      let lastMetrics: Record<string, number> = {}
      while (step < config.sft.steps) {
        // One uninterruptible unit, as in `train`: the update, the cursor, the step and its metrics line.
        yield* Effect.uninterruptible(Effect.gen(function*() {
          const t0 = performance.now()
          const examples = Rollout.samplePrompts(train, cursor, config.sft.batchSize, config.data.seed)
          // Targets and lengths are checked at load (describeTargets, Dataset.load): a throw here is a bug.
          const rows = yield* Effect.sync(() => Sft.goldRows(session, config, examples, T))
          const r = yield* Effect.promise(() => Sft.sftStep(session, rows)) // tensor math: a throw is a bug
          cursor += examples.length
          step++
          lastMetrics = { "sft/loss": r.loss, "actor/grad_norm": r.gradNorm, "actor/lr": r.lr, "actor/non_finite_updates": r.skipped ? 1 : 0, "timing_s/step": (performance.now() - t0) / 1000 }
          yield* RunFolder.appendMetrics(dir, step, lastMetrics)
        }))
        progress.update(step, summary(lastMetrics, [["sft/loss", "loss"], ["timing_s/step", "s/step"]]))
        if (config.trainer.saveFreq > 0 && step % config.trainer.saveFreq === 0) yield* save()
      }
      progress.done()
      if (lastSaved !== step) yield* save()
      const lastEval = yield* Evaluation.evaluate(session, config, data.test.examples, { step, split: data.test.name })
      yield* RunFolder.writeEval(dir, step, lastEval)
      progress.log(Evaluation.formatEval(lastEval))
      return { dir, step, eval: lastEval, lastMetrics } satisfies RunResult
    }).pipe(Effect.onInterrupt(() => saveOnInterrupt(progress, step, lastSaved === step ? Effect.succeed(null) : save())))
  }).pipe(Effect.scoped, Effect.provide(backendLayer(given)))

/**
 * `papo eval`: loads a checkpoint (`checkpoint`, else `worker.actor.init`, else the run folder's newest)
 * and evaluates the test split; writes `eval.json` into the config's run folder. The folder is checked
 * for writing before the evaluation; if the final write fails all the same, the result is printed before
 * the `RunFolderError`, so it is not lost.
 *
 * @category commands
 */
export const evaluate = (given: Config, options: { readonly checkpoint?: string } = {}) =>
  Effect.gen(function*() {
    const dir = RunFolder.runDir(given)
    const path = yield* RunFolder.resolveModelCheckpoint(options.checkpoint || given.worker.actor.init || dir)
    yield* RunFolder.ensureWritable(dir)
    const backend = yield* Backend
    console.log(`backend: ${describe(backend)}`)
    const data = yield* loadData(given, (l) => console.log(l), path)
    const config = data.config
    // The training step the checkpoint was saved at (its trainer state), 0 for a bare model checkpoint.
    const saved = yield* RunFolder.readModelCheckpoint(path)
    const step = (saved.extra as Partial<RunFolder.CheckpointState> | null)?.step ?? 0
    const result = yield* Effect.scoped(
      Effect.flatMap(
        Session.acquire(config, { text: Session.textOf(config, data.test.examples), init: path, optim: optimConfig(config), withReference: false }, config.trainer.threads),
        (session) => Evaluation.evaluate(session, config, data.test.examples, { step, split: data.test.name })
      )
    )
    yield* RunFolder.writeEval(dir, step, { ...result, checkpoint: path }).pipe(
      Effect.tapError(() => Console.log(`${Evaluation.formatEval(result)}\ncheckpoint: ${path}\n(not written: see the error below)`))
    )
    return { result, checkpoint: path }
  }).pipe(Effect.provide(backendLayer(given)))

/**
 * What {@link train} or {@link sft} can fail with: the union of their tagged errors (a script that runs
 * either names this type).
 *
 * @example
 * const run: Effect.Effect<RunResult, RunError, Verifier> = kind === "sft" ? sft(config) : train(config)
 *
 * @category errors
 */
export type RunError = Effect.Error<ReturnType<typeof train>> | Effect.Error<ReturnType<typeof sft>>

/**
 * Provides the verifier `config.worker.reward` describes (default: MathRuler in this thread).
 *
 * @example
 * const fiber = Effect.runFork(withVerifier(train(config), config))
 * await Effect.runPromise(Fiber.interrupt(fiber)) // the run saves the checkpoint of its last step
 *
 * @category commands
 */
export const withVerifier = <A, E>(effect: Effect.Effect<A, E, Verifier>, config?: Config): Effect.Effect<A, E> =>
  effect.pipe(Effect.provide(config ? Verifier.layer(config.worker.reward) : Verifier.mathRuler))

/**
 * Runs a command with {@link withVerifier}.
 *
 * @example
 * const result = await runPromise(train(config), config)
 *
 * @category commands
 */
export const runPromise = <A, E>(effect: Effect.Effect<A, E, Verifier>, config?: Config): Promise<A> => Effect.runPromise(withVerifier(effect, config))
