/**
 * One training step of GRPO / DAPO / PAPO-G / PAPO-D, in the order of the reference's
 * `RayPPOTrainer.fit` (papo-spec §1):
 *
 *     sample prompts → one mask per prompt → roll out G from the original images → reward
 *       → [DAPO: dynamic sampling] → advantages → old / masked / reference log-probs (no grad)
 *       → PPO mini-batch updates with `PapoLoss.papoLoss` → metrics
 *
 * Each stage is a plain synchronous function over arrays (tensors live only inside them); the step
 * itself is an Effect only because grading goes through the {@link Verifier} service.
 *
 * @since 0.1.0
 */
import { Advantage, Aggregation, DynamicSampling, Kl, PapoLoss, Schedule } from "@papo/loss"
import { Masking } from "@papo/masking"
import { Optimizer, Parallel, Policy, Tokenizer } from "@papo/model"
import type { Mt19937, Xoshiro128 } from "@papo/random"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import { type Config, lossConfig } from "./Config.js"
import * as Dataset from "./Dataset.js"
import type { Example } from "./Example.js"
import * as Session from "./Session.js"
import { type Grade, Verifier } from "./Verifier.js"

/**
 * Everything that changes from step to step besides the weights; all of it goes into a checkpoint.
 *
 * @category models
 */
export interface StepState {
  /** Steps completed. */
  readonly step: number
  /** Prompts read from the training order so far. */
  readonly cursor: number
  readonly samplingRng: Xoshiro128
  readonly maskRng: Mt19937
  /** Non-finite losses or gradients in a row. */
  readonly nonFiniteStreak: number
}

/**
 * Rollouts of a set of prompts: rows are prompt-major (row `b·G + g` is sample g of prompt b).
 *
 * @category models
 */
export interface Rollouts {
  readonly examples: ReadonlyArray<Example>
  /** One masked image per prompt, shared by its G rows. */
  readonly maskedImages: ReadonlyArray<Float32Array>
  readonly rows: Session.Rows
  readonly lengths: Int32Array
  readonly responses: ReadonlyArray<string>
  readonly grades: ReadonlyArray<Grade>
  /** Group id of each row. */
  readonly uids: ReadonlyArray<string>
}

/**
 * The masking config of a run (the reference's random patch blackening with the configured p and patch).
 *
 * @category configuration
 */
export const maskingConfig = (config: Config): Masking.MaskingConfig =>
  Masking.makeConfig({ prob: config.algorithm.maskRatio, patchSize: config.algorithm.maskPatchSize })

/**
 * Stage 1: the next `count` prompts of the seeded training order.
 *
 * @category math
 */
export const samplePrompts = (train: ReadonlyArray<Example>, cursor: number, count: number, seed: number): Array<Example> =>
  Dataset.batchAt(train.length, count, cursor, seed).map((i) => train[i]!)

/**
 * Stage 2: one masked copy of each prompt's image (drawn before the prompts are repeated G times).
 *
 * @category math
 */
export const maskPrompts = (
  session: Session.Session,
  examples: ReadonlyArray<Example>,
  config: Masking.MaskingConfig,
  rng: Mt19937
): Array<Float32Array> => {
  const c = session.modelConfig
  const size = c.imageHeight * c.imageWidth * c.imageChannels
  const { image } = Masking.maskBatch(
    { data: Session.stackImages(examples.map((e) => e.image.data)), shape: [examples.length, c.imageHeight, c.imageWidth, c.imageChannels] },
    config,
    rng
  )
  return examples.map((_, i) => image.data.slice(i * size, (i + 1) * size))
}

/**
 * Stage 3: G responses per prompt from the original images.
 *
 * @category math
 */
