/**
 * Evaluation as the paper reports it: accuracy avg@k (k responses per question at a temperature; the
 * paper: avg@8 at 1.0, top-p 1.0), overall and per subset, with every wrong response classified as
 * following the prior, another perception error, a reasoning error or a format error. Beside it, how
 * much the policy relies on the image: accuracy with a blank image and with a 60%-masked copy
 * (`algorithm.maskRatio`), and KL_prcp (k3, as in the loss) on the tokens that carry the answer: the
 * reading the thinking states and the boxed answer.
 *
 * @since 0.1.0
 */
import { Kl } from "@papo/loss"
import type { Tokenizer } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import { Effect } from "effect"
import type { Config } from "./Config.js"
import { classify, type Example, type Outcome, outcomes as outcomeNames } from "./Example.js"
import { Rng, type Xoshiro128 } from "@papo/random"
import * as Session from "./Session.js"
import * as Rollout from "./Rollout.js"
import { Verifier } from "./Verifier.js"

/**
 * Counts of one subset.
 *
 * @category models
 */
export interface SubsetResult {
  /** Questions. */
  readonly questions: number
  /** Responses (questions × k). */
  readonly responses: number
  /** avg@k: the mean accuracy over all responses. */
  readonly accuracy: number
  readonly format: number
  readonly outcomes: Readonly<Record<Outcome, number>>
  /** Misreadings of the image (followed the prior or another perception error) / responses. */
  readonly perceptionErrorRate: number
  /** Misreadings / wrong responses (the paper's Fig. 1 share). */
  readonly perceptionErrorShare: number
  /** Responses that followed the prior (stated the cue's digit where the image shows another) / responses. */
  readonly priorRate: number
  /** Accuracy with a blank (all-zero) image. */
  readonly blankAccuracy: number
  /** Accuracy with the image patch-masked at `algorithm.maskRatio`. */
  readonly maskedAccuracy: number
  /** Mean per-token KL_prcp (k3: original vs masked image) over the answer-bearing tokens; NaN without any. */
  readonly klPrcpAnswer: number
}

/**
 * The contents of `eval.json`.
 *
 * @category models
 */
export interface EvalResult {
  readonly step: number
  readonly split: string
  readonly k: number
  readonly temperature: number
  /** Responses per question of the blank- and masked-image probes. */
  readonly probeK: number
  readonly overall: SubsetResult
  readonly subsets: Readonly<Record<string, SubsetResult>>
  /** The first few responses, for reading. */
  readonly examples: ReadonlyArray<{ readonly id: string; readonly problem: string; readonly answer: string; readonly response: string; readonly outcome: Outcome }>
}

interface Row {
  readonly example: Example
  readonly response: string
  readonly accuracy: number
  readonly format: number
  readonly outcome: Outcome
}

interface Probe {
  readonly example: Example
  readonly blank: number
  readonly masked: number
  /** Sum and count of KL_prcp over the answer tokens of this question's responses. */
  readonly kl: number
  readonly klTokens: number
}

const mean = (xs: ReadonlyArray<number>) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0)

const summarize = (rows: ReadonlyArray<Row>, probes: ReadonlyArray<Probe>): SubsetResult => {
  const counts = Object.fromEntries(outcomeNames.map((o) => [o, 0])) as Record<Outcome, number>
  for (const r of rows) counts[r.outcome]++
  const n = rows.length
  const wrong = n - counts.correct
  const misread = counts.perception + counts.prior
  const klTokens = probes.reduce((s, p) => s + p.klTokens, 0)
  return {
    questions: new Set(rows.map((r) => r.example.id)).size,
    responses: n,
    accuracy: mean(rows.map((r) => r.accuracy)),
    format: mean(rows.map((r) => r.format)),
    outcomes: counts,
    perceptionErrorRate: n ? misread / n : 0,
    perceptionErrorShare: wrong ? misread / wrong : 0,
    priorRate: n ? counts.prior / n : 0,
    blankAccuracy: mean(probes.map((p) => p.blank)),
    maskedAccuracy: mean(probes.map((p) => p.masked)),
    klPrcpAnswer: klTokens ? probes.reduce((s, p) => s + p.kl, 0) / klTokens : NaN
  }
}

