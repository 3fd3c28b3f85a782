/**
 * Evaluation as the paper reports it: accuracy avg@k (k responses per question at a temperature; the
 * paper: avg@8 at 1.0, top-p 1.0), overall and per subset (high / low vision dependency), with every wrong
 * response classified as a perception, reasoning or format error.
 *
 * @since 0.1.0
 */
import { Random, Tokenizer } from "@papo/model"
import { Effect } from "effect"
import type { Config } from "./Config.js"
import { classify, type Example, type Outcome } from "./Example.js"
import * as Session from "./Session.js"
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
  /** Perception errors / responses. */
  readonly perceptionErrorRate: number
  /** Perception errors / wrong responses (the paper's Fig. 1 share). */
  readonly perceptionErrorShare: number
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
  readonly overall: SubsetResult
  readonly subsets: Readonly<Record<string, SubsetResult>>
  /** The first few responses, for reading. */
  readonly examples: ReadonlyArray<{ readonly id: string; readonly problem: string; readonly answer: string; readonly response: string; readonly outcome: Outcome }>
}

const summarize = (rows: ReadonlyArray<{ readonly example: Example; readonly accuracy: number; readonly format: number; readonly outcome: Outcome }>): SubsetResult => {
  const outcomes: Record<Outcome, number> = { correct: 0, perception: 0, reasoning: 0, format: 0, unclassified: 0 }
  for (const r of rows) outcomes[r.outcome]++
  const n = rows.length
  const wrong = n - outcomes.correct
  return {
    questions: new Set(rows.map((r) => r.example.id)).size,
    responses: n,
    accuracy: n ? rows.reduce((s, r) => s + r.accuracy, 0) / n : 0,
    format: n ? rows.reduce((s, r) => s + r.format, 0) / n : 0,
    outcomes,
    perceptionErrorRate: n ? outcomes.perception / n : 0,
    perceptionErrorShare: wrong ? outcomes.perception / wrong : 0
  }
}

/**
 * Samples k responses for every question of `test` (seeded by `trainer.seed`, independent of training's
 * generators), grades and classifies them.
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
    const verifier = yield* Verifier
    const k = options.k ?? config.trainer.valAvgK
    const temperature = options.temperature ?? config.trainer.valTemperature
    const rng = new Random.Rng(config.trainer.seed * 7919 + 17)
    const c = session.modelConfig
    const per = options.batchPrompts ?? Math.max(1, Math.floor(256 / k))
    const rows: Array<{ example: Example; response: string; accuracy: number; format: number; outcome: Outcome }> = []
    for (let s = 0; s < test.length; s += per) {
      const examples = test.slice(s, s + per)
      const prompts = Session.encodePrompts(session, config, examples)
      const out = yield* Effect.promise(() =>
        Session.sample(session, Session.stackImages(examples.map((e) => e.image.data)), prompts, {
          groupSize: k,
          maxNewTokens: c.maxResponseLength,
          padId: session.tokenizer.padId,
          temperature,
          topP: 1,
          stopTokens: [session.tokenizer.eosId]
        }, rng)
      )
      const T = c.maxResponseLength
      const responses = Array.from({ length: examples.length * k }, (_, r) =>
        Tokenizer.decode(session.tokenizer, out.ids.subarray(r * T, r * T + out.lengths[r]!)))
      const grades = yield* verifier.grade(responses.map((response, r) => ({ response, answer: examples[Math.floor(r / k)]!.answer })))
      responses.forEach((response, r) => {
        const example = examples[Math.floor(r / k)]!
        const g = grades[r]!
        rows.push({ example, response, accuracy: g.accuracy, format: g.format, outcome: classify(example, response, g.accuracy === 1) })
      })
    }
    const subsets: Record<string, SubsetResult> = {}
    for (const name of [...new Set(test.map((e) => e.subset))].sort()) subsets[name] = summarize(rows.filter((r) => r.example.subset === name))
    return {
      step: options.step,
      split: options.split,
      k,
      temperature,
      overall: summarize(rows),
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
 * One console line for an evaluation.
 *
 * @category constructors
 */
export const formatEval = (r: EvalResult): string => {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`
  const subsets = Object.entries(r.subsets).map(([k, s]) => `${k} ${pct(s.accuracy)}`).join(", ")
  return `eval @${r.step} ${r.split}: avg@${r.k} ${pct(r.overall.accuracy)} (${subsets}); perception errors ${pct(r.overall.perceptionErrorRate)} of responses, ${pct(r.overall.perceptionErrorShare)} of errors`
}