export const rollOut = async (
  session: Session.Session,
  config: Config,
  examples: ReadonlyArray<Example>,
  options: { readonly n: number; readonly temperature: number; readonly topP: number },
  rng: Xoshiro128
): Promise<{ readonly rows: Session.Rows; readonly lengths: Int32Array; readonly responses: Array<string> }> => {
  const c = session.modelConfig
  const prompts = Session.encodePrompts(session, config, examples)
  const b = examples.length
  const out = await Session.sample(session, Session.stackImages(examples.map((e) => e.image.data)), prompts, {
    groupSize: options.n,
    maxNewTokens: c.maxResponseLength,
    padId: session.tokenizer.padId,
    temperature: options.temperature,
    topP: options.topP,
    stopTokens: [session.tokenizer.eosId]
  }, rng)
  const t = c.maxResponseLength
  const responses = Array.from({ length: b * options.n }, (_, r) =>
    Tokenizer.decode(session.tokenizer, out.ids.subarray(r * t, r * t + out.lengths[r]!)))
  return {
    rows: {
      n: b * options.n,
      images: Session.stackImages(examples.map((e) => e.image.data), options.n),
      promptIds: Session.repeatRows(prompts.ids, prompts.length, options.n),
      promptLength: prompts.length,
      responseIds: out.ids,
      responseMask: out.responseMask,
      responseLength: t
    },
    lengths: out.lengths,
    responses
  }
}

/**
 * Stages 1–4 for one chunk of prompts: sample, mask, roll out, grade.
 *
 * @category math
 */
export const generateChunk = (
  session: Session.Session,
  config: Config,
  train: ReadonlyArray<Example>,
  state: { cursor: number; readonly samplingRng: Xoshiro128; readonly maskRng: Mt19937; readonly tag: string },
  timing: Record<string, number>
): Effect.Effect<Rollouts, never, Verifier> =>
  Effect.gen(function*() {
    const verifier = yield* Verifier
    const count = config.algorithm.onlineFiltering ? config.data.miniRolloutBatchSize ?? config.data.rolloutBatchSize : config.data.rolloutBatchSize
    const examples = samplePrompts(train, state.cursor, count, config.data.seed)
    state.cursor += count
    const maskedImages = timed(timing, "timing_s/mask", () => maskPrompts(session, examples, maskingConfig(config), state.maskRng))
    const rollout = yield* timedPromise(timing, "timing_s/gen", () => rollOut(session, config, examples, config.worker.rollout, state.samplingRng))
    const n = config.worker.rollout.n
    const t0 = performance.now()
    const grades = yield* verifier.grade(rollout.responses.map((response, r) => ({ response, answer: examples[Math.floor(r / n)]!.answer })))
    timing["timing_s/reward"] = (timing["timing_s/reward"] ?? 0) + (performance.now() - t0) / 1000
    return {
      examples,
      maskedImages,
      ...rollout,
      grades,
      uids: rollout.responses.map((_, r) => `${state.tag}:${Math.floor(r / n)}`)
    }
  })

/**
 * Keeps the given rows (whole groups) of rollouts.
 *
 * @category math
 */
export const selectRows = (r: Rollouts, rows: ReadonlyArray<number>, n: number): Rollouts => {
  const prompts = [...new Set(rows.map((x) => Math.floor(x / n)))]
  return {
    examples: prompts.map((p) => r.examples[p]!),
    maskedImages: prompts.map((p) => r.maskedImages[p]!),
    rows: {
      ...r.rows,
      n: rows.length,
      images: Session.takeRows(r.rows.images, r.rows.images.length / r.rows.n, rows),
      promptIds: Session.takeRows(r.rows.promptIds, r.rows.promptLength, rows),
      responseIds: Session.takeRows(r.rows.responseIds, r.rows.responseLength, rows),
      responseMask: Session.takeRows(r.rows.responseMask, r.rows.responseLength, rows)
    },
    lengths: Int32Array.from(rows, (x) => r.lengths[x]!),
    responses: rows.map((x) => r.responses[x]!),
    grades: rows.map((x) => r.grades[x]!),
    uids: rows.map((x) => r.uids[x]!)
  }
}

