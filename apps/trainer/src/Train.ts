/**
 * The three commands as functions a script can call: {@link train} (GRPO / DAPO / PAPO), {@link sft}
 * (the supervised warm start) and {@link evaluate} (avg@k with perception errors). Each takes a resolved
 * {@link Config} and returns an Effect that needs the {@link Verifier} service; {@link runPromise}
 * provides the default one. The CLI (`main.ts`) is a thin layer over these.
 *
 * @example
 * const config = await Effect.runPromise(loadConfig({ overrides: ["preset=papo-g", "trainer.maxSteps=50"] }))
 * const result = await runPromise(train(config))
 * result.eval?.overall.accuracy
 *
 * @since 0.1.0
 */
import { describe, initBackend } from "@papo/backend"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { Checkpoint, Config as ModelConfigs, type Optimizer, Policy, Random } from "@papo/model"
import type { Mt19937 } from "@papo/masking"
import { Data, Effect } from "effect"
import type { Config } from "./Config.js"
import * as Dataset from "./Dataset.js"
import * as Evaluation from "./Evaluate.js"
import { classify, type Example } from "./Example.js"
import * as Rng from "./Rng.js"
import * as CollapseGuard from "./CollapseGuard.js"
import * as Rollout from "./Rollout.js"
import * as Run from "./Run.js"
import * as Session from "./Session.js"
import * as Sft from "./Sft.js"
import * as Step from "./Step.js"
import { Verifier } from "./Verifier.js"

/**
 * A run that cannot go on: non-finite updates in a row, nothing to resume, data without gold traces, a
 * prompt longer than the model takes, …
 *
 * @category errors
 */
export class TrainError extends Data.TaggedError("TrainError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/**
 * Options of the commands.
 *
 * @category configuration
 */
export interface RunOptions {
  /** Continue from the newest complete checkpoint of the run folder. */
  readonly resume?: boolean
  /** Abort (Ctrl-C): the loop stops after the current step and saves a checkpoint. */
  readonly signal?: AbortSignal
}

/**
 * What a command returns.
 *
 * @category models
 */
export interface RunResult {
  readonly dir: string
  readonly step: number
  readonly interrupted: boolean
  readonly eval: Evaluation.EvalResult | null
  readonly lastMetrics: Readonly<Record<string, number>>
}

const attempt = <A>(f: () => A): Effect.Effect<A, TrainError> =>
  Effect.try({ try: f, catch: (e) => new TrainError({ reason: e instanceof Error ? e.message : String(e) }) })
const attemptPromise = <A>(f: () => Promise<A>): Effect.Effect<A, TrainError> =>
  Effect.tryPromise({ try: f, catch: (e) => new TrainError({ reason: e instanceof Error ? e.message : String(e) }) })

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
    // A model checkpoint's config.json holds its architecture under "model".
    const fixed = modelDir === null
      ? null
      : yield* attemptPromise(async () => (JSON.parse(await readFile(join(modelDir, "config.json"), "utf8")) as { model: ModelConfigs.ModelConfig }).model)
    const data = yield* Dataset.load(config, { parseAnswer: verifier.parseAnswer, named: ModelConfigs.configs[config.worker.actor.model], fixed })
    for (const s of [data.train, data.test]) {
      if (s.skipped.length > 0) {
        log(`${s.name}: skipped ${s.skipped.length} bad record(s):`)
        for (const e of s.skipped.slice(0, 10)) log(`  ${e.message}`)
      }
    }
    return data
  })