/**
 * Which response tokens carry the answer: the digits right after `<think>` (the reading) and the tokens
 * inside `\boxed{…}`. One flag per position of `ids` (length `T`, the first `length` tokens are the response).
 *
 * @example
 * answerTokens(tok, encode(tok, "<think>7+3=10</think>\\boxed{10}"), 16, 12) // => flags on "7", "1", "0"
 *
 * @category math
 */
export const answerTokens = (tok: Tokenizer.Tokenizer, ids: ArrayLike<number>, T: number, length: number): Float32Array => {
  const flags = new Float32Array(T)
  let mode: "none" | "reading" | "boxed" = "none"
  for (let j = 0; j < length; j++) {
    const t = tok.tokens[ids[j]!] ?? ""
    if (t === "<think>") mode = "reading"
    else if (t === "\\boxed{") mode = "boxed"
    else if (mode === "reading" && /^\d$/.test(t)) flags[j] = 1
    else if (mode === "boxed" && t !== "}") flags[j] = 1
    else mode = "none"
  }
  return flags
}

/** k responses per question for `images` `[B, H, W, C]`, decoded and graded (rows N = B·k). */
const respond = (
  session: Session.Session,
  config: Config,
  examples: ReadonlyArray<Example>,
  images: Float32Array,
  k: number,
  temperature: number,
  rng: Xoshiro128
) =>
  Effect.gen(function*() {
    const rollout = yield* Rollout.rollOut(session, config, examples, images, { n: k, temperature, topP: 1 }, rng)
    const grades = yield* Rollout.grade(rollout.responses, examples, k)
    return { ...rollout, grades }
  })

/** Per-token KL_prcp `[N, T]` of sampled responses: log-probs on their images and on `masked` `[B, H, W, C]`, k3. */
const klPrcpOf = async (session: Session.Session, config: Config, rows: Session.Rows, masked: Float32Array, k: number): Promise<Float32Array> => {
  const micro = config.worker.actor.microBatchSizePerDeviceForExperience
  const temperature = config.worker.rollout.temperature
  const old = await Session.logProbsOf(session, "policy", rows, { temperature, microBatch: micro })
  const maskedLogProbs = await Session.logProbsOf(session, "policy", rows, {
    temperature,
    microBatch: micro,
    images: Session.repeatRows(masked, masked.length / (rows.n / k), k)
  })
  const shape: [number, number] = [rows.n, rows.responseLength]
  const kl = tf.tidy(() => Kl.lowVarKl(tf.tensor2d(old, shape), tf.tensor2d(maskedLogProbs, shape)))
  const values = kl.dataSync() as Float32Array
  kl.dispose()
  return values
}

/**
 * Samples k responses for every question of `test` (seeded by `trainer.seed`, independent of training's
 * generators), grades and classifies them; then the probes: `probeK` responses with a blank and with a
 * masked image, and KL_prcp on the answer tokens of the k responses.
 *
 * @category math
 */