const concatRollouts = (parts: ReadonlyArray<Rollouts>): Rollouts => {
  const cat = <A extends Float32Array | Int32Array>(xs: ReadonlyArray<A>): A => {
    const out = new (xs[0]!.constructor as new (n: number) => A)(xs.reduce((s, x) => s + x.length, 0))
    let o = 0
    for (const x of xs) {
      out.set(x, o)
      o += x.length
    }
    return out
  }
  const promptLength = Math.max(...parts.map((p) => p.rows.promptLength))
  // Left-pad every part's prompts to the longest.
  const padded = parts.map((p) => {
    if (p.rows.promptLength === promptLength) return p.rows.promptIds
    const out = new Int32Array(p.rows.n * promptLength)
    for (let r = 0; r < p.rows.n; r++) {
      out.set(p.rows.promptIds.subarray(r * p.rows.promptLength, (r + 1) * p.rows.promptLength), r * promptLength + promptLength - p.rows.promptLength)
    }
    return out
  })
  return {
    examples: parts.flatMap((p) => p.examples),
    maskedImages: parts.flatMap((p) => p.maskedImages),
    rows: {
      n: parts.reduce((s, p) => s + p.rows.n, 0),
      images: cat(parts.map((p) => p.rows.images)),
      promptIds: cat(padded),
      promptLength,
      responseIds: cat(parts.map((p) => p.rows.responseIds)),
      responseMask: cat(parts.map((p) => p.rows.responseMask)),
      responseLength: parts[0]!.rows.responseLength
    },
    lengths: cat(parts.map((p) => p.lengths)),
    responses: parts.flatMap((p) => p.responses),
    grades: parts.flatMap((p) => p.grades),
    uids: parts.flatMap((p) => p.uids)
  }
}

/**
 * Log-probs of the batch under θ_old on the original and the masked images and under the reference,
 * each `[N, T]`, no gradient. The masked pass runs for PAPO and, with `monitorPerception`, for every
 * method (then only for the logged perception metrics).
 *
 * @category math
 */
export const experience = async (
  session: Session.Session,
  config: Config,
  batch: Rollouts,
  timing: Record<string, number>
): Promise<{ readonly old: Float32Array; readonly masked: Float32Array | null; readonly ref: Float32Array | null }> => {
  const opts = { temperature: config.worker.rollout.temperature, microBatch: config.worker.actor.microBatchSizePerDeviceForExperience }
  const n = config.worker.rollout.n
  const time = async <A>(key: string, f: () => Promise<A>): Promise<A> => {
    const t0 = performance.now()
    const a = await f()
    timing[key] = (timing[key] ?? 0) + (performance.now() - t0) / 1000
    return a
  }
  const old = await time("timing_s/old", () => Session.logProbsOf(session, "policy", batch.rows, opts))
  const wantMasked = config.algorithm.useKlPrcp || config.trainer.monitorPerception
  const masked = wantMasked
    ? await time("timing_s/aug", () =>
      Session.logProbsOf(session, "policy", batch.rows, { ...opts, images: Session.stackImages(batch.maskedImages, n) }))
    : null
  const ref = config.algorithm.useKlLoss && session.reference !== null
    ? await time("timing_s/ref", () => Session.logProbsOf(session, "reference", batch.rows, opts))
    : null
  return { old, masked, ref }
}

/**
 * The outcome of the actor update: averaged `actor/*` metrics and the non-finite count.
 *
 * @category models
 */
export interface UpdateResult {
  readonly metrics: Record<string, number>
  readonly nonFinite: number
  readonly updates: number
}

/** Rows [s, e) of the batch as log-prob inputs. */
const rowsBetween = (batch: Rollouts, s: number, e: number): Session.Rows => ({
  ...batch.rows,
  n: e - s,
  promptIds: Session.sliceRows(batch.rows.promptIds, batch.rows.promptLength, s, e),
  responseIds: Session.sliceRows(batch.rows.responseIds, batch.rows.responseLength, s, e),
  responseMask: Session.sliceRows(batch.rows.responseMask, batch.rows.responseLength, s, e)
})

/** Per-token advantages A_i·M_i,t of rows [s, e). */
const tokenAdvantages = (rows: Session.Rows, advantages: Float64Array, s: number): Float32Array => {
  const T = rows.responseLength
  const adv = new Float32Array(rows.n * T)
  for (let r = 0; r < rows.n; r++) for (let t = 0; t < T; t++) adv[r * T + t] = advantages[s + r]! * rows.responseMask[r * T + t]!
  return adv
}