/** The model checkpoint a command continues from: the run's newest with `resume`, else `worker.actor.init`. */
const continuedFrom = (config: Config, resume: boolean) =>
  Effect.gen(function*() {
    if (resume) {
      const latest = yield* Run.latestCheckpoint(Run.runDir(config))
      return latest === null ? null : join(latest, "actor")
    }
    return config.worker.actor.init === "" ? null : yield* Run.resolveModelCheckpoint(config.worker.actor.init)
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

interface SavedState {
  readonly step: number
  readonly cursor: number
  readonly samplingRng?: Random.RngState
  readonly maskRng?: ReturnType<Mt19937["state"]>
  readonly nonFiniteStreak?: number
  readonly kind: "train" | "sft"
}

/** Opens the session: from the newest checkpoint with `resume`, else fresh or from `worker.actor.init`. */
const openSession = (
  config: Config,
  dir: string,
  data: { readonly train: Dataset.Split; readonly test: Dataset.Split },
  kind: "train" | "sft",
  resume: boolean
) =>
  Effect.gen(function*() {
    const optim = kind === "train" ? optimConfig(config) : sftOptimConfig(config)
    const withReference = kind === "train" && config.algorithm.useKlLoss
    if (resume) {
      const latest = yield* Run.latestCheckpoint(dir)
      if (latest === null) return yield* new TrainError({ reason: `--resume: no checkpoint in ${dir}/checkpoints` })
      const loaded = yield* Run.loadCheckpoint(latest, optim)
      const state = loaded.state as SavedState
      if (state?.kind !== kind) return yield* new TrainError({ reason: `--resume: ${latest} is a ${state?.kind} checkpoint, not ${kind}` })
      let reference: Policy.Policy | null = null
      if (withReference) {
        if (loaded.referenceWeights === null) return yield* new TrainError({ reason: `--resume: ${latest} has no reference weights` })
        reference = Policy.reference(loaded.policy)
        Policy.setWeights(reference, loaded.referenceWeights)
      }
      const session = Session.make({ tokenizer: loaded.tokenizer, policy: loaded.policy, reference, optimizer: loaded.optimizer })
      return { session: yield* attemptPromise(() => Session.withThreads(session, config.trainer.threads)), state, from: latest }
    }
    const init = config.worker.actor.init === "" ? undefined : yield* Run.resolveModelCheckpoint(config.worker.actor.init)
    const text = Session.textOf(config, [...data.train.examples, ...data.test.examples])
    const opened = yield* attemptPromise(() => Session.open(config, { text, init, optim, withReference }))
    const session = yield* attemptPromise(() => Session.withThreads(opened, config.trainer.threads))
    return { session, state: { step: 0, cursor: 0, kind } as SavedState, from: init ?? null }
  })


const summary = (m: Readonly<Record<string, number>>, keys: ReadonlyArray<[string, string]>) =>
  keys.filter(([k]) => m[k] !== undefined).map(([k, label]) => `${label} ${m[k]!.toFixed(3)}`).join(" ")

const outcomeOf = (example: Example, response: string, correct: boolean) => classify(example, response, correct)

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
      const { result, rollBackTo, watched } = yield* trainOnce(current, { ...options, resume }, rollbacks < guard.maxRollbacks, watch)
      // The next attempt is judged against the levels of the run before the alarm, not those it resumes at.
      watch = { ...CollapseGuard.initialState, seen: watched.seen, levels: watched.levels }
      if (rollBackTo === null) return result
      // KL_prcp hacking: back to the newest checkpoint from before the alarm, with a lower γ.
      rollbacks += 1
      const kept = yield* Run.rollBackCheckpoints(result.dir, rollBackTo)
      yield* Run.truncateMetrics(result.dir, kept ?? 0, `metrics-rolled-back-${rollbacks}.jsonl`)
      const gamma = current.algorithm.klPrcpCoef * guard.gammaFactor
      yield* Run.appendEvent(result.dir, { event: "rollback", fromStep: result.step, toStep: kept ?? 0, klPrcpCoef: gamma, rollback: rollbacks })
      console.log(`collapse guard: rolling back from step ${result.step} to ${kept === null ? "the initial weights" : `step ${kept}`}, γ ${current.algorithm.klPrcpCoef} → ${gamma}`)
      current = { ...current, algorithm: { ...current.algorithm, klPrcpCoef: gamma } }
      resume = kept !== null
    }
  })

const guardConfig = (config: Config): CollapseGuard.CollapseGuardConfig => {
  const { action: _a, gammaFactor: _g, maxRollbacks: _m, ...thresholds } = config.trainer.collapseGuard
  return thresholds
}

/**
 * One training attempt, watched from `watch`; stops early, asking for a rollback to a step, when the guard
 * sees a collapse.
 */
