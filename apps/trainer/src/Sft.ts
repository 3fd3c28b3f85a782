/**
 * The supervised warm start's step: gold responses (`<think>…</think>\boxed{…}` + EOS) as response rows,
 * and one AdamW step on their mean negative log-likelihood.
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
import type { Example } from "./Example.js"
import * as Session from "./Session.js"

/**
 * Gold responses (+EOS) as response rows, padded to `T`; throws if one is longer.
 *
 * @category constructors
 */
export const goldRows = (session: Session.Session, config: Config, examples: ReadonlyArray<Example>, T: number): Session.Rows => {
  const prompts = Session.encodePrompts(session, config, examples)
  const responseIds = new Int32Array(examples.length * T).fill(session.tokenizer.padId)
  const responseMask = new Float32Array(examples.length * T)
  examples.forEach((e, i) => {
    const ids = [...Tokenizer.encode(session.tokenizer, e.trace!), session.tokenizer.eosId]
    if (ids.length > T) throw new Error(`gold response of ${e.id} has ${ids.length} tokens with EOS, more than data.maxResponseLength = ${T}`)
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