type Experience = { readonly old: Float32Array; readonly masked: Float32Array | null; readonly ref: Float32Array | null }

/** One optimizer step on rows [m0, m1) in this thread: micro-batches of `microBatchSizePerDeviceForUpdate`, losses summed. */
const localUpdate = (
  session: Session.Session,
  config: Config,
  batch: Rollouts,
  exp: Experience,
  advantages: Float64Array,
  klPrcpCoef: number,
  maskedImages: Float32Array | null,
  m0: number,
  m1: number
): Optimizer.StepResult => {
  const T = batch.rows.responseLength
  const imageSize = batch.rows.images.length / batch.rows.n
  const micro = config.worker.actor.microBatchSizePerDeviceForUpdate
  const parts: Array<[number, number]> = []
  for (let s = m0; s < m1; s += micro) parts.push([s, Math.min(m1, s + micro)])
  const loss = lossConfig(config, parts.length)
  const temp = config.worker.rollout.temperature
  return Optimizer.applyGradients(session.policy, session.optimizer, () => {
    let total: tf.Scalar | null = null
    const metricSums: Record<string, tf.Tensor> = {}
    for (const [s, e] of parts) {
      const rows = rowsBetween(batch, s, e)
      const policyBatch = Session.batchTensors(session, rows, batch.rows.images.subarray(s * imageSize, e * imageSize))
      const slice = (a: Float32Array | null) => (a === null ? null : tf.tensor2d(a.subarray(s * T, e * T), [e - s, T]))
      const maskedLogProbs = !config.algorithm.useKlPrcp
        ? null
        : maskedImages !== null
        ? Policy.logProbs(session.policy, { ...policyBatch, images: tf.tensor4d(maskedImages.subarray(s * imageSize, e * imageSize), policyBatch.images.shape as [number, number, number, number]) }, temp)
        : slice(exp.masked)
      const out = PapoLoss.papoLoss({
        logProbs: Policy.logProbs(session.policy, policyBatch, temp),
        oldLogProbs: slice(exp.old)!,
        advantages: tf.tensor2d(tokenAdvantages(rows, advantages, s), [e - s, T]),
        responseMask: tf.tensor2d(rows.responseMask, [e - s, T]),
        refLogProbs: slice(exp.ref),
        maskedLogProbs,
        klPrcpCoef
      }, loss)
      total = total === null ? out.loss : tf.add(total, out.loss)
      for (const [k, v] of Object.entries(out.metrics)) metricSums[k] = metricSums[k] === undefined ? v : tf.add(metricSums[k]!, v)
    }
    const metrics: Record<string, tf.Tensor> = {}
    for (const [k, v] of Object.entries(metricSums)) metrics[k] = tf.div(v, parts.length)
    return { loss: total!, metrics }
  })
}

/**
 * One optimizer step on rows [m0, m1), split between the main thread and the worker replica
 * (`Parallel.step`: each half's token-mean loss weighted by its token share, gradients all-reduced). The
 * whole mini-batch is one micro-batch, and γ is the configured one (no annealing: checked at start).
 */
const parallelUpdate = async (
  session: Session.Session,
  team: Parallel.Team,
  config: Config,
  batch: Rollouts,
  exp: Experience,
  advantages: Float64Array,
  m0: number,
  m1: number
): Promise<Optimizer.StepResult> => {
  const T = batch.rows.responseLength
  const imageSize = batch.rows.images.length / batch.rows.n
  const rows = rowsBetween(batch, m0, m1)
  const n = m1 - m0
  const policyBatch = Session.batchTensors(session, rows, batch.rows.images.subarray(m0 * imageSize, m1 * imageSize))
  const slice = (a: Float32Array | null) => (a === null ? null : tf.tensor2d(a.subarray(m0 * T, m1 * T), [n, T]))
  const inputs = {
    oldLogProbs: slice(exp.old)!,
    advantages: tf.tensor2d(tokenAdvantages(rows, advantages, m0), [n, T]),
    responseMask: tf.tensor2d(rows.responseMask, [n, T]),
    refLogProbs: slice(exp.ref),
    maskedLogProbs: config.algorithm.useKlPrcp ? slice(exp.masked) : null
  }
  try {
    return await Parallel.step(team, policyBatch, inputs, lossConfig(config, 1), config.worker.rollout.temperature)
  } finally {
    tf.dispose([policyBatch.images, policyBatch.promptIds, policyBatch.responseIds, ...Object.values(inputs).filter((t): t is tf.Tensor2D => t !== null)])
  }
}