const trainOnce = (given: Config, options: RunOptions, mayRollBack: boolean, watch: CollapseGuard.CollapseGuardState) =>
  Effect.gen(function*() {
    const backend = yield* attemptPromise(() => initBackend(given.trainer.backend))
    const progress = Run.makeProgress(given.trainer.logger, given.trainer.maxSteps, "train")
    progress.log(`backend: ${describe(backend)}`)
    const data = yield* loadData(given, progress.log, yield* continuedFrom(given, options.resume === true))
    const config = data.config
    const dir = yield* Run.prepare(config, options.resume === true)
    const opened = yield* openSession(config, dir, data, "train", options.resume === true)
    const { session } = opened
    if (opened.from !== null) progress.log(`${options.resume ? "resuming from" : "initial weights from"} ${opened.from}`)
    const seed = config.trainer.seed
    const saved = opened.state
    let state: Step.StepState = {
      step: saved.step,
      cursor: saved.cursor,
      samplingRng: saved.samplingRng ? Random.Rng.fromState(saved.samplingRng) : new Random.Rng(Rng.make(seed, "sampling").nextUint32()),
      maskRng: saved.maskRng ? restoreMt(saved.maskRng) : Rng.make(seed, "masks"),
      nonFiniteStreak: saved.nonFiniteStreak ?? 0
    }
    if (options.resume) yield* Run.truncateMetrics(dir, state.step)
    const save = (label = "") =>
      Run.saveCheckpoint(dir, state.step, {
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
        } satisfies SavedState
      }, config.trainer.saveLimit, label)
    const evalNow = () =>
      Evaluation.evaluate(session, config, data.test.examples, { step: state.step, split: data.test.name }).pipe(
        Effect.tap((r) => Run.writeEval(dir, state.step, r)),
        Effect.tap((r) => Effect.sync(() => progress.log(Evaluation.formatEval(r))))
      )

    let lastMetrics: Record<string, number> = {}
    let lastEval: Evaluation.EvalResult | null = null
    let interrupted = false
    let guard = watch
    let rollBackTo: number | null = null
    // Greedy accuracy per test subset every `trainer.curveFreq` steps (and before the first), for learning curves.
    const curvePoint = () =>
      config.trainer.curveFreq > 0 && state.step % config.trainer.curveFreq === 0
        ? Evaluation.greedyAccuracy(session, config, data.test.examples)
        : Effect.succeed({})
    const result = yield* Effect.gen(function*() {
      if (state.step === 0 && config.trainer.curveFreq > 0) yield* Run.appendMetrics(dir, 0, yield* curvePoint())
      while (state.step < config.trainer.maxSteps) {
        if (options.signal?.aborted) {
          interrupted = true
          break
        }
        const out = yield* Step.trainStep(session, config, data.train.examples, state, outcomeOf).pipe(
          Effect.catch((e) => Effect.fail(new TrainError({ reason: e.message })))
        )
        state = out.state
        lastMetrics = { ...out.metrics, ...(yield* curvePoint()) }
        yield* Run.appendMetrics(dir, state.step, lastMetrics)
        progress.update(state.step, summary(out.metrics, [["reward/accuracy", "acc"], ["reward/overall", "reward"], ["actor/kl_prcp_loss", "kl_prcp"], ["actor/pg_clipfrac_higher", "clip_hi"], ["timing_s/step", "s/step"]]))
        if (out.nonFinite > 0) progress.log(`step ${state.step}: ${out.nonFinite} update(s) skipped, non-finite loss or gradient`)
        if (config.trainer.collapseGuard.action !== "off") {
          const watched = CollapseGuard.observe(guard, out.metrics, guardConfig(config))
          guard = watched.state
          const { level, signals } = watched.verdict
          if (level !== "ok") {
            yield* Run.appendEvent(dir, { event: level, step: state.step, klPrcpCoef: config.algorithm.klPrcpCoef, signals })
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
          const where = yield* save("-before-fault")
          return yield* new TrainError({
            reason: `stopping: ${state.nonFiniteStreak} steps in a row had only non-finite losses or gradients (trainer.maxConsecutiveNonFinite = ${config.trainer.maxConsecutiveNonFinite}); the weights from before the fault are saved in ${where}`
          })
        }
        if (config.trainer.logSampleFreq > 0 && state.step % config.trainer.logSampleFreq === 0) {
          yield* Run.writeSamples(dir, state.step, samplesOf(out, config))
        }
        if (config.trainer.valFreq > 0 && state.step % config.trainer.valFreq === 0 && state.step < config.trainer.maxSteps) {
          lastEval = yield* evalNow()
        }
        if (config.trainer.saveFreq > 0 && state.step % config.trainer.saveFreq === 0) yield* save()
      }
      progress.done()
      if (rollBackTo !== null) return { dir, step: state.step, interrupted, eval: lastEval, lastMetrics } satisfies RunResult
      if (interrupted) {
        const where = yield* save()
        progress.log(`interrupted at step ${state.step}; checkpoint ${where} (continue with --resume)`)
      } else {
        if (config.trainer.saveFreq === 0 || state.step % config.trainer.saveFreq !== 0) yield* save()
        lastEval = yield* evalNow()
      }
      return { dir, step: state.step, interrupted, eval: lastEval, lastMetrics } satisfies RunResult
    }).pipe(Effect.ensuring(Effect.promise(() => Session.close(session))))
    return { result, rollBackTo, watched: guard }
  })

const restoreMt = (s: ReturnType<Mt19937["state"]>): Mt19937 => {
  const rng = Rng.make(0)
  rng.restore(s)
  return rng
}

