/**
 * The supervised warm start's step: targets (`<think>…</think>\boxed{…}` + EOS) as response rows, and one
 * AdamW step on their mean negative log-likelihood. A target is an example's gold response or, for
 * answer-only data (EasyR1 users' usual case), its answer in the reward's format,
 * `<think></think>\boxed{answer}`, as `sft.target` chooses (`Dataset.sftTarget`).
 *
 * The loss is token cross-entropy (`Parallel.step` with the `sft` loss), on one thread or split with a worker
 * replica (`trainer.threads = 2` on plain wasm), each half weighted by its share of the target tokens.
 *
 * @since 0.1.0
 */
import { type Optimizer, Parallel, Tokenizer } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import { Data, Effect } from "effect"
import type { Config } from "./Config.js"
import * as Dataset from "./Dataset.js"
import type { Example } from "./Example.js"
import * as Session from "./Session.js"

/**
 * `sft.target=response` on a split where `missing` of `total` training examples have no gold response
 * (`"response"` field).
 *
 * @example
 * new MissingGoldResponseError({ split: "train.jsonl", missing: 3, total: 300 }).message
 * // => 'sft.target=response needs a gold response for every training example; 3 of 300 in train.jsonl have no "response" (sft.target=response-or-answer trains those on their answers)'
 *
 * @category errors
 */
export class MissingGoldResponseError extends Data.TaggedError("MissingGoldResponseError")<{
  readonly split: string
  readonly missing: number
  readonly total: number
}> {
  override get message(): string {
    return `sft.target=response needs a gold response for every training example; ${this.missing} of ${this.total} in ${this.split} have no "response" (sft.target=response-or-answer trains those on their answers)`
  }
}

/**
 * What SFT will train on, said once: null when every example has its gold response, else a line saying
 * how many targets come from answers. Fails with {@link MissingGoldResponseError} when `sft.target` is
 * `response` and some have none.
 *
 * @example
 * Effect.runSync(describeTargets(answerOnlySplit, "response-or-answer"))
 * // => 'train.jsonl: 300 of 300 training examples have no "response": SFT targets built from their answers as <think></think>\boxed{answer} (sft.target=response-or-answer)'
 *
 * @category constructors
 */
export const describeTargets = (split: Dataset.Split, target: Config["sft"]["target"]): Effect.Effect<string | null, MissingGoldResponseError> => {
  const n = split.examples.length
  const missing = split.examples.filter((e) => e.trace === undefined).length
  if (target === "response" && missing > 0) return Effect.fail(new MissingGoldResponseError({ split: split.name, missing, total: n }))
  if (target === "answer") return Effect.succeed(`${split.name}: SFT targets are the answers as ${Dataset.answerTarget("answer")} (sft.target=answer)`)
  return Effect.succeed(
    missing === 0 ? null : `${split.name}: ${missing} of ${n} training examples have no "response": SFT targets built from their answers as ${Dataset.answerTarget("answer")} (sft.target=${target})`
  )
}

/**
 * SFT targets (+EOS) as response rows, padded to `T`. Throws when a target is missing or longer than `T`:
 * a bug, since {@link describeTargets} and `Dataset.load` (a `ResponseTooLongError`) check both first.
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

/**
 * One SFT step: one AdamW step on the mean negative log-likelihood of the target tokens; `loss` is that mean
 * before the step.
 *
 * @example
 * (await sftStep(session, goldRows(session, config, examples, T))).loss // => mean NLL of the gold tokens
 *
 * @category math
 */
export const sftStep = async (session: Session.Session, rows: Session.Rows): Promise<Optimizer.StepResult> => {
  const micro = { batch: Session.batchTensors(session, rows), inputs: { responseMask: tf.tensor2d(rows.responseMask, [rows.n, rows.responseLength]) } }
  try {
    return await Parallel.step(session.team, [micro], { name: "sft" })
  } finally {
    Parallel.disposeMicroBatches([micro])
  }
}