/**
 * Stage 6: one PPO epoch (or `ppoEpochs`) over mini-batches of `globalBatchSize` prompts, each split into
 * micro-batches whose losses are summed (gradient accumulation: each is divided by their count).
 *
 * @category math
 */
export const updateActor = async (
  session: Session.Session,
  config: Config,
  batch: Rollouts,
  exp: { readonly old: Float32Array; readonly masked: Float32Array | null; readonly ref: Float32Array | null },
  advantages: Float64Array,
  klPrcpCoef: number
): Promise<UpdateResult> => {
  const { actor } = config.worker
  const n = config.worker.rollout.n
  const maskedImages = config.worker.actor.recomputeMaskedLogProbs ? Session.stackImages(batch.maskedImages, n) : null
  const miniRows = actor.globalBatchSize * n
  const sums: Record<string, number> = {}
  const add = (k: string, v: number) => {
    sums[k] = (sums[k] ?? 0) + v
  }
  let updates = 0
  let nonFinite = 0
  for (let epoch = 0; epoch < actor.ppoEpochs; epoch++) {
    for (let m0 = 0; m0 < batch.rows.n; m0 += miniRows) {
      const m1 = Math.min(batch.rows.n, m0 + miniRows)
      const result = session.team !== null
        ? await parallelUpdate(session, session.team, config, batch, exp, advantages, m0, m1)
        : localUpdate(session, config, batch, exp, advantages, klPrcpCoef, maskedImages, m0, m1)
      updates++
      if (result.skipped || !Number.isFinite(result.loss)) nonFinite++
      for (const [k, v] of Object.entries(result.metrics)) add(k, v)
      add("actor/grad_norm", result.gradNorm)
      add("actor/lr", result.lr)
    }
  }
  const metrics: Record<string, number> = {}
  for (const [k, v] of Object.entries(sums)) metrics[k] = v / updates
  return { metrics, nonFinite, updates }
}

/**
 * Perception metrics at θ_old from the no-grad passes, for methods whose loss does not log them:
 * `actor/kl_prcp_loss` (−KL_prcp, k3 as in the loss), `actor/ori_entropy_loss` and
 * `actor/aug_entropy_loss` (mean NLL of the sampled tokens on the original / masked image).
 *
 * @category math
 */
export const perceptionMonitor = (
  old: Float32Array,
  masked: Float32Array,
  responseMask: Float32Array,
  shape: [number, number],
  mode: "token" | "seq"
): Record<string, number> => {
  const values = tf.tidy(() => {
    const l = tf.tensor2d(old, shape)
    const a = tf.tensor2d(masked, shape)
    const m = tf.tensor2d(responseMask, shape)
    return tf.stack([
      tf.neg(Aggregation.averageLoss(Kl.lowVarKl(l, a), m, mode)),
      tf.neg(Aggregation.maskedMean(l, m)),
      tf.neg(Aggregation.maskedMean(a, m))
    ])
  })
  const [kl, ori, aug] = values.dataSync()
  values.dispose()
  return { "actor/kl_prcp_loss": kl!, "actor/ori_entropy_loss": ori!, "actor/aug_entropy_loss": aug! }
}

const mean = (xs: ArrayLike<number>): number => (xs.length === 0 ? 0 : Array.from(xs).reduce((a, b) => a + b, 0) / xs.length)

/**
 * Reward, length, verifier and perception-outcome metrics of a batch (reference names where they exist).
 *
 * @category math
 */