const samplesOf = (out: Step.StepOutput, config: Config): Array<Run.Sample> => {
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
    const backend = yield* attemptPromise(() => initBackend(given.trainer.backend))
    const progress = Run.makeProgress(given.trainer.logger, given.sft.steps, "sft")
    progress.log(`backend: ${describe(backend)}`)
    const data = yield* loadData(given, progress.log, yield* continuedFrom(given, options.resume === true))
    const config = data.config
    const targets = yield* attempt(() => Sft.describeTargets(data.train, config.sft.target))
    if (targets !== null) progress.log(targets)
    const dir = yield* Run.prepare(config, options.resume === true)
    const opened = yield* openSession(config, dir, data, "sft", options.resume === true)
    const { session } = opened
    let { step, cursor } = opened.state
    if (options.resume) yield* Run.truncateMetrics(dir, step)
    const save = () =>
      Run.saveCheckpoint(dir, step, {
        policy: session.policy,
        reference: null,
        optimizer: session.optimizer,
        tokenizer: session.tokenizer,
        state: { kind: "sft", step, cursor } satisfies SavedState
      }, config.trainer.saveLimit)
    const train = data.train.examples
    const T = session.modelConfig.maxResponseLength
    return yield* Effect.gen(function*() {
    let lastMetrics: Record<string, number> = {}
    let interrupted = false
    while (step < config.sft.steps) {
      if (options.signal?.aborted) {
        interrupted = true
        break
      }
      const t0 = performance.now()
      const examples = Rollout.samplePrompts(train, cursor, config.sft.batchSize, config.data.seed)
      cursor += examples.length
      const rows = yield* attempt(() => Sft.goldRows(session, config, examples, T))
      const r = yield* Effect.promise(() => Sft.sftStep(session, rows))
      step++
      lastMetrics = { "sft/loss": r.loss, "actor/grad_norm": r.gradNorm, "actor/lr": r.lr, "actor/non_finite_updates": r.skipped ? 1 : 0, "timing_s/step": (performance.now() - t0) / 1000 }
      yield* Run.appendMetrics(dir, step, lastMetrics)
      progress.update(step, summary(lastMetrics, [["sft/loss", "loss"], ["timing_s/step", "s/step"]]))
      if (config.trainer.saveFreq > 0 && step % config.trainer.saveFreq === 0) yield* save()
    }
    progress.done()
    if (config.trainer.saveFreq === 0 || step % config.trainer.saveFreq !== 0 || interrupted) yield* save()
    let lastEval: Evaluation.EvalResult | null = null
    if (!interrupted) {
      lastEval = yield* Evaluation.evaluate(session, config, data.test.examples, { step, split: data.test.name })
      yield* Run.writeEval(dir, step, lastEval)
      progress.log(Evaluation.formatEval(lastEval))
    } else progress.log(`interrupted at step ${step}; continue with --resume`)
    return { dir, step, interrupted, eval: lastEval, lastMetrics } satisfies RunResult
    }).pipe(Effect.ensuring(Effect.promise(() => Session.close(session))))
  })

/**
 * `papo eval`: loads a checkpoint (`checkpoint`, else `worker.actor.init`, else the run folder's newest)
 * and evaluates the test split; writes `eval.json` into the config's run folder.
 *
 * @category commands
 */
export const evaluate = (given: Config, options: { readonly checkpoint?: string } = {}) =>
  Effect.gen(function*() {
    const backend = yield* attemptPromise(() => initBackend(given.trainer.backend))
    console.log(`backend: ${describe(backend)}`)
    const dir = Run.runDir(given)
    const path = yield* Run.resolveModelCheckpoint(options.checkpoint || given.worker.actor.init || dir)
    const data = yield* loadData(given, (l) => console.log(l), path)
    const config = data.config
    // The training step the checkpoint was saved at (its trainer state), 0 for a bare model checkpoint.
    const saved = yield* attemptPromise(() => Checkpoint.load(path))
    const step = (saved.extra as Partial<SavedState> | null)?.step ?? 0
    const result = yield* Effect.scoped(
      Effect.flatMap(
        Session.acquire(config, { text: Session.textOf(config, data.test.examples), init: path, optim: optimConfig(config), withReference: false }, config.trainer.threads)
          .pipe(Effect.mapError((e) => new TrainError({ reason: e.message }))),
        (session) => Evaluation.evaluate(session, config, data.test.examples, { step, split: data.test.name })
      )
    )
    yield* Run.prepareDir(dir)
    yield* Run.writeEval(dir, step, { ...result, checkpoint: path })
    return { result, checkpoint: path }
  })

/**
 * Runs a command with the verifier `config.worker.reward` describes (default: MathRuler in this thread).
 *
 * @category commands
 */
export const runPromise = <A, E>(effect: Effect.Effect<A, E, Verifier>, config?: Config): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(config ? Verifier.layer(config.worker.reward) : Verifier.mathRuler)))