export const evaluate = (
  session: Session.Session,
  config: Config,
  test: ReadonlyArray<Example>,
  options: { readonly step: number; readonly split: string; readonly k?: number; readonly temperature?: number; readonly batchPrompts?: number }
): Effect.Effect<EvalResult, never, Verifier> =>
  Effect.gen(function*() {
    const k = options.k ?? config.trainer.valAvgK
    const probeK = Math.max(1, Math.round(k / 4))
    const temperature = options.temperature ?? config.trainer.valTemperature
    const rng = Rng.makeXoshiro(config.trainer.seed, "eval-sampling")
    const maskRng = Rng.make(config.trainer.seed, "eval-masks")
    const maskConfig = Rollout.maskingConfig(config)
    const T = session.modelConfig.maxResponseLength
    const per = options.batchPrompts ?? Math.max(1, Math.floor(256 / k))
    const rows: Array<Row> = []
    const probes: Array<Probe> = []
    for (let s = 0; s < test.length; s += per) {
      const examples = test.slice(s, s + per)
      const original = Session.stackImages(examples.map((e) => e.image.data))
      const masked = Session.stackImages(Rollout.maskPrompts(session, original, maskConfig, maskRng))
      const main = yield* respond(session, config, examples, original, k, temperature, rng)
      main.responses.forEach((response, r) => {
        const example = examples[Math.floor(r / k)]!
        const g = main.grades[r]!
        rows.push({ example, response, accuracy: g.accuracy, format: g.format, outcome: classify(example, response, g.accuracy === 1) })
      })
      const blank = yield* respond(session, config, examples, new Float32Array(original.length), probeK, temperature, rng)
      const maskedRun = yield* respond(session, config, examples, masked, probeK, temperature, rng)
      // Forward passes on rows the rollout built: a throw is a bug, a defect.
      const kl = yield* Effect.promise(() => klPrcpOf(session, config, main.rows, masked, k))
      examples.forEach((example, i) => {
        let klSum = 0
        let klTokens = 0
        for (let r = i * k; r < (i + 1) * k; r++) {
          const flags = answerTokens(session.tokenizer, main.rows.responseIds.subarray(r * T, (r + 1) * T), T, main.lengths[r]!)
          for (let j = 0; j < T; j++) {
            if (flags[j] === 1) {
              klSum += kl[r * T + j]!
              klTokens++
            }
          }
        }
        const acc = (run: typeof blank) => mean(run.grades.slice(i * probeK, (i + 1) * probeK).map((g) => g.accuracy))
        probes.push({ example, blank: acc(blank), masked: acc(maskedRun), kl: klSum, klTokens })
      })
    }
    const subsets: Record<string, SubsetResult> = {}
    for (const name of [...new Set(test.map((e) => e.subset))].sort()) {
      subsets[name] = summarize(rows.filter((r) => r.example.subset === name), probes.filter((p) => p.example.subset === name))
    }
    return {
      step: options.step,
      split: options.split,
      k,
      temperature,
      probeK,
      overall: summarize(rows, probes),
      subsets,
      examples: rows.filter((_, i) => i % k === 0).slice(0, 8).map((r) => ({
        id: r.example.id,
        problem: r.example.problem,
        answer: r.example.answer,
        response: r.response,
        outcome: r.outcome
      }))
    }
  })

/**
 * Greedy accuracy per subset (one response per question at temperature 0): a cheap learning-curve point,
 * as metrics `val/greedy_accuracy/<subset>`.
 *
 * @category math
 */
export const greedyAccuracy = (
  session: Session.Session,
  config: Config,
  test: ReadonlyArray<Example>
): Effect.Effect<Record<string, number>, never, Verifier> =>
  Effect.gen(function*() {
    const rng = Rng.makeXoshiro(config.trainer.seed, "curve-sampling")
    const per = 256
    const correct = new Map<string, Array<number>>()
    for (let s = 0; s < test.length; s += per) {
      const examples = test.slice(s, s + per)
      const run = yield* respond(session, config, examples, Session.stackImages(examples.map((e) => e.image.data)), 1, 0, rng)
      examples.forEach((e, i) => {
        const xs = correct.get(e.subset) ?? []
        xs.push(run.grades[i]!.accuracy)
        correct.set(e.subset, xs)
      })
    }
    return Object.fromEntries([...correct].map(([name, xs]) => [`val/greedy_accuracy/${name}`, mean(xs)]))
  })

/**
 * One console line for an evaluation.
 *
 * @category constructors
 */
export const formatEval = (r: EvalResult): string => {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`
  const subsets = Object.entries(r.subsets).map(([k, s]) => `${k} ${pct(s.accuracy)}${s.outcomes.prior > 0 ? ` (prior ${pct(s.priorRate)})` : ""}`).join(", ")
  return `eval @${r.step} ${r.split}: avg@${r.k} ${pct(r.overall.accuracy)} (${subsets}); perception errors ${pct(r.overall.perceptionErrorRate)} of responses, ` +
    `${pct(r.overall.perceptionErrorShare)} of errors; blank image ${pct(r.overall.blankAccuracy)}, masked ${pct(r.overall.maskedAccuracy)}, ` +
    `KL_prcp on answer tokens ${r.overall.klPrcpAnswer.toFixed(3)}`
}
