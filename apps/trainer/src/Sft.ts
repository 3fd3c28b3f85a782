/**
 * The supervised warm start's step: targets (`<think>…</think>\boxed{…}` + EOS) as response rows, and one
 * AdamW step on their mean negative log-likelihood. A target is an example's gold response or, for
 * answer-only data (EasyR1 users' usual case), its answer in the reward's format,
 * `<think></think>\boxed{answer}`, as `sft.target` chooses (`Dataset.sftTarget`).
 *
 * With a thread replica (`trainer.threads = 2`) the step goes through `Parallel.step`, which splits the
 * PAPO loss: SFT is that loss with advantage 1 on every response token, no KL terms, and old log-probs
 * equal to the current ones (computed just before, same weights). At ratio ρ = 1 nothing is clipped and the
 * surrogate's gradient −A·ρ·∇ℓ is −∇ℓ, so the token-mean gradient is exactly that of −mean_M ℓ, and the
 * logged `actor/entropy_loss` (−mean_M ℓ) is the SFT loss.
 *
 * @since 0.1.0
 */
import { PapoLoss } from "@papo/loss"
import { Optimizer, Parallel, Policy, Tokenizer } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import type { Config } from "./Config.js"
import * as Dataset from "./Dataset.js"
import type { Example } from "./Example.js"
import * as Session from "./Session.js"

/**
 * What SFT will train on, said once: null when every example has its gold response, else a line saying
 * how many targets come from answers. Throws when `sft.target` is `response` and some have none.
 *
 * @example
 * describeTargets(answerOnlySplit, "response-or-answer")
 * // => 'train.jsonl: 300 of 300 training examples have no "response": SFT targets built from their answers as <think></think>\boxed{answer} (sft.target=response-or-answer)'
 *
 * @category constructors
 */
export const describeTargets = (split: Dataset.Split, target: Config["sft"]["target"]): string | null => {
  const n = split.examples.length
  const missing = split.examples.filter((e) => e.trace === undefined).length
  if (target === "response" && missing > 0) {
    throw new Error(`sft.target=response needs a gold response for every training example; ${missing} of ${n} in ${split.name} have no "response" (sft.target=response-or-answer trains those on their answers)`)
  }
  if (target === "answer") return `${split.name}: SFT targets are the answers as ${Dataset.answerTarget("answer")} (sft.target=answer)`
  return missing === 0 ? null : `${split.name}: ${missing} of ${n} training examples have no "response": SFT targets built from their answers as ${Dataset.answerTarget("answer")} (sft.target=${target})`
}

/**
 * SFT targets (+EOS) as response rows, padded to `T`; throws if one is longer.
 *
 * @category constructors
 */
export const goldRows = (session: Session.Session, config: Config, examples: ReadonlyArray<Example>, T: number): Session.Rows => {
  const prompts = Session.encodePrompts(session, config, examples)
  const responseIds = new Int32Array(examples.length * T).fill(session.tokenizer.padId)
  const responseMask = new Float32Array(examples.length * T)
  examples.forEach((e, i) => {
    const target = Dataset.sftTarget(e, config.sft.target)
    if (target === null) throw new Error(`${e.id} has no gold response (sft.target=response)`)
    const ids = [...Tokenizer.encode(session.tokenizer, target), session.tokenizer.eosId]
    if (ids.length > T) throw new Error(`SFT target of ${e.id} has ${ids.length} tokens with EOS, more than data.maxResponseLength = ${T}`)
    responseIds.set(ids, i * T)
    responseMask.fill(1, i * T, i * T + ids.length)
  })
  return {
    n: examples.length,
    images: Session.stackImages(examples.map((e) => e.image.data)),
    promptIds: prompts.ids,
    promptLength: prompts.length,
    responseIds,
    responseMask,
    responseLength: T
  }
}

/** SFT as the PAPO loss (see the module doc): advantage 1, no reference KL, no perception or entropy terms. */
const sftAsPolicyGradient: PapoLoss.LossConfig = { ...PapoLoss.presets.grpo, useKlLoss: false, lossAggMode: "token", gradientAccumulation: 1 }

/**
 * One SFT step; `loss` is the mean NLL of the gold tokens.
 *
 * @category math
 */
export const sftStep = async (session: Session.Session, rows: Session.Rows): Promise<Optimizer.StepResult> => {
  const shape: [number, number] = [rows.n, rows.responseLength]
  if (session.team === null) {
    return Optimizer.applyGradients(session.policy, session.optimizer, () =>
      Policy.sftLoss(session.policy, Session.batchTensors(session, rows), tf.tensor2d(rows.responseMask, shape)))
  }
  const old = await Session.logProbsOf(session, "policy", rows, { temperature: 1, microBatch: rows.n })
  const batch = Session.batchTensors(session, rows)
  const inputs = { oldLogProbs: tf.tensor2d(old, shape), advantages: tf.tensor2d(rows.responseMask, shape), responseMask: tf.tensor2d(rows.responseMask, shape) }
  try {
    const r = await Parallel.step(session.team, batch, inputs, sftAsPolicyGradient, 1)
    return { ...r, loss: r.metrics["actor/entropy_loss"]! }
  } finally {
    tf.dispose([batch.images, batch.promptIds, batch.responseIds, inputs.oldLogProbs, inputs.advantages, inputs.responseMask])
  }
}
