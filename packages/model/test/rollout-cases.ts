// The fixed-seed rollouts of fixtures/rollout.json: weights, batch and sampling stream all seeded.
import * as tf from "@tensorflow/tfjs"
import { Xoshiro128 } from "@papo/random"
import { Config, Policy, Sampling } from "../src/index.js"
import { randomBatch } from "./helpers.js"

export interface RolloutCase {
  readonly name: string
  readonly config: "tiny" | "small"
  readonly prompts: number
  readonly promptLength: number
  readonly options: Sampling.SampleOptions
}

/** `small` as papo-step runs it (16 tokens, no stop) and with top-p and stop tokens; `tiny` with G > 1. */
export const rolloutCases: ReadonlyArray<RolloutCase> = [
  { name: "small-t1", config: "small", prompts: 6, promptLength: 8, options: { groupSize: 2, maxNewTokens: 16, padId: 0, temperature: 1 } },
  { name: "small-stops", config: "small", prompts: 3, promptLength: 5, options: { groupSize: 3, maxNewTokens: 12, padId: 0, temperature: 1.3, topP: 0.9, stopTokens: [1, 2] } },
  { name: "tiny-g4", config: "tiny", prompts: 2, promptLength: 3, options: { groupSize: 4, maxNewTokens: 4, padId: 0, temperature: 1 } }
]

/** Samples a case (policy seed 0, batch seed 7, sampling seed 5): token ids and log-probs, row-major. */
export const runCase = (rc: RolloutCase): { ids: Array<number>; logProbs: Array<number> } => {
  const c = Config.configs[rc.config]
  const policy = Policy.create(c, 0)
  const { images, promptIds } = randomBatch(c, rc.prompts, rc.promptLength, 7)
  const r = Sampling.sample(policy, images, promptIds, rc.options, new Xoshiro128(5))
  tf.dispose([images, promptIds, r.responseIds, r.responseMask])
  Policy.dispose(policy)
  return { ids: Array.from(r.ids), logProbs: Array.from(r.logProbs) }
}