export const batchMetrics = (batch: Rollouts, eosId: number, classify: (row: number) => string): Record<string, number> => {
  const lengths = Array.from(batch.lengths)
  const T = batch.rows.responseLength
  const clipped = (r: number) => batch.lengths[r] === T && batch.rows.responseIds[r * T + T - 1] !== eosId
  const out: Record<string, number> = {
    "reward/overall": mean(batch.grades.map((g) => g.overall)),
    "reward/accuracy": mean(batch.grades.map((g) => g.accuracy)),
    "reward/format": mean(batch.grades.map((g) => g.format)),
    "response_length/mean": mean(lengths),
    "response_length/max": Math.max(...lengths),
    "response_length/min": Math.min(...lengths),
    "response_length/clip_ratio": mean(batch.responses.map((_, r) => (clipped(r) ? 1 : 0)))
  }
  for (const v of ["Correct", "Incorrect", "NoAnswer", "TimedOut", "Invalid"] as const) {
    out[`verifier/${v}`] = batch.grades.filter((g) => g.verdict === v).length
  }
  for (let r = 0; r < batch.rows.n; r++) {
    const k = `outcome/${classify(r)}`
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

/**
 * The share of groups whose rewards are all equal (zero advantage): `frac_reward_zero_std`.
 *
 * @category math
 */
export const fracRewardZeroStd = (scores: ReadonlyArray<number>, uids: ReadonlyArray<string>): number => {
  const groups = new Map<string, Array<number>>()
  uids.forEach((u, i) => groups.set(u, [...(groups.get(u) ?? []), scores[i]!]))
  const all = [...groups.values()]
  return all.filter((g) => g.every((x) => x === g[0])).length / Math.max(1, all.length)
}

/**
 * Runs `f` and adds its wall time (seconds) to `timing[key]`.
 *
 * @category math
 */
export const timed = <A>(timing: Record<string, number>, key: string, f: () => A): A => {
  const t0 = performance.now()
  const a = f()
  timing[key] = (timing[key] ?? 0) + (performance.now() - t0) / 1000
  return a
}

/**
 * Awaits `f` (an Effect that cannot fail) and adds its wall time (seconds) to `timing[key]`.
 *
 * @category math
 */
export const timedPromise = <A>(timing: Record<string, number>, key: string, f: () => Promise<A>): Effect.Effect<A> =>
  Effect.promise(async () => {
    const t0 = performance.now()
    const a = await f()
    timing[key] = (timing[key] ?? 0) + (performance.now() - t0) / 1000
    return a
  })

/**
 * What a step produced: the next state, the metrics line and the batch (for sample logging).
 *
 * @category models
 */
export interface StepOutput {
  readonly state: StepState
  readonly metrics: Record<string, number>
  readonly batch: Rollouts
  readonly advantages: Float64Array
  readonly nonFinite: number
}

/**
 * Error: DAPO's dynamic sampling could not fill a batch (the reference raises the same).
 *
 * @category errors
 */
export class DynamicSamplingError extends Error {
  override readonly name = "DynamicSamplingError"
}

/**
 * One training step (see the module doc). Mutates the generators in `state` and returns the next state.
 *
 * @category math
 */
export const trainStep = (
  session: Session.Session,
  config: Config,
  train: ReadonlyArray<Example>,
  state: StepState,
  classify: (example: Example, response: string, correct: boolean) => string
): Effect.Effect<StepOutput, DynamicSamplingError, Verifier> =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const timing: Record<string, number> = {}
    const n = config.worker.rollout.n
    const stepNo = state.step + 1
    const chunkState = { cursor: state.cursor, samplingRng: state.samplingRng, maskRng: state.maskRng, tag: "" }
    const chunks: Array<Rollouts> = []
    const nextChunk = () => {
      chunkState.tag = `${stepNo}.${chunks.length}`
      return generateChunk(session, config, train, chunkState, timing)
    }

    // 1–4: sample → mask → roll out → reward; DAPO keeps generating until enough groups vary.
    let batch: Rollouts
    if (!config.algorithm.onlineFiltering) {
      batch = yield* nextChunk()
      chunks.push(batch)
    } else {
      const a = config.algorithm
      const key = a.filterKey
      const dsConfig = { filterLow: a.filterLow, filterHigh: a.filterHigh, n, rolloutBatchSize: config.data.rolloutBatchSize, maxTryMakeBatch: a.maxTryMakeBatch }
      for (;;) {
        chunks.push(yield* nextChunk())
        const result = DynamicSampling.makeBatch(
          chunks.map((c) => ({ uids: c.uids, filterScores: c.grades.map((g) => g[key]) })),
          dsConfig
        )
        if (result._tag === "Full") {
          const parts = chunks.map((c, ci) => selectRows(c, result.finalBatch.filter(([k]) => k === ci).map(([, i]) => i), n))
          batch = concatRollouts(parts.filter((p) => p.rows.n > 0))
          break
        }
        if (result._tag === "OutOfTries") {
          return yield* Effect.fail(
            new DynamicSamplingError(
              `dynamic sampling found too few prompts with mixed outcomes after ${result.numTries} chunks (algorithm.maxTryMakeBatch = ${a.maxTryMakeBatch}); lower data.rolloutBatchSize or raise maxTryMakeBatch`
            )
          )
        }
      }
    }

    // 5: advantages (group-normalized outcome rewards).
    const scores = batch.grades.map((g) => g.overall)
    const advantages = timed(timing, "timing_s/adv", () => Advantage.groupAdvantages(scores, batch.uids, { scaling: config.algorithm.advScaling }))

    // 6: old / masked / reference log-probs, no gradient.
    const exp = yield* Effect.promise(() => experience(session, config, batch, timing))

    // 7: PPO mini-batch updates with the PAPO loss.
    const schedule: Schedule.KlPrcpSchedule = config.algorithm.klPrcpSchedule === "fixed"
      ? { kind: "fixed", klPrcpCoef: config.algorithm.klPrcpCoef }
      : {
        kind: "annealing",
        klPrcpCoef: config.algorithm.klPrcpCoef,
        startValue: config.algorithm.klPrcpStartValue,
        endValue: config.algorithm.klPrcpEndValue,
        annealingRatio: config.algorithm.klPrcpAnnealingRatio,
        trainingSteps: config.trainer.maxSteps
      }
    const { coef } = Schedule.klPrcpCoefAt(schedule, stepNo)
    const update = yield* timedPromise(timing, "timing_s/update_actor", () => updateActor(session, config, batch, exp, advantages, coef))

    // 8: metrics.
    const T = batch.rows.responseLength
    const monitor = exp.masked !== null
      ? perceptionMonitor(exp.old, exp.masked, batch.rows.responseMask, [batch.rows.n, T], config.worker.actor.lossAvgMode)
      : {}
    const stepTime = (performance.now() - t0) / 1000
    const tokens = Array.from(batch.lengths).reduce((a, b) => a + b, 0)
    const metrics: Record<string, number> = {
      ...monitor,
      ...update.metrics,
      ...batchMetrics(batch, session.tokenizer.eosId, (r) => classify(batch.examples[Math.floor(r / n)]!, batch.responses[r]!, batch.grades[r]!.accuracy === 1)),
      frac_reward_zero_std: fracRewardZeroStd(scores, batch.uids),
      "actor/non_finite_updates": update.nonFinite,
      "dynamic_sampling/num_chunks": chunks.length,
      "batch/num_prompts": batch.examples.length,
      ...timing,
      "timing_s/step": stepTime,
      "perf/tokens_per_s": tokens / stepTime
    }
    const allFailed = update.nonFinite === update.updates
    return {
      state: {
        step: stepNo,
        cursor: chunkState.cursor,
        samplingRng: state.samplingRng,
        maskRng: state.maskRng,
        nonFiniteStreak: allFailed ? state.nonFiniteStreak + 1 : 0
      },
      metrics,
      batch,
      advantages,
      nonFinite: update.nonFinite
    }
  })
